/*
 * cmd_hosting.c - projstore hosting prepare|apply|stop|teardown|usage
 * PROJECT: the host agent's hosting steps, one at a time, for operators
 * (repairs, hosts run without an agent) and tests.  The agent started with
 * --hosting does all of them itself.
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

static json_t *jnum(int64_t v)
{
	return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

int cmd_hosting(struct cli *cli, int argc, char **argv)
{
	enum { O_ROOT = 1000, O_HOST, O_GRACE, O_RMHOME, O_REPORT };
	static const struct option lo[] = { CLI_COMMON_LONGOPTS,
					    { "root", required_argument, NULL, O_ROOT },
					    { "host", required_argument, NULL, O_HOST },
					    { "grace", required_argument, NULL, O_GRACE },
					    { "remove-home", no_argument, NULL, O_RMHOME },
					    { "report", no_argument, NULL, O_REPORT },
					    { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("hosting");
	struct cli_host_opts ho = { NULL, NULL };
	double grace = 5;
	int c, rc, rmhome = 0, report = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_ROOT:
			ho.root = optarg;
			break;
		case O_HOST:
			ho.host = optarg;
			break;
		case O_GRACE: {
			char *end;
			grace = strtod(optarg, &end);
			if (end == optarg || *end || grace < 0 || grace > 3600)
				return cli_usage(cmd, "invalid --grace '%s' (0-3600 seconds)", optarg);
			break;
		}
		case O_RMHOME:
			rmhome = 1;
			break;
		case O_REPORT:
			report = 1;
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 2)
		return cli_usage(cmd, "expected prepare|apply|stop|teardown|usage PROJECT");
	const char *verb = argv[optind], *id = argv[optind + 1];
	if (strcmp(verb, "prepare") && strcmp(verb, "apply") && strcmp(verb, "stop") &&
	    strcmp(verb, "teardown") && strcmp(verb, "usage"))
		return cli_usage(cmd, "unknown step '%s' (prepare, apply, stop, teardown, usage)", verb);
	if ((rc = cli_check_project(cmd, id)))
		return rc;
	if (geteuid() != 0) {
		cli_error("hosting needs root");
		return EXIT_FAIL;
	}
	struct ps_catalog *cat;
	if ((rc = cli_open_catalog(cli, &cat)))
		return rc;
	struct cli_host h;
	if ((rc = cli_host_load(cat, id, &ho, !strcmp(verb, "prepare"), &h))) {
		ps_catalog_close(cat);
		return rc;
	}
	struct ps_error err;
	struct ps_host_status st;
	struct ps_host_usage u;
	int killed = 0;
	ps_error_clear(&err);
	memset(&st, 0, sizeof(st));
	if (!strcmp(verb, "prepare")) {
		h.cfg.warn = cli->json ? NULL : cli_host_warn;
		rc = ps_hosting_prepare(&h.cfg, &h.p, &st, &err);
	} else if (h.p.uid < 0) {
		snprintf(err.msg, sizeof(err.msg), "project %s has no uid: it was never prepared", id);
		err.code = rc = PS_ENOTFOUND;
	} else if (!strcmp(verb, "apply")) {
		rc = ps_hosting_apply(&h.cfg, &h.p, &st, &err);
	} else if (!strcmp(verb, "stop")) {
		rc = ps_hosting_stop(&h.cfg, &h.p, (int)(grace * 1000), &killed, &err);
	} else if (!strcmp(verb, "teardown")) {
		rc = ps_hosting_stop(&h.cfg, &h.p, (int)(grace * 1000), &killed, &err);
		if (rc == PS_OK)
			rc = ps_hosting_teardown(&h.cfg, &h.p, rmhome, &err);
		if (rc == PS_OK)
			ps_cat_usage_clear(cat, id, NULL);
	} else {
		rc = ps_hosting_usage(&h.cfg, id, &u, &err);
		if (rc == PS_OK && report)
			rc = ps_cat_usage_set(cat, id, h.host, &u, &err);
	}
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return cli_fail(&err);
	if (!strcmp(verb, "usage")) {
		if (cli->json)
			cli_print_json(json_pack("{s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "project",
						 id, "processes", u.running, "cpu_usec", jnum(u.cpu_usec),
						 "memory_bytes", jnum(u.memory_bytes), "memory_peak_bytes",
						 jnum(u.memory_peak), "io_bytes", jnum(u.io_bytes), "tasks",
						 jnum(u.pids), "oom_kills", jnum(u.oom_kills), "disk_bytes",
						 jnum(u.disk_bytes), "disk_limit_bytes", jnum(u.disk_limit)));
		else
			printf("%s: %d processes, cpu %.2fs, memory %" PRId64 " (peak %" PRId64
			       "), io %" PRId64 ", tasks %" PRId64 ", oom kills %" PRId64 ", disk %" PRId64
			       " (limit %" PRId64 ")\n",
			       id, u.running, (double)u.cpu_usec / 1e6, u.memory_bytes, u.memory_peak,
			       u.io_bytes, u.pids, u.oom_kills, u.disk_bytes, u.disk_limit);
	} else if (!strcmp(verb, "prepare") || !strcmp(verb, "apply")) {
		if (cli->json)
			cli_print_json(json_pack("{s:s, s:s, s:I, s:s, s:b, s:i, s:s}", "project", id, "user",
						 st.user, "uid", (json_int_t)h.p.uid, "home", st.home,
						 "quota_enforced", st.quota_enforced, "cgroup_version",
						 st.cgroup_version, "note", st.note));
		else
			printf("%s: user %s (uid %" PRId64 "), home %s, cgroup v%d, quota %s\n", id, st.user,
			       h.p.uid, st.home, st.cgroup_version,
			       st.quota_enforced ? "enforced" : "not enforced");
	} else if (cli->json) {
		cli_print_json(json_pack("{s:s, s:s, s:i}", "project", id, "done", verb, "signalled", killed));
	} else {
		printf("%s: %s (%d processes signalled)\n", id, !strcmp(verb, "stop") ? "stopped" : "torn down",
		       killed);
	}
	return 0;
}
