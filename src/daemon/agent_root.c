/*
 * agent_root.c - the host's root directory, as the agent keeps it.
 *
 *   ROOT/PROJECT                 working copies (the only thing users see)
 *   ROOT/.PROJECT.projstore-tmp-XXXXXXXX
 *                                a restore in progress (ps_restore renames it
 *                                to ROOT/PROJECT when complete)
 *   ROOT/.PROJECT.projstore-new-XXXXXXXX
 *                                a new empty home being made
 *   ROOT/.projstore/             the agent's area, mode 0700, root only:
 *     agent.lock                 flock'ed by the running agent (one per root)
 *     trash/                     working copies being removed
 *     quarantine/PROJECT.TIME    working copies the catalog no longer places
 *                                here, kept for an operator (bounded: count
 *                                and age)
 *     cache/                     the file cache of the working copies (default)
 *
 * What must stay true: ROOT/PROJECT exists only complete (restores and new
 * homes are renamed into place), and a copy that is not the project's
 * catalog location does not stay at ROOT/PROJECT (reconciliation moves it
 * into the quarantine, where the project's user cannot reach it).  Nothing
 * is written into a project's home.
 *
 * Removal never follows a symlink (a project's processes may still be
 * running and changing the tree): every step is relative to a directory
 * descriptor opened with O_NOFOLLOW.
 */
#define _GNU_SOURCE
#include "agent_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ removal */

static int rm_dir_contents(int fd, int depth)
{
	int rc = 0;
	for (int pass = 0; pass < 3; pass++) {
		int dfd = dup(fd), removed = 0;
		DIR *d;
		struct dirent *de;
		if (dfd < 0)
			return -errno;
		d = fdopendir(dfd);
		if (!d) {
			close(dfd);
			return -errno;
		}
		rewinddir(d);
		rc = 0;
		while ((de = readdir(d))) {
			int r;
			struct stat st;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
				if (errno != ENOENT)
					rc = -errno;
				continue;
			}
			if (S_ISDIR(st.st_mode)) {
				int sub;
				if (depth > 4096) {
					rc = -ELOOP;
					continue;
				}
				sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub < 0) {
					/* a directory without permissions: as root only an
					 * attribute stops us; try to make it listable */
					if (errno == EACCES && !fchmodat(fd, de->d_name, 0700, 0))
						sub = openat(fd, de->d_name,
							     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
					if (sub < 0) {
						rc = -errno;
						continue;
					}
				}
				r = rm_dir_contents(sub, depth + 1);
				close(sub);
				if (r)
					rc = r;
				if (unlinkat(fd, de->d_name, AT_REMOVEDIR) && errno != ENOENT)
					rc = -errno;
				else
					removed = 1;
			} else if (unlinkat(fd, de->d_name, 0) && errno != ENOENT) {
				rc = -errno;
			} else {
				removed = 1;
			}
		}
		closedir(d);
		if (!rc || !removed)
			break;
	}
	return rc;
}

int agent_rm_at(int dfd, const char *name)
{
	struct stat st;
	int fd, rc;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) && errno != ENOENT ? -errno : 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES && !fchmodat(dfd, name, 0700, 0))
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = rm_dir_contents(fd, 0);
	close(fd);
	if (unlinkat(dfd, name, AT_REMOVEDIR) && errno != ENOENT && !rc)
		rc = -errno;
	return rc;
}

/* ------------------------------------------------------------ set-up */

static int mkdir_mode(const char *path, mode_t mode, struct ps_error *err)
{
	struct stat st;
	if (mkdir(path, mode) && errno != EEXIST)
		return agent_err_sys(err, "cannot create '%s'", path);
	if (lstat(path, &st) || !S_ISDIR(st.st_mode))
		return agent_err(err, PS_ERROR, "'%s' is not a directory", path);
	if ((st.st_mode & 07777) != mode && chmod(path, mode))
		return agent_err_sys(err, "cannot set the mode of '%s'", path);
	return PS_OK;
}

static int mkdir_p(const char *path, struct ps_error *err)
{
	char buf[PATH_MAX];
	agent_copy(buf, sizeof(buf), path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return agent_err_sys(err, "cannot create '%s'", buf);
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return agent_err_sys(err, "cannot create '%s'", buf);
	return PS_OK;
}

int agent_root_prepare(struct agent *a, struct ps_error *err)
{
	char path[PATH_MAX + 64], real[PATH_MAX];
	struct rlimit rl;
	int rc = mkdir_p(a->root, err);
	if (rc)
		return rc;
	if (!realpath(a->root, real))
		return agent_err_sys(err, "cannot resolve root '%s'", a->root);
	agent_copy(a->root, sizeof(a->root), real);
	snprintf(a->adir, sizeof(a->adir), "%s/" AGENT_DIR, a->root);
	if ((rc = mkdir_mode(a->adir, 0700, err)))
		return rc;
	snprintf(path, sizeof(path), "%s/agent.lock", a->adir);
	a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (a->lock_fd < 0)
		return agent_err_sys(err, "cannot open '%s'", path);
	if (flock(a->lock_fd, LOCK_EX | LOCK_NB)) {
		char pid[32] = "";
		ssize_t n = pread(a->lock_fd, pid, sizeof(pid) - 1, 0);
		if (n > 0)
			pid[n] = 0;
		pid[strcspn(pid, "\n")] = 0;
		close(a->lock_fd);
		a->lock_fd = -1;
		return agent_err(err, PS_ELOCKED,
				 "another agent already serves root %s (pid %s): one agent per host and root",
				 a->root, pid[0] ? pid : "?");
	}
	{
		char pid[32];
		int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (ftruncate(a->lock_fd, 0) == 0 && pwrite(a->lock_fd, pid, (size_t)n, 0) != n)
			alog(a, "warning: cannot write the pid into %s", path);
	}
	snprintf(path, sizeof(path), "%s/trash", a->adir);
	if ((rc = mkdir_mode(path, 0700, err)))
		return rc;
	snprintf(path, sizeof(path), "%s/quarantine", a->adir);
	if ((rc = mkdir_mode(path, 0700, err)))
		return rc;
	if (!a->cache_dir[0])
		snprintf(a->cache_dir, sizeof(a->cache_dir), "%s/cache", a->adir);
	if ((rc = mkdir_p(a->cache_dir, err)))
		return rc;
	/* removal and restores of deep trees hold one descriptor per level */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return PS_OK;
}

void agent_root_release(struct agent *a)
{
	if (a->lock_fd >= 0) {
		flock(a->lock_fd, LOCK_UN);
		close(a->lock_fd);
	}
	a->lock_fd = -1;
}

int agent_copy_exists(struct agent *a, const char *project)
{
	char path[PATH_MAX + 80];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", a->root, project);
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int agent_project_busy(struct agent *a, const char *project)
{
	int busy = 0;
	pthread_mutex_lock(&a->lock);
	for (struct job *j = a->jobs; j; j = j->next)
		if (!j->finished && !strcmp(j->project, project))
			busy = 1;
	pthread_mutex_unlock(&a->lock);
	return busy;
}

/* ------------------------------------------------------------ removal of copies */

/* removes <cache>/<store id>/<project>-<16 hex>.fcache: the file cache of
 * the copy (restores and saves of ROOT/project) */
static void remove_cache(struct agent *a, const char *project)
{
	char dir[PATH_MAX + 80];
	size_t pl = strlen(project);
	DIR *d;
	struct dirent *de;
	if (!a->store_id[0])
		return;
	snprintf(dir, sizeof(dir), "%s/%s", a->cache_dir, a->store_id);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (strncmp(n, project, pl) || n[pl] != '-' || strlen(n + pl + 1) != 16 + 7 ||
		    strcmp(n + pl + 1 + 16, ".fcache"))
			continue;
		if (strspn(n + pl + 1, "0123456789abcdef") != 16)
			continue;
		unlinkat(dirfd(d), n, 0);
	}
	closedir(d);
}

int agent_trash_copy(struct agent *a, const char *project, char *tname, size_t tlen,
		     struct ps_error *err)
{
	char from[PATH_MAX + 80], to[PATH_MAX + 160];
	unsigned r = (unsigned)agent_mono_us() ^ (unsigned)getpid();
	tname[0] = 0;
	snprintf(from, sizeof(from), "%s/%s", a->root, project);
	snprintf(tname, tlen, "%s.%08x", project, r);
	snprintf(to, sizeof(to), "%s/trash/%s", a->adir, tname);
	if (rename(from, to)) {
		tname[0] = 0;
		if (errno != ENOENT)
			return agent_err_sys(err, "cannot move '%s' to the trash", from);
	}
	remove_cache(a, project);
	return PS_OK;
}

void agent_trash_remove(struct agent *a, const char *tname)
{
	char dir[PATH_MAX + 16];
	int tfd, rc;
	if (!tname || !tname[0])
		return;
	snprintf(dir, sizeof(dir), "%s/trash", a->adir);
	tfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0) {
		alog(a, "warning: cannot open %s: %s", dir, strerror(errno));
		return;
	}
	rc = agent_rm_at(tfd, tname);
	close(tfd);
	if (rc) /* it is out of the way; the next start tries again */
		alog(a, "warning: cannot remove %s/%s completely: %s", dir, tname, strerror(-rc));
}

int agent_remove_copy(struct agent *a, const char *project, struct ps_error *err)
{
	char tname[PS_CAT_ID_MAX + 40];
	int rc = agent_trash_copy(a, project, tname, sizeof(tname), err);
	if (rc == PS_OK)
		agent_trash_remove(a, tname);
	return rc;
}

/* ------------------------------------------------------------ quarantine */

struct qent {
	char name[NAME_MAX + 1];
	int64_t at;
};

static int qent_cmp(const void *x, const void *y)
{
	const struct qent *p = x, *q = y;
	return p->at < q->at ? -1 : p->at > q->at;
}

/* keeps at most quarantine_keep entries, none older than the age limit */
static void quarantine_prune(struct agent *a)
{
	char dir[PATH_MAX + 32];
	struct qent *v = NULL;
	size_t n = 0, cap = 0;
	DIR *d;
	struct dirent *de;
	int dfd;
	int64_t now = ps_cat_now();
	snprintf(dir, sizeof(dir), "%s/quarantine", a->adir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	d = fdopendir(dup(dfd));
	while (d && (de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct qent *nv = realloc(v, nc * sizeof(*v));
			if (!nv)
				break;
			v = nv;
			cap = nc;
		}
		agent_copy(v[n].name, sizeof(v[n].name), de->d_name);
		v[n].at = (int64_t)st.st_ctim.tv_sec * 1000000 + st.st_ctim.tv_nsec / 1000;
		n++;
	}
	if (d)
		closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), qent_cmp);
	for (size_t i = 0; i < n; i++) {
		int too_many = n - i > (size_t)(a->o.quarantine_keep > 0 ? a->o.quarantine_keep : 0);
		int too_old = a->o.quarantine_max_age_us > 0 &&
			      now - v[i].at > a->o.quarantine_max_age_us;
		if (!too_many && !too_old)
			continue;
		int rc = agent_rm_at(dfd, v[i].name);
		alog(a, "quarantine: removed %s (%s)%s%s", v[i].name, too_many ? "over the count" : "too old",
		     rc ? ": " : "", rc ? strerror(-rc) : "");
	}
	free(v);
	close(dfd);
}

int agent_quarantine(struct agent *a, struct ps_catalog *cat, const char *project,
		     const char *why)
{
	char from[PATH_MAX + 80], to[PATH_MAX + 200], detail[PS_CAT_TEXT_MAX], ts[40];
	struct ps_error err;
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(from, sizeof(from), "%s/%s", a->root, project);
	for (int i = 0;; i++) {
		if (i == 0)
			snprintf(to, sizeof(to), "%s/quarantine/%s.%s", a->adir, project, ts);
		else
			snprintf(to, sizeof(to), "%s/quarantine/%s.%s-%d", a->adir, project, ts, i);
		if (!renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE))
			break;
		if (errno == EEXIST && i < 100)
			continue;
		alog(a, "%s: cannot move the working copy aside (%s): %s", project, why, strerror(errno));
		return PS_ERROR;
	}
	snprintf(detail, sizeof(detail),
		 "working copy on %s moved aside to %s (root only; kept at most %d copies / %lld days): %s",
		 a->host, to, a->o.quarantine_keep,
		 (long long)(a->o.quarantine_max_age_us / (86400LL * 1000000)), why);
	alog(a, "%s: quarantined: %s", project, detail);
	ps_error_clear(&err);
	if (cat && ps_cat_event_add(cat, project, "quarantined", a->host, 1, detail, &err))
		alog(a, "%s: cannot record the event: %s", project, err.msg);
	remove_cache(a, project);
	quarantine_prune(a);
	return PS_OK;
}

/* ------------------------------------------------------------ reconciliation */

/* ".PROJECT.projstore-tmp-XXXXXXXX" / "-new-": the project, or "" */
static int leftover_project(const char *name, char *project, size_t len)
{
	const char *p;
	size_t n;
	if (name[0] != '.')
		return 0;
	p = strstr(name, ".projstore-tmp-");
	if (!p)
		p = strstr(name, ".projstore-new-");
	if (!p || p == name + 1)
		return 0;
	n = (size_t)(p - name - 1);
	if (n >= len)
		return 0;
	memcpy(project, name + 1, n);
	project[n] = 0;
	return 1;
}

static void empty_dir(struct agent *a, const char *sub)
{
	char dir[PATH_MAX + 32];
	DIR *d;
	struct dirent *de;
	int dfd;
	snprintf(dir, sizeof(dir), "%s/%s", a->adir, sub);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	d = fdopendir(dup(dfd));
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int rc = agent_rm_at(dfd, de->d_name);
		alog(a, "removed leftover %s/%s%s%s", dir, de->d_name, rc ? ": " : "",
		     rc ? strerror(-rc) : "");
	}
	if (d)
		closedir(d);
	close(dfd);
}

/* Is ROOT/project where the catalog wants it? 1 keep, 0 quarantine (why
 * filled), -1 cannot tell (catalog error: leave it). */
static int copy_belongs_here(struct agent *a, const char *project, char *why, size_t wl)
{
	struct ps_cat_project p;
	struct ps_cat_op *ops = NULL;
	size_t n = 0;
	struct ps_error err;
	int mine = 0, other = 0, rc;
	ps_error_clear(&err);
	rc = ps_cat_project_get(a->cat, project, &p, &err);
	if (rc == PS_ENOTFOUND) {
		snprintf(why, wl, "the project is not in the catalog");
		return 0;
	}
	if (rc) {
		alog(a, "%s: cannot check the working copy: %s", project, err.msg);
		return -1;
	}
	if (ps_cat_ops_for_project(a->cat, project, 20, &ops, &n, &err)) {
		alog(a, "%s: cannot check the working copy: %s", project, err.msg);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ops[i].state, "pending") && strcmp(ops[i].state, "running"))
			continue;
		if (!strcmp(ops[i].host, a->host))
			mine = 1;
		else if (strcmp(ops[i].kind, "save"))
			other = 1;
	}
	free(ops);
	if (mine)
		return 1; /* an operation of ours decides (it is resumed) */
	if (!strcmp(p.host, a->host) && !other)
		return 1;
	if (!strcmp(p.host, a->host))
		snprintf(why, wl, "another host is taking the project over");
	else if (p.host[0])
		snprintf(why, wl, "the catalog places the project on %s", p.host);
	else
		snprintf(why, wl, "the catalog places the project nowhere (status %s)", p.status);
	return 0;
}

void agent_reconcile_project(struct agent *a, const char *project)
{
	char why[300];
	if (!agent_copy_exists(a, project) || agent_project_busy(a, project))
		return;
	if (copy_belongs_here(a, project, why, sizeof(why)) == 0)
		agent_quarantine(a, a->cat, project, why);
}

void agent_reconcile(struct agent *a)
{
	DIR *d;
	struct dirent *de;
	int dfd = open(a->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		alog(a, "cannot open root %s: %s", a->root, strerror(errno));
		return;
	}
	empty_dir(a, "trash");
	d = fdopendir(dup(dfd));
	while (d && (de = readdir(d))) {
		char project[PS_CAT_ID_MAX + 1], why[300];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, AGENT_DIR))
			continue;
		if (leftover_project(de->d_name, project, sizeof(project))) {
			if (agent_project_busy(a, project))
				continue;
			int rc = agent_rm_at(dfd, de->d_name);
			alog(a, "removed an unfinished restore %s/%s%s%s", a->root, de->d_name,
			     rc ? ": " : "", rc ? strerror(-rc) : "");
			continue;
		}
		if (!ps_project_id_valid(de->d_name))
			continue; /* not ours: left alone */
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode))
			continue;
		if (agent_project_busy(a, de->d_name))
			continue;
		if (copy_belongs_here(a, de->d_name, why, sizeof(why)) == 0 &&
		    !agent_project_busy(a, de->d_name))
			agent_quarantine(a, a->cat, de->d_name, why);
	}
	if (d)
		closedir(d);
	close(dfd);
	quarantine_prune(a);
}
