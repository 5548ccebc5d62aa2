/* cmd_quota.c - projstore quota PROJECT [SIZE|none] */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

int cmd_quota(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("quota");
	struct ps_store *store = NULL;
	struct ps_error err;
	struct ps_snapshot_info *v = NULL;
	size_t n = 0;
	uint64_t q = 0, logical = 0;
	const char *project;
	int c, rc, set = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	if (argc - optind < 1 || argc - optind > 2)
		return cli_usage(cmd, "expected PROJECT [SIZE|none]");
	project = argv[optind];
	if ((rc = cli_check_project(cmd, project)))
		return rc;
	if (argc - optind == 2) {
		set = 1;
		if (strcmp(argv[optind + 1], "none") && (ps_parse_size(argv[optind + 1], &q) || !q))
			return cli_usage(cmd, "invalid size '%s' (e.g. 4G, 512M, none)", argv[optind + 1]);
	}
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ps_error_clear(&err);
	rc = set ? ps_quota_set(store, project, q, &err) : ps_quota_get(store, project, &q, &err);
	if (!rc)
		rc = ps_snapshot_list(store, project, &v, &n, &err);
	if (!rc && set)
		cli_catalog_refresh(cli, store, project);
	ps_store_free(store);
	if (rc)
		return cli_fail(&err);
	if (n)
		logical = v[n - 1].logical_bytes;
	free(v);
	if (cli->json) {
		cli_print_json(json_pack("{s:s, s:o, s:I, s:b}", "project", project, "quota_bytes",
					 q ? json_integer((json_int_t)q) : json_null(), "logical_bytes",
					 (json_int_t)logical, "over_quota", q && logical > q));
	} else {
		char a[32], b[32];
		ps_format_size(q, a, sizeof(a));
		ps_format_size(logical, b, sizeof(b));
		printf("%s: quota %s, used %s%s\n", project, q ? a : "none", b,
		       q && logical > q ? " (OVER QUOTA)" : "");
	}
	return 0;
}
