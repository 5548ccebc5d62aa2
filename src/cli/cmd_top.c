/*
 * cmd_top.c - projstore top [--host NAME] [--json]: CPU, memory, I/O,
 * processes and disk per project.  Without --host it reads this machine's
 * cgroup counters (two samples --interval apart give the CPU share); with
 * --host it shows what that host's agent last reported to the catalog.
 */
#define _GNU_SOURCE
#include "cli_host.h"
#include "projstore_catalog.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct row {
	char id[PS_CAT_ID_MAX + 1];
	char user[PS_HOST_USER_MAX + 1];
	struct ps_host_usage u;
	double cpu_pct;   /* < 0 = unknown */
	int64_t at;       /* catalog: when measured */
};

static void fmt_size(int64_t v, char *buf, size_t len)
{
	if (v < 0)
		snprintf(buf, len, "-");
	else
		ps_format_size((uint64_t)v, buf, len);
}

static json_t *jnum(int64_t v)
{
	return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

static void print_rows(struct cli *cli, const char *host, const char *source, struct row *r,
		       size_t n)
{
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_pack(
				"{s:s, s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "project",
				r[i].id, "user", r[i].user, "processes", r[i].u.running, "cpu_percent",
				r[i].cpu_pct >= 0 ? json_real(r[i].cpu_pct) : json_null(), "cpu_seconds",
				r[i].u.cpu_usec >= 0 ? json_real((double)r[i].u.cpu_usec / 1e6) : json_null(),
				"memory_bytes", jnum(r[i].u.memory_bytes), "memory_peak_bytes",
				jnum(r[i].u.memory_peak), "io_bytes", jnum(r[i].u.io_bytes), "tasks",
				jnum(r[i].u.pids), "disk_bytes", jnum(r[i].u.disk_bytes), "oom_kills",
				jnum(r[i].u.oom_kills));
			if (r[i].at)
				json_object_set_new(o, "measured_at_us", json_integer((json_int_t)r[i].at));
			json_array_append_new(a, o);
		}
		cli_print_json(json_pack("{s:o, s:s, s:o}", "host", host ? json_string(host) : json_null(),
					 "source", source, "projects", a));
		return;
	}
	printf("%-36s %6s %9s %9s %9s %9s %6s %9s %4s\n", "PROJECT", "CPU%", "CPU-TIME", "MEMORY",
	       "PEAK", "IO", "TASKS", "DISK", "OOM");
	for (size_t i = 0; i < n; i++) {
		char pct[16], cpu[32], mem[16], peak[16], io[16], disk[16], tasks[24], oom[24];
		if (r[i].cpu_pct >= 0)
			snprintf(pct, sizeof(pct), "%.1f", r[i].cpu_pct);
		else
			snprintf(pct, sizeof(pct), "-");
		if (r[i].u.cpu_usec >= 0)
			snprintf(cpu, sizeof(cpu), "%.1fs", (double)r[i].u.cpu_usec / 1e6);
		else
			snprintf(cpu, sizeof(cpu), "-");
		fmt_size(r[i].u.memory_bytes, mem, sizeof(mem));
		fmt_size(r[i].u.memory_peak, peak, sizeof(peak));
		fmt_size(r[i].u.io_bytes, io, sizeof(io));
		fmt_size(r[i].u.disk_bytes, disk, sizeof(disk));
		snprintf(tasks, sizeof(tasks), "%" PRId64, r[i].u.pids);
		if (r[i].u.oom_kills >= 0)
			snprintf(oom, sizeof(oom), "%" PRId64, r[i].u.oom_kills);
		else
			snprintf(oom, sizeof(oom), "-");
		printf("%-36s %6s %9s %9s %9s %9s %6s %9s %4s\n", r[i].id, pct, cpu, mem, peak, io, tasks,
		       disk, oom);
	}
}

static int from_catalog(struct cli *cli, const char *host)
{
	struct ps_catalog *cat;
	int rc;
	if ((rc = cli_open_catalog(cli, &cat)))
		return rc;
	struct ps_error err;
	struct ps_cat_usage *u = NULL;
	size_t n = 0;
	ps_error_clear(&err);
	rc = ps_cat_usage_list(cat, host, &u, &n, &err);
	ps_catalog_close(cat);
	if (rc != PS_OK)
		return cli_fail(&err);
	struct row *r = calloc(n ? n : 1, sizeof(*r));
	if (!r) {
		free(u);
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(r[i].id, sizeof(r[i].id), "%s", u[i].project);
		ps_host_user_name(u[i].project, r[i].user, sizeof(r[i].user), NULL);
		r[i].u = u[i].u;
		r[i].cpu_pct = -1;
		r[i].at = u[i].at;
	}
	print_rows(cli, host, "catalog", r, n);
	free(r);
	free(u);
	return 0;
}

int cmd_top(struct cli *cli, int argc, char **argv)
{
	enum { O_HOST = 1000, O_INTERVAL, O_ROOT };
	static const struct option lo[] = { CLI_COMMON_LONGOPTS,
					    { "host", required_argument, NULL, O_HOST },
					    { "interval", required_argument, NULL, O_INTERVAL },
					    { "root", required_argument, NULL, O_ROOT },
					    { NULL, 0, NULL, 0 } };
	const struct command *cmd = cli_find("top");
	const char *host = NULL, *root = NULL;
	double interval = 1.0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_HOST:
			host = optarg;
			break;
		case O_ROOT:
			root = optarg;
			break;
		case O_INTERVAL: {
			char *end;
			interval = strtod(optarg, &end);
			if (end == optarg || *end || interval < 0 || interval > 60)
				return cli_usage(cmd, "invalid --interval '%s' (0-60 seconds)", optarg);
			break;
		}
		default:
			if (cli_common_opt(cli, cmd, c, optarg) < 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 0)
		return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (host)
		return from_catalog(cli, host);

	/* this machine's cgroups */
	struct ps_host_config cfg = PS_HOST_CONFIG_INIT;
	struct ps_error err;
	char **names = NULL;
	size_t n = 0;
	ps_error_clear(&err);
	cfg.root = root ? root : "/nonexistent";
	if (ps_hosting_list(&cfg, &names, &n, &err) != PS_OK)
		return cli_fail(&err);
	struct ps_catalog *cat = root ? NULL : cli_catalog_if_configured(cli);
	struct row *r = calloc(n ? n : 1, sizeof(*r));
	size_t k = 0;
	double t0 = mono_s();
	for (size_t i = 0; r && i < n; i++) {
		struct row *w = &r[k];
		snprintf(w->user, sizeof(w->user), "%s", names[i]);
		if (ps_host_user_project(names[i], w->id, sizeof(w->id), NULL) != PS_OK)
			continue; /* not a project's cgroup */
		struct ps_host_config pc = cfg;
		struct ps_cat_project p;
		struct ps_cat_host ch;
		if (cat && ps_cat_project_get(cat, w->id, &p, NULL) == PS_OK && p.host[0] &&
		    ps_cat_host_get(cat, p.host, &ch, NULL) == PS_OK)
			pc.root = ch.root;
		if (ps_hosting_usage(&pc, w->id, &w->u, NULL) != PS_OK)
			continue;
		w->cpu_pct = -1;
		w->at = 0;
		k++;
	}
	if (interval > 0 && k) {
		struct timespec d = { (time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9) };
		while (nanosleep(&d, &d) != 0)
			;
		double el = mono_s() - t0;
		for (size_t i = 0; i < k; i++) {
			struct ps_host_usage u2;
			struct ps_host_config pc = cfg;
			struct ps_cat_project p;
			struct ps_cat_host ch;
			if (cat && ps_cat_project_get(cat, r[i].id, &p, NULL) == PS_OK && p.host[0] &&
			    ps_cat_host_get(cat, p.host, &ch, NULL) == PS_OK)
				pc.root = ch.root;
			if (ps_hosting_usage(&pc, r[i].id, &u2, NULL) == PS_OK && u2.cpu_usec >= 0 &&
			    r[i].u.cpu_usec >= 0) {
				r[i].cpu_pct = (double)(u2.cpu_usec - r[i].u.cpu_usec) / 1e4 / el;
				if (r[i].cpu_pct < 0)
					r[i].cpu_pct = 0;
				r[i].u = u2;
			}
		}
	}
	if (cat)
		ps_catalog_close(cat);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (!r) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	print_rows(cli, NULL, "cgroups", r, k);
	free(r);
	return 0;
}
