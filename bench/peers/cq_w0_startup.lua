-- W0 start-up, Lua 5.4 + cqueues peer: load cqueues, run an empty loop.
-- usage: lua5.4 bench/peers/cq_w0_startup.lua
local C = require "common"
local promise = require "cqueues.promise"
local run = require "cq_common"

run(function()
  local ran = false
  promise.new(function() ran = true end):get()
  C.report("lua54-cqueues", "W0", 1, 0, os.clock() * 1000, ran)
end)
