/*
 * cmd_prune.c - projstore prune PROJECT|--all [--keep-...] [--dry-run]
 *
 * Also the --keep-... option parsing and the JSON form of a policy, shared
 * with `policy` (cmd_policy.c).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

int cli_keep_opt(const struct command *cmd, int c, const char *arg, struct ps_keep_policy *p)
{
	long *count = NULL, v;
	const char *name = NULL;
	switch (c) {
	case CLI_KEEP_LAST: count = &p->last; name = "--keep-last"; break;
	case CLI_KEEP_15MIN: count = &p->min15; name = "--keep-15min"; break;
	case CLI_KEEP_HOURLY: count = &p->hourly; name = "--keep-hourly"; break;
	case CLI_KEEP_DAILY: count = &p->daily; name = "--keep-daily"; break;
	case CLI_KEEP_WEEKLY: count = &p->weekly; name = "--keep-weekly"; break;
	case CLI_KEEP_MONTHLY: count = &p->monthly; name = "--keep-monthly"; break;
	case CLI_KEEP_WITHIN: {
		int64_t t;
		if (strlen(arg) >= sizeof(p->within) || ps_duration_before(arg, 0, &t)) {
			cli_usage(cmd, "invalid duration '%s' for --keep-within (e.g. 2d, 36h, 1y6m; "
				       "units y, m (months), w, d, h, min, s)", arg);
			return -1;
		}
		snprintf(p->within, sizeof(p->within), "%s", arg);
		return 1;
	}
	default:
		return 0;
	}
	if (cli_parse_long(arg, -1, 1000000000L, &v) || !v) {
		cli_usage(cmd, "invalid count '%s' for %s (1 or more, or -1 for unlimited)", arg, name);
		return -1;
	}
	*count = v;
	return 1;
}

json_t *cli_policy_json(const struct ps_keep_policy *p)
{
	json_t *j = json_object();
	const struct { const char *k; long v; } counts[] = {
		{ "last", p->last }, { "15min", p->min15 }, { "hourly", p->hourly },
		{ "daily", p->daily }, { "weekly", p->weekly }, { "monthly", p->monthly },
	};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		json_object_set_new(j, counts[i].k,
				    counts[i].v ? json_integer(counts[i].v) : json_null());
	json_object_set_new(j, "within", p->within[0] ? json_string(p->within) : json_null());
	return j;
}

void cli_policy_format(const struct ps_keep_policy *p, char *buf, size_t len)
{
	const struct { const char *k; long v; } counts[] = {
		{ "keep-last", p->last }, { "keep-15min", p->min15 }, { "keep-hourly", p->hourly },
		{ "keep-daily", p->daily }, { "keep-weekly", p->weekly }, { "keep-monthly", p->monthly },
	};
	size_t used = 0;
	buf[0] = 0;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]) && used < len; i++)
		if (counts[i].v)
			used += (size_t)snprintf(buf + used, len - used, "%s%s %ld", used ? ", " : "",
						 counts[i].k, counts[i].v);
	if (p->within[0] && used < len)
		used += (size_t)snprintf(buf + used, len - used, "%skeep-within %s", used ? ", " : "",
					 p->within);
	if (!used)
		snprintf(buf, len, "none");
}

static json_t *reasons_json(unsigned r)
{
	static const char *const names[] = { "newest", "last", "within", "15min",
					     "hourly", "daily", "weekly", "monthly" };
	json_t *a = json_array();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (r & (1u << i))
			json_array_append_new(a, json_string(names[i]));
	return a;
}

int cmd_prune(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_KEEP_LONGOPTS,
					     { "all", no_argument, NULL, 'a' },
					     { "dry-run", no_argument, NULL, 'n' },
					     CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("prune");
	struct ps_keep_policy pol = PS_KEEP_POLICY_INIT;
	struct ps_prune_opts o = PS_PRUNE_OPTS_INIT;
	struct ps_store *store = NULL;
	struct ps_error err;
	char **projects = NULL;
	size_t np = 0;
	uint64_t removed = 0, kept = 0;
	json_t *jprojects = NULL;
	int c, rc, all = 0, worst = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		int k = cli_keep_opt(cmd, c, optarg, &pol);
		if (k < 0)
			return EXIT_USAGE;
		if (k)
			continue;
		if (c == 'a')
			all = 1;
		else if (c == 'n')
			o.dry_run = 1;
		else if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	}
	if (all ? argc - optind != 0 : argc - optind != 1)
		return cli_usage(cmd, "expected PROJECT or --all");
	if (!all && (rc = cli_check_project(cmd, argv[optind])))
		return rc;
	o.policy = &pol;
	if ((rc = cli_open_store(cli, &store)))
		return rc;
	ps_error_clear(&err);
	if (all) {
		if (ps_project_list(store, &projects, &np, &err)) {
			ps_store_free(store);
			return cli_fail(&err);
		}
	} else {
		projects = calloc(1, sizeof(char *));
		if (!projects || !(projects[0] = strdup(argv[optind]))) {
			ps_store_free(store);
			cli_error("out of memory");
			return EXIT_FAIL;
		}
		np = 1;
	}
	jprojects = json_array();
	for (size_t i = 0; i < np; i++) {
		struct ps_prune_item *it = NULL;
		struct ps_keep_policy used = PS_KEEP_POLICY_INIT;
		size_t n = 0, nrm = 0;
		char ptext[256];
		ps_error_clear(&err);
		rc = ps_prune(store, projects[i], &o, &it, &n, &used, &err);
		if (rc == PS_EINVAL && all) {
			/* --all: a project without any policy keeps everything */
			if (cli->json)
				json_array_append_new(jprojects,
						      json_pack("{s:s, s:n, s:[], s:[], s:s}", "project",
								projects[i], "policy", "keep", "remove",
								"skipped", "no retention policy"));
			else
				printf("%s: no retention policy, nothing removed\n", projects[i]);
			continue;
		}
		if (rc) {
			int code = cli_fail(&err);
			if (!worst || code == EXIT_LOCKED)
				worst = code;
			continue;
		}
		for (size_t k = 0; k < n; k++)
			if (!it[k].reasons)
				nrm++;
		removed += nrm;
		kept += n - nrm;
		cli_policy_format(&used, ptext, sizeof(ptext));
		if (cli->json) {
			json_t *jk = json_array(), *jr = json_array();
			for (size_t k = n; k-- > 0;) {
				char t[64];
				ps_format_time_ns(it[k].info.time_ns / 1000000000LL,
						  (uint32_t)(it[k].info.time_ns % 1000000000LL), t, sizeof(t));
				if (it[k].reasons)
					json_array_append_new(jk, json_pack("{s:s, s:s, s:o}", "name",
									    it[k].info.name, "time", t,
									    "reasons",
									    reasons_json(it[k].reasons)));
				else
					json_array_append_new(jr, json_pack("{s:s, s:s}", "name",
									    it[k].info.name, "time", t));
			}
			json_array_append_new(jprojects,
					      json_pack("{s:s, s:o, s:o, s:o}", "project", projects[i],
							"policy", cli_policy_json(&used), "keep", jk,
							"remove", jr));
		} else {
			printf("%s: %s %zu of %zu snapshots (%s)\n", projects[i],
			       o.dry_run ? "would remove" : "removed", nrm, n, ptext);
			for (size_t k = n; k-- > 0;) {
				char why[128];
				ps_keep_reasons_format(it[k].reasons, why, sizeof(why));
				if (it[k].reasons)
					printf("  keep    %s  (%s)\n", it[k].info.name, why);
				else
					printf("  %s  %s\n", o.dry_run ? "remove?" : "removed", it[k].info.name);
			}
		}
		free(it);
	}
	ps_strv_free(projects, np);
	ps_store_free(store);
	if (cli->json)
		cli_print_json(json_pack("{s:b, s:o, s:I, s:I}", "dry_run", o.dry_run, "projects",
					 jprojects, "removed", (json_int_t)removed, "kept",
					 (json_int_t)kept));
	else
		json_decref(jprojects);
	if (!cli->json && !o.dry_run && removed)
		printf("the data of removed snapshots is freed by the next 'projstore gc'\n");
	return worst;
}
