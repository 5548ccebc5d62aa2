/*
 * test_save_batch.c - group commit of saves (ps_save with opts.batch, as
 * projstore migrate uses it): nothing of a batch is visible before its commit
 * (no ref, no segment, no pack) while its saves hold their project locks; the
 * commit publishes every snapshot with one pack and one index segment, and a
 * fresh handle reads them; an unchanged save in a batch publishes nothing; a
 * batch freed uncommitted publishes nothing and releases its locks; and a
 * compaction by another handle while a batch waits (the index changed under
 * its unflushed writes) makes the next save of the batch publish the batch
 * first, and nothing is lost.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "store/store_int.h"
#include "snap/snap_int.h"

#include <dirent.h>

static struct ps_error E;

static int count_dir(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);
		if (de->d_name[0] != '.' && l > sl && !strcmp(de->d_name + l - sl, suffix))
			n++;
	}
	closedir(d);
	return n;
}

static int count_packs(const char *store)
{
	char p[4300];
	DIR *d;
	struct dirent *de;
	int n = 0;
	snprintf(p, sizeof(p), "%s/packs", store);
	if (!(d = opendir(p)))
		return 0;
	while ((de = readdir(d))) {
		char sub[4400];
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", p, de->d_name);
		n += count_dir(sub, ".pack");
	}
	closedir(d);
	return n;
}

static void make_home(const char *dir, int seed)
{
	char p[4300], text[256];
	mkdir(dir, 0755);
	for (int i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s/file-%d", dir, i);
		snprintf(text, sizeof(text), "home %d, file %d: some text of its own\n", seed, i);
		th_write_file(p, text, strlen(text));
	}
	snprintf(p, sizeof(p), "%s/sub", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/sub/data", dir);
	{
		uint8_t buf[100000];
		th_fill_random(buf, sizeof(buf), (uint64_t)seed);
		th_write_file(p, buf, sizeof(buf));
	}
}

static size_t nsnaps(struct ps_store *s, const char *project)
{
	struct ps_snapshot_info *v = NULL;
	size_t n = 0;
	if (ps_snapshot_list(s, project, &v, &n, &E))
		return 999;
	ps_free(v);
	return n;
}

static int lock_exists(const char *store, const char *project)
{
	char p[4300];
	snprintf(p, sizeof(p), "%s/locks/%s.lock", store, project);
	return access(p, F_OK) == 0;
}

/* Every object below the newest snapshot's root reads back through a new
 * handle. */
static int readable(const char *loc, const char *project)
{
	struct ps_store *s = NULL;
	struct ps_snapshot_info si;
	uint8_t *data = NULL;
	size_t len;
	int ok = 0;
	if (ps_store_open(&s, loc, &E))
		return 0;
	if (ps_resolve_root(s, project, "latest", &si, &E) == PS_OK &&
	    ps_store_get(s, si.root, PS_OBJ_TREE, &data, &len, &E) == PS_OK)
		ok = 1;
	ps_free(data);
	ps_store_free(s);
	return ok;
}

int main(void)
{
	const char *root = th_tmpdir(NULL);
	char loc[4200], idx[4300], home[4][4300], cache[4300];
	struct ps_store *s = NULL, *other = NULL;
	struct ps_save_batch *b = NULL;
	struct ps_save_opts o = PS_SAVE_OPTS_INIT;
	struct ps_snapshot_info si[4];
	int res[8];

	snprintf(loc, sizeof(loc), "%s/store", root);
	snprintf(idx, sizeof(idx), "%s/index", loc);
	snprintf(cache, sizeof(cache), "%s/cache", root);
	for (int i = 0; i < 4; i++) {
		snprintf(home[i], sizeof(home[i]), "%s/home-%d", root, i);
		make_home(home[i], i + 1);
	}
	if (ps_store_init(loc, NULL, &E) || ps_store_open(&s, loc, &E))
		bail_out(E.msg);
	ok(ps_save_batch_new(&b, &E) == PS_OK && ps_save_batch_count(b) == 0, "a new batch is empty");
	o.cache_dir = cache;
	o.threads = 1;
	o.skip_unchanged = 1;
	o.batch = b;

	/* two saves wait in the batch */
	is_int(ps_save(s, "p0", home[0], &o, &si[0], &E), PS_OK, "first save joins the batch");
	is_int(ps_save(s, "p1", home[1], &o, &si[1], &E), PS_OK, "second save joins the batch");
	is_int((long long)ps_save_batch_count(b), 2, "two saves in the batch");
	ok(si[0].name[0] && si[0].files == 6 && !si[0].unchanged, "the first describes its snapshot");
	is_int((long long)nsnaps(s, "p0") + (long long)nsnaps(s, "p1"), 0, "no ref before the commit");
	is_int(count_dir(idx, ".idx"), 0, "no index segment before the commit");
	is_int(count_packs(loc), 0, "no pack before the commit");
	ok(lock_exists(loc, "p0") && lock_exists(loc, "p1"), "both project locks are held");

	/* the commit */
	memset(res, 0xff, sizeof(res));
	is_int(ps_save_batch_commit(s, b, res, &E), PS_OK, "the commit");
	ok(res[0] == PS_OK && res[1] == PS_OK, "both published");
	is_int((long long)ps_save_batch_count(b), 0, "the batch is empty after");
	ok(nsnaps(s, "p0") == 1 && nsnaps(s, "p1") == 1, "one snapshot each");
	is_int(count_dir(idx, ".idx"), 1, "one index segment for both");
	is_int(count_packs(loc), 1, "one pack for both");
	ok(!lock_exists(loc, "p0") && !lock_exists(loc, "p1"), "locks released");
	ok(readable(loc, "p0") && readable(loc, "p1"), "a new handle reads both roots");

	/* unchanged: nothing to publish */
	is_int(ps_save(s, "p0", home[0], &o, &si[2], &E), PS_OK, "an unchanged save joins the batch");
	ok(si[2].unchanged && !strcmp(si[2].name, si[0].name), "it names the newest snapshot");
	is_int(ps_save_batch_commit(s, b, res, &E), PS_OK, "its commit");
	ok(res[0] == PS_OK && nsnaps(s, "p0") == 1, "no second snapshot");

	/* freed uncommitted: nothing published, lock released */
	is_int(ps_save(s, "p2", home[2], &o, &si[2], &E), PS_OK, "a save joins a batch");
	ps_save_batch_free(s, b);
	b = NULL;
	ps_store_free(s);
	s = NULL;
	ok(!lock_exists(loc, "p2"), "the batch freed uncommitted releases the lock");
	if (ps_store_open(&s, loc, &E))
		bail_out(E.msg);
	is_int((long long)nsnaps(s, "p2"), 0, "and published nothing");

	/* a compaction by another handle while a batch waits */
	if (ps_save_batch_new(&b, &E) || ps_store_open(&other, loc, &E))
		bail_out(E.msg);
	o.batch = b;
	is_int(ps_save(s, "p2", home[2], &o, &si[2], &E), PS_OK, "a save joins a new batch");
	for (int i = 0; i < 34; i++) {
		char text[64];
		uint8_t id[32];
		snprintf(text, sizeof(text), "another writer's object %d", i);
		if (ps_store_put(other, PS_OBJ_CHUNK, text, strlen(text), NULL, NULL, id, NULL, &E) ||
		    ps_store_flush(other, &E))
			bail_out(E.msg);
	}
	ok(count_dir(idx, ".idx") > 32, "another handle published many segments");
	is_int(ps_index_compact(other, 32, &E), PS_OK, "and compacted them");
	is_int(count_dir(idx, ".idx"), 1, "one segment left");
	is_int(ps_save(s, "p3", home[3], &o, &si[3], &E), PS_OK,
	       "the next save of the batch goes on (the batch so far is published first)");
	ok(nsnaps(s, "p2") == 1 && !lock_exists(loc, "p2"), "p2 was published early");
	is_int(ps_save_batch_commit(s, b, res, &E), PS_OK, "the commit");
	ok(res[0] == PS_OK && res[1] == PS_OK, "both reported published");
	ok(nsnaps(s, "p3") == 1 && readable(loc, "p2") && readable(loc, "p3"),
	   "both snapshots read back through a new handle");

	ps_save_batch_free(s, b);
	ps_store_free(other);
	ps_store_free(s);
	return done_testing();
}
