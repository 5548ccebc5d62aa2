/*
 * backend_local.c - the store backend for a directory on a POSIX
 * filesystem (local disk, or a FUSE-mounted GlusterFS volume).
 *
 * Every path is resolved relative to an open directory descriptor of the
 * store root with the *at() calls, so a store moved or renamed while open
 * stays consistent.  Writes are buffered by the caller; this layer does no
 * caching.
 */
#define _GNU_SOURCE
#include "backend.h"
#include "../util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct local_be {
	struct ps_backend base;
	int root_fd;          /* O_DIRECTORY descriptor of the store root */
};

struct ps_bfile {
	int fd;
	char *path;           /* relative path, for messages */
	struct local_be *be;
	uint64_t written;     /* bytes written through l_write */
	uint64_t kicked;      /* ... of which writeback was started for */
};

/* Files written through the backend are fsynced before they become visible.
 * Every WB_KICK bytes the kernel is asked to start writing back what came
 * so far (sync_file_range SYNC_FILE_RANGE_WRITE: it starts the I/O and does
 * not wait for it), so that the disk works while the next bytes are being
 * made, and the fsync at the end waits only for the tail. It changes no
 * guarantee: only the fsync makes anything durable. */
#define WB_KICK (4u << 20)

static struct local_be *L(struct ps_backend *be) { return (struct local_be *)be; }

static int mkfile(struct local_be *be, int fd, const char *path, struct ps_bfile **out,
		  struct ps_error *err)
{
	struct ps_bfile *f = ps_calloc(1, sizeof(*f));
	if (!f || !(f->path = ps_strdup(path))) {
		ps_free(f);
		close(fd);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	f->fd = fd;
	f->be = be;
	*out = f;
	return PS_OK;
}

static int l_open_read(struct ps_backend *be, const char *path, struct ps_bfile **out,
		       struct ps_error *err)
{
	int fd = openat(L(be)->root_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "'%s' does not exist in store '%s'", path,
				      be->location);
		return ps_err_sys(err, "cannot open '%s' in store '%s'", path, be->location);
	}
	return mkfile(L(be), fd, path, out, err);
}

static int l_create_excl(struct ps_backend *be, const char *path, struct ps_bfile **out,
			 struct ps_error *err)
{
	int fd = openat(L(be)->root_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			0644);
	if (fd < 0) {
		if (errno == EEXIST)
			return ps_err(err, PS_EEXISTS, "'%s' exists in store", path);
		return ps_err_sys(err, "cannot create '%s' in store '%s'", path, be->location);
	}
	return mkfile(L(be), fd, path, out, err);
}

static int l_pread(struct ps_bfile *f, void *buf, size_t n, uint64_t off, size_t *got,
		   struct ps_error *err)
{
	ssize_t r = ps_pread_all(f->fd, buf, n, off);
	if (r < 0)
		return ps_err_sys(err, "cannot read '%s'", f->path);
	*got = (size_t)r;
	return PS_OK;
}

static int l_write(struct ps_bfile *f, const void *buf, size_t n, struct ps_error *err)
{
	if (ps_write_all(f->fd, buf, n))
		return ps_err_sys(err, "cannot write '%s'", f->path);
	f->written += n;
#ifdef SYNC_FILE_RANGE_WRITE
	if (f->written - f->kicked >= WB_KICK) {
		/* advice: a failure here shows again at the fsync */
		(void)sync_file_range(f->fd, (off_t)f->kicked, (off_t)(f->written - f->kicked),
				      SYNC_FILE_RANGE_WRITE);
		f->kicked = f->written;
	}
#endif
	return PS_OK;
}

static void l_writeback(struct ps_bfile *f)
{
#ifdef SYNC_FILE_RANGE_WRITE
	(void)sync_file_range(f->fd, 0, 0, SYNC_FILE_RANGE_WRITE);   /* advice only */
#else
	(void)f;
#endif
}

static int l_fsync(struct ps_bfile *f, struct ps_error *err)
{
	if (fsync(f->fd))
		return ps_err_sys(err, "cannot fsync '%s'", f->path);
	return PS_OK;
}

static int l_fstat(struct ps_bfile *f, struct ps_bstat *st, struct ps_error *err)
{
	struct stat s;
	if (fstat(f->fd, &s))
		return ps_err_sys(err, "cannot stat '%s'", f->path);
	st->size = (uint64_t)s.st_size;
	st->mtime_ns = (int64_t)s.st_mtim.tv_sec * 1000000000LL + s.st_mtim.tv_nsec;
	st->is_dir = S_ISDIR(s.st_mode);
	return PS_OK;
}

static void l_close(struct ps_bfile *f)
{
	if (!f)
		return;
	close(f->fd);
	ps_free(f->path);
	ps_free(f);
}

static int l_stat(struct ps_backend *be, const char *path, struct ps_bstat *st,
		  struct ps_error *err)
{
	struct stat s;
	if (fstatat(L(be)->root_fd, path, &s, AT_SYMLINK_NOFOLLOW)) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "'%s' does not exist in store", path);
		return ps_err_sys(err, "cannot stat '%s' in store", path);
	}
	st->size = (uint64_t)s.st_size;
	st->mtime_ns = (int64_t)s.st_mtim.tv_sec * 1000000000LL + s.st_mtim.tv_nsec;
	st->is_dir = S_ISDIR(s.st_mode);
	return PS_OK;
}

static void parent_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(buf, len, ".");
	else
		snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

static int l_fsync_dir(struct ps_backend *be, const char *path, struct ps_error *err)
{
	int fd = openat(L(be)->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = PS_OK;
	if (fd < 0)
		return ps_err_sys(err, "cannot open directory '%s' in store", path);
	if (fsync(fd) && errno != EINVAL)
		rc = ps_err_sys(err, "cannot fsync directory '%s' in store", path);
	close(fd);
	return rc;
}

static int l_rename(struct ps_backend *be, const char *from, const char *to,
		    struct ps_error *err)
{
	char dir[PATH_MAX];
	if (renameat(L(be)->root_fd, from, L(be)->root_fd, to))
		return ps_err_sys(err, "cannot rename '%s' to '%s' in store", from, to);
	parent_of(to, dir, sizeof(dir));
	return l_fsync_dir(be, dir, err);
}

static int l_link(struct ps_backend *be, const char *from, const char *to,
		  struct ps_error *err)
{
	char dir[PATH_MAX];
	if (linkat(L(be)->root_fd, from, L(be)->root_fd, to, 0)) {
		if (errno == EEXIST)
			return ps_err(err, PS_EEXISTS, "'%s' exists in store", to);
		return ps_err_sys(err, "cannot link '%s' in store", to);
	}
	parent_of(to, dir, sizeof(dir));
	return l_fsync_dir(be, dir, err);
}

static int l_rename_nosync(struct ps_backend *be, const char *from, const char *to,
			   struct ps_error *err)
{
	if (renameat(L(be)->root_fd, from, L(be)->root_fd, to))
		return ps_err_sys(err, "cannot rename '%s' to '%s' in store", from, to);
	return PS_OK;
}

static int l_link_nosync(struct ps_backend *be, const char *from, const char *to,
			 struct ps_error *err)
{
	if (linkat(L(be)->root_fd, from, L(be)->root_fd, to, 0)) {
		if (errno == EEXIST)
			return ps_err(err, PS_EEXISTS, "'%s' exists in store", to);
		return ps_err_sys(err, "cannot link '%s' in store", to);
	}
	return PS_OK;
}

static int l_unlink(struct ps_backend *be, const char *path, struct ps_error *err)
{
	if (unlinkat(L(be)->root_fd, path, 0)) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "'%s' does not exist in store", path);
		return ps_err_sys(err, "cannot remove '%s' from store", path);
	}
	return PS_OK;
}

static int l_mkdir(struct ps_backend *be, const char *path, struct ps_error *err)
{
	if (mkdirat(L(be)->root_fd, path, 0755) && errno != EEXIST)
		return ps_err_sys(err, "cannot create directory '%s' in store", path);
	return PS_OK;
}

static int l_rmdir(struct ps_backend *be, const char *path, struct ps_error *err)
{
	if (unlinkat(L(be)->root_fd, path, AT_REMOVEDIR) && errno != ENOENT)
		return ps_err_sys(err, "cannot remove directory '%s' from store", path);
	return PS_OK;
}

static int l_list(struct ps_backend *be, const char *dir, ps_list_fn fn, void *ctx,
		  struct ps_error *err)
{
	int fd = openat(L(be)->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int rc = 0;
	if (fd < 0) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "directory '%s' does not exist in store", dir);
		return ps_err_sys(err, "cannot open directory '%s' in store", dir);
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return ps_err_sys(err, "cannot read directory '%s' in store", dir);
	}
	errno = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		rc = fn(ctx, de->d_name);
		if (rc)
			break;
		errno = 0;
	}
	if (!de && errno)
		rc = ps_err_sys(err, "cannot read directory '%s' in store", dir);
	closedir(d);
	return rc;
}

static void l_free(struct ps_backend *be)
{
	if (!be)
		return;
	close(L(be)->root_fd);
	ps_free(be->location);
	ps_free(be);
}

static const struct ps_backend_ops local_ops = {
	"local", l_open_read, l_create_excl, l_pread, l_write, l_fsync, l_fstat, l_close,
	l_stat, l_rename, l_link, l_unlink, l_mkdir, l_rmdir, l_fsync_dir, l_list, l_free,
	l_rename_nosync, l_link_nosync, l_writeback,
};

int ps_backend_local_open(struct ps_backend **out, const char *path, struct ps_error *err)
{
	struct local_be *be;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "store '%s' does not exist", path);
		return ps_err_sys(err, "cannot open store '%s'", path);
	}
	be = ps_calloc(1, sizeof(*be));
	if (!be || !(be->base.location = ps_strdup(path))) {
		ps_free(be);
		close(fd);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	be->base.ops = &local_ops;
	be->root_fd = fd;
	*out = &be->base;
	return PS_OK;
}

/* ------------------------------------------------------------ helpers */

int ps_be_read_all(struct ps_backend *be, const char *path, size_t max, void **out,
		   size_t *len, struct ps_error *err)
{
	struct ps_bfile *f = NULL;
	struct ps_bstat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int rc = be->ops->open_read(be, path, &f, err);
	if (rc)
		return rc;
	rc = be->ops->fstat(f, &st, err);
	if (rc)
		goto done;
	if (st.size > max) {
		rc = ps_err(err, PS_ECORRUPT, "'%s' in store is too large (%llu bytes)", path,
			    (unsigned long long)st.size);
		goto done;
	}
	buf = ps_malloc((size_t)st.size + 1);
	if (!buf) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	rc = be->ops->pread(f, buf, (size_t)st.size, 0, &got, err);
	if (rc)
		goto done;
	buf[got] = 0;
	*out = buf;
	*len = got;
	buf = NULL;
done:
	ps_free(buf);
	be->ops->close(f);
	return rc;
}

void ps_be_tmp_name(const char *dir, char *buf, size_t len)
{
	uint32_t rnd = 0;
	ps_random_bytes(&rnd, sizeof(rnd));
	snprintf(buf, len, "%s/.tmp-%s-%s-%d-%08x", dir, ps_hostname(), ps_boot_id(),
		 (int)getpid(), rnd);
}

int ps_be_rename_nosync(struct ps_backend *be, const char *from, const char *to,
			struct ps_error *err)
{
	if (be->ops->rename_nosync)
		return be->ops->rename_nosync(be, from, to, err);
	return be->ops->rename(be, from, to, err);
}

int ps_be_link_nosync(struct ps_backend *be, const char *from, const char *to,
		      struct ps_error *err)
{
	if (be->ops->link_nosync)
		return be->ops->link_nosync(be, from, to, err);
	return be->ops->link(be, from, to, err);
}

/* data into path under a temporary name, renamed into place, nothing
 * fsynced (ps_be_write_atomic_nosync); the durable kind is
 * ps_be_write_atomic_many's */
static int write_atomic_nosync(struct ps_backend *be, const char *path, const void *data,
			       size_t len, struct ps_error *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	struct ps_bfile *f = NULL;
	int rc;
	parent_of(path, dir, sizeof(dir));
	ps_be_tmp_name(dir, tmp, sizeof(tmp));
	rc = be->ops->create_excl(be, tmp, &f, err);
	if (rc)
		return rc;
	rc = be->ops->write(f, data, len, err);
	be->ops->close(f);
	if (!rc)
		rc = ps_be_rename_nosync(be, tmp, path, err);
	if (rc)
		be->ops->unlink(be, tmp, NULL);
	return rc;
}

int ps_be_write_atomic_many(struct ps_backend *be, size_t n, const char *const *paths,
			    const void *const *data, const size_t *lens, int *rc,
			    struct ps_error *err)
{
	struct ps_bfile **f;
	char (*tmp)[PATH_MAX], (*dir)[PATH_MAX];
	struct ps_error e1;
	int first = PS_OK;
	if (!n)
		return PS_OK;
	f = ps_calloc(n, sizeof(*f));
	tmp = ps_malloc(n * sizeof(*tmp));
	dir = ps_malloc(n * sizeof(*dir));
	if (!f || !tmp || !dir) {
		ps_free(f);
		ps_free(tmp);
		ps_free(dir);
		for (size_t i = 0; i < n; i++)
			rc[i] = PS_ERROR;
		return ps_err(err, PS_ERROR, "out of memory");
	}
#define FAIL(i, code)                                   \
	do {                                            \
		rc[i] = (code);                         \
		if (!first) {                           \
			first = rc[i];                  \
			if (err)                        \
				*err = e1;              \
		}                                       \
	} while (0)
	/* 1. every file under its temp name */
	for (size_t i = 0; i < n; i++) {
		ps_error_clear(&e1);
		parent_of(paths[i], dir[i], sizeof(dir[i]));
		ps_be_tmp_name(dir[i], tmp[i], sizeof(tmp[i]));
		rc[i] = be->ops->create_excl(be, tmp[i], &f[i], &e1);
		if (rc[i]) {
			f[i] = NULL;
			FAIL(i, rc[i]);
			continue;
		}
		if ((rc[i] = be->ops->write(f[i], data[i], lens[i], &e1)))
			FAIL(i, rc[i]);
	}
	/* 2. all durable: their writeback started together, so that the first
	 * fsync's journal commit carries the group */
	for (size_t i = 0; n > 1 && i < n && be->ops->writeback; i++)
		if (f[i] && !rc[i])
			be->ops->writeback(f[i]);
	for (size_t i = 0; i < n; i++) {
		if (!f[i])
			continue;
		ps_error_clear(&e1);
		if (!rc[i] && (rc[i] = be->ops->fsync(f[i], &e1)))
			FAIL(i, rc[i]);
		be->ops->close(f[i]);
		f[i] = NULL;
	}
	/* 3. visible */
	for (size_t i = 0; i < n; i++) {
		ps_error_clear(&e1);
		if (!rc[i] && (rc[i] = ps_be_rename_nosync(be, tmp[i], paths[i], &e1)))
			FAIL(i, rc[i]);
		if (rc[i])
			be->ops->unlink(be, tmp[i], NULL);
	}
	/* 4. the renames durable: each directory once */
	for (size_t i = 0; i < n; i++) {
		int dr;
		int seen = 0;
		if (rc[i])
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = !rc[k] && !strcmp(dir[k], dir[i]);
		if (seen)
			continue;
		ps_error_clear(&e1);
		dr = be->ops->fsync_dir(be, dir[i], &e1);
		if (!dr)
			continue;
		/* every file renamed into that directory is in doubt */
		for (size_t k = i; k < n; k++)
			if (!rc[k] && !strcmp(dir[k], dir[i]))
				FAIL(k, dr);
	}
#undef FAIL
	ps_free(f);
	ps_free(tmp);
	ps_free(dir);
	return first;
}

int ps_be_write_atomic_nosync(struct ps_backend *be, const char *path, const void *data,
			      size_t len, struct ps_error *err)
{
	return write_atomic_nosync(be, path, data, len, err);
}

int ps_be_write_atomic(struct ps_backend *be, const char *path, const void *data,
		       size_t len, struct ps_error *err)
{
	int rc1;
	return ps_be_write_atomic_many(be, 1, &path, &data, &len, &rc1, err);
}
