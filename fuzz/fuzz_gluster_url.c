/*
 * fuzz_gluster_url.c - ps_gluster_url_parse on arbitrary text (a store
 * location comes from the command line, the environment or a catalog).
 *
 * Input: the bytes of the location (cut at the first NUL, as a C string).
 *
 * Invariants: a failure is PS_EINVAL with a message; a parsed URL has 1 to
 * 16 servers with non-empty hosts of allowed characters and ports 1-65535,
 * a valid volume name, and a path that is "/" or "/a/b" without empty, "."
 * or ".." components and without a trailing '/'; writing the parts back as a
 * URL and parsing that gives the same parts (the parse is canonical).
 */
#define _GNU_SOURCE
#include "fuzz_common.h"

static int host_chars_ok(const char *h)
{
	if (!*h)
		return 0;
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
		      *h == '-' || *h == '_' || *h == '.' || *h == ':'))
			return 0;
	return 1;
}

static void check_parts(const struct ps_gluster_url *u)
{
	const char *p;
	FUZZ_CHECK(u->nservers >= 1 && u->nservers <= PS_GLUSTER_MAX_SERVERS, "server count");
	for (size_t i = 0; i < u->nservers; i++) {
		FUZZ_CHECK(host_chars_ok(u->servers[i].host), "host characters");
		FUZZ_CHECK(u->servers[i].port >= 1 && u->servers[i].port <= 65535, "port range");
	}
	FUZZ_CHECK(u->volume[0] && u->volume[0] != '-', "volume name");
	for (p = u->volume; *p; p++)
		FUZZ_CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			   *p == '-' || *p == '_', "volume characters");
	FUZZ_CHECK(u->path[0] == '/', "path is absolute");
	if (u->path[1]) {
		size_t n = strlen(u->path);
		FUZZ_CHECK(u->path[n - 1] != '/', "no trailing slash");
		FUZZ_CHECK(!strstr(u->path, "//"), "no empty component");
		FUZZ_CHECK(!strstr(u->path, "/./") && !strstr(u->path, "/../"), "no dot components");
		FUZZ_CHECK(strcmp(u->path + n - 2, "/.") && strcmp(u->path + n - 3, "/.."),
			   "no trailing dot component");
	}
	for (p = u->path; *p; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f && *p != '%' && *p != '?' &&
			   *p != '#' && *p != '\\', "path characters");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ps_gluster_url u, u2;
	struct ps_error err;
	struct ps_buf b = PS_BUF_INIT;
	char *text = (char *)fuzz_dup(data, size, 0);
	int rc;

	ps_error_clear(&err);
	rc = ps_gluster_url_parse(text, &u, &err);
	fuzz_trace("gluster_url", rc);
	if (rc) {
		FUZZ_CHECK(rc == PS_EINVAL, "failure is PS_EINVAL");
		FUZZ_CHECK(err.msg[0], "failure has a message");
		goto done;
	}
	check_parts(&u);

	/* write it back, every server with its port, and parse again */
	FUZZ_CHECK(!ps_buf_printf(&b, "gluster://"), "buf");
	for (size_t i = 0; i < u.nservers; i++) {
		int v6 = strchr(u.servers[i].host, ':') != NULL;
		FUZZ_CHECK(!ps_buf_printf(&b, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "", u.servers[i].host,
					  v6 ? "]" : "", u.servers[i].port), "buf");
	}
	FUZZ_CHECK(!ps_buf_printf(&b, "/%s%s", u.volume, strcmp(u.path, "/") ? u.path : ""), "buf");
	FUZZ_CHECK(!ps_buf_put_u8(&b, 0), "buf");
	if (b.len > 8193)   /* the ports written out can take it past the length limit */
		goto done;
	rc = ps_gluster_url_parse((char *)b.data, &u2, &err);
	FUZZ_CHECK(rc == PS_OK, "the written-back URL parses");
	FUZZ_CHECK(u2.nservers == u.nservers, "same server count");
	for (size_t i = 0; i < u.nservers; i++)
		FUZZ_CHECK(!strcmp(u2.servers[i].host, u.servers[i].host) &&
			   u2.servers[i].port == u.servers[i].port, "same servers");
	FUZZ_CHECK(!strcmp(u2.volume, u.volume) && !strcmp(u2.path, u.path), "same volume and path");
done:
	ps_buf_release(&b);
	free(text);
	return 0;
}
