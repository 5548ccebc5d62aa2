/*
 * catalog_stats.c - aggregate figures of the catalog: what /metrics and the
 * stores listing of `projstore serve` report (counts by status, operations by
 * kind and state with their durations, events by kind, sizes per store) and
 * a cheap liveness probe.
 *
 * Only aggregates: nothing here returns per-project rows.  Each function is
 * one or two GROUP BY queries over indexed or small tables; the caller
 * decides how often to ask.
 */
#include "catalog_int.h"

#include <string.h>

static int arr_grow(void **v, size_t *n, size_t *cap, size_t size)
{
	if (*n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 16;
	void *nv = ps_realloc(*v, nc * size);
	if (!nv)
		return -1;
	*v = nv;
	*cap = nc;
	return 0;
}

struct counts_ctx {
	struct ps_cat_count *v;
	size_t n, cap;
	int oom;
};

/* rows of (key, [key2,] count [, sum]) */
static int push_count(void *ctx, struct ps_db_row *r, int keys, int sums)
{
	struct counts_ctx *c = ctx;
	if (arr_grow((void **)&c->v, &c->n, &c->cap, sizeof(*c->v)) != 0) {
		c->oom = 1;
		return PS_ERROR;
	}
	struct ps_cat_count *e = &c->v[c->n++];
	memset(e, 0, sizeof(*e));
	ps_db_text_cpy(r, 0, e->key, sizeof(e->key));
	if (keys > 1)
		ps_db_text_cpy(r, 1, e->key2, sizeof(e->key2));
	e->count = ps_db_int(r, keys);
	if (sums)
		e->sum = ps_db_int(r, keys + 1);
	return 0;
}

static int push_1(void *ctx, struct ps_db_row *r) { return push_count(ctx, r, 1, 0); }
static int push_2(void *ctx, struct ps_db_row *r) { return push_count(ctx, r, 2, 0); }
static int push_2s(void *ctx, struct ps_db_row *r) { return push_count(ctx, r, 2, 1); }

static int counts(struct ps_catalog *cat, const char *sql, ps_db_row_fn fn,
		  struct ps_cat_count **out, size_t *n, struct ps_error *err)
{
	struct counts_ctx c = { NULL, 0, 0, 0 };
	int rc = ps_db_query(cat->db, fn, &c, err, sql, "");
	if (rc == PS_OK && c.oom)
		rc = ps_err(err, PS_ERROR, "out of memory");
	if (rc != PS_OK) {
		free(c.v);
		*out = NULL;
		*n = 0;
		return rc;
	}
	*out = c.v;
	*n = c.n;
	return PS_OK;
}

int ps_cat_count_projects_by_status(struct ps_catalog *cat, struct ps_cat_count **out, size_t *n,
				    struct ps_error *err)
{
	return counts(cat, "SELECT status, COUNT(*) FROM projects GROUP BY status ORDER BY status",
		      push_1, out, n, err);
}

int ps_cat_count_ops(struct ps_catalog *cat, struct ps_cat_count **out, size_t *n,
		     struct ps_error *err)
{
	/* sum = microseconds spent by the finished ones (started to finished) */
	return counts(cat,
		      "SELECT kind, state, COUNT(*), COALESCE(SUM(CASE WHEN finished_at > 0 AND"
		      " started_at > 0 AND finished_at >= started_at THEN finished_at - started_at"
		      " ELSE 0 END), 0) FROM operations GROUP BY kind, state ORDER BY kind, state",
		      push_2s, out, n, err);
}

int ps_cat_count_events(struct ps_catalog *cat, struct ps_cat_count **out, size_t *n,
			struct ps_error *err)
{
	return counts(cat,
		      "SELECT kind, CASE WHEN error <> 0 THEN 'error' ELSE 'ok' END, COUNT(*)"
		      " FROM events GROUP BY kind, CASE WHEN error <> 0 THEN 'error' ELSE 'ok' END"
		      " ORDER BY 1, 2",
		      push_2, out, n, err);
}

static int push_usage(void *ctx, struct ps_db_row *r)
{
	struct counts_ctx *c = ctx;
	if (arr_grow((void **)&c->v, &c->n, &c->cap, sizeof(struct ps_cat_store_usage)) != 0) {
		c->oom = 1;
		return PS_ERROR;
	}
	struct ps_cat_store_usage *u = &((struct ps_cat_store_usage *)(void *)c->v)[c->n++];
	memset(u, 0, sizeof(*u));
	ps_db_text_cpy(r, 0, u->store, sizeof(u->store));
	u->projects = ps_db_int(r, 1);
	u->logical_bytes = ps_db_int(r, 2);
	u->stored_bytes = ps_db_int(r, 3);
	u->newest_at = ps_db_int(r, 4);
	return 0;
}

int ps_cat_store_usage(struct ps_catalog *cat, struct ps_cat_store_usage **out, size_t *n,
		       struct ps_error *err)
{
	struct counts_ctx c = { NULL, 0, 0, 0 };
	int rc = ps_db_query(cat->db, push_usage, &c, err,
			     "SELECT store, COUNT(*), COALESCE(SUM(logical_bytes), 0),"
			     " COALESCE(SUM(stored_bytes), 0), COALESCE(MAX(at), 0)"
			     " FROM snapshots GROUP BY store ORDER BY store",
			     "");
	if (rc == PS_OK && c.oom)
		rc = ps_err(err, PS_ERROR, "out of memory");
	if (rc != PS_OK) {
		free(c.v);
		*out = NULL;
		*n = 0;
		return rc;
	}
	*out = (struct ps_cat_store_usage *)(void *)c.v;
	*n = c.n;
	return PS_OK;
}

static int ignore_row(void *ctx, struct ps_db_row *r)
{
	(void)ctx;
	(void)r;
	return 0;
}

int ps_cat_ping(struct ps_catalog *cat, struct ps_error *err)
{
	return ps_db_query(cat->db, ignore_row, NULL, err, "SELECT version FROM schema_version", "");
}
