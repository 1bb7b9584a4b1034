/* test_rpc.c - unit tests of common/rpc over real nng sockets (ipc, inproc). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "arena.h"
#include "instant.h"
#include "log.h"
#include "rpc.h"
#include "secure.h"
#include "creneau/v1/service.pb-c.h"

#define SLOW_MS 400

static uint8_t key[SECURE_KEY_BYTES];
static uint8_t wrong_key[SECURE_KEY_BYTES];
static char dir[64]; /* ipc sockets of this run */

/* What a test server hands its handlers. */
struct app {
	const char *name;
	atomic_int slow_entered;
	atomic_int served;
};

/* ---- handlers ---- */

static int handle_health(struct rpc_call *call, const ProtobufCMessage *request,
			 ProtobufCMessage **reply_out)
{
	struct app *app = rpc_call_app(call);
	const Creneau__V1__Principal *who = rpc_call_principal(call);
	Creneau__V1__HealthReply *r;

	r = arena_alloc(rpc_call_arena(call), sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	creneau__v1__health_reply__init(r);
	r->service = arena_printf(rpc_call_arena(call), "%s|%s",
				  who->account_id, who->session_id);
	r->version = (char *)rpc_call_request_id(call);
	r->instance = (char *)app->name;
	r->uptime_s = who->role;
	r->events_head = (uint64_t)rpc_call_deadline_ms(call);
	r->database_ok = rpc_call_db(call) != NULL;
	atomic_fetch_add(&app->served, 1);
	*reply_out = &r->base;
	return 0;
}

static int handle_sweep(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out)
{
	const Creneau__V1__SweepRequest *req =
	    (const Creneau__V1__SweepRequest *)request;
	Creneau__V1__SweepReply *r;

	r = arena_alloc(rpc_call_arena(call), sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	creneau__v1__sweep_reply__init(r);
	r->erased = (uint32_t)strlen(req->category);
	r->anonymised = (uint32_t)req->cutoff_ms;
	*reply_out = &r->base;
	return 0;
}

static int handle_rule(struct rpc_call *call, const ProtobufCMessage *request,
		       ProtobufCMessage **reply_out)
{
	return rpc_call_fail(call, ERR_RULE, "slot_taken", "start",
			     "slot %d is taken", 3);
}

static int handle_not_found(struct rpc_call *call,
			    const ProtobufCMessage *request,
			    ProtobufCMessage **reply_out)
{
	return ERR_NOT_FOUND;
}

static int handle_stale_fail(struct rpc_call *call,
			     const ProtobufCMessage *request,
			     ProtobufCMessage **reply_out)
{
	/* a detail recorded for another code does not leak into this one */
	(void)rpc_call_fail(call, ERR_INVALID, "bad_field", "x", "bad x");
	return ERR_INTERNAL;
}

static int handle_rate(struct rpc_call *call, const ProtobufCMessage *request,
		       ProtobufCMessage **reply_out)
{
	rpc_call_retry_after(call, 7);
	return rpc_call_fail(call, ERR_RATE_LIMITED, NULL, NULL, "slow down");
}

static int handle_slow(struct rpc_call *call, const ProtobufCMessage *request,
		       ProtobufCMessage **reply_out)
{
	struct app *app = rpc_call_app(call);

	atomic_fetch_add(&app->slow_entered, 1);
	nng_msleep(SLOW_MS);
	return handle_health(call, request, reply_out);
}

static const struct rpc_method methods[] = {
    {"Health", &creneau__v1__health_request__descriptor, handle_health},
    {"Sweep", &creneau__v1__sweep_request__descriptor, handle_sweep},
    {"Rule", &creneau__v1__health_request__descriptor, handle_rule},
    {"NotFound", &creneau__v1__health_request__descriptor, handle_not_found},
    {"StaleFail", &creneau__v1__health_request__descriptor, handle_stale_fail},
    {"Rate", &creneau__v1__health_request__descriptor, handle_rate},
    {"Slow", &creneau__v1__health_request__descriptor, handle_slow},
};

/* ---- helpers ---- */

static void url_for(char *out, size_t size, const char *name)
{
	snprintf(out, size, "ipc://%s/%s.ipc", dir, name);
}

static struct rpc_server *start_server(const char *url, struct app *app,
				       int workers)
{
	struct rpc_server_config cfg = {
	    .service = "test",
	    .listen_url = url,
	    .workers = workers,
	    .key = key,
	    .methods = methods,
	    .n_methods = sizeof(methods) / sizeof(methods[0]),
	    .db_conninfo = NULL,
	    .app = app,
	};
	struct rpc_server *srv = NULL;

	assert_int_equal(rpc_server_start(&srv, &cfg), 0);
	assert_non_null(srv);
	return srv;
}

static struct rpc_client *open_client(const char *urls, const uint8_t *k)
{
	struct rpc_client *c = NULL;

	assert_int_equal(rpc_client_open(&c, "test", urls, k, "test_rpc"), 0);
	assert_non_null(c);
	return c;
}

/* Calls Health; on success copies the replying instance into instance. */
static int call_health(struct rpc_client *c, int timeout_ms, char *instance,
		       size_t size, struct rpc_error *err)
{
	Creneau__V1__HealthRequest req = CRENEAU__V1__HEALTH_REQUEST__INIT;
	struct rpc_context ctx = {.timeout_ms = timeout_ms};
	struct arena *arena = arena_new(0);
	ProtobufCMessage *reply = NULL;
	int rc;

	assert_non_null(arena);
	rc = rpc_client_call(c, &ctx, "Health", &req.base,
			     &creneau__v1__health_reply__descriptor, arena,
			     &reply, err);
	if (rc == 0 && instance)
		snprintf(instance, size, "%s",
			 ((Creneau__V1__HealthReply *)reply)->instance);
	arena_free(arena);
	return rc;
}

/* A raw frame: MAC under k || packed req. */
static nng_msg *raw_frame(const uint8_t *k, const Creneau__V1__Request *req)
{
	size_t len = creneau__v1__request__get_packed_size(req);
	nng_msg *m;

	assert_int_equal(nng_msg_alloc(&m, SECURE_MAC_BYTES + len), 0);
	creneau__v1__request__pack(req, (uint8_t *)nng_msg_body(m) +
					    SECURE_MAC_BYTES);
	secure_mac(k, (uint8_t *)nng_msg_body(m) + SECURE_MAC_BYTES, len,
		   nng_msg_body(m));
	return m;
}

/* Sends body on a fresh raw REQ context; returns the reply or NULL when
 * none came within timeout_ms. */
static nng_msg *raw_exchange(nng_socket s, nng_msg *m, int timeout_ms)
{
	nng_ctx ctx;
	nng_aio *aio;
	nng_msg *reply = NULL;

	assert_int_equal(nng_ctx_open(&ctx, s), 0);
	assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
	nng_aio_set_timeout(aio, timeout_ms);
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	assert_int_equal(nng_aio_result(aio), 0);
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) == 0)
		reply = nng_aio_get_msg(aio);
	else
		assert_int_equal(nng_aio_result(aio), NNG_ETIMEDOUT);
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return reply;
}

/* Checks the MAC of a reply frame and unpacks it. */
static Creneau__V1__Reply *open_raw_reply(nng_msg *m)
{
	const uint8_t *body = nng_msg_body(m);
	size_t len = nng_msg_len(m);

	assert_true(len >= SECURE_MAC_BYTES);
	assert_true(secure_mac_verify(key, body + SECURE_MAC_BYTES,
				      len - SECURE_MAC_BYTES, body));
	return creneau__v1__reply__unpack(NULL, len - SECURE_MAC_BYTES,
					  body + SECURE_MAC_BYTES);
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
	Creneau__V1__HealthRequest hreq = CRENEAU__V1__HEALTH_REQUEST__INIT;
	Creneau__V1__SweepRequest sreq = CRENEAU__V1__SWEEP_REQUEST__INIT;
	struct app app = {.name = "alpha"};
	struct rpc_context ctx = {
	    .request_id = "req-1",
	    .account_id = "acc-42",
	    .role = CRENEAU__V1__ROLE__ROLE_PRACTITIONER,
	    .session_id = "sess-9",
	    .timeout_ms = 2000,
	};
	struct rpc_server *srv = start_server("inproc://round_trip", &app, 2);
	struct rpc_client *c = open_client("inproc://round_trip", key);
	struct arena *arena = arena_new(0);
	Creneau__V1__HealthReply *h;
	Creneau__V1__SweepReply *s;
	ProtobufCMessage *reply;
	struct rpc_error err;
	int64_t before = instant_now_ms();

	assert_int_equal(rpc_client_call(c, &ctx, "Health", &hreq.base,
					 &creneau__v1__health_reply__descriptor,
					 arena, &reply, &err),
			 0);
	h = (Creneau__V1__HealthReply *)reply;
	assert_string_equal(h->service, "acc-42|sess-9");
	assert_string_equal(h->version, "req-1");
	assert_string_equal(h->instance, "alpha");
	assert_int_equal(h->uptime_s, CRENEAU__V1__ROLE__ROLE_PRACTITIONER);
	assert_true((int64_t)h->events_head >= before + 2000);
	assert_true((int64_t)h->events_head <= instant_now_ms() + 2000);
	assert_false(h->database_ok);

	/* a NULL context: anonymous, a fresh request id, default deadline */
	assert_int_equal(rpc_client_call(c, NULL, "Health", &hreq.base,
					 &creneau__v1__health_reply__descriptor,
					 arena, &reply, NULL),
			 0);
	h = (Creneau__V1__HealthReply *)reply;
	assert_string_equal(h->service, "|");
	assert_int_equal(strlen(h->version), 36);
	assert_int_equal(h->uptime_s, CRENEAU__V1__ROLE__ROLE_NONE);

	sreq.category = "connection_log";
	sreq.cutoff_ms = 123456;
	assert_int_equal(rpc_client_call(c, &ctx, "Sweep", &sreq.base,
					 &creneau__v1__sweep_reply__descriptor,
					 arena, &reply, &err),
			 0);
	s = (Creneau__V1__SweepReply *)reply;
	assert_int_equal(s->erased, strlen("connection_log"));
	assert_int_equal(s->anonymised, 123456);

	/* the reply may be ignored */
	assert_int_equal(rpc_client_call(c, &ctx, "Sweep", &sreq.base, NULL,
					 NULL, NULL, &err),
			 0);
	assert_int_equal(atomic_load(&app.served), 2);

	arena_free(arena);
	rpc_client_free(c);
	rpc_server_stop(srv);
}

static void test_unknown_method_and_bad_payload(void **state)
{
	Creneau__V1__HealthRequest hreq = CRENEAU__V1__HEALTH_REQUEST__INIT;
	Creneau__V1__Subject bad = CRENEAU__V1__SUBJECT__INIT;
	struct app app = {.name = "alpha"};
	struct rpc_server *srv = start_server("inproc://unknown", &app, 1);
	struct rpc_client *c = open_client("inproc://unknown", key);
	struct rpc_error err;

	assert_int_equal(rpc_client_call(c, NULL, "NoSuchMethod", &hreq.base,
					 NULL, NULL, NULL, &err),
			 ERR_INVALID);
	assert_int_equal(err.code, ERR_INVALID);
	assert_string_equal(err.error_code, "unknown_method");
	assert_string_equal(err.field, "");

	/* a Subject whose email (field 2) is a string where Sweep expects
	 * cutoff_ms, a varint: the payload does not decode */
	bad.email = "not a number";
	assert_int_equal(rpc_client_call(c, NULL, "Sweep", &bad.base, NULL,
					 NULL, NULL, &err),
			 ERR_INVALID);
	assert_string_equal(err.error_code, "bad_payload");

	assert_int_equal(call_health(c, 1000, NULL, 0, NULL), 0);
	rpc_client_free(c);
	rpc_server_stop(srv);
}

static void test_handler_errors(void **state)
{
	Creneau__V1__HealthRequest hreq = CRENEAU__V1__HEALTH_REQUEST__INIT;
	struct app app = {.name = "alpha"};
	struct rpc_server *srv = start_server("inproc://errors", &app, 1);
	struct rpc_client *c = open_client("inproc://errors", key);
	struct rpc_error err;

	assert_int_equal(rpc_client_call(c, NULL, "Rule", &hreq.base, NULL,
					 NULL, NULL, &err),
			 ERR_RULE);
	assert_int_equal(err.code, ERR_RULE);
	assert_string_equal(err.error_code, "slot_taken");
	assert_string_equal(err.field, "start");
	assert_string_equal(err.message, "slot 3 is taken");

	assert_int_equal(rpc_client_call(c, NULL, "NotFound", &hreq.base, NULL,
					 NULL, NULL, &err),
			 ERR_NOT_FOUND);
	assert_string_equal(err.error_code, error_name(ERR_NOT_FOUND));
	assert_string_equal(err.field, "");

	assert_int_equal(rpc_client_call(c, NULL, "StaleFail", &hreq.base, NULL,
					 NULL, NULL, &err),
			 ERR_INTERNAL);
	assert_string_equal(err.error_code, error_name(ERR_INTERNAL));
	assert_string_equal(err.field, "");

	assert_int_equal(rpc_client_call(c, NULL, "Rate", &hreq.base, NULL,
					 NULL, NULL, &err),
			 ERR_RATE_LIMITED);
	assert_string_equal(err.error_code, error_name(ERR_RATE_LIMITED));
	assert_string_equal(err.message, "slow down");
	assert_int_equal(err.retry_after_s, 7);

	rpc_client_free(c);
	rpc_server_stop(srv);
}

static void test_bad_mac_is_dropped(void **state)
{
	struct app app = {.name = "alpha"};
	char url[128];
	struct rpc_server *srv;
	struct rpc_client *good, *bad;
	struct rpc_error err;

	url_for(url, sizeof(url), "mac");
	srv = start_server(url, &app, 1);
	good = open_client(url, key);
	bad = open_client(url, wrong_key);
	/* the server never answers: the caller's deadline passes */
	assert_int_equal(call_health(bad, 300, NULL, 0, &err), ERR_TIMEOUT);
	assert_string_equal(err.error_code, error_name(ERR_TIMEOUT));
	assert_int_equal(atomic_load(&app.served), 0);
	/* and it is still serving */
	assert_int_equal(call_health(good, 1000, NULL, 0, NULL), 0);
	assert_int_equal(atomic_load(&app.served), 1);
	rpc_client_free(bad);
	rpc_client_free(good);
	rpc_server_stop(srv);
}

static void test_garbage_frames(void **state)
{
	Creneau__V1__Request req = CRENEAU__V1__REQUEST__INIT;
	struct app app = {.name = "alpha"};
	char url[128];
	uint8_t junk[300];
	Creneau__V1__Reply *reply;
	struct rpc_server *srv;
	struct rpc_client *c;
	nng_socket raw;
	nng_msg *m;

	url_for(url, sizeof(url), "garbage");
	srv = start_server(url, &app, 2);
	assert_int_equal(nng_req0_open(&raw), 0);
	assert_int_equal(nng_dial(raw, url, NULL, 0), 0);

	/* random bytes, a frame shorter than a tag, an empty frame */
	secure_random(junk, sizeof(junk));
	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	assert_int_equal(nng_msg_append(m, junk, sizeof(junk)), 0);
	assert_null(raw_exchange(raw, m, 200));
	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	assert_int_equal(nng_msg_append(m, junk, 5), 0);
	assert_null(raw_exchange(raw, m, 100));
	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	assert_null(raw_exchange(raw, m, 100));

	/* authentic bytes that are no envelope get an authentic refusal */
	assert_int_equal(nng_msg_alloc(&m, SECURE_MAC_BYTES + 40), 0);
	memset((uint8_t *)nng_msg_body(m) + SECURE_MAC_BYTES, 0xff, 40);
	secure_mac(key, (uint8_t *)nng_msg_body(m) + SECURE_MAC_BYTES, 40,
		   nng_msg_body(m));
	m = raw_exchange(raw, m, 1000);
	assert_non_null(m);
	reply = open_raw_reply(m);
	assert_non_null(reply);
	assert_int_equal(reply->status, CRENEAU__V1__STATUS__STATUS_INVALID);
	assert_string_equal(reply->error_code, "bad_envelope");
	creneau__v1__reply__free_unpacked(reply, NULL);
	nng_msg_free(m);

	/* a well-formed envelope whose deadline has passed */
	req.method = "Health";
	req.request_id = "late-1";
	req.deadline_ms = instant_now_ms() - 1000;
	m = raw_exchange(raw, raw_frame(key, &req), 1000);
	assert_non_null(m);
	reply = open_raw_reply(m);
	assert_non_null(reply);
	assert_int_equal(reply->status, CRENEAU__V1__STATUS__STATUS_TIMEOUT);
	assert_string_equal(reply->request_id, "late-1");
	creneau__v1__reply__free_unpacked(reply, NULL);
	nng_msg_free(m);
	assert_int_equal(atomic_load(&app.served), 0);

	/* no deadline at all is refused: a captured frame must expire */
	req.deadline_ms = 0;
	m = raw_exchange(raw, raw_frame(key, &req), 1000);
	assert_non_null(m);
	reply = open_raw_reply(m);
	assert_non_null(reply);
	assert_int_equal(reply->status, CRENEAU__V1__STATUS__STATUS_TIMEOUT);
	creneau__v1__reply__free_unpacked(reply, NULL);
	nng_msg_free(m);

	/* nor is one further ahead than any caller may ask for */
	req.deadline_ms = instant_now_ms() + 24LL * 3600 * 1000;
	m = raw_exchange(raw, raw_frame(key, &req), 1000);
	assert_non_null(m);
	reply = open_raw_reply(m);
	assert_non_null(reply);
	assert_int_equal(reply->status, CRENEAU__V1__STATUS__STATUS_INVALID);
	assert_string_equal(reply->error_code, "bad_deadline");
	creneau__v1__reply__free_unpacked(reply, NULL);
	nng_msg_free(m);
	assert_int_equal(atomic_load(&app.served), 0);

	nng_close(raw);
	c = open_client(url, key);
	assert_int_equal(call_health(c, 1000, NULL, 0, NULL), 0);
	assert_int_equal(atomic_load(&app.served), 1);
	rpc_client_free(c);
	rpc_server_stop(srv);
}

static void test_deadline_passes(void **state)
{
	struct app app = {.name = "alpha"};
	Creneau__V1__HealthRequest req = CRENEAU__V1__HEALTH_REQUEST__INIT;
	struct rpc_context ctx = {.timeout_ms = 100};
	struct rpc_server *srv = start_server("inproc://deadline", &app, 1);
	struct rpc_client *c = open_client("inproc://deadline", key);
	struct rpc_error err;
	int64_t t0 = instant_mono_ms();

	assert_int_equal(
	    rpc_client_call(c, &ctx, "Slow", &req.base, NULL, NULL, NULL, &err),
	    ERR_TIMEOUT);
	assert_int_equal(err.code, ERR_TIMEOUT);
	assert_true(instant_mono_ms() - t0 < SLOW_MS);
	/* the worker finishes the slow one, then serves again */
	assert_int_equal(call_health(c, 2000, NULL, 0, NULL), 0);
	rpc_client_free(c);
	rpc_server_stop(srv);
}

static void test_unreachable(void **state)
{
	char url[128];
	struct rpc_client *c;
	struct rpc_error err;

	url_for(url, sizeof(url), "nobody");
	c = open_client(url, key);
	assert_int_equal(call_health(c, 200, NULL, 0, &err), ERR_UNAVAILABLE);
	assert_int_equal(err.code, ERR_UNAVAILABLE);
	rpc_client_free(c);
}

/* A replica that answers one request with a reply sealed under another key. */
static void *liar_main(void *arg)
{
	nng_socket *rep = arg;
	Creneau__V1__Reply reply = CRENEAU__V1__REPLY__INIT;
	size_t len = creneau__v1__reply__get_packed_size(&reply);
	nng_msg *m;

	if (nng_recvmsg(*rep, &m, 0) != 0)
		return NULL;
	nng_msg_clear(m);
	if (nng_msg_realloc(m, SECURE_MAC_BYTES + len) == 0) {
		creneau__v1__reply__pack(&reply, (uint8_t *)nng_msg_body(m) +
						     SECURE_MAC_BYTES);
		secure_mac(wrong_key,
			   (uint8_t *)nng_msg_body(m) + SECURE_MAC_BYTES, len,
			   nng_msg_body(m));
		if (nng_sendmsg(*rep, m, 0) == 0)
			return NULL;
	}
	nng_msg_free(m);
	return NULL;
}

static void test_bad_reply_mac(void **state)
{
	char url[128];
	struct rpc_client *c;
	struct rpc_error err;
	nng_socket rep;
	pthread_t liar;

	url_for(url, sizeof(url), "liar");
	assert_int_equal(nng_rep0_open(&rep), 0);
	assert_int_equal(nng_listen(rep, url, NULL, 0), 0);
	assert_int_equal(pthread_create(&liar, NULL, liar_main, &rep), 0);
	c = open_client(url, key);
	assert_int_equal(call_health(c, 2000, NULL, 0, &err), ERR_PROTOCOL);
	assert_int_equal(err.code, ERR_PROTOCOL);
	pthread_join(liar, NULL);
	nng_close(rep);
	rpc_client_free(c);
}

/* Calls Health until instance answered, for at most ms. */
static bool reaches(struct rpc_client *c, const char *instance, int ms)
{
	int64_t end = instant_mono_ms() + ms;
	char seen[32];

	while (instant_mono_ms() < end) {
		if (call_health(c, 500, seen, sizeof(seen), NULL) == 0 &&
		    strcmp(seen, instance) == 0)
			return true;
	}
	return false;
}

static void test_failover(void **state)
{
	struct app a = {.name = "a"}, b = {.name = "b"},
		   late = {.name = "late"};
	char url_a[128], url_b[128], url_late[128], urls[400];
	struct rpc_server *srv_a, *srv_b, *srv_late;
	struct rpc_client *c;
	char seen[32];

	url_for(url_a, sizeof(url_a), "replica-a");
	url_for(url_b, sizeof(url_b), "replica-b");
	url_for(url_late, sizeof(url_late), "replica-late");
	srv_a = start_server(url_a, &a, 2);
	srv_b = start_server(url_b, &b, 2);
	/* a replica that is down when the client starts is dialed later */
	snprintf(urls, sizeof(urls), "%s, %s ,%s", url_a, url_b, url_late);
	c = open_client(urls, key);
	assert_true(reaches(c, "a", 2000));
	assert_true(reaches(c, "b", 2000));
	srv_late = start_server(url_late, &late, 1);
	assert_true(reaches(c, "late", 3000));

	rpc_server_stop(srv_a);
	rpc_server_stop(srv_late);
	for (int i = 0; i < 30; i++) {
		assert_int_equal(call_health(c, 2000, seen, sizeof(seen), NULL),
				 0);
		assert_string_equal(seen, "b");
	}
	rpc_client_free(c);
	rpc_server_stop(srv_b);
}

/* A replica that takes one request and dies without answering. */
struct black_hole {
	nng_socket sock;
	atomic_int swallowed;
};

static void *black_hole_main(void *arg)
{
	struct black_hole *hole = arg;
	nng_msg *m;

	if (nng_recvmsg(hole->sock, &m, 0) == 0) {
		nng_msg_free(m);
		atomic_store(&hole->swallowed, 1);
	}
	nng_close(hole->sock);
	return NULL;
}

static void test_request_outlives_its_replica(void **state)
{
	struct app b = {.name = "b"};
	char url_hole[128], url_b[128], urls[300];
	struct black_hole hole = {.swallowed = 0};
	struct rpc_server *srv_b;
	struct rpc_client *c;
	pthread_t t;
	int64_t t0 = instant_mono_ms(), call_start;

	url_for(url_hole, sizeof(url_hole), "black-hole");
	url_for(url_b, sizeof(url_b), "survivor");
	assert_int_equal(nng_rep0_open(&hole.sock), 0);
	assert_int_equal(nng_listen(hole.sock, url_hole, NULL, 0), 0);
	assert_int_equal(pthread_create(&t, NULL, black_hole_main, &hole), 0);
	srv_b = start_server(url_b, &b, 2);
	snprintf(urls, sizeof(urls), "%s,%s", url_hole, url_b);
	c = open_client(urls, key);
	/* The call that lands in the hole is resent to b as soon as the
	 * hole's connection closes: it succeeds long before its deadline. */
	while (!atomic_load(&hole.swallowed) && instant_mono_ms() - t0 < 2000) {
		call_start = instant_mono_ms();
		assert_int_equal(call_health(c, 3000, NULL, 0, NULL), 0);
		assert_true(instant_mono_ms() - call_start < 1000);
	}
	assert_true(atomic_load(&hole.swallowed));
	pthread_join(t, NULL);
	for (int i = 0; i < 5; i++)
		assert_int_equal(call_health(c, 1000, NULL, 0, NULL), 0);
	rpc_client_free(c);
	rpc_server_stop(srv_b);
}

#define CALLERS 8
#define CALLS	200

struct caller {
	struct rpc_client *client;
	int index;
	int calls;
	int failures;
};

static void *caller_main(void *arg)
{
	struct caller *me = arg;
	struct arena *arena = arena_new(0);
	Creneau__V1__SweepRequest req = CRENEAU__V1__SWEEP_REQUEST__INIT;
	struct rpc_context ctx = {.timeout_ms = 5000};
	char category[32];

	if (!arena) {
		me->failures = me->calls;
		return NULL;
	}
	for (int i = 0; i < me->calls; i++) {
		ProtobufCMessage *reply;
		Creneau__V1__SweepReply *r;

		/* categories of different lengths per caller */
		snprintf(category, sizeof(category), "c%.*s%d", me->index,
			 "xxxxxxxxxxxxxxxx", i);
		req.category = category;
		req.cutoff_ms = me->index * 1000 + i;
		if (rpc_client_call(me->client, &ctx, "Sweep", &req.base,
				    &creneau__v1__sweep_reply__descriptor,
				    arena, &reply, NULL) != 0) {
			me->failures++;
			continue;
		}
		r = (Creneau__V1__SweepReply *)reply;
		if (r->erased != strlen(category) ||
		    r->anonymised != (uint32_t)req.cutoff_ms)
			me->failures++;
		arena_reset(arena);
	}
	arena_free(arena);
	return NULL;
}

static void test_many_callers(void **state)
{
	struct app app = {.name = "alpha"};
	struct caller callers[CALLERS];
	pthread_t threads[CALLERS];
	struct rpc_server *srv;
	struct rpc_client *c;
	char url[128];

	url_for(url, sizeof(url), "busy");
	srv = start_server(url, &app, 4);
	c = open_client(url, key);
	for (int i = 0; i < CALLERS; i++) {
		callers[i] =
		    (struct caller){.client = c, .index = i, .calls = CALLS};
		assert_int_equal(
		    pthread_create(&threads[i], NULL, caller_main, &callers[i]),
		    0);
	}
	for (int i = 0; i < CALLERS; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(callers[i].failures, 0);
	}
	rpc_client_free(c);
	rpc_server_stop(srv);
}

/* A replica stopped (SIGTERM) under load: every call still succeeds,
 * served by it before it stopped or resent to the other one. */
static void test_stop_under_load(void **state)
{
	struct app a = {.name = "a"}, b = {.name = "b"};
	char url_a[128], url_b[128], urls[300];
	struct caller callers[4];
	pthread_t threads[4];
	struct rpc_server *srv_a, *srv_b;
	struct rpc_client *c;

	url_for(url_a, sizeof(url_a), "load-a");
	url_for(url_b, sizeof(url_b), "load-b");
	srv_a = start_server(url_a, &a, 2);
	srv_b = start_server(url_b, &b, 2);
	snprintf(urls, sizeof(urls), "%s,%s", url_a, url_b);
	c = open_client(urls, key);
	assert_true(reaches(c, "a", 2000));
	assert_true(reaches(c, "b", 2000));
	for (int i = 0; i < 4; i++) {
		callers[i] =
		    (struct caller){.client = c, .index = i, .calls = 400};
		assert_int_equal(
		    pthread_create(&threads[i], NULL, caller_main, &callers[i]),
		    0);
	}
	nng_msleep(30);
	rpc_server_stop(srv_a);
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(callers[i].failures, 0);
	}
	rpc_client_free(c);
	rpc_server_stop(srv_b);
}

/* What asynchronous completions report, for the test thread to wait on. */
struct box {
	pthread_mutex_t lock;
	pthread_cond_t done;
	int calls;
	int rc;
	struct rpc_error err;
	char instance[32];
};

static void box_init(struct box *b)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->done, NULL);
}

static void box_fini(struct box *b)
{
	pthread_cond_destroy(&b->done);
	pthread_mutex_destroy(&b->lock);
}

static void on_done(void *arg, int rc, const struct rpc_error *err,
		    const uint8_t *payload, size_t len)
{
	struct box *b = arg;
	Creneau__V1__HealthReply *h;

	pthread_mutex_lock(&b->lock);
	b->calls++;
	b->rc = rc;
	if (rc == 0) {
		h = creneau__v1__health_reply__unpack(NULL, len, payload);
		if (h) {
			snprintf(b->instance, sizeof(b->instance), "%s",
				 h->instance);
			creneau__v1__health_reply__free_unpacked(h, NULL);
		}
	} else if (err) {
		b->err = *err;
	}
	pthread_cond_broadcast(&b->done);
	pthread_mutex_unlock(&b->lock);
}

static void box_wait(struct box *b)
{
	pthread_mutex_lock(&b->lock);
	while (b->calls == 0)
		pthread_cond_wait(&b->done, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

static void test_async(void **state)
{
	struct app app = {.name = "alpha"};
	struct rpc_context quick = {.timeout_ms = 100};
	struct rpc_server *srv = start_server("inproc://async", &app, 2);
	struct rpc_client *c = open_client("inproc://async", key);
	struct box b;

	box_init(&b);
	assert_int_equal(
	    rpc_client_call_async(c, NULL, "Health", NULL, 0, on_done, &b), 0);
	box_wait(&b);
	nng_msleep(50);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.instance, "alpha");
	box_fini(&b);

	box_init(&b);
	assert_int_equal(
	    rpc_client_call_async(c, NULL, "Rule", NULL, 0, on_done, &b), 0);
	box_wait(&b);
	assert_int_equal(b.rc, ERR_RULE);
	assert_string_equal(b.err.error_code, "slot_taken");
	assert_string_equal(b.err.field, "start");
	box_fini(&b);

	box_init(&b);
	assert_int_equal(
	    rpc_client_call_async(c, &quick, "Slow", NULL, 0, on_done, &b), 0);
	box_wait(&b);
	assert_int_equal(b.rc, ERR_TIMEOUT);
	box_fini(&b);

	/* refused up front: no callback */
	assert_int_equal(
	    rpc_client_call_async(c, NULL, "", NULL, 0, on_done, &b),
	    ERR_INVALID);
	assert_int_equal(
	    rpc_client_call_async(c, NULL, "Health", NULL, 0, NULL, NULL),
	    ERR_INVALID);

	/* a client freed with a call in flight reports it, once */
	box_init(&b);
	assert_int_equal(
	    rpc_client_call_async(c, NULL, "Slow", NULL, 0, on_done, &b), 0);
	rpc_client_free(c);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.rc, ERR_UNAVAILABLE);
	box_fini(&b);
	rpc_server_stop(srv);
}

struct slow_caller {
	struct rpc_client *client;
	int rc;
	char instance[32];
};

static void *slow_caller_main(void *arg)
{
	struct slow_caller *me = arg;
	Creneau__V1__HealthRequest req = CRENEAU__V1__HEALTH_REQUEST__INIT;
	struct rpc_context ctx = {.timeout_ms = 3000};
	struct arena *arena = arena_new(0);
	ProtobufCMessage *reply = NULL;

	me->rc = ERR_NOMEM;
	if (!arena)
		return NULL;
	me->rc = rpc_client_call(me->client, &ctx, "Slow", &req.base,
				 &creneau__v1__health_reply__descriptor, arena,
				 &reply, NULL);
	if (me->rc == 0)
		snprintf(me->instance, sizeof(me->instance), "%s",
			 ((Creneau__V1__HealthReply *)reply)->instance);
	arena_free(arena);
	return NULL;
}

/* Freeing a client cancels its calls in flight: each ends once, unavailable,
 * without waiting for its deadline. */
static void test_client_free_cancels_calls(void **state)
{
	struct app app = {.name = "busy"};
	struct rpc_server *srv = start_server("inproc://cancel", &app, 4);
	struct rpc_client *c = open_client("inproc://cancel", key);
	struct slow_caller sync_callers[3];
	pthread_t threads[3];
	struct box boxes[20];
	int64_t t0;

	for (int i = 0; i < 3; i++) {
		sync_callers[i] = (struct slow_caller){.client = c};
		assert_int_equal(pthread_create(&threads[i], NULL,
						slow_caller_main,
						&sync_callers[i]),
				 0);
	}
	for (int i = 0; i < 20; i++) {
		box_init(&boxes[i]);
		assert_int_equal(rpc_client_call_async(c, NULL, "Slow", NULL, 0,
						       on_done, &boxes[i]),
				 0);
	}
	t0 = instant_mono_ms();
	while (atomic_load(&app.slow_entered) == 0 &&
	       instant_mono_ms() - t0 < 2000)
		nng_msleep(5);
	t0 = instant_mono_ms();
	rpc_client_free(c);
	/* far from the 3 s deadline of the synchronous calls */
	assert_true(instant_mono_ms() - t0 < 2000);
	for (int i = 0; i < 3; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(sync_callers[i].rc, ERR_UNAVAILABLE);
	}
	for (int i = 0; i < 20; i++) {
		assert_int_equal(boxes[i].calls, 1);
		assert_int_equal(boxes[i].rc, ERR_UNAVAILABLE);
		box_fini(&boxes[i]);
	}
	rpc_server_stop(srv);
}

static void test_stop_drains_in_flight(void **state)
{
	struct app app = {.name = "draining"};
	struct slow_caller caller = {0};
	struct rpc_server *srv;
	char url[128];
	pthread_t t;
	int64_t t0;

	url_for(url, sizeof(url), "drain");
	srv = start_server(url, &app, 2);
	caller.client = open_client(url, key);
	assert_int_equal(pthread_create(&t, NULL, slow_caller_main, &caller),
			 0);
	t0 = instant_mono_ms();
	while (atomic_load(&app.slow_entered) == 0 &&
	       instant_mono_ms() - t0 < 2000)
		nng_msleep(5);
	assert_int_equal(atomic_load(&app.slow_entered), 1);
	rpc_server_stop(srv);
	pthread_join(t, NULL);
	assert_int_equal(caller.rc, 0);
	assert_string_equal(caller.instance, "draining");
	rpc_client_free(caller.client);
}

static void test_stop_idle_is_quick(void **state)
{
	struct app app = {.name = "idle"};
	struct rpc_server *srv = start_server("inproc://idle", &app, 8);
	int64_t t0 = instant_mono_ms();

	rpc_server_stop(srv);
	assert_true(instant_mono_ms() - t0 < 500);
	rpc_server_stop(NULL);
	rpc_client_free(NULL);
}

static void test_status_mapping(void **state)
{
	for (int code = ERR_INTERNAL; code <= ERR_OK; code++)
		assert_int_equal(
		    rpc_error_from_status(rpc_status_from_error(code)), code);
	assert_int_equal(rpc_status_from_error(ERR_NOMEM),
			 CRENEAU__V1__STATUS__STATUS_INTERNAL);
	assert_int_equal(rpc_status_from_error(ERR_PROTOCOL),
			 CRENEAU__V1__STATUS__STATUS_INTERNAL);
	assert_int_equal(rpc_status_from_error(12345),
			 CRENEAU__V1__STATUS__STATUS_INTERNAL);
	assert_int_equal(rpc_status_from_error(ERR_RULE),
			 CRENEAU__V1__STATUS__STATUS_RULE);
	assert_int_equal(rpc_error_from_status((Creneau__V1__Status)99),
			 ERR_PROTOCOL);
}

static void test_bad_configuration(void **state)
{
	struct app app = {.name = "x"};
	struct rpc_method broken = {"Broken", NULL, handle_health};
	struct rpc_server_config cfg = {
	    .service = "test",
	    .listen_url = "inproc://config",
	    .workers = 0,
	    .key = key,
	    .methods = methods,
	    .n_methods = 1,
	    .app = &app,
	};
	struct rpc_server *srv = (struct rpc_server *)&cfg;
	struct rpc_client *c = (struct rpc_client *)&cfg;
	struct rpc_context negative = {.timeout_ms = -5};
	struct rpc_error err;

	assert_int_equal(rpc_server_start(&srv, &cfg), ERR_INVALID);
	assert_null(srv);
	cfg.workers = 1;
	cfg.key = NULL;
	assert_int_equal(rpc_server_start(&srv, &cfg), ERR_INVALID);
	cfg.key = key;
	cfg.methods = &broken;
	assert_int_equal(rpc_server_start(&srv, &cfg), ERR_INVALID);
	cfg.methods = methods;
	cfg.listen_url = "nonsense://here";
	assert_int_equal(rpc_server_start(&srv, &cfg), ERR_INVALID);
	assert_null(srv);

	/* one address, one listener */
	cfg.listen_url = "inproc://taken";
	assert_int_equal(rpc_server_start(&srv, &cfg), 0);
	{
		struct rpc_server *second = NULL;

		assert_int_equal(rpc_server_start(&second, &cfg),
				 ERR_UNAVAILABLE);
		assert_null(second);
	}
	rpc_server_stop(srv);

	assert_int_equal(rpc_client_open(&c, "test", "", key, "t"),
			 ERR_INVALID);
	assert_null(c);
	assert_int_equal(rpc_client_open(&c, "test", " , ", key, "t"),
			 ERR_INVALID);
	assert_int_equal(rpc_client_open(&c, "test", "bogus://x", key, "t"),
			 ERR_INVALID);
	assert_int_equal(rpc_client_open(&c, "test", NULL, key, "t"),
			 ERR_INVALID);
	assert_int_equal(rpc_client_open(&c, "test", "inproc://x", NULL, "t"),
			 ERR_INVALID);

	c = open_client("inproc://nobody-here", key);
	assert_int_equal(rpc_client_call(c, &negative, "Health", NULL, NULL,
					 NULL, NULL, &err),
			 ERR_INVALID);
	assert_int_equal(err.code, ERR_INVALID);
	assert_int_equal(rpc_client_call(c, NULL, "Health", NULL,
					 &creneau__v1__health_reply__descriptor,
					 NULL, NULL, &err),
			 ERR_INVALID);
	rpc_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_unknown_method_and_bad_payload),
	    cmocka_unit_test(test_handler_errors),
	    cmocka_unit_test(test_bad_mac_is_dropped),
	    cmocka_unit_test(test_garbage_frames),
	    cmocka_unit_test(test_deadline_passes),
	    cmocka_unit_test(test_unreachable),
	    cmocka_unit_test(test_bad_reply_mac),
	    cmocka_unit_test(test_failover),
	    cmocka_unit_test(test_request_outlives_its_replica),
	    cmocka_unit_test(test_many_callers),
	    cmocka_unit_test(test_stop_under_load),
	    cmocka_unit_test(test_async),
	    cmocka_unit_test(test_client_free_cancels_calls),
	    cmocka_unit_test(test_stop_drains_in_flight),
	    cmocka_unit_test(test_stop_idle_is_quick),
	    cmocka_unit_test(test_status_mapping),
	    cmocka_unit_test(test_bad_configuration),
	};
	int failed;

	if (secure_init() != 0 || log_init("test_rpc", "warning") != 0)
		return 1;
	memset(key, 0x5a, sizeof(key));
	memset(wrong_key, 0xa5, sizeof(wrong_key));
	snprintf(dir, sizeof(dir), "/tmp/creneau-rpc-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return failed;
}
