/*
 * cmd_projects.c - projstore projects [--search TEXT] [--host NAME] [--status S]
 *                  [--limit N] [--after ID] [--json]
 *                  projstore events PROJECT [--limit N] [--json]
 */
#define _GNU_SOURCE
#include "cli.h"
#include "projstore_catalog.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cmd_projects(struct cli *cli, int argc, char **argv)
{
	enum { O_SEARCH = 300, O_HOST, O_STATUS, O_LIMIT, O_AFTER };
	static const struct option lo[] = {
		CLI_COMMON_LONGOPTS,
		{ "search", required_argument, NULL, O_SEARCH },
		{ "host", required_argument, NULL, O_HOST },
		{ "status", required_argument, NULL, O_STATUS },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "after", required_argument, NULL, O_AFTER },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("projects");
	struct ps_cat_query q = PS_CAT_QUERY_INIT;
	long limit = 0;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_SEARCH: q.search = optarg; break;
		case O_HOST: q.host = optarg; break;
		case O_STATUS: q.status = optarg; break;
		case O_AFTER: q.after = optarg; break;
		case O_LIMIT:
			if (cli_parse_long(optarg, 1, 1000000000, &limit))
				return cli_usage(cmd, "invalid --limit '%s'", optarg);
			q.limit = (int)limit;
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (argc != optind)
		return cli_usage(cmd, "no arguments expected");
	struct ps_catalog *cat;
	if ((rc = cli_open_catalog(cli, &cat)))
		return rc;
	struct ps_error err;
	struct ps_cat_project *v;
	size_t n;
	ps_error_clear(&err);
	rc = ps_cat_project_list(cat, &q, &v, &n, &err);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return rc == PS_EINVAL ? (cli_error("%s", err.msg), EXIT_USAGE) : cli_fail(&err);
	int64_t now = ps_cat_now();
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, ps_cat_project_json(&v[i], now));
		cli_print_json(a);
	} else {
		printf("%-36s %-14s %-10s %10s %10s %6s %6s  %s\n", "PROJECT", "HOST", "STATUS", "SIZE",
		       "QUOTA", "COMPR", "DEDUP", "LAST SNAPSHOT");
		for (size_t i = 0; i < n; i++) {
			struct ps_cat_project *p = &v[i];
			char size[32], quota[32] = "-", age[64] = "never";
			ps_format_size((uint64_t)p->logical_bytes, size, sizeof(size));
			if (p->quota_bytes > 0)
				ps_format_size((uint64_t)p->quota_bytes, quota, sizeof(quota));
			if (p->last_snapshot_at > 0)
				ps_format_age(p->last_snapshot_at * 1000, now * 1000, age, sizeof(age));
			char status[40];
			snprintf(status, sizeof(status), "%s%s", p->status, p->maintenance ? "*" : "");
			printf("%-36s %-14s %-10s %10s %10s %5.2fx %5.2fx  %s\n", p->id,
			       p->host[0] ? p->host : "-", status, size, quota, p->compressratio,
			       p->dedupratio, age);
		}
	}
	free(v);
	return 0;
}

int cmd_events(struct cli *cli, int argc, char **argv)
{
	enum { O_LIMIT = 300 };
	static const struct option lo[] = {
		CLI_COMMON_LONGOPTS,
		{ "limit", required_argument, NULL, O_LIMIT },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("events");
	long limit = 100;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == O_LIMIT) {
			if (cli_parse_long(optarg, 1, 100000, &limit))
				return cli_usage(cmd, "invalid --limit '%s'", optarg);
		} else if (cli_common_opt(cli, cmd, c, optarg) < 0) {
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage(cmd, "expected PROJECT");
	const char *id = argv[optind];
	if ((rc = cli_check_project(cmd, id)))
		return rc;
	struct ps_catalog *cat;
	if ((rc = cli_open_catalog(cli, &cat)))
		return rc;
	struct ps_error err;
	struct ps_cat_event *v;
	size_t n;
	ps_error_clear(&err);
	rc = ps_cat_events(cat, id, (int)limit, &v, &n, &err);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return cli_fail(&err);
	int64_t now = ps_cat_now();
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, ps_cat_event_json(&v[i], now));
		cli_print_json(a);
	} else {
		/* oldest first on a terminal, like a log */
		for (size_t i = n; i-- > 0;) {
			char t[64], day[40];
			time_t sec = (time_t)(v[i].at / 1000000);
			struct tm tm;
			gmtime_r(&sec, &tm);
			strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(t, sizeof(t), "%s.%06dZ", day, (int)(v[i].at % 1000000));
			printf("%s  %-18s %-14s %s%s\n", t, v[i].kind, v[i].actor, v[i].error ? "ERROR " : "",
			       v[i].detail);
		}
	}
	free(v);
	return 0;
}
