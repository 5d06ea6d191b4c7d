-- W6 files: 64 tasks read the file set `passes` times; each read is one
-- weft.fs.read (open, size, read and close in one pool job).
-- usage: weft bench/w6_files.lua DIR NFILES PASSES  (file i is DIR/<i>:
-- 4096 bytes, the first and the last i % 251)
local IMPL = jit and "weft-luajit" or "weft" -- built on LuaJIT or 5.4
local dir = assert(arg and arg[1], "usage: weft bench/w6_files.lua DIR "
  .. "NFILES PASSES")
local nfiles, passes = tonumber(arg[2]) or 1000, tonumber(arg[3]) or 10
local K, total = 64, nfiles * passes

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local function file_ok(i, data)
  local b = string.char(i % 251)
  return #data == 4096 and data:sub(1, 1) == b and data:sub(4096) == b
end

local read = weft.fs.read
local next_read, good, bytes = 0, 0, 0
local function reader()
  while next_read < total do
    local i = next_read % nfiles
    next_read = next_read + 1
    local data = read(dir .. "/" .. i)
    if file_ok(i, data) then good = good + 1 end
    bytes = bytes + #data
  end
end

local t0, c0 = weft.now(), os.clock()
local readers = {}
for k = 1, K do readers[k] = weft.spawn(reader) end
for k = 1, K do readers[k]:await() end
local wall, cpu = weft.now() - t0, (os.clock() - c0) * 1000
local ok = good == total and bytes == total * 4096
print(('{"impl":"%s","workload":"W6","n":%d,"wall_ms":%d,' ..
  '"ops_per_sec":%.0f,"cpu_ms":%.0f,"peak_rss_kb":%d,"ok":%s}'):format(
  IMPL, total, wall, total / math.max(wall, 1) * 1000, cpu, rss_kb(),
  tostring(ok)))
if not ok then os.exit(1) end
