/* cmd_init.c - projstore init [STORE] */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <string.h>

int cmd_init(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { { "compression", required_argument, NULL, 'c' },
					     CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("init");
	struct ps_init_opts o = PS_INIT_OPTS_INIT;
	struct ps_error err;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'c')
			o.compression = optarg;
		else if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	}
	if (argc - optind > 1)
		return cli_usage(cmd, "too many arguments");
	if (argc - optind == 1)
		cli->store = argv[optind];
	ps_error_clear(&err);
	if (ps_store_init(cli->store, &o, &err))
		return cli_fail(&err) == EXIT_USAGE ? EXIT_USAGE : cli_exit_code(err.code);
	if (cli->json)
		cli_print_json(json_pack("{s:s}", "store", cli->store));
	else
		printf("created store '%s'\n", cli->store);
	return 0;
}
