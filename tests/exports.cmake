# Checks the dynamic symbol tables (test abi/exports). LIB (libweft.so)
# may export only functions declared with WEFT_API in INCLUDE/weft*.h,
# named weft_* (never weft__*) or luaopen_weft[_sub]; MODULE (the Lua
# module weft.so) exactly luaopen_weft and luaopen_weft_ngx. NM is the nm
# that reads them.
# SPDX-License-Identifier: MIT
cmake_minimum_required(VERSION 3.20) # IN_LIST, list(JOIN)

# The names of the defined dynamic symbols of file, into var.
function(exports file var)
  execute_process(COMMAND ${NM} -D --defined-only ${file}
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} cannot read ${file}")
  endif()
  string(REGEX MATCHALL "[^\n]+" lines "${out}")
  set(names)
  foreach(line IN LISTS lines)
    # "address type name", the name maybe with a version ("@@V1").
    if(line MATCHES "^[0-9a-fA-F]* *[A-Za-z] ([^ @]+)")
      list(APPEND names ${CMAKE_MATCH_1})
    endif()
  endforeach()
  set(${var} ${names} PARENT_SCOPE)
endfunction()

file(GLOB headers ${INCLUDE}/weft*.h)
set(api "")
foreach(h IN LISTS headers)
  file(READ ${h} text)
  string(APPEND api "${text}")
endforeach()

exports(${LIB} lib)
set(bad)
foreach(sym IN LISTS lib)
  if(sym MATCHES "^weft__" OR NOT sym MATCHES "^(weft_[a-z0-9_]+|luaopen_weft(_[a-z]+)?)$"
     OR NOT api MATCHES "WEFT_API[^;{}()]*[ *]${sym}\\(")
    list(APPEND bad ${sym})
  endif()
endforeach()
list(LENGTH lib nlib)
list(LENGTH bad nbad)
message("${LIB}: ${nlib} exports")
# luaopen_weft is both API and in weft_lua.h: its absence means the list
# was not read, not that the library is clean.
if(NOT "luaopen_weft" IN_LIST lib)
  message(FATAL_ERROR "${LIB} does not export luaopen_weft")
endif()
if(nbad GREATER 0)
  list(JOIN bad "\n  " text)
  message(FATAL_ERROR "${LIB} exports ${nbad} symbols that are not "
    "WEFT_API functions of include/weft*.h:\n  ${text}")
endif()

exports(${MODULE} mod)
list(LENGTH mod nmod)
message("${MODULE}: ${nmod} exports")
list(SORT mod)
if(NOT mod STREQUAL "luaopen_weft;luaopen_weft_ngx")
  list(JOIN mod "\n  " text)
  message(FATAL_ERROR "${MODULE} must export luaopen_weft and the openers "
    "of its submodules alone, not:\n  ${text}")
endif()
