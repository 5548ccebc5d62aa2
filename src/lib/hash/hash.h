/*
 * hash.h - SHA-256 object ids, through OpenSSL's EVP interface (which uses the
 * CPU's SHA extensions where present).  Safe to call from many threads: each
 * thread keeps its own digest context.
 */
#ifndef PS_HASH_H
#define PS_HASH_H
#include <stddef.h>
#include <stdint.h>

/* out receives 32 bytes. Returns 0, or -1 if OpenSSL failed. */
int ps_sha256(const void *data, size_t len, uint8_t out[32]);

struct ps_sha256_ctx;
/* Streaming interface for large inputs (packs). */
struct ps_sha256_ctx *ps_sha256_new(void);
int ps_sha256_update(struct ps_sha256_ctx *c, const void *data, size_t len);
int ps_sha256_final(struct ps_sha256_ctx *c, uint8_t out[32]);  /* and resets */
void ps_sha256_free(struct ps_sha256_ctx *c);
#endif
