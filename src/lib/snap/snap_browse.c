/*
 * snap_browse.c - reading snapshots without restoring them: ls, cat, diff.
 * Each reads only the tree objects on the way to what it shows; diff skips
 * every subtree whose id is the same on both sides without reading it.
 */
#define _GNU_SOURCE
#include "snap_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void to_entry(const struct ps_tentry *t, struct ps_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->name = (const char *)t->name;
	e->name_len = t->name_len;
	e->type = t->type;
	e->mode = t->mode;
	e->uid = t->uid;
	e->gid = t->gid;
	e->mtime_sec = t->mtime_sec;
	e->mtime_nsec = t->mtime_nsec;
	e->size = t->size;
	e->link_group = t->link_group;
	e->rdev = t->rdev;
	e->nxattrs = t->nxattrs;
	if (t->type == PS_T_SYMLINK) {
		e->target = (const char *)t->target;
		e->target_len = t->target_len;
	} else if (t->type == PS_T_ERROR) {
		e->error = (const char *)t->target;
		e->error_len = t->target_len;
	}
}

int ps_ls(struct ps_store *s, const char *project, const char *snapshot, const char *path,
	  ps_entry_fn fn, void *ctx, struct ps_error *err)
{
	struct ps_snapshot_info si;
	struct ps_tree t;
	long idx;
	int rc = ps_resolve_root(s, project, snapshot, &si, err);
	if (rc)
		return rc;
	rc = ps_tree_lookup(s, si.root, path ? path : "", &t, &idx, err);
	if (rc)
		return rc;
	if (idx >= 0 && t.ents[idx].type == PS_T_DIR) {
		uint8_t sub[32];
		memcpy(sub, t.ents[idx].subtree, 32);
		ps_tree_release(&t);
		rc = ps_tree_load(s, sub, &t, err);
		if (rc)
			return rc;
		idx = -1;
	}
	for (size_t i = 0; i < t.n; i++) {
		struct ps_entry e;
		if (idx >= 0 && (long)i != idx)
			continue;
		to_entry(&t.ents[i], &e);
		if (fn(ctx, &e))
			break;
	}
	ps_tree_release(&t);
	return PS_OK;
}

static int write_zeros(int fd, uint64_t n)
{
	static const uint8_t z[65536];
	while (n) {
		size_t k = n > sizeof(z) ? sizeof(z) : (size_t)n;
		if (ps_write_all(fd, z, k))
			return -1;
		n -= k;
	}
	return 0;
}

int ps_cat(struct ps_store *s, const char *project, const char *snapshot, const char *path,
	   int fd, struct ps_error *err)
{
	struct ps_snapshot_info si;
	struct ps_tree t;
	const struct ps_tentry *e;
	uint64_t pos = 0;
	long idx;
	int rc = ps_resolve_root(s, project, snapshot, &si, err);
	if (rc)
		return rc;
	rc = ps_tree_lookup(s, si.root, path, &t, &idx, err);
	if (rc)
		return rc;
	if (idx < 0 || t.ents[idx].type != PS_T_REG) {
		int type = idx < 0 ? PS_T_DIR : t.ents[idx].type;
		ps_tree_release(&t);
		return ps_err(err, type == PS_T_ERROR ? PS_ENOTFOUND : PS_EINVAL,
			      type == PS_T_ERROR ? "'%s' could not be read when it was saved"
						 : "'%s' is not a regular file", path);
	}
	e = &t.ents[idx];
	for (size_t k = 0; k < e->nextents && !rc; k++) {
		uint8_t *data = NULL;
		size_t len;
		if (e->extents[k].off > pos && write_zeros(fd, e->extents[k].off - pos)) {
			rc = ps_err_sys(err, "cannot write output");
			break;
		}
		rc = ps_store_get(s, e->extents[k].id, PS_OBJ_CHUNK, &data, &len, err);
		if (rc) {
			ps_err_prefix(err, "'%s'", path);
			break;
		}
		if (len != e->extents[k].len) {
			ps_free(data);
			rc = ps_err(err, PS_ECORRUPT, "'%s': chunk length does not match the tree", path);
			break;
		}
		if (ps_write_all(fd, data, len))
			rc = ps_err_sys(err, "cannot write output");
		ps_free(data);
		pos = e->extents[k].off + len;
	}
	if (!rc && pos < e->size && write_zeros(fd, e->size - pos))
		rc = ps_err_sys(err, "cannot write output");
	ps_tree_release(&t);
	return rc;
}

/* ------------------------------------------------------------ diff */

struct diff_ctx {
	struct ps_store *s;
	ps_diff_fn fn;
	void *ctx;
	struct ps_error *err;
	int stop;
};

static int entry_changed(const struct ps_tentry *a, const struct ps_tentry *b)
{
	if (a->type != b->type || a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
	    a->xattrs_len != b->xattrs_len ||
	    (a->xattrs_len && memcmp(a->xattrs, b->xattrs, a->xattrs_len)))
		return 1;
	if (a->type == PS_T_DIR)
		return 0;     /* a directory's mtime follows its content: not a change */
	if (a->size != b->size || a->mtime_sec != b->mtime_sec || a->mtime_nsec != b->mtime_nsec ||
	    a->rdev != b->rdev || a->target_len != b->target_len ||
	    (a->target_len && memcmp(a->target, b->target, a->target_len)))
		return 1;
	if (a->nextents != b->nextents)
		return 1;
	for (size_t i = 0; i < a->nextents; i++)
		if (a->extents[i].off != b->extents[i].off || memcmp(a->extents[i].id, b->extents[i].id, 32))
			return 1;
	return 0;
}

static int diff_trees(struct diff_ctx *d, const uint8_t *a, const uint8_t *b, const char *prefix);

static int report_all(struct diff_ctx *d, int kind, const uint8_t tree[32], const char *prefix)
{
	return kind == PS_DIFF_ADDED ? diff_trees(d, NULL, tree, prefix) : diff_trees(d, tree, NULL, prefix);
}

/* nesting depth of prefix, to refuse crafted trees deeper than PS_MAX_DEPTH */
static int path_depth(const char *p)
{
	int n = *p ? 1 : 0;
	for (; *p; p++)
		n += *p == '/';
	return n;
}

static char *child_path(const char *prefix, const struct ps_tentry *e)
{
	size_t pl = strlen(prefix);
	char *p = ps_malloc(pl + e->name_len + 2);
	if (!p)
		return NULL;
	memcpy(p, prefix, pl);
	if (pl)
		p[pl++] = '/';
	memcpy(p + pl, e->name, e->name_len);
	p[pl + e->name_len] = 0;
	return p;
}

static int one_side(struct diff_ctx *d, int kind, const struct ps_tentry *e, const char *prefix)
{
	char *p = child_path(prefix, e);
	int rc = PS_OK;
	if (!p)
		return ps_err(d->err, PS_ERROR, "out of memory");
	if (d->fn(d->ctx, kind, p, e->type))
		d->stop = 1;
	else if (e->type == PS_T_DIR)
		rc = report_all(d, kind, e->subtree, p);
	ps_free(p);
	return rc;
}

static int diff_trees(struct diff_ctx *d, const uint8_t *a, const uint8_t *b, const char *prefix)
{
	struct ps_tree ta = { 0 }, tb = { 0 };
	size_t i = 0, k = 0;
	int rc = PS_OK;
	if (a && b && !memcmp(a, b, 32))
		return PS_OK;
	if (path_depth(prefix) > PS_MAX_DEPTH)
		return ps_err(d->err, PS_ECORRUPT, "directory nesting deeper than %d", PS_MAX_DEPTH);
	if (a && (rc = ps_tree_load(d->s, a, &ta, d->err)))
		return rc;
	if (b && (rc = ps_tree_load(d->s, b, &tb, d->err))) {
		ps_tree_release(&ta);
		return rc;
	}
	while ((i < ta.n || k < tb.n) && !rc && !d->stop) {
		int c;
		if (i == ta.n)
			c = 1;
		else if (k == tb.n)
			c = -1;
		else
			c = ps_name_cmp(ta.ents[i].name, ta.ents[i].name_len, tb.ents[k].name, tb.ents[k].name_len);
		if (c < 0) {
			rc = one_side(d, PS_DIFF_REMOVED, &ta.ents[i++], prefix);
		} else if (c > 0) {
			rc = one_side(d, PS_DIFF_ADDED, &tb.ents[k++], prefix);
		} else {
			const struct ps_tentry *x = &ta.ents[i++], *y = &tb.ents[k++];
			if (x->type != y->type) {
				rc = one_side(d, PS_DIFF_REMOVED, x, prefix);
				if (!rc && !d->stop)
					rc = one_side(d, PS_DIFF_ADDED, y, prefix);
				continue;
			}
			if (entry_changed(x, y)) {
				char *p = child_path(prefix, y);
				if (!p) {
					rc = ps_err(d->err, PS_ERROR, "out of memory");
					break;
				}
				if (d->fn(d->ctx, PS_DIFF_MODIFIED, p, y->type))
					d->stop = 1;
				ps_free(p);
			}
			if (x->type == PS_T_DIR && memcmp(x->subtree, y->subtree, 32) && !d->stop) {
				char *p = child_path(prefix, y);
				if (!p) {
					rc = ps_err(d->err, PS_ERROR, "out of memory");
					break;
				}
				rc = diff_trees(d, x->subtree, y->subtree, p);
				ps_free(p);
			}
		}
	}
	ps_tree_release(&ta);
	ps_tree_release(&tb);
	return rc;
}

int ps_diff(struct ps_store *s, const char *project, const char *a, const char *b, ps_diff_fn fn,
	    void *ctx, struct ps_error *err)
{
	struct ps_snapshot_info sa, sb;
	struct diff_ctx d = { s, fn, ctx, err, 0 };
	int rc = ps_resolve_root(s, project, a, &sa, err);
	if (!rc)
		rc = ps_snapshot_resolve(s, project, b, &sb, err);
	if (rc)
		return rc;
	return diff_trees(&d, sa.root, sb.root, "");
}
