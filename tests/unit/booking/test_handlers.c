/* test_handlers.c - booking's RPC methods over real nng sockets and a real
 * PostgreSQL (CRENEAU_TEST_PG): rules, deadlines, and who may do what. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena.h"
#include "availability.h"
#include "creneau/v1/accounts.pb-c.h"
#include "creneau/v1/booking.pb-c.h"
#include "creneau/v1/service.pb-c.h"
#include "db.h"
#include "handlers.h"
#include "instant.h"
#include "log.h"
#include "rpc.h"
#include "secure.h"
#include "store.h"

extern const struct db_migration booking_core_migrations[];
extern const size_t booking_core_migrations_count;

#define PRACT	     "11111111-1111-4111-8111-111111111111"
#define OTHER_PRACT  "11111111-1111-4111-8111-222222222222"
#define CLIENT	     "22222222-2222-4222-8222-111111111111"
#define OTHER_CLIENT "22222222-2222-4222-8222-222222222222"
#define UNVERIFIED   "22222222-2222-4222-8222-333333333333"
#define ADMIN	     "44444444-4444-4444-8444-444444444444"
#define SERVICE	     "55555555-5555-4555-8555-555555555555"

enum who {
	ANON,
	PRACTITIONER,
	OTHER_PRACTITIONER,
	CLIENT_A,
	CLIENT_B,
	CLIENT_UNVERIFIED,
	ADMIN_,
	SERVICE_
};

static const char *pg;
static struct db *admin;
static struct db *db;
static char schema[64], conninfo[1024], url[64];
static uint8_t key[SECURE_KEY_BYTES];
static struct rpc_server *server;
static struct rpc_client *client;
static struct arena *arena;
static int serial;

/* What setup made. */
static char offering_id[40], booking_id[40], record_id[40];
static int64_t booked_start;

static void exec_sql(struct db *d, const char *sql)
{
	assert_int_equal(db_exec(d, sql, 0, NULL, NULL), 0);
}

static long query_long(const char *sql)
{
	PGresult *r;
	long v;

	assert_int_equal(db_exec(db, sql, 0, NULL, &r), 0);
	v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* The payload of the last event published on topic (in the arena). */
static Creneau__V1__BookingEvent *last_event(const char *topic)
{
	const char *p[] = {topic};
	Creneau__V1__BookingEvent *ev;
	unsigned char *bytes;
	size_t len;
	PGresult *r;

	assert_int_equal(db_exec(db,
				 "SELECT payload FROM events_outbox WHERE "
				 "topic = $1 ORDER BY id DESC LIMIT 1",
				 1, p, &r),
			 0);
	assert_int_equal(PQntuples(r), 1);
	bytes =
	    PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 0), &len);
	PQclear(r);
	assert_non_null(bytes);
	ev = creneau__v1__booking_event__unpack(NULL, len, bytes);
	PQfreemem(bytes);
	assert_non_null(ev);
	return ev;
}

static void principal(enum who w, struct rpc_context *ctx)
{
	static const struct {
		const char *id;
		Creneau__V1__Role role;
	} table[] = {
	    [ANON] = {NULL, CRENEAU__V1__ROLE__ROLE_NONE},
	    [PRACTITIONER] = {PRACT, CRENEAU__V1__ROLE__ROLE_PRACTITIONER},
	    [OTHER_PRACTITIONER] = {OTHER_PRACT,
				    CRENEAU__V1__ROLE__ROLE_PRACTITIONER},
	    [CLIENT_A] = {CLIENT, CRENEAU__V1__ROLE__ROLE_CLIENT},
	    [CLIENT_B] = {OTHER_CLIENT, CRENEAU__V1__ROLE__ROLE_CLIENT},
	    [CLIENT_UNVERIFIED] = {UNVERIFIED, CRENEAU__V1__ROLE__ROLE_CLIENT},
	    [ADMIN_] = {ADMIN, CRENEAU__V1__ROLE__ROLE_ADMIN},
	    [SERVICE_] = {SERVICE, CRENEAU__V1__ROLE__ROLE_SERVICE},
	};

	memset(ctx, 0, sizeof(*ctx));
	ctx->account_id = table[w].id;
	ctx->role = table[w].role;
	ctx->timeout_ms = 20000;
}

static int call(enum who w, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *reply_type,
		ProtobufCMessage **reply, struct rpc_error *err)
{
	struct rpc_context ctx;
	ProtobufCMessage *scratch;
	struct rpc_error scratch_err;

	principal(w, &ctx);
	return rpc_client_call(client, &ctx, method, req, reply_type, arena,
			       reply ? reply : &scratch,
			       err ? err : &scratch_err);
}

/* Feeds one accounts event through the subscriber's apply function. */
static void feed(const char *topic, const ProtobufCMessage *payload)
{
	Creneau__V1__Event ev = CRENEAU__V1__EVENT__INIT;
	uint8_t buf[1024];

	ev.publisher = "accounts";
	ev.topic = (char *)topic;
	ev.payload.len = protobuf_c_message_pack(payload, buf);
	ev.payload.data = buf;
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(handlers_apply_accounts_event(NULL, db, &ev), 0);
	assert_int_equal(db_commit(db), 0);
}

static void account_created(const char *id, Creneau__V1__Role role,
			    bool verified)
{
	Creneau__V1__AccountCreated c = CRENEAU__V1__ACCOUNT_CREATED__INIT;
	Creneau__V1__AccountVerified v = CRENEAU__V1__ACCOUNT_VERIFIED__INIT;

	c.account_id = (char *)id;
	c.role = role;
	c.email = "someone@example.org";
	c.first_name = "Léa";
	c.last_name = "Durand";
	feed("account.created", &c.base);
	if (!verified)
		return;
	v.account_id = (char *)id;
	v.role = role;
	v.email = "someone@example.org";
	feed("account.verified", &v.base);
}

/* An account.suspended event, as accounts publishes it. */
static void subscription(const char *id, Creneau__V1__SubscriptionStatus st,
			 bool listed)
{
	Creneau__V1__AccountSuspended s = CRENEAU__V1__ACCOUNT_SUSPENDED__INIT;

	s.account_id = (char *)id;
	s.role = CRENEAU__V1__ROLE__ROLE_PRACTITIONER;
	s.subscription_status = st;
	s.listed = listed;
	feed("account.suspended", &s.base);
}

static void verified(const char *id, Creneau__V1__Role role)
{
	Creneau__V1__AccountVerified v = CRENEAU__V1__ACCOUNT_VERIFIED__INIT;

	v.account_id = (char *)id;
	v.role = role;
	v.email = "someone@example.org";
	feed("account.verified", &v.base);
}

static Creneau__V1__Availability *availability(const char *from, const char *to)
{
	Creneau__V1__GetAvailabilityRequest q =
	    CRENEAU__V1__GET_AVAILABILITY_REQUEST__INIT;
	ProtobufCMessage *r;

	q.id = PRACT;
	q.offering = offering_id;
	q.from = (char *)from;
	q.to = (char *)to;
	assert_int_equal(call(ANON, "GetAvailability", &q.base,
			      &creneau__v1__availability__descriptor, &r, NULL),
			 0);
	return (Creneau__V1__Availability *)r;
}

static int create_booking(enum who w, const char *start, const char *note,
			  const char *idem, Creneau__V1__Booking **out,
			  struct rpc_error *err)
{
	Creneau__V1__CreateBookingRequest q =
	    CRENEAU__V1__CREATE_BOOKING_REQUEST__INIT;

	q.practitioner_id = PRACT;
	q.offering_id = offering_id;
	q.start = (char *)start;
	q.note = (char *)(note ? note : "");
	q.idempotency_key = (char *)(idem ? idem : "");
	return call(w, "CreateBooking", &q.base,
		    &creneau__v1__booking__descriptor, (ProtobufCMessage **)out,
		    err);
}

/* A start offered in the future, the k-th slot after now + hours. */
static void nth_slot(int hours, int k, char out[INSTANT_TEXT])
{
	char from[INSTANT_TEXT];
	Creneau__V1__Availability *a;

	instant_format((instant_now_ms() / 60000 + hours * 60) * 60000, from);
	a = availability(from, "");
	assert_true(a->n_slots > (size_t)k);
	snprintf(out, INSTANT_TEXT, "%s", a->slots[k]->start);
}

static int setup(void **state)
{
	Creneau__V1__CreateOfferingRequest o =
	    CRENEAU__V1__CREATE_OFFERING_REQUEST__INIT;
	Creneau__V1__Schedule s = CRENEAU__V1__SCHEDULE__INIT;
	Creneau__V1__WeeklyInterval w[7], *wp[7];
	Creneau__V1__Offering *made;
	Creneau__V1__Booking *b;
	struct rpc_server_config cfg = {0};
	size_t n_methods;
	char start[INSTANT_TEXT], sql[200];

	if (!pg)
		return 0;
	snprintf(schema, sizeof(schema), "test_bkh_%ld_%d", (long)getpid(),
		 ++serial);
	snprintf(conninfo, sizeof(conninfo), "%s options='-c search_path=%s'",
		 pg, schema);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
	exec_sql(admin, sql);
	assert_int_equal(db_open(&db, conninfo), 0);
	assert_int_equal(db_ensure(db), 0);
	assert_int_equal(db_migrate(db, schema, booking_core_migrations,
				    booking_core_migrations_count),
			 0);
	snprintf(url, sizeof(url), "inproc://booking-%d", serial);
	cfg.service = "booking";
	cfg.listen_url = url;
	cfg.workers = 4;
	cfg.key = key;
	cfg.methods = handlers_methods(&n_methods);
	cfg.n_methods = n_methods;
	cfg.db_conninfo = conninfo;
	assert_int_equal(rpc_server_start(&server, &cfg), 0);
	assert_int_equal(rpc_client_open(&client, "booking", url, key, "test"),
			 0);
	arena = arena_new(0);
	account_created(PRACT, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, true);
	account_created(CLIENT, CRENEAU__V1__ROLE__ROLE_CLIENT, true);
	account_created(OTHER_CLIENT, CRENEAU__V1__ROLE__ROLE_CLIENT, true);
	account_created(UNVERIFIED, CRENEAU__V1__ROLE__ROLE_CLIENT, false);
	/* open every day, all day, in Paris; no notice; 15-minute grid */
	for (int i = 0; i < 7; i++) {
		creneau__v1__weekly_interval__init(&w[i]);
		w[i].weekday = i + 1;
		w[i].start = "00:00";
		w[i].end = "24:00";
		wp[i] = &w[i];
	}
	s.timezone = "Europe/Paris";
	s.weekly = wp;
	s.n_weekly = 7;
	s.min_notice_min_present_case =
	    CRENEAU__V1__SCHEDULE__MIN_NOTICE_MIN_PRESENT_MIN_NOTICE_MIN;
	s.min_notice_min = 0;
	assert_int_equal(call(PRACTITIONER, "PutSchedule", &s.base,
			      &creneau__v1__schedule__descriptor, NULL, NULL),
			 0);
	o.title = "Réflexologie plantaire";
	o.duration_min = 60;
	o.price_cents = 5500;
	o.location = "office";
	o.buffer_after_min = 15;
	assert_int_equal(call(PRACTITIONER, "CreateOffering", &o.base,
			      &creneau__v1__offering__descriptor,
			      (ProtobufCMessage **)&made, NULL),
			 0);
	snprintf(offering_id, sizeof(offering_id), "%s", made->id);
	/* a booking of CLIENT three days ahead */
	nth_slot(72, 0, start);
	assert_int_equal(
	    create_booking(CLIENT_A, start, "hello", NULL, &b, NULL), 0);
	snprintf(booking_id, sizeof(booking_id), "%s", b->id);
	assert_int_equal(instant_parse(start, &booked_start), 0);
	snprintf(record_id, sizeof(record_id), "%s", "");
	{
		PGresult *r;

		assert_int_equal(
		    db_exec(db, "SELECT id FROM clients", 0, NULL, &r), 0);
		snprintf(record_id, sizeof(record_id), "%s",
			 PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	return 0;
}

static int teardown(void **state)
{
	char sql[200];

	if (!pg)
		return 0;
	rpc_client_free(client);
	rpc_server_stop(server);
	arena_free(arena);
	db_close(db);
	snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
	exec_sql(admin, sql);
	return 0;
}

/* ---- the flow ---- */

static void booking_rules_hold(void **state)
{
	Creneau__V1__Booking *b, *again;
	struct rpc_error err;
	char start[INSTANT_TEXT], off_grid[INSTANT_TEXT];
	int64_t ms;

	if (!pg)
		skip();
	nth_slot(96, 0, start);
	/* the same key and body: the same booking */
	assert_int_equal(create_booking(CLIENT_A, start, "n", "k1", &b, NULL),
			 0);
	assert_string_equal(b->status, "confirmed");
	assert_string_equal(b->payment_status, "none");
	assert_null(b->client); /* the client file is the practitioner's */
	assert_int_equal(
	    create_booking(CLIENT_A, start, "n", "k1", &again, NULL), 0);
	assert_string_equal(again->id, b->id);
	/* the same key with another body: 422 */
	assert_int_equal(
	    create_booking(CLIENT_A, start, "other", "k1", NULL, &err),
	    ERR_RULE);
	assert_string_equal(err.error_code, "idempotency_key_reused");
	/* the slot is gone for everyone else: 409 slot_taken */
	assert_int_equal(
	    create_booking(CLIENT_B, start, NULL, NULL, NULL, &err),
	    ERR_CONFLICT);
	assert_string_equal(err.error_code, "slot_taken");
	/* a start off the grid is not a slot: 422 */
	assert_int_equal(instant_parse(start, &ms), 0);
	instant_format(ms + 7 * 60000 + 2 * AVAIL_DAY_MS, off_grid);
	assert_int_equal(
	    create_booking(CLIENT_B, off_grid, NULL, NULL, NULL, &err),
	    ERR_RULE);
	assert_string_equal(err.error_code, "slot_not_offered");
	assert_string_equal(err.field, "start");
	/* an unverified client cannot book */
	assert_int_equal(
	    create_booking(CLIENT_UNVERIFIED, start, NULL, NULL, NULL, &err),
	    ERR_RULE);
	assert_string_equal(err.error_code, "email_not_verified");
	/* bad input names its field */
	assert_int_equal(
	    create_booking(CLIENT_B, "tomorrow", NULL, NULL, NULL, &err),
	    ERR_INVALID);
	assert_string_equal(err.field, "start");
	assert_int_equal(query_long("SELECT count(*) FROM bookings"), 2);
	assert_int_equal(query_long("SELECT count(*) FROM events_outbox WHERE "
				    "topic = 'booking.created'"),
			 2);
}

static void cancel_frees_and_deadline_holds(void **state)
{
	Creneau__V1__CancelBookingRequest c =
	    CRENEAU__V1__CANCEL_BOOKING_REQUEST__INIT;
	Creneau__V1__Booking *soon, *done;
	Creneau__V1__Availability *a;
	Creneau__V1__BookingEvent *ev;
	struct rpc_error err;
	char start[INSTANT_TEXT], from[INSTANT_TEXT], to[INSTANT_TEXT];
	bool found = false;

	if (!pg)
		skip();
	/* three days ahead: the client may cancel, and the slot is free again
	 */
	c.id = booking_id;
	c.reason = "empêchement";
	assert_int_equal(call(CLIENT_A, "CancelBooking", &c.base,
			      &creneau__v1__booking__descriptor,
			      (ProtobufCMessage **)&done, NULL),
			 0);
	assert_string_equal(done->status, "cancelled");
	assert_string_equal(done->cancelled_by, "client");
	assert_int_equal(call(CLIENT_A, "CancelBooking", &c.base,
			      &creneau__v1__booking__descriptor, NULL, &err),
			 ERR_RULE);
	instant_format(booked_start, from);
	instant_format(booked_start + 3600000, to);
	a = availability(from, to);
	for (size_t i = 0; i < a->n_slots; i++)
		found |= strcmp(a->slots[i]->start, from) == 0;
	assert_true(found);
	/* two hours ahead: inside the 24 h deadline, the client cannot */
	nth_slot(2, 0, start);
	assert_int_equal(
	    create_booking(CLIENT_B, start, NULL, NULL, &soon, NULL), 0);
	c.id = soon->id;
	assert_int_equal(call(CLIENT_B, "CancelBooking", &c.base,
			      &creneau__v1__booking__descriptor, NULL, &err),
			 ERR_RULE);
	assert_string_equal(err.error_code, "deadline_passed");
	/* ... the practitioner can, at any time */
	assert_int_equal(call(PRACTITIONER, "CancelBooking", &c.base,
			      &creneau__v1__booking__descriptor,
			      (ProtobufCMessage **)&done, NULL),
			 0);
	assert_string_equal(done->cancelled_by, "practitioner");
	assert_int_equal(query_long("SELECT count(*) FROM events_outbox WHERE "
				    "topic = 'booking.cancelled'"),
			 2);
	/* previous_* belong to booking.rescheduled only */
	ev = last_event("booking.cancelled");
	assert_int_equal(ev->previous_start_ms, 0);
	assert_int_equal(ev->previous_end_ms, 0);
	assert_string_equal(ev->cancelled_by, "practitioner");
	creneau__v1__booking_event__free_unpacked(ev, NULL);
}

static void reschedule_is_atomic(void **state)
{
	Creneau__V1__RescheduleBookingRequest q =
	    CRENEAU__V1__RESCHEDULE_BOOKING_REQUEST__INIT;
	Creneau__V1__Booking *other, *moved, *seen;
	Creneau__V1__BookingIdRequest g = CRENEAU__V1__BOOKING_ID_REQUEST__INIT;
	Creneau__V1__BookingEvent *ev;
	struct rpc_error err;
	char taken[INSTANT_TEXT], free_slot[INSTANT_TEXT], was[INSTANT_TEXT];
	int64_t ms;

	if (!pg)
		skip();
	instant_format(booked_start, was);
	/* another client holds a slot the next day */
	nth_slot(96, 0, taken);
	assert_int_equal(
	    create_booking(CLIENT_B, taken, NULL, NULL, &other, NULL), 0);
	q.id = booking_id;
	q.start = taken;
	assert_int_equal(call(CLIENT_A, "RescheduleBooking", &q.base,
			      &creneau__v1__booking__descriptor, NULL, &err),
			 ERR_CONFLICT);
	assert_string_equal(err.error_code, "slot_taken");
	g.id = booking_id;
	assert_int_equal(call(CLIENT_A, "GetBooking", &g.base,
			      &creneau__v1__booking__descriptor,
			      (ProtobufCMessage **)&seen, NULL),
			 0);
	assert_string_equal(seen->start, was); /* kept its old slot */
	assert_string_equal(seen->status, "confirmed");
	nth_slot(120, 4, free_slot);
	q.start = free_slot;
	assert_int_equal(call(CLIENT_A, "RescheduleBooking", &q.base,
			      &creneau__v1__booking__descriptor,
			      (ProtobufCMessage **)&moved, NULL),
			 0);
	assert_string_equal(moved->start, free_slot);
	/* the old slot is free again for someone else */
	assert_int_equal(create_booking(CLIENT_B, was, NULL, NULL, NULL, NULL),
			 0);
	assert_int_equal(query_long("SELECT count(*) FROM events_outbox WHERE "
				    "topic = 'booking.rescheduled'"),
			 1);
	/* the old times travel with booking.rescheduled */
	ev = last_event("booking.rescheduled");
	assert_int_equal(ev->previous_start_ms, booked_start);
	assert_int_equal(ev->previous_end_ms, booked_start + 3600000);
	assert_int_equal(instant_parse(free_slot, &ms), 0);
	assert_int_equal(ev->start_ms, ms);
	creneau__v1__booking_event__free_unpacked(ev, NULL);
}

static void suspended_practitioner_takes_no_booking(void **state)
{
	Creneau__V1__RescheduleBookingRequest q =
	    CRENEAU__V1__RESCHEDULE_BOOKING_REQUEST__INIT;
	struct rpc_error err;
	char start[INSTANT_TEXT], later[INSTANT_TEXT];

	if (!pg)
		skip();
	nth_slot(100, 0, start);
	nth_slot(100, 8, later);
	/* verified, then suspended: no slot, no booking */
	subscription(
	    PRACT,
	    CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_SUSPENDED,
	    false);
	assert_int_equal(availability(start, "")->n_slots, 0);
	assert_int_equal(
	    create_booking(CLIENT_B, start, NULL, NULL, NULL, &err), ERR_RULE);
	assert_string_equal(err.error_code, "practitioner_unavailable");
	assert_string_equal(err.field, "practitioner_id");
	/* ... and the client cannot move a booking to them either */
	q.id = booking_id;
	q.start = later;
	assert_int_equal(call(CLIENT_A, "RescheduleBooking", &q.base,
			      &creneau__v1__booking__descriptor, NULL, &err),
			 ERR_RULE);
	assert_string_equal(err.error_code, "practitioner_unavailable");
	assert_int_equal(query_long("SELECT count(*) FROM events_outbox WHERE "
				    "topic = 'booking.rescheduled'"),
			 0);
	/* a lapsed trial is no better */
	subscription(
	    PRACT, CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_LAPSED,
	    false);
	assert_int_equal(
	    create_booking(CLIENT_B, start, NULL, NULL, NULL, &err), ERR_RULE);
	assert_string_equal(err.error_code, "practitioner_unavailable");
	/* a trial over (not listed although verified) neither */
	subscription(
	    PRACT, CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_TRIAL,
	    false);
	assert_int_equal(
	    create_booking(CLIENT_B, start, NULL, NULL, NULL, &err), ERR_RULE);
	assert_string_equal(err.error_code, "practitioner_unavailable");
	/* the practitioner may still move their own bookings */
	assert_int_equal(call(PRACTITIONER, "RescheduleBooking", &q.base,
			      &creneau__v1__booking__descriptor, NULL, NULL),
			 0);
	/* reactivated: bookable again */
	subscription(
	    PRACT, CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_ACTIVE,
	    true);
	assert_true(availability(start, "")->n_slots > 0);
	assert_int_equal(
	    create_booking(CLIENT_B, start, NULL, NULL, NULL, NULL), 0);
	q.start = start;
	assert_int_equal(call(CLIENT_A, "RescheduleBooking", &q.base,
			      &creneau__v1__booking__descriptor, NULL, &err),
			 ERR_CONFLICT); /* CLIENT_B's now: the rule let it by */
	assert_string_equal(err.error_code, "slot_taken");
}

/* CreateBooking with OTHER_PRACT's offering at start. */
static int book_other(const char *offering, const char *start,
		      struct rpc_error *err)
{
	Creneau__V1__CreateBookingRequest q =
	    CRENEAU__V1__CREATE_BOOKING_REQUEST__INIT;

	q.practitioner_id = OTHER_PRACT;
	q.offering_id = (char *)offering;
	q.start = (char *)start;
	return call(CLIENT_A, "CreateBooking", &q.base,
		    &creneau__v1__booking__descriptor, NULL, err);
}

static void only_known_verified_practitioners_take_bookings(void **state)
{
	Creneau__V1__CreateOfferingRequest o =
	    CRENEAU__V1__CREATE_OFFERING_REQUEST__INIT;
	Creneau__V1__Schedule s = CRENEAU__V1__SCHEDULE__INIT;
	Creneau__V1__WeeklyInterval w = CRENEAU__V1__WEEKLY_INTERVAL__INIT;
	Creneau__V1__WeeklyInterval *wp[7], days[7];
	Creneau__V1__Offering *made;
	struct rpc_error err;
	char start[INSTANT_TEXT];

	if (!pg)
		skip();
	/* OTHER_PRACT has hours and an offering but booking has not heard
	 * of the account yet */
	for (int i = 0; i < 7; i++) {
		days[i] = w;
		days[i].weekday = i + 1;
		days[i].start = "00:00";
		days[i].end = "24:00";
		wp[i] = &days[i];
	}
	s.timezone = "Europe/Paris";
	s.weekly = wp;
	s.n_weekly = 7;
	s.min_notice_min_present_case =
	    CRENEAU__V1__SCHEDULE__MIN_NOTICE_MIN_PRESENT_MIN_NOTICE_MIN;
	assert_int_equal(call(OTHER_PRACTITIONER, "PutSchedule", &s.base,
			      &creneau__v1__schedule__descriptor, NULL, NULL),
			 0);
	o.title = "Shiatsu";
	o.duration_min = 60;
	o.location = "office";
	assert_int_equal(call(OTHER_PRACTITIONER, "CreateOffering", &o.base,
			      &creneau__v1__offering__descriptor,
			      (ProtobufCMessage **)&made, NULL),
			 0);
	/* a whole hour, two days ahead: on any grid */
	instant_format((instant_now_ms() / 3600000 + 48) * 3600000, start);
	assert_int_equal(book_other(made->id, start, &err), ERR_RULE);
	assert_string_equal(err.error_code, "practitioner_unavailable");
	/* known, not verified */
	account_created(OTHER_PRACT, CRENEAU__V1__ROLE__ROLE_PRACTITIONER,
			false);
	assert_int_equal(book_other(made->id, start, &err), ERR_RULE);
	assert_string_equal(err.error_code, "practitioner_unavailable");
	/* a subscription while unverified (accounts: listed = false) does
	 * not make the practitioner suspended ... */
	subscription(
	    OTHER_PRACT,
	    CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_ACTIVE,
	    false);
	assert_int_equal(book_other(made->id, start, &err), ERR_RULE);
	assert_string_equal(err.error_code, "practitioner_unavailable");
	/* ... so verification alone makes them bookable */
	verified(OTHER_PRACT, CRENEAU__V1__ROLE__ROLE_PRACTITIONER);
	assert_int_equal(book_other(made->id, start, NULL), 0);
	assert_int_equal(query_long("SELECT count(*) FROM bookings WHERE "
				    "practitioner_id = '" OTHER_PRACT "'"),
			 1);
}

static void control_characters_are_refused(void **state)
{
	Creneau__V1__CreateOfferingRequest o =
	    CRENEAU__V1__CREATE_OFFERING_REQUEST__INIT;
	Creneau__V1__UpdateOfferingRequest uo =
	    CRENEAU__V1__UPDATE_OFFERING_REQUEST__INIT;
	Creneau__V1__CancelBookingRequest c =
	    CRENEAU__V1__CANCEL_BOOKING_REQUEST__INIT;
	Creneau__V1__UpdateClientRequest uc =
	    CRENEAU__V1__UPDATE_CLIENT_REQUEST__INIT;
	static const struct {
		const char *title, *description, *field;
	} offerings[] = {
	    {"Massage\nBcc: x@example.org", "", "title"},
	    {"Massage\r", "", "title"},
	    {"Mas\tsage", "", "title"},
	    {"Mas\x7fsage", "", "title"},
	    {"Mas\xc2\x85sage", "", "title"}, /* U+0085, a C1 control */
	    {"Mas\xffsage", "", "title"},
	    {"Mas\xc3sage", "", "title"},     /* a cut sequence */
	    {"Mas\xc0\xafsage", "", "title"}, /* an overlong "/" */
	    {"\xed\xa0\x80", "", "title"},    /* a surrogate */
	    {"Massage", "ligne\x01", "description"},
	    {"Massage", "\xfe", "description"},
	};
	Creneau__V1__Offering *made;
	Creneau__V1__Booking *b;
	struct rpc_error err;
	char start[INSTANT_TEXT];

	if (!pg)
		skip();
	o.duration_min = 30;
	o.location = "office";
	for (size_t i = 0; i < sizeof(offerings) / sizeof(offerings[0]); i++) {
		o.title = (char *)offerings[i].title;
		o.description = (char *)offerings[i].description;
		assert_int_equal(call(PRACTITIONER, "CreateOffering", &o.base,
				      &creneau__v1__offering__descriptor, NULL,
				      &err),
				 ERR_INVALID);
		assert_string_equal(err.field, offerings[i].field);
	}
	/* descriptions keep their lines; accents are text */
	o.title = "Énergétique — séance";
	o.description = "Première ligne\r\nSeconde ligne\n\tretrait";
	assert_int_equal(call(PRACTITIONER, "CreateOffering", &o.base,
			      &creneau__v1__offering__descriptor,
			      (ProtobufCMessage **)&made, NULL),
			 0);
	uo.id = made->id;
	uo.title_present_case =
	    CRENEAU__V1__UPDATE_OFFERING_REQUEST__TITLE_PRESENT_TITLE;
	uo.title = "Deux\nlignes";
	assert_int_equal(call(PRACTITIONER, "UpdateOffering", &uo.base,
			      &creneau__v1__offering__descriptor, NULL, &err),
			 ERR_INVALID);
	assert_string_equal(err.field, "title");
	/* a note may have lines, not other controls */
	nth_slot(150, 0, start);
	assert_int_equal(
	    create_booking(CLIENT_B, start, "a\x1b[31m", NULL, NULL, &err),
	    ERR_INVALID);
	assert_string_equal(err.field, "note");
	assert_int_equal(
	    create_booking(CLIENT_B, start, "ligne 1\nligne 2", NULL, &b, NULL),
	    0);
	/* a reason is one line */
	c.id = b->id;
	c.reason = "malade\nBcc: x@example.org";
	assert_int_equal(call(CLIENT_B, "CancelBooking", &c.base,
			      &creneau__v1__booking__descriptor, NULL, &err),
			 ERR_INVALID);
	assert_string_equal(err.field, "reason");
	/* the client file: names are one line, notes may have several */
	uc.id = record_id;
	uc.first_name_present_case =
	    CRENEAU__V1__UPDATE_CLIENT_REQUEST__FIRST_NAME_PRESENT_FIRST_NAME;
	uc.first_name = "L\ta";
	assert_int_equal(call(PRACTITIONER, "UpdateClient", &uc.base,
			      &creneau__v1__client_record__descriptor, NULL,
			      &err),
			 ERR_INVALID);
	assert_string_equal(err.field, "first_name");
	uc.first_name_present_case =
	    CRENEAU__V1__UPDATE_CLIENT_REQUEST__FIRST_NAME_PRESENT__NOT_SET;
	uc.notes_present_case =
	    CRENEAU__V1__UPDATE_CLIENT_REQUEST__NOTES_PRESENT_NOTES;
	uc.notes = "allergie\x07";
	assert_int_equal(call(PRACTITIONER, "UpdateClient", &uc.base,
			      &creneau__v1__client_record__descriptor, NULL,
			      &err),
			 ERR_INVALID);
	assert_string_equal(err.field, "notes");
	uc.notes = "allergie\nau latex";
	assert_int_equal(call(PRACTITIONER, "UpdateClient", &uc.base,
			      &creneau__v1__client_record__descriptor, NULL,
			      NULL),
			 0);
	/* nothing refused was written */
	assert_int_equal(query_long("SELECT count(*) FROM offerings"), 2);
	assert_int_equal(query_long("SELECT count(*) FROM bookings WHERE "
				    "status = 'confirmed'"),
			 2);
}

static void deleted_client_keeps_the_practitioners_record(void **state)
{
	Creneau__V1__AccountDeleted d = CRENEAU__V1__ACCOUNT_DELETED__INIT;
	Creneau__V1__BookingIdRequest g = CRENEAU__V1__BOOKING_ID_REQUEST__INIT;
	Creneau__V1__ClientIdRequest c = CRENEAU__V1__CLIENT_ID_REQUEST__INIT;
	Creneau__V1__ClientRecord *rec;

	if (!pg)
		skip();
	d.account_id = CLIENT;
	d.role = CRENEAU__V1__ROLE__ROLE_CLIENT;
	feed("account.deleted", &d.base);
	/* the future booking is cancelled by the system, the link is gone */
	g.id = booking_id;
	assert_int_equal(call(CLIENT_A, "GetBooking", &g.base,
			      &creneau__v1__booking__descriptor, NULL, NULL),
			 ERR_NOT_FOUND);
	assert_int_equal(query_long("SELECT count(*) FROM bookings WHERE "
				    "status = 'cancelled' AND cancelled_by = "
				    "'system'"),
			 1);
	c.id = record_id;
	assert_int_equal(call(PRACTITIONER, "GetClient", &c.base,
			      &creneau__v1__client_record__descriptor,
			      (ProtobufCMessage **)&rec, NULL),
			 0);
	assert_string_equal(rec->account_id, "");
	assert_string_equal(rec->first_name, "Léa");
	/* the practitioner erases the record: no upcoming booking remains */
	assert_int_equal(call(PRACTITIONER, "DeleteClient", &c.base,
			      &creneau__v1__booking_empty__descriptor, NULL,
			      NULL),
			 0);
	assert_int_equal(query_long("SELECT count(*) FROM clients"), 0);
}

/* ---- who may do what: every method, every kind of caller ---- */

struct auth_row {
	const char *method;
	enum who who;
	int want;
};

static void authorisation_table(void **state)
{
	static const struct auth_row rows[] = {
	    {"ListMyOfferings", ANON, ERR_UNAUTHENTICATED},
	    {"ListMyOfferings", CLIENT_A, ERR_FORBIDDEN},
	    {"ListMyOfferings", ADMIN_, ERR_FORBIDDEN},
	    {"ListMyOfferings", PRACTITIONER, 0},
	    {"ListPractitionerOfferings", ANON, 0},
	    {"CreateOffering", ANON, ERR_UNAUTHENTICATED},
	    {"CreateOffering", CLIENT_A, ERR_FORBIDDEN},
	    {"UpdateOffering", OTHER_PRACTITIONER, ERR_NOT_FOUND},
	    {"UpdateOffering", CLIENT_A, ERR_FORBIDDEN},
	    {"UpdateOffering", PRACTITIONER, 0},
	    {"DeleteOffering", OTHER_PRACTITIONER, ERR_NOT_FOUND},
	    {"DeleteOffering", CLIENT_A, ERR_FORBIDDEN},
	    {"GetSchedule", ANON, ERR_UNAUTHENTICATED},
	    {"GetSchedule", CLIENT_A, ERR_FORBIDDEN},
	    {"GetSchedule", PRACTITIONER, 0},
	    {"PutSchedule", CLIENT_A, ERR_FORBIDDEN},
	    {"PutSchedule", ADMIN_, ERR_FORBIDDEN},
	    {"ListOverrides", CLIENT_A, ERR_FORBIDDEN},
	    {"CreateOverride", CLIENT_A, ERR_FORBIDDEN},
	    {"DeleteOverride", OTHER_PRACTITIONER, ERR_NOT_FOUND},
	    {"DeleteOverride", CLIENT_A, ERR_FORBIDDEN},
	    {"GetAvailability", ANON, 0},
	    {"CreateBooking", ANON, ERR_UNAUTHENTICATED},
	    {"CreateBooking", PRACTITIONER, ERR_FORBIDDEN},
	    {"CreateBooking", ADMIN_, ERR_FORBIDDEN},
	    {"ListMyBookings", ANON, ERR_UNAUTHENTICATED},
	    {"ListMyBookings", ADMIN_, ERR_FORBIDDEN},
	    {"ListMyBookings", CLIENT_B, 0},
	    {"GetBooking", ANON, ERR_UNAUTHENTICATED},
	    {"GetBooking", CLIENT_B, ERR_NOT_FOUND},
	    {"GetBooking", OTHER_PRACTITIONER, ERR_NOT_FOUND},
	    {"GetBooking", ADMIN_, ERR_NOT_FOUND},
	    {"GetBooking", CLIENT_A, 0},
	    {"GetBooking", PRACTITIONER, 0},
	    {"CancelBooking", ANON, ERR_UNAUTHENTICATED},
	    {"CancelBooking", CLIENT_B, ERR_NOT_FOUND},
	    {"CancelBooking", OTHER_PRACTITIONER, ERR_NOT_FOUND},
	    {"RescheduleBooking", CLIENT_B, ERR_NOT_FOUND},
	    {"RescheduleBooking", OTHER_PRACTITIONER, ERR_NOT_FOUND},
	    {"CompleteBooking", CLIENT_A, ERR_FORBIDDEN},
	    {"CompleteBooking", OTHER_PRACTITIONER, ERR_NOT_FOUND},
	    {"NoShowBooking", CLIENT_A, ERR_FORBIDDEN},
	    {"NoShowBooking", CLIENT_B, ERR_NOT_FOUND},
	    {"ListClients", ANON, ERR_UNAUTHENTICATED},
	    {"ListClients", CLIENT_A, ERR_FORBIDDEN},
	    {"ListClients", PRACTITIONER, 0},
	    {"GetClient", OTHER_PRACTITIONER, ERR_NOT_FOUND},
	    {"GetClient", CLIENT_A, ERR_FORBIDDEN},
	    {"GetClient", PRACTITIONER, 0},
	    {"UpdateClient", OTHER_PRACTITIONER, ERR_NOT_FOUND},
	    {"UpdateClient", CLIENT_A, ERR_FORBIDDEN},
	    {"DeleteClient", OTHER_PRACTITIONER, ERR_NOT_FOUND},
	    {"DeleteClient", CLIENT_A, ERR_FORBIDDEN},
	    {"ReplaceBusy", ANON, ERR_FORBIDDEN},
	    {"ReplaceBusy", PRACTITIONER, ERR_FORBIDDEN},
	    {"ReplaceBusy", ADMIN_, ERR_FORBIDDEN},
	    {"ReplaceBusy", SERVICE_, 0},
	    {"Export", CLIENT_A, ERR_FORBIDDEN},
	    {"Export", PRACTITIONER, ERR_FORBIDDEN},
	    {"Export", SERVICE_, 0},
	    {"Erase", CLIENT_A, ERR_FORBIDDEN},
	    {"Erase", PRACTITIONER, ERR_FORBIDDEN},
	    {"Sweep", CLIENT_A, ERR_FORBIDDEN},
	    {"Sweep", PRACTITIONER, ERR_FORBIDDEN},
	};
	Creneau__V1__ListMyOfferingsRequest lmo =
	    CRENEAU__V1__LIST_MY_OFFERINGS_REQUEST__INIT;
	Creneau__V1__ListPractitionerOfferingsRequest lpo =
	    CRENEAU__V1__LIST_PRACTITIONER_OFFERINGS_REQUEST__INIT;
	Creneau__V1__CreateOfferingRequest co =
	    CRENEAU__V1__CREATE_OFFERING_REQUEST__INIT;
	Creneau__V1__UpdateOfferingRequest uo =
	    CRENEAU__V1__UPDATE_OFFERING_REQUEST__INIT;
	Creneau__V1__DeleteOfferingRequest dof =
	    CRENEAU__V1__DELETE_OFFERING_REQUEST__INIT;
	Creneau__V1__GetScheduleRequest gs =
	    CRENEAU__V1__GET_SCHEDULE_REQUEST__INIT;
	Creneau__V1__Schedule ps = CRENEAU__V1__SCHEDULE__INIT;
	Creneau__V1__ListOverridesRequest lo =
	    CRENEAU__V1__LIST_OVERRIDES_REQUEST__INIT;
	Creneau__V1__CreateOverrideRequest cov =
	    CRENEAU__V1__CREATE_OVERRIDE_REQUEST__INIT;
	Creneau__V1__DeleteOverrideRequest dov =
	    CRENEAU__V1__DELETE_OVERRIDE_REQUEST__INIT;
	Creneau__V1__GetAvailabilityRequest ga =
	    CRENEAU__V1__GET_AVAILABILITY_REQUEST__INIT;
	Creneau__V1__CreateBookingRequest cb =
	    CRENEAU__V1__CREATE_BOOKING_REQUEST__INIT;
	Creneau__V1__ListMyBookingsRequest lb =
	    CRENEAU__V1__LIST_MY_BOOKINGS_REQUEST__INIT;
	Creneau__V1__BookingIdRequest bid =
	    CRENEAU__V1__BOOKING_ID_REQUEST__INIT;
	Creneau__V1__CancelBookingRequest cab =
	    CRENEAU__V1__CANCEL_BOOKING_REQUEST__INIT;
	Creneau__V1__RescheduleBookingRequest rb =
	    CRENEAU__V1__RESCHEDULE_BOOKING_REQUEST__INIT;
	Creneau__V1__ListClientsRequest lc =
	    CRENEAU__V1__LIST_CLIENTS_REQUEST__INIT;
	Creneau__V1__ClientIdRequest cid = CRENEAU__V1__CLIENT_ID_REQUEST__INIT;
	Creneau__V1__UpdateClientRequest uc =
	    CRENEAU__V1__UPDATE_CLIENT_REQUEST__INIT;
	Creneau__V1__ReplaceBusyRequest rbu =
	    CRENEAU__V1__REPLACE_BUSY_REQUEST__INIT;
	Creneau__V1__Subject subj = CRENEAU__V1__SUBJECT__INIT;
	Creneau__V1__ExportRequest ex = CRENEAU__V1__EXPORT_REQUEST__INIT;
	Creneau__V1__EraseRequest er = CRENEAU__V1__ERASE_REQUEST__INIT;
	Creneau__V1__SweepRequest sw = CRENEAU__V1__SWEEP_REQUEST__INIT;
	Creneau__V1__TimeInterval ti = CRENEAU__V1__TIME_INTERVAL__INIT;
	Creneau__V1__TimeInterval *tip = &ti;
	char later[INSTANT_TEXT];
	const struct {
		const char *method;
		const ProtobufCMessage *req;
	} reqs[] = {
	    {"ListMyOfferings", &lmo.base},
	    {"ListPractitionerOfferings", &lpo.base},
	    {"CreateOffering", &co.base},
	    {"UpdateOffering", &uo.base},
	    {"DeleteOffering", &dof.base},
	    {"GetSchedule", &gs.base},
	    {"PutSchedule", &ps.base},
	    {"ListOverrides", &lo.base},
	    {"CreateOverride", &cov.base},
	    {"DeleteOverride", &dov.base},
	    {"GetAvailability", &ga.base},
	    {"CreateBooking", &cb.base},
	    {"ListMyBookings", &lb.base},
	    {"GetBooking", &bid.base},
	    {"CancelBooking", &cab.base},
	    {"RescheduleBooking", &rb.base},
	    {"CompleteBooking", &bid.base},
	    {"NoShowBooking", &bid.base},
	    {"ListClients", &lc.base},
	    {"GetClient", &cid.base},
	    {"UpdateClient", &uc.base},
	    {"DeleteClient", &cid.base},
	    {"ReplaceBusy", &rbu.base},
	    {"Export", &ex.base},
	    {"Erase", &er.base},
	    {"Sweep", &sw.base},
	};
	size_t n_methods;
	const struct rpc_method *methods = handlers_methods(&n_methods);

	if (!pg)
		skip();
	/* every method of the service is in the table */
	for (size_t m = 0; m < n_methods; m++) {
		bool listed = false;

		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			listed |= strcmp(rows[i].method, methods[m].name) == 0;
		if (!listed)
			fail_msg("method %s has no authorisation row",
				 methods[m].name);
	}
	lpo.id = PRACT;
	co.title = "x";
	co.duration_min = 30;
	co.location = "video";
	uo.id = offering_id;
	uo.title_present_case =
	    CRENEAU__V1__UPDATE_OFFERING_REQUEST__TITLE_PRESENT_TITLE;
	uo.title = "Réflexologie";
	dof.id = offering_id;
	cov.date = "2030-01-01";
	cov.intervals = &tip;
	cov.n_intervals = 1;
	ti.start = "10:00";
	ti.end = "11:00";
	dov.id = offering_id; /* not an override: never found */
	ga.id = PRACT;
	ga.offering = offering_id;
	cb.practitioner_id = PRACT;
	cb.offering_id = offering_id;
	instant_format(booked_start + AVAIL_DAY_MS, later);
	cb.start = later;
	bid.id = booking_id;
	cab.id = booking_id;
	rb.id = booking_id;
	rb.start = later;
	cid.id = record_id;
	uc.id = record_id;
	uc.notes_present_case =
	    CRENEAU__V1__UPDATE_CLIENT_REQUEST__NOTES_PRESENT_NOTES;
	uc.notes = "prefers mornings";
	rbu.practitioner_id = PRACT;
	rbu.source = "google";
	rbu.window_start_ms = booked_start;
	rbu.window_end_ms = booked_start + AVAIL_DAY_MS;
	subj.account_id = CLIENT;
	ex.subject = &subj;
	er.subject = &subj;
	sw.category = "appointments";
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const ProtobufCMessage *req = NULL;
		struct rpc_error err;
		int rc;

		for (size_t k = 0; k < sizeof(reqs) / sizeof(reqs[0]); k++)
			if (!strcmp(reqs[k].method, rows[i].method))
				req = reqs[k].req;
		assert_non_null(req);
		rc = call(rows[i].who, rows[i].method, req,
			  &creneau__v1__booking_empty__descriptor, NULL, &err);
		/* replies are read as BookingEmpty: unknown fields skipped */
		if (rc != rows[i].want)
			fail_msg("%s as caller %d: got %s, want %s",
				 rows[i].method, rows[i].who, error_str(rc),
				 error_str(rows[i].want));
	}
	/* nothing above changed the booking */
	assert_int_equal(query_long("SELECT count(*) FROM bookings WHERE "
				    "status = 'confirmed'"),
			 1);
}

static void export_holds_what_booking_knows(void **state)
{
	Creneau__V1__Subject subj = CRENEAU__V1__SUBJECT__INIT;
	Creneau__V1__ExportRequest ex = CRENEAU__V1__EXPORT_REQUEST__INIT;
	Creneau__V1__ExportReply *r;

	if (!pg)
		skip();
	subj.account_id = CLIENT;
	ex.subject = &subj;
	assert_int_equal(call(SERVICE_, "Export", &ex.base,
			      &creneau__v1__export_reply__descriptor,
			      (ProtobufCMessage **)&r, NULL),
			 0);
	assert_string_equal(r->service, "booking");
	assert_non_null(strstr(r->document, "\"bookings_as_client\":[{"));
	assert_non_null(strstr(r->document, booking_id));
}

static void endings_busy_and_privacy(void **state)
{
	Creneau__V1__BookingIdRequest g = CRENEAU__V1__BOOKING_ID_REQUEST__INIT;
	Creneau__V1__ReplaceBusyRequest rb =
	    CRENEAU__V1__REPLACE_BUSY_REQUEST__INIT;
	Creneau__V1__BusyInterval iv = CRENEAU__V1__BUSY_INTERVAL__INIT;
	Creneau__V1__BusyInterval *ivp = &iv;
	Creneau__V1__SweepRequest sw = CRENEAU__V1__SWEEP_REQUEST__INIT;
	Creneau__V1__Subject subj = CRENEAU__V1__SUBJECT__INIT;
	Creneau__V1__EraseRequest er = CRENEAU__V1__ERASE_REQUEST__INIT;
	Creneau__V1__EraseReply *erased;
	Creneau__V1__SweepReply *swept;
	Creneau__V1__Booking *b, *done;
	Creneau__V1__Availability *a;
	Creneau__V1__BookingEvent *ev;
	struct rpc_error err;
	char start[INSTANT_TEXT], from[INSTANT_TEXT], to[INSTANT_TEXT];

	if (!pg)
		skip();
	/* a booking that has begun: the practitioner closes it */
	nth_slot(30, 0, start);
	assert_int_equal(create_booking(CLIENT_B, start, NULL, NULL, &b, NULL),
			 0);
	g.id = b->id;
	assert_int_equal(call(PRACTITIONER, "NoShowBooking", &g.base,
			      &creneau__v1__booking__descriptor, NULL, &err),
			 ERR_RULE);
	assert_string_equal(err.error_code, "booking_not_started");
	exec_sql(db, "UPDATE bookings SET start_at = start_at - interval "
		     "'4 days', end_at = end_at - interval '4 days', blocked = "
		     "tstzrange(lower(blocked) - interval '4 days', "
		     "upper(blocked) - interval '4 days')");
	assert_int_equal(call(PRACTITIONER, "NoShowBooking", &g.base,
			      &creneau__v1__booking__descriptor,
			      (ProtobufCMessage **)&done, NULL),
			 0);
	assert_string_equal(done->status, "no_show");
	assert_int_equal(call(PRACTITIONER, "CompleteBooking", &g.base,
			      &creneau__v1__booking__descriptor, NULL, &err),
			 ERR_RULE);
	assert_string_equal(err.error_code, "booking_not_confirmed");
	g.id = booking_id; /* moved four days back too: now begun */
	assert_int_equal(call(PRACTITIONER, "CompleteBooking", &g.base,
			      &creneau__v1__booking__descriptor,
			      (ProtobufCMessage **)&done, NULL),
			 0);
	assert_string_equal(done->status, "completed");
	assert_int_equal(query_long("SELECT count(*) FROM events_outbox WHERE "
				    "topic IN ('booking.completed', "
				    "'booking.no_show')"),
			 2);
	for (int i = 0; i < 2; i++) {
		ev = last_event(i ? "booking.no_show" : "booking.completed");
		assert_int_equal(ev->previous_start_ms, 0);
		assert_int_equal(ev->previous_end_ms, 0);
		creneau__v1__booking_event__free_unpacked(ev, NULL);
	}
	/* calendar-sync's busy intervals hide slots */
	nth_slot(50, 0, start);
	assert_int_equal(instant_parse(start, &iv.start_ms), 0);
	iv.end_ms = iv.start_ms + 3600000;
	rb.practitioner_id = PRACT;
	rb.source = "google";
	rb.window_start_ms = iv.start_ms - AVAIL_DAY_MS;
	rb.window_end_ms = iv.start_ms + AVAIL_DAY_MS;
	rb.intervals = &ivp;
	rb.n_intervals = 1;
	assert_int_equal(call(SERVICE_, "ReplaceBusy", &rb.base,
			      &creneau__v1__replace_busy_reply__descriptor,
			      NULL, NULL),
			 0);
	instant_format(iv.start_ms - 3600000, from);
	instant_format(iv.end_ms + 3600000, to);
	a = availability(from, to);
	for (size_t i = 0; i < a->n_slots; i++) {
		int64_t s;

		assert_int_equal(instant_parse(a->slots[i]->start, &s), 0);
		assert_false(s > iv.start_ms - 3600000 && s < iv.end_ms);
	}
	rb.window_end_ms = rb.window_start_ms;
	assert_int_equal(call(SERVICE_, "ReplaceBusy", &rb.base,
			      &creneau__v1__replace_busy_reply__descriptor,
			      NULL, &err),
			 ERR_INVALID);
	/* Sweep knows one category; Erase forgets a practitioner */
	sw.category = "connection_log";
	assert_int_equal(call(SERVICE_, "Sweep", &sw.base,
			      &creneau__v1__sweep_reply__descriptor, NULL,
			      &err),
			 ERR_INVALID);
	sw.category = "appointments";
	sw.cutoff_ms = instant_now_ms();
	assert_int_equal(call(SERVICE_, "Sweep", &sw.base,
			      &creneau__v1__sweep_reply__descriptor,
			      (ProtobufCMessage **)&swept, NULL),
			 0);
	assert_int_equal(swept->erased, 2);
	subj.account_id = PRACT;
	er.subject = &subj;
	assert_int_equal(call(SERVICE_, "Erase", &er.base,
			      &creneau__v1__erase_reply__descriptor,
			      (ProtobufCMessage **)&erased, NULL),
			 0);
	assert_true(erased->erased >= 3);
	assert_int_equal(query_long("SELECT count(*) FROM schedules"), 0);
	assert_int_equal(query_long("SELECT count(*) FROM clients"), 0);
	assert_int_equal(query_long("SELECT count(*) FROM busy_intervals"), 0);
}

static void undecodable_events_are_skipped(void **state)
{
	Creneau__V1__Event ev = CRENEAU__V1__EVENT__INIT;
	Creneau__V1__AccountUpdated up = CRENEAU__V1__ACCOUNT_UPDATED__INIT;
	uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	long before;

	if (!pg)
		skip();
	before = query_long("SELECT count(*) FROM accounts");
	ev.publisher = "accounts";
	ev.topic = "account.created";
	ev.payload.data = junk;
	ev.payload.len = sizeof(junk);
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(handlers_apply_accounts_event(NULL, db, &ev), 0);
	ev.topic = "account.something_new"; /* not booking's business */
	assert_int_equal(handlers_apply_accounts_event(NULL, db, &ev), 0);
	assert_int_equal(db_commit(db), 0);
	assert_int_equal(query_long("SELECT count(*) FROM accounts"), before);
	/* account.updated refreshes the copy (names, phone) */
	up.account_id = CLIENT;
	up.role = CRENEAU__V1__ROLE__ROLE_CLIENT;
	up.email = "new@example.org";
	up.first_name = "Zoé";
	up.last_name = "Durand";
	up.phone = "+33611111111";
	feed("account.updated", &up.base);
	assert_int_equal(
	    query_long("SELECT count(*) FROM accounts WHERE "
		       "phone = '+33611111111' AND email_verified"),
	    1);
}

static void bad_input_changes_nothing(void **state)
{
	Creneau__V1__CreateOverrideRequest ov =
	    CRENEAU__V1__CREATE_OVERRIDE_REQUEST__INIT;
	Creneau__V1__TimeInterval t1 = CRENEAU__V1__TIME_INTERVAL__INIT;
	Creneau__V1__TimeInterval t2 = CRENEAU__V1__TIME_INTERVAL__INIT;
	Creneau__V1__TimeInterval *ts[] = {&t1, &t2};
	Creneau__V1__UpdateOfferingRequest uo =
	    CRENEAU__V1__UPDATE_OFFERING_REQUEST__INIT;
	Creneau__V1__GetAvailabilityRequest ga =
	    CRENEAU__V1__GET_AVAILABILITY_REQUEST__INIT;
	Creneau__V1__Availability *far;
	static const struct {
		const char *date;
		bool closed;
		size_t n;
		const char *s1, *e1, *s2, *e2;
		const char *field;
	} overrides[] = {
	    {"2027-02-30", true, 0, NULL, NULL, NULL, NULL, "date"},
	    {"2027-03-01", true, 1, "09:00", "10:00", NULL, NULL, "intervals"},
	    {"2027-03-01", false, 0, NULL, NULL, NULL, NULL, "intervals"},
	    {"2027-03-01", false, 1, "10:00", "09:00", NULL, NULL,
	     "intervals[0]"},
	    {"2027-03-01", false, 2, "09:00", "11:00", "10:00", "12:00",
	     "intervals[1]"},
	    {"2027-03-01", false, 1, "09:00", "25:00", NULL, NULL,
	     "intervals[0]"},
	};
	struct rpc_error err;

	if (!pg)
		skip();
	for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
		ov.date = (char *)overrides[i].date;
		ov.closed = overrides[i].closed;
		ov.intervals = ts;
		ov.n_intervals = overrides[i].n;
		t1.start = (char *)overrides[i].s1;
		t1.end = (char *)overrides[i].e1;
		t2.start = (char *)overrides[i].s2;
		t2.end = (char *)overrides[i].e2;
		assert_int_equal(
		    call(PRACTITIONER, "CreateOverride", &ov.base,
			 &creneau__v1__schedule_override__descriptor, NULL,
			 &err),
		    ERR_INVALID);
		assert_string_equal(err.field, overrides[i].field);
	}
	uo.id = offering_id;
	uo.duration_min_present_case =
	    CRENEAU__V1__UPDATE_OFFERING_REQUEST__DURATION_MIN_PRESENT_DURATION_MIN;
	uo.duration_min = 481;
	assert_int_equal(call(PRACTITIONER, "UpdateOffering", &uo.base,
			      &creneau__v1__offering__descriptor, NULL, &err),
			 ERR_INVALID);
	assert_string_equal(err.field, "duration_min");
	ga.id = PRACT;
	ga.offering = offering_id;
	ga.from = "2027-01-01T00:00:00Z";
	ga.to = "2027-03-05T00:00:00Z"; /* 63 days */
	assert_int_equal(call(ANON, "GetAvailability", &ga.base,
			      &creneau__v1__availability__descriptor, NULL,
			      &err),
			 ERR_INVALID);
	assert_string_equal(err.field, "to");
	/* far away windows and starts cost nothing and offer nothing */
	ga.from = "9000-01-01T00:00:00Z";
	ga.to = "9000-02-01T00:00:00Z";
	assert_int_equal(call(ANON, "GetAvailability", &ga.base,
			      &creneau__v1__availability__descriptor,
			      (ProtobufCMessage **)&far, NULL),
			 0);
	assert_int_equal(far->n_slots, 0);
	assert_int_equal(create_booking(CLIENT_B, "9000-01-03T10:00:00Z", NULL,
					NULL, NULL, &err),
			 ERR_RULE);
	assert_string_equal(err.error_code, "slot_not_offered");
	assert_int_equal(create_booking(CLIENT_B, "1990-01-01T10:00:00Z", NULL,
					NULL, NULL, &err),
			 ERR_RULE);
	ga.offering = "not-an-id";
	assert_int_equal(call(ANON, "GetAvailability", &ga.base,
			      &creneau__v1__availability__descriptor, NULL,
			      &err),
			 ERR_INVALID);
	assert_string_equal(err.field, "offering");
	assert_int_equal(query_long("SELECT count(*) FROM schedule_overrides"),
			 0);
	assert_int_equal(query_long("SELECT count(*) FROM offerings WHERE "
				    "duration_min = 60"),
			 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(booking_rules_hold),
	    T(cancel_frees_and_deadline_holds),
	    T(reschedule_is_atomic),
	    T(suspended_practitioner_takes_no_booking),
	    T(only_known_verified_practitioners_take_bookings),
	    T(control_characters_are_refused),
	    T(deleted_client_keeps_the_practitioners_record),
	    T(authorisation_table),
	    T(export_holds_what_booking_knows),
	    T(endings_busy_and_privacy),
	    T(bad_input_changes_nothing),
	    T(undecodable_events_are_skipped),
	};
#undef T
	const char *ci = getenv("CI");
	int rc;

	if (secure_init() ||
	    log_init("test_handlers",
		     getenv("CRENEAU_TEST_LOG") ? "debug" : "err"))
		return 1;
	secure_random(key, sizeof(key));
	pg = getenv("CRENEAU_TEST_PG");
	if (!pg || !*pg) {
		pg = NULL;
		if (ci && strcmp(ci, "true") == 0) {
			fprintf(stderr, "test_handlers: CRENEAU_TEST_PG is not "
					"set; required when CI=true\n");
			return 1;
		}
		fprintf(stderr, "test_handlers: CRENEAU_TEST_PG is not set: "
				"the database tests are skipped\n");
	} else if (db_open(&admin, pg) || db_ensure(admin) ||
		   db_exec(admin, "CREATE EXTENSION IF NOT EXISTS btree_gist",
			   0, NULL, NULL)) {
		fprintf(stderr, "test_handlers: cannot use CRENEAU_TEST_PG\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	db_close(admin);
	return rc;
}
