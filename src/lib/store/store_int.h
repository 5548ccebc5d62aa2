/*
 * store_int.h - the store's private interface, used by store/ files and by
 * the snapshot layer (snap/ files).
 *
 * Objects are immutable byte strings named by the SHA-256 of their content.
 * Types: chunks of file data and tree objects (one per directory).
 *
 * Write path: ps_store_put() deduplicates against the loaded index and
 * against objects written earlier in this session, compresses, and appends to
 * the open pack.  ps_store_flush() finishes the pack(s) and publishes one index
 * segment naming their objects.  Only after flush returns may anything refer
 * to the new objects from a durable place (a snapshot ref).
 *
 * Read path: ps_store_get() looks the id up, preads the record from its pack,
 * decompresses and verifies the SHA-256 before returning a byte.
 *
 * Thread safety: put/get may be called from many threads at once; the index
 * and pack writer are protected by store->lock.
 */
#ifndef PS_STORE_INT_H
#define PS_STORE_INT_H
#include <pthread.h>
#include "projstore.h"
#include "backend.h"
#include "../util/util.h"
#include "../compress/compress.h"
#include "../chunk/chunk.h"

#define PS_FORMAT_VERSION 1

enum ps_obj_type { PS_OBJ_CHUNK = 1, PS_OBJ_TREE = 2 };

/* Largest object accepted (a tree of a huge directory, or a chunk). */
#define PS_OBJ_MAX (64u * 1024 * 1024)

/* ---- pack format (see docs/FORMAT.md) ---- */
#define PS_PACK_MAGIC "PSPK"
#define PS_PACK_HDR_LEN 16
#define PS_PACK_REC_HDR_LEN 44      /* type u8, codec u8, 0 u16, raw u32, stored u32, id[32] */
#define PS_PACK_IDX_ENT_LEN 52      /* id[32], type, codec, 0 u16, raw u32, stored u32, off u64 */
#define PS_PACK_FOOTER_LEN 56       /* idx_off u64, count u32, version u32, sha[32], "PSPKEND\0" */
#define PS_PACK_END_MAGIC "PSPKEND"

/* ---- index entry in memory: 40 bytes ---- */
struct ps_idx_ent {
	uint8_t id[24];       /* first 24 bytes of the object id */
	uint32_t pack;        /* number in store->packs */
	uint32_t off;         /* offset of the record header in the pack */
	uint32_t len_type;    /* low 28 bits: stored length; high 4: type */
	uint32_t raw;         /* raw (uncompressed) length */
};
#define PS_IDX_LEN(e) ((e)->len_type & 0x0fffffffu)
#define PS_IDX_TYPE(e) ((e)->len_type >> 28)

struct ps_obj_info {
	int type;
	uint32_t raw_len;
	uint32_t stored_len;
	uint8_t pack_id[32];
	uint64_t offset;
};

struct ps_pack_writer;

struct ps_pack_cache_ent {
	uint32_t pack;
	struct ps_bfile *f;
	uint64_t last_use;
	int refs;             /* readers using f now: never closed while > 0 */
};

struct ps_store {
	struct ps_backend *be;
	char id[33];                  /* store id (hex) */
	char *location;
	struct ps_chunker chunker;
	struct ps_compression compression;   /* store default */
	uint64_t pack_target;         /* pack size to aim for */

	pthread_mutex_t lock;         /* protects everything below */
	/* loaded index: sorted by id */
	struct ps_idx_ent *idx;
	size_t idx_n;
	int idx_loaded;
	char **segments;              /* names of loaded segments */
	size_t nsegments;
	char **bad_segments;          /* segments skipped because damaged */
	size_t nbad_segments;
	/* pack table: index 'pack' -> 32-byte pack id */
	uint8_t (*packs)[32];
	size_t npacks, packs_cap;
	/* session writes */
	struct store_priv *priv;           /* pending objects, journal (store.c) */
	struct ps_pack_writer *writer;     /* open pack, or NULL */
	uint32_t *session_packs;           /* pack numbers finished this session */
	size_t nsession_packs, session_cap;
	uint64_t new_objects, new_raw, new_stored;
	/* open pack files for reading */
	struct ps_pack_cache_ent pcache[64];
	uint64_t pcache_tick;
	pthread_mutex_t pcache_lock;       /* protects pcache (separate: reads are slow) */
};

/* ---- objects ---- */

/* Loads the index if not yet loaded. */
int ps_store_load_index(struct ps_store *s, struct ps_error *err);
/* Returns 1 and fills info if the object exists (loaded index or pending).
 * This is the dedup view: objects in packs gc has condemned are left out
 * (store_gc.c), so a save never comes to depend on them. */
int ps_store_has(struct ps_store *s, const uint8_t id[32], struct ps_obj_info *info);
/* As ps_store_has, but finds objects in condemned packs too (the reader's
 * view: check, stats). */
int ps_store_locate(struct ps_store *s, const uint8_t id[32], struct ps_obj_info *info);
/* Stores data as an object of `type` with id (the caller computed it with
 * ps_sha256, or pass NULL to compute). *added = 1 if it was new. */
int ps_store_put(struct ps_store *s, int type, const void *data, size_t len,
		 const uint8_t *id, const struct ps_compression *comp, uint8_t out_id[32],
		 int *added, struct ps_error *err);
/* Reads and verifies an object. *out is malloc'd (caller frees). Returns
 * PS_ENOTFOUND, PS_ECORRUPT (with the message naming the object and pack). */
int ps_store_get(struct ps_store *s, const uint8_t id[32], int want_type, uint8_t **out,
		 size_t *len, struct ps_error *err);
/* Stores an object record as it is stored in a pack (44-byte header and the
 * stored, possibly compressed bytes), without recompressing: sync and repair
 * copy objects this way. The caller has verified the record (decoded it and
 * checked its SHA-256); only the header is checked here. Deduplicates like
 * ps_store_put unless `force` (repair: the indexed copy is damaged), which
 * writes a new copy even when the index names one. */
int ps_store_put_record(struct ps_store *s, const uint8_t *rec, size_t len, int force,
			int *added, struct ps_error *err);
/* Reads an object's record as stored (header + stored bytes) without
 * decompressing or verifying its content; *rec is malloc'd. */
int ps_store_get_record(struct ps_store *s, const uint8_t id[32], uint8_t **rec, size_t *len,
			struct ps_error *err);
/* Finishes the open pack and publishes an index segment for all packs of
 * the session. After it returns every object put so far is durable. */
int ps_store_flush(struct ps_store *s, struct ps_error *err);
/* Drops unflushed session state (after a failed save). */
void ps_store_abort(struct ps_store *s);

/* ---- packs (store_pack.c) ---- */
int ps_pack_writer_open(struct ps_store *s, struct ps_pack_writer **out, struct ps_error *err);
/* Appends one compressed record; returns its offset. */
int ps_pack_writer_add(struct ps_pack_writer *w, int type, int codec, const uint8_t id[32],
		       uint32_t raw_len, const void *stored, uint32_t stored_len,
		       uint64_t *offset, struct ps_error *err);
uint64_t ps_pack_writer_size(const struct ps_pack_writer *w);
/* n bytes at off of the pack being written (flushed to its file or not) */
int ps_pack_writer_read(struct ps_pack_writer *w, uint64_t off, void *buf, size_t n,
			struct ps_error *err);
/* Writes the trailer, fsyncs, publishes packs/XX/ID.pack; pack_id out. */
int ps_pack_writer_finish(struct ps_pack_writer *w, uint8_t pack_id[32], struct ps_error *err);
void ps_pack_writer_abort(struct ps_pack_writer *w);

struct ps_pack_entry {
	uint8_t id[32];
	uint8_t type, codec;
	uint32_t raw_len, stored_len;
	uint64_t offset;      /* of the record header */
};
/* Parses a pack's trailer from its last bytes. `tail` holds the file's last
 * tail_len bytes; file_size is the whole size. On success *ents (malloc'd)
 * lists the objects. Needs the footer and index: at most
 * PS_PACK_FOOTER_LEN + count * PS_PACK_IDX_ENT_LEN bytes. */
int ps_pack_parse_footer(const uint8_t *footer, uint64_t file_size, uint64_t *idx_off,
			 uint32_t *count, uint8_t sha[32], struct ps_error *err);
int ps_pack_parse_index(const uint8_t *buf, size_t len, uint32_t count, uint64_t idx_off,
			struct ps_pack_entry **ents, struct ps_error *err);
/* Reads a whole pack's trailer via the backend. */
int ps_pack_read_index(struct ps_store *s, const uint8_t pack_id[32], struct ps_pack_entry **ents,
		       uint32_t *count, uint64_t *size, struct ps_error *err);
/* Verifies a pack fully: checksum, every record decodes and hashes right.
 * Calls bad(ctx, entry, message) for every damaged object; returns PS_ECORRUPT
 * for damage to the pack as a whole (then entries is best effort). */
typedef void (*ps_pack_bad_fn)(void *ctx, const struct ps_pack_entry *e, const char *msg);
int ps_pack_verify(struct ps_store *s, const uint8_t pack_id[32], ps_pack_bad_fn bad, void *ctx,
		   uint64_t *nobjects, struct ps_error *err);
/* Decodes one record (header + stored bytes) and verifies the id. */
int ps_pack_decode_record(const uint8_t *rec, size_t len, const uint8_t *want_id, int *type,
			  uint8_t **out, size_t *out_len, struct ps_error *err);
void ps_pack_path(const uint8_t pack_id[32], char *buf, size_t len);

/* ---- index segments (store_index.c) ---- */
#define PS_IDX_MAGIC "PSIX"
#define PS_SEG_ENT_LEN 52   /* id[32], pack u32, off u32, stored u32, raw u32, type u8, 0[3] */
struct ps_seg_entry {
	uint8_t id[32];
	uint32_t pack;        /* index into the segment's pack table */
	uint32_t off;
	uint32_t stored_len;  /* record length incl. header */
	uint32_t raw_len;
	uint8_t type;
};
/* Serializes a segment: pack table + entries (sorted here). */
int ps_segment_encode(uint8_t (*packs)[32], size_t npacks, struct ps_seg_entry *ents,
		      size_t n, struct ps_buf *out);
/* Checks a whole segment (header, size, checksum, every entry, order)
 * without copying: *packs (32 bytes each) and *ents (PS_SEG_ENT_LEN each)
 * point into buf. */
int ps_segment_check(const uint8_t *buf, size_t len, const uint8_t **packs, size_t *npacks,
		     const uint8_t **ents, size_t *n, struct ps_error *err);
/* Parses a segment; *packs and *ents are malloc'd. */
int ps_segment_decode(const uint8_t *buf, size_t len, uint8_t (**packs)[32], size_t *npacks,
		      struct ps_seg_entry **ents, size_t *n, struct ps_error *err);
/* Writes a segment file for the given entries. */
int ps_segment_write(struct ps_store *s, uint8_t (*packs)[32], size_t npacks,
		     struct ps_seg_entry *ents, size_t n, char *name_out, struct ps_error *err);
/* Merges all segments into one when there are more than `max`. */
int ps_index_compact(struct ps_store *s, size_t max, struct ps_error *err);

/* Lists all pack ids in packs/. *ids malloc'd. */
int ps_store_list_packs(struct ps_store *s, uint8_t (**ids)[32], size_t *n, struct ps_error *err);

/* ---- locks (store_lock.c) ---- */
struct ps_lock;
/* Takes the lock `name` (a project id). Waits up to timeout seconds.
 * PS_ELOCKED with a message naming the holder. */
int ps_lock_acquire(struct ps_store *s, const char *name, double timeout, double ttl,
		    struct ps_lock **out, struct ps_error *err);
/* Extends the expiry (long saves call this). */
int ps_lock_refresh(struct ps_lock *l, struct ps_error *err);
void ps_lock_release(struct ps_lock *l);

/* Calls fn for every lock file in locks/: its name (without ".lock"), its
 * created time, and whether it is stale (its holder is gone). */
typedef int (*ps_lock_scan_fn)(void *ctx, const char *name, int64_t created, int stale);
int ps_lock_scan(struct ps_store *s, ps_lock_scan_fn fn, void *ctx, struct ps_error *err);
/* The store-wide lock of gc (and of index compaction, which gc's index
 * rewrite must not race with). Not a valid project id. */
#define PS_GC_LOCK ".gc"

/* ---- garbage collection (store_gc.c) ---- */
#define PS_GC_DIR "gc"
enum { PS_CONDEMN_DELETE = 1, PS_CONDEMN_REPACK = 2, PS_CONDEMN_UNINDEXED = 3 };
struct ps_condemned {
	char name[64];                /* file name in gc/ */
	int64_t time_ns;              /* the condemnation time */
	uint8_t (*packs)[32];
	uint8_t *reasons;             /* PS_CONDEMN_* per pack */
	size_t npacks;
	int damaged;                  /* unreadable: never acted upon */
};
const char *ps_condemn_reason_name(int reason);
/* Reads every gc/condemned-* list, oldest first. */
int ps_condemned_load(struct ps_store *s, struct ps_condemned **out, size_t *n,
		      struct ps_error *err);
void ps_condemned_free(struct ps_condemned *v, size_t n);
/* Publishes gc/condemned-<time_ns> atomically. */
int ps_condemned_publish(struct ps_store *s, int64_t time_ns, uint8_t (*packs)[32],
			 const uint8_t *reasons, size_t n, char *name_out, size_t name_len,
			 struct ps_error *err);
int ps_condemned_remove(struct ps_store *s, const char *name, struct ps_error *err);
/* 1 if pack number `pack` was named by a condemned list when the index was
 * loaded. */
int ps_store_pack_condemned(struct ps_store *s, uint32_t pack);
/* on = 0: never reload index segments behind the caller's back (gc walks the
 * index by position). */
void ps_store_set_refresh(struct ps_store *s, int on);
/* Deletes a condemned pack unless the file there now is a newer, identical
 * pack (then *kept = 1); *freed += bytes removed. */
int ps_pack_retire(struct ps_store *s, const uint8_t pack_id[32], int64_t condemned_ns,
		   uint64_t *freed, int *kept, struct ps_error *err);
/* Finishes retirements a killed gc left half done. */
int ps_pack_retire_recover(struct ps_store *s, struct ps_error *err);

/* ---- leftovers ---- */
/* Removes temp files of dead processes in `dir`; counts what it removed. */
int ps_store_clean_tmp(struct ps_store *s, const char *dir, uint64_t *removed,
		       struct ps_error *err);
#endif
