-- W4 timers, Lua 5.4 + cqueues peer: cqueues has no timer objects; a timer
-- is a coroutine waiting on its own condition with a timeout (cancel: set
-- the timer's flag and signal the condition; the coroutine ends without
-- firing).
-- Mode a: start all, then cancel all (the clock stops once the cancelled
-- coroutines have ended). Mode b: let all fire.
-- usage: lua5.4 bench/peers/cq_w4_timers.lua a|b [N]
local C = require "common"
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local run = require "cq_common"
local mode, N = arg[1] or "a", tonumber(arg[2]) or 1000000
assert(mode == "a" or mode == "b", "mode must be a or b")

run(function()
  local cq, next_delay = cqueues.running(), C.minstd(42)
  local fired, ended, sum, want = 0, 0, 0, 0
  local all_ended = condition.new()
  local function timer(t, d)
    if not t.cancelled then t.cond:wait(d / 1000) end
    if not t.cancelled then -- timed out: the timer fires
      fired, sum = fired + 1, sum + d
    end
    ended = ended + 1
    if ended == N then all_ended:signal() end
  end
  local timers = {}
  local t0, c0 = cqueues.monotime(), os.clock()
  for i = 1, N do
    local d = next_delay()
    want = want + d
    timers[i] = { cond = condition.new(), cancelled = false }
    cq:wrap(timer, timers[i], d)
  end
  local ok
  if mode == "a" then
    for i = 1, N do
      timers[i].cancelled = true
      timers[i].cond:signal()
    end
    if ended < N then all_ended:wait() end
    ok = fired == 0
  else
    if ended < N then all_ended:wait() end
    ok = fired == N and sum == want
  end
  local wall, cpu = (cqueues.monotime() - t0) * 1000, (os.clock() - c0) * 1000
  C.report("lua54-cqueues", "W4" .. mode, N, wall, cpu, ok)
end)
