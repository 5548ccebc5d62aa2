/*
 * cli_host.c - the hosting commands' shared part: a project's host, root,
 * uid, limits, quota and volumes from the catalog (cli_host.h).
 */
#define _GNU_SOURCE
#include "cli_host.h"
#include "projstore_catalog.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_host_warn(void *ctx, const char *path, const char *msg)
{
	(void)ctx;
	(void)path;
	cli_error("note: %s", msg);
}

int cli_parse_cores(const char *s, double *out)
{
	char *end;
	if (!strcmp(s, "none")) {
		*out = 0;
		return 0;
	}
	double v = strtod(s, &end);
	if (end == s || *end || !isfinite(v) || v < 0 || v > 4096)
		return -1;
	*out = v;
	return 0;
}

int cli_host_load(struct ps_catalog *cat, const char *id, const struct cli_host_opts *o,
		  int assign_uid, struct cli_host *h)
{
	struct ps_error err;
	int rc;
	memset(h, 0, sizeof(*h));
	ps_error_clear(&err);
	snprintf(h->id, sizeof(h->id), "%s", id);
	if ((rc = ps_cat_project_get(cat, id, &h->cp, &err)) != PS_OK)
		return cli_fail(&err);
	snprintf(h->host, sizeof(h->host), "%s", o && o->host ? o->host : h->cp.host);
	if (o && o->root) {
		snprintf(h->root, sizeof(h->root), "%s", o->root);
	} else if (h->host[0]) {
		struct ps_cat_host ch;
		if ((rc = ps_cat_host_get(cat, h->host, &ch, &err)) != PS_OK)
			return cli_fail(&err);
		snprintf(h->root, sizeof(h->root), "%s", ch.root);
	} else {
		cli_error("project %s is not deployed on any host (open it first, or give --root)", id);
		return EXIT_NOTFOUND;
	}
	int64_t uid = h->cp.uid;
	if (uid < 0 && assign_uid) {
		int64_t min, max;
		ps_host_uid_range(&min, &max);
		if ((rc = ps_cat_uid_assign(cat, id, min, max, &uid, &err)) != PS_OK)
			return cli_fail(&err);
	}
	struct ps_host_limits l;
	if ((rc = ps_cat_limits_get(cat, id, &l, &err)) != PS_OK)
		return cli_fail(&err);
	if ((rc = ps_cat_volumes_for(cat, h->host, h->data, sizeof(h->data), h->scratch,
				     sizeof(h->scratch), &err)) != PS_OK)
		return cli_fail(&err);
	struct ps_host_config cfg = PS_HOST_CONFIG_INIT;
	cfg.root = h->root;
	cfg.data = h->data[0] ? h->data : NULL;
	cfg.scratch = h->scratch[0] ? h->scratch : NULL;
	cfg.warn = cli_host_warn;
	h->cfg = cfg;
	h->p.id = h->id;
	h->p.uid = uid;
	h->p.quota_bytes = h->cp.quota_bytes;
	h->p.limits = l;
	return 0;
}
