-- prelude.lua - the parts of the weft module written in Lua on top of the
-- C primitives: callback chaining, combinators, timeout, after/every,
-- group, semaphore:with, channel:iter. Compiled into the module.
-- SPDX-License-Identifier: MIT
local weft, I = ...
-- What Lua 5.1 and LuaJIT lack of 5.3's library, for the module's Lua
-- parts (this chunk returns them; io.lua, tcp.lua and http.lua get them
-- as their third argument). On 5.1 every number is a float: an integer
-- is one with an integral value.
local select, floor = select, math.floor
local pack = table.pack or function(...)
  return {n = select("#", ...), ...}
end
local unpack = table.unpack or unpack
local mtype = math.type or function(x)
  if type(x) ~= "number" then return nil end
  if x == floor(x) and x >= -2 ^ 63 and x < 2 ^ 63 then return "integer" end
  return "float"
end
local compat = {pack = pack, unpack = unpack, mtype = mtype}
compat.tointeger = math.tointeger or function(x)
  if mtype(x) == "integer" then return x end
end
local type, error, pcall, select = type, error, pcall, select
local spawn, is_future, is_task = weft.spawn, I.is_future, I.is_task
local FM = I.future_methods
local check_task = I.check_task
local is_error = I.is_error

local ALL, SETTLED, RACE, ANY = 1, 2, 3, 4

local function check_fn(fname, what, v, optional)
  if v == nil and optional then return end
  if type(v) ~= "function" then
    error(("%s: %s must be a function, got %s"):format(fname, what, type(v)), 3)
  end
end

local function check_ms(fname, ms)
  if type(ms) ~= "number" or not (ms >= 0) then
    error(("%s: ms must be a non-negative number, got %s"):format(
      fname, type(ms) == "number" and tostring(ms) or type(ms)), 3)
  end
end

local function check_self(fname, self)
  if not is_future(self) then
    error(("%s: expected a future or task, got %s"):format(fname, type(self)), 3)
  end
end

-- Callback chaining. Each handler runs in a task of its own, spawned now
-- and waiting for self, so a handler may await; the returned task settles
-- with the handler's outcome.
function FM.next(self, on_ok, on_err)
  check_self("future:next", self)
  check_fn("future:next", "on_ok", on_ok, true)
  check_fn("future:next", "on_err", on_err, true)
  return spawn(function()
    local r = pack(pcall(self.await, self))
    if r[1] then
      if on_ok then return on_ok(unpack(r, 2, r.n)) end
      return unpack(r, 2, r.n)
    end
    if on_err then return on_err(r[2]) end
    error(r[2], 0)
  end)
end

function FM.catch(self, on_err)
  check_self("future:catch", self)
  check_fn("future:catch", "handler", on_err)
  return FM.next(self, nil, on_err)
end

function FM.finally(self, fn)
  check_self("future:finally", self)
  check_fn("future:finally", "handler", fn)
  return spawn(function()
    local r = pack(pcall(self.await, self))
    fn()
    if r[1] then return unpack(r, 2, r.n) end
    error(r[2], 0)
  end)
end

-- Combinators. Items are futures or tasks, or functions, which are spawned
-- as children of the caller (so cancelling the caller cancels them).
local function collect(fname, list)
  if type(list) ~= "table" then
    error(("%s: expected a list of futures, tasks or functions, got %s")
      :format(fname, type(list)), 3)
  end
  local fs = {}
  for i = 1, #list do -- every item is checked before any is spawned
    local v = list[i]
    if type(v) ~= "function" and not is_future(v) then
      error(("%s: item %d is a %s, expected a future, task or function")
        :format(fname, i, type(v)), 3)
    end
    fs[i] = v
  end
  for i = 1, #fs do
    if type(fs[i]) == "function" then fs[i] = spawn(fs[i]) end
  end
  return fs
end

-- Cancels the tasks of fs other than fs[keep] and waits until they have
-- ended, so that their cleanup has run when the combinator returns or
-- raises (as a Trio nursery does).
local function cancel_others(fs, keep, reason)
  for i = 1, #fs do
    if i ~= keep and is_task(fs[i]) then fs[i]:cancel(reason) end
  end
  I.unwind(fs)
end

-- I.wait(kind, fs), but if the caller is cancelled meanwhile its items
-- are cancelled and have ended before the cancellation is raised.
local function wait(kind, fs)
  local ok, i = pcall(I.wait, kind, fs)
  if ok then return i end
  if is_error(i, "cancelled") then cancel_others(fs, 0) end
  error(i, 0)
end

function weft.all(list)
  check_task("weft.all")
  local fs = collect("weft.all", list)
  local i = wait(ALL, fs)
  if i ~= 0 then
    cancel_others(fs, i)
    return fs[i]:result() -- raises the first failure
  end
  local out = { n = #fs }
  for k = 1, #fs do out[k] = (fs[k]:result()) end
  return out
end

function weft.all_settled(list)
  check_task("weft.all_settled")
  local fs = collect("weft.all_settled", list)
  wait(SETTLED, fs)
  local out = { n = #fs }
  for k = 1, #fs do
    local ok, v = pcall(fs[k].result, fs[k])
    if ok then out[k] = { ok = true, value = v }
    else out[k] = { ok = false, error = v } end
  end
  return out
end

function weft.race(list)
  check_task("weft.race")
  local fs = collect("weft.race", list)
  if #fs == 0 then error("weft.race: the list is empty", 2) end
  local i = wait(RACE, fs)
  cancel_others(fs, i)
  return fs[i]:result()
end

function weft.any(list)
  check_task("weft.any")
  local fs = collect("weft.any", list)
  if #fs == 0 then error("weft.any: the list is empty", 2) end
  local i = wait(ANY, fs)
  if i ~= 0 then
    cancel_others(fs, i)
    return fs[i]:result()
  end
  local errs = {}
  for k = 1, #fs do errs[k] = select(2, pcall(fs[k].result, fs[k])) end
  local e = I.error("aggregate", ("weft.any: all %d failed"):format(#fs))
  e.errors = errs
  error(e, 2)
end

function weft.timeout(ms, f)
  check_task("weft.timeout")
  check_ms("weft.timeout", ms)
  local own = type(f) == "function"
  if own then
    f = spawn(f)
  elseif not is_future(f) then
    error(("weft.timeout: expected a future, task or function, got %s")
      :format(type(f)), 2)
  end
  local ok, done = pcall(I.wait_for, f, ms)
  if not ok then -- the caller was cancelled: so is the work, unwound
    if is_task(f) and is_error(done, "cancelled") then
      cancel_others({ f }, 0)
      -- A failure of the work it spawned, met while unwinding, gives way
      -- to the caller's cancellation: observed, not reported.
      if own then pcall(f.result, f) end
    end
    error(done, 0)
  end
  if not done and is_task(f) then
    -- The work ends before this returns or raises: its cleanup has run.
    -- If it finished anyway (it had its result in the step the deadline
    -- fired in), its result wins.
    cancel_others({ f }, 0, "timeout")
    done = f:state() ~= "cancelled"
  end
  -- f is settled: result, not await, which would raise the caller's own
  -- cancellation (if one came meanwhile) and leave f's outcome unseen.
  if done then return f:result() end
  error(I.error("timeout", ("weft.timeout: timed out after %s ms")
    :format(tostring(ms))), 2)
end

local sleep, now = weft.sleep, weft.now

function weft.after(ms, fn, ...)
  check_ms("weft.after", ms)
  check_fn("weft.after", "fn", fn)
  return I.spawn_after(ms, fn, ...)
end

-- A repeating timer: fn runs every ms, on a schedule that does not drift;
-- if a run overruns, the missed ticks are skipped. An error in fn ends it.
function weft.every(ms, fn, ...)
  if type(ms) ~= "number" or not (ms > 0) then
    error("weft.every: ms must be a positive number", 2)
  end
  check_fn("weft.every", "fn", fn)
  return spawn({ name = "every" }, function(...)
    local due = now() + ms
    while true do
      local t = now()
      if due > t then sleep(due - t) end
      fn(...)
      due = due + ms
      t = now()
      if due < t then due = t + ms - (t - due) % ms end
    end
  end, ...)
end

-- Structured concurrency: returns when every child has ended. The first
-- child failure cancels its siblings and is raised here (unless the caller
-- took it through g:join_next or g:try_join); an error in fn cancels the
-- children.
function weft.group(fn)
  check_task("weft.group")
  check_fn("weft.group", "fn", fn)
  local g = I.group_new()
  local r = pack(pcall(fn, g))
  if not r[1] then g:cancel() end
  local failed = g:_drain()
  if not r[1] then error(r[2], 0) end
  if failed then failed:result() end
  return unpack(r, 2, r.n)
end

function I.sem_methods.with(self, fn, ...)
  check_task("sem:with")
  check_fn("sem:with", "fn", fn)
  self:acquire()
  local r = pack(pcall(fn, ...))
  self:release()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

function I.chan_methods.iter(self)
  return function()
    return (self:recv())
  end
end

-- A task's coroutine is the scheduler's: resuming or closing it from a
-- script would run its pending wait in the wrong context. The coroutine
-- library of this state refuses that; coroutine.running marks the task so
-- that its coroutine is not reused by a later task.
--
-- A coroutine a task resumes may wait (task.c, "nested coroutines"): when
-- it yields for a weft wait, its resumer yields too, up to the task's own
-- coroutine, and resumes it once the task is resumed; a yield of its own
-- comes back to its resumer as usual.
local co_lib = package and package.loaded and package.loaded.coroutine
if type(co_lib) == "table" then
  local resume, close, yield = co_lib.resume, co_lib.close, co_lib.yield
  local create, status = co_lib.create, co_lib.status
  local is_task_co = I.is_task_co
  local enter, leave, waiting = I.co_enter, I.co_leave, I.co_waiting

  local function pass(co, prev, prev_ok, ok, ...)
    if ok and waiting() then
      return pass(co, prev, prev_ok, resume(co, yield(...)))
    end
    leave(prev, prev_ok)
    return ok, ...
  end

  local function co_resume(co, ...)
    if is_task_co(co) then
      return false, "cannot resume the coroutine of a weft task"
    end
    local prev, prev_ok = enter(co)
    if prev == nil then return resume(co, ...) end -- not in a task
    return pass(co, prev, prev_ok, resume(co, ...))
  end
  co_lib.resume = co_resume

  local function wrap_result(ok, ...)
    if ok then return ... end
    error((...), 0)
  end
  co_lib.wrap = function(f)
    local co = create(f)
    return function(...) return wrap_result(co_resume(co, ...)) end
  end
  if I.co_resume then -- 5.3 and later: the same, in C
    co_lib.resume, co_lib.wrap = I.co_resume(resume), I.co_wrap
  end

  -- PUC Lua 5.1 cannot yield across pcall: inside a task, pcall and xpcall
  -- run the function in a coroutine of their own, through which every
  -- yield passes (as copas' coxpcall does). xpcall's handler runs after
  -- the function's coroutine has unwound: its traceback is the caller's.
  if not I.yieldable_pcall then
    local raw_pcall, raw_xpcall = pcall, xpcall
    local finish
    local function refinish(co, ...) -- resumed after a yield of its own
      local prev, prev_ok = enter(co)
      return finish(co, prev, prev_ok, resume(co, ...))
    end
    finish = function(co, prev, prev_ok, ok, ...)
      if ok and status(co) == "suspended" then
        if waiting() then
          return finish(co, prev, prev_ok, resume(co, yield(...)))
        end
        leave(prev, prev_ok) -- out of the task's chain until resumed
        return refinish(co, yield(...))
      end
      leave(prev, prev_ok)
      return ok, ...
    end
    local function call(f, ...) return f(...) end
    local function co_pcall(f, ...)
      local co = create(call)
      local prev, prev_ok = enter(co)
      if prev == nil then return raw_pcall(f, ...) end
      return finish(co, prev, prev_ok, resume(co, f, ...))
    end
    local function handled(h, ok, ...)
      if ok then return true, ... end
      return false, h(...)
    end
    local function co_xpcall(f, h, ...)
      if weft.current() == nil then return raw_xpcall(f, h, ...) end
      return handled(h, co_pcall(f, ...))
    end
    pcall, xpcall = co_pcall, co_xpcall
    _G.pcall, _G.xpcall = co_pcall, co_xpcall
  end
  if close then
    co_lib.close = function(co, ...)
      if is_task_co(co) then
        return false, "cannot close the coroutine of a weft task"
      end
      return close(co, ...)
    end
  end
  co_lib.running = I.co_running
end

return compat
