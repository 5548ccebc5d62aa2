/*
 * backend_open.c - picks the store backend for a location.
 *
 * A location is either a path to a directory or a URL "scheme://...":
 *
 *   /srv/projstore, ./data           local directory (backend_local.c); also a
 *                                    directory on a FUSE-mounted GlusterFS
 *   gluster://host[,host2][:port]/volume/path
 *                                    GlusterFS through libgfapi, no mount
 *                                    (backend_gluster.c)
 *
 * To add a scheme, add one line to `schemes` below.  A string is a URL when
 * it starts with letters, digits, '+', '-' or '.' followed by "://"; an
 * unknown scheme is an error (never silently a relative path).
 */
#define _GNU_SOURCE
#include "backend.h"
#include "../util/util.h"

#include <errno.h>
#include <strings.h>
#include <sys/stat.h>

typedef int (*open_fn)(struct ps_backend **out, const char *location, unsigned flags,
		       struct ps_error *err);

/* ssh://[user@]host[:port]/path is not a backend: only sync and repair
 * reach such a store, through `projstore serve-stdio` at the far end
 * (src/lib/repl). Every other command is told so. */
static int ssh_refuse(struct ps_backend **out, const char *location, unsigned flags,
		      struct ps_error *err)
{
	(void)out;
	(void)flags;
	return ps_err(err, PS_EINVAL,
		      "'%s': ssh:// stores are for 'projstore sync' and 'projstore check --repair-from' "
		      "only; run other commands on the host that has the store", location);
}

static const struct {
	const char *scheme;       /* lower case, without "://" */
	open_fn open;
} schemes[] = {
	{ "gluster", ps_backend_gluster_open },
	{ "ssh", ssh_refuse },
};

/* Length of the scheme if location is "scheme://...", else 0. */
static size_t scheme_len(const char *location)
{
	size_t n = 0;
	if (!location)
		return 0;
	while ((location[n] >= 'a' && location[n] <= 'z') || (location[n] >= 'A' && location[n] <= 'Z') ||
	       (n > 0 && ((location[n] >= '0' && location[n] <= '9') || location[n] == '+' ||
			  location[n] == '-' || location[n] == '.')))
		n++;
	if (n == 0 || strncmp(location + n, "://", 3))
		return 0;
	return n;
}

int ps_location_is_url(const char *location)
{
	return scheme_len(location) > 0;
}

static int local_open(struct ps_backend **out, const char *path, unsigned flags,
		      struct ps_error *err)
{
	if ((flags & PS_BACKEND_CREATE) && mkdir(path, 0755) && errno != EEXIST)
		return ps_err_sys(err, "cannot create store directory '%s'", path);
	return ps_backend_local_open(out, path, err);
}

int ps_backend_open(struct ps_backend **out, const char *location, unsigned flags,
		    struct ps_error *err)
{
	size_t n = scheme_len(location);
	*out = NULL;
	if (!location || !*location)
		return ps_err(err, PS_EINVAL, "no store location given");
	if (n == 0)
		return local_open(out, location, flags, err);
	for (size_t i = 0; i < PS_ARRAY_LEN(schemes); i++)
		if (strlen(schemes[i].scheme) == n && !strncasecmp(location, schemes[i].scheme, n))
			return schemes[i].open(out, location, flags, err);
	return ps_err(err, PS_EINVAL,
		      "unknown store location scheme '%.*s' in '%s' (expected a directory or gluster://)",
		      (int)(n > 64 ? 64 : n), location, location);
}
