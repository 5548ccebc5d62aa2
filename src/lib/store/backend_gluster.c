/*
 * backend_gluster.c - the store backend for a GlusterFS volume, reached
 * through libgfapi: no mount, no FUSE, no kernel client; this process talks
 * to glusterd (for the volume's layout) and to every brick directly.
 *
 *   gluster://SERVER[,SERVER...][:PORT]/VOLUME[/PATH]
 *
 * URL parsing (ps_gluster_url_parse) is strict: anything it does not
 * understand is rejected with the reason, never guessed at.  Servers after the
 * first are backup volfile servers: libgfapi asks them for the volume's
 * layout when the first does not answer.  Once the layout is known, the
 * client talks to the bricks themselves, so the servers in the URL only
 * matter while connecting.
 *
 * One connection (glfs_t) per volume per process.  Every store opened on a
 * volume shares it through a small registry (`vols`, refcounted, keyed by
 * servers + volume).  libgfapi calls are thread-safe; a glfs_fd_t is
 * used by one thread at a time, except pread, which many threads may issue
 * on the same file (the store's pack cache does).
 *
 * Closing: the last release of a volume calls glfs_fini().  In libgfapi 10
 * glfs_fini() shuts the connections down at once (within ~0.2 s) but then
 * waits for a 10-second RPC timer before it returns (GlusterFS issue #2606,
 * closed as wontfix).  Every file this backend wrote has been fsynced and
 * closed before that point, so nothing is left to flush; glfs_fini() runs on
 * a thread and the caller waits for it at most PROJSTORE_GLUSTER_FINI_WAIT
 * seconds (default 0.25; -1 = until it returns).  Without that, every command on
 * a gluster:// store would take ten seconds longer.
 *
 * fork(): a child cannot use its parent's glfs_t (its threads are gone).  An
 * atfork handler bumps `fork_gen`; handles and files of an older generation
 * are never touched again (not even closed): the child connects anew on its
 * first use, reopens files it only reads, and refuses to write files opened
 * before the fork.  `projstore mount` relies on this when it daemonizes.
 *
 * Reads: every glfs_pread is a round trip to a brick, and a restore reads
 * tens of thousands of small object records.  A small read of a file opened
 * for reading fetches a 256 KiB window around it (two windows per open file,
 * at most 64 open packs: 32 MiB), which serves the records after it, or
 * before it when the reader walks the file backwards.  Files open for reading
 * never change, so a window cannot go stale.
 *
 * Durability: files are fsynced (glfs_fsync) before rename; directories are
 * fsynced through a directory handle (glfs_opendir + glfs_fsync), which the
 * bricks turn into fsync of the directory.
 *
 * Logging: libgfapi logs to /dev/null unless PROJSTORE_GLUSTER_LOG names a
 * file (PROJSTORE_GLUSTER_LOG_LEVEL 0-9, default 7 = info).
 */
#define _GNU_SOURCE
#include "backend.h"
#include "../util/util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <glusterfs/api/glfs.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ libgfapi, loaded on first use
 *
 * libgfapi and what it pulls in (the GlusterFS core libraries, RPC, TI-RPC
 * with Kerberos) are loaded with dlopen() when a gluster:// store is first
 * opened: every other command starts without relocating them, which is most
 * of the cost of a short command such as `projstore where`. The pointers
 * have the types of the header's declarations (dlsym gives the default
 * version of versioned symbols, the one the header declares). */
static struct {
	__typeof__(glfs_close) *close_;
	__typeof__(glfs_closedir) *closedir_;
	__typeof__(glfs_creat) *creat_;
	__typeof__(glfs_fini) *fini_;
	__typeof__(glfs_fstat) *fstat_;
	__typeof__(glfs_fsync) *fsync_;
	__typeof__(glfs_init) *init_;
	__typeof__(glfs_link) *link_;
	__typeof__(glfs_lstat) *lstat_;
	__typeof__(glfs_mkdir) *mkdir_;
	__typeof__(glfs_new) *new_;
	__typeof__(glfs_open) *open_;
	__typeof__(glfs_opendir) *opendir_;
	__typeof__(glfs_pread) *pread_;
	__typeof__(glfs_readdir_r) *readdir_r_;
	__typeof__(glfs_rename) *rename_;
	__typeof__(glfs_rmdir) *rmdir_;
	__typeof__(glfs_set_logging) *set_logging_;
	__typeof__(glfs_set_volfile_server) *set_volfile_server_;
	__typeof__(glfs_stat) *stat_;
	__typeof__(glfs_unlink) *unlink_;
	__typeof__(glfs_write) *write_;
} gf;
static pthread_once_t gf_once = PTHREAD_ONCE_INIT;
static char gf_error[300];

static void gf_load(void)
{
	void *h = dlopen("libgfapi.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(gf_error, sizeof(gf_error),
			 "the GlusterFS client library is not installed (libgfapi0): %s", dlerror());
		return;
	}
#define GF_SYM(f)                                                                        \
	do {                                                                             \
		*(void **)(&gf.f##_) = dlsym(h, "glfs_" #f);                             \
		if (!gf.f##_) {                                                          \
			snprintf(gf_error, sizeof(gf_error), "libgfapi lacks glfs_%s", #f); \
			return;                                                          \
		}                                                                        \
	} while (0)
	GF_SYM(close);
	GF_SYM(closedir);
	GF_SYM(creat);
	GF_SYM(fini);
	GF_SYM(fstat);
	GF_SYM(fsync);
	GF_SYM(init);
	GF_SYM(link);
	GF_SYM(lstat);
	GF_SYM(mkdir);
	GF_SYM(new);
	GF_SYM(open);
	GF_SYM(opendir);
	GF_SYM(pread);
	GF_SYM(readdir_r);
	GF_SYM(rename);
	GF_SYM(rmdir);
	GF_SYM(set_logging);
	GF_SYM(set_volfile_server);
	GF_SYM(stat);
	GF_SYM(unlink);
	GF_SYM(write);
#undef GF_SYM
}

#define glfs_close gf.close_
#define glfs_closedir gf.closedir_
#define glfs_creat gf.creat_
#define glfs_fini gf.fini_
#define glfs_fstat gf.fstat_
#define glfs_fsync gf.fsync_
#define glfs_init gf.init_
#define glfs_link gf.link_
#define glfs_lstat gf.lstat_
#define glfs_mkdir gf.mkdir_
#define glfs_new gf.new_
#define glfs_open gf.open_
#define glfs_opendir gf.opendir_
#define glfs_pread gf.pread_
#define glfs_readdir_r gf.readdir_r_
#define glfs_rename gf.rename_
#define glfs_rmdir gf.rmdir_
#define glfs_set_logging gf.set_logging_
#define glfs_set_volfile_server gf.set_volfile_server_
#define glfs_stat gf.stat_
#define glfs_unlink gf.unlink_
#define glfs_write gf.write_


#define URL_MAX 8192                /* longest URL accepted */
#define COMPONENT_MAX 255           /* longest name in PATH */
#define LOG_LEVEL_DEFAULT 7         /* GF_LOG_INFO */
#define LOG_LEVEL_QUIET 3           /* GF_LOG_CRITICAL, to /dev/null */
#define FINI_WAIT_DEFAULT 0.25      /* seconds */

/* ================================================================ URLs */

static int bad_url(struct ps_error *err, const char *url, const char *why)
{
	return ps_err(err, PS_EINVAL, "invalid GlusterFS location '%.200s%s': %s "
		      "(expected gluster://SERVER[,SERVER...][:PORT]/VOLUME/PATH)",
		      url, strlen(url) > 200 ? "..." : "", why);
}

/* A host name (letters, digits, '-', '_', dot-separated labels of 1 to 63
 * characters, not starting with '-') or an IPv4 address. */
static int host_valid(const char *h, size_t n)
{
	size_t label = 0;
	if (n == 0 || n >= PS_GLUSTER_HOST_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
		if (label == 0 && c == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

/* "1" .. "65535", digits only. */
static int parse_port(const char *p, size_t n, int *port)
{
	long v = 0;
	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

/* One element of the server list: HOST, HOST:PORT, [V6], [V6]:PORT.
 * *port = 0 when none is given. */
static int parse_server(const char *url, const char *s, size_t n, char *host, int *port,
			struct ps_error *err)
{
	const char *colon = NULL;
	size_t hlen;
	*port = 0;
	if (n == 0)
		return bad_url(err, url, "empty server name");
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		char v6[INET6_ADDRSTRLEN];
		struct in6_addr a;
		if (!close)
			return bad_url(err, url, "'[' without ']' in a server address");
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(v6))
			return bad_url(err, url, "invalid IPv6 address");
		memcpy(v6, s + 1, hlen);
		v6[hlen] = 0;
		if (inet_pton(AF_INET6, v6, &a) != 1)
			return bad_url(err, url, "invalid IPv6 address");
		memcpy(host, v6, hlen + 1);
		if ((size_t)(close - s) + 1 < n) {
			if (close[1] != ':')
				return bad_url(err, url, "unexpected characters after ']'");
			colon = close + 1;
		}
	} else {
		colon = memchr(s, ':', n);
		hlen = colon ? (size_t)(colon - s) : n;
		if (!host_valid(s, hlen))
			return bad_url(err, url, hlen == 0 ? "empty server name" : "invalid server name");
		memcpy(host, s, hlen);
		host[hlen] = 0;
	}
	if (colon && parse_port(colon + 1, n - (size_t)(colon + 1 - s), port))
		return bad_url(err, url, "invalid port (1 to 65535)");
	return PS_OK;
}

int ps_gluster_url_parse(const char *url, struct ps_gluster_url *out, struct ps_error *err)
{
	static const char prefix[] = "gluster://";
	const char *auth, *auth_end, *vol, *vol_end, *p;
	size_t len, n;
	int last_port = 0;

	memset(out, 0, sizeof(*out));
	if (!url)
		return ps_err(err, PS_EINVAL, "no GlusterFS location given");
	len = strnlen(url, URL_MAX + 1);
	if (len > URL_MAX)
		return ps_err(err, PS_EINVAL, "GlusterFS location is longer than %d bytes", URL_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f)
			return ps_err(err, PS_EINVAL, "GlusterFS location contains a control character");
	if (strncasecmp(url, prefix, sizeof(prefix) - 1))
		return bad_url(err, url, "it does not start with gluster://");

	/* servers */
	auth = url + sizeof(prefix) - 1;
	auth_end = strchr(auth, '/');
	if (!auth_end)
		return bad_url(err, url, "no volume");
	if (auth_end == auth)
		return bad_url(err, url, "no server");
	if (memchr(auth, '@', (size_t)(auth_end - auth)))
		return bad_url(err, url, "user names are not supported");
	for (p = auth; p < auth_end;) {
		const char *comma = memchr(p, ',', (size_t)(auth_end - p));
		const char *e = comma ? comma : auth_end;
		int rc;
		if (out->nservers == PS_GLUSTER_MAX_SERVERS)
			return bad_url(err, url, "more than 16 servers");
		rc = parse_server(url, p, (size_t)(e - p), out->servers[out->nservers].host,
				  &out->servers[out->nservers].port, err);
		if (rc)
			return rc;
		last_port = out->servers[out->nservers].port;
		out->nservers++;
		if (comma && comma + 1 == auth_end)
			return bad_url(err, url, "empty server name");
		p = comma ? comma + 1 : auth_end;
	}
	for (size_t i = 0; i < out->nservers; i++)
		if (!out->servers[i].port)
			out->servers[i].port = last_port ? last_port : PS_GLUSTER_PORT;

	/* volume: letters, digits, '-' and '_' (as the gluster CLI allows) */
	vol = auth_end + 1;
	vol_end = strchr(vol, '/');
	if (!vol_end)
		vol_end = vol + strlen(vol);
	n = (size_t)(vol_end - vol);
	if (n == 0)
		return bad_url(err, url, "no volume");
	if (n >= PS_GLUSTER_VOLUME_MAX)
		return bad_url(err, url, "volume name too long");
	if (vol[0] == '-')
		return bad_url(err, url, "invalid volume name");
	for (size_t i = 0; i < n; i++) {
		char c = vol[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return bad_url(err, url, "invalid volume name (letters, digits, '-', '_')");
	}
	memcpy(out->volume, vol, n);
	out->volume[n] = 0;

	/* path: "", "/" or "/a/b[/]"; no empty, "." or ".." components, none of
	 * % ? # \ (no URL escapes, queries or fragments are understood) */
	p = vol_end;
	len = 0;
	while (*p == '/' && p[1]) {
		const char *c = p + 1, *e = strchr(c, '/');
		if (!e)
			e = c + strlen(c);
		n = (size_t)(e - c);
		if (n == 0)
			return bad_url(err, url, "empty path component ('//')");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return bad_url(err, url, "'.' and '..' are not allowed in the path");
		if (n > COMPONENT_MAX)
			return bad_url(err, url, "path component longer than 255 bytes");
		for (size_t i = 0; i < n; i++)
			if (c[i] == '%' || c[i] == '?' || c[i] == '#' || c[i] == '\\')
				return bad_url(err, url, "'%', '?', '#' and '\\' are not allowed in the path");
		if (len + 1 + n >= PS_GLUSTER_PATH_MAX)
			return bad_url(err, url, "path too long");
		out->path[len++] = '/';
		memcpy(out->path + len, c, n);
		len += n;
		p = e;
	}
	if (*p && !(p[0] == '/' && !p[1]))
		return bad_url(err, url, "invalid path");
	if (len == 0)
		out->path[len++] = '/';
	out->path[len] = 0;
	return PS_OK;
}

/* "host:port,host:port" into buf (for messages and the registry key). */
static void servers_text(const struct ps_gluster_url *u, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = 0;
	for (size_t i = 0; i < u->nservers && off < len; i++) {
		int v6 = strchr(u->servers[i].host, ':') != NULL;
		int w = snprintf(buf + off, len - off, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "",
				 u->servers[i].host, v6 ? "]" : "", u->servers[i].port);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

/* ====================================================== volume registry */

struct gl_vol {
	struct gl_vol *next;
	char *key;            /* "host:port,.../volume" */
	glfs_t *fs;
	int refs;             /* backends using fs */
	unsigned long gen;    /* fork_gen when fs was made */
};

static pthread_mutex_t vols_lock = PTHREAD_MUTEX_INITIALIZER;   /* protects vols */
static struct gl_vol *vols;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
/* Bumped in every child of a fork; read without the lock (a child runs one
 * thread when it is bumped). */
static volatile unsigned long fork_gen;

static void atfork_prepare(void) { pthread_mutex_lock(&vols_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&vols_lock); }
static void atfork_child(void)
{
	fork_gen++;
	pthread_mutex_unlock(&vols_lock);
}
static void atfork_init(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

static double fini_wait(void)
{
	const char *v = getenv("PROJSTORE_GLUSTER_FINI_WAIT");
	char *end;
	double d;
	if (!v || !*v)
		return FINI_WAIT_DEFAULT;
	d = strtod(v, &end);
	if (*end || d != d)
		return FINI_WAIT_DEFAULT;
	return d > 3600 ? 3600 : d;
}

struct fini_job {
	glfs_t *fs;
	pthread_mutex_t m;    /* protects done, refs */
	pthread_cond_t c;
	int done;
	int refs;             /* the thread and the waiter */
};

static void fini_job_put(struct fini_job *j)
{
	int last;
	pthread_mutex_lock(&j->m);
	last = --j->refs == 0;
	pthread_mutex_unlock(&j->m);
	if (last) {
		pthread_mutex_destroy(&j->m);
		pthread_cond_destroy(&j->c);
		ps_free(j);
	}
}

static void *fini_thread(void *arg)
{
	struct fini_job *j = arg;
	glfs_fini(j->fs);
	pthread_mutex_lock(&j->m);
	j->done = 1;
	pthread_cond_broadcast(&j->c);
	pthread_mutex_unlock(&j->m);
	fini_job_put(j);
	return NULL;
}

/* glfs_fini on a thread; waits for it up to fini_wait() seconds. */
static void vol_fini(glfs_t *fs)
{
	struct fini_job *j = ps_calloc(1, sizeof(*j));
	pthread_condattr_t ca;
	pthread_t t;
	double wait = fini_wait();
	int done;
	if (!j || wait < 0) {
		ps_free(j);
		glfs_fini(fs);
		return;
	}
	j->fs = fs;
	j->refs = 2;
	pthread_mutex_init(&j->m, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->c, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t, NULL, fini_thread, j)) {
		j->refs = 1;
		fini_job_put(j);
		glfs_fini(fs);
		return;
	}
	if (wait > 0) {
		struct timespec dl;
		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_sec += (time_t)wait;
		dl.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&j->m);
		while (!j->done && pthread_cond_timedwait(&j->c, &j->m, &dl) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&j->m);
	}
	pthread_mutex_lock(&j->m);
	done = j->done;
	pthread_mutex_unlock(&j->m);
	if (done)
		pthread_join(t, NULL);
	else
		pthread_detach(t);
	fini_job_put(j);
}

static void vol_release(struct gl_vol *v)
{
	int last;
	if (!v)
		return;
	pthread_mutex_lock(&vols_lock);
	last = --v->refs == 0;
	if (last) {
		struct gl_vol **pp = &vols;
		while (*pp && *pp != v)
			pp = &(*pp)->next;
		if (*pp)
			*pp = v->next;
	}
	pthread_mutex_unlock(&vols_lock);
	if (!last)
		return;
	/* a parent's connection is never touched in a child */
	if (v->gen == fork_gen)
		vol_fini(v->fs);
	ps_free(v->key);
	ps_free(v);
}

/* Message for a failed glfs_init (errno is glfs_init's). */
static int init_error(struct ps_error *err, const struct ps_gluster_url *u, const char *location,
		      const char *servers)
{
	int e = errno;
	if (e == ENOENT)
		return ps_err(err, PS_ERROR,
			      "GlusterFS volume '%s' does not exist on %s (store '%s')", u->volume,
			      servers, location);
	errno = e;
	return ps_err_sys(err, "cannot connect to GlusterFS volume '%s' through %s (store '%s')",
			  u->volume, servers, location);
}

/* Finds or makes this process's connection to the URL's volume; the caller
 * owns one reference (vol_release). */
static int vol_acquire(const struct ps_gluster_url *u, const char *location, struct gl_vol **out,
		       struct ps_error *err)
{
	char servers[PS_GLUSTER_MAX_SERVERS * (PS_GLUSTER_HOST_MAX + 10)];
	struct ps_buf key = PS_BUF_INIT;
	struct gl_vol *v = NULL;
	glfs_t *fs = NULL;
	const char *logfile = getenv("PROJSTORE_GLUSTER_LOG");
	const char *lvl = getenv("PROJSTORE_GLUSTER_LOG_LEVEL");
	int level = LOG_LEVEL_QUIET, rc = PS_OK;

	pthread_once(&gf_once, gf_load);
	if (gf_error[0])
		return ps_err(err, PS_ERROR, "cannot open store '%s': %s", location, gf_error);
	pthread_once(&atfork_once, atfork_init);
	servers_text(u, servers, sizeof(servers));
	if (ps_buf_printf(&key, "%s/%s", servers, u->volume) || ps_buf_put_u8(&key, 0))
		return ps_err(err, PS_ERROR, "out of memory");

	pthread_mutex_lock(&vols_lock);
	for (v = vols; v; v = v->next)
		if (v->gen == fork_gen && !strcmp(v->key, (char *)key.data))
			break;
	if (v) {
		v->refs++;
		goto done;
	}
	fs = glfs_new(u->volume);
	if (!fs) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < u->nservers; i++)
		if (glfs_set_volfile_server(fs, "tcp", u->servers[i].host, u->servers[i].port)) {
			rc = ps_err_sys(err, "cannot use GlusterFS server '%s' (store '%s')",
					u->servers[i].host, location);
			goto done;
		}
	if (logfile && *logfile) {
		level = LOG_LEVEL_DEFAULT;
		if (lvl && lvl[0] >= '0' && lvl[0] <= '9' && !lvl[1])
			level = lvl[0] - '0';
	} else {
		logfile = "/dev/null";
	}
	if (glfs_set_logging(fs, logfile, level)) {
		rc = ps_err_sys(err, "cannot set the GlusterFS log file '%s'", logfile);
		goto done;
	}
	if (glfs_init(fs)) {
		rc = init_error(err, u, location, servers);
		goto done;
	}
	v = ps_calloc(1, sizeof(*v));
	if (!v) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	v->key = (char *)key.data;
	key.data = NULL;
	v->fs = fs;
	fs = NULL;
	v->refs = 1;
	v->gen = fork_gen;
	v->next = vols;
	vols = v;
done:
	pthread_mutex_unlock(&vols_lock);
	if (fs)
		vol_fini(fs);   /* after a failed glfs_init too: it can wait as long */
	ps_buf_release(&key);
	if (!rc)
		*out = v;
	return rc;
}

/* ============================================================= backend */

struct gl_be {
	struct ps_backend base;
	struct ps_gluster_url *url;
	pthread_mutex_t lock;   /* protects vol (replaced in a child after fork) */
	struct gl_vol *vol;
};

/* Read windows: a small read (an object record is often a few KiB) fetches
 * RA_WINDOW bytes from its offset, and later small reads inside a window are
 * served from memory.  Store files opened for reading never change (packs,
 * segments, refs are immutable; rewritten files are new files), so a window
 * never goes stale.  Two per file, the older replaced. */
#define RA_WINDOW (256u * 1024)
#define RA_WINDOWS 2

struct ra_win {
	uint64_t off;           /* file offset of buf[0] */
	size_t len;             /* bytes in buf */
	int eof;                /* the file ends at off + len */
	uint64_t used;          /* ra_tick of the last use */
	uint8_t *buf;           /* NULL = empty */
};

struct ps_bfile {
	glfs_fd_t *fd;
	char *path;             /* relative path, for messages */
	struct gl_be *be;
	int writable;           /* made by create_excl */
	unsigned long gen;      /* fork_gen when fd was opened */
	pthread_mutex_t lock;   /* protects fd, gen when a child reopens */
	pthread_mutex_t ra_lock;        /* protects ra, ra_tick */
	struct ra_win ra[RA_WINDOWS];
	uint64_t ra_tick;
	uint64_t ra_last_miss;          /* offset of the last read no window held */
};

static struct gl_be *G(struct ps_backend *be) { return (struct gl_be *)be; }

/* The volume's glfs_t for this process (connecting again after a fork). */
static int be_fs(struct gl_be *be, glfs_t **fs, struct ps_error *err)
{
	int rc = PS_OK;
	pthread_mutex_lock(&be->lock);
	if (be->vol->gen != fork_gen) {
		struct gl_vol *nv = NULL;
		rc = vol_acquire(be->url, be->base.location, &nv, err);
		if (!rc) {
			vol_release(be->vol);
			be->vol = nv;
		}
	}
	if (!rc)
		*fs = be->vol->fs;
	pthread_mutex_unlock(&be->lock);
	return rc;
}

/* Absolute path in the volume of a store-relative path. */
static int abs_path(struct gl_be *be, const char *rel, char *buf, size_t len,
		    struct ps_error *err)
{
	const char *root = be->url->path;
	int n;
	if (!rel[0] || !strcmp(rel, "."))
		n = snprintf(buf, len, "%s", root);
	else
		n = snprintf(buf, len, "%s/%s", strcmp(root, "/") ? root : "", rel);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return ps_err_sys(err, "path '%s' in store '%s'", rel, be->base.location);
	}
	return PS_OK;
}

static int resolve(struct ps_backend *be, const char *rel, glfs_t **fs, char *buf, size_t len,
		   struct ps_error *err)
{
	int rc = abs_path(G(be), rel, buf, len, err);
	return rc ? rc : be_fs(G(be), fs, err);
}

static int mkfile(struct gl_be *be, glfs_fd_t *fd, const char *path, int writable,
		  struct ps_bfile **out, struct ps_error *err)
{
	struct ps_bfile *f = ps_calloc(1, sizeof(*f));
	if (!f || !(f->path = ps_strdup(path))) {
		ps_free(f);
		glfs_close(fd);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	f->fd = fd;
	f->be = be;
	f->writable = writable;
	f->gen = fork_gen;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->ra_lock, NULL);
	*out = f;
	return PS_OK;
}

/* The file's glfs_fd_t for this process: a file opened for reading before a
 * fork is opened again in the child. */
static int file_fd(struct ps_bfile *f, glfs_fd_t **fd, struct ps_error *err)
{
	char abs[PATH_MAX];
	glfs_t *fs;
	int rc = PS_OK;
	if (f->gen == fork_gen) {   /* the common case: no lock */
		*fd = f->fd;
		return PS_OK;
	}
	pthread_mutex_lock(&f->lock);
	if (f->gen != fork_gen) {
		if (f->writable) {
			rc = ps_err(err, PS_ERROR, "'%s' in store '%s' was opened for writing by the "
				    "parent process", f->path, f->be->base.location);
		} else if (!(rc = resolve(&f->be->base, f->path, &fs, abs, sizeof(abs), err))) {
			glfs_fd_t *nfd = glfs_open(fs, abs, O_RDONLY);
			if (!nfd) {
				rc = ps_err_sys(err, "cannot open '%s' in store '%s'", f->path,
						f->be->base.location);
			} else {
				f->fd = nfd;    /* the parent's is abandoned, not closed */
				f->gen = fork_gen;
			}
		}
	}
	if (!rc)
		*fd = f->fd;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static int g_open_read(struct ps_backend *be, const char *path, struct ps_bfile **out,
		       struct ps_error *err)
{
	char abs[PATH_MAX];
	glfs_t *fs;
	glfs_fd_t *fd;
	int rc = resolve(be, path, &fs, abs, sizeof(abs), err);
	if (rc)
		return rc;
	fd = glfs_open(fs, abs, O_RDONLY);
	if (!fd) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "'%s' does not exist in store '%s'", path,
				      be->location);
		return ps_err_sys(err, "cannot open '%s' in store '%s'", path, be->location);
	}
	return mkfile(G(be), fd, path, 0, out, err);
}

static int g_create_excl(struct ps_backend *be, const char *path, struct ps_bfile **out,
			 struct ps_error *err)
{
	char abs[PATH_MAX];
	glfs_t *fs;
	glfs_fd_t *fd;
	int rc = resolve(be, path, &fs, abs, sizeof(abs), err);
	if (rc)
		return rc;
	fd = glfs_creat(fs, abs, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (!fd) {
		if (errno == EEXIST)
			return ps_err(err, PS_EEXISTS, "'%s' exists in store", path);
		return ps_err_sys(err, "cannot create '%s' in store '%s'", path, be->location);
	}
	return mkfile(G(be), fd, path, 1, out, err);
}

/* Reads up to n bytes at off (fewer only at the end of the file). */
static int read_at(struct ps_bfile *f, glfs_fd_t *fd, void *buf, size_t n, uint64_t off,
		   size_t *got, struct ps_error *err)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = glfs_pread(fd, (char *)buf + done, n - done, (off_t)(off + done), 0, NULL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return ps_err_sys(err, "cannot read '%s' in store '%s'", f->path,
					  f->be->base.location);
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return PS_OK;
}

/* Serves [off, off + n) from a window if one holds it (or holds the end of
 * the file inside it); returns 1 and sets *got then. Caller holds ra_lock. */
static int ra_lookup(struct ps_bfile *f, void *buf, size_t n, uint64_t off, size_t *got)
{
	for (int i = 0; i < RA_WINDOWS; i++) {
		struct ra_win *w = &f->ra[i];
		size_t k;
		if (!w->buf || off < w->off || off - w->off > w->len)
			continue;
		k = w->len - (size_t)(off - w->off);
		if (k < n && !w->eof)
			continue;
		if (k > n)
			k = n;
		memcpy(buf, w->buf + (off - w->off), k);
		w->used = ++f->ra_tick;
		*got = k;
		return 1;
	}
	return 0;
}

static int g_pread(struct ps_bfile *f, void *buf, size_t n, uint64_t off, size_t *got,
		   struct ps_error *err)
{
	glfs_fd_t *fd;
	struct ra_win *w;
	uint64_t start;
	uint8_t *wb;
	size_t wlen;
	int back, rc = file_fd(f, &fd, err);
	if (rc)
		return rc;
	if (off > (uint64_t)INT64_MAX - n - RA_WINDOW)
		return ps_err(err, PS_EINVAL, "read of '%s' beyond the largest offset", f->path);
	if (f->writable || n >= RA_WINDOW / 2)
		return read_at(f, fd, buf, n, off, got, err);

	pthread_mutex_lock(&f->ra_lock);
	rc = ra_lookup(f, buf, n, off, got);
	/* misses below the previous one: the reader walks the file backwards (a
	 * restore reads a directory's tree before its subdirectories', which were
	 * written first), so the window then ends where the request ends */
	back = !rc && off < f->ra_last_miss;
	if (!rc)
		f->ra_last_miss = off;
	pthread_mutex_unlock(&f->ra_lock);
	if (rc)
		return PS_OK;
	start = back ? (off + n > RA_WINDOW ? off + n - RA_WINDOW : 0) : off;
	/* read the window outside the lock: other threads may read meanwhile */
	wb = ps_malloc(RA_WINDOW);
	if (!wb)
		return read_at(f, fd, buf, n, off, got, err);
	rc = read_at(f, fd, wb, RA_WINDOW, start, &wlen, err);
	if (rc) {
		ps_free(wb);
		return rc;
	}
	*got = wlen > off - start ? wlen - (size_t)(off - start) : 0;
	if (*got > n)
		*got = n;
	memcpy(buf, wb + (off - start), *got);
	pthread_mutex_lock(&f->ra_lock);
	w = &f->ra[0];
	for (int i = 1; i < RA_WINDOWS; i++)
		if (!f->ra[i].buf || (w->buf && f->ra[i].used < w->used))
			w = &f->ra[i];
	ps_free(w->buf);
	w->buf = wb;
	w->off = start;
	w->len = wlen;
	w->eof = wlen < RA_WINDOW;
	w->used = ++f->ra_tick;
	pthread_mutex_unlock(&f->ra_lock);
	return PS_OK;
}

static int g_write(struct ps_bfile *f, const void *buf, size_t n, struct ps_error *err)
{
	glfs_fd_t *fd;
	const char *p = buf;
	int rc = file_fd(f, &fd, err);
	if (rc)
		return rc;
	while (n > 0) {
		ssize_t w = glfs_write(fd, p, n, 0);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return ps_err_sys(err, "cannot write '%s' in store '%s'", f->path,
					  f->be->base.location);
		}
		if (w == 0) {
			errno = EIO;
			return ps_err_sys(err, "cannot write '%s' in store '%s'", f->path,
					  f->be->base.location);
		}
		p += w;
		n -= (size_t)w;
	}
	return PS_OK;
}

static int g_fsync(struct ps_bfile *f, struct ps_error *err)
{
	glfs_fd_t *fd;
	int rc = file_fd(f, &fd, err);
	if (rc)
		return rc;
	if (glfs_fsync(fd, NULL, NULL))
		return ps_err_sys(err, "cannot fsync '%s' in store '%s'", f->path,
				  f->be->base.location);
	return PS_OK;
}

static void fill_bstat(const struct stat *s, struct ps_bstat *st)
{
	st->size = (uint64_t)s->st_size;
	st->mtime_ns = (int64_t)s->st_mtim.tv_sec * 1000000000LL + s->st_mtim.tv_nsec;
	st->is_dir = S_ISDIR(s->st_mode);
}

static int g_fstat(struct ps_bfile *f, struct ps_bstat *st, struct ps_error *err)
{
	struct stat s;
	glfs_fd_t *fd;
	int rc = file_fd(f, &fd, err);
	if (rc)
		return rc;
	if (glfs_fstat(fd, &s))
		return ps_err_sys(err, "cannot stat '%s' in store '%s'", f->path,
				  f->be->base.location);
	fill_bstat(&s, st);
	return PS_OK;
}

static void g_close(struct ps_bfile *f)
{
	if (!f)
		return;
	if (f->gen == fork_gen)
		glfs_close(f->fd);
	for (int i = 0; i < RA_WINDOWS; i++)
		ps_free(f->ra[i].buf);
	pthread_mutex_destroy(&f->ra_lock);
	pthread_mutex_destroy(&f->lock);
	ps_free(f->path);
	ps_free(f);
}

static int g_stat(struct ps_backend *be, const char *path, struct ps_bstat *st,
		  struct ps_error *err)
{
	char abs[PATH_MAX];
	struct stat s;
	glfs_t *fs;
	int rc = resolve(be, path, &fs, abs, sizeof(abs), err);
	if (rc)
		return rc;
	if (glfs_lstat(fs, abs, &s)) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "'%s' does not exist in store", path);
		return ps_err_sys(err, "cannot stat '%s' in store '%s'", path, be->location);
	}
	fill_bstat(&s, st);
	return PS_OK;
}

static void parent_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(buf, len, ".");
	else
		snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

static int g_fsync_dir(struct ps_backend *be, const char *path, struct ps_error *err)
{
	char abs[PATH_MAX];
	glfs_t *fs;
	glfs_fd_t *d;
	int rc = resolve(be, path, &fs, abs, sizeof(abs), err);
	if (rc)
		return rc;
	d = glfs_opendir(fs, abs);
	if (!d)
		return ps_err_sys(err, "cannot open directory '%s' in store '%s'", path,
				  be->location);
	if (glfs_fsync(d, NULL, NULL) && errno != EINVAL && errno != ENOTSUP && errno != EBADF)
		rc = ps_err_sys(err, "cannot fsync directory '%s' in store '%s'", path,
				be->location);
	glfs_closedir(d);
	return rc;
}

static int g_rename(struct ps_backend *be, const char *from, const char *to,
		    struct ps_error *err)
{
	char afrom[PATH_MAX], ato[PATH_MAX], dir[PATH_MAX];
	glfs_t *fs;
	int rc = abs_path(G(be), from, afrom, sizeof(afrom), err);
	if (!rc)
		rc = resolve(be, to, &fs, ato, sizeof(ato), err);
	if (rc)
		return rc;
	if (glfs_rename(fs, afrom, ato))
		return ps_err_sys(err, "cannot rename '%s' to '%s' in store '%s'", from, to,
				  be->location);
	parent_of(to, dir, sizeof(dir));
	return g_fsync_dir(be, dir, err);
}

static int g_link(struct ps_backend *be, const char *from, const char *to,
		  struct ps_error *err)
{
	char afrom[PATH_MAX], ato[PATH_MAX], dir[PATH_MAX];
	glfs_t *fs;
	int rc = abs_path(G(be), from, afrom, sizeof(afrom), err);
	if (!rc)
		rc = resolve(be, to, &fs, ato, sizeof(ato), err);
	if (rc)
		return rc;
	if (glfs_link(fs, afrom, ato)) {
		if (errno == EEXIST)
			return ps_err(err, PS_EEXISTS, "'%s' exists in store", to);
		return ps_err_sys(err, "cannot link '%s' in store '%s'", to, be->location);
	}
	parent_of(to, dir, sizeof(dir));
	return g_fsync_dir(be, dir, err);
}

static int g_unlink(struct ps_backend *be, const char *path, struct ps_error *err)
{
	char abs[PATH_MAX];
	glfs_t *fs;
	int rc = resolve(be, path, &fs, abs, sizeof(abs), err);
	if (rc)
		return rc;
	if (glfs_unlink(fs, abs)) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "'%s' does not exist in store", path);
		return ps_err_sys(err, "cannot remove '%s' from store '%s'", path, be->location);
	}
	return PS_OK;
}

static int g_mkdir(struct ps_backend *be, const char *path, struct ps_error *err)
{
	char abs[PATH_MAX];
	glfs_t *fs;
	int rc = resolve(be, path, &fs, abs, sizeof(abs), err);
	if (rc)
		return rc;
	if (glfs_mkdir(fs, abs, 0755) && errno != EEXIST)
		return ps_err_sys(err, "cannot create directory '%s' in store '%s'", path,
				  be->location);
	return PS_OK;
}

static int g_rmdir(struct ps_backend *be, const char *path, struct ps_error *err)
{
	char abs[PATH_MAX];
	glfs_t *fs;
	int rc = resolve(be, path, &fs, abs, sizeof(abs), err);
	if (rc)
		return rc;
	if (glfs_rmdir(fs, abs) && errno != ENOENT)
		return ps_err_sys(err, "cannot remove directory '%s' from store '%s'", path,
				  be->location);
	return PS_OK;
}

static int g_list(struct ps_backend *be, const char *dir, ps_list_fn fn, void *ctx,
		  struct ps_error *err)
{
	char abs[PATH_MAX];
	struct dirent ent, *res = NULL;
	glfs_t *fs;
	glfs_fd_t *d;
	int rc = resolve(be, dir, &fs, abs, sizeof(abs), err);
	if (rc)
		return rc;
	d = glfs_opendir(fs, abs);
	if (!d) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "directory '%s' does not exist in store", dir);
		return ps_err_sys(err, "cannot open directory '%s' in store '%s'", dir,
				  be->location);
	}
	for (;;) {
		if (glfs_readdir_r(d, &ent, &res)) {
			rc = ps_err_sys(err, "cannot read directory '%s' in store '%s'", dir,
					be->location);
			break;
		}
		if (!res)
			break;
		if (res->d_name[0] == '.' &&
		    (!res->d_name[1] || (res->d_name[1] == '.' && !res->d_name[2])))
			continue;
		rc = fn(ctx, res->d_name);
		if (rc)
			break;
	}
	glfs_closedir(d);
	return rc;
}

static void g_free(struct ps_backend *be)
{
	if (!be)
		return;
	vol_release(G(be)->vol);
	pthread_mutex_destroy(&G(be)->lock);
	ps_free(G(be)->url);
	ps_free(be->location);
	ps_free(be);
}

static const struct ps_backend_ops gluster_ops = {
	"gluster", g_open_read, g_create_excl, g_pread, g_write, g_fsync, g_fstat, g_close,
	g_stat, g_rename, g_link, g_unlink, g_mkdir, g_rmdir, g_fsync_dir, g_list, g_free,
	NULL, NULL,   /* rename_nosync, link_nosync: rename and link are used */
	NULL,         /* writeback */
};

/* Checks (or with PS_BACKEND_CREATE makes) the store directory. */
static int check_root(glfs_t *fs, const struct ps_gluster_url *u, const char *location,
		      unsigned flags, struct ps_error *err)
{
	struct stat s;
	if (glfs_stat(fs, u->path, &s) == 0) {
		if (!S_ISDIR(s.st_mode))
			return ps_err(err, PS_EINVAL, "'%s' on GlusterFS volume '%s' is not a directory "
				      "(store '%s')", u->path, u->volume, location);
		return PS_OK;
	}
	if (errno != ENOENT)
		return ps_err_sys(err, "cannot stat '%s' on GlusterFS volume '%s' (store '%s')",
				  u->path, u->volume, location);
	if (!(flags & PS_BACKEND_CREATE))
		return ps_err(err, PS_ENOTFOUND, "store '%s' does not exist (no directory '%s' on "
			      "GlusterFS volume '%s')", location, u->path, u->volume);
	if (glfs_mkdir(fs, u->path, 0755) && errno != EEXIST) {
		if (errno == ENOENT)
			return ps_err(err, PS_ERROR, "cannot create store '%s': the parent of '%s' "
				      "does not exist on GlusterFS volume '%s'", location, u->path,
				      u->volume);
		return ps_err_sys(err, "cannot create store directory '%s' on GlusterFS volume '%s' "
				  "(store '%s')", u->path, u->volume, location);
	}
	return PS_OK;
}

int ps_backend_gluster_open(struct ps_backend **out, const char *url, unsigned flags,
			    struct ps_error *err)
{
	struct gl_be *be = ps_calloc(1, sizeof(*be));
	int rc;
	if (!be || !(be->url = ps_malloc(sizeof(*be->url))) || !(be->base.location = ps_strdup(url))) {
		if (be)
			ps_free(be->url);
		ps_free(be);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	be->base.ops = &gluster_ops;
	pthread_mutex_init(&be->lock, NULL);
	rc = ps_gluster_url_parse(url, be->url, err);
	if (!rc)
		rc = vol_acquire(be->url, url, &be->vol, err);
	if (!rc)
		rc = check_root(be->vol->fs, be->url, url, flags, err);
	if (rc) {
		g_free(&be->base);
		return rc;
	}
	*out = &be->base;
	return PS_OK;
}
