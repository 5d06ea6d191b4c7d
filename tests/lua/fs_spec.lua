-- fs_spec.lua - weft.fs: every function, its errors and bad arguments,
-- files and lines, concurrency, and cancellation of jobs queued and
-- running (FIFOs with no writer stand in for a slow disk).
local H = require "helper"
local weft = H.weft
local async = H.async
local fs = weft.fs

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir " .. H.shell_quote(d)))
  return d
end

local function rm(d) os.execute("rm -rf " .. H.shell_quote(d)) end

-- Closed at once: left to the collector, it would close at some random
-- point, between two counts of open_fds.
local pid do
  local f = assert(io.open("/proc/self/stat"))
  pid = f:read("*n")
  f:close()
end

-- The descriptors open on files under the test's directory: what weft.fs
-- opened for the test, not the pipes and sockets the process (busted,
-- libuv, popen itself) opens and closes meanwhile. After a full
-- collection: a file an earlier test left to the collector would close
-- between two counts otherwise.
local function open_fds(dir)
  collectgarbage()
  collectgarbage()
  local p = io.popen("ls -l /proc/" .. pid .. "/fd")
  local n = 0
  for line in p:lines() do
    if line:find(" -> " .. dir .. "/", 1, true) then n = n + 1 end
  end
  p:close()
  return n
end

-- A FIFO: opening it for reading blocks its pool job until a writer
-- comes; unblock() is that writer (it writes s and closes).
local function fifo(dir, name)
  local path = dir .. "/" .. name
  assert(os.execute("mkfifo " .. H.shell_quote(path)))
  return path, function(s)
    local f = assert(io.open(path, "w"))
    f:write(s or "")
    f:close()
  end
end

local function wait_busy(n)
  while (weft.stats().pool_busy or 0) < n do weft.sleep(1) end
end

describe("weft.fs", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rm(dir) end)

  it("writes, appends and reads back bytes, zeros included", async(function()
    local p = dir .. "/a.bin"
    local data = "a\0b\255\n" .. string.rep("x", 100000)
    assert.is_nil(fs.write(p, data))
    assert.equal(data, fs.read(p))
    fs.append(p, "tail")
    assert.equal(data .. "tail", fs.read(p))
    fs.write(p, "")
    assert.equal("", fs.read(p))
  end))

  it("reads files whose size is not known in advance", async(function()
    local s = fs.read("/proc/self/status")
    assert.truthy(s:find("VmHWM", 1, true))
  end))

  it("stats files and directories", async(function()
    fs.write(dir .. "/f", "12345")
    local st = fs.stat(dir .. "/f")
    assert.equal("file", st.type)
    assert.equal(5, st.size)
    assert.equal("integer", H.mtype(st.mode))
    assert.is_true(st.mtime > 0)
    assert.equal("directory", fs.stat(dir).type)
  end))

  it("lists a directory sorted, without . and ..", async(function()
    for _, n in ipairs { "c", "a", "b" } do fs.write(dir .. "/" .. n, n) end
    fs.mkdir(dir .. "/d")
    assert.same({ "a", "b", "c", "d" }, fs.list(dir))
    fs.mkdir(dir .. "/empty")
    assert.same({}, fs.list(dir .. "/empty"))
  end))

  it("tells whether a path exists", async(function()
    fs.write(dir .. "/f", "")
    assert.is_true(fs.exists(dir .. "/f"))
    assert.is_true(fs.exists(dir))
    assert.is_false(fs.exists(dir .. "/nope"))
    assert.is_false(fs.exists(dir .. "/f/under-a-file"))
  end))

  it("makes directories, recursively on request", async(function()
    H.raises_match("No such file or directory", fs.mkdir, dir .. "/x/y")
    fs.mkdir(dir .. "/x/y/z", { recursive = true })
    assert.equal("directory", fs.stat(dir .. "/x/y/z").type)
    fs.mkdir(dir .. "/x/y/z", { recursive = true }) -- exists: fine
    H.raises_match("File already exists", fs.mkdir, dir .. "/x")
    fs.write(dir .. "/file", "")
    H.raises_match("Not a directory", fs.mkdir, dir .. "/file/sub",
      { recursive = true })
  end))

  it("removes files, empty directories, and trees on request",
    async(function()
      fs.mkdir(dir .. "/t/u", { recursive = true })
      fs.write(dir .. "/t/u/f", "x")
      fs.write(dir .. "/t/g", "y")
      H.raises_match("Directory not empty", fs.remove, dir .. "/t")
      fs.remove(dir .. "/t/g")
      assert.is_false(fs.exists(dir .. "/t/g"))
      fs.remove(dir .. "/t", { recursive = true })
      assert.is_false(fs.exists(dir .. "/t"))
      fs.mkdir(dir .. "/e")
      fs.remove(dir .. "/e")
      assert.is_false(fs.exists(dir .. "/e"))
      H.raises_match("No such file", fs.remove, dir .. "/e")
    end))

  it("renames", async(function()
    fs.write(dir .. "/a", "A")
    fs.rename(dir .. "/a", dir .. "/b")
    assert.is_false(fs.exists(dir .. "/a"))
    assert.equal("A", fs.read(dir .. "/b"))
    H.raises_match(dir .. "/a: No such file", fs.rename, dir .. "/a",
      dir .. "/c")
  end))

  it("names the function, the path and the system's message",
    async(function()
      local e = H.raises(fs.read, dir .. "/missing")
      assert.equal("fs.read: " .. dir .. "/missing: No such file or directory",
        tostring(e))
      assert.equal("ENOENT", e.code)
      assert.equal("io", e.kind)
      assert.is_false(weft.is_cancelled(e))
      e = H.raises(fs.read, dir)
      assert.equal("EISDIR", e.code)
      e = H.raises(fs.list, dir .. "/missing")
      assert.equal("fs.list: " .. dir .. "/missing: No such file or directory",
        tostring(e))
      e = H.raises(fs.write, dir .. "/no/such/dir", "x")
      assert.equal("ENOENT", e.code)
      e = H.raises(fs.stat, dir .. "/missing")
      assert.truthy(tostring(e):find("^fs%.stat: "))
    end))

  it("fails cleanly on a path too long for the system", async(function()
    local e = H.raises(fs.read, ("a"):rep(20000))
    assert.equal("ENAMETOOLONG", e.code)
    assert.truthy(tostring(e):find("^fs%.read: a+%.%.%.: Name too long$"),
      tostring(e))
  end))

  it("refuses paths with a zero byte (the system would cut them)",
    async(function()
      fs.write(dir .. "/x", "x")
      H.raises_match('fs.remove: path must not contain "\\0"', fs.remove,
        dir .. "/x\0junk")
      H.raises_match('fs.open: path must not contain "\\0"', fs.open,
        dir .. "/x\0junk")
      H.raises_match('fs.rename: to must not contain "\\0"', fs.rename,
        dir .. "/x", dir .. "/y\0")
      assert.is_true(fs.exists(dir .. "/x"))
    end))

  it("reads 0 bytes as \"\" before the end and nil at it", async(function()
    fs.write(dir .. "/f", "ab")
    local f = fs.open(dir .. "/f")
    assert.equal("", f:read(0))
    assert.equal("ab", f:read("a"))
    assert.is_nil(f:read(0))
    f:close()
    fs.write(dir .. "/empty", "")
    f = fs.open(dir .. "/empty")
    assert.is_nil(f:read(0))
    f:close()
  end))

  it("closes a file whose operation was cancelled: its position is lost",
    async(function()
      local p = fifo(dir, "c")
      local w -- the FIFO's writer, held open without writing
      local writer = weft.spawn(function()
        wait_busy(1)
        w = assert(io.open(p, "w"))
      end)
      local f = fs.open(p) -- returns once the writer has opened it
      writer:await()
      local e = H.raises(weft.timeout, 20, function() return f:read("a") end)
      assert.is_true(weft.is_timeout(e))
      H.settle() -- the cancelled reader unwinds
      assert.is_true(f:closed())
      H.raises_match("file:read: the file is closed", f.read, f)
      w:write("late")
      w:close() -- the read still running on the worker ends; nothing leaks
      while weft.stats().pool_busy > 0 do weft.sleep(1) end
    end))

  it("rejects bad arguments, naming the function", async(function()
    local cases = {
      { "fs.read: path must be a string, got nil", fs.read },
      { "fs.read: path must be a string, got number", fs.read, 1 },
      { "fs.write: data must be a string, got nil", fs.write, "p" },
      { "fs.write: path must be a string, got table", fs.write, {}, "" },
      { "fs.append: data must be a string, got boolean", fs.append, "p",
        true },
      { "fs.stat: path must be a string, got nil", fs.stat },
      { "fs.exists: path must be a string, got nil", fs.exists },
      { "fs.list: path must be a string, got nil", fs.list },
      { "fs.mkdir: path must be a string, got nil", fs.mkdir },
      { "fs.mkdir: opts must be a table or nil, got string", fs.mkdir, "p",
        "r" },
      { "fs.remove: path must be a string, got nil", fs.remove },
      { "fs.remove: opts must be a table or nil, got number", fs.remove,
        "p", 1 },
      { "fs.rename: from must be a string, got nil", fs.rename },
      { "fs.rename: to must be a string, got nil", fs.rename, "a" },
      { "fs.open: path must be a string, got nil", fs.open },
      { "fs.open: mode must be a string, got number", fs.open, "p", 1 },
      { 'fs.open: bad mode "rw" (use r, w, a, r+, w+ or a+)', fs.open, "p",
        "rw" },
      { "fs.lines: path must be a string, got nil", fs.lines },
    }
    for _, c in ipairs(cases) do
      H.raises_match(c[1], c[2], H.unpack(c, 3))
    end
  end))

  it("reads many files concurrently", async(function()
    local n = 200
    for i = 1, n do fs.write(dir .. "/f" .. i, ("%d\n"):format(i):rep(i)) end
    local fns = {}
    for i = 1, n do
      fns[i] = function() return #fs.read(dir .. "/f" .. i) end
    end
    local r = weft.all(fns)
    for i = 1, n do assert.equal(#("%d\n"):format(i) * i, r[i]) end
  end))

  it("streams a large file through lines", function()
    if H.puc51 then pending(H.why.forin_yield) return end
    H.run(function()
      local p = dir .. "/big"
      local f = assert(io.open(p, "w"))
      local want, bytes = 200000, 0
      for i = 1, want do
        local line = ("line %d %s"):format(i, ("y"):rep(i % 97))
        f:write(line, "\n")
        bytes = bytes + #line
      end
      f:write("no newline at the end")
      f:close()
      local n, got, last = 0, 0, nil
      for line in fs.lines(p) do
        n = n + 1
        got = got + #line
        last = line
      end
      assert.equal(want + 1, n)
      assert.equal(bytes + #"no newline at the end", got)
      assert.equal("no newline at the end", last)
    end)
  end)

  it("closes the lines file when the loop is left early", function()
    if H.puc51 then pending(H.why.forin_yield) return end
    H.run(function()
      fs.write(dir .. "/l", "a\nb\nc\n")
      local before = open_fds(dir)
      for line in fs.lines(dir .. "/l") do
        if line == "b" then break end
      end
      assert.equal(before, open_fds(dir))
    end)
  end)

  it("opens files with read formats, write and seek", async(function()
    local p = dir .. "/f"
    fs.write(p, "one\ntwo\nthree")
    local f = fs.open(p)
    assert.equal("one", f:read())
    assert.equal("two\n", f:read("L"))
    assert.equal("th", f:read(2))
    assert.equal("ree", f:read("a"))
    assert.is_nil(f:read("l"))
    assert.is_nil(f:read(1))
    assert.equal("", f:read("a"))
    assert.equal(13, f:seek("end"))
    assert.equal(4, f:seek("set", 4))
    assert.equal("two", f:read("l"))
    assert.equal(8, f:seek()) -- the buffer read ahead is not counted
    local a, b = f:read("l", "l")
    assert.equal("three", a)
    assert.is_nil(b)
    assert.is_true(f:close())
    assert.is_true(f:closed())

    local w = fs.open(p, "w+")
    w:write("x", 1, "y\n", "z")
    w:seek("set", 0)
    assert.equal("x1y", w:read())
    w:write("!") -- writes at the script's position, after "x1y\n"
    w:seek("set", 0)
    assert.equal("x1y\n!", w:read("a"))
    w:close()
    local ap = fs.open(p, "a")
    ap:write("+")
    ap:close()
    assert.equal("x1y\n!+", fs.read(p))
  end))

  it("iterates over an open file's lines", function()
    if H.puc51 then pending(H.why.forin_yield) return end
    H.run(function()
      local p = dir .. "/f"
      fs.write(p, "x1y\n!+")
      local n = 0
      local lf = fs.open(p)
      for _ in lf:lines() do n = n + 1 end
      lf:close()
      assert.equal(2, n)
    end)
  end)

  it("refuses operations on a closed or busy file", async(function()
    local p, unblock = fifo(dir, "q")
    local f = fs.open(dir .. "/f", "w")
    f:close()
    H.raises_match("file:read: the file is closed", f.read, f)
    H.raises_match("file:write: the file is closed", f.write, f, "x")
    f:close() -- twice is harmless
    -- A file belongs to the task that opened it: open it here.
    local writer = weft.spawn(function() wait_busy(1) unblock("data\n") end)
    local q = fs.open(p)
    writer:await()
    local reader = weft.spawn(function() return q:read("a") end)
    weft.sleep(0)
    H.raises_match("file:read: the file is in use by another task",
      q.read, q)
    assert.equal("data\n", reader:await())
    q:close()
    H.raises_match("file:write: argument 1 must be a string or number",
      fs.open(dir .. "/g", "w").write, fs.open(dir .. "/h", "w"), {})
    H.raises_match('file:read: bad format "x"', fs.open(dir .. "/g").read,
      fs.open(dir .. "/g"), "x")
    H.raises_match('file:seek: whence must be', fs.open(dir .. "/g").seek,
      fs.open(dir .. "/g"), "middle")
  end))

  it("closes the files of a task when it ends", async(function()
    fs.write(dir .. "/f", "x")
    local before = open_fds(dir)
    local kept
    weft.spawn(function()
      kept = fs.open(dir .. "/f")
      local _ = fs.open(dir .. "/f") -- dropped, never closed by the script
      assert.equal(before + 2, open_fds(dir)) -- the count sees them
    end):await()
    assert.is_true(kept:closed())
    assert.equal(before, open_fds(dir))
    local f = fs.open(dir .. "/f")
    assert.equal("x", f:read("a"))
    f:close()
  end))

  -- The primitives io.lua calls are reachable (debug.getupvalue): they
  -- check what they are given, and no descriptor number reaches Lua.
  it("has private primitives that check their arguments", async(function()
    local I
    for i = 1, 20 do
      local n, v = debug.getupvalue(fs.read, i)
      if n == "I" then I = v end
    end
    assert.is_table(I)
    assert.is_nil(I.fs_wrap)
    fs.write(dir .. "/p", "abc")
    local h = I.fs_handle(dir .. "/p")
    H.raises_match("file:seek: expected a weft.FileHandle, got number",
      I.fs_hseek, 1, 0, 0)
    I.fs_open(h, "r")
    H.raises_match("file:seek: argument 2 must be an integer",
      I.fs_hseek, h, "x", 0)
    H.raises_match("file:seek: ", I.fs_hseek, h, 7, 0) -- EINVAL
    H.raises_match("file:seek: ", I.fs_hseek, h, -1, 0)
    H.raises_match("file:read: ", I.fs_hread, h, -5)
    H.raises_match("fs.open: ", I.fs_open, h, "r") -- opened already
    H.raises_match("fs.open: ", I.fs_open, I.fs_handle(dir .. "/p"), "rx")
    H.raises_match("fs.write: argument 2 must be a string",
      I.fs_write, dir .. "/q", {}, false)
    assert.equal("abc", I.fs_hread(h, 10))
    I.fs_hclose(h)
  end))

  it("raises outside a task", function()
    H.raises_match("fs.read: not inside a weft task", fs.read, "/x")
    H.raises_match("fs.open: not inside a weft task", fs.open, "/x")
  end)

  it("cancels a running read: the task is released at once, the late "
    .. "result dropped", async(function()
      local p, unblock = fifo(dir, "slow")
      local before = open_fds(dir)
      local t = weft.spawn(function() return fs.read(p) end)
      wait_busy(1)
      t:cancel()
      H.raises_cancel(t.await, t)
      unblock("late")   -- the worker's open returns, its result is dropped
      while weft.stats().pool_busy > 0 do weft.sleep(1) end
      assert.equal(before, open_fds(dir))
      assert.equal("cancelled", t:state())
    end))

  it("times out a read with weft.timeout", async(function()
    local p, unblock = fifo(dir, "never")
    local e = H.raises(weft.timeout, 20, function() return fs.read(p) end)
    assert.is_true(weft.is_timeout(e))
    unblock()
    while weft.stats().pool_busy > 0 do weft.sleep(1) end
  end))

  it("cancels a job still queued: it never runs", async(function()
    fs.exists("/") -- the pool starts on first use
    local threads = weft.stats().pool_threads
    local blockers, unblocks = {}, {}
    for i = 1, threads do
      local p, unblock = fifo(dir, "b" .. i)
      unblocks[i] = unblock
      blockers[i] = weft.spawn(function() return fs.read(p) end)
    end
    wait_busy(threads)
    local cancelled = weft.stats().pool_cancelled
    local q = weft.spawn(function() fs.write(dir .. "/never", "x") end)
    weft.sleep(0)
    assert.equal(1, weft.stats().pool_queued)
    q:cancel()
    H.raises_cancel(q.await, q)
    assert.equal(cancelled + 1, weft.stats().pool_cancelled)
    for i = 1, threads do unblocks[i]("b" .. i) end
    for i = 1, threads do assert.equal("b" .. i, blockers[i]:await()) end
    assert.is_false(fs.exists(dir .. "/never"))
  end))
end)
