-- W2 sleep fan-out, Lua + luv peer: each task sleeps on its own uv timer.
-- usage: lua5.4|luajit bench/peers/luv_w2_sleep_fanout.lua [N]
local C = require "common"
local sched = require "luv_sched"
local uv = sched.uv
local IMPL = jit and "luajit-luv" or "lua54-luv"
local N = tonumber(arg[1]) or 10000

local function body(i) sched.sleep(100) return i end
sched.run(function()
  collectgarbage("collect")
  local base = C.rss_kb("VmRSS")
  local tasks = {}
  local t0, c0 = uv.hrtime(), os.clock()
  for i = 1, N do tasks[i] = sched.spawn(body, i) end
  sched.yield() -- let every task start and park
  local sleeping = C.rss_kb("VmRSS")
  local sum = 0
  for i = 1, N do sum = sum + sched.await(tasks[i]) end
  local wall, cpu = (uv.hrtime() - t0) / 1e6, (os.clock() - c0) * 1000
  C.report(IMPL, "W2", N, wall, cpu, sum == N * (N + 1) / 2,
    { bytes_per_task = (sleeping - base) * 1024 / N })
end)
