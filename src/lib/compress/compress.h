/*
 * compress.h - per-object compression: zstd (levels 1..19), lz4, or none.
 * A chunk that does not shrink is stored raw (codec NONE), so a reader never
 * pays to decompress incompressible data.
 */
#ifndef PS_COMPRESS_H
#define PS_COMPRESS_H
#include <stddef.h>
#include <stdint.h>

enum ps_codec { PS_CODEC_NONE = 0, PS_CODEC_ZSTD = 1, PS_CODEC_LZ4 = 2 };

struct ps_compression {
	int codec;   /* enum ps_codec */
	int level;   /* zstd level; ignored otherwise */
};

/* Parses "zstd", "zstd:LEVEL", "lz4", "none". Returns 0 or -1. */
int ps_compression_parse(const char *s, struct ps_compression *out);
/* Writes the canonical spelling ("zstd:3"). */
void ps_compression_format(const struct ps_compression *c, char *buf, size_t len);

/* Upper bound of compressed size for n input bytes. */
size_t ps_compress_bound(size_t n);

/* Compresses src into dst (capacity dst_cap >= ps_compress_bound(n)).
 * Sets *codec_used to the codec actually applied (NONE when it did not
 * shrink: then dst holds a copy) and returns the stored length, or 0 on an
 * internal error. Thread-safe (one context per thread). */
size_t ps_compress(const struct ps_compression *c, const void *src, size_t n,
		   void *dst, size_t dst_cap, int *codec_used);

/* Decompresses exactly raw_len bytes. Returns 0, or -1 if the data is corrupt
 * or does not decode to exactly raw_len bytes. */
int ps_decompress(int codec, const void *src, size_t n, void *dst, size_t raw_len);
/* Whether a zstd frame of n bytes can decode to raw bytes (checks the
 * frame header's content size when present). */
int ps_zstd_size_ok(const void *src, size_t n, size_t raw);
#endif
