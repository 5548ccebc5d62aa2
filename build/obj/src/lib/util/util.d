build/obj/src/lib/util/util.o: src/lib/util/util.c src/lib/util/util.h \
 include/projstore.h
src/lib/util/util.h:
include/projstore.h:
