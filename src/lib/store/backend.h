/*
 * backend.h - the one interface through which every operation on store
 * files goes.  Paths are relative to the store root and use '/'.
 *
 * Publishing protocol (crash safety): a new file is created under a
 * temporary name (create_excl), written, fsynced, then rename()d to its
 * final name, and the directory holding it is fsynced.  Readers only ever
 * open final names, so they see a file whole or not at all.
 *
 * The local-directory backend is in backend_local.c.  A backend must not
 * require mmap (libgfapi has none): files are read with pread.
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
};

struct ps_backend {
	const struct ps_backend_ops *ops;
	char *location;     /* as given by the user, for messages */
};

/* Opens the local-directory backend rooted at `path` (must exist). */
int ps_backend_local_open(struct ps_backend **out, const char *path, struct ps_error *err);

/* Convenience wrappers used by the rest of the store. */
int ps_be_read_all(struct ps_backend *be, const char *path, size_t max, void **out,
		   size_t *len, struct ps_error *err);
/* Writes data to tmp path, fsyncs, renames to `path`. */
int ps_be_write_atomic(struct ps_backend *be, const char *path, const void *data,
		       size_t len, struct ps_error *err);
/* Writes a temp name unique to this process: "<dir>/.tmp-<host>-<pid>-<rnd>". */
void ps_be_tmp_name(const char *dir, char *buf, size_t len);
#endif
