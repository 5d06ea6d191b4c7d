# Turns the file IN into a C header OUT defining NAME[], a NUL-terminated
# byte array (portable: no xxd needed).
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(src ${IN} NAME)
file(WRITE ${OUT} "/* generated from ${src}; do not edit */\n"
  "static const char ${NAME}[] = {${bytes}0};\n")
