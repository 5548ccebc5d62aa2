/*
 * projstore_sync.h - replication between stores: sync, the ssh transport's
 * far end (serve-stdio), and repair from another store.
 *
 * A store location for these functions is a directory path, any location
 * ps_store_open() accepts (gluster://... once that backend is built in), or
 * ssh://[user@]host[:port]/path: a `projstore serve-stdio PATH` process
 * started over ssh at the far end, speaking the framed protocol of
 * docs/FORMAT.md ("Sync protocol") on the connection's stdin/stdout.
 *
 * sync copies the snapshots (and the objects they need) that DST lacks from
 * SRC; both sides' snapshots are kept, nothing on DST is overwritten or
 * deleted.  It is crash safe (objects are indexed before any ref naming them
 * is published) and idempotent: a killed run followed by a new one gives
 * what one clean run gives.  docs/FORMAT.md ("Sync") has the invariants.
 *
 * Conventions as in projstore.h: 0 or a negative PS_E* code, messages in
 * struct ps_error, results through **out belong to the caller.
 */
#ifndef PROJSTORE_SYNC_H
#define PROJSTORE_SYNC_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "projstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when location is an ssh:// URL (sync, serve-stdio and repair only). */
int ps_location_is_ssh(const char *location);

/* Called with one line of news ("connected to ...", "project p: 3 snapshots
 * copied"); level 0 = information, 1 = warning. */
typedef void (*ps_sync_log_fn)(void *ctx, int level, const char *line);

struct ps_sync_opts {
	const char *const *projects;  /* NULL-terminated, or NULL = every project of SRC */
	int dry_run;                  /* decide and report; write nothing anywhere */
	double lock_timeout;          /* seconds to wait for a DST project lock (default 60) */
	double io_timeout;            /* ssh: seconds without progress before giving up (300) */
	const char *ssh_command;      /* NULL: $PROJSTORE_SSH, else "ssh" (split at blanks) */
	const char *remote_bin;       /* NULL: $PROJSTORE_REMOTE_BIN, else "projstore" */
	volatile sig_atomic_t *stop;  /* set (by a signal handler): stop at the next safe point */
	ps_sync_log_fn log;
	void *cb_ctx;
};
#define PS_SYNC_OPTS_INIT { NULL, 0, 60.0, 300.0, NULL, NULL, NULL, NULL, NULL }

/* Both sides saved a project since they last agreed: the snapshots each has
 * that the other lacks, newer than the newest snapshot both have. */
struct ps_sync_conflict {
	char project[72];
	char base[PS_SNAPNAME_MAX];   /* newest common snapshot, "" = none */
	char **src_only;              /* names, oldest first */
	size_t nsrc_only;
	char **dst_only;
	size_t ndst_only;
	char latest[PS_SNAPNAME_MAX]; /* DST's latest after the sync (newest by time) */
};

/* An object sync refused to copy (damaged or missing in SRC, or rejected by
 * DST's verification), with the snapshot that needed it. */
struct ps_sync_damage {
	char project[72];
	char snapshot[PS_SNAPNAME_MAX];
	char object[65];              /* hex id */
	char *path;                   /* where in the snapshot ("" = unknown) */
	char *message;
};

enum ps_sync_status {
	PS_SYNC_OK = 0,               /* everything SRC had is on DST */
	PS_SYNC_PARTIAL = 1,          /* some snapshots were not copied (damage) */
	PS_SYNC_LOCKED = 2,           /* the DST project lock was held: skipped */
	PS_SYNC_FAILED = 3,           /* an error stopped this project */
	PS_SYNC_STOPPED = 4,          /* opts->stop: not (fully) done */
};

struct ps_sync_project {
	char project[72];
	int status;                   /* enum ps_sync_status */
	char *error;                  /* NULL or why (FAILED, LOCKED) */
	uint64_t src_snapshots;       /* snapshots SRC has */
	uint64_t dst_snapshots;       /* DST has after the sync (before, for a dry run) */
	char **copied;                /* names of the snapshots copied (would be: dry run) */
	size_t ncopied;
	char **failed;                /* names of snapshots not copied because of damage */
	size_t nfailed;
	uint64_t objects;             /* objects sent (would be) */
	uint64_t bytes;               /* their record bytes as stored (compressed) */
	int settings_changed;         /* DST's settings took something from SRC's */
	char **settings_notes;        /* what was taken, and settings that differ */
	size_t nsettings_notes;
	int conflict;                 /* index into result->conflicts + 1, 0 = none */
};

struct ps_sync_result {
	int64_t started_ns, finished_ns;
	int dry_run;
	struct ps_sync_project *projects;
	size_t nprojects;
	struct ps_sync_conflict *conflicts;
	size_t nconflicts;
	struct ps_sync_damage *damage;
	size_t ndamage;
	uint64_t snapshots_copied;
	uint64_t objects_sent;        /* objects written to DST (would be) */
	uint64_t bytes_sent;          /* their record bytes as stored (compressed, headers included) */
	uint64_t objects_queried;     /* ids DST was asked about */
	uint64_t trees_read;          /* tree objects read from SRC */
	uint64_t wire_out, wire_in;   /* protocol bytes written to / read from ssh peers */
	uint64_t ssh_out, ssh_in;     /* ssh's own socket bytes, when /proc tells (else 0) */
	int64_t connect_ms;           /* time to set up ssh connections (0 = none) */
	char src_id[33], dst_id[33];  /* store ids */
};

/* Copies what DST lacks from SRC. Returns PS_OK when the sync ran (look at
 * the per-project status: damage, locks); an error when it could not run at
 * all (cannot open a store, connection failed, ...). *out (also on error,
 * when not NULL) is the caller's: ps_sync_result_free(). */
int ps_sync(const char *src, const char *dst, const struct ps_sync_opts *opts,
	    struct ps_sync_result **out, struct ps_error *err);
void ps_sync_result_free(struct ps_sync_result *r);

/* The far end of ssh:// locations: serves the store at `location` on in_fd
 * (requests) and out_fd (responses) until the peer says goodbye or the
 * connection ends. Protocol errors end it with PS_ECORRUPT (the peer is told
 * why in an error frame). log may be NULL. */
int ps_serve_stdio(const char *location, int in_fd, int out_fd, ps_sync_log_fn log, void *ctx,
		   struct ps_error *err);

/* ----------------------------------------------------------------- repair */

struct ps_repair_opts {
	double lock_timeout;          /* seconds to wait for gc's lock to retire packs (60) */
	double io_timeout;            /* as in ps_sync_opts */
	const char *ssh_command;
	const char *remote_bin;
	ps_sync_log_fn log;
	void *cb_ctx;
};
#define PS_REPAIR_OPTS_INIT { 60.0, 300.0, NULL, NULL, NULL, NULL }

struct ps_repair_item {
	char object[65];              /* hex id */
	int repaired;                 /* 1: a verified good copy is stored now */
	char *message;                /* why not, or where the copy came from */
};

struct ps_repair_result {
	struct ps_repair_item *items;
	size_t nitems;
	uint64_t repaired, unrepaired;
	uint64_t packs_retired;       /* damaged packs replaced by good copies and removed */
	uint64_t packs_kept;          /* damaged packs that stay (something in them not repaired) */
	char **notes;                 /* one line per pack decision */
	size_t nnotes;
};

/*
 * Replaces damaged or missing objects of `store` with verified copies from
 * the store at `other` (any location kind). `ids` are the objects (32-byte
 * ids) check found damaged or missing; `packs` the pack files check found
 * damaged as a whole (32-byte pack ids; may be NULL). Each good copy is
 * written to a new pack and indexed; a damaged pack whose every damaged
 * object was replaced is then rewritten without its damage: its good records
 * are copied too, the index segments stop naming it, and it is removed.
 */
int ps_repair(struct ps_store *store, const char *other, const uint8_t (*ids)[32], size_t nids,
	      const uint8_t (*packs)[32], size_t npacks, const struct ps_repair_opts *opts,
	      struct ps_repair_result **out, struct ps_error *err);
void ps_repair_result_free(struct ps_repair_result *r);

#ifdef __cplusplus
}
#endif
#endif
