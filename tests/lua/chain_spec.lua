-- chain_spec.lua - callback chaining: f:next, f:catch, f:finally.
local H = require "helper"
local weft = H.weft
local async = H.async

describe("f:next", function()
  it("passes every value to on_ok and settles with its result",
    async(function()
      local f, resolve = weft.future()
      local g = f:next(function(a, b, c)
        return a + b, c
      end)
      resolve(1, 2, "three")
      local x, y = g:await()
      assert.same({ 3, "three" }, { x, y })
    end))

  it("without on_ok passes the values through", async(function()
    local f, resolve = weft.future()
    resolve("a", "b")
    assert.same({ "a", "b" }, { f:next():await() })
  end))

  it("lets the handler await", async(function()
    local t = weft.spawn(function() return 2 end)
    local g = t:next(function(v)
      weft.sleep(0)
      local w = weft.spawn(function() return v * 10 end)
      return w:await() + 1
    end)
    assert.equal(21, g:await())
  end))

  it("chains several steps", async(function()
    local f, resolve = weft.future()
    local g = f:next(function(v) return v + 1 end)
      :next(function(v) return v * 2 end)
      :next(function(v) return "=" .. v end)
    resolve(4)
    assert.equal("=10", g:await())
  end))

  it("calls on_err with the same error value, not on_ok", async(function()
    local e = { tag = 1 }
    local log = H.log()
    local t = weft.spawn(function() error(e) end)
    local g = t:next(function() log("ok") end, function(err)
      log(err)
      return "recovered"
    end)
    assert.equal("recovered", g:await())
    assert.same({ e }, log.items)
    assert.equal(e, log.items[1])
  end))

  it("without on_err passes the error on, same value", async(function()
    local e = {}
    local f, _, reject = weft.future()
    local g = f:next(function() return "never" end)
    reject(e)
    assert.equal(e, H.raises(g.await, g))
  end))

  it("settles rejected when on_ok raises", async(function()
    local f, resolve = weft.future()
    local e = {}
    local g = f:next(function() error(e) end)
    resolve()
    assert.equal(e, H.raises(g.await, g))
    assert.equal("rejected", g:state())
  end))

  it("rejects a non-function handler", async(function()
    local f = weft.future()
    H.raises_match("future:next: on_ok must be a function, got number",
      f.next, f, 1)
    H.raises_match("future:next: on_err must be a function, got string",
      f.next, f, nil, "x")
    f:cancel()
  end))

  it("passes a cancellation to on_err", async(function()
    local f = weft.future()
    local g = f:next(nil, function(e) return weft.is_cancelled(e) end)
    f:cancel()
    assert.is_true(g:await())
  end))
end)

describe("f:catch", function()
  it("handles an error and settles with the handler's result",
    async(function()
      local t = weft.spawn(function() error("bad", 0) end)
      local g = t:catch(function(e) return "caught " .. e end)
      assert.equal("caught bad", g:await())
    end))

  it("passes values through untouched on success", async(function()
    local t = weft.spawn(function() return 1, 2 end)
    local g = t:catch(function() return "no" end)
    assert.same({ 1, 2 }, { g:await() })
  end))

  it("propagates an error raised by the handler", async(function()
    local e2 = {}
    local t = weft.spawn(function() error("first") end)
    local g = t:catch(function() error(e2) end)
    assert.equal(e2, H.raises(g.await, g))
  end))

  it("lets the handler await", async(function()
    local f, _, reject = weft.future()
    local g = f:catch(function(e)
      weft.sleep(0)
      return e .. "!"
    end)
    reject("x")
    assert.equal("x!", g:await())
  end))

  it("rejects a non-function handler", async(function()
    local f = weft.future()
    H.raises_match("future:catch: handler must be a function, got nil",
      f.catch, f)
  end))
end)

describe("f:finally", function()
  it("runs on success and passes the values through", async(function()
    local ran = 0
    local t = weft.spawn(function() return "a", "b" end)
    local g = t:finally(function() ran = ran + 1 end)
    assert.same({ "a", "b" }, { g:await() })
    assert.equal(1, ran)
  end))

  it("runs on error and passes the same error on", async(function()
    local ran = 0
    local e = {}
    local t = weft.spawn(function() error(e) end)
    local g = t:finally(function() ran = ran + 1 end)
    assert.equal(e, H.raises(g.await, g))
    assert.equal(1, ran)
  end))

  it("runs on cancellation", async(function()
    local ran = false
    local t = weft.spawn(function() weft.sleep(1e6) end)
    local g = t:finally(function() ran = true end)
    weft.yield()
    t:cancel()
    H.raises_cancel(g.await, g)
    assert.is_true(ran)
  end))

  it("lets the handler await before the result passes on", async(function()
    local log = H.log()
    local t = weft.spawn(function() return 7 end)
    local g = t:finally(function()
      weft.sleep(0)
      log("cleanup")
    end)
    assert.equal(7, g:await())
    log("after")
    assert.same({ "cleanup", "after" }, log.items)
  end))

  it("an error in the handler replaces the result", async(function()
    local t = weft.spawn(function() return 1 end)
    local g = t:finally(function() error("in finally", 0) end)
    assert.equal("in finally", H.raises(g.await, g))
  end))

  it("rejects a non-function handler", async(function()
    local f = weft.future()
    H.raises_match("future:finally: handler must be a function, got table",
      f.finally, f, {})
  end))

  it("raises at the call when self is not a future", async(function()
    local f = weft.future()
    for _, name in ipairs({ "next", "catch", "finally" }) do
      H.raises_match("future:" .. name .. ": expected a future or task, got "
        .. "number", f[name], 42, function() end)
    end
    assert.equal(1, #weft.tasks()) -- nothing was spawned
  end))
end)
