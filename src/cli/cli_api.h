/*
 * cli_api.h - a small client of `projstore serve`'s HTTP API (cli_api.c):
 * libc and jansson only, so that the launcher can use it before the rest of
 * projstore is loaded.
 */
#ifndef PS_CLI_API_H
#define PS_CLI_API_H
#include <stddef.h>

/* Splits http://HOST:PORT (HOST a name, an IPv4 address or [IPv6]; an
 * optional trailing "/"). Returns 0, or -1 for anything else. */
int cli_api_parse_url(const char *url, char *host, size_t hlen, char *port, size_t plen);
/* The bearer token: $PROJSTORE_API_TOKEN, else from the file
 * $PROJSTORE_API_TOKEN_FILE (serve's "ROLE TOKEN [NAME]" lines: its read
 * token, else its first; or a token alone). Returns 0, or -1 with msg. */
int cli_api_token(char *buf, size_t len, char *msg, size_t msglen);
/* Splits an HTTP answer (len bytes, not NUL-terminated): *status from the
 * status line ("HTTP/1.x NNN ..."), *body_off where the body starts (after
 * the blank line ending the headers). Returns 0, or -1 when it is not an
 * HTTP answer. */
int cli_api_parse_response(const char *buf, size_t len, int *status, size_t *body_off);
/* GET path: *status and the body (*body, malloc'ed, NUL-terminated; *blen).
 * Returns 0, or -1 with msg (no connection, no HTTP answer, timeout). */
int cli_api_get(const char *url, const char *token, const char *path, double timeout,
		int *status, char **body, size_t *blen, char *msg, size_t msglen);
/* GET path, answered 200 with a JSON object: *out (json_decref it), 0.
 * Otherwise the reason is printed (the server's message and HTTP status,
 * or why there was no answer) and the exit code returned: 2 for a request
 * the server refused as bad (400), else 1. The token is cli_api_token's. */
struct json_t;
int cli_api_get_json(const char *url, const char *path, double timeout, struct json_t **out);
/* `projstore where PROJECT` answered by the API at url (the host on stdout,
 * or with json_out the location object). Returns the exit code: 0, 1 (no
 * answer or an error answer), 2 (the server refused the id). */
int cli_api_where(const char *url, const char *id, int json_out);
#endif
