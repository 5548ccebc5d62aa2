/*
 * deadfs - a tiny FUSE filesystem for the projstore tests.
 *
 *   deadfs [-f] [--slow SECONDS] [--size BYTES] [--allow-other] MOUNTPOINT PIDFILE
 *
 * Mounts a read-only filesystem holding one directory "dir" with one file
 * "dir/file" (and "file" at the top), then detaches: when deadfs returns the
 * mount is in place and PIDFILE holds the pid of the process serving it.
 * With -f it does not detach: it writes its own pid to PIDFILE once the mount
 * is in place and serves it in the foreground (run it with & and wait for
 * PIDFILE; the caller can then reap it with `wait`).
 *
 * Uses:
 *   - dead mount: kill -KILL "$(cat PIDFILE)"; from then on every access to
 *     MOUNTPOINT fails with ENOTCONN ("Transport endpoint is not connected"),
 *     like a dead network mount.  Clean up with `umount -l MOUNTPOINT` or
 *     `fusermount3 -u -z MOUNTPOINT`.
 *   - slow mount (--slow S): every read of a file sleeps S seconds first and
 *     the files report the current time as mtime, so a save that reads them
 *     takes at least S seconds.  Unmounting ends the process.
 *
 * --size sets the size of the files (default 64 bytes).  --allow-other lets
 * other users than the one mounting it in (FUSE's allow_other; root may).
 * No caching: every lookup, getattr and read goes to the process.
 *
 *   - unkillable reader (--slow S --allow-other): a process reading a file
 *     once the request has reached deadfs waits for the answer even after
 *     SIGKILL (the kernel waits out a request already in userspace), so it
 *     cannot be stopped for S seconds, or until deadfs is killed.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double slow_seconds;
static off_t file_size = 64;
static const char pattern[] = "deadfs test data\n";

static int is_file(const char *path)
{
	return !strcmp(path, "/file") || !strcmp(path, "/dir/file");
}

static int is_dir(const char *path)
{
	return !strcmp(path, "/") || !strcmp(path, "/dir");
}

static void *dfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->kernel_cache = 0;
	cfg->direct_io = 1;
	return NULL;
}

static int dfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof *st);
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_mtim.tv_sec = 1000000000;
	st->st_mtim.tv_nsec = 123456789;
	if (slow_seconds > 0)
		clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
	if (is_dir(path)) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (is_file(path)) {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = file_size;
		st->st_blocks = (file_size + 511) / 512;
	} else {
		return -ENOENT;
	}
	return 0;
}

static int dfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (!is_dir(path))
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (!strcmp(path, "/"))
		filler(buf, "dir", NULL, 0, 0);
	filler(buf, "file", NULL, 0, 0);
	return 0;
}

static int dfs_open(const char *path, struct fuse_file_info *fi)
{
	if (!is_file(path))
		return is_dir(path) ? -EISDIR : -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	fi->direct_io = 1;
	return 0;
}

static int dfs_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	if (!is_file(path))
		return -ENOENT;
	if (off >= file_size)
		return 0;
	if (slow_seconds > 0) {
		struct timespec ts;
		ts.tv_sec = (time_t)slow_seconds;
		ts.tv_nsec = (long)((slow_seconds - (double)ts.tv_sec) * 1e9);
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	if ((off_t)size > file_size - off)
		size = (size_t)(file_size - off);
	for (size_t i = 0; i < size; i++)
		buf[i] = pattern[(size_t)(off + (off_t)i) % (sizeof pattern - 1)];
	return (int)size;
}

static const struct fuse_operations ops = {
	.init = dfs_init,
	.getattr = dfs_getattr,
	.readdir = dfs_readdir,
	.open = dfs_open,
	.read = dfs_read,
};

/* Writes the pid file under a temporary name and renames it into place. */
static int write_pidfile(const char *pidfile, pid_t pid)
{
	char tmp[4096];
	FILE *pf;

	snprintf(tmp, sizeof tmp, "%s.tmp", pidfile);
	pf = fopen(tmp, "w");
	if (!pf)
		return -1;
	if (fprintf(pf, "%ld\n", (long)pid) < 0) {
		fclose(pf);
		return -1;
	}
	if (fclose(pf) != 0 || rename(tmp, pidfile) != 0)
		return -1;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: deadfs [-f] [--slow SECONDS] [--size BYTES] [--allow-other] MOUNTPOINT "
			"PIDFILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	const char *mnt = NULL, *pidfile = NULL;
	struct fuse *f;
	pid_t pid;
	int i, foreground = 0, allow_other = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f"))
			foreground = 1;
		else if (!strcmp(argv[i], "--slow") && i + 1 < argc)
			slow_seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			file_size = (off_t)strtoll(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--allow-other"))
			allow_other = 1;
		else if (argv[i][0] == '-')
			usage();
		else if (!mnt)
			mnt = argv[i];
		else if (!pidfile)
			pidfile = argv[i];
		else
			usage();
	}
	if (!mnt || !pidfile || file_size < 0)
		usage();

	if (fuse_opt_add_arg(&args, argv[0]) || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, allow_other ? "fsname=deadfs,subtype=deadfs,allow_other"
						: "fsname=deadfs,subtype=deadfs")) {
		fprintf(stderr, "deadfs: out of memory\n");
		return 1;
	}
	f = fuse_new(&args, &ops, sizeof ops, NULL);
	if (!f) {
		fprintf(stderr, "deadfs: fuse_new failed\n");
		return 1;
	}
	if (fuse_mount(f, mnt) != 0) {
		fprintf(stderr, "deadfs: cannot mount %s\n", mnt);
		fuse_destroy(f);
		return 1;
	}

	pid = foreground ? 0 : fork();
	if (foreground) {
		if (write_pidfile(pidfile, getpid()) < 0) {
			perror("deadfs: pid file");
			fuse_unmount(f);
			return 1;
		}
	} else if (pid < 0) {
		perror("deadfs: fork");
		fuse_unmount(f);
		return 1;
	}
	if (pid > 0) {
		/* parent: publish the server's pid, then leave the mount to it */
		if (write_pidfile(pidfile, pid) < 0) {
			perror("deadfs: pid file");
			kill(pid, SIGKILL);
			_exit(1);
		}
		printf("%ld\n", (long)pid);
		fflush(stdout);
		_exit(0);
	}

	/* child (or -f): serve until unmounted or killed */
	if (!foreground)
		setsid();
	if (chdir("/") != 0)
		_exit(1);
	if (!foreground) {
		int fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
	}
	i = fuse_loop(f);
	fuse_unmount(f);
	fuse_destroy(f);
	fuse_opt_free_args(&args);
	return i ? 1 : 0;
}
