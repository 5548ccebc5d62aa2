/*
 * cmd_projects.c - projstore projects [--search TEXT] [--host NAME] [--status S]
 *                  [--limit N] [--after ID] [--json]
 *                  projstore events PROJECT [--limit N] [--json]
 */
#define _GNU_SOURCE
#include "cli.h"
#include "projstore_catalog.h"

#include "cli_api.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ps_strbuf_q {
	char buf[1024];
	size_t len;
};

/* Appends &key=s to b, s percent-encoded; nothing for s NULL. */
static void qs_add(struct ps_strbuf_q *b, const char *key, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	if (!s)
		return;
	b->len += (size_t)snprintf(b->buf + b->len, sizeof(b->buf) - b->len, "%s%s=",
				   b->len ? "&" : "?", key);
	for (const unsigned char *p = (const unsigned char *)s; *p && b->len + 4 < sizeof(b->buf); p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			b->buf[b->len++] = (char)*p;
		} else {
			b->buf[b->len++] = '%';
			b->buf[b->len++] = hex[*p >> 4];
			b->buf[b->len++] = hex[*p & 15];
		}
	}
	b->buf[b->len] = 0;
}

/* One row of the projects table, from the catalog or from the API. */
struct row {
	const char *id, *host, *status, *age;
	int maintenance;
	uint64_t logical, quota;
	double compr, dedup;
};

static void print_header(void)
{
	printf("%-36s %-14s %-10s %10s %10s %6s %6s  %s\n", "PROJECT", "HOST", "STATUS", "SIZE",
	       "QUOTA", "COMPR", "DEDUP", "LAST SNAPSHOT");
}

static void print_row(const struct row *r)
{
	char size[32], quota[32] = "-", status[40];
	ps_format_size(r->logical, size, sizeof(size));
	if (r->quota > 0)
		ps_format_size(r->quota, quota, sizeof(quota));
	snprintf(status, sizeof(status), "%s%s", r->status, r->maintenance ? "*" : "");
	printf("%-36s %-14s %-10s %10s %10s %5.2fx %5.2fx  %s\n", r->id, r->host[0] ? r->host : "-",
	       status, size, quota, r->compr, r->dedup, r->age);
}

static double jnum(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *jstr(json_t *o, const char *k, const char *dflt)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : dflt;
}

/* `projects` answered by the API at url: pages of GET /v1/projects (1,000 at
 * most each) until the listing or --limit ends. The objects are the API's,
 * which are those of `projects --json`. */
static int projects_api(struct cli *cli, const char *url, const struct ps_cat_query *q)
{
	json_t *all = json_array();
	char cursor[PS_CAT_ID_MAX + 1] = "";
	int rc = EXIT_FAIL;
	if (q->after)
		snprintf(cursor, sizeof(cursor), "%s", q->after);
	for (;;) {
		struct ps_strbuf_q b = { "", 0 };
		char path[1200], lim[16];
		size_t want = 1000;
		json_t *j, *page, *next;
		if (q->limit > 0) {
			size_t have = json_array_size(all);
			if (have >= (size_t)q->limit)
				break;
			want = (size_t)q->limit - have < 1000 ? (size_t)q->limit - have : 1000;
		}
		snprintf(lim, sizeof(lim), "%zu", want);
		qs_add(&b, "search", q->search);
		qs_add(&b, "host", q->host);
		qs_add(&b, "status", q->status);
		qs_add(&b, "limit", lim);
		if (cursor[0])
			qs_add(&b, "cursor", cursor);
		snprintf(path, sizeof(path), "/v1/projects%s", b.buf);
		if ((rc = cli_api_get_json(url, path, 30.0, &j)))
			goto done;
		rc = EXIT_FAIL;
		page = json_object_get(j, "projects");
		next = json_object_get(j, "next_cursor");
		if (!json_is_array(page)) {
			cli_error("%s: an answer that is not a listing", url);
			json_decref(j);
			goto done;
		}
		json_array_extend(all, page);
		if (!json_is_string(next)) {
			json_decref(j);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
		json_decref(j);
	}
	if (cli->json) {
		cli_print_json(all);
		all = NULL;
	} else {
		size_t i;
		json_t *p;
		print_header();
		json_array_foreach(all, i, p) {
			json_t *ls = json_object_get(p, "last_snapshot");
			struct row r = { jstr(p, "id", "?"), jstr(p, "host", ""), jstr(p, "status", "?"),
					 json_is_object(ls) ? jstr(ls, "age", "?") : "never",
					 json_is_true(json_object_get(p, "maintenance")),
					 (uint64_t)jnum(p, "logical_bytes"), (uint64_t)jnum(p, "quota_bytes"),
					 jnum(p, "compressratio"), jnum(p, "dedupratio") };
			print_row(&r);
		}
	}
	rc = fflush(stdout) ? EXIT_FAIL : 0;
done:
	json_decref(all);
	return rc;
}

int cmd_projects(struct cli *cli, int argc, char **argv)
{
	enum { O_SEARCH = 300, O_HOST, O_STATUS, O_LIMIT, O_AFTER, O_API };
	static const struct option lo[] = {
		CLI_COMMON_LONGOPTS,
		{ "search", required_argument, NULL, O_SEARCH },
		{ "host", required_argument, NULL, O_HOST },
		{ "status", required_argument, NULL, O_STATUS },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "after", required_argument, NULL, O_AFTER },
		{ "api", required_argument, NULL, O_API },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("projects");
	struct ps_cat_query q = PS_CAT_QUERY_INIT;
	const char *api = NULL;
	long limit = 0;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_API: api = optarg; break;
		case O_SEARCH: q.search = optarg; break;
		case O_HOST: q.host = optarg; break;
		case O_STATUS: q.status = optarg; break;
		case O_AFTER: q.after = optarg; break;
		case O_LIMIT:
			if (cli_parse_long(optarg, 1, 1000000000, &limit))
				return cli_usage(cmd, "invalid --limit '%s'", optarg);
			q.limit = (int)limit;
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (argc != optind)
		return cli_usage(cmd, "no arguments expected");
	if ((api = cli_api_url(cli, api)))
		return projects_api(cli, api, &q);
	struct ps_catalog *cat;
	if ((rc = cli_open_catalog(cli, &cat)))
		return rc;
	struct ps_error err;
	struct ps_cat_project *v;
	size_t n;
	ps_error_clear(&err);
	rc = ps_cat_project_list(cat, &q, &v, &n, &err);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return rc == PS_EINVAL ? (cli_error("%s", err.msg), EXIT_USAGE) : cli_fail(&err);
	int64_t now = ps_cat_now();
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, ps_cat_project_json(&v[i], now));
		cli_print_json(a);
	} else {
		print_header();
		for (size_t i = 0; i < n; i++) {
			struct ps_cat_project *p = &v[i];
			char age[64] = "never";
			if (p->last_snapshot_at > 0)
				ps_format_age(p->last_snapshot_at * 1000, now * 1000, age, sizeof(age));
			struct row r = { p->id, p->host, p->status, age, p->maintenance,
					 (uint64_t)p->logical_bytes,
					 p->quota_bytes > 0 ? (uint64_t)p->quota_bytes : 0, p->compressratio,
					 p->dedupratio };
			print_row(&r);
		}
	}
	free(v);
	return 0;
}

int cmd_events(struct cli *cli, int argc, char **argv)
{
	enum { O_LIMIT = 300 };
	static const struct option lo[] = {
		CLI_COMMON_LONGOPTS,
		{ "limit", required_argument, NULL, O_LIMIT },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("events");
	long limit = 100;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == O_LIMIT) {
			if (cli_parse_long(optarg, 1, 100000, &limit))
				return cli_usage(cmd, "invalid --limit '%s'", optarg);
		} else if (cli_common_opt(cli, cmd, c, optarg) < 0) {
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage(cmd, "expected PROJECT");
	const char *id = argv[optind];
	if ((rc = cli_check_project(cmd, id)))
		return rc;
	struct ps_catalog *cat;
	if ((rc = cli_open_catalog(cli, &cat)))
		return rc;
	struct ps_error err;
	struct ps_cat_event *v;
	size_t n;
	ps_error_clear(&err);
	rc = ps_cat_events(cat, id, (int)limit, &v, &n, &err);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return cli_fail(&err);
	int64_t now = ps_cat_now();
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, ps_cat_event_json(&v[i], now));
		cli_print_json(a);
	} else {
		/* oldest first on a terminal, like a log */
		for (size_t i = n; i-- > 0;) {
			char t[64], day[40];
			time_t sec = (time_t)(v[i].at / 1000000);
			struct tm tm;
			gmtime_r(&sec, &tm);
			strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(t, sizeof(t), "%s.%06dZ", day, (int)(v[i].at % 1000000));
			printf("%s  %-18s %-14s %s%s\n", t, v[i].kind, v[i].actor, v[i].error ? "ERROR " : "",
			       v[i].detail);
		}
	}
	free(v);
	return 0;
}
