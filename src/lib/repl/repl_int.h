/*
 * repl_int.h - the replication module's private interface: a "sync
 * endpoint" is one side of a sync, with the same operations whether the
 * store is opened in this process (repl_local.c, any store backend) or
 * served by `projstore serve-stdio` at the far end of an ssh connection
 * (repl_remote.c, the protocol client; repl_serve.c serves a local endpoint).
 *
 * The sync engine (repl_sync.c) and repair (repl_repair.c) only use this
 * interface, so every combination of local and remote sides runs the same
 * code, and the checks that protect DST (each object verified on arrival,
 * refs validated, nothing overwritten) live in the local endpoint, where the
 * store is written, whoever drives it.
 *
 * Objects travel as pack records (44-byte header + stored bytes): what the
 * source has stored is what is sent and stored again, never recompressed.
 */
#ifndef PS_REPL_INT_H
#define PS_REPL_INT_H
#include "projstore_sync.h"
#include "../snap/snap_int.h"
#include "repl_proto.h"

struct ps_ep;

/* A snapshot as listed by an endpoint. */
struct ps_ep_snap {
	struct ps_snapshot_info info;
};

/* Called for each object of a get, in the order asked: status PS_OBJ_OK with
 * the record, or PS_OBJ_MISSING / PS_OBJ_DAMAGED with why. Returning
 * non-zero stops (that value is returned by get). */
typedef int (*ps_ep_obj_fn)(void *ctx, size_t i, int status, const uint8_t *rec, size_t len,
			    const char *why);

/* A rejected put, reported by barrier. */
struct ps_ep_reject {
	uint8_t id[32];
	char why[256];
};

enum { PS_EP_LOCK_STORE = 0, PS_EP_LOCK_PROJECT = 1 };
#define PS_EP_MERGE_EXISTS 1
#define PS_EP_MERGE_DRY 2

struct ps_ep_ops {
	/* project ids with snapshots or settings, sorted; ps_strv_free */
	int (*projects)(struct ps_ep *ep, char ***v, size_t *n, struct ps_error *err);
	/* snapshots, oldest first (free()) */
	int (*snapshots)(struct ps_ep *ep, const char *project, struct ps_snapshot_info **v,
			 size_t *n, struct ps_error *err);
	/* the ref files of the named snapshots, as stored: refs[i] (ps_free) or
	 * NULL when it cannot be read (why[i], ps_free) */
	int (*refs)(struct ps_ep *ep, const char *project, char *const *names, size_t n,
		    struct ps_buf *refs, char **why, struct ps_error *err);
	/* the settings file; *exists = 0 when there is none */
	int (*settings)(struct ps_ep *ep, const char *project, int *exists, struct ps_buf *out,
			struct ps_error *err);
	/* bits[i] = 1 when the object is in the store's dedup view (a pack no
	 * condemned list names, or written in this session) */
	int (*has)(struct ps_ep *ep, const uint8_t (*ids)[32], size_t n, uint8_t *bits,
		   struct ps_error *err);
	/* record lengths (0 = not there), without reading data */
	int (*sizes)(struct ps_ep *ep, const uint8_t (*ids)[32], size_t n, uint32_t *lens,
		     struct ps_error *err);
	/* records of objects, as stored (not verified: whoever decodes does) */
	int (*get)(struct ps_ep *ep, const uint8_t (*ids)[32], size_t n, ps_ep_obj_fn fn,
		   void *ctx, struct ps_error *err);
	/* stores a record after verifying it (decompressed, hashed; trees
	 * decoded); a record that fails is rejected, not stored, and reported by
	 * the next barrier (a remote endpoint cannot say sooner) */
	int (*put)(struct ps_ep *ep, const uint8_t *rec, size_t len, struct ps_error *err);
	/* rejections since the last barrier (ps_free *rej) */
	int (*barrier)(struct ps_ep *ep, uint64_t *accepted, uint64_t *rejected,
		       struct ps_ep_reject **rej, size_t *nrej, struct ps_error *err);
	/* finishes the open pack and indexes everything put so far */
	int (*flush)(struct ps_ep *ep, uint64_t *objects, uint64_t *bytes, struct ps_error *err);
	/* publishes a snapshot ref (validated; its root must be there); never
	 * replaces one: *added = 0 when that snapshot exists */
	int (*publish)(struct ps_ep *ep, const char *project, const void *ref, size_t len,
		       int *added, struct ps_error *err);
	/* merges another store's settings into this one's (docs/CLI.md, sync):
	 * flags PS_EP_MERGE_*; notes: ps_strv_free */
	int (*merge)(struct ps_ep *ep, const char *project, int flags, const void *settings,
		     size_t len, int *changed, char ***notes, size_t *nnotes, struct ps_error *err);
	int (*lock)(struct ps_ep *ep, int kind, const char *project, double timeout,
		    struct ps_error *err);
	int (*unlock)(struct ps_ep *ep, int kind, const char *project, struct ps_error *err);
	/* ends the session (remote: says goodbye, then the byte counts of
	 * struct ps_ep are final); the endpoint stays to be closed */
	void (*bye)(struct ps_ep *ep);
	void (*close)(struct ps_ep *ep);
	/* may be NULL: starts what the endpoint needs to serve objects (a local
	 * store's index) in the background; a source only, never one that
	 * takes the store-wide lock later */
	void (*warm)(struct ps_ep *ep);
};

struct ps_ep {
	const struct ps_ep_ops *ops;
	char *location;                /* as given, for messages */
	char store_id[33];
	int remote;
	int64_t connect_ms;            /* remote: ssh set-up until HELLO_OK */
	uint64_t wire_out, wire_in;    /* remote: protocol bytes */
	uint64_t ssh_out, ssh_in;      /* remote: ssh's socket bytes (from /proc), at close */
};

struct ps_ep_opts {
	double io_timeout;
	const char *ssh_command;
	const char *remote_bin;
	ps_sync_log_fn log;
	void *cb_ctx;
};

/* Opens an endpoint for any location (ssh:// or local). */
int ps_ep_open(struct ps_ep **out, const char *location, const struct ps_ep_opts *o,
	       struct ps_error *err);
/* The local endpoint over a store; with own = 1 it frees the store on close. */
int ps_ep_local_new(struct ps_ep **out, struct ps_store *s, int own, struct ps_error *err);
struct ps_store *ps_ep_local_store(struct ps_ep *ep);
/* Where a local endpoint tells what it leaves out (damaged refs). */
void ps_ep_local_set_log(struct ps_ep *ep, ps_sync_log_fn log, void *ctx);
int ps_ep_remote_open(struct ps_ep **out, const char *url, const struct ps_ep_opts *o,
		      struct ps_error *err);
/* Parses ssh://[user@]host[:port]/path. Returns 0 or PS_EINVAL. */
struct ps_ssh_url {
	char user[64];
	char host[256];
	int port;                      /* 0 = ssh's default */
	char path[4096];
};
int ps_ssh_url_parse(const char *url, struct ps_ssh_url *u, struct ps_error *err);

/* The settings merge rule, on two settings texts (repl_local.c); exported
 * for the unit tests. *out is the merged text (ps_buf), *changed 1 when it
 * differs from dst. */
int ps_settings_merge_text(const char *dst, size_t dlen, const char *src, size_t slen,
			   struct ps_buf *out, int *changed, char ***notes, size_t *nnotes,
			   struct ps_error *err);
#endif
