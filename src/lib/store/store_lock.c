/*
 * store_lock.c - per-project write locks in locks/<name>.lock.
 *
 * A lock file is text:
 *     host NAME
 *     pid N
 *     boot_id ID            (/proc/sys/kernel/random/boot_id)
 *     created NS            (ns since the epoch)
 *     expires NS
 *
 * Acquire: write a complete temp file, then link() it to the lock name; link
 * fails with EEXIST when the lock is held, so the lock file is always whole.
 * A held lock is stale when its holder is on this host with this boot id and
 * its process is gone (broken at once), when it is on this host from an
 * earlier boot, or when its expiry has passed (another host that died).
 * Breaking: rename the lock to a unique name (only one breaker can win that
 * rename), check that what was renamed is still the stale lock we judged, and
 * remove it; if someone else's fresh lock was caught instead, it is renamed
 * back with link() (never overwriting).
 * Holders of long saves call ps_lock_refresh() to push the expiry forward:
 * it publishes a new lock file with rename() only if the current file is
 * still theirs.
 *
 * Nothing here is fsynced (neither the lock file nor the directory after the
 * link or rename).  A lock only matters while its holder runs, and the
 * namespace is coherent between running processes without fsync (on a
 * local file system and through GlusterFS alike).  A crash that could lose
 * or tear an unsynced lock also ends its holder: a lock from an earlier boot
 * is stale, a vanished one was its holder's only, and a torn (empty or
 * partial) one parses as damaged and is treated as expired.
 */
#define _GNU_SOURCE
#include "store_int.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct ps_lock {
	struct ps_store *s;
	char path[PATH_MAX];
	char token[256];      /* our "host pid boot created" identity */
	double ttl;
	int64_t created;
};

struct lock_info {
	char host[256];
	long pid;
	char boot[256];
	int64_t created, expires;
};

static int parse_lock(const char *text, struct lock_info *li)
{
	const char *p = text;
	memset(li, 0, sizeof(*li));
	while (*p) {
		char key[32], val[256];
		if (sscanf(p, "%31s %255s", key, val) == 2) {
			if (!strcmp(key, "host"))
				snprintf(li->host, sizeof(li->host), "%s", val);
			else if (!strcmp(key, "pid"))
				li->pid = strtol(val, NULL, 10);
			else if (!strcmp(key, "boot_id"))
				snprintf(li->boot, sizeof(li->boot), "%s", val);
			else if (!strcmp(key, "created"))
				li->created = strtoll(val, NULL, 10);
			else if (!strcmp(key, "expires"))
				li->expires = strtoll(val, NULL, 10);
		}
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return li->host[0] && li->pid > 0 ? 0 : -1;
}

static int lock_is_stale(const struct lock_info *li)
{
	if (!strcmp(li->host, ps_hostname())) {
		if (strcmp(li->boot, ps_boot_id()))
			return 1;
		if (kill((pid_t)li->pid, 0) && errno == ESRCH)
			return 1;
		return 0;
	}
	return li->expires && li->expires < ps_now_ns();
}

static int write_lock_tmp(struct ps_lock *l, char *tmp, size_t tmplen, struct ps_error *err)
{
	struct ps_backend *be = l->s->be;
	struct ps_bfile *f = NULL;
	char text[1024];
	int n, rc;
	int64_t exp = ps_now_ns() + (int64_t)(l->ttl * 1e9);
	n = snprintf(text, sizeof(text), "host %s\npid %d\nboot_id %s\ncreated %lld\nexpires %lld\n",
		     ps_hostname(), (int)getpid(), ps_boot_id()[0] ? ps_boot_id() : "unknown",
		     (long long)l->created, (long long)exp);
	ps_be_tmp_name("locks", tmp, tmplen);
	rc = be->ops->create_excl(be, tmp, &f, err);
	if (rc)
		return rc;
	rc = be->ops->write(f, text, (size_t)n, err);
	be->ops->close(f);
	if (rc)
		be->ops->unlink(be, tmp, NULL);
	return rc;
}

static int read_lock(struct ps_store *s, const char *path, struct lock_info *li, char **raw,
		     struct ps_error *err)
{
	void *buf = NULL;
	size_t len;
	int rc = ps_be_read_all(s->be, path, 4096, &buf, &len, err);
	if (rc)
		return rc;
	if (parse_lock(buf, li)) {
		/* unparsable (e.g. torn by a crash of an old version): treat as
		 * expired so it cannot block forever */
		memset(li, 0, sizeof(*li));
		snprintf(li->host, sizeof(li->host), "(damaged lock file)");
		li->expires = 1;
	}
	if (raw)
		*raw = buf;
	else
		ps_free(buf);
	return PS_OK;
}

static int try_break(struct ps_store *s, const char *path, const char *seen)
{
	char aside[PATH_MAX];
	void *buf = NULL;
	size_t len;
	int ok = 0;
	ps_be_tmp_name("locks", aside, sizeof(aside));
	strncat(aside, ".broken", sizeof(aside) - strlen(aside) - 1);
	if (s->be->ops->rename(s->be, path, aside, NULL))
		return 0;
	if (ps_be_read_all(s->be, aside, 4096, &buf, &len, NULL) == PS_OK) {
		if (!strcmp(buf, seen))
			ok = 1;
		ps_free(buf);
	}
	if (ok)
		s->be->ops->unlink(s->be, aside, NULL);
	else if (s->be->ops->link(s->be, aside, path, NULL) == PS_OK)
		s->be->ops->unlink(s->be, aside, NULL);
	/* else: a third party holds the lock now; the caught file stays aside
	 * for check to report */
	return ok;
}

int ps_lock_acquire(struct ps_store *s, const char *name, double timeout, double ttl,
		    struct ps_lock **out, struct ps_error *err)
{
	struct ps_lock *l = ps_calloc(1, sizeof(*l));
	int64_t deadline = ps_mono_ns() + (int64_t)(timeout * 1e9);
	char tmp[PATH_MAX];
	long sleep_ms = 50;
	int rc;
	if (!l)
		return ps_err(err, PS_ERROR, "out of memory");
	l->s = s;
	l->ttl = ttl > 0 ? ttl : 600;
	l->created = ps_now_ns();
	snprintf(l->path, sizeof(l->path), "locks/%s.lock", name);
	for (;;) {
		struct lock_info li;
		char *raw = NULL;
		rc = write_lock_tmp(l, tmp, sizeof(tmp), err);
		if (rc)
			goto fail;
		rc = ps_be_link_nosync(s->be, tmp, l->path, err);
		s->be->ops->unlink(s->be, tmp, NULL);
		if (rc == PS_OK) {
			*out = l;
			return PS_OK;
		}
		if (rc != PS_EEXISTS)
			goto fail;
		rc = read_lock(s, l->path, &li, &raw, err);
		if (rc == PS_ENOTFOUND)
			continue;     /* released meanwhile */
		if (rc)
			goto fail;
		if (lock_is_stale(&li)) {
			try_break(s, l->path, raw);
			ps_free(raw);
			continue;
		}
		ps_free(raw);
		if (ps_mono_ns() >= deadline) {
			char when[64];
			ps_format_time(li.created, when, sizeof(when));
			rc = ps_err(err, PS_ELOCKED,
				    "project '%s' is locked by process %ld on host '%s' since %s", name,
				    li.pid, li.host, when);
			goto fail;
		}
		ps_sleep_ms(sleep_ms);
		if (sleep_ms < 500)
			sleep_ms *= 2;
	}
fail:
	ps_free(l);
	return rc;
}

int ps_lock_refresh(struct ps_lock *l, struct ps_error *err)
{
	struct lock_info li;
	char tmp[PATH_MAX];
	int rc = read_lock(l->s, l->path, &li, NULL, err);
	if (rc)
		return rc;
	if (strcmp(li.host, ps_hostname()) || li.pid != (long)getpid() || li.created != l->created)
		return ps_err(err, PS_ELOCKED, "lock '%s' was taken over by host '%s'", l->path, li.host);
	rc = write_lock_tmp(l, tmp, sizeof(tmp), err);
	if (rc)
		return rc;
	rc = ps_be_rename_nosync(l->s->be, tmp, l->path, err);
	if (rc)
		l->s->be->ops->unlink(l->s->be, tmp, NULL);
	return rc;
}

void ps_lock_release(struct ps_lock *l)
{
	struct lock_info li;
	int rc = PS_ERROR;
	if (!l)
		return;
	/* a lock we cannot read back would stay until it expires (or, for a
	 * live process, forever): a failure that may pass (out of memory, an
	 * interrupted network read) is tried again; a missing file is gone */
	for (int tries = 0; tries < 3 && rc != PS_OK && rc != PS_ENOTFOUND; tries++)
		rc = read_lock(l->s, l->path, &li, NULL, NULL);
	if (rc == PS_OK && !strcmp(li.host, ps_hostname()) && li.pid == (long)getpid() &&
	    li.created == l->created)
		l->s->be->ops->unlink(l->s->be, l->path, NULL);
	ps_free(l);
}

struct lock_names {
	char **v;
	size_t n, cap;
};

static int collect_lock(void *ctx, const char *name)
{
	struct lock_names *l = ctx;
	size_t len = strlen(name);
	if (len < 6 || strcmp(name + len - 5, ".lock") || !strncmp(name, ".tmp-", 5))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **v = ps_realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = ps_strndup(name, len - 5)))
		return -1;
	l->n++;
	return 0;
}

int ps_lock_scan(struct ps_store *s, ps_lock_scan_fn fn, void *ctx, struct ps_error *err)
{
	struct lock_names l = { 0 };
	int rc = s->be->ops->list(s->be, "locks", collect_lock, &l, err);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear(err);
		rc = PS_OK;
	}
	if (rc > 0)
		rc = ps_err(err, PS_ERROR, "out of memory");
	for (size_t i = 0; i < l.n && !rc; i++) {
		char path[PATH_MAX];
		struct lock_info li;
		struct ps_error e2;
		snprintf(path, sizeof(path), "locks/%s.lock", l.v[i]);
		rc = read_lock(s, path, &li, NULL, &e2);
		if (rc == PS_ENOTFOUND) {
			rc = PS_OK;   /* released meanwhile */
			continue;
		}
		if (rc) {
			if (err)
				*err = e2;
			break;
		}
		rc = fn(ctx, l.v[i], li.created, lock_is_stale(&li));
	}
	for (size_t i = 0; i < l.n; i++)
		ps_free(l.v[i]);
	ps_free(l.v);
	return rc;
}
