-- W5 worker round trip, Lua 5.4 + cqueues peer: x -> x + 1 runs on
-- cqueues.thread workers (an OS thread with its own Lua state, reached
-- through a socket pair). A worker answers in order, so the replies of
-- one worker are matched to their callers by a FIFO. seq: N calls in
-- sequence on one worker (W5); c: N calls from 64 tasks spread over 4
-- workers, libuv's default pool size (W5c).
-- usage: lua5.4 bench/peers/cq_w5_roundtrip.lua seq|c [N]
local C = require "common"
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local promise = require "cqueues.promise"
local thread = require "cqueues.thread"
local run = require "cq_common"
local mode, N = arg[1] or "seq", tonumber(arg[2]) or 100000

local function worker_main(con)
  for line in con:lines("*l") do
    con:write(tostring(tonumber(line) + 1), "\n")
    con:flush()
  end
end

-- A worker: its thread, its socket and the FIFO of callers awaiting replies.
local function new_worker()
  local thr, con = thread.start(worker_main)
  local w = { thr = thr, con = con, fifo = {}, head = 1, tail = 0 }
  cqueues.running():wrap(function() -- the reader: replies to callers
    for line in con:lines("*l") do
      local caller = w.fifo[w.head]
      w.fifo[w.head] = nil
      w.head = w.head + 1
      caller.v = tonumber(line)
      caller.cond:signal()
    end
  end)
  return w
end

local function inc(w, x)
  local caller = { cond = condition.new() }
  w.tail = w.tail + 1
  w.fifo[w.tail] = caller
  w.con:write(tostring(x), "\n")
  w.con:flush()
  while caller.v == nil do caller.cond:wait() end
  return caller.v
end

run(function()
  local workers = {}
  for i = 1, mode == "seq" and 1 or 4 do workers[i] = new_worker() end
  for i = 1, 1000 do inc(workers[i % #workers + 1], 1) end -- warm-up
  local t0, c0 = cqueues.monotime(), os.clock()
  local ok
  if mode == "seq" then
    local x = 0
    for _ = 1, N do x = inc(workers[1], x) end
    ok = x == N
  else
    local K, tasks, sum = 64, {}, 0
    for k = 1, K do
      local w = workers[k % #workers + 1]
      tasks[k] = promise.new(function()
        local acc = 0
        for _ = k, N, K do acc = acc + inc(w, 0) end
        return acc
      end)
    end
    for k = 1, K do sum = sum + tasks[k]:get() end
    ok = sum == N
  end
  local wall, cpu = (cqueues.monotime() - t0) * 1000, (os.clock() - c0) * 1000
  for _, w in ipairs(workers) do w.con:shutdown("w") end -- workers end
  C.report("lua54-cqueues", mode == "seq" and "W5" or "W5c", N, wall, cpu,
    ok, { us_per_op = wall * 1000 / N })
  for _, w in ipairs(workers) do w.thr:join() end
end)
