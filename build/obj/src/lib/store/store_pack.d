build/obj/src/lib/store/store_pack.o: src/lib/store/store_pack.c \
 src/lib/store/store_int.h include/projstore.h src/lib/store/backend.h \
 src/lib/store/../util/util.h src/lib/store/../compress/compress.h \
 src/lib/store/../chunk/chunk.h src/lib/store/../hash/hash.h
src/lib/store/store_int.h:
include/projstore.h:
src/lib/store/backend.h:
src/lib/store/../util/util.h:
src/lib/store/../compress/compress.h:
src/lib/store/../chunk/chunk.h:
src/lib/store/../hash/hash.h:
