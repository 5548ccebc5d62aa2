/* cmd_save.c - projstore save PROJECT DIR */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct save_cb {
	struct cli_progress prog;
	json_t *skipped;
	int json;
};

static void save_warn(void *ctx, const char *path, const char *msg)
{
	struct save_cb *s = ctx;
	cli_progress_done(&s->prog);
	fputs("projstore: warning: '", stderr);
	cli_print_escaped(stderr, path, strlen(path));
	fprintf(stderr, "': %s (skipped)\n", msg);
	if (s->skipped)
		json_array_append_new(s->skipped, json_pack("{s:o, s:s}", "path",
							    cli_json_bytes(path, strlen(path)),
							    "error", msg));
}

static void save_progress(void *ctx, const char *phase, uint64_t a, uint64_t b, uint64_t c,
			  uint64_t d)
{
	struct save_cb *s = ctx;
	cli_progress_cb(&s->prog, phase, a, b, c, d);
}

int cmd_save(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "compression", required_argument, NULL, 'c' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "cross-filesystems", no_argument, NULL, 'X' },
		{ "lock-timeout", required_argument, NULL, 'L' },
		{ "cache-dir", required_argument, NULL, 'C' },
		{ "threads", required_argument, NULL, 't' },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("save");
	struct ps_save_opts o = PS_SAVE_OPTS_INIT;
	struct ps_snapshot_info si;
	struct ps_store *store = NULL;
	struct ps_error err;
	struct save_cb cb;
	const char **ex = calloc((size_t)argc + 1, sizeof(char *));
	size_t nex = 0;
	int c, rc;
	long v;
	char *end;

	if (cli_save_is_request(argc, argv)) {
		/* save PROJECT [--wait]: a request to the project's host */
		free(ex);
		return cmd_save_request(cli, argc, argv);
	}
	memset(&cb, 0, sizeof(cb));
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'u':
		case 'g':
			if (cli_parse_long(optarg, 0, 4294967294L, &v)) {
				free(ex);
				return cli_usage(cmd, "invalid %s '%s'", c == 'u' ? "uid" : "gid", optarg);
			}
			if (c == 'u')
				o.uid = v;
			else
				o.gid = v;
			break;
		case 'c': o.compression = optarg; break;
		case 'x': ex[nex++] = optarg; break;
		case 'X': o.cross_filesystems = 1; break;
		case 'C': o.cache_dir = optarg; break;
		case 't':
			if (cli_parse_long(optarg, 1, 256, &v)) {
				free(ex);
				return cli_usage(cmd, "invalid thread count '%s'", optarg);
			}
			o.threads = (int)v;
			break;
		case 'L':
			o.lock_timeout = strtod(optarg, &end);
			if (*end || end == optarg || o.lock_timeout < 0) {
				free(ex);
				return cli_usage(cmd, "invalid lock timeout '%s'", optarg);
			}
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0) {
				free(ex);
				return EXIT_USAGE;
			}
		}
	}
	if (argc - optind != 2) {
		free(ex);
		return cli_usage(cmd, argc - optind < 2 ? "PROJECT and DIR are required" : "too many arguments");
	}
	if ((rc = cli_check_project(cmd, argv[optind]))) {
		free(ex);
		return rc;
	}
	o.excludes = nex ? ex : NULL;
	if (!o.cache_dir)
		o.cache_dir = getenv("PROJSTORE_CACHE_DIR");
	cli_progress_init(&cb.prog);
	cb.json = cli->json;
	cb.skipped = cli->json ? json_array() : NULL;
	o.progress = save_progress;
	o.warn = save_warn;
	o.cb_ctx = &cb;
	if ((rc = cli_open_store(cli, &store))) {
		free(ex);
		json_decref(cb.skipped);
		return rc;
	}
	ps_error_clear(&err);
	rc = ps_save(store, argv[optind], argv[optind + 1], &o, &si, &err);
	cli_progress_done(&cb.prog);
	cli_catalog_saved(cli, store, argv[optind], rc, &si, &err);
	ps_store_free(store);
	free(ex);
	if (rc) {
		json_decref(cb.skipped);
		return cli_fail(&err);
	}
	if (cli->json) {
		cli_print_json(json_pack("{s:o, s:o}", "snapshot", cli_snapshot_json(&si, si.time_ns),
					 "skipped", cb.skipped));
	} else {
		char lb[32], nb[32];
		ps_format_size(si.logical_bytes, lb, sizeof(lb));
		ps_format_size(si.new_bytes, nb, sizeof(nb));
		printf("saved %s@%s: %llu files, %s, %s new, %.2f s\n", si.project, si.name,
		       (unsigned long long)si.files, lb, nb, (double)si.duration_ms / 1000.0);
	}
	if (si.errors)
		fprintf(stderr, "projstore: warning: %llu entries could not be read and were skipped\n",
			(unsigned long long)si.errors);
	if (si.over_quota) {
		char q[32], l[32];
		ps_format_size(si.quota_bytes, q, sizeof(q));
		ps_format_size(si.logical_bytes, l, sizeof(l));
		fprintf(stderr, "projstore: warning: project '%s' is over its quota (%s used, quota %s)\n",
			si.project, l, q);
	}
	if (si.errors && si.over_quota)
		return EXIT_PARTIAL_QUOTA;
	if (si.over_quota)
		return EXIT_QUOTA;
	if (si.errors)
		return EXIT_PARTIAL;
	return 0;
}
