-- Under --preempt, cancelling a task that computes without waiting, or
-- timing it out, stops it: it sees its cancellation error at its next
-- preemption point. It used to compute on, and the CLI never exited.
-- weft-args: --preempt 5
-- expect: cancel: cancelled, cancelled
-- expect: timeout: weft.timeout: timed out after 20 ms
-- expect: inner: cancelled
-- reject: AddressSanitizer
-- (LuaJIT runs no debug hooks, preemption's, inside compiled code.)
if jit then jit.off() end
local t = weft.spawn(function() while true do end end)
weft.sleep(20)
t:cancel()
local ok, err = pcall(t.await, t)
print(("cancel: %s, %s"):format(t:state(),
  not ok and weft.is_cancelled(err) and "cancelled"))

-- The timed-out function catches its cancellation, to show that it got it.
local seen
ok, err = pcall(weft.timeout, 20, function()
  local _, e = pcall(function() while true do end end)
  seen = e
  error(e, 0)
end)
print("timeout: " .. tostring(not ok and err))
while seen == nil do weft.yield() end
print("inner: " .. tostring(weft.is_cancelled(seen) and "cancelled"))
