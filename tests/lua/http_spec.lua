-- http_spec.lua - weft.http against tests/http_server.py (started here on
-- 127.0.0.1 with ephemeral ports, with a test CA made at start-up): verbs,
-- headers, redirects, chunked and streamed bodies, limits, failures,
-- timeouts, cancellation, TLS, many requests in flight, keep-alive and
-- bad arguments; HTTP/2 streams against a local nginx.
local H = require "helper"
local weft = H.weft
local async = H.async
local http = weft.http

local srv = {}

-- Starts the server; its first line says where it listens. exec: no shell
-- in between, so the server's parent is this process (it ends with it).
-- LD_PRELOAD (the sanitizer runtimes of an ASan build) is not for python.
local function start_server(tls)
  local dir = os.getenv("WEFT_SOURCE_DIR") or "."
  local p = assert(io.popen("exec env -u LD_PRELOAD python3 "
    .. H.shell_quote(dir .. "/tests/http_server.py")
    .. (tls == false and "" or " --tls"), "r"))
  local line = assert(p:read("*l"), "the test server did not start")
  local u, s, ca, closed, pid =
    line:match("^(%S+) (%S+) (%S+) (%d+) (%d+)$")
  assert(u, "unexpected first line from the server: " .. line)
  return { url = u, tls = s, ca = ca, closed = tonumber(closed), pid = pid,
    pipe = p }
end

local function stop_server(s)
  if s.pid then os.execute("kill " .. s.pid) end
  if s.pipe then s.pipe:close() end
end

local function connections()
  return tonumber(http.get(srv.url .. "/connections").body)
end

local function hangs()
  return tonumber(http.get(srv.url .. "/hangs").body)
end

local function streamed()
  return tonumber(http.get(srv.url .. "/streamed").body)
end

-- Closed at once: left to the collector, it would close at some random
-- point, between two counts of open_fds (as fs_spec does).
local pid do
  local f = assert(io.open("/proc/self/stat"))
  pid = f:read("*n")
  f:close()
end

-- The test server's URL with the machine's host name for 127.0.0.1: a
-- name curl resolves in its resolver thread.
local function by_host_name(url)
  local f = assert(io.open("/proc/sys/kernel/hostname"))
  local host = f:read("*l")
  f:close()
  return (url:gsub("127%.0%.0%.1", host))
end

-- The sockets this process has open. Sockets only: the count is made by
-- a child of io.popen, and the write end of popen's own pipe may still be
-- open in this process when the child looks (popen closes it once the
-- shell has started; on a loaded machine the child can look first), so
-- counting every descriptor saw one more now and then.
local function open_fds()
  local p = io.popen("ls -l /proc/" .. pid .. "/fd | grep -c socket:")
  local n = tonumber(p:read("*a"))
  p:close()
  return n
end

describe("weft.http", function()
  lazy_setup(function() srv = start_server() end)
  lazy_teardown(function() stop_server(srv) end)

  describe("requests", function()
    -- (First: the HTTPS tests below load libcurl into the process.)
    it("serves http:// URLs natively, without loading libcurl",
      async(function()
        assert.equal("hello", http.get(srv.url .. "/hello").body)
        assert.equal("x", http.post(srv.url .. "/echo", "x").body)
        local maps = assert(io.open("/proc/self/maps")):read("*a")
        assert.is_nil(maps:find("libcurl", 1, true))
      end))

    it("gets a body, status, headers and the final URL", async(function()
      local r = http.get(srv.url .. "/hello")
      assert.equal(200, r.status)
      assert.equal("hello", r.body)
      assert.equal("text/plain", r.headers["content-type"])
      assert.equal("5", r.headers["content-length"])
      assert.equal(srv.url .. "/hello", r.url)
    end))

    it("posts a body, zero bytes included", async(function()
      local body = "a\0b\255" .. string.rep("x", 200000)
      local r = http.post(srv.url .. "/echo", body)
      assert.equal(200, r.status)
      assert.equal("POST", r.headers["x-method"])
      assert.equal(body, r.body)
      r = http.post(srv.url .. "/echo", "")
      assert.equal("POST", r.headers["x-method"])
      assert.equal("", r.body)
    end))

    it("sends any method, with or without a body", async(function()
      local r = http.request { method = "PUT", url = srv.url .. "/echo",
        body = "put body" }
      assert.equal("PUT", r.headers["x-method"])
      assert.equal("put body", r.body)
      r = http.request { method = "DELETE", url = srv.url .. "/echo" }
      assert.equal("DELETE", r.headers["x-method"])
      r = http.request { url = srv.url .. "/echo", body = "x" }
      assert.equal("POST", r.headers["x-method"]) -- a body defaults to POST
      r = http.request { method = "HEAD", url = srv.url .. "/hello" }
      assert.equal(200, r.status)
      assert.equal("", r.body)
      assert.equal("5", r.headers["content-length"])
    end))

    it("sends request headers; removes and empties curl's", async(function()
      local r = http.get(srv.url .. "/echo", { headers = {
        ["X-Test"] = "one two", ["X-Num"] = 42, ["X-List"] = { "a", "b" },
        ["User-Agent"] = false, Accept = "text/x-weft" } })
      local h = r.headers
      assert.equal("one two", h["x-echo-x-test"])
      assert.equal("42", h["x-echo-x-num"])
      assert.equal("a, b", h["x-echo-x-list"])
      assert.equal("text/x-weft", h["x-echo-accept"])
      assert.is_nil(h["x-echo-user-agent"])
      assert.is_nil(h["x-echo-expect"])
    end))

    it("joins repeated response headers", async(function()
      local h = http.get(srv.url .. "/multi").headers
      assert.equal("one, two", h["x-multi"])
      assert.equal("a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT\nb=2",
        h["set-cookie"])
    end))

    it("returns HTTP error statuses as responses", async(function()
      local r = http.get(srv.url .. "/status/404")
      assert.equal(404, r.status)
      assert.equal("status 404", r.body)
      assert.equal(500, http.get(srv.url .. "/status/500").status)
      assert.equal(404, http.get(srv.url .. "/nowhere").status)
    end))

    it("follows redirects, or not", async(function()
      local r = http.get(srv.url .. "/redirect/3")
      assert.equal(200, r.status)
      assert.equal("hello", r.body)
      assert.equal(srv.url .. "/hello", r.url)
      r = http.get(srv.url .. "/redirect/3", { follow_redirects = false })
      assert.equal(302, r.status)
      assert.equal("/redirect/2", r.headers.location)
      assert.equal("moved", r.body)
      local e = H.raises(http.get, srv.url .. "/redirect/30")
      assert.equal("io", e.kind)
      assert.equal("TOO_MANY_REDIRECTS", e.code)
    end))

    it("joins folded header lines", async(function()
      -- libcurl 7.88 kept a pointer to the freed last header of a handle's
      -- previous transfer: a folded first header line was appended to
      -- it (a use-after-free under ASan). Requests made before these.
      http.get(srv.url .. "/hello")
      for _ = 1, 3 do
        local r = http.get(srv.url .. "/folded")
        assert.equal("folded", r.body)
        assert.equal("one two three", r.headers["x-folded"])
        assert.equal("a b", r.headers["x-empty-folds"])
        assert.equal("after", r.headers["x-after"])
      end
      -- A folded first line continues no field: libcurl before 8.1
      -- refuses the response, later ones pass the line and weft drops it.
      for _ = 1, 3 do
        local ok, r = pcall(http.get, srv.url .. "/folded-first")
        if ok then
          assert.equal("folded-first", r.body)
          assert.is_nil(r.headers["x-lead"])
          assert.equal("after", r.headers["x-after"])
        else
          assert.equal("BAD_FUNCTION_ARGUMENT", r.code, tostring(r))
        end
      end
    end))

    it("reads chunked bodies", async(function()
      assert.equal("alphabetagamma", http.get(srv.url .. "/chunked").body)
    end))

    it("runs requests concurrently", async(function()
      local list = {}
      for i = 1, 20 do
        list[i] = function() return http.get(srv.url .. "/page/" .. i).body end
      end
      local bodies = weft.all(list)
      for i = 1, 20 do
        assert.equal(("page %d\n"):format(i), bodies[i]:match("^[^\n]*\n"))
      end
    end))
  end)

  describe("failures", function()
    it("raises io errors naming the function and URL", async(function()
      local url = ("http://127.0.0.1:%d/"):format(srv.closed)
      local e = H.raises(http.get, url)
      assert.equal("io", e.kind)
      assert.equal("COULDNT_CONNECT", e.code)
      assert.equal("http.get", e.name)
      assert.truthy(tostring(e):find("http.get: " .. url .. ": ", 1, true))
      assert.is_false(weft.is_timeout(e))
      e = H.raises(http.post, url, "x")
      assert.truthy(tostring(e):find("http.post: " .. url, 1, true))
    end))

    it("fails on a body cut short by the server", async(function()
      local url = srv.url .. "/close-mid"
      local e = H.raises(http.get, url)
      assert.equal("io", e.kind)
      assert.equal("PARTIAL_FILE", e.code)
      assert.truthy(tostring(e):find("http.get: " .. url .. ": ", 1, true))
      assert.equal("hello", http.get(srv.url .. "/hello").body)
    end))

    it("times out on a server that never answers", async(function()
      local url = srv.url .. "/hang"
      local e = H.raises(http.get, url, { timeout_ms = 50 })
      assert.is_true(weft.is_timeout(e))
      assert.equal("http.get: " .. url .. ": timed out after 50 ms",
        e.message)
      assert.equal("hello", http.get(srv.url .. "/hello").body)
    end))

    it("gives way to weft.timeout, and the next request works",
      async(function()
        local e = H.raises(weft.timeout, 50, function()
          return http.get(srv.url .. "/hang")
        end)
        assert.is_true(weft.is_timeout(e))
        assert.equal("hello", http.get(srv.url .. "/hello").body)
      end))

    it("cancels a request in flight", async(function()
      local started = false
      local t = weft.spawn(function()
        started = true
        return http.get(srv.url .. "/hang")
      end)
      while not started do weft.sleep(1) end
      weft.sleep(20) -- lets it connect; any point of the request will do
      t:cancel()
      H.raises_cancel(t.await, t)
      assert.equal("cancelled", t:state())
      assert.equal("hello", http.get(srv.url .. "/hello").body)
    end))

    it("closes the connections of cancelled requests", async(function()
      http.get(srv.url .. "/hello") -- a connection in the cache already
      local before, started = open_fds(), hangs()
      local tasks = {}
      for i = 1, 10 do
        tasks[i] = weft.spawn(http.get, srv.url .. "/hang")
      end
      -- Cancelled once the server holds all ten.
      while hangs() < started + 10 do weft.sleep(5) end
      for i = 1, 10 do tasks[i]:cancel() end
      for i = 1, 10 do H.raises_cancel(tasks[i].await, tasks[i]) end
      -- (Fewer is fine: curl may close idle connections of its cache.)
      local after = open_fds()
      assert.is_true(after <= before, ("%d fds open, %d before"):format(after,
        before))
      assert.equal("hello", http.get(srv.url .. "/hello").body)
    end))

    it("limits the body with max_body", async(function()
      local url = srv.url .. "/bytes/100000"
      local e = H.raises(http.get, url, { max_body = 1000 })
      assert.equal("io", e.kind)
      assert.equal("FILESIZE_EXCEEDED", e.code)
      assert.equal("http.get: " .. url
        .. ": the body exceeds max_body (1000 bytes)", e.message)
      assert.equal(100000, #http.get(url, { max_body = 100000 }).body)
      -- Without a Content-Length the limit applies as the bytes come.
      e = H.raises(http.get, srv.url .. "/chunked", { max_body = 6 })
      assert.equal("FILESIZE_EXCEEDED", e.code)
      e = H.raises(http.get, url, { max_body = 1000, stream = true })
      assert.equal("FILESIZE_EXCEEDED", e.code)
    end))
  end)

  describe("a server that sends without end", function()
    local MiB = 1024 * 1024

    it("fails a buffered body past 64 MiB unless max_body says otherwise",
      async(function()
        local url = srv.url .. "/forever/" .. 256 * MiB
        local e = H.raises(http.get, url)
        assert.equal("FILESIZE_EXCEEDED", e.code)
        assert.equal("http.get: " .. url
          .. ": the body exceeds max_body (67108864 bytes)", e.message)
        url = srv.url .. "/forever/" .. 65 * MiB
        assert.equal(65 * MiB, #http.get(url, { max_body = math.huge }).body)
        local r = http.get(url, { stream = true }) -- no limit for a stream
        local n = 0
        H.each(function(chunk) n = n + #chunk end, r.read, r)
        assert.equal(65 * MiB, n)
      end))

    it("times out while the bytes stream in as fast as they are taken",
      async(function()
        -- 256 MiB, sent faster than weft reads: the deadline comes first,
        -- also for a buffered body, which never waits for the script,
        -- and for a stream whose reads always find bytes.
        -- (Five times: whether the server outran weft all along varies.)
        local n = 256 * MiB
        local url = srv.url .. "/forever/" .. n
        local before, e
        for _ = 1, 5 do
          before = streamed()
          e = H.raises(http.get, url, { timeout_ms = 20,
            max_body = math.huge })
          assert.is_true(weft.is_timeout(e), tostring(e))
          assert.is_true(streamed() - before < n)
        end
        -- A stream's reader that works on each chunk finds the next one
        -- there already, each time: its reads never wait.
        url = srv.url .. "/forever/" .. 4 * MiB
        local r = http.get(url, { stream = true, timeout_ms = 20 })
        e = H.raises(function()
          while r:read() do weft.sleep(5) end
        end)
        assert.is_true(weft.is_timeout(e), tostring(e))
      end))
  end)

  describe("many requests", function()
    it("makes 1,000 requests with at most 50 in flight", async(function()
      local n, next_i, in_flight, peak, done = 1000, 0, 0, 0, 0
      local seen = {}
      local workers = {}
      for w = 1, 50 do
        workers[w] = function()
          while next_i < n do
            next_i = next_i + 1
            local i = next_i
            in_flight = in_flight + 1
            if in_flight > peak then peak = in_flight end
            local r = http.get(srv.url .. "/page/" .. i)
            in_flight = in_flight - 1
            assert.equal(200, r.status)
            assert.equal(("page %d\n/page/%d\n/page/%d\n/page/%d\n/page/%d\n")
              :format(i, 4 * i - 2, 4 * i - 1, 4 * i, 4 * i + 1), r.body)
            seen[i] = true
            done = done + 1
          end
        end
      end
      weft.all(workers)
      assert.equal(n, done)
      for i = 1, n do assert.is_true(seen[i]) end
      assert.is_true(peak <= 50)
    end))

    it("reuses connections (keep-alive)", async(function()
      local before = connections()
      for _ = 1, 20 do
        assert.equal("hello", http.get(srv.url .. "/hello").body)
      end
      local opened = connections() - before
      assert.is_true(opened < 20, opened .. " connections for 20 requests")
    end))

    it("keeps the connections of 50 tasks making requests in a row",
      async(function()
        local fns = {}
        for i = 1, 50 do
          fns[i] = function()
            for _ = 1, 10 do
              assert.equal("hello", http.get(srv.url .. "/hello").body)
            end
          end
        end
        weft.all(fns) -- up to 50 connections, now idle in curl's cache
        local before = connections()
        weft.all(fns)
        local opened = connections() - before
        assert.is_true(opened <= 5, opened .. " new connections for 500 "
          .. "requests of 50 tasks that had their connections already")
      end))
  end)

  describe("connections", function()
    -- weft keeps watching a kept-alive connection between its requests
    -- and stops only when curl closes the socket: these check that a
    -- closed socket's number, given to the next one, is watched anew.
    -- A server of their own: no connection of the tests above is in
    -- curl's cache for it, so each request below that needs one opens it.
    local main
    lazy_setup(function()
      main, srv = srv, start_server(false)
    end)
    lazy_teardown(function()
      stop_server(srv)
      srv = main
    end)

    it("opens a new connection after each Connection: close",
      async(function()
        http.get(srv.url .. "/hello")
        local fds, before = open_fds(), connections()
        local st0 = weft.stats()
        for _ = 1, 20 do
          assert.equal("closed", http.get(srv.url .. "/close").body)
          assert.equal("hello", http.get(srv.url .. "/hello").body)
        end
        local st = weft.stats()
        assert.equal(st0.http_requests + 40, st.http_requests)
        assert.equal(0, st.http_active)
        -- one kept-alive connection to this server before and after
        assert.equal(st0.http_connections, st.http_connections)
        local opened = connections() - before
        assert.equal(20, opened)
        local after = open_fds()
        assert.is_true(after <= fds, ("%d fds open, %d before"):format(after,
          fds))
      end))

    it("reconnects when the server closed an idle connection",
      async(function()
        http.get(srv.url .. "/hello")
        local fds = open_fds()
        -- Each dropped connection goes idle into curl's cache and the
        -- server closes it there; the next requests find it dead.
        for _ = 1, 5 do
          assert.equal("dropped", http.get(srv.url .. "/drop").body)
          weft.sleep(20)
          for _ = 1, 3 do
            assert.equal("hello", http.get(srv.url .. "/hello").body)
          end
        end
        local after = open_fds()
        assert.is_true(after <= fds + 1, ("%d fds open, %d before")
          :format(after, fds))
      end))

    it("retries a request sent on a connection the server had closed",
      async(function()
        -- Each /drop connection is closed by the server right after its
        -- response, which does not say so; the next request often goes
        -- out on it before the close is seen, and gets a reset. Each
        -- /reset-next connection resets the request that follows. Curl
        -- sends such a request again on a new connection.
        for _, path in ipairs { "/drop", "/reset-next" } do
          local failed = {}
          for i = 1, 200 do
            local ok, e = pcall(http.get, srv.url .. path)
            if not ok then failed[#failed + 1] = i .. ": " .. tostring(e) end
          end
          assert.equal(0, #failed, path .. ": " .. #failed .. " of 200 "
            .. "failed; first " .. tostring(failed[1]))
        end
      end))

    it("ends a redirect loop with TOO_MANY_REDIRECTS over reset connections",
      async(function()
        -- The first three redirects' connections reset the next request.
        for _ = 1, 20 do
          local e = H.raises(http.get, srv.url .. "/loop/0")
          assert.equal("TOO_MANY_REDIRECTS", e.code, e.message)
        end
      end))

    it("connects after an attempt that never completed", async(function()
      -- A connection attempt that times out is closed by curl 7.88
      -- without on_closesocket; its number goes to the next sockets
      -- (the resolver's pair for a host name, then connections).
      local port = tonumber(http.get(srv.url .. "/stuck").body)
      local open = weft.stats().http_connections
      local e = H.raises(http.get, "http://127.0.0.1:" .. port .. "/",
        { timeout_ms = 200 })
      assert.equal("timeout", e.kind)
      assert.equal(open, weft.stats().http_connections) -- none left over
      pcall(http.get, by_host_name(srv.url) .. "/close", { timeout_ms = 5000 })
      for _ = 1, 3 do
        local fns = {}
        for i = 1, 4 do
          fns[i] = function() return http.get(srv.url .. "/close").body end
        end
        local out = weft.all(fns)
        for i = 1, 4 do assert.equal("closed", out[i]) end
      end
      -- (one /close may have used the kept-alive one to this server)
      assert.is_true(weft.stats().http_connections <= open)
    end))

    it("counts requests, transfers in flight and connections",
      async(function()
        local st0, n = weft.stats(), 0
        local function get(path)
          n = n + 1
          return http.get(srv.url .. path)
        end
        local started = tonumber(get("/hangs").body)
        local tasks = {}
        for i = 1, 3 do tasks[i] = weft.spawn(get, "/hang") end
        while tonumber(get("/hangs").body) < started + 3 do weft.sleep(5) end
        local st = weft.stats()
        assert.equal(3, st.http_active)
        assert.is_true(st.http_connections >= 3)
        for i = 1, 3 do tasks[i]:cancel() end
        for i = 1, 3 do H.raises_cancel(tasks[i].await, tasks[i]) end
        st = weft.stats()
        assert.equal(0, st.http_active)
        assert.equal(st0.http_requests + n, st.http_requests)
        assert.is_true(st.http_connections <= st0.http_connections + 1)
      end))

    it("connects after curl's resolver closed its own socket",
      async(function()
        -- A host name (not an address, not "localhost") goes to curl's
        -- resolver thread, which curl watches through a socket pair of
        -- its own and closes without a callback; the connection made
        -- next gets the same descriptor number. The name may map to
        -- another loopback address where nothing listens: an io error.
        local url = by_host_name(srv.url)
        local ok, r = pcall(http.get, url .. "/close", { timeout_ms = 5000 })
        if ok then
          assert.equal("closed", r.body)
        else
          assert.is_true(r.kind == "io" or r.kind == "timeout", r.message)
        end
        -- Twenty new connections at once take the lowest free numbers,
        -- the pair's among them.
        local fns = {}
        for i = 1, 20 do
          fns[i] = function() return http.get(srv.url .. "/close").body end
        end
        local out = weft.all(fns)
        for i = 1, 20 do assert.equal("closed", out[i]) end
        assert.equal("hello", http.get(srv.url .. "/hello").body)
      end))
  end)

  describe("HTTP/1.1 responses", function()
    it("skips 1xx interim responses", async(function()
      for _, path in ipairs { "/interim", "/split" } do
        local r = http.get(srv.url .. path)
        assert.equal(200, r.status)
        assert.equal("interim", r.body)
        assert.equal("yes", r.headers["x-final"])
        assert.is_nil(r.headers.link) -- the 103's
      end
    end))

    it("reads bodies delimited by the connection's end", async(function()
      local r = http.get(srv.url .. "/close-delimited")
      assert.equal("until the end", r.body)
      assert.equal("close", r.headers["x-kind"])
      r = http.get(srv.url .. "/http10")
      assert.equal(200, r.status)
      assert.equal("old server", r.body)
      r = http.get(srv.url .. "/close-delimited", { stream = true })
      local parts = {}
      H.each(function(chunk) parts[#parts + 1] = chunk end, r.read, r)
      assert.equal("until the end", table.concat(parts))
    end))

    it("joins folded lines that come a byte at a time", async(function()
      local r = http.get(srv.url .. "/split/folded")
      assert.equal("folded", r.body)
      assert.equal("one two three", r.headers["x-folded"])
      assert.equal("a b", r.headers["x-empty-folds"])
      assert.equal("after", r.headers["x-after"])
    end))

    it("leaves a chunked body's trailers out of the headers",
      async(function()
        -- (The fuzz target http_response found them appended.)
        for _, stream in ipairs { false, true } do
          local r = http.get(srv.url .. "/trailers", { stream = stream })
          local body = r.body
          if stream then
            local parts = {}
            H.each(function(chunk) parts[#parts + 1] = chunk end, r.read, r)
            body = table.concat(parts)
          end
          assert.equal("hello", body)
          assert.equal("h", r.headers["x-head"])
          assert.is_nil(r.headers["x-trailer"])
        end
      end))

    it("reads no body after 204, 304 and HEAD", async(function()
      local r = http.get(srv.url .. "/no-content")
      assert.equal(204, r.status)
      assert.equal("", r.body)
      assert.equal("none", r.headers["x-kind"])
      r = http.get(srv.url .. "/not-modified")
      assert.equal(304, r.status)
      assert.equal("", r.body)
      r = http.request { method = "HEAD", url = srv.url .. "/hello" }
      assert.equal("5", r.headers["content-length"])
      assert.equal("", r.body)
      -- The connection stays usable after each.
      assert.equal("hello", http.get(srv.url .. "/hello").body)
    end))

    it("reads a body that comes slowly, whole or streamed", async(function()
      local want = "slow 0;slow 1;slow 2;slow 3;slow 4;"
      assert.equal(want, http.get(srv.url .. "/slow").body)
      local r = http.get(srv.url .. "/slow", { stream = true })
      local parts = {}
      H.each(function(chunk) parts[#parts + 1] = chunk end, r.read, r)
      assert.equal(want, table.concat(parts))
      assert.is_true(#parts > 1)
    end))

    it("fails clearly on responses that are not HTTP", async(function()
      for _, path in ipairs { "/malformed", "/bad-status", "/bad-chunk" } do
        local url = srv.url .. path
        local e = H.raises(http.get, url)
        assert.equal("io", e.kind)
        assert.is_string(e.code)
        assert.truthy(tostring(e):find("http.get: " .. url .. ": ", 1, true))
      end
      local e = H.raises(http.get, srv.url .. "/empty")
      assert.equal("GOT_NOTHING", e.code)
      e = H.raises(http.get, srv.url .. "/cut-headers")
      assert.equal("io", e.kind)
      assert.equal("hello", http.get(srv.url .. "/hello").body)
    end))

    it("sends Host, Accept and, with a body, its length and type",
      async(function()
        local host = srv.url:match("^http://(.*)$")
        local h = http.get(srv.url .. "/echo").headers
        assert.equal(host, h["x-echo-host"])
        assert.equal("*/*", h["x-echo-accept"])
        assert.is_nil(h["x-echo-content-length"])
        h = http.post(srv.url .. "/echo", "a=1").headers
        assert.equal("3", h["x-echo-content-length"])
        assert.equal("application/x-www-form-urlencoded",
          h["x-echo-content-type"])
        h = http.post(srv.url .. "/echo", "{}", { headers = {
          ["Content-Type"] = "application/json", Accept = false,
          ["X-Empty"] = "" } }).headers
        assert.equal("application/json", h["x-echo-content-type"])
        assert.is_nil(h["x-echo-accept"])
        assert.equal("", h["x-echo-x-empty"])
      end))

    it("sends a body with Expect: 100-continue when asked", async(function()
      local r = http.post(srv.url .. "/echo", "waited", { headers = {
        Expect = "100-continue" } })
      assert.equal("waited", r.body)
      assert.equal("100-continue", r.headers["x-echo-expect"])
    end))

    it("follows a redirect from http:// to https://", async(function()
      local r = http.get(srv.url .. "/to-https", { ca_file = srv.ca })
      assert.equal(200, r.status)
      assert.equal("hello", r.body)
      assert.equal(srv.tls .. "/hello", r.url)
    end))

    it("resolves host names with weft's resolver", async(function()
      local url = srv.url:gsub("127%.0%.0%.1", "localhost")
      assert.equal("hello", http.get(url .. "/hello").body)
      local e = H.raises(http.get, "http://no-such-host.invalid/")
      assert.equal("io", e.kind)
      assert.equal("COULDNT_RESOLVE_HOST", e.code)
    end))

    it("does not send a POST again on a connection the server had closed",
      async(function()
        -- Not idempotent: a POST that may have reached the server is not
        -- repeated (a GET is: see "retries a request sent on a ...").
        http.get(srv.url .. "/reset-next")
        local e = H.raises(http.post, srv.url .. "/echo", "once")
        assert.equal("io", e.kind)
        assert.equal("hello", http.get(srv.url .. "/hello").body)
      end))
  end)

  describe("HTTP/1.1", function()
    it("does not hold a request up behind a slow one to its host",
      async(function()
        -- A host name no other test uses: no idle connection to reuse.
        local url = srv.url:gsub("127%.0%.0%.1", "localhost")
        local slow = weft.spawn(http.get, url .. "/hang")
        weft.sleep(20) -- its response is pending
        local r = weft.timeout(5000, function()
          return http.get(url .. "/hello")
        end)
        assert.equal("hello", r.body)
        assert.is_false(slow:done())
        slow:cancel()
        H.raises_cancel(slow.await, slow)
      end))
  end)

  describe("HTTP/2", function()
    -- A local nginx speaking HTTP/2 over TLS (ALPN), with the test
    -- server's certificate. Each response says its connection's number
    -- and protocol (X-Conn, X-Proto).
    local ng = {}
    -- A command's first line of output. LD_PRELOAD (the sanitizer
    -- runtimes of an ASan build) is not for these programs.
    local function sh(cmd)
      local p = assert(io.popen("env -u LD_PRELOAD " .. cmd))
      local line = p:read("*l")
      p:close()
      return line
    end
    lazy_setup(function()
      ng.dir = sh("mktemp -d")
      ng.port = sh("python3 -c 'import socket; s = socket.socket(); " ..
        "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'")
      -- Debian puts nginx in /usr/sbin, not always on a user's PATH.
      local nginx = sh("command -v nginx || echo /usr/sbin/nginx")
      local d, certs = ng.dir, srv.ca:match("^(.*)/[^/]*$")
      os.execute("chmod 755 " .. d .. " && mkdir -p " .. d .. "/www " ..
        d .. "/logs")
      local f = assert(io.open(d .. "/www/small", "w"))
      f:write(("s"):rep(128))
      f:close()
      f = assert(io.open(d .. "/www/big", "w"))
      f:write(("b"):rep(1024 * 1024))
      f:close()
      ng.conf = d .. "/nginx.conf"
      f = assert(io.open(ng.conf, "w"))
      f:write(([[
worker_processes 1;
daemon off;
pid D/nginx.pid;
error_log D/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path D/tmp_body;
  proxy_temp_path D/tmp_proxy;
  fastcgi_temp_path D/tmp_fastcgi;
  uwsgi_temp_path D/tmp_uwsgi;
  scgi_temp_path D/tmp_scgi;
  server {
    listen 127.0.0.1:PORT ssl http2;
    ssl_certificate CERTS/srv.pem;
    ssl_certificate_key CERTS/srv.key;
    root D/www;
    add_header X-Conn $connection always;
    add_header X-Proto $server_protocol always;
    location /slow { alias D/www/big; limit_rate 16k; }
  }
}
]]):gsub("D/", d .. "/"):gsub("PORT", ng.port):gsub("CERTS", certs)
        :sub(1))
      f:close()
      -- Its pid first, for the teardown; then nginx in the foreground.
      ng.pipe = assert(io.popen("echo $$; exec env -u LD_PRELOAD " ..
        nginx .. " -p " .. d .. " -e " .. d .. "/logs/error.log -c " ..
        ng.conf .. " 2>&1", "r"))
      ng.pid = assert(tonumber(ng.pipe:read("*l")))
      assert(os.execute("bash -c 'for i in $(seq 100); do " ..
        "(exec 3<>/dev/tcp/127.0.0.1/" .. ng.port .. ") 2>/dev/null && " ..
        "exit 0; sleep 0.05; done; exit 1'"), "nginx did not start")
      ng.url = "https://127.0.0.1:" .. ng.port
    end)
    lazy_teardown(function()
      if ng.pid then os.execute("kill " .. ng.pid) end
      if ng.pipe then ng.pipe:close() end
      if ng.dir then os.execute("rm -rf " .. ng.dir) end
    end)

    it("shares one connection among the requests in flight", async(function()
      local ts = {}
      for i = 1, 20 do
        ts[i] = weft.spawn(function()
          return http.get(ng.url .. "/small", { ca_file = srv.ca })
        end)
      end
      local conns = {}
      for i = 1, 20 do
        local r = ts[i]:await()
        assert.equal(200, r.status)
        assert.equal(("s"):rep(128), r.body)
        assert.equal("HTTP/2.0", r.headers["x-proto"])
        conns[r.headers["x-conn"]] = true
      end
      local n = 0
      for _ in pairs(conns) do n = n + 1 end
      assert.equal(1, n) -- streams of one connection
      local r = http.get(ng.url .. "/big", { ca_file = srv.ca })
      assert.equal(1024 * 1024, #r.body)
    end))

    it("cancels a stream and keeps its connection", async(function()
      local first = http.get(ng.url .. "/small", { ca_file = srv.ca })
      local got, put = weft.future()
      local slow = weft.spawn(function()
        local r = http.get(ng.url .. "/slow", { ca_file = srv.ca,
          stream = true })
        put(r.headers["x-conn"], r:read())
        r:read() -- waits: 16 KiB a second
      end)
      local conn, chunk = got:await()
      assert.equal(first.headers["x-conn"], conn)
      assert.is_true(#chunk > 0)
      slow:cancel()
      H.raises_cancel(slow.await, slow)
      local again = http.get(ng.url .. "/small", { ca_file = srv.ca })
      assert.equal(200, again.status)
      assert.equal(conn, again.headers["x-conn"])
      assert.equal(0, weft.stats().http_active)
    end))
  end)

  describe("streaming", function()
    it("returns status and headers before the body is complete",
      async(function()
        local r = http.request { url = srv.url .. "/gate", stream = true }
        -- The server holds "second" until /release: the headers and the
        -- first chunk are here while the body is not complete.
        assert.equal(200, r.status)
        assert.equal("chunked", r.headers["transfer-encoding"])
        assert.is_nil(r.body)
        assert.equal("first", r:read())
        http.get(srv.url .. "/release")
        local rest = {}
        H.each(function(chunk) rest[#rest + 1] = chunk end, r.read, r)
        assert.equal("second", table.concat(rest))
        assert.is_nil(r:read()) -- and it stays at the end
      end))

    it("applies backpressure: a lagging reader gets bounded chunks",
      async(function()
        local n = 4000000
        local r = http.get(srv.url .. "/bytes/" .. n, { stream = true })
        local parts, total, biggest, reads = {}, 0, 0, 0
        while true do
          if reads < 5 then weft.sleep(20) end -- the reader lags behind
          local chunk = r:read()
          if chunk == nil then break end
          reads = reads + 1
          total = total + #chunk
          if #chunk > biggest then biggest = #chunk end
          parts[#parts + 1] = chunk
        end
        assert.equal(n, total)
        assert.is_true(biggest <= 256 * 1024, "a chunk of " .. biggest)
        local body = table.concat(parts)
        assert.equal("0123456789", body:sub(1, 10))
        assert.equal(("0123456789"):rep(6554):sub(1, n % 65540),
          body:sub(n - n % 65540 + 1))
      end))

    it("closes a stream early; the next request works", async(function()
      local r = http.get(srv.url .. "/bytes/4000000", { stream = true })
      assert.is_string(r:read())
      r:close()
      r:close() -- closing twice is harmless
      H.raises_match("response:read: the response is closed", r.read, r)
      assert.equal("hello", http.get(srv.url .. "/hello").body)
    end))

    it("closes the stream when its task ends", async(function()
      local r = weft.spawn(function()
        return http.get(srv.url .. "/gate", { stream = true })
      end):await()
      assert.equal(200, r.status)
      H.raises_match("the response is closed", r.read, r)
      http.get(srv.url .. "/release")
    end))

    it("lets one task at a time read a stream", async(function()
      local r = http.get(srv.url .. "/gate", { stream = true })
      assert.equal("first", r:read())
      local reader = weft.spawn(function() return r:read() end)
      weft.sleep(0)
      H.raises_match("another task is reading", r.read, r)
      http.get(srv.url .. "/release")
      assert.equal("second", reader:await())
      assert.is_nil(r:read())
    end))

    it("wakes a reader when another task closes the stream",
      async(function()
        local r = http.get(srv.url .. "/gate", { stream = true })
        assert.equal("first", r:read())
        local reader = weft.spawn(function() return r:read() end)
        weft.sleep(0)
        r:close()
        H.raises_match("the response was closed", reader.await, reader)
        http.get(srv.url .. "/release")
      end))

    it("times out a stream read past timeout_ms", async(function()
      local r = http.get(srv.url .. "/gate", { stream = true,
        timeout_ms = 1000 })
      assert.equal("first", r:read())
      local e = H.raises(r.read, r)
      assert.is_true(weft.is_timeout(e))
      H.raises_match("the response is closed", r.read, r)
      http.get(srv.url .. "/release")
    end))

    it("cancels a stream read", async(function()
      local r = http.get(srv.url .. "/gate", { stream = true })
      assert.equal("first", r:read())
      local t = weft.spawn(function() return r:read() end)
      weft.sleep(0)
      t:cancel()
      H.raises_cancel(t.await, t)
      http.get(srv.url .. "/release")
      r:close()
    end))
  end)

  describe("TLS", function()
    it("verifies the server against ca_file", async(function()
      local r = http.get(srv.tls .. "/hello", { ca_file = srv.ca })
      assert.equal(200, r.status)
      assert.equal("hello", r.body)
      r = http.post(srv.tls .. "/echo", "over tls", { ca_file = srv.ca })
      assert.equal("over tls", r.body)
    end))

    it("fails clearly when the certificate cannot be verified",
      async(function()
        local url = srv.tls .. "/hello"
        local e = H.raises(http.get, url)
        assert.equal("io", e.kind)
        assert.equal("PEER_FAILED_VERIFICATION", e.code)
        assert.truthy(e.message:find("http.get: " .. url
          .. ": SSL certificate problem: ", 1, true), e.message)
        assert.equal("hello", http.get(url, { insecure = true }).body)
      end))
  end)

  describe("arguments", function()
    it("rejects bad arguments, naming the function", async(function()
      local u = srv.url .. "/hello"
      local cases = {
        { "http.get: url must be a string, got nil", http.get },
        { "http.get: url must be an http:// or https:// URL, got \"ftp://x\"",
          http.get, "ftp://x" },
        { "http.get: opts must be a table or nil, got number", http.get, u, 5 },
        { "http.get: unknown option timeout", http.get, u, { timeout = 1 } },
        { "http.get: opts.timeout_ms must be an integer >= 1, got -1",
          http.get, u, { timeout_ms = -1 } },
        { "http.get: opts.timeout_ms must be an integer >= 1, got 1.5",
          http.get, u, { timeout_ms = 1.5 } },
        { "http.get: opts.max_body must be an integer >= 0 or math.huge, "
          .. "got string", http.get, u, { max_body = "1" } },
        { "http.get: opts.max_body must be an integer >= 0 or math.huge, "
          .. "got -1", http.get, u, { max_body = -1 } },
        { "http.get: opts.ca_file must be a string or nil, got number",
          http.get, u, { ca_file = 5 } },
        { "http.get: opts.stream must be a boolean or nil, got string",
          http.get, u, { stream = "yes" } },
        { "http.get: opts.follow_redirects must be a boolean or nil",
          http.get, u, { follow_redirects = 1 } },
        { "http.get: opts.method is not taken here (use http.request)",
          http.get, u, { method = "POST" } },
        { "http.get: opts.headers must be a table or nil, got string",
          http.get, u, { headers = "X: y" } },
        { "http.get: bad header name \"Bad Name\"", http.get, u,
          { headers = { ["Bad Name"] = "x" } } },
        { "http.get: headers[\"X\"] must not contain a line break", http.get,
          u, { headers = { X = "a\r\nInjected: 1" } } },
        { "http.get: url must not contain a NUL", http.get, u .. "\0/x" },
        { "http.get: headers[\"X\"] must not contain a line break, a NUL",
          http.get, u, { headers = { X = { "ok", "cut\0here" } } } },
        { "http.get: headers[\"X\"] must not contain a line break, a NUL or "
          .. "another control character", http.get, u,
          { headers = { X = "\12\12" } } },
        { "http.get: headers[\"X\"] must be a string, a number", http.get, u,
          { headers = { X = true } } },
        { "http.post: body must be a string, got nil", http.post, u },
        { "http.post: opts.body is not taken here", http.post, u, "x",
          { body = "y" } },
        { "http.request: its argument must be a table, got string",
          http.request, u },
        { "http.request: url must be a string, got nil", http.request, {} },
        { "http.request: method must be an HTTP method name, got \"GE T\"",
          http.request, { url = u, method = "GE T" } },
        { "http.request: body must be a string or nil, got number",
          http.request, { url = u, body = 1 } },
      }
      for _, c in ipairs(cases) do
        H.raises_match(c[1], c[2], H.unpack(c, 3))
      end
      local r = http.get(u, { stream = true })
      H.raises_match("response:read: not a streamed response", r.read, {})
      H.raises_match("response:close: not a streamed response", r.close, 1)
      assert.equal("hello", r:read())
    end))

    it("needs a task", function()
      H.raises_match("http.get", http.get, srv.url .. "/hello")
      H.raises_match("weft.run", http.get, srv.url .. "/hello")
    end)
  end)
end)
