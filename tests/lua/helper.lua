-- helper.lua - shared helpers of the weft Lua specs: run a test body as
-- a weft main task and fail the test on tasks left running, timers left
-- armed and task failures nobody awaited.
-- SPDX-License-Identifier: MIT
local weft = require "weft"

local H = { weft = weft }

-- The Lua running the specs, for the tests of what only some versions
-- have: a test of such a feature starts with
--   if not H.lua54 then pending(H.why.warn) return end
H.lua54 = _VERSION == "Lua 5.4"
H.luajit = type(jit) == "table"
H.lua51 = _VERSION == "Lua 5.1" -- PUC 5.1 or LuaJIT
H.puc51 = H.lua51 and not H.luajit
H.why = {
  warn = "warn() is Lua 5.4's",
  forin_yield = "PUC Lua 5.1 cannot yield inside a for-in iterator",
  jit_global_hooks = "LuaJIT's debug hooks are the VM's, not a coroutine's",
  co_close = "coroutine.close is Lua 5.4's",
  len = "Lua 5.1 has no __len for tables",
  c_upvalues = "PUC 5.1's debug library cannot reach a C function's upvalues",
}
-- The Lua's name as the CLI's --version prints it, as a pattern.
H.lua_name = H.luajit and "LuaJIT" or _VERSION:gsub("%.", "%%.")
-- The interpreter the specs run under ($WEFT_LUA_EXE, set by the test).
H.lua_exe = os.getenv("WEFT_LUA_EXE") or "lua5.4"

-- 5.3's table functions, on every version.
local pack = table.pack or function(...)
  return { n = select("#", ...), ... }
end
local unpack = table.unpack or unpack
H.pack, H.unpack = pack, unpack
-- H.each(fn, f, s, c): fn(v) for each v of `for v in f, s, c`, by a
-- for loop, or on PUC 5.1, where a for-in iterator cannot wait, by
-- calling the iterator by hand. For tests whose subject is not the loop.
function H.each(fn, f, s, c)
  if not H.puc51 then
    for v in f, s, c do fn(v) end
    return
  end
  while true do
    c = f(s, c)
    if c == nil then return end
    fn(c)
  end
end

-- Replaces user value n of userdata u, as debug.setuservalue(u, v, n)
-- does on 5.4; returns whether u has it. Before 5.4 a userdata has one
-- value (5.3) or an environment (5.1): the binding keeps its slots in
-- that table (src/lua/lcompat.h), so slot n is replaced there.
function H.setuservalue(u, v, n)
  if H.lua54 then return debug.setuservalue(u, v, n) end
  local slots
  if debug.getuservalue then
    slots = debug.getuservalue(u)
  elseif type(u) == "userdata" then
    slots = debug.getfenv(u)
  end
  if type(slots) ~= "table" or type(n) ~= "number" then return nil end
  rawset(slots, n, v)
  return u
end

-- math.type: on 5.1, whose numbers are all floats, "integer" for an
-- integral value.
H.mtype = math.type or function(x)
  if type(x) ~= "number" then return nil end
  return x == math.floor(x) and "integer" or "float"
end

-- H.closing(on_close, fn, ...): fn(...)'s results, with on_close() run
-- on every way out of fn: a return, an error, the task's unwinding when
-- cancelled. On 5.4 on_close is the __close of a to-be-closed variable,
-- as the specs wrote it (`local c <close> = ...`); elsewhere a pcall
-- that runs it and raises the error again.
if H.lua54 then
  H.closing = assert(load([[
    return function(on_close, fn, ...)
      local c <close> = setmetatable({}, { __close = on_close })
      return fn(...)
    end]]))()
else
  function H.closing(on_close, fn, ...)
    local r = pack(pcall(fn, ...))
    on_close()
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end
end

-- The live tasks other than the running one, as "#id 'name' (status)".
local function others()
  local me, out = weft.current(), {}
  for _, t in ipairs(weft.tasks()) do
    if t.task ~= me then
      out[#out + 1] = ("#%d%s (%s)"):format(t.id,
        t.name and (" '" .. t.name .. "'") or "", t.status)
    end
  end
  return out
end

-- Inside the main task, once the body has returned: lets tasks that are
-- only unwinding (cancelled, or made ready) finish. sleep(0) rather than
-- yield so that tasks of every priority get to run. Gives up after a
-- bounded number of rounds, so a task that never ends is reported rather
-- than waited for.
local function settle()
  for _ = 1, 50 do
    if #others() == 0 then return {} end
    weft.sleep(0)
  end
  local left = others()
  -- Cancel the leftovers so that weft.run can return, then fail.
  for _, t in ipairs(weft.tasks()) do
    if t.task ~= weft.current() then t.task:cancel("left running") end
  end
  return left
end

-- Asserts that the loop is idle: no live task, no armed timer, nothing
-- queued. Call it outside weft.run.
function H.check_clean(what)
  local s = weft.stats()
  what = what and (what .. ": ") or ""
  assert(s.live == 0, what .. s.live .. " task(s) still live after weft.run")
  assert(s.timers == 0, what .. s.timers .. " timer(s) still armed")
  assert(s.ready == 0, what .. s.ready .. " task(s) still queued")
  assert(#weft.tasks() == 0, what .. "weft.tasks() is not empty")
end

-- Runs fn(...) as the main task of weft.run and returns its values (or
-- raises its error, the same value). Fails if a task other than the main
-- one is still running when fn returns (after letting cancelled tasks
-- unwind), if a task failed without anybody observing it, or if anything
-- is live or armed once weft.run has returned.
function H.run(fn, ...)
  local before = weft.stats()
  H.check_clean("before the test")
  local left
  local r = pack(pcall(weft.run, function(...)
    local v = pack(pcall(fn, ...))
    left = settle()
    if not v[1] then error(v[2], 0) end
    return unpack(v, 2, v.n)
  end, ...))
  local after = weft.stats()
  -- A failed body is the news; leftovers are likely its consequence.
  if not r[1] then error(r[2], 0) end
  H.check_clean()
  if left and #left > 0 then
    error("tasks left running when the test body returned: "
      .. table.concat(left, ", "), 2)
  end
  assert(after.unhandled == before.unhandled,
    (after.unhandled - before.unhandled)
    .. " task failure(s) nobody awaited (see stderr)")
  return unpack(r, 2, r.n)
end

-- it("...", H.async(function() ... end)): the body runs under H.run.
function H.async(fn)
  return function() return H.run(fn) end
end

-- Calls f(...) expecting it to raise; returns the error value.
function H.raises(f, ...)
  local r = pack(pcall(f, ...))
  assert(not r[1], "expected an error, got success")
  return r[2]
end

-- Asserts that f(...) raises an error whose text contains plain text s.
function H.raises_match(s, f, ...)
  local e = H.raises(f, ...)
  local msg = tostring(e)
  assert(msg:find(s, 1, true),
    ("expected an error containing %q, got %q"):format(s, msg))
  return e
end

-- Asserts that f(...) raises a weft cancellation error; returns it.
function H.raises_cancel(f, ...)
  local e = H.raises(f, ...)
  assert(weft.is_cancelled(e), "expected a cancellation, got: "
    .. tostring(e))
  return e
end

-- An event log: log(x) or log.add(x) appends, log.items is the list.
function H.log()
  local items = {}
  local function add(v) items[#items + 1] = v end
  return setmetatable({ items = items, add = add }, {
    __call = function(_, v) add(v) end,
  })
end

-- Lets every task that is ready now, and those they make ready, run.
-- sleep(0) serves all priorities (weft.yield would starve lower ones).
function H.settle(rounds)
  for _ = 1, rounds or 3 do weft.sleep(0) end
end

-- Runs the weft CLI ($WEFT_BIN): weft [before...] [script-file] [args...]
-- with stdin from /dev/null. script, if given, is Lua source written to
-- a temporary file. Returns stdout, stderr, the exit status and the
-- script's file name (removed by then).
local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.shell_quote = q

function H.cli(args, script, before)
  local bin = assert(os.getenv("WEFT_BIN"), "WEFT_BIN is not set")
  local parts = { q(bin) }
  for _, a in ipairs(before or {}) do parts[#parts + 1] = q(a) end
  local file
  if script then
    file = os.tmpname()
    local f = assert(io.open(file, "w"))
    f:write(script)
    f:close()
    parts[#parts + 1] = q(file)
  end
  for _, a in ipairs(args or {}) do parts[#parts + 1] = q(a) end
  -- The shell writes the exit status to a file: 5.1's close of a popen
  -- file does not give it. A signal N gives 128 + N.
  local errfile, codefile = os.tmpname(), os.tmpname()
  local p = assert(io.popen(table.concat(parts, " ") .. " 2>" .. q(errfile)
    .. " </dev/null; echo $? >" .. q(codefile), "r"))
  local out = p:read("*a")
  p:close()
  local ef = assert(io.open(errfile, "r"))
  local err = ef:read("*a")
  ef:close()
  local cf = assert(io.open(codefile, "r"))
  local code = cf:read("*n")
  cf:close()
  os.remove(errfile)
  os.remove(codefile)
  if file then os.remove(file) end
  return out, err, code, file
end

return H
