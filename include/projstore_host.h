/*
 * projstore_host.h - hosting: each deployed project runs as its own Unix user,
 * in its own sandbox (mount, PID, UTS, IPC and network namespaces), under
 * cgroup limits (CPU, memory, block I/O weight, process count) and, on btrfs,
 * a quota-group limit on its working copy.  docs/HOSTING.md describes the
 * model; this header is the API the agent and the CLI use.
 *
 * Life of a deployed project on a host:
 *
 *   ps_hosting_prepare   user + group (uid from the catalog), the working copy
 *                        ROOT/PROJECT-ID as a btrfs subvolume with a qgroup
 *                        limit (a plain directory elsewhere), the cgroup with
 *                        the limits.  The caller then restores into the home
 *                        with every owner mapped to the project's uid.
 *   ps_hosting_run       runs a command in the project's sandbox; the sandbox
 *                        (a small init process holding the namespaces) starts
 *                        on the first run and lives until stopped.
 *   ps_hosting_apply     applies changed limits / quota / network mode live.
 *   ps_hosting_usage     CPU, memory, I/O, processes and disk from the kernel.
 *   ps_hosting_stop      stops every process in the project's cgroup (TERM,
 *                        a grace period, then KILL of whatever is left), the
 *                        sandbox with them; the working copy stays.
 *   ps_hosting_teardown  stop, then remove the cgroup, the network pieces and
 *                        the user and group (and the working copy if asked).
 *
 * Every function is idempotent: preparing a prepared project, or tearing down
 * one that is gone, succeeds.  All of them need root.
 */
#ifndef PROJSTORE_HOST_H
#define PROJSTORE_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "projstore.h"
#include "projstore_catalog.h"

/* ------------------------------------------------------------ names, uids */

#define PS_HOST_USER_MAX 32              /* the Linux limit on user names */
#define PS_HOST_UID_MIN 10000000LL       /* default uid range ($PROJSTORE_UID_MIN/MAX) */
#define PS_HOST_UID_MAX 19999999LL
#define PS_HOST_HOME "/home/project"    /* the project's home inside its sandbox */
#define PS_HOST_DATA "/data"            /* the shared read-only volume inside */
#define PS_HOST_SCRATCH "/scratch"      /* the shared read-write volume inside */

/*
 * The Unix user (and group) name of a project: for a UUID, its 32 hex digits
 * without dashes (lower case); for any other id (and for a UUID made of
 * decimal digits only, which tools would take for a number), "p" followed by
 * the first 31 hex digits of the SHA-256 of the id.  buf needs 33 bytes.
 */
int ps_host_user_name(const char *project, char *buf, size_t len, struct ps_error *err);
/* The uid range projects get ($PROJSTORE_UID_MIN, $PROJSTORE_UID_MAX). */
void ps_host_uid_range(int64_t *min, int64_t *max);
/*
 * PS_EINVAL (with the reason) when a host root is not absolute or lies in
 * one of the host directories every sandbox gets read-only (/usr, /etc,
 * /bin, /sbin, /lib*, /opt): every project would see the working copies
 * there.  Checked as written and, for its existing part, as this machine
 * resolves it (symbolic links).  prepare and run check it; `host add` too.
 */
int ps_host_root_check(const char *root, struct ps_error *err);

/* ------------------------------------------------------------ limits */

enum { PS_HOST_NET_NONE = 0, PS_HOST_NET_OUTBOUND = 1 };

struct ps_host_limits {
	double cpu;          /* cores (1.5 = 150% of one core); 0 = unlimited */
	int64_t memory;      /* bytes; 0 = unlimited */
	int64_t io_weight;   /* 1-10000 (cgroup v2 io.weight; v1 maps to 10-1000); 0 = default */
	int64_t pids;        /* processes and threads; 0 = unlimited */
	int network;         /* PS_HOST_NET_* */
};
#define PS_HOST_LIMITS_INIT { 0, 0, 0, 0, PS_HOST_NET_NONE }

const char *ps_host_net_name(int network); /* "none" / "outbound" */
int ps_host_net_parse(const char *s);      /* -1 if unknown */

/* ------------------------------------------------------------ configuration */

struct ps_host_config {
	const char *root;         /* ROOT: working copies are ROOT/PROJECT-ID (required) */
	const char *cgroup_root;  /* NULL = $PROJSTORE_CGROUP_ROOT, else /sys/fs/cgroup */
	const char *cgroup_base;  /* parent cgroup of the projects' cgroups; NULL =
				   * $PROJSTORE_CGROUP_BASE, else "projstore" */
	const char *run_dir;      /* locks and the sandbox mount point; NULL =
				   * $PROJSTORE_RUN_DIR, else /run/projstore */
	const char *data;         /* host directory mounted read-only at /data; NULL = none */
	const char *scratch;      /* host directory mounted read-write at /scratch; NULL = none */
	const char *net_prefix;   /* outbound networking: a /16 "A.B" for the per-project
				   * /30 links; NULL = $PROJSTORE_NET_PREFIX, else "100.72" */
	ps_warn_fn warn;          /* notes such as "no quota enforcement" (may be NULL) */
	void *warn_ctx;
};
#define PS_HOST_CONFIG_INIT { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/* One deployed project, as the host functions need it. */
struct ps_host_project {
	const char *id;
	int64_t uid;                 /* uid = gid; from ps_cat_uid_assign() */
	int64_t quota_bytes;         /* 0 = none */
	struct ps_host_limits limits;
};

/* What prepare/apply found out about enforcement. */
struct ps_host_status {
	int quota_enforced;          /* the working copy is a btrfs subvolume with a qgroup limit */
	int cgroup_version;          /* 1 or 2 */
	char user[PS_HOST_USER_MAX + 1];
	char home[4096];             /* ROOT/PROJECT-ID */
	char note[512];              /* why something is not enforced ("" if all is) */
};

/* ------------------------------------------------------------ life cycle */

int ps_hosting_prepare(const struct ps_host_config *cfg, const struct ps_host_project *p,
		       struct ps_host_status *st, struct ps_error *err);
int ps_hosting_apply(const struct ps_host_config *cfg, const struct ps_host_project *p,
		     struct ps_host_status *st, struct ps_error *err);
/* Stops every process of the project: SIGTERM, up to grace_ms for them to
 * end, then SIGKILL (the cgroup frozen first, so a fork bomb cannot outrun
 * it).  *killed (may be NULL) = processes that were signalled. */
int ps_hosting_stop(const struct ps_host_config *cfg, const struct ps_host_project *p,
		    int grace_ms, int *killed, struct ps_error *err);
/* Stop, then remove cgroup, network link, user and group; remove_home also
 * deletes the working copy (subvolume or directory). */
int ps_hosting_teardown(const struct ps_host_config *cfg, const struct ps_host_project *p,
			int remove_home, struct ps_error *err);
/* Deletes ROOT/PROJECT-ID: the subvolume, or the directory tree. */
int ps_hosting_remove_home(const struct ps_host_config *cfg, const char *project,
			   struct ps_error *err);
/* 1 if the project has a cgroup on this host (it was prepared here). */
int ps_hosting_present(const struct ps_host_config *cfg, const char *project);

/* ------------------------------------------------------------ run */

struct ps_host_run_opts {
	const char *cwd;          /* inside the sandbox; NULL = the home */
	char *const *env;         /* extra NAME=VALUE entries; NULL = none */
	/* Called once the sandbox runs (its init in the project's cgroup) and
	 * before the command starts; non-zero (with err) refuses the command,
	 * and a sandbox this call started is killed again.  `run` checks the
	 * project's status in the catalog here a second time: a close or move
	 * that sets its status after this check stops the cgroup after it, so
	 * the command cannot outlive that stop.  NULL = none. */
	int (*admit)(void *ctx, struct ps_error *err);
	void *admit_ctx;
};
#define PS_HOST_RUN_OPTS_INIT { NULL, NULL, NULL, NULL }

/*
 * Runs argv in the project's sandbox as the project's user, starting the
 * sandbox if it is not running, and waits for it.  *wstatus is the wait
 * status (exit code or signal).  Signals sent to the caller (SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT) are passed on.
 * A command that cannot be executed gives PS_ENOTFOUND (not found) or
 * PS_ERROR with the reason; *wstatus is then 127 or 126 as a shell's.
 */
int ps_hosting_run(const struct ps_host_config *cfg, const struct ps_host_project *p,
		   char *const *argv, const struct ps_host_run_opts *opts, int *wstatus,
		   struct ps_error *err);

/* ------------------------------------------------------------ usage */

struct ps_host_usage {
	int running;             /* processes in the cgroup */
	int64_t cpu_usec;        /* CPU time since the cgroup was made */
	int64_t memory_bytes;    /* now */
	int64_t memory_peak;     /* highest seen; -1 = unknown */
	int64_t io_bytes;        /* read + written through the block layer; -1 = unknown */
	int64_t pids;            /* processes and threads now */
	int64_t oom_kills;       /* -1 = unknown */
	int64_t disk_bytes;      /* qgroup referenced bytes; -1 = unknown (no quota) */
	int64_t disk_limit;      /* qgroup limit; 0 = none, -1 = unknown */
};

int ps_hosting_usage(const struct ps_host_config *cfg, const char *project,
		     struct ps_host_usage *out, struct ps_error *err);
/* The user names of the projects with a cgroup on this host (ps_malloc'ed
 * array of ps_malloc'ed strings; free each, then the array). */
int ps_hosting_list(const struct ps_host_config *cfg, char ***names, size_t *n,
		    struct ps_error *err);
/* The project id recorded for a project user (its GECOS field); PS_ENOTFOUND
 * if the user is unknown or not a projstore user. */
int ps_host_user_project(const char *user, char *id, size_t len, struct ps_error *err);

/* ------------------------------------------------------------ catalog */

/* The project's uid: the one kept in the catalog, or the lowest free one in
 * [min, max] assigned now (one transaction; unique in the catalog). */
int ps_cat_uid_assign(struct ps_catalog *cat, const char *project, int64_t min, int64_t max,
		      int64_t *uid, struct ps_error *err);
int ps_cat_limits_get(struct ps_catalog *cat, const char *project, struct ps_host_limits *out,
		      struct ps_error *err);
/* Fields < 0 are left as they are (network < 0 too). */
int ps_cat_limits_set(struct ps_catalog *cat, const char *project,
		      const struct ps_host_limits *l, struct ps_error *err);

struct ps_cat_usage {
	char project[PS_CAT_ID_MAX + 1];
	char host[PS_CAT_ID_MAX + 1];
	int64_t at;              /* when measured (us since the epoch) */
	struct ps_host_usage u;
};
int ps_cat_usage_set(struct ps_catalog *cat, const char *project, const char *host,
		     const struct ps_host_usage *u, struct ps_error *err);
/* Newest usage of the projects measured on host (NULL = all hosts), by id. */
int ps_cat_usage_list(struct ps_catalog *cat, const char *host, struct ps_cat_usage **out,
		      size_t *n, struct ps_error *err);
int ps_cat_usage_clear(struct ps_catalog *cat, const char *project, struct ps_error *err);

struct ps_cat_volume {
	char host[PS_CAT_ID_MAX + 1];   /* "" = every host */
	char kind[16];                  /* data | scratch */
	char path[PS_CAT_TEXT_MAX];
};
int ps_cat_volume_set(struct ps_catalog *cat, const char *host, const char *kind,
		      const char *path, struct ps_error *err);
int ps_cat_volume_remove(struct ps_catalog *cat, const char *host, const char *kind,
			 struct ps_error *err);
int ps_cat_volume_list(struct ps_catalog *cat, struct ps_cat_volume **out, size_t *n,
		       struct ps_error *err);
/* The volumes in force on host: its own, else the ones for every host;
 * "" when there is none. */
int ps_cat_volumes_for(struct ps_catalog *cat, const char *host, char *data, size_t dlen,
		       char *scratch, size_t slen, struct ps_error *err);

#endif
