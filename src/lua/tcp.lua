-- tcp.lua - the script side of weft.tcp: argument checks, trying each
-- address of a name in turn, the methods of connections and servers, on
-- top of the C primitives (tcp.c). Compiled into the module.
-- SPDX-License-Identifier: MIT
local weft, I, compat = ...
local type, error, pcall, tostring = type, error, pcall, tostring
local select, pairs, getmetatable = select, pairs, getmetatable
local mtype, tointeger, ceil = compat.mtype, compat.tointeger, math.ceil
local concat = table.concat
local check_task, now = I.check_task, weft.now

-- Read modes, as tcp.c numbers them.
local R_SOME, R_EXACT, R_LINE, R_LINE_KEEP, R_ALL = 1, 2, 3, 4, 5

local function describe(v)
  if type(v) == "number" or type(v) == "string" then
    return ("%s %s"):format(type(v), tostring(v))
  end
  return type(v)
end

-- Raises at the script's line: level 3 when called by an API function,
-- 4 (the default) when called by a check_* helper.
local function argerr(fname, what, expected, v, level)
  error(("%s: %s must be %s, got %s"):format(fname, what, expected,
    describe(v)), level or 4)
end

local function check_host(fname, host)
  if type(host) ~= "string" or host == "" then
    argerr(fname, "host", "a non-empty string", host)
  end
end

local function check_port(fname, port, min)
  local p = type(port) == "number" and tointeger(port)
  if not p or p < min or p > 65535 then
    argerr(fname, "port", ("an integer in %d..65535"):format(min), port)
  end
  return p
end

local function check_opts(fname, opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerr(fname, "opts", "a table or nil", opts)
  end
  return opts or {}
end

-- opts.max_line: nil (the default limit), a positive integer, or
-- math.huge (no limit), which tcp.c takes as 0.
local function check_max_line(fname, opts)
  local n = opts.max_line
  if n == nil then return nil end
  if n == math.huge then return 0 end
  if mtype(n) ~= "integer" or n < 1 then
    argerr(fname, "opts.max_line", "a positive integer or math.huge", n)
  end
  return n
end

-- "host:port", or "[v6]:port", for messages.
local function where(host, port)
  if host:find(":", 1, true) then return ("[%s]:%d"):format(host, port) end
  return ("%s:%d"):format(host, port)
end

local tcp = {}
weft.tcp = tcp

-- tcp.connect(host, port [, {timeout_ms, max_line}]) -> conn. A name's addresses
-- are tried in the resolver's order until one accepts; the time limit
-- covers the lookup and every attempt.
function tcp.connect(host, port, opts)
  check_task("tcp.connect")
  check_host("tcp.connect", host)
  port = check_port("tcp.connect", port, 1)
  opts = check_opts("tcp.connect", opts)
  local ms = opts.timeout_ms
  if ms ~= nil and (type(ms) ~= "number" or not (ms > 0)) then
    argerr("tcp.connect", "opts.timeout_ms", "a positive number", ms, 3)
  end
  ms = ms and ms < 2 ^ 53 and ceil(ms) or nil -- math.huge: no limit
  local max_line = check_max_line("tcp.connect", opts)
  local w = where(host, port)
  local deadline = ms and now() + ms
  local addrs = I.tcp_resolve(host, "tcp.connect", w, ms)
  for i = 1, #addrs do
    local left = 0
    if deadline then
      left = deadline - now()
      if left <= 0 then left = 1 end -- the wait itself reports the timeout
    end
    local ok, conn = pcall(I.tcp_connect, addrs[i], port, w, left, ms)
    if ok then
      if max_line then I.tcp_set_max_line(conn, max_line) end
      return conn
    end
    -- Refused or unreachable: try the next address. Anything else (a
    -- timeout, a cancellation) ends the attempt.
    if i == #addrs or type(conn) ~= "table" or conn.kind ~= "io" then
      error(conn, 0)
    end
  end
end

------------------------------------------------------------- connections

local ConnMT = I.tcp_conn_mt
local Conn = {}
ConnMT.__index = Conn

-- A connection's metatable is protected: getmetatable gives its name (a
-- value that pretends to be one is refused by the C primitives).
local function check_conn(fname, self)
  if getmetatable(self) ~= "weft.tcp.Conn" then
    error(("%s: not a connection (use conn:%s)"):format(fname,
      fname:match("%w+$")), 3)
  end
end

local function check_count(fname, n, min)
  if mtype(n) ~= "integer" or n < min then
    argerr(fname, "count", min == 0 and "a non-negative integer"
      or "a positive integer", n)
  end
end

-- conn:read([fmt]): "l" (default) a line without "\n", "L" with it, "a"
-- the rest of the stream, or a count n: up to n bytes, as soon as some
-- are there. nil at the end of the stream ("" for "a").
function Conn:read(fmt)
  check_conn("conn:read", self)
  check_task("conn:read")
  if fmt == nil then return I.tcp_read(self, R_LINE) end
  if type(fmt) == "number" then
    check_count("conn:read", fmt, 1)
    return I.tcp_read(self, R_SOME, fmt)
  end
  if type(fmt) == "string" then
    local f = fmt:gsub("^%*", "")
    if f == "l" then return I.tcp_read(self, R_LINE) end
    if f == "L" then return I.tcp_read(self, R_LINE_KEEP) end
    if f == "a" then return I.tcp_read(self, R_ALL) end
  end
  error(('conn:read: format must be a count, "l", "L" or "a", got %s')
    :format(describe(fmt)), 2)
end

-- conn:read_exactly(n) -> n bytes; raises if the stream ends first.
function Conn:read_exactly(n)
  check_conn("conn:read_exactly", self)
  check_task("conn:read_exactly")
  check_count("conn:read_exactly", n, 0)
  if n == 0 then return "" end
  return I.tcp_read(self, R_EXACT, n)
end

function Conn:lines(fmt)
  check_conn("conn:lines", self)
  return function() return self:read(fmt) end
end

-- conn:write(...): strings or numbers, sent in order; returns conn once
-- the kernel has taken them all.
function Conn:write(...)
  check_conn("conn:write", self)
  check_task("conn:write")
  local n, data = select("#", ...), ...
  if n ~= 1 or type(data) ~= "string" then
    local parts = { ... }
    for i = 1, n do
      local v = parts[i]
      if type(v) == "number" then
        parts[i] = tostring(v)
      elseif type(v) ~= "string" then
        error(("conn:write: argument %d must be a string or number, got %s")
          :format(i, type(v)), 2)
      end
    end
    data = concat(parts)
  end
  I.tcp_write(self, data)
  return self
end

function Conn:shutdown()
  check_conn("conn:shutdown", self)
  check_task("conn:shutdown")
  I.tcp_shutdown(self)
end

function Conn:close()
  check_conn("conn:close", self)
  I.tcp_close(self)
  return true
end

function Conn:closed()
  check_conn("conn:closed", self)
  return I.tcp_closed(self)
end

function Conn:getpeername()
  check_conn("conn:getpeername", self)
  return I.tcp_addr(self, true)
end

function Conn:getsockname()
  check_conn("conn:getsockname", self)
  return I.tcp_addr(self, false)
end

----------------------------------------------------------------- servers

local ServerMT = I.tcp_server_mt
local Server = {}
ServerMT.__index = function(self, k)
  if k == "port" then return (I.tcp_server_info(self)) end
  return Server[k]
end

local function check_server(fname, self)
  if getmetatable(self) ~= "weft.tcp.Server" then
    error(("%s: not a server (use server:%s)"):format(fname,
      fname:match("%w+$")), 3)
  end
end

-- tcp.listen(host, port, handler [, {backlog, max_line}]) -> server;
-- each accepted connection runs handler(conn) in a task of its own.
function tcp.listen(host, port, handler, opts)
  check_task("tcp.listen")
  check_host("tcp.listen", host)
  port = check_port("tcp.listen", port, 0)
  if type(handler) ~= "function" then
    argerr("tcp.listen", "handler", "a function", handler, 3)
  end
  opts = check_opts("tcp.listen", opts)
  local backlog = opts.backlog
  if backlog == nil then
    backlog = 511
  elseif mtype(backlog) ~= "integer" or backlog < 1 then
    argerr("tcp.listen", "opts.backlog", "a positive integer", backlog,
      3)
  end
  local max_line = check_max_line("tcp.listen", opts)
  local w = where(host, port)
  local addrs = I.tcp_resolve(host, "tcp.listen", w)
  local server = I.tcp_listen(addrs[1], port, handler, backlog, w)
  if max_line then I.tcp_set_max_line(server, max_line) end
  return server
end

-- server:close([{cancel = true}]): stops accepting at once. Handlers
-- still running go on, or with cancel are cancelled (but not the task
-- calling close).
function Server:close(opts)
  check_server("server:close", self)
  opts = check_opts("server:close", opts)
  local tasks = I.tcp_server_close(self)
  if opts.cancel then
    local me = weft.current()
    for t in pairs(tasks) do
      if t ~= me then t:cancel("server closed") end
    end
  end
  return true
end

function Server:closed()
  check_server("server:closed", self)
  return (select(2, I.tcp_server_info(self)))
end

-- server:wait(): suspends until the server is closed.
function Server:wait()
  check_server("server:wait", self)
  check_task("server:wait")
  I.tcp_server_wait(self)
end
