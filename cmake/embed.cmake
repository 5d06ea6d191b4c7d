# Turns the file IN into a C header OUT defining prelude_lua[], a
# NUL-terminated byte array (portable: no xxd needed).
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from prelude.lua; do not edit */\n"
  "static const char prelude_lua[] = {${bytes}0};\n")
