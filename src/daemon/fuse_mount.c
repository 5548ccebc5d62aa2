/*
 * fuse_mount.c - serves a ps_snapfs through libfuse's low-level API: the
 * mount of `projstore mount`. Only the public API (projstore.h) is used; all
 * file-system logic (inode numbers, caches, read-ahead) is in the library
 * (src/lib/snap/snap_fs.c), this file translates requests and errors.
 *
 * How it works:
 *   - Inode numbers are the library's: FUSE node ids and st_ino are equal,
 *     and hardlinked entries are one node. lookup and readdirplus take a
 *     reference in the library, forget drops it.
 *   - Everything inside a snapshot is immutable, so entries and attributes
 *     are cached by the kernel for a day, opened files keep their page cache
 *     (keep_cache) and directory listings are cached (cache_readdir). The top
 *     directory and "latest" change when a save adds a snapshot: their
 *     attributes live one second, the top directory's listing is never
 *     cached, and a failed lookup there is not cached either, so a new
 *     snapshot shows up without remounting.
 *   - The mount is read-only (ro), checks permissions in the kernel
 *     (default_permissions: the modes shown are enforced) and, being a
 *     FUSE mount, ignores setuid bits and device nodes (nosuid, nodev).
 *   - Readdir positions: 0 ".", 1 "..", then the library's positions + 2.
 *     In the top directory, readdirplus returns the snapshot directories
 *     without attributes (node id 0: the kernel looks them up when used).
 *
 * What must stay true: every request is answered exactly once; a reference
 * is taken for each entry that readdirplus actually puts in the reply and
 * for nothing else; library errors become errno values (damage = EIO).
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 312
#include "fuse_mount.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMMUTABLE_TIMEOUT 86400.0
#define MUTABLE_TIMEOUT 1.0
#define DEFAULT_THREADS 8

struct mount_ctx {
	struct ps_snapfs *fs;
	int verbose;
};

static struct mount_ctx *ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int fail(struct ps_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct ps_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = code;
		err->sys_errno = 0;
	}
	return code;
}

/* Maps a library error to an errno; damage is logged (once per request). */
static int to_errno(fuse_req_t req, int rc, const struct ps_error *err)
{
	struct mount_ctx *m = ctx_of(req);
	switch (rc) {
	case PS_OK: return 0;
	case PS_ENOTFOUND: return ENOENT;
	case PS_EINVAL: return EINVAL;
	case PS_ECORRUPT:
	case PS_EHOSTILE:
		if (m->verbose)
			fprintf(stderr, "projstore mount: %s\n", err->msg);
		return EIO;
	default:
		if (m->verbose)
			fprintf(stderr, "projstore mount: %s\n", err->msg);
		return err->sys_errno > 0 ? err->sys_errno : EIO;
	}
}

static mode_t type_bits(int type)
{
	switch (type) {
	case PS_T_DIR: return S_IFDIR;
	case PS_T_SYMLINK: return S_IFLNK;
	case PS_T_FIFO: return S_IFIFO;
	case PS_T_CHR: return S_IFCHR;
	case PS_T_BLK: return S_IFBLK;
	case PS_T_SOCK: return S_IFSOCK;
	default: return S_IFREG;   /* files, and entries unreadable at save time */
	}
}

static void to_stat(const struct ps_snapfs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)a->ino;
	st->st_mode = type_bits(a->type) | (a->mode & 07777);
	st->st_nlink = a->nlink ? a->nlink : 1;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = 65536;
	st->st_rdev = (dev_t)a->rdev;
	st->st_mtim.tv_sec = a->mtime_sec;
	st->st_mtim.tv_nsec = a->mtime_nsec;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

static double timeout_of(const struct ps_snapfs_attr *a)
{
	return a->immutable ? IMMUTABLE_TIMEOUT : MUTABLE_TIMEOUT;
}

static void fill_entry(const struct ps_snapfs_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = 1;
	to_stat(a, &e->attr);
	e->attr_timeout = timeout_of(a);
	e->entry_timeout = timeout_of(a);
}

/* ------------------------------------------------------------ requests */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	conn->want &= ~(unsigned)FUSE_CAP_CACHE_SYMLINKS;   /* "latest" changes */
	/* as much kernel read-ahead as it offers (libfuse never raises it);
	 * the library fetches further ahead on its own */
	conn->max_readahead = UINT_MAX;
	conn->time_gran = 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ps_snapfs_attr a;
	struct fuse_entry_param e;
	struct ps_error err;
	int rc;
	ps_error_clear(&err);
	rc = ps_snapfs_lookup(ctx_of(req)->fs, parent, name, &a, &err);
	if (rc) {
		fuse_reply_err(req, to_errno(req, rc, &err));
		return;
	}
	fill_entry(&a, &e);
	if (fuse_reply_entry(req, &e))
		ps_snapfs_forget(ctx_of(req)->fs, a.ino, 1);   /* the kernel did not get it */
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	ps_snapfs_forget(ctx_of(req)->fs, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		ps_snapfs_forget(ctx_of(req)->fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ps_snapfs_attr a;
	struct ps_error err;
	struct stat st;
	int rc;
	(void)fi;
	ps_error_clear(&err);
	rc = ps_snapfs_getattr(ctx_of(req)->fs, ino, &a, &err);
	if (rc) {
		fuse_reply_err(req, to_errno(req, rc, &err));
		return;
	}
	to_stat(&a, &st);
	fuse_reply_attr(req, &st, timeout_of(&a));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	struct ps_error err;
	size_t len = 0;
	int rc;
	ps_error_clear(&err);
	rc = ps_snapfs_readlink(ctx_of(req)->fs, ino, buf, PATH_MAX, &len, &err);
	if (rc) {
		fuse_reply_err(req, rc == PS_EINVAL ? EINVAL : to_errno(req, rc, &err));
		return;
	}
	if (len > PATH_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	buf[len] = 0;
	fuse_reply_readlink(req, buf);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ps_snapfs_attr a;
	struct ps_error err;
	int rc;
	ps_error_clear(&err);
	rc = ps_snapfs_getattr(ctx_of(req)->fs, ino, &a, &err);
	if (rc) {
		fuse_reply_err(req, to_errno(req, rc, &err));
		return;
	}
	if (a.type != PS_T_DIR) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (a.immutable) {
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	fuse_reply_open(req, fi);
}

struct dir_buf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	int plus;
};

static int dir_add(struct dir_buf *d, const char *name, const struct ps_snapfs_attr *a, off_t next)
{
	size_t need;
	if (d->plus) {
		struct fuse_entry_param e;
		fill_entry(a, &e);
		if (!a->nlink)
			e.ino = 0;   /* no attributes: the kernel will look it up */
		need = fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, name, &e, next);
	} else {
		struct stat st;
		memset(&st, 0, sizeof(st));
		st.st_ino = (ino_t)a->ino;
		st.st_mode = type_bits(a->type);
		need = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, &st, next);
	}
	if (need > d->size - d->used)
		return 1;   /* full: the entry was not added */
	d->used += need;
	return 0;
}

static int dir_entry(void *vctx, const char *name, size_t name_len,
		     const struct ps_snapfs_attr *a, uint64_t next)
{
	struct dir_buf *d = vctx;
	char nb[NAME_MAX + 1];
	if (name_len > NAME_MAX)
		return 0;   /* cannot be: tree names are at most 255 bytes */
	memcpy(nb, name, name_len);
	nb[name_len] = 0;
	return dir_add(d, nb, a, (off_t)(next + 2));
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct mount_ctx *m = ctx_of(req);
	struct dir_buf d = { req, NULL, size, 0, plus };
	struct ps_error err;
	int rc = PS_OK;
	d.buf = malloc(size ? size : 1);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ps_error_clear(&err);
	if (off < 2) {
		/* "." and "..": no references are taken for them, even with plus */
		struct ps_snapfs_attr a;
		memset(&a, 0, sizeof(a));
		a.ino = ino;
		a.type = PS_T_DIR;
		a.nlink = 0;
		if (off == 0 && dir_add(&d, ".", &a, 1))
			goto reply;
		if (dir_add(&d, "..", &a, 2))
			goto reply;
		off = 2;
	}
	rc = ps_snapfs_readdir(m->fs, ino, (uint64_t)off - 2, plus, dir_entry, &d, &err);
reply:
	if (rc && !d.used)
		fuse_reply_err(req, to_errno(req, rc, &err));
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 1);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ps_snapfs_file *f;
	struct ps_error err;
	int rc;
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	ps_error_clear(&err);
	rc = ps_snapfs_file_open(ctx_of(req)->fs, ino, &f, &err);
	if (rc) {
		fuse_reply_err(req, rc == PS_EINVAL ? EISDIR : to_errno(req, rc, &err));
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->keep_cache = 1;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi))
		ps_snapfs_file_close(f);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct ps_snapfs_file *f = (struct ps_snapfs_file *)(uintptr_t)fi->fh;
	struct ps_error err;
	size_t got = 0;
	char *buf;
	int rc;
	(void)ino;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ps_error_clear(&err);
	rc = ps_snapfs_file_read(f, buf, size, (uint64_t)off, &got, &err);
	if (rc)
		fuse_reply_err(req, to_errno(req, rc, &err));
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	ps_snapfs_file_close((struct ps_snapfs_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct ps_snapfs_file *f = (struct ps_snapfs_file *)(uintptr_t)fi->fh;
	struct ps_error err;
	uint64_t out;
	int rc;
	(void)ino;
	if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ps_error_clear(&err);
	rc = ps_snapfs_file_seek(f, (uint64_t)off, whence == SEEK_HOLE, &out, &err);
	if (rc)
		fuse_reply_err(req, rc == PS_ENOTFOUND ? ENXIO : to_errno(req, rc, &err));
	else
		fuse_reply_lseek(req, (off_t)out);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct ps_error err;
	char *buf = NULL;
	size_t len = 0;
	int rc;
	ps_error_clear(&err);
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = ps_snapfs_listxattr(ctx_of(req)->fs, ino, buf, size, &len, &err);
	if (rc)
		fuse_reply_err(req, to_errno(req, rc, &err));
	else if (!size)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct ps_error err;
	char *buf = NULL;
	size_t len = 0;
	int rc;
	ps_error_clear(&err);
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = ps_snapfs_getxattr(ctx_of(req)->fs, ino, name, buf, size, &len, &err);
	if (rc == PS_ENOTFOUND)
		fuse_reply_err(req, ENODATA);
	else if (rc)
		fuse_reply_err(req, to_errno(req, rc, &err));
	else if (!size)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	(void)ino;
	memset(&st, 0, sizeof(st));
	st.f_bsize = 65536;
	st.f_frsize = 512;
	st.f_namemax = 255;
	st.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &st);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.lseek = op_lseek,
	.listxattr = op_listxattr,
	.getxattr = op_getxattr,
	.statfs = op_statfs,
};

/* ------------------------------------------------------------ serving */

int ps_fuse_serve(struct ps_snapfs *fs, const struct ps_fuse_opts *o, struct ps_error *err)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *cfg = NULL;
	struct mount_ctx m = { fs, o->verbose };
	char opts[512];
	int rc = PS_OK, handlers = 0, mounted = 0;

	/* Chunks (up to 1 MiB) and read buffers come and go all the time: keep
	 * them on the heap and the heap's pages mapped, instead of an mmap, page
	 * faults and munmap for each (which costs more than the data's checksum). */
	mallopt(M_MMAP_THRESHOLD, 8 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_ARENA_MAX, 4);
	snprintf(opts, sizeof(opts), "ro,default_permissions,subtype=projstore,fsname=%s%s",
		 o->fsname ? o->fsname : "projstore", o->allow_other ? ",allow_other" : "");
	if (fuse_opt_add_arg(&args, "projstore") || (o->debug && fuse_opt_add_arg(&args, "-d")) ||
	    fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, opts)) {
		rc = fail(err, PS_ERROR, "out of memory");
		goto done;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), &m);
	if (!se) {
		rc = fail(err, PS_ERROR, "cannot create the FUSE session (see the message above)");
		goto done;
	}
	if (fuse_set_signal_handlers(se)) {
		rc = fail(err, PS_ERROR, "cannot install signal handlers");
		goto done;
	}
	handlers = 1;
	if (fuse_session_mount(se, o->mountpoint)) {
		rc = fail(err, PS_ERROR, "cannot mount on '%s' (is /dev/fuse usable, fuse3 installed, "
					 "the directory empty and not mounted?)", o->mountpoint);
		goto done;
	}
	mounted = 1;
	if (fuse_daemonize(o->foreground)) {
		rc = fail(err, PS_ERROR, "cannot go into the background");
		goto done;
	}
	cfg = fuse_loop_cfg_create();
	if (!cfg) {
		rc = fail(err, PS_ERROR, "out of memory");
		goto done;
	}
	fuse_loop_cfg_set_max_threads(cfg, (unsigned)(o->threads > 0 ? o->threads : DEFAULT_THREADS));
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	if (fuse_session_loop_mt(se, cfg) < 0)
		rc = fail(err, PS_ERROR, "the FUSE session failed");
done:
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return rc;
}
