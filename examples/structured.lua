-- structured.lua - structured concurrency: groups, timeouts, races.
-- Run it with: weft examples/structured.lua

-- A child that waits until it is cancelled and says so. Rethrowing the
-- cancellation error lets the task end as "cancelled".
local function wait_forever(name)
  return function()
    local ok, err = pcall(weft.sleep, 60000)
    if weft.is_cancelled(err) then print(name .. ": cancelled") end
    error(err, 0)
  end
end

-- 1. weft.group returns when every child has ended. The first child to
-- fail cancels its siblings, and weft.group raises its error.
print("-- group")
local ok, err = pcall(weft.group, function(g)
  g:spawn(wait_forever("sibling 1"))
  g:spawn(wait_forever("sibling 2"))
  g:spawn(function()
    weft.sleep(10)
    error("disk full", 0)
  end)
end)
print("group failed:", err)

-- g:join_next() hands out each child's outcome as it ends, in that order.
local order = weft.group(function(g)
  for _, ms in ipairs({ 30, 10, 20 }) do
    g:spawn(function() weft.sleep(ms) return ms end)
  end
  local seen = {}
  while true do
    local ok, ms = g:join_next()  -- nothing once every child was joined
    if ok == nil then break end
    seen[#seen + 1] = ms
  end
  return table.concat(seen, " ")
end)
print("joined in order:", order)

-- 2. weft.timeout returns the values of work that ends in time, and
-- otherwise cancels the work and raises a timeout error.
print("-- timeout")
print("in time:", weft.timeout(100, function()
  weft.sleep(5)
  return "done"
end))
local slow = weft.spawn(wait_forever("slow task"))
ok, err = pcall(weft.timeout, 20, slow)
print("timed out:", weft.is_timeout(err), err)
ok, err = pcall(weft.await, slow)
print("slow task ended:", slow:state(), err)

-- 3. weft.race returns the first item to settle and cancels the others.
print("-- race")
local mirrors = {}
for _, m in ipairs({ { "eu", 40 }, { "us", 10 }, { "ap", 30 } }) do
  mirrors[#mirrors + 1] = weft.spawn({ name = m[1] }, function()
    weft.sleep(m[2])
    return m[1]
  end)
end
print("winner:", weft.race(mirrors))
for _, r in ipairs(weft.all_settled(mirrors)) do
  print(r.ok and ("  " .. r.value .. ": won")
    or ("  lost: " .. tostring(r.error)))
end

-- expect: sibling 1: cancelled
-- expect: sibling 2: cancelled
-- expect: group failed:.disk full
-- expect: joined in order:.10 20 30
-- expect: in time:.done
-- expect: slow task: cancelled
-- expect: timed out:.true.weft.timeout: timed out after 20 ms
-- expect: slow task ended:.cancelled.cancelled: timeout
-- expect: winner:.us
-- expect: us: won
-- expect: lost: cancelled.*lost: cancelled
