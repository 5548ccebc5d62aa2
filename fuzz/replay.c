/*
 * replay.c - feeds stored inputs to a fuzz target's LLVMFuzzerTestOneInput
 * without libFuzzer (any compiler; use it under ASan/UBSan to check).
 *
 *   replay_<target> DIR|FILE ...
 *
 * Every regular file of each directory (sorted by name, not recursive) and
 * every file named is run once.  Exit status 0 when all ran (a failing input
 * aborts, like under libFuzzer), 2 when an argument cannot be read.
 */
#define _GNU_SOURCE
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int run_file(const char *path, size_t *bytes)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* exactly the file's bytes: a heap block of that size, so an overread
	 * of even one byte is seen by ASan */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		abort();
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	LLVMFuzzerTestOneInput(buf, got);
	free(buf);
	*bytes += got;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, size_t *n, size_t *bytes)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t nn = 0, cap = 0;
	int rc = 0;
	if (!d) {
		fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (nn == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		names[nn++] = strdup(de->d_name);
	}
	closedir(d);
	if (nn)
		qsort(names, nn, sizeof(*names), cmp_names);
	for (size_t i = 0; i < nn; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (!stat(path, &st) && S_ISREG(st.st_mode)) {
			if (run_file(path, bytes))
				rc = -1;
			else
				(*n)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	size_t n = 0, bytes = 0;
	int rc = 0;
	struct timespec t0, t1;
	const char *name = strrchr(argv[0], '/');
	name = name ? name + 1 : argv[0];
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE ...\n", name);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st)) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			rc = 2;
		} else if (S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &n, &bytes))
				rc = 2;
		} else if (run_file(argv[i], &bytes)) {
			rc = 2;
		} else {
			n++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%s: %zu inputs, %zu bytes, %.3f s\n", name, n, bytes,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return rc;
}
