/* test_arena.c - unit tests of common/arena: alignment, growth, reset,
 * protobuf. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdalign.h>
#include <stdbool.h>
#include <string.h>

#include "arena.h"
#include "creneau/v1/service.pb-c.h"

static bool is_aligned(const void *p)
{
	return (uintptr_t)p % alignof(max_align_t) == 0;
}

static bool is_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_alignment_and_zeroing(void **state)
{
	struct arena *a = arena_new(0);
	unsigned char *p[64];

	assert_non_null(a);
	for (size_t i = 0; i < 64; i++) {
		p[i] = arena_alloc(a, i * 7 + 1);
		assert_non_null(p[i]);
		assert_true(is_aligned(p[i]));
		assert_true(is_zero(p[i], i * 7 + 1));
		memset(p[i], (int)i + 1, i * 7 + 1);
	}
	/* nothing overlaps: each allocation kept its own bytes */
	for (size_t i = 0; i < 64; i++)
		for (size_t j = 0; j < i * 7 + 1; j++)
			assert_int_equal(p[i][j], i + 1);
	assert_non_null(arena_alloc(a, 0));
	assert_null(arena_alloc(a, SIZE_MAX));
	assert_null(arena_alloc(a, SIZE_MAX - 8));
	arena_free(a);
}

static void test_growth_past_a_block(void **state)
{
	struct arena *a = arena_new(64);
	unsigned char *big, *small[100];

	assert_non_null(a);
	big = arena_alloc(a, 10000);
	assert_non_null(big);
	assert_true(is_aligned(big));
	memset(big, 0xab, 10000);
	for (int i = 0; i < 100; i++) {
		small[i] = arena_alloc(a, 40);
		assert_non_null(small[i]);
		assert_true(is_aligned(small[i]));
		memset(small[i], i, 40);
	}
	for (int i = 0; i < 10000; i++)
		assert_int_equal(big[i], 0xab);
	for (int i = 0; i < 100; i++)
		for (int j = 0; j < 40; j++)
			assert_int_equal(small[i][j], i);
	arena_free(a);
}

static void test_strings(void **state)
{
	struct arena *a = arena_new(32);
	char long_text[3000];
	char *s;

	assert_non_null(a);
	s = arena_strdup(a, "créneau");
	assert_string_equal(s, "créneau");
	s = arena_strdup(a, "");
	assert_string_equal(s, "");
	s = arena_strndup(a, "booking", 4);
	assert_string_equal(s, "book");
	s = arena_strndup(a, "ab", 100);
	assert_string_equal(s, "ab");
	s = arena_printf(a, "%s-%d-%05.1f", "slot", 42, 3.14159);
	assert_string_equal(s, "slot-42-003.1");
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	s = arena_printf(a, "<%s>", long_text);
	assert_non_null(s);
	assert_int_equal(strlen(s), sizeof(long_text) + 1);
	assert_int_equal(s[0], '<');
	assert_int_equal(s[sizeof(long_text)], '>');
	s = arena_printf(a, "%s", "");
	assert_string_equal(s, "");
	arena_free(a);
}

static void test_reset(void **state)
{
	struct arena *a = arena_new(128);
	unsigned char *p;

	assert_non_null(a);
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 50; i++) {
			p = arena_alloc(a, 100);
			assert_non_null(p);
			assert_true(is_zero(p, 100));
			memset(p, 0xff, 100);
		}
		p = arena_alloc(a, 5000);
		assert_non_null(p);
		assert_true(is_zero(p, 5000));
		memset(p, 0xff, 5000);
		arena_reset(a);
	}
	/* the kept first block hands out zeroed memory again */
	p = arena_alloc(a, 64);
	assert_non_null(p);
	assert_true(is_zero(p, 64));
	arena_free(a);
	arena_free(NULL);
}

static void test_protobuf_allocator(void **state)
{
	Creneau__V1__ExportRequest req = CRENEAU__V1__EXPORT_REQUEST__INIT;
	Creneau__V1__Subject subject = CRENEAU__V1__SUBJECT__INIT;
	Creneau__V1__ExportRequest *out;
	ProtobufCAllocator alloc;
	struct arena *a = arena_new(16);
	uint8_t buf[256];
	size_t len;

	assert_non_null(a);
	subject.account_id = "0b7f5f52-5a3c-4a5c-9a53-8a7d1f6f7c1e";
	subject.email = "someone@example.org";
	req.subject = &subject;
	len = creneau__v1__export_request__pack(&req, buf);
	arena_protobuf_allocator(a, &alloc);
	assert_ptr_equal(alloc.allocator_data, a);
	for (int round = 0; round < 3; round++) {
		out = creneau__v1__export_request__unpack(&alloc, len, buf);
		assert_non_null(out);
		assert_non_null(out->subject);
		assert_string_equal(out->subject->account_id,
				    subject.account_id);
		assert_string_equal(out->subject->email, subject.email);
		/* a no-op: the memory goes with the arena */
		creneau__v1__export_request__free_unpacked(out, &alloc);
		arena_reset(a);
	}
	/* bad bytes fail cleanly, leaking nothing outside the arena */
	buf[0] = 0xff;
	assert_null(creneau__v1__export_request__unpack(&alloc, len, buf));
	arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alignment_and_zeroing),
	    cmocka_unit_test(test_growth_past_a_block),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_protobuf_allocator),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
