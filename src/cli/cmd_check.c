/* cmd_check.c - projstore check [--read-data] [--repair-from OTHER] [PROJECT...] */
#define _GNU_SOURCE
#include "cli.h"
#include "projstore_sync.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

struct check_out {
	struct cli_progress prog;
	int json;
	int quiet;                 /* the check after a repair: count only */
	json_t *arr;
	uint8_t (*ids)[32];        /* damaged or missing objects (for --repair-from) */
	size_t nids, idcap;
	uint8_t (*packs)[32];      /* packs found damaged as a whole */
	size_t npacks, packcap;
};

static void add_id(uint8_t (**v)[32], size_t *n, size_t *cap, const uint8_t id[32])
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		uint8_t (*nv)[32] = realloc(*v, nc * 32);
		if (!nv)
			return;
		*v = nv;
		*cap = nc;
	}
	memcpy((*v)[(*n)++], id, 32);
}

static void on_damaged(void *ctx, const uint8_t id[32])
{
	struct check_out *o = ctx;
	add_id(&o->ids, &o->nids, &o->idcap, id);
}

/* "packs/XX/<64 hex>.pack" -> the pack id */
static int pack_of(const char *where, uint8_t id[32])
{
	char hex[65];
	if (strlen(where) != 80 || strncmp(where, "packs/", 6) || where[8] != '/' ||
	    strcmp(where + 73, ".pack"))
		return -1;
	memcpy(hex, where + 9, 64);
	hex[64] = 0;
	for (int i = 0; i < 64; i++) {
		int v = hex[i] >= '0' && hex[i] <= '9' ? hex[i] - '0' : hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		id[i / 2] = (uint8_t)(i % 2 ? (id[i / 2] | v) : v << 4);
	}
	return 0;
}

static void on_problem(void *ctx, const char *where, const char *msg)
{
	struct check_out *o = ctx;
	uint8_t pid[32];
	if (strncmp(msg, "note:", 5) && !pack_of(where, pid))
		add_id(&o->packs, &o->npacks, &o->packcap, pid);
	if (o->quiet)
		return;
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

static void repair_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	fprintf(stderr, "projstore: %s%s\n", level ? "warning: " : "", line);
}

static json_t *check_json(const struct ps_check_result *r, json_t *problems)
{
	return json_pack("{s:b, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I}", "ok", r->problems == 0,
			 "packs", (json_int_t)r->packs, "objects", (json_int_t)r->objects, "snapshots",
			 (json_int_t)r->snapshots, "trees", (json_int_t)r->trees, "problems", problems,
			 "damaged_objects", (json_int_t)r->damaged_objects, "damaged_files",
			 (json_int_t)r->damaged_files, "damaged_snapshots", (json_int_t)r->damaged_snapshots,
			 "leftovers", (json_int_t)r->leftovers);
}

/* check found damage: fetch good copies from `from`, then check again. */
static int repair(struct cli *cli, struct ps_store *store, const char *from,
		  const struct ps_check_opts *co, struct check_out *out, struct ps_check_result *r)
{
	struct ps_repair_opts ro = PS_REPAIR_OPTS_INIT;
	struct ps_repair_result *rr = NULL;
	struct ps_check_result after;
	struct ps_check_opts o2 = *co;
	struct check_out quiet;
	struct ps_error err;
	int rc, code;
	ro.log = repair_log;
	if (!cli->json)
		printf("checked %llu packs, %llu objects, %llu snapshots, %llu trees%s\n",
		       (unsigned long long)r->packs, (unsigned long long)r->objects,
		       (unsigned long long)r->snapshots, (unsigned long long)r->trees,
		       co->read_data ? " (all data read and verified)" : "");
	if (!cli->json)
		printf("DAMAGE: %llu problems, %llu damaged objects, %llu files in %llu snapshots affected\n",
		       (unsigned long long)r->problems, (unsigned long long)r->damaged_objects,
		       (unsigned long long)r->damaged_files, (unsigned long long)r->damaged_snapshots);
	ps_error_clear(&err);
	rc = ps_repair(store, from, (const uint8_t (*)[32])out->ids, out->nids,
		       (const uint8_t (*)[32])out->packs, out->npacks, &ro, &rr, &err);
	if (rc) {
		json_decref(out->arr);
		ps_store_free(store);
		cli_error("repair failed: %s", err.msg);
		return rc == PS_EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	/* the store as it is now, through a fresh handle (the index changed) */
	ps_store_free(store);
	store = NULL;
	if (cli_open_store(cli, &store)) {
		json_decref(out->arr);
		ps_repair_result_free(rr);
		return EXIT_FAIL;
	}
	memset(&quiet, 0, sizeof(quiet));
	quiet.quiet = 1;
	o2.problem = on_problem;
	o2.progress = NULL;
	o2.damaged = NULL;
	o2.cb_ctx = &quiet;
	ps_error_clear(&err);
	rc = ps_check(store, &o2, &after, &err);
	free(quiet.ids);
	free(quiet.packs);
	if (cli->json) {
		json_t *items = json_array(), *notes = json_array(), *j;
		for (size_t i = 0; i < rr->nnotes; i++)
			json_array_append_new(notes, json_string(rr->notes[i]));
		for (size_t i = 0; i < rr->nitems; i++)
			json_array_append_new(items, json_pack("{s:s, s:b, s:s}", "object", rr->items[i].object,
							       "repaired", rr->items[i].repaired, "message",
							       rr->items[i].message ? rr->items[i].message : ""));
		j = check_json(r, out->arr);
		json_object_set_new(j, "repair", json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o}",
			"from", from, "repaired", (json_int_t)rr->repaired, "unrepaired",
			(json_int_t)rr->unrepaired, "packs_removed", (json_int_t)rr->packs_retired,
			"packs_kept", (json_int_t)rr->packs_kept, "objects", items, "notes", notes,
			"after", rc ? json_null() : check_json(&after, json_array())));
		cli_print_json(j);
	} else {
		for (size_t i = 0; i < rr->nitems; i++)
			printf("%s object %s: %s\n", rr->items[i].repaired ? "repaired" : "NOT REPAIRED",
			       rr->items[i].object, rr->items[i].message ? rr->items[i].message : "");
		printf("repair from %s: %llu object(s) repaired, %llu could not be; %llu damaged pack(s) "
		       "removed, %llu kept\n", from, (unsigned long long)rr->repaired,
		       (unsigned long long)rr->unrepaired, (unsigned long long)rr->packs_retired,
		       (unsigned long long)rr->packs_kept);
		if (rc)
			printf("the check after the repair failed: %s\n", err.msg);
		else if (after.problems)
			printf("after the repair: %llu problems remain, %llu damaged objects (run check to see "
			       "them)\n", (unsigned long long)after.problems,
			       (unsigned long long)after.damaged_objects);
		else
			printf("after the repair: no problems found\n");
	}
	code = rc ? EXIT_FAIL : after.problems ? EXIT_DAMAGED : EXIT_OK;
	ps_repair_result_free(rr);
	ps_store_free(store);
	return code;
}

int cmd_check(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { { "read-data", no_argument, NULL, 'r' },
					     { "repair-from", required_argument, NULL, 'R' },
					     CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const char *repair_from = NULL;
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
		else if (c == 'R')
			repair_from = optarg;
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
	o.damaged = on_damaged;
	o.cb_ctx = &out;
	if ((rc = cli_open_store(cli, &store))) {
		json_decref(out.arr);
		return rc;
	}
	ps_error_clear(&err);
	rc = ps_check(store, &o, &r, &err);
	cli_progress_done(&out.prog);
	if (!rc && repair_from && r.problems) {
		int code = repair(cli, store, repair_from, &o, &out, &r);   /* frees store */
		free(out.ids);
		free(out.packs);
		return code;
	}
	ps_store_free(store);
	free(out.ids);
	free(out.packs);
	if (rc) {
		json_decref(out.arr);
		return cli_fail(&err);
	}
	if (cli->json) {
		cli_print_json(check_json(&r, out.arr));
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
