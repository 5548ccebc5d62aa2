/*
 * server.c - the HTTP side of `projstore serve` (libmicrohttpd, thread pool).
 *
 * Request life cycle (the access handler is called several times per
 * request):
 *   1st call   headers are in.  Count the request, apply the per-address
 *              rate limit (429), refuse a declared body over the limit (413;
 *              the connection is closed, the body never read).  A POST gets
 *              a struct req and waits for its body; any other request is
 *              answered on its 2nd call (answering on the 1st would make
 *              libmicrohttpd close the connection: no keep-alive).
 *   next calls body bytes: copied into r->body up to max_body; beyond that
 *              the rest is read and dropped, and the answer is 413.
 *   last call  (no more body) the POST is answered.
 * The completion callback frees the struct req and records the duration.
 *
 * Routing: /v1/... needs a bearer token (401 without one or with a
 * malformed header, 403 with one that is not in the token file, or with a
 * read-only one for a POST); /, the dashboard's files, /healthz and /metrics
 * are open.  Every answer is JSON except the dashboard files and /metrics.
 *
 * Catalog handles: one per worker thread, opened on the worker's first
 * request (thread-local) and recorded in srv->pool so that stop can close
 * them after the workers have been joined.
 */
#define _GNU_SOURCE
#include "server_int.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "../lib/util/util.h"

/* ------------------------------------------------------------ libmicrohttpd, loaded at start */

struct ps_mhd_api ps_mhd;
static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;
static char mhd_error[300];

static void mhd_load(void)
{
	void *h = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(mhd_error, sizeof(mhd_error),
			 "the HTTP server library is not installed (libmicrohttpd12): %s", dlerror());
		return;
	}
#define MHD_SYM(f)                                                                          \
	do {                                                                                \
		*(void **)(&ps_mhd.f) = dlsym(h, "MHD_" #f);                                \
		if (!ps_mhd.f) {                                                            \
			snprintf(mhd_error, sizeof(mhd_error), "libmicrohttpd lacks MHD_%s", #f); \
			return;                                                             \
		}                                                                           \
	} while (0)
	MHD_SYM(add_response_header);
	MHD_SYM(create_response_from_buffer);
	MHD_SYM(destroy_response);
	MHD_SYM(get_connection_info);
	MHD_SYM(get_connection_values);
	MHD_SYM(get_daemon_info);
	MHD_SYM(lookup_connection_value);
	MHD_SYM(queue_response);
	MHD_SYM(start_daemon);
	MHD_SYM(stop_daemon);
#undef MHD_SYM
}

int ps_server_mhd_load(struct ps_error *err)
{
	pthread_once(&mhd_once, mhd_load);
	if (mhd_error[0])
		return ps_err(err, PS_ERROR, "%s", mhd_error);
	return PS_OK;
}

/* ------------------------------------------------------------ counters */

const unsigned ps_srv_status_codes[STATUS_SLOTS] = { 200, 202, 304, 400, 401, 403, 404, 405, 409,
						     413, 414, 429, 431, 500, 503, 0, 0, 0 };
const double ps_srv_lat_bounds[LAT_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						0.05,   0.1,   0.25,   1.0,   5.0 };

int ps_srv_status_slot(unsigned status)
{
	for (int i = 0; i < STATUS_SLOTS; i++)
		if (ps_srv_status_codes[i] == status)
			return i;
	return STATUS_SLOTS - 1; /* "other" */
}

static void count_status(struct ps_server *s, unsigned status)
{
	atomic_fetch_add_explicit(&s->status_count[ps_srv_status_slot(status)], 1,
				  memory_order_relaxed);
}

static void count_duration(struct ps_server *s, int64_t start_ns)
{
	double sec = (double)(ps_mono_ns() - start_ns) / 1e9;
	int b = 0;
	while (b < LAT_BUCKETS && sec > ps_srv_lat_bounds[b])
		b++;
	atomic_fetch_add_explicit(&s->lat_bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->lat_sum_us, (uint_fast64_t)(sec * 1e6), memory_order_relaxed);
}

/* ------------------------------------------------------------ catalog pool */

static _Thread_local struct ps_catalog *tl_cat;
static _Thread_local unsigned tl_generation;
static atomic_uint server_generation;

struct ps_catalog *ps_srv_catalog(struct req *r, struct ps_error *err)
{
	struct ps_server *s = r->srv;
	if (tl_cat && tl_generation == s->generation)
		return tl_cat;
	struct ps_catalog *cat = NULL;
	if (ps_catalog_open(&cat, s->catalog_spec, NULL, err) != PS_OK)
		return NULL;
	pthread_mutex_lock(&s->pool_lock);
	if (s->npool == s->pool_cap) {
		size_t nc = s->pool_cap ? s->pool_cap * 2 : 8;
		struct ps_catalog **nv = ps_realloc(s->pool, nc * sizeof(*nv));
		if (!nv) {
			pthread_mutex_unlock(&s->pool_lock);
			ps_catalog_close(cat);
			ps_err(err, PS_ERROR, "out of memory");
			return NULL;
		}
		s->pool = nv;
		s->pool_cap = nc;
	}
	s->pool[s->npool++] = cat;
	pthread_mutex_unlock(&s->pool_lock);
	tl_cat = cat;
	tl_generation = s->generation;
	return cat;
}

/* ------------------------------------------------------------ rate limit */

#define RL_SLOTS 4096
#define RL_LOCKS 64

struct rl_slot {
	unsigned char addr[16];
	int used;
	double tokens;
	int64_t last_ns;
};

static uint32_t addr_hash(const unsigned char *a)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ a[i]) * 16777619u;
	return h;
}

/* 1 when the client may go on */
static int rate_ok(struct ps_server *s, struct MHD_Connection *conn)
{
	if (s->rate <= 0)
		return 1;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	unsigned char a[16];
	memset(a, 0, sizeof(a));
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		else if (sa->sa_family == AF_INET6)
			memcpy(a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	}
	uint32_t h = addr_hash(a);
	struct rl_slot *slot = &s->rl[h % RL_SLOTS];
	pthread_mutex_t *lock = &s->rl_locks[h % RL_LOCKS];
	int64_t now = ps_mono_ns();
	int ok;
	pthread_mutex_lock(lock);
	if (!slot->used || memcmp(slot->addr, a, 16) != 0) {
		/* a new address (or one that collided): a full bucket */
		memcpy(slot->addr, a, 16);
		slot->used = 1;
		slot->tokens = s->burst;
		slot->last_ns = now;
	}
	slot->tokens += (double)(now - slot->last_ns) / 1e9 * s->rate;
	if (slot->tokens > s->burst)
		slot->tokens = s->burst;
	slot->last_ns = now;
	ok = slot->tokens >= 1.0;
	if (ok)
		slot->tokens -= 1.0;
	pthread_mutex_unlock(lock);
	return ok;
}

/* ------------------------------------------------------------ responses */

static void common_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
}

static enum MHD_Result queue(struct req *r, unsigned status, struct MHD_Response *resp)
{
	if (!resp)
		return MHD_NO;
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->responded = 1;
	count_status(r->srv, status);
	return ret;
}

enum MHD_Result ps_srv_json(struct req *r, unsigned status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text) {
		static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
		struct MHD_Response *resp = MHD_create_response_from_buffer(
			sizeof(oom) - 1, (void *)(uintptr_t)oom, MHD_RESPMEM_PERSISTENT);
		if (resp) {
			MHD_add_response_header(resp, "Content-Type", "application/json");
			common_headers(resp);
		}
		return queue(r, 500, resp);
	}
	size_t len = strlen(text);
	/* json_dumps allocates with malloc: MUST_FREE frees with free() */
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	common_headers(resp);
	if (status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"projstore\"");
	return queue(r, status, resp);
}

enum MHD_Result ps_srv_text(struct req *r, unsigned status, const char *content_type, char *text,
			    size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", content_type);
	common_headers(resp);
	return queue(r, status, resp);
}

enum MHD_Result ps_srv_error(struct req *r, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
	if (!j) /* a message that is not UTF-8 */
		j = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", "(unprintable)");
	return ps_srv_json(r, status, j);
}

enum MHD_Result ps_srv_fail(struct req *r, const struct ps_error *err)
{
	const char *msg = err->msg[0] ? err->msg : "failed";
	switch (err->code) {
	case PS_ENOTFOUND:
		return ps_srv_error(r, 404, "not_found", "%s", msg);
	case PS_EINVAL:
		return ps_srv_error(r, 400, "bad_request", "%s", msg);
	case PS_EEXISTS:
	case PS_ELOCKED:
		if (strstr(msg, "catalog") && strstr(msg, "busy")) {
			atomic_fetch_add(&r->srv->catalog_errors, 1);
			return ps_srv_error(r, 503, "unavailable", "%s", msg);
		}
		return ps_srv_error(r, 409, "conflict", "%s", msg);
	default:
		atomic_fetch_add(&r->srv->catalog_errors, 1);
		fprintf(stderr, "projstore serve: %s %s: %s\n", r->method, r->url, msg);
		if (strstr(msg, "connect") || strstr(msg, "catalog"))
			return ps_srv_error(r, 503, "unavailable", "%s", msg);
		return ps_srv_error(r, 500, "internal", "%s", msg);
	}
}

/* ------------------------------------------------------------ dashboard files */

static struct MHD_Response *asset_resp[64];
static char asset_etag[64][24];

static void assets_prepare(void)
{
	for (size_t i = 0; i < ps_web_assets_count && i < PS_ARRAY_LEN(asset_resp); i++) {
		const struct ps_web_asset *a = &ps_web_assets[i];
		if (asset_resp[i])
			continue;
		uint64_t h = 1469598103934665603ULL;
		for (size_t k = 0; k < a->len; k++)
			h = (h ^ a->data[k]) * 1099511628211ULL;
		snprintf(asset_etag[i], sizeof(asset_etag[i]), "\"%016llx\"", (unsigned long long)h);
		struct MHD_Response *resp = MHD_create_response_from_buffer(
			a->len, (void *)(uintptr_t)a->data, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			continue;
		MHD_add_response_header(resp, "Content-Type", a->type);
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		MHD_add_response_header(resp, "ETag", asset_etag[i]);
		MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
		MHD_add_response_header(resp, "X-Frame-Options", "DENY");
		MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
		MHD_add_response_header(resp, "Content-Security-Policy",
					"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
		asset_resp[i] = resp;
	}
}

static enum MHD_Result serve_asset(struct req *r)
{
	const char *path = strcmp(r->url, "/") == 0 ? "/index.html" : r->url;
	for (size_t i = 0; i < ps_web_assets_count && i < PS_ARRAY_LEN(asset_resp); i++) {
		if (strcmp(ps_web_assets[i].path, path) != 0 || !asset_resp[i])
			continue;
		if (!r->is_get)
			return ps_srv_error(r, 405, "method_not_allowed", "%s takes GET", r->url);
		const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							      MHD_HTTP_HEADER_IF_NONE_MATCH);
		if (inm && strcmp(inm, asset_etag[i]) == 0) {
			struct MHD_Response *resp =
				MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
			if (resp)
				MHD_add_response_header(resp, "ETag", asset_etag[i]);
			return queue(r, 304, resp);
		}
		r->responded = 1;
		count_status(r->srv, 200);
		return MHD_queue_response(r->conn, 200, asset_resp[i]);
	}
	return ps_srv_error(r, 404, "not_found", "nothing at %s", r->url);
}

/* ------------------------------------------------------------ auth */

/* Sets r->role from the Authorization header; answers 401/403 itself and
 * returns 0 when the request must stop there. */
static int authorize(struct req *r, enum MHD_Result *ret)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || !*h) {
		*ret = ps_srv_error(r, 401, "unauthorized",
				    "this needs a bearer token (Authorization: Bearer TOKEN)");
		return 0;
	}
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		*ret = ps_srv_error(r, 401, "unauthorized",
				    "the Authorization header must be 'Bearer TOKEN'");
		return 0;
	}
	const char *v = h + 7;
	while (*v == ' ')
		v++;
	size_t len = strlen(v);
	while (len && v[len - 1] == ' ')
		len--;
	const struct token *t = len ? ps_tokens_match(&r->srv->tokens, v, len) : NULL;
	if (!t) {
		*ret = ps_srv_error(r, 403, "forbidden", "the token is not valid");
		return 0;
	}
	r->token = t;
	r->role = t->role;
	if (r->is_post && t->role != ROLE_ADMIN) {
		*ret = ps_srv_error(r, 403, "forbidden",
				    "a read-only token cannot change anything: use an admin token");
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------ dispatch */

static enum MHD_Result dispatch(struct req *r)
{
	const char *u = r->url;
	if (strncmp(u, "/v1/", 4) == 0 || strcmp(u, "/v1") == 0) {
		enum MHD_Result ret;
		if (!authorize(r, &ret))
			return ret;
		return ps_srv_api(r);
	}
	if (!r->is_get && !r->is_post)
		return ps_srv_error(r, 405, "method_not_allowed", "method %s is not supported",
				    r->method);
	if (strcmp(u, "/healthz") == 0)
		return r->is_get ? ps_srv_healthz(r)
				 : ps_srv_error(r, 405, "method_not_allowed", "/healthz takes GET");
	if (strcmp(u, "/metrics") == 0)
		return r->is_get ? ps_srv_metrics(r)
				 : ps_srv_error(r, 405, "method_not_allowed", "/metrics takes GET");
	return serve_asset(r);
}

/* *con_cls of a request without a body between its first and second call */
static struct req get_marker;

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	struct ps_server *s = cls;
	struct req *r = *con_cls;
	(void)version;
	if (r == &get_marker) {
		/* second call of a request without a body: answer it now that it
		 * has been read in full (an answer queued earlier would make
		 * libmicrohttpd close the connection instead of keeping it alive) */
		struct req stack;
		memset(&stack, 0, sizeof(stack));
		stack.srv = s;
		stack.conn = conn;
		stack.method = method;
		stack.url = url;
		stack.start_ns = ps_mono_ns();
		stack.is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
		*upload_data_size = 0; /* a body nobody asked for is ignored */
		enum MHD_Result ret = dispatch(&stack);
		count_duration(s, stack.start_ns);
		return ret;
	}
	if (!r) {
		/* first call: the headers are in */
		struct req stack;
		memset(&stack, 0, sizeof(stack));
		stack.srv = s;
		stack.conn = conn;
		stack.method = method;
		stack.url = url;
		stack.start_ns = ps_mono_ns();
		stack.is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
		stack.is_post = strcmp(method, "POST") == 0;
		atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
		if (!rate_ok(s, conn)) {
			atomic_fetch_add(&s->rate_limited, 1);
			struct MHD_Response *resp;
			static const char body[] =
				"{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many requests from "
				"this address: slow down\"}}";
			resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body,
							       MHD_RESPMEM_PERSISTENT);
			if (resp) {
				MHD_add_response_header(resp, "Content-Type", "application/json");
				MHD_add_response_header(resp, "Retry-After", "1");
				common_headers(resp);
			}
			return queue(&stack, 429, resp);
		}
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > s->max_body)
			return ps_srv_error(&stack, 413, "payload_too_large",
					    "a request body may have at most %zu bytes", s->max_body);
		if (!stack.is_post) {
			*con_cls = &get_marker;
			return MHD_YES;
		}
		r = ps_calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*r = stack;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->body_too_big || r->body_len + n > s->max_body) {
			r->body_too_big = 1;
			return MHD_YES;
		}
		char *nb = ps_realloc(r->body, r->body_len + n + 1);
		if (!nb)
			return MHD_NO;
		memcpy(nb + r->body_len, upload_data, n);
		r->body = nb;
		r->body_len += n;
		r->body[r->body_len] = 0;
		return MHD_YES;
	}
	if (r->responded)
		return MHD_YES;
	if (r->body_too_big)
		return ps_srv_error(r, 413, "payload_too_large",
				    "a request body may have at most %zu bytes", s->max_body);
	return dispatch(r);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;
	(void)cls;
	(void)conn;
	(void)toe;
	if (!r || r == &get_marker) {
		*con_cls = NULL;
		return;
	}
	count_duration(r->srv, r->start_ns);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t l = strlen(buf);
	while (l && buf[l - 1] == '\n')
		buf[--l] = 0;
	fprintf(stderr, "projstore serve: %s\n", buf);
}

/* ------------------------------------------------------------ start/stop */

static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len, int *v6,
			struct ps_error *err)
{
	char host[256];
	const char *port;
	memset(ss, 0, sizeof(*ss));
	if (spec[0] == '[') {
		const char *e = strchr(spec, ']');
		if (!e || e[1] != ':' || (size_t)(e - spec - 1) >= sizeof(host))
			return ps_err(err, PS_EINVAL, "--listen %s: expected [ADDRESS]:PORT", spec);
		memcpy(host, spec + 1, (size_t)(e - spec - 1));
		host[e - spec - 1] = 0;
		port = e + 2;
	} else {
		const char *c = strrchr(spec, ':');
		if (!c || (size_t)(c - spec) >= sizeof(host))
			return ps_err(err, PS_EINVAL, "--listen %s: expected ADDRESS:PORT", spec);
		memcpy(host, spec, (size_t)(c - spec));
		host[c - spec] = 0;
		port = c + 1;
	}
	char *end;
	errno = 0;
	unsigned long p = strtoul(port, &end, 10);
	if (!*port || *end || errno || p > 65535)
		return ps_err(err, PS_EINVAL, "--listen %s: bad port '%s'", spec, port);
	if (!*host)
		snprintf(host, sizeof(host), "127.0.0.1");
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)p);
		*len = sizeof(*a4);
		*v6 = 0;
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*a6);
		*v6 = 1;
	} else if (strcmp(host, "localhost") == 0) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)p);
		a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*a4);
		*v6 = 0;
	} else {
		return ps_err(err, PS_EINVAL, "--listen %s: '%s' is not an IP address", spec, host);
	}
	return PS_OK;
}

int ps_server_start(struct ps_server **out, const struct ps_server_opts *o, struct ps_error *err)
{
	struct ps_server_opts dflt = PS_SERVER_OPTS_INIT;
	if (!o)
		o = &dflt;
	if (ps_server_mhd_load(err) != PS_OK)
		return PS_ERROR;
	struct ps_server *s = ps_calloc(1, sizeof(*s));
	if (!s)
		return ps_err(err, PS_ERROR, "out of memory");
	pthread_mutex_init(&s->pool_lock, NULL);
	pthread_mutex_init(&s->store_lock, NULL);
	s->generation = atomic_fetch_add(&server_generation, 1) + 1;
	s->started_ns = ps_now_ns();
	s->max_body = o->max_body ? o->max_body : 16 * 1024;
	s->rate = o->rate_limit > 0 ? o->rate_limit : 0;
	s->burst = o->rate_burst > 0 ? o->rate_burst : (s->rate * 2 < 20 ? 20 : s->rate * 2);
	int rc;

	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	int v6 = 0;
	rc = parse_listen(o->listen ? o->listen : "127.0.0.1:8470", &ss, &sslen, &v6, err);
	if (rc != PS_OK)
		goto fail;

	/* the catalog: resolve and open once here, so that a wrong spec or an
	 * unreachable server fails the start, not the first request */
	char spec[4200];
	if (o->catalog && *o->catalog) {
		snprintf(spec, sizeof(spec), "%s", o->catalog);
	} else {
		rc = ps_catalog_default_spec(o->store, spec, sizeof(spec), err);
		if (rc != PS_OK) {
			rc = PS_EINVAL;
			goto fail;
		}
	}
	struct ps_catalog *probe = NULL;
	rc = ps_catalog_open(&probe, spec, o->store, err);
	if (rc != PS_OK)
		goto fail;
	s->catalog_name = ps_strdup(ps_catalog_name(probe));
	ps_catalog_close(probe);
	s->catalog_spec = ps_strdup(spec);
	if (!s->catalog_spec || !s->catalog_name) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto fail;
	}
	if (o->store && *o->store) {
		rc = ps_store_open(&s->store, o->store, err);
		if (rc != PS_OK)
			goto fail;
		s->store_location = ps_strdup(o->store);
	}

	rc = ps_tokens_load(&s->tokens, o->token_file, o->default_token_file, err);
	if (rc != PS_OK)
		goto fail;

	if (s->rate > 0) {
		s->rl = ps_calloc(RL_SLOTS, sizeof(*s->rl));
		s->rl_locks = ps_calloc(RL_LOCKS, sizeof(*s->rl_locks));
		if (!s->rl || !s->rl_locks) {
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto fail;
		}
		for (int i = 0; i < RL_LOCKS; i++)
			pthread_mutex_init(&s->rl_locks[i], NULL);
	}
	assets_prepare();

	unsigned threads = (unsigned)(o->threads > 0 ? o->threads : ps_ncpus());
	if (threads < 1)
		threads = 1;
	unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
	if (v6)
		flags |= MHD_USE_IPv6;
	s->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, access_handler, s,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)(o->max_connections > 0 ? o->max_connections : 1024),
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->timeout_seconds > 0 ? o->timeout_seconds : 30),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		MHD_OPTION_NOTIFY_COMPLETED, completed, s,
		MHD_OPTION_END);
	if (!s->daemon) {
		rc = ps_err(err, PS_ERROR, "cannot listen on %s: %s (in use, or not an address of this "
					   "machine?)",
			    o->listen ? o->listen : "127.0.0.1:8470", strerror(errno));
		goto fail;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	unsigned port = di ? di->port : 0;
	char host[INET6_ADDRSTRLEN] = "127.0.0.1";
	if (v6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
	snprintf(s->url, sizeof(s->url), v6 ? "http://[%s]:%u/" : "http://%s:%u/", host, port);
	*out = s;
	return PS_OK;
fail:
	ps_server_stop(s);
	return rc;
}

const char *ps_server_url(const struct ps_server *s) { return s->url; }

const char *ps_server_token_file(const struct ps_server *s, int *created)
{
	if (created)
		*created = s->tokens.created;
	return s->tokens.path;
}

const char *ps_server_catalog_name(const struct ps_server *s) { return s->catalog_name; }

void ps_server_stop(struct ps_server *s)
{
	if (!s)
		return;
	if (s->daemon)
		MHD_stop_daemon(s->daemon); /* joins the workers */
	for (size_t i = 0; i < s->npool; i++)
		ps_catalog_close(s->pool[i]);
	free(s->pool);
	if (s->rl_locks)
		for (int i = 0; i < RL_LOCKS; i++)
			pthread_mutex_destroy(&s->rl_locks[i]);
	free(s->rl_locks);
	free(s->rl);
	ps_store_free(s->store);
	ps_tokens_release(&s->tokens);
	free(s->catalog_spec);
	free(s->catalog_name);
	free(s->store_location);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_mutex_destroy(&s->store_lock);
	free(s);
}
