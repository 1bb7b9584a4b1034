/* http.h - the gateway's HTTP/1.1 front on nng's server: one exchange per request, answered asynchronously. */
#ifndef GATEWAY_HTTP_H
#define GATEWAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "error.h"
#include "routes.h"

struct arena;
struct rpc_client;
struct rpc_error;
struct http_server;
struct http_exchange; /* one request being answered */

/* The longest X-Request-Id taken from a client. */
#define HTTP_REQUEST_ID_MAX 64
/* How long a client may take to send a body it announced. */
#define HTTP_BODY_TIMEOUT_MS 30000

struct http_config {
	const char *listen_url; /* "http://127.0.0.1:8080" */
	size_t max_body;	/* bytes; a larger Content-Length gets 413 */
	int request_timeout_ms; /* deadline of each RPC */
	/* borrowed for the server's lifetime; NULL only in tests */
	struct rpc_client *clients[ROUTE_N_SERVICES];
};

/*
 * http_server_start - listens on cfg->listen_url and serves the route
 * table. cfg is copied (the clients stay borrowed). ERR_INVALID for a bad
 * URL, ERR_UNAVAILABLE when the address cannot be bound (logged).
 */
int http_server_start(struct http_server **out, const struct http_config *cfg)
	WARN_UNUSED;

/* http_server_port - the TCP port actually bound (useful with port 0). */
int http_server_port(struct http_server *s);

/*
 * http_server_drain - graceful stop, first half: from now on every new
 * request is answered 503 "shutting_down" with Connection: close; waits up
 * to timeout_ms for the requests in flight to be answered. Returns true
 * when none is left. Call from one thread (main).
 */
bool http_server_drain(struct http_server *s, int timeout_ms);

/*
 * http_server_free - closes the listener and every connection (abandoning
 * bodies being read), waits for the requests still waiting on an RPC (each
 * ends by its deadline), then frees. Call after http_server_drain and
 * before freeing the RPC clients. NULL is a no-op.
 */
void http_server_free(struct http_server *s);

/* ---- for route handlers: what the request said ---- */

/* Scratch memory of the exchange, freed when it is answered. An exchange
 * is used by one thread at a time (the one running its callback). */
struct arena *http_exchange_arena(struct http_exchange *x);
const char *http_exchange_request_id(struct http_exchange *x);
const struct route *http_exchange_route(struct http_exchange *x);
const struct route_match *http_exchange_match(struct http_exchange *x);
/* the raw query string (after '?', still encoded), or NULL */
const char *http_exchange_query(struct http_exchange *x);
/*
 * The request's JSON object (the parsed body; an empty object when there
 * was none), owned by x: a handler may add to it. NULL when out of memory.
 */
cJSON *http_exchange_input(struct http_exchange *x);
struct auth_principal *http_exchange_principal(struct http_exchange *x);
/* the client of service s; NULL if the server was started without it */
struct rpc_client *http_exchange_client(struct http_exchange *x,
					enum route_service s);
/* what is left of the request's deadline (CRENEAU_REQUEST_TIMEOUT_MS from
 * its arrival), for the RPCs made for it */
int http_exchange_timeout_ms(struct http_exchange *x);
/* the value of request header name (any case), or NULL; borrowed from
 * the request, valid until x is answered */
const char *http_exchange_header(struct http_exchange *x, const char *name);

/* the request's method ("GET", "POST", ...) */
const char *http_exchange_method(struct http_exchange *x);

/*
 * http_exchange_reply_header - adds a header to the answer x will get,
 * whichever reply function gives it (name and value copied into x's arena).
 * At most HTTP_REPLY_HEADERS_MAX; ERR_TOO_LARGE beyond, ERR_NOMEM.
 */
#define HTTP_REPLY_HEADERS_MAX 4
int http_exchange_reply_header(struct http_exchange *x, const char *name,
			       const char *value) WARN_UNUSED;

/* requests being answered by x's server, x included */
int http_exchange_in_flight(struct http_exchange *x);

/*
 * ---- answering ----
 * Each exchange is answered exactly once, by one of these; x is freed by
 * the call (do not touch it afterwards). Each adds the common headers
 * (X-Request-Id, Date, security headers, Cache-Control: no-store), logs
 * the request line and counts it in the metrics. Safe from any nng thread.
 */

/* body (taken; NULL for no body, as with 204) as application/json */
void http_reply_json(struct http_exchange *x, int status, cJSON *body);

/* {"error":{"code","message","field"}}; field NULL or "" is left out */
void http_reply_error(struct http_exchange *x, int status, const char *code,
		      const char *message, const char *field);

/*
 * The error answer for an error_code (a failed RPC, or a local check):
 * status from http_status_from_error; code, message, field and Retry-After
 * from err when it has them (err may be NULL).
 */
void http_reply_failure(struct http_exchange *x, int code,
			const struct rpc_error *err);

/* data (static storage: not copied, not freed) with content_type */
void http_reply_static(struct http_exchange *x, int status,
		       const char *content_type, const void *data, size_t len);

/* data (copied) with content_type */
void http_reply_copy(struct http_exchange *x, int status,
		     const char *content_type, const void *data, size_t len);

/*
 * http_status_from_error - THE mapping from an error_code to an HTTP
 * status: INVALID 400, UNAUTHENTICATED 401, FORBIDDEN 403, NOT_FOUND 404,
 * CONFLICT 409, TOO_LARGE 413, UNSUPPORTED 415, RULE 422, RATE_LIMITED
 * 429, UNAVAILABLE and TIMEOUT 503 (a service did not answer in time: the
 * client retries), PROTOCOL 502 (a service answered garbage), INTERNAL,
 * NOMEM and anything else 500.
 */
int http_status_from_error(int code);

/* http_request_id_is_sane - 1..HTTP_REQUEST_ID_MAX of [A-Za-z0-9._-]. */
bool http_request_id_is_sane(const char *id);

/* http_is_json_type - whether a Content-Type is application/json (any
 * case, parameters such as charset allowed). */
bool http_is_json_type(const char *content_type);

/* http_is_safe_method - GET, HEAD or OPTIONS: no body read, no CSRF check. */
bool http_is_safe_method(const char *method);

#endif
