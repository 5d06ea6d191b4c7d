-- W7 HTTP, Lua + luv peer: a raw-socket HTTP/1.1 client on uv.new_tcp;
-- CONNS keep-alive connections, each a task doing its share of the N GETs
-- in sequence.
-- usage: lua5.4|luajit bench/peers/luv_w7_http.lua PORT [N] [CONNS]
local C = require "common"
local sched = require "luv_sched"
local uv = sched.uv
local IMPL = jit and "luajit-luv" or "lua54-luv"
local port, N, CONNS = tonumber(arg[1]), tonumber(arg[2]) or 10000,
  tonumber(arg[3]) or 50

-- One connection: returns the number of 200 responses and body bytes.
local function client(count)
  local me, tcp, buf, waiting = sched.current(), uv.new_tcp(), "", false
  tcp:connect("127.0.0.1", port, function(err)
    me.err = err
    sched.wake(me)
  end)
  sched.suspend()
  assert(not me.err, me.err)
  tcp:read_start(function(err, chunk)
    if err or not chunk then me.err = err or "connection closed" end
    buf = buf .. (chunk or "")
    if waiting then
      waiting = false
      sched.wake(me)
    end
  end)
  local ok, bytes = 0, 0
  for _ = 1, count do
    tcp:write(C.REQUEST)
    while true do
      local status, len, body = C.http_response(buf)
      if status then
        buf = buf:sub(len + 1)
        if status == 200 then ok = ok + 1 end
        bytes = bytes + body
        break
      end
      assert(not me.err, me.err)
      waiting = true
      sched.suspend()
    end
  end
  tcp:close()
  return ok, bytes
end

sched.run(function()
  local t0, c0 = uv.hrtime(), os.clock()
  local tasks, good, bytes = {}, 0, 0
  for k = 1, CONNS do
    tasks[k] = sched.spawn(client,
      math.floor(N / CONNS) + (k <= N % CONNS and 1 or 0))
  end
  for k = 1, CONNS do
    local g, b = sched.await(tasks[k])
    good, bytes = good + g, bytes + b
  end
  local wall, cpu = (uv.hrtime() - t0) / 1e6, (os.clock() - c0) * 1000
  C.report(IMPL, "W7", N, wall, cpu, good == N and bytes == N * 128,
    { cpu_us_per_req = cpu * 1000 / N })
end)
