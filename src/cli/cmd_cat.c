/* cmd_cat.c - projstore cat PROJECT[@SNAPSHOT] PATH */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <unistd.h>

int cmd_cat(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("cat");
	struct ps_store *store = NULL;
	struct ps_error err;
	char project[72];
	const char *snap;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	if (argc - optind != 2)
		return cli_usage(cmd, "expected PROJECT[@SNAPSHOT] PATH");
	if ((rc = cli_split_ref(cmd, argv[optind], project, sizeof(project), &snap)))
		return rc;
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ps_error_clear(&err);
	rc = ps_cat(store, project, snap, argv[optind + 1], STDOUT_FILENO, &err);
	ps_store_free(store);
	if (rc)
		return cli_fail(&err);
	return 0;
}
