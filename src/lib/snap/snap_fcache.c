/*
 * snap_fcache.c - the host-side cache that makes incremental saves cost
 * about a stat walk.
 *
 * For every entry saved (or restored) it remembers the path relative to the
 * project directory, the (dev, inode, size, mtime, ctime) seen, and what the
 * save derived from the entry's content: the chunk list of a file, the tree id
 * of a directory, the xattrs, the target of a symlink.  When a later save finds
 * the same five values it reuses all of that without opening, listing or
 * reading the entry.  ctime is included because users cannot set it: any write,
 * chmod, chown, xattr change or rename updates it.  A directory whose own stat
 * and every child's stat match reuses its tree id without building the tree.
 * Chunks and trees are checked against the store's index before reuse, so a
 * cache made before a gc can never name a missing object.
 *
 * File: <cache_dir>/<store id>/<project>-<dir>.fcache, where <dir> is 16 hex
 * digits of the SHA-256 of the project directory's absolute path (so a restore
 * to a scratch directory does not replace the cache of the live one), written
 * atomically:
 *   "PSFC", u32 version = 2, u64 entry count, params[32], then entries:
 *     uv path length, path, u8 kind (0 file, 1 dir, 2 other), uv dev, uv ino,
 *     uv size, sv mtime ns, sv ctime ns, uv xattrs length, xattrs,
 *     file: uv extent count, (uv offset, uv length, id[32])*
 *     dir: id[32]      other: uv target length, target
 *   and a trailing SHA-256 of everything before it.
 * A cache that fails to parse is ignored: the save then reads everything.
 * It is replaced atomically but not fsynced (a cache: see ps_fcache_commit).
 */
#define _GNU_SOURCE
#include "snap_int.h"
#include "../hash/hash.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FC_MAGIC "PSFC"
#define FC_VERSION 2
#define FC_HDR 48

struct ps_fcache {
	char path[PATH_MAX];
	uint8_t params[32];
	int dirs_valid;            /* the old generation had the same params */
	/* old generation: open addressing by path; paths, xattrs and targets
	 * point into `raw` (the file as read), extents into `pool` */
	struct ps_buf raw;
	struct ps_extent *pool;
	struct ps_fcache_ent *old;
	size_t nold;
	struct fc_slot {
		uint32_t hash;         /* low bits of the path's hash */
		uint32_t idx;          /* index+1 into old, 0 = empty */
	} *slots;
	size_t cap;
	/* next generation */
	pthread_mutex_t lock;      /* protects next, nnext */
	struct ps_buf next;
	uint64_t nnext;
};

static uint64_t fnv(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void ps_fcache_default_dir(char *buf, size_t len)
{
	const char *e = getenv("PROJSTORE_CACHE_DIR");
	if (e && *e) {
		snprintf(buf, len, "%s", e);
		return;
	}
	if (geteuid() == 0) {
		snprintf(buf, len, "/var/cache/projstore");
		return;
	}
	e = getenv("XDG_CACHE_HOME");
	if (e && *e) {
		snprintf(buf, len, "%s/projstore", e);
		return;
	}
	e = getenv("HOME");
	snprintf(buf, len, "%s/.cache/projstore", e && *e ? e : "/tmp");
}

static void fc_drop_old(struct ps_fcache *c)
{
	ps_free(c->pool);
	c->pool = NULL;
	ps_free(c->old);
	ps_free(c->slots);
	c->old = NULL;
	c->slots = NULL;
	c->nold = c->cap = 0;
}


/* The cache is not trusted more than the store: what a save copies from it
 * into a tree must be what the tree decoder accepts. */
static int xattrs_valid(const uint8_t *p, size_t n)
{
	struct ps_rd r;
	uint64_t count;
	ps_rd_init(&r, p, n);
	count = ps_rd_uvar(&r);
	if (count > n)
		return 0;
	for (uint64_t i = 0; i < count && !r.bad; i++) {
		uint64_t kl = ps_rd_uvar(&r);
		const uint8_t *k = ps_rd_bytes(&r, (size_t)kl);
		if (k && (kl == 0 || kl > 255 || memchr(k, 0, (size_t)kl)))
			return 0;
		ps_rd_bytes(&r, (size_t)ps_rd_uvar(&r));
	}
	return !r.bad && !ps_rd_left(&r);
}

int ps_fcache_parse(struct ps_fcache *c, const uint8_t *buf, size_t len)
{
	struct ps_rd r;
	uint8_t sha[32];
	uint64_t n;
	size_t npool = 0, pool_cap = 0;
	if (len < FC_HDR + 32 || memcmp(buf, FC_MAGIC, 4) || ps_get_le32(buf + 4) != FC_VERSION)
		return -1;
	if (ps_sha256(buf, len - 32, sha) || memcmp(sha, buf + len - 32, 32))
		return -1;
	n = ps_get_le64(buf + 8);
	if (n > len / 8 || n >= UINT32_MAX)
		return -1;
	c->dirs_valid = !memcmp(buf + 16, c->params, 32);
	ps_rd_init(&r, buf + FC_HDR, len - FC_HDR - 32);
	c->old = ps_calloc((size_t)n + 1, sizeof(*c->old));
	if (!c->old)
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		struct ps_fcache_ent *e = &c->old[i];
		const uint8_t *p;
		size_t xl;
		c->nold = (size_t)i + 1;
		e->path_len = (size_t)ps_rd_uvar(&r);
		p = ps_rd_bytes(&r, e->path_len);
		if (!p || e->path_len > PATH_MAX * 16)
			return -1;
		e->path = (char *)p;
		e->kind = ps_rd_u8(&r);
		e->dev = ps_rd_uvar(&r);
		e->ino = ps_rd_uvar(&r);
		e->size = ps_rd_uvar(&r);
		e->mtime_ns = ps_rd_svar(&r);
		e->ctime_ns = ps_rd_svar(&r);
		xl = (size_t)ps_rd_uvar(&r);
		p = ps_rd_bytes(&r, xl);
		if (r.bad || e->kind > PS_FC_OTHER)
			return -1;
		if (xl) {
			struct ps_rd xr;
			if (!xattrs_valid(p, xl))
				return -1;
			e->xattrs = (uint8_t *)p;
			e->xattrs_len = xl;
			ps_rd_init(&xr, p, xl);
			e->nxattrs = (size_t)ps_rd_uvar(&xr);
		}
		if (e->kind == PS_FC_FILE) {
			uint64_t ne = ps_rd_uvar(&r);
			if (r.bad || ne > ps_rd_left(&r) / 34)
				return -1;
			if (npool + ne > pool_cap) {
				size_t cap = (npool + (size_t)ne) * 2 + 1024;
				struct ps_extent *np = ps_realloc(c->pool, cap * sizeof(*np));
				if (!np)
					return -1;
				c->pool = np;
				pool_cap = cap;
			}
			/* an index into the pool until it stops moving */
			e->extents = (struct ps_extent *)(uintptr_t)npool;
			e->nextents = (size_t)ne;
			for (uint64_t k = 0, end = 0; k < ne; k++) {
				struct ps_extent *x = &c->pool[npool++];
				uint64_t l;
				x->off = ps_rd_uvar(&r);
				l = ps_rd_uvar(&r);
				p = ps_rd_bytes(&r, 32);
				if (!p || l == 0 || l > PS_OBJ_MAX || x->off < end || l > e->size ||
				    x->off > e->size - l)
					return -1;
				x->len = (uint32_t)l;
				end = x->off + l;
				memcpy(x->id, p, 32);
			}
		} else if (e->kind == PS_FC_DIR) {
			p = ps_rd_bytes(&r, 32);
			if (!p)
				return -1;
			memcpy(e->tree, p, 32);
		} else {
			e->target_len = (size_t)ps_rd_uvar(&r);
			p = ps_rd_bytes(&r, e->target_len);
			if ((!p && e->target_len) || e->target_len > 65536 ||
			    (e->target_len && memchr(p, 0, e->target_len)))
				return -1;
			e->target = (uint8_t *)p;
		}
		if (r.bad)
			return -1;
	}
	if (ps_rd_left(&r))
		return -1;
	for (size_t i = 0; i < c->nold; i++)
		if (c->old[i].kind == PS_FC_FILE)
			c->old[i].extents = c->pool ? c->pool + (uintptr_t)c->old[i].extents : NULL;
	c->cap = 16;
	while (c->cap < c->nold * 2)
		c->cap *= 2;
	c->slots = ps_calloc(c->cap, sizeof(*c->slots));
	if (!c->slots)
		return -1;
	for (size_t i = 0; i < c->nold; i++) {
		uint64_t hv = fnv(c->old[i].path, c->old[i].path_len);
		size_t h = (size_t)hv & (c->cap - 1);
		while (c->slots[h].idx)
			h = (h + 1) & (c->cap - 1);
		c->slots[h].hash = (uint32_t)(hv >> 32);
		c->slots[h].idx = (uint32_t)i + 1;
	}
	return 0;
}

int ps_fcache_open(struct ps_fcache **out, const char *cache_dir, const char *store_id,
		   const char *project, const char *projdir, const uint8_t params[32])
{
	struct ps_fcache *c = ps_calloc(1, sizeof(*c));
	struct ps_buf b = PS_BUF_INIT;
	char dir[PATH_MAX], abs[PATH_MAX], dh[65];
	uint8_t dsha[32];
	if (!c)
		return PS_ERROR;
	pthread_mutex_init(&c->lock, NULL);
	if (params)
		memcpy(c->params, params, 32);
	if (cache_dir && *cache_dir)
		snprintf(dir, sizeof(dir), "%s", cache_dir);
	else
		ps_fcache_default_dir(dir, sizeof(dir));
	if (!projdir || !realpath(projdir, abs))
		snprintf(abs, sizeof(abs), "%s", projdir ? projdir : "");
	ps_sha256(abs, strlen(abs), dsha);
	ps_hex_encode(dsha, 8, dh);
	snprintf(c->path, sizeof(c->path), "%s/%s/%s-%s.fcache", dir, store_id, project, dh);
	if (ps_read_file(c->path, (size_t)1 << 32, &b, NULL) == PS_OK) {
		if (ps_fcache_parse(c, b.data, b.len)) {
			fc_drop_old(c);
			ps_buf_release(&b);
		} else {
			c->raw = b;                         /* entries point into it */
			ps_buf_reserve(&c->next, b.len);   /* the next one is about as big */
		}
	} else {
		ps_buf_release(&b);
	}
	*out = c;
	return PS_OK;
}

const struct ps_fcache_ent *ps_fcache_find(const struct ps_fcache *c, const char *path, size_t len)
{
	uint64_t hv;
	size_t h;
	if (!c || !c->cap)
		return NULL;
	hv = fnv(path, len);
	for (h = (size_t)hv & (c->cap - 1); c->slots[h].idx; h = (h + 1) & (c->cap - 1)) {
		const struct ps_fcache_ent *e;
		if (c->slots[h].hash != (uint32_t)(hv >> 32))
			continue;
		e = &c->old[c->slots[h].idx - 1];
		if (e->path_len == len && !memcmp(e->path, path, len))
			return (e->kind == PS_FC_DIR && !c->dirs_valid) ? NULL : e;
	}
	return NULL;
}

int ps_fcache_match(const struct ps_fcache_ent *e, const struct stat *st)
{
	return e && e->dev == (uint64_t)st->st_dev && e->ino == (uint64_t)st->st_ino &&
	       e->size == (uint64_t)st->st_size &&
	       e->mtime_ns == (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec &&
	       e->ctime_ns == (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
}

int ps_fcache_add(struct ps_fcache *c, const struct ps_fcache_ent *e, const struct stat *st)
{
	struct ps_buf *b;
	int rc = 0;
	if (!c)
		return PS_OK;
	b = &c->next;
	pthread_mutex_lock(&c->lock);
	rc |= ps_buf_put_uvar(b, e->path_len);
	rc |= ps_buf_append(b, e->path, e->path_len);
	rc |= ps_buf_put_u8(b, e->kind);
	rc |= ps_buf_put_uvar(b, (uint64_t)st->st_dev);
	rc |= ps_buf_put_uvar(b, (uint64_t)st->st_ino);
	rc |= ps_buf_put_uvar(b, (uint64_t)st->st_size);
	rc |= ps_buf_put_svar(b, (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec);
	rc |= ps_buf_put_svar(b, (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec);
	rc |= ps_buf_put_uvar(b, e->xattrs_len);
	rc |= ps_buf_append(b, e->xattrs, e->xattrs_len);
	if (e->kind == PS_FC_FILE) {
		rc |= ps_buf_put_uvar(b, e->nextents);
		for (size_t i = 0; i < e->nextents && !rc; i++) {
			rc |= ps_buf_put_uvar(b, e->extents[i].off);
			rc |= ps_buf_put_uvar(b, e->extents[i].len);
			rc |= ps_buf_append(b, e->extents[i].id, 32);
		}
	} else if (e->kind == PS_FC_DIR) {
		rc |= ps_buf_append(b, e->tree, 32);
	} else {
		rc |= ps_buf_put_uvar(b, e->target_len);
		rc |= ps_buf_append(b, e->target, e->target_len);
	}
	if (!rc)
		c->nnext++;
	pthread_mutex_unlock(&c->lock);
	return rc ? PS_ERROR : PS_OK;
}

int ps_fcache_commit(struct ps_fcache *c, struct ps_error *err)
{
	uint8_t hdr[FC_HDR] = { 0 }, sha[32];
	struct ps_sha256_ctx *h = ps_sha256_new();
	struct iovec iov[3];
	char dir[PATH_MAX];
	char *slash;
	int rc;
	if (!h)
		return ps_err(err, PS_ERROR, "out of memory");
	memcpy(hdr, FC_MAGIC, 4);
	ps_put_le32(hdr + 4, FC_VERSION);
	ps_put_le64(hdr + 8, c->nnext);
	memcpy(hdr + 16, c->params, 32);
	if (ps_sha256_update(h, hdr, FC_HDR) || ps_sha256_update(h, c->next.data, c->next.len) ||
	    ps_sha256_final(h, sha)) {
		ps_sha256_free(h);
		return ps_err(err, PS_ERROR, "sha256 failed");
	}
	ps_sha256_free(h);
	iov[0].iov_base = hdr;
	iov[0].iov_len = FC_HDR;
	iov[1].iov_base = c->next.data;
	iov[1].iov_len = c->next.len;
	iov[2].iov_base = sha;
	iov[2].iov_len = 32;
	snprintf(dir, sizeof(dir), "%s", c->path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	rc = ps_mkdirs(dir, 0700, err);
	/* not fsynced: a cache lost in a crash costs a full read; an older one
	 * surviving is still right (it is keyed by the stat values, and its ids
	 * are checked against the index); a torn one fails the checksum */
	if (!rc)
		rc = ps_write_file_atomicv_nosync(c->path, iov, 3, err);
	return rc;
}

void ps_fcache_free(struct ps_fcache *c)
{
	if (!c)
		return;
	fc_drop_old(c);
	ps_buf_release(&c->raw);
	ps_buf_release(&c->next);
	pthread_mutex_destroy(&c->lock);
	ps_free(c);
}
