-- marshal.lua - fuzz target: values crossing between Lua and weft values
-- through host function calls (marshal.c's echo and make).
--   A: a Lua value built from the input goes to echo and comes back: it
--      must come back equal (same keys, types, integer/float subtypes,
--      bits of floats), or, when it holds what cannot cross (a function,
--      a cycle, nesting deeper than 200), fail with a clear string error
--      naming echo and the argument.
--   B: make turns the input into a weft value of any shape (nil and NaN
--      keys, repeated keys, nesting to half a million levels) and pushes
--      it to Lua; that Lua value must then round-trip through echo as in
--      A. Nothing may crash; every error is a string or a weft error.
-- SPDX-License-Identifier: MIT
local weft, C, F = ...
local echo, make = F.echo, F.make

local MAX_DEPTH = 200 -- docs/c-api.md: deeper nesting raises

local ints = { 0, 1, -1, 2, 3, 7, 255, 256, -256, 1 << 31, 1 << 53,
  (1 << 53) + 1, math.maxinteger, math.mininteger }
local floats = { 0.0, -0.0, 0.5, -1.5, 1.0, 3.0, 2.0 ^ 53, 2.0 ^ 63,
  -2.0 ^ 63, 1e308, 5e-324, 1 / 0, -1 / 0, 0 / 0, math.pi }
local strs = { "", "a", "items", "1", "key with space", "\0", "n", "é",
  ("x"):rep(300) }
-- Values that cannot cross (the message names their type).
local foreign = { print, coroutine.create(print), io.stdout }

local gen

local function scalar(R)
  local op = R.byte() % 6
  if op == 0 then return R.byte() % 2 == 1 end
  if op == 1 then return R.pick(ints) end
  if op == 2 then return (string.unpack("<i8", R.bytes(8) .. ("\0"):rep(8))) end
  if op == 3 then return R.pick(floats) end
  if op == 4 then return (string.unpack("<d", R.bytes(8) .. ("\0"):rep(8))) end
  if R.byte() % 2 == 0 then return R.pick(strs) end
  return R.bytes(R.byte() % 24)
end

-- A key: never nil nor NaN (Lua refuses them); a float with an integer
-- value becomes that integer in the table.
local function key(R)
  local k = scalar(R)
  if k ~= k then return 0.25 end
  return k
end

-- ctx.done: finished tables (sharing one is no cycle), shared at most a
-- few times (a shared table is copied each time it is met: sharing
-- doubles the work); path: the tables being built (referring to one
-- makes a cycle).
local function table_of(R, ctx, path)
  local t = {}
  path[#path + 1] = t
  local shape, n = R.byte() % 4, R.byte() % 8
  for i = 1, n do
    if R.left() <= 0 then break end
    local v = gen(R, ctx, path)
    if v ~= nil then
      if shape == 0 then -- a sequence
        t[i] = v
      elseif shape == 1 then -- a sequence with holes
        t[i + R.byte() % 3] = v
      elseif shape == 2 then
        t[key(R)] = v
      else -- integer keys around the border: half arrays
        t[R.byte() % 6 - 2] = v
      end
    end
  end
  if R.byte() % 8 == 0 then -- conversion must read raw, not through these
    setmetatable(t, { __index = function() return 1 end,
      __len = function() return 3 end,
      __pairs = function() error("pairs") end })
  end
  path[#path] = nil
  ctx.done[#ctx.done + 1] = t
  return t
end

function gen(R, ctx, path)
  local op = R.byte() % 16
  if R.left() <= 0 then op = 0 end
  if op < 7 then return scalar(R) end
  if op < 12 then return table_of(R, ctx, path) end
  if op == 12 then -- a chain of up to 511 tables
    local k = R.byte() + (R.byte() % 2) * 256
    local v = gen(R, ctx, path)
    for i = 1, k do v = (i % 2 == 0) and { v } or { x = v } end
    return v
  end
  if op == 13 and #ctx.done > 0 and ctx.shared < 4 then
    ctx.shared = ctx.shared + 1
    return ctx.done[R.byte() % #ctx.done + 1]
  end
  if op == 14 and #path > 0 then return path[R.byte() % #path + 1] end
  if op == 15 then return R.pick(foreign) end
  return nil
end

-- What converting v at depth must refuse, as the docs say, into errs:
-- a value nested deeper than MAX_DEPTH, a table on its own path, a
-- value of a type that cannot cross. Keys count as one level down.
local function refusals(v, depth, onpath, errs)
  if depth > MAX_DEPTH then errs["nested too deeply"] = true return end
  local ty = type(v)
  if ty == "function" or ty == "thread" or ty == "userdata" then
    errs["cannot cross threads"] = true
  elseif ty == "table" then
    if onpath[v] then errs["cycle detected"] = true return end
    onpath[v] = true
    for k, x in next, v do
      refusals(k, depth + 1, onpath, errs)
      refusals(x, depth + 1, onpath, errs)
    end
    onpath[v] = nil
  end
end

-- What echo(args[1..n]) must refuse. The arguments convert first, each
-- at depth 0; if they all cross, the result (the array of the arguments,
-- so each argument one level deeper) has the same limit and can only be
-- too deep. Each pass stops at its first error, whose reason depends on
-- the walk order, so any reason found is accepted.
local function expected_refusals(args, n)
  local errs = {}
  for i = 1, n do refusals(args[i], 0, {}, errs) end
  if next(errs) then return errs end
  for i = 1, n do refusals(args[i], 1, {}, errs) end
  return errs
end

-- Checks the error of a conversion that had to fail: a string naming the
-- function and the argument (or its result), for one of the reasons
-- expected.
local function check_refusal(fname, err, expected)
  local msg = C.check_error(err, fname)
  if not msg:find("^" .. fname .. ": args%[%d+%]") and
    not msg:find("^" .. fname .. ": result ") then
    C.violation("%s's refusal does not name it and the argument: %s",
      fname, C.show(msg))
  end
  for why in pairs(expected) do
    if msg:find(why, 1, true) then return end
  end
  C.violation("%s refused for an unexpected reason: %s", fname, C.show(msg))
end

local function check_echo(args, n, ok, res, expected)
  if next(expected) then
    if ok then
      local why = next(expected)
      C.violation("echo converted a value that cannot cross (%s)", why)
    end
    return check_refusal("echo", res, expected)
  end
  if not ok then
    C.violation("echo failed on plain data: %s", C.show(res))
  end
  if type(res) ~= "table" then C.violation("echo returned %s", C.show(res)) end
  for i = 1, n do
    local same, where = C.same(args[i], res[i])
    if not same then
      C.violation("argument %d changed crossing: at %s", i, where)
    end
  end
  for k in pairs(res) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      C.violation("echo's result has an extra key %s", C.show(k))
    end
  end
end

local function mode_a(R)
  local ctx, args = { done = {}, shared = 0 }, {}
  local n = R.byte() % 4 + 1
  for i = 1, n do args[i] = gen(R, ctx, {}) end
  C.note("args", args)
  local ok, res = pcall(echo, table.unpack(args, 1, n))
  check_echo(args, n, ok, res, expected_refusals(args, n))
end

local function mode_b(R)
  local bytes = R.rest()
  local ok, v = pcall(make, bytes)
  if not ok then
    local msg = C.check_error(v, "make")
    if bytes:byte(1) == 0xff then
      local want = "make: " .. (bytes:sub(2):match("^[^%z]*"))
      if msg ~= want then
        C.violation("a rejection reads %s, not %s", C.show(msg), C.show(want))
      end
    elseif msg ~= "make: not enough memory" and
      not msg:find("nested too deeply", 1, true) then
      C.violation("make failed: %s", C.show(msg))
    end
    return
  end
  if bytes:byte(1) == 0xff then C.violation("a rejection returned a value") end
  local ok2, res = pcall(echo, v)
  check_echo({ v }, 1, ok2, res, expected_refusals({ v }, 1))
end

return function(data)
  local R = C.reader(data)
  if R.byte() % 4 == 0 then mode_b(R) else mode_a(R) end
end
