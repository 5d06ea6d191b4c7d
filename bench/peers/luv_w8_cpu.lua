-- W8 CPU fairness, Lua + luv peer: the CPU-bound loop inside a task of
-- the luv scheduler (compare with lua_w8_cpu.lua, the plain loop).
-- usage: lua5.4 bench/peers/luv_w8_cpu.lua [N]
local C = require "common"
local sched = require "luv_sched"
local uv = sched.uv
local IMPL = jit and "luajit-luv" or "lua54-luv"
local N = tonumber(arg[1]) or 30000000

local function work(n)
  local h = 0
  for i = 1, n do h = (h * 31 + i) % 1000003 end
  return h
end

sched.run(function()
  local t0, c0 = uv.hrtime(), os.clock()
  local h = sched.await(sched.spawn(work, N))
  local wall, cpu = (uv.hrtime() - t0) / 1e6, (os.clock() - c0) * 1000
  C.report(IMPL, "W8", N, wall, cpu, h >= 0 and h < 1000003, { hash = h })
end)
