/* routes.h - the gateway's one table from HTTP method and path to an RPC or a local handler. */
#ifndef GATEWAY_ROUTES_H
#define GATEWAY_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "auth.h"

struct http_exchange;

/* The services the gateway calls; each is one rpc_client. */
enum route_service {
	ROUTE_ACCOUNTS,
	ROUTE_BOOKING,
	ROUTE_CALENDAR_SYNC,
	ROUTE_GDPR_RETENTION,
	ROUTE_NOTIFICATIONS,
	ROUTE_N_SERVICES,
	ROUTE_LOCAL = -1, /* answered by the gateway itself */
};

/* Answers the exchange, now or later (see http.h). */
typedef void (*route_handler_fn)(struct http_exchange *x);

/*
 * One entry of the table. A generic entry (handler NULL) is answered by
 * proxy_handle: the JSON body, then the query parameters, then the path
 * parameters (each overriding the one before) become the fields of the
 * same names of a `request` message; the RPC `rpc` of `service` is called
 * with it; its `reply` message is the JSON answer, with `status` on
 * success (204: no body). A local entry names its handler instead.
 */
struct route {
	const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char
	    *pattern; /* "/v1/practitioners/{id}", "/v1/ical/{secret}.ics" */
	enum route_service service;
	const char *rpc; /* "Health" */
	const ProtobufCMessageDescriptor *request;
	const ProtobufCMessageDescriptor *reply;
	int status;		  /* HTTP status on success */
	enum auth_need auth;	  /* who may call it */
	route_handler_fn handler; /* NULL: the generic RPC proxy */
	bool form_body; /* also takes a form body, read as query parameters */
};

#define ROUTE_MAX_PARAMS   8
#define ROUTE_MAX_SEGMENTS 16
#define ROUTE_ALLOW_MAX	   64

/* The {param} values of a matched path: pointers into the matched path,
 * not NUL-terminated and still percent-encoded. */
struct route_match {
	size_t n_params;
	struct {
		const char *name; /* into the pattern, name_len bytes */
		size_t name_len;
		const char *value; /* into the path, value_len bytes */
		size_t value_len;
	} params[ROUTE_MAX_PARAMS];
};

/* routes_table - the table (static storage) and its length in *n_out. */
const struct route *routes_table(size_t *n_out);

/* routes_index - position of r in the table (for metrics). */
size_t routes_index(const struct route *r);

/*
 * routes_match - the route for method and path (path only: no query
 * string; HEAD matches GET). Among the patterns that match the path, the
 * most specific wins (a literal segment beats a parameter, left to right);
 * then the method decides. Returns the route with *match filled, or NULL:
 * then allow_out (ROUTE_ALLOW_MAX bytes) holds "" when no pattern matches
 * the path (404), or the methods the path allows, "GET, HEAD, PUT" (405).
 * Pure function of its arguments and the static table: thread-safe.
 */
const struct route *routes_match(const char *method, const char *path,
				 struct route_match *match, char *allow_out);

/* routes_match_table - routes_match over another table (tests). */
const struct route *routes_match_table(const struct route *table, size_t n,
				       const char *method, const char *path,
				       struct route_match *match,
				       char *allow_out);

/* routes_service_name - "accounts", "booking", "calendar-sync",
 * "gdpr-retention", "notifications"; static storage. */
const char *routes_service_name(enum route_service s);

/* routes_pattern_is_valid - whether a pattern is well formed (starts with
 * '/', no empty segment (but "/" itself), at most one {name} per segment, names made of
 * [a-z0-9_]); the table's unit test checks every entry. */
bool routes_pattern_is_valid(const char *pattern);

#endif
