-- W7 HTTP: CONNS tasks each do their share of N keep-alive GETs of a
-- 128-byte body, in sequence, through weft.http (one curl multi handle
-- per loop, connections reused).
-- usage: weft bench/w7_http.lua PORT [N] [CONNS]   (GET /body)
local IMPL = jit and "weft-luajit" or "weft" -- built on LuaJIT or 5.4
local port = assert(tonumber(arg and arg[1]), "usage: weft "
  .. "bench/w7_http.lua PORT [N] [CONNS]")
local N, CONNS = tonumber(arg[2]) or 10000, tonumber(arg[3]) or 50

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local url = ("http://127.0.0.1:%d/body"):format(port)
local get = weft.http.get
local good, bytes = 0, 0
local function client(count)
  for _ = 1, count do
    local r = get(url)
    if r.status == 200 then good = good + 1 end
    bytes = bytes + #r.body
  end
end

local t0, c0 = weft.now(), os.clock()
local clients = {}
for k = 1, CONNS do
  local share = math.floor(N / CONNS) + (k <= N % CONNS and 1 or 0)
  clients[k] = weft.spawn(client, share)
end
for k = 1, CONNS do clients[k]:await() end
local wall, cpu = weft.now() - t0, (os.clock() - c0) * 1000
local ok = good == N and bytes == N * 128
print(('{"impl":"%s","workload":"W7","n":%d,"wall_ms":%d,' ..
  '"ops_per_sec":%.0f,"cpu_ms":%.0f,"peak_rss_kb":%d,"ok":%s}'):format(
  IMPL, N, wall, N / math.max(wall, 1) * 1000, cpu, rss_kb(), tostring(ok)))
if not ok then os.exit(1) end
