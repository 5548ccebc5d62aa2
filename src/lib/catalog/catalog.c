/*
 * catalog.c - opening a catalog (engine choice, default location, schema
 * migrations) and the catalog's operations on projects, leases, hosts,
 * operations, events, stores, syncs and snapshot summaries.
 */
#define _GNU_SOURCE
#include "catalog_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <time.h>

int64_t ps_cat_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void cpy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

/* ------------------------------------------------------------ open */

static int is_pg_spec(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0 ||
	       strncmp(s, "postgresql:", 11) == 0;
}

/* network filesystems on which SQLite's locking cannot be trusted */
static int on_network_fs(const char *path)
{
	struct statfs sf;
	if (statfs(path, &sf) != 0)
		return 0;
	switch ((unsigned long)sf.f_type) {
	case 0x65735546UL: /* FUSE (GlusterFS, sshfs ...) */
	case 0x6969UL:     /* NFS */
	case 0xFF534D42UL: /* CIFS */
	case 0xFE534D42UL: /* SMB2 */
	case 0x00C36400UL: /* Ceph */
	case 0x47504653UL: /* GPFS */
		return 1;
	default:
		return 0;
	}
}

int ps_catalog_default_spec(const char *store_location, char *buf, size_t len,
			    struct ps_error *err)
{
	const char *env = getenv("PROJSTORE_CATALOG");
	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return PS_OK;
	}
	if (!store_location || !*store_location)
		return ps_err(err, PS_ENOTFOUND, "no catalog given (--catalog or PROJSTORE_CATALOG)");
	if (strstr(store_location, "://"))
		return ps_err(err, PS_ENOTFOUND,
			      "store %s is remote: there is no default catalog (SQLite on a network "
			      "filesystem is unsafe); give --catalog or PROJSTORE_CATALOG",
			      store_location);
	struct stat st;
	if (stat(store_location, &st) != 0 || !S_ISDIR(st.st_mode))
		return ps_err(err, PS_ENOTFOUND, "no catalog: store %s is not a directory",
			      store_location);
	if (on_network_fs(store_location))
		return ps_err(err, PS_ENOTFOUND,
			      "store %s is on a network filesystem: there is no default catalog "
			      "(SQLite on a network filesystem is unsafe); give --catalog or "
			      "PROJSTORE_CATALOG",
			      store_location);
	snprintf(buf, len, "sqlite:%s/catalog.db", store_location);
	return PS_OK;
}

/* "postgresql://user:secret@host/db" -> "postgresql://user@host/db" */
static char *redact(const char *spec)
{
	char *s = ps_strdup(spec);
	if (!s || !is_pg_spec(s))
		return s;
	char *scheme = strstr(s, "://");
	if (!scheme)
		return s;
	char *auth = scheme + 3;
	char *at = strchr(auth, '@');
	char *slash = strchr(auth, '/');
	if (!at || (slash && slash < at))
		return s;
	char *colon = memchr(auth, ':', (size_t)(at - auth));
	if (colon)
		memmove(colon, at, strlen(at) + 1);
	return s;
}

static int get_version_row(void *ctx, struct ps_db_row *r)
{
	*(int *)ctx = (int)ps_db_int(r, 0);
	return 0;
}

static char *expand_ids(const char *sql, const char *engine)
{
	const char *rep = strcmp(engine, "sqlite") == 0 ? "INTEGER PRIMARY KEY AUTOINCREMENT"
							: "BIGSERIAL PRIMARY KEY";
	struct ps_buf b = PS_BUF_INIT;
	const char *p = sql;
	for (;;) {
		const char *q = strstr(p, "@ID@");
		if (!q) {
			if (ps_buf_append(&b, p, strlen(p) + 1) != 0)
				goto oom;
			break;
		}
		if (ps_buf_append(&b, p, (size_t)(q - p)) != 0 || ps_buf_append(&b, rep, strlen(rep)) != 0)
			goto oom;
		p = q + 4;
	}
	return (char *)b.data;
oom:
	ps_buf_release(&b);
	return NULL;
}

static int migrate(struct ps_catalog *cat, struct ps_error *err)
{
	struct ps_db *db = cat->db;
	/* the common case, one cheap read: already up to date */
	int current = -1;
	struct ps_error quiet;
	if (ps_db_query(db, get_version_row, &current, &quiet, "SELECT version FROM schema_version",
			"") == PS_OK &&
	    current == ps_cat_schema_latest()) {
		cat->version = current;
		return PS_OK;
	}
	int rc = ps_db_begin(db, err);
	if (rc != PS_OK)
		return ps_err_prefix(err, "catalog %s", cat->name);
	if (strcmp(db->engine->name, "postgresql") == 0) {
		/* serialise concurrent first starts */
		rc = ps_db_script(db, "SELECT pg_advisory_xact_lock(7273750001)", err);
		if (rc != PS_OK)
			goto fail;
	}
	rc = ps_db_script(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
			  err);
	if (rc != PS_OK)
		goto fail;
	int version = -1;
	rc = ps_db_query(db, get_version_row, &version, err, "SELECT version FROM schema_version", "");
	if (rc != PS_OK)
		goto fail;
	if (version < 0) {
		rc = ps_db_exec(db, NULL, err, "INSERT INTO schema_version (version) VALUES (0)", "");
		if (rc != PS_OK)
			goto fail;
		version = 0;
	}
	int latest = ps_cat_schema_latest();
	if (version > latest) {
		rc = ps_err(err, PS_EINVAL,
			    "catalog %s has schema version %d, newer than this projstore knows (%d): "
			    "upgrade projstore",
			    cat->name, version, latest);
		goto fail;
	}
	for (int v = version + 1; v <= latest; v++) {
		char *sql = expand_ids(ps_cat_schema_migration(v), db->engine->name);
		if (!sql) {
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto fail;
		}
		rc = ps_db_script(db, sql, err);
		free(sql);
		if (rc != PS_OK) {
			ps_err_prefix(err, "catalog %s: schema migration %d", cat->name, v);
			goto fail;
		}
	}
	if (latest != version) {
		rc = ps_db_exec(db, NULL, err, "UPDATE schema_version SET version = $1", "i",
				(int64_t)latest);
		if (rc != PS_OK)
			goto fail;
	}
	rc = ps_db_commit(db, err);
	if (rc != PS_OK)
		goto fail;
	cat->version = latest;
	return PS_OK;
fail:
	ps_db_rollback(db);
	return rc;
}

int ps_catalog_open(struct ps_catalog **out, const char *spec, const char *store_location,
		    struct ps_error *err)
{
	char def[4200];
	if (!spec || !*spec) {
		int rc = ps_catalog_default_spec(store_location, def, sizeof(def), err);
		if (rc != PS_OK)
			return rc == PS_ENOTFOUND ? PS_EINVAL : rc;
		spec = def;
	}
	struct ps_catalog *cat = ps_calloc(1, sizeof(*cat));
	if (!cat || !(cat->name = redact(spec))) {
		free(cat);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	int rc;
	if (is_pg_spec(spec)) {
		const char *conn = spec;
		if (strncmp(spec, "postgresql:", 11) == 0 && strncmp(spec, "postgresql://", 13) != 0)
			conn = spec + 11; /* "postgresql:host=... dbname=..." key/value form */
		rc = ps_db_open_pg(&cat->db, conn, err);
	} else {
		const char *path = strncmp(spec, "sqlite:", 7) == 0 ? spec + 7 : spec;
		if (!*path)
			rc = ps_err(err, PS_EINVAL, "catalog spec '%s' names no file", spec);
		else
			rc = ps_db_open_sqlite(&cat->db, path, err);
	}
	if (rc == PS_OK)
		rc = migrate(cat, err);
	if (rc != PS_OK) {
		ps_catalog_close(cat);
		return rc;
	}
	*out = cat;
	return PS_OK;
}

void ps_catalog_close(struct ps_catalog *cat)
{
	if (!cat)
		return;
	ps_db_close(cat->db);
	free(cat->name);
	free(cat);
}

const char *ps_catalog_engine(const struct ps_catalog *cat) { return cat->db->engine->name; }
const char *ps_catalog_name(const struct ps_catalog *cat) { return cat->name; }
int ps_catalog_schema_version(struct ps_catalog *cat) { return cat->version; }

/* ------------------------------------------------------------ growable result arrays */

struct arr {
	void *v;
	size_t n, cap, size;
	int oom;
};

static void *arr_push(struct arr *a)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 16;
		void *nv = ps_realloc(a->v, nc * a->size);
		if (!nv) {
			a->oom = 1;
			return NULL;
		}
		a->v = nv;
		a->cap = nc;
	}
	void *e = (char *)a->v + a->n * a->size;
	memset(e, 0, a->size);
	a->n++;
	return e;
}

static int arr_done(struct arr *a, int rc, void **out, size_t *n, struct ps_error *err)
{
	if (rc == PS_OK && a->oom)
		rc = ps_err(err, PS_ERROR, "out of memory");
	if (rc != PS_OK) {
		free(a->v);
		*out = NULL;
		*n = 0;
		return rc;
	}
	*out = a->v;
	*n = a->n;
	return PS_OK;
}

/* ------------------------------------------------------------ projects */

#define PROJ_COLS                                                                                 \
	"id, host, status, desired_host, quota_bytes, logical_bytes, stored_bytes, compressratio, " \
	"dedupratio, snapshots, last_snapshot, last_snapshot_at, last_save_at, last_save_result, "  \
	"migrated, maintenance, lease_owner, lease_expires, uid, updated_at"

static void row_project(struct ps_db_row *r, struct ps_cat_project *p)
{
	ps_db_text_cpy(r, 0, p->id, sizeof(p->id));
	ps_db_text_cpy(r, 1, p->host, sizeof(p->host));
	ps_db_text_cpy(r, 2, p->status, sizeof(p->status));
	ps_db_text_cpy(r, 3, p->desired_host, sizeof(p->desired_host));
	p->quota_bytes = ps_db_int(r, 4);
	p->logical_bytes = ps_db_int(r, 5);
	p->stored_bytes = ps_db_int(r, 6);
	p->compressratio = ps_db_double(r, 7);
	p->dedupratio = ps_db_double(r, 8);
	p->snapshots = ps_db_int(r, 9);
	ps_db_text_cpy(r, 10, p->last_snapshot, sizeof(p->last_snapshot));
	p->last_snapshot_at = ps_db_int(r, 11);
	p->last_save_at = ps_db_int(r, 12);
	ps_db_text_cpy(r, 13, p->last_save_result, sizeof(p->last_save_result));
	p->migrated = (int)ps_db_int(r, 14);
	p->maintenance = (int)ps_db_int(r, 15);
	ps_db_text_cpy(r, 16, p->lease_owner, sizeof(p->lease_owner));
	p->lease_expires = ps_db_int(r, 17);
	p->uid = ps_db_int(r, 18);
	p->updated_at = ps_db_int(r, 19);
}

struct one_ctx {
	void *out;
	int found;
};

static int one_project(void *ctx, struct ps_db_row *r)
{
	struct one_ctx *c = ctx;
	row_project(r, c->out);
	c->found = 1;
	return 0;
}

static int check_id(const char *id, struct ps_error *err)
{
	if (!id || !ps_project_id_valid(id))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", id ? id : "");
	return PS_OK;
}

static int check_name(const char *what, const char *s, struct ps_error *err)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > PS_CAT_ID_MAX)
		return ps_err(err, PS_EINVAL, "invalid %s name '%s' (1-%d characters)", what,
			      s ? s : "", PS_CAT_ID_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return ps_err(err, PS_EINVAL,
				      "invalid %s name '%s' (letters, digits, '.', '-', '_')", what, s);
	}
	return PS_OK;
}

struct where_ctx {
	struct ps_cat_where *w;
	int found;
	char root[1024];
};

static int one_where(void *ctx, struct ps_db_row *r)
{
	struct where_ctx *c = ctx;
	ps_db_text_cpy(r, 0, c->w->host, sizeof(c->w->host));
	ps_db_text_cpy(r, 1, c->w->status, sizeof(c->w->status));
	ps_db_text_cpy(r, 2, c->root, sizeof(c->root));
	c->found = 1;
	return 0;
}

int ps_cat_where(struct ps_catalog *cat, const char *id, struct ps_cat_where *out,
		 struct ps_error *err)
{
	int rc = check_id(id, err);
	if (rc != PS_OK)
		return rc;
	memset(out, 0, sizeof(*out));
	snprintf(out->project, sizeof(out->project), "%s", id);
	struct where_ctx c = { out, 0, "" };
	/* one statement, one round trip: the project and its host's root */
	rc = ps_db_query(cat->db, one_where, &c, err,
			 "SELECT p.host, p.status, COALESCE(h.root, '') FROM projects p"
			 " LEFT JOIN hosts h ON h.name = p.host WHERE p.id = $1",
			 "s", id);
	if (rc != PS_OK)
		return rc;
	if (!c.found) {
		/* unknown to the catalog: not deployed anywhere */
		snprintf(out->status, sizeof(out->status), "unknown");
		return PS_OK;
	}
	if (out->host[0] && c.root[0])
		snprintf(out->path, sizeof(out->path), "%s/%s", c.root, id);
	return PS_OK;
}

int ps_cat_project_get(struct ps_catalog *cat, const char *id, struct ps_cat_project *out,
		       struct ps_error *err)
{
	int rc = check_id(id, err);
	if (rc != PS_OK)
		return rc;
	struct one_ctx c = { out, 0 };
	rc = ps_db_query(cat->db, one_project, &c, err,
			 "SELECT " PROJ_COLS " FROM projects WHERE id = $1", "s", id);
	if (rc != PS_OK)
		return rc;
	if (!c.found)
		return ps_err(err, PS_ENOTFOUND, "project %s is not in the catalog", id);
	return PS_OK;
}

/* LIKE pattern for a substring search: lower-cased, %, _ and \ escaped */
static void like_pattern(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	if (!s || !*s) {
		buf[0] = 0;
		return;
	}
	buf[o++] = '%';
	for (; *s && o + 4 < len; s++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '%' || c == '_' || c == '\\')
			buf[o++] = '\\';
		buf[o++] = c;
	}
	buf[o++] = '%';
	buf[o] = 0;
}

#define LIST_WHERE                                                                        \
	" WHERE ($1 = '' OR id LIKE $1 ESCAPE '\\') AND ($2 = '' OR host = $2)"           \
	" AND ($3 = '' OR status = $3) AND id > $4"

static int push_project(void *ctx, struct ps_db_row *r)
{
	struct ps_cat_project *p = arr_push(ctx);
	if (!p)
		return PS_ERROR;
	row_project(r, p);
	return 0;
}

int ps_cat_project_list(struct ps_catalog *cat, const struct ps_cat_query *q,
			struct ps_cat_project **out, size_t *n, struct ps_error *err)
{
	char pat[4 * PS_CAT_ID_MAX + 8];
	struct ps_cat_query dq = PS_CAT_QUERY_INIT;
	if (!q)
		q = &dq;
	if (q->search && strlen(q->search) > PS_CAT_ID_MAX)
		return ps_err(err, PS_EINVAL, "search text too long (at most %d characters)",
			      PS_CAT_ID_MAX);
	like_pattern(q->search, pat, sizeof(pat));
	struct arr a = { NULL, 0, 0, sizeof(struct ps_cat_project), 0 };
	int rc = ps_db_query(cat->db, push_project, &a, err,
			     "SELECT " PROJ_COLS " FROM projects" LIST_WHERE " ORDER BY id LIMIT $5",
			     "ssssi", pat, q->host ? q->host : "", q->status ? q->status : "",
			     q->after ? q->after : "", (int64_t)(q->limit > 0 ? q->limit : INT32_MAX));
	return arr_done(&a, rc, (void **)out, n, err);
}

static int get_int(void *ctx, struct ps_db_row *r)
{
	*(int64_t *)ctx = ps_db_int(r, 0);
	return 0;
}

int ps_cat_project_count(struct ps_catalog *cat, const struct ps_cat_query *q, int64_t *n,
			 struct ps_error *err)
{
	char pat[4 * PS_CAT_ID_MAX + 8];
	struct ps_cat_query dq = PS_CAT_QUERY_INIT;
	if (!q)
		q = &dq;
	if (q->search && strlen(q->search) > PS_CAT_ID_MAX)
		return ps_err(err, PS_EINVAL, "search text too long");
	like_pattern(q->search, pat, sizeof(pat));
	*n = 0;
	return ps_db_query(cat->db, get_int, n, err, "SELECT COUNT(*) FROM projects" LIST_WHERE,
			   "ssss", pat, q->host ? q->host : "", q->status ? q->status : "",
			   q->after ? q->after : "");
}

int ps_cat_project_ensure(struct ps_catalog *cat, const char *id, struct ps_error *err)
{
	int rc = check_id(id, err);
	if (rc != PS_OK)
		return rc;
	return ps_db_exec(cat->db, NULL, err,
			  "INSERT INTO projects (id, updated_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
			  "si", id, ps_cat_now());
}

int ps_cat_project_set_facts(struct ps_catalog *cat, const char *id,
			     const struct ps_cat_store_facts *f, struct ps_error *err)
{
	int rc = check_id(id, err);
	if (rc != PS_OK)
		return rc;
	int64_t now = ps_cat_now();
	rc = ps_db_begin(cat->db, err);
	if (rc != PS_OK)
		return rc;
	rc = ps_db_exec(cat->db, NULL, err,
			"INSERT INTO projects (id, updated_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
			"si", id, now);
	if (rc == PS_OK)
		rc = ps_db_exec(
			cat->db, NULL, err,
			"UPDATE projects SET"
			" quota_bytes = CASE WHEN CAST($2 AS BIGINT) < 0 THEN quota_bytes ELSE CAST($2 AS BIGINT) END,"
			" logical_bytes = CASE WHEN CAST($3 AS BIGINT) < 0 THEN logical_bytes ELSE CAST($3 AS BIGINT) END,"
			" stored_bytes = CASE WHEN CAST($4 AS BIGINT) < 0 THEN stored_bytes ELSE CAST($4 AS BIGINT) END,"
			" compressratio = CASE WHEN CAST($5 AS DOUBLE PRECISION) < 0 THEN compressratio"
			" ELSE CAST($5 AS DOUBLE PRECISION) END,"
			" dedupratio = CASE WHEN CAST($6 AS DOUBLE PRECISION) < 0 THEN dedupratio"
			" ELSE CAST($6 AS DOUBLE PRECISION) END,"
			" snapshots = CASE WHEN CAST($7 AS BIGINT) < 0 THEN snapshots ELSE CAST($7 AS BIGINT) END,"
			" last_snapshot = CASE WHEN CAST($8 AS TEXT) IS NULL THEN last_snapshot ELSE CAST($8 AS TEXT) END,"
			" last_snapshot_at = CASE WHEN CAST($9 AS BIGINT) < 0 THEN last_snapshot_at"
			" ELSE CAST($9 AS BIGINT) END,"
			" updated_at = $10 WHERE id = $1",
			"siiiddisii", id, f->quota_bytes, f->logical_bytes, f->stored_bytes,
			f->compressratio, f->dedupratio, f->snapshots, f->last_snapshot,
			f->last_snapshot_at, now);
	if (rc == PS_OK && f->last_snapshot && *f->last_snapshot)
		rc = ps_db_exec(cat->db, NULL, err,
				"INSERT INTO snapshots (project, store, name, at, logical_bytes)"
				" VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project, store) DO UPDATE SET"
				" name = excluded.name, at = excluded.at,"
				" logical_bytes = excluded.logical_bytes"
				" WHERE excluded.at >= snapshots.at",
				"sssii", id, f->store ? f->store : "default", f->last_snapshot,
				f->last_snapshot_at < 0 ? (int64_t)0 : f->last_snapshot_at,
				f->logical_bytes < 0 ? (int64_t)0 : f->logical_bytes);
	if (rc == PS_OK)
		rc = ps_db_commit(cat->db, err);
	if (rc != PS_OK)
		ps_db_rollback(cat->db);
	return rc;
}

int ps_cat_project_save_result(struct ps_catalog *cat, const char *id, int64_t at,
			       const char *result, struct ps_error *err)
{
	int rc = check_id(id, err);
	if (rc != PS_OK)
		return rc;
	int64_t ch = 0;
	rc = ps_db_exec(cat->db, &ch, err,
			"UPDATE projects SET last_save_at = $2, last_save_result = $3, updated_at = $4"
			" WHERE id = $1",
			"sisi", id, at, result ? result : "", ps_cat_now());
	if (rc == PS_OK && ch == 0)
		return ps_err(err, PS_ENOTFOUND, "project %s is not in the catalog", id);
	return rc;
}

int ps_cat_project_set_flag(struct ps_catalog *cat, const char *id, const char *flag, int value,
			    struct ps_error *err)
{
	int rc = check_id(id, err);
	if (rc != PS_OK)
		return rc;
	const char *sql;
	if (strcmp(flag, "migrated") == 0)
		sql = "UPDATE projects SET migrated = $2, updated_at = $3 WHERE id = $1";
	else if (strcmp(flag, "maintenance") == 0)
		sql = "UPDATE projects SET maintenance = $2, updated_at = $3 WHERE id = $1";
	else
		return ps_err(err, PS_EINVAL, "unknown project flag '%s'", flag);
	int64_t ch = 0;
	rc = ps_db_exec(cat->db, &ch, err, sql, "sii", id, (int64_t)(value != 0), ps_cat_now());
	if (rc == PS_OK && ch == 0)
		return ps_err(err, PS_ENOTFOUND, "project %s is not in the catalog", id);
	return rc;
}

/* ------------------------------------------------------------ leases */

static int lease_holder(struct ps_catalog *cat, const char *project, struct ps_error *err)
{
	struct ps_cat_project p;
	struct ps_error e2;
	if (ps_cat_project_get(cat, project, &p, &e2) != PS_OK)
		return ps_err(err, e2.code, "%s", e2.msg);
	char when[64];
	ps_format_age(p.lease_expires * 1000, ps_cat_now() * 1000, when, sizeof(when));
	return ps_err(err, PS_ELOCKED, "project %s is leased by %s (expires %s)", project,
		      p.lease_owner, when);
}

int ps_cat_lease_acquire(struct ps_catalog *cat, const char *project, const char *owner,
			 int64_t ttl_us, struct ps_error *err)
{
	int rc = check_id(project, err);
	if (rc == PS_OK)
		rc = check_name("lease owner", owner, err);
	if (rc != PS_OK)
		return rc;
	int64_t now = ps_cat_now(), ch = 0;
	rc = ps_db_exec(cat->db, &ch, err,
			"UPDATE projects SET lease_owner = $2, lease_expires = $3"
			" WHERE id = $1 AND (lease_owner = '' OR lease_owner = $2 OR lease_expires < $4)",
			"ssii", project, owner, now + ttl_us, now);
	if (rc != PS_OK)
		return rc;
	if (ch == 0)
		return lease_holder(cat, project, err);
	return PS_OK;
}

int ps_cat_lease_release(struct ps_catalog *cat, const char *project, const char *owner,
			 struct ps_error *err)
{
	int rc = check_id(project, err);
	if (rc != PS_OK)
		return rc;
	return ps_db_exec(cat->db, NULL, err,
			  "UPDATE projects SET lease_owner = '', lease_expires = 0"
			  " WHERE id = $1 AND lease_owner = $2",
			  "ss", project, owner ? owner : "");
}

int ps_cat_project_set_state(struct ps_catalog *cat, const char *project, const char *owner,
			     const char *host, const char *status, struct ps_error *err)
{
	int rc = check_id(project, err);
	if (rc != PS_OK)
		return rc;
	int64_t now = ps_cat_now(), ch = 0;
	rc = ps_db_exec(cat->db, &ch, err,
			"UPDATE projects SET host = $2, status = $3, updated_at = $5"
			" WHERE id = $1 AND lease_owner = $4 AND lease_expires >= $5",
			"ssssi", project, host ? host : "", status, owner ? owner : "", now);
	if (rc != PS_OK)
		return rc;
	if (ch == 0)
		return lease_holder(cat, project, err);
	return PS_OK;
}

/* ------------------------------------------------------------ hosts */

int64_t ps_cat_host_dead_us(void)
{
	const char *e = getenv("PROJSTORE_HOST_DEAD_SECONDS");
	if (e && *e) {
		double s = strtod(e, NULL);
		if (s > 0)
			return (int64_t)(s * 1e6);
	}
	return PS_CAT_HOST_DEAD_US;
}

int ps_cat_host_alive(const struct ps_cat_host *h, int64_t now)
{
	if (strcmp(h->state, "disabled") == 0)
		return 0;
	return h->last_heartbeat > 0 && now - h->last_heartbeat <= ps_cat_host_dead_us();
}

#define HOST_COLS                                                                         \
	"h.name, h.datacenter, h.store_url, h.root, h.capacity, h.last_heartbeat, h.state, " \
	"(SELECT COUNT(*) FROM projects p WHERE p.host = h.name)"

static void row_host(struct ps_db_row *r, struct ps_cat_host *h)
{
	ps_db_text_cpy(r, 0, h->name, sizeof(h->name));
	ps_db_text_cpy(r, 1, h->datacenter, sizeof(h->datacenter));
	ps_db_text_cpy(r, 2, h->store_url, sizeof(h->store_url));
	ps_db_text_cpy(r, 3, h->root, sizeof(h->root));
	h->capacity = ps_db_int(r, 4);
	h->last_heartbeat = ps_db_int(r, 5);
	ps_db_text_cpy(r, 6, h->state, sizeof(h->state));
	h->deployed = ps_db_int(r, 7);
	if (strcmp(h->state, "up") == 0 && !ps_cat_host_alive(h, ps_cat_now()))
		cpy(h->state, sizeof(h->state), "down");
}

static int one_host(void *ctx, struct ps_db_row *r)
{
	struct one_ctx *c = ctx;
	row_host(r, c->out);
	c->found = 1;
	return 0;
}

static int push_host(void *ctx, struct ps_db_row *r)
{
	struct ps_cat_host *h = arr_push(ctx);
	if (!h)
		return PS_ERROR;
	row_host(r, h);
	return 0;
}

int ps_cat_host_add(struct ps_catalog *cat, const struct ps_cat_host *h, struct ps_error *err)
{
	int rc = check_name("host", h->name, err);
	if (rc != PS_OK)
		return rc;
	if (h->datacenter[0] && (rc = check_name("datacenter", h->datacenter, err)) != PS_OK)
		return rc;
	if (h->root[0] != '/')
		return ps_err(err, PS_EINVAL, "host %s: the root directory must be an absolute path",
			      h->name);
	if (h->capacity < 0)
		return ps_err(err, PS_EINVAL, "host %s: capacity must be >= 0", h->name);
	return ps_db_exec(cat->db, NULL, err,
			  "INSERT INTO hosts (name, datacenter, store_url, root, capacity, added_at)"
			  " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET"
			  " datacenter = excluded.datacenter, store_url = excluded.store_url,"
			  " root = excluded.root, capacity = excluded.capacity",
			  "ssssii", h->name, h->datacenter, h->store_url, h->root, h->capacity,
			  ps_cat_now());
}

int ps_cat_host_get(struct ps_catalog *cat, const char *name, struct ps_cat_host *out,
		    struct ps_error *err)
{
	int rc = check_name("host", name, err);
	if (rc != PS_OK)
		return rc;
	struct one_ctx c = { out, 0 };
	rc = ps_db_query(cat->db, one_host, &c, err, "SELECT " HOST_COLS " FROM hosts h WHERE h.name = $1",
			 "s", name);
	if (rc == PS_OK && !c.found)
		return ps_err(err, PS_ENOTFOUND, "no host named %s (add it with 'projstore host add')",
			      name);
	return rc;
}

int ps_cat_host_list(struct ps_catalog *cat, struct ps_cat_host **out, size_t *n,
		     struct ps_error *err)
{
	struct arr a = { NULL, 0, 0, sizeof(struct ps_cat_host), 0 };
	int rc = ps_db_query(cat->db, push_host, &a, err,
			     "SELECT " HOST_COLS " FROM hosts h ORDER BY h.name", "");
	return arr_done(&a, rc, (void **)out, n, err);
}

int ps_cat_host_heartbeat(struct ps_catalog *cat, const char *name, struct ps_error *err)
{
	int64_t ch = 0;
	int rc = ps_db_exec(cat->db, &ch, err, "UPDATE hosts SET last_heartbeat = $2 WHERE name = $1",
			    "si", name, ps_cat_now());
	if (rc == PS_OK && ch == 0)
		return ps_err(err, PS_ENOTFOUND, "no host named %s (add it with 'projstore host add')",
			      name);
	return rc;
}

int ps_cat_host_set_state(struct ps_catalog *cat, const char *name, const char *state,
			  struct ps_error *err)
{
	if (strcmp(state, "up") != 0 && strcmp(state, "draining") != 0 &&
	    strcmp(state, "disabled") != 0)
		return ps_err(err, PS_EINVAL, "host state must be up, draining or disabled");
	int64_t ch = 0;
	int rc = ps_db_exec(cat->db, &ch, err, "UPDATE hosts SET state = $2 WHERE name = $1", "ss",
			    name, state);
	if (rc == PS_OK && ch == 0)
		return ps_err(err, PS_ENOTFOUND, "no host named %s", name);
	return rc;
}

/* ------------------------------------------------------------ operations */

#define OP_COLS                                                                                \
	"id, kind, project, host, target_host, state, phase, bytes_done, bytes_total, created_at, " \
	"started_at, finished_at, result, requested_by, options"

static void row_op(struct ps_db_row *r, struct ps_cat_op *o)
{
	o->id = ps_db_int(r, 0);
	ps_db_text_cpy(r, 1, o->kind, sizeof(o->kind));
	ps_db_text_cpy(r, 2, o->project, sizeof(o->project));
	ps_db_text_cpy(r, 3, o->host, sizeof(o->host));
	ps_db_text_cpy(r, 4, o->target_host, sizeof(o->target_host));
	ps_db_text_cpy(r, 5, o->state, sizeof(o->state));
	ps_db_text_cpy(r, 6, o->phase, sizeof(o->phase));
	o->bytes_done = ps_db_int(r, 7);
	o->bytes_total = ps_db_int(r, 8);
	o->created_at = ps_db_int(r, 9);
	o->started_at = ps_db_int(r, 10);
	o->finished_at = ps_db_int(r, 11);
	ps_db_text_cpy(r, 12, o->result, sizeof(o->result));
	ps_db_text_cpy(r, 13, o->requested_by, sizeof(o->requested_by));
	ps_db_text_cpy(r, 14, o->options, sizeof(o->options));
}

static int one_op(void *ctx, struct ps_db_row *r)
{
	struct one_ctx *c = ctx;
	row_op(r, c->out);
	c->found = 1;
	return 0;
}

static int push_op(void *ctx, struct ps_db_row *r)
{
	struct ps_cat_op *o = arr_push(ctx);
	if (!o)
		return PS_ERROR;
	row_op(r, o);
	return 0;
}

int ps_cat_op_get(struct ps_catalog *cat, int64_t id, struct ps_cat_op *out, struct ps_error *err)
{
	struct one_ctx c = { out, 0 };
	int rc = ps_db_query(cat->db, one_op, &c, err, "SELECT " OP_COLS " FROM operations WHERE id = $1",
			     "i", id);
	if (rc == PS_OK && !c.found)
		return ps_err(err, PS_ENOTFOUND, "no operation %" PRId64, id);
	return rc;
}

int ps_cat_ops_for_host(struct ps_catalog *cat, const char *host, struct ps_cat_op **out,
			size_t *n, struct ps_error *err)
{
	struct arr a = { NULL, 0, 0, sizeof(struct ps_cat_op), 0 };
	int rc = ps_db_query(cat->db, push_op, &a, err,
			     "SELECT " OP_COLS " FROM operations WHERE host = $1"
			     " AND state IN ('pending', 'running') ORDER BY id",
			     "s", host);
	return arr_done(&a, rc, (void **)out, n, err);
}

int ps_cat_ops_for_target(struct ps_catalog *cat, const char *host, struct ps_cat_op **out,
			  size_t *n, struct ps_error *err)
{
	struct arr a = { NULL, 0, 0, sizeof(struct ps_cat_op), 0 };
	int rc = ps_db_query(cat->db, push_op, &a, err,
			     "SELECT " OP_COLS " FROM operations WHERE target_host = $1 AND host <> $1"
			     " AND state IN ('pending', 'running') ORDER BY id",
			     "s", host);
	return arr_done(&a, rc, (void **)out, n, err);
}

int ps_cat_ops_for_project(struct ps_catalog *cat, const char *project, int limit,
			   struct ps_cat_op **out, size_t *n, struct ps_error *err)
{
	struct arr a = { NULL, 0, 0, sizeof(struct ps_cat_op), 0 };
	int rc = ps_db_query(cat->db, push_op, &a, err,
			     "SELECT " OP_COLS " FROM operations WHERE project = $1 ORDER BY id DESC LIMIT $2",
			     "si", project, (int64_t)(limit > 0 ? limit : 100));
	return arr_done(&a, rc, (void **)out, n, err);
}

static int active_op(struct ps_catalog *cat, const char *project, struct ps_cat_op *op,
		     struct ps_error *err)
{
	struct one_ctx c = { op, 0 };
	int rc = ps_db_query(cat->db, one_op, &c, err,
			     "SELECT " OP_COLS " FROM operations WHERE project = $1"
			     " AND state IN ('pending', 'running') AND kind <> 'save' ORDER BY id LIMIT 1",
			     "s", project);
	if (rc == PS_OK && !c.found)
		return PS_ENOTFOUND;
	return rc;
}

static int insert_op(struct ps_catalog *cat, const char *kind, const char *project, const char *host,
		     const char *target, const char *state, const char *phase, const char *result,
		     const char *by, const char *options, struct ps_cat_op *out, struct ps_error *err)
{
	int64_t now = ps_cat_now();
	struct one_ctx c = { out, 0 };
	int done = strcmp(state, "done") == 0;
	int rc = ps_db_query(cat->db, one_op, &c, err,
			     "INSERT INTO operations (kind, project, host, target_host, state, phase,"
			     " created_at, started_at, finished_at, result, requested_by, options)"
			     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11) RETURNING " OP_COLS,
			     "ssssssiisss", kind, project, host, target, state, phase, now,
			     done ? now : (int64_t)0, result, by ? by : "", options ? options : "");
	if (rc == PS_OK && !c.found)
		rc = ps_err(err, PS_ERROR, "catalog: operation not recorded");
	return rc;
}

/* the up host with the most room: fewest deployed per capacity */
static int pick_host(struct ps_catalog *cat, char *out, size_t len, struct ps_error *err)
{
	struct ps_cat_host *hs;
	size_t n;
	int rc = ps_cat_host_list(cat, &hs, &n, err);
	if (rc != PS_OK)
		return rc;
	int64_t now = ps_cat_now();
	double best = 0;
	int found = 0;
	for (size_t i = 0; i < n; i++) {
		struct ps_cat_host *h = &hs[i];
		if (strcmp(h->state, "up") != 0 || !ps_cat_host_alive(h, now))
			continue;
		if (h->capacity > 0 && h->deployed >= h->capacity)
			continue;
		double load = h->capacity > 0 ? (double)h->deployed / (double)h->capacity
					      : (double)h->deployed / 1e9;
		if (!found || load < best) {
			best = load;
			found = 1;
			cpy(out, len, h->name);
		}
	}
	free(hs);
	if (!found)
		return ps_err(err, PS_EINVAL, "no host is up with room for another project");
	return PS_OK;
}

static int request_tx(struct ps_catalog *cat, const char *kind, const char *project,
		      const char *target_host, const char *by, const char *options,
		      struct ps_cat_op *op, struct ps_error *err)
{
	struct ps_cat_project p;
	int rc;
	int is_open = strcmp(kind, "open") == 0, is_move = strcmp(kind, "move") == 0;
	if (is_open || is_move) {
		rc = ps_db_exec(cat->db, NULL, err,
				"INSERT INTO projects (id, updated_at) VALUES ($1, $2)"
				" ON CONFLICT (id) DO NOTHING",
				"si", project, ps_cat_now());
		if (rc != PS_OK)
			return rc;
	}
	rc = ps_cat_project_get(cat, project, &p, err);
	if (rc != PS_OK)
		return rc;
	char target[PS_CAT_ID_MAX + 1] = "";
	if (target_host && *target_host) {
		struct ps_cat_host h;
		rc = ps_cat_host_get(cat, target_host, &h, err);
		if (rc != PS_OK)
			return rc;
		if (strcmp(h.state, "disabled") == 0 || strcmp(h.state, "draining") == 0)
			return ps_err(err, PS_EINVAL, "host %s is %s: it takes no new projects",
				      target_host, h.state);
		cpy(target, sizeof(target), target_host);
	}
	if (p.maintenance && strcmp(kind, "save") != 0)
		return ps_err(err, PS_ELOCKED, "project %s is in maintenance (being migrated)", project);
	char result[PS_CAT_TEXT_MAX];
	if (strcmp(kind, "save") == 0 || strcmp(kind, "close") == 0) {
		if (!p.host[0])
			return ps_err(err, PS_EINVAL, "project %s is not deployed", project);
		if (strcmp(kind, "save") == 0) {
			struct one_ctx c = { op, 0 };
			rc = ps_db_query(cat->db, one_op, &c, err,
					 "SELECT " OP_COLS " FROM operations WHERE project = $1"
					 " AND kind = 'save' AND state = 'pending' ORDER BY id LIMIT 1",
					 "s", project);
			if (rc != PS_OK || c.found)
				return rc;
		}
		rc = insert_op(cat, kind, project, p.host, p.host, "pending", "queued", "", by, options, op,
			       err);
		if (rc == PS_OK && strcmp(kind, "close") == 0)
			rc = ps_db_exec(cat->db, NULL, err,
					"UPDATE projects SET desired_host = '' WHERE id = $1", "s", project);
		return rc;
	}
	if (is_move && !target[0])
		return ps_err(err, PS_EINVAL, "move of %s: no target host given", project);
	if (p.host[0] && (is_open || strcmp(p.host, target) == 0)) {
		/* already where it is asked for: a finished operation */
		snprintf(result, sizeof(result), "deployed on %s", p.host);
		if (is_open && target[0] && strcmp(target, p.host) != 0)
			return ps_err(err, PS_EEXISTS,
				      "project %s is deployed on %s, not %s: use 'move' to change hosts",
				      project, p.host, target);
		rc = active_op(cat, project, op, err);
		if (rc == PS_OK)
			return ps_err(err, PS_ELOCKED,
				      "project %s: operation %" PRId64 " (%s, %s) is in progress", project,
				      op->id, op->kind, op->phase);
		if (rc != PS_ENOTFOUND)
			return rc;
		return insert_op(cat, kind, project, p.host, p.host, "done", "done", result, by, options,
				 op, err);
	}
	if (!target[0]) {
		rc = pick_host(cat, target, sizeof(target), err);
		if (rc != PS_OK)
			return rc;
	}
	/* open, or move of a project that is not deployed (= open there), or a
	 * real move: the old host acts first */
	const char *actor = (is_move && p.host[0]) ? p.host : target;
	rc = insert_op(cat, kind, project, actor, target, "pending", "queued", "", by, options, op,
		       err);
	if (rc == PS_OK)
		rc = ps_db_exec(cat->db, NULL, err,
				"UPDATE projects SET desired_host = $2, updated_at = $3 WHERE id = $1", "ssi",
				project, target, ps_cat_now());
	return rc;
}

int ps_cat_request(struct ps_catalog *cat, const char *kind, const char *project,
		   const char *target_host, const char *requested_by, struct ps_cat_op *op_out,
		   struct ps_error *err)
{
	return ps_cat_request_opts(cat, kind, project, target_host, requested_by, NULL, op_out, err);
}

int ps_cat_request_opts(struct ps_catalog *cat, const char *kind, const char *project,
			const char *target_host, const char *requested_by, const char *options,
			struct ps_cat_op *op_out, struct ps_error *err)
{
	int rc = check_id(project, err);
	if (rc != PS_OK)
		return rc;
	if (options && strlen(options) >= sizeof(op_out->options))
		return ps_err(err, PS_EINVAL, "operation options too long: '%s'", options);
	if (strcmp(kind, "open") != 0 && strcmp(kind, "save") != 0 && strcmp(kind, "close") != 0 &&
	    strcmp(kind, "move") != 0)
		return ps_err(err, PS_EINVAL, "unknown operation '%s'", kind);
	struct ps_cat_op tmp;
	if (!op_out)
		op_out = &tmp;
	rc = ps_db_begin(cat->db, err);
	if (rc != PS_OK)
		return rc;
	rc = request_tx(cat, kind, project, target_host, requested_by, options, op_out, err);
	if (rc == PS_OK)
		rc = ps_db_commit(cat->db, err);
	ps_db_rollback(cat->db);
	if (rc == PS_EEXISTS && strstr(err->msg, "catalog")) {
		/* the unique index: another open/close/move won the race */
		struct ps_cat_op other;
		struct ps_error e2;
		if (active_op(cat, project, &other, &e2) == PS_OK)
			return ps_err(err, PS_ELOCKED,
				      "project %s: operation %" PRId64 " (%s to %s, %s) is already in "
				      "progress",
				      project, other.id, other.kind, other.target_host, other.phase);
		return ps_err(err, PS_ELOCKED, "project %s: another operation is already in progress",
			      project);
	}
	return rc;
}

int ps_cat_op_progress(struct ps_catalog *cat, int64_t id, const char *phase, int64_t bytes_done,
		       int64_t bytes_total, struct ps_error *err)
{
	int64_t now = ps_cat_now(), ch = 0;
	int rc = ps_db_exec(cat->db, &ch, err,
			    "UPDATE operations SET state = 'running',"
			    " started_at = CASE WHEN started_at = 0 THEN CAST($5 AS BIGINT) ELSE started_at END,"
			    " phase = CASE WHEN CAST($2 AS TEXT) IS NULL THEN phase ELSE CAST($2 AS TEXT) END,"
			    " bytes_done = CASE WHEN CAST($3 AS BIGINT) < 0 THEN bytes_done ELSE CAST($3 AS BIGINT) END,"
			    " bytes_total = CASE WHEN CAST($4 AS BIGINT) < 0 THEN bytes_total ELSE CAST($4 AS BIGINT) END"
			    " WHERE id = $1 AND state IN ('pending', 'running')",
			    "isiii", id, phase, bytes_done, bytes_total, now);
	if (rc == PS_OK && ch == 0)
		return ps_err(err, PS_ENOTFOUND, "operation %" PRId64 " is not active", id);
	return rc;
}

int ps_cat_op_handoff(struct ps_catalog *cat, int64_t id, const char *from_host,
		      const char *to_host, const char *phase, struct ps_error *err)
{
	int64_t ch = 0;
	int rc = ps_db_exec(cat->db, &ch, err,
			    "UPDATE operations SET host = $3, phase = $4, bytes_done = 0, bytes_total = 0"
			    " WHERE id = $1 AND host = $2 AND state IN ('pending', 'running')",
			    "isss", id, from_host, to_host, phase ? phase : "queued");
	if (rc == PS_OK && ch == 0)
		return ps_err(err, PS_ELOCKED, "operation %" PRId64 " is no longer with host %s", id,
			      from_host);
	return rc;
}

int ps_cat_op_finish(struct ps_catalog *cat, int64_t id, int ok, const char *result,
		     struct ps_error *err)
{
	int64_t now = ps_cat_now(), ch = 0;
	int rc = ps_db_exec(cat->db, &ch, err,
			    "UPDATE operations SET state = $2, phase = $2, finished_at = $3, result = $4,"
			    " started_at = CASE WHEN started_at = 0 THEN CAST($3 AS BIGINT) ELSE started_at END"
			    " WHERE id = $1 AND state IN ('pending', 'running')",
			    "isis", id, ok ? "done" : "failed", now, result ? result : "");
	if (rc == PS_OK && ch == 0)
		return ps_err(err, PS_ENOTFOUND, "operation %" PRId64 " is not active", id);
	return rc;
}

/* ------------------------------------------------------------ events */

static int push_event(void *ctx, struct ps_db_row *r)
{
	struct ps_cat_event *e = arr_push(ctx);
	if (!e)
		return PS_ERROR;
	e->id = ps_db_int(r, 0);
	ps_db_text_cpy(r, 1, e->project, sizeof(e->project));
	e->at = ps_db_int(r, 2);
	ps_db_text_cpy(r, 3, e->kind, sizeof(e->kind));
	ps_db_text_cpy(r, 4, e->actor, sizeof(e->actor));
	e->error = (int)ps_db_int(r, 5);
	ps_db_text_cpy(r, 6, e->detail, sizeof(e->detail));
	return 0;
}

int ps_cat_event_add(struct ps_catalog *cat, const char *project, const char *kind,
		     const char *actor, int error, const char *detail, struct ps_error *err)
{
	int rc = check_id(project, err);
	if (rc != PS_OK)
		return rc;
	char d[PS_CAT_TEXT_MAX];
	cpy(d, sizeof(d), detail);
	return ps_db_exec(cat->db, NULL, err,
			  "INSERT INTO events (project, at, kind, actor, error, detail)"
			  " VALUES ($1, $2, $3, $4, $5, $6)",
			  "sissis", project, ps_cat_now(), kind, actor ? actor : "", (int64_t)(error != 0), d);
}

int ps_cat_events(struct ps_catalog *cat, const char *project, int limit,
		  struct ps_cat_event **out, size_t *n, struct ps_error *err)
{
	int rc = check_id(project, err);
	if (rc != PS_OK)
		return rc;
	struct arr a = { NULL, 0, 0, sizeof(struct ps_cat_event), 0 };
	rc = ps_db_query(cat->db, push_event, &a, err,
			 "SELECT id, project, at, kind, actor, error, detail FROM events"
			 " WHERE project = $1 ORDER BY id DESC LIMIT $2",
			 "si", project, (int64_t)(limit > 0 ? limit : 100));
	return arr_done(&a, rc, (void **)out, n, err);
}

/* ------------------------------------------------------------ stores, syncs, snapshots */

int ps_cat_store_add(struct ps_catalog *cat, const struct ps_cat_store *s, struct ps_error *err)
{
	int rc = check_name("store", s->name, err);
	if (rc != PS_OK)
		return rc;
	if (!s->url[0])
		return ps_err(err, PS_EINVAL, "store %s: no location given", s->name);
	return ps_db_exec(cat->db, NULL, err,
			  "INSERT INTO stores (name, url, datacenter) VALUES ($1, $2, $3)"
			  " ON CONFLICT (name) DO UPDATE SET url = excluded.url,"
			  " datacenter = excluded.datacenter",
			  "sss", s->name, s->url, s->datacenter);
}

static int push_store(void *ctx, struct ps_db_row *r)
{
	struct ps_cat_store *s = arr_push(ctx);
	if (!s)
		return PS_ERROR;
	ps_db_text_cpy(r, 0, s->name, sizeof(s->name));
	ps_db_text_cpy(r, 1, s->url, sizeof(s->url));
	ps_db_text_cpy(r, 2, s->datacenter, sizeof(s->datacenter));
	return 0;
}

int ps_cat_store_list(struct ps_catalog *cat, struct ps_cat_store **out, size_t *n,
		      struct ps_error *err)
{
	struct arr a = { NULL, 0, 0, sizeof(struct ps_cat_store), 0 };
	int rc = ps_db_query(cat->db, push_store, &a, err,
			     "SELECT name, url, datacenter FROM stores ORDER BY name", "");
	return arr_done(&a, rc, (void **)out, n, err);
}

int ps_cat_sync_begin(struct ps_catalog *cat, const char *source, const char *destination,
		      int64_t *id_out, struct ps_error *err)
{
	*id_out = 0;
	return ps_db_query(cat->db, get_int, id_out, err,
			   "INSERT INTO syncs (source, destination, started_at) VALUES ($1, $2, $3)"
			   " RETURNING id",
			   "ssi", source, destination, ps_cat_now());
}

int ps_cat_sync_finish(struct ps_catalog *cat, int64_t id, const char *result, int64_t bytes,
		       int64_t objects, int64_t snapshots, struct ps_error *err)
{
	int64_t ch = 0;
	int rc = ps_db_exec(cat->db, &ch, err,
			    "UPDATE syncs SET finished_at = $2, result = $3, bytes = $4, objects = $5,"
			    " snapshots = $6 WHERE id = $1",
			    "iisiii", id, ps_cat_now(), result ? result : "", bytes, objects, snapshots);
	if (rc == PS_OK && ch == 0)
		return ps_err(err, PS_ENOTFOUND, "no sync %" PRId64, id);
	return rc;
}

static int push_sync(void *ctx, struct ps_db_row *r)
{
	struct ps_cat_sync *s = arr_push(ctx);
	if (!s)
		return PS_ERROR;
	s->id = ps_db_int(r, 0);
	ps_db_text_cpy(r, 1, s->source, sizeof(s->source));
	ps_db_text_cpy(r, 2, s->destination, sizeof(s->destination));
	s->started_at = ps_db_int(r, 3);
	s->finished_at = ps_db_int(r, 4);
	ps_db_text_cpy(r, 5, s->result, sizeof(s->result));
	s->bytes = ps_db_int(r, 6);
	s->objects = ps_db_int(r, 7);
	s->snapshots = ps_db_int(r, 8);
	return 0;
}

int ps_cat_sync_list(struct ps_catalog *cat, const char *source, const char *destination, int limit,
		     struct ps_cat_sync **out, size_t *n, struct ps_error *err)
{
	struct arr a = { NULL, 0, 0, sizeof(struct ps_cat_sync), 0 };
	int rc = ps_db_query(cat->db, push_sync, &a, err,
			     "SELECT id, source, destination, started_at, finished_at, result, bytes,"
			     " objects, snapshots FROM syncs WHERE ($1 = '' OR source = $1)"
			     " AND ($2 = '' OR destination = $2) ORDER BY id DESC LIMIT $3",
			     "ssi", source ? source : "", destination ? destination : "",
			     (int64_t)(limit > 0 ? limit : 100));
	return arr_done(&a, rc, (void **)out, n, err);
}

int ps_cat_snapshot_set(struct ps_catalog *cat, const struct ps_cat_snapshot *s,
			struct ps_error *err)
{
	int rc = check_id(s->project, err);
	if (rc != PS_OK)
		return rc;
	return ps_db_exec(cat->db, NULL, err,
			  "INSERT INTO snapshots (project, store, name, at, logical_bytes, stored_bytes, files)"
			  " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (project, store) DO UPDATE SET"
			  " name = excluded.name, at = excluded.at, logical_bytes = excluded.logical_bytes,"
			  " stored_bytes = excluded.stored_bytes, files = excluded.files"
			  " WHERE excluded.at >= snapshots.at",
			  "sssiiii", s->project, s->store[0] ? s->store : "default", s->name, s->at,
			  s->logical_bytes, s->stored_bytes, s->files);
}

static int push_snap(void *ctx, struct ps_db_row *r)
{
	struct ps_cat_snapshot *s = arr_push(ctx);
	if (!s)
		return PS_ERROR;
	ps_db_text_cpy(r, 0, s->project, sizeof(s->project));
	ps_db_text_cpy(r, 1, s->store, sizeof(s->store));
	ps_db_text_cpy(r, 2, s->name, sizeof(s->name));
	s->at = ps_db_int(r, 3);
	s->logical_bytes = ps_db_int(r, 4);
	s->stored_bytes = ps_db_int(r, 5);
	s->files = ps_db_int(r, 6);
	return 0;
}

int ps_cat_snapshot_list(struct ps_catalog *cat, const char *project, struct ps_cat_snapshot **out,
			 size_t *n, struct ps_error *err)
{
	struct arr a = { NULL, 0, 0, sizeof(struct ps_cat_snapshot), 0 };
	int rc = ps_db_query(cat->db, push_snap, &a, err,
			     "SELECT project, store, name, at, logical_bytes, stored_bytes, files"
			     " FROM snapshots WHERE project = $1 ORDER BY store",
			     "s", project);
	return arr_done(&a, rc, (void **)out, n, err);
}

/* ------------------------------------------------------------ aggregates */

static int totals_row(void *ctx, struct ps_db_row *r)
{
	struct ps_cat_totals *t = ctx;
	t->projects = ps_db_int(r, 0);
	t->deployed = ps_db_int(r, 1);
	t->logical_bytes = ps_db_int(r, 2);
	t->stored_bytes = ps_db_int(r, 3);
	return 0;
}

static int ops_row(void *ctx, struct ps_db_row *r)
{
	struct ps_cat_totals *t = ctx;
	const char *st = ps_db_text(r, 0);
	int64_t n = ps_db_int(r, 1);
	if (strcmp(st, "pending") == 0)
		t->ops_pending = n;
	else if (strcmp(st, "running") == 0)
		t->ops_running = n;
	else if (strcmp(st, "failed") == 0)
		t->ops_failed = n;
	return 0;
}

int ps_cat_totals(struct ps_catalog *cat, struct ps_cat_totals *out, struct ps_error *err)
{
	memset(out, 0, sizeof(*out));
	int rc = ps_db_query(cat->db, totals_row, out, err,
			     "SELECT COUNT(*), COALESCE(SUM(CASE WHEN host <> '' THEN 1 ELSE 0 END), 0),"
			     " COALESCE(SUM(logical_bytes), 0), COALESCE(SUM(stored_bytes), 0) FROM projects",
			     "");
	if (rc == PS_OK)
		rc = ps_db_query(cat->db, ops_row, out, err,
				 "SELECT state, COUNT(*) FROM operations GROUP BY state", "");
	if (rc != PS_OK)
		return rc;
	struct ps_cat_host *hs;
	size_t n;
	rc = ps_cat_host_list(cat, &hs, &n, err);
	if (rc != PS_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(hs[i].state, "up") == 0)
			out->hosts_up++;
		else if (strcmp(hs[i].state, "down") == 0)
			out->hosts_down++;
	}
	free(hs);
	return PS_OK;
}

/* ------------------------------------------------------------ store -> catalog */

int ps_cat_refresh_project(struct ps_catalog *cat, struct ps_store *store, const char *store_name,
			   const char *project, struct ps_error *err)
{
	struct ps_snapshot_info *v = NULL;
	size_t n = 0;
	int rc = ps_snapshot_list(store, project, &v, &n, err);
	if (rc != PS_OK)
		return rc;
	struct ps_stats st;
	memset(&st, 0, sizeof(st));
	if (n > 0) {
		rc = ps_stats(store, project, &st, err);
		if (rc != PS_OK) {
			free(v);
			return rc;
		}
	} else {
		uint64_t q = 0;
		rc = ps_quota_get(store, project, &q, err);
		if (rc != PS_OK && rc != PS_ENOTFOUND) {
			free(v);
			return rc;
		}
		st.quota_bytes = q;
		st.compressratio = st.dedupratio = 1.0;
	}
	struct ps_cat_store_facts f = PS_CAT_STORE_FACTS_INIT;
	f.quota_bytes = (int64_t)st.quota_bytes;
	f.logical_bytes = (int64_t)st.logical_bytes;
	f.stored_bytes = (int64_t)st.stored_bytes;
	f.compressratio = st.compressratio > 0 ? st.compressratio : 1.0;
	f.dedupratio = st.dedupratio > 0 ? st.dedupratio : 1.0;
	f.snapshots = (int64_t)n;
	f.store = store_name;
	if (n > 0) {
		f.last_snapshot = v[n - 1].name;
		f.last_snapshot_at = v[n - 1].time_ns / 1000;
	} else {
		f.last_snapshot = "";
		f.last_snapshot_at = 0;
	}
	rc = ps_cat_project_set_facts(cat, project, &f, err);
	if (rc == PS_OK && n > 0) {
		struct ps_cat_snapshot s;
		memset(&s, 0, sizeof(s));
		cpy(s.project, sizeof(s.project), project);
		cpy(s.store, sizeof(s.store), store_name ? store_name : "default");
		cpy(s.name, sizeof(s.name), v[n - 1].name);
		s.at = v[n - 1].time_ns / 1000;
		s.logical_bytes = (int64_t)v[n - 1].logical_bytes;
		s.stored_bytes = (int64_t)st.stored_bytes;
		s.files = (int64_t)v[n - 1].files;
		rc = ps_cat_snapshot_set(cat, &s, err);
	}
	free(v);
	return rc;
}
