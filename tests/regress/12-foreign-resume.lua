-- The original coroutine.resume and coroutine.close (saved before weft
-- wrapped them, or reached through the debug library) applied to the
-- coroutine of a waiting task: the task stays in its wait and ends as it
-- would have, or fails with a clear error if its coroutine was closed;
-- never a crash or a result delivered to the wrong caller.
-- expect: all done
-- reject: AddressSanitizer
-- The original: the upvalue of that name of weft's Lua version, or, of
-- its C version (5.3 and later), the upvalue that is a C function.
local function original(f, name)
  for i = 1, 20 do
    local n, v = debug.getupvalue(f, i)
    if n == nil then break end
    if n == name or (n == "" and type(v) == "function" and
                     debug.getinfo(v, "S").what == "C") then
      return v
    end
  end
  error("no upvalue " .. name)
end
local resume = original(coroutine.resume, "resume")
-- coroutine.close is Lua 5.4's: the part that closes is for 5.4 alone.
local close = coroutine.close and original(coroutine.close, "close")

local co
local t = weft.spawn(function()
  co = coroutine.running()
  weft.sleep(20)
  return "r"
end)
weft.sleep(1)
assert(resume(co, 1, 2)) -- yields straight back: the task still sleeps
assert(coroutine.status(co) == "suspended")
assert(t:await() == "r")

-- The same in the other waits: a channel, a group, a socket read.
local ch = weft.channel()
local co4
local t4 = weft.spawn(function() co4 = coroutine.running() return ch:recv() end)
weft.sleep(1)
assert(resume(co4, "not this"))
ch:send("this")
assert(t4:await() == "this")
local srv = weft.tcp.listen("127.0.0.1", 0, function(c)
  weft.sleep(5)
  c:write("line\n")
end)
local co5
local t5 = weft.spawn(function()
  local c = weft.tcp.connect("127.0.0.1", srv.port)
  co5 = coroutine.running()
  return c:read("l")
end)
while co5 == nil do weft.sleep(1) end
assert(resume(co5))
assert(t5:await() == "line")
srv:close()

-- Resumed from a finalizer, while no task runs (the collection that
-- reports a failure runs between tasks).
local co2
local t2 = weft.spawn(function()
  co2 = coroutine.running()
  weft.sleep(30)
  return "r2"
end)
weft.sleep(1)
setmetatable({}, { __gc = function() resume(co2) end })
weft.spawn(function() error("triggers a collection", 0) end):next(nil,
  function() end)
assert(t2:await() == "r2")

-- Closed from outside: the task fails with an error, once woken.
if close then
  local co3
  local t3 = weft.spawn(function()
    co3 = coroutine.running()
    weft.sleep(10)
  end)
  weft.sleep(1)
  assert(close(co3))
  local ok, err = pcall(t3.await, t3)
  assert(not ok and tostring(err):find("dead coroutine"), tostring(err))
end
print("all done")
