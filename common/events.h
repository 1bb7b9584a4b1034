/* events.h - events never lost: outbox, relay, subscriber with catch-up. */
#ifndef CRENEAU_EVENTS_H
#define CRENEAU_EVENTS_H

#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include "creneau/v1/events.pb-c.h"
#include "db.h"
#include "error.h"
#include "rpc.h"

struct db;
struct events_relay;
struct events_subscriber;

/* How long published events stay in the outbox for FetchEvents. */
#define EVENTS_RETENTION_DAYS 7

/* Largest packed payload events_publish accepts. */
#define EVENTS_MAX_PAYLOAD (1024u * 1024)

/*
 * events_publish - announces topic with payload (packed, may be NULL) by
 * inserting it into the caller's outbox in the caller's open transaction: the
 * event exists if and only if the change it announces commits. Tables live
 * in the service's own schema (common migration). Returns db_exec's codes,
 * ERR_INVALID for an empty topic, ERR_TOO_LARGE past EVENTS_MAX_PAYLOAD.
 */
int events_publish(struct db *db, const char *topic,
		   const ProtobufCMessage *payload) WARN_UNUSED;

/*
 * events_relay_start - a thread that gives committed outbox rows their
 * gapless sequence numbers, in commit order, and publishes them on a PUB
 * socket listening on pub_url (MAC-framed with key). Woken by LISTEN/NOTIFY,
 * with a polling backstop; publishes the head sequence as a heartbeat every
 * second; every ten minutes it deletes events published more than
 * EVENTS_RETENTION_DAYS ago. With several replicas, one relay at a time holds an advisory lock
 * and works; the others wait. service names the publisher in events (and in
 * FetchEvents replies). conninfo's schema must be migrated. key
 * (SECURE_KEY_BYTES) is borrowed until events_relay_stop. A database that is
 * down is not an error: the relay waits for it. Codes: ERR_INVALID (bad
 * URL), ERR_UNAVAILABLE (address in use), ERR_NOMEM.
 */
int events_relay_start(struct events_relay **out, const char *service,
		       const char *conninfo, const char *pub_url,
		       const uint8_t *key) WARN_UNUSED;

/* events_relay_stop - stops the thread and frees; NULL is a no-op. */
void events_relay_stop(struct events_relay *r);

/*
 * events_handle_fetch - the "FetchEvents" RPC handler every publisher
 * registers (request FetchEventsRequest): sequenced events after a given
 * sequence, in order, from the outbox, at most min(limit, 1000) and about
 * 2 MiB of payload per reply, with the head. Only a ROLE_SERVICE principal
 * may call it (ERR_FORBIDDEN otherwise); needs the worker's database.
 */
int events_handle_fetch(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out);

/* The RPC method entry for events_handle_fetch. */
#define EVENTS_FETCH_METHOD                                                   \
	RPC_METHOD("FetchEvents", fetch_events_request, events_handle_fetch)

/*
 * Applies one event inside the subscriber's transaction (db): whatever it
 * writes commits together with the subscriber's cursor, so an event is
 * applied exactly once. Returns 0, or an error to roll back and retry later
 * (the subscriber stops at that event and retries with backoff). While
 * catching up, one transaction may carry several consecutive events (the
 * callback is called for each); an error rolls them all back. Never begin,
 * commit or roll back db here.
 */
typedef int (*events_apply_fn)(void *arg, struct db *db,
			       const Creneau__V1__Event *event);

struct events_subscription {
	const char *publisher; /* service name, e.g. "accounts" */
	const char *pub_urls;  /* the publisher replicas' PUB URLs */
	const char *rpc_urls;  /* its REP URLs, for FetchEvents */
	events_apply_fn apply;
	void *arg;
};

/*
 * events_subscriber_start - a thread that applies the publisher's events in
 * sequence order, each exactly once. It keeps its cursor per publisher in
 * the subscriber's own schema (events_cursor, locked in each apply
 * transaction, so replicas of one subscriber never apply an event twice);
 * at start-up, on any gap, whenever a heartbeat shows a head beyond the
 * cursor, and every few seconds when nothing arrives, it asks the publisher
 * over RPC for what it missed. PUB messages that fail the MAC, or name
 * another publisher, are dropped and logged. sub is copied (its strings
 * too); key is borrowed until events_subscriber_stop; the callback runs on
 * the subscriber's thread. service names this subscriber. Codes:
 * ERR_INVALID (incomplete subscription or bad URL), ERR_NOMEM, and
 * rpc_client_open's.
 */
int events_subscriber_start(struct events_subscriber **out,
			    const char *service, const char *conninfo,
			    const struct events_subscription *sub,
			    const uint8_t *key) WARN_UNUSED;

/* events_subscriber_stop - stops the thread and frees; NULL is a no-op. */
void events_subscriber_stop(struct events_subscriber *s);

/* The common migrations (outbox, relay state, cursors) applied by
 * db_migrate in every schema before the service's own. */
extern const struct db_migration events_migrations[];
extern const size_t events_migrations_count;

#endif
