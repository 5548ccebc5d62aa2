/*
 * snap_check.c - verify a store, and compute stats.
 *
 * check, structure pass (always):
 *   - every index segment parses and passes its checksum;
 *   - every pack the index names exists and is long enough for the records
 *     the index places in it; packs no segment names are leftovers;
 *   - every snapshot ref parses and passes its checksum;
 *   - every tree reachable from every checked snapshot loads (which verifies
 *     its SHA-256) and decodes, and every chunk it names is in the index.
 * check --read-data additionally reads every pack whole: its checksum, and
 * every record decompressed and hashed.  Damaged objects are then mapped to
 * the files and snapshots that use them.  Subtrees shared by several
 * snapshots are walked once; their verdict is remembered per tree id.
 *
 * stats walks the latest snapshot (distinct chunks, their raw and stored
 * sizes) and every snapshot of the project (what the project's history holds).
 */
#define _GNU_SOURCE
#include "snap_int.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* flag bits stored in idset entries (the set stores 1 | flags) */
#define TREE_OK 2
#define TREE_BAD 4

struct check_ctx {
	struct ps_store *s;
	const struct ps_check_opts *o;
	struct ps_check_result *r;
	struct ps_idset damaged;      /* object ids (24-byte prefix, zero padded) */
	struct ps_idset trees;        /* visited trees with their verdict */
	struct ps_idset verified;     /* chunks read in a project-scoped --read-data */
	const char *snap;             /* snapshot being walked */
	int snap_bad;
};

static void problem(struct check_ctx *c, const char *where, const char *fmt, ...)
	PS_ATTR_PRINTF(3, 4);
static void problem(struct check_ctx *c, const char *where, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->r->problems++;
	if (c->o->problem)
		c->o->problem(c->o->cb_ctx, where, msg);
}

static void key24(const uint8_t id[32], uint8_t out[32])
{
	memcpy(out, id, 24);
	memset(out + 24, 0, 8);
}

static int is_damaged(struct check_ctx *c, const uint8_t id[32])
{
	uint8_t k[32];
	if (!c->damaged.n)
		return 0;
	key24(id, k);
	return ps_idset_get(&c->damaged, k) != NULL;
}

static void mark_damaged(struct check_ctx *c, const uint8_t id[32])
{
	uint8_t k[32];
	key24(id, k);
	if (ps_idset_add(&c->damaged, k) == 1)
		c->r->damaged_objects++;
	if (c->o->damaged)
		c->o->damaged(c->o->cb_ctx, id);
}

/* A full id known to be damaged or missing (repair fetches it). */
static void tell_damaged(struct check_ctx *c, const uint8_t id[32])
{
	if (c->o->damaged)
		c->o->damaged(c->o->cb_ctx, id);
}

/* ------------------------------------------------------------ packs */

struct bad_rec_ctx {
	struct check_ctx *c;
	const char *pack;
};

static void bad_record(void *vctx, const struct ps_pack_entry *e, const char *msg)
{
	struct bad_rec_ctx *b = vctx;
	char hex[72];
	memcpy(hex, "object ", 7);
	ps_hex_encode(e->id, 32, hex + 7);
	mark_damaged(b->c, e->id);
	problem(b->c, hex, "object in pack '%s' is damaged: %s", b->pack, msg);
}

static int check_packs(struct check_ctx *c, struct ps_error *err)
{
	struct ps_store *s = c->s;
	uint8_t (*ids)[32] = NULL;
	size_t n = 0;
	struct ps_idset present = { 0 }, indexed = { 0 };
	uint64_t *need = NULL;   /* per pack number: bytes the index needs */
	uint8_t *gone = NULL;    /* per pack number: missing or truncated */
	int rc = ps_store_list_packs(s, &ids, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (ps_idset_add(&present, ids[i]) < 0)
			rc = ps_err(err, PS_ERROR, "out of memory");
	need = ps_calloc(s->npacks + 1, sizeof(*need));
	if (!need || rc) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < s->idx_n; i++) {
		const struct ps_idx_ent *e = &s->idx[i];
		uint64_t end = (uint64_t)e->off + PS_IDX_LEN(e) + PS_PACK_FOOTER_LEN;
		if (end > need[e->pack])
			need[e->pack] = end;
	}
	gone = ps_calloc(s->npacks + 1, 1);
	if (!gone) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t p = 0; p < s->npacks; p++) {
		char path[PATH_MAX];
		struct ps_bstat st;
		ps_idset_add(&indexed, s->packs[p]);
		ps_pack_path(s->packs[p], path, sizeof(path));
		if (!ps_idset_get(&present, s->packs[p])) {
			/* a pack gc condemned may be retired at any time: only what
			 * has no other copy matters (the snapshots using it report it) */
			if (ps_store_pack_condemned(s, (uint32_t)p)) {
				if (c->o->problem)
					c->o->problem(c->o->cb_ctx, path, "note: pack was retired by gc");
			} else {
				problem(c, path, "pack is missing");
			}
			gone[p] = 1;
		} else if (s->be->ops->stat(s->be, path, &st, NULL) || st.size < need[p]) {
			problem(c, path, "pack is truncated");
			gone[p] = 1;
		}
	}
	for (size_t i = 0; i < s->idx_n; i++) {
		uint8_t k[32];
		size_t j = i;
		int copy = 0;
		if (!gone[s->idx[i].pack])
			continue;
		/* entries of one id are adjacent: is there a copy in a pack that is there? */
		while (j > 0 && !memcmp(s->idx[j - 1].id, s->idx[i].id, 24))
			j--;
		for (; j < s->idx_n && !memcmp(s->idx[j].id, s->idx[i].id, 24) && !copy; j++)
			copy = !gone[s->idx[j].pack];
		if (copy && ps_store_pack_condemned(s, s->idx[i].pack))
			continue;
		memcpy(k, s->idx[i].id, 24);
		memset(k + 24, 0, 8);
		if (ps_idset_add(&c->damaged, k) == 1)
			c->r->damaged_objects++;
	}
	c->r->packs = n;
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		ps_pack_path(ids[i], path, sizeof(path));
		if (!ps_idset_get(&indexed, ids[i])) {
			c->r->leftovers++;
			if (c->o->problem)
				c->o->problem(c->o->cb_ctx, path,
					      "note: pack is not indexed (left by an interrupted save; the next save indexes it, gc removes it)");
			continue;
		}
		if (c->o->read_data && !c->o->projects) {
			struct bad_rec_ctx b = { c, path };
			uint64_t nobj = 0;
			struct ps_error e2;
			int vr = ps_pack_verify(s, ids[i], bad_record, &b, &nobj, &e2);
			c->r->objects += nobj;
			if (vr == PS_ECORRUPT || vr == PS_ENOTFOUND) {
				problem(c, path, "%s", e2.msg);
				/* a pack whose trailer is unreadable: everything the index places in it */
				if (!nobj)
					for (size_t k = 0; k < s->idx_n; k++)
						if (!memcmp(s->packs[s->idx[k].pack], ids[i], 32)) {
							uint8_t kk[32];
							memcpy(kk, s->idx[k].id, 24);
							memset(kk + 24, 0, 8);
							if (ps_idset_add(&c->damaged, kk) == 1)
								c->r->damaged_objects++;
						}
			} else if (vr) {
				rc = vr;
				*err = e2;
				goto done;
			}
			if (c->o->progress)
				c->o->progress(c->o->cb_ctx, "check", i + 1, n, 0, 0);
		}
	}
	if (!c->o->read_data || c->o->projects)
		c->r->objects = s->idx_n;
done:
	ps_free(need);
	ps_free(gone);
	ps_free(ids);
	ps_idset_release(&present);
	ps_idset_release(&indexed);
	return rc;
}

/* ------------------------------------------------------------ trees */

static void file_damaged(struct check_ctx *c, const char *path, const char *what)
{
	c->r->damaged_files++;
	c->snap_bad = 1;
	problem(c, path, "snapshot %s: %s", c->snap, what);
}

/* Returns 1 if the tree (or anything below) is damaged. Paths are built on
 * the heap: a snapshot may be thousands of directories deep. */
static int walk_tree(struct check_ctx *c, const uint8_t id[32], const char *prefix, int depth)
{
	struct ps_tree t;
	struct ps_error e;
	uint8_t *flag;
	int bad = 0, rc;
	size_t pl = strlen(prefix);
	char *path = NULL;

	flag = ps_idset_get(&c->trees, id);
	if (flag) {
		if (*flag & TREE_BAD) {
			c->snap_bad = 1;
			problem(c, prefix[0] ? prefix : "/",
				"snapshot %s: contains a damaged directory (reported above)", c->snap);
		}
		return (*flag & TREE_BAD) != 0;
	}
	rc = ps_tree_load(c->s, id, &t, &e);
	if (rc) {
		char what[1200];
		if (rc == PS_ERROR) {
			problem(c, prefix, "cannot read tree: %s", e.msg);
			return 1;
		}
		snprintf(what, sizeof(what), "directory cannot be read: %s", e.msg);
		file_damaged(c, prefix[0] ? prefix : "/", what);
		tell_damaged(c, id);
		if (ps_idset_add(&c->trees, id) >= 0)
			*ps_idset_get(&c->trees, id) |= TREE_BAD;
		return 1;
	}
	c->r->trees++;
	for (size_t i = 0; i < t.n; i++) {
		const struct ps_tentry *en = &t.ents[i];
		char *np = ps_realloc(path, pl + en->name_len + 2);
		if (!np) {
			problem(c, prefix, "out of memory");
			bad = 1;
			break;
		}
		path = np;
		memcpy(path, prefix, pl);
		path[pl] = '/';
		memcpy(path + (pl ? pl + 1 : 0), en->name, en->name_len);
		path[(pl ? pl + 1 : 0) + en->name_len] = 0;
		if (en->type == PS_T_DIR) {
			if (depth >= PS_MAX_DEPTH) {
				file_damaged(c, path, "directory nesting too deep");
				bad = 1;
				continue;
			}
			bad |= walk_tree(c, en->subtree, path, depth + 1);
		} else if (en->type == PS_T_REG) {
			int reported = 0;
			for (size_t k = 0; k < en->nextents; k++) {
				const uint8_t *cid = en->extents[k].id;
				char hex[65];
				/* a file is reported once; the ids of its other damaged
				 * chunks are still told (repair fetches them all) */
				if (reported) {
					if (!ps_store_locate(c->s, cid, NULL) || is_damaged(c, cid))
						tell_damaged(c, cid);
					continue;
				}
				/* the reader's view: an object in a pack gc has condemned
				 * is there until gc retires it (ps_store_has leaves it out) */
				if (!ps_store_locate(c->s, cid, NULL)) {
					char what[128];
					ps_hex_encode(cid, 32, hex);
					snprintf(what, sizeof(what), "chunk %s is missing", hex);
					file_damaged(c, path, what);
					tell_damaged(c, cid);
					bad = 1;
					reported = 1;
					continue;
				}
				if (c->o->read_data && c->o->projects && ps_idset_add(&c->verified, cid) == 1) {
					/* project-scoped --read-data: read what this project uses */
					uint8_t *data = NULL;
					size_t dlen;
					struct ps_error ge;
					if (ps_store_get(c->s, cid, PS_OBJ_CHUNK, &data, &dlen, &ge) == PS_ECORRUPT)
						mark_damaged(c, cid);
					ps_free(data);
				}
				if (is_damaged(c, cid)) {
					tell_damaged(c, cid);
					ps_hex_encode(cid, 32, hex);
					c->r->damaged_files++;
					c->snap_bad = 1;
					problem(c, path, "snapshot %s: file uses damaged object %s", c->snap, hex);
					bad = 1;
					reported = 1;
				}
			}
		}
	}
	ps_free(path);
	ps_tree_release(&t);
	if (ps_idset_add(&c->trees, id) >= 0)
		*ps_idset_get(&c->trees, id) |= bad ? TREE_BAD : TREE_OK;
	return bad;
}

struct walk_arg {
	struct check_ctx *c;
	uint8_t root[32];
};

static void walk_thunk(void *v)
{
	struct walk_arg *a = v;
	walk_tree(a->c, a->root, "", 0);
}

static void bad_ref(void *vctx, const char *path, const char *msg)
{
	struct check_ctx *c = vctx;
	c->r->damaged_snapshots++;
	problem(c, path, "snapshot ref is damaged: %s", msg);
}

static int check_project(struct check_ctx *c, const char *project, struct ps_error *err)
{
	struct ps_snapshot_info *v = NULL;
	size_t n = 0;
	int rc = ps_snapshot_list_ex(c->s, project, &v, &n, bad_ref, c, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		char label[160];
		struct walk_arg wa;
		struct ps_snapshot_info own;
		struct ps_error re;
		snprintf(label, sizeof(label), "%s@%s", project, v[i].name);
		/* the list is a cache: verify every ref file itself */
		if (ps_ref_read(c->s, project, v[i].name, &own, &re)) {
			c->r->damaged_snapshots++;
			problem(c, label, "snapshot ref is damaged: %s", re.msg);
		}
		c->snap = label;
		c->snap_bad = 0;
		wa.c = c;
		memcpy(wa.root, v[i].root, 32);
		ps_run_big_stack(walk_thunk, &wa, (size_t)256 << 20);
		c->r->snapshots++;
		if (c->snap_bad)
			c->r->damaged_snapshots++;
	}
	ps_free(v);
	return PS_OK;
}

int ps_check(struct ps_store *s, const struct ps_check_opts *opts, struct ps_check_result *r,
	     struct ps_error *err)
{
	struct check_ctx c;
	struct ps_check_opts defo = PS_CHECK_OPTS_INIT;
	char **projects = NULL;
	size_t np = 0;
	int rc;
	if (!opts)
		opts = &defo;
	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.o = opts;
	c.r = r;
	for (const char *const *p = opts->projects; p && *p; p++)
		if (!ps_project_id_valid(*p))
			return ps_err(err, PS_EINVAL, "invalid project id '%s'", *p);
	rc = ps_store_load_index(s, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < s->nbad_segments; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "index/%s", s->bad_segments[i]);
		problem(&c, path, "index segment is damaged and was skipped (objects it lists look missing)");
	}
	rc = check_packs(&c, err);
	if (rc)
		goto done;
	if (opts->projects) {
		for (const char *const *p = opts->projects; *p && !rc; p++)
			rc = check_project(&c, *p, err);
	} else {
		rc = ps_project_list(s, &projects, &np, err);
		for (size_t i = 0; i < np && !rc; i++)
			rc = check_project(&c, projects[i], err);
	}
done:
	ps_strv_free(projects, np);
	ps_idset_release(&c.damaged);
	ps_idset_release(&c.trees);
	ps_idset_release(&c.verified);
	return rc;
}

/* ------------------------------------------------------------ stats */

struct stat_walk {
	struct ps_store *s;
	struct ps_idset seen;     /* objects counted */
	uint64_t raw, stored, chunks; /* chunks */
	int count_trees;
	uint64_t trees;           /* trees, as stored (count_trees) */
};

static int stat_tree(struct stat_walk *w, const uint8_t id[32], int depth, struct ps_error *err)
{
	struct ps_tree t;
	struct ps_obj_info info;
	int r = ps_idset_add(&w->seen, id), rc;
	if (r < 0)
		return ps_err(err, PS_ERROR, "out of memory");
	if (r == 0)
		return PS_OK;   /* a subtree already counted */
	if (depth > PS_MAX_DEPTH)
		return ps_err(err, PS_ECORRUPT, "directory nesting deeper than %d", PS_MAX_DEPTH);
	if (w->count_trees && ps_store_locate(w->s, id, &info))
		w->trees += info.stored_len;
	rc = ps_tree_load(w->s, id, &t, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < t.n && !rc; i++) {
		const struct ps_tentry *e = &t.ents[i];
		if (e->type == PS_T_DIR) {
			rc = stat_tree(w, e->subtree, depth + 1, err);
		} else if (e->type == PS_T_REG) {
			for (size_t k = 0; k < e->nextents; k++) {
				int a = ps_idset_add(&w->seen, e->extents[k].id);
				if (a < 0) {
					rc = ps_err(err, PS_ERROR, "out of memory");
					break;
				}
				if (a == 1 && ps_store_locate(w->s, e->extents[k].id, &info)) {
					w->raw += info.raw_len;
					w->stored += info.stored_len;
					w->chunks++;
				}
			}
		}
	}
	ps_tree_release(&t);
	return rc;
}

static int project_stats(struct ps_store *s, const char *project, struct ps_stats *out,
			 struct stat_walk *global, struct ps_error *err)
{
	struct ps_snapshot_info *v = NULL;
	size_t n = 0;
	struct stat_walk all = { s, { 0 }, 0, 0, 0, 1, 0 };
	uint64_t quota = 0;
	int rc = ps_snapshot_list(s, project, &v, &n, err);
	if (rc)
		return rc;
	rc = ps_quota_get(s, project, &quota, err);
	if (rc)
		goto done;
	out->snapshots += n;
	out->quota_bytes = quota;
	if (n) {
		const struct ps_snapshot_info *l = &v[n - 1];
		out->files += l->files;
		out->logical_bytes += l->logical_bytes;
		/* One walk: the latest snapshot first, whose chunk figures are
		 * those of the walk so far, then the older ones (their objects
		 * not yet seen); trees count only towards stored_bytes. */
		rc = stat_tree(&all, l->root, 0, err);
		out->unique_raw_bytes += all.raw;
		out->unique_stored_bytes += all.stored;
		out->chunks += all.chunks;
		if (!rc && global)
			rc = stat_tree(global, l->root, 0, err);
		for (size_t i = 0; i + 1 < n && !rc && !global; i++)
			rc = stat_tree(&all, v[i].root, 0, err);
		out->stored_bytes += all.stored + all.trees;
		out->over_quota = quota && l->logical_bytes > quota;
	}
done:
	ps_idset_release(&all.seen);
	ps_free(v);
	return rc;
}

int ps_stats(struct ps_store *s, const char *project, struct ps_stats *out, struct ps_error *err)
{
	int rc;
	memset(out, 0, sizeof(*out));
	rc = ps_store_load_index(s, err);
	if (rc)
		return rc;
	if (project) {
		if (!ps_project_id_valid(project))
			return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
		rc = project_stats(s, project, out, NULL, err);
		if (!rc && !out->snapshots && !out->quota_bytes)
			rc = ps_err(err, PS_ENOTFOUND, "project '%s' does not exist", project);
	} else {
		char **projects = NULL;
		size_t np = 0;
		struct stat_walk global = { s, { 0 }, 0, 0, 0, 0, 0 };
		uint8_t (*ids)[32] = NULL;
		size_t nids = 0;
		rc = ps_project_list(s, &projects, &np, err);
		for (size_t i = 0; i < np && !rc; i++) {
			struct ps_stats ps;
			memset(&ps, 0, sizeof(ps));
			rc = project_stats(s, projects[i], &ps, &global, err);
			if (!rc && ps.snapshots) {
				out->projects++;
				out->snapshots += ps.snapshots;
				out->files += ps.files;
				out->logical_bytes += ps.logical_bytes;
			}
		}
		ps_strv_free(projects, np);
		out->unique_raw_bytes = global.raw;
		out->unique_stored_bytes = global.stored;
		out->chunks = global.chunks;
		ps_idset_release(&global.seen);
		/* everything the store holds: objects in the index, and pack files */
		for (size_t i = 0; i < s->idx_n; i++)
			if (!i || memcmp(s->idx[i].id, s->idx[i - 1].id, 24))
				out->stored_bytes += PS_IDX_LEN(&s->idx[i]);
		if (!rc && !ps_store_list_packs(s, &ids, &nids, NULL)) {
			for (size_t i = 0; i < nids; i++) {
				char path[PATH_MAX];
				struct ps_bstat st;
				ps_pack_path(ids[i], path, sizeof(path));
				if (!s->be->ops->stat(s->be, path, &st, NULL))
					out->pack_bytes += st.size;
			}
			ps_free(ids);
		}
	}
	if (rc)
		return rc;
	out->compressratio = out->unique_stored_bytes
				     ? (double)out->unique_raw_bytes / (double)out->unique_stored_bytes
				     : 1.0;
	out->dedupratio = out->unique_raw_bytes ? (double)out->logical_bytes / (double)out->unique_raw_bytes
						: 1.0;
	return PS_OK;
}
