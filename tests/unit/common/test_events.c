/* test_events.c - common/events on a real PostgreSQL and real nng sockets. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "arena.h"
#include "creneau/v1/service.pb-c.h"
#include "db.h"
#include "events.h"
#include "instant.h"
#include "log.h"
#include "rpc.h"
#include "secure.h"

static const char *pg;
static struct db *admin;
static int serial;

static const uint8_t key[SECURE_KEY_BYTES] =
	"0123456789abcdef0123456789abcde";
static const uint8_t wrong_key[SECURE_KEY_BYTES] =
	"fedcba9876543210fedcba987654321";

/* Per test: a publisher schema and a subscriber schema, both migrated. */
struct fixture {
	char pub_schema[64];
	char sub_schema[64];
	char pub_conninfo[1024];
	char sub_conninfo[1024];
	char relay_url[64];
	char rpc_url[64];
	struct db *pub; /* the test's own connection to the publisher schema */
	struct db *sub;
};

#define NEED_PG()                                                             \
	do {                                                                  \
		if (!pg)                                                      \
			skip();                                               \
	} while (0)

static void admin_exec(const char *sql)
{
	assert_int_equal(db_exec(admin, sql, 0, NULL, NULL), 0);
}

static struct db *open_migrated(const char *schema, char *conninfo,
				size_t cap)
{
	struct db *db;
	char sql[128];

	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
	admin_exec(sql);
	snprintf(conninfo, cap, "%s options='-c search_path=%s'", pg, schema);
	assert_int_equal(db_open(&db, conninfo), 0);
	assert_int_equal(db_migrate(db, schema, NULL, 0), 0);
	return db;
}

static int setup(void **state)
{
	struct fixture *f;

	if (!pg)
		return 0;
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	serial++;
	snprintf(f->pub_schema, sizeof(f->pub_schema), "tev_pub_%ld_%d",
		 (long)getpid(), serial);
	snprintf(f->sub_schema, sizeof(f->sub_schema), "tev_sub_%ld_%d",
		 (long)getpid(), serial);
	snprintf(f->relay_url, sizeof(f->relay_url), "inproc://relay-%d",
		 serial);
	snprintf(f->rpc_url, sizeof(f->rpc_url), "inproc://rpc-%d", serial);
	f->pub = open_migrated(f->pub_schema, f->pub_conninfo,
			       sizeof(f->pub_conninfo));
	f->sub = open_migrated(f->sub_schema, f->sub_conninfo,
			       sizeof(f->sub_conninfo));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char sql[128];

	if (!pg)
		return 0;
	db_close(f->pub);
	db_close(f->sub);
	snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", f->pub_schema);
	admin_exec(sql);
	snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", f->sub_schema);
	admin_exec(sql);
	free(f);
	return 0;
}

static long query_long(struct db *db, const char *sql)
{
	PGresult *res;
	long v;

	assert_int_equal(db_exec(db, sql, 0, NULL, &res), 0);
	assert_int_equal(PQntuples(res), 1);
	v = PQgetisnull(res, 0, 0) ? -1
				   : strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

/* Waits up to ms for sql to return want. */
static bool wait_for(struct db *db, const char *sql, long want, int ms)
{
	int64_t until = instant_mono_ms() + ms;

	while (instant_mono_ms() < until) {
		if (query_long(db, sql) == want)
			return true;
		usleep(20000);
	}
	return query_long(db, sql) == want;
}

/* A payload naming event i: a Subject message. */
static int publish_one(struct db *db, const char *topic, int i)
{
	Creneau__V1__Subject subject = CRENEAU__V1__SUBJECT__INIT;
	char id[32];

	snprintf(id, sizeof(id), "acct-%d", i);
	subject.account_id = id;
	return events_publish(db, topic, &subject.base);
}

static void publish_many(struct db *db, int first, int n, int per_txn)
{
	for (int i = 0; i < n; i += per_txn) {
		assert_int_equal(db_begin(db), 0);
		for (int j = i; j < n && j < i + per_txn; j++)
			assert_int_equal(
				publish_one(db, "test.made", first + j), 0);
		assert_int_equal(db_commit(db), 0);
	}
}

/* Sequences 1..n are each given once: no gap, no duplicate. */
static void assert_gapless(struct db *db, long n)
{
	assert_int_equal(query_long(db, "SELECT count(*) FROM events_outbox "
					"WHERE seq IS NOT NULL"),
			 n);
	assert_int_equal(query_long(db, "SELECT coalesce(max(seq), 0) "
					"FROM events_outbox"),
			 n);
	assert_int_equal(query_long(db, "SELECT count(DISTINCT seq) "
					"FROM events_outbox"),
			 n);
	assert_int_equal(query_long(db, "SELECT last_seq FROM events_head"),
			 n);
}

/* ---- publishing ---- */

static void test_publish_follows_transaction(void **state)
{
	struct fixture *f = *state;
	PGresult *res;

	NEED_PG();
	assert_int_equal(db_begin(f->pub), 0);
	assert_int_equal(publish_one(f->pub, "test.rolled_back", 1), 0);
	db_rollback(f->pub);
	assert_int_equal(query_long(f->pub, "SELECT count(*) "
					    "FROM events_outbox"),
			 0);

	assert_int_equal(db_begin(f->pub), 0);
	assert_int_equal(publish_one(f->pub, "test.committed", 7), 0);
	assert_int_equal(events_publish(f->pub, "test.empty", NULL), 0);
	assert_int_equal(db_commit(f->pub), 0);
	assert_int_equal(db_exec(f->pub,
				 "SELECT topic, encode(payload, 'hex'), seq "
				 "FROM events_outbox ORDER BY id",
				 0, NULL, &res),
			 0);
	assert_int_equal(PQntuples(res), 2);
	assert_string_equal(PQgetvalue(res, 0, 0), "test.committed");
	/* field 1, length 6, "acct-7" */
	assert_string_equal(PQgetvalue(res, 0, 1), "0a06616363742d37");
	assert_true(PQgetisnull(res, 0, 2));
	assert_string_equal(PQgetvalue(res, 1, 1), "");
	PQclear(res);
}

static void test_publish_invalid(void **state)
{
	struct fixture *f = *state;
	Creneau__V1__Event big = CRENEAU__V1__EVENT__INIT;
	uint8_t *blob;

	NEED_PG();
	assert_int_equal(events_publish(f->pub, "", NULL), ERR_INVALID);
	assert_int_equal(events_publish(f->pub, NULL, NULL), ERR_INVALID);
	blob = calloc(1, EVENTS_MAX_PAYLOAD);
	assert_non_null(blob);
	big.payload.data = blob;
	big.payload.len = EVENTS_MAX_PAYLOAD;
	assert_int_equal(events_publish(f->pub, "test.big", &big.base),
			 ERR_TOO_LARGE);
	free(blob);
	assert_int_equal(query_long(f->pub, "SELECT count(*) "
					    "FROM events_outbox"),
			 0);
}

/* ---- relay ---- */

static nng_socket sub_open(const char *url)
{
	nng_socket s;

	assert_int_equal(nng_sub0_open(&s), 0);
	assert_int_equal(nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
	assert_int_equal(nng_socket_set_int(s, NNG_OPT_RECVBUF, 8192), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000), 0);
	assert_int_equal(nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK), 0);
	return s;
}

/* Receives one Published frame, checking its MAC; NULL on timeout. */
static Creneau__V1__Published *sub_recv(nng_socket s)
{
	Creneau__V1__Published *p;
	nng_msg *msg;
	uint8_t *body;
	size_t len;

	if (nng_recvmsg(s, &msg, 0) != 0)
		return NULL;
	body = nng_msg_body(msg);
	len = nng_msg_len(msg);
	assert_true(len >= SECURE_MAC_BYTES);
	assert_true(secure_mac_verify(key, body + SECURE_MAC_BYTES,
				      len - SECURE_MAC_BYTES, body));
	p = creneau__v1__published__unpack(NULL, len - SECURE_MAC_BYTES,
					   body + SECURE_MAC_BYTES);
	assert_non_null(p);
	nng_msg_free(msg);
	return p;
}

static void test_relay_sequences_and_publishes(void **state)
{
	struct fixture *f = *state;
	struct events_relay *relay;
	Creneau__V1__Published *p;
	uint64_t last = 0, received = 0;
	nng_socket s;

	NEED_PG();
	publish_many(f->pub, 0, 1500, 1500); /* waiting before the relay */
	s = sub_open(f->relay_url);
	assert_int_equal(events_relay_start(&relay, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	/* the backlog is sequenced in batches, whether or not we listen */
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 1500,
			     10000));
	/* a heartbeat says so */
	do {
		p = sub_recv(s);
		assert_non_null(p);
		last = p->event ? 0 : p->head;
		creneau__v1__published__free_unpacked(p, NULL);
	} while (last != 1500);

	/* live events arrive in order, whole */
	publish_many(f->pub, 1500, 1000, 10);
	last = 1500;
	while (last < 2500) {
		p = sub_recv(s);
		assert_non_null(p);
		if (p->event) {
			Creneau__V1__Subject *subject;

			assert_string_equal(p->event->publisher, "pubsvc");
			assert_string_equal(p->event->topic, "test.made");
			assert_true(p->event->sequence > last);
			assert_int_equal(p->head, p->event->sequence);
			assert_true(p->event->time_ms > 0);
			subject = creneau__v1__subject__unpack(
				NULL, p->event->payload.len,
				p->event->payload.data);
			assert_non_null(subject);
			/* one transaction at a time: sequence = emission */
			{
				char want[32];

				snprintf(want, sizeof(want), "acct-%" PRIu64,
					 p->event->sequence - 1);
				assert_string_equal(subject->account_id, want);
			}
			creneau__v1__subject__free_unpacked(subject, NULL);
			last = p->event->sequence;
			received++;
		}
		creneau__v1__published__free_unpacked(p, NULL);
	}
	assert_true(received > 0);
	assert_gapless(f->pub, 2500);
	events_relay_stop(relay);
	nng_close(s);
	events_relay_stop(NULL);
}

/* A transaction that commits later gets the later sequence, whatever its
 * row id. */
static void test_relay_commit_order(void **state)
{
	struct fixture *f = *state;
	struct events_relay *relay;
	struct db *other;

	NEED_PG();
	assert_int_equal(events_relay_start(&relay, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	assert_int_equal(db_open(&other, f->pub_conninfo), 0);
	assert_int_equal(db_begin(other), 0);
	assert_int_equal(publish_one(other, "test.early_id", 1), 0);
	publish_many(f->pub, 2, 1, 1); /* a later id, committed first */
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 1,
			     5000));
	usleep(300000); /* the relay has had its chance at the open row */
	assert_int_equal(query_long(f->pub, "SELECT last_seq "
					    "FROM events_head"),
			 1);
	assert_int_equal(db_commit(other), 0);
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 2,
			     5000));
	assert_int_equal(query_long(f->pub, "SELECT seq FROM events_outbox "
					    "WHERE topic = 'test.early_id'"),
			 2);
	assert_int_equal(query_long(f->pub, "SELECT seq FROM events_outbox "
					    "WHERE topic = 'test.made'"),
			 1);
	publish_many(f->pub, 3, 1, 1);
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 3,
			     5000));
	db_close(other);
	events_relay_stop(relay);
}

/* Published events leave the outbox after EVENTS_RETENTION_DAYS; events
 * still waiting for their sequence never do. */
static void test_relay_prunes_old_events(void **state)
{
	struct fixture *f = *state;
	struct events_relay *relay;

	NEED_PG();
	publish_many(f->pub, 1, 3, 1);
	assert_int_equal(events_relay_start(&relay, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 3,
			     5000));
	events_relay_stop(relay);
	assert_int_equal(db_exec(f->pub,
				 "UPDATE events_outbox SET published_at = "
				 "now() - interval '8 days' WHERE seq <= 2",
				 0, NULL, NULL),
			 0);
	publish_many(f->pub, 4, 1, 1);
	assert_int_equal(db_exec(f->pub,
				 "UPDATE events_outbox SET created_at = "
				 "now() - interval '30 days' WHERE seq IS NULL",
				 0, NULL, NULL),
			 0);
	/* a relay prunes when it starts, then every ten minutes */
	assert_int_equal(events_relay_start(&relay, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	assert_true(wait_for(f->pub, "SELECT count(*) FROM events_outbox", 2,
			     5000));
	assert_int_equal(query_long(f->pub, "SELECT min(seq) "
					    "FROM events_outbox"),
			 3);
	assert_int_equal(query_long(f->pub, "SELECT last_seq "
					    "FROM events_head"),
			 4);
	events_relay_stop(relay);
}

static void test_relay_replicas(void **state)
{
	struct fixture *f = *state;
	struct events_relay *r1, *r2;
	char url2[80];
	char sql[256];

	NEED_PG();
	snprintf(url2, sizeof(url2), "%s-b", f->relay_url);
	assert_int_equal(events_relay_start(&r1, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	assert_int_equal(events_relay_start(&r2, "pubsvc", f->pub_conninfo,
					    url2, key),
			 0);
	/* the same URL twice is refused */
	{
		struct events_relay *r3 = (struct events_relay *)1;

		assert_int_equal(events_relay_start(&r3, "pubsvc",
						    f->pub_conninfo, url2, key),
				 ERR_UNAVAILABLE);
		assert_null(r3);
		assert_int_equal(events_relay_start(&r3, "pubsvc",
						    f->pub_conninfo,
						    "nope://x", key),
				 ERR_INVALID);
	}
	publish_many(f->pub, 0, 300, 7);
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 300,
			     10000));
	/* one relay holds the lock */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
		 "AND granted AND objsubid = 2 AND "
		 "classid = hashtext('creneau.relay')::oid AND "
		 "objid = hashtext('%s')::oid",
		 f->pub_schema);
	assert_int_equal(query_long(f->pub, sql), 1);
	/* whichever stops, the other carries on */
	events_relay_stop(r1);
	publish_many(f->pub, 300, 100, 3);
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 400,
			     10000));
	assert_int_equal(events_relay_start(&r1, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	events_relay_stop(r2);
	publish_many(f->pub, 400, 100, 3);
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 500,
			     10000));
	assert_gapless(f->pub, 500);
	events_relay_stop(r1);
}

/* The relay survives its connection being cut. */
static void test_relay_reconnects(void **state)
{
	struct fixture *f = *state;
	struct events_relay *relay;
	char sql[256];

	NEED_PG();
	assert_int_equal(events_relay_start(&relay, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	publish_many(f->pub, 0, 10, 1);
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 10,
			     5000));
	snprintf(sql, sizeof(sql),
		 "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
		 "WHERE locktype = 'advisory' AND objsubid = 2 AND "
		 "classid = hashtext('creneau.relay')::oid AND "
		 "objid = hashtext('%s')::oid",
		 f->pub_schema);
	assert_int_equal(query_long(admin, sql), 1);
	publish_many(f->pub, 10, 10, 1);
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 20,
			     10000));
	assert_gapless(f->pub, 20);
	events_relay_stop(relay);
}

/* ---- FetchEvents ---- */

static const struct rpc_method fetch_methods[] = {EVENTS_FETCH_METHOD};

static struct rpc_server *serve_fetch(struct fixture *f)
{
	struct rpc_server_config cfg = {
		.service = "pubsvc",
		.listen_url = f->rpc_url,
		.workers = 2,
		.key = key,
		.methods = fetch_methods,
		.n_methods = 1,
		.db_conninfo = f->pub_conninfo,
	};
	struct rpc_server *srv;

	assert_int_equal(rpc_server_start(&srv, &cfg), 0);
	return srv;
}

static int fetch(struct rpc_client *c, Creneau__V1__Role role, uint64_t after,
		 uint32_t limit, struct arena *a,
		 Creneau__V1__FetchEventsReply **reply_out)
{
	Creneau__V1__FetchEventsRequest req =
		CRENEAU__V1__FETCH_EVENTS_REQUEST__INIT;
	struct rpc_context ctx = {.account_id = "test", .role = role};

	req.after = after;
	req.limit = limit;
	return rpc_client_call(c, &ctx, "FetchEvents", &req.base,
			       &creneau__v1__fetch_events_reply__descriptor, a,
			       (ProtobufCMessage **)reply_out, NULL);
}

static void test_fetch(void **state)
{
	const Creneau__V1__Role service = CRENEAU__V1__ROLE__ROLE_SERVICE;
	struct fixture *f = *state;
	Creneau__V1__FetchEventsReply *reply;
	struct events_relay *relay;
	struct rpc_server *srv;
	struct rpc_client *c;
	struct arena *a = arena_new(0);

	NEED_PG();
	srv = serve_fetch(f);
	assert_int_equal(rpc_client_open(&c, "pubsvc", f->rpc_url, key,
					 "test"),
			 0);
	/* nothing yet */
	assert_int_equal(fetch(c, service, 0, 0, a, &reply), 0);
	assert_int_equal(reply->n_events, 0);
	assert_int_equal(reply->head, 0);

	publish_many(f->pub, 0, 1200, 100);
	assert_int_equal(events_relay_start(&relay, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 1200,
			     10000));
	publish_many(f->pub, 1200, 5, 5); /* not sequenced: stopped first */
	events_relay_stop(relay);

	assert_int_equal(fetch(c, service, 10, 5, a, &reply), 0);
	assert_int_equal(reply->n_events, 5);
	assert_true(reply->head >= 1200);
	for (size_t i = 0; i < reply->n_events; i++) {
		assert_int_equal(reply->events[i]->sequence, 11 + i);
		assert_string_equal(reply->events[i]->publisher, "pubsvc");
		assert_string_equal(reply->events[i]->topic, "test.made");
	}
	/* the server caps a page at 1000 */
	assert_int_equal(fetch(c, service, 0, 0, a, &reply), 0);
	assert_int_equal(reply->n_events, 1000);
	assert_int_equal(reply->events[999]->sequence, 1000);
	assert_int_equal(fetch(c, service, 0, 100000, a, &reply), 0);
	assert_int_equal(reply->n_events, 1000);
	assert_int_equal(fetch(c, service, reply->head, 10, a, &reply), 0);
	assert_int_equal(reply->n_events, 0);
	/* services only; bad input changes nothing */
	assert_int_equal(fetch(c, CRENEAU__V1__ROLE__ROLE_CLIENT, 0, 10, a,
			       &reply),
			 ERR_FORBIDDEN);
	assert_int_equal(fetch(c, service, UINT64_MAX, 10, a, &reply),
			 ERR_INVALID);
	arena_free(a);
	rpc_client_free(c);
	rpc_server_stop(srv);
}

/* Big payloads: relay batches and fetch pages are bounded in bytes too. */
static void test_large_events(void **state)
{
	const Creneau__V1__Role service = CRENEAU__V1__ROLE__ROLE_SERVICE;
	struct fixture *f = *state;
	Creneau__V1__FetchEventsReply *reply;
	Creneau__V1__Event big = CRENEAU__V1__EVENT__INIT;
	struct events_relay *relay;
	struct rpc_server *srv;
	struct rpc_client *c;
	struct arena *a = arena_new(0);
	uint64_t after = 0;
	int pages = 0;

	NEED_PG();
	big.payload.len = 900 * 1024;
	big.payload.data = calloc(1, big.payload.len);
	assert_non_null(big.payload.data);
	assert_int_equal(db_begin(f->pub), 0);
	for (int i = 0; i < 12; i++) {
		big.sequence = (uint64_t)i; /* makes each payload distinct */
		assert_int_equal(events_publish(f->pub, "test.big", &big.base),
				 0);
	}
	assert_int_equal(db_commit(f->pub), 0);
	free(big.payload.data);
	assert_int_equal(events_relay_start(&relay, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 12,
			     20000));
	assert_gapless(f->pub, 12);
	events_relay_stop(relay);

	srv = serve_fetch(f);
	assert_int_equal(rpc_client_open(&c, "pubsvc", f->rpc_url, key,
					 "test"),
			 0);
	while (after < 12) {
		arena_reset(a);
		assert_int_equal(fetch(c, service, after, 0, a, &reply), 0);
		assert_true(reply->n_events >= 1 && reply->n_events <= 3);
		for (size_t i = 0; i < reply->n_events; i++) {
			assert_int_equal(reply->events[i]->sequence, after + 1);
			assert_true(reply->events[i]->payload.len > 900 * 1024);
			after++;
		}
		pages++;
	}
	assert_int_equal(pages, 4);
	arena_free(a);
	rpc_client_free(c);
	rpc_server_stop(srv);
}

/* ---- subscriber ---- */

struct applier {
	atomic_int calls;
	atomic_int failures_left; /* fail this many times at fail_seq */
	uint64_t fail_seq;
};

static int apply_insert(void *arg, struct db *db, const Creneau__V1__Event *ev)
{
	struct applier *ap = arg;
	char seq[24];
	const char *params[] = {seq, ev->topic, (const char *)ev->payload.data,
				ev->publisher};
	int lengths[] = {0, 0, (int)ev->payload.len, 0};
	int formats[] = {0, 0, 1, 0};

	atomic_fetch_add(&ap->calls, 1);
	if (ev->sequence == ap->fail_seq &&
	    atomic_fetch_sub(&ap->failures_left, 1) > 0)
		return ERR_UNAVAILABLE;
	snprintf(seq, sizeof(seq), "%" PRIu64, ev->sequence);
	if (!ev->payload.len)
		params[2] = "";
	return db_exec_binary(db,
			      "INSERT INTO applied (seq, topic, payload, "
			      "publisher) VALUES ($1, $2, $3, $4)",
			      4, params, lengths, formats, NULL);
}

/* A PUB socket of the test's own, for forged frames. */
static void send_forged(nng_socket s, const uint8_t *mac_key,
			const char *publisher, uint64_t seq)
{
	Creneau__V1__Published p = CRENEAU__V1__PUBLISHED__INIT;
	Creneau__V1__Event ev = CRENEAU__V1__EVENT__INIT;
	size_t len;
	nng_msg *msg;
	uint8_t *body;

	ev.publisher = (char *)publisher;
	ev.sequence = seq;
	ev.topic = "forged";
	p.event = &ev;
	p.head = seq;
	len = creneau__v1__published__get_packed_size(&p);
	assert_int_equal(nng_msg_alloc(&msg, SECURE_MAC_BYTES + len), 0);
	body = nng_msg_body(msg);
	creneau__v1__published__pack(&p, body + SECURE_MAC_BYTES);
	secure_mac(mac_key, body + SECURE_MAC_BYTES, len, body);
	assert_int_equal(nng_sendmsg(s, msg, 0), 0);
}

static void test_subscriber(void **state)
{
	struct fixture *f = *state;
	struct applier ap = {.fail_seq = 57};
	struct events_subscription sub = {.publisher = "pubsvc",
					  .apply = apply_insert,
					  .arg = &ap};
	struct events_subscriber *s;
	struct events_relay *relay;
	struct rpc_server *srv;
	char forge_url[80], pub_urls[200];
	nng_socket forge;

	NEED_PG();
	atomic_store(&ap.failures_left, 2);
	assert_int_equal(db_exec(f->sub,
				 "CREATE TABLE applied (ord bigserial UNIQUE, "
				 "seq bigint PRIMARY KEY, topic text, "
				 "payload bytea, publisher text)",
				 0, NULL, NULL),
			 0);
	snprintf(forge_url, sizeof(forge_url), "%s-forge", f->relay_url);
	assert_int_equal(nng_pub0_open(&forge), 0);
	assert_int_equal(nng_listen(forge, forge_url, NULL, 0), 0);
	snprintf(pub_urls, sizeof(pub_urls), "%s,%s", f->relay_url, forge_url);
	sub.pub_urls = pub_urls;
	sub.rpc_urls = f->rpc_url;

	srv = serve_fetch(f);
	assert_int_equal(events_relay_start(&relay, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	publish_many(f->pub, 0, 300, 50); /* before the subscriber */
	assert_true(wait_for(f->pub, "SELECT last_seq FROM events_head", 300,
			     10000));
	assert_int_equal(events_subscriber_start(&s, "subsvc", f->sub_conninfo,
						 &sub, key),
			 0);
	assert_true(wait_for(f->sub, "SELECT count(*) FROM applied", 300,
			     20000));
	/* live, with forgeries in between */
	for (int i = 0; i < 30; i++) {
		publish_many(f->pub, 300 + i * 10, 10, 2);
		send_forged(forge, wrong_key, "pubsvc", 301 + i * 10);
		send_forged(forge, key, "someone_else", 301 + i * 10);
		usleep(10000);
	}
	assert_true(wait_for(f->sub, "SELECT count(*) FROM applied", 600,
			     20000));
	assert_int_equal(query_long(f->sub, "SELECT last_seq FROM "
					    "events_cursor WHERE publisher = "
					    "'pubsvc'"),
			 600);
	/* every sequence once, in order, as published */
	assert_int_equal(query_long(f->sub, "SELECT count(*) FROM applied "
					    "WHERE topic = 'forged' OR "
					    "publisher <> 'pubsvc'"),
			 0);
	assert_int_equal(query_long(f->sub, "SELECT max(seq) - min(seq) + 1 "
					    "FROM applied"),
			 600);
	assert_int_equal(query_long(f->sub,
				    "SELECT count(*) FROM (SELECT seq, "
				    "lag(seq) OVER (ORDER BY ord) AS prev "
				    "FROM applied) x WHERE prev IS NOT NULL "
				    "AND seq <> prev + 1"),
			 0);
	{
		char sql[400];

		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM applied a "
			 "JOIN %s.events_outbox o USING (seq) "
			 "WHERE a.payload = o.payload",
			 f->pub_schema);
		assert_int_equal(query_long(f->sub, sql), 600);
	}
	/* the failing event was retried, not skipped */
	assert_true(atomic_load(&ap.failures_left) < 0);

	/* a restarted subscriber resumes from its cursor */
	events_subscriber_stop(s);
	publish_many(f->pub, 600, 50, 5);
	assert_int_equal(events_subscriber_start(&s, "subsvc", f->sub_conninfo,
						 &sub, key),
			 0);
	assert_true(wait_for(f->sub, "SELECT count(*) FROM applied", 650,
			     20000));
	events_subscriber_stop(s);
	events_subscriber_stop(NULL);
	events_relay_stop(relay);
	rpc_server_stop(srv);
	nng_close(forge);
}

/* The relay is down: the subscriber still gets everything by fetching. */
static void test_subscriber_without_pub(void **state)
{
	struct fixture *f = *state;
	struct applier ap = {.fail_seq = 0};
	struct events_subscription sub = {.publisher = "pubsvc",
					  .pub_urls = "inproc://nobody",
					  .apply = apply_insert,
					  .arg = &ap};
	struct events_subscriber *s;
	struct events_relay *relay;
	struct rpc_server *srv;

	NEED_PG();
	assert_int_equal(db_exec(f->sub,
				 "CREATE TABLE applied (ord bigserial UNIQUE, "
				 "seq bigint PRIMARY KEY, topic text, "
				 "payload bytea, publisher text)",
				 0, NULL, NULL),
			 0);
	sub.rpc_urls = f->rpc_url;
	srv = serve_fetch(f);
	assert_int_equal(events_subscriber_start(&s, "subsvc", f->sub_conninfo,
						 &sub, key),
			 0);
	/* sequenced by a relay on a URL the subscriber never hears */
	assert_int_equal(events_relay_start(&relay, "pubsvc", f->pub_conninfo,
					    f->relay_url, key),
			 0);
	publish_many(f->pub, 0, 20, 1);
	assert_true(wait_for(f->sub, "SELECT count(*) FROM applied", 20,
			     15000));
	events_subscriber_stop(s);
	events_relay_stop(relay);
	rpc_server_stop(srv);
}

static void test_subscriber_invalid(void **state)
{
	struct events_subscription sub = {.publisher = "pubsvc",
					  .pub_urls = "inproc://x",
					  .rpc_urls = "inproc://y",
					  .apply = apply_insert};
	struct events_subscriber *s = (struct events_subscriber *)1;

	assert_int_equal(events_subscriber_start(&s, "subsvc", "", &sub, key),
			 0);
	events_subscriber_stop(s);
	sub.apply = NULL;
	assert_int_equal(events_subscriber_start(&s, "subsvc", "", &sub, key),
			 ERR_INVALID);
	assert_null(s);
	sub.apply = apply_insert;
	sub.publisher = "";
	assert_int_equal(events_subscriber_start(&s, "subsvc", "", &sub, key),
			 ERR_INVALID);
	sub.publisher = "pubsvc";
	sub.pub_urls = "bogus://nowhere";
	assert_int_equal(events_subscriber_start(&s, "subsvc", "", &sub, key),
			 ERR_INVALID);
	assert_null(s);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_publish_follows_transaction),
		T(test_publish_invalid),
		T(test_relay_sequences_and_publishes),
		T(test_relay_commit_order),
		T(test_relay_prunes_old_events),
		T(test_relay_replicas),
		T(test_relay_reconnects),
		T(test_fetch),
		T(test_large_events),
		T(test_subscriber),
		T(test_subscriber_without_pub),
		cmocka_unit_test(test_subscriber_invalid),
	};
#undef T
	const char *ci = getenv("CI");
	int rc;

	if (secure_init() ||
	    log_init("test_events",
		     getenv("CRENEAU_TEST_LOG") ? "debug" : "err"))
		return 1;
	pg = getenv("CRENEAU_TEST_PG");
	if (!pg || !*pg) {
		pg = NULL;
		if (ci && strcmp(ci, "true") == 0) {
			fprintf(stderr, "test_events: CRENEAU_TEST_PG is not "
					"set (a libpq connection string of a "
					"scratch PostgreSQL); required when "
					"CI=true\n");
			return 1;
		}
		fprintf(stderr, "test_events: CRENEAU_TEST_PG is not set: the "
				"database tests are skipped\n");
	} else if (db_open(&admin, pg) || db_ensure(admin)) {
		fprintf(stderr, "test_events: cannot connect to "
				"CRENEAU_TEST_PG\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	db_close(admin);
	return rc;
}
