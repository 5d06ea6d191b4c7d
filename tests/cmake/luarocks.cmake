# luarocks make, as a user runs it in a copy of the source: builds and
# installs the module into a tree of its own for Lua 5.1, then LuaJIT and
# Lua 5.1 load it from there and run a task that waits inside a coroutine
# and a pcall. -DSOURCE=, -DWORK=, -DLUAROCKS=, -DLUAJIT=, -DLUA51=.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/src)
foreach(part CMakeLists.txt cmake include src docs LICENSE
             weft-0.1.0-1.rockspec)
  file(COPY ${SOURCE}/${part} DESTINATION ${WORK}/src)
endforeach()
execute_process(COMMAND ${LUAROCKS} --lua-version 5.1 make
                        --tree ${WORK}/tree
                WORKING_DIRECTORY ${WORK}/src RESULT_VARIABLE r
                OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT r EQUAL 0)
  message(FATAL_ERROR "luarocks make failed:\n${out}")
endif()
set(script "local weft = require 'weft'
print(weft.run(function()
  local gen = coroutine.wrap(function() weft.sleep(1) coroutine.yield('gen') end)
  local ok, v = pcall(function() weft.sleep(1) return 'pcall' end)
  return gen() .. ' ' .. v
end))")
foreach(lua ${LUAJIT} ${LUA51})
  execute_process(COMMAND ${CMAKE_COMMAND} -E env
                          "LUA_CPATH=${WORK}/tree/lib/lua/5.1/?.so"
                          ${lua} -e "${script}"
                  RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT r EQUAL 0 OR NOT out MATCHES "gen pcall")
    message(FATAL_ERROR "${lua} with the rock: ${out}")
  endif()
  message(STATUS "${lua}: ${out}")
endforeach()
message(STATUS "luarocks: the module serves LuaJIT and Lua 5.1")
