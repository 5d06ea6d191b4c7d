-- W3 ping-pong: two tasks, two channels (capacity 1), N round trips: the
-- pinger sends i and waits for the ponger's reply i + 1.
-- usage: weft bench/w3_pingpong.lua [N]
local IMPL = jit and "weft-luajit" or "weft" -- built on LuaJIT or 5.4
local N = tonumber(arg and arg[1]) or 1000000

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local ping, pong = weft.channel(1), weft.channel(1)
local t0, c0 = weft.now(), os.clock()
local ponger = weft.spawn(function()
  for _ = 1, N do pong:send(ping:recv() + 1) end
end)
local pinger = weft.spawn(function()
  local sum = 0
  for i = 1, N do
    ping:send(i)
    sum = sum + pong:recv()
  end
  return sum
end)
local sum = pinger:await()
ponger:await()
local wall, cpu = weft.now() - t0, (os.clock() - c0) * 1000
local ok = sum == N * (N + 1) / 2 + N
print(('{"impl":"%s","workload":"W3","n":%d,"wall_ms":%d,' ..
  '"ops_per_sec":%.0f,"cpu_ms":%.0f,"peak_rss_kb":%d,"ok":%s}'):format(
  IMPL, N, wall, N / math.max(wall, 1) * 1000, cpu, rss_kb(), tostring(ok)))
if not ok then os.exit(1) end
