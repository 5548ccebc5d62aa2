/*
 * compress.c - zstd / lz4 / none behind one small interface.  zstd contexts
 * are kept per thread (created on first use, freed at thread exit).
 */
#include "compress.h"

#include <lz4.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

int ps_compression_parse(const char *s, struct ps_compression *out)
{
	if (!strcmp(s, "none")) {
		out->codec = PS_CODEC_NONE;
		out->level = 0;
		return 0;
	}
	if (!strcmp(s, "lz4")) {
		out->codec = PS_CODEC_LZ4;
		out->level = 0;
		return 0;
	}
	if (!strncmp(s, "zstd", 4)) {
		int level = 3;
		if (s[4] == ':') {
			char *end;
			long v = strtol(s + 5, &end, 10);
			if (end == s + 5 || *end || v < 1 || v > 19)
				return -1;
			level = (int)v;
		} else if (s[4]) {
			return -1;
		}
		out->codec = PS_CODEC_ZSTD;
		out->level = level;
		return 0;
	}
	return -1;
}

void ps_compression_format(const struct ps_compression *c, char *buf, size_t len)
{
	switch (c->codec) {
	case PS_CODEC_ZSTD: snprintf(buf, len, "zstd:%d", c->level); break;
	case PS_CODEC_LZ4: snprintf(buf, len, "lz4"); break;
	default: snprintf(buf, len, "none"); break;
	}
}

size_t ps_compress_bound(size_t n)
{
	size_t a = ZSTD_compressBound(n);
	size_t b = (size_t)LZ4_compressBound((int)(n > 0x7E000000 ? 0x7E000000 : n));
	return (a > b ? a : b) + 16;
}

static __thread ZSTD_CCtx *tl_cctx;
static __thread ZSTD_DCtx *tl_dctx;
static pthread_key_t ckey, dkey;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;
static void free_cctx(void *p) { ZSTD_freeCCtx(p); }
static void free_dctx(void *p) { ZSTD_freeDCtx(p); }
static void keys_init(void)
{
	pthread_key_create(&ckey, free_cctx);
	pthread_key_create(&dkey, free_dctx);
}

size_t ps_compress(const struct ps_compression *c, const void *src, size_t n,
		   void *dst, size_t dst_cap, int *codec_used)
{
	size_t out = 0;
	if (c->codec == PS_CODEC_ZSTD && n > 0) {
		if (!tl_cctx) {
			pthread_once(&keys_once, keys_init);
			tl_cctx = ZSTD_createCCtx();
			if (!tl_cctx)
				return 0;
			pthread_setspecific(ckey, tl_cctx);
		}
		out = ZSTD_compressCCtx(tl_cctx, dst, dst_cap, src, n, c->level);
		if (ZSTD_isError(out))
			out = 0;
		if (out && out < n) {
			*codec_used = PS_CODEC_ZSTD;
			return out;
		}
	} else if (c->codec == PS_CODEC_LZ4 && n > 0 && n <= 0x7E000000) {
		int r = LZ4_compress_default(src, dst, (int)n, (int)(dst_cap > 0x7fffffff ? 0x7fffffff : dst_cap));
		if (r > 0 && (size_t)r < n) {
			*codec_used = PS_CODEC_LZ4;
			return (size_t)r;
		}
	}
	if (dst_cap < n)
		return 0;
	memcpy(dst, src, n);
	*codec_used = PS_CODEC_NONE;
	return n ? n : 0;
}

int ps_decompress(int codec, const void *src, size_t n, void *dst, size_t raw_len)
{
	switch (codec) {
	case PS_CODEC_NONE:
		if (n != raw_len)
			return -1;
		memcpy(dst, src, n);
		return 0;
	case PS_CODEC_ZSTD: {
		size_t r;
		if (!tl_dctx) {
			pthread_once(&keys_once, keys_init);
			tl_dctx = ZSTD_createDCtx();
			if (!tl_dctx)
				return -1;
			pthread_setspecific(dkey, tl_dctx);
		}
		r = ZSTD_decompressDCtx(tl_dctx, dst, raw_len, src, n);
		return (!ZSTD_isError(r) && r == raw_len) ? 0 : -1;
	}
	case PS_CODEC_LZ4: {
		int r;
		if (n > 0x7fffffff || raw_len > 0x7fffffff)
			return -1;
		r = LZ4_decompress_safe(src, dst, (int)n, (int)raw_len);
		return (r >= 0 && (size_t)r == raw_len) ? 0 : -1;
	}
	default:
		return -1;
	}
}

int ps_zstd_size_ok(const void *src, size_t n, size_t raw)
{
	unsigned long long cs = ZSTD_getFrameContentSize(src, n);
	if (cs == ZSTD_CONTENTSIZE_ERROR)
		return 0;
	if (cs == ZSTD_CONTENTSIZE_UNKNOWN)
		return 1;
	return cs == raw;
}
