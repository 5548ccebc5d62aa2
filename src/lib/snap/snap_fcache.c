/*
 * snap_fcache.c - the host-side file cache that makes incremental saves cheap.
 *
 * For every regular file saved (or restored) it remembers the path relative
 * to the project directory, the (dev, inode, size, mtime, ctime) seen, and the
 * chunk list of its content.  When a later save finds the same five values, it
 * reuses the chunk list without opening the file.  ctime is included because
 * it cannot be set by users, so a file rewritten with its old mtime restored is
 * still re-read.  The chunks are checked against the store's index before
 * reuse, so a cache made before a gc can never name a missing object.
 *
 * File: <cache_dir>/<store id>/<project>.fcache, written atomically:
 *   "PSFC" magic, u32 version = 1, u64 entry count, then entries:
 *   uv path length, path, uv dev, uv ino, uv size, sv mtime_ns, sv ctime_ns,
 *   uv extent count, (uv offset, uv length, id[32])*
 *   and a trailing SHA-256 of everything before it.
 * A cache that fails to parse is ignored (the save reads every file).
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
#define FC_VERSION 1

struct ps_fcache {
	char path[PATH_MAX];
	/* old generation: open addressing by path */
	struct ps_fcache_ent *old;
	size_t nold;
	size_t *slots;        /* index+1 into old, 0 = empty */
	size_t cap;
	/* next generation */
	pthread_mutex_t lock; /* protects next */
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

static int fc_parse(struct ps_fcache *c, const uint8_t *buf, size_t len)
{
	struct ps_rd r;
	uint8_t sha[32];
	uint64_t n;
	if (len < 48 || memcmp(buf, FC_MAGIC, 4) || ps_get_le32(buf + 4) != FC_VERSION)
		return -1;
	if (ps_sha256(buf, len - 32, sha) || memcmp(sha, buf + len - 32, 32))
		return -1;
	n = ps_get_le64(buf + 8);
	if (n > len / 8)
		return -1;
	ps_rd_init(&r, buf + 16, len - 48);
	c->old = ps_calloc((size_t)n + 1, sizeof(*c->old));
	if (!c->old)
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		struct ps_fcache_ent *e = &c->old[i];
		const uint8_t *p;
		uint64_t ne;
		e->path_len = (size_t)ps_rd_uvar(&r);
		p = ps_rd_bytes(&r, e->path_len);
		if (!p)
			return -1;
		e->path = ps_strndup((const char *)p, e->path_len);
		e->dev = ps_rd_uvar(&r);
		e->ino = ps_rd_uvar(&r);
		e->size = ps_rd_uvar(&r);
		e->mtime_ns = ps_rd_svar(&r);
		e->ctime_ns = ps_rd_svar(&r);
		ne = ps_rd_uvar(&r);
		if (r.bad || ne > ps_rd_left(&r) / 34 || !e->path)
			return -1;
		e->extents = ps_malloc(sizeof(*e->extents) * (size_t)(ne ? ne : 1));
		if (!e->extents)
			return -1;
		e->nextents = (size_t)ne;
		c->nold = (size_t)i + 1;
		for (uint64_t k = 0; k < ne; k++) {
			e->extents[k].off = ps_rd_uvar(&r);
			e->extents[k].len = (uint32_t)ps_rd_uvar(&r);
			p = ps_rd_bytes(&r, 32);
			if (!p)
				return -1;
			memcpy(e->extents[k].id, p, 32);
		}
		if (r.bad)
			return -1;
	}
	c->cap = 16;
	while (c->cap < c->nold * 2)
		c->cap *= 2;
	c->slots = ps_calloc(c->cap, sizeof(*c->slots));
	if (!c->slots)
		return -1;
	for (size_t i = 0; i < c->nold; i++) {
		size_t h = (size_t)fnv(c->old[i].path, c->old[i].path_len) & (c->cap - 1);
		while (c->slots[h])
			h = (h + 1) & (c->cap - 1);
		c->slots[h] = i + 1;
	}
	return 0;
}

static void fc_drop_old(struct ps_fcache *c)
{
	for (size_t i = 0; i < c->nold; i++) {
		ps_free(c->old[i].path);
		ps_free(c->old[i].extents);
	}
	ps_free(c->old);
	ps_free(c->slots);
	c->old = NULL;
	c->slots = NULL;
	c->nold = c->cap = 0;
}

int ps_fcache_open(struct ps_fcache **out, const char *cache_dir, const char *store_id,
		   const char *project)
{
	struct ps_fcache *c = ps_calloc(1, sizeof(*c));
	struct ps_buf b = PS_BUF_INIT;
	char dir[PATH_MAX];
	if (!c)
		return PS_ERROR;
	pthread_mutex_init(&c->lock, NULL);
	if (cache_dir)
		snprintf(dir, sizeof(dir), "%s", cache_dir);
	else
		ps_fcache_default_dir(dir, sizeof(dir));
	snprintf(c->path, sizeof(c->path), "%s/%s/%s.fcache", dir, store_id, project);
	if (ps_read_file(c->path, (size_t)1 << 32, &b, NULL) == PS_OK && fc_parse(c, b.data, b.len))
		fc_drop_old(c);
	ps_buf_release(&b);
	*out = c;
	return PS_OK;
}

const struct ps_fcache_ent *ps_fcache_find(const struct ps_fcache *c, const char *path, size_t len)
{
	size_t h;
	if (!c->cap)
		return NULL;
	for (h = (size_t)fnv(path, len) & (c->cap - 1); c->slots[h]; h = (h + 1) & (c->cap - 1)) {
		const struct ps_fcache_ent *e = &c->old[c->slots[h] - 1];
		if (e->path_len == len && !memcmp(e->path, path, len))
			return e;
	}
	return NULL;
}

int ps_fcache_add(struct ps_fcache *c, const char *path, size_t len, const struct stat *st,
		  const struct ps_extent *ext, size_t n)
{
	struct ps_buf *b = &c->next;
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	rc |= ps_buf_put_uvar(b, len);
	rc |= ps_buf_append(b, path, len);
	rc |= ps_buf_put_uvar(b, (uint64_t)st->st_dev);
	rc |= ps_buf_put_uvar(b, (uint64_t)st->st_ino);
	rc |= ps_buf_put_uvar(b, (uint64_t)st->st_size);
	rc |= ps_buf_put_svar(b, (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec);
	rc |= ps_buf_put_svar(b, (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec);
	rc |= ps_buf_put_uvar(b, n);
	for (size_t i = 0; i < n && !rc; i++) {
		rc |= ps_buf_put_uvar(b, ext[i].off);
		rc |= ps_buf_put_uvar(b, ext[i].len);
		rc |= ps_buf_append(b, ext[i].id, 32);
	}
	if (!rc)
		c->nnext++;
	pthread_mutex_unlock(&c->lock);
	return rc ? PS_ERROR : PS_OK;
}

int ps_fcache_commit(struct ps_fcache *c, struct ps_error *err)
{
	struct ps_buf out = PS_BUF_INIT;
	uint8_t hdr[16] = { 0 }, sha[32];
	char dir[PATH_MAX];
	char *slash;
	int rc;
	memcpy(hdr, FC_MAGIC, 4);
	ps_put_le32(hdr + 4, FC_VERSION);
	ps_put_le64(hdr + 8, c->nnext);
	if (ps_buf_reserve(&out, 16 + c->next.len + 32) || ps_buf_append(&out, hdr, 16) ||
	    ps_buf_append(&out, c->next.data, c->next.len) || ps_sha256(out.data, out.len, sha) ||
	    ps_buf_append(&out, sha, 32)) {
		ps_buf_release(&out);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	snprintf(dir, sizeof(dir), "%s", c->path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	rc = ps_mkdirs(dir, 0700, err);
	if (!rc)
		rc = ps_write_file_atomic(c->path, out.data, out.len, err);
	ps_buf_release(&out);
	return rc;
}

void ps_fcache_free(struct ps_fcache *c)
{
	if (!c)
		return;
	fc_drop_old(c);
	ps_buf_release(&c->next);
	pthread_mutex_destroy(&c->lock);
	ps_free(c);
}
