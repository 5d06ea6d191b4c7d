-- group_spec.lua - weft.group: structured concurrency, g:spawn,
-- g:join_next, g:try_join, g:cancel, g:size, fail-fast and cancellation.
local H = require "helper"
local weft = H.weft
local async = H.async

local function sorted(t)
  table.sort(t)
  return t
end

describe("weft.group", function()
  it("returns fn's values once every child has ended", async(function()
    local log = H.log()
    local a, b = weft.group(function(g)
      for i = 1, 3 do
        g:spawn(function()
          weft.sleep(i)
          log(i)
        end)
      end
      return "r1", "r2"
    end)
    assert.same({ "r1", "r2" }, { a, b })
    assert.same({ 1, 2, 3 }, sorted(log.items))
  end))

  it("makes children tasks with names and priorities", async(function()
    weft.group(function(g)
      local t = g:spawn({ name = "kid", priority = "high" },
        function(x) return x end, 9)
      assert.equal("kid", t:name())
      assert.equal(9, t:await())
      H.raises_match("g:spawn: expected a function, got number",
        g.spawn, g, 1)
      H.raises_match("opts.priority must be one of", g.spawn, g,
        { priority = 1 }, function() end)
    end)
  end))

  it("join_next gives each child's outcome as it ends", async(function()
    local got = {}
    weft.group(function(g)
      g:spawn(function() weft.sleep(2) return "slow", 2 end)
      g:spawn(function() return "fast", 1 end)
      assert.equal(2, g:size())
      while true do
        local r = H.pack(g:join_next())
        if r.n == 0 then break end
        got[#got + 1] = r
      end
      assert.equal(0, g:size())
    end)
    assert.same({ H.pack(true, "fast", 1), H.pack(true, "slow", 2) },
      got)
  end))

  it("join_next returns nothing when no child is left", async(function()
    weft.group(function(g)
      assert.equal(0, select("#", g:join_next()))
      g:spawn(function() end)
      assert.is_true((g:join_next()))
      assert.equal(0, select("#", g:join_next()))
    end)
  end))

  it("join_next returns a child settled before the call", async(function()
    weft.group(function(g)
      local t = g:spawn(function() return 5 end)
      t:await()
      local ok, v = g:join_next()
      assert.is_true(ok)
      assert.equal(5, v)
    end)
  end))

  it("a failure taken by join_next is not raised by the group",
    async(function()
      local e = {}
      local r = weft.group(function(g)
        g:spawn(function() error(e) end)
        local ok, err = g:join_next()
        assert.is_false(ok)
        assert.equal(e, err)
        return "handled"
      end)
      assert.equal("handled", r)
    end))

  it("a child failure cancels its siblings and is raised, same value",
    async(function()
      local log = H.log()
      local e = {}
      local got = H.raises(weft.group, function(g)
        for i = 1, 3 do
          g:spawn(function()
            local ok, err = pcall(weft.sleep, 1e6)
            log(weft.is_cancelled(err) and "cancelled " .. i or "?")
            error(err, 0)
          end)
        end
        g:spawn(function() weft.sleep(1) error(e) end)
        return "not returned"
      end)
      assert.equal(e, got)
      assert.same({ "cancelled 1", "cancelled 2", "cancelled 3" },
        sorted(log.items))
    end))

  it("join_next sees siblings cancelled by a failure", async(function()
    local outcomes = {}
    weft.group(function(g)
      g:spawn(function() weft.sleep(1e6) end)
      g:spawn(function() weft.yield() error("first", 0) end)
      while true do
        local ok, v = g:join_next()
        if ok == nil then break end
        outcomes[#outcomes + 1] = ok and "ok"
          or (weft.is_cancelled(v) and "cancelled" or v)
      end
    end)
    assert.same({ "first", "cancelled" }, outcomes)
  end))

  it("try_join takes an ended child at once, or says none has ended",
    async(function()
      weft.group(function(g)
        assert.equal(0, select("#", g:try_join())) -- no child
        local gate, open = weft.future()
        g:spawn(function() gate:await() return "slow", 2 end)
        g:spawn(function() return "fast", 1 end)
        assert.same(H.pack(nil, "running"), H.pack(g:try_join()))
        weft.yield() -- "fast" ends
        assert.same(H.pack(true, "fast", 1), H.pack(g:try_join()))
        assert.equal(1, g:size())
        assert.same(H.pack(nil, "running"), H.pack(g:try_join()))
        open()
        weft.yield()
        weft.yield()
        assert.same(H.pack(true, "slow", 2), H.pack(g:try_join()))
        assert.equal(0, select("#", g:try_join()))
        assert.equal(0, g:size())
      end)
    end))

  it("try_join gives failures and cancellations as join_next does",
    async(function()
      local e = {}
      local outcomes = {}
      local r = weft.group(function(g)
        g:spawn(function() weft.sleep(1e6) end)
        g:spawn(function() error(e) end)
        while g:size() > 0 do
          local ok, v = g:try_join()
          if ok == nil then
            weft.yield()
          else
            outcomes[#outcomes + 1] = ok and "ok"
              or (v == e and "e" or weft.is_cancelled(v) and "cancelled")
          end
        end
        return "handled" -- the failure was taken: not raised
      end)
      assert.equal("handled", r)
      assert.same({ "e", "cancelled" }, outcomes)
    end))

  it("try_join sees children ended by g:cancel", async(function()
    local saved
    weft.group(function(g)
      saved = g
      g:spawn(function() weft.sleep(1e6) end)
      g:cancel()
      assert.same(H.pack(nil, "running"), H.pack(g:try_join()))
      weft.yield()
      local ok, err = g:try_join()
      assert.is_false(ok)
      assert.is_true(weft.is_cancelled(err))
    end)
    -- Once the group has ended, no child is left to take.
    assert.equal(0, select("#", saved:try_join()))
    H.raises_match("g:try_join: expected a weft.Group, got number",
      saved.try_join, 1)
  end))

  it("try_join waits for nothing: it works in a nested coroutine",
    async(function()
      weft.group(function(g)
        g:spawn(function() return 7 end)
        weft.yield()
        local co = coroutine.wrap(function() return g:try_join() end)
        assert.same(H.pack(true, 7), H.pack(co()))
      end)
    end))

  it("an error in fn cancels the children and is raised", async(function()
    local log = H.log()
    local e = {}
    local got = H.raises(weft.group, function(g)
      g:spawn(function()
        local ok, err = pcall(weft.sleep, 1e6)
        log(weft.is_cancelled(err))
        error(err, 0)
      end)
      weft.yield()
      error(e)
    end)
    assert.equal(e, got)
    assert.same({ true }, log.items)
  end))

  it("g:cancel cancels every running child", async(function()
    local log = H.log()
    local r = weft.group(function(g)
      for i = 1, 3 do
        g:spawn(function()
          local ok, err = pcall(weft.sleep, 1e6)
          log(i)
          error(err, 0)
        end)
      end
      weft.yield()
      g:cancel()
      return "after cancel"
    end)
    assert.equal("after cancel", r)
    assert.same({ 1, 2, 3 }, sorted(log.items))
  end))

  it("cancelling the parent task cancels the children", async(function()
    local log = H.log()
    local parent = weft.spawn(function()
      weft.group(function(g)
        for i = 1, 2 do
          g:spawn(H.closing, function() log("child " .. i) end,
            weft.sleep, 1e6)
        end
        weft.yield()
        log("fn waits")
        weft.sleep(1e6)
      end)
      log("not reached")
    end)
    weft.sleep(0)
    parent:cancel()
    H.raises_cancel(parent.await, parent)
    assert.same({ "child 1", "child 2", "fn waits" }, sorted(log.items))
    assert.equal("cancelled", parent:state())
  end))

  it("waits for cancelled children to unwind before returning",
    async(function()
      local log = H.log()
      H.raises(weft.group, function(g)
        g:spawn(function()
          local ok, err = pcall(weft.sleep, 1e6)
          weft.spawn(function() end):await() -- cleanup may not wait:
          log("unreached")                   -- the task is cancelled
          error(err, 0)
        end)
        g:spawn(function()
          local ok, err = pcall(weft.sleep, 1e6)
          log("cleanup")
          error(err, 0)
        end)
        weft.yield()
        error("fn failed", 0)
      end)
      assert.same({ "cleanup" }, log.items)
    end))

  it("refuses g:spawn after the group has ended", async(function()
    local saved
    weft.group(function(g) saved = g end)
    H.raises_match("g:spawn: the group has ended", saved.spawn, saved,
      function() end)
  end))

  it("rejects a non-function", async(function()
    H.raises_match("weft.group: fn must be a function, got number",
      weft.group, 3)
  end))

  it("methods reject a non-group self", async(function()
    weft.group(function(g)
      H.raises_match("g:join_next: expected a weft.Group, got number",
        g.join_next, 1)
      H.raises_match("g:spawn: expected a weft.Group", g.spawn, {}, print)
    end)
  end))

  it("cannot be used once a script finalized it", async(function()
    H.raises_match("g:_drain: the group was finalized", weft.group,
      function(g)
        local child = g:spawn(function() weft.sleep(1) end)
        debug.getmetatable(g).__gc(g) -- lets go of its members
        H.raises_match("g:spawn: the group was finalized", g.spawn, g, print)
        H.raises_match("g:size: the group was finalized", g.size, g)
        child:await()
      end)
  end))

  -- An ended child the group still owes is kept alive by the group
  -- itself, not by a value a script can replace: replaced, then
  -- collected, it once left the group pointing at freed memory.
  it("keeps ended children whose script replaced its user value",
    async(function()
      local got = {}
      weft.group(function(g)
        for i = 1, 3 do g:spawn(function() return i end) end
        weft.yield() -- all three end, unjoined
        H.setuservalue(g, {}, 1)
        H.setuservalue(g, nil, 2)
        collectgarbage()
        collectgarbage()
        local ok, v = g:join_next()
        got[#got + 1] = ok and v
        ok, v = g:try_join()
        got[#got + 1] = ok and v
        -- the third is left to the group's drain
      end)
      assert.same({ 1, 2 }, sorted(got))
    end))

  it("reports no unhandled error for a failure it raised", function()
    local before = weft.stats().unhandled
    local e = H.raises(H.run, function()
      weft.group(function(g) g:spawn(function() error("x", 0) end) end)
    end)
    assert.equal("x", e)
    assert.equal(before, weft.stats().unhandled)
  end)
end)
