-- crawler.lua - a small web crawler: fetches N pages with at most K
-- requests in flight, writes each body to a file, prints a summary.
-- Run it with: weft examples/crawler.lua BASE_URL [N] [K]
--
-- It starts at BASE_URL/page/1 and follows the links it finds (lines that
-- are a path, as tests/http_server.py's /page/I pages have), breadth
-- first, until it has seen N pages. Every page is a task of one group; a
-- semaphore keeps K of them in a request at a time, whatever the number
-- of tasks. The test suite runs it against tests/http_server.py.
--
-- expect: fetched 100 pages, [0-9]+ bytes, 0 failed
-- expect: at most [1-8] requests in flight \(limit 8\)
-- expect: verified 100 files

local base = assert(arg[1], "usage: crawler.lua BASE_URL [N] [K]")
local N = math.floor(tonumber(arg[2] or 100))
local K = math.floor(tonumber(arg[3] or 8))
local http, fs = weft.http, weft.fs

local dir = os.tmpname()                 -- a fresh directory for the pages
os.remove(dir)
fs.mkdir(dir)

local limit = weft.semaphore(K)
local seen, queued = {}, 0               -- path -> file name
local written = {}                       -- the same, once it is written
local fetched, failed, bytes = 0, 0, 0
local in_flight, peak = 0, 0
local started = weft.now()

local function file_for(path)
  return dir .. "/" .. path:gsub("^/", ""):gsub("/", "_") .. ".html"
end

local function fetch(path)
  in_flight = in_flight + 1
  peak = math.max(peak, in_flight)
  local ok, res = pcall(http.get, base .. path, { timeout_ms = 10000 })
  in_flight = in_flight - 1
  return ok, res
end

weft.group(function(g)
  local function visit(path)
    local ok, res = limit:with(fetch, path)   -- at most K requests at once
    if not ok or res.status ~= 200 then
      failed = failed + 1
      print("failed: " .. path .. ": "
        .. (ok and ("status " .. res.status) or tostring(res)))
      return
    end
    fs.write(seen[path], res.body)
    written[path] = seen[path]
    fetched = fetched + 1
    bytes = bytes + #res.body
    for link in res.body:gmatch("\n(/[%w/_.-]+)") do
      if not seen[link] and queued < N then
        queued = queued + 1
        seen[link] = file_for(link)
        g:spawn(visit, link)
      end
    end
  end
  queued = 1
  seen["/page/1"] = file_for("/page/1")
  g:spawn(visit, "/page/1")
end)

print(("fetched %d pages, %d bytes, %d failed, in %d ms"):format(fetched,
  bytes, failed, weft.now() - started))
print(("at most %d requests in flight (limit %d)"):format(peak, K))

-- Every page is in its file; then the directory goes.
local verified = 0
for path, file in pairs(written) do
  local body = fs.read(file)
  if body:match("^page (%d+)\n") == path:match("(%d+)$") then
    verified = verified + 1
  end
end
print(("verified %d files"):format(verified))
fs.remove(dir, { recursive = true })
