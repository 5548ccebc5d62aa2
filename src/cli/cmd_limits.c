/*
 * cmd_limits.c - projstore limits PROJECT [--cpu CORES] [--memory SIZE]
 * [--io-weight W] [--pids N] [--network none|outbound]: shows or changes a
 * project's resource limits.  They are kept in the catalog; when the project
 * is deployed on this machine they are applied at once (the running sandbox
 * included), else the agent of its host applies them within a poll interval.
 */
#define _GNU_SOURCE
#include "cli_host.h"
#include "projstore_catalog.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *limit_json(int64_t v)
{
	return v > 0 ? json_integer((json_int_t)v) : json_null();
}

int cmd_limits(struct cli *cli, int argc, char **argv)
{
	enum { O_CPU = 1000, O_MEM, O_IO, O_PIDS, O_NET };
	static const struct option lo[] = { CLI_COMMON_LONGOPTS,
					    { "cpu", required_argument, NULL, O_CPU },
					    { "memory", required_argument, NULL, O_MEM },
					    { "io-weight", required_argument, NULL, O_IO },
					    { "pids", required_argument, NULL, O_PIDS },
					    { "network", required_argument, NULL, O_NET },
					    { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("limits");
	struct ps_host_limits set = { -1, -1, -1, -1, -1 };
	int c, rc, change = 0;
	uint64_t sz;
	long n;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_CPU:
			if (cli_parse_cores(optarg, &set.cpu))
				return cli_usage(cmd, "invalid --cpu '%s' (cores, e.g. 0.5 or 2; none)", optarg);
			change = 1;
			break;
		case O_MEM:
			if (!strcmp(optarg, "none"))
				sz = 0;
			else if (ps_parse_size(optarg, &sz) || sz < (4u << 20))
				return cli_usage(cmd, "invalid --memory '%s' (at least 4M, e.g. 512M, 2G; none)",
						 optarg);
			set.memory = (int64_t)sz;
			change = 1;
			break;
		case O_IO:
			if (!strcmp(optarg, "default"))
				n = 0;
			else if (cli_parse_long(optarg, 1, 10000, &n))
				return cli_usage(cmd, "invalid --io-weight '%s' (1-10000; default)", optarg);
			set.io_weight = n;
			change = 1;
			break;
		case O_PIDS:
			if (!strcmp(optarg, "none"))
				n = 0;
			else if (cli_parse_long(optarg, 1, 4194304, &n))
				return cli_usage(cmd, "invalid --pids '%s' (1-4194304; none)", optarg);
			set.pids = n;
			change = 1;
			break;
		case O_NET:
			if ((set.network = ps_host_net_parse(optarg)) < 0)
				return cli_usage(cmd, "invalid --network '%s' (none or outbound)", optarg);
			change = 1;
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
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
	ps_error_clear(&err);
	if (change && (rc = ps_cat_limits_set(cat, id, &set, &err)) != PS_OK) {
		ps_catalog_close(cat);
		return cli_fail(&err);
	}
	struct ps_host_limits l;
	struct ps_cat_project p;
	if ((rc = ps_cat_limits_get(cat, id, &l, &err)) != PS_OK ||
	    (rc = ps_cat_project_get(cat, id, &p, &err)) != PS_OK) {
		ps_catalog_close(cat);
		return cli_fail(&err);
	}
	/* applied here when the project is deployed on this machine */
	const char *applied = "not deployed";
	char note[600] = "";
	if (geteuid() == 0 && p.uid >= 0) {
		/* deployed here: the catalog's location, or a cgroup of this
		 * machine (prepared with 'hosting prepare' and no agent) */
		struct cli_host h;
		struct cli_host_opts ho = { p.host[0] ? NULL : "/nonexistent", NULL };
		int deployed_here = 0;
		if (p.host[0])
			applied = "stored; the agent of its host applies it";
		if (cli_host_load(cat, id, &ho, 0, &h) == 0) {
			h.cfg.warn = NULL;
			deployed_here = ps_hosting_present(&h.cfg, id);
		}
		if (deployed_here) {
			struct ps_host_status st;
			if (ps_hosting_apply(&h.cfg, &h.p, &st, &err) != PS_OK) {
				ps_catalog_close(cat);
				cli_error("limits stored, but not applied: %s", err.msg);
				return EXIT_FAIL;
			}
			applied = "applied";
			snprintf(note, sizeof(note), "%s", st.note);
		}
	}
	ps_catalog_close(cat);
	char mem[32], quota[32];
	ps_format_size((uint64_t)l.memory, mem, sizeof(mem));
	ps_format_size((uint64_t)p.quota_bytes, quota, sizeof(quota));
	if (cli->json) {
		cli_print_json(json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:s, s:s}", "project", id,
					 "cpu", l.cpu > 0 ? json_real(l.cpu) : json_null(), "memory_bytes",
					 limit_json(l.memory), "io_weight", limit_json(l.io_weight), "pids",
					 limit_json(l.pids), "network", ps_host_net_name(l.network),
					 "quota_bytes", limit_json(p.quota_bytes), "state", applied, "note",
					 note));
		return 0;
	}
	printf("%s:\n", id);
	if (l.cpu > 0)
		printf("  cpu        %g cores\n", l.cpu);
	else
		printf("  cpu        none\n");
	printf("  memory     %s\n", l.memory > 0 ? mem : "none");
	if (l.io_weight > 0)
		printf("  io-weight  %" PRId64 "\n", l.io_weight);
	else
		printf("  io-weight  default\n");
	if (l.pids > 0)
		printf("  pids       %" PRId64 "\n", l.pids);
	else
		printf("  pids       none\n");
	printf("  network    %s\n", ps_host_net_name(l.network));
	printf("  quota      %s (set with 'projstore quota')\n", p.quota_bytes > 0 ? quota : "none");
	printf("  state      %s%s%s\n", applied, note[0] ? "; " : "", note);
	return 0;
}
