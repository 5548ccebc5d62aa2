# projstore - plain non-recursive Makefile.
#   make                 build build/projstore and build/libprojstore.a
#   make SANITIZE=1      build into build-asan/ with AddressSanitizer + UBSan
#   make test            unit tests + end-to-end tests (prove)
#   make fuzz            libFuzzer targets (clang) into build-fuzz/

CC       ?= cc
PKGS     := libzstd liblz4 libcrypto jansson sqlite3 libbtrfsutil libseccomp
ifeq ($(SANITIZE),1)
BUILD    ?= build-asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      ?= -O1 -g
else
BUILD    ?= build
SANFLAGS :=
OPT      ?= -O2 -g
endif
WARN     := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wcast-align -Wwrite-strings \
            -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wundef -Wvla -Wno-unused-parameter -Wno-format-truncation
CPPFLAGS += -Iinclude -D_FILE_OFFSET_BITS=64
CFLAGS   ?=
# -fPIC: everything but the launcher goes into projstore-core.so
CFLAGS   += -std=c11 $(OPT) $(WARN) $(SANFLAGS) -fPIC -pthread $(shell pkg-config --cflags $(PKGS))
# libpq and libgfapi are loaded with dlopen() when a PostgreSQL catalog or a
# gluster:// store is used (db_pg.c, backend_gluster.c): headers only
CFLAGS   += $(shell pkg-config --cflags libpq glusterfs-api)
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -pthread
LDFLAGS  += $(SANFLAGS)

LIB_SRC  := $(sort $(wildcard src/lib/*/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
# the FUSE front end: only the projstore binary links libfuse3
DAEMON_SRC := $(sort $(wildcard src/daemon/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))

# the executable: a launcher that answers --version and `where --api` itself
# and loads projstore-core.so (every command) for everything else
LAUNCHER_OBJ := $(BUILD)/obj/src/launcher/launcher.o $(BUILD)/obj/src/cli/cli_api.o
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/obj/%.o)
$(DAEMON_OBJ): CFLAGS += $(shell pkg-config --cflags fuse3)
# the HTTP server of `projstore serve` (libmicrohttpd) and its dashboard,
# whose files are compiled into the binary (scripts/embed-web.sh)
SERVER_SRC := $(sort $(wildcard src/server/*.c))
WEB_FILES  := $(sort $(wildcard src/server/web/*))
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/web_assets.o
$(SERVER_OBJ): CFLAGS += $(shell pkg-config --cflags libmicrohttpd)
DAEMON_OBJ += $(SERVER_OBJ)
# libmicrohttpd is loaded with dlopen() by `serve` (src/server/server.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all clean test unit e2e tools fuzz check demo
# End-to-end test files run two at a time (most of their time is spent
# waiting: agents polling, servers starting, heals); the hosting tests change
# host-wide settings (cgroups, iptables) and run one after the other. --timer
# prints each file's time. PROVE_JOBS=1 runs everything in sequence.
# The FUSE mount test runs alone: beside other files its unmount after heavy
# reading failed twice in clean-clone runs (never alone); the sanitizer pass
# runs its files one at a time.
E2E_ALONE := tests/e2e/t0200-mount.sh
PROVE_JOBS ?= 2
PROVE_OPTS ?= --timer --failures -j$(PROVE_JOBS) --rules='seq=tests/e2e/t08*.sh' --rules='par=**'
# end-to-end tests that also run under the sanitizers (the core ones)
SAN_E2E  := tests/e2e/t0000-basic.sh tests/e2e/t0010-fidelity.sh tests/e2e/t0020-snapshots-browse.sh \
            tests/e2e/t0030-dedup-stats-quota.sh tests/e2e/t0050-concurrency-locks.sh tests/e2e/t0070-corruption.sh \
            tests/e2e/t0015-incremental-cache.sh tests/e2e/t0080-hostile.sh tests/e2e/t0090-full-disk.sh \
            tests/e2e/t0200-mount.sh tests/e2e/t0700-serve-api.sh tests/e2e/t0530-agent-lifecycle.sh \
            tests/e2e/t0420-sync-damage.sh
all: $(BUILD)/projstore $(BUILD)/projstore-core.so $(BUILD)/libprojstore.a tools

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libprojstore.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/projstore-core.so: $(CLI_OBJ) $(DAEMON_OBJ) $(BUILD)/libprojstore.a
	$(CC) -shared -Wl,-z,defs $(LDFLAGS) -o $@ $(CLI_OBJ) $(DAEMON_OBJ) $(BUILD)/libprojstore.a \
	  $(LDLIBS) $(shell pkg-config --libs fuse3)

$(BUILD)/projstore: $(LAUNCHER_OBJ) | $(BUILD)/projstore-core.so
	$(CC) $(LDFLAGS) -o $@ $(LAUNCHER_OBJ) $(shell pkg-config --libs jansson)

# the dashboard files as a C file (scripts/embed-web.sh)
$(BUILD)/gen/web_assets.c: $(WEB_FILES) scripts/embed-web.sh
	@mkdir -p $(dir $@)
	scripts/embed-web.sh $@ $(WEB_FILES)
$(BUILD)/obj/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc/server $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(BUILD)/libprojstore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc/lib $(CFLAGS) -o $@ $< $(BUILD)/libprojstore.a $(LDFLAGS) $(LDLIBS)

tools: $(TOOL_BIN)
$(BUILD)/tools/deadfs: tests/tools/deadfs.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror $(SANFLAGS) -o $@ $< $(shell pkg-config --cflags --libs fuse3)
$(BUILD)/tools/ps-testhelper: tests/tools/ps-testhelper.c $(BUILD)/libprojstore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc/lib $(CFLAGS) -o $@ $< $(BUILD)/libprojstore.a $(LDFLAGS) $(LDLIBS)
$(BUILD)/tools/ps-synchelper: tests/tools/ps-synchelper.c $(BUILD)/libprojstore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc/lib $(CFLAGS) -o $@ $< $(BUILD)/libprojstore.a $(LDFLAGS) $(LDLIBS)
$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror $(SANFLAGS) -o $@ $<

unit: $(UNIT_BIN)
	prove -e '' $(UNIT_BIN)

e2e: all
	PROJSTORE_BIN=$(CURDIR)/$(BUILD)/projstore PS_TOOLS=$(CURDIR)/$(BUILD)/tools prove $(PROVE_OPTS) \
	  $(filter-out $(E2E_ALONE),$(sort $(wildcard tests/e2e/t[0-9]*.sh)))
	PROJSTORE_BIN=$(CURDIR)/$(BUILD)/projstore PS_TOOLS=$(CURDIR)/$(BUILD)/tools prove --timer --failures $(E2E_ALONE)

test: unit e2e

# everything the CI runs: plain build + all tests, a short libFuzzer run of
# every parser target, then the sanitizer pass.  PS_REQUIRE_ALL=1: run as
# root, an end-to-end test whose prerequisite (tool, kernel feature, server)
# is missing fails instead of being skipped (tests/e2e/test-lib.sh)
CHECK_FUZZ_SECONDS ?= 5
check:
	PS_REQUIRE_ALL=1 $(MAKE) all unit e2e $(if $(wildcard fuzz/fuzz.mk),fuzz-replay)
	$(if $(wildcard fuzz/fuzz.mk),$(MAKE) fuzz-run FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS))
	$(MAKE) SANITIZE=1 all unit
	PS_REQUIRE_ALL=1 PROJSTORE_BIN=$(CURDIR)/build-asan/projstore PS_TOOLS=$(CURDIR)/build/tools \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  prove --timer --failures $(SAN_E2E)

demo: all
	scripts/demo.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d)

# fuzz targets and benchmarks keep their rules beside their sources
-include fuzz/fuzz.mk
-include bench/bench.mk
