/*
 * repl_serve.c - `projstore serve-stdio PATH`: the far end of an ssh://
 * location.  Serves the local endpoint of the store at PATH on a pair of
 * descriptors, one request at a time (repl_proto.h).
 *
 * The client is not trusted: every frame goes through the decoder (bounded,
 * validated), a request the protocol does not allow now ends the session
 * with an ERROR frame saying why, and what it asks for is done through the
 * local endpoint, whose checks protect the store (each object verified
 * before it is stored, refs validated and never replacing one).  An
 * operation that fails (a lock held, a ref refused) is answered with an
 * ERROR frame and the session goes on.  A failed PUT has no answer of its
 * own: it is counted and named by the next BARRIER (a failure to write, as
 * opposed to a rejected object, is answered to the next request).
 *
 * When the client goes away (end of input) the locks it held are released
 * and the session ends; what was written but not flushed is left for the
 * next writer exactly as after a killed save.
 */
#define _GNU_SOURCE
#include "repl_int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define OUT_FLUSH (1u << 20)
#define LIST_BYTES (1u << 20)

struct server {
	struct ps_conn c;
	struct ps_ep *ep;
	int failed;                   /* a PUT could not be written */
	struct ps_error put_err;
	ps_sync_log_fn log;
	void *ctx;
};

static int oom(struct ps_error *err) { return ps_err(err, PS_ERROR, "out of memory"); }

static char *cstr(const struct ps_msg *m)
{
	char *s = ps_malloc(m->str_len + 1);
	if (s) {
		memcpy(s, m->str, m->str_len);
		s[m->str_len] = 0;
	}
	return s;
}

/* Answers an operation's failure; the session goes on. */
static int answer_error(struct server *sv, const struct ps_error *e, struct ps_error *err)
{
	return ps_conn_send_error(&sv->c, e->code ? e->code : PS_ERROR, e->msg[0] ? e->msg : "failed",
				  err);
}

static int do_projects(struct server *sv, struct ps_error *err)
{
	char **v = NULL;
	size_t n = 0, i = 0;
	struct ps_error e;
	int rc = PS_OK;
	ps_error_clear(&e);
	if (sv->ep->ops->projects(sv->ep, &v, &n, &e))
		return answer_error(sv, &e, err);
	do {
		struct ps_buf body = PS_BUF_INIT;
		size_t st, cnt = 0;
		for (; i < n && cnt < 16384 && !rc; i++, cnt++)
			if (ps_put_str(&body, v[i], strlen(v[i])))
				rc = oom(err);
		if (!rc && (ps_frame_begin(&sv->c.out, PS_R_NAMES, &st) || ps_buf_put_u8(&sv->c.out, i < n) ||
			    ps_buf_put_uvar(&sv->c.out, cnt) ||
			    (body.len && ps_buf_append(&sv->c.out, body.data, body.len)) ||
			    ps_frame_end(&sv->c.out, st)))
			rc = oom(err);
		ps_buf_release(&body);
		if (!rc)
			rc = ps_conn_flush(&sv->c, err);
	} while (i < n && !rc);
	ps_strv_free(v, n);
	return rc;
}

/* Sends blobs (ok[i], p[i]) in BLOBS frames of about LIST_BYTES. */
static int send_blobs(struct server *sv, size_t n, const int *ok, const struct ps_buf *items,
		      char *const *why, struct ps_error *err)
{
	size_t i = 0;
	do {
		struct ps_buf body = PS_BUF_INIT;
		size_t st, cnt = 0;
		int rc;
		for (; i < n && (cnt == 0 || body.len < LIST_BYTES) && cnt < PS_PROTO_LIST_MAX; i++, cnt++) {
			const void *p = ok[i] ? (const void *)items[i].data : (const void *)why[i];
			size_t len = ok[i] ? items[i].len : strlen(why[i] ? why[i] : "");
			if (!ok[i] && len > PS_PROTO_MSG_MAX)
				len = PS_PROTO_MSG_MAX;
			if (ps_buf_put_u8(&body, (uint8_t)ok[i]) || ps_put_str(&body, p ? p : "", len)) {
				ps_buf_release(&body);
				return oom(err);
			}
		}
		if (ps_frame_begin(&sv->c.out, PS_R_BLOBS, &st) || ps_buf_put_u8(&sv->c.out, i < n) ||
		    ps_buf_put_uvar(&sv->c.out, cnt) || (body.len && ps_buf_append(&sv->c.out, body.data, body.len)) ||
		    ps_frame_end(&sv->c.out, st)) {
			ps_buf_release(&body);
			return oom(err);
		}
		ps_buf_release(&body);
		rc = ps_conn_flush(&sv->c, err);
		if (rc)
			return rc;
	} while (i < n);
	return PS_OK;
}

static int do_snapshots(struct server *sv, const char *project, struct ps_error *err)
{
	struct ps_snapshot_info *v = NULL;
	struct ps_buf *items = NULL;
	int *ok = NULL;
	size_t n = 0;
	struct ps_error e;
	int rc;
	ps_error_clear(&e);
	if (sv->ep->ops->snapshots(sv->ep, project, &v, &n, &e))
		return answer_error(sv, &e, err);
	items = ps_calloc(n + 1, sizeof(*items));
	ok = ps_calloc(n + 1, sizeof(*ok));
	rc = items && ok ? PS_OK : oom(err);
	for (size_t i = 0; i < n && !rc; i++) {
		ok[i] = 1;
		if (ps_ref_encode(&v[i], &items[i]))
			rc = oom(err);
	}
	if (!rc)
		rc = send_blobs(sv, n, ok, items, NULL, err);
	for (size_t i = 0; items && i < n; i++)
		ps_buf_release(&items[i]);
	ps_free(items);
	ps_free(ok);
	ps_free(v);
	return rc;
}

static int do_refs(struct server *sv, const struct ps_msg *m, struct ps_error *err)
{
	char *project = cstr(m), **names = NULL, **why = NULL;
	struct ps_buf *refs = NULL;
	int *ok = NULL, rc = PS_OK;
	struct ps_msg_it it;
	const uint8_t *p;
	size_t len, k = 0;
	struct ps_error e;
	names = ps_calloc(m->n + 1, sizeof(*names));
	why = ps_calloc(m->n + 1, sizeof(*why));
	refs = ps_calloc(m->n + 1, sizeof(*refs));
	ok = ps_calloc(m->n + 1, sizeof(*ok));
	if (!project || !names || !why || !refs || !ok) {
		rc = oom(err);
		goto done;
	}
	ps_msg_it_init(&it, m);
	while (k < m->n && ps_msg_next_str(&it, &p, &len)) {
		if (!(names[k] = ps_malloc(len + 1))) {
			rc = oom(err);
			goto done;
		}
		memcpy(names[k], p, len);
		names[k++][len] = 0;
	}
	ps_error_clear(&e);
	if (sv->ep->ops->refs(sv->ep, project, names, k, refs, why, &e)) {
		rc = answer_error(sv, &e, err);
		goto done;
	}
	for (size_t i = 0; i < k; i++)
		ok[i] = why[i] == NULL;
	rc = send_blobs(sv, k, ok, refs, why, err);
done:
	for (size_t i = 0; i < m->n; i++) {
		if (names)
			ps_free(names[i]);
		if (why)
			ps_free(why[i]);
		if (refs)
			ps_buf_release(&refs[i]);
	}
	ps_free(names);
	ps_free(why);
	ps_free(refs);
	ps_free(ok);
	ps_free(project);
	return rc;
}

static int do_settings(struct server *sv, const char *project, struct ps_error *err)
{
	struct ps_buf b = PS_BUF_INIT;
	struct ps_error e;
	size_t st;
	int exists = 0, rc;
	ps_error_clear(&e);
	if (sv->ep->ops->settings(sv->ep, project, &exists, &b, &e)) {
		ps_buf_release(&b);
		return answer_error(sv, &e, err);
	}
	if (b.len > PS_PROTO_BLOB_MAX) {
		ps_buf_release(&b);
		ps_err(&e, PS_ECORRUPT, "the settings of '%s' are too large", project);
		return answer_error(sv, &e, err);
	}
	rc = ps_frame_begin(&sv->c.out, PS_R_SETTINGS, &st) || ps_buf_put_u8(&sv->c.out, (uint8_t)exists) ||
	     ps_put_str(&sv->c.out, b.data ? (void *)b.data : (void *)"", b.len) || ps_frame_end(&sv->c.out, st)
		     ? oom(err) : PS_OK;
	ps_buf_release(&b);
	return rc;
}

static int do_has(struct server *sv, const struct ps_msg *m, struct ps_error *err)
{
	uint8_t bits[(PS_PROTO_IDS_MAX + 7) / 8];
	struct ps_error e;
	size_t st;
	ps_error_clear(&e);
	if (sv->ep->ops->has(sv->ep, (const uint8_t (*)[32])m->ids, m->n, bits, &e))
		return answer_error(sv, &e, err);
	if (ps_frame_begin(&sv->c.out, PS_R_HAVE, &st) || ps_buf_put_uvar(&sv->c.out, m->n) ||
	    ps_buf_append(&sv->c.out, bits, (m->n + 7) / 8) || ps_frame_end(&sv->c.out, st))
		return oom(err);
	return PS_OK;
}

static int do_sizes(struct server *sv, const struct ps_msg *m, struct ps_error *err)
{
	uint32_t lens[PS_PROTO_IDS_MAX];
	struct ps_error e;
	size_t st;
	ps_error_clear(&e);
	if (sv->ep->ops->sizes(sv->ep, (const uint8_t (*)[32])m->ids, m->n, lens, &e))
		return answer_error(sv, &e, err);
	if (ps_frame_begin(&sv->c.out, PS_R_SIZES, &st) || ps_buf_put_uvar(&sv->c.out, m->n))
		return oom(err);
	for (size_t i = 0; i < m->n; i++)
		if (ps_buf_put_uvar(&sv->c.out, lens[i]))
			return oom(err);
	return ps_frame_end(&sv->c.out, st) ? oom(err) : PS_OK;
}

struct get_ctx {
	struct server *sv;
	const uint8_t *ids;
	struct ps_error *err;
	int rc;
	size_t sent;                  /* OBJECT frames made */
};

static int get_one(void *vctx, size_t i, int status, const uint8_t *rec, size_t len, const char *why)
{
	struct get_ctx *g = vctx;
	struct ps_conn *c = &g->sv->c;
	size_t st;
	if (ps_frame_begin(&c->out, PS_R_OBJECT, &st) || ps_buf_put_u8(&c->out, (uint8_t)status) ||
	    ps_buf_append(&c->out, g->ids + 32 * i, 32)) {
		g->rc = oom(g->err);
		return 1;
	}
	if (status == PS_OBJ_OK ? ps_buf_append(&c->out, rec, len)
				: ps_put_str(&c->out, why, strlen(why) > PS_PROTO_MSG_MAX ? PS_PROTO_MSG_MAX
											 : strlen(why))) {
		g->rc = oom(g->err);
		return 1;
	}
	if (ps_frame_end(&c->out, st)) {
		g->rc = oom(g->err);
		return 1;
	}
	g->sent++;
	if (c->out.len >= OUT_FLUSH && (g->rc = ps_conn_flush(c, g->err)))
		return 1;
	return 0;
}

static int do_get(struct server *sv, const struct ps_msg *m, struct ps_error *err)
{
	struct get_ctx g = { sv, m->ids, err, PS_OK, 0 };
	struct ps_error e;
	int rc;
	ps_error_clear(&e);
	rc = sv->ep->ops->get(sv->ep, (const uint8_t (*)[32])m->ids, m->n, get_one, &g, &e);
	if (g.rc)
		return g.rc;
	if (rc) {
		/* a failure after some answers cannot be told in order: end */
		if (g.sent) {
			ps_conn_send_error(&sv->c, rc, e.msg, NULL);
			if (err)
				*err = e;
			return rc;
		}
		return answer_error(sv, &e, err);
	}
	return PS_OK;
}

static int do_barrier(struct server *sv, struct ps_error *err)
{
	uint64_t acc = 0, rej = 0;
	struct ps_ep_reject *rv = NULL;
	size_t nr = 0, st;
	struct ps_error e;
	int rc = PS_OK;
	if (sv->failed) {
		sv->failed = 0;
		return answer_error(sv, &sv->put_err, err);
	}
	ps_error_clear(&e);
	if (sv->ep->ops->barrier(sv->ep, &acc, &rej, &rv, &nr, &e))
		return answer_error(sv, &e, err);
	if (nr > PS_PROTO_REJECTS_MAX)
		nr = PS_PROTO_REJECTS_MAX;
	if (ps_frame_begin(&sv->c.out, PS_R_BARRIER, &st) || ps_buf_put_uvar(&sv->c.out, acc) ||
	    ps_buf_put_uvar(&sv->c.out, rej) || ps_buf_put_uvar(&sv->c.out, nr))
		rc = oom(err);
	for (size_t i = 0; i < nr && !rc; i++)
		if (ps_buf_append(&sv->c.out, rv[i].id, 32) || ps_put_str(&sv->c.out, rv[i].why, strlen(rv[i].why)))
			rc = oom(err);
	if (!rc && ps_frame_end(&sv->c.out, st))
		rc = oom(err);
	ps_free(rv);
	return rc;
}

static int do_flush(struct server *sv, struct ps_error *err)
{
	uint64_t objs = 0, bytes = 0;
	struct ps_error e;
	size_t st;
	if (sv->failed) {
		sv->failed = 0;
		return answer_error(sv, &sv->put_err, err);
	}
	ps_error_clear(&e);
	if (sv->ep->ops->flush(sv->ep, &objs, &bytes, &e))
		return answer_error(sv, &e, err);
	if (ps_frame_begin(&sv->c.out, PS_R_FLUSHED, &st) || ps_buf_put_uvar(&sv->c.out, objs) ||
	    ps_buf_put_uvar(&sv->c.out, bytes) || ps_frame_end(&sv->c.out, st))
		return oom(err);
	return PS_OK;
}

static int do_publish(struct server *sv, const struct ps_msg *m, struct ps_error *err)
{
	char *project = cstr(m);
	struct ps_error e;
	size_t st;
	int added = 0, rc;
	if (!project)
		return oom(err);
	ps_error_clear(&e);
	rc = sv->ep->ops->publish(sv->ep, project, m->data, m->len, &added, &e);
	ps_free(project);
	if (rc)
		return answer_error(sv, &e, err);
	if (ps_frame_begin(&sv->c.out, PS_R_PUBLISHED, &st) || ps_buf_put_u8(&sv->c.out, (uint8_t)added) ||
	    ps_frame_end(&sv->c.out, st))
		return oom(err);
	return PS_OK;
}

static int do_merge(struct server *sv, const struct ps_msg *m, struct ps_error *err)
{
	char *project = cstr(m), **notes = NULL;
	size_t nn = 0, st;
	struct ps_error e;
	int changed = 0, rc;
	if (!project)
		return oom(err);
	ps_error_clear(&e);
	rc = sv->ep->ops->merge(sv->ep, project, m->flag, m->data, m->len, &changed, &notes, &nn, &e);
	ps_free(project);
	if (rc)
		return answer_error(sv, &e, err);
	if (nn > 1000)
		nn = 1000;
	rc = ps_frame_begin(&sv->c.out, PS_R_MERGED, &st) || ps_buf_put_u8(&sv->c.out, (uint8_t)changed) ||
	     ps_buf_put_uvar(&sv->c.out, nn) ? oom(err) : PS_OK;
	for (size_t i = 0; i < nn && !rc; i++) {
		size_t l = strlen(notes[i]);
		if (ps_put_str(&sv->c.out, notes[i], l > PS_PROTO_MSG_MAX ? PS_PROTO_MSG_MAX : l))
			rc = oom(err);
	}
	if (!rc && ps_frame_end(&sv->c.out, st))
		rc = oom(err);
	ps_strv_free(notes, nn);
	return rc;
}

static int do_lock(struct server *sv, const struct ps_msg *m, int lock, struct ps_error *err)
{
	char *name = cstr(m);
	struct ps_error e;
	size_t st;
	int rc;
	if (!name)
		return oom(err);
	ps_error_clear(&e);
	rc = lock ? sv->ep->ops->lock(sv->ep, m->flag, name, (double)m->u[0] / 1000.0, &e)
		  : sv->ep->ops->unlock(sv->ep, m->flag, name, &e);
	ps_free(name);
	if (rc)
		return answer_error(sv, &e, err);
	if (ps_frame_begin(&sv->c.out, PS_R_OK, &st) || ps_frame_end(&sv->c.out, st))
		return oom(err);
	return PS_OK;
}

static void say(struct server *sv, int level, const char *fmt, ...) PS_ATTR_PRINTF(3, 4);
static void say(struct server *sv, int level, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	if (!sv->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sv->log(sv->ctx, level, line);
}

/* Ends the session because of the client: tells it why. */
static int protocol_error(struct server *sv, const struct ps_error *e, struct ps_error *err)
{
	say(sv, 1, "%s", e->msg);
	ps_conn_send_error(&sv->c, PS_ECORRUPT, e->msg, NULL);
	if (err && err != e)
		*err = *e;
	return PS_ECORRUPT;
}

int ps_serve_stdio(const char *location, int in_fd, int out_fd, ps_sync_log_fn log, void *ctx,
		   struct ps_error *err)
{
	struct server sv;
	struct ps_store *s = NULL;
	struct ps_msg m;
	struct ps_error e;
	size_t st;
	int rc;

	memset(&sv, 0, sizeof(sv));
	sv.log = log;
	sv.ctx = ctx;
	signal(SIGPIPE, SIG_IGN);
	ps_conn_init(&sv.c, in_fd, out_fd, -1, "the client");
	ps_conn_grow_pipes(&sv.c);
	/* HELLO first, then the store: a client is told why a store cannot be
	 * opened in a frame it understands */
	ps_error_clear(&e);
	rc = ps_conn_read(&sv.c, &m, &e);
	if (rc == PS_ENOTFOUND) {
		rc = PS_OK;
		goto done;
	}
	if (rc) {
		rc = protocol_error(&sv, &e, err);
		goto done;
	}
	if (m.type != PS_M_HELLO) {
		ps_err(&e, PS_ECORRUPT, "protocol: expected HELLO, got %s", ps_msg_name(m.type));
		rc = protocol_error(&sv, &e, err);
		goto done;
	}
	if (m.u[0] > PS_PROTO_VERSION || m.u[1] < PS_PROTO_VERSION) {
		ps_err(&e, PS_EINVAL, "the client speaks sync protocol versions %llu to %llu; this "
		       "projstore speaks %d", (unsigned long long)m.u[0], (unsigned long long)m.u[1],
		       PS_PROTO_VERSION);
		ps_conn_send_error(&sv.c, PS_EINVAL, e.msg, NULL);
		rc = ps_err(err, PS_EINVAL, "%s", e.msg);
		goto done;
	}
	rc = ps_store_open(&s, location, &e);
	if (!rc) {
		rc = ps_ep_local_new(&sv.ep, s, 1, &e);
		if (rc)
			ps_store_free(s);
		else
			ps_ep_local_set_log(sv.ep, log, ctx);
	}
	if (rc) {
		ps_conn_send_error(&sv.c, rc, e.msg, NULL);
		if (err)
			*err = e;
		goto done;
	}
	if (ps_frame_begin(&sv.c.out, PS_R_HELLO, &st) || ps_buf_append(&sv.c.out, PS_PROTO_MAGIC, 8) ||
	    ps_buf_put_uvar(&sv.c.out, PS_PROTO_VERSION) || ps_buf_put_uvar(&sv.c.out, PS_PROTO_FRAME_MAX) ||
	    ps_put_str(&sv.c.out, sv.ep->store_id, 32) || ps_frame_end(&sv.c.out, st)) {
		rc = oom(err);
		goto done;
	}
	for (;;) {
		char *project = NULL;
		ps_error_clear(&e);
		rc = ps_conn_read(&sv.c, &m, &e);
		if (rc == PS_ENOTFOUND) {
			say(&sv, 0, "the client went away");
			rc = PS_OK;
			break;
		}
		if (rc) {
			rc = protocol_error(&sv, &e, err);
			break;
		}
		if (m.type == PS_M_SNAPSHOTS || m.type == PS_M_SETTINGS) {
			project = cstr(&m);
			if (!project) {
				rc = oom(err);
				break;
			}
		}
		switch (m.type) {
		case PS_M_PROJECTS: rc = do_projects(&sv, err); break;
		case PS_M_SNAPSHOTS: rc = do_snapshots(&sv, project, err); break;
		case PS_M_REFS: rc = do_refs(&sv, &m, err); break;
		case PS_M_SETTINGS: rc = do_settings(&sv, project, err); break;
		case PS_M_HAS: rc = do_has(&sv, &m, err); break;
		case PS_M_SIZES: rc = do_sizes(&sv, &m, err); break;
		case PS_M_GET: rc = do_get(&sv, &m, err); break;
		case PS_M_PUT:
			if (!sv.failed && sv.ep->ops->put(sv.ep, m.data, m.len, &e)) {
				sv.failed = 1;
				sv.put_err = e;
				say(&sv, 1, "%s", e.msg);
			}
			rc = PS_OK;
			break;
		case PS_M_BARRIER: rc = do_barrier(&sv, err); break;
		case PS_M_FLUSH: rc = do_flush(&sv, err); break;
		case PS_M_PUBLISH: rc = do_publish(&sv, &m, err); break;
		case PS_M_MERGE: rc = do_merge(&sv, &m, err); break;
		case PS_M_LOCK: rc = do_lock(&sv, &m, 1, err); break;
		case PS_M_UNLOCK: rc = do_lock(&sv, &m, 0, err); break;
		case PS_M_BYE:
			if (ps_frame_begin(&sv.c.out, PS_R_OK, &st) || ps_frame_end(&sv.c.out, st))
				rc = oom(err);
			else
				rc = ps_conn_flush(&sv.c, err);
			ps_free(project);
			goto done;
		default:
			ps_err(&e, PS_ECORRUPT, "protocol: %s is not a request the server takes now",
			       ps_msg_name(m.type));
			rc = protocol_error(&sv, &e, err);
			break;
		}
		ps_free(project);
		if (rc)
			break;
	}
done:
	if (sv.ep)
		sv.ep->ops->close(sv.ep);
	ps_conn_flush(&sv.c, NULL);
	ps_conn_release(&sv.c);
	return rc;
}
