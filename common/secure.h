/* secure.h - libsodium in one place: tokens, hashes, MACs, sealed secrets. */
#ifndef CRENEAU_SECURE_H
#define CRENEAU_SECURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define SECURE_KEY_BYTES 32   /* deployment MAC key, sealing key */
#define SECURE_MAC_BYTES 32   /* crypto_auth tag */
#define SECURE_TOKEN_BYTES 32 /* session, reset, verification tokens */
#define SECURE_HASH_BYTES 32  /* BLAKE2b of a token */
/* a token as text: URL-safe base64 without padding, plus NUL */
#define SECURE_TOKEN_TEXT 48

/* secure_init - initialises libsodium; idempotent, thread-safe. */
int secure_init(void) WARN_UNUSED;

/* secure_random - fills buf with n random bytes. */
void secure_random(void *buf, size_t n);

/*
 * secure_token_new - a fresh random token as URL-safe text in text_out and
 * its BLAKE2b hash in hash_out (what is stored).
 */
void secure_token_new(char text_out[SECURE_TOKEN_TEXT],
		      uint8_t hash_out[SECURE_HASH_BYTES]);

/* secure_token_hash - hash of a presented token text; ERR_INVALID if not
 * well-formed. */
int secure_token_hash(const char *text, uint8_t hash_out[SECURE_HASH_BYTES])
	WARN_UNUSED;

/* secure_equal - constant-time comparison of two n-byte buffers. */
bool secure_equal(const void *a, const void *b, size_t n);

/* secure_mac - tag_out = crypto_auth(key, data). */
void secure_mac(const uint8_t key[SECURE_KEY_BYTES], const void *data,
		size_t len, uint8_t tag_out[SECURE_MAC_BYTES]);

/* secure_mac_verify - true when tag authenticates data under key. */
bool secure_mac_verify(const uint8_t key[SECURE_KEY_BYTES], const void *data,
		       size_t len, const uint8_t tag[SECURE_MAC_BYTES]);

/*
 * secure_key_from_hex - parses 64 hex digits into a sodium_malloc'd key
 * (*key_out, freed with secure_key_free). ERR_INVALID on bad text.
 */
int secure_key_from_hex(const char *hex, uint8_t **key_out) WARN_UNUSED;
void secure_key_free(uint8_t *key);

/* secure_hex - writes 2n hex digits and a NUL into out (2n+1 bytes). */
void secure_hex(const void *bin, size_t n, char *out);

/*
 * secure_uuid - a random (version 4) UUID as text in out (37 bytes), for
 * request ids and identifiers generated outside the database.
 */
void secure_uuid(char out[37]);

#endif
