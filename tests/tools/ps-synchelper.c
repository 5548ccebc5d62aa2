/*
 * ps-synchelper - helpers for the end-to-end tests of sync and repair.
 *
 *   ps-synchelper saves STORE PROJECT DIR N
 *       saves DIR as N snapshots of PROJECT in one process (the file
 *       DIR/.counter holds the snapshot's number, so each one differs by a
 *       few bytes): a history of 1,000 snapshots in seconds, not minutes of
 *       process start-ups.
 *   ps-synchelper history STORE PROJECT N
 *       writes a history of N snapshots of a small project directly (one
 *       pack, refs written without fsync: for tests only): a file that
 *       changes in every snapshot, a directory that changes every tenth,
 *       one that never does; times one minute apart, ending now; each
 *       snapshot's parent is the one before.  1,000 snapshots take a second.
 *   ps-synchelper flip STORE HEXID
 *       flips one bit in the stored bytes of object HEXID in its pack (as a
 *       failing disk would), and prints the pack's path.
 *   ps-synchelper chunk STORE PROJECT PATH
 *       prints the id of the first chunk of file PATH in PROJECT's latest
 *       snapshot (to flip it, or to find it in messages).
 *   ps-synchelper frames OUT KIND
 *       writes a hostile byte stream for serve-stdio's standard input: KIND
 *       is truncated, oversized, zero, garbage, badhello, badput, early.
 */
#define _GNU_SOURCE
#include "snap/snap_int.h"
#include "repl/repl_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int saves(const char *store, const char *project, const char *dir, long n)
{
	struct ps_store *s = NULL;
	struct ps_error err;
	char path[4096], cache[4096];
	int rc;
	ps_error_clear(&err);
	rc = ps_store_open(&s, store, &err);
	snprintf(path, sizeof(path), "%s/.counter", dir);
	snprintf(cache, sizeof(cache), "%s/.synchelper-cache", getenv("TRASH") ? getenv("TRASH") : "/tmp");
	for (long i = 0; i < n && !rc; i++) {
		struct ps_save_opts o = PS_SAVE_OPTS_INIT;
		struct ps_snapshot_info si;
		char num[32];
		int len = snprintf(num, sizeof(num), "%ld\n", i);
		if (ps_write_file_atomic(path, num, (size_t)len, &err)) {
			rc = 1;
			break;
		}
		o.threads = 1;
		o.cache_dir = cache;
		rc = ps_save(s, project, dir, &o, &si, &err);
	}
	if (rc)
		fprintf(stderr, "ps-synchelper: %s\n", err.msg);
	ps_store_free(s);
	return rc ? 1 : 0;
}

static int put_chunk(struct ps_store *s, const char *text, uint8_t id[32], struct ps_error *err)
{
	return ps_store_put(s, PS_OBJ_CHUNK, text, strlen(text), NULL, NULL, id, NULL, err);
}

static void file_ent(struct ps_tentry *e, const char *name, struct ps_extent *x, const char *text,
		     const uint8_t id[32])
{
	memset(e, 0, sizeof(*e));
	e->name = (const uint8_t *)name;
	e->name_len = strlen(name);
	e->type = PS_T_REG;
	e->mode = 0644;
	e->uid = e->gid = 1001;
	e->mtime_sec = 1764000000;
	e->size = strlen(text);
	x->off = 0;
	x->len = (uint32_t)strlen(text);
	memcpy(x->id, id, 32);
	e->extents = x;
	e->nextents = 1;
}

static void dir_ent(struct ps_tentry *e, const char *name, const uint8_t sub[32])
{
	memset(e, 0, sizeof(*e));
	e->name = (const uint8_t *)name;
	e->name_len = strlen(name);
	e->type = PS_T_DIR;
	e->mode = 0755;
	e->uid = e->gid = 1001;
	e->mtime_sec = 1764000000;
	memcpy(e->subtree, sub, 32);
}

static int put_tree(struct ps_store *s, const struct ps_tentry *e, size_t n, uint8_t id[32],
		    struct ps_error *err)
{
	struct ps_buf b = PS_BUF_INIT;
	int rc = ps_tree_encode(e, n, &b) ? ps_err(err, PS_ERROR, "out of memory")
					  : ps_store_put(s, PS_OBJ_TREE, b.data, b.len, NULL, NULL, id, NULL, err);
	ps_buf_release(&b);
	return rc;
}

static int history(const char *store, const char *project, long n)
{
	struct ps_store *s = NULL;
	struct ps_error err;
	struct ps_snapshot_info *v = NULL;
	struct ps_tentry ents[3];
	struct ps_extent xs[3];
	uint8_t data[32], logt[32], id[32], id2[32];
	char text[64], text2[64], path[8192];
	int64_t t0 = ps_now_ns() - (int64_t)n * 60 * 1000000000LL;
	size_t nv = 0;
	int rc;
	ps_error_clear(&err);
	rc = ps_store_open(&s, store, &err);
	if (!rc)
		rc = ps_store_load_index(s, &err);
	v = ps_calloc((size_t)n + 1, sizeof(*v));
	if (!rc && !v)
		rc = ps_err(&err, PS_ERROR, "out of memory");
	/* the directory that never changes */
	if (!rc)
		rc = put_chunk(s, "constant a\n", id, &err) || put_chunk(s, "constant b\n", id2, &err);
	if (!rc) {
		file_ent(&ents[0], "a.txt", &xs[0], "constant a\n", id);
		file_ent(&ents[1], "b.txt", &xs[1], "constant b\n", id2);
		rc = put_tree(s, ents, 2, data, &err);
	}
	for (long i = 0; i < n && !rc; i++) {
		struct ps_snapshot_info *si = &v[nv];
		if (i % 10 == 0) {
			snprintf(text2, sizeof(text2), "log %ld\n", i / 10);
			rc = put_chunk(s, text2, id2, &err);
			if (rc)
				break;
			file_ent(&ents[0], "log.txt", &xs[0], text2, id2);
			rc = put_tree(s, ents, 1, logt, &err);
			if (rc)
				break;
		}
		snprintf(text, sizeof(text), "snapshot %ld\n", i);
		rc = put_chunk(s, text, id, &err);
		if (rc)
			break;
		file_ent(&ents[0], "counter.txt", &xs[0], text, id);
		dir_ent(&ents[1], "data", data);
		dir_ent(&ents[2], "log", logt);
		rc = put_tree(s, ents, 3, si->root, &err);
		if (rc)
			break;
		snprintf(si->project, sizeof(si->project), "%s", project);
		si->time_ns = t0 + (int64_t)i * 60 * 1000000000LL;
		ps_snapshot_name(si->time_ns, si->name, sizeof(si->name));
		if (nv)
			snprintf(si->parent, sizeof(si->parent), "%s", v[nv - 1].name);
		snprintf(si->origin, sizeof(si->origin), "synchelper");
		si->files = 4;
		si->dirs = 3;
		si->logical_bytes = 22 + strlen(text) + strlen(text2);
		si->apparent_bytes = si->logical_bytes;
		si->root_mode = 0755;
		si->root_uid = si->root_gid = 1001;
		nv++;
	}
	if (!rc)
		rc = ps_store_flush(s, &err);
	snprintf(path, sizeof(path), "%s/projects/%s", store, project);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/projects/%s/snaps", store, project);
	mkdir(path, 0755);
	for (size_t i = 0; i < nv && !rc; i++) {
		struct ps_buf b = PS_BUF_INIT;
		FILE *f;
		snprintf(path, sizeof(path), "%s/projects/%s/snaps/%s.snap", store, project, v[i].name);
		if (ps_ref_encode(&v[i], &b) || !(f = fopen(path, "wbx")) ||
		    fwrite(b.data, 1, b.len, f) != b.len || fclose(f))
			rc = ps_err_sys(&err, "cannot write '%s'", path);
		ps_buf_release(&b);
	}
	if (!rc) {
		struct ps_snapshot_info *l = NULL;
		size_t nl = 0;
		rc = ps_snapshot_list(s, project, &l, &nl, &err);   /* writes the list */
		ps_free(l);
	}
	if (rc)
		fprintf(stderr, "ps-synchelper: %s\n", err.msg);
	ps_free(v);
	ps_store_free(s);
	return rc ? 1 : 0;
}

static int flip(const char *store, const char *hex)
{
	struct ps_store *s = NULL;
	struct ps_error err;
	struct ps_obj_info info;
	uint8_t id[32], b;
	char pack[4096], path[8192];
	int fd, rc;
	off_t off;
	ps_error_clear(&err);
	if (strlen(hex) != 64 || ps_hex_decode(hex, id, 32)) {
		fprintf(stderr, "ps-synchelper: invalid id '%s'\n", hex);
		return 2;
	}
	rc = ps_store_open(&s, store, &err);
	if (!rc)
		rc = ps_store_load_index(s, &err);
	if (rc) {
		fprintf(stderr, "ps-synchelper: %s\n", err.msg);
		ps_store_free(s);
		return 1;
	}
	if (!ps_store_locate(s, id, &info)) {
		fprintf(stderr, "ps-synchelper: object %s is not in the store\n", hex);
		ps_store_free(s);
		return 1;
	}
	ps_pack_path(info.pack_id, pack, sizeof(pack));
	snprintf(path, sizeof(path), "%s/%s", store, pack);
	ps_store_free(s);
	/* a byte in the middle of the stored bytes, after the record header */
	off = (off_t)info.offset + PS_PACK_REC_HDR_LEN +
	      (info.stored_len - PS_PACK_REC_HDR_LEN) / 2;
	fd = open(path, O_RDWR);
	if (fd < 0 || pread(fd, &b, 1, off) != 1) {
		fprintf(stderr, "ps-synchelper: %s: %s\n", path, strerror(errno));
		return 1;
	}
	b ^= 0x10;
	if (pwrite(fd, &b, 1, off) != 1 || close(fd)) {
		fprintf(stderr, "ps-synchelper: %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("%s\n", path);
	return 0;
}

static int chunk_of(const char *store, const char *project, const char *path)
{
	struct ps_store *s = NULL;
	struct ps_error err;
	struct ps_snapshot_info si;
	struct ps_tree t;
	long idx = -1;
	char hex[65];
	int rc;
	ps_error_clear(&err);
	rc = ps_store_open(&s, store, &err);
	if (!rc)
		rc = ps_resolve_root(s, project, "latest", &si, &err);
	if (!rc)
		rc = ps_tree_lookup(s, si.root, path, &t, &idx, &err);
	if (!rc) {
		if (idx < 0 || t.ents[idx].type != PS_T_REG || !t.ents[idx].nextents) {
			fprintf(stderr, "ps-synchelper: '%s' is not a file with data\n", path);
			rc = 1;
		} else {
			ps_hex_encode(t.ents[idx].extents[0].id, 32, hex);
			printf("%s\n", hex);
		}
		ps_tree_release(&t);
	} else {
		fprintf(stderr, "ps-synchelper: %s\n", err.msg);
	}
	ps_store_free(s);
	return rc ? 1 : 0;
}

static void frame(struct ps_buf *b, int type, const void *body, size_t len)
{
	size_t st;
	ps_frame_begin(b, type, &st);
	ps_buf_append(b, body, len);
	ps_frame_end(b, st);
}

static void hello(struct ps_buf *b)
{
	struct ps_buf body = PS_BUF_INIT;
	ps_buf_append(&body, PS_PROTO_MAGIC, 8);
	ps_buf_put_uvar(&body, 1);
	ps_buf_put_uvar(&body, 1);
	frame(b, PS_M_HELLO, body.data, body.len);
	ps_buf_release(&body);
}

static int frames(const char *out, const char *kind)
{
	struct ps_buf b = PS_BUF_INIT;
	FILE *f;
	if (!strcmp(kind, "early")) {
		/* a request before HELLO */
		frame(&b, PS_M_PROJECTS, NULL, 0);
	} else if (!strcmp(kind, "badhello")) {
		frame(&b, PS_M_HELLO, "NOTSYNC!\x01\x01", 10);
	} else {
		hello(&b);
		if (!strcmp(kind, "truncated")) {
			/* a frame that promises 100 bytes and brings 10 */
			ps_buf_put_u32(&b, 100);
			ps_buf_put_u8(&b, PS_M_PUT);
			ps_buf_append(&b, "123456789", 9);
		} else if (!strcmp(kind, "oversized")) {
			ps_buf_put_u32(&b, 0x7fffffffu);
			ps_buf_put_u8(&b, PS_M_PUT);
		} else if (!strcmp(kind, "zero")) {
			ps_buf_put_u32(&b, 0);
		} else if (!strcmp(kind, "garbage")) {
			frame(&b, 0x7e, "xyz", 3);
		} else if (!strcmp(kind, "badput")) {
			/* a record header whose stored length disagrees with the frame */
			uint8_t rec[PS_PACK_REC_HDR_LEN + 4] = { 1, 0 };
			ps_put_le32(rec + 4, 4);
			ps_put_le32(rec + 8, 400);
			frame(&b, PS_M_PUT, rec, sizeof(rec));
		} else {
			fprintf(stderr, "ps-synchelper: unknown kind '%s'\n", kind);
			return 2;
		}
	}
	f = fopen(out, "wb");
	if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f)) {
		fprintf(stderr, "ps-synchelper: cannot write '%s'\n", out);
		return 1;
	}
	ps_buf_release(&b);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "saves"))
		return saves(argv[2], argv[3], argv[4], strtol(argv[5], NULL, 10));
	if (argc == 5 && !strcmp(argv[1], "history"))
		return history(argv[2], argv[3], strtol(argv[4], NULL, 10));
	if (argc == 4 && !strcmp(argv[1], "flip"))
		return flip(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "chunk"))
		return chunk_of(argv[2], argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "frames"))
		return frames(argv[2], argv[3]);
	fprintf(stderr, "usage: ps-synchelper saves STORE PROJECT DIR N | history STORE PROJECT N | "
			"flip STORE HEXID | chunk STORE PROJECT PATH | "
			"frames OUT KIND\n");
	return 2;
}
