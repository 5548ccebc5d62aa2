/*
 * test_compress.c - compress/: parsing and formatting of compression specs,
 * round trips through zstd, lz4 and none at many sizes, incompressible data
 * stored as codec NONE, and ps_decompress on corrupt, truncated, garbage
 * input and wrong raw lengths (always -1 or exact bytes, never a crash).
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "compress/compress.h"
#include "util/util.h"

#include <pthread.h>

static void test_parse(void)
{
	static const struct { const char *s; int codec, level; const char *canon; } good[] = {
		{ "zstd", PS_CODEC_ZSTD, 3, "zstd:3" }, { "zstd:1", PS_CODEC_ZSTD, 1, "zstd:1" },
		{ "zstd:19", PS_CODEC_ZSTD, 19, "zstd:19" }, { "zstd:7", PS_CODEC_ZSTD, 7, "zstd:7" },
		{ "lz4", PS_CODEC_LZ4, 0, "lz4" }, { "none", PS_CODEC_NONE, 0, "none" },
	};
	static const char *bad[] = {
		"", "zstd:", "zstd:0", "zstd:20", "zstd:-1", "zstd:3x", "zstd3", "zstdx", "zstd:+3 ",
		"LZ4", "lz4:1", "None", "gzip", "zstd:99999999999999999999", " zstd",
	};
	char buf[32];
	for (size_t i = 0; i < PS_ARRAY_LEN(good); i++) {
		struct ps_compression c = { -1, -1 }, c2 = { -1, -1 };
		is_int(ps_compression_parse(good[i].s, &c), 0, "parse \"%s\"", good[i].s);
		ok(c.codec == good[i].codec && c.level == good[i].level, "\"%s\" -> codec %d level %d",
		   good[i].s, c.codec, c.level);
		ps_compression_format(&c, buf, sizeof(buf));
		is_str(buf, good[i].canon, "canonical spelling of \"%s\"", good[i].s);
		ok(!ps_compression_parse(buf, &c2) && c2.codec == c.codec && c2.level == c.level,
		   "parse(format(x)) == x for \"%s\"", good[i].s);
	}
	for (size_t i = 0; i < PS_ARRAY_LEN(bad); i++) {
		struct ps_compression c = { 42, 42 };
		is_int(ps_compression_parse(bad[i], &c), -1, "\"%s\" is rejected", bad[i]);
		ok(c.codec == 42 && c.level == 42, "a rejected spec leaves the output alone");
	}
	{
		struct ps_compression c = { 99, 0 };
		ps_compression_format(&c, buf, sizeof(buf));
		is_str(buf, "none", "an unknown codec formats as none");
	}
}

/* compressible test data: words with some variety */
static void fill_text(uint8_t *p, size_t n, uint64_t seed)
{
	static const char *words[] = { "store ", "pack ", "chunk ", "tree ", "snapshot ",
				       "index ", "project\n", "dedup ", "0123 " };
	uint64_t s = seed + 1;
	size_t i = 0;
	while (i < n) {
		const char *w = words[th_rand(&s) % PS_ARRAY_LEN(words)];
		size_t l = strlen(w);
		if (l > n - i)
			l = n - i;
		memcpy(p + i, w, l);
		i += l;
	}
}

static int roundtrip(const struct ps_compression *c, const uint8_t *src, size_t n, int *codec,
		     size_t *stored)
{
	size_t cap = ps_compress_bound(n);
	uint8_t *dst = malloc(cap), *back = malloc(n ? n : 1);
	int ok_ = 0;
	*stored = ps_compress(c, src, n, dst, cap, codec);
	if ((*stored || !n) && !ps_decompress(*codec, dst, *stored, back, n) && !memcmp(back, src, n))
		ok_ = 1;
	free(dst);
	free(back);
	return ok_;
}

static void test_roundtrip(void)
{
	static const size_t sizes[] = { 1, 2, 15, 100, 4096, 65536, 300000, 1u << 20 };
	struct ps_compression zstd = { PS_CODEC_ZSTD, 3 }, zstd19 = { PS_CODEC_ZSTD, 19 },
			      lz4 = { PS_CODEC_LZ4, 0 }, none = { PS_CODEC_NONE, 0 };
	const struct ps_compression *cs[] = { &zstd, &lz4, &none, &zstd19 };
	const char *names[] = { "zstd:3", "lz4", "none", "zstd:19" };
	uint8_t *text = malloc(1u << 20), *rnd = malloc(1u << 20);
	fill_text(text, 1u << 20, 1);
	th_fill_random(rnd, 1u << 20, 2);

	for (size_t k = 0; k < 4; k++) {
		int good = 1, shrank = 1, codec_ok = 1;
		for (size_t i = 0; i < PS_ARRAY_LEN(sizes); i++) {
			int codec = -1;
			size_t stored = 0, n = sizes[i];
			if (k == 3 && n > 65536)
				continue;      /* level 19 is slow: small inputs suffice */
			if (!roundtrip(cs[k], text, n, &codec, &stored)) {
				diag("%s: %zu bytes of text do not round trip", names[k], n);
				good = 0;
			}
			if (n >= 4096) {
				if (cs[k]->codec != PS_CODEC_NONE && !(stored < n / 2))
					shrank = 0;
				if (codec != cs[k]->codec)
					codec_ok = 0;
			}
			if (cs[k]->codec == PS_CODEC_NONE && (codec != PS_CODEC_NONE || stored != n))
				codec_ok = 0;
		}
		ok(good, "%s: compressible data round trips at every size", names[k]);
		ok(codec_ok, "%s: the codec used is the one asked for (text >= 4 KiB)", names[k]);
		if (cs[k]->codec != PS_CODEC_NONE)
			ok(shrank, "%s: text shrinks to less than half", names[k]);
	}
	/* incompressible data falls back to NONE */
	for (size_t k = 0; k < 3; k++) {
		int good = 1;
		for (size_t i = 0; i < PS_ARRAY_LEN(sizes); i++) {
			int codec = -1;
			size_t stored = 0, n = sizes[i];
			size_t cap = ps_compress_bound(n);
			uint8_t *dst = malloc(cap);
			stored = ps_compress(cs[k], rnd, n, dst, cap, &codec);
			if (codec != PS_CODEC_NONE || stored != n || memcmp(dst, rnd, n)) {
				diag("%s: %zu random bytes: codec %d stored %zu", names[k], n, codec, stored);
				good = 0;
			}
			free(dst);
			if (!roundtrip(cs[k], rnd, n, &codec, &stored))
				good = 0;
		}
		ok(good, "%s: random data is stored raw as codec NONE (a copy) and round trips", names[k]);
	}
	/* empty input */
	for (size_t k = 0; k < 3; k++) {
		uint8_t dst[64];
		int codec = -1;
		size_t r = ps_compress(cs[k], text, 0, dst, sizeof(dst), &codec);
		ok(r == 0 && codec == PS_CODEC_NONE, "%s: empty input is 0 bytes of codec NONE", names[k]);
		ok(!ps_decompress(PS_CODEC_NONE, dst, 0, dst + 32, 0), "and decompresses to nothing");
	}
	/* too small a destination for incompressible data */
	{
		uint8_t dst[100];
		int codec = -1;
		is_int(ps_compress(&zstd, rnd, 200, dst, sizeof(dst), &codec), 0,
		       "random data into a too small buffer: 0 (error)");
		is_int(ps_compress(&none, rnd, 200, dst, sizeof(dst), &codec), 0,
		       "codec none into a too small buffer: 0 (error)");
	}
	ok(ps_compress_bound(0) > 0 && ps_compress_bound(1u << 20) >= (1u << 20) + 16,
	   "compress_bound covers the input");
	free(text);
	free(rnd);
}

static void test_corrupt(void)
{
	const size_t n = 100000;
	uint8_t *text = malloc(n), *back = malloc(n + 64), *rnd = malloc(n);
	int codecs[] = { PS_CODEC_ZSTD, PS_CODEC_LZ4 };
	const char *names[] = { "zstd", "lz4" };
	fill_text(text, n, 5);
	th_fill_random(rnd, n, 6);
	for (int k = 0; k < 2; k++) {
		struct ps_compression c = { codecs[k], 3 };
		size_t cap = ps_compress_bound(n), stored;
		uint8_t *z = malloc(cap), *m = malloc(cap);
		int codec, flips_rejected = 0, flips_wrong = 0, trunc_ok = 1;
		uint64_t s = 77;
		stored = ps_compress(&c, text, n, z, cap, &codec);
		ok(stored > 0 && stored < n && codec == codecs[k], "%s: compressed %zu -> %zu", names[k],
		   n, stored);
		is_int(ps_decompress(codec, z, stored, back, n), 0, "%s: intact data decompresses",
		       names[k]);
		is_int(ps_decompress(codec, z, stored, back, n - 1), -1, "%s: raw_len one short is rejected",
		       names[k]);
		is_int(ps_decompress(codec, z, stored, back, n + 1), -1, "%s: raw_len one long is rejected",
		       names[k]);
		is_int(ps_decompress(codec, z, stored, back, n / 2), -1, "%s: raw_len half is rejected",
		       names[k]);
		is_int(ps_decompress(codec, z, stored, back, 0), -1, "%s: raw_len 0 is rejected", names[k]);
		for (size_t cut = 0; cut < stored; cut += stored / 50 + 1)
			if (ps_decompress(codec, z, cut, back, n) != -1)
				trunc_ok = 0;
		ok(trunc_ok, "%s: every truncation is rejected", names[k]);
		is_int(ps_decompress(codec, z, stored - 1, back, n), -1, "%s: missing last byte rejected",
		       names[k]);
		is_int(ps_decompress(codec, rnd, 5000, back, n), -1, "%s: random garbage is rejected",
		       names[k]);
		is_int(ps_decompress(codec, text, 5000, back, n), -1, "%s: plain text is rejected",
		       names[k]);
		/* flipped bytes: either rejected or, if it still decodes to raw_len
		 * bytes, the caller's SHA-256 catches it; never a crash */
		for (int i = 0; i < 400; i++) {
			int r;
			memcpy(m, z, stored);
			m[th_rand(&s) % stored] ^= (uint8_t)(1 + th_rand(&s) % 255);
			if (i & 1)
				m[th_rand(&s) % stored] ^= 0x80;
			r = ps_decompress(codec, m, stored, back, n);
			if (r == -1)
				flips_rejected++;
			else if (memcmp(back, text, n))
				flips_wrong++;
		}
		ok(1, "%s: 400 corrupted inputs never crash", names[k]);
		diag("%s: %d of 400 corruptions rejected by the codec, %d decoded to wrong bytes "
		     "(left to the object checksum)", names[k], flips_rejected, flips_wrong);
		if (codecs[k] == PS_CODEC_ZSTD) {
			memcpy(m, z, stored);
			m[0] ^= 0xff;
			is_int(ps_decompress(codec, m, stored, back, n), -1, "zstd: a damaged frame magic is rejected");
		}
		/* appended garbage */
		memcpy(m, z, stored);
		memset(m + stored, 0xa5, 16);
		ok(ps_decompress(codec, m, stored + 16, back, n) == -1 ||
		   !memcmp(back, text, n), "%s: trailing garbage is rejected or ignored", names[k]);
		free(z);
		free(m);
	}
	is_int(ps_decompress(PS_CODEC_NONE, text, 10, back, 11), -1, "none: n != raw_len rejected");
	is_int(ps_decompress(PS_CODEC_NONE, text, 11, back, 10), -1, "none: n > raw_len rejected");
	ok(!ps_decompress(PS_CODEC_NONE, text, 10, back, 10) && !memcmp(back, text, 10),
	   "none: exact copy");
	is_int(ps_decompress(3, text, 10, back, 10), -1, "unknown codec 3 is rejected");
	is_int(ps_decompress(-1, text, 10, back, 10), -1, "codec -1 is rejected");
	is_int(ps_decompress(255, text, 10, back, 10), -1, "codec 255 is rejected");
	is_int(ps_decompress(PS_CODEC_LZ4, text, (size_t)1 << 31, back, 10), -1,
	       "lz4: input over 2 GiB is rejected before reading");
	is_int(ps_decompress(PS_CODEC_LZ4, text, 10, back, (size_t)1 << 31), -1,
	       "lz4: raw_len over 2 GiB is rejected before writing");
	is_int(ps_decompress(PS_CODEC_ZSTD, text, 0, back, 10), -1, "zstd: empty input is rejected");
	is_int(ps_decompress(PS_CODEC_LZ4, text, 0, back, 10), -1, "lz4: empty input is rejected");
	free(text);
	free(back);
	free(rnd);
}

struct thr {
	int codec;
	int bad;
	uint64_t seed;
};

static void *comp_thread(void *arg)
{
	struct thr *t = arg;
	struct ps_compression c = { t->codec, 1 };
	uint8_t *src = malloc(200000), *dst = malloc(ps_compress_bound(200000)), *back = malloc(200000);
	for (int i = 0; i < 20; i++) {
		size_t n = 1000 + (size_t)i * 9000;
		int codec;
		size_t st;
		fill_text(src, n, t->seed + (uint64_t)i);
		st = ps_compress(&c, src, n, dst, ps_compress_bound(200000), &codec);
		if (!st || ps_decompress(codec, dst, st, back, n) || memcmp(back, src, n))
			t->bad++;
	}
	free(src);
	free(dst);
	free(back);
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[6];
	struct thr t[6];
	int bad = 0;
	for (int i = 0; i < 6; i++) {
		t[i].codec = i % 2 ? PS_CODEC_LZ4 : PS_CODEC_ZSTD;
		t[i].bad = 0;
		t[i].seed = (uint64_t)i * 1000;
		pthread_create(&th[i], NULL, comp_thread, &t[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		bad += t[i].bad;
	}
	is_int(bad, 0, "6 threads compressing and decompressing at once");
}

int main(void)
{
	test_parse();
	test_roundtrip();
	test_corrupt();
	test_threads();
	return done_testing();
}
