-- W0 start-up: the process starts, loads the runtime and runs an empty
-- loop. The harness times the whole process from outside (hyperfine); the
-- line printed here only checks that the loop ran.
-- usage: weft bench/w0_startup.lua
local IMPL = jit and "weft-luajit" or "weft" -- built on LuaJIT or 5.4
local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local t0, c0 = weft.now(), os.clock()
local ran = false
weft.spawn(function() ran = true end):await()
local wall, cpu = weft.now() - t0, (os.clock() - c0) * 1000
print(('{"impl":"%s","workload":"W0","n":1,"wall_ms":%d,' ..
  '"ops_per_sec":0,"cpu_ms":%.3f,"peak_rss_kb":%d,"ok":%s}'):format(
  IMPL, wall, cpu, rss_kb(), tostring(ran)))
if not ran then os.exit(1) end
