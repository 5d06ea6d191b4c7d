# The Cortex-M3 checks of the embedded tier (see CMakeLists.txt), by MODE:
# compile: each src/core/*.c alone, with the command line the issue gives,
#   and no undefined symbol but memcpy, memset and weft's own;
# size: the core's .text at -Os is at most 8 KB (prints the table);
# noheap: the firmware FW has no malloc, free, realloc (or their helpers).
file(GLOB sources ${SRC}/src/core/*.c)
set(flags -mcpu=cortex-m3 -mthumb -Os -ffreestanding -std=c11
    -DWEFT_EMBEDDED=1 -I${SRC}/include -I${SRC}/src/core)

# Compiles src alone into ${OUT}/${MODE}/<name>.o.
function(compile src)
  get_filename_component(name ${src} NAME_WE)
  file(MAKE_DIRECTORY ${OUT}/${MODE})
  execute_process(COMMAND ${GCC} ${flags} -Wall -Wextra -Werror -c ${src}
                  -o ${OUT}/${MODE}/${name}.o RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${src} does not compile for Cortex-M3")
  endif()
endfunction()

if(MODE STREQUAL "compile")
  foreach(src ${sources})
    get_filename_component(name ${src} NAME_WE)
    compile(${src})
    execute_process(COMMAND ${NM} -u ${OUT}/${MODE}/${name}.o
                    OUTPUT_VARIABLE und)
    string(REGEX REPLACE "[ \t]+U weft_[a-z_0-9]+\n" "" rest "${und}")
    string(REGEX REPLACE "[ \t]+U (memcpy|memset)\n" "" rest "${rest}")
    if(NOT rest STREQUAL "")
      message(FATAL_ERROR "${src} needs more than memcpy/memset:\n${rest}")
    endif()
    message("ok ${name}.c")
  endforeach()
elseif(MODE STREQUAL "size")
  set(objs)
  foreach(src ${sources})
    get_filename_component(name ${src} NAME_WE)
    compile(${src})
    list(APPEND objs ${OUT}/${MODE}/${name}.o)
  endforeach()
  execute_process(COMMAND ${SIZE} -t ${objs} OUTPUT_VARIABLE table
                  RESULT_VARIABLE rc)
  message("${table}")
  if(NOT rc EQUAL 0 OR NOT table MATCHES "\n *([0-9]+)[ \t]+([0-9]+)[ \t]+([0-9]+)[^\n]*\\(TOTALS\\)")
    message(FATAL_ERROR "no size table")
  endif()
  if(CMAKE_MATCH_1 GREATER 8192)
    message(FATAL_ERROR "core .text is ${CMAKE_MATCH_1} bytes, over 8 KB")
  endif()
elseif(MODE STREQUAL "noheap")
  execute_process(COMMAND ${NM} ${FW} OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT syms MATCHES " T weft_sched_loop\n")
    message(FATAL_ERROR "cannot read the symbols of ${FW}")
  endif()
  if(syms MATCHES " (_?malloc|_?free|_?realloc|_?calloc|_malloc_r|_free_r|_realloc_r|_sbrk|_sbrk_r)\n")
    message(FATAL_ERROR "${FW} links a heap: ${CMAKE_MATCH_1}")
  endif()
  message("no heap in ${FW}")
else()
  message(FATAL_ERROR "unknown MODE ${MODE}")
endif()
