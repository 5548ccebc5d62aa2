/*
 * cmd_volume.c - projstore volume add|rm data|scratch [PATH] [--host NAME],
 * projstore volume [list]: the shared areas mounted into every sandbox
 * (data read-only at /data, scratch read-write at /scratch).  Kept in the
 * catalog; a host's own entry wins over the one for every host.  Sandboxes
 * started afterwards get them; running ones keep what they had until stopped.
 */
#define _GNU_SOURCE
#include "cli_host.h"
#include "projstore_catalog.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cmd_volume(struct cli *cli, int argc, char **argv)
{
	enum { O_HOST = 1000 };
	static const struct option lo[] = { CLI_COMMON_LONGOPTS,
					    { "host", required_argument, NULL, O_HOST },
					    { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("volume");
	const char *host = "";
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == O_HOST)
			host = optarg;
		else if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	}
	const char *verb = optind < argc ? argv[optind++] : "list";
	int add = !strcmp(verb, "add"), rm = !strcmp(verb, "rm") || !strcmp(verb, "remove");
	if (!add && !rm && strcmp(verb, "list"))
		return cli_usage(cmd, "unknown action '%s' (add, rm, list)", verb);
	const char *kind = NULL, *path = NULL;
	if (add || rm) {
		if (argc - optind != (add ? 2 : 1))
			return cli_usage(cmd, add ? "expected add data|scratch PATH" : "expected rm data|scratch");
		kind = argv[optind];
		if (strcmp(kind, "data") && strcmp(kind, "scratch"))
			return cli_usage(cmd, "unknown volume kind '%s' (data or scratch)", kind);
		if (add) {
			struct stat st;
			path = argv[optind + 1];
			if (path[0] != '/')
				return cli_usage(cmd, "PATH must be absolute: '%s'", path);
			if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
				cli_error("warning: '%s' is not a directory on this machine; it must be one on "
					  "the hosts that mount it", path);
		}
	} else if (argc - optind != 0) {
		return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
	}
	struct ps_catalog *cat;
	if ((rc = cli_open_catalog(cli, &cat)))
		return rc;
	struct ps_error err;
	ps_error_clear(&err);
	if (add)
		rc = ps_cat_volume_set(cat, host, kind, path, &err);
	else if (rm)
		rc = ps_cat_volume_remove(cat, host, kind, &err);
	struct ps_cat_volume *v = NULL;
	size_t n = 0;
	if (rc == PS_OK)
		rc = ps_cat_volume_list(cat, &v, &n, &err);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return cli_fail(&err);
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(
				a, json_pack("{s:o, s:s, s:s, s:s, s:b}", "host",
					     v[i].host[0] ? json_string(v[i].host) : json_null(), "kind",
					     v[i].kind, "path", v[i].path, "mounted_at",
					     !strcmp(v[i].kind, "data") ? PS_HOST_DATA : PS_HOST_SCRATCH,
					     "read_only", !strcmp(v[i].kind, "data")));
		cli_print_json(json_pack("{s:o}", "volumes", a));
	} else if (!add && !rm) {
		for (size_t i = 0; i < n; i++)
			printf("%-8s %-20s %s -> %s (%s)\n", v[i].kind, v[i].host[0] ? v[i].host : "(every host)",
			       v[i].path, !strcmp(v[i].kind, "data") ? PS_HOST_DATA : PS_HOST_SCRATCH,
			       !strcmp(v[i].kind, "data") ? "read-only" : "read-write");
	}
	free(v);
	return 0;
}
