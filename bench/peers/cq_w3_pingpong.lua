-- W3 ping-pong, Lua 5.4 + cqueues peer: cqueues has no channel; this one
-- (capacity 1) is a slot and two cqueues.condition variables.
-- usage: lua5.4 bench/peers/cq_w3_pingpong.lua [N]
local C = require "common"
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local promise = require "cqueues.promise"
local run = require "cq_common"
local N = tonumber(arg[1]) or 1000000

local function channel()
  return { full = false, v = nil, not_empty = condition.new(),
           not_full = condition.new() }
end
local function send(ch, v)
  while ch.full do ch.not_full:wait() end
  ch.v, ch.full = v, true
  ch.not_empty:signal(1)
end
local function recv(ch)
  while not ch.full do ch.not_empty:wait() end
  local v = ch.v
  ch.v, ch.full = nil, false
  ch.not_full:signal(1)
  return v
end

run(function()
  local ping, pong = channel(), channel()
  local t0, c0 = cqueues.monotime(), os.clock()
  local ponger = promise.new(function()
    for _ = 1, N do send(pong, recv(ping) + 1) end
  end)
  local pinger = promise.new(function()
    local sum = 0
    for i = 1, N do
      send(ping, i)
      sum = sum + recv(pong)
    end
    return sum
  end)
  local sum = pinger:get()
  ponger:get()
  local wall, cpu = (cqueues.monotime() - t0) * 1000, (os.clock() - c0) * 1000
  C.report("lua54-cqueues", "W3", N, wall, cpu, sum == N * (N + 1) // 2 + N)
end)
