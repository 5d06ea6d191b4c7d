-- W4 timers: N timers (weft.after) with delays 0-999 ms from Park-Miller
-- minstd, seed 42. Mode a: start all, then cancel all (the clock stops once
-- one scheduler turn has taken the cancellations). Mode b: let all fire.
-- usage: weft bench/w4_timers.lua a|b [N]
local IMPL = jit and "weft-luajit" or "weft" -- built on LuaJIT or 5.4
local mode = arg and arg[1] or "a"
local N = tonumber(arg and arg[2]) or 1000000
assert(mode == "a" or mode == "b", "mode must be a or b")

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local x, fired, sum = 42, 0, 0
local timers = {}
local all_fired, resolve = weft.future()
local function fire(d)
  fired, sum = fired + 1, sum + d
  if fired == N then resolve() end
end
local t0, c0 = weft.now(), os.clock()
local want = 0
for i = 1, N do
  x = x * 16807 % 2147483647
  local d = x % 1000
  want = want + d
  timers[i] = weft.after(d, fire, d)
end
local ok
if mode == "a" then
  local cancelled = 0
  for i = 1, N do
    if timers[i]:cancel() then cancelled = cancelled + 1 end
  end
  weft.yield()
  ok = cancelled == N and fired == 0 and weft.stats().timers == 0
else
  all_fired:await()
  ok = fired == N and sum == want
end
local wall, cpu = weft.now() - t0, (os.clock() - c0) * 1000
print(('{"impl":"%s","workload":"W4%s","n":%d,"wall_ms":%d,' ..
  '"ops_per_sec":%.0f,"cpu_ms":%.0f,"peak_rss_kb":%d,"ok":%s}'):format(
  IMPL, mode, N, wall, N / math.max(wall, 1) * 1000, cpu, rss_kb(),
  tostring(ok)))
if not ok then os.exit(1) end
