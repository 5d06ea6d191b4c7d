-- process_spec.lua - weft.process.exec and weft.dns.resolve: results,
-- input and output, environment, errors, bad arguments, concurrency, and
-- cancellation and timeouts that kill the child.
local H = require "helper"
local weft = H.weft
local async = H.async
local exec = weft.process.exec

-- Whether a process "sleep <arg>" is running (a /proc scan: pgrep hangs
-- when the sanitizer runtime is preloaded, as in the ASan build).
local function sleeping(arg)
  local want = "sleep\0" .. arg .. "\0"
  for _, name in ipairs(weft.fs.list("/proc")) do
    local f = name:match("^%d+$") and io.open("/proc/" .. name .. "/cmdline")
    if f then
      local cmd = f:read("*a")
      f:close()
      if cmd == want then return true end
    end
  end
  return false
end

describe("weft.process.exec", function()
  it("returns the exit code and the captured output", async(function()
    local r = exec("echo", { "hello", "world" })
    assert.same({ code = 0, signal = 0, stdout = "hello world\n",
      stderr = "" }, r)
    r = exec("sh", { "-c", "echo out; echo err >&2; exit 7" })
    assert.equal(7, r.code)
    assert.equal("out\n", r.stdout)
    assert.equal("err\n", r.stderr)
  end))

  it("reports the signal that ended the child", async(function()
    local r = exec("sh", { "-c", "kill -TERM $$" })
    assert.equal(15, r.signal)
  end))

  it("feeds stdin and captures large outputs", async(function()
    local input = ("0123456789"):rep(100000) .. "\0end"
    local r = exec("cat", {}, { stdin = input })
    assert.equal(input, r.stdout)
    r = exec("head", { "-c", "3000000", "/dev/zero" })
    assert.equal(3000000, #r.stdout)
  end))

  it("survives a child that does not read its stdin", async(function()
    local r = weft.process.exec("true", {}, { stdin = ("x"):rep(2 ^ 20) })
    assert.equal(0, r.code) -- no SIGPIPE for the writer
  end))

  it("runs in cwd with env added to the inherited one", async(function()
    local r = exec("sh", { "-c", "pwd; echo $WEFT_T1; echo ${HOME:-unset}" },
      { cwd = "/", env = { WEFT_T1 = "one", HOME = false } })
    assert.equal("/\none\nunset\n", r.stdout)
    r = exec("sh", { "-c", "echo $PATH" })
    assert.truthy(#r.stdout > 1) -- inherited
  end))

  it("runs many children concurrently", async(function()
    local fns = {}
    for i = 1, 30 do
      fns[i] = function()
        return exec("sh", { "-c", "sleep 0.05; echo " .. i }).stdout
      end
    end
    local r = weft.all(fns)
    for i = 1, 30 do assert.equal(i .. "\n", r[i]) end
  end))

  it("raises when the program cannot start", async(function()
    local e = H.raises(exec, "weft-no-such-program")
    assert.equal(
      "process.exec: weft-no-such-program: No such file or directory",
      tostring(e))
    assert.equal("ENOENT", e.code)
    e = H.raises(exec, "true", {}, { cwd = "/weft-no-such-dir" })
    assert.equal("ENOENT", e.code)
  end))

  it("kills the child when the task is cancelled", async(function()
    local t = weft.spawn(exec, "sleep", { "30.017" })
    while not sleeping("30.017") do weft.sleep(5) end
    t:cancel()
    H.raises_cancel(t.await, t)
    while sleeping("30.017") do weft.sleep(5) end -- killed
    assert.equal("ok\n", exec("echo", { "ok" }).stdout) -- the loop is fine
  end))

  it("kills the child on its timeout and on weft.timeout", async(function()
    local e = H.raises(exec, "sleep", { "30" }, { timeout_ms = 30 })
    assert.is_true(weft.is_timeout(e))
    assert.equal("process.exec: sleep: timed out after 30 ms", tostring(e))
    e = H.raises(weft.timeout, 30, function() return exec("sleep", { "31" }) end)
    assert.is_true(weft.is_timeout(e))
    while sleeping("30") or sleeping("31") do weft.sleep(5) end
  end))

  it("rejects bad arguments", async(function()
    local cases = {
      { "process.exec: cmd must be a string, got nil", exec },
      { "process.exec: args must be a table or nil, got string", exec, "x",
        "y" },
      { "process.exec: args[2] must be a string, got number", exec, "x",
        { "a", 2 } },
      { "process.exec: opts must be a table or nil, got number", exec, "x",
        {}, 1 },
      { "process.exec: opts.cwd must be a string, got number", exec, "x", {},
        { cwd = 1 } },
      { "process.exec: opts.stdin must be a string, got table", exec, "x", {},
        { stdin = {} } },
      { "process.exec: opts.timeout_ms must be a positive integer, got 0",
        exec, "x", {}, { timeout_ms = 0 } },
      { "process.exec: opts.env must be a table, got string", exec, "x", {},
        { env = "A=1" } },
      { "process.exec: opts.env must map names to strings", exec, "x", {},
        { env = { A = 1 } } },
    }
    for _, c in ipairs(cases) do
      H.raises_match(c[1], c[2], H.unpack(c, 3))
    end
  end))

  it("refuses strings the system would cut at a zero byte", async(function()
    local nul = 'must not contain "\\0"'
    local cases = {
      { "process.exec: cmd " .. nul, exec, "tr\0ue" },
      { "process.exec: args[2] " .. nul, exec, "true", { "a", "b\0" } },
      { "process.exec: opts.cwd " .. nul, exec, "true", {}, { cwd = "/\0x" } },
      { "process.exec: opts.env values " .. nul, exec, "true", {},
        { env = { A = "1\0" } } },
      { "process.exec: opts.env names must not be empty or contain", exec,
        "true", {}, { env = { ["A=B"] = "1" } } },
      { "process.exec: opts.env names must not be empty or contain", exec,
        "true", {}, { env = { [""] = "1" } } },
    }
    for _, c in ipairs(cases) do
      H.raises_match(c[1], c[2], H.unpack(c, 3))
    end
    -- stdin is data: any bytes
    assert.equal("a\0b", exec("cat", {}, { stdin = "a\0b" }).stdout)
  end))

  it("raises outside a task", function()
    H.raises_match("process.exec: not inside a weft task", exec, "true")
  end)
end)

describe("weft.dns.resolve", function()
  it("resolves names and literal addresses", async(function()
    local a = weft.dns.resolve("localhost")
    assert.truthy(#a >= 1)
    local seen = {}
    for _, x in ipairs(a) do seen[x] = true end
    assert.truthy(seen["127.0.0.1"] or seen["::1"])
    assert.same({ "127.0.0.1" }, weft.dns.resolve("127.0.0.1"))
  end))

  it("raises for a name that does not exist", async(function()
    local e = H.raises(weft.dns.resolve, "no-such-host.invalid")
    assert.truthy(tostring(e):find("^dns%.resolve: no%-such%-host%.invalid: "))
    assert.truthy(e.code:find("^EAI_"))
  end))

  it("is cancellable and runs many lookups at once", async(function()
    local t = weft.spawn(weft.dns.resolve, "localhost")
    t:cancel()
    H.raises_cancel(t.await, t)
    local fns = {}
    for i = 1, 20 do fns[i] = function() return weft.dns.resolve("localhost") end end
    assert.equal(20, weft.all(fns).n)
  end))

  it("rejects bad arguments and calls outside a task", function()
    H.run(function()
      H.raises_match("dns.resolve: host must be a string, got nil",
        weft.dns.resolve)
      H.raises_match("dns.resolve: host must not be empty", weft.dns.resolve,
        "")
      H.raises_match('dns.resolve: host must not contain "\\0"',
        weft.dns.resolve, "localhost\0.invalid")
    end)
    H.raises_match("dns.resolve: not inside a weft task", weft.dns.resolve,
      "localhost")
  end)
end)
