/*
 * test_store.c - store/: creating and opening stores, object put/get,
 * deduplication within a session and against the index, flush publishing a
 * pack and an index segment, reopening; damaged packs (flipped bytes,
 * truncation, missing) reported as PS_ECORRUPT; the pack trailer, record and
 * index-segment parsers on malformed input; put under injected allocation
 * failures; project locks (held, stale, foreign, damaged, refresh);
 * leftovers of dead writers and index compaction.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "store/store_int.h"
#include "hash/hash.h"

#include <dirent.h>
#include <sys/wait.h>

static struct ps_error E;

/* ------------------------------------------------------------ helpers */

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);
		if (de->d_name[0] == '.' && (!de->d_name[1] || de->d_name[1] == '.'))
			continue;
		if (l >= sl && !strcmp(de->d_name + l - sl, suffix))
			n++;
	}
	closedir(d);
	return n;
}

/* Counts *.pack files in store/packs/XX/ and returns the path of the first. */
static int find_packs(const char *store, char *first, size_t len)
{
	char dir[4096];
	DIR *d;
	struct dirent *de;
	int n = 0;
	snprintf(dir, sizeof(dir), "%s/packs", store);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char sub[4400];
		DIR *d2;
		struct dirent *de2;
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		d2 = opendir(sub);
		if (!d2)
			continue;
		while ((de2 = readdir(d2))) {
			size_t l = strlen(de2->d_name);
			if (l > 5 && !strcmp(de2->d_name + l - 5, ".pack")) {
				if (!n && first)
					snprintf(first, len, "%s/%s", sub, de2->d_name);
				n++;
			}
		}
		closedir(d2);
	}
	closedir(d);
	return n;
}

/* Writes an empty index segment into a new store, as a store looks after
 * a save that wrote nothing new.  The tests start from there; a store
 * without any segment is tested on its own in test_empty_index() (loading
 * its index once called qsort(NULL, 0, ...), which UBSan aborts on). */
static void seed_segment(const char *dir)
{
	struct ps_buf b = PS_BUF_INIT;
	struct ps_seg_entry dummy;
	uint8_t dpack[1][32];
	char hex[65], path[4200];
	memset(&dummy, 0, sizeof(dummy));
	if (ps_segment_encode(dpack, 0, &dummy, 0, &b))
		bail_out("cannot encode an empty segment");
	ps_hex_encode(b.data + b.len - 32, 32, hex);
	snprintf(path, sizeof(path), "%s/index/%s.idx", dir, hex);
	if (th_write_file(path, b.data, b.len))
		bail_out("cannot write an empty segment");
	ps_buf_release(&b);
}

static const char *new_store(const char *name, const struct ps_init_opts *o)
{
	const char *dir = th_tmpdir(name);
	int rc = ps_store_init(dir, o, &E);
	if (rc) {
		diag("init %s: %s", dir, E.msg);
		bail_out("cannot create a store");
	}
	seed_segment(dir);
	return dir;
}

static struct ps_store *open_store(const char *dir)
{
	struct ps_store *s = NULL;
	if (ps_store_open(&s, dir, &E)) {
		diag("open %s: %s", dir, E.msg);
		bail_out("cannot open a store");
	}
	return s;
}

static void fix_sha_tail(uint8_t *buf, size_t len)
{
	ps_sha256(buf, len - 32, buf + len - 32);
}

static void flip_byte_at(const char *path, long off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t c;
	if (pread(fd, &c, 1, off) != 1)
		bail_out("flip: cannot read");
	c ^= mask;
	if (pwrite(fd, &c, 1, off) != 1)
		bail_out("flip: cannot write");
	close(fd);
}

static uint8_t *copy_file(const char *from, const char *to, size_t *len)
{
	uint8_t *b = th_read_file(from, len);
	if (!b || th_write_file(to, b, *len))
		bail_out("copy failed");
	return b;
}

/* ------------------------------------------------------------ init/open */

static void test_init_open(void)
{
	struct ps_init_opts o = PS_INIT_OPTS_INIT;
	struct ps_store *s = NULL;
	const char *dir = new_store("init1", NULL);
	char path[4200];
	const char *dirs[] = { "packs", "index", "projects", "locks", "tmp" };

	for (size_t i = 0; i < PS_ARRAY_LEN(dirs); i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, dirs[i]);
		ok(!stat(path, &st) && S_ISDIR(st.st_mode), "init creates %s/", dirs[i]);
	}
	is_int(ps_store_init(dir, NULL, &E), PS_EEXISTS, "init of an existing store: PS_EEXISTS");
	is_int(ps_store_open(&s, dir, &E), PS_OK, "open");
	is_int(strlen(ps_store_id(s)), 32, "store id has 32 characters");
	ok(strspn(ps_store_id(s), "0123456789abcdef") == 32, "store id is hex: %s", ps_store_id(s));
	{
		/* the default is zstd at some level; whatever it is, the config
		 * names it and the opened store uses it */
		char cfg[4200], want[64], got[32];
		size_t len;
		char *text, *line;
		snprintf(cfg, sizeof(cfg), "%s/config", dir);
		text = (char *)th_read_file(cfg, &len);
		line = text ? strstr(text, "\ncompression ") : NULL;
		snprintf(want, sizeof(want), "%.*s", line ? (int)strcspn(line + 13, "\n") : 0,
			 line ? line + 13 : "");
		ps_compression_format(&s->compression, got, sizeof(got));
		ok(s->compression.codec == PS_CODEC_ZSTD, "default compression is zstd (%s)", got);
		is_str(got, want, "the store uses the compression its config names");
		free(text);
	}
	ok(s->chunker.min_size == PS_CHUNK_MIN_DEFAULT && s->chunker.avg_size == PS_CHUNK_AVG_DEFAULT &&
	   s->chunker.max_size == PS_CHUNK_MAX_DEFAULT, "default chunker");
	ok(s->pack_target == 16u << 20, "default pack target 16 MiB");
	{
		struct ps_store *s2 = open_store(dir);
		is_str(ps_store_id(s2), ps_store_id(s), "reopening gives the same id");
		ps_store_free(s2);
	}
	ps_store_free(s);
	ps_store_free(NULL);

	o.compression = "lz4";
	o.chunk_avg = 1u << 16;
	dir = new_store("init2", &o);
	s = open_store(dir);
	ok(s->compression.codec == PS_CODEC_LZ4, "init option compression lz4 is stored");
	ok(s->chunker.avg_size == 1u << 16 && s->chunker.min_size == 1u << 14 &&
	   s->chunker.max_size == 1u << 18, "chunk_avg alone sets min = avg/4, max = 4 avg");
	ps_store_free(s);
	{
		struct ps_store *s3 = open_store(new_store("init2b", NULL));
		ok(strcmp(ps_store_id(s3), "") != 0, "another store");
		ps_store_free(s3);
	}

	o.compression = "brotli";
	is_int(ps_store_init(th_tmpdir("init3"), &o, &E), PS_EINVAL, "unknown compression: PS_EINVAL");
	o.compression = NULL;
	o.chunk_avg = 3000;
	is_int(ps_store_init(th_tmpdir("init4"), &o, &E), PS_EINVAL, "bad chunk sizes: PS_EINVAL");
	snprintf(path, sizeof(path), "%s/init4/config", th_tmpdir(NULL));
	ok(access(path, F_OK) != 0, "a rejected init writes no config");

	snprintf(path, sizeof(path), "%s/no-such-store", th_tmpdir(NULL));
	is_int(ps_store_open(&s, path, &E), PS_ENOTFOUND, "open of a missing directory: PS_ENOTFOUND");
	is_int(ps_store_open(&s, th_tmpdir("empty"), &E), PS_ENOTFOUND,
	       "open of a directory without config: PS_ENOTFOUND");
	ok(strstr(E.msg, "not a projstore store") != NULL, "message: %s", E.msg);

	/* damaged configs */
	{
		static const struct { const char *name, *text; size_t len; } bad[] = {
			{ "cfg-nul", "projstore-store 1\nid 0123456789abcdef0123456789abcdef\n\0x", 55 },
			{ "cfg-version", "projstore-store 2\nid 0123456789abcdef0123456789abcdef\n", 0 },
			{ "cfg-noid", "projstore-store 1\nchunk-min 65536\n", 0 },
			{ "cfg-shortid", "projstore-store 1\nid 0123\n", 0 },
			{ "cfg-chunks", "projstore-store 1\nid 0123456789abcdef0123456789abcdef\nchunk-avg 3\n", 0 },
			{ "cfg-comp", "projstore-store 1\nid 0123456789abcdef0123456789abcdef\ncompression xz\n", 0 },
			{ "cfg-line", "projstore-store\n", 0 },
		};
		for (size_t i = 0; i < PS_ARRAY_LEN(bad); i++) {
			const char *d = th_tmpdir(bad[i].name);
			snprintf(path, sizeof(path), "%s/config", d);
			th_write_file(path, bad[i].text, bad[i].len ? bad[i].len : strlen(bad[i].text));
			s = NULL;
			is_int(ps_store_open(&s, d, &E), PS_ECORRUPT, "config %s: PS_ECORRUPT (%s)",
			       bad[i].name, E.msg);
		}
		{
			char big[600];
			memset(big, 'a', sizeof(big));
			big[sizeof(big) - 1] = '\n';
			snprintf(path, sizeof(path), "%s/config", th_tmpdir("cfg-long"));
			th_write_file(path, big, sizeof(big));
			is_int(ps_store_open(&s, th_tmpdir("cfg-long"), &E), PS_ECORRUPT,
			       "config with an overlong line: PS_ECORRUPT");
		}
		{
			const char *d = th_tmpdir("cfg-ok");
			const char *t = "# comment\n\nprojstore-store 1\nid 0123456789abcdef0123456789abcdef\n"
					"chunk-min 1024\nchunk-avg 4096\nchunk-max 16384\ncompression none\n"
					"pack-size 5\nfuture-key x\n";
			snprintf(path, sizeof(path), "%s/config", d);
			th_write_file(path, t, strlen(t));
			s = NULL;
			is_int(ps_store_open(&s, d, &E), PS_OK, "a hand-written config with comments opens");
			if (s) {
				is_str(ps_store_id(s), "0123456789abcdef0123456789abcdef", "its id");
				ok(s->pack_target == 16u << 20, "an absurd pack-size falls back to 16 MiB");
				ok(s->compression.codec == PS_CODEC_NONE && s->chunker.avg_size == 4096,
				   "compression and chunker from the config");
			}
			ps_store_free(s);
		}
	}
}

static void test_project_ids(void)
{
	static const char *good[] = { "a", "0", "proj", "my-project_1.2", "a-", "z9",
		"a23456789012345678901234567890123456789012345678901234567890123",
		"a234567890123456789012345678901234567890123456789012345678901234" };
	static const char *bad[] = { "", "-a", ".a", "_a", "A", "aB", "a/b", "a b", "é", "..",
		"a2345678901234567890123456789012345678901234567890123456789012345", "a\n", "a\tb" };
	for (size_t i = 0; i < PS_ARRAY_LEN(good); i++)
		ok(ps_project_id_valid(good[i]), "project id '%s' is valid", good[i]);
	for (size_t i = 0; i < PS_ARRAY_LEN(bad); i++)
		ok(!ps_project_id_valid(bad[i]), "project id #%zu ('%.*s', %zu bytes) is invalid", i,
		   (int)strcspn(bad[i], "\n\t"), bad[i], strlen(bad[i]));
	ok(!ps_project_id_valid(NULL), "NULL project id is invalid");
}

/* ------------------------------------------------------------ empty index */

/* Runs fn in a child process; returns 1 if it exited with status 0. */
static int in_child(void (*fn)(const char *), const char *arg)
{
	pid_t p;
	int st = 0;
	fflush(stdout);
	p = fork();
	if (p == 0) {
		fn(arg);
		fflush(stdout);
		_exit(0);
	}
	if (p < 0 || waitpid(p, &st, 0) != p)
		return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void load_empty(const char *dir)
{
	struct ps_store *s = NULL;
	uint8_t id[32] = { 1 }, *out = NULL;
	size_t len;
	if (ps_store_open(&s, dir, NULL) || ps_store_load_index(s, NULL) || s->idx_n != 0 ||
	    ps_store_get(s, id, 0, &out, &len, NULL) != PS_ENOTFOUND)
		_exit(3);
	ps_store_free(s);
}

static void test_empty_index(void)
{
	const char *dir = th_tmpdir("empty-index");
	if (ps_store_init(dir, NULL, &E))
		bail_out("init");
	/* in a child: this used to be undefined behaviour (qsort(NULL, 0)) that
	 * aborts the process under UBSan */
	ok(in_child(load_empty, dir), "a fresh store's empty index loads; an id is PS_ENOTFOUND");
}

/* ------------------------------------------------------------ put/get */

#define NOBJ 40

static void test_put_get(void)
{
	const char *dir = new_store("pg", NULL);
	struct ps_store *s = open_store(dir);
	static uint8_t data[NOBJ][20000];
	uint8_t ids[NOBJ][32], id[32], tree_id[32];
	int added, good = 1;
	uint8_t *out;
	size_t len;
	char pack_path[4200];
	uint64_t objs;

	is_int(ps_store_load_index(s, &E), PS_OK, "load the (empty) index");
	ok(s->idx_n == 0 && s->idx_loaded, "empty index");
	for (int i = 0; i < NOBJ; i++) {
		if (i % 2)
			th_fill_random(data[i], sizeof(data[i]), (uint64_t)i);
		else
			memset(data[i], 'a' + i % 26, sizeof(data[i]));
		added = -1;
		if (ps_store_put(s, PS_OBJ_CHUNK, data[i], sizeof(data[i]) - (size_t)i, NULL, NULL, ids[i],
				 &added, &E) || added != 1)
			good = 0;
	}
	ok(good, "%d new objects are added", NOBJ);
	{
		uint8_t want[32];
		ps_sha256(data[3], sizeof(data[3]) - 3, want);
		is_mem(ids[3], want, 32, "the id is the SHA-256 of the content");
	}
	is_int(s->new_objects, NOBJ, "new_objects counts them");
	ok(s->new_raw > 0 && s->new_stored > 0 && s->new_stored < s->new_raw,
	   "compressible objects shrink: raw %llu stored %llu", (unsigned long long)s->new_raw,
	   (unsigned long long)s->new_stored);
	/* dedup within the session */
	added = -1;
	is_int(ps_store_put(s, PS_OBJ_CHUNK, data[5], sizeof(data[5]) - 5, NULL, NULL, id, &added, &E),
	       PS_OK, "second put of the same data");
	is_int(added, 0, "is not added again");
	is_mem(id, ids[5], 32, "and has the same id");
	is_int(s->new_objects, NOBJ, "new_objects unchanged");
	ok(ps_store_has(s, ids[7], NULL), "has() sees a pending object");
	/* a put with a caller-computed id */
	{
		uint8_t tid[32];
		static const char tree[] = "PSTR\x01\x00";
		ps_sha256(tree, 6, tid);
		is_int(ps_store_put(s, PS_OBJ_TREE, tree, 6, tid, NULL, tree_id, &added, &E), PS_OK,
		       "put of a tree with a given id");
		ok(added == 1 && !memcmp(tid, tree_id, 32), "given id used");
	}
	/* the empty object */
	is_int(ps_store_put(s, PS_OBJ_CHUNK, "", 0, NULL, NULL, id, &added, &E), PS_OK,
	       "put of an empty object");
	is_int(added, 1, "the empty object is added");
	is_int(ps_store_put(s, PS_OBJ_CHUNK, "", 0, NULL, NULL, id, &added, &E) || added, 0,
	       "and deduplicated");
	{
		struct ps_obj_info info;
		ok(ps_store_has(s, ids[1], &info) && info.type == PS_OBJ_CHUNK &&
		   info.raw_len == sizeof(data[1]) - 1, "has() reports type and raw length");
	}
	/* too large */
	{
		static uint8_t one;
		is_int(ps_store_put(s, PS_OBJ_CHUNK, &one, (size_t)PS_OBJ_MAX + 1, NULL, NULL, id, &added,
				    &E), PS_EINVAL, "an object over PS_OBJ_MAX is rejected");
	}
	out = NULL;
	is_int(ps_store_get(s, ids[0], PS_OBJ_CHUNK, &out, &len, &E), PS_OK,
	       "get of an object written but not yet flushed");
	free(out);
	diag("unflushed get: %s", E.msg);

	is_int(count_files(th_tmpdir("pg/index"), ".idx"), 1, "only the seed segment before flush");
	is_int(find_packs(dir, NULL, 0), 0, "no pack before flush");
	is_int(ps_store_flush(s, &E), PS_OK, "flush");
	is_int(find_packs(dir, pack_path, sizeof(pack_path)), 1, "flush publishes one pack");
	is_int(count_files(th_tmpdir("pg/index"), ".idx"), 2, "and one index segment");
	is_int(count_files(th_tmpdir("pg/tmp"), ""), 0, "and leaves nothing in tmp/");
	/* pack name = SHA-256 of everything but its last 40 bytes */
	{
		size_t plen;
		uint8_t *p = th_read_file(pack_path, &plen), sha[32];
		char hex[65];
		ps_sha256(p, plen - 40, sha);
		ps_hex_encode(sha, 32, hex);
		ok(strstr(pack_path, hex) != NULL, "the pack is named by its SHA-256");
		ok(!memcmp(p, "PSPK", 4) && !memcmp(p + plen - 8, "PSPKEND", 8), "pack magic and end magic");
		is_mem(p + plen - 40, sha, 32, "the trailer holds the same SHA-256");
		free(p);
	}
	is_int(ps_store_flush(s, &E), PS_OK, "a second flush with nothing new");
	is_int(count_files(th_tmpdir("pg/index"), ".idx"), 2, "publishes nothing");

	/* get every object */
	good = 1;
	for (int i = 0; i < NOBJ; i++) {
		int rc;
		out = NULL;
		rc = ps_store_get(s, ids[i], PS_OBJ_CHUNK, &out, &len, &E);
		if (rc || len != sizeof(data[i]) - (size_t)i || memcmp(out, data[i], len)) {
			diag("object %d: %s", i, E.msg);
			good = 0;
		}
		free(out);
	}
	ok(good, "after flush every object reads back from this store");
	ps_store_free(s);

	/* reopen */
	s = open_store(dir);
	good = 1;
	for (int i = 0; i < NOBJ; i++) {
		out = NULL;
		if (ps_store_get(s, ids[i], 0, &out, &len, &E) || len != sizeof(data[i]) - (size_t)i ||
		    memcmp(out, data[i], len))
			good = 0;
		free(out);
	}
	ok(good, "a reopened store finds every object");
	is_int(s->idx_n, NOBJ + 2, "the index holds %d objects", NOBJ + 2);
	out = NULL;
	is_int(ps_store_get(s, tree_id, PS_OBJ_TREE, &out, &len, &E), PS_OK, "the tree object");
	ok(out && len == 6 && !memcmp(out, "PSTR\x01\x00", 6), "tree content");
	free(out);
	out = NULL;
	is_int(ps_store_get(s, tree_id, PS_OBJ_CHUNK, &out, &len, &E), PS_ECORRUPT,
	       "get with the wrong type: PS_ECORRUPT");
	ok(out == NULL, "and no data");
	th_fill_random(id, 32, 555);
	is_int(ps_store_get(s, id, 0, &out, &len, &E), PS_ENOTFOUND, "an unknown id: PS_ENOTFOUND");
	ok(strstr(E.msg, "missing") != NULL, "message: %s", E.msg);
	/* dedup against the index */
	added = -1;
	is_int(ps_store_put(s, PS_OBJ_CHUNK, data[9], sizeof(data[9]) - 9, NULL, NULL, id, &added, &E),
	       PS_OK, "put of an indexed object in a new session");
	is_int(added, 0, "is deduplicated against the index");
	is_int(ps_store_flush(s, &E), PS_OK, "flush");
	is_int(find_packs(dir, NULL, 0), 1, "no new pack");
	is_int(count_files(th_tmpdir("pg/index"), ".idx"), 2, "no new segment");
	/* pack trailer and verification */
	{
		uint8_t (*pids)[32] = NULL;
		size_t np = 0;
		struct ps_pack_entry *ents = NULL;
		uint32_t cnt = 0;
		uint64_t size = 0;
		is_int(ps_store_list_packs(s, &pids, &np, &E), PS_OK, "list packs");
		is_int(np, 1, "one pack listed");
		is_int(ps_pack_read_index(s, pids[0], &ents, &cnt, &size, &E), PS_OK, "read its trailer");
		is_int(cnt, NOBJ + 2, "trailer lists every object");
		ok(ents && ents[0].offset == PS_PACK_HDR_LEN, "first record at offset 16");
		free(ents);
		objs = 0;
		is_int(ps_pack_verify(s, pids[0], NULL, NULL, &objs, &E), PS_OK, "verify the pack");
		is_int(objs, NOBJ + 2, "verify counted every object");
		free(pids);
	}
	ps_store_free(s);
}

static void test_many_packs(void)
{
	const char *dir = new_store("mp", NULL);
	struct ps_store *s = open_store(dir);
	static uint8_t buf[300000];
	uint8_t ids[12][32];
	int good = 1;
	ps_store_load_index(s, &E);
	s->pack_target = 1u << 20;    /* the smallest the config allows */
	for (int i = 0; i < 12; i++) {
		th_fill_random(buf, sizeof(buf), (uint64_t)i + 1000);
		if (ps_store_put(s, PS_OBJ_CHUNK, buf, sizeof(buf), NULL, NULL, ids[i], NULL, &E))
			good = 0;
	}
	ok(good, "12 incompressible 300 KB objects");
	ok(find_packs(dir, NULL, 0) >= 2, "packs are finished when they reach the target (%d so far)",
	   find_packs(dir, NULL, 0));
	is_int(count_files(th_tmpdir("mp/tmp"), ".inflight"), 1,
	       "finished but unindexed packs are journalled");
	is_int(ps_store_flush(s, &E), PS_OK, "flush");
	is_int(find_packs(dir, NULL, 0), 3, "3 packs of 4 objects (a pack ends once it reaches 1 MiB)");
	is_int(count_files(th_tmpdir("mp/index"), ".idx"), 2, "one segment names them all");
	is_int(count_files(th_tmpdir("mp/tmp"), ""), 0, "the journal is gone");
	ps_store_free(s);
	s = open_store(dir);
	good = 1;
	for (int i = 0; i < 12; i++) {
		uint8_t *out = NULL;
		size_t len;
		th_fill_random(buf, sizeof(buf), (uint64_t)i + 1000);
		if (ps_store_get(s, ids[i], PS_OBJ_CHUNK, &out, &len, &E) || len != sizeof(buf) ||
		    memcmp(out, buf, len))
			good = 0;
		free(out);
	}
	ok(good, "every object of every pack reads back");
	is_int(s->npacks, 3, "the index names 3 packs");
	ps_store_free(s);
}

/* ------------------------------------------------------------ corruption */

static void test_corruption(void)
{
	const char *dir = new_store("cor", NULL);
	struct ps_store *s = open_store(dir);
	uint8_t data[5][5000], ids[5][32];
	char pack[4200], saved[4200];
	uint8_t *orig;
	size_t plen, len;
	uint8_t *out;
	struct ps_obj_info info[5];

	ps_store_load_index(s, &E);
	for (int i = 0; i < 5; i++) {
		th_fill_random(data[i], sizeof(data[i]), (uint64_t)i + 77);
		ps_store_put(s, PS_OBJ_CHUNK, data[i], sizeof(data[i]), NULL, NULL, ids[i], NULL, &E);
	}
	ps_store_flush(s, &E);
	ps_store_free(s);
	find_packs(dir, pack, sizeof(pack));
	snprintf(saved, sizeof(saved), "%s/pack.orig", th_tmpdir(NULL));
	orig = copy_file(pack, saved, &plen);

	s = open_store(dir);
	ps_store_load_index(s, &E);
	for (int i = 0; i < 5; i++)
		ps_store_has(s, ids[i], &info[i]);
	ps_store_free(s);

	/* flip one byte in the data of object 2 */
	flip_byte_at(pack, (long)info[2].offset + PS_PACK_REC_HDR_LEN + 100, 0x01);
	s = open_store(dir);
	out = NULL;
	is_int(ps_store_get(s, ids[2], 0, &out, &len, &E), PS_ECORRUPT,
	       "a flipped byte in a record: PS_ECORRUPT");
	ok(out == NULL, "no data is returned");
	ok(strstr(E.msg, "checksum") && strstr(E.msg, ".pack"), "message names the failure and pack: %s",
	   E.msg);
	is_int(ps_store_get(s, ids[1], 0, &out, &len, &E), PS_OK, "the neighbour still reads");
	free(out);
	{
		int nbad = 0;
		struct ps_pack_entry *dummy = NULL;
		uint8_t (*pids)[32] = NULL;
		size_t np = 0;
		ps_store_list_packs(s, &pids, &np, &E);
		is_int(ps_pack_verify(s, pids[0], NULL, NULL, NULL, &E), PS_ECORRUPT,
		       "verify: the pack fails its checksum");
		(void)dummy;
		(void)nbad;
		free(pids);
	}
	ps_store_free(s);

	/* flip a byte of the id in the record header */
	th_write_file(pack, orig, plen);
	flip_byte_at(pack, (long)info[3].offset + 12 + 5, 0x80);
	s = open_store(dir);
	is_int(ps_store_get(s, ids[3], 0, &out, &len, &E), PS_ECORRUPT,
	       "a record header naming another object: PS_ECORRUPT");
	ps_store_free(s);

	/* flip the stored length */
	th_write_file(pack, orig, plen);
	flip_byte_at(pack, (long)info[0].offset + 8, 0x01);
	s = open_store(dir);
	is_int(ps_store_get(s, ids[0], 0, &out, &len, &E), PS_ECORRUPT,
	       "a damaged stored length: PS_ECORRUPT");
	ps_store_free(s);

	/* flip the type byte */
	th_write_file(pack, orig, plen);
	flip_byte_at(pack, (long)info[4].offset, 0x40);
	s = open_store(dir);
	is_int(ps_store_get(s, ids[4], 0, &out, &len, &E), PS_ECORRUPT, "a damaged type: PS_ECORRUPT");
	ps_store_free(s);

	/* every byte of record 1 flipped in turn: never served */
	{
		int all = 1;
		for (uint64_t off = info[1].offset; off < info[1].offset + PS_PACK_REC_HDR_LEN + 64; off++) {
			int rc;
			th_write_file(pack, orig, plen);
			flip_byte_at(pack, (long)off, 0x10);
			s = open_store(dir);
			out = NULL;
			rc = ps_store_get(s, ids[1], 0, &out, &len, &E);
			if (rc == PS_OK && (len != sizeof(data[1]) || memcmp(out, data[1], len)))
				all = 0;
			if (rc != PS_OK && rc != PS_ECORRUPT)
				all = 0;
			/* a flip in the reserved bytes is harmless, anything else must fail */
			if (rc == PS_OK && !(off - info[1].offset >= 2 && off - info[1].offset < 4))
				all = 0;
			free(out);
			ps_store_free(s);
		}
		ok(all, "108 single-byte flips in a record: PS_ECORRUPT unless reserved, never wrong data");
	}

	/* truncation */
	th_write_file(pack, orig, plen);
	if (truncate(pack, (off_t)(info[4].offset + 100)))
		bail_out("truncate");
	s = open_store(dir);
	is_int(ps_store_get(s, ids[4], 0, &out, &len, &E), PS_ECORRUPT,
	       "a pack truncated inside a record: PS_ECORRUPT");
	ok(strstr(E.msg, "truncated") != NULL, "message: %s", E.msg);
	is_int(ps_store_get(s, ids[0], 0, &out, &len, &E), PS_OK, "records before the cut still read");
	free(out);
	{
		uint8_t (*pids)[32] = NULL;
		size_t np = 0;
		struct ps_pack_entry *ents = NULL;
		uint32_t cnt;
		ps_store_list_packs(s, &pids, &np, &E);
		is_int(ps_pack_read_index(s, pids[0], &ents, &cnt, NULL, &E), PS_ECORRUPT,
		       "the truncated pack's trailer: PS_ECORRUPT");
		is_int(ps_pack_verify(s, pids[0], NULL, NULL, NULL, &E), PS_ECORRUPT,
		       "verify of a truncated pack: PS_ECORRUPT");
		free(pids);
	}
	ps_store_free(s);
	if (truncate(pack, 10))
		bail_out("truncate");
	s = open_store(dir);
	is_int(ps_store_get(s, ids[0], 0, &out, &len, &E), PS_ECORRUPT, "a pack cut to 10 bytes");
	ps_store_free(s);
	if (truncate(pack, 0))
		bail_out("truncate");
	s = open_store(dir);
	is_int(ps_store_get(s, ids[2], 0, &out, &len, &E), PS_ECORRUPT, "an empty pack");
	ps_store_free(s);
	unlink(pack);
	s = open_store(dir);
	is_int(ps_store_get(s, ids[2], 0, &out, &len, &E), PS_ECORRUPT, "a missing pack: PS_ECORRUPT");
	ok(strstr(E.msg, "missing") != NULL, "message: %s", E.msg);
	ps_store_free(s);
	th_write_file(pack, orig, plen);

	/* a damaged index segment is skipped and remembered */
	{
		char idx[4200];
		DIR *d;
		struct dirent *de;
		snprintf(idx, sizeof(idx), "%s/index", dir);
		d = opendir(idx);
		while ((de = readdir(d))) {
			struct stat st;
			if (!strstr(de->d_name, ".idx"))
				continue;
			snprintf(idx, sizeof(idx), "%s/index/%s", dir, de->d_name);
			if (!stat(idx, &st) && st.st_size > 24 + 32)
				break;     /* the segment with entries, not the empty seed */
		}
		closedir(d);
		flip_byte_at(idx, 40, 0x01);
		s = open_store(dir);
		is_int(ps_store_load_index(s, &E), PS_OK, "an index with a damaged segment loads");
		is_int(s->nbad_segments, 1, "the damaged segment is remembered");
		is_int(ps_store_get(s, ids[0], 0, &out, &len, &E), PS_ENOTFOUND,
		       "its objects look missing");
		ps_store_free(s);
		flip_byte_at(idx, 40, 0x01);
		s = open_store(dir);
		is_int(ps_store_get(s, ids[0], 0, &out, &len, &E), PS_OK, "repaired: found again");
		free(out);
		ps_store_free(s);
	}
	free(orig);
}

/* ------------------------------------------------------------ pack parsers */

static void make_footer(uint8_t f[56], uint64_t idx_off, uint32_t n, uint32_t version)
{
	memset(f, 0, 56);
	ps_put_le64(f, idx_off);
	ps_put_le32(f + 8, n);
	ps_put_le32(f + 12, version);
	memset(f + 16, 0xab, 32);
	memcpy(f + 48, "PSPKEND", 8);
}

static void make_ent(uint8_t *p, uint8_t idbyte, int type, int codec, uint32_t raw, uint32_t stored,
		     uint64_t off)
{
	memset(p, 0, PS_PACK_IDX_ENT_LEN);
	memset(p, idbyte, 32);
	p[32] = (uint8_t)type;
	p[33] = (uint8_t)codec;
	ps_put_le32(p + 36, raw);
	ps_put_le32(p + 40, stored);
	ps_put_le64(p + 44, off);
}

static void test_pack_parsers(void)
{
	uint8_t f[56], sha[32], idx[3 * PS_PACK_IDX_ENT_LEN];
	uint64_t off;
	uint32_t n;
	struct ps_pack_entry *ents = NULL;
	/* a pack of 3 records of stored lengths 10, 0, 100: idx_off = 16 + 54 + 44 + 144 = 258 */
	const uint64_t io = 16 + 54 + 44 + 144, size = io + 3 * 52 + 56;

	make_footer(f, io, 3, 1);
	is_int(ps_pack_parse_footer(f, size, &off, &n, sha, &E), PS_OK, "a consistent footer parses");
	ok(off == io && n == 3 && sha[0] == 0xab && sha[31] == 0xab, "idx_off, count and sha");
	is_int(ps_pack_parse_footer(f, size, &off, &n, NULL, &E), PS_OK, "sha may be NULL");
	is_int(ps_pack_parse_footer(f, size + 1, &off, &n, sha, &E), PS_ECORRUPT,
	       "file size one too large: PS_ECORRUPT");
	is_int(ps_pack_parse_footer(f, size - 1, &off, &n, sha, &E), PS_ECORRUPT,
	       "file size one too small: PS_ECORRUPT");
	is_int(ps_pack_parse_footer(f, 71, &off, &n, sha, &E), PS_ECORRUPT, "file shorter than 72 bytes");
	make_footer(f, io, 3, 2);
	is_int(ps_pack_parse_footer(f, size, &off, &n, sha, &E), PS_ECORRUPT, "unknown version");
	make_footer(f, io, 3, 1);
	f[50] = 'X';
	is_int(ps_pack_parse_footer(f, size, &off, &n, sha, &E), PS_ECORRUPT, "damaged end magic");
	make_footer(f, io, 3, 1);
	f[55] = 1;
	is_int(ps_pack_parse_footer(f, size, &off, &n, sha, &E), PS_ECORRUPT, "end magic without NUL");
	make_footer(f, 15, 0, 1);
	is_int(ps_pack_parse_footer(f, 15 + 56, &off, &n, sha, &E), PS_ECORRUPT, "idx_off inside the header");
	make_footer(f, 16, 0, 1);
	is_int(ps_pack_parse_footer(f, 16 + 56, &off, &n, sha, &E), PS_OK, "an empty pack (72 bytes)");
	make_footer(f, UINT64_MAX, 0, 1);
	is_int(ps_pack_parse_footer(f, size, &off, &n, sha, &E), PS_ECORRUPT, "idx_off 2^64-1");
	make_footer(f, io, UINT32_MAX, 1);
	is_int(ps_pack_parse_footer(f, size, &off, &n, sha, &E), PS_ECORRUPT, "count 2^32-1");
	make_footer(f, io + 52, 3, 1);
	is_int(ps_pack_parse_footer(f, size, &off, &n, sha, &E), PS_ECORRUPT,
	       "idx_off and count that disagree with the size");
	make_footer(f, io, 2, 1);
	is_int(ps_pack_parse_footer(f, size, &off, &n, sha, &E), PS_ECORRUPT,
	       "a count too small for the index");
	/* count * 52 overflowing 32 bits must not wrap */
	{
		uint32_t big = 82595525;   /* 52 * big = 2^32 + 4 */
		make_footer(f, 16, big, 1);
		is_int(ps_pack_parse_footer(f, 16 + 56 + 4, &off, &n, sha, &E), PS_ECORRUPT,
		       "count whose index size wraps 32 bits");
	}

	/* the index */
	make_ent(idx, 1, PS_OBJ_CHUNK, PS_CODEC_NONE, 10, 10, 16);
	make_ent(idx + 52, 2, PS_OBJ_TREE, PS_CODEC_ZSTD, 0, 0, 16 + 54);
	make_ent(idx + 104, 3, PS_OBJ_CHUNK, PS_CODEC_LZ4, 5000, 100, 16 + 54 + 44);
	is_int(ps_pack_parse_index(idx, sizeof(idx), 3, io, &ents, &E), PS_OK, "a valid index parses");
	ok(ents && ents[0].id[0] == 1 && ents[1].type == PS_OBJ_TREE && ents[2].codec == PS_CODEC_LZ4 &&
	   ents[2].raw_len == 5000 && ents[2].stored_len == 100 && ents[2].offset == 114,
	   "entries decoded");
	free(ents);
	ents = NULL;
	is_int(ps_pack_parse_index(idx, sizeof(idx) - 1, 3, io, &ents, &E), PS_ECORRUPT, "wrong length");
	is_int(ps_pack_parse_index(idx, sizeof(idx), 2, io, &ents, &E), PS_ECORRUPT, "count too small");
	is_int(ps_pack_parse_index(idx, 104, 2, io, &ents, &E), PS_ECORRUPT,
	       "records that do not reach idx_off");
	is_int(ps_pack_parse_index(idx, sizeof(idx), 3, io + 1, &ents, &E), PS_ECORRUPT,
	       "a gap before the index");
	is_int(ps_pack_parse_index(idx, sizeof(idx), 3, io - 1, &ents, &E), PS_ECORRUPT,
	       "a record running into the index");
	is_int(ps_pack_parse_index(idx, 0, 0, 16, &ents, &E), PS_OK, "an empty index at 16");
	free(ents);
	ents = NULL;
	is_int(ps_pack_parse_index(idx, 0, 0, 100, &ents, &E), PS_ECORRUPT,
	       "an empty index that does not cover the pack");
	{
		static const struct { int field; const char *what; } muts[] = {
			{ 0, "type 0" }, { 1, "type 3" }, { 2, "codec 3" }, { 3, "raw over PS_OBJ_MAX" },
			{ 4, "stored over PS_OBJ_MAX" }, { 5, "offset not where the previous ended" },
			{ 6, "offset 2^64-44 (overflow)" }, { 7, "stored 2^32-1" },
		};
		for (size_t i = 0; i < PS_ARRAY_LEN(muts); i++) {
			uint8_t m[sizeof(idx)];
			memcpy(m, idx, sizeof(idx));
			switch (muts[i].field) {
			case 0: m[52 + 32] = 0; break;
			case 1: m[52 + 32] = 3; break;
			case 2: m[104 + 33] = 3; break;
			case 3: ps_put_le32(m + 104 + 36, PS_OBJ_MAX + 1); break;
			case 4: ps_put_le32(m + 104 + 40, PS_OBJ_MAX + 1); break;
			case 5: ps_put_le64(m + 52 + 44, 16 + 55); break;
			case 6: ps_put_le64(m + 44, UINT64_MAX - 43); break;
			case 7: ps_put_le32(m + 40, UINT32_MAX); break;
			}
			ents = NULL;
			is_int(ps_pack_parse_index(m, sizeof(m), 3, io, &ents, &E), PS_ECORRUPT,
			       "index entry with %s: PS_ECORRUPT", muts[i].what);
			ok(ents == NULL, "no entries returned");
		}
	}

	/* records */
	{
		uint8_t raw[3000], rec[PS_PACK_REC_HDR_LEN + 4000], id[32], *out = NULL;
		size_t olen, cap = ps_compress_bound(sizeof(raw));
		uint8_t *z = malloc(cap);
		struct ps_compression zc = { PS_CODEC_ZSTD, 3 };
		int type = 0, codec;
		size_t st;
		memset(raw, 'q', sizeof(raw));
		memcpy(raw, "header", 6);
		ps_sha256(raw, sizeof(raw), id);
		st = ps_compress(&zc, raw, sizeof(raw), z, cap, &codec);
		memset(rec, 0, sizeof(rec));
		rec[0] = PS_OBJ_CHUNK;
		rec[1] = (uint8_t)codec;
		ps_put_le32(rec + 4, sizeof(raw));
		ps_put_le32(rec + 8, (uint32_t)st);
		memcpy(rec + 12, id, 32);
		memcpy(rec + 44, z, st);
		is_int(ps_pack_decode_record(rec, 44 + st, id, &type, &out, &olen, &E), PS_OK,
		       "a valid zstd record decodes");
		ok(type == PS_OBJ_CHUNK && olen == sizeof(raw) && out && !memcmp(out, raw, olen),
		   "to the original bytes");
		free(out);
		out = NULL;
		is_int(ps_pack_decode_record(rec, 44 + st, NULL, &type, &out, &olen, &E), PS_OK,
		       "want_id may be NULL");
		free(out);
		out = NULL;
		is_int(ps_pack_decode_record(rec, 43, id, &type, &out, &olen, &E), PS_ECORRUPT,
		       "a record shorter than its header");
		is_int(ps_pack_decode_record(rec, 44 + st - 1, id, &type, &out, &olen, &E), PS_ECORRUPT,
		       "a record one byte short");
		is_int(ps_pack_decode_record(rec, 44 + st + 1, id, &type, &out, &olen, &E), PS_ECORRUPT,
		       "a record one byte long");
		{
			uint8_t other[32];
			memset(other, 7, 32);
			is_int(ps_pack_decode_record(rec, 44 + st, other, &type, &out, &olen, &E), PS_ECORRUPT,
			       "a record of another object");
		}
		rec[0] = 3;
		is_int(ps_pack_decode_record(rec, 44 + st, id, &type, &out, &olen, &E), PS_ECORRUPT, "type 3");
		rec[0] = PS_OBJ_CHUNK;
		rec[1] = 9;
		is_int(ps_pack_decode_record(rec, 44 + st, id, &type, &out, &olen, &E), PS_ECORRUPT, "codec 9");
		rec[1] = (uint8_t)codec;
		ps_put_le32(rec + 4, PS_OBJ_MAX + 1);
		is_int(ps_pack_decode_record(rec, 44 + st, id, &type, &out, &olen, &E), PS_ECORRUPT,
		       "raw length over PS_OBJ_MAX");
		ps_put_le32(rec + 4, sizeof(raw) - 1);
		is_int(ps_pack_decode_record(rec, 44 + st, id, &type, &out, &olen, &E), PS_ECORRUPT,
		       "a raw length that disagrees with the data");
		ps_put_le32(rec + 4, sizeof(raw));
		rec[44 + st / 2] ^= 0xff;
		is_int(ps_pack_decode_record(rec, 44 + st, id, &type, &out, &olen, &E), PS_ECORRUPT,
		       "damaged compressed data");
		rec[44 + st / 2] ^= 0xff;
		/* data that decodes but to other bytes: the SHA-256 catches it */
		rec[1] = PS_CODEC_NONE;
		ps_put_le32(rec + 4, 100);
		ps_put_le32(rec + 8, 100);
		memcpy(rec + 44, raw, 100);
		is_int(ps_pack_decode_record(rec, 144, id, &type, &out, &olen, &E), PS_ECORRUPT,
		       "content that does not hash to the id");
		ok(strstr(E.msg, "checksum") != NULL, "message: %s", E.msg);
		ok(out == NULL, "no output on failure");
		free(z);
	}
}

/* ------------------------------------------------------------ segments */

static void test_segments(void)
{
	uint8_t packs[3][32];
	struct ps_seg_entry ents[20], *dents = NULL;
	uint8_t (*dpacks)[32] = NULL;
	size_t np = 0, n = 0;
	struct ps_buf b = PS_BUF_INIT;
	int good;

	for (int i = 0; i < 3; i++)
		memset(packs[i], 0x10 * (i + 1), 32);
	for (int i = 0; i < 20; i++) {
		th_fill_random(ents[i].id, 32, (uint64_t)i + 500);
		ents[i].pack = (uint32_t)(i % 3);
		ents[i].off = 16 + (uint32_t)i * 1000;
		ents[i].stored_len = 44 + (uint32_t)i * 10;
		ents[i].raw_len = (uint32_t)i * 20;
		ents[i].type = i % 4 ? PS_OBJ_CHUNK : PS_OBJ_TREE;
	}
	is_int(ps_segment_encode(packs, 3, ents, 20, &b), 0, "encode a segment of 3 packs, 20 entries");
	is_int(b.len, 24 + 3 * 32 + 20 * 52 + 32, "segment size is header + packs + entries + sha");
	ok(!memcmp(b.data, "PSIX", 4) && ps_get_le32(b.data + 4) == 1 && ps_get_le32(b.data + 8) == 3 &&
	   ps_get_le64(b.data + 16) == 20, "segment header");
	is_int(ps_segment_decode(b.data, b.len, &dpacks, &np, &dents, &n, &E), PS_OK, "decode");
	ok(np == 3 && n == 20 && !memcmp(dpacks, packs, sizeof(packs)), "pack table round trips");
	good = 1;
	for (size_t i = 0; i < n; i++) {
		/* encode sorted ents in place: compare field by field */
		if (memcmp(dents[i].id, ents[i].id, 32) || dents[i].pack != ents[i].pack ||
		    dents[i].off != ents[i].off || dents[i].stored_len != ents[i].stored_len ||
		    dents[i].raw_len != ents[i].raw_len || dents[i].type != ents[i].type)
			good = 0;
		if (i && memcmp(dents[i - 1].id, dents[i].id, 32) >= 0)
			good = 0;
	}
	ok(good, "entries round trip, sorted by id");
	free(dpacks);
	free(dents);

	/* every single flipped byte is detected */
	good = 1;
	for (size_t i = 0; i < b.len; i++) {
		int rc;
		b.data[i] ^= 0x04;
		dpacks = NULL;
		dents = NULL;
		rc = ps_segment_decode(b.data, b.len, &dpacks, &np, &dents, &n, &E);
		b.data[i] ^= 0x04;
		if (rc != PS_ECORRUPT) {
			diag("flip at %zu: rc %d", i, rc);
			good = 0;
			free(dpacks);
			free(dents);
		}
	}
	ok(good, "each of %zu single-byte flips: PS_ECORRUPT", b.len);
	/* every truncation */
	good = 1;
	for (size_t l = 0; l < b.len; l++)
		if (ps_segment_decode(b.data, l, &dpacks, &np, &dents, &n, &E) != PS_ECORRUPT)
			good = 0;
	ok(good, "every truncation: PS_ECORRUPT");

	/* structurally bad segments with a valid checksum */
	{
		struct { const char *what; size_t off; uint8_t val; int field32; uint32_t v32; } muts[] = {
			{ "version 2", 4, 0, 1, 2 },
			{ "pack count + 1", 8, 0, 1, 4 },
			{ "an entry's pack number out of range", 24 + 96 + 52 * 5 + 32, 0, 1, 3 },
			{ "an entry of type 0", 24 + 96 + 52 * 2 + 48, 0, 0, 0 },
			{ "an entry of type 3", 24 + 96 + 52 * 2 + 48, 3, 0, 0 },
			{ "a record length below the header", 24 + 96 + 52 * 7 + 40, 0, 1, 43 },
			{ "a record length over the maximum", 24 + 96 + 52 * 7 + 40, 0, 1, PS_OBJ_MAX + 45 },
			{ "a raw length over the maximum", 24 + 96 + 52 * 7 + 44, 0, 1, PS_OBJ_MAX + 1 },
			{ "entries out of order", 24 + 96 + 52 * 10, 0, 0, 0 },
		};
		for (size_t i = 0; i < PS_ARRAY_LEN(muts); i++) {
			uint8_t *m = malloc(b.len);
			memcpy(m, b.data, b.len);
			if (muts[i].field32)
				ps_put_le32(m + muts[i].off, muts[i].v32);
			else if (!strcmp(muts[i].what, "entries out of order"))
				memset(m + muts[i].off, 0xff, 32);   /* id larger than the next */
			else
				m[muts[i].off] = muts[i].val;
			fix_sha_tail(m, b.len);
			dpacks = NULL;
			dents = NULL;
			is_int(ps_segment_decode(m, b.len, &dpacks, &np, &dents, &n, &E), PS_ECORRUPT,
			       "segment with %s: PS_ECORRUPT", muts[i].what);
			ok(!dpacks && !dents, "nothing returned");
			free(m);
		}
	}
	/* huge counts must not allocate or read out of bounds */
	{
		uint8_t m[24 + 32];
		memset(m, 0, sizeof(m));
		memcpy(m, "PSIX", 4);
		ps_put_le32(m + 4, 1);
		ps_put_le32(m + 8, UINT32_MAX);
		ps_put_le64(m + 16, UINT64_MAX);
		fix_sha_tail(m, sizeof(m));
		is_int(ps_segment_decode(m, sizeof(m), &dpacks, &np, &dents, &n, &E), PS_ECORRUPT,
		       "2^32-1 packs and 2^64-1 entries: PS_ECORRUPT");
		ps_put_le32(m + 8, 0);
		ps_put_le64(m + 16, 0x4ec4ec4ec4ec4ec5ULL);   /* 52 * this wraps to 4 */
		fix_sha_tail(m, sizeof(m));
		is_int(ps_segment_decode(m, sizeof(m), &dpacks, &np, &dents, &n, &E), PS_ECORRUPT,
		       "an entry count whose size wraps: PS_ECORRUPT");
		ps_put_le64(m + 16, 0);
		fix_sha_tail(m, sizeof(m));
		is_int(ps_segment_decode(m, sizeof(m), &dpacks, &np, &dents, &n, &E), PS_OK,
		       "an empty segment is valid");
		ok(np == 0 && n == 0, "with nothing in it");
		free(dpacks);
		free(dents);
	}
	/* the empty segment from the encoder */
	ps_buf_reset(&b);
	is_int(ps_segment_encode(packs, 0, ents, 0, &b), 0, "encode an empty segment");
	is_int(ps_segment_decode(b.data, b.len, &dpacks, &np, &dents, &n, &E), PS_OK, "decode it");
	free(dpacks);
	free(dents);
	ps_buf_release(&b);
}

/* ------------------------------------------------------------ alloc failure */

/* Progress messages from the child running the allocation-failure rounds. */
struct af_msg {
	int32_t round;
	int32_t what;       /* 1 puts returned, 2 flush returned, 64 + bits: round done */
};

static void af_send(int fd, long round, int what)
{
	struct af_msg m = { (int32_t)round, what };
	if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(99);
}

/* One round of puts with the nfail-th allocation failing.  Result bits:
 * 1 a put or flush returned something but PS_OK/PS_ERROR, 2 an object was
 * missing after a clean retry, 4 a pack failed verification. */
static void alloc_round(long nfail, int fd)
{
	static uint8_t data[3][30000];
	uint8_t ids[4][32];
	char name[32];
	const char *dir;
	struct ps_store *s;
	int rc[5], bits = 0;
	for (int i = 0; i < 3; i++)
		th_fill_random(data[i], sizeof(data[i]), (uint64_t)i + 900 + (uint64_t)nfail * 10);
	snprintf(name, sizeof(name), "af%ld", nfail);
	dir = new_store(name, NULL);
	s = open_store(dir);
	ps_store_load_index(s, &E);
	ps_alloc_fail_after(nfail);
	rc[0] = ps_store_put(s, PS_OBJ_CHUNK, data[0], sizeof(data[0]), NULL, NULL, ids[0], NULL, &E);
	rc[1] = ps_store_put(s, PS_OBJ_CHUNK, data[1], sizeof(data[1]), NULL, NULL, ids[1], NULL, &E);
	rc[2] = ps_store_put(s, PS_OBJ_TREE, data[2], 1000, NULL, NULL, ids[2], NULL, &E);
	rc[3] = ps_store_put(s, PS_OBJ_CHUNK, data[1], sizeof(data[1]), NULL, NULL, ids[3], NULL, &E);
	af_send(fd, nfail, 1);
	rc[4] = ps_store_flush(s, &E);
	ps_alloc_fail_after(0);
	af_send(fd, nfail, 2);
	for (int i = 0; i < 5; i++)
		if (rc[i] != PS_OK && rc[i] != PS_ERROR)
			bits |= 1;
	/* what failed is retried without failures; then everything must read back */
	ps_store_put(s, PS_OBJ_CHUNK, data[0], sizeof(data[0]), NULL, NULL, ids[0], NULL, &E);
	ps_store_put(s, PS_OBJ_CHUNK, data[1], sizeof(data[1]), NULL, NULL, ids[1], NULL, &E);
	ps_store_put(s, PS_OBJ_TREE, data[2], 1000, NULL, NULL, ids[2], NULL, &E);
	if (ps_store_flush(s, &E))
		bits |= 2;
	ps_store_free(s);
	s = open_store(dir);
	for (int i = 0; i < 3; i++) {
		uint8_t *out = NULL;
		size_t len;
		if (ps_store_get(s, ids[i], 0, &out, &len, &E) || len != (i == 2 ? 1000 : sizeof(data[i])) ||
		    memcmp(out, data[i], len)) {
			if (getenv("PS_TEST_VERBOSE"))
				diag("allocation failure %ld: object %d lost after a retried put: %s", nfail, i,
				     E.msg);
			bits |= 2;
		}
		free(out);
	}
	/* every pack's trailer must still describe its records */
	{
		uint8_t (*pids)[32] = NULL;
		size_t np = 0;
		ps_store_list_packs(s, &pids, &np, &E);
		for (size_t k = 0; k < np; k++) {
			struct ps_error e2;
			if (ps_pack_verify(s, pids[k], NULL, NULL, NULL, &e2)) {
				if (getenv("PS_TEST_VERBOSE"))
					diag("allocation failure %ld: %s", nfail, e2.msg);
				bits |= 4;
			}
		}
		free(pids);
	}
	ps_store_free(s);
	fflush(stdout);
	af_send(fd, nfail, 64 + bits);
}

static void test_put_alloc_failure(void)
{
	int put_crash = 0, flush_crash = 0, unclean = 0, lost = 0, unverified = 0, done = 0;
	long first_flush_crash = 0, first_lost = 0, first_unverified = 0, next = 1;
	/* one child runs the rounds from `next` on; when it dies, the round it
	 * was in is recorded as a crash and a new child carries on after it */
	while (next <= 50) {
		int fds[2], st = 0, stage = 0;
		long cur = next;
		struct af_msg m;
		pid_t p;
		if (pipe(fds))
			bail_out("pipe");
		fflush(stdout);
		p = fork();
		if (p == 0) {
			close(fds[0]);
			for (long n = next; n <= 50; n++)
				alloc_round(n, fds[1]);
			_exit(0);
		}
		close(fds[1]);
		while (read(fds[0], &m, sizeof(m)) == (ssize_t)sizeof(m)) {
			cur = m.round;
			stage = m.what;
			if (m.what < 64)
				continue;
			done++;
			if ((m.what - 64) & 1)
				unclean++;
			if (((m.what - 64) & 2) && !lost++)
				first_lost = m.round;
			if (((m.what - 64) & 4) && !unverified++)
				first_unverified = m.round;
		}
		close(fds[0]);
		waitpid(p, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && stage >= 64 && cur == 50)
			break;
		/* died in round `cur` (after `stage`), or before its first message */
		if (stage >= 64)
			cur++;
		if (stage == 1 || stage == 2) {
			if (!flush_crash++)
				first_flush_crash = cur;
		} else {
			put_crash++;
			diag("allocation failure %ld: a put crashed (status 0x%x)", cur, st);
		}
		next = cur + 1;
	}
	is_int(put_crash, 0, "ps_store_put under allocation failure 1..50 never crashes");
	is_int(unclean, 0, "put and flush return PS_OK or PS_ERROR");
	is_int(flush_crash, 0, "flush after failed puts never crashes (first crash at failure %ld)",
	       first_flush_crash);
	is_int(lost, 0, "objects whose put failed are stored by a retry (first loss at failure %ld)",
	       first_lost);
	is_int(unverified, 0, "every pack written under allocation failures verifies (first "
	       "failure at %ld)", first_unverified);
	diag("%d of 50 rounds completed", done);
}

/* ------------------------------------------------------------ locks */

static pid_t dead_pid(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	return p;
}

static void write_lock_file(const char *dir, const char *name, const char *host, long pid,
			    const char *boot, long long expires)
{
	char path[4200], text[1024];
	snprintf(path, sizeof(path), "%s/locks/%s.lock", dir, name);
	snprintf(text, sizeof(text), "host %s\npid %ld\nboot_id %s\ncreated 1000\nexpires %lld\n", host,
		 pid, boot, expires);
	th_write_file(path, text, strlen(text));
}

static void test_locks(void)
{
	const char *dir = new_store("lk", NULL);
	struct ps_store *s = open_store(dir), *s2 = open_store(dir);
	struct ps_lock *l = NULL, *l2 = NULL;
	char path[4200];
	const char *boot = ps_boot_id()[0] ? ps_boot_id() : "unknown";
	double t0;

	snprintf(path, sizeof(path), "%s/locks/proj.lock", dir);
	is_int(ps_lock_acquire(s, "proj", 0, 60, &l, &E), PS_OK, "acquire a free lock");
	ok(access(path, F_OK) == 0, "the lock file exists");
	{
		size_t len;
		char *t = (char *)th_read_file(path, &len), want[64];
		snprintf(want, sizeof(want), "pid %d\n", (int)getpid());
		ok(t && strstr(t, want) && strstr(t, "host ") && strstr(t, "expires "),
		   "the lock file names host and pid");
		free(t);
	}
	is_int(ps_lock_acquire(s2, "proj", 0, 60, &l2, &E), PS_ELOCKED, "a second acquire: PS_ELOCKED");
	ok(strstr(E.msg, "locked by process") != NULL, "message names the holder: %s", E.msg);
	is_int(ps_lock_acquire(s2, "other", 0, 60, &l2, &E), PS_OK, "another project's lock is free");
	ps_lock_release(l2);
	t0 = th_now();
	is_int(ps_lock_acquire(s2, "proj", 0.3, 60, &l2, &E), PS_ELOCKED, "waiting 0.3 s: still locked");
	ok(th_now() - t0 >= 0.29 && th_now() - t0 < 3, "the wait took %.2f s", th_now() - t0);
	is_int(ps_lock_refresh(l, &E), PS_OK, "refresh our lock");
	ok(access(path, F_OK) == 0, "still held after refresh");
	ps_lock_release(l);
	ok(access(path, F_OK) != 0, "release removes the lock file");
	is_int(ps_lock_acquire(s2, "proj", 0, 60, &l2, &E), PS_OK, "acquire after release");
	ps_lock_release(l2);
	ps_lock_release(NULL);

	/* stale locks are broken */
	write_lock_file(dir, "proj", ps_hostname(), (long)dead_pid(), boot, 0);
	is_int(ps_lock_acquire(s, "proj", 0, 60, &l, &E), PS_OK,
	       "a lock of a dead process on this host is broken");
	ps_lock_release(l);
	write_lock_file(dir, "proj", ps_hostname(), (long)getppid(), boot, 0);
	is_int(ps_lock_acquire(s, "proj", 0, 60, &l, &E), PS_ELOCKED,
	       "a lock of a live process on this host holds");
	write_lock_file(dir, "proj", ps_hostname(), (long)getppid(), "not-this-boot", 0);
	is_int(ps_lock_acquire(s, "proj", 0, 60, &l, &E), PS_OK,
	       "a lock from an earlier boot of this host is broken");
	ps_lock_release(l);
	write_lock_file(dir, "proj", "elsewhere.example", 4242, "x", 1000);
	is_int(ps_lock_acquire(s, "proj", 0, 60, &l, &E), PS_OK, "an expired lock of another host is broken");
	ps_lock_release(l);
	write_lock_file(dir, "proj", "elsewhere.example", 4242, "x", (long long)(ps_now_ns() + 3600e9));
	is_int(ps_lock_acquire(s, "proj", 0, 60, &l, &E), PS_ELOCKED,
	       "an unexpired lock of another host holds");
	ok(strstr(E.msg, "elsewhere.example") != NULL, "message names the host: %s", E.msg);
	th_write_file(path, "garbage\n\x01\x02", 10);
	is_int(ps_lock_acquire(s, "proj", 0, 60, &l, &E), PS_OK, "a damaged lock file is broken");
	/* someone takes it over: our refresh and release must not touch theirs */
	write_lock_file(dir, "proj", "elsewhere.example", 4242, "x", (long long)(ps_now_ns() + 3600e9));
	is_int(ps_lock_refresh(l, &E), PS_ELOCKED, "refresh of a lock taken over: PS_ELOCKED");
	ps_lock_release(l);
	ok(access(path, F_OK) == 0, "release leaves the other holder's lock alone");
	unlink(path);
	is_int(count_files(th_tmpdir("lk/locks"), ""), 0, "no temporary files are left in locks/");
	ps_store_free(s);
	ps_store_free(s2);
}

/* ------------------------------------------------------------ leftovers */

static void test_leftovers_and_compact(void)
{
	const char *dir = new_store("lo", NULL);
	struct ps_store *s = open_store(dir);
	static uint8_t buf[400000];
	uint8_t ids[6][32];
	char tmpdir[4200], name[4400], dead[4400];
	uint64_t removed = 0;
	DIR *d;
	struct dirent *de;
	pid_t dp = dead_pid();

	/* a writer that finished packs but died before publishing a segment */
	ps_store_load_index(s, &E);
	s->pack_target = 1u << 20;
	for (int i = 0; i < 6; i++) {
		th_fill_random(buf, sizeof(buf), (uint64_t)i + 4000);
		ps_store_put(s, PS_OBJ_CHUNK, buf, sizeof(buf), NULL, NULL, ids[i], NULL, &E);
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir);
	d = opendir(tmpdir);
	name[0] = 0;
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".inflight"))
			snprintf(name, sizeof(name), "%s/%s", tmpdir, de->d_name);
	closedir(d);
	ok(name[0] != 0, "a journal of finished packs exists");
	/* "crash": copy the journal under the name a dead process would have used */
	snprintf(dead, sizeof(dead), "%s/.tmp-%s-%s-%d-0000abcd.inflight", tmpdir, ps_hostname(),
		 ps_boot_id(), (int)dp);
	{
		size_t l;
		uint8_t *j = copy_file(name, dead, &l);
		ok(l > 0 && l % 65 == 0, "the journal holds %zu pack names", l / 65);
		free(j);
	}
	ps_store_abort(s);
	ps_store_free(s);
	unlink(name);
	snprintf(name, sizeof(name), "%s/.tmp-%s-%s-%d-00001234", tmpdir, ps_hostname(), ps_boot_id(),
		 (int)dp);
	th_write_file(name, "junk", 4);
	snprintf(name, sizeof(name), "%s/.tmp-%s-%s-%d-00005678", tmpdir, ps_hostname(), ps_boot_id(),
		 (int)getpid());
	th_write_file(name, "mine", 4);
	snprintf(name, sizeof(name), "%s/unrelated", tmpdir);
	th_write_file(name, "x", 1);

	s = open_store(dir);
	is_int(ps_store_clean_tmp(s, "tmp", &removed, &E), PS_OK, "clean tmp/");
	is_int(removed, 2, "the dead writer's journal and temp file are removed");
	is_int(count_files(tmpdir, ""), 2, "a live process's temp file and a foreign name stay");
	ps_store_free(s);
	s = open_store(dir);
	{
		int found = 0;
		for (int i = 0; i < 6; i++) {
			uint8_t *out = NULL;
			size_t len;
			th_fill_random(buf, sizeof(buf), (uint64_t)i + 4000);
			if (!ps_store_get(s, ids[i], 0, &out, &len, &E) && len == sizeof(buf) &&
			    !memcmp(out, buf, len))
				found++;
			free(out);
		}
		is_int(found, 6, "objects of both journalled packs are indexed and readable");
	}
	ps_store_free(s);

	/* compaction */
	for (int r = 0; r < 4; r++) {
		s = open_store(dir);
		ps_store_load_index(s, &E);
		th_fill_random(buf, 1000, (uint64_t)r + 7000);
		ps_store_put(s, PS_OBJ_CHUNK, buf, 1000, NULL, NULL, ids[r], NULL, &E);
		ps_store_flush(s, &E);
		ps_store_free(s);
	}
	snprintf(name, sizeof(name), "%s/index", dir);
	is_int(count_files(name, ".idx"), 6, "6 segments (with the seed)");
	s = open_store(dir);
	is_int(ps_index_compact(s, 10, &E), PS_OK, "compact with max 10: nothing to do");
	is_int(count_files(name, ".idx"), 6, "still 6");
	is_int(ps_index_compact(s, 2, &E), PS_OK, "compact with max 2");
	is_int(count_files(name, ".idx"), 1, "merged into one segment");
	ps_store_free(s);
	s = open_store(dir);
	{
		int found = 0;
		for (int r = 0; r < 4; r++) {
			uint8_t *out = NULL;
			size_t len;
			th_fill_random(buf, 1000, (uint64_t)r + 7000);
			if (!ps_store_get(s, ids[r], 0, &out, &len, &E) && len == 1000 && !memcmp(out, buf, 1000))
				found++;
			free(out);
		}
		is_int(found, 4, "every object is found through the merged segment");
		is_int(s->idx_n, 10, "10 objects indexed");
	}
	ps_store_free(s);
}

int main(void)
{
	test_init_open();
	test_project_ids();
	test_empty_index();
	test_put_get();
	test_many_packs();
	test_corruption();
	test_pack_parsers();
	test_segments();
	test_put_alloc_failure();
	test_locks();
	test_leftovers_and_compact();
	return done_testing();
}
