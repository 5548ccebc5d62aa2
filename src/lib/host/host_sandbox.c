/*
 * host_sandbox.c - the sandbox a project's commands run in.
 *
 * A sandbox is a small init process, pid 1 of its own PID namespace, that
 * holds the project's mount, UTS, IPC and network namespaces and reaps
 * orphans.  It sits in the project's cgroup, so stopping the cgroup stops the
 * sandbox; when pid 1 goes, the kernel kills everything else in the namespace
 * and the mounts vanish with the last process: nothing is left on the host.
 * It is started on the first `run` and found again through the cgroup (the
 * member whose NSpid is "<host pid> 1" and whose uid is 0).
 *
 * Its file system is built on an empty tmpfs and switched to with
 * pivot_root, so only what is listed here exists inside:
 *
 *   /usr /etc /bin /sbin /lib* /opt   the host's, read-only (bind, nosuid, nodev)
 *   /home/project                     the working copy ROOT/PROJECT-ID, read-write
 *   /data  /scratch                   the shared volumes (read-only / read-write), if set
 *   /proc                             a new procfs: the sandbox's processes only
 *   /sys                              read-only sysfs of its own network namespace
 *   /dev                              null zero full random urandom tty, a private
 *                                     devpts, a private /dev/shm
 *   /tmp (= /var/tmp)  /run           private tmpfs (their pages count as the
 *                                     project's memory)
 * The root itself is read-only.  Other projects' directories, the store, the
 * catalog, /root and /var do not exist inside.
 *
 * A command joins the sandbox (ps_sandbox_exec): the caller enters the PID
 * namespace for its children, forks, and the child joins the cgroup, enters
 * the other namespaces, chroots to the init's root, drops to the project's
 * uid and gid (no supplementary groups, no_new_privs: setuid programs do not
 * elevate) and executes the command with a clean environment.  The caller
 * waits for it and passes signals on.
 */
#define _GNU_SOURCE
#include "host_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <linux/btrfs.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

const char *ps_host_run_dir(const struct ps_host_config *cfg)
{
	const char *d = cfg && cfg->run_dir ? cfg->run_dir : getenv("PROJSTORE_RUN_DIR");
	return d && *d ? d : "/run/projstore";
}

/* ------------------------------------------------------------ finding it */

/* 1 if /proc/pid is a sandbox init: NSpid "<pid> 1", uid 0 */
static int is_init(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *ns = strstr(buf, "\nNSpid:");
	char *uid = strstr(buf, "\nUid:");
	if (!ns || !uid)
		return 0;
	long a = 0, b = 0, c = -1;
	int k = sscanf(ns + 7, "%ld %ld %ld", &a, &b, &c);
	/* exactly two levels (host, sandbox) and pid 1 in the inner one */
	char *eol = strchr(ns + 1, '\n');
	if (eol) {
		int fields = 0;
		for (char *p = ns + 7; p < eol; p++)
			if ((p[0] >= '0' && p[0] <= '9') && (p[-1] == '\t' || p[-1] == ' '))
				fields++;
		k = fields;
	}
	long u = -1;
	sscanf(uid + 5, "%ld", &u);
	return k == 2 && a == pid && b == 1 && u == 0;
}

pid_t ps_sandbox_find(const struct ps_sandbox *sb)
{
	pid_t *v, found = 0;
	size_t n;
	if (ps_cgroup_procs(sb->cg, sb->user, &v, &n, NULL) != PS_OK)
		return 0;
	for (size_t i = 0; i < n && !found; i++)
		if (is_init(v[i]))
			found = v[i];
	free(v);
	return found;
}

/* ------------------------------------------------------------ the init */

static void report(int fd, const char *fmt, ...) PS_ATTR_PRINTF(2, 3);
static void report(int fd, const char *fmt, ...)
{
	char buf[1024];
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 64, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(buf) - 64)
		n = (int)sizeof(buf) - 64;
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", strerror(e));
	if (write(fd, "E", 1) == 1 && write(fd, buf, (size_t)n) < 0)
		return;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, mode) == 0 || errno == EEXIST ? 0 : -1;
}

static int bind_mount(const char *src, const char *dst, int ro, int is_file)
{
	if (is_file) {
		int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return -1;
		close(fd);
	} else if (mkdir_p(dst, 0755) != 0) {
		return -1;
	}
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
		return -1;
	unsigned long fl = MS_BIND | MS_REMOUNT | MS_NOSUID | (ro ? MS_RDONLY : 0);
	if (!is_file)
		fl |= MS_NODEV;
	return mount(NULL, dst, NULL, fl, NULL);
}

const char *const ps_sandbox_sys_dirs[] = { "usr", "etc", "bin", "sbin", "lib", "lib32",
					     "lib64", "libx32", "opt", NULL };

static int build_root(const struct ps_sandbox *sb, const char *nr, int fd)
{
	const char *const *sys_dirs = ps_sandbox_sys_dirs;
	static const char *const devs[] = { "null", "zero", "full", "random", "urandom", "tty" };
	char p[PATH_MAX], src[PATH_MAX], link[PATH_MAX];
	if (mount("sandbox", nr, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0) {
		report(fd, "cannot mount the sandbox root on '%s'", nr);
		return -1;
	}
	for (size_t i = 0; sys_dirs[i]; i++) {
		struct stat st;
		snprintf(src, sizeof(src), "/%s", sys_dirs[i]);
		snprintf(p, sizeof(p), "%s/%s", nr, sys_dirs[i]);
		if (lstat(src, &st) != 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlink(src, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (symlink(link, p) != 0) {
				report(fd, "cannot make '%s'", p);
				return -1;
			}
		} else if (S_ISDIR(st.st_mode) && bind_mount(src, p, 1, 0) != 0) {
			report(fd, "cannot mount '%s' read-only", src);
			return -1;
		}
	}
	/* /dev */
	snprintf(p, sizeof(p), "%s/dev", nr);
	if (mkdir(p, 0755) != 0 ||
	    mount("sandbox-dev", p, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") != 0) {
		report(fd, "cannot make '%s'", p);
		return -1;
	}
	for (size_t i = 0; i < PS_ARRAY_LEN(devs); i++) {
		snprintf(src, sizeof(src), "/dev/%s", devs[i]);
		snprintf(p, sizeof(p), "%s/dev/%s", nr, devs[i]);
		if (access(src, F_OK) == 0 && bind_mount(src, p, 0, 1) != 0) {
			report(fd, "cannot mount '%s'", src);
			return -1;
		}
	}
	snprintf(p, sizeof(p), "%s/dev/pts", nr);
	if (mkdir(p, 0755) != 0 ||
	    mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") != 0) {
		report(fd, "cannot mount a private devpts");
		return -1;
	}
	snprintf(p, sizeof(p), "%s/dev/shm", nr);
	if (mkdir(p, 01777) != 0 ||
	    mount("sandbox-shm", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
		report(fd, "cannot mount a private /dev/shm");
		return -1;
	}
	static const char *const links[][2] = { { "pts/ptmx", "ptmx" },
						{ "/proc/self/fd", "fd" },
						{ "/proc/self/fd/0", "stdin" },
						{ "/proc/self/fd/1", "stdout" },
						{ "/proc/self/fd/2", "stderr" } };
	for (size_t i = 0; i < PS_ARRAY_LEN(links); i++) {
		snprintf(p, sizeof(p), "%s/dev/%s", nr, links[i][1]);
		if (symlink(links[i][0], p) != 0) {
			report(fd, "cannot make '%s'", p);
			return -1;
		}
	}
	/* /tmp, /var/tmp, /run */
	snprintf(p, sizeof(p), "%s/tmp", nr);
	if (mkdir(p, 01777) != 0 ||
	    mount("sandbox-tmp", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
		report(fd, "cannot mount a private /tmp");
		return -1;
	}
	snprintf(p, sizeof(p), "%s/var", nr);
	snprintf(link, sizeof(link), "%s/var/tmp", nr);
	if (mkdir(p, 0755) != 0 || symlink("/tmp", link) != 0) {
		report(fd, "cannot make '%s'", link);
		return -1;
	}
	snprintf(p, sizeof(p), "%s/run", nr);
	if (mkdir(p, 0755) != 0 ||
	    mount("sandbox-run", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0) {
		report(fd, "cannot mount a private /run");
		return -1;
	}
	/* the home and the shared volumes */
	snprintf(p, sizeof(p), "%s%s", nr, PS_HOST_HOME);
	if (bind_mount(sb->home, p, 0, 0) != 0) {
		report(fd, "cannot mount the working copy '%s'", sb->home);
		return -1;
	}
	if (sb->cfg->data && *sb->cfg->data) {
		snprintf(p, sizeof(p), "%s%s", nr, PS_HOST_DATA);
		if (bind_mount(sb->cfg->data, p, 1, 0) != 0) {
			report(fd, "cannot mount the data volume '%s'", sb->cfg->data);
			return -1;
		}
	}
	if (sb->cfg->scratch && *sb->cfg->scratch) {
		snprintf(p, sizeof(p), "%s%s", nr, PS_HOST_SCRATCH);
		if (bind_mount(sb->cfg->scratch, p, 0, 0) != 0) {
			report(fd, "cannot mount the scratch volume '%s'", sb->cfg->scratch);
			return -1;
		}
	}
	snprintf(p, sizeof(p), "%s/proc", nr);
	snprintf(link, sizeof(link), "%s/sys", nr);
	if (mkdir(p, 0555) != 0 || mkdir(link, 0555) != 0) {
		report(fd, "cannot make '%s'", p);
		return -1;
	}
	return 0;
}

static void lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

static void close_fds_except(int keep)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int dfd = dirfd(d);
	struct dirent *de;
	int fds[1024], n = 0;
	while ((de = readdir(d)) != NULL && n < 1024) {
		int f = atoi(de->d_name);
		if (de->d_name[0] != '.' && f > 2 && f != keep && f != dfd)
			fds[n++] = f;
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* 1 when no process but pid 1 (and zombies) is left in the sandbox: its
 * /proc shows only the sandbox's processes */
static int init_alone(void)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 1;
	struct dirent *de;
	int others = 0;
	char path[64], st[256];
	while (!others && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || strcmp(de->d_name, "1") == 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		int f = open(path, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			continue; /* gone meanwhile */
		ssize_t n = read(f, st, sizeof(st) - 1);
		close(f);
		if (n <= 0)
			continue;
		st[n] = 0;
		/* "PID (COMM) STATE ...": the state follows the last ')' */
		char *rp = strrchr(st, ')');
		if (!rp || rp[1] != ' ' || rp[2] != 'Z')
			others = 1;
	}
	closedir(d);
	return !others;
}

/* pid 1 of the sandbox: never returns.  SIGTERM (SIGINT, SIGHUP) from the
 * host ends it once every other process of the sandbox has ended: when pid
 * 1 goes, the kernel kills the rest at once, which would cut short the grace
 * period that the stop gives them after its SIGTERM. */
static void init_main(const struct ps_sandbox *sb, const char *nr, int fd)
{
	close_fds_except(fd);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		report(fd, "cannot make the mounts private");
		_exit(1);
	}
	if (build_root(sb, nr, fd) != 0)
		_exit(1);
	if (chdir(nr) != 0) {
		report(fd, "cannot enter '%s'", nr);
		_exit(1);
	}
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) != 0) {
			report(fd, "cannot detach the host's root");
			_exit(1);
		}
	} else if (mount(".", "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0) {
		/* a root that cannot be pivoted (an initramfs): move + chroot */
		report(fd, "cannot switch to the sandbox root");
		_exit(1);
	}
	if (chdir("/") != 0) {
		report(fd, "cannot enter the sandbox root");
		_exit(1);
	}
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
		report(fd, "cannot mount /proc");
		_exit(1);
	}
	/* sysfs of the new network namespace; not essential */
	(void)mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
		report(fd, "cannot make the sandbox root read-only");
		_exit(1);
	}
	char host[65];
	snprintf(host, sizeof(host), "%s", sb->project);
	(void)sethostname(host, strlen(host));
	lo_up();
	int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (oom >= 0) {
		if (write(oom, "-1000", 5) < 0) {
			/* not fatal: the memory hog is the bigger target anyway */
		}
		close(oom);
	}
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
	}
	prctl(PR_SET_NAME, "projstore-init", 0, 0, 0);
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	if (write(fd, "OK", 2) != 2)
		_exit(1);
	close(fd);
	int stopping = 0;
	for (;;) {
		siginfo_t si;
		struct timespec tick = { 0, 20 * 1000 * 1000 };
		int s = stopping ? sigtimedwait(&all, &si, &tick) : sigwaitinfo(&all, &si);
		if (s == SIGCHLD) {
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
		} else if (s == SIGTERM || s == SIGINT || s == SIGHUP) {
			/* from the host (nothing inside may signal a root pid 1) */
			stopping = 1;
		}
		if (stopping) {
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
			if (init_alone())
				_exit(0);
		}
	}
}

/* ------------------------------------------------------------ starting it */

static int start(const struct ps_sandbox *sb, pid_t *pid, struct ps_error *err)
{
	char nr[PATH_MAX];
	snprintf(nr, sizeof(nr), "%s/root", ps_host_run_dir(sb->cfg));
	if (mkdir_p(nr, 0700) != 0)
		return ps_err_sys(err, "cannot create '%s'", nr);
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return ps_err_sys(err, "cannot start the sandbox of %s", sb->project);
	pid_t c1 = fork();
	if (c1 < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return ps_err_sys(err, "cannot start the sandbox of %s", sb->project);
	}
	if (c1 == 0) {
		struct ps_error e;
		close(pfd[0]);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		if (ps_cgroup_join(sb->cg, sb->user, 0, &e) != PS_OK) {
			errno = e.sys_errno;
			report(pfd[1], "%s", e.msg);
			_exit(1);
		}
		if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID) != 0) {
			report(pfd[1], "cannot make the namespaces");
			_exit(1);
		}
		pid_t c2 = fork();
		if (c2 < 0) {
			report(pfd[1], "cannot fork the sandbox init");
			_exit(1);
		}
		if (c2 == 0)
			init_main(sb, nr, pfd[1]);
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "P%d\n", (int)c2);
		if (write(pfd[1], msg, (size_t)n) != n)
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	char buf[1200];
	size_t o = 0;
	for (;;) {
		ssize_t r = read(pfd[0], buf + o, sizeof(buf) - 1 - o);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		o += (size_t)r;
		if (o >= sizeof(buf) - 1)
			break;
	}
	buf[o] = 0;
	close(pfd[0]);
	int st;
	while (waitpid(c1, &st, 0) < 0 && errno == EINTR)
		;
	char *e = strchr(buf, 'E');
	if (e)
		return ps_err(err, PS_ERROR, "sandbox of %s: %s", sb->project, e + 1);
	long p = 0;
	if (buf[0] != 'P' || (p = strtol(buf + 1, NULL, 10)) <= 0 || !strstr(buf, "OK"))
		return ps_err(err, PS_ERROR, "sandbox of %s did not start", sb->project);
	*pid = (pid_t)p;
	return PS_OK;
}

int ps_sandbox_ensure(const struct ps_sandbox *sb, pid_t *pid, int *started, struct ps_error *err)
{
	char lock[PATH_MAX];
	const char *rd = ps_host_run_dir(sb->cfg);
	*started = 0;
	if (mkdir_p(rd, 0700) != 0)
		return ps_err_sys(err, "cannot create '%s'", rd);
	snprintf(lock, sizeof(lock), "%s/%s.lock", rd, sb->user);
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0)
		return ps_err_sys(err, "cannot open '%s'", lock);
	while (flock(lfd, LOCK_EX) != 0 && errno == EINTR)
		;
	int rc = PS_OK;
	*pid = ps_sandbox_find(sb);
	if (!*pid) {
		rc = start(sb, pid, err);
		if (rc == PS_OK)
			*started = 1;
	}
	if (rc == PS_OK && sb->network == PS_HOST_NET_OUTBOUND && !ps_net_attached(sb->uid))
		rc = ps_net_attach(sb->cfg, sb->user, sb->uid, *pid, err);
	close(lfd);
	unlink(lock);
	return rc;
}

/* ------------------------------------------------------------ running a command */

static volatile pid_t fwd_child;

static void forward(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	/* a terminal's signals (SI_KERNEL) reach the child through its process
	 * group already; pass on only what was sent to us */
	if (fwd_child > 0 && si && si->si_code <= 0)
		kill(fwd_child, sig);
}

static const int fwd_sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
				SIGCONT };

static void child_env(const struct ps_sandbox *sb, const struct ps_host_run_opts *opts)
{
	static const char *const keep[] = { "TERM", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "COLORTERM" };
	char *saved[PS_ARRAY_LEN(keep)];
	for (size_t i = 0; i < PS_ARRAY_LEN(keep); i++) {
		const char *v = getenv(keep[i]);
		saved[i] = v ? strdup(v) : NULL;
	}
	clearenv();
	for (size_t i = 0; i < PS_ARRAY_LEN(keep); i++)
		if (saved[i])
			setenv(keep[i], saved[i], 1);
	setenv("HOME", PS_HOST_HOME, 1);
	setenv("USER", sb->user, 1);
	setenv("LOGNAME", sb->user, 1);
	setenv("SHELL", "/bin/bash", 1);
	setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1);
	setenv("PROJSTORE_PROJECT", sb->project, 1);
	if (opts && opts->env)
		for (char *const *e = opts->env; *e; e++)
			putenv(*e);
}


/*
 * The project's processes may not create btrfs subvolumes or snapshots: a
 * subvolume made inside the home has a quota group of its own, which the
 * project's limit does not count, so it would escape the disk quota. A
 * seccomp filter (libseccomp) answers those ioctls with EPERM; every process
 * the command starts inherits it (no_new_privs is set before). System calls
 * of other ABIs (32-bit) are not in the filter and kill the process.
 */
static int deny_subvolume_ioctls(void)
{
	static const unsigned long cmds[] = { BTRFS_IOC_SUBVOL_CREATE, BTRFS_IOC_SUBVOL_CREATE_V2,
					      BTRFS_IOC_SNAP_CREATE, BTRFS_IOC_SNAP_CREATE_V2 };
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc = 0;
	if (!ctx)
		return ENOMEM;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]) && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)cmds[i]));
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc < 0 ? -rc : rc;
}

int ps_sandbox_exec(const struct ps_sandbox *sb, pid_t init, char *const *argv,
		    const struct ps_host_run_opts *opts, int *wstatus, struct ps_error *err)
{
	static const char *const nsn[] = { "ipc", "uts", "net", "mnt" };
	static const int nst[] = { CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWNS };
	int nsfd[4] = { -1, -1, -1, -1 }, pidfd = -1, selfpid = -1, rootfd = -1, epipe[2] = { -1, -1 };
	char p[64];
	int rc = PS_OK;
	struct sigaction old[PS_ARRAY_LEN(fwd_sigs)];
	sigset_t block, oldmask;
	*wstatus = 0;
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)init, nsn[i]);
		if ((nsfd[i] = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
			rc = ps_err_sys(err, "sandbox of %s: cannot open '%s'", sb->project, p);
			goto done;
		}
	}
	snprintf(p, sizeof(p), "/proc/%d/ns/pid", (int)init);
	pidfd = open(p, O_RDONLY | O_CLOEXEC);
	selfpid = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	snprintf(p, sizeof(p), "/proc/%d/root", (int)init);
	rootfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pidfd < 0 || selfpid < 0 || rootfd < 0 || pipe2(epipe, O_CLOEXEC) != 0) {
		rc = ps_err_sys(err, "sandbox of %s: cannot open its namespaces", sb->project);
		goto done;
	}
	if (setns(pidfd, CLONE_NEWPID) != 0) {
		rc = ps_err_sys(err, "sandbox of %s: cannot enter its PID namespace", sb->project);
		goto done;
	}
	sigemptyset(&block);
	for (size_t i = 0; i < PS_ARRAY_LEN(fwd_sigs); i++)
		sigaddset(&block, fwd_sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &oldmask);
	for (size_t i = 0; i < PS_ARRAY_LEN(fwd_sigs); i++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = forward;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(fwd_sigs[i], &sa, &old[i]);
	}
	fwd_child = 0;
	pid_t child = fork();
	int fork_errno = errno;
	/* later children of the caller stay in its own PID namespace */
	(void)setns(selfpid, CLONE_NEWPID);
	if (child == 0) {
		int e = 0;
		const char *what = "";
		for (size_t i = 0; i < PS_ARRAY_LEN(fwd_sigs); i++)
			signal(fwd_sigs[i], SIG_DFL);
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		struct ps_error ce;
		if (ps_cgroup_join(sb->cg, sb->user, 0, &ce) != PS_OK) {
			e = ce.sys_errno ? ce.sys_errno : EPERM;
			what = "join the cgroup";
			goto fail;
		}
		for (int i = 0; i < 4; i++)
			if (setns(nsfd[i], nst[i]) != 0) {
				e = errno;
				what = "enter the namespaces";
				goto fail;
			}
		if (fchdir(rootfd) != 0 || chroot(".") != 0) {
			e = errno;
			what = "enter the sandbox root";
			goto fail;
		}
		gid_t g = (gid_t)sb->uid;
		if (setgroups(1, &g) != 0 || setresgid(g, g, g) != 0 ||
		    setresuid((uid_t)sb->uid, (uid_t)sb->uid, (uid_t)sb->uid) != 0) {
			e = errno;
			what = "become the project's user";
			goto fail;
		}
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if ((e = deny_subvolume_ioctls()) != 0) {
			what = "install the seccomp filter";
			goto fail;
		}
		const char *cwd = opts && opts->cwd ? opts->cwd : PS_HOST_HOME;
		if (chdir(cwd) != 0) {
			e = errno;
			what = "enter the directory";
			goto fail;
		}
		child_env(sb, opts);
		execvp(argv[0], argv);
		e = errno;
		what = "run";
	fail:;
		char msg[300];
		int n = snprintf(msg, sizeof(msg), "%d %s", e, what);
		if (write(epipe[1], msg, (size_t)n) < 0)
			_exit(126);
		_exit(e == ENOENT && strcmp(what, "run") == 0 ? 127 : 126);
	}
	if (child < 0) {
		errno = fork_errno;
		rc = ps_err_sys(err, "sandbox of %s: cannot fork", sb->project);
		goto restore;
	}
	fwd_child = child;
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	close(epipe[1]);
	epipe[1] = -1;
	char msg[300];
	ssize_t n;
	while ((n = read(epipe[0], msg, sizeof(msg) - 1)) < 0 && errno == EINTR)
		;
	int st = 0;
	while (waitpid(child, &st, 0) < 0) {
		if (errno != EINTR) {
			rc = ps_err_sys(err, "sandbox of %s: cannot wait for the command", sb->project);
			break;
		}
	}
	*wstatus = st;
	if (n > 0 && rc == PS_OK) {
		msg[n] = 0;
		int e = atoi(msg);
		const char *what = strchr(msg, ' ');
		what = what ? what + 1 : "run";
		errno = e;
		if (strcmp(what, "run") == 0)
			rc = ps_err(err, e == ENOENT ? PS_ENOTFOUND : PS_ERROR, "cannot run '%s': %s", argv[0],
				    strerror(e));
		else if (strcmp(what, "enter the directory") == 0)
			rc = ps_err(err, PS_ENOTFOUND, "cannot enter '%s' in the sandbox: %s",
				    opts && opts->cwd ? opts->cwd : PS_HOST_HOME, strerror(e));
		else
			rc = ps_err(err, PS_ERROR, "sandbox of %s: cannot %s: %s", sb->project, what,
				    strerror(e));
		if (err)
			err->sys_errno = e;
	}
restore:
	fwd_child = 0;
	for (size_t i = 0; i < PS_ARRAY_LEN(fwd_sigs); i++)
		sigaction(fwd_sigs[i], &old[i], NULL);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
done:
	for (int i = 0; i < 4; i++)
		if (nsfd[i] >= 0)
			close(nsfd[i]);
	if (pidfd >= 0)
		close(pidfd);
	if (selfpid >= 0)
		close(selfpid);
	if (rootfd >= 0)
		close(rootfd);
	if (epipe[0] >= 0)
		close(epipe[0]);
	if (epipe[1] >= 0)
		close(epipe[1]);
	return rc;
}
