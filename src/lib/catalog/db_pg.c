/*
 * db_pg.c - the PostgreSQL engine of the catalog's SQL layer (libpq).
 *
 * Parameters travel as text and PostgreSQL infers their types from the
 * statement; every statement is prepared once per connection (named by its
 * position in a small cache) and run with PQexecPrepared, so a lookup costs
 * one round trip.  A lost connection is re-established once per call.
 *
 * libpq (and the Kerberos, LDAP and TLS libraries it pulls in) is loaded with
 * dlopen() the first time a PostgreSQL catalog is opened: every other command
 * starts without paying for it (process start-up is most of the cost of a
 * short command such as `projstore where`).
 */
#include "db.h"

#include <libpq-fe.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------ libpq, loaded on first use */

static struct {
	PGconn *(*connectdbParams)(const char *const *, const char *const *, int);
	ConnStatusType (*status)(const PGconn *);
	char *(*errorMessage)(const PGconn *);
	void (*finish)(PGconn *);
	void (*reset)(PGconn *);
	PGresult *(*exec)(PGconn *, const char *);
	PGresult *(*prepare)(PGconn *, const char *, const char *, int, const Oid *);
	PGresult *(*execParams)(PGconn *, const char *, int, const Oid *, const char *const *,
				const int *, const int *, int);
	PGresult *(*execPrepared)(PGconn *, const char *, int, const char *const *, const int *,
				  const int *, int);
	ExecStatusType (*resultStatus)(const PGresult *);
	char *(*resultErrorField)(const PGresult *, int);
	char *(*resultErrorMessage)(const PGresult *);
	void (*clear)(PGresult *);
	int (*ntuples)(const PGresult *);
	char *(*getvalue)(const PGresult *, int, int);
	int (*getisnull)(const PGresult *, int, int);
	char *(*cmdTuples)(PGresult *);
	PQnoticeProcessor (*setNoticeProcessor)(PGconn *, PQnoticeProcessor, void *);
} pq;
static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static char pq_error[256];

#define PQ_SYM(field, name)                                                        \
	do {                                                                       \
		*(void **)(&pq.field) = dlsym(h, name);                            \
		if (!pq.field) {                                                   \
			snprintf(pq_error, sizeof(pq_error), "libpq lacks %s", name); \
			return;                                                    \
		}                                                                  \
	} while (0)

static void pq_load(void)
{
	void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(pq_error, sizeof(pq_error),
			 "PostgreSQL client library not found (install libpq5): %s", dlerror());
		return;
	}
	PQ_SYM(connectdbParams, "PQconnectdbParams");
	PQ_SYM(status, "PQstatus");
	PQ_SYM(errorMessage, "PQerrorMessage");
	PQ_SYM(finish, "PQfinish");
	PQ_SYM(reset, "PQreset");
	PQ_SYM(exec, "PQexec");
	PQ_SYM(prepare, "PQprepare");
	PQ_SYM(execParams, "PQexecParams");
	PQ_SYM(execPrepared, "PQexecPrepared");
	PQ_SYM(resultStatus, "PQresultStatus");
	PQ_SYM(resultErrorField, "PQresultErrorField");
	PQ_SYM(resultErrorMessage, "PQresultErrorMessage");
	PQ_SYM(clear, "PQclear");
	PQ_SYM(ntuples, "PQntuples");
	PQ_SYM(getvalue, "PQgetvalue");
	PQ_SYM(getisnull, "PQgetisnull");
	PQ_SYM(cmdTuples, "PQcmdTuples");
	PQ_SYM(setNoticeProcessor, "PQsetNoticeProcessor");
}

#define PQconnectdbParams pq.connectdbParams
#define PQstatus pq.status
#define PQerrorMessage pq.errorMessage
#define PQfinish pq.finish
#define PQreset pq.reset
#define PQexec pq.exec
#define PQprepare pq.prepare
#define PQexecParams pq.execParams
#define PQexecPrepared pq.execPrepared
#define PQresultStatus pq.resultStatus
#define PQresultErrorField pq.resultErrorField
#define PQresultErrorMessage pq.resultErrorMessage
#define PQclear pq.clear
#define PQntuples pq.ntuples
#define PQgetvalue pq.getvalue
#define PQgetisnull pq.getisnull
#define PQcmdTuples pq.cmdTuples
#define PQsetNoticeProcessor pq.setNoticeProcessor

#define STMT_CACHE 128
#define MAX_PARAMS 32

/* A statement is prepared the second time it is run: a one-shot command
 * (where, projects) then costs one round trip per query (PQexecParams parses,
 * binds and runs at once) instead of two, and long-lived processes (agent,
 * server) still parse each statement once per connection. */
struct pstmt {
	char *sql;
	uint64_t last_use;
	int prepared;
};

struct db_pg {
	struct ps_db base;
	PGconn *c;
	char *conninfo;
	struct pstmt cache[STMT_CACHE];
	uint64_t clock;
};

/* libpq messages span lines; ours are one line */
static void one_line(char *m)
{
	size_t l = strlen(m);
	while (l && (m[l - 1] == '\n' || m[l - 1] == ' '))
		m[--l] = 0;
	for (char *p = m; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

static int pg_err_res(struct db_pg *d, PGresult *res, struct ps_error *err, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(d->c);
	char m[600];
	snprintf(m, sizeof(m), "%s", msg && *msg ? msg : PQerrorMessage(d->c));
	one_line(m);
	if (state && strcmp(state, "23505") == 0)
		return ps_err(err, PS_EEXISTS, "catalog: %s", m);
	if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
		      strcmp(state, "55P03") == 0))
		return ps_err(err, PS_ELOCKED, "catalog busy (%s): %s", what, m);
	return ps_err(err, PS_ERROR, "catalog (postgresql) %s: %s", what, m);
}

static void forget_prepared(struct db_pg *d)
{
	for (int i = 0; i < STMT_CACHE; i++) {
		free(d->cache[i].sql);
		d->cache[i].sql = NULL;
	}
}

/* Reconnects when the connection dropped (outside a transaction only). */
static int ensure_conn(struct db_pg *d, struct ps_error *err)
{
	if (PQstatus(d->c) == CONNECTION_OK)
		return PS_OK;
	if (d->base.in_tx)
		return ps_err(err, PS_ERROR, "catalog (postgresql): connection lost in a transaction");
	PQreset(d->c);
	forget_prepared(d);
	if (PQstatus(d->c) != CONNECTION_OK)
		return ps_err(err, PS_ERROR, "catalog (postgresql): cannot reconnect: %s",
			      PQerrorMessage(d->c));
	return PS_OK;
}

/* Looks sql up in the statement cache.  name gets the prepared statement's
 * name, or "" the first time sql is seen (run it unprepared). */
static int get_stmt(struct db_pg *d, const char *sql, int nparams, char *name, size_t nlen,
		    struct ps_error *err)
{
	int victim = 0, i;
	d->clock++;
	name[0] = 0;
	for (i = 0; i < STMT_CACHE; i++) {
		if (d->cache[i].sql && strcmp(d->cache[i].sql, sql) == 0)
			break;
		if (!d->cache[i].sql ||
		    (d->cache[victim].sql && d->cache[i].last_use < d->cache[victim].last_use))
			victim = i;
	}
	if (i < STMT_CACHE) {
		d->cache[i].last_use = d->clock;
		snprintf(name, nlen, "ps%d", i);
		if (d->cache[i].prepared)
			return PS_OK;
		PGresult *r = PQprepare(d->c, name, sql, nparams, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			int rc = pg_err_res(d, r, err, "prepare");
			PQclear(r);
			name[0] = 0;
			return rc;
		}
		PQclear(r);
		d->cache[i].prepared = 1;
		return PS_OK;
	}
	if (d->cache[victim].sql) {
		if (d->cache[victim].prepared) {
			char dealloc[64];
			snprintf(dealloc, sizeof(dealloc), "DEALLOCATE ps%d", victim);
			PGresult *r = PQexec(d->c, dealloc);
			PQclear(r);
		}
		free(d->cache[victim].sql);
		d->cache[victim].sql = NULL;
	}
	d->cache[victim].sql = ps_strdup(sql);
	if (!d->cache[victim].sql)
		return ps_err(err, PS_ERROR, "out of memory");
	d->cache[victim].prepared = 0;
	d->cache[victim].last_use = d->clock;
	return PS_OK;
}

static int pg_run(struct ps_db *db, const char *sql, const char *fmt, va_list ap, ps_db_row_fn fn,
		  void *ctx, int64_t *changes, struct ps_error *err)
{
	struct db_pg *d = (struct db_pg *)db;
	int n = (int)strlen(fmt);
	if (n > MAX_PARAMS)
		return ps_err(err, PS_EINVAL, "too many parameters");
	char bufs[MAX_PARAMS][40];
	const char *vals[MAX_PARAMS];
	for (int i = 0; i < n; i++) {
		switch (fmt[i]) {
		case 'i':
			snprintf(bufs[i], sizeof(bufs[i]), "%" PRId64, va_arg(ap, int64_t));
			vals[i] = bufs[i];
			break;
		case 'd':
			snprintf(bufs[i], sizeof(bufs[i]), "%.17g", va_arg(ap, double));
			vals[i] = bufs[i];
			break;
		case 's': vals[i] = va_arg(ap, const char *); break;
		default: return ps_err(err, PS_EINVAL, "bad parameter format '%c'", fmt[i]);
		}
	}
	int rc = ensure_conn(d, err);
	if (rc != PS_OK)
		return rc;
	char name[32];
	rc = get_stmt(d, sql, n, name, sizeof(name), err);
	if (rc != PS_OK)
		return rc;
	PGresult *res = name[0] ? PQexecPrepared(d->c, name, n, vals, NULL, NULL, 0)
				: PQexecParams(d->c, sql, n, NULL, vals, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = pg_err_res(d, res, err, "query");
		PQclear(res);
		return rc;
	}
	int result = PS_OK;
	if (fn && st == PGRES_TUPLES_OK) {
		struct ps_db_row row = { db->engine, res, 0 };
		int rows = PQntuples(res);
		for (int i = 0; i < rows && result == PS_OK; i++) {
			row.row = i;
			int frc = fn(ctx, &row);
			if (frc != 0)
				result = frc;
		}
	}
	if (changes) {
		const char *t = PQcmdTuples(res);
		*changes = t && *t ? strtoll(t, NULL, 10) : 0;
	}
	PQclear(res);
	return result;
}

static int pg_script(struct ps_db *db, const char *sql, struct ps_error *err)
{
	struct db_pg *d = (struct db_pg *)db;
	int rc = ensure_conn(d, err);
	if (rc != PS_OK)
		return rc;
	PGresult *res = PQexec(d->c, sql);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = pg_err_res(d, res, err, "exec");
		PQclear(res);
		return rc;
	}
	PQclear(res);
	return PS_OK;
}

static int pg_begin(struct ps_db *db, struct ps_error *err) { return pg_script(db, "BEGIN", err); }

/* asynchronous commit for this transaction only (SET LOCAL ends with it) */
static int pg_begin_lazy(struct ps_db *db, struct ps_error *err)
{
	int rc = pg_script(db, "BEGIN; SET LOCAL synchronous_commit TO OFF", err);
	if (rc != PS_OK) {
		struct ps_error e;
		pg_script(db, "ROLLBACK", &e);
	}
	return rc;
}

static void pg_lazy_done(struct ps_db *db) { (void)db; }

static int64_t pg_int(struct ps_db_row *r, int c)
{
	const char *s = PQgetvalue(r->res, r->row, c);
	return s ? strtoll(s, NULL, 10) : 0;
}
static double pg_double(struct ps_db_row *r, int c)
{
	const char *s = PQgetvalue(r->res, r->row, c);
	return s ? strtod(s, NULL) : 0.0;
}
static const char *pg_text(struct ps_db_row *r, int c)
{
	const char *s = PQgetvalue(r->res, r->row, c);
	return s ? s : "";
}
static int pg_null(struct ps_db_row *r, int c) { return PQgetisnull(r->res, r->row, c); }

static void pg_close(struct ps_db *db)
{
	struct db_pg *d = (struct db_pg *)db;
	forget_prepared(d);
	PQfinish(d->c);
	free(d->conninfo);
	free(d);
}

static const struct ps_db_engine pg_engine = {
	"postgresql", pg_run, pg_script, pg_begin, pg_begin_lazy, pg_lazy_done, pg_int, pg_double,
	pg_text, pg_null, pg_close,
};

static void pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* NOTICEs (e.g. "relation exists, skipping") are not errors */
}

int ps_db_open_pg(struct ps_db **out, const char *conninfo, struct ps_error *err)
{
	pthread_once(&pq_once, pq_load);
	if (pq_error[0])
		return ps_err(err, PS_ERROR, "cannot use a PostgreSQL catalog: %s", pq_error);
	struct db_pg *d = ps_calloc(1, sizeof(*d));
	if (!d || !(d->conninfo = ps_strdup(conninfo))) {
		free(d);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	d->base.engine = &pg_engine;
	/* the server's notices are not errors: not even sent (the caller's own
	 * options, later in the list, win); the name shows in pg_stat_activity */
	static const char *const keys[] = { "options", "fallback_application_name", "dbname", NULL };
	const char *const vals[] = { "-c client_min_messages=warning", "projstore", conninfo, NULL };
	d->c = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(d->c) != CONNECTION_OK) {
		char m[600];
		snprintf(m, sizeof(m), "%s", PQerrorMessage(d->c));
		one_line(m);
		pg_close(&d->base);
		return ps_err(err, PS_ERROR, "cannot connect to the catalog (postgresql): %s", m);
	}
	PQsetNoticeProcessor(d->c, pg_notice, NULL);
	*out = &d->base;
	return PS_OK;
}
