/*
 * ps-testhelper - writes crafted, hostile data into a store through the
 * library's internals, for end-to-end tests of what restore and check do
 * with it.
 *
 *   ps-testhelper hostile STORE PROJECT NAME
 *       publishes a snapshot whose root directory holds one file entry
 *       named NAME (any bytes, e.g. "../escape" or "a/b"), bypassing the
 *       checks a save would make.
 *   ps-testhelper deep STORE PROJECT DEPTH
 *       publishes a snapshot of DEPTH nested directories "d".
 */
#define _GNU_SOURCE
#include "snap/snap_int.h"
#include "hash/hash.h"

#include <stdio.h>
#include <stdlib.h>

/* Encodes a one-entry tree without the name checks of the decoder. */
static int put_tree(struct ps_store *s, const char *name, int type, const uint8_t *sub,
		    const uint8_t *chunk, uint32_t clen, uint8_t id[32], struct ps_error *err)
{
	struct ps_buf b = PS_BUF_INIT;
	int rc;
	ps_buf_append(&b, "PSTR", 4);
	ps_buf_put_u8(&b, 1);
	ps_buf_put_uvar(&b, 1);
	ps_buf_put_uvar(&b, strlen(name));
	ps_buf_append(&b, name, strlen(name));
	ps_buf_put_u8(&b, (uint8_t)type);
	ps_buf_put_uvar(&b, type == PS_T_DIR ? 0755 : 0644);
	ps_buf_put_uvar(&b, 0);
	ps_buf_put_uvar(&b, 0);
	ps_buf_put_svar(&b, 1700000000);
	ps_buf_put_uvar(&b, 0);
	ps_buf_put_uvar(&b, type == PS_T_REG ? clen : 0);
	ps_buf_put_uvar(&b, 0);
	ps_buf_put_uvar(&b, 0);
	if (type == PS_T_REG) {
		ps_buf_put_uvar(&b, 1);
		ps_buf_put_uvar(&b, 0);
		ps_buf_put_uvar(&b, clen);
		ps_buf_append(&b, chunk, 32);
	} else {
		ps_buf_append(&b, sub, 32);
	}
	rc = ps_store_put(s, PS_OBJ_TREE, b.data, b.len, NULL, NULL, id, NULL, err);
	ps_buf_release(&b);
	return rc;
}

static int publish(struct ps_store *s, const char *project, const uint8_t root[32],
		   struct ps_error *err)
{
	struct ps_snapshot_info si;
	int rc = ps_store_flush(s, err);
	if (rc)
		return rc;
	memset(&si, 0, sizeof(si));
	snprintf(si.project, sizeof(si.project), "%s", project);
	si.time_ns = ps_now_ns();
	ps_snapshot_name(si.time_ns, si.name, sizeof(si.name));
	memcpy(si.root, root, 32);
	snprintf(si.origin, sizeof(si.origin), "testhelper");
	si.files = 1;
	si.dirs = 1;
	si.root_mode = 0755;
	rc = ps_ref_publish(s, &si, err);
	if (!rc)
		printf("%s\n", si.name);
	return rc;
}

int main(int argc, char **argv)
{
	struct ps_store *s = NULL;
	struct ps_error err;
	uint8_t chunk[32], root[32];
	static const char data[] = "escaped\n";
	int rc;
	if (argc != 5) {
		fprintf(stderr, "usage: ps-testhelper hostile|deep STORE PROJECT ARG\n");
		return 2;
	}
	ps_error_clear(&err);
	rc = ps_store_open(&s, argv[2], &err);
	if (!rc)
		rc = ps_store_load_index(s, &err);
	if (!rc)
		rc = ps_store_put(s, PS_OBJ_CHUNK, data, strlen(data), NULL, NULL, chunk, NULL, &err);
	if (!rc && !strcmp(argv[1], "hostile")) {
		rc = put_tree(s, argv[4], PS_T_REG, NULL, chunk, (uint32_t)strlen(data), root, &err);
	} else if (!rc && !strcmp(argv[1], "deep")) {
		long depth = strtol(argv[4], NULL, 10);
		rc = put_tree(s, "f", PS_T_REG, NULL, chunk, (uint32_t)strlen(data), root, &err);
		for (long i = 0; i < depth && !rc; i++) {
			uint8_t sub[32];
			memcpy(sub, root, 32);
			rc = put_tree(s, "d", PS_T_DIR, sub, NULL, 0, root, &err);
		}
	} else if (!rc) {
		fprintf(stderr, "unknown command '%s'\n", argv[1]);
		rc = 2;
	}
	if (!rc)
		rc = publish(s, argv[3], root, &err);
	if (rc)
		fprintf(stderr, "ps-testhelper: %s\n", err.msg);
	ps_store_free(s);
	return rc ? 1 : 0;
}
