-- A deep recursion under --preempt 1 inside a table.sort comparator,
-- where no yield is possible, runs at about its speed without preemption
-- (a second or two). While it waited for a point to yield, the hook was
-- set again every 1000 instructions, and each lua_sethook walks every
-- call frame: this took minutes (the CTest timeout fails it).
-- weft-args: --preempt 1
-- expect: sum 0, preempted true
-- reject: AddressSanitizer
local DEPTH, REPS = 190000, 60
local function f(n)
  if n == 0 then return 0 end
  local s = 0
  for i = 1, 20 do s = s + i end
  return f(n - 1) + s - 210
end
local p0 = weft.stats().preemptions
local sum = 0
table.sort({ 2, 1 }, function(a, b)
  for _ = 1, REPS do sum = sum + f(DEPTH) end
  return a < b
end)
-- Preempted (at least once) only once back from table.sort.
local p = weft.stats().preemptions
while weft.stats().preemptions == p do end
print(("sum %d, preempted %s"):format(sum,
  tostring(weft.stats().preemptions > p0)))
