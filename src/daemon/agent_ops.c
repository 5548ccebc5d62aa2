/*
 * agent_ops.c - what the agent does for one operation or one autosave, in a
 * thread of its own (agent.c starts them; docs/ARCHITECTURE.md, "Host agent
 * and project life cycle", has the protocol and its crash cases).
 *
 * Every job works under the project's lease in the catalog (owner = this
 * host's name), renewed from the progress callbacks of save and restore; the
 * catalog refuses a placement change (ps_cat_project_set_state) from a host
 * whose lease has run out.  Every step is written so that running the job
 * again after a crash (the operation is still active in the catalog, the
 * agent resumes it) finishes it or rolls it back from whatever state the
 * crash left:
 *
 *   deploy (open; move, on the new host):
 *     lease; location "" + status deploying (fences an old host that is down);
 *     a newer snapshot in another datacenter's store is synced here first
 *     (agent_sync.c; refused when that store cannot be read);
 *     a leftover copy that was never published is removed; restore of the
 *     newest snapshot that restores cleanly (older ones when it is damaged,
 *     an event each) or a new empty home; location = this host + deployed;
 *     operation done; lease released.
 *   close: lease; status closing; save; location ""; save again (what changed
 *     meanwhile; usually nothing, so nothing is published); working copy
 *     removed; status stored; done.
 *   move (old host): as close up to the second save, then the lease is
 *     released, the operation handed to the new host, the copy removed.
 *   take over (new host, old host down): the operation is taken from the old
 *     host (one transaction, only while still with it), then deploy.
 *   save (requested) and autosave: lease; save (nothing is published when the
 *     tree equals the newest snapshot's); result and facts in the catalog.
 *
 * A save that fails during close or move rolls back: location = this host,
 * status deployed, the operation fails and says why.  Nothing is removed
 * before a save of it succeeded.
 */
#define _GNU_SOURCE
#include "agent_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ lease and progress */

static int job_lease(struct job *j, struct ps_error *err)
{
	struct agent *a = j->a;
	int rc = ps_cat_lease_acquire(j->cat, j->project, a->host, a->o.lease_us, err);
	if (rc == PS_OK) {
		j->leased = 1;
		j->lease_lost = 0;
		j->lease_at = agent_mono_us();
	}
	return rc;
}

/* renews the lease when a third of it has passed */
void job_renew(struct job *j)
{
	struct agent *a = j->a;
	struct ps_error err;
	int rc;
	if (!j->leased || j->lease_lost || agent_mono_us() - j->lease_at < a->o.lease_us / 3)
		return;
	ps_error_clear(&err);
	rc = ps_cat_lease_acquire(j->cat, j->project, a->host, a->o.lease_us, &err);
	if (rc == PS_OK) {
		j->lease_at = agent_mono_us();
	} else if (rc == PS_ELOCKED) {
		j->lease_lost = 1;
		alog(a, "%s: lease lost: %s (nothing of this job will be published)", j->project,
		     err.msg);
	} else {
		alog(a, "%s: cannot renew the lease: %s", j->project, err.msg);
	}
}

static void job_unlease(struct job *j)
{
	struct ps_error err;
	if (!j->leased)
		return;
	j->leased = 0;
	ps_error_clear(&err);
	if (ps_cat_lease_release(j->cat, j->project, j->a->host, &err))
		alog(j->a, "%s: cannot release the lease (it expires by itself): %s", j->project,
		     err.msg);
}

/*
 * Tests stop an agent at a chosen step to kill it there:
 * PROJSTORE_AGENT_PAUSE=POINT:SECONDS sleeps (renewing the lease) at POINT:
 * "save" (before every save), "stopped" (close or move out, status set and
 * the project's processes stopped (hosting), before the saves),
 * "move-saving" (old host, before its first save), "move-sync" (old host, saved, location empty, before the sync to
 * another store; "move-syncing" pauses the sync itself, agent_sync.c),
 * "move-handoff" (old host, saved and synced, location
 * empty, before the handoff), "restore" (new host, first progress of the
 * restore), "restored" (complete copy, before publishing).
 */
void test_pause(struct job *j, const char *point)
{
	const char *e = getenv("PROJSTORE_AGENT_PAUSE");
	size_t n = strlen(point);
	double secs;
	if (!e || strncmp(e, point, n) || e[n] != ':')
		return;
	secs = strtod(e + n + 1, NULL);
	alog(j->a, "%s: pausing %.1f s at %s (PROJSTORE_AGENT_PAUSE)", j->project, secs, point);
	for (int64_t end = agent_mono_us() + (int64_t)(secs * 1e6); agent_mono_us() < end;) {
		usleep(50000);
		if (j->lease_at && agent_mono_us() - j->lease_at > j->a->o.lease_us / 3) {
			/* keep the lease, as real work would */
			struct ps_error err;
			ps_error_clear(&err);
			if (j->leased && ps_cat_lease_acquire(j->cat, j->project, j->a->host,
							      j->a->o.lease_us, &err) == PS_OK)
				j->lease_at = agent_mono_us();
		}
	}
}

void job_phase(struct job *j, const char *phase, int64_t done, int64_t total)
{
	struct ps_error err;
	j->phase = phase;
	if (j->kind != JOB_OP)
		return;
	j->progress_at = agent_mono_us();
	ps_error_clear(&err);
	if (ps_cat_op_progress(j->cat, j->op.id, phase, done, total, &err))
		alog(j->a, "%s: operation %" PRId64 ": cannot record progress: %s", j->project,
		     j->op.id, err.msg);
}

static void job_progress_cb(void *ctx, const char *phase, uint64_t files_done,
			    uint64_t files_total, uint64_t bytes_done, uint64_t bytes_total)
{
	struct job *j = ctx;
	(void)phase;
	(void)files_done;
	(void)files_total;
	job_renew(j);
	if (j->phase && !strcmp(j->phase, "restoring") && !j->paused) {
		j->paused = 1;
		test_pause(j, "restore");
	}
	if (j->kind != JOB_OP || agent_mono_us() - j->progress_at < 500000)
		return;
	job_phase(j, j->phase ? j->phase : "working", (int64_t)bytes_done, (int64_t)bytes_total);
}

static void job_warn_cb(void *ctx, const char *path, const char *msg)
{
	struct job *j = ctx;
	static __thread unsigned logged;
	if (logged++ < 20)
		alog(j->a, "%s: skipped '%s': %s", j->project, path, msg);
}

/* ------------------------------------------------------------ catalog helpers */

void job_event(struct job *j, const char *kind, int error, const char *fmt, ...)
{
	char detail[PS_CAT_TEXT_MAX];
	struct ps_error err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	alog(j->a, "%s: %s: %s", j->project, kind, detail);
	ps_error_clear(&err);
	if (ps_cat_event_add(j->cat, j->project, kind, j->a->host, error, detail, &err))
		alog(j->a, "%s: cannot record the event: %s", j->project, err.msg);
}

/* ends the operation (ok or failed) with a result users see */
static void job_finish(struct job *j, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void job_finish(struct job *j, int ok, const char *fmt, ...)
{
	struct ps_error err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->result, sizeof(j->result), fmt, ap);
	va_end(ap);
	alog(j->a, "%s: operation %" PRId64 " (%s) %s: %s", j->project, j->op.id, j->op.kind,
	     ok ? "done" : "failed", j->result);
	ps_error_clear(&err);
	if (ps_cat_op_finish(j->cat, j->op.id, ok, j->result, &err))
		alog(j->a, "%s: operation %" PRId64 ": cannot record its end: %s", j->project, j->op.id,
		     err.msg);
	if (!ok) {
		char kind[32];
		snprintf(kind, sizeof(kind), "%s-failed", j->op.kind);
		ps_error_clear(&err);
		if (ps_cat_event_add(j->cat, j->project, kind, j->a->host, 1, j->result, &err))
			alog(j->a, "%s: cannot record the event: %s", j->project, err.msg);
	}
}

static int set_state(struct job *j, const char *host, const char *status, struct ps_error *err)
{
	if (j->lease_lost)
		return agent_err(err, PS_ELOCKED, "the lease on %s was lost", j->project);
	return ps_cat_project_set_state(j->cat, j->project, j->a->host, host, status, err);
}

static void copy_path(struct job *j, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", j->a->root, j->project);
}

/* ------------------------------------------------------------ saving */

static void save_result_text(const struct ps_snapshot_info *si, char *buf, size_t len)
{
	char l[32], q[32];
	ps_format_size(si->logical_bytes, l, sizeof(l));
	ps_format_size(si->quota_bytes, q, sizeof(q));
	if (si->errors && si->over_quota)
		snprintf(buf, len, "partial: %llu entries unreadable; over quota (%s of %s)",
			 (unsigned long long)si->errors, l, q);
	else if (si->errors)
		snprintf(buf, len, "partial: %llu entries unreadable", (unsigned long long)si->errors);
	else if (si->over_quota)
		snprintf(buf, len, "over quota (%s of %s)", l, q);
	else
		snprintf(buf, len, "ok");
}

/* Saves the working copy (nothing is published when nothing changed) and
 * records the attempt in the catalog. */
static int job_save(struct job *j, struct ps_snapshot_info *si, struct ps_error *err)
{
	struct agent *a = j->a;
	struct ps_save_opts so = PS_SAVE_OPTS_INIT;
	char path[PATH_MAX + 80], res[PS_CAT_TEXT_MAX];
	struct ps_error e2;
	double lock_s = (double)a->o.lease_us / 3e6;
	int rc;

	copy_path(j, path, sizeof(path));
	so.skip_unchanged = 1;
	so.cache_dir = a->cache_dir;
	so.threads = a->o.threads;
	so.lock_timeout = lock_s < 5 ? 5 : lock_s;
	so.progress = job_progress_cb;
	so.warn = job_warn_cb;
	so.cb_ctx = j;
	test_pause(j, "save");
	job_renew(j);
	ps_error_clear(err);
	rc = ps_save(j->store, j->project, path, &so, si, err);
	job_renew(j);
	if (rc == PS_OK)
		save_result_text(si, res, sizeof(res));
	else
		snprintf(res, sizeof(res), "failed: %s", err->msg);
	ps_error_clear(&e2);
	if (ps_cat_project_save_result(j->cat, j->project, ps_cat_now(), res, &e2))
		alog(a, "%s: cannot record the save: %s", j->project, e2.msg);
	if (rc == PS_OK && !si->unchanged) {
		char sname[PS_CAT_ID_MAX + 1];
		agent_store_name(j, sname, sizeof(sname));
		ps_error_clear(&e2);
		if (ps_cat_refresh_project(j->cat, j->store, sname[0] ? sname : NULL, j->project, &e2))
			alog(a, "%s: cannot refresh the catalog's facts: %s", j->project, e2.msg);
	}
	if (rc == PS_OK)
		alog(a, "%s: %s %s (%llu files, %.2f s)%s%s", j->project,
		     si->unchanged ? "unchanged since" : "saved as", si->name,
		     (unsigned long long)si->files, (double)si->duration_ms / 1000.0,
		     strcmp(res, "ok") ? ": " : "", strcmp(res, "ok") ? res : "");
	else
		alog(a, "%s: save failed: %s", j->project, err->msg);
	return rc;
}

static void describe_save(const struct ps_snapshot_info *si, char *buf, size_t len)
{
	char l[32];
	ps_format_size(si->logical_bytes, l, sizeof(l));
	if (si->unchanged)
		snprintf(buf, len, "no changes since snapshot %s", si->name);
	else
		snprintf(buf, len, "saved as snapshot %s (%llu files, %s)", si->name,
			 (unsigned long long)si->files, l);
}

/* ------------------------------------------------------------ deploy */

static int damaged(int rc)
{
	return rc == PS_ECORRUPT || rc == PS_EHOSTILE || rc == PS_ENOTFOUND;
}

/* a new empty home, made beside its place and renamed into it */
static int make_empty_home(struct job *j, int64_t uid, struct ps_error *err)
{
	char tmp[PS_CAT_ID_MAX + 64];
	int rfd = open(j->a->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = PS_OK;
	if (rfd < 0)
		return agent_err_sys(err, "cannot open '%s'", j->a->root);
	snprintf(tmp, sizeof(tmp), ".%s.projstore-new-%08x", j->project,
		 (unsigned)agent_mono_us() ^ (unsigned)getpid());
	if (mkdirat(rfd, tmp, 0755)) {
		rc = agent_err_sys(err, "cannot create '%s/%s'", j->a->root, tmp);
	} else if (uid >= 0 && fchownat(rfd, tmp, (uid_t)uid, (gid_t)uid, AT_SYMLINK_NOFOLLOW)) {
		rc = agent_err_sys(err, "cannot set the owner of '%s/%s'", j->a->root, tmp);
		unlinkat(rfd, tmp, AT_REMOVEDIR);
	} else if (renameat2(rfd, tmp, rfd, j->project, RENAME_NOREPLACE)) {
		rc = agent_err_sys(err, "cannot rename '%s/%s' to '%s'", j->a->root, tmp, j->project);
		unlinkat(rfd, tmp, AT_REMOVEDIR);
	} else {
		fsync(rfd);
	}
	close(rfd);
	return rc;
}

/* 1 when this host's store has snapshot `name` of the job's project */
static int store_has(struct job *j, const char *name)
{
	struct ps_snapshot_info *v = NULL;
	size_t n = 0;
	struct ps_error err;
	int found = 0;
	ps_error_clear(&err);
	if (ps_snapshot_list(j->store, j->project, &v, &n, &err))
		return 0;
	for (size_t i = 0; i < n && !found; i++)
		found = !strcmp(v[i].name, name);
	free(v);
	return found;
}

/*
 * A move taken over from a host that is down, whose store is not this
 * host's (another datacenter): its snapshots are synced from there first.
 * When that store cannot be read, the deploy goes on only if this store has
 * the newest snapshot the catalog knows of the project; otherwise it is
 * refused (an event says why), the placement is left as it was (the old
 * host serves the project again when it is back) and the operation fails.
 * Called under the lease, before the handoff (*synced = 1 when it synced).
 */
static int takeover_sync(struct job *j, const struct ps_cat_project *p, const char *old,
			 int *synced)
{
	struct agent *a = j->a;
	struct agent_sync_out so;
	struct ps_error err, e2;
	char url[PS_CAT_TEXT_MAX], dc[PS_CAT_ID_MAX + 1], mine[PS_CAT_TEXT_MAX],
		mydc[PS_CAT_ID_MAX + 1];
	int rc;
	ps_error_clear(&err);
	*synced = 0;
	if (agent_host_store(j, old, url, sizeof(url), dc, sizeof(dc), &err) || !url[0] ||
	    !strcmp(url, a->store))
		return PS_OK; /* unknown or the same store: as before */
	if (agent_host_store(j, a->host, mine, sizeof(mine), mydc, sizeof(mydc), &err))
		mydc[0] = 0;
	rc = agent_sync_project(j, url, dc, a->store, mydc, "the move", &so, &err);
	/* the sync wrote into this store through handles of its own */
	ps_error_clear(&e2);
	if (ps_store_refresh(j->store, &e2))
		alog(a, "%s: cannot refresh the store handle: %s", j->project, e2.msg);
	if (rc == PS_OK) {
		*synced = so.synced;
		return PS_OK;
	}
	if (!p->last_snapshot[0] || store_has(j, p->last_snapshot)) {
		job_event(j, "sync-failed", 1,
			  "%s; this store has the newest snapshot the catalog knows (%s): deploying "
			  "from it",
			  err.msg, p->last_snapshot[0] ? p->last_snapshot : "none");
		return PS_OK;
	}
	job_event(j, "move-refused", 1,
		  "not taken over by %s: %s; the newest snapshot (%s) is only in store %s, and "
		  "deploying an older one would fork the history; the project stays with %s; move it "
		  "again once that store answers",
		  a->host, err.msg, p->last_snapshot, so.src_label, old);
	/* placement as it was: a location naming the old host stays (it
	 * serves the project when it is back), an empty one means stored */
	ps_error_clear(&e2);
	if (set_state(j, p->host, p->host[0] ? "deployed" : "stored", &e2))
		alog(a, "%s: cannot restore the placement: %s", j->project, e2.msg);
	job_finish(j, 0, "move of %s refused: its newest snapshot %s is only in store %s (%s), "
			 "which cannot be read: %s",
		   j->project, p->last_snapshot, so.src_label, old, err.msg);
	return PS_ERROR;
}

/* 1 when the operation was requested with option `name` (op.options) */
static int op_option(const struct job *j, const char *name)
{
	size_t n = strlen(name);
	for (const char *o = j->op.options; (o = strstr(o, name)); o += n)
		if ((o == j->op.options || o[-1] == ' ') && (o[n] == 0 || o[n] == ' '))
			return 1;
	return 0;
}

/* open, the new host's part of a move, and a move taken over */
static enum job_outcome do_deploy(struct job *j)
{
	struct agent *a = j->a;
	const char *me = a->host;
	struct ps_cat_project p;
	struct ps_snapshot_info *v = NULL;
	size_t n = 0;
	struct ps_error err;
	char path[PATH_MAX + 80], used[PS_SNAPNAME_MAX + 1] = "", fell[PS_CAT_TEXT_MAX] = "";
	int64_t t0 = agent_mono_us(), host_uid = -1;
	int rc;
	enum job_outcome out = OUT_FAILED;

	ps_error_clear(&err);
	rc = job_lease(j, &err);
	if (rc) {
		snprintf(j->result, sizeof(j->result), "waiting for the lease: %s", err.msg);
		return OUT_RETRY;
	}
	if ((rc = ps_cat_project_get(j->cat, j->project, &p, &err))) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		return OUT_RETRY;
	}
	if (!strcmp(p.host, me) && agent_copy_exists(a, j->project)) {
		/* published before a crash: only the end is missing */
		job_finish(j, 1, "deployed on %s", me);
		return OUT_OK;
	}
	if (p.host[0] && strcmp(p.host, me)) {
		struct ps_cat_host h;
		int alive = 1;
		if (ps_cat_host_get(j->cat, p.host, &h, &err) == PS_OK)
			alive = ps_cat_host_alive(&h, ps_cat_now());
		else if (err.code == PS_ENOTFOUND)
			alive = 0;
		if (strcmp(j->op.kind, "move") || alive) {
			job_finish(j, 0, "project %s is deployed on %s, not moved away from it", j->project,
				   p.host);
			return OUT_FAILED;
		}
		/* the old host is down: from here on the catalog names no host,
		 * so its copy is not used even if it comes back (its agent puts
		 * the copy aside) */
	}
	if ((rc = set_state(j, "", "deploying", &err))) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		return rc == PS_ELOCKED ? OUT_SKIPPED : OUT_RETRY;
	}
	/* another datacenter's store may hold a newer snapshot (a close there,
	 * an open here): synced into this store first (not for a takeover:
	 * takeover_sync did that; after a move's own sync it finds nothing) */
	if (!j->takeover) {
		char why[PS_CAT_TEXT_MAX];
		if (agent_open_sync(j, op_option(j, "allow-older"), why, sizeof(why))) {
			job_finish(j, 0, "%s", why);
			goto rollback;
		}
	}
	job_phase(j, "restoring", 0, 0);
	if (agent_copy_exists(a, j->project)) {
		/* a copy that was never published (a crash before the end):
		 * never used, so it goes, and the restore starts again */
		alog(a, "%s: removing an unpublished copy before restoring again", j->project);
		if (agent_remove_copy(a, j->project, &err)) {
			job_finish(j, 0, "%s", err.msg);
			goto rollback;
		}
	}
	copy_path(j, path, sizeof(path));
	if ((rc = ps_snapshot_list(j->store, j->project, &v, &n, &err))) {
		job_finish(j, 0, "cannot list the snapshots of %s: %s", j->project, err.msg);
		goto rollback;
	}
	if (n == 0 && a->o.hosting) {
		/* hosting: the new empty home is the prepared subvolume */
		if ((rc = agent_host_prepare(j, &host_uid, &err))) {
			job_finish(j, 0, "%s", err.msg);
			goto rollback;
		}
	} else if (n == 0) {
		if ((rc = make_empty_home(j, p.uid, &err))) {
			job_finish(j, 0, "%s", err.msg);
			goto rollback;
		}
	}
	for (size_t i = n; i-- > 0;) {
		struct ps_restore_opts ro = PS_RESTORE_OPTS_INIT;
		ro.cache_dir = a->cache_dir;
		ro.threads = a->o.threads;
		ro.progress = job_progress_cb;
		ro.warn = job_warn_cb;
		ro.cb_ctx = j;
		job_renew(j);
		ps_error_clear(&err);
		if (a->o.hosting) {
			/* its user, subvolume and cgroup (again after a failed try):
			 * every restored owner becomes the project's uid */
			if ((rc = agent_host_prepare(j, &host_uid, &err))) {
				job_finish(j, 0, "%s", err.msg);
				goto rollback;
			}
			ro.uid = ro.gid = (long)host_uid;
		}
		rc = ps_restore(j->store, j->project, v[i].name, path, &ro, &err);
		if (rc == PS_OK) {
			agent_copy(used, sizeof(used), v[i].name);
			break;
		}
		if (!damaged(rc) || j->lease_lost) {
			job_finish(j, 0, "restore of snapshot %s failed: %s", v[i].name, err.msg);
			goto rollback;
		}
		job_event(j, "restore-failed", 1, "snapshot %s does not restore: %s%s", v[i].name, err.msg,
			  i ? "; trying the next older one" : "; no older snapshot");
		size_t fl = strlen(fell);
		snprintf(fell + fl, sizeof(fell) - fl, "%s%s", fl ? ", " : "", v[i].name);
		/* a restore that failed leaves nothing at the target */
		if (agent_copy_exists(a, j->project) && agent_remove_copy(a, j->project, &err)) {
			job_finish(j, 0, "%s", err.msg);
			goto rollback;
		}
	}
	if (n && !used[0]) {
		job_finish(j, 0, "none of the %zu snapshots of %s restores cleanly (see events); "
				 "nothing was deployed",
			   n, j->project);
		goto rollback;
	}
	test_pause(j, "restored");
	job_renew(j);
	if ((rc = set_state(j, me, "deployed", &err))) {
		/* someone else has the project now: this copy was never used */
		alog(a, "%s: cannot publish the location: %s", j->project, err.msg);
		agent_remove_copy(a, j->project, NULL);
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		out = rc == PS_ELOCKED ? OUT_SKIPPED : OUT_RETRY;
		goto done;
	}
	{
		double secs = (double)(agent_mono_us() - t0) / 1e6;
		if (!n) {
			job_event(j, "deployed", 0, "deployed on %s as a new empty home (no snapshot)", me);
			job_finish(j, 1, "deployed on %s (%s) as a new empty home", me, path);
		} else if (fell[0]) {
			job_event(j, "restore-fallback", 1,
				  "deployed on %s from snapshot %s: newer snapshot(s) %s did not restore", me,
				  used, fell);
			job_finish(j, 1, "deployed on %s (%s) from snapshot %s in %.1f s; newer snapshot(s) "
					 "%s are damaged (see events)",
				   me, path, used, secs, fell);
		} else {
			job_event(j, "deployed", 0, "deployed on %s from snapshot %s (the newest) in %.1f s",
				  me, used, secs);
			job_finish(j, 1, "deployed on %s (%s) from snapshot %s in %.1f s", me, path, used,
				   secs);
		}
	}
	out = OUT_OK;
	goto done;
rollback:
	/* nothing deployed: the project stays in the store */
	agent_host_teardown(j, 1);
	if (agent_copy_exists(a, j->project))
		agent_remove_copy(a, j->project, NULL);
	ps_error_clear(&err);
	if (set_state(j, "", "stored", &err))
		alog(a, "%s: cannot set status stored: %s", j->project, err.msg);
	out = OUT_FAILED;
done:
	free(v);
	job_unlease(j);
	return out;
}

/* ------------------------------------------------------------ close and move out */

/*
 * The saves that come before a working copy leaves: the first while the
 * location still names this host, the second once it is empty (so no front
 * end connects any more; it usually finds nothing new and publishes
 * nothing).  With hosting, every process of the project is stopped before
 * them, after the status (closing, moving) is set, which `run` respects: so
 * the saves hold what the processes wrote last, and nothing starts again
 * meanwhile.  On failure the location and status go back to deployed here;
 * *stop_failed says that the processes could not be stopped (nothing was
 * saved then).  Returns 0 with *si the snapshot that holds the copy's last
 * state.
 */
static int save_before_leaving(struct job *j, const char *status, const struct ps_cat_project *p,
			       struct ps_snapshot_info *si, char *why, size_t wl, int *stop_failed)
{
	struct agent *a = j->a;
	const char *me = a->host;
	struct ps_error err;
	int rc;
	ps_error_clear(&err);
	*stop_failed = 0;
	if (!strcmp(p->host, me)) {
		if ((rc = set_state(j, me, status, &err)))
			goto fail;
	} else if (!agent_copy_exists(a, j->project)) {
		/* resumed after the copy went: the last save holds it */
		memset(si, 0, sizeof(*si));
		return PS_OK;
	}
	job_phase(j, "stopping", 0, 0);
	rc = agent_host_stop(j, &err);
	job_renew(j); /* the stop may take longer than a third of the lease */
	if (rc) {
		*stop_failed = 1;
		job_event(j, "stop-failed", 1,
			  "the processes of the project on %s could not be stopped before the %s: %s; "
			  "nothing was saved and the project stays deployed there",
			  me, !strcmp(status, "moving") ? "move" : "close", err.msg);
		goto rollback;
	}
	test_pause(j, "stopped");
	if (!strcmp(p->host, me)) {
		job_phase(j, "saving", 0, 0);
		if (!strcmp(status, "moving"))
			test_pause(j, "move-saving");
		if ((rc = job_save(j, si, &err)))
			goto rollback;
		if ((rc = set_state(j, "", status, &err)))
			goto rollback;
	}
	job_phase(j, "saving", 0, 0);
	if ((rc = job_save(j, si, &err)))
		goto rollback;
	return PS_OK;
rollback:
	snprintf(why, wl, "%s", err.msg);
	ps_error_clear(&err);
	if (set_state(j, me, "deployed", &err))
		alog(a, "%s: cannot roll back to deployed: %s", j->project, err.msg);
	return rc;
fail:
	snprintf(why, wl, "%s", err.msg);
	return rc;
}

static enum job_outcome do_close(struct job *j)
{
	struct agent *a = j->a;
	const char *me = a->host;
	struct ps_cat_project p;
	struct ps_snapshot_info si;
	struct ps_error err;
	char why[PS_CAT_TEXT_MAX], saved[PS_CAT_TEXT_MAX], trash[PS_CAT_ID_MAX + 40] = "";
	int rc, stop_failed = 0;

	ps_error_clear(&err);
	if ((rc = job_lease(j, &err))) {
		snprintf(j->result, sizeof(j->result), "waiting for the lease: %s", err.msg);
		return OUT_RETRY;
	}
	if ((rc = ps_cat_project_get(j->cat, j->project, &p, &err))) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		job_unlease(j);
		return OUT_RETRY;
	}
	if (strcmp(p.host, me) && (p.host[0] || strcmp(p.status, "closing"))) {
		job_finish(j, 0, "project %s is not deployed on %s (location '%s', status %s)", j->project,
			   me, p.host, p.status);
		job_unlease(j);
		return OUT_FAILED;
	}
	if ((rc = save_before_leaving(j, "closing", &p, &si, why, sizeof(why), &stop_failed))) {
		if (stop_failed)
			job_finish(j, 0, "close refused: the project's processes could not be stopped: %s; "
					 "nothing was saved, the project stays deployed on %s",
				   why, me);
		else
			job_finish(j, 0, "save before closing failed: %s; the project stays deployed on %s",
				   why, me);
		job_unlease(j);
		return OUT_FAILED;
	}
	job_phase(j, "removing", 0, 0);
	agent_host_teardown(j, 1);
	/* out of its place at once; deleted once the close is recorded */
	if (agent_trash_copy(a, j->project, trash, sizeof(trash), &err))
		alog(a, "%s: %s", j->project, err.msg); /* reconciliation puts it aside later */
	if ((rc = set_state(j, "", "stored", &err))) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		job_unlease(j);
		agent_trash_remove(a, trash);
		return rc == PS_ELOCKED ? OUT_SKIPPED : OUT_RETRY;
	}
	if (si.name[0])
		describe_save(&si, saved, sizeof(saved));
	else
		snprintf(saved, sizeof(saved), "saved before");
	job_event(j, "closed", 0, "closed on %s: %s; working copy removed", me, saved);
	job_finish(j, 1, "closed: %s", saved);
	job_unlease(j);
	agent_trash_remove(a, trash);
	return OUT_OK;
}

/* The old host's part of a move to a host with another store: syncs the
 * project's snapshots from this host's store to the target's (agent_sync.c).
 * 0 when done or not needed, else the reason in why. */
static int move_sync_out(struct job *j, const char *to, char *why, size_t wl)
{
	struct agent *a = j->a;
	struct agent_sync_out so;
	struct ps_error err;
	char url[PS_CAT_TEXT_MAX], dc[PS_CAT_ID_MAX + 1], mine[PS_CAT_TEXT_MAX],
		mydc[PS_CAT_ID_MAX + 1];
	int rc;
	ps_error_clear(&err);
	if ((rc = agent_host_store(j, to, url, sizeof(url), dc, sizeof(dc), &err))) {
		snprintf(why, wl, "cannot read host %s: %s", to, err.msg);
		return rc;
	}
	if (!url[0] || !strcmp(url, a->store))
		return PS_OK; /* one store for both */
	if (agent_host_store(j, a->host, mine, sizeof(mine), mydc, sizeof(mydc), &err))
		mydc[0] = 0;
	rc = agent_sync_project(j, a->store, mydc, url, dc, "the move", &so, &err);
	if (rc)
		snprintf(why, wl, "%s", err.msg);
	return rc;
}

static enum job_outcome do_move_out(struct job *j)
{
	struct agent *a = j->a;
	const char *me = a->host, *to = j->op.target_host;
	struct ps_cat_project p;
	struct ps_snapshot_info si;
	struct ps_error err;
	char why[PS_CAT_TEXT_MAX], saved[PS_CAT_TEXT_MAX], trash[PS_CAT_ID_MAX + 40] = "";
	int rc, stop_failed = 0;

	ps_error_clear(&err);
	if ((rc = job_lease(j, &err))) {
		snprintf(j->result, sizeof(j->result), "waiting for the lease: %s", err.msg);
		return OUT_RETRY;
	}
	if ((rc = ps_cat_project_get(j->cat, j->project, &p, &err))) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		job_unlease(j);
		return OUT_RETRY;
	}
	if (p.host[0] && strcmp(p.host, me)) {
		job_finish(j, 0, "project %s is deployed on %s, not on %s", j->project, p.host, me);
		job_unlease(j);
		return OUT_FAILED;
	}
	if ((rc = save_before_leaving(j, "moving", &p, &si, why, sizeof(why), &stop_failed))) {
		if (stop_failed)
			job_finish(j, 0, "move refused: the project's processes on %s could not be stopped: "
					 "%s; nothing was saved, the project stays deployed on %s",
				   me, why, me);
		else
			job_finish(j, 0, "save on %s before the move failed: %s; the project stays deployed "
					 "on %s",
				   me, why, me);
		job_unlease(j);
		return OUT_FAILED;
	}
	if (si.name[0])
		describe_save(&si, saved, sizeof(saved));
	else
		snprintf(saved, sizeof(saved), "saved before");
	/* the new host's store is another datacenter's: the snapshots go there
	 * now, still under the lease and with the location empty, so that no
	 * save comes between the last one here and the new host's restore */
	test_pause(j, "move-sync");
	if ((rc = move_sync_out(j, to, why, sizeof(why)))) {
		ps_error_clear(&err);
		if (set_state(j, me, "deployed", &err))
			alog(a, "%s: cannot roll back to deployed: %s", j->project, err.msg);
		job_finish(j, 0, "%s; the project stays deployed on %s", why, me);
		job_unlease(j);
		return OUT_FAILED;
	}
	test_pause(j, "move-handoff");
	/* nothing of the project runs here any more before the new host may
	 * start it: processes, cgroup, network and user go now; the working
	 * copy stays until the handoff is recorded */
	agent_host_teardown(j, 0);
	/* the new host needs the lease at once */
	job_unlease(j);
	ps_error_clear(&err);
	rc = ps_cat_op_handoff(j->cat, j->op.id, me, to, "deploying", &err);
	if (rc && rc != PS_ELOCKED) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		return OUT_RETRY; /* the copy stays until the handoff is recorded */
	}
	if (rc == PS_ELOCKED)
		alog(a, "%s: the move was already taken over by %s", j->project, to);
	job_event(j, "moved-out", 0, "left %s for %s: %s", me, to, saved);
	agent_host_remove_home(j);
	if (agent_trash_copy(a, j->project, trash, sizeof(trash), &err))
		alog(a, "%s: %s", j->project, err.msg);
	snprintf(j->result, sizeof(j->result), "handed to %s", to);
	agent_trash_remove(a, trash);
	return OUT_OK;
}

/* a move whose old host is down: the new host takes it */
static enum job_outcome do_takeover(struct job *j)
{
	struct agent *a = j->a;
	struct ps_cat_host h;
	struct ps_cat_project p;
	struct ps_error err;
	char old[PS_CAT_ID_MAX + 1], age[64] = "never";
	int rc, synced = 0;
	agent_copy(old, sizeof(old), j->op.host);
	ps_error_clear(&err);
	rc = ps_cat_host_get(j->cat, old, &h, &err);
	if (rc == PS_OK && ps_cat_host_alive(&h, ps_cat_now()))
		return OUT_SKIPPED; /* it came back: it acts itself */
	if (rc == PS_OK && h.last_heartbeat) {
		double ago = (double)(ps_cat_now() - h.last_heartbeat) / 1e6;
		if (ago < 600)
			snprintf(age, sizeof(age), "%.1f s ago", ago);
		else
			ps_format_age(h.last_heartbeat * 1000, ps_cat_now() * 1000, age, sizeof(age));
	}
	int disabled = rc == PS_OK && !strcmp(h.state, "disabled");
	/* the old host's lease must have run out; from here on it cannot
	 * publish anything, and no other host takes the move meanwhile */
	if ((rc = job_lease(j, &err))) {
		snprintf(j->result, sizeof(j->result), "waiting for the lease: %s", err.msg);
		return OUT_RETRY;
	}
	if ((rc = ps_cat_project_get(j->cat, j->project, &p, &err))) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		job_unlease(j);
		return OUT_RETRY;
	}
	/* another store: synced before the handoff, so that a crash during the
	 * sync leaves the move with the old host, to be taken over again */
	if ((rc = takeover_sync(j, &p, old, &synced))) {
		job_unlease(j);
		return OUT_FAILED;
	}
	rc = ps_cat_op_handoff(j->cat, j->op.id, old, a->host, "taking over", &err);
	if (rc) {
		job_unlease(j);
		return OUT_SKIPPED; /* someone acted first */
	}
	agent_copy(j->op.host, sizeof(j->op.host), a->host);
	job_event(j, "move-takeover", 1,
		  "host %s is down (last heartbeat %s%s): %s takes the move over and deploys the newest "
		  "snapshot in %s; changes on %s after its last save are not in it",
		  old, age, disabled ? ", disabled" : "", a->host,
		  synced ? "the store, synced from the old host's store first" : "the store", old);
	return do_deploy(j);
}

/* ------------------------------------------------------------ saves */

static enum job_outcome do_save_op(struct job *j)
{
	struct agent *a = j->a;
	const char *me = a->host;
	struct ps_cat_project p;
	struct ps_snapshot_info si;
	struct ps_error err;
	char d[PS_CAT_TEXT_MAX];
	int rc;

	ps_error_clear(&err);
	if ((rc = job_lease(j, &err))) {
		snprintf(j->result, sizeof(j->result), "waiting for the lease: %s", err.msg);
		return OUT_RETRY;
	}
	if ((rc = ps_cat_project_get(j->cat, j->project, &p, &err))) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		job_unlease(j);
		return OUT_RETRY;
	}
	if (strcmp(p.host, me)) {
		job_finish(j, 0, "project %s is not deployed on %s", j->project, me);
		job_unlease(j);
		return OUT_FAILED;
	}
	if (strcmp(p.status, "deployed") && strcmp(p.status, "saving")) {
		/* a close or move of it is under way (and saves it anyway) */
		job_finish(j, 0, "project %s is %s", j->project, p.status);
		job_unlease(j);
		return OUT_FAILED;
	}
	if (set_state(j, me, "saving", &err))
		alog(a, "%s: %s", j->project, err.msg);
	job_phase(j, "saving", 0, 0);
	rc = job_save(j, &si, &err);
	{
		struct ps_error e2;
		ps_error_clear(&e2);
		if (set_state(j, me, "deployed", &e2))
			alog(a, "%s: %s", j->project, e2.msg);
	}
	if (rc) {
		job_finish(j, 0, "save failed: %s", err.msg);
		job_unlease(j);
		return OUT_FAILED;
	}
	describe_save(&si, d, sizeof(d));
	job_event(j, "saved", 0, "%s (requested by %s)", d, j->op.requested_by[0] ? j->op.requested_by : "?");
	job_finish(j, 1, "%s", d);
	job_unlease(j);
	return OUT_OK;
}

static enum job_outcome do_autosave(struct job *j, int prior_fails)
{
	struct agent *a = j->a;
	const char *me = a->host;
	struct ps_cat_project p;
	struct ps_snapshot_info si;
	struct ps_error err;
	int rc;

	ps_error_clear(&err);
	if ((rc = job_lease(j, &err))) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		return OUT_RETRY;
	}
	if ((rc = ps_cat_project_get(j->cat, j->project, &p, &err))) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		job_unlease(j);
		return OUT_RETRY;
	}
	if (strcmp(p.host, me) || (strcmp(p.status, "deployed") && strcmp(p.status, "saving"))) {
		job_unlease(j);
		return OUT_SKIPPED;
	}
	if (!agent_copy_exists(a, j->project)) {
		char res[PS_CAT_TEXT_MAX + 16];
		snprintf(j->result, sizeof(j->result), "the working copy %s/%s is missing", a->root,
			 j->project);
		snprintf(res, sizeof(res), "failed: %s", j->result);
		ps_error_clear(&err);
		if (ps_cat_project_save_result(j->cat, j->project, ps_cat_now(), res, &err))
			alog(a, "%s: cannot record the save: %s", j->project, err.msg);
		job_event(j, "save-failed", 1, "autosave failed (%d in a row): %s", prior_fails + 1,
			  j->result);
		job_unlease(j);
		return OUT_FAILED;
	}
	rc = job_save(j, &si, &err);
	job_unlease(j);
	if (rc) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		job_event(j, "save-failed", 1, "autosave failed (%d in a row): %s", prior_fails + 1,
			  err.msg);
		return OUT_FAILED;
	}
	if (prior_fails)
		job_event(j, "saved", 0, "autosave works again after %d failure(s): %s %s", prior_fails,
			  si.unchanged ? "no changes since" : "saved as", si.name);
	snprintf(j->result, sizeof(j->result), "%s %s", si.unchanged ? "unchanged since" : "saved as",
		 si.name);
	return OUT_OK;
}

/* ------------------------------------------------------------ the thread */

void *agent_job_main(void *arg)
{
	struct job *j = arg;
	struct agent *a = j->a;
	struct ps_error err;
	enum job_outcome out = OUT_RETRY;
	int prior = 0;

	ps_error_clear(&err);
	if (ps_catalog_open(&j->cat, a->catalog_spec, NULL, &err)) {
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		goto end;
	}
	pthread_mutex_lock(&a->lock);
	if (a->nspool)
		j->store = a->spool[--a->nspool];
	pthread_mutex_unlock(&a->lock);
	if (j->store && ps_store_refresh(j->store, &err)) {
		ps_store_free(j->store);
		j->store = NULL;
	}
	if (!j->store && ps_store_open(&j->store, a->store, &err)) {
		j->store = NULL;
		snprintf(j->result, sizeof(j->result), "%s", err.msg);
		goto end;
	}
	if (j->kind == JOB_AUTOSAVE) {
		pthread_mutex_lock(&a->lock);
		for (size_t i = 0; i < a->nasv; i++)
			if (!strcmp(a->asv[i].id, j->project))
				prior = a->asv[i].fails;
		pthread_mutex_unlock(&a->lock);
		out = do_autosave(j, prior);
	} else if (j->takeover) {
		out = do_takeover(j);
	} else if (!strcmp(j->op.kind, "open")) {
		out = do_deploy(j);
	} else if (!strcmp(j->op.kind, "move")) {
		out = strcmp(j->op.target_host, a->host) ? do_move_out(j) : do_deploy(j);
	} else if (!strcmp(j->op.kind, "close")) {
		out = do_close(j);
	} else if (!strcmp(j->op.kind, "save")) {
		out = do_save_op(j);
	} else {
		job_finish(j, 0, "unknown operation kind '%s'", j->op.kind);
		out = OUT_FAILED;
	}
end:
	if (j->cat)
		job_unlease(j);
	/* a handle that served a job which went well goes back to the pool;
	 * after a failure it may hold unflushed state: it is closed */
	if (j->store && out == OUT_OK) {
		pthread_mutex_lock(&a->lock);
		if (a->nspool < (int)(sizeof(a->spool) / sizeof(a->spool[0]))) {
			a->spool[a->nspool++] = j->store;
			j->store = NULL;
		}
		pthread_mutex_unlock(&a->lock);
	}
	ps_store_free(j->store);
	ps_catalog_close(j->cat);
	j->store = NULL;
	j->cat = NULL;
	pthread_mutex_lock(&a->lock);
	j->outcome = out;
	j->finished = 1;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}
