/* routes.c - THE table from HTTP method and path to an RPC (or a local handler), and its matcher. */
#include "routes.h"

#include <string.h>

#include "creneau/v1/service.pb-c.h"
#include "health.h"
#include "local.h"
#include "metrics.h"

/* A route answered by an RPC through the generic proxy. */
#define RPC(method, pattern, service, rpc, req, rep, status, auth)             \
	{                                                                      \
		method, pattern, service, rpc, &req##__descriptor,             \
		&rep##__descriptor, status, auth, NULL                         \
	}

/* A route the gateway answers itself. */
#define LOCAL(method, pattern, handler)                                        \
	{                                                                      \
		method, pattern, ROUTE_LOCAL, NULL, NULL, NULL, 200,           \
		AUTH_ANYONE, handler                                           \
	}

#define HEALTH(service, path)                                                  \
	RPC("GET", "/v1/health/" path, service, "Health",                      \
	    creneau__v1__health_request, creneau__v1__health_reply, 200,       \
	    AUTH_ANYONE)

/*
 * Later issues add their endpoints here, one line each, e.g.
 *   RPC("POST", "/v1/bookings", ROUTE_BOOKING, "CreateBooking",
 *       creneau__v1__create_booking_request,
 *       creneau__v1__booking, 201, AUTH_CLIENT),
 * and document them in docs/openapi.json (a unit test checks both agree).
 */
static const struct route table[] = {
	LOCAL("GET", "/v1/ping", local_ping),
	LOCAL("GET", "/v1/health", health_handle),
	HEALTH(ROUTE_ACCOUNTS, "accounts"),
	HEALTH(ROUTE_BOOKING, "booking"),
	HEALTH(ROUTE_CALENDAR_SYNC, "calendar-sync"),
	HEALTH(ROUTE_GDPR_RETENTION, "gdpr-retention"),
	HEALTH(ROUTE_NOTIFICATIONS, "notifications"),
	LOCAL("GET", "/v1/openapi.json", local_openapi),
	LOCAL("GET", "/metrics", metrics_handle),
};

#define N_ROUTES (sizeof(table) / sizeof(table[0]))

_Static_assert(N_ROUTES <= METRICS_MAX_ROUTES, "raise METRICS_MAX_ROUTES");

static const char *const service_names[ROUTE_N_SERVICES] = {
	[ROUTE_ACCOUNTS] = "accounts",
	[ROUTE_BOOKING] = "booking",
	[ROUTE_CALENDAR_SYNC] = "calendar-sync",
	[ROUTE_GDPR_RETENTION] = "gdpr-retention",
	[ROUTE_NOTIFICATIONS] = "notifications",
};

const struct route *routes_table(size_t *n_out)
{
	*n_out = N_ROUTES;
	return table;
}

size_t routes_index(const struct route *r)
{
	return (size_t)(r - table);
}

const char *routes_service_name(enum route_service s)
{
	if (s < 0 || s >= ROUTE_N_SERVICES)
		return "gateway";
	return service_names[s];
}

/*
 * Matches one segment of a path (seg, n bytes) against one of a pattern
 * (pat, m bytes: "literal", "{name}" or "pre{name}post"). Returns 1 for a
 * literal match, 0 for a parameter (recorded in match), -1 for no match.
 */
static int match_segment(const char *pat, size_t m, const char *seg, size_t n,
			 struct route_match *match)
{
	const char *open = memchr(pat, '{', m);
	const char *close;
	size_t prefix, suffix, k;

	if (!open)
		return m == n && memcmp(pat, seg, n) == 0 ? 1 : -1;
	close = memchr(open, '}', m - (size_t)(open - pat));
	if (!close)
		return -1;
	prefix = (size_t)(open - pat);
	suffix = m - (size_t)(close - pat) - 1;
	if (n < prefix + suffix + 1 || memcmp(seg, pat, prefix) != 0 ||
	    memcmp(seg + n - suffix, close + 1, suffix) != 0)
		return -1;
	if (match->n_params == ROUTE_MAX_PARAMS)
		return -1;
	k = match->n_params++;
	match->params[k].name = open + 1;
	match->params[k].name_len = (size_t)(close - open - 1);
	match->params[k].value = seg + prefix;
	match->params[k].value_len = n - prefix - suffix;
	return 0;
}

/*
 * Whether path matches pattern; *score_out ranks specificity: one bit per
 * literal segment, the first segment the highest.
 */
static bool path_matches(const char *pat, const char *path,
			 struct route_match *match, unsigned *score_out)
{
	unsigned score = 0;
	size_t seg = 0;

	match->n_params = 0;
	if (*pat != '/' || *path != '/')
		return false;
	while (*pat == '/' && *path == '/') {
		size_t m, n;
		int r;

		pat++;
		path++;
		m = strcspn(pat, "/");
		n = strcspn(path, "/");
		if (seg == ROUTE_MAX_SEGMENTS)
			return false;
		r = match_segment(pat, m, path, n, match);
		if (r < 0)
			return false;
		if (r == 1)
			score |= 1u << (ROUTE_MAX_SEGMENTS - 1 - seg);
		seg++;
		pat += m;
		path += n;
	}
	if (*pat || *path)
		return false;
	*score_out = score;
	return true;
}

static void allow_add(char *allow, const char *method)
{
	size_t len = strlen(allow);

	if (strstr(allow, method))
		return;
	if (len + strlen(method) + 3 > ROUTE_ALLOW_MAX)
		return;
	if (len)
		strcat(allow, ", ");
	strcat(allow, method);
}

const struct route *routes_match(const char *method, const char *path,
				 struct route_match *match, char *allow_out)
{
	return routes_match_table(table, N_ROUTES, method, path, match,
				  allow_out);
}

const struct route *routes_match_table(const struct route *routes, size_t n,
				       const char *method, const char *path,
				       struct route_match *match,
				       char *allow_out)
{
	const char *best = NULL;
	const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
	unsigned best_score = 0, score;
	struct route_match scratch;

	allow_out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (path_matches(routes[i].pattern, path, &scratch, &score) &&
		    (!best || score > best_score)) {
			best = routes[i].pattern;
			best_score = score;
		}
	}
	if (!best)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct route *r = &routes[i];

		if (strcmp(r->pattern, best) != 0)
			continue;
		if (strcmp(r->method, want) == 0) {
			path_matches(r->pattern, path, match, &score);
			return r;
		}
		allow_add(allow_out, r->method);
		if (strcmp(r->method, "GET") == 0)
			allow_add(allow_out, "HEAD");
	}
	return NULL;
}

static bool is_param_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* A pattern segment: literal, or one {name} with literal text around. */
static bool segment_is_valid(const char *s, size_t n)
{
	const char *open = memchr(s, '{', n);
	const char *close;

	if (n == 0)
		return false;
	if (!open)
		return !memchr(s, '}', n);
	close = memchr(open, '}', n - (size_t)(open - s));
	if (!close || close == open + 1)
		return false;
	for (const char *c = open + 1; c < close; c++)
		if (!is_param_char(*c))
			return false;
	return !memchr(close + 1, '{', n - (size_t)(close + 1 - s)) &&
	       !memchr(close + 1, '}', n - (size_t)(close + 1 - s)) &&
	       !memchr(s, '}', (size_t)(open - s));
}

bool routes_pattern_is_valid(const char *pattern)
{
	size_t segments = 0, params = 0;
	const char *p = pattern;

	if (*p != '/')
		return false;
	while (*p == '/') {
		size_t n = strcspn(++p, "/");

		if (!segment_is_valid(p, n))
			return false;
		params += memchr(p, '{', n) != NULL;
		segments++;
		p += n;
	}
	return !*p && segments <= ROUTE_MAX_SEGMENTS &&
	       params <= ROUTE_MAX_PARAMS;
}
