-- resty_redis_spec.lua - Debian's lua-nginx-redis (lua-resty-redis),
-- unmodified, on weft.ngx against a redis-server this spec starts on
-- 127.0.0.1: commands, nil replies, pipelining, hundreds of tasks with a
-- keep-alive pool that is reused, pub/sub, and a server killed under
-- load (every task gets an error, none hangs).
--
-- The library's package depends on nginx (which would replace LuaJIT
-- with OpenResty's), so scripts/deps.sh unpacks it into .deps/lua rather
-- than installing it.
local H = require "helper"
local weft = H.weft
local async = H.async

local libdir = (os.getenv("WEFT_SOURCE_DIR") or ".") .. "/.deps/lua"
package.path = libdir .. "/?.lua;" .. package.path
local ngx = require "weft.ngx"
-- lua-resty-redis reads the global unpack (5.1's) for hmset only.
local redis = require "nginx.redis"

-- Starts redis-server on a free port; returns the port and a function
-- that kills it (SIGKILL: as a crash).
local function start_redis()
  local probe = weft.tcp.listen("127.0.0.1", 0, function() end)
  local port = probe.port
  probe:close()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  local pidfile = dir .. "/redis.pid"
  assert(os.execute(("redis-server --port %d --bind 127.0.0.1 --save '' "
    .. "--appendonly no --daemonize yes --pidfile %s --dir %s "
    .. "--logfile %s/log >/dev/null"):format(port, pidfile, dir, dir)))
  -- Ready when it answers.
  for _ = 1, 500 do
    local s = ngx.socket.tcp()
    if s:connect("127.0.0.1", port) then
      s:close()
      break
    end
    weft.sleep(10)
  end
  local function pid()
    local f = io.open(pidfile)
    local n = f and f:read("*n")
    if f then f:close() end
    return n
  end
  return port, function()
    local n = pid()
    if n then os.execute("kill -9 " .. n .. " 2>/dev/null") end
    os.execute("rm -rf " .. dir)
  end
end

local function connect(port)
  local red = redis:new()
  red:set_timeout(10000)
  assert(red:connect("127.0.0.1", port))
  return red
end

describe("lua-resty-redis on weft.ngx", function()
  local port, kill
  teardown(function()
    if kill then kill() end
  end)

  it("starts a redis-server", async(function()
    port, kill = start_redis()
    local red = connect(port)
    assert.equal("PONG", red:ping())
    red:close()
  end))

  it("runs commands; a missing key is ngx.null", async(function()
    local red = connect(port)
    assert.equal("OK", red:set("dog", "an animal"))
    assert.equal("an animal", red:get("dog"))
    assert.equal(ngx.null, red:get("no such key"))
    assert.equal(3, red:rpush("list", "a", "b", "c"))
    assert.same({ "a", "b", "c" }, red:lrange("list", 0, -1))
    local res, err = red:hget("dog", "x") -- a type error, as redis says
    assert.is_false(res)
    assert.matches("WRONGTYPE", err)
    red:close()
  end))

  it("pipelines", async(function()
    local red = connect(port)
    red:init_pipeline()
    red:set("cat", "Marry")
    red:incr("n")
    red:get("cat")
    local res = assert(red:commit_pipeline())
    assert.same({ "OK", 1, "Marry" }, res)
    red:close()
  end))

  it("serves hundreds of tasks and reuses kept connections",
    async(function()
      local function wave(i0)
        local tasks = {}
        for i = i0, i0 + 299 do
          tasks[#tasks + 1] = weft.spawn(function()
            local red = connect(port)
            local reused = red:get_reused_times()
            assert.equal("OK", red:set("k" .. i, i))
            assert.equal(tostring(i), red:get("k" .. i))
            assert.equal(1, red:set_keepalive(10000, 100))
            return reused
          end)
        end
        local reused = 0
        for _, t in ipairs(tasks) do
          if t:await() > 0 then reused = reused + 1 end
        end
        return reused
      end
      wave(1)
      -- The second wave finds the first's connections in the pool.
      assert.is_true(wave(301) > 0)
    end))

  it("subscribes and receives what another client publishes",
    async(function()
      local sub = connect(port)
      assert.same({ "subscribe", "news", 1 }, sub:subscribe("news"))
      local pub = connect(port)
      assert.equal(1, pub:publish("news", "hello"))
      assert.same({ "message", "news", "hello" }, sub:read_reply())
      -- Nothing more: the read times out and the subscription stays.
      sub:set_timeout(20)
      local res, err = sub:read_reply()
      assert.is_nil(res)
      assert.equal("timeout", err)
      sub:set_timeout(10000)
      assert.equal(1, pub:publish("news", "again"))
      assert.same({ "message", "news", "again" }, sub:read_reply())
      sub:close()
      pub:close()
    end))

  it("gives every task an error when the server dies", async(function()
    local started = 0
    local running, running_done = weft.future()
    local tasks = {}
    for i = 1, 50 do
      tasks[i] = weft.spawn(function()
        local red = connect(port)
        started = started + 1
        if started == 50 then running_done() end
        while true do
          local ok, err = red:set("x" .. i, i)
          if not ok then return err end
          ok, err = red:get("x" .. i)
          if not ok then return err end
        end
      end)
    end
    running:await()
    kill()
    kill = nil
    local errs = {}
    for i = 1, 50 do
      local err = tasks[i]:await()
      errs[err] = (errs[err] or 0) + 1
    end
    for err in pairs(errs) do
      assert.is_true(err == "closed" or err == "connection reset by peer"
        or err == "broken pipe", err)
    end
    -- And a new connection is refused.
    local red = redis:new()
    assert.same({ nil, "connection refused" },
      { red:connect("127.0.0.1", port) })
  end))
end)
