/*
 * bench/chunker.c - throughput and chunk-size distribution of the content
 * defined chunker (ps_chunker_cut) on random data held in memory.
 *
 *   build/bench/chunker [MiB]        default 1024 (1 GiB); env REPS (default 3)
 *
 * The buffer is filled once with a fixed-seed xoshiro256** stream, so every
 * run cuts the same data.  Each parameter set is timed REPS times on one
 * thread (so the figure is "per core") and the median pass is reported.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chunk/chunk.h"

static uint64_t s[4];
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t next_rand(void)
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
	s[2] ^= t; s[3] = rotl(s[3], 45);
	return r;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}
static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct params { const char *name; uint32_t min, avg, max; };

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	int reps = getenv("REPS") ? atoi(getenv("REPS")) : 3;
	size_t len = mib << 20, maxchunks;
	uint8_t *buf;
	uint32_t *sizes;
	double t0;
	const struct params ps[] = {
		{ "store default", PS_CHUNK_MIN_DEFAULT, PS_CHUNK_AVG_DEFAULT, PS_CHUNK_MAX_DEFAULT },
		{ "avg 64K", 16u << 10, 64u << 10, 256u << 10 },
		{ "avg 128K", 32u << 10, 128u << 10, 512u << 10 },
		{ "avg 256K", 64u << 10, 256u << 10, 1024u << 10 },
		{ "avg 512K", 128u << 10, 512u << 10, 2048u << 10 },
		{ "avg 1M", 256u << 10, 1024u << 10, 4096u << 10 },
	};

	if (mib == 0 || reps < 1) {
		fprintf(stderr, "usage: chunker [MiB] (env REPS >= 1)\n");
		return 2;
	}
	buf = malloc(len);
	maxchunks = len / 64 + 2;
	sizes = malloc(maxchunks * sizeof(*sizes));
	if (!buf || !sizes) {
		fprintf(stderr, "chunker: out of memory\n");
		return 1;
	}
	t0 = now();
	s[0] = 0x0123456789abcdefULL; s[1] = 0xfedcba9876543210ULL;
	s[2] = 0x0f1e2d3c4b5a6978ULL; s[3] = 0x8796a5b4c3d2e1f0ULL;
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t r = next_rand();
		memcpy(buf + i, &r, 8);
	}
	printf("chunker: %zu MiB of random data in memory (generated in %.2f s), 1 thread, median of %d passes\n",
	       mib, now() - t0, reps);
	printf("%-14s %8s %8s %8s | %8s %8s | %9s %9s %9s %9s %8s %7s\n", "params", "min", "avg", "max",
	       "GB/s", "GiB/s", "c.min", "c.avg", "c.median", "c.max", "chunks", "at max");
	for (size_t p = 0; p < sizeof(ps) / sizeof(ps[0]); p++) {
		struct ps_chunker c;
		double *secs = malloc((size_t)reps * sizeof(double)), med;
		size_t n = 0;
		size_t atmax = 0;
		uint32_t mn, mx;
		if (!secs || ps_chunker_init(&c, ps[p].min, ps[p].avg, ps[p].max)) {
			fprintf(stderr, "chunker: cannot init %s\n", ps[p].name);
			return 1;
		}
		for (int r = 0; r < reps; r++) {
			size_t off = 0;
			n = 0;
			t0 = now();
			while (off < len) {
				size_t cut = ps_chunker_cut(&c, buf + off, len - off);
				sizes[n++] = (uint32_t)cut;
				off += cut;
			}
			secs[r] = now() - t0;
		}
		qsort(secs, (size_t)reps, sizeof(double), cmp_dbl);
		med = secs[reps / 2];
		/* the last chunk is cut by the end of the buffer, not by content */
		size_t m = n > 1 ? n - 1 : n;
		qsort(sizes, m, sizeof(*sizes), cmp_u32);
		mn = sizes[0];
		mx = sizes[m - 1];
		for (size_t i = 0; i < m; i++)
			atmax += sizes[i] == ps[p].max;
		printf("%-14s %7uK %7uK %7uK | %8.3f %8.3f | %8.1fK %8.1fK %8.1fK %8.1fK %8zu %6.2f%%\n", ps[p].name,
		       ps[p].min >> 10, ps[p].avg >> 10, ps[p].max >> 10, (double)len / med / 1e9,
		       (double)len / med / (1024.0 * 1024 * 1024), mn / 1024.0,
		       (double)len / (double)n / 1024.0, sizes[m / 2] / 1024.0, mx / 1024.0, n,
		       100.0 * (double)atmax / (double)m);
		free(secs);
	}
	free(sizes);
	free(buf);
	return 0;
}
