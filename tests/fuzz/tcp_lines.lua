-- tcp_lines.lua - fuzz target: weft.tcp's read buffer, line splitting
-- and max_line. A local server (a weft.tcp handler) sends a stream in
-- chunks taken from the input, then ends it with a FIN, or with a reset
-- (it closes with unread data). The client reads with a sequence of
-- formats from the input ("l", "L", "a", counts, read_exactly, bad
-- arguments, reads under weft.timeout), and every result is checked
-- against a model of the documented contract (docs/lua-api.md, TCP):
-- lines split at "\n", a line longer than max_line raises EMSGSIZE and
-- stays buffered, a count returns 1..n bytes, a timed-out read consumes
-- nothing, the end reads nil ("" for "a"); after a reset, every byte
-- read is the stream's and the end is an error, never a clean end.
-- SPDX-License-Identifier: MIT
local weft, C = ...
local tcp = weft.tcp

local DEFAULT_MAX_LINE = 1024 * 1024

---------------------------------------------------------------- decoding

local function one_line(c) return c:lines()() end

-- The read operations: each is {name, fn(conn) -> result[, argument]}.
local function decode_op(R, depth)
  local k = R.byte() % 11
  if k <= 1 then return { "l", function(c) return c:read() end } end
  if k == 2 then return { "l", function(c) return c:read("*l") end } end
  if k == 3 then return { "L", function(c) return c:read("L") end } end
  if k == 4 then
    local n = R.byte() % 24 + 1
    return { "some", function(c) return c:read(n) end, n }
  end
  if k == 5 then
    local n = R.byte() % 24
    return { "exact", function(c) return c:read_exactly(n) end, n }
  end
  if k == 6 then return { "a", function(c) return c:read("a") end } end
  if k == 7 then return { "l", one_line } end
  if k == 8 and depth == 0 then -- under a timeout of 0 to 2 ms
    local ms, inner = R.byte() % 3, decode_op(R, 1)
    return { "timeout", function(c)
      return weft.timeout(ms, function() return inner[2](c) end)
    end, inner }
  end
  local bad = R.pick({ 0, -1, 1.5, "x", "n", {}, true, 2 ^ 63 })
  if R.byte() % 2 == 0 then
    return { "bad", function(c) return c:read(bad) end, "conn:read" }
  end
  if bad == 0 then bad = -2 end -- read_exactly(0) is "" and no error
  return { "bad", function(c) return c:read_exactly(bad) end,
    "conn:read_exactly" }
end

local function decode(R)
  local t = {}
  local m = R.byte() % 6
  if m == 0 then
    t.max_line = nil
  elseif m == 1 then
    t.max_line = math.huge
  else
    t.max_line = R.byte() % 64 + 1
  end
  t.limit = t.max_line or DEFAULT_MAX_LINE
  t.reset = R.byte() % 4 == 3
  t.yield = R.byte() % 2 == 0 -- let the reader run between chunks
  t.ops = {}
  for i = 1, R.byte() % 12 + 1 do t.ops[i] = decode_op(R, 0) end
  t.chunks = {}
  while R.left() > 0 do
    local n = R.byte()
    n = (n & 0x80 ~= 0) and (n & 0x7f) * 64 or n % 48
    t.chunks[#t.chunks + 1] = R.bytes(n)
  end
  t.stream = table.concat(t.chunks)
  return t
end

------------------------------------------------------------------- model

-- What a model gives besides a string: a line over max_line (EMSGSIZE),
-- the end of the stream (nil, an EOF error for read_exactly), some bytes
-- (a count: 1 to n of them).
local LONG, END, SOME = {}, {}, {}

-- What op should give on rest (the stream not yet read): the result and
-- how many bytes it takes, or LONG, END or SOME.
local function model(t, op, rest)
  local name, n = op[1], op[3]
  if name == "l" or name == "L" then
    local i = rest:find("\n", 1, true)
    if i then
      if i - 1 > t.limit then return LONG end
      return name == "L" and rest:sub(1, i) or rest:sub(1, i - 1), i
    end
    if #rest > t.limit then return LONG end
    if rest == "" then return END end
    return rest, #rest
  end
  if name == "some" then
    if rest == "" then return END end
    return SOME, nil
  end
  if name == "exact" then
    if n == 0 then return "", 0 end
    if #rest >= n then return rest:sub(1, n), n end
    return END
  end
  if name == "a" then return rest, #rest end
end

local function is_io(e, code)
  return C.is_weft_error(e) and e.kind == "io" and
    (code == nil or e.code == code)
end

-- After a reset the stream read is the one written cut somewhere: a
-- sender's kernel drops what it had not sent yet when it resets (plain
-- sockets lose those bytes too). What holds: every byte read is the
-- stream's next, a line that ends is a line of the stream, a line over
-- max_line is never returned, and the end is an error, never a clean
-- end. Returns how many bytes the read took.
local function check_reset(t, op, rest, ok, r)
  local name = op[1]
  if not ok then
    local nl = rest:find("\n", 1, true)
    local long = (nl and nl - 1 or #rest) > t.limit
    if is_io(r, "EMSGSIZE") and not long then
      C.violation("%s raised EMSGSIZE for a line within max_line", name)
    end
    if not is_io(r) or r.code == "EOF" then
      C.violation("%s after a reset raised %s", name, C.show(r))
    end
    return 0
  end
  if r == nil or name == "a" then -- "a" returns only at a clean end
    C.violation("%s after a reset ended cleanly", name)
  end
  if type(r) ~= "string" or rest:sub(1, #r) ~= r then
    C.violation("%s gave %s, not the stream's next bytes %s", name,
      C.show(r), C.show(rest))
  end
  if (name == "some" and (#r < 1 or #r > op[3])) or
    (name == "exact" and #r ~= op[3]) then
    C.violation("%s(%d) gave %d bytes", name, op[3], #r)
  end
  local nl = r:find("\n", 1, true)
  if name == "l" or name == "L" then
    if (nl and nl < #r) or (name == "l" and nl) then
      C.violation("%s gave %s, more than a line", name, C.show(r))
    end
    if #r - (nl and 1 or 0) > t.limit then
      C.violation("%s gave a line over max_line %d", name, t.limit)
    end
    if name == "l" and rest:sub(#r + 1, #r + 1) == "\n" then
      return #r + 1 -- its "\n", unless the stream was cut just before it
    end
  end
  return #r
end

-- Checks one result against the model; returns how many bytes it took.
local function check(t, op, rest, ok, r)
  local name = op[1]
  if name == "bad" then
    if ok then C.violation("%s took a bad argument", op[3]) end
    local msg = C.check_error(r, op[3])
    if not msg:find(op[3] .. ": ", 1, true) then
      C.violation("a bad argument's error does not name %s: %s", op[3],
        C.show(msg))
    end
    return 0
  end
  if name == "timeout" then
    if not ok and weft.is_timeout(r) then return 0 end -- nothing taken
    return check(t, op[3], rest, ok, r)
  end
  if t.reset then return check_reset(t, op, rest, ok, r) end
  local want, took = model(t, op, rest)
  if want == LONG then
    if not ok and is_io(r, "EMSGSIZE") then return 0 end
    C.violation("a line over max_line %s gave %s %s", t.limit, ok,
      C.show(r))
  end
  if want == END then
    if name == "exact" then
      if not ok and is_io(r, "EOF") then return 0 end
    elseif ok and r == nil then
      return 0
    end
    C.violation("%s at the end gave %s %s", name, ok, C.show(r))
  end
  if not ok then
    C.violation("%s failed with %s; expected %s", name, C.show(r),
      C.show(want))
  end
  if want == SOME then
    if type(r) ~= "string" or #r < 1 or #r > op[3] or
      rest:sub(1, #r) ~= r then
      C.violation("read(%d) gave %s; the stream goes on %s", op[3],
        C.show(r), C.show(rest))
    end
    return #r
  end
  if r ~= want then
    C.violation("%s gave %s; expected %s", name, C.show(r), C.show(want))
  end
  return took
end

-------------------------------------------------------------------- run

return function(data)
  local t = decode(C.reader(data))
  C.note("input", t)
  local arrived, server = weft.channel(1), nil
  server = C.listen(function(conn)
    server:close() -- once it has accepted: closing before drops the client
    -- With a reset, the client's byte must be here first, unread, so
    -- that the close resets the connection.
    if t.reset then arrived:recv() end
    for _, chunk in ipairs(t.chunks) do
      if not pcall(conn.write, conn, chunk) then return end
      if t.yield then weft.yield() end
    end
  end)
  local conn = tcp.connect("127.0.0.1", server.port, { max_line = t.max_line })
  if t.reset then
    conn:write("x")
    arrived:send(true)
  end
  local pos = 1
  for _, op in ipairs(t.ops) do
    local rest = t.stream:sub(pos)
    local ok, r = pcall(op[2], conn)
    if not ok then C.check_error(r, op[1]) end
    pos = pos + check(t, op, rest, ok, r)
  end
  conn:close()
end
