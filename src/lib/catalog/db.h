/*
 * db.h - the small SQL layer under the catalog: one interface, two engines
 * (SQLite, PostgreSQL).  SQL is written once, with $1..$N parameters (the
 * SQLite engine rewrites them to ?1..?N), portable types (TEXT, BIGINT,
 * INTEGER, DOUBLE PRECISION) and CAST(... AS ...) where a type must be
 * spelled out.  Statements are prepared once per connection and cached.
 *
 * Parameters are given by a format string, one letter per parameter:
 *   i  int64_t     s  const char * (NULL = SQL NULL)     d  double
 */
#ifndef PS_CATALOG_DB_H
#define PS_CATALOG_DB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/util.h"

struct ps_db;
struct ps_db_engine;

/* One result row, valid during the row callback. */
struct ps_db_row {
	const struct ps_db_engine *engine;
	void *res;   /* engine's statement/result */
	int row;     /* row number (PostgreSQL) */
};

typedef int (*ps_db_row_fn)(void *ctx, struct ps_db_row *row);

struct ps_db_engine {
	const char *name;
	/* runs sql; *changes = rows changed (may be NULL); fn per result row */
	int (*run)(struct ps_db *db, const char *sql, const char *fmt, va_list ap,
		   ps_db_row_fn fn, void *ctx, int64_t *changes, struct ps_error *err);
	/* runs several ;-separated statements without parameters */
	int (*script)(struct ps_db *db, const char *sql, struct ps_error *err);
	int (*begin)(struct ps_db *db, struct ps_error *err);
	/* a write transaction whose commit does not wait for the disk (see
	 * ps_db_begin_lazy); lazy_done runs after its COMMIT or ROLLBACK */
	int (*begin_lazy)(struct ps_db *db, struct ps_error *err);
	void (*lazy_done)(struct ps_db *db);
	int64_t (*col_int)(struct ps_db_row *r, int col);
	double (*col_double)(struct ps_db_row *r, int col);
	const char *(*col_text)(struct ps_db_row *r, int col); /* never NULL ("" for NULL) */
	int (*col_null)(struct ps_db_row *r, int col);
	void (*close)(struct ps_db *db);
};

struct ps_db {
	const struct ps_db_engine *engine;
	int in_tx;
	int lazy;    /* the open transaction came from ps_db_begin_lazy */
};

int ps_db_open_sqlite(struct ps_db **out, const char *path, struct ps_error *err);
int ps_db_open_pg(struct ps_db **out, const char *conninfo, struct ps_error *err);

/* Unique-constraint violations come back as PS_EEXISTS. */
int ps_db_exec(struct ps_db *db, int64_t *changes, struct ps_error *err, const char *sql,
	       const char *fmt, ...);
int ps_db_query(struct ps_db *db, ps_db_row_fn fn, void *ctx, struct ps_error *err,
		const char *sql, const char *fmt, ...);
int ps_db_script(struct ps_db *db, const char *sql, struct ps_error *err);
/* A write transaction (SQLite: BEGIN IMMEDIATE). */
int ps_db_begin(struct ps_db *db, struct ps_error *err);
/* A write transaction whose COMMIT returns without waiting for the disk
 * (SQLite: synchronous=NORMAL for it, in WAL mode; PostgreSQL: SET LOCAL
 * synchronous_commit TO OFF). Atomic and consistent like any other: a crash
 * of the process loses nothing, a crash of the machine may lose it, never
 * half of it, and never a transaction committed after it without it (the
 * next ordinary commit makes it durable). Only for what a later durable
 * transaction confirms anyway (migrate's begin, confirmed by its end). */
int ps_db_begin_lazy(struct ps_db *db, struct ps_error *err);
int ps_db_commit(struct ps_db *db, struct ps_error *err);
void ps_db_rollback(struct ps_db *db);
void ps_db_close(struct ps_db *db);

int64_t ps_db_int(struct ps_db_row *r, int col);
double ps_db_double(struct ps_db_row *r, int col);
const char *ps_db_text(struct ps_db_row *r, int col);   /* never NULL */
int ps_db_null(struct ps_db_row *r, int col);
/* copies column text into a fixed buffer (truncating) */
void ps_db_text_cpy(struct ps_db_row *r, int col, char *buf, size_t len);

#endif
