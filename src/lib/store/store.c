/*
 * store.c - opening and creating stores, the object index in memory, and
 * the object read/write paths.
 *
 * Layout of a store directory (docs/FORMAT.md has the details):
 *
 *   config                     format version, store id, chunker, compression
 *   packs/XX/<sha256>.pack     immutable packs of object records
 *   index/<sha256>.idx         immutable index segments
 *   projects/<id>/...          snapshot refs and settings (snap/ref.c)
 *   locks/<id>.lock            per-project write locks
 *   gc/condemned-<ns>          packs gc will delete (store_gc.c)
 *   tmp/                       files being written; leftovers of dead
 *                              processes are removed (or, for finished
 *                              packs, indexed) by the next writer
 *
 * In memory the index is one array of 40-byte entries sorted by the first 24
 * bytes of the object id (a 192-bit prefix; every read verifies the full
 * SHA-256 in the record header and of the content).  Objects written in this
 * session live in a hash table (`pending`) keyed by the full id until flushed.
 */
#define _GNU_SOURCE
#include "store_int.h"
#include "../hash/hash.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX 65536
#define PACK_TARGET_DEFAULT (16u * 1024 * 1024)
#define PENDING_EMPTY UINT32_MAX
#define PACK_UNFINISHED 0xfffffffeu

struct pend_ent {
	uint8_t id[32];
	uint32_t pack;       /* PENDING_EMPTY = free slot */
	uint32_t off;
	uint32_t len;        /* record length incl. header; 0 while being written */
	uint32_t raw;
	uint8_t type;
	uint8_t failed;      /* writing it failed: absent, a later put retries */
};

struct pend_table {
	struct pend_ent *slots;
	size_t cap, n;
};

/* The pending table and inflight journal are kept beside the public struct
 * (the header only declares an opaque slot for them). */
struct store_priv {
	struct pend_table pend;
	struct ps_bfile *inflight;       /* journal of finished, unindexed packs */
	char inflight_path[PATH_MAX];
	uint32_t cur_pack;               /* pack number of the open writer */
	/* packs named by gc's condemned lists (store_gc.c): flag per pack number,
	 * read with the index; their objects are readable but never deduplicated
	 * against */
	uint8_t *condemned;
	size_t ncondemned;
	int no_refresh;                  /* gc: the index must not change under it */
};

static struct store_priv *P(struct ps_store *s) { return s->priv; }

/* ------------------------------------------------------------ ids */

const char *ps_store_id(const struct ps_store *s) { return s->id; }

/* ------------------------------------------------------------ config */

static int parse_config(struct ps_store *s, const char *text, struct ps_error *err)
{
	const char *p = text;
	uint32_t cmin = 0, cavg = 0, cmax = 0;
	int version = 0;
	s->pack_target = PACK_TARGET_DEFAULT;
	s->compression.codec = PS_CODEC_ZSTD;
	s->compression.level = 1;
	while (*p) {
		char key[64], val[256];
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[512];
		if (len >= sizeof(line))
			return ps_err(err, PS_ECORRUPT, "store config has an overlong line");
		memcpy(line, p, len);
		line[len] = 0;
		p += len + (nl ? 1 : 0);
		if (!line[0] || line[0] == '#')
			continue;
		if (sscanf(line, "%63s %255s", key, val) != 2)
			return ps_err(err, PS_ECORRUPT, "store config line '%s' is invalid", line);
		if (!strcmp(key, "projstore-store"))
			version = atoi(val);
		else if (!strcmp(key, "id")) {
			if (strlen(val) != 32)
				return ps_err(err, PS_ECORRUPT, "store config has an invalid id");
			memcpy(s->id, val, 33);
		}
		else if (!strcmp(key, "chunk-min"))
			cmin = (uint32_t)strtoul(val, NULL, 10);
		else if (!strcmp(key, "chunk-avg"))
			cavg = (uint32_t)strtoul(val, NULL, 10);
		else if (!strcmp(key, "chunk-max"))
			cmax = (uint32_t)strtoul(val, NULL, 10);
		else if (!strcmp(key, "compression")) {
			if (ps_compression_parse(val, &s->compression))
				return ps_err(err, PS_ECORRUPT, "store config: bad compression '%s'", val);
		} else if (!strcmp(key, "pack-size"))
			s->pack_target = strtoull(val, NULL, 10);
	}
	if (version != PS_FORMAT_VERSION)
		return ps_err(err, PS_ECORRUPT, "store has format version %d; this projstore reads %d",
			      version, PS_FORMAT_VERSION);
	if (strlen(s->id) != 32)
		return ps_err(err, PS_ECORRUPT, "store config has no valid id");
	if (ps_chunker_init(&s->chunker, cmin, cavg, cmax))
		return ps_err(err, PS_ECORRUPT, "store config has invalid chunk sizes");
	if (s->pack_target < (1u << 20) || s->pack_target > (1ULL << 31))
		s->pack_target = PACK_TARGET_DEFAULT;
	return PS_OK;
}

static const char *const store_dirs[] = { "packs", "index", "projects", "locks", "tmp" };

int ps_store_init(const char *location, const struct ps_init_opts *opts, struct ps_error *err)
{
	struct ps_backend *be = NULL;
	struct ps_compression comp = { PS_CODEC_ZSTD, 1 };
	struct ps_chunker ch;
	struct ps_bstat st;
	struct ps_buf cfg = PS_BUF_INIT;
	uint8_t rnd[16];
	char id[33];
	uint32_t cmin = PS_CHUNK_MIN_DEFAULT, cavg = PS_CHUNK_AVG_DEFAULT, cmax = PS_CHUNK_MAX_DEFAULT;
	char cs[32];
	int rc;

	if (opts && opts->compression && ps_compression_parse(opts->compression, &comp))
		return ps_err(err, PS_EINVAL, "invalid compression '%s' (zstd[:1-19], lz4, none)",
			      opts->compression);
	if (opts && opts->chunk_avg) {
		cmin = opts->chunk_min ? opts->chunk_min : opts->chunk_avg / 4;
		cavg = opts->chunk_avg;
		cmax = opts->chunk_max ? opts->chunk_max : opts->chunk_avg * 4;
	}
	if (ps_chunker_init(&ch, cmin, cavg, cmax))
		return ps_err(err, PS_EINVAL, "invalid chunk sizes %u/%u/%u", cmin, cavg, cmax);
	rc = ps_backend_open(&be, location, PS_BACKEND_CREATE, err);
	if (rc)
		return rc;
	if (be->ops->stat(be, "config", &st, NULL) == PS_OK) {
		rc = ps_err(err, PS_EEXISTS, "'%s' is already a projstore store", location);
		goto done;
	}
	for (size_t i = 0; i < PS_ARRAY_LEN(store_dirs); i++) {
		rc = be->ops->mkdir(be, store_dirs[i], err);
		if (rc)
			goto done;
	}
	if (ps_random_bytes(rnd, sizeof(rnd))) {
		rc = ps_err_sys(err, "cannot get random bytes");
		goto done;
	}
	ps_hex_encode(rnd, 16, id);
	ps_compression_format(&comp, cs, sizeof(cs));
	if (ps_buf_printf(&cfg,
			  "projstore-store %d\nid %s\nchunk-min %u\nchunk-avg %u\nchunk-max %u\n"
			  "compression %s\npack-size %u\n",
			  PS_FORMAT_VERSION, id, cmin, cavg, cmax, cs, PACK_TARGET_DEFAULT)) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	rc = ps_be_write_atomic(be, "config", cfg.data, cfg.len, err);
	if (!rc)
		rc = be->ops->fsync_dir(be, ".", err);
done:
	ps_buf_release(&cfg);
	if (be)
		be->ops->free(be);
	return rc;
}

int ps_store_open(struct ps_store **out, const char *location, struct ps_error *err)
{
	struct ps_store *s = NULL;
	struct store_priv *priv = NULL;
	void *cfg = NULL;
	size_t len;
	int rc;

	s = ps_calloc(1, sizeof(*s));
	priv = ps_calloc(1, sizeof(*priv));
	if (!s || !priv) {
		ps_free(s);
		ps_free(priv);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	s->priv = priv;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->pcache_lock, NULL);
	rc = ps_backend_open(&s->be, location, 0, err);
	if (rc)
		goto fail;
	rc = ps_be_read_all(s->be, "config", CONFIG_MAX, &cfg, &len, err);
	if (rc == PS_ENOTFOUND) {
		rc = ps_err(err, PS_ENOTFOUND, "'%s' is not a projstore store (no config; run 'projstore init')",
			    location);
		goto fail;
	}
	if (rc)
		goto fail;
	if (memchr(cfg, 0, len)) {
		rc = ps_err(err, PS_ECORRUPT, "store config is damaged");
		goto fail;
	}
	rc = parse_config(s, cfg, err);
	if (rc)
		goto fail;
	s->location = ps_strdup(location);
	ps_free(cfg);
	*out = s;
	return PS_OK;
fail:
	ps_free(cfg);
	ps_store_free(s);
	return rc;
}

void ps_store_free(struct ps_store *s)
{
	struct store_priv *priv;
	if (!s)
		return;
	priv = P(s);
	if (s->writer)
		ps_store_abort(s);
	for (size_t i = 0; i < PS_ARRAY_LEN(s->pcache); i++)
		if (s->pcache[i].f)
			s->be->ops->close(s->pcache[i].f);
	if (priv) {
		if (priv->inflight)
			s->be->ops->close(priv->inflight);
		ps_free(priv->pend.slots);
		ps_free(priv->condemned);
		ps_free(priv);
	}
	ps_strv_free(s->bad_segments, s->nbad_segments);
	for (size_t i = 0; i < s->nsegments; i++)
		ps_free(s->segments[i]);
	ps_free(s->segments);
	ps_free(s->idx);
	ps_free(s->packs);
	ps_free(s->session_packs);
	ps_free(s->location);
	if (s->be)
		s->be->ops->free(s->be);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->pcache_lock);
	ps_free(s);
}

/* ------------------------------------------------------------ pack table */

static int add_pack(struct ps_store *s, const uint8_t id[32], uint32_t *num)
{
	if (s->npacks == s->packs_cap) {
		size_t cap = s->packs_cap ? s->packs_cap * 2 : 64;
		void *p = ps_realloc(s->packs, cap * 32);
		if (!p)
			return -1;
		s->packs = p;
		s->packs_cap = cap;
	}
	memcpy(s->packs[s->npacks], id, 32);
	*num = (uint32_t)s->npacks++;
	return 0;
}

/* ------------------------------------------------------------ index load */

static int idx_cmp(const void *a, const void *b)
{
	return memcmp(((const struct ps_idx_ent *)a)->id, ((const struct ps_idx_ent *)b)->id, 24);
}

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

static int load_segment(struct ps_store *s, const char *name, int *vanished, struct ps_error *err)
{
	char path[PATH_MAX];
	void *buf = NULL;
	size_t len, np, n;
	const uint8_t *pk, *se;
	uint32_t base = (uint32_t)s->npacks;
	struct ps_idx_ent *ni;
	int rc;
	snprintf(path, sizeof(path), "index/%s", name);
	rc = ps_be_read_all(s->be, path, (size_t)1 << 34, &buf, &len, err);
	if (rc == PS_ENOTFOUND) {
		*vanished = 1;
		return PS_OK;
	}
	if (rc)
		return rc;
	/* checked whole, then its entries go straight into the index */
	rc = ps_segment_check(buf, len, &pk, &np, &se, &n, err);
	if (rc) {
		ps_free(buf);
		return ps_err_prefix(err, "index segment '%s'", path);
	}
	for (size_t i = 0; i < np; i++) {
		uint32_t num;
		if (add_pack(s, pk + 32 * i, &num)) {
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto done;
		}
	}
	ni = ps_realloc(s->idx, sizeof(*s->idx) * (s->idx_n + n + 1));
	if (!ni) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	s->idx = ni;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = se + (size_t)PS_SEG_ENT_LEN * i;
		struct ps_idx_ent *e = &s->idx[s->idx_n + i];
		memcpy(e->id, p, 24);
		e->pack = base + ps_get_le32(p + 32);
		e->off = ps_get_le32(p + 36);
		e->len_type = (ps_get_le32(p + 40) & 0x0fffffffu) | ((uint32_t)p[48] << 28);
		e->raw = ps_get_le32(p + 44);
	}
	s->idx_n += n;
done:
	ps_free(buf);
	return rc;
}

/* Sorts the index. Each segment's entries are sorted already, so the array
 * is a few sorted runs: they are merged (a natural merge sort), which costs
 * a few linear passes instead of a full sort; qsort only as a fallback. */
static void sort_index(struct ps_store *s)
{
	struct ps_idx_ent *a = s->idx, *tmp;
	size_t n = s->idx_n, *bound, nb = 0, cap = 64;
	if (n < 2)
		return;
	bound = ps_malloc(cap * sizeof(*bound));
	tmp = bound ? ps_malloc(n * sizeof(*tmp)) : NULL;
	if (!tmp)
		goto fallback;
	bound[nb++] = 0;
	for (size_t i = 1; i < n; i++)
		if (memcmp(a[i - 1].id, a[i].id, 24) > 0) {
			if (nb + 1 >= cap)
				goto fallback;   /* not a few runs: not worth merging */
			bound[nb++] = i;
		}
	bound[nb] = n;
	while (nb > 1) {
		size_t k = 0;
		for (size_t r = 0; r < nb; r += 2) {
			size_t lo = bound[r], mid = bound[r + 1], hi = r + 2 <= nb ? bound[r + 2] : mid;
			if (r + 1 == nb) {
				memcpy(tmp + lo, a + lo, (mid - lo) * sizeof(*a));
			} else {
				size_t i = lo, j = mid, o = lo;
				while (i < mid && j < hi)
					tmp[o++] = memcmp(a[j].id, a[i].id, 24) < 0 ? a[j++] : a[i++];
				memcpy(tmp + o, a + i, (mid - i) * sizeof(*a));
				o += mid - i;
				memcpy(tmp + o, a + j, (hi - j) * sizeof(*a));
			}
			bound[k++] = lo;
		}
		bound[k] = n;
		nb = k;
		{
			struct ps_idx_ent *t = a;
			a = tmp;
			tmp = t;
		}
	}
	/* a is the sorted array, tmp the other one (either may be the original) */
	s->idx = a;
	ps_free(tmp);
	ps_free(bound);
	return;
fallback:
	ps_free(tmp);
	ps_free(bound);
	ps_qsort(s->idx, s->idx_n, sizeof(*s->idx), idx_cmp);
}

static int id32_cmp(const void *a, const void *b) { return memcmp(a, b, 32); }

/* Flags the pack numbers named by the condemned lists read before the
 * segments (cids: sorted pack ids). */
static int flag_condemned(struct ps_store *s, uint8_t (*cids)[32], size_t ncids)
{
	struct store_priv *priv = P(s);
	ps_free(priv->condemned);
	priv->condemned = NULL;
	priv->ncondemned = 0;
	if (!ncids)
		return 0;
	priv->condemned = ps_calloc(s->npacks + 1, 1);
	if (!priv->condemned)
		return -1;
	priv->ncondemned = s->npacks;
	for (size_t p = 0; p < s->npacks; p++)
		if (ps_bsearch(s->packs[p], cids, ncids, 32, id32_cmp))
			priv->condemned[p] = 1;
	return 0;
}

static int pack_condemned(const struct ps_store *s, uint32_t pack)
{
	const struct store_priv *priv = s->priv;
	return pack < priv->ncondemned && priv->condemned[pack];
}

int ps_store_pack_condemned(struct ps_store *s, uint32_t pack) { return pack_condemned(s, pack); }

void ps_store_set_refresh(struct ps_store *s, int on) { P(s)->no_refresh = !on; }

/* The packs of every condemned list. Read before the segments: a list that
 * is gone by then was finished, and its packs are out of every segment read
 * after it. */
static int load_condemned_ids(struct ps_store *s, uint8_t (**out)[32], size_t *nout,
			      struct ps_error *err)
{
	struct ps_condemned *cl = NULL;
	size_t ncl = 0, total = 0, k = 0;
	uint8_t (*ids)[32];
	int rc = ps_condemned_load(s, &cl, &ncl, err);
	*out = NULL;
	*nout = 0;
	if (rc)
		return ps_err_prefix(err, "cannot read gc's condemned lists");
	for (size_t i = 0; i < ncl; i++)
		total += cl[i].npacks;
	ids = ps_malloc(32 * (total + 1));
	if (!ids) {
		ps_condemned_free(cl, ncl);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	for (size_t i = 0; i < ncl; i++)
		for (size_t j = 0; j < cl[i].npacks; j++)
			memcpy(ids[k++], cl[i].packs[j], 32);
	ps_condemned_free(cl, ncl);
	ps_qsort(ids, total, 32, id32_cmp);
	*out = ids;
	*nout = total;
	return PS_OK;
}

int ps_store_load_index(struct ps_store *s, struct ps_error *err)
{
	struct seg_names l = { 0 };
	uint8_t (*cids)[32] = NULL;
	size_t ncids = 0;
	int rc = PS_OK;
	if (s->idx_loaded)
		return PS_OK;
	rc = load_condemned_ids(s, &cids, &ncids, err);
	if (rc)
		return rc;
	for (int attempt = 0; attempt < 5; attempt++) {
		int vanished = 0;
		rc = s->be->ops->list(s->be, "index", collect_seg, &l, err);
		if (rc == PS_ENOTFOUND)
			rc = ps_err(err, PS_ECORRUPT, "store has no index directory");
		if (rc)
			goto done;
		for (size_t i = 0; i < l.n && !rc; i++) {
			rc = load_segment(s, l.v[i], &vanished, err);
			if (rc == PS_ECORRUPT) {
				/* skip it: its objects look missing, and check reports it */
				char **nb = ps_realloc(s->bad_segments, (s->nbad_segments + 1) * sizeof(char *));
				if (nb) {
					s->bad_segments = nb;
					nb[s->nbad_segments] = ps_strdup(l.v[i]);
					if (nb[s->nbad_segments])
						s->nbad_segments++;
				}
				rc = PS_OK;
			}
		}
		if (rc || !vanished)
			break;
		/* a segment was merged away while we read: start over */
		for (size_t i = 0; i < l.n; i++)
			ps_free(l.v[i]);
		l.n = 0;
		s->idx_n = 0;
		s->npacks = 0;
		ps_strv_free(s->bad_segments, s->nbad_segments);
		s->bad_segments = NULL;
		s->nbad_segments = 0;
	}
	if (rc)
		goto done;
	if (flag_condemned(s, cids, ncids)) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	sort_index(s);
	s->segments = l.v;
	s->nsegments = l.n;
	l.v = NULL;
	l.n = 0;
	s->idx_loaded = 1;
done:
	for (size_t i = 0; i < l.n; i++)
		ps_free(l.v[i]);
	ps_free(l.v);
	ps_free(cids);
	return rc;
}

/* The first entry of id (all entries of one id are adjacent), or NULL. */
static const struct ps_idx_ent *idx_find(const struct ps_store *s, const uint8_t id[32])
{
	size_t lo = 0, hi = s->idx_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(s->idx[mid].id, id, 24) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->idx_n && !memcmp(s->idx[lo].id, id, 24) ? &s->idx[lo] : NULL;
}

/* An entry of id in a pack no condemned list names; with live_only = 0 any
 * entry when there is no such one. */
static const struct ps_idx_ent *idx_find_pref(const struct ps_store *s, const uint8_t id[32],
					      int live_only)
{
	const struct ps_idx_ent *e = idx_find(s, id), *end = s->idx + s->idx_n;
	if (!e)
		return NULL;
	for (const struct ps_idx_ent *x = e; x < end && !memcmp(x->id, id, 24); x++)
		if (!pack_condemned(s, x->pack))
			return x;
	return live_only ? NULL : e;
}

/* ------------------------------------------------------------ pending */

static size_t pend_hash(const uint8_t id[32])
{
	size_t h;
	memcpy(&h, id, sizeof(h));
	return h;
}

static struct pend_ent *pend_find(struct pend_table *t, const uint8_t id[32])
{
	size_t i;
	if (!t->cap)
		return NULL;
	for (i = pend_hash(id) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		struct pend_ent *e = &t->slots[i];
		if (e->pack == PENDING_EMPTY)
			return NULL;
		if (!memcmp(e->id, id, 32))
			return e;
	}
}

static struct pend_ent *pend_insert(struct pend_table *t, const uint8_t id[32])
{
	size_t i;
	if ((t->n + 1) * 4 >= t->cap * 3) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct pend_ent *ns = ps_malloc(cap * sizeof(*ns)), *old = t->slots;
		size_t ocap = t->cap;
		if (!ns)
			return NULL;
		for (size_t k = 0; k < cap; k++)
			ns[k].pack = PENDING_EMPTY;
		t->slots = ns;
		t->cap = cap;
		for (size_t k = 0; k < ocap; k++) {
			if (old[k].pack == PENDING_EMPTY)
				continue;
			for (i = pend_hash(old[k].id) & (cap - 1); ns[i].pack != PENDING_EMPTY;
			     i = (i + 1) & (cap - 1))
				;
			ns[i] = old[k];
		}
		ps_free(old);
	}
	for (i = pend_hash(id) & (t->cap - 1); t->slots[i].pack != PENDING_EMPTY;
	     i = (i + 1) & (t->cap - 1))
		;
	memset(&t->slots[i], 0, sizeof(t->slots[i]));
	memcpy(t->slots[i].id, id, 32);
	t->slots[i].pack = PACK_UNFINISHED;
	t->n++;
	return &t->slots[i];
}

/* ------------------------------------------------------------ has/put */

/* live_only: the dedup view (objects in condemned packs are left out). */
static int has_locked(struct ps_store *s, const uint8_t id[32], struct ps_obj_info *info,
		      int live_only)
{
	const struct ps_idx_ent *e = idx_find_pref(s, id, live_only);
	struct pend_ent *p;
	if (e) {
		if (info) {
			info->type = (int)PS_IDX_TYPE(e);
			info->raw_len = e->raw;
			info->stored_len = PS_IDX_LEN(e);
			memcpy(info->pack_id, s->packs[e->pack], 32);
			info->offset = e->off;
		}
		return 1;
	}
	p = pend_find(&P(s)->pend, id);
	if (p && !p->failed) {
		if (info) {
			info->type = p->type;
			info->raw_len = p->raw;
			info->stored_len = p->len;
			if (p->pack < s->npacks)
				memcpy(info->pack_id, s->packs[p->pack], 32);
			else
				memset(info->pack_id, 0, 32);
			info->offset = p->off;
		}
		return 1;
	}
	return 0;
}

int ps_store_has(struct ps_store *s, const uint8_t id[32], struct ps_obj_info *info)
{
	int r;
	pthread_mutex_lock(&s->lock);
	r = has_locked(s, id, info, 1);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int ps_store_locate(struct ps_store *s, const uint8_t id[32], struct ps_obj_info *info)
{
	int r;
	pthread_mutex_lock(&s->lock);
	r = has_locked(s, id, info, 0);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int journal_pack(struct ps_store *s, const uint8_t pack_id[32], struct ps_error *err)
{
	struct store_priv *priv = P(s);
	char line[66];
	int rc;
	if (!priv->inflight) {
		char dir[] = "tmp";
		ps_be_tmp_name(dir, priv->inflight_path, sizeof(priv->inflight_path) - 16);
		strcat(priv->inflight_path, ".inflight");
		rc = s->be->ops->create_excl(s->be, priv->inflight_path, &priv->inflight, err);
		if (rc)
			return rc;
	}
	ps_hex_encode(pack_id, 32, line);
	line[64] = '\n';
	return s->be->ops->write(priv->inflight, line, 65, err);
}

/* Finishes the open pack (lock held). */
/* The objects added to pack slot num are not stored after all (its pack could
 * not be finished): they are marked failed, so that a later put of the same
 * id writes it again instead of counting it as present. */
static void fail_pending_of_pack(struct store_priv *priv, uint32_t num)
{
	for (size_t i = 0; i < priv->pend.cap; i++) {
		struct pend_ent *e = &priv->pend.slots[i];
		if (e->pack != PENDING_EMPTY && e->len && e->pack == num) {
			e->failed = 1;
			e->len = 0;
		}
	}
}

static int finish_pack_locked(struct ps_store *s, struct ps_error *err)
{
	struct store_priv *priv = P(s);
	uint8_t pid[32];
	int rc;
	if (!s->writer)
		return PS_OK;
	/* room in the session's list first: a finished pack must be indexed */
	if (s->nsession_packs == s->session_cap) {
		size_t cap = s->session_cap ? s->session_cap * 2 : 16;
		uint32_t *v = ps_realloc(s->session_packs, cap * sizeof(*v));
		if (!v)
			return ps_err(err, PS_ERROR, "out of memory"); /* the writer stays open */
		s->session_packs = v;
		s->session_cap = cap;
	}
	rc = ps_pack_writer_finish(s->writer, pid, err);
	s->writer = NULL;
	if (rc) {
		fail_pending_of_pack(priv, priv->cur_pack);
		return rc;
	}
	memcpy(s->packs[priv->cur_pack], pid, 32);
	s->session_packs[s->nsession_packs++] = priv->cur_pack;
	return journal_pack(s, pid, err);
}

/* A per-thread compression buffer, freed when the thread exits. */
static pthread_key_t cbuf_key;
static pthread_once_t cbuf_once = PTHREAD_ONCE_INIT;
static __thread struct { uint8_t *p; size_t cap; } *tl_cbuf;

static void cbuf_destroy(void *v)
{
	struct { uint8_t *p; size_t cap; } *b = v;
	free(b->p);
	free(b);
}

static void cbuf_key_init(void) { pthread_key_create(&cbuf_key, cbuf_destroy); }

static int compress_buf(size_t need, uint8_t **out, size_t *cap)
{
	if (!tl_cbuf) {
		pthread_once(&cbuf_once, cbuf_key_init);
		tl_cbuf = calloc(1, sizeof(*tl_cbuf));
		if (!tl_cbuf)
			return -1;
		pthread_setspecific(cbuf_key, tl_cbuf);
	}
	if (need > tl_cbuf->cap) {
		uint8_t *p = malloc(need);
		if (!p)
			return -1;
		free(tl_cbuf->p);
		tl_cbuf->p = p;
		tl_cbuf->cap = need;
	}
	*out = tl_cbuf->p;
	*cap = tl_cbuf->cap;
	return 0;
}

int ps_store_put(struct ps_store *s, int type, const void *data, size_t len,
		 const uint8_t *given_id, const struct ps_compression *comp, uint8_t out_id[32],
		 int *added, struct ps_error *err)
{
	uint8_t *cbuf = NULL;
	size_t ccap = 0;
	uint8_t id[32];
	struct pend_ent *pe;
	size_t need, clen = 0;
	int codec = PS_CODEC_NONE, rc = PS_OK;
	uint64_t off = 0;

	if (len > PS_OBJ_MAX)
		return ps_err(err, PS_EINVAL, "object too large (%zu bytes)", len);
	if (given_id)
		memcpy(id, given_id, 32);
	else if (ps_sha256(data, len, id))
		return ps_err(err, PS_ERROR, "sha256 failed");
	if (out_id)
		memcpy(out_id, id, 32);
	if (added)
		*added = 0;
	pthread_mutex_lock(&s->lock);
	if (has_locked(s, id, NULL, 1)) {
		pthread_mutex_unlock(&s->lock);
		return PS_OK;
	}
	pe = pend_find(&P(s)->pend, id);   /* a failed earlier attempt: retry */
	if (pe)
		pe->failed = 0;
	else
		pe = pend_insert(&P(s)->pend, id);
	pthread_mutex_unlock(&s->lock);
	if (!pe)
		return ps_err(err, PS_ERROR, "out of memory");

	need = ps_compress_bound(len);
	if (compress_buf(need, &cbuf, &ccap))
		rc = ps_err(err, PS_ERROR, "out of memory");
	else if (!(clen = ps_compress(comp ? comp : &s->compression, data, len, cbuf, ccap, &codec)) && len)
		rc = ps_err(err, PS_ERROR, "compression failed");

	pthread_mutex_lock(&s->lock);
	if (!rc && !s->writer) {
		uint8_t zero[32] = { 0 };
		uint32_t num;
		/* the pack gets its slot in the table first, so a writer never
		 * exists without one */
		if (add_pack(s, zero, &num))
			rc = ps_err(err, PS_ERROR, "out of memory");
		else if (!(rc = ps_pack_writer_open(s, &s->writer, err)))
			P(s)->cur_pack = num;
		else
			s->npacks--;
	}
	if (!rc)
		rc = ps_pack_writer_add(s->writer, type, codec, id, (uint32_t)len, cbuf,
					(uint32_t)clen, &off, err);
	if (!rc) {
		/* the table may have been resized: look the entry up again */
		pe = pend_find(&P(s)->pend, id);
		pe->pack = P(s)->cur_pack;
		pe->off = (uint32_t)off;
		pe->len = (uint32_t)(clen + PS_PACK_REC_HDR_LEN);
		pe->raw = (uint32_t)len;
		pe->type = (uint8_t)type;
		s->new_objects++;
		s->new_raw += len;
		s->new_stored += clen + PS_PACK_REC_HDR_LEN;
		if (added)
			*added = 1;
		if (ps_pack_writer_size(s->writer) >= s->pack_target)
			rc = finish_pack_locked(s, err);
	} else {
		struct pend_ent *f = pend_find(&P(s)->pend, id);
		if (f && !f->len)
			f->failed = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int ps_store_put_record(struct ps_store *s, const uint8_t *rec, size_t len, int force,
			int *added, struct ps_error *err)
{
	const uint8_t *id = rec + 12;
	struct pend_ent *pe;
	uint32_t raw, stored;
	uint64_t off = 0;
	int rc = PS_OK;

	if (added)
		*added = 0;
	if (len < PS_PACK_REC_HDR_LEN)
		return ps_err(err, PS_EINVAL, "object record is truncated");
	raw = ps_get_le32(rec + 4);
	stored = ps_get_le32(rec + 8);
	if ((rec[0] != PS_OBJ_CHUNK && rec[0] != PS_OBJ_TREE) || rec[1] > PS_CODEC_LZ4 ||
	    raw > PS_OBJ_MAX || stored > PS_OBJ_MAX || (size_t)stored != len - PS_PACK_REC_HDR_LEN)
		return ps_err(err, PS_EINVAL, "object record header is invalid");
	pthread_mutex_lock(&s->lock);
	pe = pend_find(&P(s)->pend, id);
	if ((pe && !pe->failed) || (!force && has_locked(s, id, NULL, 1))) {
		pthread_mutex_unlock(&s->lock);
		return PS_OK;
	}
	if (pe)
		pe->failed = 0;
	else if (!(pe = pend_insert(&P(s)->pend, id))) {
		pthread_mutex_unlock(&s->lock);
		return ps_err(err, PS_ERROR, "out of memory");
	}
	if (!s->writer) {
		uint8_t zero[32] = { 0 };
		uint32_t num;
		if (add_pack(s, zero, &num))
			rc = ps_err(err, PS_ERROR, "out of memory");
		else if (!(rc = ps_pack_writer_open(s, &s->writer, err)))
			P(s)->cur_pack = num;
		else
			s->npacks--;
	}
	if (!rc)
		rc = ps_pack_writer_add(s->writer, rec[0], rec[1], id, raw, rec + PS_PACK_REC_HDR_LEN,
					stored, &off, err);
	pe = pend_find(&P(s)->pend, id);
	if (!rc) {
		pe->pack = P(s)->cur_pack;
		pe->off = (uint32_t)off;
		pe->len = (uint32_t)len;
		pe->raw = raw;
		pe->type = rec[0];
		s->new_objects++;
		s->new_raw += raw;
		s->new_stored += len;
		if (added)
			*added = 1;
		if (ps_pack_writer_size(s->writer) >= s->pack_target)
			rc = finish_pack_locked(s, err);
	} else if (pe && !pe->len) {
		pe->failed = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int ps_store_flush(struct ps_store *s, struct ps_error *err)
{
	struct store_priv *priv = P(s);
	struct ps_seg_entry *ents = NULL;
	uint8_t (*pk)[32] = NULL;
	size_t n = 0;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = finish_pack_locked(s, err);
	if (rc || !s->nsession_packs)
		goto done;
	pk = ps_malloc(32 * s->nsession_packs);
	ents = ps_malloc(sizeof(*ents) * (priv->pend.n + 1));
	if (!pk || !ents) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < s->nsession_packs; i++)
		memcpy(pk[i], s->packs[s->session_packs[i]], 32);
	for (size_t i = 0; i < priv->pend.cap; i++) {
		struct pend_ent *e = &priv->pend.slots[i];
		size_t k;
		if (e->pack == PENDING_EMPTY || e->failed || !e->len)
			continue;
		for (k = 0; k < s->nsession_packs && s->session_packs[k] != e->pack; k++)
			;
		if (k == s->nsession_packs)
			continue;   /* indexed by an earlier flush */
		memcpy(ents[n].id, e->id, 32);
		ents[n].pack = (uint32_t)k;
		ents[n].off = e->off;
		ents[n].stored_len = e->len;
		ents[n].raw_len = e->raw;
		ents[n].type = e->type;
		n++;
	}
	rc = ps_segment_write(s, pk, s->nsession_packs, ents, n, NULL, err);
	if (rc)
		goto done;
	s->nsession_packs = 0;
	if (priv->inflight) {
		s->be->ops->close(priv->inflight);
		priv->inflight = NULL;
		s->be->ops->unlink(s->be, priv->inflight_path, NULL);
	}
done:
	pthread_mutex_unlock(&s->lock);
	ps_free(pk);
	ps_free(ents);
	return rc;
}

void ps_store_abort(struct ps_store *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->writer) {
		ps_pack_writer_abort(s->writer);
		s->writer = NULL;
	}
	pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------ get */

/* Returns an open file for pack number `pack`, from a small LRU cache of open
 * pack files. *slot is the cache slot holding a reference (release it with
 * pcache_put), or -1 for a file opened only for this read (close it). */
static struct ps_bfile *pcache_get(struct ps_store *s, uint32_t pack, int *slot,
				   struct ps_error *err)
{
	size_t i;
	long victim = -1;
	char path[PATH_MAX];
	struct ps_bfile *f, *old = NULL;
	int rc;
	pthread_mutex_lock(&s->pcache_lock);
	for (i = 0; i < PS_ARRAY_LEN(s->pcache); i++) {
		struct ps_pack_cache_ent *e = &s->pcache[i];
		if (e->f && e->pack == pack) {
			e->last_use = ++s->pcache_tick;
			e->refs++;
			pthread_mutex_unlock(&s->pcache_lock);
			*slot = (int)i;
			return e->f;
		}
	}
	pthread_mutex_unlock(&s->pcache_lock);
	pthread_mutex_lock(&s->lock);    /* s->packs may grow (put, index refresh) */
	ps_pack_path(s->packs[pack], path, sizeof(path));
	pthread_mutex_unlock(&s->lock);
	rc = s->be->ops->open_read(s->be, path, &f, err);
	if (rc)
		return NULL;
	*slot = -1;
	pthread_mutex_lock(&s->pcache_lock);
	for (i = 0; i < PS_ARRAY_LEN(s->pcache); i++) {
		struct ps_pack_cache_ent *e = &s->pcache[i];
		if (e->f && e->pack == pack) {
			/* another thread cached it meanwhile: use that one */
			e->last_use = ++s->pcache_tick;
			e->refs++;
			pthread_mutex_unlock(&s->pcache_lock);
			s->be->ops->close(f);
			*slot = (int)i;
			return e->f;
		}
		if (e->refs == 0 && (victim < 0 || !e->f ||
				     (s->pcache[victim].f && e->last_use < s->pcache[victim].last_use)))
			victim = (long)i;
	}
	if (victim >= 0) {
		struct ps_pack_cache_ent *e = &s->pcache[victim];
		old = e->f;
		e->f = f;
		e->pack = pack;
		e->last_use = ++s->pcache_tick;
		e->refs = 1;
		*slot = (int)victim;
	}
	pthread_mutex_unlock(&s->pcache_lock);
	if (old)
		s->be->ops->close(old);
	return f;
}

static void pcache_put(struct ps_store *s, int slot)
{
	pthread_mutex_lock(&s->pcache_lock);
	s->pcache[slot].refs--;
	pthread_mutex_unlock(&s->pcache_lock);
}

/* Loads the segments published since the index was loaded (lock held).
 * Returns how many were added. */
static int refresh_index_locked(struct ps_store *s, const struct seg_names *l)
{
	int added = 0;
	for (size_t i = 0; i < l->n; i++) {
		struct ps_error e2;
		size_t k;
		int vanished = 0;
		char **nv;
		for (k = 0; k < s->nsegments && strcmp(s->segments[k], l->v[i]); k++)
			;
		if (k < s->nsegments)
			continue;
		for (k = 0; k < s->nbad_segments && strcmp(s->bad_segments[k], l->v[i]); k++)
			;
		if (k < s->nbad_segments)
			continue;
		nv = ps_realloc(s->segments, (s->nsegments + 1) * sizeof(*nv));
		if (!nv)
			break;
		s->segments = nv;
		if (load_segment(s, l->v[i], &vanished, &e2) || vanished)
			continue;
		if (!(s->segments[s->nsegments] = ps_strdup(l->v[i])))
			break;
		s->nsegments++;
		added++;
	}
	if (added)
		sort_index(s);
	return added;
}

/* Empties the pending table: every object in it is named by a segment this
 * handle published (the caller checked that nothing is unflushed). */
static void pend_clear(struct pend_table *t)
{
	for (size_t i = 0; i < t->cap; i++)
		t->slots[i].pack = PENDING_EMPTY;
	t->n = 0;
}

/* Forgets the loaded index (lock held, no reader running): pack numbers
 * change with the next load, so the open pack files go too. */
static void forget_index_locked(struct ps_store *s)
{
	struct store_priv *priv = P(s);
	for (size_t i = 0; i < PS_ARRAY_LEN(s->pcache); i++) {
		if (s->pcache[i].f)
			s->be->ops->close(s->pcache[i].f);
		memset(&s->pcache[i], 0, sizeof(s->pcache[i]));
	}
	pend_clear(&priv->pend);
	ps_free(priv->condemned);
	priv->condemned = NULL;
	priv->ncondemned = 0;
	ps_strv_free(s->bad_segments, s->nbad_segments);
	s->bad_segments = NULL;
	s->nbad_segments = 0;
	for (size_t i = 0; i < s->nsegments; i++)
		ps_free(s->segments[i]);
	ps_free(s->segments);
	s->segments = NULL;
	s->nsegments = 0;
	s->idx_n = 0;
	s->npacks = 0;
	s->idx_loaded = 0;
}

int ps_store_refresh(struct ps_store *s, struct ps_error *err)
{
	struct store_priv *priv = P(s);
	struct seg_names l = { 0 };
	uint8_t (*cids)[32] = NULL;
	size_t ncids = 0;
	int rc, vanished = 0, unflushed;
	if (!s->idx_loaded)
		return ps_store_load_index(s, err);
	/* the lists first, then the segments: the order of a first load */
	rc = load_condemned_ids(s, &cids, &ncids, err);
	if (rc)
		return rc;
	rc = s->be->ops->list(s->be, "index", collect_seg, &l, err);
	if (rc == PS_ENOTFOUND)
		rc = ps_err(err, PS_ECORRUPT, "store has no index directory");
	if (rc)
		goto done;
	pthread_mutex_lock(&s->lock);
	unflushed = s->writer != NULL || s->nsession_packs != 0;
	for (size_t k = 0; k < s->nsegments && !vanished; k++) {
		size_t i;
		for (i = 0; i < l.n && strcmp(s->segments[k], l.v[i]); i++)
			;
		vanished = i == l.n;
	}
	if (vanished && unflushed) {
		pthread_mutex_unlock(&s->lock);
		rc = ps_err(err, PS_EINVAL, "store index changed under unflushed writes: open the store again");
		goto done;
	}
	if (vanished) {
		/* gc rewrote a segment without the packs it removes, or the index
		 * was compacted: entries of this handle may name packs that are
		 * gone, so load it all again */
		forget_index_locked(s);
		pthread_mutex_unlock(&s->lock);
		rc = ps_store_load_index(s, err);
		goto done;
	}
	if (!unflushed)
		pend_clear(&priv->pend);   /* its objects are in this handle's own segments */
	refresh_index_locked(s, &l);
	if (flag_condemned(s, cids, ncids))
		rc = ps_err(err, PS_ERROR, "out of memory");
	pthread_mutex_unlock(&s->lock);
done:
	for (size_t i = 0; i < l.n; i++)
		ps_free(l.v[i]);
	ps_free(l.v);
	ps_free(cids);
	return rc;
}

/* A reader met a pack that is gone, or an object the loaded index lacks:
 * gc may have moved it (the new index segment names its new place), or a
 * save published it after the index was loaded. */
static int refresh_index(struct ps_store *s)
{
	struct seg_names l = { 0 };
	int added = 0;
	if (P(s)->no_refresh || !s->idx_loaded)
		return 0;
	if (s->be->ops->list(s->be, "index", collect_seg, &l, NULL) == PS_OK) {
		pthread_mutex_lock(&s->lock);
		added = refresh_index_locked(s, &l);
		pthread_mutex_unlock(&s->lock);
	}
	for (size_t i = 0; i < l.n; i++)
		ps_free(l.v[i]);
	ps_free(l.v);
	return added;
}

/* Reads the record of id at (pack, off, rlen). *missing = 1 when the pack
 * file does not exist. */
/* Checks and decodes record rec (rlen bytes, of object id, read from pack
 * `where`), which it takes over: want_type < 0 hands out the record itself
 * (header checked), else the object's content (decompressed, hash checked,
 * type compared unless want_type is 0). */
static int decode_rec(const uint8_t id[32], uint8_t *rec, uint32_t rlen, int want_type,
		      const char *where, uint8_t **out, size_t *len, struct ps_error *err)
{
	char hex[65];
	int type = 0, rc;
	if (want_type < 0) {
		/* the record as stored (sync sends it without recompressing): its
		 * header is checked here, its content by whoever decodes it */
		if (rlen < PS_PACK_REC_HDR_LEN || memcmp(rec + 12, id, 32) ||
		    ps_get_le32(rec + 8) != rlen - PS_PACK_REC_HDR_LEN) {
			ps_free(rec);
			ps_hex_encode(id, 32, hex);
			return ps_err(err, PS_ECORRUPT, "object %s: record header in pack '%s' is damaged",
				      hex, where);
		}
		*out = rec;
		*len = rlen;
		return PS_OK;
	}
	rc = ps_pack_decode_record(rec, rlen, id, &type, out, len, err);
	ps_free(rec);
	if (rc)
		return ps_err_prefix(err, "pack '%s'", where);
	if (want_type && type != want_type) {
		ps_free(*out);
		*out = NULL;
		ps_hex_encode(id, 32, hex);
		return ps_err(err, PS_ECORRUPT, "object %s has type %d, expected %d", hex, type, want_type);
	}
	return PS_OK;
}

static int get_record(struct ps_store *s, const uint8_t id[32], uint32_t pack, uint32_t off,
		      uint32_t rlen, int want_type, uint8_t **out, size_t *len, int *missing,
		      struct ps_error *err)
{
	struct ps_bfile *f;
	uint8_t *rec = NULL;
	char hex[65], path[PATH_MAX];
	size_t got;
	int slot, rc;

	pthread_mutex_lock(&s->lock);
	ps_pack_path(s->packs[pack], path, sizeof(path));
	pthread_mutex_unlock(&s->lock);
	f = pcache_get(s, pack, &slot, err);
	if (!f) {
		ps_hex_encode(id, 32, hex);
		if (err && err->code == PS_ENOTFOUND) {
			*missing = 1;
			return ps_err(err, PS_ECORRUPT, "object %s: pack '%s' is missing", hex, path);
		}
		return ps_err_prefix(err, "object %s", hex);
	}
	rec = ps_malloc(rlen);
	if (!rec) {
		rc = ps_err(err, PS_ERROR, "out of memory");
		goto done;
	}
	rc = s->be->ops->pread(f, rec, rlen, off, &got, err);
	if (rc)
		goto done;
	if (got != rlen) {
		ps_hex_encode(id, 32, hex);
		rc = ps_err(err, PS_ECORRUPT, "object %s: pack '%s' is truncated", hex, path);
		goto done;
	}
	rc = decode_rec(id, rec, rlen, want_type, path, out, len, err);
	rec = NULL;
done:
	ps_free(rec);
	if (slot < 0)
		s->be->ops->close(f);
	else
		pcache_put(s, slot);
	return rc;
}

#define GET_CANDIDATES 8

/* want_type < 0: the record itself (ps_store_get_record). */
static int get_any(struct ps_store *s, const uint8_t id[32], int want_type, uint8_t **out,
		   size_t *len, struct ps_error *err);

int ps_store_get(struct ps_store *s, const uint8_t id[32], int want_type, uint8_t **out,
		 size_t *len, struct ps_error *err)
{
	return get_any(s, id, want_type < 0 ? 0 : want_type, out, len, err);
}

int ps_store_get_record(struct ps_store *s, const uint8_t id[32], uint8_t **rec, size_t *len,
			struct ps_error *err)
{
	return get_any(s, id, -1, rec, len, err);
}

static int get_any(struct ps_store *s, const uint8_t id[32], int want_type, uint8_t **out,
		   size_t *len, struct ps_error *err)
{
	char hex[65];
	int rc = ps_store_load_index(s, err);
	if (rc)
		return rc;
	for (int attempt = 0;; attempt++) {
		struct { uint32_t pack, off, len; } cand[GET_CANDIDATES];
		const struct ps_idx_ent *e;
		size_t nc = 0;
		int missing = 0, corrupt = 0;
		struct ps_error first;
		pthread_mutex_lock(&s->lock);
		e = idx_find(s, id);
		if (e) {
			/* copies outside condemned packs first: those may be retired */
			const struct ps_idx_ent *end = s->idx + s->idx_n;
			for (int pass = 0; pass < 2; pass++)
				for (const struct ps_idx_ent *x = e;
				     x < end && !memcmp(x->id, id, 24) && nc < GET_CANDIDATES; x++)
					if (pack_condemned(s, x->pack) == pass) {
						cand[nc].pack = x->pack;
						cand[nc].off = x->off;
						cand[nc].len = PS_IDX_LEN(x);
						nc++;
					}
		} else {
			struct pend_ent *p = pend_find(&P(s)->pend, id);
			if (p && p->len && !p->failed && s->writer && p->pack == P(s)->cur_pack) {
				/* in the pack still being written: read it from there */
				uint32_t off = p->off, rlen = p->len;
				uint8_t *rec = ps_malloc(rlen);
				rc = rec ? ps_pack_writer_read(s->writer, off, rec, rlen, err)
					 : ps_err(err, PS_ERROR, "out of memory");
				pthread_mutex_unlock(&s->lock);
				if (rc == PS_OK)
					rc = decode_rec(id, rec, rlen, want_type, "(pack being written)", out,
							len, err);
				else
					ps_free(rec);
				return rc;
			}
			if (p && p->pack < s->npacks && p->len && !p->failed) {
				cand[0].pack = p->pack;
				cand[0].off = p->off;
				cand[0].len = p->len;
				nc = 1;
			}
		}
		pthread_mutex_unlock(&s->lock);
		if (!nc) {
			if (!attempt && refresh_index(s) > 0)
				continue;
			ps_hex_encode(id, 32, hex);
			return ps_err(err, PS_ENOTFOUND, "object %s is missing from the store", hex);
		}
		for (size_t i = 0; i < nc; i++) {
			struct ps_error e2;
			missing = 0;
			ps_error_clear(&e2);
			rc = get_record(s, id, cand[i].pack, cand[i].off, cand[i].len, want_type, out, len,
					&missing, &e2);
			if (rc == PS_ECORRUPT && !missing && !corrupt) {
				/* a damaged copy: another one (say a repaired copy) may be good */
				corrupt = 1;
				first = e2;
				continue;
			}
			if (!missing && rc != PS_ECORRUPT) {
				if (rc && err)
					*err = e2;
				return rc;
			}
			if (err && !corrupt)
				*err = e2;
		}
		if (corrupt) {
			if (err)
				*err = first;
			return PS_ECORRUPT;
		}
		/* every pack the loaded index names for it is gone */
		if (attempt || refresh_index(s) <= 0)
			return rc;
	}
}

/* ------------------------------------------------------------ listing */

struct pack_list {
	struct ps_store *s;
	const char *sub;
	uint8_t (*ids)[32];
	size_t n, cap;
	int rc;
};

static int collect_pack(void *ctx, const char *name)
{
	struct pack_list *l = ctx;
	size_t len = strlen(name);
	if (len != 69 || strcmp(name + 64, ".pack") || strncmp(name, l->sub, 2))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		void *v = ps_realloc(l->ids, cap * 32);
		if (!v)
			return -1;
		l->ids = v;
		l->cap = cap;
	}
	if (ps_hex_decode(name, l->ids[l->n], 32))
		return 0;
	l->n++;
	return 0;
}

struct sub_list {
	char names[256][3];
	int n;
};

static int collect_sub(void *ctx, const char *name)
{
	struct sub_list *l = ctx;
	if (strlen(name) == 2 && isxdigit((unsigned char)name[0]) && isxdigit((unsigned char)name[1]) &&
	    l->n < 256)
		memcpy(l->names[l->n++], name, 3);
	return 0;
}

int ps_store_list_packs(struct ps_store *s, uint8_t (**ids)[32], size_t *n, struct ps_error *err)
{
	struct pack_list l = { s, NULL, NULL, 0, 0, 0 };
	struct sub_list subs;
	int rc;
	subs.n = 0;
	rc = s->be->ops->list(s->be, "packs", collect_sub, &subs, err);
	if (rc)
		return rc;
	for (int i = 0; i < subs.n; i++) {
		char dir[16];
		snprintf(dir, sizeof(dir), "packs/%s", subs.names[i]);
		l.sub = subs.names[i];
		rc = s->be->ops->list(s->be, dir, collect_pack, &l, err);
		if (rc == PS_ENOTFOUND)
			rc = PS_OK;
		if (rc) {
			ps_free(l.ids);
			return rc < 0 ? rc : ps_err(err, PS_ERROR, "out of memory");
		}
	}
	*ids = l.ids;
	*n = l.n;
	return PS_OK;
}

/* ------------------------------------------------------------ leftovers */

/* Parses ".tmp-HOST-BOOTID-PID-RND[.suffix]". Returns 0 on success. */
static int parse_tmp_name(const char *name, char *host, size_t hlen, char *boot, long *pid)
{
	const char *p, *end;
	char buf[512];
	char *dash;
	if (strncmp(name, ".tmp-", 5) || strlen(name) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", name + 5);
	end = strchr(buf, '.');
	if (end)
		buf[end - buf] = 0;
	dash = strrchr(buf, '-');          /* -RND */
	if (!dash)
		return -1;
	*dash = 0;
	dash = strrchr(buf, '-');          /* -PID */
	if (!dash)
		return -1;
	*pid = strtol(dash + 1, NULL, 10);
	*dash = 0;
	p = buf;
	if (strlen(p) < 38)
		return -1;
	/* boot id is 36 chars, preceded by '-' */
	snprintf(boot, 37, "%s", p + strlen(p) - 36);
	if (p[strlen(p) - 37] != '-')
		return -1;
	snprintf(host, hlen, "%.*s", (int)(strlen(p) - 37), p);
	return 0;
}

struct clean_ctx {
	struct ps_store *s;
	const char *dir;
	char **dead;
	size_t n, cap;
};

static int collect_dead(void *vctx, const char *name)
{
	struct clean_ctx *c = vctx;
	char host[256], boot[40], path[PATH_MAX];
	long pid;
	int dead = 0;
	struct ps_bstat st;
	if (parse_tmp_name(name, host, sizeof(host), boot, &pid))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", c->dir, name);
	if (!strcmp(host, ps_hostname())) {
		if (strcmp(boot, ps_boot_id()))
			dead = 1;    /* from before the last reboot */
		else if (pid > 0 && kill((pid_t)pid, 0) && errno == ESRCH)
			dead = 1;
	} else if (c->s->be->ops->stat(c->s->be, path, &st, NULL) == PS_OK &&
		   ps_now_ns() - st.mtime_ns > 24LL * 3600 * 1000000000LL) {
		dead = 1;    /* another host's, untouched for a day */
	}
	if (!dead)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		char **v = ps_realloc(c->dead, cap * sizeof(*v));
		if (!v)
			return -1;
		c->dead = v;
		c->cap = cap;
	}
	c->dead[c->n] = ps_strdup(path);
	if (c->dead[c->n])
		c->n++;
	return 0;
}

/* Indexes the packs listed in a dead writer's journal. */
static int adopt_inflight(struct ps_store *s, const char *path, struct ps_error *err)
{
	void *buf = NULL;
	size_t len;
	uint8_t (*pk)[32] = NULL;
	struct ps_seg_entry *ents = NULL;
	size_t np = 0, ne = 0;
	int rc = ps_be_read_all(s->be, path, 1u << 24, &buf, &len, err);
	if (rc)
		return rc;
	for (size_t off = 0; off + 65 <= len; off += 65) {
		uint8_t id[32];
		struct ps_pack_entry *pe = NULL;
		uint32_t cnt = 0;
		void *t1, *t2;
		if (ps_hex_decode((char *)buf + off, id, 32))
			continue;
		if (ps_pack_read_index(s, id, &pe, &cnt, NULL, NULL))
			continue;   /* unreadable pack: leave it for check */
		t1 = ps_realloc(pk, 32 * (np + 1));
		t2 = ps_realloc(ents, sizeof(*ents) * (ne + cnt + 1));
		if (t1)
			pk = t1;
		if (t2)
			ents = t2;
		if (!t1 || !t2) {
			ps_free(pe);
			rc = ps_err(err, PS_ERROR, "out of memory");
			goto done;
		}
		memcpy(pk[np], id, 32);
		for (uint32_t i = 0; i < cnt; i++) {
			memcpy(ents[ne].id, pe[i].id, 32);
			ents[ne].pack = (uint32_t)np;
			ents[ne].off = (uint32_t)pe[i].offset;
			ents[ne].stored_len = pe[i].stored_len + PS_PACK_REC_HDR_LEN;
			ents[ne].raw_len = pe[i].raw_len;
			ents[ne].type = pe[i].type;
			ne++;
		}
		np++;
		ps_free(pe);
	}
	if (np)
		rc = ps_segment_write(s, pk, np, ents, ne, NULL, err);
done:
	ps_free(buf);
	ps_free(pk);
	ps_free(ents);
	return rc;
}

int ps_store_clean_tmp(struct ps_store *s, const char *dir, uint64_t *removed,
		       struct ps_error *err)
{
	struct clean_ctx c = { s, dir, NULL, 0, 0 };
	int rc = s->be->ops->list(s->be, dir, collect_dead, &c, err);
	if (rc == PS_ENOTFOUND)
		rc = PS_OK;
	for (size_t i = 0; i < c.n; i++) {
		size_t l = strlen(c.dead[i]);
		if (!rc && l > 9 && !strcmp(c.dead[i] + l - 9, ".inflight"))
			if (adopt_inflight(s, c.dead[i], err))
				continue;   /* keep the journal until its packs are indexed */
		if (s->be->ops->unlink(s->be, c.dead[i], NULL) == PS_OK && removed)
			(*removed)++;
	}
	for (size_t i = 0; i < c.n; i++)
		ps_free(c.dead[i]);
	ps_free(c.dead);
	return rc;
}
