/*
 * repl_proto.c - frames and messages of the sync protocol, and a buffered
 * connection over two file descriptors (see repl_proto.h for the layout).
 *
 * The decoder is the only code that looks at bytes from the peer.  It checks
 * each field against its own limit before using it, lists item by item, and
 * that the body is used up exactly; varints must be minimal, so a message has
 * one encoding.  A decoded message only points into the frame.
 *
 * The connection reads in 64 KiB blocks and writes frames from one buffer
 * (written out before every read, so the two sides never wait for each other
 * with full pipes: a side only writes a response to a request it has read,
 * and the client reads every response before it sends more than PUTs).
 * Every wait is bounded by timeout_ms (poll), so a dead peer is noticed.
 */
#define _GNU_SOURCE
#include "repl_proto.h"
#include "../store/store_int.h"
#include "../snap/snap_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#define RBLOCK (256u << 10)
#define PIPE_BYTES (1 << 20)

/* ------------------------------------------------------------ names */

const char *ps_msg_name(int type)
{
	switch (type) {
	case PS_M_HELLO: return "HELLO";
	case PS_M_PROJECTS: return "PROJECTS";
	case PS_M_SNAPSHOTS: return "SNAPSHOTS";
	case PS_M_REFS: return "REFS";
	case PS_M_SETTINGS: return "SETTINGS";
	case PS_M_HAS: return "HAS";
	case PS_M_SIZES: return "SIZES";
	case PS_M_GET: return "GET";
	case PS_M_PUT: return "PUT";
	case PS_M_BARRIER: return "BARRIER";
	case PS_M_FLUSH: return "FLUSH";
	case PS_M_PUBLISH: return "PUBLISH";
	case PS_M_MERGE: return "MERGE";
	case PS_M_LOCK: return "LOCK";
	case PS_M_UNLOCK: return "UNLOCK";
	case PS_M_BYE: return "BYE";
	case PS_R_OK: return "OK";
	case PS_R_ERROR: return "ERROR";
	case PS_R_HELLO: return "HELLO_OK";
	case PS_R_NAMES: return "NAMES";
	case PS_R_BLOBS: return "BLOBS";
	case PS_R_SETTINGS: return "SETTINGS_OK";
	case PS_R_HAVE: return "HAVE";
	case PS_R_SIZES: return "SIZES_OK";
	case PS_R_OBJECT: return "OBJECT";
	case PS_R_BARRIER: return "BARRIER_OK";
	case PS_R_FLUSHED: return "FLUSHED";
	case PS_R_PUBLISHED: return "PUBLISHED";
	case PS_R_MERGED: return "MERGED";
	default: return "unknown";
	}
}

/* ------------------------------------------------------------ reading */

static size_t uv_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* A minimal LEB128 varint. */
static uint64_t rd_uv(struct ps_rd *r)
{
	const uint8_t *p0 = r->p;
	uint64_t v = ps_rd_uvar(r);
	if (!r->bad && (size_t)(r->p - p0) != uv_len(v))
		r->bad = 1;
	return v;
}

static int64_t rd_sv(struct ps_rd *r)
{
	uint64_t u = rd_uv(r);
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static const uint8_t *rd_str(struct ps_rd *r, size_t max, size_t *len)
{
	uint64_t n = rd_uv(r);
	if (r->bad || n > max || n > ps_rd_left(r)) {
		r->bad = 1;
		return NULL;
	}
	*len = (size_t)n;
	return ps_rd_bytes(r, (size_t)n);
}

static int project_ok(const uint8_t *p, size_t n)
{
	char buf[72];
	if (!p || n < 1 || n > 64)
		return 0;
	memcpy(buf, p, n);
	buf[n] = 0;
	return ps_project_id_valid(buf);
}

static int snapname_ok(const uint8_t *p, size_t n)
{
	char buf[PS_SNAPNAME_MAX];
	if (!p || n < 1 || n >= sizeof(buf))
		return 0;
	memcpy(buf, p, n);
	buf[n] = 0;
	return ps_snapshot_name_valid(buf);
}

/* The header of an object record: what ps_store_put_record accepts. */
static int record_ok(const uint8_t *p, size_t len)
{
	uint32_t raw, stored;
	if (len < PS_PACK_REC_HDR_LEN)
		return 0;
	raw = ps_get_le32(p + 4);
	stored = ps_get_le32(p + 8);
	return (p[0] == PS_OBJ_CHUNK || p[0] == PS_OBJ_TREE) && p[1] <= PS_CODEC_LZ4 && !p[2] &&
	       !p[3] && raw <= PS_OBJ_MAX && stored <= PS_OBJ_MAX &&
	       (size_t)stored == len - PS_PACK_REC_HDR_LEN;
}

static int bad(struct ps_error *err, int type, const char *what)
{
	return ps_err(err, PS_ECORRUPT, "protocol: invalid %s message: %s", ps_msg_name(type), what);
}

/* A list of n items of `kind` (1 str of max, 2 blob, 3 uv, 4 reject). */
enum { L_STR = 1, L_BLOB, L_UV, L_REJECT, L_NAME };

static int rd_list(struct ps_rd *r, struct ps_msg *m, int kind, size_t max_items, size_t str_max)
{
	uint64_t n = rd_uv(r);
	const uint8_t *start;
	if (r->bad || n > max_items || n > ps_rd_left(r))
		return -1;
	start = r->p;
	for (uint64_t i = 0; i < n && !r->bad; i++) {
		const uint8_t *p;
		size_t len;
		if (kind == L_STR || kind == L_NAME) {
			p = rd_str(r, str_max, &len);
			if (kind == L_NAME && !r->bad && !snapname_ok(p, len))
				return -1;
		} else if (kind == L_BLOB) {
			uint8_t ok = ps_rd_u8(r);
			if (ok > 1)
				return -1;
			rd_str(r, ok ? PS_PROTO_BLOB_MAX : PS_PROTO_MSG_MAX, &len);
		} else if (kind == L_UV) {
			if (rd_uv(r) > (uint64_t)PS_OBJ_MAX + PS_PACK_REC_HDR_LEN)
				return -1;
		} else {
			ps_rd_bytes(r, 32);
			rd_str(r, PS_PROTO_MSG_MAX, &len);
		}
	}
	if (r->bad)
		return -1;
	m->n = (size_t)n;
	m->list = start;
	m->list_len = (size_t)(r->p - start);
	return 0;
}

int ps_msg_decode(const uint8_t *payload, size_t len, struct ps_msg *m, struct ps_error *err)
{
	struct ps_rd r;
	int t;
	memset(m, 0, sizeof(*m));
	if (len < 1)
		return ps_err(err, PS_ECORRUPT, "protocol: empty frame");
	ps_rd_init(&r, payload + 1, len - 1);
	t = m->type = payload[0];
	switch (t) {
	case PS_M_HELLO:
	case PS_R_HELLO: {
		const uint8_t *magic = ps_rd_bytes(&r, 8);
		if (!magic || memcmp(magic, PS_PROTO_MAGIC, 8))
			return bad(err, t, "wrong magic");
		m->u[0] = rd_uv(&r);
		m->u[1] = rd_uv(&r);
		if (t == PS_M_HELLO) {
			if (r.bad || !m->u[0] || m->u[0] > m->u[1] || m->u[1] > 65535)
				return bad(err, t, "invalid versions");
		} else {
			m->str = rd_str(&r, 32, &m->str_len);
			if (r.bad || !m->u[0] || m->u[0] > 65535 || m->u[1] < (64u << 10) ||
			    m->u[1] > UINT32_MAX)
				return bad(err, t, "invalid version or frame size");
			if (m->str_len != 32)
				return bad(err, t, "invalid store id");
			for (size_t i = 0; i < 32; i++)
				if (!((m->str[i] >= '0' && m->str[i] <= '9') || (m->str[i] >= 'a' && m->str[i] <= 'f')))
					return bad(err, t, "invalid store id");
		}
		break;
	}
	case PS_M_PROJECTS:
	case PS_M_BARRIER:
	case PS_M_FLUSH:
	case PS_M_BYE:
	case PS_R_OK:
		break;
	case PS_M_SNAPSHOTS:
	case PS_M_SETTINGS:
		m->str = rd_str(&r, 64, &m->str_len);
		if (r.bad || !project_ok(m->str, m->str_len))
			return bad(err, t, "invalid project id");
		break;
	case PS_M_REFS:
		m->str = rd_str(&r, 64, &m->str_len);
		if (r.bad || !project_ok(m->str, m->str_len))
			return bad(err, t, "invalid project id");
		if (rd_list(&r, m, L_NAME, PS_PROTO_LIST_MAX, PS_SNAPNAME_MAX))
			return bad(err, t, "invalid snapshot name list");
		break;
	case PS_M_HAS:
	case PS_M_SIZES:
	case PS_M_GET: {
		uint64_t n = rd_uv(&r);
		uint64_t max = t == PS_M_GET ? PS_PROTO_GET_MAX : PS_PROTO_IDS_MAX;
		if (r.bad || !n || n > max || n * 32 != ps_rd_left(&r))
			return bad(err, t, "invalid id count");
		m->n = (size_t)n;
		m->ids = ps_rd_bytes(&r, (size_t)n * 32);
		break;
	}
	case PS_M_PUT:
		m->len = ps_rd_left(&r);
		m->data = ps_rd_bytes(&r, m->len);
		if (!record_ok(m->data, m->len))
			return bad(err, t, "invalid object record header");
		break;
	case PS_M_PUBLISH:
		m->str = rd_str(&r, 64, &m->str_len);
		if (r.bad || !project_ok(m->str, m->str_len))
			return bad(err, t, "invalid project id");
		m->data = rd_str(&r, PS_PROTO_BLOB_MAX, &m->len);
		if (r.bad || !m->len)
			return bad(err, t, "invalid snapshot ref");
		break;
	case PS_M_MERGE:
		m->str = rd_str(&r, 64, &m->str_len);
		if (r.bad || !project_ok(m->str, m->str_len))
			return bad(err, t, "invalid project id");
		m->flag = ps_rd_u8(&r);
		if (m->flag > 3)
			return bad(err, t, "invalid flags");
		m->data = rd_str(&r, PS_PROTO_BLOB_MAX, &m->len);
		if (r.bad || (!(m->flag & 1) && m->len))
			return bad(err, t, "invalid settings");
		break;
	case PS_M_LOCK:
	case PS_M_UNLOCK:
		m->flag = ps_rd_u8(&r);
		m->str = rd_str(&r, 64, &m->str_len);
		if (r.bad || m->flag > 1 || (m->flag == 0 && m->str_len) ||
		    (m->flag == 1 && !project_ok(m->str, m->str_len)))
			return bad(err, t, "invalid lock name");
		if (t == PS_M_LOCK) {
			m->u[0] = rd_uv(&r);
			if (r.bad || m->u[0] > 86400000u)
				return bad(err, t, "invalid timeout");
		}
		break;
	case PS_R_ERROR:
		m->code = rd_sv(&r);
		m->str = rd_str(&r, PS_PROTO_MSG_MAX, &m->str_len);
		if (r.bad || m->code > -1 || m->code < -8)
			return bad(err, t, "invalid error code or message");
		break;
	case PS_R_NAMES:
	case PS_R_BLOBS:
		m->flag = ps_rd_u8(&r);
		if (m->flag > 1 || rd_list(&r, m, t == PS_R_NAMES ? L_STR : L_BLOB, PS_PROTO_LIST_MAX,
					   PS_PROTO_STR_MAX))
			return bad(err, t, "invalid list");
		break;
	case PS_R_SETTINGS:
		m->flag = ps_rd_u8(&r);
		m->data = rd_str(&r, PS_PROTO_BLOB_MAX, &m->len);
		if (r.bad || m->flag > 1 || (!m->flag && m->len))
			return bad(err, t, "invalid settings");
		break;
	case PS_R_HAVE: {
		uint64_t n = rd_uv(&r);
		if (r.bad || !n || n > PS_PROTO_IDS_MAX || (n + 7) / 8 != ps_rd_left(&r))
			return bad(err, t, "invalid count");
		m->n = (size_t)n;
		m->len = (size_t)(n + 7) / 8;
		m->data = ps_rd_bytes(&r, m->len);
		if (n % 8 && (m->data[m->len - 1] >> (n % 8)))
			return bad(err, t, "bits set past the count");
		break;
	}
	case PS_R_SIZES:
		if (rd_list(&r, m, L_UV, PS_PROTO_IDS_MAX, 0) || !m->n)
			return bad(err, t, "invalid list");
		break;
	case PS_R_OBJECT:
		m->flag = ps_rd_u8(&r);
		m->ids = ps_rd_bytes(&r, 32);
		if (r.bad || m->flag > 2)
			return bad(err, t, "invalid status");
		if (m->flag == PS_OBJ_OK) {
			m->len = ps_rd_left(&r);
			m->data = ps_rd_bytes(&r, m->len);
			if (!record_ok(m->data, m->len) || memcmp(m->data + 12, m->ids, 32))
				return bad(err, t, "invalid object record header");
		} else {
			m->str = rd_str(&r, PS_PROTO_MSG_MAX, &m->str_len);
		}
		break;
	case PS_R_BARRIER:
		m->u[0] = rd_uv(&r);
		m->u[1] = rd_uv(&r);
		if (r.bad || rd_list(&r, m, L_REJECT, PS_PROTO_REJECTS_MAX, 0) || m->n > m->u[1])
			return bad(err, t, "invalid list");
		break;
	case PS_R_FLUSHED:
		m->u[0] = rd_uv(&r);
		m->u[1] = rd_uv(&r);
		break;
	case PS_R_PUBLISHED:
		m->flag = ps_rd_u8(&r);
		if (m->flag > 1)
			return bad(err, t, "invalid flag");
		break;
	case PS_R_MERGED:
		m->flag = ps_rd_u8(&r);
		if (m->flag > 1 || rd_list(&r, m, L_STR, 1000, PS_PROTO_MSG_MAX))
			return bad(err, t, "invalid list");
		break;
	default:
		return ps_err(err, PS_ECORRUPT, "protocol: unknown message type 0x%02x", t);
	}
	if (r.bad)
		return bad(err, t, "truncated");
	if (ps_rd_left(&r))
		return bad(err, t, "trailing bytes");
	return PS_OK;
}

int ps_msg_encode(const struct ps_msg *m, struct ps_buf *b)
{
	size_t st;
	int rc = ps_frame_begin(b, m->type, &st);
	const uint8_t *str = m->str ? m->str : (const uint8_t *)"";
	const uint8_t *data = m->data ? m->data : (const uint8_t *)"";
	switch (m->type) {
	case PS_M_HELLO:
	case PS_R_HELLO:
		rc = rc || ps_buf_append(b, PS_PROTO_MAGIC, 8) || ps_buf_put_uvar(b, m->u[0]) ||
		     ps_buf_put_uvar(b, m->u[1]) || (m->type == PS_R_HELLO && ps_put_str(b, str, m->str_len));
		break;
	case PS_M_SNAPSHOTS:
	case PS_M_SETTINGS:
		rc = rc || ps_put_str(b, str, m->str_len);
		break;
	case PS_M_REFS:
		rc = rc || ps_put_str(b, str, m->str_len) || ps_buf_put_uvar(b, m->n) ||
		     (m->list_len && ps_buf_append(b, m->list, m->list_len));
		break;
	case PS_M_HAS:
	case PS_M_SIZES:
	case PS_M_GET:
		rc = rc || ps_put_ids(b, m->ids, m->n);
		break;
	case PS_M_PUT:
		rc = rc || ps_buf_append(b, data, m->len);
		break;
	case PS_M_PUBLISH:
		rc = rc || ps_put_str(b, str, m->str_len) || ps_put_str(b, data, m->len);
		break;
	case PS_M_MERGE:
		rc = rc || ps_put_str(b, str, m->str_len) || ps_buf_put_u8(b, (uint8_t)m->flag) ||
		     ps_put_str(b, data, m->len);
		break;
	case PS_M_LOCK:
	case PS_M_UNLOCK:
		rc = rc || ps_buf_put_u8(b, (uint8_t)m->flag) || ps_put_str(b, str, m->str_len) ||
		     (m->type == PS_M_LOCK && ps_buf_put_uvar(b, m->u[0]));
		break;
	case PS_R_ERROR:
		rc = rc || ps_buf_put_svar(b, m->code) || ps_put_str(b, str, m->str_len);
		break;
	case PS_R_NAMES:
	case PS_R_BLOBS:
	case PS_R_MERGED:
		rc = rc || ps_buf_put_u8(b, (uint8_t)m->flag) || ps_buf_put_uvar(b, m->n) ||
		     (m->list_len && ps_buf_append(b, m->list, m->list_len));
		break;
	case PS_R_SETTINGS:
		rc = rc || ps_buf_put_u8(b, (uint8_t)m->flag) || ps_put_str(b, data, m->len);
		break;
	case PS_R_HAVE:
		rc = rc || ps_buf_put_uvar(b, m->n) || ps_buf_append(b, data, m->len);
		break;
	case PS_R_SIZES:
		rc = rc || ps_buf_put_uvar(b, m->n) || (m->list_len && ps_buf_append(b, m->list, m->list_len));
		break;
	case PS_R_OBJECT:
		rc = rc || ps_buf_put_u8(b, (uint8_t)m->flag) || ps_buf_append(b, m->ids, 32) ||
		     (m->flag == PS_OBJ_OK ? ps_buf_append(b, data, m->len) : ps_put_str(b, str, m->str_len));
		break;
	case PS_R_BARRIER:
		rc = rc || ps_buf_put_uvar(b, m->u[0]) || ps_buf_put_uvar(b, m->u[1]) ||
		     ps_buf_put_uvar(b, m->n) || (m->list_len && ps_buf_append(b, m->list, m->list_len));
		break;
	case PS_R_FLUSHED:
		rc = rc || ps_buf_put_uvar(b, m->u[0]) || ps_buf_put_uvar(b, m->u[1]);
		break;
	case PS_R_PUBLISHED:
		rc = rc || ps_buf_put_u8(b, (uint8_t)m->flag);
		break;
	default:
		break;
	}
	return rc || ps_frame_end(b, st) ? -1 : 0;
}

void ps_msg_it_init(struct ps_msg_it *it, const struct ps_msg *m)
{
	ps_rd_init(&it->rd, m->list, m->list_len);
	it->kind = m->type;
}

int ps_msg_next_str(struct ps_msg_it *it, const uint8_t **p, size_t *len)
{
	if (!ps_rd_left(&it->rd))
		return 0;
	*p = rd_str(&it->rd, SIZE_MAX, len);
	return !it->rd.bad;
}

int ps_msg_next_blob(struct ps_msg_it *it, int *ok, const uint8_t **p, size_t *len)
{
	if (!ps_rd_left(&it->rd))
		return 0;
	*ok = ps_rd_u8(&it->rd);
	*p = rd_str(&it->rd, SIZE_MAX, len);
	return !it->rd.bad;
}

int ps_msg_next_uv(struct ps_msg_it *it, uint64_t *v)
{
	if (!ps_rd_left(&it->rd))
		return 0;
	*v = rd_uv(&it->rd);
	return !it->rd.bad;
}

int ps_msg_next_reject(struct ps_msg_it *it, const uint8_t **id, const uint8_t **why, size_t *len)
{
	if (!ps_rd_left(&it->rd))
		return 0;
	*id = ps_rd_bytes(&it->rd, 32);
	*why = rd_str(&it->rd, SIZE_MAX, len);
	return !it->rd.bad;
}

int ps_proto_split(const uint8_t *buf, size_t len, size_t *frame_len, struct ps_error *err)
{
	uint32_t n;
	if (len < 4)
		return 0;
	n = ps_get_le32(buf);
	if (n < 1)
		return ps_err(err, PS_ECORRUPT, "protocol: empty frame");
	if (n > PS_PROTO_FRAME_MAX)
		return ps_err(err, PS_ECORRUPT, "protocol: frame of %u bytes exceeds the limit of %u", n,
			      PS_PROTO_FRAME_MAX);
	if (len - 4 < n)
		return 0;
	*frame_len = (size_t)n + 4;
	return 1;
}

/* ------------------------------------------------------------ writing */

int ps_frame_begin(struct ps_buf *b, int type, size_t *start)
{
	*start = b->len;
	return ps_buf_put_u32(b, 0) || ps_buf_put_u8(b, (uint8_t)type) ? -1 : 0;
}

int ps_frame_end(struct ps_buf *b, size_t start)
{
	size_t n = b->len - start - 4;
	if (n > PS_PROTO_FRAME_MAX) {
		b->len = start;
		return -1;
	}
	ps_put_le32(b->data + start, (uint32_t)n);
	return 0;
}

int ps_put_str(struct ps_buf *b, const void *p, size_t len)
{
	return ps_buf_put_uvar(b, len) || ps_buf_append(b, p, len) ? -1 : 0;
}

int ps_put_ids(struct ps_buf *b, const uint8_t *ids, size_t n)
{
	return ps_buf_put_uvar(b, n) || ps_buf_append(b, ids, n * 32) ? -1 : 0;
}

/* ------------------------------------------------------------ connection */

void ps_conn_init(struct ps_conn *c, int rfd, int wfd, int timeout_ms, const char *peer)
{
	memset(c, 0, sizeof(*c));
	c->rfd = rfd;
	c->wfd = wfd;
	c->timeout_ms = timeout_ms;
	snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "peer");
}

void ps_conn_grow_pipes(struct ps_conn *c)
{
#ifdef F_SETPIPE_SZ
	/* fails for a socket or a file, and beyond fs.pipe-max-size: then the
	 * descriptor stays as it is */
	if (c->rfd >= 0)
		(void)fcntl(c->rfd, F_SETPIPE_SZ, PIPE_BYTES);
	if (c->wfd >= 0)
		(void)fcntl(c->wfd, F_SETPIPE_SZ, PIPE_BYTES);
#else
	(void)c;
#endif
}

void ps_conn_release(struct ps_conn *c)
{
	ps_free(c->rbuf);
	c->rbuf = NULL;
	ps_buf_release(&c->out);
}

/* Waits until fd is ready for `events`. */
static int wait_fd(struct ps_conn *c, int fd, short events, const char *what, struct ps_error *err)
{
	struct pollfd p = { fd, events, 0 };
	for (;;) {
		int r = poll(&p, 1, c->timeout_ms);
		if (r > 0)
			return PS_OK;
		if (r == 0)
			return ps_err(err, PS_ERROR, "%s: nothing %s for %d s: giving up (connection lost?)",
				      c->peer, what, c->timeout_ms / 1000);
		if (errno != EINTR)
			return ps_err_sys(err, "%s: poll", c->peer);
	}
}

static int write_bytes(struct ps_conn *c, const uint8_t *p, size_t n, struct ps_error *err)
{
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(c->wfd, p + off, n - off);
		if (w > 0) {
			off += (size_t)w;
			c->bytes_out += (uint64_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(c, c->wfd, POLLOUT, "accepted", err);
			if (rc)
				return rc;
			continue;
		}
		if (w < 0 && errno == EPIPE)
			return ps_err(err, PS_ERROR, "%s: the connection was closed by the far end", c->peer);
		return ps_err_sys(err, "%s: write", c->peer);
	}
	return PS_OK;
}

int ps_conn_flush(struct ps_conn *c, struct ps_error *err)
{
	int rc = c->out.len ? write_bytes(c, c->out.data, c->out.len, err) : PS_OK;
	ps_buf_reset(&c->out);
	return rc;
}

int ps_conn_send_frame(struct ps_conn *c, int type, const void *body, size_t len,
		       struct ps_error *err)
{
	uint8_t hdr[5];
	int rc;
	if (len + 1 > PS_PROTO_FRAME_MAX)
		return ps_err(err, PS_EINVAL, "%s: a frame of %zu bytes is too large", c->peer, len + 1);
	ps_put_le32(hdr, (uint32_t)(len + 1));
	hdr[4] = (uint8_t)type;
	if (ps_buf_append(&c->out, hdr, sizeof(hdr)))
		return ps_err(err, PS_ERROR, "out of memory");
	rc = ps_conn_flush(c, err);
	return rc ? rc : write_bytes(c, body, len, err);
}

/* Reads more bytes into rbuf (at least one). 0 at end of stream. */
static int fill(struct ps_conn *c, size_t *got, struct ps_error *err)
{
	if (c->rpos && c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
	if (c->rcap - c->rlen < RBLOCK) {
		size_t cap;
		uint8_t *nb;
		if (c->rpos) {
			memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
			c->rlen -= c->rpos;
			c->rpos = 0;
		}
		cap = c->rcap;
		while (cap - c->rlen < RBLOCK)
			cap = cap ? cap * 2 : 2 * RBLOCK;
		if (cap != c->rcap) {
			nb = ps_realloc(c->rbuf, cap);
			if (!nb)
				return ps_err(err, PS_ERROR, "out of memory");
			c->rbuf = nb;
			c->rcap = cap;
		}
	}
	for (;;) {
		ssize_t r = read(c->rfd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (r >= 0) {
			c->rlen += (size_t)r;
			c->bytes_in += (uint64_t)r;
			*got = (size_t)r;
			return PS_OK;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int rc = wait_fd(c, c->rfd, POLLIN, "received", err);
			if (rc)
				return rc;
			continue;
		}
		return ps_err_sys(err, "%s: read", c->peer);
	}
}

/* The first bytes are text: a shell or ssh printed something. */
static int text_banner(struct ps_conn *c, struct ps_error *err)
{
	char shown[96];
	size_t k = 0, have = c->rlen - c->rpos;
	for (size_t i = 0; i < have && k + 1 < sizeof(shown); i++) {
		uint8_t ch = c->rbuf[c->rpos + i];
		if (ch == '\n' || ch == '\r')
			break;
		shown[k++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	shown[k] = 0;
	return ps_err(err, PS_ECORRUPT,
		      "%s does not speak the sync protocol: it wrote '%s' (is projstore installed "
		      "there, and does the login shell print nothing for non-interactive logins?)",
		      c->peer, shown);
}

int ps_conn_read(struct ps_conn *c, struct ps_msg *m, struct ps_error *err)
{
	size_t flen = 0;
	int rc = ps_conn_flush(c, err);
	if (rc)
		return rc;
	for (;;) {
		size_t have = c->rlen - c->rpos, got = 0;
		struct ps_error e2;
		if (!c->started && have >= 4) {
			const uint8_t *p = c->rbuf + c->rpos;
			int text = 1;
			for (int i = 0; i < 4; i++)
				if (!(p[i] >= 0x20 && p[i] < 0x7f) && p[i] != '\n' && p[i] != '\r' && p[i] != '\t')
					text = 0;
			if (text)
				return text_banner(c, err);
		}
		rc = ps_proto_split(have ? c->rbuf + c->rpos : (const uint8_t *)"", have, &flen, &e2);
		if (rc < 0) {
			if (err)
				*err = e2;
			return ps_err_prefix(err, "%s", c->peer);
		}
		if (rc == 1)
			break;
		rc = fill(c, &got, err);
		if (rc)
			return rc;
		if (!got) {
			if (have == 0)
				return ps_err(err, PS_ENOTFOUND, "%s closed the connection", c->peer);
			return ps_err(err, PS_ECORRUPT,
				      "%s closed the connection in the middle of a frame (truncated: %zu bytes "
				      "of a frame)", c->peer, have);
		}
	}
	c->started = 1;
	rc = ps_msg_decode(c->rbuf + c->rpos + 4, flen - 4, m, err);
	c->rpos += flen;
	if (rc)
		return ps_err_prefix(err, "%s", c->peer);
	return PS_OK;
}

int ps_conn_send_error(struct ps_conn *c, int code, const char *msg, struct ps_error *err)
{
	size_t st;
	size_t len = strlen(msg);
	if (code >= 0 || code < -8)
		code = PS_ERROR;
	if (len > PS_PROTO_MSG_MAX)
		len = PS_PROTO_MSG_MAX;
	if (ps_frame_begin(&c->out, PS_R_ERROR, &st) || ps_buf_put_svar(&c->out, code) ||
	    ps_put_str(&c->out, msg, len) || ps_frame_end(&c->out, st))
		return ps_err(err, PS_ERROR, "out of memory");
	return ps_conn_flush(c, err);
}
