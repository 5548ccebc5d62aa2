/*
 * cmd_where.c - projstore where PROJECT: the location, read fresh.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "projstore_catalog.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

int cmd_where(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("where");
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	if (argc - optind != 1)
		return cli_usage(cmd, "expected PROJECT");
	const char *id = argv[optind];
	if ((rc = cli_check_project(cmd, id)))
		return rc;
	struct ps_catalog *cat;
	if ((rc = cli_open_catalog(cli, &cat)))
		return rc;
	struct ps_error err;
	struct ps_cat_project p;
	struct ps_cat_host h;
	char path[1200] = "";
	ps_error_clear(&err);
	rc = ps_cat_project_get(cat, id, &p, &err);
	if (rc == PS_ENOTFOUND) {
		/* unknown to the catalog: not deployed anywhere */
		memset(&p, 0, sizeof(p));
		snprintf(p.id, sizeof(p.id), "%s", id);
		snprintf(p.status, sizeof(p.status), "unknown");
		p.uid = -1;
		rc = PS_OK;
	}
	if (rc == PS_OK && p.host[0] && ps_cat_host_get(cat, p.host, &h, &err) == PS_OK)
		snprintf(path, sizeof(path), "%s/%s", h.root, id);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return cli_fail(&err);
	if (cli->json) {
		json_t *j = json_pack("{s:s, s:o, s:s, s:o}", "project", id, "host",
				      p.host[0] ? json_string(p.host) : json_null(), "status", p.status,
				      "path", path[0] ? json_string(path) : json_null());
		cli_print_json(j);
	} else {
		printf("%s\n", p.host);
	}
	return 0;
}
