/*
 * server_metrics.c - GET /metrics (Prometheus text format 0.0.4) and
 * GET /healthz.
 *
 * /metrics is open (no token), so it carries aggregate figures only: counts
 * by status, kind, state and host, sizes summed over all projects, the
 * server's own request counters and latency histogram.  Never a project id
 * as a label.  The figures come from a handful of GROUP BY queries
 * (catalog_stats.c) at each scrape; a scrape every few seconds costs little.
 */
#define _GNU_SOURCE
#include "server_int.h"

#include <stdio.h>
#include <string.h>

#include "../lib/util/util.h"
#include "projstore_host.h"

/* label values: backslash, quote and newline escaped */
static void label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f), fputc(*s, f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* hosting: the usage the agents record per project (`agent --hosting`),
 * summed per host, so that no project id becomes a label */
static void write_hosting(FILE *f, struct ps_catalog *cat, const struct ps_cat_host *hs, size_t nh)
{
	static const struct {
		const char *name, *type, *help;
	} m[] = {
		{ "projstore_hosted_projects_running", "gauge", "Projects with processes running, per host." },
		{ "projstore_hosted_cpu_seconds", "gauge", "CPU time used by the projects deployed on the host (their cgroups)." },
		{ "projstore_hosted_memory_bytes", "gauge", "Memory used by the projects deployed on the host." },
		{ "projstore_hosted_tasks", "gauge", "Processes and threads of the projects deployed on the host." },
		{ "projstore_hosted_oom_kills", "gauge", "Out-of-memory kills in the projects deployed on the host." },
		{ "projstore_hosted_disk_bytes", "gauge", "Disk used by the projects' working copies (btrfs quota groups)." },
	};
	struct ps_cat_usage *u = NULL;
	size_t nu = 0;
	if (ps_cat_usage_list(cat, NULL, &u, &nu, NULL) != PS_OK)
		return;
	for (size_t k = 0; k < PS_ARRAY_LEN(m); k++) {
		head(f, m[k].name, m[k].type, m[k].help);
		for (size_t i = 0; i < nh; i++) {
			double v = 0;
			for (size_t j = 0; j < nu; j++) {
				const struct ps_host_usage *x = &u[j].u;
				if (strcmp(u[j].host, hs[i].name) != 0)
					continue;
				switch (k) {
				case 0: v += x->running > 0; break;
				case 1: v += x->cpu_usec > 0 ? (double)x->cpu_usec / 1e6 : 0; break;
				case 2: v += x->memory_bytes > 0 ? (double)x->memory_bytes : 0; break;
				case 3: v += x->pids > 0 ? (double)x->pids : 0; break;
				case 4: v += x->oom_kills > 0 ? (double)x->oom_kills : 0; break;
				default: v += x->disk_bytes > 0 ? (double)x->disk_bytes : 0; break;
				}
			}
			fprintf(f, "%s{host=\"", m[k].name);
			label(f, hs[i].name);
			fprintf(f, "\"} %.6g\n", v);
		}
	}
	free(u);
}

static int write_catalog(FILE *f, struct ps_catalog *cat, struct ps_error *err)
{
	struct ps_cat_totals t;
	struct ps_cat_count *c = NULL;
	struct ps_cat_host *hs = NULL;
	size_t n = 0, nh = 0;
	int rc = ps_cat_totals(cat, &t, err);
	if (rc != PS_OK)
		return rc;
	head(f, "projstore_projects", "gauge", "Projects in the catalog.");
	fprintf(f, "projstore_projects %lld\n", (long long)t.projects);
	head(f, "projstore_projects_deployed", "gauge", "Projects with a working copy on a host.");
	fprintf(f, "projstore_projects_deployed %lld\n", (long long)t.deployed);
	head(f, "projstore_logical_bytes", "gauge",
	     "Sum of the newest snapshots' logical sizes over all projects.");
	fprintf(f, "projstore_logical_bytes %lld\n", (long long)t.logical_bytes);
	head(f, "projstore_stored_bytes", "gauge", "Bytes stored for all projects (after dedup and compression).");
	fprintf(f, "projstore_stored_bytes %lld\n", (long long)t.stored_bytes);
	head(f, "projstore_queue_depth", "gauge", "Operations waiting for an agent (pending).");
	fprintf(f, "projstore_queue_depth %lld\n", (long long)t.ops_pending);

	if ((rc = ps_cat_count_projects_by_status(cat, &c, &n, err)) != PS_OK)
		return rc;
	head(f, "projstore_projects_by_status", "gauge", "Projects per life-cycle status.");
	for (size_t i = 0; i < n; i++) {
		fputs("projstore_projects_by_status{status=\"", f);
		label(f, c[i].key);
		fprintf(f, "\"} %lld\n", (long long)c[i].count);
	}
	free(c);
	c = NULL;

	if ((rc = ps_cat_count_ops(cat, &c, &n, err)) != PS_OK)
		return rc;
	head(f, "projstore_operations", "gauge", "Operations in the catalog per kind and state.");
	for (size_t i = 0; i < n; i++) {
		fputs("projstore_operations{kind=\"", f);
		label(f, c[i].key);
		fputs("\",state=\"", f);
		label(f, c[i].key2);
		fprintf(f, "\"} %lld\n", (long long)c[i].count);
	}
	head(f, "projstore_operation_duration_seconds", "summary",
	     "Time from start to end of the finished operations, per kind and result.");
	for (size_t i = 0; i < n; i++) {
		if (strcmp(c[i].key2, "done") != 0 && strcmp(c[i].key2, "failed") != 0)
			continue;
		fputs("projstore_operation_duration_seconds_sum{kind=\"", f);
		label(f, c[i].key);
		fputs("\",state=\"", f);
		label(f, c[i].key2);
		fprintf(f, "\"} %.6f\n", (double)c[i].sum / 1e6);
		fputs("projstore_operation_duration_seconds_count{kind=\"", f);
		label(f, c[i].key);
		fputs("\",state=\"", f);
		label(f, c[i].key2);
		fprintf(f, "\"} %lld\n", (long long)c[i].count);
	}
	free(c);
	c = NULL;

	if ((rc = ps_cat_count_events(cat, &c, &n, err)) != PS_OK)
		return rc;
	long long saves = 0, save_failures = 0;
	head(f, "projstore_events_total", "counter",
	     "Events recorded for projects, per kind and outcome (saved, save-failed, moved ...).");
	for (size_t i = 0; i < n; i++) {
		fputs("projstore_events_total{kind=\"", f);
		label(f, c[i].key);
		fputs("\",outcome=\"", f);
		label(f, c[i].key2);
		fprintf(f, "\"} %lld\n", (long long)c[i].count);
		if (strstr(c[i].key, "save")) {
			if (strcmp(c[i].key2, "error") == 0 || strstr(c[i].key, "fail"))
				save_failures += c[i].count;
			else
				saves += c[i].count;
		}
	}
	free(c);
	c = NULL;
	head(f, "projstore_saves_total", "counter", "Saves recorded as events (autosave and requested).");
	fprintf(f, "projstore_saves_total %lld\n", saves);
	head(f, "projstore_save_failures_total", "counter", "Failed saves recorded as events.");
	fprintf(f, "projstore_save_failures_total %lld\n", save_failures);

	if ((rc = ps_cat_host_list(cat, &hs, &nh, err)) != PS_OK)
		return rc;
	head(f, "projstore_hosts", "gauge", "Hosts per state.");
	fprintf(f, "projstore_hosts{state=\"up\"} %lld\n", (long long)t.hosts_up);
	fprintf(f, "projstore_hosts{state=\"down\"} %lld\n", (long long)t.hosts_down);
	head(f, "projstore_host_projects", "gauge", "Projects deployed per host.");
	for (size_t i = 0; i < nh; i++) {
		fputs("projstore_host_projects{host=\"", f);
		label(f, hs[i].name);
		fprintf(f, "\"} %lld\n", (long long)hs[i].deployed);
	}
	head(f, "projstore_host_capacity", "gauge", "Projects a host may hold (0 = unlimited).");
	for (size_t i = 0; i < nh; i++) {
		fputs("projstore_host_capacity{host=\"", f);
		label(f, hs[i].name);
		fprintf(f, "\"} %lld\n", (long long)hs[i].capacity);
	}
	head(f, "projstore_host_up", "gauge", "1 when the host's agent has sent a recent heartbeat.");
	int64_t now = ps_cat_now();
	for (size_t i = 0; i < nh; i++) {
		fputs("projstore_host_up{host=\"", f);
		label(f, hs[i].name);
		fprintf(f, "\"} %d\n", ps_cat_host_alive(&hs[i], now));
	}
	head(f, "projstore_host_heartbeat_age_seconds", "gauge", "Seconds since the host's last heartbeat.");
	for (size_t i = 0; i < nh; i++) {
		if (!hs[i].last_heartbeat)
			continue;
		fputs("projstore_host_heartbeat_age_seconds{host=\"", f);
		label(f, hs[i].name);
		fprintf(f, "\"} %.3f\n", (double)(now - hs[i].last_heartbeat) / 1e6);
	}
	write_hosting(f, cat, hs, nh);
	free(hs);
	return PS_OK;
}

static void write_server(FILE *f, struct ps_server *s)
{
	head(f, "projstore_http_requests_total", "counter", "HTTP requests answered, per status code.");
	for (int i = 0; i < STATUS_SLOTS; i++) {
		uint64_t v = atomic_load(&s->status_count[i]);
		if (ps_srv_status_codes[i])
			fprintf(f, "projstore_http_requests_total{code=\"%u\"} %llu\n",
				ps_srv_status_codes[i], (unsigned long long)v);
		else if (i == STATUS_SLOTS - 1)
			fprintf(f, "projstore_http_requests_total{code=\"other\"} %llu\n",
				(unsigned long long)v);
	}
	head(f, "projstore_http_rate_limited_total", "counter", "Requests refused by the rate limit.");
	fprintf(f, "projstore_http_rate_limited_total %llu\n",
		(unsigned long long)atomic_load(&s->rate_limited));
	head(f, "projstore_http_catalog_errors_total", "counter", "Requests the catalog failed.");
	fprintf(f, "projstore_http_catalog_errors_total %llu\n",
		(unsigned long long)atomic_load(&s->catalog_errors));
	head(f, "projstore_http_request_duration_seconds", "histogram",
	     "Time to answer a request.");
	uint64_t cum = 0;
	for (int b = 0; b <= LAT_BUCKETS; b++) {
		cum += atomic_load(&s->lat_bucket[b]);
		if (b < LAT_BUCKETS)
			fprintf(f, "projstore_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
				ps_srv_lat_bounds[b], (unsigned long long)cum);
		else
			fprintf(f, "projstore_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
				(unsigned long long)cum);
	}
	fprintf(f, "projstore_http_request_duration_seconds_sum %.6f\n",
		(double)atomic_load(&s->lat_sum_us) / 1e6);
	fprintf(f, "projstore_http_request_duration_seconds_count %llu\n", (unsigned long long)cum);
	head(f, "projstore_server_start_time_seconds", "gauge", "When the server started (Unix time).");
	fprintf(f, "projstore_server_start_time_seconds %.3f\n", (double)s->started_ns / 1e9);
}

enum MHD_Result ps_srv_metrics(struct req *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return ps_srv_error(r, 500, "internal", "out of memory");
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	int rc = cat ? write_catalog(f, cat, &err) : PS_ERROR;
	head(f, "projstore_catalog_up", "gauge", "1 when the catalog answered this scrape.");
	fprintf(f, "projstore_catalog_up %d\n", rc == PS_OK);
	write_server(f, r->srv);
	if (fclose(f) != 0) {
		free(text);
		return ps_srv_error(r, 500, "internal", "out of memory");
	}
	if (rc != PS_OK)
		fprintf(stderr, "projstore serve: /metrics: %s\n", err.msg);
	return ps_srv_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

enum MHD_Result ps_srv_healthz(struct req *r)
{
	struct ps_error err;
	ps_error_clear(&err);
	struct ps_catalog *cat = ps_srv_catalog(r, &err);
	int rc = cat ? ps_cat_ping(cat, &err) : PS_ERROR;
	if (rc != PS_OK)
		return ps_srv_json(r, 503,
				   json_pack("{s:s, s:{s:s, s:s}}", "status", "unavailable", "error",
					     "code", "unavailable", "message",
					     err.msg[0] ? err.msg : "catalog unavailable"));
	return ps_srv_json(r, 200,
			   json_pack("{s:s, s:s, s:s, s:f}", "status", "ok", "catalog",
				     ps_catalog_engine(cat), "version", PS_VERSION, "uptime_seconds",
				     (double)(ps_now_ns() - r->srv->started_ns) / 1e9));
}
