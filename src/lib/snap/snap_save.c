/*
 * snap_save.c - save: snapshot a directory tree into the store.
 *
 * Pipeline.  The calling thread walks the tree depth first: per directory it
 * reads the names, sorts them, lstat()s every entry and reads xattrs and
 * symlink targets.  A regular file whose (dev, ino, size, mtime, ctime) match
 * the file cache takes its chunk list from the cache and is never opened;
 * every other regular file becomes a job for the worker pool, which reads its
 * data regions (SEEK_DATA/SEEK_HOLE: holes are never read), cuts them into
 * chunks, hashes them and stores the new ones (compressed in the worker).
 *
 * Each directory is a `dnode` with a count of outstanding work: one for the
 * walker while it lists the directory, one per file job, one per
 * subdirectory.  Whoever drops the count to zero (the walker or a worker)
 * encodes the directory's tree object, stores it, writes its id into the
 * parent's entry and drops the parent's count.  When the root reaches zero the
 * tree is complete.  A directory's descriptor stays open until then, so
 * workers open files with openat() relative to it and long paths never matter.
 * The walker pauses when too many directories are open.
 *
 * Commit order (crash safety): objects -> packs fsynced and renamed ->
 * index segment -> snapshot ref -> list.  A crash before the ref leaves only
 * unreferenced objects (indexed by the next save through the inflight journal,
 * or removed by gc); the snapshot appears whole or not at all.
 *
 * An entry that cannot be read (EACCES, EIO, ENOTCONN, ...) becomes an entry of
 * type "error" carrying the message; the save goes on and reports it.
 *
 * Large files are cut into 64 MiB segments that are chunked independently
 * by different workers (sharing one descriptor), so one big file uses every
 * core; a segment boundary is a forced chunk boundary, which costs at most one
 * chunk of dedup per 64 MiB when content shifts.
 *
 * Incremental: an entry whose (dev, ino, size, mtime, ctime) match the file
 * cache reuses what was derived from it (chunk list, xattrs, symlink target)
 * without a further system call; a directory whose own stat and all of whose
 * children match reuses its tree id without encoding or hashing anything.
 */
#define _GNU_SOURCE
#include "snap_int.h"
#include "../hash/hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_OPEN_DIRS 256
#define LOCK_TTL 600.0
#define SEG_SIZE (64ull << 20)

struct sentry {
	struct ps_tentry t;       /* name, target, xattrs, extents owned here */
	dev_t dev;
	ino_t ino;
	int job;                  /* content is read by a worker */
};

struct dnode {
	struct dnode *parent;
	size_t parent_idx;
	int dfd;
	char *path;               /* relative to the save root; "" for the root */
	struct sentry *ents;
	size_t n;
	int pending;              /* atomic */
	struct stat st;           /* the directory's own stat */
	int stat_hit;             /* st matches the file cache */
	int all_hit;              /* atomic: every entry matches the file cache */
	uint8_t cached_tree[32];  /* tree id from the file cache */
	int depth;
	int broken;               /* could not be opened or listed: never cached */
};

/* One regular file being read, possibly by several workers (segments). */
struct filework {
	struct dnode *d;
	size_t idx;
	pthread_mutex_t lock;     /* protects state, fd, st, msg */
	int state;                /* 0 not opened, 1 open, -1 failed */
	int fd;
	struct stat st;
	char msg[320];
	int nseg;
	int remaining;            /* atomic: segments not finished */
	struct segres {
		struct ps_extent *ext;
		size_t n;
		uint64_t logical;
		uint64_t end;         /* where the data of this segment ended */
		int short_read;       /* the file shrank inside this segment */
		int rerr;             /* errno of a read error, or 0 */
	} seg[];
};

struct job {
	struct filework *fw;      /* a file segment, or */
	int seg;
	struct dnode *dir;        /* a directory to open and walk */
};

struct save_ctx {
	struct ps_store *s;
	const struct ps_save_opts *o;
	struct ps_compression comp;
	struct ps_fcache *fc;
	char **excludes;
	size_t nexcludes;
	dev_t root_dev;
	uint8_t root_id[32];
	uint8_t empty_tree[32];
	long uid, gid;

	pthread_mutex_t lock;     /* protects everything below */
	pthread_cond_t cond;      /* jobs queued, root done, dirs closed */
	struct job *q;            /* file segments, FIFO */
	size_t qhead, qlen, qcap;
	struct dnode **dq;        /* directories to walk, LIFO (depth first) */
	size_t dqlen, dqcap;
	int nthreads;
	int inline_mode;          /* one worker: the calling thread does all the work */
	struct ps_lock *save_lock; /* (inline) refreshed from worker_main */
	struct ps_save_batch *batch;
	int64_t last_report, last_refresh;
	int stop;                 /* workers exit when the queue is empty */
	int root_done;
	int open_dirs;
	int failed;
	struct ps_error err;      /* first fatal error */
	pthread_mutex_t warn_lock;
	pthread_mutex_t sdig_lock; /* with opts->stat_digest every stat goes into sdig */
	struct ps_sdig sdig;
	int sdig_failed;

	/* counters (atomic) */
	uint64_t files, dirs, others, logical, apparent, errors;
	uint64_t files_done, bytes_done, bytes_total;
};

static void fail(struct save_ctx *c, const struct ps_error *e)
{
	pthread_mutex_lock(&c->lock);
	if (!c->failed) {
		c->failed = 1;
		c->err = *e;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static int has_failed(struct save_ctx *c) { return __atomic_load_n(&c->failed, __ATOMIC_RELAXED); }

static void warn_entry(struct save_ctx *c, const char *path, const char *msg)
{
	__atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
	if (c->o->warn) {
		pthread_mutex_lock(&c->warn_lock);
		c->o->warn(c->o->cb_ctx, path[0] ? path : ".", msg);
		pthread_mutex_unlock(&c->warn_lock);
	}
}

static char *join_path(const char *dir, const char *name)
{
	return ps_path_join(dir, name, strlen(name));
}

static void entry_release(struct sentry *e)
{
	ps_free((void *)e->t.name);
	ps_free((void *)e->t.target);
	ps_free((void *)e->t.xattrs);
	ps_free(e->t.extents);
}

/* Turns an entry into an error entry carrying `msg` (keeps its metadata). */
static void entry_set_error(struct sentry *e, const char *msg)
{
	ps_free((void *)e->t.target);
	ps_free(e->t.extents);
	e->t.extents = NULL;
	e->t.nextents = 0;
	e->t.type = PS_T_ERROR;
	e->t.target = (const uint8_t *)ps_strdup(msg);
	e->t.target_len = e->t.target ? strlen(msg) : 0;
	if (!e->t.target_len) {
		e->t.target = (const uint8_t *)ps_strdup("error");
		e->t.target_len = 5;
	}
	e->t.size = 0;
	e->t.link_group = 0;
}

/* ------------------------------------------------------------ excludes */

static int excluded(struct save_ctx *c, const char *rel, const char *name)
{
	return ps_excluded(c->excludes, c->nexcludes, rel, name);
}

/* ------------------------------------------------------------ stat digest */

/* One entry (or failure) of the walk into the stat digest (snap_digest.c):
 * the same records as ps_stat_digest's walk, in whatever order. */
static void sdig_note(struct save_ctx *c, char kind, const char *rel, const struct stat *st, int e)
{
	uint8_t h[32];
	if (!c->o->stat_digest)
		return;
	if (ps_sdig_hash(kind, rel, st, e, h)) {
		__atomic_store_n(&c->sdig_failed, 1, __ATOMIC_RELAXED);
		return;
	}
	pthread_mutex_lock(&c->sdig_lock);
	ps_sdig_addh(&c->sdig, h, !st);
	pthread_mutex_unlock(&c->sdig_lock);
}

/* ------------------------------------------------------------ xattrs */

/* Reads all xattrs of `path` (not following a final symlink) and encodes
 * them sorted by name. Errors other than "not supported" are returned. */
static int read_xattrs(const char *path, int fd, struct sentry *e)
{
	char *names = NULL, *p;
	ssize_t len;
	struct ps_buf b = PS_BUF_INIT;
	const char *vn[256];
	size_t nn = 0;
	int rc = 0;
	len = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
	if (len <= 0)
		return (len < 0 && errno != ENOTSUP && errno != ENODATA) ? -errno : 0;
	names = ps_malloc((size_t)len + 1);
	if (!names)
		return -ENOMEM;
	len = fd >= 0 ? flistxattr(fd, names, (size_t)len) : llistxattr(path, names, (size_t)len);
	if (len < 0) {
		rc = -errno;
		goto done;
	}
	for (p = names; p < names + len && nn < PS_ARRAY_LEN(vn); p += strlen(p) + 1)
		if (*p && strcmp(p, "security.selinux"))
			vn[nn++] = p;
	/* sort names (insertion sort: few) */
	for (size_t i = 1; i < nn; i++)
		for (size_t k = i; k > 0 && strcmp(vn[k - 1], vn[k]) > 0; k--) {
			const char *t = vn[k];
			vn[k] = vn[k - 1];
			vn[k - 1] = t;
		}
	ps_buf_put_uvar(&b, nn);
	for (size_t i = 0; i < nn; i++) {
		char val[65536];
		ssize_t vl = fd >= 0 ? fgetxattr(fd, vn[i], val, sizeof(val))
				     : lgetxattr(path, vn[i], val, sizeof(val));
		if (vl < 0) {
			if (errno == ENODATA)
				continue;
			rc = -errno;
			goto done;
		}
		ps_buf_put_uvar(&b, strlen(vn[i]));
		ps_buf_append(&b, vn[i], strlen(vn[i]));
		ps_buf_put_uvar(&b, (uint64_t)vl);
		ps_buf_append(&b, val, (size_t)vl);
	}
	e->t.nxattrs = nn;
	e->t.xattrs = b.data;
	e->t.xattrs_len = b.len;
	b.data = NULL;
done:
	ps_buf_release(&b);
	ps_free(names);
	return rc;
}

/* ------------------------------------------------------------ tree build */

static void dnode_release(struct save_ctx *c, struct dnode *d);

static void dnode_finish(struct save_ctx *c, struct dnode *d)
{
	struct ps_buf b = PS_BUF_INIT;
	struct ps_tentry *te = NULL;
	uint8_t id[32];
	struct ps_error err;
	struct dnode *parent = d->parent;
	int rc = PS_OK, reused = 0, opened = d->dfd >= 0;

	ps_error_clear(&err);
	if (!has_failed(c)) {
		if (d->stat_hit && __atomic_load_n(&d->all_hit, __ATOMIC_ACQUIRE) &&
		    ps_store_has(c->s, d->cached_tree, NULL)) {
			/* nothing in this directory changed: same tree, nothing to build */
			memcpy(id, d->cached_tree, 32);
			reused = 1;
		} else if (!(te = ps_malloc(sizeof(*te) * (d->n ? d->n : 1)))) {
			rc = ps_err(&err, PS_ERROR, "out of memory");
		} else {
			for (size_t i = 0; i < d->n; i++)
				te[i] = d->ents[i].t;
			if (ps_tree_encode(te, d->n, &b))
				rc = ps_err(&err, PS_ERROR, "out of memory");
			else
				rc = ps_store_put(c->s, PS_OBJ_TREE, b.data, b.len, NULL, &c->comp, id,
						  NULL, &err);
		}
		if (rc) {
			ps_err_prefix(&err, "'%s'", d->path[0] ? d->path : ".");
			fail(c, &err);
		} else if (c->fc && !d->broken) {
			struct ps_fcache_ent fe;
			memset(&fe, 0, sizeof(fe));
			fe.path = d->path;
			fe.path_len = strlen(d->path);
			fe.kind = PS_FC_DIR;
			memcpy(fe.tree, id, 32);
			if (parent) {
				const struct ps_tentry *pe = &parent->ents[d->parent_idx].t;
				fe.xattrs = (uint8_t *)pe->xattrs;
				fe.xattrs_len = pe->xattrs_len;
			}
			ps_fcache_add(c->fc, &fe, &d->st);
		}
	}
	(void)reused;
	ps_free(te);
	ps_buf_release(&b);
	for (size_t i = 0; i < d->n; i++)
		entry_release(&d->ents[i]);
	ps_free(d->ents);
	ps_free(d->path);
	if (opened)
		close(d->dfd);
	pthread_mutex_lock(&c->lock);
	if (opened)
		c->open_dirs--;
	if (!parent && !rc)
		memcpy(c->root_id, id, 32);
	if (!parent)
		c->root_done = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (parent) {
		if (!rc && !has_failed(c)) {
			memcpy(parent->ents[d->parent_idx].t.subtree, id, 32);
			if (!d->stat_hit || d->broken || memcmp(id, d->cached_tree, 32))
				__atomic_store_n(&parent->all_hit, 0, __ATOMIC_RELAXED);
		}
		dnode_release(c, parent);
	}
	ps_free(d);
}

static void dnode_release(struct save_ctx *c, struct dnode *d)
{
	if (__atomic_sub_fetch(&d->pending, 1, __ATOMIC_ACQ_REL) == 0)
		dnode_finish(c, d);
}

/* ------------------------------------------------------------ file content */

struct worker_buf {
	uint8_t *buf;
	size_t cap;
	struct ps_extent *ext;
	size_t next, ext_cap;
};

static int add_extent(struct worker_buf *w, uint64_t off, uint32_t len, const uint8_t id[32])
{
	if (w->next == w->ext_cap) {
		size_t cap = w->ext_cap ? w->ext_cap * 2 : 64;
		struct ps_extent *e = ps_realloc(w->ext, cap * sizeof(*e));
		if (!e)
			return -1;
		w->ext = e;
		w->ext_cap = cap;
	}
	w->ext[w->next].off = off;
	w->ext[w->next].len = len;
	memcpy(w->ext[w->next].id, id, 32);
	w->next++;
	return 0;
}

/* Reads [a, b) of fd, chunks and stores it. Returns 0, a negative errno for a
 * read error (the entry becomes an error entry), or PS_ERROR (fatal, in err).
 * *end receives where the data really ended (a file that shrank). */
static int read_region(struct save_ctx *c, struct worker_buf *w, int fd, uint64_t a, uint64_t b,
		       uint64_t *end, struct ps_error *err)
{
	const struct ps_chunker *ch = &c->s->chunker;
	uint64_t rpos = a, cpos = a;
	size_t have = 0;
	int eof = 0;
	while (!eof || have) {
		size_t off = 0;
		while (!eof && have < w->cap) {
			size_t want = w->cap - have;
			ssize_t r;
			if (rpos >= b) {
				eof = 1;
				break;
			}
			if (want > b - rpos)
				want = (size_t)(b - rpos);
			r = pread(fd, w->buf + have, want, (off_t)rpos);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			if (r == 0) {
				eof = 1;
				break;
			}
			have += (size_t)r;
			rpos += (uint64_t)r;
			__atomic_add_fetch(&c->bytes_done, (uint64_t)r, __ATOMIC_RELAXED);
		}
		while (have - off >= ch->max_size || (eof && off < have)) {
			size_t n = ps_chunker_cut(ch, w->buf + off, have - off);
			uint8_t id[32];
			int rc = ps_store_put(c->s, PS_OBJ_CHUNK, w->buf + off, n, NULL, &c->comp, id, NULL,
					      err);
			if (rc)
				return PS_ERROR;
			if (add_extent(w, cpos, (uint32_t)n, id))
				return ps_err(err, PS_ERROR, "out of memory");
			cpos += n;
			off += n;
		}
		if (off && off < have)
			memmove(w->buf, w->buf + off, have - off);
		have -= off;
		if (has_failed(c))
			return PS_ERROR;
	}
	*end = cpos;
	return 0;
}

/* Opens the file of fw once for all its segments (lock held). */
static void fw_open(struct save_ctx *c, struct filework *fw)
{
	struct sentry *e = &fw->d->ents[fw->idx];
	int xr;
	fw->fd = openat(fw->d->dfd, (const char *)e->t.name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fw->fd < 0 && errno == EPERM)
		fw->fd = openat(fw->d->dfd, (const char *)e->t.name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fw->fd < 0) {
		snprintf(fw->msg, sizeof(fw->msg), "cannot open: %s", strerror(errno));
		fw->state = -1;
		return;
	}
	if (fstat(fw->fd, &fw->st)) {
		snprintf(fw->msg, sizeof(fw->msg), "cannot stat: %s", strerror(errno));
		fw->state = -1;
		return;
	}
	if (!S_ISREG(fw->st.st_mode) || fw->st.st_ino != e->ino || fw->st.st_dev != e->dev) {
		snprintf(fw->msg, sizeof(fw->msg), "was replaced while being saved");
		fw->state = -1;
		return;
	}
	xr = read_xattrs(NULL, fw->fd, e);
	if (xr && xr != -EACCES && xr != -EPERM) {
		snprintf(fw->msg, sizeof(fw->msg), "cannot read extended attributes: %s", strerror(-xr));
		fw->state = -1;
		return;
	}
	(void)c;
	fw->state = 1;
}

/* All segments are done: put the entry together (or turn it into an error). */
static void fw_finish(struct save_ctx *c, struct filework *fw)
{
	struct dnode *d = fw->d;
	struct sentry *e = &d->ents[fw->idx];
	char *rel = join_path(d->path, (const char *)e->t.name);
	uint64_t size = (uint64_t)fw->st.st_size, logical = 0;
	size_t n = 0, k = 0;
	int rerr = 0, short_read = 0;

	for (int i = 0; i < fw->nseg; i++) {
		if (fw->seg[i].rerr && !rerr)
			rerr = fw->seg[i].rerr;
		if (!short_read) {
			n += fw->seg[i].n;
			logical += fw->seg[i].logical;
			if (fw->seg[i].short_read) {
				short_read = 1;
				size = fw->seg[i].end;   /* the file shrank: keep what was read */
			}
		}
	}
	if (has_failed(c))
		goto done;
	if (fw->state < 0 || rerr) {
		char msg[sizeof(fw->msg)];
		if (fw->state < 0)
			snprintf(msg, sizeof(msg), "%s", fw->msg);
		else
			snprintf(msg, sizeof(msg), "cannot read: %s", strerror(rerr));
		entry_set_error(e, msg);
		warn_entry(c, rel ? rel : "?", msg);
		goto done;
	}
	e->t.extents = ps_malloc(sizeof(struct ps_extent) * (n ? n : 1));
	if (!e->t.extents) {
		struct ps_error err;
		ps_err(&err, PS_ERROR, "out of memory");
		fail(c, &err);
		goto done;
	}
	for (int i = 0; i < fw->nseg && k < n; i++) {
		size_t take = fw->seg[i].n < n - k ? fw->seg[i].n : n - k;
		memcpy(e->t.extents + k, fw->seg[i].ext, sizeof(struct ps_extent) * take);
		k += take;
	}
	e->t.nextents = n;
	e->t.size = size;
	e->t.mtime_sec = fw->st.st_mtim.tv_sec;
	e->t.mtime_nsec = (uint32_t)fw->st.st_mtim.tv_nsec;
	__atomic_add_fetch(&c->logical, logical, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->apparent, size, __ATOMIC_RELAXED);
	if (c->fc && rel && !short_read) {
		struct ps_fcache_ent fe;
		memset(&fe, 0, sizeof(fe));
		fe.path = rel;
		fe.path_len = strlen(rel);
		fe.kind = PS_FC_FILE;
		fe.extents = e->t.extents;
		fe.nextents = e->t.nextents;
		fe.xattrs = (uint8_t *)e->t.xattrs;
		fe.xattrs_len = e->t.xattrs_len;
		ps_fcache_add(c->fc, &fe, &fw->st);
	}
done:
	ps_free(rel);
	if (fw->fd >= 0)
		close(fw->fd);
	for (int i = 0; i < fw->nseg; i++)
		ps_free(fw->seg[i].ext);
	pthread_mutex_destroy(&fw->lock);
	ps_free(fw);
	__atomic_add_fetch(&c->files_done, 1, __ATOMIC_RELAXED);
	dnode_release(c, d);
}

static void process_segment(struct save_ctx *c, struct worker_buf *w, struct filework *fw, int seg)
{
	struct segres *r = &fw->seg[seg];
	struct ps_error err;
	uint64_t a, b, pos;
	int sparse, rc = 0;

	pthread_mutex_lock(&fw->lock);
	if (fw->state == 0)
		fw_open(c, fw);
	pthread_mutex_unlock(&fw->lock);
	if (fw->state < 0 || has_failed(c))
		goto done;
	ps_error_clear(&err);
	w->next = 0;
	a = (uint64_t)seg * SEG_SIZE;
	b = (uint64_t)fw->st.st_size;
	if (b > a + SEG_SIZE)
		b = a + SEG_SIZE;
	r->end = a;
	sparse = (uint64_t)fw->st.st_blocks * 512 < (uint64_t)fw->st.st_size;
	for (pos = a; pos < b && !rc;) {
		uint64_t ra = pos, rb = b, got = 0;
		if (sparse) {
			/* holes are neither read, hashed nor stored */
			off_t da = lseek(fw->fd, (off_t)pos, SEEK_DATA);
			if (da < 0) {
				if (errno == ENXIO)
					break;
				sparse = 0;
			} else {
				off_t hb;
				if ((uint64_t)da >= b)
					break;
				hb = lseek(fw->fd, da, SEEK_HOLE);
				ra = (uint64_t)da;
				if (hb >= 0 && (uint64_t)hb < rb)
					rb = (uint64_t)hb;
			}
		}
		rc = read_region(c, w, fw->fd, ra, rb, &got, &err);
		if (rc == PS_ERROR) {
			char *rel = join_path(fw->d->path, (const char *)fw->d->ents[fw->idx].t.name);
			ps_err_prefix(&err, "'%s'", rel ? rel : "?");
			ps_free(rel);
			fail(c, &err);
			break;
		}
		if (rc < 0) {
			r->rerr = -rc;
			break;
		}
		r->logical += got - ra;
		r->end = got;
		if (got < rb) {
			r->short_read = 1;
			break;
		}
		pos = rb;
	}
	if (!r->short_read && !r->rerr)
		r->end = b;
	if (w->next) {
		r->ext = ps_malloc(sizeof(*w->ext) * w->next);
		if (!r->ext) {
			ps_err(&err, PS_ERROR, "out of memory");
			fail(c, &err);
		} else {
			memcpy(r->ext, w->ext, sizeof(*w->ext) * w->next);
			r->n = w->next;
		}
	}
done:
	if (__atomic_sub_fetch(&fw->remaining, 1, __ATOMIC_ACQ_REL) == 0)
		fw_finish(c, fw);
}

static void walk_dir(struct save_ctx *c, struct dnode *d);
static void open_and_walk(struct save_ctx *c, struct dnode *d);
static void report(struct save_ctx *c);
static int refresh_locks(struct ps_lock *lock, struct ps_save_batch *b, struct ps_error *err);

/* Inline mode: what the calling thread does between jobs when it waits for
 * workers otherwise (progress, the locks' expiry). */
static void inline_tick(struct save_ctx *c)
{
	int64_t now = ps_mono_ns();
	if (now - c->last_report > 200000000LL) {
		c->last_report = now;
		report(c);
	}
	if (now - c->last_refresh > 60LL * 1000000000LL) {
		struct ps_error lerr;
		c->last_refresh = now;
		if (refresh_locks(c->save_lock, c->batch, &lerr))
			fail(c, &lerr);
	}
}

static void *worker_main(void *arg)
{
	struct save_ctx *c = arg;
	struct worker_buf w = { 0 };
	w.cap = 4u * c->s->chunker.max_size;
	if (w.cap < (8u << 20))
		w.cap = 8u << 20;
	w.buf = ps_malloc(w.cap);
	if (!w.buf) {
		struct ps_error e;
		ps_err(&e, PS_ERROR, "out of memory");
		fail(c, &e);
	}
	for (;;) {
		struct job j = { NULL, 0, NULL };
		pthread_mutex_lock(&c->lock);
		while (!c->qlen && !c->dqlen && !c->stop)
			pthread_cond_wait(&c->cond, &c->lock);
		if (!c->qlen && !c->dqlen) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		/* walk directories while few file segments wait and few
		 * directories are open; otherwise drain the file segments */
		if (c->dqlen && (!c->qlen || (c->qlen < (size_t)c->nthreads * 4 && c->open_dirs < MAX_OPEN_DIRS))) {
			j.dir = c->dq[--c->dqlen];
		} else {
			j = c->q[c->qhead];
			c->qhead = (c->qhead + 1) % c->qcap;
			c->qlen--;
		}
		pthread_mutex_unlock(&c->lock);
		if (j.dir)
			open_and_walk(c, j.dir);
		else
			process_segment(c, &w, j.fw, j.seg);
		if (c->inline_mode)
			inline_tick(c);
	}
	ps_free(w.buf);
	ps_free(w.ext);
	return NULL;
}

static int enqueue_dir(struct save_ctx *c, struct dnode *d)
{
	pthread_mutex_lock(&c->lock);
	if (c->dqlen == c->dqcap) {
		size_t cap = c->dqcap ? c->dqcap * 2 : 256;
		struct dnode **nq = ps_realloc(c->dq, cap * sizeof(*nq));
		if (!nq) {
			pthread_mutex_unlock(&c->lock);
			return -1;
		}
		c->dq = nq;
		c->dqcap = cap;
	}
	c->dq[c->dqlen++] = d;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int enqueue(struct save_ctx *c, struct filework *fw, int seg)
{
	pthread_mutex_lock(&c->lock);
	if (c->qlen == c->qcap) {
		size_t cap = c->qcap ? c->qcap * 2 : 1024;
		struct job *nq = ps_malloc(cap * sizeof(*nq));
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
	c->q[(c->qhead + c->qlen) % c->qcap] = (struct job){ fw, seg, NULL };
	c->qlen++;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Queues the segments of regular file i of d for the workers. */
static int queue_file(struct save_ctx *c, struct dnode *d, size_t i, uint64_t size)
{
	int nseg = (int)((size + SEG_SIZE - 1) / SEG_SIZE);
	struct filework *fw;
	if (nseg < 1)
		nseg = 1;
	fw = ps_calloc(1, sizeof(*fw) + (size_t)nseg * sizeof(fw->seg[0]));
	if (!fw)
		return -1;
	fw->d = d;
	fw->idx = i;
	fw->fd = -1;
	fw->nseg = nseg;
	fw->remaining = nseg;
	pthread_mutex_init(&fw->lock, NULL);
	__atomic_add_fetch(&d->pending, 1, __ATOMIC_ACQ_REL);
	for (int k = 0; k < nseg; k++) {
		if (enqueue(c, fw, k)) {
			/* finish the segments that were not queued as failed */
			struct ps_error err;
			ps_err(&err, PS_ERROR, "out of memory");
			fail(c, &err);
			for (int r = k; r < nseg; r++)
				if (__atomic_sub_fetch(&fw->remaining, 1, __ATOMIC_ACQ_REL) == 0)
					fw_finish(c, fw);
			return 0;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ walk */

struct namev {
	char **v;
	size_t n, cap;
};

static int name_sort(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	return ps_name_cmp((const uint8_t *)x, strlen(x), (const uint8_t *)y, strlen(y));
}

/* Lists a directory. Returns 0 or -errno. */
static int list_dir(int dfd, struct namev *out)
{
	int fd = dup(dfd);
	DIR *dir;
	struct dirent *de;
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		int e = errno;
		close(fd);
		return -e;
	}
	rewinddir(dir);
	errno = 0;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (out->n == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 64;
			char **v = ps_realloc(out->v, cap * sizeof(*v));
			if (!v) {
				closedir(dir);
				return -ENOMEM;
			}
			out->v = v;
			out->cap = cap;
		}
		if (!(out->v[out->n] = ps_strdup(de->d_name))) {
			closedir(dir);
			return -ENOMEM;
		}
		out->n++;
		errno = 0;
	}
	if (errno) {
		int e = errno;
		closedir(dir);
		return -e;
	}
	closedir(dir);
	ps_qsort(out->v, out->n, sizeof(*out->v), name_sort);
	return 0;
}

static void fill_meta(struct save_ctx *c, struct sentry *e, const struct stat *st)
{
	e->t.mode = st->st_mode & 07777;
	e->t.uid = c->uid >= 0 ? (uint32_t)c->uid : st->st_uid;
	e->t.gid = c->gid >= 0 ? (uint32_t)c->gid : st->st_gid;
	e->t.mtime_sec = st->st_mtim.tv_sec;
	e->t.mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
		/* a stable id for the inode: the same in every save of it */
		uint64_t g = ((uint64_t)major(st->st_dev) << 52) ^ ((uint64_t)minor(st->st_dev) << 40) ^
			     (uint64_t)st->st_ino;
		e->t.link_group = g ? g : 1;
	}
}


static int chunks_present(struct save_ctx *c, const struct ps_fcache_ent *fe)
{
	for (size_t i = 0; i < fe->nextents; i++)
		if (!ps_store_has(c->s, fe->extents[i].id, NULL))
			return 0;
	return 1;
}

static int copy_bytes(const uint8_t **dst, size_t *dlen, const uint8_t *src, size_t n)
{
	uint8_t *p;
	*dst = NULL;
	*dlen = 0;
	if (!n)
		return 0;
	if (!(p = ps_malloc(n)))
		return -1;
	memcpy(p, src, n);
	*dst = p;
	*dlen = n;
	return 0;
}

static void oom(struct save_ctx *c)
{
	struct ps_error err;
	ps_err(&err, PS_ERROR, "out of memory");
	fail(c, &err);
}

static void soft_error(struct save_ctx *c, struct dnode *d, struct sentry *e, const char *rel,
		       const char *msg)
{
	entry_set_error(e, msg);
	warn_entry(c, rel, msg);
	__atomic_store_n(&d->all_hit, 0, __ATOMIC_RELAXED);
}

static void walk_entry(struct save_ctx *c, struct dnode *d, size_t i)
{
	struct sentry *e = &d->ents[i];
	const char *name = (const char *)e->t.name;
	char *rel = join_path(d->path, name);
	char proc[64 + NAME_MAX], msg[320];
	const struct ps_fcache_ent *fe;
	struct ps_fcache_ent ne;
	struct stat st;
	int hit, xr;

	if (!rel) {
		oom(c);
		return;
	}
	if (fstatat(d->dfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		sdig_note(c, 'E', rel, NULL, errno);
		snprintf(msg, sizeof(msg), "cannot stat: %s", strerror(errno));
		soft_error(c, d, e, rel, msg);
		goto done;
	}
	sdig_note(c, 'N', rel, &st, 0);
	fill_meta(c, e, &st);
	fe = c->fc ? ps_fcache_find(c->fc, rel, strlen(rel)) : NULL;
	hit = fe && ps_fcache_match(fe, &st) &&
	      fe->kind == (S_ISREG(st.st_mode) ? PS_FC_FILE : S_ISDIR(st.st_mode) ? PS_FC_DIR : PS_FC_OTHER);
	if (hit && copy_bytes(&e->t.xattrs, &e->t.xattrs_len, fe->xattrs, fe->xattrs_len)) {
		oom(c);
		goto done;
	}
	if (hit)
		e->t.nxattrs = fe->nxattrs;
	memset(&ne, 0, sizeof(ne));
	ne.path = rel;
	ne.path_len = strlen(rel);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", d->dfd, name);

	if (S_ISREG(st.st_mode)) {
		e->t.type = PS_T_REG;
		e->t.size = (uint64_t)st.st_size;
		__atomic_add_fetch(&c->files, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&c->bytes_total, (uint64_t)st.st_size, __ATOMIC_RELAXED);
		if (hit && chunks_present(c, fe)) {
			uint64_t logical = 0;
			e->t.extents = ps_malloc(sizeof(*fe->extents) * (fe->nextents ? fe->nextents : 1));
			if (!e->t.extents) {
				oom(c);
				goto done;
			}
			memcpy(e->t.extents, fe->extents, sizeof(*fe->extents) * fe->nextents);
			e->t.nextents = fe->nextents;
			for (size_t k = 0; k < fe->nextents; k++)
				logical += fe->extents[k].len;
			__atomic_add_fetch(&c->logical, logical, __ATOMIC_RELAXED);
			__atomic_add_fetch(&c->apparent, (uint64_t)st.st_size, __ATOMIC_RELAXED);
			__atomic_add_fetch(&c->files_done, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&c->bytes_done, (uint64_t)st.st_size, __ATOMIC_RELAXED);
			ne.kind = PS_FC_FILE;
			ne.extents = e->t.extents;
			ne.nextents = e->t.nextents;
			ne.xattrs = (uint8_t *)e->t.xattrs;
			ne.xattrs_len = e->t.xattrs_len;
			ps_fcache_add(c->fc, &ne, &st);
			goto done;
		}
		__atomic_store_n(&d->all_hit, 0, __ATOMIC_RELAXED);
		if (hit) {           /* chunks gone (gc): re-read, and its xattrs too */
			ps_free((void *)e->t.xattrs);
			e->t.xattrs = NULL;
			e->t.xattrs_len = e->t.nxattrs = 0;
		}
		if (st.st_size == 0) {
			xr = read_xattrs(proc, -1, e);
			if (xr && xr != -EACCES && xr != -EPERM && xr != -ENOENT) {
				snprintf(msg, sizeof(msg), "cannot read extended attributes: %s", strerror(-xr));
				soft_error(c, d, e, rel, msg);
				goto done;
			}
			__atomic_add_fetch(&c->files_done, 1, __ATOMIC_RELAXED);
			ne.kind = PS_FC_FILE;
			ne.xattrs = (uint8_t *)e->t.xattrs;
			ne.xattrs_len = e->t.xattrs_len;
			ps_fcache_add(c->fc, &ne, &st);
			goto done;
		}
		if (queue_file(c, d, i, (uint64_t)st.st_size))
			oom(c);
		goto done;
	}

	if (S_ISDIR(st.st_mode)) {
		struct dnode *sub;
		e->t.type = PS_T_DIR;
		__atomic_add_fetch(&c->dirs, 1, __ATOMIC_RELAXED);
		if (st.st_dev != c->root_dev && !c->o->cross_filesystems) {
			/* a mount point: saved as an empty directory with its metadata */
			memcpy(e->t.subtree, c->empty_tree, 32);
			if (!hit)
				__atomic_store_n(&d->all_hit, 0, __ATOMIC_RELAXED);
			goto done;
		}
		if (d->depth >= PS_MAX_DEPTH) {
			sdig_note(c, 'D', rel, NULL, ELOOP);
			soft_error(c, d, e, rel, "directory nesting too deep");
			goto done;
		}
		sub = ps_calloc(1, sizeof(*sub));
		if (!sub) {
			oom(c);
			goto done;
		}
		sub->parent = d;
		sub->parent_idx = i;
		sub->dfd = -1;
		sub->path = rel;
		rel = NULL;
		sub->pending = 1;
		sub->st = st;
		sub->stat_hit = hit;
		sub->all_hit = 1;
		sub->depth = d->depth + 1;
		if (hit)
			memcpy(sub->cached_tree, fe->tree, 32);
		__atomic_add_fetch(&d->pending, 1, __ATOMIC_ACQ_REL);
		if (enqueue_dir(c, sub)) {
			oom(c);
			sub->broken = 1;
			dnode_release(c, sub);
		}
		goto done;
	}

	__atomic_add_fetch(&c->others, 1, __ATOMIC_RELAXED);
	if (!hit) {
		__atomic_store_n(&d->all_hit, 0, __ATOMIC_RELAXED);
		xr = read_xattrs(proc, -1, e);
		if (xr && xr != -EACCES && xr != -EPERM && xr != -ENOENT) {
			snprintf(msg, sizeof(msg), "cannot read extended attributes: %s", strerror(-xr));
			soft_error(c, d, e, rel, msg);
			goto done;
		}
	}
	if (S_ISLNK(st.st_mode)) {
		e->t.type = PS_T_SYMLINK;
		if (hit && fe->target_len && fe->target_len == (size_t)st.st_size) {
			if (copy_bytes(&e->t.target, &e->t.target_len, fe->target, fe->target_len)) {
				oom(c);
				goto done;
			}
		} else {
			size_t cap = (size_t)st.st_size + 2 > 65538 ? 65538 : (size_t)st.st_size + 2;
			char *buf = ps_malloc(cap);
			ssize_t n;
			if (!buf) {
				oom(c);
				goto done;
			}
			n = readlinkat(d->dfd, name, buf, cap - 1);
			__atomic_store_n(&d->all_hit, 0, __ATOMIC_RELAXED);
			if (n <= 0 || n > 65536 || (size_t)n > (size_t)st.st_size) {
				snprintf(msg, sizeof(msg), "cannot read symlink: %s",
					 n < 0 ? strerror(errno) : "it changed while being saved");
				ps_free(buf);
				soft_error(c, d, e, rel, msg);
				goto done;
			}
			e->t.target = (uint8_t *)buf;
			e->t.target_len = (size_t)n;
		}
		e->t.size = e->t.target_len;
	} else if (S_ISFIFO(st.st_mode)) {
		e->t.type = PS_T_FIFO;
	} else if (S_ISSOCK(st.st_mode)) {
		e->t.type = PS_T_SOCK;
	} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		e->t.type = S_ISCHR(st.st_mode) ? PS_T_CHR : PS_T_BLK;
		e->t.rdev = (uint64_t)st.st_rdev;
	} else {
		soft_error(c, d, e, rel, "unknown file type");
		goto done;
	}
	ne.kind = PS_FC_OTHER;
	ne.xattrs = (uint8_t *)e->t.xattrs;
	ne.xattrs_len = e->t.xattrs_len;
	ne.target = (uint8_t *)e->t.target;
	ne.target_len = e->t.target_len;
	ps_fcache_add(c->fc, &ne, &st);
done:
	ps_free(rel);
}

/* Runs as a job: opens directory d (relative to its parent's descriptor),
 * reads its xattrs unless the file cache has them, and walks it. */
static void open_and_walk(struct save_ctx *c, struct dnode *d)
{
	struct sentry *pe = &d->parent->ents[d->parent_idx];
	char msg[320];
	int xr;
	if (has_failed(c)) {
		d->broken = 1;
		dnode_release(c, d);
		return;
	}
	d->dfd = openat(d->parent->dfd, (const char *)pe->t.name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->dfd < 0) {
		sdig_note(c, 'L', d->path, NULL, errno);
		snprintf(msg, sizeof(msg), "cannot open directory: %s", strerror(errno));
		soft_error(c, d->parent, pe, d->path, msg);
		d->broken = 1;
		dnode_release(c, d);
		return;
	}
	pthread_mutex_lock(&c->lock);
	c->open_dirs++;
	pthread_mutex_unlock(&c->lock);
	if (!d->stat_hit) {
		xr = read_xattrs(NULL, d->dfd, pe);
		if (xr && xr != -EACCES && xr != -EPERM) {
			snprintf(msg, sizeof(msg), "cannot read extended attributes: %s", strerror(-xr));
			soft_error(c, d->parent, pe, d->path, msg);
			d->broken = 1;
			dnode_release(c, d);
			return;
		}
	}
	walk_dir(c, d);
}

static void walk_dir(struct save_ctx *c, struct dnode *d)
{
	struct namev names = { 0 };
	int r;
	size_t kept = 0;

	r = has_failed(c) ? 0 : list_dir(d->dfd, &names);
	if (r == -ENOMEM) {
		oom(c);   /* not the directory's fault: the save fails */
	} else if (r) {
		char msg[300];
		sdig_note(c, 'L', d->path, NULL, -r);
		snprintf(msg, sizeof(msg), "cannot list directory: %s", strerror(-r));
		d->broken = 1;
		if (d->parent) {
			soft_error(c, d->parent, &d->parent->ents[d->parent_idx], d->path, msg);
		} else {
			struct ps_error err;
			ps_err(&err, PS_ERROR, "cannot list '%s': %s", "the project directory", strerror(-r));
			fail(c, &err);
		}
	}
	d->ents = ps_calloc(names.n + 1, sizeof(*d->ents));
	if (!d->ents) {
		struct ps_error err;
		ps_err(&err, PS_ERROR, "out of memory");
		fail(c, &err);
	}
	for (size_t i = 0; i < names.n; i++) {
		char *rel;
		if (!d->ents || has_failed(c)) {
			ps_free(names.v[i]);
			continue;
		}
		rel = c->nexcludes ? join_path(d->path, names.v[i]) : NULL;
		if (rel && excluded(c, rel, names.v[i])) {
			ps_free(names.v[i]);
			ps_free(rel);
			continue;
		}
		ps_free(rel);
		d->ents[kept].t.name = (const uint8_t *)names.v[i];
		d->ents[kept].t.name_len = strlen(names.v[i]);
		kept++;
	}
	ps_free(names.v);
	d->n = kept;
	/* entries are complete before any job or subdirectory can finish this
	 * directory, because the walker holds one count until the end */
	for (size_t i = 0; i < d->n && !has_failed(c); i++)
		walk_entry(c, d, i);
	dnode_release(c, d);
}

/* ------------------------------------------------------------ driver */

static void report(struct save_ctx *c)
{
	if (c->o->progress)
		c->o->progress(c->o->cb_ctx, "save", __atomic_load_n(&c->files_done, __ATOMIC_RELAXED),
			       __atomic_load_n(&c->files, __ATOMIC_RELAXED),
			       __atomic_load_n(&c->bytes_done, __ATOMIC_RELAXED),
			       __atomic_load_n(&c->bytes_total, __ATOMIC_RELAXED));
}

/* 1 when the walked tree and the root directory's own metadata are those of
 * snapshot `prev` (what a new snapshot would record equals what it records). */
static int same_as_newest(const struct ps_snapshot_info *prev, const struct save_ctx *c,
			  const struct stat *rst)
{
	uint32_t uid = c->uid >= 0 ? (uint32_t)c->uid : rst->st_uid;
	uint32_t gid = c->gid >= 0 ? (uint32_t)c->gid : rst->st_gid;
	return !memcmp(prev->root, c->root_id, 32) && prev->root_mode == (rst->st_mode & 07777) &&
	       prev->root_uid == uid && prev->root_gid == gid &&
	       prev->root_mtime_sec == rst->st_mtim.tv_sec &&
	       prev->root_mtime_nsec == (uint32_t)rst->st_mtim.tv_nsec;
}

/* ------------------------------------------------------------ group commit */

struct batch_ent {
	struct ps_lock *lock;         /* held until the ref is published */
	struct ps_fcache *fc;         /* committed after the ref */
	struct ps_snapshot_info info; /* to publish (publish = 1) */
	int publish;
	int result;                   /* after the commit */
};

struct ps_save_batch {
	struct batch_ent *v;
	size_t n, cap;
	size_t committed;             /* v[0 .. committed) are done */
	struct ps_error first_err;    /* of an early commit */
};

int ps_save_batch_new(struct ps_save_batch **out, struct ps_error *err)
{
	*out = ps_calloc(1, sizeof(**out));
	return *out ? PS_OK : ps_err(err, PS_ERROR, "out of memory");
}

size_t ps_save_batch_count(const struct ps_save_batch *b) { return b ? b->n : 0; }

static int batch_add(struct ps_save_batch *b, struct ps_lock *lock, struct ps_fcache *fc,
		     const struct ps_snapshot_info *info, int publish, struct ps_error *err)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct batch_ent *v = ps_realloc(b->v, cap * sizeof(*v));
		if (!v)
			return ps_err(err, PS_ERROR, "out of memory");
		b->v = v;
		b->cap = cap;
	}
	memset(&b->v[b->n], 0, sizeof(b->v[b->n]));
	b->v[b->n].lock = lock;
	b->v[b->n].fc = fc;
	b->v[b->n].info = *info;
	b->v[b->n].publish = publish;
	b->n++;
	return PS_OK;
}

/* Makes the saves v[committed .. n) durable and visible: one flush (the open
 * pack, one index segment for all of them), then the refs in order, then the
 * file caches and the locks. */
static int batch_commit_pending(struct ps_store *s, struct ps_save_batch *b, struct ps_error *err)
{
	struct ps_error e1;
	int rc, first = PS_OK, published = 0;
	if (b->committed == b->n)
		return PS_OK;
	ps_error_clear(&e1);
	rc = ps_store_flush(s, &e1);
	if (rc) {
		ps_store_abort(s);
		first = rc;
		if (err)
			*err = e1;
	}
	/* the refs of the saves that publish, as one group */
	if (!rc) {
		const struct ps_snapshot_info **pv = ps_calloc(b->n - b->committed + 1, sizeof(*pv));
		int *prc = ps_calloc(b->n - b->committed + 1, sizeof(*prc));
		size_t np = 0;
		if (!pv || !prc) {
			rc = ps_err(&e1, PS_ERROR, "out of memory");
			if (!first) {
				first = rc;
				if (err)
					*err = e1;
			}
		} else {
			struct ps_error e2;
			int r;
			for (size_t i = b->committed; i < b->n; i++)
				if (b->v[i].publish)
					pv[np++] = &b->v[i].info;
			ps_error_clear(&e2);
			r = ps_ref_publish_many(s, np, pv, prc, &e2);
			if (r && !first) {
				first = r;
				if (err)
					*err = e2;
			}
			np = 0;
			for (size_t i = b->committed; i < b->n; i++)
				if (b->v[i].publish) {
					b->v[i].result = prc[np++];
					published += !b->v[i].result;
				}
		}
		ps_free(pv);
		ps_free(prc);
	}
	for (size_t i = b->committed; i < b->n; i++) {
		struct batch_ent *e = &b->v[i];
		/* a save that publishes nothing (unchanged) needs nothing of the
		 * flush; its cache is kept only when the flush went well */
		if (rc)
			e->result = e->publish ? rc : PS_OK;
		else if (!e->publish)
			e->result = PS_OK;
		if (rc && e->fc) {
			ps_fcache_free(e->fc);
			e->fc = NULL;
		}
		if (!e->result && e->fc)
			ps_fcache_commit(e->fc, NULL);   /* a lost cache only costs speed */
		ps_fcache_free(e->fc);
		e->fc = NULL;
		ps_lock_release(e->lock);
		e->lock = NULL;
	}
	b->committed = b->n;
	if (published)
		ps_index_compact(s, 32, NULL);
	return first;
}

int ps_save_batch_commit(struct ps_store *s, struct ps_save_batch *b, int *results,
			 struct ps_error *err)
{
	struct ps_error e1;
	int rc, first = PS_OK;
	ps_error_clear(&e1);
	rc = batch_commit_pending(s, b, &e1);
	for (size_t i = 0; i < b->n; i++) {
		if (results)
			results[i] = b->v[i].result;
		if (b->v[i].result && !first) {
			first = b->v[i].result;
			if (err)
				*err = i < b->committed && b->first_err.code ? b->first_err : e1;
		}
	}
	if (rc && !first) {
		first = rc;
		if (err)
			*err = e1;
	}
	b->n = b->committed = 0;
	ps_error_clear(&b->first_err);
	return first;
}

void ps_save_batch_free(struct ps_store *s, struct ps_save_batch *b)
{
	if (!b)
		return;
	if (b->committed < b->n && s)
		ps_store_abort(s);
	for (size_t i = b->committed; i < b->n; i++) {
		ps_fcache_free(b->v[i].fc);
		ps_lock_release(b->v[i].lock);
	}
	ps_free(b->v);
	ps_free(b);
}

/* Long saves push their locks' expiry forward; in a batch, the waiting
 * saves' locks too. */
static int refresh_locks(struct ps_lock *lock, struct ps_save_batch *b, struct ps_error *err)
{
	int rc = ps_lock_refresh(lock, err);
	for (size_t i = b ? b->committed : 0; !rc && b && i < b->n; i++)
		rc = ps_lock_refresh(b->v[i].lock, err);
	return rc;
}

int ps_save(struct ps_store *s, const char *project, const char *dir,
	    const struct ps_save_opts *opts, struct ps_snapshot_info *out, struct ps_error *err)
{
	struct ps_save_opts defo = PS_SAVE_OPTS_INIT;
	struct save_ctx *c = NULL;
	struct ps_settings settings = { 0 };
	struct ps_lock *lock = NULL;
	struct ps_snapshot_info *prev = NULL;
	struct dnode *root = NULL;
	pthread_t *threads = NULL;
	size_t nprev = 0;
	int nthreads = 0, rc, root_fd = -1;
	int64_t t0 = ps_now_ns(), m0 = ps_mono_ns(), last_refresh = m0;
	const char *fake = getenv("PROJSTORE_FAKE_TIME");
	struct stat rst;
	struct ps_buf empty = PS_BUF_INIT;
	struct ps_save_batch *batch;

	if (!opts)
		opts = &defo;
	batch = opts->batch;
	if (fake && *fake)   /* tests of retention: seconds since the epoch */
		t0 = (int64_t)(strtod(fake, NULL) * 1e9);
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL,
			      "invalid project id '%s' (expected [a-z0-9][a-z0-9._-]{0,63})", project);
	root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return ps_err_sys(err, "cannot open directory '%s'", dir);
	if (fstat(root_fd, &rst)) {
		rc = ps_err_sys(err, "cannot stat '%s'", dir);
		close(root_fd);
		return rc;
	}
	c = ps_calloc(1, sizeof(*c));
	if (!c) {
		close(root_fd);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	c->s = s;
	c->o = opts;
	c->uid = opts->uid;
	c->gid = opts->gid;
	c->root_dev = rst.st_dev;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->warn_lock, NULL);
	pthread_mutex_init(&c->sdig_lock, NULL);
	sdig_note(c, 'R', "", &rst, 0);
	pthread_cond_init(&c->cond, NULL);
	ps_raise_nofile();

	rc = ps_lock_acquire(s, project, opts->lock_timeout, LOCK_TTL, &lock, err);
	if (rc)
		goto done;
	/* leftovers of dead writers: temp files go, finished packs are indexed
	 * (before the index is loaded, so this save dedups against them) */
	ps_store_clean_tmp(s, "tmp", NULL, NULL);
	ps_store_clean_tmp(s, "locks", NULL, NULL);
	/* a handle that served earlier saves is brought up to date: what was
	 * condemned or published since must be seen by this save */
	rc = ps_store_refresh(s, err);
	if (rc && batch && batch->committed < batch->n) {
		/* the index changed under the batch's unflushed writes (a
		 * compaction): publish what the batch holds, then load again */
		struct ps_error e2;
		ps_error_clear(&e2);
		if (batch_commit_pending(s, batch, &e2) && !batch->first_err.code)
			batch->first_err = e2;
		rc = ps_store_refresh(s, err);
	}
	if (rc)
		goto done;
	/* what this save adds (a store handle may serve several saves) */
	s->new_objects = s->new_raw = s->new_stored = 0;
	rc = ps_settings_load(s, project, &settings, err);
	if (rc)
		goto done;
	c->comp = s->compression;
	{
		const char *cs = opts->compression ? opts->compression
			       : settings.compression[0] ? settings.compression : NULL;
		if (cs && ps_compression_parse(cs, &c->comp)) {
			rc = ps_err(err, PS_EINVAL, "invalid compression '%s' (zstd[:1-19], lz4, none)", cs);
			goto done;
		}
	}
	/* excludes: command line plus the project's stored list */
	{
		size_t n = settings.nexcludes;
		for (const char *const *p = opts->excludes; p && *p; p++)
			n++;
		c->excludes = ps_calloc(n + 1, sizeof(char *));
		if (!c->excludes) {
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto done;
		}
		for (size_t i = 0; i < settings.nexcludes; i++)
			c->excludes[c->nexcludes++] = settings.excludes[i];
		for (const char *const *p = opts->excludes; p && *p; p++)
			c->excludes[c->nexcludes++] = (char *)*p;
	}
	rc = ps_snapshot_list(s, project, &prev, &nprev, err);
	if (rc)
		goto done;
	{
		/* what shapes trees besides the entries: a cache made with other
		 * settings may not lend its tree ids */
		struct ps_buf pb = PS_BUF_INIT;
		uint8_t params[32] = { 0 };
		ps_buf_printf(&pb, "uid %ld gid %ld cross %d", opts->uid, opts->gid,
			      opts->cross_filesystems);
		for (size_t i = 0; i < c->nexcludes; i++) {
			ps_buf_append(&pb, "\0", 1);
			ps_buf_append(&pb, c->excludes[i], strlen(c->excludes[i]));
		}
		if (pb.data)
			ps_sha256(pb.data, pb.len, params);
		ps_buf_release(&pb);
		ps_fcache_open(&c->fc, opts->cache_dir, s->id, project, dir, params);
	}
	/* the empty tree, for mount points */
	if (ps_tree_encode(NULL, 0, &empty)) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	rc = ps_store_put(s, PS_OBJ_TREE, empty.data, empty.len, NULL, &c->comp, c->empty_tree, NULL,
			  err);
	if (rc)
		goto done;

	c->nthreads = opts->threads > 0 ? opts->threads : ps_ncpus();
	/* One worker: the calling thread does the work itself after walking the
	 * root (no thread to start, no hand-over per file, and its compression
	 * context and buffers stay warm across the saves of a process). */
	c->inline_mode = c->nthreads == 1;
	c->save_lock = lock;
	c->batch = batch;
	c->last_report = c->last_refresh = ps_mono_ns();
	threads = ps_calloc((size_t)c->nthreads, sizeof(*threads));
	root = ps_calloc(1, sizeof(*root));
	if (root)
		root->dfd = -1;
	if (!threads || !root || !(root->path = ps_strdup(""))) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	/* nthreads counts the threads really started: cleanup joins those */
	for (int i = 0; i < c->nthreads && !c->inline_mode; i++, nthreads++)
		if (pthread_create(&threads[i], NULL, worker_main, c))
			break;
	if (!nthreads && !c->inline_mode) {
		rc = ps_err(err, PS_ERROR, "cannot start worker threads");
		goto done;
	}
	root->dfd = root_fd;
	root_fd = -1;
	root->pending = 1;
	root->st = rst;
	root->all_hit = 1;
	{
		const struct ps_fcache_ent *rfe = c->fc ? ps_fcache_find(c->fc, "", 0) : NULL;
		if (rfe && rfe->kind == PS_FC_DIR && ps_fcache_match(rfe, &rst)) {
			root->stat_hit = 1;
			memcpy(root->cached_tree, rfe->tree, 32);
		}
	}
	c->open_dirs = 1;
	walk_dir(c, root);
	root = NULL;     /* owned by the pipeline now */
	if (c->inline_mode) {
		/* every job runs here: when the queues are empty all is done */
		pthread_mutex_lock(&c->lock);
		c->stop = 1;
		pthread_mutex_unlock(&c->lock);
		worker_main(c);
		pthread_mutex_lock(&c->lock);
		if (!c->root_done && !c->failed) {   /* cannot happen: no job is lost */
			c->failed = 1;
			ps_err(&c->err, PS_ERROR, "the save ended with work left undone");
		}
		c->root_done = 1;
		pthread_mutex_unlock(&c->lock);
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
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		pthread_mutex_unlock(&c->lock);
		report(c);
		if (ps_mono_ns() - last_refresh > 60LL * 1000000000LL) {
			struct ps_error lerr;
			last_refresh = ps_mono_ns();
			if (refresh_locks(lock, batch, &lerr))
				fail(c, &lerr);
		}
		pthread_mutex_lock(&c->lock);
	}
	c->stop = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	nthreads = 0;
	report(c);

	if (c->failed) {
		*err = c->err;
		rc = c->err.code ? c->err.code : PS_ERROR;
		/* what was written is valid: index it so the next save reuses it
		 * (in a batch, the commit does) */
		if (!batch)
			ps_store_flush(s, NULL);
		goto done;
	}
	if (!batch) {
		rc = ps_store_flush(s, err);
		if (rc)
			goto done;
	}
	if (opts->stat_digest && (c->sdig_failed || ps_sdig_final(&c->sdig, opts->stat_digest))) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}

	if (opts->skip_unchanged && nprev && same_as_newest(&prev[nprev - 1], c, &rst)) {
		/* nothing to publish; the cache may still have learned new stats
		 * (a ctime bump), and every id in it is referenced by that snapshot */
		*out = prev[nprev - 1];
		out->unchanged = 1;
		out->new_objects = out->new_raw_bytes = out->new_bytes = 0;
		out->errors = c->errors;
		out->quota_bytes = settings.quota;
		out->over_quota = settings.quota && out->logical_bytes > settings.quota;
		out->duration_ms = (ps_mono_ns() - m0) / 1000000;
		if (batch) {
			rc = batch_add(batch, lock, c->fc, out, 0, err);
			if (!rc)
				lock = NULL, c->fc = NULL;
			goto done;
		}
		if (c->fc)
			ps_fcache_commit(c->fc, NULL);
		goto done;
	}
	memset(out, 0, sizeof(*out));
	snprintf(out->project, sizeof(out->project), "%s", project);
	ps_snapshot_name(t0, out->name, sizeof(out->name));
	out->time_ns = t0;
	memcpy(out->root, c->root_id, 32);
	if (nprev)
		snprintf(out->parent, sizeof(out->parent), "%s", prev[nprev - 1].name);
	snprintf(out->origin, sizeof(out->origin), "%s", ps_hostname());
	out->files = c->files;
	out->dirs = c->dirs + 1;
	out->others = c->others;
	out->logical_bytes = c->logical;
	out->apparent_bytes = c->apparent;
	out->new_objects = s->new_objects;
	out->new_raw_bytes = s->new_raw;
	out->new_bytes = s->new_stored;
	out->errors = c->errors;
	out->quota_bytes = settings.quota;
	out->over_quota = settings.quota && c->logical > settings.quota;
	out->duration_ms = (ps_mono_ns() - m0) / 1000000;
	out->root_mode = rst.st_mode & 07777;
	out->root_uid = opts->uid >= 0 ? (uint32_t)opts->uid : rst.st_uid;
	out->root_gid = opts->gid >= 0 ? (uint32_t)opts->gid : rst.st_gid;
	out->root_mtime_sec = rst.st_mtim.tv_sec;
	out->root_mtime_nsec = (uint32_t)rst.st_mtim.tv_nsec;
	if (batch) {
		/* published by ps_save_batch_commit, after the batch's flush */
		rc = batch_add(batch, lock, c->fc, out, 1, err);
		if (!rc)
			lock = NULL, c->fc = NULL;
		goto done;
	}
	rc = ps_ref_publish(s, out, err);
	if (rc)
		goto done;
	if (c->fc)
		ps_fcache_commit(c->fc, NULL);   /* a lost cache only costs speed */
	ps_index_compact(s, 32, NULL);
done:
	if (nthreads) {
		pthread_mutex_lock(&c->lock);
		c->stop = 1;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		for (int i = 0; i < nthreads; i++)
			pthread_join(threads[i], NULL);
	}
	if (rc && !batch)
		ps_store_abort(s);   /* (a batch's pack holds the other saves' objects) */
	ps_lock_release(lock);
	if (root) {
		if (root->dfd >= 0)
			close(root->dfd);
		ps_free(root->path);
		ps_free(root);
	}
	if (root_fd >= 0)
		close(root_fd);
	ps_free(threads);
	ps_free(prev);
	ps_buf_release(&empty);
	if (c) {
		ps_fcache_free(c->fc);
		ps_free(c->excludes);
		ps_free(c->q);
		ps_free(c->dq);
		pthread_mutex_destroy(&c->lock);
		pthread_mutex_destroy(&c->warn_lock);
		pthread_mutex_destroy(&c->sdig_lock);
		pthread_cond_destroy(&c->cond);
		ps_free(c);
	}
	ps_settings_release(&settings);
	return rc;
}
