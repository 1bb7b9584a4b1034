/* test_store.c - booking's store against a real PostgreSQL (CRENEAU_TEST_PG):
 * no double booking, ever. */
#include <pthread.h>
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
#include "db.h"
#include "instant.h"
#include "log.h"
#include "secure.h"
#include "store.h"

extern const struct db_migration booking_core_migrations[];
extern const size_t booking_core_migrations_count;

#define RACERS	     64
#define PRACTITIONER "11111111-1111-4111-8111-111111111111"
#define CLIENT	     "22222222-2222-4222-8222-222222222222"

static const char *pg;
static struct db *admin;
static char schema[64];
static char conninfo[1024];
static int schema_serial;

static struct db *db;	    /* the test's own connection */
static struct arena *arena; /* reset by each test */

static int64_t at(const char *text)
{
	int64_t ms = 0;

	if (instant_parse(text, &ms))
		fail_msg("bad instant %s", text);
	return ms;
}

static void exec_sql(struct db *d, const char *sql)
{
	assert_int_equal(db_exec(d, sql, 0, NULL, NULL), 0);
}

static long query_long(const char *sql)
{
	PGresult *r;
	long v;

	assert_int_equal(db_exec(db, sql, 0, NULL, &r), 0);
	assert_int_equal(PQntuples(r), 1);
	v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static struct db *open_db(void)
{
	struct db *d;

	assert_int_equal(db_open(&d, conninfo), 0);
	assert_int_equal(db_ensure(d), 0);
	return d;
}

/* A fresh schema, migrated, with a practitioner open 09:00-17:00 (Paris)
 * every day and a client whose e-mail is verified. */
static int setup(void **state)
{
	struct avail_weekly week[7];
	char sql[200];

	if (!pg)
		return 0;
	snprintf(schema, sizeof(schema), "test_booking_%ld_%d", (long)getpid(),
		 ++schema_serial);
	/* 64 racers on two cores, under ASan in CI, can queue behind one
	 * another for longer than the services' 30 s statement timeout */
	snprintf(conninfo, sizeof(conninfo),
		 "%s options='-c search_path=%s -c statement_timeout=120s'", pg,
		 schema);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
	exec_sql(admin, sql);
	db = open_db();
	assert_int_equal(db_migrate(db, schema, booking_core_migrations,
				    booking_core_migrations_count),
			 0);
	for (int i = 0; i < 7; i++)
		week[i] = (struct avail_weekly){i + 1, 9 * 60, 17 * 60};
	assert_int_equal(store_schedule_put(db, PRACTITIONER, "Europe/Paris", 0,
					    730, 15, 1440, week, 7),
			 0);
	assert_int_equal(store_account_upsert(db, CLIENT, "client",
					      "ana@example.org", "Ana",
					      "Martin", "+33600000000"),
			 0);
	assert_int_equal(store_account_set_verified(db, CLIENT, "client", NULL),
			 0);
	arena = arena_new(0);
	assert_non_null(arena);
	return 0;
}

static int teardown(void **state)
{
	char sql[200];

	if (!pg)
		return 0;
	arena_free(arena);
	db_close(db);
	snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
	exec_sql(admin, sql);
	return 0;
}

static Creneau__V1__Offering *make_offering(int duration, int before, int after)
{
	Creneau__V1__CreateOfferingRequest req =
	    CRENEAU__V1__CREATE_OFFERING_REQUEST__INIT;
	Creneau__V1__Offering *o = NULL;

	req.title = "Séance de sophrologie";
	req.description = "";
	req.duration_min = duration;
	req.price_cents = 6000;
	req.currency = "EUR";
	req.buffer_before_min = before;
	req.buffer_after_min = after;
	req.location = "office";
	req.idempotency_key = "";
	assert_int_equal(
	    store_offering_create(db, arena, PRACTITIONER, &req, &o), 0);
	return o;
}

static int book(struct db *d, struct arena *a, const char *client,
		const Creneau__V1__Offering *o, const char *start,
		const char *key, Creneau__V1__Booking **out)
{
	struct store_new_booking nb = {
	    .practitioner_id = PRACTITIONER,
	    .client_id = client,
	    .offering = o,
	    .start_ms = at(start),
	    .note = "first visit",
	    .idempotency_key = key,
	    .request_hash = "hash",
	};
	Creneau__V1__Booking *b = NULL;
	int rc = db_begin(d);

	if (rc)
		return rc;
	rc = store_booking_insert(d, a, &nb, &b);
	if (!rc)
		rc = db_commit(d);
	if (rc)
		db_rollback(d);
	if (out)
		*out = b;
	return rc;
}

/* The offered starts of o on [from, to) as the service computes them. */
static size_t slots(const Creneau__V1__Offering *o, const char *from,
		    const char *to, const char *exclude, int64_t **starts)
{
	struct store_avail in;
	struct avail_query q;
	size_t n;

	assert_int_equal(store_avail_load(db, arena, PRACTITIONER, NULL,
					  at(from), at(to), exclude, &in),
			 0);
	q = (struct avail_query){
	    .from_ms = at(from),
	    .to_ms = at(to),
	    .now_ms = at("2027-01-01T00:00:00Z"),
	    .min_notice_min = in.min_notice_min,
	    .horizon_days = in.horizon_days,
	    .step_min = in.slot_step_min,
	    .duration_min = o->duration_min,
	    .buffer_before_min = o->buffer_before_min,
	    .buffer_after_min = o->buffer_after_min,
	    .weekly = in.weekly,
	    .n_weekly = in.n_weekly,
	    .overrides = in.overrides,
	    .n_overrides = in.n_overrides,
	    .zone = in.zone,
	    .n_zone = in.n_zone,
	    .busy = in.busy,
	    .n_busy = in.n_busy,
	};
	assert_int_equal(avail_compute(&q, arena, starts, &n), 0);
	return n;
}

static bool has_start(const int64_t *v, size_t n, const char *start)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == at(start))
			return true;
	return false;
}

/* ---- tests ---- */

static void zone_spans_come_from_postgresql(void **state)
{
	struct avail_zone_span *z;
	size_t n;

	if (!pg)
		skip();
	assert_int_equal(store_zone_spans(db, arena, "Europe/Paris",
					  at("2027-01-01T00:00:00Z"),
					  at("2027-12-31T00:00:00Z"), &z, &n),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(z[0].offset_s, 3600);
	assert_int_equal(z[1].from_ms, at("2027-03-28T01:00:00Z"));
	assert_int_equal(z[1].offset_s, 7200);
	assert_int_equal(z[2].from_ms, at("2027-10-31T01:00:00Z"));
	assert_int_equal(z[2].offset_s, 3600);
	assert_int_equal(store_zone_spans(db, arena, "Australia/Sydney",
					  at("2027-01-01T00:00:00Z"),
					  at("2027-12-31T00:00:00Z"), &z, &n),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(z[1].from_ms, at("2027-04-03T16:00:00Z"));
	assert_int_equal(z[2].from_ms, at("2027-10-02T16:00:00Z"));
	assert_int_equal(store_zone_spans(db, arena, "Mars/Olympus_Mons",
					  at("2027-01-01T00:00:00Z"),
					  at("2027-02-01T00:00:00Z"), &z, &n),
			 ERR_INVALID);
}

struct racer {
	const Creneau__V1__Offering *offering;
	char client[40];
	int rc;
	pthread_barrier_t *go;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct arena *a = arena_new(0);
	struct db *d;

	if (db_open(&d, conninfo) || db_ensure(d)) {
		r->rc = ERR_UNAVAILABLE;
		pthread_barrier_wait(r->go);
		arena_free(a);
		return NULL;
	}
	pthread_barrier_wait(r->go);
	r->rc = book(d, a, r->client, r->offering, "2027-02-01T09:00:00Z", NULL,
		     NULL);
	db_close(d);
	arena_free(a);
	return NULL;
}

static void sixty_four_racers_one_winner(void **state)
{
	Creneau__V1__Offering *o;
	struct racer racers[RACERS];
	pthread_t threads[RACERS];
	pthread_barrier_t go;
	int won = 0, lost = 0;

	if (!pg)
		skip();
	o = make_offering(60, 0, 0);
	pthread_barrier_init(&go, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		racers[i] = (struct racer){.offering = o, .go = &go};
		snprintf(racers[i].client, sizeof(racers[i].client),
			 "33333333-3333-4333-8333-%012d", i);
		assert_int_equal(
		    pthread_create(&threads[i], NULL, race, &racers[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(threads[i], NULL);
		if (racers[i].rc == 0)
			won++;
		else if (racers[i].rc == ERR_CONFLICT)
			lost++;
		else
			fail_msg("racer %d: unexpected %s", i,
				 error_str(racers[i].rc));
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(won, 1);
	assert_int_equal(lost, RACERS - 1);
	assert_int_equal(query_long("SELECT count(*) FROM bookings WHERE "
				    "status = 'confirmed'"),
			 1);
}

static void buffers_block_their_neighbours(void **state)
{
	Creneau__V1__Offering *with_buffer, *plain;
	int64_t *v;
	size_t n;

	if (!pg)
		skip();
	with_buffer = make_offering(60, 0, 15);
	plain = make_offering(60, 0, 0);
	/* 10:00-11:00 +15 min after, Paris winter = 09:00Z-10:15Z */
	assert_int_equal(book(db, arena, CLIENT, with_buffer,
			      "2027-02-01T09:00:00Z", NULL, NULL),
			 0);
	assert_int_equal(
	    book(db, arena, CLIENT, plain, "2027-02-01T10:00:00Z", NULL, NULL),
	    ERR_CONFLICT);
	assert_int_equal(
	    book(db, arena, CLIENT, plain, "2027-02-01T08:00:00Z", NULL, NULL),
	    0);
	n = slots(plain, "2027-02-01T00:00:00Z", "2027-02-02T00:00:00Z", NULL,
		  &v);
	assert_false(has_start(v, n, "2027-02-01T10:00:00Z"));
	assert_true(has_start(v, n, "2027-02-01T10:15:00Z"));
	assert_false(has_start(v, n, "2027-02-01T08:00:00Z"));
	assert_int_equal(
	    book(db, arena, CLIENT, plain, "2027-02-01T10:15:00Z", NULL, NULL),
	    0);
}

static void cancelling_frees_the_slot(void **state)
{
	Creneau__V1__Offering *o;
	Creneau__V1__Booking *b, *again;
	struct store_booking_meta m;
	int64_t *v;
	size_t n;

	if (!pg)
		skip();
	o = make_offering(45, 0, 0);
	assert_int_equal(
	    book(db, arena, CLIENT, o, "2027-02-02T09:00:00Z", NULL, &b), 0);
	assert_string_equal(b->status, "confirmed");
	assert_string_equal(b->start, "2027-02-02T09:00:00Z");
	assert_string_equal(b->end, "2027-02-02T09:45:00Z");
	assert_string_equal(b->timezone, "Europe/Paris");
	n = slots(o, "2027-02-02T00:00:00Z", "2027-02-03T00:00:00Z", NULL, &v);
	assert_false(has_start(v, n, "2027-02-02T09:00:00Z"));
	assert_int_equal(store_booking_cancel(db, b->id, "client", "ill"), 0);
	assert_int_equal(store_booking_cancel(db, b->id, "client", "again"),
			 ERR_NOT_FOUND);
	assert_int_equal(store_booking_get(db, arena, b->id, false, &again, &m),
			 0);
	assert_string_equal(again->status, "cancelled");
	assert_string_equal(again->cancelled_by, "client");
	assert_string_equal(again->cancel_reason, "ill");
	assert_true(again->cancelled_at[0] != 0);
	n = slots(o, "2027-02-02T00:00:00Z", "2027-02-03T00:00:00Z", NULL, &v);
	assert_true(has_start(v, n, "2027-02-02T09:00:00Z"));
	assert_int_equal(
	    book(db, arena, CLIENT, o, "2027-02-02T09:00:00Z", NULL, NULL), 0);
}

static void moving_is_atomic(void **state)
{
	Creneau__V1__Offering *o;
	Creneau__V1__Booking *a, *b, *now;
	int64_t *v;
	size_t n;

	if (!pg)
		skip();
	o = make_offering(60, 0, 0);
	assert_int_equal(
	    book(db, arena, CLIENT, o, "2027-02-03T09:00:00Z", NULL, &a), 0);
	assert_int_equal(
	    book(db, arena, CLIENT, o, "2027-02-03T10:00:00Z", NULL, &b), 0);
	/* onto the other booking: refused, and the old slot is still held */
	assert_int_equal(store_booking_move(db, a->id,
					    at("2027-02-03T10:30:00Z"),
					    at("2027-02-03T11:30:00Z")),
			 ERR_CONFLICT);
	assert_int_equal(store_booking_get(db, arena, a->id, false, &now, NULL),
			 0);
	assert_string_equal(now->start, "2027-02-03T09:00:00Z");
	/* overlapping its own old range is fine: it is the same booking */
	assert_int_equal(store_booking_move(db, a->id,
					    at("2027-02-03T08:30:00Z"),
					    at("2027-02-03T09:30:00Z")),
			 0);
	n = slots(o, "2027-02-03T00:00:00Z", "2027-02-04T00:00:00Z", a->id, &v);
	assert_true(has_start(v, n, "2027-02-03T09:00:00Z"));
	assert_false(has_start(v, n, "2027-02-03T10:00:00Z"));
	assert_int_equal(store_booking_move(db, a->id,
					    at("2027-02-03T12:00:00Z"),
					    at("2027-02-03T13:00:00Z")),
			 0);
	n = slots(o, "2027-02-03T00:00:00Z", "2027-02-04T00:00:00Z", NULL, &v);
	assert_true(has_start(v, n, "2027-02-03T08:00:00Z"));
	assert_false(has_start(v, n, "2027-02-03T12:00:00Z"));
}

static void idempotency_key_finds_the_booking(void **state)
{
	Creneau__V1__Offering *o;
	Creneau__V1__Booking *b, *again;
	char *hash;

	if (!pg)
		skip();
	o = make_offering(30, 0, 0);
	assert_int_equal(
	    book(db, arena, CLIENT, o, "2027-02-04T09:00:00Z", "key-1", &b), 0);
	assert_int_equal(
	    store_booking_by_key(db, arena, CLIENT, "key-1", &again, &hash), 0);
	assert_string_equal(again->id, b->id);
	assert_string_equal(hash, "hash");
	/* the same key again cannot make a second booking */
	assert_int_equal(
	    book(db, arena, CLIENT, o, "2027-02-04T11:00:00Z", "key-1", NULL),
	    ERR_CONFLICT);
	assert_int_equal(
	    store_booking_by_key(db, arena, CLIENT, "key-2", &again, &hash),
	    ERR_NOT_FOUND);
}

static void client_file_copy_and_erasure(void **state)
{
	Creneau__V1__Offering *o;
	Creneau__V1__Booking *past, *next, *seen;
	Creneau__V1__ClientRecord **items;
	struct store_booking_meta m;
	size_t n;
	bool more;

	if (!pg)
		skip();
	o = make_offering(30, 0, 0);
	assert_int_equal(
	    book(db, arena, CLIENT, o, "2027-02-05T09:00:00Z", NULL, &past), 0);
	assert_int_equal(
	    book(db, arena, CLIENT, o, "2027-02-05T10:00:00Z", NULL, &next), 0);
	/* one record for two bookings: a copy of the account at that time */
	assert_int_equal(store_clients_list(db, arena, PRACTITIONER, 50, NULL,
					    &items, &n, &more),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(items[0]->first_name, "Ana");
	assert_string_equal(items[0]->email, "ana@example.org");
	assert_string_equal(items[0]->phone, "+33600000000");
	assert_string_equal(items[0]->account_id, CLIENT);
	assert_non_null(past->client);
	assert_string_equal(past->client->id, items[0]->id);
	/* bookings still to come (2027 is the future) keep it */
	assert_int_equal(store_client_delete(db, PRACTITIONER, items[0]->id),
			 ERR_RULE);
	exec_sql(db, "UPDATE bookings SET start_at = start_at - interval "
		     "'3 years', end_at = end_at - interval '3 years', "
		     "blocked = tstzrange(lower(blocked) - interval '3 years',"
		     " upper(blocked) - interval '3 years')");
	assert_int_equal(store_client_delete(db,
					     "44444444-4444-4444-8444-"
					     "444444444444",
					     items[0]->id),
			 ERR_NOT_FOUND);
	assert_int_equal(store_client_delete(db, PRACTITIONER, items[0]->id),
			 0);
	assert_int_equal(
	    store_booking_get(db, arena, past->id, false, &seen, &m), 0);
	assert_null(seen->client);
	assert_false(m.has_client_record);
	assert_string_equal(seen->note, "");
	assert_int_equal(query_long("SELECT count(*) FROM clients"), 0);
	/* a later booking makes a fresh copy */
	assert_int_equal(
	    book(db, arena, CLIENT, o, "2027-03-05T10:00:00Z", NULL, NULL), 0);
	assert_int_equal(query_long("SELECT count(*) FROM clients"), 1);
}

static void account_deletion_keeps_the_practitioners_record(void **state)
{
	Creneau__V1__Offering *o;
	Creneau__V1__Booking *b, *seen;
	unsigned erased, anonymised;

	if (!pg)
		skip();
	o = make_offering(30, 0, 0);
	assert_int_equal(
	    book(db, arena, CLIENT, o, "2027-02-06T09:00:00Z", NULL, &b), 0);
	assert_int_equal(store_forget_account(db, CLIENT, &erased, &anonymised),
			 0);
	assert_true(anonymised >= 2);
	assert_int_equal(
	    store_booking_get(db, arena, b->id, false, &seen, NULL), 0);
	assert_string_equal(seen->client_id, "");
	assert_non_null(seen->client);
	assert_string_equal(seen->client->first_name, "Ana");
	assert_int_equal(query_long("SELECT count(*) FROM clients WHERE "
				    "account_id IS NULL"),
			 1);
}

static void busy_intervals_replace_a_window(void **state)
{
	Creneau__V1__Offering *o;
	struct avail_interval first[] = {
	    {at("2027-02-08T08:00:00Z"), at("2027-02-08T09:00:00Z")},
	    {at("2027-02-09T08:00:00Z"), at("2027-02-09T09:00:00Z")},
	};
	struct avail_interval second[] = {
	    {at("2027-02-08T13:00:00Z"), at("2027-02-08T14:00:00Z")},
	};
	int64_t *v;
	size_t n;

	if (!pg)
		skip();
	o = make_offering(60, 0, 0);
	assert_int_equal(store_busy_replace(db, PRACTITIONER, "google",
					    at("2027-02-01T00:00:00Z"),
					    at("2027-03-01T00:00:00Z"), first,
					    2),
			 0);
	n = slots(o, "2027-02-08T00:00:00Z", "2027-02-10T00:00:00Z", NULL, &v);
	assert_false(has_start(v, n, "2027-02-08T08:00:00Z"));
	assert_false(has_start(v, n, "2027-02-09T08:00:00Z"));
	assert_true(has_start(v, n, "2027-02-08T13:00:00Z"));
	/* only 8 February is replaced */
	assert_int_equal(store_busy_replace(db, PRACTITIONER, "google",
					    at("2027-02-08T00:00:00Z"),
					    at("2027-02-09T00:00:00Z"), second,
					    1),
			 0);
	n = slots(o, "2027-02-08T00:00:00Z", "2027-02-10T00:00:00Z", NULL, &v);
	assert_true(has_start(v, n, "2027-02-08T08:00:00Z"));
	assert_false(has_start(v, n, "2027-02-09T08:00:00Z"));
	assert_false(has_start(v, n, "2027-02-08T13:00:00Z"));
	assert_int_equal(query_long("SELECT count(*) FROM busy_intervals"), 2);
}

static void overrides_and_schedule_round_trip(void **state)
{
	Creneau__V1__Offering *o;
	Creneau__V1__Schedule *s;
	Creneau__V1__ScheduleOverride *ov, **items;
	int starts[] = {14 * 60}, ends[] = {15 * 60};
	int64_t *v;
	size_t n;

	if (!pg)
		skip();
	o = make_offering(60, 0, 0);
	assert_int_equal(store_schedule_get(db, arena, PRACTITIONER, &s), 0);
	assert_string_equal(s->timezone, "Europe/Paris");
	assert_int_equal(s->n_weekly, 7);
	assert_string_equal(s->weekly[0]->start, "09:00");
	assert_string_equal(s->weekly[0]->end, "17:00");
	assert_int_equal(store_override_put(db, arena, PRACTITIONER,
					    "2027-02-10", false, starts, ends,
					    1, &ov),
			 0);
	assert_string_equal(ov->date, "2027-02-10");
	assert_int_equal(ov->n_intervals, 1);
	assert_string_equal(ov->intervals[0]->start, "14:00");
	assert_int_equal(store_override_put(db, arena, PRACTITIONER,
					    "2027-02-11", true, NULL, NULL, 0,
					    &ov),
			 0);
	n = slots(o, "2027-02-10T00:00:00Z", "2027-02-12T00:00:00Z", NULL, &v);
	assert_int_equal(n, 1);
	assert_int_equal(v[0], at("2027-02-10T13:00:00Z"));
	assert_int_equal(store_overrides_list(db, arena, PRACTITIONER, NULL,
					      NULL, &items, &n),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_override_delete(db, PRACTITIONER, ov->id), 0);
	assert_int_equal(store_override_delete(db, PRACTITIONER, ov->id),
			 ERR_NOT_FOUND);
	n = slots(o, "2027-02-11T00:00:00Z", "2027-02-12T00:00:00Z", NULL, &v);
	assert_int_equal(n, 29); /* 09:00 .. 16:00 by 15 minutes */
}

static void offerings_retire_when_booked(void **state)
{
	Creneau__V1__Offering *used, *unused, **items;
	bool retired;
	size_t n;

	if (!pg)
		skip();
	used = make_offering(30, 0, 0);
	unused = make_offering(30, 0, 0);
	assert_int_equal(
	    book(db, arena, CLIENT, used, "2027-02-12T09:00:00Z", NULL, NULL),
	    0);
	assert_int_equal(
	    store_offering_delete(db, PRACTITIONER, used->id, &retired), 0);
	assert_true(retired);
	assert_int_equal(
	    store_offering_delete(db, PRACTITIONER, unused->id, &retired), 0);
	assert_false(retired);
	assert_int_equal(
	    store_offerings_list(db, arena, PRACTITIONER, false, &items, &n),
	    0);
	assert_int_equal(n, 0);
	assert_int_equal(query_long("SELECT count(*) FROM offerings"), 1);
}

static void prepared_statements_recover(void **state)
{
	Creneau__V1__Offering *o;
	int64_t *v;
	size_t first, n;

	if (!pg)
		skip();
	o = make_offering(60, 0, 0);
	first =
	    slots(o, "2027-02-15T00:00:00Z", "2027-02-16T00:00:00Z", NULL, &v);
	assert_true(first > 0);
	/* the session forgets its prepared statements (as after a
	 * pgbouncer switch): the next calls still answer, then re-prepare */
	exec_sql(db, "DEALLOCATE ALL");
	for (int i = 0; i < 3; i++) {
		n = slots(o, "2027-02-15T00:00:00Z", "2027-02-16T00:00:00Z",
			  NULL, &v);
		assert_int_equal(n, first);
	}
	/* inside a transaction the plain path is taken */
	assert_int_equal(db_begin(db), 0);
	n = slots(o, "2027-02-15T00:00:00Z", "2027-02-16T00:00:00Z", NULL, &v);
	assert_int_equal(n, first);
	db_rollback(db);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(zone_spans_come_from_postgresql),
	    T(sixty_four_racers_one_winner),
	    T(buffers_block_their_neighbours),
	    T(cancelling_frees_the_slot),
	    T(moving_is_atomic),
	    T(idempotency_key_finds_the_booking),
	    T(client_file_copy_and_erasure),
	    T(account_deletion_keeps_the_practitioners_record),
	    T(busy_intervals_replace_a_window),
	    T(overrides_and_schedule_round_trip),
	    T(offerings_retire_when_booked),
	    T(prepared_statements_recover),
	};
#undef T
	const char *ci = getenv("CI");
	int rc;

	if (log_init("test_store",
		     getenv("CRENEAU_TEST_LOG") ? "debug" : "err"))
		return 1;
	pg = getenv("CRENEAU_TEST_PG");
	if (!pg || !*pg) {
		pg = NULL;
		if (ci && strcmp(ci, "true") == 0) {
			fprintf(stderr, "test_store: CRENEAU_TEST_PG is not "
					"set; required when CI=true\n");
			return 1;
		}
		fprintf(stderr, "test_store: CRENEAU_TEST_PG is not set: the "
				"database tests are skipped\n");
	} else if (db_open(&admin, pg) || db_ensure(admin) ||
		   db_exec(admin, "CREATE EXTENSION IF NOT EXISTS btree_gist",
			   0, NULL, NULL)) {
		fprintf(stderr, "test_store: cannot use CRENEAU_TEST_PG\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	db_close(admin);
	return rc;
}
