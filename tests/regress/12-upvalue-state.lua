-- Replacing upvalue 1 of a weft function (the weft state) with
-- debug.setupvalue made the next call crash: every C function of weft
-- checks it, and raises an error naming the function.
-- expect: checked [1-9][0-9]* functions
-- reject: Segmentation|AddressSanitizer|runtime error
local weft = require "weft"

-- Every C function reachable from the weft table, its metatables and the
-- internal table (an upvalue of the Lua parts), with a name.
local fns, seen = {}, {}
local function collect(v, name, depth)
  if seen[v] or depth > 4 then return end
  seen[v] = true
  if type(v) == "function" then
    if debug.getinfo(v, "S").what == "C" then fns[#fns + 1] = {v, name} end
    for i = 1, 255 do
      local n, u = debug.getupvalue(v, i)
      if n == nil then break end
      collect(u, name .. "^" .. i, depth + 1)
    end
  elseif type(v) == "table" then
    for k, x in pairs(v) do collect(x, name .. "." .. tostring(k), depth + 1) end
  end
  local mt = debug.getmetatable(v)
  if mt and type(v) ~= "string" then collect(mt, name .. "<mt>", depth + 1) end
end
collect(weft, "weft", 0)
collect(weft.channel(1), "channel", 0)
collect(weft.semaphore(1), "semaphore", 0)
collect(weft.future(), "future", 0)

local state = select(2, debug.getupvalue(weft.sleep, 1))
local bad = {nil, 42, "x", {}, io.stdout, weft.channel(1), coroutine.create(print)}
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
