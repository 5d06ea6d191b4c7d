-- weft.timeout: a result settled in the loop step in which the deadline
-- fired wins over the deadline; and the work it gives up on (like the
-- losers of race and the siblings of a failure in all) has finished its
-- cleanup when it raises or returns.
-- expect: all done
-- reject: AddressSanitizer
-- reject: unhandled error

-- Both timers fire in one step (the loop is held past both): the
-- resolver runs first (critical priority), then the waiting task sees its
-- deadline passed with the future settled.
local f, resolve = weft.future()
weft.spawn({ priority = "critical" }, function() weft.sleep(2) resolve("v") end)
weft.spawn(function() local t0 = os.clock() while os.clock() - t0 < 0.03 do end end)
local ok, v = pcall(weft.timeout, 1, f)
assert(ok and v == "v", "same step: " .. tostring(v))

-- The same with a task woken in that step: it is cancelled, but its
-- sleep had ended, so it returns, and its result wins.
ok, v = pcall(weft.timeout, 1, function()
  weft.spawn(function() local t0 = os.clock() while os.clock() - t0 < 0.03 do end end)
  weft.sleep(2)
  return "task"
end)
assert(ok and v == "task", "same step, task: " .. tostring(v))

-- closing(log, key, fn, ...): fn(...), then log[key] = true however fn
-- ends: by a to-be-closed variable on 5.4, as the test was written, by a
-- pcall on the Luas without them.
local closing
if _VERSION == "Lua 5.4" then
  closing = assert(load([[return function(log, key, fn, ...)
    local c <close> = setmetatable({}, {
      __close = function() log[key] = true end })
    return fn(...)
  end]]))()
else
  local unpack = table.unpack or unpack
  closing = function(log, key, fn, ...)
    local r = { n = select("#", ...) + 1, pcall(fn, ...) }
    log[key] = true
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end
end

-- Cleanup of the timed-out work has run when the timeout raises.
local log = {}
ok, v = pcall(weft.timeout, 10, function()
  closing(log, "close", function()
    local ok2, e = pcall(weft.sleep, 1000)
    log.pcall = not ok2 and weft.is_cancelled(e)
    error(e, 0)
  end)
end)
assert(not ok and weft.is_timeout(v), tostring(v))
assert(log.close and log.pcall, "timeout raised before its work unwound")

-- A connection read under a timeout is closed when the timeout raises.
local srv = weft.tcp.listen("127.0.0.1", 0, function(c) weft.sleep(1000) end)
local conn
ok, v = pcall(weft.timeout, 20, function()
  conn = weft.tcp.connect("127.0.0.1", srv.port)
  return conn:read("l")
end)
assert(not ok and weft.is_timeout(v), tostring(v))
local wok, werr = pcall(conn.write, conn, "PING\n")
assert(not wok, "the connection is still open after the timeout")
srv:close()

-- race: the losers have unwound when it returns.
log = {}
assert(weft.race({
  function() weft.sleep(5) return "fast" end,
  function() closing(log, "loser", weft.sleep, 1000) end,
}) == "fast")
assert(log.loser, "race returned before its loser unwound")

-- all: the siblings of a failure have unwound when it raises.
log = {}
ok, v = pcall(weft.all, {
  function() weft.sleep(5) error("boom", 0) end,
  function() closing(log, "sibling", weft.sleep, 1000) end,
})
assert(not ok and v == "boom" and log.sibling, "all raised before unwinding")

-- A caller cancelled inside weft.timeout: the work has unwound when the
-- caller's cancellation reaches it.
log = {}
local caller = weft.spawn(function()
  weft.timeout(1000, function() closing(log, "inner", weft.sleep, 1000) end)
end)
weft.sleep(5)
caller:cancel()
ok, v = pcall(caller.await, caller)
assert(not ok and weft.is_cancelled(v) and log.inner)
-- The same when the work it spawned fails while it unwinds: that failure
-- gives way to the caller's cancellation (observed, not reported).
local caller2 = weft.spawn(function()
  weft.timeout(1000, function()
    pcall(weft.sleep, 1000)
    error("failed while unwinding", 0)
  end)
end)
weft.sleep(5)
caller2:cancel()
ok, v = pcall(caller2.await, caller2)
assert(not ok and weft.is_cancelled(v))
-- The caller cancelled while it waits for the timed-out work to unwind,
-- and the work fails with an error of its own meanwhile: that error is
-- raised (not lost behind the cancellation, nor reported as unhandled).
-- The deadline and the canceller's sleep fire in one step (the loop is
-- held past both), the caller first.
local inner_task
local caller3 = weft.spawn(function()
  return weft.timeout(1, function()
    inner_task = weft.current()
    pcall(weft.sleep, 1000)
    error("inner failure", 0)
  end)
end)
weft.spawn(function()
  weft.sleep(2)
  caller3:cancel()
end)
weft.spawn(function() local t0 = os.clock() while os.clock() - t0 < 0.03 do end end)
ok, v = pcall(caller3.await, caller3)
assert(not ok and v == "inner failure", tostring(v))
print("all done")
