/*
 * snap_tree.c - tree objects: one per directory.
 *
 * Encoding (all integers LEB128 varints "uv", zigzag "sv" for signed):
 *
 *   "PSTR" magic, u8 version = 1, uv entry count
 *   per entry, sorted by name (bytewise, shorter first), names unique:
 *     uv name length, name bytes (any byte but '/' and NUL; not "." or "..")
 *     u8 type (1 file, 2 dir, 3 symlink, 4 fifo, 5 char, 6 block, 7 socket,
 *              15 error: an entry that could not be read)
 *     uv mode (permission bits & 07777), uv uid, uv gid
 *     sv mtime seconds, uv mtime nanoseconds (< 1e9)
 *     uv size (file size; symlink target length)
 *     uv hardlink group (0 = none; equal non-zero groups share an inode)
 *     uv xattr count, then per xattr: uv name length, name, uv value length, value
 *     type-specific:
 *       file:    uv extent count, per extent: uv offset, uv length, id[32]
 *                (extents ascending, non-overlapping, inside size; gaps are holes)
 *       dir:     id[32] of the subtree
 *       symlink: uv length, target bytes
 *       char/block: uv rdev
 *       error:   uv length, message bytes
 *
 * The id of a tree is the SHA-256 of these bytes, so an unchanged directory
 * has an unchanged id and costs nothing to store again.  Decoding validates
 * everything a restore relies on; a name that could escape a target is
 * PS_EHOSTILE, any other malformation PS_ECORRUPT.
 */
#define _GNU_SOURCE
#include "snap_int.h"

#include <stdlib.h>

#define TREE_MAGIC "PSTR"
#define TREE_VERSION 1

int ps_name_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl ? 1 : 0;
}

int ps_tree_encode(const struct ps_tentry *ents, size_t n, struct ps_buf *out)
{
	int rc = 0;
	rc |= ps_buf_append(out, TREE_MAGIC, 4);
	rc |= ps_buf_put_u8(out, TREE_VERSION);
	rc |= ps_buf_put_uvar(out, n);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct ps_tentry *e = &ents[i];
		rc |= ps_buf_put_uvar(out, e->name_len);
		rc |= ps_buf_append(out, e->name, e->name_len);
		rc |= ps_buf_put_u8(out, (uint8_t)e->type);
		rc |= ps_buf_put_uvar(out, e->mode & 07777);
		rc |= ps_buf_put_uvar(out, e->uid);
		rc |= ps_buf_put_uvar(out, e->gid);
		rc |= ps_buf_put_svar(out, e->mtime_sec);
		rc |= ps_buf_put_uvar(out, e->mtime_nsec);
		rc |= ps_buf_put_uvar(out, e->size);
		rc |= ps_buf_put_uvar(out, e->link_group);
		if (e->xattrs_len)
			rc |= ps_buf_append(out, e->xattrs, e->xattrs_len);
		else
			rc |= ps_buf_put_uvar(out, 0);
		switch (e->type) {
		case PS_T_REG:
			rc |= ps_buf_put_uvar(out, e->nextents);
			for (size_t k = 0; k < e->nextents && !rc; k++) {
				rc |= ps_buf_put_uvar(out, e->extents[k].off);
				rc |= ps_buf_put_uvar(out, e->extents[k].len);
				rc |= ps_buf_append(out, e->extents[k].id, 32);
			}
			break;
		case PS_T_DIR:
			rc |= ps_buf_append(out, e->subtree, 32);
			break;
		case PS_T_SYMLINK:
		case PS_T_ERROR:
			rc |= ps_buf_put_uvar(out, e->target_len);
			rc |= ps_buf_append(out, e->target, e->target_len);
			break;
		case PS_T_CHR:
		case PS_T_BLK:
			rc |= ps_buf_put_uvar(out, e->rdev);
			break;
		default:
			break;
		}
	}
	return rc ? -1 : 0;
}

static int name_hostile(const uint8_t *name, size_t len)
{
	if (len == 0 || len > 255)
		return 1;
	if (len == 1 && name[0] == '.')
		return 1;
	if (len == 2 && name[0] == '.' && name[1] == '.')
		return 1;
	return memchr(name, '/', len) || memchr(name, 0, len);
}

void ps_tree_release(struct ps_tree *t)
{
	if (!t)
		return;
	ps_free(t->buf);
	ps_free(t->ents);
	ps_free(t->ext_pool);
	memset(t, 0, sizeof(*t));
}

int ps_tree_decode(uint8_t *buf, size_t len, struct ps_tree *out, struct ps_error *err)
{
	struct ps_rd r;
	struct ps_tentry *ents = NULL;
	struct ps_extent *pool = NULL;
	size_t pool_n = 0, pool_cap = 0;
	uint64_t n;
	int rc = PS_OK;
	const uint8_t *magic;

	memset(out, 0, sizeof(*out));
	ps_rd_init(&r, buf, len);
	magic = ps_rd_bytes(&r, 4);
	if (!magic || memcmp(magic, TREE_MAGIC, 4) || ps_rd_u8(&r) != TREE_VERSION)
		return ps_err(err, PS_ECORRUPT, "tree object has no valid header");
	n = ps_rd_uvar(&r);
	if (r.bad || n > len / 8)
		return ps_err(err, PS_ECORRUPT, "tree object has an invalid entry count");
	ents = ps_calloc((size_t)n + 1, sizeof(*ents));
	if (!ents)
		return ps_err(err, PS_ERROR, "out of memory");
	for (uint64_t i = 0; i < n; i++) {
		struct ps_tentry *e = &ents[i];
		uint64_t v, nx;
		e->name_len = (size_t)ps_rd_uvar(&r);
		e->name = ps_rd_bytes(&r, e->name_len);
		if (r.bad) {
			rc = ps_err(err, PS_ECORRUPT, "tree entry %llu is truncated", (unsigned long long)i);
			goto fail;
		}
		if (name_hostile(e->name, e->name_len)) {
			rc = ps_err(err, PS_EHOSTILE,
				    "tree entry %llu has a hostile name (empty, '.', '..', or containing '/' or NUL)",
				    (unsigned long long)i);
			goto fail;
		}
		if (i && ps_name_cmp(ents[i - 1].name, ents[i - 1].name_len, e->name, e->name_len) >= 0) {
			rc = ps_err(err, PS_ECORRUPT, "tree entries are not sorted or not unique");
			goto fail;
		}
		e->type = ps_rd_u8(&r);
		v = ps_rd_uvar(&r);
		e->mode = (uint32_t)(v & 07777);
		if (v > 07777)
			r.bad = 1;
		v = ps_rd_uvar(&r);
		e->uid = (uint32_t)v;
		if (v > UINT32_MAX)
			r.bad = 1;
		v = ps_rd_uvar(&r);
		e->gid = (uint32_t)v;
		if (v > UINT32_MAX)
			r.bad = 1;
		e->mtime_sec = ps_rd_svar(&r);
		v = ps_rd_uvar(&r);
		e->mtime_nsec = (uint32_t)v;
		if (v >= 1000000000u)
			r.bad = 1;
		e->size = ps_rd_uvar(&r);
		e->link_group = ps_rd_uvar(&r);
		{
			const uint8_t *xs = r.p;
			nx = ps_rd_uvar(&r);
			if (nx > ps_rd_left(&r) / 2)
				r.bad = 1;
			for (uint64_t k = 0; k < nx && !r.bad; k++) {
				uint64_t kl = ps_rd_uvar(&r);
				const uint8_t *kn = ps_rd_bytes(&r, (size_t)kl);
				if (kn && (kl == 0 || kl > 255 || memchr(kn, 0, (size_t)kl)))
					r.bad = 1;
				ps_rd_bytes(&r, (size_t)ps_rd_uvar(&r));
			}
			e->xattrs = xs;
			e->xattrs_len = (size_t)(r.p - xs);
			e->nxattrs = (size_t)nx;
		}
		if (r.bad) {
			rc = ps_err(err, PS_ECORRUPT, "tree entry %llu is malformed", (unsigned long long)i);
			goto fail;
		}
		switch (e->type) {
		case PS_T_REG: {
			uint64_t ne = ps_rd_uvar(&r), end = 0;
			if (ne > ps_rd_left(&r) / 34) {
				r.bad = 1;
				break;
			}
			if (pool_n + ne > pool_cap) {
				size_t cap = (pool_n + (size_t)ne) * 2 + 16;
				struct ps_extent *np = ps_realloc(pool, cap * sizeof(*np));
				if (!np) {
					rc = ps_err(err, PS_ERROR, "out of memory");
					goto fail;
				}
				pool = np;
				pool_cap = cap;
			}
			e->nextents = (size_t)ne;
			e->extents = (struct ps_extent *)(uintptr_t)pool_n; /* fixed up below */
			for (uint64_t k = 0; k < ne && !r.bad; k++) {
				struct ps_extent *x = &pool[pool_n++];
				const uint8_t *id;
				x->off = ps_rd_uvar(&r);
				v = ps_rd_uvar(&r);
				x->len = (uint32_t)v;
				id = ps_rd_bytes(&r, 32);
				if (id)
					memcpy(x->id, id, 32);
				if (v == 0 || v > PS_OBJ_MAX || x->off < end || v > e->size ||
				    x->off > e->size - v)
					r.bad = 1;
				end = x->off + v;
			}
			break;
		}
		case PS_T_DIR: {
			const uint8_t *id = ps_rd_bytes(&r, 32);
			if (id)
				memcpy(e->subtree, id, 32);
			break;
		}
		case PS_T_SYMLINK:
		case PS_T_ERROR:
			e->target_len = (size_t)ps_rd_uvar(&r);
			e->target = ps_rd_bytes(&r, e->target_len);
			if (e->target && (e->target_len == 0 || e->target_len > 65536 ||
					  memchr(e->target, 0, e->target_len)))
				r.bad = 1;
			if (e->type == PS_T_SYMLINK && e->size != e->target_len)
				r.bad = 1;
			break;
		case PS_T_CHR:
		case PS_T_BLK:
			e->rdev = ps_rd_uvar(&r);
			break;
		case PS_T_FIFO:
		case PS_T_SOCK:
			break;
		default:
			r.bad = 1;
		}
		if (r.bad) {
			rc = ps_err(err, PS_ECORRUPT, "tree entry %llu is malformed", (unsigned long long)i);
			goto fail;
		}
	}
	if (ps_rd_left(&r)) {
		rc = ps_err(err, PS_ECORRUPT, "tree object has trailing bytes");
		goto fail;
	}
	for (uint64_t i = 0; i < n; i++)
		if (ents[i].type == PS_T_REG)
			ents[i].extents = pool ? pool + (uintptr_t)ents[i].extents : NULL;
	out->buf = buf;
	out->len = len;
	out->ents = ents;
	out->n = (size_t)n;
	out->ext_pool = pool;
	return PS_OK;
fail:
	ps_free(ents);
	ps_free(pool);
	return rc;
}

int ps_tree_load(struct ps_store *s, const uint8_t id[32], struct ps_tree *out,
		 struct ps_error *err)
{
	uint8_t *buf = NULL;
	size_t len;
	int rc = ps_store_get(s, id, PS_OBJ_TREE, &buf, &len, err);
	if (rc)
		return rc;
	rc = ps_tree_decode(buf, len, out, err);
	if (rc) {
		char hex[65];
		ps_hex_encode(id, 32, hex);
		ps_err_prefix(err, "tree %s", hex);
		ps_free(buf);
	}
	return rc;
}

long ps_tree_find(const struct ps_tree *t, const char *name, size_t len)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = ps_name_cmp(t->ents[mid].name, t->ents[mid].name_len, (const uint8_t *)name, len);
		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void ps_xattr_it_init(struct ps_xattr_it *it, const struct ps_tentry *e)
{
	ps_rd_init(&it->rd, e->xattrs, e->xattrs_len);
	it->left = e->xattrs_len ? (size_t)ps_rd_uvar(&it->rd) : 0;
}

int ps_xattr_next(struct ps_xattr_it *it, const char **k, size_t *kl, const uint8_t **v,
		  size_t *vl)
{
	if (!it->left || it->rd.bad)
		return 0;
	it->left--;
	*kl = (size_t)ps_rd_uvar(&it->rd);
	*k = (const char *)ps_rd_bytes(&it->rd, *kl);
	*vl = (size_t)ps_rd_uvar(&it->rd);
	*v = ps_rd_bytes(&it->rd, *vl);
	return !it->rd.bad;
}

int ps_tree_lookup(struct ps_store *s, const uint8_t root[32], const char *path,
		   struct ps_tree *out, long *idx, struct ps_error *err)
{
	uint8_t cur[32];
	const char *p = path;
	int rc;
	memcpy(cur, root, 32);
	rc = ps_tree_load(s, cur, out, err);
	if (rc)
		return rc;
	*idx = -1;
	for (;;) {
		const char *slash;
		size_t len;
		long i;
		while (*p == '/')
			p++;
		if (!*p)
			return PS_OK;
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (*idx >= 0) {
			/* descend into the previously found entry */
			struct ps_tentry *e = &out->ents[*idx];
			if (e->type != PS_T_DIR) {
				ps_tree_release(out);
				return ps_err(err, PS_ENOTFOUND, "'%s': not a directory", path);
			}
			memcpy(cur, e->subtree, 32);
			ps_tree_release(out);
			rc = ps_tree_load(s, cur, out, err);
			if (rc)
				return rc;
		}
		i = ps_tree_find(out, p, len);
		if (i < 0) {
			ps_tree_release(out);
			return ps_err(err, PS_ENOTFOUND, "'%s' does not exist in the snapshot", path);
		}
		*idx = i;
		p += len;
	}
}
