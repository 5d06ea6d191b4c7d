-- A weft metamethod or method given what is not its own userdata crashed:
-- getmetatable(weft.channel(1)).__gc(io.stdout), the same for groups,
-- servers, connections and the rest. Each now checks its userdata by a
-- tag and its size, so a foreign userdata given a weft metatable with
-- debug.setmetatable is refused too; getmetatable gives only the name.
-- expect: checked [1-9][0-9]* metatables
-- reject: Segmentation|AddressSanitizer|runtime error
local weft = require "weft"

-- One object of each kind (kept alive to the end).
local srv = weft.tcp.listen("127.0.0.1", 0, function(c) c:read() end)
local conn = weft.tcp.connect("127.0.0.1", srv.port)
local path = os.tmpname()
local file = weft.fs.open(path, "w")
local group
local objects = {weft.channel(1), weft.semaphore(1), weft.future(),
  weft.spawn(function() end), conn, srv, file.h}
weft.group(function(g) group = g end)
objects[#objects + 1] = group

local hostile = {1, 0/0, math.huge, -1, "x", {}, print, io.stdout,
  coroutine.create(function() end), true}
for _, o in ipairs(objects) do hostile[#hostile + 1] = o end

local function try(f, ...)
  local ok, err = pcall(f, ...)
  assert(ok or type(err) == "string" or type(err) == "table",
    "non-string error " .. tostring(err))
end

-- Every metatable weft registers, with the C functions in it and in its
-- __index table.
local checked = 0
for name, mt in pairs(debug.getregistry()) do
  if type(name) == "string" and name:match("^weft%.") and type(mt) == "table"
      and name ~= "weft.state" then
    local fns = {}
    local function add(v)
      if type(v) == "function" and debug.getinfo(v, "S").what == "C" then
        fns[#fns + 1] = v
      end
    end
    for _, v in pairs(mt) do add(v) end
    if type(mt.__index) == "table" then
      for _, v in pairs(mt.__index) do add(v) end
    end
    -- Not its own objects (a method may wait on one): by name, since a
    -- task's metatable and a promise's have one.
    local own = {}
    for _, o in ipairs(objects) do
      if debug.getmetatable(o).__name == mt.__name then own[o] = true end
    end
    for _, f in ipairs(fns) do
      try(f)
      for _, a in ipairs(hostile) do
        if not own[a] then try(f, a, a) end
      end
    end
    -- A foreign userdata given this metatable.
    local saved = debug.getmetatable(io.stdout)
    debug.setmetatable(io.stdout, mt)
    for _, f in ipairs(fns) do try(f, io.stdout, 1) end
    try(tostring, io.stdout)
    debug.setmetatable(io.stdout, saved)
    checked = checked + 1
  end
end
collectgarbage()
collectgarbage()
assert(checked >= 8, "only " .. checked .. " metatables")
-- Plain Lua cannot reach them.
assert(getmetatable(weft.channel(1)) == "weft.Channel")
assert(getmetatable(weft.future()) == "weft.Future")
assert(getmetatable(conn) == "weft.tcp.Conn")
file:close()
os.remove(path)
conn:close()
srv:close()
print(("checked %d metatables"):format(checked))
