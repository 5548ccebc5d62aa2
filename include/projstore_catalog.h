/*
 * projstore_catalog.h - the catalog: where every project is, the hosts, the
 * operations front ends poll, the events of each project, and a cache of the
 * store's facts (sizes, ratios, newest snapshot) for fast listing.
 *
 * Two engines, one schema, one code path: SQLite (the embedded default) and
 * PostgreSQL (libpq) for many hosts sharing one catalog.  Every state change
 * is one transaction.  A handle is used by one thread at a time; open one
 * handle per thread (the server keeps a pool).
 *
 * Truth: the store is the truth for a project's data and settings (snapshots,
 * quota, compression); the catalog is the truth for placement (hosts,
 * locations, leases, operations, events) and caches the store's facts.
 *
 * Times are microseconds since the Unix epoch (UTC) taken from the clock of
 * the process writing them; hosts sharing a catalog keep their clocks in step
 * (NTP); leases last far longer than any clock skew.
 *
 * Project life cycle (projects.status):
 *   stored -> deploying -> deployed -> saving -> deployed ... -> closing -> stored
 *   deployed -> moving -> (deploying on the new host) -> deployed
 * projects.host is the location front ends connect to: it is set only once a
 * working copy is complete on that host and emptied before a working copy is
 * removed, so a non-empty host always names a usable, writable copy, and never
 * more than one.
 *
 * Operations (what commands and the server ask for; the host agents do the
 * work): kind open|save|close|move; state pending -> running -> done|failed;
 * `host` is the host whose agent must act next (a move is handed from the
 * old host to the new one by rewriting `host` in one transaction).  At most
 * one open/close/move is active per project at a time: a second request
 * fails with PS_ELOCKED and names the active operation.
 */
#ifndef PROJSTORE_CATALOG_H
#define PROJSTORE_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "projstore.h"

#define PS_CAT_ID_MAX 64         /* project ids, host names, store names */
#define PS_CAT_TEXT_MAX 512      /* results, details */

struct ps_catalog;

/* ------------------------------------------------------------ open/close */

/*
 * Opens the catalog named by `spec`: "sqlite:PATH", "postgresql://..." (or
 * "postgres://..."), or a plain PATH (SQLite).  With spec NULL or "":
 * $PROJSTORE_CATALOG if set, else "catalog.db" inside `store_location` when
 * that is a local directory (not a network filesystem); a remote store has no
 * default and this fails with PS_EINVAL saying so.  store_location may be
 * NULL (then a spec is required).  Applies pending schema migrations (one
 * transaction, serialised between processes); fails if the catalog's schema is
 * newer than this program.  A new SQLite file is created as needed.
 */
int ps_catalog_open(struct ps_catalog **out, const char *spec, const char *store_location,
		    struct ps_error *err);
void ps_catalog_close(struct ps_catalog *cat);
/* "sqlite" or "postgresql" */
const char *ps_catalog_engine(const struct ps_catalog *cat);
/* The spec it was opened with, with any password removed (for messages). */
const char *ps_catalog_name(const struct ps_catalog *cat);
int ps_catalog_schema_version(struct ps_catalog *cat);
/* Resolves the spec ps_catalog_open would use into buf; PS_ENOTFOUND when
 * there is none (no spec, no env, remote or no store). */
int ps_catalog_default_spec(const char *store_location, char *buf, size_t len,
			    struct ps_error *err);
int64_t ps_cat_now(void); /* microseconds since the epoch */

/* ------------------------------------------------------------- projects */

struct ps_cat_project {
	char id[PS_CAT_ID_MAX + 1];
	char host[PS_CAT_ID_MAX + 1];         /* location; "" = not deployed */
	char status[16];                      /* stored deploying deployed saving closing moving */
	char desired_host[PS_CAT_ID_MAX + 1]; /* where operators want it; "" = closed */
	int64_t quota_bytes;                  /* 0 = none */
	int64_t logical_bytes;                /* of the newest snapshot */
	int64_t stored_bytes;                 /* attributed to the project (ps_stats) */
	double compressratio;
	double dedupratio;
	int64_t snapshots;                    /* number of snapshots */
	char last_snapshot[PS_SNAPNAME_MAX + 1];
	int64_t last_snapshot_at;             /* 0 = none */
	int64_t last_save_at;                 /* when the last save attempt ended; 0 = never */
	char last_save_result[PS_CAT_TEXT_MAX]; /* "ok", "partial: ...", "over quota", "failed: ..." */
	int migrated;
	int maintenance;
	char lease_owner[PS_CAT_ID_MAX + 1];  /* "" = no lease */
	int64_t lease_expires;
	int64_t uid;                          /* hosting: the project's uid/gid, -1 = none yet */
	int64_t updated_at;
};

/* Fetches one project; PS_ENOTFOUND if the catalog has never heard of it. */
int ps_cat_project_get(struct ps_catalog *cat, const char *id, struct ps_cat_project *out,
		       struct ps_error *err);

/* Where a project is, read fresh (projstore where, GET /v1/projects/{id}/location):
 * its host ("" = not deployed: deploy first), status ("unknown" when the catalog
 * has never heard of it) and working copy (the host's root + "/" + id; "" when
 * not deployed). */
struct ps_cat_where {
	char project[PS_CAT_ID_MAX + 1];
	char host[PS_CAT_ID_MAX + 1];
	char status[32];
	char path[1200];
};
int ps_cat_where(struct ps_catalog *cat, const char *id, struct ps_cat_where *out,
		 struct ps_error *err);

struct ps_cat_query {
	const char *search;   /* substring of the id (case-insensitive); NULL = all */
	const char *host;     /* only projects deployed there */
	const char *status;   /* only this status */
	const char *after;    /* paging cursor: ids greater than this */
	int limit;            /* 0 = no limit */
};
#define PS_CAT_QUERY_INIT { NULL, NULL, NULL, NULL, 0 }

/* Lists projects ordered by id. *out is ps_malloc'ed (free with free()). */
int ps_cat_project_list(struct ps_catalog *cat, const struct ps_cat_query *q,
			struct ps_cat_project **out, size_t *n, struct ps_error *err);
int ps_cat_project_count(struct ps_catalog *cat, const struct ps_cat_query *q, int64_t *n,
			 struct ps_error *err);

/* The store's facts about a project, cached in the catalog (save, quota,
 * sync and rescan write them). Fields < 0 (or "" for strings) are left as
 * they are; creates the project row (status stored) if it is new. */
struct ps_cat_store_facts {
	int64_t quota_bytes;       /* 0 = none; < 0 = unchanged */
	int64_t logical_bytes;
	int64_t stored_bytes;
	double compressratio;      /* < 0 = unchanged */
	double dedupratio;
	int64_t snapshots;
	const char *last_snapshot; /* NULL = unchanged */
	int64_t last_snapshot_at;
	const char *store;         /* store name for the snapshot summary; NULL = "default" */
};
#define PS_CAT_STORE_FACTS_INIT { -1, -1, -1, -1.0, -1.0, -1, NULL, -1, NULL }
int ps_cat_project_set_facts(struct ps_catalog *cat, const char *id,
			     const struct ps_cat_store_facts *f, struct ps_error *err);
/* Records the end of a save attempt (result text as in last_save_result). */
int ps_cat_project_save_result(struct ps_catalog *cat, const char *id, int64_t at,
			       const char *result, struct ps_error *err);
/* Ensures a row exists (status stored) without changing anything else. */
int ps_cat_project_ensure(struct ps_catalog *cat, const char *id, struct ps_error *err);
int ps_cat_project_set_flag(struct ps_catalog *cat, const char *id, const char *flag /* "migrated"|"maintenance" */,
			    int value, struct ps_error *err);

/* ------------------------------------------------------------- leases */

/* Takes (or renews) the lease on a project for `owner` until now+ttl_us.
 * PS_ELOCKED if another owner holds an unexpired lease (message names it);
 * PS_ENOTFOUND if the project has no row. */
int ps_cat_lease_acquire(struct ps_catalog *cat, const char *project, const char *owner,
			 int64_t ttl_us, struct ps_error *err);
/* Releases it if `owner` holds it (no error if it does not). */
int ps_cat_lease_release(struct ps_catalog *cat, const char *project, const char *owner,
			 struct ps_error *err);

/* ------------------------------------------------------------- placement */

/*
 * Sets location and status in one transaction, only while `owner` holds the
 * lease (PS_ELOCKED otherwise, so a host whose lease expired can never
 * publish a location).  host "" = not deployed.
 */
int ps_cat_project_set_state(struct ps_catalog *cat, const char *project, const char *owner,
			     const char *host, const char *status, struct ps_error *err);

/* ------------------------------------------------------------- hosts */

struct ps_cat_host {
	char name[PS_CAT_ID_MAX + 1];
	char datacenter[PS_CAT_ID_MAX + 1];
	char store_url[PS_CAT_TEXT_MAX];
	char root[PS_CAT_TEXT_MAX];
	int64_t capacity;          /* projects it may hold; 0 = unlimited */
	int64_t last_heartbeat;    /* 0 = never */
	char state[16];            /* up, down (no heartbeat), draining, disabled */
	int64_t deployed;          /* projects deployed there (computed) */
};

/* Adds a host, or updates it if it exists (name is the key). */
int ps_cat_host_add(struct ps_catalog *cat, const struct ps_cat_host *h, struct ps_error *err);
int ps_cat_host_get(struct ps_catalog *cat, const char *name, struct ps_cat_host *out,
		    struct ps_error *err);
/* state is computed: a host whose last heartbeat is older than
 * PS_CAT_HOST_DEAD_US is reported "down" unless disabled/draining. */
int ps_cat_host_list(struct ps_catalog *cat, struct ps_cat_host **out, size_t *n,
		     struct ps_error *err);
int ps_cat_host_heartbeat(struct ps_catalog *cat, const char *name, struct ps_error *err);
int ps_cat_host_set_state(struct ps_catalog *cat, const char *name, const char *state,
			  struct ps_error *err);
#define PS_CAT_HOST_DEAD_US (30LL * 1000000) /* default; PROJSTORE_HOST_DEAD_SECONDS overrides */
int64_t ps_cat_host_dead_us(void);
/* 1 if the host's heartbeat is fresh (and it is not disabled) */
int ps_cat_host_alive(const struct ps_cat_host *h, int64_t now);

/* ------------------------------------------------------------- operations */

struct ps_cat_op {
	int64_t id;
	char kind[16];                     /* open save close move */
	char project[PS_CAT_ID_MAX + 1];
	char host[PS_CAT_ID_MAX + 1];      /* whose agent acts next */
	char target_host[PS_CAT_ID_MAX + 1]; /* open/move: where it goes */
	char state[16];                    /* pending running done failed */
	char phase[64];                    /* human-readable step: "queued", "saving", "restoring" ... */
	int64_t bytes_done;
	int64_t bytes_total;
	int64_t created_at, started_at, finished_at; /* 0 = not yet */
	char result[PS_CAT_TEXT_MAX];
	char requested_by[PS_CAT_ID_MAX + 1];
	char options[64];                  /* as requested, words separated by spaces: "allow-older" */
};

/*
 * Requests an operation (one transaction).  kind "open": target_host may be
 * "" (the catalog picks the up host with the most room); if the project is
 * already deployed the returned op is already done with the location as
 * result.  "save"/"close": the project must be deployed (PS_EINVAL if not).
 * "move": target_host required; not deployed = open there.  PS_ELOCKED when
 * another open/close/move of the project is active; PS_ENOTFOUND for an
 * unknown host.  A save request while one is pending returns that one.
 */
int ps_cat_request(struct ps_catalog *cat, const char *kind, const char *project,
		   const char *target_host, const char *requested_by, struct ps_cat_op *op_out,
		   struct ps_error *err);
/* The same with options for the agent that does the work (op.options; NULL =
 * none).  open: "allow-older" = deploy the newest snapshot of the host's own
 * store even when another store that cannot be read has a newer one. */
int ps_cat_request_opts(struct ps_catalog *cat, const char *kind, const char *project,
			const char *target_host, const char *requested_by, const char *options,
			struct ps_cat_op *op_out, struct ps_error *err);
int ps_cat_op_get(struct ps_catalog *cat, int64_t id, struct ps_cat_op *out, struct ps_error *err);
/* Active (pending or running) operations whose next actor is `host`, oldest first. */
int ps_cat_ops_for_host(struct ps_catalog *cat, const char *host, struct ps_cat_op **out,
			size_t *n, struct ps_error *err);
/* Active operations that go to `host` but whose next actor is another host
 * (a move still with its old host), oldest first: what the target's agent
 * looks at to take over a move whose old host is down. */
int ps_cat_ops_for_target(struct ps_catalog *cat, const char *host, struct ps_cat_op **out,
			  size_t *n, struct ps_error *err);
/* Recent operations of a project (newest first, at most limit). */
int ps_cat_ops_for_project(struct ps_catalog *cat, const char *project, int limit,
			   struct ps_cat_op **out, size_t *n, struct ps_error *err);
/* Progress: state "running" set on first update. Fields < 0 / NULL unchanged. */
int ps_cat_op_progress(struct ps_catalog *cat, int64_t id, const char *phase, int64_t bytes_done,
		       int64_t bytes_total, struct ps_error *err);
/* Hands an operation to another host (move: old host done, new host next),
 * only if it is still with `from_host` (PS_ELOCKED otherwise). */
int ps_cat_op_handoff(struct ps_catalog *cat, int64_t id, const char *from_host,
		      const char *to_host, const char *phase, struct ps_error *err);
/* Ends an operation: ok = done, else failed; result is shown to users. */
int ps_cat_op_finish(struct ps_catalog *cat, int64_t id, int ok, const char *result,
		     struct ps_error *err);

/* ------------------------------------------------------------- events */

struct ps_cat_event {
	int64_t id;
	char project[PS_CAT_ID_MAX + 1];
	int64_t at;
	char kind[32];               /* deployed, saved, save-failed, closed, moved, restore-fallback ... */
	char actor[PS_CAT_ID_MAX + 1]; /* host or user that caused it */
	int error;                   /* 1 = something went wrong */
	char detail[PS_CAT_TEXT_MAX];
};
int ps_cat_event_add(struct ps_catalog *cat, const char *project, const char *kind,
		     const char *actor, int error, const char *detail, struct ps_error *err);
/* Newest first, at most limit (0 = 100). */
int ps_cat_events(struct ps_catalog *cat, const char *project, int limit,
		  struct ps_cat_event **out, size_t *n, struct ps_error *err);

/* ------------------------------------------------------------- stores, syncs, snapshots */

struct ps_cat_store {
	char name[PS_CAT_ID_MAX + 1];
	char url[PS_CAT_TEXT_MAX];
	char datacenter[PS_CAT_ID_MAX + 1];
};
int ps_cat_store_add(struct ps_catalog *cat, const struct ps_cat_store *s, struct ps_error *err);
int ps_cat_store_list(struct ps_catalog *cat, struct ps_cat_store **out, size_t *n,
		      struct ps_error *err);

struct ps_cat_sync {
	int64_t id;
	char source[PS_CAT_TEXT_MAX];
	char destination[PS_CAT_TEXT_MAX];
	int64_t started_at, finished_at;
	char result[PS_CAT_TEXT_MAX];  /* "ok", "conflicts: N", "failed: ..." ("" while running) */
	int64_t bytes;
	int64_t objects;
	int64_t snapshots;
};
int ps_cat_sync_begin(struct ps_catalog *cat, const char *source, const char *destination,
		      int64_t *id_out, struct ps_error *err);
int ps_cat_sync_finish(struct ps_catalog *cat, int64_t id, const char *result, int64_t bytes,
		       int64_t objects, int64_t snapshots, struct ps_error *err);
/* Newest first; source/destination NULL = any. */
int ps_cat_sync_list(struct ps_catalog *cat, const char *source, const char *destination, int limit,
		     struct ps_cat_sync **out, size_t *n, struct ps_error *err);

/* Newest snapshot per project and store. */
struct ps_cat_snapshot {
	char project[PS_CAT_ID_MAX + 1];
	char store[PS_CAT_ID_MAX + 1];
	char name[PS_SNAPNAME_MAX + 1];
	int64_t at;
	int64_t logical_bytes;
	int64_t stored_bytes;
	int64_t files;
};
int ps_cat_snapshot_set(struct ps_catalog *cat, const struct ps_cat_snapshot *s,
			struct ps_error *err);
int ps_cat_snapshot_list(struct ps_catalog *cat, const char *project, struct ps_cat_snapshot **out,
			 size_t *n, struct ps_error *err);

/* ------------------------------------------------------------- aggregates */

struct ps_cat_totals {
	int64_t projects;
	int64_t deployed;
	int64_t logical_bytes;
	int64_t stored_bytes;
	int64_t ops_pending;
	int64_t ops_running;
	int64_t ops_failed;
	int64_t hosts_up;
	int64_t hosts_down;
};
int ps_cat_totals(struct ps_catalog *cat, struct ps_cat_totals *out, struct ps_error *err);

/* ------------------------------------------------------------- migration */

/*
 * `projstore migrate`: the start and the end of one project's import, one
 * transaction each (catalog_migrate.c).
 *
 * begin: creates the row if new; refuses with PS_ELOCKED (the message says
 * why) a project that is deployed, not "stored", has an active open/close/
 * move, or is leased by another owner; else takes the lease for `owner` until
 * now+ttl_us and sets maintenance (open/close/move requests are refused until
 * the end). *before (may be NULL) gets status, lease, migrated and
 * maintenance as they were.
 * end: records facts (as ps_cat_project_set_facts) and the snapshot summary,
 * the save result, the event, clears maintenance, sets migrated, releases
 * owner's lease.
 * fail: records a "migrate-failed" event (error) with the reason and releases
 * owner's lease; clears maintenance (if owner held the lease) unless
 * keep_maintenance.
 */
struct ps_cat_import {
	const struct ps_cat_store_facts *facts; /* NULL = unchanged */
	int64_t files;               /* files of the newest snapshot (summary) */
	const char *result;          /* last_save_result: "ok", "partial: ...", ... */
	const char *event_kind;      /* "migrated"; NULL = no event */
	const char *event_detail;
	int event_error;
	const char *actor;
};
int ps_cat_migrate_begin(struct ps_catalog *cat, const char *project, const char *owner,
			 int64_t ttl_us, struct ps_cat_project *before, struct ps_error *err);
int ps_cat_migrate_end(struct ps_catalog *cat, const char *project, const char *owner,
		       const struct ps_cat_import *im, struct ps_error *err);
/* The end of n imports (projects[i] with ims[i]) in one transaction: all or
 * none (migrate's group commit: one commit for a batch of projects). */
int ps_cat_migrate_end_many(struct ps_catalog *cat, size_t n, const char *const *projects,
			    const char *owner, const struct ps_cat_import *ims,
			    struct ps_error *err);
int ps_cat_migrate_fail(struct ps_catalog *cat, const char *project, const char *owner,
			const char *actor, const char *reason, int keep_maintenance,
			struct ps_error *err);

/* ------------------------------------------------------------- store -> catalog */

/* Refreshes the cached facts of one project from the store (snapshots,
 * sizes, ratios, quota): what save, quota and sync call after they change a
 * project, and what rescan calls for every project of the store. */
int ps_cat_refresh_project(struct ps_catalog *cat, struct ps_store *store, const char *store_name,
			   const char *project, struct ps_error *err);

/* ------------------------------------------------------------- statistics */

/* One group of an aggregate (catalog_stats.c): key (and key2) with a count
 * and, where stated, a sum. */
struct ps_cat_count {
	char key[PS_CAT_ID_MAX + 1];
	char key2[PS_CAT_ID_MAX + 1];
	int64_t count;
	int64_t sum;
};
/* Projects per status (key). */
int ps_cat_count_projects_by_status(struct ps_catalog *cat, struct ps_cat_count **out, size_t *n,
				    struct ps_error *err);
/* Operations per kind (key) and state (key2); sum = microseconds the
 * finished ones took. */
int ps_cat_count_ops(struct ps_catalog *cat, struct ps_cat_count **out, size_t *n,
		     struct ps_error *err);
/* Events per kind (key) and "ok"/"error" (key2). */
int ps_cat_count_events(struct ps_catalog *cat, struct ps_cat_count **out, size_t *n,
			struct ps_error *err);
/* Sizes per store, from the newest-snapshot summaries. */
struct ps_cat_store_usage {
	char store[PS_CAT_ID_MAX + 1];
	int64_t projects;       /* projects with a snapshot there */
	int64_t logical_bytes;  /* of their newest snapshots */
	int64_t stored_bytes;
	int64_t newest_at;      /* newest snapshot time; 0 = none */
};
int ps_cat_store_usage(struct ps_catalog *cat, struct ps_cat_store_usage **out, size_t *n,
		       struct ps_error *err);
/* A cheap query: 0 when the catalog answers. */
int ps_cat_ping(struct ps_catalog *cat, struct ps_error *err);

/* ------------------------------------------------------------- JSON */

/*
 * The JSON form of the catalog's objects (jansson; catalog_json.c), shared by
 * the commands' --json output and the HTTP API (docs/API.md): times as RFC
 * 3339 strings or null, "" as null, ages against now_us (ps_cat_now()).
 * Each returns a new reference owned by the caller, NULL when out of memory.
 */
struct json_t;
struct json_t *ps_cat_time_json(int64_t us);
struct json_t *ps_cat_project_json(const struct ps_cat_project *p, int64_t now_us);
struct json_t *ps_cat_host_json(const struct ps_cat_host *h, int64_t now_us);
struct json_t *ps_cat_op_json(const struct ps_cat_op *o);
struct json_t *ps_cat_event_json(const struct ps_cat_event *e, int64_t now_us);
struct json_t *ps_cat_store_json(const struct ps_cat_store *s);
struct json_t *ps_cat_sync_json(const struct ps_cat_sync *s, int64_t now_us);
struct json_t *ps_cat_snapshot_json(const struct ps_cat_snapshot *s, int64_t now_us);
struct json_t *ps_cat_totals_json(const struct ps_cat_totals *t);
/* {"project", "host" (null = not deployed), "status", "path" (null = not deployed)} */
struct json_t *ps_cat_where_json(const struct ps_cat_where *w);

#endif
