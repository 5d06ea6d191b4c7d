-- gen.lua - the random script-API generator: calls every function of
-- the weft table and the methods of its objects with random arguments,
-- valid and not, from many tasks at once, cancels at random and collects
-- garbage at random, and checks what the docs promise:
--   - every error raised is a string or a weft error (kind and message),
--     or an error value a task of ours raised, passed on unchanged;
--   - every task ends, as its body says: fulfilled with exactly what it
--     returned, rejected with exactly what it raised, or cancelled, and
--     cancelled only if it, an ancestor, or a combinator, timeout or group
--     it was given to could have cancelled it;
--   - a value sent on a channel (send returned) is received exactly once,
--     one whose send raised never; semaphore permits add up; a promise
--     settles once, with what resolve or reject said;
--   - weft.stats() adds up, and at the end nothing is left running.
-- Run it under the weft CLI, built with ASan for the memory checks:
--   weft tests/gen/gen.lua [CALLS [SEED]]
-- It prints the number of calls it made. A violation prints what and
-- where (seed and call number) and exits with status 2.
-- SPDX-License-Identifier: MIT
local weft = rawget(_G, "weft") or require("weft")

local CALLS = math.tointeger(tonumber(arg and arg[1] or nil)) or 50000
local SEED = math.tointeger(tonumber(arg and arg[2] or nil)) or 1
math.randomseed(SEED)
local random = math.random
local pack, unpack = table.pack, table.unpack

local calls = 0
local counts = {} -- calls per function name, for the summary

local function violation(fmt, ...)
  io.stderr:write(("gen: invariant violated (seed %d, call %d): "):format(
    SEED, calls), fmt:format(...), "\n", debug.traceback(), "\n")
  os.exit(2)
end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v:sub(1, 120)) end
  if type(v) == "table" and type(v.message) == "string" then
    return ("{kind=%s, message=%q}"):format(tostring(v.kind), v.message)
  end
  return tostring(v)
end

--------------------------------------------------------------- errors

-- Error values our bodies raise: tables with a gen_token field.
local function is_ours(e)
  return type(e) == "table" and rawget(e, "gen_token") ~= nil
end

local function is_weft_error(e)
  return type(e) == "table" and type(rawget(e, "kind")) == "string" and
    type(rawget(e, "message")) == "string"
end

local function check_error(name, e)
  if type(e) == "string" or is_weft_error(e) or is_ours(e) then return e end
  violation("%s raised %s, neither a string nor a weft error", name, show(e))
end

-- Calls f(...) as API function name, protected; returns pcall's results
-- packed. Counts the call.
local function call(name, f, ...)
  calls = calls + 1
  counts[name] = (counts[name] or 0) + 1
  local r = pack(pcall(f, ...))
  if not r[1] then check_error(name, r[2]) end
  return r
end

--------------------------------------------------------- random values

-- Junk arguments. Its functions do nothing and raise nothing: a task
-- running one that nobody holds must not fail.
local JUNK = { n = 20, true, false, 0, -1, 1.5, 0 / 0, math.huge,
  -math.huge, math.mininteger, math.maxinteger, "", "x", ("y"):rep(300),
  {}, { 1, 2 }, function() end, coroutine.create(print), io.stdout, nil }

local function pick(list) return list[random(#list)] end

local function junk() return JUNK[random(JUNK.n)] end

local function small_ms()
  local k = random(8)
  if k <= 4 then return random(0, 2) end
  if k <= 6 then return 0.5 end
  return random(0, 20)
end

----------------------------------------------------------- the records

-- About the records. Each task we spawn (or weft spawns for us: after,
-- every, next, catch, finally) has an entry {t, expect, exposed, parent}:
-- expect is {"ret", values} (fulfilled with exactly these), {"raise",
-- err} (rejected with this value), or {"any"} (whatever it did, its
-- errors were checked where raised). exposed: something may cancel it.
-- entry_of maps a task to its entry (weak keys). Promises, channels and
-- semaphores have records of what was done to them; each kind lives in
-- a pool of at most POOL items. A promise leaving its pool is checked; a
-- channel, once no task uses it; semaphores, at the end.
local POOL = 48
local tasks, entry_of = {}, setmetatable({}, { __mode = "k" })
local promises, channels, semaphores = {}, {}, {}
local retired = {} -- closed channels, checked once no task uses them
local token_n = 0

local function token()
  token_n = token_n + 1
  return { gen_value = token_n }
end

local function exposed(e)
  while e do
    if e.exposed then return true end
    e = e.parent
  end
  return false
end

local function expose(x)
  local e = entry_of[x]
  if e then e.exposed = true end
end

-- A task spawned by a task we did not spawn ourselves (the function item
-- of a combinator, a timeout's) may be cancelled with it: exposed.
local function register(t, expect)
  local parent = entry_of[weft.current()]
  local e = { t = t, expect = expect, parent = parent,
    exposed = parent == nil }
  tasks[#tasks + 1] = e
  entry_of[t] = e
  return e
end

-- Whether the values v (packed) are exactly want (packed).
local function same_values(v, want)
  if v.n ~= want.n then return false end
  for i = 1, v.n do
    local a, b = v[i], want[i]
    if not (rawequal(a, b) or (a ~= a and b ~= b)) then return false end
  end
  return true
end

-- Checks the outcome of an ended task against its entry. Observes it.
local function check_task(e)
  local t = e.t
  local st = t:state()
  if st == "pending" then return false end
  calls = calls + 1
  local r = pack(pcall(t.result, t))
  local exp = e.expect
  if st == "cancelled" then
    if r[1] or not weft.is_cancelled(r[2]) then
      violation("a cancelled task's result gave %s %s", r[1], show(r[2]))
    end
    if not exposed(e) then
      violation("task %s was cancelled, but nothing could cancel it",
        tostring(t))
    end
  elseif st == "fulfilled" then
    if not r[1] then violation("a fulfilled task raised %s", show(r[2])) end
    if exp[1] == "raise" then
      violation("task %s returned, its body raises", tostring(t))
    end
    local vals = pack(unpack(r, 2, r.n))
    if exp[1] == "ret" and not same_values(vals, exp[2]) then
      violation("task %s returned %s (%d values), its body returns %s",
        tostring(t), show(vals[1]), vals.n, show(exp[2][1]))
    end
  elseif st == "rejected" then
    if r[1] then violation("a rejected task's result returned") end
    check_error("task:result", r[2])
    if exp[1] == "ret" then
      violation("task %s failed with %s, its body returns", tostring(t),
        show(r[2]))
    end
    if exp[1] == "raise" and not rawequal(r[2], exp[2]) then
      violation("task %s failed with %s, its body raises %s", tostring(t),
        show(r[2]), show(exp[2]))
    end
  else
    violation("task state %s", show(st))
  end
  return true
end

local check_channel, quiet

-- Drops the ended tasks from the records, checking each, and the retired
-- channels nobody uses any more.
local function reap()
  local keep = {}
  for _, e in ipairs(tasks) do
    if not check_task(e) then keep[#keep + 1] = e end
  end
  tasks = keep
  keep = {}
  for _, c in ipairs(retired) do
    if quiet(c) then check_channel(c) else keep[#keep + 1] = c end
  end
  retired = keep
end

local function any_task()
  local e = tasks[#tasks > 0 and random(#tasks) or 1]
  return e and e.t
end

local function any_future()
  local k = random(3)
  if k == 1 and #promises > 0 then return pick(promises).f end
  return any_task()
end

-- Something that is not a future: awaiting it raises at once.
local function not_a_future()
  local k = random(4)
  if k == 1 and #channels > 0 then return pick(channels).ch end
  if k == 2 and #semaphores > 0 then return pick(semaphores).s end
  return junk()
end

----------------------------------------------------------------- bodies

local actions -- the list of random actions, below
local hostile, spawn_recording
local run_actions

-- A task body and what it gives: returns fn, expect. Its errors say
-- where it was made (origin), should one be reported. An unowned body is
-- run by a task weft spawns for us (a combinator's item, a timeout's
-- function), which we cannot observe: it never fails once cancelled
-- (a body that catches its cancellation and then raises something else
-- fails for real, and weft reports that failure, as it should).
local function body(depth, unowned, origin)
  local k = random(unowned and 3 or depth > 1 and 4 or 7)
  if k == 1 then
    local vals = pack(token(), junk(), random(3) == 1 and nil or 7)
    return function() return unpack(vals, 1, vals.n) end, { "ret", vals }
  end
  if k == 2 then
    local err = random(2) == 1 and
      { gen_token = token_n + 1, origin = origin } or
      ("gen error %d (%s)"):format(token_n + 1, origin)
    token_n = token_n + 1
    return function() error(err, 0) end, { "raise", err }
  end
  if k == 3 then -- waits a little first
    local vals, ms = pack(token()), small_ms()
    return function()
      call("weft.sleep", weft.sleep, ms)
      return unpack(vals, 1, vals.n)
    end, { "ret", vals }
  end
  if k == 4 then -- raises after a yield
    local err = { gen_token = token(), origin = origin }
    return function()
      call("weft.yield", weft.yield)
      error(err, 0)
    end, { "raise", err }
  end
  if k == 5 then -- random actions; every error caught
    local vals, n = pack(token()), random(1, 6)
    return function()
      run_actions(n, depth + 1)
      return unpack(vals, 1, vals.n)
    end, { "ret", vals }
  end
  if k == 6 then -- waits for what may never come; only a cancel ends it
    local vals = pack(token())
    return function()
      local f = weft.future()
      call("await", weft.await, f)
      return unpack(vals, 1, vals.n)
    end, { "ret", vals }
  end
  -- swallows its cancellation once, then waits again (which raises)
  local vals = pack(token())
  return function()
    call("weft.sleep", weft.sleep, small_ms())
    call("weft.sleep", weft.sleep, small_ms())
    return unpack(vals, 1, vals.n)
  end, { "ret", vals }
end

------------------------------------------------------------- spawning

local PRIOS = { "critical", "high", "normal", "low", "idle" }

local function spawn_opts()
  local k = random(6)
  if k == 1 then return { name = "gen" } end
  if k == 2 then return { priority = pick(PRIOS) } end
  if k == 3 then return { name = junk(), priority = junk() } end
  return nil
end

local function spawn(depth)
  local fn, expect = body(depth, false, "spawn")
  local opts = spawn_opts()
  local r
  if opts then
    r = call("weft.spawn", weft.spawn, opts, fn)
  else
    r = call("weft.spawn", weft.spawn, fn)
  end
  if r[1] then register(r[2], expect) end
  return r[1] and r[2]
end

------------------------------------------------------------- promises

local check_promise

local function new_promise()
  local r = call("weft.future", weft.future)
  if not r[1] then violation("weft.future raised %s", show(r[2])) end
  local p = { f = r[2], resolve = r[3], reject = r[4] }
  if #promises >= POOL then
    check_promise(table.remove(promises, random(#promises)))
  end
  promises[#promises + 1] = p
  return p
end

-- Settles p at random; a settle must succeed exactly once.
local function settle_promise(p)
  local k, r = random(3), nil
  if k == 1 then
    local vals = pack(token(), junk())
    r = call("resolve", p.resolve, unpack(vals, 1, vals.n))
    if r[2] == true then p.outcome = { "ok", vals } end
  elseif k == 2 then
    local err = { gen_token = token() }
    r = call("reject", p.reject, err)
    if r[2] == true then p.outcome = { "err", err } end
  else
    r = call("future:cancel", p.f.cancel, p.f, pick({ nil, "why", 3 }))
    if r[2] == true then p.outcome = { "cancelled" } end
  end
  if not r[1] then violation("settling a promise raised %s", show(r[2])) end
  if r[2] == true and p.settled then
    violation("a promise settled twice")
  end
  if r[2] == false and not p.settled then
    violation("a pending promise refused to settle")
  end
  p.settled = p.settled or r[2] == true
end

function check_promise(p)
  local st = p.f:state()
  local r = call("future:result", p.f.result, p.f)
  local o = p.outcome
  if not o then
    if st ~= "pending" or r[1] then
      violation("an unsettled promise is %s", st)
    end
  elseif o[1] == "ok" then
    if st ~= "fulfilled" or not r[1] or
      not same_values(pack(unpack(r, 2, r.n)), o[2]) then
      violation("a resolved promise gives %s %s", st, show(r[2]))
    end
  elseif o[1] == "err" then
    if st ~= "rejected" or r[1] or not rawequal(r[2], o[2]) then
      violation("a rejected promise gives %s %s", st, show(r[2]))
    end
  elseif st ~= "cancelled" or r[1] or not weft.is_cancelled(r[2]) then
    violation("a cancelled promise gives %s %s", st, show(r[2]))
  end
end

------------------------------------------------------------- channels

-- About a channel record: sent[v] = "ok" once a send of v returned,
-- "failed" if it raised; got[v] counts receipts. Each value is a token.
local function new_channel()
  local cap = pick({ 0, 0, 1, 2, 5, -1, 1.5, "3" })
  local r = call("weft.channel", weft.channel, cap)
  if not r[1] then return nil end
  local c = { ch = r[2], sent = {}, got = {} }
  if #channels >= POOL then
    local old = table.remove(channels, random(#channels))
    old.retired = true
    call("ch:close", old.ch.close, old.ch)
    retired[#retired + 1] = old
  end
  channels[#channels + 1] = c
  return c
end

local function received(c, v, name)
  if v == nil then return end
  if type(v) ~= "table" or not v.gen_value then
    violation("%s received %s, which nobody sent", name, show(v))
  end
  c.got[v] = (c.got[v] or 0) + 1
  if c.got[v] > 1 then violation("%s received a value twice", name) end
  if c.sent[v] == "failed" then
    violation("%s received a value whose send raised", name)
  end
end

local function send(c, v, name, f)
  c.sent[v] = "pending"
  local r = call(name, f, c.ch, v)
  if r[1] and (name ~= "ch:try_send" or r[2] == true) then
    c.sent[v] = "ok"
  else
    if c.got[v] then violation("%s failed, but its value arrived", name) end
    c.sent[v] = "failed"
  end
end

-- Whether no task is sending on c or receiving from it.
function quiet(c)
  if (c.receivers or 0) > 0 then return false end
  for _, how in pairs(c.sent) do
    if how == "pending" then return false end
  end
  return true
end

-- Once nobody can use it any more: every value sent was received once.
function check_channel(c)
  while true do
    local r = call("ch:try_recv", c.ch.try_recv, c.ch)
    if not r[1] or r[2] == nil then break end
    received(c, r[2], "ch:try_recv")
  end
  for v, how in pairs(c.sent) do
    if how == "ok" and not c.got[v] then
      violation("a value sent on a channel was never received")
    end
  end
end

-------------------------------------------------------------- semaphores

local function new_semaphore()
  local n = pick({ 0, 1, 1, 2, 3, -1, 1.5 })
  local r = call("weft.semaphore", weft.semaphore, n)
  if not r[1] or math.type(n) ~= "integer" then return nil end
  local s = { s = r[2], n = n, taken = 0 }
  if #semaphores >= POOL then table.remove(semaphores, random(#semaphores)) end
  semaphores[#semaphores + 1] = s
  return s
end

local function check_semaphore(s, quiet)
  local r = call("s:available", s.s.available, s.s)
  if not r[1] then violation("s:available raised %s", show(r[2])) end
  local a = r[2]
  if math.type(a) ~= "integer" or a < 0 or a > s.n then
    violation("a semaphore of %d has %s permits", s.n, show(a))
  end
  if quiet and a ~= s.n - s.taken then
    violation("a semaphore of %d has %d permits, %d taken", s.n, a, s.taken)
  end
end

-- Takes a permit, holds it a little, gives it back.
local function use_semaphore(s)
  local r = call("s:acquire", s.s.acquire, s.s)
  if not r[1] then return end
  s.taken = s.taken + 1
  call("weft.sleep", weft.sleep, small_ms())
  -- Another task may have released our permit already (a release needs
  -- no acquire of its own): then this one raises.
  r = call("s:release", s.s.release, s.s)
  if r[1] then s.taken = s.taken - 1 end
end

------------------------------------------------------------------ actions

local cos = setmetatable({}, { __mode = "v" }) -- tasks' coroutines seen

-- A wait where the task cannot yield must fail with weft's own error.
local function must_refuse(name, f, ...)
  local r = call(name, f, ...)
  if r[1] then violation("%s waited where it cannot", name) end
  local msg = tostring(r[2])
  if not msg:find("cannot wait", 1, true) and not weft.is_cancelled(r[2])
  then
    violation("%s: %s", name, show(r[2]))
  end
end

-- What a script may do with Lua's own tools: wait inside C callbacks and
-- nested coroutines, resume a task's coroutine, reach weft's private
-- functions through the debug library and call them with junk. Nothing
-- may crash; every error must be a string or a weft error.
-- The public functions, by name (sorted: the seed decides the picks).
-- spawning: those that start a task of weft's own around what they are
-- given; one called with an upvalue replaced (check_fn by a function
-- that lets anything through) would start a task that fails later in
-- weft's Lua code, a failure reported as unhandled, as it should be.
local function weft_functions()
  local out = {}
  for _, lib in ipairs({ "", "fs.", "tcp.", "http.", "dns.", "process." })
  do
    local t = lib == "" and weft or weft[lib:sub(1, -2)]
    for k, v in pairs(t) do
      if type(v) == "function" then out[#out + 1] = { lib .. k, v } end
    end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end
local all_functions = weft_functions()
local spawning = { after = true, every = true, spawn = true, timeout = true,
  all = true, all_settled = true, race = true, any = true, group = true,
  run = true, ["tcp.listen"] = true }

-- Lua's own functions: those in weft's upvalues are not weft's to test.
local stdlib = {}
for _, lib in ipairs({ _G, string, table, math, io, os, coroutine, debug,
  utf8 }) do
  for _, f in pairs(lib) do stdlib[f] = true end
end

-- Whether f is one of weft's private C functions that junk may be given
-- to. Left out: spawn_after, which spawns a task running what it is
-- given (that task's failure is reported as unhandled, as it should be),
-- and the resolvers, which would look a junk string up in the DNS.
local function private(f, key)
  return type(f) == "function" and not stdlib[f] and key ~= "spawn_after"
    and not tostring(key):find("resolve") and
    debug.getinfo(f, "S").what == "C"
end

function hostile()
  local k = random(8)
  if k == 1 then
    must_refuse("wait in table.sort", table.sort, { 3, 1, 2 }, function(a, b)
      weft.sleep(0)
      return a < b
    end)
  elseif k == 2 then
    must_refuse("wait in string.gsub", string.gsub, "abc", "%w", function()
      weft.yield()
    end)
  elseif k == 3 then
    -- A coroutine the task resumes may wait (the whole task waits)...
    local r = call("wait in a nested coroutine", coroutine.wrap(function()
      weft.sleep(0)
      return "woke"
    end))
    if r[1] and r[2] ~= "woke" then
      violation("a nested coroutine's wait gave %s", show(r[2]))
    elseif not r[1] and not weft.is_cancelled(r[2]) then
      violation("wait in a nested coroutine: %s", show(r[2]))
    end
    -- ...but not one resumed inside a C callback.
    must_refuse("wait in a coroutine in table.sort", table.sort, { 2, 1 },
      function(a, b)
        coroutine.wrap(function() weft.sleep(0) end)()
        return a < b
      end)
  elseif k == 4 then
    must_refuse("wait in __tostring", tostring, setmetatable({}, {
      __tostring = function() weft.sleep(0) return "x" end }))
  elseif k == 5 then -- a task's coroutine, resumed or closed from outside
    local co = cos[random(8)]
    if co then
      local f = random(2) == 1 and coroutine.resume or coroutine.close
      local r = call("coroutine.resume", f, co, junk())
      if r[1] and r[2] == true and coroutine.status(co) ~= "dead" then
        violation("a task's coroutine was resumed from outside")
      end
    else
      spawn_recording()
    end
  else -- weft's private functions, reached through the debug library
    local fname, f = unpack(pick(all_functions))
    local i = random(4)
    local name, v = debug.getupvalue(f, i)
    if type(v) == "table" and v ~= weft then
      local keys = {}
      for key, x in pairs(v) do
        if private(x, key) then keys[#keys + 1] = key end
      end
      table.sort(keys) -- pairs' order is not the seed's
      if #keys > 0 then
        local key = pick(keys)
        call("I." .. tostring(key), v[key], junk(), junk(), junk())
      end
    elseif private(v, name) then
      call("private " .. tostring(name), v, junk(), junk())
    elseif name and k == 8 and not spawning[fname] then
      debug.setupvalue(f, i, junk()) -- replaced, the function called, put back
      call("corrupted function", f, junk())
      debug.setupvalue(f, i, v)
    end
  end
end

-- A task that lets its coroutine be seen, then waits a little.
function spawn_recording()
  local r = call("weft.spawn", weft.spawn, function()
    cos[#cos % 8 + 1] = coroutine.running()
    call("weft.sleep", weft.sleep, small_ms())
  end)
  if r[1] then register(r[2], { "any" }) end
end

-- A list of futures, tasks and functions (and junk) for combinators;
-- the tasks become exposed. Returns the list and its expected first
-- values (a set of tokens the combinator may return). Any task may wait
-- for any other this way (and with weft.timeout below), its own parent
-- included: weft.timeout and the combinators wait for the tasks they
-- cancel to end, but not for one that waits for them in turn.
local function item_list()
  local list, firsts, n = {}, {}, random(0, 4)
  local bad = random(8) == 1
  for i = 1, n do
    local k = random(bad and 8 or 7)
    if k <= 3 then
      local t = any_task()
      list[i] = t or weft.future() -- a plain future, never settled
      if t then expose(t) else firsts.unknown = true end
    elseif k <= 5 then
      local fn, exp = body(3, true, "combinator item")
      list[i] = fn
      if exp[1] == "ret" then firsts[exp[2][1]] = true end
    elseif k <= 7 then
      local p = #promises > 0 and pick(promises) or new_promise()
      list[i] = p.f
      if p.outcome and p.outcome[1] == "ok" then
        firsts[p.outcome[2][1]] = true
      else
        firsts.unknown = true -- it may be resolved with anything
      end
    else
      list[i] = junk() or false
    end
    local e = entry_of[list[i]]
    if e and e.expect[1] == "ret" then firsts[e.expect[2][1]] = true end
    if e and e.expect[1] == "any" then firsts.unknown = true end
  end
  return list, firsts
end

-- Runs a combinator on a list under a short timeout, so the caller never
-- waits for long; checks what it returns comes from an item.
local function combinator(name)
  local list, firsts = item_list()
  local f = weft[name]
  -- The combinator's own outcome is taken inside the timeout's function:
  -- a failure arriving after the deadline would otherwise be a failure of
  -- that function, reported as unhandled.
  local r = call("weft.timeout", weft.timeout, small_ms() + 1, function()
    return call("weft." .. name, f, list)
  end)
  if not r[1] or not r[2][1] then return end
  local v = r[2][2]
  if name == "race" or name == "any" then
    if type(v) == "table" and v.gen_value and not firsts[v] and
      not firsts.unknown then
      violation("weft.%s returned a value no item gives", name)
    end
  elseif type(v) ~= "table" or math.type(v.n) ~= "integer" or v.n ~= #list
  then
    violation("weft.%s returned %s for %d items", name, show(v), #list)
  elseif name == "all_settled" then
    for i = 1, v.n do
      local s = v[i]
      if type(s) ~= "table" or (s.ok ~= true and s.ok ~= false) then
        violation("weft.all_settled entry %d is %s", i, show(s))
      end
      if not s.ok then check_error("weft.all_settled", s.error) end
    end
  end
end

local function group_action(depth)
  local r = call("weft.timeout", weft.timeout, small_ms() + 1, function()
    return call("weft.group", weft.group, function(g)
      for _ = 1, random(0, 4) do
        local fn, expect = body(3, false, "group child")
        local s = call("g:spawn", g.spawn, g, fn)
        if s[1] then register(s[2], expect).exposed = true end
      end
      local k = random(6)
      if k == 1 then call("g:cancel", g.cancel, g) end
      if k == 2 then call("g:join_next", g.join_next, g) end
      if k == 3 then
        local n = call("g:size", g.size, g)
        if not n[1] or math.type(n[2]) ~= "integer" or n[2] < 0 then
          violation("g:size gave %s", show(n[2]))
        end
      end
      if k == 4 then call("g:spawn", g.spawn, junk(), junk()) end
      if k == 5 then run_actions(random(1, 3), depth + 1) end
      return token()
    end)
  end)
  if r[1] and r[2][1] and (type(r[2][2]) ~= "table" or
    not r[2][2].gen_value) then
    violation("weft.group returned %s, not fn's result", show(r[2][2]))
  end
end

-- Files under a directory of our own, removed at the end.
local dir = os.tmpname()
os.remove(dir)

local function path()
  local k = random(10)
  if k <= 7 then return dir .. "/" .. pick({ "a", "b", "c", "d/e" }) end
  if k == 8 then return dir end
  return pick({ "", dir .. "/\0x", 5, {} })
end

local function fs_action()
  local fs, k = weft.fs, random(12)
  if k == 1 then call("fs.write", fs.write, path(), pick({ "data\n", "", 7 }))
  elseif k == 2 then call("fs.read", fs.read, path())
  elseif k == 3 then call("fs.append", fs.append, path(), "more\n")
  elseif k == 4 then call("fs.stat", fs.stat, path())
  elseif k == 5 then call("fs.exists", fs.exists, path())
  elseif k == 6 then call("fs.list", fs.list, path())
  elseif k == 7 then
    call("fs.mkdir", fs.mkdir, dir .. "/d", { recursive = true })
  elseif k == 8 then call("fs.remove", fs.remove, path())
  elseif k == 9 then call("fs.rename", fs.rename, path(), path())
  elseif k == 10 then
    local r = call("fs.lines", fs.lines, path())
    if r[1] then
      for _ = 1, 3 do
        local l = call("lines", r[2])
        if not l[1] or l[2] == nil then break end
      end
    end
  else
    local r = call("fs.open", fs.open, path(), pick({ "r", "w", "a+", "x" }))
    if r[1] then
      local f = r[2]
      call("file:write", f.write, f, "line\n", 42)
      call("file:seek", f.seek, f, pick({ "set", "end", "bad" }), 0)
      call("file:read", f.read, f, pick({ "l", "a", 3, "n" }))
      local it = call("file:lines", f.lines, f, pick({ "l", "L", 2 }))
      if it[1] then call("lines", it[2]) end
      call("file:close", f.close, f)
      call("file:closed", f.closed, f)
      call("file:read", f.read, f)
    end
  end
end

-- A local server that echoes lines, and answers HTTP requests.
local server

local function handler(conn)
  pcall(function()
    local line = conn:read()
    if line and line:find("^GET ") then
      repeat local l = conn:read() until l == nil or l == "\r"
      conn:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
        "Connection: close\r\n\r\nok")
      return
    end
    while line do
      conn:write(line, "\n")
      line = conn:read()
    end
  end)
end

local function net_action()
  local k = random(10)
  if k <= 5 then
    local r = call("tcp.connect", weft.tcp.connect, "127.0.0.1",
      random(4) == 1 and junk() or server.port,
      pick({ nil, { timeout_ms = 100 }, { max_line = 4 }, 5 }))
    if not r[1] then return end
    local c = r[2]
    local msg = tostring(token_n)
    call("conn:write", c.write, c, msg, "\n")
    local fmt = pick({ "l", "L", 3, 0, "x" })
    local l = call("weft.timeout", weft.timeout, 200, function()
      return c:read(fmt)
    end)
    if l[1] and type(l[2]) == "string" and not msg:find(l[2], 1, true)
      and l[2] ~= msg .. "\n" and #l[2] > 0 then
      violation("the echo of %s was %s", show(msg), show(l[2]))
    end
    local m = random(6)
    if m == 1 then
      call("weft.timeout", weft.timeout, 100, function()
        return c:read_exactly(pick({ 1, 0, -1, 1.5 }))
      end)
    elseif m == 2 then call("conn:getpeername", c.getpeername, c)
    elseif m == 3 then call("conn:getsockname", c.getsockname, c)
    elseif m == 4 then call("conn:shutdown", c.shutdown, c)
    elseif m == 5 then
      local it = call("conn:lines", c.lines, c, pick({ "l", "x" }))
      if it[1] then call("weft.timeout", weft.timeout, 50, it[2]) end
    end
    call("conn:close", c.close, c)
    call("conn:closed", c.closed, c)
    call("conn:read", c.read, c, "l")
  elseif k == 6 then
    call("tcp.listen", weft.tcp.listen, pick({ "", "127.0.0.1", 5, {} }),
      junk(), junk())
    call("server:closed", server.closed, random(2) == 1 and server or junk())
    call("server:wait", server.wait, junk())
  elseif k == 7 then
    -- Literal addresses only: a name could need a DNS server.
    call("dns.resolve", weft.dns.resolve,
      pick({ "127.0.0.1", "::1", "", 5 }))
  elseif k == 8 then
    call("process.exec", weft.process.exec, pick({ "true", "echo", "",
      "/nonexistent" }), pick({ nil, { "x" }, { 5 } }),
      pick({ nil, { timeout_ms = 50 }, { stdin = "in" } }))
  else
    local url = random(4) == 1 and junk() or
      ("http://127.0.0.1:%d/"):format(server.port)
    local opts = pick({ nil, { timeout_ms = 200 }, { max_body = 1 },
      { stream = true }, { headers = { ["X-A"] = pick({ "a", "b\r\n" }) } } })
    local m, r = random(3), nil
    if m == 1 then r = call("http.get", weft.http.get, url, opts)
    elseif m == 2 then
      r = call("http.post", weft.http.post, url, pick({ "body", 5 }), opts)
    else
      r = call("http.request", weft.http.request, { url = url,
        method = pick({ "GET", "PUT", "BAD METHOD", 5 }) })
    end
    if r[1] and r[2].read then
      call("response:read", r[2].read, r[2])
      call("response:close", r[2].close, r[2])
    end
  end
end

actions = {
  { 12, function(depth) spawn(depth) end },
  { 6, function() -- cancel a task
    local t = any_task()
    if t then
      expose(t)
      call("task:cancel", t.cancel, t, pick({ nil, "why", 7, {} }))
    end
  end },
  { 6, function() -- look at a task or a future
    local f = any_future() or junk()
    local m = pick({ "state", "done", "result", "id", "name" })
    local ok, fn = pcall(function() return f[m] end)
    if ok and type(fn) == "function" then call("future:" .. m, fn, f) end
    call("tostring", tostring, f)
  end },
  { 5, function() -- await with a deadline (see item_list)
    local f = any_future()
    if f then
      expose(f)
      if random(2) == 1 then
        call("weft.timeout", weft.timeout, small_ms(), f)
      else
        call("weft.timeout", weft.timeout, small_ms(), function()
          return f:await()
        end)
      end
    else
      call("await", weft.await, junk())
    end
  end },
  { 4, function() -- a promise: made, settled, looked at
    local p = #promises > 0 and random(2) == 1 and pick(promises) or
      new_promise()
    if random(2) == 1 then settle_promise(p) end
    check_promise(p)
  end },
  { 4, function()
    combinator(pick({ "all", "all_settled", "race", "any" }))
  end },
  { 3, function(depth) group_action(depth) end },
  { 4, function() -- timeouts of functions and junk
    local fn, expect = body(3, true, "timeout function")
    local ms, valid = small_ms(), random(5) > 1
    if not valid then
      ms = pick({ -1, "x", ms })
      fn = random(2) == 1 and junk() or fn
    end
    local r = call("weft.timeout", weft.timeout, ms, fn)
    if valid and r[1] and expect[1] == "raise" then
      violation("weft.timeout returned, its function raises")
    end
    -- (A cancellation is the caller's own: a task may be cancelled.)
    if valid and not r[1] and expect[1] == "raise" and
      not rawequal(r[2], expect[2]) and not weft.is_timeout(r[2]) and
      not weft.is_cancelled(r[2]) then
      violation("weft.timeout raised %s, its function %s", show(r[2]),
        show(expect[2]))
    end
  end },
  { 6, function(depth) -- channels
    local c = #channels > 0 and random(3) > 1 and pick(channels) or
      new_channel()
    if not c or c.retired then return end
    local k = random(7)
    if k == 1 then send(c, token(), "ch:try_send", c.ch.try_send)
    elseif k == 2 then
      local r = call("ch:try_recv", c.ch.try_recv, c.ch)
      if r[1] then received(c, r[2], "ch:try_recv") end
    elseif k == 3 and depth < 3 then -- a sender that may wait
      local v = token()
      local r = call("weft.spawn", weft.spawn, function()
        send(c, v, "ch:send", c.ch.send)
      end)
      if r[1] then register(r[2], { "any" }) end
    elseif k == 4 and depth < 3 then -- a receiver that may wait
      local r = call("weft.spawn", weft.spawn, function()
        c.receivers = (c.receivers or 0) + 1
        local got = call("ch:recv", c.ch.recv, c.ch)
        if got[1] then received(c, got[2], "ch:recv") end
        c.receivers = c.receivers - 1
      end)
      if r[1] then register(r[2], { "any" }) end
    elseif k == 5 then
      call("ch:count", c.ch.count, c.ch)
      call("ch:send", c.ch.send, c.ch, nil)
    elseif k == 6 and random(10) == 1 then
      call("ch:close", c.ch.close, c.ch)
    elseif depth > 0 or c.ch:count() > 0 then -- the main task never waits
      local r = call("ch:iter", c.ch.iter, c.ch)
      if r[1] then
        c.receivers = (c.receivers or 0) + 1
        local got = call("ch:iter step", r[2])
        if got[1] then received(c, got[2], "ch:iter") end
        c.receivers = c.receivers - 1
      end
    end
  end },
  { 4, function(depth) -- semaphores
    local s = #semaphores > 0 and random(3) > 1 and pick(semaphores) or
      new_semaphore()
    if not s then return end
    local k = random(5)
    if k == 1 and depth < 3 then
      local r = call("weft.spawn", weft.spawn, use_semaphore, s)
      if r[1] then register(r[2], { "any" }) end
    elseif k == 2 then
      local r = call("s:try_acquire", s.s.try_acquire, s.s)
      if r[1] and r[2] then
        s.taken = s.taken + 1
        local rel = call("s:release", s.s.release, s.s)
        if rel[1] then s.taken = s.taken - 1 end
      end
    elseif k == 3 then
      local r = call("s:release", s.s.release, s.s)
      if r[1] then s.taken = s.taken - 1 end
    elseif k == 4 then
      call("weft.timeout", weft.timeout, small_ms() + 1, function()
        return s.s:with(function() s.taken = s.taken + 1
          pcall(weft.yield)
          s.taken = s.taken - 1
        end)
      end)
    end
    check_semaphore(s)
  end },
  { 3, function() -- chaining
    local f = any_future()
    if not f then return end
    local fn = body(3, false, "handler")
    local m = pick({ "next", "catch", "finally" })
    local r = call("future:" .. m, f[m], f, random(6) == 1 and junk() or fn)
    if r[1] then register(r[2], { "any" }).exposed = true end
  end },
  { 3, function() -- timers
    local fn, expect = body(3, false, "timer")
    if random(3) == 1 then
      local r = call("weft.every", weft.every, pick({ 1, 2, 0, -1 }),
        random(5) == 1 and junk() or fn)
      if r[1] then
        register(r[2], { "any" }).exposed = true
        if random(2) == 1 then call("task:cancel", r[2].cancel, r[2]) end
      end
    else
      local j = random(6) == 1
      local r = call("weft.after", weft.after, pick({ 0, 1, 3, -1, "x" }),
        j and junk() or fn)
      if r[1] then register(r[2], j and { "any" } or expect) end
    end
  end },
  { 5, function() -- waits and clocks
    local k = random(6)
    if k == 1 then
      call("weft.sleep", weft.sleep, pick({ 0, 1, 0.5, -1, 0 / 0, "1" }))
    elseif k == 2 then call("weft.yield", weft.yield)
    elseif k == 3 then
      local r = call("weft.now", weft.now)
      if math.type(r[2]) ~= "integer" then
        violation("weft.now gave %s", show(r[2]))
      end
    elseif k == 4 then call("weft.current", weft.current)
    elseif k == 5 then
      call("weft.is_cancelled", weft.is_cancelled, junk())
      call("weft.is_timeout", weft.is_timeout, junk())
    else
      call("weft.tasks", weft.tasks)
    end
  end },
  { 2, function() -- misuse
    local k = random(4)
    if k == 1 then call("weft.run", weft.run, function() end) end
    if k == 2 then call("weft.preempt", weft.preempt, pick({ 1, 0, -1 })) end
    if k == 3 then call("weft.spawn", weft.spawn, junk(), junk()) end
    if k == 3 or k == 4 then -- a method on something else
      local o = pick({ channels[1] and channels[1].ch, semaphores[1] and
        semaphores[1].s, any_task(), promises[1] and promises[1].f })
      local m = pick({ "send", "recv", "close", "acquire", "release",
        "cancel", "await", "result", "with", "count" })
      local ok, fn = pcall(function() return o[m] end)
      if ok and type(fn) == "function" then
        call("method on junk", fn, junk(), junk())
      end
    end
    if k == 4 then call("await", weft.await, not_a_future()) end
  end },
  { 2, function() -- garbage
    local k = random(3)
    if k == 1 then collectgarbage() end
    if k == 2 then collectgarbage("step", random(0, 100)) end
    if k == 3 then call("weft.stats", weft.stats) end
  end },
  { 1, fs_action },
  { 1, net_action },
  { 2, function() hostile() end },
}

local weights = 0
for _, a in ipairs(actions) do weights = weights + a[1] end

-- What the main task is doing, for the watchdog: the action's index.
local doing, progress = 0, 0

function run_actions(n, depth)
  for _ = 1, n do
    local w = random(weights)
    for i, a in ipairs(actions) do
      w = w - a[1]
      if w <= 0 then
        if depth == 0 then doing = i end
        a[2](depth)
        if depth == 0 then progress = progress + 1 end
        break
      end
    end
  end
end

-- The main task must not wait without bound: every wait of its own is
-- short or under a timeout. A task that checks every second turns a
-- hang into a violation that says where the main task is stuck.
local function watchdog()
  local last, idle = -1, 0
  return weft.every(1000, function()
    idle = progress == last and idle + 1 or 0
    last = progress
    if idle >= 30 then
      local live = {}
      for _, t in ipairs(weft.tasks()) do
        live[#live + 1] = ("%s %s"):format(tostring(t.task), t.status)
        if #live == 12 then break end
      end
      violation("the main task has been stuck for 30 s in action %d; "
        .. "tasks: %s", doing, table.concat(live, ", "))
    end
  end)
end

------------------------------------------------------------------ checks

local function check_stats()
  local s = weft.stats()
  if s.done ~= s.fulfilled + s.failed + s.cancelled then
    violation("stats: done %d ~= %d + %d + %d", s.done, s.fulfilled,
      s.failed, s.cancelled)
  end
  if s.live ~= s.spawned - s.done then
    violation("stats: live %d, spawned %d, done %d", s.live, s.spawned,
      s.done)
  end
end

-- Ends everything: settles the promises, closes the channels, cancels
-- every task left and waits for them all, then checks every record.
local function finish()
  for _, p in ipairs(promises) do
    if not p.settled then
      calls = calls + 1
      local v = pack(token())
      if p.resolve(unpack(v, 1, v.n)) then
        p.outcome, p.settled = { "ok", v }, true
      end
    end
  end
  for _, c in ipairs(channels) do c.ch:close() end
  for _ = 1, 100 do
    for _, e in ipairs(tasks) do
      if e.t:state() == "pending" then
        e.exposed = true
        e.t:cancel("the end")
      end
    end
    weft.sleep(1)
    reap()
    if #tasks == 0 then break end
  end
  if #tasks > 0 then
    violation("%d task(s) never ended, e.g. %s", #tasks, tostring(tasks[1].t))
  end
  for _, p in ipairs(promises) do check_promise(p) end
  for _, c in ipairs(channels) do check_channel(c) end
  for _, c in ipairs(retired) do check_channel(c) end
  for _, s in ipairs(semaphores) do check_semaphore(s, true) end
  check_stats()
  local left = weft.tasks()
  if #left > 1 then
    violation("%d task(s) left: %s", #left - 1, tostring(left[2].task))
  end
end

local function main()
  entry_of[weft.current()] = { exposed = false }
  weft.fs.mkdir(dir)
  server = weft.tcp.listen("127.0.0.1", 0, handler)
  local dog = watchdog()
  local started = os.clock()
  while calls < CALLS do
    run_actions(16, 0)
    calls = calls + 1
    weft.sleep(0) -- let the tasks run
    if #tasks > 400 then reap() end
    if calls % 1000 < 17 then check_stats() end
  end
  dog:cancel()
  finish()
  server:close({ cancel = true })
  weft.fs.remove(dir, { recursive = true })
  local names = {}
  for name, n in pairs(counts) do
    names[#names + 1] = ("%s %d"):format(name, n)
  end
  table.sort(names)
  if os.getenv("GEN_VERBOSE") then print(table.concat(names, "\n")) end
  print(("gen: %d calls of %d functions, seed %d, %.1f s CPU, %d tasks"
    .. " spawned"):format(calls, #names, SEED, os.clock() - started,
    weft.stats().spawned))
end

if weft.current() then main() else weft.run(main) end
