/*
 * test_chunk.c - chunk/: FastCDC parameters, determinism, size limits,
 * average size on random data, boundaries that survive an insertion or a
 * deletion near the start (content-defined), the gear table (part of the
 * on-disk format) and a throughput figure.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "chunk/chunk.h"
#include "util/util.h"

/* Cuts buf[0..n) completely; returns the number of chunks, ends[] gets the
 * end offset of every chunk. */
static size_t cut_all(const struct ps_chunker *c, const uint8_t *buf, size_t n, size_t *ends,
		      size_t max_ends)
{
	size_t pos = 0, k = 0;
	while (pos < n) {
		size_t l = ps_chunker_cut(c, buf + pos, n - pos);
		if (l == 0 || l > n - pos)
			return (size_t)-1;
		pos += l;
		if (k < max_ends)
			ends[k] = pos;
		k++;
	}
	return k;
}

static void test_init(void)
{
	struct ps_chunker c;
	is_int(ps_chunker_init(&c, PS_CHUNK_MIN_DEFAULT, PS_CHUNK_AVG_DEFAULT, PS_CHUNK_MAX_DEFAULT), 0,
	       "defaults are valid");
	ok(c.min_size == PS_CHUNK_MIN_DEFAULT && c.avg_size == PS_CHUNK_AVG_DEFAULT &&
	   c.max_size == PS_CHUNK_MAX_DEFAULT, "parameters are recorded");
	/* avg = 2^18: the hard mask has 20 high bits, the easy one 16 */
	ok(c.mask_s == ~0ULL << 44, "mask_s has log2(avg)+2 high bits");
	ok(c.mask_l == ~0ULL << 48, "mask_l has log2(avg)-2 high bits");
	is_int(ps_chunker_init(&c, 64, 128, 256), 0, "smallest valid: 64/128/256");
	is_int(ps_chunker_init(&c, 1u << 20, 1u << 24, 64u << 20), 0, "largest max 64 MiB is valid");
	is_int(ps_chunker_init(&c, 63, 128, 256), -1, "min below 64 rejected");
	is_int(ps_chunker_init(&c, 0, 128, 256), -1, "min 0 rejected");
	is_int(ps_chunker_init(&c, 1024, 3000, 8192), -1, "avg not a power of two rejected");
	is_int(ps_chunker_init(&c, 64, 0, 256), -1, "avg 0 rejected");
	is_int(ps_chunker_init(&c, 4096, 4096, 8192), -1, "min == avg rejected");
	is_int(ps_chunker_init(&c, 8192, 4096, 16384), -1, "min > avg rejected");
	is_int(ps_chunker_init(&c, 1024, 4096, 4096), -1, "avg == max rejected");
	is_int(ps_chunker_init(&c, 1024, 4096, 2048), -1, "max < avg rejected");
	is_int(ps_chunker_init(&c, 1024, 1u << 20, (64u << 20) + 1), -1, "max above 64 MiB rejected");
	is_int(ps_chunker_init(&c, 1024, 1u << 31, UINT32_MAX), -1, "huge sizes rejected");
	is_int(ps_chunker_init(&c, 64, 64, 256), -1, "avg 64 (min must be below it) rejected");
}

static void test_gear(void)
{
	const uint64_t *g = ps_chunker_gear();
	uint64_t x = 0x70726f6a73746f72ULL, want[4];
	int distinct = 1;
	/* the table is splitmix64 from the seed "projstor": part of the format */
	for (int i = 0; i < 4; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		want[i] = z ^ (z >> 31);
	}
	ok(g[0] == want[0] && g[1] == want[1] && g[2] == want[2] && g[3] == want[3],
	   "gear table starts with splitmix64(\"projstor\")");
	for (int i = 0; i < 256 && distinct; i++)
		for (int k = i + 1; k < 256; k++)
			if (g[i] == g[k]) {
				distinct = 0;
				break;
			}
	ok(distinct, "the 256 gear values are distinct");
	ok(ps_chunker_gear() == g, "the table is built once");
}

static void test_limits_and_determinism(void)
{
	struct ps_chunker c;
	const size_t n = 16u << 20;
	uint8_t *buf = malloc(n);
	size_t *e1 = malloc(sizeof(size_t) * 20000), *e2 = malloc(sizeof(size_t) * 20000);
	size_t k1, k2, below = 0, above = 0;
	double mean;

	th_fill_random(buf, n, 11);
	ps_chunker_init(&c, 16384, 65536, 262144);
	k1 = cut_all(&c, buf, n, e1, 20000);
	k2 = cut_all(&c, buf, n, e2, 20000);
	ok(k1 != (size_t)-1 && k1 > 10, "16 MiB cut into %zu chunks", k1);
	ok(k1 == k2 && !memcmp(e1, e2, k1 * sizeof(size_t)), "cutting twice gives the same chunks");
	for (size_t i = 0; i < k1; i++) {
		size_t len = e1[i] - (i ? e1[i - 1] : 0);
		if (i + 1 < k1 && len < c.min_size)
			below++;
		if (len > c.max_size)
			above++;
	}
	is_int(below, 0, "no chunk but the last is shorter than min");
	is_int(above, 0, "no chunk is longer than max");
	is_int(e1[k1 - 1], n, "the chunks cover the input exactly");
	mean = (double)n / (double)k1;
	ok(mean > 0.75 * c.avg_size && mean < 1.35 * c.avg_size,
	   "mean chunk size %.0f is near avg %u on random data", mean, c.avg_size);

	/* the default parameters too */
	ps_chunker_init(&c, PS_CHUNK_MIN_DEFAULT, PS_CHUNK_AVG_DEFAULT, PS_CHUNK_MAX_DEFAULT);
	k1 = cut_all(&c, buf, n, e1, 20000);
	below = above = 0;
	for (size_t i = 0; i < k1; i++) {
		size_t len = e1[i] - (i ? e1[i - 1] : 0);
		if ((i + 1 < k1 && len < c.min_size) || len > c.max_size)
			below++;
	}
	mean = (double)n / (double)k1;
	ok(below == 0 && mean > 0.75 * c.avg_size && mean < 1.35 * c.avg_size,
	   "defaults: %zu chunks within limits, mean %.0f near %u", k1, mean, c.avg_size);

	/* a found cut does not depend on data after it; no cut -> the whole window */
	{
		int same = 1;
		size_t pos = 0;
		ps_chunker_init(&c, 16384, 65536, 262144);
		while (pos < n) {
			size_t rest = n - pos;
			size_t a = ps_chunker_cut(&c, buf + pos, rest);
			size_t w = rest < c.max_size ? rest : c.max_size;
			size_t b = ps_chunker_cut(&c, buf + pos, w);
			size_t win = a + 1 <= rest ? a + 1 : rest;
			size_t d = ps_chunker_cut(&c, buf + pos, win);
			if (a != b || (a < rest && d != a))
				same = 0;
			pos += a;
		}
		ok(same, "a cut depends only on the bytes up to it (max window, one byte past)");
	}
	/* short inputs */
	ok(ps_chunker_cut(&c, buf, 0) == 0, "cut of 0 bytes is 0");
	ok(ps_chunker_cut(&c, buf, 100) == 100, "input shorter than min is one chunk");
	ok(ps_chunker_cut(&c, buf, c.min_size) == c.min_size, "input of exactly min is one chunk");
	/* constant data: no content to cut at -> every chunk the same length */
	{
		uint8_t *z = calloc(1, 2u << 20);
		size_t k = cut_all(&c, z, 2u << 20, e1, 20000), first = e1[0];
		int same = 1;
		for (size_t i = 1; i + 1 < k; i++)
			if (e1[i] - e1[i - 1] != first)
				same = 0;
		ok(same && first >= c.min_size && first <= c.max_size,
		   "zeros cut into equal chunks of %zu bytes", first);
		memset(z, 0xab, 2u << 20);
		k = cut_all(&c, z, 2u << 20, e1, 20000);
		ok(k >= (2u << 20) / c.max_size, "constant 0xab: %zu chunks, none over max", k);
		free(z);
	}
	/* golden values: changing the chunker changes every stored chunk id */
	{
		ps_chunker_init(&c, PS_CHUNK_MIN_DEFAULT, PS_CHUNK_AVG_DEFAULT, PS_CHUNK_MAX_DEFAULT);
		k1 = cut_all(&c, buf, 4u << 20, e1, 20000);
		diag("first default boundaries on seed-11 data: %zu %zu %zu (of %zu)", e1[0], e1[1], e1[2],
		     k1);
		ok(e1[0] == 285972 && e1[1] == 769230 && e1[2] == 1208286 && k1 == 12,
		   "boundaries of a fixed input are the recorded ones (format stability)");
	}
	free(buf);
	free(e1);
	free(e2);
}

static size_t count_shared(const size_t *a, size_t na, const size_t *b, size_t nb, long shift,
			   size_t from)
{
	size_t i = 0, k = 0, shared = 0;
	while (i < na && k < nb) {
		long long x = (long long)a[i] + shift, y = (long long)b[k];
		if (x == y) {
			if (a[i] >= from)
				shared++;
			i++;
			k++;
		} else if (x < y) {
			i++;
		} else {
			k++;
		}
	}
	return shared;
}

static void test_content_defined(void)
{
	struct ps_chunker c;
	const size_t n = 8u << 20;
	uint8_t *buf = malloc(n + 4096), *mod = malloc(n + 4096);
	size_t *ea = malloc(sizeof(size_t) * 4096), *eb = malloc(sizeof(size_t) * 4096);
	size_t na, nb, after, shared;

	th_fill_random(buf, n, 21);
	ps_chunker_init(&c, 8192, 32768, 131072);
	na = cut_all(&c, buf, n, ea, 4096);

	/* insert 100 bytes at offset 1000 */
	memcpy(mod, buf, 1000);
	th_fill_random(mod + 1000, 100, 22);
	memcpy(mod + 1100, buf + 1000, n - 1000);
	nb = cut_all(&c, mod, n + 100, eb, 4096);
	after = 0;
	for (size_t i = 0; i < na; i++)
		if (ea[i] >= 2 * c.max_size)
			after++;
	shared = count_shared(ea, na, eb, nb, 100, 2 * c.max_size);
	ok(shared * 100 >= after * 98,
	   "insertion of 100 bytes near the start: %zu of %zu later boundaries unchanged", shared, after);
	ok(count_shared(ea, na, eb, nb, 100, 0) + 3 >= na,
	   "at most a few boundaries near the edit move (%zu of %zu kept)",
	   count_shared(ea, na, eb, nb, 100, 0), na);

	/* delete 777 bytes at offset 5000 */
	memcpy(mod, buf, 5000);
	memcpy(mod + 5000, buf + 5777, n - 5777);
	nb = cut_all(&c, mod, n - 777, eb, 4096);
	shared = count_shared(ea, na, eb, nb, -777, 2 * c.max_size);
	ok(shared * 100 >= after * 98, "deletion of 777 bytes: %zu of %zu later boundaries unchanged",
	   shared, after);

	/* overwrite one byte in the middle: boundaries before it are untouched */
	memcpy(mod, buf, n);
	mod[n / 2] ^= 0x5a;
	nb = cut_all(&c, mod, n, eb, 4096);
	{
		size_t before = 0, same_before = 0;
		for (size_t i = 0; i < na && ea[i] < n / 2; i++) {
			before++;
			if (i < nb && eb[i] == ea[i])
				same_before++;
		}
		ok(before > 0 && before == same_before, "a changed byte moves no boundary before it");
		ok(count_shared(ea, na, eb, nb, 0, 0) + 3 >= na, "and at most a few after it");
	}

	/* a shifted copy: the same content at a different offset cuts the same */
	{
		size_t off = ea[3];
		size_t nc = cut_all(&c, buf + off, n - off, eb, 4096);
		int same = nc == na - 4;
		for (size_t i = 0; same && i < nc; i++)
			if (eb[i] + off != ea[i + 4])
				same = 0;
		ok(same, "cutting from a chunk boundary reproduces the following chunks exactly");
	}
	free(buf);
	free(mod);
	free(ea);
	free(eb);
}

static void test_throughput(void)
{
	struct ps_chunker c;
	const size_t n = 64u << 20;
	uint8_t *buf = malloc(n);
	size_t *e = malloc(sizeof(size_t) * 1024), k;
	double t0, dt;
	th_fill_random(buf, n, 31);
	ps_chunker_init(&c, PS_CHUNK_MIN_DEFAULT, PS_CHUNK_AVG_DEFAULT, PS_CHUNK_MAX_DEFAULT);
	t0 = th_now();
	k = cut_all(&c, buf, n, e, 1024);
	dt = th_now() - t0;
	diag("throughput: %.0f MiB/s (64 MiB random data, %zu chunks, %.3f s)",
	     dt > 0 ? 64.0 / dt : 0.0, k, dt);
	ok(k > 0, "throughput run completed");
	free(buf);
	free(e);
}

int main(void)
{
	test_init();
	test_gear();
	test_limits_and_determinism();
	test_content_defined();
	test_throughput();
	return done_testing();
}
