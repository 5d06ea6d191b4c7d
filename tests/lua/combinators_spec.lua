-- combinators_spec.lua - weft.all, weft.all_settled, weft.race, weft.any:
-- items of every kind, bad items, empty lists, fail-fast and the
-- cancellation of losers.
local H = require "helper"
local weft = H.weft
local async = H.async

-- A task that waits until released, logging whether it ended or was
-- cancelled (its cleanup).
local function waiter(log, name, gate)
  return weft.spawn({ name = name }, function()
    local ok, e = pcall(gate.await, gate)
    log((ok and "end " or "cancel ") .. name)
    if not ok then error(e, 0) end
    return name
  end)
end

local function sorted(t)
  table.sort(t)
  return t
end

describe("weft.all", function()
  it("returns each item's first value in list order", async(function()
    local f, resolve = weft.future()
    local t = weft.spawn(function() weft.sleep(1) return "task", "x" end)
    weft.spawn(function() weft.sleep(2) resolve("fut") end)
    local r = weft.all({
      f,
      t,
      function() return "fn", "y" end,
      weft.spawn(function() return nil end),
    })
    assert.equal(4, r.n)
    assert.same({ n = 4, "fut", "task", "fn", nil }, r)
    -- f settled last, its value is still first
  end))

  it("waits for a future resolved later", async(function()
    local f, resolve = weft.future()
    weft.spawn(function() weft.sleep(0) resolve("late") end)
    local r = weft.all({ f, function() return 1 end })
    assert.same({ n = 2, "late", 1 }, r)
  end))

  it("returns an empty list for an empty list", async(function()
    assert.same({ n = 0 }, weft.all({}))
  end))

  it("accepts items settled already", async(function()
    local f, resolve = weft.future()
    resolve(5)
    local t = weft.spawn(function() return 6 end)
    t:await()
    assert.same({ n = 2, 5, 6 }, weft.all({ f, t }))
  end))

  it("fails fast with the same error and cancels the rest",
    async(function()
      local log = H.log()
      local gate = weft.future()
      local a = waiter(log, "a", gate)
      local e = { "boom" }
      local b = weft.spawn(function() weft.sleep(0) error(e) end)
      local c = waiter(log, "c", gate)
      local got = H.raises(weft.all, { a, b, c, function()
        local ok, err = pcall(weft.sleep, 1e6)
        log("cancel fn")
        error(err, 0)
      end })
      assert.equal(e, got)
      H.raises_cancel(a.await, a)
      H.raises_cancel(c.await, c)
      weft.sleep(0)
      assert.same({ "cancel a", "cancel c", "cancel fn" }, sorted(log.items))
      assert.equal("cancelled", a:state())
      assert.equal("rejected", b:state())
      gate:cancel()
    end))

  it("raises an item's cancellation", async(function()
    local f = weft.future()
    f:cancel("gone")
    local e = H.raises_cancel(weft.all, { function() return 1 end, f })
    assert.equal("gone", e.reason)
  end))

  it("names a bad item by its index", async(function()
    H.raises_match("weft.all: item 2 is a number, expected a future, "
      .. "task or function", weft.all, { function() end, 7 })
    H.raises_match("weft.all: item 1 is a table", weft.all, { {} })
    H.raises_match("weft.all: expected a list of futures, tasks or "
      .. "functions, got nil", weft.all)
    H.raises_match("got string", weft.all, "x")
  end))

  it("marks failed items observed: no unhandled report", function()
    local before = weft.stats().unhandled
    H.run(function()
      pcall(weft.all, {
        function() error("one") end,
        function() weft.sleep(0) error("two") end,
      })
    end)
    assert.equal(before, weft.stats().unhandled)
  end)
end)

describe("weft.all_settled", function()
  it("reports every outcome in list order", async(function()
    local e = {}
    local f, _, reject = weft.future()
    local c = weft.spawn(function() weft.sleep(1e6) end)
    weft.spawn(function() weft.sleep(0) reject("rej") c:cancel() end)
    local r = weft.all_settled({
      function() return "v1", "dropped" end,
      weft.spawn(function() error(e) end),
      f,
      c,
    })
    assert.equal(4, r.n)
    assert.same({ ok = true, value = "v1" }, r[1])
    assert.is_false(r[2].ok)
    assert.equal(e, r[2].error)
    assert.same({ ok = false, error = "rej" }, r[3])
    assert.is_false(r[4].ok)
    assert.is_true(weft.is_cancelled(r[4].error))
  end))

  it("does not cancel the others when one fails", async(function()
    local log = H.log()
    local r = weft.all_settled({
      function() error("x", 0) end,
      function() weft.sleep(1) log("slow ended") return "slow" end,
    })
    assert.same({ "slow ended" }, log.items)
    assert.same({ ok = true, value = "slow" }, r[2])
  end))

  it("returns an empty list for an empty list", async(function()
    assert.same({ n = 0 }, weft.all_settled({}))
  end))

  it("names a bad item by its index", async(function()
    H.raises_match("weft.all_settled: item 3 is a boolean",
      weft.all_settled, { function() end, function() end, true })
  end))
end)

describe("weft.race", function()
  it("returns the first to settle and cancels the losers",
    async(function()
      local log = H.log()
      local gate = weft.future()
      local a = waiter(log, "a", gate)
      local f, resolve = weft.future()
      weft.spawn(function() weft.sleep(0) resolve("won", 2) end)
      local x, y = weft.race({ a, f, function()
        local ok, e = pcall(weft.sleep, 1e6)
        log("cancel fn")
        error(e, 0)
      end })
      assert.same({ "won", 2 }, { x, y })
      H.raises_cancel(a.await, a)
      weft.sleep(0)
      assert.same({ "cancel a", "cancel fn" }, sorted(log.items))
      gate:cancel()
    end))

  it("raises the same error when the first to settle fails",
    async(function()
      local e = {}
      local slow = weft.spawn(function() weft.sleep(1e6) end)
      local got = H.raises(weft.race, {
        slow, function() weft.yield() error(e) end })
      assert.equal(e, got)
      H.raises_cancel(slow.await, slow)
    end))

  it("takes an item settled already", async(function()
    local f, resolve = weft.future()
    resolve("ready")
    local t = weft.spawn(function() weft.sleep(1e6) end)
    assert.equal("ready", weft.race({ t, f }))
    H.raises_cancel(t.await, t)
  end))

  it("does not cancel plain futures among the losers", async(function()
    local f = weft.future()
    assert.equal(1, weft.race({ function() return 1 end, f }))
    assert.equal("pending", f:state())
  end))

  it("raises on an empty list", async(function()
    H.raises_match("weft.race: the list is empty", weft.race, {})
  end))

  it("names a bad item by its index", async(function()
    H.raises_match("weft.race: item 1 is a string", weft.race, { "x" })
  end))
end)

describe("weft.any", function()
  it("returns the first success, skipping failures", async(function()
    local slow = weft.spawn(function() weft.sleep(1e6) end)
    local a, b = weft.any({
      function() error("fast fail") end,
      function() weft.sleep(0) return "ok", "more" end,
      slow,
    })
    assert.same({ "ok", "more" }, { a, b })
    H.raises_cancel(slow.await, slow)
  end))

  it("raises an aggregate error with every error when all fail",
    async(function()
      local e1, e3 = {}, {}
      local f, _, reject = weft.future()
      local c = weft.future()
      c:cancel()
      weft.spawn(function() weft.yield() reject("two") end)
      local err = H.raises(weft.any, {
        function() error(e1) end, f, c,
        weft.spawn(function() weft.sleep(0) error(e3) end) })
      assert.equal("aggregate", err.kind)
      assert.equal("weft.any: all 4 failed", tostring(err))
      assert.equal(e1, err.errors[1])
      assert.equal("two", err.errors[2])
      assert.is_true(weft.is_cancelled(err.errors[3]))
      assert.equal(e3, err.errors[4])
      assert.is_false(weft.is_cancelled(err))
      assert.is_false(weft.is_timeout(err))
    end))

  it("raises on an empty list", async(function()
    H.raises_match("weft.any: the list is empty", weft.any, {})
  end))

  it("names a bad item by its index", function()
    if H.lua51 then pending(H.why.len) return end
    H.run(function()
      H.raises_match("weft.any: item 2 is a nil", weft.any,
        setmetatable({ function() end }, { __len = function() return 2 end }))
    end)
  end)
end)

describe("combinators and errors", function()
  it("raise an error from a nested combinator unchanged", async(function()
    local e = {}
    local got = H.raises(weft.all, {
      function()
        return weft.race({ function()
          return weft.any({ function()
            return weft.timeout(1000, function() error(e) end)
          end })
        end })
      end,
    })
    assert.equal("aggregate", got.kind)
    assert.equal(e, got.errors[1])
  end))

  it("error values pass through all, race and timeout", async(function()
    local e = {}
    local function bad() weft.yield() error(e) end
    assert.equal(e, H.raises(weft.all, { bad }))
    assert.equal(e, H.raises(weft.race, { bad }))
    assert.equal(e, H.raises(weft.timeout, 1e6, bad))
    assert.equal(e, weft.all_settled({ bad })[1].error)
    assert.equal(e, H.raises(weft.any, { bad }).errors[1])
  end))
end)
