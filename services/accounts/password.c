/* password.c - argon2id hashes, throttling keys and CSRF tokens through
 * libsodium. */
#include "password.h"

#include <string.h>
#include <sodium.h>

static size_t mem_bytes(const struct password_cost *cost)
{
	return (size_t)cost->mem_mib * 1024u * 1024u;
}

int password_hash(const char *password, const struct password_cost *cost,
		  char out[PASSWORD_HASH_TEXT])
{
	_Static_assert(PASSWORD_HASH_TEXT == crypto_pwhash_STRBYTES,
		       "PASSWORD_HASH_TEXT");
	if (crypto_pwhash_str(out, password, strlen(password),
			      (unsigned long long)cost->ops,
			      mem_bytes(cost)) != 0)
		return ERR_NOMEM;
	return 0;
}

bool password_verify(const char *hash, const char *password)
{
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

bool password_needs_rehash(const char *hash, const struct password_cost *cost)
{
	return crypto_pwhash_str_needs_rehash(
		   hash, (unsigned long long)cost->ops, mem_bytes(cost)) != 0;
}

void password_login_key(const char *email, uint8_t out[SECURE_HASH_BYTES])
{
	static const unsigned char key[] = "creneau login throttling v1";

	crypto_generichash(out, SECURE_HASH_BYTES, (const unsigned char *)email,
			   strlen(email), key, sizeof(key) - 1);
}

void password_csrf(const char *session_token, char out[SECURE_TOKEN_TEXT])
{
	static const unsigned char key[] = "creneau csrf token v1";
	unsigned char tag[32];

	crypto_generichash(tag, sizeof(tag),
			   (const unsigned char *)session_token,
			   strlen(session_token), key, sizeof(key) - 1);
	sodium_bin2base64(out, SECURE_TOKEN_TEXT, tag, sizeof(tag),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
