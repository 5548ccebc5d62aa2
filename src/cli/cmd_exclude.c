/* cmd_exclude.c - projstore exclude PROJECT [PATTERN...|--clear] */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <string.h>

int cmd_exclude(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { { "clear", no_argument, NULL, 'c' }, CLI_COMMON_LONGOPTS,
					     { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("exclude");
	struct ps_store *store = NULL;
	struct ps_error err;
	char **pats = NULL;
	size_t n = 0;
	int c, rc, clear = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'c')
			clear = 1;
		else if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	}
	if (argc - optind < 1)
		return cli_usage(cmd, "expected PROJECT");
	if ((rc = cli_check_project(cmd, argv[optind])))
		return rc;
	if (clear && argc - optind > 1)
		return cli_usage(cmd, "--clear takes no patterns");
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ps_error_clear(&err);
	rc = PS_OK;
	if (clear || argc - optind > 1)
		rc = ps_excludes_set(store, argv[optind], (const char *const *)(argv + optind + 1),
				     (size_t)(argc - optind - 1), &err);
	if (!rc)
		rc = ps_excludes_get(store, argv[optind], &pats, &n, &err);
	ps_store_free(store);
	if (rc)
		return cli_fail(&err);
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_string(pats[i]));
		cli_print_json(json_pack("{s:s, s:o}", "project", argv[optind], "excludes", a));
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", pats[i]);
	}
	ps_strv_free(pats, n);
	return 0;
}
