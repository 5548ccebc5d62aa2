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
 * What a worker does with one project (the import, the group commit, the
 * markers) is migrate_import.c.
 */
#define _GNU_SOURCE
#include "migrate.h"

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

/* ------------------------------------------------------------ small helpers */



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
		migrate_worker_main(m, jp[0], rp[1]);
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
