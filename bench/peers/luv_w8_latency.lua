-- W8b timer lateness, Lua + luv peer: the CPU-bound loop of W8 in a task
-- of the luv scheduler while the main task sleeps 1 ms again and again.
-- Nothing preempts the loop, so the first sleep waits for all of it.
-- usage: lua5.4 bench/peers/luv_w8_latency.lua [N]
local C = require "common"
local sched = require "luv_sched"
local uv = sched.uv
local IMPL = jit and "luajit-luv" or "lua54-luv"
local N = tonumber(arg[1]) or 100000000

local function work(n)
  local h = 0
  for i = 1, n do h = (h * 31 + i) % 1000003 end
  return h
end

sched.run(function()
  local t0, c0 = uv.hrtime(), os.clock()
  local done, h = false, nil
  sched.spawn(function() h = work(N) done = true end)
  local late, sleeps = 0, 0
  repeat
    local s = uv.hrtime()
    sched.sleep(1)
    late = math.max(late, (uv.hrtime() - s) / 1e6 - 1)
    sleeps = sleeps + 1
  until done
  local wall, cpu = (uv.hrtime() - t0) / 1e6, (os.clock() - c0) * 1000
  C.report(IMPL, "W8b", N, wall, cpu, h >= 0 and h < 1000003,
    { late_ms = late, sleeps = sleeps })
end)
