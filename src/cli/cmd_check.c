/* cmd_check.c - projstore check [--read-data] [PROJECT...] */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <string.h>

struct check_out {
	struct cli_progress prog;
	int json;
	json_t *arr;
};

static void on_problem(void *ctx, const char *where, const char *msg)
{
	struct check_out *o = ctx;
	if (o->json) {
		int is_obj = !strncmp(where, "object ", 7) && strlen(where) == 71;
		json_array_append_new(o->arr, json_pack("{s:o, s:s}", is_obj ? "object" : "path",
							is_obj ? json_string(where + 7)
							       : cli_json_bytes(where, strlen(where)),
							"message", msg));
		return;
	}
	cli_progress_done(&o->prog);
	cli_print_escaped(stdout, where, strlen(where));
	printf(": %s\n", msg);
}

static void on_progress(void *ctx, const char *phase, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	struct check_out *o = ctx;
	cli_progress_cb(&o->prog, phase, a, b, c, d);
}

int cmd_check(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { { "read-data", no_argument, NULL, 'r' },
					     CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("check");
	struct ps_check_opts o = PS_CHECK_OPTS_INIT;
	struct ps_check_result r;
	struct ps_store *store = NULL;
	struct ps_error err;
	struct check_out out;
	int c, rc;
	memset(&out, 0, sizeof(out));
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'r')
			o.read_data = 1;
		else if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++)
		if ((rc = cli_check_project(cmd, argv[i])))
			return rc;
	if (optind < argc)
		o.projects = (const char *const *)(argv + optind);
	cli_progress_init(&out.prog);
	out.json = cli->json;
	out.arr = cli->json ? json_array() : NULL;
	o.problem = on_problem;
	o.progress = on_progress;
	o.cb_ctx = &out;
	if ((rc = cli_open_store(cli, &store))) {
		json_decref(out.arr);
		return rc;
	}
	ps_error_clear(&err);
	rc = ps_check(store, &o, &r, &err);
	cli_progress_done(&out.prog);
	ps_store_free(store);
	if (rc) {
		json_decref(out.arr);
		return cli_fail(&err);
	}
	if (cli->json) {
		cli_print_json(json_pack("{s:b, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I}", "ok",
					 r.problems == 0, "packs", (json_int_t)r.packs, "objects",
					 (json_int_t)r.objects, "snapshots", (json_int_t)r.snapshots, "trees",
					 (json_int_t)r.trees, "problems", out.arr, "damaged_objects",
					 (json_int_t)r.damaged_objects, "damaged_files",
					 (json_int_t)r.damaged_files, "damaged_snapshots",
					 (json_int_t)r.damaged_snapshots, "leftovers", (json_int_t)r.leftovers));
	} else {
		printf("checked %llu packs, %llu objects, %llu snapshots, %llu trees%s\n",
		       (unsigned long long)r.packs, (unsigned long long)r.objects,
		       (unsigned long long)r.snapshots, (unsigned long long)r.trees,
		       o.read_data ? " (all data read and verified)" : "");
		if (r.problems)
			printf("DAMAGE: %llu problems, %llu damaged objects, %llu files in %llu snapshots affected\n",
			       (unsigned long long)r.problems, (unsigned long long)r.damaged_objects,
			       (unsigned long long)r.damaged_files, (unsigned long long)r.damaged_snapshots);
		else
			printf("no problems found\n");
	}
	return r.problems ? EXIT_DAMAGED : 0;
}
