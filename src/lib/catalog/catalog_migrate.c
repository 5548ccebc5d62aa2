/*
 * catalog_migrate.c - the catalog's side of `projstore migrate`: the start
 * and the end of one project's import, one transaction each.
 *
 * An import is two state changes, so it costs two commits, not the eight to
 * ten that the single-purpose calls (ensure, lease, flag, facts, snapshot
 * summary, result, event, flag, flag, release) would: with a catalog whose
 * commits wait for the disk, and all commits of a SQLite catalog taking turns,
 * that is what bounds the rate of a migration of many small homes.
 *
 * begin: the row is created if new; a project that is deployed, not
 *   "stored", leased by another owner, or that has an active open/close/move
 *   is refused (PS_ELOCKED, the message says why) and nothing changes;
 *   otherwise the lease is taken for `owner` and maintenance is set, so
 *   ps_cat_request refuses open/close/move until the end.
 * end: the store's facts (as ps_cat_project_set_facts, <0 / NULL =
 *   unchanged), the snapshot summary, the save result and an event are
 *   recorded, maintenance is cleared, migrated set, and owner's lease
 *   released.
 * fail: an event (error) is recorded, owner's lease released, maintenance
 *   cleared unless the caller keeps it (an import that published a snapshot
 *   but could not finish: the flag tells the next run that the newest
 *   snapshot is its own).
 */
#include "catalog_int.h"

#include <stdio.h>
#include <string.h>

struct mig_row {
	int found;
	char host[PS_CAT_ID_MAX + 1];
	char status[16];
	char lease_owner[PS_CAT_ID_MAX + 1];
	int64_t lease_expires;
	int migrated, maintenance;
	char op_kind[16];
	int64_t op_id;
};

static int mig_project_row(void *ctx, struct ps_db_row *r)
{
	struct mig_row *m = ctx;
	m->found = 1;
	ps_db_text_cpy(r, 0, m->host, sizeof(m->host));
	ps_db_text_cpy(r, 1, m->status, sizeof(m->status));
	ps_db_text_cpy(r, 2, m->lease_owner, sizeof(m->lease_owner));
	m->lease_expires = ps_db_int(r, 3);
	m->migrated = (int)ps_db_int(r, 4);
	m->maintenance = (int)ps_db_int(r, 5);
	return 0;
}

static int mig_op_row(void *ctx, struct ps_db_row *r)
{
	struct mig_row *m = ctx;
	m->op_id = ps_db_int(r, 0);
	ps_db_text_cpy(r, 1, m->op_kind, sizeof(m->op_kind));
	return 0;
}

static int mig_check(const char *project, const char *owner, struct ps_error *err)
{
	size_t n = owner ? strlen(owner) : 0;
	if (!project || !ps_project_id_valid(project))
		return ps_err(err, PS_EINVAL, "invalid project id '%s'", project ? project : "");
	if (n == 0 || n > PS_CAT_ID_MAX)
		return ps_err(err, PS_EINVAL, "invalid lease owner name '%s'", owner ? owner : "");
	for (size_t i = 0; i < n; i++) {
		char c = owner[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return ps_err(err, PS_EINVAL,
				      "invalid lease owner name '%s' (letters, digits, '.', '-', '_')", owner);
	}
	return PS_OK;
}

int ps_cat_migrate_begin(struct ps_catalog *cat, const char *project, const char *owner,
			 int64_t ttl_us, struct ps_cat_project *before, struct ps_error *err)
{
	struct mig_row m;
	int64_t now = ps_cat_now();
	int rc = mig_check(project, owner, err);
	if (rc != PS_OK)
		return rc;
	memset(&m, 0, sizeof(m));
	/* Not waited for on disk: the import's end is durable and carries this
	 * with it. A machine crash in between may forget that the project was
	 * being imported; the rerun then sees what the store and the marker say
	 * (docs/CLI.md, migrate): it imports again, or refuses a project whose
	 * newest snapshot its marker does not name (nothing is lost either way). */
	rc = ps_db_begin_lazy(cat->db, err);
	if (rc != PS_OK)
		return rc;
	rc = ps_db_exec(cat->db, NULL, err,
			"INSERT INTO projects (id, updated_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
			"si", project, now);
	if (rc == PS_OK)
		rc = ps_db_query(cat->db, mig_project_row, &m, err,
				 "SELECT host, status, lease_owner, lease_expires, migrated, maintenance"
				 " FROM projects WHERE id = $1",
				 "s", project);
	if (rc == PS_OK)
		rc = ps_db_query(cat->db, mig_op_row, &m, err,
				 "SELECT id, kind FROM operations WHERE project = $1 AND kind <> 'save'"
				 " AND state IN ('pending', 'running') ORDER BY id LIMIT 1",
				 "s", project);
	if (rc != PS_OK)
		goto done;
	if (!m.found) {
		rc = ps_err(err, PS_ERROR, "project %s vanished from the catalog", project);
	} else if (m.host[0]) {
		rc = ps_err(err, PS_ELOCKED, "deployed on host '%s' (close it first)", m.host);
	} else if (strcmp(m.status, "stored") != 0) {
		rc = ps_err(err, PS_ELOCKED, "its status is '%s' (an open, close or move is under way)",
			    m.status);
	} else if (m.op_id) {
		rc = ps_err(err, PS_ELOCKED, "operation %lld (%s) is pending for it", (long long)m.op_id,
			    m.op_kind);
	} else if (m.lease_owner[0] && strcmp(m.lease_owner, owner) != 0 && m.lease_expires >= now) {
		rc = ps_err(err, PS_ELOCKED, "leased by '%s'", m.lease_owner);
	}
	if (rc == PS_OK)
		rc = ps_db_exec(cat->db, NULL, err,
				"UPDATE projects SET lease_owner = $2, lease_expires = $3, maintenance = 1,"
				" updated_at = $4 WHERE id = $1",
				"ssii", project, owner, now + ttl_us, now);
	if (rc == PS_OK)
		rc = ps_db_commit(cat->db, err);
done:
	if (rc != PS_OK)
		ps_db_rollback(cat->db);
	if (rc == PS_OK && before) {
		memset(before, 0, sizeof(*before));
		snprintf(before->id, sizeof(before->id), "%s", project);
		snprintf(before->status, sizeof(before->status), "%s", m.status);
		snprintf(before->lease_owner, sizeof(before->lease_owner), "%s", m.lease_owner);
		before->lease_expires = m.lease_expires;
		before->migrated = m.migrated;
		before->maintenance = m.maintenance;
	}
	return rc;
}

/* The statements of one project's end (inside the caller's transaction). */
static int end_stmts(struct ps_catalog *cat, const char *project, const char *owner,
		     const struct ps_cat_import *im, int64_t now, struct ps_error *err)
{
	const struct ps_cat_store_facts *f = im->facts;
	char result[PS_CAT_TEXT_MAX], detail[PS_CAT_TEXT_MAX];
	int rc;
	snprintf(result, sizeof(result), "%s", im->result ? im->result : "");
	snprintf(detail, sizeof(detail), "%s", im->event_detail ? im->event_detail : "");
	rc = ps_db_exec(cat->db, NULL, err,
			"INSERT INTO projects (id, updated_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
			"si", project, now);
	if (rc == PS_OK && f)
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
			" ELSE CAST($9 AS BIGINT) END"
			" WHERE id = $1",
			"siiiddisi", project, f->quota_bytes, f->logical_bytes, f->stored_bytes,
			f->compressratio, f->dedupratio, f->snapshots, f->last_snapshot, f->last_snapshot_at);
	if (rc == PS_OK && f && f->last_snapshot && *f->last_snapshot)
		rc = ps_db_exec(cat->db, NULL, err,
				"INSERT INTO snapshots (project, store, name, at, logical_bytes, stored_bytes, files)"
				" VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (project, store) DO UPDATE SET"
				" name = excluded.name, at = excluded.at, logical_bytes = excluded.logical_bytes,"
				" stored_bytes = excluded.stored_bytes, files = excluded.files"
				" WHERE excluded.at >= snapshots.at",
				"sssiiii", project, f->store ? f->store : "default", f->last_snapshot,
				f->last_snapshot_at < 0 ? (int64_t)0 : f->last_snapshot_at,
				f->logical_bytes < 0 ? (int64_t)0 : f->logical_bytes,
				f->stored_bytes < 0 ? (int64_t)0 : f->stored_bytes,
				im->files < 0 ? (int64_t)0 : im->files);
	if (rc == PS_OK)
		rc = ps_db_exec(cat->db, NULL, err,
				"UPDATE projects SET last_save_at = $2, last_save_result = $3, maintenance = 0,"
				" migrated = 1, lease_owner = CASE WHEN lease_owner = $4 THEN '' ELSE lease_owner END,"
				" lease_expires = CASE WHEN lease_owner = $4 THEN 0 ELSE lease_expires END,"
				" updated_at = $5 WHERE id = $1",
				"sissi", project, now, result, owner, now);
	if (rc == PS_OK && im->event_kind)
		rc = ps_db_exec(cat->db, NULL, err,
				"INSERT INTO events (project, at, kind, actor, error, detail)"
				" VALUES ($1, $2, $3, $4, $5, $6)",
				"sissis", project, now, im->event_kind, im->actor ? im->actor : "",
				(int64_t)(im->event_error != 0), detail);
	return rc;
}

int ps_cat_migrate_end(struct ps_catalog *cat, const char *project, const char *owner,
		       const struct ps_cat_import *im, struct ps_error *err)
{
	return ps_cat_migrate_end_many(cat, 1, &project, owner, im, err);
}

int ps_cat_migrate_end_many(struct ps_catalog *cat, size_t n, const char *const *projects,
			    const char *owner, const struct ps_cat_import *ims, struct ps_error *err)
{
	int64_t now = ps_cat_now();
	int rc = PS_OK;
	for (size_t i = 0; i < n && rc == PS_OK; i++)
		rc = mig_check(projects[i], owner, err);
	if (rc != PS_OK || !n)
		return rc;
	rc = ps_db_begin(cat->db, err);
	if (rc != PS_OK)
		return rc;
	for (size_t i = 0; i < n && rc == PS_OK; i++)
		rc = end_stmts(cat, projects[i], owner, &ims[i], now, err);
	if (rc == PS_OK)
		rc = ps_db_commit(cat->db, err);
	if (rc != PS_OK)
		ps_db_rollback(cat->db);
	return rc;
}

int ps_cat_migrate_fail(struct ps_catalog *cat, const char *project, const char *owner,
			const char *actor, const char *reason, int keep_maintenance,
			struct ps_error *err)
{
	int64_t now = ps_cat_now();
	char detail[PS_CAT_TEXT_MAX];
	int rc = mig_check(project, owner, err);
	if (rc != PS_OK)
		return rc;
	snprintf(detail, sizeof(detail), "%s", reason ? reason : "");
	rc = ps_db_begin(cat->db, err);
	if (rc != PS_OK)
		return rc;
	rc = ps_db_exec(cat->db, NULL, err,
			"UPDATE projects SET"
			" maintenance = CASE WHEN lease_owner = $2 AND CAST($3 AS BIGINT) = 0 THEN 0 ELSE maintenance END,"
			" lease_owner = CASE WHEN lease_owner = $2 THEN '' ELSE lease_owner END,"
			" lease_expires = CASE WHEN lease_owner = $2 THEN 0 ELSE lease_expires END,"
			" updated_at = $4 WHERE id = $1",
			"ssii", project, owner, (int64_t)(keep_maintenance != 0), now);
	if (rc == PS_OK)
		rc = ps_db_exec(cat->db, NULL, err,
				"INSERT INTO events (project, at, kind, actor, error, detail)"
				" VALUES ($1, $2, 'migrate-failed', $3, 1, $4)",
				"siss", project, now, actor ? actor : "", detail);
	if (rc == PS_OK)
		rc = ps_db_commit(cat->db, err);
	if (rc != PS_OK)
		ps_db_rollback(cat->db);
	return rc;
}
