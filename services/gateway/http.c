/* http.c - the gateway's HTTP/1.1 front on nng's server: parse, route, read the body, answer once. */
#include "http.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "arena.h"
#include "auth.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "rpc.h"
#include "secure.h"

#define JSON_TYPE "application/json"
#define EXCHANGE_ARENA_BYTES 4096

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static const char oom_body[] = "{\"error\":{\"code\":\"internal\","
			       "\"message\":\"out of memory\"}}";

struct http_server {
	nng_http_server *server;
	nng_http_handler *handler;
	struct http_config cfg;
	int port;
	atomic_int in_flight;
	atomic_bool draining;
};

struct http_exchange {
	struct http_server *srv;
	nng_aio *aio;	    /* nng's: finished once, with the response */
	nng_http_req *req;  /* nng's; not to be touched after the answer */
	nng_http_conn *conn;
	nng_aio *io;	    /* ours: "100 Continue", then the body */
	nng_iov iov;
	bool continue_sent;
	bool close;	    /* answer with Connection: close */
	struct arena *arena;
	const struct route *route;
	struct route_match match;
	char method[16];
	const char *query;
	char request_id[HTTP_REQUEST_ID_MAX + 1];
	struct auth_principal principal;
	char *body;
	size_t body_len;
	cJSON *input;
	int64_t start_us;
	char allow[ROUTE_ALLOW_MAX];
	const char *reply_headers[HTTP_REPLY_HEADERS_MAX][2]; /* arena copies */
	size_t n_reply_headers;
};

/* The security headers of every answer (Strict-Transport-Security is the
 * TLS proxy's: see docs/gateway.md). */
static const char *const common_headers[][2] = {
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
	{"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"},
	{"Cache-Control", "no-store"},
};

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int http_status_from_error(int code)
{
	switch (code) {
	case ERR_INVALID:
		return 400;
	case ERR_UNAUTHENTICATED:
		return 401;
	case ERR_FORBIDDEN:
		return 403;
	case ERR_NOT_FOUND:
		return 404;
	case ERR_CONFLICT:
		return 409;
	case ERR_TOO_LARGE:
		return 413;
	case ERR_UNSUPPORTED:
		return 415;
	case ERR_RULE:
		return 422;
	case ERR_RATE_LIMITED:
		return 429;
	case ERR_UNAVAILABLE:
	case ERR_TIMEOUT:
		return 503;
	case ERR_PROTOCOL:
		return 502;
	default:
		return 500;
	}
}

/* The error "code" of an HTTP status when nobody named a finer one. */
static const char *default_code(int code)
{
	switch (code) {
	case ERR_UNAVAILABLE:
	case ERR_TIMEOUT:
		return "service_unavailable";
	case ERR_PROTOCOL:
		return "bad_gateway";
	case ERR_NOMEM:
		return "internal";
	default:
		return error_name(code);
	}
}

bool http_request_id_is_sane(const char *id)
{
	size_t n = 0;

	if (!id)
		return false;
	for (; id[n]; n++) {
		char c = id[n];

		if (n == HTTP_REQUEST_ID_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return n > 0;
}

/* Whether ct names the media type type (parameters allowed). */
static bool is_media_type(const char *ct, const char *type)
{
	size_t n = strlen(type);

	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, type, n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

bool http_is_json_type(const char *ct)
{
	return is_media_type(ct, JSON_TYPE);
}

/*
 * A form body, on a route that takes one (RFC 8058 one-click unsubscribe
 * from a mail client): its fields are read like query parameters, after
 * those of the URL, and the JSON input is empty.
 */
static int take_form_body(struct http_exchange *x)
{
	char *body = arena_strndup(x->arena, x->body, x->body_len);

	if (!body || memchr(x->body, '\0', x->body_len))
		return ERR_INVALID;
	x->query = x->query && *x->query
			   ? arena_printf(x->arena, "%s&%s", x->query, body)
			   : body;
	x->input = cJSON_CreateObject();
	return x->query && x->input ? 0 : ERR_NOMEM;
}

/* ---- accessors ---- */

struct arena *http_exchange_arena(struct http_exchange *x)
{
	return x->arena;
}

const char *http_exchange_request_id(struct http_exchange *x)
{
	return x->request_id;
}

const struct route *http_exchange_route(struct http_exchange *x)
{
	return x->route;
}

const struct route_match *http_exchange_match(struct http_exchange *x)
{
	return &x->match;
}

const char *http_exchange_query(struct http_exchange *x)
{
	return x->query;
}

cJSON *http_exchange_input(struct http_exchange *x)
{
	if (!x->input)
		x->input = cJSON_CreateObject();
	return x->input;
}

const char *http_exchange_header(struct http_exchange *x, const char *name)
{
	return nng_http_req_get_header(x->req, name);
}

const char *http_exchange_method(struct http_exchange *x)
{
	return x->method;
}

int http_exchange_reply_header(struct http_exchange *x, const char *name,
			       const char *value)
{
	char *n, *v;

	if (x->n_reply_headers == HTTP_REPLY_HEADERS_MAX)
		return ERR_TOO_LARGE;
	n = arena_strdup(x->arena, name);
	v = arena_strdup(x->arena, value);
	if (!n || !v)
		return ERR_NOMEM;
	x->reply_headers[x->n_reply_headers][0] = n;
	x->reply_headers[x->n_reply_headers][1] = v;
	x->n_reply_headers++;
	return 0;
}

struct auth_principal *http_exchange_principal(struct http_exchange *x)
{
	return &x->principal;
}

struct rpc_client *http_exchange_client(struct http_exchange *x,
					enum route_service s)
{
	if (s < 0 || s >= ROUTE_N_SERVICES)
		return NULL;
	return x->srv->cfg.clients[s];
}

/* One deadline per request, from its arrival: each RPC made for it gets
 * only what is left (at least 1 ms, so that it fails as a timeout). */
int http_exchange_timeout_ms(struct http_exchange *x)
{
	int64_t left = x->srv->cfg.request_timeout_ms -
		       (mono_us() - x->start_us) / 1000;

	return left > 1 ? (int)left : 1;
}

int http_exchange_in_flight(struct http_exchange *x)
{
	return atomic_load(&x->srv->in_flight);
}

/* ---- answering ---- */

static void exchange_free(struct http_exchange *x)
{
	struct http_server *s = x->srv;

	/* we may be in io's own callback: nng's reaper frees it */
	if (x->io)
		nng_aio_reap(x->io);
	cJSON_Delete(x->input);
	arena_free(x->arena);
	free(x);
	atomic_fetch_sub(&s->in_flight, 1);
}

/* Logs and counts the exchange, hands res to nng and frees x. */
static void finish(struct http_exchange *x, nng_http_res *res, int status)
{
	int64_t us = mono_us() - x->start_us;
	const char *route = x->route ? x->route->pattern : "unmatched";

	/* the raw path may carry ids, the query e-mails: only the pattern */
	log_info(x->request_id,
		 "request method=%s route=%s status=%d duration_ms=%.3f",
		 x->method, route, status, (double)us / 1000.0);
	metrics_observe(x->route, status, us);
	nng_aio_set_output(x->aio, 0, res);
	nng_aio_finish(x->aio, 0);
	exchange_free(x);
}

/* Abandons x without an answer: nng closes the connection. */
static void abort_exchange(struct http_exchange *x, int rv)
{
	log_info(x->request_id, "request aborted method=%s route=%s: %s",
		 x->method, x->route ? x->route->pattern : "unmatched",
		 nng_strerror(rv));
	nng_aio_finish(x->aio, rv);
	exchange_free(x);
}

static void http_date(char out[40])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* A response with the common headers, or NULL when out of memory. */
static nng_http_res *new_response(struct http_exchange *x, int status,
				  const char *content_type)
{
	nng_http_res *res;
	char date[40];
	int rv;

	if (nng_http_res_alloc(&res) != 0)
		return NULL;
	http_date(date);
	rv = nng_http_res_set_status(res, (uint16_t)status);
	rv = rv ? rv : nng_http_res_set_header(res, "X-Request-Id", x->request_id);
	rv = rv ? rv : nng_http_res_set_header(res, "Date", date);
	for (size_t i = 0; !rv && i < sizeof(common_headers) /
					      sizeof(common_headers[0]);
	     i++)
		rv = nng_http_res_set_header(res, common_headers[i][0],
					     common_headers[i][1]);
	if (!rv && content_type)
		rv = nng_http_res_set_header(res, "Content-Type", content_type);
	if (!rv && x->close)
		rv = nng_http_res_set_header(res, "Connection", "close");
	if (!rv && status == 405 && x->allow[0])
		rv = nng_http_res_set_header(res, "Allow", x->allow);
	for (size_t i = 0; !rv && i < x->n_reply_headers; i++)
		rv = nng_http_res_set_header(res, x->reply_headers[i][0],
					     x->reply_headers[i][1]);
	if (rv) {
		nng_http_res_free(res);
		return NULL;
	}
	return res;
}

static void reply_bytes(struct http_exchange *x, int status,
			const char *content_type, const void *data, size_t len,
			bool copy)
{
	nng_http_res *res = new_response(x, status, content_type);
	int rv = 0;

	if (res && len)
		rv = copy ? nng_http_res_copy_data(res, data, len)
			  : nng_http_res_set_data(res, data, len);
	if (!res || rv) {
		nng_http_res_free(res);
		abort_exchange(x, NNG_ENOMEM);
		return;
	}
	finish(x, res, status);
}

void http_reply_static(struct http_exchange *x, int status,
		       const char *content_type, const void *data, size_t len)
{
	reply_bytes(x, status, content_type, data, len, false);
}

void http_reply_copy(struct http_exchange *x, int status,
		     const char *content_type, const void *data, size_t len)
{
	reply_bytes(x, status, content_type, data, len, true);
}

void http_reply_json(struct http_exchange *x, int status, cJSON *body)
{
	char *text;

	if (!body) {
		reply_bytes(x, status, NULL, NULL, 0, false);
		return;
	}
	text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (!text) {
		reply_bytes(x, 500, JSON_TYPE, oom_body, sizeof(oom_body) - 1,
			    false);
		return;
	}
	reply_bytes(x, status, JSON_TYPE, text, strlen(text), true);
	cJSON_free(text);
}

/* {"error":{"code","message"}} (malloc'd text), or NULL when out of
 * memory. */
static char *error_text(const char *code, const char *message,
			const char *field)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *error = cJSON_AddObjectToObject(root, "error");
	char *text = NULL;

	if (error && cJSON_AddStringToObject(error, "code", code) &&
	    cJSON_AddStringToObject(error, "message", message) &&
	    (!field || !*field ||
	     cJSON_AddStringToObject(error, "field", field)))
		text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return text;
}

void http_reply_error(struct http_exchange *x, int status, const char *code,
		      const char *message, const char *field)
{
	char *text = error_text(code, message, field);

	if (!text) {
		reply_bytes(x, 500, JSON_TYPE, oom_body, sizeof(oom_body) - 1,
			    false);
		return;
	}
	reply_bytes(x, status, JSON_TYPE, text, strlen(text), true);
	cJSON_free(text);
}

/* Retry-After on a 429 must be set on the response, so it is built here
 * rather than through http_reply_error. */
static void reply_rate_limited(struct http_exchange *x, const char *code,
			       const char *message, int64_t retry_after_s)
{
	char seconds[24];
	nng_http_res *res = new_response(x, 429, JSON_TYPE);
	char *text = error_text(code, message, NULL);

	snprintf(seconds, sizeof(seconds), "%lld",
		 (long long)(retry_after_s > 0 ? retry_after_s : 1));
	if (!res || !text ||
	    nng_http_res_set_header(res, "Retry-After", seconds) != 0 ||
	    nng_http_res_copy_data(res, text, strlen(text)) != 0) {
		cJSON_free(text);
		nng_http_res_free(res);
		abort_exchange(x, NNG_ENOMEM);
		return;
	}
	cJSON_free(text);
	finish(x, res, 429);
}

void http_reply_failure(struct http_exchange *x, int code,
			const struct rpc_error *err)
{
	int status = http_status_from_error(code);
	const char *name = default_code(code);
	const char *message = error_str(code);
	const char *field = NULL;

	if (err && err->error_code[0])
		name = err->error_code;
	/* a 5xx's detail is for the logs (the service logged it) */
	if (err && err->message[0] && status < 500)
		message = err->message;
	if (status >= 500)
		name = default_code(code);
	if (err && err->field[0])
		field = err->field;
	if (status == 429) {
		reply_rate_limited(x, name, message,
				   err ? err->retry_after_s : 0);
		return;
	}
	http_reply_error(x, status, name, message, field);
}

/* ---- the request's way in ---- */

static struct http_exchange *exchange_new(struct http_server *s, nng_aio *aio)
{
	struct http_exchange *x = calloc(1, sizeof(*x));
	const char *id;

	if (!x)
		return NULL;
	x->arena = arena_new(EXCHANGE_ARENA_BYTES);
	if (!x->arena) {
		free(x);
		return NULL;
	}
	x->start_us = mono_us();
	x->srv = s;
	x->aio = aio;
	x->req = nng_aio_get_input(aio, 0);
	x->conn = nng_aio_get_input(aio, 2);
	/* calloc'd: copies of at most size - 1 bytes stay terminated */
	strncpy(x->method, nng_http_req_get_method(x->req),
		sizeof(x->method) - 1);
	id = nng_http_req_get_header(x->req, "X-Request-Id");
	if (http_request_id_is_sane(id))
		memcpy(x->request_id, id, strlen(id));
	else
		secure_uuid(x->request_id);
	return x;
}

/* Splits the request target into the path (returned, in the arena) and
 * x->query; NULL when it is not an origin- or absolute-form target. */
static char *split_target(struct http_exchange *x)
{
	const char *uri = nng_http_req_get_uri(x->req);
	const char *q;

	if (strncasecmp(uri, "http://", 7) == 0 ||
	    strncasecmp(uri, "https://", 8) == 0) {
		uri = strchr(uri, ':') + 3;
		uri += strcspn(uri, "/?");
		if (*uri != '/')
			return NULL;
	}
	if (*uri != '/')
		return NULL;
	q = strchr(uri, '?');
	if (q)
		x->query = arena_strdup(x->arena, q + 1);
	return arena_strndup(x->arena, uri, q ? (size_t)(q - uri) : strlen(uri));
}

bool http_is_safe_method(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
	       strcmp(m, "OPTIONS") == 0;
}

static void on_auth(struct http_exchange *x, int rc)
{
	if (!rc)
		rc = auth_check(x->route->auth, &x->principal);
	if (rc) {
		http_reply_failure(x, rc, NULL);
		return;
	}
	if (x->route->handler)
		x->route->handler(x);
	else
		proxy_handle(x);
}

/* Answers a request no route took: 404, 405 with Allow, or OPTIONS. */
static void reply_unrouted(struct http_exchange *x)
{
	nng_http_res *res;

	if (!x->allow[0]) {
		http_reply_error(x, 404, "not_found", "no such endpoint", NULL);
		return;
	}
	if (strcmp(x->method, "OPTIONS") != 0) {
		http_reply_error(x, 405, "method_not_allowed",
				 "this endpoint does not take this method",
				 NULL);
		return;
	}
	res = new_response(x, 204, NULL);
	if (!res || nng_http_res_set_header(res, "Allow", x->allow) != 0) {
		nng_http_res_free(res);
		abort_exchange(x, NNG_ENOMEM);
		return;
	}
	finish(x, res, 204);
}

/* Routes, or answers the checks that come after the body. */
static void dispatch(struct http_exchange *x)
{
	if (!x->route)
		reply_unrouted(x);
	else
		auth_resolve(x, on_auth);
}

/*
 * The body is in. Every body of an unsafe method must be a JSON object,
 * whatever the route (the API takes nothing else): 415 for another type,
 * 400 when it does not parse. Then the route decides.
 */
static void body_done(struct http_exchange *x)
{
	const char *ct, *end = NULL;

	if (x->body_len == 0 || http_is_safe_method(x->method)) {
		dispatch(x);
		return;
	}
	ct = nng_http_req_get_header(x->req, "Content-Type");
	if (x->route && x->route->form_body &&
	    is_media_type(ct, "application/x-www-form-urlencoded")) {
		if (take_form_body(x))
			goto out_malformed;
		dispatch(x);
		return;
	}
	if (!http_is_json_type(ct)) {
		http_reply_error(x, 415, "unsupported_media_type",
				 "the body must be application/json", NULL);
		return;
	}
	if (memchr(x->body, '\0', x->body_len))
		goto out_malformed;
	x->input = cJSON_ParseWithLengthOpts(x->body, x->body_len, &end, 0);
	if (!x->input)
		goto out_malformed;
	while (end < x->body + x->body_len &&
	       (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (end != x->body + x->body_len)
		goto out_malformed;
	if (!cJSON_IsObject(x->input)) {
		http_reply_error(x, 400, "invalid",
				 "the body must be a JSON object", NULL);
		return;
	}
	dispatch(x);
	return;

out_malformed:
	http_reply_error(x, 400, "malformed_json", "the body is not valid JSON",
			 NULL);
}

static void on_io(void *arg)
{
	struct http_exchange *x = arg;
	int rv = nng_aio_result(x->io);

	if (rv == NNG_ETIMEDOUT) {
		x->close = true;
		http_reply_error(x, 408, "request_timeout",
				 "the body did not arrive in time", NULL);
		return;
	}
	if (rv) {
		abort_exchange(x, rv);
		return;
	}
	if (!x->continue_sent) {
		/* "100 Continue" is out: now the body */
		x->continue_sent = true;
		x->iov.iov_buf = x->body;
		x->iov.iov_len = x->body_len;
		nng_aio_set_iov(x->io, 1, &x->iov);
		nng_http_conn_read_all(x->conn, x->io);
		return;
	}
	body_done(x);
}

/* Parses Content-Length strictly (digits only); false if malformed. */
static bool parse_length(const char *text, size_t *out)
{
	size_t n = 0;

	if (!*text)
		return false;
	for (; *text; text++) {
		if (*text < '0' || *text > '9' || n > SIZE_MAX / 10 - 1)
			return false;
		n = n * 10 + (size_t)(*text - '0');
	}
	*out = n;
	return true;
}

/* Reads the announced body (answering "100 Continue" first when asked),
 * then goes on with body_done. */
static void read_body(struct http_exchange *x)
{
	const char *te = nng_http_req_get_header(x->req, "Transfer-Encoding");
	const char *cl = nng_http_req_get_header(x->req, "Content-Length");
	const char *expect = nng_http_req_get_header(x->req, "Expect");
	size_t len = 0;

	if (te) {
		/* nng does not decode chunked requests: the bytes would be
		 * read as the next request, so refuse and close */
		x->close = true;
		http_reply_error(x, 411, "length_required",
				 "send the body with a Content-Length", NULL);
		return;
	}
	if (cl && !parse_length(cl, &len)) {
		x->close = true;
		http_reply_error(x, 400, "invalid", "bad Content-Length", NULL);
		return;
	}
	if (len > x->srv->cfg.max_body) {
		/* the body stays unread: the connection cannot be reused */
		x->close = true;
		http_reply_error(x, 413, "too_large",
				 "the body is larger than the limit", NULL);
		return;
	}
	if (len == 0) {
		body_done(x);
		return;
	}
	x->body = arena_alloc(x->arena, len + 1);
	if (!x->body || nng_aio_alloc(&x->io, on_io, x) != 0) {
		x->close = true;
		http_reply_failure(x, ERR_NOMEM, NULL);
		return;
	}
	x->body_len = len;
	nng_aio_set_timeout(x->io, HTTP_BODY_TIMEOUT_MS);
	if (expect && strcasecmp(expect, "100-continue") == 0 &&
	    strcmp(nng_http_req_get_version(x->req), "HTTP/1.1") == 0) {
		/* continue_sent stays false until this write is done */
		x->iov.iov_buf = (void *)(uintptr_t)continue_line;
		x->iov.iov_len = sizeof(continue_line) - 1;
		nng_aio_set_iov(x->io, 1, &x->iov);
		nng_http_conn_write_all(x->conn, x->io);
		return;
	}
	x->continue_sent = true;
	x->iov.iov_buf = x->body;
	x->iov.iov_len = len;
	nng_aio_set_iov(x->io, 1, &x->iov);
	nng_http_conn_read_all(x->conn, x->io);
}

/* nng's handler: one call per request, on an nng thread. */
static void on_request(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	struct http_server *s = nng_http_handler_get_data(h);
	struct http_exchange *x;
	char *path;

	atomic_fetch_add(&s->in_flight, 1);
	x = exchange_new(s, aio);
	if (!x) {
		atomic_fetch_sub(&s->in_flight, 1);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	if (atomic_load(&s->draining)) {
		x->close = true;
		http_reply_error(x, 503, "shutting_down",
				 "the gateway is restarting; retry", NULL);
		return;
	}
	path = split_target(x);
	if (!path) {
		x->close = true;
		http_reply_error(x, 400, "invalid", "bad request target", NULL);
		return;
	}
	/* the route is found now, answered after the body is read: 404
	 * and 405 leave the connection usable */
	x->route = routes_match(x->method, path, &x->match, x->allow);
	read_body(x);
}

/* ---- the server ---- */

static int listen_port(nng_http_server *server)
{
	nng_sockaddr sa;

	if (nng_http_server_get_addr(server, &sa) != 0)
		return -1;
	if (sa.s_family == NNG_AF_INET)
		return ntohs(sa.s_in.sa_port);
	if (sa.s_family == NNG_AF_INET6)
		return ntohs(sa.s_in6.sa_port);
	return -1;
}

static int add_handler(struct http_server *s)
{
	int rv;

	/* one handler for the whole tree and every method: routes.c routes */
	rv = nng_http_handler_alloc(&s->handler, "/", on_request);
	if (rv)
		return rv;
	if ((rv = nng_http_handler_set_method(s->handler, NULL)) != 0 ||
	    (rv = nng_http_handler_set_tree(s->handler)) != 0 ||
	    /* we read bodies ourselves, to answer 413 rather than nng's 400 */
	    (rv = nng_http_handler_collect_body(s->handler, false, 0)) != 0 ||
	    (rv = nng_http_handler_set_data(s->handler, s, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(s->server, s->handler)) != 0) {
		nng_http_handler_free(s->handler);
		s->handler = NULL;
	}
	return rv;
}

int http_server_start(struct http_server **out, const struct http_config *cfg)
{
	struct http_server *s;
	nng_url *url;
	int rv, rc = ERR_UNAVAILABLE;

	*out = NULL;
	if ((rv = nng_url_parse(&url, cfg->listen_url)) != 0) {
		log_err(NULL, "bad listen URL url=%s: %s", cfg->listen_url,
			nng_strerror(rv));
		return ERR_INVALID;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = ERR_NOMEM;
		goto out_free_url;
	}
	s->cfg = *cfg;
	atomic_init(&s->in_flight, 0);
	atomic_init(&s->draining, false);
	if ((rv = nng_http_server_hold(&s->server, url)) != 0) {
		log_err(NULL, "http server not created url=%s: %s",
			cfg->listen_url, nng_strerror(rv));
		goto out_free_server;
	}
	if ((rv = add_handler(s)) != 0) {
		log_err(NULL, "http handler not added: %s", nng_strerror(rv));
		goto out_release;
	}
	if ((rv = nng_http_server_start(s->server)) != 0) {
		log_err(NULL, "http server not started url=%s: %s",
			cfg->listen_url, nng_strerror(rv));
		goto out_release;
	}
	s->port = listen_port(s->server);
	nng_url_free(url);
	*out = s;
	return 0;

out_release:
	/* releasing the server frees the handlers it holds */
	nng_http_server_release(s->server);
out_free_server:
	free(s);
out_free_url:
	nng_url_free(url);
	return rc;
}

int http_server_port(struct http_server *s)
{
	return s->port;
}

bool http_server_drain(struct http_server *s, int timeout_ms)
{
	struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
	int64_t deadline = mono_us() + (int64_t)timeout_ms * 1000;

	atomic_store(&s->draining, true);
	while (atomic_load(&s->in_flight) > 0) {
		if (mono_us() >= deadline)
			return false;
		nanosleep(&pause, NULL);
	}
	return true;
}

void http_server_free(struct http_server *s)
{
	struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};

	if (!s)
		return;
	atomic_store(&s->draining, true);
	/* closes every connection: bodies being read are abandoned */
	nng_http_server_stop(s->server);
	/* what is left waits on an RPC, which ends by its deadline */
	while (atomic_load(&s->in_flight) > 0)
		nanosleep(&pause, NULL);
	nng_http_server_release(s->server);
	free(s);
}
