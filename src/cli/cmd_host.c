/*
 * cmd_host.c - projstore host add NAME --root DIR [...]
 *              projstore host state NAME up|draining|disabled
 *              projstore hosts
 */
#define _GNU_SOURCE
#include "cli.h"
#include "projstore_catalog.h"
#include "projstore_host.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static int host_add(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	enum { O_ROOT = 300, O_STORE_URL, O_DC, O_CAP };
	static const struct option lo[] = {
		CLI_COMMON_LONGOPTS,
		{ "root", required_argument, NULL, O_ROOT },
		{ "store-url", required_argument, NULL, O_STORE_URL },
		{ "datacenter", required_argument, NULL, O_DC },
		{ "capacity", required_argument, NULL, O_CAP },
		{ NULL, 0, NULL, 0 },
	};
	struct ps_cat_host h;
	const char *store_url = NULL;
	int c;
	long cap = 0;
	memset(&h, 0, sizeof(h));
	optind = 1;
	/* "--store URL" right after "add NAME" names the host's store; the
	 * global --store (before the command) names the store of this command */
	for (int k = 1; k < argc; k++)
		if (!strcmp(argv[k], "--store"))
			argv[k] = (char *)"--store-url";
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_ROOT:
			if (strlen(optarg) >= sizeof(h.root))
				return cli_usage(cmd, "--root too long");
			snprintf(h.root, sizeof(h.root), "%s", optarg);
			break;
		case O_STORE_URL: store_url = optarg; break;
		case O_DC: snprintf(h.datacenter, sizeof(h.datacenter), "%.*s", PS_CAT_ID_MAX, optarg); break;
		case O_CAP:
			if (cli_parse_long(optarg, 0, 100000000, &cap))
				return cli_usage(cmd, "invalid --capacity '%s'", optarg);
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage(cmd, "expected: host add NAME --root DIR");
	if (!h.root[0])
		return cli_usage(cmd, "--root DIR is required (where the host keeps working copies)");
	if (strlen(argv[optind]) > PS_CAT_ID_MAX)
		return cli_usage(cmd, "host name too long");
	if (h.root[0] == '/') {
		/* a relative root is the catalog's to refuse (below) */
		struct ps_error rerr;
		ps_error_clear(&rerr);
		if (ps_host_root_check(h.root, &rerr) != PS_OK) {
			cli_error("%s", rerr.msg);
			return EXIT_USAGE;
		}
	}
	snprintf(h.name, sizeof(h.name), "%s", argv[optind]);
	snprintf(h.store_url, sizeof(h.store_url), "%s", store_url ? store_url : "");
	h.capacity = cap;
	struct ps_catalog *cat;
	int rc = cli_open_catalog(cli, &cat);
	if (rc)
		return rc;
	struct ps_error err;
	ps_error_clear(&err);
	rc = ps_cat_host_add(cat, &h, &err);
	if (rc == PS_OK)
		rc = ps_cat_host_get(cat, h.name, &h, &err);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return rc == PS_EINVAL ? (cli_error("%s", err.msg), EXIT_USAGE) : cli_fail(&err);
	if (cli->json)
		cli_print_json(ps_cat_host_json(&h, ps_cat_now()));
	else
		printf("host %s: root %s%s%s, capacity %s\n", h.name, h.root,
		       h.datacenter[0] ? ", datacenter " : "", h.datacenter,
		       h.capacity ? "limited" : "unlimited");
	return 0;
}

static int host_state(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	if (argc - optind != 2)
		return cli_usage(cmd, "expected: host state NAME up|draining|disabled");
	struct ps_catalog *cat;
	int rc = cli_open_catalog(cli, &cat);
	if (rc)
		return rc;
	struct ps_error err;
	ps_error_clear(&err);
	rc = ps_cat_host_set_state(cat, argv[optind], argv[optind + 1], &err);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return rc == PS_EINVAL ? (cli_error("%s", err.msg), EXIT_USAGE) : cli_fail(&err);
	if (!cli->json)
		printf("host %s: %s\n", argv[optind], argv[optind + 1]);
	else
		cli_print_json(json_pack("{s:s, s:s}", "host", argv[optind], "state", argv[optind + 1]));
	return 0;
}

int cmd_host(struct cli *cli, int argc, char **argv)
{
	const struct command *cmd = cli_find("host");
	if (argc < 2)
		return cli_usage(cmd, "expected a subcommand: add, state");
	if (!strcmp(argv[1], "add"))
		return host_add(cli, cmd, argc - 1, argv + 1);
	if (!strcmp(argv[1], "state"))
		return host_state(cli, cmd, argc - 1, argv + 1);
	return cli_usage(cmd, "unknown subcommand '%s' (add, state)", argv[1]);
}

int cmd_hosts(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("hosts");
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	if (argc != optind)
		return cli_usage(cmd, "no arguments expected");
	struct ps_catalog *cat;
	int rc = cli_open_catalog(cli, &cat);
	if (rc)
		return rc;
	struct ps_error err;
	struct ps_cat_host *hs;
	size_t n;
	ps_error_clear(&err);
	rc = ps_cat_host_list(cat, &hs, &n, &err);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return cli_fail(&err);
	int64_t now = ps_cat_now();
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, ps_cat_host_json(&hs[i], now));
		cli_print_json(a);
	} else {
		printf("%-20s %-12s %9s %9s  %-20s %s\n", "HOST", "DATACENTER", "PROJECTS", "CAPACITY",
		       "HEARTBEAT", "STATE");
		for (size_t i = 0; i < n; i++) {
			char age[64] = "never", cap[32] = "-";
			if (hs[i].last_heartbeat)
				ps_format_age(hs[i].last_heartbeat * 1000, now * 1000, age, sizeof(age));
			if (hs[i].capacity)
				snprintf(cap, sizeof(cap), "%lld", (long long)hs[i].capacity);
			printf("%-20s %-12s %9lld %9s  %-20s %s\n", hs[i].name,
			       hs[i].datacenter[0] ? hs[i].datacenter : "-", (long long)hs[i].deployed, cap,
			       age, hs[i].state);
		}
	}
	free(hs);
	return 0;
}
