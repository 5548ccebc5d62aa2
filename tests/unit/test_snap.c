/*
 * test_snap.c - snap/: tree objects (round trip of every entry type, hostile
 * names, order, every truncation and byte flip, field validation), snapshot
 * refs (round trip, checksum, required and malformed fields), snapshot
 * names, project settings, and save + restore of a small tree through the
 * public API (files, directories, symlinks, hardlinks, a sparse file, a
 * FIFO, modes, nanosecond times, xattrs) compared byte for byte, with ls,
 * cat, diff and check; ps_save under injected allocation failures.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "snap/snap_int.h"
#include "hash/hash.h"

#include <dirent.h>
#include <malloc.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>

static struct ps_error E;

/* ------------------------------------------------------------ trees */

#define NENT 10

struct fixture {
	struct ps_tentry e[NENT];
	struct ps_extent ext[3];
	struct ps_buf xattrs;
	uint8_t sub[32];
};

static void make_entries(struct fixture *f)
{
	static const char *names[NENT] = { "blk", "chr", "dir", "err", "fifo", "file", "sock", "sym",
					   "zero", "\xff\x01 name with\nnewline" };
	static const char errmsg[] = "cannot open: Permission denied";
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < NENT; i++) {
		f->e[i].name = (const uint8_t *)names[i];
		f->e[i].name_len = strlen(names[i]);
		f->e[i].mode = 0644;
		f->e[i].uid = 1000 + (uint32_t)i;
		f->e[i].gid = 100;
		f->e[i].mtime_sec = 1764064312 + i;
		f->e[i].mtime_nsec = 123456789;
	}
	f->e[0].type = PS_T_BLK;
	f->e[0].rdev = makedev(8, 1);
	f->e[1].type = PS_T_CHR;
	f->e[1].rdev = makedev(1, 3);
	f->e[2].type = PS_T_DIR;
	f->e[2].mode = 01777;
	memset(f->sub, 0x5d, 32);
	memcpy(f->e[2].subtree, f->sub, 32);
	f->e[3].type = PS_T_ERROR;
	f->e[3].target = (const uint8_t *)errmsg;
	f->e[3].target_len = strlen(errmsg);
	f->e[4].type = PS_T_FIFO;
	f->e[5].type = PS_T_REG;
	f->e[5].mode = 04755;
	f->e[5].uid = UINT32_MAX;
	f->e[5].gid = UINT32_MAX;
	f->e[5].mtime_sec = -5;             /* before 1970 */
	f->e[5].mtime_nsec = 999999999;
	f->e[5].size = 5000;
	f->e[5].link_group = 7;
	for (int k = 0; k < 3; k++)
		memset(f->ext[k].id, 0x10 + k, 32);
	f->ext[0].off = 0;
	f->ext[0].len = 100;
	f->ext[1].off = 100;
	f->ext[1].len = 50;
	f->ext[2].off = 4096;                /* a hole between 150 and 4096 */
	f->ext[2].len = 904;
	f->e[5].extents = f->ext;
	f->e[5].nextents = 3;
	ps_buf_put_uvar(&f->xattrs, 2);
	ps_buf_put_uvar(&f->xattrs, 8);
	ps_buf_append(&f->xattrs, "user.big", 8);
	ps_buf_put_uvar(&f->xattrs, 3);
	ps_buf_append(&f->xattrs, "a\0c", 3);
	ps_buf_put_uvar(&f->xattrs, 9);
	ps_buf_append(&f->xattrs, "user.note", 9);
	ps_buf_put_uvar(&f->xattrs, 0);
	f->e[5].xattrs = f->xattrs.data;
	f->e[5].xattrs_len = f->xattrs.len;
	f->e[5].nxattrs = 2;
	f->e[6].type = PS_T_SOCK;
	f->e[7].type = PS_T_SYMLINK;
	f->e[7].target = (const uint8_t *)"../x";
	f->e[7].target_len = 4;
	f->e[7].size = 4;
	f->e[7].mode = 0777;
	f->e[8].type = PS_T_REG;             /* an empty file: no extents */
	f->e[8].mtime_sec = INT64_MIN / 2;
	f->e[9].type = PS_T_REG;
	f->e[9].size = UINT64_MAX;           /* all hole */
}

static int entry_equal(const struct ps_tentry *a, const struct ps_tentry *b)
{
	if (a->name_len != b->name_len || memcmp(a->name, b->name, a->name_len) || a->type != b->type ||
	    a->mode != b->mode || a->uid != b->uid || a->gid != b->gid || a->mtime_sec != b->mtime_sec ||
	    a->mtime_nsec != b->mtime_nsec || a->size != b->size || a->link_group != b->link_group)
		return 0;
	if (a->nxattrs != b->nxattrs)
		return 0;
	if (a->nxattrs && (a->xattrs_len != b->xattrs_len || memcmp(a->xattrs, b->xattrs, a->xattrs_len)))
		return 0;
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

/* Decodes a copy of buf; returns the code and (on success) fills t. */
static int decode_copy(const uint8_t *buf, size_t len, struct ps_tree *t)
{
	uint8_t *c = malloc(len ? len : 1);
	int rc;
	memcpy(c, buf, len);
	rc = ps_tree_decode(c, len, t, &E);
	if (rc)
		free(c);
	return rc;
}

static void test_tree_roundtrip(void)
{
	struct fixture f;
	struct ps_buf b = PS_BUF_INIT, b2 = PS_BUF_INIT;
	struct ps_tree t;
	int good = 1;

	make_entries(&f);
	is_int(ps_tree_encode(f.e, NENT, &b), 0, "encode a tree of every entry type");
	ok(!memcmp(b.data, "PSTR\x01", 5), "tree magic and version");
	is_int(decode_copy(b.data, b.len, &t), PS_OK, "decode it");
	is_int(t.n, NENT, "%d entries", NENT);
	for (int i = 0; i < NENT && t.n == NENT; i++)
		if (!entry_equal(&f.e[i], &t.ents[i])) {
			diag("entry %d (%s) differs", i, (const char *)f.e[i].name);
			good = 0;
		}
	ok(good, "every field of every entry round trips");
	ok(t.ents[5].extents && t.ents[5].extents[2].off == 4096, "extent pointers are fixed up");
	is_int(ps_tree_find(&t, "sym", 3), 7, "find 'sym'");
	is_int(ps_tree_find(&t, "blk", 3), 0, "find the first entry");
	is_int(ps_tree_find(&t, "\xff\x01 name with\nnewline", strlen("\xff\x01 name with\nnewline")), 9,
	       "find the last entry");
	is_int(ps_tree_find(&t, "fil", 3), -1, "a prefix is not found");
	is_int(ps_tree_find(&t, "files", 5), -1, "a longer name is not found");
	is_int(ps_tree_find(&t, "", 0), -1, "the empty name is not found");
	{
		struct ps_xattr_it it;
		const char *k;
		const uint8_t *v;
		size_t kl, vl;
		int n = 0;
		ps_xattr_it_init(&it, &t.ents[5]);
		ok(ps_xattr_next(&it, &k, &kl, &v, &vl) && kl == 8 && !memcmp(k, "user.big", 8) && vl == 3 &&
		   !memcmp(v, "a\0c", 3), "first xattr (a value with a NUL)");
		ok(ps_xattr_next(&it, &k, &kl, &v, &vl) && kl == 9 && vl == 0, "second xattr (empty value)");
		ok(!ps_xattr_next(&it, &k, &kl, &v, &vl), "no third xattr");
		ps_xattr_it_init(&it, &t.ents[0]);
		while (ps_xattr_next(&it, &k, &kl, &v, &vl))
			n++;
		is_int(n, 0, "an entry without xattrs iterates nothing");
	}
	/* re-encoding the decoded tree gives the same bytes (the id is stable) */
	is_int(ps_tree_encode(t.ents, t.n, &b2), 0, "re-encode the decoded tree");
	ok(b2.len == b.len && !memcmp(b2.data, b.data, b.len), "byte-identical");
	ps_tree_release(&t);
	ps_tree_release(&t);
	ok(1, "release twice is harmless");

	/* the empty tree */
	ps_buf_reset(&b2);
	is_int(ps_tree_encode(NULL, 0, &b2), 0, "encode the empty tree");
	is_mem(b2.data, "PSTR\x01\x00", 6, "the empty tree is 'PSTR' 01 00");
	is_int(decode_copy(b2.data, b2.len, &t), PS_OK, "decode the empty tree");
	is_int(t.n, 0, "no entries");
	is_int(ps_tree_find(&t, "a", 1), -1, "find in an empty tree");
	ps_tree_release(&t);

	/* name order */
	{
		static const uint8_t a[] = "a", ab[] = "ab", b_[] = "b", hi[] = "\x80";
		ok(ps_name_cmp(a, 1, ab, 2) < 0, "'a' < 'ab' (shorter first)");
		ok(ps_name_cmp(ab, 2, b_, 1) < 0, "'ab' < 'b'");
		ok(ps_name_cmp(b_, 1, hi, 1) < 0, "bytes compare unsigned");
		ok(ps_name_cmp(ab, 2, ab, 2) == 0, "equal names");
	}

	/* every truncation fails cleanly */
	good = 1;
	for (size_t l = 0; l < b.len; l++) {
		int rc = decode_copy(b.data, l, &t);
		if (rc != PS_ECORRUPT) {
			diag("truncated to %zu: rc %d", l, rc);
			good = 0;
			if (!rc)
				ps_tree_release(&t);
		}
	}
	ok(good, "every truncation (%zu of them): PS_ECORRUPT", b.len);
	/* one extra byte */
	{
		uint8_t *x = malloc(b.len + 1);
		memcpy(x, b.data, b.len);
		x[b.len] = 0;
		is_int(decode_copy(x, b.len + 1, &t), PS_ECORRUPT, "a trailing byte: PS_ECORRUPT");
		free(x);
	}
	/* every byte flipped, with several masks: never a crash; a success must
	 * re-encode and decode to the same entries */
	{
		static const uint8_t masks[] = { 0x01, 0x80, 0xff, 0x20 };
		int crashes_avoided = 1, n_ok = 0, n_corrupt = 0, n_hostile = 0, consistent = 1;
		uint8_t *m = malloc(b.len);
		for (size_t i = 0; i < b.len; i++)
			for (size_t k = 0; k < PS_ARRAY_LEN(masks); k++) {
				int rc;
				memcpy(m, b.data, b.len);
				m[i] ^= masks[k];
				rc = decode_copy(m, b.len, &t);
				if (rc == PS_OK) {
					struct ps_buf rb = PS_BUF_INIT;
					struct ps_tree t2;
					n_ok++;
					if (ps_tree_encode(t.ents, t.n, &rb) || decode_copy(rb.data, rb.len, &t2)) {
						consistent = 0;
					} else {
						for (size_t j = 0; j < t.n; j++)
							if (t.n != t2.n || !entry_equal(&t.ents[j], &t2.ents[j]))
								consistent = 0;
						ps_tree_release(&t2);
					}
					ps_buf_release(&rb);
					ps_tree_release(&t);
				} else if (rc == PS_ECORRUPT) {
					n_corrupt++;
				} else if (rc == PS_EHOSTILE) {
					n_hostile++;
				} else {
					crashes_avoided = 0;
				}
			}
		free(m);
		ok(crashes_avoided, "%zu byte flips: each PS_OK, PS_ECORRUPT or PS_EHOSTILE", b.len * 4);
		ok(consistent, "flips that still decode describe a valid tree (re-encode round trips)");
		diag("flips: %d decoded (values: ids, times, ...), %d corrupt, %d hostile", n_ok, n_corrupt,
		     n_hostile);
	}
	/* specific structural damage */
	{
		uint8_t *m = malloc(b.len);
		memcpy(m, b.data, b.len);
		m[0] = 'X';
		is_int(decode_copy(m, b.len, &t), PS_ECORRUPT, "bad magic");
		memcpy(m, b.data, b.len);
		m[4] = 2;
		is_int(decode_copy(m, b.len, &t), PS_ECORRUPT, "version 2");
		memcpy(m, b.data, b.len);
		m[5] = NENT + 1;
		is_int(decode_copy(m, b.len, &t), PS_ECORRUPT, "one entry too many");
		memcpy(m, b.data, b.len);
		m[5] = NENT - 1;
		is_int(decode_copy(m, b.len, &t), PS_ECORRUPT, "one entry too few (trailing bytes)");
		/* the type of the first entry ("blk"): name length 1 + 3 bytes */
		memcpy(m, b.data, b.len);
		m[6 + 4] = 8;
		is_int(decode_copy(m, b.len, &t), PS_ECORRUPT, "unknown entry type 8");
		m[6 + 4] = 0;
		is_int(decode_copy(m, b.len, &t), PS_ECORRUPT, "entry type 0");
		m[6 + 4] = 14;
		is_int(decode_copy(m, b.len, &t), PS_ECORRUPT, "entry type 14");
		free(m);
	}
	ps_buf_release(&b);
	ps_buf_release(&b2);
	ps_buf_release(&f.xattrs);
}

/* A one-entry tree written field by field, so any field can be wrong. */
struct raw_ent {
	const char *name;
	size_t name_len;
	int type;
	uint64_t mode, uid, gid;
	int64_t mtime;
	uint64_t nsec, size, link;
	const uint8_t *xattrs;   /* raw bytes, NULL = "0" */
	size_t xattrs_len;
	const uint8_t *tail;     /* raw type-specific bytes */
	size_t tail_len;
};

static int decode_raw(const struct raw_ent *r)
{
	struct ps_buf b = PS_BUF_INIT;
	struct ps_tree t;
	int rc;
	ps_buf_append(&b, "PSTR\x01", 5);
	ps_buf_put_uvar(&b, 1);
	ps_buf_put_uvar(&b, r->name_len);
	ps_buf_append(&b, r->name, r->name_len);
	ps_buf_put_u8(&b, (uint8_t)r->type);
	ps_buf_put_uvar(&b, r->mode);
	ps_buf_put_uvar(&b, r->uid);
	ps_buf_put_uvar(&b, r->gid);
	ps_buf_put_svar(&b, r->mtime);
	ps_buf_put_uvar(&b, r->nsec);
	ps_buf_put_uvar(&b, r->size);
	ps_buf_put_uvar(&b, r->link);
	if (r->xattrs)
		ps_buf_append(&b, r->xattrs, r->xattrs_len);
	else
		ps_buf_put_uvar(&b, 0);
	ps_buf_append(&b, r->tail, r->tail_len);
	rc = decode_copy(b.data, b.len, &t);
	if (!rc)
		ps_tree_release(&t);
	ps_buf_release(&b);
	return rc;
}

/* Type-specific bytes for a file of extents (off, len) with distinct ids. */
static size_t file_tail(uint8_t *out, const uint64_t *offs, const uint64_t *lens, size_t n)
{
	struct ps_buf b = PS_BUF_INIT;
	size_t len;
	ps_buf_put_uvar(&b, n);
	for (size_t i = 0; i < n; i++) {
		uint8_t id[32];
		memset(id, (int)i + 1, 32);
		ps_buf_put_uvar(&b, offs[i]);
		ps_buf_put_uvar(&b, lens[i]);
		ps_buf_append(&b, id, 32);
	}
	len = b.len;
	memcpy(out, b.data, len);
	ps_buf_release(&b);
	return len;
}

static void test_tree_validation(void)
{
	struct raw_ent base = { "f", 1, PS_T_FIFO, 0644, 0, 0, 0, 0, 0, 0, NULL, 0, NULL, 0 }, r;
	uint8_t tail[1024], xa[600];
	static const char *hostile[] = { "", ".", "..", "a/b", "/", "a/", "/a" };

	r = base;
	is_int(decode_raw(&r), PS_OK, "a valid one-entry tree (fifo)");
	for (size_t i = 0; i < PS_ARRAY_LEN(hostile); i++) {
		r = base;
		r.name = hostile[i];
		r.name_len = strlen(hostile[i]);
		is_int(decode_raw(&r), PS_EHOSTILE, "name '%s': PS_EHOSTILE", hostile[i]);
	}
	r = base;
	r.name = "a\0b";
	r.name_len = 3;
	is_int(decode_raw(&r), PS_EHOSTILE, "a name with a NUL: PS_EHOSTILE");
	r.name = "\0";
	r.name_len = 1;
	is_int(decode_raw(&r), PS_EHOSTILE, "the name NUL: PS_EHOSTILE");
	{
		char n256[257];
		memset(n256, 'n', 256);
		n256[256] = 0;
		r = base;
		r.name = n256;
		r.name_len = 256;
		is_int(decode_raw(&r), PS_EHOSTILE, "a 256-byte name: PS_EHOSTILE");
		r.name_len = 255;
		is_int(decode_raw(&r), PS_OK, "a 255-byte name is fine");
	}
	{
		static const char *fine[] = { "...", ".a", "a.", "..a", "-", " ", "\\", "\xff", "\n" };
		int all = 1;
		for (size_t i = 0; i < PS_ARRAY_LEN(fine); i++) {
			r = base;
			r.name = fine[i];
			r.name_len = strlen(fine[i]);
			if (decode_raw(&r) != PS_OK)
				all = 0;
		}
		ok(all, "names like '...', '.a', '\\\\', 0xff and newline are accepted");
	}

	r = base; r.mode = 010000;
	is_int(decode_raw(&r), PS_ECORRUPT, "mode beyond 07777");
	r = base; r.mode = 07777;
	is_int(decode_raw(&r), PS_OK, "mode 07777");
	r = base; r.uid = 1ULL << 32;
	is_int(decode_raw(&r), PS_ECORRUPT, "uid 2^32");
	r = base; r.gid = 1ULL << 32;
	is_int(decode_raw(&r), PS_ECORRUPT, "gid 2^32");
	r = base; r.nsec = 1000000000;
	is_int(decode_raw(&r), PS_ECORRUPT, "nanoseconds 10^9");
	r = base; r.nsec = 999999999; r.mtime = INT64_MIN;
	is_int(decode_raw(&r), PS_OK, "nanoseconds 10^9-1, mtime INT64_MIN");

	/* xattrs */
	{
		struct ps_buf x = PS_BUF_INIT;
		ps_buf_put_uvar(&x, 1);
		ps_buf_put_uvar(&x, 0);
		ps_buf_put_uvar(&x, 0);
		r = base; r.xattrs = x.data; r.xattrs_len = x.len;
		is_int(decode_raw(&r), PS_ECORRUPT, "an xattr with an empty name");
		ps_buf_reset(&x);
		ps_buf_put_uvar(&x, 1);
		ps_buf_put_uvar(&x, 3);
		ps_buf_append(&x, "a\0b", 3);
		ps_buf_put_uvar(&x, 0);
		r.xattrs = x.data; r.xattrs_len = x.len;
		is_int(decode_raw(&r), PS_ECORRUPT, "an xattr name with a NUL");
		ps_buf_reset(&x);
		ps_buf_put_uvar(&x, 1);
		ps_buf_put_uvar(&x, 256);
		memset(xa, 'x', 256);
		ps_buf_append(&x, xa, 256);
		ps_buf_put_uvar(&x, 0);
		r.xattrs = x.data; r.xattrs_len = x.len;
		is_int(decode_raw(&r), PS_ECORRUPT, "a 256-byte xattr name");
		ps_buf_reset(&x);
		ps_buf_put_uvar(&x, 1000);
		r.xattrs = x.data; r.xattrs_len = x.len;
		is_int(decode_raw(&r), PS_ECORRUPT, "an xattr count beyond the data");
		ps_buf_reset(&x);
		ps_buf_put_uvar(&x, 2);
		ps_buf_put_uvar(&x, 1);
		ps_buf_append(&x, "k", 1);
		ps_buf_put_uvar(&x, 1u << 20);
		r.xattrs = x.data; r.xattrs_len = x.len;
		is_int(decode_raw(&r), PS_ECORRUPT, "an xattr value longer than the data");
		ps_buf_reset(&x);
		ps_buf_put_uvar(&x, UINT64_MAX);
		r.xattrs = x.data; r.xattrs_len = x.len;
		is_int(decode_raw(&r), PS_ECORRUPT, "an xattr count of 2^64-1");
		ps_buf_release(&x);
	}

	/* files */
	{
		uint64_t o[3], l[3];
		r = base; r.type = PS_T_REG; r.size = 300;
		o[0] = 0; l[0] = 100; o[1] = 100; l[1] = 100; o[2] = 250; l[2] = 50;
		r.tail = tail; r.tail_len = file_tail(tail, o, l, 3);
		is_int(decode_raw(&r), PS_OK, "a file with adjacent extents and a hole");
		o[1] = 99;
		r.tail_len = file_tail(tail, o, l, 3);
		is_int(decode_raw(&r), PS_ECORRUPT, "overlapping extents");
		o[1] = 100; o[2] = 200; l[2] = 100;
		r.tail_len = file_tail(tail, o, l, 3);
		is_int(decode_raw(&r), PS_OK, "extents ending at size");
		r.size = 199;
		is_int(decode_raw(&r), PS_ECORRUPT, "an extent past the size");
		r.size = 300; o[0] = 200;
		r.tail_len = file_tail(tail, o, l, 3);
		is_int(decode_raw(&r), PS_ECORRUPT, "extents out of order");
		o[0] = 0; l[1] = 0;
		r.tail_len = file_tail(tail, o, l, 3);
		is_int(decode_raw(&r), PS_ECORRUPT, "an empty extent");
		o[0] = 0; l[0] = (uint64_t)PS_OBJ_MAX + 1; r.size = UINT64_MAX;
		r.tail_len = file_tail(tail, o, l, 1);
		is_int(decode_raw(&r), PS_ECORRUPT, "an extent longer than PS_OBJ_MAX");
		l[0] = 1ULL << 32; 
		r.tail_len = file_tail(tail, o, l, 1);
		is_int(decode_raw(&r), PS_ECORRUPT, "an extent length of 2^32");
		r.tail_len = file_tail(tail, o, l, 0);
		r.tail_len = 0;
		tail[r.tail_len++] = 0x7f;
		is_int(decode_raw(&r), PS_ECORRUPT, "an extent count beyond the data");
		r.tail_len = 0;
		is_int(decode_raw(&r), PS_ECORRUPT, "a file without its extent count");
		o[0] = UINT64_MAX - 4; l[0] = 10; r.size = UINT64_MAX;
		r.tail_len = file_tail(tail, o, l, 1);
		is_int(decode_raw(&r), PS_ECORRUPT, "an extent wrapping past 2^64");
		o[0] = 0; l[0] = 10; o[1] = UINT64_MAX - 4; l[1] = 10;
		r.tail_len = file_tail(tail, o, l, 2);
		is_int(decode_raw(&r), PS_ECORRUPT, "a second extent wrapping past 2^64");
	}
	/* directories, symlinks, errors, devices */
	{
		uint8_t id[32];
		memset(id, 3, 32);
		r = base; r.type = PS_T_DIR; r.tail = id; r.tail_len = 32;
		is_int(decode_raw(&r), PS_OK, "a directory");
		r.tail_len = 31;
		is_int(decode_raw(&r), PS_ECORRUPT, "a directory with a short id");
		r = base; r.type = PS_T_SYMLINK; r.size = 3;
		tail[0] = 3; memcpy(tail + 1, "a/b", 3);
		r.tail = tail; r.tail_len = 4;
		is_int(decode_raw(&r), PS_OK, "a symlink");
		r.size = 4;
		is_int(decode_raw(&r), PS_ECORRUPT, "a symlink whose size is not its target length");
		r.size = 0; tail[0] = 0; r.tail_len = 1;
		is_int(decode_raw(&r), PS_ECORRUPT, "a symlink with an empty target");
		r.size = 3; tail[0] = 3; memcpy(tail + 1, "a\0b", 3); r.tail_len = 4;
		is_int(decode_raw(&r), PS_ECORRUPT, "a symlink target with a NUL");
		r.size = 10; tail[0] = 10; r.tail_len = 4;
		is_int(decode_raw(&r), PS_ECORRUPT, "a symlink target longer than the data");
		{
			struct ps_buf x = PS_BUF_INIT;
			static uint8_t big[65537];
			memset(big, 'l', sizeof(big));
			ps_buf_put_uvar(&x, sizeof(big));
			ps_buf_append(&x, big, sizeof(big));
			r.size = sizeof(big); r.tail = x.data; r.tail_len = x.len;
			is_int(decode_raw(&r), PS_ECORRUPT, "a symlink target over 64 KiB");
			ps_buf_release(&x);
		}
		r = base; r.type = PS_T_ERROR;
		tail[0] = 0; r.tail = tail; r.tail_len = 1;
		is_int(decode_raw(&r), PS_ECORRUPT, "an error entry with an empty message");
		tail[0] = 2; tail[1] = 'n'; tail[2] = 'o'; r.tail_len = 3;
		is_int(decode_raw(&r), PS_OK, "an error entry");
		r = base; r.type = PS_T_CHR; tail[0] = 0x81; tail[1] = 0x01; r.tail = tail; r.tail_len = 2;
		is_int(decode_raw(&r), PS_OK, "a character device");
		r.tail_len = 1;
		is_int(decode_raw(&r), PS_ECORRUPT, "a device with a truncated rdev");
		r = base; r.type = PS_T_SOCK; r.tail = tail; r.tail_len = 1;
		is_int(decode_raw(&r), PS_ECORRUPT, "a socket with a stray byte");
	}
	/* order and uniqueness */
	{
		struct ps_tentry e[2];
		struct ps_buf b = PS_BUF_INIT;
		struct ps_tree t;
		static const char *pairs[][2] = { { "b", "a" }, { "a", "a" }, { "ab", "a" }, { "\x80", "z" } };
		memset(e, 0, sizeof(e));
		e[0].type = e[1].type = PS_T_FIFO;
		for (size_t i = 0; i < PS_ARRAY_LEN(pairs); i++) {
			e[0].name = (const uint8_t *)pairs[i][0];
			e[0].name_len = strlen(pairs[i][0]);
			e[1].name = (const uint8_t *)pairs[i][1];
			e[1].name_len = strlen(pairs[i][1]);
			ps_buf_reset(&b);
			ps_tree_encode(e, 2, &b);
			is_int(decode_copy(b.data, b.len, &t), PS_ECORRUPT,
			       "entries '%s', '%s' (unsorted or duplicate): PS_ECORRUPT", pairs[i][0],
			       pairs[i][1][0] == 'z' ? "z" : pairs[i][1]);
		}
		e[0].name = (const uint8_t *)"a";
		e[0].name_len = 1;
		e[1].name = (const uint8_t *)"ab";
		e[1].name_len = 2;
		ps_buf_reset(&b);
		ps_tree_encode(e, 2, &b);
		is_int(decode_copy(b.data, b.len, &t), PS_OK, "'a' before 'ab' is sorted");
		ps_tree_release(&t);
		/* a huge entry count */
		ps_buf_reset(&b);
		ps_buf_append(&b, "PSTR\x01", 5);
		ps_buf_put_uvar(&b, UINT64_MAX);
		is_int(decode_copy(b.data, b.len, &t), PS_ECORRUPT, "an entry count of 2^64-1");
		ps_buf_release(&b);
	}
}

/* ------------------------------------------------------------ refs */

static void fill_info(struct ps_snapshot_info *si)
{
	memset(si, 0, sizeof(*si));
	snprintf(si->project, sizeof(si->project), "my-proj_1.0");
	snprintf(si->name, sizeof(si->name), "2026-11-25T09:45:12.123456Z-1a2b3c4d");
	si->time_ns = 1795513512123456789LL;
	for (int i = 0; i < 32; i++)
		si->root[i] = (uint8_t)(i * 7 + 1);
	snprintf(si->parent, sizeof(si->parent), "2026-11-24T08:00:00.000001Z-deadbeef");
	snprintf(si->origin, sizeof(si->origin), "host.example.com");
	si->files = 12345;
	si->dirs = 67;
	si->others = 8;
	si->logical_bytes = UINT64_MAX;
	si->apparent_bytes = 1ULL << 40;
	si->new_objects = 99;
	si->new_raw_bytes = 100000;
	si->new_bytes = 50000;
	si->errors = 2;
	si->quota_bytes = 1ULL << 30;
	si->over_quota = 1;
	si->duration_ms = 1234;
	si->root_mode = 02755;
	si->root_uid = 1000;
	si->root_gid = 4294967295u;
	si->root_mtime_sec = -100;
	si->root_mtime_nsec = 999999999;
}

static int info_equal(const struct ps_snapshot_info *a, const struct ps_snapshot_info *b)
{
	return !strcmp(a->project, b->project) && !strcmp(a->name, b->name) && a->time_ns == b->time_ns &&
	       !memcmp(a->root, b->root, 32) && !strcmp(a->parent, b->parent) &&
	       !strcmp(a->origin, b->origin) && a->files == b->files && a->dirs == b->dirs &&
	       a->others == b->others && a->logical_bytes == b->logical_bytes &&
	       a->apparent_bytes == b->apparent_bytes && a->new_objects == b->new_objects &&
	       a->new_raw_bytes == b->new_raw_bytes && a->new_bytes == b->new_bytes &&
	       a->errors == b->errors && a->quota_bytes == b->quota_bytes &&
	       a->over_quota == b->over_quota && a->duration_ms == b->duration_ms &&
	       a->root_mode == b->root_mode && a->root_uid == b->root_uid &&
	       a->root_gid == b->root_gid && a->root_mtime_sec == b->root_mtime_sec &&
	       a->root_mtime_nsec == b->root_mtime_nsec;
}

/* body + "checksum <sha256(body)>\n" */
static char *with_checksum(const char *body)
{
	uint8_t sha[32];
	char hex[65];
	size_t n = strlen(body);
	char *out = malloc(n + 80);
	ps_sha256(body, n, sha);
	ps_hex_encode(sha, 32, hex);
	snprintf(out, n + 80, "%schecksum %s\n", body, hex);
	return out;
}

static const char REF_HEAD[] = "projstore-snapshot 1\nproject p\n"
			       "name 2026-11-25T09:45:12.123456Z-1a2b3c4d\ntime 5\n"
			       "root 0000000000000000000000000000000000000000000000000000000000000001\n";

static int decode_body(const char *body)
{
	struct ps_snapshot_info si;
	size_t used;
	char *t = with_checksum(body);
	int rc = ps_ref_decode(t, strlen(t), &si, &used, &E);
	free(t);
	return rc;
}

static void test_refs(void)
{
	struct ps_snapshot_info si, out;
	struct ps_buf b = PS_BUF_INIT;
	size_t used = 0;

	fill_info(&si);
	is_int(ps_ref_encode(&si, &b), 0, "encode a snapshot ref");
	ok(b.len > 100 && !memcmp(b.data, "projstore-snapshot 1\n", 21), "ref text starts with its header");
	ok(b.data[b.len - 1] == '\n' && strstr((char *)b.data, "\nchecksum "), "ends with a checksum line");
	is_int(ps_ref_decode((char *)b.data, b.len, &out, &used, &E), PS_OK, "decode it");
	is_int(used, b.len, "all bytes used");
	ok(info_equal(&si, &out), "every field round trips");
	/* no parent, odd origin */
	si.parent[0] = 0;
	snprintf(si.origin, sizeof(si.origin), "my host!/\\x");
	ps_buf_reset(&b);
	ps_ref_encode(&si, &b);
	is_int(ps_ref_decode((char *)b.data, b.len, &out, &used, &E), PS_OK, "a ref without parent");
	is_str(out.parent, "", "empty parent round trips (written as '-')");
	is_str(out.origin, "my_host___x", "origin characters outside [A-Za-z0-9._-] become '_'");
	si.origin[0] = 0;
	ps_buf_reset(&b);
	ps_ref_encode(&si, &b);
	ps_ref_decode((char *)b.data, b.len, &out, &used, &E);
	is_str(out.origin, "unknown", "an empty origin is written as 'unknown'");
	/* two refs in a row (the list file) */
	{
		size_t first;
		fill_info(&si);
		ps_buf_reset(&b);
		ps_ref_encode(&si, &b);
		first = b.len;
		si.files = 1;
		snprintf(si.name, sizeof(si.name), "2026-11-25T09:45:13.000000Z-00000001");
		ps_ref_encode(&si, &b);
		is_int(ps_ref_decode((char *)b.data, b.len, &out, &used, &E), PS_OK, "first of two refs");
		is_int(used, first, "stops after the first checksum line");
		is_int(ps_ref_decode((char *)b.data + used, b.len - used, &out, &used, &E), PS_OK,
		       "second of two refs");
		ok(out.files == 1 && !strcmp(out.name, si.name), "second ref's fields");
	}
	/* every single-byte change before the checksum line is caught */
	{
		int all = 1;
		size_t sum_at;
		fill_info(&si);
		ps_buf_reset(&b);
		ps_ref_encode(&si, &b);
		sum_at = (size_t)(strstr((char *)b.data, "\nchecksum ") - (char *)b.data) + 1;
		for (size_t i = 0; i < b.len; i++) {
			int rc;
			uint8_t c = b.data[i];
			b.data[i] = c == 'x' ? 'y' : (c == '\n' ? 'n' : 'x');
			rc = ps_ref_decode((char *)b.data, b.len, &out, &used, &E);
			b.data[i] = c;
			if (rc != PS_ECORRUPT) {
				diag("change at %zu (%s): rc %d", i, i < sum_at ? "body" : "checksum line", rc);
				all = 0;
			}
		}
		ok(all, "each of %zu single-character changes: PS_ECORRUPT", b.len);
		/* a value changed consistently with its checksum is accepted */
	}
	/* every truncation */
	{
		int all = 1;
		for (size_t l = 0; l < b.len; l++)
			if (ps_ref_decode((char *)b.data, l, &out, &used, &E) != PS_ECORRUPT)
				all = 0;
		ok(all, "every truncation: PS_ECORRUPT");
		is_int(ps_ref_decode("", 0, &out, &used, &E), PS_ECORRUPT, "the empty ref");
	}
	/* with valid checksums, malformed content */
	{
		char body[2048];
		snprintf(body, sizeof(body), "%s", REF_HEAD);
		is_int(decode_body(body), PS_OK, "a minimal ref (project, name, time, root)");
		snprintf(body, sizeof(body), "%sfuture-field anything\nfiles 3\n", REF_HEAD);
		is_int(decode_body(body), PS_OK, "unknown keys are ignored");
		is_int(decode_body("projstore-snapshot 1\nproject p\ntime 5\n"
				   "root 0000000000000000000000000000000000000000000000000000000000000001\n"),
		       PS_ECORRUPT, "no name: PS_ECORRUPT");
		is_int(decode_body("projstore-snapshot 1\nproject p\n"
				   "name 2026-11-25T09:45:12.123456Z-1a2b3c4d\ntime 5\n"),
		       PS_ECORRUPT, "no root: PS_ECORRUPT");
		is_int(decode_body("projstore-snapshot 2\nproject p\n"), PS_ECORRUPT, "version 2");
		is_int(decode_body("project p\nprojstore-snapshot 1\n"), PS_ECORRUPT, "header not first");
		snprintf(body, sizeof(body), "%sproject Bad/Id\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "an invalid project id");
		snprintf(body, sizeof(body), "%sname 2026-11-25\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "an invalid name");
		snprintf(body, sizeof(body), "%sparent nope\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "an invalid parent");
		snprintf(body, sizeof(body), "%sroot 00\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "a short root");
		snprintf(body, sizeof(body),
			 "%sroot 000000000000000000000000000000000000000000000000000000000000000G\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "a root with a non-hex digit");
		snprintf(body, sizeof(body), "%stime -5\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "a negative time");
		snprintf(body, sizeof(body), "%stime 9223372036854775808\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "a time beyond INT64_MAX");
		snprintf(body, sizeof(body), "%sfiles 18446744073709551616\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "a count beyond 2^64-1");
		snprintf(body, sizeof(body), "%sfiles 12x\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "a count with junk");
		snprintf(body, sizeof(body), "%sfiles \n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "an empty count");
		snprintf(body, sizeof(body), "%sroot-meta 17777 0 0 0 0\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "root-meta with mode beyond 07777");
		snprintf(body, sizeof(body), "%sroot-meta 755 0 0 0 1000000000\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "root-meta with nanoseconds 10^9");
		snprintf(body, sizeof(body), "%sroot-meta 755 0 0\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "root-meta with missing fields");
		snprintf(body, sizeof(body), "%snoval\n", REF_HEAD);
		is_int(decode_body(body), PS_ECORRUPT, "a line without a value");
		{
			char longl[700];
			memset(longl, 'v', sizeof(longl));
			memcpy(longl, "origin ", 7);
			longl[sizeof(longl) - 2] = '\n';
			longl[sizeof(longl) - 1] = 0;
			snprintf(body, sizeof(body), "%s%s", REF_HEAD, longl);
			is_int(decode_body(body), PS_ECORRUPT, "a line of 700 bytes");
		}
		{
			char *t = with_checksum(REF_HEAD);
			size_t l = strlen(t);
			t[30] = 0;          /* a NUL inside a line */
			is_int(ps_ref_decode(t, l, &out, &used, &E), PS_ECORRUPT, "a NUL byte");
			free(t);
		}
		is_int(ps_ref_decode(REF_HEAD, strlen(REF_HEAD), &out, &used, &E), PS_ECORRUPT,
		       "no checksum line: PS_ECORRUPT");
		snprintf(body, sizeof(body), "%schecksum 00\n", REF_HEAD);
		is_int(ps_ref_decode(body, strlen(body), &out, &used, &E), PS_ECORRUPT,
		       "a short checksum: PS_ECORRUPT");
	}
	ps_buf_release(&b);
}

static void test_names(void)
{
	char a[PS_SNAPNAME_MAX], b[PS_SNAPNAME_MAX];
	const int64_t t = 1764064312123456789LL;
	ps_snapshot_name(t, a, sizeof(a));
	ps_snapshot_name(t, b, sizeof(b));
	is_int(strlen(a), 36, "a snapshot name has 36 characters: %s", a);
	ok(!strncmp(a, "2025-11-25T09:51:52.123456Z-", 28), "it starts with the UTC time in microseconds");
	ok(strspn(a + 28, "0123456789abcdef") == 8, "and ends with 8 hex digits");
	ok(ps_snapshot_name_valid(a), "ps_snapshot_name_valid accepts it");
	ok(strcmp(a, b) != 0, "two names for the same time differ (random tag)");
	ok(ps_snapshot_name_valid("2026-11-25T09:45:12.123456Z-1a2b3c4d"), "the documented example");
	{
		static const char *bad[] = { "", "2026-11-25T09:45:12.123456Z-1a2b3c4", "2026-11-25T09:45:12.123456Z-1a2b3c4d0",
			"2026-11-25T09:45:12.123456Z-1A2B3C4D", "2026-11-25 09:45:12.123456Z-1a2b3c4d",
			"2026-11-25T09:45:12.123456-1a2b3c4d", "2026-11-25T09:45:12.12345Z-1a2b3c4d",
			"x026-11-25T09:45:12.123456Z-1a2b3c4d", "2026-11-25T09:45:12.123456Z-1a2b3c4g",
			"latest", "../../etc/passwd" };
		int all = 1;
		for (size_t i = 0; i < PS_ARRAY_LEN(bad); i++)
			if (ps_snapshot_name_valid(bad[i]))
				all = 0;
		ok(all, "malformed names are rejected");
	}
	ps_snapshot_name(0, a, sizeof(a));
	ok(!strncmp(a, "1970-01-01T00:00:00.000000Z-", 28) && ps_snapshot_name_valid(a), "time 0");
}

/* ------------------------------------------------------------ save/restore */

struct tree_stats {
	int files, dirs, others;
};

static void mkfile(const char *root, const char *rel, const void *data, size_t n, mode_t mode)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	if (th_write_file(p, data, n) || chmod(p, mode))
		bail_out("cannot create a fixture file");
}

static void set_mtime(const char *root, const char *rel, long sec, long nsec)
{
	char p[4200];
	struct timespec ts[2] = { { sec, nsec }, { sec, nsec } };
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
}

static int have_xattrs;

/* A small tree of every kind of entry. */
static void build_tree(const char *root, struct tree_stats *st)
{
	char p[4200];
	uint8_t *big = malloc(3u << 20);
	char text[20000];
	int fd;

	th_fill_random(big, 3u << 20, 99);
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "projstore keeps versions\n"[i % 25];
	mkfile(root, "a.txt", "hello\n", 6, 0644);
	mkfile(root, "empty", "", 0, 0644);
	mkfile(root, "big.bin", big, 3u << 20, 0644);
	mkfile(root, "text.log", text, sizeof(text), 0640);
	mkfile(root, "private", "secret", 6, 0600);
	mkfile(root, "setuid", "#!/bin/sh\n", 10, 04755);
	mkfile(root, "we ird\nname\xff", "odd", 3, 0644);
	snprintf(p, sizeof(p), "%s/sub", root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/sub/deeper", root);
	mkdir(p, 0750);
	mkfile(root, "sub/deeper/f", text, 100, 0644);
	snprintf(p, sizeof(p), "%s/emptydir", root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/locked", root);
	mkdir(p, 0755);
	mkfile(root, "locked/inner", "in", 2, 0644);
	snprintf(p, sizeof(p), "%s/link", root);
	if (symlink("a.txt", p))
		bail_out("symlink");
	snprintf(p, sizeof(p), "%s/sub/dangling", root);
	if (symlink("../nowhere/x", p))
		bail_out("symlink");
	{
		char a[4200];
		snprintf(a, sizeof(a), "%s/text.log", root);
		snprintf(p, sizeof(p), "%s/sub/hard", root);
		if (link(a, p))
			bail_out("link");
		snprintf(p, sizeof(p), "%s/hard2", root);
		if (link(a, p))
			bail_out("link");
	}
	/* sparse: a hole at the start, 10 KB of data at 1 MiB, a hole to 4 MiB, 5 bytes at the end */
	snprintf(p, sizeof(p), "%s/sparse", root);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 4u << 20) || pwrite(fd, big, 10000, 1u << 20) != 10000 ||
	    pwrite(fd, "tail!", 5, (4u << 20) - 5) != 5)
		bail_out("sparse file");
	close(fd);
	snprintf(p, sizeof(p), "%s/pipe", root);
	if (mkfifo(p, 0620))
		bail_out("mkfifo");
	snprintf(p, sizeof(p), "%s/a.txt", root);
	have_xattrs = !setxattr(p, "user.note", "v1", 2, 0) && !setxattr(p, "user.empty", "", 0, 0);
	snprintf(p, sizeof(p), "%s/sub", root);
	if (have_xattrs)
		setxattr(p, "user.dir", "d", 1, 0);
	set_mtime(root, "a.txt", 1700000000, 123456789);
	set_mtime(root, "big.bin", 86400, 1);
	set_mtime(root, "link", 1600000000, 999999999);
	set_mtime(root, "sub/deeper/f", 2200000000L, 500);
	set_mtime(root, "sub/deeper", 1500000000, 42);
	set_mtime(root, "sub", 1400000000, 7);
	set_mtime(root, "emptydir", 1300000000, 0);
	snprintf(p, sizeof(p), "%s/locked", root);
	chmod(p, 0500);                  /* read-only directory */
	set_mtime(root, "locked", 1200000000, 1);
	st->files = 12;   /* a.txt empty big.bin text.log private setuid weird f inner hard hard2 sparse */
	st->dirs = 5;     /* the root, sub, sub/deeper, emptydir, locked */
	st->others = 3;   /* link, dangling, pipe */
	free(big);
}

struct cmp_ctx {
	int diffs;
	int checked;
	/* inode pairing for hardlinks */
	ino_t src_ino[64], dst_ino[64];
	int ninos;
};

static void cmp_fail(struct cmp_ctx *c, const char *rel, const char *what)
{
	if (c->diffs++ < 10)
		diag("differs: '%s': %s", rel, what);
}

static int list_sorted(const char *dir, char names[][256], int max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)) && n < max) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(names[n++], 256, "%s", de->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
	return n;
}

static void cmp_entry(struct cmp_ctx *c, const char *a, const char *b, const char *rel, int is_root);

static void cmp_dir(struct cmp_ctx *c, const char *a, const char *b, const char *rel)
{
	static char na[64][256], nb[64][256];
	char (*la)[256] = malloc(64 * 256), (*lb)[256] = malloc(64 * 256);
	int n1 = list_sorted(a, la, 64), n2 = list_sorted(b, lb, 64);
	(void)na;
	(void)nb;
	if (n1 != n2) {
		cmp_fail(c, rel, "different number of entries");
	} else {
		for (int i = 0; i < n1; i++) {
			char pa[4200], pb[4200], r[4200];
			if (strcmp(la[i], lb[i])) {
				cmp_fail(c, rel, "different names");
				continue;
			}
			snprintf(pa, sizeof(pa), "%s/%s", a, la[i]);
			snprintf(pb, sizeof(pb), "%s/%s", b, lb[i]);
			snprintf(r, sizeof(r), "%s%s%s", rel, rel[0] ? "/" : "", la[i]);
			cmp_entry(c, pa, pb, r, 0);
		}
	}
	free(la);
	free(lb);
}

static void cmp_xattrs(struct cmp_ctx *c, const char *a, const char *b, const char *rel)
{
	char la[1024], lb[1024];
	ssize_t na = llistxattr(a, la, sizeof(la)), nb = llistxattr(b, lb, sizeof(lb));
	if (na < 0 || nb < 0)
		return;
	if (na != nb) {
		cmp_fail(c, rel, "different xattr lists");
		return;
	}
	for (char *k = la; k < la + na; k += strlen(k) + 1) {
		char va[256], vb[256];
		ssize_t x = lgetxattr(a, k, va, sizeof(va)), y = lgetxattr(b, k, vb, sizeof(vb));
		if (x != y || (x > 0 && memcmp(va, vb, (size_t)x)))
			cmp_fail(c, rel, "different xattr value");
	}
}

static void cmp_entry(struct cmp_ctx *c, const char *a, const char *b, const char *rel, int is_root)
{
	struct stat sa, sb;
	c->checked++;
	if (lstat(a, &sa) || lstat(b, &sb)) {
		cmp_fail(c, rel, "missing");
		return;
	}
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
		cmp_fail(c, rel, "type");
		return;
	}
	if ((sa.st_mode & 07777) != (sb.st_mode & 07777))
		cmp_fail(c, rel, "mode");
	if (sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid)
		cmp_fail(c, rel, "owner");
	if (!S_ISDIR(sa.st_mode) && sa.st_size != sb.st_size)
		cmp_fail(c, rel, "size");
	if (!is_root && (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec))
		cmp_fail(c, rel, "mtime");
	cmp_xattrs(c, a, b, rel);
	if (S_ISREG(sa.st_mode)) {
		size_t la, lb;
		uint8_t *da = th_read_file(a, &la), *db = th_read_file(b, &lb);
		if (!da || !db || la != lb || memcmp(da, db, la))
			cmp_fail(c, rel, "content");
		free(da);
		free(db);
		if (sa.st_nlink > 1) {
			int k;
			for (k = 0; k < c->ninos; k++)
				if (c->src_ino[k] == sa.st_ino)
					break;
			if (k < c->ninos) {
				if (c->dst_ino[k] != sb.st_ino)
					cmp_fail(c, rel, "hardlink not restored as a hardlink");
			} else if (c->ninos < 64) {
				c->src_ino[c->ninos] = sa.st_ino;
				c->dst_ino[c->ninos++] = sb.st_ino;
			}
		}
		if (sb.st_nlink != sa.st_nlink)
			cmp_fail(c, rel, "link count");
		if ((uint64_t)sa.st_blocks * 512 < (uint64_t)sa.st_size &&
		    (uint64_t)sb.st_blocks * 512 >= (uint64_t)sb.st_size)
			cmp_fail(c, rel, "holes were filled");
	} else if (S_ISLNK(sa.st_mode)) {
		char ta[4096], tb[4096];
		ssize_t x = readlink(a, ta, sizeof(ta)), y = readlink(b, tb, sizeof(tb));
		if (x != y || x < 0 || memcmp(ta, tb, (size_t)x))
			cmp_fail(c, rel, "symlink target");
	} else if (S_ISDIR(sa.st_mode)) {
		cmp_dir(c, a, b, rel);
	}
}

static int compare_trees(const char *a, const char *b)
{
	struct cmp_ctx c;
	memset(&c, 0, sizeof(c));
	cmp_entry(&c, a, b, "", 1);
	if (!c.diffs)
		diag("compared %d entries", c.checked);
	return c.diffs;
}

struct ls_ctx {
	int n;
	char names[64][64];
	int types[64];
	uint64_t sizes[64];
};

static int ls_cb(void *ctx, const struct ps_entry *e)
{
	struct ls_ctx *l = ctx;
	if (l->n < 64) {
		snprintf(l->names[l->n], 64, "%.*s", (int)e->name_len, e->name);
		l->types[l->n] = e->type;
		l->sizes[l->n] = e->size;
		l->n++;
	}
	return 0;
}

struct diff_ctx {
	int n;
	char lines[64][128];
};

static int diff_cb(void *ctx, int kind, const char *path, int type)
{
	struct diff_ctx *d = ctx;
	(void)type;
	if (d->n < 64)
		snprintf(d->lines[d->n++], 128, "%c %s", kind, path);
	return 0;
}

static int has_line(const struct diff_ctx *d, const char *line)
{
	for (int i = 0; i < d->n; i++)
		if (!strcmp(d->lines[i], line))
			return 1;
	return 0;
}

static void test_save_restore(void)
{
	const char *sdir = th_tmpdir("snapstore"), *src = th_tmpdir("src"), *cache = th_tmpdir("cache");
	char target[4200], target2[4200];
	struct ps_store *s = NULL;
	struct ps_save_opts so = PS_SAVE_OPTS_INIT;
	struct ps_restore_opts ro = PS_RESTORE_OPTS_INIT;
	struct ps_snapshot_info si, si2, si3, *list = NULL;
	struct tree_stats ts;
	size_t n = 0;

	build_tree(src, &ts);
	if (!have_xattrs)
		diag("user xattrs are not supported here: not compared");
	if (ps_store_init(sdir, NULL, &E))
		bail_out("init");
	is_int(ps_store_open(&s, sdir, &E), PS_OK, "open the store");
	so.cache_dir = cache;
	so.threads = 2;
	ro.cache_dir = cache;
	ro.threads = 2;
	is_int(ps_save(s, "proj", src, &so, &si, &E), PS_OK, "save a tree of every kind of entry");
	if (E.code)
		diag("save: %s", E.msg);
	is_int(si.files, ts.files, "files counted");
	is_int(si.dirs, ts.dirs, "directories counted (the root included)");
	is_int(si.others, ts.others, "symlinks and fifos counted");
	is_int(si.errors, 0, "no errors");
	is_int(si.apparent_bytes, 6 + (3u << 20) + 20000 + 6 + 10 + 3 + 100 + 2 + 20000 + 20000 + (4u << 20),
	       "apparent bytes: the sum of file sizes");
	ok(si.logical_bytes < si.apparent_bytes && si.logical_bytes >= 10005 + (3u << 20),
	   "logical bytes exclude the holes (%llu)", (unsigned long long)si.logical_bytes);
	ok(ps_snapshot_name_valid(si.name), "the snapshot has a valid name: %s", si.name);
	is_str(si.parent, "", "the first snapshot has no parent");
	ok(si.new_objects > 3, "new objects were stored (%llu)", (unsigned long long)si.new_objects);
	is_int(ps_snapshot_list(s, "proj", &list, &n, &E), PS_OK, "list snapshots");
	ok(n == 1 && !strcmp(list[0].name, si.name) && !memcmp(list[0].root, si.root, 32),
	   "one snapshot, the one just saved");
	free(list);
	list = NULL;

	snprintf(target, sizeof(target), "%s/restored", th_tmpdir(NULL));
	is_int(ps_restore(s, "proj", "latest", target, &ro, &E), PS_OK, "restore it");
	if (E.code)
		diag("restore: %s", E.msg);
	is_int(compare_trees(src, target), 0,
	       "restored tree equals the original: content, types, modes, owners, times, links, holes%s",
	       have_xattrs ? ", xattrs" : "");
	is_int(ps_restore(s, "proj", "latest", target, &ro, &E), PS_EEXISTS,
	       "restore into an existing non-empty directory: PS_EEXISTS");
	is_int(ps_restore(s, "proj", "nonexistent", target, &ro, &E), PS_ENOTFOUND,
	       "restore of an unknown snapshot: PS_ENOTFOUND");

	/* browsing */
	{
		struct ls_ctx l;
		memset(&l, 0, sizeof(l));
		is_int(ps_ls(s, "proj", si.name, "", ls_cb, &l, &E), PS_OK, "ls the root");
		is_int(l.n, 14, "14 root entries");
		ok(!strcmp(l.names[0], "a.txt") && l.types[0] == PS_T_REG && l.sizes[0] == 6,
		   "the first is a.txt, a 6-byte file");
		memset(&l, 0, sizeof(l));
		is_int(ps_ls(s, "proj", "latest", "sub/deeper", ls_cb, &l, &E), PS_OK, "ls a subdirectory");
		ok(l.n == 1 && !strcmp(l.names[0], "f"), "it holds f");
		is_int(ps_ls(s, "proj", "latest", "nope", ls_cb, &l, &E), PS_ENOTFOUND,
		       "ls of a missing path: PS_ENOTFOUND");
	}
	{
		char out[4200], in[4200];
		size_t la, lb;
		uint8_t *a, *b;
		int fd;
		snprintf(out, sizeof(out), "%s/cat.out", th_tmpdir(NULL));
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		is_int(ps_cat(s, "proj", "latest", "sparse", fd, &E), PS_OK, "cat the sparse file");
		close(fd);
		snprintf(in, sizeof(in), "%s/sparse", src);
		a = th_read_file(in, &la);
		b = th_read_file(out, &lb);
		ok(a && b && la == lb && !memcmp(a, b, la), "cat gives its bytes, holes as zeros");
		free(a);
		free(b);
		fd = open(out, O_WRONLY | O_TRUNC);
		is_int(ps_cat(s, "proj", "latest", "sub", fd, &E) != PS_OK, 1, "cat of a directory fails");
		close(fd);
	}

	/* an unchanged tree saves nothing new */
	is_int(ps_save(s, "proj", src, &so, &si2, &E), PS_OK, "save again, unchanged");
	is_mem(si2.root, si.root, 32, "the same root tree");
	is_str(si2.parent, si.name, "its parent is the first snapshot");
	is_int(si2.new_objects, 0, "no new objects");
	ps_store_free(s);
	s = NULL;
	ps_store_open(&s, sdir, &E);
	is_int(ps_save(s, "proj", src, &so, &si2, &E), PS_OK, "save again with a fresh store handle");
	is_int(si2.new_objects, 0, "no new objects");

	/* changes show up in diff */
	{
		char p[4200];
		struct diff_ctx d;
		snprintf(p, sizeof(p), "%s/a.txt", src);
		th_write_file(p, "hello, world\n", 13);
		snprintf(p, sizeof(p), "%s/empty", src);
		unlink(p);
		mkfile(src, "sub/new", "new", 3, 0644);
		is_int(ps_save(s, "proj", src, &so, &si3, &E), PS_OK, "save after changes");
		memset(&d, 0, sizeof(d));
		is_int(ps_diff(s, "proj", si.name, si3.name, diff_cb, &d, &E), PS_OK, "diff first and last");
		ok(has_line(&d, "M a.txt"), "a.txt modified");
		ok(has_line(&d, "D empty"), "empty removed");
		ok(has_line(&d, "A sub/new"), "sub/new added");
		ok(!has_line(&d, "M big.bin") && !has_line(&d, "M sparse"), "unchanged files not reported");
		diag("diff reported %d lines", d.n);
		snprintf(target2, sizeof(target2), "%s/restored2", th_tmpdir(NULL));
		is_int(ps_restore(s, "proj", si3.name, target2, &ro, &E), PS_OK, "restore the last snapshot");
		is_int(compare_trees(src, target2), 0, "it equals the changed tree");
	}
	/* the store checks clean, data included */
	{
		struct ps_check_opts co = PS_CHECK_OPTS_INIT;
		struct ps_check_result cr;
		co.read_data = 1;
		is_int(ps_check(s, &co, &cr, &E), PS_OK, "check --read-data");
		is_int(cr.problems, 0, "no problems");
		is_int(cr.snapshots, 4, "4 snapshots checked");
	}
	/* settings */
	{
		static const char *pats[] = { "*.o", "build/", "with\nnewline\\and backslash" };
		char **got = NULL;
		size_t ng = 0;
		uint64_t q = 1;
		is_int(ps_quota_get(s, "proj", &q, &E), PS_OK, "quota get");
		is_int(q, 0, "no quota by default");
		is_int(ps_quota_set(s, "proj", 5ULL << 30, &E), PS_OK, "quota set 5 GiB");
		ps_quota_get(s, "proj", &q, &E);
		ok(q == 5ULL << 30, "quota round trips");
		is_int(ps_excludes_set(s, "proj", pats, 3, &E), PS_OK, "excludes set");
		is_int(ps_excludes_get(s, "proj", &got, &ng, &E), PS_OK, "excludes get");
		ok(ng == 3 && !strcmp(got[0], pats[0]) && !strcmp(got[2], pats[2]),
		   "patterns with newline and backslash round trip");
		ps_strv_free(got, ng);
		ps_quota_get(s, "proj", &q, &E);
		ok(q == 5ULL << 30, "setting excludes keeps the quota");
		is_int(ps_quota_set(s, "Bad!", 1, &E), PS_EINVAL, "invalid project id: PS_EINVAL");
		{
			static const char *empty[] = { "" };
			is_int(ps_excludes_set(s, "proj", empty, 1, &E), PS_EINVAL, "an empty pattern: PS_EINVAL");
		}
	}
	{
		char **pv = NULL;
		size_t pn = 0;
		is_int(ps_project_list(s, &pv, &pn, &E), PS_OK, "project list");
		ok(pn == 1 && !strcmp(pv[0], "proj"), "one project");
		ps_strv_free(pv, pn);
	}
	is_int(ps_save(s, "Bad/Id", src, &so, &si, &E), PS_EINVAL, "save with an invalid project id");
	is_int(ps_save(s, "proj", "/nonexistent/dir", &so, &si, &E), PS_ERROR, "save of a missing directory");
	ps_store_free(s);
}

/* Saving an empty project directory's subdirectory, in a child process:
 * list_dir() once called qsort(NULL, 0, ...) for it, which UBSan aborts on. */
static void save_empty_dir(const char *base)
{
	char sdir[4200], src[4200], target[4200];
	struct ps_store *s = NULL;
	struct ps_save_opts so = PS_SAVE_OPTS_INIT;
	struct ps_restore_opts ro = PS_RESTORE_OPTS_INIT;
	struct ps_snapshot_info si;
	struct stat st;
	snprintf(sdir, sizeof(sdir), "%s/store", base);
	snprintf(src, sizeof(src), "%s/src", base);
	snprintf(target, sizeof(target), "%s/restored", base);
	mkdir(src, 0755);
	mkfile(src, "f", "x", 1, 0644);
	snprintf(sdir, sizeof(sdir), "%s/src/emptydir", base);
	mkdir(sdir, 0755);
	snprintf(sdir, sizeof(sdir), "%s/store", base);
	if (ps_store_init(sdir, NULL, &E))
		_exit(2);
	so.cache_dir = base;
	ro.no_cache = 1;
	if (ps_store_open(&s, sdir, &E) || ps_save(s, "proj", src, &so, &si, &E) || si.dirs != 2 ||
	    ps_restore(s, "proj", si.name, target, &ro, &E))
		_exit(3);
	snprintf(target, sizeof(target), "%s/restored/emptydir", base);
	if (stat(target, &st) || !S_ISDIR(st.st_mode))
		_exit(4);
	ps_store_free(s);
}

static void test_empty_dir(void)
{
	const char *base = th_tmpdir("emptydir");
	pid_t p;
	int st = 0;
	fflush(stdout);
	p = fork();
	if (p == 0) {
		save_empty_dir(base);
		_exit(0);
	}
	waitpid(p, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "save and restore of a tree with an empty directory");
}

/* Repeated saves with new data in one process must not grow the heap. */
static void test_save_leak(void)
{
#ifdef __SANITIZE_ADDRESS__
	skip(1, "ASan's allocator hides heap growth (LeakSanitizer checks leaks there)");
#else
	const char *sdir = th_tmpdir("leakstore"), *src = th_tmpdir("leaksrc");
	struct ps_store *s = NULL;
	struct ps_save_opts so = PS_SAVE_OPTS_INIT;
	struct ps_snapshot_info si;
	static uint8_t data[1u << 20];
	size_t before = 0, after = 0;
	int good = 1;
	so.cache_dir = th_tmpdir("leakcache");
	so.threads = 2;
	if (ps_store_init(sdir, NULL, &E))
		bail_out("init");
	ps_store_open(&s, sdir, &E);
	for (int i = 0; i < 6; i++) {
		th_fill_random(data, sizeof(data), (uint64_t)i + 31337);
		mkfile(src, "a", data, sizeof(data), 0644);
		th_fill_random(data, sizeof(data), (uint64_t)i + 41337);
		mkfile(src, "b", data, sizeof(data), 0644);
		if (ps_save(s, "proj", src, &so, &si, &E))
			good = 0;
		if (i == 0) {
			struct mallinfo2 m = mallinfo2();
			before = m.uordblks + m.hblkhd;
		}
	}
	{
		struct mallinfo2 m = mallinfo2();
		after = m.uordblks + m.hblkhd;
	}
	ps_store_free(s);
	ok(good, "6 saves of 2 MiB of new data each");
	/* the per-thread compression buffers of the workers once leaked */
	ok(after < before + (1u << 20), "5 more saves grow the heap by less than 1 MiB (grew %zu KiB)",
	   after > before ? (after - before) >> 10 : 0);
#endif
}

/* ------------------------------------------------------------ alloc failure */

struct sv_msg {
	int32_t round, what;  /* what: 1 save returned (then 64 + bits) */
};

static void sv_send(int fd, long round, int what)
{
	struct sv_msg m = { (int32_t)round, what };
	if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(99);
}

/* One save with the nfail-th allocation failing.  Result bits: 1 ps_save
 * returned something but PS_OK/PS_ERROR, 2 it succeeded but recorded entries
 * as unreadable, 4 it left the project lock behind. */
static void save_round(const char *sdir, const char *src, const char *cache, long nfail, int fd)
{
	struct ps_store *s = NULL;
	struct ps_save_opts so = PS_SAVE_OPTS_INIT;
	struct ps_snapshot_info si;
	struct ps_error e;
	char lock[4200];
	int rc, bits = 0;
	so.cache_dir = cache;
	so.threads = 1;
	ps_error_clear(&e);
	if (ps_store_open(&s, sdir, &e))
		_exit(98);
	ps_alloc_fail_after(nfail);
	rc = ps_save(s, "proj", src, &so, &si, &e);
	ps_alloc_fail_after(0);
	sv_send(fd, nfail, 1);
	if (rc != PS_OK && rc != PS_ERROR) {
		bits |= 1;
		if (getenv("PS_TEST_VERBOSE"))
			diag("allocation failure %ld: ps_save returned %d: %s", nfail, rc, e.msg);
	}
	if (rc == PS_OK && (si.files != 3 || si.others != 1 || si.errors)) {
		bits |= 2;
		if (getenv("PS_TEST_VERBOSE"))
			diag("allocation failure %ld: saved with %llu files, %llu errors", nfail,
			     (unsigned long long)si.files, (unsigned long long)si.errors);
	}
	ps_store_free(s);
	snprintf(lock, sizeof(lock), "%s/locks/proj.lock", sdir);
	if (access(lock, F_OK) == 0) {
		bits |= 4;
		unlink(lock);     /* keep the next rounds independent */
	}
	sv_send(fd, nfail, 64 + bits);
}

static void test_save_alloc_failure(void)
{
	const char *sdir = th_tmpdir("afstore"), *src = th_tmpdir("afsrc"), *cache = th_tmpdir("afcache");
	char p[4200];
	int crashes = 0, unclean = 0, soft = 0, locks = 0, done = 0;
	long next = 1, first_crash = 0, first_soft = 0, first_lock = 0;
	static const long last = 500;
#ifdef __SANITIZE_ADDRESS__
	const long dense = 2, sparse = 20;    /* ASan: every other early allocation */
#else
	const long dense = 1, sparse = 10;
#endif

	mkfile(src, "f1", "one", 3, 0644);
	mkfile(src, "f2", "two two", 7, 0644);
	snprintf(p, sizeof(p), "%s/d", src);
	mkdir(p, 0755);
	mkfile(src, "d/f3", "three", 5, 0644);
	snprintf(p, sizeof(p), "%s/d/l", src);
	if (symlink("../f1", p))
		bail_out("symlink");
	if (ps_store_init(sdir, NULL, &E))
		bail_out("init");
	/* rounds 1..100 (every early allocation: options, lock, index, settings,
	 * cache, threads), then every 10th up to 500 (the walk, the workers, the
	 * flush, the ref); under ASan every other one and every 20th, to stay
	 * within a few seconds.  One child runs them in turn, a new one carries
	 * on after a crash */
	while (next <= last) {
		int fds[2], st = 0, stage = 0;
		long cur = next;
		struct sv_msg m;
		pid_t pid;
		if (pipe(fds))
			bail_out("pipe");
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			for (long n = next; n <= last; n += n < 100 ? dense : sparse)
				save_round(sdir, src, cache, n, fds[1]);
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
			if (((m.what - 64) & 2) && !soft++)
				first_soft = m.round;
			if (((m.what - 64) & 4) && !locks++)
				first_lock = m.round;
		}
		close(fds[0]);
		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && stage >= 64)
			break;
		if (stage >= 64)
			cur += cur < 100 ? dense : sparse;
		if (!crashes++)
			first_crash = cur;
		if (getenv("PS_TEST_VERBOSE"))
			diag("allocation failure %ld: ps_save crashed (status 0x%x)", cur, st);
		{
			/* the crashed save's lock belongs to a dead process: it is broken
			 * by the next save; its temp files are cleaned the same way */
		}
		next = cur + (cur < 100 ? dense : sparse);
	}
	is_int(crashes, 0, "ps_save under allocation failures never crashes (first at %ld)", first_crash);
	is_int(unclean, 0, "it returns PS_OK or PS_ERROR");
	is_int(soft, 0, "a successful save holds the whole tree (first partial at %ld)", first_soft);
	is_int(locks, 0, "every save releases the project lock (first leak at %ld)", first_lock);
	diag("%d rounds completed, %d crashed", done, crashes);
	/* whatever failed saves left behind, the store is consistent */
	{
		struct ps_store *s = NULL;
		struct ps_save_opts so = PS_SAVE_OPTS_INIT;
		struct ps_restore_opts ro = PS_RESTORE_OPTS_INIT;
		struct ps_check_opts co = PS_CHECK_OPTS_INIT;
		struct ps_check_result cr;
		struct ps_snapshot_info si;
		char target[4200];
		so.cache_dir = cache;
		ro.no_cache = 1;
		co.read_data = 1;
		ps_store_open(&s, sdir, &E);
		is_int(ps_check(s, &co, &cr, &E), PS_OK, "check after the failed saves");
		is_int(cr.problems, 0, "no problems");
		is_int(ps_save(s, "proj", src, &so, &si, &E), PS_OK, "a clean save afterwards");
		snprintf(target, sizeof(target), "%s/afrestored", th_tmpdir(NULL));
		is_int(ps_restore(s, "proj", si.name, target, &ro, &E), PS_OK, "restore it");
		is_int(compare_trees(src, target), 0, "it equals the source");
		ps_store_free(s);
	}
}

/* skip_unchanged: an unchanged tree publishes nothing and says which
 * snapshot it equals; a change in a file or in the root's own metadata
 * publishes as usual. */
static void test_skip_unchanged(void)
{
	const char *sdir = th_tmpdir("skipstore"), *src = th_tmpdir("skipsrc"),
		   *cache = th_tmpdir("skipcache");
	struct ps_store *s = NULL;
	struct ps_save_opts so = PS_SAVE_OPTS_INIT;
	struct ps_snapshot_info a, b, c;
	struct ps_snapshot_info *list = NULL;
	size_t n = 0;

	mkfile(src, "f", "one", 3, 0644);
	set_mtime(src, ".", 1700000000, 5);
	if (ps_store_init(sdir, NULL, &E) || ps_store_open(&s, sdir, &E))
		bail_out("store");
	so.cache_dir = cache;
	so.threads = 1;
	so.skip_unchanged = 1;
	is_int(ps_save(s, "p", src, &so, &a, &E), PS_OK, "skip_unchanged: first save");
	is_int(a.unchanged, 0, "the first save of a project publishes");
	is_int(ps_save(s, "p", src, &so, &b, &E), PS_OK, "save again, nothing changed");
	ok(b.unchanged && !strcmp(b.name, a.name) && !memcmp(b.root, a.root, 32) && !b.new_objects,
	   "nothing changed: no snapshot, the result names the newest one");
	mkfile(src, "f", "two", 3, 0644);
	set_mtime(src, ".", 1700000000, 5);
	is_int(ps_save(s, "p", src, &so, &c, &E), PS_OK, "save after a file changed");
	ok(!c.unchanged && strcmp(c.name, a.name) && !strcmp(c.parent, a.name),
	   "a changed file publishes a new snapshot");
	set_mtime(src, ".", 1700000001, 5);
	is_int(ps_save(s, "p", src, &so, &b, &E), PS_OK, "save after the root's mtime changed");
	ok(!b.unchanged && !memcmp(b.root, c.root, 32), "the root's own metadata counts as a change");
	so.skip_unchanged = 0;
	is_int(ps_save(s, "p", src, &so, &c, &E), PS_OK, "without skip_unchanged");
	is_int(c.unchanged, 0, "an unchanged tree publishes as before");
	is_int(ps_snapshot_list(s, "p", &list, &n, &E), PS_OK, "list");
	is_int(n, 4, "four snapshots, none for the skipped save");
	free(list);
	ps_store_free(s);
}

int main(void)
{
	test_tree_roundtrip();
	test_tree_validation();
	test_refs();
	test_names();
	test_save_restore();
	test_empty_dir();
	test_save_leak();
	test_save_alloc_failure();
	test_skip_unchanged();
	return done_testing();
}
