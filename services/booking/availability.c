/* availability.c - bookable slots from opening hours, pure computation (no
 * I/O). */
#include "availability.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int avail_weekday(int32_t day)
{
	/* 1970-01-01 was a Thursday (ISO 4) */
	return (int)((floor_div(day, 7) * -7 + day + 3) % 7) + 1;
}

int32_t avail_offset_at(const struct avail_zone_span *zone, size_t n_zone,
			int64_t utc_ms)
{
	int32_t off = zone[0].offset_s;

	for (size_t i = 1; i < n_zone && zone[i].from_ms <= utc_ms; i++)
		off = zone[i].offset_s;
	return off;
}

static bool span_holds(const struct avail_zone_span *zone, size_t n_zone,
		       size_t i, int64_t utc_ms)
{
	if (i > 0 && utc_ms < zone[i].from_ms)
		return false;
	return i + 1 == n_zone || utc_ms < zone[i + 1].from_ms;
}

int64_t avail_local_to_utc(const struct avail_zone_span *zone, size_t n_zone,
			   int64_t local_ms)
{
	bool found = false;
	int64_t best = 0;

	/* Every span whose offset maps local_ms back into itself is an
	 * occurrence of that wall-clock time; the earliest wins. */
	for (size_t i = 0; i < n_zone; i++) {
		int64_t u = local_ms - (int64_t)zone[i].offset_s * 1000;

		if (span_holds(zone, n_zone, i, u) && (!found || u < best)) {
			best = u;
			found = true;
		}
	}
	if (found)
		return best;
	/* In a gap: read with the offset before the jump, which lands after
	 * it, the gap's length later on the clock. */
	for (size_t i = 1; i < n_zone; i++) {
		int64_t before = (int64_t)zone[i - 1].offset_s * 1000;
		int64_t after = (int64_t)zone[i].offset_s * 1000;

		if (after > before && local_ms >= zone[i].from_ms + before &&
		    local_ms < zone[i].from_ms + after)
			return local_ms - before;
	}
	return local_ms - (int64_t)zone[0].offset_s * 1000;
}

static int cmp_interval(const void *a, const void *b)
{
	const struct avail_interval *x = a, *y = b;

	if (x->start_ms != y->start_ms)
		return x->start_ms < y->start_ms ? -1 : 1;
	if (x->end_ms != y->end_ms)
		return x->end_ms < y->end_ms ? -1 : 1;
	return 0;
}

/* Sorts v and merges touching or overlapping intervals in place. */
static size_t sort_merge(struct avail_interval *v, size_t n)
{
	size_t m = 0;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_interval);
	for (size_t i = 1; i < n; i++) {
		if (v[i].start_ms <= v[m].end_ms) {
			if (v[i].end_ms > v[m].end_ms)
				v[m].end_ms = v[i].end_ms;
		} else {
			v[++m] = v[i];
		}
	}
	return m + 1;
}

static bool is_overridden(const struct avail_query *q, int32_t day)
{
	for (size_t i = 0; i < q->n_overrides; i++)
		if (q->overrides[i].day == day)
			return true;
	return false;
}

static void add_local(const struct avail_query *q, int32_t day, int start_min,
		      int end_min, struct avail_interval *v, size_t *n)
{
	int64_t base = (int64_t)day * AVAIL_DAY_MS;
	int64_t s = avail_local_to_utc(q->zone, q->n_zone,
				       base + start_min * AVAIL_MINUTE_MS);
	int64_t e = avail_local_to_utc(q->zone, q->n_zone,
				       base + end_min * AVAIL_MINUTE_MS);

	/* an interval wholly inside a spring-forward gap is empty */
	if (e > s) {
		v[*n].start_ms = s;
		v[*n].end_ms = e;
		(*n)++;
	}
}

int avail_opening(const struct avail_query *q, int32_t first_day,
		  int32_t last_day, struct arena *arena,
		  struct avail_interval **out, size_t *n_out)
{
	size_t cap = 0, n = 0;
	struct avail_interval *v;

	if (last_day < first_day) {
		*out = NULL;
		*n_out = 0;
		return 0;
	}
	cap = (size_t)(last_day - first_day + 1) *
		  (q->n_weekly + q->n_overrides) +
	      1;
	v = arena_alloc(arena, cap * sizeof(*v));
	if (!v)
		return ERR_NOMEM;
	for (int32_t d = first_day; d <= last_day; d++) {
		if (is_overridden(q, d)) {
			for (size_t i = 0; i < q->n_overrides; i++) {
				const struct avail_override *o =
				    &q->overrides[i];
				if (o->day == d && !o->closed)
					add_local(q, d, o->start_min,
						  o->end_min, v, &n);
			}
			continue;
		}
		for (size_t i = 0; i < q->n_weekly; i++)
			if (q->weekly[i].weekday == avail_weekday(d))
				add_local(q, d, q->weekly[i].start_min,
					  q->weekly[i].end_min, v, &n);
	}
	*out = v;
	*n_out = sort_merge(v, n);
	return 0;
}

static bool query_is_valid(const struct avail_query *q)
{
	return q->to_ms > q->from_ms &&
	       q->to_ms - q->from_ms <= AVAIL_MAX_WINDOW_DAYS * AVAIL_DAY_MS &&
	       q->step_min >= 1 && q->step_min <= 1440 &&
	       q->duration_min >= 1 && q->duration_min <= 1440 &&
	       q->buffer_before_min >= 0 && q->buffer_before_min <= 1440 &&
	       q->buffer_after_min >= 0 && q->buffer_after_min <= 1440 &&
	       q->min_notice_min >= 0 && q->horizon_days >= 0 && q->zone &&
	       q->n_zone >= 1;
}

/* The busy intervals, sorted and merged into disjoint ones (arena copy). */
static int merged_busy(const struct avail_query *q, struct arena *arena,
		       struct avail_interval **out, size_t *n_out)
{
	struct avail_interval *v = NULL;

	if (q->n_busy) {
		v = arena_alloc(arena, q->n_busy * sizeof(*v));
		if (!v)
			return ERR_NOMEM;
		memcpy(v, q->busy, q->n_busy * sizeof(*v));
	}
	*out = v;
	*n_out = sort_merge(v, q->n_busy);
	return 0;
}

struct grid {
	int64_t lo, hi;		      /* bounds on starts */
	int64_t step, before, length; /* length = duration + buffer after */
	const struct avail_interval *busy;
	size_t n_busy, next_busy;
	int64_t *starts;
	size_t n, cap;
};

/* Walks one opening interval's grid; busy is consumed monotonically. */
static void walk_interval(struct grid *g, const struct avail_interval *iv)
{
	int64_t k = 0, s;

	if (g->lo > iv->start_ms + g->before)
		k = floor_div(g->lo - iv->start_ms + g->step - 1, g->step);
	else
		k = floor_div(g->before + g->step - 1, g->step);
	for (s = iv->start_ms + k * g->step;
	     s < g->hi && s + g->length <= iv->end_ms && g->n < g->cap;
	     s += g->step) {
		while (g->next_busy < g->n_busy &&
		       g->busy[g->next_busy].end_ms <= s - g->before)
			g->next_busy++;
		if (g->next_busy < g->n_busy &&
		    g->busy[g->next_busy].start_ms < s + g->length)
			continue;
		g->starts[g->n++] = s;
	}
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int avail_compute(const struct avail_query *q, struct arena *arena,
		  int64_t **starts_out, size_t *n_out)
{
	struct avail_interval *open, *busy;
	size_t n_open;
	struct grid g = {0};
	int rc;

	*starts_out = NULL;
	*n_out = 0;
	if (!query_is_valid(q))
		return ERR_INVALID;
	g.lo =
	    max64(q->from_ms, q->now_ms + q->min_notice_min * AVAIL_MINUTE_MS);
	g.hi = min64(q->to_ms, q->now_ms + q->horizon_days * AVAIL_DAY_MS);
	if (g.lo >= g.hi)
		return 0;
	g.step = q->step_min * AVAIL_MINUTE_MS;
	g.before = q->buffer_before_min * AVAIL_MINUTE_MS;
	g.length = (q->duration_min + q->buffer_after_min) * AVAIL_MINUTE_MS;
	/* local days are at most a day and a half away from UTC ones */
	rc = avail_opening(
	    q, (int32_t)floor_div(g.lo - g.before, AVAIL_DAY_MS) - 2,
	    (int32_t)floor_div(g.hi, AVAIL_DAY_MS) + 2, arena, &open, &n_open);
	if (rc)
		return rc;
	rc = merged_busy(q, arena, &busy, &g.n_busy);
	if (rc)
		return rc;
	g.busy = busy;
	g.cap = (size_t)((g.hi - g.lo) / g.step) + n_open + 1;
	g.starts = arena_alloc(arena, g.cap * sizeof(*g.starts));
	if (!g.starts)
		return ERR_NOMEM;
	for (size_t i = 0; i < n_open; i++)
		if (open[i].end_ms > g.lo - g.before)
			walk_interval(&g, &open[i]);
	*starts_out = g.starts;
	*n_out = g.n;
	return 0;
}

int avail_is_offered(const struct avail_query *q, int64_t start,
		     struct arena *arena, bool *offered_out)
{
	struct avail_query one = *q;
	int64_t *starts;
	size_t n;
	int rc;

	one.from_ms = start;
	one.to_ms = start + 1;
	*offered_out = false;
	rc = avail_compute(&one, arena, &starts, &n);
	if (rc)
		return rc;
	*offered_out = n == 1 && starts[0] == start;
	return 0;
}

static bool is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int digits(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

int avail_parse_hhmm(const char *text, int *min_out)
{
	int h, m;

	if (!text || strlen(text) != 5 || text[2] != ':' ||
	    !is_digits(text, 2) || !is_digits(text + 3, 2))
		return ERR_INVALID;
	h = digits(text, 2);
	m = digits(text + 3, 2);
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return ERR_INVALID;
	*min_out = h * 60 + m;
	return 0;
}

void avail_format_hhmm(int min, char out[6])
{
	if (min < 0 || min > 1440)
		min = 0;
	snprintf(out, 6, "%02d:%02d", (min / 60) % 100, min % 60);
}

/* days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int avail_parse_date(const char *text, int32_t *day_out)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	int y, m, d, max;

	if (!text || strlen(text) != 10 || text[4] != '-' || text[7] != '-' ||
	    !is_digits(text, 4) || !is_digits(text + 5, 2) ||
	    !is_digits(text + 8, 2))
		return ERR_INVALID;
	y = digits(text, 4);
	m = digits(text + 5, 2);
	d = digits(text + 8, 2);
	if (y < 1970 || m < 1 || m > 12)
		return ERR_INVALID;
	max = mdays[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		max = 29;
	if (d < 1 || d > max)
		return ERR_INVALID;
	*day_out = (int32_t)days_from_civil(y, m, d);
	return 0;
}
