/*
 * agent_host.c - the agent's hosting part (`projstore agent --hosting`,
 * docs/HOSTING.md): a deployed project gets its own user, a btrfs subvolume
 * with a quota-group limit and a cgroup before the restore (which maps every
 * owner to the project's uid); closing and moving out stop every process of
 * the project before the save, and remove cgroup, network link, user and
 * subvolume after it; every few seconds the limits and quotas in the catalog
 * are applied again (so `limits` and `quota` given on another machine take
 * effect) and each project's usage goes into the catalog (and so /metrics).
 *
 * Without --hosting none of this runs and the agent deploys plain
 * directories as before.
 */
#define _GNU_SOURCE
#include "agent_int.h"
#include "projstore_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOST_TICK_US (5LL * 1000000)
#define STOP_GRACE_MS 3000

struct note_ctx {
	struct job *j;
};

static void note_cb(void *ctx, const char *path, const char *msg)
{
	struct note_ctx *n = ctx;
	(void)path;
	alog(n->j->a, "%s: %s", n->j->project, msg);
}

/* the project as the hosting library needs it; uid assigned if missing */
static int load(struct ps_catalog *cat, struct agent *a, const char *project, int assign,
		struct ps_host_config *cfg, struct ps_host_project *p, char *data, char *scratch,
		size_t vl, struct ps_error *err)
{
	struct ps_cat_project cp;
	int rc = ps_cat_project_get(cat, project, &cp, err);
	if (rc != PS_OK)
		return rc;
	int64_t uid = cp.uid;
	if (uid < 0 && assign) {
		int64_t min, max;
		ps_host_uid_range(&min, &max);
		if ((rc = ps_cat_uid_assign(cat, project, min, max, &uid, err)) != PS_OK)
			return rc;
	}
	memset(p, 0, sizeof(*p));
	p->id = project;
	p->uid = uid;
	p->quota_bytes = cp.quota_bytes;
	if ((rc = ps_cat_limits_get(cat, project, &p->limits, err)) != PS_OK)
		return rc;
	if ((rc = ps_cat_volumes_for(cat, a->host, data, vl, scratch, vl, err)) != PS_OK)
		return rc;
	struct ps_host_config c = PS_HOST_CONFIG_INIT;
	c.root = a->root;
	c.data = data[0] ? data : NULL;
	c.scratch = scratch[0] ? scratch : NULL;
	*cfg = c;
	return PS_OK;
}

int agent_host_prepare(struct job *j, int64_t *uid, struct ps_error *err)
{
	struct agent *a = j->a;
	struct ps_host_config cfg;
	struct ps_host_project p;
	struct ps_host_status st;
	struct note_ctx nc = { j };
	char data[PS_CAT_TEXT_MAX], scratch[PS_CAT_TEXT_MAX];
	*uid = -1;
	if (!a->o.hosting)
		return PS_OK;
	int rc = load(j->cat, a, j->project, 1, &cfg, &p, data, scratch, sizeof(data), err);
	if (rc != PS_OK)
		return rc;
	cfg.warn = note_cb;
	cfg.warn_ctx = &nc;
	if ((rc = ps_hosting_prepare(&cfg, &p, &st, err)) != PS_OK)
		return rc;
	*uid = p.uid;
	return PS_OK;
}

int agent_host_stop(struct job *j, struct ps_error *err)
{
	struct agent *a = j->a;
	struct ps_host_config cfg;
	struct ps_host_project p;
	char data[PS_CAT_TEXT_MAX], scratch[PS_CAT_TEXT_MAX];
	int killed = 0, rc;
	if (!a->o.hosting)
		return PS_OK;
	if ((rc = load(j->cat, a, j->project, 0, &cfg, &p, data, scratch, sizeof(data), err)) !=
		    PS_OK ||
	    (rc = ps_hosting_stop(&cfg, &p, STOP_GRACE_MS, &killed, err)) != PS_OK) {
		alog(a, "%s: stopping its processes: %s", j->project, err->msg);
		return rc;
	}
	if (killed)
		alog(a, "%s: stopped %d process(es) before saving", j->project, killed);
	return PS_OK;
}

void agent_host_teardown(struct job *j, int remove_home)
{
	struct agent *a = j->a;
	struct ps_host_config cfg;
	struct ps_host_project p;
	struct ps_error err;
	char data[PS_CAT_TEXT_MAX], scratch[PS_CAT_TEXT_MAX];
	if (!a->o.hosting)
		return;
	ps_error_clear(&err);
	if (load(j->cat, a, j->project, 0, &cfg, &p, data, scratch, sizeof(data), &err) != PS_OK ||
	    ps_hosting_teardown(&cfg, &p, remove_home, &err) != PS_OK) {
		alog(a, "%s: hosting teardown: %s", j->project, err.msg);
		return;
	}
	ps_cat_usage_clear(j->cat, j->project, NULL);
}

void agent_host_remove_home(struct job *j)
{
	struct agent *a = j->a;
	struct ps_host_config cfg;
	struct ps_host_project p;
	struct ps_error err;
	char data[PS_CAT_TEXT_MAX], scratch[PS_CAT_TEXT_MAX];
	if (!a->o.hosting)
		return;
	ps_error_clear(&err);
	if (load(j->cat, a, j->project, 0, &cfg, &p, data, scratch, sizeof(data), &err) != PS_OK ||
	    ps_hosting_remove_home(&cfg, j->project, &err) != PS_OK)
		alog(a, "%s: removing the working copy: %s", j->project, err.msg);
}

void agent_host_tick(struct agent *a)
{
	static int64_t next;
	int64_t now = agent_mono_us();
	if (!a->o.hosting || now < next)
		return;
	next = now + (a->o.poll_us > HOST_TICK_US ? a->o.poll_us : HOST_TICK_US);
	struct ps_cat_query q = PS_CAT_QUERY_INIT;
	struct ps_cat_project *v = NULL;
	struct ps_error err;
	size_t n = 0;
	q.host = a->host;
	ps_error_clear(&err);
	if (ps_cat_project_list(a->cat, &q, &v, &n, &err) != PS_OK) {
		alog(a, "hosting: cannot list the projects deployed here: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct ps_host_config cfg;
		struct ps_host_project p;
		struct ps_host_usage u;
		char data[PS_CAT_TEXT_MAX], scratch[PS_CAT_TEXT_MAX];
		const char *id = v[i].id;
		if (agent_project_busy(a, id))
			continue; /* a job is deploying, saving or removing it */
		ps_error_clear(&err);
		if (load(a->cat, a, id, 0, &cfg, &p, data, scratch, sizeof(data), &err) != PS_OK ||
		    p.uid < 0 || !ps_hosting_present(&cfg, id))
			continue;
		if (ps_hosting_apply(&cfg, &p, NULL, &err) != PS_OK)
			alog(a, "%s: applying limits: %s", id, err.msg);
		if (ps_hosting_usage(&cfg, id, &u, &err) == PS_OK &&
		    ps_cat_usage_set(a->cat, id, a->host, &u, &err) != PS_OK)
			alog(a, "%s: recording usage: %s", id, err.msg);
	}
	free(v);
}
