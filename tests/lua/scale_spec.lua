-- scale_spec.lua - many concurrent tasks: 20,000 sleeping tasks, and a
-- deep chain of awaits.
local H = require "helper"
local weft = H.weft
local async = H.async

describe("scale", function()
  it("runs 20,000 concurrent tasks that sleep and return i",
    async(function()
      local N = 20000
      local ts = {}
      for i = 1, N do
        ts[i] = weft.spawn(function()
          weft.sleep(i % 5)
          return i
        end)
      end
      weft.yield() -- let every task start and go to sleep
      assert.equal(N + 1, weft.stats().live)
      local sum = 0
      for i = 1, N do sum = sum + ts[i]:await() end
      assert.equal(N * (N + 1) / 2, sum)
      assert.equal(1, weft.stats().live)
      assert.equal(0, weft.stats().timers)
    end))

  it("collects 20,000 results with weft.all", async(function()
    local N = 20000
    local fs = {}
    for i = 1, N do
      fs[i] = function() weft.yield() return i * 2 end
    end
    local r = weft.all(fs)
    assert.equal(N, r.n)
    local sum = 0
    for i = 1, N do sum = sum + r[i] end
    assert.equal(N * (N + 1), sum)
  end))

  it("cancels 20,000 sleeping tasks through one group", async(function()
    local N, cleaned = 20000, 0
    weft.group(function(g)
      for _ = 1, N do
        g:spawn(function()
          local ok, e = pcall(weft.sleep, 1e6)
          cleaned = cleaned + 1
          error(e, 0)
        end)
      end
      weft.yield()
      assert.equal(N, weft.stats().timers)
      g:cancel()
    end)
    assert.equal(N, cleaned)
    assert.equal(0, weft.stats().timers)
  end))

  it("handles a chain of 2,000 tasks each awaiting the next",
    async(function()
      local function chain(n)
        if n == 0 then weft.sleep(0) return 0 end
        return weft.spawn(chain, n - 1):await() + 1
      end
      assert.equal(2000, chain(2000))
    end))
end)
