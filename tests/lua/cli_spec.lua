-- cli_spec.lua - the weft command ($WEFT_BIN): scripts and their
-- arguments, -e, --version, --help, bad options, failures and exit
-- status, unhandled task errors.
local H = require "helper"
local cli = H.cli

describe("weft CLI", function()
  it("sizes the worker pool with --threads", function()
    local out, err, code = cli({}, nil, { "--threads", "3", "-e",
      "weft.fs.exists('/') print(weft.stats().pool_threads)" })
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("3\n", out)
    for _, bad in ipairs { "0", "x", "1025", "" } do
      _, err, code = cli({}, nil, { "--threads", bad, "-e", "print(1)" })
      assert.equal(2, code)
      assert.truthy(err:find("--threads needs a number from 1 to 1024", 1,
        true), err)
    end
    _, err, code = cli({}, nil, { "--threads" })
    assert.equal(2, code)
    assert.truthy(err:find("--threads needs an argument", 1, true), err)
    _, err, code = cli({}, nil, { "-e", "weft.fs.exists('/')", "--threads",
      "2" })
    assert.equal(2, code)
    assert.truthy(err:find("must come before any -e that uses the pool", 1,
      true), err)
  end)

  it("fails allocations past --memory-limit with a clean error", function()
    -- Past the limit: the script's error, a note, exit status 1.
    local out, err, code = cli({}, [[
      local t = {}
      for i = 1, 1e7 do t[i] = { i } end
      print("not reached")
    ]], { "--memory-limit", "4M" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("not enough memory", err)
    assert.matches("weft: the memory limit was reached %(%-%-memory%-limit 4M%)",
      err)
    -- The error can be caught, the memory given back and the work go on;
    -- weft's objects, and its own buffers (a file's contents), count too.
    local big = os.tmpname()
    local f = assert(io.open(big, "wb"))
    f:write(("x"):rep(3 * 1024 * 1024))
    f:close()
    out, err, code = cli({ big }, [[
      local ok, e = pcall(function()
        local t = {}
        for i = 1, 1e7 do t[i] = weft.future() end
      end)
      print(ok, e)
      -- Two cycles: the futures' finalizers run in the first, their
      -- memory is freed in the second (needed on 5.1, which has no
      -- emergency collection to do it when an allocation fails).
      collectgarbage()
      collectgarbage()
      ok, e = pcall(weft.fs.read, ...)
      print(ok, e)
      local ts = {}
      for i = 1, 1000 do ts[i] = weft.spawn(function() return i end) end
      local sum = 0
      for i = 1, #ts do sum = sum + ts[i]:await() end
      print(sum)
    ]], { "--memory-limit", "2M" })
    os.remove(big)
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("false\tnot enough memory\n" ..
      "false\tfs.read: " .. big .. ": Not enough memory\n500500\n", out)
    -- Without the limit the same file is read.
    out, err, code = cli({}, nil, { "--memory-limit", "64M", "-e",
      "print(#weft.fs.read('/proc/self/status') > 0)" })
    assert.equal("true\n", out)
    assert.equal(0, code)
    -- Too small to open the libraries: the same clean error.
    out, err, code = cli({}, nil, { "--memory-limit", "64k", "-e",
      "print(1)" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^weft: not enough memory\nweft: the memory limit was " ..
      "reached %(%-%-memory%-limit 64k%)\n$", err)
    for _, bad in ipairs { "0", "x", "12Q", "", "-5", "99999999999G",
                           "99999999999999999999" } do
      _, err, code = cli({}, nil, { "--memory-limit", bad, "-e", "print(1)" })
      assert.equal(2, code)
      assert.truthy(err:find("--memory-limit needs a size in bytes such as " ..
        "65536, 512k, 64M or 1G, got '" .. bad .. "'", 1, true), err)
    end
    _, err, code = cli({}, nil, { "--memory-limit" })
    assert.equal(2, code)
    assert.truthy(err:find("--memory-limit needs an argument", 1, true), err)
    _, err, code = cli({}, nil, { "--memory-limit", "1M", "--memory-limit",
      "2M", "-e", "print(1)" })
    assert.equal(2, code)
    assert.truthy(err:find("--memory-limit given twice", 1, true), err)
    -- After the script name it is the script's argument.
    out, _, code = cli({ "--memory-limit", "1" }, [[print(...)]])
    assert.equal(0, code)
    assert.equal("--memory-limit\t1\n", out)
  end)

  it("preempts a task that never waits with --preempt", function()
    -- The main task's timer fires while the other task spins, and stops
    -- it; without preemption the spin would end at its bound instead.
    local script = [[
      local stop = false
      local busy = weft.spawn(function()
        local n = 0
        while not stop and n < 1e9 do n = n + 1 end
        return stop
      end)
      weft.sleep(5)
      stop = true
      print(busy:await(), weft.stats().preemptions > 0)
    ]]
    local out, err, code = cli({}, script, { "--preempt", "2" })
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("true\ttrue\n", out)
    -- A task with a debug hook of its own keeps it and is not preempted.
    out, err, code = cli({}, [[
      local n = 0
      local t = weft.spawn(function()
        debug.sethook(function() n = n + 1 end, "l")
        local x = 0
        for i = 1, 1e6 do x = x + 1 end
        local h = debug.gethook()
        debug.sethook()
        return h ~= nil
      end)
      print(t:await(), n >= 1e6, weft.stats().preemptions)
    ]], { "--preempt", "1" })
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("true\ttrue\t0\n", out)
    for _, bad in ipairs { "0", "x", "60001", "" } do
      _, err, code = cli({}, nil, { "--preempt", bad, "-e", "print(1)" })
      assert.equal(2, code)
      assert.truthy(err:find("--preempt needs milliseconds from 1 to 60000, "
        .. "got '" .. bad .. "'", 1, true), err)
    end
    _, err, code = cli({}, nil, { "--preempt" })
    assert.equal(2, code)
    assert.truthy(err:find("--preempt needs an argument", 1, true), err)
    _, err, code = cli({}, nil, { "-e", "x = 1", "--preempt", "2" })
    assert.equal(2, code)
    assert.truthy(err:find("--preempt must come before any -e", 1, true),
      err)
  end)

  it("runs a script and passes its arguments as ... and arg", function()
    local out, err, code = cli({ "one", "two words", "" }, [[
      print(select("#", ...), ...)
      print(#arg, arg[1], arg[2], arg[3])
      print(arg[-1] ~= nil) -- the interpreter, as lua sets it
    ]])
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("3\tone\ttwo words\t\n"
      .. "3\tone\ttwo words\t\n"
      .. "true\n", out)
  end)

  it("sets arg[0] to the script path", function()
    local out, _, code, file = cli({}, [[print(arg[0])]])
    assert.equal(0, code)
    assert.equal(file .. "\n", out)
  end)

  it("runs the main chunk as a task: top-level waits work", function()
    local out, err, code = cli({}, [[
      local t0 = weft.now()
      weft.sleep(5)
      local t = weft.spawn(function() weft.sleep(1) return "child" end)
      print(t:await(), weft.now() >= t0 + 5)
      print(weft.current():name())
    ]])
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("child\ttrue\nmain\n", out)
  end)

  it("waits for every task before exiting", function()
    local out, _, code = cli({}, [[
      weft.spawn(function() weft.sleep(5) print("late task") end)
      print("main ends")
    ]])
    assert.equal(0, code)
    assert.equal("main ends\nlate task\n", out)
  end)

  it("makes weft a global, the table require returns", function()
    local out, _, code = cli({}, [[
      print(type(weft), require("weft") == weft, package.loaded.weft == weft)
    ]])
    assert.equal(0, code)
    assert.equal("table\ttrue\ttrue\n", out)
  end)

  it("runs -e code, several times in order", function()
    local out, err, code = cli({ "-e", "weft.sleep(1) print('a')",
      "-e", "print('b', type(weft.spawn))" })
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("a\nb\tfunction\n", out)
  end)

  it("runs -e code before a script", function()
    local out, err, code = cli({}, [[print(X + 1)]], { "-e", "X = 41" })
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("42\n", out)
  end)

  it("keeps Lua's warnings: off until @on, then on stderr", function()
    if not H.lua54 then pending(H.why.warn) return end
    local out, err, code = cli({ "-e", "warn('hidden') warn('x', '@on') " ..
      "warn('a', '@b') warn('c') warn('@off') warn('hidden')" })
    assert.equal(0, code)
    assert.equal("", out)
    assert.equal("Lua warning: a@b\nLua warning: c\n", err)
  end)

  it("runs thousands of tasks and big values on its allocator", function()
    local out, err, code = cli({ "-e", [[
      local ts = {}
      for i = 1, 20000 do
        ts[i] = weft.spawn(function(n)
          weft.sleep(1)
          return ('x'):rep(n % 2000) .. n
        end, i)
      end
      local len = 0
      for i = 1, #ts do len = len + #ts[i]:await() end
      ts = nil
      collectgarbage()
      local big = {}
      for i = 1, 200 do big[i] = ('y'):rep(i * 1000) end
      print(len, #table.concat(big))]] })
    assert.equal("", err)
    assert.equal(0, code)
    local want = 0
    for i = 1, 20000 do want = want + i % 2000 + #tostring(i) end
    assert.equal(want .. "\t" .. 20100000 .. "\n", out)
  end)

  it("prints the version with --version and -v", function()
    -- The module's weft._VERSION: both come from CMake's one version.
    local want = "weft " .. require("weft")._VERSION .. " ("
    for _, opt in ipairs({ "--version", "-v" }) do
      local out, err, code = cli({ opt })
      assert.equal(0, code)
      assert.equal("", err)
      assert.matches("^weft %d+%.%d+%.%d+.*" .. H.lua_name, out)
      assert.equal(want, out:sub(1, #want))
    end
  end)

  it("prints usage with --help and -h", function()
    for _, opt in ipairs({ "--help", "-h" }) do
      local out, err, code = cli({ opt })
      assert.equal(0, code)
      assert.equal("", err)
      assert.matches("^usage: weft", out)
      assert.matches("%-e code", out)
    end
  end)

  it("rejects an unknown option with exit status 2", function()
    local out, err, code = cli({ "--frobnicate" })
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("unknown option '%-%-frobnicate'", err)
    assert.matches("usage: weft", err)
  end)

  it("exits 2 with usage and no arguments, or -e without code", function()
    local _, err, code = cli({})
    assert.equal(2, code)
    assert.matches("usage: weft", err)
    _, err, code = cli({ "-e" })
    assert.equal(2, code)
    assert.matches("%-e needs an argument", err)
  end)

  it("prints a failing script's error with a traceback, exits 1",
    function()
      local out, err, code = cli({}, [[
        print("before")
        local function deep() error("script failed") end
        deep()
      ]])
      assert.equal(1, code)
      assert.equal("before\n", out)
      assert.matches("^weft: [^\n]*:2: script failed\n", err)
      assert.matches("stack traceback:", err)
      assert.matches("in %a* ?[%a ]*'?deep'?", err)
    end)

  it("reports a non-string error value", function()
    local _, err, code = cli({}, [[error(setmetatable({}, {
      __tostring = function() return "custom error" end }))]])
    assert.equal(1, code)
    assert.matches("custom error", err)
  end)

  it("fails on a syntax error or a missing script, exit 1", function()
    local _, err, code = cli({}, "x = = 1")
    assert.equal(1, code)
    assert.matches(":1: unexpected symbol near '='", err)
    _, err, code = cli({ os.tmpname() .. ".does-not-exist" })
    assert.equal(1, code)
    assert.matches("cannot open", err)
    _, err, code = cli({ "-e", "error('in -e', 0)" })
    assert.equal(1, code)
    assert.matches("in %-e", err)
  end)

  it("reports a task failure nobody awaited and exits 1", function()
    local out, err, code = cli({}, [[
      weft.spawn({ name = "bg" }, function()
        weft.sleep(1)
        local function inner() error("background boom") end
        inner()
      end)
      print("main done")
    ]])
    assert.equal(1, code)
    assert.equal("main done\n", out)
    assert.matches("weft: unhandled error in task #%d+ 'bg': "
      .. "[^\n]*:3: background boom\nstack traceback:", err)
    assert.matches("inner", err)
  end)

  it("reports each unawaited failure once", function()
    local _, err, code = cli({}, [[
      for i = 1, 3 do weft.spawn(function() error("e" .. i, 0) end) end
    ]])
    assert.equal(1, code)
    local n = 0
    for _ in err:gmatch("unhandled error in task") do n = n + 1 end
    assert.equal(3, n)
    for i = 1, 3 do assert.matches(": e" .. i .. "\n", err) end
  end)

  it("does not report an awaited failure: exit 0", function()
    local out, err, code = cli({}, [[
      local t = weft.spawn(function() error("handled") end)
      local ok, e = pcall(t.await, t)
      print(ok, (e:gsub("^.*: ", "")))
      local c = weft.spawn(function() weft.sleep(1e6) end)
      weft.yield()
      c:cancel()
    ]])
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("false\thandled\n", out)
  end)

  it("fails on a deadlocked main task", function()
    local _, err, code = cli({}, [[weft.channel():recv()]])
    assert.equal(1, code)
    assert.matches("deadlock", err)
  end)
end)
