/*
 * server_int.h - internals shared by the server's source files.
 *
 *   server.c          daemon set-up, the request life cycle, limits, auth,
 *                     catalog handle per worker, static dashboard files
 *   server_api.c      the /v1 endpoints
 *   server_metrics.c  /metrics (Prometheus text) and /healthz
 *   server_tokens.c   the token file
 *   web_assets.c      (generated at build time from the files in src/server/web)
 */
#ifndef PS_SERVER_INT_H
#define PS_SERVER_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "server.h"
#include "projstore_catalog.h"

/* ------------------------------------------------------------ tokens */

enum { ROLE_NONE = 0, ROLE_READ = 1, ROLE_ADMIN = 2 };

#define TOKEN_MAX 128

struct token {
	int role;                 /* ROLE_READ or ROLE_ADMIN */
	char value[TOKEN_MAX + 1];
	size_t len;
	char name[PS_CAT_ID_MAX + 1]; /* optional label; "" = none */
};

struct tokens {
	struct token *v;
	size_t n;
	char *path;
	int created;              /* the file was created by this start */
};

/* Reads `path` (required to exist) or, with path NULL, the default file,
 * creating it with fresh tokens (mode 0600) when it does not exist. */
int ps_tokens_load(struct tokens *t, const char *path, const char *default_path,
		   struct ps_error *err);
void ps_tokens_release(struct tokens *t);
/* The token matching `value` (constant time per candidate), or NULL. */
const struct token *ps_tokens_match(const struct tokens *t, const char *value, size_t len);

/* ------------------------------------------------------------ the server */

/* HTTP status codes counted for /metrics */
#define STATUS_SLOTS 18
/* request duration histogram bounds, seconds */
#define LAT_BUCKETS 11

struct rl_slot;

struct ps_server {
	struct MHD_Daemon *daemon;
	char *catalog_spec;       /* resolved spec (may hold a password) */
	char *catalog_name;       /* for messages */
	char *store_location;
	struct ps_store *store;   /* NULL = snapshot listings from the catalog */
	pthread_mutex_t store_lock; /* guards `store` calls */
	struct tokens tokens;
	char url[160];
	size_t max_body;
	int64_t started_ns;

	/* catalog handles of the workers, closed at stop */
	pthread_mutex_t pool_lock;
	struct ps_catalog **pool;
	size_t npool, pool_cap;
	unsigned generation;      /* tells a worker's handle from an earlier server's */

	/* rate limit: token buckets per client address */
	double rate, burst;
	struct rl_slot *rl;
	pthread_mutex_t *rl_locks;

	/* counters for /metrics */
	atomic_uint_fast64_t status_count[STATUS_SLOTS];
	atomic_uint_fast64_t lat_bucket[LAT_BUCKETS + 1];
	atomic_uint_fast64_t lat_sum_us;
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t rate_limited;
	atomic_uint_fast64_t catalog_errors;
};

/* One request, alive from the first call of the access handler to the end. */
struct req {
	struct ps_server *srv;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	int is_get;               /* GET or HEAD */
	int is_post;
	int role;                 /* of the token presented */
	int token_given;
	const struct token *token;
	char *body;               /* POST body (ps_malloc), NUL-terminated */
	size_t body_len;
	int body_too_big;
	int64_t start_ns;
	int responded;
};

/* the worker's catalog handle (opened on first use); NULL and err set when
 * the catalog cannot be opened */
struct ps_catalog *ps_srv_catalog(struct req *r, struct ps_error *err);

/* Responses: each returns the libmicrohttpd result of queueing it. */
enum MHD_Result ps_srv_json(struct req *r, unsigned status, json_t *body /* stolen */);
enum MHD_Result ps_srv_error(struct req *r, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The HTTP status and code for a library error; answers it. */
enum MHD_Result ps_srv_fail(struct req *r, const struct ps_error *err);
enum MHD_Result ps_srv_text(struct req *r, unsigned status, const char *content_type, char *text,
			    size_t len /* text is ps_malloc'ed and freed by the response */);

/* server_api.c: everything under /v1 (the caller has checked the token) */
enum MHD_Result ps_srv_api(struct req *r);
/* server_metrics.c */
enum MHD_Result ps_srv_metrics(struct req *r);
enum MHD_Result ps_srv_healthz(struct req *r);
/* the status-code slot of the counters */
int ps_srv_status_slot(unsigned status);
extern const unsigned ps_srv_status_codes[STATUS_SLOTS];
extern const double ps_srv_lat_bounds[LAT_BUCKETS];

/* web_assets.c (generated) */
struct ps_web_asset {
	const char *path;         /* "/index.html" */
	const char *type;         /* Content-Type */
	const unsigned char *data;
	size_t len;
};
extern const struct ps_web_asset ps_web_assets[];
extern const size_t ps_web_assets_count;


/* libmicrohttpd (and GnuTLS, which it pulls in) is loaded with dlopen() when
 * the server starts (ps_server_mhd_load, server.c): no other command pays for
 * relocating them at start-up. The pointers have the header's types. */
struct ps_mhd_api {
	__typeof__(MHD_add_response_header) *add_response_header;
	__typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
	__typeof__(MHD_destroy_response) *destroy_response;
	__typeof__(MHD_get_connection_info) *get_connection_info;
	__typeof__(MHD_get_connection_values) *get_connection_values;
	__typeof__(MHD_get_daemon_info) *get_daemon_info;
	__typeof__(MHD_lookup_connection_value) *lookup_connection_value;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
};
extern struct ps_mhd_api ps_mhd;
/* Loads it once; PS_ERROR with the reason when it cannot. */
int ps_server_mhd_load(struct ps_error *err);
#define MHD_add_response_header ps_mhd.add_response_header
#define MHD_create_response_from_buffer ps_mhd.create_response_from_buffer
#define MHD_destroy_response ps_mhd.destroy_response
#define MHD_get_connection_info ps_mhd.get_connection_info
#define MHD_get_connection_values ps_mhd.get_connection_values
#define MHD_get_daemon_info ps_mhd.get_daemon_info
#define MHD_lookup_connection_value ps_mhd.lookup_connection_value
#define MHD_queue_response ps_mhd.queue_response
#define MHD_start_daemon ps_mhd.start_daemon
#define MHD_stop_daemon ps_mhd.stop_daemon

#endif
