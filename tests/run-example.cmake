# Runs SCRIPT with the WEFT binary (and the arguments ARGS, a list, if
# given); fails unless it exits 0 and its output matches every
# "-- expect: REGEX" line of the script.
execute_process(COMMAND ${WEFT} ${SCRIPT} ${ARGS} RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SCRIPT} exited with ${rc}")
endif()
file(STRINGS ${SCRIPT} expects REGEX "^-- expect: ")
foreach(line ${expects})
  string(REGEX REPLACE "^-- expect: " "" re "${line}")
  if(NOT out MATCHES "${re}")
    message(FATAL_ERROR "${SCRIPT}: output does not match '${re}'")
  endif()
endforeach()
