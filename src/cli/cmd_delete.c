/* cmd_delete.c - projstore delete PROJECT [--purge] */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <string.h>

/* seconds to wait for a running save of the project */
#define DELETE_LOCK_TIMEOUT 60.0

int cmd_delete(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { { "purge", no_argument, NULL, 'p' },
					     CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("delete");
	struct ps_store *store = NULL;
	struct ps_error err;
	size_t removed = 0;
	int c, rc, purge = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'p')
			purge = 1;
		else if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	}
	if (argc - optind != 1)
		return cli_usage(cmd, "expected one PROJECT");
	if ((rc = cli_check_project(cmd, argv[optind])))
		return rc;
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ps_error_clear(&err);
	rc = ps_project_delete(store, argv[optind], purge, DELETE_LOCK_TIMEOUT, &removed, &err);
	ps_store_free(store);
	if (rc)
		return cli_fail(&err);
	if (cli->json)
		cli_print_json(json_pack("{s:s, s:I, s:b}", "project", argv[optind], "removed",
					 (json_int_t)removed, "purged", purge));
	else
		printf("%s: deleted %zu snapshots%s; the data is freed by the next 'projstore gc'\n",
		       argv[optind], removed, purge ? " and the settings" : "");
	return 0;
}
