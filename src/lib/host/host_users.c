/*
 * host_users.c - one Unix user and group per deployed project, and the
 * running of the system tools the hosting module needs.
 *
 * Names: a UUID project's user is its 32 hex digits without dashes (the Linux
 * limit on user names is 32 characters); any other id, and a UUID made only
 * of decimal digits (a name tools would take for a uid), gets "p" and the
 * first 31 hex digits of the SHA-256 of the id.  The two forms cannot meet:
 * a hex name never starts with "p".
 *
 * Numbers: uid = gid, assigned once per project in the catalog
 * (ps_cat_uid_assign) so that the project owns the same numbers on every host
 * and files it left on shared volumes stay its own.
 *
 * The user and group are made with the system's own tools (groupadd and
 * useradd from Debian's passwd package: they lock /etc/passwd, /etc/group and
 * the shadow files the way every other tool expects, and keep nscd in step)
 * as a system account (-r: no aging, no subordinate id ranges), without a
 * home directory of its own (the working copy is made by the hosting code)
 * and with the project id in the GECOS field ("projstore project ID").
 * Removal checks that GECOS first: a user projstore did not make is never
 * removed.  A name or a number that already belongs to anyone else is a
 * collision and is refused.
 */
#define _GNU_SOURCE
#include "host_int.h"
#include "../hash/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define GECOS_PREFIX "projstore project "

/* ------------------------------------------------------------ names */

static int is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

int ps_host_user_name(const char *project, char *buf, size_t len, struct ps_error *err)
{
	if (!project || !ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project ? project : "");
	if (len < PS_HOST_USER_MAX + 1)
		return ps_err(err, PS_EINVAL, "user name buffer too small");
	if (is_uuid(project)) {
		size_t o = 0;
		int letters = 0;
		for (const char *p = project; *p; p++) {
			if (*p == '-')
				continue;
			letters += *p >= 'a';
			buf[o++] = *p;
		}
		buf[o] = 0;
		if (letters)
			return PS_OK;
	}
	uint8_t h[32];
	char hex[65];
	if (ps_sha256(project, strlen(project), h) != 0)
		return ps_err(err, PS_ERROR, "cannot hash project id");
	ps_hex_encode(h, sizeof(h), hex);
	buf[0] = 'p';
	memcpy(buf + 1, hex, 31);
	buf[32] = 0;
	return PS_OK;
}

void ps_host_uid_range(int64_t *min, int64_t *max)
{
	const char *a = getenv("PROJSTORE_UID_MIN"), *b = getenv("PROJSTORE_UID_MAX");
	*min = a && *a ? strtoll(a, NULL, 10) : PS_HOST_UID_MIN;
	*max = b && *b ? strtoll(b, NULL, 10) : PS_HOST_UID_MAX;
	if (*min < 1000)
		*min = PS_HOST_UID_MIN;
	if (*max < *min || *max > 0x7ffffffe)
		*max = *min + (PS_HOST_UID_MAX - PS_HOST_UID_MIN);
}

/* ------------------------------------------------------------ tools */

static const char *find_tool(const char *name, char *buf, size_t len)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
	if (strchr(name, '/'))
		return name;
	for (size_t i = 0; i < PS_ARRAY_LEN(dirs); i++) {
		snprintf(buf, len, "%s/%s", dirs[i], name);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

int ps_host_exec(const char *const *argv, struct ps_error *err)
{
	char path[256];
	const char *exe = find_tool(argv[0], path, sizeof(path));
	if (!exe)
		return ps_err(err, PS_ENOTFOUND, "'%s' is not installed", argv[0]);
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return ps_err_sys(err, "cannot run '%s'", argv[0]);
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return ps_err_sys(err, "cannot run '%s'", argv[0]);
	}
	if (pid == 0) {
		static const char *const env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
		}
		dup2(pfd[1], 2);
		execve(exe, (char *const *)argv, (char *const *)env);
		_exit(127);
	}
	close(pfd[1]);
	char out[600];
	size_t o = 0;
	for (;;) {
		ssize_t r = read(pfd[0], out + o, sizeof(out) - 1 - o);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		o += (size_t)r;
		if (o >= sizeof(out) - 1) {
			char sink[512];
			while (read(pfd[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	out[o] = 0;
	close(pfd[0]);
	while (o > 0 && (out[o - 1] == '\n' || out[o - 1] == ' '))
		out[--o] = 0;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return PS_OK;
	char cmd[256];
	size_t c = 0;
	cmd[0] = 0;
	for (int i = 0; argv[i] && c + 2 < sizeof(cmd); i++)
		c += (size_t)snprintf(cmd + c, sizeof(cmd) - c, "%s%s", i ? " " : "", argv[i]);
	if (WIFEXITED(st))
		return ps_err(err, PS_ERROR, "'%s' failed (exit %d)%s%s", cmd, WEXITSTATUS(st),
			      o ? ": " : "", out);
	return ps_err(err, PS_ERROR, "'%s' died by signal %d", cmd, WTERMSIG(st));
}

/* ------------------------------------------------------------ users */

struct ent {
	int found;
	int64_t id;
	char name[64];
	char gecos[128];
};

static void user_by_name(const char *name, struct ent *e)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	memset(e, 0, sizeof(*e));
	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res) {
		e->found = 1;
		e->id = pw.pw_uid;
		snprintf(e->name, sizeof(e->name), "%s", pw.pw_name);
		snprintf(e->gecos, sizeof(e->gecos), "%s", pw.pw_gecos ? pw.pw_gecos : "");
	}
}

static void user_by_id(int64_t uid, struct ent *e)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	memset(e, 0, sizeof(*e));
	if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 && res) {
		e->found = 1;
		e->id = pw.pw_uid;
		snprintf(e->name, sizeof(e->name), "%s", pw.pw_name);
		snprintf(e->gecos, sizeof(e->gecos), "%s", pw.pw_gecos ? pw.pw_gecos : "");
	}
}

static void group_by_name(const char *name, struct ent *e)
{
	struct group gr, *res = NULL;
	char buf[8192];
	memset(e, 0, sizeof(*e));
	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) == 0 && res) {
		e->found = 1;
		e->id = gr.gr_gid;
		snprintf(e->name, sizeof(e->name), "%s", gr.gr_name);
	}
}

static void group_by_id(int64_t gid, struct ent *e)
{
	struct group gr, *res = NULL;
	char buf[8192];
	memset(e, 0, sizeof(*e));
	if (getgrgid_r((gid_t)gid, &gr, buf, sizeof(buf), &res) == 0 && res) {
		e->found = 1;
		e->id = gr.gr_gid;
		snprintf(e->name, sizeof(e->name), "%s", gr.gr_name);
	}
}

int ps_user_create(const char *name, int64_t uid, const char *project, struct ps_error *err)
{
	char gecos[128], num[32];
	struct ent u, g;
	snprintf(gecos, sizeof(gecos), GECOS_PREFIX "%s", project);
	snprintf(num, sizeof(num), "%lld", (long long)uid);
	if (uid < 1 || uid > 0x7ffffffe)
		return ps_err(err, PS_EINVAL, "invalid uid %lld for project %s", (long long)uid, project);

	user_by_name(name, &u);
	if (u.found && (u.id != uid || strcmp(u.gecos, gecos) != 0))
		return ps_err(err, PS_EEXISTS,
			      "user name %s is taken (uid %lld, '%s'): refusing to give it to project %s",
			      name, (long long)u.id, u.gecos, project);
	user_by_id(uid, &u);
	if (u.found && strcmp(u.name, name) != 0)
		return ps_err(err, PS_EEXISTS, "uid %lld belongs to user %s: refusing to give it to project %s",
			      (long long)uid, u.name, project);
	group_by_name(name, &g);
	if (g.found && g.id != uid)
		return ps_err(err, PS_EEXISTS, "group name %s is taken (gid %lld): refusing to give it to project %s",
			      name, (long long)g.id, project);
	group_by_id(uid, &g);
	if (g.found && strcmp(g.name, name) != 0)
		return ps_err(err, PS_EEXISTS, "gid %lld belongs to group %s: refusing to give it to project %s",
			      (long long)uid, g.name, project);

	int rc;
	group_by_name(name, &g);
	if (!g.found) {
		const char *argv[] = { "groupadd", "-r", "-g", num, name, NULL };
		if ((rc = ps_host_exec(argv, err)) != PS_OK)
			return ps_err_prefix(err, "project %s", project);
	}
	user_by_name(name, &u);
	if (!u.found) {
		const char *argv[] = { "useradd", "--badname", "-r", "-u", num, "-g", num, "-M", "-N",
				 "-d", PS_HOST_HOME, "-s", "/bin/bash", "-c", gecos, name, NULL };
		if ((rc = ps_host_exec(argv, err)) != PS_OK)
			return ps_err_prefix(err, "project %s", project);
	}
	return PS_OK;
}

int ps_user_remove(const char *name, int64_t uid, struct ps_error *err)
{
	struct ent u, g;
	int rc;
	user_by_name(name, &u);
	if (u.found) {
		if (u.id != uid || strncmp(u.gecos, GECOS_PREFIX, strlen(GECOS_PREFIX)) != 0)
			return ps_err(err, PS_EEXISTS,
				      "user %s (uid %lld, '%s') is not projstore's: not removed", name,
				      (long long)u.id, u.gecos);
		const char *argv[] = { "userdel", name, NULL };
		if ((rc = ps_host_exec(argv, err)) != PS_OK)
			return rc;
	}
	group_by_name(name, &g);
	if (g.found) {
		if (g.id != uid)
			return ps_err(err, PS_EEXISTS, "group %s (gid %lld) is not projstore's: not removed",
				      name, (long long)g.id);
		const char *argv[] = { "groupdel", name, NULL };
		if ((rc = ps_host_exec(argv, err)) != PS_OK)
			return rc;
	}
	return PS_OK;
}

int ps_host_user_project(const char *user, char *id, size_t len, struct ps_error *err)
{
	struct ent u;
	user_by_name(user, &u);
	if (!u.found || strncmp(u.gecos, GECOS_PREFIX, strlen(GECOS_PREFIX)) != 0)
		return ps_err(err, PS_ENOTFOUND, "%s is not a projstore project user", user);
	snprintf(id, len, "%s", u.gecos + strlen(GECOS_PREFIX));
	return PS_OK;
}
