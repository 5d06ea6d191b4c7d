-- W5 worker round trip, Lua + luv peer: x -> x + 1 runs in libuv's thread
-- pool (uv.new_work: each worker has its own Lua state); the calling task
-- parks until the after-work callback. seq: N calls in sequence (W5);
-- c: N calls from 64 tasks (W5c).
-- usage: lua5.4|luajit bench/peers/luv_w5_roundtrip.lua seq|c [N]
local C = require "common"
local sched = require "luv_sched"
local uv = sched.uv
local IMPL = jit and "luajit-luv" or "lua54-luv"
local mode, N = arg[1] or "seq", tonumber(arg[2]) or 100000

local waiting, next_id = {}, 0
local work = uv.new_work(function(id, x) return id, x + 1 end,
  function(id, r)
    local t = waiting[id]
    waiting[id] = nil
    sched.wake(t, r)
  end)

-- The host function: inc(x) on a worker thread, awaited by the caller.
local function inc(x)
  next_id = next_id + 1
  waiting[next_id] = sched.current()
  work:queue(next_id, x)
  return sched.suspend()
end

sched.run(function()
  for _ = 1, 1000 do inc(1) end -- warm-up: start the workers
  local t0, c0 = uv.hrtime(), os.clock()
  local ok
  if mode == "seq" then
    local x = 0
    for _ = 1, N do x = inc(x) end
    ok = x == N
  else
    local K, tasks, sum = 64, {}, 0
    for k = 1, K do
      tasks[k] = sched.spawn(function()
        local acc = 0
        for _ = k, N, K do acc = acc + inc(0) end
        return acc
      end)
    end
    for k = 1, K do sum = sum + sched.await(tasks[k]) end
    ok = sum == N
  end
  local wall, cpu = (uv.hrtime() - t0) / 1e6, (os.clock() - c0) * 1000
  C.report(IMPL, mode == "seq" and "W5" or "W5c", N, wall, cpu, ok,
    { us_per_op = wall * 1000 / N })
end)
