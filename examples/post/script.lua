-- script.lua - run by post.c: a host thread pushes 10,000 events into a
-- channel while a ticker task keeps running; every event arrives once,
-- in order.
local weft = require "weft"

local N = 10000
local ch = weft.channel(64)
local progress = {}
local ticks, feeding = 0, true

local ticker = weft.spawn(function()
  while feeding do
    ticks = ticks + 1
    weft.yield()
  end
end)

start_feed(ch, function(i) progress[#progress + 1] = i end, N)

local ticks_before = ticks
for want = 1, N do
  local v = ch:recv()
  assert(v == want, ("event %d: got %s"):format(want, tostring(v)))
  -- A consumer doing a little work: it lets other tasks run between
  -- events, as a real one would while it awaits.
  if want % 100 == 0 then weft.yield() end
end
feeding = false
ticker:await()
assert(ch:try_recv() == nil, "an event arrived twice")
assert(ticks > ticks_before, "the ticker did not run during the feed")
-- Each progress call was posted before the events after it, so all ten
-- have run by now.
assert(#progress == N // 1000, #progress)
for k, i in ipairs(progress) do assert(i == k * 1000, i) end
print(("post: %d events in order, %d ticks during the feed, %d progress calls")
  :format(N, ticks - ticks_before, #progress))
