/*
 * cmd_where.c - projstore where PROJECT: the location, read fresh; from the
 * catalog, or with --api (or $PROJSTORE_API) from a `projstore serve`, whose
 * open catalog connection answers at once (cli_api.c).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "cli_api.h"
#include "projstore_catalog.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_API = 1000 };

int cmd_where(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS,
					    { "api", required_argument, NULL, OPT_API },
					    { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("where");
	const char *api = NULL;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == OPT_API) {
			api = optarg;
			continue;
		}
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	}
	if (argc - optind != 1)
		return cli_usage(cmd, "expected PROJECT");
	const char *id = argv[optind];
	if ((rc = cli_check_project(cmd, id)))
		return rc;
	if ((api = cli_api_url(cli, api)))
		return cli_api_where(api, id, cli->json);
	struct ps_catalog *cat;
	if ((rc = cli_open_catalog(cli, &cat)))
		return rc;
	struct ps_error err;
	struct ps_cat_where w;
	ps_error_clear(&err);
	rc = ps_cat_where(cat, id, &w, &err);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return cli_fail(&err);
	if (cli->json)
		cli_print_json(ps_cat_where_json(&w));
	else
		printf("%s\n", w.host);
	return 0;
}
