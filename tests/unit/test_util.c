/*
 * test_util.c - util/: errors, the allocation-failure hook, growable buffers
 * and their maximum, little-endian and LEB128 encoding against the bounded
 * reader (edge values, overlong and truncated input), hex, sizes, ages,
 * times, id sets and the local file helpers.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>

/* Under ASan a request for SIZE_MAX bytes must return NULL (as libc's
 * malloc does) instead of aborting: the buffer tests rely on it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* ------------------------------------------------------------ errors */

static void test_errors(void)
{
	struct ps_error e;
	char longpre[600];
	ps_error_clear(&e);
	is_int(e.code, 0, "cleared error has code 0");
	is_str(e.msg, "", "cleared error has an empty message");
	is_int(ps_err(&e, PS_ECORRUPT, "pack %d is bad", 7), PS_ECORRUPT, "ps_err returns its code");
	is_int(e.code, PS_ECORRUPT, "ps_err records the code");
	is_str(e.msg, "pack 7 is bad", "ps_err formats the message");
	is_int(ps_err(NULL, PS_EINVAL, "x"), PS_EINVAL, "ps_err(NULL) still returns the code");
	is_int(ps_err_prefix(&e, "store '%s'", "s1"), PS_ECORRUPT, "ps_err_prefix keeps the code");
	is_str(e.msg, "store 's1': pack 7 is bad", "ps_err_prefix prefixes the message");
	memset(longpre, 'p', sizeof(longpre) - 1);
	longpre[sizeof(longpre) - 1] = 0;
	ps_err_prefix(&e, "%s", longpre);
	ok(strlen(e.msg) < sizeof(e.msg) && e.msg[sizeof(e.msg) - 1] == 0,
	   "an overlong prefix leaves a terminated message (%zu bytes)", strlen(e.msg));
	ps_error_clear(&e);
	is_int(ps_err_prefix(&e, "ctx"), PS_ERROR, "ps_err_prefix on a cleared error gives PS_ERROR");
	errno = ENOENT;
	is_int(ps_err_sys(&e, "cannot open '%s'", "f"), PS_ERROR, "ps_err_sys returns PS_ERROR");
	is_int(e.sys_errno, ENOENT, "ps_err_sys records errno");
	ok(!strncmp(e.msg, "cannot open 'f': ", 17) && strstr(e.msg, strerror(ENOENT)),
	   "ps_err_sys appends strerror: '%s'", e.msg);
	is_int(errno, ENOENT, "ps_err_sys preserves errno");
	is_int(ps_err_prefix(NULL, "x"), PS_ERROR, "ps_err_prefix(NULL) is harmless");
}

/* ------------------------------------------------------------ alloc hook */

static void test_alloc_hook(void)
{
	void *p1, *p2, *p3, *p4;
	struct ps_buf b = PS_BUF_INIT;
	char *s;

	ps_alloc_fail_after(3);
	p1 = ps_malloc(10);
	p2 = ps_calloc(2, 8);
	p3 = ps_malloc(10);
	p4 = ps_realloc(NULL, 10);
	ok(p1 && p2, "allocations before the n-th succeed");
	ok(p3 == NULL, "the 3rd allocation after ps_alloc_fail_after(3) fails");
	ok(p4 != NULL, "the hook fires once: later allocations succeed");
	ps_free(p1);
	ps_free(p2);
	ps_free(p4);

	ps_alloc_fail_after(1);
	s = ps_strdup("hello");
	ok(s == NULL, "ps_strdup fails when its allocation fails");
	s = ps_strdup("hello");
	is_str(s, "hello", "ps_strdup works again afterwards");
	ps_free(s);
	ok(ps_strdup(NULL) == NULL, "ps_strdup(NULL) is NULL");

	ps_alloc_fail_after(1);
	p1 = ps_realloc(NULL, 4);
	ok(p1 == NULL, "ps_realloc honours the hook");

	ps_alloc_fail_after(5);
	ps_alloc_fail_after(0);
	p1 = ps_malloc(1);
	p2 = ps_malloc(1);
	p3 = ps_malloc(1);
	p4 = ps_malloc(1);
	ps_free(ps_malloc(1));
	ok(p1 && p2 && p3 && p4, "ps_alloc_fail_after(0) turns the hook off");
	ps_free(p1);
	ps_free(p2);
	ps_free(p3);
	ps_free(p4);

	ps_alloc_fail_after(-1);
	p1 = ps_malloc(0);
	ok(p1 != NULL, "a negative count is off too; ps_malloc(0) returns a pointer");
	ps_free(p1);
	ps_alloc_fail_after(0);

	/* a buffer whose growth fails is unchanged */
	ok(!ps_buf_append(&b, "abc", 3), "append to an empty buffer");
	ps_alloc_fail_after(1);
	{
		char big[1000];
		memset(big, 'x', sizeof(big));
		ok(ps_buf_append(&b, big, sizeof(big)) == -1, "append fails when growth cannot allocate");
	}
	ps_alloc_fail_after(0);
	is_int(b.len, 3, "the failed append left the length alone");
	is_mem(b.data, "abc", 3, "the failed append left the content alone");
	ps_buf_release(&b);

	ps_alloc_fail_after(1);
	p1 = ps_calloc(1, 1);
	ok(p1 == NULL, "ps_calloc honours the hook");
	ps_free(NULL);
	ps_alloc_fail_after(0);
}

/* ------------------------------------------------------------ buffers */

static void test_buf(void)
{
	struct ps_buf b = PS_BUF_INIT;
	uint8_t big[5000];
	int good = 1;

	th_fill_random(big, sizeof(big), 1);
	ok(!ps_buf_append(&b, big, 1), "append 1 byte");
	is_int(b.len, 1, "len 1");
	ok(b.cap >= 1 && b.cap <= 256, "first allocation is small (cap %zu)", b.cap);
	ok(!ps_buf_append(&b, big + 1, 299), "append 299 more");
	ok(b.cap >= 300, "cap grew to %zu", b.cap);
	for (size_t i = 300; i < sizeof(big); i += 700)
		if (ps_buf_append(&b, big + i, i + 700 <= sizeof(big) ? 700 : sizeof(big) - i))
			good = 0;
	ok(good, "many appends succeed");
	is_int(b.len, sizeof(big), "length is the sum of appends");
	is_mem(b.data, big, sizeof(big), "content is preserved across growth");
	ok(!ps_buf_append(&b, NULL, 0), "appending nothing succeeds");
	is_int(b.len, sizeof(big), "appending nothing changes nothing");
	ps_buf_reset(&b);
	is_int(b.len, 0, "reset empties");
	ok(b.data != NULL && b.cap >= sizeof(big), "reset keeps the memory");
	ps_buf_release(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0, "release frees and resets");
	ps_buf_release(&b);
	ok(1, "release twice is harmless");

	/* max */
	b.max = 1000;
	ok(!ps_buf_append(&b, big, 600), "append 600 under max 1000");
	ok(b.cap <= 1000, "cap never exceeds max (cap %zu)", b.cap);
	ok(!ps_buf_append(&b, big, 400), "append up to exactly max");
	is_int(b.len, 1000, "len == max");
	ok(b.cap == 1000, "cap clamped to max");
	ok(ps_buf_append(&b, big, 1) == -1, "appending beyond max fails");
	is_int(b.len, 1000, "failed append leaves len");
	ok(ps_buf_put_u8(&b, 1) == -1, "put_u8 beyond max fails");
	ok(ps_buf_reserve(&b, 0) == 0, "reserve(0) at max succeeds");
	ok(ps_buf_reserve(&b, SIZE_MAX) == -1, "reserve(SIZE_MAX) fails");
	ps_buf_release(&b);

	b.max = 0;
	ok(ps_buf_reserve(&b, SIZE_MAX) == -1, "reserve(SIZE_MAX) fails without a max");
	ok(!ps_buf_append(&b, "x", 1), "buffer still usable");
	ok(ps_buf_reserve(&b, SIZE_MAX - 1) == -1, "reserve overflowing len + extra fails");
	is_int(b.len, 1, "still 1 byte");
	ps_buf_release(&b);

	/* printf */
	ok(!ps_buf_printf(&b, "%s-%d", "ab", 42), "printf");
	is_int(b.len, 5, "printf length excludes the NUL");
	is_str((char *)b.data, "ab-42", "printf content, NUL-terminated");
	ok(!ps_buf_printf(&b, "%05u", 7u), "printf appends");
	is_str((char *)b.data, "ab-4200007", "printf appended");
	ps_buf_release(&b);
	b.max = 4;
	ok(ps_buf_printf(&b, "%s", "too long") == -1, "printf beyond max fails");
	is_int(b.len, 0, "nothing was added");
	ps_buf_release(&b);
	b.max = 0;

	/* little endian */
	ok(!ps_buf_put_u16(&b, 0x1234) && !ps_buf_put_u32(&b, 0xdeadbeef) &&
	   !ps_buf_put_u64(&b, 0x0102030405060708ULL) && !ps_buf_put_u8(&b, 0xff),
	   "put u16/u32/u64/u8");
	{
		static const uint8_t want[] = { 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde, 8, 7, 6, 5, 4, 3, 2, 1, 0xff };
		struct ps_rd r;
		is_int(b.len, sizeof(want), "15 bytes");
		is_mem(b.data, want, sizeof(want), "little-endian layout");
		ps_rd_init(&r, b.data, b.len);
		is_int(ps_rd_u16(&r), 0x1234, "rd_u16");
		is_int(ps_rd_u32(&r), 0xdeadbeef, "rd_u32");
		ok(ps_rd_u64(&r) == 0x0102030405060708ULL, "rd_u64");
		is_int(ps_rd_u8(&r), 0xff, "rd_u8");
		is_int(ps_rd_left(&r), 0, "all consumed");
		ok(!r.bad, "no overrun");
		is_int(ps_rd_u8(&r), 0, "reading past the end gives 0");
		ok(r.bad, "and sets bad");
		ps_rd_init(&r, b.data, 3);
		is_int(ps_rd_u32(&r), 0, "u32 from 3 bytes gives 0");
		ok(r.bad, "u32 from 3 bytes sets bad");
		is_int(ps_rd_left(&r), 3, "a failed read consumes nothing");
		ps_rd_init(&r, b.data, 9);
		ok(ps_rd_bytes(&r, 10) == NULL && r.bad, "rd_bytes(n > left) is NULL and bad");
		ps_rd_init(&r, b.data, 9);
		ok(ps_rd_bytes(&r, 9) == b.data && !r.bad, "rd_bytes(left) succeeds");
		ok(ps_rd_bytes(&r, 0) != NULL && !r.bad, "rd_bytes(0) at the end succeeds");
		ps_rd_init(&r, b.data, 9);
		ps_rd_bytes(&r, 20);
		ok(ps_rd_bytes(&r, 1) == NULL, "once bad, every read fails");
		ps_rd_init(&r, b.data, 9);
		ok(ps_rd_bytes(&r, SIZE_MAX) == NULL && r.bad, "rd_bytes(SIZE_MAX) fails safely");
	}
	{
		uint8_t p[8];
		ps_put_le32(p, 0x11223344);
		ok(p[0] == 0x44 && p[3] == 0x11 && ps_get_le32(p) == 0x11223344, "put/get_le32");
		ps_put_le64(p, 0x8877665544332211ULL);
		ok(p[0] == 0x11 && p[7] == 0x88 && ps_get_le64(p) == 0x8877665544332211ULL, "put/get_le64");
	}
	ps_buf_release(&b);
}

/* ------------------------------------------------------------ LEB128 */

static size_t uvar_len(uint64_t v)
{
	struct ps_buf b = PS_BUF_INIT;
	size_t n;
	ps_buf_put_uvar(&b, v);
	n = b.len;
	ps_buf_release(&b);
	return n;
}

static void test_leb128(void)
{
	static const uint64_t uv[] = {
		0, 1, 2, 63, 64, 127, 128, 129, 255, 256, 16383, 16384, 16385, 2097151, 2097152,
		0xffffffffULL, 0x100000000ULL, (1ULL << 56) - 1, 1ULL << 56, (1ULL << 63) - 1,
		1ULL << 63, (1ULL << 63) + 1, UINT64_MAX - 1, UINT64_MAX,
	};
	static const int64_t sv[] = {
		0, 1, -1, 2, -2, 63, -64, 64, -65, INT32_MAX, INT32_MIN, (int64_t)1 << 62,
		-((int64_t)1 << 62), INT64_MAX - 1, INT64_MAX, INT64_MIN + 1, INT64_MIN,
	};
	struct ps_buf b = PS_BUF_INIT;
	struct ps_rd r;
	int good = 1;

	for (size_t i = 0; i < PS_ARRAY_LEN(uv); i++)
		if (ps_buf_put_uvar(&b, uv[i]))
			good = 0;
	ps_rd_init(&r, b.data, b.len);
	for (size_t i = 0; i < PS_ARRAY_LEN(uv); i++) {
		uint64_t v = ps_rd_uvar(&r);
		if (v != uv[i]) {
			diag("uvar %zu: got %llu want %llu", i, (unsigned long long)v,
			     (unsigned long long)uv[i]);
			good = 0;
		}
	}
	ok(good && !r.bad && ps_rd_left(&r) == 0, "uvar round trip of %zu edge values",
	   PS_ARRAY_LEN(uv));
	ps_buf_reset(&b);

	good = 1;
	for (size_t i = 0; i < PS_ARRAY_LEN(sv); i++)
		ps_buf_put_svar(&b, sv[i]);
	ps_rd_init(&r, b.data, b.len);
	for (size_t i = 0; i < PS_ARRAY_LEN(sv); i++) {
		int64_t v = ps_rd_svar(&r);
		if (v != sv[i]) {
			diag("svar %zu: got %lld want %lld", i, (long long)v, (long long)sv[i]);
			good = 0;
		}
	}
	ok(good && !r.bad && ps_rd_left(&r) == 0, "svar round trip of %zu edge values",
	   PS_ARRAY_LEN(sv));
	ps_buf_reset(&b);

	/* encoded sizes and exact bytes */
	is_int(uvar_len(0), 1, "0 takes 1 byte");
	is_int(uvar_len(127), 1, "127 takes 1 byte");
	is_int(uvar_len(128), 2, "128 takes 2 bytes");
	is_int(uvar_len(16383), 2, "16383 takes 2 bytes");
	is_int(uvar_len(16384), 3, "16384 takes 3 bytes");
	is_int(uvar_len((1ULL << 63) - 1), 9, "2^63-1 takes 9 bytes");
	is_int(uvar_len(UINT64_MAX), 10, "2^64-1 takes 10 bytes");
	ps_buf_put_uvar(&b, 300);
	is_mem(b.data, "\xac\x02", 2, "300 encodes as ac 02");
	ps_buf_reset(&b);
	ps_buf_put_uvar(&b, UINT64_MAX);
	is_mem(b.data, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10, "2^64-1 encodes as 9x ff, 01");
	ps_buf_reset(&b);
	ps_buf_put_svar(&b, -1);
	ps_buf_put_svar(&b, 1);
	ps_buf_put_svar(&b, -64);
	ps_buf_put_svar(&b, INT64_MIN);
	is_mem(b.data, "\x01\x02\x7f\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13,
	       "zigzag: -1 -> 1, 1 -> 2, -64 -> 127, INT64_MIN -> 2^64-1");
	ps_buf_release(&b);

	/* malformed input */
	{
		static const uint8_t trunc1[] = { 0x80 };
		static const uint8_t trunc9[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
		static const uint8_t over11[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
		static const uint8_t ovf10[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
		static const uint8_t ovf10b[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f };
		static const uint8_t cont10[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00 };
		static const uint8_t max10[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
		uint64_t v;
		ps_rd_init(&r, trunc1, sizeof(trunc1));
		v = ps_rd_uvar(&r);
		ok(r.bad && v == 0, "a lone continuation byte is truncated: bad, 0");
		ps_rd_init(&r, trunc9, sizeof(trunc9));
		v = ps_rd_uvar(&r);
		ok(r.bad && v == 0, "9 continuation bytes and no end: bad");
		ps_rd_init(&r, trunc9, 0);
		ps_rd_uvar(&r);
		ok(r.bad, "uvar from empty input: bad");
		ps_rd_init(&r, over11, sizeof(over11));
		v = ps_rd_uvar(&r);
		ok(r.bad && v == 0, "an 11-byte (overlong) varint is rejected");
		ps_rd_init(&r, ovf10, sizeof(ovf10));
		v = ps_rd_uvar(&r);
		ok(r.bad && v == 0, "a 10th byte of 0x02 overflows 64 bits: rejected");
		ps_rd_init(&r, ovf10b, sizeof(ovf10b));
		ps_rd_uvar(&r);
		ok(r.bad, "a 10th byte of 0x7f overflows 64 bits: rejected");
		ps_rd_init(&r, cont10, sizeof(cont10));
		ps_rd_uvar(&r);
		ok(r.bad, "a 10th byte with the continuation bit is rejected");
		ps_rd_init(&r, max10, sizeof(max10));
		v = ps_rd_uvar(&r);
		ok(!r.bad && v == 1ULL << 63, "a 10th byte of 0x01 is 2^63");
		ps_rd_init(&r, ovf10, sizeof(ovf10));
		ps_rd_svar(&r);
		ok(r.bad, "svar inherits uvar's overflow check");
		ps_rd_init(&r, trunc1, sizeof(trunc1));
		ps_rd_uvar(&r);
		is_int(ps_rd_uvar(&r), 0, "reads after bad return 0");
		ok(r.bad, "and stay bad");
	}
	/* a few thousand random values */
	{
		uint64_t s = 42;
		good = 1;
		for (int i = 0; i < 5000; i++) {
			uint64_t v = th_rand(&s) >> (th_rand(&s) & 63);
			int64_t w = (int64_t)th_rand(&s) >> (th_rand(&s) & 63);
			ps_buf_put_uvar(&b, v);
			ps_buf_put_svar(&b, w);
			ps_rd_init(&r, b.data, b.len);
			if (ps_rd_uvar(&r) != v || ps_rd_svar(&r) != w || r.bad || ps_rd_left(&r))
				good = 0;
			ps_buf_reset(&b);
		}
		ok(good, "5000 random uvar/svar round trips");
		ps_buf_release(&b);
	}
}

/* ------------------------------------------------------------ hex */

static void test_hex(void)
{
	uint8_t in[32], out[32];
	char hex[65];
	for (int i = 0; i < 32; i++)
		in[i] = (uint8_t)(i * 37 + 5);
	ps_hex_encode(in, 32, hex);
	is_int(strlen(hex), 64, "hex of 32 bytes is 64 digits");
	ok(strspn(hex, "0123456789abcdef") == 64, "lower-case digits only");
	ok(!ps_hex_decode(hex, out, 32), "decode");
	is_mem(out, in, 32, "hex round trip");
	ps_hex_encode((const uint8_t *)"\x00\xff\x10", 3, hex);
	is_str(hex, "00ff10", "known encoding");
	ps_hex_encode(in, 0, hex);
	is_str(hex, "", "empty encoding");
	ok(ps_hex_decode("0g", out, 1) == -1, "non-hex digit rejected");
	ok(ps_hex_decode("g0", out, 1) == -1, "non-hex first digit rejected");
	ok(ps_hex_decode("0", out, 1) == -1, "odd length (NUL as digit) rejected");
	ok(ps_hex_decode("", out, 1) == -1, "empty string for 1 byte rejected");
	ok(ps_hex_decode("zz", out, 0) == 0, "decoding 0 bytes reads nothing");
	ok(!ps_hex_decode("a0B1", out, 1) && out[0] == 0xa0, "only the requested digits are read");
	ps_id_hex(in, hex);
	ok(!ps_hex_decode(hex, out, 32) && !memcmp(in, out, 32), "ps_id_hex round trip");
}

/* ------------------------------------------------------------ sizes */

static void test_parse_size(void)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "4G", 4294967296ULL }, { "1.5M", 1572864ULL }, { "10", 10 }, { "0", 0 },
		{ "512M", 536870912ULL }, { "1.5T", 1649267441664ULL }, { "1k", 1024 },
		{ "1K", 1024 }, { "2KiB", 2048 }, { "2KB", 2048 }, { "3gb", 3221225472ULL },
		{ "1P", 1ULL << 50 }, { "0.5K", 512 }, { "16383P", 16383ULL << 50 },
	};
	static const char *bad[] = {
		"", "-1", "4X", "G", "+5", "4GG", "4 G", "1.5.5M", "M4", "4Gi5", "-0", "inf", "1e400",
		"16384P", "18446744073709551616", "99999999999999999999999",
	};
	uint64_t v;
	for (size_t i = 0; i < PS_ARRAY_LEN(good); i++) {
		v = 12345;
		if (is_int(ps_parse_size(good[i].s, &v), 0, "parse_size(\"%s\") succeeds", good[i].s))
			ok(v == good[i].v, "parse_size(\"%s\") = %llu (got %llu)", good[i].s,
			   (unsigned long long)good[i].v, (unsigned long long)v);
	}
	for (size_t i = 0; i < PS_ARRAY_LEN(bad); i++) {
		v = 12345;
		is_int(ps_parse_size(bad[i], &v), -1, "parse_size(\"%s\") is rejected", bad[i]);
		ok(v == 12345, "a rejected size leaves *out alone");
	}
	is_int(ps_parse_size(NULL, &v), -1, "parse_size(NULL) is rejected");
	v = 12345;
	is_int(ps_parse_size("nan", &v), -1, "parse_size(\"nan\") is rejected");
	v = 12345;
	is_int(ps_parse_size("nanG", &v), -1, "parse_size(\"nanG\") is rejected");
}

static void test_format_size(void)
{
	static const struct { uint64_t n; const char *s; } cases[] = {
		{ 0, "0 B" }, { 1, "1 B" }, { 1023, "1023 B" }, { 1024, "1.00 KiB" },
		{ 1536, "1.50 KiB" }, { 10 * 1024, "10.0 KiB" }, { 100 * 1024, "100 KiB" },
		{ 1048576, "1.00 MiB" }, { 4294967296ULL, "4.00 GiB" }, { 1649267441664ULL, "1.50 TiB" },
		{ 1ULL << 50, "1.00 PiB" }, { UINT64_MAX, "16384 PiB" },
	};
	char buf[64];
	for (size_t i = 0; i < PS_ARRAY_LEN(cases); i++) {
		ps_format_size(cases[i].n, buf, sizeof(buf));
		is_str(buf, cases[i].s, "format_size(%llu)", (unsigned long long)cases[i].n);
	}
	memset(buf, 'x', sizeof(buf));
	ps_format_size(4294967296ULL, buf, 4);
	is_str(buf, "4.0", "format_size truncates to the buffer and terminates");
	/* parse(format(x)) is close to x */
	{
		uint64_t v = 0;
		ps_format_size(1572864, buf, sizeof(buf));
		buf[strcspn(buf, " ")] = 0;
		strcat(buf, "M");
		ok(!ps_parse_size(buf, &v) && v == 1572864, "parse_size(format_size(1.5 MiB)) round trip");
	}
}

static void test_format_age(void)
{
	static const struct { int64_t s; const char *want; } cases[] = {
		{ 0, "just now" }, { 9, "just now" }, { 10, "10 seconds ago" }, { 59, "59 seconds ago" },
		{ 60, "1 minute ago" }, { 119, "1 minute ago" }, { 120, "2 minutes ago" },
		{ 3599, "59 minutes ago" }, { 3600, "1 hour ago" }, { 7200, "2 hours ago" },
		{ 86400, "1 day ago" }, { 86400 * 29, "29 days ago" }, { 86400 * 30, "1 month ago" },
		{ 86400 * 364, "12 months ago" }, { 86400 * 365, "1 year ago" },
		{ 86400 * 365 * 3, "3 years ago" },
	};
	const int64_t now = 1800000000LL * 1000000000LL;
	char buf[64];
	for (size_t i = 0; i < PS_ARRAY_LEN(cases); i++) {
		ps_format_age(now - cases[i].s * 1000000000LL, now, buf, sizeof(buf));
		is_str(buf, cases[i].want, "format_age(%lld s)", (long long)cases[i].s);
	}
	ps_format_age(now + 5000000000LL, now, buf, sizeof(buf));
	is_str(buf, "in the future", "a time after now is in the future");
	ps_format_age(now - 999999999LL, now, buf, sizeof(buf));
	is_str(buf, "just now", "less than a second ago");
}

static void test_times(void)
{
	char buf[64];
	ps_format_time(0, buf, sizeof(buf));
	is_str(buf, "1970-01-01T00:00:00.000000Z", "format_time(0)");
	ps_format_time(1764064312123456789LL, buf, sizeof(buf));
	is_str(buf, "2025-11-25T09:51:52.123456Z", "format_time truncates to microseconds");
	ps_format_time(-1500, buf, sizeof(buf));
	is_str(buf, "1969-12-31T23:59:59.999999Z", "format_time before the epoch");
	ps_format_time_ns(0, 5, buf, sizeof(buf));
	is_str(buf, "1970-01-01T00:00:00.000000005Z", "format_time_ns keeps nanoseconds");
	ps_format_time_ns(2147483648LL, 999999999, buf, sizeof(buf));
	is_str(buf, "2038-01-19T03:14:08.999999999Z", "format_time_ns after 2038");
	ok(ps_now_ns() > 1600000000LL * 1000000000LL, "now is after 2020");
	{
		int64_t a = ps_mono_ns();
		ps_sleep_ms(20);
		ok(ps_mono_ns() - a >= 19000000LL, "sleep_ms(20) sleeps at least ~20 ms");
	}
	ok(ps_hostname()[0] != 0, "hostname is known: %s", ps_hostname());
	ok(ps_hostname() == ps_hostname(), "hostname is cached");
	ok(ps_ncpus() >= 1 && ps_ncpus() <= 256, "ncpus in [1,256]: %d", ps_ncpus());
	{
		uint8_t a[32] = { 0 }, z[32] = { 0 };
		ok(!ps_random_bytes(a, sizeof(a)) && memcmp(a, z, 32), "random bytes are not all zero");
	}
}

/* ------------------------------------------------------------ idset */

static void test_idset(void)
{
	struct ps_idset s = { 0 };
	uint8_t ids[3000][32], other[32];
	int good = 1;
	uint8_t *flag;

	for (int i = 0; i < 3000; i++)
		th_fill_random(ids[i], 32, (uint64_t)i + 100);
	ok(ps_idset_get(&s, ids[0]) == NULL, "get on an empty set is NULL");
	/* ids that share the 8 hashed bytes still differ */
	memcpy(ids[1], ids[0], 32);
	ids[1][31] ^= 1;
	for (int i = 0; i < 3000; i++)
		if (ps_idset_add(&s, ids[i]) != 1)
			good = 0;
	ok(good, "3000 distinct ids are added (1)");
	is_int(s.n, 3000, "n counts them");
	ok(s.cap >= 4000 && (s.cap & (s.cap - 1)) == 0, "cap %zu is a power of two above 4/3 n", s.cap);
	good = 1;
	for (int i = 0; i < 3000; i++)
		if (ps_idset_add(&s, ids[i]) != 0)
			good = 0;
	ok(good, "adding them again returns 0");
	is_int(s.n, 3000, "n unchanged");
	good = 1;
	for (int i = 0; i < 3000; i++) {
		flag = ps_idset_get(&s, ids[i]);
		if (!flag || *flag != 1)
			good = 0;
	}
	ok(good, "every id is found with flag 1");
	th_fill_random(other, 32, 99999);
	ok(ps_idset_get(&s, other) == NULL, "an absent id is not found");
	flag = ps_idset_get(&s, ids[7]);
	*flag |= 4;
	ok(*ps_idset_get(&s, ids[7]) == 5, "caller flag bits stick");
	ok(*ps_idset_get(&s, ids[8]) == 1, "other flags untouched");

	/* growth failure: fill to the threshold, then fail the allocation */
	{
		struct ps_idset t = { 0 };
		int i = 0, r;
		while (t.cap == 0 || (t.n + 1) * 4 < t.cap * 3)
			ps_idset_add(&t, ids[i++]);
		size_t cap = t.cap, n = t.n;
		ps_alloc_fail_after(1);
		r = ps_idset_add(&t, ids[i]);
		ps_alloc_fail_after(0);
		is_int(r, -1, "add returns -1 when growth cannot allocate");
		ok(t.cap == cap && t.n == n && ps_idset_get(&t, ids[0]) && !ps_idset_get(&t, ids[i]),
		   "the set is intact and the id was not added");
		is_int(ps_idset_add(&t, ids[i]), 1, "the same add succeeds afterwards");
		ok(t.cap == cap * 2, "and grows the table");
		ps_idset_release(&t);
	}
	ps_idset_release(&s);
	ok(s.keys == NULL && s.used == NULL && s.n == 0 && s.cap == 0, "release resets");
	ps_idset_release(&s);
}

/* ------------------------------------------------------------ files */

static void test_files(void)
{
	const char *dir = th_tmpdir("files");
	char path[4096], deep[4096];
	struct ps_buf b = PS_BUF_INIT;
	struct ps_error e;
	uint8_t data[200000];
	size_t len;
	uint8_t *back;

	th_fill_random(data, sizeof(data), 7);
	snprintf(path, sizeof(path), "%s/f1", dir);
	is_int(ps_write_file_atomic(path, data, sizeof(data), &e), PS_OK, "write_file_atomic");
	back = th_read_file(path, &len);
	ok(back && len == sizeof(data) && !memcmp(back, data, len), "the file holds the data");
	free(back);
	is_int(ps_write_file_atomic(path, "new", 3, &e), PS_OK, "write_file_atomic replaces");
	back = th_read_file(path, &len);
	ok(back && len == 3 && !memcmp(back, "new", 3), "the file was replaced whole");
	free(back);
	ps_write_file_atomic(path, data, sizeof(data), &e);
	is_int(ps_read_file(path, 1u << 20, &b, &e), PS_OK, "read_file");
	ok(b.len == sizeof(data) && !memcmp(b.data, data, b.len), "read_file content");
	ps_buf_release(&b);
	b.max = 0;
	is_int(ps_read_file(path, 100000, &b, &e), PS_ERROR, "read_file of a file over max fails");
	ok(strstr(e.msg, "larger than") != NULL, "message says it is too large: %s", e.msg);
	ps_buf_release(&b);
	b.max = 0;
	snprintf(path, sizeof(path), "%s/nope", dir);
	is_int(ps_read_file(path, 100, &b, &e), PS_ENOTFOUND, "read_file of a missing file");
	ps_buf_release(&b);
	b.max = 0;
	snprintf(path, sizeof(path), "%s/small", dir);
	th_write_file(path, "0123456789", 10);
	is_int(ps_read_file(path, 4096, &b, &e), PS_OK, "read_file of a 10-byte file with max 4096");
	ps_buf_release(&b);
	b.max = 0;
	snprintf(deep, sizeof(deep), "%s/a/b/c/d", dir);
	is_int(ps_mkdirs(deep, 0755, &e), PS_OK, "mkdirs creates a chain");
	{
		struct stat st;
		ok(!stat(deep, &st) && S_ISDIR(st.st_mode), "the deepest directory exists");
	}
	is_int(ps_mkdirs(deep, 0755, &e), PS_OK, "mkdirs of an existing chain succeeds");
	snprintf(path, sizeof(path), "%s/f1/sub", dir);
	ok(ps_mkdirs(path, 0755, &e) != PS_OK, "mkdirs through a file fails");
	{
		int fds[2];
		char rb[8];
		ok(!pipe(fds), "pipe");
		ok(!ps_write_all(fds[1], "abcdef", 6), "write_all");
		close(fds[1]);
		ok(read(fds[0], rb, sizeof(rb)) == 6 && !memcmp(rb, "abcdef", 6), "write_all wrote all");
		close(fds[0]);
	}
	{
		int fd;
		uint8_t rb[64];
		snprintf(path, sizeof(path), "%s/f1", dir);
		fd = open(path, O_RDONLY);
		is_int(ps_pread_all(fd, rb, 64, 1000), 64, "pread_all in the middle");
		ok(!memcmp(rb, data + 1000, 64), "pread_all content");
		is_int(ps_pread_all(fd, rb, 64, sizeof(data) - 10), 10, "pread_all short at the end");
		is_int(ps_pread_all(fd, rb, 64, sizeof(data) + 10), 0, "pread_all past the end is 0");
		close(fd);
		is_int(ps_pread_all(-1, rb, 1, 0), -1, "pread_all on a bad fd is -1");
	}
}

int main(void)
{
	test_errors();
	test_alloc_hook();
	test_buf();
	test_leb128();
	test_hex();
	test_parse_size();
	test_format_size();
	test_format_age();
	test_times();
	test_idset();
	test_files();
	return done_testing();
}
