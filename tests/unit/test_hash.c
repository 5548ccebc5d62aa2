/*
 * test_hash.c - hash/: SHA-256 against the FIPS 180-2 vectors, streaming in
 * pieces of every size equals one-shot, final() resets the context, and
 * one-shot hashing from many threads at once (per-thread contexts).
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "hash/hash.h"
#include "util/util.h"

#include <pthread.h>

static const char *hex32(const uint8_t d[32])
{
	static char buf[4][65];
	static int n;
	char *b = buf[n++ % 4];
	ps_hex_encode(d, 32, b);
	return b;
}

static void test_vectors(void)
{
	static const char *abc448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	uint8_t d[32];
	char *ma;

	ok(!ps_sha256("", 0, d), "sha256(\"\") succeeds");
	is_str(hex32(d), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	       "sha256(\"\")");
	ok(!ps_sha256(NULL, 0, d), "sha256(NULL, 0) succeeds");
	is_str(hex32(d), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	       "sha256(NULL, 0) is the empty hash");
	ps_sha256("abc", 3, d);
	is_str(hex32(d), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	       "sha256(\"abc\")");
	ps_sha256(abc448, strlen(abc448), d);
	is_str(hex32(d), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
	       "sha256(448-bit message)");
	ma = malloc(1000000);
	memset(ma, 'a', 1000000);
	ps_sha256(ma, 1000000, d);
	is_str(hex32(d), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
	       "sha256(1,000,000 x 'a')");
	/* streaming, 1 MB of 'a' in uneven pieces */
	{
		struct ps_sha256_ctx *c = ps_sha256_new();
		uint8_t s[32];
		size_t off = 0, step = 1;
		int good = 1;
		ok(c != NULL, "sha256_new");
		while (off < 1000000) {
			size_t n = step < 1000000 - off ? step : 1000000 - off;
			if (ps_sha256_update(c, ma + off, n))
				good = 0;
			off += n;
			step = step * 3 + 1;
			if (step > 200000)
				step = 7;
		}
		ok(good, "updates succeed");
		ok(!ps_sha256_final(c, s), "final succeeds");
		is_str(hex32(s), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
		       "streaming 1,000,000 x 'a' in uneven pieces");
		/* final resets: the context is reusable */
		ps_sha256_update(c, "ab", 2);
		ps_sha256_update(c, "", 0);
		ps_sha256_update(c, "c", 1);
		ps_sha256_final(c, s);
		is_str(hex32(s), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		       "after final the context starts over (\"ab\" + \"\" + \"c\")");
		ps_sha256_final(c, s);
		is_str(hex32(s), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		       "final with no update is the empty hash");
		ps_sha256_free(c);
	}
	ps_sha256_free(NULL);
	ok(1, "sha256_free(NULL) is harmless");
	free(ma);
}

static void test_stream_equals_oneshot(void)
{
	uint8_t buf[70000], one[32], st[32];
	int good = 1;
	th_fill_random(buf, sizeof(buf), 3);
	/* every length around the 64-byte block boundaries, split at every point */
	for (size_t len = 0; len <= 200 && good; len++) {
		ps_sha256(buf, len, one);
		for (size_t cut = 0; cut <= len; cut += (len > 40 ? 7 : 1)) {
			struct ps_sha256_ctx *c = ps_sha256_new();
			ps_sha256_update(c, buf, cut);
			ps_sha256_update(c, buf + cut, len - cut);
			ps_sha256_final(c, st);
			ps_sha256_free(c);
			if (memcmp(one, st, 32)) {
				diag("len %zu cut %zu differs", len, cut);
				good = 0;
				break;
			}
		}
	}
	ok(good, "streaming in two pieces equals one-shot for lengths 0..200, every split");
	ps_sha256(buf, sizeof(buf), one);
	{
		struct ps_sha256_ctx *c = ps_sha256_new();
		for (size_t off = 0; off < sizeof(buf); off += 1000)
			ps_sha256_update(c, buf + off, sizeof(buf) - off < 1000 ? sizeof(buf) - off : 1000);
		ps_sha256_final(c, st);
		ps_sha256_free(c);
	}
	is_mem(st, one, 32, "70000 random bytes in 1000-byte pieces equal one-shot");
	buf[12345] ^= 1;
	ps_sha256(buf, sizeof(buf), st);
	ok(memcmp(st, one, 32) != 0, "flipping one bit changes the hash");
}

struct thr {
	const uint8_t *data;
	size_t len;
	uint8_t want[32];
	int bad;
};

static void *hash_thread(void *arg)
{
	struct thr *t = arg;
	uint8_t d[32];
	for (int i = 0; i < 300; i++) {
		size_t n = t->len - (size_t)(i % 3);
		if (ps_sha256(t->data, n, d))
			t->bad++;
		if (i % 3 == 0 && memcmp(d, t->want, 32))
			t->bad++;
	}
	return NULL;
}

static void test_threads(void)
{
	uint8_t data[8][4096];
	struct thr t[8];
	pthread_t th[8];
	int bad = 0;
	for (int i = 0; i < 8; i++) {
		th_fill_random(data[i], sizeof(data[i]), (uint64_t)i + 10);
		t[i].data = data[i];
		t[i].len = sizeof(data[i]);
		t[i].bad = 0;
		ps_sha256(data[i], sizeof(data[i]), t[i].want);
	}
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, hash_thread, &t[i]);
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		bad += t[i].bad;
	}
	is_int(bad, 0, "8 threads hashing at once all get the right digests");
}

int main(void)
{
	test_vectors();
	test_stream_equals_oneshot();
	test_threads();
	return done_testing();
}
