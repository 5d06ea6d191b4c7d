-- A task waiting to write or read on a connection whose stack slots a
-- script replaced (debug.setlocal) gives its turn back on the way out,
-- and the bytes of its write stay alive while libuv sends them: the
-- write's string was freed while still being sent (a use-after-free),
-- and a reader that died kept the turn, so every later read failed with
-- "another task is reading".
-- expect: writer: cancelled
-- expect: second read: hello
-- reject: AddressSanitizer
-- reject: another task

local gate, open = weft.future()
local srv = weft.tcp.listen("127.0.0.1", 0, function(c)
  gate:await()
  while c:read(65536) do end
end)
local conn = weft.tcp.connect("127.0.0.1", srv.port)

-- A writer stuck on 8 MiB, its connection slot emptied, then cancelled;
-- the collector runs and memory is reused before the peer reads.
local co
local w = weft.spawn(function()
  co = coroutine.running()
  conn:write(("x"):rep(8 * 1024 * 1024) .. "y")
end)
repeat weft.sleep(1) until co and debug.getinfo(co, 0, "S").what == "C"
debug.setlocal(co, 0, 1, nil)
w:cancel()
local ok, e = pcall(w.await, w)
print("writer: " .. (weft.is_cancelled(e) and "cancelled" or tostring(e)))
collectgarbage()
collectgarbage()
local junk = {}
for i = 1, 200 do junk[i] = ("z"):rep(50000) .. i end
open(true)
weft.sleep(50)

-- A reader whose mode slot is replaced dies; a later read works.
local said, say = weft.future()
local srv2 = weft.tcp.listen("127.0.0.1", 0, function(c)
  said:await()
  c:write("hello\n")
  weft.sleep(100)
end)
local conn2 = weft.tcp.connect("127.0.0.1", srv2.port)
co = nil
local r = weft.spawn(function()
  co = coroutine.running()
  return conn2:read()
end)
repeat weft.sleep(1) until co and debug.getinfo(co, 0, "S").what == "C"
debug.setlocal(co, 0, 2, 99)
say(true)
print("reader:", select(2, pcall(r.await, r)))
r, co = nil, nil
for _ = 1, 3 do collectgarbage() end
print("second read: " .. tostring(conn2:read()))
conn:close()
conn2:close()
srv:close()
srv2:close()
