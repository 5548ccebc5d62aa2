/*
 * migrate_import.c - projstore migrate: what a worker process does (the
 * parent, cmd_migrate.c, lists the projects, hands them out and reports).
 *
 * One project (import_start, then import_after_save or the batch's commit):
 *   1. refused while the catalog has it deployed, busy or leased to someone;
 *   2. the marker CACHE_DIR/migrate/<store id>/<project> of the last import
 *      names the source, the options, the stat digest of the tree it saved
 *      (ps_stat_digest: every entry's path, type, mode, owner, size, times,
 *      inode and device) and the snapshot it made;
 *   3. with such a marker, a stat walk of the source (ps_stat_digest). Same
 *      source, options and digest, nothing skipped then or now, and the
 *      project's newest snapshot still that one: the project is unchanged and
 *      nothing else is done (the cost of a stat walk and two small reads).
 *      Without a marker there is nothing to compare, and no walk: the save's
 *      own walk gives the digest for the new marker;
 *   4. otherwise: catalog row, lease and `maintenance`, quota, ps_save with
 *      owners rewritten, skip_unchanged (a tree equal to the newest snapshot
 *      publishes nothing) and the stat digest of what it saw, marker
 *      written, the catalog's facts, result and event, `maintenance` off and
 *      `migrated` on, lease released.
 *
 * Group commit.  A worker's saves join a batch (ps_save with opts.batch):
 * each does all its work and keeps its project lock, but nothing is durable
 * or published until the batch's commit, which fsyncs one pack and one
 * index segment for all of them and then publishes their refs.  After it
 * saves a project the worker tells the parent ("D <n>"), takes the next one,
 * and commits when the batch is full (--batch), 2 s old, or no project comes
 * within 100 ms; only then does each project get its marker and step 4's
 * catalog end (one transaction for the batch), and its result ("R <n> ...").
 * A small project's save so costs the fsyncs of its ref alone instead of
 * also those of a pack and a segment.
 *
 * The marker is written (temp file + fsync + rename) after the save is
 * published and before the catalog's end (import_marker says why).  A kill
 * before the marker leaves the old marker (or none) and the project in
 * maintenance; the rerun saves again, and skip_unchanged
 * keeps that from adding a duplicate snapshot when the interrupted run had
 * published one.  A marker whose snapshot is no longer the newest while the
 * project is not in maintenance means the project was saved by someone else
 * since it was migrated (deployed, changed, closed): it is not overwritten
 * with the old source; the project is reported as failed.
 */
#define _GNU_SOURCE
#include "migrate.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

/* ------------------------------------------------------------ markers */

static void marker_path(const struct mig *m, const char *project, char *buf, size_t len)
{
	snprintf(buf, len, "%s/migrate/%s/%s", m->cache_dir, m->store_id, project);
}

static void marker_read(const struct mig *m, const char *project, struct marker *mk)
{
	char path[PATH_MAX], line[512];
	FILE *f;
	int version = 0;
	memset(mk, 0, sizeof(*mk));
	marker_path(m, project, path, sizeof(path));
	if (!(f = fopen(path, "re")))
		return;
	while (fgets(line, sizeof(line), f)) {
		char k[32], v[200];
		unsigned long long u;
		if (sscanf(line, "%31s %199s", k, v) != 2)
			continue;
		if (!strcmp(k, "projstore-migrate"))
			version = atoi(v);
		else if (!strcmp(k, "state"))
			snprintf(mk->state, sizeof(mk->state), "%s", v);
		else if (!strcmp(k, "source"))
			snprintf(mk->source, sizeof(mk->source), "%s", v);
		else if (!strcmp(k, "options"))
			snprintf(mk->options, sizeof(mk->options), "%s", v);
		else if (!strcmp(k, "digest"))
			snprintf(mk->digest, sizeof(mk->digest), "%s", v);
		else if (!strcmp(k, "snapshot"))
			snprintf(mk->snapshot, sizeof(mk->snapshot), "%s", strcmp(v, "-") ? v : "");
		else if (!strcmp(k, "errors") && sscanf(v, "%llu", &u) == 1)
			mk->errors = u;
	}
	fclose(f);
	mk->valid = version == MIG_MARKER_VERSION && !strcmp(mk->state, "done");
}

static int marker_text(const struct marker *mk, char *text, size_t len)
{
	return snprintf(text, len,
			"projstore-migrate %d\nstate %s\nsource %s\noptions %s\ndigest %s\nsnapshot %s\n"
			"errors %llu\n",
			MIG_MARKER_VERSION, mk->state, mk->source, mk->options, mk->digest,
			mk->snapshot[0] ? mk->snapshot : "-", (unsigned long long)mk->errors);
}

/* The markers of n projects as one group: each to a temp file, all fsynced,
 * renamed into place, and the directory fsynced once (the first fsync's
 * journal commit carries the others). ok[i] = 1 for each one written; a
 * failure's message goes to msgs[i] (msglen bytes). */
static void marker_write_many(const struct mig *m, size_t n, const char *const *projects,
			      const struct marker *mk, int *ok, char (*msgs)[PS_CAT_TEXT_MAX],
			      size_t msglen)
{
	char dir[PATH_MAX], text[1024];
	char (*path)[PATH_MAX] = calloc(n ? n : 1, sizeof(*path));
	char (*tmp)[PATH_MAX + 32] = calloc(n ? n : 1, sizeof(*tmp));
	int *fd = calloc(n ? n : 1, sizeof(*fd));
	int dfd;
	for (size_t i = 0; i < n; i++)
		ok[i] = 0;
	if (!path || !tmp || !fd) {
		for (size_t i = 0; i < n; i++)
			snprintf(msgs[i], msglen, "out of memory");
		goto done;
	}
	snprintf(dir, sizeof(dir), "%s/migrate/%s", m->cache_dir, m->store_id);
	if (mkdirs(dir, 0700)) {
		for (size_t i = 0; i < n; i++)
			snprintf(msgs[i], msglen, "cannot create '%s': %s", dir, strerror(errno));
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		int len = marker_text(&mk[i], text, sizeof(text));
		marker_path(m, projects[i], path[i], sizeof(path[i]));
		snprintf(tmp[i], sizeof(tmp[i]), "%s.tmp.%ld", path[i], (long)getpid());
		fd[i] = open(tmp[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd[i] < 0 || write(fd[i], text, (size_t)len) != len) {
			snprintf(msgs[i], msglen, "cannot write '%s': %s", tmp[i], strerror(errno));
			if (fd[i] >= 0)
				close(fd[i]);
			fd[i] = -1;
			unlink(tmp[i]);
			continue;
		}
		ok[i] = 1;
	}
	/* their writeback started together: the first fsync's journal commit
	 * carries the group */
	for (size_t i = 0; i < n; i++)
		if (fd[i] >= 0)
			(void)sync_file_range(fd[i], 0, 0, SYNC_FILE_RANGE_WRITE);
	for (size_t i = 0; i < n; i++) {
		if (fd[i] < 0)
			continue;
		if (fsync(fd[i]) || close(fd[i])) {
			snprintf(msgs[i], msglen, "cannot write '%s': %s", tmp[i], strerror(errno));
			ok[i] = 0;
		}
		fd[i] = -1;
		if (ok[i] && rename(tmp[i], path[i])) {
			snprintf(msgs[i], msglen, "cannot rename '%s': %s", tmp[i], strerror(errno));
			ok[i] = 0;
		}
		if (!ok[i])
			unlink(tmp[i]);
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
done:
	free(path);
	free(tmp);
	free(fd);
}

/* ------------------------------------------------------------ one project */

struct wctx {
	struct mig *m;
	struct ps_catalog *cat;
	struct ps_store *store;     /* kept for the worker's life: loading the index is
				     * the largest fixed cost of a small project's save;
				     * ps_save brings it up to date (ps_store_refresh) */
	FILE *out;                  /* result pipe */
	size_t idx;
	int64_t last_progress;
	json_t *skipped;
	uint64_t nskipped;
	uint64_t processed;         /* bytes the save went through so far */
	struct ps_save_batch *batch; /* saves waiting for one group commit */
	struct imp **held;          /* their imports, in batch order */
	size_t nheld;
	int64_t batch_t0;           /* when the first of them started */
	int in_flush, drop_store;
};

static void w_progress(void *ctx, const char *phase, uint64_t fd, uint64_t ft, uint64_t bd,
		       uint64_t bt)
{
	struct wctx *w = ctx;
	int64_t now = mono_ms();
	(void)phase;
	(void)ft;
	(void)bt;
	w->processed = bd;
	if (now - w->last_progress < 250)
		return;
	w->last_progress = now;
	fprintf(w->out, "P %zu %llu %llu\n", w->idx, (unsigned long long)fd, (unsigned long long)bd);
	fflush(w->out);
}

static void w_warn(void *ctx, const char *path, const char *msg)
{
	struct wctx *w = ctx;
	w->nskipped++;
	if (json_array_size(w->skipped) < MIG_SKIPPED_LIST)
		json_array_append_new(w->skipped, json_pack("{s:o, s:s}", "path",
							     cli_json_bytes(path, strlen(path)), "error",
							     msg));
}

static const char *result_text(const struct ps_snapshot_info *si, char *buf, size_t len)
{
	if (si->errors && si->over_quota)
		snprintf(buf, len, "partial: %llu entries skipped; over quota",
			 (unsigned long long)si->errors);
	else if (si->errors)
		snprintf(buf, len, "partial: %llu entries skipped", (unsigned long long)si->errors);
	else
		snprintf(buf, len, "%s", si->over_quota ? "over quota" : "ok");
	return buf;
}

/* A worker's own catalog handle (the catalog cli_open_catalog opens, with
 * the message kept for the project's result instead of printed). */
static int open_catalog(struct cli *cli, struct ps_catalog **out, struct ps_error *err)
{
	const char *spec = cli->catalog && *cli->catalog ? cli->catalog : getenv("PROJSTORE_CATALOG");
	return ps_catalog_open(out, spec && *spec ? spec : NULL, cli->store, err);
}

/* The options that shape the saved tree besides the source: owners and the
 * project's stored excludes. */
static void options_digest(const struct mig *m, struct ps_store *s, const char *project,
			   char *out)
{
	char **ex = NULL, *buf;
	size_t nex = 0, len = 0, cap = 128;
	struct ps_error e;
	buf = malloc(cap);
	if (!buf) {
		out[0] = 0;
		return;
	}
	len = (size_t)snprintf(buf, cap, "uid %ld gid %ld", m->uid, m->gid);
	if (ps_excludes_get(s, project, &ex, &nex, &e) == PS_OK) {
		for (size_t i = 0; i < nex; i++) {
			size_t l = strlen(ex[i]) + 1;
			if (len + l + 1 > cap) {
				char *nb = realloc(buf, cap = (len + l + 1) * 2);
				if (!nb)
					break;
				buf = nb;
			}
			memcpy(buf + len + 1, ex[i], l);
			len += l;
		}
		ps_strv_free(ex, nex);
	}
	sha256_hex(buf, len, out);
	free(buf);
}

/* What the catalog gets at the end of an import: the store's facts
 * (ps_stats: sizes and ratios), the save result and the event. */
struct cat_end {
	struct ps_cat_store_facts f;
	struct ps_cat_import im;
	char res[PS_CAT_TEXT_MAX], detail[PS_CAT_TEXT_MAX];
};

static int catalog_end_prepare(struct wctx *w, struct ps_store *s, const struct proj *p,
			       size_t nprev, const struct ps_snapshot_info *si, struct cat_end *ce,
			       struct ps_error *err)
{
	struct ps_cat_store_facts f0 = PS_CAT_STORE_FACTS_INIT;
	struct ps_stats st;
	char size[32];
	char *e;
	int rc;
	memset(&st, 0, sizeof(st));
	rc = ps_stats(s, p->id, &st, err);
	if (rc)
		return rc;
	ce->f = f0;
	ce->f.quota_bytes = (int64_t)st.quota_bytes;
	ce->f.logical_bytes = (int64_t)si->logical_bytes;
	ce->f.stored_bytes = (int64_t)st.stored_bytes;
	ce->f.compressratio = st.compressratio > 0 ? st.compressratio : 1.0;
	ce->f.dedupratio = st.dedupratio > 0 ? st.dedupratio : 1.0;
	ce->f.snapshots = (int64_t)(nprev + (si->unchanged ? 0 : 1));
	ce->f.last_snapshot = si->name;
	ce->f.last_snapshot_at = si->time_ns / 1000;
	e = escape_name(p->dir);
	ps_format_size(si->logical_bytes, size, sizeof(size));
	if (si->unchanged)
		snprintf(ce->detail, sizeof(ce->detail), "from '%.200s': unchanged since %s", e,
			 si->name);
	else
		snprintf(ce->detail, sizeof(ce->detail), "from '%.200s' as %s: %llu files, %s%s", e,
			 si->name, (unsigned long long)si->files, size,
			 si->errors ? ", entries skipped" : "");
	free(e);
	memset(&ce->im, 0, sizeof(ce->im));
	ce->im.facts = &ce->f;
	ce->im.files = (int64_t)si->files;
	ce->im.result = result_text(si, ce->res, sizeof(ce->res));
	ce->im.event_kind = "migrated";
	ce->im.event_detail = ce->detail;
	ce->im.event_error = si->errors != 0;
	ce->im.actor = w->m->actor;
	return PS_OK;
}

/* The end of an import in the catalog, in one transaction. */
static int catalog_end(struct wctx *w, struct ps_store *s, const struct proj *p, size_t nprev,
		       const struct ps_snapshot_info *si, struct ps_error *err)
{
	struct cat_end ce;
	int rc = catalog_end_prepare(w, s, p, nprev, si, &ce, err);
	if (rc)
		return rc;
	return ps_cat_migrate_end(w->cat, p->id, w->m->lease_owner, &ce.im, err);
}

/* One import in work. A save that joined the worker's batch waits here for
 * the batch's commit before its catalog end and marker (import_finish). */
struct imp {
	struct proj *p;
	size_t idx;
	json_t *r;
	struct ps_snapshot_info si;
	struct ps_snapshot_info *snaps;
	size_t nsnaps;
	char digest[65], options[65], source[65];
	char *dir, *real, *reason;
	const char *status;
	int in_catalog, begun, saved;
	int64_t t0;
	json_t *skipped;            /* the save's skipped entries (w->skipped) */
	uint64_t nskipped, processed;
};

static void imp_free(struct imp *im)
{
	free(im->snaps);
	free(im->real);
	free(im->dir);
	free(im->reason);
	json_decref(im->r);
	json_decref(im->skipped);
	free(im);
}

/* After the save is durable and published: the marker, then the catalog's
 * end of the import. The marker first: a kill between the two leaves a
 * marker naming the new snapshot and the project in maintenance, which the
 * next run finishes as unchanged (catalog end only); the other order would
 * leave the old marker with the project out of maintenance, which looks
 * like a snapshot saved by someone else. */
static void marker_of(const struct imp *im, struct marker *nm)
{
	memset(nm, 0, sizeof(*nm));
	snprintf(nm->state, sizeof(nm->state), "done");
	memcpy(nm->source, im->source, sizeof(im->source));
	memcpy(nm->options, im->options, sizeof(im->options));
	memcpy(nm->digest, im->digest, sizeof(im->digest));
	snprintf(nm->snapshot, sizeof(nm->snapshot), "%s", im->si.name);
	nm->errors = im->si.errors;
}

/* The markers of n saved imports, as one group (marker_write_many). */
static void import_markers(struct wctx *w, struct imp **ims, size_t n)
{
	struct marker *mk = calloc(n ? n : 1, sizeof(*mk));
	const char **ids = calloc(n ? n : 1, sizeof(*ids));
	int *ok = calloc(n ? n : 1, sizeof(*ok));
	char (*msgs)[PS_CAT_TEXT_MAX] = calloc(n ? n : 1, sizeof(*msgs));
	if (!mk || !ids || !ok || !msgs)
		_exit(EXIT_FAIL);
	for (size_t i = 0; i < n; i++) {
		ims[i]->saved = 1;
		marker_of(ims[i], &mk[i]);
		ids[i] = ims[i]->p->id;
	}
	marker_write_many(w->m, n, ids, mk, ok, msgs, sizeof(msgs[0]));
	for (size_t i = 0; i < n; i++)
		if (!ok[i])
			ims[i]->reason = xasprintf("saved as %s, but %s", ims[i]->si.name, msgs[i]);
	free(mk);
	free(ids);
	free(ok);
	free(msgs);
}

static int import_marker(struct wctx *w, struct imp *im)
{
	import_markers(w, &im, 1);
	return im->reason ? -1 : 0;
}

static void import_catalog_end(struct wctx *w, struct imp *im, int cat_done)
{
	struct ps_error err;
	if (!cat_done && !w->cat && open_catalog(w->m->cli, &w->cat, &err)) {
		w->cat = NULL;
		im->reason = xasprintf("saved as %s, but catalog: %s", im->si.name, err.msg);
		return;
	}
	if (!cat_done && catalog_end(w, w->store, im->p, im->nsnaps, &im->si, &err)) {
		im->reason = xasprintf("saved as %s, but catalog: %s", im->si.name, err.msg);
		return;
	}
	im->status = im->si.unchanged ? "unchanged" : "imported";
}

static void import_after_save(struct wctx *w, struct imp *im)
{
	if (!import_marker(w, im))
		import_catalog_end(w, im, 0);
}

static void flush_batch(struct wctx *w);

/* The end of an import, whatever happened: the catalog is told of a
 * failure, and the result object is made (and returned). */
static json_t *import_result(struct wctx *w, struct imp *im)
{
	struct mig *m = w->m;
	struct proj *p = im->p;
	struct ps_error e2;
	json_t *r = im->r;
	/* Before the begin, and after a save that failed (it published
	 * nothing), maintenance is cleared; once a save published, it stays
	 * until a rerun finishes the project: it tells that run that the
	 * newest snapshot is this import's. Before the begin it is not ours
	 * to clear unless we hold the lease (a killed run of ours). */
	if (im->reason && w->cat && p->id[0] &&
	    ps_cat_migrate_fail(w->cat, p->id, m->lease_owner, m->actor, im->reason,
				im->begun ? im->saved : 1, &e2)) {
		/* the catalog itself may be what failed (a PostgreSQL server
		 * restarted): the next project opens a new connection */
		ps_catalog_close(w->cat);
		w->cat = NULL;
	}
	json_object_set_new(r, "status", json_string(im->reason ? "failed" : im->status));
	if (im->reason) {
		json_object_set_new(r, "reason", json_string(im->reason));
		if (!json_object_get(r, "reason"))   /* not UTF-8 */
			json_object_set_new(r, "reason", cli_json_bytes(im->reason, strlen(im->reason)));
	}
	if (!im->reason) {
		struct ps_snapshot_info *si = &im->si;
		json_object_set_new(r, "snapshot", json_string(si->name));
		json_object_set_new(r, "files", json_integer((json_int_t)si->files));
		json_object_set_new(r, "logical_bytes", json_integer((json_int_t)si->logical_bytes));
		json_object_set_new(r, "new_bytes", json_integer((json_int_t)si->new_bytes));
		json_object_set_new(r, "quota_bytes", si->quota_bytes
						       ? json_integer((json_int_t)si->quota_bytes)
						       : json_null());
		json_object_set_new(r, "over_quota", json_boolean(si->over_quota));
	}
	json_object_set_new(r, "processed_bytes", json_integer((json_int_t)im->processed));
	json_object_set_new(r, "errors", json_integer((json_int_t)im->nskipped));
	json_object_set_new(r, "skipped", im->skipped ? im->skipped : json_array());
	im->skipped = NULL;
	json_object_set_new(r, "duration_ms", json_integer((json_int_t)(mono_ms() - im->t0)));
	if (im->reason && w->store) {
		/* a failure may leave the handle with unflushed state: start
		 * afresh, after the batch's saves are published */
		if (w->in_flush) {
			w->drop_store = 1;
		} else {
			flush_batch(w);
			ps_store_free(w->store);
			w->store = NULL;
		}
	}
	im->r = NULL;
	return r;
}

/* Imports project p up to its save. Returns 1 when the save joined the
 * worker's batch (the import goes on in import_finish after the commit),
 * else 0: the import is over (import_result makes its result). */
static int import_start(struct wctx *w, struct imp *im)
{
	struct mig *m = w->m;
	struct proj *p = im->p;
	struct ps_cat_project cp;
	struct ps_store *s = NULL;
	struct ps_save_opts o = PS_SAVE_OPTS_INIT;
	struct ps_error err, e2;
	struct marker mk;
	struct ps_stat_digest sd;
	uint64_t quota = 0;
	size_t before;
	int rc;

	ps_error_clear(&err);
	im->status = "failed";
	im->r = json_object();
	im->t0 = mono_ms();
	im->dir = xasprintf("%s/%s", m->src_real, p->dir);
	w->skipped = json_array();
	w->nskipped = 0;
	w->processed = 0;
	json_object_set_new(im->r, "dir", cli_json_bytes(p->dir, strlen(p->dir)));
	json_object_set_new(im->r, "project", json_string(p->id));

	if (!w->cat && open_catalog(m->cli, &w->cat, &err)) {
		w->cat = NULL;
		im->reason = xasprintf("catalog: %s", err.msg);
		goto done;
	}
	/* 1. not while it lives somewhere */
	rc = ps_cat_project_get(w->cat, p->id, &cp, &err);
	if (rc == PS_OK) {
		im->in_catalog = 1;
		if (cp.host[0]) {
			im->reason = xasprintf("deployed on host '%s' (close it before migrating it "
					       "again)", cp.host);
			goto done;
		}
		if (strcmp(cp.status, "stored")) {
			im->reason = xasprintf("its status is '%s' (an open, close or move is in "
					       "progress)", cp.status);
			goto done;
		}
		if (cp.lease_owner[0] && strcmp(cp.lease_owner, m->lease_owner) &&
		    cp.lease_expires > ps_cat_now()) {
			im->reason = xasprintf("leased by '%s'", cp.lease_owner);
			goto done;
		}
	} else if (rc != PS_ENOTFOUND) {
		im->reason = xasprintf("catalog: %s", err.msg);
		goto done;
	}
	im->real = realpath(im->dir, NULL);
	if (!im->real) {
		im->reason = xasprintf("cannot open the directory: %s", strerror(errno));
		goto done;
	}
	sha256_hex(im->real, strlen(im->real), im->source);
	if (!w->store && (rc = ps_store_open(&w->store, m->cli->store, &err))) {
		w->store = NULL;
		im->reason = xasprintf("%s", err.msg);
		goto done;
	}
	s = w->store;
	options_digest(m, s, p->id, im->options);
	if ((rc = ps_snapshot_list(s, p->id, &im->snaps, &im->nsnaps, &err)) ||
	    (rc = ps_quota_get(s, p->id, &quota, &err))) {
		im->reason = xasprintf("%s", err.msg);
		goto done;
	}
	/* 2. the marker of the last import */
	marker_read(m, p->id, &mk);
	if (mk.valid && im->nsnaps && strcmp(mk.snapshot, im->snaps[im->nsnaps - 1].name) &&
	    !(im->in_catalog && cp.maintenance)) {
		im->reason = xasprintf("saved since it was migrated (newest snapshot %s from '%s', "
				       "migrated as %s): not imported again",
				       im->snaps[im->nsnaps - 1].name, im->snaps[im->nsnaps - 1].origin,
				       mk.snapshot[0] ? mk.snapshot : "none");
		goto done;
	}
	/* 3. with a marker to compare with, the stat walk */
	memset(&sd, 0, sizeof(sd));
	if (mk.valid && im->nsnaps && !mk.errors && !strcmp(mk.source, im->source) &&
	    !strcmp(mk.options, im->options)) {
		struct ps_save_opts wo = PS_SAVE_OPTS_INIT;
		if ((rc = ps_stat_digest(s, p->id, im->dir, &wo, &sd, &err))) {
			im->reason = xasprintf("%s", err.msg);
			goto done;
		}
		hex(sd.digest, 32, im->digest);
	}
	if (mk.valid && im->nsnaps && !mk.errors && sd.entries && !sd.errors &&
	    !strcmp(mk.source, im->source) && !strcmp(mk.options, im->options) &&
	    !strcmp(mk.digest, im->digest)) {
		im->si = im->snaps[im->nsnaps - 1];
		if (m->set_quota && quota != m->quota) {
			if ((rc = ps_quota_set(s, p->id, m->quota, &err))) {
				im->reason = xasprintf("%s", err.msg);
				goto done;
			}
			quota = m->quota;
			struct ps_cat_store_facts f = PS_CAT_STORE_FACTS_INIT;
			f.quota_bytes = (int64_t)quota;
			ps_cat_project_set_facts(w->cat, p->id, &f, &e2);
		}
		im->si.quota_bytes = quota;
		im->si.over_quota = quota && im->si.logical_bytes > quota;
		im->si.new_objects = im->si.new_raw_bytes = im->si.new_bytes = 0;
		im->si.errors = 0;
		im->status = "unchanged";
		if (im->in_catalog && cp.migrated && !cp.maintenance)
			goto done;
		/* the catalog lost track of it (new or reset catalog, or a run
		 * killed after the marker): the same two steps as an import */
		if ((rc = ps_cat_migrate_begin(w->cat, p->id, m->lease_owner, MIG_LEASE_US, NULL,
					       &err))) {
			im->status = "failed";
			im->reason = xasprintf("%s", err.msg);
			goto done;
		}
		im->begun = im->saved = 1;
		if ((rc = catalog_end(w, s, p, im->nsnaps, &im->si, &err))) {
			im->status = "failed";
			im->reason = xasprintf("catalog: %s", err.msg);
		}
		goto done;
	}
	/* 4. import */
	if ((rc = ps_cat_migrate_begin(w->cat, p->id, m->lease_owner, MIG_LEASE_US, NULL, &err))) {
		im->reason = xasprintf("%s", err.msg);
		goto done;
	}
	im->begun = 1;
	if (m->set_quota && quota != m->quota && (rc = ps_quota_set(s, p->id, m->quota, &err))) {
		im->reason = xasprintf("%s", err.msg);
		goto done;
	}
	o.uid = m->uid;
	o.gid = m->gid;
	o.threads = m->threads;
	o.cache_dir = m->cache_dir;
	o.lock_timeout = 60;
	o.skip_unchanged = 1;
	o.progress = w_progress;
	o.warn = w_warn;
	o.cb_ctx = w;
	o.batch = w->batch;
	o.stat_digest = &sd;
	before = ps_save_batch_count(w->batch);
	rc = ps_save(s, p->id, im->dir, &o, &im->si, &err);
	if (rc) {
		im->reason = xasprintf("%s", err.msg);
		goto done;
	}
	/* the marker gets the digest of what the save saw */
	hex(sd.digest, 32, im->digest);
	if (w->batch && ps_save_batch_count(w->batch) > before) {
		im->skipped = w->skipped;
		im->nskipped = w->nskipped;
		im->processed = w->processed;
		w->skipped = NULL;
		return 1;
	}
	import_after_save(w, im);
done:
	im->skipped = w->skipped;
	im->nskipped = w->nskipped;
	im->processed = w->processed;
	w->skipped = NULL;
	return 0;
}

static void emit_result(struct wctx *w, size_t idx, json_t *r)
{
	char *text = json_dumps(r, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(r);
	if (!text)
		_exit(EXIT_FAIL);
	fprintf(w->out, "R %zu %s\n", idx, text);
	free(text);
	if (fflush(w->out))
		_exit(EXIT_FAIL);
}

/* Tests stop a worker at a named point with PROJSTORE_MIGRATE_PAUSE=POINT:SECONDS
 * (and kill it there): "batched" (a save joined a batch that now holds at
 * least two, nothing of them published), "committed" (a batch was published,
 * before the markers and catalog ends of its projects), "marked" (markers
 * written, before the catalog ends). */
static void test_pause(const char *point)
{
	const char *e = getenv("PROJSTORE_MIGRATE_PAUSE");
	size_t n = strlen(point);
	if (!e || strncmp(e, point, n) || e[n] != ':')
		return;
	fprintf(stderr, "migrate: pausing at %s (PROJSTORE_MIGRATE_PAUSE)\n", point);
	fflush(stderr);
	usleep((useconds_t)(strtod(e + n + 1, NULL) * 1e6));
}

/* Commits the worker's batch and finishes its imports: catalog end and
 * marker for each save the commit published, a failure for the others. */
static void flush_batch(struct wctx *w)
{
	struct mig *m = w->m;
	struct imp **held = w->held;
	size_t n = w->nheld;
	struct cat_end *ends;
	struct ps_cat_import *imps;
	const char **ids;
	char *cat_done;
	int *res;
	struct ps_error err;
	int rc;
	if (!n)
		return;
	w->held = NULL;
	w->nheld = 0;
	res = calloc(n, sizeof(*res));
	if (!res)
		_exit(EXIT_FAIL);
	ps_error_clear(&err);
	rc = ps_save_batch_commit(w->store, w->batch, res, &err);
	test_pause("committed");
	w->in_flush = 1;
	/* the catalog ends of the published ones in one transaction (else one
	 * by one, so that one project's trouble stays its own) */
	ends = calloc(n, sizeof(*ends));
	imps = calloc(n, sizeof(*imps));
	ids = calloc(n, sizeof(*ids));
	cat_done = calloc(n, sizeof(*cat_done));
	{
		struct imp **saved = calloc(n, sizeof(*saved));
		size_t k = 0;
		if (!saved)
			_exit(EXIT_FAIL);
		for (size_t i = 0; i < n; i++)
			if (!res[i])
				saved[k++] = held[i];
		import_markers(w, saved, k);
		free(saved);
	}
	test_pause("marked");
	if (ends && imps && ids && cat_done && w->cat) {
		size_t k = 0;
		struct ps_error e2;
		for (size_t i = 0; i < n; i++) {
			if (res[i] || held[i]->reason ||
			    catalog_end_prepare(w, w->store, held[i]->p, held[i]->nsnaps, &held[i]->si,
						&ends[k], &e2))
				continue;
			ids[k] = held[i]->p->id;
			imps[k] = ends[k].im;
			cat_done[i] = 1;
			k++;
		}
		if (k > 1 && ps_cat_migrate_end_many(w->cat, k, ids, m->lease_owner, imps, &e2)) {
			for (size_t i = 0; i < n; i++)
				cat_done[i] = 0;
		} else if (k == 1 && ps_cat_migrate_end(w->cat, ids[0], m->lease_owner, &imps[0], &e2)) {
			for (size_t i = 0; i < n; i++)
				cat_done[i] = 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct imp *im = held[i];
		if (res[i])
			im->reason = xasprintf("%s", err.msg[0] ? err.msg : "the save could not be published");
		else if (!im->reason)
			import_catalog_end(w, im, cat_done && cat_done[i]);
		emit_result(w, im->idx, import_result(w, im));
		imp_free(im);
	}
	free(ends);
	free(imps);
	free(ids);
	free(cat_done);
	w->in_flush = 0;
	if ((rc || w->drop_store) && w->store) {
		ps_store_free(w->store);
		w->store = NULL;
	}
	w->drop_store = 0;
	free(res);
	free(held);
}

/* Reads the next job number from the parent: 1 (*idx set), 0 when none came
 * within wait_ms (-1: wait for ever), -1 at the end of the jobs. */
static int read_job(int fd, char *buf, size_t *len, size_t cap, size_t *idx, int wait_ms)
{
	for (;;) {
		char *nl = memchr(buf, '\n', *len);
		struct pollfd pf;
		ssize_t n;
		if (nl) {
			*nl = 0;
			*idx = strtoul(buf, NULL, 10);
			*len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, *len);
			return 1;
		}
		if (*len >= cap - 1)
			return -1;
		pf.fd = fd;
		pf.events = POLLIN;
		pf.revents = 0;
		if (wait_ms >= 0) {
			int r = poll(&pf, 1, wait_ms);
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				return 0;
		}
		n = read(fd, buf + *len, cap - 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		*len += (size_t)n;
	}
}

void migrate_worker_main(struct mig *m, int job_fd, int res_fd)
{
	struct wctx w;
	struct ps_error err;
	char buf[256];
	size_t len = 0, idx;
	memset(&w, 0, sizeof(w));
	w.m = m;
	w.out = fdopen(res_fd, "w");
	if (!w.out)
		_exit(EXIT_FAIL);
	/* group commit: the saves of several small projects are made durable
	 * and published together (ps_save_batch_new); a batch is committed when
	 * it is full, old, or no next project is at hand */
	if (m->batch_max > 1 && ps_save_batch_new(&w.batch, &err))
		_exit(EXIT_FAIL);
	for (;;) {
		struct imp *im;
		int got;
		if (w.nheld && (w.nheld >= (size_t)m->batch_max ||
				mono_ms() - w.batch_t0 >= MIG_BATCH_MS))
			flush_batch(&w);
		got = read_job(job_fd, buf, &len, sizeof(buf), &idx, w.nheld ? MIG_BATCH_WAIT_MS : -1);
		if (got == 0) {
			flush_batch(&w);
			continue;
		}
		if (got < 0 || idx >= m->np)
			break;
		im = calloc(1, sizeof(*im));
		if (!im)
			_exit(EXIT_FAIL);
		im->p = &m->p[idx];
		im->idx = idx;
		w.idx = idx;
		w.last_progress = 0;
		if (import_start(&w, im)) {
			struct imp **nv = realloc(w.held, (w.nheld + 1) * sizeof(*nv));
			if (!nv)
				_exit(EXIT_FAIL);
			w.held = nv;
			if (!w.nheld)
				w.batch_t0 = im->t0;
			w.held[w.nheld++] = im;
			if (w.nheld >= 2)
				test_pause("batched");
			/* the parent may hand out the next project now */
			fprintf(w.out, "D %zu\n", idx);
			if (fflush(w.out))
				break;
			continue;
		}
		emit_result(&w, idx, import_result(&w, im));
		imp_free(im);
	}
	flush_batch(&w);
	if (w.cat)
		ps_catalog_close(w.cat);
	ps_save_batch_free(w.store, w.batch);
	ps_store_free(w.store);
	_exit(0);
}
