/* rpc.h - request/reply between services: MAC-authenticated envelopes over nng REQ/REP. */
#ifndef CRENEAU_RPC_H
#define CRENEAU_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include "creneau/v1/envelope.pb-c.h"
#include "error.h"

struct arena;
struct db;
struct rpc_server;
struct rpc_client;
struct rpc_call; /* one request being handled; valid only inside its handler */

/* largest frame accepted on a socket (nng_recvmaxsz) */
#define RPC_MAX_FRAME (4u * 1024 * 1024)
#define RPC_DEFAULT_TIMEOUT_MS 5000
/* longest deadline a caller may set; also bounds how long a captured frame
 * could be replayed */
#define RPC_MAX_TIMEOUT_MS (10 * 60 * 1000)
/* room for a request id and its NUL; longer ones are replaced by a UUID */
#define RPC_REQUEST_ID_MAX 80

/*
 * A handler decodes nothing itself: request is already unpacked (into the
 * call's arena) as the method's request type. It builds *reply_out in the
 * call's arena (rpc_call_arena) and returns 0 (a NULL *reply_out sends an
 * empty reply), or returns a negative error_code, after rpc_call_fail() if
 * it has a field or message to say. Handlers run on the server's worker
 * threads, several at once, each with its own db and arena.
 */
typedef int (*rpc_handler_fn)(struct rpc_call *call,
			      const ProtobufCMessage *request,
			      ProtobufCMessage **reply_out);

struct rpc_method {
	const char *name; /* "Health", "CreateBooking" */
	const ProtobufCMessageDescriptor *request_type;
	rpc_handler_fn handler;
};

/* One entry of a method table: RPC_METHOD("GetMe", get_me_request,
 * handle_get_me) for a request message creneau.v1.GetMeRequest. */
#define RPC_METHOD(name, type, fn)                                            \
	{                                                                      \
		name, &creneau__v1__##type##__descriptor, fn                   \
	}

struct rpc_server_config {
	const char *service;   /* for logs */
	const char *listen_url;
	int workers;           /* 1..256 threads, each with its own nng_ctx,
				  db and arena */
	const uint8_t *key;    /* SECURE_KEY_BYTES, borrowed for the lifetime */
	const struct rpc_method *methods;
	size_t n_methods;
	const char *db_conninfo; /* NULL: handlers get no database */
	void *app;             /* handed to handlers by rpc_call_app() */
};

/*
 * rpc_server_start - listens on listen_url and starts the workers. Frames
 * that fail the MAC are dropped unanswered (the caller times out); those
 * that do not unpack, name an unknown method ("unknown_method"), carry a
 * payload that is not the method's request type ("bad_payload") or whose
 * deadline has passed are answered with an error; all are logged. Nothing
 * reaches a handler unauthenticated. cfg's strings are copied; methods, key
 * and app are borrowed until rpc_server_stop. ERR_INVALID for a bad cfg or
 * URL, ERR_UNAVAILABLE when the address is taken, ERR_NOMEM.
 */
int rpc_server_start(struct rpc_server **out,
		     const struct rpc_server_config *cfg) WARN_UNUSED;

/*
 * rpc_server_stop - stops taking requests, lets in-flight handlers finish
 * and send their replies, joins the workers and frees. Requests that reached
 * the socket but no worker are dropped with the connections, and callers
 * resend them to another replica. Pauses 100 ms before closing the socket
 * (an nng 1.5.2 shutdown race, see rpc.c). NULL is a no-op.
 */
void rpc_server_stop(struct rpc_server *srv);

/* What a handler may ask of its call. All pointers borrowed from the call;
 * rpc_call_principal is never NULL (an anonymous principal when the caller
 * sent none), rpc_call_deadline_ms is 0 when the caller set none. */
struct arena *rpc_call_arena(struct rpc_call *call);
struct db *rpc_call_db(struct rpc_call *call); /* the worker's connection */
void *rpc_call_app(struct rpc_call *call);
const char *rpc_call_request_id(struct rpc_call *call);
const Creneau__V1__Principal *rpc_call_principal(struct rpc_call *call);
int64_t rpc_call_deadline_ms(struct rpc_call *call);

/*
 * rpc_call_fail - records the error code string (NULL: error_name(code)),
 * the field at fault (may be NULL) and a message for the reply; returns code
 * so a handler can `return rpc_call_fail(...)`.
 */
int rpc_call_fail(struct rpc_call *call, int code, const char *error_code,
		  const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* rpc_call_retry_after - sets Retry-After (seconds) on a rate-limit reply. */
void rpc_call_retry_after(struct rpc_call *call, int64_t seconds);

/* ---- client ---- */

/* What a caller states about a request; a NULL context is anonymous with the
 * default timeout. */
struct rpc_context {
	const char *request_id;   /* NULL, "" or too long: a new one is made */
	const char *account_id;   /* principal; NULL for anonymous */
	Creneau__V1__Role role;
	const char *session_id;
	int timeout_ms;           /* 0: RPC_DEFAULT_TIMEOUT_MS; at most
				     RPC_MAX_TIMEOUT_MS */
};

/* The error half of a reply, filled when a call fails. */
struct rpc_error {
	int code;                 /* error_code */
	char error_code[64];
	char message[256];
	char field[64];
	int64_t retry_after_s;
};

/*
 * rpc_client_open - a REQ socket dialing every URL of the comma-separated
 * list (the replicas of one service); requests spread over the live ones and
 * a request whose replica dies is resent to another. caller names this
 * program in envelopes. key is borrowed for the client's lifetime.
 * Thread-safe: any number of threads may call through one client.
 */
int rpc_client_open(struct rpc_client **out, const char *service,
		    const char *urls, const uint8_t *key, const char *caller)
	WARN_UNUSED;

/* rpc_client_free - closes the socket; NULL is a no-op. Calls in flight
 * fail with ERR_UNAVAILABLE (asynchronous ones get their callback), and it
 * returns once they all have: never call it from an rpc_done_fn. */
void rpc_client_free(struct rpc_client *c);

/*
 * rpc_client_call - sends method(request) and waits for the reply or the
 * deadline. On success *reply_out is unpacked as reply_type into arena (so
 * it lives as long as the arena); reply_type NULL ignores the payload
 * (arena and reply_out may then be NULL). On failure returns the error
 * (ERR_TIMEOUT when no replica answered in time, ERR_UNAVAILABLE when none
 * is reachable, ERR_PROTOCOL for a reply that fails the MAC or does not
 * decode, or the callee's code) and fills *err_out if not NULL.
 */
int rpc_client_call(struct rpc_client *c, const struct rpc_context *ctx,
		    const char *method, const ProtobufCMessage *request,
		    const ProtobufCMessageDescriptor *reply_type,
		    struct arena *arena, ProtobufCMessage **reply_out,
		    struct rpc_error *err_out) WARN_UNUSED;

/*
 * Completion of an asynchronous call, on an nng thread: rc is 0 with the
 * packed reply payload (borrowed until the callback returns) and err NULL,
 * or an error with err filled (borrowed). Must not block.
 */
typedef void (*rpc_done_fn)(void *arg, int rc, const struct rpc_error *err,
			    const uint8_t *payload, size_t len);

/*
 * rpc_client_call_async - like rpc_client_call, with the request already
 * packed (payload is copied). When this returns 0, done is called exactly
 * once; when it returns an error, never.
 */
int rpc_client_call_async(struct rpc_client *c, const struct rpc_context *ctx,
			  const char *method, const uint8_t *payload,
			  size_t len, rpc_done_fn done, void *arg) WARN_UNUSED;

/* rpc_status_from_error / rpc_error_from_status - the one mapping. */
Creneau__V1__Status rpc_status_from_error(int code);
int rpc_error_from_status(Creneau__V1__Status status);

#endif
