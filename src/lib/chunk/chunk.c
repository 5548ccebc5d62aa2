/*
 * chunk.c - FastCDC.
 *
 * The gear table is generated with splitmix64 from a fixed seed, so it is
 * part of the on-disk format: changing it changes every chunk boundary and
 * loses dedup against existing stores (FORMAT.md records the seed).
 *
 * Normalized chunking: between min_size and avg_size a mask with two more
 * one-bits than log2(avg) makes a cut unlikely, after avg_size a mask with two
 * fewer makes it likely; chunk sizes then cluster around avg_size.  The masks
 * test the high bits of the fingerprint, which depend on the last 64 bytes.
 */
#include "chunk.h"

#include <pthread.h>

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void gear_init(void)
{
	uint64_t x = 0x70726f6a73746f72ULL; /* "projstor" */
	for (int i = 0; i < 256; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		gear[i] = z ^ (z >> 31);
	}
}

const uint64_t *ps_chunker_gear(void)
{
	pthread_once(&gear_once, gear_init);
	return gear;
}

static uint64_t high_mask(unsigned bits)
{
	if (bits == 0)
		return 0;
	if (bits >= 64)
		return ~0ULL;
	return ~0ULL << (64 - bits);
}

int ps_chunker_init(struct ps_chunker *c, uint32_t min, uint32_t avg, uint32_t max)
{
	unsigned bits = 0;
	if (avg == 0 || (avg & (avg - 1)) || min < 64 || min >= avg || avg >= max ||
	    max > 64u * 1024 * 1024)
		return -1;
	while ((1u << bits) < avg)
		bits++;
	c->min_size = min;
	c->avg_size = avg;
	c->max_size = max;
	c->mask_s = high_mask(bits + 2);
	c->mask_l = high_mask(bits - 2);
	ps_chunker_gear();
	return 0;
}

size_t ps_chunker_cut(const struct ps_chunker *c, const uint8_t *buf, size_t len)
{
	const uint64_t *g = gear;
	const uint64_t ms = c->mask_s, ml = c->mask_l;
	uint64_t fp = 0;
	size_t i, normal, n = len;
	if (n <= c->min_size)
		return n;
	if (n > c->max_size)
		n = c->max_size;
	normal = c->avg_size < n ? c->avg_size : n;
	/* warm up on the 64 bytes before min_size so the fingerprint at min_size
	 * already covers a full window (cheap, and keeps cuts content-defined) */
	for (i = c->min_size - 64; i < c->min_size; i++)
		fp = (fp << 1) + g[buf[i]];
	for (; i < normal; i++) {
		fp = (fp << 1) + g[buf[i]];
		if (!(fp & ms))
			return i + 1;
	}
	for (; i < n; i++) {
		fp = (fp << 1) + g[buf[i]];
		if (!(fp & ml))
			return i + 1;
	}
	return n;
}
