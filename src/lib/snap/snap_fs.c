/*
 * snap_fs.c - a lazy, read-only file-system view of a project's snapshots
 * (the public ps_snapfs_* API; `projstore mount` is its FUSE front end).
 *
 * Layout: inode PS_SNAPFS_ROOT is the top directory; it holds "latest" (a
 * symlink to the newest snapshot's directory, inode LATEST_INO) and one
 * directory per listed snapshot, named by the snapshot name.
 *
 * How it works:
 *   - Inodes. Every inode other than the two fixed ones is a 64-bit hash of
 *     its identity: a snapshot directory hashes its name; an entry hashes its
 *     parent's inode and its name; an entry with a non-zero hardlink group
 *     hashes (snapshot, group) instead, so all links of a group are the same
 *     inode. Numbers are therefore stable across forget and remount. A node
 *     (struct node) is remembered only while it has references (lookup and
 *     readdir-plus take one, forget drops them); it records where its entry
 *     lives (containing tree id + index, and a directory's own tree id) and a
 *     copy of its attributes. Two identities with the same hash (never seen
 *     in practice) are told apart by probing to the next hash.
 *   - Caches. Decoded trees and decompressed chunks live in two LRU caches
 *     keyed by object id and bounded in bytes. An entry being loaded is in
 *     the cache in state LOADING, so concurrent readers of one object wait
 *     for the one load instead of repeating it; a failed load is not cached
 *     (the next access tries again). Entries in use (refs > 0) are never
 *     evicted; the bound can be exceeded by what is in use.
 *   - Reads. A file handle holds a copy of the entry's extents; read()
 *     binary-searches the first extent overlapping the range, copies from
 *     cached chunks and fills holes with zeros. Reads that follow the
 *     previous one queue the next chunks for background fetcher threads
 *     (started at the first read, so a daemon may fork after open). A chunk
 *     whose every byte has been read is dropped from the cache (the kernel
 *     has the data in its page cache), so a big sequential read recycles a
 *     few chunks' memory instead of churning through the whole cache.
 *   - Snapshots. The listing is refreshed when the top directory is looked
 *     up or read, at most every refresh_ms. Objects of a new snapshot are in
 *     an index segment the store loaded before it existed, so when new names
 *     appear a new store handle ("generation") is opened and its index loaded
 *     after the listing (a save publishes the index before the ref). Old
 *     generations are freed when their last user lets go. A failed object
 *     read is retried once with a new generation (at most one renewal every
 *     RENEW_NS), so objects moved to other packs since the index was loaded
 *     (by a prune) are found again; real damage fails twice.
 *   - Hardlink counts: the first time an entry with a link group is looked up
 *     in a snapshot, the whole snapshot is walked once to count the members
 *     of every group (st_nlink). Snapshots without hardlinks never pay this.
 *
 * What must stay true:
 *   - Nothing is read from the store that was not asked for, except: a
 *     directory's own tree when it is looked up (its st_nlink), and the
 *     read-ahead of sequential reads.
 *   - Every byte served comes from ps_store_get (verified); a damaged object
 *     fails only the operations that need it, with PS_ECORRUPT (EIO). An
 *     object missing from the index is reported as damage, not "not found".
 *   - Lock order: refresh_lock, then fs->lock or a snapshot's links_lock, then
 *     a cache lock or the fetch queue lock. No lock is held during I/O except
 *     refresh_lock and links_lock (which only serialize their own work).
 */
#define _GNU_SOURCE
#include "snap_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define DEFAULT_CACHE ((size_t)64 << 20)
#define DEFAULT_REFRESH_MS 1000
#define DEFAULT_READAHEAD 8
#define DEFAULT_FETCHERS 2
#define MAX_FETCHERS 16
#define FETCH_QUEUE 256
#define RENEW_NS ((int64_t)5 * 1000000000)
#define LATEST_INO 2
#define LATEST_NAME "latest"

/* ------------------------------------------------------------ hashing */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t hash_bytes(uint64_t seed, const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ mix64(seed);
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h ^ n);
}

/* Inode numbers below 16 are reserved (1 = root, 2 = latest). */
static uint64_t ino_fix(uint64_t h) { return h < 16 ? h + 16 : h; }
static uint64_t ino_next(uint64_t h) { return ino_fix(mix64(h + 1)); }

/* ------------------------------------------------------- object caches */

enum { CE_LOADING, CE_READY, CE_FAILED };

struct centry {
	uint8_t id[32];
	int state;
	int refs;
	size_t cost;
	struct ps_tree tree;          /* tree cache */
	uint8_t *data;                /* chunk cache */
	size_t len;
	size_t served;                /* bytes of it copied out by reads */
	struct centry *hnext;
	struct centry *prev, *next;   /* LRU list, READY entries only */
};

struct cache {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct centry **tab;
	size_t cap, n;
	struct centry lru;            /* sentinel: next = newest, prev = oldest */
	size_t bytes, max;
	int trees;                    /* 1: tree cache, 0: chunk cache */
	uint64_t hits, misses;
};

/* ------------------------------------------------------- the file system */

struct gen {
	struct ps_store *s;
	int refs;
};

struct linkmap {
	uint64_t *keys;
	uint32_t *counts;
	size_t cap, n;
};

struct snap {
	struct ps_snapshot_info info;
	uint64_t ino;
	pthread_mutex_t links_lock;
	int links_done;
	struct linkmap links;
};

enum { K_SNAP = 1, K_ENTRY = 2 };

struct node {
	uint64_t ino;
	uint64_t nlookup;
	int kind;
	struct snap *snap;
	uint64_t parent;              /* identity of an entry without a link group */
	uint32_t idx;                 /* its position in `tree` */
	uint64_t group;               /* identity of a hardlinked entry */
	uint8_t tree[32];             /* tree holding the entry */
	uint8_t sub[32];              /* directories: their own tree */
	struct ps_snapfs_attr attr;
	struct node *hnext;
};

struct ps_snapfs {
	char *location;
	char project[72];
	long uid, gid;                /* shown owner override, -1 = as saved */
	uint32_t own_uid, own_gid;    /* owner of the top directory and latest */
	int64_t refresh_ns;
	int readahead;
	int nfetchers;

	pthread_mutex_t refresh_lock; /* serializes refreshes and renewals */
	int64_t last_refresh;
	int refreshed;
	int64_t last_renew;

	pthread_mutex_t lock;         /* protects everything below */
	struct gen *gen;
	struct snap **snaps;          /* every snapshot ever seen (never freed) */
	size_t nsnaps, snaps_cap;
	struct snap **listed;         /* current listing, oldest first */
	size_t nlisted;
	struct node **ntab;
	size_t ncap, nnodes;

	struct cache trees, chunks;

	pthread_mutex_t fq_lock;      /* background fetch queue */
	pthread_cond_t fq_cond;
	uint8_t (*fq)[32];
	size_t fq_head, fq_n;
	int fq_started;               /* 0 not yet, 1 running, -1 could not start */
	int fq_stop;
	pthread_t fetchers[MAX_FETCHERS];
	int nstarted;
	uint64_t prefetched;
};

struct ps_snapfs_file {
	struct ps_snapfs *fs;
	struct ps_extent *ext;
	size_t n;
	uint64_t size;
	pthread_mutex_t lock;         /* read-ahead state */
	uint64_t last_end;
	size_t ra_next;               /* first extent not yet queued */
	char *name;                   /* for messages */
};

/* ------------------------------------------------------------ generations */

static struct gen *gen_get(struct ps_snapfs *fs)
{
	struct gen *g;
	pthread_mutex_lock(&fs->lock);
	g = fs->gen;
	g->refs++;
	pthread_mutex_unlock(&fs->lock);
	return g;
}

static void gen_put(struct ps_snapfs *fs, struct gen *g)
{
	int last;
	pthread_mutex_lock(&fs->lock);
	last = --g->refs == 0;
	pthread_mutex_unlock(&fs->lock);
	if (last) {
		ps_store_free(g->s);
		ps_free(g);
	}
}

/* Opens a store handle; its index is loaded by gen_load() (after listing). */
static int gen_open(struct ps_snapfs *fs, struct gen **out, struct ps_error *err)
{
	struct gen *g = ps_calloc(1, sizeof(*g));
	int rc;
	if (!g)
		return ps_err(err, PS_ERROR, "out of memory");
	rc = ps_store_open(&g->s, fs->location, err);
	if (rc) {
		ps_free(g);
		return rc;
	}
	g->refs = 1;
	*out = g;
	return PS_OK;
}

/* ----------------------------------------------------------------- caches */

static int cache_init(struct cache *c, size_t max, int trees)
{
	memset(c, 0, sizeof(*c));
	c->max = max;
	c->trees = trees;
	c->lru.next = c->lru.prev = &c->lru;
	c->cap = 1024;
	c->tab = ps_calloc(c->cap, sizeof(*c->tab));
	if (!c->tab)
		return -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	return 0;
}

static size_t cache_slot(const struct cache *c, const uint8_t id[32])
{
	uint64_t h;
	memcpy(&h, id, 8);
	return (size_t)(h & (c->cap - 1));
}

static struct centry *cache_find(const struct cache *c, const uint8_t id[32])
{
	for (struct centry *e = c->tab[cache_slot(c, id)]; e; e = e->hnext)
		if (!memcmp(e->id, id, 32))
			return e;
	return NULL;
}

static void cache_grow(struct cache *c)
{
	size_t ncap = c->cap * 2;
	struct centry **nt = ps_calloc(ncap, sizeof(*nt));
	if (!nt)
		return;   /* longer chains, still correct */
	for (size_t i = 0; i < c->cap; i++) {
		struct centry *e = c->tab[i], *next;
		for (; e; e = next) {
			uint64_t h;
			next = e->hnext;
			memcpy(&h, e->id, 8);
			e->hnext = nt[h & (ncap - 1)];
			nt[h & (ncap - 1)] = e;
		}
	}
	ps_free(c->tab);
	c->tab = nt;
	c->cap = ncap;
}

static void cache_insert(struct cache *c, struct centry *e)
{
	size_t s;
	if (c->n >= c->cap)
		cache_grow(c);
	s = cache_slot(c, e->id);
	e->hnext = c->tab[s];
	c->tab[s] = e;
	c->n++;
}

static void cache_unhash(struct cache *c, struct centry *e)
{
	struct centry **pp = &c->tab[cache_slot(c, e->id)];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = e->hnext;
		c->n--;
	}
}

static void lru_unlink(struct centry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct cache *c, struct centry *e)
{
	e->next = c->lru.next;
	e->prev = &c->lru;
	c->lru.next->prev = e;
	c->lru.next = e;
}

static void centry_free(struct centry *e)
{
	ps_tree_release(&e->tree);
	ps_free(e->data);
	ps_free(e);
}

/* Frees unused entries, oldest first, until the cache fits. Locked. */
static void cache_evict(struct cache *c)
{
	struct centry *e = c->lru.prev;
	while (c->bytes > c->max && e != &c->lru) {
		struct centry *prev = e->prev;
		if (!e->refs) {
			lru_unlink(e);
			cache_unhash(c, e);
			c->bytes -= e->cost;
			centry_free(e);
		}
		e = prev;
	}
}

static void cache_destroy(struct cache *c)
{
	if (!c->tab)
		return;
	for (size_t i = 0; i < c->cap; i++) {
		struct centry *e = c->tab[i], *next;
		for (; e; e = next) {
			next = e->hnext;
			centry_free(e);
		}
	}
	ps_free(c->tab);
	c->tab = NULL;
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
}

/* An object the index does not know is damage of the store, not a missing
 * path: report PS_ENOTFOUND from the store as PS_ECORRUPT. */
static int as_damage(int rc, struct ps_error *err)
{
	if (rc == PS_ENOTFOUND) {
		if (err)
			err->code = PS_ECORRUPT;
		return PS_ECORRUPT;
	}
	return rc;
}

/* After a failed read with generation `failed`: the generation to retry
 * with (referenced), or NULL. Opens a new one unless another thread did
 * already or the last renewal is less than RENEW_NS old. */
static struct gen *gen_renew(struct ps_snapfs *fs, struct gen *failed)
{
	struct gen *ng = NULL, *old;
	int64_t now = ps_mono_ns();
	pthread_mutex_lock(&fs->refresh_lock);
	pthread_mutex_lock(&fs->lock);
	if (fs->gen != failed) {
		ng = fs->gen;
		ng->refs++;
		pthread_mutex_unlock(&fs->lock);
		pthread_mutex_unlock(&fs->refresh_lock);
		return ng;
	}
	if (fs->last_renew && now - fs->last_renew < RENEW_NS) {
		pthread_mutex_unlock(&fs->lock);
		pthread_mutex_unlock(&fs->refresh_lock);
		return NULL;
	}
	fs->last_renew = now;
	pthread_mutex_unlock(&fs->lock);
	if (gen_open(fs, &ng, NULL) == PS_OK && ps_store_load_index(ng->s, NULL) != PS_OK) {
		gen_put(fs, ng);
		ng = NULL;
	}
	if (ng) {
		pthread_mutex_lock(&fs->lock);
		old = fs->gen;
		fs->gen = ng;
		ng->refs++;   /* one for fs, one for the caller */
		pthread_mutex_unlock(&fs->lock);
		gen_put(fs, old);
	}
	pthread_mutex_unlock(&fs->refresh_lock);
	return ng;
}

static int load_with(struct gen *g, struct cache *c, struct centry *e, struct ps_error *err)
{
	int rc;
	if (c->trees) {
		rc = ps_tree_load(g->s, e->id, &e->tree, err);
		if (!rc) {
			size_t next = 0;
			for (size_t i = 0; i < e->tree.n; i++)
				next += e->tree.ents[i].nextents;
			e->cost = sizeof(*e) + e->tree.len + e->tree.n * sizeof(struct ps_tentry) +
				  next * sizeof(struct ps_extent);
		}
	} else {
		rc = ps_store_get(g->s, e->id, PS_OBJ_CHUNK, &e->data, &e->len, err);
		if (!rc)
			e->cost = sizeof(*e) + e->len;
	}
	return rc;
}

static int load_object(struct ps_snapfs *fs, struct cache *c, struct centry *e,
		       struct ps_error *err)
{
	struct gen *g = gen_get(fs), *ng;
	int rc = load_with(g, c, e, err);
	if ((rc == PS_ECORRUPT || rc == PS_ENOTFOUND) && (ng = gen_renew(fs, g))) {
		struct ps_error err2;
		ps_error_clear(&err2);
		if (load_with(ng, c, e, &err2) == PS_OK) {
			rc = PS_OK;
			ps_error_clear(err);
		}
		gen_put(fs, ng);
	}
	gen_put(fs, g);
	return as_damage(rc, err);
}

/* Returns a referenced, loaded entry (load it here or wait for the thread
 * loading it). Release with cache_put(). *hit tells whether it was cached. */
static int cache_get(struct ps_snapfs *fs, struct cache *c, const uint8_t id[32],
		     struct centry **out, int *hit, struct ps_error *err)
{
	struct centry *e;
	int rc;
	pthread_mutex_lock(&c->lock);
	while ((e = cache_find(c, id))) {
		e->refs++;
		while (e->state == CE_LOADING)
			pthread_cond_wait(&c->cond, &c->lock);
		if (e->state == CE_READY) {
			lru_unlink(e);
			lru_push(c, e);
			c->hits++;
			pthread_mutex_unlock(&c->lock);
			if (hit)
				*hit = 1;
			*out = e;
			return PS_OK;
		}
		/* the load failed (and left the table): try ourselves */
		if (--e->refs == 0)
			centry_free(e);
	}
	e = ps_calloc(1, sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	memcpy(e->id, id, 32);
	e->state = CE_LOADING;
	e->refs = 1;
	cache_insert(c, e);
	c->misses++;
	pthread_mutex_unlock(&c->lock);

	rc = load_object(fs, c, e, err);

	pthread_mutex_lock(&c->lock);
	if (rc) {
		e->state = CE_FAILED;
		cache_unhash(c, e);
		pthread_cond_broadcast(&c->cond);
		if (--e->refs == 0)
			centry_free(e);
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	e->state = CE_READY;
	c->bytes += e->cost;
	lru_push(c, e);
	cache_evict(c);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (hit)
		*hit = 0;
	*out = e;
	return PS_OK;
}

/* Drops a reference. Locked. A chunk all of whose bytes have been served
 * by reads is dropped at once when no one else uses it: the kernel keeps
 * what was read in its page cache, and recycling the memory of sequentially
 * read chunks (instead of filling the whole cache with them first) spares
 * page faults that cost more than the copy. */
static void cache_release_locked(struct cache *c, struct centry *e)
{
	if (--e->refs)
		return;
	if (!c->trees && e->served && e->served >= e->len) {
		lru_unlink(e);
		cache_unhash(c, e);
		c->bytes -= e->cost;
		centry_free(e);
	} else if (c->bytes > c->max) {
		cache_evict(c);
	}
}

static void cache_put(struct cache *c, struct centry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&c->lock);
	cache_release_locked(c, e);
	pthread_mutex_unlock(&c->lock);
}

/* Releases a chunk after a read copied n bytes of it. */
static void chunk_served(struct cache *c, struct centry *e, size_t n)
{
	pthread_mutex_lock(&c->lock);
	e->served += n;
	cache_release_locked(c, e);
	pthread_mutex_unlock(&c->lock);
}

static int cache_has(struct cache *c, const uint8_t id[32])
{
	int r;
	pthread_mutex_lock(&c->lock);
	r = cache_find(c, id) != NULL;
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int tree_get(struct ps_snapfs *fs, const uint8_t id[32], struct centry **out,
		    struct ps_error *err)
{
	return cache_get(fs, &fs->trees, id, out, NULL, err);
}

/* ------------------------------------------------------ background fetch */

static const uint8_t zero_id[32];

static void *fetcher_main(void *arg)
{
	struct ps_snapfs *fs = arg;
	pthread_mutex_lock(&fs->fq_lock);
	for (;;) {
		uint8_t id[32];
		struct centry *e;
		int hit = 1;
		while (!fs->fq_n && !fs->fq_stop)
			pthread_cond_wait(&fs->fq_cond, &fs->fq_lock);
		if (fs->fq_stop)
			break;
		memcpy(id, fs->fq[fs->fq_head], 32);
		fs->fq_head = (fs->fq_head + 1) % FETCH_QUEUE;
		fs->fq_n--;
		if (!memcmp(id, zero_id, 32))
			continue;   /* cancelled: a reader fetched it itself */
		pthread_mutex_unlock(&fs->fq_lock);
		/* errors are for the reader to meet and report */
		if (cache_get(fs, &fs->chunks, id, &e, &hit, NULL) == PS_OK)
			cache_put(&fs->chunks, e);
		pthread_mutex_lock(&fs->fq_lock);
		if (!hit)
			fs->prefetched++;
	}
	pthread_mutex_unlock(&fs->fq_lock);
	return NULL;
}

/* Queues a chunk for a background fetch unless cached, loading or queued
 * already; drops it when the queue is full. Starts the fetchers the first
 * time. */
static void fetch_ahead(struct ps_snapfs *fs, const uint8_t id[32])
{
	if (cache_has(&fs->chunks, id))
		return;
	pthread_mutex_lock(&fs->fq_lock);
	if (!fs->fq_started) {
		fs->fq_started = -1;
		fs->fq = ps_calloc(FETCH_QUEUE, 32);
		for (int i = 0; fs->fq && i < fs->nfetchers; i++) {
			if (pthread_create(&fs->fetchers[i], NULL, fetcher_main, fs))
				break;
			fs->nstarted++;
		}
		if (fs->nstarted)
			fs->fq_started = 1;
	}
	if (fs->fq_started > 0 && fs->fq_n < FETCH_QUEUE) {
		int dup = 0;
		for (size_t i = 0; i < fs->fq_n && !dup; i++)
			dup = !memcmp(fs->fq[(fs->fq_head + i) % FETCH_QUEUE], id, 32);
		if (!dup) {
			memcpy(fs->fq[(fs->fq_head + fs->fq_n) % FETCH_QUEUE], id, 32);
			fs->fq_n++;
			pthread_cond_signal(&fs->fq_cond);
		}
	}
	pthread_mutex_unlock(&fs->fq_lock);
}

/* A reader had to fetch chunk id itself: a queued fetch of it would load it
 * again after the reader dropped it, for no one. */
static void fetch_cancel(struct ps_snapfs *fs, const uint8_t id[32])
{
	pthread_mutex_lock(&fs->fq_lock);
	for (size_t i = 0; i < fs->fq_n; i++) {
		uint8_t *q = fs->fq[(fs->fq_head + i) % FETCH_QUEUE];
		if (!memcmp(q, id, 32))
			memset(q, 0, 32);
	}
	pthread_mutex_unlock(&fs->fq_lock);
}

/* -------------------------------------------------------------- snapshots */

static struct snap *snap_find(struct ps_snapfs *fs, const char *name)
{
	for (size_t i = 0; i < fs->nsnaps; i++)
		if (!strcmp(fs->snaps[i]->info.name, name))
			return fs->snaps[i];
	return NULL;
}

static struct snap *listed_find(struct ps_snapfs *fs, const char *name)
{
	for (size_t i = 0; i < fs->nlisted; i++)
		if (!strcmp(fs->listed[i]->info.name, name))
			return fs->listed[i];
	return NULL;
}

static void skip_bad_ref(void *ctx, const char *path, const char *msg)
{
	PS_UNUSED(ctx);
	PS_UNUSED(path);
	PS_UNUSED(msg);   /* a damaged ref is left out; `check` reports it */
}

/* Re-lists the snapshots (unless done less than refresh_ns ago). */
static int refresh(struct ps_snapfs *fs, int force, struct ps_error *err)
{
	struct ps_snapshot_info *v = NULL;
	struct snap **listed = NULL;
	struct gen *g, *ng = NULL, *old = NULL;
	size_t n = 0, nnew = 0;
	int64_t now;
	int rc;

	pthread_mutex_lock(&fs->refresh_lock);
	now = ps_mono_ns();
	if (!force && fs->refreshed && now - fs->last_refresh < fs->refresh_ns) {
		pthread_mutex_unlock(&fs->refresh_lock);
		return PS_OK;
	}
	g = gen_get(fs);
	rc = ps_snapshot_list_ex(g->s, fs->project, &v, &n, skip_bad_ref, NULL, err);
	gen_put(fs, g);
	if (rc)
		goto done;
	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < n; i++)
		if (!snap_find(fs, v[i].name))
			nnew++;
	pthread_mutex_unlock(&fs->lock);
	if (nnew && fs->refreshed) {
		/* their objects may be in segments published after our index
		 * was loaded: a new handle, its index loaded after the listing */
		rc = gen_open(fs, &ng, err);
		if (!rc)
			rc = ps_store_load_index(ng->s, err);
		if (rc)
			goto done;
	}
	listed = ps_calloc(n + 1, sizeof(*listed));
	if (!listed) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	pthread_mutex_lock(&fs->lock);
	if (fs->nsnaps + nnew > fs->snaps_cap) {
		size_t cap = (fs->nsnaps + nnew) * 2;
		struct snap **ns = ps_realloc(fs->snaps, cap * sizeof(*ns));
		if (!ns) {
			pthread_mutex_unlock(&fs->lock);
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto done;
		}
		fs->snaps = ns;
		fs->snaps_cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		struct snap *sp = snap_find(fs, v[i].name);
		if (!sp) {
			sp = ps_calloc(1, sizeof(*sp));
			if (!sp) {
				pthread_mutex_unlock(&fs->lock);
				rc = ps_err(err, PS_ERROR, "out of memory");
				goto done;
			}
			sp->info = v[i];
			sp->ino = ino_fix(hash_bytes(0x736e6170, sp->info.name, strlen(sp->info.name)));
			pthread_mutex_init(&sp->links_lock, NULL);
			fs->snaps[fs->nsnaps++] = sp;
		}
		listed[i] = sp;
	}
	ps_free(fs->listed);
	fs->listed = listed;
	fs->nlisted = n;
	listed = NULL;
	if (ng) {
		old = fs->gen;
		fs->gen = ng;
		ng = NULL;
	}
	pthread_mutex_unlock(&fs->lock);
	if (old)
		gen_put(fs, old);
	fs->refreshed = 1;
done:
	fs->last_refresh = now;   /* a failure is retried after refresh_ns too */
	pthread_mutex_unlock(&fs->refresh_lock);
	if (ng)
		gen_put(fs, ng);
	ps_free(listed);
	ps_free(v);
	return rc;
}

/* --------------------------------------------------------- hardlink counts */

static uint32_t *linkmap_slot(struct linkmap *m, uint64_t key, int add)
{
	size_t i;
	if (add && (m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		uint64_t *nk = ps_calloc(ncap, sizeof(*nk));
		uint32_t *nc = ps_calloc(ncap, sizeof(*nc));
		if (!nk || !nc) {
			ps_free(nk);
			ps_free(nc);
			return NULL;
		}
		for (size_t k = 0; k < m->cap; k++) {
			if (!m->keys[k])
				continue;
			i = mix64(m->keys[k]) & (ncap - 1);
			while (nk[i])
				i = (i + 1) & (ncap - 1);
			nk[i] = m->keys[k];
			nc[i] = m->counts[k];
		}
		ps_free(m->keys);
		ps_free(m->counts);
		m->keys = nk;
		m->counts = nc;
		m->cap = ncap;
	}
	if (!m->cap)
		return NULL;
	i = mix64(key) & (m->cap - 1);
	while (m->keys[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	if (!m->keys[i]) {
		if (!add)
			return NULL;
		m->keys[i] = key;
		m->n++;
	}
	return &m->counts[i];
}

/* Walks the whole snapshot once, counting the members of each link group.
 * A damaged subtree is skipped (its members are not counted). */
static void count_links(struct ps_snapfs *fs, struct snap *sp)
{
	uint8_t (*stack)[32] = NULL;
	size_t n = 0, cap = 0;
	if (!(stack = ps_malloc(64 * 32)))
		return;
	cap = 64;
	memcpy(stack[n++], sp->info.root, 32);
	while (n) {
		struct centry *t;
		uint8_t id[32];
		memcpy(id, stack[--n], 32);
		if (tree_get(fs, id, &t, NULL))
			continue;
		for (size_t i = 0; i < t->tree.n; i++) {
			const struct ps_tentry *e = &t->tree.ents[i];
			if (e->type == PS_T_DIR) {
				if (n == cap) {
					void *ns = ps_realloc(stack, cap * 2 * 32);
					if (!ns)
						continue;
					stack = ns;
					cap *= 2;
				}
				memcpy(stack[n++], e->subtree, 32);
			} else if (e->link_group) {
				uint32_t *c = linkmap_slot(&sp->links, e->link_group, 1);
				if (c)
					(*c)++;
			}
		}
		cache_put(&fs->trees, t);
	}
	ps_free(stack);
}

static uint32_t link_count(struct ps_snapfs *fs, struct snap *sp, uint64_t group)
{
	uint32_t *c, r;
	pthread_mutex_lock(&sp->links_lock);
	if (!sp->links_done) {
		count_links(fs, sp);
		sp->links_done = 1;
	}
	c = linkmap_slot(&sp->links, group, 0);
	r = c && *c ? *c : 1;
	pthread_mutex_unlock(&sp->links_lock);
	return r;
}

/* ------------------------------------------------------------------ nodes */

static struct node *node_find(struct ps_snapfs *fs, uint64_t ino)
{
	if (!fs->ncap)
		return NULL;
	for (struct node *n = fs->ntab[ino & (fs->ncap - 1)]; n; n = n->hnext)
		if (n->ino == ino)
			return n;
	return NULL;
}

static int node_same(const struct node *a, const struct node *b)
{
	if (a->kind != b->kind || a->snap != b->snap)
		return 0;
	if (a->kind == K_SNAP)
		return 1;
	if (a->group || b->group)
		return a->group == b->group;
	return a->parent == b->parent && a->idx == b->idx;
}

/* The inode number identity `p` has now (its base hash, or a probe). Locked. */
static uint64_t node_ino_locked(struct ps_snapfs *fs, const struct node *p)
{
	uint64_t h = p->ino;
	struct node *n;
	while ((n = node_find(fs, h)) && !node_same(n, p))
		h = ino_next(h);
	return h;
}

static int node_table_grow(struct ps_snapfs *fs)
{
	size_t ncap = fs->ncap ? fs->ncap * 2 : 4096;
	struct node **nt = ps_calloc(ncap, sizeof(*nt));
	if (!nt)
		return fs->ncap ? 0 : -1;
	for (size_t i = 0; i < fs->ncap; i++) {
		struct node *n = fs->ntab[i], *next;
		for (; n; n = next) {
			next = n->hnext;
			n->hnext = nt[n->ino & (ncap - 1)];
			nt[n->ino & (ncap - 1)] = n;
		}
	}
	ps_free(fs->ntab);
	fs->ntab = nt;
	fs->ncap = ncap;
	return 0;
}

/* Takes one reference on the node of identity p (creating it from p, whose
 * attributes must be complete) and copies its attributes to out. */
static int node_ref(struct ps_snapfs *fs, const struct node *p, struct ps_snapfs_attr *out,
		    struct ps_error *err)
{
	struct node *n;
	uint64_t ino;
	pthread_mutex_lock(&fs->lock);
	ino = node_ino_locked(fs, p);
	n = node_find(fs, ino);
	if (!n) {
		if (fs->nnodes >= fs->ncap && node_table_grow(fs)) {
			pthread_mutex_unlock(&fs->lock);
			return ps_err(err, PS_ERROR, "out of memory");
		}
		n = ps_malloc(sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&fs->lock);
			return ps_err(err, PS_ERROR, "out of memory");
		}
		*n = *p;
		n->ino = ino;
		n->attr.ino = ino;
		n->nlookup = 0;
		n->hnext = fs->ntab[ino & (fs->ncap - 1)];
		fs->ntab[ino & (fs->ncap - 1)] = n;
		fs->nnodes++;
	}
	n->nlookup++;
	*out = n->attr;
	pthread_mutex_unlock(&fs->lock);
	return PS_OK;
}

void ps_snapfs_forget(struct ps_snapfs *fs, uint64_t ino, uint64_t count)
{
	struct node **pp, *n;
	if (!fs || ino == PS_SNAPFS_ROOT || ino == LATEST_INO)
		return;
	pthread_mutex_lock(&fs->lock);
	if (!fs->ncap) {
		pthread_mutex_unlock(&fs->lock);
		return;
	}
	pp = &fs->ntab[ino & (fs->ncap - 1)];
	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->hnext;
	n = *pp;
	if (n) {
		n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
		if (!n->nlookup) {
			*pp = n->hnext;
			fs->nnodes--;
			ps_free(n);
		}
	}
	pthread_mutex_unlock(&fs->lock);
}

/* Copies what an operation needs of a node: it may be forgotten meanwhile. */
static int node_copy(struct ps_snapfs *fs, uint64_t ino, struct node *out, struct ps_error *err)
{
	struct node *n;
	pthread_mutex_lock(&fs->lock);
	n = node_find(fs, ino);
	if (n)
		*out = *n;
	pthread_mutex_unlock(&fs->lock);
	if (!n)
		return ps_err(err, PS_ENOTFOUND, "inode %llu is not known", (unsigned long long)ino);
	return PS_OK;
}

/* ------------------------------------------------------------- attributes */

static uint32_t count_subdirs(const struct ps_tree *t)
{
	uint32_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += t->ents[i].type == PS_T_DIR;
	return n;
}

/* st_nlink of a directory: 2 + its subdirectories (1, "unknown", when its
 * tree cannot be read: listing it will fail with the reason). */
static uint32_t dir_nlink(struct ps_snapfs *fs, const uint8_t id[32])
{
	struct centry *t;
	uint32_t n;
	if (tree_get(fs, id, &t, NULL))
		return 1;
	n = 2 + count_subdirs(&t->tree);
	cache_put(&fs->trees, t);
	return n;
}

static void root_attr(struct ps_snapfs *fs, struct ps_snapfs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = PS_SNAPFS_ROOT;
	a->type = PS_T_DIR;
	a->mode = 0555;
	a->uid = fs->own_uid;
	a->gid = fs->own_gid;
	pthread_mutex_lock(&fs->lock);
	a->nlink = (uint32_t)(2 + fs->nlisted);
	if (fs->nlisted) {
		int64_t t = fs->listed[fs->nlisted - 1]->info.time_ns;
		a->mtime_sec = t / 1000000000;
		a->mtime_nsec = (uint32_t)(t % 1000000000);
	}
	pthread_mutex_unlock(&fs->lock);
}

/* Locked. Returns -1 when there is no snapshot. */
static int latest_attr_locked(struct ps_snapfs *fs, struct ps_snapfs_attr *a)
{
	const struct snap *sp;
	if (!fs->nlisted)
		return -1;
	sp = fs->listed[fs->nlisted - 1];
	memset(a, 0, sizeof(*a));
	a->ino = LATEST_INO;
	a->type = PS_T_SYMLINK;
	a->mode = 0777;
	a->uid = fs->own_uid;
	a->gid = fs->own_gid;
	a->nlink = 1;
	a->size = strlen(sp->info.name);
	a->mtime_sec = sp->info.time_ns / 1000000000;
	a->mtime_nsec = (uint32_t)(sp->info.time_ns % 1000000000);
	return 0;
}

static void snap_proto(struct ps_snapfs *fs, struct snap *sp, int full, struct node *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = K_SNAP;
	p->snap = sp;
	p->ino = sp->ino;
	memcpy(p->sub, sp->info.root, 32);
	p->attr.ino = sp->ino;
	p->attr.type = PS_T_DIR;
	p->attr.mode = sp->info.root_mode & 07777;
	p->attr.uid = fs->uid >= 0 ? (uint32_t)fs->uid : sp->info.root_uid;
	p->attr.gid = fs->gid >= 0 ? (uint32_t)fs->gid : sp->info.root_gid;
	p->attr.mtime_sec = sp->info.root_mtime_sec;
	p->attr.mtime_nsec = sp->info.root_mtime_nsec;
	p->attr.immutable = 1;
	p->attr.nlink = full ? dir_nlink(fs, sp->info.root) : 1;
}

/* The node of entry idx of tree `tree` (in directory inode `parent` of
 * snapshot sp). full: complete attributes (may load the entry's own tree and
 * count the snapshot's hardlinks); else only ino and type. */
static void entry_proto(struct ps_snapfs *fs, struct snap *sp, uint64_t parent,
			const uint8_t tree[32], const struct ps_tentry *e, size_t idx, int full,
			struct node *p)
{
	struct ps_snapfs_attr *a = &p->attr;
	memset(p, 0, sizeof(*p));
	p->kind = K_ENTRY;
	p->snap = sp;
	p->parent = parent;
	p->idx = (uint32_t)idx;
	memcpy(p->tree, tree, 32);
	if (e->type == PS_T_DIR) {
		memcpy(p->sub, e->subtree, 32);
	} else if (e->link_group) {
		p->group = e->link_group;
	}
	if (p->group)
		p->ino = ino_fix(mix64(sp->ino ^ mix64(p->group ^ 0x6c696e6bULL)));
	else
		p->ino = ino_fix(hash_bytes(parent, e->name, e->name_len));
	a->ino = p->ino;
	a->type = e->type;
	if (!full)
		return;
	a->mode = e->mode & 07777;
	a->uid = fs->uid >= 0 ? (uint32_t)fs->uid : e->uid;
	a->gid = fs->gid >= 0 ? (uint32_t)fs->gid : e->gid;
	a->mtime_sec = e->mtime_sec;
	a->mtime_nsec = e->mtime_nsec;
	a->immutable = 1;
	a->nlink = 1;
	switch (e->type) {
	case PS_T_REG: {
		uint64_t data = 0;
		a->size = e->size;
		for (size_t i = 0; i < e->nextents; i++)
			data += e->extents[i].len;
		a->blocks = (data + 511) / 512;
		break;
	}
	case PS_T_SYMLINK:
		a->size = e->target_len;
		break;
	case PS_T_CHR:
	case PS_T_BLK:
		a->rdev = e->rdev;
		break;
	case PS_T_DIR:
		a->nlink = dir_nlink(fs, e->subtree);
		break;
	default:
		break;
	}
	if (p->group)
		a->nlink = link_count(fs, sp, p->group);
}

/* ------------------------------------------------------------- the API */

int ps_snapfs_open(struct ps_snapfs **out, const char *location, const char *project,
		   const struct ps_snapfs_opts *opts, struct ps_error *err)
{
	struct ps_snapfs_opts def = PS_SNAPFS_OPTS_INIT;
	struct ps_snapfs *fs;
	char abs[PATH_MAX];
	int rc;

	*out = NULL;
	if (!opts)
		opts = &def;
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
	fs = ps_calloc(1, sizeof(*fs));
	if (!fs)
		return ps_err(err, PS_ERROR, "out of memory");
	pthread_mutex_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->refresh_lock, NULL);
	pthread_mutex_init(&fs->fq_lock, NULL);
	pthread_cond_init(&fs->fq_cond, NULL);
	snprintf(fs->project, sizeof(fs->project), "%s", project);
	fs->location = ps_strdup(!ps_location_is_url(location) && realpath(location, abs) ? abs : location);
	fs->uid = opts->uid;
	fs->gid = opts->gid;
	fs->own_uid = opts->uid >= 0 ? (uint32_t)opts->uid : (uint32_t)geteuid();
	fs->own_gid = opts->gid >= 0 ? (uint32_t)opts->gid : (uint32_t)getegid();
	fs->refresh_ns = (int64_t)(opts->refresh_ms > 0 ? opts->refresh_ms : DEFAULT_REFRESH_MS) * 1000000;
	fs->readahead = opts->readahead_chunks < 0 ? 0 : opts->readahead_chunks ? opts->readahead_chunks
										 : DEFAULT_READAHEAD;
	fs->nfetchers = opts->prefetch_threads > 0 ? opts->prefetch_threads : DEFAULT_FETCHERS;
	if (fs->nfetchers > MAX_FETCHERS)
		fs->nfetchers = MAX_FETCHERS;
	if (!fs->location ||
	    cache_init(&fs->trees, opts->tree_cache_bytes ? opts->tree_cache_bytes : DEFAULT_CACHE, 1) ||
	    cache_init(&fs->chunks, opts->chunk_cache_bytes ? opts->chunk_cache_bytes : DEFAULT_CACHE, 0) ||
	    node_table_grow(fs)) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	rc = gen_open(fs, &fs->gen, err);
	if (rc)
		goto done;
	/* list first, then load the index: it then knows every listed object */
	rc = refresh(fs, 1, err);
	if (!rc)
		rc = ps_store_load_index(fs->gen->s, err);
	if (!rc && !fs->nlisted)
		rc = ps_err(err, PS_ENOTFOUND, "project '%s' has no snapshot", project);
done:
	if (rc) {
		ps_snapfs_free(fs);
		return rc;
	}
	*out = fs;
	return PS_OK;
}

void ps_snapfs_free(struct ps_snapfs *fs)
{
	if (!fs)
		return;
	pthread_mutex_lock(&fs->fq_lock);
	fs->fq_stop = 1;
	pthread_cond_broadcast(&fs->fq_cond);
	pthread_mutex_unlock(&fs->fq_lock);
	for (int i = 0; i < fs->nstarted; i++)
		pthread_join(fs->fetchers[i], NULL);
	ps_free(fs->fq);
	for (size_t i = 0; i < fs->ncap; i++) {
		struct node *n = fs->ntab[i], *next;
		for (; n; n = next) {
			next = n->hnext;
			ps_free(n);
		}
	}
	ps_free(fs->ntab);
	for (size_t i = 0; i < fs->nsnaps; i++) {
		pthread_mutex_destroy(&fs->snaps[i]->links_lock);
		ps_free(fs->snaps[i]->links.keys);
		ps_free(fs->snaps[i]->links.counts);
		ps_free(fs->snaps[i]);
	}
	ps_free(fs->snaps);
	ps_free(fs->listed);
	cache_destroy(&fs->trees);
	cache_destroy(&fs->chunks);
	if (fs->gen) {
		ps_store_free(fs->gen->s);
		ps_free(fs->gen);
	}
	ps_free(fs->location);
	pthread_mutex_destroy(&fs->lock);
	pthread_mutex_destroy(&fs->refresh_lock);
	pthread_mutex_destroy(&fs->fq_lock);
	pthread_cond_destroy(&fs->fq_cond);
	ps_free(fs);
}

int ps_snapfs_snapshots(struct ps_snapfs *fs, struct ps_snapshot_info **out, size_t *n,
			struct ps_error *err)
{
	struct ps_snapshot_info *v;
	int rc = refresh(fs, 1, err);
	*out = NULL;
	*n = 0;
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->lock);
	v = ps_calloc(fs->nlisted + 1, sizeof(*v));
	if (v) {
		for (size_t i = 0; i < fs->nlisted; i++)
			v[i] = fs->listed[i]->info;
		*n = fs->nlisted;
	}
	pthread_mutex_unlock(&fs->lock);
	if (!v)
		return ps_err(err, PS_ERROR, "out of memory");
	*out = v;
	return PS_OK;
}

/* The directory node `ino` (not the root), copied. */
static int dir_node(struct ps_snapfs *fs, uint64_t ino, struct node *d, struct ps_error *err)
{
	int rc;
	if (ino == LATEST_INO)
		return ps_err(err, PS_EINVAL, "not a directory");
	rc = node_copy(fs, ino, d, err);
	if (!rc && d->attr.type != PS_T_DIR)
		rc = ps_err(err, PS_EINVAL, "not a directory");
	return rc;
}

int ps_snapfs_lookup(struct ps_snapfs *fs, uint64_t parent, const char *name,
		     struct ps_snapfs_attr *out, struct ps_error *err)
{
	struct node d, p;
	struct centry *t;
	long i;
	int rc;

	if (parent == PS_SNAPFS_ROOT) {
		struct snap *sp;
		refresh(fs, 0, NULL);   /* on failure: the listing we have */
		pthread_mutex_lock(&fs->lock);
		if (!strcmp(name, LATEST_NAME)) {
			rc = latest_attr_locked(fs, out);
			pthread_mutex_unlock(&fs->lock);
			return rc ? ps_err(err, PS_ENOTFOUND, "no snapshot yet") : PS_OK;
		}
		sp = listed_find(fs, name);
		pthread_mutex_unlock(&fs->lock);
		if (!sp && ps_snapshot_name_valid(name) && refresh(fs, 1, NULL) == PS_OK) {
			/* a snapshot saved since the last listing, asked for by name */
			pthread_mutex_lock(&fs->lock);
			sp = listed_find(fs, name);
			pthread_mutex_unlock(&fs->lock);
		}
		if (!sp)
			return ps_err(err, PS_ENOTFOUND, "no snapshot '%s'", name);
		snap_proto(fs, sp, 1, &p);
		return node_ref(fs, &p, out, err);
	}
	if ((rc = dir_node(fs, parent, &d, err)))
		return rc;
	if ((rc = tree_get(fs, d.sub, &t, err)))
		return rc;
	i = ps_tree_find(&t->tree, name, strlen(name));
	if (i < 0) {
		rc = ps_err(err, PS_ENOTFOUND, "'%s' does not exist", name);
	} else {
		entry_proto(fs, d.snap, d.ino, d.sub, &t->tree.ents[i], (size_t)i, 1, &p);
		rc = node_ref(fs, &p, out, err);
	}
	cache_put(&fs->trees, t);
	return rc;
}

int ps_snapfs_getattr(struct ps_snapfs *fs, uint64_t ino, struct ps_snapfs_attr *out,
		      struct ps_error *err)
{
	struct node n;
	int rc;
	if (ino == PS_SNAPFS_ROOT) {
		refresh(fs, 0, NULL);
		root_attr(fs, out);
		return PS_OK;
	}
	if (ino == LATEST_INO) {
		pthread_mutex_lock(&fs->lock);
		rc = latest_attr_locked(fs, out);
		pthread_mutex_unlock(&fs->lock);
		return rc ? ps_err(err, PS_ENOTFOUND, "no snapshot yet") : PS_OK;
	}
	if ((rc = node_copy(fs, ino, &n, err)))
		return rc;
	*out = n.attr;
	return PS_OK;
}

static int readdir_root(struct ps_snapfs *fs, uint64_t off, ps_snapfs_dir_fn fn, void *ctx,
			struct ps_error *err)
{
	struct snap **v;
	struct ps_snapfs_attr la;
	size_t n;
	refresh(fs, 0, NULL);
	pthread_mutex_lock(&fs->lock);
	n = fs->nlisted;
	v = ps_malloc((n + 1) * sizeof(*v));
	if (v && n) {
		memcpy(v, fs->listed, n * sizeof(*v));
		latest_attr_locked(fs, &la);
	}
	pthread_mutex_unlock(&fs->lock);
	if (!v)
		return ps_err(err, PS_ERROR, "out of memory");
	/* position 0 is "latest", k + 1 the k-th snapshot */
	for (uint64_t pos = off; n && pos <= n; pos++) {
		struct ps_snapfs_attr a;
		struct node p;
		if (pos == 0) {
			if (fn(ctx, LATEST_NAME, strlen(LATEST_NAME), &la, 1))
				break;
			continue;
		}
		/* even with plus, no attributes here (nlink 0 says so): they would
		 * cost every snapshot's root tree; a lookup fills them in */
		snap_proto(fs, v[pos - 1], 0, &p);
		pthread_mutex_lock(&fs->lock);
		p.attr.ino = node_ino_locked(fs, &p);
		pthread_mutex_unlock(&fs->lock);
		a = p.attr;
		a.nlink = 0;
		if (fn(ctx, v[pos - 1]->info.name, strlen(v[pos - 1]->info.name), &a, pos + 1))
			break;
	}
	ps_free(v);
	return PS_OK;
}

int ps_snapfs_readdir(struct ps_snapfs *fs, uint64_t ino, uint64_t off, int plus,
		      ps_snapfs_dir_fn fn, void *ctx, struct ps_error *err)
{
	struct node d;
	struct centry *t;
	int rc;
	if (ino == PS_SNAPFS_ROOT)
		return readdir_root(fs, off, fn, ctx, err);
	if ((rc = dir_node(fs, ino, &d, err)))
		return rc;
	if ((rc = tree_get(fs, d.sub, &t, err)))
		return rc;
	for (uint64_t i = off; i < t->tree.n; i++) {
		const struct ps_tentry *e = &t->tree.ents[i];
		struct ps_snapfs_attr a;
		struct node p;
		entry_proto(fs, d.snap, d.ino, d.sub, e, (size_t)i, plus, &p);
		if (plus) {
			if ((rc = node_ref(fs, &p, &a, err)))
				break;
		} else {
			pthread_mutex_lock(&fs->lock);
			p.attr.ino = node_ino_locked(fs, &p);
			pthread_mutex_unlock(&fs->lock);
			a = p.attr;
		}
		if (fn(ctx, (const char *)e->name, e->name_len, &a, i + 1)) {
			if (plus)
				ps_snapfs_forget(fs, a.ino, 1);
			break;
		}
	}
	cache_put(&fs->trees, t);
	return rc;
}

/* The tree entry of inode ino (an entry inside a snapshot), referenced. */
static int entry_of(struct ps_snapfs *fs, uint64_t ino, struct centry **t,
		    const struct ps_tentry **e, struct ps_error *err)
{
	struct node n;
	int rc;
	*t = NULL;
	if ((rc = node_copy(fs, ino, &n, err)))
		return rc;
	if (n.kind != K_ENTRY)
		return PS_OK;   /* a snapshot's directory: *e = NULL */
	if ((rc = tree_get(fs, n.tree, t, err)))
		return rc;
	if (n.idx >= (*t)->tree.n) {
		cache_put(&fs->trees, *t);
		*t = NULL;
		return ps_err(err, PS_ECORRUPT, "inode %llu: entry out of range",
			      (unsigned long long)ino);
	}
	*e = &(*t)->tree.ents[n.idx];
	return PS_OK;
}

int ps_snapfs_readlink(struct ps_snapfs *fs, uint64_t ino, char *buf, size_t size, size_t *len,
		       struct ps_error *err)
{
	const struct ps_tentry *e = NULL;
	struct centry *t;
	int rc;
	if (ino == LATEST_INO) {
		pthread_mutex_lock(&fs->lock);
		if (fs->nlisted) {
			const char *name = fs->listed[fs->nlisted - 1]->info.name;
			*len = strlen(name);
			memcpy(buf, name, *len < size ? *len : size);
		}
		rc = fs->nlisted ? PS_OK : ps_err(err, PS_ENOTFOUND, "no snapshot yet");
		pthread_mutex_unlock(&fs->lock);
		return rc;
	}
	if (ino == PS_SNAPFS_ROOT)
		return ps_err(err, PS_EINVAL, "not a symlink");
	if ((rc = entry_of(fs, ino, &t, &e, err)))
		return rc;
	if (!e || e->type != PS_T_SYMLINK) {
		rc = ps_err(err, PS_EINVAL, "not a symlink");
	} else {
		*len = e->target_len;
		memcpy(buf, e->target, e->target_len < size ? e->target_len : size);
	}
	cache_put(&fs->trees, t);
	return rc;
}

int ps_snapfs_listxattr(struct ps_snapfs *fs, uint64_t ino, char *buf, size_t size, size_t *len,
			struct ps_error *err)
{
	const struct ps_tentry *e = NULL;
	struct ps_xattr_it it;
	struct centry *t = NULL;
	const char *k;
	const uint8_t *v;
	size_t kl, vl, total = 0;
	int rc;
	*len = 0;
	if (ino == PS_SNAPFS_ROOT || ino == LATEST_INO)
		return PS_OK;
	if ((rc = entry_of(fs, ino, &t, &e, err)))
		return rc;
	if (e) {
		ps_xattr_it_init(&it, e);
		while (ps_xattr_next(&it, &k, &kl, &v, &vl))
			total += kl + 1;
		if (total <= size) {
			size_t pos = 0;
			ps_xattr_it_init(&it, e);
			while (ps_xattr_next(&it, &k, &kl, &v, &vl)) {
				memcpy(buf + pos, k, kl);
				buf[pos + kl] = 0;
				pos += kl + 1;
			}
		}
	}
	*len = total;
	cache_put(&fs->trees, t);
	return PS_OK;
}

int ps_snapfs_getxattr(struct ps_snapfs *fs, uint64_t ino, const char *name, void *buf,
		       size_t size, size_t *len, struct ps_error *err)
{
	const struct ps_tentry *e = NULL;
	struct ps_xattr_it it;
	struct centry *t = NULL;
	const char *k;
	const uint8_t *v;
	size_t kl, vl, nl = strlen(name);
	int rc, found = 0;
	*len = 0;
	if (ino != PS_SNAPFS_ROOT && ino != LATEST_INO) {
		if ((rc = entry_of(fs, ino, &t, &e, err)))
			return rc;
	}
	if (e) {
		ps_xattr_it_init(&it, e);
		while (!found && ps_xattr_next(&it, &k, &kl, &v, &vl)) {
			if (kl == nl && !memcmp(k, name, nl)) {
				found = 1;
				*len = vl;
				if (vl <= size && vl)
					memcpy(buf, v, vl);
			}
		}
	}
	cache_put(&fs->trees, t);
	return found ? PS_OK : ps_err(err, PS_ENOTFOUND, "no attribute '%s'", name);
}

/* ------------------------------------------------------------------ files */

int ps_snapfs_file_open(struct ps_snapfs *fs, uint64_t ino, struct ps_snapfs_file **out,
			struct ps_error *err)
{
	const struct ps_tentry *e = NULL;
	struct ps_snapfs_file *f = NULL;
	struct centry *t = NULL;
	int rc;
	*out = NULL;
	if (ino == PS_SNAPFS_ROOT || ino == LATEST_INO)
		return ps_err(err, PS_EINVAL, "not a regular file");
	if ((rc = entry_of(fs, ino, &t, &e, err)))
		return rc;
	if (!e || (e->type != PS_T_REG && e->type != PS_T_ERROR)) {
		rc = ps_err(err, PS_EINVAL, "not a regular file");
		goto done;
	}
	if (e->type == PS_T_ERROR) {
		rc = ps_err(err, PS_ECORRUPT, "'%.*s' could not be read when it was saved: %.*s",
			    (int)e->name_len, (const char *)e->name, (int)e->target_len,
			    (const char *)e->target);
		goto done;
	}
	f = ps_calloc(1, sizeof(*f));
	if (!f || !(f->ext = ps_malloc((e->nextents + 1) * sizeof(*f->ext))) ||
	    !(f->name = ps_strndup((const char *)e->name, e->name_len))) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	memcpy(f->ext, e->extents, e->nextents * sizeof(*f->ext));
	f->n = e->nextents;
	f->size = e->size;
	f->fs = fs;
	pthread_mutex_init(&f->lock, NULL);
	*out = f;
	f = NULL;
done:
	if (f) {
		ps_free(f->ext);
		ps_free(f->name);
		ps_free(f);
	}
	cache_put(&fs->trees, t);
	return rc;
}

void ps_snapfs_file_close(struct ps_snapfs_file *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	ps_free(f->ext);
	ps_free(f->name);
	ps_free(f);
}

/* Index of the first extent ending after off (f->n if none). */
static size_t first_extent_after(const struct ps_snapfs_file *f, uint64_t off)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->ext[mid].off + f->ext[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Sequential reads queue the chunks from `next` (the first extent after the
 * range just read) on for the background fetchers. */
static void read_ahead(struct ps_snapfs_file *f, uint64_t off, uint64_t end, size_t next)
{
	struct ps_snapfs *fs = f->fs;
	const uint64_t window = (uint64_t)4 << 20;
	size_t from, to;
	int seq;
	if (!fs->readahead)
		return;
	pthread_mutex_lock(&f->lock);
	/* the kernel's read-ahead sends neighbouring requests, maybe out of order */
	seq = off == 0 || (off <= f->last_end + window && off + window >= f->last_end);
	if (end > f->last_end || !seq)
		f->last_end = end;
	if (!seq) {
		f->ra_next = next;
		pthread_mutex_unlock(&f->lock);
		return;
	}
	from = f->ra_next > next ? f->ra_next : next;
	to = next + (size_t)fs->readahead;
	if (to > f->n)
		to = f->n;
	if (from < to)
		f->ra_next = to;
	pthread_mutex_unlock(&f->lock);
	for (size_t k = from; k < to; k++)
		fetch_ahead(fs, f->ext[k].id);
}

/* Whether the chunk of extent k comes again in the next few extents. */
static int reused_soon(const struct ps_snapfs_file *f, size_t k)
{
	for (size_t i = k + 1; i < f->n && i <= k + 16; i++)
		if (!memcmp(f->ext[i].id, f->ext[k].id, 32))
			return 1;
	return 0;
}

int ps_snapfs_file_read(struct ps_snapfs_file *f, void *vbuf, size_t len, uint64_t off,
			size_t *got, struct ps_error *err)
{
	struct ps_snapfs *fs = f->fs;
	uint8_t *buf = vbuf;
	uint64_t pos = off, end;
	size_t k;
	int rc = PS_OK;
	*got = 0;
	if (off >= f->size || !len)
		return PS_OK;
	end = f->size - off < len ? f->size : off + len;
	k = first_extent_after(f, off);
	while (pos < end) {
		const struct ps_extent *x;
		struct centry *c;
		uint64_t stop;
		int hit = 1;
		if (k == f->n || f->ext[k].off >= end) {
			memset(buf + (pos - off), 0, (size_t)(end - pos));   /* a hole */
			pos = end;
			break;
		}
		x = &f->ext[k];
		if (x->off > pos) {
			memset(buf + (pos - off), 0, (size_t)(x->off - pos));
			pos = x->off;
		}
		rc = cache_get(fs, &fs->chunks, x->id, &c, &hit, err);
		if (!rc && !hit)
			fetch_cancel(fs, x->id);
		if (rc) {
			ps_err_prefix(err, "'%s'", f->name);
			break;
		}
		if (c->len != x->len) {
			cache_put(&fs->chunks, c);
			rc = ps_err(err, PS_ECORRUPT, "'%s': chunk length does not match the tree",
				    f->name);
			break;
		}
		stop = x->off + x->len < end ? x->off + x->len : end;
		memcpy(buf + (pos - off), c->data + (pos - x->off), (size_t)(stop - pos));
		if (reused_soon(f, k))
			cache_put(&fs->chunks, c);   /* the same chunk again (zeros...) */
		else
			chunk_served(&fs->chunks, c, (size_t)(stop - pos));
		pos = stop;
		k++;
	}
	if (rc)
		return rc;
	*got = (size_t)(end - off);
	read_ahead(f, off, end, k);
	return PS_OK;
}

int ps_snapfs_file_seek(struct ps_snapfs_file *f, uint64_t off, int hole, uint64_t *out,
			struct ps_error *err)
{
	size_t k;
	if (off >= f->size)
		return ps_err(err, PS_ENOTFOUND, "offset beyond the end of the file");
	k = first_extent_after(f, off);
	if (!hole) {
		if (k == f->n)
			return ps_err(err, PS_ENOTFOUND, "no data after the offset");
		*out = f->ext[k].off > off ? f->ext[k].off : off;
		return PS_OK;
	}
	if (k == f->n || f->ext[k].off > off) {
		*out = off;   /* in a hole already */
		return PS_OK;
	}
	while (k + 1 < f->n && f->ext[k].off + f->ext[k].len == f->ext[k + 1].off)
		k++;
	*out = f->ext[k].off + f->ext[k].len;
	if (*out > f->size)
		*out = f->size;
	return PS_OK;
}

void ps_snapfs_stats(struct ps_snapfs *fs, struct ps_snapfs_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&fs->trees.lock);
	out->tree_hits = fs->trees.hits;
	out->tree_misses = fs->trees.misses;
	out->tree_bytes = fs->trees.bytes;
	pthread_mutex_unlock(&fs->trees.lock);
	pthread_mutex_lock(&fs->chunks.lock);
	out->chunk_hits = fs->chunks.hits;
	out->chunk_misses = fs->chunks.misses;
	out->chunk_bytes = fs->chunks.bytes;
	pthread_mutex_unlock(&fs->chunks.lock);
	pthread_mutex_lock(&fs->fq_lock);
	out->prefetched = fs->prefetched;
	pthread_mutex_unlock(&fs->fq_lock);
	pthread_mutex_lock(&fs->lock);
	out->inodes = fs->nnodes;
	pthread_mutex_unlock(&fs->lock);
}
