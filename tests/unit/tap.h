/*
 * tap.h - a tiny Test Anything Protocol producer for the unit tests.
 *
 *   plan(n);                        optional: announce n tests up front
 *   ok(cond, fmt, ...)              one test; returns cond
 *   is_int(got, want, fmt, ...)     integers (compared as long long)
 *   is_str(got, want, fmt, ...)     strings (NULL-safe)
 *   is_mem(got, want, n, fmt, ...)  byte ranges
 *   diag(fmt, ...)                  a "# ..." comment line
 *   todo_start(why) / todo_end()    tests in between are "# TODO why": a
 *                                   failure there documents a known bug and
 *                                   does not fail the program
 *   skip(n, why)                    n tests reported as skipped
 *   return done_testing();          prints "1..N" (if no plan), "# time: X s"
 *                                   and returns the exit status (non-zero
 *                                   when a test failed or the plan was wrong)
 *
 * Header only: every function is static inline, so a test program includes
 * it once and links nothing.
 */
#ifndef PS_TAP_H
#define PS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAP_PRINTF(a, b) __attribute__((format(printf, a, b)))

struct tap_state {
	int run, failed, planned;
	const char *todo;
	struct timespec t0;
};

static struct tap_state tap_st __attribute__((unused)) = { 0, 0, -1, NULL, { 0, 0 } };

__attribute__((constructor)) static void tap_start_clock(void)
{
	clock_gettime(CLOCK_MONOTONIC, &tap_st.t0);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static inline double tap_elapsed(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - tap_st.t0.tv_sec) + (double)(t.tv_nsec - tap_st.t0.tv_nsec) / 1e9;
}

static inline void plan(int n)
{
	tap_st.planned = n;
	printf("1..%d\n", n);
}

static inline void diag(const char *fmt, ...) TAP_PRINTF(1, 2);
static inline void diag(const char *fmt, ...)
{
	va_list ap;
	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

static inline void todo_start(const char *why) { tap_st.todo = why; }
static inline void todo_end(void) { tap_st.todo = NULL; }

static inline int tap_vok(int cond, const char *file, int line, const char *fmt, va_list ap)
{
	tap_st.run++;
	printf("%sok %d - ", cond ? "" : "not ", tap_st.run);
	vprintf(fmt, ap);
	if (tap_st.todo)
		printf(" # TODO %s", tap_st.todo);
	fputc('\n', stdout);
	if (!cond) {
		printf("#   Failed %stest at %s line %d.\n", tap_st.todo ? "(TODO) " : "", file, line);
		if (!tap_st.todo)
			tap_st.failed++;
	}
	return cond;
}

static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
	TAP_PRINTF(4, 5);
static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int r;
	va_start(ap, fmt);
	r = tap_vok(cond, file, line, fmt, ap);
	va_end(ap);
	return r;
}

static inline int tap_is_int(long long got, long long want, const char *file, int line,
			     const char *fmt, ...) TAP_PRINTF(5, 6);
static inline int tap_is_int(long long got, long long want, const char *file, int line,
			     const char *fmt, ...)
{
	va_list ap;
	int r;
	va_start(ap, fmt);
	r = tap_vok(got == want, file, line, fmt, ap);
	va_end(ap);
	if (!r) {
		printf("#          got: %lld\n", got);
		printf("#     expected: %lld\n", want);
	}
	return r;
}

static inline int tap_is_str(const char *got, const char *want, const char *file, int line,
			     const char *fmt, ...) TAP_PRINTF(5, 6);
static inline int tap_is_str(const char *got, const char *want, const char *file, int line,
			     const char *fmt, ...)
{
	va_list ap;
	int r, same = (!got && !want) || (got && want && !strcmp(got, want));
	va_start(ap, fmt);
	r = tap_vok(same, file, line, fmt, ap);
	va_end(ap);
	if (!r) {
		printf("#          got: %s%s%s\n", got ? "'" : "", got ? got : "NULL", got ? "'" : "");
		printf("#     expected: %s%s%s\n", want ? "'" : "", want ? want : "NULL", want ? "'" : "");
	}
	return r;
}

static inline int tap_is_mem(const void *got, const void *want, size_t n, const char *file,
			     int line, const char *fmt, ...) TAP_PRINTF(6, 7);
static inline int tap_is_mem(const void *got, const void *want, size_t n, const char *file,
			     int line, const char *fmt, ...)
{
	va_list ap;
	int r, same = got && want && !memcmp(got, want, n);
	va_start(ap, fmt);
	r = tap_vok(same, file, line, fmt, ap);
	va_end(ap);
	if (!r && got && want) {
		for (size_t i = 0; i < n; i++)
			if (((const unsigned char *)got)[i] != ((const unsigned char *)want)[i]) {
				printf("#     first difference at byte %zu: got 0x%02x, expected 0x%02x\n", i,
				       ((const unsigned char *)got)[i], ((const unsigned char *)want)[i]);
				break;
			}
	}
	return r;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) \
	tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define is_mem(got, want, n, ...) tap_is_mem((got), (want), (n), __FILE__, __LINE__, __VA_ARGS__)

static inline void skip(int n, const char *why)
{
	for (int i = 0; i < n; i++)
		printf("ok %d # SKIP %s\n", ++tap_st.run, why);
}

/* Prints the plan (unless given up front) and the time taken; returns the
 * exit status for main(). */
static inline int done_testing(void)
{
	if (tap_st.planned < 0)
		printf("1..%d\n", tap_st.run);
	printf("# time: %.3f s\n", tap_elapsed());
	if (tap_st.planned >= 0 && tap_st.planned != tap_st.run) {
		printf("# planned %d tests but ran %d\n", tap_st.planned, tap_st.run);
		return 255;
	}
	if (tap_st.failed) {
		printf("# failed %d of %d tests\n", tap_st.failed, tap_st.run);
		return tap_st.failed < 254 ? tap_st.failed : 254;
	}
	fflush(stdout);
	return 0;
}

/* Aborts the program with a "Bail out!" (for a fixture that cannot be set up). */
static inline void bail_out(const char *why)
{
	printf("Bail out! %s\n", why);
	exit(255);
}

#endif
