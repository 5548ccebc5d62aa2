/*
 * test_stat_digest.c - the stat digest (snap_digest.c): a save's digest
 * (opts.stat_digest, made by its worker threads in any order) equals the
 * one ps_stat_digest's single-threaded walk gives for the unchanged tree,
 * with 1 and with 4 threads and with excludes (stored and given); it
 * changes with content (mtime), mode, an added, removed or renamed entry,
 * an empty file and an empty directory, and a touched excluded file does
 * not change it; unreadable directories count as errors on both sides;
 * the 256-bit sum carries; a batch save reports it too.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "store/store_int.h"
#include "snap/snap_int.h"

#include <sys/time.h>
#include <utime.h>

static struct ps_error E;

static void make_tree(const char *dir)
{
	char p[4300];
	mkdir(dir, 0755);
	for (int d = 0; d < 6; d++) {
		snprintf(p, sizeof(p), "%s/dir-%d", dir, d);
		mkdir(p, 0755);
		for (int f = 0; f < 20; f++) {
			char text[128];
			snprintf(p, sizeof(p), "%s/dir-%d/file-%02d.txt", dir, d, f);
			snprintf(text, sizeof(text), "dir %d file %d\n", d, f);
			th_write_file(p, text, strlen(text));
		}
		snprintf(p, sizeof(p), "%s/dir-%d/deeper/and-deeper", dir, d);
		mkdir(p, 0755);   /* fails for the first: made below */
	}
	for (int d = 0; d < 6; d++) {
		snprintf(p, sizeof(p), "%s/dir-%d/deeper", dir, d);
		mkdir(p, 0755);
		snprintf(p, sizeof(p), "%s/dir-%d/deeper/and-deeper", dir, d);
		mkdir(p, 0755);
		snprintf(p, sizeof(p), "%s/dir-%d/deeper/and-deeper/leaf", dir, d);
		th_write_file(p, "leaf\n", 5);
	}
	snprintf(p, sizeof(p), "%s/cache.tmp", dir);
	th_write_file(p, "scratch\n", 8);
	snprintf(p, sizeof(p), "%s/link", dir);
	if (symlink("dir-0/file-00.txt", p))
		bail_out("symlink");
}

static int walk_digest(struct ps_store *s, const char *project, const char *dir,
		       const struct ps_save_opts *o, struct ps_stat_digest *out)
{
	memset(out, 0, sizeof(*out));
	return ps_stat_digest(s, project, dir, o, out, &E);
}

static int save_digest(struct ps_store *s, const char *project, const char *dir,
		       struct ps_save_opts *o, struct ps_stat_digest *out)
{
	struct ps_snapshot_info si;
	memset(out, 0, sizeof(*out));
	o->stat_digest = out;
	return ps_save(s, project, dir, o, &si, &E);
}

static int same(const struct ps_stat_digest *a, const struct ps_stat_digest *b)
{
	return !memcmp(a->digest, b->digest, 32) && a->entries == b->entries &&
	       a->errors == b->errors;
}

static void set_mtime(const char *path, time_t t)
{
	struct timeval tv[2] = { { t, 0 }, { t, 0 } };
	if (utimes(path, tv))
		bail_out("utimes");
}

int main(void)
{
	const char *root = th_tmpdir(NULL);
	char loc[4200], home[4300], p[4400], cache[4300];
	struct ps_store *s = NULL;
	struct ps_save_opts o = PS_SAVE_OPTS_INIT;
	struct ps_stat_digest a, b, c;

	snprintf(loc, sizeof(loc), "%s/store", root);
	snprintf(home, sizeof(home), "%s/home", root);
	snprintf(cache, sizeof(cache), "%s/cache", root);
	make_tree(home);
	if (ps_store_init(loc, NULL, &E) || ps_store_open(&s, loc, &E))
		bail_out(E.msg);
	o.cache_dir = cache;

	/* the sum carries from word to word */
	{
		struct ps_sdig d1, d2;
		struct ps_stat_digest x, y;
		uint8_t ones[32], one[32] = { 1 };
		memset(ones, 0xff, sizeof(ones));
		ps_sdig_init(&d1);
		ps_sdig_init(&d2);
		ps_sdig_addh(&d1, ones, 0);
		ps_sdig_addh(&d1, one, 0);        /* 2^256 - 1 + 1 = 0 */
		ok(!d1.sum[0] && !d1.sum[1] && !d1.sum[2] && !d1.sum[3], "the sum wraps modulo 2^256");
		ps_sdig_addh(&d2, one, 0);
		ps_sdig_addh(&d2, ones, 0);
		ps_sdig_final(&d1, &x);
		ps_sdig_final(&d2, &y);
		ok(same(&x, &y), "and does not depend on the order");
	}

	/* the save's digest is the walk's */
	o.threads = 1;
	is_int(save_digest(s, "p", home, &o, &a), PS_OK, "a save with one thread reports a digest");
	is_int(walk_digest(s, "p", home, &o, &b), PS_OK, "the walk of the same tree");
	ok(same(&a, &b), "the same digest");
	/* 1 root + 6 x (dir-N + 20 files + deeper + and-deeper + leaf) + cache.tmp + link */
	is_int((long long)b.entries, 1 + 6 * 24 + 2, "every entry counted once");
	is_int((long long)b.errors, 0, "no errors");
	o.threads = 4;
	is_int(save_digest(s, "p", home, &o, &c), PS_OK, "a save with four threads");
	ok(same(&a, &c), "the same digest, whatever the order");

	/* changes */
	snprintf(p, sizeof(p), "%s/dir-3/file-07.txt", home);
	set_mtime(p, 1000000000);
	walk_digest(s, "p", home, &o, &b);
	ok(!same(&a, &b), "an mtime changes it");
	is_int(save_digest(s, "p", home, &o, &a), PS_OK, "saved again");
	ok(same(&a, &b), "and the save agrees");
	chmod(p, 0600);
	walk_digest(s, "p", home, &o, &c);
	ok(!same(&b, &c), "a mode changes it");
	snprintf(p, sizeof(p), "%s/dir-5/new-empty", home);
	th_write_file(p, "", 0);
	walk_digest(s, "p", home, &o, &b);
	ok(!same(&b, &c) && b.entries == c.entries + 1, "an empty file is an entry");
	snprintf(p, sizeof(p), "%s/dir-5/empty-dir", home);
	mkdir(p, 0755);
	walk_digest(s, "p", home, &o, &c);
	ok(!same(&b, &c) && c.entries == b.entries + 1, "so is an empty directory");
	{
		char q[4400];
		snprintf(p, sizeof(p), "%s/dir-5/new-empty", home);
		snprintf(q, sizeof(q), "%s/dir-5/renamed", home);
		if (rename(p, q))
			bail_out("rename");
		walk_digest(s, "p", home, &o, &b);
		ok(!same(&b, &c) && b.entries == c.entries, "a rename changes it");
		unlink(q);
		walk_digest(s, "p", home, &o, &c);
		ok(c.entries == b.entries - 1, "a removal too");
	}
	is_int(save_digest(s, "p", home, &o, &a), PS_OK, "saved");
	ok(same(&a, &c), "the save agrees");

	/* excludes: stored and given, left out on both sides */
	{
		const char *ex[] = { "*.tmp", NULL };
		const char *given[] = { "dir-1/deeper", NULL };
		is_int(ps_excludes_set(s, "p", ex, 1, &E), PS_OK, "an exclude is stored");
		o.excludes = given;
		is_int(save_digest(s, "p", home, &o, &a), PS_OK, "a save with excludes");
		walk_digest(s, "p", home, &o, &b);
		ok(same(&a, &b), "the walk leaves out the same entries");
		is_int((long long)b.entries, (long long)c.entries - 1 - 3,
		       "the excluded file and directory (with what is in it) are not counted");
		snprintf(p, sizeof(p), "%s/cache.tmp", home);
		set_mtime(p, 1000000001);
		snprintf(p, sizeof(p), "%s/dir-1/deeper/and-deeper/leaf", home);
		set_mtime(p, 1000000001);
		walk_digest(s, "p", home, &o, &c);
		ok(same(&b, &c), "touching excluded entries changes nothing");
		o.excludes = NULL;
		ps_excludes_set(s, "p", NULL, 0, &E);
	}

	/* an unreadable directory is an error on both sides (as root it is
	 * readable anyway: then there is nothing to compare) */
	snprintf(p, sizeof(p), "%s/dir-2", home);
	chmod(p, 0);
	if (geteuid() != 0) {
		struct ps_snapshot_info si;
		o.stat_digest = &a;
		ps_save(s, "p", home, &o, &si, &E);
		walk_digest(s, "p", home, &o, &b);
		ok(a.errors == 1 && b.errors == 1, "an unreadable directory counts as one error");
		ok(same(&a, &b), "on both sides");
	} else {
		skip(2, "root reads every directory");
	}
	chmod(p, 0755);

	/* relative paths longer than 1 KiB (hashed from the heap, not the stack) */
	{
		char name[101];
		size_t l = strlen(home);
		memset(name, 'd', 100);
		name[100] = 0;
		walk_digest(s, "p", home, &o, &c);
		snprintf(p, sizeof(p), "%s", home);
		for (int i = 0; i < 14 && l + 102 < sizeof(p); i++) {
			l += (size_t)snprintf(p + l, sizeof(p) - l, "/%s", name);
			mkdir(p, 0755);
		}
		is_int(save_digest(s, "p", home, &o, &a), PS_OK, "a save with a path of over 1 KiB");
		walk_digest(s, "p", home, &o, &b);
		ok(same(&a, &b) && b.entries == c.entries + 14, "the same digest, every level counted");
	}

	/* a batch save reports it as well */
	{
		struct ps_save_batch *bt = NULL;
		struct ps_snapshot_info si;
		int res[2];
		if (ps_save_batch_new(&bt, &E))
			bail_out(E.msg);
		o.batch = bt;
		o.stat_digest = &a;
		memset(&a, 0, sizeof(a));
		is_int(ps_save(s, "q", home, &o, &si, &E), PS_OK, "a save in a batch");
		is_int(ps_save_batch_commit(s, bt, res, &E), PS_OK, "committed");
		walk_digest(s, "q", home, &o, &b);
		ok(a.entries && same(&a, &b), "its digest is the walk's");
		ps_save_batch_free(s, bt);
		o.batch = NULL;
	}

	/* a directory that does not exist */
	snprintf(p, sizeof(p), "%s/nowhere", root);
	ok(walk_digest(s, "p", p, &o, &b) != PS_OK && strstr(E.msg, "nowhere"),
	   "a missing directory is an error that names it");

	ps_store_free(s);
	return done_testing();
}
