-- preempt_spec.lua - preemption (weft.preempt): nested coroutines,
-- C callbacks, tasks that end right after a preemption, debug hooks left
-- as they were, and cancellation of a task that computes.
-- SPDX-License-Identifier: MIT
local H = require "helper"
local weft = H.weft
-- Preemption is a debug hook, which LuaJIT does not run inside compiled
-- code: the loops here run interpreted.
if H.luajit then jit.off() end
-- Locals: busted resolves globals through Lua code, which a line hook
-- would see.
local sethook, gethook = debug.sethook, debug.gethook

-- Spins until n more preemptions have happened, or until a bound (so a
-- broken preemption fails the test instead of hanging it). True if the
-- preemptions came.
local function spin_until_preempted(n)
  local stop = weft.stats().preemptions + (n or 1)
  for _ = 1, 1e6 do
    for _ = 1, 1000 do end
    if weft.stats().preemptions >= stop then return true end
  end
  return false
end

describe("preemption", function()
  before_each(function() weft.preempt(1) end)
  after_each(function() weft.preempt(0) end)

  it("keeps a nested coroutine's yields, preempting between them",
    function()
      H.run(function()
        local stop = false
        local p0 = weft.stats().preemptions
        local t = weft.spawn(function()
          local gen = coroutine.wrap(function()
            local i = 0
            while true do
              i = i + 1
              for _ = 1, 1e4 do end
              coroutine.yield(i)
            end
          end)
          -- Only the timer below can end this loop: the task is
          -- preempted between two values, never inside the generator.
          local want = 0
          while not stop and want < 1e5 do
            want = want + 1
            assert(gen() == want)
          end
          return stop
        end)
        weft.sleep(5)
        stop = true
        assert.is_true(t:await())
        assert.is_true(weft.stats().preemptions > p0)
      end)
    end)

  it("waits for a callback to return before it preempts", function()
    H.run(function()
      local p0 = weft.stats().preemptions
      local order = H.log()
      local other = weft.spawn(function() order("other") end)
      -- No yield is possible inside table.sort's comparator: the task
      -- computes there for several slices, then yields once it is back.
      table.sort({ 2, 1 }, function(a, b)
        for _ = 1, 2e7 do end
        order("sorted")
        return a < b
      end)
      assert.is_true(spin_until_preempted(1))
      other:await()
      assert.same({ "sorted", "other" }, order.items)
      assert.is_true(weft.stats().preemptions > p0)
    end)
  end)

  it("leaves no hook behind, in the task or in a reused coroutine",
    function()
      H.run(function()
        assert.is_true(spin_until_preempted(3))
        assert.is_nil(gethook())
        local tasks = {}
        for i = 1, 20 do
          tasks[i] = weft.spawn(function()
            -- Ends right after its preemption, from the frame it was
            -- preempted in.
            local p = weft.stats().preemptions
            while weft.stats().preemptions == p do end
          end)
        end
        weft.all(tasks)
        -- Coroutines of tasks that returned are reused.
        for i = 1, 20 do
          tasks[i] = weft.spawn(function() return gethook() end)
        end
        for i = 1, 20 do assert.is_nil(tasks[i]:await()) end
      end)
    end)

  it("lets a line hook set after a preemption see every line", function()
    local count, p0 = H.run(function()
      local p0 = weft.stats().preemptions
      -- Preempted in this very frame (weft.stats is a C function).
      while weft.stats().preemptions == p0 do end
      local n = 0
      sethook(function() n = n + 1 end, "l")
      local a = 0 -- 1
      a = a + 1 -- 2
      sethook() -- 3
      return n, p0
    end)
    assert.equal(3, count)
    assert.is_true(weft.stats().preemptions > p0)
  end)

  it("stops a cancelled task at its next preemption point", function()
    H.run(function()
      local t = weft.spawn(function()
        spin_until_preempted(1e9)
        return "ran to its bound"
      end)
      weft.sleep(5)
      t:cancel()
      H.raises_cancel(t.await, t)
      assert.equal("cancelled", t:state())
    end)
  end)

  it("stops a function timed out while it computes", function()
    H.run(function()
      local seen
      local e = H.raises(weft.timeout, 5, function()
        local ok, err = pcall(spin_until_preempted, 1e9)
        seen = ok and "ran to its bound" or err
        error(err, 0)
      end)
      assert.is_true(weft.is_timeout(e))
      while seen == nil do weft.yield() end
      assert.is_true(weft.is_cancelled(seen), tostring(seen))
    end)
  end)

  it("preempts again, and raises again, a task that swallows the error",
    function()
      H.run(function()
        local caught = 0
        local t = weft.spawn(function()
          while caught < 3 do
            local ok, err = pcall(spin_until_preempted, 1e9)
            if ok then return "ran to its bound" end
            assert(weft.is_cancelled(err), tostring(err))
            caught = caught + 1
          end
          return caught
        end)
        weft.sleep(5)
        t:cancel()
        -- The main task runs between the preemptions, so the task is
        -- preempted, not stopped, until it gives up by itself.
        assert.equal(3, t:await())
      end)
    end)

  it("stops a cancelled task that computes in a nested coroutine",
    function()
      H.run(function()
        local t = weft.spawn(function()
          local gen = coroutine.wrap(function()
            while true do
              for _ = 1, 1e4 do end
              coroutine.yield()
            end
          end)
          for _ = 1, 1e4 do gen() end
          return "ran to its bound"
        end)
        weft.sleep(5)
        t:cancel()
        H.raises_cancel(t.await, t)
      end)
    end)
end)
