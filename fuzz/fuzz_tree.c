/*
 * fuzz_tree.c - tree objects: ps_tree_decode on untrusted bytes (the whole
 * input is the object; trees carry no checksum of their own, the store's
 * SHA-256 id is checked before a tree is decoded).
 *
 * Invariants of a decoded tree: names are non-hostile, sorted and unique,
 * each is found by ps_tree_find; the xattr iterator yields exactly nxattrs
 * items inside the entry's xattr bytes; symlink and error targets are
 * non-empty without NUL; file extents are ascending and non-overlapping.
 * Re-encoding the entries and decoding that gives equal entries, and a
 * second re-encoding is byte-identical to the first (canonical form).
 * With -DFUZZ_STRICT also: every extent lies inside the file size without
 * overflowing (known to fail, see fuzz/README.md).
 */
#define _GNU_SOURCE
#include "fuzz_common.h"
#include "snap/snap_int.h"

static int entry_equal(const struct ps_tentry *a, const struct ps_tentry *b)
{
	if (a->name_len != b->name_len || memcmp(a->name, b->name, a->name_len) || a->type != b->type ||
	    a->mode != b->mode || a->uid != b->uid || a->gid != b->gid || a->mtime_sec != b->mtime_sec ||
	    a->mtime_nsec != b->mtime_nsec || a->size != b->size || a->link_group != b->link_group ||
	    a->nxattrs != b->nxattrs)
		return 0;
	/* xattr bytes may differ only in how their varints were written */
	{
		struct ps_xattr_it ia, ib;
		const char *ka, *kb;
		const uint8_t *va, *vb;
		size_t kla, klb, vla, vlb;
		ps_xattr_it_init(&ia, a);
		ps_xattr_it_init(&ib, b);
		for (;;) {
			int ra = ps_xattr_next(&ia, &ka, &kla, &va, &vla);
			int rb = ps_xattr_next(&ib, &kb, &klb, &vb, &vlb);
			if (ra != rb)
				return 0;
			if (!ra)
				break;
			if (kla != klb || memcmp(ka, kb, kla) || vla != vlb || (vla && memcmp(va, vb, vla)))
				return 0;
		}
	}
	switch (a->type) {
	case PS_T_REG:
		if (a->nextents != b->nextents)
			return 0;
		for (size_t k = 0; k < a->nextents; k++)
			if (a->extents[k].off != b->extents[k].off || a->extents[k].len != b->extents[k].len ||
			    memcmp(a->extents[k].id, b->extents[k].id, 32))
				return 0;
		return 1;
	case PS_T_DIR:
		return !memcmp(a->subtree, b->subtree, 32);
	case PS_T_SYMLINK:
	case PS_T_ERROR:
		return a->target_len == b->target_len && !memcmp(a->target, b->target, a->target_len);
	case PS_T_CHR:
	case PS_T_BLK:
		return a->rdev == b->rdev;
	default:
		return 1;
	}
}

static void check_tree(const struct ps_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct ps_tentry *e = &t->ents[i];
		struct ps_xattr_it it;
		const char *k;
		const uint8_t *v;
		size_t kl, vl, nx = 0;
		FUZZ_CHECK(e->name_len > 0 && e->name_len <= 255, "name length");
		FUZZ_CHECK(!memchr(e->name, '/', e->name_len) && !memchr(e->name, 0, e->name_len),
			   "hostile name accepted");
		FUZZ_CHECK(!(e->name_len == 1 && e->name[0] == '.') &&
			   !(e->name_len == 2 && e->name[0] == '.' && e->name[1] == '.'), "'.' or '..' accepted");
		if (i)
			FUZZ_CHECK(ps_name_cmp(t->ents[i - 1].name, t->ents[i - 1].name_len, e->name,
					       e->name_len) < 0, "names not sorted and unique");
		FUZZ_CHECK(ps_tree_find(t, (const char *)e->name, e->name_len) == (long)i,
			   "an entry is not found by its name");
		FUZZ_CHECK(e->mode <= 07777 && e->mtime_nsec < 1000000000u, "mode or nanoseconds");
		ps_xattr_it_init(&it, e);
		while (ps_xattr_next(&it, &k, &kl, &v, &vl)) {
			FUZZ_CHECK(k >= (const char *)e->xattrs &&
				   (const uint8_t *)k + kl <= e->xattrs + e->xattrs_len, "xattr name outside");
			FUZZ_CHECK(kl > 0 && kl <= 255 && !memchr(k, 0, kl), "bad xattr name accepted");
			FUZZ_CHECK(!vl || (v >= e->xattrs && v + vl <= e->xattrs + e->xattrs_len),
				   "xattr value outside");
			nx++;
		}
		FUZZ_CHECK(nx == e->nxattrs, "xattr iterator disagrees with nxattrs");
		if (e->type == PS_T_SYMLINK || e->type == PS_T_ERROR) {
			FUZZ_CHECK(e->target_len > 0 && e->target_len <= 65536 &&
				   !memchr(e->target, 0, e->target_len), "bad target accepted");
			if (e->type == PS_T_SYMLINK)
				FUZZ_CHECK(e->size == e->target_len, "symlink size is not its target length");
		}
		if (e->type == PS_T_REG) {
			uint64_t end = 0;
			for (size_t x = 0; x < e->nextents; x++) {
				const struct ps_extent *ex = &e->extents[x];
				FUZZ_CHECK(ex->len > 0 && ex->len <= PS_OBJ_MAX, "bad extent length");
				FUZZ_CHECK(ex->off >= end, "extents overlap or are out of order");
#ifdef FUZZ_STRICT
				{
					uint64_t stop;
					FUZZ_CHECK(!__builtin_add_overflow(ex->off, (uint64_t)ex->len, &stop) &&
						   stop <= e->size, "extent beyond the file size");
				}
#endif
				end = ex->off + ex->len;
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = fuzz_dup(data, size, 0);
	struct ps_tree t, t2;
	struct ps_buf b1 = PS_BUF_INIT, b2 = PS_BUF_INIT;
	int rc = ps_tree_decode(buf, size, &t, NULL);
	fuzz_trace("ps_tree_decode", rc);
	if (rc != PS_OK) {
		FUZZ_CHECK(rc == PS_ECORRUPT || rc == PS_EHOSTILE || rc == PS_ERROR, "unexpected error code");
		free(buf);
		return 0;
	}
	FUZZ_CHECK(t.buf == buf && t.len == size, "decoded tree does not own the input");
	check_tree(&t);
	FUZZ_CHECK(!ps_tree_encode(t.ents, t.n, &b1), "re-encoding failed");
	{
		uint8_t *c = fuzz_dup(b1.data, b1.len, 0);
		rc = ps_tree_decode(c, b1.len, &t2, NULL);
		FUZZ_CHECK(rc == PS_OK, "the encoder's output does not decode");
		FUZZ_CHECK(t2.n == t.n, "round trip changed the entry count");
		for (size_t i = 0; i < t.n; i++)
			FUZZ_CHECK(entry_equal(&t.ents[i], &t2.ents[i]), "round trip changed an entry");
		FUZZ_CHECK(!ps_tree_encode(t2.ents, t2.n, &b2), "second re-encoding failed");
		FUZZ_CHECK(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len),
			   "re-encoding is not canonical");
		ps_tree_release(&t2);
	}
	ps_buf_release(&b1);
	ps_buf_release(&b2);
	ps_tree_release(&t);
	return 0;
}
