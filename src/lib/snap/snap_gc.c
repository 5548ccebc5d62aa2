/*
 * snap_gc.c - garbage collection: free the packs no snapshot needs.
 *
 * Marking.  The snapshot refs of every project are listed first, then the
 * index is loaded (a save publishes its index segment before its ref, so
 * whatever a listed snapshot uses is in that index).  Every snapshot is
 * walked from its root tree; every object reached is marked with one bit per
 * entry of the loaded
 * index (entries are sorted by id, so an id's entries are adjacent).  A tree
 * already marked is not walked again, so shared subtrees cost one visit.  Of
 * several copies of an object one is marked: preferably in a pack that exists
 * and no condemned list names.  Memory: the index (40 bytes per object), one
 * bit per object, a few words per pack, the trees on the current path.  A
 * reachable object that is missing, or a damaged index segment, stops gc
 * before it changes anything: it never decides on an incomplete picture.
 *
 * Two phases, so that saves may run at any time (docs/FORMAT.md, "Garbage
 * collection"):
 *
 *   phase 1 (condemn): packs with nothing reachable ("delete"), packs whose
 *     reachable bytes are below max_repack_ratio of their bytes ("repack"),
 *     and finished packs no segment names and no writer's journal claims
 *     ("unindexed") are written to gc/condemned-<T> (T = the time, published
 *     atomically).  From then on every save that loads the index leaves the
 *     objects of those packs out of dedup (store.c), so it never comes to
 *     depend on them.
 *
 *   phase 2 (delete), for a list only when T + grace has passed and no save
 *     that could have loaded the index before the list existed still runs
 *     (every lock in locks/ whose holder lives was created after T + a
 *     margin for clock skew): mark again from the refs of now (a save that
 *     started before T may have made condemned objects reachable again),
 *     copy every reachable object that has no copy outside condemned packs
 *     into new packs, publish them and one index segment naming the copies,
 *     rewrite every segment that names a pack to be deleted without those
 *     packs (the replacement is published before the old segment goes),
 *     delete the packs (ps_pack_retire), and remove the list last.  A pack
 *     that became mostly reachable again is kept instead.
 *
 * Crash safety (kill -9 anywhere): nothing reachable is deleted before its
 * copy and the segment naming the copy are durable; no segment stops naming
 * a pack before its replacement segment is durable; packs are deleted only
 * after no segment names them; the list goes last, so a killed run is simply
 * done again by the next one (packs already gone are skipped; copies already
 * made are found and not made twice).  Half-finished retirements are settled
 * by ps_pack_retire_recover.  gc holds the store-wide lock PS_GC_LOCK, which
 * index compaction also takes, so nothing else rewrites segments meanwhile.
 */
#define _GNU_SOURCE
#include "snap_int.h"
#include "../hash/hash.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define NS 1000000000LL
/* a save whose lock was created before T + this may not have seen list T */
#define LOCK_MARGIN_NS (5LL * NS)
/* how long one run waits for saves that started before its condemnation */
#define WAIT_SAVES_MAX_NS (600LL * NS)
#define GC_LOCK_TTL 600.0
#define SEG_HDR 24

enum { ACT_NONE = 0, ACT_DELETE, ACT_REPACK, ACT_KEEP, ACT_GONE };

struct gc_pack {
	uint8_t id[32];
	uint64_t bytes, live_bytes;   /* record bytes (header included) */
	uint32_t objects, live;
	uint8_t present;              /* the file is in packs/ */
	uint8_t condemned;            /* a condemned list names it */
	uint8_t action;               /* phase 2 */
};

struct gc_ctx {
	struct ps_store *base;        /* the caller's handle: location, backend */
	struct ps_store *s;           /* this phase's handle, with its own index */
	const struct ps_gc_opts *o;
	struct ps_gc_result *r;
	struct ps_lock *lock;
	int64_t lock_refreshed;       /* mono ns */
	/* per phase */
	uint32_t *canon;              /* pack number -> slot in packs */
	struct gc_pack *packs;        /* sorted by id */
	size_t npacks;
	uint8_t (*unindexed)[32];     /* packs in packs/ no segment names */
	size_t nunindexed;
	uint8_t *mark;                /* one bit per entry of s->idx */
	const char *snap;             /* being walked, for messages */
	uint64_t nsnaps, snaps_done;
};

static void note(struct gc_ctx *c, const char *fmt, ...) PS_ATTR_PRINTF(2, 3);
static void note(struct gc_ctx *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	if (!c->o->note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->o->note(c->o->cb_ctx, "gc", msg);
}

static void keep_lock(struct gc_ctx *c)
{
	if (c->lock && ps_mono_ns() - c->lock_refreshed > 60 * NS) {
		c->lock_refreshed = ps_mono_ns();
		ps_lock_refresh(c->lock, NULL);
	}
}

static int id_cmp(const void *a, const void *b) { return memcmp(a, b, 32); }

static int pack_cmp(const void *a, const void *b)
{
	return memcmp(((const struct gc_pack *)a)->id, ((const struct gc_pack *)b)->id, 32);
}

static struct gc_pack *find_pack(struct gc_ctx *c, const uint8_t id[32])
{
	return ps_bsearch(id, c->packs, c->npacks, sizeof(*c->packs), pack_cmp);
}

static void phase_release(struct gc_ctx *c)
{
	ps_store_free(c->s);
	c->s = NULL;
	ps_free(c->canon);
	ps_free(c->packs);
	ps_free(c->unindexed);
	ps_free(c->mark);
	c->canon = NULL;
	c->packs = NULL;
	c->unindexed = NULL;
	c->mark = NULL;
	c->npacks = c->nunindexed = 0;
}

/* ------------------------------------------------------------ loading */

struct num_id {
	const uint8_t *id;
	uint32_t num;
};

static int num_id_cmp(const void *a, const void *b)
{
	return memcmp(((const struct num_id *)a)->id, ((const struct num_id *)b)->id, 32);
}

/* Opens a fresh handle with the index of now, and the pack table. */
static int phase_load(struct gc_ctx *c, struct ps_error *err)
{
	struct ps_store *s;
	struct num_id *ni = NULL;
	uint8_t (*files)[32] = NULL;
	size_t nfiles = 0;
	int rc = ps_store_open(&c->s, c->base->location, err);
	if (rc)
		return rc;
	s = c->s;
	ps_store_set_refresh(s, 0);
	rc = ps_store_load_index(s, err);
	if (rc)
		return rc;
	if (s->nbad_segments)
		return ps_err(err, PS_ECORRUPT,
			      "index segment 'index/%s' is damaged: gc does not run on a damaged index "
			      "(see 'projstore check'); nothing was changed", s->bad_segments[0]);
	c->canon = ps_calloc(s->npacks + 1, sizeof(*c->canon));
	c->packs = ps_calloc(s->npacks + 1, sizeof(*c->packs));
	ni = ps_calloc(s->npacks + 1, sizeof(*ni));
	c->mark = ps_calloc(s->idx_n / 8 + 1, 1);
	if (!c->canon || !c->packs || !ni || !c->mark) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t p = 0; p < s->npacks; p++) {
		ni[p].id = s->packs[p];
		ni[p].num = (uint32_t)p;
	}
	ps_qsort(ni, s->npacks, sizeof(*ni), num_id_cmp);
	for (size_t p = 0; p < s->npacks; p++) {
		if (!c->npacks || memcmp(c->packs[c->npacks - 1].id, ni[p].id, 32))
			memcpy(c->packs[c->npacks++].id, ni[p].id, 32);
		c->canon[ni[p].num] = (uint32_t)(c->npacks - 1);
		if (ps_store_pack_condemned(s, ni[p].num))
			c->packs[c->npacks - 1].condemned = 1;
	}
	rc = ps_store_list_packs(s, &files, &nfiles, err);
	if (rc)
		goto done;
	c->unindexed = ps_malloc(32 * (nfiles + 1));
	if (!c->unindexed) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nfiles; i++) {
		struct gc_pack *p = find_pack(c, files[i]);
		if (p)
			p->present = 1;
		else
			memcpy(c->unindexed[c->nunindexed++], files[i], 32);
	}
	ps_qsort(c->unindexed, c->nunindexed, 32, id_cmp);
done:
	ps_free(files);
	ps_free(ni);
	return rc;
}

/* ------------------------------------------------------------ marking */

#define MARKED(c, i) ((c)->mark[(i) >> 3] & (1u << ((i) & 7)))

/* Marks id. *already = 1 when it was marked before. PS_ENOTFOUND when the
 * index has no copy of it in a pack that exists. */
static int mark_id(struct gc_ctx *c, const uint8_t id[32], int *already)
{
	const struct ps_store *s = c->s;
	size_t lo = 0, hi = s->idx_n, best = SIZE_MAX;
	int best_score = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(s->idx[mid].id, id, 24) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*already = 0;
	for (size_t i = lo; i < s->idx_n && !memcmp(s->idx[i].id, id, 24); i++) {
		const struct gc_pack *p = &c->packs[c->canon[s->idx[i].pack]];
		int score = p->present ? (p->condemned ? 1 : 2) : 0;
		if (MARKED(c, i)) {
			*already = 1;
			return PS_OK;
		}
		if (score > best_score) {
			best_score = score;
			best = i;
		}
	}
	if (best == SIZE_MAX)
		return PS_ENOTFOUND;
	c->mark[best >> 3] |= (uint8_t)(1u << (best & 7));
	return PS_OK;
}

static int missing(struct gc_ctx *c, const uint8_t id[32], const char *what, struct ps_error *err)
{
	char hex[65];
	ps_hex_encode(id, 32, hex);
	return ps_err(err, PS_ECORRUPT,
		      "%s %s of snapshot %s is missing: gc does not run while snapshots are damaged "
		      "(see 'projstore check'); nothing was changed", what, hex, c->snap);
}

static int walk(struct gc_ctx *c, const uint8_t id[32], int depth, struct ps_error *err)
{
	struct ps_tree t;
	int already, rc = mark_id(c, id, &already);
	if (rc == PS_ENOTFOUND)
		return missing(c, id, "tree", err);
	if (already)
		return PS_OK;
	if (depth > PS_MAX_DEPTH)
		return ps_err(err, PS_ECORRUPT, "snapshot %s: directories nested too deep", c->snap);
	rc = ps_tree_load(c->s, id, &t, err);
	if (rc)
		return ps_err_prefix(err, "gc: snapshot %s", c->snap);
	for (size_t i = 0; i < t.n && !rc; i++) {
		const struct ps_tentry *e = &t.ents[i];
		if (e->type == PS_T_DIR) {
			rc = walk(c, e->subtree, depth + 1, err);
		} else if (e->type == PS_T_REG) {
			for (size_t k = 0; k < e->nextents && !rc; k++)
				if (mark_id(c, e->extents[k].id, &already) == PS_ENOTFOUND)
					rc = missing(c, e->extents[k].id, "chunk", err);
		}
	}
	ps_tree_release(&t);
	keep_lock(c);
	return rc;
}

struct gc_root {
	uint8_t root[32];
	char label[PS_SNAPNAME_MAX + 72];   /* project@name, for messages */
};

/* The root of every snapshot of every project. Read before the index is
 * loaded: a save publishes its index segment before its ref, so every
 * snapshot listed here has its objects in the index loaded after. */
static int list_roots(struct gc_ctx *c, struct gc_root **out, size_t *nout,
		      struct ps_error *err)
{
	char **projects = NULL;
	size_t np = 0, n = 0, cap = 0;
	struct gc_root *v = NULL;
	int rc = ps_project_list(c->base, &projects, &np, err);
	if (rc)
		return rc;
	c->r->projects = 0;
	for (size_t i = 0; i < np && !rc; i++) {
		struct ps_snapshot_info *si = NULL;
		size_t ns = 0;
		rc = ps_snapshot_list(c->base, projects[i], &si, &ns, err);
		if (rc) {
			ps_err_prefix(err, "gc: project '%s'", projects[i]);
			break;
		}
		if (ns)
			c->r->projects++;
		if (n + ns > cap) {
			size_t nc = (n + ns) * 2 + 16;
			struct gc_root *nv = ps_realloc(v, nc * sizeof(*v));
			if (!nv) {
				rc = ps_err(err, PS_ERROR, "out of memory");
				ps_free(si);
				break;
			}
			v = nv;
			cap = nc;
		}
		for (size_t k = 0; k < ns; k++, n++) {
			memcpy(v[n].root, si[k].root, 32);
			snprintf(v[n].label, sizeof(v[n].label), "%s@%s", projects[i], si[k].name);
		}
		ps_free(si);
	}
	ps_strv_free(projects, np);
	if (rc) {
		ps_free(v);
		return rc;
	}
	*out = v;
	*nout = n;
	return PS_OK;
}

/* Marks everything the roots reach, then counts per pack. */
static int mark_all(struct gc_ctx *c, const struct gc_root *roots, size_t nroots,
		    struct ps_error *err)
{
	struct ps_store *s = c->s;
	int rc = PS_OK;
	for (size_t k = 0; k < nroots && !rc; k++) {
		c->snap = roots[k].label;
		rc = walk(c, roots[k].root, 0, err);
		if (c->o->progress)
			c->o->progress(c->o->cb_ctx, "gc mark", k + 1, nroots, 0, 0);
	}
	c->snap = NULL;
	if (rc)
		return rc;
	c->r->snapshots = nroots;
	/* per pack: each object once per pack, live when its marked copy is there */
	c->r->objects = c->r->live_objects = c->r->stored_bytes = c->r->live_bytes = 0;
	for (size_t i = 0; i < s->idx_n;) {
		size_t j = i;
		int any = 0;
		while (j < s->idx_n && !memcmp(s->idx[j].id, s->idx[i].id, 24))
			j++;
		for (size_t k = i; k < j; k++) {
			uint32_t slot = c->canon[s->idx[k].pack];
			struct gc_pack *p = &c->packs[slot];
			int dup = 0, live = 0;
			for (size_t q = i; q < k && !dup; q++)
				dup = c->canon[s->idx[q].pack] == slot;
			if (dup)
				continue;
			for (size_t q = k; q < j; q++)
				if (c->canon[s->idx[q].pack] == slot && MARKED(c, q))
					live = 1;
			p->objects++;
			p->bytes += PS_IDX_LEN(&s->idx[k]);
			if (live) {
				p->live++;
				p->live_bytes += PS_IDX_LEN(&s->idx[k]);
				any = 1;
			}
		}
		c->r->objects++;
		if (any)
			c->r->live_objects++;
		i = j;
	}
	c->r->packs = 0;
	for (size_t p = 0; p < c->npacks; p++) {
		if (!c->packs[p].present)
			continue;
		c->r->packs++;
		c->r->stored_bytes += c->packs[p].bytes;
		c->r->live_bytes += c->packs[p].live_bytes;
	}
	return PS_OK;
}

/* ------------------------------------------------------------ journals */

struct journal_scan {
	struct ps_store *s;
	uint8_t (*ids)[32];
	size_t n, cap;
	int failed;
};

static int scan_journal(void *ctx, const char *name)
{
	struct journal_scan *j = ctx;
	size_t l = strlen(name);
	char path[PATH_MAX];
	void *buf = NULL;
	size_t len;
	if (l < 10 || strcmp(name + l - 9, ".inflight"))
		return 0;
	snprintf(path, sizeof(path), "tmp/%s", name);
	if (ps_be_read_all(j->s->be, path, 1u << 24, &buf, &len, NULL))
		return 0;   /* adopted and removed meanwhile: its packs are indexed */
	for (size_t off = 0; off + 65 <= len; off += 65) {
		if (j->n == j->cap) {
			size_t cap = j->cap ? j->cap * 2 : 64;
			void *v = ps_realloc(j->ids, cap * 32);
			if (!v) {
				j->failed = 1;
				break;
			}
			j->ids = v;
			j->cap = cap;
		}
		if (!ps_hex_decode((char *)buf + off, j->ids[j->n], 32))
			j->n++;
	}
	ps_free(buf);
	return 0;
}

/* Packs named by writers' journals (tmp/ *.inflight): finished packs of saves
 * that run (or died; the next writer indexes them), never condemned. */
static int load_journals(struct gc_ctx *c, uint8_t (**ids)[32], size_t *n, struct ps_error *err)
{
	struct journal_scan j = { c->s, NULL, 0, 0, 0 };
	int rc = c->s->be->ops->list(c->s->be, "tmp", scan_journal, &j, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		rc = PS_OK;
	}
	if (!rc && j.failed)
		rc = ps_err(err, PS_ERROR, "out of memory");
	if (rc) {
		ps_free(j.ids);
		return rc;
	}
	if (j.n)
		ps_qsort(j.ids, j.n, 32, id_cmp);
	*ids = j.ids;
	*n = j.n;
	return PS_OK;
}

/* ------------------------------------------------------------ phase 1 */

static int in_lists(const uint8_t id[32], const struct ps_condemned *l, size_t nl)
{
	for (size_t i = 0; i < nl; i++)
		for (size_t k = 0; k < l[i].npacks; k++)
			if (!memcmp(l[i].packs[k], id, 32))
				return 1;
	return 0;
}

static int condemn(struct gc_ctx *c, const struct ps_condemned *pending, size_t npending,
		   int64_t *t_out, char *name, size_t name_len, struct ps_error *err)
{
	uint8_t (*cids)[32] = NULL, (*jids)[32] = NULL;
	uint8_t *reasons = NULL;
	size_t n = 0, nj = 0, nroots = 0;
	struct gc_root *roots = NULL;
	double ratio = c->o->max_repack_ratio;
	int rc = list_roots(c, &roots, &nroots, err);
	*t_out = 0;
	if (!rc)
		rc = phase_load(c, err);
	if (!rc)
		rc = mark_all(c, roots, nroots, err);
	if (!rc)
		rc = load_journals(c, &jids, &nj, err);
	if (rc)
		goto done;
	cids = ps_malloc(32 * (c->npacks + c->nunindexed + 1));
	reasons = ps_malloc(c->npacks + c->nunindexed + 1);
	if (!cids || !reasons) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	c->r->condemned_packs = c->r->condemned_bytes = 0;
	for (size_t i = 0; i < c->npacks; i++) {
		struct gc_pack *p = &c->packs[i];
		int why = 0;
		if (!p->present || p->condemned || !p->objects)
			continue;
		if (!p->live)
			why = PS_CONDEMN_DELETE;
		else if ((double)p->live_bytes < ratio * (double)p->bytes)
			why = PS_CONDEMN_REPACK;
		if (!why)
			continue;
		memcpy(cids[n], p->id, 32);
		reasons[n++] = (uint8_t)why;
		c->r->condemned_packs++;
		c->r->condemned_bytes += p->bytes - p->live_bytes;
	}
	for (size_t i = 0; i < c->nunindexed; i++) {
		char path[PATH_MAX];
		struct ps_bstat st;
		if ((nj && ps_bsearch(c->unindexed[i], jids, nj, 32, id_cmp)) ||
		    in_lists(c->unindexed[i], pending, npending))
			continue;
		memcpy(cids[n], c->unindexed[i], 32);
		reasons[n++] = PS_CONDEMN_UNINDEXED;
		c->r->condemned_packs++;
		ps_pack_path(c->unindexed[i], path, sizeof(path));
		if (!c->s->be->ops->stat(c->s->be, path, &st, NULL))
			c->r->condemned_bytes += st.size;
	}
	if (!n || c->o->dry_run)
		goto done;
	*t_out = ps_now_ns();
	rc = ps_condemned_publish(c->s, *t_out, cids, reasons, n, name, name_len, err);
	if (rc)
		*t_out = 0;
	else
		note(c, "condemned %zu packs (gc/%s)", n, name);
done:
	ps_free(roots);
	ps_free(cids);
	ps_free(reasons);
	ps_free(jids);
	phase_release(c);
	return rc;
}

/* ------------------------------------------------------------ phase 2 */

struct lock_min {
	int64_t oldest;   /* created time of the oldest live lock, INT64_MAX if none */
};

static int lock_seen(void *ctx, const char *name, int64_t created, int stale)
{
	struct lock_min *m = ctx;
	if (stale || !strcmp(name, PS_GC_LOCK))
		return 0;
	if (created < m->oldest)
		m->oldest = created;
	return 0;
}

/* Oldest creation time of a lock whose holder lives (saves, prunes). */
static int oldest_lock(struct gc_ctx *c, int64_t *oldest, struct ps_error *err)
{
	struct lock_min m = { INT64_MAX };
	int rc = ps_lock_scan(c->base, lock_seen, &m, err);
	*oldest = m.oldest;
	return rc;
}

static int eligible(struct gc_ctx *c, const struct ps_condemned *l, int64_t now, int64_t oldest)
{
	return !l->damaged && now >= l->time_ns + (int64_t)(c->o->grace * 1e9) &&
	       oldest >= l->time_ns + LOCK_MARGIN_NS;
}

struct copy_ent {
	uint32_t slot;
	uint32_t off, len;
};

static int copy_cmp(const void *a, const void *b)
{
	const struct copy_ent *x = a, *y = b;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

struct copier {
	struct gc_ctx *c;
	struct ps_pack_writer *w;
	uint8_t (*newpacks)[32];
	size_t nnew, newcap;
	struct ps_seg_entry *ents;
	size_t nents, entcap;
	size_t first_of_pack;        /* ents index where the open pack's entries start */
};

static int copier_finish_pack(struct copier *cp, struct ps_error *err)
{
	uint8_t pid[32];
	uint64_t size;
	int rc;
	if (!cp->w)
		return PS_OK;
	size = ps_pack_writer_size(cp->w);
	rc = ps_pack_writer_finish(cp->w, pid, err);
	cp->w = NULL;
	if (rc)
		return rc;
	if (cp->nnew == cp->newcap) {
		size_t cap = cp->newcap ? cp->newcap * 2 : 16;
		void *v = ps_realloc(cp->newpacks, cap * 32);
		if (!v)
			return ps_err(err, PS_ERROR, "out of memory");
		cp->newpacks = v;
		cp->newcap = cap;
	}
	memcpy(cp->newpacks[cp->nnew], pid, 32);
	for (size_t i = cp->first_of_pack; i < cp->nents; i++)
		cp->ents[i].pack = (uint32_t)cp->nnew;
	cp->nnew++;
	cp->first_of_pack = cp->nents;
	cp->c->r->written_bytes += size;
	return PS_OK;
}

/* Copies one verified record into the open output pack. */
static int copier_add(struct copier *cp, const uint8_t *rec, uint32_t len, struct ps_error *err)
{
	uint64_t off;
	int rc;
	if (!cp->w) {
		rc = ps_pack_writer_open(cp->c->s, &cp->w, err);
		if (rc)
			return rc;
	}
	if (cp->nents == cp->entcap) {
		size_t cap = cp->entcap ? cp->entcap * 2 : 1024;
		void *v = ps_realloc(cp->ents, cap * sizeof(*cp->ents));
		if (!v)
			return ps_err(err, PS_ERROR, "out of memory");
		cp->ents = v;
		cp->entcap = cap;
	}
	rc = ps_pack_writer_add(cp->w, rec[0], rec[1], rec + 12, ps_get_le32(rec + 4),
				rec + PS_PACK_REC_HDR_LEN, len - PS_PACK_REC_HDR_LEN, &off, err);
	if (rc)
		return rc;
	memcpy(cp->ents[cp->nents].id, rec + 12, 32);
	cp->ents[cp->nents].pack = UINT32_MAX;
	cp->ents[cp->nents].off = (uint32_t)off;
	cp->ents[cp->nents].stored_len = len;
	cp->ents[cp->nents].raw_len = ps_get_le32(rec + 4);
	cp->ents[cp->nents].type = rec[0];
	cp->nents++;
	cp->c->r->copied_objects++;
	cp->c->r->copied_bytes += len;
	if (ps_pack_writer_size(cp->w) >= cp->c->s->pack_target)
		return copier_finish_pack(cp, err);
	return PS_OK;
}

/* Copies the marked objects of one pack. A record that fails verification
 * makes the pack stay (returns 1); errors of the copy itself stop gc. */
static int copy_pack(struct copier *cp, struct gc_pack *p, const struct copy_ent *e, size_t n,
		     struct ps_error *err)
{
	struct gc_ctx *c = cp->c;
	struct ps_bfile *f = NULL;
	char path[PATH_MAX];
	uint8_t *rec = NULL;
	size_t cap = 0;
	int rc;
	ps_pack_path(p->id, path, sizeof(path));
	rc = c->s->be->ops->open_read(c->s->be, path, &f, err);
	if (rc) {
		note(c, "cannot read '%s' (%s): it stays", path, err ? err->msg : "");
		return 1;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		size_t got;
		uint8_t *obj = NULL;
		size_t olen;
		int type;
		struct ps_error e2;
		if (e[i].len > cap) {
			uint8_t *nb = ps_realloc(rec, e[i].len);
			if (!nb) {
				rc = ps_err(err, PS_ERROR, "out of memory");
				break;
			}
			rec = nb;
			cap = e[i].len;
		}
		if (c->s->be->ops->pread(f, rec, e[i].len, e[i].off, &got, &e2) || got != e[i].len ||
		    ps_pack_decode_record(rec, e[i].len, NULL, &type, &obj, &olen, &e2)) {
			note(c, "'%s': a reachable object at offset %u cannot be read (%s): the pack stays; "
			     "run 'projstore check --read-data'", path, e[i].off, e2.msg);
			rc = 1;
			break;
		}
		ps_free(obj);
		rc = copier_add(cp, rec, e[i].len, err);
		keep_lock(c);
	}
	ps_free(rec);
	c->s->be->ops->close(f);
	return rc;
}

/* Rewrites one segment without the entries of packs in `gone` (sorted).
 * *changed = 0 when it names none of them. */
static int filter_segment(struct gc_ctx *c, const char *name, uint8_t (*gone)[32], size_t ngone,
			  int *changed, struct ps_error *err)
{
	struct ps_store *s = c->s;
	char path[PATH_MAX], hex[65], out[PATH_MAX];
	uint8_t *buf = NULL, sha[32];
	uint32_t *remap = NULL;
	void *vbuf = NULL;
	size_t len, np, ne, wp, w;
	int rc, any = 0;
	struct ps_bstat st;
	*changed = 0;
	snprintf(path, sizeof(path), "index/%s", name);
	rc = ps_be_read_all(s->be, path, (size_t)1 << 34, &vbuf, &len, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		return PS_OK;
	}
	if (rc)
		return rc;
	buf = vbuf;
	if (len < SEG_HDR + 32 || memcmp(buf, PS_IDX_MAGIC, 4) ||
	    ps_get_le32(buf + 4) != PS_FORMAT_VERSION)
		goto bad;
	np = ps_get_le32(buf + 8);
	ne = (size_t)ps_get_le64(buf + 16);
	if (np > len / 32 || ne > len / PS_SEG_ENT_LEN ||
	    SEG_HDR + 32 * np + PS_SEG_ENT_LEN * ne + 32 != len)
		goto bad;
	if (ps_sha256(buf, len - 32, sha) || memcmp(sha, buf + len - 32, 32))
		goto bad;
	remap = ps_malloc(sizeof(*remap) * (np + 1));
	if (!remap) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	/* pack table: drop the gone packs, renumber the rest (in place: the
	 * write position never passes the read position) */
	wp = 0;
	for (size_t i = 0; i < np; i++) {
		const uint8_t *id = buf + SEG_HDR + 32 * i;
		if (ps_bsearch(id, gone, ngone, 32, id_cmp)) {
			remap[i] = UINT32_MAX;
			any = 1;
			continue;
		}
		remap[i] = (uint32_t)wp;
		memmove(buf + SEG_HDR + 32 * wp, id, 32);
		wp++;
	}
	if (!any)
		goto done;
	w = SEG_HDR + 32 * wp;
	{
		size_t kept = 0;
		for (size_t i = 0; i < ne; i++) {
			const uint8_t *e = buf + SEG_HDR + 32 * np + PS_SEG_ENT_LEN * i;
			uint32_t pk = ps_get_le32(e + 32);
			if (pk >= np)
				goto bad;
			if (remap[pk] == UINT32_MAX)
				continue;
			memmove(buf + w, e, PS_SEG_ENT_LEN);
			ps_put_le32(buf + w + 32, remap[pk]);
			w += PS_SEG_ENT_LEN;
			kept++;
		}
		ps_put_le32(buf + 8, (uint32_t)wp);
		ps_put_le64(buf + 16, kept);
		if (kept) {
			if (ps_sha256(buf, w, buf + w)) {
				rc = ps_err(err, PS_ERROR, "sha256 failed");
				goto done;
			}
			ps_hex_encode(buf + w, 32, hex);
			w += 32;
			snprintf(out, sizeof(out), "index/%s.idx", hex);
			if (s->be->ops->stat(s->be, out, &st, NULL) != PS_OK || st.size != w)
				rc = ps_be_write_atomic(s->be, out, buf, w, err);
			if (rc)
				goto done;
			if (!strcmp(out + 6, name))
				goto done;   /* same content: nothing to remove */
		}
	}
	/* the replacement (if any) is durable: the old segment may go */
	rc = s->be->ops->unlink(s->be, path, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		rc = PS_OK;
	}
	*changed = 1;
	goto done;
bad:
	/* checked when the index was loaded: changed since, leave it for check */
	note(c, "index segment '%s' is damaged: left as it is", path);
	rc = PS_OK;
done:
	ps_free(remap);
	ps_free(vbuf);
	return rc;
}

struct seg_list {
	char **v;
	size_t n, cap;
};

static int collect_segment(void *ctx, const char *name)
{
	struct seg_list *l = ctx;
	size_t len = strlen(name);
	if (len != 68 || strcmp(name + 64, ".idx"))
		return 0;
	return ps_strv_push(&l->v, &l->n, &l->cap, name);
}

struct retire {
	uint8_t id[32];
	int64_t t;          /* condemnation time */
	uint8_t action;     /* ACT_DELETE, ACT_REPACK, ACT_GONE */
};

static int retire_cmp(const void *a, const void *b)
{
	return memcmp(((const struct retire *)a)->id, ((const struct retire *)b)->id, 32);
}

/* Phase 2 for the lists l[0..n) (all eligible). */
static int collect(struct gc_ctx *c, const struct ps_condemned *l, size_t nl, struct ps_error *err)
{
	struct retire *rt = NULL;
	size_t nrt = 0, cap = 0;
	uint8_t (*jids)[32] = NULL, (*gone)[32] = NULL;
	size_t nj = 0, ngone = 0;
	struct copy_ent *ce = NULL;
	size_t nce = 0;
	struct copier cp;
	struct seg_list segs = { 0 };
	struct gc_root *roots = NULL;
	size_t nroots = 0;
	double ratio = c->o->max_repack_ratio;
	int rc;

	memset(&cp, 0, sizeof(cp));
	cp.c = c;
	rc = list_roots(c, &roots, &nroots, err);
	if (!rc)
		rc = phase_load(c, err);
	if (!rc)
		rc = mark_all(c, roots, nroots, err);
	ps_free(roots);
	roots = NULL;
	if (!rc)
		rc = load_journals(c, &jids, &nj, err);
	if (rc)
		goto done;
	/* what becomes of each condemned pack */
	for (size_t i = 0; i < nl; i++)
		cap += l[i].npacks;
	rt = ps_calloc(cap + 1, sizeof(*rt));
	if (!rt) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nl; i++)
		for (size_t k = 0; k < l[i].npacks; k++) {
			memcpy(rt[nrt].id, l[i].packs[k], 32);
			rt[nrt++].t = l[i].time_ns;
		}
	ps_qsort(rt, nrt, sizeof(*rt), retire_cmp);
	{
		size_t w = 0;   /* one entry per pack, the earliest condemnation */
		for (size_t i = 0; i < nrt; i++) {
			if (w && !memcmp(rt[w - 1].id, rt[i].id, 32)) {
				if (rt[i].t < rt[w - 1].t)
					rt[w - 1].t = rt[i].t;
				continue;
			}
			rt[w++] = rt[i];
		}
		nrt = w;
	}
	for (size_t i = 0; i < nrt; i++) {
		struct gc_pack *p = find_pack(c, rt[i].id);
		if (!p) {
			int in_dir = ps_bsearch(rt[i].id, c->unindexed, c->nunindexed, 32, id_cmp) != NULL;
			if (!in_dir)
				rt[i].action = ACT_NONE;     /* gone already */
			else if (nj && ps_bsearch(rt[i].id, jids, nj, 32, id_cmp))
				rt[i].action = ACT_KEEP;     /* a writer claims it */
			else
				rt[i].action = ACT_DELETE;
			continue;
		}
		if (!p->present)
			p->action = ACT_GONE;                /* only the index still names it */
		else if (!p->live)
			p->action = ACT_DELETE;
		else if ((double)p->live_bytes < ratio * (double)p->bytes)
			p->action = ACT_REPACK;
		else
			p->action = ACT_KEEP;                /* reachable again: it stays */
		rt[i].action = p->action;
	}
	/* copy what is reachable and has no copy outside condemned packs */
	for (size_t i = 0; i < c->s->idx_n; i++) {
		uint32_t slot = c->canon[c->s->idx[i].pack];
		if (MARKED(c, i) && c->packs[slot].action == ACT_REPACK)
			nce++;
	}
	ce = ps_calloc(nce + 1, sizeof(*ce));
	if (!ce) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	nce = 0;
	for (size_t i = 0; i < c->s->idx_n; i++) {
		uint32_t slot = c->canon[c->s->idx[i].pack];
		if (MARKED(c, i) && c->packs[slot].action == ACT_REPACK) {
			ce[nce].slot = slot;
			ce[nce].off = c->s->idx[i].off;
			ce[nce].len = PS_IDX_LEN(&c->s->idx[i]);
			nce++;
		}
	}
	ps_qsort(ce, nce, sizeof(*ce), copy_cmp);
	for (size_t i = 0, done_packs = 0; i < nce;) {
		size_t j = i;
		struct gc_pack *p = &c->packs[ce[i].slot];
		while (j < nce && ce[j].slot == ce[i].slot)
			j++;
		rc = copy_pack(&cp, p, ce + i, j - i, err);
		if (rc == 1) {
			p->action = ACT_KEEP;
			rc = PS_OK;
		}
		if (rc)
			goto done;
		if (c->o->progress)
			c->o->progress(c->o->cb_ctx, "gc copy", ++done_packs, 0, 0, 0);
		i = j;
	}
	rc = copier_finish_pack(&cp, err);
	if (!rc && cp.nents)
		rc = ps_segment_write(c->s, cp.newpacks, cp.nnew, cp.ents, cp.nents, NULL, err);
	if (rc)
		goto done;
	/* the copies are durable and indexed: what goes */
	for (size_t i = 0; i < nrt; i++) {
		struct gc_pack *p = find_pack(c, rt[i].id);
		if (p)
			rt[i].action = p->action;
		/* a copy made by this run that happens to equal a condemned pack */
		for (size_t k = 0; k < cp.nnew; k++)
			if (!memcmp(cp.newpacks[k], rt[i].id, 32))
				rt[i].action = ACT_KEEP;
		if (rt[i].action == ACT_KEEP)
			c->r->kept_packs++;
	}
	/* the index of this phase is no longer needed: free it before the
	 * segments are read */
	ps_store_free(c->s);
	c->s = NULL;
	rc = ps_store_open(&c->s, c->base->location, err);
	if (rc)
		goto done;
	/* (a) the segments of now; (b) a condemned pack published again since the
	 * condemnation (same objects, same name) is not retired; (c) segments
	 * without the retired packs; (d) the packs */
	rc = c->s->be->ops->list(c->s->be, "index", collect_segment, &segs, err);
	if (rc > 0)
		rc = ps_err(err, PS_ERROR, "out of memory");
	if (rc)
		goto done;
	gone = ps_malloc(32 * (nrt + 1));
	if (!gone) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nrt; i++) {
		char path[PATH_MAX];
		struct ps_bstat st;
		if (rt[i].action != ACT_DELETE && rt[i].action != ACT_REPACK && rt[i].action != ACT_GONE)
			continue;
		ps_pack_path(rt[i].id, path, sizeof(path));
		if (rt[i].action != ACT_GONE && c->s->be->ops->stat(c->s->be, path, &st, NULL) == PS_OK &&
		    st.mtime_ns >= rt[i].t) {
			rt[i].action = ACT_KEEP;
			c->r->kept_packs++;
			continue;
		}
		memcpy(gone[ngone++], rt[i].id, 32);
	}
	ps_qsort(gone, ngone, 32, id_cmp);
	for (size_t i = 0; i < segs.n && ngone; i++) {
		int changed;
		rc = filter_segment(c, segs.v[i], gone, ngone, &changed, err);
		if (rc)
			goto done;
		keep_lock(c);
	}
	rc = c->s->be->ops->fsync_dir(c->s->be, "index", err);
	if (rc)
		goto done;
	for (size_t i = 0; i < nrt; i++) {
		uint64_t freed = 0;
		int kept = 0;
		if (rt[i].action != ACT_DELETE && rt[i].action != ACT_REPACK)
			continue;
		rc = ps_pack_retire(c->s, rt[i].id, rt[i].t, &freed, &kept, err);
		if (rc)
			goto done;
		c->r->freed_bytes += freed;
		if (kept)
			c->r->kept_packs++;
		else if (rt[i].action == ACT_DELETE)
			c->r->deleted_packs++;
		else
			c->r->repacked_packs++;
		keep_lock(c);
	}
	/* done: the lists go last */
	for (size_t i = 0; i < nl; i++) {
		rc = ps_condemned_remove(c->s, l[i].name, err);
		if (rc)
			goto done;
	}
	note(c, "deleted %llu packs, repacked %llu, kept %llu; %llu objects copied",
	     (unsigned long long)c->r->deleted_packs, (unsigned long long)c->r->repacked_packs,
	     (unsigned long long)c->r->kept_packs, (unsigned long long)c->r->copied_objects);
done:
	if (cp.w)
		ps_pack_writer_abort(cp.w);
	ps_free(cp.newpacks);
	ps_free(cp.ents);
	ps_strv_free(segs.v, segs.n);
	ps_free(gone);
	ps_free(rt);
	ps_free(jids);
	ps_free(ce);
	phase_release(c);
	return rc;
}

/* Runs phase 2 for every list that is eligible now. */
static int collect_eligible(struct gc_ctx *c, struct ps_error *err)
{
	struct ps_condemned *l = NULL, *el = NULL;
	size_t n = 0, ne = 0;
	int64_t oldest;
	int rc = ps_condemned_load(c->base, &l, &n, err);
	if (!rc)
		rc = oldest_lock(c, &oldest, err);
	if (rc)
		goto done;
	el = ps_calloc(n + 1, sizeof(*el));
	if (!el) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		if (eligible(c, &l[i], ps_now_ns(), oldest))
			el[ne++] = l[i];     /* shallow: l owns the arrays */
	if (ne)
		rc = collect(c, el, ne, err);
done:
	ps_free(el);
	ps_condemned_free(l, n);
	return rc;
}

static int count_pending(struct gc_ctx *c, struct ps_error *err)
{
	struct ps_condemned *l = NULL;
	size_t n = 0;
	int rc = ps_condemned_load(c->base, &l, &n, err);
	if (!rc)
		c->r->pending_lists = n;
	ps_condemned_free(l, n);
	return rc;
}

/* ------------------------------------------------------------ gc */

int ps_gc(struct ps_store *store, const struct ps_gc_opts *opts, struct ps_gc_result *r,
	  struct ps_error *err)
{
	struct ps_gc_opts defo = PS_GC_OPTS_INIT;
	struct ps_condemned *pending = NULL;
	size_t npending = 0;
	struct gc_ctx c;
	char name[64] = "";
	int64_t tc = 0;
	int rc;

	if (!opts)
		opts = &defo;
	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	c.base = store;
	c.o = opts;
	c.r = r;
	if (!(opts->max_repack_ratio >= 0 && opts->max_repack_ratio <= 1))
		return ps_err(err, PS_EINVAL, "max repack ratio must be between 0 and 1");
	if (!(opts->grace >= 0 && opts->grace < 1e9))
		return ps_err(err, PS_EINVAL, "grace must be 0 seconds or more");
	if (opts->dry_run) {
		rc = ps_condemned_load(store, &pending, &npending, err);
		if (!rc)
			rc = condemn(&c, pending, npending, &tc, name, sizeof(name), err);
		r->pending_lists = npending;
		ps_condemned_free(pending, npending);
		return rc;
	}
	/* (index compaction holds it for moments: wait a little) */
	rc = ps_lock_acquire(store, PS_GC_LOCK, 10, GC_LOCK_TTL, &c.lock, err);
	if (rc == PS_ELOCKED)
		return ps_err(err, PS_ELOCKED, "another gc is running on this store (%s)",
			      err ? err->msg : "");
	if (rc)
		return rc;
	c.lock_refreshed = ps_mono_ns();
	/* leftovers of dead processes: temp files go, finished packs are
	 * indexed; half-done retirements of a killed gc are settled */
	ps_store_clean_tmp(store, "tmp", NULL, NULL);
	ps_store_clean_tmp(store, "locks", NULL, NULL);
	ps_store_clean_tmp(store, PS_GC_DIR, NULL, NULL);
	rc = ps_pack_retire_recover(store, err);
	/* lists of earlier runs whose time has come */
	if (!rc)
		rc = collect_eligible(&c, err);
	if (!rc)
		rc = ps_condemned_load(store, &pending, &npending, err);
	if (!rc)
		rc = condemn(&c, pending, npending, &tc, name, sizeof(name), err);
	ps_condemned_free(pending, npending);
	if (rc || !tc)
		goto done;
	/* the list just written: wait out the grace period, then for the saves
	 * that started before it */
	{
		int64_t due = tc + (int64_t)(opts->grace * 1e9), start = ps_mono_ns();
		int told = 0;
		if (ps_now_ns() < due)
			note(&c, "waiting %.0f s (grace period) before deleting", opts->grace);
		while (ps_now_ns() < due) {
			int64_t left = due - ps_now_ns();
			ps_sleep_ms(left > 500000000LL ? 500 : (long)(left / 1000000) + 1);
			keep_lock(&c);
		}
		for (;;) {
			int64_t oldest;
			rc = oldest_lock(&c, &oldest, err);
			if (rc)
				goto done;
			if (oldest >= tc + LOCK_MARGIN_NS)
				break;
			if (ps_mono_ns() - start > WAIT_SAVES_MAX_NS) {
				note(&c, "saves that started before the condemnation still run: the next gc "
					 "deletes");
				goto done;
			}
			if (!told++)
				note(&c, "waiting for saves that started before the condemnation");
			ps_sleep_ms(200);
			keep_lock(&c);
		}
	}
	rc = collect_eligible(&c, err);
done:
	if (!rc)
		rc = count_pending(&c, err);
	phase_release(&c);
	ps_lock_release(c.lock);
	return rc;
}
