-- socket.lua - cosockets: weft.socket.tcp(), in the shape OpenResty
-- documents for ngx.socket.tcp, so that libraries written for it run in
-- weft tasks. Calls return nil and an error string ("timeout", "closed",
-- "connection refused" ...) instead of raising; each has a time limit of
-- its own; setkeepalive puts a connection into a pool of the weft state.
-- On the soft primitives of tcp.c. Compiled into the module.
-- SPDX-License-Identifier: MIT
local weft, I, compat = ...
local type, error, pcall, tostring = type, error, pcall, tostring
local setmetatable, getmetatable = setmetatable, getmetatable
local tointeger, mtype = compat.tointeger, compat.mtype
local sub, find, gsub, byte = string.sub, string.find, string.gsub, string.byte
local concat = table.concat
local check_task, now = I.check_task, weft.now
local resolve, connect = I.tcp_resolve, I.sock_connect
local read, write = I.sock_read, I.sock_write
local close_conn, idle_ok = I.tcp_close, I.tcp_idle_check

-- Read modes, as tcp.c numbers them.
local R_SOME, R_EXACT, R_LINE_KEEP, R_ALL, R_UNTIL = 1, 2, 4, 5, 6

-- OpenResty's defaults (lua_socket_*_timeout, lua_socket_pool_size,
-- lua_socket_keepalive_timeout).
local TIMEOUT, POOL_SIZE, IDLE = 60000, 30, 60000
local UNTIL_MAX = 4096 -- weft_io.h's WEFT_UNTIL_MAX

local NAME = "weft.socket.tcp"
local Sock = {}
local SockMT = { __index = Sock, __metatable = NAME }

local function check(self, m)
  if getmetatable(self) ~= NAME or type(self) ~= "table" then
    error(("sock:%s: not a cosocket (use sock:%s)"):format(m, m), 3)
  end
end

-- A time limit in ms: a positive number; nil or 0 restore the default.
local function check_ms(m, v, what)
  if v == nil or v == 0 then return TIMEOUT end
  if type(v) ~= "number" or not (v > 0) then
    error(("sock:%s: %s must be a positive number of ms, got %s")
      :format(m, what, tostring(v)), 3)
  end
  return v >= 2 ^ 31 and 0 or math.ceil(v) -- huge: no limit
end

local socket = {}
weft.socket = socket

function socket.tcp()
  return setmetatable({ ct = TIMEOUT, st = TIMEOUT, rt = TIMEOUT,
    reused = 0 }, SockMT)
end

function Sock:settimeout(ms)
  check(self, "settimeout")
  ms = check_ms("settimeout", ms, "timeout")
  self.ct, self.st, self.rt = ms, ms, ms
end

function Sock:settimeouts(c, s, r)
  check(self, "settimeouts")
  self.ct = check_ms("settimeouts", c, "connect timeout")
  self.st = check_ms("settimeouts", s, "send timeout")
  self.rt = check_ms("settimeouts", r, "read timeout")
end

----------------------------------------------------------------- the pool

-- About the pool: idle connections by key ("host:port" or opts.pool),
-- newest first; each entry is {conn, expires (now() ms; false: never),
-- times reused}. A connection is taken only if the kernel says the peer
-- has neither ended it nor sent anything (tcp_idle_check); an expired
-- one is closed when met, and the oldest goes when a pool is full.
local pools = {}

local function pool_take(key)
  local p = pools[key]
  if p == nil then return nil end
  local t = now()
  while p.n > 0 do
    local e = p[p.n]
    p[p.n] = nil
    p.n = p.n - 1
    if (not e[2] or e[2] > t) and idle_ok(e[1]) then return e[1], e[3] end
    close_conn(e[1])
  end
end

-- Drops expired entries from the old end of pool p.
local function pool_sweep(p)
  local t, keep, n = now(), 0, p.n
  for j = 1, n do
    local e = p[j]
    if e[2] and e[2] <= t then
      close_conn(e[1])
    else
      keep = keep + 1
      p[keep] = e
    end
  end
  for j = keep + 1, n do p[j] = nil end
  p.n = keep
end

----------------------------------------------------------------- connecting

local function check_port(port)
  local p = type(port) == "number" and tointeger(port)
  if not p or p < 0 or p > 65535 then
    error(("sock:connect: port must be an integer in 0..65535, got %s")
      :format(tostring(port)), 3)
  end
  return p
end

-- sock:connect(host, port [, opts]) -> 1, or nil, err. opts: pool (the
-- pool's name), pool_size. A connected socket is closed first.
function Sock:connect(host, port, opts)
  check(self, "connect")
  check_task("sock:connect")
  if type(host) ~= "string" or host == "" then
    error(("sock:connect: host must be a non-empty string, got %s")
      :format(tostring(host)), 2)
  end
  if type(port) == "table" and opts == nil then opts, port = port, nil end
  if find(host, "^unix:") then
    return nil, "unix domain sockets are not supported yet"
  end
  port = check_port(port)
  if opts ~= nil and type(opts) ~= "table" then
    error(("sock:connect: opts must be a table, got %s")
      :format(type(opts)), 2)
  end
  if self.conn then self:close() end
  local key = opts and opts.pool or host .. ":" .. port
  if type(key) ~= "string" then
    error("sock:connect: opts.pool must be a string", 2)
  end
  if opts and opts.pool_size ~= nil then
    local n = opts.pool_size
    if mtype(n) ~= "integer" or n < 1 then
      error("sock:connect: opts.pool_size must be a positive integer", 2)
    end
    if not pools[key] then pools[key] = { n = 0, size = n } end
  end
  local c, reused = pool_take(key)
  if c then
    self.conn, self.key, self.reused = c, key, reused + 1
    return 1
  end
  local where = find(host, ":", 1, true) and ("[%s]:%d"):format(host, port)
    or ("%s:%d"):format(host, port)
  local ok, addrs = pcall(resolve, host, "sock:connect", where, self.ct)
  if not ok then
    if weft.is_cancelled() then error(addrs, 0) end
    return nil, ("%s could not be resolved (%s)"):format(host,
      type(addrs) == "table" and addrs.code or tostring(addrs))
  end
  local err
  for i = 1, #addrs do
    c, err = connect(addrs[i], port, where, self.ct)
    if c then
      self.conn, self.key, self.reused = c, key, 0
      return 1
    end
    if err == "timeout" then break end
  end
  return nil, err
end

---------------------------------------------------------- sending, reading

-- Flattens a nested array of strings and numbers into parts.
local function flatten(v, parts, depth)
  for i = 1, #v do
    local x = v[i]
    local t = type(x)
    if t == "string" or t == "number" then
      parts[#parts + 1] = x
    elseif t == "table" and depth < 100 then
      flatten(x, parts, depth + 1)
    else
      error(("sock:send: bad data: a %s in the table"):format(t), 4)
    end
  end
end

-- sock:send(data) -> bytes sent, or nil, err. data: a string, a number,
-- or a (nested) array of them.
function Sock:send(data)
  check(self, "send")
  check_task("sock:send")
  local t = type(data)
  if t == "table" then
    local parts = {}
    flatten(data, parts, 1)
    data = concat(parts)
  elseif t == "number" then
    data = tostring(data)
  elseif t ~= "string" then
    error(("sock:send: data must be a string, number or array, got %s")
      :format(t), 2)
  end
  local c = self.conn
  if not c then return nil, "closed" end
  local n, err = write(c, data, self.st)
  if not n then self.conn = nil end
  return n, err
end

-- A line without its "\n" and without any "\r", as ngx and LuaSocket
-- give it.
local function chop(line)
  local n = #line
  if byte(line, n) == 10 then n = n - 1 end
  line = sub(line, 1, n)
  local cr = find(line, "\r", 1, true)
  if cr == n then return sub(line, 1, n - 1) end
  if cr then line = gsub(line, "\r", "") end
  return line
end

local function failed(self, err, partial)
  if err ~= "timeout" then self.conn = nil end
  return nil, err, partial
end

-- sock:receive([pattern]) -> data, or nil, err, partial. pattern: "*l"
-- (the default) a line, "*a" everything until the peer closes, or a
-- count of bytes.
function Sock:receive(pat)
  check(self, "receive")
  check_task("sock:receive")
  local c = self.conn
  if pat == nil or pat == "*l" or pat == "l" then
    if not c then return nil, "closed", "" end
    local line, err, partial = read(c, R_LINE_KEEP, 0, self.rt)
    if not line then return failed(self, err, partial and chop(partial)) end
    if byte(line, #line) ~= 10 then -- the stream ended mid-line
      self.conn = nil
      close_conn(c)
      return nil, "closed", chop(line)
    end
    return chop(line)
  end
  local t = type(pat)
  if t == "number" then
    local n = tointeger(pat)
    if not n or n < 0 then
      error(("sock:receive: bad pattern argument: %s"):format(pat), 2)
    end
    if not c then return nil, "closed", "" end
    if n == 0 then return "" end
    local data, err, partial = read(c, R_EXACT, n, self.rt)
    if not data then return failed(self, err, partial) end
    return data
  end
  if pat == "*a" or pat == "a" then
    if not c then return nil, "closed", "" end
    local data, err, partial = read(c, R_ALL, 0, self.rt)
    if not data then return failed(self, err, partial) end
    return data
  end
  error(("sock:receive: bad pattern argument: %s"):format(tostring(pat)), 2)
end

-- sock:receiveany(max) -> up to max bytes as soon as some came, or nil,
-- err.
function Sock:receiveany(max)
  check(self, "receiveany")
  check_task("sock:receiveany")
  local n = type(max) == "number" and tointeger(max)
  if not n or n < 1 then
    error(("sock:receiveany: max must be a positive integer, got %s")
      :format(tostring(max)), 2)
  end
  local c = self.conn
  if not c then return nil, "closed" end
  local data, err = read(c, R_SOME, n, self.rt)
  if not data then return failed(self, err) end
  return data
end

-- sock:receiveuntil(pattern [, {inclusive}]) -> reader. reader() gives
-- the bytes before the next pattern (consumed; with it if inclusive);
-- reader(size) gives them size bytes at a time, then nil once the
-- pattern is reached. Errors as receive's.
function Sock:receiveuntil(pat, opts)
  check(self, "receiveuntil")
  if type(pat) ~= "string" or pat == "" or #pat > UNTIL_MAX then
    error(("sock:receiveuntil: pattern must be a string of 1 to %d bytes")
      :format(UNTIL_MAX), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("sock:receiveuntil: opts must be a table", 2)
  end
  local incl = opts and opts.inclusive and true or false
  local done = false
  return function(size)
    check_task("sock:receiveuntil")
    if size ~= nil then
      local n = type(size) == "number" and tointeger(size)
      if not n or n < 1 then
        error(("reader: size must be a positive integer, got %s")
          :format(tostring(size)), 2)
      end
      size = n
      if done then
        done = false
        return nil
      end
    end
    local c = self.conn
    if not c then return nil, "closed", "" end
    local data, found, partial = read(c, R_UNTIL, size or 0, self.rt, pat,
      incl)
    if not data then return failed(self, found, partial) end
    if size and found then
      if data == "" then return nil end
      done = true
    end
    return data
  end
end

------------------------------------------------------------ ending

-- sock:close() -> 1, or nil, "closed" if it was not connected.
function Sock:close()
  check(self, "close")
  local c = self.conn
  if not c then return nil, "closed" end
  self.conn = nil
  close_conn(c)
  return 1
end

-- sock:setkeepalive([idle_ms [, pool_size]]) -> 1, or nil, err: puts
-- the connection into its pool (idle_ms 0: kept until used or pushed
-- out; pool_size: the pool's size when this makes it). The socket is
-- then no longer connected.
function Sock:setkeepalive(idle, size)
  check(self, "setkeepalive")
  local c = self.conn
  if not c then return nil, "closed" end
  if idle ~= nil and (type(idle) ~= "number" or idle < 0) then
    error("sock:setkeepalive: timeout must be a non-negative number", 2)
  end
  if size ~= nil and (mtype(size) ~= "integer" or size < 1) then
    error("sock:setkeepalive: pool size must be a positive integer", 2)
  end
  self.conn = nil
  if not idle_ok(c) then
    close_conn(c)
    return nil, "connection in dubious state"
  end
  idle = idle == nil and IDLE or idle
  local p = pools[self.key]
  if p == nil then
    p = { n = 0, size = size or POOL_SIZE }
    pools[self.key] = p
  end
  pool_sweep(p)
  if p.n >= p.size then -- the oldest goes
    close_conn(p[1][1])
    for j = 1, p.n - 1 do p[j] = p[j + 1] end
    p[p.n] = nil
    p.n = p.n - 1
  end
  p.n = p.n + 1
  p[p.n] = { c, idle > 0 and now() + idle or false, self.reused }
  return 1
end

-- sock:getreusedtimes() -> how often its connection came from the pool.
function Sock:getreusedtimes()
  check(self, "getreusedtimes")
  if not self.conn then return nil, "closed" end
  return self.reused
end

function Sock:sslhandshake()
  check(self, "sslhandshake")
  return nil, "TLS is not supported yet"
end

-- weft.socket.connect(host, port [, opts]) -> sock, or nil, err.
function socket.connect(...)
  local s = socket.tcp()
  local ok, err = s:connect(...)
  if not ok then return nil, err end
  return s
end
