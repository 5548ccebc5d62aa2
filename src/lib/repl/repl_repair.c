/*
 * repl_repair.c - `check --repair-from OTHER`: replaces the objects check
 * found damaged or missing with verified copies from another store.
 *
 *   1. every damaged id is asked of OTHER (any endpoint: a directory,
 *      gluster://, ssh://); a copy is kept only if it decompresses and hashes
 *      to its id (and a tree decodes); it is written to a new pack as stored
 *      (ps_store_put_record with force: the index still names the damaged
 *      copy), so this store holds a good copy;
 *   2. every pack that holds a damaged copy (or that check found damaged or
 *      missing as a whole) is looked at record by record through the index:
 *      the good records are copied to the new pack too, so that the pack can
 *      go.  A pack with a damaged record that got no good copy stays as it
 *      is (its damage is still reported by check);
 *   3. flush: the new packs and one index segment naming them are durable;
 *   4. under gc's store-wide lock (index segments are rewritten only by gc,
 *      index compaction and this), every segment that names a pack to go is
 *      replaced by one without it (the replacement is published before the
 *      old segment is removed, as gc does), then the pack is removed
 *      (ps_pack_retire: renamed aside, then unlinked).
 *
 * Killed at any point, nothing is lost: before step 3 the new pack is a
 * leftover the next writer indexes; after it every object has a good copy
 * and the damaged pack is merely still there; a pack renamed aside is
 * settled by the next gc.  Readers that loaded the index before step 4 find
 * the pack gone, reload the segments and find the copies (store.c).
 */
#define _GNU_SOURCE
#include "repl_int.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define GC_LOCK_TTL 600.0

struct rp_ctx {
	struct ps_store *s;
	const struct ps_repair_opts *o;
	struct ps_repair_result *r;
	const uint8_t (*ids)[32];
	size_t base;                  /* index of the first id of the batch being fetched */
	uint8_t (*kids)[32];          /* children of the trees fetched in this batch */
	size_t nkids, kidcap;
	struct ps_idset good;         /* ids a verified copy was written for */
	struct ps_idset prefixes;     /* 24-byte prefixes (zero padded) of the ids asked
				         for; flag 2: a good copy was stored */
	struct ps_error *err;
	int rc;
};

static void note(struct rp_ctx *c, const char *fmt, ...) PS_ATTR_PRINTF(2, 3);
static void note(struct rp_ctx *c, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	{
		char **v = ps_realloc(c->r->notes, (c->r->nnotes + 1) * sizeof(char *));
		if (v) {
			c->r->notes = v;
			if ((v[c->r->nnotes] = ps_strdup(line)))
				c->r->nnotes++;
		}
	}
	if (c->o->log)
		c->o->log(c->o->cb_ctx, 0, line);
}

static int kid(struct rp_ctx *c, const uint8_t id[32])
{
	if (c->nkids == c->kidcap) {
		size_t cap = c->kidcap ? c->kidcap * 2 : 256;
		void *v = ps_realloc(c->kids, cap * 32);
		if (!v)
			return -1;
		c->kids = v;
		c->kidcap = cap;
	}
	memcpy(c->kids[c->nkids++], id, 32);
	return 0;
}

/* A tree fetched from the other store: its children may be as lost as it
 * was (check could not see below a tree it could not read). */
static int collect_kids(struct rp_ctx *c, const struct ps_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct ps_tentry *e = &t->ents[i];
		if (e->type == PS_T_DIR && kid(c, e->subtree))
			return -1;
		if (e->type == PS_T_REG)
			for (size_t k = 0; k < e->nextents; k++)
				if (kid(c, e->extents[k].id))
					return -1;
	}
	return 0;
}

static int fetched(void *vctx, size_t i, int status, const uint8_t *rec, size_t len, const char *why)
{
	struct rp_ctx *c = vctx;
	struct ps_repair_item *it;
	char msg[1200];
	i += c->base;
	it = &c->r->items[i];
	if (status == PS_OBJ_OK) {
		uint8_t *obj = NULL;
		size_t olen = 0;
		int type = 0, added = 0, rc;
		struct ps_error e;
		ps_error_clear(&e);
		rc = ps_pack_decode_record(rec, len, c->ids[i], &type, &obj, &olen, &e);
		if (!rc && type == PS_OBJ_TREE) {
			struct ps_tree t;
			rc = ps_tree_decode(obj, olen, &t, &e);
			if (!rc) {
				obj = NULL;
				if (collect_kids(c, &t))
					rc = ps_err(&e, PS_ERROR, "out of memory");
				ps_tree_release(&t);
			}
		}
		ps_free(obj);
		if (rc == PS_ERROR) {
			*c->err = e;
			return c->rc = rc;
		}
		if (rc) {
			snprintf(msg, sizeof(msg), "the other store's copy is damaged too: %s", e.msg);
		} else {
			rc = ps_store_put_record(c->s, rec, len, 1, &added, c->err);
			if (rc)
				return c->rc = rc;
			if (ps_idset_add(&c->good, c->ids[i]) < 0)
				return c->rc = ps_err(c->err, PS_ERROR, "out of memory");
			it->repaired = 1;
			c->r->repaired++;
			it->message = ps_strdup("a verified copy from the other store was stored");
			return 0;
		}
	} else {
		snprintf(msg, sizeof(msg), "%s: %s",
			 status == PS_OBJ_MISSING ? "the other store does not have it"
						  : "the other store's copy is damaged too",
			 why ? why : "");
	}
	it->message = ps_strdup(msg);
	c->r->unrepaired++;
	return 0;
}

/* Reads the record at (pack, off, len) and checks it against the index's id
 * prefix. Returns 1 when good (*rec malloc'd), 0 when damaged or missing. */
static int read_record(struct ps_store *s, uint32_t pack, const struct ps_idx_ent *e, uint8_t **rec)
{
	char path[PATH_MAX];
	struct ps_bfile *f = NULL;
	uint8_t *buf, *obj = NULL;
	size_t got = 0, olen;
	uint32_t len = PS_IDX_LEN(e);
	int type, ok = 0;
	*rec = NULL;
	ps_pack_path(s->packs[pack], path, sizeof(path));
	if (s->be->ops->open_read(s->be, path, &f, NULL))
		return 0;
	buf = ps_malloc(len ? len : 1);
	if (buf && s->be->ops->pread(f, buf, len, e->off, &got, NULL) == PS_OK && got == len &&
	    len >= PS_PACK_REC_HDR_LEN && !memcmp(buf + 12, e->id, 24) &&
	    ps_pack_decode_record(buf, len, buf + 12, &type, &obj, &olen, NULL) == PS_OK &&
	    (uint32_t)type == PS_IDX_TYPE(e))
		ok = 1;
	ps_free(obj);
	s->be->ops->close(f);
	if (ok)
		*rec = buf;
	else
		ps_free(buf);
	return ok;
}

/* Copies the good records of pack number p and tells whether every damaged
 * one has a good copy now (then the pack can go). */
static int salvage_pack(struct rp_ctx *c, uint32_t p, int *can_go)
{
	struct ps_store *s = c->s;
	size_t bad = 0, copied = 0, lost = 0, dropped = 0;
	char hex[65];
	*can_go = 1;
	for (size_t i = 0; i < s->idx_n; i++) {
		const struct ps_idx_ent *e = &s->idx[i];
		uint8_t *rec = NULL;
		if (e->pack != p)
			continue;
		if (read_record(s, p, e, &rec)) {
			int added = 0;
			int rc = ps_store_put_record(s, rec, PS_IDX_LEN(e), 1, &added, c->err);
			ps_free(rec);
			if (rc)
				return rc;
			copied++;
			continue;
		}
		bad++;
		/* a damaged record: is there a verified copy of that id now? One
		 * check did not name is used by no snapshot it walked: garbage */
		{
			uint8_t key[32], *f;
			int have, named;
			memcpy(key, e->id, 24);
			memset(key + 24, 0, 8);
			f = ps_idset_get(&c->prefixes, key);
			named = f != NULL;
			have = f && (*f & 2);
			if (!named) {
				dropped++;
			} else if (!have) {
				lost++;
				*can_go = 0;
			}
		}
	}
	ps_hex_encode(s->packs[p], 32, hex);
	if (*can_go)
		note(c, "pack %s: %zu good records copied, %zu damaged ones replaced, %zu damaged ones no "
		     "snapshot uses dropped: it can go", hex, copied, bad - dropped, dropped);
	else
		note(c, "pack %s stays: %zu of its damaged records have no good copy", hex, lost);
	return PS_OK;
}

static int pack_cmp(const void *a, const void *b) { return memcmp(a, b, 32); }

struct seg_names {
	char **v;
	size_t n, cap;
};

static int collect_seg(void *ctx, const char *name)
{
	struct seg_names *l = ctx;
	size_t len = strlen(name);
	if (len != 68 || strcmp(name + 64, ".idx"))
		return 0;
	return ps_strv_push(&l->v, &l->n, &l->cap, name);
}

/* Rewrites every segment naming a pack of `gone` (sorted) without it. */
static int drop_from_segments(struct rp_ctx *c, uint8_t (*gone)[32], size_t ngone)
{
	struct ps_store *s = c->s;
	struct seg_names l = { 0 };
	int rc = s->be->ops->list(s->be, "index", collect_seg, &l, c->err);
	if (rc)
		goto done;
	for (size_t i = 0; i < l.n && !rc; i++) {
		char path[PATH_MAX];
		void *buf = NULL;
		size_t len = 0, np = 0, n = 0, kp = 0, kn = 0;
		uint8_t (*packs)[32] = NULL, (*keep)[32] = NULL;
		uint32_t *map = NULL;
		struct ps_seg_entry *ents = NULL;
		int touched = 0;
		snprintf(path, sizeof(path), "index/%s", l.v[i]);
		if (ps_be_read_all(s->be, path, (size_t)1 << 34, &buf, &len, NULL) ||
		    ps_segment_decode(buf, len, &packs, &np, &ents, &n, NULL)) {
			ps_free(buf);
			continue;   /* gone meanwhile, or damaged: check reports it */
		}
		ps_free(buf);
		keep = ps_malloc(32 * (np + 1));
		map = ps_malloc(sizeof(*map) * (np + 1));
		if (!keep || !map) {
			rc = ps_err(c->err, PS_ERROR, "out of memory");
		} else {
			for (size_t k = 0; k < np; k++) {
				if (ps_bsearch(packs[k], gone, ngone, 32, pack_cmp)) {
					map[k] = UINT32_MAX;
					touched = 1;
				} else {
					memcpy(keep[kp], packs[k], 32);
					map[k] = (uint32_t)kp++;
				}
			}
			for (size_t k = 0; k < n; k++)
				if (ents[k].pack < np && map[ents[k].pack] != UINT32_MAX) {
					ents[kn] = ents[k];
					ents[kn++].pack = map[ents[k].pack];
				}
		}
		if (!rc && touched) {
			char name[72];
			/* the replacement first, then the old one goes */
			if (kn)
				rc = ps_segment_write(s, keep, kp, ents, kn, name, c->err);
			if (!rc && (!kn || strcmp(name, l.v[i])))
				rc = s->be->ops->unlink(s->be, path, c->err);
			if (rc == PS_ENOTFOUND) {
				ps_error_clear(c->err);
				rc = PS_OK;
			}
		}
		ps_free(packs);
		ps_free(ents);
		ps_free(keep);
		ps_free(map);
	}
	if (!rc)
		rc = s->be->ops->fsync_dir(s->be, "index", c->err);
done:
	ps_strv_free(l.v, l.n);
	return rc;
}

void ps_repair_result_free(struct ps_repair_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nitems; i++)
		ps_free(r->items[i].message);
	ps_free(r->items);
	ps_strv_free(r->notes, r->nnotes);
	ps_free(r);
}

int ps_repair(struct ps_store *s, const char *other, const uint8_t (*ids_in)[32], size_t nids_in,
	      const uint8_t (*bad_packs)[32], size_t nbad_packs, const struct ps_repair_opts *opts,
	      struct ps_repair_result **out, struct ps_error *err)
{
	struct ps_repair_opts defo = PS_REPAIR_OPTS_INIT;
	struct rp_ctx c;
	struct ps_ep *ep = NULL;
	struct ps_ep_opts eo;
	struct ps_idset seen = { 0 }, dpacks = { 0 };
	uint8_t (*ids)[32] = NULL, (*gone)[32] = NULL;
	size_t nids = 0, ngone = 0, idcap = 0;
	struct ps_lock *gc_lock = NULL;
	int rc;

	if (!opts)
		opts = &defo;
	*out = NULL;
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.o = opts;
	c.err = err;
	c.r = ps_calloc(1, sizeof(*c.r));
	idcap = nids_in + 16;
	ids = ps_malloc(32 * (idcap + 1));
	if (!c.r || !ids) {
		ps_free(c.r);
		ps_free(ids);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	/* each id once */
	for (size_t i = 0; i < nids_in; i++) {
		int a = ps_idset_add(&seen, ids_in[i]);
		if (a < 0) {
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto done;
		}
		if (a)
			memcpy(ids[nids++], ids_in[i], 32);
	}
	c.ids = (const uint8_t (*)[32])ids;
	c.r->items = ps_calloc(idcap + 1, sizeof(*c.r->items));
	if (!c.r->items) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	c.r->nitems = nids;
	for (size_t i = 0; i < nids; i++)
		ps_hex_encode(ids[i], 32, c.r->items[i].object);
	rc = ps_store_load_index(s, err);
	if (rc)
		goto done;
	if (!nids && !nbad_packs)
		goto done;
	memset(&eo, 0, sizeof(eo));
	eo.io_timeout = opts->io_timeout;
	eo.ssh_command = opts->ssh_command;
	eo.remote_bin = opts->remote_bin;
	eo.log = opts->log;
	eo.cb_ctx = opts->cb_ctx;
	if (nids) {
		rc = ps_ep_open(&ep, other, &eo, err);
		if (rc) {
			ps_err_prefix(err, "cannot repair from '%s'", other);
			goto done;
		}
		if (!strcmp(ep->store_id, ps_store_id(s))) {
			rc = ps_err(err, PS_EINVAL, "'%s' is this store: repair needs another copy", other);
			goto done;
		}
		/* 1. verified copies from the other store, and of whatever below a
		 * fetched tree is not good here either */
		for (size_t start = 0; start < nids;) {
			size_t end = nids;
			c.base = start;
			c.nkids = 0;
			rc = ep->ops->get(ep, (const uint8_t (*)[32])(ids + start), end - start, fetched, &c, err);
			if (c.rc)
				rc = c.rc;
			if (rc)
				goto done;
			for (size_t k = 0; k < c.nkids; k++) {
				uint8_t *obj = NULL;
				size_t olen;
				struct ps_error e2;
				int a = ps_idset_add(&seen, c.kids[k]);
				if (a < 0) {
					rc = ps_err(err, PS_ERROR, "out of memory");
					goto done;
				}
				if (!a)
					continue;
				/* a good copy here? (every copy is tried) */
				if (ps_store_get(s, c.kids[k], 0, &obj, &olen, &e2) == PS_OK) {
					ps_free(obj);
					continue;
				}
				if (nids == idcap) {
					size_t cap = idcap * 2;
					void *v1 = ps_realloc(ids, 32 * (cap + 1));
					void *v2;
					if (v1)
						ids = v1;
					v2 = v1 ? ps_realloc(c.r->items, (cap + 1) * sizeof(*c.r->items)) : NULL;
					if (!v1 || !v2) {
						rc = ps_err(err, PS_ERROR, "out of memory");
						goto done;
					}
					c.r->items = v2;
					idcap = cap;
					c.ids = (const uint8_t (*)[32])ids;
				}
				memcpy(ids[nids], c.kids[k], 32);
				memset(&c.r->items[nids], 0, sizeof(c.r->items[nids]));
				ps_hex_encode(ids[nids], 32, c.r->items[nids].object);
				nids++;
				c.r->nitems = nids;
			}
			start = end;
		}
	}
	for (size_t i = 0; i < nids; i++) {
		uint8_t key[32];
		memcpy(key, ids[i], 24);
		memset(key + 24, 0, 8);
		if (ps_idset_add(&c.prefixes, key) < 0) {
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto done;
		}
		if (c.r->items[i].repaired)
			*ps_idset_get(&c.prefixes, key) |= 2;
	}
	/* 2. the packs holding damaged copies, and those found damaged whole */
	for (size_t i = 0; i < nbad_packs; i++)
		if (ps_idset_add(&dpacks, bad_packs[i]) < 0) {
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto done;
		}
	for (size_t i = 0; i < s->idx_n; i++) {
		const struct ps_idx_ent *e = &s->idx[i];
		uint8_t *rec = NULL;
		uint8_t key[32];
		memcpy(key, e->id, 24);
		memset(key + 24, 0, 8);
		if (!ps_idset_get(&c.prefixes, key) || ps_idset_get(&dpacks, s->packs[e->pack]))
			continue;
		if (read_record(s, e->pack, e, &rec)) {
			ps_free(rec);
			continue;
		}
		if (ps_idset_add(&dpacks, s->packs[e->pack]) < 0) {
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto done;
		}
	}
	gone = ps_malloc(32 * (dpacks.n + 1));
	if (!gone) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (uint32_t p = 0; p < s->npacks; p++) {
		int can_go = 0, dup = 0;
		if (!ps_idset_get(&dpacks, s->packs[p]))
			continue;
		for (size_t k = 0; k < ngone && !dup; k++)
			dup = !memcmp(gone[k], s->packs[p], 32);
		if (dup)
			continue;   /* named by two segments: one pack */
		rc = salvage_pack(&c, p, &can_go);
		if (rc)
			goto done;
		if (can_go)
			memcpy(gone[ngone++], s->packs[p], 32);
		else
			c.r->packs_kept++;
	}
	/* 3. the copies are durable and indexed */
	rc = ps_store_flush(s, err);
	if (rc || !ngone)
		goto done;
	/* a new pack may equal a damaged one as it was (the same records in the
	 * same order): then it replaced it under its name and that pack is whole
	 * again, and stays */
	for (size_t i = 0; i < ngone;) {
		struct ps_error e2;
		uint64_t n = 0;
		if (ps_pack_verify(s, gone[i], NULL, NULL, &n, &e2) == PS_OK) {
			char hex[65];
			ps_hex_encode(gone[i], 32, hex);
			note(&c, "pack %s is whole again (rewritten with the same content)", hex);
			memmove(gone[i], gone[i + 1], 32 * (ngone - i - 1));
			ngone--;
			continue;
		}
		i++;
	}
	if (!ngone)
		goto done;
	/* 4. the damaged packs go */
	rc = ps_lock_acquire(s, PS_GC_LOCK, opts->lock_timeout, GC_LOCK_TTL, &gc_lock, err);
	if (rc == PS_ELOCKED) {
		note(&c, "gc is running: %zu damaged pack(s) stay for now (every object has a good copy; "
		     "run the repair again later to remove them)", ngone);
		c.r->packs_kept += ngone;
		ps_error_clear(err);
		rc = PS_OK;
		goto done;
	}
	if (rc)
		goto done;
	ps_qsort(gone, ngone, 32, pack_cmp);
	rc = drop_from_segments(&c, gone, ngone);
	for (size_t i = 0; i < ngone && !rc; i++) {
		uint64_t freed = 0;
		int kept = 0;
		rc = ps_pack_retire(s, gone[i], ps_now_ns(), &freed, &kept, err);
		if (!rc)
			c.r->packs_retired++;
	}
done:
	ps_lock_release(gc_lock);
	if (ep) {
		ep->ops->bye(ep);
		ep->ops->close(ep);
	}
	ps_idset_release(&seen);
	ps_idset_release(&dpacks);
	ps_idset_release(&c.good);
	ps_idset_release(&c.prefixes);
	ps_free(c.kids);
	ps_free(ids);
	ps_free(gone);
	if (rc) {
		ps_store_abort(s);
		ps_repair_result_free(c.r);
		return rc;
	}
	*out = c.r;
	return PS_OK;
}
