/*
 * util.h - small shared helpers of libprojstore: errors, allocation, growable
 * buffers, little-endian encoding, time, hex, and file helpers.
 *
 * Everything here is used by every other module; it depends on nothing but
 * libc.  Allocation goes through ps_malloc()/ps_realloc() so that tests can
 * make the Nth allocation fail (ps_alloc_fail_after()).
 */
#ifndef PS_UTIL_H
#define PS_UTIL_H

#include <stdarg.h>
#include <sys/uio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "projstore.h"

#define PS_ATTR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define PS_UNUSED(x) ((void)(x))
#define PS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors ---- */

/* Sets err (if not NULL) and returns `code`. */
int ps_err(struct ps_error *err, int code, const char *fmt, ...) PS_ATTR_PRINTF(3, 4);
/* As ps_err() but appends strerror(errno) and records errno. */
int ps_err_sys(struct ps_error *err, const char *fmt, ...) PS_ATTR_PRINTF(2, 3);
/* Prefixes an existing message: "context: old message". */
int ps_err_prefix(struct ps_error *err, const char *fmt, ...) PS_ATTR_PRINTF(2, 3);

/* ---- memory ---- */

void *ps_malloc(size_t n);           /* aborts never: returns NULL on failure */
void *ps_calloc(size_t n, size_t sz);
void *ps_realloc(void *p, size_t n);
char *ps_strdup(const char *s);
char *ps_strndup(const char *s, size_t n);
void ps_free(void *p);
/* Test hook: the n-th allocation from now fails (0 = off). */
void ps_alloc_fail_after(long n);
/* "dir/name" (name: nl bytes, any but NUL; dir "" gives "name"), ps_malloc'ed;
 * NULL when out of memory. The relative paths of save, restore and walks. */
char *ps_path_join(const char *dir, const void *name, size_t nl);

/* ---- growable buffer with a maximum size ---- */

struct ps_buf {
	uint8_t *data;   /* owned */
	size_t len;      /* bytes used */
	size_t cap;      /* bytes allocated */
	size_t max;      /* grow beyond this fails; 0 = SIZE_MAX */
};
#define PS_BUF_INIT { NULL, 0, 0, 0 }

int ps_buf_reserve(struct ps_buf *b, size_t extra);
int ps_buf_append(struct ps_buf *b, const void *p, size_t n);
int ps_buf_printf(struct ps_buf *b, const char *fmt, ...) PS_ATTR_PRINTF(2, 3);
int ps_buf_put_u8(struct ps_buf *b, uint8_t v);
int ps_buf_put_u16(struct ps_buf *b, uint16_t v);
int ps_buf_put_u32(struct ps_buf *b, uint32_t v);
int ps_buf_put_u64(struct ps_buf *b, uint64_t v);
int ps_buf_put_uvar(struct ps_buf *b, uint64_t v);   /* LEB128 */
int ps_buf_put_svar(struct ps_buf *b, int64_t v);    /* zigzag LEB128 */
void ps_buf_release(struct ps_buf *b);               /* frees data, resets */
void ps_buf_reset(struct ps_buf *b);                 /* len = 0, keeps memory */

/* ---- bounded reader over untrusted bytes ---- */

struct ps_rd {
	const uint8_t *p;   /* next byte */
	const uint8_t *end; /* one past the last byte */
	int bad;            /* set when a read ran past the end or was invalid */
};

static inline void ps_rd_init(struct ps_rd *r, const void *p, size_t n)
{
	r->p = (const uint8_t *)p;
	r->end = r->p + n;
	r->bad = 0;
}
static inline size_t ps_rd_left(const struct ps_rd *r) { return (size_t)(r->end - r->p); }
uint8_t ps_rd_u8(struct ps_rd *r);
uint16_t ps_rd_u16(struct ps_rd *r);
uint32_t ps_rd_u32(struct ps_rd *r);
uint64_t ps_rd_u64(struct ps_rd *r);
uint64_t ps_rd_uvar(struct ps_rd *r);
int64_t ps_rd_svar(struct ps_rd *r);
/* Returns a pointer to n bytes and advances, or NULL (and sets bad). */
const uint8_t *ps_rd_bytes(struct ps_rd *r, size_t n);

static inline void ps_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void ps_put_le64(uint8_t *p, uint64_t v)
{
	ps_put_le32(p, (uint32_t)v); ps_put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t ps_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ps_get_le64(const uint8_t *p)
{
	return (uint64_t)ps_get_le32(p) | (uint64_t)ps_get_le32(p + 4) << 32;
}

/* ---- ids, hex ---- */

#define PS_ID_LEN 32
int ps_hex_decode(const char *hex, uint8_t *out, size_t n); /* 0 or -1 */
void ps_hex_encode(const uint8_t *in, size_t n, char *out); /* writes 2n+1 */

/* ---- time ---- */

int64_t ps_now_ns(void);        /* CLOCK_REALTIME */
int64_t ps_mono_ns(void);       /* CLOCK_MONOTONIC */
void ps_format_time(int64_t ns, char *buf, size_t len);  /* RFC 3339, us */
void ps_sleep_ms(long ms);

/* ---- host ---- */

const char *ps_hostname(void);  /* borrowed, cached */
const char *ps_boot_id(void);   /* borrowed, cached; "" if unknown */
int ps_ncpus(void);
int ps_random_bytes(void *buf, size_t n);
/* Runs fn(arg) on a thread with a stack of `stack` bytes and waits for it:
 * recursive walks of trees thousands of directories deep need more than the
 * default 8 MiB. Runs fn on the calling thread if no thread can be made. */
void ps_run_big_stack(void (*fn)(void *), void *arg, size_t stack);
/* Raises the soft limit of open files (up to 65536): deep trees keep one
 * directory descriptor per level open. */
void ps_raise_nofile(void);

/* ---- local file helpers (for the host side, not the store backend) ---- */

/* Reads a whole local file (max bytes) into *out (caller frees). */
int ps_read_file(const char *path, size_t max, struct ps_buf *out, struct ps_error *err);
/* Writes a local file atomically: temp, fsync, rename, fsync dir. */
int ps_write_file_atomic(const char *path, const void *data, size_t len, struct ps_error *err);
/* The same for data in several pieces (no copy into one buffer). */
int ps_write_file_atomicv(const char *path, const struct iovec *iov, int n, struct ps_error *err);
/* The same without any fsync: readers see the old file or the new one whole,
 * but a crash may lose it or leave it empty or partial. Only for caches that
 * carry a checksum and can be rebuilt. */
int ps_write_file_atomicv_nosync(const char *path, const struct iovec *iov, int n,
				 struct ps_error *err);
/* mkdir -p */
int ps_mkdirs(const char *path, unsigned mode, struct ps_error *err);
/* Writes all bytes to fd, retrying short writes. */
int ps_write_all(int fd, const void *p, size_t n);
/* pread all; returns bytes read or -1 */
ssize_t ps_pread_all(int fd, void *p, size_t n, uint64_t off);


/* Appends a copy of s to a growable array of strings (*v, *n used, *cap
 * allocated). Returns 0, or -1 when out of memory (nothing changed). */
int ps_strv_push(char ***v, size_t *n, size_t *cap, const char *s);

/* ---- qsort/bsearch that accept an empty (possibly NULL) array ---- */
static inline void ps_qsort(void *base, size_t n, size_t size,
			    int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}
static inline void *ps_bsearch(const void *key, const void *base, size_t n, size_t size,
			       int (*cmp)(const void *, const void *))
{
	return n ? bsearch(key, base, n, size, cmp) : NULL;
}

/* ---- a set of 32-byte ids (open addressing) ---- */
struct ps_idset {
	uint8_t (*keys)[32];
	uint8_t *used;     /* 0 empty, else 1 + caller's flag bits */
	size_t cap, n;
};
/* Returns 1 if added, 0 if present, -1 on out of memory. */
int ps_idset_add(struct ps_idset *s, const uint8_t id[32]);
/* Returns a pointer to the entry's flag byte (>= 1) or NULL. */
uint8_t *ps_idset_get(const struct ps_idset *s, const uint8_t id[32]);
void ps_idset_release(struct ps_idset *s);

#endif
