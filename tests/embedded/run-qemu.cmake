# Runs the firmware FW under qemu-system-arm (MPS2 AN385, Cortex-M3,
# semihosting) with a time limit. It must exit 0 (the firmware ends itself
# through semihosting) and print every line of EXPECT, a regular expression
# each. Lines with the same tag (the text before the first ':') must match
# in their order; tasks interleave, so lines of different tags may not.
# -icount ties the guest's clock to instructions executed, and sleep=off
# skips idle time: the firmware's timing no longer depends on how loaded
# the host is, and its 600 ms of blinking take a fraction of a second.
execute_process(
  COMMAND ${QEMU} -M mps2-an385 -nographic -monitor none -serial null
          -semihosting-config enable=on,target=native
          -icount shift=3,sleep=off -kernel ${FW}
  TIMEOUT 30 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(out "${out}${err}") # semihosting writes to either
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "qemu exited with ${rc}")
endif()
file(STRINGS ${EXPECT} expects)
foreach(re ${expects})
  string(REGEX MATCH "^[^:]*" tag "${re}")
  string(MAKE_C_IDENTIFIER "${tag}" key)
  if(NOT DEFINED pos_${key})
    set(pos_${key} 0)
  endif()
  string(SUBSTRING "${out}" ${pos_${key}} -1 rest)
  string(REGEX MATCH "${re}[^\n]*\n" hit "${rest}")
  if(hit STREQUAL "")
    message(FATAL_ERROR "missing (in order for '${tag}'): ${re}")
  endif()
  string(FIND "${rest}" "${hit}" at)
  string(LENGTH "${hit}" len)
  math(EXPR pos_${key} "${pos_${key}} + ${at} + ${len}")
endforeach()
message("every expected line was printed")
