/* secure.c - tokens, hashes, MACs and keys over libsodium. */
#include "secure.h"

#include <sodium.h>
#include <string.h>

int secure_init(void)
{
	return sodium_init() < 0 ? ERR_INTERNAL : 0;
}

void secure_random(void *buf, size_t n)
{
	randombytes_buf(buf, n);
}

static void hash_bytes(const uint8_t *bin, size_t n,
		       uint8_t out[SECURE_HASH_BYTES])
{
	crypto_generichash(out, SECURE_HASH_BYTES, bin, n, NULL, 0);
}

void secure_token_new(char text_out[SECURE_TOKEN_TEXT],
		      uint8_t hash_out[SECURE_HASH_BYTES])
{
	uint8_t raw[SECURE_TOKEN_BYTES];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(text_out, SECURE_TOKEN_TEXT, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	hash_bytes(raw, sizeof(raw), hash_out);
	sodium_memzero(raw, sizeof(raw));
}

int secure_token_hash(const char *text, uint8_t hash_out[SECURE_HASH_BYTES])
{
	uint8_t raw[SECURE_TOKEN_BYTES];
	size_t n = 0;
	const char *end = NULL;

	if (!text || strlen(text) != sodium_base64_ENCODED_LEN(SECURE_TOKEN_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1)
		return ERR_INVALID;
	if (sodium_base642bin(raw, sizeof(raw), text, strlen(text), NULL, &n,
			      &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
	    n != sizeof(raw) || *end != '\0')
		return ERR_INVALID;
	hash_bytes(raw, sizeof(raw), hash_out);
	sodium_memzero(raw, sizeof(raw));
	return 0;
}

bool secure_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

void secure_mac(const uint8_t key[SECURE_KEY_BYTES], const void *data,
		size_t len, uint8_t tag_out[SECURE_MAC_BYTES])
{
	crypto_auth(tag_out, data, len, key);
}

bool secure_mac_verify(const uint8_t key[SECURE_KEY_BYTES], const void *data,
		       size_t len, const uint8_t tag[SECURE_MAC_BYTES])
{
	return crypto_auth_verify(tag, data, len, key) == 0;
}

int secure_key_from_hex(const char *hex, uint8_t **key_out)
{
	uint8_t *key;
	size_t n = 0;
	const char *end = NULL;

	if (!hex || strlen(hex) != 2 * SECURE_KEY_BYTES)
		return ERR_INVALID;
	key = sodium_malloc(SECURE_KEY_BYTES);
	if (!key)
		return ERR_NOMEM;
	if (sodium_hex2bin(key, SECURE_KEY_BYTES, hex, strlen(hex), NULL, &n,
			   &end) ||
	    n != SECURE_KEY_BYTES || *end != '\0') {
		sodium_free(key);
		return ERR_INVALID;
	}
	*key_out = key;
	return 0;
}

void secure_key_free(uint8_t *key)
{
	if (key)
		sodium_free(key);
}

void secure_hex(const void *bin, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, bin, n);
}

void secure_uuid(char out[37])
{
	uint8_t b[16];
	char hex[33];

	randombytes_buf(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	sodium_bin2hex(hex, sizeof(hex), b, sizeof(b));
	memcpy(out, hex, 8);
	out[8] = '-';
	memcpy(out + 9, hex + 8, 4);
	out[13] = '-';
	memcpy(out + 14, hex + 12, 4);
	out[18] = '-';
	memcpy(out + 19, hex + 16, 4);
	out[23] = '-';
	memcpy(out + 24, hex + 20, 12);
	out[36] = '\0';
}
