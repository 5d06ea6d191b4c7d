-- W7 HTTP, Lua 5.4 + cqueues peer: a raw-socket HTTP/1.1 client on
-- cqueues.socket; CONNS keep-alive connections, each a coroutine doing its
-- share of the N GETs in sequence.
-- usage: lua5.4 bench/peers/cq_w7_http.lua PORT [N] [CONNS]
local C = require "common"
local cqueues = require "cqueues"
local promise = require "cqueues.promise"
local socket = require "cqueues.socket"
local run = require "cq_common"
local port, N, CONNS = tonumber(arg[1]), tonumber(arg[2]) or 10000,
  tonumber(arg[3]) or 50

-- One connection: returns the number of 200 responses and body bytes.
local function client(count)
  local s = assert(socket.connect("127.0.0.1", port))
  s:setmode("b", "b")
  local ok, bytes = 0, 0
  for _ = 1, count do
    assert(s:write(C.REQUEST))
    local status = tonumber(assert(s:read("*l")):match("^HTTP/1%.%d (%d+)"))
    local len = 0
    while true do
      local line = assert(s:read("*l"))
      if line == "" or line == "\r" then break end
      len = tonumber(line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")) or len
    end
    local body = assert(s:read(len))
    if status == 200 then ok = ok + 1 end
    bytes = bytes + #body
  end
  s:close()
  return ok, bytes
end

run(function()
  local t0, c0 = cqueues.monotime(), os.clock()
  local tasks, good, bytes = {}, 0, 0
  for k = 1, CONNS do
    tasks[k] = promise.new(client, N // CONNS + (k <= N % CONNS and 1 or 0))
  end
  for k = 1, CONNS do
    local g, b = tasks[k]:get()
    good, bytes = good + g, bytes + b
  end
  local wall, cpu = (cqueues.monotime() - t0) * 1000, (os.clock() - c0) * 1000
  C.report("lua54-cqueues", "W7", N, wall, cpu, good == N and
    bytes == N * 128, { cpu_us_per_req = cpu * 1000 / N })
end)
