/* cmd_ls.c - projstore ls PROJECT[@SNAPSHOT] [PATH] */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(int t)
{
	switch (t) {
	case PS_T_REG: return "file";
	case PS_T_DIR: return "dir";
	case PS_T_SYMLINK: return "symlink";
	case PS_T_FIFO: return "fifo";
	case PS_T_CHR: return "char";
	case PS_T_BLK: return "block";
	case PS_T_SOCK: return "socket";
	default: return "error";
	}
}

static char type_char(int t)
{
	switch (t) {
	case PS_T_REG: return '-';
	case PS_T_DIR: return 'd';
	case PS_T_SYMLINK: return 'l';
	case PS_T_FIFO: return 'p';
	case PS_T_CHR: return 'c';
	case PS_T_BLK: return 'b';
	case PS_T_SOCK: return 's';
	default: return '?';
	}
}

struct ls_ctx {
	int json, longfmt;
	json_t *arr;
};

static void mode_str(const struct ps_entry *e, char *b)
{
	static const char rwx[] = "rwxrwxrwx";
	b[0] = type_char(e->type);
	for (int i = 0; i < 9; i++)
		b[i + 1] = (e->mode & (0400u >> i)) ? rwx[i] : '-';
	if (e->mode & 04000)
		b[3] = (e->mode & 0100) ? 's' : 'S';
	if (e->mode & 02000)
		b[6] = (e->mode & 0010) ? 's' : 'S';
	if (e->mode & 01000)
		b[9] = (e->mode & 0001) ? 't' : 'T';
	b[10] = 0;
}

static int ls_entry(void *vctx, const struct ps_entry *e)
{
	struct ls_ctx *c = vctx;
	char mt[64];
	ps_format_time_ns(e->mtime_sec, e->mtime_nsec, mt, sizeof(mt));
	if (c->json) {
		char mode[8];
		snprintf(mode, sizeof(mode), "%04o", e->mode);
		json_array_append_new(
			c->arr,
			json_pack("{s:o, s:s, s:s, s:I, s:I, s:I, s:s, s:o, s:o}", "name",
				  cli_json_bytes(e->name, e->name_len), "type", type_name(e->type), "mode",
				  mode, "uid", (json_int_t)e->uid, "gid", (json_int_t)e->gid, "size",
				  (json_int_t)e->size, "mtime", mt, "target",
				  e->target ? cli_json_bytes(e->target, e->target_len) : json_null(), "error",
				  e->error ? cli_json_bytes(e->error, e->error_len) : json_null()));
		return 0;
	}
	if (c->longfmt) {
		char m[12];
		mode_str(e, m);
		printf("%s %6u %6u %12llu %.19s ", m, e->uid, e->gid, (unsigned long long)e->size, mt);
	}
	cli_print_escaped(stdout, e->name, e->name_len);
	if (e->type == PS_T_DIR)
		putchar('/');
	if (c->longfmt && e->target) {
		fputs(" -> ", stdout);
		cli_print_escaped(stdout, e->target, e->target_len);
	}
	if (e->error) {
		fputs("  [unreadable when saved: ", stdout);
		cli_print_escaped(stdout, e->error, e->error_len);
		putchar(']');
	}
	putchar('\n');
	return 0;
}

int cmd_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { { "long", no_argument, NULL, 'l' }, CLI_COMMON_LONGOPTS,
					     { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("ls");
	struct ps_store *store = NULL;
	struct ps_error err;
	struct ls_ctx ctx = { 0, 0, NULL };
	char project[72];
	const char *snap, *path;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "lh", lo, NULL)) != -1) {
		if (c == 'l')
			ctx.longfmt = 1;
		else if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	}
	if (argc - optind < 1 || argc - optind > 2)
		return cli_usage(cmd, "expected PROJECT[@SNAPSHOT] [PATH]");
	if ((rc = cli_split_ref(cmd, argv[optind], project, sizeof(project), &snap)))
		return rc;
	path = argc - optind == 2 ? argv[optind + 1] : "";
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ctx.json = cli->json;
	ctx.arr = cli->json ? json_array() : NULL;
	ps_error_clear(&err);
	rc = ps_ls(store, project, snap, path, ls_entry, &ctx, &err);
	ps_store_free(store);
	if (rc) {
		json_decref(ctx.arr);
		return cli_fail(&err);
	}
	if (cli->json)
		cli_print_json(json_pack("{s:o, s:o}", "path", cli_json_bytes(path, strlen(path)),
					 "entries", ctx.arr));
	return 0;
}
