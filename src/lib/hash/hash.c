/*
 * hash.c - SHA-256 via OpenSSL EVP.  The EVP_MD is fetched once; every
 * thread keeps one EVP_MD_CTX (thread-local) for one-shot hashing so that the
 * hot path allocates nothing.
 */
#include "hash.h"

#include <openssl/evp.h>
#include <pthread.h>

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;

static void md_init(void) { md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

static const EVP_MD *md(void)
{
	pthread_once(&md_once, md_init);
	return md_sha256 ? md_sha256 : EVP_sha256();
}

static __thread EVP_MD_CTX *tl_ctx;
static pthread_key_t tl_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void ctx_destroy(void *p) { EVP_MD_CTX_free(p); }
static void key_init(void) { pthread_key_create(&tl_key, ctx_destroy); }

int ps_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 0;
	if (!tl_ctx) {
		pthread_once(&key_once, key_init);
		tl_ctx = EVP_MD_CTX_new();
		if (!tl_ctx)
			return -1;
		pthread_setspecific(tl_key, tl_ctx);
	}
	if (EVP_DigestInit_ex(tl_ctx, md(), NULL) != 1 ||
	    EVP_DigestUpdate(tl_ctx, data, len) != 1 ||
	    EVP_DigestFinal_ex(tl_ctx, out, &n) != 1 || n != 32)
		return -1;
	return 0;
}

struct ps_sha256_ctx {
	EVP_MD_CTX *ctx;
};

struct ps_sha256_ctx *ps_sha256_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	struct ps_sha256_ctx *s;
	if (!c)
		return NULL;
	if (EVP_DigestInit_ex(c, md(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return NULL;
	}
	s = OPENSSL_malloc(sizeof(*s));
	if (!s) {
		EVP_MD_CTX_free(c);
		return NULL;
	}
	s->ctx = c;
	return s;
}

int ps_sha256_update(struct ps_sha256_ctx *c, const void *data, size_t len)
{
	return EVP_DigestUpdate(c->ctx, data, len) == 1 ? 0 : -1;
}

int ps_sha256_final(struct ps_sha256_ctx *c, uint8_t out[32])
{
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(c->ctx, out, &n) != 1 || n != 32)
		return -1;
	return EVP_DigestInit_ex(c->ctx, md(), NULL) == 1 ? 0 : -1;
}

void ps_sha256_free(struct ps_sha256_ctx *c)
{
	if (!c)
		return;
	EVP_MD_CTX_free(c->ctx);
	OPENSSL_free(c);
}
