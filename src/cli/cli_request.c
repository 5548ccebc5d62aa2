/*
 * cli_request.c - what open, close, move and `save PROJECT` share: they only
 * write an intention into the catalog (ps_cat_request) and read state; the
 * agent of the host acts.  With --wait the operation is polled until it ends,
 * with its progress on a terminal; a wait that runs out says whether the
 * acting host's agent answers at all.
 *
 * Exit codes (docs/CLI.md): 0 done (or queued without --wait); 1 the
 * operation failed (its result says why); 2 usage; 7 unknown host, or
 * nothing to close/save (project not deployed); 9 another open/close/move
 * of the project is in progress (a concurrent request won); 10 --wait gave
 * up (timeout) or the host that must act is not answering.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "projstore_catalog.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "host B's agent is not running or not answering (last heartbeat 2 minutes
 * ago)", or "" when it answers */
static void host_state(struct ps_catalog *cat, const char *host, char *buf, size_t len)
{
	struct ps_cat_host h;
	struct ps_error err;
	char age[64];
	buf[0] = 0;
	if (!host[0])
		return;
	ps_error_clear(&err);
	if (ps_cat_host_get(cat, host, &h, &err) != PS_OK) {
		snprintf(buf, len, "host %s is not in the catalog", host);
		return;
	}
	if (ps_cat_host_alive(&h, ps_cat_now()))
		return;
	if (!strcmp(h.state, "disabled")) {
		snprintf(buf, len, "host %s is disabled", host);
		return;
	}
	if (h.last_heartbeat && ps_cat_now() - h.last_heartbeat < 600LL * 1000000)
		snprintf(age, sizeof(age), "%.0f s ago",
			 (double)(ps_cat_now() - h.last_heartbeat) / 1e6);
	else if (h.last_heartbeat)
		ps_format_age(h.last_heartbeat * 1000, ps_cat_now() * 1000, age, sizeof(age));
	snprintf(buf, len, "host %s's agent is not running or not answering (last heartbeat %s)", host,
		 h.last_heartbeat ? age : "never");
}

static void print_op_json(struct ps_catalog *cat, const struct ps_cat_op *op, const char *note)
{
	struct ps_cat_project p;
	struct ps_cat_host h;
	struct ps_error err;
	char path[1200] = "";
	json_t *proj = json_null();
	ps_error_clear(&err);
	if (ps_cat_project_get(cat, op->project, &p, &err) == PS_OK) {
		json_decref(proj);
		proj = ps_cat_project_json(&p, ps_cat_now());
		if (p.host[0] && ps_cat_host_get(cat, p.host, &h, &err) == PS_OK)
			snprintf(path, sizeof(path), "%s/%s", h.root, p.id);
	}
	cli_print_json(json_pack("{s:o, s:o, s:o, s:o}", "operation", ps_cat_op_json(op), "project",
				 proj ? proj : json_null(), "path",
				 path[0] ? json_string(path) : json_null(), "note",
				 note && *note ? json_string(note) : json_null()));
}

struct waitline {
	int tty;
	int drawn;
	int64_t last;
};

static void draw(struct waitline *w, const struct ps_cat_op *op)
{
	char a[32], b[32];
	int64_t now = mono_ms();
	if (!w->tty || now - w->last < 200)
		return;
	w->last = now;
	if (op->bytes_total > 0) {
		ps_format_size((uint64_t)op->bytes_done, a, sizeof(a));
		ps_format_size((uint64_t)op->bytes_total, b, sizeof(b));
		int pct = (int)(op->bytes_done * 100 / op->bytes_total);
		fprintf(stderr, "\r\033[K%s %s on %s: %s (%s/%s, %d%%)", op->kind, op->project, op->host,
			op->phase, a, b, pct > 100 ? 100 : pct);
	} else {
		fprintf(stderr, "\r\033[K%s %s on %s: %s", op->kind, op->project, op->host[0] ? op->host : "?",
			op->phase);
	}
	w->drawn = 1;
}

static void undraw(struct waitline *w)
{
	if (w->drawn)
		fprintf(stderr, "\r\033[K");
	w->drawn = 0;
}

/* polls until the operation ends or the timeout (seconds, < 0 = none) */
static int wait_op(struct cli *cli, struct ps_catalog *cat, struct ps_cat_op *op, double timeout)
{
	struct waitline w = { isatty(2) && !getenv("PROJSTORE_NO_PROGRESS"), 0, 0 };
	struct ps_error err;
	int64_t start = mono_ms(), last_check = 0;
	char down[PS_CAT_TEXT_MAX] = "", told[PS_CAT_ID_MAX + 1] = "";
	for (;;) {
		ps_error_clear(&err);
		if (ps_cat_op_get(cat, op->id, op, &err) != PS_OK) {
			undraw(&w);
			return cli_fail(&err);
		}
		if (!strcmp(op->state, "done") || !strcmp(op->state, "failed"))
			break;
		int64_t now = mono_ms();
		if (now - last_check >= 1000) {
			/* is the host that has to act answering? said once per host */
			last_check = now;
			host_state(cat, op->host, down, sizeof(down));
			if (down[0] && strcmp(told, op->host) && !cli->json) {
				undraw(&w);
				fprintf(stderr, "projstore: %s; operation %" PRId64 " waits for it\n", down,
					op->id);
				snprintf(told, sizeof(told), "%s", op->host);
			}
		}
		if (timeout >= 0 && (double)(now - start) / 1000.0 >= timeout) {
			char msg[PS_CAT_TEXT_MAX * 2];
			undraw(&w);
			host_state(cat, op->host, down, sizeof(down));
			if (down[0])
				snprintf(msg, sizeof(msg),
					 "timed out after %g s: %s; operation %" PRId64 " (%s %s) stays queued "
					 "and runs when it answers",
					 timeout, down, op->id, op->kind, op->project);
			else
				snprintf(msg, sizeof(msg),
					 "timed out after %g s: operation %" PRId64 " (%s %s) is still %s on host "
					 "%s (%s); it goes on",
					 timeout, op->id, op->kind, op->project, op->state, op->host, op->phase);
			if (cli->json)
				print_op_json(cat, op, msg);
			cli_error("%s", msg);
			return EXIT_TIMEOUT;
		}
		draw(&w, op);
		usleep(100000);
	}
	undraw(&w);
	if (cli->json)
		print_op_json(cat, op, NULL);
	if (!strcmp(op->state, "failed")) {
		cli_error("%s %s failed: %s", op->kind, op->project, op->result);
		return EXIT_FAIL;
	}
	if (!cli->json)
		printf("%s\n", op->result[0] ? op->result : "done");
	return EXIT_OK;
}

/* an active open/close/move of the project, described, or 0 */
static int active_op_text(struct ps_catalog *cat, const char *project, char *buf, size_t len)
{
	struct ps_cat_op *ops = NULL;
	size_t n = 0;
	struct ps_error err;
	int found = 0;
	ps_error_clear(&err);
	if (ps_cat_ops_for_project(cat, project, 20, &ops, &n, &err) != PS_OK)
		return 0;
	for (size_t i = 0; i < n && !found; i++) {
		if (!strcmp(ops[i].kind, "save") ||
		    (strcmp(ops[i].state, "pending") && strcmp(ops[i].state, "running")))
			continue;
		snprintf(buf, len, "operation %" PRId64 " (%s%s%s, requested by %s) is in progress: %s",
			 ops[i].id, ops[i].kind, ops[i].target_host[0] ? " to " : "", ops[i].target_host,
			 ops[i].requested_by[0] ? ops[i].requested_by : "?", ops[i].phase);
		found = 1;
	}
	free(ops);
	return found;
}

int cli_request(struct cli *cli, const char *kind, const char *project, const char *target,
		int wait, double timeout)
{
	return cli_request_opts(cli, kind, project, target, NULL, wait, timeout);
}

int cli_request_opts(struct cli *cli, const char *kind, const char *project, const char *target,
		     const char *options, int wait, double timeout)
{
	struct ps_catalog *cat = NULL;
	struct ps_cat_op op;
	struct ps_cat_project p;
	struct ps_error err;
	char down[PS_CAT_TEXT_MAX], busy[PS_CAT_TEXT_MAX];
	int rc;

	if ((rc = cli_open_catalog(cli, &cat)))
		return rc;
	ps_error_clear(&err);
	if (!strcmp(kind, "close") || !strcmp(kind, "save")) {
		rc = ps_cat_project_get(cat, project, &p, &err);
		if (rc == PS_ENOTFOUND || (rc == PS_OK && !p.host[0])) {
			cli_error("project %s is not deployed%s", project,
				  rc == PS_ENOTFOUND ? " (not in the catalog)" : "");
			rc = EXIT_NOTFOUND;
			goto out;
		}
	}
	rc = ps_cat_request_opts(cat, kind, project, target, cli_actor(), options, &op, &err);
	if (rc == PS_ELOCKED || rc == PS_EEXISTS) {
		if (active_op_text(cat, project, busy, sizeof(busy))) {
			cli_error("project %s: %s; try again when it has ended", project, busy);
			rc = EXIT_CONFLICT;
		} else {
			cli_error("%s", err.msg);
			rc = rc == PS_EEXISTS ? EXIT_CONFLICT : EXIT_LOCKED;
		}
		goto out;
	}
	if (rc == PS_ENOTFOUND) {
		cli_error("%s", err.msg);
		rc = EXIT_NOTFOUND;
		goto out;
	}
	if (rc) {
		cli_error("%s", err.msg);
		rc = EXIT_FAIL;
		goto out;
	}
	if (!strcmp(op.state, "done")) {
		/* already where it was asked to be */
		host_state(cat, op.host, down, sizeof(down));
		if (cli->json)
			print_op_json(cat, &op, down);
		else
			printf("%s\n", op.result);
		if (down[0]) {
			cli_error("%s: 'projstore move %s --to HOST' deploys it elsewhere from the store",
				  down, project);
			rc = EXIT_TIMEOUT;
		} else {
			rc = EXIT_OK;
		}
		goto out;
	}
	if (!wait) {
		host_state(cat, op.host, down, sizeof(down));
		if (cli->json) {
			print_op_json(cat, &op, down);
		} else {
			printf("%s %s: queued for host %s (operation %" PRId64 ")\n", kind, project, op.host,
			       op.id);
			if (down[0])
				cli_error("warning: %s; the operation waits for it", down);
		}
		rc = EXIT_OK;
		goto out;
	}
	rc = wait_op(cli, cat, &op, timeout);
out:
	ps_catalog_close(cat);
	return rc;
}

/* ------------------------------------------------------------ save PROJECT */

/*
 * `save PROJECT [--wait]` (one argument) is a request to the host where the
 * project runs; `save PROJECT DIR` stays the direct save.  Tells them apart
 * before cmd_save parses its options: one positional argument, the values of
 * save's options not counted.
 */
int cli_save_is_request(int argc, char **argv)
{
	static const char *const with_value[] = { "--uid", "--gid", "--compression", "--exclude",
						  "--lock-timeout", "--cache-dir", "--threads",
						  "--store", "--catalog", "--timeout", NULL };
	int positional = 0;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!strcmp(s, "--")) {
			positional += argc - i - 1;
			break;
		}
		if (!strcmp(s, "--wait"))
			return 1;
		if (s[0] == '-' && s[1]) {
			for (const char *const *w = with_value; *w; w++)
				if (!strcmp(s, *w)) {
					i++;
					break;
				}
			continue;
		}
		positional++;
	}
	return positional == 1;
}

int cmd_save_request(struct cli *cli, int argc, char **argv)
{
	enum { O_WAIT = 1, O_TIMEOUT };
	static const struct option lo[] = {
		{ "wait", no_argument, NULL, O_WAIT },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = cli_find("save");
	double timeout = -1;
	int wait = 0, c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_WAIT: wait = 1; break;
		case O_TIMEOUT:
			if (cli_parse_timeout(optarg, &timeout))
				return cli_usage(cmd, "invalid timeout '%s' (seconds)", optarg);
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage(cmd, "save PROJECT [--wait] asks the project's host to save it; "
				      "save PROJECT DIR saves DIR directly");
	if (timeout >= 0 && !wait)
		return cli_usage(cmd, "--timeout goes with --wait");
	if ((rc = cli_check_project(cmd, argv[optind])))
		return rc;
	if (!cli_catalog_configured(cli))
		return cli_usage(cmd, "no catalog is configured: 'save PROJECT' asks the host where PROJECT "
				      "runs to save it (see --catalog); to save a directory: save PROJECT DIR");
	return cli_request(cli, "save", argv[optind], NULL, wait, timeout);
}

int cli_parse_timeout(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || v < 0 || v > 1e7)
		return -1;
	*out = v;
	return 0;
}
