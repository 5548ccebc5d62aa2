/*
 * cmd_serve.c - projstore serve: the HTTP API, the dashboard and the
 * metrics (src/server), in the foreground until SIGINT or SIGTERM.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "projstore_catalog.h"
#include "../server/server.h"

enum { OPT_LISTEN = 1000, OPT_TOKEN_FILE, OPT_CATALOG, OPT_THREADS, OPT_RATE, OPT_BURST,
       OPT_MAX_BODY, OPT_MAX_CONN, OPT_NO_STORE };

static int parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || *end || errno || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

int cmd_serve(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
		{ "catalog", required_argument, NULL, OPT_CATALOG },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "rate-limit", required_argument, NULL, OPT_RATE },
		{ "rate-burst", required_argument, NULL, OPT_BURST },
		{ "max-body", required_argument, NULL, OPT_MAX_BODY },
		{ "max-connections", required_argument, NULL, OPT_MAX_CONN },
		{ "no-store", no_argument, NULL, OPT_NO_STORE },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("serve");
	struct ps_server_opts o = PS_SERVER_OPTS_INIT;
	struct ps_server *srv = NULL;
	struct ps_error err;
	int store_given = getenv("PROJSTORE_STORE") && *getenv("PROJSTORE_STORE");
	int no_store = 0;
	long l;
	int c;
	optind = 1;
	/* the global --catalog (before the command), else the environment */
	o.catalog = cli->catalog && *cli->catalog ? cli->catalog : getenv("PROJSTORE_CATALOG");
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN: o.listen = optarg; break;
		case OPT_TOKEN_FILE: o.token_file = optarg; break;
		case OPT_CATALOG: o.catalog = optarg; break;
		case OPT_NO_STORE: no_store = 1; break;
		case OPT_THREADS:
			if (cli_parse_long(optarg, 1, 256, &l))
				return cli_usage(cmd, "--threads: a number from 1 to 256");
			o.threads = (int)l;
			break;
		case OPT_RATE:
			if (parse_double(optarg, 0, 1e9, &o.rate_limit))
				return cli_usage(cmd, "--rate-limit: requests per second (0 = no limit)");
			break;
		case OPT_BURST:
			if (parse_double(optarg, 1, 1e9, &o.rate_burst))
				return cli_usage(cmd, "--rate-burst: a number of requests (at least 1)");
			break;
		case OPT_MAX_BODY: {
			uint64_t v;
			if (ps_parse_size(optarg, &v) || v < 64 || v > 16 * 1024 * 1024)
				return cli_usage(cmd, "--max-body: a size from 64 to 16M");
			o.max_body = (size_t)v;
			break;
		}
		case OPT_MAX_CONN:
			if (cli_parse_long(optarg, 1, 100000, &l))
				return cli_usage(cmd, "--max-connections: a number from 1 to 100000");
			o.max_connections = (int)l;
			break;
		case 'S':
			store_given = 1;
			/* fall through */
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);

	/* The store gives full snapshot listings.  Given (--store or
	 * $PROJSTORE_STORE) it must open; the built-in default is used only
	 * when it is there. */
	if (!no_store && (store_given || access(cli->store, F_OK) == 0))
		o.store = cli->store;
	if ((!o.catalog || !*o.catalog) && !o.store)
		return cli_usage(cmd, "no catalog: give --catalog, $PROJSTORE_CATALOG or a local --store");

	/* the signals that stop the server are taken by sigwait below; block
	 * them before the workers start so that they inherit the mask */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	ps_error_clear(&err);
	if (ps_server_start(&srv, &o, &err) != PS_OK) {
		cli_error("cannot start: %s", err.msg[0] ? err.msg : "failed");
		return EXIT_FAIL;
	}
	int created = 0;
	const char *tokens = ps_server_token_file(srv, &created);
	printf("projstore serve: listening on %s\n", ps_server_url(srv));
	printf("projstore serve: catalog %s%s%s\n", ps_server_catalog_name(srv),
	       o.store ? ", store " : "", o.store ? o.store : "");
	if (created)
		printf("projstore serve: created tokens (one admin, one read-only) in %s "
		       "(readable only by its owner)\n",
		       tokens);
	else
		printf("projstore serve: tokens from %s\n", tokens);
	fflush(stdout);

	int sig = 0;
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
		; /* nothing to reload: tokens and catalog are read at start */
	printf("projstore serve: stopping (signal %d)\n", sig);
	fflush(stdout);
	ps_server_stop(srv);
	return EXIT_OK;
}
