-- await_spec.lua - weft.await / f:await, the future methods state, done,
-- result and cancel, and promises made by weft.future().
local H = require "helper"
local weft = H.weft
local async = H.async

describe("await", function()
  it("returns a task's single value", async(function()
    local t = weft.spawn(function() weft.sleep(0) return "v" end)
    assert.equal("v", weft.await(t))
  end))

  it("returns several values, nils included", async(function()
    local t = weft.spawn(function() weft.yield() return 1, nil, 3, nil end)
    local r = table.pack(t:await())
    assert.equal(4, r.n)
    assert.same({ 1, nil, 3, nil }, { r[1], r[2], r[3], r[4] })
  end))

  it("returns no values for a task that returns none", async(function()
    local t = weft.spawn(function() end)
    assert.equal(0, select("#", t:await()))
  end))

  it("raises a task's error as the same value", async(function()
    local e = { why = "boom" }
    local t = weft.spawn(function() weft.yield() error(e) end)
    assert.equal(e, H.raises(t.await, t))
    local s = weft.spawn(function() error("text", 0) end)
    assert.equal("text", H.raises(weft.await, s))
  end))

  it("raises an error string with its position", async(function()
    local t = weft.spawn(function() error("where") end)
    local e = H.raises(t.await, t)
    assert.matches("await_spec%.lua:%d+: where$", e)
  end))

  it("gives the cached outcome to every later await", async(function()
    local runs = 0
    local t = weft.spawn(function() runs = runs + 1 return "a", "b" end)
    for _ = 1, 5 do
      local a, b = t:await()
      assert.same({ "a", "b" }, { a, b })
    end
    local e = {}
    local f = weft.spawn(function() error(e) end)
    for _ = 1, 3 do assert.equal(e, H.raises(f.await, f)) end
    assert.equal(1, runs)
  end))

  it("lets many tasks await one task", async(function()
    local f, resolve = weft.future()
    local t = weft.spawn(function() return f:await() * 2 end)
    local ws = {}
    for i = 1, 10 do
      ws[i] = weft.spawn(function() return t:await() + i end)
    end
    weft.yield()
    resolve(21)
    for i = 1, 10 do assert.equal(42 + i, ws[i]:await()) end
  end))

  it("refuses a task awaiting itself", async(function()
    local me = weft.current()
    H.raises_match("await: a task cannot await itself", me.await, me)
    H.raises_match("a task cannot await itself", weft.await, me)
    local t
    t = weft.spawn(function()
      local ok, e = pcall(weft.await, t)
      return ok, e
    end)
    local ok, e = t:await()
    assert.is_false(ok)
    assert.matches("cannot await itself", e)
  end))

  it("refuses to wait inside a nested coroutine", async(function()
    local t = weft.spawn(function() weft.sleep(0) return 1 end)
    local co = coroutine.create(function() return t:await() end)
    local ok, e = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("await: cannot wait inside a nested coroutine", e)
    co = coroutine.wrap(function() weft.sleep(1) end)
    H.raises_match("weft.sleep: cannot wait inside a nested coroutine", co)
    assert.equal(1, t:await()) -- the task is still fine
  end))

  it("treats a bare coroutine.yield in a task as weft.yield", async(function()
    local log = H.log()
    local t = weft.spawn(function()
      log("a")
      coroutine.yield("ignored")
      log("c")
      return "done"
    end)
    weft.yield()
    log("b")
    assert.equal("done", t:await())
    assert.same({ "a", "b", "c" }, log.items)
  end))

  it("returns at once for a future settled already", async(function()
    local f, resolve = weft.future()
    resolve("x", "y")
    local a, b = weft.await(f)
    assert.same({ "x", "y" }, { a, b })
  end))

  it("rejects a non-future", async(function()
    H.raises_match("await: expected a future or task, got number",
      weft.await, 5)
    H.raises_match("await: expected a future or task, got no value",
      weft.await)
    H.raises_match("await: expected a future or task, got table",
      weft.await, {})
    H.raises_match("await: expected a future or task, got userdata",
      weft.await, weft.channel())
    H.raises_match("future:state: expected a future or task, got userdata",
      weft.future().state, io.stdout)
  end))

  it("raises the cancellation of a cancelled task", async(function()
    local t = weft.spawn(function() weft.sleep(1e6) end)
    weft.yield()
    assert.is_true(t:cancel("stop"))
    local e = H.raises_cancel(t.await, t)
    assert.equal("cancelled: stop", tostring(e))
    assert.equal("stop", e.reason)
    assert.equal("cancelled", t:state())
  end))
end)

describe("future methods", function()
  it("state() follows a task's life", async(function()
    local go, resolve = weft.future()
    local ok = weft.spawn(function() go:await() return 1 end)
    local bad = weft.spawn(function() go:await() error("x") end)
    local cut = weft.spawn(function() go:await() end)
    assert.equal("pending", ok:state())
    weft.yield()
    cut:cancel()
    resolve()
    ok:await()
    pcall(bad.await, bad)
    pcall(cut.await, cut)
    assert.equal("fulfilled", ok:state())
    assert.equal("rejected", bad:state())
    assert.equal("cancelled", cut:state())
  end))

  it("done() is false while pending, then true", async(function()
    local t = weft.spawn(function() weft.yield() end)
    assert.is_false(t:done())
    t:await()
    assert.is_true(t:done())
    local f, resolve, reject = weft.future()
    assert.is_false(f:done())
    reject("e")
    assert.is_true(f:done())
    pcall(f.await, f)
  end))

  it("result() gives values, raises errors and refuses pending",
    async(function()
      local f, resolve = weft.future()
      H.raises_match("future:result: the future is pending", f.result, f)
      resolve(1, 2)
      assert.same({ 1, 2 }, { f:result() })
      local e = {}
      local t = weft.spawn(function() error(e) end)
      weft.yield()
      assert.equal(e, H.raises(t.result, t))
      local c = weft.spawn(function() weft.sleep(1e6) end)
      c:cancel()
      pcall(c.await, c)
      assert.is_true(weft.is_cancelled(H.raises(c.result, c)))
    end))

  it("result() needs no task", function()
    local f, resolve = weft.future()
    resolve("out")
    assert.equal("out", f:result())
  end)

  it("cancel() returns true only the first time", async(function()
    local t = weft.spawn(function() weft.sleep(1e6) end)
    weft.yield()
    assert.is_true(t:cancel())
    assert.is_false(t:cancel())
    assert.is_false(t:cancel("again"))
    pcall(t.await, t)
    assert.is_false(t:cancel())
    assert.equal("cancelled", t:state())

    local f = weft.future()
    assert.is_true(f:cancel("r"))
    assert.is_false(f:cancel())
    assert.equal("cancelled", f:state())
    local e = H.raises_cancel(f.await, f)
    assert.equal("r", e.reason)
  end))

  it("cancel() of a settled task or future returns false", async(function()
    local t = weft.spawn(function() return 1 end)
    t:await()
    assert.is_false(t:cancel())
    assert.equal("fulfilled", t:state())
    local f, resolve = weft.future()
    resolve()
    assert.is_false(f:cancel())
    assert.equal("fulfilled", f:state())
  end))

  it("cancel() of a task that never ran: it never runs", async(function()
    local ran = false
    local t = weft.spawn(function() ran = true end)
    assert.is_true(t:cancel())
    H.raises_cancel(t.await, t)
    assert.is_false(ran)
    assert.equal("cancelled", t:state())
  end))

  it("cancel() wakes the tasks awaiting a future", async(function()
    local f = weft.future()
    local w = weft.spawn(function() return pcall(f.await, f) end)
    weft.yield()
    f:cancel()
    local ok, e = w:await()
    assert.is_false(ok)
    assert.is_true(weft.is_cancelled(e))
    assert.equal("fulfilled", w:state()) -- w itself was not cancelled
  end))

  it("id() and name() refuse a plain future", async(function()
    local f = weft.future()
    H.raises_match("task:id: not a task", f.id, f)
    H.raises_match("task:name: not a task", f.name, f)
    assert.equal("weft.Future (pending)", tostring(f))
    f:cancel()
    assert.equal("weft.Future (cancelled)", tostring(f))
  end))

  it("methods reject a non-future self", function()
    local f = weft.future()
    H.raises_match("future:state: expected a future or task, got string",
      f.state, "x")
    H.raises_match("future:done: expected a future or task",
      f.done, {})
    H.raises_match("future:cancel: expected a future or task",
      f.cancel, 1)
  end)
end)

describe("weft.future", function()
  it("returns a future and its resolve and reject", async(function()
    local f, resolve, reject = weft.future()
    assert.equal("pending", f:state())
    assert.is_function(resolve)
    assert.is_function(reject)
    local t = weft.spawn(function() return f:await() end)
    weft.yield()
    assert.is_true(resolve("a", nil, "c"))
    assert.same(table.pack("a", nil, "c"), table.pack(t:await()))
  end))

  it("resolve with no value gives no value", async(function()
    local f, resolve = weft.future()
    resolve()
    assert.equal(0, select("#", f:await()))
  end))

  it("reject raises the same error value in awaiters", async(function()
    local f, _, reject = weft.future()
    local e = setmetatable({}, { __tostring = function() return "E" end })
    local t = weft.spawn(function() return pcall(f.await, f) end)
    weft.yield()
    assert.is_true(reject(e))
    local ok, got = t:await()
    assert.is_false(ok)
    assert.equal(e, got)
    assert.equal("rejected", f:state())
  end))

  it("a later resolve or reject is harmless and returns false",
    async(function()
      local f, resolve, reject = weft.future()
      assert.is_true(resolve(1))
      assert.is_false(resolve(2))
      assert.is_false(reject("no"))
      assert.equal(1, f:await())
      local g, resolve2, reject2 = weft.future()
      assert.is_true(reject2("first"))
      assert.is_false(reject2("second"))
      assert.is_false(resolve2("late"))
      assert.equal("first", H.raises(g.await, g))
      local c, resolve3 = weft.future()
      c:cancel()
      assert.is_false(resolve3("late"))
      assert.equal("cancelled", c:state())
    end))

  it("can be resolved outside any task", function()
    local f, resolve = weft.future()
    local r = H.run(function()
      weft.spawn(function() weft.sleep(0) end):await()
      return f:done()
    end)
    assert.is_false(r)
    assert.is_true(resolve("later"))
    assert.equal("later", H.run(function() return f:await() end))
  end)

  it("is not a task: no unhandled report when rejected unobserved",
    function()
      local before = weft.stats().unhandled
      H.run(function()
        local _, _, reject = weft.future()
        reject("nobody listens")
      end)
      assert.equal(before, weft.stats().unhandled)
    end)
end)
