-- W0 start-up, Lua + luv peer: load luv and the scheduler, run an empty
-- loop. The harness times the whole process.
-- usage: lua5.4|luajit bench/peers/luv_w0_startup.lua
local C = require "common"
local sched = require "luv_sched"
local IMPL = jit and "luajit-luv" or "lua54-luv"

local ran = false
sched.run(function() sched.await(sched.spawn(function() ran = true end)) end)
C.report(IMPL, "W0", 1, 0, os.clock() * 1000, ran)
