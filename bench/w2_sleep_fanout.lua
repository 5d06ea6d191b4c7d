-- W2 sleep fan-out: N tasks each sleep 100 ms; await all. Reports wall ms
-- (ideal 100) and peak RSS growth per sleeping task.
-- usage: weft bench/w2_sleep_fanout.lua [N]
local IMPL = jit and "weft-luajit" or "weft" -- built on LuaJIT or 5.4
local N = tonumber(arg and arg[1]) or 10000

local function rss_kb(field)
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)")) or 0
end

collectgarbage("collect")
local base = rss_kb("VmRSS")
local tasks = {}
local function body(i) weft.sleep(100) return i end
local t0, c0 = weft.now(), os.clock()
for i = 1, N do tasks[i] = weft.spawn(body, i) end
weft.yield() -- let every task start and park
local sleeping = rss_kb("VmRSS")
local sum = 0
for i = 1, N do sum = sum + tasks[i]:await() end
local wall, cpu = weft.now() - t0, (os.clock() - c0) * 1000
local ok = sum == N * (N + 1) / 2
print(('{"impl":"%s","workload":"W2","n":%d,"wall_ms":%d,' ..
  '"ops_per_sec":%.0f,"cpu_ms":%.0f,"peak_rss_kb":%d,' ..
  '"bytes_per_task":%.0f,"ok":%s}'):format(IMPL, N, wall,
  N / math.max(wall, 1) * 1000, cpu, rss_kb("VmHWM"),
  (sleeping - base) * 1024 / N, tostring(ok)))
if not ok then os.exit(1) end
