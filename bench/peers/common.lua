-- common.lua - helpers shared by the Lua peer programs (Lua 5.4 and
-- LuaJIT): peak RSS, the one JSON result line of BENCH.md, the minstd
-- generator of W4 and the W6 file set.
-- SPDX-License-Identifier: MIT
local M = {}

-- Peak resident set size in KiB (VmHWM), as every implementation reads it.
function M.rss_kb(field)
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match((field or "VmHWM") .. ":%s*(%d+)")) or 0
end

local function num(v)
  if v == math.floor(v) and math.abs(v) < 2^53 then
    return string.format("%d", v)
  end
  return string.format("%.3f", v)
end

-- Prints the result line and exits 1 if the result is wrong. extra holds
-- more fields (numbers or strings), printed in key order.
function M.report(impl, workload, n, wall_ms, cpu_ms, ok, extra)
  local out = {
    string.format('{"impl":"%s","workload":"%s","n":%d,"wall_ms":%.3f,' ..
      '"ops_per_sec":%.1f,"cpu_ms":%.3f,"peak_rss_kb":%d', impl, workload,
      n, wall_ms, n / math.max(wall_ms, 1e-3) * 1000, cpu_ms, M.rss_kb())
  }
  local keys = {}
  for k in pairs(extra or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = extra[k]
    out[#out + 1] = type(v) == "number" and ('"%s":%s'):format(k, num(v))
      or ('"%s":"%s"'):format(k, tostring(v))
  end
  out[#out + 1] = '"ok":' .. tostring(ok) .. "}"
  io.write(table.concat(out, ","), "\n")
  io.stdout:flush()
  if not ok then os.exit(1) end
end

-- For a workload the implementation has no primitive for.
function M.na(impl, workload, reason)
  io.write(('{"impl":"%s","workload":"%s","na":"%s","ok":true}\n'):format(
    impl, workload, reason))
end

-- Park-Miller minstd, seed 42 (W4): returns the next delay in 0..999.
function M.minstd(seed)
  local x = seed or 42
  return function()
    x = x * 16807 % 2147483647
    return x % 1000
  end
end

-- W6: file i (0-based) of the set is dir/<i>, 4096 bytes of the byte
-- i % 251. Returns whether a read of file i gave the right content.
function M.file_ok(i, data)
  return #data == 4096 and data:byte(1) == i % 251
    and data:byte(4096) == i % 251
end

-- W7: the request, and a parser for one HTTP/1.1 response at the start of
-- buf: returns status, total length, body length, or nil if buf does not
-- hold a whole response yet.
M.REQUEST = "GET /body HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

function M.http_response(buf)
  local e = buf:find("\r\n\r\n", 1, true)
  if not e then return nil end
  local head = buf:sub(1, e)
  local len = tonumber(head:match("[Cc]ontent%-[Ll]ength:%s*(%d+)")) or 0
  if #buf < e + 3 + len then return nil end
  return tonumber(head:match("^HTTP/1%.%d (%d+)")), e + 3 + len, len
end

return M
