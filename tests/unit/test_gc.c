/*
 * test_gc.c - retention and garbage collection: durations (calendar
 * arithmetic in UTC), the keep rules on synthetic snapshot times (every
 * bucket kind, counts, unlimited, union, the newest always kept), stored
 * policies next to other settings (unknown lines survive), condemned lists
 * (publish, load, damage), the dedup view leaving condemned packs out while
 * reads still find them, pack retirement (an identical newer pack survives),
 * and a whole gc run freeing an unreachable pack.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "snap/snap_int.h"
#include "hash/hash.h"

#include <time.h>

static struct ps_error E;

#define NS 1000000000LL

/* "2026-01-05T00:10:00" (UTC) in ns */
static int64_t t_of(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return -1;
	return (int64_t)timegm(&tm) * NS;
}

static void fmt(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / NS);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
}

static int before_is(const char *dur, const char *from, const char *want)
{
	int64_t out;
	char got[64];
	if (ps_duration_before(dur, t_of(from), &out))
		return 0;
	fmt(out, got, sizeof(got));
	if (strcmp(got, want))
		diag("%s before %s: got %s, want %s", dur, from, got, want);
	return !strcmp(got, want);
}

static void test_durations(void)
{
	static const char *const bad[] = { "", "d", "5", "5x", "-1d", "1.5d", "m5", "3 d", "1dd", "1mi" };
	int64_t out;
	ok(before_is("2d", "2026-03-15T06:30:00", "2026-03-13T06:30:00"), "2d");
	ok(before_is("36h", "2026-03-15T06:30:00", "2026-03-13T18:30:00"), "36h");
	ok(before_is("1m", "2026-03-31T12:00:00", "2026-03-03T12:00:00"),
	   "1m from March 31: February 31 normalises to March 3 (like restic's AddDate)");
	ok(before_is("1y", "2028-02-29T00:00:00", "2027-03-01T00:00:00"), "1y from a leap day");
	ok(before_is("1w2d3h4min5s", "2026-01-10T10:10:10", "2026-01-01T07:06:05"), "all units");
	ok(before_is("1m2w", "2026-03-15T06:30:00", "2026-02-01T06:30:00"), "1m2w");
	ok(before_is("0s", "2026-03-15T06:30:00", "2026-03-15T06:30:00"), "0s is no time");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(ps_duration_before(bad[i], 0, &out) == -1, "'%s' is not a duration", bad[i]);
}

/* ------------------------------------------------------------ keep rules */

/* Chronological: A..J (J newest). Jan 1 2026 is a Thursday: Jan 1-4 are ISO
 * week 1, Jan 5 (Monday) starts week 2. */
static const char *const times[] = {
	"2026-01-01T10:00:00", /* A */
	"2026-01-01T12:00:00", /* B */
	"2026-01-01T23:59:00", /* C */
	"2026-01-02T08:00:00", /* D */
	"2026-01-02T09:00:00", /* E */
	"2026-01-05T00:00:00", /* F */
	"2026-01-05T00:10:00", /* G */
	"2026-01-05T00:20:00", /* H */
	"2026-02-01T00:00:00", /* I */
	"2026-03-15T06:30:00", /* J */
};
#define NT (sizeof(times) / sizeof(times[0]))

/* Applies p and returns the kept letters ("JIH": newest first). */
static const char *kept(const struct ps_keep_policy *p, unsigned *reasons_out)
{
	static char buf[NT + 1];
	struct ps_snapshot_info v[NT];
	unsigned r[NT];
	size_t k = 0;
	memset(v, 0, sizeof(v));
	for (size_t i = 0; i < NT; i++) {
		v[i].time_ns = t_of(times[i]);
		snprintf(v[i].name, sizeof(v[i].name), "snap-%c", (char)('A' + i));
	}
	if (ps_keep_apply(v, NT, p, r, &E))
		return "error";
	for (size_t i = NT; i-- > 0;)
		if (r[i])
			buf[k++] = (char)('A' + i);
	buf[k] = 0;
	if (reasons_out)
		memcpy(reasons_out, r, sizeof(r));
	return buf;
}

static void test_keep_rules(void)
{
	struct ps_keep_policy p;
	unsigned r[NT];
	char why[128];
#define POL(...) (memset(&p, 0, sizeof(p)), __VA_ARGS__, &p)
	is_str(kept(POL(p.last = 3), NULL), "JIH", "keep-last 3");
	is_str(kept(POL(p.last = -1), NULL), "JIHGFEDCBA", "keep-last -1 keeps all");
	is_str(kept(POL(p.daily = 4), NULL), "JIHE", "keep-daily 4: the newest of each day");
	is_str(kept(POL(p.daily = -1), NULL), "JIHEC", "keep-daily -1: every day");
	is_str(kept(POL(p.hourly = 2), NULL), "JI", "keep-hourly 2");
	is_str(kept(POL(p.hourly = -1), NULL), "JIHEDCBA",
	       "keep-hourly -1: F and G share H's hour, D and E differ");
	is_str(kept(POL(p.min15 = 5), NULL), "JIHGE", "keep-15min 5: G and F share a quarter hour");
	is_str(kept(POL(p.weekly = 3), NULL), "JIH", "keep-weekly 3");
	is_str(kept(POL(p.weekly = -1), NULL), "JIHE", "keep-weekly -1: ISO weeks start on Monday");
	is_str(kept(POL(p.monthly = 2), NULL), "JI", "keep-monthly 2");
	is_str(kept(POL(p.monthly = -1), NULL), "JIH", "keep-monthly -1");
	is_str(kept(POL(snprintf(p.within, sizeof(p.within), "2d")), NULL), "J", "keep-within 2d");
	is_str(kept(POL(snprintf(p.within, sizeof(p.within), "45d")), NULL), "JI", "keep-within 45d");
	is_str(kept(POL(snprintf(p.within, sizeof(p.within), "1m2w")), NULL), "J",
	       "keep-within 1m2w: relative to the newest snapshot, calendar months");
	is_str(kept(POL(snprintf(p.within, sizeof(p.within), "1m2w7h")), NULL), "JI",
	       "keep-within 1m2w7h reaches back to I");
	is_str(kept(POL(p.last = 1, p.daily = 1, p.monthly = 3), NULL), "JIH",
	       "union of last 1, daily 1, monthly 3");
	is_str(kept(POL(p.hourly = 1, p.weekly = 4), NULL), "JIHE", "union of hourly 1, weekly 4");
	is_str(kept(POL((void)0), NULL), "J", "no rule: only the newest");
	kept(POL(p.last = 2, p.monthly = -1), r);
	is_int(r[9], PS_KEEP_NEWEST | PS_KEEP_LAST | PS_KEEP_MONTHLY, "J: newest, last, monthly");
	is_int(r[8], PS_KEEP_LAST | PS_KEEP_MONTHLY, "I: last, monthly");
	is_int(r[7], PS_KEEP_MONTHLY, "H: monthly");
	is_int(r[6], 0, "G goes");
	ps_keep_reasons_format(r[9], why, sizeof(why));
	is_str(why, "newest, last, monthly", "reasons text");
	ok(ps_keep_apply(NULL, 0, POL(p.last = -2), r, &E) == PS_EINVAL, "a count below -1 is refused");
	ok(ps_keep_apply(NULL, 0, POL(snprintf(p.within, sizeof(p.within), "2x")), r, &E) == PS_EINVAL,
	   "an invalid duration is refused");
#undef POL
}

/* ------------------------------------------------------------ policies */

static struct ps_store *new_store(const char *name)
{
	const char *dir = th_tmpdir(name);
	struct ps_store *s = NULL;
	char loc[4200];
	snprintf(loc, sizeof(loc), "%s/store", dir);
	if (ps_store_init(loc, NULL, &E) || ps_store_open(&s, loc, &E)) {
		diag("store: %s", E.msg);
		return NULL;
	}
	return s;
}

static void test_policies(void)
{
	struct ps_store *s = new_store("policy");
	struct ps_keep_policy p = PS_KEEP_POLICY_INIT, got;
	char path[4300];
	uint8_t *buf;
	size_t len;
	uint64_t q = 0;
	if (!s) {
		skip(12, "no store");
		return;
	}
	snprintf(path, sizeof(path), "%s/projects/p1", s->location);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/projects/p1/settings", s->location);
	th_write_file(path, "quota 1000\nfuture-key some value\nexclude *.o\nflag\n", 51);
	p.daily = 7;
	p.weekly = -1;
	snprintf(p.within, sizeof(p.within), "2d");
	ok(ps_policy_set(s, "p1", &p, &E) == PS_OK, "set a project policy");
	ok(ps_policy_get(s, "p1", &got, &E) == PS_OK && got.daily == 7 && got.weekly == -1 &&
	   !strcmp(got.within, "2d") && !got.last, "read back");
	ok(ps_quota_get(s, "p1", &q, &E) == PS_OK && q == 1000, "the quota is still there");
	buf = th_read_file(path, &len);
	ok(buf && strstr((char *)buf, "future-key some value\n") && strstr((char *)buf, "flag\n") &&
	   strstr((char *)buf, "exclude *.o\n") && strstr((char *)buf, "keep-daily 7\n"),
	   "unknown lines are written back, next to the keep lines");
	free(buf);
	ok(ps_quota_set(s, "p1", 2000, &E) == PS_OK && ps_policy_get(s, "p1", &got, &E) == PS_OK &&
	   got.daily == 7, "setting the quota keeps the policy");
	ok(ps_policy_get(s, NULL, &got, &E) == PS_OK && ps_keep_policy_empty(&got),
	   "no store default at first");
	memset(&p, 0, sizeof(p));
	p.last = 3;
	ok(ps_policy_set(s, NULL, &p, &E) == PS_OK && ps_policy_get(s, NULL, &got, &E) == PS_OK &&
	   got.last == 3, "store default set and read");
	memset(&p, 0, sizeof(p));
	ok(ps_policy_set(s, NULL, &p, &E) == PS_OK && ps_policy_get(s, NULL, &got, &E) == PS_OK &&
	   ps_keep_policy_empty(&got), "an empty policy clears the default");
	p.last = -5;
	ok(ps_policy_set(s, "p1", &p, &E) == PS_EINVAL, "invalid counts are refused");
	ok(ps_policy_set(s, "Bad", &p, &E) == PS_EINVAL, "invalid project ids are refused");
	ps_store_free(s);
}

/* ------------------------------------------------------------ condemned */

static int put_flush(struct ps_store *s, const char *text, uint8_t id[32])
{
	int added = 0;
	if (ps_store_load_index(s, &E) ||
	    ps_store_put(s, PS_OBJ_CHUNK, text, strlen(text), NULL, NULL, id, &added, &E) ||
	    ps_store_flush(s, &E))
		return -1;
	return added;
}

static void test_condemned(void)
{
	struct ps_store *s = new_store("condemned"), *s2 = NULL;
	struct ps_condemned *l = NULL;
	struct ps_obj_info info;
	uint8_t id[32], id2[32], pack[32], (*pk)[32];
	uint8_t reasons[1] = { PS_CONDEMN_DELETE };
	uint8_t *data = NULL;
	size_t n = 0, len = 0;
	char name[64], path[4300];
	int added;
	if (!s) {
		skip(14, "no store");
		return;
	}
	ok(put_flush(s, "object one", id) == 1, "an object is stored");
	ok(ps_store_has(s, id, &info), "and found");
	memcpy(pack, info.pack_id, 32);
	pk = &pack;
	ok(ps_condemned_publish(s, ps_now_ns(), pk, reasons, 1, name, sizeof(name), &E) == PS_OK,
	   "a condemned list is published");
	ok(ps_condemned_load(s, &l, &n, &E) == PS_OK && n == 1 && l[0].npacks == 1 &&
	   !memcmp(l[0].packs[0], pack, 32) && l[0].reasons[0] == PS_CONDEMN_DELETE && !l[0].damaged,
	   "and read back");
	ps_condemned_free(l, n);
	ok(ps_store_open(&s2, s->location, &E) == PS_OK && ps_store_load_index(s2, &E) == PS_OK,
	   "a new process loads the index");
	ok(!ps_store_has(s2, id, NULL), "the dedup view leaves the condemned pack out");
	ok(ps_store_locate(s2, id, NULL), "the reader's view finds it");
	ok(ps_store_get(s2, id, PS_OBJ_CHUNK, &data, &len, &E) == PS_OK && len == 10 &&
	   !memcmp(data, "object one", 10), "and reads it");
	free(data);
	/* (with another object: alone, its pack would be byte-identical to the
	 * condemned one, and have its name) */
	ok(ps_store_put(s2, PS_OBJ_CHUNK, "object one", 10, NULL, NULL, id2, &added, &E) == PS_OK &&
	   added == 1 &&
	   ps_store_put(s2, PS_OBJ_CHUNK, "object two", 10, NULL, NULL, id2, NULL, &E) == PS_OK &&
	   ps_store_flush(s2, &E) == PS_OK, "a save writes its own copy");
	ps_store_free(s2);
	s2 = NULL;
	ok(ps_store_open(&s2, s->location, &E) == PS_OK && ps_store_load_index(s2, &E) == PS_OK &&
	   ps_store_has(s2, id, &info) && memcmp(info.pack_id, pack, 32),
	   "which the next process deduplicates against");
	ps_store_free(s2);
	/* a damaged list: reported as damaged, names nothing */
	snprintf(path, sizeof(path), "%s/gc/%s", s->location, name);
	{
		uint8_t *b = th_read_file(path, &len);
		if (b && len > 30) {
			b[25] ^= 1;
			th_write_file(path, b, len);
		}
		free(b);
	}
	ok(ps_condemned_load(s, &l, &n, &E) == PS_OK && n == 1 && l[0].damaged && !l[0].npacks,
	   "a damaged list loads as damaged");
	ps_condemned_free(l, n);
	ok(ps_condemned_remove(s, name, &E) == PS_OK && ps_condemned_load(s, &l, &n, &E) == PS_OK &&
	   n == 0, "lists are removed");
	ps_condemned_free(l, n);
	ps_store_free(s);
}

/* ------------------------------------------------------------ retiring */

static void set_mtime(const char *path, int64_t ns)
{
	struct timespec ts[2];
	ts[0].tv_sec = ts[1].tv_sec = (time_t)(ns / NS);
	ts[0].tv_nsec = ts[1].tv_nsec = (long)(ns % NS);
	utimensat(AT_FDCWD, path, ts, 0);
}

static void test_retire(void)
{
	struct ps_store *s = new_store("retire");
	struct ps_obj_info info;
	uint8_t id[32], p1[32], p2[32];
	char path[4300], aside[4400], hex[65];
	uint64_t freed = 0;
	int kept = -1;
	int64_t now = ps_now_ns();
	if (!s) {
		skip(7, "no store");
		return;
	}
	put_flush(s, "first pack", id);
	ps_store_has(s, id, &info);
	memcpy(p1, info.pack_id, 32);
	put_flush(s, "second pack", id);
	ps_store_has(s, id, &info);
	memcpy(p2, info.pack_id, 32);
	ps_pack_path(p1, path, sizeof(path));
	snprintf(aside, sizeof(aside), "%s/%s", s->location, path);
	set_mtime(aside, now - 3600 * NS);
	ok(ps_pack_retire(s, p1, now - 60 * NS, &freed, &kept, &E) == PS_OK && !kept && freed > 0 &&
	   access(aside, F_OK) != 0, "a pack older than its condemnation is deleted");
	ok(ps_pack_retire(s, p1, now, &freed, &kept, &E) == PS_OK && !kept,
	   "retiring it again is fine");
	ps_pack_path(p2, path, sizeof(path));
	snprintf(aside, sizeof(aside), "%s/%s", s->location, path);
	freed = 0;
	ok(ps_pack_retire(s, p2, now - 3600 * NS, &freed, &kept, &E) == PS_OK && kept == 1 &&
	   freed == 0 && access(aside, F_OK) == 0,
	   "a pack newer than its condemnation (published again) stays");
	/* a gc killed between rename and settling */
	ps_hex_encode(p2, 32, hex);
	{
		char tmpf[4500];
		snprintf(tmpf, sizeof(tmpf), "%s/tmp/.gc-aside-%s-%lld", s->location, hex,
			 (long long)(now + 3600 * NS));
		ok(rename(aside, tmpf) == 0, "an aside file of a killed gc (old pack)");
		ok(ps_pack_retire_recover(s, &E) == PS_OK && access(tmpf, F_OK) != 0 &&
		   access(aside, F_OK) != 0, "is removed by the recovery");
	}
	put_flush(s, "third pack", id);
	ps_store_has(s, id, &info);
	ps_pack_path(info.pack_id, path, sizeof(path));
	snprintf(aside, sizeof(aside), "%s/%s", s->location, path);
	ps_hex_encode(info.pack_id, 32, hex);
	{
		char tmpf[4500];
		snprintf(tmpf, sizeof(tmpf), "%s/tmp/.gc-aside-%s-%lld", s->location, hex,
			 (long long)(now - 3600 * NS));
		ok(rename(aside, tmpf) == 0, "an aside file of a killed gc (newer pack)");
		ok(ps_pack_retire_recover(s, &E) == PS_OK && access(tmpf, F_OK) != 0 &&
		   access(aside, F_OK) == 0, "is put back by the recovery");
	}
	ps_store_free(s);
}

/* ------------------------------------------------------------ gc */

static int count_packs(const char *loc)
{
	char cmd[4400];
	FILE *f;
	int n = -1;
	snprintf(cmd, sizeof(cmd), "find '%s/packs' -name '*.pack' | wc -l", loc);
	f = popen(cmd, "r");
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

static void test_gc_run(void)
{
	struct ps_store *s = new_store("gcrun");
	const char *src = th_tmpdir("gcrun-src");
	struct ps_snapshot_info si;
	struct ps_save_opts so = PS_SAVE_OPTS_INIT;
	struct ps_gc_opts go = PS_GC_OPTS_INIT;
	struct ps_gc_result r;
	struct ps_prune_opts po = PS_PRUNE_OPTS_INIT;
	struct ps_keep_policy keep = PS_KEEP_POLICY_INIT;
	struct ps_prune_item *items = NULL;
	struct ps_check_result cr;
	size_t nitems = 0;
	char path[4300];
	uint8_t *big;
	if (!s) {
		skip(9, "no store");
		return;
	}
	so.cache_dir = th_tmpdir("gcrun-cache");
	big = malloc(3 << 20);
	th_fill_random(big, 3 << 20, 42);
	snprintf(path, sizeof(path), "%s/big", src);
	th_write_file(path, big, 3 << 20);
	free(big);
	snprintf(path, sizeof(path), "%s/small", src);
	th_write_file(path, "small\n", 6);
	ok(ps_save(s, "p", src, &so, &si, &E) == PS_OK, "first save");
	snprintf(path, sizeof(path), "%s/big", src);
	unlink(path);
	ok(ps_save(s, "p", src, &so, &si, &E) == PS_OK, "second save without the big file");
	keep.last = 1;
	po.policy = &keep;
	ok(ps_prune(s, "p", &po, &items, &nitems, NULL, &E) == PS_OK && nitems == 2 &&
	   !items[0].reasons && items[1].reasons == (PS_KEEP_NEWEST | PS_KEEP_LAST),
	   "prune removes the first");
	free(items);
	{
		/* a condemned pack that live snapshots use is not a problem for check */
		struct ps_snapshot_info *v = NULL;
		struct ps_obj_info info;
		struct ps_store *s3 = NULL;
		memset(&info, 0, sizeof(info));
		struct ps_check_opts co = PS_CHECK_OPTS_INIT;
		size_t nv = 0;
		uint8_t pk[1][32], why[1] = { PS_CONDEMN_REPACK };
		char name[64];
		int okay = ps_snapshot_list(s, "p", &v, &nv, &E) == PS_OK && nv == 1 &&
			   ps_store_load_index(s, &E) == PS_OK;
		if (okay) {
			struct ps_tree t;
			okay = ps_tree_load(s, v[0].root, &t, &E) == PS_OK && t.n == 1 &&
			       t.ents[0].nextents == 1 && ps_store_locate(s, t.ents[0].extents[0].id, &info);
			if (okay)
				ps_tree_release(&t);
		}
		memcpy(pk[0], info.pack_id, 32);
		okay = okay && ps_condemned_publish(s, ps_now_ns(), pk, why, 1, name, sizeof(name), &E) == PS_OK &&
		       ps_store_open(&s3, s->location, &E) == PS_OK;
		ok(okay && ps_check(s3, &co, &cr, &E) == PS_OK && cr.problems == 0,
		   "check: chunks in a condemned pack are there");
		ps_store_free(s3);
		ps_condemned_remove(s, name, &E);
		free(v);
	}
	go.dry_run = 1;
	ok(ps_gc(s, &go, &r, &E) == PS_OK && r.condemned_packs >= 1 && r.condemned_bytes > (3u << 20) - 4096 &&
	   !r.deleted_packs, "a dry run finds the big file's pack");
	go.dry_run = 0;
	go.grace = 0;
	ok(ps_gc(s, &go, &r, &E) == PS_OK, "gc --grace 0");
	if (E.msg[0])
		diag("%s", E.msg);
	ok(r.freed_bytes > (3u << 20) - 4096 && r.pending_lists == 0, "frees the big file (%llu bytes)",
	   (unsigned long long)r.freed_bytes);
	ok(count_packs(s->location) >= 1, "packs are left for the live snapshot");
	ps_store_free(s);
	s = NULL;
	snprintf(path, sizeof(path), "%s/store", th_tmpdir("gcrun"));
	ok(ps_store_open(&s, path, &E) == PS_OK, "reopened");
	{
		struct ps_check_opts co = PS_CHECK_OPTS_INIT;
		co.read_data = 1;
		ok(ps_check(s, &co, &cr, &E) == PS_OK && cr.problems == 0 && cr.leftovers == 0,
		   "check --read-data is clean");
	}
	ps_store_free(s);
}

int main(void)
{
	test_durations();
	test_keep_rules();
	test_policies();
	test_condemned();
	test_retire();
	test_gc_run();
	return done_testing();
}
