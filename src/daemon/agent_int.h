/*
 * agent_int.h - what the agent's source files share (src/daemon/agent*.c).
 *
 *   agent.c       the main loop: lock, heartbeat, polling, dispatch of jobs,
 *                 autosave schedule and backoff, signals, --once
 *   agent_ops.c   the jobs, one thread each: deploy (open, move in, take
 *                 over), save (requested and autosave), close, move out
 *   agent_root.c  the host's root directory: the agent lock, leftovers,
 *                 removal of working copies, quarantine, reconciliation
 *   agent_log.c   the log (rotated by size) and error helpers
 *   agent_sync.c  a move between hosts with different stores: the
 *                 project's snapshots synced to the new host's store first
 *
 * Threads: the main thread owns `struct agent` except the fields under
 * a->lock (the job list and counters, which job threads update when they
 * end) and the log (its own lock).  A job thread has its own catalog and
 * store handles (a catalog handle is used by one thread at a time) and
 * renews its own lease from the progress callbacks of save and restore.
 */
#ifndef PS_AGENT_INT_H
#define PS_AGENT_INT_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "agent.h"
#include "projstore_catalog.h"

#define AGENT_DIR ".projstore"   /* ROOT/.projstore: the agent's own area (0700) */

struct agent_log {
	pthread_mutex_t lock;     /* protects everything below */
	FILE *f;                  /* NULL = stderr */
	char path[PATH_MAX];
	int64_t size;             /* bytes in the current file */
	int64_t max;              /* rotate beyond this */
	int keep;                 /* rotated files kept */
};

enum job_kind { JOB_OP = 1, JOB_AUTOSAVE = 2 };

enum job_outcome {
	OUT_OK = 1,        /* done (an operation finished, a save succeeded) */
	OUT_FAILED,        /* done with an error (recorded; autosave backs off) */
	OUT_RETRY,         /* could not start (lease held elsewhere ...): try again later */
	OUT_SKIPPED,       /* nothing to do here (the project is not ours any more) */
};

struct job {
	struct agent *a;
	enum job_kind kind;
	struct ps_cat_op op;                  /* JOB_OP: the operation as polled */
	int takeover;                         /* JOB_OP: a move whose old host is down */
	char project[PS_CAT_ID_MAX + 1];
	pthread_t thread;
	int joinable;                         /* the thread was started */
	/* the job's own handles (its thread only) */
	struct ps_catalog *cat;
	struct ps_store *store;
	int leased;                           /* holds the project's lease */
	int lease_lost;                       /* a renewal failed: publish nothing */
	int64_t lease_at;                     /* monotonic us of the last acquire/renewal */
	int64_t progress_at;                  /* monotonic us of the last progress write */
	const char *phase;                    /* phase shown in the operation */
	int paused;                           /* a test pause in the restore happened */
	/* under a->lock */
	int finished;                         /* the thread has ended: join it */
	enum job_outcome outcome;
	char result[PS_CAT_TEXT_MAX];
	struct job *next;
};

/* autosave state of one project deployed here */
struct asv {
	char id[PS_CAT_ID_MAX + 1];
	int64_t due;                          /* monotonic us */
	int fails;                            /* consecutive failures */
};

/* an operation that asked to be retried later */
struct retry {
	int64_t op;
	int64_t not_before;                   /* monotonic us */
};

struct agent {
	struct ps_agent_opts o;
	char host[PS_CAT_ID_MAX + 1];
	char catalog_spec[4200];              /* resolved once, for every job's handle */
	char store[4200];                     /* store location */
	char root[PATH_MAX];                  /* real path of the host's root */
	char adir[PATH_MAX];                  /* ROOT/.projstore */
	char cache_dir[PATH_MAX];
	char store_id[64];
	struct ps_catalog *cat;               /* the main thread's handle */
	int lock_fd;                          /* ROOT/.projstore/agent.lock, flock'ed */
	struct agent_log log;
	pthread_mutex_t lock;                 /* protects jobs, nops, nsaves */
	pthread_cond_t cond;                  /* signalled when a job finishes */
	struct job *jobs;                     /* running (and finished, not yet joined) */
	int nops, nsaves;
	struct asv *asv;                      /* sorted by id */
	size_t nasv;
	struct retry *retry;
	size_t nretry;
	int64_t next_scan, next_reconcile;    /* monotonic us */
	int catalog_ok;                       /* the last heartbeat succeeded */
	/* store handles kept between jobs (under lock): a job takes one and
	 * brings it up to date (ps_store_refresh) instead of loading the whole
	 * index again, the largest fixed cost of a small save or restore */
	struct ps_store *spool[8];
	int nspool;
	unsigned rnd;                         /* rand_r state (main thread) */
	int store_registered;                 /* under lock: our store is in the catalog's stores */
};

extern volatile sig_atomic_t ps_agent_stop;  /* SIGTERM/SIGINT: finish and exit */

/* agent_log.c */
int agent_log_open(struct agent_log *l, const char *path, int64_t max, int keep,
		   struct ps_error *err);
void agent_log_reopen(struct agent_log *l);
void agent_log_close(struct agent_log *l);
void alog(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int agent_err(struct ps_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int agent_err_sys(struct ps_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t agent_mono_us(void);
void agent_copy(char *dst, size_t len, const char *src);

/* agent_root.c */
int agent_root_prepare(struct agent *a, struct ps_error *err);
void agent_root_release(struct agent *a);
/* 1 when ROOT/project exists (as a directory) */
int agent_copy_exists(struct agent *a, const char *project);
/* Removes ROOT/project (renamed into the trash first, so a half-removed copy
 * is never at its place) and its file cache. */
int agent_remove_copy(struct agent *a, const char *project, struct ps_error *err);
/* The two halves of it: the rename into the trash (tname = the name there, ""
 * when there was no copy), and the deletion, which can wait until the
 * operation is recorded as done. */
int agent_trash_copy(struct agent *a, const char *project, char *tname, size_t tlen,
		     struct ps_error *err);
void agent_trash_remove(struct agent *a, const char *tname);
/* Moves ROOT/project aside into the quarantine area (root only), records an
 * event with `why`, and keeps the area within its bounds. cat: the caller's. */
int agent_quarantine(struct agent *a, struct ps_catalog *cat, const char *project,
		     const char *why);
/* Removes leftovers (half-done restores, trash), quarantines working copies
 * the catalog does not place here. Skips projects with a running job. */
void agent_reconcile(struct agent *a);
/* The same for one project (after a job of it ended without doing its work). */
void agent_reconcile_project(struct agent *a, const char *project);
/* Removes the entry `name` of directory dfd recursively, never following
 * symlinks. 0 or -errno. */
int agent_rm_at(int dfd, const char *name);
int agent_project_busy(struct agent *a, const char *project);

/* agent_host.c (all of them do nothing without --hosting) */
/* User, subvolume with the quota, cgroup for j->project; *uid = its uid
 * (-1 without hosting): the restore maps every owner to it. */
int agent_host_prepare(struct job *j, int64_t *uid, struct ps_error *err);
/* Stops every process of the project (before the save that precedes a close
 * or a move): SIGTERM, 3 s, then SIGKILL until none is left.  Non-zero (with
 * err) when some could not be stopped: the close or move must not go on. */
int agent_host_stop(struct job *j, struct ps_error *err);
/* Removes cgroup, network link, user, group and the working copy. */
/* stops the project's processes, removes its cgroup, network and user, and
 * with remove_home its working copy (subvolume) too */
void agent_host_teardown(struct job *j, int remove_home);
/* removes the working copy only (after a move's handoff: the user may already
 * belong to the new host when both share one user database) */
void agent_host_remove_home(struct job *j);
/* Main thread, every poll: limits and quotas applied again, usage recorded. */
void agent_host_tick(struct agent *a);

/* agent_ops.c */
void *agent_job_main(void *arg);
/* renews the job's lease when a third of it has passed (sets lease_lost
 * when another owner has it) */
void job_renew(struct job *j);
/* the operation's phase and bytes (JOB_OP only; < 0 = unchanged) */
void job_phase(struct job *j, const char *phase, int64_t done, int64_t total);
/* an event on the job's project, also logged */
void job_event(struct job *j, const char *kind, int error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* PROJSTORE_AGENT_PAUSE=POINT:SECONDS (tests): sleeps there, keeping the lease */
void test_pause(struct job *j, const char *point);

/* agent_sync.c */
/* What a sync before a move did. */
struct agent_sync_out {
	int synced;                           /* 1: the stores differ and a sync ran to its end */
	uint64_t snapshots;                   /* snapshots copied */
	uint64_t bytes;                       /* their stored bytes sent */
	char src_label[200], dst_label[200];  /* "URL (datacenter)" for messages */
};
/* The store of host `name` as registered (hosts.store_url, "" = none
 * registered: the host uses the store its agent was started with, taken to be
 * ours) and its datacenter. */
int agent_host_store(struct job *j, const char *name, char *url, size_t ulen, char *dc,
		     size_t dlen, struct ps_error *err);
/* Copies the snapshots of j->project that the store at `dst` lacks from the
 * one at `src` (ps_sync of one project) while the job keeps its lease, and
 * records it: the catalog's syncs table, an event ("synced N snapshots from
 * store X to Y before the move"), the operation's phase and bytes.
 * Two locations that turn out to name one store are no error (out->synced
 * stays 0).  Fails (message in err) when the sync cannot run, the newest
 * snapshot of the project in `src` is not in `dst` afterwards (damage, a
 * lock), or the lease was lost meanwhile. */
int agent_sync_project(struct job *j, const char *src, const char *src_dc, const char *dst,
		       const char *dst_dc, const char *before, struct agent_sync_out *out,
		       struct ps_error *err);
/* The name under which this host's store keeps its snapshot summaries in the
 * catalog: "" (= "default") when the host row names no store of its own (one
 * store for all), else the store's id, registered in the catalog's stores
 * table with the host row's store URL and datacenter. */
void agent_store_name(struct job *j, char *name, size_t len);
/* Open (deploy of a stored project), under the lease, before the restore:
 * when the catalog's snapshot summaries say another store has a newer
 * snapshot of the project than this host's store, syncs it from there first.
 * That store failing: with allow_older an event warns and the deploy goes on
 * from this store's newest; without, an event says why and this fails
 * (reason in why): the project must stay stored. */
int agent_open_sync(struct job *j, int allow_older, char *why, size_t wl);

#endif
