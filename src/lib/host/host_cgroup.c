/*
 * host_cgroup.c - one cgroup per deployed project, with cgroup v2 where its
 * controllers are available and v1 otherwise.
 *
 * Layout (BASE = "projstore" unless configured, NAME = the project's user):
 *   v2:  ROOT/BASE/NAME                        (ROOT, or ROOT/unified in hybrid mode)
 *   v1:  ROOT/<controller>/BASE/NAME for cpu, cpuacct, memory, pids, and
 *        blkio and freezer when they are mounted
 *
 * Limits (0 = unlimited) and the files they go to:
 *   CPU cores     v2 cpu.max "QUOTA 100000"        v1 cpu.cfs_quota_us / cpu.cfs_period_us
 *   memory        v2 memory.max (+ memory.swap.max 0) v1 memory.limit_in_bytes (+ memsw)
 *   I/O weight    v2 io.weight "default W" (or io.bfq.weight)
 *                 v1 blkio.weight or blkio.bfq.weight = W * 5 (10-1000; 100 -> 500)
 *   processes     pids.max
 * A file the kernel does not offer (no io weight without a weight-aware I/O
 * scheduler, no memsw without swap accounting) is reported as a note, not an
 * error: the other limits still hold.
 *
 * Stopping: SIGTERM to every process, a grace period, then the cgroup is
 * frozen (v1 freezer, v2 cgroup.freeze) so that nothing can fork while
 * SIGKILL goes to every member; v2's cgroup.kill does it in one write.
 *
 * The root is injectable (tests build a fake v2 tree in a temporary
 * directory); files are opened with O_CREAT so that the fake tree needs no
 * kernel, which changes nothing on a real cgroup file system (its files
 * always exist, and it refuses to create others).
 */
#define _GNU_SOURCE
#include "host_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const v1_names[PS_CG_NV1] = { "cpu", "cpuacct", "memory", "pids", "blkio",
						 "freezer" };

/* ------------------------------------------------------------ files */

static int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off + 1 < len) {
		ssize_t r = read(fd, buf + off, len - 1 - off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		off += (size_t)r;
	}
	buf[off] = 0;
	close(fd);
	return 0;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	int e = errno;
	if (close(fd) != 0 && w == (ssize_t)n) {
		return -1;
	}
	errno = e;
	return w == (ssize_t)n ? 0 : -1;
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p)
{
	return access(p, F_OK) == 0;
}

/* ------------------------------------------------------------ paths */

static int check_name(const char *name, struct ps_error *err)
{
	if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || strlen(name) > 64)
		return ps_err(err, PS_EINVAL, "invalid cgroup name '%s'", name ? name : "");
	return PS_OK;
}

/* directory of controller ctrl (v1; ignored on v2) for name ("" = the base) */
static int cg_dir(const struct ps_cgroup *cg, int ctrl, const char *name, char *buf, size_t len)
{
	const char *top = cg->version == 2 ? cg->v2dir : cg->v1dir[ctrl];
	if (!top[0])
		return -1;
	int n = snprintf(buf, len, "%s/%s%s%s", top, cg->base, name && *name ? "/" : "",
			 name ? name : "");
	return n > 0 && (size_t)n < len ? 0 : -1;
}

static int cg_file(const struct ps_cgroup *cg, int ctrl, const char *name, const char *file,
		   char *buf, size_t len)
{
	char d[PATH_MAX];
	if (cg_dir(cg, ctrl, name, d, sizeof(d)) != 0)
		return -1;
	int n = snprintf(buf, len, "%s/%s", d, file);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* ------------------------------------------------------------ init */

static int has_word(const char *list, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = list; (p = strstr(p, w)) != NULL; p += n) {
		int start = p == list || p[-1] == ' ' || p[-1] == '\n';
		int end = p[n] == 0 || p[n] == ' ' || p[n] == '\n';
		if (start && end)
			return 1;
	}
	return 0;
}

static int v2_usable(const char *dir)
{
	char path[PATH_MAX + 32], buf[512];
	snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
	if (read_text(path, buf, sizeof(buf)) != 0)
		return 0;
	return has_word(buf, "cpu") && has_word(buf, "memory") && has_word(buf, "pids");
}

int ps_cgroup_init(struct ps_cgroup *cg, const char *root, const char *base, struct ps_error *err)
{
	memset(cg, 0, sizeof(*cg));
	if (!root || !*root)
		root = getenv("PROJSTORE_CGROUP_ROOT");
	if (!root || !*root)
		root = "/sys/fs/cgroup";
	if (!base || !*base)
		base = getenv("PROJSTORE_CGROUP_BASE");
	if (!base || !*base)
		base = "projstore";
	if (strlen(root) >= sizeof(cg->root) - 64 || strlen(base) >= sizeof(cg->base) ||
	    base[0] == '/' || strstr(base, ".."))
		return ps_err(err, PS_EINVAL, "invalid cgroup root '%s' or base '%s'", root, base);
	snprintf(cg->root, sizeof(cg->root), "%s", root);
	snprintf(cg->base, sizeof(cg->base), "%s", base);
	char p[PATH_MAX];
	if (v2_usable(root)) {
		cg->version = 2;
		snprintf(cg->v2dir, sizeof(cg->v2dir), "%s", root);
		return PS_OK;
	}
	int have_v1 = 1;
	for (int i = 0; i < PS_CG_NV1; i++) {
		snprintf(p, sizeof(p), "%s/%s", root, v1_names[i]);
		if (is_dir(p) && exists(strcat(p, "/cgroup.procs"))) {
			snprintf(cg->v1dir[i], sizeof(cg->v1dir[i]), "%s/%s", root, v1_names[i]);
		} else if (i == PS_CG_CPU || i == PS_CG_MEMORY || i == PS_CG_PIDS) {
			have_v1 = 0;
		}
	}
	if (have_v1) {
		cg->version = 1;
		return PS_OK;
	}
	snprintf(p, sizeof(p), "%s/unified", root);
	if (v2_usable(p)) {
		cg->version = 2;
		snprintf(cg->v2dir, sizeof(cg->v2dir), "%s", p);
		return PS_OK;
	}
	return ps_err(err, PS_ERROR,
		      "no usable cgroups under %s: need cgroup v2 with the cpu, memory and pids "
		      "controllers, or cgroup v1 with cpu, memory and pids mounted",
		      root);
}

/* ------------------------------------------------------------ create */

static int mkdir_ok(const char *p)
{
	return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

int ps_cgroup_create(const struct ps_cgroup *cg, const char *name, struct ps_error *err)
{
	int rc = check_name(name, err);
	if (rc != PS_OK)
		return rc;
	char d[PATH_MAX], f[PATH_MAX + 32];
	if (cg->version == 2) {
		/* the controllers must be enabled for the children of the root
		 * (when the base sits right under it) and of the base */
		static const char *const ctl[] = { "+cpu", "+memory", "+pids", "+io" };
		cg_dir(cg, 0, "", d, sizeof(d));
		if (mkdir_ok(d) != 0)
			return ps_err_sys(err, "cannot create cgroup '%s'", d);
		for (int level = 0; level < 2; level++) {
			if (level == 0)
				snprintf(f, sizeof(f), "%s/cgroup.subtree_control", cg->v2dir);
			else
				snprintf(f, sizeof(f), "%s/cgroup.subtree_control", d);
			if (level == 0 && strchr(cg->base, '/'))
				continue; /* a nested base: its parents are the operator's */
			for (size_t i = 0; i < PS_ARRAY_LEN(ctl); i++)
				if (write_text(f, ctl[i]) != 0 && i < 3 && level == 1)
					return ps_err_sys(err, "cannot enable %s in '%s'", ctl[i] + 1, f);
		}
		cg_dir(cg, 0, name, d, sizeof(d));
		if (mkdir_ok(d) != 0)
			return ps_err_sys(err, "cannot create cgroup '%s'", d);
		return PS_OK;
	}
	for (int i = 0; i < PS_CG_NV1; i++) {
		if (!cg->v1dir[i][0])
			continue;
		cg_dir(cg, i, "", d, sizeof(d));
		if (mkdir_ok(d) != 0)
			return ps_err_sys(err, "cannot create cgroup '%s'", d);
		cg_dir(cg, i, name, d, sizeof(d));
		if (mkdir_ok(d) != 0)
			return ps_err_sys(err, "cannot create cgroup '%s'", d);
	}
	return PS_OK;
}

int ps_cgroup_exists(const struct ps_cgroup *cg, const char *name)
{
	char d[PATH_MAX];
	if (check_name(name, NULL) != PS_OK)
		return 0;
	if (cg_dir(cg, PS_CG_PIDS, name, d, sizeof(d)) != 0)
		return 0;
	return is_dir(d);
}

/* ------------------------------------------------------------ limits */

static void note(char *notes, size_t nlen, const char *text)
{
	size_t o = strlen(notes);
	if (o + 4 >= nlen)
		return;
	snprintf(notes + o, nlen - o, "%s%s", o ? "; " : "", text);
}

static int set_file(const struct ps_cgroup *cg, int ctrl, const char *name, const char *file,
		    const char *val, struct ps_error *err)
{
	char f[PATH_MAX];
	if (cg_file(cg, ctrl, name, file, f, sizeof(f)) != 0)
		return ps_err(err, PS_ERROR, "no %s controller for cgroup %s", file, name);
	if (write_text(f, val) != 0)
		return ps_err_sys(err, "cannot write '%s' to '%s'", val, f);
	return PS_OK;
}

static int file_exists(const struct ps_cgroup *cg, int ctrl, const char *name, const char *file)
{
	char f[PATH_MAX];
	return cg_file(cg, ctrl, name, file, f, sizeof(f)) == 0 && exists(f);
}

int ps_cgroup_set_limits(const struct ps_cgroup *cg, const char *name,
			 const struct ps_host_limits *l, char *notes, size_t nlen,
			 struct ps_error *err)
{
	char v[64];
	int rc = check_name(name, err);
	if (rc != PS_OK)
		return rc;
	if (notes && nlen)
		notes[0] = 0;
	const int64_t period = 100000;
	int64_t quota = l->cpu > 0 ? (int64_t)(l->cpu * (double)period + 0.5) : -1;
	if (quota > 0 && quota < 1000)
		quota = 1000; /* the kernel's minimum: 1 ms per period */
	if (cg->version == 2) {
		if (quota > 0)
			snprintf(v, sizeof(v), "%" PRId64 " %" PRId64, quota, period);
		else
			snprintf(v, sizeof(v), "max %" PRId64, period);
		if ((rc = set_file(cg, 0, name, "cpu.max", v, err)) != PS_OK)
			return rc;
		if (l->memory > 0)
			snprintf(v, sizeof(v), "%" PRId64, l->memory);
		else
			snprintf(v, sizeof(v), "max");
		if ((rc = set_file(cg, 0, name, "memory.max", v, err)) != PS_OK)
			return rc;
		if (file_exists(cg, 0, name, "memory.swap.max"))
			set_file(cg, 0, name, "memory.swap.max", l->memory > 0 ? "0" : "max", NULL);
		if (l->pids > 0)
			snprintf(v, sizeof(v), "%" PRId64, l->pids);
		else
			snprintf(v, sizeof(v), "max");
		if ((rc = set_file(cg, 0, name, "pids.max", v, err)) != PS_OK)
			return rc;
		int64_t w = l->io_weight > 0 ? l->io_weight : 100;
		if (w > 10000)
			w = 10000;
		if (file_exists(cg, 0, name, "io.weight")) {
			snprintf(v, sizeof(v), "default %" PRId64, w);
			if (set_file(cg, 0, name, "io.weight", v, NULL) != PS_OK && notes)
				note(notes, nlen, "io.weight refused by the kernel");
		} else if (file_exists(cg, 0, name, "io.bfq.weight")) {
			snprintf(v, sizeof(v), "%" PRId64, w > 1000 ? 1000 : w);
			set_file(cg, 0, name, "io.bfq.weight", v, NULL);
		} else if (l->io_weight > 0 && notes) {
			note(notes, nlen, "I/O weight not applied (no io controller with weights)");
		}
		return PS_OK;
	}
	/* v1 */
	snprintf(v, sizeof(v), "%" PRId64, period);
	if ((rc = set_file(cg, PS_CG_CPU, name, "cpu.cfs_period_us", v, err)) != PS_OK)
		return rc;
	snprintf(v, sizeof(v), "%" PRId64, quota);
	if ((rc = set_file(cg, PS_CG_CPU, name, "cpu.cfs_quota_us", v, err)) != PS_OK)
		return rc;
	snprintf(v, sizeof(v), "%" PRId64, l->memory > 0 ? l->memory : (int64_t)-1);
	int memsw = file_exists(cg, PS_CG_MEMORY, name, "memory.memsw.limit_in_bytes");
	/* memsw must stay >= the memory limit: which goes first depends on the
	 * direction; try memory first, and the other order if it is refused */
	rc = set_file(cg, PS_CG_MEMORY, name, "memory.limit_in_bytes", v, err);
	if (memsw) {
		int rc2 = set_file(cg, PS_CG_MEMORY, name, "memory.memsw.limit_in_bytes", v,
				   rc == PS_OK ? err : NULL);
		if (rc != PS_OK)
			rc = set_file(cg, PS_CG_MEMORY, name, "memory.limit_in_bytes", v, err);
		else
			rc = rc2;
	}
	if (rc != PS_OK)
		return rc;
	if (l->pids > 0)
		snprintf(v, sizeof(v), "%" PRId64, l->pids);
	else
		snprintf(v, sizeof(v), "max");
	if ((rc = set_file(cg, PS_CG_PIDS, name, "pids.max", v, err)) != PS_OK)
		return rc;
	int64_t w = l->io_weight > 0 ? l->io_weight * 5 : 500;
	if (w < 10)
		w = 10;
	if (w > 1000)
		w = 1000;
	snprintf(v, sizeof(v), "%" PRId64, w);
	if (cg->v1dir[PS_CG_BLKIO][0] && file_exists(cg, PS_CG_BLKIO, name, "blkio.weight"))
		set_file(cg, PS_CG_BLKIO, name, "blkio.weight", v, NULL);
	else if (cg->v1dir[PS_CG_BLKIO][0] && file_exists(cg, PS_CG_BLKIO, name, "blkio.bfq.weight"))
		set_file(cg, PS_CG_BLKIO, name, "blkio.bfq.weight", v, NULL);
	else if (l->io_weight > 0 && notes)
		note(notes, nlen,
		     "I/O weight not applied (blkio has no weight file: no BFQ scheduler)");
	if (!memsw && l->memory > 0 && notes)
		note(notes, nlen, "no swap accounting: the memory limit covers RAM only");
	return PS_OK;
}

/* ------------------------------------------------------------ members */

int ps_cgroup_join(const struct ps_cgroup *cg, const char *name, pid_t pid, struct ps_error *err)
{
	char v[32];
	int rc = check_name(name, err);
	if (rc != PS_OK)
		return rc;
	/* "0" = the writer itself, whatever PID namespace it is in */
	snprintf(v, sizeof(v), "%d", (int)pid);
	if (cg->version == 2)
		return set_file(cg, 0, name, "cgroup.procs", v, err);
	for (int i = 0; i < PS_CG_NV1; i++) {
		if (!cg->v1dir[i][0])
			continue;
		if ((rc = set_file(cg, i, name, "cgroup.procs", v, err)) != PS_OK)
			return rc;
	}
	return PS_OK;
}

int ps_cgroup_procs(const struct ps_cgroup *cg, const char *name, pid_t **out, size_t *n,
		    struct ps_error *err)
{
	char f[PATH_MAX];
	struct ps_buf b = PS_BUF_INIT;
	*out = NULL;
	*n = 0;
	int rc = check_name(name, err);
	if (rc != PS_OK)
		return rc;
	if (cg_file(cg, PS_CG_PIDS, name, "cgroup.procs", f, sizeof(f)) != 0)
		return ps_err(err, PS_ERROR, "no pids controller");
	rc = ps_read_file(f, 64 << 20, &b, err);
	if (rc != PS_OK)
		return rc;
	size_t cap = 0;
	pid_t *v = NULL;
	char *p = (char *)b.data, *end = p + b.len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		long pid = strtol(p, NULL, 10);
		if (pid > 0) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 32;
				pid_t *nv = ps_realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(v);
					ps_buf_release(&b);
					return ps_err(err, PS_ERROR, "out of memory");
				}
				v = nv;
			}
			v[(*n)++] = (pid_t)pid;
		}
		p = nl + 1;
	}
	ps_buf_release(&b);
	*out = v;
	return PS_OK;
}

static int64_t read_i64(const struct ps_cgroup *cg, int ctrl, const char *name, const char *file);

static int count_procs(const struct ps_cgroup *cg, const char *name)
{
	pid_t *v;
	size_t n;
	if (ps_cgroup_procs(cg, name, &v, &n, NULL) != PS_OK)
		return 0;
	free(v);
	return (int)n;
}

static int signal_all(const struct ps_cgroup *cg, const char *name, int sig)
{
	pid_t *v;
	size_t n;
	if (ps_cgroup_procs(cg, name, &v, &n, NULL) != PS_OK)
		return 0;
	int k = 0;
	for (size_t i = 0; i < n; i++)
		if (kill(v[i], sig) == 0)
			k++;
	free(v);
	return k;
}

static void set_frozen(const struct ps_cgroup *cg, const char *name, int frozen)
{
	char f[PATH_MAX], buf[64];
	if (cg->version == 2) {
		if (cg_file(cg, 0, name, "cgroup.freeze", f, sizeof(f)) == 0 && exists(f))
			write_text(f, frozen ? "1" : "0");
		return;
	}
	if (!cg->v1dir[PS_CG_FREEZER][0] ||
	    cg_file(cg, PS_CG_FREEZER, name, "freezer.state", f, sizeof(f)) != 0)
		return;
	if (write_text(f, frozen ? "FROZEN" : "THAWED") != 0 || !frozen)
		return;
	/* FREEZING -> FROZEN: wait a little (a task in an uninterruptible
	 * sleep delays it; SIGKILL still lands after the thaw) */
	for (int i = 0; i < 100; i++) {
		if (read_text(f, buf, sizeof(buf)) != 0 || strncmp(buf, "FROZEN", 6) == 0)
			return;
		ps_sleep_ms(2);
	}
}

int ps_cgroup_kill_all(const struct ps_cgroup *cg, const char *name, int grace_ms, int *killed,
		       struct ps_error *err)
{
	int rc = check_name(name, err);
	if (killed)
		*killed = 0;
	if (rc != PS_OK)
		return rc;
	if (!ps_cgroup_exists(cg, name))
		return PS_OK;
	int k = 0;
	if (grace_ms > 0 && count_procs(cg, name) > 0) {
		k = signal_all(cg, name, SIGTERM);
		int64_t until = ps_mono_ns() + (int64_t)grace_ms * 1000000;
		while (count_procs(cg, name) > 0 && ps_mono_ns() < until)
			ps_sleep_ms(10);
	}
	char f[PATH_MAX];
	int64_t until = ps_mono_ns() + 10LL * 1000000000;
	while (count_procs(cg, name) > 0) {
		if (ps_mono_ns() > until) {
			rc = ps_err(err, PS_ERROR, "cgroup %s: %d processes still alive after SIGKILL",
				    name, count_procs(cg, name));
			break;
		}
		if (cg->version == 2 && cg_file(cg, 0, name, "cgroup.kill", f, sizeof(f)) == 0 &&
		    exists(f) && write_text(f, "1") == 0) {
			k = k ? k : 1;
			ps_sleep_ms(5);
			continue;
		}
		set_frozen(cg, name, 1);
		int s = signal_all(cg, name, SIGKILL);
		if (s > k)
			k = s;
		set_frozen(cg, name, 0);
		ps_sleep_ms(5);
	}
	/* the last tasks leave pids.current a moment after cgroup.procs */
	for (int i = 0; rc == PS_OK && i < 200 && read_i64(cg, PS_CG_PIDS, name, "pids.current") > 0; i++)
		ps_sleep_ms(10);
	if (killed)
		*killed = k;
	return rc;
}

/* ------------------------------------------------------------ usage */

static int64_t read_i64(const struct ps_cgroup *cg, int ctrl, const char *name, const char *file)
{
	char f[PATH_MAX], buf[64];
	if (cg_file(cg, ctrl, name, file, f, sizeof(f)) != 0 || read_text(f, buf, sizeof(buf)) != 0)
		return -1;
	if (strncmp(buf, "max", 3) == 0)
		return 0;
	return strtoll(buf, NULL, 10);
}

/* value of "key N" in a flat keyed file; -1 if absent */
static int64_t read_key(const struct ps_cgroup *cg, int ctrl, const char *name, const char *file,
			const char *key)
{
	char f[PATH_MAX], buf[8192];
	if (cg_file(cg, ctrl, name, file, f, sizeof(f)) != 0 || read_text(f, buf, sizeof(buf)) != 0)
		return -1;
	size_t kl = strlen(key);
	for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
			return strtoll(p + kl + 1, NULL, 10);
	return -1;
}

/* v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device */
static int64_t v2_io_bytes(const struct ps_cgroup *cg, const char *name)
{
	char f[PATH_MAX], buf[16384];
	if (cg_file(cg, 0, name, "io.stat", f, sizeof(f)) != 0 || read_text(f, buf, sizeof(buf)) != 0)
		return -1;
	int64_t sum = 0;
	for (char *p = buf; *p; p++) {
		if ((p == buf || p[-1] == ' ') &&
		    (strncmp(p, "rbytes=", 7) == 0 || strncmp(p, "wbytes=", 7) == 0))
			sum += strtoll(p + 7, NULL, 10);
	}
	return sum;
}

int ps_cgroup_usage(const struct ps_cgroup *cg, const char *name, struct ps_host_usage *u,
		    struct ps_error *err)
{
	int rc = check_name(name, err);
	if (rc != PS_OK)
		return rc;
	if (!ps_cgroup_exists(cg, name))
		return ps_err(err, PS_ENOTFOUND, "no cgroup for %s on this host", name);
	u->running = count_procs(cg, name);
	if (cg->version == 2) {
		u->cpu_usec = read_key(cg, 0, name, "cpu.stat", "usage_usec");
		u->memory_bytes = read_i64(cg, 0, name, "memory.current");
		u->memory_peak = read_i64(cg, 0, name, "memory.peak");
		u->io_bytes = v2_io_bytes(cg, name);
		u->pids = read_i64(cg, 0, name, "pids.current");
		u->oom_kills = read_key(cg, 0, name, "memory.events", "oom_kill");
	} else {
		int64_t ns = cg->v1dir[PS_CG_CPUACCT][0] ? read_i64(cg, PS_CG_CPUACCT, name, "cpuacct.usage")
							: -1;
		u->cpu_usec = ns >= 0 ? ns / 1000 : -1;
		u->memory_bytes = read_i64(cg, PS_CG_MEMORY, name, "memory.usage_in_bytes");
		u->memory_peak = read_i64(cg, PS_CG_MEMORY, name, "memory.max_usage_in_bytes");
		u->io_bytes = cg->v1dir[PS_CG_BLKIO][0]
				      ? read_key(cg, PS_CG_BLKIO, name,
						 "blkio.throttle.io_service_bytes_recursive", "Total")
				      : -1;
		u->pids = read_i64(cg, PS_CG_PIDS, name, "pids.current");
		u->oom_kills = read_key(cg, PS_CG_MEMORY, name, "memory.oom_control", "oom_kill");
	}
	return PS_OK;
}

/* ------------------------------------------------------------ remove, list */

int ps_cgroup_remove(const struct ps_cgroup *cg, const char *name, struct ps_error *err)
{
	char d[PATH_MAX];
	int rc = check_name(name, err);
	if (rc != PS_OK)
		return rc;
	int nctl = cg->version == 2 ? 1 : PS_CG_NV1;
	for (int i = 0; i < nctl; i++) {
		if (cg->version == 1 && !cg->v1dir[i][0])
			continue;
		cg_dir(cg, i, name, d, sizeof(d));
		/* members that just exited may keep it busy for a moment */
		for (int t = 0;; t++) {
			if (rmdir(d) == 0 || errno == ENOENT)
				break;
			if (errno == EBUSY && t < 200) {
				ps_sleep_ms(10);
				continue;
			}
			if (errno == ENOTEMPTY || errno == EEXIST) {
				/* a fake tree: its files are plain files */
				DIR *dir = opendir(d);
				struct dirent *de;
				while (dir && (de = readdir(dir)) != NULL)
					if (de->d_type == DT_REG)
						unlinkat(dirfd(dir), de->d_name, 0);
				if (dir)
					closedir(dir);
				if (rmdir(d) == 0)
					break;
			}
			return ps_err_sys(err, "cannot remove cgroup '%s'", d);
		}
	}
	return PS_OK;
}

int ps_cgroup_list(const struct ps_cgroup *cg, char ***names, size_t *n, struct ps_error *err)
{
	char d[PATH_MAX];
	size_t cap = 0;
	*names = NULL;
	*n = 0;
	if (cg_dir(cg, PS_CG_PIDS, "", d, sizeof(d)) != 0)
		return ps_err(err, PS_ERROR, "no pids controller");
	DIR *dir = opendir(d);
	if (!dir) {
		if (errno == ENOENT)
			return PS_OK;
		return ps_err_sys(err, "cannot list '%s'", d);
	}
	struct dirent *de;
	int rc = PS_OK;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (ps_strv_push(names, n, &cap, de->d_name) != 0) {
			rc = ps_err(err, PS_ERROR, "out of memory");
			break;
		}
	}
	closedir(dir);
	return rc;
}
