-- W8b timer lateness: while one task runs the CPU-bound loop of W8, the
-- main task sleeps 1 ms again and again until the loop ends; the figure
-- is the largest lateness of those sleeps (ms past the 1 ms asked). The
-- harness runs it with `weft --preempt 2`: without preemption the first
-- sleep would wait for the whole loop.
-- usage: weft --preempt 2 bench/w8_latency.lua [N]
local IMPL = jit and "weft-luajit" or "weft" -- built on LuaJIT or 5.4
local N = tonumber(arg and arg[1]) or 100000000

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

-- The loop of W8, byte for byte.
local function work(n)
  local h = 0
  for i = 1, n do h = (h * 31 + i) % 1000003 end
  return h
end

local t0, c0 = weft.now(), os.clock()
local busy = weft.spawn(work, N)
local late, sleeps = 0, 0
repeat
  local s = weft.now()
  weft.sleep(1)
  late = math.max(late, weft.now() - s - 1)
  sleeps = sleeps + 1
until busy:done()
local h = busy:await()
local wall, cpu = weft.now() - t0, (os.clock() - c0) * 1000
local ok = h == math.floor(h) and h >= 0 and h < 1000003
print(('{"impl":"%s","workload":"W8b","n":%d,"wall_ms":%d,' ..
  '"ops_per_sec":%.0f,"cpu_ms":%.1f,"peak_rss_kb":%d,"late_ms":%d,' ..
  '"sleeps":%d,"preemptions":%d,"ok":%s}'):format(IMPL, N, wall,
  N / math.max(wall, 1) * 1000, cpu, rss_kb(), late, sleeps,
  weft.stats().preemptions, tostring(ok)))
if not ok then os.exit(1) end
