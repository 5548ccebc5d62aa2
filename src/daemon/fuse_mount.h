/*
 * fuse_mount.h - the FUSE front end of a ps_snapfs (projstore mount).
 *
 * Kept free of libfuse headers so that its callers compile without them;
 * only src/daemon/ is built with `pkg-config --cflags fuse3`.
 */
#ifndef PS_FUSE_MOUNT_H
#define PS_FUSE_MOUNT_H
#include "projstore.h"

struct ps_fuse_opts {
	const char *mountpoint;   /* an existing directory; absolute (the daemon changes to /) */
	const char *fsname;       /* shown in /proc/mounts, e.g. "projstore:PROJECT" */
	int allow_other;          /* let other users in (permissions are still checked) */
	int foreground;           /* 0: detach into the background once mounted */
	int threads;              /* most FUSE worker threads; 0 = 8 */
	int debug;                /* libfuse's request trace on stderr */
	int verbose;              /* log each EIO with its reason on stderr */
};
#define PS_FUSE_OPTS_INIT { NULL, NULL, 0, 0, 0, 0, 1 }

/* Mounts fs (opened, with no thread started: see ps_snapfs_open) at
 * o->mountpoint and serves it until it is unmounted (fusermount3 -u) or the
 * process gets SIGINT, SIGTERM or SIGHUP; then unmounts and returns PS_OK.
 * Fails without mounting with PS_ERROR and a message. fs stays the
 * caller's. */
int ps_fuse_serve(struct ps_snapfs *fs, const struct ps_fuse_opts *o, struct ps_error *err);
#endif
