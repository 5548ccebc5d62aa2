build/obj/src/lib/chunk/chunk.o: src/lib/chunk/chunk.c \
 src/lib/chunk/chunk.h
src/lib/chunk/chunk.h:
