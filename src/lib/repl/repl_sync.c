/*
 * repl_sync.c - sync: copies the snapshots DST lacks, and the objects they
 * need that DST lacks, from SRC (any two endpoints, repl_int.h).
 *
 * Per project, under DST's project lock (and, for the whole run, DST's
 * store-wide sync lock, taken before DST's index is loaded):
 *
 *   1. both sides' snapshot lists are read; a snapshot is named the same on
 *      both sides only if it is the same snapshot (names carry 32 random
 *      bits), so "DST lacks it" is a name lookup.  Snapshots both sides have
 *      are the "common" ones; if each side also has snapshots newer than the
 *      newest common one, both sides saved since they last agreed: a
 *      conflict, reported; both sides' snapshots are kept.
 *   2. the snapshots DST lacks are walked oldest first, each against a base:
 *      a snapshot both sides have (or one copied earlier in this run), its
 *      parent if possible, else the nearest in time.  The walk goes level by
 *      level (one batched read of trees per level), pairing each directory
 *      with the base's directory of the same name.  Everything reachable
 *      from the base is on DST (the base's ref is there, and the project lock
 *      keeps prune and delete away, so gc keeps or copies it all): an
 *      entry the paired base directory has unchanged under its name needs
 *      no question, nor does a subtree or chunk id known to be in a base
 *      (a changed file's old chunks; every entry of a base directory once
 *      the new one has a name it lacks), and a directory whose tree id is
 *      such a subtree (or was completed earlier in the run) is not walked
 *      at all (visit has the details).  Other ids are asked about in
 *      batches (HAS: DST's dedup view, as for a save); what DST lacks is read
 *      from SRC as stored and put to DST, which verifies it.
 *
 *      A tree being present on DST says nothing about its subtree (gc may
 *      have deleted the chunks of an unreachable tree it kept, and a killed
 *      sync or save indexes packs holding trees whose children were never
 *      written): such a tree is not sent again, but it is walked.
 *   3. after a snapshot's objects went out, a barrier collects DST's
 *      verdicts; a snapshot that needed an object SRC could not give (damaged,
 *      missing) or DST rejected is not published, and the object is named.
 *   4. every so often and at the end of the project: flush (packs, then one
 *      index segment), then the refs of the snapshots completed so far are
 *      published, oldest first, never replacing one.  A run killed anywhere
 *      leaves DST with whole snapshots only, and the next run finds the
 *      objects already sent (the next writer indexes a killed writer's
 *      packs) and sends only the rest.
 *   5. the project's settings are merged (DST keeps what it has).
 *
 * Bytes: objects travel in their stored (compressed) form; questions cost
 * 32 bytes per id asked about, and only ids no base accounts for are asked.
 */
#define _GNU_SOURCE
#include "repl_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define F_PRESENT 2          /* DST has it (answered, or sent and accepted) */
#define F_BAD 4              /* SRC could not give it, or DST rejected it */
#define Q_BATCH 4096         /* ids per question */
#define TX_BATCH 256         /* objects per read from SRC */
#define LEVEL_CHUNK 512      /* trees loaded at a time */
#define FLUSH_BYTES (64ull << 20)
#define FLUSH_SNAPS 200
#define FLUSH_NS (30LL * 1000000000LL)

struct pend {
	uint8_t id[32];
	char *path;                   /* where it is needed (owned, may be NULL) */
};

struct pendv {
	struct pend *v;
	size_t n, cap;
};

struct item {
	uint8_t s[32], b[32];
	int has_b, depth;
	char *path;
};

struct itemv {
	struct item *v;
	size_t n, cap;
};

struct base {
	char name[PS_SNAPNAME_MAX];
	int64_t time_ns;
	uint8_t root[32];
};

struct sync_ctx {
	struct ps_ep *src, *dst;
	const struct ps_sync_opts *o;
	struct ps_sync_result *r;
	struct ps_idset st;           /* run-wide: F_PRESENT, F_BAD */
	/* the project */
	const char *project;
	struct ps_sync_project *pr;
	struct ps_idset complete;     /* trees whose whole subtree is on DST */
	struct ps_idset known;        /* chunks reachable from a base */
	struct ps_idset learned;      /* base trees whose entries are in complete/known */
	struct base *bases;
	size_t nbases;
	/* the snapshot being walked */
	const char *snap;
	int snap_failed;
	struct ps_idset asked;        /* ids queued in this snapshot */
	struct ps_idset visited;      /* its trees walked */
	uint8_t (*walked)[32];        /* its trees */
	size_t nwalked, walkcap;
	/* batches */
	struct pendv q, tx, infl;
	uint64_t flush_bytes;         /* put since the last flush */
	int64_t last_flush;
	int hard;                     /* an error that stops the run */
	struct ps_error herr;
};

/* ------------------------------------------------------------ helpers */

static void say(struct sync_ctx *c, int level, const char *fmt, ...) PS_ATTR_PRINTF(3, 4);
static void say(struct sync_ctx *c, int level, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	if (!c->o->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->o->log(c->o->cb_ctx, level, line);
}

static int hard_fail(struct sync_ctx *c, const struct ps_error *e)
{
	if (!c->hard) {
		c->hard = 1;
		c->herr = *e;
		if (!c->herr.code)
			c->herr.code = PS_ERROR;
	}
	return c->herr.code;
}

static int oom(struct sync_ctx *c)
{
	struct ps_error e;
	ps_err(&e, PS_ERROR, "out of memory");
	return hard_fail(c, &e);
}

static uint8_t flags_of(struct sync_ctx *c, const uint8_t id[32])
{
	uint8_t *f = ps_idset_get(&c->st, id);
	return f ? *f : 0;
}

static int set_flag(struct sync_ctx *c, const uint8_t id[32], uint8_t set, uint8_t clear)
{
	uint8_t *f;
	if (ps_idset_add(&c->st, id) < 0)
		return oom(c);
	f = ps_idset_get(&c->st, id);
	*f = (uint8_t)((*f | set) & ~clear);
	return 0;
}

static int pend_push(struct sync_ctx *c, struct pendv *v, const uint8_t id[32], const char *path)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		struct pend *nv = ps_realloc(v->v, cap * sizeof(*nv));
		if (!nv)
			return oom(c);
		v->v = nv;
		v->cap = cap;
	}
	memcpy(v->v[v->n].id, id, 32);
	v->v[v->n].path = path ? ps_strdup(path) : NULL;
	if (path && !v->v[v->n].path)
		return oom(c);
	v->n++;
	return 0;
}

static void pend_clear(struct pendv *v)
{
	for (size_t i = 0; i < v->n; i++)
		ps_free(v->v[i].path);
	v->n = 0;
}

static void pend_release(struct pendv *v)
{
	pend_clear(v);
	ps_free(v->v);
	v->v = NULL;
	v->cap = 0;
}

static int strv_add(char ***v, size_t *n, const char *s)
{
	char **nv = ps_realloc(*v, (*n + 1) * sizeof(char *));
	if (!nv)
		return -1;
	*v = nv;
	if (!(nv[*n] = ps_strdup(s)))
		return -1;
	(*n)++;
	return 0;
}

/* Records an object sync refused to copy, and fails the snapshot. */
static void damage(struct sync_ctx *c, const uint8_t id[32], const char *path, const char *why)
{
	struct ps_sync_result *r = c->r;
	struct ps_sync_damage *d, *nv;
	char hex[65];
	ps_hex_encode(id, 32, hex);
	c->snap_failed = 1;
	set_flag(c, id, F_BAD, F_PRESENT);
	say(c, 1, "%s@%s: object %s%s%s%s is not copied: %s", c->project, c->snap ? c->snap : "?", hex,
	    path ? " ('" : "", path ? (path[0] ? path : "/") : "", path ? "')" : "", why);
	nv = ps_realloc(r->damage, (r->ndamage + 1) * sizeof(*nv));
	if (!nv) {
		oom(c);
		return;
	}
	r->damage = nv;
	d = &nv[r->ndamage];
	memset(d, 0, sizeof(*d));
	snprintf(d->project, sizeof(d->project), "%s", c->project);
	snprintf(d->snapshot, sizeof(d->snapshot), "%s", c->snap ? c->snap : "");
	memcpy(d->object, hex, 65);
	d->path = ps_strdup(path ? path : "");
	d->message = ps_strdup(why);
	if (!d->path || !d->message) {
		ps_free(d->path);
		ps_free(d->message);
		oom(c);
		return;
	}
	r->ndamage++;
}

/* ------------------------------------------------------------ transfer */

struct tx_ctx {
	struct sync_ctx *c;
	struct pend *v;
};

static int tx_one(void *vctx, size_t i, int status, const uint8_t *rec, size_t len, const char *why)
{
	struct tx_ctx *t = vctx;
	struct sync_ctx *c = t->c;
	struct ps_error e;
	if (status != PS_OBJ_OK) {
		char msg[1200];
		snprintf(msg, sizeof(msg), "%s in the source: %s",
			 status == PS_OBJ_MISSING ? "missing" : "damaged", why ? why : "");
		damage(c, t->v[i].id, t->v[i].path, msg);
		return c->hard;
	}
	ps_error_clear(&e);
	if (c->dst->ops->put(c->dst, rec, len, &e))
		return hard_fail(c, &e);
	c->r->objects_sent++;
	c->r->bytes_sent += len;
	c->pr->objects++;
	c->pr->bytes += len;
	c->flush_bytes += len;
	if (set_flag(c, t->v[i].id, F_PRESENT, 0))
		return c->hard;
	/* kept until the barrier names the rejected ones */
	if (pend_push(c, &c->infl, t->v[i].id, t->v[i].path))
		return c->hard;
	return 0;
}

/* Sends what DST lacks (the tx list). A dry run only adds up sizes. */
static int send_tx(struct sync_ctx *c)
{
	struct ps_error e;
	int rc;
	if (!c->tx.n || c->hard)
		return c->hard;
	ps_error_clear(&e);
	if (c->o->dry_run) {
		uint32_t *lens = ps_calloc(c->tx.n, sizeof(*lens));
		uint8_t (*ids)[32] = ps_malloc(c->tx.n * 32 + 1);
		if (!lens || !ids) {
			ps_free(lens);
			ps_free(ids);
			return oom(c);
		}
		for (size_t i = 0; i < c->tx.n; i++)
			memcpy(ids[i], c->tx.v[i].id, 32);
		rc = c->src->ops->sizes(c->src, (const uint8_t (*)[32])ids, c->tx.n, lens, &e);
		for (size_t i = 0; i < c->tx.n && !rc; i++) {
			if (!lens[i]) {
				damage(c, c->tx.v[i].id, c->tx.v[i].path, "missing in the source");
				continue;
			}
			c->r->objects_sent++;
			c->r->bytes_sent += lens[i];
			c->pr->objects++;
			c->pr->bytes += lens[i];
			set_flag(c, c->tx.v[i].id, F_PRESENT, 0);
		}
		ps_free(lens);
		ps_free(ids);
	} else {
		struct tx_ctx t = { c, c->tx.v };
		uint8_t (*ids)[32] = ps_malloc(c->tx.n * 32 + 1);
		if (!ids)
			return oom(c);
		for (size_t i = 0; i < c->tx.n; i++)
			memcpy(ids[i], c->tx.v[i].id, 32);
		rc = c->src->ops->get(c->src, (const uint8_t (*)[32])ids, c->tx.n, tx_one, &t, &e);
		ps_free(ids);
		if (rc && !c->hard)
			hard_fail(c, &e);
	}
	if (rc && !c->hard)
		hard_fail(c, &e);
	pend_clear(&c->tx);
	return c->hard;
}

/* Asks DST about the queued ids; the ones it lacks go to the tx list. */
static int ask(struct sync_ctx *c)
{
	uint8_t (*ids)[32];
	uint8_t *bits;
	struct ps_error e;
	int rc;
	if (!c->q.n || c->hard)
		return c->hard;
	ids = ps_malloc(c->q.n * 32);
	bits = ps_malloc((c->q.n + 7) / 8);
	if (!ids || !bits) {
		ps_free(ids);
		ps_free(bits);
		return oom(c);
	}
	for (size_t i = 0; i < c->q.n; i++)
		memcpy(ids[i], c->q.v[i].id, 32);
	ps_error_clear(&e);
	rc = c->dst->ops->has(c->dst, (const uint8_t (*)[32])ids, c->q.n, bits, &e);
	c->r->objects_queried += c->q.n;
	for (size_t i = 0; i < c->q.n && !rc && !c->hard; i++) {
		if (bits[i / 8] & (1u << (i % 8))) {
			set_flag(c, c->q.v[i].id, F_PRESENT, 0);
			continue;
		}
		if (pend_push(c, &c->tx, c->q.v[i].id, c->q.v[i].path))
			break;
		if (c->tx.n >= TX_BATCH)
			send_tx(c);
	}
	ps_free(ids);
	ps_free(bits);
	if (rc)
		hard_fail(c, &e);
	pend_clear(&c->q);
	return c->hard;
}

/* Queues an id unless it is accounted for. */
static int want(struct sync_ctx *c, const uint8_t id[32], const char *path)
{
	uint8_t f = flags_of(c, id);
	int a;
	if (f & F_PRESENT)
		return 0;
	if (f & F_BAD) {
		char hex[65];
		ps_hex_encode(id, 32, hex);
		damage(c, id, path, "it could not be copied before (see above)");
		return c->hard;
	}
	a = ps_idset_add(&c->asked, id);
	if (a < 0)
		return oom(c);
	if (!a)
		return 0;
	if (pend_push(c, &c->q, id, path))
		return c->hard;
	if (c->q.n >= Q_BATCH)
		return ask(c);
	return 0;
}

/* Collects DST's verdicts on what was put since the last barrier. */
static int barrier(struct sync_ctx *c)
{
	uint64_t acc = 0, rej = 0;
	struct ps_ep_reject *rv = NULL;
	size_t nr = 0;
	struct ps_error e;
	if (c->o->dry_run || !c->infl.n || c->hard)
		return c->hard;
	ps_error_clear(&e);
	if (c->dst->ops->barrier(c->dst, &acc, &rej, &rv, &nr, &e))
		return hard_fail(c, &e);
	for (size_t i = 0; i < nr; i++) {
		const char *path = NULL;
		char why[400];
		for (size_t k = 0; k < c->infl.n; k++)
			if (!memcmp(c->infl.v[k].id, rv[i].id, 32)) {
				path = c->infl.v[k].path;
				break;
			}
		snprintf(why, sizeof(why), "the destination rejected it: %s", rv[i].why);
		damage(c, rv[i].id, path, why);
	}
	if (rej > nr) {
		/* more rejections than named: nothing of this batch can be trusted */
		for (size_t k = 0; k < c->infl.n; k++)
			set_flag(c, c->infl.v[k].id, 0, F_PRESENT);
		c->snap_failed = 1;
		say(c, 1, "%s@%s: the destination rejected %llu objects", c->project, c->snap,
		    (unsigned long long)rej);
	}
	ps_free(rv);
	pend_clear(&c->infl);
	return c->hard;
}

/* ------------------------------------------------------------ trees */

/* Trees are read first (records kept as they came), then decoded, half of
 * them in a second thread when there are enough to be worth it. */
#define DECODE_PAR_MIN 8

struct tload {
	struct sync_ctx *c;
	struct ps_tree *trees;        /* per requested id; .buf NULL = not loaded */
	char **why;
	uint8_t **recs;               /* the records read, until decoded */
	size_t *lens;
	size_t n;
	int oom;                      /* a decoder ran out of memory */
};

static int tree_one(void *vctx, size_t i, int status, const uint8_t *rec, size_t len, const char *why)
{
	struct tload *t = vctx;
	char msg[1200];
	if (status != PS_OBJ_OK) {
		snprintf(msg, sizeof(msg), "%s in the source: %s",
			 status == PS_OBJ_MISSING ? "missing" : "damaged", why ? why : "");
		t->why[i] = ps_strdup(msg);
		return 0;
	}
	if (!(t->recs[i] = ps_malloc(len + 1)))
		return oom(t->c);
	memcpy(t->recs[i], rec, len);
	t->lens[i] = len;
	t->c->r->trees_read++;
	return 0;
}

/* Decodes the records i = first, first + 2, ... (verified: decompressed,
 * hashed, then parsed as a tree). */
static void decode_trees(struct tload *t, size_t first)
{
	for (size_t i = first; i < t->n; i += 2) {
		uint8_t *obj = NULL;
		size_t olen = 0;
		int type = 0, rc;
		struct ps_error e;
		char msg[1200];
		if (!t->recs[i])
			continue;
		ps_error_clear(&e);
		rc = ps_pack_decode_record(t->recs[i], t->lens[i], t->recs[i] + 12, &type, &obj, &olen, &e);
		if (!rc && type != PS_OBJ_TREE)
			rc = ps_err(&e, PS_ECORRUPT, "it is not a tree");
		if (!rc) {
			rc = ps_tree_decode(obj, olen, &t->trees[i], &e);
			if (!rc)
				obj = NULL;
		}
		ps_free(obj);
		ps_free(t->recs[i]);
		t->recs[i] = NULL;
		if (rc == PS_ERROR) {
			t->oom = 1;
		} else if (rc) {
			snprintf(msg, sizeof(msg), "damaged in the source: %s", e.msg);
			if (!(t->why[i] = ps_strdup(msg)))
				t->oom = 1;
		}
	}
}

static void *decode_main(void *arg)
{
	decode_trees(arg, 1);
	return NULL;
}

static void decode_all(struct tload *t)
{
	pthread_t th;
	int par = t->n >= DECODE_PAR_MIN && pthread_create(&th, NULL, decode_main, t) == 0;
	decode_trees(t, 0);
	if (par)
		pthread_join(th, NULL);
	else
		decode_trees(t, 1);
	if (t->oom)
		oom(t->c);
}

static char *join_path(const char *dir, const uint8_t *name, size_t len)
{
	size_t dl = strlen(dir);
	char *p = ps_malloc(dl + len + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	if (dl)
		p[dl++] = '/';
	memcpy(p + dl, name, len);
	p[dl + len] = 0;
	return p;
}

static int item_push(struct sync_ctx *c, struct itemv *v, const uint8_t s[32], const uint8_t *b,
		     char *path, int depth)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct item *nv = ps_realloc(v->v, cap * sizeof(*nv));
		if (!nv) {
			ps_free(path);
			return oom(c);
		}
		v->v = nv;
		v->cap = cap;
	}
	memcpy(v->v[v->n].s, s, 32);
	v->v[v->n].has_b = b != NULL;
	if (b)
		memcpy(v->v[v->n].b, b, 32);
	v->v[v->n].path = path;
	v->v[v->n].depth = depth;
	v->n++;
	return 0;
}

/* What a base tree tells: all of it is on DST. */
static int learn_base(struct sync_ctx *c, const uint8_t id[32], const struct ps_tree *t)
{
	if (ps_idset_add(&c->complete, id) < 0 || ps_idset_add(&c->learned, id) < 0)
		return oom(c);
	for (size_t i = 0; i < t->n; i++) {
		const struct ps_tentry *e = &t->ents[i];
		if (e->type == PS_T_DIR && ps_idset_add(&c->complete, e->subtree) < 0)
			return oom(c);
		if (e->type == PS_T_REG)
			for (size_t k = 0; k < e->nextents; k++)
				if (ps_idset_add(&c->known, e->extents[k].id) < 0)
					return oom(c);
	}
	return 0;
}

static int walked_add(struct sync_ctx *c, const uint8_t id[32])
{
	if (c->nwalked == c->walkcap) {
		size_t cap = c->walkcap ? c->walkcap * 2 : 256;
		void *nv = ps_realloc(c->walked, cap * 32);
		if (!nv)
			return oom(c);
		c->walked = nv;
		c->walkcap = cap;
	}
	memcpy(c->walked[c->nwalked++], id, 32);
	return 0;
}

/* One tree of the snapshot, with its base's tree (or NULL). */
/* The base tree's entry of e's name and type, or NULL. Both trees are
 * sorted by name, so the cursor *k only moves forward. */
static const struct ps_tentry *base_entry(const struct ps_tree *bt, size_t *k,
					  const struct ps_tentry *e)
{
	while (*k < bt->n) {
		const struct ps_tentry *b = &bt->ents[*k];
		int cmp = ps_name_cmp(b->name, b->name_len, e->name, e->name_len);
		if (cmp < 0) {
			(*k)++;
			continue;
		}
		return cmp == 0 && b->type == e->type ? b : NULL;
	}
	return NULL;
}

static int same_extents(const struct ps_tentry *a, const struct ps_tentry *b)
{
	if (a->nextents != b->nextents)
		return 0;
	for (size_t i = 0; i < a->nextents; i++)
		if (memcmp(a->extents[i].id, b->extents[i].id, 32))
			return 0;
	return 1;
}

/* One tree of the snapshot, with its base's tree bt (id bid) or NULL.
 *
 * An entry that is in the base tree under its name and unchanged (the same
 * subtree, the same chunks) is on DST: nothing to ask, nothing to look up.
 * A changed file's chunks are looked for among its old version's first.
 * Only an entry under a name the base tree lacks (moved or copied
 * content, perhaps) makes the whole base tree's entries known (learn_base):
 * most changed directories differ from their base only in changed files
 * and subdirectories, and never pay for that. */
static int visit(struct sync_ctx *c, const struct item *it, const struct ps_tree *t,
		 const struct ps_tree *bt, const uint8_t *bid, struct itemv *next)
{
	size_t cur = 0;
	int learned = !bt;
	if (walked_add(c, it->s) || want(c, it->s, it->path))
		return c->hard;
	for (size_t i = 0; i < t->n && !c->hard; i++) {
		const struct ps_tentry *e = &t->ents[i];
		const struct ps_tentry *be;
		if (e->type != PS_T_DIR && (e->type != PS_T_REG || !e->nextents))
			continue;
		be = bt ? base_entry(bt, &cur, e) : NULL;
		if (!be && !learned) {
			if (learn_base(c, bid, bt))
				return c->hard;
			learned = 1;
		}
		if (e->type == PS_T_DIR) {
			char *path;
			if (be && !memcmp(be->subtree, e->subtree, 32))
				continue;
			if (ps_idset_get(&c->complete, e->subtree))
				continue;
			if (it->depth + 1 > PS_MAX_DEPTH) {
				damage(c, e->subtree, it->path, "directory nesting too deep");
				continue;
			}
			path = join_path(it->path, e->name, e->name_len);
			if (!path)
				return oom(c);
			if (item_push(c, next, e->subtree, be ? be->subtree : NULL, path, it->depth + 1))
				return c->hard;
		} else {
			char *path = NULL;
			if (be && same_extents(be, e))
				continue;
			/* a changed file: its old version's chunks are on DST */
			for (size_t k = 0; be && k < be->nextents; k++)
				if (ps_idset_add(&c->known, be->extents[k].id) < 0)
					return oom(c);
			for (size_t k = 0; k < e->nextents && !c->hard; k++) {
				const uint8_t *id = e->extents[k].id;
				if (ps_idset_get(&c->known, id) || (flags_of(c, id) & F_PRESENT))
					continue;
				if (!path && !(path = join_path(it->path, e->name, e->name_len)))
					return oom(c);
				want(c, id, path);
			}
			ps_free(path);
		}
	}
	return c->hard;
}

/* Walks one level of the snapshot's trees (in chunks); fills `next`. */
static int walk_level(struct sync_ctx *c, struct itemv *level, struct itemv *next)
{
	for (size_t base = 0; base < level->n && !c->hard; base += LEVEL_CHUNK) {
		size_t cnt = level->n - base < LEVEL_CHUNK ? level->n - base : LEVEL_CHUNK, nids = 0;
		uint8_t (*ids)[32] = ps_malloc(2 * cnt * 32);
		size_t *sidx = ps_malloc(cnt * sizeof(size_t)), *bidx = ps_malloc(cnt * sizeof(size_t));
		struct tload tl = { c, NULL, NULL, NULL, NULL, 0, 0 };
		struct ps_error e;
		if (ids && sidx && bidx) {
			tl.trees = ps_calloc(2 * cnt, sizeof(*tl.trees));
			tl.why = ps_calloc(2 * cnt, sizeof(*tl.why));
			tl.recs = ps_calloc(2 * cnt, sizeof(*tl.recs));
			tl.lens = ps_calloc(2 * cnt, sizeof(*tl.lens));
		}
		if (!ids || !sidx || !bidx || !tl.trees || !tl.why || !tl.recs || !tl.lens) {
			ps_free(ids);
			ps_free(sidx);
			ps_free(bidx);
			ps_free(tl.trees);
			ps_free(tl.why);
			ps_free(tl.recs);
			ps_free(tl.lens);
			return oom(c);
		}
		for (size_t i = 0; i < cnt; i++) {
			struct item *it = &level->v[base + i];
			sidx[i] = bidx[i] = SIZE_MAX;
			if (ps_idset_get(&c->complete, it->s))
				continue;   /* completed by an earlier item of this level */
			if (ps_idset_add(&c->visited, it->s) <= 0)
				continue;   /* the same directory twice in this snapshot */
			memcpy(ids[nids], it->s, 32);
			sidx[i] = nids++;
			/* the base's tree of this directory, unless its entries were
			 * learned already (being complete says nothing about them) */
			if (it->has_b && memcmp(it->b, it->s, 32) && !ps_idset_get(&c->learned, it->b)) {
				memcpy(ids[nids], it->b, 32);
				bidx[i] = nids++;
			}
		}
		ps_error_clear(&e);
		if (nids && c->src->ops->get(c->src, (const uint8_t (*)[32])ids, nids, tree_one, &tl, &e) &&
		    !c->hard)
			hard_fail(c, &e);
		tl.n = nids;
		if (!c->hard)
			decode_all(&tl);
		for (size_t i = 0; i < cnt && !c->hard; i++) {
			struct item *it = &level->v[base + i];
			const struct ps_tree *bt = NULL;
			if (sidx[i] == SIZE_MAX)
				continue;
			if (bidx[i] != SIZE_MAX && tl.trees[bidx[i]].buf)
				bt = &tl.trees[bidx[i]];
			if (!tl.trees[sidx[i]].buf) {
				damage(c, it->s, it->path, tl.why[sidx[i]] ? tl.why[sidx[i]] : "unreadable tree");
				continue;
			}
			visit(c, it, &tl.trees[sidx[i]], bt, it->b, next);
		}
		for (size_t i = 0; i < nids; i++) {
			ps_tree_release(&tl.trees[i]);
			ps_free(tl.why[i]);
			ps_free(tl.recs[i]);
		}
		ps_free(tl.trees);
		ps_free(tl.why);
		ps_free(tl.recs);
		ps_free(tl.lens);
		ps_free(ids);
		ps_free(sidx);
		ps_free(bidx);
	}
	/* this level's questions and transfers before the next level */
	ask(c);
	send_tx(c);
	return c->hard;
}

static void items_free(struct itemv *v)
{
	for (size_t i = 0; i < v->n; i++)
		ps_free(v->v[i].path);
	v->n = 0;
}

/* Walks snapshot si against base b (NULL = none). */
static int walk_snapshot(struct sync_ctx *c, const struct ps_snapshot_info *si, const struct base *b)
{
	struct itemv level = { 0 }, next = { 0 };
	char *root = ps_strdup("");
	c->snap = si->name;
	c->snap_failed = 0;
	c->nwalked = 0;
	ps_idset_release(&c->asked);
	ps_idset_release(&c->visited);
	if (!root)
		return oom(c);
	if (ps_idset_get(&c->complete, si->root)) {
		ps_free(root);
		return 0;   /* the same tree as a snapshot already there */
	}
	if (item_push(c, &level, si->root, b ? b->root : NULL, root, 0))
		return c->hard;
	while (level.n && !c->hard) {
		struct itemv t;
		walk_level(c, &level, &next);
		items_free(&level);
		t = level;
		level = next;
		next = t;
	}
	items_free(&level);
	items_free(&next);
	ps_free(level.v);
	ps_free(next.v);
	ask(c);
	send_tx(c);
	barrier(c);
	if (!c->snap_failed && !c->hard)
		for (size_t i = 0; i < c->nwalked; i++)
			if (ps_idset_add(&c->complete, c->walked[i]) < 0)
				return oom(c);
	return c->hard;
}

/* ------------------------------------------------------------ publishing */

/* Flushes DST, then publishes the refs of `names` (oldest first). */
static int publish(struct sync_ctx *c, char **names, size_t n)
{
	struct ps_buf *refs = NULL;
	char **why = NULL;
	struct ps_error e;
	uint64_t objs = 0, bytes = 0;
	int rc = 0;
	c->flush_bytes = 0;
	c->last_flush = ps_mono_ns();
	if (c->o->dry_run) {
		for (size_t i = 0; i < n; i++)
			if (strv_add(&c->pr->copied, &c->pr->ncopied, names[i]))
				return oom(c);
		c->r->snapshots_copied += n;
		return 0;
	}
	ps_error_clear(&e);
	if (c->dst->ops->flush(c->dst, &objs, &bytes, &e))
		return hard_fail(c, &e);
	if (!n)
		return 0;
	refs = ps_calloc(n, sizeof(*refs));
	why = ps_calloc(n, sizeof(*why));
	if (!refs || !why) {
		ps_free(refs);
		ps_free(why);
		return oom(c);
	}
	if (c->src->ops->refs(c->src, c->project, names, n, refs, why, &e)) {
		rc = hard_fail(c, &e);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		int added = 0;
		if (why[i]) {
			say(c, 1, "%s@%s: not copied: its ref cannot be read in the source: %s", c->project,
			    names[i], why[i]);
			if (strv_add(&c->pr->failed, &c->pr->nfailed, names[i]))
				rc = oom(c);
			continue;
		}
		ps_error_clear(&e);
		if (c->dst->ops->publish(c->dst, c->project, refs[i].data, refs[i].len, &added, &e)) {
			if (e.code == PS_ERROR || e.code == PS_ELOCKED) {
				rc = hard_fail(c, &e);
				break;
			}
			say(c, 1, "%s@%s: not copied: %s", c->project, names[i], e.msg);
			if (strv_add(&c->pr->failed, &c->pr->nfailed, names[i]))
				rc = oom(c);
			continue;
		}
		if (!added) {
			/* there under that name already (say, a damaged ref the listing
			 * left out): never replaced */
			say(c, 1, "%s@%s: not copied: the destination has a ref of that name already "
			    "(left as it is)", c->project, names[i]);
			if (strv_add(&c->pr->failed, &c->pr->nfailed, names[i]))
				rc = oom(c);
			continue;
		}
		if (strv_add(&c->pr->copied, &c->pr->ncopied, names[i])) {
			rc = oom(c);
			break;
		}
		c->r->snapshots_copied++;
	}
done:
	for (size_t i = 0; i < n; i++) {
		ps_buf_release(&refs[i]);
		ps_free(why[i]);
	}
	ps_free(refs);
	ps_free(why);
	return rc;
}

/* ------------------------------------------------------------ a project */

static int info_time_cmp(const void *a, const void *b)
{
	const struct ps_snapshot_info *x = a, *y = b;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

static const struct ps_snapshot_info *find_snap(const struct ps_snapshot_info *v, size_t n,
						const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return &v[i];
	return NULL;
}

static const struct base *pick_base(const struct sync_ctx *c, const struct ps_snapshot_info *si)
{
	const struct base *best = NULL, *after = NULL;
	for (size_t i = 0; i < c->nbases; i++) {
		const struct base *b = &c->bases[i];
		if (si->parent[0] && !strcmp(b->name, si->parent))
			return b;
		if (b->time_ns <= si->time_ns) {
			if (!best || b->time_ns > best->time_ns)
				best = b;
		} else if (!after || b->time_ns < after->time_ns) {
			after = b;
		}
	}
	return best ? best : after;
}

static int base_add(struct sync_ctx *c, const struct ps_snapshot_info *si)
{
	struct base *nv = ps_realloc(c->bases, (c->nbases + 1) * sizeof(*nv));
	if (!nv)
		return oom(c);
	c->bases = nv;
	snprintf(nv[c->nbases].name, sizeof(nv[c->nbases].name), "%s", si->name);
	nv[c->nbases].time_ns = si->time_ns;
	memcpy(nv[c->nbases].root, si->root, 32);
	c->nbases++;
	return 0;
}

static int add_conflict(struct sync_ctx *c, const struct ps_snapshot_info *common,
			char **src_new, size_t nsrc, char **dst_new, size_t ndst)
{
	struct ps_sync_result *r = c->r;
	struct ps_sync_conflict *nv = ps_realloc(r->conflicts, (r->nconflicts + 1) * sizeof(*nv));
	struct ps_sync_conflict *k;
	if (!nv)
		return oom(c);
	r->conflicts = nv;
	k = &nv[r->nconflicts];
	memset(k, 0, sizeof(*k));
	snprintf(k->project, sizeof(k->project), "%s", c->project);
	if (common)
		snprintf(k->base, sizeof(k->base), "%s", common->name);
	for (size_t i = 0; i < nsrc; i++)
		if (strv_add(&k->src_only, &k->nsrc_only, src_new[i]))
			return oom(c);
	for (size_t i = 0; i < ndst; i++)
		if (strv_add(&k->dst_only, &k->ndst_only, dst_new[i]))
			return oom(c);
	r->nconflicts++;
	c->pr->conflict = (int)r->nconflicts;
	say(c, 1, "%s: both stores have new snapshots since %s (source: %zu, destination: %zu): "
	    "both are kept", c->project, common ? common->name : "they last agreed", nsrc, ndst);
	return 0;
}

static int sync_project(struct sync_ctx *c, const char *project)
{
	struct ps_snapshot_info *sv = NULL, *dv = NULL, *missing = NULL;
	size_t ns = 0, nd = 0, nmissing = 0;
	char **pending = NULL, **src_new = NULL, **dst_new = NULL;
	size_t npending = 0, nsrc_new = 0, ndst_new = 0;
	const struct ps_snapshot_info *common = NULL;
	struct ps_buf settings = PS_BUF_INIT;
	struct ps_error e;
	int locked = 0, exists = 0, rc = 0;

	c->project = project;
	c->snap = NULL;
	ps_idset_release(&c->complete);
	ps_idset_release(&c->known);
	ps_idset_release(&c->learned);
	ps_free(c->bases);
	c->bases = NULL;
	c->nbases = 0;
	ps_error_clear(&e);
	if (!c->o->dry_run) {
		rc = c->dst->ops->lock(c->dst, PS_EP_LOCK_PROJECT, project, c->o->lock_timeout, &e);
		if (rc == PS_ELOCKED) {
			c->pr->status = PS_SYNC_LOCKED;
			c->pr->error = ps_strdup(e.msg);
			say(c, 1, "%s: skipped: %s", project, e.msg);
			return 0;
		}
		if (rc)
			return hard_fail(c, &e);
		locked = 1;
	}
	if (c->src->ops->snapshots(c->src, project, &sv, &ns, &e) ||
	    c->dst->ops->snapshots(c->dst, project, &dv, &nd, &e)) {
		rc = hard_fail(c, &e);
		goto done;
	}
	c->pr->src_snapshots = ns;
	c->pr->dst_snapshots = nd;
	missing = ps_calloc(ns + 1, sizeof(*missing));
	if (!missing) {
		rc = oom(c);
		goto done;
	}
	for (size_t i = 0; i < ns; i++) {
		const struct ps_snapshot_info *d = find_snap(dv, nd, sv[i].name);
		if (!d) {
			missing[nmissing++] = sv[i];
			continue;
		}
		if (memcmp(d->root, sv[i].root, 32)) {
			char msg[400];
			snprintf(msg, sizeof(msg), "snapshot %s is not the same in both stores (different "
				 "root trees): the destination's is kept", sv[i].name);
			say(c, 1, "%s: %s", project, msg);
			if (strv_add(&c->pr->failed, &c->pr->nfailed, sv[i].name)) {
				rc = oom(c);
				goto done;
			}
			continue;
		}
		if (!common || info_time_cmp(&sv[i], common) > 0)
			common = &sv[i];
		if (base_add(c, &sv[i])) {
			rc = c->hard;
			goto done;
		}
	}
	ps_qsort(missing, nmissing, sizeof(*missing), info_time_cmp);
	/* both sides saved since the newest snapshot they share */
	for (size_t i = 0; i < nmissing; i++)
		if ((!common || missing[i].time_ns > common->time_ns) &&
		    strv_add(&src_new, &nsrc_new, missing[i].name)) {
			rc = oom(c);
			goto done;
		}
	for (size_t i = 0; i < nd; i++)
		if (!find_snap(sv, ns, dv[i].name) && (!common || dv[i].time_ns > common->time_ns) &&
		    strv_add(&dst_new, &ndst_new, dv[i].name)) {
			rc = oom(c);
			goto done;
		}
	if (nsrc_new && ndst_new && add_conflict(c, common, src_new, nsrc_new, dst_new, ndst_new)) {
		rc = c->hard;
		goto done;
	}
	if (nmissing)
		say(c, 0, "%s: %zu snapshot(s) to copy (%zu in the source, %zu in the destination)",
		    project, nmissing, ns, nd);
	c->last_flush = ps_mono_ns();
	for (size_t i = 0; i < nmissing && !c->hard; i++) {
		const struct ps_snapshot_info *si = &missing[i];
		if (c->o->stop && *c->o->stop) {
			c->pr->status = PS_SYNC_STOPPED;
			break;
		}
		walk_snapshot(c, si, pick_base(c, si));
		if (c->hard)
			break;
		if (c->snap_failed) {
			if (strv_add(&c->pr->failed, &c->pr->nfailed, si->name)) {
				rc = oom(c);
				break;
			}
			continue;
		}
		if (base_add(c, si) || strv_add(&pending, &npending, si->name)) {
			rc = oom(c);
			break;
		}
		if (c->flush_bytes >= FLUSH_BYTES || npending >= FLUSH_SNAPS ||
		    ps_mono_ns() - c->last_flush >= FLUSH_NS) {
			publish(c, pending, npending);
			ps_strv_free(pending, npending);
			pending = NULL;
			npending = 0;
		}
	}
	if (!c->hard)
		publish(c, pending, npending);
	if (c->hard) {
		rc = c->herr.code;
		goto done;
	}
	/* settings: DST keeps what it has, takes what it lacks */
	if (c->src->ops->settings(c->src, project, &exists, &settings, &e)) {
		rc = hard_fail(c, &e);
		goto done;
	}
	if (exists) {
		int changed = 0;
		if (c->dst->ops->merge(c->dst, project,
				       PS_EP_MERGE_EXISTS | (c->o->dry_run ? PS_EP_MERGE_DRY : 0),
				       settings.data ? (void *)settings.data : (void *)"", settings.len,
				       &changed, &c->pr->settings_notes, &c->pr->nsettings_notes, &e)) {
			rc = hard_fail(c, &e);
			goto done;
		}
		c->pr->settings_changed = changed;
		for (size_t i = 0; i < c->pr->nsettings_notes; i++)
			say(c, 0, "%s: settings: %s", project, c->pr->settings_notes[i]);
	}
	if (!c->o->dry_run)
		c->pr->dst_snapshots = nd + c->pr->ncopied;
	if (c->pr->status == PS_SYNC_OK && c->pr->nfailed)
		c->pr->status = PS_SYNC_PARTIAL;
	if (c->pr->ncopied || nmissing)
		say(c, 0, "%s: %s %zu snapshot(s), %llu objects, %llu bytes%s", project,
		    c->o->dry_run ? "would copy" : "copied", c->pr->ncopied,
		    (unsigned long long)c->pr->objects, (unsigned long long)c->pr->bytes,
		    c->pr->nfailed ? " (some not copied: see above)" : "");
done:
	if (rc && c->pr->status == PS_SYNC_OK) {
		c->pr->status = PS_SYNC_FAILED;
		c->pr->error = ps_strdup(c->hard ? c->herr.msg : "failed");
	}
	if (locked) {
		struct ps_error e2;
		if (c->dst->ops->unlock(c->dst, PS_EP_LOCK_PROJECT, project, &e2) && !c->hard)
			hard_fail(c, &e2);
	}
	ps_buf_release(&settings);
	ps_strv_free(pending, npending);
	ps_strv_free(src_new, nsrc_new);
	ps_strv_free(dst_new, ndst_new);
	ps_free(missing);
	ps_free(sv);
	ps_free(dv);
	pend_clear(&c->q);
	pend_clear(&c->tx);
	pend_clear(&c->infl);
	return c->hard ? c->herr.code : 0;
}

/* ------------------------------------------------------------ the run */

void ps_sync_result_free(struct ps_sync_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nprojects; i++) {
		struct ps_sync_project *p = &r->projects[i];
		ps_free(p->error);
		ps_strv_free(p->copied, p->ncopied);
		ps_strv_free(p->failed, p->nfailed);
		ps_strv_free(p->settings_notes, p->nsettings_notes);
	}
	ps_free(r->projects);
	for (size_t i = 0; i < r->nconflicts; i++) {
		ps_strv_free(r->conflicts[i].src_only, r->conflicts[i].nsrc_only);
		ps_strv_free(r->conflicts[i].dst_only, r->conflicts[i].ndst_only);
	}
	ps_free(r->conflicts);
	for (size_t i = 0; i < r->ndamage; i++) {
		ps_free(r->damage[i].path);
		ps_free(r->damage[i].message);
	}
	ps_free(r->damage);
	ps_free(r);
}

/* After the run: DST's newest snapshot of each conflicting project. */
static void conflict_latest(struct sync_ctx *c)
{
	for (size_t i = 0; i < c->r->nconflicts; i++) {
		struct ps_sync_conflict *k = &c->r->conflicts[i];
		struct ps_snapshot_info *v = NULL;
		size_t n = 0;
		struct ps_error e;
		if (c->dst->ops->snapshots(c->dst, k->project, &v, &n, &e) == PS_OK && n)
			snprintf(k->latest, sizeof(k->latest), "%s", v[n - 1].name);
		ps_free(v);
	}
}

int ps_sync(const char *src, const char *dst, const struct ps_sync_opts *opts,
	    struct ps_sync_result **out, struct ps_error *err)
{
	struct ps_sync_opts defo = PS_SYNC_OPTS_INIT;
	struct ps_ep_opts eo;
	struct sync_ctx c;
	char **projects = NULL;
	size_t nprojects = 0;
	int rc = PS_OK, store_locked = 0;

	if (!opts)
		opts = &defo;
	if (out)
		*out = NULL;
	memset(&c, 0, sizeof(c));
	c.o = opts;
	c.r = ps_calloc(1, sizeof(*c.r));
	if (!c.r)
		return ps_err(err, PS_ERROR, "out of memory");
	c.r->started_ns = ps_now_ns();
	c.r->dry_run = opts->dry_run;
	for (const char *const *p = opts->projects; p && *p; p++)
		if (!ps_project_id_valid(*p)) {
			rc = ps_err(err, PS_EINVAL, "invalid project id '%s'", *p);
			goto done;
		}
	memset(&eo, 0, sizeof(eo));
	eo.io_timeout = opts->io_timeout;
	eo.ssh_command = opts->ssh_command;
	eo.remote_bin = opts->remote_bin;
	eo.log = opts->log;
	eo.cb_ctx = opts->cb_ctx;
	rc = ps_ep_open(&c.src, src, &eo, err);
	if (rc) {
		ps_err_prefix(err, "source");
		goto done;
	}
	/* the source's index loads while the destination is opened and locked */
	if (c.src->ops->warm)
		c.src->ops->warm(c.src);
	rc = ps_ep_open(&c.dst, dst, &eo, err);
	if (rc) {
		ps_err_prefix(err, "destination");
		goto done;
	}
	c.r->connect_ms = c.src->connect_ms + c.dst->connect_ms;
	memcpy(c.r->src_id, c.src->store_id, 33);
	memcpy(c.r->dst_id, c.dst->store_id, 33);
	if (!strcmp(c.src->store_id, c.dst->store_id)) {
		rc = ps_err(err, PS_EINVAL, "'%s' and '%s' are the same store (id %s)", src, dst,
			    c.src->store_id);
		goto done;
	}
	if (!opts->dry_run) {
		/* before DST's index is loaded: gc's phase 2 waits for us */
		rc = c.dst->ops->lock(c.dst, PS_EP_LOCK_STORE, NULL, opts->lock_timeout, err);
		if (rc)
			goto done;
		store_locked = 1;
	}
	if (opts->projects) {
		for (const char *const *p = opts->projects; *p; p++)
			if (strv_add(&projects, &nprojects, *p)) {
				rc = ps_err(err, PS_ERROR, "out of memory");
				goto done;
			}
	} else {
		rc = c.src->ops->projects(c.src, &projects, &nprojects, err);
		if (rc)
			goto done;
	}
	c.r->projects = ps_calloc(nprojects + 1, sizeof(*c.r->projects));
	if (!c.r->projects) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nprojects; i++) {
		if (opts->stop && *opts->stop)
			break;
		c.pr = &c.r->projects[c.r->nprojects++];
		snprintf(c.pr->project, sizeof(c.pr->project), "%s", projects[i]);
		if (sync_project(&c, projects[i]))
			break;
	}
	if (c.hard) {
		rc = c.herr.code;
		if (err)
			*err = c.herr;
		goto done;
	}
	conflict_latest(&c);
done:
	if (store_locked) {
		struct ps_error e2;
		c.dst->ops->unlock(c.dst, PS_EP_LOCK_STORE, NULL, &e2);
	}
	for (int k = 0; k < 2; k++) {
		struct ps_ep *ep = k ? c.dst : c.src;
		if (!ep)
			continue;
		ep->ops->bye(ep);
		c.r->wire_out += ep->wire_out;
		c.r->wire_in += ep->wire_in;
		c.r->ssh_out += ep->ssh_out;
		c.r->ssh_in += ep->ssh_in;
		ep->ops->close(ep);
	}
	ps_strv_free(projects, nprojects);
	ps_idset_release(&c.st);
	ps_idset_release(&c.complete);
	ps_idset_release(&c.known);
	ps_idset_release(&c.learned);
	ps_idset_release(&c.asked);
	ps_idset_release(&c.visited);
	ps_free(c.walked);
	ps_free(c.bases);
	pend_release(&c.q);
	pend_release(&c.tx);
	pend_release(&c.infl);
	c.r->finished_ns = ps_now_ns();
	if (out)
		*out = c.r;
	else
		ps_sync_result_free(c.r);
	return rc;
}
