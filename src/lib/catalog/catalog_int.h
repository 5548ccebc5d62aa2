/*
 * catalog_int.h - internals shared by the catalog's source files.
 */
#ifndef PS_CATALOG_INT_H
#define PS_CATALOG_INT_H

#include "projstore_catalog.h"
#include "db.h"
#include "../util/util.h"

struct ps_catalog {
	struct ps_db *db;
	char *name;       /* spec without password */
	int version;
};

int ps_cat_schema_latest(void);
const char *ps_cat_schema_migration(int version);

#endif
