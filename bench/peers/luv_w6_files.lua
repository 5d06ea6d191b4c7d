-- W6 files, Lua + luv peer: 64 tasks read the file set `passes` times;
-- each read is uv.fs_open, uv.fs_read, uv.fs_close, three trips through
-- libuv's thread pool, the calling task parked on each.
-- usage: lua5.4|luajit bench/peers/luv_w6_files.lua DIR NFILES PASSES
local C = require "common"
local sched = require "luv_sched"
local uv = sched.uv
local IMPL = jit and "luajit-luv" or "lua54-luv"
local dir, nfiles, passes = arg[1], tonumber(arg[2]) or 1000,
  tonumber(arg[3]) or 10
local K, total = 64, nfiles * passes

local function read_file(path)
  local me = sched.current()
  local function done(err, v)
    me.err = err
    sched.wake(me, v)
  end
  uv.fs_open(path, "r", 0, done)
  local fd = assert(sched.suspend(), me.err)
  uv.fs_read(fd, 4096, 0, done)
  local data = assert(sched.suspend(), me.err)
  uv.fs_close(fd, done)
  sched.suspend()
  return data
end

sched.run(function()
  local next_read, good, bytes = 0, 0, 0
  local function reader()
    while next_read < total do
      local i = next_read % nfiles
      next_read = next_read + 1
      local data = read_file(dir .. "/" .. i)
      if C.file_ok(i, data) then good = good + 1 end
      bytes = bytes + #data
    end
  end
  local t0, c0 = uv.hrtime(), os.clock()
  local tasks = {}
  for k = 1, K do tasks[k] = sched.spawn(reader) end
  for k = 1, K do sched.await(tasks[k]) end
  local wall, cpu = (uv.hrtime() - t0) / 1e6, (os.clock() - c0) * 1000
  C.report(IMPL, "W6", total, wall, cpu, good == total and
    bytes == total * 4096)
end)
