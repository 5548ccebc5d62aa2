build/obj/src/lib/store/backend_local.o: src/lib/store/backend_local.c \
 src/lib/store/backend.h include/projstore.h src/lib/store/../util/util.h
src/lib/store/backend.h:
include/projstore.h:
src/lib/store/../util/util.h:
