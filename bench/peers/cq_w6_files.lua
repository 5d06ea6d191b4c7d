-- W6 files, Lua 5.4 + cqueues peer: cqueues has no asynchronous file I/O,
-- so the 64 coroutines read with blocking io.open/read/close (fast while
-- the files are in the page cache; each read blocks the whole loop).
-- usage: lua5.4 bench/peers/cq_w6_files.lua DIR NFILES PASSES
local C = require "common"
local cqueues = require "cqueues"
local promise = require "cqueues.promise"
local run = require "cq_common"
local dir, nfiles, passes = arg[1], tonumber(arg[2]) or 1000,
  tonumber(arg[3]) or 10
local K, total = 64, nfiles * passes

run(function()
  local next_read, good, bytes = 0, 0, 0
  local function reader()
    while next_read < total do
      local i = next_read % nfiles
      next_read = next_read + 1
      local f = assert(io.open(dir .. "/" .. i, "rb"))
      local data = f:read(4096)
      f:close()
      if C.file_ok(i, data) then good = good + 1 end
      bytes = bytes + #data
    end
  end
  local t0, c0 = cqueues.monotime(), os.clock()
  local tasks = {}
  for k = 1, K do tasks[k] = promise.new(reader) end
  for k = 1, K do tasks[k]:get() end
  local wall, cpu = (cqueues.monotime() - t0) * 1000, (os.clock() - c0) * 1000
  C.report("lua54-cqueues", "W6", total, wall, cpu, good == total and
    bytes == total * 4096)
end)
