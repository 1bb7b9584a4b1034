# Writes OUT: the bytes of IN as `const unsigned char SYMBOL[]` (with a NUL
# after them) and `const size_t SYMBOL_len` (cmake -P).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR len "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n\t" bytes "${bytes}")
file(WRITE ${OUT}
     "/* Generated from ${IN} by embed_file.cmake; do not edit. */\n"
     "#include <stddef.h>\n\n"
     "const unsigned char ${SYMBOL}[] = {\n\t${bytes}0x00};\n"
     "const size_t ${SYMBOL}_len = ${len};\n")
