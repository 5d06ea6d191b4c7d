-- hello.lua - the README example. Run it with: weft examples/hello.lua
local function fetch(name, ms)
  weft.sleep(ms)                 -- suspends this task only
  print("fetched " .. name)
  return name:upper()
end
local r = weft.all({ weft.spawn(fetch, "a", 300), weft.spawn(fetch, "b", 100) })
print(r[1], r[2], "in about 300 ms, not 400")
local ok, err = pcall(weft.timeout, 50, function() return fetch("c", 1000) end)
print(ok, err)                   -- false  weft.timeout: timed out after 50 ms

-- expect: fetched b.fetched a
-- expect: A.B.in about 300 ms, not 400
-- expect: false.weft.timeout: timed out after 50 ms
