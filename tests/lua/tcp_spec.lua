-- tcp_spec.lua - weft.tcp: an echo server written with weft.tcp.listen,
-- many clients at once, every read format, large writes against a slow
-- reader (backpressure), refused and silent servers, a server that ends
-- mid-stream, cancellation of connect, read and write, server:close, and
-- bad arguments and misuse of every function.
local H = require "helper"
local weft = H.weft
local async = H.async
local tcp = weft.tcp

-- Closed at once: left to the collector, it would close at some random
-- point, between two counts of open_fds (as fs_spec does).
local pid do
  local f = assert(io.open("/proc/self/stat"))
  pid = f:read("*n")
  f:close()
end

local function open_fds()
  local p = io.popen("ls /proc/" .. pid .. "/fd | wc -l")
  local n = tonumber(p:read("*a"))
  p:close()
  return n
end

-- An echo server: each line comes back with "\n". handled counts the
-- handlers that ended. Handlers swallow a reset peer, so tests that end
-- connections abruptly leave no failed task behind.
local function echo_server()
  local st = { handled = 0 }
  st.server = tcp.listen("127.0.0.1", 0, function(conn)
    pcall(function()
      H.each(function(line) conn:write(line, "\n") end, conn:lines())
    end)
    st.handled = st.handled + 1
  end)
  return st
end

-- Waits until cond() holds, letting other tasks and the loop run.
local function wait_until(cond)
  while not cond() do weft.sleep(1) end
end

-- A listener outside weft whose accept queue is full, so that a connect
-- to it stays pending: a Python process listening with backlog 0 that
-- never accepts. Returns its port and a function that stops it.
local function silent_listener()
  local p = assert(io.popen([[python3 -c '
import os, signal, socket, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
print(s.getsockname()[1], os.getpid(), flush=True)
time.sleep(60)']], "r"))
  local port, ppid = p:read("*n", "*n")
  return port, function()
    os.execute("kill " .. ppid)
    p:close()
  end
end

-- Connects to port until a connect stays pending: the first ones fill
-- the silent listener's queue. Returns the conns made meanwhile.
local function fill_queue(port)
  local made = {}
  for _ = 1, 8 do
    local ok, c = pcall(tcp.connect, "127.0.0.1", port, { timeout_ms = 100 })
    if not ok then
      assert(weft.is_timeout(c), tostring(c))
      return made
    end
    made[#made + 1] = c
  end
  error("the silent listener accepted every connection")
end

describe("weft.tcp", function()
  local fds_before
  setup(function()
    -- The first listen reserves a descriptor for the life of the loop
    -- (libuv's spare for running out of descriptors): count after it.
    H.run(function() tcp.listen("127.0.0.1", 0, function() end):close() end)
    fds_before = open_fds()
  end)
  teardown(function()
    collectgarbage()
    -- Every socket of every test is closed by now. A name lookup may
    -- still run on libuv's thread pool with a socket of the resolver
    -- open (one given up on runs to its end): wait for the count to come
    -- back, 5 s at most.
    local n = open_fds()
    for _ = 1, 100 do
      if n == fds_before then break end
      os.execute("sleep 0.05")
      n = open_fds()
    end
    assert.equal(fds_before, n)
  end)

  it("serves an echo server written with tcp.listen", async(function()
    local st = echo_server()
    local srv = st.server
    assert.equal("integer", H.mtype(srv.port))
    assert.is_true(srv.port > 0)
    local c = tcp.connect("127.0.0.1", srv.port)
    assert.equal(c, c:write("hello\n"))
    assert.equal("hello", c:read())
    c:write("a", 1, "\n", "b\n")
    assert.equal("a1", c:read("l"))
    assert.equal("b\n", c:read("L"))
    local ip, port = c:getpeername()
    assert.same({ "127.0.0.1", srv.port }, { ip, port })
    ip, port = c:getsockname()
    assert.equal("127.0.0.1", ip)
    assert.is_true(port > 0 and port ~= srv.port)
    assert.truthy(tostring(c):find("127.0.0.1:" .. srv.port, 1, true))
    assert.is_false(c:closed())
    assert.is_true(c:close())
    assert.is_true(c:closed())
    assert.is_true(c:close()) -- twice is harmless
    wait_until(function() return st.handled == 1 end)
    srv:close()
    assert.is_true(srv:closed())
    c:close()
  end))

  it("connects to a name, trying each of its addresses", async(function()
    local st = echo_server()
    local c = tcp.connect("localhost", st.server.port)
    c:write("x\n")
    assert.equal("x", c:read())
    c:close()
    wait_until(function() return st.handled == 1 end)
    st.server:close()
    c:close()
  end))

  it("serves 100 concurrent clients", async(function()
    local st = echo_server()
    local port = st.server.port
    local fns = {}
    for i = 1, 100 do
      fns[i] = function()
        local c = tcp.connect("127.0.0.1", port)
        local got = {}
        for k = 1, 10 do
          c:write(("client %d line %d\n"):format(i, k))
          got[k] = c:read()
        end
        c:close()
        return table.concat(got, ",")
      end
    end
    local r = weft.all(fns)
    for i = 1, 100 do
      assert.equal(("client %d line 1"):format(i), r[i]:match("^[^,]+"))
      assert.truthy(r[i]:find(("client %d line 10"):format(i), 1, true))
    end
    wait_until(function() return st.handled == 100 end)
    st.server:close()
  end))

  it("reads counts, lines, exact sizes and the rest", async(function()
    local go, release = weft.future()
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      conn:write("one\ntwo\r\n\nabcdefghij")
      go:await()
      conn:write("klmnop\nlast line")
      conn:close()
    end)
    local c = tcp.connect("127.0.0.1", srv.port)
    assert.equal("one", c:read("l"))
    assert.equal("two\r", c:read("*l"))
    assert.equal("", c:read())
    assert.equal("abc", c:read(3))
    -- A count returns what is there, up to the count.
    assert.equal("defghij", c:read(100))
    release()
    assert.equal("klm", c:read_exactly(3))
    assert.equal("", c:read_exactly(0))
    assert.equal("nop\n", c:read("L"))
    -- The last line has no newline; then the end.
    assert.equal("last line", c:read())
    assert.is_nil(c:read())
    assert.is_nil(c:read(5))
    assert.equal("", c:read("a"))
    srv:close()
    c:close()
  end))

  it("reads everything with \"a\", and lines with lines()", function()
    if H.puc51 then pending(H.why.forin_yield) return end
    H.run(function()
      local srv = tcp.listen("127.0.0.1", 0, function(conn)
        for i = 1, 1000 do conn:write(i, "\n") end
      end)
      local c = tcp.connect("127.0.0.1", srv.port)
      local n = 0
      for line in c:lines() do
        n = n + 1
        assert.equal(tostring(n), line)
        if n == 500 then break end
      end
      local rest = c:read("a")
      assert.equal(500, select(2, rest:gsub("\n", "")))
      assert.equal("501\n", rest:sub(1, 4))
      srv:close()
      c:close()
    end)
  end)

  it("limits the length of a line (opts.max_line)", async(function()
    local got = {}
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      -- A handler's connection takes the server's limit.
      local ok, err = pcall(conn.read, conn)
      got.handler = err
      got.rest = conn:read(100) -- the bytes stay, for a count
      conn:write("ok\n")
    end, { max_line = 8 })
    local c = tcp.connect("127.0.0.1", srv.port, { max_line = 5 })
    c:write("123456789\n")
    assert.equal("ok", c:read())
    srv:close()
    assert.equal("io", got.handler.kind)
    assert.equal("EMSGSIZE", got.handler.code)
    assert.matches("^conn:read: 127%.0%.0%.1:%d+: line longer than 8 bytes$",
      got.handler.message)
    assert.equal("123456789\n", got.rest)

    -- A line of exactly the limit passes; one byte more does not, whether
    -- its newline came with it or has not come yet.
    local go, release = weft.future()
    local srv2 = tcp.listen("127.0.0.1", 0, function(conn)
      conn:write("12345\n123456\n")
      go:await()
      conn:write("abcdef")
      weft.future():await() -- no newline ever comes
    end)
    local c2 = tcp.connect("127.0.0.1", srv2.port, { max_line = 5 })
    assert.equal("12345", c2:read())
    local ok, err = pcall(c2.read, c2, "L")
    assert.is_false(ok)
    assert.equal("conn:read: " .. c2:getpeername() .. ":" .. srv2.port ..
      ": line longer than 5 bytes", err.message)
    assert.equal("123456\n", c2:read(7))
    release()
    ok, err = pcall(c2.read, c2)
    assert.is_false(ok)
    assert.equal("EMSGSIZE", err.code)
    assert.equal("abcdef", c2:read(6))
    srv2:close({ cancel = true })

    -- A line of the limit whose newline comes later waits for it; at the
    -- end of the stream a longer last line raises, and stays for a count.
    local go4, release4 = weft.future()
    local srv4 = tcp.listen("127.0.0.1", 0, function(conn)
      conn:write("abcde")
      go4:await()
      conn:write("\n123456")
    end)
    local c4 = tcp.connect("127.0.0.1", srv4.port, { max_line = 5 })
    weft.spawn(function() weft.sleep(5) release4() end)
    assert.equal("abcde", c4:read())
    ok, err = pcall(c4.read, c4)
    assert.is_false(ok)
    assert.equal("EMSGSIZE", err.code)
    assert.equal("123456", c4:read(10))
    assert.is_nil(c4:read())
    srv4:close()

    -- math.huge: no limit; the default is 1 MiB.
    local big = ("x"):rep(1024 * 1024)
    local srv3 = tcp.listen("127.0.0.1", 0, function(conn)
      pcall(conn.write, conn, big, "\n", big, "y\n") -- c3 stops reading
    end)
    local c3 = tcp.connect("127.0.0.1", srv3.port)
    assert.equal(big, c3:read())
    ok, err = pcall(c3.read, c3)
    assert.equal("conn:read: " .. c3:getpeername() .. ":" .. srv3.port ..
      ": line longer than 1048576 bytes", err.message)
    local c5 = tcp.connect("127.0.0.1", srv3.port,
      { max_line = math.huge })
    assert.equal(big, c5:read())
    assert.equal(big .. "y", c5:read())
    srv3:close()
    c5:close()
    c3:close()
    c4:close()
    c2:close()
    c:close()
  end))

  it("reads exactly n bytes across many packets", async(function()
    local data = {}
    for i = 1, 20000 do data[i] = ("%05d"):format(i) end
    data = table.concat(data) -- 100,000 bytes
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      for i = 1, #data, 997 do
        conn:write(data:sub(i, i + 996))
        weft.yield()
      end
    end)
    local c = tcp.connect("127.0.0.1", srv.port)
    assert.equal(data:sub(1, 50000), c:read_exactly(50000))
    assert.equal(data:sub(50001), c:read_exactly(50000))
    assert.is_nil(c:read(1))
    srv:close()
    c:close()
  end))

  it("moves 8 MB to a slow reader intact", async(function()
    local parts = {}
    for i = 1, 8 * 1024 do
      parts[i] = ("%8d"):format(i) .. ("."):rep(1015) .. "\n"
    end
    local data = table.concat(parts)
    assert.equal(8 * 1024 * 1024, #data)
    local got = {}
    local done, finish = weft.future()
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      while true do
        local s = conn:read(16 * 1024)
        if s == nil then break end
        got[#got + 1] = s
        weft.sleep(0)
      end
      finish()
    end)
    local c = tcp.connect("127.0.0.1", srv.port)
    c:write(data)
    c:shutdown()
    done:await()
    assert.equal(#data, #table.concat(got))
    assert.is_true(table.concat(got) == data)
    srv:close()
    c:close()
  end))

  it("suspends a writer while nobody reads (backpressure)", async(function()
    local reading, start = weft.future()
    local total = 0
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      reading:await()
      while true do
        local s = conn:read(1024 * 1024)
        if s == nil then break end
        total = total + #s
      end
    end)
    local c = tcp.connect("127.0.0.1", srv.port)
    local chunk = ("x"):rep(1024 * 1024)
    local written = 0
    local writer = weft.spawn(function()
      for _ = 1, 64 do
        c:write(chunk)
        written = written + 1
      end
      c:shutdown()
    end)
    -- Give the writer every chance to run ahead: the kernel's buffers
    -- hold a few MB at most, so it must be stuck well before 64 MB.
    for _ = 1, 20 do weft.sleep(2) end
    assert.is_false(writer:done())
    assert.is_true(written < 64)
    start()
    writer:await()
    wait_until(function() return total == 64 * 1024 * 1024 end)
    srv:close()
    c:close()
  end))

  it("raises a connection refused error with the code", async(function()
    local srv = tcp.listen("127.0.0.1", 0, function() end)
    local port = srv.port
    srv:close()
    local e = H.raises(tcp.connect, "127.0.0.1", port)
    assert.equal("io", e.kind)
    assert.equal("ECONNREFUSED", e.code)
    assert.equal(("tcp.connect: 127.0.0.1:%d: Connection refused")
      :format(port), tostring(e))
  end))

  it("raises for a name that does not resolve", async(function()
    local e = H.raises(tcp.connect, "no-such-host.invalid", 80)
    assert.equal("io", e.kind)
    assert.truthy(e.code:match("^EAI_"))
    assert.truthy(tostring(e):find("tcp.connect: no-such-host.invalid:80: ",
      1, true))
  end))

  it("times out a read from a server that never answers", async(function()
    local go, release = weft.future()
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      go:await()
      conn:write("late\n")
    end)
    local c = tcp.connect("127.0.0.1", srv.port)
    local e = H.raises(weft.timeout, 30, function() return c:read() end)
    assert.is_true(weft.is_timeout(e))
    -- A cancelled read leaves the connection usable.
    release()
    assert.equal("late", c:read())
    assert.is_nil(c:read())
    srv:close()
    c:close()
  end))

  it("times out a connect that stays pending", async(function()
    local port, stop = silent_listener()
    local made = fill_queue(port)
    local e = H.raises(tcp.connect, "127.0.0.1", port, { timeout_ms = 20 })
    assert.is_true(weft.is_timeout(e))
    assert.equal("ETIMEDOUT", e.code)
    assert.equal(("tcp.connect: 127.0.0.1:%d: timed out after 20 ms")
      :format(port), tostring(e))
    -- Cancelled mid-connect, by weft.timeout and by cancel().
    e = H.raises(weft.timeout, 20, function()
      return tcp.connect("127.0.0.1", port)
    end)
    assert.is_true(weft.is_timeout(e))
    local t = weft.spawn(tcp.connect, "127.0.0.1", port)
    weft.sleep(5)
    assert.is_true(t:cancel())
    H.raises_cancel(t.await, t)
    for _, c in ipairs(made) do c:close() end
    stop()
  end))

  it("cancels a connect during its name lookup", async(function()
    local t = weft.spawn(tcp.connect, "localhost", 9)
    weft.yield()
    assert.is_true(t:cancel())
    H.raises_cancel(t.await, t)
  end))

  it("ends reads when the server closes mid-stream", async(function()
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      conn:write(("z"):rep(1000))
      conn:close()
    end)
    local c1 = tcp.connect("127.0.0.1", srv.port)
    local e = H.raises(c1.read_exactly, c1, 2000)
    assert.equal("io", e.kind)
    assert.equal("EOF", e.code)
    assert.truthy(tostring(e):find("ended after 1000 of 2000 bytes", 1,
      true))
    -- The bytes that came are still there.
    assert.equal(1000, #c1:read("a"))
    assert.is_nil(c1:read())
    c1:close()
    local c2 = tcp.connect("127.0.0.1", srv.port)
    assert.equal(("z"):rep(1000), c2:read("a"))
    srv:close()
    c2:close()
    c1:close()
  end))

  it("reports a reset as an io error, or the end", async(function()
    local closed, done = weft.future()
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      conn:read(1)
      weft.sleep(5) -- let the rest arrive, unread: closing then resets
      conn:close()
      done()
    end)
    local c = tcp.connect("127.0.0.1", srv.port)
    c:write(("q"):rep(100000))
    closed:await()
    local ok, e = pcall(function()
      while c:read(65536) do end
      -- The reset may also hit a write.
      for _ = 1, 100 do c:write(("w"):rep(65536)) end
    end)
    if not ok then
      assert.equal("io", e.kind)
      assert.truthy(e.code == "ECONNRESET" or e.code == "EPIPE", e.code)
    end
    srv:close()
    c:close()
  end))

  it("raises a reset after some bytes, not the end of the stream",
    async(function()
      -- The peer sends its bytes, then closes with bytes of ours unread
      -- in the kernel, which resets the connection (RST). The reset has
      -- come when the client reads: a truncated stream, not a whole one.
      local reset, done
      local srv = tcp.listen("127.0.0.1", 0, function(conn)
        conn:read(1)
        conn:write("hello\npartial")
        conn:close()
        done()
      end)
      local function reset_conn()
        reset, done = weft.future()
        local c = tcp.connect("127.0.0.1", srv.port)
        c:write(("x"):rep(200000)) -- more than the peer's one read takes
        reset:await()
        return c
      end
      local function reset_code(c, ...)
        local e = H.raises(c.read, c, ...)
        assert.equal("io", e.kind)
        return e.code
      end
      local c1 = reset_conn()
      assert.equal("ECONNRESET", reset_code(c1, "a"))
      assert.equal("hello\npartial", c1:read(100)) -- still readable
      assert.equal("ECONNRESET", reset_code(c1, 100))
      local c2 = reset_conn()
      assert.equal("hello\npartial", c2:read(100))
      assert.equal("ECONNRESET", reset_code(c2, 100))
      local c3 = reset_conn()
      local e = H.raises(c3.read_exactly, c3, 100)
      assert.equal("ECONNRESET", e.code)
      local c4 = reset_conn()
      assert.equal("hello", c4:read())
      assert.equal("partial", c4:read())
      assert.equal("ECONNRESET", reset_code(c4))
      srv:close()
      c4:close()
      c3:close()
      c2:close()
      c1:close()
    end))

  it("cancels a read and leaves the connection usable", async(function()
    local st = echo_server()
    local c = tcp.connect("127.0.0.1", st.server.port)
    local reader = weft.spawn(function() return c:read() end)
    weft.sleep(2)
    reader:cancel()
    H.raises_cancel(reader.await, reader)
    assert.is_false(c:closed())
    c:write("still here\n")
    assert.equal("still here", c:read())
    c:close()
    wait_until(function() return st.handled == 1 end)
    st.server:close()
    c:close()
  end))

  it("cancels a write and closes the connection", async(function()
    local ended, release = weft.future()
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      ended:await() -- reads nothing until the writer is gone
      pcall(conn.read, conn, "a")
    end)
    local c = tcp.connect("127.0.0.1", srv.port)
    local big = ("y"):rep(32 * 1024 * 1024)
    local writer = weft.spawn(function() c:write(big) end)
    weft.sleep(2)
    assert.is_false(writer:done())
    writer:cancel()
    H.raises_cancel(writer.await, writer)
    assert.is_true(c:closed())
    H.raises_match("conn:write: the connection is closed", c.write, c, "x")
    release()
    srv:close()
    c:close()
  end))

  it("wakes a task waiting on a connection that another closes",
    async(function()
      local st = echo_server()
      local c = tcp.connect("127.0.0.1", st.server.port)
      local reader = weft.spawn(function() return c:read() end)
      weft.sleep(1)
      c:close()
      H.raises_match("conn:read: the connection is closed", reader.await,
        reader)
      wait_until(function() return st.handled == 1 end)
      st.server:close()
      c:close()
    end))

  it("lets one task read and one write at a time", async(function()
    local st = echo_server()
    local c = tcp.connect("127.0.0.1", st.server.port)
    local reader = weft.spawn(function() return c:read() end)
    weft.sleep(1)
    H.raises_match("conn:read: another task is reading from this connection",
      c.read, c)
    c:write("ping\n") -- a writer beside the reader is fine
    assert.equal("ping", reader:await())
    c:close()
    wait_until(function() return st.handled == 1 end)
    st.server:close()
    c:close()
  end))

  it("half-closes with shutdown and reads the reply", async(function()
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      local all = conn:read("a")
      conn:write(#all, " bytes")
    end)
    local c = tcp.connect("127.0.0.1", srv.port)
    c:write(("m"):rep(300000))
    c:shutdown()
    assert.equal("300000 bytes", c:read("a"))
    H.raises(c.write, c, "more")
    srv:close()
    c:close()
  end))

  it("closes a handler's connection when the handler ends", async(function()
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      conn:write("bye\n") -- and returns without closing
    end)
    local c = tcp.connect("127.0.0.1", srv.port)
    assert.equal("bye", c:read())
    assert.is_nil(c:read())
    srv:close()
    c:close()
  end))

  it("closes a connection when the task that made it ends",
    async(function()
      local st = echo_server()
      local conn
      weft.spawn(function()
        conn = tcp.connect("127.0.0.1", st.server.port)
      end):await()
      assert.is_true(conn:closed())
      wait_until(function() return st.handled == 1 end)
      st.server:close()
    end))

  it("reports a failing handler with its task's name", function()
    local out, err, code = H.cli({}, [[
local srv = weft.tcp.listen("127.0.0.1", 0, function(conn)
  error("boom")
end)
local c = weft.tcp.connect("127.0.0.1", srv.port)
print(c:read())
]])
    assert.equal("nil\n", out)
    assert.truthy(err:find("unhandled error in task #%d+ 'tcp 127%.0%.0%.1:%d+'"
      .. ": [^\n]*boom"), err)
    assert.equal(1, code)
  end)

  it("runs each handler as a task named for its peer", async(function()
      local tasks = {}
      local srv = tcp.listen("127.0.0.1", 0, function(conn)
        tasks[#tasks + 1] = weft.current()
        conn:write(weft.current():name(), "\n")
      end)
      local c = tcp.connect("127.0.0.1", srv.port)
      local name = c:read()
      local _, lport = c:getsockname()
      assert.equal("tcp 127.0.0.1:" .. lport, name)
      assert.is_nil(c:read())
      assert.equal(1, #tasks)
      assert.equal("fulfilled", tasks[1]:state())
      srv:close()
      c:close()
    end))

  it("server:close stops accepting and lets handlers finish",
    async(function()
      local go, release = weft.future()
      local srv = tcp.listen("127.0.0.1", 0, function(conn)
        go:await()
        conn:write("finished\n")
      end)
      local port = srv.port
      local c = tcp.connect("127.0.0.1", port)
      c:write("x") -- the handler is running once the server got this
      weft.sleep(2)
      srv:close()
      srv:close() -- twice is harmless
      assert.equal("ECONNREFUSED", H.raises(tcp.connect, "127.0.0.1",
        port).code)
      release()
      assert.equal("finished", c:read())
      c:close()
    end))

  it("server:close{cancel = true} cancels the handlers", async(function()
    local started, cancelled = 0, 0
    local srv = tcp.listen("127.0.0.1", 0, function(conn)
      started = started + 1
      local ok, e = pcall(conn.read, conn)
      if not ok and weft.is_cancelled(e) then
        cancelled = cancelled + 1
      end
    end)
    local cs = {}
    for i = 1, 3 do
      cs[i] = tcp.connect("127.0.0.1", srv.port)
      cs[i]:write("x") -- no newline: the handlers keep waiting
    end
    wait_until(function() return started == 3 end)
    srv:close({ cancel = true })
    wait_until(function() return cancelled == 3 end)
    for i = 1, 3 do -- the end, or a reset if "x" was still unread
      local ok, r = pcall(cs[i].read, cs[i])
      assert.is_true(ok and r == nil or r.code == "ECONNRESET")
    end
    for i = 1, 3 do cs[i]:close() end
  end))

  it("server:wait returns when the server closes", async(function()
    local srv
    srv = tcp.listen("127.0.0.1", 0, function(conn)
      if conn:read() == "quit" then srv:close() end
    end)
    local waiter = weft.spawn(function() srv:wait() return "closed" end)
    local c = tcp.connect("127.0.0.1", srv.port)
    c:write("quit\n")
    assert.equal("closed", waiter:await())
    assert.is_true(srv:closed())
    srv:wait() -- closed already: returns at once
    -- A waiter can be cancelled.
    local srv2 = tcp.listen("127.0.0.1", 0, function() end)
    local w2 = weft.spawn(function() srv2:wait() end)
    weft.sleep(1)
    w2:cancel()
    H.raises_cancel(w2.await, w2)
    srv2:close()
    c:close()
  end))

  it("closes a forgotten server when its task ends", function()
    -- A forgotten server closes with its task; weft.run returns.
    local port = H.run(function()
      local srv = tcp.listen("127.0.0.1", 0, function() end)
      return srv.port
    end)
    assert.equal("ECONNREFUSED", H.run(function()
      return H.raises(tcp.connect, "127.0.0.1", port).code
    end))
  end)

  it("raises address in use for a taken port", async(function()
    local srv = tcp.listen("127.0.0.1", 0, function() end)
    local e = H.raises(tcp.listen, "127.0.0.1", srv.port, function() end)
    assert.equal("EADDRINUSE", e.code)
    assert.equal(("tcp.listen: 127.0.0.1:%d: Address already in use")
      :format(srv.port), tostring(e))
    srv:close()
  end))

  it("listens on a name and on IPv6", async(function()
    local srv = tcp.listen("localhost", 0, function(conn)
      conn:write("hi\n")
    end)
    assert.is_true(srv.port > 0)
    local c = tcp.connect("localhost", srv.port)
    assert.equal("hi", c:read())
    c:close()
    srv:close()
    local ok, srv6 = pcall(tcp.listen, "::1", 0, function(conn)
      conn:write("hi6\n")
    end)
    if not ok then return end -- no IPv6 here
    local c6 = tcp.connect("::1", srv6.port)
    assert.equal("hi6", c6:read())
    assert.equal("::1", (c6:getpeername()))
    assert.truthy(tostring(c6):find("[::1]:", 1, true))
    srv6:close()
    c6:close()
    c:close()
  end))

  it("rejects bad arguments, naming the function", async(function()
    local f = function() end
    local cases = {
      { "tcp.connect: host must be a non-empty string, got nil",
        tcp.connect },
      { "tcp.connect: host must be a non-empty string, got string ",
        tcp.connect, "" },
      { "tcp.connect: port must be an integer in 1..65535, got nil",
        tcp.connect, "h" },
      { "tcp.connect: port must be an integer in 1..65535, got string 80",
        tcp.connect, "h", "80" },
      { "tcp.connect: port must be an integer in 1..65535, got number 0",
        tcp.connect, "h", 0 },
      { "tcp.connect: port must be an integer in 1..65535, got number 70000",
        tcp.connect, "h", 70000 },
      { "tcp.connect: port must be an integer in 1..65535, got number 1.5",
        tcp.connect, "h", 1.5 },
      { "tcp.connect: opts must be a table or nil, got number 5",
        tcp.connect, "h", 80, 5 },
      { "tcp.connect: opts.timeout_ms must be a positive number, got number -1",
        tcp.connect, "h", 80, { timeout_ms = -1 } },
      { "tcp.connect: opts.timeout_ms must be a positive number, got string x",
        tcp.connect, "h", 80, { timeout_ms = "x" } },
      { "tcp.listen: host must be a non-empty string, got number 1",
        tcp.listen, 1, 0, f },
      { "tcp.listen: port must be an integer in 0..65535, got number -1",
        tcp.listen, "127.0.0.1", -1, f },
      { "tcp.listen: handler must be a function, got nil",
        tcp.listen, "127.0.0.1", 0 },
      { "tcp.listen: opts must be a table or nil, got boolean",
        tcp.listen, "127.0.0.1", 0, f, true },
      { "tcp.listen: opts.backlog must be a positive integer, got number 0",
        tcp.listen, "127.0.0.1", 0, f, { backlog = 0 } },
      { "tcp.connect: opts.max_line must be a positive integer or " ..
        "math.huge, got number 0", tcp.connect, "h", 80, { max_line = 0 } },
      { "tcp.listen: opts.max_line must be a positive integer or " ..
        "math.huge, got string 8", tcp.listen, "127.0.0.1", 0, f,
        { max_line = "8" } },
      { "tcp.listen: 999.1.1.1:0: ", tcp.listen, "999.1.1.1", 0, f },
    }
    for _, case in ipairs(cases) do
      H.raises_match(case[1], H.unpack(case, 2))
    end
    -- The error is reported at the caller's line.
    local e = H.raises(function() tcp.connect(nil, 80) end)
    assert.truthy(tostring(e):find("tcp_spec.lua:%d+: tcp.connect: host"))

    local st = echo_server()
    local c = tcp.connect("127.0.0.1", st.server.port)
    local conn_cases = {
      { 'conn:read: format must be a count, "l", "L" or "a", got string x',
        c.read, c, "x" },
      { 'conn:read: format must be a count, "l", "L" or "a", got table',
        c.read, c, {} },
      { "conn:read: count must be a positive integer, got number 0",
        c.read, c, 0 },
      { "conn:read: count must be a positive integer, got number 2.5",
        c.read, c, 2.5 },
      { "conn:read_exactly: count must be a non-negative integer, got nil",
        c.read_exactly, c },
      { "conn:read_exactly: count must be a non-negative integer, got "
        .. "number -1", c.read_exactly, c, -1 },
      { "conn:write: argument 2 must be a string or number, got table",
        c.write, c, "a", {} },
      { "conn:write: argument 1 must be a string or number, got nil",
        function() c:write(nil) end },
      { "conn:read: not a connection (use conn:read)", c.read, 5 },
      { "conn:write: not a connection (use conn:write)", c.write, {} },
      { "conn:close: not a connection (use conn:close)", c.close },
      { "conn:read_exactly: not a connection", c.read_exactly, "x", 1 },
      { "conn:shutdown: not a connection", c.shutdown },
      { "conn:getpeername: not a connection", c.getpeername },
    }
    for _, case in ipairs(conn_cases) do
      H.raises_match(case[1], H.unpack(case, 2))
    end
    local srv = st.server
    H.raises_match("server:close: not a server (use server:close)",
      srv.close, c)
    H.raises_match("server:close: opts must be a table or nil, got string x",
      srv.close, srv, "x")
    H.raises_match("server:wait: not a server", srv.wait, 1)
    c:close()
    wait_until(function() return st.handled == 1 end)
    srv:close()
    c:close()
  end))

  it("raises on a closed connection", async(function()
    local st = echo_server()
    local c = tcp.connect("127.0.0.1", st.server.port)
    c:close()
    H.raises_match("conn:read: the connection is closed", c.read, c)
    H.raises_match("conn:read_exactly: the connection is closed",
      c.read_exactly, c, 3)
    H.raises_match("conn:write: the connection is closed", c.write, c, "x")
    H.raises_match("conn:shutdown: the connection is closed", c.shutdown, c)
    H.raises_match("conn:getpeername: the connection is closed",
      c.getpeername, c)
    assert.equal("weft.tcp.Conn (closed)", tostring(c))
    wait_until(function() return st.handled == 1 end)
    st.server:close()
  end))

  it("raises outside a task", function()
    local c, srv = H.run(function()
      local st = echo_server()
      local conn = tcp.connect("127.0.0.1", st.server.port)
      conn:close()
      wait_until(function() return st.handled == 1 end)
      return conn, st.server
    end)
    local msg = "not inside a weft task (use weft.run or weft.spawn)"
    H.raises_match("tcp.connect: " .. msg, tcp.connect, "127.0.0.1", 80)
    H.raises_match("tcp.listen: " .. msg, tcp.listen, "127.0.0.1", 0,
      function() end)
    H.raises_match("conn:read: " .. msg, c.read, c)
    H.raises_match("conn:read_exactly: " .. msg, c.read_exactly, c, 1)
    H.raises_match("conn:write: " .. msg, c.write, c, "x")
    H.raises_match("conn:shutdown: " .. msg, c.shutdown, c)
    H.raises_match("server:wait: " .. msg, srv.wait, srv)
    -- Closing needs no task.
    assert.is_true(c:close())
    assert.is_true(srv:close())
    H.check_clean()
  end)

  it("leaves nothing behind after many short connections", async(function()
    local st = echo_server()
    for _ = 1, 200 do
      local c = tcp.connect("127.0.0.1", st.server.port)
      c:write("x\n")
      assert.equal("x", c:read())
      c:close()
    end
    wait_until(function() return st.handled == 200 end)
    st.server:close()
  end))
end)
