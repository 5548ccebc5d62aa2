/*
 * store_gc.c - the store side of garbage collection: condemned lists, the
 * retirement of packs, and the scan of locks by which gc learns whether a
 * save that started before a condemnation is still running.
 *
 * gc works in two phases (docs/FORMAT.md, "Garbage collection"):
 *
 *   1. it computes what no snapshot reaches and publishes a condemned list
 *      gc/condemned-<ns> naming the packs it will delete or repack, with the
 *      time of the condemnation;
 *   2. later (after the grace period, and only once no save that started
 *      before that time still runs) it marks again from the refs of that
 *      moment, copies what became reachable again, rewrites the index and
 *      only then deletes the packs.
 *
 * Every process that loads the index reads the condemned lists too
 * (ps_store_load_index): objects in condemned packs stay readable through
 * ps_store_get/ps_store_locate, but ps_store_has and ps_store_put ignore them,
 * so a save that starts after a condemnation never refers to an object that
 * phase 2 may delete.
 *
 * A condemned list is text:
 *
 *     projstore-condemned 1
 *     time <ns since the epoch, UTC>
 *     host <name of the gc host>
 *     pack <hex id> delete|repack|unindexed       (one line per pack)
 *     checksum <SHA-256 of the lines before>
 *
 * Retiring a pack (ps_pack_retire) does not unlink it in place: a save that
 * writes exactly the same objects in the same order produces a byte-identical
 * pack with the same name, renamed over the condemned one after the
 * condemnation.  So the pack is first renamed aside to
 * tmp/.gc-aside-<hex>-<condemned ns> (only one name can be caught by that
 * rename), and its mtime tells which file was caught: older than the
 * condemnation is the condemned pack (unlinked), newer is a new identical
 * pack (linked back).  A gc killed in between leaves the aside file, and the
 * next gc (ps_pack_retire_recover) finishes the job with the same rule.
 */
#define _GNU_SOURCE
#include "store_int.h"
#include "../hash/hash.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define LIST_MAX ((size_t)1 << 30)
#define ASIDE_PREFIX ".gc-aside-"

static const char *const reason_names[] = { "?", "delete", "repack", "unindexed" };

const char *ps_condemn_reason_name(int reason)
{
	return reason >= PS_CONDEMN_DELETE && reason <= PS_CONDEMN_UNINDEXED ? reason_names[reason]
									     : "?";
}

/* ------------------------------------------------------------ lists */

void ps_condemned_free(struct ps_condemned *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++) {
		ps_free(v[i].packs);
		ps_free(v[i].reasons);
	}
	ps_free(v);
}

static int parse_list(const char *text, size_t len, struct ps_condemned *c, struct ps_error *err)
{
	const char *p = text, *end = text + len;
	size_t cap = 0;
	int header = 0, have_sum = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[256], *val;
		size_t ll;
		if (!nl)
			return ps_err(err, PS_ECORRUPT, "condemned list is truncated");
		ll = (size_t)(nl - p);
		if (ll >= sizeof(line) || memchr(p, 0, ll))
			return ps_err(err, PS_ECORRUPT, "condemned list has an invalid line");
		memcpy(line, p, ll);
		line[ll] = 0;
		val = strchr(line, ' ');
		if (!val)
			return ps_err(err, PS_ECORRUPT, "condemned list has an invalid line");
		*val++ = 0;
		if (!header) {
			if (strcmp(line, "projstore-condemned") || strcmp(val, "1"))
				return ps_err(err, PS_ECORRUPT, "condemned list has no valid header");
			header = 1;
		} else if (!strcmp(line, "checksum")) {
			uint8_t want[32], got[32];
			if (strlen(val) != 64 || ps_hex_decode(val, want, 32) ||
			    ps_sha256(text, (size_t)(p - text), got) || memcmp(want, got, 32))
				return ps_err(err, PS_ECORRUPT, "condemned list fails its checksum");
			have_sum = 1;
			break;
		} else if (!strcmp(line, "time")) {
			c->time_ns = strtoll(val, NULL, 10);
		} else if (!strcmp(line, "pack")) {
			char *r = strchr(val, ' ');
			int reason = PS_CONDEMN_DELETE;
			if (r) {
				*r++ = 0;
				for (int k = PS_CONDEMN_DELETE; k <= PS_CONDEMN_UNINDEXED; k++)
					if (!strcmp(r, reason_names[k]))
						reason = k;
			}
			if (c->npacks == cap) {
				size_t nc = cap ? cap * 2 : 64;
				void *a = ps_realloc(c->packs, nc * 32), *b;
				if (!a)
					return ps_err(err, PS_ERROR, "out of memory");
				c->packs = a;
				b = ps_realloc(c->reasons, nc);
				if (!b)
					return ps_err(err, PS_ERROR, "out of memory");
				c->reasons = b;
				cap = nc;
			}
			if (strlen(val) != 64 || ps_hex_decode(val, c->packs[c->npacks], 32))
				return ps_err(err, PS_ECORRUPT, "condemned list names an invalid pack");
			c->reasons[c->npacks++] = (uint8_t)reason;
		}
		/* other keys (host, newer additions) are ignored */
		p = nl + 1;
	}
	if (!have_sum)
		return ps_err(err, PS_ECORRUPT, "condemned list is truncated (no checksum)");
	if (c->time_ns <= 0)
		return ps_err(err, PS_ECORRUPT, "condemned list has no valid time");
	return PS_OK;
}

struct list_names {
	char (*v)[64];
	size_t n, cap;
};

static int collect_list(void *ctx, const char *name)
{
	struct list_names *l = ctx;
	if (strncmp(name, "condemned-", 10) || strlen(name) >= 64)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		void *v = ps_realloc(l->v, cap * 64);
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	snprintf(l->v[l->n++], 64, "%s", name);
	return 0;
}

static int cond_cmp(const void *a, const void *b)
{
	const struct ps_condemned *x = a, *y = b;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

int ps_condemned_load(struct ps_store *s, struct ps_condemned **out, size_t *nout,
		      struct ps_error *err)
{
	struct list_names l = { 0 };
	struct ps_condemned *v = NULL;
	size_t n = 0;
	int rc;
	*out = NULL;
	*nout = 0;
	rc = s->be->ops->list(s->be, PS_GC_DIR, collect_list, &l, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		return PS_OK;
	}
	if (rc) {
		ps_free(l.v);
		return rc < 0 ? rc : ps_err(err, PS_ERROR, "out of memory");
	}
	v = ps_calloc(l.n + 1, sizeof(*v));
	if (!v) {
		ps_free(l.v);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	for (size_t i = 0; i < l.n; i++) {
		char path[PATH_MAX];
		void *buf = NULL;
		size_t len;
		struct ps_error e2;
		struct ps_condemned *c = &v[n];
		snprintf(path, sizeof(path), "%s/%s", PS_GC_DIR, l.v[i]);
		snprintf(c->name, sizeof(c->name), "%s", l.v[i]);
		rc = ps_be_read_all(s->be, path, LIST_MAX, &buf, &len, &e2);
		if (rc == PS_ENOTFOUND)
			continue;   /* finished by another gc meanwhile */
		if (!rc)
			rc = parse_list(buf, len, c, &e2);
		ps_free(buf);
		if (rc == PS_ECORRUPT) {
			/* kept and reported: nothing it names is ever deleted */
			ps_free(c->packs);
			ps_free(c->reasons);
			c->packs = NULL;
			c->reasons = NULL;
			c->npacks = 0;
			c->damaged = 1;
			rc = PS_OK;
		}
		if (rc) {
			if (err)
				*err = e2;
			n++;
			ps_condemned_free(v, n);
			ps_free(l.v);
			return rc;
		}
		n++;
	}
	ps_free(l.v);
	ps_qsort(v, n, sizeof(*v), cond_cmp);
	*out = v;
	*nout = n;
	return PS_OK;
}

int ps_condemned_publish(struct ps_store *s, int64_t time_ns, uint8_t (*packs)[32],
			 const uint8_t *reasons, size_t n, char *name_out, size_t name_len,
			 struct ps_error *err)
{
	struct ps_buf b = PS_BUF_INIT;
	char path[PATH_MAX], hex[65];
	uint8_t sha[32];
	int rc = s->be->ops->mkdir(s->be, PS_GC_DIR, err);
	if (rc)
		return rc;
	if (ps_buf_printf(&b, "projstore-condemned 1\ntime %lld\nhost %s\n", (long long)time_ns,
			  ps_hostname()))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		ps_hex_encode(packs[i], 32, hex);
		if (ps_buf_printf(&b, "pack %s %s\n", hex, ps_condemn_reason_name(reasons[i])))
			goto oom;
	}
	if (ps_sha256(b.data, b.len, sha))
		goto oom;
	ps_hex_encode(sha, 32, hex);
	if (ps_buf_printf(&b, "checksum %s\n", hex))
		goto oom;
	snprintf(path, sizeof(path), "%s/condemned-%019lld", PS_GC_DIR, (long long)time_ns);
	rc = ps_be_write_atomic(s->be, path, b.data, b.len, err);
	if (!rc && name_out)
		snprintf(name_out, name_len, "%s", path + strlen(PS_GC_DIR) + 1);
	ps_buf_release(&b);
	return rc;
oom:
	ps_buf_release(&b);
	return ps_err(err, PS_ERROR, "out of memory");
}

int ps_condemned_remove(struct ps_store *s, const char *name, struct ps_error *err)
{
	char path[PATH_MAX];
	int rc;
	snprintf(path, sizeof(path), "%s/%s", PS_GC_DIR, name);
	rc = s->be->ops->unlink(s->be, path, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		rc = PS_OK;
	}
	if (!rc)
		rc = s->be->ops->fsync_dir(s->be, PS_GC_DIR, err);
	return rc;
}

/* ------------------------------------------------------------ retiring */

static void aside_name(const uint8_t pack_id[32], int64_t condemned_ns, char *buf, size_t len)
{
	char hex[65];
	ps_hex_encode(pack_id, 32, hex);
	snprintf(buf, len, "tmp/" ASIDE_PREFIX "%s-%lld", hex, (long long)condemned_ns);
}

/* The file caught at `aside` was renamed away from `path`: unlink it when it
 * is the condemned pack, put it back when it is a newer identical one. */
static int settle_aside(struct ps_store *s, const char *aside, const char *path,
			int64_t condemned_ns, uint64_t *freed, int *kept, struct ps_error *err)
{
	struct ps_bstat st;
	int rc = s->be->ops->stat(s->be, aside, &st, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		return PS_OK;
	}
	if (rc)
		return rc;
	if (st.mtime_ns >= condemned_ns) {
		/* written after the condemnation: a save published the same pack (only
		 * saves whose lock is younger than the condemnation still run in
		 * phase 2, so such a pack is newer than it by the lock margin) */
		rc = s->be->ops->link(s->be, aside, path, err);
		if (rc == PS_EEXISTS) {
			ps_error_clear(err);
			rc = PS_OK;   /* published again meanwhile: the same bytes */
		}
		if (rc)
			return rc;
		if (kept)
			*kept = 1;
	} else if (freed) {
		*freed += st.size;
	}
	rc = s->be->ops->unlink(s->be, aside, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		rc = PS_OK;
	}
	if (!rc)
		rc = s->be->ops->fsync_dir(s->be, "tmp", err);
	return rc;
}

int ps_pack_retire(struct ps_store *s, const uint8_t pack_id[32], int64_t condemned_ns,
		   uint64_t *freed, int *kept, struct ps_error *err)
{
	char path[PATH_MAX], aside[PATH_MAX], dir[16];
	struct ps_bstat st;
	int rc;
	if (kept)
		*kept = 0;
	ps_pack_path(pack_id, path, sizeof(path));
	aside_name(pack_id, condemned_ns, aside, sizeof(aside));
	rc = s->be->ops->stat(s->be, path, &st, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		return PS_OK;   /* gone already (an earlier, interrupted run) */
	}
	if (rc)
		return rc;
	rc = s->be->ops->rename(s->be, path, aside, err);
	if (rc) {
		if (s->be->ops->stat(s->be, path, &st, NULL) == PS_ENOTFOUND) {
			ps_error_clear(err);
			return PS_OK;
		}
		return rc;
	}
	snprintf(dir, sizeof(dir), "%.8s", path);   /* packs/XX */
	rc = s->be->ops->fsync_dir(s->be, dir, err);
	if (rc)
		return rc;
	return settle_aside(s, aside, path, condemned_ns, freed, kept, err);
}

struct aside_list {
	char **v;
	size_t n, cap;
};

static int collect_aside(void *ctx, const char *name)
{
	struct aside_list *l = ctx;
	if (strncmp(name, ASIDE_PREFIX, strlen(ASIDE_PREFIX)))
		return 0;
	return ps_strv_push(&l->v, &l->n, &l->cap, name);
}

int ps_pack_retire_recover(struct ps_store *s, struct ps_error *err)
{
	struct aside_list l = { 0 };
	int rc = s->be->ops->list(s->be, "tmp", collect_aside, &l, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		rc = PS_OK;
	}
	if (rc > 0)
		rc = ps_err(err, PS_ERROR, "out of memory");
	for (size_t i = 0; i < l.n && !rc; i++) {
		const char *p = l.v[i] + strlen(ASIDE_PREFIX);
		char aside[PATH_MAX], path[PATH_MAX];
		uint8_t id[32];
		int64_t t;
		if (strlen(p) < 66 || p[64] != '-' || ps_hex_decode(p, id, 32))
			continue;
		t = strtoll(p + 65, NULL, 10);
		snprintf(aside, sizeof(aside), "tmp/%s", l.v[i]);
		ps_pack_path(id, path, sizeof(path));
		{
			char dir[16];
			snprintf(dir, sizeof(dir), "%.8s", path);
			rc = s->be->ops->mkdir(s->be, dir, err);
		}
		if (!rc)
			rc = settle_aside(s, aside, path, t, NULL, NULL, err);
	}
	ps_strv_free(l.v, l.n);
	return rc;
}
