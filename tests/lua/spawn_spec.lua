-- spawn_spec.lua - weft.run, weft.spawn (names, priorities, bad
-- arguments), weft.current and the task methods id/name/tostring.
local H = require "helper"
local weft = H.weft
local async = H.async

describe("weft.run", function()
  it("returns every value of the main function", function()
    local a, b, c, n = H.run(function(x, y)
      return x + y, "two", nil
    end, 1, 2)
    assert.same({ 3, "two", nil }, { a, b, c })
    n = select("#", H.run(function() return 1, nil, nil end))
    assert.equal(3, n)
  end)

  it("passes its extra arguments to fn", function()
    assert.same({ "a", 2, true },
      { H.run(function(...) return ... end, "a", 2, true) })
  end)

  it("raises the main task's error as the same value", function()
    local e = { code = 42 }
    local got = H.raises(H.run, function() error(e) end)
    assert.equal(e, got)
    got = H.raises(H.run, function() error("plain", 0) end)
    assert.equal("plain", got)
  end)

  it("waits for tasks the main task did not await", function()
    local done = false
    weft.run(function()
      weft.spawn(function()
        weft.sleep(1)
        done = true
      end)
    end)
    assert.is_true(done)
    H.check_clean()
  end)

  it("raises a deadlock error when the main task waits forever", function()
    local cleaned = false
    local e = H.raises(weft.run, function()
      local f = weft.future()
      H.closing(function() cleaned = true end, f.await, f)
    end)
    assert.matches("deadlock", tostring(e))
    assert.is_true(cleaned) -- the stuck main task was unwound
    H.check_clean()
  end)

  it("cancels stuck tasks other than main, running their cleanup", function()
    local cleanup, err = false, nil
    local r = weft.run(function()
      weft.spawn(function()
        local ch = weft.channel()
        local ok, e = pcall(ch.recv, ch)
        cleanup, err = true, e
        error(e, 0)
      end)
      return "main done"
    end)
    assert.equal("main done", r)
    assert.is_true(cleanup)
    assert.is_true(weft.is_cancelled(err))
    H.check_clean()
  end)

  it("rejects a non-function", function()
    H.raises_match("weft.run: expected a function, got number",
      weft.run, 42)
    H.raises_match("weft.run: expected a function, got no value", weft.run)
  end)

  it("cannot be nested inside a task", async(function()
    H.raises_match("weft.run: already inside a task",
      weft.run, function() end)
  end))

  it("can be called again after it returned", function()
    for i = 1, 3 do
      assert.equal(i, H.run(function() weft.sleep(0) return i end))
    end
  end)
end)

describe("weft.spawn", function()
  it("runs fn with its arguments and returns a task", async(function()
    local t = weft.spawn(function(a, b) return a * b end, 6, 7)
    assert.equal("weft.Task", tostring(t):match("^weft%.Task"))
    assert.equal(42, t:await())
  end))

  it("keeps nil arguments and their count", async(function()
    local t = weft.spawn(function(...) return select("#", ...), ... end,
      nil, 2, nil)
    assert.same({ 3, nil, 2, nil, n = 4 }, H.pack(t:await()))
  end))

  it("passes none, one or several arguments, nil included", async(function()
    local function count(...) return select("#", ...), ... end
    assert.same({ 0, n = 1 }, H.pack(weft.spawn(count):await()))
    assert.same({ 1, nil, n = 2 }, H.pack(weft.spawn(count, nil):await()))
    assert.same({ 1, "x", n = 2 }, H.pack(weft.spawn(count, "x"):await()))
    assert.same({ 2, "x", "y", n = 3 },
      H.pack(weft.spawn(count, "x", "y"):await()))
    local after = weft.after(0, count, "z")
    assert.same({ 1, "z", n = 2 }, H.pack(after:await()))
  end))

  it("drops the argument of a task cancelled before it ran", async(function()
    local held = setmetatable({}, { __mode = "k" })
    local arg = {}
    held[arg] = true
    local t = weft.spawn(function(x) return x end, arg)
    arg = nil
    t:cancel()
    assert.is_true(weft.is_cancelled(select(2, pcall(t.await, t))))
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(held))
  end))

  -- Tasks that return hand their coroutine on: run many in sequence, one
  -- leaving a hook and a local behind, and check each starts clean.
  local function reuse(hook)
    local hooked = weft.spawn(function()
      if hook then debug.sethook(function() end, "c") end
      return coroutine.running()
    end):await()
    for i = 1, 300 do
      local t = weft.spawn(function(a, b)
        assert(debug.gethook() == nil, "a hook was left behind")
        assert(select("#", a, b) == 2)
        if i % 2 == 0 then weft.yield() end
        return a + b, coroutine.running()
      end, i, 1)
      local sum, co = t:await()
      assert.equal(i + 1, sum)
      assert.equal("thread", type(co))
    end
    assert.equal("thread", type(hooked))
    assert.equal(300, #weft.all((function()
      local fns = {}
      for i = 1, 300 do fns[i] = function() return i end end
      return fns
    end)()))
  end

  it("reuses the coroutines of ended tasks without carrying anything over",
    async(function() reuse(false) end))

  it("reuses the coroutines of ended tasks, a hook not carried over",
    function()
      if H.luajit then pending(H.why.jit_global_hooks) return end
      H.run(reuse, true)
    end)

  it("refuses to resume a task's coroutine from a script",
    async(function()
      local saved
      weft.spawn(function() saved = coroutine.running() end):await()
      local t = weft.spawn(function()
        local co = coroutine.running()
        weft.sleep(5)
        return co
      end)
      weft.sleep(0)
      local ok, err = coroutine.resume(saved)
      assert.is_false(ok)
      assert.equal("cannot resume the coroutine of a weft task", err)
      t:await()
      -- other coroutines are unaffected
      local c = coroutine.create(function(x) return x * 2 end)
      assert.same({ true, 6 }, { coroutine.resume(c, 3) })
    end))

  it("refuses to close a task's coroutine from a script", function()
    if not coroutine.close then pending(H.why.co_close) return end
    H.run(function()
      local t = weft.spawn(function()
        local co = coroutine.running()
        weft.sleep(5)
        return co
      end)
      weft.sleep(0)
      local ok, err = coroutine.close(t:await())
      assert.is_false(ok)
      assert.equal("cannot close the coroutine of a weft task", err)
    end)
  end)

  it("never reuses a coroutine a task has seen as coroutine.running()",
    async(function()
      local seen = setmetatable({}, { __mode = "k" })
      for i = 1, 50 do
        weft.spawn(function()
          local co = coroutine.running()
          assert(seen[co] == nil, "a coroutine was reused: task " .. i)
          seen[co] = i
        end):await()
      end
    end))

  it("starts the task later, not during spawn", async(function()
    local log = H.log()
    local t = weft.spawn(function() log("child") end)
    log("parent")
    t:await()
    assert.same({ "parent", "child" }, log.items)
  end))

  it("gives each task a distinct increasing id", async(function()
    local a = weft.spawn(function() end)
    local b = weft.spawn(function() end)
    assert.is_number(a:id())
    assert.is_true(b:id() > a:id())
    assert.is_true(weft.current():id() < a:id())
    a:await(); b:await()
  end))

  it("accepts a name, shown by name() and tostring()", async(function()
    local t = weft.spawn({ name = "worker" }, function() return 1 end)
    assert.equal("worker", t:name())
    assert.matches("^weft%.Task #%d+ 'worker' %(pending%)$", tostring(t))
    t:await()
    assert.matches("^weft%.Task #%d+ 'worker' %(fulfilled%)$", tostring(t))
    local u = weft.spawn(function() end)
    assert.is_nil(u:name())
    assert.matches("^weft%.Task #%d+ %(pending%)$", tostring(u))
    u:await()
    assert.equal("main", weft.current():name())
  end))

  it("accepts an empty opts table", async(function()
    local t = weft.spawn({}, function(x) return x end, 5)
    assert.equal(5, t:await())
  end))

  it("rejects a bad fn", async(function()
    H.raises_match("weft.spawn: expected a function, got number",
      weft.spawn, 1)
    H.raises_match("weft.spawn: expected a function, got no value",
      weft.spawn)
    H.raises_match("weft.spawn: expected a function, got string",
      weft.spawn, { name = "x" }, "nope")
    H.raises_match("weft.spawn: expected a function, got table",
      weft.spawn, {}, {})
  end))

  it("rejects bad opts", async(function()
    local f = function() end
    H.raises_match("weft.spawn: opts.priority must be one of critical, "
      .. "high, normal, low, idle (got 3)", weft.spawn, { priority = 3 }, f)
    H.raises_match("must be one of critical, high, normal, low, idle "
      .. "(got urgent)", weft.spawn, { priority = "urgent" }, f)
    H.raises_match("(got table", weft.spawn, { priority = {} }, f)
    H.raises_match("opts.name must be a string", weft.spawn,
      { name = 12 }, f)
    H.raises_match("opts.name must be a string", weft.spawn,
      { name = {} }, f)
    assert.equal(0, #weft.tasks() - 1) -- nothing was spawned
  end))

  it("works outside a task: the task runs under the next weft.run",
    function()
      local ran = false
      local t = weft.spawn(function() ran = true return "x" end)
      assert.equal("pending", t:state())
      assert.is_false(ran)
      local r = weft.run(function() return t:await() end)
      H.check_clean()
      assert.equal("x", r)
      assert.is_true(ran)
    end)

  it("current() is the running task, nil outside", async(function()
    local me = weft.current()
    assert.equal("pending", me:state())
    local t
    t = weft.spawn(function() return weft.current() end)
    assert.equal(t, t:await())
    assert.not_equal(me, t)
  end))

  it("current() is nil outside a task", function()
    assert.is_nil(weft.current())
  end)
end)

describe("priorities", function()
  local order = { "critical", "high", "normal", "low", "idle" }

  -- The scheduler gives every 8th dispatch (WEFT_FAIR_PERIOD) to a
  -- round-robin level to bound starvation. Align on that period so the
  -- five dispatches under test hold no fairness turn.
  local function align()
    while weft.stats().dispatched % 8 ~= 0 do weft.yield() end
  end

  it("runs tasks made ready together in priority order", async(function()
    local log = H.log()
    local ts = {}
    align()
    for i = #order, 1, -1 do -- spawn the least urgent first
      ts[#ts + 1] = weft.spawn({ priority = order[i] }, log.add, order[i])
    end
    weft.all(ts)
    assert.same(order, log.items)
  end))

  it("keeps FIFO order within one priority", async(function()
    local log = H.log()
    local ts = {}
    for i = 1, 10 do ts[i] = weft.spawn({ priority = "low" }, log.add, i) end
    weft.all(ts)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, log.items)
  end))

  it("orders wake-ups from one event by priority", async(function()
    local log = H.log()
    local f, resolve = weft.future()
    local ts = {}
    for i = #order, 1, -1 do
      ts[#ts + 1] = weft.spawn({ priority = order[i] }, function()
        f:await()
        log(order[i])
      end)
    end
    weft.sleep(0) -- all of them wait on f now
    align()
    resolve()
    weft.all(ts)
    assert.same(order, log.items)
  end))

  it("reports each task's priority in weft.tasks()", async(function()
    local ts = {}
    for _, p in ipairs(order) do
      ts[p] = weft.spawn({ priority = p, name = p }, weft.sleep, 0)
    end
    local seen = {}
    for _, info in ipairs(weft.tasks()) do
      if info.name and ts[info.name] then seen[info.name] = info.priority end
    end
    assert.same({ critical = "critical", high = "high", normal = "normal",
      low = "low", idle = "idle" }, seen)
    for _, t in pairs(ts) do t:await() end
  end))

  it("does not starve an idle task behind busy urgent ones", async(function()
    local idle_ran = false
    local idle = weft.spawn({ priority = "idle" }, function()
      idle_ran = true
    end)
    local busy = weft.spawn({ priority = "critical" }, function()
      local n = 0
      while not idle_ran and n < 1000 do
        weft.yield()
        n = n + 1
      end
      return n
    end)
    local n = busy:await()
    assert.is_true(idle_ran)
    assert.is_true(n < 1000)
    idle:await()
  end))
end)
