/*
 * test_host.c - the hosting module's parts that need no kernel: the user
 * name rule, cgroup v2 against a fake cgroupfs tree in a temporary directory
 * (detection, creation with the controllers enabled, limits, counters,
 * removal, listing), v1 detection on a fake tree, and the catalog's uid
 * assignment, limits, usage and volumes (SQLite).
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "host/host_int.h"
#include "projstore_catalog.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *dir, const char *file, const char *text)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	th_write_file(p, text, strlen(text));
}

static char *get(const char *dir, const char *file)
{
	static char buf[4096];
	char p[PATH_MAX];
	size_t n = 0;
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	uint8_t *d = th_read_file(p, &n);
	if (!d)
		return strcpy(buf, "<missing>");
	snprintf(buf, sizeof(buf), "%.*s", (int)n, (char *)d);
	free(d);
	return buf;
}

static void test_names(void)
{
	char u[40];
	struct ps_error e;
	is_int(ps_host_user_name("3f1c2a4b-0d9e-4c8f-9a7b-112233445566", u, sizeof(u), &e), 0,
	       "uuid name");
	is_str(u, "3f1c2a4b0d9e4c8f9a7b112233445566", "a UUID's user is its 32 hex digits");
	ok(strlen(u) == 32, "32 characters");
	is_int(ps_host_user_name("course-101", u, sizeof(u), &e), 0, "other id");
	ok(u[0] == 'p' && strlen(u) == 32 && strspn(u + 1, "0123456789abcdef") == 31,
	   "another id gets p + 31 hex digits of its SHA-256 (%s)", u);
	char u2[40];
	ps_host_user_name("course-102", u2, sizeof(u2), &e);
	ok(strcmp(u, u2) != 0, "different ids, different names");
	ps_host_user_name("course-101", u2, sizeof(u2), &e);
	is_str(u2, u, "the name is stable");
	is_int(ps_host_user_name("12345678-1234-1234-1234-123456789012", u, sizeof(u), &e), 0,
	       "all-digit uuid");
	ok(u[0] == 'p', "a UUID of decimal digits only gets the hashed name (never all digits)");
	is_int(ps_host_user_name("Bad/Id", u, sizeof(u), &e), PS_EINVAL, "invalid id refused");
	is_int(ps_host_user_name("x", u, 10, &e), PS_EINVAL, "short buffer refused");
}

static void test_root_check(void)
{
	struct ps_error e;
	static const char *const bad[] = { "/usr/local/projects", "/etc", "/opt/", "//usr//x",
					   "/srv/../usr/x", "/./bin/x", "/sbin/y", "/lib/x",
					   "/lib32/x", "/lib64/x", "/libx32/x" };
	for (size_t i = 0; i < PS_ARRAY_LEN(bad); i++) {
		ps_error_clear(&e);
		is_int(ps_host_root_check(bad[i], &e), PS_EINVAL, "host root %s refused", bad[i]);
	}
	ps_host_root_check("/usr/local/projects", &e);
	ok(strstr(e.msg, "inside /usr") && strstr(e.msg, "read-only"), "the message says why: %s",
	   e.msg);
	static const char *const good[] = { "/srv/hosting", "/usr2/x", "/library/x", "/optional",
					    "/", "/home/../srv/x" };
	for (size_t i = 0; i < PS_ARRAY_LEN(good); i++)
		is_int(ps_host_root_check(good[i], &e), 0, "host root %s accepted", good[i]);
	is_int(ps_host_root_check("srv/hosting", &e), PS_EINVAL, "a relative root is refused");
	/* through a symbolic link, as this machine resolves it */
	const char *dir = th_tmpdir("rootlink");
	char link[PATH_MAX], root[PATH_MAX + 16];
	snprintf(link, sizeof(link), "%s/sys", dir);
	ok(symlink("/usr/share", link) == 0, "a link to /usr/share");
	snprintf(root, sizeof(root), "%s/not/yet", link);
	is_int(ps_host_root_check(root, &e), PS_EINVAL, "a root through a link into /usr is refused");
	ok(strstr(e.msg, "/usr/share/not/yet") != NULL, "the message shows the resolved path: %s",
	   e.msg);
	snprintf(root, sizeof(root), "%s/hosting", dir);
	is_int(ps_host_root_check(root, &e), 0, "a root in a temporary directory is accepted");
}

static void test_v2(void)
{
	const char *root = th_tmpdir("cg2");
	struct ps_cgroup cg;
	struct ps_error e;
	char d[PATH_MAX], base[PATH_MAX];
	put(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
	put(root, "cgroup.subtree_control", "");
	is_int(ps_cgroup_init(&cg, root, "pst", &e), 0, "init on a fake v2 tree");
	is_int(cg.version, 2, "v2 detected");
	is_int(ps_cgroup_create(&cg, "u1", &e), 0, "create");
	snprintf(base, sizeof(base), "%s/pst", root);
	snprintf(d, sizeof(d), "%s/pst/u1", root);
	struct stat st;
	ok(stat(d, &st) == 0 && S_ISDIR(st.st_mode), "ROOT/BASE/NAME made");
	ok(strstr(get(base, "cgroup.subtree_control"), "io") != NULL ||
		   strstr(get(base, "cgroup.subtree_control"), "pids") != NULL,
	   "controllers enabled for the projects (%s)", get(base, "cgroup.subtree_control"));
	ok(ps_cgroup_exists(&cg, "u1"), "exists");
	ok(!ps_cgroup_exists(&cg, "u2"), "another does not");

	struct ps_host_limits l = { 1.5, 256 << 20, 300, 100, 0 };
	char notes[256];
	put(d, "memory.swap.max", "max");
	put(d, "io.weight", "default 100");
	is_int(ps_cgroup_set_limits(&cg, "u1", &l, notes, sizeof(notes), &e), 0, "set limits");
	is_str(get(d, "cpu.max"), "150000 100000", "cpu.max = 1.5 cores");
	is_str(get(d, "memory.max"), "268435456", "memory.max");
	is_str(get(d, "memory.swap.max"), "0", "no swap beyond the memory limit");
	is_str(get(d, "pids.max"), "100", "pids.max");
	is_str(get(d, "io.weight"), "default 300", "io.weight");
	is_str(notes, "", "no notes when everything applies");

	struct ps_host_limits none = PS_HOST_LIMITS_INIT;
	is_int(ps_cgroup_set_limits(&cg, "u1", &none, notes, sizeof(notes), &e), 0, "clear limits");
	is_str(get(d, "cpu.max"), "max 100000", "cpu.max unlimited");
	is_str(get(d, "memory.max"), "max", "memory.max unlimited");
	is_str(get(d, "pids.max"), "max", "pids.max unlimited");
	is_str(get(d, "io.weight"), "default 100", "io weight back to the default");

	/* counters as the kernel writes them */
	put(d, "cgroup.procs", "");
	put(d, "cpu.stat", "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n");
	put(d, "memory.current", "52428800\n");
	put(d, "memory.peak", "73400320\n");
	put(d, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n");
	put(d, "pids.current", "7\n");
	put(d, "io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
			  "8:16 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n");
	struct ps_host_usage u;
	memset(&u, 0, sizeof(u));
	is_int(ps_cgroup_usage(&cg, "u1", &u, &e), 0, "usage");
	is_int(u.cpu_usec, 1234567, "cpu from cpu.stat");
	is_int(u.memory_bytes, 52428800, "memory.current");
	is_int(u.memory_peak, 73400320, "memory.peak");
	is_int(u.oom_kills, 2, "oom_kill from memory.events");
	is_int(u.pids, 7, "pids.current");
	is_int(u.io_bytes, 4096 + 8192 + 100, "io.stat rbytes + wbytes over devices");
	is_int(u.running, 0, "no processes");

	put(d, "cgroup.procs", "");
	put(d, "pids.current", "0\n");
	int killed = -1;
	is_int(ps_cgroup_kill_all(&cg, "u1", 10, &killed, &e), 0, "kill_all of an empty cgroup");
	is_int(killed, 0, "nothing signalled");

	is_int(ps_cgroup_create(&cg, "u2", &e), 0, "second cgroup");
	char **names;
	size_t n;
	is_int(ps_cgroup_list(&cg, &names, &n, &e), 0, "list");
	is_int((long long)n, 2, "two project cgroups");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	is_int(ps_cgroup_remove(&cg, "u1", &e), 0, "remove");
	ok(stat(d, &st) != 0, "gone");
	is_int(ps_cgroup_remove(&cg, "u1", &e), 0, "removing again is no error");
	is_int(ps_cgroup_create(&cg, "../x", &e), PS_EINVAL, "a name with a slash is refused");
}

static void test_v2_hybrid_and_v1(void)
{
	const char *root = th_tmpdir("cg1");
	struct ps_cgroup cg;
	struct ps_error e;
	char p[PATH_MAX];
	static const char *const ctl[] = { "cpu", "cpuacct", "memory", "pids", "blkio", "freezer" };
	for (size_t i = 0; i < PS_ARRAY_LEN(ctl); i++) {
		snprintf(p, sizeof(p), "%s/%s", root, ctl[i]);
		mkdir(p, 0755);
		put(p, "cgroup.procs", "");
	}
	snprintf(p, sizeof(p), "%s/unified", root);
	mkdir(p, 0755);
	put(p, "cgroup.controllers", "");
	is_int(ps_cgroup_init(&cg, root, "pst", &e), 0, "init on a fake v1 tree");
	is_int(cg.version, 1, "v1 chosen when the unified hierarchy has no controllers");
	is_int(ps_cgroup_create(&cg, "u1", &e), 0, "create in every controller");
	struct ps_host_limits l = { 0.25, 64 << 20, 0, 50, 0 };
	char notes[256];
	is_int(ps_cgroup_set_limits(&cg, "u1", &l, notes, sizeof(notes), &e), 0, "v1 limits");
	snprintf(p, sizeof(p), "%s/cpu/pst/u1", root);
	is_str(get(p, "cpu.cfs_quota_us"), "25000", "cfs quota = 0.25 cores");
	snprintf(p, sizeof(p), "%s/memory/pst/u1", root);
	is_str(get(p, "memory.limit_in_bytes"), "67108864", "memory limit");
	snprintf(p, sizeof(p), "%s/pids/pst/u1", root);
	is_str(get(p, "pids.max"), "50", "pids.max");

	const char *r3 = th_tmpdir("cg3");
	snprintf(p, sizeof(p), "%s/unified", r3);
	mkdir(p, 0755);
	put(p, "cgroup.controllers", "cpu memory pids\n");
	is_int(ps_cgroup_init(&cg, r3, NULL, &e), 0, "hybrid: v2 under unified/");
	is_int(cg.version, 2, "v2 in hybrid mode when unified has the controllers");
	const char *r4 = th_tmpdir("cg4");
	is_int(ps_cgroup_init(&cg, r4, NULL, &e), PS_ERROR, "no cgroups at all: a clear error");
}

static void test_catalog(void)
{
	const char *dir = th_tmpdir("cat");
	char spec[PATH_MAX];
	struct ps_catalog *cat;
	struct ps_error e;
	snprintf(spec, sizeof(spec), "sqlite:%s/c.db", dir);
	if (ps_catalog_open(&cat, spec, NULL, &e) != PS_OK) {
		skip(14, "no catalog");
		return;
	}
	ps_cat_project_ensure(cat, "p1", &e);
	ps_cat_project_ensure(cat, "p2", &e);
	ps_cat_project_ensure(cat, "p3", &e);
	int64_t u1 = 0, u2 = 0, again = 0, u3 = 0;
	is_int(ps_cat_uid_assign(cat, "p1", 5000, 5001, &u1, &e), 0, "uid assigned");
	is_int(u1, 5000, "the lowest free one");
	is_int(ps_cat_uid_assign(cat, "p1", 5000, 5001, &again, &e), 0, "asked again");
	is_int(again, u1, "kept: the same uid");
	is_int(ps_cat_uid_assign(cat, "p2", 5000, 5001, &u2, &e), 0, "second project");
	is_int(u2, 5001, "the next one");
	is_int(ps_cat_uid_assign(cat, "p3", 5000, 5001, &u3, &e), PS_ERROR, "range full: refused");
	is_int(ps_cat_uid_assign(cat, "nope", 5000, 5001, &u3, &e), PS_ENOTFOUND, "unknown project");

	struct ps_host_limits l, set = { 2.0, -1, -1, 64, PS_HOST_NET_OUTBOUND };
	is_int(ps_cat_limits_set(cat, "p1", &set, &e), 0, "limits set");
	is_int(ps_cat_limits_get(cat, "p1", &l, &e), 0, "limits read");
	ok(l.cpu == 2.0 && l.memory == 0 && l.pids == 64 && l.network == PS_HOST_NET_OUTBOUND,
	   "fields set, the others unchanged");

	struct ps_host_usage u = { 1, 100, 200, 300, 400, 5, 1, 600, 0 };
	is_int(ps_cat_usage_set(cat, "p1", "h1", &u, &e), 0, "usage stored");
	struct ps_cat_usage *v;
	size_t n;
	is_int(ps_cat_usage_list(cat, "h1", &v, &n, &e), 0, "usage listed");
	ok(n == 1 && v[0].u.memory_bytes == 200 && v[0].u.disk_bytes == 600, "usage read back");
	free(v);

	char d[256], s[256];
	ps_cat_volume_set(cat, NULL, "data", "/srv/data", &e);
	ps_cat_volume_set(cat, "h2", "data", "/srv/data2", &e);
	ps_cat_volume_set(cat, NULL, "scratch", "/srv/scratch", &e);
	ps_cat_volumes_for(cat, "h1", d, sizeof(d), s, sizeof(s), &e);
	ok(!strcmp(d, "/srv/data") && !strcmp(s, "/srv/scratch"), "volumes for every host");
	ps_cat_volumes_for(cat, "h2", d, sizeof(d), s, sizeof(s), &e);
	is_str(d, "/srv/data2", "a host's own volume wins");
	is_int(ps_cat_volume_set(cat, NULL, "home", "/x", &e), PS_EINVAL, "unknown kind refused");
	ps_catalog_close(cat);
}

int main(void)
{
	test_names();
	test_root_check();
	test_v2();
	test_v2_hybrid_and_v1();
	test_catalog();
	th_cleanup();
	return done_testing();
}
