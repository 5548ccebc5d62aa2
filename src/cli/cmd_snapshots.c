/* cmd_snapshots.c - projstore snapshots PROJECT */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cmd_snapshots(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("snapshots");
	struct ps_store *store = NULL;
	struct ps_snapshot_info *v = NULL;
	struct ps_error err;
	struct timespec ts;
	int64_t now;
	size_t n = 0;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	if (argc - optind != 1)
		return cli_usage(cmd, "expected one PROJECT");
	if ((rc = cli_check_project(cmd, argv[optind])))
		return rc;
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ps_error_clear(&err);
	rc = ps_snapshot_list(store, argv[optind], &v, &n, &err);
	ps_store_free(store);
	if (rc)
		return cli_fail(&err);
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, cli_snapshot_json(&v[i], now));
		cli_print_json(json_pack("{s:s, s:o}", "project", argv[optind], "snapshots", a));
	} else {
		printf("%-37s  %-16s %9s %10s %10s  %s\n", "NAME", "AGE", "FILES", "LOGICAL", "NEW", "");
		for (size_t i = 0; i < n; i++) {
			char age[48], lb[32], nb[32];
			ps_format_age(v[i].time_ns, now, age, sizeof(age));
			ps_format_size(v[i].logical_bytes, lb, sizeof(lb));
			ps_format_size(v[i].new_bytes, nb, sizeof(nb));
			printf("%-37s  %-16s %9llu %10s %10s  %s%s\n", v[i].name, age,
			       (unsigned long long)v[i].files, lb, nb,
			       v[i].over_quota ? "over quota " : "",
			       v[i].errors ? "(some entries unreadable)" : "");
		}
		if (!n)
			printf("(project '%s' has no snapshots)\n", argv[optind]);
	}
	free(v);
	return 0;
}
