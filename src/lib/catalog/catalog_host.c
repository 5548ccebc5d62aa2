/*
 * catalog_host.c - the catalog's hosting tables (schema migration 2): the
 * uid of each project, its limits and network mode, the newest usage an
 * agent measured, and the shared data/scratch volumes.
 *
 * uids: a project keeps its uid for ever once assigned (files on shared
 * volumes stay its own across moves); the unique index projects_uid makes the
 * loser of two concurrent assignments of one number fail, and it retries.
 */
#define _GNU_SOURCE
#include "catalog_int.h"
#include "projstore_host.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_project(const char *id, struct ps_error *err)
{
	if (!id || !ps_project_id_valid(id))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", id ? id : "");
	return PS_OK;
}

static int get_int(void *ctx, struct ps_db_row *r)
{
	*(int64_t *)ctx = ps_db_null(r, 0) ? -2 : ps_db_int(r, 0);
	return 0;
}

/* ------------------------------------------------------------ uid */

int ps_cat_uid_assign(struct ps_catalog *cat, const char *project, int64_t min, int64_t max,
		      int64_t *uid, struct ps_error *err)
{
	int rc = check_project(project, err);
	if (rc != PS_OK)
		return rc;
	if (min < 1 || max < min)
		return ps_err(err, PS_EINVAL, "invalid uid range %" PRId64 "-%" PRId64, min, max);
	for (int attempt = 0; attempt < 20; attempt++) {
		int64_t cur = -2;
		rc = ps_db_query(cat->db, get_int, &cur, err, "SELECT uid FROM projects WHERE id = $1", "s",
				 project);
		if (rc != PS_OK)
			return rc;
		if (cur == -2)
			return ps_err(err, PS_ENOTFOUND, "project %s is not in the catalog", project);
		if (cur >= 0) {
			*uid = cur;
			return PS_OK;
		}
		/* the lowest free number in the range: the first gap after min-1 */
		int64_t next = -2;
		rc = ps_db_query(cat->db, get_int, &next, err,
				 "SELECT MIN(u) FROM (SELECT CAST($1 AS BIGINT) AS u WHERE NOT EXISTS"
				 " (SELECT 1 FROM projects WHERE uid = $1)"
				 " UNION ALL SELECT p.uid + 1 FROM projects p WHERE p.uid >= $1 AND p.uid < $2"
				 " AND NOT EXISTS (SELECT 1 FROM projects q WHERE q.uid = p.uid + 1)) t",
				 "ii", min, max);
		if (rc != PS_OK)
			return rc;
		if (next < min || next > max)
			return ps_err(err, PS_ERROR,
				      "no free uid left in %" PRId64 "-%" PRId64 " for project %s", min,
				      max, project);
		int64_t ch = 0;
		rc = ps_db_exec(cat->db, &ch, err,
				"UPDATE projects SET uid = $2, updated_at = $3 WHERE id = $1 AND uid < 0",
				"sii", project, next, ps_cat_now());
		if (rc == PS_EEXISTS)
			continue; /* another project took that number meanwhile */
		if (rc != PS_OK)
			return rc;
		/* ch == 0: someone assigned this project a uid meanwhile: read it */
	}
	return ps_err(err, PS_ELOCKED, "project %s: could not assign a uid (too much contention)",
		      project);
}

/* ------------------------------------------------------------ limits */

static int limits_row(void *ctx, struct ps_db_row *r)
{
	struct ps_host_limits *l = ctx;
	l->cpu = ps_db_double(r, 0);
	l->memory = ps_db_int(r, 1);
	l->io_weight = ps_db_int(r, 2);
	l->pids = ps_db_int(r, 3);
	l->network = ps_host_net_parse(ps_db_text(r, 4));
	if (l->network < 0)
		l->network = PS_HOST_NET_NONE;
	return 0;
}

int ps_cat_limits_get(struct ps_catalog *cat, const char *project, struct ps_host_limits *out,
		      struct ps_error *err)
{
	int rc = check_project(project, err);
	if (rc != PS_OK)
		return rc;
	struct ps_host_limits l = PS_HOST_LIMITS_INIT;
	l.network = -1;
	rc = ps_db_query(cat->db, limits_row, &l, err,
			 "SELECT limit_cpu, limit_memory, limit_io_weight, limit_pids, limit_network"
			 " FROM projects WHERE id = $1",
			 "s", project);
	if (rc != PS_OK)
		return rc;
	if (l.network < 0)
		return ps_err(err, PS_ENOTFOUND, "project %s is not in the catalog", project);
	*out = l;
	return PS_OK;
}

int ps_cat_limits_set(struct ps_catalog *cat, const char *project,
		      const struct ps_host_limits *l, struct ps_error *err)
{
	int rc = check_project(project, err);
	if (rc != PS_OK)
		return rc;
	int64_t ch = 0;
	rc = ps_db_exec(cat->db, &ch, err,
			"UPDATE projects SET"
			" limit_cpu = CASE WHEN $2 < 0 THEN limit_cpu ELSE $2 END,"
			" limit_memory = CASE WHEN $3 < 0 THEN limit_memory ELSE $3 END,"
			" limit_io_weight = CASE WHEN $4 < 0 THEN limit_io_weight ELSE $4 END,"
			" limit_pids = CASE WHEN $5 < 0 THEN limit_pids ELSE $5 END,"
			" limit_network = CASE WHEN $6 = '' THEN limit_network ELSE $6 END,"
			" limits_at = $7, updated_at = $7 WHERE id = $1",
			"sdiiisi", project, l->cpu, l->memory, l->io_weight, l->pids,
			l->network < 0 ? "" : ps_host_net_name(l->network), ps_cat_now());
	if (rc == PS_OK && ch == 0)
		return ps_err(err, PS_ENOTFOUND, "project %s is not in the catalog", project);
	return rc;
}

/* ------------------------------------------------------------ usage */

int ps_cat_usage_set(struct ps_catalog *cat, const char *project, const char *host,
		     const struct ps_host_usage *u, struct ps_error *err)
{
	int rc = check_project(project, err);
	if (rc != PS_OK)
		return rc;
	return ps_db_exec(cat->db, NULL, err,
			  "INSERT INTO usage (project, host, at, cpu_usec, memory_bytes, memory_peak,"
			  " io_bytes, pids, disk_bytes, oom_kills, running)"
			  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
			  " ON CONFLICT (project) DO UPDATE SET host = excluded.host, at = excluded.at,"
			  " cpu_usec = excluded.cpu_usec, memory_bytes = excluded.memory_bytes,"
			  " memory_peak = excluded.memory_peak, io_bytes = excluded.io_bytes,"
			  " pids = excluded.pids, disk_bytes = excluded.disk_bytes,"
			  " oom_kills = excluded.oom_kills, running = excluded.running",
			  "ssiiiiiiiii", project, host ? host : "", ps_cat_now(), u->cpu_usec,
			  u->memory_bytes, u->memory_peak, u->io_bytes, u->pids, u->disk_bytes,
			  u->oom_kills, (int64_t)u->running);
}

static int push_usage(void *ctx, struct ps_db_row *r)
{
	struct {
		struct ps_cat_usage *v;
		size_t n, cap;
	} *a = ctx;
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 16;
		struct ps_cat_usage *nv = ps_realloc(a->v, nc * sizeof(*nv));
		if (!nv)
			return PS_ERROR;
		a->v = nv;
		a->cap = nc;
	}
	struct ps_cat_usage *e = &a->v[a->n++];
	memset(e, 0, sizeof(*e));
	ps_db_text_cpy(r, 0, e->project, sizeof(e->project));
	ps_db_text_cpy(r, 1, e->host, sizeof(e->host));
	e->at = ps_db_int(r, 2);
	e->u.cpu_usec = ps_db_int(r, 3);
	e->u.memory_bytes = ps_db_int(r, 4);
	e->u.memory_peak = ps_db_int(r, 5);
	e->u.io_bytes = ps_db_int(r, 6);
	e->u.pids = ps_db_int(r, 7);
	e->u.disk_bytes = ps_db_int(r, 8);
	e->u.oom_kills = ps_db_int(r, 9);
	e->u.running = (int)ps_db_int(r, 10);
	e->u.disk_limit = ps_db_int(r, 11);
	return 0;
}

int ps_cat_usage_list(struct ps_catalog *cat, const char *host, struct ps_cat_usage **out,
		      size_t *n, struct ps_error *err)
{
	struct {
		struct ps_cat_usage *v;
		size_t n, cap;
	} a = { NULL, 0, 0 };
	int rc = ps_db_query(cat->db, push_usage, &a, err,
			     "SELECT u.project, u.host, u.at, u.cpu_usec, u.memory_bytes, u.memory_peak,"
			     " u.io_bytes, u.pids, u.disk_bytes, u.oom_kills, u.running,"
			     " COALESCE(p.quota_bytes, 0) FROM usage u LEFT JOIN projects p ON p.id = u.project"
			     " WHERE ($1 = '' OR u.host = $1) ORDER BY u.project",
			     "s", host ? host : "");
	if (rc != PS_OK) {
		free(a.v);
		*out = NULL;
		*n = 0;
		return err && err->msg[0] ? rc : ps_err(err, PS_ERROR, "out of memory");
	}
	*out = a.v;
	*n = a.n;
	return PS_OK;
}

int ps_cat_usage_clear(struct ps_catalog *cat, const char *project, struct ps_error *err)
{
	int rc = check_project(project, err);
	if (rc != PS_OK)
		return rc;
	return ps_db_exec(cat->db, NULL, err, "DELETE FROM usage WHERE project = $1", "s", project);
}

/* ------------------------------------------------------------ volumes */

static int check_kind(const char *kind, struct ps_error *err)
{
	if (!kind || (strcmp(kind, "data") != 0 && strcmp(kind, "scratch") != 0))
		return ps_err(err, PS_EINVAL, "unknown volume kind '%s' (data or scratch)",
			      kind ? kind : "");
	return PS_OK;
}

int ps_cat_volume_set(struct ps_catalog *cat, const char *host, const char *kind,
		      const char *path, struct ps_error *err)
{
	int rc = check_kind(kind, err);
	if (rc != PS_OK)
		return rc;
	if (!path || path[0] != '/' || strlen(path) >= PS_CAT_TEXT_MAX)
		return ps_err(err, PS_EINVAL, "volume path '%s' must be an absolute path",
			      path ? path : "");
	if (host && strlen(host) > PS_CAT_ID_MAX)
		return ps_err(err, PS_EINVAL, "invalid host name '%s'", host);
	return ps_db_exec(cat->db, NULL, err,
			  "INSERT INTO volumes (host, kind, path) VALUES ($1, $2, $3)"
			  " ON CONFLICT (host, kind) DO UPDATE SET path = excluded.path",
			  "sss", host ? host : "", kind, path);
}

int ps_cat_volume_remove(struct ps_catalog *cat, const char *host, const char *kind,
			 struct ps_error *err)
{
	int rc = check_kind(kind, err);
	if (rc != PS_OK)
		return rc;
	int64_t ch = 0;
	rc = ps_db_exec(cat->db, &ch, err, "DELETE FROM volumes WHERE host = $1 AND kind = $2", "ss",
			host ? host : "", kind);
	if (rc == PS_OK && ch == 0)
		return ps_err(err, PS_ENOTFOUND, "no %s volume%s%s", kind, host && *host ? " for host " : "",
			      host ? host : "");
	return rc;
}

static int push_volume(void *ctx, struct ps_db_row *r)
{
	struct {
		struct ps_cat_volume *v;
		size_t n, cap;
	} *a = ctx;
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 8;
		struct ps_cat_volume *nv = ps_realloc(a->v, nc * sizeof(*nv));
		if (!nv)
			return PS_ERROR;
		a->v = nv;
		a->cap = nc;
	}
	struct ps_cat_volume *e = &a->v[a->n++];
	memset(e, 0, sizeof(*e));
	ps_db_text_cpy(r, 0, e->host, sizeof(e->host));
	ps_db_text_cpy(r, 1, e->kind, sizeof(e->kind));
	ps_db_text_cpy(r, 2, e->path, sizeof(e->path));
	return 0;
}

int ps_cat_volume_list(struct ps_catalog *cat, struct ps_cat_volume **out, size_t *n,
		       struct ps_error *err)
{
	struct {
		struct ps_cat_volume *v;
		size_t n, cap;
	} a = { NULL, 0, 0 };
	int rc = ps_db_query(cat->db, push_volume, &a, err,
			     "SELECT host, kind, path FROM volumes ORDER BY host, kind", "");
	if (rc != PS_OK) {
		free(a.v);
		*out = NULL;
		*n = 0;
		return err && err->msg[0] ? rc : ps_err(err, PS_ERROR, "out of memory");
	}
	*out = a.v;
	*n = a.n;
	return PS_OK;
}

int ps_cat_volumes_for(struct ps_catalog *cat, const char *host, char *data, size_t dlen,
		       char *scratch, size_t slen, struct ps_error *err)
{
	struct ps_cat_volume *v;
	size_t n;
	int rc = ps_cat_volume_list(cat, &v, &n, err);
	if (rc != PS_OK)
		return rc;
	data[0] = scratch[0] = 0;
	int have_d = 0, have_s = 0; /* 2 = host's own, 1 = every host's */
	for (size_t i = 0; i < n; i++) {
		int prio = v[i].host[0] == 0 ? 1 : (host && strcmp(v[i].host, host) == 0) ? 2 : 0;
		if (!prio)
			continue;
		if (strcmp(v[i].kind, "data") == 0 && prio > have_d) {
			snprintf(data, dlen, "%s", v[i].path);
			have_d = prio;
		} else if (strcmp(v[i].kind, "scratch") == 0 && prio > have_s) {
			snprintf(scratch, slen, "%s", v[i].path);
			have_s = prio;
		}
	}
	free(v);
	return PS_OK;
}
