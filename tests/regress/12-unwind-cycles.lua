-- Combinators and weft.timeout wait for the tasks they cancel to end, but
-- not for a task that waits, through such unwinds, for the caller: two
-- tasks that time each other out, or a child that times out its parent
-- while the parent waits for it in weft.all, each end instead of waiting
-- for each other forever.
-- expect: all done
-- reject: AddressSanitizer
-- reject: unhandled error

-- Two tasks each timing the other out: both deadlines fire together.
local a, b
a = weft.spawn(function() return pcall(weft.timeout, 10, b) end)
b = weft.spawn(function() return pcall(weft.timeout, 10, a) end)
weft.sleep(100)
assert(a:state() ~= "pending" and b:state() ~= "pending",
  "mutual timeout: " .. a:state() .. " " .. b:state())

-- Three in a ring.
local ring = {}
for i = 1, 3 do
  ring[i] = weft.spawn(function()
    return pcall(weft.timeout, 10, ring[i % 3 + 1])
  end)
end
weft.sleep(100)
for i = 1, 3 do
  assert(ring[i]:state() ~= "pending", "ring " .. i .. " " .. ring[i]:state())
end

-- A child that times out its parent, which waits for it in weft.all: the
-- parent is cancelled, cancels the child and unwinds it while the child
-- unwinds the parent.
local parent
parent = weft.spawn(function()
  return pcall(weft.all, { function() return pcall(weft.timeout, 10, parent) end })
end)
weft.sleep(100)
assert(parent:state() ~= "pending", "parent: " .. parent:state())

-- The unwinding itself still waits for plain work to clean up.
local cleaned = false
local ok, e = pcall(weft.timeout, 5, function()
  local ok2, e2 = pcall(weft.sleep, 1000)
  cleaned = true
  error(e2, 0)
end)
assert(not ok and weft.is_timeout(e) and cleaned)
print("all done")
