-- close_spec.lua - to-be-closed variables with weft: its files,
-- connections and servers closed at the end of their scope, and a
-- task's variables closed however it ends. Lua 5.4's syntax: the other
-- Luas skip this file (NEEDS_54_SYNTAX in tests/CMakeLists.txt); the
-- other specs' cleanups are to-be-closed variables on 5.4 too
-- (H.closing).
-- SPDX-License-Identifier: MIT
local H = require "helper"
local weft = H.weft
local async = H.async

local function closer(log, what)
  return setmetatable({}, { __close = function() log(what) end })
end

describe("a to-be-closed variable", function()
  it("closes a file at the end of its scope", async(function()
    local path = os.tmpname()
    local kept
    do
      local f <close> = weft.fs.open(path, "w")
      f:write("x")
      kept = f
    end
    assert.is_true(kept:closed())
    assert.equal("x", weft.fs.read(path))
    os.remove(path)
  end))

  it("closes a connection and a server at the end of their scope",
    async(function()
      local port, kept
      do
        local srv <close> = weft.tcp.listen("127.0.0.1", 0, function(c)
          c:write("hi\n")
        end)
        port = srv.port
        do
          local c <close> = weft.tcp.connect("127.0.0.1", port)
          assert.equal("hi", c:read())
          kept = c
        end
        assert.is_true(kept:closed())
      end
      assert.equal("ECONNREFUSED",
        H.raises(weft.tcp.connect, "127.0.0.1", port).code)
    end))

  it("of a task is closed when the task is cancelled", async(function()
    local log = H.log()
    local t = weft.spawn(function()
      local a <close> = closer(log, "a")
      local b <close> = closer(log, "b")
      weft.sleep(1e6)
    end)
    weft.yield()
    t:cancel()
    H.raises_cancel(t.await, t)
    assert.same({ "b", "a" }, log.items)
  end))

  it("of a task is closed when the task fails, with the task's error",
    async(function()
      local log = H.log()
      local t = weft.spawn(function()
        local a <close> = closer(log, "a")
        weft.yield()
        error("failed", 0)
      end)
      assert.equal("failed", H.raises(t.await, t))
      assert.same({ "a" }, log.items)
    end))
end)
