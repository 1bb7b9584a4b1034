/* test_http.c - the gateway's HTTP front on a real socket, with no service behind it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "http.h"
#include "log.h"
#include "secure.h"

#define MAX_BODY 1000

static struct http_server *server;
static int port;

static int start(void **state)
{
	struct http_config cfg = {
		.listen_url = "http://127.0.0.1:0",
		.max_body = MAX_BODY,
		.request_timeout_ms = 1000,
	};

	(void)state;
	if (secure_init() != 0 || log_init("test", "err") != 0)
		return -1;
	if (http_server_start(&server, &cfg) != 0)
		return -1;
	port = http_server_port(server);
	return port > 0 ? 0 : -1;
}

static int stop(void **state)
{
	(void)state;
	http_server_free(server);
	return 0;
}

/* Sends request on a new connection and reads until the server closes or
 * falls silent for 1 s; the answer in a malloc'd, NUL-terminated buffer. */
static char *exchange(const char *request, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 1};
	size_t cap = 1 << 16, got = 0;
	char *out = malloc(cap + 1);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	assert_non_null(out);
	assert_true(fd >= 0);
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (size_t sent = 0; sent < len; sent += (size_t)n) {
		n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
		if (n <= 0)
			break;
	}
	while (got < cap && (n = recv(fd, out + got, cap - got, 0)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fd);
	return out;
}

static char *get(const char *text)
{
	return exchange(text, strlen(text));
}

static int status_of(const char *answer)
{
	int status = 0;

	if (sscanf(answer, "HTTP/1.1 %d", &status) != 1)
		return 0;
	return status;
}

static void assert_has(const char *answer, const char *needle)
{
	if (!strstr(answer, needle))
		fail_msg("\"%s\" not in:\n%s", needle, answer);
}

static void test_ping_and_common_headers(void **state)
{
	char *a = get("GET /v1/ping HTTP/1.1\r\nHost: t\r\n"
		      "X-Request-Id: my-id.1\r\nConnection: close\r\n\r\n");

	(void)state;
	assert_int_equal(status_of(a), 200);
	assert_has(a, "\r\n\r\n{\"status\":\"ok\"}");
	assert_has(a, "X-Request-Id: my-id.1\r\n");
	assert_has(a, "X-Content-Type-Options: nosniff\r\n");
	assert_has(a, "X-Frame-Options: DENY\r\n");
	assert_has(a, "Referrer-Policy: no-referrer\r\n");
	assert_has(a, "Content-Security-Policy: default-src 'self'; "
		      "frame-ancestors 'none'\r\n");
	assert_has(a, "Cache-Control: no-store\r\n");
	assert_has(a, "Content-Type: application/json\r\n");
	assert_has(a, " GMT\r\n");
	free(a);
	a = get("GET /v1/ping HTTP/1.1\r\nHost: t\r\nX-Request-Id: bad id\r\n"
		"Connection: close\r\n\r\n");
	assert_int_equal(status_of(a), 200);
	assert_null(strstr(a, "bad id"));
	free(a);
}

static void test_routing_errors(void **state)
{
	char *a;

	(void)state;
	a = get("GET /v1/nowhere HTTP/1.1\r\nHost: t\r\nConnection: close"
		"\r\n\r\n");
	assert_int_equal(status_of(a), 404);
	assert_has(a, "{\"error\":{\"code\":\"not_found\"");
	free(a);
	a = get("DELETE /v1/ping HTTP/1.1\r\nHost: t\r\nConnection: close"
		"\r\n\r\n");
	assert_int_equal(status_of(a), 405);
	assert_has(a, "Allow: GET, HEAD\r\n");
	assert_has(a, "\"code\":\"method_not_allowed\"");
	free(a);
	a = get("OPTIONS /v1/ping HTTP/1.1\r\nHost: t\r\nConnection: close"
		"\r\n\r\n");
	assert_int_equal(status_of(a), 204);
	assert_has(a, "Allow: GET, HEAD\r\n");
	free(a);
	a = get("HEAD /v1/ping HTTP/1.1\r\nHost: t\r\nConnection: close"
		"\r\n\r\n");
	assert_int_equal(status_of(a), 200);
	assert_has(a, "Content-Length: 15\r\n");
	assert_null(strstr(a, "status\":\"ok"));
	free(a);
}

static void test_bodies(void **state)
{
	char big[MAX_BODY + 200];
	char *a;

	(void)state;
	a = get("POST /v1/ping HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain"
		"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
	assert_int_equal(status_of(a), 415);
	free(a);
	a = get("POST /v1/ping HTTP/1.1\r\nHost: t\r\nContent-Type: "
		"application/json\r\nContent-Length: 5\r\nConnection: close"
		"\r\n\r\n{\"a\":");
	assert_int_equal(status_of(a), 400);
	assert_has(a, "\"code\":\"malformed_json\"");
	free(a);
	a = get("PATCH /v1/ping HTTP/1.1\r\nHost: t\r\nContent-Type: "
		"application/json\r\nContent-Length: 2\r\nConnection: close"
		"\r\n\r\n[]");
	assert_int_equal(status_of(a), 400);
	assert_has(a, "\"code\":\"invalid\"");
	free(a);
	/* over the limit: refused unread, connection closed */
	snprintf(big, sizeof(big),
		 "POST /v1/ping HTTP/1.1\r\nHost: t\r\nContent-Type: "
		 "application/json\r\nContent-Length: %d\r\n\r\n",
		 MAX_BODY + 1);
	a = get(big);
	assert_int_equal(status_of(a), 413);
	assert_has(a, "Connection: close\r\n");
	free(a);
	a = get("POST /v1/ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
		"chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
	assert_int_equal(status_of(a), 411);
	free(a);
	a = get("POST /v1/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n"
		"\r\n");
	assert_int_equal(status_of(a), 400);
	free(a);
	/* a valid body reaches the route, which takes only GET */
	a = get("POST /v1/ping HTTP/1.1\r\nHost: t\r\nContent-Type: "
		"application/json; charset=utf-8\r\nContent-Length: 8\r\n"
		"Connection: close\r\n\r\n{\"a\":[]}");
	assert_int_equal(status_of(a), 405);
	free(a);
}

static void test_expect_continue(void **state)
{
	char *a = get("POST /v1/ping HTTP/1.1\r\nHost: t\r\nContent-Type: "
		      "application/json\r\nContent-Length: 2\r\nExpect: "
		      "100-continue\r\nConnection: close\r\n\r\n{}");

	(void)state;
	assert_int_equal(status_of(a), 100);
	assert_has(a, "HTTP/1.1 405 ");
	free(a);
}

static void test_pipelining_keeps_the_connection_in_step(void **state)
{
	char *a = get("POST /v1/ping HTTP/1.1\r\nHost: t\r\nContent-Type: "
		      "text/plain\r\nContent-Length: 3\r\n\r\nabc"
		      "GET /v1/nope HTTP/1.1\r\nHost: t\r\n\r\n"
		      "GET /v1/ping HTTP/1.1\r\nHost: t\r\nConnection: close"
		      "\r\n\r\n");
	char *second, *third;

	(void)state;
	assert_int_equal(status_of(a), 415);
	second = strstr(a + 1, "HTTP/1.1 ");
	assert_non_null(second);
	assert_int_equal(status_of(second), 404);
	third = strstr(second + 1, "HTTP/1.1 ");
	assert_non_null(third);
	assert_int_equal(status_of(third), 200);
	free(a);
}

static void test_services_down(void **state)
{
	char *a;

	(void)state;
	/* no client at all: every service is down at once */
	a = get("GET /v1/health HTTP/1.1\r\nHost: t\r\nConnection: close"
		"\r\n\r\n");
	assert_int_equal(status_of(a), 503);
	assert_has(a, "{\"status\":\"degraded\",\"services\":{\"accounts\":"
		      "{\"status\":\"down\"");
	assert_has(a, "not healthy: accounts, booking, calendar-sync, "
		      "gdpr-retention, notifications");
	free(a);
	a = get("GET /v1/health/booking HTTP/1.1\r\nHost: t\r\nConnection: "
		"close\r\n\r\n");
	assert_int_equal(status_of(a), 503);
	assert_has(a, "\"code\":\"service_unavailable\"");
	free(a);
	a = get("GET /v1/health/booking?x=%zz HTTP/1.1\r\nHost: t\r\n"
		"Connection: close\r\n\r\n");
	assert_int_equal(status_of(a), 400);
	free(a);
}

static void test_metrics(void **state)
{
	char *a = get("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close"
		      "\r\n\r\n");

	(void)state;
	assert_int_equal(status_of(a), 200);
	assert_has(a, "Content-Type: text/plain; version=0.0.4");
	assert_has(a, "creneau_http_requests_total{method=\"GET\",route=\"/v1/"
		      "ping\",status=\"200\"}");
	assert_has(a, "creneau_rpc_errors_total{service=\"booking\","
		      "code=\"unavailable\"}");
	/* this request is in flight; one that just answered may still be
	 * counted until its connection winds down */
	{
		const char *line = strstr(a, "\ncreneau_http_in_flight ");
		long n = -1;

		assert_non_null(line);
		sscanf(line, "\ncreneau_http_in_flight %ld", &n);
		assert_true(n >= 1);
	}
	free(a);
}

static void test_drain(void **state)
{
	char *a;

	(void)state;
	assert_true(http_server_drain(server, 1000));
	a = get("GET /v1/ping HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(status_of(a), 503);
	assert_has(a, "\"code\":\"shutting_down\"");
	assert_has(a, "Connection: close\r\n");
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_and_common_headers),
		cmocka_unit_test(test_routing_errors),
		cmocka_unit_test(test_bodies),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_pipelining_keeps_the_connection_in_step),
		cmocka_unit_test(test_services_down),
		cmocka_unit_test(test_metrics),
		/* last: the server refuses everything afterwards */
		cmocka_unit_test(test_drain),
	};

	return cmocka_run_group_tests(tests, start, stop);
}
