/*
 * test_gluster_url.c - the gluster:// location parser (backend_gluster.c)
 * and the scheme dispatch of backend_open.c: valid forms with their
 * normalized parts, the port rule, and garbage of every kind rejected with
 * PS_EINVAL and a reason (never a crash, never a guess).  No server needed.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "store/backend.h"
#include "util/util.h"

#include <stdint.h>

static struct ps_gluster_url u;

static int parse(const char *url, struct ps_error *e)
{
	ps_error_clear(e);
	return ps_gluster_url_parse(url, &u, e);
}

/* ------------------------------------------------------------ valid */

static void test_valid(void)
{
	struct ps_error e;

	is_int(parse("gluster://vm/vol/projstore", &e), 0, "host/volume/path parses");
	is_int((long long)u.nservers, 1, "one server");
	is_str(u.servers[0].host, "vm", "host");
	is_int(u.servers[0].port, 24007, "default port 24007");
	is_str(u.volume, "vol", "volume");
	is_str(u.path, "/projstore", "path is absolute");

	is_int(parse("gluster://vm/vol", &e), 0, "no path: the volume root");
	is_str(u.path, "/", "root path is '/'");
	is_int(parse("gluster://vm/vol/", &e), 0, "trailing slash after the volume");
	is_str(u.path, "/", "still the root");
	is_int(parse("gluster://vm/vol/a/b-c_d.e/f/", &e), 0, "deep path with trailing slash");
	is_str(u.path, "/a/b-c_d.e/f", "trailing slash dropped");

	is_int(parse("gluster://g1.example.com,g2.example.com,10.0.0.3/data/ps", &e), 0,
	       "three servers");
	is_int((long long)u.nservers, 3, "three servers kept in order");
	is_str(u.servers[1].host, "g2.example.com", "second server");
	is_str(u.servers[2].host, "10.0.0.3", "IPv4 address");
	is_int(u.servers[2].port, 24007, "default port for all");

	is_int(parse("gluster://a,b:24010/v/p", &e), 0, "port after the last server");
	is_int(u.servers[0].port, 24010, "applies to the servers before it");
	is_int(u.servers[1].port, 24010, "and to the last one");

	is_int(parse("gluster://a:1234,b/v/p", &e), 0, "a port on the first server only");
	is_int(u.servers[0].port, 1234, "its own port");
	is_int(u.servers[1].port, 24007, "the others: the default");

	is_int(parse("gluster://a:1,b:2,c:65535/v", &e), 0, "a port per server");
	ok(u.servers[0].port == 1 && u.servers[1].port == 2 && u.servers[2].port == 65535,
	   "each keeps its own");

	is_int(parse("gluster://[::1]:24008,[fe80::1]/v/p", &e), 0, "bracketed IPv6 addresses");
	is_str(u.servers[0].host, "::1", "brackets removed");
	is_int(u.servers[0].port, 24008, "IPv6 with a port");
	is_int(u.servers[1].port, 24007, "no trailing port: the default");
	is_str(u.servers[1].host, "fe80::1", "second IPv6 address");

	is_int(parse("GLUSTER://vm/Vol_1-x/p", &e), 0, "scheme is case-insensitive");
	is_str(u.volume, "Vol_1-x", "volume keeps its case");

	is_int(parse("gluster://vm/v/caf\xc3\xa9 dir/x y", &e), 0, "UTF-8 and spaces in the path");
	is_str(u.path, "/caf\xc3\xa9 dir/x y", "path kept byte for byte");

	is_int(parse("gluster://s1,s2,s3,s4,s5,s6,s7,s8,s9,s10,s11,s12,s13,s14,s15,s16/v", &e), 0,
	       "16 servers are accepted");
	is_int((long long)u.nservers, 16, "all 16 kept");
}

/* ---------------------------------------------------------- invalid */

static void expect_bad(const char *url, const char *why_part, const char *title)
{
	struct ps_error e;
	int rc = parse(url, &e);
	is_int(rc, PS_EINVAL, "%s: rejected", title);
	if (why_part)
		ok(strstr(e.msg, why_part) != NULL, "%s: says '%s' (%s)", title, why_part, e.msg);
}

static void test_invalid(void)
{
	char big[9000], path[4200], host[300], vol[200], comp[300];

	expect_bad("", "gluster://", "empty string");
	expect_bad("/srv/store", "does not start with gluster://", "a path");
	expect_bad("glusterfs://vm/v", "does not start with gluster://", "wrong scheme");
	expect_bad("gluster:/vm/v", "does not start with", "one slash");
	expect_bad("gluster://", "no volume", "nothing after the scheme");
	expect_bad("gluster://vm", "no volume", "no volume");
	expect_bad("gluster://vm/", "no volume", "empty volume");
	expect_bad("gluster:///v/p", "no server", "no server");
	expect_bad("gluster://vm//p", "no volume", "empty volume between slashes");
	expect_bad("gluster://user@vm/v", "user names", "user info");
	expect_bad("gluster://user:pw@vm/v", "user names", "user and password");
	expect_bad("gluster://a,,b/v", "empty server", "empty server in the list");
	expect_bad("gluster://,a/v", "empty server", "leading comma");
	expect_bad("gluster://a,/v", "empty server", "trailing comma");
	expect_bad("gluster://a:/v", "invalid port", "colon without port");
	expect_bad("gluster://a:0/v", "invalid port", "port 0");
	expect_bad("gluster://a:65536/v", "invalid port", "port too large");
	expect_bad("gluster://a:123456/v", "invalid port", "six-digit port");
	expect_bad("gluster://a:+80/v", "invalid port", "signed port");
	expect_bad("gluster://a:8x/v", "invalid port", "port with letters");
	expect_bad("gluster://a:80:81/v", "invalid port", "two ports");
	expect_bad("gluster://-a/v", "invalid server name", "host starting with '-'");
	expect_bad("gluster://a..b/v", "invalid server name", "empty label");
	expect_bad("gluster://a./v", "invalid server name", "trailing dot");
	expect_bad("gluster://a b/v", "invalid server name", "space in host");
	expect_bad("gluster://a;rm/v", "invalid server name", "shell metacharacter in host");
	expect_bad("gluster://h\xc3\xa9/v", "invalid server name", "non-ASCII host");
	expect_bad("gluster://[::1/v", "without ']'", "unclosed bracket");
	expect_bad("gluster://[]/v", "IPv6", "empty brackets");
	expect_bad("gluster://[not:v6:::x]/v", "IPv6", "bad IPv6");
	expect_bad("gluster://[::1]x/v", "after ']'", "junk after bracket");
	expect_bad("gluster://vm/-v", "invalid volume", "volume starting with '-'");
	expect_bad("gluster://vm/v.x", "invalid volume", "dot in volume");
	expect_bad("gluster://vm/v x", "invalid volume", "space in volume");
	expect_bad("gluster://vm/v?x=1", "invalid volume", "query after the volume");
	expect_bad("gluster://vm/v/a//b", "empty path component", "double slash");
	expect_bad("gluster://vm/v//", "empty path component", "double slash at the end");
	expect_bad("gluster://vm/v/..", "'..'", "dot-dot");
	expect_bad("gluster://vm/v/a/../../etc", "'..'", "escaping dot-dot");
	expect_bad("gluster://vm/v/./a", "'.'", "dot component");
	expect_bad("gluster://vm/v/a%2e%2e", "'%'", "percent escape");
	expect_bad("gluster://vm/v/a?b", "'?'", "query");
	expect_bad("gluster://vm/v/a#b", "'#'", "fragment");
	expect_bad("gluster://vm/v/a\\b", "'\\'", "backslash");
	expect_bad("gluster://vm/v/a\nb", "control character", "newline");
	expect_bad("gluster://vm/v/a\x7f", "control character", "DEL");
	expect_bad("gluster://vm/v/a\tb", "control character", "tab");
	expect_bad("gluster://s1,s2,s3,s4,s5,s6,s7,s8,s9,s10,s11,s12,s13,s14,s15,s16,s17/v",
		   "more than 16", "17 servers");

	memset(host, 'a', sizeof(host));
	memcpy(host, "gluster://", 10);
	snprintf(host + 10 + 64, sizeof(host) - 74, "/v");
	expect_bad(host, "invalid server name", "64-character label");

	memset(vol, 'v', sizeof(vol));
	memcpy(vol, "gluster://h/", 12);
	vol[sizeof(vol) - 1] = 0;
	expect_bad(vol, "volume name too long", "188-character volume");

	memset(comp, 'c', sizeof(comp));
	memcpy(comp, "gluster://h/v/", 14);
	comp[sizeof(comp) - 1] = 0;
	expect_bad(comp, "longer than 255", "285-byte path component");

	memcpy(path, "gluster://h/v", 13);
	for (size_t i = 13; i + 11 < sizeof(path); i += 10)
		memcpy(path + i, "/ccccccccc", 10);
	path[sizeof(path) - 1] = 0;
	path[sizeof(path) - 2] = 'x';
	expect_bad(path, "path too long", "path over 4096 bytes");

	memset(big, 'a', sizeof(big));
	memcpy(big, "gluster://h/v/", 14);
	big[sizeof(big) - 1] = 0;
	expect_bad(big, "longer than", "URL over 8192 bytes");

	{
		struct ps_error e;
		ps_error_clear(&e);
		is_int(ps_gluster_url_parse(NULL, &u, &e), PS_EINVAL, "NULL is rejected");
	}
}

/* Every prefix of valid URLs parses or fails cleanly: never crashes, and a
 * failure leaves a message. */
static void test_prefixes(void)
{
	static const char *const urls[] = {
		"gluster://g1.example.com,[::1]:24008,10.0.0.3:24007/vol_1/a/b/c/",
		"gluster://vm/v/x y/z",
	};
	int bad = 0;
	for (size_t k = 0; k < PS_ARRAY_LEN(urls); k++) {
		size_t n = strlen(urls[k]);
		for (size_t i = 0; i <= n; i++) {
			char buf[128];
			struct ps_error e;
			int rc;
			memcpy(buf, urls[k], i);
			buf[i] = 0;
			rc = parse(buf, &e);
			if (rc && (rc != PS_EINVAL || !e.msg[0]))
				bad++;
			if (!rc && (u.nservers == 0 || !u.volume[0] || u.path[0] != '/'))
				bad++;
		}
	}
	is_int(bad, 0, "every prefix parses to something whole or fails with a message");
}

/* ------------------------------------------------------- dispatcher */

static void test_dispatch(void)
{
	struct ps_backend *be = (struct ps_backend *)1;
	struct ps_error e;
	ok(ps_location_is_url("gluster://h/v"), "gluster:// is a URL");
	ok(ps_location_is_url("ssh+x.y-z://h"), "scheme letters, digits, + . -");
	ok(!ps_location_is_url("/srv/store"), "an absolute path is not");
	ok(!ps_location_is_url("store"), "a relative path is not");
	ok(!ps_location_is_url("./gluster://x"), "./ makes anything a path");
	ok(!ps_location_is_url("1abc://x"), "a scheme starts with a letter");
	ok(!ps_location_is_url("://x"), "an empty scheme is not one");
	ok(!ps_location_is_url("a:/x"), "one slash is a path");
	ok(!ps_location_is_url(NULL), "NULL is not a URL");

	ps_error_clear(&e);
	is_int(ps_backend_open(&be, "nosuch://x/y", 0, &e), PS_EINVAL, "unknown scheme: PS_EINVAL");
	ok(strstr(e.msg, "unknown store location scheme 'nosuch'") != NULL, "names it (%s)", e.msg);
	ok(be == NULL, "no backend returned");
	ps_error_clear(&e);
	is_int(ps_backend_open(&be, "", 0, &e), PS_EINVAL, "empty location: PS_EINVAL");
	ps_error_clear(&e);
	is_int(ps_backend_open(&be, "gluster://h/v/a/../b", 0, &e), PS_EINVAL,
	       "a bad gluster URL fails before any connection");
	ps_error_clear(&e);
	is_int(ps_backend_open(&be, "/nonexistent/projstore-test-dir", 0, &e), PS_ENOTFOUND,
	       "a missing directory: PS_ENOTFOUND from the local backend");
}

int main(void)
{
	test_valid();
	test_invalid();
	test_prefixes();
	test_dispatch();
	return done_testing();
}
