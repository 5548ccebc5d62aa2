/*
 * agent.c - the host agent's main loop.
 *
 * Start: the host's row gives the root directory (and the store URL); the
 * agent takes ROOT/.projstore/agent.lock (flock: one agent per root, gone
 * with the process however it dies), removes leftovers of a previous run and
 * puts aside working copies the catalog no longer places here
 * (agent_root.c), then loops every poll interval:
 *
 *   1. heartbeat (hosts.last_heartbeat): other agents and the commands tell
 *      from it whether this agent answers;
 *   2. joins finished jobs (autosave schedule, backoff, retries);
 *   3. operations whose next actor is this host (ps_cat_ops_for_host):
 *      pending ones and running ones (resumed after a crash) start a job each,
 *      at most max_parallel at a time, never two for one project;
 *   4. moves to this host whose old host is down (ps_cat_ops_for_target):
 *      taken over;
 *   5. autosave: the projects deployed here (listed every few seconds) whose
 *      time has come are saved, at most max_parallel at a time, the most
 *      overdue first; the next save is due an interval later (+- jitter), or
 *      after a failure sooner, backing off: base * 2^(failures-1), base =
 *      interval/8 (1 s to 60 s), at most 4 intervals;
 *   6. every reconcile interval, the working copies are checked again.
 *
 * SIGTERM/SIGINT: no new job starts; running jobs finish (each ends in a
 * state the next start resumes from); then the agent exits.  SIGHUP reopens
 * the log file.
 */
#define _GNU_SOURCE
#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t ps_agent_stop;
static volatile sig_atomic_t reopen_log;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reopen_log = 1;
	else
		ps_agent_stop = 1;
}

/* ------------------------------------------------------------ durations */

int ps_agent_parse_duration(const char *s, int64_t *us)
{
	int64_t total = 0;
	const char *p = s;
	if (!s || !*s)
		return -1;
	while (*p) {
		char *end;
		double v;
		int64_t unit;
		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno || v < 0 || v > 1e9)
			return -1;
		p = end;
		if (!strncmp(p, "ms", 2)) {
			unit = 1000;
			p += 2;
		} else if (*p == 's') {
			unit = 1000000;
			p++;
		} else if (*p == 'm') {
			unit = 60LL * 1000000;
			p++;
		} else if (*p == 'h') {
			unit = 3600LL * 1000000;
			p++;
		} else if (*p == 'd') {
			unit = 86400LL * 1000000;
			p++;
		} else if (!*p && p == end && total == 0) {
			unit = 1000000; /* a plain number: seconds */
		} else {
			return -1;
		}
		total += (int64_t)(v * (double)unit);
	}
	*us = total;
	return 0;
}

/* ------------------------------------------------------------ jobs */

static int64_t rnd_range(struct agent *a, int64_t lo, int64_t hi)
{
	if (hi <= lo)
		return lo;
	uint64_t r = ((uint64_t)rand_r(&a->rnd) << 31) ^ (uint64_t)rand_r(&a->rnd);
	return lo + (int64_t)(r % (uint64_t)(hi - lo + 1));
}

/* the time of the next autosave, an interval (+- jitter) from now */
static int64_t next_autosave(struct agent *a, int64_t now)
{
	int64_t d = a->o.autosave_us + rnd_range(a, -a->o.jitter_us, a->o.jitter_us);
	if (d < a->o.poll_us)
		d = a->o.poll_us;
	return now + d;
}

static int64_t backoff(struct agent *a, int fails)
{
	int64_t base = a->o.autosave_us / 8, d;
	if (base < 1000000)
		base = 1000000;
	if (base > 60000000)
		base = 60000000;
	d = base;
	for (int i = 1; i < fails && d < 4 * a->o.autosave_us; i++)
		d *= 2;
	if (d > 4 * a->o.autosave_us && 4 * a->o.autosave_us >= base)
		d = 4 * a->o.autosave_us;
	return d + rnd_range(a, 0, d / 10);
}

static struct asv *asv_find(struct agent *a, const char *id)
{
	size_t lo = 0, hi = a->nasv;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(a->asv[mid].id, id);
		if (!c)
			return &a->asv[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int start_job(struct agent *a, enum job_kind kind, const struct ps_cat_op *op,
		     const char *project, int takeover)
{
	struct job *j = calloc(1, sizeof(*j));
	sigset_t all, old;
	int rc;
	if (!j)
		return -1;
	j->a = a;
	j->kind = kind;
	j->takeover = takeover;
	if (op)
		j->op = *op;
	agent_copy(j->project, sizeof(j->project), project);
	pthread_mutex_lock(&a->lock);
	j->next = a->jobs;
	a->jobs = j;
	if (kind == JOB_OP)
		a->nops++;
	else
		a->nsaves++;
	pthread_mutex_unlock(&a->lock);
	/* signals go to the main thread only */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&j->thread, NULL, agent_job_main, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	j->joinable = rc == 0;
	if (rc) {
		alog(a, "%s: cannot start a thread: %s", project, strerror(rc));
		pthread_mutex_lock(&a->lock);
		j->finished = 1;
		j->outcome = OUT_RETRY;
		pthread_mutex_unlock(&a->lock);
		return -1;
	}
	if (kind == JOB_OP)
		alog(a, "%s: operation %" PRId64 " (%s%s%s) started%s", project, op->id, op->kind,
		     op->target_host[0] ? " to " : "", op->target_host,
		     takeover ? ", taking it over" : "");
	return 0;
}

static int retry_blocked(struct agent *a, int64_t op, int64_t now)
{
	for (size_t i = 0; i < a->nretry; i++)
		if (a->retry[i].op == op)
			return now < a->retry[i].not_before;
	return 0;
}

/* returns 1 when the operation was not waiting yet (worth a log line) */
static int retry_later(struct agent *a, int64_t op, int64_t when)
{
	for (size_t i = 0; i < a->nretry; i++)
		if (a->retry[i].op == op) {
			a->retry[i].not_before = when;
			return 0;
		}
	struct retry *nv = realloc(a->retry, (a->nretry + 1) * sizeof(*nv));
	if (!nv)
		return 1;
	a->retry = nv;
	a->retry[a->nretry].op = op;
	a->retry[a->nretry].not_before = when;
	a->nretry++;
	return 1;
}

static void reap_jobs(struct agent *a)
{
	for (;;) {
		struct job *j = NULL, **pp;
		int64_t now = agent_mono_us();
		pthread_mutex_lock(&a->lock);
		for (pp = &a->jobs; *pp; pp = &(*pp)->next)
			if ((*pp)->finished) {
				j = *pp;
				*pp = j->next;
				if (j->kind == JOB_OP)
					a->nops--;
				else
					a->nsaves--;
				break;
			}
		pthread_mutex_unlock(&a->lock);
		if (!j)
			return;
		if (j->joinable)
			pthread_join(j->thread, NULL);
		if (j->outcome == OUT_FAILED || j->outcome == OUT_SKIPPED)
			agent_reconcile_project(a, j->project); /* is the copy still ours? */
		if (j->kind == JOB_OP) {
			if (j->outcome == OUT_RETRY) {
				int64_t d = a->o.poll_us > 1000000 ? a->o.poll_us : 1000000;
				/* --once: one try each, so that it ends */
				if (retry_later(a, j->op.id, a->o.once ? INT64_MAX : now + d) && j->result[0])
					alog(a, "%s: operation %" PRId64 " (%s) waits: %s", j->project, j->op.id,
					     j->op.kind, j->result);
			}
		} else {
			pthread_mutex_lock(&a->lock);
			struct asv *s = asv_find(a, j->project);
			if (s) {
				switch (j->outcome) {
				case OUT_OK:
				case OUT_SKIPPED:
					s->fails = 0;
					s->due = next_autosave(a, now);
					break;
				case OUT_FAILED:
					s->fails++;
					s->due = now + backoff(a, s->fails);
					alog(a, "%s: autosave failed (%d in a row), next try in %.0f s: %s",
					     j->project, s->fails, (double)(s->due - now) / 1e6, j->result);
					break;
				default: /* busy elsewhere: soon again */
					s->due = now + (a->o.autosave_us < 5000000 ? a->o.autosave_us : 5000000);
					break;
				}
			}
			pthread_mutex_unlock(&a->lock);
			if (a->o.verbose && j->outcome == OUT_OK)
				alog(a, "%s: autosave: %s", j->project, j->result);
		}
		free(j);
	}
}

static int running_jobs(struct agent *a)
{
	pthread_mutex_lock(&a->lock);
	int n = a->nops + a->nsaves;
	pthread_mutex_unlock(&a->lock);
	return n;
}

/* ------------------------------------------------------------ polling */

/* starts the operations this host has to act on; returns how many started */
static int poll_ops(struct agent *a)
{
	struct ps_cat_op *ops = NULL;
	size_t n = 0;
	struct ps_error err;
	int64_t now = agent_mono_us();
	int started = 0;
	ps_error_clear(&err);
	if (ps_cat_ops_for_host(a->cat, a->host, &ops, &n, &err)) {
		alog(a, "cannot read the operations: %s", err.msg);
		return 0;
	}
	/* forget retries of operations that are no longer active here */
	for (size_t i = 0; i < a->nretry;) {
		int seen = 0;
		for (size_t k = 0; k < n && !seen; k++)
			seen = ops[k].id == a->retry[i].op;
		if (!seen)
			a->retry[i] = a->retry[--a->nretry];
		else
			i++;
	}
	for (size_t i = 0; i < n && !ps_agent_stop; i++) {
		if (a->nops >= a->o.max_parallel)
			break;
		if (agent_project_busy(a, ops[i].project) || retry_blocked(a, ops[i].id, now))
			continue;
		if (!start_job(a, JOB_OP, &ops[i], ops[i].project, 0))
			started++;
	}
	free(ops);
	ops = NULL;
	n = 0;
	if (ps_cat_ops_for_target(a->cat, a->host, &ops, &n, &err)) {
		alog(a, "cannot read the operations: %s", err.msg);
		return started;
	}
	for (size_t i = 0; i < n && !ps_agent_stop; i++) {
		struct ps_cat_host h;
		if (strcmp(ops[i].kind, "move") || a->nops >= a->o.max_parallel)
			continue;
		if (agent_project_busy(a, ops[i].project) || retry_blocked(a, ops[i].id, now))
			continue;
		if (ps_cat_host_get(a->cat, ops[i].host, &h, &err) == PS_OK &&
		    ps_cat_host_alive(&h, ps_cat_now()))
			continue; /* the old host answers: it acts */
		if (!start_job(a, JOB_OP, &ops[i], ops[i].project, 1))
			started++;
	}
	free(ops);
	return started;
}

/* the projects deployed here, with their autosave state */
static void scan_deployed(struct agent *a, int due_now)
{
	struct ps_cat_query q = PS_CAT_QUERY_INIT;
	struct ps_cat_project *v = NULL;
	struct asv *nv;
	size_t n = 0;
	struct ps_error err;
	int64_t now = agent_mono_us();
	q.host = a->host;
	ps_error_clear(&err);
	if (ps_cat_project_list(a->cat, &q, &v, &n, &err)) {
		alog(a, "cannot list the projects deployed here: %s", err.msg);
		return;
	}
	nv = calloc(n ? n : 1, sizeof(*nv));
	if (!nv) {
		free(v);
		return;
	}
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < n; i++) {
		struct asv *old = asv_find(a, v[i].id);
		agent_copy(nv[i].id, sizeof(nv[i].id), v[i].id);
		if (old) {
			nv[i].due = old->due;
			nv[i].fails = old->fails;
		} else {
			/* new here (deployed, or the agent started): a full interval,
			 * spread over the jitter, before the first save */
			nv[i].due = due_now ? now : next_autosave(a, now);
		}
	}
	free(a->asv);
	a->asv = nv; /* ordered by id, as listed */
	a->nasv = n;
	pthread_mutex_unlock(&a->lock);
	free(v);
}

static int due_cmp(const void *x, const void *y)
{
	const struct asv *p = x, *q = y;
	return p->due < q->due ? -1 : p->due > q->due;
}

/* starts the autosaves whose time has come, most overdue first */
static int run_autosaves(struct agent *a)
{
	struct asv *due = NULL;
	size_t nd = 0;
	int64_t now = agent_mono_us();
	int started = 0;
	if (a->o.autosave_us <= 0 && !a->o.once)
		return 0;
	pthread_mutex_lock(&a->lock);
	if (a->nasv)
		due = malloc(a->nasv * sizeof(*due));
	for (size_t i = 0; due && i < a->nasv; i++)
		if (a->asv[i].due <= now)
			due[nd++] = a->asv[i];
	pthread_mutex_unlock(&a->lock);
	if (nd)
		qsort(due, nd, sizeof(*due), due_cmp);
	for (size_t i = 0; i < nd && !ps_agent_stop; i++) {
		if (a->nsaves >= a->o.max_parallel)
			break;
		if (agent_project_busy(a, due[i].id))
			continue;
		if (!start_job(a, JOB_AUTOSAVE, NULL, due[i].id, 0))
			started++;
		if (a->o.once) {
			/* one save each in a single round */
			pthread_mutex_lock(&a->lock);
			struct asv *s = asv_find(a, due[i].id);
			if (s)
				s->due = INT64_MAX;
			pthread_mutex_unlock(&a->lock);
		}
	}
	free(due);
	return started;
}

static void heartbeat(struct agent *a)
{
	struct ps_error err;
	ps_error_clear(&err);
	if (ps_cat_host_heartbeat(a->cat, a->host, &err)) {
		if (a->catalog_ok)
			alog(a, "heartbeat failed: %s (retrying every poll)", err.msg);
		a->catalog_ok = 0;
		return;
	}
	if (!a->catalog_ok)
		alog(a, "catalog %s answers", ps_catalog_name(a->cat));
	a->catalog_ok = 1;
}

static void wait_poll(struct agent *a, int64_t us)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(us / 1000000);
	ts.tv_nsec += (long)(us % 1000000) * 1000;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&a->lock);
	int any_finished = 0;
	for (struct job *j = a->jobs; j; j = j->next)
		any_finished |= j->finished;
	if (!any_finished && !ps_agent_stop)
		pthread_cond_timedwait(&a->cond, &a->lock, &ts);
	pthread_mutex_unlock(&a->lock);
}

/* ------------------------------------------------------------ run */

static int setup(struct agent *a, const struct ps_agent_opts *o, struct ps_error *err)
{
	struct ps_cat_host h;
	struct ps_store *st = NULL;
	int rc;

	a->o = *o;
	a->lock_fd = -1;
	if (a->o.max_parallel < 1)
		a->o.max_parallel = 1;
	if (a->o.poll_us < 10000)
		a->o.poll_us = 10000;
	if (a->o.lease_us < 1000000)
		a->o.lease_us = 1000000;
	if (a->o.reconcile_us < a->o.poll_us)
		a->o.reconcile_us = a->o.poll_us;
	if (a->o.jitter_us > a->o.autosave_us / 2)
		a->o.jitter_us = a->o.autosave_us / 2;
	agent_copy(a->host, sizeof(a->host), o->host);
	a->rnd = (unsigned)time(NULL) ^ (unsigned)getpid();
	pthread_mutex_init(&a->lock, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&a->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	if ((rc = agent_log_open(&a->log, o->log_path, o->log_max_bytes, o->log_keep, err)))
		return rc;
	if (o->catalog && *o->catalog) {
		agent_copy(a->catalog_spec, sizeof(a->catalog_spec), o->catalog);
	} else if ((rc = ps_catalog_default_spec(o->store ? o->store : o->fallback_store,
						 a->catalog_spec, sizeof(a->catalog_spec), err))) {
		return rc == PS_ENOTFOUND ? PS_EINVAL : rc;
	}
	if ((rc = ps_catalog_open(&a->cat, a->catalog_spec, NULL, err)))
		return rc;
	if ((rc = ps_cat_host_get(a->cat, a->host, &h, err)))
		return rc;
	if (!h.root[0])
		return agent_err(err, PS_EINVAL, "host %s has no root directory (projstore host add %s --root DIR)",
				 a->host, a->host);
	agent_copy(a->root, sizeof(a->root), h.root);
	if (o->store && *o->store)
		agent_copy(a->store, sizeof(a->store), o->store);
	else if (h.store_url[0])
		agent_copy(a->store, sizeof(a->store), h.store_url);
	else
		agent_copy(a->store, sizeof(a->store), o->fallback_store);
	if (o->cache_dir && *o->cache_dir)
		agent_copy(a->cache_dir, sizeof(a->cache_dir), o->cache_dir);
	if ((rc = ps_store_open(&st, a->store, err)))
		return rc;
	agent_copy(a->store_id, sizeof(a->store_id), ps_store_id(st));
	ps_store_free(st);
	if ((rc = agent_root_prepare(a, err)))
		return rc;
	return PS_OK;
}

int ps_agent_run(const struct ps_agent_opts *o, struct ps_error *err)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct sigaction sa;
	int rc, rounds = 0;

	if (!a)
		return agent_err(err, PS_ERROR, "out of memory");
	if (!o->host || !*o->host) {
		free(a);
		return agent_err(err, PS_EINVAL, "no host name given (--host NAME)");
	}
	ps_agent_stop = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = setup(a, o, err);
	if (rc)
		goto out;
	alog(a, "agent %s started (pid %ld): root %s, store %s, catalog %s, autosave every %.0f s "
		"(+- %.0f s), %d at a time, lease %.0f s",
	     a->host, (long)getpid(), a->root, a->store, ps_catalog_name(a->cat),
	     (double)a->o.autosave_us / 1e6, (double)a->o.jitter_us / 1e6, a->o.max_parallel,
	     (double)a->o.lease_us / 1e6);
	/* copies placed elsewhere while this agent was away go aside before
	 * anything else happens here */
	agent_reconcile(a);
	a->next_reconcile = agent_mono_us() + a->o.reconcile_us;
	a->catalog_ok = 1;
	while (!ps_agent_stop) {
		int64_t now = agent_mono_us();
		int started = 0;
		if (reopen_log) {
			reopen_log = 0;
			agent_log_reopen(&a->log);
		}
		heartbeat(a);
		reap_jobs(a);
		if (a->catalog_ok) {
			if (now >= a->next_reconcile) {
				agent_reconcile(a);
				a->next_reconcile = now + a->o.reconcile_us;
			}
			started += poll_ops(a);
			if (now >= a->next_scan) {
				int64_t period = a->o.autosave_us / 2;
				if (period > 10000000)
					period = 10000000;
				if (period < a->o.poll_us)
					period = a->o.poll_us;
				scan_deployed(a, a->o.once);
				/* --once: one save of each project deployed now */
				a->next_scan = a->o.once ? INT64_MAX : now + period;
			}
			started += run_autosaves(a);
			agent_host_tick(a);
		}
		rounds++;
		if (a->o.once && !started && !running_jobs(a) && rounds > 1)
			break;
		wait_poll(a, a->o.poll_us);
	}
	if (ps_agent_stop)
		alog(a, "stopping: waiting for %d running job(s) to finish", running_jobs(a));
	while (running_jobs(a)) {
		wait_poll(a, 200000);
		reap_jobs(a);
	}
	alog(a, "agent %s stopped", a->host);
	rc = PS_OK;
out:
	reap_jobs(a);
	while (a->nspool > 0)
		ps_store_free(a->spool[--a->nspool]);
	agent_root_release(a);
	ps_catalog_close(a->cat);
	if (a->log.max)
		agent_log_close(&a->log);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	free(a->asv);
	free(a->retry);
	free(a);
	return rc;
}
