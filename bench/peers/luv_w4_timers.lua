-- W4 timers, Lua + luv peer: one uv timer handle per timer. Mode a: start
-- all, then stop and close all (the clock stops after one loop turn).
-- Mode b: let all fire.
-- usage: lua5.4|luajit bench/peers/luv_w4_timers.lua a|b [N]
local C = require "common"
local sched = require "luv_sched"
local uv = sched.uv
local IMPL = jit and "luajit-luv" or "lua54-luv"
local mode, N = arg[1] or "a", tonumber(arg[2]) or 1000000
assert(mode == "a" or mode == "b", "mode must be a or b")

sched.run(function()
  local next_delay, me = C.minstd(42), sched.current()
  local fired, sum, want = 0, 0, 0
  local timers = {}
  local t0, c0 = uv.hrtime(), os.clock()
  for i = 1, N do
    local d, t = next_delay(), uv.new_timer()
    want = want + d
    t:start(d, 0, function()
      t:close()
      fired, sum = fired + 1, sum + d
      if fired == N then sched.wake(me) end
    end)
    timers[i] = t
  end
  local ok
  if mode == "a" then
    local stopped = 0
    for i = 1, N do
      if timers[i]:stop() == 0 then stopped = stopped + 1 end
      timers[i]:close()
    end
    sched.yield()
    ok = stopped == N and fired == 0
  else
    sched.suspend()
    ok = fired == N and sum == want
  end
  local wall, cpu = (uv.hrtime() - t0) / 1e6, (os.clock() - c0) * 1000
  C.report(IMPL, "W4" .. mode, N, wall, cpu, ok)
end)
