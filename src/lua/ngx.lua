-- ngx.lua - require "weft.ngx": the part of OpenResty's ngx API that
-- pure-Lua client libraries use outside a request (lua-resty-redis and
-- the like), on weft: cosockets, ngx.null, sleep, time, log, light
-- threads, timers. Sets the global ngx when there is none, since those
-- libraries read it when they load. What a request has (ngx.req,
-- ngx.var, ngx.say ...) belongs to a server and is absent (see
-- docs/libraries.md). Compiled into the module.
-- SPDX-License-Identifier: MIT
local weft, I = ...
local type, error, pcall, select = type, error, pcall, select
local floor, tostring, concat = math.floor, tostring, table.concat
local unpack = table.unpack or unpack

local ngx = {}

ngx.null = I.null -- a light userdata NULL, as ngx.null and cjson.null

ngx.socket = {
  tcp = weft.socket.tcp,
  connect = weft.socket.connect,
  stream = weft.socket.tcp,
}

------------------------------------------------------------------ time

-- ngx.sleep(seconds): seconds with millisecond resolution; 0 yields.
function ngx.sleep(sec)
  if type(sec) ~= "number" or not (sec >= 0) then
    error(("ngx.sleep: seconds must be a non-negative number, got %s")
      :format(tostring(sec)), 2)
  end
  weft.sleep(sec * 1000)
end

-- ngx.now() -> seconds since the epoch, with milliseconds, of the loop's
-- cached time (as ngx's: refreshed by each turn of the loop).
local epoch_ms = os.time() * 1000 - weft.now()
function ngx.now() return (epoch_ms + weft.now()) / 1000 end
function ngx.time() return floor(ngx.now()) end
function ngx.update_time() end -- weft's clock moves with each turn
function ngx.today() return os.date("%Y-%m-%d", ngx.time()) end
function ngx.localtime() return os.date("%Y-%m-%d %H:%M:%S", ngx.time()) end
function ngx.utctime() return os.date("!%Y-%m-%d %H:%M:%S", ngx.time()) end

------------------------------------------------------------------- log

local levels = { "STDERR", "EMERG", "ALERT", "CRIT", "ERR", "WARN",
  "NOTICE", "INFO", "DEBUG" }
for i, name in ipairs(levels) do ngx[name] = i - 1 end
ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED = 0, -1, -2, -4, -5

-- ngx.log(level, ...): the arguments, as strings, to stderr with the
-- level's name. Levels above ngx.log_level (default ngx.NOTICE) are
-- dropped, as nginx's error_log level does.
ngx.log_level = ngx.NOTICE
function ngx.log(level, ...)
  if type(level) ~= "number" or levels[level + 1] == nil then
    error(("ngx.log: bad log level: %s"):format(tostring(level)), 2)
  end
  if level > ngx.log_level then return end
  local n, parts = select("#", ...), { ... }
  for i = 1, n do
    local v = parts[i]
    if v == nil then parts[i] = "nil"
    elseif v == ngx.null then parts[i] = "null"
    else parts[i] = tostring(v) end
  end
  io.stderr:write(("[%s] %s\n"):format(levels[level + 1]:lower(),
    concat(parts, "", 1, n)))
end

---------------------------------------------------------------- threads

-- ngx.thread: light threads are weft tasks.
ngx.thread = {}

function ngx.thread.spawn(fn, ...)
  if type(fn) ~= "function" then
    error("ngx.thread.spawn: fn must be a function", 2)
  end
  return weft.spawn(fn, ...)
end

local function settle(t)
  local r = { pcall(t.await, t) }
  r.n = #r
  return r
end

-- ngx.thread.wait(t1, t2, ...) -> true, values... of the first to end,
-- or false, its error. The others go on.
function ngx.thread.wait(...)
  local n = select("#", ...)
  if n == 0 then error("ngx.thread.wait: no thread given", 2) end
  local r
  if n == 1 then
    r = settle((...))
  else
    local watchers = {}
    for i = 1, n do
      local t = select(i, ...)
      watchers[i] = weft.spawn(settle, t)
    end
    r = weft.race(watchers)
  end
  return unpack(r, 1, r.n)
end

-- ngx.thread.kill(t) -> true, or nil, err if it has ended.
function ngx.thread.kill(t)
  if t:done() then return nil, "already terminated" end
  t:cancel("killed")
  return true
end

----------------------------------------------------------------- timers

-- ngx.timer.at(delay, fn, ...) -> true: fn(premature, ...) runs in a
-- task of its own after delay seconds (premature is false: weft has no
-- worker shutdown to hurry it).
ngx.timer = {}
local ntimers = 0

function ngx.timer.at(delay, fn, ...)
  if type(delay) ~= "number" or not (delay >= 0) then
    return nil, "bad delay"
  end
  if type(fn) ~= "function" then
    error("ngx.timer.at: fn must be a function", 2)
  end
  ntimers = ntimers + 1
  weft.after(delay * 1000, function(...)
    ntimers = ntimers - 1
    return fn(false, ...)
  end, ...)
  return true
end

-- ngx.timer.every(interval, fn, ...) -> true: fn(premature, ...) every
-- interval seconds.
function ngx.timer.every(interval, fn, ...)
  if type(interval) ~= "number" or not (interval > 0) then
    return nil, "bad interval"
  end
  if type(fn) ~= "function" then
    error("ngx.timer.every: fn must be a function", 2)
  end
  ntimers = ntimers + 1
  weft.every(interval * 1000, fn, false, ...)
  return true
end

function ngx.timer.running_count() return ntimers end
function ngx.timer.pending_count() return 0 end

------------------------------------------------------------------- misc

ngx.worker = {
  exiting = function() return false end,
  pid = function() return I.pid() end,
  id = function() return 0 end,
  count = function() return 1 end,
}

ngx.config = {
  subsystem = "http",
  debug = false,
  ngx_lua_version = 10025,
  nginx_version = 1025003,
  prefix = function() return "" end,
  nginx_configure = function() return "" end,
}

ngx.ctx = {}

if rawget(_G, "ngx") == nil then _G.ngx = ngx end
return ngx
