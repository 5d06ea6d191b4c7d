-- A combinator given a list with a bad item raises before it spawns any
-- of the list's functions: none runs, none fails unobserved.
-- expect: all done
-- reject: unhandled error
-- reject: ran

for _, name in ipairs({ "all", "all_settled", "race", "any" }) do
  local ok, e = pcall(weft[name], {
    function() print("ran") error("x", 0) end, 42,
  })
  assert(not ok and e:find("item 2 is a number", 1, true), name .. ": " .. tostring(e))
end

-- An __index that answers differently each time cannot slip a bad item
-- past the check: the items checked are the items used. (Lua 5.1 has no
-- __len for tables: the list is empty there.)
if _VERSION ~= "Lua 5.1" then
  local n = 0
  local tricky = setmetatable({}, {
    __len = function() return 1 end,
    __index = function() n = n + 1 return n == 1 and function() return "f" end or 42 end,
  })
  local r = weft.all(tricky)
  assert(r[1] == "f" and r.n == 1)
end
weft.sleep(10)
print("all done")
