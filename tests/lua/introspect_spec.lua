-- introspect_spec.lua - weft.tasks(), weft.stats() and the report of
-- task failures nobody awaited (the counter; the stderr text and exit
-- status are in cli_spec.lua).
local H = require "helper"
local weft = H.weft
local async = H.async

local function find(list, task)
  for _, info in ipairs(list) do
    if info.task == task then return info end
  end
end

describe("weft.tasks", function()
  it("lists live tasks with id, name, state, status, priority, age",
    async(function()
      local gate, open = weft.future()
      local w = weft.spawn({ name = "waiter", priority = "low" },
        function() gate:await() end)
      local r = weft.spawn({ name = "ready" }, function() end)
      weft.sleep(0) -- w waits on gate now; r has ended
      local q = weft.spawn(function() end) -- queued, not run yet
      local list = weft.tasks()
      local main = find(list, weft.current())
      assert.same({ id = weft.current():id(), name = "main",
        state = "pending", status = "running", priority = "normal",
        task = weft.current(), age = main.age }, main)
      local wi = find(list, w)
      assert.equal(w:id(), wi.id)
      assert.equal("waiter", wi.name)
      assert.equal("pending", wi.state)
      assert.equal("waiting", wi.status)
      assert.equal("low", wi.priority)
      assert.equal("integer", H.mtype(wi.age))
      assert.is_true(wi.age >= 0)
      local qi = find(list, q)
      assert.equal("ready", qi.status)
      assert.is_nil(qi.name)
      assert.is_nil(find(list, r)) -- ended tasks are not listed
      assert.equal(3, #list)
      open()
      w:await()
      q:await()
      assert.equal(1, #weft.tasks())
    end))

  it("is empty outside weft.run", function()
    assert.same({}, weft.tasks())
  end)

  it("ages grow with time", async(function()
    local t = weft.spawn(function() weft.sleep(1e6) end)
    weft.sleep(5)
    local info = find(weft.tasks(), t)
    assert.is_true(info.age >= 5)
    t:cancel()
    pcall(t.await, t)
  end))
end)

describe("weft.stats", function()
  it("has every counter", function()
    local s = weft.stats()
    for _, k in ipairs({ "spawned", "done", "fulfilled", "failed",
      "cancelled", "live", "ready", "timers", "dispatched", "unhandled" }) do
      assert.equal("integer", H.mtype(s[k]), k)
    end
  end)

  it("counts spawned, done and each outcome", function()
    local b = weft.stats()
    H.run(function()
      local ok = weft.spawn(function() end)
      local bad = weft.spawn(function() error("x") end)
      local cut = weft.spawn(function() weft.sleep(1e6) end)
      weft.yield()
      cut:cancel()
      ok:await()
      pcall(bad.await, bad)
      pcall(cut.await, cut)
    end)
    local a = weft.stats()
    assert.equal(4, a.spawned - b.spawned) -- main included
    assert.equal(4, a.done - b.done)
    assert.equal(2, a.fulfilled - b.fulfilled) -- main and ok
    assert.equal(1, a.failed - b.failed)
    assert.equal(1, a.cancelled - b.cancelled)
    assert.is_true(a.dispatched - b.dispatched >= 5)
    assert.equal(0, a.live)
  end)

  it("counts live, ready and timers while running", async(function()
    local base = weft.stats()
    assert.equal(1, base.live)
    assert.equal(0, base.timers)
    local s = weft.spawn(function() weft.sleep(1e6) end)
    local q = weft.spawn(function() end)
    local mid = weft.stats()
    assert.equal(3, mid.live)
    assert.equal(2, mid.ready) -- s and q queued, main running
    weft.yield()
    mid = weft.stats()
    assert.equal(2, mid.live) -- q ended
    assert.equal(1, mid.timers) -- s sleeps
    assert.equal(0, mid.ready)
    s:cancel()
    pcall(s.await, s)
    assert.equal(0, weft.stats().timers)
    assert.equal(1, weft.stats().live)
  end))
end)

describe("unhandled failures", function()
  it("a failure nobody awaited is counted once weft.run ends", function()
    local b = weft.stats().unhandled
    -- the report goes to stderr; run it in a child process to keep the
    -- test output clean, and check the counter here too
    local out = io.popen(("%s -e %s 2>&1"):format(
      H.lua_exe, H.shell_quote([[
        local weft = require "weft"
        weft.run(function()
          weft.spawn({ name = "doomed" }, function() error("lost!") end)
        end)
        io.write("count=", weft.stats().unhandled)
      ]])))
    local text = out:read("*a")
    out:close()
    assert.matches("weft: unhandled error in task #%d+ 'doomed': "
      .. "[^\n]*:%d+: lost!\nstack traceback:", text)
    assert.matches("count=1", text)
    assert.equal(b, weft.stats().unhandled)
  end)

  it("an awaited failure is not reported", function()
    local b = weft.stats().unhandled
    H.run(function()
      local t = weft.spawn(function() error("seen") end)
      pcall(t.await, t)
      local u = weft.spawn(function() error("seen too") end)
      weft.yield()
      pcall(u.result, u)
      local c = weft.spawn(function() error("caught") end)
      c:catch(function() end):await()
    end)
    assert.equal(b, weft.stats().unhandled)
  end)

  it("a cancelled task is not a failure", function()
    local b = weft.stats().unhandled
    H.run(function()
      local t = weft.spawn(function() weft.sleep(1e6) end)
      weft.yield()
      t:cancel()
      weft.sleep(0)
    end)
    assert.equal(b, weft.stats().unhandled)
  end)
end)

describe("weft's metatables", function()
  it("are protected: getmetatable gives their names", async(function()
    assert.equal("weft.Future", getmetatable(weft.future()))
    assert.equal("weft.Future", getmetatable(weft.spawn(print)))
    assert.equal("weft.Channel", getmetatable(weft.channel()))
    assert.equal("weft.Semaphore", getmetatable(weft.semaphore(1)))
    weft.group(function(g) assert.equal("weft.Group", getmetatable(g)) end)
  end))

  it("survive being given to plain tables", async(function()
    local gmt = debug.getmetatable
    local mts = { gmt(weft.future()), gmt(weft.channel()),
      gmt(weft.semaphore(1)) }
    weft.group(function(g) mts[#mts + 1] = gmt(g) end)
    local srv = weft.tcp.listen("127.0.0.1", 0, function(c) c:close() end)
    local conn = weft.tcp.connect("127.0.0.1", srv.port)
    mts[#mts + 1] = gmt(conn)
    mts[#mts + 1] = gmt(srv)
    for _, mt in ipairs(mts) do
      local t = setmetatable({}, mt)
      assert.is_string(tostring(t))
    end
    collectgarbage()
    collectgarbage() -- every __gc ran on a table: nothing crashed
    conn:close()
    srv:close()
    assert.has_error(function() weft.await(setmetatable({}, mts[1])) end,
      "await: expected a future or task, got table")
  end))
end)
