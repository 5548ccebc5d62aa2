/* cmd_mount.c - projstore mount PROJECT MOUNTPOINT: every snapshot of a
 * project as a read-only FUSE file system (src/daemon/fuse_mount.c). */
#define _GNU_SOURCE
#include "cli.h"
#include "../daemon/fuse_mount.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cmd_mount(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "allow-other", no_argument, NULL, 'a' }, { "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },   { "foreground", no_argument, NULL, 'f' },
		{ "tree-cache", required_argument, NULL, 'T' },
		{ "chunk-cache", required_argument, NULL, 'C' },
		{ "readahead", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "debug", no_argument, NULL, 'd' },
		CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("mount");
	struct ps_snapfs_opts so = PS_SNAPFS_OPTS_INIT;
	struct ps_fuse_opts fo = PS_FUSE_OPTS_INIT;
	struct ps_snapfs *fs = NULL;
	struct ps_error err;
	char mnt[PATH_MAX], fsname[96];
	struct stat st;
	uint64_t size;
	int c, rc;
	long v;
	optind = 1;
	while ((c = getopt_long(argc, argv, "fh", lo, NULL)) != -1) {
		switch (c) {
		case 'a': fo.allow_other = 1; break;
		case 'f': fo.foreground = 1; break;
		case 'd': fo.debug = 1; fo.foreground = 1; break;
		case 'u':
		case 'g':
			if (cli_parse_long(optarg, 0, 4294967294L, &v))
				return cli_usage(cmd, "invalid %s '%s'", c == 'u' ? "uid" : "gid", optarg);
			if (c == 'u')
				so.uid = v;
			else
				so.gid = v;
			break;
		case 'T':
		case 'C':
			if (ps_parse_size(optarg, &size) || size < ((uint64_t)1 << 20) ||
			    size > ((uint64_t)1 << 40))
				return cli_usage(cmd, "invalid cache size '%s' (1M to 1T)", optarg);
			if (c == 'T')
				so.tree_cache_bytes = (size_t)size;
			else
				so.chunk_cache_bytes = (size_t)size;
			break;
		case 'r':
			if (cli_parse_long(optarg, 0, 256, &v))
				return cli_usage(cmd, "invalid read-ahead '%s' (0 to 256 chunks)", optarg);
			so.readahead_chunks = v ? (int)v : -1;
			break;
		case 't':
			if (cli_parse_long(optarg, 1, 256, &v))
				return cli_usage(cmd, "invalid thread count '%s'", optarg);
			fo.threads = (int)v;
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 2)
		return cli_usage(cmd, "expected PROJECT MOUNTPOINT");
	if ((rc = cli_check_project(cmd, argv[optind])))
		return rc;
	/* absolute: the daemon changes to / and unmounts by this path */
	if (!realpath(argv[optind + 1], mnt) || stat(mnt, &st) || !S_ISDIR(st.st_mode)) {
		cli_error("mount point '%s' is not an existing directory", argv[optind + 1]);
		return EXIT_FAIL;
	}
	ps_error_clear(&err);
	rc = ps_snapfs_open(&fs, cli->store, argv[optind], &so, &err);
	if (rc)
		return cli_fail(&err);
	snprintf(fsname, sizeof(fsname), "projstore:%s", argv[optind]);
	fo.mountpoint = mnt;
	fo.fsname = fsname;
	rc = ps_fuse_serve(fs, &fo, &err);
	ps_snapfs_free(fs);
	if (rc)
		return cli_fail(&err);
	return 0;
}
