/*
 * cli_catalog.c - how commands find and open the catalog, and the catalog
 * updates that commands changing the store make (save, quota, ...).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "projstore_catalog.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *spec_of(struct cli *cli)
{
	if (cli->catalog && *cli->catalog)
		return cli->catalog;
	const char *env = getenv("PROJSTORE_CATALOG");
	return env && *env ? env : NULL;
}

int cli_open_catalog(struct cli *cli, struct ps_catalog **out)
{
	struct ps_error err;
	ps_error_clear(&err);
	if (ps_catalog_open(out, spec_of(cli), cli->store, &err) != PS_OK) {
		cli_error("%s", err.msg);
		return err.code == PS_ELOCKED ? EXIT_LOCKED : EXIT_FAIL;
	}
	return 0;
}

int cli_catalog_configured(struct cli *cli)
{
	char path[4200];
	struct stat st;
	if (spec_of(cli))
		return 1;
	/* the default catalog counts as configured once it exists */
	if (!cli->store || strstr(cli->store, "://"))
		return 0;
	snprintf(path, sizeof(path), "%s/catalog.db", cli->store);
	return stat(path, &st) == 0;
}

struct ps_catalog *cli_catalog_if_configured(struct cli *cli)
{
	const char *spec = spec_of(cli);
	if (!cli_catalog_configured(cli))
		return NULL;
	struct ps_catalog *cat = NULL;
	struct ps_error err;
	ps_error_clear(&err);
	if (ps_catalog_open(&cat, spec, cli->store, &err) != PS_OK) {
		cli_error("warning: catalog not updated: %s ('projstore rescan' catches up)", err.msg);
		return NULL;
	}
	return cat;
}

void cli_catalog_refresh(struct cli *cli, struct ps_store *store, const char *project)
{
	struct ps_catalog *cat = cli_catalog_if_configured(cli);
	if (!cat)
		return;
	struct ps_error err;
	ps_error_clear(&err);
	if (ps_cat_refresh_project(cat, store, NULL, project, &err) != PS_OK)
		cli_error("warning: catalog not updated for %s: %s ('projstore rescan' catches up)",
			  project, err.msg);
	ps_catalog_close(cat);
}

void cli_catalog_saved(struct cli *cli, struct ps_store *store, const char *project, int rc,
		       const struct ps_snapshot_info *si, const struct ps_error *err)
{
	struct ps_catalog *cat = cli_catalog_if_configured(cli);
	if (!cat)
		return;
	struct ps_error e;
	char result[PS_CAT_TEXT_MAX];
	ps_error_clear(&e);
	if (rc == PS_OK) {
		if (si->errors && si->over_quota)
			snprintf(result, sizeof(result), "partial: %llu entries skipped; over quota",
				 (unsigned long long)si->errors);
		else if (si->errors)
			snprintf(result, sizeof(result), "partial: %llu entries skipped",
				 (unsigned long long)si->errors);
		else
			snprintf(result, sizeof(result), si->over_quota ? "over quota" : "ok");
		if (ps_cat_refresh_project(cat, store, NULL, project, &e) != PS_OK ||
		    ps_cat_project_save_result(cat, project, ps_cat_now(), result, &e) != PS_OK ||
		    ps_cat_event_add(cat, project, si->errors ? "saved-partial" : "saved", cli_actor(),
				     si->errors != 0, si->name, &e) != PS_OK)
			cli_error("warning: catalog not updated for %s: %s ('projstore rescan' catches up)",
				  project, e.msg);
	} else if (rc != PS_EINVAL) {
		snprintf(result, sizeof(result), "failed: %s", err->msg);
		if (ps_cat_project_ensure(cat, project, &e) != PS_OK ||
		    ps_cat_project_save_result(cat, project, ps_cat_now(), result, &e) != PS_OK ||
		    ps_cat_event_add(cat, project, "save-failed", cli_actor(), 1, err->msg, &e) != PS_OK)
			cli_error("warning: catalog not updated for %s: %s", project, e.msg);
	}
	ps_catalog_close(cat);
}

const char *cli_actor(void)
{
	static char buf[64];
	const char *s = getenv("SUDO_USER");
	if (s && *s && strlen(s) < 40) {
		snprintf(buf, sizeof(buf), "%s", s);
	} else {
		struct passwd *pw = getpwuid(getuid());
		if (pw && pw->pw_name && strlen(pw->pw_name) < 40)
			snprintf(buf, sizeof(buf), "%s", pw->pw_name);
		else
			snprintf(buf, sizeof(buf), "uid%u", (unsigned)getuid());
	}
	/* keep to the catalog's name characters */
	for (char *p = buf; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '-' || *p == '_'))
			*p = '_';
	return buf;
}
