/*
 * repl_remote.c - the sync endpoint of an ssh:// location: runs
 *
 *   ssh [-p PORT] [-l USER] -o BatchMode=yes ... HOST 'projstore' serve-stdio 'PATH'
 *
 * and speaks the protocol of repl_proto.h on its stdin/stdout (ssh's stderr
 * is ours, so its messages and the far end's reach the user).  Encryption
 * and authentication are ssh's.  The ssh command is $PROJSTORE_SSH (or the
 * option), split at blanks; the far end's program is $PROJSTORE_REMOTE_BIN,
 * else "projstore" found in the remote PATH.
 *
 * Every response is read with a time limit (io_timeout): a connection that
 * stops moving is given up, never waited for forever.  PUTs are buffered and
 * not answered; everything else is one request, one answer (some answers
 * span several frames: lists carry a "more" flag, GET answers one OBJECT
 * frame per id, in order).  Whatever the far end sends is checked by the
 * decoder and then against the request (counts, ids, order).
 */
#define _GNU_SOURCE
#include "repl_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define PUT_FLUSH (1u << 20)
#define PUT_DIRECT (256u << 10)
#define REFS_PER_REQ 1000

struct remote_ep {
	struct ps_ep ep;
	struct ps_conn c;
	pid_t pid;
	int broken;                   /* a protocol or connection error: no more requests */
	int said_bye;
};

static struct remote_ep *R(struct ps_ep *ep) { return (struct remote_ep *)ep; }

int ps_location_is_ssh(const char *location)
{
	return location && !strncmp(location, "ssh://", 6);
}

/* ------------------------------------------------------------ url */

int ps_ssh_url_parse(const char *url, struct ps_ssh_url *u, struct ps_error *err)
{
	const char *p, *at, *slash, *hend;
	memset(u, 0, sizeof(*u));
	if (!ps_location_is_ssh(url))
		return ps_err(err, PS_EINVAL, "'%s' is not an ssh:// location", url);
	p = url + 6;
	slash = strchr(p, '/');
	if (!slash || slash == p)
		return ps_err(err, PS_EINVAL, "'%s': expected ssh://[user@]host[:port]/path", url);
	at = memchr(p, '@', (size_t)(slash - p));
	if (at) {
		if (at == p || (size_t)(at - p) >= sizeof(u->user))
			return ps_err(err, PS_EINVAL, "'%s': invalid user", url);
		for (const char *q = p; q < at; q++)
			if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			      (*q >= '0' && *q <= '9') || *q == '.' || *q == '_' || *q == '-'))
				return ps_err(err, PS_EINVAL, "'%s': invalid user", url);
		memcpy(u->user, p, (size_t)(at - p));
		p = at + 1;
	}
	if (*p == '[') {
		hend = memchr(p, ']', (size_t)(slash - p));
		if (!hend || hend == p + 1 || (size_t)(hend - p - 1) >= sizeof(u->host))
			return ps_err(err, PS_EINVAL, "'%s': invalid host", url);
		memcpy(u->host, p + 1, (size_t)(hend - p - 1));
		for (const char *q = u->host; *q; q++)
			if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F') ||
			      *q == ':' || *q == '.'))
				return ps_err(err, PS_EINVAL, "'%s': invalid host", url);
		p = hend + 1;
	} else {
		hend = p;
		while (hend < slash && *hend != ':')
			hend++;
		if (hend == p || (size_t)(hend - p) >= sizeof(u->host) || *p == '-')
			return ps_err(err, PS_EINVAL, "'%s': invalid host", url);
		for (const char *q = p; q < hend; q++)
			if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			      (*q >= '0' && *q <= '9') || *q == '.' || *q == '-' || *q == '_'))
				return ps_err(err, PS_EINVAL, "'%s': invalid host", url);
		memcpy(u->host, p, (size_t)(hend - p));
		p = hend;
	}
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (end != slash || port < 1 || port > 65535)
			return ps_err(err, PS_EINVAL, "'%s': invalid port", url);
		u->port = (int)port;
	} else if (p != slash) {
		return ps_err(err, PS_EINVAL, "'%s': expected ssh://[user@]host[:port]/path", url);
	}
	if (strlen(slash) >= sizeof(u->path) || strlen(slash) < 2)
		return ps_err(err, PS_EINVAL, "'%s': invalid path", url);
	for (const char *q = slash; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			return ps_err(err, PS_EINVAL, "'%s': invalid path", url);
	snprintf(u->path, sizeof(u->path), "%s", slash);
	return PS_OK;
}

/* ------------------------------------------------------------ requests */

static int fail_conn(struct remote_ep *r, int rc)
{
	if (rc != PS_OK)
		r->broken = 1;
	return rc;
}

/* Reads one frame; an ERROR frame becomes the error (the connection stays
 * usable); an unexpected type breaks it. */
static int expect(struct remote_ep *r, int type, struct ps_msg *m, struct ps_error *err)
{
	int rc;
	if (r->broken)
		return ps_err(err, PS_ERROR, "%s: the connection is unusable after an earlier error",
			      r->ep.location);
	rc = ps_conn_read(&r->c, m, err);
	if (rc == PS_ENOTFOUND)
		rc = ps_err(err, PS_ERROR, "%s closed the connection (see the messages above)",
			    r->ep.location);
	if (rc)
		return fail_conn(r, rc);
	if (m->type == PS_R_ERROR) {
		int code = (int)m->code;
		return ps_err(err, code, "%s: %.*s", r->ep.location, (int)m->str_len, m->str);
	}
	if (m->type != type)
		return fail_conn(r, ps_err(err, PS_ECORRUPT, "%s: protocol: expected %s, got %s",
					   r->ep.location, ps_msg_name(type), ps_msg_name(m->type)));
	return PS_OK;
}

static int send_simple(struct remote_ep *r, int type, const char *str, struct ps_error *err)
{
	size_t st;
	if (ps_frame_begin(&r->c.out, type, &st) || (str && ps_put_str(&r->c.out, str, strlen(str))) ||
	    ps_frame_end(&r->c.out, st))
		return ps_err(err, PS_ERROR, "out of memory");
	return PS_OK;
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
	char *s = ps_malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

static int r_projects(struct ps_ep *ep, char ***v, size_t *n, struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	struct ps_msg m;
	size_t cap = 0;
	int rc = send_simple(r, PS_M_PROJECTS, NULL, err);
	*v = NULL;
	*n = 0;
	do {
		struct ps_msg_it it;
		const uint8_t *p;
		size_t len;
		if (!rc)
			rc = expect(r, PS_R_NAMES, &m, err);
		if (rc)
			break;
		ps_msg_it_init(&it, &m);
		while (!rc && ps_msg_next_str(&it, &p, &len)) {
			char *s = dup_bytes(p, len);
			if (!s || !ps_project_id_valid(s))
				rc = s ? fail_conn(r, ps_err(err, PS_ECORRUPT, "%s: invalid project id in a listing",
							     ep->location))
				       : ps_err(err, PS_ERROR, "out of memory");
			else if (ps_strv_push(v, n, &cap, s))
				rc = ps_err(err, PS_ERROR, "out of memory");
			ps_free(s);
		}
	} while (!rc && m.flag);
	if (rc) {
		ps_strv_free(*v, *n);
		*v = NULL;
		*n = 0;
	}
	return rc;
}

static int r_snapshots(struct ps_ep *ep, const char *project, struct ps_snapshot_info **v,
		       size_t *n, struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	struct ps_msg m;
	size_t cap = 0;
	int rc = send_simple(r, PS_M_SNAPSHOTS, project, err);
	*v = NULL;
	*n = 0;
	do {
		struct ps_msg_it it;
		const uint8_t *p;
		size_t len;
		int ok;
		if (!rc)
			rc = expect(r, PS_R_BLOBS, &m, err);
		if (rc)
			break;
		ps_msg_it_init(&it, &m);
		while (!rc && ps_msg_next_blob(&it, &ok, &p, &len)) {
			size_t used;
			if (*n == cap) {
				struct ps_snapshot_info *nv = ps_realloc(*v, (cap ? cap * 2 : 64) * sizeof(**v));
				if (!nv) {
					rc = ps_err(err, PS_ERROR, "out of memory");
					break;
				}
				*v = nv;
				cap = cap ? cap * 2 : 64;
			}
			if (!ok || ps_ref_decode((const char *)p, len, &(*v)[*n], &used, err) || used != len ||
			    strcmp((*v)[*n].project, project)) {
				rc = fail_conn(r, ps_err(err, PS_ECORRUPT, "%s: invalid snapshot ref in the listing of '%s'",
							 ep->location, project));
				break;
			}
			(*n)++;
		}
	} while (!rc && m.flag);
	if (rc) {
		ps_free(*v);
		*v = NULL;
		*n = 0;
	}
	return rc;
}

static int r_refs(struct ps_ep *ep, const char *project, char *const *names, size_t n,
		  struct ps_buf *refs, char **why, struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	int rc = PS_OK;
	for (size_t i = 0; i < n; i++) {
		memset(&refs[i], 0, sizeof(refs[i]));
		why[i] = NULL;
	}
	for (size_t base = 0; base < n && !rc; base += REFS_PER_REQ) {
		size_t cnt = n - base < REFS_PER_REQ ? n - base : REFS_PER_REQ, got = 0, st;
		struct ps_msg m;
		if (ps_frame_begin(&r->c.out, PS_M_REFS, &st) || ps_put_str(&r->c.out, project, strlen(project)) ||
		    ps_buf_put_uvar(&r->c.out, cnt))
			return ps_err(err, PS_ERROR, "out of memory");
		for (size_t i = 0; i < cnt; i++)
			if (ps_put_str(&r->c.out, names[base + i], strlen(names[base + i])))
				return ps_err(err, PS_ERROR, "out of memory");
		if (ps_frame_end(&r->c.out, st))
			return ps_err(err, PS_ERROR, "out of memory");
		do {
			struct ps_msg_it it;
			const uint8_t *p;
			size_t len;
			int ok;
			rc = expect(r, PS_R_BLOBS, &m, err);
			if (rc)
				break;
			ps_msg_it_init(&it, &m);
			while (!rc && ps_msg_next_blob(&it, &ok, &p, &len)) {
				if (got == cnt) {
					rc = fail_conn(r, ps_err(err, PS_ECORRUPT, "%s: protocol: too many refs",
								 ep->location));
					break;
				}
				if (ok) {
					if (ps_buf_append(&refs[base + got], p, len))
						rc = ps_err(err, PS_ERROR, "out of memory");
				} else if (!(why[base + got] = dup_bytes(p, len))) {
					rc = ps_err(err, PS_ERROR, "out of memory");
				}
				got++;
			}
		} while (!rc && m.flag);
		if (!rc && got != cnt)
			rc = fail_conn(r, ps_err(err, PS_ECORRUPT, "%s: protocol: %zu refs for %zu names",
						 ep->location, got, cnt));
	}
	return rc;
}

static int r_settings(struct ps_ep *ep, const char *project, int *exists, struct ps_buf *out,
		      struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	struct ps_msg m;
	int rc = send_simple(r, PS_M_SETTINGS, project, err);
	if (!rc)
		rc = expect(r, PS_R_SETTINGS, &m, err);
	if (rc)
		return rc;
	*exists = m.flag;
	ps_buf_reset(out);
	if (m.len && ps_buf_append(out, m.data, m.len))
		return ps_err(err, PS_ERROR, "out of memory");
	return PS_OK;
}

static int r_has(struct ps_ep *ep, const uint8_t (*ids)[32], size_t n, uint8_t *bits,
		 struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	memset(bits, 0, (n + 7) / 8);
	for (size_t base = 0; base < n; base += PS_PROTO_IDS_MAX) {
		size_t cnt = n - base < PS_PROTO_IDS_MAX ? n - base : PS_PROTO_IDS_MAX, st;
		struct ps_msg m;
		int rc;
		if (ps_frame_begin(&r->c.out, PS_M_HAS, &st) || ps_put_ids(&r->c.out, ids[base], cnt) ||
		    ps_frame_end(&r->c.out, st))
			return ps_err(err, PS_ERROR, "out of memory");
		rc = expect(r, PS_R_HAVE, &m, err);
		if (rc)
			return rc;
		if (m.n != cnt)
			return fail_conn(r, ps_err(err, PS_ECORRUPT, "%s: protocol: %zu answers for %zu ids",
						   ep->location, m.n, cnt));
		for (size_t i = 0; i < cnt; i++)
			if (m.data[i / 8] & (1u << (i % 8)))
				bits[(base + i) / 8] |= (uint8_t)(1u << ((base + i) % 8));
	}
	return PS_OK;
}

static int r_sizes(struct ps_ep *ep, const uint8_t (*ids)[32], size_t n, uint32_t *lens,
		   struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	for (size_t base = 0; base < n; base += PS_PROTO_IDS_MAX) {
		size_t cnt = n - base < PS_PROTO_IDS_MAX ? n - base : PS_PROTO_IDS_MAX, st, k = 0;
		struct ps_msg m;
		struct ps_msg_it it;
		uint64_t v;
		int rc;
		if (ps_frame_begin(&r->c.out, PS_M_SIZES, &st) || ps_put_ids(&r->c.out, ids[base], cnt) ||
		    ps_frame_end(&r->c.out, st))
			return ps_err(err, PS_ERROR, "out of memory");
		rc = expect(r, PS_R_SIZES, &m, err);
		if (rc)
			return rc;
		if (m.n != cnt)
			return fail_conn(r, ps_err(err, PS_ECORRUPT, "%s: protocol: %zu sizes for %zu ids",
						   ep->location, m.n, cnt));
		ps_msg_it_init(&it, &m);
		while (ps_msg_next_uv(&it, &v) && k < cnt)
			lens[base + k++] = (uint32_t)v;
	}
	return PS_OK;
}

static int r_get(struct ps_ep *ep, const uint8_t (*ids)[32], size_t n, ps_ep_obj_fn fn, void *ctx,
		 struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	for (size_t base = 0; base < n; base += PS_PROTO_GET_MAX) {
		size_t cnt = n - base < PS_PROTO_GET_MAX ? n - base : PS_PROTO_GET_MAX, st;
		int stop = 0;
		if (ps_frame_begin(&r->c.out, PS_M_GET, &st) || ps_put_ids(&r->c.out, ids[base], cnt) ||
		    ps_frame_end(&r->c.out, st))
			return ps_err(err, PS_ERROR, "out of memory");
		/* every answer is read, even after the callback says stop */
		for (size_t i = 0; i < cnt; i++) {
			struct ps_msg m;
			int rc = expect(r, PS_R_OBJECT, &m, err);
			if (rc)
				return rc;
			if (memcmp(m.ids, ids[base + i], 32))
				return fail_conn(r, ps_err(err, PS_ECORRUPT,
							   "%s: protocol: an object came that was not asked for",
							   ep->location));
			if (stop)
				continue;
			if (m.flag == PS_OBJ_OK) {
				stop = fn(ctx, base + i, PS_OBJ_OK, m.data, m.len, NULL);
			} else {
				char *why = dup_bytes(m.str, m.str_len);
				stop = fn(ctx, base + i, m.flag, NULL, 0, why ? why : "unknown");
				ps_free(why);
			}
		}
		if (stop)
			return stop;
	}
	return PS_OK;
}

static int r_put(struct ps_ep *ep, const uint8_t *rec, size_t len, struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	size_t st;
	if (r->broken)
		return ps_err(err, PS_ERROR, "%s: the connection is unusable after an earlier error",
			      ep->location);
	/* a large record goes out from where it is, not through the buffer */
	if (len >= PUT_DIRECT)
		return fail_conn(r, ps_conn_send_frame(&r->c, PS_M_PUT, rec, len, err));
	if (ps_frame_begin(&r->c.out, PS_M_PUT, &st) || ps_buf_append(&r->c.out, rec, len) ||
	    ps_frame_end(&r->c.out, st))
		return ps_err(err, PS_ERROR, "out of memory");
	if (r->c.out.len >= PUT_FLUSH)
		return fail_conn(r, ps_conn_flush(&r->c, err));
	return PS_OK;
}

static int r_barrier(struct ps_ep *ep, uint64_t *accepted, uint64_t *rejected,
		     struct ps_ep_reject **rej, size_t *nrej, struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	struct ps_msg m;
	struct ps_msg_it it;
	const uint8_t *id, *why;
	size_t len;
	int rc = send_simple(r, PS_M_BARRIER, NULL, err);
	*rej = NULL;
	*nrej = 0;
	if (!rc)
		rc = expect(r, PS_R_BARRIER, &m, err);
	if (rc)
		return rc;
	*accepted = m.u[0];
	*rejected = m.u[1];
	if (m.n) {
		*rej = ps_calloc(m.n, sizeof(**rej));
		if (!*rej)
			return ps_err(err, PS_ERROR, "out of memory");
	}
	ps_msg_it_init(&it, &m);
	while (*nrej < m.n && ps_msg_next_reject(&it, &id, &why, &len)) {
		memcpy((*rej)[*nrej].id, id, 32);
		snprintf((*rej)[*nrej].why, sizeof((*rej)[*nrej].why), "%.*s", (int)len, why);
		(*nrej)++;
	}
	return PS_OK;
}

static int r_flush(struct ps_ep *ep, uint64_t *objects, uint64_t *bytes, struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	struct ps_msg m;
	int rc = send_simple(r, PS_M_FLUSH, NULL, err);
	if (!rc)
		rc = expect(r, PS_R_FLUSHED, &m, err);
	if (rc)
		return rc;
	*objects = m.u[0];
	*bytes = m.u[1];
	return PS_OK;
}

static int r_publish(struct ps_ep *ep, const char *project, const void *ref, size_t len, int *added,
		     struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	struct ps_msg m;
	size_t st;
	int rc;
	if (ps_frame_begin(&r->c.out, PS_M_PUBLISH, &st) || ps_put_str(&r->c.out, project, strlen(project)) ||
	    ps_put_str(&r->c.out, ref, len) || ps_frame_end(&r->c.out, st))
		return ps_err(err, PS_ERROR, "out of memory");
	rc = expect(r, PS_R_PUBLISHED, &m, err);
	if (!rc)
		*added = m.flag;
	return rc;
}

static int r_merge(struct ps_ep *ep, const char *project, int flags, const void *settings, size_t len,
		   int *changed, char ***notes, size_t *nnotes, struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	struct ps_msg m;
	struct ps_msg_it it;
	const uint8_t *p;
	size_t st, plen, cap = 0;
	int rc;
	*notes = NULL;
	*nnotes = 0;
	if (ps_frame_begin(&r->c.out, PS_M_MERGE, &st) || ps_put_str(&r->c.out, project, strlen(project)) ||
	    ps_buf_put_u8(&r->c.out, (uint8_t)flags) || ps_put_str(&r->c.out, settings, len) ||
	    ps_frame_end(&r->c.out, st))
		return ps_err(err, PS_ERROR, "out of memory");
	rc = expect(r, PS_R_MERGED, &m, err);
	if (rc)
		return rc;
	*changed = m.flag;
	ps_msg_it_init(&it, &m);
	while (!rc && ps_msg_next_str(&it, &p, &plen)) {
		char *s = dup_bytes(p, plen);
		if (!s || ps_strv_push(notes, nnotes, &cap, s))
			rc = ps_err(err, PS_ERROR, "out of memory");
		ps_free(s);
	}
	return rc;
}

static int r_lock(struct ps_ep *ep, int kind, const char *project, double timeout,
		  struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	struct ps_msg m;
	size_t st;
	const char *name = kind == PS_EP_LOCK_STORE ? "" : project;
	uint64_t ms = timeout <= 0 ? 0 : timeout > 86400 ? 86400000u : (uint64_t)(timeout * 1000);
	if (ps_frame_begin(&r->c.out, PS_M_LOCK, &st) || ps_buf_put_u8(&r->c.out, (uint8_t)kind) ||
	    ps_put_str(&r->c.out, name, strlen(name)) || ps_buf_put_uvar(&r->c.out, ms) ||
	    ps_frame_end(&r->c.out, st))
		return ps_err(err, PS_ERROR, "out of memory");
	return expect(r, PS_R_OK, &m, err);
}

static int r_unlock(struct ps_ep *ep, int kind, const char *project, struct ps_error *err)
{
	struct remote_ep *r = R(ep);
	struct ps_msg m;
	size_t st;
	const char *name = kind == PS_EP_LOCK_STORE ? "" : project;
	if (ps_frame_begin(&r->c.out, PS_M_UNLOCK, &st) || ps_buf_put_u8(&r->c.out, (uint8_t)kind) ||
	    ps_put_str(&r->c.out, name, strlen(name)) || ps_frame_end(&r->c.out, st))
		return ps_err(err, PS_ERROR, "out of memory");
	return expect(r, PS_R_OK, &m, err);
}

/* ssh's own byte counts: what it read and wrote minus what went through our
 * pipes is what went through its socket. */
static void ssh_io(struct remote_ep *r)
{
	char path[64], buf[1024];
	FILE *f;
	unsigned long long rchar = 0, wchar = 0;
	snprintf(path, sizeof(path), "/proc/%d/io", (int)r->pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(buf, sizeof(buf), f)) {
		sscanf(buf, "rchar: %llu", &rchar);
		sscanf(buf, "wchar: %llu", &wchar);
	}
	fclose(f);
	if (rchar > r->c.bytes_out)
		r->ep.ssh_in = rchar - r->c.bytes_out;
	if (wchar > r->c.bytes_in)
		r->ep.ssh_out = wchar - r->c.bytes_in;
}

static void reap(struct remote_ep *r)
{
	int status;
	if (r->pid <= 0)
		return;
	/* ssh ends soon after the far end said goodbye: look often at first */
	for (int i = 0, ms = 1; i < 110; i++, ms = ms < 50 ? ms * 2 : 50) {
		if (waitpid(r->pid, &status, WNOHANG) != 0)
			goto done;
		ps_sleep_ms(ms);
	}
	kill(r->pid, SIGTERM);
	for (int i = 0; i < 40; i++) {
		if (waitpid(r->pid, &status, WNOHANG) != 0)
			goto done;
		ps_sleep_ms(50);
	}
	kill(r->pid, SIGKILL);
	waitpid(r->pid, &status, 0);
done:
	r->pid = -1;
}

static void r_bye(struct ps_ep *ep)
{
	struct remote_ep *r = R(ep);
	if (r->pid > 0 && !r->broken && !r->said_bye) {
		struct ps_msg m;
		r->said_bye = 1;
		if (send_simple(r, PS_M_BYE, NULL, NULL) == PS_OK && expect(r, PS_R_OK, &m, NULL) == PS_OK)
			ssh_io(r);
	}
	ep->wire_out = r->c.bytes_out;
	ep->wire_in = r->c.bytes_in;
}

static void r_close(struct ps_ep *ep)
{
	struct remote_ep *r = R(ep);
	if (!ep)
		return;
	r_bye(ep);
	if (r->c.rfd >= 0)
		close(r->c.rfd);
	if (r->c.wfd >= 0)
		close(r->c.wfd);
	reap(r);
	ps_conn_release(&r->c);
	ps_free(ep->location);
	ps_free(r);
}

static const struct ps_ep_ops remote_ops = {
	r_projects, r_snapshots, r_refs, r_settings, r_has, r_sizes, r_get, r_put, r_barrier,
	r_flush, r_publish, r_merge, r_lock, r_unlock, r_bye, r_close, NULL,
};

/* ------------------------------------------------------------ spawning */

/* 'text' with single quotes for a POSIX shell. */
static int shell_quote(struct ps_buf *b, const char *text)
{
	int rc = ps_buf_append(b, "'", 1);
	for (const char *p = text; *p && !rc; p++)
		rc = *p == '\'' ? ps_buf_append(b, "'\\''", 4) : ps_buf_append(b, p, 1);
	return rc || ps_buf_append(b, "'", 1) ? -1 : 0;
}

static int spawn(struct remote_ep *r, const struct ps_ssh_url *u, const struct ps_ep_opts *o,
		 struct ps_error *err)
{
	const char *sshcmd = o && o->ssh_command ? o->ssh_command : getenv("PROJSTORE_SSH");
	const char *bin = o && o->remote_bin ? o->remote_bin : getenv("PROJSTORE_REMOTE_BIN");
	char *words = NULL, port[16];
	const char *argv[96];
	struct ps_buf remote = PS_BUF_INIT;
	int argc = 0, in[2] = { -1, -1 }, out[2] = { -1, -1 }, rc = PS_OK;
	pid_t pid;

	if (!sshcmd || !*sshcmd)
		sshcmd = "ssh";
	if (!bin || !*bin)
		bin = "projstore";
	words = ps_strdup(sshcmd);
	if (!words)
		return ps_err(err, PS_ERROR, "out of memory");
	for (char *save = NULL, *w = strtok_r(words, " \t", &save); w && argc < 64;
	     w = strtok_r(NULL, " \t", &save))
		argv[argc++] = w;
	if (!argc) {
		rc = ps_err(err, PS_EINVAL, "the ssh command is empty");
		goto done;
	}
	argv[argc++] = "-o";
	argv[argc++] = "BatchMode=yes";
	argv[argc++] = "-o";
	argv[argc++] = "ServerAliveInterval=15";
	argv[argc++] = "-o";
	argv[argc++] = "ServerAliveCountMax=4";
	if (u->port) {
		snprintf(port, sizeof(port), "%d", u->port);
		argv[argc++] = "-p";
		argv[argc++] = port;
	}
	if (u->user[0]) {
		argv[argc++] = "-l";
		argv[argc++] = u->user;
	}
	argv[argc++] = u->host;
	if (shell_quote(&remote, bin) || ps_buf_append(&remote, " serve-stdio ", 13) ||
	    shell_quote(&remote, u->path) || ps_buf_append(&remote, "", 1)) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	argv[argc++] = (const char *)remote.data;
	argv[argc] = NULL;
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
		rc = ps_err_sys(err, "cannot create pipes");
		goto done;
	}
	pid = fork();
	if (pid < 0) {
		rc = ps_err_sys(err, "cannot start '%s'", argv[0]);
		goto done;
	}
	if (pid == 0) {
		/* the child: stdin from in[0], stdout to out[1], stderr ours */
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "projstore: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	r->pid = pid;
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
	fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
	ps_conn_init(&r->c, out[0], in[1],
		     o && o->io_timeout > 0 ? (int)(o->io_timeout * 1000 > 2e9 ? 2e9 : o->io_timeout * 1000)
					    : 300000,
		     r->ep.location);
	ps_conn_grow_pipes(&r->c);
	in[1] = out[0] = -1;
done:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	ps_buf_release(&remote);
	ps_free(words);
	return rc;
}

int ps_ep_remote_open(struct ps_ep **out, const char *url, const struct ps_ep_opts *o,
		      struct ps_error *err)
{
	struct ps_ssh_url u;
	struct remote_ep *r;
	struct ps_msg m;
	size_t st;
	int64_t t0 = ps_mono_ns();
	int rc = ps_ssh_url_parse(url, &u, err);
	if (rc)
		return rc;
	r = ps_calloc(1, sizeof(*r));
	if (!r)
		return ps_err(err, PS_ERROR, "out of memory");
	r->ep.ops = &remote_ops;
	r->ep.remote = 1;
	r->pid = -1;
	r->c.rfd = r->c.wfd = -1;
	r->ep.location = ps_strdup(url);
	if (!r->ep.location) {
		ps_free(r);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	signal(SIGPIPE, SIG_IGN);   /* a dead ssh is an EPIPE, not our death */
	rc = spawn(r, &u, o, err);
	if (rc)
		goto fail;
	if (o && o->log) {
		char line[512];
		snprintf(line, sizeof(line), "connecting to %s (ssh %s%s%s)", url, u.user[0] ? u.user : "",
			 u.user[0] ? "@" : "", u.host);
		o->log(o->cb_ctx, 0, line);
	}
	if (ps_frame_begin(&r->c.out, PS_M_HELLO, &st) || ps_buf_append(&r->c.out, PS_PROTO_MAGIC, 8) ||
	    ps_buf_put_uvar(&r->c.out, PS_PROTO_VERSION) || ps_buf_put_uvar(&r->c.out, PS_PROTO_VERSION) ||
	    ps_frame_end(&r->c.out, st)) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto fail;
	}
	rc = expect(r, PS_R_HELLO, &m, err);
	if (rc)
		goto fail;
	if (m.u[0] != PS_PROTO_VERSION) {
		rc = ps_err(err, PS_ECORRUPT, "%s speaks sync protocol version %llu, this projstore %d",
			    url, (unsigned long long)m.u[0], PS_PROTO_VERSION);
		goto fail;
	}
	memcpy(r->ep.store_id, m.str, 32);
	r->ep.store_id[32] = 0;
	r->ep.connect_ms = (ps_mono_ns() - t0) / 1000000;
	*out = &r->ep;
	return PS_OK;
fail:
	r->broken = 1;
	r_close(&r->ep);
	return rc;
}
