/* cmd_policy.c - projstore policy PROJECT|--default [--keep-...] [--clear] */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <string.h>

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_KEEP_LONGOPTS,
					     { "default", no_argument, NULL, 'd' },
					     { "clear", no_argument, NULL, 'c' },
					     CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("policy");
	struct ps_keep_policy pol = PS_KEEP_POLICY_INIT, own = PS_KEEP_POLICY_INIT,
			      def = PS_KEEP_POLICY_INIT;
	struct ps_store *store = NULL;
	struct ps_error err;
	const char *project = NULL, *source;
	int c, rc, deflt = 0, clear = 0, set = 0;
	char text[256];
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		int k = cli_keep_opt(cmd, c, optarg, &pol);
		if (k < 0)
			return EXIT_USAGE;
		if (k) {
			set = 1;
			continue;
		}
		if (c == 'd')
			deflt = 1;
		else if (c == 'c')
			clear = 1;
		else if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	}
	if (deflt ? argc - optind != 0 : argc - optind != 1)
		return cli_usage(cmd, "expected PROJECT or --default");
	if (set && clear)
		return cli_usage(cmd, "--clear and --keep-... options exclude each other");
	if (!deflt) {
		project = argv[optind];
		if ((rc = cli_check_project(cmd, project)))
			return rc;
	}
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ps_error_clear(&err);
	rc = PS_OK;
	if (set || clear)
		rc = ps_policy_set(store, project, &pol, &err);
	if (!rc && project)
		rc = ps_policy_get(store, project, &own, &err);
	if (!rc)
		rc = ps_policy_get(store, NULL, &def, &err);
	ps_store_free(store);
	if (rc)
		return cli_fail(&err);
	if (!project)
		own = def;
	source = !ps_keep_policy_empty(&own) ? (project ? "project" : "default")
		 : !ps_keep_policy_empty(&def) ? "default" : "none";
	if (cli->json) {
		const struct ps_keep_policy *eff = !ps_keep_policy_empty(&own) ? &own : &def;
		cli_print_json(json_pack("{s:o, s:o, s:o, s:s}", "project",
					 project ? json_string(project) : json_null(), "policy",
					 cli_policy_json(&own), "effective", cli_policy_json(eff),
					 "source", source));
		return 0;
	}
	cli_policy_format(&own, text, sizeof(text));
	if (!project) {
		printf("store default: %s\n", text);
	} else if (!ps_keep_policy_empty(&own)) {
		printf("%s: %s\n", project, text);
	} else {
		cli_policy_format(&def, text, sizeof(text));
		printf("%s: none (store default applies: %s)\n", project, text);
	}
	return 0;
}
