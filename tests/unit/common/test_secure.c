/* test_secure.c - tokens, hashes, MACs and keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "secure.h"

static int setup(void **state)
{
	return secure_init();
}

static void tokens_hash_to_what_was_stored(void **state)
{
	char text[SECURE_TOKEN_TEXT], other[SECURE_TOKEN_TEXT];
	uint8_t stored[SECURE_HASH_BYTES], presented[SECURE_HASH_BYTES];

	secure_token_new(text, stored);
	assert_int_equal(strlen(text), 43);
	assert_int_equal(secure_token_hash(text, presented), 0);
	assert_true(secure_equal(stored, presented, sizeof(stored)));

	secure_token_new(other, presented);
	assert_string_not_equal(text, other);
	assert_false(secure_equal(stored, presented, sizeof(stored)));
}

static void malformed_tokens_are_refused(void **state)
{
	uint8_t hash[SECURE_HASH_BYTES];
	char text[SECURE_TOKEN_TEXT];

	secure_token_new(text, hash);
	text[10] = '!';
	assert_int_equal(secure_token_hash(text, hash), ERR_INVALID);
	assert_int_equal(secure_token_hash("", hash), ERR_INVALID);
	assert_int_equal(secure_token_hash(NULL, hash), ERR_INVALID);
	assert_int_equal(secure_token_hash("abc", hash), ERR_INVALID);
}

static void macs_detect_any_change(void **state)
{
	uint8_t *key, *other;
	uint8_t tag[SECURE_MAC_BYTES];
	char data[] = "frame body";

	assert_int_equal(secure_key_from_hex("00112233445566778899aabbccddeeff"
					     "00112233445566778899aabbccddeeff",
					     &key),
			 0);
	assert_int_equal(secure_key_from_hex("ff112233445566778899aabbccddeeff"
					     "00112233445566778899aabbccddeeff",
					     &other),
			 0);
	secure_mac(key, data, sizeof(data), tag);
	assert_true(secure_mac_verify(key, data, sizeof(data), tag));
	assert_false(secure_mac_verify(other, data, sizeof(data), tag));
	data[0] ^= 1;
	assert_false(secure_mac_verify(key, data, sizeof(data), tag));
	secure_key_free(key);
	secure_key_free(other);
	secure_key_free(NULL);
}

static void keys_need_64_hex_digits(void **state)
{
	uint8_t *key = NULL;

	assert_int_equal(secure_key_from_hex("0011", &key), ERR_INVALID);
	assert_int_equal(secure_key_from_hex("zz112233445566778899aabbccddeeff"
					     "00112233445566778899aabbccddeeff",
					     &key),
			 ERR_INVALID);
	assert_int_equal(secure_key_from_hex(NULL, &key), ERR_INVALID);
	assert_null(key);
}

static void uuids_are_version_4(void **state)
{
	char a[37], b[37];

	secure_uuid(a);
	secure_uuid(b);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[14], '4');
	assert_true(strchr("89ab", a[19]) != NULL);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tokens_hash_to_what_was_stored),
		cmocka_unit_test(malformed_tokens_are_refused),
		cmocka_unit_test(macs_detect_any_change),
		cmocka_unit_test(keys_need_64_hex_digits),
		cmocka_unit_test(uuids_are_version_4),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
