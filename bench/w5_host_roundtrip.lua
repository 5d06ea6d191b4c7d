-- W5 / W5c, run by bench/w5_host_roundtrip.c, which registers inc (a pool
-- function x -> x + 1) and clock_us (a sync function: monotonic us).
-- Arguments: N, then the mode: "seq" (W5), "c" (W5c) or "both".
local IMPL = jit and "weft-luajit" or "weft" -- built on LuaJIT or 5.4
local N, mode = ...
N, mode = tonumber(N) or 100000, mode or "both"

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local function report(workload, n, us, lat, ok, cpu_ms)
  table.sort(lat)
  local med = lat[math.floor(#lat / 2) + 1] or 0
  local p99 = lat[math.ceil(#lat * 0.99)] or 0
  print(('{"impl":"%s","workload":"%s","n":%d,"wall_ms":%.1f,' ..
    '"ops_per_sec":%.0f,"cpu_ms":%.0f,"median_us":%.1f,"p99_us":%.1f,' ..
    '"peak_rss_kb":%d,"ok":%s}'):format(IMPL, workload, n, us / 1000,
    n / us * 1e6, cpu_ms, med, p99, rss_kb(), tostring(ok)))
end

for _ = 1, 1000 do inc(1) end -- warm-up: start the workers

-- W5: in sequence.
local function sequential()
  local lat, x = {}, 0
  local c0, t0 = os.clock(), clock_us()
  for i = 1, N do
    local s = clock_us()
    x = inc(x)
    lat[i] = clock_us() - s
  end
  report("W5", N, clock_us() - t0, lat, x == N, (os.clock() - c0) * 1000)
  return x == N
end

-- W5c: 64 in flight, each task doing its share in sequence.
local function concurrent()
  local K, lat, sum = 64, {}, 0
  local c0, t0 = os.clock(), clock_us()
  local tasks = {}
  for k = 1, K do
    tasks[k] = weft.spawn(function()
      local acc = 0
      for _ = k, N, K do
        local s = clock_us()
        acc = acc + inc(0)
        lat[#lat + 1] = clock_us() - s
      end
      return acc
    end)
  end
  for k = 1, K do sum = sum + tasks[k]:await() end
  report("W5c", N, clock_us() - t0, lat, sum == N, (os.clock() - c0) * 1000)
  return sum == N
end

local ok = true
if mode ~= "c" then ok = sequential() and ok end
if mode ~= "seq" then ok = concurrent() and ok end
if not ok then os.exit(1) end
