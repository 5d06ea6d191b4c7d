-- time_spec.lua - weft.sleep, weft.yield, weft.now, weft.timeout,
-- weft.after, weft.every and weft.preempt.
local H = require "helper"
local weft = H.weft
local async = H.async

describe("weft.now", function()
  it("is an integer number of ms that never goes back", async(function()
    local a = weft.now()
    assert.equal("integer", H.mtype(a))
    weft.sleep(0)
    local b = weft.now()
    assert.is_true(b >= a)
  end))

  it("works outside a task", function()
    assert.equal("integer", H.mtype(weft.now()))
  end)
end)

describe("weft.sleep", function()
  it("waits at least ms", async(function()
    local before = weft.now()
    weft.sleep(20)
    assert.is_true(weft.now() >= before + 20)
  end))

  it("wakes sleepers in deadline order", async(function()
    local log = H.log()
    local ts = {}
    -- started out of order; gaps wide enough that a stalled machine
    -- between two starts cannot swap the deadlines
    for _, ms in ipairs({ 75, 25, 50, 0 }) do
      ts[#ts + 1] = weft.spawn(function() weft.sleep(ms) log(ms) end)
    end
    weft.all(ts)
    assert.same({ 0, 25, 50, 75 }, log.items)
  end))

  it("accepts a fractional ms", async(function()
    weft.sleep(0.5)
  end))

  it("returns nothing", async(function()
    assert.equal(0, select("#", weft.sleep(0)))
  end))

  it("accepts math.huge: a sleep that only a cancel ends", async(function()
    local t = weft.spawn(weft.sleep, math.huge)
    weft.yield()
    assert.equal(1, weft.stats().timers)
    t:cancel()
    H.raises_cancel(t.await, t)
    assert.equal(0, weft.stats().timers)
  end))

  it("rejects bad ms: negative, NaN, string, none", async(function()
    H.raises_match("weft.sleep: ms must be a non-negative number",
      weft.sleep, -1)
    H.raises_match("weft.sleep: ms must be a non-negative number",
      weft.sleep, 0 / 0)
    H.raises_match("number expected, got string", weft.sleep, "ten")
    H.raises_match("number expected, got no value", weft.sleep)
    assert.equal(0, weft.stats().timers)
  end))

  it("lets others run while it waits", async(function()
    local ran = false
    local t = weft.spawn(function() ran = true end)
    weft.sleep(1)
    assert.is_true(ran)
    t:await()
  end))
end)

describe("weft.yield", function()
  it("lets every ready task of the same priority run once", async(function()
    local log = H.log()
    local ts = {}
    for i = 1, 3 do
      ts[i] = weft.spawn(function()
        log("a" .. i)
        weft.yield()
        log("b" .. i)
      end)
    end
    weft.yield()
    log("main")
    weft.all(ts)
    assert.same({ "a1", "a2", "a3", "main", "b1", "b2", "b3" }, log.items)
  end))

  it("returns nothing", async(function()
    assert.equal(0, select("#", weft.yield()))
  end))
end)

describe("weft.timeout", function()
  it("returns every value when the work ends in time", async(function()
    local a, b = weft.timeout(1e6, function()
      weft.sleep(0)
      return "x", "y"
    end)
    assert.same({ "x", "y" }, { a, b })
  end))

  it("accepts a task or a future", async(function()
    local t = weft.spawn(function() return 1 end)
    assert.equal(1, weft.timeout(1e6, t))
    local f, resolve = weft.future()
    weft.spawn(function() weft.yield() resolve(2) end)
    assert.equal(2, weft.timeout(1e6, f))
    local g, done = weft.future()
    done(3)
    assert.equal(3, weft.timeout(0, g)) -- settled already: no wait at all
  end))

  it("raises a timeout error and cancels the inner task", async(function()
    local cleaned = false
    local inner
    local e = H.raises(weft.timeout, 5, function()
      inner = weft.current()
      H.closing(function() cleaned = true end, weft.sleep, 1e6)
    end)
    assert.is_true(weft.is_timeout(e))
    assert.is_false(weft.is_cancelled(e))
    assert.equal("timeout", e.kind)
    assert.equal("weft.timeout: timed out after 5 ms", tostring(e))
    local ce = H.raises_cancel(inner.await, inner)
    assert.equal("timeout", ce.reason)
    assert.is_true(cleaned)
    assert.equal("cancelled", inner:state())
  end))

  it("does not settle or cancel a plain future on timeout", async(function()
    local f, resolve = weft.future()
    assert.is_true(weft.is_timeout(H.raises(weft.timeout, 1, f)))
    assert.equal("pending", f:state())
    assert.is_true(resolve("still usable"))
  end))

  it("raises the inner error unchanged", async(function()
    local e = {}
    assert.equal(e, H.raises(weft.timeout, 1e6, function() error(e) end))
  end))

  it("accepts math.huge as no deadline", async(function()
    assert.equal("ok", weft.timeout(math.huge, function()
      weft.sleep(1)
      return "ok"
    end))
  end))

  it("disarms its timer when the work ends first", async(function()
    weft.timeout(1e6, function() return 1 end)
    assert.equal(0, weft.stats().timers)
  end))

  it("can be nested; the inner deadline fires first", async(function()
    local e = H.raises(weft.timeout, 1e6, function()
      return weft.timeout(1, function() weft.sleep(1e6) end)
    end)
    assert.is_true(weft.is_timeout(e))
    assert.equal("weft.timeout: timed out after 1 ms", tostring(e))
  end))

  it("rejects bad ms and bad work", async(function()
    local fn = function() end
    H.raises_match("weft.timeout: ms must be a non-negative number, got -1",
      weft.timeout, -1, fn)
    H.raises_match("weft.timeout: ms must be a non-negative number",
      weft.timeout, 0 / 0, fn)
    H.raises_match("got string", weft.timeout, "5", fn)
    H.raises_match("weft.timeout: expected a future, task or function, "
      .. "got number", weft.timeout, 5, 5)
    assert.equal(0, #weft.tasks() - 1)
  end))
end)

describe("weft.after", function()
  it("runs fn with its arguments after ms, as a task", async(function()
    local before = weft.now()
    local t = weft.after(10, function(a, b) return a .. b end, "x", "y")
    assert.equal("after", t:name())
    assert.equal("xy", t:await())
    assert.is_true(weft.now() >= before + 10)
  end))

  it("cancelling it clears the timer: fn never runs", async(function()
    local ran = false
    local t = weft.after(1e6, function() ran = true end)
    weft.yield()
    assert.equal(1, weft.stats().timers)
    assert.is_true(t:cancel())
    H.raises_cancel(t.await, t)
    assert.is_false(ran)
    assert.equal(0, weft.stats().timers)
  end))

  it("cancelled before its first run, fn never runs", async(function()
    local ran = false
    local t = weft.after(0, function() ran = true end)
    t:cancel()
    H.raises_cancel(t.await, t)
    weft.sleep(1)
    assert.is_false(ran)
  end))

  it("rejects bad ms and fn", async(function()
    H.raises_match("weft.after: ms must be a non-negative number",
      weft.after, -5, function() end)
    H.raises_match("weft.after: fn must be a function, got nil",
      weft.after, 5)
  end))
end)

describe("weft.every", function()
  it("runs fn repeatedly until cancelled", async(function()
    local n = 0
    local f, resolve = weft.future()
    local t = weft.every(1, function(step)
      n = n + step
      if n == 3 then resolve() end
    end, 1)
    assert.equal("every", t:name())
    f:await()
    assert.is_true(t:cancel())
    H.raises_cancel(t.await, t)
    assert.equal("cancelled", t:state())
    -- a tick that falls due at once may run before we do: n >= 3
    assert.is_true(n >= 3)
    local seen = n
    weft.sleep(5)
    assert.equal(seen, n) -- cancel stopped it
    assert.equal(0, weft.stats().timers)
  end))

  it("ends with the error of fn", async(function()
    local n = 0
    local t = weft.every(1, function()
      n = n + 1
      if n == 2 then error("stop", 0) end
    end)
    assert.equal("stop", H.raises(t.await, t))
    assert.equal(2, n)
  end))

  it("rejects bad ms and fn", async(function()
    H.raises_match("weft.every: ms must be a positive number",
      weft.every, 0, function() end)
    H.raises_match("weft.every: ms must be a positive number",
      weft.every, 0 / 0, function() end)
    H.raises_match("weft.every: fn must be a function",
      weft.every, 1, "f")
  end))
end)

describe("weft.preempt", function()
  after_each(function() weft.preempt(0) end)

  it("makes a task that never waits yield to a timer", function()
    weft.preempt(2)
    -- Without preemption the loop would run to its bound (seconds) and
    -- return false. It makes a table now and then: under
    -- ThreadSanitizer a signal is delivered only inside such a call.
    local stopped, n = H.run(function()
      local stop = false
      local busy = weft.spawn(function()
        local i = 0
        while not stop and i < 1e9 do
          i = i + 1
          if i % 1000 == 0 then local _ = {} end
        end
        return stop
      end)
      weft.sleep(5)
      stop = true
      return busy:await(), weft.stats().preemptions
    end)
    assert.is_true(stopped)
    assert.is_true(n > 0)
  end)

  it("rejects a bad slice, and a call from a task", function()
    for _, bad in ipairs { -1, 1.5, 60001, "x" } do
      H.raises_match("weft.preempt: ms must be an integer from 0 to 60000, "
        .. "got " .. tostring(bad), weft.preempt, bad)
    end
    H.run(function()
      H.raises_match("weft.preempt: not from inside a task (call it "
        .. "before weft.run)", weft.preempt, 1)
    end)
  end)
end)
