-- W2 sleep fan-out, Lua 5.4 + cqueues peer: promises whose coroutines
-- call cqueues.sleep.
-- usage: lua5.4 bench/peers/cq_w2_sleep_fanout.lua [N]
local C = require "common"
local cqueues = require "cqueues"
local promise = require "cqueues.promise"
local run = require "cq_common"
local N = tonumber(arg[1]) or 10000

local function body(i) cqueues.sleep(0.1) return i end
run(function()
  collectgarbage("collect")
  local base = C.rss_kb("VmRSS")
  local tasks = {}
  local t0, c0 = cqueues.monotime(), os.clock()
  for i = 1, N do tasks[i] = promise.new(body, i) end
  cqueues.sleep(0) -- let every task start and park
  local sleeping = C.rss_kb("VmRSS")
  local sum = 0
  for i = 1, N do sum = sum + tasks[i]:get() end
  local wall, cpu = (cqueues.monotime() - t0) * 1000, (os.clock() - c0) * 1000
  C.report("lua54-cqueues", "W2", N, wall, cpu, sum == N * (N + 1) // 2,
    { bytes_per_task = (sleeping - base) * 1024 / N })
end)
