-- socket_spec.lua - weft.socket, OpenResty's cosocket shape: connect and
-- its errors, every receive pattern with OpenResty's results (nil, err,
-- partial), receiveuntil with and without a size, time limits that keep
-- what came, send of nested arrays, the keep-alive pool and its reuse
-- count, what a socket says once closed, cancellation, and bad arguments.
local H = require "helper"
local weft = H.weft
local async = H.async
local socket = weft.socket

-- A server whose handler is script(conn) for each connection; counts the
-- connections it accepted.
local function server(script)
  local st = { accepted = 0 }
  st.server = weft.tcp.listen("127.0.0.1", 0, function(conn)
    st.accepted = st.accepted + 1
    pcall(script, conn)
  end)
  st.port = st.server.port
  return st
end

-- A port nothing listens on.
local function closed_port()
  local s = weft.tcp.listen("127.0.0.1", 0, function() end)
  local port = s.port
  s:close()
  return port
end

describe("weft.socket", function()
  it("connects, or says why not in OpenResty's words", async(function()
    local s = socket.tcp()
    assert.same({ nil, "connection refused" },
      { s:connect("127.0.0.1", closed_port()) })
    local ok, err = s:connect("no-such-host.invalid", 80)
    assert.is_nil(ok)
    assert.matches("^no%-such%-host%.invalid could not be resolved %(", err)
    local st = server(function(c) c:write("hi\n") end)
    assert.equal(1, s:connect("127.0.0.1", st.port))
    assert.equal("hi", s:receive())
    assert.equal(1, s:close())
    assert.same({ nil, "closed" }, { s:close() })
    st.server:close()
  end))

  it("receives lines without CR and LF, counts, and everything",
    async(function()
      local st = server(function(c)
        c:write("one\r\ntwo\nth\rree\r\n12345")
        weft.sleep(20)
        c:write("678tail")
        c:close()
      end)
      local s = assert(socket.connect("127.0.0.1", st.port))
      assert.equal("one", s:receive())
      assert.equal("two", s:receive("*l"))
      assert.equal("three", s:receive("l"))
      assert.equal("", s:receive(0))
      assert.equal("12345678", s:receive(8))
      assert.equal("tail", s:receive("*a"))
      -- The end of the stream: "*a" gives "" once, then the socket is
      -- closed.
      assert.same({ nil, "closed", "" }, { s:receive() })
      assert.same({ nil, "closed" }, { s:send("x") })
      st.server:close()
    end))

  it("gives what came before the end as partial", async(function()
    local st = server(function(c)
      c:write("no newline")
      c:close()
    end)
    local s = assert(socket.connect("127.0.0.1", st.port))
    assert.same({ nil, "closed", "no newline" }, { s:receive() })
    s = assert(socket.connect("127.0.0.1", st.port))
    assert.same({ nil, "closed", "no newline" }, { s:receive(100) })
    st.server:close()
  end))

  it("times out a read, keeps the socket and hands out partial",
    async(function()
      local gate, release = weft.future()
      local wrote, wrote_done = weft.future()
      local st = server(function(c)
        c:write("part")
        wrote_done()
        gate:await()
        c:write("ial\nrest\n")
        c:read()
      end)
      local s = assert(socket.connect("127.0.0.1", st.port))
      wrote:await() -- "part" is on its way: the limit is for the rest
      s:settimeout(300)
      assert.same({ nil, "timeout", "part" }, { s:receive() })
      s:settimeout(20)
      assert.same({ nil, "timeout", "" }, { s:receive(3) })
      release()
      s:settimeout(5000)
      assert.equal("ial", s:receive()) -- a timeout leaves it open
      assert.equal("rest", s:receive())
      s:close()
      st.server:close()
    end))

  it("reads up to a pattern, whole or in sizes", async(function()
    local st = server(function(c)
      c:write("hello, world! -agentzh\r\n--abcedhb blah")
      weft.sleep(10)
      c:write(" blah\r\n--abc")
      weft.sleep(10)
      c:write("edhbEND")
      c:close()
    end)
    local s = assert(socket.connect("127.0.0.1", st.port))
    local reader = s:receiveuntil("\r\n--abcedhb")
    local chunks = {}
    while true do
      local data, err = reader(4)
      if not data then
        assert.is_nil(err)
        break
      end
      chunks[#chunks + 1] = data
    end
    assert.same({ "hell", "o, w", "orld", "! -a", "gent", "zh" }, chunks)
    -- Without a size, across reads; the pattern split between two.
    assert.equal(" blah blah", reader())
    local incl = s:receiveuntil("END", { inclusive = true })
    assert.equal("END", incl())
    assert.same({ nil, "closed", "" }, { reader() })
    st.server:close()
  end))

  it("receiveany gives what came, up to max", async(function()
    local st = server(function(c)
      c:write("abcdef")
      c:read()
    end)
    local s = assert(socket.connect("127.0.0.1", st.port))
    assert.equal("abc", s:receiveany(3))
    assert.equal("def", s:receiveany(100))
    s:close()
    st.server:close()
  end))

  it("sends strings, numbers and nested arrays", async(function()
    local got, done = weft.future()
    local st = server(function(c) done(c:read("a")) end)
    local s = assert(socket.connect("127.0.0.1", st.port))
    assert.equal(11, s:send({ "a", { "b", { 1, 2 } }, "cdef", 3.5 }))
    assert.equal(1, s:send(7))
    s:close()
    assert.equal("ab12cdef3.57", got:await())
    st.server:close()
  end))

  it("reuses kept-alive connections and counts it", async(function()
    local st = server(function(c)
      H.each(function(line) c:write(line, "\n") end, c:lines())
    end)
    for i = 1, 3 do
      local s = socket.tcp()
      assert.equal(1, s:connect("127.0.0.1", st.port))
      assert.equal(i - 1, s:getreusedtimes())
      assert.equal(5, s:send("ping\n"))
      assert.equal("ping", s:receive())
      assert.equal(1, s:setkeepalive(10000, 4))
      assert.same({ nil, "closed" }, { s:getreusedtimes() })
    end
    assert.equal(1, st.accepted)
    -- Another pool name: another connection.
    local s = socket.tcp()
    assert.equal(1, s:connect("127.0.0.1", st.port, { pool = "other" }))
    assert.equal(0, s:getreusedtimes())
    s:close()
    assert.equal(2, st.accepted)
    s = assert(socket.connect("127.0.0.1", st.port))
    assert.equal(3, s:getreusedtimes())
    s:close()
    st.server:close({ cancel = true })
  end))

  it("refuses to keep a connection with unread bytes", async(function()
    local st = server(function(c)
      c:write("asked\nunasked\n") -- one write: they come together
      c:read()
    end)
    local s = assert(socket.connect("127.0.0.1", st.port))
    assert.equal("asked", s:receive())
    assert.same({ nil, "connection in dubious state" },
      { s:setkeepalive() })
    -- It was closed: the next connect makes a new one.
    s = assert(socket.connect("127.0.0.1", st.port))
    assert.equal(0, s:getreusedtimes())
    s:close()
    st.server:close()
  end))

  it("does not hand out a kept connection the server closed",
    async(function()
      local gate, release = weft.future()
      local closed, close_done = weft.future()
      local st = server(function(c)
        c:write("bye\n")
        gate:await()
        c:close()
        close_done()
      end)
      local s = assert(socket.connect("127.0.0.1", st.port))
      assert.equal("bye", s:receive())
      assert.equal(1, s:setkeepalive())
      release() -- the server closes the kept connection
      closed:await()
      s = assert(socket.connect("127.0.0.1", st.port))
      assert.equal(0, s:getreusedtimes())
      assert.equal("bye", s:receive())
      s:close()
      st.server:close()
    end))

  it("a cancelled task's receive ends at once", async(function()
    local st = server(function(c) c:read() end)
    local s = assert(socket.connect("127.0.0.1", st.port))
    local t = weft.spawn(function() return s:receive() end)
    weft.sleep(5)
    t:cancel()
    H.raises_cancel(t.await, t)
    s:close()
    st.server:close()
  end))

  it("must run inside a task", function()
    local s = socket.tcp()
    H.raises_match("sock:connect: not inside a weft task", s.connect, s,
      "127.0.0.1", 1)
    H.raises_match("sock:receive: not inside a weft task", s.receive, s)
  end)

  it("refuses bad arguments, naming them", async(function()
    local s = socket.tcp()
    H.raises_match("sock:settimeout: timeout must be a positive number",
      s.settimeout, s, -1)
    H.raises_match("sock:connect: port must be an integer in 0..65535",
      s.connect, s, "127.0.0.1", 70000)
    H.raises_match("sock:connect: host must be a non-empty string",
      s.connect, s, 1, 1)
    H.raises_match("sock:receive: bad pattern argument: *x", s.receive, s,
      "*x")
    H.raises_match("sock:receiveuntil: pattern must be a string",
      s.receiveuntil, s, "")
    H.raises_match("sock:send: data must be a string, number or array",
      s.send, s, true)
    H.raises_match("sock:send: bad data: a boolean in the table", s.send, s,
      { "a", false })
    H.raises_match("sock:receive: not a cosocket", s.receive, {})
    assert.same({ nil, "closed", "" }, { s:receive() })
    assert.same({ nil, "closed" }, { s:setkeepalive() })
    assert.same({ nil, "unix domain sockets are not supported yet" },
      { s:connect("unix:/nowhere") })
  end))
end)
