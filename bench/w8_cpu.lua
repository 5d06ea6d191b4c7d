-- W8 CPU fairness: a CPU-bound Lua loop run inside a weft task; the
-- harness compares its CPU time with the same loop in plain lua5.4
-- (bench/peers/lua_w8_cpu.lua). The timer-latency half of W8 waits for
-- preemption.
-- usage: weft bench/w8_cpu.lua [N]
local IMPL = jit and "weft-luajit" or "weft" -- built on LuaJIT or 5.4
local N = tonumber(arg and arg[1]) or 30000000

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

-- The same function, byte for byte, as in the plain Lua program.
local function work(n)
  local h = 0
  for i = 1, n do h = (h * 31 + i) % 1000003 end
  return h
end

local t0, c0 = weft.now(), os.clock()
local h = weft.spawn(work, N):await()
local wall, cpu = weft.now() - t0, (os.clock() - c0) * 1000
-- The harness also checks that hash equals the plain Lua program's.
local ok = h == math.floor(h) and h >= 0 and h < 1000003
print(('{"impl":"%s","workload":"W8","n":%d,"wall_ms":%d,' ..
  '"ops_per_sec":%.0f,"cpu_ms":%.1f,"peak_rss_kb":%d,"hash":%d,"ok":%s}')
  :format(IMPL, N, wall, N / math.max(wall, 1) * 1000, cpu, rss_kb(), h,
  tostring(ok)))
if not ok then os.exit(1) end
