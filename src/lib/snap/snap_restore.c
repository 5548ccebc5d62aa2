/*
 * snap_restore.c - restore a snapshot (or some paths of it) to a directory.
 *
 * Safety rules, all enforced here:
 *   - Nothing outside TARGET is written: every file is created with *at()
 *     calls relative to a directory descriptor opened with O_NOFOLLOW, with
 *     O_EXCL, so an existing symlink is never followed.  Names come from tree
 *     objects whose decoder rejects "", ".", "..", '/' and NUL (PS_EHOSTILE).
 *   - A full restore writes into a temporary directory beside TARGET and
 *     renames it into place (RENAME_NOREPLACE) only when complete; into an
 *     existing empty directory it writes in place and empties it again on
 *     failure.  Data that fails verification aborts the restore: a file is
 *     never written with wrong bytes.
 *   - PATH restores write each entry under a temporary name in its parent and
 *     rename it over what is there (an existing entry is moved aside first and
 *     removed after), so each path is replaced whole or not at all.
 *
 * Work is split as in save: the calling thread creates directories, symlinks,
 * special files, hardlinks and empty regular files; a worker pool fills the
 * regular files (fetch, verify, decompress, pwrite; holes stay holes through
 * ftruncate) and sets their metadata.  A directory's own metadata (owner,
 * mode, xattrs, times) is applied when its last entry is done, so a read-only
 * directory is made read-only only after everything inside it exists.
 */
#define _GNU_SOURCE
#include "snap_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_OPEN_DIRS 256

struct rnode {
	struct rnode *parent;
	int dfd;
	char *path;                 /* relative to the restore root */
	struct ps_tree tree;        /* entries to create */
	long self_idx;              /* this dir's entry in parent->tree, -1 = root */
	struct ps_tentry meta;      /* metadata to apply (copied; xattrs owned) */
	uint8_t *meta_xattrs;
	int pending;                /* atomic */
	int apply_meta;
	int depth;
	int sgid;                   /* new entries inherit this directory's group */
	gid_t gid;                  /* its group (when sgid) */
	gid_t self_gid;             /* the group this directory was created with */
};

struct rjob {
	struct rnode *d;
	size_t idx;
};

struct link_ent {
	uint64_t group;
	char *path;                 /* relative path of the first name */
};

struct restore_ctx {
	struct ps_store *s;
	const struct ps_restore_opts *o;
	int root_fd;
	int is_root_user;
	uid_t euid;                 /* owner of what we create */
	gid_t egid;
	struct ps_fcache *fc;
	struct link_ent *links;
	size_t nlinks, links_cap;

	pthread_mutex_t lock;       /* protects below */
	pthread_cond_t cond;
	struct rjob *q;
	size_t qhead, qlen, qcap;
	int stop, failed, open_dirs, root_done;
	struct ps_error err;
	uint64_t files_done, files_total, bytes_done, bytes_total;
};

static void rfail(struct restore_ctx *c, const struct ps_error *e)
{
	pthread_mutex_lock(&c->lock);
	if (!c->failed) {
		c->failed = 1;
		c->err = *e;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static int rfailed(struct restore_ctx *c) { return __atomic_load_n(&c->failed, __ATOMIC_RELAXED); }

static void rfail_sys(struct restore_ctx *c, const char *what, const char *path)
{
	struct ps_error e;
	ps_err_sys(&e, "cannot %s '%s'", what, path[0] ? path : ".");
	rfail(c, &e);
}

static uint32_t map_uid(struct restore_ctx *c, uint32_t u) { return c->o->uid >= 0 ? (uint32_t)c->o->uid : u; }
static uint32_t map_gid(struct restore_ctx *c, uint32_t g) { return c->o->gid >= 0 ? (uint32_t)c->o->gid : g; }

/* Applies xattrs to an fd (fd >= 0) or a path (not following symlinks). */
static int apply_xattrs(const struct ps_tentry *e, int fd, const char *path)
{
	struct ps_xattr_it it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;
	ps_xattr_it_init(&it, e);
	while (ps_xattr_next(&it, &k, &kl, &v, &vl)) {
		char name[256];
		int r;
		if (kl >= sizeof(name))
			continue;
		memcpy(name, k, kl);
		name[kl] = 0;
		r = fd >= 0 ? fsetxattr(fd, name, v, vl, 0) : lsetxattr(path, name, v, vl, 0);
		if (r && errno != ENOTSUP && errno != EPERM)
			return -1;
	}
	return 0;
}

/* The group a new entry of directory d gets from the kernel. */
static gid_t new_gid(const struct restore_ctx *c, const struct rnode *d)
{
	return d->sgid ? d->gid : c->egid;
}

/* Owner, mode, xattrs, times of an open file or directory; have_gid is the
 * group it was created with (chown is skipped when nothing changes). */
static int apply_meta_fd(struct restore_ctx *c, int fd, const struct ps_tentry *e, gid_t have_gid)
{
	struct timespec ts[2];
	uid_t u = map_uid(c, e->uid);
	gid_t g = map_gid(c, e->gid);
	/* new files belong to us already: chown only when that is not what
	 * the snapshot says */
	if ((u != c->euid || g != have_gid) && fchown(fd, u, g) && (c->is_root_user || errno != EPERM))
		return -1;
	if (fchmod(fd, e->mode & 07777))
		return -1;
	if (apply_xattrs(e, fd, NULL))
		return -1;
	ts[0].tv_sec = e->mtime_sec;
	ts[0].tv_nsec = e->mtime_nsec;
	ts[1] = ts[0];
	return futimens(fd, ts);
}

/* ------------------------------------------------------------ dirs */

static void rnode_release(struct restore_ctx *c, struct rnode *d);

static void rnode_finish(struct restore_ctx *c, struct rnode *d)
{
	struct rnode *parent = d->parent;
	if (!rfailed(c) && d->apply_meta && apply_meta_fd(c, d->dfd, &d->meta, d->self_gid))
		rfail_sys(c, "set metadata of", d->path);
	if (d->dfd >= 0 && d->dfd != c->root_fd)
		close(d->dfd);
	ps_tree_release(&d->tree);
	ps_free(d->meta_xattrs);
	ps_free(d->path);
	pthread_mutex_lock(&c->lock);
	c->open_dirs--;
	if (!parent)
		c->root_done = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	ps_free(d);
	if (parent)
		rnode_release(c, parent);
}

static void rnode_release(struct restore_ctx *c, struct rnode *d)
{
	if (__atomic_sub_fetch(&d->pending, 1, __ATOMIC_ACQ_REL) == 0)
		rnode_finish(c, d);
}

/* ------------------------------------------------------------ files */

/* pwrite that retries short writes; a short write is followed by the error
 * that caused it (ENOSPC, EDQUOT, EIO). */
static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int write_file(struct restore_ctx *c, int fd, const struct ps_tentry *e, const char *rel)
{
	for (size_t k = 0; k < e->nextents && !rfailed(c); k++) {
		const struct ps_extent *x = &e->extents[k];
		uint8_t *data = NULL;
		size_t len = 0;
		struct ps_error err;
		int rc = ps_store_get(c->s, x->id, PS_OBJ_CHUNK, &data, &len, &err);
		if (!rc && len != x->len) {
			ps_free(data);
			rc = ps_err(&err, PS_ECORRUPT, "chunk length %zu does not match the tree (%u)", len,
				    x->len);
		}
		if (rc) {
			ps_err_prefix(&err, "'%s'", rel);
			rfail(c, &err);
			return -1;
		}
		if (pwrite_all(fd, data, len, x->off)) {
			ps_free(data);
			rfail_sys(c, "write", rel);
			return -1;
		}
		ps_free(data);
		__atomic_add_fetch(&c->bytes_done, len, __ATOMIC_RELAXED);
	}
	if (rfailed(c))
		return -1;
	if (e->nextents && e->extents[e->nextents - 1].off + e->extents[e->nextents - 1].len == e->size)
		return 0;   /* no trailing hole: the file already has its size */
	if (ftruncate(fd, (off_t)e->size)) {
		rfail_sys(c, "truncate", rel);
		return -1;
	}
	return 0;
}

static void fill_one(struct restore_ctx *c, struct rnode *d, size_t idx)
{
	const struct ps_tentry *e = &d->tree.ents[idx];
	char *rel = ps_path_join(d->path, e->name, e->name_len);
	char name[NAME_MAX + 1];
	int fd;
	memcpy(name, e->name, e->name_len);
	name[e->name_len] = 0;
	/* the walker created the first name of a hardlink group (so that the
	 * links can be made at once); every other file is created here */
	if (e->link_group)
		fd = openat(d->dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	else
		fd = openat(d->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rfail_sys(c, e->link_group ? "open" : "create", rel ? rel : name);
		goto done;
	}
	if (write_file(c, fd, e, rel ? rel : name))
		goto done;
	if (apply_meta_fd(c, fd, e, new_gid(c, d))) {
		rfail_sys(c, "set metadata of", rel ? rel : name);
		goto done;
	}
	if (c->fc && rel) {
		struct stat st;
		if (!fstat(fd, &st)) {
			struct ps_fcache_ent fe;
			memset(&fe, 0, sizeof(fe));
			fe.path = rel;
			fe.path_len = strlen(rel);
			fe.kind = PS_FC_FILE;
			fe.extents = e->extents;
			fe.nextents = e->nextents;
			fe.xattrs = (uint8_t *)e->xattrs;
			fe.xattrs_len = e->xattrs_len;
			ps_fcache_add(c->fc, &fe, &st);
		}
	}
done:
	if (fd >= 0)
		close(fd);
	ps_free(rel);
	__atomic_add_fetch(&c->files_done, 1, __ATOMIC_RELAXED);
	rnode_release(c, d);
}

static void *rworker(void *arg)
{
	struct restore_ctx *c = arg;
	for (;;) {
		struct rjob j;
		pthread_mutex_lock(&c->lock);
		while (!c->qlen && !c->stop)
			pthread_cond_wait(&c->cond, &c->lock);
		if (!c->qlen) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		j = c->q[c->qhead];
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
		pthread_mutex_unlock(&c->lock);
		if (rfailed(c)) {
			rnode_release(c, j.d);
			continue;
		}
		fill_one(c, j.d, j.idx);
	}
}

static int renqueue(struct restore_ctx *c, struct rnode *d, size_t idx)
{
	pthread_mutex_lock(&c->lock);
	if (c->qlen == c->qcap) {
		size_t cap = c->qcap ? c->qcap * 2 : 1024;
		struct rjob *nq = ps_malloc(cap * sizeof(*nq));
		if (!nq) {
			pthread_mutex_unlock(&c->lock);
			return -1;
		}
		for (size_t i = 0; i < c->qlen; i++)
			nq[i] = c->q[(c->qhead + i) % c->qcap];
		ps_free(c->q);
		c->q = nq;
		c->qcap = cap;
		c->qhead = 0;
	}
	c->q[(c->qhead + c->qlen) % c->qcap] = (struct rjob){ d, idx };
	c->qlen++;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* ------------------------------------------------------------ walk */

static const char *find_link(struct restore_ctx *c, uint64_t group)
{
	for (size_t i = 0; i < c->nlinks; i++)
		if (c->links[i].group == group)
			return c->links[i].path;
	return NULL;
}

static void add_link(struct restore_ctx *c, uint64_t group, const char *rel)
{
	if (c->nlinks == c->links_cap) {
		size_t cap = c->links_cap ? c->links_cap * 2 : 64;
		struct link_ent *v = ps_realloc(c->links, cap * sizeof(*v));
		if (!v)
			return;
		c->links = v;
		c->links_cap = cap;
	}
	c->links[c->nlinks].group = group;
	c->links[c->nlinks].path = ps_strdup(rel);
	if (c->links[c->nlinks].path)
		c->nlinks++;
}

static void rwalk(struct restore_ctx *c, struct rnode *d);

/* Creates one entry `name` in directory d from tree entry e. */
static void create_entry(struct restore_ctx *c, struct rnode *d, size_t idx, const char *name)
{
	const struct ps_tentry *e = &d->tree.ents[idx];
	char *rel = ps_path_join(d->path, e->name, e->name_len);
	struct timespec ts[2];
	char proc[64 + NAME_MAX];
	if (!rel) {
		struct ps_error err;
		ps_err(&err, PS_ERROR, "out of memory");
		rfail(c, &err);
		return;
	}
	ts[0].tv_sec = e->mtime_sec;
	ts[0].tv_nsec = e->mtime_nsec;
	ts[1] = ts[0];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", d->dfd, name);
	switch (e->type) {
	case PS_T_DIR: {
		struct rnode *sub;
		int fd;
		if (d->depth >= PS_MAX_DEPTH) {
			struct ps_error err;
			ps_err(&err, PS_ECORRUPT, "directory nesting deeper than %d levels ('%.60s...')",
			       PS_MAX_DEPTH, rel);
			rfail(c, &err);
			break;
		}
		if (mkdirat(d->dfd, name, 0700)) {
			rfail_sys(c, "create directory", rel);
			break;
		}
		fd = openat(d->dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rfail_sys(c, "open directory", rel);
			break;
		}
		sub = ps_calloc(1, sizeof(*sub));
		if (!sub) {
			close(fd);
			break;
		}
		/* bound the open directories by letting queued files drain first
		 * (ancestors stay open: deep trees hold one descriptor per level) */
		pthread_mutex_lock(&c->lock);
		while (c->open_dirs >= MAX_OPEN_DIRS && c->qlen && !c->failed)
			pthread_cond_wait(&c->cond, &c->lock);
		c->open_dirs++;
		pthread_mutex_unlock(&c->lock);
		sub->parent = d;
		sub->depth = d->depth + 1;
		/* mkdir in a setgid directory inherits its group and the bit */
		sub->self_gid = new_gid(c, d);
		sub->sgid = d->sgid;
		sub->gid = d->gid;
		sub->dfd = fd;
		sub->path = rel;
		rel = NULL;
		sub->pending = 1;
		sub->meta = *e;
		sub->meta_xattrs = e->xattrs_len ? ps_malloc(e->xattrs_len) : NULL;
		if (sub->meta_xattrs)
			memcpy(sub->meta_xattrs, e->xattrs, e->xattrs_len);
		sub->meta.xattrs = sub->meta_xattrs;
		sub->meta.name = NULL;
		sub->meta.extents = NULL;
		sub->apply_meta = 1;
		struct ps_error terr;
		if (ps_tree_load(c->s, e->subtree, &sub->tree, &terr)) {
			struct ps_error err = terr;
			ps_err_prefix(&err, "'%s'", sub->path);
			rfail(c, &err);
			sub->tree.n = 0;
		}
		__atomic_add_fetch(&d->pending, 1, __ATOMIC_ACQ_REL);
		rwalk(c, sub);
		break;
	}
	case PS_T_REG: {
		const char *first = e->link_group ? find_link(c, e->link_group) : NULL;
		int fd;
		if (first && !linkat(c->root_fd, first, d->dfd, name, 0)) {
			__atomic_add_fetch(&c->files_done, 1, __ATOMIC_RELAXED);
			break;
		}
		if (e->link_group) {
			fd = openat(d->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (fd < 0) {
				rfail_sys(c, "create", rel);
				break;
			}
			close(fd);
			if (!first)
				add_link(c, e->link_group, rel);
		}
		__atomic_add_fetch(&d->pending, 1, __ATOMIC_ACQ_REL);
		if (renqueue(c, d, idx)) {
			struct ps_error err;
			__atomic_sub_fetch(&d->pending, 1, __ATOMIC_ACQ_REL);
			ps_err(&err, PS_ERROR, "out of memory");
			rfail(c, &err);
		}
		break;
	}
	case PS_T_SYMLINK: {
		char *t = ps_strndup((const char *)e->target, e->target_len);
		if (!t || symlinkat(t, d->dfd, name)) {
			ps_free(t);
			rfail_sys(c, "create symlink", rel);
			break;
		}
		ps_free(t);
		if (fchownat(d->dfd, name, map_uid(c, e->uid), map_gid(c, e->gid), AT_SYMLINK_NOFOLLOW) &&
		    (c->is_root_user || errno != EPERM)) {
			rfail_sys(c, "set owner of", rel);
			break;
		}
		if (apply_xattrs(e, -1, proc) || utimensat(d->dfd, name, ts, AT_SYMLINK_NOFOLLOW))
			rfail_sys(c, "set metadata of", rel);
		break;
	}
	case PS_T_FIFO:
	case PS_T_CHR:
	case PS_T_BLK:
	case PS_T_SOCK: {
		mode_t m = e->type == PS_T_FIFO ? S_IFIFO : e->type == PS_T_CHR ? S_IFCHR
			 : e->type == PS_T_BLK ? S_IFBLK : S_IFSOCK;
		const char *first = e->link_group ? find_link(c, e->link_group) : NULL;
		if (first && !linkat(c->root_fd, first, d->dfd, name, 0))
			break;
		if (mknodat(d->dfd, name, m | 0600, (dev_t)e->rdev)) {
			if (errno == EPERM && !c->is_root_user && (m == S_IFCHR || m == S_IFBLK)) {
				/* devices need root: skip them, as tar does */
				break;
			}
			rfail_sys(c, "create special file", rel);
			break;
		}
		if (e->link_group && !first)
			add_link(c, e->link_group, rel);
		if ((fchownat(d->dfd, name, map_uid(c, e->uid), map_gid(c, e->gid), AT_SYMLINK_NOFOLLOW) &&
		     (c->is_root_user || errno != EPERM)) ||
		    fchmodat(d->dfd, name, e->mode & 07777, 0) || apply_xattrs(e, -1, proc) ||
		    utimensat(d->dfd, name, ts, AT_SYMLINK_NOFOLLOW))
			rfail_sys(c, "set metadata of", rel);
		break;
	}
	case PS_T_ERROR:
		/* an entry that could not be read at save time: nothing to restore */
		if (c->o->warn) {
			char msg[300];
			snprintf(msg, sizeof(msg), "not restored: it could not be read when saved (%.*s)",
				 (int)(e->target_len > 200 ? 200 : e->target_len), (const char *)e->target);
			c->o->warn(c->o->cb_ctx, rel, msg);
		}
		break;
	default:
		break;
	}
	ps_free(rel);
}

static void rwalk(struct restore_ctx *c, struct rnode *d)
{
	for (size_t i = 0; i < d->tree.n && !rfailed(c); i++) {
		const struct ps_tentry *e = &d->tree.ents[i];
		char name[NAME_MAX + 1];
		memcpy(name, e->name, e->name_len);
		name[e->name_len] = 0;
		create_entry(c, d, i, name);
	}
	rnode_release(c, d);
}

struct rwalk_arg {
	struct restore_ctx *c;
	struct rnode *d;
};

static void rwalk_thunk(void *v)
{
	struct rwalk_arg *a = v;
	rwalk(a->c, a->d);
}

/* ------------------------------------------------------------ removal */

/* Removes everything inside directory fd (never following symlinks). */
static void empty_dir(int dfd)
{
	int fd = dup(dfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(dir);   /* a dup shares the offset of an earlier listing */
	while ((de = readdir(dir))) {
		int sub;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!unlinkat(dfd, de->d_name, 0))
			continue;
		sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0) {
			fchmod(sub, 0700);
			empty_dir(sub);
			close(sub);
			unlinkat(dfd, de->d_name, AT_REMOVEDIR);
		}
	}
	closedir(dir);
}

static void remove_entry(int pfd, const char *name)
{
	int sub;
	if (!unlinkat(pfd, name, 0))
		return;
	sub = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub >= 0) {
		fchmod(sub, 0700);
		empty_dir(sub);
		close(sub);
	}
	unlinkat(pfd, name, AT_REMOVEDIR);
}

/* ------------------------------------------------------------ driver */

static int run_restore(struct restore_ctx *c, struct rnode *root, int nthreads)
{
	pthread_t th[256];
	int started = 0;
	if (nthreads > 256)
		nthreads = 256;
	for (int i = 0; i < nthreads; i++)
		if (!pthread_create(&th[i], NULL, rworker, c))
			started++;
	if (!started) {
		struct ps_error e;
		ps_err(&e, PS_ERROR, "cannot start worker threads");
		rfail(c, &e);
		/* run the jobs on this thread */
	}
	c->open_dirs = 1;
	{
		/* the walk recurses once per directory level: give it room for
		 * PS_MAX_DEPTH levels */
		struct rwalk_arg wa = { c, root };
		ps_run_big_stack(rwalk_thunk, &wa, (size_t)256 << 20);
	}
	pthread_mutex_lock(&c->lock);
	while (!c->root_done) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!started && c->qlen) {
			struct rjob j = c->q[c->qhead];
			c->qhead = (c->qhead + 1) % c->qcap;
			c->qlen--;
			pthread_mutex_unlock(&c->lock);
			rnode_release(c, j.d);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		pthread_mutex_unlock(&c->lock);
		if (c->o->progress)
			c->o->progress(c->o->cb_ctx, "restore", c->files_done, c->files_total,
				       c->bytes_done, c->bytes_total);
		pthread_mutex_lock(&c->lock);
	}
	c->stop = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (c->o->progress)
		c->o->progress(c->o->cb_ctx, "restore", c->files_done, c->files_total, c->bytes_done,
			       c->bytes_total);
	return c->failed ? (c->err.code ? c->err.code : PS_ERROR) : PS_OK;
}

/* Counts files and bytes for progress (cheap: trees are small). */
static void count_tree(struct restore_ctx *c, const struct ps_tree *t, int depth)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct ps_tentry *e = &t->ents[i];
		if (e->type == PS_T_REG) {
			c->files_total++;
			for (size_t k = 0; k < e->nextents; k++)
				c->bytes_total += e->extents[k].len;
		} else if (e->type == PS_T_DIR && depth < 64) {
			struct ps_tree sub;
			if (!ps_tree_load(c->s, e->subtree, &sub, NULL)) {
				count_tree(c, &sub, depth + 1);
				ps_tree_release(&sub);
			}
		}
	}
}

static struct rnode *make_root(struct restore_ctx *c, int fd, struct ps_tree *tree)
{
	struct rnode *r = ps_calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->dfd = fd;
	r->path = ps_strdup("");
	r->tree = *tree;
	r->pending = 1;
	r->self_idx = -1;
	{
		struct stat st;
		if (!fstat(fd, &st) && (st.st_mode & S_ISGID)) {
			r->sgid = 1;
			r->gid = st.st_gid;
		}
	}
	memset(tree, 0, sizeof(*tree));
	return r;
}

static void split_parent(const char *target, char *dir, size_t dl, char *base, size_t bl)
{
	char tmp[PATH_MAX];
	char *slash;
	size_t n;
	snprintf(tmp, sizeof(tmp), "%s", target);
	n = strlen(tmp);
	while (n > 1 && tmp[n - 1] == '/')
		tmp[--n] = 0;
	slash = strrchr(tmp, '/');
	if (!slash) {
		snprintf(dir, dl, ".");
		snprintf(base, bl, "%s", tmp);
	} else if (slash == tmp) {
		snprintf(dir, dl, "/");
		snprintf(base, bl, "%s", slash + 1);
	} else {
		*slash = 0;
		snprintf(dir, dl, "%s", tmp);
		snprintf(base, bl, "%s", slash + 1);
	}
}

static int full_restore(struct restore_ctx *c, const struct ps_snapshot_info *si,
			const char *target, int nthreads, struct ps_error *err)
{
	struct ps_tree tree;
	struct rnode *root;
	struct ps_tentry rootmeta;
	char dir[PATH_MAX], base[NAME_MAX + 1], tmpname[NAME_MAX + 1];
	int pfd = -1, fd = -1, in_place = 0, rc;
	struct stat st;
	uint32_t rnd = 0;

	rc = ps_tree_load(c->s, si->root, &tree, err);
	if (rc)
		return rc;
	split_parent(target, dir, sizeof(dir), base, sizeof(base));
	if (!base[0] || !strcmp(base, ".") || !strcmp(base, "..")) {
		ps_tree_release(&tree);
		return ps_err(err, PS_EINVAL, "invalid restore target '%s'", target);
	}
	pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0) {
		ps_tree_release(&tree);
		return ps_err_sys(err, "cannot open directory '%s'", dir);
	}
	if (!fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW)) {
		struct dirent *de;
		DIR *dd;
		int nonempty = 0;
		if (!S_ISDIR(st.st_mode)) {
			rc = ps_err(err, PS_EEXISTS, "restore target '%s' exists and is not a directory", target);
			goto fail;
		}
		fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = ps_err_sys(err, "cannot open '%s'", target);
			goto fail;
		}
		dd = fdopendir(dup(fd));
		while (dd && (de = readdir(dd)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				nonempty = 1;
		if (dd)
			closedir(dd);
		if (nonempty) {
			rc = ps_err(err, PS_EEXISTS,
				    "restore target '%s' is not empty (restore into a new or empty directory)",
				    target);
			goto fail;
		}
		in_place = 1;
	} else {
		ps_random_bytes(&rnd, sizeof(rnd));
		snprintf(tmpname, sizeof(tmpname), ".%.200s.projstore-tmp-%08x", base, rnd);
		if (mkdirat(pfd, tmpname, 0700)) {
			rc = ps_err_sys(err, "cannot create '%s/%s'", dir, tmpname);
			goto fail;
		}
		fd = openat(pfd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = ps_err_sys(err, "cannot open '%s/%s'", dir, tmpname);
			unlinkat(pfd, tmpname, AT_REMOVEDIR);
			goto fail;
		}
	}
	c->root_fd = fd;
	count_tree(c, &tree, 0);
	root = make_root(c, fd, &tree);
	if (!root) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto cleanup;
	}
	rc = run_restore(c, root, nthreads);
	if (rc) {
		*err = c->err;
		goto cleanup;
	}
	memset(&rootmeta, 0, sizeof(rootmeta));
	rootmeta.mode = si->root_mode ? si->root_mode : 0755;
	rootmeta.uid = si->root_uid;
	rootmeta.gid = si->root_gid;
	rootmeta.mtime_sec = si->root_mtime_sec;
	rootmeta.mtime_nsec = si->root_mtime_nsec;
	if (apply_meta_fd(c, fd, &rootmeta, (gid_t)-1)) {
		rc = ps_err_sys(err, "cannot set metadata of '%s'", target);
		goto cleanup;
	}
	if (syncfs(fd)) {
		rc = ps_err_sys(err, "cannot sync '%s'", target);
		goto cleanup;
	}
	if (!in_place) {
		if (renameat2(pfd, tmpname, pfd, base, RENAME_NOREPLACE)) {
			rc = ps_err_sys(err, "cannot rename the restored tree to '%s'", target);
			goto cleanup;
		}
		fsync(pfd);
	}
	close(fd);
	close(pfd);
	return PS_OK;
cleanup:
	empty_dir(fd);
	if (!in_place)
		unlinkat(pfd, tmpname, AT_REMOVEDIR);
fail:
	ps_tree_release(&tree);
	if (fd >= 0)
		close(fd);
	close(pfd);
	return rc;
}

/* Opens (creating as needed) the directory `rel` under rootfd, one
 * component at a time, never following symlinks. */
static int open_parent_dirs(int rootfd, const char *rel, struct ps_error *err)
{
	int fd = dup(rootfd);
	const char *p = rel;
	while (fd >= 0 && *p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		char name[NAME_MAX + 1];
		int nfd;
		if (len == 0) {
			p++;
			continue;
		}
		if (len > NAME_MAX) {
			close(fd);
			return ps_err(err, PS_EINVAL, "path component too long in '%s'", rel);
		}
		memcpy(name, p, len);
		name[len] = 0;
		if (mkdirat(fd, name, 0755) && errno != EEXIST) {
			close(fd);
			return ps_err_sys(err, "cannot create directory '%s'", name);
		}
		nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (nfd < 0)
			return ps_err_sys(err, "cannot open directory '%s' of '%s' (a symlink or not a directory?)",
					  name, rel);
		fd = nfd;
		p += len;
	}
	return fd;
}

static int path_restore(struct restore_ctx *c, const struct ps_snapshot_info *si,
			const char *target, const char *path, int nthreads, struct ps_error *err)
{
	struct ps_tree dirtree;
	long idx;
	char clean[PATH_MAX], parent[PATH_MAX], tmpname[NAME_MAX + 1], aside[NAME_MAX + 1];
	char name[NAME_MAX + 1];
	const char *base;
	struct rnode *d;
	int rootfd, pfd, rc;
	size_t n = 0;
	uint32_t rnd = 0;
	struct ps_tentry e;

	/* normalise: no leading/trailing/double slashes; reject . and .. */
	for (const char *p = path; *p;) {
		const char *slash;
		size_t len;
		while (*p == '/')
			p++;
		if (!*p)
			break;
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return ps_err(err, PS_EINVAL, "path '%s' may not contain '.' or '..'", path);
		if (n + len + 2 >= sizeof(clean))
			return ps_err(err, PS_EINVAL, "path '%s' is too long", path);
		if (n)
			clean[n++] = '/';
		memcpy(clean + n, p, len);
		n += len;
		p += len;
	}
	clean[n] = 0;
	if (!n)
		return ps_err(err, PS_EINVAL, "empty path");
	rc = ps_tree_lookup(c->s, si->root, clean, &dirtree, &idx, err);
	if (rc)
		return rc;
	base = strrchr(clean, '/');
	if (base) {
		snprintf(parent, sizeof(parent), "%.*s", (int)(base - clean), clean);
		base++;
	} else {
		parent[0] = 0;
		base = clean;
	}
	snprintf(name, sizeof(name), "%s", base);
	if (ps_mkdirs(target, 0755, err)) {
		ps_tree_release(&dirtree);
		return PS_ERROR;
	}
	rootfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		ps_tree_release(&dirtree);
		return ps_err_sys(err, "cannot open '%s'", target);
	}
	pfd = open_parent_dirs(rootfd, parent, err);
	if (pfd < 0) {
		close(rootfd);
		ps_tree_release(&dirtree);
		return PS_ERROR;
	}
	ps_random_bytes(&rnd, sizeof(rnd));
	snprintf(tmpname, sizeof(tmpname), ".projstore-tmp-%08x", rnd);
	snprintf(aside, sizeof(aside), ".projstore-old-%08x", rnd);
	/* a one-entry tree holding the entry under the temporary name */
	e = dirtree.ents[idx];
	e.name = (const uint8_t *)tmpname;
	e.name_len = strlen(tmpname);
	d = ps_calloc(1, sizeof(*d));
	if (!d) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	d->dfd = dup(pfd);      /* closed when d finishes; pfd is kept for the swap */
	d->path = ps_strdup(parent);
	d->pending = 1;
	d->self_idx = -1;
	{
		struct stat st;
		if (!fstat(pfd, &st) && (st.st_mode & S_ISGID)) {
			d->sgid = 1;
			d->gid = st.st_gid;
		}
	}
	d->tree.ents = ps_malloc(sizeof(e));
	if (!d->path || !d->tree.ents) {
		ps_free(d->path);
		ps_free(d->tree.ents);
		ps_free(d);
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	d->tree.ents[0] = e;
	d->tree.n = 1;
	c->root_fd = rootfd;
	c->root_done = 0;
	rc = run_restore(c, d, nthreads);   /* frees d; pfd stays open (not root_fd) */
	if (rc) {
		*err = c->err;
		remove_entry(pfd, tmpname);
		goto done_nofree;
	}
	/* swap it in: move an existing entry aside, rename, remove the old */
	if (!renameat(pfd, name, pfd, aside)) {
		if (renameat(pfd, tmpname, pfd, name)) {
			rc = ps_err_sys(err, "cannot rename restored '%s' into place", clean);
			renameat(pfd, aside, pfd, name);
			remove_entry(pfd, tmpname);
			goto done_nofree;
		}
		remove_entry(pfd, aside);
	} else if (errno == ENOENT) {
		if (renameat(pfd, tmpname, pfd, name)) {
			rc = ps_err_sys(err, "cannot rename restored '%s' into place", clean);
			remove_entry(pfd, tmpname);
			goto done_nofree;
		}
	} else {
		rc = ps_err_sys(err, "cannot replace '%s'", clean);
		remove_entry(pfd, tmpname);
		goto done_nofree;
	}
	fsync(pfd);
done_nofree:
	ps_tree_release(&dirtree);
	close(pfd);
	close(rootfd);
	return rc;
done:
	ps_tree_release(&dirtree);
	close(pfd);
	close(rootfd);
	return rc;
}

int ps_restore(struct ps_store *s, const char *project, const char *snapshot, const char *target,
	       const struct ps_restore_opts *opts, struct ps_error *err)
{
	struct ps_restore_opts defo = PS_RESTORE_OPTS_INIT;
	struct ps_snapshot_info si;
	struct restore_ctx *c;
	int rc, nthreads;

	if (!opts)
		opts = &defo;
	rc = ps_resolve_root(s, project, snapshot, &si, err);
	if (rc)
		return rc;
	c = ps_calloc(1, sizeof(*c));
	if (!c)
		return ps_err(err, PS_ERROR, "out of memory");
	c->s = s;
	c->o = opts;
	c->is_root_user = geteuid() == 0;
	c->euid = geteuid();
	c->egid = getegid();
	ps_raise_nofile();
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	nthreads = opts->threads > 0 ? opts->threads : ps_ncpus();
	if (nthreads < 2)
		nthreads = 2;   /* overlap reading the store with writing files */
	if (!opts->paths || !opts->paths[0]) {
		if (!opts->no_cache) {
			/* the cache of the directory TARGET will be: its parent's real
			 * path plus its name (it does not exist yet) */
			char parent[PATH_MAX], base[NAME_MAX + 1], rp[PATH_MAX], key[PATH_MAX * 2];
			split_parent(target, parent, sizeof(parent), base, sizeof(base));
			if (realpath(parent, rp)) {
				snprintf(key, sizeof(key), "%s/%s", strcmp(rp, "/") ? rp : "", base);
				ps_fcache_open(&c->fc, opts->cache_dir, s->id, project, key, NULL);
			}
		}
		rc = full_restore(c, &si, target, nthreads, err);
		if (!rc && c->fc)
			ps_fcache_commit(c->fc, NULL);
	} else {
		for (const char *const *p = opts->paths; *p && !rc; p++) {
			c->failed = 0;
			c->stop = 0;
			ps_error_clear(&c->err);
			rc = path_restore(c, &si, target, *p, nthreads, err);
		}
	}
	for (size_t i = 0; i < c->nlinks; i++)
		ps_free(c->links[i].path);
	ps_free(c->links);
	ps_free(c->q);
	ps_fcache_free(c->fc);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	ps_free(c);
	return rc;
}
