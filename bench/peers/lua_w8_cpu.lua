-- W8 CPU fairness, the baseline: the CPU-bound loop in plain lua5.4 (or
-- luajit, the baseline of weft built on LuaJIT).
-- usage: lua5.4 bench/peers/lua_w8_cpu.lua [N]
local C = require "common"
local N = tonumber(arg[1]) or 30000000

local function work(n)
  local h = 0
  for i = 1, n do h = (h * 31 + i) % 1000003 end
  return h
end

local c0 = os.clock()
local h = work(N)
local cpu = (os.clock() - c0) * 1000
C.report(jit and "luajit" or "lua54", "W8", N, cpu, cpu,
  h >= 0 and h < 1000003, { hash = h })
