-- t:next(...) on a task that is then cancelled: the chained task ends
-- cancelled too, and a cancelled task is never reported as a failure.
-- reject: unhandled error
-- expect: chained: cancelled
local t = weft.spawn(function() weft.sleep(1000) end)
local n = t:next(function() return "never" end)
local f = t:finally(function() end)
weft.sleep(1)
t:cancel()
weft.sleep(1)
-- A task that awaits a cancelled future and does not catch the error.
local u = weft.spawn(function() return t:await() end)
weft.sleep(1)
print("chained: " .. n:state(), f:state(), u:state())
assert(n:state() == "cancelled" and f:state() == "cancelled")
assert(u:state() == "cancelled")
