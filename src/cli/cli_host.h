/*
 * cli_host.h - what the hosting commands (run, limits, top, volume, hosting)
 * share: finding a project's host configuration from the catalog.
 */
#ifndef PS_CLI_HOST_H
#define PS_CLI_HOST_H

#include "cli.h"
#include "projstore_host.h"

/* Options of the host-side commands. */
struct cli_host_opts {
	const char *root;   /* --root: the host root (default: the catalog's, of the host) */
	const char *host;   /* --host: the host (default: where the project is deployed) */
};

/* A project's hosting configuration, read from the catalog. */
struct cli_host {
	struct ps_host_config cfg;
	struct ps_host_project p;
	struct ps_cat_project cp;
	char id[PS_CAT_ID_MAX + 1];
	char host[PS_CAT_ID_MAX + 1];
	char root[PS_CAT_TEXT_MAX];
	char data[PS_CAT_TEXT_MAX];
	char scratch[PS_CAT_TEXT_MAX];
};

/*
 * Loads project `id` from the open catalog: its uid (assigned now when
 * assign_uid and it has none), limits, quota, the host it is deployed on (or
 * o->host) with that host's root (or o->root) and volumes.  Prints the error
 * and returns an exit code (0 = ok; EXIT_NOTFOUND when the project is unknown
 * or not deployed and no --root/--host says where).
 */
int cli_host_load(struct ps_catalog *cat, const char *id, const struct cli_host_opts *o,
		  int assign_uid, struct cli_host *out);

/* Prints notes of the hosting library on stderr. */
void cli_host_warn(void *ctx, const char *path, const char *msg);

/* "1.5" -> 1.5 cores; "none" or "0" -> 0. Returns 0 or -1. */
int cli_parse_cores(const char *s, double *out);

#endif
