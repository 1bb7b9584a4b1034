/* events.c - events never lost: outbox, relay, exactly-once subscriber. */
#include "events.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "arena.h"
#include "db.h"
#include "instant.h"
#include "log.h"
#include "secure.h"

#define BATCH 1000              /* rows sequenced at once; events per fetch */
#define FETCH_MAX_BYTES (2u * 1024 * 1024) /* payload bytes per fetch reply */
#define RELAY_MAX_BYTES (8u * 1024 * 1024) /* payload bytes per relay batch */
#define HEARTBEAT_MS 1000
#define PRUNE_EVERY_MS (10 * 60 * 1000) /* outbox retention sweep */
#define LOCK_RETRY_MS 1000
#define RECV_WAIT_MS 250        /* subscriber: PUB receive timeout */
#define POLL_MS 3000            /* subscriber: fetch when nothing came */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define FETCH_TIMEOUT_MS 5000
#define SUB_RECV_BUFFER 1024    /* messages queued before SUB drops */
#define APPLY_BATCH 100         /* fetched events applied per transaction */

/* ---- the common migration ---- */

/*
 * The outbox, the relay's head and the subscribers' cursors, in the
 * service's own schema (db_migrate puts it first on the search_path). The
 * trigger wakes the relay on commit; the channel is derived from the table's
 * schema, as the relay derives it from its current_schema().
 */
static const char outbox_sql[] =
	"CREATE TABLE events_outbox (\n"
	"  id bigserial PRIMARY KEY,\n"
	"  seq bigint UNIQUE,\n"
	"  topic text NOT NULL CHECK (topic <> ''),\n"
	"  payload bytea NOT NULL,\n"
	"  created_at timestamptz NOT NULL DEFAULT now(),\n"
	"  published_at timestamptz\n"
	");\n"
	"CREATE INDEX events_outbox_unsequenced ON events_outbox (id)\n"
	"  WHERE seq IS NULL;\n"
	"CREATE TABLE events_head (\n"
	"  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),\n"
	"  last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),\n"
	"  publisher text\n"
	");\n"
	"INSERT INTO events_head DEFAULT VALUES;\n"
	"CREATE TABLE events_cursor (\n"
	"  publisher text PRIMARY KEY,\n"
	"  last_seq bigint NOT NULL CHECK (last_seq >= 0)\n"
	");\n"
	"CREATE FUNCTION events_outbox_notify() RETURNS trigger\n"
	"LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  PERFORM pg_notify(left(TG_TABLE_SCHEMA, 50) || '_events', '');\n"
	"  RETURN NULL;\n"
	"END\n"
	"$$;\n"
	"CREATE TRIGGER events_outbox_notify AFTER INSERT ON events_outbox\n"
	"  FOR EACH STATEMENT EXECUTE FUNCTION events_outbox_notify();\n";

const struct db_migration events_migrations[] = {
	{"001_events.sql", outbox_sql},
};
const size_t events_migrations_count =
	sizeof(events_migrations) / sizeof(events_migrations[0]);

/* ---- helpers ---- */

static uint64_t parse_u64(const char *text)
{
	return strtoull(text, NULL, 10);
}

static int nng_code(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return ERR_NOMEM;
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EINVAL:
		return ERR_INVALID;
	case NNG_EADDRINUSE:
	case NNG_ECONNREFUSED:
	case NNG_ECLOSED:
		return ERR_UNAVAILABLE;
	case NNG_ETIMEDOUT:
		return ERR_TIMEOUT;
	default:
		return ERR_INTERNAL;
	}
}

/* A pipe a stopping thread is woken through. */
static int wake_open(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0)
		return 0;
	fds[0] = fds[1] = -1;
	return ERR_INTERNAL;
}

static void wake_close(int fds[2])
{
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
}

static void wake_signal(int fds[2])
{
	if (write(fds[1], "x", 1) < 0) {
		/* The pipe is full: the thread is already woken. */
	}
}

/*
 * Waits up to ms for the wake pipe, or fd when it is not negative. True when
 * fd became readable.
 */
static bool wait_readable(int wake_fd, int fd, int ms)
{
	struct pollfd p[2] = {{.fd = wake_fd, .events = POLLIN},
			      {.fd = fd, .events = POLLIN}};

	if (ms <= 0)
		return false;
	if (poll(p, fd >= 0 ? 2 : 1, ms) <= 0)
		return false;
	return fd >= 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP));
}

/* Dials or listens (listen true) on every URL of the comma-separated list. */
static int attach_urls(nng_socket sock, const char *urls, bool listen)
{
	char *copy = strdup(urls), *save = NULL;
	int rc = 0, n = 0, rv;

	if (!copy)
		return ERR_NOMEM;
	for (char *url = strtok_r(copy, ", ", &save); url && !rc;
	     url = strtok_r(NULL, ", ", &save)) {
		rv = listen ? nng_listen(sock, url, NULL, 0)
			    : nng_dial(sock, url, NULL, NNG_FLAG_NONBLOCK);
		if (rv) {
			log_err(NULL, "events socket %s failed url=%s error=%s",
				listen ? "listen" : "dial", url,
				nng_strerror(rv));
			rc = nng_code(rv);
		}
		n++;
	}
	free(copy);
	if (!rc && n == 0) {
		log_err(NULL, "events socket has no URL");
		rc = ERR_INVALID;
	}
	return rc;
}

/* ---- publishing ---- */

int events_publish(struct db *db, const char *topic,
		   const ProtobufCMessage *payload)
{
	static const char sql[] =
		"INSERT INTO events_outbox (topic, payload) VALUES ($1, $2)";
	size_t len = payload ? protobuf_c_message_get_packed_size(payload) : 0;
	int lengths[2] = {0, 0}, formats[2] = {0, 1};
	const char *params[2];
	uint8_t *buf;
	int rc;

	if (!topic || !*topic) {
		log_err(NULL, "event published without a topic");
		return ERR_INVALID;
	}
	if (len > EVENTS_MAX_PAYLOAD) {
		log_err(NULL, "event payload too large topic=%s bytes=%zu",
			topic, len);
		return ERR_TOO_LARGE;
	}
	buf = malloc(len ? len : 1);
	if (!buf)
		return ERR_NOMEM;
	if (payload)
		protobuf_c_message_pack(payload, buf);
	params[0] = topic;
	params[1] = (const char *)buf;
	lengths[1] = (int)len;
	rc = db_exec_binary(db, sql, 2, params, lengths, formats, NULL);
	free(buf);
	return rc;
}

/* Sends p on a PUB socket framed as MAC tag || packed Published. */
static int send_published(nng_socket sock, const uint8_t *key,
			  const Creneau__V1__Published *p)
{
	size_t len = creneau__v1__published__get_packed_size(p);
	uint8_t *body;
	nng_msg *msg;
	int rv;

	rv = nng_msg_alloc(&msg, SECURE_MAC_BYTES + len);
	if (rv)
		return ERR_NOMEM;
	body = nng_msg_body(msg);
	creneau__v1__published__pack(p, body + SECURE_MAC_BYTES);
	secure_mac(key, body + SECURE_MAC_BYTES, len, body);
	rv = nng_sendmsg(sock, msg, 0);
	if (rv) {
		nng_msg_free(msg);
		log_warn(NULL, "events publish failed error=%s",
			 nng_strerror(rv));
		return nng_code(rv);
	}
	return 0;
}

/* ---- relay ---- */

struct events_relay {
	char *service;
	const uint8_t *key; /* borrowed */
	struct db *db;
	nng_socket pub;
	int wake[2];
	pthread_t thread;
	atomic_bool stopping;
	bool active;   /* holds the relay lock on the connection lock_pid */
	int lock_pid;
	uint64_t head; /* last sequence given and published */
	int64_t next_beat_ms;
	int64_t next_prune_ms;
};

/* LISTENs on the channel the outbox trigger notifies (name unquoted). */
static int relay_listen(struct events_relay *r, const char *channel)
{
	char *ident, *sql;
	int rc;

	ident = PQescapeIdentifier(db_conn(r->db), channel, strlen(channel));
	if (!ident)
		return ERR_NOMEM;
	rc = asprintf(&sql, "LISTEN %s", ident) < 0 ? ERR_NOMEM : 0;
	PQfreemem(ident);
	if (rc)
		return rc;
	rc = db_exec(r->db, sql, 0, NULL, NULL);
	free(sql);
	return rc;
}

/*
 * Tries to become the working relay of this schema: a session advisory lock
 * on the relay's connection, then LISTEN, and the publisher's name recorded
 * for FetchEvents. 0 whether or not the lock was free.
 */
static int relay_take_lock(struct events_relay *r)
{
	const char *params[] = {r->service};
	PGresult *res;
	int rc;

	r->active = false;
	rc = db_exec(r->db,
		     "SELECT pg_try_advisory_lock(hashtext('creneau.relay'), "
		     "hashtext(current_schema())), "
		     "left(current_schema(), 50) || '_events', "
		     "(SELECT last_seq FROM events_head)",
		     0, NULL, &res);
	if (rc)
		return rc;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		return 0; /* another relay works */
	}
	if (PQgetisnull(res, 0, 2)) {
		PQclear(res);
		log_err(NULL, "events_head has no row");
		return ERR_INTERNAL;
	}
	r->head = parse_u64(PQgetvalue(res, 0, 2));
	rc = relay_listen(r, PQgetvalue(res, 0, 1));
	PQclear(res);
	if (!rc)
		rc = db_exec(r->db,
			     "UPDATE events_head SET publisher = $1 "
			     "WHERE publisher IS DISTINCT FROM $1",
			     1, params, NULL);
	if (rc)
		return rc;
	r->active = true;
	r->lock_pid = PQbackendPID(db_conn(r->db));
	log_notice(NULL, "events relay active publisher=%s head=%" PRIu64,
		   r->service, r->head);
	return 0;
}

/* Publishes row i of a RETURNING (seq, topic, payload, time_ms). */
static int relay_publish_row(struct events_relay *r, PGresult *res, int i)
{
	Creneau__V1__Published p = CRENEAU__V1__PUBLISHED__INIT;
	Creneau__V1__Event ev = CRENEAU__V1__EVENT__INIT;
	size_t len = 0;
	uint8_t *payload;
	int rc;

	payload = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 2),
				  &len);
	if (!payload)
		return ERR_NOMEM;
	ev.publisher = r->service;
	ev.sequence = parse_u64(PQgetvalue(res, i, 0));
	ev.topic = PQgetvalue(res, i, 1);
	ev.time_ms = strtoll(PQgetvalue(res, i, 3), NULL, 10);
	ev.payload.data = payload;
	ev.payload.len = len;
	p.event = &ev;
	p.head = ev.sequence; /* so far: this event */
	rc = send_published(r->pub, r->key, &p);
	PQfreemem(payload);
	return rc;
}

/* Publishes a sequenced batch in sequence order (RETURNING has none). */
static void relay_publish_batch(struct events_relay *r, PGresult *res,
				uint64_t first)
{
	int n = PQntuples(res);
	int *order = malloc((size_t)n * sizeof(*order));

	if (!order) {
		log_warn(NULL, "events batch not published: out of memory");
		return; /* subscribers fetch what they missed */
	}
	for (int i = 0; i < n; i++) {
		uint64_t seq = parse_u64(PQgetvalue(res, i, 0));

		if (seq < first || seq - first >= (uint64_t)n) {
			log_err(NULL, "events batch out of order seq=%" PRIu64,
				seq);
			free(order);
			return;
		}
		order[seq - first] = i;
	}
	for (int i = 0; i < n; i++)
		if (relay_publish_row(r, res, order[i]))
			break;
	free(order);
}

/* Locks the head row for the transaction and reads it. */
static int relay_lock_head(struct events_relay *r, uint64_t *head_out)
{
	PGresult *res;
	int rc;

	rc = db_exec(r->db, "SELECT last_seq FROM events_head FOR UPDATE", 0,
		     NULL, &res);
	if (rc)
		return rc;
	if (PQntuples(res) != 1) {
		log_err(NULL, "events_head has no row");
		rc = ERR_INTERNAL;
	} else {
		*head_out = parse_u64(PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return rc;
}

/*
 * Numbers the oldest unsequenced rows head+1, head+2... in id order: at
 * most BATCH rows and about RELAY_MAX_BYTES of payload (always one).
 */
static int relay_number(struct events_relay *r, uint64_t head,
			PGresult **res_out)
{
	char head_text[24], max_bytes[24], limit[24];
	const char *params[] = {head_text, max_bytes, limit};

	snprintf(head_text, sizeof(head_text), "%" PRIu64, head);
	snprintf(max_bytes, sizeof(max_bytes), "%u", RELAY_MAX_BYTES);
	snprintf(limit, sizeof(limit), "%d", BATCH);
	return db_exec(r->db,
		       "WITH batch AS (SELECT id, row_number() OVER w AS n, "
		       "sum(length(payload)) OVER w - length(payload) "
		       "AS before "
		       "FROM events_outbox WHERE seq IS NULL "
		       "WINDOW w AS (ORDER BY id) ORDER BY id LIMIT $3) "
		       "UPDATE events_outbox o SET seq = $1::bigint + batch.n, "
		       "published_at = now() FROM batch "
		       "WHERE o.id = batch.id AND batch.before < $2::bigint "
		       "RETURNING o.seq, o.topic, o.payload, "
		       "(extract(epoch FROM o.created_at) * 1000)::bigint",
		       3, params, res_out);
}

static int relay_set_head(struct events_relay *r, uint64_t head)
{
	char text[24];
	const char *params[] = {text};

	snprintf(text, sizeof(text), "%" PRIu64, head);
	return db_exec(r->db, "UPDATE events_head SET last_seq = $1", 1, params,
		       NULL);
}

/*
 * Gives the next committed unsequenced rows their sequence numbers, in one
 * transaction serialised by the head row's lock, then publishes them. The
 * head lock alone keeps sequences gapless even if two relays ran at once;
 * the advisory lock only keeps one of them busy. A row whose transaction is
 * still open is invisible here and gets a later number when it commits.
 */
static int relay_sequence(struct events_relay *r, int *count_out)
{
	PGresult *res = NULL;
	uint64_t head = 0;
	int rc, n = 0;

	*count_out = 0;
	rc = db_begin(r->db);
	if (rc)
		return rc;
	rc = relay_lock_head(r, &head);
	if (!rc)
		rc = relay_number(r, head, &res);
	if (!rc) {
		n = PQntuples(res);
		if (n > 0)
			rc = relay_set_head(r, head + (uint64_t)n);
	}
	if (!rc)
		rc = db_commit(r->db);
	if (rc) {
		PQclear(res);
		db_rollback(r->db);
		return rc;
	}
	if (n > 0)
		relay_publish_batch(r, res, head + 1);
	PQclear(res);
	r->head = head + (uint64_t)n;
	*count_out = n;
	return 0;
}

/* Consumes what arrived on the connection; true when a NOTIFY came. */
static bool relay_drain_notifies(struct events_relay *r)
{
	PGconn *conn = db_conn(r->db);
	PGnotify *n;
	bool any = false;

	if (!conn || PQstatus(conn) != CONNECTION_OK)
		return false;
	PQconsumeInput(conn); /* a failure shows as a bad status later */
	while ((n = PQnotifies(conn))) {
		any = true;
		PQfreemem(n);
	}
	return any;
}

static void relay_heartbeat(struct events_relay *r)
{
	Creneau__V1__Published p = CRENEAU__V1__PUBLISHED__INIT;
	int64_t now = instant_mono_ms();

	if (now < r->next_beat_ms)
		return;
	r->next_beat_ms = now + HEARTBEAT_MS;
	if (!r->active)
		return; /* a standby knows nothing the active relay does not */
	p.head = r->head;
	if (send_published(r->pub, r->key, &p))
		log_debug(NULL, "events heartbeat not sent");
}

/* One round of the relay; returns how long to wait before the next. */
static int relay_step(struct events_relay *r)
{
	int count = 0, rc;

	/* A new backend (reconnection) does not hold the old one's lock. */
	if (r->active && PQbackendPID(db_conn(r->db)) != r->lock_pid) {
		log_notice(NULL, "events relay lost its lock publisher=%s",
			   r->service);
		r->active = false;
	}
	if (!r->active) {
		rc = relay_take_lock(r);
		if (rc || !r->active)
			return LOCK_RETRY_MS;
	}
	rc = relay_sequence(r, &count);
	if (rc) {
		log_warn(NULL, "events relay round failed publisher=%s "
			       "error=%s",
			 r->service, error_str(rc));
		return LOCK_RETRY_MS;
	}
	/* A batch may have stopped at its size limits: go on until empty. */
	if (count > 0 || relay_drain_notifies(r))
		return 0;
	return HEARTBEAT_MS;
}

/*
 * Deletes published events older than EVENTS_RETENTION_DAYS, a bounded
 * batch at a time: payloads carry personal data and the outbox must not
 * grow for ever. A subscriber further behind than that cannot catch up by
 * FetchEvents (it logs the gap) and is resynchronised by its operator.
 */
static void relay_prune(struct events_relay *r)
{
	static const char sql[] =
		"DELETE FROM events_outbox WHERE id IN ("
		" SELECT id FROM events_outbox WHERE seq IS NOT NULL"
		" AND published_at < now() - make_interval(days => $1::int)"
		" ORDER BY id LIMIT 10000)";
	char days[16];
	const char *params[] = {days};
	int rc;

	if (!r->active || instant_mono_ms() < r->next_prune_ms)
		return;
	r->next_prune_ms = instant_mono_ms() + PRUNE_EVERY_MS;
	snprintf(days, sizeof(days), "%d", EVENTS_RETENTION_DAYS);
	rc = db_exec(r->db, sql, 1, params, NULL);
	if (rc)
		log_warn(NULL, "events outbox prune failed publisher=%s error=%s",
			 r->service, error_str(rc));
}

static void *relay_main(void *arg)
{
	struct events_relay *r = arg;

	while (!atomic_load(&r->stopping)) {
		int wait_ms = relay_step(r);
		int64_t until_beat;
		PGconn *conn = db_conn(r->db);
		int fd = r->active && conn ? PQsocket(conn) : -1;

		relay_heartbeat(r);
		relay_prune(r);
		until_beat = r->next_beat_ms - instant_mono_ms();
		if (wait_ms > until_beat)
			wait_ms = until_beat > 0 ? (int)until_beat : 0;
		if (wait_readable(r->wake[0], fd, wait_ms))
			relay_drain_notifies(r);
	}
	return NULL;
}

static void relay_free(struct events_relay *r)
{
	nng_close(r->pub);
	db_close(r->db);
	wake_close(r->wake);
	free(r->service);
	free(r);
}

int events_relay_start(struct events_relay **out, const char *service,
		       const char *conninfo, const char *pub_url,
		       const uint8_t *key)
{
	struct events_relay *r;
	int rc;

	*out = NULL;
	if (!service || !*service || !pub_url || !key)
		return ERR_INVALID;
	if (secure_init())
		return ERR_INTERNAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	r->wake[0] = r->wake[1] = -1;
	r->key = key;
	r->service = strdup(service);
	if (!r->service) {
		rc = ERR_NOMEM;
		goto out_free;
	}
	rc = wake_open(r->wake);
	if (rc)
		goto out_free;
	rc = nng_code(nng_pub0_open(&r->pub));
	if (rc)
		goto out_free;
	rc = attach_urls(r->pub, pub_url, true);
	if (rc)
		goto out_free;
	rc = db_open(&r->db, conninfo);
	if (rc)
		goto out_free;
	if (pthread_create(&r->thread, NULL, relay_main, r)) {
		rc = ERR_NOMEM;
		goto out_free;
	}
	*out = r;
	return 0;

out_free:
	relay_free(r);
	return rc;
}

void events_relay_stop(struct events_relay *r)
{
	if (!r)
		return;
	atomic_store(&r->stopping, true);
	wake_signal(r->wake);
	pthread_join(r->thread, NULL);
	relay_free(r); /* closing the connection releases the lock */
}

/* ---- FetchEvents ---- */

static int fetch_head(struct rpc_call *call, struct db *db,
		      Creneau__V1__FetchEventsReply *reply,
		      const char **publisher_out)
{
	PGresult *res;
	int rc;

	rc = db_exec(db,
		     "SELECT last_seq, coalesce(publisher, '') "
		     "FROM events_head",
		     0, NULL, &res);
	if (rc)
		return rpc_call_fail(call, rc, NULL, NULL,
				     "the event outbox is unavailable");
	if (PQntuples(res) != 1) {
		PQclear(res);
		log_err(NULL, "events_head has no row");
		return ERR_INTERNAL;
	}
	reply->head = parse_u64(PQgetvalue(res, 0, 0));
	*publisher_out =
		arena_strdup(rpc_call_arena(call), PQgetvalue(res, 0, 1));
	PQclear(res);
	return *publisher_out ? 0 : ERR_NOMEM;
}

/* Fills reply->events from rows (seq, topic, payload, time_ms). */
static int fetch_fill(struct arena *a, PGresult *res, const char *publisher,
		      Creneau__V1__FetchEventsReply *reply)
{
	int n = PQntuples(res);

	reply->events = arena_alloc(a, (size_t)(n ? n : 1) *
					       sizeof(*reply->events));
	if (!reply->events)
		return ERR_NOMEM;
	for (int i = 0; i < n; i++) {
		Creneau__V1__Event *ev = arena_alloc(a, sizeof(*ev));
		size_t len = 0;
		uint8_t *raw = PQunescapeBytea(
			(const unsigned char *)PQgetvalue(res, i, 2), &len);

		if (!ev || !raw) {
			PQfreemem(raw);
			return ERR_NOMEM;
		}
		creneau__v1__event__init(ev);
		ev->publisher = (char *)publisher;
		ev->sequence = parse_u64(PQgetvalue(res, i, 0));
		ev->topic = arena_strdup(a, PQgetvalue(res, i, 1));
		ev->time_ms = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		ev->payload.len = len;
		ev->payload.data = arena_alloc(a, len ? len : 1);
		if (ev->payload.data)
			memcpy(ev->payload.data, raw, len);
		PQfreemem(raw);
		if (!ev->topic || !ev->payload.data)
			return ERR_NOMEM;
		reply->events[reply->n_events++] = ev;
	}
	return 0;
}

int events_handle_fetch(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out)
{
	const Creneau__V1__FetchEventsRequest *req =
		(const Creneau__V1__FetchEventsRequest *)request;
	const Creneau__V1__Principal *who = rpc_call_principal(call);
	struct arena *a = rpc_call_arena(call);
	struct db *db = rpc_call_db(call);
	Creneau__V1__FetchEventsReply *reply;
	char after[24], limit[16], max_bytes[16];
	const char *params[] = {after, limit, max_bytes};
	const char *publisher = NULL;
	PGresult *res;
	int rc;

	if (!who || who->role != CRENEAU__V1__ROLE__ROLE_SERVICE)
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "events are for services only");
	if (!db)
		return rpc_call_fail(call, ERR_INTERNAL, NULL, NULL,
				     "FetchEvents needs a database");
	if (req->after > INT64_MAX)
		return rpc_call_fail(call, ERR_INVALID, NULL, "after",
				     "after is out of range");
	snprintf(after, sizeof(after), "%" PRIu64, req->after);
	snprintf(limit, sizeof(limit), "%u",
		 req->limit && req->limit < BATCH ? req->limit : BATCH);
	snprintf(max_bytes, sizeof(max_bytes), "%u", FETCH_MAX_BYTES);
	reply = arena_alloc(a, sizeof(*reply));
	if (!reply)
		return ERR_NOMEM;
	creneau__v1__fetch_events_reply__init(reply);
	rc = db_exec(db,
		     "SELECT seq, topic, payload, time_ms FROM ("
		     "SELECT seq, topic, payload, "
		     "(extract(epoch FROM created_at) * 1000)::bigint "
		     "AS time_ms, sum(length(payload)) OVER (ORDER BY seq) "
		     "- length(payload) AS before "
		     "FROM events_outbox WHERE seq > $1 "
		     "ORDER BY seq LIMIT $2) page "
		     "WHERE before < $3 ORDER BY seq",
		     3, params, &res);
	if (rc)
		return rpc_call_fail(call, rc, NULL, NULL,
				     "the event outbox is unavailable");
	/* The head is read after the events, so it is never behind them. */
	rc = fetch_head(call, db, reply, &publisher);
	if (!rc)
		rc = fetch_fill(a, res, publisher, reply);
	PQclear(res);
	if (rc)
		return rc;
	*reply_out = &reply->base;
	return 0;
}

/* ---- subscriber ---- */

struct events_subscriber {
	char *service;
	char *publisher;
	char *pub_urls;
	char *rpc_urls;
	events_apply_fn apply;
	void *arg;
	const uint8_t *key; /* borrowed */
	struct db *db;
	nng_socket sub;
	struct rpc_client *rpc;
	struct arena *arena;
	int wake[2];
	pthread_t thread;
	atomic_bool stopping;
	bool cursor_known;
	uint64_t cursor; /* last sequence applied, as committed */
	bool need_fetch;
	size_t apply_batch; /* events per transaction while catching up */
	int backoff_ms;
	int64_t next_poll_ms;
	unsigned long dropped; /* PUB messages dropped since the last log */
	int64_t drop_log_ms;   /* when the next drop may be logged */
};

static bool sub_stopping(struct events_subscriber *s)
{
	return atomic_load(&s->stopping);
}

/* Reads the cursor, creating its row at 0 the first time. */
static int sub_load_cursor(struct events_subscriber *s)
{
	const char *params[] = {s->publisher};
	PGresult *res;
	int rc;

	rc = db_exec(s->db,
		     "INSERT INTO events_cursor (publisher, last_seq) "
		     "VALUES ($1, 0) ON CONFLICT (publisher) DO NOTHING",
		     1, params, NULL);
	if (!rc)
		rc = db_exec(s->db,
			     "SELECT last_seq FROM events_cursor "
			     "WHERE publisher = $1",
			     1, params, &res);
	if (rc)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return ERR_INTERNAL;
	}
	s->cursor = parse_u64(PQgetvalue(res, 0, 0));
	s->cursor_known = true;
	PQclear(res);
	return 0;
}

/*
 * Locks the cursor row and reads it into s->cursor: it is the truth, even
 * if another replica of this service moved it.
 */
static int sub_lock_cursor(struct events_subscriber *s)
{
	const char *params[] = {s->publisher};
	PGresult *res;
	int rc;

	rc = db_exec(s->db,
		     "SELECT last_seq FROM events_cursor WHERE publisher = $1 "
		     "FOR UPDATE",
		     1, params, &res);
	if (rc)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		log_err(NULL, "events cursor row missing publisher=%s",
			s->publisher);
		return ERR_INTERNAL;
	}
	s->cursor = parse_u64(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* Runs the callback on evs[0..n), in order, inside the open transaction. */
static int sub_apply_each(struct events_subscriber *s,
			  Creneau__V1__Event *const *evs, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		rc = s->apply(s->arg, s->db, evs[i]);
		if (rc) {
			log_warn(NULL, "event apply failed publisher=%s "
				       "seq=%" PRIu64 " topic=%s error=%s",
				 s->publisher, evs[i]->sequence, evs[i]->topic,
				 error_str(rc));
			return rc;
		}
	}
	return 0;
}

/*
 * Applies the events of evs[0..n) (ascending, consecutive sequences) that
 * come after the cursor, in one transaction with the cursor: each is applied
 * once, or none is. Those already applied are skipped; if the first new one
 * is not the next, nothing happens and a fetch is asked for. On error
 * nothing is applied, and the next attempts go one event at a time so that
 * the ones before a failing event get through.
 */
static int sub_apply(struct events_subscriber *s,
		     Creneau__V1__Event *const *evs, size_t n)
{
	char seq_text[24];
	const char *params[] = {s->publisher, seq_text};
	size_t skip = 0;
	int rc;

	rc = db_begin(s->db);
	if (!rc)
		rc = sub_lock_cursor(s);
	if (rc)
		goto out_rollback;
	while (skip < n && evs[skip]->sequence <= s->cursor)
		skip++;
	if (skip == n || evs[skip]->sequence != s->cursor + 1) {
		if (skip < n)
			s->need_fetch = true;
		db_rollback(s->db);
		return 0;
	}
	rc = sub_apply_each(s, evs + skip, n - skip);
	if (rc)
		goto out_rollback;
	snprintf(seq_text, sizeof(seq_text), "%" PRIu64, evs[n - 1]->sequence);
	rc = db_exec(s->db,
		     "UPDATE events_cursor SET last_seq = $2 "
		     "WHERE publisher = $1",
		     2, params, NULL);
	if (rc)
		goto out_rollback;
	rc = db_commit(s->db);
	if (rc) {
		s->apply_batch = 1;
		s->cursor_known = false; /* the outcome is unknown: reread */
		return rc;
	}
	s->cursor = evs[n - 1]->sequence;
	return 0;

out_rollback:
	db_rollback(s->db);
	s->apply_batch = 1;
	s->cursor_known = false;
	return rc;
}

/*
 * Checks a fetched page: every event from the publisher, and those after
 * the cursor consecutive from cursor + 1. Returns the index of the first
 * event after the cursor in *first_out.
 */
static int sub_check_page(struct events_subscriber *s,
			  Creneau__V1__FetchEventsReply *reply,
			  size_t *first_out)
{
	uint64_t expect = s->cursor + 1;
	size_t first = reply->n_events;

	for (size_t i = 0; i < reply->n_events; i++) {
		Creneau__V1__Event *ev = reply->events[i];

		if (*ev->publisher && strcmp(ev->publisher, s->publisher)) {
			log_err(NULL, "events fetched from the wrong publisher "
				      "expected=%s got=%.64s",
				s->publisher, ev->publisher);
			return ERR_PROTOCOL;
		}
		ev->publisher = s->publisher;
		if (ev->sequence <= s->cursor)
			continue;
		if (ev->sequence != expect) {
			log_err(NULL, "events fetch reply has a gap "
				      "publisher=%s expected=%" PRIu64
				      " seq=%" PRIu64,
				s->publisher, expect, ev->sequence);
			return ERR_PROTOCOL;
		}
		if (first == reply->n_events)
			first = i;
		expect++;
	}
	*first_out = first;
	return 0;
}

/* One FetchEvents page after the cursor; applies it in transactions of up
 * to apply_batch events. *done_out when the publisher has nothing more. */
static int sub_fetch_page(struct events_subscriber *s, bool *done_out)
{
	Creneau__V1__FetchEventsRequest req =
		CRENEAU__V1__FETCH_EVENTS_REQUEST__INIT;
	struct rpc_context ctx = {.account_id = s->service,
				  .role = CRENEAU__V1__ROLE__ROLE_SERVICE,
				  .timeout_ms = FETCH_TIMEOUT_MS};
	Creneau__V1__FetchEventsReply *reply;
	ProtobufCMessage *msg = NULL;
	struct rpc_error err;
	size_t i;
	int rc;

	arena_reset(s->arena);
	req.after = s->cursor;
	req.limit = BATCH;
	rc = rpc_client_call(s->rpc, &ctx, "FetchEvents", &req.base,
			     &creneau__v1__fetch_events_reply__descriptor,
			     s->arena, &msg, &err);
	if (rc) {
		log_warn(NULL, "events fetch failed publisher=%s error=%s",
			 s->publisher, error_str(rc));
		return rc;
	}
	reply = (Creneau__V1__FetchEventsReply *)msg;
	rc = sub_check_page(s, reply, &i);
	while (!rc && i < reply->n_events && !sub_stopping(s)) {
		size_t n = reply->n_events - i;

		if (n > s->apply_batch)
			n = s->apply_batch;
		rc = sub_apply(s, reply->events + i, n);
		i += n;
	}
	*done_out = reply->n_events == 0 || s->cursor >= reply->head;
	return rc;
}

/* Fetches and applies everything after the cursor. */
static int sub_catch_up(struct events_subscriber *s)
{
	bool done = false;
	int rc;

	while (!done && !sub_stopping(s)) {
		rc = sub_fetch_page(s, &done);
		if (rc)
			return rc;
	}
	return 0;
}

/* Logs a dropped PUB message: at most one line a second, with a count, so
 * that a flood of forgeries cannot flood the log. */
static void sub_log_drop(struct events_subscriber *s, const char *why)
{
	int64_t now = instant_mono_ms();

	s->dropped++;
	if (now < s->drop_log_ms)
		return;
	log_warn(NULL, "event dropped: %s publisher=%s dropped=%lu", why,
		 s->publisher, s->dropped);
	s->dropped = 0;
	s->drop_log_ms = now + 1000;
}

/* Handles one authenticated Published message. */
static void sub_handle(struct events_subscriber *s,
		       const Creneau__V1__Published *p)
{
	Creneau__V1__Event *ev = p->event;

	if (!ev) {
		if (p->head > s->cursor) {
			log_debug(NULL, "events behind head publisher=%s "
					"cursor=%" PRIu64 " head=%" PRIu64,
				  s->publisher, s->cursor, p->head);
			s->need_fetch = true;
		}
		return;
	}
	if (strcmp(ev->publisher, s->publisher) != 0) {
		sub_log_drop(s, "names another publisher");
		return;
	}
	if (ev->sequence <= s->cursor)
		return; /* already applied */
	if (ev->sequence > s->cursor + 1) {
		log_debug(NULL, "events gap publisher=%s cursor=%" PRIu64
				" seq=%" PRIu64,
			  s->publisher, s->cursor, ev->sequence);
		s->need_fetch = true;
		return;
	}
	if (sub_apply(s, &ev, 1))
		s->need_fetch = true; /* retried by a fetch, with backoff */
}

/* Receives at most one PUB message (waiting briefly) and handles it. */
static void sub_receive(struct events_subscriber *s)
{
	Creneau__V1__Published *p;
	nng_msg *msg;
	uint8_t *body;
	size_t len;
	int rv;

	rv = nng_recvmsg(s->sub, &msg, 0);
	if (rv) {
		if (rv != NNG_ETIMEDOUT && rv != NNG_ECLOSED)
			log_warn(NULL, "events receive failed error=%s",
				 nng_strerror(rv));
		return;
	}
	body = nng_msg_body(msg);
	len = nng_msg_len(msg);
	if (len < SECURE_MAC_BYTES ||
	    !secure_mac_verify(s->key, body + SECURE_MAC_BYTES,
			       len - SECURE_MAC_BYTES, body)) {
		sub_log_drop(s, "failed authentication");
		goto out_free_msg;
	}
	p = creneau__v1__published__unpack(NULL, len - SECURE_MAC_BYTES,
					   body + SECURE_MAC_BYTES);
	if (!p) {
		sub_log_drop(s, "does not unpack");
		goto out_free_msg;
	}
	s->next_poll_ms = instant_mono_ms() + POLL_MS;
	sub_handle(s, p);
	creneau__v1__published__free_unpacked(p, NULL);
out_free_msg:
	nng_msg_free(msg);
}

static void sub_backoff(struct events_subscriber *s)
{
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
	wait_readable(s->wake[0], -1, s->backoff_ms);
}

static void *sub_main(void *arg)
{
	struct events_subscriber *s = arg;

	s->need_fetch = true; /* start-up: whatever came while we were away */
	s->apply_batch = APPLY_BATCH;
	while (!sub_stopping(s)) {
		if (!s->cursor_known && sub_load_cursor(s)) {
			sub_backoff(s);
			continue;
		}
		if (s->need_fetch || instant_mono_ms() >= s->next_poll_ms) {
			s->need_fetch = false;
			s->next_poll_ms = instant_mono_ms() + POLL_MS;
			if (sub_catch_up(s)) {
				s->need_fetch = true;
				sub_backoff(s);
				continue;
			}
			s->backoff_ms = 0;
			s->apply_batch = APPLY_BATCH;
		}
		sub_receive(s);
	}
	return NULL;
}

static void sub_free(struct events_subscriber *s)
{
	nng_close(s->sub);
	rpc_client_free(s->rpc);
	arena_free(s->arena);
	db_close(s->db);
	wake_close(s->wake);
	free(s->service);
	free(s->publisher);
	free(s->pub_urls);
	free(s->rpc_urls);
	free(s);
}

static int sub_open_socket(struct events_subscriber *s)
{
	int rc;

	rc = nng_code(nng_sub0_open(&s->sub));
	if (rc)
		return rc;
	rc = nng_code(nng_socket_set(s->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0));
	if (!rc)
		rc = nng_code(nng_socket_set_ms(s->sub, NNG_OPT_RECVTIMEO,
						RECV_WAIT_MS));
	if (!rc)
		rc = nng_code(nng_socket_set_size(s->sub, NNG_OPT_RECVMAXSZ,
						  RPC_MAX_FRAME));
	if (!rc)
		rc = nng_code(nng_socket_set_int(s->sub, NNG_OPT_RECVBUF,
						 SUB_RECV_BUFFER));
	if (!rc)
		rc = attach_urls(s->sub, s->pub_urls, false);
	return rc;
}

static bool subscription_ok(const struct events_subscription *sub)
{
	return sub && sub->publisher && *sub->publisher && sub->pub_urls &&
	       *sub->pub_urls && sub->rpc_urls && *sub->rpc_urls && sub->apply;
}

int events_subscriber_start(struct events_subscriber **out,
			    const char *service, const char *conninfo,
			    const struct events_subscription *sub,
			    const uint8_t *key)
{
	struct events_subscriber *s;
	int rc;

	*out = NULL;
	if (!service || !*service || !key || !subscription_ok(sub)) {
		log_err(NULL, "events subscription is incomplete");
		return ERR_INVALID;
	}
	if (secure_init())
		return ERR_INTERNAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return ERR_NOMEM;
	s->wake[0] = s->wake[1] = -1;
	s->key = key;
	s->apply = sub->apply;
	s->arg = sub->arg;
	s->service = strdup(service);
	s->publisher = strdup(sub->publisher);
	s->pub_urls = strdup(sub->pub_urls);
	s->rpc_urls = strdup(sub->rpc_urls);
	s->arena = arena_new(0);
	rc = ERR_NOMEM;
	if (!s->service || !s->publisher || !s->pub_urls || !s->rpc_urls ||
	    !s->arena)
		goto out_free;
	rc = wake_open(s->wake);
	if (!rc)
		rc = sub_open_socket(s);
	if (!rc)
		rc = rpc_client_open(&s->rpc, s->publisher, s->rpc_urls, key,
				     s->service);
	if (!rc)
		rc = db_open(&s->db, conninfo);
	if (rc)
		goto out_free;
	if (pthread_create(&s->thread, NULL, sub_main, s)) {
		rc = ERR_NOMEM;
		goto out_free;
	}
	*out = s;
	return 0;

out_free:
	sub_free(s);
	return rc;
}

void events_subscriber_stop(struct events_subscriber *s)
{
	if (!s)
		return;
	atomic_store(&s->stopping, true);
	wake_signal(s->wake);
	pthread_join(s->thread, NULL);
	sub_free(s);
}
