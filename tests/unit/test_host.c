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

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/*
 * A fake kernel file that keeps every write: a FIFO this test holds open
 * read-write and non-blocking, so the code's opens (O_WRONLY | O_TRUNC) never
 * block and each write stays in the pipe, in order (a regular file would keep
 * only the last one).  Returns the test's end, or -1.
 */
static int fifo_open(const char *dir, const char *file)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	unlink(p);
	if (mkfifo(p, 0644) != 0)
		return -1;
	return open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
}

/* appends what was written into the FIFO since the last call to log */
static const char *fifo_drain(int fd, char *log, size_t len)
{
	size_t o = strlen(log);
	ssize_t r;
	while (fd >= 0 && o + 1 < len && (r = read(fd, log + o, len - 1 - o)) > 0)
		o += (size_t)r;
	log[o] = 0;
	return log;
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
	snprintf(base, sizeof(base), "%s/pst", root);
	mkdir(base, 0755);
	/* every write to the two cgroup.subtree_control files is kept: the
	 * controllers are enabled one write each */
	char rlog[256] = "", blog[256] = "";
	int rfd = fifo_open(root, "cgroup.subtree_control");
	int bfd = fifo_open(base, "cgroup.subtree_control");
	ok(rfd >= 0 && bfd >= 0, "cgroup.subtree_control of the root and the base record every write");
	is_int(ps_cgroup_init(&cg, root, "pst", &e), 0, "init on a fake v2 tree");
	is_int(cg.version, 2, "v2 detected");
	is_int(ps_cgroup_create(&cg, "u1", &e), 0, "create");
	snprintf(d, sizeof(d), "%s/pst/u1", root);
	struct stat st;
	ok(stat(d, &st) == 0 && S_ISDIR(st.st_mode), "ROOT/BASE/NAME made");
	is_str(fifo_drain(bfd, blog, sizeof(blog)), "+cpu+memory+pids+io",
	       "cpu, memory, pids and io enabled for the projects (the base's subtree_control)");
	is_str(fifo_drain(rfd, rlog, sizeof(rlog)), "+cpu+memory+pids+io",
	       "and for the base (the root's subtree_control, the base being right under it)");
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

	/* a nested base: its parents are the operator's, only the base itself
	 * gets the controllers for its children */
	char nested[PATH_MAX], nlog[256] = "";
	snprintf(nested, sizeof(nested), "%s/ops.slice", root);
	mkdir(nested, 0755);
	snprintf(nested, sizeof(nested), "%s/ops.slice/pst", root);
	mkdir(nested, 0755);
	int nfd = fifo_open(nested, "cgroup.subtree_control");
	rlog[0] = 0;
	fifo_drain(rfd, rlog, sizeof(rlog));
	rlog[0] = 0;
	is_int(ps_cgroup_init(&cg, root, "ops.slice/pst", &e), 0, "init with a nested base");
	is_int(ps_cgroup_create(&cg, "u3", &e), 0, "create under a nested base");
	is_str(fifo_drain(nfd, nlog, sizeof(nlog)), "+cpu+memory+pids+io",
	       "the nested base enables the controllers");
	is_str(fifo_drain(rfd, rlog, sizeof(rlog)), "", "the root is left alone");
	close(nfd);
	close(rfd);
	close(bfd);
}

/* ------------------------------------------------------------ v2 stop */

/*
 * ps_cgroup_kill_all on a fake v2 tree, with a real process listed in its
 * cgroup.procs and a thread playing the kernel: it keeps what is written to
 * cgroup.kill and cgroup.freeze, answers a "1" in cgroup.kill with SIGKILL
 * to the member, and empties cgroup.procs once the member has died.
 */
struct fake_kernel {
	char dir[PATH_MAX];
	pid_t child;
	int kill_fd, freeze_fd;
	char kill_log[256], freeze_log[256];
	volatile int stop;
	int status, reaped, killed_by_kernel;
};

static void *fake_kernel_main(void *arg)
{
	struct fake_kernel *k = arg;
	while (!k->stop) {
		if (k->kill_fd >= 0 && strchr(fifo_drain(k->kill_fd, k->kill_log, sizeof(k->kill_log)), '1') &&
		    !k->killed_by_kernel) {
			kill(k->child, SIGKILL);
			k->killed_by_kernel = 1;
		}
		fifo_drain(k->freeze_fd, k->freeze_log, sizeof(k->freeze_log));
		if (!k->reaped && waitpid(k->child, &k->status, WNOHANG) == k->child) {
			k->reaped = 1;
			put(k->dir, "cgroup.procs", "");
			put(k->dir, "pids.current", "0\n");
		}
		usleep(1000);
	}
	return NULL;
}

static int term_fd = -1;
static void on_term(int sig)
{
	(void)sig;
	if (write(term_fd, "T", 1) < 0) {
		/* the test sees no T */
	}
}

/* a member that notes SIGTERM (on the pipe) and lives on until SIGKILL */
static pid_t term_ignoring_child(int *term_read)
{
	int tp[2];
	if (pipe2(tp, O_CLOEXEC) != 0)
		return -1;
	pid_t c = fork();
	if (c == 0) {
		term_fd = tp[1];
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_term;
		sigaction(SIGTERM, &sa, NULL);
		if (write(tp[1], "R", 1) < 0)
			_exit(1);
		for (;;)
			pause();
	}
	close(tp[1]);
	char r = 0;
	if (c < 0 || read(tp[0], &r, 1) != 1 || r != 'R') {
		close(tp[0]);
		return -1;
	}
	fcntl(tp[0], F_SETFL, O_NONBLOCK);
	*term_read = tp[0];
	return c;
}

static void v2_stop_case(int with_kill_file)
{
	const char *what = with_kill_file ? "cgroup.kill" : "cgroup.freeze + SIGKILL";
	const char *root = th_tmpdir(with_kill_file ? "cgkill" : "cgfreeze");
	struct ps_cgroup cg;
	struct ps_error e;
	put(root, "cgroup.controllers", "cpu io memory pids\n");
	put(root, "cgroup.subtree_control", "");
	if (ps_cgroup_init(&cg, root, "pst", &e) != PS_OK || ps_cgroup_create(&cg, "u1", &e) != PS_OK) {
		skip(1, "no fake tree");
		return;
	}
	static struct fake_kernel k;
	memset(&k, 0, sizeof(k));
	snprintf(k.dir, sizeof(k.dir), "%s/pst/u1", root);
	k.kill_fd = with_kill_file ? fifo_open(k.dir, "cgroup.kill") : -1;
	k.freeze_fd = fifo_open(k.dir, "cgroup.freeze");
	int term_read = -1;
	k.child = term_ignoring_child(&term_read);
	ok(k.child > 0 && k.freeze_fd >= 0 && (!with_kill_file || k.kill_fd >= 0),
	   "%s: a member that survives SIGTERM, in a fake cgroup", what);
	if (k.child <= 0) {
		skip(1, "no child");
		return;
	}
	char procs[32];
	snprintf(procs, sizeof(procs), "%d\n", (int)k.child);
	put(k.dir, "cgroup.procs", procs);
	put(k.dir, "pids.current", "1\n");
	pthread_t th;
	pthread_create(&th, NULL, fake_kernel_main, &k);
	int killed = -1;
	double t0 = th_now();
	int rc = ps_cgroup_kill_all(&cg, "u1", 100, &killed, &e);
	double secs = th_now() - t0;
	/* the fake kernel reaps it (a real one would too) */
	for (int i = 0; i < 2000 && !k.reaped; i++)
		usleep(1000);
	k.stop = 1;
	pthread_join(th, NULL);
	fifo_drain(k.kill_fd, k.kill_log, sizeof(k.kill_log));
	fifo_drain(k.freeze_fd, k.freeze_log, sizeof(k.freeze_log));
	is_int(rc, 0, "%s: kill_all succeeds (%s)", what, rc ? e.msg : "");
	ok(killed >= 1, "%s: the member counts as signalled (%d)", what, killed);
	ok(secs < 5, "%s: done at once after the grace period (%.2f s)", what, secs);
	char t = 0;
	ok(read(term_read, &t, 1) == 1 && t == 'T', "%s: SIGTERM came first, during the grace period",
	   what);
	ok(k.reaped && WIFSIGNALED(k.status) && WTERMSIG(k.status) == SIGKILL,
	   "%s: then it died by SIGKILL", what);
	if (with_kill_file) {
		ok(k.kill_log[0] == '1' && strspn(k.kill_log, "1") == strlen(k.kill_log),
		   "cgroup.kill: \"1\" written (%s)", k.kill_log);
		ok(k.killed_by_kernel, "cgroup.kill: the kill came from the (fake) kernel");
		is_str(k.freeze_log, "", "cgroup.kill: no freezing needed");
	} else {
		size_t n = strlen(k.freeze_log);
		int pairs = n >= 2 && n % 2 == 0;
		for (size_t i = 0; pairs && i < n; i += 2)
			pairs = k.freeze_log[i] == '1' && k.freeze_log[i + 1] == '0';
		ok(pairs, "no cgroup.kill: frozen (1) around each SIGKILL round and thawed (0) after (%s)",
		   k.freeze_log);
		ok(!k.killed_by_kernel, "no cgroup.kill: the SIGKILL came from projstore itself");
	}
	close(term_read);
	if (k.kill_fd >= 0)
		close(k.kill_fd);
	close(k.freeze_fd);
}

static void test_v2_stop(void)
{
	v2_stop_case(1);
	v2_stop_case(0);
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
	test_v2_stop();
	test_v2_hybrid_and_v1();
	test_catalog();
	th_cleanup();
	return done_testing();
}
