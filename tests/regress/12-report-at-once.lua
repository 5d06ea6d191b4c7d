-- A failure nobody can observe (the task is held by nobody) is reported
-- as soon as it happens, not when the run ends; a failed task that is
-- held is reported only if it is still unobserved when the run ends.
-- exit: 1
-- expect: unhandled error in task #[0-9]+ 'lost': early failure.*main goes on.*unhandled error in task #[0-9]+ 'kept': held failure
-- reject: unhandled error in task #[0-9]+ 'awaited'
local function lose()
  weft.spawn({ name = "lost" }, function() weft.sleep(1) error("early failure", 0) end)
end
lose()
local kept = weft.spawn({ name = "kept" }, function() error("held failure", 0) end)
local awaited = weft.spawn({ name = "awaited" }, function() error("seen", 0) end)
-- Wait on something that keeps the loop turning, long after the failure.
for _ = 1, 20 do weft.sleep(5) end
io.stderr:write("main goes on\n")
assert(not pcall(awaited.await, awaited))
