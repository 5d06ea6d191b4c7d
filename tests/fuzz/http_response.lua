-- http_response.lua - fuzz target: weft.http's handling of responses. A
-- local server (a weft.tcp handler) reads each request and answers with
-- bytes made from the input, in chunks, then closes the connection.
--   raw: the input's bytes as they are. Whatever they are, http.get must
--        return a response whose fields are consistent (an integer
--        status, lower-case header names with string values, the URL,
--        a body within max_body) or raise a weft error of kind "io" or
--        "timeout" with a code and the function's name.
--   built: a well-formed response built from the input: status, reason,
--        headers (repeated, folded, with spaces around values), a body
--        framed by Content-Length, chunked (extensions, trailers) or by
--        the close; a 1xx before it, a redirect loop. The result must
--        be exactly it: status, body (streamed or not), every header as
--        the docs say they are joined, nothing more; or max_body's
--        FILESIZE_EXCEEDED; or, for a followed loop, TOO_MANY_REDIRECTS.
-- SPDX-License-Identifier: MIT
local weft, C = ...
local http = weft.http

-- Splits s into chunks of size n (0: one chunk).
local function chunks_of(s, n)
  local out, pos = {}, 1
  if n == 0 then n = #s end
  while pos <= #s do
    out[#out + 1] = s:sub(pos, pos + n - 1)
    pos = pos + n
  end
  return out
end

------------------------------------------------------ building responses

local NAMES = { "X-A", "x-a", "X-B", "Set-Cookie", "set-cookie",
  "Content-Type", "Server", "X-Empty", "ETag", "Vary" }
local STATUSES = { 200, 200, 201, 204, 206, 304, 400, 404, 418, 500, 503,
  299, 599, 301, 302, 303, 307, 308 }
local REDIRECTS = { [301] = true, [302] = true, [303] = true, [307] = true,
  [308] = true }

-- A header value's text: bytes that may stand in a field (visible ASCII,
-- spaces and tabs inside, obs-text), never CR, LF or NUL.
local function field_text(R, n)
  local b = {}
  for i = 1, n do
    local c = R.byte()
    if c < 0x20 or c == 0x7f then c = (c % 2 == 0) and 0x20 or 0x09 end
    b[i] = string.char(c)
  end
  return table.concat(b)
end

local function trim(s) return (s:gsub("^[ \t]+", ""):gsub("[ \t]+$", "")) end

local function name_of(R)
  if R.byte() % 4 == 0 then
    local s = R.bytes(R.byte() % 6 + 1):gsub("[^%w]", "z")
    return "X-" .. s
  end
  return R.pick(NAMES)
end

-- One header: its lines and its value as weft must give it (folded
-- pieces trimmed and joined with one space, empty ones dropped).
local function header(R)
  local name, pieces, lines = name_of(R), {}, {}
  local first = field_text(R, R.byte() % 12)
  lines[1] = name .. ":" .. (R.byte() % 2 == 0 and " " or "") .. first
  pieces[1] = trim(first)
  for _ = 1, (R.byte() % 8 == 0) and R.byte() % 3 + 1 or 0 do
    local more = field_text(R, R.byte() % 6)
    lines[#lines + 1] = (R.byte() % 2 == 0 and " " or "\t") .. more
    pieces[#pieces + 1] = trim(more)
  end
  local kept = {}
  for _, p in ipairs(pieces) do if p ~= "" then kept[#kept + 1] = p end end
  return name, table.concat(kept, " "), table.concat(lines, "\r\n")
end

local function chunked(R, body)
  local out, pos = {}, 1
  while pos <= #body do
    local n = R.byte() % 40 + 1
    local ext = R.byte() % 8 == 0 and ";ext=1" or ""
    out[#out + 1] = ("%x%s\r\n%s\r\n"):format(math.min(n, #body - pos + 1),
      ext, body:sub(pos, pos + n - 1))
    pos = pos + n
  end
  out[#out + 1] = "0\r\n"
  if R.byte() % 4 == 0 then out[#out + 1] = "X-Trailer: t\r\n" end
  out[#out + 1] = "\r\n"
  return table.concat(out)
end

-- A response and what http.get must make of it.
local function build(R)
  local want = { status = R.pick(STATUSES), headers = {}, order = {} }
  local lines = {}
  local function add(name, value, text)
    local k = name:lower()
    if want.headers[k] == nil then
      want.headers[k] = {}
      want.order[#want.order + 1] = k
    end
    local v = want.headers[k]
    v[#v + 1] = value
    lines[#lines + 1] = text or (name .. ": " .. value)
  end
  local version = R.byte() % 5 == 0 and "HTTP/1.0" or "HTTP/1.1"
  for _ = 1, R.byte() % 6 do add(header(R)) end
  local body = R.bytes(R.byte() % 2 == 0 and R.byte() or R.u16() % 3000)
  if want.status == 204 or want.status == 304 then body = "" end
  want.body = body
  local framing = R.byte() % 3
  if version == "HTTP/1.0" and framing == 1 then framing = 0 end
  if want.status == 204 or want.status == 304 then framing = 3 end
  local payload = body
  if framing == 0 then
    add("Content-Length", tostring(#body))
  elseif framing == 1 then
    add("Transfer-Encoding", "chunked")
    payload = chunked(R, body)
  elseif framing == 2 and version == "HTTP/1.1" then
    add("Connection", "close") -- the body ends with the connection
  end
  if R.byte() % 4 == 0 and framing ~= 2 then add("Connection", "close") end
  want.follow = R.byte() % 2 == 0
  if REDIRECTS[want.status] and R.byte() % 2 == 0 then
    add("Location", "/again")
    want.loop = want.follow
  end
  local head = ("%s %d %s\r\n"):format(version, want.status,
    field_text(R, R.byte() % 8))
  if R.byte() % 8 == 0 then head = "HTTP/1.1 100 Continue\r\n\r\n" .. head end
  lines[#lines + 1] = ""
  want.response = head .. table.concat(lines, "\r\n") .. "\r\n" .. payload
  return want
end

------------------------------------------------------------------ checks

local function is_code(s)
  return type(s) == "string" and s:find("^[%u%d_]+$") ~= nil
end

-- A failure as the docs describe them.
local function check_failure(e, url)
  if not C.is_weft_error(e) or (e.kind ~= "io" and e.kind ~= "timeout") then
    C.violation("http.get raised %s, not an io or timeout error", C.show(e))
  end
  if e.kind == "io" and (not is_code(e.code) or e.name ~= "http.get") then
    C.violation("an io error without code or name: %s", C.show(e))
  end
  if e.message:sub(1, #url + 10) ~= "http.get: " .. url then
    C.violation("an error that does not name http.get and the URL: %s",
      C.show(e.message))
  end
end

-- Reads a stream to its end: the body, or nil and the error.
local function drain(r)
  local parts = {}
  while true do
    local ok, chunk = pcall(r.read, r)
    if not ok then return nil, chunk end
    if chunk == nil then break end
    if type(chunk) ~= "string" or chunk == "" then
      C.violation("response:read gave %s", C.show(chunk))
    end
    parts[#parts + 1] = chunk
  end
  if r:read() ~= nil then C.violation("a read after the end gave data") end
  return table.concat(parts)
end

-- The fields any response must have; returns its body.
local function check_shape(r, url, opts)
  if math.type(r.status) ~= "integer" or r.status < 0 or r.status > 999 then
    C.violation("status %s", C.show(r.status))
  end
  if type(r.headers) ~= "table" then C.violation("no headers table") end
  for k, v in pairs(r.headers) do
    if type(k) ~= "string" or k:find("%u") or type(v) ~= "string" then
      C.violation("a header %s = %s", C.show(k), C.show(v))
    end
  end
  if r.url ~= url then C.violation("url %s", C.show(r.url)) end
  for k in pairs(r) do
    if k ~= "status" and k ~= "headers" and k ~= "url" and k ~= "body" and
      k ~= "_h" then
      C.violation("a response field %s", C.show(k))
    end
  end
  local body, err = r.body, nil
  if opts.stream then
    if body ~= nil then C.violation("a stream with a body field") end
    body, err = drain(r)
    if body == nil then return nil, err end
  end
  if type(body) ~= "string" then C.violation("body %s", C.show(body)) end
  if opts.max_body and #body > opts.max_body then
    C.violation("a body of %d bytes passed max_body %d", #body,
      opts.max_body)
  end
  return body
end

local function check_built(want, ok, r, url, opts)
  local too_big = opts.max_body and #want.body > opts.max_body
  if want.loop then -- max_body holds for the bodies of redirects too
    local code = too_big and "FILESIZE_EXCEEDED" or "TOO_MANY_REDIRECTS"
    if ok or not C.is_weft_error(r) or
      (r.code ~= "TOO_MANY_REDIRECTS" and r.code ~= code) then
      C.violation("a redirect loop gave %s %s", ok, C.show(r))
    end
    return
  end
  if ok then
    local body, err = check_shape(r, url, opts)
    if body == nil then
      check_failure(err, url)
      if too_big and err.code == "FILESIZE_EXCEEDED" then return end
      C.violation("reading the stream failed: %s", C.show(err))
    end
    if too_big then C.violation("a body over max_body was returned") end
    if r.status ~= want.status then
      C.violation("status %d, sent %d", r.status, want.status)
    end
    if body ~= want.body then
      C.violation("body %s, sent %s", C.show(body), C.show(want.body))
    end
    for _, k in ipairs(want.order) do
      local sep = k == "set-cookie" and "\n" or ", "
      local v = table.concat(want.headers[k], sep)
      if r.headers[k] ~= v then
        C.violation("header %s is %s, sent %s", k, C.show(r.headers[k]),
          C.show(v))
      end
    end
    for k in pairs(r.headers) do
      if not want.headers[k] then C.violation("header %s not sent", k) end
    end
    return
  end
  check_failure(r, url)
  if too_big and r.code == "FILESIZE_EXCEEDED" then return end
  C.violation("a well-formed response failed: %s", C.show(r.message))
end

-------------------------------------------------------------------- run

return function(data)
  local R = C.reader(data)
  local raw = R.byte() % 3 == 0
  local opts = { stream = R.byte() % 3 == 0 or nil }
  local m = R.byte() % 8
  if m == 0 then opts.max_body = R.u16() % 2048 end
  if m == 1 then opts.max_body = math.huge end
  local size, want, response = R.byte() % 80, nil, nil
  if raw then
    response = R.rest()
    opts.follow_redirects = false -- a Location may name any host
  else
    want = build(R)
    response = want.response
    opts.follow_redirects = want.follow
  end
  C.note("response", { opts = opts, response = response, chunk = size })
  local chunks = chunks_of(response, size)
  local server = C.listen(function(conn)
    repeat
      local ok, line = pcall(conn.read, conn)
    until not ok or line == nil or line == "\r" or line == ""
    for _, chunk in ipairs(chunks) do
      if not pcall(conn.write, conn, chunk) then return end
      weft.yield()
    end
  end)
  local url = ("http://127.0.0.1:%d/p"):format(server.port)
  local ok, r = pcall(http.get, url, opts)
  if raw then
    if ok then
      local _, err = check_shape(r, url, opts)
      if err then check_failure(err, url) end
    else
      check_failure(r, url)
    end
  else
    check_built(want, ok, r, url, opts)
  end
  if ok and r._h then r:close() end
  server:close({ cancel = true })
end
