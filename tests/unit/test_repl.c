/*
 * test_repl.c - unit tests of the replication module: the settings merge
 * rule, ssh:// URLs, protocol messages (encode, decode, limits, canonical
 * varints), and sync between two stores in one process, including a
 * record that fails verification on arrival.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "repl/repl_int.h"
#include "hash/hash.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int has_note(char **notes, size_t n, const char *needle)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(notes[i], needle))
			return 1;
	return 0;
}

static void test_merge(void)
{
	struct ps_buf out = PS_BUF_INIT;
	char **notes = NULL;
	size_t nn = 0;
	int changed = -1, rc;
	const char *dst = "quota 100\nexclude *.o\n";
	const char *src = "quota 200\ncompression lz4\nexclude *.tmp\nexclude cache/\nkeep-daily 7\n"
			  "keep-weekly 4\nfuture-key some value\nBAD LINE\n";

	rc = ps_settings_merge_text(dst, strlen(dst), src, strlen(src), &out, &changed, &notes, &nn, NULL);
	ok(rc == PS_OK, "merge runs");
	ok(changed == 1, "something was taken");
	ps_buf_put_u8(&out, 0);
	ok(strstr((char *)out.data, "quota 100\n") && !strstr((char *)out.data, "quota 200"),
	   "the destination keeps its quota");
	ok(strstr((char *)out.data, "compression lz4\n") != NULL, "compression taken (DST had none)");
	ok(strstr((char *)out.data, "exclude *.o\n") && !strstr((char *)out.data, "*.tmp"),
	   "the exclude list is DST's as a whole");
	ok(strstr((char *)out.data, "keep-daily 7\nkeep-weekly 4\n") != NULL, "the policy taken whole");
	ok(strstr((char *)out.data, "future-key some value\n") != NULL, "unknown keys taken");
	ok(!strstr((char *)out.data, "BAD"), "an invalid line is not taken");
	ok(has_note(notes, nn, "quota differs"), "the quota difference is reported");
	ok(has_note(notes, nn, "exclude differs"), "the exclude difference is reported");
	ok(has_note(notes, nn, "ignored 1 invalid"), "the invalid line is reported");
	ps_strv_free(notes, nn);
	ps_buf_release(&out);

	/* the same settings: nothing to do */
	rc = ps_settings_merge_text(dst, strlen(dst), dst, strlen(dst), &out, &changed, &notes, &nn, NULL);
	ok(rc == PS_OK && changed == 0 && nn == 0, "equal settings: no change, no notes");
	ps_strv_free(notes, nn);
	/* no destination settings: the source's, as they are */
	rc = ps_settings_merge_text(NULL, 0, "quota 5\n", 8, &out, &changed, &notes, &nn, NULL);
	ok(rc == PS_OK && changed == 1 && out.len == 8 && !memcmp(out.data, "quota 5\n", 8),
	   "a destination without settings takes the source's");
	ps_strv_free(notes, nn);
	/* NUL bytes from a hostile source */
	rc = ps_settings_merge_text(dst, strlen(dst), "quota\0 5\n", 9, &out, &changed, &notes, &nn, NULL);
	ok(rc == PS_ECORRUPT, "NUL bytes in the source's settings are refused");
	ps_buf_release(&out);
}

static void test_urls(void)
{
	struct ps_ssh_url u;
	ok(ps_ssh_url_parse("ssh://host/srv/store", &u, NULL) == PS_OK && !strcmp(u.host, "host") &&
	   !u.user[0] && u.port == 0 && !strcmp(u.path, "/srv/store"), "host/path");
	ok(ps_ssh_url_parse("ssh://me@h.example.org:2222/x", &u, NULL) == PS_OK && !strcmp(u.user, "me") &&
	   u.port == 2222 && !strcmp(u.path, "/x"), "user@host:port/path");
	ok(ps_ssh_url_parse("ssh://[::1]:22/x", &u, NULL) == PS_OK && !strcmp(u.host, "::1"), "IPv6");
	ok(ps_ssh_url_parse("ssh://host", &u, NULL) == PS_EINVAL, "no path");
	ok(ps_ssh_url_parse("ssh:///x", &u, NULL) == PS_EINVAL, "no host");
	ok(ps_ssh_url_parse("ssh://-oProxyCommand=x/y", &u, NULL) == PS_EINVAL, "a host that is an option");
	ok(ps_ssh_url_parse("ssh://h:0/x", &u, NULL) == PS_EINVAL, "port 0");
	ok(ps_ssh_url_parse("ssh://h:99999/x", &u, NULL) == PS_EINVAL, "port too large");
	ok(ps_ssh_url_parse("ssh://a b@h/x", &u, NULL) == PS_EINVAL, "a blank in the user");
	ok(ps_ssh_url_parse("ssh://h/x\ny", &u, NULL) == PS_EINVAL, "a newline in the path");
	ok(ps_location_is_ssh("ssh://h/x") && !ps_location_is_ssh("/srv/ssh://"), "ps_location_is_ssh");
}

/* Decodes the frame at b->data; 0 when it decodes and re-encodes to itself. */
static int roundtrip(const struct ps_buf *b, struct ps_msg *m)
{
	struct ps_buf again = PS_BUF_INIT;
	size_t flen = 0;
	int rc = ps_proto_split(b->data, b->len, &flen, NULL);
	if (rc != 1 || flen != b->len)
		return -1;
	rc = ps_msg_decode(b->data + 4, b->len - 4, m, NULL);
	if (rc)
		return rc;
	rc = ps_msg_encode(m, &again) || again.len != b->len || memcmp(again.data, b->data, b->len);
	ps_buf_release(&again);
	return rc ? -2 : 0;
}

static void test_messages(void)
{
	struct ps_buf b = PS_BUF_INIT;
	struct ps_msg m;
	uint8_t ids[2][32];
	size_t st;
	memset(ids, 7, sizeof(ids));

	ps_frame_begin(&b, PS_M_HAS, &st);
	ps_put_ids(&b, ids[0], 2);
	ps_frame_end(&b, st);
	ok(roundtrip(&b, &m) == 0 && m.type == PS_M_HAS && m.n == 2, "HAS round trip");
	/* one id too few for the count */
	b.len -= 32;
	ps_put_le32(b.data, (uint32_t)(b.len - 4));
	ok(roundtrip(&b, &m) == PS_ECORRUPT, "HAS with fewer ids than counted");
	ps_buf_reset(&b);

	/* a non-minimal varint is refused: the encoding is canonical */
	ps_frame_begin(&b, PS_M_SNAPSHOTS, &st);
	ps_buf_put_u8(&b, 0x84);
	ps_buf_put_u8(&b, 0x00);
	ps_buf_append(&b, "proj", 4);
	ps_frame_end(&b, st);
	ok(roundtrip(&b, &m) == PS_ECORRUPT, "a 2-byte varint for 4 is refused");
	ps_buf_reset(&b);
	ps_frame_begin(&b, PS_M_SNAPSHOTS, &st);
	ps_put_str(&b, "Proj", 4);
	ps_frame_end(&b, st);
	ok(roundtrip(&b, &m) == PS_ECORRUPT, "an invalid project id is refused by the decoder");
	ps_buf_reset(&b);

	/* trailing bytes */
	ps_frame_begin(&b, PS_M_BYE, &st);
	ps_buf_put_u8(&b, 0);
	ps_frame_end(&b, st);
	ok(roundtrip(&b, &m) == PS_ECORRUPT, "trailing bytes are refused");
	ps_buf_reset(&b);

	/* HAVE with bits past the count */
	ps_frame_begin(&b, PS_R_HAVE, &st);
	ps_buf_put_uvar(&b, 3);
	ps_buf_put_u8(&b, 0x0f);
	ps_frame_end(&b, st);
	ok(roundtrip(&b, &m) == PS_ECORRUPT, "HAVE with a bit set past the count");
	ps_buf_reset(&b);

	/* an ERROR frame with a code outside the known ones */
	ps_frame_begin(&b, PS_R_ERROR, &st);
	ps_buf_put_svar(&b, -99);
	ps_put_str(&b, "x", 1);
	ps_frame_end(&b, st);
	ok(roundtrip(&b, &m) == PS_ECORRUPT, "ERROR with an unknown code");
	ps_buf_reset(&b);

	/* frame headers */
	{
		uint8_t h[4];
		size_t fl;
		ps_put_le32(h, 0);
		ok(ps_proto_split(h, 4, &fl, NULL) == PS_ECORRUPT, "a zero-length frame");
		ps_put_le32(h, PS_PROTO_FRAME_MAX + 1);
		ok(ps_proto_split(h, 4, &fl, NULL) == PS_ECORRUPT, "an oversized frame");
		ps_put_le32(h, 10);
		ok(ps_proto_split(h, 4, &fl, NULL) == 0, "an incomplete frame needs more bytes");
		ok(ps_proto_split(h, 3, &fl, NULL) == 0, "an incomplete header needs more bytes");
	}
	ps_buf_release(&b);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

/* Two stores in one process: a snapshot goes over; a damaged record is
 * rejected by the receiving endpoint and never stored. */
static void test_local_sync(void)
{
	char tmp[] = "/tmp/test_repl.XXXXXX", a[4200], b[4200], dir[4200], cache[4200], path[4300];
	struct ps_store *sa = NULL, *sb = NULL;
	struct ps_save_opts so = PS_SAVE_OPTS_INIT;
	struct ps_snapshot_info si;
	struct ps_sync_result *r = NULL;
	struct ps_sync_opts o = PS_SYNC_OPTS_INIT;
	struct ps_ep *ep = NULL;
	struct ps_error err;
	uint8_t rec[PS_PACK_REC_HDR_LEN + 5] = { PS_OBJ_CHUNK, 0 };
	struct ps_ep_reject *rej = NULL;
	size_t nrej = 0;
	uint64_t acc = 0, nrejected = 0;
	FILE *f;

	if (!mkdtemp(tmp)) {
		skip(8, "no temporary directory");
		return;
	}
	snprintf(a, sizeof(a), "%s/a", tmp);
	snprintf(b, sizeof(b), "%s/b", tmp);
	snprintf(dir, sizeof(dir), "%s/dir", tmp);
	snprintf(cache, sizeof(cache), "%s/cache", tmp);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/file.txt", dir);
	f = fopen(path, "w");
	fputs("hello sync\n", f);
	fclose(f);
	ok(ps_store_init(a, NULL, NULL) == PS_OK && ps_store_init(b, NULL, NULL) == PS_OK, "two stores");
	ps_store_open(&sa, a, NULL);
	so.cache_dir = cache;
	ok(ps_save(sa, "proj", dir, &so, &si, &err) == PS_OK, "a snapshot in A");
	ps_store_free(sa);
	ok(ps_sync(a, b, &o, &r, &err) == PS_OK && r->snapshots_copied == 1 && r->ndamage == 0,
	   "sync copies it");
	ps_sync_result_free(r);
	r = NULL;
	ok(ps_sync(a, b, &o, &r, &err) == PS_OK && r->snapshots_copied == 0 && r->objects_sent == 0,
	   "a second sync copies nothing");
	ps_sync_result_free(r);

	/* a record whose content does not hash to its id */
	ps_put_le32(rec + 4, 5);
	ps_put_le32(rec + 8, 5);
	ps_sha256("hello", 5, rec + 12);
	memcpy(rec + PS_PACK_REC_HDR_LEN, "hellO", 5);
	ps_store_open(&sb, b, NULL);
	ok(ps_ep_local_new(&ep, sb, 1, &err) == PS_OK, "a local endpoint over B");
	ok(ep->ops->lock(ep, PS_EP_LOCK_STORE, NULL, 5, &err) == PS_OK, "the sync lock");
	ok(ep->ops->put(ep, rec, sizeof(rec), &err) == PS_OK &&
	   ep->ops->barrier(ep, &acc, &nrejected, &rej, &nrej, &err) == PS_OK && acc == 0 &&
	   nrejected == 1 && nrej == 1 && !memcmp(rej[0].id, rec + 12, 32),
	   "a damaged record is rejected and named by the barrier");
	{
		uint8_t bits = 0;
		ok(ep->ops->has(ep, (const uint8_t (*)[32])(rec + 12), 1, &bits, &err) == PS_OK && bits == 0,
		   "and it is not in the store");
	}
	ps_free(rej);
	ep->ops->unlock(ep, PS_EP_LOCK_STORE, NULL, NULL);
	ep->ops->close(ep);
	nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	test_merge();
	test_urls();
	test_messages();
	test_local_sync();
	return done_testing();
}
