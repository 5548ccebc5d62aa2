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
	const char *compression; /* default compression: "zstd:3", "lz4", "none" */
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
void ps_store_free(struct ps_store *store);

/* Borrowed: the store's unique id (32 hex digits). */
const char *ps_store_id(const struct ps_store *store);

/* Returns 1 when `id` is a valid project id: [a-z0-9][a-z0-9._-]{0,63}. */
int ps_project_id_valid(const char *id);

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
};
#define PS_SAVE_OPTS_INIT { -1, -1, NULL, NULL, 0, 0.0, NULL, 0, NULL, NULL, NULL }

/* Snapshots `dir` as the newest version of `project`. On success (PS_OK)
 * `*out` describes the new snapshot; entries skipped because they could not be
 * read are counted in out->errors and reported through opts->warn. */
int ps_save(struct ps_store *store, const char *project, const char *dir,
	    const struct ps_save_opts *opts, struct ps_snapshot_info *out,
	    struct ps_error *err);

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
	ps_warn_fn problem;            /* one call per problem found */
	void *cb_ctx;
};
#define PS_CHECK_OPTS_INIT { 0, NULL, NULL, NULL, NULL }

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

#ifdef __cplusplus
}
#endif
#endif
