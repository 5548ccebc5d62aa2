/*
 * cli.h - shared pieces of the projstore command line tool: the command
 * table, option parsing helpers, JSON output, progress display and the
 * mapping from library error codes to documented exit codes (docs/CLI.md).
 */
#ifndef PS_CLI_H
#define PS_CLI_H
#include <jansson.h>
#include <stdio.h>
#include "projstore.h"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
	EXIT_PARTIAL = 3,
	EXIT_QUOTA = 4,
	EXIT_PARTIAL_QUOTA = 5,
	EXIT_LOCKED = 6,
	EXIT_NOTFOUND = 7,
	EXIT_DAMAGED = 8,
	EXIT_CONFLICT = 9,      /* another open/close/move of the project is in progress */
	EXIT_TIMEOUT = 10,      /* --wait gave up, or the host that must act does not answer */
};

struct cli {
	const char *store;      /* --store / $PROJSTORE_STORE / ./projstore-data */
	const char *catalog;    /* --catalog / $PROJSTORE_CATALOG / STORE/catalog.db */
	int json;               /* --json */
	int quiet;
	const char *prog;
};

struct command {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *usage;      /* first line of --help */
	const char *help;       /* the rest */
};

extern const struct command ps_commands[];

/* Prints "projstore: message" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the library error and returns the exit code for it. */
int cli_fail(const struct ps_error *err);
int cli_exit_code(int ps_code);
/* Usage error: message + hint, returns EXIT_USAGE. */
int cli_usage(const struct command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_help(const struct command *cmd, FILE *f);
const struct command *cli_find(const char *name);

/* Opens the store, printing the error. Returns exit code (0 = ok). */
int cli_open_store(struct cli *cli, struct ps_store **out);
/* Splits "PROJECT@SNAP" (snap may be NULL). Validates the project id. */
int cli_split_ref(const struct command *cmd, const char *arg, char *project, size_t plen,
		  const char **snap);
int cli_check_project(const struct command *cmd, const char *id);
int cli_parse_long(const char *s, long min, long max, long *out);

/* JSON */
json_t *cli_snapshot_json(const struct ps_snapshot_info *si, int64_t now);
void cli_print_json(json_t *j);   /* prints and decrefs */
/* A string that may hold any bytes: invalid UTF-8 is escaped as \xHH. */
json_t *cli_json_bytes(const char *p, size_t n);
/* Escapes a name for a terminal: control bytes and invalid UTF-8 as \xHH. */
void cli_print_escaped(FILE *f, const char *p, size_t n);

/* Progress on stderr when it is a terminal. */
struct cli_progress {
	int enabled;
	int64_t last;
	int drawn;
};
void cli_progress_init(struct cli_progress *p);
void cli_progress_cb(void *ctx, const char *phase, uint64_t fd, uint64_t ft, uint64_t bd,
		     uint64_t bt);
void cli_progress_done(struct cli_progress *p);

/* command entry points */
int ps_cli_main(int argc, char **argv);
int cmd_init(struct cli *, int, char **);
int cmd_save(struct cli *, int, char **);
int cmd_snapshots(struct cli *, int, char **);
int cmd_ls(struct cli *, int, char **);
int cmd_cat(struct cli *, int, char **);
int cmd_diff(struct cli *, int, char **);
int cmd_restore(struct cli *, int, char **);
int cmd_stats(struct cli *, int, char **);
int cmd_quota(struct cli *, int, char **);
int cmd_check(struct cli *, int, char **);
int cmd_exclude(struct cli *, int, char **);
int cmd_mount(struct cli *, int, char **);
int cmd_prune(struct cli *, int, char **);
int cmd_policy(struct cli *, int, char **);
int cmd_delete(struct cli *, int, char **);
int cmd_gc(struct cli *, int, char **);
int cmd_migrate(struct cli *, int, char **);
int cmd_host(struct cli *, int, char **);
int cmd_hosts(struct cli *, int, char **);
int cmd_where(struct cli *, int, char **);
int cmd_projects(struct cli *, int, char **);
int cmd_events(struct cli *, int, char **);
int cmd_rescan(struct cli *, int, char **);
int cmd_serve(struct cli *, int, char **);
int cmd_sync(struct cli *, int, char **);
int cmd_serve_stdio(struct cli *, int, char **);
int cmd_agent(struct cli *, int, char **);
int cmd_open(struct cli *, int, char **);
int cmd_close(struct cli *, int, char **);
int cmd_move(struct cli *, int, char **);
int cmd_run(struct cli *, int, char **);
int cmd_limits(struct cli *, int, char **);
int cmd_top(struct cli *, int, char **);
int cmd_volume(struct cli *, int, char **);
int cmd_hosting(struct cli *, int, char **);

/* Requests to the host agents (cli_request.c): writes the intention, and with
 * wait polls the operation (timeout in seconds, < 0 = none). Returns the exit
 * code. */
int cli_request(struct cli *cli, const char *kind, const char *project, const char *target,
		int wait, double timeout);
/* The same with options for the agent (ps_cat_request_opts; NULL = none). */
int cli_request_opts(struct cli *cli, const char *kind, const char *project, const char *target,
		     const char *options, int wait, double timeout);
/* `save PROJECT [--wait]` (a request) rather than `save PROJECT DIR`? */
int cli_save_is_request(int argc, char **argv);
int cmd_save_request(struct cli *cli, int argc, char **argv);
int cli_parse_timeout(const char *s, double *out);

/* The --keep-... options of prune and policy (cmd_prune.c). */
enum { CLI_KEEP_LAST = 1000, CLI_KEEP_WITHIN, CLI_KEEP_15MIN, CLI_KEEP_HOURLY, CLI_KEEP_DAILY,
       CLI_KEEP_WEEKLY, CLI_KEEP_MONTHLY };
#define CLI_KEEP_LONGOPTS \
	{ "keep-last", required_argument, NULL, CLI_KEEP_LAST }, \
	{ "keep-within", required_argument, NULL, CLI_KEEP_WITHIN }, \
	{ "keep-15min", required_argument, NULL, CLI_KEEP_15MIN }, \
	{ "keep-hourly", required_argument, NULL, CLI_KEEP_HOURLY }, \
	{ "keep-daily", required_argument, NULL, CLI_KEEP_DAILY }, \
	{ "keep-weekly", required_argument, NULL, CLI_KEEP_WEEKLY }, \
	{ "keep-monthly", required_argument, NULL, CLI_KEEP_MONTHLY }
/* Returns 1 if c was a keep option (stored in p), 0 if not, -1 when its
 * argument is invalid (usage printed). */
int cli_keep_opt(const struct command *cmd, int c, const char *arg, struct ps_keep_policy *p);
json_t *cli_policy_json(const struct ps_keep_policy *p);
/* "keep-daily 7, keep-weekly 4", or "none". */
void cli_policy_format(const struct ps_keep_policy *p, char *buf, size_t len);
#endif

/* Options every command takes; handle them with cli_common_opt(). */
#define CLI_COMMON_LONGOPTS \
	{ "json", no_argument, NULL, 'J' }, { "store", required_argument, NULL, 'S' }, \
	{ "catalog", required_argument, NULL, 'K' }, { "help", no_argument, NULL, 'h' }
/* Returns 1 if handled, -1 for an unknown option (usage printed). */
int cli_common_opt(struct cli *cli, const struct command *cmd, int c, const char *arg);

/* The API to ask instead of the catalog (where, projects): --api URL as
 * given, else $PROJSTORE_API unless --catalog names a catalog; NULL: none. */
const char *cli_api_url(const struct cli *cli, const char *given);

/* The catalog (cli_catalog.c). */
struct ps_catalog;
/* Opens the catalog (--catalog, $PROJSTORE_CATALOG, else STORE/catalog.db for
 * a local store), printing the error. Returns an exit code (0 = ok). */
int cli_open_catalog(struct cli *cli, struct ps_catalog **out);
/* The catalog if one is configured (--catalog, $PROJSTORE_CATALOG, or an
 * existing STORE/catalog.db), else NULL; a configured catalog that cannot
 * be opened is reported as a warning and gives NULL. */
struct ps_catalog *cli_catalog_if_configured(struct cli *cli);
/* 1 if a catalog is configured in one of those ways (nothing is opened). */
int cli_catalog_configured(struct cli *cli);
/* After a command changed a project in the store: refresh the catalog's
 * cached facts if a catalog is configured; warns (does not fail) otherwise. */
void cli_catalog_refresh(struct cli *cli, struct ps_store *store, const char *project);
/* After a direct save (rc = its result): the project's facts and the save's
 * result into the catalog, if one is configured. */
void cli_catalog_saved(struct cli *cli, struct ps_store *store, const char *project, int rc,
		       const struct ps_snapshot_info *si, const struct ps_error *err);
/* Who asked (for events/operations): $SUDO_USER, else the login name, else uid. */
const char *cli_actor(void);
