/* test_instant.c - RFC 3339 parsing and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "instant.h"

static void parses_utc_and_offsets(void **state)
{
	int64_t ms;

	assert_int_equal(instant_parse("1970-01-01T00:00:00Z", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(instant_parse("2027-03-28T09:00:00+02:00", &ms), 0);
	assert_int_equal(ms, 1806217200000LL);
	assert_int_equal(instant_parse("2027-03-28T07:00:00.250Z", &ms), 0);
	assert_int_equal(ms, 1806217200250LL);
	assert_int_equal(instant_parse("1969-12-31T23:59:59Z", &ms), 0);
	assert_int_equal(ms, -1000);
	assert_int_equal(instant_parse("2024-02-29T12:00:00-05:30", &ms), 0);
	assert_int_equal(ms, 1709227800000LL);
}

static void refuses_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"2027-03-28",
		"2027-03-28T09:00:00",    /* no zone */
		"2027-02-29T00:00:00Z",   /* not a leap year */
		"2027-13-01T00:00:00Z",
		"2027-04-31T00:00:00Z",
		"2027-03-28T24:00:00Z",
		"2027-03-28T09:00:60Z",
		"2027-03-28T09:00:00+2:00",
		"2027-03-28T09:00:00Zjunk",
		"2027-03-28T09:00:00.Z",
		"27-03-28T09:00:00Z",
		"2027-03-28T09:00:00+24:00",
		"２027-03-28T09:00:00Z",
	};
	int64_t ms = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(instant_parse(bad[i], &ms), ERR_INVALID);
		assert_int_equal(ms, 42);
	}
	assert_int_equal(instant_parse(NULL, &ms), ERR_INVALID);
}

static void formats_and_round_trips(void **state)
{
	char out[INSTANT_TEXT];
	int64_t samples[] = {0, 1806217200000LL, 1806217200250LL, -1000,
			     951782400000LL /* 2000-02-29 */, 4102444799999LL};

	instant_format(1806217200000LL, out);
	assert_string_equal(out, "2027-03-28T07:00:00Z");
	instant_format(1806217200250LL, out);
	assert_string_equal(out, "2027-03-28T07:00:00.250Z");
	instant_format(-1, out);
	assert_string_equal(out, "1969-12-31T23:59:59.999Z");
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		int64_t back;

		instant_format(samples[i], out);
		assert_int_equal(instant_parse(out, &back), 0);
		assert_int_equal(back, samples[i]);
	}
}

static void clocks_move(void **state)
{
	int64_t a = instant_mono_ms();

	assert_true(instant_now_ms() > 1700000000000LL);
	assert_true(instant_mono_ms() >= a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_utc_and_offsets),
		cmocka_unit_test(refuses_malformed),
		cmocka_unit_test(formats_and_round_trips),
		cmocka_unit_test(clocks_move),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
