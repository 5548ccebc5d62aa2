/*
 * snap_int.h - the snapshot layer's private interface: tree objects,
 * snapshot refs, project settings, the host-side file cache.
 */
#ifndef PS_SNAP_INT_H
#define PS_SNAP_INT_H
#include <sys/stat.h>
#include "../store/store_int.h"

/* ---- trees (snap_tree.c) ---- */

/* Deepest directory nesting saved, restored or walked; deeper trees are
 * refused (a crafted snapshot must not exhaust the stack). */
#define PS_MAX_DEPTH 4096

struct ps_extent {
	uint64_t off;         /* offset in the file */
	uint32_t len;         /* bytes of data (the chunk's raw length) */
	uint8_t id[32];       /* chunk object */
};

/* One directory entry. In a decoded tree the pointers point into the tree
 * object's buffer (valid while it lives); when building, they are owned by
 * whoever builds. */
struct ps_tentry {
	const uint8_t *name;
	size_t name_len;
	int type;                     /* enum ps_entry_type */
	uint32_t mode;                /* & 07777 */
	uint32_t uid, gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size;
	uint64_t link_group;
	uint64_t rdev;
	const uint8_t *xattrs;        /* encoded: uvar n, (uvar klen, k, uvar vlen, v)* */
	size_t xattrs_len;
	size_t nxattrs;
	const uint8_t *target;        /* symlink target / error message */
	size_t target_len;
	uint8_t subtree[32];          /* directories */
	struct ps_extent *extents;    /* regular files */
	size_t nextents;
};

struct ps_tree {
	uint8_t *buf;                 /* the object (owned) */
	size_t len;
	struct ps_tentry *ents;       /* owned array */
	size_t n;
	struct ps_extent *ext_pool;   /* owned; extents of all entries */
};

/* Serializes entries (which must be sorted by name, unique) into out. */
int ps_tree_encode(const struct ps_tentry *ents, size_t n, struct ps_buf *out);
/* Parses and validates a tree object; takes ownership of buf on success.
 * Returns PS_ECORRUPT for malformed data and PS_EHOSTILE for a name that
 * could escape a restore target ("", ".", "..", '/', NUL). */
int ps_tree_decode(uint8_t *buf, size_t len, struct ps_tree *out, struct ps_error *err);
void ps_tree_release(struct ps_tree *t);
/* Loads a tree object from the store and decodes it. */
int ps_tree_load(struct ps_store *s, const uint8_t id[32], struct ps_tree *out,
		 struct ps_error *err);
/* Binary search by name; returns index or -1. */
long ps_tree_find(const struct ps_tree *t, const char *name, size_t len);
int ps_name_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);
/* Iterates xattrs of an entry. Returns 1 while there are more. */
struct ps_xattr_it {
	struct ps_rd rd;
	size_t left;
};
void ps_xattr_it_init(struct ps_xattr_it *it, const struct ps_tentry *e);
int ps_xattr_next(struct ps_xattr_it *it, const char **k, size_t *kl, const uint8_t **v,
		  size_t *vl);

/* Walks the path ("a/b/c") from a root tree. On success *out holds the tree
 * of the containing directory and *idx the entry (or idx = -1 and out = the
 * root when path is empty). */
int ps_tree_lookup(struct ps_store *s, const uint8_t root[32], const char *path,
		   struct ps_tree *out, long *idx, struct ps_error *err);

/* ---- snapshot refs (snap_ref.c) ---- */
int ps_ref_encode(const struct ps_snapshot_info *si, struct ps_buf *out);
/* Parses one record from text; *used = bytes consumed. */
int ps_ref_decode(const char *text, size_t len, struct ps_snapshot_info *si, size_t *used,
		  struct ps_error *err);
/* Reads and verifies one ref file projects/<project>/snaps/<name>.snap. */
int ps_ref_read(struct ps_store *s, const char *project, const char *name,
		struct ps_snapshot_info *si, struct ps_error *err);
/* Publishes a new snapshot ref (and updates the list). */
int ps_ref_publish(struct ps_store *s, const struct ps_snapshot_info *si, struct ps_error *err);
/* ps_ref_publish of n snapshots (of different projects) as one group
 * (ps_be_write_atomic_many): rc[i] is each one's outcome; returns the first
 * failure. */
int ps_ref_publish_many(struct ps_store *s, size_t n, const struct ps_snapshot_info *const *si,
			int *rc, struct ps_error *err);
/* As ps_snapshot_list, but a damaged ref is reported through bad() and
 * skipped instead of failing the listing (check, and open's fallback). */
int ps_snapshot_list_ex(struct ps_store *s, const char *project, struct ps_snapshot_info **out,
			size_t *nout, ps_warn_fn bad, void *bad_ctx, struct ps_error *err);
/* Makes a new snapshot name for time t. */
void ps_snapshot_name(int64_t t, char *buf, size_t len);
int ps_snapshot_name_valid(const char *name);

/* ---- settings (snap_ref.c) ---- */
struct ps_settings {
	uint64_t quota;               /* 0 = none */
	char compression[32];         /* "" = store default */
	char **excludes;              /* owned */
	size_t nexcludes;
	struct ps_keep_policy keep;   /* retention: "keep-..." lines */
	char *extra;                  /* lines of unknown keys, written back as read */
};
int ps_settings_load(struct ps_store *s, const char *project, struct ps_settings *out,
		     struct ps_error *err);
int ps_settings_save(struct ps_store *s, const char *project, const struct ps_settings *st,
		     struct ps_error *err);
void ps_settings_release(struct ps_settings *st);

/* ---- the stat digest of a tree (snap_digest.c) ---- */
struct stat;
/* An accumulator: the sum of the entries' record hashes, modulo 2^256. */
struct ps_sdig {
	uint64_t sum[4];
	uint64_t entries, errors;
};
void ps_sdig_init(struct ps_sdig *d);
/* The hash of one entry's record: kind 'R' (the root, rel ""), 'N' (an entry),
 * or, with st NULL and err an errno, a failure: 'E' (stat), 'L' (listing or
 * opening a directory), 'D' (too deep). */
int ps_sdig_hash(char kind, const char *rel, const struct stat *st, int err, uint8_t h[32]);
void ps_sdig_addh(struct ps_sdig *d, const uint8_t h[32], int is_error);
int ps_sdig_add(struct ps_sdig *d, char kind, const char *rel, const struct stat *st, int err);
void ps_sdig_merge(struct ps_sdig *into, const struct ps_sdig *from);
int ps_sdig_final(const struct ps_sdig *d, struct ps_stat_digest *out);
/* 1 when the save leaves out the entry rel (named name) for these patterns. */
int ps_excluded(char *const *pats, size_t n, const char *rel, const char *name);

/* ---- retention (snap_prune.c) ---- */
/* Parses one settings/policy line; returns 1 if `key` is a keep-... key (an
 * invalid value leaves the rule unset), 0 otherwise. */
int ps_keep_policy_line(struct ps_keep_policy *p, const char *key, const char *val);
/* Appends the policy as "keep-..." lines. */
int ps_keep_policy_write(const struct ps_keep_policy *p, struct ps_buf *b);

/* ---- file cache (snap_fcache.c) ---- */
enum { PS_FC_FILE = 0, PS_FC_DIR = 1, PS_FC_OTHER = 2 };
struct ps_fcache_ent {
	char *path;                   /* relative path ("" = the root); path_len
	                                 bytes, not NUL-terminated in parsed
	                                 entries (they point into the file) */
	size_t path_len;
	uint8_t kind;                 /* PS_FC_* */
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
	struct ps_extent *extents;    /* files, owned */
	size_t nextents;
	uint8_t tree[32];             /* directories: the tree id saved */
	uint8_t *xattrs;              /* encoded as in trees (uv n, ...); NULL = none */
	size_t xattrs_len, nxattrs;
	uint8_t *target;              /* symlinks */
	size_t target_len;
};
struct ps_fcache;
/* Loads the cache of a project (empty if none or invalid). `params` digests
 * everything besides the entries that shapes a tree (uid/gid mapping,
 * excludes, filesystem crossing): directory entries of a cache written with
 * other params are not used.  `dir` is the project directory: each directory
 * a project is saved from or restored to has its own cache. */
int ps_fcache_open(struct ps_fcache **out, const char *cache_dir, const char *store_id,
		   const char *project, const char *dir, const uint8_t params[32]);
const struct ps_fcache_ent *ps_fcache_find(const struct ps_fcache *c, const char *path,
					   size_t len);
/* Whether the stat values of e and st agree (same inode, size, times). */
int ps_fcache_match(const struct ps_fcache_ent *e, const struct stat *st);
/* Adds an entry to the next generation (thread-safe; copies everything;
 * dev/ino/size/times come from st). */
int ps_fcache_add(struct ps_fcache *c, const struct ps_fcache_ent *e, const struct stat *st);
/* Writes the next generation atomically. */
int ps_fcache_commit(struct ps_fcache *c, struct ps_error *err);
void ps_fcache_free(struct ps_fcache *c);
/* Default cache directory: $PROJSTORE_CACHE_DIR, /var/cache/projstore for
 * root, $XDG_CACHE_HOME/projstore, or ~/.cache/projstore. */
void ps_fcache_default_dir(char *buf, size_t len);
/* Parses a cache file image into c (exposed for the fuzzer). */
int ps_fcache_parse(struct ps_fcache *c, const uint8_t *buf, size_t len);

/* ---- snapshot resolution helper ---- */
int ps_resolve_root(struct ps_store *s, const char *project, const char *spec,
		    struct ps_snapshot_info *si, struct ps_error *err);
#endif
