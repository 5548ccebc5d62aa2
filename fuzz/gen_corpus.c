/*
 * gen_corpus.c - writes the seed inputs of the fuzz targets:
 *
 *   gen_corpus DIR      (DIR = fuzz/corpus; files DIR/<target>/seed-*)
 *
 * Every seed is a small valid input made with the library's own encoders (a
 * real store for packs, ps_segment_encode, ps_tree_encode, ps_ref_encode,
 * the file cache writer), prefixed with the target's control byte where the
 * target has one (see each fuzz_<target>.c).  Deterministic: the same
 * library writes the same seeds, except packs and caches, which hold the
 * random store id nowhere but are named by content anyway.
 */
#define _GNU_SOURCE
#include "snap/snap_int.h"
#include "hash/hash.h"
#include "repl/repl_proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *out_dir;

static void die(const char *what)
{
	fprintf(stderr, "gen_corpus: %s\n", what);
	exit(1);
}

static void put(const char *target, const char *name, int ctl, const void *data, size_t len)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/seed-%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (!f)
		die(path);
	if (ctl >= 0)
		fputc(ctl, f);
	if (len && fwrite(data, 1, len, f) != len)
		die("write");
	if (fclose(f))
		die("close");
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		die(path);
	b = malloc((size_t)n + 1);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
		die("read");
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* The first file under dir (recursively) whose name ends in suffix. */
static int find_suffix(const char *dir, const char *suffix, char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;
	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		char p[4096];
		struct stat st;
		size_t l = strlen(de->d_name), sl = strlen(suffix);
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (stat(p, &st))
			continue;
		if (S_ISDIR(st.st_mode))
			found = find_suffix(p, suffix, out, len);
		else if (l > sl && !strcmp(de->d_name + l - sl, suffix)) {
			snprintf(out, len, "%s", p);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	remove(p);
	return 0;
}

/* ------------------------------------------------------------ packs */

static void gen_packs(const char *tmp)
{
	char store[4096], pack[4096];
	struct ps_store *s = NULL;
	struct ps_error e;
	struct ps_compression zstd = { PS_CODEC_ZSTD, 3 }, lz4 = { PS_CODEC_LZ4, 0 }, none = { 0, 0 };
	char text[3000];
	uint8_t *p;
	size_t len;
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "pack of objects "[i % 16];
	snprintf(store, sizeof(store), "%s/store", tmp);
	if (ps_store_init(store, NULL, &e) || ps_store_open(&s, store, &e))
		die(e.msg);
	s->idx_loaded = 1;   /* a new store: nothing to load */
	if (ps_store_put(s, PS_OBJ_CHUNK, text, 1000, NULL, &zstd, NULL, NULL, &e) ||
	    ps_store_put(s, PS_OBJ_CHUNK, text + 5, 900, NULL, &lz4, NULL, NULL, &e) ||
	    ps_store_put(s, PS_OBJ_TREE, "PSTR\x01\x00", 6, NULL, &none, NULL, NULL, &e) ||
	    ps_store_put(s, PS_OBJ_CHUNK, "", 0, NULL, &zstd, NULL, NULL, &e) ||
	    ps_store_flush(s, &e))
		die(e.msg);
	ps_store_free(s);
	snprintf(store, sizeof(store), "%s/store/packs", tmp);
	if (!find_suffix(store, ".pack", pack, sizeof(pack)))
		die("no pack written");
	p = read_all(pack, &len);
	put("pack", "pack-4-objects", 0x00, p, len);
	put("pack", "pack-4-objects-fixsum", 0x01, p, len);
	/* the records on their own */
	{
		uint64_t off = PS_PACK_HDR_LEN;
		int i = 0;
		while (off + PS_PACK_REC_HDR_LEN <= len - PS_PACK_FOOTER_LEN) {
			uint32_t stored = ps_get_le32(p + off + 8);
			char name[64];
			if (off + PS_PACK_REC_HDR_LEN + stored > len - PS_PACK_FOOTER_LEN || p[off] > 2)
				break;
			snprintf(name, sizeof(name), "record-%d-codec%d", i, p[off + 1]);
			put("pack", name, 0x02, p + off, PS_PACK_REC_HDR_LEN + stored);
			if (i == 0) {
				uint8_t *m = malloc(PS_PACK_REC_HDR_LEN + stored);
				memcpy(m, p + off, PS_PACK_REC_HDR_LEN + stored);
				memset(m + 12, 0, 32);      /* wrong id: the target repairs it */
				put("pack", "record-fixsum", 0x03, m, PS_PACK_REC_HDR_LEN + stored);
				put("pack", "record-noid", 0x06, p + off, PS_PACK_REC_HDR_LEN + stored);
				free(m);
			}
			off += PS_PACK_REC_HDR_LEN + stored;
			i++;
		}
	}
	free(p);
	/* an empty pack: header and a trailer with no entries */
	{
		uint8_t e0[PS_PACK_HDR_LEN + PS_PACK_FOOTER_LEN] = { 0 };
		memcpy(e0, "PSPK", 4);
		ps_put_le32(e0 + 4, PS_FORMAT_VERSION);
		ps_put_le64(e0 + 16, PS_PACK_HDR_LEN);
		ps_put_le32(e0 + 24, 0);
		ps_put_le32(e0 + 28, PS_FORMAT_VERSION);
		ps_sha256(e0, sizeof(e0) - 40, e0 + 32);
		memcpy(e0 + 64, "PSPKEND", 8);
		put("pack", "pack-empty", 0x00, e0, sizeof(e0));
	}
}

/* ------------------------------------------------------------ segments */

static void gen_segments(void)
{
	uint8_t packs[2][32];
	struct ps_seg_entry ents[5];
	struct ps_buf b = PS_BUF_INIT;
	memset(packs[0], 0xa1, 32);
	memset(packs[1], 0xb2, 32);
	for (int i = 0; i < 5; i++) {
		memset(&ents[i], 0, sizeof(ents[i]));
		ps_sha256(&i, sizeof(i), ents[i].id);
		ents[i].pack = (uint32_t)(i % 2);
		ents[i].off = 16 + 100 * (uint32_t)i;
		ents[i].stored_len = 44 + 56;
		ents[i].raw_len = 200;
		ents[i].type = i == 4 ? PS_OBJ_TREE : PS_OBJ_CHUNK;
	}
	if (ps_segment_encode(packs, 2, ents, 5, &b))
		die("segment");
	put("segment", "2-packs-5-entries", 0x00, b.data, b.len);
	put("segment", "2-packs-5-entries-fixsum", 0x01, b.data, b.len);
	ps_buf_reset(&b);
	if (ps_segment_encode(packs, 0, ents, 0, &b))
		die("segment");
	put("segment", "empty", 0x00, b.data, b.len);
	ps_buf_reset(&b);
	ps_segment_encode(packs, 1, ents, 1, &b);
	put("segment", "1-pack-1-entry-fixsum", 0x01, b.data, b.len);
	ps_buf_release(&b);
}

/* ------------------------------------------------------------ trees */

static void gen_trees(void)
{
	struct ps_tentry e[9];
	struct ps_extent ext[3];
	struct ps_buf b = PS_BUF_INIT, x = PS_BUF_INIT;
	static const char *names[9] = { "blk", "chr", "dir", "err", "fifo", "file", "sock", "sym",
					"\xff odd\nname" };
	memset(e, 0, sizeof(e));
	memset(ext, 0, sizeof(ext));
	for (int i = 0; i < 9; i++) {
		e[i].name = (const uint8_t *)names[i];
		e[i].name_len = strlen(names[i]);
		e[i].mode = 0644;
		e[i].uid = 1000;
		e[i].gid = 1000;
		e[i].mtime_sec = 1764064312;
		e[i].mtime_nsec = 123456789;
	}
	e[0].type = PS_T_BLK;
	e[0].rdev = makedev(8, 1);
	e[1].type = PS_T_CHR;
	e[1].rdev = makedev(1, 3);
	e[2].type = PS_T_DIR;
	memset(e[2].subtree, 0x5d, 32);
	e[3].type = PS_T_ERROR;
	e[3].target = (const uint8_t *)"cannot open: Permission denied";
	e[3].target_len = strlen((const char *)e[3].target);
	e[4].type = PS_T_FIFO;
	e[5].type = PS_T_REG;
	e[5].size = 5000;
	e[5].link_group = 7;
	e[5].mode = 04755;
	e[5].mtime_sec = -5;
	ext[0].off = 0;
	ext[0].len = 100;
	ext[1].off = 100;
	ext[1].len = 50;
	ext[2].off = 4096;
	ext[2].len = 904;
	for (int k = 0; k < 3; k++)
		memset(ext[k].id, 0x10 + k, 32);
	e[5].extents = ext;
	e[5].nextents = 3;
	ps_buf_put_uvar(&x, 2);
	ps_buf_put_uvar(&x, 8);
	ps_buf_append(&x, "user.big", 8);
	ps_buf_put_uvar(&x, 3);
	ps_buf_append(&x, "a\0c", 3);
	ps_buf_put_uvar(&x, 9);
	ps_buf_append(&x, "user.note", 9);
	ps_buf_put_uvar(&x, 0);
	e[5].xattrs = x.data;
	e[5].xattrs_len = x.len;
	e[5].nxattrs = 2;
	e[6].type = PS_T_SOCK;
	e[7].type = PS_T_SYMLINK;
	e[7].target = (const uint8_t *)"../x";
	e[7].target_len = 4;
	e[7].size = 4;
	e[8].type = PS_T_REG;
	if (ps_tree_encode(e, 9, &b))
		die("tree");
	put("tree", "every-type", -1, b.data, b.len);
	ps_buf_reset(&b);
	ps_tree_encode(NULL, 0, &b);
	put("tree", "empty", -1, b.data, b.len);
	ps_buf_reset(&b);
	ps_tree_encode(&e[5], 1, &b);
	put("tree", "one-file", -1, b.data, b.len);
	ps_buf_reset(&b);
	ps_tree_encode(&e[7], 2, &b);
	put("tree", "symlink-and-odd-name", -1, b.data, b.len);
	ps_buf_release(&b);
	ps_buf_release(&x);
}

/* ------------------------------------------------------------ refs */

static void gen_refs(void)
{
	struct ps_snapshot_info si;
	struct ps_buf b = PS_BUF_INIT;
	memset(&si, 0, sizeof(si));
	snprintf(si.project, sizeof(si.project), "my-proj_1.0");
	snprintf(si.name, sizeof(si.name), "2026-11-25T09:45:12.123456Z-1a2b3c4d");
	si.time_ns = 1795513512123456789LL;
	for (int i = 0; i < 32; i++)
		si.root[i] = (uint8_t)(i * 7 + 1);
	snprintf(si.parent, sizeof(si.parent), "2026-11-24T08:00:00.000001Z-deadbeef");
	snprintf(si.origin, sizeof(si.origin), "host.example.com");
	si.files = 12345;
	si.dirs = 67;
	si.others = 8;
	si.logical_bytes = 1ULL << 33;
	si.apparent_bytes = 1ULL << 34;
	si.new_objects = 99;
	si.new_raw_bytes = 100000;
	si.new_bytes = 50000;
	si.errors = 2;
	si.quota_bytes = 1ULL << 30;
	si.over_quota = 1;
	si.duration_ms = 1234;
	si.root_mode = 02755;
	si.root_uid = 1000;
	si.root_gid = 100;
	si.root_mtime_sec = 1764064312;
	si.root_mtime_nsec = 5;
	if (ps_ref_encode(&si, &b))
		die("ref");
	put("ref", "full", 0x00, b.data, b.len);
	put("ref", "full-fixsum", 0x01, b.data, b.len);
	{
		/* the body alone: the target appends the checksum line */
		const char *sum = strstr((const char *)b.data, "checksum ");
		put("ref", "body-fixsum", 0x01, b.data, (size_t)(sum - (const char *)b.data));
	}
	si.parent[0] = 0;
	si.files = 1;
	snprintf(si.name, sizeof(si.name), "2026-11-25T09:45:13.000000Z-00000001");
	ps_ref_encode(&si, &b);
	put("ref", "two-refs", 0x00, b.data, b.len);
	ps_buf_release(&b);
}

/* ------------------------------------------------------------ file cache */

static void gen_fcache(const char *tmp)
{
	char dir[4096], file[4096];
	struct ps_fcache *c = NULL;
	struct ps_fcache_ent e;
	struct ps_extent ext[2];
	struct stat st;
	struct ps_buf x = PS_BUF_INIT;
	uint8_t *p;
	size_t len;
	snprintf(dir, sizeof(dir), "%s/cache", tmp);
	if (ps_fcache_open(&c, dir, "store", "project", tmp, NULL) || !c)
		die("fcache open");
	memset(&st, 0, sizeof(st));
	st.st_dev = makedev(8, 1);
	st.st_ino = 1234;
	st.st_size = 300;
	st.st_mtim.tv_sec = 1764064312;
	st.st_mtim.tv_nsec = 5;
	st.st_ctim.tv_sec = 1764064313;
	memset(&e, 0, sizeof(e));
	memset(ext, 0, sizeof(ext));
	ext[0].off = 0;
	ext[0].len = 200;
	memset(ext[0].id, 1, 32);
	ext[1].off = 200;
	ext[1].len = 100;
	memset(ext[1].id, 2, 32);
	ps_buf_put_uvar(&x, 1);
	ps_buf_put_uvar(&x, 9);
	ps_buf_append(&x, "user.note", 9);
	ps_buf_put_uvar(&x, 2);
	ps_buf_append(&x, "v1", 2);
	e.path = (char *)"src/main.c";
	e.path_len = strlen(e.path);
	e.kind = PS_FC_FILE;
	e.extents = ext;
	e.nextents = 2;
	e.xattrs = x.data;
	e.xattrs_len = x.len;
	e.nxattrs = 1;
	ps_fcache_add(c, &e, &st);
	memset(&e, 0, sizeof(e));
	e.path = (char *)"src";
	e.path_len = 3;
	e.kind = PS_FC_DIR;
	memset(e.tree, 0x77, 32);
	st.st_ino = 1000;
	ps_fcache_add(c, &e, &st);
	e.path = (char *)"";
	e.path_len = 0;
	st.st_ino = 2;
	ps_fcache_add(c, &e, &st);
	memset(&e, 0, sizeof(e));
	e.path = (char *)"src/link";
	e.path_len = 8;
	e.kind = PS_FC_OTHER;
	e.target = (uint8_t *)"main.c";
	e.target_len = 6;
	st.st_ino = 1235;
	ps_fcache_add(c, &e, &st);
	e.path = (char *)"fifo";
	e.path_len = 4;
	e.target = NULL;
	e.target_len = 0;
	ps_fcache_add(c, &e, &st);
	if (ps_fcache_commit(c, NULL))
		die("fcache commit");
	ps_fcache_free(c);
	if (!find_suffix(dir, ".fcache", file, sizeof(file)))
		die("no cache written");
	p = read_all(file, &len);
	put("fcache", "5-entries", 0x00, p, len);
	put("fcache", "5-entries-fixsum", 0x01, p, len);
	free(p);
	/* an empty cache */
	{
		uint8_t e0[48 + 32] = { 0 };
		memcpy(e0, "PSFC", 4);
		ps_put_le32(e0 + 4, 2);
		ps_sha256(e0, 48, e0 + 48);
		put("fcache", "empty", 0x00, e0, sizeof(e0));
	}
	ps_buf_release(&x);
}

/* The sync protocol: streams of valid frames (fuzz_proto.c; control byte
 * 0x01: also read through a connection). */
static void proto_frame(struct ps_buf *b, int type, const struct ps_buf *body)
{
	size_t st;
	if (ps_frame_begin(b, type, &st) || (body->len && ps_buf_append(b, body->data, body->len)) ||
	    ps_frame_end(b, st))
		die("out of memory");
}

static void gen_proto(void)
{
	struct ps_buf req = PS_BUF_INIT, resp = PS_BUF_INIT, x = PS_BUF_INIT;
	uint8_t ids[3][32], rec[PS_PACK_REC_HDR_LEN + 5] = { PS_OBJ_CHUNK, 0 };
	static const char *names[] = { "2026-11-25T09:45:12.123456Z-1a2b3c4d",
				       "2026-11-25T10:00:03.654321Z-5e6f7a8b" };
	for (int i = 0; i < 3; i++)
		ps_sha256(&i, sizeof(i), ids[i]);
	/* an object record: "hello", stored raw */
	ps_put_le32(rec + 4, 5);
	ps_put_le32(rec + 8, 5);
	ps_sha256("hello", 5, rec + 12);
	memcpy(rec + PS_PACK_REC_HDR_LEN, "hello", 5);
	/* requests, in the order sync sends them */
	ps_buf_append(&x, PS_PROTO_MAGIC, 8); ps_buf_put_uvar(&x, 1); ps_buf_put_uvar(&x, 1);
	proto_frame(&req, PS_M_HELLO, &x); ps_buf_reset(&x);
	ps_buf_put_u8(&x, 0); ps_put_str(&x, "", 0); ps_buf_put_uvar(&x, 60000);
	proto_frame(&req, PS_M_LOCK, &x); ps_buf_reset(&x);
	proto_frame(&req, PS_M_PROJECTS, &x);
	ps_buf_put_u8(&x, 1); ps_put_str(&x, "proj", 4); ps_buf_put_uvar(&x, 60000);
	proto_frame(&req, PS_M_LOCK, &x); ps_buf_reset(&x);
	ps_put_str(&x, "proj", 4);
	proto_frame(&req, PS_M_SNAPSHOTS, &x); ps_buf_reset(&x);
	ps_put_ids(&x, ids[0], 3);
	proto_frame(&req, PS_M_HAS, &x); ps_buf_reset(&x);
	ps_put_ids(&x, ids[0], 2);
	proto_frame(&req, PS_M_GET, &x); ps_buf_reset(&x);
	ps_put_ids(&x, ids[1], 1);
	proto_frame(&req, PS_M_SIZES, &x); ps_buf_reset(&x);
	ps_buf_append(&x, rec, sizeof(rec));
	proto_frame(&req, PS_M_PUT, &x); ps_buf_reset(&x);
	proto_frame(&req, PS_M_BARRIER, &x);
	proto_frame(&req, PS_M_FLUSH, &x);
	ps_put_str(&x, "proj", 4); ps_buf_put_uvar(&x, 2);
	ps_put_str(&x, names[0], strlen(names[0])); ps_put_str(&x, names[1], strlen(names[1]));
	proto_frame(&req, PS_M_REFS, &x); ps_buf_reset(&x);
	ps_put_str(&x, "proj", 4); ps_put_str(&x, "projstore-snapshot 1\n", 21);
	proto_frame(&req, PS_M_PUBLISH, &x); ps_buf_reset(&x);
	ps_put_str(&x, "proj", 4);
	proto_frame(&req, PS_M_SETTINGS, &x); ps_buf_reset(&x);
	ps_put_str(&x, "proj", 4); ps_buf_put_u8(&x, 1); ps_put_str(&x, "quota 4294967296\n", 17);
	proto_frame(&req, PS_M_MERGE, &x); ps_buf_reset(&x);
	ps_buf_put_u8(&x, 1); ps_put_str(&x, "proj", 4);
	proto_frame(&req, PS_M_UNLOCK, &x); ps_buf_reset(&x);
	proto_frame(&req, PS_M_BYE, &x);
	put("proto", "requests", 0x00, req.data, req.len);
	put("proto", "requests-conn", 0x01, req.data, req.len);
	/* responses */
	ps_buf_append(&x, PS_PROTO_MAGIC, 8); ps_buf_put_uvar(&x, 1); ps_buf_put_uvar(&x, PS_PROTO_FRAME_MAX);
	ps_put_str(&x, "0123456789abcdef0123456789abcdef", 32);
	proto_frame(&resp, PS_R_HELLO, &x); ps_buf_reset(&x);
	proto_frame(&resp, PS_R_OK, &x);
	ps_buf_put_u8(&x, 0); ps_buf_put_uvar(&x, 2); ps_put_str(&x, "a", 1); ps_put_str(&x, "proj", 4);
	proto_frame(&resp, PS_R_NAMES, &x); ps_buf_reset(&x);
	ps_buf_put_u8(&x, 0); ps_buf_put_uvar(&x, 2); ps_buf_put_u8(&x, 1); ps_put_str(&x, "ref", 3);
	ps_buf_put_u8(&x, 0); ps_put_str(&x, "why", 3);
	proto_frame(&resp, PS_R_BLOBS, &x); ps_buf_reset(&x);
	ps_buf_put_uvar(&x, 3); ps_buf_put_u8(&x, 5);
	proto_frame(&resp, PS_R_HAVE, &x); ps_buf_reset(&x);
	ps_buf_put_u8(&x, PS_OBJ_OK); ps_buf_append(&x, rec + 12, 32); ps_buf_append(&x, rec, sizeof(rec));
	proto_frame(&resp, PS_R_OBJECT, &x); ps_buf_reset(&x);
	ps_buf_put_u8(&x, PS_OBJ_DAMAGED); ps_buf_append(&x, ids[1], 32); ps_put_str(&x, "bad", 3);
	proto_frame(&resp, PS_R_OBJECT, &x); ps_buf_reset(&x);
	ps_buf_put_uvar(&x, 1); ps_buf_put_uvar(&x, 49);
	proto_frame(&resp, PS_R_SIZES, &x); ps_buf_reset(&x);
	ps_buf_put_uvar(&x, 1); ps_buf_put_uvar(&x, 1); ps_buf_put_uvar(&x, 1);
	ps_buf_append(&x, ids[2], 32); ps_put_str(&x, "fails its checksum", 18);
	proto_frame(&resp, PS_R_BARRIER, &x); ps_buf_reset(&x);
	ps_buf_put_uvar(&x, 7); ps_buf_put_uvar(&x, 4096);
	proto_frame(&resp, PS_R_FLUSHED, &x); ps_buf_reset(&x);
	ps_buf_put_u8(&x, 1);
	proto_frame(&resp, PS_R_PUBLISHED, &x); ps_buf_reset(&x);
	ps_buf_put_u8(&x, 1); ps_put_str(&x, "quota 1\n", 8);
	proto_frame(&resp, PS_R_SETTINGS, &x); ps_buf_reset(&x);
	ps_buf_put_u8(&x, 1); ps_buf_put_uvar(&x, 1); ps_put_str(&x, "took quota", 10);
	proto_frame(&resp, PS_R_MERGED, &x); ps_buf_reset(&x);
	ps_buf_put_svar(&x, PS_ELOCKED); ps_put_str(&x, "locked", 6);
	proto_frame(&resp, PS_R_ERROR, &x); ps_buf_reset(&x);
	put("proto", "responses", 0x00, resp.data, resp.len);
	put("proto", "responses-conn", 0x01, resp.data, resp.len);
	/* after a valid HELLO (control bit 1): one PUT */
	put("proto", "put-after-hello", 0x03, req.data + 15, req.len - 15);
	ps_buf_release(&req);
	ps_buf_release(&resp);
	ps_buf_release(&x);
}

int main(int argc, char **argv)
{
	char tmp[] = "/tmp/gen_corpus.XXXXXX";
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	out_dir = argv[1];
	mkdir(out_dir, 0755);
	if (!mkdtemp(tmp))
		die("mkdtemp");
	gen_packs(tmp);
	gen_segments();
	gen_trees();
	gen_refs();
	gen_fcache(tmp);
	gen_proto();
	nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	printf("seeds written to %s\n", out_dir);
	return 0;
}
