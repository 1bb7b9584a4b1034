/* rpc.c - MAC-authenticated request/reply envelopes over nng REQ/REP. */
#include "rpc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "arena.h"
#include "db.h"
#include "instant.h"
#include "log.h"
#include "secure.h"

#define MAX_WORKERS	      256
#define WORKER_ARENA_BLOCK    (64u * 1024)
#define REPLY_SEND_TIMEOUT_MS 10000
#define RECONNECT_MIN_MS      50
#define RECONNECT_MAX_MS      1000
/*
 * nng 1.5.2 can deadlock in nng_close() when a pipe of the socket has an
 * operation in flight at that instant: the reaper thread waits forever for
 * an aio that was begun but never scheduled (nanomsg/nng#1543 and #1813,
 * fixed in nng 1.8.0 by #1824). Stopping a REP socket under load hung
 * about once in forty stops here. Once no worker receives, each pipe takes
 * at most one more request and goes quiet; closing after a pause of 20 ms
 * or more never hung in about a thousand stops under load. Clients likewise
 * cancel their calls and pause before closing. The pause costs SETTLE_MS
 * per close.
 */
#define SETTLE_MS 100
/* a name is logged at most this long; it comes from an authenticated peer */
/* how far a caller's clock may run ahead of ours */
#define CLOCK_SKEW_MS 60000
#define LOGGED_NAME_MAX 64
#define MESSAGE_MAX	256

/* ---- the one mapping between error codes and wire statuses ---- */

static const struct {
	int code;
	Creneau__V1__Status status;
} status_map[] = {
    {ERR_OK, CRENEAU__V1__STATUS__STATUS_OK},
    {ERR_INVALID, CRENEAU__V1__STATUS__STATUS_INVALID},
    {ERR_UNAUTHENTICATED, CRENEAU__V1__STATUS__STATUS_UNAUTHENTICATED},
    {ERR_FORBIDDEN, CRENEAU__V1__STATUS__STATUS_FORBIDDEN},
    {ERR_NOT_FOUND, CRENEAU__V1__STATUS__STATUS_NOT_FOUND},
    {ERR_CONFLICT, CRENEAU__V1__STATUS__STATUS_CONFLICT},
    {ERR_TOO_LARGE, CRENEAU__V1__STATUS__STATUS_TOO_LARGE},
    {ERR_UNSUPPORTED, CRENEAU__V1__STATUS__STATUS_UNSUPPORTED},
    {ERR_RULE, CRENEAU__V1__STATUS__STATUS_RULE},
    {ERR_RATE_LIMITED, CRENEAU__V1__STATUS__STATUS_RATE_LIMITED},
    {ERR_UNAVAILABLE, CRENEAU__V1__STATUS__STATUS_UNAVAILABLE},
    {ERR_TIMEOUT, CRENEAU__V1__STATUS__STATUS_TIMEOUT},
    {ERR_INTERNAL, CRENEAU__V1__STATUS__STATUS_INTERNAL},
};

Creneau__V1__Status rpc_status_from_error(int code)
{
	for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (status_map[i].code == code)
			return status_map[i].status;
	/* ERR_NOMEM, ERR_PROTOCOL and anything unknown are the callee's
	 * fault, not the caller's. */
	return CRENEAU__V1__STATUS__STATUS_INTERNAL;
}

int rpc_error_from_status(Creneau__V1__Status status)
{
	for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (status_map[i].status == status)
			return status_map[i].code;
	/* a status this build does not know: bad bytes from our view */
	return ERR_PROTOCOL;
}

/* Copies src into dst[size], truncating; NULL copies as "". */
static void copy_text(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static void set_error(struct rpc_error *err, int code, const char *error_code,
		      const char *field, const char *message,
		      int64_t retry_after_s)
{
	if (!err)
		return;
	err->code = code;
	copy_text(err->error_code, sizeof(err->error_code),
		  error_code && *error_code ? error_code : error_name(code));
	copy_text(err->field, sizeof(err->field), field);
	copy_text(err->message, sizeof(err->message),
		  message && *message ? message : error_str(code));
	err->retry_after_s = retry_after_s;
}

/* ---- server ---- */

struct rpc_worker {
	struct rpc_server *srv;
	pthread_t thread;
	bool thread_started;
	bool receiving; /* a receive is pending on aio; under srv->lock */
	nng_ctx ctx;
	nng_aio *aio;
	struct db *db;
	struct arena *arena;
};

struct rpc_server {
	struct rpc_server_config cfg; /* strings copied, methods borrowed */
	char *service;
	char *listen_url;
	char *db_conninfo;
	nng_socket sock;
	pthread_mutex_t lock;
	bool stopping; /* under lock */
	struct rpc_worker *workers;
	int n_workers;
};

struct rpc_call {
	struct rpc_worker *worker;
	const Creneau__V1__Request *request;
	const char *request_id;
	const char *method; /* for logs: truncated, never NULL */
	int fail_code;	    /* the code rpc_call_fail last recorded, or 0 */
	const char *error_code;
	const char *field;
	const char *message;
	int64_t retry_after_s;
};

static const Creneau__V1__Principal anonymous = CRENEAU__V1__PRINCIPAL__INIT;

struct arena *rpc_call_arena(struct rpc_call *call)
{
	return call->worker->arena;
}

struct db *rpc_call_db(struct rpc_call *call)
{
	return call->worker->db;
}

void *rpc_call_app(struct rpc_call *call)
{
	return call->worker->srv->cfg.app;
}

const char *rpc_call_request_id(struct rpc_call *call)
{
	return call->request_id;
}

const Creneau__V1__Principal *rpc_call_principal(struct rpc_call *call)
{
	if (!call->request || !call->request->principal)
		return &anonymous;
	return call->request->principal;
}

int64_t rpc_call_deadline_ms(struct rpc_call *call)
{
	return call->request ? call->request->deadline_ms : 0;
}

int rpc_call_fail(struct rpc_call *call, int code, const char *error_code,
		  const char *field, const char *fmt, ...)
{
	struct arena *arena = call->worker->arena;
	char message[MESSAGE_MAX] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(message, sizeof(message), fmt, ap);
		va_end(ap);
	}
	call->fail_code = code;
	/* Failing to copy loses only detail: the code still goes out. */
	call->error_code = error_code ? arena_strdup(arena, error_code) : NULL;
	call->field = field ? arena_strdup(arena, field) : NULL;
	call->message = *message ? arena_strdup(arena, message) : NULL;
	return code;
}

void rpc_call_retry_after(struct rpc_call *call, int64_t seconds)
{
	call->retry_after_s = seconds;
}

static const struct rpc_method *find_method(const struct rpc_server *srv,
					    const char *name)
{
	for (size_t i = 0; i < srv->cfg.n_methods; i++)
		if (strcmp(srv->cfg.methods[i].name, name) == 0)
			return &srv->cfg.methods[i];
	return NULL;
}

/* Checks the deadline, finds the method and decodes its request, then lets
 * the handler run. */
static int dispatch(struct rpc_call *call, ProtobufCMessage **reply_out)
{
	const Creneau__V1__Request *req = call->request;
	const struct rpc_method *method;
	ProtobufCAllocator alloc;
	ProtobufCMessage *msg;
	int64_t now;
	int rc;

	now = instant_now_ms();
	if (now > req->deadline_ms)
		return rpc_call_fail(call, ERR_TIMEOUT, "deadline_passed", NULL,
				     "the deadline passed before the request "
				     "was served");
	/* A frame's deadline bounds how long a captured copy could be
	 * replayed: none, or one too far ahead, is refused. */
	if (req->deadline_ms > now + RPC_MAX_TIMEOUT_MS + CLOCK_SKEW_MS)
		return rpc_call_fail(call, ERR_INVALID, "bad_deadline", NULL,
				     "the deadline is too far ahead");
	method = find_method(call->worker->srv, req->method);
	if (!method)
		return rpc_call_fail(call, ERR_INVALID, "unknown_method", NULL,
				     "unknown method %.*s", LOGGED_NAME_MAX,
				     req->method);
	arena_protobuf_allocator(call->worker->arena, &alloc);
	msg = protobuf_c_message_unpack(method->request_type, &alloc,
					req->payload.len, req->payload.data);
	if (!msg)
		return rpc_call_fail(call, ERR_INVALID, "bad_payload", NULL,
				     "payload is not a %s",
				     method->request_type->name);
	rc = method->handler(call, msg, reply_out);
	/* A transaction a handler left open must not leak into the worker's
	 * next request. */
	db_rollback(call->worker->db);
	return rc;
}

/* Packs msg as tag || bytes into a new nng message; NULL when out of memory. */
static nng_msg *seal_frame(const uint8_t *key, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *body;
	nng_msg *frame;

	if (nng_msg_alloc(&frame, SECURE_MAC_BYTES + len) != 0)
		return NULL;
	body = nng_msg_body(frame);
	protobuf_c_message_pack(msg, body + SECURE_MAC_BYTES);
	secure_mac(key, body + SECURE_MAC_BYTES, len, body);
	return frame;
}

/* Encodes the handler's reply (NULL: an empty one) into the call's arena. */
static int pack_payload(struct rpc_call *call, const ProtobufCMessage *reply,
			ProtobufCBinaryData *out)
{
	size_t len;

	out->len = 0;
	out->data = NULL;
	if (!reply)
		return 0;
	len = protobuf_c_message_get_packed_size(reply);
	if (len > RPC_MAX_FRAME - 1024) {
		log_err(call->request_id,
			"rpc reply too large method=%s bytes=%zu", call->method,
			len);
		return rpc_call_fail(call, ERR_INTERNAL, "reply_too_large",
				     NULL, "the reply is too large");
	}
	out->data = arena_alloc(call->worker->arena, len);
	if (!out->data)
		return ERR_NOMEM;
	out->len = protobuf_c_message_pack(reply, out->data);
	return 0;
}

/* The reply frame for a call that ended with rc; NULL when out of memory. */
static nng_msg *seal_reply(struct rpc_call *call, int rc,
			   const ProtobufCMessage *reply)
{
	Creneau__V1__Reply rep = CRENEAU__V1__REPLY__INIT;

	rep.request_id = (char *)call->request_id;
	rep.retry_after_s = call->retry_after_s;
	if (rc == 0)
		rc = pack_payload(call, reply, &rep.payload);
	if (rc != 0) {
		bool detailed = call->fail_code == rc;

		rep.status = rpc_status_from_error(rc);
		rep.error_code =
		    (char *)(detailed && call->error_code ? call->error_code
							  : error_name(rc));
		rep.field =
		    (char *)(detailed && call->field ? call->field : "");
		rep.message =
		    (char *)(detailed && call->message ? call->message
						       : error_str(rc));
		rep.payload.len = 0;
		rep.payload.data = NULL;
	}
	return seal_frame(call->worker->srv->cfg.key, &rep.base);
}

static void log_outcome(const struct rpc_call *call, int rc, int64_t ms)
{
	enum log_level level = LOG_INFO;

	if (rc == 0) {
		log_debug(call->request_id, "rpc served method=%s ms=%lld",
			  call->method, (long long)ms);
		return;
	}
	if (rc == ERR_TIMEOUT || rc == ERR_UNAVAILABLE)
		level = LOG_WARNING;
	else if (rpc_status_from_error(rc) ==
		 CRENEAU__V1__STATUS__STATUS_INTERNAL)
		level = LOG_ERR;
	log_write(level, call->request_id,
		  "rpc failed method=%s caller=%.*s status=%s error_code=%.*s "
		  "ms=%lld",
		  call->method, LOGGED_NAME_MAX,
		  call->request ? call->request->caller : "?", error_name(rc),
		  LOGGED_NAME_MAX,
		  call->fail_code == rc && call->error_code ? call->error_code
							    : error_name(rc),
		  (long long)ms);
}

/* Decodes an authenticated envelope into call; a request without an id
 * gets one, so that its log lines can be told apart. */
static void open_request(struct rpc_call *call, const uint8_t *data, size_t len)
{
	struct arena *arena = call->worker->arena;
	ProtobufCAllocator alloc;
	char *request_id;

	arena_protobuf_allocator(arena, &alloc);
	call->request = creneau__v1__request__unpack(&alloc, len, data);
	if (call->request && *call->request->request_id &&
	    strlen(call->request->request_id) < RPC_REQUEST_ID_MAX) {
		call->request_id = call->request->request_id;
	} else {
		request_id = arena_alloc(arena, 37);
		if (request_id)
			secure_uuid(request_id);
		call->request_id = request_id;
	}
	if (call->request)
		call->method = arena_strndup(arena, call->request->method,
					     LOGGED_NAME_MAX);
	if (!call->method)
		call->method = "?";
}

/*
 * Serves one frame; returns the reply frame, or NULL when the frame is
 * dropped (failed MAC: the peer gets no answer and times out).
 */
static nng_msg *serve(struct rpc_worker *w, nng_msg *frame)
{
	const uint8_t *body = nng_msg_body(frame);
	size_t len = nng_msg_len(frame);
	struct rpc_call call = {.worker = w};
	ProtobufCMessage *reply = NULL;
	int64_t t0 = instant_mono_ms();
	int rc;

	if (len < SECURE_MAC_BYTES ||
	    !secure_mac_verify(w->srv->cfg.key, body + SECURE_MAC_BYTES,
			       len - SECURE_MAC_BYTES, body)) {
		log_warn(NULL,
			 "rpc frame dropped: failed authentication "
			 "bytes=%zu",
			 len);
		return NULL;
	}
	open_request(&call, body + SECURE_MAC_BYTES, len - SECURE_MAC_BYTES);
	if (!call.request)
		rc = rpc_call_fail(&call, ERR_INVALID, "bad_envelope", NULL,
				   "the request envelope does not decode");
	else
		rc = dispatch(&call, &reply);
	if (rc > 0) {
		log_err(call.request_id, "rpc handler returned %d method=%s",
			rc, call.method);
		rc = ERR_INTERNAL;
	}
	log_outcome(&call, rc, instant_mono_ms() - t0);
	return seal_reply(&call, rc, reply);
}

/*
 * Waits for the next request on w's context; false when the server stops.
 * The receive is posted under srv->lock so rpc_server_stop either sees it
 * pending (and cancels it) or the worker sees stopping.
 */
static bool worker_receive(struct rpc_worker *w, nng_msg **out)
{
	struct rpc_server *srv = w->srv;
	int rv;

	for (;;) {
		pthread_mutex_lock(&srv->lock);
		if (srv->stopping) {
			pthread_mutex_unlock(&srv->lock);
			return false;
		}
		w->receiving = true;
		nng_aio_set_timeout(w->aio, NNG_DURATION_INFINITE);
		nng_ctx_recv(w->ctx, w->aio);
		pthread_mutex_unlock(&srv->lock);
		nng_aio_wait(w->aio);
		pthread_mutex_lock(&srv->lock);
		w->receiving = false;
		pthread_mutex_unlock(&srv->lock);
		rv = nng_aio_result(w->aio);
		if (rv == 0) {
			*out = nng_aio_get_msg(w->aio);
			return true;
		}
		if (rv == NNG_ECLOSED)
			return false;
		if (rv != NNG_ECANCELED) {
			log_err(NULL, "rpc receive failed: %s",
				nng_strerror(rv));
			nng_msleep(10);
		}
	}
}

static void worker_send(struct rpc_worker *w, nng_msg *reply)
{
	int rv;

	nng_aio_set_timeout(w->aio, REPLY_SEND_TIMEOUT_MS);
	nng_aio_set_msg(w->aio, reply);
	nng_ctx_send(w->ctx, w->aio);
	nng_aio_wait(w->aio);
	rv = nng_aio_result(w->aio);
	if (rv != 0) {
		/* on failure the message is still ours */
		if (nng_aio_get_msg(w->aio))
			nng_msg_free(nng_aio_get_msg(w->aio));
		log_warn(NULL, "rpc reply not sent: %s", nng_strerror(rv));
	}
}

static void *worker_main(void *arg)
{
	struct rpc_worker *w = arg;
	nng_msg *request, *reply;

	while (worker_receive(w, &request)) {
		reply = serve(w, request);
		nng_msg_free(request);
		if (reply)
			worker_send(w, reply);
		arena_reset(w->arena);
	}
	return NULL;
}

static int worker_init(struct rpc_worker *w, struct rpc_server *srv)
{
	int rv;

	w->srv = srv;
	w->arena = arena_new(WORKER_ARENA_BLOCK);
	if (!w->arena)
		return ERR_NOMEM;
	if (srv->db_conninfo && (rv = db_open(&w->db, srv->db_conninfo)) != 0)
		return rv;
	if (nng_aio_alloc(&w->aio, NULL, NULL) != 0)
		return ERR_NOMEM;
	if ((rv = nng_ctx_open(&w->ctx, srv->sock)) != 0) {
		log_err(NULL, "rpc context not opened: %s", nng_strerror(rv));
		return rv == NNG_ENOMEM ? ERR_NOMEM : ERR_INTERNAL;
	}
	return 0;
}

/* Undoes worker_init on a worker whose thread is not running. */
static void worker_fini(struct rpc_worker *w)
{
	if (w->aio)
		nng_aio_free(w->aio);
	db_close(w->db);
	arena_free(w->arena);
}

/* Stops taking requests and waits for the workers to finish the one they
 * are serving. */
static void stop_workers(struct rpc_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	for (int i = 0; i < srv->n_workers; i++)
		if (srv->workers[i].receiving)
			nng_aio_cancel(srv->workers[i].aio);
	pthread_mutex_unlock(&srv->lock);
	for (int i = 0; i < srv->n_workers; i++)
		if (srv->workers[i].thread_started)
			pthread_join(srv->workers[i].thread, NULL);
}

static void server_free(struct rpc_server *srv)
{
	/* Closing the socket closes every worker's context. */
	nng_close(srv->sock);
	for (int i = 0; i < srv->n_workers; i++)
		worker_fini(&srv->workers[i]);
	free(srv->workers);
	pthread_mutex_destroy(&srv->lock);
	free(srv->service);
	free(srv->listen_url);
	free(srv->db_conninfo);
	free(srv);
}

static bool config_is_valid(const struct rpc_server_config *cfg)
{
	if (!cfg->listen_url || !cfg->key || cfg->workers < 1 ||
	    cfg->workers > MAX_WORKERS || (cfg->n_methods && !cfg->methods))
		return false;
	for (size_t i = 0; i < cfg->n_methods; i++)
		if (!cfg->methods[i].name || !cfg->methods[i].request_type ||
		    !cfg->methods[i].handler)
			return false;
	return true;
}

static char *strdup_or_null(const char *s, bool *failed)
{
	char *copy;

	if (!s)
		return NULL;
	copy = strdup(s);
	if (!copy)
		*failed = true;
	return copy;
}

static int server_listen(struct rpc_server *srv)
{
	int rv;

	if ((rv = nng_rep0_open(&srv->sock)) != 0) {
		log_err(NULL, "rpc socket not opened: %s", nng_strerror(rv));
		return ERR_INTERNAL;
	}
	rv = nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, RPC_MAX_FRAME);
	if (rv == 0)
		rv = nng_listen(srv->sock, srv->listen_url, NULL, 0);
	if (rv != 0) {
		log_err(NULL, "rpc listen failed url=%s: %s", srv->listen_url,
			nng_strerror(rv));
		return rv == NNG_EADDRINUSE || rv == NNG_EPERM ? ERR_UNAVAILABLE
							       : ERR_INVALID;
	}
	return 0;
}

/* A server with cfg's strings copied, its socket not yet open. */
static struct rpc_server *server_new(const struct rpc_server_config *cfg)
{
	struct rpc_server *srv = calloc(1, sizeof(*srv));
	bool failed = false;

	if (!srv)
		return NULL;
	srv->sock = (nng_socket)NNG_SOCKET_INITIALIZER;
	pthread_mutex_init(&srv->lock, NULL);
	srv->cfg = *cfg;
	srv->service =
	    strdup_or_null(cfg->service ? cfg->service : "rpc", &failed);
	srv->listen_url = strdup_or_null(cfg->listen_url, &failed);
	srv->db_conninfo = strdup_or_null(cfg->db_conninfo, &failed);
	srv->cfg.service = srv->service;
	srv->cfg.listen_url = srv->listen_url;
	srv->cfg.db_conninfo = srv->db_conninfo;
	srv->workers = calloc((size_t)cfg->workers, sizeof(*srv->workers));
	if (failed || !srv->workers) {
		server_free(srv);
		return NULL;
	}
	return srv;
}

int rpc_server_start(struct rpc_server **out,
		     const struct rpc_server_config *cfg)
{
	struct rpc_server *srv;
	int rc;

	*out = NULL;
	if (!config_is_valid(cfg)) {
		log_err(NULL, "rpc server configuration is invalid");
		return ERR_INVALID;
	}
	if (secure_init() != 0)
		return ERR_INTERNAL;
	srv = server_new(cfg);
	if (!srv)
		return ERR_NOMEM;
	rc = server_listen(srv);
	if (rc)
		goto out_free_srv;
	for (int i = 0; i < cfg->workers; i++) {
		struct rpc_worker *w = &srv->workers[i];

		srv->n_workers = i + 1;
		rc = worker_init(w, srv);
		if (rc)
			goto out_stop_workers;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			log_err(NULL, "rpc worker thread not started");
			rc = ERR_INTERNAL;
			goto out_stop_workers;
		}
		w->thread_started = true;
	}
	log_info(NULL, "rpc listening service=%s url=%s workers=%d",
		 srv->service, srv->listen_url, cfg->workers);
	*out = srv;
	return 0;

out_stop_workers:
	stop_workers(srv);
out_free_srv:
	server_free(srv);
	return rc;
}

void rpc_server_stop(struct rpc_server *srv)
{
	if (!srv)
		return;
	stop_workers(srv);
	/*
	 * A reply handed to nng has been written to the connection by now
	 * (REP completes the send once the pipe took it). Requests still
	 * queued on our pipes are lost with them, and the REQ peers resend
	 * them to another replica when they see the pipes close. Before
	 * closing, let the pipes settle: see SETTLE_MS.
	 */
	nng_msleep(SETTLE_MS);
	log_info(NULL, "rpc stopped url=%s", srv->listen_url);
	server_free(srv);
}

/* ---- client ---- */

/*
 * How a request survives a replica dying. In nng 1.5.2, when a REQ pipe
 * closes (req0_pipe_close), every context with a request outstanding on it
 * is put back on the send queue at once and goes to another ready pipe
 * ("resend on pipe close") - but only when the context's resend time
 * (NNG_OPT_REQ_RESENDTIME) is positive; with resends disabled the request
 * fails with NNG_ECONNRESET instead (checked against the installed library
 * with a replica that takes a request and closes). The resend timer itself
 * would also re-send a request whose replica is merely slow, running a
 * non-idempotent handler twice; so each call sets its resend time just
 * beyond its own deadline: the timer never fires, and only a closed
 * connection triggers a resend.
 */
#define RESEND_MARGIN_MS 1000

/* A call in flight, listed in its client so rpc_client_free can cancel it. */
struct call_link {
	struct call_link *prev, *next;
	nng_aio *aio; /* NULL while the call has none */
};

struct rpc_client {
	nng_socket sock;
	char *service;
	char *caller;
	const uint8_t *key;
	pthread_mutex_t lock;
	pthread_cond_t idle;	/* signalled when in_flight drops to 0 */
	struct call_link calls; /* list head of the calls in flight */
	int in_flight;		/* calls that may still touch the client */
	int64_t last_end_ms;	/* instant_mono_ms() when a call last ended */
	bool closing;
	atomic_int pipes;	/* connected replicas */
	int64_t opened_ms;	/* instant_mono_ms() at rpc_client_open */
};

/* How long a new client waits for its first connections before a call with
 * no replica connected fails at once instead of waiting for its deadline. */
#define CONNECT_GRACE_MS 1000

/* Keeps count of the connected replicas (on an nng thread). */
static void pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct rpc_client *c = arg;

	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&c->pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(&c->pipes, 1);
}

/*
 * False when no replica is connected and the client is past its start-up
 * grace: every replica is down, so the caller hears it now (503) rather
 * than at its deadline.
 */
static bool may_reach_replica(struct rpc_client *c)
{
	return atomic_load(&c->pipes) > 0 ||
	       instant_mono_ms() - c->opened_ms < CONNECT_GRACE_MS;
}

/* What every call prepares before it goes on the wire. */
struct outgoing {
	char request_id[RPC_REQUEST_ID_MAX];
	char method[LOGGED_NAME_MAX + 1];
	int timeout_ms;
	int64_t deadline_mono; /* instant_mono_ms() at which we give up */
	nng_msg *frame;
};

/* Counts and lists a new call; false once the client is closing, or when
 * no replica is connected. */
static bool call_begin(struct rpc_client *c, struct call_link *link)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = !c->closing && may_reach_replica(c);
	if (ok) {
		c->in_flight++;
		link->aio = NULL;
		link->prev = &c->calls;
		link->next = c->calls.next;
		c->calls.next->prev = link;
		c->calls.next = link;
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* Records the aio rpc_client_free should cancel (NULL before freeing it). */
static void call_set_aio(struct rpc_client *c, struct call_link *link,
			 nng_aio *aio)
{
	pthread_mutex_lock(&c->lock);
	link->aio = aio;
	pthread_mutex_unlock(&c->lock);
}

/* After this, the call must not touch c: it may be freed. */
static void call_end(struct rpc_client *c, struct call_link *link)
{
	pthread_mutex_lock(&c->lock);
	link->prev->next = link->next;
	link->next->prev = link->prev;
	c->last_end_ms = instant_mono_ms();
	if (--c->in_flight == 0)
		pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
}

static const struct rpc_context default_context = {.timeout_ms = 0};

/* Builds the envelope of method(payload) with its MAC into out->frame. */
static int prepare(struct rpc_client *c, const struct rpc_context *ctx,
		   const char *method, const uint8_t *payload, size_t len,
		   struct outgoing *out)
{
	Creneau__V1__Request req = CRENEAU__V1__REQUEST__INIT;
	Creneau__V1__Principal principal = CRENEAU__V1__PRINCIPAL__INIT;

	if (!ctx)
		ctx = &default_context;
	if (!method || !*method || (len && !payload) || ctx->timeout_ms < 0 ||
	    ctx->timeout_ms > RPC_MAX_TIMEOUT_MS)
		return ERR_INVALID;
	if (ctx->request_id && *ctx->request_id &&
	    strlen(ctx->request_id) < sizeof(out->request_id))
		copy_text(out->request_id, sizeof(out->request_id),
			  ctx->request_id);
	else
		secure_uuid(out->request_id);
	copy_text(out->method, sizeof(out->method), method);
	out->timeout_ms =
	    ctx->timeout_ms ? ctx->timeout_ms : RPC_DEFAULT_TIMEOUT_MS;
	out->deadline_mono = instant_mono_ms() + out->timeout_ms;
	principal.account_id = (char *)(ctx->account_id ? ctx->account_id : "");
	principal.role = ctx->role;
	principal.session_id = (char *)(ctx->session_id ? ctx->session_id : "");
	req.method = (char *)method;
	req.request_id = out->request_id;
	req.deadline_ms = instant_now_ms() + out->timeout_ms;
	req.caller = c->caller;
	req.principal = &principal;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = len;
	if (protobuf_c_message_get_packed_size(&req.base) + SECURE_MAC_BYTES >
	    RPC_MAX_FRAME)
		return ERR_TOO_LARGE;
	out->frame = seal_frame(c->key, &req.base);
	return out->frame ? 0 : ERR_NOMEM;
}

static nng_duration remaining_ms(const struct outgoing *o)
{
	int64_t left = o->deadline_mono - instant_mono_ms();

	return left > 0 ? (nng_duration)left : NNG_DURATION_ZERO;
}

/*
 * The error of a failed nng operation. While sending, a timeout means no
 * replica took the request in time (none reachable); while waiting for the
 * reply, that the deadline passed.
 */
static int transport_error(struct rpc_client *c, const struct outgoing *o,
			   int rv, bool receiving, struct rpc_error *err)
{
	int code = ERR_UNAVAILABLE;

	if (rv == NNG_ETIMEDOUT && receiving)
		code = ERR_TIMEOUT;
	else if (rv == NNG_ENOMEM)
		code = ERR_NOMEM;
	if (rv == NNG_ETIMEDOUT && !receiving)
		log_warn(o->request_id,
			 "rpc call failed service=%s method=%s: "
			 "no replica reachable",
			 c->service, o->method);
	else
		log_warn(o->request_id,
			 "rpc call failed service=%s method=%s: %s", c->service,
			 o->method, nng_strerror(rv));
	set_error(err, code, NULL, NULL, NULL, 0);
	return code;
}

/*
 * Authenticates and decodes a reply frame. Returns ERR_PROTOCOL (logged)
 * for one that fails the MAC, does not decode or answers another request;
 * otherwise the callee's status as an error code, with *reply_out to free
 * with creneau__v1__reply__free_unpacked.
 */
static int open_reply(struct rpc_client *c, const struct outgoing *o,
		      nng_msg *frame, Creneau__V1__Reply **reply_out,
		      struct rpc_error *err)
{
	const uint8_t *body = nng_msg_body(frame);
	size_t len = nng_msg_len(frame);
	Creneau__V1__Reply *reply;
	int rc;

	*reply_out = NULL;
	if (len < SECURE_MAC_BYTES ||
	    !secure_mac_verify(c->key, body + SECURE_MAC_BYTES,
			       len - SECURE_MAC_BYTES, body)) {
		log_warn(o->request_id,
			 "rpc reply dropped: failed "
			 "authentication service=%s method=%s",
			 c->service, o->method);
		goto out_protocol;
	}
	reply = creneau__v1__reply__unpack(NULL, len - SECURE_MAC_BYTES,
					   body + SECURE_MAC_BYTES);
	if (!reply) {
		log_warn(o->request_id,
			 "rpc reply does not decode "
			 "service=%s method=%s",
			 c->service, o->method);
		goto out_protocol;
	}
	if (strcmp(reply->request_id, o->request_id) != 0) {
		log_warn(o->request_id,
			 "rpc reply answers another request "
			 "service=%s method=%s",
			 c->service, o->method);
		creneau__v1__reply__free_unpacked(reply, NULL);
		goto out_protocol;
	}
	rc = rpc_error_from_status(reply->status);
	if (rc)
		set_error(err, rc, reply->error_code, reply->field,
			  reply->message, reply->retry_after_s);
	*reply_out = reply;
	return rc;

out_protocol:
	set_error(err, ERR_PROTOCOL, "bad_reply", NULL, NULL, 0);
	return ERR_PROTOCOL;
}

static int url_error(const char *url, int rv)
{
	log_err(NULL, "rpc dial failed url=%s: %s", url, nng_strerror(rv));
	return rv == NNG_ENOMEM ? ERR_NOMEM : ERR_INVALID;
}

/* Dials every URL of the comma-separated list, in the background. */
static int dial_all(struct rpc_client *c, const char *urls)
{
	char *list = strdup(urls), *save = NULL, *url;
	int n = 0, rc = 0, rv;

	if (!list)
		return ERR_NOMEM;
	for (url = strtok_r(list, ",", &save); url && !rc;
	     url = strtok_r(NULL, ",", &save)) {
		char *end = url + strlen(url);

		while (*url == ' ' || *url == '\t')
			url++;
		while (end > url && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (!*url)
			continue;
		rv = nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK);
		if (rv)
			rc = url_error(url, rv);
		n++;
	}
	free(list);
	if (!rc && n == 0) {
		log_err(NULL, "rpc client has no URL service=%s", c->service);
		rc = ERR_INVALID;
	}
	return rc;
}

static int client_socket(struct rpc_client *c)
{
	int rv;

	if ((rv = nng_req0_open(&c->sock)) != 0) {
		log_err(NULL, "rpc socket not opened: %s", nng_strerror(rv));
		return ERR_INTERNAL;
	}
	if ((rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT,
				    RECONNECT_MIN_MS)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT,
				    RECONNECT_MAX_MS)) != 0 ||
	    (rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ,
				      RPC_MAX_FRAME)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_event,
				  c)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_event,
				  c)) != 0) {
		log_err(NULL, "rpc socket options: %s", nng_strerror(rv));
		return ERR_INTERNAL;
	}
	c->opened_ms = instant_mono_ms();
	return 0;
}

int rpc_client_open(struct rpc_client **out, const char *service,
		    const char *urls, const uint8_t *key, const char *caller)
{
	struct rpc_client *c;
	int rc;

	*out = NULL;
	if (!urls || !key) {
		log_err(NULL, "rpc client needs URLs and a key service=%s",
			service ? service : "?");
		return ERR_INVALID;
	}
	if (secure_init() != 0)
		return ERR_INTERNAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ERR_NOMEM;
	c->sock = (nng_socket)NNG_SOCKET_INITIALIZER;
	c->key = key;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	c->calls.prev = c->calls.next = &c->calls;
	c->service = strdup(service ? service : "rpc");
	c->caller = strdup(caller ? caller : "");
	if (!c->service || !c->caller) {
		rc = ERR_NOMEM;
		goto out_free_client;
	}
	rc = client_socket(c);
	if (rc)
		goto out_free_client;
	rc = dial_all(c, urls);
	if (rc)
		goto out_free_client;
	*out = c;
	return 0;

out_free_client:
	rpc_client_free(c);
	return rc;
}

/*
 * Cancels every call in flight and waits for them to end. Cancelling again
 * at each wake-up catches an operation a call started after the last round.
 * Returns with c->lock held.
 */
static void cancel_calls(struct rpc_client *c)
{
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	while (c->in_flight > 0) {
		struct timespec until;

		for (struct call_link *l = c->calls.next; l != &c->calls;
		     l = l->next)
			if (l->aio)
				nng_aio_cancel(l->aio);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 10 * 1000 * 1000;
		if (until.tv_nsec >= 1000 * 1000 * 1000) {
			until.tv_sec++;
			until.tv_nsec -= 1000 * 1000 * 1000;
		}
		pthread_cond_timedwait(&c->idle, &c->lock, &until);
	}
}

void rpc_client_free(struct rpc_client *c)
{
	bool recent;

	if (!c)
		return;
	cancel_calls(c);
	recent = instant_mono_ms() - c->last_end_ms < SETTLE_MS;
	pthread_mutex_unlock(&c->lock);
	if (recent)
		nng_msleep(SETTLE_MS);
	nng_close(c->sock);
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c->service);
	free(c->caller);
	free(c);
}

/* A context for one call, whose resend timer never fires before the
 * deadline (see RESEND_MARGIN_MS). */
static int open_context(struct rpc_client *c, const struct outgoing *o,
			nng_ctx *ctx_out)
{
	int rv = nng_ctx_open(ctx_out, c->sock);

	if (rv == 0)
		rv = nng_ctx_set_ms(*ctx_out, NNG_OPT_REQ_RESENDTIME,
				    o->timeout_ms + RESEND_MARGIN_MS);
	if (rv != 0) {
		if (rv != NNG_ECLOSED)
			log_err(o->request_id, "rpc context not opened: %s",
				nng_strerror(rv));
		return rv == NNG_ENOMEM ? ERR_NOMEM : ERR_UNAVAILABLE;
	}
	return 0;
}

/* Sends o->frame and waits for the reply frame (*reply_out, freed with
 * nng_msg_free). */
static int exchange(struct rpc_client *c, struct call_link *link,
		    struct outgoing *o, nng_msg **reply_out,
		    struct rpc_error *err)
{
	nng_ctx ctx;
	nng_aio *aio;
	int rc, rv;

	rc = open_context(c, o, &ctx);
	if (rc) {
		set_error(err, rc, NULL, NULL, NULL, 0);
		return rc;
	}
	if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
		rc = ERR_NOMEM;
		set_error(err, rc, NULL, NULL, NULL, 0);
		goto out_close_ctx;
	}
	call_set_aio(c, link, aio);
	nng_aio_set_timeout(aio, remaining_ms(o));
	nng_aio_set_msg(aio, o->frame);
	o->frame = NULL;
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		if (nng_aio_get_msg(aio))
			nng_msg_free(nng_aio_get_msg(aio));
		rc = transport_error(c, o, rv, false, err);
		goto out_free_aio;
	}
	nng_aio_set_timeout(aio, remaining_ms(o));
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		rc = transport_error(c, o, rv, true, err);
		goto out_free_aio;
	}
	*reply_out = nng_aio_get_msg(aio);

out_free_aio:
	call_set_aio(c, link, NULL);
	nng_aio_free(aio);
out_close_ctx:
	nng_ctx_close(ctx);
	return rc;
}

/* Packs request into a heap buffer (*buf_out, freed with free). */
static int pack_request(const ProtobufCMessage *request, uint8_t **buf_out,
			size_t *len_out)
{
	size_t len = request ? protobuf_c_message_get_packed_size(request) : 0;

	*buf_out = NULL;
	*len_out = len;
	if (len == 0)
		return 0;
	if (len > RPC_MAX_FRAME)
		return ERR_TOO_LARGE;
	*buf_out = malloc(len);
	if (!*buf_out)
		return ERR_NOMEM;
	protobuf_c_message_pack(request, *buf_out);
	return 0;
}

/* Decodes an OK reply's payload as reply_type into arena. */
static int unpack_payload(const struct outgoing *o,
			  const Creneau__V1__Reply *reply,
			  const ProtobufCMessageDescriptor *reply_type,
			  struct arena *arena, ProtobufCMessage **reply_out,
			  struct rpc_error *err)
{
	ProtobufCAllocator alloc;

	arena_protobuf_allocator(arena, &alloc);
	*reply_out = protobuf_c_message_unpack(
	    reply_type, &alloc, reply->payload.len, reply->payload.data);
	if (*reply_out)
		return 0;
	log_warn(o->request_id, "rpc reply payload is not a %s method=%s",
		 reply_type->name, o->method);
	set_error(err, ERR_PROTOCOL, "bad_payload", NULL, NULL, 0);
	return ERR_PROTOCOL;
}

int rpc_client_call(struct rpc_client *c, const struct rpc_context *ctx,
		    const char *method, const ProtobufCMessage *request,
		    const ProtobufCMessageDescriptor *reply_type,
		    struct arena *arena, ProtobufCMessage **reply_out,
		    struct rpc_error *err_out)
{
	struct outgoing o = {.frame = NULL};
	struct call_link link;
	Creneau__V1__Reply *reply = NULL;
	nng_msg *frame = NULL;
	uint8_t *payload;
	size_t len;
	int rc;

	if (reply_out)
		*reply_out = NULL;
	if (reply_type && (!arena || !reply_out)) {
		set_error(err_out, ERR_INVALID, NULL, NULL, NULL, 0);
		return ERR_INVALID;
	}
	if (!call_begin(c, &link)) {
		set_error(err_out, ERR_UNAVAILABLE, NULL, NULL, NULL, 0);
		return ERR_UNAVAILABLE;
	}
	rc = pack_request(request, &payload, &len);
	if (rc == 0)
		rc = prepare(c, ctx, method, payload, len, &o);
	free(payload);
	if (rc) {
		set_error(err_out, rc, NULL, NULL, NULL, 0);
		goto out_end;
	}
	rc = exchange(c, &link, &o, &frame, err_out);
	if (rc)
		goto out_end;
	rc = open_reply(c, &o, frame, &reply, err_out);
	if (rc == 0 && reply_type)
		rc = unpack_payload(&o, reply, reply_type, arena, reply_out,
				    err_out);
	if (reply)
		creneau__v1__reply__free_unpacked(reply, NULL);
	nng_msg_free(frame);
out_end:
	/* exchange() leaves the frame with us when it fails before sending */
	nng_msg_free(o.frame);
	call_end(c, &link);
	return rc;
}

/* One asynchronous call: its own context and aio, freed on completion. */
struct async_call {
	struct rpc_client *client;
	struct call_link link;
	struct outgoing out;
	nng_ctx ctx;
	nng_aio *aio;
	bool receiving;
	rpc_done_fn done;
	void *arg;
};

/* Reports the outcome (frame is the reply, or NULL after a transport
 * error rc) and frees the call. */
static void async_finish(struct async_call *a, int rc, nng_msg *frame)
{
	struct rpc_client *c = a->client;
	Creneau__V1__Reply *reply = NULL;
	struct rpc_error err;

	if (frame)
		rc = open_reply(c, &a->out, frame, &reply, &err);
	else
		set_error(&err, rc, NULL, NULL, NULL, 0);
	if (rc == 0)
		a->done(a->arg, 0, NULL, reply->payload.data,
			reply->payload.len);
	else
		a->done(a->arg, rc, &err, NULL, 0);
	if (reply)
		creneau__v1__reply__free_unpacked(reply, NULL);
	if (frame)
		nng_msg_free(frame);
	nng_ctx_close(a->ctx);
	call_end(c, &a->link);
	/* an aio cannot be freed from its own callback: nng's reaper does it */
	nng_aio_reap(a->aio);
	free(a);
}

static void async_step(void *arg)
{
	struct async_call *a = arg;
	int rv = nng_aio_result(a->aio);
	struct rpc_error err;

	if (rv != 0) {
		if (!a->receiving && nng_aio_get_msg(a->aio))
			nng_msg_free(nng_aio_get_msg(a->aio));
		async_finish(
		    a,
		    transport_error(a->client, &a->out, rv, a->receiving, &err),
		    NULL);
		return;
	}
	if (a->receiving) {
		async_finish(a, 0, nng_aio_get_msg(a->aio));
		return;
	}
	a->receiving = true;
	nng_aio_set_timeout(a->aio, remaining_ms(&a->out));
	nng_ctx_recv(a->ctx, a->aio);
}

int rpc_client_call_async(struct rpc_client *c, const struct rpc_context *ctx,
			  const char *method, const uint8_t *payload,
			  size_t len, rpc_done_fn done, void *arg)
{
	struct async_call *a;
	int rc;

	if (!done)
		return ERR_INVALID;
	a = calloc(1, sizeof(*a));
	if (!a)
		return ERR_NOMEM;
	if (!call_begin(c, &a->link)) {
		free(a);
		return ERR_UNAVAILABLE;
	}
	a->client = c;
	a->done = done;
	a->arg = arg;
	rc = prepare(c, ctx, method, payload, len, &a->out);
	if (rc)
		goto out_free_call;
	rc = open_context(c, &a->out, &a->ctx);
	if (rc)
		goto out_free_frame;
	if (nng_aio_alloc(&a->aio, async_step, a) != 0) {
		rc = ERR_NOMEM;
		goto out_close_ctx;
	}
	call_set_aio(c, &a->link, a->aio);
	nng_aio_set_timeout(a->aio, remaining_ms(&a->out));
	nng_aio_set_msg(a->aio, a->out.frame);
	a->out.frame = NULL;
	/* from here on, async_step owns a and reports exactly once */
	nng_ctx_send(a->ctx, a->aio);
	return 0;

out_close_ctx:
	nng_ctx_close(a->ctx);
out_free_frame:
	nng_msg_free(a->out.frame);
out_free_call:
	call_end(c, &a->link);
	free(a);
	return rc;
}
