/*
 * repl_local.c - the sync endpoint of a store opened in this process (a
 * directory, or any backend ps_store_open knows), and the settings merge
 * rule.
 *
 * What protects a store that receives (docs/FORMAT.md, "Sync"):
 *
 *   - the store-wide sync lock (locks/.sync.lock) is taken before the index
 *     is loaded and held to the end, so gc's phase 2 waits for this sync
 *     exactly as it waits for a save that loaded its index before a
 *     condemnation (the dedup view leaves condemned packs out, as for saves);
 *   - the project lock is held while a project's refs are read, its objects
 *     copied and its refs published, so no prune or delete removes a
 *     snapshot the sync relies on meanwhile;
 *   - every record is decoded and hashed before it is stored (trees are
 *     decoded too); a record that fails is rejected and reported by barrier;
 *   - a ref is published only after flush indexed what it needs, only if it
 *     parses, names this project and its root is in the store, and never
 *     over an existing ref (link(), not rename()).
 *
 * Leftovers of a killed sync are those of a killed save: its finished packs
 * are indexed by the next writer (the journal), temp files removed, no ref.
 */
#define _GNU_SOURCE
#include "repl_int.h"
#include "../hash/hash.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define LOCK_TTL 600.0
#define REFRESH_NS (60LL * 1000000000LL)
#define SYNC_LOCK ".sync"
#define REF_MAX 8192
#define SETTINGS_MAX (1u << 20)
#define REJ_KEEP 1000
#define PUTQ_BYTES (8u << 20)    /* records waiting for the put thread */

/* A record waiting to be verified and stored. */
struct putjob {
	struct putjob *next;
	size_t len;
	uint8_t rec[];
};

struct plock {
	char project[72];
	struct ps_lock *l;
};

struct local_ep {
	struct ps_ep ep;
	struct ps_store *s;
	int own;
	struct ps_lock *store_lock;
	struct plock *plocks;
	size_t nplocks;
	int64_t refreshed;            /* mono ns of the last lock refresh */
	int prepared;                 /* leftovers settled, index loaded */
	/* the index is loaded by a thread of its own while the caller goes on
	 * (lists snapshots, reads the other side's trees); everything that
	 * needs it waits for that thread first (prepare) */
	pthread_t loader;
	int loading;                  /* the thread runs (or ran: not joined yet) */
	int load_rc;
	struct ps_error load_err;
	int wrote;                    /* flushed something: compact the index on close */
	uint64_t accepted, rejected;  /* since the last barrier */
	struct ps_ep_reject *rej;
	size_t nrej;
	uint64_t put_objects, put_bytes; /* added since the last flush */
	/* puts are verified and stored by a thread of their own, in order,
	 * while the caller reads the next records; barrier, flush, publish and
	 * close wait until it has done everything queued */
	pthread_t putter;
	int putter_on, putter_quit, putter_busy;
	pthread_mutex_t qlock;
	pthread_cond_t qwork, qdone;
	struct putjob *qhead, *qtail;
	size_t qbytes;
	int put_failed;               /* storing failed: every later put fails */
	struct ps_error put_err;
	char dirty_dir[PATH_MAX];     /* refs linked there, directory not yet fsynced */
	ps_sync_log_fn log;           /* NULL, or where damaged refs are told */
	void *log_ctx;
};

static struct local_ep *L(struct ps_ep *ep) { return (struct local_ep *)ep; }

/* Refs are made durable a directory at a time (one fsync for a batch of
 * refs, not one each): before anything else is done to the store's refs. */
static int sync_refs_dir(struct local_ep *l, struct ps_error *err)
{
	int rc = PS_OK;
	if (l->dirty_dir[0])
		rc = l->s->be->ops->fsync_dir(l->s->be, l->dirty_dir, err);
	l->dirty_dir[0] = 0;
	return rc;
}

struct ps_store *ps_ep_local_store(struct ps_ep *ep) { return ep->remote ? NULL : L(ep)->s; }

void ps_ep_local_set_log(struct ps_ep *ep, ps_sync_log_fn log, void *ctx)
{
	if (ep->remote)
		return;
	L(ep)->log = log;
	L(ep)->log_ctx = ctx;
}

/* Long syncs keep their locks fresh (a lock of another host is broken once
 * expired). */
static void keep_locks(struct local_ep *l)
{
	if (ps_mono_ns() - l->refreshed < REFRESH_NS)
		return;
	l->refreshed = ps_mono_ns();
	if (l->store_lock)
		ps_lock_refresh(l->store_lock, NULL);
	for (size_t i = 0; i < l->nplocks; i++)
		ps_lock_refresh(l->plocks[i].l, NULL);
}

/* What prepare does, in the loader thread. */
static void *load_main(void *arg)
{
	struct local_ep *l = arg;
	ps_error_clear(&l->load_err);
	if (l->store_lock) {
		ps_store_clean_tmp(l->s, "tmp", NULL, NULL);
		ps_store_clean_tmp(l->s, "locks", NULL, NULL);
	}
	l->load_rc = ps_store_load_index(l->s, &l->load_err);
	return NULL;
}

/* Starts loading the index in the background (see prepare). */
static void start_loading(struct local_ep *l)
{
	if (l->prepared || l->loading)
		return;
	l->load_rc = PS_OK;
	if (pthread_create(&l->loader, NULL, load_main, l) == 0)
		l->loading = 1;
	/* else prepare loads it when it is needed */
}

/* Waits for the loader thread; its result. */
static int join_loader(struct local_ep *l, struct ps_error *err)
{
	if (!l->loading)
		return PS_OK;
	pthread_join(l->loader, NULL);
	l->loading = 0;
	if (l->load_rc) {
		if (err)
			*err = l->load_err;
		return ps_err_prefix(err, "'%s'", l->ep.location);
	}
	l->prepared = 1;
	return PS_OK;
}

/* Before the index is loaded: what dead writers left is settled (their
 * finished packs indexed, so they are not sent again). */
static int prepare(struct local_ep *l, struct ps_error *err)
{
	if (l->loading) {
		int rc = join_loader(l, err);
		if (rc)
			return rc;
	}
	if (l->prepared)
		return PS_OK;
	/* only a writer (holding the sync lock) settles leftovers: a source
	 * or a dry run changes nothing */
	if (l->store_lock) {
		ps_store_clean_tmp(l->s, "tmp", NULL, NULL);
		ps_store_clean_tmp(l->s, "locks", NULL, NULL);
	}
	if (ps_store_load_index(l->s, err))
		return ps_err_prefix(err, "'%s'", l->ep.location);
	l->prepared = 1;
	return PS_OK;
}

static int l_projects(struct ps_ep *ep, char ***v, size_t *n, struct ps_error *err)
{
	int rc = ps_project_list(L(ep)->s, v, n, err);
	if (rc == PS_ENOTFOUND) {   /* a store without projects/ yet */
		*v = NULL;
		*n = 0;
		ps_error_clear(err);
		rc = PS_OK;
	}
	return rc;
}

/* A damaged ref is left out of the listing (and said): it is not copied,
 * and it does not stop the others. */
static void bad_ref(void *ctx, const char *path, const char *msg)
{
	struct local_ep *l = ctx;
	char line[1400];
	if (!l->log)
		return;
	snprintf(line, sizeof(line), "%s: %s: %s (left out)", l->ep.location, path, msg);
	l->log(l->log_ctx, 1, line);
}

static int l_snapshots(struct ps_ep *ep, const char *project, struct ps_snapshot_info **v,
		       size_t *n, struct ps_error *err)
{
	keep_locks(L(ep));
	return ps_snapshot_list_ex(L(ep)->s, project, v, n, bad_ref, L(ep), err);
}

static int l_refs(struct ps_ep *ep, const char *project, char *const *names, size_t n,
		  struct ps_buf *refs, char **why, struct ps_error *err)
{
	struct ps_store *s = L(ep)->s;
	keep_locks(L(ep));
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		void *buf = NULL;
		size_t len = 0, used;
		struct ps_snapshot_info si;
		struct ps_error e2;
		int rc;
		memset(&refs[i], 0, sizeof(refs[i]));
		why[i] = NULL;
		snprintf(path, sizeof(path), "projects/%s/snaps/%s.snap", project, names[i]);
		rc = ps_be_read_all(s->be, path, REF_MAX, &buf, &len, &e2);
		if (rc == PS_OK) {
			rc = ps_ref_decode(buf, len, &si, &used, &e2);
			if (!rc && (used != len || strcmp(si.project, project) || strcmp(si.name, names[i])))
				rc = ps_err(&e2, PS_ECORRUPT, "the ref names another snapshot");
		}
		if (rc == PS_ERROR && e2.sys_errno != ENOENT && e2.sys_errno != EIO) {
			ps_free(buf);
			if (err)
				*err = e2;
			return rc;
		}
		if (rc) {
			char msg[1200];
			snprintf(msg, sizeof(msg), "'%s': %s", path, e2.msg);
			ps_free(buf);
			why[i] = ps_strdup(msg);
			continue;
		}
		refs[i].data = buf;
		refs[i].len = refs[i].cap = len;
	}
	return PS_OK;
}

static int l_settings(struct ps_ep *ep, const char *project, int *exists, struct ps_buf *out,
		      struct ps_error *err)
{
	char path[PATH_MAX];
	void *buf = NULL;
	size_t len = 0;
	int rc;
	snprintf(path, sizeof(path), "projects/%s/settings", project);
	rc = ps_be_read_all(L(ep)->s->be, path, SETTINGS_MAX, &buf, &len, err);
	*exists = 0;
	ps_buf_reset(out);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		return PS_OK;
	}
	if (rc)
		return rc;
	*exists = 1;
	rc = ps_buf_append(out, buf, len) ? ps_err(err, PS_ERROR, "out of memory") : PS_OK;
	ps_free(buf);
	return rc;
}

static int l_has(struct ps_ep *ep, const uint8_t (*ids)[32], size_t n, uint8_t *bits,
		 struct ps_error *err)
{
	struct local_ep *l = L(ep);
	int rc = prepare(l, err);
	if (rc)
		return rc;
	keep_locks(l);
	memset(bits, 0, (n + 7) / 8);
	for (size_t i = 0; i < n; i++)
		if (ps_store_has(l->s, ids[i], NULL))
			bits[i / 8] |= (uint8_t)(1u << (i % 8));
	return PS_OK;
}

static int l_sizes(struct ps_ep *ep, const uint8_t (*ids)[32], size_t n, uint32_t *lens,
		   struct ps_error *err)
{
	struct local_ep *l = L(ep);
	int rc = prepare(l, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct ps_obj_info info;
		lens[i] = ps_store_locate(l->s, ids[i], &info) ? info.stored_len : 0;
	}
	return PS_OK;
}

static int l_get(struct ps_ep *ep, const uint8_t (*ids)[32], size_t n, ps_ep_obj_fn fn, void *ctx,
		 struct ps_error *err)
{
	struct local_ep *l = L(ep);
	int rc = prepare(l, err);
	if (rc)
		return rc;
	keep_locks(l);
	for (size_t i = 0; i < n; i++) {
		uint8_t *rec = NULL;
		size_t len = 0;
		struct ps_error e2;
		ps_error_clear(&e2);
		rc = ps_store_get_record(l->s, ids[i], &rec, &len, &e2);
		if (rc == PS_OK)
			rc = fn(ctx, i, PS_OBJ_OK, rec, len, NULL);
		else if (rc == PS_ENOTFOUND)
			rc = fn(ctx, i, PS_OBJ_MISSING, NULL, 0, e2.msg);
		else if (rc == PS_ECORRUPT)
			rc = fn(ctx, i, PS_OBJ_DAMAGED, NULL, 0, e2.msg);
		else {
			if (err)
				*err = e2;
			return rc;
		}
		ps_free(rec);
		if (rc)
			return rc;
	}
	return PS_OK;
}

static void reject(struct local_ep *l, const uint8_t *id, const char *why)
{
	l->rejected++;
	if (l->nrej < REJ_KEEP) {
		struct ps_ep_reject *v = ps_realloc(l->rej, (l->nrej + 1) * sizeof(*v));
		if (!v)
			return;
		l->rej = v;
		memcpy(v[l->nrej].id, id, 32);
		snprintf(v[l->nrej].why, sizeof(v[l->nrej].why), "%s", why);
		l->nrej++;
	}
}

/* Verifies a record (decompressed and hashed, a tree decoded) and stores
 * it, or rejects it. Only PS_ERROR-class failures (out of memory, a failed
 * write) are returned. */
static int put_one(struct local_ep *l, const uint8_t *rec, size_t len, struct ps_error *err)
{
	uint8_t *obj = NULL;
	size_t olen = 0;
	int type = 0, added = 0, rc;
	struct ps_error e2;
	if (len < PS_PACK_REC_HDR_LEN) {
		uint8_t zero[32] = { 0 };
		reject(l, zero, "object record is truncated");
		return PS_OK;
	}
	/* verified on arrival: decompressed and hashed (and a tree decoded) */
	ps_error_clear(&e2);
	rc = ps_pack_decode_record(rec, len, NULL, &type, &obj, &olen, &e2);
	if (rc == PS_ERROR) {
		if (err)
			*err = e2;
		return rc;
	}
	if (!rc && type == PS_OBJ_TREE) {
		struct ps_tree t;
		rc = ps_tree_decode(obj, olen, &t, &e2);
		if (!rc) {
			obj = NULL;   /* owned by t */
			ps_tree_release(&t);
		} else if (rc != PS_ERROR) {
			ps_err_prefix(&e2, "tree does not decode");
		}
	}
	ps_free(obj);
	if (rc) {
		if (rc == PS_ERROR) {
			if (err)
				*err = e2;
			return rc;
		}
		reject(l, rec + 12, e2.msg);
		return PS_OK;
	}
	rc = ps_store_put_record(l->s, rec, len, 0, &added, err);
	if (rc)
		return rc;
	l->accepted++;
	if (added) {
		l->put_objects++;
		l->put_bytes += len;
	}
	return PS_OK;
}

static void *put_main(void *arg)
{
	struct local_ep *l = arg;
	pthread_mutex_lock(&l->qlock);
	for (;;) {
		struct putjob *j;
		struct ps_error e;
		int rc = PS_OK;
		while (!l->qhead && !l->putter_quit)
			pthread_cond_wait(&l->qwork, &l->qlock);
		if (!l->qhead)
			break;
		j = l->qhead;
		l->qhead = j->next;
		if (!l->qhead)
			l->qtail = NULL;
		l->putter_busy = 1;
		pthread_mutex_unlock(&l->qlock);
		ps_error_clear(&e);
		if (!l->put_failed)
			rc = put_one(l, j->rec, j->len, &e);
		pthread_mutex_lock(&l->qlock);
		if (rc && !l->put_failed) {
			l->put_failed = 1;
			l->put_err = e;
			if (!l->put_err.code)
				l->put_err.code = rc;
		}
		l->qbytes -= j->len;
		l->putter_busy = 0;
		ps_free(j);
		pthread_cond_broadcast(&l->qdone);
	}
	pthread_mutex_unlock(&l->qlock);
	return NULL;
}

/* Waits until the put thread has done everything queued; a failure to
 * store is returned (and stays: the store is not written to again). */
static int put_drain(struct local_ep *l, struct ps_error *err)
{
	if (l->putter_on) {
		pthread_mutex_lock(&l->qlock);
		while (l->qhead || l->putter_busy)
			pthread_cond_wait(&l->qdone, &l->qlock);
		pthread_mutex_unlock(&l->qlock);
	}
	if (l->put_failed) {
		if (err)
			*err = l->put_err;
		return l->put_err.code;
	}
	return PS_OK;
}

static void put_stop(struct local_ep *l)
{
	if (!l->putter_on)
		return;
	put_drain(l, NULL);
	pthread_mutex_lock(&l->qlock);
	l->putter_quit = 1;
	pthread_cond_broadcast(&l->qwork);
	pthread_mutex_unlock(&l->qlock);
	pthread_join(l->putter, NULL);
	l->putter_on = 0;
	pthread_cond_destroy(&l->qwork);
	pthread_cond_destroy(&l->qdone);
	pthread_mutex_destroy(&l->qlock);
}

static int l_put(struct ps_ep *ep, const uint8_t *rec, size_t len, struct ps_error *err)
{
	struct local_ep *l = L(ep);
	struct putjob *j;
	int rc = prepare(l, err);
	if (rc)
		return rc;
	keep_locks(l);
	if (l->put_failed)
		return put_drain(l, err);
	if (!l->putter_on && !l->putter_quit) {
		int ok = pthread_mutex_init(&l->qlock, NULL) == 0;
		if (ok && pthread_cond_init(&l->qwork, NULL)) {
			pthread_mutex_destroy(&l->qlock);
			ok = 0;
		}
		if (ok && pthread_cond_init(&l->qdone, NULL)) {
			pthread_cond_destroy(&l->qwork);
			pthread_mutex_destroy(&l->qlock);
			ok = 0;
		}
		if (ok && pthread_create(&l->putter, NULL, put_main, l)) {
			pthread_cond_destroy(&l->qdone);
			pthread_cond_destroy(&l->qwork);
			pthread_mutex_destroy(&l->qlock);
			ok = 0;
		}
		if (ok)
			l->putter_on = 1;
		else
			l->putter_quit = 1;   /* no thread: every put is done here */
	}
	if (!l->putter_on) {
		struct ps_error e2;
		ps_error_clear(&e2);
		rc = put_one(l, rec, len, &e2);
		if (rc) {
			l->put_failed = 1;
			l->put_err = e2;
			l->put_err.code = rc;
			if (err)
				*err = e2;
		}
		return rc;
	}
	j = ps_malloc(sizeof(*j) + len);
	if (!j)
		return ps_err(err, PS_ERROR, "out of memory");
	j->next = NULL;
	j->len = len;
	memcpy(j->rec, rec, len);
	pthread_mutex_lock(&l->qlock);
	/* a bounded queue: one record always fits */
	while (l->qhead && l->qbytes + len > PUTQ_BYTES)
		pthread_cond_wait(&l->qdone, &l->qlock);
	if (l->qtail)
		l->qtail->next = j;
	else
		l->qhead = j;
	l->qtail = j;
	l->qbytes += len;
	pthread_cond_signal(&l->qwork);
	pthread_mutex_unlock(&l->qlock);
	return PS_OK;
}

static int l_barrier(struct ps_ep *ep, uint64_t *accepted, uint64_t *rejected,
		     struct ps_ep_reject **rej, size_t *nrej, struct ps_error *err)
{
	struct local_ep *l = L(ep);
	int rc = put_drain(l, err);
	if (rc)
		return rc;
	*accepted = l->accepted;
	*rejected = l->rejected;
	*rej = l->rej;
	*nrej = l->nrej;
	l->accepted = l->rejected = 0;
	l->rej = NULL;
	l->nrej = 0;
	return PS_OK;
}

static int l_flush(struct ps_ep *ep, uint64_t *objects, uint64_t *bytes, struct ps_error *err)
{
	struct local_ep *l = L(ep);
	int rc = prepare(l, err);
	if (rc)
		return rc;
	keep_locks(l);
	rc = put_drain(l, err);
	if (!rc)
		rc = ps_store_flush(l->s, err);
	if (!rc)
		rc = sync_refs_dir(l, err);
	if (rc)
		return rc;
	if (l->put_objects)
		l->wrote = 1;
	*objects = l->put_objects;
	*bytes = l->put_bytes;
	l->put_objects = l->put_bytes = 0;
	return PS_OK;
}

static int l_publish(struct ps_ep *ep, const char *project, const void *ref, size_t len, int *added,
		     struct ps_error *err)
{
	struct local_ep *l = L(ep);
	struct ps_store *s = l->s;
	struct ps_snapshot_info si;
	struct ps_bfile *f = NULL;
	char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX], hex[65];
	size_t used;
	int rc;
	*added = 0;
	rc = prepare(l, err);
	if (!rc)
		rc = put_drain(l, err);
	if (rc)
		return rc;
	keep_locks(l);
	rc = ps_ref_decode(ref, len, &si, &used, err);
	if (rc)
		return ps_err_prefix(err, "refusing a snapshot ref of project '%s'", project);
	if (used != len || strcmp(si.project, project))
		return ps_err(err, PS_ECORRUPT, "refusing a snapshot ref of project '%s': %s", project,
			      used != len ? "trailing bytes" : "it names another project");
	if (!ps_store_locate(s, si.root, NULL)) {
		ps_hex_encode(si.root, 32, hex);
		return ps_err(err, PS_ECORRUPT,
			      "refusing to publish snapshot %s@%s: its root tree %s is not in the store",
			      project, si.name, hex);
	}
	snprintf(dir, sizeof(dir), "projects/%s", project);
	rc = s->be->ops->mkdir(s->be, dir, err);
	snprintf(dir, sizeof(dir), "projects/%s/snaps", project);
	if (!rc)
		rc = s->be->ops->mkdir(s->be, dir, err);
	if (rc)
		return rc;
	if (strcmp(l->dirty_dir, dir) && (rc = sync_refs_dir(l, err)))
		return rc;
	snprintf(path, sizeof(path), "%s/%s.snap", dir, si.name);
	ps_be_tmp_name(dir, tmp, sizeof(tmp));
	rc = s->be->ops->create_excl(s->be, tmp, &f, err);
	if (rc)
		return rc;
	rc = s->be->ops->write(f, ref, len, err);
	if (!rc)
		rc = s->be->ops->fsync(f, err);
	s->be->ops->close(f);
	if (!rc) {
		/* link, not rename: an existing ref is never replaced */
		rc = s->be->ops->link(s->be, tmp, path, err);
		if (rc == PS_OK)
			*added = 1;
		else if (rc == PS_EEXISTS) {
			ps_error_clear(err);
			rc = PS_OK;
		}
	}
	s->be->ops->unlink(s->be, tmp, NULL);
	if (!rc && *added)
		snprintf(l->dirty_dir, sizeof(l->dirty_dir), "%s", dir);
	return rc;
}

static int l_merge(struct ps_ep *ep, const char *project, int flags, const void *settings, size_t len,
		   int *changed, char ***notes, size_t *nnotes, struct ps_error *err)
{
	struct local_ep *l = L(ep);
	struct ps_buf cur = PS_BUF_INIT, merged = PS_BUF_INIT;
	char path[PATH_MAX];
	int exists = 0, rc;
	*changed = 0;
	*notes = NULL;
	*nnotes = 0;
	if (!(flags & PS_EP_MERGE_EXISTS))
		return PS_OK;
	keep_locks(l);
	rc = l_settings(ep, project, &exists, &cur, err);
	if (!rc)
		rc = ps_settings_merge_text((const char *)cur.data, cur.len, settings, len, &merged,
					    changed, notes, nnotes, err);
	if (!rc && *changed && !(flags & PS_EP_MERGE_DRY)) {
		snprintf(path, sizeof(path), "projects/%s", project);
		rc = l->s->be->ops->mkdir(l->s->be, path, err);
		snprintf(path, sizeof(path), "projects/%s/settings", project);
		if (!rc)
			rc = ps_be_write_atomic(l->s->be, path, merged.data ? (void *)merged.data : (void *)"",
						merged.len, err);
	}
	ps_buf_release(&cur);
	ps_buf_release(&merged);
	return rc;
}

static int l_lock(struct ps_ep *ep, int kind, const char *project, double timeout,
		  struct ps_error *err)
{
	struct local_ep *l = L(ep);
	struct ps_lock *lk = NULL;
	int rc;
	if (kind == PS_EP_LOCK_STORE) {
		if (l->store_lock)
			return PS_OK;
		rc = ps_lock_acquire(l->s, SYNC_LOCK, timeout, LOCK_TTL, &l->store_lock, err);
		if (rc == PS_ELOCKED)
			return ps_err(err, PS_ELOCKED, "another sync into '%s' is running (%s)",
				      ep->location, err ? err->msg : "");
		if (rc)
			return rc;
		l->refreshed = ps_mono_ns();
		/* from now on the index may be loaded: gc's phase 2 waits for us.
		 * It loads while the caller goes on; whatever needs it waits. */
		start_loading(l);
		return PS_OK;
	}
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
	for (size_t i = 0; i < l->nplocks; i++)
		if (!strcmp(l->plocks[i].project, project))
			return PS_OK;
	rc = ps_lock_acquire(l->s, project, timeout, LOCK_TTL, &lk, err);
	if (rc)
		return rc;
	{
		struct plock *v = ps_realloc(l->plocks, (l->nplocks + 1) * sizeof(*v));
		if (!v) {
			ps_lock_release(lk);
			return ps_err(err, PS_ERROR, "out of memory");
		}
		l->plocks = v;
		snprintf(v[l->nplocks].project, sizeof(v[l->nplocks].project), "%s", project);
		v[l->nplocks].l = lk;
		l->nplocks++;
	}
	return PS_OK;
}

static int l_unlock(struct ps_ep *ep, int kind, const char *project, struct ps_error *err)
{
	struct local_ep *l = L(ep);
	int rc = sync_refs_dir(l, err);
	if (kind == PS_EP_LOCK_STORE) {
		/* never loading or writing without the lock */
		int lrc = join_loader(l, err), prc = put_drain(l, err);
		if (!rc)
			rc = lrc ? lrc : prc;
		ps_lock_release(l->store_lock);
		l->store_lock = NULL;
		return rc;
	}
	for (size_t i = 0; i < l->nplocks; i++) {
		struct ps_snapshot_info *v = NULL;
		size_t n = 0;
		if (strcmp(l->plocks[i].project, project))
			continue;
		/* the list cache learns the new refs once, not once per ref */
		if (ps_snapshot_list(l->s, project, &v, &n, NULL) == PS_OK)
			ps_free(v);
		ps_lock_release(l->plocks[i].l);
		l->plocks[i] = l->plocks[--l->nplocks];
		return rc;
	}
	return rc;
}

static void l_bye(struct ps_ep *ep) { (void)ep; }

/* A source's index loads while the other side is being opened (an ssh
 * connection set up, a destination's lock taken and its index loaded). Only
 * for an endpoint that never takes the store-wide lock. */
static void l_warm(struct ps_ep *ep)
{
	struct local_ep *l = L(ep);
	if (!l->store_lock)
		start_loading(l);
}

static void l_close(struct ps_ep *ep)
{
	struct local_ep *l = L(ep);
	if (!ep)
		return;
	put_stop(l);
	join_loader(l, NULL);
	sync_refs_dir(l, NULL);
	if (l->s && l->s->writer)
		ps_store_abort(l->s);
	if (l->wrote)
		ps_index_compact(l->s, 32, NULL);
	while (l->nplocks)
		l_unlock(ep, PS_EP_LOCK_PROJECT, l->plocks[0].project, NULL);
	ps_free(l->plocks);
	ps_lock_release(l->store_lock);
	ps_free(l->rej);
	if (l->own)
		ps_store_free(l->s);
	ps_free(ep->location);
	ps_free(l);
}

static const struct ps_ep_ops local_ops = {
	l_projects, l_snapshots, l_refs, l_settings, l_has, l_sizes, l_get, l_put, l_barrier,
	l_flush, l_publish, l_merge, l_lock, l_unlock, l_bye, l_close, l_warm,
};

int ps_ep_local_new(struct ps_ep **out, struct ps_store *s, int own, struct ps_error *err)
{
	struct local_ep *l = ps_calloc(1, sizeof(*l));
	if (!l)
		return ps_err(err, PS_ERROR, "out of memory");
	l->ep.ops = &local_ops;
	l->ep.location = ps_strdup(s->location ? s->location : "store");
	if (!l->ep.location) {
		ps_free(l);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	snprintf(l->ep.store_id, sizeof(l->ep.store_id), "%s", ps_store_id(s));
	l->s = s;
	l->own = own;
	*out = &l->ep;
	return PS_OK;
}

int ps_ep_open(struct ps_ep **out, const char *location, const struct ps_ep_opts *o,
	       struct ps_error *err)
{
	struct ps_store *s = NULL;
	int rc;
	if (ps_location_is_ssh(location))
		return ps_ep_remote_open(out, location, o, err);
	rc = ps_store_open(&s, location, err);
	if (rc)
		return rc;
	rc = ps_ep_local_new(out, s, 1, err);
	if (rc)
		ps_store_free(s);
	else if (o)
		ps_ep_local_set_log(*out, o->log, o->cb_ctx);
	return rc;
}

/* ------------------------------------------------------------ settings merge */

/*
 * The rule (docs/CLI.md, "sync"): DST keeps every setting it has; what it
 * lacks is taken from SRC.  Settings come in groups: quota, compression, the
 * exclude list (all "exclude" lines), the retention policy (all "keep-"
 * lines), and each other key.  A group DST has is left alone even when SRC's
 * differs (reported); a group only SRC has is copied whole.  Nothing is ever
 * removed from DST.  SRC lines that are not "key value" with a key of
 * [a-z0-9-] and a value without control bytes are ignored (reported).
 */

struct sline {
	const char *p;      /* the whole line */
	size_t len;
	char group[40];     /* "" = invalid */
};

static void line_group(const char *p, size_t len, char *group, size_t glen)
{
	size_t k = 0;
	group[0] = 0;
	while (k < len && p[k] != ' ')
		k++;
	if (!k || k >= 32)
		return;
	for (size_t i = 0; i < k; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
			return;
	for (size_t i = k; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return;
	if (k > 5 && !strncmp(p, "keep-", 5))
		snprintf(group, glen, "policy");
	else
		snprintf(group, glen, "%.*s", (int)k, p);
}

static int split_lines(const char *t, size_t len, struct sline **out, size_t *n)
{
	size_t cap = 16;
	struct sline *v = ps_malloc(cap * sizeof(*v));
	*n = 0;
	if (!v)
		return -1;
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(t + off, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - (t + off)) : len - off;
		if (ll) {
			if (*n == cap) {
				struct sline *nv = ps_realloc(v, cap * 2 * sizeof(*v));
				if (!nv) {
					ps_free(v);
					return -1;
				}
				v = nv;
				cap *= 2;
			}
			v[*n].p = t + off;
			v[*n].len = ll;
			line_group(t + off, ll, v[*n].group, sizeof(v[*n].group));
			(*n)++;
		}
		off += ll + 1;
	}
	*out = v;
	return 0;
}

static int group_in(const struct sline *v, size_t n, const char *g)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].group, g))
			return 1;
	return 0;
}

/* The group's lines, joined with "; ", cut to fit buf. */
static void group_text(const struct sline *v, size_t n, const char *g, char *buf, size_t blen)
{
	size_t k = 0;
	buf[0] = 0;
	for (size_t i = 0; i < n && k + 1 < blen; i++) {
		if (strcmp(v[i].group, g))
			continue;
		k += (size_t)snprintf(buf + k, blen - k, "%s%.*s", k ? "; " : "", (int)v[i].len, v[i].p);
		if (k >= blen)
			k = blen - 1;
	}
}

static int same_group(const struct sline *a, size_t na, const struct sline *b, size_t nb,
		      const char *g)
{
	size_t i = 0, j = 0;
	for (;;) {
		while (i < na && strcmp(a[i].group, g))
			i++;
		while (j < nb && strcmp(b[j].group, g))
			j++;
		if (i == na || j == nb)
			return i == na && j == nb;
		if (a[i].len != b[j].len || memcmp(a[i].p, b[j].p, a[i].len))
			return 0;
		i++;
		j++;
	}
}

static int note(char ***notes, size_t *n, size_t *cap, const char *fmt, ...) PS_ATTR_PRINTF(4, 5);
static int note(char ***notes, size_t *n, size_t *cap, const char *fmt, ...)
{
	char buf[PS_PROTO_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return ps_strv_push(notes, n, cap, buf);
}

int ps_settings_merge_text(const char *dst, size_t dlen, const char *src, size_t slen,
			   struct ps_buf *out, int *changed, char ***notes, size_t *nnotes,
			   struct ps_error *err)
{
	struct sline *d = NULL, *sv = NULL;
	size_t nd = 0, ns = 0, ncap = 0;
	char **done = NULL;
	size_t ndone = 0, donecap = 0;
	int rc = PS_OK, bad = 0;
	*changed = 0;
	*notes = NULL;
	*nnotes = 0;
	ps_buf_reset(out);
	if (memchr(src, 0, slen))
		return ps_err(err, PS_ECORRUPT, "the source's settings contain NUL bytes");
	if (split_lines(dst ? dst : "", dst ? dlen : 0, &d, &nd) || split_lines(src, slen, &sv, &ns)) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	if (dlen && ps_buf_append(out, dst, dlen)) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	if (out->len && out->data[out->len - 1] != '\n' && ps_buf_append(out, "\n", 1)) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < ns && !rc; i++) {
		const char *g = sv[i].group;
		char a[400], b[400];
		int seen = 0;
		if (!g[0]) {
			bad++;
			continue;
		}
		for (size_t k = 0; k < ndone && !seen; k++)
			seen = !strcmp(done[k], g);
		if (seen)
			continue;
		if (ps_strv_push(&done, &ndone, &donecap, g)) {
			rc = ps_err(err, PS_ERROR, "out of memory");
			break;
		}
		if (!group_in(d, nd, g)) {
			for (size_t k = i; k < ns; k++)
				if (!strcmp(sv[k].group, g) &&
				    (ps_buf_append(out, sv[k].p, sv[k].len) || ps_buf_append(out, "\n", 1)))
					rc = ps_err(err, PS_ERROR, "out of memory");
			group_text(sv, ns, g, a, sizeof(a));
			*changed = 1;
			if (note(notes, nnotes, &ncap, "took %s from the source: %s", g, a))
				rc = ps_err(err, PS_ERROR, "out of memory");
		} else if (!same_group(d, nd, sv, ns, g)) {
			group_text(d, nd, g, a, sizeof(a));
			group_text(sv, ns, g, b, sizeof(b));
			if (note(notes, nnotes, &ncap, "%s differs: kept the destination's (%s), the source has %s",
				 g, a, b))
				rc = ps_err(err, PS_ERROR, "out of memory");
		}
	}
	if (!rc && bad &&
	    note(notes, nnotes, &ncap, "ignored %d invalid line(s) of the source's settings", bad))
		rc = ps_err(err, PS_ERROR, "out of memory");
done:
	if (rc) {
		ps_strv_free(*notes, *nnotes);
		*notes = NULL;
		*nnotes = 0;
	}
	ps_strv_free(done, ndone);
	ps_free(d);
	ps_free(sv);
	return rc;
}
