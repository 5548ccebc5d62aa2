/* cmd_agent.c - projstore agent --host NAME: the daemon of a compute host
 * (src/daemon/agent*.c does the work; this file reads the options). */
#define _GNU_SOURCE
#include "cli.h"
#include "../daemon/agent.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static int duration_opt(const struct command *cmd, const char *name, const char *arg, int64_t *us)
{
	if (!strcmp(arg, "off") || !strcmp(arg, "0")) {
		*us = 0;
		return 0;
	}
	if (ps_agent_parse_duration(arg, us))
		return cli_usage(cmd, "invalid %s '%s' (e.g. 90s, 5m, 1h, 500ms)", name, arg);
	return 0;
}

int cmd_agent(struct cli *cli, int argc, char **argv)
{
	enum { O_HOST = 1, O_INTERVAL, O_JITTER, O_PARALLEL, O_THREADS, O_POLL, O_LEASE, O_RECONCILE,
	       O_LOG, O_LOGSIZE, O_LOGKEEP, O_QKEEP, O_QDAYS, O_CACHE, O_ONCE, O_VERBOSE,
	       O_HOSTING };
	static const struct option lo[] = {
		{ "host", required_argument, NULL, O_HOST },
		{ "autosave-interval", required_argument, NULL, O_INTERVAL },
		{ "autosave-jitter", required_argument, NULL, O_JITTER },
		{ "max-parallel", required_argument, NULL, O_PARALLEL },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "poll", required_argument, NULL, O_POLL },
		{ "lease", required_argument, NULL, O_LEASE },
		{ "reconcile-interval", required_argument, NULL, O_RECONCILE },
		{ "log", required_argument, NULL, O_LOG },
		{ "log-max-size", required_argument, NULL, O_LOGSIZE },
		{ "log-keep", required_argument, NULL, O_LOGKEEP },
		{ "quarantine-keep", required_argument, NULL, O_QKEEP },
		{ "quarantine-days", required_argument, NULL, O_QDAYS },
		{ "cache-dir", required_argument, NULL, O_CACHE },
		{ "once", no_argument, NULL, O_ONCE },
		{ "hosting", no_argument, NULL, O_HOSTING },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("agent");
	struct ps_agent_opts o = PS_AGENT_OPTS_INIT;
	struct ps_error err;
	const char *jitter = NULL, *env;
	int c, rc;
	long v;
	uint64_t size;

	env = getenv("PROJSTORE_LEASE_SECONDS");
	if (env && *env) {
		double s = strtod(env, NULL);
		if (s > 0)
			o.lease_us = (int64_t)(s * 1e6);
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_HOST: o.host = optarg; break;
		case O_INTERVAL:
			if ((rc = duration_opt(cmd, "autosave interval", optarg, &o.autosave_us)))
				return rc;
			break;
		case O_JITTER: jitter = optarg; break;
		case O_PARALLEL:
			if (cli_parse_long(optarg, 1, 256, &v))
				return cli_usage(cmd, "invalid --max-parallel '%s' (1-256)", optarg);
			o.max_parallel = (int)v;
			break;
		case O_THREADS:
			if (cli_parse_long(optarg, 1, 256, &v))
				return cli_usage(cmd, "invalid thread count '%s'", optarg);
			o.threads = (int)v;
			break;
		case O_POLL:
			if ((rc = duration_opt(cmd, "poll interval", optarg, &o.poll_us)))
				return rc;
			if (o.poll_us < 10000)
				return cli_usage(cmd, "the poll interval must be at least 10ms");
			break;
		case O_LEASE:
			if ((rc = duration_opt(cmd, "lease", optarg, &o.lease_us)))
				return rc;
			if (o.lease_us < 1000000)
				return cli_usage(cmd, "the lease must last at least 1s");
			break;
		case O_RECONCILE:
			if ((rc = duration_opt(cmd, "reconcile interval", optarg, &o.reconcile_us)))
				return rc;
			break;
		case O_LOG: o.log_path = optarg; break;
		case O_LOGSIZE:
			if (ps_parse_size(optarg, &size) || size < 4096)
				return cli_usage(cmd, "invalid --log-max-size '%s' (at least 4K)", optarg);
			o.log_max_bytes = (int64_t)size;
			break;
		case O_LOGKEEP:
			if (cli_parse_long(optarg, 1, 100, &v))
				return cli_usage(cmd, "invalid --log-keep '%s' (1-100)", optarg);
			o.log_keep = (int)v;
			break;
		case O_QKEEP:
			if (cli_parse_long(optarg, 0, 100000, &v))
				return cli_usage(cmd, "invalid --quarantine-keep '%s'", optarg);
			o.quarantine_keep = (int)v;
			break;
		case O_QDAYS:
			if (cli_parse_long(optarg, 0, 36500, &v))
				return cli_usage(cmd, "invalid --quarantine-days '%s'", optarg);
			o.quarantine_max_age_us = (int64_t)v * 86400 * 1000000;
			break;
		case O_CACHE: o.cache_dir = optarg; break;
		case O_ONCE: o.once = 1; break;
		case O_HOSTING: o.hosting = 1; break;
		case O_VERBOSE: o.verbose = 1; break;
		case 'S': o.store = optarg; break; /* given here: it beats the host's store URL */
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (!o.host)
		return cli_usage(cmd, "--host NAME is required");
	if (jitter) {
		size_t l = strlen(jitter);
		if (l > 1 && jitter[l - 1] == '%') {
			char *end;
			double pct = strtod(jitter, &end);
			if (end != jitter + l - 1 || pct < 0 || pct > 50)
				return cli_usage(cmd, "invalid --autosave-jitter '%s' (0%%-50%% or a duration)",
						 jitter);
			o.jitter_us = (int64_t)((double)o.autosave_us * pct / 100.0);
		} else if ((rc = duration_opt(cmd, "autosave jitter", jitter, &o.jitter_us))) {
			return rc;
		}
	} else {
		o.jitter_us = o.autosave_us / 5;
	}
	o.catalog = cli->catalog;
	o.fallback_store = cli->store;
	ps_error_clear(&err);
	rc = ps_agent_run(&o, &err);
	if (rc)
		return cli_fail(&err);
	return EXIT_OK;
}
