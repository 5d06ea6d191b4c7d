-- The script run by embed.c: calls the host's functions concurrently.
print("add:", add(2, 3))

local t0 = weft.now()
local r = weft.all{
  function() return fetch("a", 50) end,
  function() return fetch("b", 50) end,
  function() return ask("meaning?") end,
}
print("all:", r[1], r[2], r[3])
print("elapsed ms:", weft.now() - t0) -- about 50: the fetches overlap

local slow = weft.spawn(fetch, "c", 5000)
weft.sleep(10)
slow:cancel()
print("cancelled:", pcall(slow.await, slow))

local ok, err = pcall(fetch_with_deadline, "d", 5000)
print("deadline:", ok, weft.is_timeout(err), tostring(err))

ok, err = pcall(fetch, function() end)
print("bad argument:", ok, tostring(err))
