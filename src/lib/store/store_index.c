/*
 * store_index.c - index segments: which pack holds which object.
 *
 * A segment is an immutable file index/<sha256>.idx:
 *
 *   offset        size    field
 *   0             4       magic "PSIX"
 *   4             4       format version (u32 le) = 1
 *   8             4       number of packs P
 *   12            4       reserved, zero
 *   16            8       number of entries N
 *   24            32*P    pack ids
 *   24+32P        52*N    entries sorted by id: id[32], pack number u32 (into
 *                         the table above), record offset u32, record length
 *                         u32 (header included), raw length u32, type u8, 0[3]
 *   end-32        32      SHA-256 of all bytes before it (also the file name)
 *
 * Every save publishes one segment for the packs it wrote, after the packs
 * are durable and before its snapshot ref.  Segments are only ever merged
 * (ps_index_compact): the merged one is published first, then the merged
 * inputs are removed, so every object stays findable at every moment.
 * Compaction takes gc's store-wide lock (and is skipped while gc runs): gc
 * rewrites the segments that name the packs it retires.  An
 * object may appear in several segments; any entry is right.  The index can
 * always be rebuilt from the packs' trailers (`check --rebuild-index`).
 */
#define _GNU_SOURCE
#include "store_int.h"
#include "../hash/hash.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define SEG_HDR 24

static int seg_cmp(const void *a, const void *b)
{
	return memcmp(((const struct ps_seg_entry *)a)->id, ((const struct ps_seg_entry *)b)->id, 32);
}

int ps_segment_encode(uint8_t (*packs)[32], size_t npacks, struct ps_seg_entry *ents,
		      size_t n, struct ps_buf *out)
{
	uint8_t hdr[SEG_HDR] = { 0 }, sha[32];
	ps_qsort(ents, n, sizeof(*ents), seg_cmp);
	memcpy(hdr, PS_IDX_MAGIC, 4);
	ps_put_le32(hdr + 4, PS_FORMAT_VERSION);
	ps_put_le32(hdr + 8, (uint32_t)npacks);
	ps_put_le64(hdr + 16, n);
	if (ps_buf_reserve(out, SEG_HDR + 32 * npacks + PS_SEG_ENT_LEN * n + 32) ||
	    ps_buf_append(out, hdr, sizeof(hdr)) || ps_buf_append(out, packs, 32 * npacks))
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint8_t e[PS_SEG_ENT_LEN] = { 0 };
		memcpy(e, ents[i].id, 32);
		ps_put_le32(e + 32, ents[i].pack);
		ps_put_le32(e + 36, ents[i].off);
		ps_put_le32(e + 40, ents[i].stored_len);
		ps_put_le32(e + 44, ents[i].raw_len);
		e[48] = ents[i].type;
		ps_buf_append(out, e, sizeof(e));
	}
	if (ps_sha256(out->data, out->len, sha))
		return -1;
	return ps_buf_append(out, sha, 32);
}

int ps_segment_check(const uint8_t *buf, size_t len, const uint8_t **packs, size_t *npacks,
		     const uint8_t **ents, size_t *n, struct ps_error *err)
{
	uint8_t sha[32];
	uint32_t np;
	uint64_t ne;
	const uint8_t *e0;
	if (len < SEG_HDR + 32 || memcmp(buf, PS_IDX_MAGIC, 4))
		return ps_err(err, PS_ECORRUPT, "index segment has no valid header");
	if (ps_get_le32(buf + 4) != PS_FORMAT_VERSION)
		return ps_err(err, PS_ECORRUPT, "index segment has unknown version %u",
			      ps_get_le32(buf + 4));
	np = ps_get_le32(buf + 8);
	ne = ps_get_le64(buf + 16);
	if (ne > (len / PS_SEG_ENT_LEN) || np > len / 32 ||
	    (uint64_t)SEG_HDR + 32ULL * np + (uint64_t)PS_SEG_ENT_LEN * ne + 32 != len)
		return ps_err(err, PS_ECORRUPT, "index segment has the wrong size");
	if (ps_sha256(buf, len - 32, sha) || memcmp(sha, buf + len - 32, 32))
		return ps_err(err, PS_ECORRUPT, "index segment fails its checksum");
	e0 = buf + SEG_HDR + 32 * (size_t)np;
	for (uint64_t i = 0; i < ne; i++) {
		const uint8_t *p = e0 + PS_SEG_ENT_LEN * i;
		uint32_t stored = ps_get_le32(p + 40);
		if (ps_get_le32(p + 32) >= np || (p[48] != PS_OBJ_CHUNK && p[48] != PS_OBJ_TREE) ||
		    stored < PS_PACK_REC_HDR_LEN || stored > PS_OBJ_MAX + PS_PACK_REC_HDR_LEN ||
		    ps_get_le32(p + 44) > PS_OBJ_MAX || (i && memcmp(p - PS_SEG_ENT_LEN, p, 32) > 0))
			return ps_err(err, PS_ECORRUPT, "index segment entry %llu is invalid",
				      (unsigned long long)i);
	}
	*packs = buf + SEG_HDR;
	*npacks = np;
	*ents = e0;
	*n = (size_t)ne;
	return PS_OK;
}

int ps_segment_decode(const uint8_t *buf, size_t len, uint8_t (**packs)[32], size_t *npacks,
		      struct ps_seg_entry **ents, size_t *n, struct ps_error *err)
{
	const uint8_t *pp, *ep;
	size_t np, ne;
	uint8_t (*pk)[32] = NULL;
	struct ps_seg_entry *e = NULL;
	int rc = ps_segment_check(buf, len, &pp, &np, &ep, &ne, err);
	if (rc)
		return rc;
	pk = ps_malloc(32 * (np ? np : 1));
	e = ps_malloc(sizeof(*e) * (ne ? ne : 1));
	if (!pk || !e) {
		ps_free(pk);
		ps_free(e);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	memcpy(pk, pp, 32 * np);
	for (size_t i = 0; i < ne; i++) {
		const uint8_t *p = ep + PS_SEG_ENT_LEN * i;
		memcpy(e[i].id, p, 32);
		e[i].pack = ps_get_le32(p + 32);
		e[i].off = ps_get_le32(p + 36);
		e[i].stored_len = ps_get_le32(p + 40);
		e[i].raw_len = ps_get_le32(p + 44);
		e[i].type = p[48];
	}
	*packs = pk;
	*npacks = np;
	*ents = e;
	*n = ne;
	return PS_OK;
}

int ps_segment_write(struct ps_store *s, uint8_t (*packs)[32], size_t npacks,
		     struct ps_seg_entry *ents, size_t n, char *name_out, struct ps_error *err)
{
	struct ps_buf b = PS_BUF_INIT;
	char path[PATH_MAX], hex[65];
	struct ps_bstat st;
	int rc;
	if (ps_segment_encode(packs, npacks, ents, n, &b)) {
		ps_buf_release(&b);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	ps_hex_encode(b.data + b.len - 32, 32, hex);
	snprintf(path, sizeof(path), "index/%s.idx", hex);
	if (name_out)
		snprintf(name_out, 70, "%s.idx", hex);
	if (s->be->ops->stat(s->be, path, &st, NULL) == PS_OK && st.size == b.len)
		rc = PS_OK;   /* the same content is already published */
	else
		rc = ps_be_write_atomic(s->be, path, b.data, b.len, err);
	ps_buf_release(&b);
	return rc;
}

/* ------------------------------------------------------------ compaction */

struct name_list {
	char **v;
	size_t n, cap;
};

static int collect_idx(void *ctx, const char *name)
{
	struct name_list *l = ctx;
	size_t len = strlen(name);
	if (len != 68 || strcmp(name + 64, ".idx"))
		return 0;
	return ps_strv_push(&l->v, &l->n, &l->cap, name);
}

int ps_index_compact(struct ps_store *s, size_t max, struct ps_error *err)
{
	struct name_list l = { 0 };
	uint8_t (*allp)[32] = NULL;
	struct ps_seg_entry *alle = NULL;
	size_t np = 0, ne = 0;
	char merged[70] = "";
	struct ps_lock *gc_lock = NULL;
	int rc;
	rc = s->be->ops->list(s->be, "index", collect_idx, &l, err);
	if (rc < 0 && rc != PS_ENOTFOUND)
		goto done;
	rc = PS_OK;
	if (l.n <= max)
		goto done;
	/* never while gc rewrites the index: a merge of segments read before gc
	 * removed them would name the packs gc deletes */
	if (ps_lock_acquire(s, PS_GC_LOCK, 0, 600, &gc_lock, NULL))
		goto done;
	for (size_t i = 0; i < l.n; i++) {
		char path[PATH_MAX];
		void *buf = NULL;
		size_t len, sp, sn;
		uint8_t (*pk)[32];
		struct ps_seg_entry *se;
		void *t1, *t2;
		snprintf(path, sizeof(path), "index/%s", l.v[i]);
		rc = ps_be_read_all(s->be, path, (size_t)1 << 34, &buf, &len, err);
		if (rc == PS_ENOTFOUND) {   /* merged away by another process */
			ps_free(l.v[i]);
			l.v[i] = NULL;
			rc = PS_OK;
			continue;
		}
		if (rc)
			goto done;
		rc = ps_segment_decode(buf, len, &pk, &sp, &se, &sn, err);
		ps_free(buf);
		if (rc) {
			/* leave a damaged segment alone for check to report */
			ps_free(l.v[i]);
			l.v[i] = NULL;
			rc = PS_OK;
			continue;
		}
		t1 = ps_realloc(allp, 32 * (np + sp + 1));
		t2 = ps_realloc(alle, sizeof(*alle) * (ne + sn + 1));
		if (t1)
			allp = t1;
		if (t2)
			alle = t2;
		if (!t1 || !t2) {
			ps_free(pk);
			ps_free(se);
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto done;
		}
		memcpy(allp + np, pk, 32 * sp);
		for (size_t j = 0; j < sn; j++) {
			alle[ne + j] = se[j];
			alle[ne + j].pack += (uint32_t)np;
		}
		np += sp;
		ne += sn;
		ps_free(pk);
		ps_free(se);
	}
	rc = ps_segment_write(s, allp, np, alle, ne, merged, err);
	if (rc)
		goto done;
	/* remove inputs, except one that has the merged name */
	{
		for (size_t i = 0; i < l.n; i++) {
			char path[PATH_MAX];
			if (!l.v[i] || !strcmp(l.v[i], merged))
				continue;
			snprintf(path, sizeof(path), "index/%s", l.v[i]);
			s->be->ops->unlink(s->be, path, NULL);
		}
		s->be->ops->fsync_dir(s->be, "index", NULL);
	}
done:
	ps_lock_release(gc_lock);
	for (size_t i = 0; i < l.n; i++)
		ps_free(l.v[i]);
	ps_free(l.v);
	ps_free(allp);
	ps_free(alle);
	return rc;
}
