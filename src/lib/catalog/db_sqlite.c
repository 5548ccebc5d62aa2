/*
 * db_sqlite.c - the SQLite engine of the catalog's SQL layer.
 *
 * WAL journal, a busy timeout so that several processes (agents, commands,
 * the server) share one file, BEGIN IMMEDIATE for write transactions so that
 * two writers never deadlock on a lock upgrade.  Statements are prepared once
 * and kept in a small cache keyed by their text.
 */
#include "db.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#define STMT_CACHE 64

struct stmt_ent {
	char *sql;            /* the caller's text ($N form) */
	sqlite3_stmt *stmt;
	uint64_t last_use;
};

struct db_sqlite {
	struct ps_db base;
	sqlite3 *h;
	char *path;
	struct stmt_ent cache[STMT_CACHE];
	uint64_t clock;
};

static int sq_err(struct db_sqlite *d, struct ps_error *err, int rc, const char *what)
{
	int ext = sqlite3_extended_errcode(d->h);
	if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		return ps_err(err, PS_EEXISTS, "catalog %s: %s", d->path, sqlite3_errmsg(d->h));
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return ps_err(err, PS_ELOCKED, "catalog %s busy (%s): %s", d->path, what,
			      sqlite3_errmsg(d->h));
	if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
		return ps_err(err, PS_ECORRUPT, "catalog %s is damaged or not a catalog: %s", d->path,
			      sqlite3_errmsg(d->h));
	return ps_err(err, PS_ERROR, "catalog %s: %s: %s", d->path, what, sqlite3_errmsg(d->h));
}

/* "$12" -> "?12" outside string literals */
static char *rewrite_params(const char *sql)
{
	char *out = ps_strdup(sql);
	if (!out)
		return NULL;
	int quoted = 0;
	for (char *p = out; *p; p++) {
		if (*p == '\'')
			quoted = !quoted;
		else if (!quoted && *p == '$' && p[1] >= '0' && p[1] <= '9')
			*p = '?';
	}
	return out;
}

static int get_stmt(struct db_sqlite *d, const char *sql, sqlite3_stmt **out, struct ps_error *err)
{
	struct stmt_ent *victim = &d->cache[0];
	d->clock++;
	for (int i = 0; i < STMT_CACHE; i++) {
		struct stmt_ent *e = &d->cache[i];
		if (e->sql && strcmp(e->sql, sql) == 0) {
			e->last_use = d->clock;
			*out = e->stmt;
			return PS_OK;
		}
		if (!e->sql || (victim->sql && e->last_use < victim->last_use))
			victim = e;
	}
	char *text = rewrite_params(sql);
	char *key = ps_strdup(sql);
	if (!text || !key) {
		free(text);
		free(key);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v3(d->h, text, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	free(text);
	if (rc != SQLITE_OK) {
		free(key);
		return sq_err(d, err, rc, "prepare");
	}
	if (victim->sql) {
		sqlite3_finalize(victim->stmt);
		free(victim->sql);
	}
	victim->sql = key;
	victim->stmt = st;
	victim->last_use = d->clock;
	*out = st;
	return PS_OK;
}

static int sq_run(struct ps_db *db, const char *sql, const char *fmt, va_list ap, ps_db_row_fn fn,
		  void *ctx, int64_t *changes, struct ps_error *err)
{
	struct db_sqlite *d = (struct db_sqlite *)db;
	sqlite3_stmt *st = NULL;
	int rc = get_stmt(d, sql, &st, err);
	if (rc != PS_OK)
		return rc;
	int n = (int)strlen(fmt);
	for (int i = 0; i < n; i++) {
		int brc = SQLITE_OK;
		switch (fmt[i]) {
		case 'i': brc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
		case 'd': brc = sqlite3_bind_double(st, i + 1, va_arg(ap, double)); break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			brc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT)
				: sqlite3_bind_null(st, i + 1);
			break;
		}
		default:
			sqlite3_reset(st);
			return ps_err(err, PS_EINVAL, "bad parameter format '%c'", fmt[i]);
		}
		if (brc != SQLITE_OK) {
			rc = sq_err(d, err, brc, "bind");
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return rc;
		}
	}
	struct ps_db_row row = { db->engine, st, 0 };
	int result = PS_OK;
	for (;;) {
		int s = sqlite3_step(st);
		if (s == SQLITE_ROW) {
			if (fn && result == PS_OK) {
				int frc = fn(ctx, &row);
				if (frc != 0)
					result = frc;
			}
			row.row++;
			continue;
		}
		if (s != SQLITE_DONE)
			result = sq_err(d, err, s, "query");
		break;
	}
	if (changes)
		*changes = sqlite3_changes64(d->h);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return result;
}

static int sq_script(struct ps_db *db, const char *sql, struct ps_error *err)
{
	struct db_sqlite *d = (struct db_sqlite *)db;
	char *msg = NULL;
	int rc = sqlite3_exec(d->h, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		int code = sq_err(d, err, rc, "exec");
		sqlite3_free(msg);
		return code;
	}
	return PS_OK;
}

static int sq_begin(struct ps_db *db, struct ps_error *err)
{
	return sq_script(db, "BEGIN IMMEDIATE", err);
}

/* synchronous can only change outside a transaction: NORMAL for this one
 * (in WAL mode its commit is not synced; the next FULL commit syncs the WAL
 * up to and including it), FULL again after it */
static int sq_begin_lazy(struct ps_db *db, struct ps_error *err)
{
	int rc = sq_script(db, "PRAGMA synchronous=NORMAL", err);
	if (rc == PS_OK) {
		rc = sq_script(db, "BEGIN IMMEDIATE", err);
		if (rc != PS_OK) {
			struct ps_error e;
			sq_script(db, "PRAGMA synchronous=FULL", &e);
		}
	}
	return rc;
}

static void sq_lazy_done(struct ps_db *db)
{
	struct ps_error e;
	sq_script(db, "PRAGMA synchronous=FULL", &e);
}

static int64_t sq_int(struct ps_db_row *r, int c) { return sqlite3_column_int64(r->res, c); }
static double sq_double(struct ps_db_row *r, int c) { return sqlite3_column_double(r->res, c); }
static int sq_null(struct ps_db_row *r, int c)
{
	return sqlite3_column_type(r->res, c) == SQLITE_NULL;
}
static const char *sq_text(struct ps_db_row *r, int c)
{
	const unsigned char *s = sqlite3_column_text(r->res, c);
	return s ? (const char *)s : "";
}

static void sq_close(struct ps_db *db)
{
	struct db_sqlite *d = (struct db_sqlite *)db;
	for (int i = 0; i < STMT_CACHE; i++) {
		if (d->cache[i].sql) {
			sqlite3_finalize(d->cache[i].stmt);
			free(d->cache[i].sql);
		}
	}
	sqlite3_close_v2(d->h);
	free(d->path);
	free(d);
}

static const struct ps_db_engine sqlite_engine = {
	"sqlite", sq_run, sq_script, sq_begin, sq_begin_lazy, sq_lazy_done, sq_int, sq_double, sq_text,
	sq_null, sq_close,
};

/* SQLite's allocation statistics take a process-wide mutex on every
 * malloc; with one connection per thread (the server's workers) they are
 * the only thing the threads would contend for.  Must precede any other
 * SQLite call in the process. */
static void sqlite_setup(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int ps_db_open_sqlite(struct ps_db **out, const char *path, struct ps_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, sqlite_setup);
	struct db_sqlite *d = ps_calloc(1, sizeof(*d));
	if (!d || !(d->path = ps_strdup(path))) {
		free(d);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	d->base.engine = &sqlite_engine;
	int rc = sqlite3_open_v2(path, &d->h,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		int code = ps_err(err, PS_ERROR, "cannot open catalog %s: %s", path,
				  d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc));
		sqlite3_close_v2(d->h);
		free(d->path);
		free(d);
		return code;
	}
	sqlite3_extended_result_codes(d->h, 1);
	sqlite3_busy_timeout(d->h, 30000);
	/* WAL: readers never block the writer; synchronous=FULL: a committed
	 * transaction survives a power cut; mmap: pages are read from the
	 * mapping, not with a pread each (the catalog is never on a network
	 * filesystem). */
	rc = sq_script(&d->base, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
				 "PRAGMA foreign_keys=ON; PRAGMA mmap_size=268435456;", err);
	if (rc != PS_OK) {
		sq_close(&d->base);
		return rc;
	}
	*out = &d->base;
	return PS_OK;
}
