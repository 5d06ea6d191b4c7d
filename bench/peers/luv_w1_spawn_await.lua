-- W1 spawn-await, Lua + luv peer (bench/peers/luv_sched.lua).
-- usage: lua5.4|luajit bench/peers/luv_w1_spawn_await.lua [N]
local C = require "common"
local sched = require "luv_sched"
local uv = sched.uv
local IMPL = jit and "luajit-luv" or "lua54-luv"
local N = tonumber(arg[1]) or 100000

local function body(i) return i end
sched.run(function()
  local tasks = {}
  local t0, c0 = uv.hrtime(), os.clock()
  for i = 1, N do tasks[i] = sched.spawn(body, i) end
  local sum = 0
  for i = 1, N do sum = sum + sched.await(tasks[i]) end
  local wall, cpu = (uv.hrtime() - t0) / 1e6, (os.clock() - c0) * 1000
  C.report(IMPL, "W1", N, wall, cpu, sum == N * (N + 1) / 2)
end)
