-- echo.lua - a TCP server and its clients in one script: each connection
-- is handled in a task of its own. Run it with: weft examples/echo.lua
local tcp = weft.tcp

local srv
srv = tcp.listen("127.0.0.1", 0, function(conn)
  for line in conn:lines() do
    if line == "shutdown" then srv:close() break end
    conn:write(line:upper(), "\n")
  end
end)
print("listening on port " .. srv.port)

local function client(i)
  local conn = tcp.connect("127.0.0.1", srv.port)
  local replies = {}
  for k = 1, 3 do
    conn:write(("client %d says %d\n"):format(i, k))
    replies[k] = conn:read()
  end
  conn:close()
  return table.concat(replies, " / ")
end

weft.spawn(function()
  -- Ten clients at once, three round trips each.
  local fns = {}
  for i = 1, 10 do fns[i] = function() return client(i) end end
  local replies = weft.all(fns)
  print(replies[10])
  print(#replies .. " clients served")

  -- A read that waits too long is given up; the connection stays usable.
  local conn = tcp.connect("127.0.0.1", srv.port)
  local ok, err = pcall(weft.timeout, 50, function() return conn:read() end)
  print(ok, err)
  conn:write("shutdown\n")
  conn:close()
end)

srv:wait() -- until a client asks the server to shut down
print("server closed")

-- expect: listening on port [0-9]+
-- expect: CLIENT 10 SAYS 1 / CLIENT 10 SAYS 2 / CLIENT 10 SAYS 3
-- expect: 10 clients served
-- expect: false.weft.timeout: timed out after 50 ms
-- expect: server closed
