/*
 * agent_sync.c - a move between hosts whose stores differ (two datacenters,
 * each with its own store): the project's snapshots are synced from the old
 * host's store to the new host's store before the new host deploys, so that
 * it restores the newest snapshot and its own saves continue the same
 * history instead of forking it.
 *
 * Which stores: each host's store is its row's store URL (`host add NAME
 * --store URL`); a host without one uses whatever store its agent was
 * started with, which is taken to be the same as every other host's (the
 * single-store set-up: no sync).  Two URLs that differ as text but name one
 * store (the sync library compares the stores' ids) are not synced either.
 *
 * Who syncs (agent_ops.c):
 *   - the old host, after its last save of the project and before the
 *     handoff, still holding the project's lease with the location empty:
 *     no save can come in between (autosave and requested saves need the
 *     lease and the location), so the new store gets the very snapshot the
 *     working copy was left as.  The sync failing fails the move: the
 *     location goes back to the old host (deployed), nothing was removed.
 *   - the new host, when it takes over a move whose old host is down, from
 *     the old host's store if it answers, under its own lease, before it
 *     fences the old copy.  If that store cannot be read and the catalog
 *     names a newer snapshot than the new host's store has (the project's
 *     last_snapshot), the takeover is refused with an event: deploying the
 *     older snapshot would fork the history; the project stays where it was.
 *
 *   - the host that opens a stored project (agent_open_sync), when the
 *     catalog's snapshot summaries name another store with a newer snapshot
 *     than its own store's newest (a close in one datacenter, an open in
 *     another): under its lease, before the restore.  That store failing,
 *     the open is refused (the project stays stored) unless it was requested
 *     with --allow-older (operation option "allow-older": an event warns).
 *     The summaries name stores by id: agents whose host row has a store URL
 *     register their store under its id (agent_store_name).
 *
 * The sync runs in a thread of its own while the job's thread keeps the
 * lease (the library reports no progress through which to renew it); a lost
 * lease stops the sync at its next safe point and fails the move.  A sync
 * is idempotent and crash safe (docs/FORMAT.md, "Sync"): a killed agent
 * resumes the move, saves again (nothing new), syncs again (what is already
 * there is not sent) and hands off.
 */
#define _GNU_SOURCE
#include "agent_int.h"
#include "projstore_sync.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int agent_host_store(struct job *j, const char *name, char *url, size_t ulen, char *dc,
		     size_t dlen, struct ps_error *err)
{
	struct ps_cat_host h;
	int rc = ps_cat_host_get(j->cat, name, &h, err);
	if (rc)
		return rc;
	agent_copy(url, ulen, h.store_url);
	agent_copy(dc, dlen, h.datacenter);
	return PS_OK;
}

/* ------------------------------------------------------------ the sync thread */

struct sync_run {
	struct job *j;
	const char *src, *dst;
	const char *projects[2];
	struct ps_sync_opts o;
	volatile sig_atomic_t stop;          /* set by the job thread: lease lost */
	int paused;                          /* the test pause happened (sync thread) */
	struct ps_sync_result *r;
	struct ps_error err;
	int rc;
	pthread_mutex_t lock;                /* protects done */
	int done;
};

static void sync_log(void *ctx, int level, const char *line)
{
	struct sync_run *s = ctx;
	const char *e = getenv("PROJSTORE_AGENT_PAUSE");
	alog(s->j->a, "%s: sync: %s%s", s->j->project, level ? "warning: " : "", line);
	/* tests: PROJSTORE_AGENT_PAUSE=move-syncing:SECONDS stops the sync at
	 * its first news, with its store lock held, to be killed there (the
	 * job's thread keeps the lease meanwhile) */
	if (!s->paused && e && !strncmp(e, "move-syncing:", 13)) {
		double secs = strtod(e + 13, NULL);
		s->paused = 1;
		alog(s->j->a, "%s: pausing %.1f s at move-syncing (PROJSTORE_AGENT_PAUSE)", s->j->project,
		     secs);
		for (int64_t end = agent_mono_us() + (int64_t)(secs * 1e6);
		     agent_mono_us() < end && !s->stop;)
			usleep(50000);
	}
}

static void *sync_main(void *arg)
{
	struct sync_run *s = arg;
	ps_error_clear(&s->err);
	s->rc = ps_sync(s->src, s->dst, &s->o, &s->r, &s->err);
	pthread_mutex_lock(&s->lock);
	s->done = 1;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int sync_done(struct sync_run *s)
{
	pthread_mutex_lock(&s->lock);
	int d = s->done;
	pthread_mutex_unlock(&s->lock);
	return d;
}

static void label(char *buf, size_t len, const char *url, const char *dc)
{
	if (dc && *dc)
		snprintf(buf, len, "%.150s (%.40s)", url, dc);
	else
		snprintf(buf, len, "%.190s", url);
}

/* the names, "a, b, c" (at most a few), for messages */
static void name_list(char *buf, size_t len, char **v, size_t n)
{
	size_t k = 0;
	buf[0] = 0;
	for (size_t i = 0; i < n && i < 3; i++)
		k += (size_t)snprintf(buf + k, k < len ? len - k : 0, "%s%s", i ? ", " : "", v[i]);
	if (n > 3 && k < len)
		snprintf(buf + k, len - k, " and %zu more", n - 3);
}

/* 1 when every snapshot not copied is older than the newest one copied:
 * the destination then has the project's newest state */
static int newest_copied(const struct ps_sync_project *p)
{
	const char *newest = NULL;
	for (size_t i = 0; i < p->ncopied; i++)
		if (!newest || strcmp(p->copied[i], newest) > 0)
			newest = p->copied[i];
	if (!newest)
		return 0;
	for (size_t i = 0; i < p->nfailed; i++)
		if (strcmp(p->failed[i], newest) > 0)
			return 0;
	return 1;
}

int agent_sync_project(struct job *j, const char *src, const char *src_dc, const char *dst,
		       const char *dst_dc, const char *before, struct agent_sync_out *out,
		       struct ps_error *err)
{
	struct agent *a = j->a;
	struct sync_run *s = calloc(1, sizeof(*s));
	const struct ps_sync_project *p = NULL;
	struct ps_error e2;
	char result[PS_CAT_TEXT_MAX], sz[32], names[200];
	int64_t cat_id = 0, t0 = agent_mono_us();
	int rc, recorded = 0;
	pthread_t th;

	memset(out, 0, sizeof(*out));
	label(out->src_label, sizeof(out->src_label), src, src_dc);
	label(out->dst_label, sizeof(out->dst_label), dst, dst_dc);
	if (!s)
		return agent_err(err, PS_ERROR, "out of memory");
	s->j = j;
	s->src = src;
	s->dst = dst;
	s->projects[0] = j->project;
	s->projects[1] = NULL;
	s->o = (struct ps_sync_opts)PS_SYNC_OPTS_INIT;
	s->o.projects = s->projects;
	s->o.log = sync_log;
	s->o.cb_ctx = s;
	s->o.stop = &s->stop;
	pthread_mutex_init(&s->lock, NULL);

	job_phase(j, "syncing", 0, 0);
	alog(a, "%s: syncing its snapshots from store %s to store %s", j->project, out->src_label,
	     out->dst_label);
	ps_error_clear(&e2);
	if (ps_cat_sync_begin(j->cat, src, dst, &cat_id, &e2))
		alog(a, "%s: catalog: the sync is not recorded: %s", j->project, e2.msg);
	else
		recorded = 1;
	/* the job's thread keeps the lease while the sync runs */
	if ((rc = pthread_create(&th, NULL, sync_main, s))) {
		rc = agent_err(err, PS_ERROR, "cannot start a thread: %s", strerror(rc));
		goto record;
	}
	while (!sync_done(s)) {
		usleep(50000);
		job_renew(j);
		if (j->lease_lost && !s->stop) {
			alog(a, "%s: lease lost: stopping the sync", j->project);
			s->stop = 1;
		}
	}
	pthread_join(th, NULL);
	job_renew(j);

	if (s->r)
		for (size_t i = 0; i < s->r->nprojects; i++)
			if (!strcmp(s->r->projects[i].project, j->project))
				p = &s->r->projects[i];
	if (s->rc == PS_EINVAL && s->r && s->r->src_id[0] && !strcmp(s->r->src_id, s->r->dst_id)) {
		/* two names of one store: nothing to copy */
		alog(a, "%s: %s and %s are the same store (id %s): nothing to sync", j->project, src,
		     dst, s->r->src_id);
		snprintf(result, sizeof(result), "ok: the same store");
		rc = PS_OK;
		goto record_ok;
	}
	if (s->rc) {
		rc = agent_err(err, s->rc, "sync from store %s to store %s failed: %s", out->src_label,
			       out->dst_label, s->err.msg);
		goto record;
	}
	if (j->lease_lost) {
		rc = agent_err(err, PS_ELOCKED, "the lease on %s was lost during the sync", j->project);
		goto record;
	}
	if (!p) {
		rc = agent_err(err, PS_ERROR, "sync from store %s to store %s: no result for %s",
			       out->src_label, out->dst_label, j->project);
		goto record;
	}
	switch (p->status) {
	case PS_SYNC_OK:
		break;
	case PS_SYNC_PARTIAL:
		name_list(names, sizeof(names), p->failed, p->nfailed);
		if (newest_copied(p)) {
			job_event(j, "sync-damaged", 1,
				  "%zu older snapshot(s) of %s were not copied from store %s to store %s "
				  "(damaged in the source: %s); the newest was; repair the source with "
				  "'check --read-data --repair-from'",
				  p->nfailed, j->project, out->src_label, out->dst_label, names);
			break;
		}
		rc = agent_err(err, PS_ECORRUPT,
			       "sync from store %s to store %s could not copy snapshot(s) %s (damaged in the "
			       "source); repair it ('check --read-data --repair-from') and try again",
			       out->src_label, out->dst_label, names);
		goto record;
	case PS_SYNC_LOCKED:
		rc = agent_err(err, PS_ELOCKED, "sync to store %s: %s is locked there: %s", out->dst_label,
			       j->project, p->error ? p->error : "by another process");
		goto record;
	case PS_SYNC_STOPPED:
		rc = agent_err(err, PS_ELOCKED, "sync to store %s stopped (the lease was lost)",
			       out->dst_label);
		goto record;
	default:
		rc = agent_err(err, PS_ERROR, "sync from store %s to store %s failed: %s", out->src_label,
			       out->dst_label, p->error ? p->error : "unknown error");
		goto record;
	}
	out->synced = 1;
	out->snapshots = p->ncopied;
	out->bytes = p->bytes;
	ps_format_size(p->bytes, sz, sizeof(sz));
	if (p->conflict && s->r->nconflicts >= (size_t)p->conflict) {
		const struct ps_sync_conflict *k = &s->r->conflicts[p->conflict - 1];
		job_event(j, "sync-conflict", 1,
			  "store %s had %zu snapshot(s) of %s that store %s lacks (saved there since %s); "
			  "both kept, the newest is %s",
			  out->dst_label, k->ndst_only, j->project, out->src_label,
			  k->base[0] ? k->base : "the start", k->latest[0] ? k->latest : "-");
	}
	job_event(j, "synced", 0,
		  "synced %zu snapshot(s) (%" PRIu64 " objects, %s) from store %s to store %s before %s "
		  "in %.1f s; it has all %" PRIu64 " of the source's",
		  p->ncopied, p->objects, sz, out->src_label, out->dst_label, before,
		  (double)(agent_mono_us() - t0) / 1e6, p->src_snapshots);
	job_phase(j, "synced", (int64_t)p->bytes, (int64_t)p->bytes);
	snprintf(result, sizeof(result), "%s", p->status == PS_SYNC_OK ? "ok" : "partial");
	rc = PS_OK;
record_ok:
	if (recorded) {
		ps_error_clear(&e2);
		if (ps_cat_sync_finish(j->cat, cat_id, result, p ? (int64_t)p->bytes : 0,
				       p ? (int64_t)p->objects : 0, p ? (int64_t)p->ncopied : 0, &e2))
			alog(a, "%s: catalog: the sync was not recorded: %s", j->project, e2.msg);
	}
	goto done;
record:
	if (recorded) {
		snprintf(result, sizeof(result), "failed: %.400s", err->msg);
		ps_error_clear(&e2);
		if (ps_cat_sync_finish(j->cat, cat_id, result, p ? (int64_t)p->bytes : 0,
				       p ? (int64_t)p->objects : 0, p ? (int64_t)p->ncopied : 0, &e2))
			alog(a, "%s: catalog: the sync was not recorded: %s", j->project, e2.msg);
	}
done:
	ps_sync_result_free(s->r);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return rc;
}

/* ------------------------------------------------------------ open from the newest store */

void agent_store_name(struct job *j, char *name, size_t len)
{
	struct agent *a = j->a;
	struct ps_cat_host h;
	struct ps_cat_store st;
	struct ps_error err;
	int known;
	name[0] = 0;
	ps_error_clear(&err);
	if (!a->store_id[0] || ps_cat_host_get(j->cat, a->host, &h, &err) || !h.store_url[0])
		return; /* one store for every host: the summaries stay "default" */
	agent_copy(name, len, a->store_id);
	pthread_mutex_lock(&a->lock);
	known = a->store_registered;
	pthread_mutex_unlock(&a->lock);
	if (known)
		return;
	memset(&st, 0, sizeof(st));
	agent_copy(st.name, sizeof(st.name), a->store_id);
	agent_copy(st.url, sizeof(st.url), h.store_url);
	agent_copy(st.datacenter, sizeof(st.datacenter), h.datacenter);
	if (ps_cat_store_add(j->cat, &st, &err)) {
		alog(a, "catalog: cannot register store %s (%s): %s", st.name, st.url, err.msg);
		return;
	}
	alog(a, "catalog: store %s registered as %s (%s)", h.store_url, st.name,
	     h.datacenter[0] ? h.datacenter : "no datacenter");
	pthread_mutex_lock(&a->lock);
	a->store_registered = 1;
	pthread_mutex_unlock(&a->lock);
}

int agent_open_sync(struct job *j, int allow_older, char *why, size_t wl)
{
	struct agent *a = j->a;
	struct ps_snapshot_info *v = NULL;
	struct ps_cat_snapshot *rows = NULL;
	struct ps_cat_store *st = NULL;
	size_t n = 0, nrows = 0, nst = 0;
	const struct ps_cat_snapshot *best = NULL;
	const struct ps_cat_store *from = NULL;
	struct agent_sync_out so;
	struct ps_error err, e2;
	char mine[PS_SNAPNAME_MAX + 1] = "", myname[PS_CAT_ID_MAX + 1], url[PS_CAT_TEXT_MAX],
		mydc[PS_CAT_ID_MAX + 1];
	int rc;

	why[0] = 0;
	ps_error_clear(&err);
	agent_store_name(j, myname, sizeof(myname));
	if (ps_snapshot_list(j->store, j->project, &v, &n, &err) == PS_OK && n)
		agent_copy(mine, sizeof(mine), v[n - 1].name);
	free(v);
	/* the facts: the newest snapshot of the project in each store the
	 * catalog has heard of (snapshot names sort by time) */
	if (ps_cat_snapshot_list(j->cat, j->project, &rows, &nrows, &err) ||
	    ps_cat_store_list(j->cat, &st, &nst, &err)) {
		alog(a, "%s: cannot read the catalog's snapshot summaries (%s): deploying from this "
			"store",
		     j->project, err.msg);
		rc = PS_OK;
		goto out;
	}
	for (size_t i = 0; i < nrows; i++) {
		const struct ps_cat_store *s = NULL;
		if (!strcmp(rows[i].store, a->store_id) || strcmp(rows[i].name, mine) <= 0)
			continue;
		for (size_t k = 0; k < nst && !s; k++)
			if (!strcmp(st[k].name, rows[i].store))
				s = &st[k];
		if (!s || !s->url[0]) /* "default": written without a store name */
			continue;
		if (!best || strcmp(rows[i].name, best->name) > 0) {
			best = &rows[i];
			from = s;
		}
	}
	if (!best) {
		rc = PS_OK;
		goto out;
	}
	alog(a, "%s: store %s (%s) has snapshot %s, newer than this store's newest (%s)", j->project,
	     from->url, from->name, best->name, mine[0] ? mine : "none");
	agent_copy(url, sizeof(url), from->url);
	agent_copy(mydc, sizeof(mydc), "");
	{
		struct ps_cat_host h;
		if (ps_cat_host_get(j->cat, a->host, &h, &e2) == PS_OK)
			agent_copy(mydc, sizeof(mydc), h.datacenter);
	}
	ps_error_clear(&err);
	rc = agent_sync_project(j, url, from->datacenter, a->store, mydc, "deploying it", &so, &err);
	/* the sync wrote into this store through handles of its own */
	ps_error_clear(&e2);
	if (ps_store_refresh(j->store, &e2))
		alog(a, "%s: cannot refresh the store handle: %s", j->project, e2.msg);
	if (rc == PS_OK) {
		/* this store's summary (and the project's newest) as they are now */
		ps_error_clear(&e2);
		if (ps_cat_refresh_project(j->cat, j->store, myname[0] ? myname : NULL, j->project,
					   &e2))
			alog(a, "%s: cannot refresh the catalog's facts: %s", j->project, e2.msg);
		goto out;
	}
	if (allow_older) {
		job_event(j, "open-older", 1,
			  "deploying %s from this store's newest snapshot (%s) on request (--allow-older), "
			  "although store %s has a newer one (%s), which cannot be read; changes saved "
			  "from here on fork the history: %s",
			  j->project, mine[0] ? mine : "none: a new empty home", so.src_label, best->name,
			  err.msg);
		rc = PS_OK;
		goto out;
	}
	job_event(j, "open-refused", 1,
		  "not deployed on %s: store %s has a newer snapshot of %s (%s) than this store's "
		  "newest (%s) and cannot be read; the project stays stored; open it again once that "
		  "store answers, or with --allow-older to deploy the older one: %s",
		  a->host, so.src_label, j->project, best->name, mine[0] ? mine : "none", err.msg);
	snprintf(why, wl,
		 "open of %s refused: its newest snapshot %s is in store %s, which cannot be read; the "
		 "project stays stored ('open --allow-older' deploys this store's newest, %s): %s",
		 j->project, best->name, so.src_label, mine[0] ? mine : "none", err.msg);
	rc = rc ? rc : PS_ERROR;
out:
	free(rows);
	free(st);
	return rc;
}
