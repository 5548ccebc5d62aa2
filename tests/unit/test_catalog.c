/*
 * test_catalog.c - the catalog, against every engine: SQLite always, and
 * PostgreSQL when PS_TEST_PG_URL names a server (tests/e2e/t0500 starts one
 * and runs this program against it).  Schema creation and refusal of a newer
 * schema, projects and their cached facts, listing with search and paging,
 * hostile text, leases (conflict, renewal, expiry), locations guarded by the
 * lease, hosts (alive/down), operation requests (host choice, one active
 * open/close/move per project, save coalescing, hand-off, finish), a race
 * of two processes requesting a move of the same project, events, stores,
 * syncs, snapshot summaries and totals; damaged and unreachable catalogs.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "projstore_catalog.h"
#include "catalog/catalog_int.h"

#include <sys/wait.h>
#include <unistd.h>

static struct ps_error E;

static struct ps_catalog *fresh(const char *engine)
{
	struct ps_catalog *cat = NULL;
	char spec[4200];
	static int n;
	if (strcmp(engine, "sqlite") == 0) {
		snprintf(spec, sizeof(spec), "sqlite:%s/cat%d.db", th_tmpdir(NULL), n++);
	} else {
		snprintf(spec, sizeof(spec), "%s", getenv("PS_TEST_PG_URL"));
		/* empty the database first */
		if (ps_catalog_open(&cat, spec, NULL, &E) != PS_OK) {
			diag("%s", E.msg);
			bail_out("cannot open the PostgreSQL catalog");
		}
		if (ps_db_script(cat->db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public", &E)) {
			diag("%s", E.msg);
			bail_out("cannot reset the PostgreSQL database");
		}
		ps_catalog_close(cat);
	}
	if (ps_catalog_open(&cat, spec, NULL, &E) != PS_OK) {
		diag("%s", E.msg);
		bail_out("cannot open a catalog");
	}
	return cat;
}

static void add_host(struct ps_catalog *cat, const char *name, int64_t cap, int beat)
{
	struct ps_cat_host h;
	memset(&h, 0, sizeof(h));
	snprintf(h.name, sizeof(h.name), "%s", name);
	snprintf(h.root, sizeof(h.root), "/srv/%s", name);
	snprintf(h.datacenter, sizeof(h.datacenter), "dc1");
	h.capacity = cap;
	ok(ps_cat_host_add(cat, &h, &E) == PS_OK, "host %s added", name);
	if (beat)
		ok(ps_cat_host_heartbeat(cat, name, &E) == PS_OK, "host %s heartbeat", name);
}

static void test_schema(const char *engine)
{
	struct ps_catalog *cat = fresh(engine);
	is_int(ps_catalog_schema_version(cat), ps_cat_schema_latest(), "%s: schema at latest", engine);
	is_str(ps_catalog_engine(cat), engine, "engine name");
	/* a catalog from the future is refused, not damaged */
	ok(ps_db_exec(cat->db, NULL, &E, "UPDATE schema_version SET version = 999", "") == PS_OK,
	   "pretend a newer schema");
	char spec[4200];
	snprintf(spec, sizeof(spec), "%s", strcmp(engine, "sqlite") == 0 ? cat->name : getenv("PS_TEST_PG_URL"));
	struct ps_catalog *c2 = NULL;
	int rc = ps_catalog_open(&c2, spec, NULL, &E);
	is_int(rc, PS_EINVAL, "newer schema refused");
	ok(strstr(E.msg, "newer") != NULL, "message says so: %s", E.msg);
	ps_db_exec(cat->db, NULL, &E, "UPDATE schema_version SET version = $1", "i",
		   (int64_t)ps_cat_schema_latest());
	ps_catalog_close(cat);
	/* reopening an up-to-date catalog changes nothing */
	ok(ps_catalog_open(&c2, spec, NULL, &E) == PS_OK, "reopen");
	ps_catalog_close(c2);
}

static void test_projects(const char *engine)
{
	struct ps_catalog *cat = fresh(engine);
	struct ps_cat_project p;
	is_int(ps_cat_project_get(cat, "nope", &p, &E), PS_ENOTFOUND, "%s: unknown project", engine);
	is_int(ps_cat_project_get(cat, "../etc", &p, &E), PS_EINVAL, "hostile id refused");
	is_int(ps_cat_project_ensure(cat, "a'; DROP TABLE projects; --", &E), PS_EINVAL,
	       "injection-shaped id refused");
	char id[32];
	for (int i = 0; i < 30; i++) {
		snprintf(id, sizeof(id), "p%02d_%s", i, i % 3 ? "x" : "y");
		if (ps_cat_project_ensure(cat, id, &E) != PS_OK)
			break;
	}
	ok(ps_cat_project_ensure(cat, "p00_y", &E) == PS_OK, "ensure is idempotent");
	struct ps_cat_store_facts f = PS_CAT_STORE_FACTS_INIT;
	f.quota_bytes = 4LL << 30;
	f.logical_bytes = 1000;
	f.stored_bytes = 400;
	f.compressratio = 2.5;
	f.dedupratio = 1.25;
	f.snapshots = 3;
	f.last_snapshot = "2026-11-25T10:00:00.000000Z-aaaaaaaa";
	f.last_snapshot_at = 1700000000000000LL;
	ok(ps_cat_project_set_facts(cat, "p01_x", &f, &E) == PS_OK, "facts set");
	ok(ps_cat_project_get(cat, "p01_x", &p, &E) == PS_OK, "get");
	is_int(p.quota_bytes, 4LL << 30, "quota");
	is_int(p.logical_bytes, 1000, "logical");
	ok(p.compressratio > 2.49 && p.compressratio < 2.51, "compressratio");
	is_str(p.last_snapshot, "2026-11-25T10:00:00.000000Z-aaaaaaaa", "last snapshot");
	is_str(p.status, "stored", "status stored");
	is_int(p.uid, -1, "no uid yet");
	struct ps_cat_store_facts g = PS_CAT_STORE_FACTS_INIT;
	g.logical_bytes = 2000;
	ok(ps_cat_project_set_facts(cat, "p01_x", &g, &E) == PS_OK, "partial facts");
	ps_cat_project_get(cat, "p01_x", &p, &E);
	is_int(p.logical_bytes, 2000, "changed field");
	is_int(p.quota_bytes, 4LL << 30, "other fields kept");
	ok(ps_cat_project_set_facts(cat, "brandnew", &g, &E) == PS_OK, "facts create the row");
	ok(ps_cat_project_save_result(cat, "p01_x", 42, "ok", &E) == PS_OK, "save result");
	is_int(ps_cat_project_save_result(cat, "ghost", 42, "ok", &E), PS_ENOTFOUND, "save result of unknown");
	ok(ps_cat_project_set_flag(cat, "p01_x", "maintenance", 1, &E) == PS_OK, "flag");
	is_int(ps_cat_project_set_flag(cat, "p01_x", "evil", 1, &E), PS_EINVAL, "unknown flag");
	ps_cat_project_get(cat, "p01_x", &p, &E);
	ok(p.maintenance == 1 && p.last_save_at == 42 && !strcmp(p.last_save_result, "ok"), "flag and result");

	struct ps_cat_project *v;
	size_t n;
	struct ps_cat_query q = PS_CAT_QUERY_INIT;
	ok(ps_cat_project_list(cat, &q, &v, &n, &E) == PS_OK, "list all");
	is_int((long long)n, 31, "31 projects");
	ok(n == 31 && !strcmp(v[0].id, "brandnew") && !strcmp(v[30].id, "p29_x"), "ordered by id");
	free(v);
	q.search = "_Y";
	ok(ps_cat_project_list(cat, &q, &v, &n, &E) == PS_OK, "search");
	is_int((long long)n, 10, "search is a case-insensitive substring, '_' literal");
	free(v);
	q.search = "%";
	ps_cat_project_list(cat, &q, &v, &n, &E);
	is_int((long long)n, 0, "'%%' is literal");
	free(v);
	q.search = "' OR 1=1 --";
	ok(ps_cat_project_list(cat, &q, &v, &n, &E) == PS_OK && n == 0, "injection text finds nothing");
	free(v);
	/* paging */
	q.search = NULL;
	q.limit = 7;
	size_t total = 0;
	char after[80] = "";
	for (int page = 0; page < 10; page++) {
		q.after = after;
		if (ps_cat_project_list(cat, &q, &v, &n, &E) != PS_OK)
			break;
		total += n;
		if (n)
			snprintf(after, sizeof(after), "%s", v[n - 1].id);
		free(v);
		if (n < 7)
			break;
	}
	is_int((long long)total, 31, "paging visits every project once");
	int64_t cnt = 0;
	q.limit = 0;
	q.after = NULL;
	q.search = "x";
	ok(ps_cat_project_count(cat, &q, &cnt, &E) == PS_OK && cnt == 20, "count with search (%lld)",
	   (long long)cnt);
	ps_catalog_close(cat);
}

static void test_leases(const char *engine)
{
	struct ps_catalog *cat = fresh(engine);
	is_int(ps_cat_lease_acquire(cat, "p1", "hosta", 1000000, &E), PS_ENOTFOUND, "%s: lease of unknown", engine);
	ps_cat_project_ensure(cat, "p1", &E);
	ok(ps_cat_lease_acquire(cat, "p1", "hosta", 60000000, &E) == PS_OK, "a takes the lease");
	ok(ps_cat_lease_acquire(cat, "p1", "hosta", 60000000, &E) == PS_OK, "a renews it");
	is_int(ps_cat_lease_acquire(cat, "p1", "hostb", 60000000, &E), PS_ELOCKED, "b cannot");
	ok(strstr(E.msg, "hosta") != NULL, "message names the holder: %s", E.msg);
	is_int(ps_cat_project_set_state(cat, "p1", "hostb", "hostb", "deployed", &E), PS_ELOCKED,
	       "b cannot publish a location");
	ok(ps_cat_project_set_state(cat, "p1", "hosta", "hosta", "deployed", &E) == PS_OK,
	   "a publishes its location");
	ok(ps_cat_lease_release(cat, "p1", "hostb", &E) == PS_OK, "b's release is a no-op");
	is_int(ps_cat_lease_acquire(cat, "p1", "hostb", 60000000, &E), PS_ELOCKED, "still a's");
	ok(ps_cat_lease_release(cat, "p1", "hosta", &E) == PS_OK, "a releases");
	ok(ps_cat_lease_acquire(cat, "p1", "hostb", 1, &E) == PS_OK, "b takes it for 1 us");
	usleep(2000);
	ok(ps_cat_lease_acquire(cat, "p1", "hostc", 60000000, &E) == PS_OK, "expired lease taken over");
	is_int(ps_cat_project_set_state(cat, "p1", "hostb", "", "stored", &E), PS_ELOCKED,
	       "the host whose lease expired cannot change the location");
	struct ps_cat_project p;
	ps_cat_project_get(cat, "p1", &p, &E);
	is_str(p.host, "hosta", "location unchanged");
	ps_catalog_close(cat);
}

static void test_hosts(const char *engine)
{
	struct ps_catalog *cat = fresh(engine);
	struct ps_cat_host h, *hs;
	size_t n;
	memset(&h, 0, sizeof(h));
	snprintf(h.name, sizeof(h.name), "bad name");
	snprintf(h.root, sizeof(h.root), "/srv");
	is_int(ps_cat_host_add(cat, &h, &E), PS_EINVAL, "%s: host name with a space refused", engine);
	snprintf(h.name, sizeof(h.name), "ok");
	snprintf(h.root, sizeof(h.root), "relative");
	is_int(ps_cat_host_add(cat, &h, &E), PS_EINVAL, "relative root refused");
	add_host(cat, "h1", 0, 1);
	add_host(cat, "h2", 5, 0);
	ok(ps_cat_host_get(cat, "h1", &h, &E) == PS_OK, "get");
	is_str(h.state, "up", "heartbeat: up");
	ok(ps_cat_host_get(cat, "h2", &h, &E) == PS_OK && !strcmp(h.state, "down"), "never seen: down");
	is_int(ps_cat_host_get(cat, "h3", &h, &E), PS_ENOTFOUND, "unknown host");
	is_int(ps_cat_host_heartbeat(cat, "h3", &E), PS_ENOTFOUND, "heartbeat of unknown host");
	ok(ps_cat_host_set_state(cat, "h1", "draining", &E) == PS_OK, "drain");
	is_int(ps_cat_host_set_state(cat, "h1", "bogus", &E), PS_EINVAL, "bad state");
	ok(ps_cat_host_list(cat, &hs, &n, &E) == PS_OK && n == 2, "list");
	ok(n == 2 && !strcmp(hs[0].state, "draining") && hs[1].capacity == 5, "states and capacity");
	free(hs);
	add_host(cat, "h2", 9, 0);
	ps_cat_host_get(cat, "h2", &h, &E);
	is_int(h.capacity, 9, "re-adding updates");
	ps_catalog_close(cat);
}

static void test_ops(const char *engine)
{
	struct ps_catalog *cat = fresh(engine);
	struct ps_cat_op op, op2;
	struct ps_cat_project p;
	is_int(ps_cat_request(cat, "open", "p1", NULL, "me", &op, &E), PS_EINVAL, "%s: no host up", engine);
	add_host(cat, "h1", 2, 1);
	add_host(cat, "h2", 2, 1);
	add_host(cat, "h3", 2, 0);
	is_int(ps_cat_request(cat, "explode", "p1", NULL, "me", &op, &E), PS_EINVAL, "unknown kind");
	is_int(ps_cat_request(cat, "open", "p1", "nohost", "me", &op, &E), PS_ENOTFOUND, "unknown host");
	ok(ps_cat_request(cat, "open", "p1", "h1", "me", &op, &E) == PS_OK, "open on h1");
	ok(!strcmp(op.state, "pending") && !strcmp(op.host, "h1") && !strcmp(op.kind, "open"), "pending on h1");
	is_str(op.options, "", "%s: no options", engine);
	{
		/* options as requested, kept with the operation */
		struct ps_cat_op o3, o4;
		is_int(ps_cat_request_opts(cat, "open", "p9", "h1", "me", "allow-older", &o3, &E), PS_OK,
		       "%s: open with options", engine);
		is_str(o3.options, "allow-older", "returned with them");
		ok(ps_cat_op_get(cat, o3.id, &o4, &E) == PS_OK && !strcmp(o4.options, "allow-older"),
		   "read back with them");
		is_int(ps_cat_request_opts(cat, "open", "p8", "h1", "me",
					   "x123456789x123456789x123456789x123456789x123456789x123456789x123",
					   &o4, &E),
		       PS_EINVAL, "options too long: %s", E.msg);
		ok(ps_cat_op_finish(cat, o3.id, 0, "test", &E) == PS_OK, "ended");
	}
	is_int(ps_cat_request(cat, "move", "p1", "h2", "me", &op2, &E), PS_ELOCKED, "second request refused");
	ok(strstr(E.msg, "already in progress") != NULL, "says so: %s", E.msg);
	is_int(ps_cat_request(cat, "save", "p1", NULL, "me", &op2, &E), PS_EINVAL, "save of undeployed");
	struct ps_cat_op *ops;
	size_t n;
	ok(ps_cat_ops_for_host(cat, "h1", &ops, &n, &E) == PS_OK && n == 1 && ops[0].id == op.id, "h1 sees it");
	free(ops);
	ok(ps_cat_ops_for_host(cat, "h2", &ops, &n, &E) == PS_OK && n == 0, "h2 does not");
	free(ops);
	/* h1's agent does the work */
	ok(ps_cat_lease_acquire(cat, "p1", "h1", 60000000, &E) == PS_OK, "lease");
	ok(ps_cat_op_progress(cat, op.id, "restoring", 10, 100, &E) == PS_OK, "progress");
	ps_cat_op_get(cat, op.id, &op2, &E);
	ok(!strcmp(op2.state, "running") && op2.bytes_done == 10 && op2.started_at > 0, "running with progress");
	ok(ps_cat_project_set_state(cat, "p1", "h1", "h1", "deployed", &E) == PS_OK, "deployed");
	ok(ps_cat_op_finish(cat, op.id, 1, "deployed on h1", &E) == PS_OK, "finished");
	is_int(ps_cat_op_finish(cat, op.id, 1, "again", &E), PS_ENOTFOUND, "finishing twice refused");
	ps_cat_lease_release(cat, "p1", "h1", &E);
	/* open of a deployed project: done at once */
	ok(ps_cat_request(cat, "open", "p1", NULL, "me", &op, &E) == PS_OK && !strcmp(op.state, "done"),
	   "open of a deployed project is done at once");
	ok(strstr(op.result, "h1") != NULL, "with the location");
	is_int(ps_cat_request(cat, "open", "p1", "h2", "me", &op, &E), PS_EEXISTS, "open elsewhere: use move");
	/* saves coalesce */
	ok(ps_cat_request(cat, "save", "p1", NULL, "me", &op, &E) == PS_OK, "save");
	ok(ps_cat_request(cat, "save", "p1", NULL, "me", &op2, &E) == PS_OK && op2.id == op.id,
	   "a second save request joins the pending one");
	ps_cat_op_finish(cat, op.id, 1, "", &E);
	/* a move: old host first, then hand-off */
	ok(ps_cat_request(cat, "move", "p1", "h2", "me", &op, &E) == PS_OK, "move");
	ok(!strcmp(op.host, "h1") && !strcmp(op.target_host, "h2"), "old host acts first");
	ps_cat_project_get(cat, "p1", &p, &E);
	is_str(p.desired_host, "h2", "desired host");
	is_int(ps_cat_op_handoff(cat, op.id, "h2", "h1", "x", &E), PS_ELOCKED, "hand-off by the wrong host");
	ok(ps_cat_op_handoff(cat, op.id, "h1", "h2", "deploying", &E) == PS_OK, "hand-off");
	ok(ps_cat_ops_for_host(cat, "h2", &ops, &n, &E) == PS_OK && n == 1, "h2 has it now");
	free(ops);
	ok(ps_cat_op_finish(cat, op.id, 0, "restore failed", &E) == PS_OK, "failed");
	ps_cat_op_get(cat, op.id, &op2, &E);
	is_str(op2.state, "failed", "state failed");
	/* a failed operation no longer blocks */
	ok(ps_cat_request(cat, "close", "p1", NULL, "me", &op, &E) == PS_OK, "close after a failure");
	ok(ps_cat_ops_for_project(cat, "p1", 3, &ops, &n, &E) == PS_OK && n == 3 && ops[0].id == op.id,
	   "recent operations, newest first");
	free(ops);
	/* host choice: the one with most room, never a down one */
	ps_cat_project_ensure(cat, "q1", &E);
	ok(ps_cat_request(cat, "open", "q1", NULL, "me", &op, &E) == PS_OK, "open without a host");
	ok(!strcmp(op.host, "h2"), "picked h2 (h1 has a project; h3 is down): %s", op.host);
	ps_cat_host_set_state(cat, "h2", "disabled", &E);
	is_int(ps_cat_request(cat, "move", "p1", "h2", "me", &op2, &E), PS_EINVAL, "a disabled host takes no project");
	ok(strstr(E.msg, "disabled") != NULL, "says so: %s", E.msg);
	is_int(ps_cat_request(cat, "move", "p1", "h3", "me", &op2, &E), PS_ELOCKED, "close still active");
	ps_catalog_close(cat);
}

/* Two processes race to move the same project; exactly one wins each time. */
static void test_race(const char *engine)
{
	struct ps_catalog *cat = fresh(engine);
	add_host(cat, "h1", 0, 1);
	add_host(cat, "h2", 0, 1);
	add_host(cat, "h3", 0, 1);
	char spec[4200];
	snprintf(spec, sizeof(spec), "%s", strcmp(engine, "sqlite") == 0 ? cat->name : getenv("PS_TEST_PG_URL"));
	const int rounds = 30;
	char id[32];
	for (int r = 0; r < rounds; r++) {
		snprintf(id, sizeof(id), "race%d", r);
		ps_cat_project_ensure(cat, id, &E);
		ps_cat_lease_acquire(cat, id, "h1", 60000000, &E);
		ps_cat_project_set_state(cat, id, "h1", "h1", "deployed", &E);
		ps_cat_lease_release(cat, id, "h1", &E);
	}
	int fds[2][2];
	pid_t pids[2];
	for (int k = 0; k < 2; k++) {
		if (pipe(fds[k]) != 0)
			bail_out("pipe");
		pids[k] = fork();
		if (pids[k] == 0) {
			struct ps_catalog *c = NULL;
			struct ps_error e;
			if (ps_catalog_open(&c, spec, NULL, &e) != PS_OK)
				_exit(90);
			char wins[64] = { 0 };
			for (int r = 0; r < rounds; r++) {
				char pid_[32];
				struct ps_cat_op op;
				snprintf(pid_, sizeof(pid_), "race%d", r);
				int rc = ps_cat_request(c, "move", pid_, k ? "h3" : "h2", "racer", &op, &e);
				wins[r] = rc == PS_OK ? 'W' : rc == PS_ELOCKED ? 'L' : 'E';
			}
			ps_catalog_close(c);
			if (write(fds[k][1], wins, (size_t)rounds) != rounds)
				_exit(91);
			_exit(0);
		}
		close(fds[k][1]);
	}
	char res[2][64];
	memset(res, 0, sizeof(res));
	for (int k = 0; k < 2; k++) {
		if (read(fds[k][0], res[k], (size_t)rounds) != rounds)
			res[k][0] = 0;
		close(fds[k][0]);
		int st;
		waitpid(pids[k], &st, 0);
	}
	int one_winner = 1;
	for (int r = 0; r < rounds; r++) {
		if (!((res[0][r] == 'W') ^ (res[1][r] == 'W')) || res[0][r] == 'E' || res[1][r] == 'E')
			one_winner = 0;
	}
	ok(one_winner, "%s: %d racing move pairs, exactly one winner each (%s / %s)", engine, rounds,
	   res[0], res[1]);
	int64_t active = 0;
	struct ps_error e;
	struct arr_ctx { int64_t n; } ac = { 0 };
	(void)ac;
	ps_db_query(cat->db, NULL, NULL, &e, "SELECT 1", "");
	struct ps_cat_totals t;
	ok(ps_cat_totals(cat, &t, &E) == PS_OK, "totals");
	active = t.ops_pending;
	is_int(active, rounds, "one pending operation per project");
	ps_catalog_close(cat);
}

static int64_t one_int_v;
static int one_int_cb(void *ctx, struct ps_db_row *r)
{
	(void)ctx;
	one_int_v = ps_db_int(r, 0);
	return 0;
}

static int64_t one_int(struct ps_catalog *cat, const char *sql)
{
	one_int_v = -1;
	if (ps_db_query(cat->db, one_int_cb, NULL, &E, sql, "") != PS_OK)
		return -2;
	return one_int_v;
}

/* a lazy transaction (ps_db_begin_lazy, migrate's begin) commits and rolls
 * back as any other, and leaves the connection durable as before */
static void test_lazy(const char *engine)
{
	struct ps_catalog *cat = fresh(engine);
	int sq = strcmp(engine, "sqlite") == 0;
	struct ps_cat_where w;
	is_int(ps_db_begin_lazy(cat->db, &E), PS_OK, "%s: a lazy transaction", engine);
	if (!sq)
		is_int(one_int(cat, "SELECT CASE WHEN current_setting('synchronous_commit') = 'off'"
				    " THEN 1 ELSE 0 END"), 1, "%s: asynchronous commit inside it", engine);
	else
		is_int(one_int(cat, "PRAGMA synchronous"), 1, "%s: synchronous=NORMAL inside it", engine);
	ps_db_exec(cat->db, NULL, &E, "INSERT INTO projects (id, updated_at) VALUES ('lz1', 1)", "");
	is_int(ps_db_commit(cat->db, &E), PS_OK, "%s: commits", engine);
	is_int(one_int(cat, "SELECT COUNT(*) FROM projects WHERE id = 'lz1'"), 1, "%s: what it wrote is there",
	       engine);
	is_int(one_int(cat, sq ? "PRAGMA synchronous"
			       : "SELECT CASE WHEN current_setting('synchronous_commit') = 'on' THEN 2 ELSE 0 END"),
	       2, "%s: durable commits again after it", engine);
	is_int(ps_db_begin_lazy(cat->db, &E), PS_OK, "%s: another", engine);
	ps_db_exec(cat->db, NULL, &E, "INSERT INTO projects (id, updated_at) VALUES ('lz2', 1)", "");
	ps_db_rollback(cat->db);
	is_int(one_int(cat, "SELECT COUNT(*) FROM projects WHERE id = 'lz2'"), 0, "%s: rolled back", engine);
	is_int(one_int(cat, sq ? "PRAGMA synchronous"
			       : "SELECT CASE WHEN current_setting('synchronous_commit') = 'on' THEN 2 ELSE 0 END"),
	       2, "%s: durable after a rollback too", engine);
	/* where: one statement, unknown and known projects, the host's root */
	is_int(ps_cat_where(cat, "nobody", &w, &E), PS_OK, "%s: where of an unknown project", engine);
	ok(!strcmp(w.status, "unknown") && !w.host[0] && !w.path[0], "%s: unknown, nowhere", engine);
	is_int(ps_cat_where(cat, "lz1", &w, &E), PS_OK, "%s: where of a stored project", engine);
	ok(!strcmp(w.status, "stored") && !w.host[0] && !w.path[0], "%s: stored, nowhere", engine);
	add_host(cat, "hw", 10, 1);
	ps_db_exec(cat->db, NULL, &E, "UPDATE projects SET host = 'hw', status = 'deployed' WHERE id = 'lz1'", "");
	is_int(ps_cat_where(cat, "lz1", &w, &E), PS_OK, "%s: where of a deployed project", engine);
	ok(!strcmp(w.host, "hw") && !strcmp(w.status, "deployed") && strstr(w.path, "/lz1") &&
	   w.path[0] == '/', "%s: its host and ROOT/ID (%s)", engine, w.path);
	is_int(ps_cat_where(cat, "../x", &w, &E), PS_EINVAL, "%s: a hostile id is refused", engine);
	/* a PostgreSQL database outlives this program: leave it as found */
	ps_db_exec(cat->db, NULL, &E, "DELETE FROM projects WHERE id IN ('lz1', 'lz2')", "");
	ps_db_exec(cat->db, NULL, &E, "DELETE FROM hosts WHERE name = 'hw'", "");
	ps_catalog_close(cat);
}

static void test_misc(const char *engine)
{
	struct ps_catalog *cat = fresh(engine);
	struct ps_cat_event *ev;
	size_t n;
	is_int(ps_cat_event_add(cat, "../x", "k", "me", 0, "d", &E), PS_EINVAL, "%s: event of a hostile id", engine);
	for (int i = 0; i < 5; i++)
		ps_cat_event_add(cat, "p1", i == 3 ? "save-failed" : "saved", "h1", i == 3,
				 "detail with 'quotes' and \"more\" and \\ backslash", &E);
	ok(ps_cat_events(cat, "p1", 3, &ev, &n, &E) == PS_OK && n == 3, "events, limited");
	ok(n == 3 && ev[0].id > ev[1].id && !strcmp(ev[1].kind, "save-failed") && ev[1].error == 1,
	   "newest first, error flag");
	ok(n == 3 && strstr(ev[0].detail, "'quotes'") != NULL, "text kept verbatim");
	free(ev);
	struct ps_cat_store s;
	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "dc1");
	snprintf(s.url, sizeof(s.url), "gluster://g1,g2/vol/ps");
	ok(ps_cat_store_add(cat, &s, &E) == PS_OK, "store added");
	struct ps_cat_store *ss;
	ok(ps_cat_store_list(cat, &ss, &n, &E) == PS_OK && n == 1 && !strcmp(ss[0].url, s.url), "store listed");
	free(ss);
	int64_t sid;
	ok(ps_cat_sync_begin(cat, "dc1", "dc2", &sid, &E) == PS_OK && sid > 0, "sync begun");
	ok(ps_cat_sync_finish(cat, sid, "ok", 1234, 5, 2, &E) == PS_OK, "sync finished");
	struct ps_cat_sync *sy;
	ok(ps_cat_sync_list(cat, "dc1", NULL, 10, &sy, &n, &E) == PS_OK && n == 1 && sy[0].bytes == 1234 &&
	   sy[0].finished_at >= sy[0].started_at, "sync listed");
	free(sy);
	struct ps_cat_snapshot sn;
	memset(&sn, 0, sizeof(sn));
	snprintf(sn.project, sizeof(sn.project), "p1");
	snprintf(sn.store, sizeof(sn.store), "dc1");
	snprintf(sn.name, sizeof(sn.name), "new");
	sn.at = 200;
	ok(ps_cat_snapshot_set(cat, &sn, &E) == PS_OK, "snapshot summary");
	snprintf(sn.name, sizeof(sn.name), "old");
	sn.at = 100;
	ps_cat_snapshot_set(cat, &sn, &E);
	struct ps_cat_snapshot *sv;
	ok(ps_cat_snapshot_list(cat, "p1", &sv, &n, &E) == PS_OK && n == 1 && !strcmp(sv[0].name, "new"),
	   "an older snapshot never replaces the newest");
	free(sv);
	ps_catalog_close(cat);
}

static void test_bad_catalogs(void)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/garbage.db", th_tmpdir(NULL));
	char junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	th_write_file(path, junk, sizeof(junk));
	struct ps_catalog *cat = NULL;
	int rc = ps_catalog_open(&cat, path, NULL, &E);
	ok(rc != PS_OK && cat == NULL, "a file that is not a catalog is refused (%d: %s)", rc, E.msg);
	rc = ps_catalog_open(&cat, "sqlite:", NULL, &E);
	is_int(rc, PS_EINVAL, "empty sqlite path");
	rc = ps_catalog_open(&cat, "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", NULL, &E);
	ok(rc != PS_OK && strstr(E.msg, "cannot connect") != NULL, "unreachable server: %s", E.msg);
	rc = ps_catalog_open(&cat, "postgresql://u:secret@127.0.0.1:1/none?connect_timeout=2", NULL, &E);
	ok(rc != PS_OK && strstr(E.msg, "secret") == NULL, "password never in messages");
	char buf[4200];
	unsetenv("PROJSTORE_CATALOG");
	is_int(ps_catalog_default_spec("gluster://a/v/p", buf, sizeof(buf), &E), PS_ENOTFOUND,
	       "remote store: no default catalog");
	ok(strstr(E.msg, "unsafe") != NULL, "says why: %s", E.msg);
	ok(ps_catalog_default_spec(th_tmpdir(NULL), buf, sizeof(buf), &E) == PS_OK &&
	   strstr(buf, "/catalog.db") != NULL, "local store: catalog.db inside");
	setenv("PROJSTORE_CATALOG", "sqlite:/x.db", 1);
	ok(ps_catalog_default_spec(NULL, buf, sizeof(buf), &E) == PS_OK && !strcmp(buf, "sqlite:/x.db"),
	   "PROJSTORE_CATALOG wins");
	unsetenv("PROJSTORE_CATALOG");
}

int main(void)
{
	const char *engines[2] = { "sqlite", "postgresql" };
	int ne = getenv("PS_TEST_PG_URL") && *getenv("PS_TEST_PG_URL") ? 2 : 1;
	if (ne == 1)
		diag("PS_TEST_PG_URL not set: SQLite only (tests/e2e/t0500 runs PostgreSQL too)");
	for (int i = 0; i < ne; i++) {
		test_schema(engines[i]);
		test_projects(engines[i]);
		test_leases(engines[i]);
		test_hosts(engines[i]);
		test_ops(engines[i]);
		test_race(engines[i]);
		test_misc(engines[i]);
		test_lazy(engines[i]);
	}
	test_bad_catalogs();
	return done_testing();
}
