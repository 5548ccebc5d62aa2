/*
 * server_api.c - the /v1 endpoints of `projstore serve` (docs/API.md).
 *
 *   GET  /v1/projects?search=&host=&status=&limit=&cursor=
 *   GET  /v1/projects/{id}                 one catalog read, fresh location
 *   GET  /v1/projects/{id}/snapshots       from the store when the server has one
 *   GET  /v1/projects/{id}/events?limit=
 *   GET  /v1/projects/{id}/operations?limit=
 *   POST /v1/projects/{id}/open|save|close|move
 *   GET  /v1/operations/{op}
 *   GET  /v1/hosts
 *   GET  /v1/stores
 *   GET  /v1/summary
 *
 * Everything a client sends is checked here before the catalog sees it:
 * project ids (ps_project_id_valid), host names, operation ids, query
 * parameters (known names only, lengths, ranges), and POST bodies (a JSON
 * object with known keys of the right types).  The object shapes come from
 * catalog_json.c, the same as the commands' --json output.
 */
#define _GNU_SOURCE
#include "server_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../cli/cli.h"
#include "../lib/util/util.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

/* ------------------------------------------------------------ validation */

static int valid_host_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > PS_CAT_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

static int valid_status(const char *s)
{
	static const char *const st[] = { "stored", "deploying", "deployed", "saving", "closing",
					   "moving" };
	for (size_t i = 0; i < PS_ARRAY_LEN(st); i++)
		if (strcmp(s, st[i]) == 0)
			return 1;
	return 0;
}

/* printable ASCII, no control bytes */
static int valid_search(const char *s)
{
	if (strlen(s) > PS_CAT_ID_MAX)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

struct params {
	const char *names[8];
	size_t nnames;
	const char *bad;          /* first unknown parameter */
	int dup;                  /* a parameter given twice */
	const char *val[8];
};

static enum MHD_Result param_it(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	struct params *p = cls;
	(void)kind;
	for (size_t i = 0; i < p->nnames; i++) {
		if (strcmp(key, p->names[i]) == 0) {
			if (p->val[i])
				p->dup = 1;
			p->val[i] = value ? value : "";
			return MHD_YES;
		}
	}
	if (!p->bad)
		p->bad = key;
	return MHD_YES;
}

/* Collects the query parameters named in `names` (NULL-terminated) into
 * p->val; answers 400 itself for an unknown or repeated one. */
static int get_params(struct req *r, struct params *p, const char *const *names,
		      enum MHD_Result *ret)
{
	memset(p, 0, sizeof(*p));
	for (; names && *names && p->nnames < PS_ARRAY_LEN(p->names); names++)
		p->names[p->nnames++] = *names;
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, param_it, p);
	if (p->bad) {
		*ret = ps_srv_error(r, 400, "bad_request", "unknown query parameter '%.64s'", p->bad);
		return 0;
	}
	if (p->dup) {
		*ret = ps_srv_error(r, 400, "bad_request", "a query parameter is given twice");
		return 0;
	}
	return 1;
}

static int parse_limit(const char *s, int dflt, int max, int *out)
{
	if (!s) {
		*out = dflt;
		return 1;
	}
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 1 || v > max)
		return 0;
	*out = (int)v;
	return 1;
}

/* ------------------------------------------------------------ projects */

static enum MHD_Result list_projects(struct req *r)
{
	static const char *const names[] = { "search", "host", "status", "limit", "cursor", NULL };
	struct params p;
	enum MHD_Result ret;
	if (!get_params(r, &p, names, &ret))
		return ret;
	const char *search = p.val[0], *host = p.val[1], *status = p.val[2], *cursor = p.val[4];
	int limit;
	if (search && !valid_search(search))
		return ps_srv_error(r, 400, "bad_request",
				    "search: at most %d printable characters", PS_CAT_ID_MAX);
	if (host && *host && !valid_host_name(host))
		return ps_srv_error(r, 400, "bad_request", "host: not a valid host name");
	if (status && *status && !valid_status(status))
		return ps_srv_error(r, 400, "bad_request",
				    "status: one of stored, deploying, deployed, saving, closing, moving");
	if (!parse_limit(p.val[3], LIST_DEFAULT, LIST_MAX, &limit))
		return ps_srv_error(r, 400, "bad_request", "limit: a number from 1 to %d", LIST_MAX);
	if (cursor && *cursor && !ps_project_id_valid(cursor))
		return ps_srv_error(r, 400, "bad_request", "cursor: not a cursor of this listing");

	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	struct ps_cat_query q = PS_CAT_QUERY_INIT;
	q.search = search && *search ? search : NULL;
	q.host = host && *host ? host : NULL;
	q.status = status && *status ? status : NULL;
	int64_t total = 0;
	if (ps_cat_project_count(cat, &q, &total, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	q.after = cursor && *cursor ? cursor : NULL;
	q.limit = limit + 1; /* one more: is there a next page? */
	struct ps_cat_project *v = NULL;
	size_t n = 0;
	if (ps_cat_project_list(cat, &q, &v, &n, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	int64_t now = ps_cat_now();
	json_t *a = json_array();
	size_t shown = n > (size_t)limit ? (size_t)limit : n;
	for (size_t i = 0; a && i < shown; i++)
		if (json_array_append_new(a, ps_cat_project_json(&v[i], now)) != 0) {
			json_decref(a);
			a = NULL;
		}
	json_t *next = n > (size_t)limit ? json_string(v[shown - 1].id) : json_null();
	free(v);
	if (!a) {
		json_decref(next);
		return ps_srv_error(r, 500, "internal", "out of memory");
	}
	return ps_srv_json(r, 200,
			   json_pack("{s:o, s:I, s:o}", "projects", a, "total", (json_int_t)total,
				     "next_cursor", next));
}

static enum MHD_Result get_project(struct req *r, const char *id)
{
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	struct ps_cat_project p;
	if (ps_cat_project_get(cat, id, &p, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	return ps_srv_json(r, 200, ps_cat_project_json(&p, ps_cat_now()));
}

/* GET /v1/projects/{id}/location: `projstore where --json`'s object, from one
 * catalog statement (what `where --api` asks) */
static enum MHD_Result project_location(struct req *r, const char *id)
{
	struct ps_error err;
	struct ps_cat_where w;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	if (ps_cat_where(cat, id, &w, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	return ps_srv_json(r, 200, ps_cat_where_json(&w));
}

static enum MHD_Result project_snapshots(struct req *r, const char *id)
{
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	struct ps_cat_project p;
	if (ps_cat_project_get(cat, id, &p, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	int64_t now = ps_cat_now();
	json_t *a = json_array();
	const char *source;
	if (r->srv->store) {
		/* every snapshot, oldest first, as `projstore snapshots --json` */
		struct ps_snapshot_info *v = NULL;
		size_t n = 0;
		pthread_mutex_lock(&r->srv->store_lock);
		int rc = ps_snapshot_list(r->srv->store, id, &v, &n, &err);
		pthread_mutex_unlock(&r->srv->store_lock);
		if (rc != PS_OK && rc != PS_ENOTFOUND) {
			json_decref(a);
			return ps_srv_fail(r, &err);
		}
		for (size_t i = 0; a && i < n; i++)
			json_array_append_new(a, cli_snapshot_json(&v[i], now * 1000));
		free(v);
		source = "store";
	} else {
		/* the newest snapshot per store, as the catalog knows it */
		struct ps_cat_snapshot *v = NULL;
		size_t n = 0;
		if (ps_cat_snapshot_list(cat, id, &v, &n, &err) != PS_OK) {
			json_decref(a);
			return ps_srv_fail(r, &err);
		}
		for (size_t i = 0; a && i < n; i++)
			json_array_append_new(a, ps_cat_snapshot_json(&v[i], now));
		free(v);
		source = "catalog";
	}
	if (!a)
		return ps_srv_error(r, 500, "internal", "out of memory");
	return ps_srv_json(r, 200,
			   json_pack("{s:s, s:s, s:I, s:o}", "project", id, "source", source, "count",
				     (json_int_t)p.snapshots, "snapshots", a));
}

static enum MHD_Result project_events(struct req *r, const char *id)
{
	static const char *const names[] = { "limit", NULL };
	struct params p;
	enum MHD_Result ret;
	int limit;
	if (!get_params(r, &p, names, &ret))
		return ret;
	if (!parse_limit(p.val[0], 100, LIST_MAX, &limit))
		return ps_srv_error(r, 400, "bad_request", "limit: a number from 1 to %d", LIST_MAX);
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	struct ps_cat_project proj;
	if (ps_cat_project_get(cat, id, &proj, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	struct ps_cat_event *v = NULL;
	size_t n = 0;
	if (ps_cat_events(cat, id, limit, &v, &n, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	int64_t now = ps_cat_now();
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, ps_cat_event_json(&v[i], now));
	free(v);
	if (!a)
		return ps_srv_error(r, 500, "internal", "out of memory");
	return ps_srv_json(r, 200, json_pack("{s:s, s:o}", "project", id, "events", a));
}

static enum MHD_Result project_operations(struct req *r, const char *id)
{
	static const char *const names[] = { "limit", NULL };
	struct params p;
	enum MHD_Result ret;
	int limit;
	if (!get_params(r, &p, names, &ret))
		return ret;
	if (!parse_limit(p.val[0], 20, LIST_MAX, &limit))
		return ps_srv_error(r, 400, "bad_request", "limit: a number from 1 to %d", LIST_MAX);
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	struct ps_cat_project proj;
	if (ps_cat_project_get(cat, id, &proj, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	struct ps_cat_op *v = NULL;
	size_t n = 0;
	if (ps_cat_ops_for_project(cat, id, limit, &v, &n, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, ps_cat_op_json(&v[i]));
	free(v);
	if (!a)
		return ps_srv_error(r, 500, "internal", "out of memory");
	return ps_srv_json(r, 200, json_pack("{s:s, s:o}", "project", id, "operations", a));
}

/* POST /v1/projects/{id}/{open|save|close|move} */
static enum MHD_Result request_op(struct req *r, const char *id, const char *kind)
{
	json_t *body = NULL;
	const char *target = NULL;
	if (MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0)
		return ps_srv_error(r, 400, "bad_request", "%s takes no query parameters", r->url);
	if (r->body_len > 0) {
		json_error_t je;
		size_t i = 0;
		while (i < r->body_len && (r->body[i] == ' ' || r->body[i] == '\n' ||
					   r->body[i] == '\r' || r->body[i] == '\t'))
			i++;
		if (i < r->body_len) {
			body = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
			if (!body)
				return ps_srv_error(r, 400, "bad_json",
						    "the body is not valid JSON: %s (line %d, column %d)",
						    je.text, je.line, je.column);
			if (!json_is_object(body)) {
				json_decref(body);
				return ps_srv_error(r, 400, "bad_json", "the body must be a JSON object");
			}
		}
	}
	const char *want = strcmp(kind, "move") == 0 ? "to" : strcmp(kind, "open") == 0 ? "host" : NULL;
	int allow_older = 0;
	if (body) {
		const char *key;
		json_t *val;
		json_object_foreach(body, key, val) {
			if (strcmp(kind, "open") == 0 && strcmp(key, "allow_older") == 0) {
				if (!json_is_boolean(val)) {
					json_decref(body);
					return ps_srv_error(r, 400, "bad_request",
							    "\"allow_older\" must be true or false");
				}
				allow_older = json_is_true(val);
				continue;
			}
			if (!want || strcmp(key, want) != 0) {
				enum MHD_Result ret =
					want ? ps_srv_error(r, 400, "bad_request",
							    "unknown field '%.64s' (%s takes only \"%s\"%s)",
							    key, kind, want,
							    strcmp(kind, "open") == 0
								    ? " and \"allow_older\""
								    : "")
					     : ps_srv_error(r, 400, "bad_request",
							    "unknown field '%.64s' (%s takes no fields)",
							    key, kind);
				json_decref(body);
				return ret;
			}
			if (!json_is_string(val) && !json_is_null(val)) {
				json_decref(body);
				return ps_srv_error(r, 400, "bad_request", "\"%s\" must be a host name",
						    want);
			}
			target = json_string_value(val);
		}
	}
	if (target && *target && !valid_host_name(target)) {
		json_decref(body);
		return ps_srv_error(r, 400, "bad_request",
				    "\"%s\": not a valid host name (letters, digits, '.', '-', '_')",
				    want);
	}
	if (strcmp(kind, "move") == 0 && (!target || !*target)) {
		json_decref(body);
		return ps_srv_error(r, 400, "bad_request",
				    "move needs the target host: {\"to\": \"HOST\"}");
	}
	char target_buf[PS_CAT_ID_MAX + 1] = "";
	if (target)
		snprintf(target_buf, sizeof(target_buf), "%s", target);
	json_decref(body);

	char by[PS_CAT_ID_MAX + 1];
	if (r->token && r->token->name[0])
		snprintf(by, sizeof(by), "api:%s", r->token->name);
	else
		snprintf(by, sizeof(by), "api");
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	struct ps_cat_op op;
	int rc = ps_cat_request_opts(cat, kind, id, target_buf, by, allow_older ? "allow-older" : NULL,
				     &op, &err);
	if (rc != PS_OK) {
		/* the input was checked above: what remains are states */
		if (rc == PS_EINVAL)
			return ps_srv_error(r, 409, "conflict", "%s", err.msg);
		if (rc == PS_ENOTFOUND && strstr(err.msg, "host"))
			return ps_srv_error(r, 404, "unknown_host", "%s", err.msg);
		return ps_srv_fail(r, &err);
	}
	json_t *j = json_pack("{s:o}", "operation", ps_cat_op_json(&op));
	int done = strcmp(op.state, "done") == 0 || strcmp(op.state, "failed") == 0;
	return ps_srv_json(r, done ? 200 : 202, j);
}

/* ------------------------------------------------------------ others */

static enum MHD_Result get_operation(struct req *r, const char *ids)
{
	char *end;
	errno = 0;
	long long id = strtoll(ids, &end, 10);
	if (!*ids || *end || errno || id < 1 || strlen(ids) > 18 || ids[0] < '1' || ids[0] > '9')
		return ps_srv_error(r, 400, "bad_request", "'%.40s' is not an operation id", ids);
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	struct ps_cat_op op;
	if (ps_cat_op_get(cat, (int64_t)id, &op, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	return ps_srv_json(r, 200, ps_cat_op_json(&op));
}

static enum MHD_Result list_hosts(struct req *r)
{
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	struct ps_cat_host *v = NULL;
	size_t n = 0;
	if (ps_cat_host_list(cat, &v, &n, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	int64_t now = ps_cat_now();
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, ps_cat_host_json(&v[i], now));
	free(v);
	if (!a)
		return ps_srv_error(r, 500, "internal", "out of memory");
	return ps_srv_json(r, 200, json_pack("{s:o}", "hosts", a));
}

/* does a sync's source/destination name this store (by name or location)? */
static int names_store(const char *s, const struct ps_cat_store *st)
{
	return strcmp(s, st->name) == 0 || (st->url[0] && strcmp(s, st->url) == 0);
}

static enum MHD_Result list_stores(struct req *r)
{
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	struct ps_cat_store *st = NULL;
	struct ps_cat_store_usage *us = NULL;
	struct ps_cat_sync *sy = NULL;
	size_t nst = 0, nus = 0, nsy = 0;
	json_t *a = NULL;
	enum MHD_Result ret;
	if (ps_cat_store_list(cat, &st, &nst, &err) != PS_OK ||
	    ps_cat_store_usage(cat, &us, &nus, &err) != PS_OK ||
	    ps_cat_sync_list(cat, NULL, NULL, 1000, &sy, &nsy, &err) != PS_OK) {
		ret = ps_srv_fail(r, &err);
		goto done;
	}
	int64_t now = ps_cat_now();
	a = json_array();
	/* the stores the catalog knows, plus any store name the snapshot
	 * summaries mention that has no row of its own (e.g. "default") */
	size_t total = nst;
	for (size_t k = 0; k < nus; k++) {
		int known = 0;
		for (size_t i = 0; i < nst; i++)
			known |= strcmp(st[i].name, us[k].store) == 0;
		total += !known;
	}
	for (size_t idx = 0; a && idx < total; idx++) {
		struct ps_cat_store tmp;
		const struct ps_cat_store *s;
		if (idx < nst) {
			s = &st[idx];
		} else {
			/* the idx-nst-th unknown usage row */
			size_t want = idx - nst, seen = 0;
			memset(&tmp, 0, sizeof(tmp));
			for (size_t k = 0; k < nus; k++) {
				int known = 0;
				for (size_t i = 0; i < nst; i++)
					known |= strcmp(st[i].name, us[k].store) == 0;
				if (!known && seen++ == want) {
					snprintf(tmp.name, sizeof(tmp.name), "%s", us[k].store);
					break;
				}
			}
			s = &tmp;
		}
		json_t *o = ps_cat_store_json(s);
		const struct ps_cat_store_usage *u = NULL;
		for (size_t k = 0; k < nus; k++)
			if (strcmp(us[k].store, s->name) == 0)
				u = &us[k];
		int64_t lb = u ? u->logical_bytes : 0, sb = u ? u->stored_bytes : 0;
		json_object_set_new(o, "projects", json_integer(u ? u->projects : 0));
		json_object_set_new(o, "logical_bytes", json_integer(lb));
		json_object_set_new(o, "stored_bytes", json_integer(sb));
		json_object_set_new(o, "ratio", sb > 0 ? json_real((double)lb / (double)sb) : json_null());
		json_object_set_new(o, "newest_snapshot", ps_cat_time_json(u ? u->newest_at : 0));
		/* the newest sync with each peer (either direction) */
		json_t *peers = json_object();
		for (size_t k = 0; peers && k < nsy; k++) {
			const char *peer = NULL;
			if (names_store(sy[k].source, s))
				peer = sy[k].destination;
			else if (names_store(sy[k].destination, s))
				peer = sy[k].source;
			if (!peer || json_object_get(peers, peer))
				continue; /* newest first: the first seen is the last sync */
			json_t *sj = ps_cat_sync_json(&sy[k], now);
			json_object_set_new(sj, "direction",
					    json_string(names_store(sy[k].source, s) ? "out" : "in"));
			json_object_set_new(peers, peer, sj);
		}
		json_object_set_new(o, "last_sync", peers ? peers : json_null());
		json_array_append_new(a, o);
	}
	if (!a) {
		ret = ps_srv_error(r, 500, "internal", "out of memory");
		goto done;
	}
	ret = ps_srv_json(r, 200, json_pack("{s:o}", "stores", a));
	a = NULL;
done:
	json_decref(a);
	free(st);
	free(us);
	free(sy);
	return ret;
}

static enum MHD_Result summary(struct req *r)
{
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	if (!cat)
		return ps_srv_fail(r, &err);
	struct ps_cat_totals t;
	if (ps_cat_totals(cat, &t, &err) != PS_OK)
		return ps_srv_fail(r, &err);
	json_t *j = ps_cat_totals_json(&t);
	if (j) {
		json_object_set_new(j, "catalog", json_string(ps_catalog_engine(cat)));
		json_object_set_new(j, "store", r->srv->store ? json_true() : json_false());
		json_object_set_new(j, "role",
				    json_string(r->role == ROLE_ADMIN ? "admin" : "read"));
		json_object_set_new(j, "version", json_string(PS_VERSION));
	}
	return ps_srv_json(r, 200, j);
}

/* ------------------------------------------------------------ routing */

static enum MHD_Result need_get(struct req *r)
{
	return ps_srv_error(r, 405, "method_not_allowed", "%s takes GET", r->url);
}

enum MHD_Result ps_srv_api(struct req *r)
{
	const char *u = r->url + 3; /* after "/v1" */
	char seg[3][PS_CAT_ID_MAX + 2];
	int nseg = 0;
	/* split into at most 3 segments, each at most PS_CAT_ID_MAX+1 bytes */
	while (*u == '/') {
		u++;
		if (nseg == 3)
			return ps_srv_error(r, 404, "not_found", "nothing at %.200s", r->url);
		const char *e = strchr(u, '/');
		size_t len = e ? (size_t)(e - u) : strlen(u);
		if (len == 0 || len > PS_CAT_ID_MAX) {
			if (nseg == 1 && strcmp(seg[0], "projects") == 0 && len > PS_CAT_ID_MAX)
				return ps_srv_error(r, 400, "bad_request", "invalid project id");
			return ps_srv_error(r, 404, "not_found", "nothing at %.200s", r->url);
		}
		memcpy(seg[nseg], u, len);
		seg[nseg][len] = 0;
		nseg++;
		u += len;
	}
	if (*u || nseg == 0)
		return ps_srv_error(r, 404, "not_found", "nothing at %.200s", r->url);

	if (strcmp(seg[0], "projects") == 0) {
		if (nseg == 1)
			return r->is_get ? list_projects(r) : need_get(r);
		const char *id = seg[1];
		if (!ps_project_id_valid(id))
			return ps_srv_error(r, 400, "bad_request",
					    "invalid project id '%s': expected [a-z0-9][a-z0-9._-]{0,63}",
					    id);
		if (nseg == 2)
			return r->is_get ? get_project(r, id) : need_get(r);
		const char *what = seg[2];
		if (strcmp(what, "location") == 0)
			return r->is_get ? project_location(r, id) : need_get(r);
		if (strcmp(what, "snapshots") == 0)
			return r->is_get ? project_snapshots(r, id) : need_get(r);
		if (strcmp(what, "events") == 0)
			return r->is_get ? project_events(r, id) : need_get(r);
		if (strcmp(what, "operations") == 0)
			return r->is_get ? project_operations(r, id) : need_get(r);
		if (strcmp(what, "open") == 0 || strcmp(what, "save") == 0 ||
		    strcmp(what, "close") == 0 || strcmp(what, "move") == 0) {
			if (!r->is_post)
				return ps_srv_error(r, 405, "method_not_allowed", "%s takes POST",
						    r->url);
			return request_op(r, id, what);
		}
		return ps_srv_error(r, 404, "not_found", "nothing at %.200s", r->url);
	}
	if (nseg == 2 && strcmp(seg[0], "operations") == 0)
		return r->is_get ? get_operation(r, seg[1]) : need_get(r);
	if (nseg == 1 && strcmp(seg[0], "hosts") == 0)
		return r->is_get ? list_hosts(r) : need_get(r);
	if (nseg == 1 && strcmp(seg[0], "stores") == 0)
		return r->is_get ? list_stores(r) : need_get(r);
	if (nseg == 1 && strcmp(seg[0], "summary") == 0)
		return r->is_get ? summary(r) : need_get(r);
	return ps_srv_error(r, 404, "not_found", "nothing at %.200s", r->url);
}
