/*
 * projstore.h - the public API of libprojstore.
 *
 * projstore keeps versioned, compressed and deduplicated copies of project
 * directories ("projects") in a content-addressed store.  This header is the
 * only interface the command line tool and the daemons use; everything under
 * src/lib is private to the library.
 *
 * Conventions (see docs/ARCHITECTURE.md):
 *   - Functions return 0 on success or a negative PS_E* code; the message is
 *     written into the caller's struct ps_error (which may be NULL).
 *   - Results passed back through `**out` belong to the caller and are freed
 *     with the matching _free() function.  _free(NULL) is always safe.
 *   - Option structs are public and have an _INIT initializer.
 */
#ifndef PROJSTORE_H
#define PROJSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PS_VERSION "0.1.0"

/* ------------------------------------------------------------------ errors */

enum ps_errcode {
	PS_OK = 0,
	PS_ERROR = -1,      /* anything not listed below; see the message */
	PS_ENOTFOUND = -2,  /* project, snapshot, path or object does not exist */
	PS_EEXISTS = -3,    /* target already exists */
	PS_ECORRUPT = -4,   /* stored data failed a checksum or does not parse */
	PS_ELOCKED = -5,    /* another process holds the project's lock */
	PS_EQUOTA = -6,     /* reserved: quota is reported, never enforced by failing */
	PS_EINVAL = -7,     /* invalid argument (bad project id, bad name, ...) */
	PS_EHOSTILE = -8,   /* a stored name or path that could escape a target */
};

struct ps_error {
	int code;           /* one of enum ps_errcode */
	int sys_errno;      /* errno of the failing system call, or 0 */
	char msg[1024];     /* lower-case message naming its subject */
};

/* Clears an error object. */
void ps_error_clear(struct ps_error *err);

/* ------------------------------------------------------------------ store */

struct ps_store;

struct ps_init_opts {
	const char *compression; /* default compression: "zstd:1" (the default), "lz4", "none" */
	uint32_t chunk_min;      /* content-defined chunking limits; 0 = default */
	uint32_t chunk_avg;
	uint32_t chunk_max;
};
#define PS_INIT_OPTS_INIT { NULL, 0, 0, 0 }

/* Creates a new, empty store at `location` (a directory path). */
int ps_store_init(const char *location, const struct ps_init_opts *opts,
		  struct ps_error *err);

/* Opens an existing store. The result belongs to the caller. */
int ps_store_open(struct ps_store **out, const char *location,
		  struct ps_error *err);
/* Brings a handle's loaded index up to date (loads it if it was not): gc's
 * condemned lists are read again, then the index segments published since
 * are loaded; if a loaded segment is gone (gc rewrote it without packs it
 * removes, or the index was compacted), the whole index is loaded again.
 * Objects this handle wrote and indexed move from its pending table to the
 * loaded index. No other thread may use the handle meanwhile. ps_save calls
 * it after taking the project's lock, so one handle may serve many saves and
 * gc's protocol holds for each (docs/FORMAT.md); a long-lived process calls
 * it before reusing a handle for anything else (restore, browse). */
int ps_store_refresh(struct ps_store *store, struct ps_error *err);
void ps_store_free(struct ps_store *store);

/* Borrowed: the store's unique id (32 hex digits). */
const char *ps_store_id(const struct ps_store *store);

/* Returns 1 when `id` is a valid project id: [a-z0-9][a-z0-9._-]{0,63}.
 * Inline: the launcher (src/launcher) checks ids without the library. */
static inline int ps_project_id_valid(const char *id)
{
	size_t n;
	if (!id || !((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= '0' && id[0] <= '9')))
		return 0;
	for (n = 1; id[n]; n++) {
		char c = id[n];
		if (n >= 64)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

/* Lists all project ids that have at least one snapshot or settings. The
 * array and strings belong to the caller: free with ps_strv_free(). */
int ps_project_list(struct ps_store *store, char ***out, size_t *n,
		    struct ps_error *err);
void ps_strv_free(char **v, size_t n);

/* -------------------------------------------------------------- snapshots */

#define PS_SNAPNAME_MAX 64

struct ps_snapshot_info {
	char project[72];
	char name[PS_SNAPNAME_MAX];   /* 2026-11-25T09:45:12.123456Z-1a2b3c4d */
	int64_t time_ns;              /* UTC time of the save, ns since epoch */
	uint8_t root[32];             /* id of the root tree object */
	char parent[PS_SNAPNAME_MAX]; /* previous snapshot or "" */
	char origin[128];             /* host name that made it */
	uint64_t files;               /* regular files */
	uint64_t dirs;                /* directories, the root included */
	uint64_t others;              /* symlinks, fifos, devices */
	uint64_t logical_bytes;       /* sum of file data bytes (holes excluded) */
	uint64_t apparent_bytes;      /* sum of file sizes (holes included) */
	uint64_t new_objects;         /* objects this save added to the store */
	uint64_t new_raw_bytes;       /* their size before compression */
	uint64_t new_bytes;           /* their size as stored */
	uint64_t errors;              /* entries skipped because unreadable */
	uint64_t quota_bytes;         /* quota at save time, 0 = none */
	int over_quota;               /* logical_bytes > quota_bytes */
	int64_t duration_ms;          /* how long the save took */
	uint32_t root_mode;           /* the saved directory's own metadata */
	uint32_t root_uid, root_gid;
	int64_t root_mtime_sec;
	uint32_t root_mtime_nsec;
	int unchanged;                /* save with skip_unchanged: nothing differed from
					 the newest snapshot, which this describes; no
					 snapshot was published */
};

/* Lists the snapshots of a project, oldest first. Costs one directory read
 * and one file read, not one open per snapshot. Caller frees *out with free().
 * A project without snapshots gives n = 0 and PS_OK. */
int ps_snapshot_list(struct ps_store *store, const char *project,
		     struct ps_snapshot_info **out, size_t *n,
		     struct ps_error *err);

/* Resolves "latest", a full name or a unique prefix of one. */
int ps_snapshot_resolve(struct ps_store *store, const char *project,
			const char *spec, struct ps_snapshot_info *out,
			struct ps_error *err);

/* ------------------------------------------------------------------- save */

/* Progress report, called from the thread doing the work at most a few times
 * a second. `phase` is a short word ("scan", "save", "restore", "check"). */
typedef void (*ps_progress_fn)(void *ctx, const char *phase, uint64_t files_done,
			       uint64_t files_total, uint64_t bytes_done,
			       uint64_t bytes_total);

/* Called once for every entry that was skipped or could not be processed. */
typedef void (*ps_warn_fn)(void *ctx, const char *path, const char *message);

struct ps_save_opts {
	long uid;                  /* >= 0: store every owner as this uid */
	long gid;                  /* >= 0: store every group as this gid */
	const char *compression;   /* NULL = project setting, else store default */
	const char *const *excludes; /* glob patterns, NULL-terminated or NULL */
	int cross_filesystems;     /* descend into other mounted filesystems */
	double lock_timeout;       /* seconds to wait for the project lock */
	const char *cache_dir;     /* file cache directory; NULL = default */
	int threads;               /* worker threads; 0 = number of cores */
	ps_progress_fn progress;
	ps_warn_fn warn;
	void *cb_ctx;
	int skip_unchanged;        /* publish nothing when the tree and the root's own
				      metadata equal the newest snapshot's */
	struct ps_save_batch *batch; /* NULL, or group commit: see ps_save_batch_new */
	struct ps_stat_digest *stat_digest; /* NULL, or filled with the digest of what
				      the save's walk saw (ps_stat_digest) */
};
#define PS_SAVE_OPTS_INIT { -1, -1, NULL, NULL, 0, 0.0, NULL, 0, NULL, NULL, NULL, 0, NULL, NULL }

/* The stat digest of a tree: every entry a save takes (the excludes left
 * out, on the root's file system unless cross_filesystems), each as its
 * relative path, type and mode, owner, link count, size, inode, device, mtime
 * and ctime, summed independently of the order (docs/FORMAT.md, "Stat
 * digest"). Equal digests mean a save would see the same metadata (content
 * changes move mtime or ctime); it is for deciding whether to read a tree
 * again, not a checksum of its content. */
struct ps_stat_digest {
	uint8_t digest[32];
	uint64_t entries;
	uint64_t errors;           /* entries that could not be stat'ed or listed */
};
/* Walks `dir` (one thread, stat only) as ps_save(store, project, dir, opts)
 * would, with the project's stored excludes and opts->excludes, and gives its
 * stat digest: the digest a save of the unchanged tree reports in
 * opts->stat_digest. */
int ps_stat_digest(struct ps_store *store, const char *project, const char *dir,
		   const struct ps_save_opts *opts, struct ps_stat_digest *out,
		   struct ps_error *err);

/* Snapshots `dir` as the newest version of `project`. On success (PS_OK)
 * `*out` describes the new snapshot; entries skipped because they could not be
 * read are counted in out->errors and reported through opts->warn. With
 * opts->skip_unchanged, a tree equal to the newest snapshot's publishes
 * nothing: *out then describes that snapshot with out->unchanged = 1 (errors,
 * quota and duration are this save's; new_* are 0). */
int ps_save(struct ps_store *store, const char *project, const char *dir,
	    const struct ps_save_opts *opts, struct ps_snapshot_info *out,
	    struct ps_error *err);

/* Group commit of several saves made one after the other through one store
 * handle (projstore migrate: many small projects). A save given opts->batch
 * does all its work but makes nothing durable or visible: it keeps its
 * project lock and adds itself to the batch, and *out describes the snapshot
 * the commit will publish (or, with skip_unchanged, the newest one, with
 * out->unchanged = 1). ps_save_batch_commit then finishes the open pack and
 * publishes one index segment for every object of the batch (one set of
 * fsyncs instead of one per save), then each save's ref in order, then
 * releases the locks. The publication order of a save (packs, segment, ref)
 * is kept, so a crash leaves each snapshot of the batch complete or absent.
 * Until its commit a save of a batch is not a snapshot. */
struct ps_save_batch;
int ps_save_batch_new(struct ps_save_batch **out, struct ps_error *err);
/* Saves in the batch not yet committed. */
size_t ps_save_batch_count(const struct ps_save_batch *b);
/* Commits the batch (the saves added since the last commit, in order):
 * results[i] gets PS_OK or the error code of the i-th (the caller sizes it
 * with ps_save_batch_count), err the first error. Returns PS_OK when every
 * save was published. The batch is empty afterwards, whatever happened.
 * After a failed commit the handle should be freed (its writes were
 * dropped). */
int ps_save_batch_commit(struct ps_store *store, struct ps_save_batch *b, int *results,
			 struct ps_error *err);
/* Frees the batch; saves still in it are dropped (nothing published, locks
 * released). */
void ps_save_batch_free(struct ps_store *store, struct ps_save_batch *b);

/* ---------------------------------------------------------------- restore */

struct ps_restore_opts {
	long uid;                 /* >= 0: every owner becomes this uid */
	long gid;
	const char *const *paths; /* NULL-terminated subset, or NULL = all */
	const char *cache_dir;    /* file cache to fill; NULL = default */
	int no_cache;             /* do not fill the file cache */
	int threads;              /* 0 = number of cores */
	ps_progress_fn progress;
	ps_warn_fn warn;
	void *cb_ctx;
};
#define PS_RESTORE_OPTS_INIT { -1, -1, NULL, NULL, 0, 0, NULL, NULL, NULL }

/* Restores a snapshot into `target`. Without paths, `target` must not exist
 * (the tree is written beside it and renamed into place when complete) or be
 * an empty directory. With paths, `target` may exist: the named entries are
 * written to temporary names and renamed over what is there. */
int ps_restore(struct ps_store *store, const char *project, const char *snapshot,
	       const char *target, const struct ps_restore_opts *opts,
	       struct ps_error *err);

/* --------------------------------------------------------------- browsing */

enum ps_entry_type {
	PS_T_REG = 1, PS_T_DIR = 2, PS_T_SYMLINK = 3, PS_T_FIFO = 4,
	PS_T_CHR = 5, PS_T_BLK = 6, PS_T_SOCK = 7, PS_T_ERROR = 15,
};

struct ps_entry {
	const char *name;       /* bytes, no '/' or NUL */
	size_t name_len;
	int type;               /* enum ps_entry_type */
	uint32_t mode;          /* permission bits incl. setuid/setgid/sticky */
	uint32_t uid, gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size;          /* file size, symlink target length */
	uint64_t link_group;    /* != 0: hardlinked with entries of equal group */
	uint64_t rdev;
	const char *target;     /* symlink target (not NUL-terminated) */
	size_t target_len;
	const char *error;      /* PS_T_ERROR: why the entry was skipped */
	size_t error_len;
	size_t nxattrs;
};

typedef int (*ps_entry_fn)(void *ctx, const struct ps_entry *e);

/* Calls fn for every entry of directory `path` ("" or "/" = root). */
int ps_ls(struct ps_store *store, const char *project, const char *snapshot,
	  const char *path, ps_entry_fn fn, void *ctx, struct ps_error *err);

/* Writes the content of regular file `path` to file descriptor `fd`. */
int ps_cat(struct ps_store *store, const char *project, const char *snapshot,
	   const char *path, int fd, struct ps_error *err);

enum ps_diff_kind { PS_DIFF_ADDED = 'A', PS_DIFF_REMOVED = 'D', PS_DIFF_MODIFIED = 'M' };
typedef int (*ps_diff_fn)(void *ctx, int kind, const char *path, int type);

/* Reports paths added, removed or modified from snapshot a to snapshot b.
 * Unchanged subtrees (same tree id) are skipped without being read. */
int ps_diff(struct ps_store *store, const char *project, const char *a,
	    const char *b, ps_diff_fn fn, void *ctx, struct ps_error *err);

/* ------------------------------------------------------- stats and quota */

struct ps_stats {
	uint64_t snapshots;
	uint64_t files;
	uint64_t logical_bytes;    /* latest snapshot(s): file data bytes */
	uint64_t unique_raw_bytes; /* distinct chunks they reference, uncompressed */
	uint64_t unique_stored_bytes; /* the same, as stored */
	uint64_t chunks;           /* distinct chunks of the latest snapshot(s) */
	uint64_t stored_bytes;     /* all objects any snapshot references, as stored */
	uint64_t pack_bytes;       /* store-wide only: size of all pack files */
	uint64_t projects;         /* store-wide only */
	double compressratio;      /* unique_raw_bytes / unique_stored_bytes */
	double dedupratio;         /* logical_bytes / unique_raw_bytes */
	uint64_t quota_bytes;      /* project only; 0 = none */
	int over_quota;
};

/* project == NULL: store-wide. */
int ps_stats(struct ps_store *store, const char *project, struct ps_stats *out,
	     struct ps_error *err);

/* quota 0 = none. */
int ps_quota_get(struct ps_store *store, const char *project, uint64_t *quota,
		 struct ps_error *err);
int ps_quota_set(struct ps_store *store, const char *project, uint64_t quota,
		 struct ps_error *err);

/* Stored exclude patterns of a project (used by every save). The array and
 * strings from _get belong to the caller (ps_strv_free). */
int ps_excludes_get(struct ps_store *store, const char *project, char ***out, size_t *n,
		    struct ps_error *err);
int ps_excludes_set(struct ps_store *store, const char *project, const char *const *patterns,
		    size_t n, struct ps_error *err);

/* ------------------------------------------------------------------ check */

struct ps_check_opts {
	int read_data;                 /* read and verify every object */
	const char *const *projects;   /* NULL-terminated, or NULL = all */
	ps_progress_fn progress;
	ps_warn_fn problem;            /* one call per problem found: where is a
	                                  path in the store or in a snapshot, or
	                                  "object <hex id>" for a damaged object */
	void *cb_ctx;
	/* NULL, or called with the 32-byte id of every object found damaged or
	 * missing (possibly more than once): what repair needs to fetch */
	void (*damaged)(void *ctx, const uint8_t id[32]);
};
#define PS_CHECK_OPTS_INIT { 0, NULL, NULL, NULL, NULL, NULL }

struct ps_check_result {
	uint64_t packs, objects, snapshots, trees;
	uint64_t problems;             /* number of problems reported */
	uint64_t damaged_objects;
	uint64_t damaged_files;        /* distinct (snapshot, path) affected */
	uint64_t damaged_snapshots;
	uint64_t leftovers;            /* unindexed packs / temp files found */
};

/* Returns PS_OK with result->problems == 0 when the store is clean, PS_OK with
 * problems > 0 when damage was found (each reported through opts->problem),
 * or an error when the check itself could not run. */
int ps_check(struct ps_store *store, const struct ps_check_opts *opts,
	     struct ps_check_result *result, struct ps_error *err);

/* ------------------------------------------------------------------ misc */

/* Parses "4G", "512M", "1.5T", "100" (binary units). Returns 0 or -1. */
int ps_parse_size(const char *s, uint64_t *out);
/* Writes "1.5 GiB". */
void ps_format_size(uint64_t n, char *buf, size_t len);
/* Writes "4 minutes ago" for a time in ns since the epoch. */
void ps_format_age(int64_t time_ns, int64_t now_ns, char *buf, size_t len);
/* Writes an RFC 3339 UTC time with nanoseconds. */
void ps_format_time_ns(int64_t sec, uint32_t nsec, char *buf, size_t len);
/* Hex of a 32-byte id; buf must hold 65 bytes. */
void ps_id_hex(const uint8_t id[32], char *buf);
/* Tunes malloc for a process that is a burst of large, short-lived buffers
 * in a few threads (sync, serve-stdio, migrate): one arena, nothing handed
 * back to the kernel until exit, and the heap's first `huge` bytes grown at
 * once and marked for transparent huge pages (MADV_HUGEPAGE: the kernel's
 * "madvise" mode), so that they fault in 2 MiB at a time instead of 4 KiB.
 * Only the address range is taken; memory is used as it is touched. Call
 * before any thread starts. No-op outside glibc. */
void ps_mem_burst(size_t huge);

/* ------------------------------------------- lazy browsing (snapshot fs) */

/*
 * A read-only view of all snapshots of one project as a file system, for
 * `projstore mount` (src/daemon/fuse_mount.c) and other lazy browsers.
 *
 * Inodes: the top directory is PS_SNAPFS_ROOT; in it, one directory per
 * snapshot (named by the snapshot name) and the symlink "latest" pointing to
 * the newest one. Every other inode number is derived from the path (and the
 * hardlink group: entries of one snapshot with equal link_group share an
 * inode), so it is the same after a forget or a remount. lookup() and
 * readdir(plus) take a reference on the inode returned; forget() drops them.
 * Only inodes with references are remembered.
 *
 * Nothing is read until asked: a tree object is loaded when its directory is
 * looked up or listed, a chunk when a read needs it. Decoded trees and
 * decompressed chunks are kept in bounded LRU caches. Snapshots are re-listed
 * at most every refresh_ms when the top directory is looked up or read.
 * All functions are thread-safe.
 */
struct ps_snapfs;
struct ps_snapfs_file;

struct ps_snapfs_opts {
	size_t tree_cache_bytes;  /* decoded trees kept; 0 = 64 MiB */
	size_t chunk_cache_bytes; /* decompressed chunks kept; 0 = 64 MiB */
	long uid;                 /* >= 0: everything appears owned by this uid */
	long gid;                 /* >= 0: ... and this gid */
	int refresh_ms;           /* re-list snapshots at most this often; 0 = 1000 */
	int readahead_chunks;     /* chunks fetched ahead of sequential reads; 0 = 8, < 0 none */
	int prefetch_threads;     /* background fetchers; 0 = 2 */
};
#define PS_SNAPFS_OPTS_INIT { 0, 0, -1, -1, 0, 0, 0 }

#define PS_SNAPFS_ROOT 1      /* inode of the top directory */

struct ps_snapfs_attr {
	uint64_t ino;
	int type;                 /* enum ps_entry_type (PS_T_ERROR: reads fail) */
	uint32_t mode;            /* permission bits incl. setuid/setgid/sticky */
	uint32_t uid, gid;
	uint32_t nlink;           /* directories: 2 + subdirectories */
	uint64_t size;
	uint64_t blocks;          /* 512-byte units of data, holes excluded */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t rdev;
	int immutable;            /* 1: inside a snapshot, never changes; 0: the top
				   * directory and "latest", which change with saves */
};

struct ps_snapfs_stats {
	uint64_t tree_hits, tree_misses, tree_bytes;
	uint64_t chunk_hits, chunk_misses, chunk_bytes;
	uint64_t prefetched;      /* chunks fetched ahead of a read */
	uint64_t inodes;          /* inodes with references */
};

/* Opens the view of `project` in the store at `location` (made absolute, so
 * the caller may change directory afterwards). Fails with PS_ENOTFOUND when
 * the project has no snapshot. Starts no thread until the first read. */
int ps_snapfs_open(struct ps_snapfs **out, const char *location, const char *project,
		   const struct ps_snapfs_opts *opts, struct ps_error *err);
/* Closes every cache and thread. No other call may be running. */
void ps_snapfs_free(struct ps_snapfs *fs);

/* Re-lists the snapshots now and returns them, oldest first (free()). */
int ps_snapfs_snapshots(struct ps_snapfs *fs, struct ps_snapshot_info **out, size_t *n,
			struct ps_error *err);

/* Child `name` of directory `parent`: PS_ENOTFOUND if there is none. On
 * success the inode has one more reference. */
int ps_snapfs_lookup(struct ps_snapfs *fs, uint64_t parent, const char *name,
		     struct ps_snapfs_attr *out, struct ps_error *err);
/* Drops n references taken by lookup or readdir(plus). */
void ps_snapfs_forget(struct ps_snapfs *fs, uint64_t ino, uint64_t n);
int ps_snapfs_getattr(struct ps_snapfs *fs, uint64_t ino, struct ps_snapfs_attr *out,
		      struct ps_error *err);

/* Called for each entry from position `off` on (0 = the first; `next` is the
 * position after this entry). Returns 0 to go on, non-zero to stop (the
 * entry was not taken). With plus, attributes are complete (a directory's
 * tree is loaded to count its subdirectories) and every entry taken gets one
 * reference, as from lookup; without, only ino and type are set. */
typedef int (*ps_snapfs_dir_fn)(void *ctx, const char *name, size_t name_len,
				const struct ps_snapfs_attr *attr, uint64_t next);
int ps_snapfs_readdir(struct ps_snapfs *fs, uint64_t ino, uint64_t off, int plus,
		      ps_snapfs_dir_fn fn, void *ctx, struct ps_error *err);

/* Copies up to size bytes of a symlink's target; *len = its full length. */
int ps_snapfs_readlink(struct ps_snapfs *fs, uint64_t ino, char *buf, size_t size, size_t *len,
		       struct ps_error *err);
/* Extended attributes. listxattr writes "name\0name\0..."; both set *len to
 * the full length and copy only when it fits in size (size 0: just measure).
 * getxattr of a missing name is PS_ENOTFOUND. */
int ps_snapfs_listxattr(struct ps_snapfs *fs, uint64_t ino, char *buf, size_t size, size_t *len,
			struct ps_error *err);
int ps_snapfs_getxattr(struct ps_snapfs *fs, uint64_t ino, const char *name, void *buf,
		       size_t size, size_t *len, struct ps_error *err);

/* Opens a regular file for reading. An entry that could not be read when it
 * was saved (PS_T_ERROR) fails with PS_ECORRUPT. */
int ps_snapfs_file_open(struct ps_snapfs *fs, uint64_t ino, struct ps_snapfs_file **out,
			struct ps_error *err);
/* Reads up to len bytes at off (*got < len only at the end of the file).
 * Holes read as zeros. Data that fails verification: PS_ECORRUPT. Sequential
 * reads start background fetches of the chunks that follow. */
int ps_snapfs_file_read(struct ps_snapfs_file *f, void *buf, size_t len, uint64_t off,
			size_t *got, struct ps_error *err);
/* SEEK_DATA (hole = 0) or SEEK_HOLE (hole = 1) from off: PS_ENOTFOUND when
 * there is no data at or after off (ENXIO). */
int ps_snapfs_file_seek(struct ps_snapfs_file *f, uint64_t off, int hole, uint64_t *out,
			struct ps_error *err);
void ps_snapfs_file_close(struct ps_snapfs_file *f);

void ps_snapfs_stats(struct ps_snapfs *fs, struct ps_snapfs_stats *out);

/* ---------------------------------------------------- retention and gc */

/*
 * Retention (prune) works like restic's forget policy: every rule keeps some
 * snapshots, a snapshot is kept when any rule keeps it (the union), and the
 * newest snapshot of a project is always kept. Bucket rules (15min, hourly,
 * daily, weekly, monthly) keep the newest snapshot of each of the N newest
 * buckets that hold a snapshot; buckets are UTC (weeks are ISO weeks, Monday
 * to Sunday). docs/CLI.md states the rules exactly.
 *
 * Removing snapshots frees nothing by itself: gc does, in two phases (docs/
 * FORMAT.md, "Garbage collection"), safely while saves run.
 */

/* Counts: 0 = the rule is not used, -1 = unlimited. */
struct ps_keep_policy {
	long last;          /* the N newest snapshots */
	long min15;         /* newest of each of the N newest quarter hours */
	long hourly, daily, weekly, monthly;
	char within[32];    /* "" or a duration such as "2d", "1y6m", "36h": every
			     * snapshot at most that much older than the newest */
};
#define PS_KEEP_POLICY_INIT { 0, 0, 0, 0, 0, 0, "" }

/* 1 when the policy has no rule. */
int ps_keep_policy_empty(const struct ps_keep_policy *p);
/* Computes t minus a duration ("1y2m3w4d5h6min7s": y years, m months,
 * w weeks, d days, h hours, min minutes, s seconds; calendar arithmetic in
 * UTC). Returns 0, or -1 for an invalid duration. */
int ps_duration_before(const char *duration, int64_t t_ns, int64_t *out);

/* Why a snapshot is kept (bits); 0 = it goes. */
enum ps_keep_reason {
	PS_KEEP_NEWEST = 1, PS_KEEP_LAST = 2, PS_KEEP_WITHIN = 4, PS_KEEP_15MIN = 8,
	PS_KEEP_HOURLY = 16, PS_KEEP_DAILY = 32, PS_KEEP_WEEKLY = 64, PS_KEEP_MONTHLY = 128,
};
/* Applies a policy to snapshots sorted oldest first (as ps_snapshot_list
 * gives them): reasons[i] for v[i]. Touches no store. */
int ps_keep_apply(const struct ps_snapshot_info *v, size_t n, const struct ps_keep_policy *p,
		  unsigned *reasons, struct ps_error *err);
/* Writes "daily, weekly" for a reasons value. */
void ps_keep_reasons_format(unsigned reasons, char *buf, size_t len);

/* Stored policies: project NULL is the store default (file `policy`), used
 * by projects that have none. An empty policy clears. */
int ps_policy_get(struct ps_store *store, const char *project, struct ps_keep_policy *out,
		  struct ps_error *err);
int ps_policy_set(struct ps_store *store, const char *project, const struct ps_keep_policy *p,
		  struct ps_error *err);

struct ps_prune_opts {
	const struct ps_keep_policy *policy; /* NULL or empty: the stored policy */
	int dry_run;                         /* decide and report, remove nothing */
	double lock_timeout;                 /* seconds to wait for the project lock */
};
#define PS_PRUNE_OPTS_INIT { NULL, 0, 60.0 }

struct ps_prune_item {
	struct ps_snapshot_info info;
	unsigned reasons;                    /* enum ps_keep_reason bits; 0 = removed */
};

/* Removes the snapshot refs of `project` that the policy does not keep, under
 * the project lock. *items (caller frees) lists every snapshot, oldest first;
 * *used is the policy applied. PS_EINVAL when there is no rule (none given,
 * none stored for the project, no store default). */
int ps_prune(struct ps_store *store, const char *project, const struct ps_prune_opts *opts,
	     struct ps_prune_item **items, size_t *n, struct ps_keep_policy *used,
	     struct ps_error *err);

/* Removes every snapshot of `project` (and with purge its settings), under
 * the project lock. The data is freed by the next gc. PS_ENOTFOUND when the
 * project does not exist. */
int ps_project_delete(struct ps_store *store, const char *project, int purge,
		      double lock_timeout, size_t *removed, struct ps_error *err);

struct ps_gc_opts {
	int dry_run;              /* report what would be condemned; change nothing */
	double max_repack_ratio;  /* repack a pack whose reachable fraction (bytes) is
				   * below this; 0 = never repack; default 0.5 */
	double grace;             /* seconds between condemning and deleting (900) */
	ps_progress_fn progress;
	ps_warn_fn note;          /* one line per step worth telling (path = "gc") */
	void *cb_ctx;
};
#define PS_GC_OPTS_INIT { 0, 0.5, 900.0, NULL, NULL, NULL }

struct ps_gc_result {
	uint64_t projects, snapshots;
	uint64_t packs, objects;             /* indexed packs and objects at the start */
	uint64_t live_objects;               /* reachable from some snapshot */
	uint64_t stored_bytes, live_bytes;   /* record bytes in packs; reachable part */
	uint64_t condemned_packs;            /* condemned by this run (would be: dry run) */
	uint64_t condemned_bytes;            /* their unreachable bytes (or size when unindexed) */
	uint64_t deleted_packs, repacked_packs, kept_packs;
	uint64_t copied_objects, copied_bytes;
	uint64_t freed_bytes;                /* pack bytes deleted */
	uint64_t written_bytes;              /* new pack bytes */
	uint64_t pending_lists;              /* condemned lists left for a later run */
};

/* Garbage collection: condemns what no snapshot reaches, waits for the grace
 * period and for saves that started before, then deletes and repacks. Takes
 * the store-wide gc lock (PS_ELOCKED when another gc runs). */
int ps_gc(struct ps_store *store, const struct ps_gc_opts *opts, struct ps_gc_result *result,
	  struct ps_error *err);

#ifdef __cplusplus
}
#endif
#endif
