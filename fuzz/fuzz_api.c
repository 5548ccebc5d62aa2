/*
 * fuzz_api.c - what `where --api` and `projects --api` read from the network
 * and the command line (src/cli/cli_api.c): the server's HTTP answer
 * (cli_api_parse_response) and the API URL (cli_api_parse_url).
 *
 * Input: the first byte picks the parser (even: the answer, odd: the URL);
 * the rest is the answer's bytes, or the URL (cut at the first NUL).
 *
 * Invariants: an answer is taken only with a status of three digits >= 100
 * and a body that starts inside it, right after a blank line that ends the
 * headers; a URL is taken only as http://HOST:PORT[/] with a non-empty host
 * of name, IPv4 or (bracketed) IPv6 characters that fits its buffer and a port from 1 to 65535, and writing it back
 * (with brackets for an IPv6 host) parses to the same parts.
 */
#define _GNU_SOURCE
#include "fuzz_common.h"
#include "../src/cli/cli_api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (!(data[0] & 1)) {
		/* the answer: exactly its bytes, so that ASan sees any overread */
		size_t n = size - 1, off = 0;
		char *buf = malloc(n ? n : 1);
		if (!buf)
			abort();
		if (n)
			memcpy(buf, data + 1, n);
		int st = 0;
		int rc = cli_api_parse_response(buf, n, &st, &off);
		fuzz_trace("api_response", rc);
		if (rc == 0) {
			FUZZ_CHECK(st >= 100 && st <= 999, "status has three digits");
			FUZZ_CHECK(off >= 16 && off <= n, "body starts inside the answer");
			FUZZ_CHECK(!memcmp(buf + off - 4, "\r\n\r\n", 4), "after a blank line");
			FUZZ_CHECK(!memcmp(buf, "HTTP/", 5), "a status line");
		}
		free(buf);
	} else {
		char *url = (char *)fuzz_dup(data + 1, size - 1, 1);
		char host[256], port[16], back[300], h2[256], p2[16];
		int rc = cli_api_parse_url(url, host, sizeof(host), port, sizeof(port));
		fuzz_trace("api_url", rc);
		if (rc == 0) {
			size_t pl = strlen(port);
			FUZZ_CHECK(host[0] && strlen(host) < sizeof(host), "host");
			FUZZ_CHECK(pl >= 1 && pl <= 5, "port length");
			for (size_t i = 0; i < pl; i++)
				FUZZ_CHECK(port[i] >= '0' && port[i] <= '9', "port digits");
			FUZZ_CHECK(atol(port) >= 1 && atol(port) <= 65535, "port range");
			snprintf(back, sizeof(back), strchr(host, ':') ? "http://[%s]:%s" : "http://%s:%s",
				 host, port);
			for (const char *c = host; *c; c++)
				FUZZ_CHECK(*c > ' ' && *c != '/' && *c != '[' && *c != ']' && *c != '@' &&
					   *c != '?' && *c != '#', "host characters");
			FUZZ_CHECK(cli_api_parse_url(back, h2, sizeof(h2), p2, sizeof(p2)) == 0,
				   "written back, it parses");
			FUZZ_CHECK(!strcmp(h2, host) && !strcmp(p2, port), "to the same parts");
		}
		free(url);
	}
	return 0;
}
