/*
 * test_snapfs.c - the lazy browsing API (ps_snapfs_*, what `projstore mount`
 * serves) without FUSE: the top directory and "latest", lookups and
 * attributes against lstat() of the saved tree, readdir with and without
 * plus and its positions, inode numbers (stable, hardlinks shared, distinct
 * for equal content elsewhere), reads at random offsets and lengths against
 * the source bytes (also with caches too small for one object, and from
 * several threads at once), holes, a file of identical chunks, SEEK_DATA /
 * SEEK_HOLE, xattrs, symlinks, a new snapshot seen without reopening, and a
 * damaged pack failing only the damaged file with PS_ECORRUPT.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"

#include <pthread.h>
#include <sys/xattr.h>
#include "projstore.h"

/* see test_snap.c: ps_save's workers leak a thread-local buffer */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:ps_store_put\n"; }

static struct ps_error E;
static int SLOW;   /* 1-byte caches: every read fetches again, so read less */
static char SRC[4096], STORE[4096];
static uint8_t *BIG;
#define BIG_LEN ((size_t)3 * 1024 * 1024 + 12345)
#define SPARSE_LEN ((size_t)3 << 20)

static void write_sparse(const char *path)
{
	uint8_t data[65536];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	th_fill_random(data, sizeof(data), 7);
	if (fd < 0 || pwrite(fd, data, sizeof(data), 1 << 20) != (ssize_t)sizeof(data) ||
	    ftruncate(fd, (off_t)SPARSE_LEN) || close(fd))
		bail_out("cannot write the sparse file");
}

static void make_tree(void)
{
	char p[4200], q[4200];
	uint8_t *zeros = calloc(1, 4 << 20);
	snprintf(SRC, sizeof(SRC), "%s", th_tmpdir("src"));
	BIG = malloc(BIG_LEN);
	th_fill_random(BIG, BIG_LEN, 42);
#define P(name) (snprintf(p, sizeof(p), "%s/%s", SRC, name), p)
	if (!zeros || th_write_file(P("big.bin"), BIG, BIG_LEN) ||
	    th_write_file(P("small.txt"), "hello, world\n", 13) ||
	    th_write_file(P("zeros.bin"), zeros, 4 << 20) || mkdir(P("sub"), 0750) ||
	    mkdir(P("sub/deeper"), 0700) || mkdir(P("sub/other"), 0755) ||
	    th_write_file(P("sub/same.txt"), "hello, world\n", 13) || th_write_file(P("h1"), "linked\n", 7) ||
	    mkfifo(P("fifo"), 0640))
		bail_out("cannot build the source tree");
	free(zeros);
	snprintf(q, sizeof(q), "%s/h1", SRC);
	if (link(q, P("sub/h2")) || symlink("small.txt", P("link")))
		bail_out("cannot link");
	write_sparse(P("sparse"));
	if (setxattr(P("small.txt"), "user.comment", "a value", 7, 0) ||
	    setxattr(P("small.txt"), "user.empty", "", 0, 0))
		diag("no user xattrs here: %s", strerror(errno));
	chmod(P("small.txt"), 0640);
#undef P
}

static int save(void)
{
	struct ps_save_opts o = PS_SAVE_OPTS_INIT;
	struct ps_snapshot_info si;
	struct ps_store *s;
	char cache[4200];
	int rc;
	snprintf(cache, sizeof(cache), "%s", th_tmpdir("cache"));
	o.cache_dir = cache;
	if (ps_store_open(&s, STORE, &E))
		return -1;
	rc = ps_save(s, "proj", SRC, &o, &si, &E);
	ps_store_free(s);
	return rc;
}

static struct ps_snapfs *open_fs(size_t tree_cache, size_t chunk_cache)
{
	struct ps_snapfs_opts o = PS_SNAPFS_OPTS_INIT;
	struct ps_snapfs *fs = NULL;
	o.tree_cache_bytes = tree_cache;
	o.chunk_cache_bytes = chunk_cache;
	o.refresh_ms = 1;
	if (ps_snapfs_open(&fs, STORE, "proj", &o, &E))
		diag("ps_snapfs_open: %s", E.msg);
	return fs;
}

/* ino of the snapshot directory (one reference) */
static uint64_t snapdir(struct ps_snapfs *fs)
{
	struct ps_snapfs_attr a;
	char name[128];
	size_t len = 0;
	if (ps_snapfs_readlink(fs, 2, name, sizeof(name) - 1, &len, &E))
		return 0;
	name[len] = 0;
	if (ps_snapfs_lookup(fs, PS_SNAPFS_ROOT, name, &a, &E))
		return 0;
	return a.ino;
}

/* Looks a path up from directory ino; 0 on failure. */
static uint64_t walk(struct ps_snapfs *fs, uint64_t ino, const char *path, struct ps_snapfs_attr *a)
{
	char buf[4096], *save = NULL, *c;
	snprintf(buf, sizeof(buf), "%s", path);
	for (c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (ps_snapfs_lookup(fs, ino, c, a, &E))
			return 0;
		ino = a->ino;
	}
	return ino;
}

/* ------------------------------------------------------------ tests */

struct names {
	char v[32][300];
	uint64_t ino[32], next[32];
	struct ps_snapfs_attr a[32];
	int n, stop_after;
};

static int collect(void *ctx, const char *name, size_t len, const struct ps_snapfs_attr *a,
		   uint64_t next)
{
	struct names *n = ctx;
	if (n->n == 32 || (n->stop_after && n->n == n->stop_after))
		return 1;
	memcpy(n->v[n->n], name, len);
	n->v[n->n][len] = 0;
	n->ino[n->n] = a->ino;
	n->next[n->n] = next;
	n->a[n->n] = *a;
	n->n++;
	return 0;
}

static void test_top(struct ps_snapfs *fs)
{
	struct ps_snapshot_info *v = NULL;
	struct ps_snapfs_attr a;
	struct names n = { 0 };
	char name[128];
	size_t nv = 0, len = 0;
	is_int(ps_snapfs_snapshots(fs, &v, &nv, &E), PS_OK, "snapshots listed");
	is_int((long long)nv, 1, "one snapshot");
	is_int(ps_snapfs_getattr(fs, PS_SNAPFS_ROOT, &a, &E), PS_OK, "root getattr");
	ok(a.type == PS_T_DIR && a.nlink == 3 && !a.immutable, "root: a changing directory, nlink 3");
	is_int(ps_snapfs_readdir(fs, PS_SNAPFS_ROOT, 0, 0, collect, &n, &E), PS_OK, "root readdir");
	is_int(n.n, 2, "root lists latest and the snapshot");
	is_str(n.v[0], "latest", "latest first");
	is_str(n.v[1], nv ? v[0].name : "", "then the snapshot");
	ok(n.a[0].type == PS_T_SYMLINK && n.a[1].type == PS_T_DIR, "types in the listing");
	is_int(ps_snapfs_readlink(fs, 2, name, sizeof(name), &len, &E), PS_OK, "readlink latest");
	ok(nv && len == strlen(v[0].name) && !memcmp(name, v[0].name, len), "latest points to it");
	is_int(ps_snapfs_lookup(fs, PS_SNAPFS_ROOT, "latest", &a, &E), PS_OK, "lookup latest");
	ok(a.type == PS_T_SYMLINK && a.size == len, "latest is a symlink of the name's length");
	is_int(ps_snapfs_lookup(fs, PS_SNAPFS_ROOT, "2020-01-01T00:00:00.000000Z-00000000", &a, &E),
	       PS_ENOTFOUND, "a snapshot that does not exist");
	is_int(ps_snapfs_lookup(fs, PS_SNAPFS_ROOT, "junk", &a, &E), PS_ENOTFOUND, "junk name");
	is_int(ps_snapfs_lookup(fs, PS_SNAPFS_ROOT, nv ? v[0].name : "", &a, &E), PS_OK,
	       "lookup the snapshot by name");
	ok(a.type == PS_T_DIR && a.immutable && a.ino == n.ino[1], "its directory, same ino as listed");
	ps_snapfs_forget(fs, a.ino, 1);
	free(v);
}

static void check_attr(struct ps_snapfs *fs, uint64_t dir, const char *path)
{
	struct ps_snapfs_attr a;
	struct stat st;
	char p[4200];
	snprintf(p, sizeof(p), "%s/%s", SRC, path);
	if (!walk(fs, dir, path, &a) || lstat(p, &st)) {
		ok(0, "%s: lookup (%s)", path, E.msg);
		return;
	}
	ok(a.mode == (st.st_mode & 07777) && a.uid == st.st_uid && a.gid == st.st_gid &&
	   a.mtime_sec == st.st_mtim.tv_sec && a.mtime_nsec == (uint32_t)st.st_mtim.tv_nsec &&
	   (S_ISDIR(st.st_mode) || a.size == (uint64_t)st.st_size) && a.nlink == st.st_nlink,
	   "%s: mode, owner, mtime (ns), size and nlink as lstat says", path);
}

static void test_attrs(struct ps_snapfs *fs, uint64_t dir)
{
	struct ps_snapfs_attr a, b, c;
	struct names n = { 0 }, m = { 0 };
	const char *paths[] = { "big.bin", "small.txt", "sub", "sub/deeper", "h1", "sub/h2", "fifo",
				"sparse", "link" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		check_attr(fs, dir, paths[i]);
	walk(fs, dir, "h1", &a);
	walk(fs, dir, "sub/h2", &b);
	ok(a.ino == b.ino && a.nlink == 2, "hardlinks are one inode with nlink 2");
	walk(fs, dir, "small.txt", &a);
	walk(fs, dir, "sub/same.txt", &b);
	ok(a.ino != b.ino, "equal content elsewhere is another inode");
	walk(fs, dir, "sparse", &c);
	ok(c.blocks == 65536 / 512, "st_blocks counts data, not holes");
	walk(fs, dir, "fifo", &c);
	ok(c.type == PS_T_FIFO, "a FIFO is a FIFO");
	is_int(ps_snapfs_readdir(fs, dir, 0, 0, collect, &n, &E), PS_OK, "readdir of the snapshot");
	is_int(n.n, 8, "eight entries");
	is_str(n.v[0], "big.bin", "sorted by name");
	is_str(n.v[7], "zeros.bin", "last");
	walk(fs, dir, "small.txt", &a);
	ok(n.ino[4] == a.ino && n.a[4].type == PS_T_REG, "readdir ino equals lookup ino");
	/* positions: resume after the 3rd entry */
	m.stop_after = 3;
	ps_snapfs_readdir(fs, dir, 0, 1, collect, &m, &E);
	is_int(m.n, 3, "plus: stops when the callback says so");
	ok(!strcmp(m.v[2], "h1") && m.a[2].nlink == 2 && m.a[2].size == 7, "plus: complete attributes");
	m.stop_after = 0;
	ps_snapfs_readdir(fs, dir, m.next[2], 0, collect, &m, &E);
	is_int(m.n, 8, "resuming at the position given gives the rest");
	is_str(m.v[3], n.v[3], "the same order");
	walk(fs, dir, "sub", &a);
	is_int(a.nlink, 4, "a directory's nlink is 2 + its subdirectories");
	/* stable inode numbers */
	{
		struct ps_snapfs_attr x;
		uint64_t ino;
		walk(fs, dir, "sub/deeper", &x);
		ino = x.ino;
		ps_snapfs_forget(fs, ino, 1000);
		walk(fs, dir, "sub/deeper", &x);
		ok(x.ino == ino, "an inode forgotten and looked up again has its number");
		is_int(ps_snapfs_getattr(fs, ino, &x, &E), PS_OK, "and answers getattr");
	}
}

static void test_read_file(struct ps_snapfs *fs, uint64_t dir, const char *path, const uint8_t *want,
			   size_t want_len, int rounds)
{
	struct ps_snapfs_attr a;
	struct ps_snapfs_file *f = NULL;
	uint8_t *buf = malloc(want_len + 4096);
	uint64_t seed = 99;
	size_t got, pos = 0;
	int bad = 0, rc;
	walk(fs, dir, path, &a);
	is_int(ps_snapfs_file_open(fs, a.ino, &f, &E), PS_OK, "%s: open", path);
	if (!f || !buf) {
		free(buf);
		return;
	}
	/* sequential in odd sizes, then random ranges */
	while (pos < want_len && !bad) {
		size_t n = 1 + (size_t)(th_rand(&seed) % (SLOW ? 1500000 : 300000));
		rc = ps_snapfs_file_read(f, buf, n, pos, &got, &E);
		bad = rc || got != (pos + n > want_len ? want_len - pos : n) || memcmp(buf, want + pos, got);
		pos += got;
	}
	ok(!bad, "%s: sequential reads of odd sizes give the bytes", path);
	if (SLOW)
		rounds = rounds / 8 + 1;
	for (int i = 0; i < rounds && !bad; i++) {
		size_t off = (size_t)(th_rand(&seed) % (want_len + 100));
		size_t n = (size_t)(th_rand(&seed) % 2000000);
		size_t exp = off >= want_len ? 0 : (off + n > want_len ? want_len - off : n);
		rc = ps_snapfs_file_read(f, buf, n, off, &got, &E);
		bad = rc || got != exp || memcmp(buf, want + (off < want_len ? off : 0), got);
	}
	ok(!bad, "%s: %d random ranges give the bytes", path, rounds);
	ps_snapfs_file_close(f);
	free(buf);
}

static void test_reads(struct ps_snapfs *fs, uint64_t dir)
{
	uint8_t *sparse = calloc(1, SPARSE_LEN), *zeros = calloc(1, 4 << 20);
	struct ps_snapfs_attr a;
	struct ps_snapfs_file *f = NULL;
	uint64_t off = 0;
	th_fill_random(sparse + (1 << 20), 65536, 7);
	test_read_file(fs, dir, "big.bin", BIG, BIG_LEN, 200);
	test_read_file(fs, dir, "sparse", sparse, SPARSE_LEN, 50);
	if (!SLOW)
		test_read_file(fs, dir, "zeros.bin", zeros, 4 << 20, 50);
	test_read_file(fs, dir, "small.txt", (const uint8_t *)"hello, world\n", 13, 20);
	walk(fs, dir, "sparse", &a);
	if (ps_snapfs_file_open(fs, a.ino, &f, &E) == PS_OK) {
		ok(ps_snapfs_file_seek(f, 0, 0, &off, &E) == PS_OK && off == 1 << 20, "SEEK_DATA skips the hole");
		ok(ps_snapfs_file_seek(f, off, 1, &off, &E) == PS_OK && off == (1 << 20) + 65536,
		   "SEEK_HOLE finds its end");
		ok(ps_snapfs_file_seek(f, off, 0, &off, &E) == PS_ENOTFOUND, "no data after the last region");
		ok(ps_snapfs_file_seek(f, 5, 1, &off, &E) == PS_OK && off == 5, "SEEK_HOLE in a hole");
		ps_snapfs_file_close(f);
	}
	walk(fs, dir, "sub", &a);
	is_int(ps_snapfs_file_open(fs, a.ino, &f, &E), PS_EINVAL, "a directory is not opened as a file");
	free(sparse);
	free(zeros);
}

static void test_links_xattrs(struct ps_snapfs *fs, uint64_t dir)
{
	struct ps_snapfs_attr a;
	char buf[256];
	size_t len = 0;
	walk(fs, dir, "link", &a);
	ok(ps_snapfs_readlink(fs, a.ino, buf, sizeof(buf), &len, &E) == PS_OK && len == 9 &&
	   !memcmp(buf, "small.txt", 9), "readlink gives the target");
	ok(ps_snapfs_readlink(fs, a.ino, buf, 3, &len, &E) == PS_OK && len == 9, "readlink measures");
	walk(fs, dir, "small.txt", &a);
	is_int(ps_snapfs_readlink(fs, a.ino, buf, sizeof(buf), &len, &E), PS_EINVAL, "not a symlink");
	if (getxattr(SRC, "user.none", NULL, 0) < 0 && errno == ENOTSUP) {
		skip(5, "no user xattrs");
		return;
	}
	ps_snapfs_listxattr(fs, a.ino, NULL, 0, &len, &E);
	is_int((long long)len, (long long)sizeof("user.comment\0user.empty"), "listxattr measures");
	ok(ps_snapfs_listxattr(fs, a.ino, buf, sizeof(buf), &len, &E) == PS_OK &&
	   !memcmp(buf, "user.comment\0user.empty\0", len), "listxattr lists the names");
	ok(ps_snapfs_getxattr(fs, a.ino, "user.comment", buf, sizeof(buf), &len, &E) == PS_OK &&
	   len == 7 && !memcmp(buf, "a value", 7), "getxattr gives the value");
	ok(ps_snapfs_getxattr(fs, a.ino, "user.empty", buf, sizeof(buf), &len, &E) == PS_OK && !len,
	   "an empty value");
	is_int(ps_snapfs_getxattr(fs, a.ino, "user.nope", buf, sizeof(buf), &len, &E), PS_ENOTFOUND,
	       "a missing name");
}

struct reader {
	struct ps_snapfs *fs;
	uint64_t ino;
	uint64_t seed;
	int bad;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct ps_snapfs_file *f = NULL;
	uint8_t *buf = malloc(1 << 20);
	if (!buf || ps_snapfs_file_open(r->fs, r->ino, &f, NULL)) {
		r->bad = 1;
		free(buf);
		return NULL;
	}
	for (int i = 0; i < (SLOW ? 8 : 60) && !r->bad; i++) {
		size_t off = (size_t)(th_rand(&r->seed) % BIG_LEN), n = 1 + (size_t)(th_rand(&r->seed) % (1 << 20)), got;
		size_t exp = off + n > BIG_LEN ? BIG_LEN - off : n;
		if (i % 3 == 0)
			off = (size_t)i * 40000;   /* some sequential stretches: read-ahead */
		exp = off + n > BIG_LEN ? BIG_LEN - off : n;
		r->bad = ps_snapfs_file_read(f, buf, n, off, &got, NULL) || got != exp ||
			 memcmp(buf, BIG + off, got);
	}
	ps_snapfs_file_close(f);
	free(buf);
	return NULL;
}

static void test_threads(struct ps_snapfs *fs, uint64_t dir)
{
	struct reader r[6];
	pthread_t t[6];
	struct ps_snapfs_attr a;
	int bad = 0;
	walk(fs, dir, "big.bin", &a);
	for (int i = 0; i < 6; i++) {
		r[i] = (struct reader){ fs, a.ino, (uint64_t)i + 1, 0 };
		pthread_create(&t[i], NULL, reader_main, &r[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		bad |= r[i].bad;
	}
	ok(!bad, "six threads reading random ranges at once get the right bytes");
}

static void test_new_snapshot(struct ps_snapfs *fs)
{
	struct ps_snapfs_attr a;
	struct ps_snapshot_info *v = NULL;
	char p[4200], name[128];
	size_t nv = 0, len = 0;
	uint64_t dir;
	snprintf(p, sizeof(p), "%s/added.txt", SRC);
	th_write_file(p, "new file\n", 9);
	is_int(save(), PS_OK, "a second save");
	usleep(5000);
	ps_snapfs_snapshots(fs, &v, &nv, &E);
	is_int((long long)nv, 2, "the open view lists it");
	ps_snapfs_readlink(fs, 2, name, sizeof(name) - 1, &len, &E);
	ok(nv == 2 && len == strlen(v[1].name) && !memcmp(name, v[1].name, len), "latest follows");
	dir = nv == 2 && ps_snapfs_lookup(fs, PS_SNAPFS_ROOT, v[1].name, &a, &E) == PS_OK ? a.ino : 0;
	ok(dir && walk(fs, dir, "added.txt", &a) && a.size == 9, "the new file is there");
	test_read_file(fs, dir, "added.txt", (const uint8_t *)"new file\n", 9, 5);
	free(v);
}

/* Damages big.bin's data where it sits in the pack (it is random, so stored
 * as is): one byte 1 MiB into the file. */
static void damage_big(void)
{
	char cmd[4400], path[4200];
	uint8_t *pack;
	size_t len = 0;
	const uint8_t *at;
	uint8_t b;
	FILE *p;
	int fd;
	snprintf(cmd, sizeof(cmd),
		 "find '%s/packs' -name '*.pack' -printf '%%s %%p\\n' | sort -n | tail -n 1 | cut -d' ' -f2-",
		 STORE);
	p = popen(cmd, "r");
	if (!p || !fgets(path, sizeof(path), p))
		bail_out("no pack");
	pclose(p);
	path[strcspn(path, "\n")] = 0;
	pack = th_read_file(path, &len);
	at = pack ? memmem(pack, len, BIG + (1 << 20), 64) : NULL;
	if (!at)
		bail_out("big.bin's bytes are not in the largest pack");
	b = (uint8_t)(*at ^ 0xff);
	chmod(path, 0644);
	fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, &b, 1, (off_t)(at - pack)) != 1 || close(fd))
		bail_out("cannot damage the pack");
	free(pack);
}

static void test_damage(void)
{
	struct ps_snapfs *fs;
	struct ps_snapfs_attr a;
	struct ps_snapfs_file *f = NULL;
	uint8_t *buf = malloc(BIG_LEN);
	size_t got = 0, pos = 0;
	uint64_t dir;
	int rc = PS_OK;
	damage_big();
	fs = open_fs(0, 0);
	dir = fs ? snapdir(fs) : 0;
	ok(dir && walk(fs, dir, "big.bin", &a), "the tree still reads");
	if (!dir || !buf || ps_snapfs_file_open(fs, a.ino, &f, &E)) {
		skip(3, "cannot open");
		ps_snapfs_free(fs);
		free(buf);
		return;
	}
	while (pos < BIG_LEN && !(rc = ps_snapfs_file_read(f, buf, 1 << 20, pos, &got, &E)))
		pos += got;
	is_int(rc, PS_ECORRUPT, "reading the damaged file fails with PS_ECORRUPT");
	ok(strstr(E.msg, "big.bin") != NULL, "the message names the file: %s", E.msg);
	ps_snapfs_file_close(f);
	test_read_file(fs, dir, "small.txt", (const uint8_t *)"hello, world\n", 13, 5);
	ps_snapfs_free(fs);
	free(buf);
}

int main(void)
{
	struct ps_snapfs *fs;
	uint64_t dir;
	make_tree();
	snprintf(STORE, sizeof(STORE), "%s/store", th_tmpdir(NULL));
	if (ps_store_init(STORE, NULL, &E) || save())
		bail_out(E.msg);
	{
		struct ps_snapfs *none = NULL;
		struct ps_snapfs_opts o = PS_SNAPFS_OPTS_INIT;
		is_int(ps_snapfs_open(&none, STORE, "nosuch", &o, &E), PS_ENOTFOUND, "a project without snapshots");
		is_int(ps_snapfs_open(&none, STORE, "Bad/Id", &o, &E), PS_EINVAL, "an invalid project id");
	}
	/* default caches, then caches too small to hold one object */
	for (int pass = 0; pass < 2; pass++) {
		diag("%s caches", pass ? "1-byte" : "default");
		fs = pass ? open_fs(1, 1) : open_fs(0, 0);
		SLOW = pass;
		if (!fs)
			bail_out("cannot open the view");
		dir = snapdir(fs);
		ok(dir != 0, "the snapshot directory");
		if (!pass)
			test_top(fs);
		test_attrs(fs, dir);
		test_reads(fs, dir);
		test_links_xattrs(fs, dir);
		test_threads(fs, dir);
		if (pass)
			test_new_snapshot(fs);
		ps_snapfs_free(fs);
	}
	test_damage();
	free(BIG);
	return done_testing();
}
