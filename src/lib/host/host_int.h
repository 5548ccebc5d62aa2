/*
 * host_int.h - internals of the hosting module (src/lib/host): cgroups (v1
 * and v2), btrfs subvolumes and quota groups, project users, the outbound
 * network link and the sandbox.  Only hosting.c and the unit tests use these.
 */
#ifndef PS_HOST_INT_H
#define PS_HOST_INT_H

#include <limits.h>
#include <sys/types.h>

#include "projstore_host.h"
#include "../util/util.h"

/* ------------------------------------------------------------ cgroups */

#define PS_CG_NV1 6

struct ps_cgroup {
	int version;            /* 1 or 2 */
	char root[PATH_MAX];    /* the cgroup file system root (/sys/fs/cgroup) */
	char base[128];         /* parent of the projects' cgroups, relative to root */
	/* v2: the directory of the unified hierarchy (root, or root/unified) */
	char v2dir[PATH_MAX];
	/* v1: one directory per controller; "" when the controller is absent */
	char v1dir[PS_CG_NV1][PATH_MAX];
};

/* index of the v1 controllers in v1dir */
enum { PS_CG_CPU, PS_CG_CPUACCT, PS_CG_MEMORY, PS_CG_PIDS, PS_CG_BLKIO, PS_CG_FREEZER };

/* Finds the hierarchy under root (NULL = $PROJSTORE_CGROUP_ROOT or
 * /sys/fs/cgroup): v2 when its controllers include cpu, memory and pids,
 * else v1 (cpu, memory and pids required).  base NULL = $PROJSTORE_CGROUP_BASE
 * or "projstore". */
int ps_cgroup_init(struct ps_cgroup *cg, const char *root, const char *base, struct ps_error *err);
/* Makes the project's cgroup (and the base) if missing. */
int ps_cgroup_create(const struct ps_cgroup *cg, const char *name, struct ps_error *err);
int ps_cgroup_exists(const struct ps_cgroup *cg, const char *name);
/* Writes the limits (0 = unlimited). *notes gets what could not be applied. */
int ps_cgroup_set_limits(const struct ps_cgroup *cg, const char *name,
			 const struct ps_host_limits *l, char *notes, size_t nlen,
			 struct ps_error *err);
/* Moves pid (0 = the caller) into the project's cgroup. */
int ps_cgroup_join(const struct ps_cgroup *cg, const char *name, pid_t pid, struct ps_error *err);
/* The processes in the cgroup (ps_malloc'ed). */
int ps_cgroup_procs(const struct ps_cgroup *cg, const char *name, pid_t **out, size_t *n,
		    struct ps_error *err);
/* SIGTERM to all, grace_ms, then freeze + SIGKILL until empty (timeout 10 s). */
int ps_cgroup_kill_all(const struct ps_cgroup *cg, const char *name, int grace_ms, int *killed,
		       struct ps_error *err);
int ps_cgroup_usage(const struct ps_cgroup *cg, const char *name, struct ps_host_usage *u,
		    struct ps_error *err);
/* Removes the (empty) cgroup; no error if it is gone. */
int ps_cgroup_remove(const struct ps_cgroup *cg, const char *name, struct ps_error *err);
int ps_cgroup_list(const struct ps_cgroup *cg, char ***names, size_t *n, struct ps_error *err);

/* ------------------------------------------------------------ btrfs */

int ps_btrfs_is_btrfs(const char *path);
int ps_btrfs_is_subvolume(const char *path);
int ps_btrfs_subvol_create(const char *path, struct ps_error *err);
int ps_btrfs_subvol_delete(const char *path, struct ps_error *err);
/* Limits the referenced bytes of the subvolume at path (0 = no limit).
 * PS_ENOTFOUND (with a message) when quotas are not enabled. */
int ps_btrfs_qgroup_limit(const char *path, uint64_t bytes, struct ps_error *err);
/* Referenced bytes and limit (0 = none) of the subvolume at path. */
int ps_btrfs_qgroup_usage(const char *path, uint64_t *referenced, uint64_t *limit,
			  struct ps_error *err);

/* ------------------------------------------------------------ users */

/* Makes the user and group `name` with uid = gid = uid and the project id in
 * the GECOS field; succeeds if both exist as asked; PS_EEXISTS when the name
 * or the number belongs to someone else. */
int ps_user_create(const char *name, int64_t uid, const char *project, struct ps_error *err);
/* Removes them, only if they are this projstore project's. */
int ps_user_remove(const char *name, int64_t uid, struct ps_error *err);
/* Runs argv (a system tool) and waits; output to stderr goes into err. */
int ps_host_exec(const char *const *argv, struct ps_error *err);

/* ------------------------------------------------------------ network */

/* Gives the sandbox whose init is pid an outbound link (veth + NAT). */
int ps_net_attach(const struct ps_host_config *cfg, const char *user, int64_t uid, pid_t pid,
		  struct ps_error *err);
/* Removes the link and its NAT rules (no error if absent). */
int ps_net_detach(const struct ps_host_config *cfg, const char *user, int64_t uid,
		  struct ps_error *err);
int ps_net_attached(int64_t uid);

/* ------------------------------------------------------------ sandbox */

/* The host's top-level directories every sandbox gets read-only ("usr",
 * "etc", ...; NULL-terminated): a host root inside one of them would show
 * every project's working copy to every sandbox (ps_host_root_check). */
extern const char *const ps_sandbox_sys_dirs[];

struct ps_sandbox {
	const struct ps_host_config *cfg;
	const struct ps_cgroup *cg;
	const char *project;
	const char *user;
	int64_t uid;
	const char *home;          /* host path of the working copy */
	int network;
};

/* The pid of the sandbox's init (in the caller's PID namespace), 0 if none. */
pid_t ps_sandbox_find(const struct ps_sandbox *sb);
/* Starts the sandbox unless it runs; *pid = its init. *started = 1 if new. */
int ps_sandbox_ensure(const struct ps_sandbox *sb, pid_t *pid, int *started, struct ps_error *err);
int ps_sandbox_exec(const struct ps_sandbox *sb, pid_t init, char *const *argv,
		    const struct ps_host_run_opts *opts, int *wstatus, struct ps_error *err);

/* config defaults */
const char *ps_host_run_dir(const struct ps_host_config *cfg);

#endif
