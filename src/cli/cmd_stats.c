/* cmd_stats.c - projstore stats [PROJECT] */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>

int cmd_stats(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("stats");
	struct ps_store *store = NULL;
	struct ps_stats st;
	struct ps_error err;
	const char *project = NULL;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	if (argc - optind > 1)
		return cli_usage(cmd, "too many arguments");
	if (argc - optind == 1) {
		project = argv[optind];
		if ((rc = cli_check_project(cmd, project)))
			return rc;
	}
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ps_error_clear(&err);
	rc = ps_stats(store, project, &st, &err);
	ps_store_free(store);
	if (rc)
		return cli_fail(&err);
	if (cli->json) {
		cli_print_json(json_pack(
			"{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:o, s:b, s:o, s:o}", "project",
			project ? json_string(project) : json_null(), "snapshots", (json_int_t)st.snapshots,
			"files", (json_int_t)st.files, "logical_bytes", (json_int_t)st.logical_bytes,
			"stored_bytes", (json_int_t)st.stored_bytes, "unique_raw_bytes",
			(json_int_t)st.unique_raw_bytes, "unique_stored_bytes",
			(json_int_t)st.unique_stored_bytes, "chunks", (json_int_t)st.chunks,
			"compressratio", st.compressratio, "dedupratio", st.dedupratio, "quota_bytes",
			st.quota_bytes ? json_integer((json_int_t)st.quota_bytes) : json_null(), "over_quota",
			st.over_quota, "projects", project ? json_null() : json_integer((json_int_t)st.projects),
			"pack_bytes", project ? json_null() : json_integer((json_int_t)st.pack_bytes)));
	} else {
		char a[32], b[32], d[32], q[32];
		ps_format_size(st.logical_bytes, a, sizeof(a));
		ps_format_size(st.stored_bytes, b, sizeof(b));
		ps_format_size(st.unique_stored_bytes, d, sizeof(d));
		if (project)
			printf("project         %s\n", project);
		else
			printf("projects        %llu\n", (unsigned long long)st.projects);
		printf("snapshots       %llu\n", (unsigned long long)st.snapshots);
		printf("files           %llu\n", (unsigned long long)st.files);
		printf("logical         %s (latest snapshot%s)\n", a, project ? "" : "s");
		printf("stored          %s (%s)\n", b, project ? "all snapshots of the project" : "all objects in the store");
		printf("latest, stored  %s\n", d);
		printf("chunks          %llu\n", (unsigned long long)st.chunks);
		printf("compressratio   %.2fx\n", st.compressratio);
		printf("dedupratio      %.2fx\n", st.dedupratio);
		if (!project) {
			ps_format_size(st.pack_bytes, q, sizeof(q));
			printf("pack files      %s\n", q);
		} else if (st.quota_bytes) {
			ps_format_size(st.quota_bytes, q, sizeof(q));
			printf("quota           %s%s\n", q, st.over_quota ? " (OVER QUOTA)" : "");
		} else {
			printf("quota           none\n");
		}
	}
	return 0;
}
