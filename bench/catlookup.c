/*
 * catlookup.c - the catalog's own cost of a location lookup and of a search,
 * without process start-up: opens the catalog once, then times N lookups of
 * random known projects (ps_cat_project_get, what `where` and the HTTP API
 * do) and M searches (ps_cat_project_list with a search text).
 *
 *   build/bench/catlookup CATALOG_SPEC [N [M [SEARCH]]]
 * Prints median, p90, p99 in microseconds.
 */
#define _GNU_SOURCE
#include "projstore_catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	printf("%-8s n=%d  median %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us\n", what, n, v[n / 2],
	       v[n * 9 / 10], v[n * 99 / 100], v[n - 1]);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: catlookup CATALOG [N [M [SEARCH]]]\n");
		return 2;
	}
	int n = argc > 2 ? atoi(argv[2]) : 5000, m = argc > 3 ? atoi(argv[3]) : 200;
	const char *search = argc > 4 ? argv[4] : "7f3";
	struct ps_catalog *cat;
	struct ps_error err;
	double t0 = now_us();
	if (ps_catalog_open(&cat, argv[1], NULL, &err) != PS_OK) {
		fprintf(stderr, "catlookup: %s\n", err.msg);
		return 1;
	}
	printf("open     %.1f us (%s)\n", now_us() - t0, ps_catalog_engine(cat));
	struct ps_cat_project *all;
	size_t total;
	struct ps_cat_query q = PS_CAT_QUERY_INIT;
	if (ps_cat_project_list(cat, &q, &all, &total, &err) != PS_OK || total == 0) {
		fprintf(stderr, "catlookup: no projects: %s\n", err.msg);
		return 1;
	}
	double *lat = calloc((size_t)(n > m ? n : m), sizeof(double));
	unsigned seed = 1;
	for (int i = 0; i < n; i++) {
		struct ps_cat_project p;
		const char *id = all[rand_r(&seed) % total].id;
		double a = now_us();
		if (ps_cat_project_get(cat, id, &p, &err) != PS_OK) {
			fprintf(stderr, "catlookup: %s\n", err.msg);
			return 1;
		}
		lat[i] = now_us() - a;
	}
	printf("projects %zu\n", total);
	report("get", lat, n);
	q.search = search;
	size_t hits = 0;
	for (int i = 0; i < m; i++) {
		struct ps_cat_project *v;
		double a = now_us();
		if (ps_cat_project_list(cat, &q, &v, &hits, &err) != PS_OK) {
			fprintf(stderr, "catlookup: %s\n", err.msg);
			return 1;
		}
		lat[i] = now_us() - a;
		free(v);
	}
	printf("search '%s': %zu hits\n", search, hits);
	report("search", lat, m);
	free(lat);
	free(all);
	ps_catalog_close(cat);
	return 0;
}
