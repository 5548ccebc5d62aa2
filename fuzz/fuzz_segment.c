/*
 * fuzz_segment.c - index segments: ps_segment_decode on untrusted bytes.
 *
 * Input: a control byte, then the segment.  With FUZZ_FIX_SUM the trailing
 * SHA-256 is recomputed first, so mutations get past the checksum.
 *
 * Invariants: a decoded segment's size is exactly header + pack table +
 * entries + checksum; every entry names a pack of the table, has a valid
 * type and lengths, and the entries are in id order; encoding the decoded
 * segment and decoding that gives the same pack table and entries.
 */
#define _GNU_SOURCE
#include "fuzz_common.h"
#include "store/store_int.h"

static int ent_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ps_seg_entry));
}

static void normalize(struct ps_seg_entry *e, size_t n)
{
	/* compare as multisets: equal ids may come back in another order */
	qsort(e, n, sizeof(*e), ent_cmp);
}

static void zero_padding(struct ps_seg_entry *e, size_t n, const struct ps_seg_entry *src)
{
	for (size_t i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		memcpy(e[i].id, src[i].id, 32);
		e[i].pack = src[i].pack;
		e[i].off = src[i].off;
		e[i].stored_len = src[i].stored_len;
		e[i].raw_len = src[i].raw_len;
		e[i].type = src[i].type;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf, (*packs)[32] = NULL, (*packs2)[32] = NULL;
	struct ps_seg_entry *ents = NULL, *ents2 = NULL;
	size_t np = 0, n = 0, np2 = 0, n2 = 0;
	struct ps_buf b = PS_BUF_INIT;
	int rc;
	if (size < 1)
		return 0;
	buf = fuzz_dup(data + 1, size - 1, 0);
	size--;
	if (data[0] & FUZZ_FIX_SUM)
		fuzz_fix_sha_tail(buf, size);
	rc = ps_segment_decode(buf, size, &packs, &np, &ents, &n, NULL);
	fuzz_trace("ps_segment_decode", rc);
	if (rc != PS_OK) {
		FUZZ_CHECK(rc == PS_ECORRUPT, "unexpected error code");
		free(buf);
		return 0;
	}
	FUZZ_CHECK(24 + 32 * (uint64_t)np + 52 * (uint64_t)n + 32 == size, "size disagrees with counts");
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(ents[i].pack < np, "entry names a pack outside the table");
		FUZZ_CHECK(ents[i].type == PS_OBJ_CHUNK || ents[i].type == PS_OBJ_TREE, "bad type accepted");
		FUZZ_CHECK(ents[i].stored_len >= PS_PACK_REC_HDR_LEN &&
			   ents[i].stored_len <= PS_OBJ_MAX + PS_PACK_REC_HDR_LEN, "bad record length");
		FUZZ_CHECK(ents[i].raw_len <= PS_OBJ_MAX, "bad raw length");
		if (i)
			FUZZ_CHECK(memcmp(ents[i - 1].id, ents[i].id, 32) <= 0, "entries out of order");
	}
	/* round trip through the encoder */
	{
		struct ps_seg_entry *copy = malloc(sizeof(*copy) * (n + 1));
		if (!copy)
			abort();
		zero_padding(copy, n, ents);
		FUZZ_CHECK(!ps_segment_encode(packs, np, copy, n, &b), "re-encoding failed");
		rc = ps_segment_decode(b.data, b.len, &packs2, &np2, &ents2, &n2, NULL);
		FUZZ_CHECK(rc == PS_OK, "the encoder's output does not decode");
		FUZZ_CHECK(np2 == np && n2 == n && b.len == size, "round trip changed the counts");
		FUZZ_CHECK(!np || !memcmp(packs, packs2, 32 * np), "round trip changed the pack table");
		zero_padding(copy, n, ents);
		{
			struct ps_seg_entry *c2 = malloc(sizeof(*c2) * (n + 1));
			if (!c2)
				abort();
			zero_padding(c2, n, ents2);
			normalize(copy, n);
			normalize(c2, n);
			FUZZ_CHECK(!n || !memcmp(copy, c2, sizeof(*c2) * n), "round trip changed the entries");
			free(c2);
		}
		free(copy);
	}
	ps_buf_release(&b);
	free(packs);
	free(ents);
	free(packs2);
	free(ents2);
	free(buf);
	return 0;
}
