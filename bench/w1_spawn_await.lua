-- W1 spawn-await: spawn N tasks, task i returns i; await them in index
-- order; check the sum. Prints one JSON line (see BENCH.md).
-- usage: weft bench/w1_spawn_await.lua [N]
local IMPL = jit and "weft-luajit" or "weft" -- built on LuaJIT or 5.4
local N = tonumber(arg and arg[1]) or 100000

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local function body(i) return i end
local tasks = {}
local t0, c0 = weft.now(), os.clock()
for i = 1, N do tasks[i] = weft.spawn(body, i) end
local sum = 0
for i = 1, N do sum = sum + tasks[i]:await() end
local wall, cpu = weft.now() - t0, (os.clock() - c0) * 1000
local ok = sum == N * (N + 1) / 2
print(('{"impl":"%s","workload":"W1","n":%d,"wall_ms":%d,' ..
  '"ops_per_sec":%.0f,"cpu_ms":%.0f,"peak_rss_kb":%d,"ok":%s}'):format(
  IMPL, N, wall, N / math.max(wall, 1) * 1000, cpu, rss_kb(), tostring(ok)))
if not ok then os.exit(1) end
