-- A wait where the task cannot yield (inside a C function that calls
-- back into Lua) raises weft's own error before registering the task
-- anywhere: no use-after-free once the garbage is collected, and later
-- waits still wait.
-- reject: AddressSanitizer
-- expect: all done
local f, resolve = weft.future()
local ch = weft.channel(1)
local waits = {
  all = function() weft.all({ f }) end,
  await = function() f:await() end,
  sleep = function() weft.sleep(1) end,
  yield = function() weft.yield() end,
  recv = function() ch:recv() end,
  timeout = function() weft.timeout(5, f) end,
}
local function check(where, ok, err)
  assert(not ok, where .. ": the wait did not fail")
  assert(tostring(err):find("cannot wait inside a C callback", 1, true),
         where .. ": unexpected error: " .. tostring(err))
end
-- What is no C callback on some Luas: LuaJIT's tostring calls __tostring
-- as Lua code, which may yield; on PUC 5.1 weft's xpcall runs the handler
-- once the function has unwound, in the task, where waits wait.
local luajit = type(jit) == "table"
local puc51 = _VERSION == "Lua 5.1" and not luajit
for name, wait in pairs(waits) do
  check(name .. " in table.sort", pcall(table.sort, { 3, 1, 2 },
    function(a, b) wait() return a < b end))
  check(name .. " in string.gsub", pcall(string.gsub, "abc", "%w",
    function(c) wait() return c end))
  if not luajit then
    local mt = { __tostring = function() wait() return "x" end }
    check(name .. " in __tostring", pcall(tostring, setmetatable({}, mt)))
  end
  if not puc51 then
    local herr
    xpcall(function() error("x") end,
      function(e) herr = select(2, pcall(wait)) return e end)
    check(name .. " in an xpcall handler", false, herr)
  end
  collectgarbage()
  collectgarbage()
end
-- A finalizer that waits: its error is a warning (5.4) or an error of the
-- collection that ran it (5.3, 5.1), never a crash. 5.1 finalizes only
-- userdata: a proxy there.
local function finalized(gc)
  if newproxy then
    local u = newproxy(true)
    getmetatable(u).__gc = gc
    return u
  end
  return setmetatable({}, { __gc = gc })
end
finalized(function() weft.sleep(1) end)
local gok, gerr = pcall(collectgarbage)
if not gok then check("sleep in a finalizer", gok, gerr) end
collectgarbage()
-- The task was never left linked: waits after the failures work.
local t = weft.spawn(function() weft.sleep(5) return "slept" end)
resolve(1)
assert(weft.all({ f, t })[2] == "slept")
ch:send(1)
assert(ch:recv() == 1)
print("all done")
