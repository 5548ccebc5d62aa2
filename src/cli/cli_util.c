/*
 * cli_util.c - helpers shared by the commands: errors and exit codes, store
 * opening, argument checks, JSON output and the progress line.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("projstore: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_exit_code(int code)
{
	switch (code) {
	case PS_OK: return EXIT_OK;
	case PS_EINVAL: return EXIT_USAGE;
	case PS_ELOCKED: return EXIT_LOCKED;
	case PS_ENOTFOUND: return EXIT_NOTFOUND;
	case PS_ECORRUPT:
	case PS_EHOSTILE: return EXIT_DAMAGED;
	default: return EXIT_FAIL;
	}
}

int cli_fail(const struct ps_error *err)
{
	cli_error("%s", err->msg[0] ? err->msg : "failed");
	return cli_exit_code(err->code);
}

void cli_help(const struct command *cmd, FILE *f)
{
	fprintf(f, "usage: projstore %s\n\n%s", cmd->usage, cmd->help);
	fprintf(f, "Global: --store STORE (else $PROJSTORE_STORE, else ./projstore-data). "
		   "Exit codes: docs/CLI.md.\n");
}

int cli_usage(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;
	fputs("projstore: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: projstore %s\n", cmd->usage);
	return EXIT_USAGE;
}

const struct command *cli_find(const char *name)
{
	for (const struct command *c = ps_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

int cli_open_store(struct cli *cli, struct ps_store **out)
{
	struct ps_error err;
	ps_error_clear(&err);
	if (ps_store_open(out, cli->store, &err))
		return cli_fail(&err) == EXIT_NOTFOUND ? EXIT_FAIL : cli_exit_code(err.code);
	return 0;
}

int cli_check_project(const struct command *cmd, const char *id)
{
	if (!ps_project_id_valid(id))
		return cli_usage(cmd, "invalid project id '%s': expected [a-z0-9][a-z0-9._-]{0,63} "
				      "(lower case, e.g. a UUID)", id);
	return 0;
}

int cli_split_ref(const struct command *cmd, const char *arg, char *project, size_t plen,
		  const char **snap)
{
	const char *at = strchr(arg, '@');
	size_t n = at ? (size_t)(at - arg) : strlen(arg);
	if (n >= plen) {
		return cli_usage(cmd, "invalid project id '%s'", arg);
	}
	memcpy(project, arg, n);
	project[n] = 0;
	*snap = at ? at + 1 : NULL;
	if (at && !at[1])
		return cli_usage(cmd, "empty snapshot name in '%s'", arg);
	return cli_check_project(cmd, project);
}

int cli_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* ------------------------------------------------------------ JSON */

json_t *cli_json_bytes(const char *p, size_t n)
{
	json_t *j = json_stringn(p, n);
	char *buf;
	size_t k = 0;
	if (j)
		return j;
	/* invalid UTF-8: escape bytes >= 0x80 as \xHH */
	buf = malloc(n * 4 + 1);
	if (!buf)
		return json_null();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x80 || c == '\\') {
			k += (size_t)sprintf(buf + k, "\\x%02x", c);
		} else {
			buf[k++] = (char)c;
		}
	}
	j = json_stringn(buf, k);
	free(buf);
	return j ? j : json_null();
}

void cli_print_escaped(FILE *f, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

json_t *cli_snapshot_json(const struct ps_snapshot_info *si, int64_t now)
{
	char t[64], age[64], root[65];
	ps_format_age(si->time_ns, now, age, sizeof(age));
	{
		time_t s = (time_t)(si->time_ns / 1000000000LL);
		struct tm tm;
		gmtime_r(&s, &tm);
		snprintf(t, sizeof(t), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (long long)((si->time_ns % 1000000000LL) / 1000));
	}
	ps_id_hex(si->root, root);
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:I, s:I, s:o, s:b, s:I}",
			 "project", si->project, "name", si->name, "time", t, "time_ns",
			 (json_int_t)si->time_ns, "age", age, "root", root, "parent",
			 si->parent[0] ? json_string(si->parent) : json_null(), "origin", si->origin,
			 "files", (json_int_t)si->files, "dirs", (json_int_t)si->dirs, "others",
			 (json_int_t)si->others, "logical_bytes", (json_int_t)si->logical_bytes,
			 "apparent_bytes", (json_int_t)si->apparent_bytes, "new_objects",
			 (json_int_t)si->new_objects, "new_raw_bytes", (json_int_t)si->new_raw_bytes,
			 "new_bytes", (json_int_t)si->new_bytes, "errors", (json_int_t)si->errors,
			 "quota_bytes",
			 si->quota_bytes ? json_integer((json_int_t)si->quota_bytes) : json_null(),
			 "over_quota", si->over_quota, "duration_ms", (json_int_t)si->duration_ms);
}

void cli_print_json(json_t *j)
{
	if (!j) {
		cli_error("cannot build JSON output");
		return;
	}
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	fputc('\n', stdout);
	json_decref(j);
}

/* ------------------------------------------------------------ progress */

void cli_progress_init(struct cli_progress *p)
{
	memset(p, 0, sizeof(*p));
	p->enabled = isatty(2) && !getenv("PROJSTORE_NO_PROGRESS");
}

void cli_progress_cb(void *ctx, const char *phase, uint64_t fd, uint64_t ft, uint64_t bd,
		     uint64_t bt)
{
	struct cli_progress *p = ctx;
	struct timespec ts;
	int64_t now;
	char a[32], b[32];
	if (!p || !p->enabled)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (now - p->last < 200)
		return;
	p->last = now;
	ps_format_size(bd, a, sizeof(a));
	ps_format_size(bt, b, sizeof(b));
	if (bt)
		fprintf(stderr, "\r\033[K%s: %llu/%llu files, %s/%s (%d%%)", phase,
			(unsigned long long)fd, (unsigned long long)ft, a, b,
			(int)(bt ? (bd * 100 / bt > 100 ? 100 : bd * 100 / bt) : 0));
	else
		fprintf(stderr, "\r\033[K%s: %llu/%llu", phase, (unsigned long long)fd,
			(unsigned long long)ft);
	p->drawn = 1;
}

void cli_progress_done(struct cli_progress *p)
{
	if (p->drawn)
		fprintf(stderr, "\r\033[K");
	p->drawn = 0;
}

int cli_common_opt(struct cli *cli, const struct command *cmd, int c, const char *arg)
{
	switch (c) {
	case 'J':
		cli->json = 1;
		return 1;
	case 'S':
		cli->store = arg;
		return 1;
	case 'K':
		cli->catalog = arg;
		return 1;
	case 'h':
		cli_help(cmd, stdout);
		exit(0);
	default:
		cli_help(cmd, stderr);
		return -1;
	}
}

const char *cli_api_url(const struct cli *cli, const char *given)
{
	const char *env = getenv("PROJSTORE_API");
	if (given && *given)
		return given;
	return env && *env && !cli->catalog ? env : NULL;
}
