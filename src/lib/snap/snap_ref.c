/*
 * snap_ref.c - snapshot refs and project settings.
 *
 *   projects/<id>/snaps/<name>.snap   one immutable ref per snapshot: the truth
 *   projects/<id>/snapshots           every ref of the project concatenated: a
 *                                     cache that makes listing cost one
 *                                     directory read and one file read
 *   projects/<id>/settings            quota, compression, exclude patterns
 *
 * A ref is text, one "key value" per line, ending with a "checksum" line that
 * holds the SHA-256 of the lines before it (docs/FORMAT.md lists the keys).
 * Publishing a snapshot writes its .snap file (temp, fsync, rename, fsync dir)
 * and then rewrites the list (temp, rename; not fsynced: it is a cache).  A reader compares the list with
 * the directory: refs missing from the list are read one by one, entries whose
 * .snap is gone are dropped, and the list is rewritten, so a crash between the
 * two steps or two writers racing can never hide or resurrect a snapshot.
 */
#define _GNU_SOURCE
#include "snap_int.h"
#include "../hash/hash.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define REF_MAX 8192
#define LIST_MAX ((size_t)256 << 20)

/* ------------------------------------------------------------ names */

void ps_snapshot_name(int64_t t, char *buf, size_t len)
{
	char ts[48];
	uint32_t tag = 0;
	ps_format_time(t, ts, sizeof(ts));
	ps_random_bytes(&tag, sizeof(tag));
	snprintf(buf, len, "%s-%08x", ts, tag);
}

int ps_snapshot_name_valid(const char *n)
{
	/* 2026-11-25T09:45:12.123456Z-1a2b3c4d */
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.ddddddZ-xxxxxxxx";
	size_t i;
	for (i = 0; pat[i]; i++) {
		char c = n[i];
		if (pat[i] == 'd' ? !(c >= '0' && c <= '9')
		    : pat[i] == 'x' ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
		    : c != pat[i])
			return 0;
	}
	return n[i] == 0;
}

/* ------------------------------------------------------------ encoding */

static void clean_origin(const char *in, char *out, size_t len)
{
	size_t i;
	for (i = 0; in[i] && i + 1 < len; i++) {
		char c = in[i];
		out[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '.' || c == '-' || c == '_') ? c : '_';
	}
	out[i] = 0;
	if (!i)
		snprintf(out, len, "unknown");
}

int ps_ref_encode(const struct ps_snapshot_info *si, struct ps_buf *out)
{
	char root[65], origin[128], sum[65];
	uint8_t sha[32];
	size_t start = out->len;
	ps_hex_encode(si->root, 32, root);
	clean_origin(si->origin, origin, sizeof(origin));
	if (ps_buf_printf(out,
			  "projstore-snapshot 1\nproject %s\nname %s\ntime %lld\nroot %s\nparent %s\n"
			  "origin %s\nfiles %llu\ndirs %llu\nothers %llu\nlogical %llu\napparent %llu\n"
			  "new-objects %llu\nnew-raw %llu\nnew-stored %llu\nerrors %llu\nquota %llu\n"
			  "over-quota %d\nduration-ms %lld\nroot-meta %o %u %u %lld %u\n",
			  si->project, si->name, (long long)si->time_ns, root,
			  si->parent[0] ? si->parent : "-", origin, (unsigned long long)si->files,
			  (unsigned long long)si->dirs, (unsigned long long)si->others,
			  (unsigned long long)si->logical_bytes, (unsigned long long)si->apparent_bytes,
			  (unsigned long long)si->new_objects, (unsigned long long)si->new_raw_bytes,
			  (unsigned long long)si->new_bytes, (unsigned long long)si->errors,
			  (unsigned long long)si->quota_bytes, si->over_quota ? 1 : 0,
			  (long long)si->duration_ms, si->root_mode & 07777, si->root_uid, si->root_gid,
			  (long long)si->root_mtime_sec, si->root_mtime_nsec))
		return -1;
	if (ps_sha256(out->data + start, out->len - start, sha))
		return -1;
	ps_hex_encode(sha, 32, sum);
	return ps_buf_printf(out, "checksum %s\n", sum);
}

static int parse_u64(const char *v, uint64_t *out)
{
	char *end;
	if (!*v || *v == '-' || *v == '+')
		return -1;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return (*end || errno) ? -1 : 0;
}

int ps_ref_decode(const char *text, size_t len, struct ps_snapshot_info *si, size_t *used,
		  struct ps_error *err)
{
	const char *p = text, *end = text + len;
	int seen_header = 0, have_sum = 0;
	unsigned seen = 0;
	memset(si, 0, sizeof(*si));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[512], *val;
		size_t ll;
		uint64_t u;
		if (!nl)
			return ps_err(err, PS_ECORRUPT, "snapshot ref is truncated");
		ll = (size_t)(nl - p);
		if (ll >= sizeof(line) || memchr(p, 0, ll))
			return ps_err(err, PS_ECORRUPT, "snapshot ref has an invalid line");
		memcpy(line, p, ll);
		line[ll] = 0;
		val = strchr(line, ' ');
		if (!val)
			return ps_err(err, PS_ECORRUPT, "snapshot ref line '%.40s' is invalid", line);
		*val++ = 0;
		if (!seen_header) {
			if (strcmp(line, "projstore-snapshot") || strcmp(val, "1"))
				return ps_err(err, PS_ECORRUPT, "snapshot ref has no valid header");
			seen_header = 1;
		} else if (!strcmp(line, "checksum")) {
			uint8_t sha[32], want[32];
			if (strlen(val) != 64 || ps_hex_decode(val, want, 32) ||
			    ps_sha256(text, (size_t)(p - text), sha) || memcmp(sha, want, 32))
				return ps_err(err, PS_ECORRUPT, "snapshot ref fails its checksum");
			p = nl + 1;
			have_sum = 1;
			break;
		} else if (!strcmp(line, "project")) {
			if (!ps_project_id_valid(val))
				return ps_err(err, PS_ECORRUPT, "snapshot ref has an invalid project");
			snprintf(si->project, sizeof(si->project), "%s", val);
			seen |= 1;
		} else if (!strcmp(line, "name")) {
			if (!ps_snapshot_name_valid(val))
				return ps_err(err, PS_ECORRUPT, "snapshot ref has an invalid name");
			snprintf(si->name, sizeof(si->name), "%s", val);
			seen |= 2;
		} else if (!strcmp(line, "time")) {
			if (parse_u64(val, &u) || u > INT64_MAX)
				return ps_err(err, PS_ECORRUPT, "snapshot ref has an invalid time");
			si->time_ns = (int64_t)u;
			seen |= 4;
		} else if (!strcmp(line, "root")) {
			if (strlen(val) != 64 || ps_hex_decode(val, si->root, 32))
				return ps_err(err, PS_ECORRUPT, "snapshot ref has an invalid root");
			seen |= 8;
		} else if (!strcmp(line, "parent")) {
			if (strcmp(val, "-") && !ps_snapshot_name_valid(val))
				return ps_err(err, PS_ECORRUPT, "snapshot ref has an invalid parent");
			snprintf(si->parent, sizeof(si->parent), "%s", strcmp(val, "-") ? val : "");
		} else if (!strcmp(line, "origin")) {
			snprintf(si->origin, sizeof(si->origin), "%s", val);
		} else {
			static const struct { const char *k; size_t off; } nums[] = {
				{ "files", offsetof(struct ps_snapshot_info, files) },
				{ "dirs", offsetof(struct ps_snapshot_info, dirs) },
				{ "others", offsetof(struct ps_snapshot_info, others) },
				{ "logical", offsetof(struct ps_snapshot_info, logical_bytes) },
				{ "apparent", offsetof(struct ps_snapshot_info, apparent_bytes) },
				{ "new-objects", offsetof(struct ps_snapshot_info, new_objects) },
				{ "new-raw", offsetof(struct ps_snapshot_info, new_raw_bytes) },
				{ "new-stored", offsetof(struct ps_snapshot_info, new_bytes) },
				{ "errors", offsetof(struct ps_snapshot_info, errors) },
				{ "quota", offsetof(struct ps_snapshot_info, quota_bytes) },
			};
			size_t k;
			for (k = 0; k < PS_ARRAY_LEN(nums); k++)
				if (!strcmp(line, nums[k].k))
					break;
			if (k < PS_ARRAY_LEN(nums)) {
				if (parse_u64(val, &u))
					return ps_err(err, PS_ECORRUPT, "snapshot ref field '%s' is invalid", line);
				memcpy((char *)si + nums[k].off, &u, sizeof(u));
			} else if (!strcmp(line, "over-quota")) {
				si->over_quota = !strcmp(val, "1");
			} else if (!strcmp(line, "root-meta")) {
				unsigned mode, uid, gid, nsec;
				long long sec;
				if (sscanf(val, "%o %u %u %lld %u", &mode, &uid, &gid, &sec, &nsec) != 5 ||
				    mode > 07777 || nsec >= 1000000000u)
					return ps_err(err, PS_ECORRUPT, "snapshot ref field 'root-meta' is invalid");
				si->root_mode = mode;
				si->root_uid = uid;
				si->root_gid = gid;
				si->root_mtime_sec = sec;
				si->root_mtime_nsec = nsec;
			} else if (!strcmp(line, "duration-ms")) {
				if (!parse_u64(val, &u) && u <= INT64_MAX)
					si->duration_ms = (int64_t)u;
			}
			/* unknown keys are ignored: newer writers may add fields */
		}
		p = nl + 1;
	}
	if (!have_sum)
		return ps_err(err, PS_ECORRUPT, "snapshot ref is truncated (no checksum)");
	if (seen != 15)
		return ps_err(err, PS_ECORRUPT, "snapshot ref lacks required fields");
	*used = (size_t)(p - text);
	return PS_OK;
}

/* ------------------------------------------------------------ listing */

struct name_set {
	char (*v)[PS_SNAPNAME_MAX];
	size_t n, cap;
};

static int collect_snap(void *ctx, const char *name)
{
	struct name_set *s = ctx;
	size_t l = strlen(name);
	char base[PS_SNAPNAME_MAX];
	if (l < 6 || l - 5 >= sizeof(base) || strcmp(name + l - 5, ".snap"))
		return 0;
	memcpy(base, name, l - 5);
	base[l - 5] = 0;
	if (!ps_snapshot_name_valid(base))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		void *v = ps_realloc(s->v, cap * sizeof(*s->v));
		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	memcpy(s->v[s->n++], base, sizeof(base));
	return 0;
}

static int info_cmp(const void *a, const void *b)
{
	const struct ps_snapshot_info *x = a, *y = b;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int name_cmp(const void *a, const void *b) { return strcmp(a, b); }

static int write_list(struct ps_store *s, const char *project, const struct ps_snapshot_info *v,
		      size_t n, struct ps_error *err)
{
	struct ps_buf b = PS_BUF_INIT;
	char path[PATH_MAX];
	int rc = PS_OK;
	for (size_t i = 0; i < n; i++)
		if (ps_ref_encode(&v[i], &b)) {
			ps_buf_release(&b);
			return ps_err(err, PS_ERROR, "out of memory");
		}
	snprintf(path, sizeof(path), "projects/%s/snapshots", project);
	/* not fsynced: the list is a cache of the refs, reconciled with snaps/
	 * on every read, and a torn one fails its entries' checksums and is
	 * rebuilt (docs/FORMAT.md, "Snapshot ref") */
	if (n)
		rc = ps_be_write_atomic_nosync(s->be, path, b.data ? (void *)b.data : (void *)"",
					       b.len, err);
	else
		s->be->ops->unlink(s->be, path, NULL);
	ps_buf_release(&b);
	return rc;
}

int ps_ref_read(struct ps_store *s, const char *project, const char *name,
		struct ps_snapshot_info *si, struct ps_error *err)
{
	char path[PATH_MAX];
	void *buf = NULL;
	size_t len, used;
	int rc;
	snprintf(path, sizeof(path), "projects/%s/snaps/%s.snap", project, name);
	rc = ps_be_read_all(s->be, path, REF_MAX, &buf, &len, err);
	if (rc)
		return rc;
	rc = ps_ref_decode(buf, len, si, &used, err);
	ps_free(buf);
	if (!rc && (strcmp(si->name, name) || strcmp(si->project, project)))
		rc = ps_err(err, PS_ECORRUPT, "snapshot ref '%s' names another snapshot", path);
	if (rc)
		ps_err_prefix(err, "'%s'", path);
	return rc;
}

int ps_snapshot_list(struct ps_store *s, const char *project, struct ps_snapshot_info **out,
		     size_t *nout, struct ps_error *err)
{
	return ps_snapshot_list_ex(s, project, out, nout, NULL, NULL, err);
}

int ps_snapshot_list_ex(struct ps_store *s, const char *project, struct ps_snapshot_info **out,
			size_t *nout, ps_warn_fn bad, void *bad_ctx, struct ps_error *err)
{
	struct name_set names = { 0 };
	struct ps_snapshot_info *v = NULL;
	size_t n = 0, cap = 0;
	char path[PATH_MAX];
	void *buf = NULL;
	size_t len = 0;
	int rc, dirty = 0;

	*out = NULL;
	*nout = 0;
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
	snprintf(path, sizeof(path), "projects/%s/snaps", project);
	rc = s->be->ops->list(s->be, path, collect_snap, &names, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		return PS_OK;
	}
	if (rc)
		return rc < 0 ? rc : ps_err(err, PS_ERROR, "out of memory");
	ps_qsort(names.v, names.n, sizeof(*names.v), name_cmp);
	cap = names.n + 1;
	v = ps_calloc(cap, sizeof(*v));
	if (!v) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	/* the list file: keep the entries whose .snap exists */
	snprintf(path, sizeof(path), "projects/%s/snapshots", project);
	if (ps_be_read_all(s->be, path, LIST_MAX, &buf, &len, NULL) == PS_OK) {
		size_t off = 0;
		while (off < len) {
			struct ps_snapshot_info si;
			size_t used;
			if (ps_ref_decode((char *)buf + off, len - off, &si, &used, NULL)) {
				dirty = 1;   /* damaged list: rebuilt from the refs */
				break;
			}
			off += used;
			if (strcmp(si.project, project) ||
			    !ps_bsearch(si.name, names.v, names.n, sizeof(*names.v), name_cmp)) {
				dirty = 1;
				continue;
			}
			if (n < cap) {
				int dup = 0;
				for (size_t k = 0; k < n && !dup; k++)
					dup = !strcmp(v[k].name, si.name);
				if (!dup)
					v[n++] = si;
			}
		}
	}
	/* refs missing from the list */
	if (n < names.n) {
		ps_qsort(v, n, sizeof(*v), info_cmp);
		for (size_t i = 0; i < names.n; i++) {
			int found = 0;
			for (size_t k = 0; k < n && !found; k++)
				found = !strcmp(v[k].name, names.v[i]);
			if (found)
				continue;
			rc = ps_ref_read(s, project, names.v[i], &v[n], err);
			if (rc && bad && rc != PS_ERROR) {
				char rp[PATH_MAX];
				snprintf(rp, sizeof(rp), "projects/%s/snaps/%s.snap", project, names.v[i]);
				bad(bad_ctx, rp, err ? err->msg : "damaged snapshot ref");
				rc = PS_OK;
				continue;
			}
			if (rc)
				goto done;
			n++;
			dirty = 1;
		}
	}
	ps_qsort(v, n, sizeof(*v), info_cmp);
	if (dirty)
		write_list(s, project, v, n, NULL);   /* best effort: the refs are the truth */
	*out = v;
	*nout = n;
	v = NULL;
done:
	ps_free(v);
	ps_free(buf);
	ps_free(names.v);
	return rc;
}

int ps_ref_publish_many(struct ps_store *s, size_t n, const struct ps_snapshot_info *const *si,
			int *rc, struct ps_error *err)
{
	struct ps_buf *b;
	char (*path)[PATH_MAX];
	const char **paths;
	const void **data;
	size_t *lens, k = 0, *which;
	struct ps_error e1;
	int first = PS_OK, r;
	if (!n)
		return PS_OK;
	b = ps_calloc(n, sizeof(*b));
	path = ps_malloc(n * sizeof(*path));
	paths = ps_calloc(n, sizeof(*paths));
	data = ps_calloc(n, sizeof(*data));
	lens = ps_calloc(n, sizeof(*lens));
	which = ps_calloc(n, sizeof(*which));
	int *wrc = ps_calloc(n, sizeof(*wrc));
	if (!b || !path || !paths || !data || !lens || !which || !wrc) {
		for (size_t i = 0; i < n; i++)
			rc[i] = PS_ERROR;
		first = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		ps_error_clear(&e1);
		snprintf(path[i], sizeof(path[i]), "projects/%s", si[i]->project);
		r = s->be->ops->mkdir(s->be, path[i], &e1);
		snprintf(path[i], sizeof(path[i]), "projects/%s/snaps", si[i]->project);
		if (!r)
			r = s->be->ops->mkdir(s->be, path[i], &e1);
		if (!r && ps_ref_encode(si[i], &b[i]))
			r = ps_err(&e1, PS_ERROR, "out of memory");
		rc[i] = r;
		if (r) {
			if (!first) {
				first = r;
				if (err)
					*err = e1;
			}
			continue;
		}
		snprintf(path[i], sizeof(path[i]), "projects/%s/snaps/%s.snap", si[i]->project,
			 si[i]->name);
		paths[k] = path[i];
		data[k] = b[i].data;
		lens[k] = b[i].len;
		which[k++] = i;
	}
	ps_error_clear(&e1);
	r = ps_be_write_atomic_many(s->be, k, paths, data, lens, wrc, &e1);
	if (r && !first) {
		first = r;
		if (err)
			*err = e1;
	}
	for (size_t j = 0; j < k; j++) {
		struct ps_snapshot_info *v = NULL;
		size_t nv = 0;
		rc[which[j]] = wrc[j];
		/* the snapshot exists now; refreshing the list is an optimisation */
		if (!wrc[j] && ps_snapshot_list(s, si[which[j]]->project, &v, &nv, NULL) == PS_OK)
			ps_free(v);
	}
done:
	for (size_t i = 0; b && i < n; i++)
		ps_buf_release(&b[i]);
	ps_free(b);
	ps_free(path);
	ps_free(paths);
	ps_free(data);
	ps_free(lens);
	ps_free(which);
	ps_free(wrc);
	return first;
}

int ps_ref_publish(struct ps_store *s, const struct ps_snapshot_info *si, struct ps_error *err)
{
	int rc1;
	return ps_ref_publish_many(s, 1, &si, &rc1, err);
}

int ps_snapshot_resolve(struct ps_store *s, const char *project, const char *spec,
			struct ps_snapshot_info *out, struct ps_error *err)
{
	struct ps_snapshot_info *v = NULL;
	size_t n = 0, match = 0, which = 0;
	int rc = ps_snapshot_list(s, project, &v, &n, err);
	if (rc)
		return rc;
	if (!n) {
		rc = ps_err(err, PS_ENOTFOUND, "project '%s' has no snapshots", project);
		goto done;
	}
	if (!spec || !*spec || !strcmp(spec, "latest")) {
		*out = v[n - 1];
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v[i].name, spec)) {
			match = 1;
			which = i;
			break;
		}
		if (!strncmp(v[i].name, spec, strlen(spec))) {
			match++;
			which = i;
		}
	}
	if (match == 0)
		rc = ps_err(err, PS_ENOTFOUND, "project '%s' has no snapshot '%s'", project, spec);
	else if (match > 1)
		rc = ps_err(err, PS_EINVAL, "snapshot '%s' of project '%s' is ambiguous (%zu match)",
			    spec, project, match);
	else
		*out = v[which];
done:
	ps_free(v);
	return rc;
}

int ps_resolve_root(struct ps_store *s, const char *project, const char *spec,
		    struct ps_snapshot_info *si, struct ps_error *err)
{
	int rc;
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
	rc = ps_store_load_index(s, err);
	if (rc)
		return rc;
	return ps_snapshot_resolve(s, project, spec, si, err);
}

/* ------------------------------------------------------------ projects */

struct proj_list {
	char **v;
	size_t n, cap;
};

static int collect_proj(void *ctx, const char *name)
{
	struct proj_list *l = ctx;
	if (!ps_project_id_valid(name))
		return 0;
	return ps_strv_push(&l->v, &l->n, &l->cap, name);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ps_project_list(struct ps_store *s, char ***out, size_t *n, struct ps_error *err)
{
	struct proj_list l = { 0 };
	int rc = s->be->ops->list(s->be, "projects", collect_proj, &l, err);
	if (rc) {
		ps_strv_free(l.v, l.n);
		return rc < 0 ? rc : ps_err(err, PS_ERROR, "out of memory");
	}
	ps_qsort(l.v, l.n, sizeof(*l.v), str_cmp);
	*out = l.v;
	*n = l.n;
	return PS_OK;
}

void ps_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		ps_free(v[i]);
	ps_free(v);
}

/* ------------------------------------------------------------ settings */

void ps_settings_release(struct ps_settings *st)
{
	ps_strv_free(st->excludes, st->nexcludes);
	ps_free(st->extra);
	memset(st, 0, sizeof(*st));
}

/* Keeps a line of a key this version does not know, to write it back. */
static int keep_extra(struct ps_settings *st, const char *key, const char *val)
{
	size_t old = st->extra ? strlen(st->extra) : 0;
	size_t add = strlen(key) + (val ? 1 + strlen(val) : 0) + 1;
	char *n = ps_realloc(st->extra, old + add + 1);
	if (!n)
		return -1;
	snprintf(n + old, add + 1, "%s%s%s\n", key, val ? " " : "", val ? val : "");
	st->extra = n;
	return 0;
}

/* settings file: "quota N", "compression C", "exclude PATTERN" (pattern
 * escaped: \\ and \n), "keep-... N" (retention, snap_prune.c) lines; lines
 * of other keys are kept and written back unchanged. */
int ps_settings_load(struct ps_store *s, const char *project, struct ps_settings *out,
		     struct ps_error *err)
{
	char path[PATH_MAX];
	void *buf = NULL;
	size_t len;
	char *p, *end;
	int rc;
	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "projects/%s/settings", project);
	rc = ps_be_read_all(s->be, path, 1u << 20, &buf, &len, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		return PS_OK;
	}
	if (rc)
		return rc;
	p = buf;
	end = p + len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *val;
		if (!nl)
			nl = end;
		*nl = 0;
		val = strchr(p, ' ');
		if (val)
			*val++ = 0;
		if (!val) {
			if (*p && keep_extra(out, p, NULL)) {
				rc = ps_err(err, PS_ERROR, "out of memory");
				break;
			}
		} else {
			if (!strcmp(p, "quota")) {
				out->quota = strtoull(val, NULL, 10);
			} else if (!strcmp(p, "compression")) {
				snprintf(out->compression, sizeof(out->compression), "%s", val);
			} else if (!strcmp(p, "exclude")) {
				char **nv = ps_realloc(out->excludes, (out->nexcludes + 1) * sizeof(char *));
				char *d, *q;
				if (!nv) {
					rc = ps_err(err, PS_ERROR, "out of memory");
					break;
				}
				out->excludes = nv;
				d = ps_strdup(val);
				if (!d) {
					rc = ps_err(err, PS_ERROR, "out of memory");
					break;
				}
				for (q = d; *val; val++) {
					if (*val == '\\' && val[1] == 'n') {
						*q++ = '\n';
						val++;
					} else if (*val == '\\' && val[1] == '\\') {
						*q++ = '\\';
						val++;
					} else {
						*q++ = *val;
					}
				}
				*q = 0;
				out->excludes[out->nexcludes++] = d;
			} else if (!ps_keep_policy_line(&out->keep, p, val) && keep_extra(out, p, val)) {
				rc = ps_err(err, PS_ERROR, "out of memory");
				break;
			}
		}
		p = nl + 1;
	}
	ps_free(buf);
	if (rc)
		ps_settings_release(out);
	return rc;
}

int ps_settings_save(struct ps_store *s, const char *project, const struct ps_settings *st,
		     struct ps_error *err)
{
	struct ps_buf b = PS_BUF_INIT;
	char path[PATH_MAX];
	int rc = 0;
	snprintf(path, sizeof(path), "projects/%s", project);
	rc = s->be->ops->mkdir(s->be, path, err);
	if (rc)
		return rc;
	if (st->quota)
		rc |= ps_buf_printf(&b, "quota %llu\n", (unsigned long long)st->quota);
	if (st->compression[0])
		rc |= ps_buf_printf(&b, "compression %s\n", st->compression);
	for (size_t i = 0; i < st->nexcludes; i++) {
		rc |= ps_buf_append(&b, "exclude ", 8);
		for (const char *c = st->excludes[i]; *c; c++) {
			if (*c == '\n')
				rc |= ps_buf_append(&b, "\\n", 2);
			else if (*c == '\\')
				rc |= ps_buf_append(&b, "\\\\", 2);
			else
				rc |= ps_buf_append(&b, c, 1);
		}
		rc |= ps_buf_append(&b, "\n", 1);
	}
	rc |= ps_keep_policy_write(&st->keep, &b);
	if (st->extra)
		rc |= ps_buf_append(&b, st->extra, strlen(st->extra));
	if (rc) {
		ps_buf_release(&b);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	snprintf(path, sizeof(path), "projects/%s/settings", project);
	rc = ps_be_write_atomic(s->be, path, b.data ? (void *)b.data : (void *)"", b.len, err);
	ps_buf_release(&b);
	return rc;
}

int ps_quota_get(struct ps_store *s, const char *project, uint64_t *quota, struct ps_error *err)
{
	struct ps_settings st;
	int rc;
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
	rc = ps_settings_load(s, project, &st, err);
	if (rc)
		return rc;
	*quota = st.quota;
	ps_settings_release(&st);
	return PS_OK;
}

int ps_quota_set(struct ps_store *s, const char *project, uint64_t quota, struct ps_error *err)
{
	struct ps_settings st;
	int rc;
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
	rc = ps_settings_load(s, project, &st, err);
	if (rc)
		return rc;
	st.quota = quota;
	rc = ps_settings_save(s, project, &st, err);
	ps_settings_release(&st);
	return rc;
}

int ps_excludes_get(struct ps_store *s, const char *project, char ***out, size_t *n,
		    struct ps_error *err)
{
	struct ps_settings st;
	int rc;
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
	rc = ps_settings_load(s, project, &st, err);
	if (rc)
		return rc;
	*out = st.excludes;
	*n = st.nexcludes;
	st.excludes = NULL;
	st.nexcludes = 0;
	ps_settings_release(&st);
	return PS_OK;
}

int ps_excludes_set(struct ps_store *s, const char *project, const char *const *patterns,
		    size_t n, struct ps_error *err)
{
	struct ps_settings st;
	int rc;
	if (!ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project);
	for (size_t i = 0; i < n; i++)
		if (!patterns[i][0] || strlen(patterns[i]) > 4096)
			return ps_err(err, PS_EINVAL, "invalid exclude pattern");
	rc = ps_settings_load(s, project, &st, err);
	if (rc)
		return rc;
	ps_strv_free(st.excludes, st.nexcludes);
	st.excludes = ps_calloc(n + 1, sizeof(char *));
	st.nexcludes = 0;
	if (!st.excludes)
		rc = ps_err(err, PS_ERROR, "out of memory");
	for (size_t i = 0; i < n && !rc; i++) {
		if (!(st.excludes[i] = ps_strdup(patterns[i])))
			rc = ps_err(err, PS_ERROR, "out of memory");
		else
			st.nexcludes++;
	}
	if (!rc)
		rc = ps_settings_save(s, project, &st, err);
	ps_settings_release(&st);
	return rc;
}
