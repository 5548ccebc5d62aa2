/*
 * repl_proto.h - the sync protocol spoken over ssh between `projstore sync`
 * (the client) and `projstore serve-stdio` (the server): frames, messages,
 * and a connection over a pair of file descriptors.
 *
 * Everything read from the peer is untrusted: every frame is bounded
 * (PS_PROTO_FRAME_MAX), every count is bounded by its own limit and by the
 * bytes left in the frame, every string by its own length limit, varints
 * must be minimal (so an encoding is canonical), and a frame must be used up
 * exactly.  The decoder never allocates: a decoded message points into the
 * frame it came from.  fuzz/fuzz_proto.c drives ps_proto_split() and
 * ps_msg_decode() with hostile bytes.
 *
 * Frame (docs/FORMAT.md, "Sync protocol", has the message table):
 *
 *   offset  size  field
 *   0       4     n, u32 little-endian: bytes that follow (1 .. PS_PROTO_FRAME_MAX)
 *   4       1     message type
 *   5       n-1   body, by type
 *
 * Version 1.  The client opens with HELLO (magic, lowest and highest version
 * it speaks); the server answers HELLO_OK with the version both speak, or an
 * ERROR frame, and then serves one request at a time.  Requests that need no
 * answer (PUT) may follow each other without waiting; their failures are
 * reported by the next BARRIER.
 */
#ifndef PS_REPL_PROTO_H
#define PS_REPL_PROTO_H
#include <stddef.h>
#include <stdint.h>
#include "../util/util.h"

#define PS_PROTO_VERSION 1
#define PS_PROTO_MAGIC "PSSYNC\r\n"          /* 8 bytes: CR LF catches text-mode mangling */
#define PS_PROTO_FRAME_MAX ((64u << 20) + (64u << 10)) /* an object record and then some */
#define PS_PROTO_IDS_MAX 8192                 /* ids per HAS / SIZES request */
#define PS_PROTO_GET_MAX 1024                 /* ids per GET request */
#define PS_PROTO_STR_MAX 4096                 /* any string */
#define PS_PROTO_MSG_MAX 1024                 /* error messages, notes */
#define PS_PROTO_BLOB_MAX (1u << 20)          /* a snapshot ref, a settings file */
#define PS_PROTO_LIST_MAX 65536               /* items of one list frame */
#define PS_PROTO_REJECTS_MAX 1000             /* rejected objects named by one BARRIER_OK */

enum ps_msg_type {
	/* requests */
	PS_M_HELLO = 0x01,     /* magic[8], uv min version, uv max version */
	PS_M_PROJECTS = 0x02,  /* - */
	PS_M_SNAPSHOTS = 0x03, /* str project */
	PS_M_REFS = 0x04,      /* str project, uv n, n x str name */
	PS_M_SETTINGS = 0x05,  /* str project */
	PS_M_HAS = 0x06,       /* uv n, n x id[32] */
	PS_M_SIZES = 0x07,     /* uv n, n x id[32] */
	PS_M_GET = 0x08,       /* uv n, n x id[32] */
	PS_M_PUT = 0x09,       /* an object record: 44-byte header, stored bytes */
	PS_M_BARRIER = 0x0a,   /* - */
	PS_M_FLUSH = 0x0b,     /* - */
	PS_M_PUBLISH = 0x0c,   /* str project, blob ref */
	PS_M_MERGE = 0x0d,     /* str project, u8 flags (1 exists, 2 dry run), blob settings */
	PS_M_LOCK = 0x0e,      /* u8 kind (0 store, 1 project), str project, uv timeout ms */
	PS_M_UNLOCK = 0x0f,    /* u8 kind, str project */
	PS_M_BYE = 0x10,       /* - */
	/* responses */
	PS_R_OK = 0x80,        /* - */
	PS_R_ERROR = 0x81,     /* sv code (enum ps_errcode), str message */
	PS_R_HELLO = 0x82,     /* magic[8], uv version, uv frame max, str store id */
	PS_R_NAMES = 0x83,     /* u8 more, uv n, n x str */
	PS_R_BLOBS = 0x84,     /* u8 more, uv n, n x (u8 ok, blob: the item, or why not) */
	PS_R_SETTINGS = 0x85,  /* u8 exists, blob */
	PS_R_HAVE = 0x86,      /* uv n, bitmap[(n + 7) / 8], unused bits 0 */
	PS_R_SIZES = 0x87,     /* uv n, n x uv record length (0 = not there) */
	PS_R_OBJECT = 0x88,    /* u8 status (0 ok, 1 missing, 2 damaged), id[32],
				  then the record (ok) or str why (else) */
	PS_R_BARRIER = 0x89,   /* uv accepted, uv rejected, uv n, n x (id[32], str why) */
	PS_R_FLUSHED = 0x8a,   /* uv objects, uv bytes */
	PS_R_PUBLISHED = 0x8b, /* u8 added (0: it was there) */
	PS_R_MERGED = 0x8c,    /* u8 changed, uv n, n x str note */
};

enum { PS_OBJ_OK = 0, PS_OBJ_MISSING = 1, PS_OBJ_DAMAGED = 2 };

/* A decoded message. Pointers point into the frame. */
struct ps_msg {
	int type;
	const uint8_t *str;            /* project, message, store id */
	size_t str_len;
	const uint8_t *data;           /* record, blob, bitmap */
	size_t len;
	const uint8_t *ids;            /* n x 32 bytes (HAS, SIZES, GET), or the OBJECT's id */
	size_t n;                      /* ids, or list items */
	uint64_t u[3];                 /* versions, frame max, counts, timeout */
	int64_t code;                  /* ERROR */
	int flag;                      /* more, exists, ok, added, changed, kind, status, flags */
	const uint8_t *list;           /* list items, validated, for ps_msg_it */
	size_t list_len;
};

/* Parses one frame's payload (type + body). PS_ECORRUPT with a message
 * naming what is wrong. */
int ps_msg_decode(const uint8_t *payload, size_t len, struct ps_msg *m, struct ps_error *err);
const char *ps_msg_name(int type);

/* Appends the frame of a decoded message: decoding is canonical, so this
 * gives back the bytes it was decoded from (the fuzz target checks it). */
int ps_msg_encode(const struct ps_msg *m, struct ps_buf *out);

/* Iterating the items of a decoded list (NAMES, REFS names, BLOBS, SIZES,
 * BARRIER rejects, MERGED notes). The decoder has validated them. */
struct ps_msg_it {
	struct ps_rd rd;
	int kind;
};
void ps_msg_it_init(struct ps_msg_it *it, const struct ps_msg *m);
/* strings (NAMES, REFS, MERGED) */
int ps_msg_next_str(struct ps_msg_it *it, const uint8_t **p, size_t *len);
/* BLOBS */
int ps_msg_next_blob(struct ps_msg_it *it, int *ok, const uint8_t **p, size_t *len);
/* SIZES */
int ps_msg_next_uv(struct ps_msg_it *it, uint64_t *v);
/* BARRIER rejects */
int ps_msg_next_reject(struct ps_msg_it *it, const uint8_t **id, const uint8_t **why, size_t *len);

/* Looks at the first bytes of a stream: the length of the first frame
 * (header included) in *frame_len when it is all there (returns 1), 0 when
 * more bytes are needed, or PS_ECORRUPT for a header no peer would send
 * (zero or oversized length). */
int ps_proto_split(const uint8_t *buf, size_t len, size_t *frame_len, struct ps_error *err);

/* ---- encoding: frames appended to a buffer ---- */
/* Starts a frame of `type` at the end of b; returns its start for _end. */
int ps_frame_begin(struct ps_buf *b, int type, size_t *start);
/* Patches the frame's length. -1 if the frame exceeds PS_PROTO_FRAME_MAX. */
int ps_frame_end(struct ps_buf *b, size_t start);
int ps_put_str(struct ps_buf *b, const void *p, size_t len);
int ps_put_ids(struct ps_buf *b, const uint8_t *ids, size_t n);

/* ---- a connection: a read and a write descriptor ---- */
struct ps_conn {
	int rfd, wfd;
	uint8_t *rbuf;                 /* bytes read, not yet used */
	size_t rpos, rlen, rcap;
	struct ps_buf out;             /* frames not yet written */
	int timeout_ms;                /* per read/write wait; < 0 = forever */
	uint64_t bytes_in, bytes_out;
	int started;                   /* a frame has been read */
	char peer[256];                /* for messages */
};
void ps_conn_init(struct ps_conn *c, int rfd, int wfd, int timeout_ms, const char *peer);
void ps_conn_release(struct ps_conn *c);
/* Gives the descriptors pipe buffers of 1 MiB when they are pipes (ssh and
 * sshd move a bulk stream in large pieces only when the pipes on both ends
 * hold that much: with the default 64 KiB the stream crawls). */
void ps_conn_grow_pipes(struct ps_conn *c);
/* Writes out what is buffered. */
int ps_conn_flush(struct ps_conn *c, struct ps_error *err);
/* Writes out what is buffered, then a frame whose body is written straight
 * from `body` (a large record is not copied into the buffer first). */
int ps_conn_send_frame(struct ps_conn *c, int type, const void *body, size_t len,
		       struct ps_error *err);
/* Flushes, then reads and decodes the next frame; *m points into the
 * connection's buffer until the next read. PS_ENOTFOUND when the peer closed
 * the connection between frames. */
int ps_conn_read(struct ps_conn *c, struct ps_msg *m, struct ps_error *err);
/* Buffers an ERROR frame (and flushes). */
int ps_conn_send_error(struct ps_conn *c, int code, const char *msg, struct ps_error *err);
#endif
