/* test_availability.c - slots from opening hours: table-driven, DST both ways
 * in two hemispheres. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "availability.h"
#include "instant.h"

#define MAX_ITEMS 16

static int64_t at(const char *text)
{
	int64_t ms = 0;

	if (instant_parse(text, &ms) != 0)
		fail_msg("bad instant in test: %s", text);
	return ms;
}

/* local date "YYYY-MM-DD" as days since 1970-01-01 */
static int32_t day_of(const char *date)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%sT00:00:00Z", date);
	return (int32_t)(at(buf) / AVAIL_DAY_MS);
}

/* Europe/Paris in 2027: +01, +02 from 28 March 01:00Z, +01 from 31 October
 * 01:00Z. */
static struct avail_zone_span paris[3];
/* Australia/Sydney in 2027: +11, +10 from 3 April 16:00Z, +11 from 2 October
 * 16:00Z. */
static struct avail_zone_span sydney[3];

static int setup_zones(void **state)
{
	paris[0] = (struct avail_zone_span){at("2026-10-25T01:00:00Z"), 3600};
	paris[1] = (struct avail_zone_span){at("2027-03-28T01:00:00Z"), 7200};
	paris[2] = (struct avail_zone_span){at("2027-10-31T01:00:00Z"), 3600};
	sydney[0] = (struct avail_zone_span){at("2026-10-03T16:00:00Z"), 39600};
	sydney[1] = (struct avail_zone_span){at("2027-04-03T16:00:00Z"), 36000};
	sydney[2] = (struct avail_zone_span){at("2027-10-02T16:00:00Z"), 39600};
	return 0;
}

struct override_text {
	const char *date;
	bool closed;
	int start_min, end_min;
};

struct busy_text {
	const char *start, *end;
};

struct slot_case {
	const char *name;
	const struct avail_zone_span *zone;
	struct avail_weekly weekly[MAX_ITEMS];
	struct override_text overrides[MAX_ITEMS];
	struct busy_text busy[MAX_ITEMS];
	int duration, step, before, after, notice_min, horizon_days;
	const char *now, *from, *to;
	const char *expect[MAX_ITEMS * 4]; /* NULL-terminated */
};

#define H(h, m) ((h)*60 + (m))
#define PAST	"2020-01-01T00:00:00Z"

static const struct slot_case cases[] = {
    {"weekly hours, winter Paris",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-01-11T00:00:00Z",
     "2027-01-12T00:00:00Z",
     {"2027-01-11T08:00:00Z", "2027-01-11T09:00:00Z", "2027-01-11T10:00:00Z"}},
    {"summer Paris: 09:00 is 07:00Z",
     paris,
     {{1, H(9, 0), H(10, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-07-12T00:00:00Z",
     "2027-07-13T00:00:00Z",
     {"2027-07-12T07:00:00Z"}},
    {"several intervals a day",
     paris,
     {{1, H(14, 0), H(15, 30)}, {1, H(9, 0), H(10, 0)}},
     {},
     {},
     60,
     30,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-01-11T00:00:00Z",
     "2027-01-12T00:00:00Z",
     {"2027-01-11T08:00:00Z", "2027-01-11T13:00:00Z", "2027-01-11T13:30:00Z"}},
    {"window cuts the day",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-01-11T09:00:00Z",
     "2027-01-11T10:00:01Z",
     {"2027-01-11T09:00:00Z", "2027-01-11T10:00:00Z"}},
    {"override closes the day",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {{"2027-01-11", true, 0, 0}},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-01-04T00:00:00Z",
     "2027-01-12T00:00:00Z",
     {"2027-01-04T08:00:00Z", "2027-01-04T09:00:00Z", "2027-01-04T10:00:00Z"}},
    {"override replaces the hours",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {{"2027-01-11", false, H(10, 0), H(11, 0)},
      {"2027-01-11", false, H(16, 0), H(17, 0)}},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-01-11T00:00:00Z",
     "2027-01-12T00:00:00Z",
     {"2027-01-11T09:00:00Z", "2027-01-11T15:00:00Z"}},
    {"override opens a closed day",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {{"2027-01-10", false, H(10, 0), H(11, 0)}},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-01-10T00:00:00Z",
     "2027-01-11T00:00:00Z",
     {"2027-01-10T09:00:00Z"}},
    {"buffers fit inside the hours",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {},
     {},
     60,
     15,
     15,
     15,
     0,
     3650,
     PAST,
     "2027-01-11T00:00:00Z",
     "2027-01-12T00:00:00Z",
     {"2027-01-11T08:15:00Z", "2027-01-11T08:30:00Z", "2027-01-11T08:45:00Z",
      "2027-01-11T09:00:00Z", "2027-01-11T09:15:00Z", "2027-01-11T09:30:00Z",
      "2027-01-11T09:45:00Z"}},
    {"minimum notice",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     120,
     3650,
     "2027-01-11T07:00:00Z",
     "2027-01-11T00:00:00Z",
     "2027-01-12T00:00:00Z",
     {"2027-01-11T09:00:00Z", "2027-01-11T10:00:00Z"}},
    {"horizon",
     paris,
     {{1, H(9, 0), H(10, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     10,
     "2027-01-01T00:00:00Z",
     "2027-01-01T00:00:00Z",
     "2027-01-20T00:00:00Z",
     {"2027-01-04T08:00:00Z"}},
    {"external busy interval",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {},
     {{"2027-01-11T08:30:00Z", "2027-01-11T09:00:00Z"}},
     60,
     30,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-01-11T00:00:00Z",
     "2027-01-12T00:00:00Z",
     {"2027-01-11T09:00:00Z", "2027-01-11T09:30:00Z", "2027-01-11T10:00:00Z"}},
    {"existing booking with its buffer",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {},
     {{"2027-01-11T09:00:00Z", "2027-01-11T10:15:00Z"}},
     45,
     15,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-01-11T00:00:00Z",
     "2027-01-12T00:00:00Z",
     {"2027-01-11T08:00:00Z", "2027-01-11T08:15:00Z", "2027-01-11T10:15:00Z"}},
    {"own buffers against a booking",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {},
     {{"2027-01-11T08:00:00Z", "2027-01-11T09:00:00Z"}},
     30,
     30,
     15,
     15,
     0,
     3650,
     PAST,
     "2027-01-11T00:00:00Z",
     "2027-01-12T00:00:00Z",
     {"2027-01-11T09:30:00Z", "2027-01-11T10:00:00Z"}},
    {"overlapping busy intervals merge",
     paris,
     {{1, H(9, 0), H(12, 0)}},
     {},
     {{"2027-01-11T08:00:00Z", "2027-01-11T09:00:00Z"},
      {"2027-01-11T08:30:00Z", "2027-01-11T10:00:00Z"},
      {"2027-01-11T08:10:00Z", "2027-01-11T08:20:00Z"}},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-01-11T00:00:00Z",
     "2027-01-12T00:00:00Z",
     {"2027-01-11T10:00:00Z"}},
    {"Paris spring forward: 09:00 either side",
     paris,
     {{6, H(9, 0), H(10, 0)}, {7, H(9, 0), H(10, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-03-27T00:00:00Z",
     "2027-03-29T00:00:00Z",
     {"2027-03-27T08:00:00Z", "2027-03-28T07:00:00Z"}},
    {"Paris spring forward: hours across the gap",
     paris,
     {{7, H(1, 30), H(3, 30)}},
     {},
     {},
     30,
     30,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-03-27T00:00:00Z",
     "2027-03-29T00:00:00Z",
     {"2027-03-28T00:30:00Z", "2027-03-28T01:00:00Z"}},
    {"Paris spring forward: hours inside the gap are empty",
     paris,
     {{7, H(2, 0), H(3, 0)}},
     {},
     {},
     15,
     15,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-03-27T00:00:00Z",
     "2027-03-29T00:00:00Z",
     {NULL}},
    {"Paris fall back: 09:00 either side",
     paris,
     {{6, H(9, 0), H(10, 0)}, {7, H(9, 0), H(10, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-10-30T00:00:00Z",
     "2027-11-01T00:00:00Z",
     {"2027-10-30T07:00:00Z", "2027-10-31T08:00:00Z"}},
    {"Paris fall back: the repeated hour is open twice",
     paris,
     {{7, H(1, 0), H(4, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-10-30T00:00:00Z",
     "2027-11-01T00:00:00Z",
     {"2027-10-30T23:00:00Z", "2027-10-31T00:00:00Z", "2027-10-31T01:00:00Z",
      "2027-10-31T02:00:00Z"}},
    {"Sydney autumn (April): 09:00 either side",
     sydney,
     {{7, H(9, 0), H(10, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-03-27T00:00:00Z",
     "2027-04-05T00:00:00Z",
     {"2027-03-27T22:00:00Z", "2027-04-03T23:00:00Z"}},
    {"Sydney spring (October): 09:00 either side",
     sydney,
     {{7, H(9, 0), H(10, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-09-25T00:00:00Z",
     "2027-10-04T00:00:00Z",
     {"2027-09-25T23:00:00Z", "2027-10-02T22:00:00Z"}},
    {"Sydney spring forward: hours across the gap",
     sydney,
     {{7, H(2, 0), H(4, 0)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-10-01T00:00:00Z",
     "2027-10-04T00:00:00Z",
     {"2027-10-02T16:00:00Z"}},
    {"Sydney fall back: ambiguous start is the first one",
     sydney,
     {{7, H(2, 30), H(3, 30)}},
     {},
     {},
     60,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-04-02T00:00:00Z",
     "2027-04-05T00:00:00Z",
     {"2027-04-03T15:30:00Z", "2027-04-03T16:30:00Z"}},
    {"hours up to midnight join the next day's",
     paris,
     {{1, H(22, 0), 1440}, {2, 0, H(2, 0)}},
     {},
     {},
     120,
     60,
     0,
     0,
     0,
     3650,
     PAST,
     "2027-01-11T00:00:00Z",
     "2027-01-13T00:00:00Z",
     {"2027-01-11T21:00:00Z", "2027-01-11T22:00:00Z", "2027-01-11T23:00:00Z"}},
};

static void build_query(const struct slot_case *c, struct avail_query *q,
			struct avail_override *ov, struct avail_interval *busy)
{
	size_t n_weekly = 0, n_ov = 0, n_busy = 0;

	while (n_weekly < MAX_ITEMS && c->weekly[n_weekly].weekday)
		n_weekly++;
	for (; n_ov < MAX_ITEMS && c->overrides[n_ov].date; n_ov++) {
		ov[n_ov].day = day_of(c->overrides[n_ov].date);
		ov[n_ov].closed = c->overrides[n_ov].closed;
		ov[n_ov].start_min = c->overrides[n_ov].start_min;
		ov[n_ov].end_min = c->overrides[n_ov].end_min;
	}
	for (; n_busy < MAX_ITEMS && c->busy[n_busy].start; n_busy++) {
		busy[n_busy].start_ms = at(c->busy[n_busy].start);
		busy[n_busy].end_ms = at(c->busy[n_busy].end);
	}
	*q = (struct avail_query){
	    .from_ms = at(c->from),
	    .to_ms = at(c->to),
	    .now_ms = at(c->now),
	    .min_notice_min = c->notice_min,
	    .horizon_days = c->horizon_days,
	    .step_min = c->step,
	    .duration_min = c->duration,
	    .buffer_before_min = c->before,
	    .buffer_after_min = c->after,
	    .weekly = c->weekly,
	    .n_weekly = n_weekly,
	    .overrides = ov,
	    .n_overrides = n_ov,
	    .zone = c->zone,
	    .n_zone = 3,
	    .busy = busy,
	    .n_busy = n_busy,
	};
}

static void slots_match_the_table(void **state)
{
	struct arena *arena = arena_new(0);

	assert_non_null(arena);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct slot_case *c = &cases[i];
		struct avail_override ov[MAX_ITEMS];
		struct avail_interval busy[MAX_ITEMS];
		struct avail_query q;
		int64_t *starts;
		size_t n, n_expect = 0;

		build_query(c, &q, ov, busy);
		assert_int_equal(avail_compute(&q, arena, &starts, &n), 0);
		while (c->expect[n_expect])
			n_expect++;
		for (size_t k = 0; k < n || k < n_expect; k++) {
			char got[INSTANT_TEXT] = "(none)";

			if (k < n)
				instant_format(starts[k], got);
			if (k >= n_expect || strcmp(got, c->expect[k]) != 0)
				fail_msg("case '%s' slot %zu: got %s, want %s",
					 c->name, k, got,
					 k < n_expect ? c->expect[k]
						      : "(none)");
		}
		/* every listed start is offered one by one, and nothing else */
		for (size_t k = 0; k < n; k++) {
			bool offered = false;

			assert_int_equal(
			    avail_is_offered(&q, starts[k], arena, &offered),
			    0);
			assert_true(offered);
			assert_int_equal(avail_is_offered(&q, starts[k] + 60000,
							  arena, &offered),
					 0);
			if (offered &&
			    (k + 1 >= n || starts[k + 1] != starts[k] + 60000))
				fail_msg("case '%s': off-grid start offered",
					 c->name);
		}
		arena_reset(arena);
	}
	arena_free(arena);
}

static void converts_wall_clock_deliberately(void **state)
{
	static const struct {
		const struct avail_zone_span *zone;
		const char *local, *utc;
	} rows[] = {
	    {paris, "2027-01-11T09:00:00Z", "2027-01-11T08:00:00Z"},
	    {paris, "2027-07-12T09:00:00Z", "2027-07-12T07:00:00Z"},
	    /* does not exist: moved forward by the gap (03:30 +02) */
	    {paris, "2027-03-28T02:30:00Z", "2027-03-28T01:30:00Z"},
	    {paris, "2027-03-28T02:00:00Z", "2027-03-28T01:00:00Z"},
	    {paris, "2027-03-28T03:00:00Z", "2027-03-28T01:00:00Z"},
	    /* occurs twice: the first occurrence (+02) */
	    {paris, "2027-10-31T02:30:00Z", "2027-10-31T00:30:00Z"},
	    {paris, "2027-10-31T02:00:00Z", "2027-10-31T00:00:00Z"},
	    {paris, "2027-10-31T03:00:00Z", "2027-10-31T02:00:00Z"},
	    {sydney, "2027-04-04T02:30:00Z", "2027-04-03T15:30:00Z"},
	    {sydney, "2027-04-04T03:00:00Z", "2027-04-03T17:00:00Z"},
	    {sydney, "2027-10-03T02:30:00Z", "2027-10-02T16:30:00Z"},
	    {sydney, "2027-10-03T03:00:00Z", "2027-10-02T16:00:00Z"},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char got[INSTANT_TEXT];

		instant_format(
		    avail_local_to_utc(rows[i].zone, 3, at(rows[i].local)),
		    got);
		if (strcmp(got, rows[i].utc) != 0)
			fail_msg("local %s: got %s, want %s", rows[i].local,
				 got, rows[i].utc);
	}
	assert_int_equal(avail_offset_at(paris, 3, at("2027-03-28T00:59:59Z")),
			 3600);
	assert_int_equal(avail_offset_at(paris, 3, at("2027-03-28T01:00:00Z")),
			 7200);
}

static void knows_weekdays(void **state)
{
	assert_int_equal(avail_weekday(0), 4); /* Thursday 1970-01-01 */
	assert_int_equal(avail_weekday(day_of("2027-03-29")), 1);
	assert_int_equal(avail_weekday(day_of("2027-03-28")), 7);
	assert_int_equal(avail_weekday(-1), 3);
	assert_int_equal(avail_weekday(-4), 7);
}

static void refuses_bad_queries(void **state)
{
	struct arena *arena = arena_new(0);
	struct avail_weekly w = {1, H(9, 0), H(10, 0)};
	struct avail_query q = {
	    .from_ms = at("2027-01-11T00:00:00Z"),
	    .to_ms = at("2027-01-12T00:00:00Z"),
	    .now_ms = at(PAST),
	    .horizon_days = 3650,
	    .step_min = 15,
	    .duration_min = 60,
	    .weekly = &w,
	    .n_weekly = 1,
	    .zone = paris,
	    .n_zone = 3,
	};
	struct avail_query bad;
	int64_t *starts;
	size_t n;

	assert_int_equal(avail_compute(&q, arena, &starts, &n), 0);
	assert_int_equal(n, 1);
	bad = q;
	bad.to_ms = bad.from_ms;
	assert_int_equal(avail_compute(&bad, arena, &starts, &n), ERR_INVALID);
	bad = q;
	bad.to_ms = bad.from_ms + 63 * AVAIL_DAY_MS;
	assert_int_equal(avail_compute(&bad, arena, &starts, &n), ERR_INVALID);
	bad = q;
	bad.step_min = 0;
	assert_int_equal(avail_compute(&bad, arena, &starts, &n), ERR_INVALID);
	bad = q;
	bad.n_zone = 0;
	assert_int_equal(avail_compute(&bad, arena, &starts, &n), ERR_INVALID);
	/* 62 days is the limit, and it is fine */
	bad = q;
	bad.to_ms = bad.from_ms + 62 * AVAIL_DAY_MS;
	assert_int_equal(avail_compute(&bad, arena, &starts, &n), 0);
	assert_int_equal(n, 9);
	arena_free(arena);
}

static void parses_wall_clock_text(void **state)
{
	static const char *const bad_hhmm[] = {"",	 "9:00",  "09:60",
					       "24:01",	 "25:00", "0900",
					       "09:00 ", "-1:00", "ab:cd"};
	static const char *const bad_dates[] = {
	    "",		"2027-02-29", "2027-13-01", "2027-04-31",
	    "27-01-01", "2027-1-01",  "1969-12-31", "2027-01-01T00:00"};
	char text[6];
	int32_t day;
	int min;

	assert_int_equal(avail_parse_hhmm("00:00", &min), 0);
	assert_int_equal(min, 0);
	assert_int_equal(avail_parse_hhmm("09:30", &min), 0);
	assert_int_equal(min, 570);
	assert_int_equal(avail_parse_hhmm("24:00", &min), 0);
	assert_int_equal(min, 1440);
	for (size_t i = 0; i < sizeof(bad_hhmm) / sizeof(bad_hhmm[0]); i++)
		if (avail_parse_hhmm(bad_hhmm[i], &min) != ERR_INVALID)
			fail_msg("accepted %s", bad_hhmm[i]);
	assert_int_equal(avail_parse_hhmm(NULL, &min), ERR_INVALID);
	avail_format_hhmm(570, text);
	assert_string_equal(text, "09:30");
	avail_format_hhmm(1440, text);
	assert_string_equal(text, "24:00");
	assert_int_equal(avail_parse_date("1970-01-01", &day), 0);
	assert_int_equal(day, 0);
	assert_int_equal(avail_parse_date("2028-02-29", &day), 0);
	assert_int_equal(day, day_of("2028-02-29"));
	assert_int_equal(avail_parse_date("2027-03-28", &day), 0);
	assert_int_equal(day, day_of("2027-03-28"));
	for (size_t i = 0; i < sizeof(bad_dates) / sizeof(bad_dates[0]); i++)
		if (avail_parse_date(bad_dates[i], &day) != ERR_INVALID)
			fail_msg("accepted %s", bad_dates[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(knows_weekdays),
	    cmocka_unit_test(converts_wall_clock_deliberately),
	    cmocka_unit_test(slots_match_the_table),
	    cmocka_unit_test(refuses_bad_queries),
	    cmocka_unit_test(parses_wall_clock_text),
	};

	return cmocka_run_group_tests(tests, setup_zones, NULL);
}
