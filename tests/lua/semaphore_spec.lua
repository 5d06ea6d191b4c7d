-- semaphore_spec.lua - weft.semaphore: acquire, release, try_acquire,
-- available and with.
local H = require "helper"
local weft = H.weft
local async = H.async

describe("weft.semaphore", function()
  it("limits concurrency to its permits", async(function()
    local sem = weft.semaphore(3)
    local inside, max, runs = 0, 0, 0
    local ts = {}
    for i = 1, 20 do
      ts[i] = weft.spawn(function()
        sem:acquire()
        inside = inside + 1
        if inside > max then max = inside end
        weft.sleep(i % 3)
        weft.yield()
        inside = inside - 1
        runs = runs + 1
        sem:release()
      end)
    end
    weft.all(ts)
    assert.equal(3, max)
    assert.equal(20, runs)
    assert.equal(3, sem:available())
  end))

  it("acquire waits until a permit is released", async(function()
    local log = H.log()
    local sem = weft.semaphore(1)
    sem:acquire()
    local t = weft.spawn(function()
      sem:acquire()
      log("got it")
      sem:release()
    end)
    weft.sleep(0)
    assert.same({}, log.items)
    assert.equal(0, sem:available())
    log("release")
    sem:release()
    t:await()
    assert.same({ "release", "got it" }, log.items)
  end))

  it("serves waiters first come, first served", async(function()
    local log = H.log()
    local sem = weft.semaphore(0)
    local ts = {}
    for i = 1, 4 do
      ts[i] = weft.spawn(function()
        sem:acquire()
        log(i)
      end)
    end
    weft.sleep(0)
    for _ = 1, 4 do sem:release() end
    weft.all(ts)
    assert.same({ 1, 2, 3, 4 }, log.items)
  end))

  it("try_acquire takes a permit only when one is free", function()
    local sem = weft.semaphore(1)
    assert.is_true(sem:try_acquire())
    assert.is_false(sem:try_acquire())
    assert.equal(0, sem:available())
    sem:release()
    assert.equal(1, sem:available())
  end)

  it("raises when released more than acquired", function()
    local sem = weft.semaphore(2)
    H.raises_match("sem:release: released more permits than acquired",
      sem.release, sem)
    sem:try_acquire()
    sem:release()
    H.raises_match("released more permits than acquired", sem.release, sem)
    assert.equal(2, sem:available())
  end)

  it("rejects a bad count", function()
    H.raises_match("weft.semaphore: permits must be >= 0, got -1",
      weft.semaphore, -1)
    H.raises_match("number expected, got no value", weft.semaphore)
    H.raises_match("number has no integer representation",
      weft.semaphore, 0.5)
  end)

  it("methods reject a non-semaphore self", async(function()
    local sem = weft.semaphore(1)
    H.raises_match("sem:acquire: expected a weft.Semaphore, got table",
      sem.acquire, {})
    H.raises_match("sem:release: expected a weft.Semaphore", sem.release, 1)
  end))
end)

describe("sem:with", function()
  it("runs fn holding a permit and returns its values", async(function()
    local sem = weft.semaphore(1)
    local a, b = sem:with(function(x, y)
      assert.equal(0, sem:available())
      weft.sleep(0)
      return x + y, "second"
    end, 2, 3)
    assert.same({ 5, "second" }, { a, b })
    assert.equal(1, sem:available())
  end))

  it("releases the permit when fn raises, same error", async(function()
    local sem = weft.semaphore(1)
    local e = {}
    assert.equal(e, H.raises(sem.with, sem, function() error(e) end))
    assert.equal(1, sem:available())
    -- a waiter behind it gets the permit
    sem:acquire()
    local t = weft.spawn(sem.with, sem, function() return "next" end)
    weft.yield()
    assert.equal("pending", t:state())
    sem:release()
    assert.equal("next", t:await())
  end))

  it("releases the permit when the task is cancelled inside fn",
    async(function()
      local sem = weft.semaphore(1)
      local t = weft.spawn(function()
        sem:with(function() weft.sleep(1e6) end)
      end)
      weft.yield()
      assert.equal(0, sem:available())
      t:cancel()
      H.raises_cancel(t.await, t)
      assert.equal(1, sem:available())
    end))

  it("limits concurrency", async(function()
    local sem = weft.semaphore(2)
    local inside, max = 0, 0
    local fs = {}
    for i = 1, 10 do
      fs[i] = function()
        return sem:with(function()
          inside = inside + 1
          max = math.max(max, inside)
          weft.sleep(0)
          inside = inside - 1
          return i
        end)
      end
    end
    local r = weft.all(fs)
    assert.equal(2, max)
    assert.same({ n = 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, r)
  end))

  it("rejects a non-function", async(function()
    local sem = weft.semaphore(1)
    H.raises_match("sem:with: fn must be a function, got nil", sem.with, sem)
    assert.equal(1, sem:available())
  end))
end)
