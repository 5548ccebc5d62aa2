/*
 * cmd_rescan.c - projstore rescan [PROJECT...]: rebuild the catalog's cache
 * of the store's facts (snapshots, sizes, ratios, quota) from the store, so
 * that projects saved without a catalog, or brought by sync, appear.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "projstore_catalog.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_rescan(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("rescan");
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	for (int i = optind; i < argc; i++)
		if ((rc = cli_check_project(cmd, argv[i])))
			return rc;
	struct ps_store *store;
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	struct ps_catalog *cat;
	if ((rc = cli_open_catalog(cli, &cat))) {
		ps_store_free(store);
		return rc;
	}
	struct ps_error err;
	ps_error_clear(&err);
	char **ids = NULL;
	size_t n = 0;
	if (optind < argc) {
		n = (size_t)(argc - optind);
		ids = calloc(n, sizeof(*ids));
		for (size_t i = 0; ids && i < n; i++)
			ids[i] = strdup(argv[optind + (int)i]);
	} else if (ps_project_list(store, &ids, &n, &err) != PS_OK) {
		ps_catalog_close(cat);
		ps_store_free(store);
		return cli_fail(&err);
	}
	struct cli_progress prog;
	cli_progress_init(&prog);
	size_t done = 0, failed = 0;
	json_t *fails = json_array();
	for (size_t i = 0; i < n; i++) {
		ps_error_clear(&err);
		if (!ids[i] || ps_cat_refresh_project(cat, store, NULL, ids[i], &err) != PS_OK) {
			failed++;
			cli_error("%s: %s", ids[i] ? ids[i] : "?", err.msg);
			json_array_append_new(fails, json_pack("{s:s, s:s}", "project", ids[i] ? ids[i] : "",
							       "error", err.msg));
		} else {
			done++;
		}
		if (!cli->json)
			cli_progress_cb(&prog, "rescan", i + 1, n, 0, 0);
	}
	cli_progress_done(&prog);
	ps_strv_free(ids, n);
	ps_catalog_close(cat);
	ps_store_free(store);
	if (cli->json)
		cli_print_json(json_pack("{s:I, s:I, s:o}", "projects", (json_int_t)done, "failed",
					 (json_int_t)failed, "failures", fails));
	else {
		json_decref(fails);
		printf("rescan: %zu projects updated in the catalog%s", done, failed ? ", " : "\n");
		if (failed)
			printf("%zu failed\n", failed);
	}
	return failed ? EXIT_FAIL : 0;
}
