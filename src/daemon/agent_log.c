/*
 * agent_log.c - the agent's log and small helpers.
 *
 * One line per event: "2026-11-25T09:45:12.123Z message".  With a log file
 * the file is rotated by size: when a line would take it past `max` bytes,
 * FILE.(keep-1) becomes FILE.keep (the oldest is dropped), ..., FILE becomes
 * FILE.1 and a new FILE is started; so the log never takes more than about
 * (keep + 1) * max bytes.  SIGHUP reopens the file (for external rotation).
 * Without a file, lines go to stderr.
 */
#define _GNU_SOURCE
#include "agent_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t agent_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void agent_copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

int agent_err(struct ps_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		err->code = code;
		err->sys_errno = 0;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

int agent_err_sys(struct ps_error *err, const char *fmt, ...)
{
	int e = errno;
	if (err) {
		va_list ap;
		size_t n;
		err->code = PS_ERROR;
		err->sys_errno = e;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(e));
	}
	errno = e;
	return PS_ERROR;
}

static int open_file(struct agent_log *l)
{
	struct stat st;
	int fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	l->f = fdopen(fd, "a");
	if (!l->f) {
		close(fd);
		return -1;
	}
	setvbuf(l->f, NULL, _IOLBF, 0);
	l->size = fstat(fd, &st) == 0 ? (int64_t)st.st_size : 0;
	return 0;
}

int agent_log_open(struct agent_log *l, const char *path, int64_t max, int keep,
		   struct ps_error *err)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->max = max > 4096 ? max : 4096;
	l->keep = keep > 0 ? keep : 1;
	if (!path || !*path)
		return PS_OK;
	agent_copy(l->path, sizeof(l->path), path);
	if (open_file(l))
		return agent_err_sys(err, "cannot open log file '%s'", path);
	return PS_OK;
}

static void rotate(struct agent_log *l)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	fclose(l->f);
	l->f = NULL;
	for (int i = l->keep; i >= 1; i--) {
		if (i == 1)
			snprintf(from, sizeof(from), "%s", l->path);
		else
			snprintf(from, sizeof(from), "%s.%d", l->path, i - 1);
		snprintf(to, sizeof(to), "%s.%d", l->path, i);
		rename(from, to); /* a missing older file is fine */
	}
	if (open_file(l))
		l->f = NULL; /* falls back to stderr until the next reopen */
}

void agent_log_reopen(struct agent_log *l)
{
	pthread_mutex_lock(&l->lock);
	if (l->path[0]) {
		if (l->f)
			fclose(l->f);
		l->f = NULL;
		open_file(l);
	}
	pthread_mutex_unlock(&l->lock);
}

void agent_log_close(struct agent_log *l)
{
	pthread_mutex_lock(&l->lock);
	if (l->f)
		fclose(l->f);
	l->f = NULL;
	pthread_mutex_unlock(&l->lock);
	pthread_mutex_destroy(&l->lock);
}

void alog(struct agent *a, const char *fmt, ...)
{
	struct agent_log *l = &a->log;
	char line[2048], ts[40];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n, m;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ ", ts, now.tv_nsec / 1000000);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	/* one line per call, whatever the message holds */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	line[n] = 0;
	pthread_mutex_lock(&l->lock);
	if (l->f && l->size + n > l->max)
		rotate(l);
	if (l->f) {
		fputs(line, l->f);
		l->size += n;
	} else {
		fputs(line, stderr);
	}
	pthread_mutex_unlock(&l->lock);
}
