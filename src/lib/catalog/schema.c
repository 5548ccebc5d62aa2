/*
 * schema.c - the catalog's versioned schema.  Migration N brings a catalog
 * from version N-1 to N; they are applied in order, in one transaction, when
 * a catalog is opened.  Never edit a released migration: add a new one.
 *
 * The text is shared by both engines; @ID@ becomes the engine's
 * auto-incrementing primary key.
 */
#include "catalog_int.h"

static const char *const migrations[] = {
	/* 1: the first schema */
	"CREATE TABLE projects ("
	" id TEXT PRIMARY KEY,"
	" host TEXT NOT NULL DEFAULT '',"
	" status TEXT NOT NULL DEFAULT 'stored',"
	" desired_host TEXT NOT NULL DEFAULT '',"
	" quota_bytes BIGINT NOT NULL DEFAULT 0,"
	" logical_bytes BIGINT NOT NULL DEFAULT 0,"
	" stored_bytes BIGINT NOT NULL DEFAULT 0,"
	" compressratio DOUBLE PRECISION NOT NULL DEFAULT 1,"
	" dedupratio DOUBLE PRECISION NOT NULL DEFAULT 1,"
	" snapshots BIGINT NOT NULL DEFAULT 0,"
	" last_snapshot TEXT NOT NULL DEFAULT '',"
	" last_snapshot_at BIGINT NOT NULL DEFAULT 0,"
	" last_save_at BIGINT NOT NULL DEFAULT 0,"
	" last_save_result TEXT NOT NULL DEFAULT '',"
	" migrated INTEGER NOT NULL DEFAULT 0,"
	" maintenance INTEGER NOT NULL DEFAULT 0,"
	" lease_owner TEXT NOT NULL DEFAULT '',"
	" lease_expires BIGINT NOT NULL DEFAULT 0,"
	" uid BIGINT NOT NULL DEFAULT -1,"
	" updated_at BIGINT NOT NULL DEFAULT 0);"
	"CREATE INDEX projects_host ON projects(host);"
	"CREATE INDEX projects_status ON projects(status);"
	"CREATE TABLE hosts ("
	" name TEXT PRIMARY KEY,"
	" datacenter TEXT NOT NULL DEFAULT '',"
	" store_url TEXT NOT NULL DEFAULT '',"
	" root TEXT NOT NULL DEFAULT '',"
	" capacity BIGINT NOT NULL DEFAULT 0,"
	" last_heartbeat BIGINT NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL DEFAULT 'up',"
	" added_at BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE stores ("
	" name TEXT PRIMARY KEY,"
	" url TEXT NOT NULL,"
	" datacenter TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE syncs ("
	" id @ID@,"
	" source TEXT NOT NULL,"
	" destination TEXT NOT NULL,"
	" started_at BIGINT NOT NULL,"
	" finished_at BIGINT NOT NULL DEFAULT 0,"
	" result TEXT NOT NULL DEFAULT '',"
	" bytes BIGINT NOT NULL DEFAULT 0,"
	" objects BIGINT NOT NULL DEFAULT 0,"
	" snapshots BIGINT NOT NULL DEFAULT 0);"
	"CREATE INDEX syncs_pair ON syncs(source, destination, id);"
	"CREATE TABLE operations ("
	" id @ID@,"
	" kind TEXT NOT NULL,"
	" project TEXT NOT NULL,"
	" host TEXT NOT NULL DEFAULT '',"
	" target_host TEXT NOT NULL DEFAULT '',"
	" state TEXT NOT NULL DEFAULT 'pending',"
	" phase TEXT NOT NULL DEFAULT 'queued',"
	" bytes_done BIGINT NOT NULL DEFAULT 0,"
	" bytes_total BIGINT NOT NULL DEFAULT 0,"
	" created_at BIGINT NOT NULL,"
	" started_at BIGINT NOT NULL DEFAULT 0,"
	" finished_at BIGINT NOT NULL DEFAULT 0,"
	" result TEXT NOT NULL DEFAULT '',"
	" requested_by TEXT NOT NULL DEFAULT '');"
	/* at most one active open/close/move per project: the database itself
	 * makes the second of two concurrent requests fail */
	"CREATE UNIQUE INDEX operations_one_active ON operations(project)"
	" WHERE state IN ('pending', 'running') AND kind <> 'save';"
	"CREATE INDEX operations_host ON operations(host, state);"
	"CREATE INDEX operations_project ON operations(project, id);"
	"CREATE TABLE snapshots ("
	" project TEXT NOT NULL,"
	" store TEXT NOT NULL,"
	" name TEXT NOT NULL,"
	" at BIGINT NOT NULL,"
	" logical_bytes BIGINT NOT NULL DEFAULT 0,"
	" stored_bytes BIGINT NOT NULL DEFAULT 0,"
	" files BIGINT NOT NULL DEFAULT 0,"
	" PRIMARY KEY (project, store));"
	"CREATE TABLE events ("
	" id @ID@,"
	" project TEXT NOT NULL,"
	" at BIGINT NOT NULL,"
	" kind TEXT NOT NULL,"
	" actor TEXT NOT NULL DEFAULT '',"
	" error INTEGER NOT NULL DEFAULT 0,"
	" detail TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX events_project ON events(project, id);",
	/* 2: hosting - per-project limits (0 = none) and network mode, the
	 * newest usage an agent measured, one uid per project (unique), and the
	 * shared data/scratch volumes (host '' = every host) */
	"ALTER TABLE projects ADD COLUMN limit_cpu DOUBLE PRECISION NOT NULL DEFAULT 0;"
	"ALTER TABLE projects ADD COLUMN limit_memory BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE projects ADD COLUMN limit_io_weight BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE projects ADD COLUMN limit_pids BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE projects ADD COLUMN limit_network TEXT NOT NULL DEFAULT 'none';"
	"ALTER TABLE projects ADD COLUMN limits_at BIGINT NOT NULL DEFAULT 0;"
	"CREATE TABLE usage ("
	" project TEXT PRIMARY KEY,"
	" host TEXT NOT NULL DEFAULT '',"
	" at BIGINT NOT NULL DEFAULT 0,"
	" cpu_usec BIGINT NOT NULL DEFAULT 0,"
	" memory_bytes BIGINT NOT NULL DEFAULT 0,"
	" memory_peak BIGINT NOT NULL DEFAULT 0,"
	" io_bytes BIGINT NOT NULL DEFAULT 0,"
	" pids BIGINT NOT NULL DEFAULT 0,"
	" disk_bytes BIGINT NOT NULL DEFAULT 0,"
	" oom_kills BIGINT NOT NULL DEFAULT 0,"
	" running INTEGER NOT NULL DEFAULT 0);"
	"CREATE UNIQUE INDEX projects_uid ON projects(uid) WHERE uid >= 0;"
	"CREATE TABLE volumes ("
	" host TEXT NOT NULL,"
	" kind TEXT NOT NULL,"
	" path TEXT NOT NULL,"
	" PRIMARY KEY (host, kind));",
	/* 3: options of an operation, as the request gave them (words
	 * separated by spaces, e.g. "allow-older" for an open) */
	"ALTER TABLE operations ADD COLUMN options TEXT NOT NULL DEFAULT '';",
};

int ps_cat_schema_latest(void)
{
	return (int)PS_ARRAY_LEN(migrations);
}

const char *ps_cat_schema_migration(int version)
{
	if (version < 1 || version > (int)PS_ARRAY_LEN(migrations))
		return NULL;
	return migrations[version - 1];
}
