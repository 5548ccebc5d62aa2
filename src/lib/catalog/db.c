/*
 * db.c - engine-independent part of the SQL layer.
 */
#include "db.h"

#include <string.h>

int ps_db_exec(struct ps_db *db, int64_t *changes, struct ps_error *err, const char *sql,
	       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = db->engine->run(db, sql, fmt ? fmt : "", ap, NULL, NULL, changes, err);
	va_end(ap);
	return rc;
}

int ps_db_query(struct ps_db *db, ps_db_row_fn fn, void *ctx, struct ps_error *err,
		const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = db->engine->run(db, sql, fmt ? fmt : "", ap, fn, ctx, NULL, err);
	va_end(ap);
	return rc;
}

int ps_db_script(struct ps_db *db, const char *sql, struct ps_error *err)
{
	return db->engine->script(db, sql, err);
}

int ps_db_begin(struct ps_db *db, struct ps_error *err)
{
	int rc = db->engine->begin(db, err);
	if (rc == PS_OK)
		db->in_tx = 1;
	return rc;
}

int ps_db_begin_lazy(struct ps_db *db, struct ps_error *err)
{
	int rc = db->engine->begin_lazy(db, err);
	if (rc == PS_OK) {
		db->in_tx = 1;
		db->lazy = 1;
	}
	return rc;
}

static void lazy_done(struct ps_db *db)
{
	if (db->lazy) {
		db->lazy = 0;
		db->engine->lazy_done(db);
	}
}

int ps_db_commit(struct ps_db *db, struct ps_error *err)
{
	db->in_tx = 0;
	int rc = db->engine->script(db, "COMMIT", err);
	lazy_done(db);
	return rc;
}

void ps_db_rollback(struct ps_db *db)
{
	if (!db->in_tx)
		return;
	db->in_tx = 0;
	struct ps_error e;
	(void)db->engine->script(db, "ROLLBACK", &e);
	lazy_done(db);
}

void ps_db_close(struct ps_db *db)
{
	if (db) {
		ps_db_rollback(db);
		db->engine->close(db);
	}
}

int64_t ps_db_int(struct ps_db_row *r, int col) { return r->engine->col_int(r, col); }
double ps_db_double(struct ps_db_row *r, int col) { return r->engine->col_double(r, col); }
const char *ps_db_text(struct ps_db_row *r, int col) { return r->engine->col_text(r, col); }
int ps_db_null(struct ps_db_row *r, int col) { return r->engine->col_null(r, col); }

void ps_db_text_cpy(struct ps_db_row *r, int col, char *buf, size_t len)
{
	const char *s = ps_db_text(r, col);
	size_t n = strlen(s);
	if (len == 0)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(buf, s, n);
	buf[n] = 0;
}
