build/obj/src/lib/compress/compress.o: src/lib/compress/compress.c \
 src/lib/compress/compress.h
src/lib/compress/compress.h:
