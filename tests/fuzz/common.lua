-- common.lua - helpers shared by the Lua parts of the fuzz targets: a
-- reader of the fuzzer's bytes, a deep comparison of values, checks of
-- weft's error values, and a free port. Compiled into each target.
-- SPDX-License-Identifier: MIT
local weft = ...
local C = {}

-- A reader over the input: every take returns something, zeros once the
-- input is used up, so any input decodes.
function C.reader(s)
  local pos, n = 1, #s
  local R = {}
  function R.left() return n - pos + 1 end
  function R.byte()
    local b = s:byte(pos) or 0
    pos = pos + 1
    return b
  end
  function R.u16() return R.byte() | R.byte() << 8 end
  function R.bytes(k)
    local t = s:sub(pos, pos + k - 1)
    pos = pos + k
    return t
  end
  -- The rest of the input.
  function R.rest() return R.bytes(n - pos + 1) end
  -- One of the items of list.
  function R.pick(list) return list[R.byte() % #list + 1] end
  return R
end

-- Fails the run: the driver aborts with this message, so libFuzzer keeps
-- the input as a crash.
function C.violation(fmt, ...)
  error("invariant violated: " .. fmt:format(...), 0)
end

-- A readable rendering of a value for messages, cut short.
function C.show(v)
  if type(v) == "string" then return ("%q"):format(v:sub(1, 200)) end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for k, x in next, v do
    if #parts == 8 then parts[#parts + 1] = "..." break end
    parts[#parts + 1] = ("[%s]=%s"):format(C.show(k),
      type(x) == "table" and "{...}" or C.show(x))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- A Lua rendering of v, nested tables included (to a depth of 6), for
-- the decoded input that WEFT_FUZZ_SHOW=1 prints.
function C.dump(v, depth)
  depth = depth or 0
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) ~= "table" then return tostring(v) end
  if depth > 6 then return "{...}" end
  local parts = {}
  for k, x in next, v do
    parts[#parts + 1] = ("[%s] = %s"):format(C.dump(k, depth + 1),
      C.dump(x, depth + 1))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

C.showing = os.getenv("WEFT_FUZZ_SHOW") ~= nil

-- Prints what an input decoded to, with WEFT_FUZZ_SHOW set.
function C.note(what, v)
  if C.showing then io.stderr:write(what, ": ", C.dump(v), "\n") end
end

-- Whether the entries of x and y whose keys are tables match one to one
-- (tables as keys are compared as values, not by identity).
function C.same_table_keys(x, y)
  local mine, theirs = {}, {}
  for k, v in next, x do
    if type(k) == "table" then mine[#mine + 1] = { k, v } end
  end
  for k, v in next, y do
    if type(k) == "table" then theirs[#theirs + 1] = { k, v } end
  end
  if #mine ~= #theirs then return false end
  for _, e in ipairs(mine) do
    local found = false
    for i, f in ipairs(theirs) do
      if C.same(e[1], f[1]) and C.same(e[2], f[2]) then
        table.remove(theirs, i)
        found = true
        break
      end
    end
    if not found then return false end
  end
  return true
end

-- Whether a and b are equal as plain data: same types and integer or
-- float subtypes, floats equal (NaN equals NaN, 0.0 differs from -0.0),
-- tables with the same raw keys and equal values. Iterative, so a value
-- nested ten thousand deep compares as well as a flat one. Returns true,
-- or false and the path where they differ.
function C.same(a, b)
  local work, n = { a, b, "" }, 3
  while n > 0 do
    local path, y, x = work[n], work[n - 1], work[n - 2]
    n = n - 3
    if type(x) ~= type(y) then
      return false, path .. ": " .. type(x) .. " vs " .. type(y)
    end
    if type(x) == "number" then
      if math.type(x) ~= math.type(y) then
        return false, path .. ": " .. math.type(x) .. " vs " .. math.type(y)
      end
      local nan = x ~= x and y ~= y
      if not nan and (x ~= y or (x == 0 and 1 / x ~= 1 / y)) then
        return false, path .. (": %s vs %s"):format(x, y)
      end
    elseif type(x) == "table" then
      for k, v in next, x do
        if type(k) ~= "table" then
          local w = rawget(y, k)
          if w == nil then
            return false, path .. "[" .. C.show(k) .. "] missing"
          end
          work[n + 1], work[n + 2], work[n + 3] = v, w,
            #path < 200 and path .. "[" .. C.show(k) .. "]" or path
          n = n + 3
        end
      end
      for k in next, y do
        if type(k) ~= "table" and rawget(x, k) == nil then
          return false, path .. "[" .. C.show(k) .. "] added"
        end
      end
      if not C.same_table_keys(x, y) then
        return false, path .. ": entries with table keys differ"
      end
    elseif x ~= y then
      return false, path .. ": " .. C.show(x) .. " vs " .. C.show(y)
    end
  end
  return true
end

-- The metatable of weft's error values (luaL_newmetatable's name).
local ERROR_MT = debug.getregistry()["weft.Error"]

-- Whether e is a weft error value (weft.error's metatable, a string
-- kind and message).
function C.is_weft_error(e)
  return type(e) == "table" and getmetatable(e) == ERROR_MT and
    type(e.kind) == "string" and type(e.message) == "string"
end

-- Checks that e is an error a caller may see: a string, or a weft error.
-- Returns its message.
function C.check_error(e, what)
  if type(e) == "string" then return e end
  if C.is_weft_error(e) then return e.message end
  C.violation("%s raised %s, neither a string nor a weft error", what,
    C.show(e))
end

-- Listens on 127.0.0.1 with handler (weft.tcp.listen). The ports are
-- taken in turn from a set of 64, picked by the system on first use:
-- each connection the server closes first stays in TIME_WAIT on its port
-- for a minute, and binding a port costs the kernel time in proportion
-- to those, so one port for every input slows down fast, while a new
-- port each time would use up the free ones.
local ports, turn = {}, 0

function C.listen(handler)
  turn = turn % 64 + 1
  for _ = 1, 20 do
    local ok, s = pcall(weft.tcp.listen, "127.0.0.1", ports[turn] or 0,
      handler)
    if ok then
      ports[turn] = s.port
      return s
    end
    ports[turn] = nil -- taken meanwhile: pick another
  end
  error("cannot listen on 127.0.0.1")
end

return C
