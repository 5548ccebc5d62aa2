/*
 * bench/hash.c - per-core throughput of ps_sha256, ps_compress and
 * ps_decompress (zstd:1, zstd:3, lz4) on real data.
 *
 *   build/bench/hash [DIR] [MiB]
 *
 * Reads the regular files under DIR (default /var/tmp/projstore-bench/corpus)
 * in path order into memory, up to MiB (default 0 = everything), skipping
 * sparse files (allocated < half their size: their holes are one deduplicated
 * zero chunk in a store) and second links of hard-linked files.  Two chunk
 * mixes are measured on one thread:
 *   1 MiB blocks  - the concatenated data cut every 1 MiB
 *   store chunks  - each file cut by the store's default chunker, as a save
 *                   does (every file smaller than the minimum is one chunk)
 * env REPS (default 3): passes per measurement, the median is printed.
 */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chunk/chunk.h"
#include "compress/compress.h"
#include "hash/hash.h"

struct file { char *path; size_t size; };
static struct file *files;
static size_t nfiles, capfiles;
static struct { dev_t dev; ino_t ino; } *links;
static size_t nlinks, caplinks;
static size_t skipped_sparse, skipped_links;

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F || !S_ISREG(st->st_mode) || st->st_size == 0)
		return 0;
	if ((uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size / 2) {
		skipped_sparse++;
		return 0;
	}
	if (st->st_nlink > 1) {
		for (size_t i = 0; i < nlinks; i++)
			if (links[i].dev == st->st_dev && links[i].ino == st->st_ino) {
				skipped_links++;
				return 0;
			}
		if (nlinks == caplinks) {
			caplinks = caplinks ? 2 * caplinks : 256;
			links = realloc(links, caplinks * sizeof(*links));
			if (!links)
				return -1;
		}
		links[nlinks].dev = st->st_dev;
		links[nlinks++].ino = st->st_ino;
	}
	if (nfiles == capfiles) {
		capfiles = capfiles ? 2 * capfiles : 4096;
		files = realloc(files, capfiles * sizeof(*files));
		if (!files)
			return -1;
	}
	files[nfiles].path = strdup(path);
	files[nfiles++].size = (size_t)st->st_size;
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct file *)a)->path, ((const struct file *)b)->path);
}
static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct chunk { size_t off, len; };
struct mix { const char *name; struct chunk *c; size_t n; };

static uint8_t *data;
static size_t data_len;
static int reps = 3;

/* op: 0 sha256, 1 compress, 2 decompress (of what op 1 produced) */
static void run(const struct mix *m, int op, const struct ps_compression *comp, const char *label)
{
	size_t maxlen = 0, stored = 0, bytes = 0;
	uint8_t digest[32];
	uint8_t **out = NULL;
	size_t *outlen = NULL;
	int *codec = NULL;
	double *secs = calloc((size_t)reps, sizeof(double));

	for (size_t i = 0; i < m->n; i++) {
		bytes += m->c[i].len;
		if (m->c[i].len > maxlen)
			maxlen = m->c[i].len;
	}
	if (op >= 1) {
		out = calloc(m->n, sizeof(*out));
		outlen = calloc(m->n, sizeof(*outlen));
		codec = calloc(m->n, sizeof(*codec));
		if (!out || !outlen || !codec)
			exit(1);
	}
	uint8_t *tmp = malloc(ps_compress_bound(maxlen));
	if (!secs || !tmp)
		exit(1);
	for (int r = 0; r < reps; r++) {
		double t0 = now();
		stored = 0;
		for (size_t i = 0; i < m->n; i++) {
			const uint8_t *src = data + m->c[i].off;
			size_t len = m->c[i].len;
			if (op == 0) {
				if (ps_sha256(src, len, digest))
					exit(1);
			} else if (op == 1) {
				size_t k = ps_compress(comp, src, len, tmp, ps_compress_bound(maxlen), &codec[i]);
				if (!k && len)
					exit(1);
				stored += k;
				if (r == 0) {
					out[i] = malloc(k ? k : 1);
					memcpy(out[i], tmp, k);
					outlen[i] = k;
				}
			}
		}
		secs[r] = now() - t0;
	}
	if (op == 1) {
		/* decompression of what was just compressed */
		double *dsecs = calloc((size_t)reps, sizeof(double));
		for (int r = 0; r < reps; r++) {
			double t0 = now();
			for (size_t i = 0; i < m->n; i++)
				if (ps_decompress(codec[i], out[i], outlen[i], tmp, m->c[i].len)) {
					fprintf(stderr, "hash: decompress failed\n");
					exit(1);
				}
			dsecs[r] = now() - t0;
		}
		qsort(dsecs, (size_t)reps, sizeof(double), cmp_dbl);
		qsort(secs, (size_t)reps, sizeof(double), cmp_dbl);
		printf("  %-12s %-10s %9.1f MB/s   decompress %9.1f MB/s   ratio %5.3f (stored/raw)\n", m->name,
		       label, (double)bytes / secs[reps / 2] / 1e6, (double)bytes / dsecs[reps / 2] / 1e6,
		       (double)stored / (double)bytes);
		for (size_t i = 0; i < m->n; i++)
			free(out[i]);
		free(dsecs);
	} else {
		qsort(secs, (size_t)reps, sizeof(double), cmp_dbl);
		printf("  %-12s %-10s %9.1f MB/s\n", m->name, label, (double)bytes / secs[reps / 2] / 1e6);
	}
	free(out);
	free(outlen);
	free(codec);
	free(tmp);
	free(secs);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/var/tmp/projstore-bench/corpus";
	size_t cap = (argc > 2 ? strtoull(argv[2], NULL, 10) : 0) << 20;
	struct ps_chunker ch;
	struct mix blocks = { "1MiB blocks", NULL, 0 }, cdc = { "store chunks", NULL, 0 };
	size_t total = 0, capc;
	double t0;

	if (getenv("REPS"))
		reps = atoi(getenv("REPS"));
	if (reps < 1)
		reps = 1;
	if (nftw(dir, visit, 64, FTW_PHYS)) {
		fprintf(stderr, "hash: cannot walk %s\n", dir);
		return 1;
	}
	qsort(files, nfiles, sizeof(*files), cmp_file);
	for (size_t i = 0; i < nfiles; i++)
		total += files[i].size;
	if (cap && total > cap)
		total = cap;
	data = malloc(total ? total : 1);
	if (!data)
		return 1;
	if (ps_chunker_init(&ch, PS_CHUNK_MIN_DEFAULT, PS_CHUNK_AVG_DEFAULT, PS_CHUNK_MAX_DEFAULT))
		return 1;
	capc = total / PS_CHUNK_MIN_DEFAULT + nfiles + 16;
	cdc.c = malloc(capc * sizeof(*cdc.c));
	blocks.c = malloc((total / (1u << 20) + 2) * sizeof(*blocks.c));
	if (!cdc.c || !blocks.c)
		return 1;
	t0 = now();
	size_t used_files = 0;
	for (size_t i = 0; i < nfiles && data_len < total; i++) {
		int fd = open(files[i].path, O_RDONLY);
		size_t got = 0, want = files[i].size;
		if (fd < 0)
			continue;
		if (want > total - data_len)
			want = total - data_len;
		while (got < want) {
			ssize_t k = read(fd, data + data_len + got, want - got);
			if (k <= 0)
				break;
			got += (size_t)k;
		}
		close(fd);
		/* cut this file as a save would */
		for (size_t off = 0; off < got;) {
			size_t cut = ps_chunker_cut(&ch, data + data_len + off, got - off);
			cdc.c[cdc.n].off = data_len + off;
			cdc.c[cdc.n++].len = cut;
			off += cut;
		}
		data_len += got;
		used_files++;
	}
	for (size_t off = 0; off < data_len; off += 1u << 20) {
		blocks.c[blocks.n].off = off;
		blocks.c[blocks.n++].len = data_len - off < (1u << 20) ? data_len - off : 1u << 20;
	}
	printf("hash: %s: %zu files, %.1f MiB read in %.2f s (skipped %zu sparse files, %zu extra hard links)\n",
	       dir, used_files, (double)data_len / 1048576.0, now() - t0, skipped_sparse, skipped_links);
	printf("  1 thread, median of %d passes; 1MiB blocks: %zu chunks; store chunks: %zu chunks, avg %.1f KiB\n",
	       reps, blocks.n, cdc.n, cdc.n ? (double)data_len / (double)cdc.n / 1024.0 : 0.0);

	const struct mix *mixes[] = { &blocks, &cdc };
	for (int k = 0; k < 2; k++) {
		struct ps_compression z1 = { PS_CODEC_ZSTD, 1 }, z3 = { PS_CODEC_ZSTD, 3 }, l4 = { PS_CODEC_LZ4, 0 };
		run(mixes[k], 0, NULL, "sha256");
		run(mixes[k], 1, &z1, "zstd:1");
		run(mixes[k], 1, &z3, "zstd:3");
		run(mixes[k], 1, &l4, "lz4");
	}
	return 0;
}
