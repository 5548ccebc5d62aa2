/*
 * cmd_sync.c - projstore sync SRC DST [PROJECT...] [--dry-run] [--every DURATION]
 *              projstore serve-stdio PATH   (plumbing: the far end of ssh://)
 *
 * sync prints one line per event on stderr (projects copied, conflicts,
 * objects not copied), a summary on stdout (or one JSON document; with
 * --every one document per round, one per line), and records the run in the
 * catalog when one is configured for DST.  Exit codes: docs/CLI.md.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "projstore_catalog.h"
#include "projstore_sync.h"

#include <errno.h>
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { OPT_DRY = 1000, OPT_EVERY, OPT_LOCK_TIMEOUT, OPT_TIMEOUT, OPT_SSH, OPT_REMOTE_BIN };

static volatile sig_atomic_t stop_flag;

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A sync is a burst of large, short-lived buffers (index, trees, records)
 * in a few threads. Kept in one arena and not handed back to the kernel in
 * between, they are reused instead of being faulted in again; the heap's
 * first 128 MiB are backed by transparent huge pages where the kernel
 * offers them (on the reference change set 10,000 page faults -> 450 and
 * about a third less CPU; docs/PERFORMANCE.md). Memory stays at the run's
 * peak until the process ends (--every: the next round reuses it). */
static void tune_malloc(void)
{
	ps_mem_burst((size_t)128 << 20);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

struct sync_out {
	int every;        /* log lines carry the time */
	int quiet;
};

static void on_log(void *ctx, int level, const char *line)
{
	struct sync_out *o = ctx;
	if (o->every) {
		char ts[48];
		int64_t now = clock_ns(CLOCK_REALTIME);
		ps_format_time_ns(now / 1000000000, (uint32_t)(now % 1000000000 / 1000000 * 1000000), ts,
				  sizeof(ts));
		fprintf(stderr, "%s ", ts);
	}
	fprintf(stderr, "projstore: %s%s\n", level ? "warning: " : "", line);
}

static int parse_seconds(const char *s, double min, double max, double *out)
{
	char *end;
	double v;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

/* "90", "90s", "5min", "2h", "1d" (m alone is refused: months elsewhere). */
static int parse_every(const char *s, double *out)
{
	char *end;
	double v;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !(v > 0))
		return -1;
	if (!*end || !strcmp(end, "s"))
		;
	else if (!strcmp(end, "min"))
		v *= 60;
	else if (!strcmp(end, "h"))
		v *= 3600;
	else if (!strcmp(end, "d"))
		v *= 86400;
	else
		return -1;
	if (v < 1 || v > 366 * 86400.0)
		return -1;
	*out = v;
	return 0;
}

static const char *status_name(int s)
{
	switch (s) {
	case PS_SYNC_OK: return "ok";
	case PS_SYNC_PARTIAL: return "partial";
	case PS_SYNC_LOCKED: return "locked";
	case PS_SYNC_FAILED: return "failed";
	case PS_SYNC_STOPPED: return "stopped";
	default: return "unknown";
	}
}

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *result_json(const char *src, const char *dst, const struct ps_sync_result *r,
			   const struct ps_error *err, int failed)
{
	json_t *j = json_object(), *pa = json_array(), *ca = json_array(), *da = json_array();
	char ts[64];
	json_object_set_new(j, "source", json_string(src));
	json_object_set_new(j, "destination", json_string(dst));
	json_object_set_new(j, "source_id", r && r->src_id[0] ? json_string(r->src_id) : json_null());
	json_object_set_new(j, "destination_id", r && r->dst_id[0] ? json_string(r->dst_id) : json_null());
	json_object_set_new(j, "dry_run", json_boolean(r && r->dry_run));
	json_object_set_new(j, "ok", json_boolean(!failed && r && !r->ndamage));
	json_object_set_new(j, "error", failed ? json_string(err->msg) : json_null());
	if (r) {
		ps_format_time_ns(r->started_ns / 1000000000, (uint32_t)(r->started_ns % 1000000000), ts,
				  sizeof(ts));
		json_object_set_new(j, "started", json_string(ts));
		ps_format_time_ns(r->finished_ns / 1000000000, (uint32_t)(r->finished_ns % 1000000000), ts,
				  sizeof(ts));
		json_object_set_new(j, "finished", json_string(ts));
		json_object_set_new(j, "duration_ms", json_integer((r->finished_ns - r->started_ns) / 1000000));
		json_object_set_new(j, "connect_ms", json_integer(r->connect_ms));
		json_object_set_new(j, "snapshots_copied", json_integer((json_int_t)r->snapshots_copied));
		json_object_set_new(j, "objects_sent", json_integer((json_int_t)r->objects_sent));
		json_object_set_new(j, "bytes_sent", json_integer((json_int_t)r->bytes_sent));
		json_object_set_new(j, "objects_queried", json_integer((json_int_t)r->objects_queried));
		json_object_set_new(j, "trees_read", json_integer((json_int_t)r->trees_read));
		json_object_set_new(j, "wire_bytes_out", json_integer((json_int_t)r->wire_out));
		json_object_set_new(j, "wire_bytes_in", json_integer((json_int_t)r->wire_in));
		json_object_set_new(j, "ssh_bytes_out", json_integer((json_int_t)r->ssh_out));
		json_object_set_new(j, "ssh_bytes_in", json_integer((json_int_t)r->ssh_in));
		for (size_t i = 0; i < r->nprojects; i++) {
			const struct ps_sync_project *p = &r->projects[i];
			json_array_append_new(pa, json_pack(
				"{s:s, s:s, s:o, s:I, s:I, s:o, s:o, s:I, s:I, s:b, s:o, s:b}", "project", p->project,
				"status", status_name(p->status), "error", p->error ? json_string(p->error) : json_null(),
				"source_snapshots", (json_int_t)p->src_snapshots, "destination_snapshots",
				(json_int_t)p->dst_snapshots, "copied", strv_json(p->copied, p->ncopied), "not_copied",
				strv_json(p->failed, p->nfailed), "objects", (json_int_t)p->objects, "bytes",
				(json_int_t)p->bytes, "settings_changed", p->settings_changed, "settings_notes",
				strv_json(p->settings_notes, p->nsettings_notes), "conflict", p->conflict != 0));
		}
		for (size_t i = 0; i < r->nconflicts; i++) {
			const struct ps_sync_conflict *k = &r->conflicts[i];
			json_array_append_new(ca, json_pack("{s:s, s:o, s:o, s:o, s:o}", "project", k->project,
							    "base", k->base[0] ? json_string(k->base) : json_null(),
							    "source_only", strv_json(k->src_only, k->nsrc_only),
							    "destination_only", strv_json(k->dst_only, k->ndst_only),
							    "latest", k->latest[0] ? json_string(k->latest) : json_null()));
		}
		for (size_t i = 0; i < r->ndamage; i++) {
			const struct ps_sync_damage *d = &r->damage[i];
			json_array_append_new(da, json_pack("{s:s, s:s, s:s, s:o, s:s}", "project", d->project,
							    "snapshot", d->snapshot, "object", d->object, "path",
							    cli_json_bytes(d->path, strlen(d->path)), "message",
							    d->message));
		}
	}
	json_object_set_new(j, "projects", pa);
	json_object_set_new(j, "conflicts", ca);
	json_object_set_new(j, "damaged", da);
	return j;
}

static void print_text(const char *src, const char *dst, const struct ps_sync_result *r)
{
	char sent[32];
	size_t locked = 0, failed_snaps = 0;
	ps_format_size(r->bytes_sent, sent, sizeof(sent));
	for (size_t i = 0; i < r->nprojects; i++) {
		locked += r->projects[i].status == PS_SYNC_LOCKED;
		failed_snaps += r->projects[i].nfailed;
	}
	printf("%s %s -> %s: %zu project(s), %llu snapshot(s) %s, %llu objects (%s) %s in %.1f s\n",
	       r->dry_run ? "dry run" : "synced", src, dst, r->nprojects,
	       (unsigned long long)r->snapshots_copied, r->dry_run ? "would be copied" : "copied",
	       (unsigned long long)r->objects_sent, sent, r->dry_run ? "to send" : "sent",
	       (double)(r->finished_ns - r->started_ns) / 1e9);
	if (r->connect_ms)
		printf("ssh connection set-up: %lld ms; protocol bytes out %llu, in %llu\n",
		       (long long)r->connect_ms, (unsigned long long)r->wire_out,
		       (unsigned long long)r->wire_in);
	for (size_t i = 0; i < r->nconflicts; i++) {
		const struct ps_sync_conflict *k = &r->conflicts[i];
		printf("conflict: %s: both stores saved since %s: %zu snapshot(s) only in the source, %zu "
		       "only in the destination; all kept, latest is %s\n", k->project,
		       k->base[0] ? k->base : "(no common snapshot)", k->nsrc_only, k->ndst_only,
		       k->latest[0] ? k->latest : "-");
	}
	for (size_t i = 0; i < r->ndamage; i++) {
		const struct ps_sync_damage *d = &r->damage[i];
		printf("NOT COPIED: %s@%s: object %s", d->project, d->snapshot, d->object);
		if (d->path[0]) {
			printf(" ('");
			cli_print_escaped(stdout, d->path, strlen(d->path));
			printf("')");
		}
		printf(": %s\n", d->message);
	}
	if (failed_snaps)
		printf("%zu snapshot(s) were not copied; repair the source (check --read-data "
		       "--repair-from) and sync again\n", failed_snaps);
	if (locked)
		printf("%zu project(s) skipped: locked in the destination\n", locked);
}

static int exit_of(const struct ps_sync_result *r)
{
	int locked = 0, damaged = r->ndamage != 0;
	for (size_t i = 0; i < r->nprojects; i++) {
		locked |= r->projects[i].status == PS_SYNC_LOCKED;
		damaged |= r->projects[i].status == PS_SYNC_PARTIAL;
		if (r->projects[i].status == PS_SYNC_FAILED)
			return EXIT_FAIL;
	}
	return damaged ? EXIT_DAMAGED : locked ? EXIT_LOCKED : EXIT_OK;
}

/* The catalog of DST (when it is local), if one is configured. */
static struct ps_catalog *dst_catalog(struct cli *cli, const char *dst)
{
	struct cli c = *cli;
	c.store = ps_location_is_ssh(dst) ? NULL : dst;
	return cli_catalog_if_configured(&c);
}

static void catalog_record(struct ps_catalog *cat, int64_t id, const char *dst,
			   const struct ps_sync_result *r, int rc, const struct ps_error *err)
{
	char result[PS_CAT_TEXT_MAX];
	struct ps_error e;
	struct ps_store *store = NULL;
	if (rc)
		snprintf(result, sizeof(result), "failed: %.400s", err->msg);
	else if (r->ndamage)
		snprintf(result, sizeof(result), "damaged: %zu object(s) not copied", r->ndamage);
	else if (r->nconflicts)
		snprintf(result, sizeof(result), "conflicts: %zu", r->nconflicts);
	else
		snprintf(result, sizeof(result), "ok");
	ps_error_clear(&e);
	if (ps_cat_sync_finish(cat, id, result, r ? (int64_t)r->bytes_sent : 0,
			       r ? (int64_t)r->objects_sent : 0, r ? (int64_t)r->snapshots_copied : 0, &e))
		cli_error("warning: catalog: the sync was not recorded: %s", e.msg);
	/* the facts of the projects it brought (a local DST only: the catalog
	 * of a remote store is its own datacenter's) */
	if (!r || ps_location_is_ssh(dst) || ps_store_open(&store, dst, &e))
		return;
	for (size_t i = 0; i < r->nprojects; i++) {
		const struct ps_sync_project *p = &r->projects[i];
		if (!p->ncopied && !p->settings_changed)
			continue;
		if (ps_cat_refresh_project(cat, store, NULL, p->project, &e))
			cli_error("warning: catalog not updated for %s: %s", p->project, e.msg);
	}
	ps_store_free(store);
}

static int run_once(struct cli *cli, const char *src, const char *dst, struct ps_sync_opts *o,
		    int every)
{
	struct ps_sync_result *r = NULL;
	struct ps_catalog *cat = NULL;
	struct ps_error err;
	int64_t cat_id = 0;
	int rc, code;
	ps_error_clear(&err);
	if (!o->dry_run && (cat = dst_catalog(cli, dst))) {
		struct ps_error e;
		if (ps_cat_sync_begin(cat, src, dst, &cat_id, &e)) {
			cli_error("warning: catalog: the sync is not recorded: %s", e.msg);
			ps_catalog_close(cat);
			cat = NULL;
		}
	}
	rc = ps_sync(src, dst, o, &r, &err);
	if (cat) {
		catalog_record(cat, cat_id, dst, r, rc, &err);
		ps_catalog_close(cat);
	}
	if (cli->json) {
		json_t *j = result_json(src, dst, r, &err, rc != 0);
		if (every) {
			/* one document per round, one per line */
			json_dumpf(j, stdout, JSON_COMPACT);
			putchar('\n');
			fflush(stdout);
			json_decref(j);
		} else {
			cli_print_json(j);
		}
	} else if (r && !rc) {
		print_text(src, dst, r);
		fflush(stdout);
	}
	if (rc) {
		cli_error("%s", err.msg);
		code = cli_exit_code(rc);
		if (code == EXIT_NOTFOUND || code == EXIT_DAMAGED)
			code = EXIT_FAIL;
	} else {
		code = exit_of(r);
	}
	ps_sync_result_free(r);
	return code;
}

int cmd_sync(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ "every", required_argument, NULL, OPT_EVERY },
		{ "lock-timeout", required_argument, NULL, OPT_LOCK_TIMEOUT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "ssh", required_argument, NULL, OPT_SSH },
		{ "remote-bin", required_argument, NULL, OPT_REMOTE_BIN },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("sync");
	struct ps_sync_opts o = PS_SYNC_OPTS_INIT;
	tune_malloc();
	struct sync_out out = { 0, 0 };
	const char *src, *dst;
	double every = 0;
	int c, code;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case OPT_DRY: o.dry_run = 1; break;
		case OPT_EVERY:
			if (parse_every(optarg, &every))
				return cli_usage(cmd, "invalid --every '%s' (e.g. 90s, 5min, 2h, 1d)", optarg);
			break;
		case OPT_LOCK_TIMEOUT:
			if (parse_seconds(optarg, 0, 86400, &o.lock_timeout))
				return cli_usage(cmd, "invalid --lock-timeout '%s' (seconds)", optarg);
			break;
		case OPT_TIMEOUT:
			if (parse_seconds(optarg, 1, 86400, &o.io_timeout))
				return cli_usage(cmd, "invalid --timeout '%s' (seconds)", optarg);
			break;
		case OPT_SSH: o.ssh_command = optarg; break;
		case OPT_REMOTE_BIN: o.remote_bin = optarg; break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	{
		int n = 0;
		char **rest = argv + optind;
		int nrest = argc - optind;
		char **pos = calloc((size_t)nrest + 1, sizeof(char *));
		if (!pos)
			return EXIT_FAIL;
		for (int i = 0; i < nrest; i++)
			pos[n++] = rest[i];
		if (n < 2) {
			free(pos);
			return cli_usage(cmd, "sync needs SRC and DST");
		}
		src = pos[0];
		dst = pos[1];
		for (int i = 2; i < n; i++)
			if ((c = cli_check_project(cmd, pos[i]))) {
				free(pos);
				return c;
			}
		if (n > 2) {
			pos[n] = NULL;
			o.projects = (const char *const *)(pos + 2);
		}
		if (!*src || !*dst) {
			free(pos);
			return cli_usage(cmd, "empty store location");
		}
		out.every = every > 0;
		o.log = on_log;
		o.cb_ctx = &out;
		o.stop = &stop_flag;
		if (every > 0) {
			struct sigaction sa;
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = on_signal;
			sigaction(SIGTERM, &sa, NULL);
			sigaction(SIGINT, &sa, NULL);
			sigaction(SIGHUP, &sa, NULL);
			on_log(&out, 0, "syncing periodically; SIGTERM or SIGINT stops after the current step");
			while (!stop_flag) {
				int64_t next = clock_ns(CLOCK_MONOTONIC) + (int64_t)(every * 1e9);
				char line[256];
				code = run_once(cli, src, dst, &o, 1);
				snprintf(line, sizeof(line), "round done (exit %d); next in %.0f s", code, every);
				if (!stop_flag)
					on_log(&out, 0, line);
				while (!stop_flag && clock_ns(CLOCK_MONOTONIC) < next) {
					struct timespec ts = { 0, 100000000L };
					nanosleep(&ts, NULL);
				}
			}
			on_log(&out, 0, "stopped by a signal");
			code = EXIT_OK;
		} else {
			code = run_once(cli, src, dst, &o, 0);
		}
		free(pos);
	}
	return code;
}

/* ------------------------------------------------------------ serve-stdio */

static void serve_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	fprintf(stderr, "projstore serve-stdio: %s%s\n", level ? "" : "", line);
}

int cmd_serve_stdio(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("serve-stdio");
	struct ps_error err;
	int c, out_fd, rc;
	tune_malloc();
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (cli_common_opt(cli, cmd, c, optarg) < 0)
			return EXIT_USAGE;
	if (argc - optind != 1)
		return cli_usage(cmd, "serve-stdio takes the store's path");
	if (ps_location_is_ssh(argv[optind]))
		return cli_usage(cmd, "serve-stdio serves a store of this host, not '%s'", argv[optind]);
	/* the protocol owns the original stdout; anything printed by mistake
	 * goes to stderr instead of into the stream */
	fflush(stdout);
	out_fd = dup(1);
	if (out_fd < 0 || dup2(2, 1) < 0) {
		cli_error("cannot set up stdout: %s", strerror(errno));
		return EXIT_FAIL;
	}
	ps_error_clear(&err);
	rc = ps_serve_stdio(argv[optind], 0, out_fd, serve_log, NULL, &err);
	close(out_fd);
	if (rc) {
		fprintf(stderr, "projstore serve-stdio: %s\n", err.msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
