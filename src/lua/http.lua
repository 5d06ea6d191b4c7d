-- http.lua - the script side of weft.http: argument checks, get and post,
-- and the streamed response, on top of the C primitives (http.c).
-- Compiled into the module.
-- SPDX-License-Identifier: MIT
local weft, I, compat = ...
local type, error, pairs, ipairs, setmetatable = type, error, pairs, ipairs,
  setmetatable
local tostring, getmetatable, mtype = tostring, getmetatable, compat.mtype
local huge = math.huge
local sfind, slower, format = string.find, string.lower, string.format

local http = {}
weft.http = http

local function bad(fname, what, expected, v)
  error(format("%s: %s must be %s, got %s", fname, what, expected, type(v)),
    0)
end

-- What request{} takes; get and post take the same minus these.
local OPTIONS = {
  method = true, url = true, headers = true, body = true, timeout_ms = true,
  follow_redirects = true, max_body = true, ca_file = true, insecure = true,
  stream = true,
}
local NOT_IN_OPTS = { url = true, method = true, body = true }

-- A token (RFC 9110): what a method or a header name may be made of.
local function is_token(s)
  return sfind(s, "^[%w!#$%%&'*+.^_`|~-]+$") ~= nil
end

local function check_value(fname, name, v)
  if type(v) == "number" then v = tostring(v) end
  if type(v) ~= "string" then
    bad(fname, "headers[\"" .. name .. "\"]",
      "a string, a number, a list of strings or false", v)
  end
  -- No control character but tab (RFC 9110 field values): a CR or LF
  -- would start another line, a NUL cut it, and a value of only form
  -- feeds or vertical tabs would be taken by curl for an empty one,
  -- which removes the header.
  if sfind(v, "[%z\1-\8\10-\31\127]") then
    error(format("%s: headers[%q] must not contain a line break, a NUL or "
      .. "another control character", fname, name), 0)
  end
  return v
end

-- headers {name = value | {values...} | false} -> {"Name: value", ...}.
-- false removes a header curl would send; "" sends it empty. Unless the
-- script sets Expect, none is sent (curl's "Expect: 100-continue" costs a
-- round trip, or a second with servers that ignore it).
-- The lines without headers, shared: http.c only reads them.
local NO_HEADERS = { "Expect:" }

local function header_lines(fname, headers)
  local out, expect = {}, false
  if headers == nil then return NO_HEADERS end
  if type(headers) ~= "table" then
    bad(fname, "opts.headers", "a table or nil", headers)
  end
  for name, v in pairs(headers) do
    if type(name) ~= "string" or not is_token(name) then
      error(format("%s: bad header name %s", fname,
        type(name) == "string" and format("%q", name) or
        "(a " .. type(name) .. ")"), 0)
    end
    if slower(name) == "expect" then expect = true end
    if v == false then
      out[#out + 1] = name .. ":"
    elseif type(v) == "table" then
      for _, item in ipairs(v) do
        item = check_value(fname, name, item)
        out[#out + 1] = item == "" and name .. ";" or name .. ": " .. item
      end
    else
      v = check_value(fname, name, v)
      out[#out + 1] = v == "" and name .. ";" or name .. ": " .. v
    end
  end
  if not expect then out[#out + 1] = "Expect:" end
  return out
end

local function opt_type(fname, o, key, ty)
  local v = o[key]
  if v ~= nil and type(v) ~= ty then
    bad(fname, "opts." .. key, "a " .. ty .. " or nil", v)
  end
  return v
end

local function opt_int(fname, o, key, min)
  local v = o[key]
  if v ~= nil and (mtype(v) ~= "integer" or v < min) then
    error(format("%s: opts.%s must be an integer >= %d, got %s", fname, key,
      min, mtype(v) and tostring(v) or type(v)), 0)
  end
  return v
end

-- A buffered body is at most this long unless opts.max_body says
-- otherwise: a server that sends without end must not fill memory (the
-- body is held twice at its end: the buffer and the string made of it).
-- 64 MiB is far above the pages and API answers scripts buffer, and a
-- larger download is better streamed (stream = true) than held whole.
local MAX_BODY = 64 * 1024 * 1024

-- opts.max_body: nil (MAX_BODY for a buffered body, no limit for a
-- stream, which the script drains as it goes), an integer >= 0, or
-- math.huge (no limit, which http.c takes as nil).
local function max_body(fname, o)
  local v = o.max_body
  if v == huge then return nil end
  if v ~= nil and (mtype(v) ~= "integer" or v < 0) then
    error(format("%s: opts.max_body must be an integer >= 0 or math.huge, "
      .. "got %s", fname, mtype(v) and tostring(v) or type(v)), 0)
  end
  if v == nil and not o.stream then return MAX_BODY end
  return v
end

-- The checked, normalized request of a call: what http.c reads.
local function normalize(fname, o, url, method, body)
  for k in pairs(o) do
    if not OPTIONS[k] then
      error(format("%s: unknown option %s", fname, tostring(k)), 0)
    end
  end
  if type(url) ~= "string" then bad(fname, "url", "a string", url) end
  if not sfind(url, "^[Hh][Tt][Tt][Pp][Ss]?://") then
    error(format("%s: url must be an http:// or https:// URL, got %q",
      fname, url), 0)
  end
  if sfind(url, "%z") then -- curl takes C strings: it would cut the URL
    error(format("%s: url must not contain a NUL, got %q", fname, url), 0)
  end
  if body ~= nil and type(body) ~= "string" then
    bad(fname, "body", "a string or nil", body)
  end
  if method == nil then method = body and "POST" or "GET" end
  if type(method) ~= "string" or not is_token(method) then
    error(format("%s: method must be an HTTP method name, got %s", fname,
      type(method) == "string" and format("%q", method) or type(method)), 0)
  end
  local follow = opt_type(fname, o, "follow_redirects", "boolean")
  return {
    url = url, method = method, body = body,
    headers = header_lines(fname, o.headers),
    timeout_ms = opt_int(fname, o, "timeout_ms", 1),
    max_body = max_body(fname, o),
    follow_redirects = follow ~= false,
    ca_file = opt_type(fname, o, "ca_file", "string"),
    insecure = opt_type(fname, o, "insecure", "boolean"),
    stream = opt_type(fname, o, "stream", "boolean"),
  }
end

-- About Response: a streamed response: status, headers and url, and _h,
-- the transfer (closed at the end of the body, by close, and when the
-- task that made the request ends).
local Response = { __name = "weft.http.Response" }
Response.__index = Response

local function handle(self, fname)
  if type(self) ~= "table" or getmetatable(self) ~= Response then
    error(fname .. ": not a streamed response (use res:"
      .. fname:match("%w+$") .. "())", 0)
  end
  return self._h
end

function Response:read() return I.http_read(handle(self, "response:read")) end

function Response:close() I.http_close(handle(self, "response:close")) end

Response.__close = Response.close

local function request(fname, o, url, method, body)
  local r = I.http_request(fname, normalize(fname, o, url, method, body))
  if r._h then setmetatable(r, Response) end
  return r
end

local NO_OPTS = {} -- shared: normalize only reads it

local function opts_of(fname, opts)
  if opts == nil then return NO_OPTS end
  if type(opts) ~= "table" then bad(fname, "opts", "a table or nil", opts) end
  for k in pairs(NOT_IN_OPTS) do
    if opts[k] ~= nil then
      error(format("%s: opts.%s is not taken here (use http.request)", fname,
        k), 0)
    end
  end
  return opts
end

function http.get(url, opts)
  -- The common case, http.get(url), without a table of options: the C
  -- side makes the defaults, or returns nothing for a URL that needs the
  -- checks below.
  if opts == nil and type(url) == "string" then
    local r = I.http_request("http.get", url, MAX_BODY)
    if r then return r end
  end
  return request("http.get", opts_of("http.get", opts), url, "GET")
end

function http.post(url, body, opts)
  if type(body) ~= "string" then bad("http.post", "body", "a string", body) end
  return request("http.post", opts_of("http.post", opts), url, "POST", body)
end

function http.request(o)
  if type(o) ~= "table" then
    bad("http.request", "its argument", "a table", o)
  end
  return request("http.request", o, o.url, o.method, o.body)
end
