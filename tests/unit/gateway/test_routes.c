/* test_routes.c - the gateway's route table and matcher, its OpenAPI document, and the error->HTTP mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "arena.h"
#include "auth.h"
#include "error.h"
#include "http.h"
#include "metrics.h"
#include "openapi.h"
#include "query.h"
#include "routes.h"

static void dummy(struct http_exchange *x)
{
	(void)x;
}

/* A table exercising what the real one does not use yet. */
static const struct route sample[] = {
    {"GET", "/v1/practitioners", ROUTE_LOCAL, NULL, NULL, NULL, 200,
     AUTH_ANYONE, dummy, false},
    {"GET", "/v1/practitioners/{id}", ROUTE_LOCAL, NULL, NULL, NULL, 200,
     AUTH_ANYONE, dummy, false},
    {"GET", "/v1/practitioners/{id}/reviews", ROUTE_LOCAL, NULL, NULL, NULL,
     200, AUTH_ANYONE, dummy, false},
    {"GET", "/v1/me", ROUTE_LOCAL, NULL, NULL, NULL, 200, AUTH_SIGNED_IN,
     dummy, false},
    {"PATCH", "/v1/me", ROUTE_LOCAL, NULL, NULL, NULL, 200, AUTH_SIGNED_IN,
     dummy, false},
    {"DELETE", "/v1/me", ROUTE_LOCAL, NULL, NULL, NULL, 202, AUTH_SIGNED_IN,
     dummy, false},
    {"DELETE", "/v1/sessions/current", ROUTE_LOCAL, NULL, NULL, NULL, 204,
     AUTH_SIGNED_IN, dummy, false},
    {"GET", "/v1/sessions/{id}", ROUTE_LOCAL, NULL, NULL, NULL, 200,
     AUTH_SIGNED_IN, dummy, false},
    {"GET", "/v1/ical/{secret}.ics", ROUTE_LOCAL, NULL, NULL, NULL, 200,
     AUTH_ANYONE, dummy, false},
    {"PUT", "/v1/me/favorites/{practitioner_id}", ROUTE_LOCAL, NULL, NULL, NULL,
     204, AUTH_CLIENT, dummy, false},
    {"GET", "/v1/threads/{id}/messages/{message_id}", ROUTE_LOCAL, NULL, NULL,
     NULL, 200, AUTH_SIGNED_IN, dummy, false},
};
#define N_SAMPLE (sizeof(sample) / sizeof(sample[0]))

static const struct route *sample_match(const char *method, const char *path,
					struct route_match *m, char *allow)
{
	return routes_match_table(sample, N_SAMPLE, method, path, m, allow);
}

static void assert_param(const struct route_match *m, size_t i,
			 const char *name, const char *value)
{
	assert_true(i < m->n_params);
	assert_int_equal(m->params[i].name_len, strlen(name));
	assert_memory_equal(m->params[i].name, name, strlen(name));
	assert_int_equal(m->params[i].value_len, strlen(value));
	assert_memory_equal(m->params[i].value, value, strlen(value));
}

/* ---- matching ---- */

static void test_literal_and_params(void **state)
{
	struct route_match m;
	char allow[ROUTE_ALLOW_MAX];
	const struct route *r;

	(void)state;
	r = sample_match("GET", "/v1/practitioners", &m, allow);
	assert_ptr_equal(r, &sample[0]);
	assert_int_equal(m.n_params, 0);
	r = sample_match("GET", "/v1/practitioners/p-42", &m, allow);
	assert_ptr_equal(r, &sample[1]);
	assert_param(&m, 0, "id", "p-42");
	r = sample_match("GET", "/v1/practitioners/a%2Fb/reviews", &m, allow);
	assert_ptr_equal(r, &sample[2]);
	assert_param(&m, 0, "id", "a%2Fb");
	r = sample_match("GET", "/v1/threads/t1/messages/m2", &m, allow);
	assert_ptr_equal(r, &sample[10]);
	assert_param(&m, 0, "id", "t1");
	assert_param(&m, 1, "message_id", "m2");
}

static void test_suffix_segment(void **state)
{
	struct route_match m;
	char allow[ROUTE_ALLOW_MAX];

	(void)state;
	assert_ptr_equal(sample_match("GET", "/v1/ical/s3cr3t.ics", &m, allow),
			 &sample[8]);
	assert_param(&m, 0, "secret", "s3cr3t");
	/* the parameter may not be empty, the suffix must be there */
	assert_null(sample_match("GET", "/v1/ical/.ics", &m, allow));
	assert_null(sample_match("GET", "/v1/ical/s3cr3t", &m, allow));
	assert_null(sample_match("GET", "/v1/ical/s3cr3t.icsx", &m, allow));
}

static void test_literal_beats_parameter(void **state)
{
	struct route_match m;
	char allow[ROUTE_ALLOW_MAX];

	(void)state;
	/* /v1/sessions/current is literal: DELETE there, not GET {id} */
	assert_ptr_equal(
	    sample_match("DELETE", "/v1/sessions/current", &m, allow),
	    &sample[6]);
	assert_null(sample_match("GET", "/v1/sessions/current", &m, allow));
	assert_string_equal(allow, "DELETE");
	assert_ptr_equal(sample_match("GET", "/v1/sessions/s1", &m, allow),
			 &sample[7]);
	assert_param(&m, 0, "id", "s1");
}

static void test_404_and_405(void **state)
{
	struct route_match m;
	char allow[ROUTE_ALLOW_MAX];
	static const char *const unknown[] = {
	    "/v1/practitioners/",
	    "/v1/practitioners//reviews",
	    "//v1/practitioners",
	    "/v1/practitionersx",
	    "/v1",
	    "/",
	    "",
	    "v1/me",
	    "/v1/me/",
	    "/v1/me/x",
	    "/V1/me",
	    "/v1/practitioners/a/reviews/b",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_null(sample_match("GET", unknown[i], &m, allow));
		assert_string_equal(allow, "");
	}
	assert_null(sample_match("POST", "/v1/me", &m, allow));
	assert_string_equal(allow, "GET, HEAD, PATCH, DELETE");
	assert_null(sample_match("BREW", "/v1/me", &m, allow));
	assert_string_equal(allow, "GET, HEAD, PATCH, DELETE");
	assert_ptr_equal(sample_match("HEAD", "/v1/me", &m, allow), &sample[3]);
	assert_null(sample_match("GET", "/v1/me/favorites/p1", &m, allow));
	assert_string_equal(allow, "PUT");
}

static void test_hostile_paths(void **state)
{
	struct route_match m;
	char allow[ROUTE_ALLOW_MAX];
	size_t n = 100000;
	char *path = malloc(n + 1);

	(void)state;
	for (size_t i = 0; i < n; i++)
		path[i] = i % 2 ? 'a' : '/';
	path[n] = '\0';
	assert_null(routes_match("GET", path, &m, allow));
	memset(path, '/', n);
	assert_null(routes_match("GET", path, &m, allow));
	free(path);
}

/* ---- the real table ---- */

static void test_table_is_well_formed(void **state)
{
	size_t n;
	const struct route *t = routes_table(&n);

	(void)state;
	assert_true(n > 0 && n <= METRICS_MAX_ROUTES);
	for (size_t i = 0; i < n; i++) {
		const struct route *r = &t[i];

		if (!routes_pattern_is_valid(r->pattern))
			fail_msg("bad pattern %s", r->pattern);
		assert_true(strcmp(r->method, "GET") == 0 ||
			    strcmp(r->method, "POST") == 0 ||
			    strcmp(r->method, "PUT") == 0 ||
			    strcmp(r->method, "PATCH") == 0 ||
			    strcmp(r->method, "DELETE") == 0);
		assert_true(r->status >= 200 && r->status < 300);
		if (!r->handler) {
			assert_true(r->service >= 0 &&
				    r->service < ROUTE_N_SERVICES);
			assert_non_null(r->rpc);
			assert_non_null(r->request);
			assert_non_null(r->reply);
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(t[j].method, r->method) == 0 &&
			    strcmp(t[j].pattern, r->pattern) == 0)
				fail_msg("%s %s twice", r->method, r->pattern);
		assert_int_equal(routes_index(r), i);
	}
}

static void test_table_routes(void **state)
{
	struct route_match m;
	char allow[ROUTE_ALLOW_MAX];
	const struct route *r;

	(void)state;
	r = routes_match("GET", "/v1/health/calendar-sync", &m, allow);
	assert_non_null(r);
	assert_int_equal(r->service, ROUTE_CALENDAR_SYNC);
	assert_string_equal(r->rpc, "Health");
	assert_null(r->handler);
	r = routes_match("GET", "/v1/health", &m, allow);
	assert_non_null(r);
	assert_non_null(r->handler);
	assert_non_null(routes_match("GET", "/v1/ping", &m, allow));
	assert_non_null(routes_match("GET", "/metrics", &m, allow));
	assert_non_null(routes_match("GET", "/v1/openapi.json", &m, allow));
	r = routes_match("GET", "/", &m, allow);
	assert_non_null(r);
	assert_non_null(r->handler);
	assert_non_null(routes_match("HEAD", "/verify-email", &m, allow));
	assert_non_null(routes_match("GET", "/reset-password", &m, allow));
	assert_non_null(routes_match("GET", "/app.js", &m, allow));
	assert_null(routes_match("GET", "/verify-email/x", &m, allow));
	assert_null(routes_match("GET", "//", &m, allow));
	assert_null(routes_match("DELETE", "/v1/ping", &m, allow));
	assert_string_equal(allow, "GET, HEAD");
}

static void test_pattern_validation(void **state)
{
	static const char *const bad[] = {
	    "",		  "v1",	       "/v1/",	    "/v1//x",
	    "/v1/{}",	  "/v1/{a",    "/v1/a}",    "/v1/{A}",
	    "/v1/{a}{b}", "/v1/{a-b}", "/v1/x}{a}", "/v1/{a}}",
	};
	static const char *const good[] = {
	    "/", "/v1", "/v1/{id}", "/v1/ical/{secret}.ics", "/v1/a/{b_2}/c"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (routes_pattern_is_valid(bad[i]))
			fail_msg("accepted %s", bad[i]);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!routes_pattern_is_valid(good[i]))
			fail_msg("refused %s", good[i]);
}

/* Every route is documented in docs/openapi.json, and every documented
 * operation is routed. */
static void test_openapi_matches_table(void **state)
{
	static const char *const methods[] = {"get", "post", "put", "patch",
					      "delete"};
	cJSON *doc =
	    cJSON_ParseWithLength((const char *)openapi_json, openapi_json_len);
	cJSON *paths, *path;
	size_t n;
	const struct route *t = routes_table(&n);

	(void)state;
	assert_non_null(doc);
	assert_string_equal(cJSON_GetObjectItem(doc, "openapi")->valuestring,
			    "3.1.0");
	paths = cJSON_GetObjectItem(doc, "paths");
	assert_non_null(paths);
	for (size_t i = 0; i < n; i++) {
		char lower[8];
		size_t k;

		/* only the API is documented: the static pages of
		 * services/gateway/web are not */
		if (strncmp(t[i].pattern, "/v1/", 4) != 0 &&
		    strcmp(t[i].pattern, "/metrics") != 0)
			continue;
		for (k = 0; t[i].method[k] && k < sizeof(lower) - 1; k++)
			lower[k] = (char)(t[i].method[k] - 'A' + 'a');
		lower[k] = '\0';
		path = cJSON_GetObjectItemCaseSensitive(paths, t[i].pattern);
		if (!path || !cJSON_GetObjectItemCaseSensitive(path, lower))
			fail_msg("%s %s not in docs/openapi.json", t[i].method,
				 t[i].pattern);
	}
	cJSON_ArrayForEach(path, paths)
	{
		for (size_t j = 0; j < 5; j++) {
			struct route_match m;
			char allow[ROUTE_ALLOW_MAX], upper[8];
			const struct route *r;
			size_t k;

			if (!cJSON_GetObjectItemCaseSensitive(path, methods[j]))
				continue;
			for (k = 0; methods[j][k]; k++)
				upper[k] = (char)(methods[j][k] - 'a' + 'A');
			upper[k] = '\0';
			r = routes_match(upper, path->string, &m, allow);
			if (!r || strcmp(r->pattern, path->string) != 0)
				fail_msg("documented %s %s is not routed",
					 upper, path->string);
		}
	}
	cJSON_Delete(doc);
}

/* ---- the one error mapping, and the small checks ---- */

static void test_error_mapping(void **state)
{
	(void)state;
	assert_int_equal(http_status_from_error(ERR_INVALID), 400);
	assert_int_equal(http_status_from_error(ERR_UNAUTHENTICATED), 401);
	assert_int_equal(http_status_from_error(ERR_FORBIDDEN), 403);
	assert_int_equal(http_status_from_error(ERR_NOT_FOUND), 404);
	assert_int_equal(http_status_from_error(ERR_CONFLICT), 409);
	assert_int_equal(http_status_from_error(ERR_TOO_LARGE), 413);
	assert_int_equal(http_status_from_error(ERR_UNSUPPORTED), 415);
	assert_int_equal(http_status_from_error(ERR_RULE), 422);
	assert_int_equal(http_status_from_error(ERR_RATE_LIMITED), 429);
	assert_int_equal(http_status_from_error(ERR_UNAVAILABLE), 503);
	assert_int_equal(http_status_from_error(ERR_TIMEOUT), 503);
	assert_int_equal(http_status_from_error(ERR_INTERNAL), 500);
	assert_int_equal(http_status_from_error(ERR_NOMEM), 500);
	assert_int_equal(http_status_from_error(ERR_PROTOCOL), 502);
	assert_int_equal(http_status_from_error(-999), 500);
	assert_int_equal(http_status_from_error(0), 500);
}

static void test_request_ids(void **state)
{
	char long_id[HTTP_REQUEST_ID_MAX + 2];

	(void)state;
	assert_true(http_request_id_is_sane("abc-DEF_1.2"));
	assert_false(http_request_id_is_sane(NULL));
	assert_false(http_request_id_is_sane(""));
	assert_false(http_request_id_is_sane("a b"));
	assert_false(http_request_id_is_sane("a\nb"));
	assert_false(http_request_id_is_sane("a\"b"));
	assert_false(http_request_id_is_sane("caf\xc3\xa9"));
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[HTTP_REQUEST_ID_MAX] = '\0';
	assert_true(http_request_id_is_sane(long_id));
	long_id[HTTP_REQUEST_ID_MAX] = 'a';
	long_id[HTTP_REQUEST_ID_MAX + 1] = '\0';
	assert_false(http_request_id_is_sane(long_id));
}

static void test_json_type(void **state)
{
	(void)state;
	assert_true(http_is_json_type("application/json"));
	assert_true(http_is_json_type("Application/JSON"));
	assert_true(http_is_json_type("application/json; charset=utf-8"));
	assert_true(http_is_json_type(" application/json"));
	assert_false(http_is_json_type(NULL));
	assert_false(http_is_json_type(""));
	assert_false(http_is_json_type("text/plain"));
	assert_false(http_is_json_type("application/jsonp"));
	assert_false(http_is_json_type("application/json-seq"));
	assert_false(http_is_json_type("multipart/form-data"));
}

static void test_query(void **state)
{
	struct arena *a = arena_new(0);
	struct query_param *q;
	size_t n;
	char *out;

	(void)state;
	assert_int_equal(query_parse(a, "a=1&b=x%20y+z&&c&=v&d=", &q, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(q[0].name, "a");
	assert_string_equal(q[0].value, "1");
	assert_string_equal(q[1].value, "x y z");
	assert_string_equal(q[2].name, "c");
	assert_string_equal(q[2].value, "");
	assert_string_equal(q[3].name, "d");
	assert_int_equal(query_parse(a, NULL, &q, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(query_parse(a, "a=%4", &q, &n), ERR_INVALID);
	assert_int_equal(query_parse(a, "a=%zz", &q, &n), ERR_INVALID);
	assert_int_equal(query_parse(a, "a=%00", &q, &n), ERR_INVALID);
	assert_int_equal(query_parse(a, "a%=1", &q, &n), ERR_INVALID);
	{
		char many[QUERY_MAX_PARAMS * 4 + 8] = "";

		for (int i = 0; i <= QUERY_MAX_PARAMS; i++)
			strcat(many, "a=1&");
		assert_int_equal(query_parse(a, many, &q, &n), ERR_TOO_LARGE);
	}
	assert_int_equal(query_decode(a, "a+b%2Fc", 7, false, &out), 0);
	assert_string_equal(out, "a+b/c");
	assert_int_equal(query_decode(a, "%C3%A9", 6, false, &out), 0);
	assert_string_equal(out, "\xc3\xa9");
	assert_int_equal(query_decode(a, "%", 1, false, &out), ERR_INVALID);
	assert_int_equal(query_decode(a, "ab%2", 4, false, &out), ERR_INVALID);
	arena_free(a);
}

static void test_auth_check(void **state)
{
	struct auth_principal anon = {0};
	struct auth_principal client = {"a1", CRENEAU__V1__ROLE__ROLE_CLIENT,
					"s1"};
	struct auth_principal admin = {"a2", CRENEAU__V1__ROLE__ROLE_ADMIN,
				       "s2"};

	(void)state;
	assert_int_equal(auth_check(AUTH_ANYONE, &anon), 0);
	assert_int_equal(auth_check(AUTH_SIGNED_IN, &anon),
			 ERR_UNAUTHENTICATED);
	assert_int_equal(auth_check(AUTH_ADMIN, &anon), ERR_UNAUTHENTICATED);
	assert_int_equal(auth_check(AUTH_SIGNED_IN, &client), 0);
	assert_int_equal(auth_check(AUTH_CLIENT, &client), 0);
	assert_int_equal(auth_check(AUTH_PRACTITIONER, &client), ERR_FORBIDDEN);
	assert_int_equal(auth_check(AUTH_ADMIN, &client), ERR_FORBIDDEN);
	assert_int_equal(auth_check(AUTH_ADMIN, &admin), 0);
	assert_int_equal(auth_check(AUTH_PRACTITIONER, &admin), ERR_FORBIDDEN);
}

static void test_metrics_text(void **state)
{
	size_t n;
	const struct route *t = routes_table(&n);
	char *text;
	size_t len;

	(void)state;
	metrics_observe(&t[0], 200, 1500);
	metrics_observe(&t[0], 200, 20000000);
	metrics_observe(NULL, 404, 10);
	metrics_observe(&t[1], 299, 10);
	metrics_rpc_error(ROUTE_BOOKING, ERR_TIMEOUT);
	metrics_rpc_error(ROUTE_BOOKING, -77);
	assert_int_equal(metrics_render(&text, &len, 3), 0);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "# TYPE creneau_http_requests_total "
				     "counter\n"));
	assert_non_null(strstr(
	    text, "creneau_http_requests_total{method=\"GET\",route=\"/v1/"
		  "ping\",status=\"200\"} 2\n"));
	assert_non_null(strstr(text, "route=\"unmatched\",status=\"404\"} 1"));
	assert_non_null(strstr(text, "status=\"other\"} 1"));
	assert_non_null(
	    strstr(text, "creneau_http_request_duration_seconds_bucket{method="
			 "\"GET\",route=\"/v1/ping\",le=\"0.001\"} 0\n"));
	assert_non_null(
	    strstr(text, "creneau_http_request_duration_seconds_bucket{method="
			 "\"GET\",route=\"/v1/ping\",le=\"0.0025\"} 1\n"));
	assert_non_null(
	    strstr(text, "creneau_http_request_duration_seconds_bucket{method="
			 "\"GET\",route=\"/v1/ping\",le=\"10\"} 1\n"));
	assert_non_null(
	    strstr(text, "creneau_http_request_duration_seconds_bucket{method="
			 "\"GET\",route=\"/v1/ping\",le=\"+Inf\"} 2\n"));
	assert_non_null(
	    strstr(text, "creneau_http_request_duration_seconds_count{method="
			 "\"GET\",route=\"/v1/ping\"} 2\n"));
	assert_non_null(strstr(text, "creneau_rpc_errors_total{service="
				     "\"booking\",code=\"timeout\"} 1\n"));
	assert_non_null(strstr(text, "code=\"other\"} 1\n"));
	assert_non_null(strstr(text, "creneau_http_in_flight 3\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_literal_and_params),
	    cmocka_unit_test(test_suffix_segment),
	    cmocka_unit_test(test_literal_beats_parameter),
	    cmocka_unit_test(test_404_and_405),
	    cmocka_unit_test(test_hostile_paths),
	    cmocka_unit_test(test_table_is_well_formed),
	    cmocka_unit_test(test_table_routes),
	    cmocka_unit_test(test_pattern_validation),
	    cmocka_unit_test(test_openapi_matches_table),
	    cmocka_unit_test(test_error_mapping),
	    cmocka_unit_test(test_request_ids),
	    cmocka_unit_test(test_json_type),
	    cmocka_unit_test(test_query),
	    cmocka_unit_test(test_auth_check),
	    cmocka_unit_test(test_metrics_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
