/*
 * treecmp - compare two directory trees entry by entry.
 *
 *   treecmp [--no-owner] [--no-atime] [--no-root] [--no-xattrs] [--no-holes] A B
 *
 * Never follows symlinks (lstat).  Compares, for every entry: type, mode
 * (including setuid/setgid/sticky), uid, gid, size, mtime with nanoseconds
 * (also for directories and symlinks), atime (unless --no-atime; taken before
 * any content is read), content of regular files, symlink targets, device
 * numbers, extended attributes (every namespace that can be read, except
 * security.selinux), hardlink groups (entries sharing an inode in A must share
 * one in B and vice versa) and the map of data regions and holes of regular
 * files (SEEK_DATA/SEEK_HOLE, rounded to the filesystem block size).
 *
 * The roots themselves are compared too (mode, owner, times, xattrs) unless
 * --no-root is given.
 *
 * Every difference is printed as "path: what differs" (path relative to the
 * roots, "." for the roots, bytes outside printable ASCII escaped as \xHH).
 * Exit status: 0 identical, 1 differences found, 2 usage or fatal error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static int opt_owner = 1, opt_atime = 1, opt_root = 1, opt_xattrs = 1, opt_holes = 1;
static unsigned long ndiff;

/* ------------------------------------------------------------- utilities */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "treecmp: out of memory\n");
		exit(2);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "treecmp: out of memory\n");
		exit(2);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);
	memcpy(p, s, n);
	return p;
}

static void put_escaped(FILE *f, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\')
			fputs("\\\\", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static void report(const char *rel, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(const char *rel, const char *fmt, ...)
{
	va_list ap;

	put_escaped(stdout, rel, strlen(rel));
	fputs(": ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	ndiff++;
}

static char *join(const char *rel, const char *name)
{
	size_t a = strlen(rel), b = strlen(name);
	char *p;

	if (a == 1 && rel[0] == '.')
		return xstrdup(name);
	p = xmalloc(a + 1 + b + 1);
	memcpy(p, rel, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFCHR: return "char device";
	case S_IFBLK: return "block device";
	case S_IFSOCK: return "socket";
	default: return "unknown";
	}
}

/* ----------------------------------------------------- hardlink tracking */

struct ino_slot {
	dev_t dev;
	ino_t ino;
	char *path; /* NULL = empty slot */
};

struct ino_map {
	struct ino_slot *v;
	size_t cap, n;
};

static struct ino_map links_a, links_b;

static size_t ino_hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4fULL;
	return (size_t)(h ^ (h >> 29));
}

/* Returns the first path recorded for (dev, ino), recording `path` if none. */
static const char *ino_first(struct ino_map *m, dev_t dev, ino_t ino, const char *path)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 1024;
		struct ino_slot *nv = xmalloc(ncap * sizeof *nv);
		memset(nv, 0, ncap * sizeof *nv);
		for (size_t k = 0; k < m->cap; k++) {
			if (!m->v[k].path)
				continue;
			i = ino_hash(m->v[k].dev, m->v[k].ino) & (ncap - 1);
			while (nv[i].path)
				i = (i + 1) & (ncap - 1);
			nv[i] = m->v[k];
		}
		free(m->v);
		m->v = nv;
		m->cap = ncap;
	}
	i = ino_hash(dev, ino) & (m->cap - 1);
	while (m->v[i].path) {
		if (m->v[i].dev == dev && m->v[i].ino == ino)
			return m->v[i].path;
		i = (i + 1) & (m->cap - 1);
	}
	m->v[i].dev = dev;
	m->v[i].ino = ino;
	m->v[i].path = xstrdup(path);
	m->n++;
	return m->v[i].path;
}

/* -------------------------------------------------------------- listing */

struct names {
	char **v;
	size_t n, cap;
};

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_dir(int dfd, struct names *out)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	memset(out, 0, sizeof *out);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (out->n == out->cap) {
			out->cap = out->cap ? out->cap * 2 : 64;
			out->v = xrealloc(out->v, out->cap * sizeof *out->v);
		}
		out->v[out->n++] = xstrdup(de->d_name);
	}
	if (errno) {
		int e = errno;
		closedir(d);
		errno = e;
		return -1;
	}
	closedir(d);
	qsort(out->v, out->n, sizeof *out->v, cmp_names);
	return 0;
}

static void free_names(struct names *n)
{
	for (size_t i = 0; i < n->n; i++)
		free(n->v[i]);
	free(n->v);
}

/* --------------------------------------------------------------- xattrs */

struct xattr {
	char *name;
	char *value;
	ssize_t len;
};

struct xattrs {
	struct xattr *v;
	size_t n;
};

static int cmp_xattr(const void *a, const void *b)
{
	return strcmp(((const struct xattr *)a)->name, ((const struct xattr *)b)->name);
}

static void free_xattrs(struct xattrs *x)
{
	for (size_t i = 0; i < x->n; i++) {
		free(x->v[i].name);
		free(x->v[i].value);
	}
	free(x->v);
	x->v = NULL;
	x->n = 0;
}

/* Reads the xattrs of entry `name` of directory `dfd` (name NULL: of the
 * directory itself).  Returns 0, or -1 with errno set. */
static int read_xattrs(int dfd, const char *name, struct xattrs *out)
{
	char path[64 + 256];
	char *list = NULL;
	ssize_t len;
	int follow = name == NULL;

	memset(out, 0, sizeof *out);
	if (name)
		snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dfd, name);
	else
		snprintf(path, sizeof path, "/proc/self/fd/%d", dfd);

	for (;;) {
		len = follow ? listxattr(path, NULL, 0) : llistxattr(path, NULL, 0);
		if (len < 0) {
			if (errno == ENOTSUP || errno == ENODATA)
				return 0;
			return -1;
		}
		if (len == 0)
			return 0;
		list = xrealloc(list, (size_t)len);
		len = follow ? listxattr(path, list, (size_t)len) : llistxattr(path, list, (size_t)len);
		if (len >= 0)
			break;
		if (errno != ERANGE) {
			free(list);
			return -1;
		}
	}

	for (char *p = list; p < list + len; p += strlen(p) + 1) {
		ssize_t vlen;
		char *val = NULL;

		if (!strcmp(p, "security.selinux"))
			continue;
		for (;;) {
			vlen = follow ? getxattr(path, p, NULL, 0) : lgetxattr(path, p, NULL, 0);
			if (vlen < 0)
				break;
			val = xrealloc(val, (size_t)vlen + 1);
			vlen = follow ? getxattr(path, p, val, (size_t)vlen) : lgetxattr(path, p, val, (size_t)vlen);
			if (vlen >= 0 || errno != ERANGE)
				break;
		}
		if (vlen < 0) {
			/* a namespace we may not read: skip it */
			free(val);
			continue;
		}
		out->v = xrealloc(out->v, (out->n + 1) * sizeof *out->v);
		out->v[out->n].name = xstrdup(p);
		out->v[out->n].value = val;
		out->v[out->n].len = vlen;
		out->n++;
	}
	free(list);
	qsort(out->v, out->n, sizeof *out->v, cmp_xattr);
	return 0;
}

static void compare_xattrs(const char *rel, int dfa, int dfb, const char *name)
{
	struct xattrs xa, xb;
	size_t i = 0, j = 0;

	if (read_xattrs(dfa, name, &xa) < 0) {
		report(rel, "cannot read xattrs in A: %s", strerror(errno));
		return;
	}
	if (read_xattrs(dfb, name, &xb) < 0) {
		report(rel, "cannot read xattrs in B: %s", strerror(errno));
		free_xattrs(&xa);
		return;
	}
	while (i < xa.n || j < xb.n) {
		int c = i < xa.n && j < xb.n ? strcmp(xa.v[i].name, xb.v[j].name) : i < xa.n ? -1 : 1;
		if (c < 0) {
			report(rel, "xattr %s only in A", xa.v[i].name);
			i++;
		} else if (c > 0) {
			report(rel, "xattr %s only in B", xb.v[j].name);
			j++;
		} else {
			if (xa.v[i].len != xb.v[j].len ||
			    memcmp(xa.v[i].value, xb.v[j].value, (size_t)xa.v[i].len))
				report(rel, "xattr %s value differs (A %zd bytes, B %zd bytes)",
				       xa.v[i].name, xa.v[i].len, xb.v[j].len);
			i++;
			j++;
		}
	}
	free_xattrs(&xa);
	free_xattrs(&xb);
}

/* ------------------------------------------------------- file contents */

struct region {
	off_t start, end;
};

struct regions {
	struct region *v;
	size_t n;
};

/* The data regions of a file, rounded out to `gran` and merged. */
static int data_map(int fd, off_t size, off_t gran, struct regions *out)
{
	off_t off = 0;

	memset(out, 0, sizeof *out);
	while (off < size) {
		off_t d = lseek(fd, off, SEEK_DATA), h, s, e;
		if (d < 0) {
			if (errno == ENXIO)
				break;
			if (errno == EINVAL || errno == ENOTSUP) { /* no hole support */
				d = off;
				h = size;
			} else {
				return -1;
			}
		} else {
			h = lseek(fd, d, SEEK_HOLE);
			if (h < 0)
				h = size;
		}
		if (h > size)
			h = size;
		if (h <= d)
			break;
		s = d / gran * gran;
		e = (h + gran - 1) / gran * gran;
		if (out->n && s <= out->v[out->n - 1].end) {
			if (e > out->v[out->n - 1].end)
				out->v[out->n - 1].end = e;
		} else {
			out->v = xrealloc(out->v, (out->n + 1) * sizeof *out->v);
			out->v[out->n].start = s;
			out->v[out->n].end = e;
			out->n++;
		}
		off = h;
	}
	return 0;
}

static void format_regions(const struct regions *r, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	if (!r->n) {
		snprintf(buf, len, "none");
		return;
	}
	for (size_t i = 0; i < r->n && used + 64 < len; i++) {
		if (i == 8) {
			snprintf(buf + used, len - used, ",... (%zu regions)", r->n);
			return;
		}
		used += (size_t)snprintf(buf + used, len - used, "%s%jd-%jd", i ? "," : "",
					 (intmax_t)r->v[i].start, (intmax_t)r->v[i].end);
	}
}

static void compare_holes(const char *rel, int fa, int fb, off_t size)
{
	struct statfs sa, sb;
	off_t gran = 4096;
	struct regions ra, rb;
	int same;

	if (fstatfs(fa, &sa) == 0 && sa.f_bsize > gran)
		gran = sa.f_bsize;
	if (fstatfs(fb, &sb) == 0 && sb.f_bsize > gran)
		gran = sb.f_bsize;
	if (data_map(fa, size, gran, &ra) < 0) {
		report(rel, "cannot map holes in A: %s", strerror(errno));
		return;
	}
	if (data_map(fb, size, gran, &rb) < 0) {
		report(rel, "cannot map holes in B: %s", strerror(errno));
		free(ra.v);
		return;
	}
	same = ra.n == rb.n;
	for (size_t i = 0; same && i < ra.n; i++)
		same = ra.v[i].start == rb.v[i].start && ra.v[i].end == rb.v[i].end;
	if (!same) {
		char ba[512], bb[512];
		format_regions(&ra, ba, sizeof ba);
		format_regions(&rb, bb, sizeof bb);
		report(rel, "holes differ (data regions A %s, B %s)", ba, bb);
	}
	free(ra.v);
	free(rb.v);
}

static ssize_t pread_full(int fd, char *buf, size_t len, off_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = pread(fd, buf + got, len - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Merges two sorted region lists into their union. */
static void region_union(const struct regions *a, const struct regions *b, struct regions *out)
{
	size_t i = 0, j = 0;

	memset(out, 0, sizeof *out);
	out->v = xmalloc((a->n + b->n + 1) * sizeof *out->v);
	while (i < a->n || j < b->n) {
		struct region r;
		if (j >= b->n || (i < a->n && a->v[i].start <= b->v[j].start))
			r = a->v[i++];
		else
			r = b->v[j++];
		if (out->n && r.start <= out->v[out->n - 1].end) {
			if (r.end > out->v[out->n - 1].end)
				out->v[out->n - 1].end = r.end;
		} else {
			out->v[out->n++] = r;
		}
	}
}

/* Compares the bytes of two files of equal size.  Only the union of their
 * data regions is read: what is a hole in both reads as zeros in both. */
static void compare_bytes(const char *rel, int fa, int fb, off_t size)
{
	enum { BUFSZ = 1 << 20 };
	static char *ba, *bb;
	struct regions ra, rb, ru;

	if (!ba) {
		ba = xmalloc(BUFSZ);
		bb = xmalloc(BUFSZ);
	}
	if (data_map(fa, size, 1, &ra) < 0 || data_map(fb, size, 1, &rb) < 0) {
		/* no map: read everything */
		ra.v = xmalloc(sizeof *ra.v);
		ra.n = 1;
		ra.v[0].start = 0;
		ra.v[0].end = size;
		rb.v = NULL;
		rb.n = 0;
	}
	region_union(&ra, &rb, &ru);
	for (size_t i = 0; i < ru.n; i++) {
		off_t off = ru.v[i].start, end = ru.v[i].end > size ? size : ru.v[i].end;
		while (off < end) {
			size_t want = end - off > BUFSZ ? BUFSZ : (size_t)(end - off);
			ssize_t na = pread_full(fa, ba, want, off), nb = pread_full(fb, bb, want, off);
			if (na < 0 || nb < 0) {
				report(rel, "read error in %s: %s", na < 0 ? "A" : "B", strerror(errno));
				goto out;
			}
			if (na != nb || memcmp(ba, bb, (size_t)na)) {
				ssize_t k = 0;
				while (k < na && k < nb && ba[k] == bb[k])
					k++;
				report(rel, "content differs at offset %jd", (intmax_t)(off + k));
				goto out;
			}
			if (na == 0)
				break;
			off += na;
		}
	}
out:
	free(ra.v);
	free(rb.v);
	free(ru.v);
}

static void compare_content(const char *rel, int dfa, int dfb, const char *name,
			    off_t size, int same_size)
{
	int fa, fb;

	fa = openat(dfa, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fa < 0) {
		report(rel, "cannot open in A: %s", strerror(errno));
		return;
	}
	fb = openat(dfb, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fb < 0) {
		report(rel, "cannot open in B: %s", strerror(errno));
		close(fa);
		return;
	}
	if (same_size) {
		compare_bytes(rel, fa, fb, size);
		if (opt_holes)
			compare_holes(rel, fa, fb, size);
	}
	close(fa);
	close(fb);
}

/* ------------------------------------------------------------ comparison */

static void compare_dirs(int dfa, int dfb, const char *rel);

static void print_time(char *buf, size_t len, const struct timespec *ts)
{
	snprintf(buf, len, "%jd.%09ld", (intmax_t)ts->tv_sec, ts->tv_nsec);
}

/* Compares the metadata common to every entry type. */
static void compare_meta(const char *rel, const struct stat *a, const struct stat *b)
{
	char ta[64], tb[64];

	if ((a->st_mode & 07777) != (b->st_mode & 07777))
		report(rel, "mode differs (A %04o, B %04o)", (unsigned)(a->st_mode & 07777),
		       (unsigned)(b->st_mode & 07777));
	if (opt_owner && a->st_uid != b->st_uid)
		report(rel, "uid differs (A %u, B %u)", (unsigned)a->st_uid, (unsigned)b->st_uid);
	if (opt_owner && a->st_gid != b->st_gid)
		report(rel, "gid differs (A %u, B %u)", (unsigned)a->st_gid, (unsigned)b->st_gid);
	if (a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec) {
		print_time(ta, sizeof ta, &a->st_mtim);
		print_time(tb, sizeof tb, &b->st_mtim);
		report(rel, "mtime differs (A %s, B %s)", ta, tb);
	}
	if (opt_atime &&
	    (a->st_atim.tv_sec != b->st_atim.tv_sec || a->st_atim.tv_nsec != b->st_atim.tv_nsec)) {
		print_time(ta, sizeof ta, &a->st_atim);
		print_time(tb, sizeof tb, &b->st_atim);
		report(rel, "atime differs (A %s, B %s)", ta, tb);
	}
}

static void compare_entry(int dfa, int dfb, const char *name, const char *rel)
{
	struct stat a, b;

	if (fstatat(dfa, name, &a, AT_SYMLINK_NOFOLLOW) < 0) {
		report(rel, "cannot lstat in A: %s", strerror(errno));
		return;
	}
	if (fstatat(dfb, name, &b, AT_SYMLINK_NOFOLLOW) < 0) {
		report(rel, "cannot lstat in B: %s", strerror(errno));
		return;
	}
	if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT)) {
		report(rel, "type differs (A %s, B %s)", type_name(a.st_mode), type_name(b.st_mode));
		return;
	}
	compare_meta(rel, &a, &b);

	if (!S_ISDIR(a.st_mode)) {
		const char *fa = ino_first(&links_a, a.st_dev, a.st_ino, rel);
		const char *fb = ino_first(&links_b, b.st_dev, b.st_ino, rel);
		if (strcmp(fa, fb)) {
			/* the first path of the entry's inode differs between A and B */
			put_escaped(stdout, rel, strlen(rel));
			fputs(": hardlink group differs (A: ", stdout);
			if (strcmp(fa, rel)) {
				fputs("linked to ", stdout);
				put_escaped(stdout, fa, strlen(fa));
			} else {
				fputs("no earlier link", stdout);
			}
			fputs(", B: ", stdout);
			if (strcmp(fb, rel)) {
				fputs("linked to ", stdout);
				put_escaped(stdout, fb, strlen(fb));
			} else {
				fputs("no earlier link", stdout);
			}
			fputs(")\n", stdout);
			ndiff++;
		}
	}
	if (opt_xattrs)
		compare_xattrs(rel, dfa, dfb, name);

	switch (a.st_mode & S_IFMT) {
	case S_IFREG:
		if (a.st_size != b.st_size)
			report(rel, "size differs (A %jd, B %jd)", (intmax_t)a.st_size,
			       (intmax_t)b.st_size);
		compare_content(rel, dfa, dfb, name, a.st_size, a.st_size == b.st_size);
		break;
	case S_IFLNK: {
		char *la = xmalloc((size_t)a.st_size + 2), *lb = xmalloc((size_t)b.st_size + 2);
		ssize_t na = readlinkat(dfa, name, la, (size_t)a.st_size + 1);
		ssize_t nb = readlinkat(dfb, name, lb, (size_t)b.st_size + 1);
		if (na < 0 || nb < 0) {
			report(rel, "cannot read symlink in %s: %s", na < 0 ? "A" : "B", strerror(errno));
		} else if (na != nb || memcmp(la, lb, (size_t)na)) {
			put_escaped(stdout, rel, strlen(rel));
			fputs(": symlink target differs (A ", stdout);
			put_escaped(stdout, la, (size_t)na);
			fputs(", B ", stdout);
			put_escaped(stdout, lb, (size_t)nb);
			fputs(")\n", stdout);
			ndiff++;
		}
		free(la);
		free(lb);
		break;
	}
	case S_IFCHR:
	case S_IFBLK:
		if (a.st_rdev != b.st_rdev)
			report(rel, "device differs (A %u:%u, B %u:%u)", major(a.st_rdev),
			       minor(a.st_rdev), major(b.st_rdev), minor(b.st_rdev));
		break;
	case S_IFDIR: {
		int sa = openat(dfa, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int sb = openat(dfb, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sa < 0 || sb < 0)
			report(rel, "cannot open directory in %s: %s", sa < 0 ? "A" : "B",
			       strerror(errno));
		else
			compare_dirs(sa, sb, rel);
		if (sa >= 0)
			close(sa);
		if (sb >= 0)
			close(sb);
		break;
	}
	default:
		break;
	}
}

static void compare_dirs(int dfa, int dfb, const char *rel)
{
	struct names na, nb;
	size_t i = 0, j = 0;

	if (list_dir(dfa, &na) < 0) {
		report(rel, "cannot list directory in A: %s", strerror(errno));
		return;
	}
	if (list_dir(dfb, &nb) < 0) {
		report(rel, "cannot list directory in B: %s", strerror(errno));
		free_names(&na);
		return;
	}
	while (i < na.n || j < nb.n) {
		int c = i < na.n && j < nb.n ? strcmp(na.v[i], nb.v[j]) : i < na.n ? -1 : 1;
		char *child;
		if (c < 0) {
			child = join(rel, na.v[i++]);
			report(child, "only in A");
		} else if (c > 0) {
			child = join(rel, nb.v[j++]);
			report(child, "only in B");
		} else {
			child = join(rel, na.v[i]);
			compare_entry(dfa, dfb, na.v[i], child);
			i++;
			j++;
		}
		free(child);
	}
	free_names(&na);
	free_names(&nb);
}

static void usage(void)
{
	fprintf(stderr, "usage: treecmp [--no-owner] [--no-atime] [--no-root] [--no-xattrs] "
			"[--no-holes] A B\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *ra = NULL, *rb = NULL;
	int fa, fb;
	struct stat a, b;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-owner"))
			opt_owner = 0;
		else if (!strcmp(argv[i], "--no-atime"))
			opt_atime = 0;
		else if (!strcmp(argv[i], "--no-root"))
			opt_root = 0;
		else if (!strcmp(argv[i], "--no-xattrs"))
			opt_xattrs = 0;
		else if (!strcmp(argv[i], "--no-holes"))
			opt_holes = 0;
		else if (!strcmp(argv[i], "--"))
			continue;
		else if (argv[i][0] == '-' && argv[i][1] && !ra)
			usage();
		else if (!ra)
			ra = argv[i];
		else if (!rb)
			rb = argv[i];
		else
			usage();
	}
	if (!ra || !rb)
		usage();

	fa = open(ra, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fa < 0) {
		fprintf(stderr, "treecmp: %s: %s\n", ra, strerror(errno));
		return 2;
	}
	fb = open(rb, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fb < 0) {
		fprintf(stderr, "treecmp: %s: %s\n", rb, strerror(errno));
		return 2;
	}
	if (fstat(fa, &a) < 0 || fstat(fb, &b) < 0) {
		fprintf(stderr, "treecmp: fstat: %s\n", strerror(errno));
		return 2;
	}
	if (opt_root) {
		compare_meta(".", &a, &b);
		if (opt_xattrs)
			compare_xattrs(".", fa, fb, NULL);
	}
	compare_dirs(fa, fb, ".");
	if (fflush(stdout) != 0)
		return 2;
	return ndiff ? 1 : 0;
}
