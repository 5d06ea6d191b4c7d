-- A failure's report tells its story: the failing task's own frames, the
-- task that spawned it, and, for an error raised again by awaiting, the
-- frames of the task that failed first. (Lua 5.1 and LuaJIT say "function"
-- where 5.4 says "method" or "upvalue".)
-- exit: 1
-- expect: unhandled error in task #[0-9]+ 'orphan': orphan failure.stack traceback:.*in function 'error'.*spawned by task #[0-9]+ 'parent'
-- expect: weft: [^ ]*: deep failure.stack traceback:.*in (method|function) 'await'.*the error came from task #[0-9]+ 'mid', awaited there, which failed:.*the error came from task #[0-9]+ 'worker', awaited there, which failed:.*in (upvalue|function) 'inner'.*spawned by task #[0-9]+ 'main'
local function inner() error("deep failure") end
local worker = weft.spawn({ name = "worker" }, function()
  weft.sleep(1)
  inner()
end)
local mid = weft.spawn({ name = "mid" }, function() return worker:await() end)
weft.spawn({ name = "parent" }, function()
  weft.spawn({ name = "orphan" }, function() error("orphan failure", 0) end)
  weft.sleep(5)
end)
mid:await()
