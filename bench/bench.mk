# bench/bench.mk - micro-benchmarks (included by the top-level Makefile).
#   make bench                        build and run build/bench/chunker and build/bench/hash
#   make bench BENCH_CORPUS=DIR       data for the hash/compress benchmark
#   make bench CHUNKER_MIB=256        smaller in-memory buffer for the chunker benchmark
# The end-to-end comparisons are scripts: bench/compare.sh, bench/history.sh.

BENCH_BIN    := $(BUILD)/bench/chunker $(BUILD)/bench/hash $(BUILD)/bench/catlookup
BENCH_CORPUS ?= /var/tmp/projstore-bench/corpus
CHUNKER_MIB  ?= 1024

.PHONY: bench bench-build
bench-build: $(BENCH_BIN)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libprojstore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iinclude -Isrc/lib $(CFLAGS) -o $@ $< $(BUILD)/libprojstore.a $(LDFLAGS) $(LDLIBS)

bench: $(BENCH_BIN)
	@echo "machine: $$(nproc) cores, $$(lscpu | sed -n 's/^Model name: *//p' | head -1); load average $$(cut -d' ' -f1-3 /proc/loadavg)"
	$(BUILD)/bench/chunker $(CHUNKER_MIB)
	@if [ -d "$(BENCH_CORPUS)" ]; then $(BUILD)/bench/hash "$(BENCH_CORPUS)"; \
	else echo "bench: $(BENCH_CORPUS) missing (make it with bench/compare.sh or corpus-gen.sh); hashing src/ instead"; \
	$(BUILD)/bench/hash src; fi
