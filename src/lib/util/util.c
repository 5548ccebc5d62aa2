/*
 * util.c - errors, allocation wrapper, growable buffers, bounded readers,
 * hex, time, host facts and local file helpers.  See util.h.
 *
 * Invariants: a struct ps_buf never grows beyond its `max`; a struct ps_rd
 * never reads outside [p, end) and records an overrun in `bad` instead of
 * failing loudly, so parsers check `bad` once at the end of a record.
 */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ errors */

void ps_error_clear(struct ps_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->sys_errno = 0;
	err->msg[0] = '\0';
}

int ps_err(struct ps_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = code;
		err->sys_errno = 0;
	}
	return code;
}

int ps_err_sys(struct ps_error *err, const char *fmt, ...)
{
	int e = errno;
	if (err) {
		va_list ap;
		size_t n;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(e));
		err->code = PS_ERROR;
		err->sys_errno = e;
	}
	errno = e;
	return PS_ERROR;
}

int ps_err_prefix(struct ps_error *err, const char *fmt, ...)
{
	char pre[512], old[sizeof(err->msg)];
	va_list ap;
	if (!err)
		return PS_ERROR;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	{
		size_t pl = strnlen(pre, sizeof(err->msg) - 3);
		memcpy(err->msg, pre, pl);
		err->msg[pl] = ':';
		err->msg[pl + 1] = ' ';
		memcpy(err->msg + pl + 2, old, sizeof(err->msg) - pl - 3);
		err->msg[sizeof(err->msg) - 1] = '\0';
	}
	return err->code ? err->code : PS_ERROR;
}

/* ------------------------------------------------------------ memory */

static long fail_after;       /* 0 = off; guarded by atomics */

void ps_alloc_fail_after(long n) { __atomic_store_n(&fail_after, n, __ATOMIC_SEQ_CST); }

static int alloc_should_fail(void)
{
	long v = __atomic_load_n(&fail_after, __ATOMIC_RELAXED);
	if (v <= 0)
		return 0;
	if (__atomic_sub_fetch(&fail_after, 1, __ATOMIC_SEQ_CST) == 0)
		return 1;
	return 0;
}

void *ps_malloc(size_t n)
{
	if (alloc_should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *ps_calloc(size_t n, size_t sz)
{
	if (alloc_should_fail())
		return NULL;
	return calloc(n ? n : 1, sz ? sz : 1);
}

void *ps_realloc(void *p, size_t n)
{
	if (alloc_should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

char *ps_strdup(const char *s) { return s ? ps_strndup(s, strlen(s)) : NULL; }

char *ps_strndup(const char *s, size_t n)
{
	char *d = ps_malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void ps_free(void *p) { free(p); }

/* ------------------------------------------------------------ buffers */

int ps_buf_reserve(struct ps_buf *b, size_t extra)
{
	size_t max = b->max ? b->max : SIZE_MAX;
	size_t need, cap;
	uint8_t *d;
	if (extra > max || b->len > max - extra)
		return -1;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > max)
		cap = max;
	d = ps_realloc(b->data, cap);
	if (!d)
		return -1;
	b->data = d;
	b->cap = cap;
	return 0;
}

int ps_buf_append(struct ps_buf *b, const void *p, size_t n)
{
	if (ps_buf_reserve(b, n))
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int ps_buf_printf(struct ps_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || ps_buf_reserve(b, (size_t)n + 1))
		return -1;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int ps_buf_put_u8(struct ps_buf *b, uint8_t v) { return ps_buf_append(b, &v, 1); }
int ps_buf_put_u16(struct ps_buf *b, uint16_t v)
{
	uint8_t p[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	return ps_buf_append(b, p, 2);
}
int ps_buf_put_u32(struct ps_buf *b, uint32_t v)
{
	uint8_t p[4];
	ps_put_le32(p, v);
	return ps_buf_append(b, p, 4);
}
int ps_buf_put_u64(struct ps_buf *b, uint64_t v)
{
	uint8_t p[8];
	ps_put_le64(p, v);
	return ps_buf_append(b, p, 8);
}
int ps_buf_put_uvar(struct ps_buf *b, uint64_t v)
{
	uint8_t p[10];
	size_t n = 0;
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		p[n++] = c | (v ? 0x80 : 0);
	} while (v);
	return ps_buf_append(b, p, n);
}
int ps_buf_put_svar(struct ps_buf *b, int64_t v)
{
	return ps_buf_put_uvar(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
void ps_buf_release(struct ps_buf *b)
{
	ps_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
void ps_buf_reset(struct ps_buf *b) { b->len = 0; }

/* ------------------------------------------------------------ reader */

const uint8_t *ps_rd_bytes(struct ps_rd *r, size_t n)
{
	const uint8_t *p = r->p;
	if (r->bad || n > ps_rd_left(r)) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	return p;
}
uint8_t ps_rd_u8(struct ps_rd *r)
{
	const uint8_t *p = ps_rd_bytes(r, 1);
	return p ? p[0] : 0;
}
uint16_t ps_rd_u16(struct ps_rd *r)
{
	const uint8_t *p = ps_rd_bytes(r, 2);
	return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}
uint32_t ps_rd_u32(struct ps_rd *r)
{
	const uint8_t *p = ps_rd_bytes(r, 4);
	return p ? ps_get_le32(p) : 0;
}
uint64_t ps_rd_u64(struct ps_rd *r)
{
	const uint8_t *p = ps_rd_bytes(r, 8);
	return p ? ps_get_le64(p) : 0;
}
uint64_t ps_rd_uvar(struct ps_rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	for (;;) {
		const uint8_t *p = ps_rd_bytes(r, 1);
		if (!p)
			return 0;
		if (shift == 63 && (*p & 0x7e)) {
			r->bad = 1;
			return 0;
		}
		v |= (uint64_t)(*p & 0x7f) << shift;
		if (!(*p & 0x80))
			return v;
		shift += 7;
		if (shift > 63) {
			r->bad = 1;
			return 0;
		}
	}
}
int64_t ps_rd_svar(struct ps_rd *r)
{
	uint64_t u = ps_rd_uvar(r);
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* ------------------------------------------------------------ hex */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int ps_hex_decode(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval((unsigned char)hex[2 * i]);
		int lo = hi < 0 ? -1 : hexval((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void ps_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void ps_id_hex(const uint8_t id[32], char *buf) { ps_hex_encode(id, 32, buf); }

/* ------------------------------------------------------------ time */

int64_t ps_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t ps_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void ps_format_time(int64_t ns, char *buf, size_t len)
{
	time_t s = (time_t)(ns / 1000000000LL);
	long us = (long)((ns % 1000000000LL) / 1000);
	struct tm tm;
	if (us < 0) {
		us += 1000000;
		s -= 1;
	}
	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
}

void ps_format_time_ns(int64_t sec, uint32_t nsec, char *buf, size_t len)
{
	time_t s = (time_t)sec;
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nsec);
}

void ps_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void ps_format_age(int64_t t, int64_t now, char *buf, size_t len)
{
	int64_t s = (now - t) / 1000000000LL;
	const char *unit;
	int64_t v;
	if (s < 0) {
		snprintf(buf, len, "in the future");
		return;
	}
	if (s < 10) {
		snprintf(buf, len, "just now");
		return;
	}
	if (s < 60) { v = s; unit = "second"; }
	else if (s < 3600) { v = s / 60; unit = "minute"; }
	else if (s < 86400) { v = s / 3600; unit = "hour"; }
	else if (s < 86400 * 30) { v = s / 86400; unit = "day"; }
	else if (s < 86400 * 365) { v = s / (86400 * 30); unit = "month"; }
	else { v = s / (86400 * 365); unit = "year"; }
	snprintf(buf, len, "%lld %s%s ago", (long long)v, unit, v == 1 ? "" : "s");
}

/* ------------------------------------------------------------ sizes */

int ps_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	uint64_t mul = 1;
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !(v >= 0) || v > 1e30)   /* also rejects nan */
		return -1;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	case 't': case 'T': mul = 1ULL << 40; end++; break;
	case 'p': case 'P': mul = 1ULL << 50; end++; break;
	default: return -1;
	}
	if (*end == 'i' && mul > 1)
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -1;
	if (v * (double)mul >= 18446744073709551615.0)
		return -1;
	*out = (uint64_t)(v * (double)mul + 0.5);
	return 0;
}

void ps_format_size(uint64_t n, char *buf, size_t len)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	int i = 0;
	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, u[i]);
}

/* ------------------------------------------------------------ host */

static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char host_name[256];
static char boot_id[64];

static void host_init(void)
{
	FILE *f;
	if (gethostname(host_name, sizeof(host_name) - 1))
		strcpy(host_name, "unknown");
	host_name[sizeof(host_name) - 1] = '\0';
	f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (f) {
		if (fgets(boot_id, sizeof(boot_id), f))
			boot_id[strcspn(boot_id, "\n")] = '\0';
		fclose(f);
	}
}

const char *ps_hostname(void)
{
	pthread_once(&host_once, host_init);
	return host_name;
}

const char *ps_boot_id(void)
{
	pthread_once(&host_once, host_init);
	return boot_id;
}

int ps_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

struct big_stack_call {
	void (*fn)(void *);
	void *arg;
};

static void *big_stack_main(void *v)
{
	struct big_stack_call *c = v;
	c->fn(c->arg);
	return NULL;
}

void ps_run_big_stack(void (*fn)(void *), void *arg, size_t stack)
{
	struct big_stack_call c = { fn, arg };
	pthread_attr_t attr;
	pthread_t t;
	if (pthread_attr_init(&attr)) {
		fn(arg);
		return;
	}
	pthread_attr_setstacksize(&attr, stack);
	if (pthread_create(&t, &attr, big_stack_main, &c)) {
		pthread_attr_destroy(&attr);
		fn(arg);
		return;
	}
	pthread_attr_destroy(&attr);
	pthread_join(t, NULL);
}

void ps_raise_nofile(void)
{
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max && rl.rlim_cur < 65536) {
		rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int ps_random_bytes(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* ------------------------------------------------------------ files */

int ps_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t ps_pread_all(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *c = p;
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, c + got, n - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int ps_read_file(const char *path, size_t max, struct ps_buf *out, struct ps_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = PS_OK;
	if (fd < 0) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "cannot open '%s': %s", path, strerror(errno));
		return ps_err_sys(err, "cannot open '%s'", path);
	}
	out->max = max;
	{
		struct stat st;
		if (!fstat(fd, &st) && st.st_size > 0 && (uint64_t)st.st_size < max)
			ps_buf_reserve(out, (size_t)st.st_size + 1);
	}
	for (;;) {
		ssize_t r;
		size_t room = max - out->len < 65536 ? max - out->len : 65536;
		if (!room || ps_buf_reserve(out, room)) {
			/* full: one more byte would mean the file is too large */
			char c;
			if (!room && read(fd, &c, 1) == 0)
				break;
			rc = ps_err(err, PS_ERROR, "'%s' is larger than %zu bytes", path, max);
			break;
		}
		r = read(fd, out->data + out->len, room);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = ps_err_sys(err, "cannot read '%s'", path);
			break;
		}
		if (r == 0)
			break;
		out->len += (size_t)r;
	}
	close(fd);
	return rc;
}

int ps_write_file_atomic(const char *path, const void *data, size_t len, struct ps_error *err)
{
	struct iovec iov = { (void *)data, len };
	return ps_write_file_atomicv(path, &iov, 1, err);
}

static int write_file_atomicv(const char *path, const struct iovec *iov, int niov, int sync,
			      struct ps_error *err);

int ps_write_file_atomicv(const char *path, const struct iovec *iov, int niov, struct ps_error *err)
{
	return write_file_atomicv(path, iov, niov, 1, err);
}

int ps_write_file_atomicv_nosync(const char *path, const struct iovec *iov, int niov,
				 struct ps_error *err)
{
	return write_file_atomicv(path, iov, niov, 0, err);
}

static int write_file_atomicv(const char *path, const struct iovec *iov, int niov, int sync,
			      struct ps_error *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	char *slash;
	int fd, dfd, rc = PS_OK;
	uint32_t rnd = 0;
	ps_random_bytes(&rnd, sizeof(rnd));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%08x", path, (int)getpid(), rnd) >= sizeof(tmp))
		return ps_err(err, PS_EINVAL, "path too long: '%s'", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return ps_err_sys(err, "cannot create '%s'", tmp);
	for (int i = 0; i < niov; i++)
		if (ps_write_all(fd, iov[i].iov_base, iov[i].iov_len)) {
			rc = ps_err_sys(err, "cannot write '%s'", tmp);
			close(fd);
			unlink(tmp);
			return rc;
		}
	if (sync && fsync(fd)) {
		rc = ps_err_sys(err, "cannot write '%s'", tmp);
		close(fd);
		unlink(tmp);
		return rc;
	}
	close(fd);
	if (rename(tmp, path)) {
		rc = ps_err_sys(err, "cannot rename '%s'", tmp);
		unlink(tmp);
		return rc;
	}
	if (!sync)
		return PS_OK;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd))
			rc = ps_err_sys(err, "cannot fsync '%s'", dir);
		close(dfd);
	}
	return rc;
}

int ps_mkdirs(const char *path, unsigned mode, struct ps_error *err)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n >= sizeof(buf))
		return ps_err(err, PS_EINVAL, "path too long: '%s'", path);
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] == '/' || buf[i] == '\0') {
			char c = buf[i];
			buf[i] = '\0';
			if (mkdir(buf, mode) && errno != EEXIST)
				return ps_err_sys(err, "cannot create directory '%s'", buf);
			buf[i] = c;
		}
	}
	return PS_OK;
}

/* ------------------------------------------------------------ string arrays */

int ps_strv_push(char ***v, size_t *n, size_t *cap, const char *s)
{
	char *d;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char **nv = ps_realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		*v = nv;
		*cap = nc;
	}
	if (!(d = ps_strdup(s)))
		return -1;
	(*v)[(*n)++] = d;
	return 0;
}

/* ------------------------------------------------------------ id sets */

static size_t idset_slot(const struct ps_idset *s, const uint8_t id[32])
{
	size_t h;
	memcpy(&h, id + 8, sizeof(h));   /* ids are uniform: any 8 bytes hash well */
	for (h &= s->cap - 1; s->used[h] && memcmp(s->keys[h], id, 32); h = (h + 1) & (s->cap - 1))
		;
	return h;
}

int ps_idset_add(struct ps_idset *s, const uint8_t id[32])
{
	size_t h;
	if ((s->n + 1) * 4 >= s->cap * 3) {
		struct ps_idset ns;
		ns.cap = s->cap ? s->cap * 2 : 1024;
		ns.n = 0;
		ns.keys = ps_malloc(ns.cap * 32);
		ns.used = ps_calloc(ns.cap, 1);
		if (!ns.keys || !ns.used) {
			ps_free(ns.keys);
			ps_free(ns.used);
			return -1;
		}
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->used[i])
				continue;
			h = idset_slot(&ns, s->keys[i]);
			memcpy(ns.keys[h], s->keys[i], 32);
			ns.used[h] = s->used[i];
			ns.n++;
		}
		ps_idset_release(s);
		*s = ns;
	}
	h = idset_slot(s, id);
	if (s->used[h])
		return 0;
	memcpy(s->keys[h], id, 32);
	s->used[h] = 1;
	s->n++;
	return 1;
}

uint8_t *ps_idset_get(const struct ps_idset *s, const uint8_t id[32])
{
	size_t h;
	if (!s->cap)
		return NULL;
	h = idset_slot(s, id);
	return s->used[h] ? &s->used[h] : NULL;
}

void ps_idset_release(struct ps_idset *s)
{
	ps_free(s->keys);
	ps_free(s->used);
	s->keys = NULL;
	s->used = NULL;
	s->cap = s->n = 0;
}

void ps_mem_burst(size_t huge)
{
#ifdef __GLIBC__
	const uintptr_t hp = 2u << 20;
	void *p;
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	/* large buffers come from the heap too, so that they are reused */
	mallopt(M_MMAP_MAX, 0);
	if (!huge)
		return;
	/* grow the heap by `huge` bytes and give them back to malloc at once:
	 * they stay in the heap (trim threshold), untouched */
	p = malloc(huge);
	if (!p)
		return;
#ifdef MADV_HUGEPAGE
	{
		uintptr_t a = ((uintptr_t)p + hp - 1) & ~(hp - 1);
		uintptr_t e = ((uintptr_t)p + huge) & ~(hp - 1);
		if (e > a)
			(void)madvise((void *)a, e - a, MADV_HUGEPAGE); /* advice only */
	}
#endif
	free(p);
#else
	(void)huge;
#endif
}

char *ps_path_join(const char *dir, const void *name, size_t nl)
{
	size_t dl = strlen(dir);
	char *p = ps_malloc(dl + nl + 2);
	if (!p)
		return NULL;
	if (dl) {
		memcpy(p, dir, dl);
		p[dl++] = '/';
	}
	memcpy(p + dl, name, nl);
	p[dl + nl] = 0;
	return p;
}
