/*
 * server.h - `projstore serve`: the HTTP JSON API over the catalog, the
 * operator dashboard and the Prometheus metrics (libmicrohttpd).
 *
 * The server only reads the catalog and writes intentions into it
 * (ps_cat_request); the host agents do the work.  It can run on its own
 * (cmd_serve.c) or inside another process (the host agent): start it, and
 * stop it before the process ends.
 *
 * Threads: libmicrohttpd's thread pool (opts.threads workers, each with its
 * own event loop and connections); every worker opens its own catalog handle
 * on its first request and keeps it (a catalog handle is used by one thread
 * at a time), so requests never wait for each other on the catalog, and the
 * SQL layer's statements stay prepared per handle.  docs/API.md describes
 * the endpoints, their shapes and status codes.
 */
#ifndef PS_SERVER_H
#define PS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "projstore.h"

struct ps_server;

struct ps_server_opts {
	const char *listen;        /* "HOST:PORT" ("[::1]:PORT" for IPv6); NULL = 127.0.0.1:8470 */
	const char *catalog;       /* catalog spec; NULL = the default for `store` */
	const char *store;         /* store location: full snapshot listings; NULL = catalog only */
	const char *token_file;    /* must exist; NULL = default_token_file, created if missing */
	const char *default_token_file; /* NULL = $PROJSTORE_STATE_DIR/serve-tokens */
	int threads;               /* worker threads; 0 = number of cores */
	double rate_limit;         /* requests per second per client address; 0 = off */
	double rate_burst;         /* bucket size; 0 = 2 x rate_limit (at least 20) */
	size_t max_body;           /* bytes of a request body; 0 = 16 KiB */
	int max_connections;       /* 0 = 1024 */
	int timeout_seconds;       /* idle connection timeout; 0 = 30 */
};
#define PS_SERVER_OPTS_INIT { NULL, NULL, NULL, NULL, NULL, 0, 100.0, 0.0, 0, 0, 0 }

/*
 * Opens the catalog (applying migrations), reads or creates the tokens,
 * binds and starts the workers.  *out belongs to the caller: ps_server_stop().
 */
int ps_server_start(struct ps_server **out, const struct ps_server_opts *opts,
		    struct ps_error *err);
/* Borrowed: "http://127.0.0.1:8470/" (the bound port when 0 was asked). */
const char *ps_server_url(const struct ps_server *s);
/* Borrowed: the token file in use, and whether it was created just now. */
const char *ps_server_token_file(const struct ps_server *s, int *created);
/* Borrowed: the catalog's name (password removed) and engine. */
const char *ps_server_catalog_name(const struct ps_server *s);
/* Stops accepting, finishes the requests in flight, joins the workers and
 * closes every catalog handle.  NULL is fine. */
void ps_server_stop(struct ps_server *s);

#endif
