/*
 * fuzz_pack.c - pack files: ps_pack_parse_footer, ps_pack_parse_index and
 * ps_pack_decode_record on untrusted bytes.
 *
 * Input: a control byte, then the payload.
 *   control & 0x02 == 0: the payload is a whole pack file.  The footer is
 *     parsed from its last 56 bytes, the index it points at is parsed, and
 *     every record the index lists is decoded against the index's id, as
 *     `check --read-data` does.
 *   control & 0x02 != 0: the payload is one object record.
 *   control & 0x01 (FUZZ_FIX_SUM): before a record is decoded its id is
 *     replaced by the SHA-256 of what its data decompresses to, so the
 *     success path (and its invariants) is reached.
 *   control & 0x04: decode a record without an expected id.
 *
 * Invariants: a parsed footer and index describe ranges inside the file; a
 * decoded record has the type and raw length of its header and hashes to
 * its id.
 */
#define _GNU_SOURCE
#include "fuzz_common.h"
#include "store/store_int.h"

/* With FUZZ_FIX_SUM: a copy of the record whose id is right for its data
 * (when the data decompresses at all). */
static uint8_t *fixed_record(const uint8_t *rec, size_t len)
{
	uint8_t *c = fuzz_dup(rec, len, 0);
	if (len >= PS_PACK_REC_HDR_LEN) {
		uint32_t raw = ps_get_le32(rec + 4);
		if (raw <= (1u << 22)) {
			uint8_t *out = malloc(raw ? raw : 1);
			if (!out)
				abort();
			if (!ps_decompress(rec[1], rec + PS_PACK_REC_HDR_LEN, len - PS_PACK_REC_HDR_LEN, out,
					   raw))
				ps_sha256(out, raw, c + 12);
			free(out);
		}
	}
	return c;
}

static void check_record(const uint8_t *rec, size_t len, const uint8_t *want_id, int fix)
{
	uint8_t *c = fix ? fixed_record(rec, len) : fuzz_dup(rec, len, 0);
	uint8_t *out = NULL, sha[32];
	size_t out_len = 0;
	int type = 0, rc;
	const uint8_t *want = want_id;
	if (fix && want_id)
		want = c + 12;     /* the id was repaired: expect the repaired one */
	rc = ps_pack_decode_record(c, len, want, &type, &out, &out_len, NULL);
	fuzz_trace("ps_pack_decode_record", rc);
	if (rc == PS_OK) {
		FUZZ_CHECK(len >= PS_PACK_REC_HDR_LEN, "decoded a record shorter than its header");
		FUZZ_CHECK(type == c[0] && (type == PS_OBJ_CHUNK || type == PS_OBJ_TREE),
			   "decoded type differs from the header");
		FUZZ_CHECK(out_len == ps_get_le32(c + 4), "decoded length differs from the header");
		FUZZ_CHECK(out_len <= PS_OBJ_MAX, "decoded object larger than PS_OBJ_MAX");
		FUZZ_CHECK(out != NULL, "no output buffer");
		ps_sha256(out, out_len, sha);
		FUZZ_CHECK(!memcmp(sha, c + 12, 32), "decoded object does not hash to its id");
		if (want)
			FUZZ_CHECK(!memcmp(want, c + 12, 32), "record of another object accepted");
		free(out);
	} else {
		FUZZ_CHECK(rc == PS_ECORRUPT || rc == PS_ERROR, "unexpected error code");
		FUZZ_CHECK(out == NULL, "output returned on failure");
	}
	free(c);
}

static void check_pack(const uint8_t *p, size_t size, int fix)
{
	uint64_t idx_off = 0;
	uint32_t count = 0;
	uint8_t sha[32];
	struct ps_pack_entry *ents = NULL;
	int rc;
	if (size < PS_PACK_FOOTER_LEN)
		return;
	rc = ps_pack_parse_footer(p + size - PS_PACK_FOOTER_LEN, size, &idx_off, &count, sha, NULL);
	fuzz_trace("ps_pack_parse_footer", rc);
	if (rc != PS_OK) {
		FUZZ_CHECK(rc == PS_ECORRUPT, "unexpected footer error code");
		return;
	}
	FUZZ_CHECK(idx_off >= PS_PACK_HDR_LEN && idx_off <= size - PS_PACK_FOOTER_LEN,
		   "footer index offset outside the file");
	FUZZ_CHECK((uint64_t)count * PS_PACK_IDX_ENT_LEN == size - PS_PACK_FOOTER_LEN - idx_off,
		   "footer count disagrees with the index size");
	rc = ps_pack_parse_index(p + idx_off, (size_t)count * PS_PACK_IDX_ENT_LEN, count, idx_off, &ents,
				 NULL);
	fuzz_trace("ps_pack_parse_index", rc);
	if (rc != PS_OK) {
		FUZZ_CHECK(rc == PS_ECORRUPT, "unexpected index error code");
		FUZZ_CHECK(ents == NULL, "entries returned on failure");
		return;
	}
	{
		uint64_t expect = PS_PACK_HDR_LEN;
		for (uint32_t i = 0; i < count; i++) {
			const struct ps_pack_entry *e = &ents[i];
			uint64_t rl = PS_PACK_REC_HDR_LEN + (uint64_t)e->stored_len;
			FUZZ_CHECK(e->offset == expect, "index entries are not contiguous");
			FUZZ_CHECK(e->offset + rl <= idx_off, "record runs into the index");
			FUZZ_CHECK(e->type == PS_OBJ_CHUNK || e->type == PS_OBJ_TREE, "bad type accepted");
			FUZZ_CHECK(e->codec <= PS_CODEC_LZ4, "bad codec accepted");
			expect = e->offset + rl;
			if (i < 64)
				check_record(p + e->offset, (size_t)rl, e->id, fix);
		}
		FUZZ_CHECK(expect == idx_off, "index does not cover the pack");
	}
	free(ents);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t ctl;
	if (size < 1)
		return 0;
	ctl = data[0];
	data++;
	size--;
	if (ctl & 0x02) {
		uint8_t id[32];
		int with_id = !(ctl & 0x04) && size >= PS_PACK_REC_HDR_LEN;
		if (with_id)
			memcpy(id, data + 12, 32);
		check_record(data, size, with_id ? id : NULL, ctl & FUZZ_FIX_SUM);
	} else {
		check_pack(data, size, ctl & FUZZ_FIX_SUM);
	}
	return 0;
}
