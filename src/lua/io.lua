-- io.lua - the script side of weft's I/O modules: argument checks and
-- the buffered file object of weft.fs, on top of the C primitives (fs.c).
-- Compiled into the module.
-- SPDX-License-Identifier: MIT
local weft, I, compat = ...
local type, error, pcall, setmetatable = type, error, pcall, setmetatable
local tostring, select, mtype = tostring, select, compat.mtype
local pack, unpack = compat.pack, compat.unpack
local sfind, ssub, concat = string.find, string.sub, table.concat

local CHUNK = 64 * 1024

local function argerr(fname, what, expected, v)
  error(("%s: %s must be %s, got %s"):format(fname, what, expected,
    type(v)), 4)
end

local function check_str(fname, what, v)
  if type(v) ~= "string" then argerr(fname, what, "a string", v) end
end

-- A path: a string without "\0" (the system would cut it there).
local function check_path(fname, what, v)
  if type(v) ~= "string" then argerr(fname, what, "a string", v) end
  if sfind(v, "\0", 1, true) then
    error(("%s: %s must not contain \"\\0\""):format(fname, what), 3)
  end
end

-- opts.recursive of mkdir and remove: nil or a table.
local function recursive(fname, opts)
  if opts == nil then return false end
  if type(opts) ~= "table" then argerr(fname, "opts", "a table or nil", opts) end
  return opts.recursive == true
end

------------------------------------------------------------------- weft.fs

local fs = {}
weft.fs = fs

function fs.read(path)
  check_path("fs.read", "path", path)
  return I.fs_read(path)
end

function fs.write(path, data)
  check_path("fs.write", "path", path)
  check_str("fs.write", "data", data)
  I.fs_write(path, data, false)
end

function fs.append(path, data)
  check_path("fs.append", "path", path)
  check_str("fs.append", "data", data)
  I.fs_append(path, data, true)
end

function fs.stat(path)
  check_path("fs.stat", "path", path)
  return I.fs_stat(path)
end

function fs.exists(path)
  check_path("fs.exists", "path", path)
  return I.fs_exists(path)
end

function fs.list(path)
  check_path("fs.list", "path", path)
  return I.fs_list(path)
end

function fs.mkdir(path, opts)
  check_path("fs.mkdir", "path", path)
  I.fs_mkdir(path, recursive("fs.mkdir", opts))
end

function fs.remove(path, opts)
  check_path("fs.remove", "path", path)
  I.fs_remove(path, recursive("fs.remove", opts))
end

function fs.rename(from, to)
  check_path("fs.rename", "from", from)
  check_path("fs.rename", "to", to)
  I.fs_rename(from, to)
end

-- About File: a handle (the C descriptor, closed when the last job using
-- it ends) with a read buffer: buf holds bytes read ahead, pos the first
-- unread one. Operations on one file run one at a time; busy guards it.
-- files is the set of the File objects made here: a method checks its
-- self there (File is protected, so getmetatable(f) gives its name).
local File = {__name = "weft.File", __metatable = "weft.File"}
File.__index = File
local files = setmetatable({}, {__mode = "k"})

local function new_file(h, path)
  local f = setmetatable({h = h, path = path, buf = "", pos = 1}, File)
  files[f] = true
  return f
end

-- Runs a primitive on the open handle.
local function op(self, fname, prim, ...)
  if I.fs_hclosed(self.h) then error(fname .. ": the file is closed", 0) end
  return prim(self.h, ...)
end

-- Runs method body(self, ...) as the file's one operation at a time: a
-- second task using the file meanwhile gets an error, not mixed data.
local function exclusive(fname, body)
  return function(self, ...)
    if not files[self] then
      error(fname .. ": not a file (use f:" .. fname:match("%w+$") .. ")", 2)
    end
    if I.fs_hclosed(self.h) then error(fname .. ": the file is closed", 2) end
    if self.busy then
      error(fname .. ": the file is in use by another task", 2)
    end
    self.busy = true
    local r = pack(pcall(body, self, ...))
    self.busy = false
    if not r[1] then
      -- Cancelled mid-operation: its job may still run on the descriptor
      -- and the position is unknown, so the file is closed.
      if weft.is_cancelled(r[2]) or weft.is_timeout(r[2]) then
        I.fs_hclose(self.h)
      end
      error(r[2], 0)
    end
    return unpack(r, 2, r.n)
  end
end

local function unread(self) return #self.buf - self.pos + 1 end

-- Reads one more chunk into the buffer; false at the end of the file.
local function fill(self, fname, n)
  local chunk = op(self, fname, I.fs_hread, n or CHUNK)
  if chunk == nil then return false end
  if self.pos > #self.buf then
    self.buf = chunk
  else
    self.buf = ssub(self.buf, self.pos) .. chunk
  end
  self.pos = 1
  return true
end

local function take(self, n)
  local s = ssub(self.buf, self.pos, self.pos + n - 1)
  self.pos = self.pos + #s
  return s
end

local function read_line(self, keep)
  local from = self.pos
  while true do
    local e = sfind(self.buf, "\n", from, true)
    if e then
      local line = ssub(self.buf, self.pos, keep and e or e - 1)
      self.pos = e + 1
      return line
    end
    from = #self.buf - self.pos + 2 -- the buffer is rebased by fill
    if not fill(self, "file:read") then
      if unread(self) == 0 then return nil end
      return take(self, unread(self))
    end
  end
end

local function read_one(self, fmt)
  if mtype(fmt) == "integer" then
    if fmt < 0 then error("file:read: count must be >= 0, got " .. fmt, 0) end
    while unread(self) < fmt do
      if not fill(self, "file:read", fmt - unread(self) > CHUNK
          and fmt - unread(self) or CHUNK) then
        break
      end
    end
    if unread(self) == 0 and (fmt > 0 or not fill(self, "file:read", 1)) then
      return nil -- at the end, as Lua's read(0) there
    end
    return take(self, fmt)
  end
  if type(fmt) ~= "string" then
    error("file:read: format must be a count, \"l\", \"L\" or \"a\", got "
      .. type(fmt), 0)
  end
  fmt = fmt:gsub("^%*", "")
  if fmt == "l" or fmt == "L" then return read_line(self, fmt == "L") end
  if fmt == "a" then
    while fill(self, "file:read") do end
    return take(self, unread(self))
  end
  error(("file:read: bad format %q (use a count, \"l\", \"L\" or \"a\")")
    :format(fmt), 0)
end

-- f:read([fmt...]): as Lua's file:read; one value per format.
local function read(self, ...)
  local n = select("#", ...)
  if n <= 1 then return read_one(self, (...) or "l") end
  local out = {}
  for i = 1, n do
    out[i] = read_one(self, (select(i, ...)))
    if out[i] == nil then return unpack(out, 1, i) end
  end
  return unpack(out, 1, n)
end
File.read = exclusive("file:read", read)

-- Gives back the bytes read ahead, so the descriptor's offset is the
-- script's position again.
local function drop_buffer(self, fname)
  local n = unread(self)
  self.buf, self.pos = "", 1
  if n > 0 then op(self, fname, I.fs_hseek, 1, -n) end
end

File.write = exclusive("file:write", function(self, ...)
  local parts = {...}
  for i = 1, select("#", ...) do
    local v = parts[i]
    if type(v) == "number" then
      parts[i] = tostring(v)
    elseif type(v) ~= "string" then
      error(("file:write: argument %d must be a string or number, got %s")
        :format(i, type(v)), 0)
    end
  end
  drop_buffer(self, "file:write")
  op(self, "file:write", I.fs_hwrite, concat(parts))
  return self
end)

local WHENCE = {set = 0, cur = 1, ["end"] = 2}

File.seek = exclusive("file:seek", function(self, whence, offset)
  whence = whence or "cur"
  offset = offset or 0
  if WHENCE[whence] == nil then
    error(("file:seek: whence must be \"set\", \"cur\" or \"end\", got %s")
      :format(tostring(whence)), 0)
  end
  if mtype(offset) ~= "integer" then
    error("file:seek: offset must be an integer, got " .. type(offset), 0)
  end
  if whence == "cur" then offset = offset - unread(self) end
  self.buf, self.pos = "", 1
  return op(self, "file:seek", I.fs_hseek, WHENCE[whence], offset)
end)

function File:lines(fmt)
  fmt = fmt or "l"
  return function() return self:read(fmt) end
end

function File:close()
  I.fs_hclose(self.h)
  self.buf, self.pos = "", 1
  return true
end

function File:closed() return I.fs_hclosed(self.h) end

File.__close = File.close

function File:__tostring()
  return ("weft.File (%s%s)"):format(self.path,
    I.fs_hclosed(self.h) and ", closed" or "")
end

local function check_mode(fname, mode)
  if mode == nil then return "r" end
  check_str(fname, "mode", mode)
  if not I.fs_valid_mode(mode) then
    error(("%s: bad mode %q (use r, w, a, r+, w+ or a+)"):format(fname, mode),
      3)
  end
  return mode
end

-- The handle is made first and opened by its job (see FileH in fs.c).
function fs.open(path, mode)
  check_path("fs.open", "path", path)
  mode = check_mode("fs.open", mode)
  local h = I.fs_handle(path)
  I.fs_open(h, mode)
  return new_file(h, path)
end

-- for line in fs.lines(path) do ... end: reads in chunks; the file closes
-- at the end, when the loop is left early (the fourth value is a closing
-- value) and when the task ends.
function fs.lines(path)
  check_path("fs.lines", "path", path)
  local h = I.fs_handle(path)
  I.fs_lines(h, "r")
  local f = new_file(h, path)
  return function()
    local line = read_line(f)
    if line == nil then f:close() end
    return line
  end, nil, nil, f
end

------------------------------------------------- weft.process, weft.dns

weft.process = {exec = I.process_exec}
weft.dns = {resolve = I.dns_resolve}
