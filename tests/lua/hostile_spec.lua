-- hostile_spec.lua - what a hostile script can do to weft's C code, with
-- and without the debug library: every C function of weft (the weft
-- table, the methods and metamethods of its objects, the private
-- primitives of the internal table) called with hostile arguments and
-- with replaced upvalues; weft objects with replaced user values; tasks
-- whose suspended C functions had their stack slots replaced. The
-- process must survive (run it under ASan: no report), and an error must
-- be a string, or a weft error, that names the function.
local H = require "helper"
local weft = H.weft
local pack, unpack = H.pack, H.unpack

-- No path given to a function here exists: the fs and process functions
-- get to run, and find nothing to harm.
local NOWHERE = "/nonexistent-weft-hostile/x"
local function noop() end
local ncalls = 0 -- calls made, for the report

-- The values given as arguments (objects are added inside a task).
local function hostile_values()
  local trap = setmetatable({}, {
    __index = function() error("trap", 0) end,
    __newindex = function() error("trap", 0) end,
  })
  return { 0, 1, -1, 7, 2^53, math.huge, -math.huge, 0 / 0, 1.5,
    math.mininteger or -2^63, math.maxinteger or 2^63, "", NOWHERE, ("x"):rep(300), {},
    { 1, 2, 3 }, trap, io.stdout, coroutine.create(noop), noop, true,
    false }
end

-- The weft objects given as arguments, made in a task; none waits or
-- runs on, so that a function that waits for one cannot hang.
local function weft_objects()
  local done = weft.spawn(noop)
  done:await()
  local cancelled = weft.spawn(noop)
  cancelled:cancel()
  local ch = weft.channel(1)
  ch:close()
  local file = weft.fs.open(os.tmpname(), "w")
  local h = file.h
  file:close()
  local group
  weft.group(function(g) group = g end)
  local srv = weft.tcp.listen("127.0.0.1", 0, noop)
  local conn = weft.tcp.connect("127.0.0.1", srv.port)
  conn:close()
  srv:close()
  os.remove(file.path)
  return { weft.future(), done, cancelled, ch, weft.semaphore(0), h,
    group, conn, srv }
end

-- The internal table: the upvalue I of the Lua parts' functions.
local function internal()
  for _, f in ipairs({ weft.group, weft.after, weft.fs.read,
      weft.tcp.connect, weft.http.get }) do
    for i = 1, 50 do
      local name, v = debug.getupvalue(f, i)
      if name == nil then break end
      if name == "I" then return v end
    end
  end
  error("no internal table")
end

-- On 5.1 and LuaJIT a function that may wait is a Lua wrapper around
-- the C function (About waits in src/lua/lweft.h): that C function, its
-- upvalue f; nil for any other function.
local function wrapped(fn)
  if debug.getinfo(fn, "S").source ~= "=weft.wrap" then return nil end
  for i = 1, 10 do
    local n, v = debug.getupvalue(fn, i)
    if n == nil then return nil end
    if n == "f" then return v end
  end
end

-- The C function fn is, or wraps.
local function cfunc(fn)
  return wrapped(fn) or fn
end

-- Every C function of weft, as {fn, name}: in the weft table and its
-- tables, the internal table and its tables, and the metatables weft
-- registers ("weft.*") with their __index tables; on 5.1 and LuaJIT the
-- wrappers of the functions that may wait and the C functions in them.
local function c_functions()
  local out, seen = {}, {}
  local function add(fn, name)
    if type(fn) ~= "function" or seen[fn] then return end
    local inner = wrapped(fn)
    if inner or debug.getinfo(fn, "S").what == "C" then
      seen[fn] = true
      out[#out + 1] = { fn, name }
    end
    if inner and not seen[inner] then
      seen[inner] = true
      out[#out + 1] = { inner, name .. " (wrapped)" }
    end
  end
  local function walk(t, name, depth)
    for k, v in pairs(t) do
      local n = name .. "." .. tostring(k)
      add(v, n)
      if type(v) == "table" and depth > 0 then walk(v, n, depth - 1) end
    end
  end
  walk(weft, "weft", 2)
  walk(internal(), "I", 1)
  for name, mt in pairs(debug.getregistry()) do
    if type(name) == "string" and name:match("^weft%.")
        and type(mt) == "table" and name ~= "weft.state" then
      walk(mt, name, 0)
      if type(mt.__index) == "table" then walk(mt.__index, name, 0) end
    end
  end
  local _, resolve, reject = weft.future()
  add(resolve, "resolve")
  add(reject, "reject")
  table.sort(out, function(a, b) return a[2] < b[2] end)
  return out
end

-- The error of a failed call must be a string, or a weft error, naming
-- the function: "<name>: ...", or Lua's "bad argument #1 to '<name>'".
local planted = false -- errors may be values the test planted itself
local function check_error(name, err)
  local msg = err
  if planted then return end
  if weft.is_cancelled(err) then return end -- the call was cut short
  if err == "trap" then return end -- the script's own metamethod raised
  if type(err) == "table" and type(err.message) == "string" then
    msg = err.message
  end
  assert(type(msg) == "string" and #msg > 0,
    name .. ": a " .. type(err) .. " error")
  assert(msg:find(":", 1, true) or msg:find("bad argument", 1, true),
    name .. ": an error naming nothing: " .. msg)
end

-- Cancels every task but the running one and waits until they end.
local function cancel_others()
  for _ = 1, 100 do
    local left = 0
    for _, t in ipairs(weft.tasks()) do
      if t.task ~= weft.current() then
        left = left + 1
        t.task:cancel()
      end
    end
    if left == 0 then return end
    weft.sleep(0)
  end
  error("tasks that do not end: " .. #weft.tasks())
end

-- Calls fn(...) in a task of its own, cancelled if it still waits after
-- a few loop steps; checks its error, if any.
local function call(name, fn, ...)
  local args = pack(...)
  ncalls = ncalls + 1
  local t = weft.spawn(function()
    local r = pack(pcall(fn, unpack(args, 1, args.n)))
    if not r[1] then check_error(name, r[2]) end
  end)
  for _ = 1, 3 do
    if t:done() then break end
    weft.sleep(0)
  end
  t:cancel()
  local ok, err = pcall(t.await, t)
  assert(ok or weft.is_cancelled(err), err)
  cancel_others()
end

local function calls_with(name, fn, values, seconds)
  call(name, fn)
  for _, v in ipairs(values) do
    call(name, fn, v)
    for _, w in ipairs(seconds) do call(name, fn, v, w) end
  end
  call(name, fn, values[14], values[13], false)
  call(name, fn, seconds[#seconds], NOWHERE, 1, noop)
end

-- Runs fn as weft.run's main task. Unlike H.run, task failures nobody
-- awaited are allowed (a hostile call may spawn a task that fails: they
-- are reported, as they should be); tasks left are cancelled.
local function run(fn)
  return function()
    local ok, err = pcall(weft.run, function()
      local r = pack(pcall(fn))
      cancel_others()
      if not r[1] then error(r[2], 0) end
    end)
    assert(ok, err)
    H.check_clean()
  end
end

describe("a hostile script", function()
  it("cannot crash weft's C functions with any argument", run(function()
    local values = hostile_values()
    for _, o in ipairs(weft_objects()) do values[#values + 1] = o end
    local seconds = { 1, NOWHERE, {}, io.stdout, values[#values - 5] }
    local fns = c_functions()
    assert.is_true(#fns > 80, #fns .. " functions")
    for _, e in ipairs(fns) do calls_with(e[2], e[1], values, seconds) end
    print(("%d functions, %d calls"):format(#fns, ncalls))
  end))

  it("cannot crash them outside any task either", function()
    local values = hostile_values()
    for _, e in ipairs(c_functions()) do
      if e[2] ~= "weft.run" then
        for _, v in ipairs(values) do
          local ok, err = pcall(e[1], v, NOWHERE)
          if not ok then check_error(e[2], err) end
        end
      end
    end
    weft.run(cancel_others) -- the tasks spawned, to run at the next run
    H.check_clean()
  end)

  it("cannot crash them by replacing their upvalues",
    H.puc51 and function() pending(H.why.c_upvalues) end or run(function()
    local values = hostile_values()
    local objects = weft_objects()
    for _, o in ipairs(objects) do values[#values + 1] = o end
    -- Another function's upvalues too: a state, a job number, a name.
    for _, e in ipairs(c_functions()) do
      for i = 1, 3 do
        local n, v = debug.getupvalue(e[1], i)
        if n and type(v) ~= "table" then values[#values + 1] = v end
      end
    end
    local subset = { 1, NOWHERE, objects[4] }
    -- What call() itself uses is called directly (with its state
    -- replaced, it raises at once).
    local t = weft.spawn(noop)
    local harness = {}
    for _, fn in ipairs({ weft.spawn, weft.sleep, weft.tasks, weft.current,
        weft.is_cancelled, t.await, t.done, t.cancel }) do
      harness[cfunc(fn)] = true
    end
    local function try(name, fn, ...)
      if not harness[fn] then return call(name, fn, ...) end
      local ok, err = pcall(fn, ...)
      if not ok then check_error(name, err) end
    end
    for _, e in ipairs(c_functions()) do
      local fn = e[1]
      -- A Lua wrapper's upvalues are Lua's (the C function it wraps is
      -- in the list too).
      for i = 1, wrapped(fn) and 0 or 255 do
        local n, saved = debug.getupvalue(fn, i)
        if n == nil then break end
        for _, v in ipairs(values) do
          debug.setupvalue(fn, i, v)
          try(e[2], fn)
          for _, w in ipairs(subset) do try(e[2], fn, w, w) end
          try(e[2], fn, objects[4], NOWHERE, false)
          debug.setupvalue(fn, i, saved)
        end
      end
    end
  end))

  it("cannot crash them by replacing the user values of weft objects",
    run(function()
      local values = { 1, "x", {}, io.stdout, coroutine.create(noop),
        weft.channel(1) }
      local function victims()
        local three = weft.spawn(function() return 1, 2, 3 end)
        local f, resolve = weft.future()
        resolve(1, 2)
        three:await()
        local srv = weft.tcp.listen("127.0.0.1", 0, function(c) c:read() end)
        local conn = weft.tcp.connect("127.0.0.1", srv.port)
        return { weft.channel(2), weft.semaphore(1), three, f, conn, srv,
          weft.spawn(function() weft.sleep(1e9) end) }
      end
      -- A task's results and error are in its user values: replaced,
      -- they are what await raises.
      planted = true
      local function use(o)
        local mt = debug.getmetatable(o)
        local methods = mt and type(mt.__index) == "table" and mt.__index
          or {}
        for name, m in pairs(methods) do
          if type(m) == "function" then
            call(name, m, o, 1)
            call(name, m, o)
          end
        end
        call("result", weft.await, o)
        call("tostring", tostring, o)
      end
      for _, v in ipairs(values) do
        for k = 1, 3 do
          for _, o in ipairs(victims()) do
            pcall(H.setuservalue, o, v, k)
            use(o)
          end
          collectgarbage()
          cancel_others()
        end
      end
      weft.group(function(g)
        g:spawn(noop)
        for _, v in ipairs(values) do
          H.setuservalue(g, v, 1)
          call("g:spawn", g.spawn, g, noop)
          call("g:join_next", g.join_next, g)
        end
        H.setuservalue(g, {}, 1)
      end)
      planted = false
    end))

  it("cannot crash a task by taking its coroutine away", run(function()
    local t = weft.spawn(function()
      weft.sleep(1)
      return 1
    end)
    weft.yield()
    H.setuservalue(t, nil, 3)
    collectgarbage()
    collectgarbage()
    H.raises_cancel(t.await, t)
    -- The task takes its own away while it runs.
    t = weft.spawn(function()
      H.setuservalue(weft.current(), {}, 3)
      collectgarbage()
      return 1, 2, 3
    end)
    assert.same({ 1, 2, 3 }, { t:await() })
  end))

  -- The i-th stack slot of the wait co is suspended in, as level, index:
  -- the C function's, and on 5.1 and LuaJIT then those of the Lua wrapper
  -- it returns to (About waits in src/lua/lweft.h).
  local function wait_slot(co, i)
    if not (debug.getinfo(co, 0, "S") and
        debug.getinfo(co, 0, "S").what == "C") then return nil end
    local n = 0
    while debug.getlocal(co, 0, n + 1) do n = n + 1 end
    if i <= n then return 0, i end
    local w = debug.getinfo(co, 1, "S")
    if w and w.source == "=weft.wrap" and debug.getlocal(co, 1, i - n) then
      return 1, i - n
    end
  end

  -- A task suspended in a C function keeps that function's values on its
  -- stack, where debug.setlocal reaches them: the continuation checks
  -- what it finds there.
  it("cannot crash a waiting task by replacing its C stack slots",
    run(function()
      local values = { nil, 1, io.stdout, {}, weft.channel(1),
        weft.semaphore(1), weft.future(), cfunc(weft.sleep) }
      local cases = {
        { function(ch) return ch:recv() end,
          function(ch) ch:try_send(1) end },
        { function(ch) ch:send(1) end, function(ch) ch:try_recv() end },
        { function(_, sem) sem:acquire() end,
          function(_, sem) sem:release() end },
        { function() weft.sleep(1) end, noop },
        { function(_, _, f) return f:await() end,
          function(_, _, _, resolve) resolve(1) end },
        { function(_, _, f) return weft.all({ f }) end,
          function(_, _, _, resolve) resolve(1) end },
        { function(_, _, f) return weft.timeout(1e6, f) end,
          function(_, _, _, resolve) resolve(1) end },
        { function() weft.group(function(g)
            g:spawn(function() weft.sleep(1) end)
            return g:join_next()
          end) end, noop },
        { function() return weft.dns.resolve("localhost") end, noop },
        { function() return weft.fs.read("/proc/self/status") end, noop },
      }
      local replaced = 0
      for c, case in ipairs(cases) do
        for i = 1, 8 do
          for k = 1, #values + 1 do
            local ch, sem = weft.channel(), weft.semaphore(0)
            local f, resolve = weft.future()
            local co
            local t = weft.spawn(function()
              co = coroutine.running()
              return case[1](ch, sem, f)
            end)
            weft.yield()
            local level, index
            if co and coroutine.status(co) == "suspended" then
              level, index = wait_slot(co, i)
            end
            if level then
              debug.setlocal(co, level, index, values[k])
              replaced = replaced + 1
            end
            collectgarbage()
            case[2](ch, sem, f, resolve)
            for _ = 1, 5 do
              if t:done() then break end
              weft.sleep(0)
            end
            t:cancel()
            local ok, err = pcall(t.await, t)
            if not ok and not weft.is_cancelled(err) then
              check_error("case " .. c, err)
            end
            cancel_others()
          end
        end
      end
      assert.is_true(replaced > 100, replaced .. " slots replaced")
    end))

  -- weft calls some C functions of its own in protected calls; a call
  -- hook sees them (debug.getinfo(2, "f")) and can call them again.
  it("cannot crash the internal functions a call hook captures",
    function()
      local seen, captured = {}, {}
      local std = {}
      for _, lib in pairs({ _G, string, table, math, io, os, coroutine,
          debug, utf8, package }) do
        for _, f in pairs(lib) do std[f] = true end
      end
      for _, e in ipairs(c_functions()) do std[e[1]] = true end
      local function hook()
        local info = debug.getinfo(2, "fS")
        if info and info.what == "C" and not seen[info.func]
            and not std[info.func] then
          seen[info.func] = true
          local args = {}
          for i = 1, 4 do args[i] = select(2, debug.getlocal(2, i)) end
          captured[#captured + 1] = { info.func, args }
        end
      end
      -- On 5.1 the main thread is no coroutine.running(): the hook is
      -- set on the running thread, as the call without a thread does.
      local co = coroutine.running()
      if co then debug.sethook(co, hook, "c") else debug.sethook(hook, "c") end
      weft.run(function()
        local t = weft.spawn(function() error("x") end)
        pcall(t.await, t)
        weft.spawn(function() error({}) end)
        weft.sleep(1)
        local c = weft.spawn(function() weft.sleep(1e9) end)
        weft.yield()
        c:cancel()
        pcall(c.await, c)
        weft.group(function(g) g:spawn(noop) end)
        local srv = weft.tcp.listen("127.0.0.1", 0, function(conn)
          conn:close()
        end)
        local conn = weft.tcp.connect("127.0.0.1", srv.port)
        weft.sleep(5)
        conn:close()
        srv:close()
      end)
      if co then debug.sethook(co) else debug.sethook() end
      assert.is_true(#captured >= 5, #captured .. " captured")
      weft.run(function()
        local values = hostile_values()
        for _, o in ipairs(weft_objects()) do values[#values + 1] = o end
        for _, e in ipairs(captured) do
          local fn, args = e[1], e[2]
          call("captured", fn, unpack(args, 1, 4))
          call("captured", fn, args[2], args[1])
          for _, v in ipairs(values) do
            call("captured", fn, v, args[2])
            call("captured", fn, args[1], v)
          end
        end
      end)
      H.check_clean()
    end)

  -- A write waiting for the peer to read: libuv reads its bytes later,
  -- whatever the script does to the values that hold the string.
  it("cannot free the bytes of a write in progress", run(function()
    local gate, open = weft.future()
    local got, deliver = weft.future()
    local size = 8 * 1024 * 1024
    local srv = weft.tcp.listen("127.0.0.1", 0, function(c)
      gate:await()
      local n = 0
      while true do
        local s = c:read(65536)
        if not s then break end
        n = n + #s
      end
      deliver(n)
    end)
    local conn = weft.tcp.connect("127.0.0.1", srv.port)
    local co
    local w = weft.spawn(function()
      co = coroutine.running()
      conn:write(("x"):rep(size) .. "y")
    end)
    repeat weft.sleep(1) -- until the write waits for the reader
    until co and debug.getinfo(co, 0, "S").what == "C"
    for k = 1, 3 do pcall(H.setuservalue, conn, nil, k) end
    for level = 0, 10 do
      if not debug.getinfo(co, level) then break end
      for i = -10, 30 do
        local n, v = debug.getlocal(co, level, i)
        if n and type(v) == "string" and #v >= size then
          debug.setlocal(co, level, i, nil)
        end
      end
    end
    collectgarbage()
    collectgarbage()
    local junk = {}
    for i = 1, 200 do junk[i] = ("z"):rep(50000) .. i end
    open(true)
    w:await()
    conn:close()
    assert.equal(size + 1, got:await())
    srv:close()
  end))

  -- (On 5.1 the main thread is no coroutine.running(): weft.run runs in
  -- a coroutine there, whose stack the task reaches the same way.)
  it("cannot crash weft.run by replacing its main task on its stack",
    function()
      local function test()
        local caller = coroutine.running()
        local ok, v = pcall(weft.run, function()
          assert(debug.getinfo(caller, 0, "f").func == weft.run)
          debug.setlocal(caller, 0, 1, nil)
          weft.spawn(function()
            weft.sleep(1)
            collectgarbage()
            collectgarbage()
          end)
          return 42
        end)
        assert.is_true(ok, v)
        assert.equal(42, v)
      end
      if coroutine.running() then test() else coroutine.wrap(test)() end
      H.check_clean()
    end)

  it("cannot close the state or reach metamethods with plain Lua",
    H.puc51 and function() pending(H.why.c_upvalues) end or run(function()
      local state = select(2, debug.getupvalue(cfunc(weft.sleep), 1))
      local gc = debug.getmetatable(state).__gc
      gc(state) -- not from lua_close: nothing happens
      coroutine.wrap(gc)(state)
      gc(io.stdout)
      weft.sleep(0) -- the loop still runs
      assert.equal("weft.Channel", getmetatable(weft.channel()))
      assert.equal("weft.Future", getmetatable(weft.future()))
      assert.equal("weft.Semaphore", getmetatable(weft.semaphore(1)))
    end))
end)
