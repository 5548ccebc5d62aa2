/*
 * chunk.h - content-defined chunking (FastCDC: gear hash with normalized
 * chunking).  A cut point depends only on the 64 bytes before it, so an edit
 * moves boundaries only near the edit and the rest of a file dedups.
 */
#ifndef PS_CHUNK_H
#define PS_CHUNK_H
#include <stddef.h>
#include <stdint.h>

struct ps_chunker {
	uint32_t min_size;  /* no cut before this many bytes */
	uint32_t avg_size;  /* power of two: the normalization point */
	uint32_t max_size;  /* always cut here */
	uint64_t mask_s;    /* harder mask used before avg_size */
	uint64_t mask_l;    /* easier mask used after avg_size */
};

#define PS_CHUNK_MIN_DEFAULT (64u * 1024)
#define PS_CHUNK_AVG_DEFAULT (256u * 1024)
#define PS_CHUNK_MAX_DEFAULT (1024u * 1024)

/* Validates and prepares parameters: min >= 64, avg power of two,
 * min < avg < max <= 64 MiB. Returns 0 or -1. */
int ps_chunker_init(struct ps_chunker *c, uint32_t min, uint32_t avg, uint32_t max);

/* Returns the length of the first chunk of buf[0..len). When len is below
 * max_size and no cut point is found, returns len: the caller must then
 * either be at the end of the data or supply more bytes. */
size_t ps_chunker_cut(const struct ps_chunker *c, const uint8_t *buf, size_t len);

/* The 256-entry gear table (deterministic, see docs/FORMAT.md). */
const uint64_t *ps_chunker_gear(void);
#endif
