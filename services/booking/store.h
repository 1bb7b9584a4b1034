/* store.h - the booking schema: every SQL statement of the service (a PGresult
 * never leaves store.c). */
#ifndef BOOKING_STORE_H
#define BOOKING_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "availability.h"
#include "creneau/v1/booking.pb-c.h"
#include "error.h"

struct arena;
struct db;

/*
 * Conventions for every function here: db is the caller's connection (used
 * by one thread); strings and messages returned are allocated in arena and
 * live as long as it; ids are UUID text, checked by the caller
 * (store_is_uuid). Return 0, ERR_NOT_FOUND when the row is absent (or not
 * the given practitioner's), or db_exec's codes (ERR_CONFLICT, ERR_INVALID,
 * ERR_UNAVAILABLE, ERR_TIMEOUT, ERR_INTERNAL), ERR_NOMEM.
 */

/* store_is_uuid - whether text is a canonical UUID (36 chars, hex and -). */
bool store_is_uuid(const char *text);

/* ---- the copy of accounts (fed by accounts events) ---- */

struct store_account {
	bool exists;
	char role[16]; /* "client", "practitioner", "admin" */
	bool email_verified;
	bool suspended;
};

/* store_account_upsert - creates or refreshes the copy; NULL leaves a
 * field as it is. */
int store_account_upsert(struct db *db, const char *account_id,
			 const char *role, const char *email,
			 const char *first_name, const char *last_name,
			 const char *phone) WARN_UNUSED;
int store_account_set_verified(struct db *db, const char *account_id,
			       const char *role, const char *email) WARN_UNUSED;
/*
 * store_account_set_subscription - an account.suspended event: suspended
 * (no bookings) when status is "suspended" or "lapsed", not when "active";
 * otherwise ("trial", "none") when not listed although the copy's e-mail is
 * verified (a trial over). E-mail verification is kept apart: an unlisted
 * practitioner who is merely unverified becomes bookable on verification.
 */
int store_account_set_subscription(struct db *db, const char *account_id,
				   const char *role, const char *status,
				   bool listed) WARN_UNUSED;
/* store_account_get - out->exists false when booking has never heard of it. */
int store_account_get(struct db *db, const char *account_id,
		      struct store_account *out) WARN_UNUSED;

/* ---- offerings ---- */

/* store_offerings_list - a practitioner's offerings (not retired); public:
 * only the active ones. */
int store_offerings_list(struct db *db, struct arena *arena,
			 const char *practitioner_id, bool public_only,
			 Creneau__V1__Offering ***items_out,
			 size_t *n_out) WARN_UNUSED;
/* store_offering_create - req validated by the caller; an idempotency key
 * already used by this practitioner returns that offering. */
int store_offering_create(struct db *db, struct arena *arena,
			  const char *practitioner_id,
			  const Creneau__V1__CreateOfferingRequest *req,
			  Creneau__V1__Offering **out) WARN_UNUSED;
/* store_offering_update - only the present fields change. */
int store_offering_update(struct db *db, struct arena *arena,
			  const char *practitioner_id,
			  const Creneau__V1__UpdateOfferingRequest *req,
			  Creneau__V1__Offering **out) WARN_UNUSED;
/* store_offering_delete - deleted, or retired when bookings refer to it. */
int store_offering_delete(struct db *db, const char *practitioner_id,
			  const char *id, bool *retired_out) WARN_UNUSED;
/* store_offering_get - any non-retired offering (callers check owner). */
int store_offering_get(struct db *db, struct arena *arena, const char *id,
		       Creneau__V1__Offering **out) WARN_UNUSED;

/* ---- schedule ---- */

/* store_schedule_get - the schedule, or the defaults when none is saved. */
int store_schedule_get(struct db *db, struct arena *arena,
		       const char *practitioner_id,
		       Creneau__V1__Schedule **out) WARN_UNUSED;
/* store_schedule_put - replaces timezone, numbers and weekly hours (given
 * as minutes in weekly[i]) in one transaction. */
int store_schedule_put(struct db *db, const char *practitioner_id,
		       const char *timezone, int min_notice_min,
		       int horizon_days, int slot_step_min,
		       int cancel_deadline_min,
		       const struct avail_weekly *weekly,
		       size_t n_weekly) WARN_UNUSED;
/* store_timezone_is_known - whether PostgreSQL's tz database has name. */
int store_timezone_is_known(struct db *db, const char *name,
			    bool *known_out) WARN_UNUSED;

int store_overrides_list(struct db *db, struct arena *arena,
			 const char *practitioner_id, const char *from_date,
			 const char *to_date,
			 Creneau__V1__ScheduleOverride ***items_out,
			 size_t *n_out) WARN_UNUSED;
/* store_override_put - creates the date's override or replaces it;
 * intervals as local minutes (n 0 with closed). */
int store_override_put(struct db *db, struct arena *arena,
		       const char *practitioner_id, const char *date,
		       bool closed, const int *starts, const int *ends,
		       size_t n,
		       Creneau__V1__ScheduleOverride **out) WARN_UNUSED;
int store_override_delete(struct db *db, const char *practitioner_id,
			  const char *id) WARN_UNUSED;

/* ---- availability ---- */

/* What avail_compute needs, loaded for a window. */
struct store_avail {
	char *timezone;
	int min_notice_min, horizon_days, slot_step_min, cancel_deadline_min;
	struct avail_weekly *weekly;
	size_t n_weekly;
	struct avail_override *overrides;
	size_t n_overrides;
	struct avail_interval *busy;
	size_t n_busy;
	struct avail_zone_span *zone;
	size_t n_zone;
	/* the offering asked for, when it is this practitioner's */
	bool offering_found, offering_active;
	int duration_min, buffer_before_min, buffer_after_min;
	/* known to booking but unverified, suspended or lapsed */
	bool practitioner_unbookable;
};

/*
 * store_avail_load - in one round trip: the practitioner's schedule
 * (defaults when none), overrides, busy intervals (live bookings with their
 * buffers, except exclude_booking_id when not NULL, and external ones),
 * whether the practitioner is known but not bookable, and offering_id's
 * duration and buffers when it is this practitioner's and not retired
 * (offering_id may be NULL); then the zone spans covering [from_ms, to_ms) with
 * a few days' margin.
 */
int store_avail_load(struct db *db, struct arena *arena,
		     const char *practitioner_id, const char *offering_id,
		     int64_t from_ms, int64_t to_ms,
		     const char *exclude_booking_id,
		     struct store_avail *out) WARN_UNUSED;

/*
 * store_zone_spans - the zone's UTC offsets over [from_ms, to_ms] from
 * PostgreSQL's tz database: the offset at from_ms, then one span per
 * transition (found to the minute). ERR_INVALID for an unknown zone.
 */
int store_zone_spans(struct db *db, struct arena *arena, const char *zone,
		     int64_t from_ms, int64_t to_ms,
		     struct avail_zone_span **out, size_t *n_out) WARN_UNUSED;

/* ---- bookings ---- */

/* What handlers need to know of a booking besides its message. */
struct store_booking_meta {
	int64_t start_ms, end_ms;
	int cancel_deadline_min;
	int buffer_before_min, buffer_after_min;
	bool has_client_record;
	char client_id[40];
};

struct store_new_booking {
	const char *practitioner_id, *client_id;
	const Creneau__V1__Offering *offering;
	int64_t start_ms;
	const char *note;
	const char *idempotency_key; /* NULL: none */
	const char *request_hash;
};

/*
 * store_booking_by_key - the booking client_id made with idempotency key,
 * and the hash of the request that made it. ERR_NOT_FOUND when none.
 */
int store_booking_by_key(struct db *db, struct arena *arena,
			 const char *client_id, const char *key,
			 Creneau__V1__Booking **out,
			 char **hash_out) WARN_UNUSED;

/*
 * store_booking_insert - inside the caller's transaction: the client's
 * record in the practitioner's file (created at the first booking, a copy
 * of the account's name, e-mail and phone) and the confirmed booking.
 * ERR_CONFLICT when the slot (with buffers) overlaps a live booking or the
 * idempotency key is taken.
 */
int store_booking_insert(struct db *db, struct arena *arena,
			 const struct store_new_booking *nb,
			 Creneau__V1__Booking **out) WARN_UNUSED;

/* store_booking_get - by id; lock: FOR UPDATE (inside a transaction). */
int store_booking_get(struct db *db, struct arena *arena, const char *id,
		      bool lock, Creneau__V1__Booking **out,
		      struct store_booking_meta *meta_out) WARN_UNUSED;

/* store_booking_cancel - confirmed → cancelled (by, reason, now). */
int store_booking_cancel(struct db *db, const char *id, const char *by,
			 const char *reason) WARN_UNUSED;

/* store_booking_move - new times (the buffers kept): ERR_CONFLICT when the
 * new range overlaps another live booking. */
int store_booking_move(struct db *db, const char *id, int64_t start_ms,
		       int64_t end_ms) WARN_UNUSED;

/* store_booking_set_status - confirmed → status. */
int store_booking_set_status(struct db *db, const char *id,
			     const char *status) WARN_UNUSED;

struct store_booking_filter {
	bool as_practitioner;
	const char *account_id;
	int64_t from_ms, to_ms; /* 0: unbounded */
	const char *status;	/* NULL: any */
	unsigned limit;
	bool has_cursor;
	int64_t cursor_start_ms;
	char cursor_id[40];
};

/* store_bookings_list - ordered by start then id, after the cursor;
 * *more_out tells whether another page follows. */
int store_bookings_list(struct db *db, struct arena *arena,
			const struct store_booking_filter *f,
			Creneau__V1__Booking ***items_out, size_t *n_out,
			bool *more_out) WARN_UNUSED;

/* ---- the client file ---- */

int store_clients_list(struct db *db, struct arena *arena,
		       const char *practitioner_id, unsigned limit,
		       const char *after_id, Creneau__V1__ClientRecord ***out,
		       size_t *n_out, bool *more_out) WARN_UNUSED;
int store_client_get(struct db *db, struct arena *arena,
		     const char *practitioner_id, const char *id,
		     Creneau__V1__ClientRecord **out) WARN_UNUSED;
int store_client_update(struct db *db, struct arena *arena,
			const char *practitioner_id,
			const Creneau__V1__UpdateClientRequest *req,
			Creneau__V1__ClientRecord **out) WARN_UNUSED;
/*
 * store_client_delete - erases the record and the client's identity (link
 * and note) from this practitioner's bookings, in the caller's transaction.
 * ERR_RULE while the client has a confirmed booking still to come.
 */
int store_client_delete(struct db *db, const char *practitioner_id,
			const char *id) WARN_UNUSED;

/* ---- external busy intervals ---- */

int store_busy_replace(struct db *db, const char *practitioner_id,
		       const char *source, int64_t window_start_ms,
		       int64_t window_end_ms, const struct avail_interval *v,
		       size_t n) WARN_UNUSED;

/* ---- account deletion and privacy ---- */

/*
 * store_future_bookings_of - ids of the account's confirmed bookings still
 * to come (as client or practitioner), for cancellation by the system.
 */
int store_future_bookings_of(struct db *db, struct arena *arena,
			     const char *account_id, char ***ids_out,
			     size_t *n_out) WARN_UNUSED;

/*
 * store_forget_account - inside the caller's transaction: a client's
 * platform link goes from bookings and client records (the practitioners'
 * records stay); a practitioner's offerings, schedule, busy intervals and
 * client file go. Counts what went in *erased_out, *anonymised_out.
 */
int store_forget_account(struct db *db, const char *account_id,
			 unsigned *erased_out,
			 unsigned *anonymised_out) WARN_UNUSED;

/* store_export - adds what booking holds on the account to doc. */
int store_export(struct db *db, const char *account_id, cJSON *doc) WARN_UNUSED;

/* store_sweep_appointments - deletes bookings that ended before cutoff. */
int store_sweep_appointments(struct db *db, int64_t cutoff_ms,
			     unsigned *erased_out) WARN_UNUSED;

#endif
