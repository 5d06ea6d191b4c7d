-- channel_spec.lua - weft.channel: FIFO order, rendezvous, backpressure,
-- close, iter, try_send/try_recv, many producers and consumers.
local H = require "helper"
local weft = H.weft
local async = H.async

describe("weft.channel", function()
  it("delivers values in FIFO order", async(function()
    local ch = weft.channel(10)
    for i = 1, 10 do ch:send(i) end
    assert.equal(10, ch:count())
    for i = 1, 10 do assert.equal(i, ch:recv()) end
    assert.equal(0, ch:count())
  end))

  it("carries any non-nil value, tables by identity", async(function()
    local ch = weft.channel(5)
    local t, fn = {}, function() end
    for _, v in ipairs({ false, 0, "s", t, fn }) do ch:send(v) end
    assert.is_false(ch:recv())
    assert.equal(0, ch:recv())
    assert.equal("s", ch:recv())
    assert.equal(t, ch:recv())
    assert.equal(fn, ch:recv())
  end))

  it("is a rendezvous by default: send waits for a receiver",
    async(function()
      local log = H.log()
      local ch = weft.channel()
      local s = weft.spawn(function()
        ch:send("hi")
        log("sent")
      end)
      weft.sleep(0)
      assert.equal("pending", s:state()) -- nobody received yet
      assert.same({}, log.items)
      assert.is_false((ch:try_send("x")))
      log("recv")
      assert.equal("hi", ch:recv())
      s:await()
      assert.same({ "recv", "sent" }, log.items)
    end))

  it("recv waits for a sender", async(function()
    local ch = weft.channel()
    local r = weft.spawn(function() return ch:recv() end)
    weft.sleep(0)
    assert.equal("pending", r:state())
    ch:send(42)
    assert.equal(42, r:await())
  end))

  it("applies backpressure: a sender waits while full", async(function()
    local log = H.log()
    local ch = weft.channel(2)
    local p = weft.spawn(function()
      for i = 1, 5 do
        ch:send(i)
        log("sent " .. i)
      end
    end)
    weft.sleep(0)
    assert.same({ "sent 1", "sent 2" }, log.items)
    assert.equal(2, ch:count())
    assert.equal("pending", p:state())
    assert.equal(1, ch:recv())
    weft.sleep(0)
    assert.same({ "sent 1", "sent 2", "sent 3" }, log.items)
    for i = 2, 5 do assert.equal(i, ch:recv()) end
    p:await()
  end))

  it("cannot send nil", async(function()
    local ch = weft.channel(1)
    H.raises_match("ch:send: cannot send nil", ch.send, ch, nil)
    H.raises_match("ch:send: cannot send nil", ch.send, ch)
    H.raises_match("ch:try_send: cannot send nil", ch.try_send, ch, nil)
    assert.equal(0, ch:count())
  end))

  it("rejects a bad capacity", function()
    H.raises_match("weft.channel: capacity must be an integer from 0",
      weft.channel, -1)
    H.raises_match("number has no integer representation",
      weft.channel, 1.5)
    H.raises_match("number expected, got string", weft.channel, "big")
  end)

  it("methods reject a non-channel self", async(function()
    local ch = weft.channel()
    H.raises_match("ch:recv: expected a weft.Channel, got table", ch.recv, {})
    H.raises_match("ch:send: expected a weft.Channel, got no value",
      ch.send)
    H.raises_match("ch:close: expected a weft.Channel", ch.close, 1)
    -- other weft userdata: the type is told by the metatable itself
    H.raises_match("ch:send: expected a weft.Channel, got userdata",
      ch.send, weft.future(), 1)
    H.raises_match("ch:count: expected a weft.Channel, got userdata",
      ch.count, weft.semaphore(1))
    H.raises_match("ch:try_recv: expected a weft.Channel, got userdata",
      ch.try_recv, io.stdout)
  end))

  it("refuses a foreign userdata given its metatable, and is protected",
    async(function()
      local ch = weft.channel(1)
      local mt = debug.getmetatable(ch)
      assert.equal("weft.Channel", getmetatable(ch))
      local saved = debug.getmetatable(io.stdout)
      debug.setmetatable(io.stdout, mt)
      local ok, err = pcall(function() return io.stdout:try_send(1) end)
      debug.setmetatable(io.stdout, saved)
      assert.is_false(ok)
      assert.matches("ch:try_send: expected a weft.Channel, got userdata",
        err, 1, true)
      mt.__gc(io.stdout) -- nothing happens
    end))

  it("cannot be used once a script finalized it", async(function()
    local ch = weft.channel(1)
    ch:send(1)
    debug.getmetatable(ch).__gc(ch)
    H.raises_match("ch:recv: the channel was finalized", ch.recv, ch)
    H.raises_match("ch:send: the channel was finalized", ch.send, ch, 1)
  end))

  it("raises when its user value was replaced", async(function()
    local ch = weft.channel(1)
    H.setuservalue(ch, 42, 1)
    H.raises_match("ch:try_send: the channel's user value was replaced",
      ch.try_send, ch, 1)
  end))
end)

describe("closing a channel", function()
  it("lets receivers drain, then recv returns nil, 'closed'",
    async(function()
      local ch = weft.channel(3)
      ch:send("a")
      ch:send("b")
      ch:close()
      assert.equal("a", ch:recv())
      assert.equal("b", ch:recv())
      local v, why = ch:recv()
      assert.is_nil(v)
      assert.equal("closed", why)
      v, why = ch:recv() -- and again
      assert.is_nil(v)
      assert.equal("closed", why)
    end))

  it("makes send raise a 'closed' error", async(function()
    local ch = weft.channel(3)
    ch:close()
    local e = H.raises_match("ch:send: channel is closed", ch.send, ch, 1)
    assert.equal("closed", e.kind)
    assert.is_false(weft.is_cancelled(e))
  end))

  it("wakes waiting receivers with nil, 'closed'", async(function()
    local ch = weft.channel()
    local rs = {}
    for i = 1, 3 do
      rs[i] = weft.spawn(function() return ch:recv() end)
    end
    weft.sleep(0)
    ch:close()
    for i = 1, 3 do
      local v, why = rs[i]:await()
      assert.is_nil(v)
      assert.equal("closed", why)
    end
  end))

  it("wakes waiting senders with an error; their values are dropped",
    async(function()
      local ch = weft.channel(1)
      ch:send("kept")
      local s = weft.spawn(function() ch:send("dropped") end)
      weft.sleep(0)
      ch:close()
      local e = H.raises_match("channel is closed", s.await, s)
      assert.equal("closed", e.kind)
      assert.equal("kept", ch:recv())
      assert.is_nil((ch:recv()))
    end))

  it("is idempotent", async(function()
    local ch = weft.channel()
    ch:close()
    ch:close()
    assert.same({ false, "closed" }, { ch:try_send(1) })
  end))
end)

describe("ch:iter", function()
  it("yields every value until closed and drained", function()
    if H.puc51 then pending(H.why.forin_yield) return end
    H.run(function()
      local ch = weft.channel(2)
      weft.spawn(function()
        for i = 1, 6 do ch:send(i * i) end
        ch:close()
      end)
      local got = {}
      for v in ch:iter() do got[#got + 1] = v end
      assert.same({ 1, 4, 9, 16, 25, 36 }, got)
    end)
  end)

  it("stops at once on a closed empty channel", function()
    if H.puc51 then pending(H.why.forin_yield) return end
    H.run(function()
      local ch = weft.channel()
      ch:close()
      for _ in ch:iter() do error("no value expected") end
    end)
  end)
end)

describe("try_send and try_recv", function()
  it("try_send returns true, or false, 'full' | 'closed'", async(function()
    local ch = weft.channel(1)
    assert.is_true(ch:try_send("a"))
    assert.same({ false, "full" }, { ch:try_send("b") })
    ch:close()
    assert.same({ false, "closed" }, { ch:try_send("c") })
    assert.equal("a", ch:recv())
  end))

  it("try_recv returns v, or nil, 'empty' | 'closed'", async(function()
    local ch = weft.channel(1)
    assert.same({ nil, "empty" }, { ch:try_recv() })
    ch:send(false)
    assert.same({ false }, { ch:try_recv() })
    ch:send(1)
    ch:close()
    assert.equal(1, ch:try_recv()) -- still drains after close
    assert.same({ nil, "closed" }, { ch:try_recv() })
  end))

  it("try_send hands a value straight to a waiting receiver",
    async(function()
      local ch = weft.channel()
      local r = weft.spawn(function() return ch:recv() end)
      weft.sleep(0)
      assert.is_true(ch:try_send("direct"))
      assert.equal("direct", r:await())
    end))

  it("try_recv takes a value from a waiting sender", async(function()
    local ch = weft.channel()
    local s = weft.spawn(function() ch:send("from sender") return "done" end)
    weft.sleep(0)
    assert.equal("from sender", ch:try_recv())
    assert.equal("done", s:await())
  end))

  it("work outside a task", function()
    local ch = weft.channel(1)
    assert.is_true(ch:try_send(1))
    assert.equal(1, ch:try_recv())
  end)
end)

-- fn(v) for each value of ch:iter() (H.each: by hand on PUC 5.1).
local function each(ch, fn)
  H.each(fn, ch:iter())
end

describe("many producers and consumers", function()
  it("deliver every value exactly once", async(function()
    local P, C, N = 8, 5, 250
    local ch = weft.channel(4)
    local producers = {}
    for p = 1, P do
      producers[p] = weft.spawn(function()
        for i = 1, N do
          ch:send(p * 100000 + i)
          if i % 7 == 0 then weft.yield() end
        end
      end)
    end
    local consumers = {}
    for c = 1, C do
      consumers[c] = weft.spawn(function()
        local sum, n, seen = 0, 0, {}
        each(ch, function(v)
          sum, n = sum + v, n + 1
          seen[#seen + 1] = v
        end)
        return sum, n, seen
      end)
    end
    weft.all(producers)
    ch:close()
    local sum, n, once = 0, 0, {}
    local last = {}
    for c = 1, C do
      local s, k, seen = consumers[c]:await()
      sum, n = sum + s, n + k
      for _, v in ipairs(seen) do
        assert.is_nil(once[v], "value received twice")
        once[v] = true
        -- each producer's values stay in order for any one consumer
        local p = math.floor(v / 100000)
        assert.is_true((last[c .. ":" .. p] or 0) < v)
        last[c .. ":" .. p] = v
      end
    end
    local want = 0
    for p = 1, P do
      for i = 1, N do want = want + p * 100000 + i end
    end
    assert.equal(P * N, n)
    assert.equal(want, sum)
  end))

  it("work on a rendezvous channel too", async(function()
    local ch = weft.channel(0)
    local total = 0
    local producers = {}
    for p = 1, 4 do
      producers[p] = weft.spawn(function()
        for i = 1, 50 do ch:send(i) end
      end)
    end
    local consumers = {}
    for c = 1, 3 do
      consumers[c] = weft.spawn(function()
        local s = 0
        each(ch, function(v) s = s + v end)
        return s
      end)
    end
    weft.all(producers)
    ch:close()
    for c = 1, 3 do total = total + consumers[c]:await() end
    assert.equal(4 * (50 * 51 / 2), total)
  end))
end)
