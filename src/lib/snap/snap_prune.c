/*
 * snap_prune.c - retention: keep policies, prune, delete.
 *
 * A policy is a set of rules (struct ps_keep_policy); ps_keep_apply decides,
 * like restic's forget, walking the snapshots newest first:
 *
 *   - the newest snapshot is always kept ("newest");
 *   - keep-last N keeps the N newest;
 *   - keep-within D keeps every snapshot whose time is at or after the
 *     newest snapshot's time minus D (calendar arithmetic, UTC);
 *   - keep-15min/hourly/daily/weekly/monthly N: each snapshot falls in one
 *     bucket (its UTC quarter hour, hour, day, ISO week, month); a snapshot
 *     whose bucket differs from the bucket of the previous snapshot this rule
 *     kept is the newest of a new bucket, and is kept while the rule has
 *     count left (N = -1: no limit);
 *   - a snapshot is kept when any rule keeps it; the others are removed.
 *
 * Policies are stored as "keep-..." lines: in projects/<id>/settings per
 * project (snap_ref.c keeps the other lines of that file), and in the file
 * `policy` at the store root as the default for projects without one.
 *
 * Removing a snapshot unlinks its ref (projects/<id>/snaps/<name>.snap)
 * under the project lock, the lock every save takes, then lists the
 * snapshots again (which rewrites the list file).  The objects stay until gc
 * (snap_gc.c) finds them unreachable.  What must stay true: the newest
 * snapshot is never pruned (only `delete` removes all), and a dry run changes
 * nothing in the store.
 */
#define _GNU_SOURCE
#include "snap_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define POLICY_FILE "policy"
#define POLICY_MAX 65536
#define NS 1000000000LL

/* ------------------------------------------------------------ durations */

int ps_duration_before(const char *d, int64_t t_ns, int64_t *out)
{
	time_t secs = (time_t)(t_ns / NS);
	int64_t frac = t_ns % NS;
	long y = 0, mo = 0, w = 0, dd = 0, h = 0, mi = 0, sec = 0;
	struct tm tm;
	const char *p = d;
	int any = 0;
	if (!d || !*d)
		return -1;
	while (*p) {
		char *end;
		long v;
		if (*p < '0' || *p > '9')
			return -1;
		errno = 0;
		v = strtol(p, &end, 10);
		if (errno || v < 0 || v > 100000 || end == p)
			return -1;
		p = end;
		if (!strncmp(p, "min", 3)) {
			mi += v;
			p += 3;
		} else if (*p == 'y') {
			y += v;
			p++;
		} else if (*p == 'm') {
			mo += v;
			p++;
		} else if (*p == 'w') {
			w += v;
			p++;
		} else if (*p == 'd') {
			dd += v;
			p++;
		} else if (*p == 'h') {
			h += v;
			p++;
		} else if (*p == 's') {
			sec += v;
			p++;
		} else {
			return -1;
		}
		any = 1;
	}
	if (!any)
		return -1;
	if (frac < 0) {
		frac += NS;
		secs--;
	}
	if (!gmtime_r(&secs, &tm))
		return -1;
	tm.tm_year -= (int)y;
	tm.tm_mon -= (int)mo;
	tm.tm_mday -= (int)(dd + 7 * w);
	tm.tm_hour -= (int)h;
	tm.tm_min -= (int)mi;
	tm.tm_sec -= (int)sec;
	tm.tm_isdst = 0;
	secs = timegm(&tm);
	*out = (int64_t)secs * NS + frac;
	return 0;
}

/* ------------------------------------------------------------ policies */

int ps_keep_policy_empty(const struct ps_keep_policy *p)
{
	return !p || (!p->last && !p->min15 && !p->hourly && !p->daily && !p->weekly &&
		      !p->monthly && !p->within[0]);
}

static const struct {
	const char *key;
	size_t off;
} count_keys[] = {
	{ "keep-last", offsetof(struct ps_keep_policy, last) },
	{ "keep-15min", offsetof(struct ps_keep_policy, min15) },
	{ "keep-hourly", offsetof(struct ps_keep_policy, hourly) },
	{ "keep-daily", offsetof(struct ps_keep_policy, daily) },
	{ "keep-weekly", offsetof(struct ps_keep_policy, weekly) },
	{ "keep-monthly", offsetof(struct ps_keep_policy, monthly) },
};

int ps_keep_policy_line(struct ps_keep_policy *p, const char *key, const char *val)
{
	if (!strcmp(key, "keep-within")) {
		int64_t t;
		if (strlen(val) < sizeof(p->within) && !ps_duration_before(val, 0, &t))
			snprintf(p->within, sizeof(p->within), "%s", val);
		return 1;
	}
	for (size_t i = 0; i < PS_ARRAY_LEN(count_keys); i++) {
		if (!strcmp(key, count_keys[i].key)) {
			char *end;
			long v;
			errno = 0;
			v = strtol(val, &end, 10);
			if (!errno && !*end && end != val && v >= -1)
				*(long *)((char *)p + count_keys[i].off) = v;
			return 1;
		}
	}
	return 0;
}

int ps_keep_policy_write(const struct ps_keep_policy *p, struct ps_buf *b)
{
	int rc = 0;
	for (size_t i = 0; i < PS_ARRAY_LEN(count_keys); i++) {
		long v = *(const long *)((const char *)p + count_keys[i].off);
		if (v)
			rc |= ps_buf_printf(b, "%s %ld\n", count_keys[i].key, v);
	}
	if (p->within[0])
		rc |= ps_buf_printf(b, "keep-within %s\n", p->within);
	return rc;
}

static int validate_policy(const struct ps_keep_policy *p, struct ps_error *err)
{
	int64_t t;
	for (size_t i = 0; i < PS_ARRAY_LEN(count_keys); i++)
		if (*(const long *)((const char *)p + count_keys[i].off) < -1)
			return ps_err(err, PS_EINVAL, "%s: a count must be -1 (unlimited) or more",
				      count_keys[i].key);
	if (p->within[0] && ps_duration_before(p->within, 0, &t))
		return ps_err(err, PS_EINVAL, "keep-within: invalid duration '%s'", p->within);
	return PS_OK;
}

int ps_policy_get(struct ps_store *s, const char *project, struct ps_keep_policy *out,
		  struct ps_error *err)
{
	struct ps_keep_policy empty = PS_KEEP_POLICY_INIT;
	void *buf = NULL;
	size_t len;
	char *p, *end;
	int rc;
	*out = empty;
	if (project) {
		struct ps_settings st;
		if (!ps_project_id_valid(project))
			return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
		rc = ps_settings_load(s, project, &st, err);
		if (rc)
			return rc;
		*out = st.keep;
		ps_settings_release(&st);
		return PS_OK;
	}
	rc = ps_be_read_all(s->be, POLICY_FILE, POLICY_MAX, &buf, &len, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		return PS_OK;
	}
	if (rc)
		return rc;
	p = buf;
	end = p + len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *val;
		if (!nl)
			nl = end;
		*nl = 0;
		val = strchr(p, ' ');
		if (val) {
			*val++ = 0;
			ps_keep_policy_line(out, p, val);
		}
		p = nl + 1;
	}
	ps_free(buf);
	return PS_OK;
}

int ps_policy_set(struct ps_store *s, const char *project, const struct ps_keep_policy *p,
		  struct ps_error *err)
{
	struct ps_keep_policy empty = PS_KEEP_POLICY_INIT;
	struct ps_buf b = PS_BUF_INIT;
	int rc;
	if (!p)
		p = &empty;
	rc = validate_policy(p, err);
	if (rc)
		return rc;
	if (project) {
		struct ps_settings st;
		if (!ps_project_id_valid(project))
			return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
		rc = ps_settings_load(s, project, &st, err);
		if (rc)
			return rc;
		st.keep = *p;
		rc = ps_settings_save(s, project, &st, err);
		ps_settings_release(&st);
		return rc;
	}
	if (ps_keep_policy_empty(p)) {
		rc = s->be->ops->unlink(s->be, POLICY_FILE, err);
		if (rc == PS_ENOTFOUND) {
			ps_error_clear(err);
			rc = PS_OK;
		}
		return rc ? rc : s->be->ops->fsync_dir(s->be, ".", err);
	}
	if (ps_keep_policy_write(p, &b)) {
		ps_buf_release(&b);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	rc = ps_be_write_atomic(s->be, POLICY_FILE, b.data, b.len, err);
	ps_buf_release(&b);
	return rc;
}

/* ------------------------------------------------------------ deciding */

static const char *const reason_names[] = { "newest", "last", "within", "15min",
					    "hourly", "daily", "weekly", "monthly" };

void ps_keep_reasons_format(unsigned reasons, char *buf, size_t len)
{
	size_t used = 0;
	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < PS_ARRAY_LEN(reason_names); i++) {
		if (!(reasons & (1u << i)))
			continue;
		int n = snprintf(buf + used, len > used ? len - used : 0, "%s%s", used ? ", " : "",
				 reason_names[i]);
		if (n < 0)
			return;
		used += (size_t)n;
		if (used >= len)
			return;
	}
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The bucket of time t for rule k (0 15min, 1 hourly, 2 daily, 3 weekly,
 * 4 monthly). */
static int64_t bucket_of(int k, int64_t t_ns)
{
	int64_t secs = floor_div(t_ns, NS);
	switch (k) {
	case 0:
		return floor_div(secs, 900);
	case 1:
		return floor_div(secs, 3600);
	case 2:
		return floor_div(secs, 86400);
	case 3:
		/* 1970-01-01 was a Thursday: +3 days puts weeks on Mondays */
		return floor_div(floor_div(secs, 86400) + 3, 7);
	default: {
		time_t tt = (time_t)secs;
		struct tm tm;
		gmtime_r(&tt, &tm);
		return (int64_t)tm.tm_year * 12 + tm.tm_mon;
	}
	}
}

int ps_keep_apply(const struct ps_snapshot_info *v, size_t n, const struct ps_keep_policy *p,
		  unsigned *reasons, struct ps_error *err)
{
	long count[5];
	int64_t last_bucket[5];
	int have_bucket[5] = { 0 };
	static const unsigned bucket_reason[5] = { PS_KEEP_15MIN, PS_KEEP_HOURLY, PS_KEEP_DAILY,
						   PS_KEEP_WEEKLY, PS_KEEP_MONTHLY };
	long last;
	int64_t within_from = 0;
	int rc = validate_policy(p, err);
	if (rc)
		return rc;
	if (!n)
		return PS_OK;
	count[0] = p->min15;
	count[1] = p->hourly;
	count[2] = p->daily;
	count[3] = p->weekly;
	count[4] = p->monthly;
	last = p->last;
	if (p->within[0] && ps_duration_before(p->within, v[n - 1].time_ns, &within_from))
		return ps_err(err, PS_EINVAL, "keep-within: invalid duration '%s'", p->within);
	for (size_t k = n; k-- > 0;) {
		unsigned r = 0;
		if (k == n - 1)
			r |= PS_KEEP_NEWEST;
		if (last) {
			r |= PS_KEEP_LAST;
			if (last > 0)
				last--;
		}
		if (p->within[0] && v[k].time_ns >= within_from)
			r |= PS_KEEP_WITHIN;
		for (int b = 0; b < 5; b++) {
			int64_t val;
			if (!count[b])
				continue;
			val = bucket_of(b, v[k].time_ns);
			if (have_bucket[b] && val == last_bucket[b])
				continue;
			r |= bucket_reason[b];
			have_bucket[b] = 1;
			last_bucket[b] = val;
			if (count[b] > 0)
				count[b]--;
		}
		reasons[k] = r;
	}
	return PS_OK;
}

/* ------------------------------------------------------------ prune */

static int remove_refs(struct ps_store *s, const char *project, const struct ps_prune_item *it,
		       size_t n, struct ps_error *err)
{
	char path[PATH_MAX];
	int rc = PS_OK, any = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (it[i].reasons)
			continue;
		any = 1;
		snprintf(path, sizeof(path), "projects/%s/snaps/%s.snap", project, it[i].info.name);
		rc = s->be->ops->unlink(s->be, path, err);
		if (rc == PS_ENOTFOUND) {
			ps_error_clear(err);
			rc = PS_OK;
		}
	}
	snprintf(path, sizeof(path), "projects/%s/snaps", project);
	if (!rc && any)
		rc = s->be->ops->fsync_dir(s->be, path, err);
	return rc;
}

int ps_prune(struct ps_store *s, const char *project, const struct ps_prune_opts *opts,
	     struct ps_prune_item **items, size_t *nitems, struct ps_keep_policy *used,
	     struct ps_error *err)
{
	struct ps_prune_opts defo = PS_PRUNE_OPTS_INIT;
	struct ps_keep_policy pol = PS_KEEP_POLICY_INIT;
	struct ps_snapshot_info *v = NULL;
	struct ps_prune_item *it = NULL;
	unsigned *reasons = NULL;
	struct ps_lock *lock = NULL;
	size_t n = 0;
	int rc;

	*items = NULL;
	*nitems = 0;
	if (!opts)
		opts = &defo;
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
	if (!ps_keep_policy_empty(opts->policy)) {
		pol = *opts->policy;
	} else {
		rc = ps_policy_get(s, project, &pol, err);
		if (!rc && ps_keep_policy_empty(&pol))
			rc = ps_policy_get(s, NULL, &pol, err);
		if (rc)
			return rc;
		if (ps_keep_policy_empty(&pol))
			return ps_err(err, PS_EINVAL,
				      "project '%s' has no retention policy (give --keep-... options, or store "
				      "one with 'projstore policy')", project);
	}
	rc = validate_policy(&pol, err);
	if (rc)
		return rc;
	if (used)
		*used = pol;
	if (!opts->dry_run) {
		rc = ps_lock_acquire(s, project, opts->lock_timeout, 600, &lock, err);
		if (rc)
			return rc;
	}
	rc = ps_snapshot_list(s, project, &v, &n, err);
	if (rc)
		goto done;
	it = ps_calloc(n + 1, sizeof(*it));
	reasons = ps_calloc(n + 1, sizeof(*reasons));
	if (!it || !reasons) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	rc = ps_keep_apply(v, n, &pol, reasons, err);
	if (rc)
		goto done;
	for (size_t i = 0; i < n; i++) {
		it[i].info = v[i];
		it[i].reasons = reasons[i];
	}
	if (!opts->dry_run) {
		struct ps_snapshot_info *again = NULL;
		size_t nagain = 0;
		rc = remove_refs(s, project, it, n, err);
		/* lists again: rewrites the list without the removed refs */
		if (!rc && ps_snapshot_list(s, project, &again, &nagain, NULL) == PS_OK)
			ps_free(again);
	}
	if (!rc) {
		*items = it;
		*nitems = n;
		it = NULL;
	}
done:
	ps_lock_release(lock);
	ps_free(v);
	ps_free(it);
	ps_free(reasons);
	return rc;
}

/* ------------------------------------------------------------ delete */

struct snap_files {
	char **v;
	size_t n, cap;
};

static int collect_snap_file(void *ctx, const char *name)
{
	struct snap_files *l = ctx;
	size_t len = strlen(name);
	if (len < 6 || strcmp(name + len - 5, ".snap") || name[0] == '.')
		return 0;
	return ps_strv_push(&l->v, &l->n, &l->cap, name);
}

int ps_project_delete(struct ps_store *s, const char *project, int purge, double lock_timeout,
		      size_t *removed, struct ps_error *err)
{
	struct snap_files l = { 0 };
	struct ps_lock *lock = NULL;
	struct ps_bstat st;
	char path[PATH_MAX];
	int rc;
	if (removed)
		*removed = 0;
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
	snprintf(path, sizeof(path), "projects/%s", project);
	if (s->be->ops->stat(s->be, path, &st, NULL) != PS_OK)
		return ps_err(err, PS_ENOTFOUND, "project '%s' does not exist", project);
	rc = ps_lock_acquire(s, project, lock_timeout, 600, &lock, err);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "projects/%s/snaps", project);
	rc = s->be->ops->list(s->be, path, collect_snap_file, &l, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		rc = PS_OK;
	}
	if (rc > 0)
		rc = ps_err(err, PS_ERROR, "out of memory");
	/* the refs are the truth: once they are gone the snapshots are */
	for (size_t i = 0; i < l.n && !rc; i++) {
		snprintf(path, sizeof(path), "projects/%s/snaps/%s", project, l.v[i]);
		rc = s->be->ops->unlink(s->be, path, err);
		if (rc == PS_ENOTFOUND) {
			ps_error_clear(err);
			rc = PS_OK;
		} else if (!rc && removed) {
			(*removed)++;
		}
	}
	if (rc)
		goto done;
	snprintf(path, sizeof(path), "projects/%s/snaps", project);
	if (l.n)
		rc = s->be->ops->fsync_dir(s->be, path, err);
	if (rc)
		goto done;
	snprintf(path, sizeof(path), "projects/%s/snapshots", project);
	s->be->ops->unlink(s->be, path, NULL);
	snprintf(path, sizeof(path), "projects/%s/snaps", project);
	s->be->ops->rmdir(s->be, path, NULL);
	if (purge) {
		snprintf(path, sizeof(path), "projects/%s/settings", project);
		s->be->ops->unlink(s->be, path, NULL);
		snprintf(path, sizeof(path), "projects/%s", project);
		rc = s->be->ops->rmdir(s->be, path, err);
	}
	if (!rc) {
		snprintf(path, sizeof(path), "projects/%s", project);
		rc = s->be->ops->fsync_dir(s->be, purge ? "projects" : path, err);
	}
done:
	ps_strv_free(l.v, l.n);
	ps_lock_release(lock);
	return rc;
}
