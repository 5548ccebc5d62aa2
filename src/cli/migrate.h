/*
 * migrate.h - projstore migrate's shared parts: the projects, the run's
 * settings, small helpers, the markers (migrate_import.c) and the worker's
 * entry point. Only cmd_migrate.c and migrate_import.c include it.
 */
#ifndef PS_MIGRATE_H
#define PS_MIGRATE_H
#include "cli.h"
#include "projstore_catalog.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MIG_MAX_DEPTH 4096          /* as the store's trees */
#define MIG_INFO_MAX (1 << 20)      /* largest info.json read */
#define MIG_SKIPPED_LIST 50         /* skipped entries listed per project */
#define MIG_LEASE_US (4LL * 3600 * 1000000) /* lease while importing */
#define MIG_MARKER_VERSION 2       /* 2: the digest is ps_stat_digest's */
#define MIG_BATCH_DEFAULT 16        /* saves per group commit */
#define MIG_BATCH_MS 2000           /* a batch older than this is committed */
#define MIG_BATCH_WAIT_MS 100       /* a batch is committed when no next project comes */

enum { ID_DIRNAME, ID_INFO_JSON };
enum { ST_TODO, ST_IMPORTED, ST_UNCHANGED, ST_FAILED };

struct proj {
	char *dir;                  /* name in SRC_ROOT (any bytes but '/') */
	char id[PS_CAT_ID_MAX + 8]; /* "" when there is none */
	int state;                  /* ST_* */
	char *reason;               /* why it failed (ST_FAILED) */
	json_t *result;             /* the worker's result object */
};

struct mig {
	struct cli *cli;
	const char *src;            /* SRC_ROOT as given */
	char *src_real;             /* its real path */
	int jobs;                   /* worker processes */
	int threads;                /* worker threads of each save */
	int batch_max;              /* saves per group commit (1: none) */
	long uid, gid;
	uint64_t quota;
	int set_quota;
	int id_from;
	char cache_dir[PATH_MAX];
	char store_id[40];
	char actor[PS_CAT_ID_MAX + 1];
	char lease_owner[PS_CAT_ID_MAX + 1];
	struct proj *p;
	size_t np;
	size_t nignored;            /* entries of SRC_ROOT that are not directories */
	json_t *ignored;
};

static inline char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *xstrdup(const char *s)
{
	char *r = strdup(s);
	if (!r) {
		cli_error("out of memory");
		exit(EXIT_FAIL);
	}
	return r;
}

static inline char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *r = NULL;
	va_start(ap, fmt);
	if (vasprintf(&r, fmt, ap) < 0)
		r = NULL;
	va_end(ap);
	if (!r) {
		cli_error("out of memory");
		exit(EXIT_FAIL);
	}
	return r;
}

static inline int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void hex(const unsigned char *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = 0;
}

static inline int mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, mode) && errno != EEXIST ? -1 : 0;
}

static inline void sha256_hex(const void *data, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex(md, mdlen > 32 ? 32 : mdlen, out);
}

/* A name for messages: control bytes, backslash and invalid UTF-8 as \xHH. */
static inline char *escape_name(const char *s)
{
	size_t n = strlen(s);
	char *r = malloc(n * 4 + 1), *o = r;
	if (!r)
		return xstrdup("?");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80)
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = (char)c;
	}
	*o = 0;
	return r;
}

/* The marker of a project's last import (migrate_import.c). */
struct marker {
	int valid;
	char state[16];             /* "done" */
	char source[65];            /* sha256 of the source's real path */
	char options[65];           /* sha256 of what shapes the tree besides the source */
	char digest[65];            /* the stat digest of the tree the save saw */
	char snapshot[PS_SNAPNAME_MAX + 1]; /* the project's newest snapshot after it */
	uint64_t errors;            /* entries the save skipped */
};

/* A worker process: takes project numbers from job_fd, writes its lines to
 * res_fd ("P", "D", "R", cmd_migrate.c), exits when the jobs end. */
void migrate_worker_main(struct mig *m, int job_fd, int res_fd) __attribute__((noreturn));
#endif
