/* password.h - argon2id password hashes, login throttling keys and CSRF tokens
 * (libsodium). */
#ifndef ACCOUNTS_PASSWORD_H
#define ACCOUNTS_PASSWORD_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "secure.h"

#define PASSWORD_HASH_TEXT 128 /* crypto_pwhash_STRBYTES */

/* Cost of new hashes: argon2id opslimit and memory in MiB. */
struct password_cost {
	long ops;
	long mem_mib;
};

/*
 * password_hash - an argon2id hash string of password at cost into out.
 * ERR_NOMEM when the memory it needs is not available. Slow by design
 * (tens to hundreds of milliseconds); call outside transactions.
 * Thread-safe.
 */
int password_hash(const char *password, const struct password_cost *cost,
		  char out[PASSWORD_HASH_TEXT]) WARN_UNUSED;

/* password_verify - whether password matches hash (constant time within
 * argon2id). A malformed hash never matches. */
bool password_verify(const char *hash, const char *password);

/* password_needs_rehash - whether hash was made with another cost. */
bool password_needs_rehash(const char *hash, const struct password_cost *cost);

/* password_login_key - BLAKE2b of a normalised e-mail: the throttling key of
 * the connection log, the same for addresses that exist and those that do
 * not. */
void password_login_key(const char *email, uint8_t out[SECURE_HASH_BYTES]);

/* password_csrf - the CSRF token that goes with a session token: a keyed
 * BLAKE2b of it, URL-safe base64. Unguessable without the session token. */
void password_csrf(const char *session_token, char out[SECURE_TOKEN_TEXT]);

#endif
