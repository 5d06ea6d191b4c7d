-- http_options.lua - fuzz target: the options and headers of
-- weft.http.request. The input becomes an options table: known and
-- unknown keys, URLs, methods, bodies and headers of every type, with
-- CR, LF and NUL where they must not be. A model of the documented rules
-- (docs/lua-api.md, weft.http.request) says whether the call is valid:
--   invalid: it must raise a string error naming http.request, and send
--            nothing;
--   valid:   a local server (a weft.tcp handler) must receive exactly the
--            request asked for: the method, each header with its values
--            in order (false: absent), the body, and no header line that
--            was not asked for (curl's own Host, Accept, Content-Length
--            and Content-Type aside), so no header can be injected; the
--            call returns the server's response (or times out, or, under
--            max_body, fails with FILESIZE_EXCEEDED).
-- SPDX-License-Identifier: MIT
local weft, C = ...
local http = weft.http

local TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"
-- Names safe to set: none changes how the request is framed.
local NAMES = { "X-A", "x-a", "X-B", "Accept", "User-Agent", "Cookie",
  "X-Long-Name-Of-A-Header", "Authorization", "Referer", "Cache-Control" }
local BAD_NAMES = { "", "X A", "X:A", "X\r\nY", "X\nY", "X\0Y", "(x)", "é" }
local METHODS = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
  "X-CUSTOM" }
local BAD_METHODS = { "", "G ET", "GET\r\nX-Injected: 1", "GET\n", "GET\0",
  "GET /", "é" }
-- Curl's own header lines: the only ones allowed beside those asked for.
local CURL_HEADERS = { host = true, accept = true, ["content-length"] = true,
  ["content-type"] = true }

------------------------------------------------------------------ input

local function token(R)
  local n, b = R.byte() % 8 + 1, {}
  for i = 1, n do
    local k = R.byte() % #TOKEN + 1
    b[i] = TOKEN:sub(k, k)
  end
  return table.concat(b)
end

-- Text with a chance of CR, LF, NUL and other control bytes.
-- Mostly printable: of the control characters only tab and the ones that
-- must be refused come through as they are (CR, LF, NUL, ESC), so that
-- most values are valid and a refused one is refused for a reason.
local KEEP = { [0] = true, [9] = true, [10] = true, [13] = true, [27] = true }

local function text(R, n)
  local b = {}
  for i = 1, n do
    local c = R.byte()
    if c >= 0x80 and c < 0xf0 then c = c - 0x60 end
    if (c < 0x20 and not KEEP[c]) or c == 0x7f then c = c % 0x5f + 0x20 end
    b[i] = string.char(c)
  end
  return table.concat(b)
end

-- A header value: a string (a space-only one is avoided: curl takes
-- "Name:   " for a removal), a number, false, "", a list, or junk.
local function value(R, depth)
  local k = R.byte() % 10
  if k <= 3 then
    local s = text(R, R.byte() % 16)
    if s:find("^[ \t]+$") then s = s .. "v" end
    return s
  end
  if k == 4 then return R.pick({ 0, 7, -1, 1.5, 2 ^ 53, math.mininteger }) end
  if k == 5 then return false end
  if k == 6 then return "" end
  if k == 7 and depth == 0 then
    local list = {}
    for i = 1, R.byte() % 4 do list[i] = value(R, 1) end
    return list
  end
  return R.pick({ true, {}, print, 0 / 0 })
end

local function headers(R)
  local k = R.byte() % 8
  if k == 0 then return nil end
  if k == 1 then return R.pick({ "Accept: x", 42, true }) end
  local h = {}
  for _ = 1, R.byte() % 6 do
    local m, name = R.byte() % 8, nil
    if m < 4 then
      name = R.pick(NAMES)
    elseif m < 6 then
      name = "X-" .. token(R)
    elseif m == 6 then
      name = R.pick(BAD_NAMES)
    else
      name = R.pick({ 1, true, 2.5 })
    end
    h[name] = value(R, 0)
  end
  return h
end

local function url(R, base)
  local k = R.byte() % 10
  if k < 6 then return base end
  if k == 6 then return base .. "/" .. text(R, R.byte() % 12) end
  if k == 7 then return base:gsub("^http", "HTTP") end
  if k == 8 then
    return R.pick({ "", "ftp://127.0.0.1/", "http:/x", "file:///etc/passwd",
      "127.0.0.1", "https//x" })
  end
  return R.pick({ 42, true, {} })
end

local function options(R, base)
  local o = {}
  local k = R.byte()
  if k & 1 ~= 0 then o.url = url(R, base) end
  if k & 2 ~= 0 then
    o.method = R.byte() % 4 == 0 and R.pick(BAD_METHODS) or
      (R.byte() % 2 == 0 and token(R) or R.pick(METHODS))
  end
  if k & 4 ~= 0 then
    o.body = R.byte() % 8 == 0 and R.pick({ 1, {}, false })
      or text(R, R.byte() % 40)
  end
  o.headers = headers(R)
  local extra = R.byte()
  if extra & 1 ~= 0 then
    o.timeout_ms = R.pick({ 10000, 10000, 10000, 1, 0, -5, 1.5, "100" })
  end
  if extra & 2 ~= 0 then
    o.max_body = R.pick({ 0, 1, 2, 100, -1, 0.5, math.huge, -math.huge })
  end
  if extra & 4 ~= 0 then o.follow_redirects = R.pick({ true, false, 1 }) end
  if extra & 8 ~= 0 then o.stream = R.pick({ true, false, "yes" }) end
  if extra & 16 ~= 0 then o.insecure = R.pick({ true, false, 0 }) end
  if extra & 32 ~= 0 then o.ca_file = R.pick({ "/nonexistent", 5 }) end
  if extra & 64 ~= 0 then o[R.pick({ "timeout", "proxy", 1 })] = 1 end
  return o
end

------------------------------------------------------------------ model

local function is_token(s) return s:find("^[%w!#$%%&'*+.^_`|~-]+$") ~= nil end

local function int_at_least(v, min)
  return v == nil or (math.type(v) == "integer" and v >= min)
end

local KNOWN = { method = true, url = true, headers = true, body = true,
  timeout_ms = true, follow_redirects = true, max_body = true,
  ca_file = true, insecure = true, stream = true }

-- The values a header sends, in order, or nil if the value is refused.
-- A NUL cannot go through curl's C strings: it must be refused, not cut;
-- nor can any control character but tab.
local function sent_values(v)
  local function one(x)
    if type(x) == "number" then x = tostring(x) end
    if type(x) ~= "string" or x:find("[%z\1-\8\10-\31\127]") then
      return nil -- no control character but tab (RFC 9110)
    end
    return x
  end
  if v == false then return {} end
  if type(v) == "table" then
    local out = {}
    for i, x in ipairs(v) do
      out[i] = one(x)
      if out[i] == nil then return nil end
    end
    return out
  end
  local x = one(v)
  return x and { x }
end

-- Whether o is a valid request, and the header values it sends by
-- lower-cased name (a name given twice in different cases is left out).
local function valid(o)
  for k in pairs(o) do if not KNOWN[k] then return false end end
  if type(o.url) ~= "string" or not o.url:find("^[Hh][Tt][Tt][Pp][Ss]?://")
    or o.url:find("%z") then
    return false
  end
  if o.body ~= nil and type(o.body) ~= "string" then return false end
  if o.method ~= nil and (type(o.method) ~= "string" or
    not is_token(o.method)) then
    return false
  end
  for _, key in ipairs({ "follow_redirects", "insecure", "stream" }) do
    if o[key] ~= nil and type(o[key]) ~= "boolean" then return false end
  end
  if o.ca_file ~= nil and type(o.ca_file) ~= "string" then return false end
  if not int_at_least(o.timeout_ms, 1) or
    not (o.max_body == math.huge or int_at_least(o.max_body, 0)) then
    return false
  end
  if o.headers == nil then return true, {} end
  if type(o.headers) ~= "table" then return false end
  local want, seen = {}, {}
  for name, v in pairs(o.headers) do
    if type(name) ~= "string" or not is_token(name) then return false end
    local values = sent_values(v)
    if values == nil then return false end
    local low = name:lower()
    -- An empty list sends nothing (curl's own header stays, unlike false).
    if type(v) == "table" and #values == 0 then values = nil end
    want[low] = not seen[low] and values or nil
    seen[low] = true
  end
  return true, want
end

------------------------------------------------------------------ server

-- Reads one request: the request line, header lines as {name, value},
-- and the body (by Content-Length).
local function read_request(conn)
  local req = { headers = {} }
  req.line = conn:read()
  while true do
    local line = conn:read()
    if line == nil or line == "\r" then break end
    local name, v = line:match("^([^:]*):[ \t]*(.-)[ \t]*\r$")
    req.headers[#req.headers + 1] = { name or line, v }
    if name and name:lower() == "content-length" then req.length = v end
  end
  req.body = ""
  local n = math.tointeger(tonumber(req.length or "0"))
  if n and n > 0 then req.body = conn:read_exactly(n) end
  return req
end

-- Whether the script asked for a header named low (any case).
local function asked(o, low)
  for name in pairs(o.headers or {}) do
    if type(name) == "string" and name:lower() == low then return true end
  end
  return false
end

local function trim(s) return (s:match("^[ \t]*(.-)[ \t]*$")) end

local function check_request(req, o, want)
  local method = o.method or (o.body and "POST" or "GET")
  if req.line == nil or req.line:sub(1, #method + 1) ~= method .. " " then
    C.violation("request line %s for method %s", C.show(req.line),
      C.show(method))
  end
  if o.url:find("://[^/]*/p$") and req.line ~= method .. " /p HTTP/1.1\r" then
    C.violation("request line %s", C.show(req.line))
  end
  local got = {}
  for _, h in ipairs(req.headers) do
    local low = h[1]:lower()
    if h[2] == nil or not (CURL_HEADERS[low] or asked(o, low)) then
      C.violation("a header line %s was sent that was not asked for",
        C.show(h[1] .. (h[2] and ": " .. h[2] or "")))
    end
    got[low] = got[low] or {}
    table.insert(got[low], h[2])
  end
  for low, values in pairs(want) do
    local expect = {}
    for i, v in ipairs(values) do expect[i] = trim(v) end
    local g = got[low] or {}
    if table.concat(expect, "\0") ~= table.concat(g, "\0") or
      #expect ~= #g then
      C.violation("header %s sent as %s, asked %s", low, C.show(g),
        C.show(expect))
    end
  end
  -- HEAD sends no body, even one given.
  if req.body ~= (o.body or "") and not (method == "HEAD" and req.body == "")
  then
    C.violation("body %s, asked %s", C.show(req.body), C.show(o.body))
  end
end

local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" ..
  "Connection: close\r\n\r\nOK"

-------------------------------------------------------------------- run

return function(data)
  local R = C.reader(data)
  local received = {}
  local server = C.listen(function(conn)
    local ok, req = pcall(read_request, conn)
    if ok then
      received[#received + 1] = req
      pcall(conn.write, conn, RESPONSE)
    end
  end)
  local base = ("http://127.0.0.1:%d/p"):format(server.port)
  local o = options(R, base)
  C.note("options", o)
  local is_valid, want = valid(o)
  local ok, r = pcall(http.request, o)
  if not is_valid then
    if ok then C.violation("an invalid request was made: %s", C.show(o)) end
    local msg = C.check_error(r, "http.request")
    if not msg:find("^http%.request: ") then
      C.violation("an error that does not name http.request: %s",
        C.show(msg))
    end
    if #received > 0 then C.violation("an invalid request was sent") end
  elseif ok then
    if #received ~= 1 then
      C.violation("%d requests received for one", #received)
    end
    check_request(received[1], o, want)
    local body = r.body
    if o.stream then
      local parts = {}
      for chunk in r.read, r do parts[#parts + 1] = chunk end
      body = table.concat(parts)
    end
    local head = (o.method or "") == "HEAD"
    if r.status ~= 200 or body ~= (head and "" or "OK") then
      C.violation("response %s %s", C.show(r.status), C.show(body))
    end
  else
    -- A valid request may still fail: its deadline passed, the body
    -- passed max_body, or curl refused the URL.
    local e = r
    if not C.is_weft_error(e) or not (e.kind == "timeout" or
      e.code == "FILESIZE_EXCEEDED" or e.code == "URL_MALFORMAT") then
      C.violation("a valid request failed: %s", C.show(e.message or e))
    end
    for _, req in ipairs(received) do check_request(req, o, want) end
  end
  server:close({ cancel = true })
end
