build/obj/src/lib/hash/hash.o: src/lib/hash/hash.c src/lib/hash/hash.h
src/lib/hash/hash.h:
