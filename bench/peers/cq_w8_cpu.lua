-- W8 CPU fairness, Lua 5.4 + cqueues peer: the CPU-bound loop inside a
-- cqueues coroutine (compare with lua_w8_cpu.lua, the plain loop).
-- usage: lua5.4 bench/peers/cq_w8_cpu.lua [N]
local C = require "common"
local cqueues = require "cqueues"
local promise = require "cqueues.promise"
local run = require "cq_common"
local N = tonumber(arg[1]) or 30000000

local function work(n)
  local h = 0
  for i = 1, n do h = (h * 31 + i) % 1000003 end
  return h
end

run(function()
  local t0, c0 = cqueues.monotime(), os.clock()
  local h = promise.new(work, N):get()
  local wall, cpu = (cqueues.monotime() - t0) * 1000, (os.clock() - c0) * 1000
  C.report("lua54-cqueues", "W8", N, wall, cpu, h >= 0 and h < 1000003,
    { hash = h })
end)
