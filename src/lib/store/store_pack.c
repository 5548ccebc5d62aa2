/*
 * store_pack.c - pack files: writing, parsing the trailer, verifying.
 *
 * A pack is an immutable file of compressed object records:
 *
 *   offset          size  field
 *   0               4     magic "PSPK"
 *   4               4     format version (u32 le) = 1
 *   8               8     reserved, zero
 *   16              ...   records, each:
 *                           0   1  type (1 chunk, 2 tree)
 *                           1   1  codec (0 none, 1 zstd, 2 lz4)
 *                           2   2  reserved, zero
 *                           4   4  raw length
 *                           8   4  stored length
 *                           12  32 object id (SHA-256 of the raw bytes)
 *                           44  stored length bytes of data
 *   idx_off         52*n  trailer index: id[32], type, codec, 0 u16, raw u32,
 *                         stored u32, record offset u64 (sorted by offset)
 *   size-56         8     idx_off
 *   size-48         4     n (record count)
 *   size-44         4     format version
 *   size-40         32    SHA-256 of bytes [0, size-40)
 *   size-8          8     "PSPKEND\0"
 *
 * The pack's name is the hex of that SHA-256, so a pack names its content and
 * a damaged or truncated pack is recognisable without any other file.  Records
 * carry their own header, so a pack whose trailer is lost can still be read
 * record by record.
 */
#define _GNU_SOURCE
#include "store_int.h"
#include "../hash/hash.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

struct ps_pack_writer {
	struct ps_store *s;
	struct ps_bfile *f;
	char tmp[PATH_MAX];
	struct ps_sha256_ctx *sha;
	struct ps_buf wbuf;       /* bytes not yet written to f */
	struct ps_buf index;      /* trailer entries */
	uint64_t size;            /* bytes appended so far */
	uint32_t count;
	int broken;               /* an append failed: the pack cannot be finished */
};

void ps_pack_path(const uint8_t pack_id[32], char *buf, size_t len)
{
	char hex[65];
	ps_hex_encode(pack_id, 32, hex);
	snprintf(buf, len, "packs/%.2s/%s.pack", hex, hex);
}

static int pw_flush(struct ps_pack_writer *w, struct ps_error *err)
{
	int rc;
	if (!w->wbuf.len)
		return PS_OK;
	if (ps_sha256_update(w->sha, w->wbuf.data, w->wbuf.len))
		return ps_err(err, PS_ERROR, "sha256 failed");
	rc = w->s->be->ops->write(w->f, w->wbuf.data, w->wbuf.len, err);
	ps_buf_reset(&w->wbuf);
	return rc;
}

static int pw_append(struct ps_pack_writer *w, const void *p, size_t n, struct ps_error *err)
{
	if (w->wbuf.len + n > (1u << 20)) {
		int rc = pw_flush(w, err);
		if (rc)
			return rc;
	}
	if (n > (1u << 20)) {
		int rc;
		if (ps_sha256_update(w->sha, p, n))
			return ps_err(err, PS_ERROR, "sha256 failed");
		rc = w->s->be->ops->write(w->f, p, n, err);
		if (!rc)
			w->size += n;
		return rc;
	}
	if (ps_buf_append(&w->wbuf, p, n))
		return ps_err(err, PS_ERROR, "out of memory");
	w->size += n;
	return PS_OK;
}

int ps_pack_writer_open(struct ps_store *s, struct ps_pack_writer **out, struct ps_error *err)
{
	struct ps_pack_writer *w = ps_calloc(1, sizeof(*w));
	uint8_t hdr[PS_PACK_HDR_LEN] = { 0 };
	int rc;
	if (!w)
		return ps_err(err, PS_ERROR, "out of memory");
	w->s = s;
	w->sha = ps_sha256_new();
	if (!w->sha) {
		ps_free(w);
		return ps_err(err, PS_ERROR, "cannot create sha256 context");
	}
	ps_be_tmp_name("tmp", w->tmp, sizeof(w->tmp));
	rc = s->be->ops->create_excl(s->be, w->tmp, &w->f, err);
	if (rc) {
		ps_sha256_free(w->sha);
		ps_free(w);
		return rc;
	}
	memcpy(hdr, PS_PACK_MAGIC, 4);
	ps_put_le32(hdr + 4, PS_FORMAT_VERSION);
	rc = pw_append(w, hdr, sizeof(hdr), err);
	if (rc) {
		ps_pack_writer_abort(w);
		return rc;
	}
	*out = w;
	return PS_OK;
}

int ps_pack_writer_add(struct ps_pack_writer *w, int type, int codec, const uint8_t id[32],
		       uint32_t raw_len, const void *stored, uint32_t stored_len,
		       uint64_t *offset, struct ps_error *err)
{
	uint8_t hdr[PS_PACK_REC_HDR_LEN] = { 0 };
	uint8_t ent[PS_PACK_IDX_ENT_LEN] = { 0 };
	uint64_t off = w->size;
	int rc;
	if (w->broken)
		return ps_err(err, PS_ERROR, "the pack being written had a write error");
	hdr[0] = (uint8_t)type;
	hdr[1] = (uint8_t)codec;
	ps_put_le32(hdr + 4, raw_len);
	ps_put_le32(hdr + 8, stored_len);
	memcpy(hdr + 12, id, 32);
	rc = pw_append(w, hdr, sizeof(hdr), err);
	if (!rc)
		rc = pw_append(w, stored, stored_len, err);
	if (rc) {
		w->broken = 1;
		return rc;
	}
	memcpy(ent, id, 32);
	ent[32] = (uint8_t)type;
	ent[33] = (uint8_t)codec;
	ps_put_le32(ent + 36, raw_len);
	ps_put_le32(ent + 40, stored_len);
	ps_put_le64(ent + 44, off);
	if (ps_buf_append(&w->index, ent, sizeof(ent))) {
		w->broken = 1;
		return ps_err(err, PS_ERROR, "out of memory");
	}
	w->count++;
	*offset = off;
	return PS_OK;
}

uint64_t ps_pack_writer_size(const struct ps_pack_writer *w) { return w->size; }

int ps_pack_writer_read(struct ps_pack_writer *w, uint64_t off, void *buf, size_t n,
			struct ps_error *err)
{
	uint64_t flushed = w->size - w->wbuf.len;
	size_t done = 0;
	if (w->broken || off > w->size || n > w->size - off)
		return ps_err(err, PS_ECORRUPT, "no such record in the pack being written");
	if (off < flushed) {
		/* written out already: read it back from the temporary file */
		struct ps_bfile *f = NULL;
		size_t want = flushed - off < n ? (size_t)(flushed - off) : n, got = 0;
		int rc = w->s->be->ops->open_read(w->s->be, w->tmp, &f, err);
		if (rc)
			return rc;
		rc = w->s->be->ops->pread(f, buf, want, off, &got, err);
		w->s->be->ops->close(f);
		if (rc)
			return rc;
		if (got != want)
			return ps_err(err, PS_ECORRUPT, "the pack being written is short");
		done = want;
	}
	if (done < n)
		memcpy((uint8_t *)buf + done, w->wbuf.data + (off + done - flushed), n - done);
	return PS_OK;
}

int ps_pack_writer_finish(struct ps_pack_writer *w, uint8_t pack_id[32], struct ps_error *err)
{
	struct ps_backend *be = w->s->be;
	uint8_t foot[PS_PACK_FOOTER_LEN] = { 0 };
	char path[PATH_MAX], dir[64];
	uint64_t idx_off = w->size;
	int rc;
	if (w->broken) {
		rc = ps_err(err, PS_ERROR, "the pack being written had a write error");
		goto fail;
	}
	rc = pw_append(w, w->index.data, w->index.len, err);
	if (rc)
		goto fail;
	ps_put_le64(foot, idx_off);
	ps_put_le32(foot + 8, w->count);
	ps_put_le32(foot + 12, PS_FORMAT_VERSION);
	rc = pw_append(w, foot, 16, err);
	if (!rc)
		rc = pw_flush(w, err);
	if (rc)
		goto fail;
	if (ps_sha256_final(w->sha, pack_id)) {
		rc = ps_err(err, PS_ERROR, "sha256 failed");
		goto fail;
	}
	memcpy(foot + 16, pack_id, 32);
	memcpy(foot + 48, PS_PACK_END_MAGIC, 8);
	rc = be->ops->write(w->f, foot + 16, 40, err);
	if (!rc)
		rc = be->ops->fsync(w->f, err);
	if (rc)
		goto fail;
	be->ops->close(w->f);
	w->f = NULL;
	ps_pack_path(pack_id, path, sizeof(path));
	snprintf(dir, sizeof(dir), "%.8s", path);   /* "packs/XX" */
	rc = be->ops->mkdir(be, dir, err);
	if (!rc)
		rc = be->ops->rename(be, w->tmp, path, err);
	if (rc)
		goto fail;
	ps_sha256_free(w->sha);
	ps_buf_release(&w->wbuf);
	ps_buf_release(&w->index);
	ps_free(w);
	return PS_OK;
fail:
	ps_pack_writer_abort(w);
	return rc;
}

void ps_pack_writer_abort(struct ps_pack_writer *w)
{
	if (!w)
		return;
	if (w->f)
		w->s->be->ops->close(w->f);
	w->s->be->ops->unlink(w->s->be, w->tmp, NULL);
	ps_sha256_free(w->sha);
	ps_buf_release(&w->wbuf);
	ps_buf_release(&w->index);
	ps_free(w);
}

/* ------------------------------------------------------------ parsing */

int ps_pack_parse_footer(const uint8_t *foot, uint64_t file_size, uint64_t *idx_off,
			 uint32_t *count, uint8_t sha[32], struct ps_error *err)
{
	uint64_t off;
	uint32_t n;
	if (file_size < PS_PACK_HDR_LEN + PS_PACK_FOOTER_LEN)
		return ps_err(err, PS_ECORRUPT, "pack is truncated (%llu bytes)",
			      (unsigned long long)file_size);
	if (memcmp(foot + 48, PS_PACK_END_MAGIC, 8))
		return ps_err(err, PS_ECORRUPT, "pack trailer is damaged or the pack is truncated");
	off = ps_get_le64(foot);
	n = ps_get_le32(foot + 8);
	if (ps_get_le32(foot + 12) != PS_FORMAT_VERSION)
		return ps_err(err, PS_ECORRUPT, "pack has unknown format version %u",
			      ps_get_le32(foot + 12));
	if (off < PS_PACK_HDR_LEN || off > file_size - PS_PACK_FOOTER_LEN ||
	    (uint64_t)n * PS_PACK_IDX_ENT_LEN != file_size - PS_PACK_FOOTER_LEN - off)
		return ps_err(err, PS_ECORRUPT, "pack trailer is inconsistent");
	*idx_off = off;
	*count = n;
	if (sha)
		memcpy(sha, foot + 16, 32);
	return PS_OK;
}

int ps_pack_parse_index(const uint8_t *buf, size_t len, uint32_t count, uint64_t idx_off,
			struct ps_pack_entry **ents, struct ps_error *err)
{
	struct ps_pack_entry *e;
	uint64_t expect = PS_PACK_HDR_LEN;
	if ((uint64_t)count * PS_PACK_IDX_ENT_LEN != len)
		return ps_err(err, PS_ECORRUPT, "pack index has the wrong size");
	e = ps_calloc(count ? count : 1, sizeof(*e));
	if (!e)
		return ps_err(err, PS_ERROR, "out of memory");
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *p = buf + (size_t)i * PS_PACK_IDX_ENT_LEN;
		memcpy(e[i].id, p, 32);
		e[i].type = p[32];
		e[i].codec = p[33];
		e[i].raw_len = ps_get_le32(p + 36);
		e[i].stored_len = ps_get_le32(p + 40);
		e[i].offset = ps_get_le64(p + 44);
		if (e[i].offset != expect || (e[i].type != PS_OBJ_CHUNK && e[i].type != PS_OBJ_TREE) ||
		    e[i].codec > PS_CODEC_LZ4 || e[i].raw_len > PS_OBJ_MAX ||
		    e[i].stored_len > PS_OBJ_MAX ||
		    e[i].offset + PS_PACK_REC_HDR_LEN + e[i].stored_len > idx_off) {
			ps_free(e);
			return ps_err(err, PS_ECORRUPT, "pack index entry %u is invalid", i);
		}
		expect = e[i].offset + PS_PACK_REC_HDR_LEN + e[i].stored_len;
	}
	if (expect != idx_off) {
		ps_free(e);
		return ps_err(err, PS_ECORRUPT, "pack index does not cover the pack");
	}
	*ents = e;
	return PS_OK;
}

int ps_pack_read_index(struct ps_store *s, const uint8_t pack_id[32], struct ps_pack_entry **ents,
		       uint32_t *count, uint64_t *size, struct ps_error *err)
{
	struct ps_backend *be = s->be;
	struct ps_bfile *f = NULL;
	struct ps_bstat st;
	uint8_t foot[PS_PACK_FOOTER_LEN];
	uint8_t *buf = NULL;
	char path[PATH_MAX];
	uint64_t idx_off;
	uint32_t n;
	size_t got;
	int rc;
	ps_pack_path(pack_id, path, sizeof(path));
	rc = be->ops->open_read(be, path, &f, err);
	if (rc)
		return rc;
	rc = be->ops->fstat(f, &st, err);
	if (rc)
		goto done;
	if (st.size < PS_PACK_FOOTER_LEN) {
		rc = ps_err(err, PS_ECORRUPT, "pack '%s' is truncated", path);
		goto done;
	}
	rc = be->ops->pread(f, foot, sizeof(foot), st.size - PS_PACK_FOOTER_LEN, &got, err);
	if (rc)
		goto done;
	rc = ps_pack_parse_footer(foot, st.size, &idx_off, &n, NULL, err);
	if (rc) {
		ps_err_prefix(err, "pack '%s'", path);
		goto done;
	}
	buf = ps_malloc((size_t)n * PS_PACK_IDX_ENT_LEN + 1);
	if (!buf) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	rc = be->ops->pread(f, buf, (size_t)n * PS_PACK_IDX_ENT_LEN, idx_off, &got, err);
	if (rc)
		goto done;
	if (got != (size_t)n * PS_PACK_IDX_ENT_LEN) {
		rc = ps_err(err, PS_ECORRUPT, "pack '%s' is truncated", path);
		goto done;
	}
	rc = ps_pack_parse_index(buf, got, n, idx_off, ents, err);
	if (rc) {
		ps_err_prefix(err, "pack '%s'", path);
		goto done;
	}
	*count = n;
	if (size)
		*size = st.size;
done:
	ps_free(buf);
	be->ops->close(f);
	return rc;
}

int ps_pack_decode_record(const uint8_t *rec, size_t len, const uint8_t *want_id, int *type,
			  uint8_t **out, size_t *out_len, struct ps_error *err)
{
	uint32_t raw, stored;
	uint8_t *buf, id[32];
	int codec;
	char hex[65];
	if (len < PS_PACK_REC_HDR_LEN)
		return ps_err(err, PS_ECORRUPT, "object record is truncated");
	raw = ps_get_le32(rec + 4);
	stored = ps_get_le32(rec + 8);
	codec = rec[1];
	if ((rec[0] != PS_OBJ_CHUNK && rec[0] != PS_OBJ_TREE) || codec > PS_CODEC_LZ4 ||
	    raw > PS_OBJ_MAX || (size_t)stored != len - PS_PACK_REC_HDR_LEN)
		return ps_err(err, PS_ECORRUPT, "object record header is damaged");
	if (want_id && memcmp(rec + 12, want_id, 32)) {
		ps_hex_encode(want_id, 32, hex);
		return ps_err(err, PS_ECORRUPT, "object %s: record header names another object", hex);
	}
	/* a damaged header must not make us allocate 64 MiB: the raw length
	 * has to be possible for the stored bytes */
	if ((codec == PS_CODEC_NONE && raw != stored) ||
	    (codec == PS_CODEC_LZ4 && (uint64_t)raw > (uint64_t)stored * 255 + 16) ||
	    (codec == PS_CODEC_ZSTD && !ps_zstd_size_ok(rec + PS_PACK_REC_HDR_LEN, stored, raw)))
		return ps_err(err, PS_ECORRUPT, "object record header is damaged");
	buf = ps_malloc(raw ? raw : 1);
	if (!buf)
		return ps_err(err, PS_ERROR, "out of memory");
	if (ps_decompress(codec, rec + PS_PACK_REC_HDR_LEN, stored, buf, raw)) {
		ps_hex_encode(rec + 12, 32, hex);
		ps_free(buf);
		return ps_err(err, PS_ECORRUPT, "object %s does not decompress", hex);
	}
	if (ps_sha256(buf, raw, id) || memcmp(id, rec + 12, 32)) {
		ps_hex_encode(rec + 12, 32, hex);
		ps_free(buf);
		return ps_err(err, PS_ECORRUPT, "object %s fails its checksum", hex);
	}
	*type = rec[0];
	*out = buf;
	*out_len = raw;
	return PS_OK;
}

int ps_pack_verify(struct ps_store *s, const uint8_t pack_id[32], ps_pack_bad_fn bad, void *ctx,
		   uint64_t *nobjects, struct ps_error *err)
{
	struct ps_backend *be = s->be;
	struct ps_bfile *f = NULL;
	struct ps_pack_entry *ents = NULL;
	struct ps_sha256_ctx *sha = NULL;
	struct ps_bstat st;
	uint8_t *buf = NULL, digest[32];
	char path[PATH_MAX];
	uint32_t n = 0;
	uint64_t off = 0;
	size_t got, cap = 1u << 20;
	int rc, whole_bad = 0;
	struct ps_error e2;

	ps_pack_path(pack_id, path, sizeof(path));
	rc = ps_pack_read_index(s, pack_id, &ents, &n, NULL, err);
	if (rc)
		return rc;
	rc = be->ops->open_read(be, path, &f, err);
	if (rc)
		goto done;
	rc = be->ops->fstat(f, &st, err);
	if (rc)
		goto done;
	sha = ps_sha256_new();
	buf = ps_malloc(cap);
	if (!sha || !buf) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	/* whole-file checksum */
	while (off < st.size - 40) {
		size_t want = (size_t)((st.size - 40 - off) < cap ? (st.size - 40 - off) : cap);
		rc = be->ops->pread(f, buf, want, off, &got, err);
		if (rc)
			goto done;
		if (got != want) {
			rc = ps_err(err, PS_ECORRUPT, "pack '%s' is truncated", path);
			goto done;
		}
		ps_sha256_update(sha, buf, got);
		off += got;
	}
	ps_sha256_final(sha, digest);
	if (memcmp(digest, pack_id, 32))
		whole_bad = 1;
	/* every record */
	for (uint32_t i = 0; i < n; i++) {
		size_t rl = PS_PACK_REC_HDR_LEN + ents[i].stored_len;
		uint8_t *obj = NULL;
		size_t olen;
		int type;
		if (rl > cap) {
			uint8_t *nb = ps_realloc(buf, rl);
			if (!nb) {
				rc = ps_err(err, PS_ERROR, "out of memory");
				goto done;
			}
			buf = nb;
			cap = rl;
		}
		rc = be->ops->pread(f, buf, rl, ents[i].offset, &got, err);
		if (rc)
			goto done;
		ps_error_clear(&e2);
		if (got != rl)
			ps_err(&e2, PS_ECORRUPT, "object record is truncated");
		else if (!ps_pack_decode_record(buf, rl, ents[i].id, &type, &obj, &olen, &e2) &&
			 (type != ents[i].type || olen != ents[i].raw_len))
			ps_err(&e2, PS_ECORRUPT, "object record disagrees with the pack index");
		ps_free(obj);
		if (e2.code && bad)
			bad(ctx, &ents[i], e2.msg);
	}
	if (nobjects)
		*nobjects = n;
	if (whole_bad)
		rc = ps_err(err, PS_ECORRUPT, "pack '%s' fails its checksum", path);
done:
	ps_sha256_free(sha);
	ps_free(buf);
	ps_free(ents);
	if (f)
		be->ops->close(f);
	return rc;
}
