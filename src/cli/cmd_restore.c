/* cmd_restore.c - projstore restore PROJECT[@SNAPSHOT] TARGET [PATH...] */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void restore_warn(void *ctx, const char *path, const char *msg)
{
	cli_progress_done(ctx);
	fputs("projstore: warning: '", stderr);
	cli_print_escaped(stderr, path, strlen(path));
	fprintf(stderr, "': %s\n", msg);
}

int cmd_restore(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "uid", required_argument, NULL, 'u' }, { "gid", required_argument, NULL, 'g' },
		{ "no-cache", no_argument, NULL, 'N' },  { "cache-dir", required_argument, NULL, 'C' },
		{ "threads", required_argument, NULL, 't' },
		CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("restore");
	struct ps_restore_opts o = PS_RESTORE_OPTS_INIT;
	struct ps_store *store = NULL;
	struct ps_error err;
	struct cli_progress prog;
	struct timespec t0, t1;
	char project[72];
	const char *snap;
	int c, rc;
	long v;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'u':
		case 'g':
			if (cli_parse_long(optarg, 0, 4294967294L, &v))
				return cli_usage(cmd, "invalid %s '%s'", c == 'u' ? "uid" : "gid", optarg);
			if (c == 'u')
				o.uid = v;
			else
				o.gid = v;
			break;
		case 'N': o.no_cache = 1; break;
		case 'C': o.cache_dir = optarg; break;
		case 't':
			if (cli_parse_long(optarg, 1, 256, &v))
				return cli_usage(cmd, "invalid thread count '%s'", optarg);
			o.threads = (int)v;
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind < 2)
		return cli_usage(cmd, "expected PROJECT[@SNAPSHOT] TARGET [PATH...]");
	if ((rc = cli_split_ref(cmd, argv[optind], project, sizeof(project), &snap)))
		return rc;
	if (argc - optind > 2)
		o.paths = (const char *const *)(argv + optind + 2);
	if (!o.cache_dir)
		o.cache_dir = getenv("PROJSTORE_CACHE_DIR");
	cli_progress_init(&prog);
	o.progress = cli_progress_cb;
	o.warn = restore_warn;
	o.cb_ctx = &prog;
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ps_error_clear(&err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = ps_restore(store, project, snap, argv[optind + 1], &o, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cli_progress_done(&prog);
	ps_store_free(store);
	if (rc)
		return cli_fail(&err);
	if (cli->json)
		cli_print_json(json_pack("{s:s, s:s, s:s, s:f}", "project", project, "snapshot",
					 snap ? snap : "latest", "target", argv[optind + 1], "seconds",
					 (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9));
	return 0;
}
