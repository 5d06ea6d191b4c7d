-- Replacing upvalue 1 of a weft function (the weft state) with
-- debug.setupvalue made the next call crash: every C function of weft
-- checks it, and raises an error naming the function.
-- expect: checked [1-9][0-9]* functions
-- reject: Segmentation|AddressSanitizer|runtime error
local weft = require "weft"

-- Every C function reachable from the weft table, its metatables and the
-- internal table (an upvalue of the Lua parts), breadth first.
local fns, seen, queue = {}, {}, {}
local function push(v, name)
  if (type(v) == "function" or type(v) == "table" or type(v) == "userdata")
      and not seen[v] then
    seen[v] = true
    queue[#queue + 1] = {v, name}
  end
end
push(weft, "weft")
push(weft.channel(1), "channel")
push(weft.semaphore(1), "semaphore")
push(weft.future(), "future")
local i = 1
while queue[i] do
  local v, name = queue[i][1], queue[i][2]
  i = i + 1
  if type(v) == "function" then
    if debug.getinfo(v, "S").what == "C" then fns[#fns + 1] = {v, name} end
    for k = 1, 255 do
      local n, u = debug.getupvalue(v, k)
      if n == nil then break end
      push(u, name .. "^" .. k)
    end
  elseif type(v) == "table" then
    for k, x in pairs(v) do push(x, name .. "." .. tostring(k)) end
  end
  local mt = debug.getmetatable(v)
  if mt then push(mt, name .. "<mt>") end
end

-- On LuaJIT weft.sleep is a Lua wrapper around the C function, its
-- upvalue f (About waits in src/lua/lweft.h).
local sleep = weft.sleep
if debug.getinfo(sleep, "S").what ~= "C" then
  for k = 1, 10 do
    local n, u = debug.getupvalue(weft.sleep, k)
    if n == "f" then sleep = u end
  end
end
local state = select(2, debug.getupvalue(sleep, 1))
local bad = {nil, 42, "x", {}, io.stdout, weft.channel(1), coroutine.create(function() end)}
local checked, arg1 = 0, weft.channel(1)
for _, e in ipairs(fns) do
  local fn, name = e[1], e[2]
  if rawequal(select(2, debug.getupvalue(fn, 1)), state) then
    local caught = false
    for i = 1, 7 do
      debug.setupvalue(fn, 1, bad[i])
      -- A function that needs no state may run; one that does raises.
      local ok, err = pcall(fn, arg1, 1, 2)
      assert(ok or type(err) == "string", name .. ": " .. tostring(err))
      caught = caught or not ok and err:find("corrupted upvalue 1") ~= nil
    end
    debug.setupvalue(fn, 1, state)
    if caught then checked = checked + 1 end
  end
end
assert(checked > 40, "only " .. checked .. " functions found")
print(("checked %d functions"):format(checked))
