/*
 * gc-gen.c - builds the store of the gc benchmark (bench/gc-large.sh).
 *
 * usage: gc-gen STORE NOBJECTS [PACK_BYTES [DIRS_PER_SEGMENT]]
 *
 * Puts NOBJECTS small unique chunk objects (64..191 bytes of pseudo-random
 * data, stored uncompressed since they do not shrink) into a new store, in
 * directories of 1000 one-chunk files, flushing an index segment every
 * DIRS_PER_SEGMENT (default 100) directories, and publishes two snapshots of project "gcbench":
 *
 *   1. (an hour ago) every directory;
 *   2. (now) all but the first tenth of the directories, and of the second
 *      tenth only every third file.
 *
 * Objects are written in directory order, so after `prune gcbench
 * --keep-last 1` the packs of the first tenth hold nothing reachable (gc
 * deletes them) and those of the second tenth are one third reachable (gc
 * repacks them).  PACK_BYTES (default the store's 16 MiB, at least 1 MiB)
 * is written to the store's config as its pack size.
 */
#define _GNU_SOURCE
#include "snap/snap_int.h"

#include <stdio.h>
#include <stdlib.h>

#define PER_DIR 1000

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int put_tree(struct ps_store *s, struct ps_tentry *ents, size_t n, uint8_t id[32],
		    struct ps_error *err)
{
	struct ps_buf b = PS_BUF_INIT;
	int rc;
	if (ps_tree_encode(ents, n, &b)) {
		ps_buf_release(&b);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	rc = ps_store_put(s, PS_OBJ_TREE, b.data, b.len, NULL, NULL, id, NULL, err);
	ps_buf_release(&b);
	return rc;
}

/* The tree of directory d with the files whose index i has keep(d, i). */
static int dir_tree(struct ps_store *s, uint8_t (*chunks)[32], const uint32_t *lens, size_t d,
		    size_t nobj, int every, uint8_t id[32], uint64_t *files, struct ps_error *err)
{
	static struct ps_tentry ents[PER_DIR];
	static struct ps_extent ext[PER_DIR];
	static char names[PER_DIR][16];
	size_t n = 0;
	for (size_t i = 0; i < PER_DIR && d * PER_DIR + i < nobj; i++) {
		size_t o = d * PER_DIR + i;
		if (i % (size_t)every)
			continue;
		memset(&ents[n], 0, sizeof(ents[n]));
		snprintf(names[n], sizeof(names[n]), "f%04zu", i);
		ents[n].name = (const uint8_t *)names[n];
		ents[n].name_len = strlen(names[n]);
		ents[n].type = PS_T_REG;
		ents[n].mode = 0644;
		ents[n].mtime_sec = 1700000000;
		ents[n].size = lens[o];
		ext[n].off = 0;
		ext[n].len = lens[o];
		memcpy(ext[n].id, chunks[o], 32);
		ents[n].extents = &ext[n];
		ents[n].nextents = 1;
		n++;
	}
	*files += n;
	return put_tree(s, ents, n, id, err);
}

static int snapshot(struct ps_store *s, uint8_t (*chunks)[32], const uint32_t *lens, size_t nobj,
		    int which, int64_t t, struct ps_error *err)
{
	size_t ndirs = (nobj + PER_DIR - 1) / PER_DIR, n = 0;
	struct ps_tentry *ents = calloc(ndirs + 1, sizeof(*ents));
	char (*names)[16] = calloc(ndirs + 1, 16);
	struct ps_snapshot_info si;
	uint64_t files = 0;
	int rc = PS_OK;
	if (!ents || !names)
		return ps_err(err, PS_ERROR, "out of memory");
	for (size_t d = 0; d < ndirs && !rc; d++) {
		int every = 1;
		if (which == 2 && d < ndirs / 10)
			continue;
		if (which == 2 && d < 2 * (ndirs / 10))
			every = 3;
		snprintf(names[n], 16, "d%06zu", d);
		ents[n].name = (const uint8_t *)names[n];
		ents[n].name_len = strlen(names[n]);
		ents[n].type = PS_T_DIR;
		ents[n].mode = 0755;
		ents[n].mtime_sec = 1700000000;
		rc = dir_tree(s, chunks, lens, d, nobj, every, ents[n].subtree, &files, err);
		n++;
	}
	memset(&si, 0, sizeof(si));
	if (!rc)
		rc = put_tree(s, ents, n, si.root, err);
	if (!rc)
		rc = ps_store_flush(s, err);
	if (!rc) {
		snprintf(si.project, sizeof(si.project), "gcbench");
		ps_snapshot_name(t, si.name, sizeof(si.name));
		si.time_ns = t;
		snprintf(si.origin, sizeof(si.origin), "gc-gen");
		si.files = files;
		si.dirs = n + 1;
		si.root_mode = 0755;
		rc = ps_ref_publish(s, &si, err);
	}
	free(ents);
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	struct ps_store *s = NULL;
	struct ps_error err;
	uint8_t (*chunks)[32];
	uint32_t *lens;
	size_t nobj;
	uint8_t buf[256];
	size_t seg_dirs = 100;
	int64_t now = ps_now_ns();
	int rc;
	if (argc < 3 || argc > 5 || (nobj = strtoull(argv[2], NULL, 10)) == 0) {
		fprintf(stderr, "usage: gc-gen STORE NOBJECTS [PACK_BYTES [DIRS_PER_SEGMENT]]\n");
		return 2;
	}
	ps_error_clear(&err);
	chunks = malloc(32 * nobj);
	lens = malloc(sizeof(*lens) * nobj);
	if (!chunks || !lens)
		return 1;
	rc = ps_store_init(argv[1], NULL, &err);
	if (argc == 5 && strtoull(argv[4], NULL, 10) > 0)
		seg_dirs = strtoull(argv[4], NULL, 10);
	if (!rc && argc >= 4) {
		/* the config is text: replace its pack-size line */
		char path[4096], line[256];
		struct ps_buf b = PS_BUF_INIT;
		FILE *f;
		snprintf(path, sizeof(path), "%s/config", argv[1]);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (strncmp(line, "pack-size ", 10))
				ps_buf_append(&b, line, strlen(line));
		if (f)
			fclose(f);
		ps_buf_printf(&b, "pack-size %s\n", argv[3]);
		if (ps_write_file_atomic(path, b.data, b.len, &err))
			rc = err.code;
		ps_buf_release(&b);
	}
	if (!rc)
		rc = ps_store_open(&s, argv[1], &err);
	if (!rc)
		rc = ps_store_load_index(s, &err);
	for (size_t i = 0; i < nobj && !rc; i++) {
		uint32_t len = 64 + (uint32_t)(next() % 128);
		for (size_t k = 0; k < len; k += 8) {
			uint64_t r = next();
			memcpy(buf + k, &r, 8);
		}
		memcpy(buf, &i, sizeof(i));   /* unique */
		lens[i] = len;
		rc = ps_store_put(s, PS_OBJ_CHUNK, buf, len, NULL, NULL, chunks[i], NULL, &err);
		if (!rc && (i + 1) % (seg_dirs * PER_DIR) == 0)
			rc = ps_store_flush(s, &err);
	}
	if (!rc)
		rc = ps_store_flush(s, &err);
	if (!rc)
		rc = snapshot(s, chunks, lens, nobj, 1, now - 3600LL * 1000000000LL, &err);
	if (!rc)
		rc = snapshot(s, chunks, lens, nobj, 2, now, &err);
	ps_store_free(s);
	free(chunks);
	free(lens);
	if (rc) {
		fprintf(stderr, "gc-gen: %s\n", err.msg);
		return 1;
	}
	printf("gc-gen: %zu objects in %s\n", nobj, argv[1]);
	return 0;
}
