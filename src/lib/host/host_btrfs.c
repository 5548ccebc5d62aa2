/*
 * host_btrfs.c - a project's working copy as a btrfs subvolume under a
 * quota-group limit.
 *
 * Subvolumes are made and deleted with libbtrfsutil.  It has no calls for
 * quota groups, so the limit is set with the BTRFS_IOC_QGROUP_LIMIT ioctl on
 * the subvolume itself (qgroup id 0 = the subvolume's own 0/ID group) and the
 * usage is read from the quota tree with BTRFS_IOC_TREE_SEARCH (the
 * QGROUP_INFO and QGROUP_LIMIT items of 0/ID).  Limits are on referenced
 * bytes: what the project's files occupy, shared extents counted in full.
 * Quotas must be enabled on the file system by the operator
 * (`btrfs quota enable ROOT`); without them the subvolume still works, and
 * the limit calls answer PS_ENOTFOUND saying so.
 *
 * The kernel accounts qgroups at transaction commits: usage read right after
 * a write may lag by a commit interval (30 s by default); limits are enforced
 * at write time from reservations, so EDQUOT comes at the write.
 */
#define _GNU_SOURCE
#include "host_int.h"

#include <btrfsutil.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <unistd.h>

int ps_btrfs_is_btrfs(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == (unsigned long)BTRFS_SUPER_MAGIC;
}

int ps_btrfs_is_subvolume(const char *path)
{
	return btrfs_util_is_subvolume(path) == BTRFS_UTIL_OK;
}

static int util_err(struct ps_error *err, enum btrfs_util_error e, const char *what,
		    const char *path)
{
	int saved = errno;
	int rc = ps_err(err, PS_ERROR, "cannot %s '%s': %s%s%s", what, path, btrfs_util_strerror(e),
			saved ? ": " : "", saved ? strerror(saved) : "");
	if (err)
		err->sys_errno = saved;
	return rc;
}

int ps_btrfs_subvol_create(const char *path, struct ps_error *err)
{
	errno = 0;
	enum btrfs_util_error e = btrfs_util_create_subvolume(path, 0, NULL, NULL);
	if (e != BTRFS_UTIL_OK)
		return util_err(err, e, "create subvolume", path);
	return PS_OK;
}

int ps_btrfs_subvol_delete(const char *path, struct ps_error *err)
{
	uint64_t id = 0;
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", path);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = 0;
	errno = 0;
	btrfs_util_subvolume_id(path, &id);
	enum btrfs_util_error e =
		btrfs_util_delete_subvolume(path, BTRFS_UTIL_DELETE_SUBVOLUME_RECURSIVE);
	if (e != BTRFS_UTIL_OK)
		return util_err(err, e, "delete subvolume", path);
	/* drop its quota group too; the kernel refuses while the subvolume is
	 * still being cleaned, and newer kernels drop it themselves: best effort */
	if (id) {
		int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			struct btrfs_ioctl_qgroup_create_args a;
			memset(&a, 0, sizeof(a));
			a.create = 0;
			a.qgroupid = id;
			(void)ioctl(fd, BTRFS_IOC_QGROUP_CREATE, &a);
			close(fd);
		}
	}
	return PS_OK;
}

int ps_btrfs_qgroup_limit(const char *path, uint64_t bytes, struct ps_error *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ps_err_sys(err, "cannot open '%s'", path);
	struct btrfs_ioctl_qgroup_limit_args a;
	memset(&a, 0, sizeof(a));
	a.qgroupid = 0; /* the subvolume fd is on */
	a.lim.flags = BTRFS_QGROUP_LIMIT_MAX_RFER;
	a.lim.max_rfer = bytes ? bytes : (uint64_t)-1; /* -1 clears the limit */
	int rc = PS_OK;
	if (ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, &a) != 0) {
		if (errno == ENOTCONN)
			rc = ps_err(err, PS_ENOTFOUND,
				    "btrfs quotas are not enabled on the file system of '%s' "
				    "(btrfs quota enable)",
				    path);
		else
			rc = ps_err_sys(err, "cannot set the quota-group limit of '%s'", path);
	}
	close(fd);
	return rc;
}

int ps_btrfs_qgroup_usage(const char *path, uint64_t *referenced, uint64_t *limit,
			  struct ps_error *err)
{
	uint64_t id = 0;
	errno = 0;
	enum btrfs_util_error e = btrfs_util_subvolume_id(path, &id);
	if (e != BTRFS_UTIL_OK)
		return util_err(err, e, "find the subvolume of", path);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ps_err_sys(err, "cannot open '%s'", path);
	struct btrfs_ioctl_search_args sa;
	memset(&sa, 0, sizeof(sa));
	sa.key.tree_id = BTRFS_QUOTA_TREE_OBJECTID;
	sa.key.min_objectid = 0;
	sa.key.max_objectid = 0;
	sa.key.min_type = BTRFS_QGROUP_INFO_KEY;
	sa.key.max_type = BTRFS_QGROUP_LIMIT_KEY;
	sa.key.min_offset = id; /* qgroup 0/id */
	sa.key.max_offset = id;
	sa.key.max_transid = (uint64_t)-1;
	sa.key.nr_items = 16;
	int rc = PS_OK, found = 0;
	*referenced = 0;
	*limit = 0;
	if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &sa) != 0) {
		rc = errno == ENOENT ? ps_err(err, PS_ENOTFOUND,
					      "btrfs quotas are not enabled on the file system of '%s'",
					      path)
				     : ps_err_sys(err, "cannot read the quota groups of '%s'", path);
		close(fd);
		return rc;
	}
	close(fd);
	size_t off = 0;
	for (uint32_t i = 0; i < sa.key.nr_items; i++) {
		struct btrfs_ioctl_search_header sh;
		if (off + sizeof(sh) > sizeof(sa.buf))
			break;
		memcpy(&sh, sa.buf + off, sizeof(sh));
		off += sizeof(sh);
		if (off + sh.len > sizeof(sa.buf))
			break;
		if (sh.offset == id && sh.type == BTRFS_QGROUP_INFO_KEY &&
		    sh.len >= sizeof(struct btrfs_qgroup_info_item)) {
			struct btrfs_qgroup_info_item it;
			memcpy(&it, sa.buf + off, sizeof(it));
			*referenced = le64toh(it.rfer);
			found = 1;
		} else if (sh.offset == id && sh.type == BTRFS_QGROUP_LIMIT_KEY &&
			   sh.len >= sizeof(struct btrfs_qgroup_limit_item)) {
			struct btrfs_qgroup_limit_item it;
			memcpy(&it, sa.buf + off, sizeof(it));
			if (le64toh(it.flags) & BTRFS_QGROUP_LIMIT_MAX_RFER)
				*limit = le64toh(it.max_rfer);
		}
		off += sh.len;
	}
	if (!found)
		return ps_err(err, PS_ENOTFOUND, "no quota group for '%s' (quotas not enabled?)", path);
	return rc;
}
