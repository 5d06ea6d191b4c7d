-- outside_spec.lua - every async function called outside a task raises
-- "<name>: not inside a weft task (use weft.run or weft.spawn)" and
-- starts nothing; inside a nested coroutine of a task they refuse too.
local H = require "helper"
local weft = H.weft

local MSG = ": not inside a weft task (use weft.run or weft.spawn)"

-- name, call: each call is made from plain Lua.
local function calls()
  local f = weft.future()
  local ch = weft.channel(1)
  local sem = weft.semaphore(1)
  local fn = function() end
  return {
    { "await", function() return weft.await(f) end },
    { "await", function() return f:await() end },
    { "weft.sleep", function() return weft.sleep(1) end },
    { "weft.yield", function() return weft.yield() end },
    { "ch:send", function() return ch:send(1) end },
    { "ch:recv", function() return ch:recv() end },
    { "ch:recv", function() return ch:iter()() end },
    { "sem:acquire", function() return sem:acquire() end },
    { "sem:with", function() return sem:with(fn) end },
    { "weft.group", function() return weft.group(function(g)
      g:spawn(fn)
    end) end },
    { "weft.timeout", function() return weft.timeout(10, fn) end },
    { "weft.timeout", function() return weft.timeout(10, f) end },
    { "weft.all", function() return weft.all({ fn, fn }) end },
    { "weft.all_settled", function() return weft.all_settled({ fn }) end },
    { "weft.race", function() return weft.race({ fn }) end },
    { "weft.any", function() return weft.any({ fn }) end },
  }
end

describe("outside a task", function()
  for _, c in ipairs(calls()) do
    local name, call = c[1], c[2]
    it(name .. " raises a clear error and starts nothing", function()
      local before = weft.stats()
      H.raises_match(name .. MSG, call)
      local after = weft.stats()
      assert.equal(before.spawned, after.spawned) -- nothing spawned
      H.check_clean()
    end)
  end

  it("the error points at the caller's line", function()
    local e = H.raises(function() weft.all({}) end)
    assert.matches("outside_spec%.lua:%d+: weft%.all: not inside", e)
    e = H.raises(function() weft.sleep(1) end)
    assert.matches("outside_spec%.lua:%d+: weft%.sleep: not inside", e)
  end)

  it("g:join_next raises the same error", function()
    local g
    H.run(function() weft.group(function(x) g = x end) end)
    H.raises_match("g:join_next" .. MSG, g.join_next, g)
  end)

  it("non-waiting functions work", function()
    local f, resolve = weft.future()
    assert.is_true(resolve(1))
    assert.equal(1, f:result())
    assert.equal("fulfilled", f:state())
    local ch = weft.channel(1)
    assert.is_true(ch:try_send(2))
    assert.equal(2, ch:try_recv())
    ch:close()
    local sem = weft.semaphore(1)
    assert.is_true(sem:try_acquire())
    sem:release()
    assert.is_number(weft.now())
    assert.is_table(weft.stats())
    assert.same({}, weft.tasks())
    assert.is_nil(weft.current())
  end)
end)

describe("inside a coroutine a C function resumes, in a task", function()
  for _, c in ipairs(calls()) do
    local name, call = c[1], c[2]
    if name ~= "g:join_next" then
      it(name .. " refuses to wait", H.async(function()
        -- table.sort's comparator is a C call: nothing in it can yield.
        local err
        table.sort({1, 2}, function()
          if err == nil then
            local ok, e = coroutine.resume(coroutine.create(call))
            err = ok and "no error" or e
          end
          return false
        end)
        assert.matches(name .. ": cannot wait inside a C callback", err)
      end))
    end
  end
end)
