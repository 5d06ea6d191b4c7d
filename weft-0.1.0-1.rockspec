-- luarocks make (in this directory) builds and installs the Lua module for
-- the Lua luarocks runs for (luarocks --lua-version 5.1 make: 5.1, whose
-- module LuaJIT loads too). CMake builds it against that Lua's headers
-- alone (WEFT_LUA_INCDIR); libuv and libcurl's headers come from Debian
-- (libuv1-dev, libcurl4-openssl-dev). The library, headers and CLI are
-- `make install`'s.
rockspec_format = "3.0"
package = "weft"
version = "0.1.0-1"
source = {
  url = "."
}
description = {
  summary = "async/await for embedded Lua: tasks, futures, I/O on libuv",
  detailed = [[
weft lets Lua scripts run thousands of concurrent tasks that await
timers, files, sockets, HTTP, processes and a host's own slow functions
without blocking the thread. Lua 5.4, 5.3, 5.1 and LuaJIT.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
external_dependencies = {
  LIBUV = { header = "uv.h", library = "uv" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    WEFT_LUA_INCDIR = "$(LUA_INCDIR)",
    WEFT_CMOD_DIR = "lib",
  },
}
