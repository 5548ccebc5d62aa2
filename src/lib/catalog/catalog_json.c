/*
 * catalog_json.c - the JSON form of the catalog's objects (jansson).
 *
 * One place for the shapes, so that the `--json` output of the commands
 * (projects, hosts, where, events, open/close/move ...) and the HTTP API of
 * `projstore serve` can never drift apart.  docs/API.md documents them.
 *
 * Conventions, the same in every object:
 *   - times are RFC 3339 UTC strings with microseconds
 *     ("2026-11-25T09:45:12.123456Z"), or null for "never" (a 0 in the
 *     catalog);
 *   - a string the catalog keeps as "" for "none" (a project's host, a
 *     desired host, a lease owner) is null;
 *   - sizes are integers in bytes, ratios are numbers (1.0 = no gain);
 *   - ages ("5 minutes ago") are computed against `now_us`, the caller's
 *     clock, so that one response uses one "now".
 *
 * Every function returns a new reference (the caller owns it), or NULL when
 * memory runs out.
 */
#include "catalog_int.h"

#include <jansson.h>
#include <string.h>

/* RFC 3339 string, or null for 0 */
json_t *ps_cat_time_json(int64_t us)
{
	char buf[64];
	if (us <= 0)
		return json_null();
	ps_format_time(us * 1000, buf, sizeof(buf));
	return json_string(buf);
}

/* "5 minutes ago", or null for 0 */
static json_t *age_json(int64_t us, int64_t now_us)
{
	char buf[64];
	if (us <= 0)
		return json_null();
	ps_format_age(us * 1000, now_us * 1000, buf, sizeof(buf));
	return json_string(buf);
}

/* a string, or null when empty */
static json_t *opt_str(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* json_pack("s?") would not turn "" into null; strings that are not valid
 * UTF-8 (never written by projstore itself) become null, not a failure */
static json_t *str(const char *s)
{
	json_t *j = json_string(s ? s : "");
	return j ? j : json_null();
}

json_t *ps_cat_project_json(const struct ps_cat_project *p, int64_t now_us)
{
	json_t *last_snap = json_null(), *last_save = json_null(), *lease = json_null();
	if (p->last_snapshot[0])
		last_snap = json_pack("{s:o, s:o, s:o}", "name", str(p->last_snapshot), "time",
				      ps_cat_time_json(p->last_snapshot_at), "age",
				      age_json(p->last_snapshot_at, now_us));
	if (p->last_save_at > 0)
		last_save = json_pack("{s:o, s:o, s:o}", "time", ps_cat_time_json(p->last_save_at),
				      "age", age_json(p->last_save_at, now_us), "result",
				      str(p->last_save_result));
	if (p->lease_owner[0])
		lease = json_pack("{s:o, s:o, s:b}", "owner", str(p->lease_owner), "expires",
				  ps_cat_time_json(p->lease_expires), "expired",
				  p->lease_expires < now_us);
	if (!last_snap || !last_save || !lease) {
		json_decref(last_snap);
		json_decref(last_save);
		json_decref(lease);
		return NULL;
	}
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:f, s:f, s:I, s:b, s:o, s:o, s:b, "
			 "s:b, s:o, s:o, s:o}",
			 "id", str(p->id),
			 "host", opt_str(p->host),
			 "status", str(p->status),
			 "desired_host", opt_str(p->desired_host),
			 "quota_bytes",
			 p->quota_bytes > 0 ? json_integer(p->quota_bytes) : json_null(),
			 "logical_bytes", (json_int_t)p->logical_bytes,
			 "stored_bytes", (json_int_t)p->stored_bytes,
			 "compressratio", p->compressratio,
			 "dedupratio", p->dedupratio,
			 "snapshots", (json_int_t)p->snapshots,
			 "over_quota", p->quota_bytes > 0 && p->logical_bytes > p->quota_bytes,
			 "last_snapshot", last_snap,
			 "last_save", last_save,
			 "migrated", p->migrated != 0,
			 "maintenance", p->maintenance != 0,
			 "lease", lease,
			 "uid", p->uid >= 0 ? json_integer(p->uid) : json_null(),
			 "updated", ps_cat_time_json(p->updated_at));
}

json_t *ps_cat_host_json(const struct ps_cat_host *h, int64_t now_us)
{
	json_t *load = json_null();
	if (h->capacity > 0)
		load = json_real((double)h->deployed / (double)h->capacity);
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:b}",
			 "name", str(h->name),
			 "datacenter", opt_str(h->datacenter),
			 "store_url", opt_str(h->store_url),
			 "root", str(h->root),
			 "capacity", h->capacity > 0 ? json_integer(h->capacity) : json_null(),
			 "deployed", (json_int_t)h->deployed,
			 "load", load,
			 "last_heartbeat", ps_cat_time_json(h->last_heartbeat),
			 "heartbeat_age", age_json(h->last_heartbeat, now_us),
			 "state", str(h->state),
			 "alive", ps_cat_host_alive(h, now_us));
}

json_t *ps_cat_op_json(const struct ps_cat_op *o)
{
	json_t *progress = json_null();
	if (o->bytes_total > 0) {
		double f = (double)o->bytes_done / (double)o->bytes_total;
		progress = json_real(f < 0 ? 0 : f > 1 ? 1 : f);
	} else if (strcmp(o->state, "done") == 0) {
		progress = json_real(1.0);
	}
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:o, s:o, s:o, "
			 "s:o, s:b, s:o}",
			 "id", (json_int_t)o->id,
			 "kind", str(o->kind),
			 "project", str(o->project),
			 "host", opt_str(o->host),
			 "target_host", opt_str(o->target_host),
			 "state", str(o->state),
			 "phase", str(o->phase),
			 "bytes_done", (json_int_t)o->bytes_done,
			 "bytes_total", (json_int_t)o->bytes_total,
			 "progress", progress,
			 "created", ps_cat_time_json(o->created_at),
			 "started", ps_cat_time_json(o->started_at),
			 "finished", ps_cat_time_json(o->finished_at),
			 "result", str(o->result),
			 "requested_by", opt_str(o->requested_by),
			 "active", strcmp(o->state, "pending") == 0 || strcmp(o->state, "running") == 0,
			 "options", opt_str(o->options));
}

json_t *ps_cat_event_json(const struct ps_cat_event *e, int64_t now_us)
{
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:b, s:o}",
			 "id", (json_int_t)e->id,
			 "project", str(e->project),
			 "time", ps_cat_time_json(e->at),
			 "age", age_json(e->at, now_us),
			 "kind", str(e->kind),
			 "actor", opt_str(e->actor),
			 "error", e->error != 0,
			 "detail", str(e->detail));
}

json_t *ps_cat_store_json(const struct ps_cat_store *s)
{
	return json_pack("{s:o, s:o, s:o}", "name", str(s->name), "url", str(s->url), "datacenter",
			 opt_str(s->datacenter));
}

json_t *ps_cat_sync_json(const struct ps_cat_sync *s, int64_t now_us)
{
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I}",
			 "id", (json_int_t)s->id,
			 "source", str(s->source),
			 "destination", str(s->destination),
			 "started", ps_cat_time_json(s->started_at),
			 "finished", ps_cat_time_json(s->finished_at),
			 "age", age_json(s->finished_at ? s->finished_at : s->started_at, now_us),
			 "result", s->finished_at ? str(s->result) : json_null(),
			 "bytes", (json_int_t)s->bytes,
			 "objects", (json_int_t)s->objects,
			 "snapshots", (json_int_t)s->snapshots);
}

json_t *ps_cat_snapshot_json(const struct ps_cat_snapshot *s, int64_t now_us)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I}",
			 "project", str(s->project),
			 "store", str(s->store),
			 "name", str(s->name),
			 "time", ps_cat_time_json(s->at),
			 "age", age_json(s->at, now_us),
			 "logical_bytes", (json_int_t)s->logical_bytes,
			 "stored_bytes", (json_int_t)s->stored_bytes,
			 "files", (json_int_t)s->files);
}

json_t *ps_cat_totals_json(const struct ps_cat_totals *t)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "projects", (json_int_t)t->projects,
			 "deployed", (json_int_t)t->deployed,
			 "logical_bytes", (json_int_t)t->logical_bytes,
			 "stored_bytes", (json_int_t)t->stored_bytes,
			 "operations_pending", (json_int_t)t->ops_pending,
			 "operations_running", (json_int_t)t->ops_running,
			 "operations_failed", (json_int_t)t->ops_failed,
			 "hosts_up", (json_int_t)t->hosts_up,
			 "hosts_down", (json_int_t)t->hosts_down);
}

json_t *ps_cat_where_json(const struct ps_cat_where *w)
{
	return json_pack("{s:s, s:o, s:s, s:o}", "project", w->project, "host", opt_str(w->host),
			 "status", w->status, "path", opt_str(w->path));
}
