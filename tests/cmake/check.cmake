# check.cmake - builds and runs tests/cmake/consumer against weft: MODE
# "package" installs the build tree BUILD into a scratch prefix and finds
# it with find_package(weft CONFIG); MODE "subdir" adds the source tree
# SOURCE with add_subdirectory. WORK is a scratch directory.
# SPDX-License-Identifier: MIT
file(REMOVE_RECURSE ${WORK})
set(consumer ${CMAKE_CURRENT_LIST_DIR}/consumer)
if(MODE STREQUAL "package")
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD}
                  --prefix ${WORK}/prefix
                  RESULT_VARIABLE r OUTPUT_QUIET)
  if(r)
    message(FATAL_ERROR "cmake --install failed: ${r}")
  endif()
  set(args -DCMAKE_PREFIX_PATH=${WORK}/prefix)
  # The pkg-config file: no overlinking (libuv is libweft's own
  # dependency, named for static links only), and the module directory.
  find_program(PKG_CONFIG pkg-config REQUIRED)
  set(ENV{PKG_CONFIG_PATH} ${WORK}/prefix/lib/pkgconfig)
  execute_process(COMMAND ${PKG_CONFIG} --libs weft OUTPUT_VARIABLE libs
                  RESULT_VARIABLE r)
  if(r OR libs MATCHES "-luv" OR NOT libs MATCHES "-lweft")
    message(FATAL_ERROR "pkg-config --libs weft: ${r} ${libs}")
  endif()
  execute_process(COMMAND ${PKG_CONFIG} --variable=INSTALL_CMOD weft
                  OUTPUT_VARIABLE cmod OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT EXISTS "${cmod}/weft.so")
    message(FATAL_ERROR "INSTALL_CMOD is '${cmod}': no weft.so there")
  endif()
else()
  set(args -DWEFT_SOURCE=${SOURCE})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${consumer} -B ${WORK}/build
                -DCMAKE_BUILD_TYPE=Release ${args}
                RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(r)
  message(FATAL_ERROR "configuring the consumer failed:\n${out}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/build -j 2
                RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(r)
  message(FATAL_ERROR "building the consumer failed:\n${out}")
endif()
execute_process(COMMAND ${WORK}/build/consumer RESULT_VARIABLE r
                OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(r)
  message(FATAL_ERROR "the consumer failed: ${r}")
endif()
file(REMOVE_RECURSE ${WORK})
