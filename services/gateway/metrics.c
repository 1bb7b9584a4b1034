/* metrics.c - lock-free request counters and their Prometheus text exposition. */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "http.h"

/* The statuses counted one by one; anything else is "other". */
static const int statuses[] = {200, 201, 202, 204, 400, 401, 403,
			       404, 405, 408, 409, 411, 413, 415,
			       422, 429, 500, 502, 503, 504};
#define N_STATUSES (sizeof(statuses) / sizeof(statuses[0]))

/* Histogram bucket upper bounds, in microseconds and as printed. */
static const int64_t bucket_us[] = {1000,    2500,    5000,    10000,  25000,
				    50000,   100000,  250000,  500000, 1000000,
				    2500000, 5000000, 10000000};
static const char *const bucket_le[] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",	"2.5",	"5",	 "10"};
#define N_BUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))

/* Error codes are -1..-14; slot i counts code -(i + 1). */
#define N_CODES 14
static const char *const code_labels[N_CODES] = {
    "invalid",	 "unauthenticated", "forbidden", "not_found",	 "conflict",
    "too_large", "unsupported",	    "rule",	 "rate_limited", "unavailable",
    "timeout",	 "internal",	    "nomem",	 "protocol",
};

/* Row METRICS_MAX_ROUTES counts requests that matched no route. */
#define UNMATCHED METRICS_MAX_ROUTES

static atomic_uint_least64_t requests[METRICS_MAX_ROUTES + 1][N_STATUSES + 1];
/* per bucket (not cumulative); the last slot is above every bound */
static atomic_uint_least64_t buckets[METRICS_MAX_ROUTES + 1][N_BUCKETS + 1];
static atomic_uint_least64_t duration_sum_us[METRICS_MAX_ROUTES + 1];
static atomic_uint_least64_t rpc_errors[ROUTE_N_SERVICES][N_CODES + 1];

static size_t status_slot(int status)
{
	for (size_t i = 0; i < N_STATUSES; i++)
		if (statuses[i] == status)
			return i;
	return N_STATUSES;
}

void metrics_observe(const struct route *r, int status, int64_t duration_us)
{
	size_t row = r ? routes_index(r) : UNMATCHED;
	size_t b = 0;

	if (row > UNMATCHED)
		row = UNMATCHED;
	if (duration_us < 0)
		duration_us = 0;
	while (b < N_BUCKETS && duration_us > bucket_us[b])
		b++;
	atomic_fetch_add_explicit(&requests[row][status_slot(status)], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&buckets[row][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&duration_sum_us[row],
				  (uint_least64_t)duration_us,
				  memory_order_relaxed);
}

void metrics_rpc_error(enum route_service s, int code)
{
	size_t slot =
	    code < 0 && code >= -N_CODES ? (size_t)(-code - 1) : N_CODES;

	if (s < 0 || s >= ROUTE_N_SERVICES)
		return;
	atomic_fetch_add_explicit(&rpc_errors[s][slot], 1,
				  memory_order_relaxed);
}

/* ---- exposition ---- */

struct text {
	char *p;
	size_t len, cap;
	bool failed;
};

static void put(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		char *bigger = realloc(t->p, t->cap * 2 + (size_t)n);

		if (!bigger) {
			t->failed = true;
			return;
		}
		t->p = bigger;
		t->cap = t->cap * 2 + (size_t)n;
	}
}

static uint64_t load(atomic_uint_least64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* The labels of a row: method="GET",route="/v1/health". */
static void row_labels(size_t row, const struct route *table, char *out,
		       size_t n)
{
	if (row == UNMATCHED)
		snprintf(out, n, "method=\"any\",route=\"unmatched\"");
	else
		snprintf(out, n, "method=\"%s\",route=\"%s\"",
			 table[row].method, table[row].pattern);
}

static void render_requests(struct text *t, const struct route *table,
			    size_t n_routes)
{
	char labels[256];

	put(t, "# HELP creneau_http_requests_total HTTP requests answered, "
	       "by route and status.\n"
	       "# TYPE creneau_http_requests_total counter\n");
	for (size_t row = 0; row <= UNMATCHED; row++) {
		if (row == n_routes)
			row = UNMATCHED;
		row_labels(row, table, labels, sizeof(labels));
		for (size_t s = 0; s <= N_STATUSES; s++) {
			uint64_t v = load(&requests[row][s]);

			if (!v)
				continue;
			if (s < N_STATUSES)
				put(t,
				    "creneau_http_requests_total{%s,"
				    "status=\"%d\"} %llu\n",
				    labels, statuses[s], (unsigned long long)v);
			else
				put(t,
				    "creneau_http_requests_total{%s,"
				    "status=\"other\"} %llu\n",
				    labels, (unsigned long long)v);
		}
	}
}

static void render_durations(struct text *t, const struct route *table,
			     size_t n_routes)
{
	char labels[256];

	put(t, "# HELP creneau_http_request_duration_seconds Time from a "
	       "request's arrival to its answer.\n"
	       "# TYPE creneau_http_request_duration_seconds histogram\n");
	for (size_t row = 0; row <= UNMATCHED; row++) {
		uint64_t cumulative = 0;

		if (row == n_routes)
			row = UNMATCHED;
		for (size_t b = 0; b <= N_BUCKETS; b++)
			cumulative += load(&buckets[row][b]);
		if (!cumulative)
			continue;
		row_labels(row, table, labels, sizeof(labels));
		cumulative = 0;
		for (size_t b = 0; b < N_BUCKETS; b++) {
			cumulative += load(&buckets[row][b]);
			put(t,
			    "creneau_http_request_duration_seconds_bucket{%s,"
			    "le=\"%s\"} %llu\n",
			    labels, bucket_le[b],
			    (unsigned long long)cumulative);
		}
		cumulative += load(&buckets[row][N_BUCKETS]);
		put(t,
		    "creneau_http_request_duration_seconds_bucket{%s,"
		    "le=\"+Inf\"} %llu\n"
		    "creneau_http_request_duration_seconds_sum{%s} %.6f\n"
		    "creneau_http_request_duration_seconds_count{%s} %llu\n",
		    labels, (unsigned long long)cumulative, labels,
		    (double)load(&duration_sum_us[row]) / 1e6, labels,
		    (unsigned long long)cumulative);
	}
}

static void render_rpc_errors(struct text *t)
{
	put(t, "# HELP creneau_rpc_errors_total RPCs from the gateway that "
	       "failed, by service and error code.\n"
	       "# TYPE creneau_rpc_errors_total counter\n");
	for (int s = 0; s < ROUTE_N_SERVICES; s++) {
		for (size_t c = 0; c <= N_CODES; c++) {
			uint64_t v = load(&rpc_errors[s][c]);

			if (v)
				put(t,
				    "creneau_rpc_errors_total{service=\"%s\","
				    "code=\"%s\"} %llu\n",
				    routes_service_name(s),
				    c < N_CODES ? code_labels[c] : "other",
				    (unsigned long long)v);
		}
	}
}

int metrics_render(char **out, size_t *len_out, int in_flight)
{
	struct text t = {.p = malloc(4096), .cap = 4096};
	size_t n_routes;
	const struct route *table = routes_table(&n_routes);

	*out = NULL;
	*len_out = 0;
	if (!t.p)
		return ERR_NOMEM;
	render_requests(&t, table, n_routes);
	render_durations(&t, table, n_routes);
	render_rpc_errors(&t);
	put(&t,
	    "# HELP creneau_http_in_flight Requests being answered.\n"
	    "# TYPE creneau_http_in_flight gauge\n"
	    "creneau_http_in_flight %d\n",
	    in_flight);
	if (t.failed) {
		free(t.p);
		return ERR_NOMEM;
	}
	*out = t.p;
	*len_out = t.len;
	return 0;
}

void metrics_handle(struct http_exchange *x)
{
	char *text;
	size_t len;

	if (metrics_render(&text, &len, http_exchange_in_flight(x)) != 0) {
		http_reply_failure(x, ERR_NOMEM, NULL);
		return;
	}
	http_reply_copy(x, 200, "text/plain; version=0.0.4; charset=utf-8",
			text, len);
	free(text);
}
