-- cancel_spec.lua - cancellation during every kind of wait: the wait
-- raises a cancellation error, every later wait raises too (sticky), the
-- task's cleanup runs, it ends "cancelled" and leaves nothing behind.
-- Also weft.is_cancelled and weft.is_timeout.
local H = require "helper"
local weft = H.weft
local async = H.async

-- The cleanup of a task or function: closing(log, what, fn, ...) runs
-- fn(...), then logs what however fn ends (H.closing).
local function closing(log, what, fn, ...)
  return H.closing(function() log(what) end, fn, ...)
end

-- Each kind: setup() -> env with env.wait() (the wait to cancel) and
-- optionally env.check(log) (assertions once the task has ended, from the
-- main task), env.extra (log entries the wait's own cleanup adds) and
-- env.settle (the wait spawns helper tasks: let them all start first).
local kinds = {
  { "await of a future", function()
    local f = weft.future()
    return {
      wait = function() f:await() end,
      check = function() assert.equal("pending", f:state()) f:cancel() end,
    }
  end },
  { "await of a task", function()
    local inner = weft.spawn(function() weft.sleep(1e6) end)
    return {
      wait = function() inner:await() end,
      -- inner is not a child of the waiting task: it runs on
      check = function()
        assert.equal("pending", inner:state())
        inner:cancel()
        H.raises_cancel(inner.await, inner)
      end,
    }
  end },
  { "sleep", function()
    return { wait = function() weft.sleep(1e6) end }
  end },
  { "yield", function()
    return { wait = function() weft.yield() end }
  end },
  { "channel send", function()
    local ch = weft.channel(1)
    ch:send("first")
    return {
      wait = function() ch:send("second") end,
      check = function()
        assert.equal("first", ch:try_recv())
        assert.same({ nil, "empty" }, { ch:try_recv() }) -- not delivered
      end,
    }
  end },
  { "rendezvous send", function()
    local ch = weft.channel()
    return {
      wait = function() ch:send("v") end,
      check = function() assert.same({ nil, "empty" }, { ch:try_recv() }) end,
    }
  end },
  { "channel recv", function()
    local ch = weft.channel()
    return {
      wait = function() ch:recv() end,
      check = function()
        -- the cancelled receiver is gone: a value now stays buffered
        -- for a new receiver instead of vanishing
        local r = weft.spawn(function() return ch:recv() end)
        assert.is_true(weft.spawn(function() ch:send("x") end)
          :await() == nil)
        assert.equal("x", r:await())
      end,
    }
  end },
  { "semaphore acquire", function()
    local sem = weft.semaphore(1)
    sem:acquire()
    return {
      wait = function() sem:acquire() end,
      check = function()
        assert.equal(0, sem:available())
        sem:release() -- goes to nobody: the waiter left
        assert.equal(1, sem:available())
      end,
    }
  end },
  { "group join_next", function(log)
    return {
      wait = function()
        weft.group(function(g)
          g:spawn(function()
            closing(log, "child cleanup", function() weft.sleep(1e6) end)
          end)
          g:join_next()
        end)
      end,
      extra = { "child cleanup" },
      settle = true,
    }
  end },
  { "weft.all", function(log)
    local f = weft.future()
    return {
      wait = function()
        weft.all({
          function()
            closing(log, "item 1 cleanup", function() weft.sleep(1e6) end)
          end,
          function()
            closing(log, "item 2 cleanup", function() weft.channel():recv() end)
          end,
          f,
        })
      end,
      extra = { "item 1 cleanup", "item 2 cleanup" },
      settle = true,
      check = function() assert.equal("pending", f:state()) end,
    }
  end },
  { "weft.timeout", function(log)
    return {
      wait = function()
        weft.timeout(1e6, function()
          closing(log, "inner cleanup", function() weft.sleep(1e6) end)
        end)
      end,
      extra = { "inner cleanup" },
      settle = true,
    }
  end },
  { "weft.race", function(log)
    return {
      wait = function()
        weft.race({ function()
          closing(log, "racer cleanup", function() weft.sleep(1e6) end)
        end })
      end,
      extra = { "racer cleanup" },
      settle = true,
    }
  end },
}

local function sorted(t)
  local c = { H.unpack(t) }
  table.sort(c)
  return c
end

describe("cancellation", function()
  for _, k in ipairs(kinds) do
    local name, setup = k[1], k[2]

    it("during " .. name .. " raises, is sticky and runs cleanup",
      async(function()
        local log = H.log()
        local env = setup(log)
        local t = weft.spawn({ name = "victim" }, closing, log, "close",
          function()
            local ok, e = pcall(env.wait)
            log(ok and "wait returned"
              or (weft.is_cancelled(e) and "cancelled" or tostring(e)))
            local ok2, e2 = pcall(weft.sleep, 0)
            log(not ok2 and weft.is_cancelled(e2) and "sticky"
              or "not sticky")
            local ok3, e3 = pcall(weft.yield)
            log(not ok3 and e3 == e2 and "same error" or "other error")
            error(e, 0)
          end)
        -- t runs and waits. Only one yield: t must still be in its own
        -- weft.yield when cancelled, for the yield kind.
        if env.settle then H.settle() else weft.yield() end
        assert.equal("pending", t:state())
        assert.is_true(t:cancel("test"))
        local e = H.raises_cancel(t.await, t)
        assert.equal("test", e.reason)
        assert.equal("cancelled", t:state())
        weft.sleep(0) -- let the wait's helper tasks end
        local want = { "cancelled", "sticky", "same error", "close" }
        if env.extra then
          -- helper tasks unwind in their own order: compare as sets
          for _, x in ipairs(env.extra) do want[#want + 1] = x end
          assert.same(sorted(want), sorted(log.items))
        else
          assert.same(want, log.items)
        end
        if env.check then env.check(log) end
        assert.equal(0, weft.stats().timers)
        assert.equal(1, weft.stats().live) -- only main
      end))

    it("during " .. name .. " unwinds a task that does not catch it",
      async(function()
        local log = H.log()
        local env = setup(log)
        local t = weft.spawn(closing, log, "close", function()
          env.wait()
          log("not reached")
        end)
        if env.settle then H.settle() else weft.yield() end
        t:cancel()
        H.raises_cancel(t.await, t)
        weft.sleep(0)
        local want = { "close", H.unpack(env.extra or {}) }
        assert.same(sorted(want), sorted(log.items)) -- no "not reached"
        assert.equal("cancelled", t:state())
        if env.check then env.check(log) end
        assert.equal(0, weft.stats().timers)
        assert.equal(1, weft.stats().live)
      end))
  end
end)

describe("cancellation rules", function()
  it("cancels the descendants of a cancelled task", async(function()
    local log = H.log()
    local grandchild
    local t = weft.spawn(function()
      local child = weft.spawn(function()
        grandchild = weft.spawn(function()
          closing(log, "grandchild", function() weft.sleep(1e6) end)
        end)
        closing(log, "child", function() weft.sleep(1e6) end)
      end)
      closing(log, "parent", child.await, child)
    end)
    weft.sleep(0)
    t:cancel()
    H.raises_cancel(t.await, t)
    H.raises_cancel(grandchild.await, grandchild)
    assert.same({ "child", "grandchild", "parent" }, sorted(log.items))
  end))

  it("a task spawned by a cancelled task starts cancelled", async(function()
    local ran = false
    local t = weft.spawn(function()
      pcall(weft.sleep, 1e6)
      local c = weft.spawn(function() ran = true end)
      return c
    end)
    weft.yield()
    t:cancel()
    local c = t:await() -- t swallowed its cancellation and returned
    H.raises_cancel(c.await, c)
    assert.is_false(ran)
  end))

  it("a task that swallows the cancellation ends as it returns",
    async(function()
      local t = weft.spawn(function()
        local ok = pcall(weft.sleep, 1e6)
        return ok and "slept" or "swallowed"
      end)
      weft.yield()
      t:cancel()
      assert.equal("swallowed", t:await())
      assert.equal("fulfilled", t:state())
    end))

  it("raises one plain cancellation error, inside and to every await",
    async(function()
      local inside
      local t = weft.spawn(function()
        local ok, e = pcall(weft.sleep, 1e6)
        assert.is_false(ok)
        inside = e
        error(e, 0)
      end)
      weft.yield()
      assert.is_true(t:cancel())
      local e = H.raises_cancel(t.await, t)
      assert.equal("cancelled", e.message)
      assert.is_nil(e.reason)
      assert.equal(inside, e)
      assert.equal(e, H.raises_cancel(t.await, t))
      -- a task cancelled before it ran, and a plain future
      local u = weft.spawn(function() end)
      u:cancel()
      local eu = H.raises_cancel(u.await, u)
      assert.equal(eu, H.raises_cancel(u.await, u))
      local f = weft.future()
      f:cancel()
      local ef = H.raises_cancel(f.await, f)
      assert.equal(ef, H.raises_cancel(f.await, f))
      assert.are_not.equal(ef, eu)
    end))

  it("a task may raise another error while cancelled", async(function()
    local e = {}
    local t = weft.spawn(function()
      pcall(weft.sleep, 1e6)
      error(e)
    end)
    weft.yield()
    t:cancel()
    assert.equal(e, H.raises(t.await, t))
    assert.equal("rejected", t:state())
  end))

  it("a completed receive keeps its value; the next wait raises",
    async(function()
      local log = H.log()
      local ch = weft.channel()
      local t = weft.spawn(function()
        log(ch:recv())
        local ok, e = pcall(weft.sleep, 0)
        log(weft.is_cancelled(e))
        error(e, 0)
      end)
      weft.yield()
      ch:send("value") -- hands "value" to t, which is now ready
      t:cancel()
      H.raises_cancel(t.await, t)
      assert.same({ "value", true }, log.items)
    end))

  it("a permit granted before the cancel is released by with()",
    async(function()
      local sem = weft.semaphore(1)
      sem:acquire()
      local t = weft.spawn(function()
        sem:with(function() weft.sleep(1e6) end)
      end)
      weft.yield()
      sem:release() -- the permit goes to t, which is now ready
      t:cancel()
      H.raises_cancel(t.await, t)
      assert.equal(1, sem:available())
    end))

  it("a task can cancel itself", async(function()
    local log = H.log()
    local t = weft.spawn(closing, log, "close", function()
      assert.is_true(weft.current():cancel("self"))
      log("still running until the next wait")
      weft.yield()
      log("not reached")
    end)
    local e = H.raises_cancel(t.await, t)
    assert.equal("self", e.reason)
    assert.same({ "still running until the next wait", "close" }, log.items)
  end))

  it("cancelling the main task makes weft.run raise it", function()
    local e = H.raises(weft.run, function()
      weft.current():cancel("main")
      weft.sleep(0)
    end)
    assert.is_true(weft.is_cancelled(e))
    assert.equal("main", e.reason)
    H.check_clean()
  end)

  it("the cancel error without a reason", async(function()
    local t = weft.spawn(function() weft.sleep(1e6) end)
    weft.yield()
    t:cancel()
    local e = H.raises_cancel(t.await, t)
    assert.equal("cancelled", tostring(e))
    assert.is_nil(e.reason)
  end))
end)

describe("is_cancelled and is_timeout", function()
  it("tell weft errors from any other value", async(function()
    local t = weft.spawn(function() weft.sleep(1e6) end)
    weft.yield()
    t:cancel()
    local ce = H.raises(t.await, t)
    local te = H.raises(weft.timeout, 0, function() weft.sleep(1e6) end)
    assert.is_true(weft.is_cancelled(ce))
    assert.is_false(weft.is_timeout(ce))
    assert.is_true(weft.is_timeout(te))
    assert.is_false(weft.is_cancelled(te))
    for _, v in ipairs({ "cancelled", { kind = "cancelled" },
      { kind = "timeout" }, 1, true, function() end }) do
      assert.is_false(weft.is_cancelled(v))
      assert.is_false(weft.is_timeout(v))
    end
    assert.is_false(weft.is_cancelled())
    assert.is_false(weft.is_timeout(nil))
  end))
end)
