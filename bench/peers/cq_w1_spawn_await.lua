-- W1 spawn-await, Lua 5.4 + cqueues peer: a task is a cqueues.promise (a
-- coroutine on the controller whose result the promise holds).
-- usage: lua5.4 bench/peers/cq_w1_spawn_await.lua [N]
local C = require "common"
local cqueues = require "cqueues"
local promise = require "cqueues.promise"
local run = require "cq_common"
local N = tonumber(arg[1]) or 100000

local function body(i) return i end
run(function()
  local tasks = {}
  local t0, c0 = cqueues.monotime(), os.clock()
  for i = 1, N do tasks[i] = promise.new(body, i) end
  local sum = 0
  for i = 1, N do sum = sum + tasks[i]:get() end
  local wall, cpu = (cqueues.monotime() - t0) * 1000, (os.clock() - c0) * 1000
  C.report("lua54-cqueues", "W1", N, wall, cpu, sum == N * (N + 1) // 2)
end)
