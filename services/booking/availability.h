/* availability.h - bookable slots from opening hours, pure computation (no
 * I/O). */
#ifndef BOOKING_AVAILABILITY_H
#define BOOKING_AVAILABILITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

struct arena;

#define AVAIL_MINUTE_MS	      60000LL
#define AVAIL_DAY_MS	      86400000LL
#define AVAIL_MAX_WINDOW_DAYS 62

/*
 * The practitioner's zone over a window, as spans of constant UTC offset:
 * span i holds from from_ms (UTC, inclusive) until span i+1's from_ms. The
 * first span is taken to extend into the past, the last into the future.
 * Built from PostgreSQL's tz database (store_zone_spans) or by hand in tests.
 */
struct avail_zone_span {
	int64_t from_ms;
	int32_t offset_s; /* local = UTC + offset */
};

/* One weekly opening interval in local wall-clock minutes [start, end). */
struct avail_weekly {
	int weekday;   /* ISO: 1 = Monday ... 7 = Sunday */
	int start_min; /* 0..1439 */
	int end_min;   /* start_min+1..1440 (1440 = midnight ending the day) */
};

/*
 * A date override: the day's weekly hours are replaced by every override
 * entry of that day; an entry with closed set contributes no interval (so a
 * day with only a closed entry is closed).
 */
struct avail_override {
	int32_t day; /* local date as days since 1970-01-01 */
	bool closed;
	int start_min, end_min;
};

/* A UTC interval [start_ms, end_ms). */
struct avail_interval {
	int64_t start_ms, end_ms;
};

struct avail_query {
	int64_t from_ms, to_ms; /* slot starts in [from, to) */
	int64_t now_ms;
	int min_notice_min; /* starts at or after now + notice */
	int horizon_days;   /* starts before now + horizon */
	int step_min;	    /* grid from each opening interval's start */
	int duration_min;
	int buffer_before_min, buffer_after_min;
	const struct avail_weekly *weekly;
	size_t n_weekly;
	const struct avail_override *overrides;
	size_t n_overrides;
	const struct avail_zone_span *zone; /* at least one span */
	size_t n_zone;
	/* busy: live bookings (their range with their buffers) and external
	 * busy intervals; any order, may overlap */
	const struct avail_interval *busy;
	size_t n_busy;
};

/*
 * avail_local_to_utc - the instant of a local wall-clock time (local_ms =
 * local date-time counted like UTC from 1970) in zone. The deliberate rules:
 * a local time that occurs twice (clocks turned back) is its first
 * occurrence, the earlier instant; a local time that does not exist (clocks
 * turned forward) is moved forward by the length of the gap (02:30 on the
 * night Paris goes from +01 to +02 is 03:30 +02). Pure, thread-safe.
 */
int64_t avail_local_to_utc(const struct avail_zone_span *zone, size_t n_zone,
			   int64_t local_ms);

/* avail_offset_at - the zone's UTC offset (seconds) at instant utc_ms. */
int32_t avail_offset_at(const struct avail_zone_span *zone, size_t n_zone,
			int64_t utc_ms);

/* avail_weekday - ISO weekday (1 = Monday) of a day counted from 1970-01-01. */
int avail_weekday(int32_t day);

/*
 * avail_opening - the opening intervals (UTC, sorted, touching or
 * overlapping ones merged) of every local day from first_day to last_day
 * (inclusive), weekly hours replaced by overrides on overridden days.
 * *out_ms is allocated in arena (*n_out may be 0). ERR_NOMEM.
 */
int avail_opening(const struct avail_query *q, int32_t first_day,
		  int32_t last_day, struct arena *arena,
		  struct avail_interval **out, size_t *n_out) WARN_UNUSED;

/*
 * avail_compute - every start s in [from, to), on the step grid of an
 * opening interval, such that [s - buffer_before, s + duration +
 * buffer_after) lies inside that opening interval and overlaps no busy
 * interval, s >= now + min_notice and s < now + horizon. Starts are written
 * ascending into *starts_out (arena) and counted in *n_out. ERR_INVALID when
 * q is inconsistent (to <= from, a window over AVAIL_MAX_WINDOW_DAYS, a
 * step or duration out of range, no zone); ERR_NOMEM.
 * Pure: same query, same answer; thread-safe.
 */
int avail_compute(const struct avail_query *q, struct arena *arena,
		  int64_t **starts_out, size_t *n_out) WARN_UNUSED;

/*
 * avail_is_offered - whether start is one of avail_compute's starts for q
 * (q's window is ignored and replaced by [start, start + 1 ms)). 0 with
 * *offered_out set, or avail_compute's errors.
 */
int avail_is_offered(const struct avail_query *q, int64_t start,
		     struct arena *arena, bool *offered_out) WARN_UNUSED;

/*
 * avail_parse_hhmm - "HH:MM" (00:00..24:00) as minutes of the day.
 * ERR_INVALID for anything else.
 */
int avail_parse_hhmm(const char *text, int *min_out) WARN_UNUSED;

/* avail_format_hhmm - minutes of the day as "HH:MM" into out (6 bytes). */
void avail_format_hhmm(int min, char out[6]);

/*
 * avail_parse_date - "YYYY-MM-DD" (a real calendar date) as days since
 * 1970-01-01. ERR_INVALID for anything else.
 */
int avail_parse_date(const char *text, int32_t *day_out) WARN_UNUSED;

#endif
