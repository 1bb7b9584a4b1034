/* routes.c - THE table from HTTP method and path to an RPC (or a local handler), and its matcher. */
#include "routes.h"

#include <string.h>

#include "creneau/v1/accounts.pb-c.h"
#include "creneau/v1/notifications.pb-c.h"
#include "creneau/v1/booking.pb-c.h"
#include "creneau/v1/service.pb-c.h"
#include "health.h"
#include "local.h"
#include "metrics.h"
#include "sessions.h"

/* A route answered by an RPC through the generic proxy. */
#define RPC(method, pattern, service, rpc, req, rep, status, auth)             \
	{                                                                      \
		method, pattern, service, rpc, &req##__descriptor,             \
		&rep##__descriptor, status, auth, NULL, false                  \
	}

/* A route the gateway answers itself. */
#define LOCAL(method, pattern, handler)                                        \
	{                                                                      \
		method, pattern, ROUTE_LOCAL, NULL, NULL, NULL, 200,           \
		AUTH_ANYONE, handler, false                                    \
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
	/* accounts (issue 4): sign-up, sessions, profile, directory */
	RPC("POST", "/v1/accounts", ROUTE_ACCOUNTS, "CreateAccount",
	    creneau__v1__create_account_request, creneau__v1__account, 201,
	    AUTH_ANYONE),
	RPC("POST", "/v1/email-verifications/confirm", ROUTE_ACCOUNTS,
	    "ConfirmEmail",
	    creneau__v1__confirm_email_request, creneau__v1__empty, 204,
	    AUTH_ANYONE),
	RPC("POST", "/v1/email-verifications", ROUTE_ACCOUNTS,
	    "ResendVerification",
	    creneau__v1__resend_verification_request, creneau__v1__empty, 202,
	    AUTH_SIGNED_IN),
	{"POST", "/v1/sessions", ROUTE_ACCOUNTS, "CreateSession",
	 &creneau__v1__create_session_request__descriptor,
	 &creneau__v1__create_session_reply__descriptor,
	 201, AUTH_ANYONE, sessions_login, false},
	{"DELETE", "/v1/sessions/current", ROUTE_ACCOUNTS,
	 "DeleteCurrentSession",
	 &creneau__v1__delete_current_session_request__descriptor,
	 &creneau__v1__empty__descriptor,
	 204, AUTH_SIGNED_IN, sessions_logout, false},
	RPC("GET", "/v1/me/sessions", ROUTE_ACCOUNTS, "ListSessions",
	    creneau__v1__list_sessions_request,
	    creneau__v1__list_sessions_reply, 200, AUTH_SIGNED_IN),
	RPC("DELETE", "/v1/me/sessions/{id}", ROUTE_ACCOUNTS, "RevokeSession",
	    creneau__v1__revoke_session_request, creneau__v1__empty, 204,
	    AUTH_SIGNED_IN),
	RPC("POST", "/v1/password-resets", ROUTE_ACCOUNTS,
	    "RequestPasswordReset",
	    creneau__v1__request_password_reset_request,
	    creneau__v1__empty, 202, AUTH_ANYONE),
	RPC("POST", "/v1/password-resets/confirm", ROUTE_ACCOUNTS,
	    "ConfirmPasswordReset",
	    creneau__v1__confirm_password_reset_request,
	    creneau__v1__empty, 204, AUTH_ANYONE),
	RPC("GET", "/v1/me", ROUTE_ACCOUNTS, "GetMe",
	    creneau__v1__get_me_request, creneau__v1__account, 200,
	    AUTH_SIGNED_IN),
	RPC("PATCH", "/v1/me", ROUTE_ACCOUNTS, "UpdateMe",
	    creneau__v1__update_me_request, creneau__v1__account, 200,
	    AUTH_SIGNED_IN),
	RPC("DELETE", "/v1/me", ROUTE_ACCOUNTS, "DeleteMe",
	    creneau__v1__delete_me_request, creneau__v1__empty, 202,
	    AUTH_SIGNED_IN),
	RPC("PUT", "/v1/me/password", ROUTE_ACCOUNTS, "ChangePassword",
	    creneau__v1__change_password_request, creneau__v1__empty, 204,
	    AUTH_SIGNED_IN),
	RPC("GET", "/v1/me/company", ROUTE_ACCOUNTS, "GetCompany",
	    creneau__v1__get_company_request, creneau__v1__company, 200,
	    AUTH_PRACTITIONER),
	RPC("PUT", "/v1/me/company", ROUTE_ACCOUNTS, "PutCompany",
	    creneau__v1__company, creneau__v1__company, 200,
	    AUTH_PRACTITIONER),
	RPC("GET", "/v1/me/practice", ROUTE_ACCOUNTS, "GetPractice",
	    creneau__v1__get_practice_request, creneau__v1__practice, 200,
	    AUTH_PRACTITIONER),
	RPC("PUT", "/v1/me/practice", ROUTE_ACCOUNTS, "PutPractice",
	    creneau__v1__practice, creneau__v1__practice, 200,
	    AUTH_PRACTITIONER),
	RPC("GET", "/v1/practitioners", ROUTE_ACCOUNTS, "ListPractitioners",
	    creneau__v1__list_practitioners_request,
	    creneau__v1__list_practitioners_reply, 200, AUTH_ANYONE),
	RPC("GET", "/v1/practitioners/{id}", ROUTE_ACCOUNTS, "GetPractitioner",
	    creneau__v1__get_practitioner_request,
	    creneau__v1__public_practitioner, 200, AUTH_ANYONE),
	RPC("GET", "/v1/specialties", ROUTE_ACCOUNTS, "ListSpecialties",
	    creneau__v1__list_reference_request,
	    creneau__v1__list_reference_reply, 200, AUTH_ANYONE),
	RPC("GET", "/v1/regions", ROUTE_ACCOUNTS, "ListRegions",
	    creneau__v1__list_reference_request,
	    creneau__v1__list_reference_reply, 200, AUTH_ANYONE),
	RPC("GET", "/v1/me/favorites", ROUTE_ACCOUNTS, "ListFavorites",
	    creneau__v1__list_favorites_request,
	    creneau__v1__list_favorites_reply, 200, AUTH_CLIENT),
	RPC("PUT", "/v1/me/favorites/{practitioner_id}", ROUTE_ACCOUNTS,
	    "PutFavorite",
	    creneau__v1__favorite_request, creneau__v1__empty, 204,
	    AUTH_CLIENT),
	RPC("DELETE", "/v1/me/favorites/{practitioner_id}", ROUTE_ACCOUNTS,
	    "DeleteFavorite",
	    creneau__v1__favorite_request, creneau__v1__empty, 204,
	    AUTH_CLIENT),
	/* notifications (issue 3): contact form and newsletter */
	RPC("POST", "/v1/contact", ROUTE_NOTIFICATIONS, "SubmitContact",
	    creneau__v1__submit_contact_request,
	    creneau__v1__submit_contact_reply, 201, AUTH_ANYONE),
	RPC("POST", "/v1/newsletter/subscriptions", ROUTE_NOTIFICATIONS,
	    "SubscribeNewsletter", creneau__v1__subscribe_newsletter_request,
	    creneau__v1__notifications_empty, 202, AUTH_ANYONE),
	/* a POST, never a GET: mail scanners open links; the mails link to
	 * the web pages below, whose button POSTs here */
	/* API.md's contract: GET confirms (API clients); the mail links to the
	 * page /newsletter-confirm instead, whose button POSTs, so that mail
	 * scanners prefetching links confirm nothing */
	RPC("GET", "/v1/newsletter/confirm", ROUTE_NOTIFICATIONS,
	    "ConfirmNewsletter", creneau__v1__confirm_newsletter_request,
	    creneau__v1__notifications_empty, 200, AUTH_ANYONE),
	RPC("POST", "/v1/newsletter/confirm", ROUTE_NOTIFICATIONS,
	    "ConfirmNewsletter", creneau__v1__confirm_newsletter_request,
	    creneau__v1__notifications_empty, 204, AUTH_ANYONE),
	/* JSON {token} from the web page, or RFC 8058: mail clients POST
	 * List-Unsubscribe=One-Click as a form, the token in the query */
	{"POST", "/v1/newsletter/unsubscribe", ROUTE_NOTIFICATIONS,
	 "UnsubscribeNewsletter",
	 &creneau__v1__unsubscribe_newsletter_request__descriptor,
	 &creneau__v1__notifications_empty__descriptor, 204, AUTH_ANYONE, NULL,
	 true},
	LOCAL("GET", "/v1/openapi.json", local_openapi),
	LOCAL("GET", "/metrics", metrics_handle),
	/* the static web client (services/gateway/web/): not API, not in
	 * docs/openapi.json; the mails of notifications link to these pages */
	LOCAL("GET", "/", local_web_index),
	LOCAL("GET", "/verify-email", local_web_verify_email),
	LOCAL("GET", "/reset-password", local_web_reset_password),
	LOCAL("GET", "/newsletter-confirm", local_web_newsletter_confirm),
	LOCAL("GET", "/newsletter-unsubscribe",
	      local_web_newsletter_unsubscribe),
	LOCAL("GET", "/app.js", local_web_app_js),
	LOCAL("GET", "/app.css", local_web_app_css),
	/* booking (issue 5): offerings, schedule, availability, bookings, client file */
	RPC("GET", "/v1/me/offerings", ROUTE_BOOKING, "ListMyOfferings",
	    creneau__v1__list_my_offerings_request, creneau__v1__list_offerings_reply, 200,
	    AUTH_PRACTITIONER),
	RPC("POST", "/v1/me/offerings", ROUTE_BOOKING, "CreateOffering",
	    creneau__v1__create_offering_request, creneau__v1__offering, 201,
	    AUTH_PRACTITIONER),
	RPC("PATCH", "/v1/me/offerings/{id}", ROUTE_BOOKING, "UpdateOffering",
	    creneau__v1__update_offering_request, creneau__v1__offering, 200,
	    AUTH_PRACTITIONER),
	RPC("DELETE", "/v1/me/offerings/{id}", ROUTE_BOOKING, "DeleteOffering",
	    creneau__v1__delete_offering_request, creneau__v1__delete_offering_reply, 200,
	    AUTH_PRACTITIONER),
	RPC("GET", "/v1/practitioners/{id}/offerings", ROUTE_BOOKING, "ListPractitionerOfferings",
	    creneau__v1__list_practitioner_offerings_request, creneau__v1__list_offerings_reply, 200,
	    AUTH_ANYONE),
	RPC("GET", "/v1/me/schedule", ROUTE_BOOKING, "GetSchedule",
	    creneau__v1__get_schedule_request, creneau__v1__schedule, 200,
	    AUTH_PRACTITIONER),
	RPC("PUT", "/v1/me/schedule", ROUTE_BOOKING, "PutSchedule",
	    creneau__v1__schedule, creneau__v1__schedule, 200,
	    AUTH_PRACTITIONER),
	RPC("GET", "/v1/me/schedule/overrides", ROUTE_BOOKING, "ListOverrides",
	    creneau__v1__list_overrides_request, creneau__v1__list_overrides_reply, 200,
	    AUTH_PRACTITIONER),
	RPC("POST", "/v1/me/schedule/overrides", ROUTE_BOOKING, "CreateOverride",
	    creneau__v1__create_override_request, creneau__v1__schedule_override, 201,
	    AUTH_PRACTITIONER),
	RPC("DELETE", "/v1/me/schedule/overrides/{id}", ROUTE_BOOKING, "DeleteOverride",
	    creneau__v1__delete_override_request, creneau__v1__booking_empty, 204,
	    AUTH_PRACTITIONER),
	RPC("GET", "/v1/practitioners/{id}/availability", ROUTE_BOOKING, "GetAvailability",
	    creneau__v1__get_availability_request, creneau__v1__availability, 200,
	    AUTH_ANYONE),
	RPC("POST", "/v1/bookings", ROUTE_BOOKING, "CreateBooking",
	    creneau__v1__create_booking_request, creneau__v1__booking, 201,
	    AUTH_CLIENT),
	RPC("GET", "/v1/me/bookings", ROUTE_BOOKING, "ListMyBookings",
	    creneau__v1__list_my_bookings_request, creneau__v1__list_bookings_reply, 200,
	    AUTH_SIGNED_IN),
	RPC("GET", "/v1/bookings/{id}", ROUTE_BOOKING, "GetBooking",
	    creneau__v1__booking_id_request, creneau__v1__booking, 200,
	    AUTH_SIGNED_IN),
	RPC("POST", "/v1/bookings/{id}/cancel", ROUTE_BOOKING, "CancelBooking",
	    creneau__v1__cancel_booking_request, creneau__v1__booking, 200,
	    AUTH_SIGNED_IN),
	RPC("POST", "/v1/bookings/{id}/reschedule", ROUTE_BOOKING, "RescheduleBooking",
	    creneau__v1__reschedule_booking_request, creneau__v1__booking, 200,
	    AUTH_SIGNED_IN),
	RPC("POST", "/v1/bookings/{id}/complete", ROUTE_BOOKING, "CompleteBooking",
	    creneau__v1__booking_id_request, creneau__v1__booking, 200,
	    AUTH_PRACTITIONER),
	RPC("POST", "/v1/bookings/{id}/no-show", ROUTE_BOOKING, "NoShowBooking",
	    creneau__v1__booking_id_request, creneau__v1__booking, 200,
	    AUTH_PRACTITIONER),
	RPC("GET", "/v1/me/clients", ROUTE_BOOKING, "ListClients",
	    creneau__v1__list_clients_request, creneau__v1__list_clients_reply, 200,
	    AUTH_PRACTITIONER),
	RPC("GET", "/v1/me/clients/{id}", ROUTE_BOOKING, "GetClient",
	    creneau__v1__client_id_request, creneau__v1__client_record, 200,
	    AUTH_PRACTITIONER),
	RPC("PATCH", "/v1/me/clients/{id}", ROUTE_BOOKING, "UpdateClient",
	    creneau__v1__update_client_request, creneau__v1__client_record, 200,
	    AUTH_PRACTITIONER),
	RPC("DELETE", "/v1/me/clients/{id}", ROUTE_BOOKING, "DeleteClient",
	    creneau__v1__client_id_request, creneau__v1__booking_empty, 204,
	    AUTH_PRACTITIONER),
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
	const char *open, *close;
	size_t prefix, suffix, k;

	/* most segments differ from the first byte (a literal, or the
	 * literal prefix of a parameter) */
	if (m && pat[0] != '{' && (n == 0 || pat[0] != seg[0]))
		return -1;
	open = memchr(pat, '{', m);
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

/* A request path cut into its segments once, before the table is scanned. */
struct segments {
	size_t n;
	const char *s[ROUTE_MAX_SEGMENTS];
	size_t len[ROUTE_MAX_SEGMENTS];
};

/* false when path does not start with '/' or has too many segments */
static bool split_path(const char *path, struct segments *out)
{
	out->n = 0;
	if (*path != '/')
		return false;
	while (*path == '/') {
		size_t n = strcspn(++path, "/");

		if (out->n == ROUTE_MAX_SEGMENTS)
			return false;
		out->s[out->n] = path;
		out->len[out->n++] = n;
		path += n;
	}
	return true;
}

/*
 * Whether path matches pattern; *score_out ranks specificity: one bit per
 * literal segment, the first segment the highest.
 */
static bool path_matches(const char *pat, const struct segments *path,
			 struct route_match *match, unsigned *score_out)
{
	unsigned score = 0;
	size_t seg = 0;

	match->n_params = 0;
	if (*pat != '/')
		return false;
	while (*pat == '/') {
		const char *end = ++pat;
		int r;

		while (*end && *end != '/')
			end++;
		if (seg == path->n)
			return false;
		r = match_segment(pat, (size_t)(end - pat), path->s[seg],
				  path->len[seg], match);
		if (r < 0)
			return false;
		if (r == 1)
			score |= 1u << (ROUTE_MAX_SEGMENTS - 1 - seg);
		seg++;
		pat = end;
	}
	if (*pat || seg != path->n)
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
	const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
	const struct route *found = NULL;
	const char *best = NULL;
	unsigned best_score = 0, score;
	struct route_match scratch;
	struct segments segs;

	allow_out[0] = '\0';
	if (!split_path(path, &segs))
		return NULL;
	/* one pass: the best pattern so far, its route for want, and the
	 * methods it allows otherwise */
	for (size_t i = 0; i < n; i++) {
		const struct route *r = &routes[i];

		if (!path_matches(r->pattern, &segs, &scratch, &score))
			continue;
		if (best && score < best_score)
			continue;
		if (!best || score > best_score) {
			best = r->pattern;
			best_score = score;
			found = NULL;
			allow_out[0] = '\0';
		} else if (strcmp(r->pattern, best) != 0) {
			continue; /* as specific: the first in the table wins */
		}
		if (strcmp(r->method, want) == 0) {
			if (!found) {
				found = r;
				*match = scratch;
			}
			continue;
		}
		allow_add(allow_out, r->method);
		if (strcmp(r->method, "GET") == 0)
			allow_add(allow_out, "HEAD");
	}
	if (found)
		allow_out[0] = '\0';
	return found;
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

	if (strcmp(p, "/") == 0)
		return true; /* the root: one empty segment */
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
