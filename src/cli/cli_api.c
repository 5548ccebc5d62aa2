/*
 * cli_api.c - the client side of `projstore where --api`: one GET to a
 * `projstore serve` (docs/API.md), whose pooled catalog connection answers in
 * microseconds where a command of its own would open a catalog connection
 * (PostgreSQL: a new server process, ~25 ms, plus loading libpq).
 *
 * It is compiled into the launcher too (src/cli/launcher.c), which must start
 * without the store's libraries: libc and jansson only. HTTP/1.0 over
 * plain TCP, one request per connection: the server is local (loopback, or
 * a trusted network; no TLS). A general HTTP library (libcurl) costs more
 * to load (~18 ms here) than the whole answer is allowed to take.
 */
#define _GNU_SOURCE
#include "cli_api.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define API_MAX_RESPONSE (1 << 20)

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_api_parse_url(const char *url, char *host, size_t hlen, char *port, size_t plen)
{
	const char *p, *e, *colon;
	if (strncmp(url, "http://", 7))
		return -1;
	p = url + 7;
	e = p + strcspn(p, "/");
	if (e[0] == '/' && e[1])
		return -1;                    /* a path after the address */
	if (*p == '[') {                      /* [IPv6]:port */
		const char *rb = memchr(p, ']', (size_t)(e - p));
		if (!rb || rb[1] != ':' || (size_t)(rb - p - 1) >= hlen || rb == p + 1)
			return -1;
		memcpy(host, p + 1, (size_t)(rb - p - 1));
		host[rb - p - 1] = 0;
		colon = rb + 1;
	} else {
		colon = memchr(p, ':', (size_t)(e - p));
		if (!colon || colon == p || (size_t)(colon - p) >= hlen)
			return -1;
		memcpy(host, p, (size_t)(colon - p));
		host[colon - p] = 0;
	}
	/* a name or an IPv4 address; in brackets an IPv6 address (with a zone) */
	for (const char *c = host; *c; c++) {
		int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
			 *c == '.' || *c == '-' || (*p == '[' && (*c == ':' || *c == '%')) ||
			 (*p != '[' && *c == '_');
		if (!ok)
			return -1;
	}
	if (*p == '[' && !strchr(host, ':'))
		return -1;
	if ((size_t)(e - colon - 1) >= plen || e - colon - 1 < 1)
		return -1;
	memcpy(port, colon + 1, (size_t)(e - colon - 1));
	port[e - colon - 1] = 0;
	{
		long v = 0;
		if (strlen(port) > 5)
			return -1;
		for (const char *c = port; *c; c++) {
			if (*c < '0' || *c > '9')
				return -1;
			v = v * 10 + (*c - '0');
		}
		if (v < 1 || v > 65535)
			return -1;
	}
	return 0;
}

int cli_api_token(char *buf, size_t len, char *msg, size_t msglen)
{
	const char *t = getenv("PROJSTORE_API_TOKEN");
	const char *f = getenv("PROJSTORE_API_TOKEN_FILE");
	if (t && *t) {
		if (strlen(t) >= len) {
			snprintf(msg, msglen, "PROJSTORE_API_TOKEN is too long");
			return -1;
		}
		snprintf(buf, len, "%s", t);
		return 0;
	}
	if (f && *f) {
		/* a file of `serve`'s form (ROLE TOKEN [NAME] lines), or one
		 * token alone */
		char line[1024];
		FILE *fp = fopen(f, "re");
		if (!fp) {
			snprintf(msg, msglen, "cannot read the API token file '%s': %s", f,
				 strerror(errno));
			return -1;
		}
		/* a read token when the file has one (nothing here writes), else
		 * the first token */
		buf[0] = 0;
		while (fgets(line, sizeof(line), fp)) {
			char a[256], b[256];
			int n = sscanf(line, "%255s %255s", a, b);
			int role = n >= 2 && (!strcmp(a, "read") || !strcmp(a, "admin"));
			if (n < 1 || a[0] == '#')
				continue;
			if (!buf[0] || (role && !strcmp(a, "read")))
				snprintf(buf, len, "%s", role ? b : a);
			if (role && !strcmp(a, "read"))
				break;
		}
		fclose(fp);
		if (!buf[0]) {
			snprintf(msg, msglen, "no token in '%s'", f);
			return -1;
		}
		return 0;
	}
	snprintf(msg, msglen, "the API needs a token: set PROJSTORE_API_TOKEN or "
			      "PROJSTORE_API_TOKEN_FILE (a read token of the server's token file)");
	return -1;
}

static int connect_to(const char *host, const char *port, int64_t deadline, char *msg,
		      size_t msglen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, rc, err = 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(msg, msglen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pf;
		socklen_t sl = sizeof(err);
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			err = errno;
			close(fd);
			fd = -1;
			continue;
		}
		pf.fd = fd;
		pf.events = POLLOUT;
		rc = poll(&pf, 1, (int)(deadline - mono_ms() > 0 ? deadline - mono_ms() : 0));
		if (rc == 1 && !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) && !err)
			break;
		if (rc == 0)
			err = ETIMEDOUT;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(msg, msglen, "cannot connect to %s:%s: %s", host, port, strerror(err));
	return fd;
}

/* Sends all of buf, or fails by the deadline. */
static int send_all(int fd, const char *buf, size_t n, int64_t deadline)
{
	while (n) {
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w > 0) {
			buf += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		struct pollfd pf = { fd, POLLOUT, 0 };
		int64_t left = deadline - mono_ms();
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
	return 0;
}

int cli_api_parse_response(const char *buf, size_t len, int *status, size_t *body_off)
{
	size_t i;
	int st = 0;
	/* "HTTP/" DIGIT "." DIGIT SP 3DIGIT */
	if (len < 12 || memcmp(buf, "HTTP/", 5) || buf[5] < '0' || buf[5] > '9' || buf[6] != '.' ||
	    buf[7] < '0' || buf[7] > '9' || buf[8] != ' ')
		return -1;
	for (i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		st = st * 10 + (buf[i] - '0');
	}
	if (st < 100 || (len > 12 && buf[12] != ' ' && buf[12] != '\r'))
		return -1;
	for (i = 12; i + 4 <= len; i++)
		if (buf[i] == '\r' && !memcmp(buf + i, "\r\n\r\n", 4)) {
			*status = st;
			*body_off = i + 4;
			return 0;
		}
	return -1;
}

int cli_api_get(const char *url, const char *token, const char *path, double timeout,
		int *status, char **body, size_t *blen, char *msg, size_t msglen)
{
	char host[256], port[16], req[2048];
	char *buf = NULL;
	size_t len = 0, cap = 0, off = 0;
	int64_t deadline = mono_ms() + (int64_t)(timeout * 1000);
	int fd, n, st = 0;
	*body = NULL;
	*blen = 0;
	if (cli_api_parse_url(url, host, sizeof(host), port, sizeof(port))) {
		snprintf(msg, msglen, "invalid API URL '%s' (expected http://HOST:PORT)", url);
		return -1;
	}
	if (strpbrk(token, "\r\n") || strpbrk(path, "\r\n ")) {
		snprintf(msg, msglen, "invalid token or path");
		return -1;
	}
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.0\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\n"
		     "Accept: application/json\r\nUser-Agent: projstore\r\n\r\n",
		     path, host, port, token);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		snprintf(msg, msglen, "request too long");
		return -1;
	}
	fd = connect_to(host, port, deadline, msg, msglen);
	if (fd < 0)
		return -1;
	if (send_all(fd, req, (size_t)n, deadline)) {
		snprintf(msg, msglen, "cannot send to %s: %s", url, strerror(errno));
		close(fd);
		return -1;
	}
	/* HTTP/1.0: the answer ends when the server closes */
	for (;;) {
		ssize_t r;
		if (len + 4096 + 1 > cap) {
			char *nb;
			if (cap >= API_MAX_RESPONSE) {
				snprintf(msg, msglen, "the answer of %s is too large", url);
				goto fail;
			}
			cap = cap ? cap * 2 : 8192;
			if (!(nb = realloc(buf, cap))) {
				snprintf(msg, msglen, "out of memory");
				goto fail;
			}
			buf = nb;
		}
		r = recv(fd, buf + len, cap - len - 1, 0);
		if (r > 0) {
			len += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			struct pollfd pf = { fd, POLLIN, 0 };
			int64_t left = deadline - mono_ms();
			if (left > 0 && poll(&pf, 1, (int)left) > 0)
				continue;
			snprintf(msg, msglen, "%s did not answer within %.0f s", url, timeout);
			goto fail;
		}
		snprintf(msg, msglen, "cannot read from %s: %s", url, strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (!buf) {
		snprintf(msg, msglen, "%s closed the connection without an answer", url);
		return -1;
	}
	buf[len] = 0;
	if (cli_api_parse_response(buf, len, &st, &off)) {
		snprintf(msg, msglen, "%s did not answer in HTTP", url);
		goto fail;
	}
	*blen = len - off;
	memmove(buf, buf + off, *blen + 1);
	*body = buf;
	*status = st;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return -1;
}

int cli_api_get_json(const char *url, const char *path, double timeout, json_t **out)
{
	char token[300], msg[600];
	char *body = NULL;
	size_t blen = 0;
	int status = 0;
	json_t *j;
	json_error_t je;
	*out = NULL;
	if (cli_api_token(token, sizeof(token), msg, sizeof(msg))) {
		fprintf(stderr, "projstore: %s\n", msg);
		return 1;
	}
	if (cli_api_get(url, token, path, timeout, &status, &body, &blen, msg, sizeof(msg))) {
		fprintf(stderr, "projstore: %s\n", msg);
		return 1;
	}
	j = json_loadb(body, blen, 0, &je);
	free(body);
	if (status != 200) {
		json_t *e = j ? json_object_get(json_object_get(j, "error"), "message") : NULL;
		fprintf(stderr, "projstore: %s: %s (HTTP %d)\n", url,
			json_is_string(e) ? json_string_value(e) : "error", status);
		json_decref(j);
		return status == 400 ? 2 : 1;
	}
	if (!json_is_object(j)) {
		fprintf(stderr, "projstore: %s: an answer that is not JSON\n", url);
		json_decref(j);
		return 1;
	}
	*out = j;
	return 0;
}

int cli_api_where(const char *url, const char *id, int json_out)
{
	char path[256];
	json_t *j, *host;
	int rc;
	snprintf(path, sizeof(path), "/v1/projects/%s/location", id);
	if ((rc = cli_api_get_json(url, path, 10.0, &j)))
		return rc;
	host = json_object_get(j, "host");
	if (!(json_is_string(host) || json_is_null(host))) {
		fprintf(stderr, "projstore: %s: an answer that is not a location\n", url);
		json_decref(j);
		return 1;
	}
	if (json_out) {
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		fputc('\n', stdout);
	} else {
		printf("%s\n", json_is_string(host) ? json_string_value(host) : "");
	}
	json_decref(j);
	return fflush(stdout) ? 1 : 0;
}
