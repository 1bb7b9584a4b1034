/* handlers.c - the booking service's requests: decode, validate, execute,
 * encode (SQL lives in store.c). */
#include "handlers.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "availability.h"
#include "creneau/v1/accounts.pb-c.h"
#include "creneau/v1/service.pb-c.h"
#include "db.h"
#include "instant.h"
#include "log.h"
#include "store.h"

#define DEFAULT_WINDOW_DAYS 7
#define DEFAULT_LIST_LIMIT  50
#define MAX_LIST_LIMIT	    200
#define MAX_WEEKLY	    70
#define MAX_BUSY	    20000
/* the longest horizon a schedule may have (730 days), and a day more */
#define MAX_HORIZON_MS (731 * AVAIL_DAY_MS)

/* ---- small helpers ---- */

static struct arena *arena_of(struct rpc_call *call)
{
	return rpc_call_arena(call);
}

static const char *who(struct rpc_call *call)
{
	const Creneau__V1__Principal *p = rpc_call_principal(call);

	return p && p->account_id && *p->account_id ? p->account_id : NULL;
}

static Creneau__V1__Role role_of(struct rpc_call *call)
{
	const Creneau__V1__Principal *p = rpc_call_principal(call);

	return p ? p->role : CRENEAU__V1__ROLE__ROLE_NONE;
}

/* The principal must be signed in with role; its account id, or NULL
 * after failing the call. */
static const char *require(struct rpc_call *call, Creneau__V1__Role role,
			   int *rc)
{
	const char *id = who(call);

	if (!id || !store_is_uuid(id)) {
		*rc = rpc_call_fail(call, ERR_UNAUTHENTICATED, NULL, NULL,
				    "sign in first");
		return NULL;
	}
	if (role_of(call) != role) {
		*rc = rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				    "not allowed for this account");
		return NULL;
	}
	return id;
}

static bool is_service(struct rpc_call *call)
{
	Creneau__V1__Role r = role_of(call);

	return r == CRENEAU__V1__ROLE__ROLE_SERVICE ||
	       r == CRENEAU__V1__ROLE__ROLE_ADMIN;
}

static int bad(struct rpc_call *call, const char *field, const char *msg)
{
	return rpc_call_fail(call, ERR_INVALID, "invalid", field, "%s", msg);
}

static int not_found(struct rpc_call *call, const char *what)
{
	return rpc_call_fail(call, ERR_NOT_FOUND, NULL, NULL, "no such %s",
			     what);
}

/* require() for a practitioner acting on one of its own things by id: an
 * id that is not a uuid cannot name anything, so it fails as "no such
 * what" before any lookup, the same answer a missing row gets. */
static const char *require_own(struct rpc_call *call, const char *id,
			       const char *what, int *rc)
{
	const char *me =
	    require(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, rc);

	if (me && !store_is_uuid(id)) {
		*rc = not_found(call, what);
		return NULL;
	}
	return me;
}

/* Length of the well-formed UTF-8 sequence at s (shortest form, no
 * surrogates, at most U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

enum text_fault { TEXT_OK, TEXT_LENGTH, TEXT_ENCODING, TEXT_CONTROL };

/*
 * Whether s is min to max characters of valid UTF-8 without control
 * characters (C0, DEL, C1); multiline text may hold \n, \r and \t (the
 * rule of accounts' validate_text). NULL counts as "".
 */
static enum text_fault text_check(const char *s, size_t min, size_t max,
				  bool multiline)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = 0;

	if (strlen((const char *)p) > max * 4)
		return TEXT_LENGTH;
	while (*p) {
		size_t len = utf8_seq(p);

		if (!len)
			return TEXT_ENCODING;
		if (len == 1 && (*p < 0x20 || *p == 0x7f) &&
		    !(multiline && (*p == '\n' || *p == '\r' || *p == '\t')))
			return TEXT_CONTROL;
		if (len == 2 && p[0] == 0xc2 && p[1] < 0xa0) /* U+0080-9F */
			return TEXT_CONTROL;
		p += len;
		n++;
	}
	return n >= min && n <= max ? TEXT_OK : TEXT_LENGTH;
}

/* 0, or 400 naming field: length says what length it must have. */
static int check_text(struct rpc_call *call, const char *field, const char *s,
		      size_t min, size_t max, bool multiline,
		      const char *length)
{
	switch (text_check(s, min, max, multiline)) {
	case TEXT_OK:
		return 0;
	case TEXT_ENCODING:
		return bad(call, field, "must be valid UTF-8");
	case TEXT_CONTROL:
		return bad(call, field,
			   multiline ? "must not contain control characters "
				       "other than line breaks and tabs"
				     : "must not contain control characters "
				       "or line breaks");
	default:
		return bad(call, field, length);
	}
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static bool is_location(const char *s)
{
	return s && (!strcmp(s, "office") || !strcmp(s, "home") ||
		     !strcmp(s, "video"));
}

static bool is_currency(const char *s)
{
	if (!s || strlen(s) != 3)
		return false;
	for (int i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return true;
}

static void *alloc(struct rpc_call *call, size_t n)
{
	return arena_alloc(arena_of(call), n);
}

/* A store error as the call's answer: NOT_FOUND names what. */
static int store_failed(struct rpc_call *call, int rc, const char *what)
{
	if (rc == ERR_NOT_FOUND)
		return not_found(call, what);
	return rc;
}

static int64_t parse_instant_or(struct rpc_call *call, const char *text,
				int64_t dflt, const char *field, int *rc)
{
	int64_t ms;

	if (!text || !*text)
		return dflt;
	if (instant_parse(text, &ms)) {
		*rc = bad(call, field, "must be an RFC 3339 date-time");
		return 0;
	}
	return ms;
}

/* ---- events ---- */

/* Ends the transaction the caller began on db: commits when its work went
 * well (rc 0), and rolls back when it did not or when the commit fails;
 * the first failure, or 0. */
static int commit_or_rollback(struct db *db, int rc)
{
	if (!rc)
		rc = db_commit(db);
	if (rc)
		db_rollback(db);
	return rc;
}

static int publish(struct db *db, const char *topic,
		   const Creneau__V1__Booking *b, int64_t prev_start,
		   int64_t prev_end)
{
	Creneau__V1__BookingEvent ev = CRENEAU__V1__BOOKING_EVENT__INIT;
	int64_t start = 0, end = 0;

	if (instant_parse(b->start, &start) || instant_parse(b->end, &end))
		return ERR_INTERNAL;
	ev.booking_id = b->id;
	ev.practitioner_id = b->practitioner_id;
	ev.client_id = b->client_id;
	ev.offering_id = b->offering_id;
	ev.offering_title = b->offering_title;
	ev.duration_min = b->duration_min;
	ev.location = b->location;
	ev.status = b->status;
	ev.start_ms = start;
	ev.end_ms = end;
	ev.previous_start_ms = prev_start;
	ev.previous_end_ms = prev_end;
	ev.cancelled_by = b->cancelled_by;
	ev.reason = b->cancel_reason;
	ev.timezone = b->timezone;
	ev.price_cents = b->price_cents;
	ev.currency = b->currency;
	return events_publish(db, topic, &ev.base);
}

/* ---- views ---- */

/* What one party may see of a booking. */
static void view_for(Creneau__V1__Booking *b, bool practitioner,
		     const struct store_booking_meta *meta)
{
	if (!practitioner) {
		b->client = NULL;
		return;
	}
	/* erased from the practitioner's client file: no identity left */
	if ((meta && !meta->has_client_record) || !b->client)
		b->client_id = "";
}

/* ---- offerings ---- */

static int check_offering_fields(struct rpc_call *call, const char *title,
				 const char *description, int duration,
				 int64_t price, const char *currency, int bb,
				 int ba, const char *location)
{
	int rc = 0;

	if (title)
		rc = check_text(call, "title", title, 1, 200, false,
				"must have 1 to 200 characters");
	if (!rc && description)
		rc = check_text(call, "description", description, 0, 4000, true,
				"at most 4000 characters");
	if (rc)
		return rc;
	if (duration >= 0 && (duration < 5 || duration > 480))
		return bad(call, "duration_min", "must be 5 to 480 minutes");
	if (price >= -1 && (price < 0 || price > 100000000))
		return bad(call, "price_cents", "must be 0 to 100000000");
	if (currency && !is_currency(currency))
		return bad(call, "currency", "must be an ISO 4217 code (EUR)");
	if (bb >= -1 && (bb < 0 || bb > 240))
		return bad(call, "buffer_before_min", "must be 0 to 240");
	if (ba >= -1 && (ba < 0 || ba > 240))
		return bad(call, "buffer_after_min", "must be 0 to 240");
	if (location && !is_location(location))
		return bad(call, "location", "must be office, home or video");
	return 0;
}

static int reply_offerings(struct rpc_call *call, Creneau__V1__Offering **items,
			   size_t n, ProtobufCMessage **reply_out)
{
	Creneau__V1__ListOfferingsReply *r = alloc(call, sizeof(*r));

	if (!r)
		return ERR_NOMEM;
	creneau__v1__list_offerings_reply__init(r);
	r->items = items;
	r->n_items = n;
	r->next_cursor = "";
	*reply_out = &r->base;
	return 0;
}

static int handle_list_my_offerings(struct rpc_call *call,
				    const ProtobufCMessage *request,
				    ProtobufCMessage **reply_out)
{
	Creneau__V1__Offering **items;
	const char *me;
	size_t n;
	int rc = 0;

	me = require(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &rc);
	if (!me)
		return rc;
	rc = store_offerings_list(rpc_call_db(call), arena_of(call), me, false,
				  &items, &n);
	if (rc)
		return rc;
	return reply_offerings(call, items, n, reply_out);
}

static int handle_list_practitioner_offerings(struct rpc_call *call,
					      const ProtobufCMessage *request,
					      ProtobufCMessage **reply_out)
{
	const Creneau__V1__ListPractitionerOfferingsRequest *req =
	    (const void *)request;
	Creneau__V1__Offering **items;
	size_t n;
	int rc;

	if (!store_is_uuid(req->id))
		return not_found(call, "practitioner");
	rc = store_offerings_list(rpc_call_db(call), arena_of(call), req->id,
				  true, &items, &n);
	if (rc)
		return rc;
	return reply_offerings(call, items, n, reply_out);
}

static int handle_create_offering(struct rpc_call *call,
				  const ProtobufCMessage *request,
				  ProtobufCMessage **reply_out)
{
	Creneau__V1__CreateOfferingRequest req =
	    *(const Creneau__V1__CreateOfferingRequest *)request;
	Creneau__V1__Offering *o;
	const char *me;
	int rc = 0;

	me = require(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &rc);
	if (!me)
		return rc;
	if (!req.currency || !*req.currency)
		req.currency = "EUR";
	rc = check_offering_fields(
	    call, str_or_empty(req.title), str_or_empty(req.description),
	    req.duration_min, req.price_cents, req.currency,
	    req.buffer_before_min, req.buffer_after_min,
	    str_or_empty(req.location));
	if (rc)
		return rc;
	if (req.idempotency_key && strlen(req.idempotency_key) > 200)
		return bad(call, "idempotency_key", "at most 200 characters");
	req.description = (char *)str_or_empty(req.description);
	rc = store_offering_create(rpc_call_db(call), arena_of(call), me, &req,
				   &o);
	if (rc)
		return rc;
	*reply_out = &o->base;
	return 0;
}

static int handle_update_offering(struct rpc_call *call,
				  const ProtobufCMessage *request,
				  ProtobufCMessage **reply_out)
{
	const Creneau__V1__UpdateOfferingRequest *q = (const void *)request;
	Creneau__V1__Offering *o;
	const char *me;
	int rc = 0;

	me = require_own(call, q->id, "offering", &rc);
	if (!me)
		return rc;
	rc = check_offering_fields(
	    call, q->title_present_case ? str_or_empty(q->title) : NULL,
	    q->description_present_case ? str_or_empty(q->description) : NULL,
	    q->duration_min_present_case ? q->duration_min : -1,
	    q->price_cents_present_case ? q->price_cents : -2,
	    q->currency_present_case ? str_or_empty(q->currency) : NULL,
	    q->buffer_before_min_present_case ? q->buffer_before_min : -2,
	    q->buffer_after_min_present_case ? q->buffer_after_min : -2,
	    q->location_present_case ? str_or_empty(q->location) : NULL);
	if (rc)
		return rc;
	rc =
	    store_offering_update(rpc_call_db(call), arena_of(call), me, q, &o);
	if (rc)
		return store_failed(call, rc, "offering");
	*reply_out = &o->base;
	return 0;
}

static int handle_delete_offering(struct rpc_call *call,
				  const ProtobufCMessage *request,
				  ProtobufCMessage **reply_out)
{
	const Creneau__V1__DeleteOfferingRequest *q = (const void *)request;
	Creneau__V1__DeleteOfferingReply *r;
	const char *me;
	bool retired;
	int rc = 0;

	me = require_own(call, q->id, "offering", &rc);
	if (!me)
		return rc;
	rc = store_offering_delete(rpc_call_db(call), me, q->id, &retired);
	if (rc)
		return store_failed(call, rc, "offering");
	r = alloc(call, sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	creneau__v1__delete_offering_reply__init(r);
	r->retired = retired;
	*reply_out = &r->base;
	return 0;
}

/* ---- schedule ---- */

static int handle_get_schedule(struct rpc_call *call,
			       const ProtobufCMessage *request,
			       ProtobufCMessage **reply_out)
{
	Creneau__V1__Schedule *s;
	const char *me;
	int rc = 0;

	me = require(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &rc);
	if (!me)
		return rc;
	rc = store_schedule_get(rpc_call_db(call), arena_of(call), me, &s);
	if (rc)
		return rc;
	*reply_out = &s->base;
	return 0;
}

static int int_or(bool present, int value, int dflt)
{
	return present ? value : dflt;
}

/* Weekly hours as minutes, checked: no overlap within a weekday. */
static int parse_weekly(struct rpc_call *call, const Creneau__V1__Schedule *s,
			struct avail_weekly *w)
{
	char field[32];

	if (s->n_weekly > MAX_WEEKLY)
		return bad(call, "weekly", "too many intervals");
	for (size_t i = 0; i < s->n_weekly; i++) {
		const Creneau__V1__WeeklyInterval *in = s->weekly[i];

		snprintf(field, sizeof(field), "weekly[%zu]", i);
		if (in->weekday < 1 || in->weekday > 7)
			return bad(call, field, "weekday must be 1 to 7");
		w[i].weekday = in->weekday;
		if (avail_parse_hhmm(in->start, &w[i].start_min) ||
		    avail_parse_hhmm(in->end, &w[i].end_min) ||
		    w[i].start_min >= w[i].end_min)
			return bad(call, field,
				   "start and end must be HH:MM with start "
				   "before end");
		for (size_t k = 0; k < i; k++)
			if (w[k].weekday == w[i].weekday &&
			    w[k].start_min < w[i].end_min &&
			    w[i].start_min < w[k].end_min)
				return bad(call, field,
					   "overlaps another interval");
	}
	return 0;
}

static int handle_put_schedule(struct rpc_call *call,
			       const ProtobufCMessage *request,
			       ProtobufCMessage **reply_out)
{
	const Creneau__V1__Schedule *s = (const void *)request;
	struct db *db = rpc_call_db(call);
	struct avail_weekly *w;
	const char *me, *tz;
	int notice, horizon, step, deadline, rc = 0;
	bool known = false;
	Creneau__V1__Schedule *out;

	me = require(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &rc);
	if (!me)
		return rc;
	tz = s->timezone && *s->timezone ? s->timezone : "Europe/Paris";
	notice = int_or(s->min_notice_min_present_case, s->min_notice_min, 120);
	horizon = int_or(s->horizon_days_present_case, s->horizon_days, 90);
	step = int_or(s->slot_step_min_present_case, s->slot_step_min, 15);
	deadline = int_or(s->cancel_deadline_min_present_case,
			  s->cancel_deadline_min, 1440);
	if (notice < 0 || notice > 43200)
		return bad(call, "min_notice_min", "must be 0 to 43200");
	if (horizon < 1 || horizon > 730)
		return bad(call, "horizon_days", "must be 1 to 730");
	if (step < 5 || step > 240)
		return bad(call, "slot_step_min", "must be 5 to 240");
	if (deadline < 0 || deadline > 43200)
		return bad(call, "cancel_deadline_min", "must be 0 to 43200");
	w = alloc(call, (s->n_weekly + 1) * sizeof(*w));
	if (!w)
		return ERR_NOMEM;
	rc = parse_weekly(call, s, w);
	if (rc)
		return rc;
	if (strlen(tz) > 60)
		return bad(call, "timezone", "unknown IANA time zone");
	rc = store_timezone_is_known(db, tz, &known);
	if (rc)
		return rc;
	if (!known)
		return bad(call, "timezone", "unknown IANA time zone");
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_schedule_put(db, me, tz, notice, horizon, step, deadline, w,
				s->n_weekly);
	rc = commit_or_rollback(db, rc);
	if (rc)
		return rc;
	rc = store_schedule_get(db, arena_of(call), me, &out);
	if (rc)
		return rc;
	*reply_out = &out->base;
	return 0;
}

static int handle_list_overrides(struct rpc_call *call,
				 const ProtobufCMessage *request,
				 ProtobufCMessage **reply_out)
{
	const Creneau__V1__ListOverridesRequest *q = (const void *)request;
	Creneau__V1__ListOverridesReply *r;
	const char *me, *from = NULL, *to = NULL;
	int32_t day;
	int rc = 0;

	me = require(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &rc);
	if (!me)
		return rc;
	if (q->from && *q->from) {
		if (avail_parse_date(q->from, &day))
			return bad(call, "from", "must be a date YYYY-MM-DD");
		from = q->from;
	}
	if (q->to && *q->to) {
		if (avail_parse_date(q->to, &day))
			return bad(call, "to", "must be a date YYYY-MM-DD");
		to = q->to;
	}
	r = alloc(call, sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	creneau__v1__list_overrides_reply__init(r);
	r->next_cursor = "";
	rc = store_overrides_list(rpc_call_db(call), arena_of(call), me, from,
				  to, &r->items, &r->n_items);
	if (rc)
		return rc;
	*reply_out = &r->base;
	return 0;
}

static int handle_create_override(struct rpc_call *call,
				  const ProtobufCMessage *request,
				  ProtobufCMessage **reply_out)
{
	const Creneau__V1__CreateOverrideRequest *q = (const void *)request;
	Creneau__V1__ScheduleOverride *o;
	int starts[24], ends[24];
	char field[32];
	const char *me;
	int32_t day;
	int rc = 0;

	me = require(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &rc);
	if (!me)
		return rc;
	if (avail_parse_date(q->date, &day))
		return bad(call, "date", "must be a date YYYY-MM-DD");
	if (q->closed && q->n_intervals)
		return bad(call, "intervals", "a closed day has no intervals");
	if (!q->closed && !q->n_intervals)
		return bad(call, "intervals",
			   "give intervals, or closed: true");
	if (q->n_intervals > 24)
		return bad(call, "intervals", "at most 24 intervals");
	for (size_t i = 0; i < q->n_intervals; i++) {
		snprintf(field, sizeof(field), "intervals[%zu]", i);
		if (avail_parse_hhmm(q->intervals[i]->start, &starts[i]) ||
		    avail_parse_hhmm(q->intervals[i]->end, &ends[i]) ||
		    starts[i] >= ends[i])
			return bad(call, field,
				   "start and end must be HH:MM with start "
				   "before end");
		for (size_t k = 0; k < i; k++)
			if (starts[k] < ends[i] && starts[i] < ends[k])
				return bad(call, field,
					   "overlaps another interval");
	}
	rc = store_override_put(rpc_call_db(call), arena_of(call), me, q->date,
				q->closed, starts, ends, q->n_intervals, &o);
	if (rc)
		return rc;
	*reply_out = &o->base;
	return 0;
}

static int reply_empty(struct rpc_call *call, ProtobufCMessage **reply_out)
{
	Creneau__V1__BookingEmpty *e = alloc(call, sizeof(*e));

	if (!e)
		return ERR_NOMEM;
	creneau__v1__booking_empty__init(e);
	*reply_out = &e->base;
	return 0;
}

static int handle_delete_override(struct rpc_call *call,
				  const ProtobufCMessage *request,
				  ProtobufCMessage **reply_out)
{
	const Creneau__V1__DeleteOverrideRequest *q = (const void *)request;
	const char *me;
	int rc = 0;

	me = require_own(call, q->id, "override", &rc);
	if (!me)
		return rc;
	rc = store_override_delete(rpc_call_db(call), me, q->id);
	if (rc)
		return store_failed(call, rc, "override");
	return reply_empty(call, reply_out);
}

/* ---- availability ---- */

static void fill_query(struct avail_query *q, const struct store_avail *in,
		       int duration, int bb, int ba)
{
	*q = (struct avail_query){
	    .now_ms = instant_now_ms(),
	    .min_notice_min = in->min_notice_min,
	    .horizon_days = in->horizon_days,
	    .step_min = in->slot_step_min,
	    .duration_min = duration,
	    .buffer_before_min = bb,
	    .buffer_after_min = ba,
	    .weekly = in->weekly,
	    .n_weekly = in->n_weekly,
	    .overrides = in->overrides,
	    .n_overrides = in->n_overrides,
	    .zone = in->zone,
	    .n_zone = in->n_zone,
	    .busy = in->busy,
	    .n_busy = in->n_busy,
	};
}

/* Whether the practitioner takes new bookings: known to booking as a
 * practitioner, e-mail verified, and neither suspended nor lapsed. */
static int practitioner_bookable(struct db *db, const char *id, bool *out)
{
	struct store_account acc;
	int rc = store_account_get(db, id, &acc);

	*out = !rc && acc.exists && !strcmp(acc.role, "practitioner") &&
	       acc.email_verified && !acc.suspended;
	return rc;
}

/*
 * No slot starts in the past or beyond the longest horizon: the data
 * loaded (and the zone offsets computed) cover only the part of [from, to)
 * where one could, so a window in the year 9999 costs nothing.
 */
static void clamp_window(const int64_t *from, const int64_t *to,
			 int64_t *load_from, int64_t *load_to)
{
	int64_t now = instant_now_ms();
	int64_t lo = now - AVAIL_DAY_MS, hi = now + MAX_HORIZON_MS;

	*load_from = *from > lo ? *from : lo;
	*load_to = *to < hi ? *to : hi;
	if (*load_to <= *load_from) {
		*load_from = now;
		*load_to = now + 1;
	}
}

static int handle_get_availability(struct rpc_call *call,
				   const ProtobufCMessage *request,
				   ProtobufCMessage **reply_out)
{
	const Creneau__V1__GetAvailabilityRequest *q = (const void *)request;
	struct arena *a = arena_of(call);
	Creneau__V1__Availability *r;
	struct store_avail in;
	struct avail_query aq;
	int64_t from, to, load_from, load_to, *starts = NULL;
	size_t n = 0;
	int rc = 0;

	if (!store_is_uuid(q->id))
		return not_found(call, "practitioner");
	if (!store_is_uuid(q->offering))
		return bad(call, "offering", "must be an offering id");
	from = parse_instant_or(call, q->from, instant_now_ms(), "from", &rc);
	if (rc)
		return rc;
	to = parse_instant_or(
	    call, q->to, from + DEFAULT_WINDOW_DAYS * AVAIL_DAY_MS, "to", &rc);
	if (rc)
		return rc;
	if (to <= from)
		return bad(call, "to", "must be after from");
	if (to - from > AVAIL_MAX_WINDOW_DAYS * AVAIL_DAY_MS)
		return bad(call, "to", "at most 62 days after from");
	clamp_window(&from, &to, &load_from, &load_to);
	rc = store_avail_load(rpc_call_db(call), a, q->id, q->offering,
			      load_from, load_to, NULL, &in);
	if (rc)
		return rc;
	if (!in.offering_found || !in.offering_active)
		return not_found(call, "offering");
	r = alloc(call, sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	creneau__v1__availability__init(r);
	r->timezone = in.timezone;
	fill_query(&aq, &in, in.duration_min, in.buffer_before_min,
		   in.buffer_after_min);
	aq.from_ms = from;
	aq.to_ms = to;
	/* an unverified, suspended or lapsed practitioner offers nothing */
	if (!in.practitioner_unbookable) {
		rc = avail_compute(&aq, a, &starts, &n);
		if (rc)
			return rc;
	}
	r->slots = alloc(call, (n + 1) * sizeof(*r->slots));
	if (!r->slots)
		return ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		Creneau__V1__Slot *s = alloc(call, sizeof(*s));
		char text[INSTANT_TEXT];

		if (!s)
			return ERR_NOMEM;
		creneau__v1__slot__init(s);
		instant_format(starts[i], text);
		s->start = arena_strdup(a, text);
		instant_format(starts[i] + in.duration_min * AVAIL_MINUTE_MS,
			       text);
		s->end = arena_strdup(a, text);
		if (!s->start || !s->end)
			return ERR_NOMEM;
		r->slots[r->n_slots++] = s;
	}
	*reply_out = &r->base;
	return 0;
}

/*
 * Whether start is an offered slot: 0 when it is; 409 slot_taken when only
 * a booking or busy interval stands in the way; 422 slot_not_offered when
 * the hours, notice, horizon or step grid refuse it.
 */
static int check_offered(struct rpc_call *call, struct db *db,
			 const char *practitioner_id, int64_t start,
			 int duration, int bb, int ba, const char *exclude)
{
	struct store_avail in;
	struct avail_query aq;
	int64_t now = instant_now_ms();
	bool offered = false;
	int rc;

	if (start < now - AVAIL_DAY_MS || start > now + MAX_HORIZON_MS)
		return rpc_call_fail(call, ERR_RULE, "slot_not_offered",
				     "start",
				     "this start is not an offered slot");
	rc = store_avail_load(db, arena_of(call), practitioner_id, NULL, start,
			      start + 1, exclude, &in);
	if (rc)
		return rc;
	fill_query(&aq, &in, duration, bb, ba);
	rc = avail_is_offered(&aq, start, arena_of(call), &offered);
	if (rc || offered)
		return rc;
	aq.n_busy = 0;
	rc = avail_is_offered(&aq, start, arena_of(call), &offered);
	if (rc)
		return rc;
	if (offered)
		return rpc_call_fail(call, ERR_CONFLICT, "slot_taken", "start",
				     "this slot is no longer free");
	return rpc_call_fail(call, ERR_RULE, "slot_not_offered", "start",
			     "this start is not an offered slot");
}

/* ---- bookings ---- */

static char *request_hash(struct arena *a,
			  const Creneau__V1__CreateBookingRequest *q,
			  int64_t start)
{
	unsigned char h[16];
	char hex[33];
	char *text = arena_printf(a, "%s\n%s\n%lld\n%s", q->practitioner_id,
				  q->offering_id, (long long)start,
				  str_or_empty(q->note));

	if (!text)
		return NULL;
	crypto_generichash(h, sizeof(h), (const unsigned char *)text,
			   strlen(text), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	return arena_strdup(a, hex);
}

/* The answer to a repeated Idempotency-Key: the same booking, or 422. */
static int replay(struct rpc_call *call, const char *me, const char *key,
		  const char *hash, ProtobufCMessage **reply_out, bool *found)
{
	Creneau__V1__Booking *b;
	char *old_hash = NULL;
	int rc;

	*found = false;
	rc = store_booking_by_key(rpc_call_db(call), arena_of(call), me, key,
				  &b, &old_hash);
	if (rc == ERR_NOT_FOUND)
		return 0;
	if (rc)
		return rc;
	*found = true;
	if (strcmp(old_hash, hash) != 0)
		return rpc_call_fail(call, ERR_RULE, "idempotency_key_reused",
				     "Idempotency-Key",
				     "this key was used with another request");
	view_for(b, false, NULL);
	*reply_out = &b->base;
	return 0;
}

/* 0 when the client me (known, e-mail verified) may book with
 * practitioner_id (practitioner_bookable); else 422. */
static int check_client(struct rpc_call *call, struct db *db, const char *me,
			const char *practitioner_id)
{
	struct store_account acc;
	bool bookable;
	int rc;

	rc = store_account_get(db, me, &acc);
	if (rc)
		return rc;
	if (!acc.exists || !acc.email_verified)
		return rpc_call_fail(call, ERR_RULE, "email_not_verified", NULL,
				     "verify your e-mail address to book");
	rc = practitioner_bookable(db, practitioner_id, &bookable);
	if (rc)
		return rc;
	if (!bookable)
		return rpc_call_fail(call, ERR_RULE, "practitioner_unavailable",
				     "practitioner_id",
				     "this practitioner takes no bookings");
	return 0;
}

static int validate_create(struct rpc_call *call,
			   const Creneau__V1__CreateBookingRequest *q,
			   int64_t *start)
{
	int rc;

	if (!store_is_uuid(q->practitioner_id))
		return bad(call, "practitioner_id", "must be an id");
	if (!store_is_uuid(q->offering_id))
		return bad(call, "offering_id", "must be an id");
	if (!q->start || instant_parse(q->start, start))
		return bad(call, "start", "must be an RFC 3339 date-time");
	rc = check_text(call, "note", q->note, 0, 2000, true,
			"at most 2000 characters");
	if (rc)
		return rc;
	if (q->idempotency_key && strlen(q->idempotency_key) > 200)
		return bad(call, "Idempotency-Key", "at most 200 characters");
	return 0;
}

static int insert_booking(struct rpc_call *call, struct db *db,
			  const struct store_new_booking *nb,
			  Creneau__V1__Booking **out)
{
	int rc = db_begin(db);

	if (rc)
		return rc;
	rc = store_booking_insert(db, arena_of(call), nb, out);
	if (!rc)
		rc = publish(db, "booking.created", *out, 0, 0);
	return commit_or_rollback(db, rc);
}

static int handle_create_booking(struct rpc_call *call,
				 const ProtobufCMessage *request,
				 ProtobufCMessage **reply_out)
{
	const Creneau__V1__CreateBookingRequest *q = (const void *)request;
	struct db *db = rpc_call_db(call);
	struct store_new_booking nb = {0};
	Creneau__V1__Offering *o;
	Creneau__V1__Booking *b;
	const char *me, *key;
	int64_t start = 0;
	bool found;
	int rc = 0;

	me = require(call, CRENEAU__V1__ROLE__ROLE_CLIENT, &rc);
	if (!me)
		return rc;
	rc = validate_create(call, q, &start);
	if (rc)
		return rc;
	key = q->idempotency_key && *q->idempotency_key ? q->idempotency_key
							: NULL;
	nb.request_hash = request_hash(arena_of(call), q, start);
	if (!nb.request_hash)
		return ERR_NOMEM;
	if (key) {
		rc = replay(call, me, key, nb.request_hash, reply_out, &found);
		if (rc || found)
			return rc;
	}
	rc = check_client(call, db, me, q->practitioner_id);
	if (rc)
		return rc;
	rc = store_offering_get(db, arena_of(call), q->offering_id, &o);
	if (rc == ERR_NOT_FOUND ||
	    (!rc &&
	     (strcmp(o->practitioner_id, q->practitioner_id) || !o->active)))
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL, "offering_id",
				     "no such offering");
	if (rc)
		return rc;
	rc = check_offered(call, db, q->practitioner_id, start, o->duration_min,
			   o->buffer_before_min, o->buffer_after_min, NULL);
	if (rc)
		return rc;
	nb.practitioner_id = q->practitioner_id;
	nb.client_id = me;
	nb.offering = o;
	nb.start_ms = start;
	nb.note = q->note;
	nb.idempotency_key = key;
	rc = insert_booking(call, db, &nb, &b);
	if (rc == ERR_CONFLICT && key) {
		/* the same request racing itself, or someone took the slot */
		rc = replay(call, me, key, nb.request_hash, reply_out, &found);
		if (rc || found)
			return rc;
		rc = ERR_CONFLICT;
	}
	if (rc == ERR_CONFLICT)
		return rpc_call_fail(call, ERR_CONFLICT, "slot_taken", "start",
				     "this slot is no longer free");
	if (rc)
		return rc;
	log_info(rpc_call_request_id(call), "booking created booking=%s",
		 b->id);
	view_for(b, false, NULL);
	*reply_out = &b->base;
	return 0;
}

/* The booking if the principal is one of its parties (else 404). */
static int load_party(struct rpc_call *call, const char *id, bool lock,
		      Creneau__V1__Booking **b, struct store_booking_meta *m,
		      bool *is_practitioner)
{
	const char *me = who(call);
	int rc;

	if (!me)
		return rpc_call_fail(call, ERR_UNAUTHENTICATED, NULL, NULL,
				     "sign in first");
	if (!store_is_uuid(id))
		return not_found(call, "booking");
	rc = store_booking_get(rpc_call_db(call), arena_of(call), id, lock, b,
			       m);
	if (rc)
		return store_failed(call, rc, "booking");
	*is_practitioner =
	    role_of(call) == CRENEAU__V1__ROLE__ROLE_PRACTITIONER &&
	    !strcmp((*b)->practitioner_id, me);
	if (!*is_practitioner &&
	    !(role_of(call) == CRENEAU__V1__ROLE__ROLE_CLIENT &&
	      !strcmp(m->client_id, me)))
		return not_found(call, "booking");
	return 0;
}

static int handle_get_booking(struct rpc_call *call,
			      const ProtobufCMessage *request,
			      ProtobufCMessage **reply_out)
{
	const Creneau__V1__BookingIdRequest *q = (const void *)request;
	struct store_booking_meta m;
	Creneau__V1__Booking *b;
	bool pract;
	int rc;

	rc = load_party(call, q->id, false, &b, &m, &pract);
	if (rc)
		return rc;
	view_for(b, pract, &m);
	*reply_out = &b->base;
	return 0;
}

static bool deadline_passed(const struct store_booking_meta *m)
{
	return instant_now_ms() >
	       m->start_ms - m->cancel_deadline_min * AVAIL_MINUTE_MS;
}

/* Runs change inside a transaction on a locked booking, then publishes
 * topic and answers with the booking as it now is. */
struct change {
	const char *topic;
	int (*apply)(struct rpc_call *call, struct db *db,
		     const Creneau__V1__Booking *b,
		     const struct store_booking_meta *m, bool pract,
		     const void *arg);
	bool practitioner_only;
	bool client_deadline;
	bool after_start; /* only once the booking has begun */
	const void *arg;
};

static int run_change(struct rpc_call *call, const char *id,
		      const struct change *c, ProtobufCMessage **reply_out)
{
	struct db *db = rpc_call_db(call);
	struct store_booking_meta m, m2;
	Creneau__V1__Booking *b, *after;
	bool pract;
	int rc;

	rc = db_begin(db);
	if (rc)
		return rc;
	rc = load_party(call, id, true, &b, &m, &pract);
	if (rc)
		goto out_rollback;
	if (c->practitioner_only && !pract) {
		rc = rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				   "only the practitioner may do this");
		goto out_rollback;
	}
	if (strcmp(b->status, "confirmed") != 0) {
		rc = rpc_call_fail(call, ERR_RULE, "booking_not_confirmed",
				   NULL, "this booking is %s", b->status);
		goto out_rollback;
	}
	if (c->client_deadline && !pract && deadline_passed(&m)) {
		rc = rpc_call_fail(call, ERR_RULE, "deadline_passed", NULL,
				   "too late to change this booking online; "
				   "contact the practitioner");
		goto out_rollback;
	}
	if (c->after_start && instant_now_ms() < m.start_ms) {
		rc = rpc_call_fail(call, ERR_RULE, "booking_not_started", NULL,
				   "this booking has not begun yet");
		goto out_rollback;
	}
	rc = c->apply(call, db, b, &m, pract, c->arg);
	if (rc)
		goto out_rollback;
	rc = store_booking_get(db, arena_of(call), id, false, &after, &m2);
	/* the old times belong to booking.rescheduled only */
	if (!rc && !strcmp(c->topic, "booking.rescheduled"))
		rc = publish(db, c->topic, after, m.start_ms, m.end_ms);
	else if (!rc)
		rc = publish(db, c->topic, after, 0, 0);
	if (!rc)
		rc = db_commit(db);
	if (rc)
		goto out_rollback;
	log_info(rpc_call_request_id(call), "%s booking=%s", c->topic, id);
	view_for(after, pract, &m2);
	*reply_out = &after->base;
	return 0;
out_rollback:
	db_rollback(db);
	return rc;
}

static int apply_cancel(struct rpc_call *call, struct db *db,
			const Creneau__V1__Booking *b,
			const struct store_booking_meta *m, bool pract,
			const void *arg)
{
	return store_booking_cancel(db, b->id,
				    pract ? "practitioner" : "client", arg);
}

static int handle_cancel_booking(struct rpc_call *call,
				 const ProtobufCMessage *request,
				 ProtobufCMessage **reply_out)
{
	const Creneau__V1__CancelBookingRequest *q = (const void *)request;
	struct change c = {
	    "booking.cancelled",    apply_cancel, false, true, false,
	    str_or_empty(q->reason)};
	int rc = check_text(call, "reason", q->reason, 0, 2000, false,
			    "at most 2000 characters");

	if (rc)
		return rc;
	return run_change(call, q->id, &c, reply_out);
}

static int apply_move(struct rpc_call *call, struct db *db,
		      const Creneau__V1__Booking *b,
		      const struct store_booking_meta *m, bool pract,
		      const void *arg)
{
	int64_t start = *(const int64_t *)arg;
	int rc;

	/* a client moves only to where a new booking could go */
	if (!pract) {
		rc = check_client(call, db, who(call), b->practitioner_id);
		if (rc)
			return rc;
	}
	rc = check_offered(call, db, b->practitioner_id, start, b->duration_min,
			   m->buffer_before_min, m->buffer_after_min, b->id);
	if (rc)
		return rc;
	/* one UPDATE: the old slot is freed only if the new one is taken */
	rc = store_booking_move(db, b->id, start,
				start + b->duration_min * AVAIL_MINUTE_MS);
	if (rc == ERR_CONFLICT)
		return rpc_call_fail(call, ERR_CONFLICT, "slot_taken", "start",
				     "this slot is no longer free");
	return rc;
}

static int handle_reschedule_booking(struct rpc_call *call,
				     const ProtobufCMessage *request,
				     ProtobufCMessage **reply_out)
{
	const Creneau__V1__RescheduleBookingRequest *q = (const void *)request;
	int64_t start;
	struct change c = {
	    "booking.rescheduled", apply_move, false, true, false, &start};

	if (!q->start || instant_parse(q->start, &start))
		return bad(call, "start", "must be an RFC 3339 date-time");
	return run_change(call, q->id, &c, reply_out);
}

static int apply_status(struct rpc_call *call, struct db *db,
			const Creneau__V1__Booking *b,
			const struct store_booking_meta *m, bool pract,
			const void *arg)
{
	return store_booking_set_status(db, b->id, arg);
}

static int handle_complete_booking(struct rpc_call *call,
				   const ProtobufCMessage *request,
				   ProtobufCMessage **reply_out)
{
	const Creneau__V1__BookingIdRequest *q = (const void *)request;
	struct change c = {"booking.completed", apply_status, true, false, true,
			   "completed"};

	return run_change(call, q->id, &c, reply_out);
}

static int handle_no_show_booking(struct rpc_call *call,
				  const ProtobufCMessage *request,
				  ProtobufCMessage **reply_out)
{
	const Creneau__V1__BookingIdRequest *q = (const void *)request;
	struct change c = {"booking.no_show", apply_status, true, false, true,
			   "no_show"};

	return run_change(call, q->id, &c, reply_out);
}

static bool is_status(const char *s)
{
	return !strcmp(s, "confirmed") || !strcmp(s, "cancelled") ||
	       !strcmp(s, "completed") || !strcmp(s, "no_show");
}

/* "<start ms>_<uuid>" */
static bool parse_cursor(const char *text, struct store_booking_filter *f)
{
	char *end;
	long long ms = strtoll(text, &end, 10);

	if (end == text || *end != '_' || !store_is_uuid(end + 1))
		return false;
	f->has_cursor = true;
	f->cursor_start_ms = ms;
	snprintf(f->cursor_id, sizeof(f->cursor_id), "%s", end + 1);
	return true;
}

static unsigned limit_of(unsigned asked)
{
	if (!asked)
		return DEFAULT_LIST_LIMIT;
	return asked > MAX_LIST_LIMIT ? MAX_LIST_LIMIT : asked;
}

static int handle_list_my_bookings(struct rpc_call *call,
				   const ProtobufCMessage *request,
				   ProtobufCMessage **reply_out)
{
	const Creneau__V1__ListMyBookingsRequest *q = (const void *)request;
	struct store_booking_filter f = {0};
	Creneau__V1__ListBookingsReply *r;
	Creneau__V1__Role role = role_of(call);
	bool more = false;
	int rc = 0;

	f.account_id = who(call);
	if (!f.account_id || !store_is_uuid(f.account_id))
		return rpc_call_fail(call, ERR_UNAUTHENTICATED, NULL, NULL,
				     "sign in first");
	if (role != CRENEAU__V1__ROLE__ROLE_CLIENT &&
	    role != CRENEAU__V1__ROLE__ROLE_PRACTITIONER)
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "clients and practitioners only");
	f.as_practitioner = role == CRENEAU__V1__ROLE__ROLE_PRACTITIONER;
	f.from_ms = parse_instant_or(call, q->from, 0, "from", &rc);
	if (!rc)
		f.to_ms = parse_instant_or(call, q->to, 0, "to", &rc);
	if (rc)
		return rc;
	if (q->status && *q->status) {
		if (!is_status(q->status))
			return bad(call, "status",
				   "confirmed, cancelled, completed or "
				   "no_show");
		f.status = q->status;
	}
	if (q->cursor && *q->cursor && !parse_cursor(q->cursor, &f))
		return bad(call, "cursor", "not a cursor from this list");
	f.limit = limit_of(q->limit);
	r = alloc(call, sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	creneau__v1__list_bookings_reply__init(r);
	rc = store_bookings_list(rpc_call_db(call), arena_of(call), &f,
				 &r->items, &r->n_items, &more);
	if (rc)
		return rc;
	for (size_t i = 0; i < r->n_items; i++)
		view_for(r->items[i], f.as_practitioner, NULL);
	r->next_cursor = "";
	if (more && r->n_items) {
		const Creneau__V1__Booking *last = r->items[r->n_items - 1];
		int64_t ms = 0;

		if (instant_parse(last->start, &ms))
			return ERR_INTERNAL;
		r->next_cursor = arena_printf(arena_of(call), "%lld_%s",
					      (long long)ms, last->id);
		if (!r->next_cursor)
			return ERR_NOMEM;
	}
	*reply_out = &r->base;
	return 0;
}

/* ---- the client file ---- */

static int handle_list_clients(struct rpc_call *call,
			       const ProtobufCMessage *request,
			       ProtobufCMessage **reply_out)
{
	const Creneau__V1__ListClientsRequest *q = (const void *)request;
	Creneau__V1__ListClientsReply *r;
	const char *me, *after = NULL;
	bool more = false;
	int rc = 0;

	me = require(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &rc);
	if (!me)
		return rc;
	if (q->cursor && *q->cursor) {
		if (!store_is_uuid(q->cursor))
			return bad(call, "cursor",
				   "not a cursor from this list");
		after = q->cursor;
	}
	r = alloc(call, sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	creneau__v1__list_clients_reply__init(r);
	rc = store_clients_list(rpc_call_db(call), arena_of(call), me,
				limit_of(q->limit), after, &r->items,
				&r->n_items, &more);
	if (rc)
		return rc;
	r->next_cursor = more && r->n_items ? r->items[r->n_items - 1]->id : "";
	*reply_out = &r->base;
	return 0;
}

static int handle_get_client(struct rpc_call *call,
			     const ProtobufCMessage *request,
			     ProtobufCMessage **reply_out)
{
	const Creneau__V1__ClientIdRequest *q = (const void *)request;
	Creneau__V1__ClientRecord *c;
	const char *me;
	int rc = 0;

	me = require_own(call, q->id, "client", &rc);
	if (!me)
		return rc;
	rc = store_client_get(rpc_call_db(call), arena_of(call), me, q->id, &c);
	if (rc)
		return store_failed(call, rc, "client");
	*reply_out = &c->base;
	return 0;
}

static int handle_update_client(struct rpc_call *call,
				const ProtobufCMessage *request,
				ProtobufCMessage **reply_out)
{
	const Creneau__V1__UpdateClientRequest *q = (const void *)request;
	Creneau__V1__ClientRecord *c;
	const char *me;
	int rc = 0;

	me = require_own(call, q->id, "client", &rc);
	if (!me)
		return rc;
	if (q->first_name_present_case)
		rc = check_text(call, "first_name", q->first_name, 0, 200,
				false, "at most 200 characters");
	if (!rc && q->last_name_present_case)
		rc = check_text(call, "last_name", q->last_name, 0, 200, false,
				"at most 200 characters");
	if (!rc && q->email_present_case)
		rc = check_text(call, "email", q->email, 0, 320, false,
				"at most 320 characters");
	if (!rc && q->phone_present_case)
		rc = check_text(call, "phone", q->phone, 0, 40, false,
				"at most 40 characters");
	if (!rc && q->notes_present_case)
		rc = check_text(call, "notes", q->notes, 0, 4000, true,
				"at most 4000 characters");
	if (rc)
		return rc;
	rc = store_client_update(rpc_call_db(call), arena_of(call), me, q, &c);
	if (rc)
		return store_failed(call, rc, "client");
	*reply_out = &c->base;
	return 0;
}

static int handle_delete_client(struct rpc_call *call,
				const ProtobufCMessage *request,
				ProtobufCMessage **reply_out)
{
	const Creneau__V1__ClientIdRequest *q = (const void *)request;
	struct db *db = rpc_call_db(call);
	const char *me;
	int rc = 0;

	me = require_own(call, q->id, "client", &rc);
	if (!me)
		return rc;
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_client_delete(db, me, q->id);
	rc = commit_or_rollback(db, rc);
	if (rc == ERR_RULE)
		return rpc_call_fail(call, ERR_RULE,
				     "client_has_upcoming_bookings", NULL,
				     "cancel this client's bookings "
				     "still to come first");
	if (rc)
		return store_failed(call, rc, "client");
	return reply_empty(call, reply_out);
}

/* ---- external busy intervals ---- */

static int handle_replace_busy(struct rpc_call *call,
			       const ProtobufCMessage *request,
			       ProtobufCMessage **reply_out)
{
	const Creneau__V1__ReplaceBusyRequest *q = (const void *)request;
	struct db *db = rpc_call_db(call);
	Creneau__V1__ReplaceBusyReply *r;
	struct avail_interval *v;
	int rc;

	if (role_of(call) != CRENEAU__V1__ROLE__ROLE_SERVICE)
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "for services only");
	if (!store_is_uuid(q->practitioner_id))
		return bad(call, "practitioner_id", "must be an id");
	rc = check_text(call, "source", q->source, 1, 40, false,
			"1 to 40 characters");
	if (rc)
		return rc;
	if (q->window_end_ms <= q->window_start_ms)
		return bad(call, "window_end_ms", "must be after the start");
	if (q->n_intervals > MAX_BUSY)
		return bad(call, "intervals", "too many intervals");
	v = alloc(call, (q->n_intervals + 1) * sizeof(*v));
	if (!v)
		return ERR_NOMEM;
	for (size_t i = 0; i < q->n_intervals; i++)
		v[i] = (struct avail_interval){q->intervals[i]->start_ms,
					       q->intervals[i]->end_ms};
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_busy_replace(db, q->practitioner_id, q->source,
				q->window_start_ms, q->window_end_ms, v,
				q->n_intervals);
	rc = commit_or_rollback(db, rc);
	if (rc)
		return rc;
	r = alloc(call, sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	creneau__v1__replace_busy_reply__init(r);
	r->stored = (uint32_t)q->n_intervals;
	*reply_out = &r->base;
	return 0;
}

/* ---- account deletion and privacy ---- */

/* Cancels (by the system) every booking of account still to come, with
 * its event, in the caller's transaction. */
static int cancel_future(struct db *db, struct arena *a, const char *account,
			 const char *reason)
{
	Creneau__V1__Booking *b;
	char **ids;
	size_t n;
	int rc;

	rc = store_future_bookings_of(db, a, account, &ids, &n);
	for (size_t i = 0; !rc && i < n; i++) {
		rc = store_booking_cancel(db, ids[i], "system", reason);
		if (!rc)
			rc = store_booking_get(db, a, ids[i], false, &b, NULL);
		if (!rc)
			rc = publish(db, "booking.cancelled", b, 0, 0);
	}
	return rc;
}

static int forget(struct db *db, struct arena *a, const char *account,
		  unsigned *erased, unsigned *anonymised)
{
	int rc = cancel_future(db, a, account, "account deleted");

	if (!rc)
		rc = store_forget_account(db, account, erased, anonymised);
	return rc;
}

static const char *subject_of(struct rpc_call *call,
			      const Creneau__V1__Subject *s, int *rc)
{
	if (!is_service(call)) {
		*rc = rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				    "for services only");
		return NULL;
	}
	if (!s || !store_is_uuid(s->account_id)) {
		*rc = bad(call, "subject.account_id", "must be an account id");
		return NULL;
	}
	return s->account_id;
}

static int handle_export(struct rpc_call *call, const ProtobufCMessage *request,
			 ProtobufCMessage **reply_out)
{
	const Creneau__V1__ExportRequest *q = (const void *)request;
	Creneau__V1__ExportReply *r;
	const char *id;
	cJSON *doc;
	char *text;
	int rc = 0;

	id = subject_of(call, q->subject, &rc);
	if (!id)
		return rc;
	doc = cJSON_CreateObject();
	if (!doc)
		return ERR_NOMEM;
	rc = store_export(rpc_call_db(call), id, doc);
	text = rc ? NULL : cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (rc)
		return rc;
	if (!text)
		return ERR_NOMEM;
	r = alloc(call, sizeof(*r));
	if (r) {
		creneau__v1__export_reply__init(r);
		r->service = "booking";
		r->document = arena_strdup(arena_of(call), text);
	}
	free(text);
	if (!r || !r->document)
		return ERR_NOMEM;
	*reply_out = &r->base;
	return 0;
}

static int handle_erase(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out)
{
	const Creneau__V1__EraseRequest *q = (const void *)request;
	struct db *db = rpc_call_db(call);
	Creneau__V1__EraseReply *r;
	unsigned erased = 0, anonymised = 0;
	const char *id;
	int rc = 0;

	id = subject_of(call, q->subject, &rc);
	if (!id)
		return rc;
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = forget(db, arena_of(call), id, &erased, &anonymised);
	rc = commit_or_rollback(db, rc);
	if (rc)
		return rc;
	r = alloc(call, sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	creneau__v1__erase_reply__init(r);
	r->erased = erased;
	r->anonymised = anonymised;
	*reply_out = &r->base;
	return 0;
}

static int handle_sweep(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out)
{
	const Creneau__V1__SweepRequest *q = (const void *)request;
	Creneau__V1__SweepReply *r;
	unsigned erased = 0;
	int rc;

	if (!is_service(call))
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "for services only");
	if (!q->category || strcmp(q->category, "appointments") != 0)
		return rpc_call_fail(call, ERR_INVALID, "unknown_category",
				     "category",
				     "this service keeps no data of category "
				     "'%.64s'",
				     str_or_empty(q->category));
	rc = store_sweep_appointments(rpc_call_db(call), q->cutoff_ms, &erased);
	if (rc)
		return rc;
	r = alloc(call, sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	creneau__v1__sweep_reply__init(r);
	r->erased = erased;
	*reply_out = &r->base;
	return 0;
}

/* ---- accounts events ---- */

static const char *role_text(Creneau__V1__Role r)
{
	switch (r) {
	case CRENEAU__V1__ROLE__ROLE_CLIENT:
		return "client";
	case CRENEAU__V1__ROLE__ROLE_PRACTITIONER:
		return "practitioner";
	case CRENEAU__V1__ROLE__ROLE_ADMIN:
		return "admin";
	default:
		return "none";
	}
}

static const char *subscription_text(Creneau__V1__SubscriptionStatus s)
{
	switch (s) {
	case CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_TRIAL:
		return "trial";
	case CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_ACTIVE:
		return "active";
	case CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_SUSPENDED:
		return "suspended";
	case CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_LAPSED:
		return "lapsed";
	default:
		return "none";
	}
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d,
				const Creneau__V1__Event *ev)
{
	return protobuf_c_message_unpack(d, NULL, ev->payload.len,
					 ev->payload.data);
}

static int apply_one(struct db *db, const char *topic, ProtobufCMessage *m)
{
	struct arena *a;
	unsigned erased, anonymised;
	int rc;

	if (!strcmp(topic, "account.created")) {
		const Creneau__V1__AccountCreated *e = (const void *)m;

		if (!store_is_uuid(e->account_id))
			return 0;
		return store_account_upsert(
		    db, e->account_id, role_text(e->role), e->email,
		    e->first_name, e->last_name, e->phone);
	}
	if (!strcmp(topic, "account.updated")) {
		const Creneau__V1__AccountUpdated *e = (const void *)m;

		if (!store_is_uuid(e->account_id))
			return 0;
		return store_account_upsert(
		    db, e->account_id, role_text(e->role), e->email,
		    e->first_name, e->last_name, e->phone);
	}
	if (!strcmp(topic, "account.verified")) {
		const Creneau__V1__AccountVerified *e = (const void *)m;

		if (!store_is_uuid(e->account_id))
			return 0;
		return store_account_set_verified(db, e->account_id,
						  role_text(e->role), e->email);
	}
	if (!strcmp(topic, "account.suspended")) {
		const Creneau__V1__AccountSuspended *e = (const void *)m;

		if (!store_is_uuid(e->account_id))
			return 0;
		return store_account_set_subscription(
		    db, e->account_id, role_text(e->role),
		    subscription_text(e->subscription_status), e->listed);
	}
	/* account.deleted */
	{
		const Creneau__V1__AccountDeleted *e = (const void *)m;

		if (!store_is_uuid(e->account_id))
			return 0;
		a = arena_new(0);
		if (!a)
			return ERR_NOMEM;
		rc = forget(db, a, e->account_id, &erased, &anonymised);
		arena_free(a);
		return rc;
	}
}

int handlers_apply_accounts_event(void *arg, struct db *db,
				  const Creneau__V1__Event *event)
{
	static const struct {
		const char *topic;
		const ProtobufCMessageDescriptor *desc;
	} known[] = {
	    {"account.created", &creneau__v1__account_created__descriptor},
	    {"account.updated", &creneau__v1__account_updated__descriptor},
	    {"account.verified", &creneau__v1__account_verified__descriptor},
	    {"account.suspended", &creneau__v1__account_suspended__descriptor},
	    {"account.deleted", &creneau__v1__account_deleted__descriptor},
	};
	ProtobufCMessage *m;
	int rc;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(event->topic, known[i].topic) != 0)
			continue;
		m = unpack(known[i].desc, event);
		if (!m) {
			log_warn(NULL,
				 "undecodable event skipped topic=%s "
				 "sequence=%llu",
				 event->topic,
				 (unsigned long long)event->sequence);
			return 0;
		}
		rc = apply_one(db, event->topic, m);
		protobuf_c_message_free_unpacked(m, NULL);
		return rc;
	}
	return 0; /* a topic booking does not need */
}

/* ---- the table ---- */

static const struct rpc_method methods[] = {
    RPC_METHOD("ListMyOfferings", list_my_offerings_request,
	   handle_list_my_offerings),
    RPC_METHOD("ListPractitionerOfferings", list_practitioner_offerings_request,
	   handle_list_practitioner_offerings),
    RPC_METHOD("CreateOffering", create_offering_request, handle_create_offering),
    RPC_METHOD("UpdateOffering", update_offering_request, handle_update_offering),
    RPC_METHOD("DeleteOffering", delete_offering_request, handle_delete_offering),
    RPC_METHOD("GetSchedule", get_schedule_request, handle_get_schedule),
    RPC_METHOD("PutSchedule", schedule, handle_put_schedule),
    RPC_METHOD("ListOverrides", list_overrides_request, handle_list_overrides),
    RPC_METHOD("CreateOverride", create_override_request, handle_create_override),
    RPC_METHOD("DeleteOverride", delete_override_request, handle_delete_override),
    RPC_METHOD("GetAvailability", get_availability_request,
	   handle_get_availability),
    RPC_METHOD("CreateBooking", create_booking_request, handle_create_booking),
    RPC_METHOD("ListMyBookings", list_my_bookings_request, handle_list_my_bookings),
    RPC_METHOD("GetBooking", booking_id_request, handle_get_booking),
    RPC_METHOD("CancelBooking", cancel_booking_request, handle_cancel_booking),
    RPC_METHOD("RescheduleBooking", reschedule_booking_request,
	   handle_reschedule_booking),
    RPC_METHOD("CompleteBooking", booking_id_request, handle_complete_booking),
    RPC_METHOD("NoShowBooking", booking_id_request, handle_no_show_booking),
    RPC_METHOD("ListClients", list_clients_request, handle_list_clients),
    RPC_METHOD("GetClient", client_id_request, handle_get_client),
    RPC_METHOD("UpdateClient", update_client_request, handle_update_client),
    RPC_METHOD("DeleteClient", client_id_request, handle_delete_client),
    RPC_METHOD("ReplaceBusy", replace_busy_request, handle_replace_busy),
    RPC_METHOD("Export", export_request, handle_export),
    RPC_METHOD("Erase", erase_request, handle_erase),
    RPC_METHOD("Sweep", sweep_request, handle_sweep),
};

const struct rpc_method *handlers_methods(size_t *n_out)
{
	*n_out = sizeof(methods) / sizeof(methods[0]);
	return methods;
}
