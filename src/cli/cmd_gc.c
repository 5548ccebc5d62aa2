/* cmd_gc.c - projstore gc [--dry-run] [--max-repack-ratio R] [--grace SECONDS] */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

struct gc_out {
	struct cli_progress prog;
};

static void on_note(void *ctx, const char *where, const char *msg)
{
	struct gc_out *o = ctx;
	cli_progress_done(&o->prog);
	fprintf(stderr, "projstore: %s: %s\n", where, msg);
}

static void on_progress(void *ctx, const char *phase, uint64_t a, uint64_t b, uint64_t c,
			uint64_t d)
{
	struct gc_out *o = ctx;
	cli_progress_cb(&o->prog, phase, a, b, c, d);
}

static int parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

int cmd_gc(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { { "dry-run", no_argument, NULL, 'n' },
					     { "max-repack-ratio", required_argument, NULL, 'r' },
					     { "grace", required_argument, NULL, 'g' },
					     CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("gc");
	struct ps_gc_opts o = PS_GC_OPTS_INIT;
	struct ps_gc_result r;
	struct ps_store *store = NULL;
	struct ps_error err;
	struct gc_out out;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'n')
			o.dry_run = 1;
		else if (c == 'r') {
			if (parse_double(optarg, 0, 1, &o.max_repack_ratio))
				return cli_usage(cmd, "invalid --max-repack-ratio '%s' (0 to 1)", optarg);
		} else if (c == 'g') {
			if (parse_double(optarg, 0, 1e8, &o.grace))
				return cli_usage(cmd, "invalid --grace '%s' (seconds, 0 or more)", optarg);
		} else if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	}
	if (argc - optind != 0)
		return cli_usage(cmd, "gc takes no arguments");
	cli_progress_init(&out.prog);
	o.note = on_note;
	o.progress = on_progress;
	o.cb_ctx = &out;
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ps_error_clear(&err);
	rc = ps_gc(store, &o, &r, &err);
	cli_progress_done(&out.prog);
	ps_store_free(store);
	if (rc)
		return cli_fail(&err);
	if (cli->json) {
		json_t *j = json_pack(
			"{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			"s:I, s:I}",
			"dry_run", o.dry_run, "projects", (json_int_t)r.projects, "snapshots",
			(json_int_t)r.snapshots, "packs", (json_int_t)r.packs, "objects",
			(json_int_t)r.objects, "live_objects", (json_int_t)r.live_objects,
			"stored_bytes", (json_int_t)r.stored_bytes, "live_bytes",
			(json_int_t)r.live_bytes, "condemned_packs", (json_int_t)r.condemned_packs,
			"condemned_bytes", (json_int_t)r.condemned_bytes, "deleted_packs",
			(json_int_t)r.deleted_packs, "repacked_packs", (json_int_t)r.repacked_packs,
			"kept_packs", (json_int_t)r.kept_packs, "copied_objects",
			(json_int_t)r.copied_objects, "copied_bytes", (json_int_t)r.copied_bytes,
			"written_bytes", (json_int_t)r.written_bytes, "freed_bytes",
			(json_int_t)r.freed_bytes, "pending_lists", (json_int_t)r.pending_lists);
		cli_print_json(j);
	} else {
		char a[32], b[32], d[32], e[32];
		ps_format_size(r.stored_bytes, a, sizeof(a));
		ps_format_size(r.live_bytes, b, sizeof(b));
		ps_format_size(r.condemned_bytes, d, sizeof(d));
		printf("%llu projects, %llu snapshots; %llu packs hold %s, %s of it reachable\n",
		       (unsigned long long)r.projects, (unsigned long long)r.snapshots,
		       (unsigned long long)r.packs, a, b);
		if (o.dry_run) {
			printf("would condemn %llu packs (%s unreachable); nothing was changed\n",
			       (unsigned long long)r.condemned_packs, d);
		} else {
			ps_format_size(r.freed_bytes, a, sizeof(a));
			ps_format_size(r.copied_bytes, e, sizeof(e));
			printf("condemned %llu packs (%s unreachable)\n",
			       (unsigned long long)r.condemned_packs, d);
			printf("deleted %llu packs, repacked %llu (%llu objects, %s copied), kept %llu; "
			       "freed %s\n",
			       (unsigned long long)r.deleted_packs, (unsigned long long)r.repacked_packs,
			       (unsigned long long)r.copied_objects, e, (unsigned long long)r.kept_packs,
			       a);
		}
		if (r.pending_lists)
			printf("%llu condemned list(s) wait for a later gc (grace period, or saves that "
			       "started before)\n", (unsigned long long)r.pending_lists);
	}
	return 0;
}
