/*
 * fuzz_proto.c - the sync protocol (src/lib/repl/repl_proto.c): what a
 * `projstore sync` client or a `serve-stdio` server reads from the other end
 * of an ssh connection.
 *
 * Input: a control byte, then a byte stream as it would come down the pipe.
 *   bit 0: also read the stream through a connection (ps_conn_read over a
 *          pipe holding the bytes): buffering, the text-banner check, the
 *          end of the stream in the middle of a frame;
 *   bit 1: give every frame a valid HELLO in front (so mutations of what
 *          follows reach the other decoders).
 *
 * Invariants: ps_proto_split says "need more" (0), "frame" (1, a length of
 * 5 to PS_PROTO_FRAME_MAX + 4 bytes within the input) or PS_ECORRUPT, and
 * nothing else; ps_msg_decode fails only with PS_ECORRUPT and a message, and
 * a decoded message points only into its frame, its counts keep their
 * limits, its list yields exactly its count of items inside the list, and
 * encoding it gives back the frame byte for byte (one encoding per message);
 * the connection reader gives the same frames as split + decode, then
 * PS_ENOTFOUND at a clean end or an error otherwise, and never blocks.
 */
#define _GNU_SOURCE
#include "fuzz_common.h"
#include "repl/repl_proto.h"

#include <fcntl.h>
#include <unistd.h>

#define IN(p, n, base, len) \
	((n) == 0 || ((const uint8_t *)(p) >= (base) && (const uint8_t *)(p) + (n) <= (base) + (len)))

static void check_msg(const struct ps_msg *m, const uint8_t *frame, size_t flen)
{
	struct ps_buf b = PS_BUF_INIT;
	struct ps_msg_it it;
	size_t items = 0;
	const uint8_t *payload = frame + 4;
	size_t plen = flen - 4;
	FUZZ_CHECK(IN(m->str, m->str_len, payload, plen), "string outside the frame");
	FUZZ_CHECK(IN(m->data, m->len, payload, plen), "data outside the frame");
	FUZZ_CHECK(IN(m->list, m->list_len, payload, plen), "list outside the frame");
	if (m->type == PS_M_HAS || m->type == PS_M_SIZES || m->type == PS_M_GET) {
		FUZZ_CHECK(m->n >= 1 && m->n <= PS_PROTO_IDS_MAX, "id count out of bounds");
		FUZZ_CHECK(IN(m->ids, m->n * 32, payload, plen), "ids outside the frame");
	}
	if (m->type == PS_R_OBJECT)
		FUZZ_CHECK(IN(m->ids, 32, payload, plen), "object id outside the frame");
	if (m->type == PS_M_PUT || (m->type == PS_R_OBJECT && m->flag == PS_OBJ_OK)) {
		FUZZ_CHECK(m->len >= PS_PACK_REC_HDR_LEN, "record shorter than its header");
		FUZZ_CHECK(ps_get_le32(m->data + 8) == m->len - PS_PACK_REC_HDR_LEN,
			   "record length disagrees with its header");
	}
	if (m->list) {
		const uint8_t *p, *id;
		size_t len;
		uint64_t v;
		int ok;
		ps_msg_it_init(&it, m);
		for (;;) {
			int more;
			switch (m->type) {
			case PS_R_BLOBS:
				more = ps_msg_next_blob(&it, &ok, &p, &len);
				if (more)
					FUZZ_CHECK(IN(p, len, m->list, m->list_len) && (ok == 0 || ok == 1), "blob");
				break;
			case PS_R_SIZES:
				more = ps_msg_next_uv(&it, &v);
				break;
			case PS_R_BARRIER:
				more = ps_msg_next_reject(&it, &id, &p, &len);
				if (more)
					FUZZ_CHECK(IN(id, 32, m->list, m->list_len) && IN(p, len, m->list, m->list_len),
						   "reject");
				break;
			default:
				more = ps_msg_next_str(&it, &p, &len);
				if (more)
					FUZZ_CHECK(IN(p, len, m->list, m->list_len), "list item outside the list");
			}
			if (!more)
				break;
			items++;
		}
		FUZZ_CHECK(!it.rd.bad && items == m->n, "list item count");
	}
	FUZZ_CHECK(ps_msg_encode(m, &b) == 0, "encoding failed");
	FUZZ_CHECK(b.len == flen && !memcmp(b.data, frame, flen), "encoding is not the frame");
	ps_buf_release(&b);
}

/* Split + decode every frame; returns how many decoded. */
static size_t run_frames(const uint8_t *s, size_t len)
{
	size_t off = 0, n = 0;
	while (off < len) {
		struct ps_error err;
		struct ps_msg m;
		size_t flen = 0;
		int rc = ps_proto_split(s + off, len - off, &flen, &err);
		fuzz_trace("split", rc);
		if (rc == 0)
			break;
		if (rc < 0) {
			FUZZ_CHECK(rc == PS_ECORRUPT && err.msg[0], "split failure");
			break;
		}
		FUZZ_CHECK(rc == 1 && flen >= 5 && flen <= len - off && flen <= PS_PROTO_FRAME_MAX + 4,
			   "split result");
		ps_error_clear(&err);
		rc = ps_msg_decode(s + off + 4, flen - 4, &m, &err);
		fuzz_trace("decode", rc);
		if (rc) {
			FUZZ_CHECK(rc == PS_ECORRUPT && err.msg[0], "decode failure");
			break;
		}
		check_msg(&m, s + off, flen);
		n++;
		off += flen;
	}
	return n;
}

/* The same stream through a connection over a pipe. */
static void run_conn(const uint8_t *s, size_t len, size_t decoded)
{
	int fds[2];
	struct ps_conn c;
	size_t n = 0;
	if (len > 60000 || pipe2(fds, O_CLOEXEC))
		return;
	if (len && write(fds[1], s, len) != (ssize_t)len) {
		close(fds[0]);
		close(fds[1]);
		return;
	}
	close(fds[1]);
	ps_conn_init(&c, fds[0], -1, 0, "fuzz");
	for (;;) {
		struct ps_error err;
		struct ps_msg m;
		int rc;
		ps_error_clear(&err);
		rc = ps_conn_read(&c, &m, &err);
		fuzz_trace("conn", rc);
		if (rc) {
			FUZZ_CHECK(rc == PS_ENOTFOUND || rc == PS_ECORRUPT || rc == PS_ERROR, "conn failure");
			FUZZ_CHECK(err.msg[0], "conn failure without a message");
			break;
		}
		n++;
	}
	/* the banner check may refuse a stream split + decode accepts; never
	 * the other way round */
	FUZZ_CHECK(n <= decoded, "the connection read frames split + decode refuse");
	ps_conn_release(&c);
	close(fds[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *s;
	size_t len, n;
	if (size < 1)
		return 0;
	if (data[0] & 2) {
		/* a valid HELLO first */
		static const uint8_t hello[15] = { 11, 0, 0, 0, PS_M_HELLO, 'P', 'S', 'S', 'Y', 'N',
						   'C', '\r', '\n', 1, 1 };
		len = sizeof(hello) + size - 1;
		s = fuzz_dup(hello, sizeof(hello), size - 1);
		memcpy(s + sizeof(hello), data + 1, size - 1);
	} else {
		len = size - 1;
		s = fuzz_dup(data + 1, len, 0);
	}
	n = run_frames(s, len);
	if (data[0] & 1)
		run_conn(s, len, n);
	free(s);
	return 0;
}
