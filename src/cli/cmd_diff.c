/* cmd_diff.c - projstore diff PROJECT@A PROJECT@B */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <string.h>

struct diff_out {
	int json;
	json_t *arr;
	unsigned long n;
};

static int on_change(void *vctx, int kind, const char *path, int type)
{
	struct diff_out *d = vctx;
	d->n++;
	if (d->json) {
		json_array_append_new(
			d->arr, json_pack("{s:s, s:o, s:s}", "change",
					  kind == PS_DIFF_ADDED ? "added" : kind == PS_DIFF_REMOVED ? "removed" : "modified",
					  "path", cli_json_bytes(path, strlen(path)), "type",
					  type == PS_T_DIR ? "dir" : type == PS_T_REG ? "file" : type == PS_T_SYMLINK ? "symlink" : "other"));
		return 0;
	}
	printf("%c ", kind);
	cli_print_escaped(stdout, path, strlen(path));
	if (type == PS_T_DIR)
		putchar('/');
	putchar('\n');
	return 0;
}

int cmd_diff(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("diff");
	struct ps_store *store = NULL;
	struct ps_error err;
	struct diff_out d = { 0, NULL, 0 };
	char pa[72], pb[72];
	const char *sa, *sb;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	if (argc - optind != 2)
		return cli_usage(cmd, "expected PROJECT@A PROJECT@B");
	if ((rc = cli_split_ref(cmd, argv[optind], pa, sizeof(pa), &sa)) ||
	    (rc = cli_split_ref(cmd, argv[optind + 1], pb, sizeof(pb), &sb)))
		return rc;
	if (strcmp(pa, pb))
		return cli_usage(cmd, "both snapshots must be of the same project");
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	d.json = cli->json;
	d.arr = cli->json ? json_array() : NULL;
	ps_error_clear(&err);
	rc = ps_diff(store, pa, sa ? sa : "latest", sb ? sb : "latest", on_change, &d, &err);
	ps_store_free(store);
	if (rc) {
		json_decref(d.arr);
		return cli_fail(&err);
	}
	if (cli->json)
		cli_print_json(json_pack("{s:s, s:s, s:o}", "a", sa ? sa : "latest", "b", sb ? sb : "latest",
					 "changes", d.arr));
	return 0;
}
