/*
 * cmd_migrate.c - projstore migrate SRC_ROOT: bring existing home directories
 * into the store, one project per subdirectory of SRC_ROOT, in parallel and
 * resumable.
 *
 * Shape.  The parent lists SRC_ROOT, derives every project id (the directory
 * name, or the project_id field of <dir>/info.json), refuses invalid and
 * duplicate ids, and forks -j worker processes.  Each worker takes project
 * numbers one at a time from its job pipe, imports that project and writes
 * lines back on its result pipe: "P <n> <files> <bytes>" while a save runs
 * and "R <n> <json>" with the outcome.  The parent only hands out work, draws
 * the progress line and writes the summary.  Processes rather than threads:
 * each worker has its own store and catalog handles (a catalog handle serves
 * one thread), and a crash while importing one project kills one worker,
 * which is replaced; the project is reported as failed and the rest go on.
 *
 * One project (import_start, then import_after_save or the batch's commit):
 *   1. refused while the catalog has it deployed, busy or leased to someone;
 *   2. the marker CACHE_DIR/migrate/<store id>/<project> of the last import
 *      names the source, the options, the stat digest of the tree it saved
 *      (ps_stat_digest: every entry's path, type, mode, owner, size, times,
 *      inode and device) and the snapshot it made;
 *   3. with such a marker, a stat walk of the source (ps_stat_digest). Same
 *      source, options and digest, nothing skipped then or now, and the
 *      project's newest snapshot still that one: the project is unchanged and
 *      nothing else is done (the cost of a stat walk and two small reads).
 *      Without a marker there is nothing to compare, and no walk: the save's
 *      own walk gives the digest for the new marker;
 *   4. otherwise: catalog row, lease and `maintenance`, quota, ps_save with
 *      owners rewritten, skip_unchanged (a tree equal to the newest snapshot
 *      publishes nothing) and the stat digest of what it saw, marker
 *      written, the catalog's facts, result and event, `maintenance` off and
 *      `migrated` on, lease released.
 *
 * Group commit.  A worker's saves join a batch (ps_save with opts.batch):
 * each does all its work and keeps its project lock, but nothing is durable
 * or published until the batch's commit, which fsyncs one pack and one
 * index segment for all of them and then publishes their refs.  After it
 * saves a project the worker tells the parent ("D <n>"), takes the next one,
 * and commits when the batch is full (--batch), 2 s old, or no project comes
 * within 100 ms; only then does each project get its marker and step 4's
 * catalog end (one transaction for the batch), and its result ("R <n> ...").
 * A small project's save so costs the fsyncs of its ref alone instead of
 * also those of a pack and a segment.
 *
 * The marker is written (temp file + fsync + rename) after the save is
 * published and before the catalog's end (import_marker says why).  A kill
 * before the marker leaves the old marker (or none) and the project in
 * maintenance; the rerun saves again, and skip_unchanged
 * keeps that from adding a duplicate snapshot when the interrupted run had
 * published one.  A marker whose snapshot is no longer the newest while the
 * project is not in maintenance means the project was saved by someone else
 * since it was migrated (deployed, changed, closed): it is not overwritten
 * with the old source; the project is reported as failed.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "projstore_catalog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* ------------------------------------------------------------ small helpers */

static char *xstrdup(const char *s)
{
	char *r = strdup(s);
	if (!r) {
		cli_error("out of memory");
		exit(EXIT_FAIL);
	}
	return r;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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

/* A name for messages: control bytes, backslash and invalid UTF-8 as \xHH. */
static char *escape_name(const char *s)
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

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = 0;
}

/* The file cache's directory, as the library chooses it (snap_fcache.c). */
static void default_cache_dir(char *buf, size_t len)
{
	const char *e = getenv("PROJSTORE_CACHE_DIR");
	if (e && *e) {
		snprintf(buf, len, "%s", e);
	} else if (geteuid() == 0) {
		snprintf(buf, len, "/var/cache/projstore");
	} else if ((e = getenv("XDG_CACHE_HOME")) && *e) {
		snprintf(buf, len, "%s/projstore", e);
	} else {
		e = getenv("HOME");
		snprintf(buf, len, "%s/.cache/projstore", e && *e ? e : "/tmp");
	}
}

/* Keeps to the catalog's name characters. */
static void name_chars(char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '.' || *s == '-' || *s == '_'))
			*s = '_';
}

static void set_identity(struct mig *m)
{
	char host[256] = "localhost";
	snprintf(m->actor, sizeof(m->actor), "%s", cli_actor());
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = 0;
	snprintf(m->lease_owner, sizeof(m->lease_owner), "migrate.%.50s", host);
	name_chars(m->lease_owner);
}

static int mkdirs(const char *path, mode_t mode)
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

static void sha256_hex(const void *data, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex(md, mdlen > 32 ? 32 : mdlen, out);
}

/* ------------------------------------------------------------ markers */

struct marker {
	int valid;
	char state[16];             /* "done" */
	char source[65];            /* sha256 of the source's real path */
	char options[65];           /* sha256 of what shapes the tree besides the source */
	char digest[65];            /* of the stat walk before the save */
	char snapshot[PS_SNAPNAME_MAX + 1]; /* the project's newest snapshot after it */
	uint64_t errors;            /* entries the save skipped */
};

static void marker_path(const struct mig *m, const char *project, char *buf, size_t len)
{
	snprintf(buf, len, "%s/migrate/%s/%s", m->cache_dir, m->store_id, project);
}

static void marker_read(const struct mig *m, const char *project, struct marker *mk)
{
	char path[PATH_MAX], line[512];
	FILE *f;
	int version = 0;
	memset(mk, 0, sizeof(*mk));
	marker_path(m, project, path, sizeof(path));
	if (!(f = fopen(path, "re")))
		return;
	while (fgets(line, sizeof(line), f)) {
		char k[32], v[200];
		unsigned long long u;
		if (sscanf(line, "%31s %199s", k, v) != 2)
			continue;
		if (!strcmp(k, "projstore-migrate"))
			version = atoi(v);
		else if (!strcmp(k, "state"))
			snprintf(mk->state, sizeof(mk->state), "%s", v);
		else if (!strcmp(k, "source"))
			snprintf(mk->source, sizeof(mk->source), "%s", v);
		else if (!strcmp(k, "options"))
			snprintf(mk->options, sizeof(mk->options), "%s", v);
		else if (!strcmp(k, "digest"))
			snprintf(mk->digest, sizeof(mk->digest), "%s", v);
		else if (!strcmp(k, "snapshot"))
			snprintf(mk->snapshot, sizeof(mk->snapshot), "%s", strcmp(v, "-") ? v : "");
		else if (!strcmp(k, "errors") && sscanf(v, "%llu", &u) == 1)
			mk->errors = u;
	}
	fclose(f);
	mk->valid = version == MIG_MARKER_VERSION && !strcmp(mk->state, "done");
}

static int marker_text(const struct marker *mk, char *text, size_t len)
{
	return snprintf(text, len,
			"projstore-migrate %d\nstate %s\nsource %s\noptions %s\ndigest %s\nsnapshot %s\n"
			"errors %llu\n",
			MIG_MARKER_VERSION, mk->state, mk->source, mk->options, mk->digest,
			mk->snapshot[0] ? mk->snapshot : "-", (unsigned long long)mk->errors);
}

/* The markers of n projects as one group: each to a temp file, all fsynced,
 * renamed into place, and the directory fsynced once (the first fsync's
 * journal commit carries the others). ok[i] = 1 for each one written; a
 * failure's message goes to msgs[i] (msglen bytes). */
static void marker_write_many(const struct mig *m, size_t n, const char *const *projects,
			      const struct marker *mk, int *ok, char (*msgs)[PS_CAT_TEXT_MAX],
			      size_t msglen)
{
	char dir[PATH_MAX], text[1024];
	char (*path)[PATH_MAX] = calloc(n ? n : 1, sizeof(*path));
	char (*tmp)[PATH_MAX + 32] = calloc(n ? n : 1, sizeof(*tmp));
	int *fd = calloc(n ? n : 1, sizeof(*fd));
	int dfd;
	for (size_t i = 0; i < n; i++)
		ok[i] = 0;
	if (!path || !tmp || !fd) {
		for (size_t i = 0; i < n; i++)
			snprintf(msgs[i], msglen, "out of memory");
		goto done;
	}
	snprintf(dir, sizeof(dir), "%s/migrate/%s", m->cache_dir, m->store_id);
	if (mkdirs(dir, 0700)) {
		for (size_t i = 0; i < n; i++)
			snprintf(msgs[i], msglen, "cannot create '%s': %s", dir, strerror(errno));
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		int len = marker_text(&mk[i], text, sizeof(text));
		marker_path(m, projects[i], path[i], sizeof(path[i]));
		snprintf(tmp[i], sizeof(tmp[i]), "%s.tmp.%ld", path[i], (long)getpid());
		fd[i] = open(tmp[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd[i] < 0 || write(fd[i], text, (size_t)len) != len) {
			snprintf(msgs[i], msglen, "cannot write '%s': %s", tmp[i], strerror(errno));
			if (fd[i] >= 0)
				close(fd[i]);
			fd[i] = -1;
			unlink(tmp[i]);
			continue;
		}
		ok[i] = 1;
	}
	/* their writeback started together: the first fsync's journal commit
	 * carries the group */
	for (size_t i = 0; i < n; i++)
		if (fd[i] >= 0)
			(void)sync_file_range(fd[i], 0, 0, SYNC_FILE_RANGE_WRITE);
	for (size_t i = 0; i < n; i++) {
		if (fd[i] < 0)
			continue;
		if (fsync(fd[i]) || close(fd[i])) {
			snprintf(msgs[i], msglen, "cannot write '%s': %s", tmp[i], strerror(errno));
			ok[i] = 0;
		}
		fd[i] = -1;
		if (ok[i] && rename(tmp[i], path[i])) {
			snprintf(msgs[i], msglen, "cannot rename '%s': %s", tmp[i], strerror(errno));
			ok[i] = 0;
		}
		if (!ok[i])
			unlink(tmp[i]);
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
done:
	free(path);
	free(tmp);
	free(fd);
}

/* ------------------------------------------------------------ project ids */

/* Reads the project_id of DIR/info.json into p->id, or sets p->reason. */
static void id_from_info(const struct mig *m, struct proj *p)
{
	char *path = xasprintf("%s/%s", m->src, p->dir);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), fd = -1;
	struct stat st;
	char *buf = NULL;
	json_t *j = NULL, *id;
	json_error_t je;
	ssize_t got;
	size_t len = 0;
	free(path);
	if (dfd < 0) {
		p->reason = xasprintf("cannot open the directory: %s", strerror(errno));
		goto done;
	}
	fd = openat(dfd, "info.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		p->reason = xasprintf("cannot read info.json: %s", strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		p->reason = xstrdup("info.json is not a regular file");
		goto done;
	}
	if (st.st_size > MIG_INFO_MAX) {
		p->reason = xasprintf("info.json is larger than %d bytes", MIG_INFO_MAX);
		goto done;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		p->reason = xstrdup("out of memory");
		goto done;
	}
	while (len < (size_t)st.st_size && (got = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)got;
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		p->reason = xasprintf("info.json is not valid JSON (line %d: %s)", je.line, je.text);
		goto done;
	}
	id = json_is_object(j) ? json_object_get(j, "project_id") : NULL;
	if (!id || !json_is_string(id)) {
		p->reason = xstrdup("info.json has no string \"project_id\"");
		goto done;
	}
	if (!ps_project_id_valid(json_string_value(id))) {
		char *e = escape_name(json_string_value(id));
		p->reason = xasprintf("invalid project id '%.200s' in info.json (expected "
				      "[a-z0-9][a-z0-9._-]{0,63})", e);
		free(e);
		goto done;
	}
	snprintf(p->id, sizeof(p->id), "%s", json_string_value(id));
done:
	json_decref(j);
	free(buf);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
}

static int cmp_proj_id(const void *a, const void *b)
{
	const struct proj *x = *(struct proj *const *)a, *y = *(struct proj *const *)b;
	int c = strcmp(x->id, y->id);
	return c ? c : strcmp(x->dir, y->dir);
}

static int cmp_proj_dir(const void *a, const void *b)
{
	return strcmp(((const struct proj *)a)->dir, ((const struct proj *)b)->dir);
}

static void fail_proj(struct proj *p, char *reason)
{
	p->state = ST_FAILED;
	free(p->reason);
	p->reason = reason;
}

/* Lists SRC_ROOT and derives the project ids. Returns an exit code. */
static int list_projects(struct mig *m)
{
	DIR *d = opendir(m->src);
	struct dirent *de;
	size_t cap = 0;
	struct proj **byid;
	if (!d) {
		cli_error("cannot open '%s': %s", m->src, strerror(errno));
		return EXIT_FAIL;
	}
	m->ignored = json_array();
	errno = 0;
	while ((de = readdir(d))) {
		struct stat st;
		struct proj *p;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode)) {
			m->nignored++;
			json_array_append_new(m->ignored, cli_json_bytes(de->d_name, strlen(de->d_name)));
			continue;
		}
		if (m->np == cap) {
			struct proj *nv = realloc(m->p, (cap = cap ? cap * 2 : 256) * sizeof(*nv));
			if (!nv) {
				closedir(d);
				cli_error("out of memory");
				return EXIT_FAIL;
			}
			m->p = nv;
		}
		p = &m->p[m->np++];
		memset(p, 0, sizeof(*p));
		p->dir = xstrdup(de->d_name);
		errno = 0;
	}
	if (errno) {
		cli_error("cannot list '%s': %s", m->src, strerror(errno));
		closedir(d);
		return EXIT_FAIL;
	}
	closedir(d);
	if (m->np > 1)
		qsort(m->p, m->np, sizeof(*m->p), cmp_proj_dir);
	for (size_t i = 0; i < m->np; i++) {
		struct proj *p = &m->p[i];
		if (m->id_from == ID_INFO_JSON) {
			id_from_info(m, p);
			if (p->reason)
				p->state = ST_FAILED;
		} else if (ps_project_id_valid(p->dir)) {
			snprintf(p->id, sizeof(p->id), "%s", p->dir);
		} else {
			fail_proj(p, xstrdup("the directory name is not a valid project id (expected "
					     "[a-z0-9][a-z0-9._-]{0,63}; --id-from info.json reads it "
					     "from info.json)"));
		}
	}
	/* duplicates: every directory claiming the id fails (which one is the
	 * real project is not for migrate to guess) */
	byid = calloc(m->np + 1, sizeof(*byid));
	if (!byid) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	size_t nb = 0;
	for (size_t i = 0; i < m->np; i++)
		if (m->p[i].id[0])
			byid[nb++] = &m->p[i];
	if (nb > 1)
		qsort(byid, nb, sizeof(*byid), cmp_proj_id);
	for (size_t i = 0; i < nb;) {
		size_t k = i + 1;
		while (k < nb && !strcmp(byid[k]->id, byid[i]->id))
			k++;
		if (k - i > 1) {
			for (size_t a = i; a < k; a++) {
				char others[600] = "";
				size_t ol = 0;
				for (size_t b = i; b < k; b++) {
					char *e;
					if (b == a || ol > 400)
						continue;
					e = escape_name(byid[b]->dir);
					ol += (size_t)snprintf(others + ol, sizeof(others) - ol, "%s'%.100s'",
							       ol ? ", " : "", e);
					free(e);
				}
				fail_proj(byid[a], xasprintf("duplicate project id '%s' (also claimed by %s)",
							     byid[a]->id, others));
			}
		}
		i = k;
	}
	free(byid);
	return 0;
}

/* ------------------------------------------------------------ one project */

struct wctx {
	struct mig *m;
	struct ps_catalog *cat;
	struct ps_store *store;     /* kept for the worker's life: loading the index is
				     * the largest fixed cost of a small project's save;
				     * ps_save brings it up to date (ps_store_refresh) */
	FILE *out;                  /* result pipe */
	size_t idx;
	int64_t last_progress;
	json_t *skipped;
	uint64_t nskipped;
	uint64_t processed;         /* bytes the save went through so far */
	struct ps_save_batch *batch; /* saves waiting for one group commit */
	struct imp **held;          /* their imports, in batch order */
	size_t nheld;
	int64_t batch_t0;           /* when the first of them started */
	int in_flush, drop_store;
};

static void w_progress(void *ctx, const char *phase, uint64_t fd, uint64_t ft, uint64_t bd,
		       uint64_t bt)
{
	struct wctx *w = ctx;
	int64_t now = mono_ms();
	(void)phase;
	(void)ft;
	(void)bt;
	w->processed = bd;
	if (now - w->last_progress < 250)
		return;
	w->last_progress = now;
	fprintf(w->out, "P %zu %llu %llu\n", w->idx, (unsigned long long)fd, (unsigned long long)bd);
	fflush(w->out);
}

static void w_warn(void *ctx, const char *path, const char *msg)
{
	struct wctx *w = ctx;
	w->nskipped++;
	if (json_array_size(w->skipped) < MIG_SKIPPED_LIST)
		json_array_append_new(w->skipped, json_pack("{s:o, s:s}", "path",
							     cli_json_bytes(path, strlen(path)), "error",
							     msg));
}

static const char *result_text(const struct ps_snapshot_info *si, char *buf, size_t len)
{
	if (si->errors && si->over_quota)
		snprintf(buf, len, "partial: %llu entries skipped; over quota",
			 (unsigned long long)si->errors);
	else if (si->errors)
		snprintf(buf, len, "partial: %llu entries skipped", (unsigned long long)si->errors);
	else
		snprintf(buf, len, "%s", si->over_quota ? "over quota" : "ok");
	return buf;
}

/* A worker's own catalog handle (the catalog cli_open_catalog opens, with
 * the message kept for the project's result instead of printed). */
static int open_catalog(struct cli *cli, struct ps_catalog **out, struct ps_error *err)
{
	const char *spec = cli->catalog && *cli->catalog ? cli->catalog : getenv("PROJSTORE_CATALOG");
	return ps_catalog_open(out, spec && *spec ? spec : NULL, cli->store, err);
}

/* The options that shape the saved tree besides the source: owners and the
 * project's stored excludes. */
static void options_digest(const struct mig *m, struct ps_store *s, const char *project,
			   char *out)
{
	char **ex = NULL, *buf;
	size_t nex = 0, len = 0, cap = 128;
	struct ps_error e;
	buf = malloc(cap);
	if (!buf) {
		out[0] = 0;
		return;
	}
	len = (size_t)snprintf(buf, cap, "uid %ld gid %ld", m->uid, m->gid);
	if (ps_excludes_get(s, project, &ex, &nex, &e) == PS_OK) {
		for (size_t i = 0; i < nex; i++) {
			size_t l = strlen(ex[i]) + 1;
			if (len + l + 1 > cap) {
				char *nb = realloc(buf, cap = (len + l + 1) * 2);
				if (!nb)
					break;
				buf = nb;
			}
			memcpy(buf + len + 1, ex[i], l);
			len += l;
		}
		ps_strv_free(ex, nex);
	}
	sha256_hex(buf, len, out);
	free(buf);
}

/* What the catalog gets at the end of an import: the store's facts
 * (ps_stats: sizes and ratios), the save result and the event. */
struct cat_end {
	struct ps_cat_store_facts f;
	struct ps_cat_import im;
	char res[PS_CAT_TEXT_MAX], detail[PS_CAT_TEXT_MAX];
};

static int catalog_end_prepare(struct wctx *w, struct ps_store *s, const struct proj *p,
			       size_t nprev, const struct ps_snapshot_info *si, struct cat_end *ce,
			       struct ps_error *err)
{
	struct ps_cat_store_facts f0 = PS_CAT_STORE_FACTS_INIT;
	struct ps_stats st;
	char size[32];
	char *e;
	int rc;
	memset(&st, 0, sizeof(st));
	rc = ps_stats(s, p->id, &st, err);
	if (rc)
		return rc;
	ce->f = f0;
	ce->f.quota_bytes = (int64_t)st.quota_bytes;
	ce->f.logical_bytes = (int64_t)si->logical_bytes;
	ce->f.stored_bytes = (int64_t)st.stored_bytes;
	ce->f.compressratio = st.compressratio > 0 ? st.compressratio : 1.0;
	ce->f.dedupratio = st.dedupratio > 0 ? st.dedupratio : 1.0;
	ce->f.snapshots = (int64_t)(nprev + (si->unchanged ? 0 : 1));
	ce->f.last_snapshot = si->name;
	ce->f.last_snapshot_at = si->time_ns / 1000;
	e = escape_name(p->dir);
	ps_format_size(si->logical_bytes, size, sizeof(size));
	if (si->unchanged)
		snprintf(ce->detail, sizeof(ce->detail), "from '%.200s': unchanged since %s", e,
			 si->name);
	else
		snprintf(ce->detail, sizeof(ce->detail), "from '%.200s' as %s: %llu files, %s%s", e,
			 si->name, (unsigned long long)si->files, size,
			 si->errors ? ", entries skipped" : "");
	free(e);
	memset(&ce->im, 0, sizeof(ce->im));
	ce->im.facts = &ce->f;
	ce->im.files = (int64_t)si->files;
	ce->im.result = result_text(si, ce->res, sizeof(ce->res));
	ce->im.event_kind = "migrated";
	ce->im.event_detail = ce->detail;
	ce->im.event_error = si->errors != 0;
	ce->im.actor = w->m->actor;
	return PS_OK;
}

/* The end of an import in the catalog, in one transaction. */
static int catalog_end(struct wctx *w, struct ps_store *s, const struct proj *p, size_t nprev,
		       const struct ps_snapshot_info *si, struct ps_error *err)
{
	struct cat_end ce;
	int rc = catalog_end_prepare(w, s, p, nprev, si, &ce, err);
	if (rc)
		return rc;
	return ps_cat_migrate_end(w->cat, p->id, w->m->lease_owner, &ce.im, err);
}

/* One import in work. A save that joined the worker's batch waits here for
 * the batch's commit before its catalog end and marker (import_finish). */
struct imp {
	struct proj *p;
	size_t idx;
	json_t *r;
	struct ps_snapshot_info si;
	struct ps_snapshot_info *snaps;
	size_t nsnaps;
	char digest[65], options[65], source[65];
	char *dir, *real, *reason;
	const char *status;
	int in_catalog, begun, saved;
	int64_t t0;
	json_t *skipped;            /* the save's skipped entries (w->skipped) */
	uint64_t nskipped, processed;
};

static void imp_free(struct imp *im)
{
	free(im->snaps);
	free(im->real);
	free(im->dir);
	free(im->reason);
	json_decref(im->r);
	json_decref(im->skipped);
	free(im);
}

/* After the save is durable and published: the marker, then the catalog's
 * end of the import. The marker first: a kill between the two leaves a
 * marker naming the new snapshot and the project in maintenance, which the
 * next run finishes as unchanged (catalog end only); the other order would
 * leave the old marker with the project out of maintenance, which looks
 * like a snapshot saved by someone else. */
static void marker_of(const struct imp *im, struct marker *nm)
{
	memset(nm, 0, sizeof(*nm));
	snprintf(nm->state, sizeof(nm->state), "done");
	memcpy(nm->source, im->source, sizeof(im->source));
	memcpy(nm->options, im->options, sizeof(im->options));
	memcpy(nm->digest, im->digest, sizeof(im->digest));
	snprintf(nm->snapshot, sizeof(nm->snapshot), "%s", im->si.name);
	nm->errors = im->si.errors;
}

/* The markers of n saved imports, as one group (marker_write_many). */
static void import_markers(struct wctx *w, struct imp **ims, size_t n)
{
	struct marker *mk = calloc(n ? n : 1, sizeof(*mk));
	const char **ids = calloc(n ? n : 1, sizeof(*ids));
	int *ok = calloc(n ? n : 1, sizeof(*ok));
	char (*msgs)[PS_CAT_TEXT_MAX] = calloc(n ? n : 1, sizeof(*msgs));
	if (!mk || !ids || !ok || !msgs)
		_exit(EXIT_FAIL);
	for (size_t i = 0; i < n; i++) {
		ims[i]->saved = 1;
		marker_of(ims[i], &mk[i]);
		ids[i] = ims[i]->p->id;
	}
	marker_write_many(w->m, n, ids, mk, ok, msgs, sizeof(msgs[0]));
	for (size_t i = 0; i < n; i++)
		if (!ok[i])
			ims[i]->reason = xasprintf("saved as %s, but %s", ims[i]->si.name, msgs[i]);
	free(mk);
	free(ids);
	free(ok);
	free(msgs);
}

static int import_marker(struct wctx *w, struct imp *im)
{
	import_markers(w, &im, 1);
	return im->reason ? -1 : 0;
}

static void import_catalog_end(struct wctx *w, struct imp *im, int cat_done)
{
	struct ps_error err;
	if (!cat_done && !w->cat && open_catalog(w->m->cli, &w->cat, &err)) {
		w->cat = NULL;
		im->reason = xasprintf("saved as %s, but catalog: %s", im->si.name, err.msg);
		return;
	}
	if (!cat_done && catalog_end(w, w->store, im->p, im->nsnaps, &im->si, &err)) {
		im->reason = xasprintf("saved as %s, but catalog: %s", im->si.name, err.msg);
		return;
	}
	im->status = im->si.unchanged ? "unchanged" : "imported";
}

static void import_after_save(struct wctx *w, struct imp *im)
{
	if (!import_marker(w, im))
		import_catalog_end(w, im, 0);
}

static void flush_batch(struct wctx *w);

/* The end of an import, whatever happened: the catalog is told of a
 * failure, and the result object is made (and returned). */
static json_t *import_result(struct wctx *w, struct imp *im)
{
	struct mig *m = w->m;
	struct proj *p = im->p;
	struct ps_error e2;
	json_t *r = im->r;
	/* Before the begin, and after a save that failed (it published
	 * nothing), maintenance is cleared; once a save published, it stays
	 * until a rerun finishes the project: it tells that run that the
	 * newest snapshot is this import's. Before the begin it is not ours
	 * to clear unless we hold the lease (a killed run of ours). */
	if (im->reason && w->cat && p->id[0] &&
	    ps_cat_migrate_fail(w->cat, p->id, m->lease_owner, m->actor, im->reason,
				im->begun ? im->saved : 1, &e2)) {
		/* the catalog itself may be what failed (a PostgreSQL server
		 * restarted): the next project opens a new connection */
		ps_catalog_close(w->cat);
		w->cat = NULL;
	}
	json_object_set_new(r, "status", json_string(im->reason ? "failed" : im->status));
	if (im->reason) {
		json_object_set_new(r, "reason", json_string(im->reason));
		if (!json_object_get(r, "reason"))   /* not UTF-8 */
			json_object_set_new(r, "reason", cli_json_bytes(im->reason, strlen(im->reason)));
	}
	if (!im->reason) {
		struct ps_snapshot_info *si = &im->si;
		json_object_set_new(r, "snapshot", json_string(si->name));
		json_object_set_new(r, "files", json_integer((json_int_t)si->files));
		json_object_set_new(r, "logical_bytes", json_integer((json_int_t)si->logical_bytes));
		json_object_set_new(r, "new_bytes", json_integer((json_int_t)si->new_bytes));
		json_object_set_new(r, "quota_bytes", si->quota_bytes
						       ? json_integer((json_int_t)si->quota_bytes)
						       : json_null());
		json_object_set_new(r, "over_quota", json_boolean(si->over_quota));
	}
	json_object_set_new(r, "processed_bytes", json_integer((json_int_t)im->processed));
	json_object_set_new(r, "errors", json_integer((json_int_t)im->nskipped));
	json_object_set_new(r, "skipped", im->skipped ? im->skipped : json_array());
	im->skipped = NULL;
	json_object_set_new(r, "duration_ms", json_integer((json_int_t)(mono_ms() - im->t0)));
	if (im->reason && w->store) {
		/* a failure may leave the handle with unflushed state: start
		 * afresh, after the batch's saves are published */
		if (w->in_flush) {
			w->drop_store = 1;
		} else {
			flush_batch(w);
			ps_store_free(w->store);
			w->store = NULL;
		}
	}
	im->r = NULL;
	return r;
}

/* Imports project p up to its save. Returns 1 when the save joined the
 * worker's batch (the import goes on in import_finish after the commit),
 * else 0: the import is over (import_result makes its result). */
static int import_start(struct wctx *w, struct imp *im)
{
	struct mig *m = w->m;
	struct proj *p = im->p;
	struct ps_cat_project cp;
	struct ps_store *s = NULL;
	struct ps_save_opts o = PS_SAVE_OPTS_INIT;
	struct ps_error err, e2;
	struct marker mk;
	struct ps_stat_digest sd;
	uint64_t quota = 0;
	size_t before;
	int rc;

	ps_error_clear(&err);
	im->status = "failed";
	im->r = json_object();
	im->t0 = mono_ms();
	im->dir = xasprintf("%s/%s", m->src_real, p->dir);
	w->skipped = json_array();
	w->nskipped = 0;
	w->processed = 0;
	json_object_set_new(im->r, "dir", cli_json_bytes(p->dir, strlen(p->dir)));
	json_object_set_new(im->r, "project", json_string(p->id));

	if (!w->cat && open_catalog(m->cli, &w->cat, &err)) {
		w->cat = NULL;
		im->reason = xasprintf("catalog: %s", err.msg);
		goto done;
	}
	/* 1. not while it lives somewhere */
	rc = ps_cat_project_get(w->cat, p->id, &cp, &err);
	if (rc == PS_OK) {
		im->in_catalog = 1;
		if (cp.host[0]) {
			im->reason = xasprintf("deployed on host '%s' (close it before migrating it "
					       "again)", cp.host);
			goto done;
		}
		if (strcmp(cp.status, "stored")) {
			im->reason = xasprintf("its status is '%s' (an open, close or move is in "
					       "progress)", cp.status);
			goto done;
		}
		if (cp.lease_owner[0] && strcmp(cp.lease_owner, m->lease_owner) &&
		    cp.lease_expires > ps_cat_now()) {
			im->reason = xasprintf("leased by '%s'", cp.lease_owner);
			goto done;
		}
	} else if (rc != PS_ENOTFOUND) {
		im->reason = xasprintf("catalog: %s", err.msg);
		goto done;
	}
	im->real = realpath(im->dir, NULL);
	if (!im->real) {
		im->reason = xasprintf("cannot open the directory: %s", strerror(errno));
		goto done;
	}
	sha256_hex(im->real, strlen(im->real), im->source);
	if (!w->store && (rc = ps_store_open(&w->store, m->cli->store, &err))) {
		w->store = NULL;
		im->reason = xasprintf("%s", err.msg);
		goto done;
	}
	s = w->store;
	options_digest(m, s, p->id, im->options);
	if ((rc = ps_snapshot_list(s, p->id, &im->snaps, &im->nsnaps, &err)) ||
	    (rc = ps_quota_get(s, p->id, &quota, &err))) {
		im->reason = xasprintf("%s", err.msg);
		goto done;
	}
	/* 2. the marker of the last import */
	marker_read(m, p->id, &mk);
	if (mk.valid && im->nsnaps && strcmp(mk.snapshot, im->snaps[im->nsnaps - 1].name) &&
	    !(im->in_catalog && cp.maintenance)) {
		im->reason = xasprintf("saved since it was migrated (newest snapshot %s from '%s', "
				       "migrated as %s): not imported again",
				       im->snaps[im->nsnaps - 1].name, im->snaps[im->nsnaps - 1].origin,
				       mk.snapshot[0] ? mk.snapshot : "none");
		goto done;
	}
	/* 3. with a marker to compare with, the stat walk */
	memset(&sd, 0, sizeof(sd));
	if (mk.valid && im->nsnaps && !mk.errors && !strcmp(mk.source, im->source) &&
	    !strcmp(mk.options, im->options)) {
		struct ps_save_opts wo = PS_SAVE_OPTS_INIT;
		if ((rc = ps_stat_digest(s, p->id, im->dir, &wo, &sd, &err))) {
			im->reason = xasprintf("%s", err.msg);
			goto done;
		}
		hex(sd.digest, 32, im->digest);
	}
	if (mk.valid && im->nsnaps && !mk.errors && sd.entries && !sd.errors &&
	    !strcmp(mk.source, im->source) && !strcmp(mk.options, im->options) &&
	    !strcmp(mk.digest, im->digest)) {
		im->si = im->snaps[im->nsnaps - 1];
		if (m->set_quota && quota != m->quota) {
			if ((rc = ps_quota_set(s, p->id, m->quota, &err))) {
				im->reason = xasprintf("%s", err.msg);
				goto done;
			}
			quota = m->quota;
			struct ps_cat_store_facts f = PS_CAT_STORE_FACTS_INIT;
			f.quota_bytes = (int64_t)quota;
			ps_cat_project_set_facts(w->cat, p->id, &f, &e2);
		}
		im->si.quota_bytes = quota;
		im->si.over_quota = quota && im->si.logical_bytes > quota;
		im->si.new_objects = im->si.new_raw_bytes = im->si.new_bytes = 0;
		im->si.errors = 0;
		im->status = "unchanged";
		if (im->in_catalog && cp.migrated && !cp.maintenance)
			goto done;
		/* the catalog lost track of it (new or reset catalog, or a run
		 * killed after the marker): the same two steps as an import */
		if ((rc = ps_cat_migrate_begin(w->cat, p->id, m->lease_owner, MIG_LEASE_US, NULL,
					       &err))) {
			im->status = "failed";
			im->reason = xasprintf("%s", err.msg);
			goto done;
		}
		im->begun = im->saved = 1;
		if ((rc = catalog_end(w, s, p, im->nsnaps, &im->si, &err))) {
			im->status = "failed";
			im->reason = xasprintf("catalog: %s", err.msg);
		}
		goto done;
	}
	/* 4. import */
	if ((rc = ps_cat_migrate_begin(w->cat, p->id, m->lease_owner, MIG_LEASE_US, NULL, &err))) {
		im->reason = xasprintf("%s", err.msg);
		goto done;
	}
	im->begun = 1;
	if (m->set_quota && quota != m->quota && (rc = ps_quota_set(s, p->id, m->quota, &err))) {
		im->reason = xasprintf("%s", err.msg);
		goto done;
	}
	o.uid = m->uid;
	o.gid = m->gid;
	o.threads = m->threads;
	o.cache_dir = m->cache_dir;
	o.lock_timeout = 60;
	o.skip_unchanged = 1;
	o.progress = w_progress;
	o.warn = w_warn;
	o.cb_ctx = w;
	o.batch = w->batch;
	o.stat_digest = &sd;
	before = ps_save_batch_count(w->batch);
	rc = ps_save(s, p->id, im->dir, &o, &im->si, &err);
	if (rc) {
		im->reason = xasprintf("%s", err.msg);
		goto done;
	}
	/* the marker gets the digest of what the save saw */
	hex(sd.digest, 32, im->digest);
	if (w->batch && ps_save_batch_count(w->batch) > before) {
		im->skipped = w->skipped;
		im->nskipped = w->nskipped;
		im->processed = w->processed;
		w->skipped = NULL;
		return 1;
	}
	import_after_save(w, im);
done:
	im->skipped = w->skipped;
	im->nskipped = w->nskipped;
	im->processed = w->processed;
	w->skipped = NULL;
	return 0;
}

/* ------------------------------------------------------------ workers */

struct worker {
	pid_t pid;
	int job_fd;                 /* parent -> worker: "N\n" */
	int res_fd;                 /* worker -> parent: lines */
	char *buf;
	size_t len, cap;
	long busy;                  /* project number in work, or -1 */
	uint64_t cur_bytes;         /* processed so far by that project's save */
	uint64_t cur_files;
	long *held;                 /* saved, waiting for the worker's group commit */
	size_t nheld;
};

static volatile sig_atomic_t g_interrupts;
static volatile sig_atomic_t g_terminate;

static void on_signal(int sig)
{
	if (sig == SIGINT)
		g_interrupts++;
	else
		g_terminate = 1;
}

static void emit_result(struct wctx *w, size_t idx, json_t *r)
{
	char *text = json_dumps(r, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(r);
	if (!text)
		_exit(EXIT_FAIL);
	fprintf(w->out, "R %zu %s\n", idx, text);
	free(text);
	if (fflush(w->out))
		_exit(EXIT_FAIL);
}

/* Tests stop a worker at a named point with PROJSTORE_MIGRATE_PAUSE=POINT:SECONDS
 * (and kill it there): "batched" (a save joined a batch that now holds at
 * least two, nothing of them published), "committed" (a batch was published,
 * before the markers and catalog ends of its projects), "marked" (markers
 * written, before the catalog ends). */
static void test_pause(const char *point)
{
	const char *e = getenv("PROJSTORE_MIGRATE_PAUSE");
	size_t n = strlen(point);
	if (!e || strncmp(e, point, n) || e[n] != ':')
		return;
	fprintf(stderr, "migrate: pausing at %s (PROJSTORE_MIGRATE_PAUSE)\n", point);
	fflush(stderr);
	usleep((useconds_t)(strtod(e + n + 1, NULL) * 1e6));
}

/* Commits the worker's batch and finishes its imports: catalog end and
 * marker for each save the commit published, a failure for the others. */
static void flush_batch(struct wctx *w)
{
	struct mig *m = w->m;
	struct imp **held = w->held;
	size_t n = w->nheld;
	struct cat_end *ends;
	struct ps_cat_import *imps;
	const char **ids;
	char *cat_done;
	int *res;
	struct ps_error err;
	int rc;
	if (!n)
		return;
	w->held = NULL;
	w->nheld = 0;
	res = calloc(n, sizeof(*res));
	if (!res)
		_exit(EXIT_FAIL);
	ps_error_clear(&err);
	rc = ps_save_batch_commit(w->store, w->batch, res, &err);
	test_pause("committed");
	w->in_flush = 1;
	/* the catalog ends of the published ones in one transaction (else one
	 * by one, so that one project's trouble stays its own) */
	ends = calloc(n, sizeof(*ends));
	imps = calloc(n, sizeof(*imps));
	ids = calloc(n, sizeof(*ids));
	cat_done = calloc(n, sizeof(*cat_done));
	{
		struct imp **saved = calloc(n, sizeof(*saved));
		size_t k = 0;
		if (!saved)
			_exit(EXIT_FAIL);
		for (size_t i = 0; i < n; i++)
			if (!res[i])
				saved[k++] = held[i];
		import_markers(w, saved, k);
		free(saved);
	}
	test_pause("marked");
	if (ends && imps && ids && cat_done && w->cat) {
		size_t k = 0;
		struct ps_error e2;
		for (size_t i = 0; i < n; i++) {
			if (res[i] || held[i]->reason ||
			    catalog_end_prepare(w, w->store, held[i]->p, held[i]->nsnaps, &held[i]->si,
						&ends[k], &e2))
				continue;
			ids[k] = held[i]->p->id;
			imps[k] = ends[k].im;
			cat_done[i] = 1;
			k++;
		}
		if (k > 1 && ps_cat_migrate_end_many(w->cat, k, ids, m->lease_owner, imps, &e2)) {
			for (size_t i = 0; i < n; i++)
				cat_done[i] = 0;
		} else if (k == 1 && ps_cat_migrate_end(w->cat, ids[0], m->lease_owner, &imps[0], &e2)) {
			for (size_t i = 0; i < n; i++)
				cat_done[i] = 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct imp *im = held[i];
		if (res[i])
			im->reason = xasprintf("%s", err.msg[0] ? err.msg : "the save could not be published");
		else if (!im->reason)
			import_catalog_end(w, im, cat_done && cat_done[i]);
		emit_result(w, im->idx, import_result(w, im));
		imp_free(im);
	}
	free(ends);
	free(imps);
	free(ids);
	free(cat_done);
	w->in_flush = 0;
	if ((rc || w->drop_store) && w->store) {
		ps_store_free(w->store);
		w->store = NULL;
	}
	w->drop_store = 0;
	free(res);
	free(held);
}

/* Reads the next job number from the parent: 1 (*idx set), 0 when none came
 * within wait_ms (-1: wait for ever), -1 at the end of the jobs. */
static int read_job(int fd, char *buf, size_t *len, size_t cap, size_t *idx, int wait_ms)
{
	for (;;) {
		char *nl = memchr(buf, '\n', *len);
		struct pollfd pf;
		ssize_t n;
		if (nl) {
			*nl = 0;
			*idx = strtoul(buf, NULL, 10);
			*len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, *len);
			return 1;
		}
		if (*len >= cap - 1)
			return -1;
		pf.fd = fd;
		pf.events = POLLIN;
		pf.revents = 0;
		if (wait_ms >= 0) {
			int r = poll(&pf, 1, wait_ms);
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				return 0;
		}
		n = read(fd, buf + *len, cap - 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		*len += (size_t)n;
	}
}

static void worker_main(struct mig *m, int job_fd, int res_fd)
{
	struct wctx w;
	struct ps_error err;
	char buf[256];
	size_t len = 0, idx;
	memset(&w, 0, sizeof(w));
	w.m = m;
	w.out = fdopen(res_fd, "w");
	if (!w.out)
		_exit(EXIT_FAIL);
	/* group commit: the saves of several small projects are made durable
	 * and published together (ps_save_batch_new); a batch is committed when
	 * it is full, old, or no next project is at hand */
	if (m->batch_max > 1 && ps_save_batch_new(&w.batch, &err))
		_exit(EXIT_FAIL);
	for (;;) {
		struct imp *im;
		int got;
		if (w.nheld && (w.nheld >= (size_t)m->batch_max ||
				mono_ms() - w.batch_t0 >= MIG_BATCH_MS))
			flush_batch(&w);
		got = read_job(job_fd, buf, &len, sizeof(buf), &idx, w.nheld ? MIG_BATCH_WAIT_MS : -1);
		if (got == 0) {
			flush_batch(&w);
			continue;
		}
		if (got < 0 || idx >= m->np)
			break;
		im = calloc(1, sizeof(*im));
		if (!im)
			_exit(EXIT_FAIL);
		im->p = &m->p[idx];
		im->idx = idx;
		w.idx = idx;
		w.last_progress = 0;
		if (import_start(&w, im)) {
			struct imp **nv = realloc(w.held, (w.nheld + 1) * sizeof(*nv));
			if (!nv)
				_exit(EXIT_FAIL);
			w.held = nv;
			if (!w.nheld)
				w.batch_t0 = im->t0;
			w.held[w.nheld++] = im;
			if (w.nheld >= 2)
				test_pause("batched");
			/* the parent may hand out the next project now */
			fprintf(w.out, "D %zu\n", idx);
			if (fflush(w.out))
				break;
			continue;
		}
		emit_result(&w, idx, import_result(&w, im));
		imp_free(im);
	}
	flush_batch(&w);
	if (w.cat)
		ps_catalog_close(w.cat);
	ps_save_batch_free(w.store, w.batch);
	ps_store_free(w.store);
	_exit(0);
}

static int worker_start(struct mig *m, struct worker *ws, int nw, int i)
{
	int jp[2], rp[2];
	pid_t pid;
	if (pipe2(jp, O_CLOEXEC))
		return -1;
	if (pipe2(rp, O_CLOEXEC)) {
		close(jp[0]);
		close(jp[1]);
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		close(jp[0]);
		close(jp[1]);
		close(rp[0]);
		close(rp[1]);
		return -1;
	}
	if (pid == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		sigaction(SIGINT, &sa, NULL);    /* the parent decides when to stop */
		sa.sa_handler = SIG_DFL;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);  /* parent killed: so are we */
		if (getppid() == 1)
			_exit(EXIT_FAIL);
		for (int k = 0; k < nw; k++) {
			if (k == i || ws[k].pid <= 0)
				continue;
			close(ws[k].job_fd);
			close(ws[k].res_fd);
		}
		close(jp[1]);
		close(rp[0]);
		worker_main(m, jp[0], rp[1]);
	}
	close(jp[0]);
	close(rp[1]);
	ws[i].pid = pid;
	ws[i].job_fd = jp[1];
	ws[i].res_fd = rp[0];
	ws[i].len = 0;
	ws[i].busy = -1;
	ws[i].cur_bytes = ws[i].cur_files = 0;
	return 0;
}

/* ------------------------------------------------------------ the parent */

struct tally {
	size_t done, imported, unchanged, failed, partial, over_quota;
	uint64_t logical, processed, new_bytes, files;
};

struct progress {
	int enabled, drawn;
	int64_t last, start;
};

static void draw_progress(struct mig *m, struct progress *pr, const struct tally *t,
			  const struct worker *ws, int nw, size_t todo, int force)
{
	int64_t now = mono_ms(), el;
	uint64_t bytes = t->processed;
	int running = 0;
	char b[32], rate[32], eta[32] = "-";
	if (!pr->enabled || (!force && now - pr->last < 250))
		return;
	pr->last = now;
	for (int i = 0; i < nw; i++)
		if (ws[i].pid > 0 && ws[i].busy >= 0) {
			running++;
			bytes += ws[i].cur_bytes;
		}
	el = now - pr->start;
	ps_format_size(bytes, b, sizeof(b));
	ps_format_size(el > 0 ? (uint64_t)((double)bytes * 1000.0 / (double)el) : 0, rate, sizeof(rate));
	if (t->done && todo > t->done) {
		int64_t left = (int64_t)((double)el / 1000.0 * (double)(todo - t->done) / (double)t->done);
		snprintf(eta, sizeof(eta), "%lld:%02lld:%02lld", (long long)(left / 3600),
			 (long long)(left / 60 % 60), (long long)(left % 60));
	} else if (t->done == todo) {
		snprintf(eta, sizeof(eta), "0:00:00");
	}
	fprintf(stderr, "\r\033[Kmigrate: %zu/%zu projects (%zu imported, %zu unchanged, %zu failed), "
			"%d running, %s processed, %s/s, ETA %s",
		t->done, todo, t->imported, t->unchanged, t->failed, running, b, rate, eta);
	pr->drawn = 1;
	(void)m;
}

static void clear_progress(struct progress *pr)
{
	if (pr->drawn)
		fputs("\r\033[K", stderr);
	pr->drawn = 0;
}

static uint64_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void account(struct mig *m, struct proj *p, struct tally *t, struct progress *pr)
{
	json_t *r = p->result;
	const char *st = r ? json_string_value(json_object_get(r, "status")) : NULL;
	t->done++;
	if (!st || !strcmp(st, "failed")) {
		const char *why = r ? json_string_value(json_object_get(r, "reason")) : NULL;
		if (p->state != ST_FAILED)
			fail_proj(p, xstrdup(why ? why : "failed"));
		t->failed++;
		if (!pr->enabled && !m->cli->json && pr->start) {
			char *e = escape_name(p->dir);
			cli_error("migrate: '%s': %s", e, p->reason);
			free(e);
		}
	} else {
		p->state = !strcmp(st, "unchanged") ? ST_UNCHANGED : ST_IMPORTED;
		if (p->state == ST_UNCHANGED)
			t->unchanged++;
		else
			t->imported++;
		if (jint(r, "errors"))
			t->partial++;
		if (json_is_true(json_object_get(r, "over_quota")))
			t->over_quota++;
		t->logical += jint(r, "logical_bytes");
		t->new_bytes += jint(r, "new_bytes");
		t->files += jint(r, "files");
	}
	if (r)
		t->processed += jint(r, "processed_bytes");
}

/* Reads what a worker wrote; returns -1 at end of file. */
static int drain(struct mig *m, struct worker *w, struct tally *t, struct progress *pr)
{
	char tmp[65536];
	ssize_t n = read(w->res_fd, tmp, sizeof(tmp));
	char *nl, *start;
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0)
		return -1;
	if (w->len + (size_t)n + 1 > w->cap) {
		size_t cap = (w->len + (size_t)n + 1) * 2;
		char *nb = realloc(w->buf, cap);
		if (!nb)
			return -1;
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, tmp, (size_t)n);
	w->len += (size_t)n;
	start = w->buf;
	while ((nl = memchr(start, '\n', w->len - (size_t)(start - w->buf)))) {
		*nl = 0;
		if (start[0] == 'P') {
			unsigned long long f, b;
			size_t idx;
			if (sscanf(start, "P %zu %llu %llu", &idx, &f, &b) == 3 && (long)idx == w->busy) {
				w->cur_files = f;
				w->cur_bytes = b;
			}
		} else if (start[0] == 'D') {
			/* the project waits for its worker's group commit: the
			 * worker takes the next one meanwhile */
			size_t idx = strtoul(start + 2, NULL, 10);
			if ((long)idx == w->busy) {
				long *nv = realloc(w->held, (w->nheld + 1) * sizeof(*nv));
				if (!nv)
					return -1;
				w->held = nv;
				w->held[w->nheld++] = w->busy;
				w->busy = -1;
				w->cur_bytes = w->cur_files = 0;
			}
		} else if (start[0] == 'R') {
			char *end;
			size_t idx = strtoul(start + 2, &end, 10);
			size_t k;
			for (k = 0; k < w->nheld && w->held[k] != (long)idx; k++)
				;
			if (idx < m->np && k < w->nheld) {
				json_error_t je;
				struct proj *p = &m->p[idx];
				w->held[k] = w->held[--w->nheld];
				p->result = json_loads(end, 0, &je);
				if (!p->result)
					fail_proj(p, xstrdup("unreadable result from its worker"));
				account(m, p, t, pr);
			} else if (idx < m->np && (long)idx == w->busy) {
				json_error_t je;
				struct proj *p = &m->p[idx];
				p->result = json_loads(end, 0, &je);
				if (!p->result)
					fail_proj(p, xstrdup("unreadable result from its worker"));
				w->busy = -1;
				w->cur_bytes = w->cur_files = 0;
				account(m, p, t, pr);
			}
		}
		start = nl + 1;
	}
	w->len -= (size_t)(start - w->buf);
	memmove(w->buf, start, w->len);
	return 0;
}

/* A worker is gone: its project (if any) failed. */
static void reap(struct mig *m, struct worker *w, struct tally *t, struct progress *pr,
		 const char *why)
{
	int status = 0;
	close(w->job_fd);
	close(w->res_fd);
	waitpid(w->pid, &status, 0);
	if (w->busy >= 0) {
		struct proj *p = &m->p[w->busy];
		if (why)
			fail_proj(p, xstrdup(why));
		else if (WIFSIGNALED(status))
			fail_proj(p, xasprintf("its worker process died (signal %d: %s)", WTERMSIG(status),
					       strsignal(WTERMSIG(status))));
		else
			fail_proj(p, xasprintf("its worker process exited (status %d)",
					       WIFEXITED(status) ? WEXITSTATUS(status) : -1));
		p->result = NULL;
		account(m, p, t, pr);
	}
	/* saved but not committed: nothing of them was published */
	for (size_t k = 0; k < w->nheld; k++) {
		struct proj *p = &m->p[w->held[k]];
		if (why)
			fail_proj(p, xstrdup(why));
		else
			fail_proj(p, xstrdup("its worker process ended before its save was published"));
		p->result = NULL;
		account(m, p, t, pr);
	}
	w->nheld = 0;
	w->pid = 0;
	w->busy = -1;
}

static json_t *summary_json(struct mig *m, const struct tally *t, int64_t ms, int interrupted)
{
	json_t *res = json_array(), *failed = json_array(), *oq = json_array(), *part = json_array();
	for (size_t i = 0; i < m->np; i++) {
		struct proj *p = &m->p[i];
		json_t *r = p->result ? json_incref(p->result) : json_object();
		if (!json_object_get(r, "dir"))
			json_object_set_new(r, "dir", cli_json_bytes(p->dir, strlen(p->dir)));
		if (!json_object_get(r, "project"))
			json_object_set_new(r, "project", p->id[0] ? json_string(p->id) : json_null());
		if (p->state == ST_TODO) {
			json_object_set_new(r, "status", json_string("not-done"));
		} else if (p->state == ST_FAILED) {
			json_object_set_new(r, "status", json_string("failed"));
			json_object_set_new(r, "reason", cli_json_bytes(p->reason, strlen(p->reason)));
			json_array_append_new(failed, json_pack("{s:O, s:O, s:O}", "dir",
								 json_object_get(r, "dir"), "project",
								 json_object_get(r, "project"), "reason",
								 json_object_get(r, "reason")));
		}
		if (p->state == ST_IMPORTED || p->state == ST_UNCHANGED) {
			if (json_is_true(json_object_get(r, "over_quota")))
				json_array_append_new(oq, json_pack("{s:s, s:O, s:O}", "project", p->id,
								     "logical_bytes",
								     json_object_get(r, "logical_bytes"),
								     "quota_bytes",
								     json_object_get(r, "quota_bytes")));
			if (jint(r, "errors"))
				json_array_append_new(part, json_pack("{s:s, s:O, s:O}", "project", p->id,
								       "errors", json_object_get(r, "errors"),
								       "skipped",
								       json_object_get(r, "skipped")));
		}
		json_array_append_new(res, r);
	}
	return json_pack("{s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:f, s:o, s:o, s:o, s:o, s:o}",
			 "source", cli_json_bytes(m->src, strlen(m->src)), "interrupted", interrupted,
			 "projects", (json_int_t)m->np, "done", (json_int_t)t->done, "imported",
			 (json_int_t)t->imported, "unchanged", (json_int_t)t->unchanged, "failed",
			 (json_int_t)t->failed, "partial", (json_int_t)t->partial, "over_quota",
			 (json_int_t)t->over_quota, "ignored", (json_int_t)m->nignored, "files",
			 (json_int_t)t->files, "logical_bytes", (json_int_t)t->logical, "processed_bytes",
			 (json_int_t)t->processed, "new_bytes", (json_int_t)t->new_bytes, "duration_ms",
			 (json_int_t)ms, "processed_bytes_per_second",
			 ms > 0 ? (double)t->processed * 1000.0 / (double)ms : 0.0, "failures", failed,
			 "over_quota_projects", oq, "partial_projects", part, "ignored_entries",
			 json_incref(m->ignored), "results", res);
}

static void summary_text(struct mig *m, const struct tally *t, int64_t ms, int interrupted)
{
	char lb[32], rb[32], nb[32], rate[32];
	ps_format_size(t->logical, lb, sizeof(lb));
	ps_format_size(t->processed, rb, sizeof(rb));
	ps_format_size(t->new_bytes, nb, sizeof(nb));
	ps_format_size(ms > 0 ? (uint64_t)((double)t->processed * 1000.0 / (double)ms) : 0, rate,
		       sizeof(rate));
	printf("%s %zu of %zu projects from %s in %.1f s: %zu imported, %zu unchanged, %zu failed\n",
	       interrupted ? "interrupted after" : "migrated", t->done, m->np, m->src, (double)ms / 1000.0,
	       t->imported, t->unchanged, t->failed);
	printf("  %llu files, %s in the projects, %s processed (%s/s), %s new in the store\n",
	       (unsigned long long)t->files, lb, rb, rate, nb);
	if (m->nignored)
		printf("  %zu entries of %s are not directories and were ignored\n", m->nignored, m->src);
	if (t->over_quota) {
		printf("over quota (%zu):\n", t->over_quota);
		for (size_t i = 0; i < m->np; i++) {
			struct proj *p = &m->p[i];
			char u[32], q[32];
			if ((p->state != ST_IMPORTED && p->state != ST_UNCHANGED) ||
			    !json_is_true(json_object_get(p->result, "over_quota")))
				continue;
			ps_format_size(jint(p->result, "logical_bytes"), u, sizeof(u));
			ps_format_size(jint(p->result, "quota_bytes"), q, sizeof(q));
			printf("  %s  %s used, quota %s\n", p->id, u, q);
		}
	}
	if (t->partial) {
		printf("imported with unreadable entries skipped (%zu):\n", t->partial);
		for (size_t i = 0; i < m->np; i++) {
			struct proj *p = &m->p[i];
			json_t *sk, *v;
			size_t k;
			if ((p->state != ST_IMPORTED && p->state != ST_UNCHANGED) ||
			    !jint(p->result, "errors"))
				continue;
			printf("  %s  %llu entries skipped\n", p->id,
			       (unsigned long long)jint(p->result, "errors"));
			sk = json_object_get(p->result, "skipped");
			json_array_foreach(sk, k, v) {
				const char *path = json_string_value(json_object_get(v, "path"));
				const char *er = json_string_value(json_object_get(v, "error"));
				if (k >= 10) {
					printf("    ...\n");
					break;
				}
				printf("    '");
				cli_print_escaped(stdout, path ? path : "?", path ? strlen(path) : 1);
				printf("': %s\n", er ? er : "?");
			}
		}
	}
	if (t->failed) {
		printf("failed (%zu):\n", t->failed);
		for (size_t i = 0; i < m->np; i++) {
			struct proj *p = &m->p[i];
			if (p->state != ST_FAILED)
				continue;
			printf("  '");
			cli_print_escaped(stdout, p->dir, strlen(p->dir));
			printf("'%s%s: ", p->id[0] && strcmp(p->id, p->dir) ? " -> " : "",
			       p->id[0] && strcmp(p->id, p->dir) ? p->id : "");
			cli_print_escaped(stdout, p->reason, strlen(p->reason));
			printf("\n");
		}
	}
	if (interrupted)
		printf("interrupted: run the same command again to go on\n");
}

static int run(struct mig *m)
{
	struct worker *ws;
	struct tally t;
	struct progress pr;
	struct sigaction sa, old_int, old_term, old_hup, old_pipe;
	size_t next = 0, todo = 0;
	int nw = m->jobs, interrupted = 0, told = 0, rc;
	int64_t t0 = mono_ms();

	memset(&t, 0, sizeof(t));
	memset(&pr, 0, sizeof(pr));
	pr.enabled = !m->cli->json && isatty(2) && !getenv("PROJSTORE_NO_PROGRESS");
	/* invalid and duplicate ids are done already (listed in the summary) */
	for (size_t i = 0; i < m->np; i++)
		if (m->p[i].state == ST_FAILED)
			account(m, &m->p[i], &t, &pr);
	pr.start = t0;
	todo = m->np;
	if ((size_t)nw > m->np - t.done)
		nw = (int)(m->np - t.done);
	ws = calloc((size_t)(nw > 0 ? nw : 1), sizeof(*ws));
	if (!ws) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);
	for (int i = 0; i < nw; i++) {
		ws[i].busy = -1;
		if (worker_start(m, ws, nw, i)) {
			cli_error("cannot start a worker process: %s", strerror(errno));
			ws[i].pid = 0;
		}
	}
	for (;;) {
		struct pollfd pf[256];
		int map[256], npf = 0, busy = 0, alive = 0;
		if (g_terminate || g_interrupts > 1) {
			/* stop now: the projects in work stay in maintenance until a rerun */
			for (int i = 0; i < nw; i++)
				if (ws[i].pid > 0)
					kill(ws[i].pid, SIGKILL);
			for (int i = 0; i < nw; i++)
				if (ws[i].pid > 0)
					reap(m, &ws[i], &t, &pr, "interrupted while it was imported");
			interrupted = 1;
			break;
		}
		if (g_interrupts == 1 && !told) {
			told = 1;
			interrupted = 1;
			clear_progress(&pr);
			if (!m->cli->json)
				cli_error("interrupted: finishing the projects in work (interrupt again to "
					  "stop at once)");
		}
		/* hand out work */
		for (int i = 0; i < nw; i++) {
			if (ws[i].pid <= 0 && !interrupted) {
				while (next < m->np && m->p[next].state != ST_TODO)
					next++;
				if (next < m->np && worker_start(m, ws, nw, i))
					ws[i].pid = 0;
			}
			if (ws[i].pid <= 0)
				continue;
			alive++;
			if (ws[i].busy < 0 && !interrupted) {
				char line[32];
				int n;
				while (next < m->np && m->p[next].state != ST_TODO)
					next++;
				if (next < m->np) {
					n = snprintf(line, sizeof(line), "%zu\n", next);
					if (write(ws[i].job_fd, line, (size_t)n) == n) {
						ws[i].busy = (long)next;
						next++;
					}
				}
			}
			if (ws[i].busy >= 0)
				busy++;
			if (npf < 256) {
				pf[npf].fd = ws[i].res_fd;
				pf[npf].events = POLLIN;
				map[npf++] = i;
			}
		}
		while (next < m->np && m->p[next].state != ST_TODO)
			next++;
		if (!busy && (interrupted || next >= m->np || !alive))
			break;
		draw_progress(m, &pr, &t, ws, nw, todo, 0);
		rc = poll(pf, (nfds_t)npf, 250);
		if (rc < 0 && errno != EINTR)
			break;
		for (int k = 0; rc > 0 && k < npf; k++) {
			struct worker *w = &ws[map[k]];
			if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (drain(m, w, &t, &pr) < 0)
				reap(m, w, &t, &pr, NULL);
		}
	}
	/* no more work: workers see end of file and exit */
	for (int i = 0; i < nw; i++) {
		if (ws[i].pid <= 0)
			continue;
		close(ws[i].job_fd);
		ws[i].job_fd = -1;
		/* the worker commits its batch, reports and exits */
		while (drain(m, &ws[i], &t, &pr) == 0)
			;
		reap(m, &ws[i], &t, &pr, NULL);
	}
	for (int i = 0; i < nw; i++) {
		free(ws[i].buf);
		free(ws[i].held);
	}
	free(ws);
	draw_progress(m, &pr, &t, NULL, 0, todo, 1);
	clear_progress(&pr);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	{
		int64_t ms = mono_ms() - t0;
		if (m->cli->json)
			cli_print_json(summary_json(m, &t, ms, interrupted));
		else
			summary_text(m, &t, ms, interrupted);
	}
	if (interrupted)
		return 130;
	if ((t.failed || t.partial) && t.over_quota)
		return EXIT_PARTIAL_QUOTA;
	if (t.over_quota)
		return EXIT_QUOTA;
	if (t.failed || t.partial)
		return EXIT_PARTIAL;
	return EXIT_OK;
}

/* ------------------------------------------------------------ the command */

int cmd_migrate(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "jobs", required_argument, NULL, 'j' },
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "quota", required_argument, NULL, 'q' },
		{ "id-from", required_argument, NULL, 'I' },
		{ "threads", required_argument, NULL, 't' },
		{ "cache-dir", required_argument, NULL, 'C' },
		{ "batch", required_argument, NULL, 'B' },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("migrate");
	struct mig m;
	struct ps_store *store = NULL;
	struct ps_catalog *cat = NULL;
	struct rlimit rl;
	int c, rc, ncpu;
	long v;

	memset(&m, 0, sizeof(m));
	m.cli = cli;
	m.uid = m.gid = -1;
	m.jobs = 0;
	m.batch_max = MIG_BATCH_DEFAULT;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hj:", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (cli_parse_long(optarg, 1, 256, &v))
				return cli_usage(cmd, "invalid number of jobs '%s' (1-256)", optarg);
			m.jobs = (int)v;
			break;
		case 't':
			if (cli_parse_long(optarg, 1, 256, &v))
				return cli_usage(cmd, "invalid thread count '%s'", optarg);
			m.threads = (int)v;
			break;
		case 'u':
		case 'g':
			if (cli_parse_long(optarg, 0, 4294967294L, &v))
				return cli_usage(cmd, "invalid %s '%s'", c == 'u' ? "uid" : "gid", optarg);
			if (c == 'u')
				m.uid = v;
			else
				m.gid = v;
			break;
		case 'q':
			if (!strcmp(optarg, "none")) {
				m.quota = 0;
			} else if (ps_parse_size(optarg, &m.quota) || !m.quota) {
				return cli_usage(cmd, "invalid size '%s' (e.g. 4G, 512M, none)", optarg);
			}
			m.set_quota = 1;
			break;
		case 'I':
			if (!strcmp(optarg, "dirname"))
				m.id_from = ID_DIRNAME;
			else if (!strcmp(optarg, "info.json"))
				m.id_from = ID_INFO_JSON;
			else
				return cli_usage(cmd, "invalid --id-from '%s' (dirname or info.json)", optarg);
			break;
		case 'C':
			snprintf(m.cache_dir, sizeof(m.cache_dir), "%s", optarg);
			break;
		case 'B':
			if (cli_parse_long(optarg, 1, 1024, &v))
				return cli_usage(cmd, "invalid batch size '%s' (1-1024)", optarg);
			m.batch_max = (int)v;
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage(cmd, argc - optind < 1 ? "SRC_ROOT is required" : "too many arguments");
	m.src = argv[optind];
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	/* Two imports per core: a small project's save still waits for the disk
	 * (fsync of its ref and marker, a catalog commit, its group's pack and
	 * segment), which another import's hashing and compression fill; each
	 * save then gets one worker thread (run in the worker process itself).
	 * Measured on 2 cores (bench/results/2026-11-25-migrate-small.txt): with
	 * 4 MiB homes -j 2 99% and -j 4 80% of the single save's rate, with
	 * 1.1 MiB homes both 60%. Capped: every worker holds a catalog
	 * connection and an index. */
	if (!m.jobs)
		m.jobs = 2 * ncpu < 16 ? 2 * ncpu : 16;
	if (!m.threads)
		m.threads = ncpu / m.jobs > 1 ? ncpu / m.jobs : 1;
	if (!m.cache_dir[0])
		default_cache_dir(m.cache_dir, sizeof(m.cache_dir));
	set_identity(&m);
	/* one open directory per level of every walk, in every worker */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	if (!(m.src_real = realpath(m.src, NULL))) {
		cli_error("cannot open '%s': %s", m.src, strerror(errno));
		return EXIT_FAIL;
	}
	if ((rc = cli_open_store(cli, &store)))
		goto out;
	snprintf(m.store_id, sizeof(m.store_id), "%s", ps_store_id(store));
	ps_store_free(store);
	if ((rc = cli_open_catalog(cli, &cat)))
		goto out;
	ps_catalog_close(cat);   /* each worker opens its own */
	if ((rc = list_projects(&m)))
		goto out;
	rc = run(&m);
out:
	for (size_t i = 0; i < m.np; i++) {
		free(m.p[i].dir);
		free(m.p[i].reason);
		json_decref(m.p[i].result);
	}
	free(m.p);
	json_decref(m.ignored);
	free(m.src_real);
	return rc;
}
