/*
 * fuzz_fcache.c - the host-side file cache: ps_fcache_parse on untrusted
 * bytes (the cache lives in a user-writable directory and is read by every
 * save of the project).
 *
 * Input: a control byte, then the cache file image.  With FUZZ_FIX_SUM the
 * trailing SHA-256 is recomputed first, so mutations get past the checksum.
 * Each input is parsed into a fresh empty cache (ps_fcache_open of a
 * directory that does not exist), probed and freed, which also exercises the
 * cleanup of a partially parsed cache.
 *
 * Invariants: after a successful parse every entry is found by its path
 * (directories only when the params match), nothing is found for a path
 * that is not in the cache.  With -DFUZZ_STRICT also: the xattrs and the
 * extent lists the cache hands to a save are well formed by the tree
 * decoder's rules, so a save that reuses them can never write a tree that
 * does not decode (known to fail: see fuzz/README.md).
 */
#define _GNU_SOURCE
#include "fuzz_common.h"
#include "snap/snap_int.h"

/* The struct is private to snap_fcache.c: only its start is needed here to
 * walk the parsed entries (path, params, dirs_valid, old, nold).  view_ok()
 * checks that the layout still matches before anything is dereferenced. */
struct fcache_view {
	char path[4096];
	uint8_t params[32];
	int dirs_valid;
	struct ps_buf raw;
	struct ps_extent *pool;
	struct ps_fcache_ent *old;
	size_t nold;
};

#ifdef FUZZ_STRICT
/* The tree decoder's rules for an entry's xattr bytes. */
static int xattrs_valid(const uint8_t *p, size_t len, size_t n_claimed)
{
	struct ps_rd r;
	uint64_t n;
	ps_rd_init(&r, p, len);
	n = ps_rd_uvar(&r);
	if (r.bad || n != n_claimed || n > ps_rd_left(&r) / 2)
		return 0;
	for (uint64_t k = 0; k < n && !r.bad; k++) {
		uint64_t kl = ps_rd_uvar(&r);
		const uint8_t *kn = ps_rd_bytes(&r, (size_t)kl);
		if (kn && (kl == 0 || kl > 255 || memchr(kn, 0, (size_t)kl)))
			return 0;
		ps_rd_bytes(&r, (size_t)ps_rd_uvar(&r));
	}
	return !r.bad && !ps_rd_left(&r);
}
#endif

static int view_ok(const struct fcache_view *v, const uint8_t *buf)
{
	static const uint8_t zero[32];
	static int warned;
	int ok = !strncmp(v->path, "/nonexistent/projstore-fuzz/store/project-", 42) &&
		 !memcmp(v->params, zero, 32) && (v->dirs_valid == 0 || v->dirs_valid == 1) &&
		 v->nold == ps_get_le64(buf + 8) && (v->old || !v->nold);
	if (!ok && !warned++)
		fprintf(stderr, "fuzz_fcache: struct ps_fcache changed layout: entries not walked\n");
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ps_fcache *c = NULL;
	uint8_t *buf;
	int rc;
	if (size < 1)
		return 0;
	buf = fuzz_dup(data + 1, size - 1, 0);
	size--;
	if (data[0] & FUZZ_FIX_SUM)
		fuzz_fix_sha_tail(buf, size);
	if (ps_fcache_open(&c, "/nonexistent/projstore-fuzz", "store", "project", NULL, NULL) || !c)
		abort();
	rc = ps_fcache_parse(c, buf, size);
	fuzz_trace("ps_fcache_parse", rc);
	if (rc == 0 && view_ok((const struct fcache_view *)c, buf)) {
		const struct fcache_view *v = (const struct fcache_view *)c;
		for (size_t i = 0; i < v->nold && i < 256; i++) {
			const struct ps_fcache_ent *e = &v->old[i];
			const struct ps_fcache_ent *f = ps_fcache_find(c, e->path, e->path_len);
			FUZZ_CHECK(e->kind <= PS_FC_OTHER, "bad kind accepted");
			FUZZ_CHECK(e->path_len <= size, "path length");
			if (e->kind == PS_FC_DIR && !v->dirs_valid)
				continue;
			/* a duplicate path may find the other copy (same path though), or
			 * nothing when that copy is a directory of other params */
			if (!f && !v->dirs_valid) {
				int dup_dir = 0;
				for (size_t k = 0; k < v->nold && !dup_dir; k++)
					dup_dir = v->old[k].kind == PS_FC_DIR && v->old[k].path_len == e->path_len &&
						  !memcmp(v->old[k].path, e->path, e->path_len);
				if (dup_dir)
					continue;
			}
			FUZZ_CHECK(f && f->path_len == e->path_len && !memcmp(f->path, e->path, e->path_len),
				   "a parsed entry is not found by its path");
			FUZZ_CHECK(!e->xattrs_len || e->xattrs, "xattr bytes missing");
			FUZZ_CHECK(!e->target_len || e->target, "target bytes missing");
#ifdef FUZZ_STRICT
			FUZZ_CHECK(!e->xattrs_len || xattrs_valid(e->xattrs, e->xattrs_len, e->nxattrs),
				   "malformed xattrs accepted from the cache");
			if (e->kind == PS_FC_FILE) {
				uint64_t end = 0, stop;
				for (size_t x = 0; x < e->nextents; x++) {
					const struct ps_extent *ex = &e->extents[x];
					FUZZ_CHECK(ex->len > 0 && ex->len <= PS_OBJ_MAX && ex->off >= end &&
						   !__builtin_add_overflow(ex->off, (uint64_t)ex->len, &stop) &&
						   stop <= e->size, "invalid extent list accepted from the cache");
					end = stop;
				}
			}
#endif
		}
		{
			static const char probe[] = "\x01no such path\x02";
			const struct ps_fcache_ent *f = ps_fcache_find(c, probe, sizeof(probe) - 1);
			FUZZ_CHECK(!f || (f->path_len == sizeof(probe) - 1 && !memcmp(f->path, probe, f->path_len)),
				   "find returned an entry of another path");
		}
	}
	ps_fcache_free(c);
	free(buf);
	return 0;
}
