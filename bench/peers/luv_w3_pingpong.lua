-- W3 ping-pong, Lua + luv peer: two tasks, two channels of capacity 1
-- (the scheduler's channels; libuv has none).
-- usage: lua5.4|luajit bench/peers/luv_w3_pingpong.lua [N]
local C = require "common"
local sched = require "luv_sched"
local uv = sched.uv
local IMPL = jit and "luajit-luv" or "lua54-luv"
local N = tonumber(arg[1]) or 1000000

sched.run(function()
  local ping, pong = sched.channel(1), sched.channel(1)
  local t0, c0 = uv.hrtime(), os.clock()
  local ponger = sched.spawn(function()
    for _ = 1, N do pong:send(ping:recv() + 1) end
  end)
  local pinger = sched.spawn(function()
    local sum = 0
    for i = 1, N do
      ping:send(i)
      sum = sum + pong:recv()
    end
    return sum
  end)
  local sum = sched.await(pinger)
  sched.await(ponger)
  local wall, cpu = (uv.hrtime() - t0) / 1e6, (os.clock() - c0) * 1000
  C.report(IMPL, "W3", N, wall, cpu, sum == N * (N + 1) / 2 + N)
end)
