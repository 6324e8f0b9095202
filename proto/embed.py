"""Writes a binary file as a C array: embed.py IN OUT.c SYMBOL.
Used to build the descriptor set into eied for server reflection."""
import sys

data = open(sys.argv[1], "rb").read()
sym = sys.argv[3]
with open(sys.argv[2], "w") as out:
    out.write("/* generated from %s; do not edit */\n#include <stddef.h>\n#include <stdint.h>\n"
              % sys.argv[1].rsplit("/", 1)[-1])
    out.write("const uint8_t %s[] = {\n" % sym)
    for i in range(0, len(data), 16):
        out.write("  " + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",\n")
    out.write("};\nconst size_t %s_len = %d;\n" % (sym, len(data)))
