/* cmd_open.c - projstore open PROJECT [--host NAME] [--allow-older] [--wait [--timeout SECONDS]]:
 * writes the request into the catalog; the host's agent does the work
 * (cli_request.c has the waiting and the exit codes). */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

int cmd_open(struct cli *cli, int argc, char **argv)
{
	enum { O_WAIT = 1, O_TIMEOUT, O_TARGET, O_OLDER };
	static const struct option lo[] = {
		{ "wait", no_argument, NULL, O_WAIT },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "host", required_argument, NULL, O_TARGET },
		{ "allow-older", no_argument, NULL, O_OLDER },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("open");
	const char *target = NULL;
	double timeout = -1;
	int wait = 0, older = 0, c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_WAIT: wait = 1; break;
		case O_TIMEOUT:
			if (cli_parse_timeout(optarg, &timeout))
				return cli_usage(cmd, "invalid timeout '%s' (seconds)", optarg);
			break;
		case O_TARGET: target = optarg; break;
		case O_OLDER: older = 1; break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage(cmd, argc - optind < 1 ? "PROJECT is required" : "too many arguments");
	if (timeout >= 0 && !wait)
		return cli_usage(cmd, "--timeout goes with --wait");
	if ((rc = cli_check_project(cmd, argv[optind])))
		return rc;
	return cli_request_opts(cli, "open", argv[optind], target, older ? "allow-older" : NULL, wait,
				timeout);
}
