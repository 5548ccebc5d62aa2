/*
 * agent.h - the host agent (`projstore agent`): the daemon on each compute
 * host that carries out what the catalog asks of that host.
 *
 * It deploys projects (restores their newest snapshot that restores cleanly
 * into ROOT/PROJECT), saves them on request and every few minutes (autosave),
 * closes them (save, then remove the working copy) and moves them between
 * hosts, recording every step in the catalog: operations (progress, result),
 * placement (projects.host, status, under a lease), events.  The protocol and
 * its crash cases are in docs/ARCHITECTURE.md ("Host agent and project life
 * cycle"); operators' notes in docs/OPERATIONS.md.
 *
 * Only this header is seen by the command line (src/cli/cmd_agent.c); the
 * agent itself uses only the public API (projstore.h, projstore_catalog.h).
 */
#ifndef PS_AGENT_H
#define PS_AGENT_H

#include <stdint.h>

#include "projstore.h"

struct ps_agent_opts {
	const char *host;             /* this host's name in the catalog (required) */
	const char *catalog;          /* catalog spec; NULL = $PROJSTORE_CATALOG / store default */
	const char *store;            /* store location; NULL = the host's store URL */
	const char *fallback_store;   /* used when neither is set (the CLI's store) */
	int64_t autosave_us;          /* autosave interval; 0 = never autosave */
	int64_t jitter_us;            /* autosave times vary by up to +- this */
	int max_parallel;             /* saves (and, separately, operations) at a time */
	int threads;                  /* worker threads of each save/restore; 0 = cores */
	int64_t poll_us;              /* how often the catalog is polled (and heartbeat) */
	int64_t lease_us;             /* lease length; renewed every third of it */
	int64_t reconcile_us;         /* how often working copies are checked against the catalog */
	const char *log_path;         /* NULL = stderr */
	int64_t log_max_bytes;        /* rotate the log at this size */
	int log_keep;                 /* rotated logs kept (agent.log.1 ... .N) */
	int quarantine_keep;          /* quarantined copies kept at most */
	int64_t quarantine_max_age_us;/* ... and for at most this long */
	const char *cache_dir;        /* file cache; NULL = ROOT/.projstore/cache */
	int once;                     /* one round: reconcile, operations, saves; then exit */
	int verbose;                  /* log every autosave, not only those that saved */
	int hosting;                  /* each project as its own user, in its sandbox, under its
				       * limits and quota (docs/HOSTING.md); needs root */
};
#define PS_AGENT_OPTS_INIT                                                                      \
	{ NULL, NULL, NULL, NULL, 300LL * 1000000, 60LL * 1000000, 2, 0, 1000000,             \
	  60LL * 1000000, 30LL * 1000000, NULL, 10LL << 20, 3, 20, 7LL * 86400 * 1000000, NULL, \
	  0, 0, 0 }

/* Runs the agent until SIGTERM/SIGINT (or one round with o->once). Returns
 * PS_OK after a clean shutdown, PS_ELOCKED when another agent serves this host
 * (or its root), another code with a message when it cannot start. */
int ps_agent_run(const struct ps_agent_opts *o, struct ps_error *err);

/* Parses a duration: "90" or "90s" seconds, "500ms", "5m" minutes (not
 * months), "2h", "1d", combinations such as "1m30s". Returns 0 or -1. */
int ps_agent_parse_duration(const char *s, int64_t *us);

#endif
