/*
 * test_catalog_migrate.c - the catalog's side of `projstore migrate`
 * (catalog_migrate.c): begin takes the lease and sets maintenance in one
 * transaction, or refuses a deployed, busy, leased or requested project
 * without changing anything; end records facts, snapshot summary, result,
 * event, clears maintenance, sets migrated and releases the lease; fail
 * records the reason and keeps or clears maintenance. SQLite, and
 * PostgreSQL when PS_TEST_PG_URL names a server.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "projstore_catalog.h"
#include "catalog/catalog_int.h"

static struct ps_error E;

static struct ps_catalog *fresh(const char *engine)
{
	struct ps_catalog *cat = NULL;
	char spec[4200];
	static int n;
	if (strcmp(engine, "sqlite") == 0) {
		snprintf(spec, sizeof(spec), "sqlite:%s/mig%d.db", th_tmpdir(NULL), n++);
	} else {
		snprintf(spec, sizeof(spec), "%s", getenv("PS_TEST_PG_URL"));
		if (ps_catalog_open(&cat, spec, NULL, &E) != PS_OK ||
		    ps_db_script(cat->db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public", &E)) {
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

static struct ps_cat_project get(struct ps_catalog *cat, const char *id)
{
	struct ps_cat_project p;
	memset(&p, 0, sizeof(p));
	if (ps_cat_project_get(cat, id, &p, &E) != PS_OK)
		diag("get %s: %s", id, E.msg);
	return p;
}

static int count_events(struct ps_catalog *cat, const char *id, const char *kind, int *error)
{
	struct ps_cat_event *v = NULL;
	size_t n = 0;
	int c = 0;
	if (ps_cat_events(cat, id, 0, &v, &n, &E) != PS_OK)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].kind, kind)) {
			c++;
			if (error)
				*error = v[i].error;
		}
	free(v);
	return c;
}

static void run(const char *engine)
{
	struct ps_catalog *cat = fresh(engine);
	struct ps_cat_project before, p;
	struct ps_cat_store_facts f = PS_CAT_STORE_FACTS_INIT;
	struct ps_cat_import im;
	struct ps_cat_snapshot *sv = NULL;
	struct ps_cat_op op;
	struct ps_cat_host h;
	size_t ns = 0;
	int64_t hour = 3600LL * 1000000;
	int err = -1;

	diag("engine %s", engine);
	/* begin on a project the catalog does not know */
	is_int(ps_cat_migrate_begin(cat, "p1", "migrate.h", hour, &before, &E), PS_OK,
	       "%s: begin on a new project", engine);
	ok(!before.maintenance && !before.migrated && !strcmp(before.status, "stored"),
	   "%s: before: a fresh row", engine);
	p = get(cat, "p1");
	ok(p.maintenance && !strcmp(p.lease_owner, "migrate.h") && p.lease_expires > ps_cat_now(),
	   "%s: in maintenance and leased", engine);
	is_int(ps_cat_request(cat, "open", "p1", "", "u", &op, &E), PS_ELOCKED,
	       "%s: open is refused meanwhile", engine);
	is_int(ps_cat_migrate_begin(cat, "p1", "migrate.h", hour, &before, &E), PS_OK,
	       "%s: the same owner begins again (a rerun after a kill)", engine);
	ok(before.maintenance, "%s: before says it was in maintenance", engine);
	is_int(ps_cat_migrate_begin(cat, "p1", "migrate.other", hour, NULL, &E), PS_ELOCKED,
	       "%s: another owner is refused", engine);
	ok(strstr(E.msg, "leased by 'migrate.h'") != NULL, "%s: the message names the holder: %s",
	   engine, E.msg);

	/* end */
	f.quota_bytes = 4096;
	f.logical_bytes = 5000;
	f.stored_bytes = 3000;
	f.compressratio = 1.5;
	f.dedupratio = 1.1;
	f.snapshots = 1;
	f.last_snapshot = "2026-01-01T00:00:00.000000Z-00000001";
	f.last_snapshot_at = 1767225600000000LL;
	memset(&im, 0, sizeof(im));
	im.facts = &f;
	im.files = 7;
	im.result = "over quota";
	im.event_kind = "migrated";
	im.event_detail = "from 'p1' as 2026-01-01T00:00:00.000000Z-00000001";
	im.actor = "root";
	is_int(ps_cat_migrate_end(cat, "p1", "migrate.h", &im, &E), PS_OK, "%s: end", engine);
	p = get(cat, "p1");
	ok(!p.maintenance && p.migrated && !p.lease_owner[0] && p.lease_expires == 0,
	   "%s: out of maintenance, migrated, lease released", engine);
	ok(p.quota_bytes == 4096 && p.logical_bytes == 5000 && p.stored_bytes == 3000 &&
	   p.snapshots == 1 && !strcmp(p.last_snapshot, f.last_snapshot) &&
	   !strcmp(p.last_save_result, "over quota") && p.last_save_at > 0,
	   "%s: facts and result recorded", engine);
	ok(ps_cat_snapshot_list(cat, "p1", &sv, &ns, &E) == PS_OK && ns == 1 && sv[0].files == 7 &&
	   sv[0].stored_bytes == 3000, "%s: snapshot summary with files and stored bytes", engine);
	free(sv);
	is_int(count_events(cat, "p1", "migrated", &err), 1, "%s: one migrated event", engine);
	is_int(err, 0, "%s: not an error", engine);
	memset(&h, 0, sizeof(h));
	snprintf(h.name, sizeof(h.name), "h1");
	snprintf(h.root, sizeof(h.root), "/srv/h1");
	ok(ps_cat_host_add(cat, &h, &E) == PS_OK && ps_cat_host_heartbeat(cat, "h1", &E) == PS_OK,
	   "%s: host h1 up", engine);
	is_int(ps_cat_request(cat, "open", "p1", "", "u", &op, &E), PS_OK,
	       "%s: open is accepted again", engine);

	/* refusals change nothing */
	is_int(ps_cat_migrate_begin(cat, "p1", "migrate.h", hour, NULL, &E), PS_ELOCKED,
	       "%s: a pending open is refused", engine);
	ok(strstr(E.msg, "(open) is pending") != NULL, "%s: %s", engine, E.msg);
	p = get(cat, "p1");
	ok(!p.maintenance && !p.lease_owner[0], "%s: nothing changed", engine);

	ps_cat_project_ensure(cat, "p2", &E);
	ok(ps_cat_lease_acquire(cat, "p2", "h1", hour, &E) == PS_OK &&
	   ps_cat_project_set_state(cat, "p2", "h1", "h1", "deployed", &E) == PS_OK &&
	   ps_cat_lease_release(cat, "p2", "h1", &E) == PS_OK, "%s: p2 deployed on h1", engine);
	is_int(ps_cat_migrate_begin(cat, "p2", "migrate.h", hour, NULL, &E), PS_ELOCKED,
	       "%s: a deployed project is refused", engine);
	ok(strstr(E.msg, "deployed on host 'h1'") != NULL, "%s: %s", engine, E.msg);
	ps_cat_project_ensure(cat, "p3", &E);
	ok(ps_cat_lease_acquire(cat, "p3", "h1", hour, &E) == PS_OK &&
	   ps_cat_project_set_state(cat, "p3", "h1", "", "deploying", &E) == PS_OK,
	   "%s: p3 being deployed", engine);
	is_int(ps_cat_migrate_begin(cat, "p3", "migrate.h", hour, NULL, &E), PS_ELOCKED,
	       "%s: a project that is not stored is refused", engine);
	ok(strstr(E.msg, "status is 'deploying'") != NULL, "%s: %s", engine, E.msg);

	/* fail */
	is_int(ps_cat_migrate_begin(cat, "p4", "migrate.h", hour, NULL, &E), PS_OK, "%s: begin p4",
	       engine);
	is_int(ps_cat_migrate_fail(cat, "p4", "migrate.h", "root", "cannot open", 0, &E), PS_OK,
	       "%s: fail before anything was published", engine);
	p = get(cat, "p4");
	ok(!p.maintenance && !p.lease_owner[0] && !p.migrated, "%s: maintenance cleared, lease released",
	   engine);
	is_int(count_events(cat, "p4", "migrate-failed", &err), 1, "%s: a migrate-failed event", engine);
	is_int(err, 1, "%s: an error", engine);
	is_int(ps_cat_migrate_begin(cat, "p5", "migrate.h", hour, NULL, &E), PS_OK, "%s: begin p5",
	       engine);
	is_int(ps_cat_migrate_fail(cat, "p5", "migrate.h", "root", "catalog", 1, &E), PS_OK,
	       "%s: fail after a snapshot was published", engine);
	p = get(cat, "p5");
	ok(p.maintenance && !p.lease_owner[0], "%s: maintenance kept, lease released", engine);
	is_int(ps_cat_migrate_fail(cat, "p5", "migrate.other", "root", "x", 0, &E), PS_OK,
	       "%s: fail by an owner without the lease", engine);
	p = get(cat, "p5");
	ok(p.maintenance, "%s: does not clear someone else's maintenance", engine);

	/* several ends in one transaction (migrate's group commit): all or none */
	{
		const char *two[2] = { "p7", "p8" }, *bad[2] = { "p9", "Bad Id" };
		struct ps_cat_import ims[2];
		ims[0] = im;
		ims[1] = im;
		ok(ps_cat_migrate_begin(cat, "p7", "migrate.h", hour, NULL, &E) == PS_OK &&
		   ps_cat_migrate_begin(cat, "p8", "migrate.h", hour, NULL, &E) == PS_OK &&
		   ps_cat_migrate_begin(cat, "p9", "migrate.h", hour, NULL, &E) == PS_OK,
		   "%s: begin p7, p8, p9", engine);
		is_int(ps_cat_migrate_end_many(cat, 2, two, "migrate.h", ims, &E), PS_OK,
		       "%s: p7 and p8 end together", engine);
		p = get(cat, "p7");
		ok(!p.maintenance && p.migrated && !p.lease_owner[0], "%s: p7 migrated", engine);
		p = get(cat, "p8");
		ok(!p.maintenance && p.migrated && p.snapshots == 1, "%s: p8 migrated", engine);
		is_int(count_events(cat, "p8", "migrated", &err), 1, "%s: p8's event", engine);
		is_int(ps_cat_migrate_end_many(cat, 2, bad, "migrate.h", ims, &E), PS_EINVAL,
		       "%s: one invalid id refuses the whole batch", engine);
		p = get(cat, "p9");
		ok(p.maintenance && !p.migrated, "%s: p9 unchanged", engine);
	}

	/* bad arguments */
	is_int(ps_cat_migrate_begin(cat, "Bad Id", "migrate.h", hour, NULL, &E), PS_EINVAL,
	       "%s: invalid project id", engine);
	is_int(ps_cat_migrate_begin(cat, "p6", "migrate@h", hour, NULL, &E), PS_EINVAL,
	       "%s: invalid owner", engine);
	is_int(ps_cat_migrate_end(cat, "p6", "", &im, &E), PS_EINVAL, "%s: empty owner", engine);
	ps_catalog_close(cat);
}

int main(void)
{
	run("sqlite");
	if (getenv("PS_TEST_PG_URL") && *getenv("PS_TEST_PG_URL"))
		run("postgresql");
	else
		diag("PS_TEST_PG_URL not set: SQLite only");
	return done_testing();
}
