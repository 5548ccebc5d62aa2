/*
 * fuzz_common.h - shared by the fuzz targets (fuzz_*.c) and the replay
 * driver.  Each target defines LLVMFuzzerTestOneInput(); with clang and
 * -fsanitize=fuzzer it is driven by libFuzzer, with any compiler and
 * fuzz/replay.c it replays stored inputs.
 *
 * Invariant violations call FUZZ_CHECK(), which aborts (libFuzzer then saves
 * the input as a crash).  Checks of properties that are known not to hold
 * yet (documented bugs) are compiled only with -DFUZZ_STRICT, so the default
 * runs keep exploring instead of stopping at the same known defect.
 */
#ifndef PS_FUZZ_COMMON_H
#define PS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash/hash.h"
/* util.h through store_int.h only: util.h declares its id set after its
 * include guard, so including it twice does not compile */
#include "store/store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, what)                                                              \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", __FILE__,   \
				__LINE__, what);                                            \
			abort();                                                            \
		}                                                                           \
	} while (0)

/* Inputs start with a control byte; bit 0 asks the target to repair the
 * checksum of the payload (so mutations reach the parser behind it). */
#define FUZZ_FIX_SUM 0x01

/* PS_FUZZ_TRACE=1 in the environment prints each parser's verdict (to see
 * which stored inputs parse; e.g. PS_FUZZ_TRACE=1 replay_tree fuzz/corpus/tree). */
static inline void fuzz_trace(const char *what, int rc)
{
	static int on = -1;
	if (on < 0)
		on = getenv("PS_FUZZ_TRACE") != NULL;
	if (on)
		fprintf(stderr, "%s: %d\n", what, rc);
}

/* A malloc'd copy (parsers may take ownership or need a trailing NUL). */
static inline uint8_t *fuzz_dup(const uint8_t *p, size_t n, size_t extra)
{
	uint8_t *d = malloc(n + extra + 1);
	if (!d)
		abort();
	if (n)
		memcpy(d, p, n);
	memset(d + n, 0, extra + 1);
	return d;
}

/* Overwrites the last 32 bytes with the SHA-256 of everything before them. */
static inline void fuzz_fix_sha_tail(uint8_t *buf, size_t len)
{
	if (len >= 32)
		ps_sha256(buf, len - 32, buf + len - 32);
}

#endif
