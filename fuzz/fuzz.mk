# fuzz/fuzz.mk - fuzz targets (included by the top-level Makefile).
#
#   make fuzz           libFuzzer targets build-fuzz/fuzz_<target>: clang with
#                       -fsanitize=fuzzer,address,undefined; the library sources
#                       are compiled with clang (build-fuzz/obj) into each one
#   make fuzz-replay    replay drivers $(BUILD)/fuzz/replay_<target> ($(CC),
#                       fuzz/replay.c, $(BUILD)/libprojstore.a) run on every
#                       stored input of fuzz/corpus/<target>/ (no clang needed;
#                       with SANITIZE=1 under ASan/UBSan)
#   make fuzz-run       each libFuzzer target for FUZZ_SECONDS (default 30) on
#                       its corpus; new inputs go to build-fuzz/corpus/<target>,
#                       crashes to build-fuzz/artifacts/
#   make fuzz-corpus    regenerate the seed inputs fuzz/corpus/<target>/seed-*
#                       with fuzz/gen_corpus.c
#   make fuzz-merge     add the inputs of build-fuzz/corpus/<target> that
#                       raise coverage to fuzz/corpus/<target> (libFuzzer -merge)
#
# FUZZ_STRICT=1 adds the invariant checks that known bugs still violate.

FUZZ_TARGETS := pack segment tree ref fcache gluster_url proto api
FUZZ_SECONDS ?= 30
# FUZZ_JOBS > 1 runs libFuzzer with -jobs/-workers (its logs go to fuzz-N.log)
FUZZ_JOBS    ?= 1
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
# every library the library objects need (libpq: the headers of db_pg.c, as in the Makefile)
FUZZ_PKGS    := $(PKGS) libpq glusterfs-api
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -g -O1 -fno-omit-frame-pointer -pthread -Iinclude -D_FILE_OFFSET_BITS=64 \
                $(shell pkg-config --cflags $(FUZZ_PKGS)) $(if $(filter 1,$(FUZZ_STRICT)),-DFUZZ_STRICT)
FUZZ_LDLIBS  := $(shell pkg-config --libs $(FUZZ_PKGS)) -pthread
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
REPLAY_BINS  := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)

.PHONY: fuzz fuzz-replay fuzz-run fuzz-corpus fuzz-merge

fuzz: $(FUZZ_BINS)

# the objects are prerequisites of a pattern rule only: keep make from
# deleting them as intermediate files after every link
.SECONDARY: $(FUZZ_LIB_OBJ)

# library objects for the fuzzers: clang, instrumented for coverage but not
# linked with libFuzzer's main
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc/lib -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< $(FUZZ_LIB_OBJ) $(FUZZ_LDLIBS)

$(BUILD)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay.c fuzz/fuzz_common.h $(BUILD)/libprojstore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc/lib $(CFLAGS) -o $@ fuzz/replay.c $< $(BUILD)/libprojstore.a $(LDFLAGS) $(LDLIBS)

# the API client lives with the commands (src/cli/cli_api.c: libc and jansson only)
$(FUZZ_BUILD)/fuzz_api: fuzz/fuzz_api.c fuzz/fuzz_common.h src/cli/cli_api.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc/lib -fsanitize=fuzzer $(FUZZ_SAN) -o $@ fuzz/fuzz_api.c src/cli/cli_api.c \
	  $(FUZZ_LIB_OBJ) $(FUZZ_LDLIBS)
$(BUILD)/fuzz/replay_api: fuzz/fuzz_api.c fuzz/replay.c fuzz/fuzz_common.h src/cli/cli_api.c $(BUILD)/libprojstore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc/lib $(CFLAGS) -o $@ fuzz/replay.c fuzz/fuzz_api.c src/cli/cli_api.c \
	  $(BUILD)/libprojstore.a $(LDFLAGS) $(LDLIBS)

fuzz-replay: $(REPLAY_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do $(BUILD)/fuzz/replay_$$t fuzz/corpus/$$t; done

fuzz-run: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/artifacts; \
	  dict=; [ -f fuzz/$$t.dict ] && dict=-dict=fuzz/$$t.dict; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(if $(filter-out 1,$(FUZZ_JOBS)),-jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS)) $$dict \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t; \
	done

$(BUILD)/fuzz/gen_corpus: fuzz/gen_corpus.c $(BUILD)/libprojstore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc/lib $(CFLAGS) -o $@ $< $(BUILD)/libprojstore.a $(LDFLAGS) $(LDLIBS)

fuzz-corpus: $(BUILD)/fuzz/gen_corpus
	$(BUILD)/fuzz/gen_corpus fuzz/corpus

fuzz-merge: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  [ -d $(FUZZ_BUILD)/corpus/$$t ] || continue; \
	  $(FUZZ_BUILD)/fuzz_$$t -merge=1 -max_len=4096 fuzz/corpus/$$t $(FUZZ_BUILD)/corpus/$$t; \
	done

-include $(FUZZ_LIB_OBJ:.o=.d)
