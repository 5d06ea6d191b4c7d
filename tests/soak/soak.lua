-- soak.lua - many tasks with random cancellation and timeouts, in rounds:
--   weft tests/soak/soak.lua [TASKS [ROUND [SEED]]]
-- (default 1,000,000 tasks in rounds of 100,000). Each round spawns its
-- tasks at once: some return at once, some after a sleep, some fail,
-- some wait for what never comes, some run their work under weft.timeout;
-- a canceller then cancels a random tenth of them, and every one that
-- waits forever. Each task that returns first sends its number on a
-- channel. After each round:
--   - every task has ended, as it should: fulfilled with its number,
--     rejected with its own error, or cancelled only if it was cancelled
--     (a timeout inside a task is its own result);
--   - the numbers received are exactly those of the fulfilled tasks, each
--     once: nothing lost, nothing duplicated;
--   - weft.stats() counted the round's tasks.
-- The resident size (VmRSS) is printed each round, after a full
-- collection; from the fourth round on it must stay within 10% + 8 MiB of
-- the third round's (a leak of a few bytes a task would pass that).
-- SPDX-License-Identifier: MIT
local weft = rawget(_G, "weft") or require("weft")

local TOTAL = math.tointeger(tonumber(arg and arg[1] or nil)) or 1000000
local ROUND = math.tointeger(tonumber(arg and arg[2] or nil)) or 100000
local SEED = math.tointeger(tonumber(arg and arg[3] or nil)) or 1
math.randomseed(SEED)
local random = math.random

local function fail(fmt, ...)
  io.stderr:write("soak: ", fmt:format(...), "\n")
  os.exit(2)
end

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

-- The kinds of task, and how each ends when nobody cancels it.
local QUICK, SLEEPY, FAILING, STUCK, TIMED = 1, 2, 3, 4, 5
local KINDS = { QUICK, QUICK, SLEEPY, SLEEPY, FAILING, STUCK, TIMED, TIMED }

local never = weft.future() -- nothing settles it

local function body(i, kind, done)
  if kind == QUICK then
    weft.yield()
  elseif kind == SLEEPY then
    weft.sleep(random(0, 3))
  elseif kind == FAILING then
    weft.yield()
    error({ soak = i }, 0)
  elseif kind == STUCK then
    never:await()
  else -- its work, under a deadline: either outcome is its own
    local ok, e = pcall(weft.timeout, random(0, 3), function()
      weft.sleep(random(0, 3))
    end)
    if not ok and not weft.is_timeout(e) then error(e, 0) end
  end
  done:send(i)
  return i
end

local function run_round(r, base)
  local n = math.min(ROUND, TOTAL - base)
  local done = weft.channel(n) -- room for every number: a send never waits
  local before = weft.stats()
  local tasks, kinds, cancelled = {}, {}, {}
  for i = 1, n do
    local kind = KINDS[random(#KINDS)]
    kinds[i] = kind
    tasks[i] = weft.spawn(body, i, kind, done)
  end
  weft.sleep(0) -- the tasks start
  for i = 1, n do
    if kinds[i] == STUCK or random(10) == 1 then
      cancelled[i] = true
      tasks[i]:cancel(random(2) == 1 and "soak" or nil)
    end
  end
  -- Every task ends: all_settled over slices of the round.
  local outcome = { fulfilled = 0, rejected = 0, cancelled = 0 }
  for first = 1, n, 10000 do
    local slice = table.move(tasks, first, math.min(first + 9999, n), 1, {})
    local settled = weft.all_settled(slice)
    for k = 1, settled.n do
      local i, s = first + k - 1, settled[k]
      local st = tasks[i]:state()
      outcome[st] = (outcome[st] or 0) + 1
      if st == "fulfilled" then
        if not s.ok or s.value ~= i then
          fail("round %d: task %d returned %s", r, i, tostring(s.value))
        end
      elseif st == "rejected" then
        if kinds[i] ~= FAILING or type(s.error) ~= "table" or
          s.error.soak ~= i then
          fail("round %d: task %d (kind %d) failed: %s", r, i, kinds[i],
            tostring(s.error))
        end
      elseif st == "cancelled" then
        if not cancelled[i] then
          fail("round %d: task %d was cancelled, nobody cancelled it", r, i)
        end
      else
        fail("round %d: task %d is %s after all_settled", r, i, st)
      end
      if kinds[i] == STUCK and st ~= "cancelled" then
        fail("round %d: stuck task %d ended %s", r, i, st)
      end
    end
  end
  -- The numbers sent are those of the fulfilled tasks, each once.
  done:close()
  local seen, got = {}, 0
  for i in done:iter() do
    if seen[i] then fail("round %d: task %d sent twice", r, i) end
    if tasks[i]:state() ~= "fulfilled" then
      fail("round %d: task %d sent, but ended %s", r, i, tasks[i]:state())
    end
    seen[i] = true
    got = got + 1
  end
  if got ~= outcome.fulfilled then
    fail("round %d: %d tasks fulfilled, %d numbers received", r,
      outcome.fulfilled, got)
  end
  local after = weft.stats()
  if after.spawned - before.spawned < n or after.live ~= 1 then
    fail("round %d: stats: %d spawned for %d tasks, %d live", r,
      after.spawned - before.spawned, n, after.live)
  end
  return n, outcome
end

local function main()
  local rss, t0, base, r = {}, weft.now(), 0, 0
  while base < TOTAL do
    r = r + 1
    local start = weft.now()
    local n, o = run_round(r, base)
    base = base + n
    collectgarbage()
    collectgarbage()
    rss[r] = rss_kb()
    print(("round %d: %d tasks, %d fulfilled, %d failed, %d cancelled, "
      .. "%d ms, RSS %.1f MiB, Lua %.1f MiB"):format(r, n, o.fulfilled,
      o.rejected, o.cancelled, weft.now() - start, rss[r] / 1024,
      collectgarbage("count") / 1024))
    if r >= 4 and rss[r] > rss[3] * 1.10 + 8 * 1024 then
      fail("RSS grew from %.1f MiB (round 3) to %.1f MiB (round %d)",
        rss[3] / 1024, rss[r] / 1024, r)
    end
  end
  print(("soak: %d tasks in %d rounds, %d ms, nothing lost or duplicated")
    :format(base, r, weft.now() - t0))
end

if weft.current() then main() else weft.run(main) end
