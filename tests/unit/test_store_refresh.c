/*
 * test_store_refresh.c - a long-lived store handle kept up to date with
 * ps_store_refresh: objects published by another process become visible,
 * a condemned list published after the first load takes the pack out of the
 * dedup view (gc's protocol for a handle that serves many saves), a
 * compaction that removes loaded segments forces a full reload that still
 * finds every object, the handle's own flushed objects move from the
 * pending table into the index, and refresh refuses to run under unflushed
 * writes when the index changed.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "helpers.h"
#include "store/store_int.h"
#include "snap/snap_int.h"
#include "hash/hash.h"

static struct ps_error E;

static struct ps_store *open_store(const char *loc)
{
	struct ps_store *s = NULL;
	if (ps_store_open(&s, loc, &E)) {
		diag("open: %s", E.msg);
		return NULL;
	}
	return s;
}

static int put(struct ps_store *s, const char *text, uint8_t id[32], int flush)
{
	int added = 0;
	if (ps_store_put(s, PS_OBJ_CHUNK, text, strlen(text), NULL, NULL, id, &added, &E))
		return -1;
	if (flush && ps_store_flush(s, &E))
		return -1;
	return added;
}

int main(void)
{
	char loc[4200];
	snprintf(loc, sizeof(loc), "%s/store", th_tmpdir("refresh"));
	if (ps_store_init(loc, NULL, &E))
		bail_out(E.msg);
	struct ps_store *a = open_store(loc), *b = open_store(loc);
	struct ps_obj_info info;
	uint8_t id1[32], id2[32], id3[32], own[32];
	char texts[40][32];
	if (!a || !b)
		bail_out("cannot open the store");

	ok(ps_store_load_index(a, &E) == PS_OK, "a loads the (empty) index");
	ok(ps_store_load_index(b, &E) == PS_OK && put(b, "from b, first", id1, 1) == 1,
	   "b publishes an object");
	ok(!ps_store_has(a, id1, NULL), "a does not see it yet");
	ok(ps_store_refresh(a, &E) == PS_OK && ps_store_has(a, id1, &info), "after refresh a does");

	/* a's own writes: pending until refresh, then in the index, once */
	ok(put(a, "written by a", own, 1) == 1 && ps_store_has(a, own, NULL), "a's own object");
	size_t before = a->idx_n;
	ok(ps_store_refresh(a, &E) == PS_OK && ps_store_has(a, own, NULL), "still found after refresh");
	is_int((long long)(a->idx_n - before), 1, "moved into the loaded index once");
	ok(ps_store_refresh(a, &E) == PS_OK && a->idx_n == before + 1, "a second refresh adds nothing");
	uint8_t *data = NULL;
	size_t len = 0;
	ok(ps_store_get(a, own, PS_OBJ_CHUNK, &data, &len, &E) == PS_OK && len == 12 &&
	   !memcmp(data, "written by a", 12), "and reads back");
	free(data);

	/* gc condemns b's pack after a loaded its index */
	uint8_t pack[32];
	ok(ps_store_has(b, id1, &info), "b locates its object");
	memcpy(pack, info.pack_id, 32);
	uint8_t reasons[1] = { PS_CONDEMN_DELETE };
	char name[64];
	ok(ps_condemned_publish(b, ps_now_ns(), &pack, reasons, 1, name, sizeof(name), &E) == PS_OK,
	   "a condemned list is published");
	ok(ps_store_has(a, id1, NULL), "before refresh the stale handle would dedup against it");
	ok(ps_store_refresh(a, &E) == PS_OK && !ps_store_has(a, id1, NULL) &&
	   ps_store_locate(a, id1, NULL), "after refresh it is out of the dedup view, still readable");
	int added = -1;
	ok(ps_store_put(a, PS_OBJ_CHUNK, "from b, first", 13, NULL, NULL, id2, &added, &E) == PS_OK &&
	   added == 1 && ps_store_put(a, PS_OBJ_CHUNK, "a second one", 12, NULL, NULL, id3, NULL, &E) == 0 &&
	   ps_store_flush(a, &E) == PS_OK, "so a save writes its own copy");
	ok(ps_condemned_remove(b, name, &E) == PS_OK, "the list goes");

	/* many segments, then a compaction removes the ones a loaded */
	for (int i = 0; i < 40; i++) {
		uint8_t x[32];
		snprintf(texts[i], sizeof(texts[i]), "segment object %d", i);
		if (put(b, texts[i], x, 1) != 1)
			break;
	}
	int rrc = ps_store_refresh(a, &E);
	ok(rrc == PS_OK && a->nsegments > 40, "a loaded %zu segments", a->nsegments);
	ok(ps_index_compact(b, 4, &E) == PS_OK, "b compacts the index");
	ok(ps_store_refresh(a, &E) == PS_OK, "refresh after compaction (full reload)");
	ok(a->nsegments <= 4, "a now has the compacted segments (%zu)", a->nsegments);
	int all = 1;
	for (int i = 0; i < 40; i++) {
		uint8_t x[32];
		ps_sha256(texts[i], strlen(texts[i]), x);
		if (!ps_store_has(a, x, NULL))
			all = 0;
	}
	ok(all && ps_store_has(a, own, NULL) && ps_store_has(a, id2, NULL), "every object still found");
	ok(ps_store_get(a, own, PS_OBJ_CHUNK, &data, &len, &E) == PS_OK && len == 12, "and read");
	free(data);

	/* unflushed writes and a changed index: refused, nothing lost */
	uint8_t y[32];
	ok(put(a, "not flushed yet", y, 0) == 1, "a has an unflushed object");
	ok(ps_store_refresh(a, &E) == PS_OK && ps_store_has(a, y, NULL),
	   "refresh without a vanished segment keeps it pending");
	for (int i = 0; i < 6; i++) {
		uint8_t x[32];
		char t[32];
		snprintf(t, sizeof(t), "more %d", i);
		put(b, t, x, 1);
	}
	ok(ps_index_compact(b, 2, &E) == PS_OK, "b compacts again");
	is_int(ps_store_refresh(a, &E), PS_EINVAL, "refresh under unflushed writes after a compaction is refused");
	ok(strstr(E.msg, "unflushed") != NULL, "and says why: %s", E.msg);
	ok(ps_store_flush(a, &E) == PS_OK && ps_store_refresh(a, &E) == PS_OK && ps_store_has(a, y, NULL),
	   "after the flush it goes through and the object is there");

	ps_store_free(a);
	ps_store_free(b);
	return done_testing();
}
