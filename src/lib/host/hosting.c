/*
 * hosting.c - the hosting life cycle of a project on one host (see
 * include/projstore_host.h and docs/HOSTING.md): prepare, apply, run, usage,
 * stop, teardown.  It ties the pieces together: the user (host_users.c), the
 * working copy as a btrfs subvolume with a qgroup limit (host_btrfs.c), the
 * cgroup (host_cgroup.c), the sandbox (host_sandbox.c) and its outbound link
 * (host_net.c).
 *
 * Invariants: the cgroup of a project exists exactly while it is prepared on
 * this host; every process of the project (the sandbox init included) is in
 * it, so stopping the cgroup stops the project; teardown removes what
 * prepare made, in reverse order, and each step succeeds when its piece is
 * already gone.
 */
#define _GNU_SOURCE
#include "host_int.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *ps_host_net_name(int network)
{
	return network == PS_HOST_NET_OUTBOUND ? "outbound" : "none";
}

int ps_host_net_parse(const char *s)
{
	if (s && strcmp(s, "none") == 0)
		return PS_HOST_NET_NONE;
	if (s && strcmp(s, "outbound") == 0)
		return PS_HOST_NET_OUTBOUND;
	return -1;
}

/* the top-level directory of an absolute, lexically normalised path that is
 * one of the sandbox's read-only system directories, else NULL */
static const char *sys_dir_of(const char *path)
{
	char norm[PATH_MAX];
	size_t o = 0;
	norm[0] = 0;
	/* normalise: no "//", ".", ".." (".." above / stays at /) */
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && norm[--o] != '/')
				;
			norm[o] = 0;
		} else {
			if (o + n + 2 > sizeof(norm))
				return NULL;
			norm[o++] = '/';
			memcpy(norm + o, p, n);
			o += n;
			norm[o] = 0;
		}
		p = e;
	}
	if (!norm[0])
		return NULL; /* "/" itself: the homes are /ID, in none of them */
	const char *first = norm + 1;
	size_t fl = strcspn(first, "/");
	for (const char *const *d = ps_sandbox_sys_dirs; *d; d++)
		if (strlen(*d) == fl && strncmp(first, *d, fl) == 0)
			return *d;
	return NULL;
}

int ps_host_root_check(const char *root, struct ps_error *err)
{
	if (!root || root[0] != '/')
		return ps_err(err, PS_EINVAL, "the host root must be an absolute path");
	if (strlen(root) >= PATH_MAX)
		return ps_err(err, PS_EINVAL, "host root too long");
	const char *d = sys_dir_of(root);
	char real[PATH_MAX] = "";
	if (!d) {
		/* as this machine resolves it: the longest existing prefix through
		 * realpath (Debian's /lib is a link to usr/lib), the rest as given */
		char pre[PATH_MAX], res[PATH_MAX];
		snprintf(pre, sizeof(pre), "%s", root);
		for (;;) {
			if (realpath(pre, res)) {
				size_t pl = strlen(pre);
				if ((size_t)snprintf(real, sizeof(real), "%s%s", res, root + pl) <
				    sizeof(real))
					d = sys_dir_of(real);
				break;
			}
			char *slash = strrchr(pre, '/');
			if (!slash || slash == pre)
				break;
			*slash = 0;
		}
	}
	if (d)
		return ps_err(err, PS_EINVAL,
			      "host root '%s'%s%s%s is inside /%s, which every sandbox gets read-only: "
			      "each project would see the other projects' working copies there; choose a "
			      "root outside /usr, /etc, /bin, /sbin, /lib*, /opt",
			      root, real[0] ? " (" : "", real, real[0] ? ")" : "", d);
	return PS_OK;
}

struct hctx {
	struct ps_cgroup cg;
	char user[PS_HOST_USER_MAX + 1];
	char home[PATH_MAX];
};

static int hctx_init(const struct ps_host_config *cfg, const char *project, struct hctx *h,
		     struct ps_error *err)
{
	if (!cfg || !cfg->root || cfg->root[0] != '/')
		return ps_err(err, PS_EINVAL, "the host root must be an absolute path");
	int rc = ps_host_user_name(project, h->user, sizeof(h->user), err);
	if (rc != PS_OK)
		return rc;
	size_t rl = strlen(cfg->root);
	while (rl > 1 && cfg->root[rl - 1] == '/')
		rl--;
	if (rl + strlen(project) + 2 > sizeof(h->home))
		return ps_err(err, PS_EINVAL, "host root too long");
	snprintf(h->home, sizeof(h->home), "%.*s/%s", (int)rl, cfg->root, project);
	return ps_cgroup_init(&h->cg, cfg->cgroup_root, cfg->cgroup_base, err);
}

static void add_note(struct ps_host_status *st, const char *s)
{
	if (!s || !*s)
		return;
	size_t o = strlen(st->note);
	snprintf(st->note + o, sizeof(st->note) - o, "%s%s", o ? "; " : "", s);
}

static void fill_status(struct ps_host_status *st, const struct hctx *h)
{
	memset(st, 0, sizeof(*st));
	st->cgroup_version = h->cg.version;
	snprintf(st->user, sizeof(st->user), "%s", h->user);
	snprintf(st->home, sizeof(st->home), "%s", h->home);
}

/* the quota part of prepare/apply */
static int apply_quota(const struct hctx *h, const struct ps_host_project *p,
		       struct ps_host_status *st, struct ps_error *err)
{
	char msg[600];
	if (!ps_btrfs_is_btrfs(h->home)) {
		snprintf(msg, sizeof(msg), "%s is not on btrfs: the disk quota is not enforced",
			 h->home);
		add_note(st, msg);
		return PS_OK;
	}
	if (!ps_btrfs_is_subvolume(h->home)) {
		snprintf(msg, sizeof(msg),
			 "%s is a plain directory, not a subvolume: the disk quota is not enforced",
			 h->home);
		add_note(st, msg);
		return PS_OK;
	}
	struct ps_error e;
	int rc = ps_btrfs_qgroup_limit(h->home, (uint64_t)(p->quota_bytes > 0 ? p->quota_bytes : 0), &e);
	if (rc == PS_ENOTFOUND) {
		snprintf(msg, sizeof(msg), "%s: the disk quota is not enforced", e.msg);
		add_note(st, msg);
		return PS_OK;
	}
	if (rc != PS_OK)
		return ps_err(err, rc, "%s", e.msg);
	st->quota_enforced = 1;
	return PS_OK;
}

static int apply_cgroup(const struct hctx *h, const struct ps_host_project *p,
			struct ps_host_status *st, struct ps_error *err)
{
	char notes[400];
	int rc = ps_cgroup_create(&h->cg, h->user, err);
	if (rc == PS_OK)
		rc = ps_cgroup_set_limits(&h->cg, h->user, &p->limits, notes, sizeof(notes), err);
	if (rc != PS_OK)
		return ps_err_prefix(err, "project %s", p->id);
	add_note(st, notes);
	return PS_OK;
}

static void warn_notes(const struct ps_host_config *cfg, const struct ps_host_status *st)
{
	if (cfg->warn && st->note[0])
		cfg->warn(cfg->warn_ctx, st->home, st->note);
}

int ps_hosting_prepare(const struct ps_host_config *cfg, const struct ps_host_project *p,
		       struct ps_host_status *st, struct ps_error *err)
{
	struct hctx h;
	struct ps_host_status tmp;
	if (!st)
		st = &tmp;
	int rc = hctx_init(cfg, p->id, &h, err);
	if (rc != PS_OK)
		return rc;
	fill_status(st, &h);
	if ((rc = ps_host_root_check(cfg->root, err)) != PS_OK)
		return rc;
	rc = ps_user_create(h.user, p->uid, p->id, err);
	if (rc != PS_OK)
		return rc;
	struct stat sb;
	if (lstat(h.home, &sb) != 0) {
		if (errno != ENOENT)
			return ps_err_sys(err, "cannot examine '%s'", h.home);
		if (ps_btrfs_is_btrfs(cfg->root))
			rc = ps_btrfs_subvol_create(h.home, err);
		else if (mkdir(h.home, 0700) != 0)
			rc = ps_err_sys(err, "cannot create '%s'", h.home);
		if (rc != PS_OK)
			return rc;
	} else if (!S_ISDIR(sb.st_mode)) {
		return ps_err(err, PS_EEXISTS, "'%s' exists and is not a directory", h.home);
	}
	if (lstat(h.home, &sb) == 0 && (sb.st_uid != (uid_t)p->uid || sb.st_gid != (gid_t)p->uid) &&
	    chown(h.home, (uid_t)p->uid, (gid_t)p->uid) != 0)
		return ps_err_sys(err, "cannot give '%s' to uid %lld", h.home, (long long)p->uid);
	if ((rc = apply_quota(&h, p, st, err)) != PS_OK)
		return rc;
	if ((rc = apply_cgroup(&h, p, st, err)) != PS_OK)
		return rc;
	warn_notes(cfg, st);
	return PS_OK;
}

int ps_hosting_present(const struct ps_host_config *cfg, const char *project)
{
	struct hctx h;
	if (hctx_init(cfg, project, &h, NULL) != PS_OK)
		return 0;
	return ps_cgroup_exists(&h.cg, h.user);
}

static void sandbox_of(const struct ps_host_config *cfg, const struct ps_host_project *p,
		       const struct hctx *h, struct ps_sandbox *sb)
{
	memset(sb, 0, sizeof(*sb));
	sb->cfg = cfg;
	sb->cg = &h->cg;
	sb->project = p->id;
	sb->user = h->user;
	sb->uid = p->uid;
	sb->home = h->home;
	sb->network = p->limits.network;
}

int ps_hosting_apply(const struct ps_host_config *cfg, const struct ps_host_project *p,
		     struct ps_host_status *st, struct ps_error *err)
{
	struct hctx h;
	struct ps_host_status tmp;
	if (!st)
		st = &tmp;
	int rc = hctx_init(cfg, p->id, &h, err);
	if (rc != PS_OK)
		return rc;
	fill_status(st, &h);
	if (!ps_cgroup_exists(&h.cg, h.user))
		return ps_err(err, PS_ENOTFOUND, "project %s is not deployed on this host", p->id);
	if ((rc = apply_cgroup(&h, p, st, err)) != PS_OK)
		return rc;
	if (access(h.home, F_OK) == 0 && (rc = apply_quota(&h, p, st, err)) != PS_OK)
		return rc;
	struct ps_sandbox sb;
	sandbox_of(cfg, p, &h, &sb);
	pid_t init = ps_sandbox_find(&sb);
	if (init && p->limits.network == PS_HOST_NET_OUTBOUND && !ps_net_attached(p->uid))
		rc = ps_net_attach(cfg, h.user, p->uid, init, err);
	else if (p->limits.network != PS_HOST_NET_OUTBOUND && ps_net_attached(p->uid))
		rc = ps_net_detach(cfg, h.user, p->uid, err);
	return rc;
}

int ps_hosting_run(const struct ps_host_config *cfg, const struct ps_host_project *p,
		   char *const *argv, const struct ps_host_run_opts *opts, int *wstatus,
		   struct ps_error *err)
{
	struct hctx h;
	*wstatus = 0;
	if (!argv || !argv[0])
		return ps_err(err, PS_EINVAL, "no command given");
	int rc = hctx_init(cfg, p->id, &h, err);
	if (rc != PS_OK)
		return rc;
	if ((rc = ps_host_root_check(cfg->root, err)) != PS_OK)
		return rc;
	struct stat sb;
	if (stat(h.home, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return ps_err(err, PS_ENOTFOUND, "project %s is not deployed on this host (no %s)", p->id,
			      h.home);
	if (p->uid < 0)
		return ps_err(err, PS_EINVAL, "project %s has no uid", p->id);
	if (!ps_cgroup_exists(&h.cg, h.user)) {
		/* prepared before a reboot: cgroups do not survive one */
		struct ps_host_status st;
		fill_status(&st, &h);
		if ((rc = ps_user_create(h.user, p->uid, p->id, err)) != PS_OK ||
		    (rc = apply_cgroup(&h, p, &st, err)) != PS_OK)
			return rc;
	}
	struct ps_sandbox box;
	sandbox_of(cfg, p, &h, &box);
	pid_t init = 0;
	int started = 0;
	rc = ps_sandbox_ensure(&box, &init, &started, err);
	if (rc != PS_OK)
		return rc;
	if (opts && opts->admit && (rc = opts->admit(opts->admit_ctx, err)) != PS_OK) {
		if (started)
			kill(init, SIGKILL); /* its namespaces and mounts go with it */
		return rc;
	}
	return ps_sandbox_exec(&box, init, argv, opts, wstatus, err);
}

int ps_hosting_stop(const struct ps_host_config *cfg, const struct ps_host_project *p,
		    int grace_ms, int *killed, struct ps_error *err)
{
	struct hctx h;
	int rc = hctx_init(cfg, p->id, &h, err);
	if (rc != PS_OK)
		return rc;
	rc = ps_cgroup_kill_all(&h.cg, h.user, grace_ms, killed, err);
	if (rc != PS_OK)
		return ps_err_prefix(err, "project %s", p->id);
	if (p->uid >= 0 && ps_net_attached(p->uid))
		rc = ps_net_detach(cfg, h.user, p->uid, err);
	return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
	return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

int ps_hosting_remove_home(const struct ps_host_config *cfg, const char *project,
			   struct ps_error *err)
{
	struct hctx h;
	int rc = hctx_init(cfg, project, &h, err);
	if (rc != PS_OK)
		return rc;
	struct stat sb;
	if (lstat(h.home, &sb) != 0)
		return errno == ENOENT ? PS_OK : ps_err_sys(err, "cannot examine '%s'", h.home);
	if (ps_btrfs_is_btrfs(h.home) && ps_btrfs_is_subvolume(h.home))
		return ps_btrfs_subvol_delete(h.home, err);
	if (nftw(h.home, rm_entry, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
		return ps_err_sys(err, "cannot remove '%s'", h.home);
	return PS_OK;
}

int ps_hosting_teardown(const struct ps_host_config *cfg, const struct ps_host_project *p,
			int remove_home, struct ps_error *err)
{
	struct hctx h;
	int rc = hctx_init(cfg, p->id, &h, err);
	if (rc != PS_OK)
		return rc;
	if ((rc = ps_hosting_stop(cfg, p, 0, NULL, err)) != PS_OK)
		return rc;
	if ((rc = ps_cgroup_remove(&h.cg, h.user, err)) != PS_OK)
		return rc;
	if (p->uid >= 0 && (rc = ps_net_detach(cfg, h.user, p->uid, err)) != PS_OK)
		return rc;
	if (remove_home && (rc = ps_hosting_remove_home(cfg, p->id, err)) != PS_OK)
		return rc;
	if (p->uid >= 0 && (rc = ps_user_remove(h.user, p->uid, err)) != PS_OK)
		return rc;
	return PS_OK;
}

int ps_hosting_usage(const struct ps_host_config *cfg, const char *project,
		     struct ps_host_usage *out, struct ps_error *err)
{
	struct hctx h;
	memset(out, 0, sizeof(*out));
	out->disk_bytes = -1;
	out->disk_limit = -1;
	int rc = hctx_init(cfg, project, &h, err);
	if (rc != PS_OK)
		return rc;
	rc = ps_cgroup_usage(&h.cg, h.user, out, err);
	if (rc != PS_OK)
		return rc;
	uint64_t ref, lim;
	if (ps_btrfs_is_btrfs(h.home) && ps_btrfs_is_subvolume(h.home) &&
	    ps_btrfs_qgroup_usage(h.home, &ref, &lim, NULL) == PS_OK) {
		out->disk_bytes = (int64_t)ref;
		out->disk_limit = (int64_t)lim;
	}
	return PS_OK;
}

int ps_hosting_list(const struct ps_host_config *cfg, char ***names, size_t *n,
		    struct ps_error *err)
{
	struct ps_cgroup cg;
	int rc = ps_cgroup_init(&cg, cfg ? cfg->cgroup_root : NULL, cfg ? cfg->cgroup_base : NULL, err);
	if (rc != PS_OK)
		return rc;
	return ps_cgroup_list(&cg, names, n, err);
}
