/*
 * snap_digest.c - the stat digest of a tree: what a stat walk sees of every
 * entry a save would save (its relative path, type and mode, owner, link
 * count, size, inode, device, mtime and ctime), summed so that the order of
 * the walk does not matter.
 *
 * Each entry is a record hashed on its own (SHA-256); the digest is the sum
 * of those hashes modulo 2^256, with the number of entries, hashed once more
 * at the end. A save (opts.stat_digest) adds every entry as its workers stat
 * it, in whatever order; ps_stat_digest walks the same entries one after the
 * other and gets the same digest when nothing changed. Any change a save
 * could see changes it: content changes move mtime or ctime, metadata and
 * xattr changes move ctime, and added, removed or renamed entries change the
 * set of records.
 *
 * It decides only whether a tree must be read again (migrate's second
 * pass), never what is stored. An additive digest of independent hashes can
 * in principle be steered by someone who controls very many entries and
 * their timestamps (a generalised birthday search over 2^256); the worst
 * such a user could reach is that a rerun of migrate skips their own
 * project's changes, which the next save of the project picks up.
 */
#define _GNU_SOURCE
#include "snap_int.h"
#include "../hash/hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SDIG_VERSION 1

static void put32(uint8_t *p, uint32_t v) { ps_put_le32(p, v); }
static void put64(uint8_t *p, uint64_t v)
{
	ps_put_le32(p, (uint32_t)v);
	ps_put_le32(p + 4, (uint32_t)(v >> 32));
}

void ps_sdig_init(struct ps_sdig *d)
{
	memset(d, 0, sizeof(*d));
}

/* sum += h (both little-endian 256-bit numbers), modulo 2^256 */
static void add256(uint64_t sum[4], const uint8_t h[32])
{
	unsigned carry = 0;
	for (int i = 0; i < 4; i++) {
		uint64_t w = 0, s;
		for (int b = 7; b >= 0; b--)
			w = (w << 8) | h[i * 8 + b];
		s = sum[i] + w;
		unsigned c1 = s < w;
		sum[i] = s + carry;
		carry = c1 | (sum[i] < s);
	}
}

int ps_sdig_hash(char kind, const char *rel, const struct stat *st, int err, uint8_t h[32])
{
	/* the record and the path hashed in one go (ps_sha256 keeps a context
	 * per thread): no allocation per entry but for very long paths */
	uint8_t stackbuf[96 + 1024], *rec = stackbuf;
	size_t rl = strlen(rel);
	int rc;
	if (rl > sizeof(stackbuf) - 96 && !(rec = ps_malloc(96 + rl)))
		return -1;
	memset(rec, 0, 96);
	put32(rec, SDIG_VERSION);
	rec[4] = (uint8_t)kind;
	put32(rec + 8, (uint32_t)rl);
	if (st) {
		put32(rec + 12, st->st_mode);
		put32(rec + 16, st->st_uid);
		put32(rec + 20, st->st_gid);
		put64(rec + 24, (uint64_t)st->st_nlink);
		put64(rec + 32, (uint64_t)st->st_size);
		put64(rec + 40, (uint64_t)st->st_ino);
		put64(rec + 48, (uint64_t)st->st_dev);
		put64(rec + 56, (uint64_t)st->st_mtim.tv_sec);
		put64(rec + 64, (uint64_t)st->st_mtim.tv_nsec);
		put64(rec + 72, (uint64_t)st->st_ctim.tv_sec);
		put64(rec + 80, (uint64_t)st->st_ctim.tv_nsec);
	} else {
		put32(rec + 12, (uint32_t)err);
	}
	memcpy(rec + 96, rel, rl);
	rc = ps_sha256(rec, 96 + rl, h) ? -1 : 0;
	if (rec != stackbuf)
		ps_free(rec);
	return rc;
}

void ps_sdig_addh(struct ps_sdig *d, const uint8_t h[32], int is_error)
{
	add256(d->sum, h);
	d->entries++;
	d->errors += !!is_error;
}

int ps_sdig_add(struct ps_sdig *d, char kind, const char *rel, const struct stat *st, int err)
{
	uint8_t h[32];
	if (ps_sdig_hash(kind, rel, st, err, h))
		return -1;
	ps_sdig_addh(d, h, !st);
	return 0;
}

void ps_sdig_merge(struct ps_sdig *into, const struct ps_sdig *from)
{
	uint8_t h[32];
	for (int i = 0; i < 4; i++)
		put64(h + i * 8, from->sum[i]);
	add256(into->sum, h);
	into->entries += from->entries;
	into->errors += from->errors;
}

int ps_sdig_final(const struct ps_sdig *d, struct ps_stat_digest *out)
{
	uint8_t buf[48];
	for (int i = 0; i < 4; i++)
		put64(buf + i * 8, d->sum[i]);
	put64(buf + 32, d->entries);
	put64(buf + 40, SDIG_VERSION);
	if (ps_sha256(buf, sizeof(buf), out->digest))
		return -1;
	out->entries = d->entries;
	out->errors = d->errors;
	return 0;
}

int ps_excluded(char *const *pats, size_t n, const char *rel, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = pats[i];
		if (!strchr(p, '/')) {
			if (!fnmatch(p, name, 0))
				return 1;
		} else {
			while (*p == '/')
				p++;
			if (!fnmatch(p, rel, FNM_PATHNAME))
				return 1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ the walk */

struct dwalk {
	struct ps_sdig d;
	char **ex;
	size_t nex;
	dev_t root_dev;
	int cross;
	int oom;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}


/* The entries of the directory open as dfd (whose path is rel), as the save
 * would take them: every name but the excluded ones, each stat'ed; the
 * subdirectories on the same file system (or any, with cross) walked in
 * turn, to the save's depth limit. The directory's own record was added by
 * its parent (the root's by the caller). A directory that cannot be listed
 * counts as an error. */
static void walk(struct dwalk *w, int dfd, const char *rel, int depth)
{
	int fd2 = dup(dfd);
	DIR *dir = fd2 >= 0 ? fdopendir(fd2) : NULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	if (!dir) {
		if (fd2 >= 0)
			close(fd2);
		ps_sdig_add(&w->d, 'L', rel, NULL, errno);
		return;
	}
	errno = 0;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (n == cap) {
			char **nv = ps_realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*nv));
			if (!nv) {
				w->oom = 1;
				break;
			}
			names = nv;
		}
		if (!(names[n] = ps_strdup(de->d_name))) {
			w->oom = 1;
			break;
		}
		n++;
		errno = 0;
	}
	if (errno && !w->oom)
		ps_sdig_add(&w->d, 'L', rel, NULL, errno);
	closedir(dir);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n && !w->oom; i++) {
		struct stat st;
		char *crel = ps_path_join(rel, names[i], strlen(names[i]));
		int cfd;
		if (!crel) {
			w->oom = 1;
			break;
		}
		if (w->nex && ps_excluded(w->ex, w->nex, crel, names[i])) {
			ps_free(crel);
			continue;
		}
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW)) {
			ps_sdig_add(&w->d, 'E', crel, NULL, errno);
			ps_free(crel);
			continue;
		}
		if (ps_sdig_add(&w->d, 'N', crel, &st, 0))
			w->oom = 1;
		if (S_ISDIR(st.st_mode) && (st.st_dev == w->root_dev || w->cross)) {
			if (depth >= PS_MAX_DEPTH) {
				ps_sdig_add(&w->d, 'D', crel, NULL, ELOOP);
			} else if ((cfd = openat(dfd, names[i],
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
				ps_sdig_add(&w->d, 'L', crel, NULL, errno);
			} else {
				walk(w, cfd, crel, depth + 1);
				close(cfd);
			}
		}
		ps_free(crel);
	}
	for (size_t i = 0; i < n; i++)
		ps_free(names[i]);
	ps_free(names);
}

int ps_stat_digest(struct ps_store *s, const char *project, const char *dir,
		   const struct ps_save_opts *opts, struct ps_stat_digest *out, struct ps_error *err)
{
	struct ps_save_opts defo = PS_SAVE_OPTS_INIT;
	struct ps_settings settings;
	struct dwalk w;
	struct stat rst;
	size_t n = 0;
	int fd, rc;
	if (!opts)
		opts = &defo;
	memset(&w, 0, sizeof(w));
	memset(&settings, 0, sizeof(settings));
	rc = ps_settings_load(s, project, &settings, err);
	if (rc)
		return rc;
	for (const char *const *p = opts->excludes; p && *p; p++)
		n++;
	w.ex = ps_calloc(settings.nexcludes + n + 1, sizeof(char *));
	if (!w.ex) {
		ps_settings_release(&settings);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	for (size_t i = 0; i < settings.nexcludes; i++)
		w.ex[w.nex++] = settings.excludes[i];
	for (const char *const *p = opts->excludes; p && *p; p++)
		w.ex[w.nex++] = (char *)*p;
	w.cross = opts->cross_filesystems;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &rst)) {
		rc = ps_err_sys(err, "cannot open directory '%s'", dir);
		if (fd >= 0)
			close(fd);
		goto done;
	}
	w.root_dev = rst.st_dev;
	ps_sdig_add(&w.d, 'R', "", &rst, 0);
	walk(&w, fd, "", 0);
	close(fd);
	if (w.oom || ps_sdig_final(&w.d, out))
		rc = ps_err(err, PS_ERROR, "out of memory");
done:
	ps_free(w.ex);
	ps_settings_release(&settings);
	return rc;
}
