-- A preemption leaves a script's own hooks as they would be without it: a
-- line hook set in the frame where the task was preempted used to miss
-- its first line (Lua's db.lua, line 308), because the mark Lua leaves
-- on a frame whose hook yielded stayed there.
-- weft-args: --preempt 1
-- expect: lines 3, preempted true
-- reject: AddressSanitizer
-- (LuaJIT runs no debug hooks, preemption's, inside compiled code.)
if jit then jit.off() end
local p0 = weft.stats().preemptions
-- Spins in this frame (weft.stats is a C function) until preempted here.
while weft.stats().preemptions == p0 do end
local count = 0
debug.sethook(function() count = count + 1 end, "l")
local a = 0 -- line 1
a = a + 1 -- line 2
debug.sethook() -- line 3
print(("lines %d, preempted %s"):format(count,
  tostring(weft.stats().preemptions > p0)))
