/*
 * cmd_run.c - projstore run PROJECT [--] COMMAND [ARG...]: runs a command in
 * the project's sandbox on the host where it is deployed, as the project's
 * user, and exits as the command did (its exit code, or the same signal).
 * projstore's own failures exit 125 (126: cannot execute, 127: not found),
 * as env(1) and timeout(1) do, so that they never look like the command's.
 */
#define _GNU_SOURCE
#include "cli_host.h"
#include "projstore_catalog.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_RUN_FAIL 125

/*
 * Whether the catalog lets a command start in the project's sandbox on
 * `host`: not while it is being deployed, closed or moved (a close or move
 * stops every process of the project before its save, and nothing may start
 * again after that stop), and not on a host other than the one the catalog
 * places it on.  A project the catalog places nowhere (status stored) runs
 * where --host/--root says: prepared there by hand (`hosting prepare`, hosts
 * without an agent).  0, or 1 with the reason in why.
 */
static int run_refused(const struct ps_cat_project *cp, const char *host, char *why, size_t wl)
{
	static const char *const busy[][2] = { { "deploying", "being deployed" },
					       { "closing", "being closed" },
					       { "moving", "being moved" } };
	for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++)
		if (!strcmp(cp->status, busy[i][0])) {
			snprintf(why, wl,
				 "project %s is %s (status %s): nothing of it may start now; run refused",
				 cp->id, busy[i][1], cp->status);
			return 1;
		}
	if (cp->host[0] && host[0] && strcmp(cp->host, host)) {
		snprintf(why, wl, "project %s is deployed on %s, not on %s: run refused", cp->id,
			 cp->host, host);
		return 1;
	}
	return 0;
}

struct admit_ctx {
	struct ps_catalog *cat;
	const char *id;
	const char *host;
};

/* the second look at the catalog, once the sandbox runs (ps_host_run_opts) */
static int admit_again(void *ctx, struct ps_error *err)
{
	struct admit_ctx *ac = ctx;
	struct ps_cat_project cp;
	char why[PS_CAT_TEXT_MAX + 200];
	int rc = ps_cat_project_get(ac->cat, ac->id, &cp, err);
	ps_catalog_close(ac->cat);
	ac->cat = NULL;
	if (rc != PS_OK)
		return rc;
	if (run_refused(&cp, ac->host, why, sizeof(why))) {
		snprintf(err->msg, sizeof(err->msg), "%s", why);
		return err->code = PS_ELOCKED;
	}
	return PS_OK;
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
	enum { O_ROOT = 1000, O_HOST, O_CWD, O_ENV };
	static const struct option lo[] = { CLI_COMMON_LONGOPTS,
					    { "root", required_argument, NULL, O_ROOT },
					    { "host", required_argument, NULL, O_HOST },
					    { "cwd", required_argument, NULL, O_CWD },
					    { "env", required_argument, NULL, O_ENV },
					    { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("run");
	struct cli_host_opts ho = { NULL, NULL };
	struct ps_host_run_opts ro = PS_HOST_RUN_OPTS_INIT;
	char *envv[65];
	int nenv = 0, c, rc;
	const char *id = NULL;
	optind = 1;
	/* options may stand before and after PROJECT; the first word after
	 * PROJECT that is not one starts COMMAND */
	for (int pass = 0; pass < 2; pass++) {
	if (pass == 1) {
		if (optind >= argc || !strcmp(argv[optind], "--"))
			break;
		id = argv[optind++];
	}
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case O_ROOT:
			ho.root = optarg;
			break;
		case O_HOST:
			ho.host = optarg;
			break;
		case O_CWD:
			ro.cwd = optarg;
			break;
		case O_ENV:
			if (!strchr(optarg, '=') || optarg[0] == '=' || nenv >= 64) {
				cli_usage(cmd, "--env takes NAME=VALUE (at most 64)");
				return EXIT_RUN_FAIL;
			}
			envv[nenv++] = optarg;
			break;
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_RUN_FAIL;
		}
	}
	}
	envv[nenv] = NULL;
	if (nenv)
		ro.env = envv;
	if (!id) {
		cli_usage(cmd, "expected PROJECT COMMAND [ARG...]");
		return EXIT_RUN_FAIL;
	}
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc) {
		cli_usage(cmd, "expected a COMMAND after PROJECT");
		return EXIT_RUN_FAIL;
	}
	if (cli_check_project(cmd, id))
		return EXIT_RUN_FAIL;
	if (geteuid() != 0) {
		cli_error("run needs root (it makes namespaces and changes to the project's user)");
		return EXIT_RUN_FAIL;
	}
	struct ps_catalog *cat;
	if ((rc = cli_open_catalog(cli, &cat)))
		return EXIT_RUN_FAIL;
	struct cli_host h;
	char why[PS_CAT_TEXT_MAX + 200];
	rc = cli_host_load(cat, id, &ho, 0, &h);
	if (rc == 0 && run_refused(&h.cp, h.host, why, sizeof(why))) {
		cli_error("%s", why);
		rc = EXIT_RUN_FAIL;
	}
	if (rc == 0 && h.p.uid < 0) {
		cli_error("project %s has no user on this host: it was not deployed with hosting", id);
		rc = EXIT_RUN_FAIL;
	}
	if (rc) {
		ps_catalog_close(cat);
		return EXIT_RUN_FAIL;
	}
	struct admit_ctx ac = { cat, id, h.host };
	ro.admit = admit_again;
	ro.admit_ctx = &ac;
	struct ps_error err;
	int ws = 0;
	ps_error_clear(&err);
	rc = ps_hosting_run(&h.cfg, &h.p, argv + optind, &ro, &ws, &err);
	if (ac.cat)
		ps_catalog_close(ac.cat); /* not reached admit_again */
	if (rc != PS_OK) {
		cli_error("%s", err.msg);
		if (WIFEXITED(ws) && (WEXITSTATUS(ws) == 126 || WEXITSTATUS(ws) == 127))
			return WEXITSTATUS(ws);
		return EXIT_RUN_FAIL;
	}
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws)) {
		int sig = WTERMSIG(ws);
		/* die the same way, without a core file of our own */
		struct rlimit no = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no);
		fflush(stdout);
		signal(sig, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, sig);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		raise(sig);
		return 128 + sig;
	}
	return EXIT_RUN_FAIL;
}
