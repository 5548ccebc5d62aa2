/*
 * backend.h - the one interface through which every operation on store
 * files goes.  Paths are relative to the store root and use '/'.
 *
 * Publishing protocol (crash safety): a new file is created under a
 * temporary name (create_excl), written, fsynced, then rename()d to its
 * final name, and the directory holding it is fsynced.  Readers only ever
 * open final names, so they see a file whole or not at all.
 *
 * The local-directory backend is in backend_local.c, the GlusterFS one
 * (libgfapi, no mount) in backend_gluster.c; backend_open.c picks one by the
 * location's scheme.  A backend must not require mmap (libgfapi has none):
 * files are read with pread.  Every backend may be used from many threads at
 * once (one ps_bfile by one thread at a time, except pread).
 */
#ifndef PS_BACKEND_H
#define PS_BACKEND_H
#include <stddef.h>
#include <stdint.h>
#include "projstore.h"

struct ps_backend;
struct ps_bfile;

struct ps_bstat {
	uint64_t size;
	int64_t mtime_ns;
	int is_dir;
};

/* Called for each name in a directory (not "." or ".."). Return non-zero
 * to stop the listing (that value is returned by list). */
typedef int (*ps_list_fn)(void *ctx, const char *name);

struct ps_backend_ops {
	const char *name;
	int (*open_read)(struct ps_backend *be, const char *path, struct ps_bfile **out,
			 struct ps_error *err);
	/* Creates a new file, failing with PS_EEXISTS if it exists. */
	int (*create_excl)(struct ps_backend *be, const char *path, struct ps_bfile **out,
			   struct ps_error *err);
	/* Reads up to n bytes at off; *got < n only at end of file. */
	int (*pread)(struct ps_bfile *f, void *buf, size_t n, uint64_t off, size_t *got,
		     struct ps_error *err);
	int (*write)(struct ps_bfile *f, const void *buf, size_t n, struct ps_error *err);
	int (*fsync)(struct ps_bfile *f, struct ps_error *err);
	int (*fstat)(struct ps_bfile *f, struct ps_bstat *st, struct ps_error *err);
	void (*close)(struct ps_bfile *f);
	int (*stat)(struct ps_backend *be, const char *path, struct ps_bstat *st,
		    struct ps_error *err);
	/* Atomically replaces `to` with `from`, then fsyncs to's directory. */
	int (*rename)(struct ps_backend *be, const char *from, const char *to,
		      struct ps_error *err);
	/* Creates hard link `to` for `from`; PS_EEXISTS if `to` exists. */
	int (*link)(struct ps_backend *be, const char *from, const char *to,
		    struct ps_error *err);
	int (*unlink)(struct ps_backend *be, const char *path, struct ps_error *err);
	/* Creates a directory; an existing one is not an error. */
	int (*mkdir)(struct ps_backend *be, const char *path, struct ps_error *err);
	int (*rmdir)(struct ps_backend *be, const char *path, struct ps_error *err);
	int (*fsync_dir)(struct ps_backend *be, const char *path, struct ps_error *err);
	/* PS_ENOTFOUND if the directory does not exist. */
	int (*list)(struct ps_backend *be, const char *dir, ps_list_fn fn, void *ctx,
		    struct ps_error *err);
	void (*free)(struct ps_backend *be);
	/* Optional (NULL: ps_be_rename_nosync and ps_be_link_nosync use rename
	 * and link): as rename and link, without the directory fsync. Only for
	 * files whose loss in a crash costs nothing but time (caches, locks). */
	int (*rename_nosync)(struct ps_backend *be, const char *from, const char *to,
			     struct ps_error *err);
	int (*link_nosync)(struct ps_backend *be, const char *from, const char *to,
			   struct ps_error *err);
	/* Optional: starts writing back what was written to f, without waiting
	 * (advice before a group of fsyncs, so that their data goes to the disk
	 * together and one journal commit covers them). */
	void (*writeback)(struct ps_bfile *f);
};

struct ps_backend {
	const struct ps_backend_ops *ops;
	char *location;     /* as given by the user, for messages */
};

/* ---- opening a store location (backend_open.c) ----
 *
 * A location is a directory path, or a URL "scheme://...". The scheme picks
 * the backend; a string without "://" is always a path. */

/* Creates the store directory itself when it is missing (its parent must
 * exist); for `projstore init`. */
#define PS_BACKEND_CREATE 1u

/* Opens the backend for `location`: the caller owns *out and releases it
 * with (*out)->ops->free(). Errors name the location. */
int ps_backend_open(struct ps_backend **out, const char *location, unsigned flags,
		    struct ps_error *err);
/* 1 if location is a URL ("scheme://..."), 0 if it is a path. */
int ps_location_is_url(const char *location);

/* Opens the local-directory backend rooted at `path` (must exist). */
int ps_backend_local_open(struct ps_backend **out, const char *path, struct ps_error *err);

/* ---- GlusterFS through libgfapi (backend_gluster.c) ----
 *
 *   gluster://SERVER[,SERVER...][:PORT]/VOLUME[/PATH]
 *
 * SERVER is a host name, an IPv4 address or a bracketed IPv6 address, each
 * optionally with its own ":PORT"; a port written after the last server is
 * also the port of the servers before it that name none (default 24007).
 * The first server is asked for the volume's layout, the others are backup
 * volfile servers. PATH is the store directory inside the volume (default:
 * the volume's root). */
#define PS_GLUSTER_PORT 24007
#define PS_GLUSTER_MAX_SERVERS 16
#define PS_GLUSTER_HOST_MAX 255      /* bytes of a host name, with its NUL */
#define PS_GLUSTER_VOLUME_MAX 128    /* bytes of a volume name, with its NUL */
#define PS_GLUSTER_PATH_MAX 4096     /* bytes of PATH, with its NUL */

struct ps_gluster_url {
	size_t nservers;
	struct {
		char host[PS_GLUSTER_HOST_MAX];  /* without brackets */
		int port;
	} servers[PS_GLUSTER_MAX_SERVERS];
	char volume[PS_GLUSTER_VOLUME_MAX];
	char path[PS_GLUSTER_PATH_MAX];      /* "/" or "/a/b": absolute, no trailing '/' */
};

/* Parses and validates a gluster:// URL into *out (no network access).
 * PS_EINVAL with a message naming the fault for anything else. */
int ps_gluster_url_parse(const char *url, struct ps_gluster_url *out, struct ps_error *err);
/* Opens the backend for a gluster:// URL: connects (or shares this
 * process's connection to the volume) and checks the store directory. */
int ps_backend_gluster_open(struct ps_backend **out, const char *url, unsigned flags,
			    struct ps_error *err);

/* Convenience wrappers used by the rest of the store. */
int ps_be_read_all(struct ps_backend *be, const char *path, size_t max, void **out,
		   size_t *len, struct ps_error *err);
/* Writes data to tmp path, fsyncs, renames to `path`. */
int ps_be_write_atomic(struct ps_backend *be, const char *path, const void *data,
		       size_t len, struct ps_error *err);
/* ps_be_write_atomic of n files as one group: every file is written under
 * its temp name first, then all are fsynced, renamed into place, and each
 * distinct directory fsynced once. Each file still becomes visible only
 * after its bytes are durable; the group lets the file system commit them
 * together (on ext4 and XFS the first fsync's journal commit carries the
 * others, which then cost next to nothing). rc[i] is file i's outcome;
 * returns the first failure (err: its message), PS_OK when all went. A
 * file that failed before its rename is not there (its temp name is
 * removed); one whose directory could not be fsynced is there, but may not
 * survive a crash, and is reported failed. */
int ps_be_write_atomic_many(struct ps_backend *be, size_t n, const char *const *paths,
			    const void *const *data, const size_t *lens, int *rc,
			    struct ps_error *err);
/* rename / link without the directory fsync where the backend can (above). */
int ps_be_rename_nosync(struct ps_backend *be, const char *from, const char *to,
			struct ps_error *err);
int ps_be_link_nosync(struct ps_backend *be, const char *from, const char *to,
		      struct ps_error *err);
/* As ps_be_write_atomic but nothing is fsynced: the file appears whole or
 * not at all to readers, but a crash may lose it or leave an older version
 * or (on some filesystems) an empty or partial file under the final name.
 * Only for caches whose readers check what they read (checksums) and can
 * rebuild them. */
int ps_be_write_atomic_nosync(struct ps_backend *be, const char *path, const void *data,
			      size_t len, struct ps_error *err);
/* Writes a temp name unique to this process: "<dir>/.tmp-<host>-<pid>-<rnd>". */
void ps_be_tmp_name(const char *dir, char *buf, size_t len);
#endif
