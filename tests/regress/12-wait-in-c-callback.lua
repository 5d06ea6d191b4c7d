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
for name, wait in pairs(waits) do
  check(name .. " in table.sort", pcall(table.sort, { 3, 1, 2 },
    function(a, b) wait() return a < b end))
  check(name .. " in string.gsub", pcall(string.gsub, "abc", "%w",
    function(c) wait() return c end))
  local mt = { __tostring = function() wait() return "x" end }
  check(name .. " in __tostring", pcall(tostring, setmetatable({}, mt)))
  local herr
  xpcall(error, function(e) herr = select(2, pcall(wait)) return e end, "x")
  check(name .. " in an xpcall handler", false, herr)
  collectgarbage()
  collectgarbage()
end
-- A finalizer that waits: its error is a warning, never a crash.
setmetatable({}, { __gc = function() weft.sleep(1) end })
collectgarbage()
collectgarbage()
-- The task was never left linked: waits after the failures work.
local t = weft.spawn(function() weft.sleep(5) return "slept" end)
resolve(1)
assert(weft.all({ f, t })[2] == "slept")
ch:send(1)
assert(ch:recv() == 1)
print("all done")
