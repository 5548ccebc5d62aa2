/*
 * server_tokens.c - the bearer tokens of `projstore serve`.
 *
 * The token file holds one token per line, "ROLE TOKEN [NAME]": ROLE is
 * `admin` (reads and changes) or `read` (reads only); TOKEN is 16 to 128
 * characters of [A-Za-z0-9._~+/=-]; NAME (optional) is recorded as who asked
 * for an operation ("api:NAME").  Blank lines and lines starting with '#'
 * are ignored.  The file must not be readable by group or others: the
 * server refuses it otherwise, as ssh does with keys.
 *
 * Without --token-file the server uses a default path and, when nothing is
 * there yet, creates the file with one admin and one read token of 32
 * random bytes each (hex), mode 0600, owned by the user running the server
 * (root, in a real deployment), written under a temporary name, fsynced and
 * renamed into place.
 */
#define _GNU_SOURCE
#include "server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/util/util.h"

static int token_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=' || c == '-';
}

static int add_token(struct tokens *t, int role, const char *value, const char *name)
{
	struct token *nv = ps_realloc(t->v, (t->n + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	t->v = nv;
	struct token *k = &t->v[t->n++];
	memset(k, 0, sizeof(*k));
	k->role = role;
	snprintf(k->value, sizeof(k->value), "%s", value);
	k->len = strlen(k->value);
	snprintf(k->name, sizeof(k->name), "%s", name ? name : "");
	return 0;
}

static int parse(struct tokens *t, const char *path, FILE *f, struct ps_error *err)
{
	char line[1024];
	int lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t l = strlen(line);
		if (l == sizeof(line) - 1 && line[l - 1] != '\n')
			return ps_err(err, PS_EINVAL, "token file %s: line %d is too long", path, lineno);
		char *save = NULL;
		char *role = strtok_r(line, " \t\r\n", &save);
		if (!role || role[0] == '#')
			continue;
		char *value = strtok_r(NULL, " \t\r\n", &save);
		char *name = strtok_r(NULL, " \t\r\n", &save);
		char *extra = strtok_r(NULL, " \t\r\n", &save);
		int r = strcmp(role, "admin") == 0 ? ROLE_ADMIN : strcmp(role, "read") == 0 ? ROLE_READ : 0;
		if (!r)
			return ps_err(err, PS_EINVAL,
				      "token file %s: line %d: role must be 'admin' or 'read', not '%s'",
				      path, lineno, role);
		if (!value || extra)
			return ps_err(err, PS_EINVAL,
				      "token file %s: line %d: expected 'ROLE TOKEN [NAME]'", path, lineno);
		size_t vl = strlen(value);
		if (vl < 16 || vl > TOKEN_MAX)
			return ps_err(err, PS_EINVAL,
				      "token file %s: line %d: a token has 16 to %d characters", path,
				      lineno, TOKEN_MAX);
		for (size_t i = 0; i < vl; i++)
			if (!token_char((unsigned char)value[i]))
				return ps_err(err, PS_EINVAL,
					      "token file %s: line %d: a token has only letters, digits "
					      "and ._~+/=-",
					      path, lineno);
		if (name && (strlen(name) > 32 || !ps_project_id_valid(name)))
			return ps_err(err, PS_EINVAL,
				      "token file %s: line %d: a name is [a-z0-9][a-z0-9._-], at most 32",
				      path, lineno);
		if (add_token(t, r, value, name) != 0)
			return ps_err(err, PS_ERROR, "out of memory");
	}
	if (ferror(f))
		return ps_err_sys(err, "cannot read token file %s", path);
	if (t->n == 0)
		return ps_err(err, PS_EINVAL, "token file %s holds no token", path);
	return PS_OK;
}

static int read_file(struct tokens *t, const char *path, struct ps_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return ps_err(err, PS_ENOTFOUND, "token file %s does not exist", path);
		return ps_err_sys(err, "cannot open token file %s", path);
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int rc = ps_err_sys(err, "cannot stat token file %s", path);
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return ps_err(err, PS_EINVAL, "token file %s is not a regular file", path);
	}
	if (st.st_mode & 077) {
		close(fd);
		return ps_err(err, PS_EINVAL,
			      "token file %s can be read by others (mode %03o): chmod 600 it", path,
			      (unsigned)(st.st_mode & 0777));
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		int rc = ps_err_sys(err, "cannot read token file %s", path);
		close(fd);
		return rc;
	}
	int rc = parse(t, path, f, err);
	fclose(f);
	return rc;
}

static int mkdirs(const char *dir, struct ps_error *err)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return ps_err_sys(err, "cannot create %s", buf);
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return ps_err_sys(err, "cannot create %s", buf);
	return PS_OK;
}

static int create_file(const char *path, struct ps_error *err)
{
	char dir[4096], tmp[4200];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		int rc = mkdirs(dir, err);
		if (rc != PS_OK)
			return rc;
	} else {
		snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
	}
	uint8_t raw[2][32];
	char hex[2][65];
	if (ps_random_bytes(raw, sizeof(raw)) != 0)
		return ps_err(err, PS_ERROR, "cannot get random bytes for the tokens");
	for (int i = 0; i < 2; i++)
		ps_hex_encode(raw[i], 32, hex[i]);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ps_err_sys(err, "cannot create token file %s", tmp);
	char text[512];
	int n = snprintf(text, sizeof(text),
			 "# projstore serve: bearer tokens, one per line: ROLE TOKEN [NAME]\n"
			 "# admin: reads and changes; read: reads only. Keep this file mode 0600.\n"
			 "admin %s\nread %s\n",
			 hex[0], hex[1]);
	int rc = PS_OK;
	if (fchmod(fd, 0600) != 0 || write(fd, text, (size_t)n) != n || fsync(fd) != 0)
		rc = ps_err_sys(err, "cannot write token file %s", tmp);
	if (close(fd) != 0 && rc == PS_OK)
		rc = ps_err_sys(err, "cannot write token file %s", tmp);
	if (rc == PS_OK && link(tmp, path) != 0) {
		/* link, not rename: a file another server created meanwhile wins */
		if (errno != EEXIST)
			rc = ps_err_sys(err, "cannot create token file %s", path);
	}
	unlink(tmp);
	if (rc == PS_OK) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	return rc;
}

int ps_tokens_load(struct tokens *t, const char *path, const char *default_path,
		   struct ps_error *err)
{
	char def[4096];
	memset(t, 0, sizeof(*t));
	if (!path || !*path) {
		if (default_path && *default_path) {
			snprintf(def, sizeof(def), "%s", default_path);
		} else {
			const char *dir = getenv("PROJSTORE_STATE_DIR");
			snprintf(def, sizeof(def), "%s/serve-tokens",
				 dir && *dir ? dir : "/var/lib/projstore");
		}
		struct stat st;
		if (lstat(def, &st) != 0 && errno == ENOENT) {
			int rc = create_file(def, err);
			if (rc != PS_OK)
				return rc;
			t->created = 1;
		}
		path = def;
	}
	if (!(t->path = ps_strdup(path)))
		return ps_err(err, PS_ERROR, "out of memory");
	int rc = read_file(t, path, err);
	if (rc != PS_OK)
		ps_tokens_release(t);
	return rc;
}

void ps_tokens_release(struct tokens *t)
{
	if (t->v)
		explicit_bzero(t->v, t->n * sizeof(*t->v));
	free(t->v);
	free(t->path);
	memset(t, 0, sizeof(*t));
}

/* compares every byte of the candidate, so the time does not tell how much
 * of a guess was right */
static int same(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char d = (unsigned char)(alen != blen);
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

const struct token *ps_tokens_match(const struct tokens *t, const char *value, size_t len)
{
	const struct token *found = NULL;
	for (size_t i = 0; i < t->n; i++)
		if (same(t->v[i].value, t->v[i].len, value, len) && !found)
			found = &t->v[i];
	return found;
}
