-- demo.lua - 10,000 tasks that each sleep 100 ms, all at once.
-- Run it with: weft examples/demo.lua
--
-- One after another, 10,000 sleeps of 100 ms take 1,000 s. As weft tasks
-- they wait together (one timer each, in one heap), so the whole batch
-- takes about 100 ms plus the time it takes to start 10,000 coroutines.

local N, SLEEP_MS = 10000, 100

local t0 = weft.now()

local tasks = {}
for i = 1, N do
  tasks[i] = weft.spawn(function()
    weft.sleep(SLEEP_MS)
    return i
  end)
end
print(("spawned %d tasks in %d ms"):format(N, weft.now() - t0))

-- A live view: every 25 ms, print the scheduler's counters.
local ticker = weft.every(25, function()
  local s = weft.stats()
  print(("%4d ms: %5d live, %5d timers armed, %5d done")
    :format(weft.now() - t0, s.live, s.timers, s.done))
end)

-- weft.all waits for every task and returns the first value of each.
local results = weft.all(tasks)
local elapsed = weft.now() - t0
ticker:cancel()

local sum = 0
for i = 1, results.n do sum = sum + results[i] end

print(("finished: %d tasks"):format(results.n))
print(("sum: %d"):format(sum))
print(("wall time: %d ms (one after another: %d s)")
  :format(elapsed, math.floor(N * SLEEP_MS / 1000)))

-- expect: spawned 10000 tasks in [0-9]+ ms
-- expect: [0-9]+ ms: +[0-9]+ live, +[0-9]+ timers armed, +[0-9]+ done
-- expect: finished: 10000 tasks
-- expect: sum: 50005000
-- expect: wall time: [0-9]+ ms \(one after another: 1000 s\)
