-- luv_sched.lua - a small coroutine scheduler on libuv (luv): what an
-- embedder writes today without weft. Tasks are coroutines in a FIFO ready
-- queue; waits (sleep, await, channels, callbacks) park the task and a libuv
-- callback or another task makes it ready again. Runs under Lua 5.4 and
-- LuaJIT. Used by the bench/peers/luv_*.lua programs.
-- SPDX-License-Identifier: MIT
local uv = require "luv"
local unpack = table.unpack or unpack
local create, resume, yield, status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.status

local M = { uv = uv }

-- About the ready queue: ready[head..tail] are the tasks to resume, in
-- order; a task is there at most once (only a parked task is woken).
local ready, head, tail = {}, 1, 0
local current -- the running task, or nil

local function push(t)
  tail = tail + 1
  ready[tail] = t
end

-- Makes a parked task ready; v is what its wait returns.
function M.wake(t, v)
  t.wv = v
  push(t)
end

function M.current() return current end

-- Parks the running task until someone calls wake(task, v); returns v.
function M.suspend() return yield() end

local function finish(t, ok, ...)
  if status(t.co) ~= "dead" then return end
  t.done, t.ok, t.n = true, ok, select("#", ...)
  if t.n <= 1 then t.r1 = ... else t.res = { ... } end
  local w = t.waiters
  if w then
    for i = 1, #w do push(w[i]) end
  elseif not ok and t.main == nil then
    io.stderr:write("luv_sched: unhandled task error: ", tostring(...), "\n")
  end
end

local function step(t)
  current = t
  local v = t.wv
  t.wv = nil
  if t.fn then -- first run: start the function with its arguments
    local fn, args = t.fn, t.args
    t.fn, t.args = nil, nil
    finish(t, resume(t.co, unpack(args, 1, args.n)))
  else
    finish(t, resume(t.co, v))
  end
  current = nil
end

-- Creates a task running fn(...); it first runs at the next turn.
function M.spawn(fn, ...)
  local t = { fn = fn, args = { n = select("#", ...), ... } }
  t.co = create(fn)
  push(t)
  return t
end

-- Waits until task t ends; returns its results or raises its error.
function M.await(t)
  if not t.done then
    local w = t.waiters
    if w then w[#w + 1] = current else t.waiters = { current } end
    yield()
  end
  if not t.ok then error(t.r1 or t.res[1], 0) end
  if t.n <= 1 then return t.r1 end
  return unpack(t.res, 1, t.n)
end

function M.sleep(ms)
  local t, timer = current, uv.new_timer()
  timer:start(ms, 0, function()
    timer:close()
    M.wake(t)
  end)
  yield()
end

-- Lets the other ready tasks (and one libuv poll) run first.
function M.yield()
  push(current)
  yield()
end

-- A FIFO channel of non-nil values with room for cap values (0: rendezvous).
local Chan = {}
Chan.__index = Chan

function M.channel(cap)
  return setmetatable({ cap = cap or 0, buf = {}, bh = 1, bt = 0,
                        recvq = {}, rh = 1, rt = 0,
                        sendq = {}, sh = 1, st = 0 }, Chan)
end

function Chan:send(v)
  if self.rh <= self.rt then -- hand it to the first waiting receiver
    local r = self.recvq[self.rh]
    self.recvq[self.rh] = nil
    self.rh = self.rh + 1
    M.wake(r, v)
  elseif self.bt - self.bh + 1 < self.cap then
    self.bt = self.bt + 1
    self.buf[self.bt] = v
  else
    self.st = self.st + 1
    self.sendq[self.st] = { t = current, v = v }
    yield()
  end
end

function Chan:recv()
  if self.bh <= self.bt then
    local v = self.buf[self.bh]
    self.buf[self.bh] = nil
    self.bh = self.bh + 1
    if self.sh <= self.st then -- refill from the first waiting sender
      local s = self.sendq[self.sh]
      self.sendq[self.sh] = nil
      self.sh = self.sh + 1
      self.bt = self.bt + 1
      self.buf[self.bt] = s.v
      push(s.t)
    end
    return v
  elseif self.sh <= self.st then -- rendezvous with a waiting sender
    local s = self.sendq[self.sh]
    self.sendq[self.sh] = nil
    self.sh = self.sh + 1
    push(s.t)
    return s.v
  end
  self.rt = self.rt + 1
  self.recvq[self.rt] = current
  return yield()
end

-- Runs fn(...) as the main task and drives libuv until no task is ready
-- and libuv has nothing left; returns the main task's results.
function M.run(fn, ...)
  local main = M.spawn(fn, ...)
  main.main = true
  while true do
    local last = tail -- run what is ready now; newcomers wait a turn
    while head <= last do
      local t = ready[head]
      ready[head] = nil
      head = head + 1
      step(t)
    end
    if head <= tail then
      uv.run("nowait")
    elseif uv.loop_alive() then
      uv.run("once")
    else
      break
    end
  end
  if not main.done then error("luv_sched: deadlock in the main task") end
  if not main.ok then error(main.r1, 0) end
  if main.n <= 1 then return main.r1 end
  return unpack(main.res, 1, main.n)
end

return M
