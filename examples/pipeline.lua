-- pipeline.lua - producer -> channel -> workers -> results.
-- Run it with: weft examples/pipeline.lua
--
-- A producer sends 20 jobs into a buffered channel. Eight workers take
-- jobs from it, but a semaphore lets only three of them into the slow
-- step at a time. Results come back on a second channel, which the main
-- task drains.

local JOBS, WORKERS, LIMIT = 20, 8, 3

local jobs = weft.channel(4)         -- the producer may run 4 jobs ahead
local results = weft.channel()       -- capacity 0: each send meets a recv
local limit = weft.semaphore(LIMIT)
local in_flight, max_in_flight = 0, 0

local producer = weft.spawn({ name = "producer" }, function()
  for i = 1, JOBS do
    jobs:send(i)                     -- suspends while the buffer is full
  end
  jobs:close()                       -- workers drain what is left, then stop
end)

local function slow_square(n)
  in_flight = in_flight + 1
  max_in_flight = math.max(max_in_flight, in_flight)
  weft.sleep(10)                     -- stands in for I/O
  in_flight = in_flight - 1
  return n * n
end

-- The workers run in a group; when the last one ends, results is closed.
weft.spawn({ name = "workers" }, function()
  weft.group(function(g)
    for w = 1, WORKERS do
      g:spawn({ name = "worker " .. w }, function()
        for job in jobs:iter() do    -- ends once jobs is closed and drained
          local value = limit:with(slow_square, job)
          results:send({ job = job, value = value, worker = w })
        end
      end)
    end
  end)
  results:close()
end)

local count, sum, by_worker = 0, 0, {}
for r in results:iter() do
  count = count + 1
  sum = sum + r.value
  by_worker[r.worker] = (by_worker[r.worker] or 0) + 1
end
producer:await()

local busy = 0
for _ in pairs(by_worker) do busy = busy + 1 end
print(("results: %d, sum of squares: %d"):format(count, sum))
print(("most jobs in the slow step at once: %d (limit %d)")
  :format(max_in_flight, LIMIT))
print(("workers that did some work: %d of %d"):format(busy, WORKERS))

-- expect: results: 20, sum of squares: 2870
-- expect: most jobs in the slow step at once: 3 \(limit 3\)
-- expect: workers that did some work: [1-8] of 8
