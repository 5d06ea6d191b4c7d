-- coroutine_spec.lua - waiting inside coroutines a task creates (async
-- generators, iterators, a library's own coroutines) and inside pcall:
-- the wait suspends the whole task, the coroutine goes on where it was,
-- cancellation and preemption reach it. Written in the syntax every Lua
-- weft supports.
-- SPDX-License-Identifier: MIT
local H = require "helper"
local weft = H.weft
local async = H.async

describe("a coroutine inside a task", function()
  it("may wait: coroutine.wrap makes an async generator", async(function()
    local gen = coroutine.wrap(function()
      for i = 1, 3 do
        weft.sleep(1)
        coroutine.yield(i)
      end
      return "end"
    end)
    assert.same({1, 2, 3, "end"}, {gen(), gen(), gen(), gen()})
  end))

  it("may wait: coroutine.resume returns its values", async(function()
    local t = weft.spawn(function() weft.sleep(1) return 7 end)
    local co = coroutine.create(function(a)
      local b = coroutine.yield(a + t:await())
      return b * 2, weft.sleep(0)
    end)
    assert.same({true, 8}, {coroutine.resume(co, 1)})
    assert.same({true, 10}, {coroutine.resume(co, 5)})
    assert.equal("dead", coroutine.status(co))
  end))

  it("lets other tasks run while it waits", async(function()
    local log = {}
    local other = weft.spawn(function()
      for i = 1, 3 do
        log[#log + 1] = "other" .. i
        weft.yield()
      end
    end)
    local gen = coroutine.wrap(function()
      for i = 1, 3 do
        weft.yield()
        log[#log + 1] = "gen" .. i
        coroutine.yield()
      end
    end)
    for _ = 1, 3 do gen() end
    other:await()
    assert.same({"other1", "gen1", "other2", "gen2", "other3", "gen3"}, log)
  end))

  it("may wait two coroutines deep, on a channel", async(function()
    local ch = weft.channel()
    weft.spawn(function()
      for i = 1, 3 do ch:send(i) end
      ch:close()
    end)
    local outer = coroutine.wrap(function()
      -- (a while loop: PUC 5.1 cannot yield from a for loop's iterator)
      local inner = coroutine.wrap(function()
        while true do
          local v = ch:recv()
          if v == nil then return end
          coroutine.yield(v * 10)
        end
      end)
      local sum = 0
      for _ = 1, 3 do sum = sum + inner() end
      return sum
    end)
    assert.equal(60, outer())
  end))

  it("is reached by the task's cancellation", async(function()
    local reached, cleaned = false, false
    local t = weft.spawn(function()
      local gen = coroutine.wrap(function()
        local ok, e = pcall(function()
          reached = true
          weft.sleep(1e6)
        end)
        cleaned = true
        error(e, 0)
      end)
      gen()
    end)
    weft.sleep(1)
    assert.is_true(reached)
    t:cancel()
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.is_true(weft.is_cancelled(e))
    assert.equal("cancelled", t:state())
    assert.is_true(cleaned)
  end))

  it("gives a failure inside it to its resumer", async(function()
    local co = coroutine.create(function()
      weft.sleep(1)
      error("inner", 0)
    end)
    assert.same({false, "inner"}, {coroutine.resume(co)})
    local gen = coroutine.wrap(function()
      weft.sleep(1)
      error("wrapped", 0)
    end)
    H.raises_match("wrapped", gen)
  end))

  it("cannot wait when a C function resumed it", async(function()
    local err
    table.sort({1, 2}, function()
      if err == nil then
        local ok, e = coroutine.resume(coroutine.create(function()
          weft.sleep(1)
        end))
        err = ok and "no error" or e
      end
      return false
    end)
    assert.matches("weft.sleep: cannot wait inside a C callback", err)
    weft.sleep(1) -- the task itself still waits
  end))

  it("runs as a plain coroutine outside any task", function()
    local gen = coroutine.wrap(function()
      coroutine.yield(1)
      return 2
    end)
    assert.same({1, 2}, {gen(), gen()})
    local co = coroutine.create(function() error("x", 0) end)
    assert.same({false, "x"}, {coroutine.resume(co)})
  end)
end)

describe("pcall and xpcall inside a task", function()
  it("may surround a wait, and see what it returned", async(function()
    local t = weft.spawn(function() weft.sleep(1) return 1, 2 end)
    assert.same({true, 1, 2}, {pcall(t.await, t)})
    assert.same({true, "a"}, {pcall(function()
      weft.sleep(1)
      return "a"
    end)})
  end))

  it("catch an error raised after a wait", async(function()
    local ok, e = pcall(function()
      weft.sleep(1)
      error("after", 0)
    end)
    assert.same({false, "after"}, {ok, e})
    local ok2, e2 = xpcall(function()
      weft.sleep(1)
      error("x", 0)
    end, function(m) return "handled " .. m end)
    assert.same({false, "handled x"}, {ok2, e2})
  end))

  it("catch the error of an awaited task", async(function()
    local t = weft.spawn(function()
      weft.sleep(1)
      error("boom", 0)
    end)
    assert.same({false, "boom"}, {pcall(weft.await, t)})
  end))

  it("pass a generator's yields through", async(function()
    local gen = coroutine.wrap(function()
      pcall(function()
        for i = 1, 2 do
          weft.sleep(1)
          coroutine.yield(i)
        end
      end)
      return "done"
    end)
    assert.same({1, 2, "done"}, {gen(), gen(), gen()})
  end))
end)

describe("preemption", function()
  before_each(function() weft.preempt(1) end)
  after_each(function() weft.preempt(0) end)

  it("reaches a coroutine the task resumes", function()
    H.run(function()
      local other_ran = false
      weft.spawn(function() other_ran = true end)
      local gen = coroutine.wrap(function()
        -- Computes without waiting until preempted (bounded, so a broken
        -- preemption fails the test instead of hanging it).
        local stop = weft.stats().preemptions + 1
        for _ = 1, 1e6 do
          for _ = 1, 1000 do end
          if weft.stats().preemptions >= stop then break end
        end
        coroutine.yield(weft.stats().preemptions >= stop)
      end)
      assert.is_true(gen())
      assert.is_true(other_ran) -- it ran while the coroutine was preempted
    end)
  end)
end)
