/* store.c - the booking schema: every SQL statement of the service (a PGresult
 * never leaves this file). */
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "db.h"
#include "instant.h"
#include "log.h"

/* SQL fragments: an instant as Unix ms, and a Unix ms parameter as an instant
 */
#define MS(x) "(extract(epoch FROM " x ") * 1000)::bigint"
#define TS(p) "(timestamptz 'epoch' + " p "::bigint * interval '1 millisecond')"

#define DEFAULT_TIMEZONE "Europe/Paris"
#define DEFAULT_NOTICE	 120
#define DEFAULT_HORIZON	 90
#define DEFAULT_STEP	 15
#define DEFAULT_DEADLINE 1440

bool store_is_uuid(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = s[i];
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? c != '-'
			 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

/* ---- reading results ---- */

static char *val(struct arena *a, const PGresult *r, int row, int col)
{
	return arena_strdup(a, PQgetvalue(r, row, col));
}

static int64_t val_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int val_int(const PGresult *r, int row, int col)
{
	return (int)strtol(PQgetvalue(r, row, col), NULL, 10);
}

static bool val_bool(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col)[0] == 't';
}

static bool is_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col);
}

/* an instant column selected as MS(): RFC 3339, "" when NULL */
static char *val_time(struct arena *a, const PGresult *r, int row, int col)
{
	char text[INSTANT_TEXT];

	if (is_null(r, row, col))
		return arena_strdup(a, "");
	instant_format(val_i64(r, row, col), text);
	return arena_strdup(a, text);
}

static char *i64s(struct arena *a, int64_t v)
{
	return arena_printf(a, "%lld", (long long)v);
}

/* Runs sql; *res_out gets the result when the call succeeds. */
static int run(struct db *db, const char *sql, int n, const char *const *p,
	       PGresult **res_out)
{
	return db_exec(db, sql, n, p, res_out);
}

/*
 * Prepared statements for the hot read-only queries, which PostgreSQL
 * would otherwise plan on every call (the availability query costs 0.3 ms
 * prepared and 1 ms planned). Only outside a transaction: whenever the
 * prepared path fails for any reason, the statement is run again through
 * db_exec, which maps, logs and recovers as everywhere else. Which
 * statements a connection has prepared is remembered per thread (each RPC
 * worker owns its connection) and per PGconn.
 */
enum fast_statement {
	FAST_AVAIL,
	FAST_ACCOUNT,
	FAST_OFFERING,
	FAST_BY_KEY,
	FAST_N
};

#define FAST_CONNS 4

static _Thread_local struct {
	PGconn *conn;
	unsigned prepared;
} fast_conns[FAST_CONNS];

static unsigned *fast_mask(PGconn *conn)
{
	size_t i;

	for (i = 0; i < FAST_CONNS; i++)
		if (fast_conns[i].conn == conn)
			return &fast_conns[i].prepared;
	for (i = 0; i < FAST_CONNS; i++)
		if (!fast_conns[i].conn)
			break;
	if (i == FAST_CONNS)
		i = (size_t)((uintptr_t)conn >> 4) % FAST_CONNS;
	fast_conns[i].conn = conn;
	fast_conns[i].prepared = 0;
	return &fast_conns[i].prepared;
}

static bool fast_prepare(PGconn *conn, const char *name, const char *sql, int n)
{
	PGresult *r = PQprepare(conn, name, sql, n, NULL);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
		  (state && strcmp(state, "42P05") == 0); /* already there */

	PQclear(r);
	return ok;
}

static int run_fast(struct db *db, enum fast_statement id, const char *sql,
		    int n, const char *const *p, PGresult **res_out)
{
	PGconn *conn = db_conn(db);
	unsigned bit = 1u << id, *mask;
	char name[32];
	PGresult *r;

	if (!conn || PQstatus(conn) != CONNECTION_OK ||
	    PQtransactionStatus(conn) != PQTRANS_IDLE)
		return run(db, sql, n, p, res_out);
	mask = fast_mask(conn);
	snprintf(name, sizeof(name), "booking_fast_%d", (int)id);
	if (!(*mask & bit) && fast_prepare(conn, name, sql, n))
		*mask |= bit;
	if (*mask & bit) {
		r = PQexecPrepared(conn, name, n, p, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			*res_out = r;
			return 0;
		}
		PQclear(r);
		*mask &= ~bit;
	}
	return run(db, sql, n, p, res_out);
}

/* Runs sql that returns nothing we read. */
static int run_void(struct db *db, const char *sql, int n, const char *const *p)
{
	return db_exec(db, sql, n, p, NULL);
}

/* ---- accounts copy ---- */

int store_account_upsert(struct db *db, const char *account_id,
			 const char *role, const char *email,
			 const char *first_name, const char *last_name,
			 const char *phone)
{
	static const char sql[] =
	    "INSERT INTO accounts (account_id, role, email, first_name, "
	    "last_name, phone) VALUES ($1, $2, coalesce($3, ''), "
	    "coalesce($4, ''), coalesce($5, ''), coalesce($6, '')) "
	    "ON CONFLICT (account_id) DO UPDATE SET role = EXCLUDED.role, "
	    "email = coalesce($3, accounts.email), "
	    "first_name = coalesce($4, accounts.first_name), "
	    "last_name = coalesce($5, accounts.last_name), "
	    "phone = coalesce($6, accounts.phone), updated_at = now()";
	const char *p[] = {account_id, role,	  email,
			   first_name, last_name, phone};

	return run_void(db, sql, 6, p);
}

int store_account_set_verified(struct db *db, const char *account_id,
			       const char *role, const char *email)
{
	static const char sql[] =
	    "INSERT INTO accounts (account_id, role, email, email_verified) "
	    "VALUES ($1, $2, coalesce($3, ''), true) "
	    "ON CONFLICT (account_id) DO UPDATE SET email_verified = true, "
	    "email = coalesce($3, accounts.email), updated_at = now()";
	const char *p[] = {account_id, role, email};

	return run_void(db, sql, 3, p);
}

int store_account_set_subscription(struct db *db, const char *account_id,
				   const char *role, const char *status,
				   bool listed)
{
	static const char sql[] =
	    "INSERT INTO accounts (account_id, role, suspended) "
	    "VALUES ($1, $2, $3::text IN ('suspended', 'lapsed')) "
	    "ON CONFLICT (account_id) DO UPDATE SET suspended = CASE "
	    "WHEN $3::text IN ('suspended', 'lapsed') THEN true "
	    "WHEN $3::text = 'active' THEN false "
	    "ELSE NOT $4::boolean AND accounts.email_verified END, "
	    "updated_at = now()";
	const char *p[] = {account_id, role, status, listed ? "true" : "false"};

	return run_void(db, sql, 4, p);
}

int store_account_get(struct db *db, const char *account_id,
		      struct store_account *out)
{
	static const char sql[] =
	    "SELECT role, email_verified, suspended FROM accounts "
	    "WHERE account_id = $1";
	const char *p[] = {account_id};
	PGresult *r;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = run_fast(db, FAST_ACCOUNT, sql, 1, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 1) {
		out->exists = true;
		snprintf(out->role, sizeof(out->role), "%s",
			 PQgetvalue(r, 0, 0));
		out->email_verified = val_bool(r, 0, 1);
		out->suspended = val_bool(r, 0, 2);
	}
	PQclear(r);
	return 0;
}

/* ---- offerings ---- */

/* clang-format off */
#define OFFERING_COLS                                                          \
	"id, practitioner_id, title, description, duration_min, "              \
	"price_cents, currency, buffer_before_min, buffer_after_min, "         \
	"location, prepayment_required, active, " MS("created_at") ", "        \
	MS("updated_at")
/* clang-format on */

static Creneau__V1__Offering *row_offering(struct arena *a, const PGresult *r,
					   int row)
{
	Creneau__V1__Offering *o = arena_alloc(a, sizeof(*o));

	if (!o)
		return NULL;
	creneau__v1__offering__init(o);
	o->id = val(a, r, row, 0);
	o->practitioner_id = val(a, r, row, 1);
	o->title = val(a, r, row, 2);
	o->description = val(a, r, row, 3);
	o->duration_min = val_int(r, row, 4);
	o->price_cents = val_i64(r, row, 5);
	o->currency = val(a, r, row, 6);
	o->buffer_before_min = val_int(r, row, 7);
	o->buffer_after_min = val_int(r, row, 8);
	o->location = val(a, r, row, 9);
	o->prepayment_required = val_bool(r, row, 10);
	o->active = val_bool(r, row, 11);
	o->created_at = val_time(a, r, row, 12);
	o->updated_at = val_time(a, r, row, 13);
	if (!o->id || !o->practitioner_id || !o->title || !o->description ||
	    !o->currency || !o->location || !o->created_at || !o->updated_at)
		return NULL;
	return o;
}

/* Decodes one row of r into out, a typed "message **" of the decoder's
 * own kind; false when out of memory. */
typedef bool row_decoder(struct arena *a, const PGresult *r, int row,
			 void *out);

/* Takes r, which must hold exactly one row, and decodes that row into out;
 * missing when it holds none or several (not found for a lookup, internal
 * for a write that must return its row), ERR_NOMEM when decoding fails.
 * r is cleared on every path. */
static int one_row(struct arena *a, PGresult *r, int missing,
		   row_decoder *decode, void *out)
{
	int rc = 0;

	if (PQntuples(r) != 1)
		rc = missing;
	else if (!decode(a, r, 0, out))
		rc = ERR_NOMEM;
	PQclear(r);
	return rc;
}

/* Takes r and decodes its first n rows, each into an element of size
 * bytes (a typed "message *") of a new arena array of n + 1, so that even
 * an empty list has an array; the array in *items_out, and in *n_out the
 * count, 0 on failure. r is cleared on every path. */
static int some_rows(struct arena *a, PGresult *r, int n, row_decoder *decode,
		     size_t size, void **items_out, size_t *n_out)
{
	char *items = arena_alloc(a, (size_t)(n + 1) * size);
	int rc = items ? 0 : ERR_NOMEM;

	for (int i = 0; !rc && i < n; i++)
		if (!decode(a, r, i, items + (size_t)i * size))
			rc = ERR_NOMEM;
	PQclear(r);
	*items_out = items;
	*n_out = rc ? 0 : (size_t)n;
	return rc;
}

static bool offering_into(struct arena *a, const PGresult *r, int row,
			  void *out)
{
	Creneau__V1__Offering **o = out;

	return (*o = row_offering(a, r, row)) != NULL;
}

int store_offerings_list(struct db *db, struct arena *arena,
			 const char *practitioner_id, bool public_only,
			 Creneau__V1__Offering ***items_out, size_t *n_out)
{
	static const char sql[] =
	    "SELECT " OFFERING_COLS " FROM offerings WHERE "
	    "practitioner_id = $1 AND NOT retired AND (active OR NOT $2) "
	    "ORDER BY created_at, id LIMIT 500";
	const char *p[] = {practitioner_id, public_only ? "true" : "false"};
	void *items;
	PGresult *r;
	int rc, n;

	rc = run(db, sql, 2, p, &r);
	if (rc)
		return rc;
	n = PQntuples(r);
	rc = some_rows(arena, r, n, offering_into, sizeof(**items_out), &items,
		       n_out);
	*items_out = items;
	return rc;
}

int store_offering_create(struct db *db, struct arena *arena,
			  const char *practitioner_id,
			  const Creneau__V1__CreateOfferingRequest *req,
			  Creneau__V1__Offering **out)
{
	static const char insert[] =
	    "INSERT INTO offerings (practitioner_id, title, description, "
	    "duration_min, price_cents, currency, buffer_before_min, "
	    "buffer_after_min, location, prepayment_required, active, "
	    "idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
	    "$10, $11, nullif($12, '')) ON CONFLICT (practitioner_id, "
	    "idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
	    "RETURNING " OFFERING_COLS;
	static const char again[] =
	    "SELECT " OFFERING_COLS " FROM offerings WHERE "
	    "practitioner_id = $1 AND idempotency_key = $2";
	const char *p[12] = {
	    practitioner_id,
	    req->title,
	    req->description,
	    i64s(arena, req->duration_min),
	    i64s(arena, req->price_cents),
	    req->currency,
	    i64s(arena, req->buffer_before_min),
	    i64s(arena, req->buffer_after_min),
	    req->location,
	    req->prepayment_required ? "true" : "false",
	    (!req->active_present_case || req->active) ? "true" : "false",
	    req->idempotency_key ? req->idempotency_key : "",
	};
	PGresult *r;
	int rc;

	rc = run(db, insert, 12, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 0) {
		const char *k[] = {practitioner_id, p[11]};

		PQclear(r);
		rc = run(db, again, 2, k, &r);
		if (rc)
			return rc;
	}
	return one_row(arena, r, ERR_NOT_FOUND, offering_into, out);
}

static const char *opt_str(bool present, const char *v)
{
	return present ? v : NULL;
}

static const char *opt_int(struct arena *a, bool present, int64_t v)
{
	return present ? i64s(a, v) : NULL;
}

static const char *opt_bool(bool present, bool v)
{
	return present ? (v ? "true" : "false") : NULL;
}

int store_offering_update(struct db *db, struct arena *arena,
			  const char *practitioner_id,
			  const Creneau__V1__UpdateOfferingRequest *q,
			  Creneau__V1__Offering **out)
{
	static const char sql[] =
	    "UPDATE offerings SET title = coalesce($3, title), "
	    "description = coalesce($4, description), "
	    "duration_min = coalesce($5::int, duration_min), "
	    "price_cents = coalesce($6::bigint, price_cents), "
	    "currency = coalesce($7, currency), "
	    "buffer_before_min = coalesce($8::int, buffer_before_min), "
	    "buffer_after_min = coalesce($9::int, buffer_after_min), "
	    "location = coalesce($10, location), "
	    "prepayment_required = coalesce($11::bool, prepayment_required), "
	    "active = coalesce($12::bool, active), updated_at = now() "
	    "WHERE id = $1 AND practitioner_id = $2 AND NOT retired "
	    "RETURNING " OFFERING_COLS;
	const char *p[12] = {
	    q->id,
	    practitioner_id,
	    opt_str(q->title_present_case, q->title),
	    opt_str(q->description_present_case, q->description),
	    opt_int(arena, q->duration_min_present_case, q->duration_min),
	    opt_int(arena, q->price_cents_present_case, q->price_cents),
	    opt_str(q->currency_present_case, q->currency),
	    opt_int(arena, q->buffer_before_min_present_case,
		    q->buffer_before_min),
	    opt_int(arena, q->buffer_after_min_present_case,
		    q->buffer_after_min),
	    opt_str(q->location_present_case, q->location),
	    opt_bool(q->prepayment_required_present_case,
		     q->prepayment_required),
	    opt_bool(q->active_present_case, q->active),
	};
	PGresult *r;
	int rc;

	rc = run(db, sql, 12, p, &r);
	if (rc)
		return rc;
	return one_row(arena, r, ERR_NOT_FOUND, offering_into, out);
}

int store_offering_delete(struct db *db, const char *practitioner_id,
			  const char *id, bool *retired_out)
{
	static const char retire[] =
	    "UPDATE offerings SET retired = true, active = false, "
	    "updated_at = now() WHERE id = $1 AND practitioner_id = $2 "
	    "AND NOT retired AND EXISTS (SELECT 1 FROM bookings "
	    "WHERE offering_id = $1)";
	static const char drop[] =
	    "DELETE FROM offerings WHERE id = $1 AND practitioner_id = $2 "
	    "AND NOT retired AND NOT EXISTS (SELECT 1 FROM bookings "
	    "WHERE offering_id = $1)";
	const char *p[] = {id, practitioner_id};
	PGresult *r;
	int rc;

	*retired_out = false;
	rc = run(db, retire, 2, p, &r);
	if (rc)
		return rc;
	*retired_out = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	if (*retired_out)
		return 0;
	rc = run(db, drop, 2, p, &r);
	if (rc)
		return rc;
	rc = strcmp(PQcmdTuples(r), "1") == 0 ? 0 : ERR_NOT_FOUND;
	PQclear(r);
	return rc;
}

int store_offering_get(struct db *db, struct arena *arena, const char *id,
		       Creneau__V1__Offering **out)
{
	static const char sql[] = "SELECT " OFFERING_COLS " FROM offerings "
				  "WHERE id = $1 AND NOT retired";
	const char *p[] = {id};
	PGresult *r;
	int rc;

	rc = run_fast(db, FAST_OFFERING, sql, 1, p, &r);
	if (rc)
		return rc;
	return one_row(arena, r, ERR_NOT_FOUND, offering_into, out);
}

/* ---- schedule ---- */

static char *hhmm(struct arena *a, int min)
{
	char text[6];

	avail_format_hhmm(min, text);
	return arena_strdup(a, text);
}

int store_schedule_get(struct db *db, struct arena *arena,
		       const char *practitioner_id, Creneau__V1__Schedule **out)
{
	static const char sql[] =
	    "SELECT s.timezone, s.min_notice_min, s.horizon_days, "
	    "s.slot_step_min, s.cancel_deadline_min, w.weekday, "
	    "w.start_min, w.end_min FROM schedules s LEFT JOIN weekly_hours "
	    "w USING (practitioner_id) WHERE s.practitioner_id = $1 "
	    "ORDER BY w.weekday, w.start_min";
	const char *p[] = {practitioner_id};
	Creneau__V1__Schedule *s;
	PGresult *r;
	int rc, n;

	rc = run(db, sql, 1, p, &r);
	if (rc)
		return rc;
	n = PQntuples(r);
	s = arena_alloc(arena, sizeof(*s));
	if (!s)
		goto out_nomem;
	creneau__v1__schedule__init(s);
	s->min_notice_min_present_case =
	    CRENEAU__V1__SCHEDULE__MIN_NOTICE_MIN_PRESENT_MIN_NOTICE_MIN;
	s->horizon_days_present_case =
	    CRENEAU__V1__SCHEDULE__HORIZON_DAYS_PRESENT_HORIZON_DAYS;
	s->slot_step_min_present_case =
	    CRENEAU__V1__SCHEDULE__SLOT_STEP_MIN_PRESENT_SLOT_STEP_MIN;
	s->cancel_deadline_min_present_case =
	    CRENEAU__V1__SCHEDULE__CANCEL_DEADLINE_MIN_PRESENT_CANCEL_DEADLINE_MIN;
	s->timezone = DEFAULT_TIMEZONE;
	s->min_notice_min = DEFAULT_NOTICE;
	s->horizon_days = DEFAULT_HORIZON;
	s->slot_step_min = DEFAULT_STEP;
	s->cancel_deadline_min = DEFAULT_DEADLINE;
	s->weekly = arena_alloc(arena, (size_t)(n + 1) * sizeof(*s->weekly));
	if (!s->weekly)
		goto out_nomem;
	if (n > 0) {
		s->timezone = val(arena, r, 0, 0);
		s->min_notice_min = val_int(r, 0, 1);
		s->horizon_days = val_int(r, 0, 2);
		s->slot_step_min = val_int(r, 0, 3);
		s->cancel_deadline_min = val_int(r, 0, 4);
	}
	for (int i = 0; i < n; i++) {
		Creneau__V1__WeeklyInterval *w;

		if (is_null(r, i, 5))
			continue;
		w = arena_alloc(arena, sizeof(*w));
		if (!w)
			goto out_nomem;
		creneau__v1__weekly_interval__init(w);
		w->weekday = val_int(r, i, 5);
		w->start = hhmm(arena, val_int(r, i, 6));
		w->end = hhmm(arena, val_int(r, i, 7));
		if (!w->start || !w->end)
			goto out_nomem;
		s->weekly[s->n_weekly++] = w;
	}
	PQclear(r);
	*out = s;
	return 0;
out_nomem:
	PQclear(r);
	return ERR_NOMEM;
}

/* "{1,2,3}" from n ints */
static char *int_array(struct arena *a, const int *v, size_t n, size_t stride)
{
	char *text = arena_alloc(a, n * 8 + 3), *p = text;

	if (!text)
		return NULL;
	*p++ = '{';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%d", i ? "," : "",
			     *(const int *)((const char *)v + i * stride));
	*p++ = '}';
	*p = 0;
	return text;
}

int store_schedule_put(struct db *db, const char *practitioner_id,
		       const char *timezone, int min_notice_min,
		       int horizon_days, int slot_step_min,
		       int cancel_deadline_min,
		       const struct avail_weekly *weekly, size_t n_weekly)
{
	static const char upsert[] =
	    "INSERT INTO schedules (practitioner_id, timezone, "
	    "min_notice_min, horizon_days, slot_step_min, "
	    "cancel_deadline_min) VALUES ($1, $2, $3, $4, $5, $6) "
	    "ON CONFLICT (practitioner_id) DO UPDATE SET timezone = $2, "
	    "min_notice_min = $3, horizon_days = $4, slot_step_min = $5, "
	    "cancel_deadline_min = $6, updated_at = now()";
	static const char clear[] =
	    "DELETE FROM weekly_hours WHERE practitioner_id = $1";
	static const char insert[] =
	    "INSERT INTO weekly_hours (practitioner_id, weekday, start_min, "
	    "end_min) SELECT $1, unnest($2::smallint[]), "
	    "unnest($3::smallint[]), unnest($4::smallint[])";
	struct arena *a = arena_new(0);
	const char *p[6], *w[4];
	int rc = ERR_NOMEM;

	if (!a)
		return ERR_NOMEM;
	p[0] = practitioner_id;
	p[1] = timezone;
	p[2] = i64s(a, min_notice_min);
	p[3] = i64s(a, horizon_days);
	p[4] = i64s(a, slot_step_min);
	p[5] = i64s(a, cancel_deadline_min);
	w[0] = practitioner_id;
	w[1] = w[2] = w[3] = "{}";
	if (n_weekly) {
		w[1] =
		    int_array(a, &weekly[0].weekday, n_weekly, sizeof(*weekly));
		w[2] = int_array(a, &weekly[0].start_min, n_weekly,
				 sizeof(*weekly));
		w[3] =
		    int_array(a, &weekly[0].end_min, n_weekly, sizeof(*weekly));
	}
	if (!p[2] || !p[3] || !p[4] || !p[5] || !w[1] || !w[2] || !w[3])
		goto out_free_arena;
	rc = run_void(db, upsert, 6, p);
	if (!rc)
		rc = run_void(db, clear, 1, p);
	if (!rc && n_weekly)
		rc = run_void(db, insert, 4, w);
out_free_arena:
	arena_free(a);
	return rc;
}

int store_timezone_is_known(struct db *db, const char *name, bool *known_out)
{
	static const char sql[] =
	    "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)";
	const char *p[] = {name};
	PGresult *r;
	int rc;

	rc = run(db, sql, 1, p, &r);
	if (rc)
		return rc;
	*known_out = val_bool(r, 0, 0);
	PQclear(r);
	return 0;
}

#define OVERRIDE_COLS                                                          \
	"id, day::text, closed, array_to_string(starts, ','), "                \
	"array_to_string(ends, ',')"

/* "540,600" (up to the end or a '/') into out */
static int parse_minutes(const char *text, int *out, size_t cap, size_t *n)
{
	char *end;

	*n = 0;
	while (*text && *text != '/' && *n < cap) {
		out[(*n)++] = (int)strtol(text, &end, 10);
		if (end == text)
			return ERR_INTERNAL;
		text = *end == ',' ? end + 1 : end;
	}
	return 0;
}

#define MAX_OVERRIDE_INTERVALS 24

static Creneau__V1__ScheduleOverride *row_override(struct arena *a,
						   const PGresult *r, int row)
{
	Creneau__V1__ScheduleOverride *o = arena_alloc(a, sizeof(*o));
	int starts[MAX_OVERRIDE_INTERVALS], ends[MAX_OVERRIDE_INTERVALS];
	size_t ns, ne;

	if (!o)
		return NULL;
	creneau__v1__schedule_override__init(o);
	o->id = val(a, r, row, 0);
	o->date = val(a, r, row, 1);
	o->closed = val_bool(r, row, 2);
	if (parse_minutes(PQgetvalue(r, row, 3), starts, MAX_OVERRIDE_INTERVALS,
			  &ns) ||
	    parse_minutes(PQgetvalue(r, row, 4), ends, MAX_OVERRIDE_INTERVALS,
			  &ne) ||
	    ns != ne)
		return NULL;
	o->intervals = arena_alloc(a, (ns + 1) * sizeof(*o->intervals));
	if (!o->intervals || !o->id || !o->date)
		return NULL;
	for (size_t i = 0; i < ns; i++) {
		Creneau__V1__TimeInterval *t = arena_alloc(a, sizeof(*t));

		if (!t)
			return NULL;
		creneau__v1__time_interval__init(t);
		t->start = hhmm(a, starts[i]);
		t->end = hhmm(a, ends[i]);
		if (!t->start || !t->end)
			return NULL;
		o->intervals[o->n_intervals++] = t;
	}
	return o;
}

static bool override_into(struct arena *a, const PGresult *r, int row,
			  void *out)
{
	Creneau__V1__ScheduleOverride **o = out;

	return (*o = row_override(a, r, row)) != NULL;
}

int store_overrides_list(struct db *db, struct arena *arena,
			 const char *practitioner_id, const char *from_date,
			 const char *to_date,
			 Creneau__V1__ScheduleOverride ***items_out,
			 size_t *n_out)
{
	static const char sql[] =
	    "SELECT " OVERRIDE_COLS " FROM schedule_overrides "
	    "WHERE practitioner_id = $1 AND ($2::date IS NULL OR day >= "
	    "$2::date) AND ($3::date IS NULL OR day <= $3::date) "
	    "ORDER BY day LIMIT 1000";
	const char *p[] = {practitioner_id, from_date, to_date};
	void *items;
	PGresult *r;
	int rc, n;

	rc = run(db, sql, 3, p, &r);
	if (rc)
		return rc;
	n = PQntuples(r);
	rc = some_rows(arena, r, n, override_into, sizeof(**items_out), &items,
		       n_out);
	*items_out = items;
	return rc;
}

int store_override_put(struct db *db, struct arena *arena,
		       const char *practitioner_id, const char *date,
		       bool closed, const int *starts, const int *ends,
		       size_t n, Creneau__V1__ScheduleOverride **out)
{
	static const char sql[] =
	    "INSERT INTO schedule_overrides (practitioner_id, day, closed, "
	    "starts, ends) VALUES ($1, $2::date, $3, $4::smallint[], "
	    "$5::smallint[]) ON CONFLICT (practitioner_id, day) DO UPDATE "
	    "SET closed = $3, starts = $4::smallint[], "
	    "ends = $5::smallint[], created_at = now() "
	    "RETURNING " OVERRIDE_COLS;
	const char *p[5] = {practitioner_id, date, closed ? "true" : "false",
			    int_array(arena, starts, n, sizeof(int)),
			    int_array(arena, ends, n, sizeof(int))};
	PGresult *r;
	int rc = 0;

	if (!p[3] || !p[4])
		return ERR_NOMEM;
	rc = run(db, sql, 5, p, &r);
	if (rc)
		return rc;
	return one_row(arena, r, ERR_INTERNAL, override_into, out);
}

int store_override_delete(struct db *db, const char *practitioner_id,
			  const char *id)
{
	static const char sql[] = "DELETE FROM schedule_overrides "
				  "WHERE id = $1 AND practitioner_id = $2";
	const char *p[] = {id, practitioner_id};
	PGresult *r;
	int rc;

	rc = run(db, sql, 2, p, &r);
	if (rc)
		return rc;
	rc = strcmp(PQcmdTuples(r), "1") == 0 ? 0 : ERR_NOT_FOUND;
	PQclear(r);
	return rc;
}

/* ---- time zones ---- */

int store_zone_spans(struct db *db, struct arena *arena, const char *zone,
		     int64_t from_ms, int64_t to_ms,
		     struct avail_zone_span **out, size_t *n_out)
{
	/* The offset at each UTC midnight; where it changes, the first
	 * minute of the new offset (zones change at most once a day). */
	/* clang-format off */
	static const char sql[] =
		"WITH d AS (SELECT t, extract(epoch FROM (t AT TIME ZONE $1) - "
		"(t AT TIME ZONE 'UTC'))::int AS off FROM generate_series("
		TS("$2") ", " TS("$3") " + interval '1 day', interval '1 day') "
		"AS t), c AS (SELECT t, off, lag(off) OVER (ORDER BY t) AS prev "
		"FROM d) "
		"SELECT $2::bigint, (SELECT off FROM d ORDER BY t LIMIT 1) "
		"UNION ALL SELECT (SELECT " MS("m") " FROM generate_series("
		"c.t - interval '1 day', c.t, interval '1 minute') AS m WHERE "
		"extract(epoch FROM (m AT TIME ZONE $1) - (m AT TIME ZONE "
		"'UTC'))::int = c.off ORDER BY m LIMIT 1), c.off FROM c "
		"WHERE c.prev <> c.off ORDER BY 1";
	/* clang-format on */
	const char *p[3] = {zone, i64s(arena, from_ms), i64s(arena, to_ms)};
	struct avail_zone_span *v;
	PGresult *r;
	int rc, n;

	if (!p[1] || !p[2])
		return ERR_NOMEM;
	rc = run(db, sql, 3, p, &r);
	if (rc)
		return rc == ERR_INTERNAL ? ERR_INVALID : rc;
	n = PQntuples(r);
	v = arena_alloc(arena, (size_t)(n + 1) * sizeof(*v));
	if (!v) {
		PQclear(r);
		return ERR_NOMEM;
	}
	for (int i = 0; i < n; i++) {
		v[i].from_ms = val_i64(r, i, 0);
		v[i].offset_s = val_int(r, i, 1);
	}
	PQclear(r);
	*out = v;
	*n_out = (size_t)n;
	return n ? 0 : ERR_INVALID;
}

/*
 * Zone spans change only with the tz database: each zone's spans over a
 * few years around now are kept for the life of the process.
 */
#define ZONE_CACHE 32
#define ZONE_SPANS 64

struct zone_entry {
	char name[64];
	int64_t from_ms, to_ms;
	struct avail_zone_span spans[ZONE_SPANS];
	size_t n;
};

static pthread_mutex_t zone_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zone_entry zone_cache[ZONE_CACHE];
static size_t zone_cache_n;

static bool zone_cached(const char *name, int64_t from_ms, int64_t to_ms,
			struct arena *arena, struct avail_zone_span **out,
			size_t *n_out)
{
	bool hit = false;

	pthread_mutex_lock(&zone_lock);
	for (size_t i = 0; i < zone_cache_n && !hit; i++) {
		struct zone_entry *e = &zone_cache[i];

		if (strcmp(e->name, name) || from_ms < e->from_ms ||
		    to_ms > e->to_ms)
			continue;
		*out = arena_alloc(arena, e->n * sizeof(**out));
		if (*out) {
			memcpy(*out, e->spans, e->n * sizeof(**out));
			*n_out = e->n;
			hit = true;
		}
	}
	pthread_mutex_unlock(&zone_lock);
	return hit;
}

static void zone_remember(const char *name, int64_t from_ms, int64_t to_ms,
			  const struct avail_zone_span *v, size_t n)
{
	struct zone_entry *e;

	if (n > ZONE_SPANS || strlen(name) >= sizeof(e->name))
		return;
	pthread_mutex_lock(&zone_lock);
	e = &zone_cache[zone_cache_n < ZONE_CACHE ? zone_cache_n++
						  : (size_t)(from_ms & 31)];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->from_ms = from_ms;
	e->to_ms = to_ms;
	memcpy(e->spans, v, n * sizeof(*v));
	e->n = n;
	pthread_mutex_unlock(&zone_lock);
}

static int zone_load(struct db *db, struct arena *arena, const char *name,
		     int64_t from_ms, int64_t to_ms,
		     struct avail_zone_span **out, size_t *n_out)
{
	int64_t now = instant_now_ms();
	int64_t lo = now - 400 * AVAIL_DAY_MS, hi = now + 1200 * AVAIL_DAY_MS;
	int rc;

	if (zone_cached(name, from_ms, to_ms, arena, out, n_out))
		return 0;
	if (from_ms < lo)
		lo = from_ms;
	if (to_ms > hi)
		hi = to_ms;
	rc = store_zone_spans(db, arena, name, lo, hi, out, n_out);
	if (!rc)
		zone_remember(name, lo, hi, *out, *n_out);
	return rc;
}

/* ---- availability inputs ---- */

/* One row of the availability query, by its kind. */
static int avail_row(const PGresult *r, int i, struct store_avail *out,
		     struct arena *arena)
{
	int starts[MAX_OVERRIDE_INTERVALS], ends[MAX_OVERRIDE_INTERVALS];
	const char *text;
	size_t ns = 0, ne = 0;
	int32_t day;

	switch (PQgetvalue(r, i, 0)[0]) {
	case 's':
		out->min_notice_min = val_int(r, i, 1);
		out->horizon_days = val_int(r, i, 2);
		out->slot_step_min = val_int(r, i, 3);
		out->cancel_deadline_min = val_int(r, i, 4);
		out->timezone = val(arena, r, i, 5);
		return out->timezone ? 0 : ERR_NOMEM;
	case 'w':
		out->weekly[out->n_weekly++] = (struct avail_weekly){
		    val_int(r, i, 1), val_int(r, i, 2), val_int(r, i, 3)};
		return 0;
	case 'f':
		out->offering_found = true;
		out->duration_min = val_int(r, i, 1);
		out->buffer_before_min = val_int(r, i, 2);
		out->buffer_after_min = val_int(r, i, 3);
		out->offering_active = val_int(r, i, 4) != 0;
		return 0;
	case 'a':
		out->practitioner_unbookable = val_int(r, i, 1) != 0;
		return 0;
	case 'b':
	case 'x':
		out->busy[out->n_busy++] =
		    (struct avail_interval){val_i64(r, i, 1), val_i64(r, i, 2)};
		return 0;
	case 'o':
		break;
	default:
		return ERR_INTERNAL;
	}
	day = (int32_t)val_i64(r, i, 1);
	if (val_int(r, i, 2)) {
		out->overrides[out->n_overrides++] =
		    (struct avail_override){day, true, 0, 0};
		return 0;
	}
	/* "540,600/660,720": starts, then ends */
	text = PQgetvalue(r, i, 5);
	if (parse_minutes(text, starts, MAX_OVERRIDE_INTERVALS, &ns) ||
	    !strchr(text, '/') ||
	    parse_minutes(strchr(text, '/') + 1, ends, MAX_OVERRIDE_INTERVALS,
			  &ne) ||
	    ns != ne)
		return ERR_INTERNAL;
	for (size_t k = 0; k < ns; k++)
		out->overrides[out->n_overrides++] =
		    (struct avail_override){day, false, starts[k], ends[k]};
	return 0;
}

int store_avail_load(struct db *db, struct arena *arena,
		     const char *practitioner_id, const char *offering_id,
		     int64_t from_ms, int64_t to_ms,
		     const char *exclude_booking_id, struct store_avail *out)
{
	/* Everything in one round trip: the schedule (s), its weekly hours
	 * (w), the offering (f), whether the practitioner is bookable (a), the
	 * overrides of the local days around the window (o), and the busy
	 * intervals a day around it: live bookings with their buffers (b)
	 * and external ones (x). */
	/* clang-format off */
	static const char sql[] =
		"SELECT 's', min_notice_min::bigint, horizon_days::bigint, "
		"slot_step_min::bigint, cancel_deadline_min::bigint, timezone "
		"FROM schedules WHERE practitioner_id = $1 "
		"UNION ALL SELECT 'w', weekday, start_min, end_min, 0, '' "
		"FROM weekly_hours WHERE practitioner_id = $1 "
		"UNION ALL SELECT 'f', duration_min, buffer_before_min, "
		"buffer_after_min, active::int, '' FROM offerings WHERE "
		"id = $5::uuid AND practitioner_id = $1 AND NOT retired "
		"UNION ALL SELECT 'a', (suspended OR NOT email_verified OR "
		"role <> 'practitioner')::int, 0, 0, 0, '' FROM "
		"accounts WHERE account_id = $1 "
		"UNION ALL SELECT 'o', day - date '1970-01-01', closed::int, 0, "
		"0, array_to_string(starts, ',') || '/' || "
		"array_to_string(ends, ',') FROM schedule_overrides WHERE "
		"practitioner_id = $1 AND day BETWEEN (" TS("$2")
		" AT TIME ZONE 'UTC')::date - 3 AND (" TS("$3")
		" AT TIME ZONE 'UTC')::date + 3 "
		"UNION ALL SELECT 'b', " MS("lower(blocked)") ", "
		MS("upper(blocked)") ", 0, 0, '' FROM bookings "
		"WHERE practitioner_id = $1 AND status = 'confirmed' AND "
		"blocked && tstzrange(" TS("$2") " - interval '1 day', "
		TS("$3") " + interval '1 day') AND ($4::uuid IS NULL OR "
		"id <> $4::uuid) "
		"UNION ALL SELECT 'x', " MS("lower(during)") ", "
		MS("upper(during)") ", 0, 0, '' FROM busy_intervals "
		"WHERE practitioner_id = $1 AND during && tstzrange("
		TS("$2") " - interval '1 day', " TS("$3")
		" + interval '1 day')";
	/* clang-format on */
	const char *p[5] = {practitioner_id, i64s(arena, from_ms),
			    i64s(arena, to_ms), exclude_booking_id,
			    offering_id};
	PGresult *r;
	int rc = 0, n;

	memset(out, 0, sizeof(*out));
	out->timezone = DEFAULT_TIMEZONE;
	out->min_notice_min = DEFAULT_NOTICE;
	out->horizon_days = DEFAULT_HORIZON;
	out->slot_step_min = DEFAULT_STEP;
	out->cancel_deadline_min = DEFAULT_DEADLINE;
	if (!p[1] || !p[2])
		return ERR_NOMEM;
	rc = run_fast(db, FAST_AVAIL, sql, 5, p, &r);
	if (rc)
		return rc;
	n = PQntuples(r);
	out->weekly =
	    arena_alloc(arena, (size_t)(n + 1) * sizeof(*out->weekly));
	out->busy = arena_alloc(arena, (size_t)(n + 1) * sizeof(*out->busy));
	out->overrides =
	    arena_alloc(arena, (size_t)(n + 1) * MAX_OVERRIDE_INTERVALS *
				   sizeof(*out->overrides));
	if (!out->weekly || !out->busy || !out->overrides)
		rc = ERR_NOMEM;
	for (int i = 0; !rc && i < n; i++)
		rc = avail_row(r, i, out, arena);
	PQclear(r);
	if (!rc)
		rc = zone_load(
		    db, arena, out->timezone, from_ms - 4 * AVAIL_DAY_MS,
		    to_ms + 4 * AVAIL_DAY_MS, &out->zone, &out->n_zone);
	return rc;
}

/* ---- bookings ---- */

/* clang-format off */
#define BOOKING_COLS                                                           \
	"b.id, b.status, " MS("b.start_at") ", " MS("b.end_at") ", "           \
	"b.payment_status, b.practitioner_id, coalesce(b.client_id::text, "    \
	"''), b.offering_id, b.offering_title, b.duration_min, b.location, "   \
	"b.price_cents, b.currency, b.note, coalesce(b.cancelled_by, ''), "    \
	"b.cancel_reason, " MS("b.cancelled_at") ", " MS("b.created_at")       \
	", coalesce(s.timezone, '" DEFAULT_TIMEZONE "'), c.id, "              \
	"c.first_name, c.last_name, c.email, c.phone, "                        \
	"coalesce(s.cancel_deadline_min, 1440), b.buffer_before_min, "         \
	"b.buffer_after_min"
/* clang-format on */

#define BOOKING_FROM                                                           \
	" FROM bookings b LEFT JOIN clients c ON c.id = b.client_record_id "   \
	"LEFT JOIN schedules s ON s.practitioner_id = b.practitioner_id "

static Creneau__V1__BookingClient *row_client_of(struct arena *a,
						 const PGresult *r, int row)
{
	Creneau__V1__BookingClient *c = arena_alloc(a, sizeof(*c));

	if (!c)
		return NULL;
	creneau__v1__booking_client__init(c);
	c->id = val(a, r, row, 19);
	c->first_name = val(a, r, row, 20);
	c->last_name = val(a, r, row, 21);
	c->email = val(a, r, row, 22);
	c->phone = val(a, r, row, 23);
	if (!c->id || !c->first_name || !c->last_name || !c->email || !c->phone)
		return NULL;
	return c;
}

static Creneau__V1__Booking *row_booking(struct arena *a, const PGresult *r,
					 int row,
					 struct store_booking_meta *meta)
{
	Creneau__V1__Booking *b = arena_alloc(a, sizeof(*b));

	if (!b)
		return NULL;
	creneau__v1__booking__init(b);
	b->id = val(a, r, row, 0);
	b->status = val(a, r, row, 1);
	b->start = val_time(a, r, row, 2);
	b->end = val_time(a, r, row, 3);
	b->payment_status = val(a, r, row, 4);
	b->practitioner_id = val(a, r, row, 5);
	b->client_id = val(a, r, row, 6);
	b->offering_id = val(a, r, row, 7);
	b->offering_title = val(a, r, row, 8);
	b->duration_min = val_int(r, row, 9);
	b->location = val(a, r, row, 10);
	b->price_cents = val_i64(r, row, 11);
	b->currency = val(a, r, row, 12);
	b->note = val(a, r, row, 13);
	b->cancelled_by = val(a, r, row, 14);
	b->cancel_reason = val(a, r, row, 15);
	b->cancelled_at = val_time(a, r, row, 16);
	b->created_at = val_time(a, r, row, 17);
	b->timezone = val(a, r, row, 18);
	if (!is_null(r, row, 19) && !(b->client = row_client_of(a, r, row)))
		return NULL;
	if (!b->id || !b->status || !b->start || !b->end ||
	    !b->payment_status || !b->practitioner_id || !b->client_id ||
	    !b->offering_id || !b->offering_title || !b->location ||
	    !b->currency || !b->note || !b->cancelled_by || !b->cancel_reason ||
	    !b->cancelled_at || !b->created_at || !b->timezone)
		return NULL;
	if (meta) {
		meta->start_ms = val_i64(r, row, 2);
		meta->end_ms = val_i64(r, row, 3);
		meta->cancel_deadline_min = val_int(r, row, 24);
		meta->buffer_before_min = val_int(r, row, 25);
		meta->buffer_after_min = val_int(r, row, 26);
		meta->has_client_record = !is_null(r, row, 19);
		snprintf(meta->client_id, sizeof(meta->client_id), "%s",
			 b->client_id);
	}
	return b;
}

/* Where one_booking's decoder puts the booking and, when asked, its meta. */
struct booking_out {
	Creneau__V1__Booking **booking;
	struct store_booking_meta *meta;
};

static bool booking_into(struct arena *a, const PGresult *r, int row, void *out)
{
	struct booking_out *o = out;

	return (*o->booking = row_booking(a, r, row, o->meta)) != NULL;
}

static bool listed_booking_into(struct arena *a, const PGresult *r, int row,
				void *out)
{
	Creneau__V1__Booking **b = out;

	return (*b = row_booking(a, r, row, NULL)) != NULL;
}

static int one_booking(struct arena *a, PGresult *r, Creneau__V1__Booking **out,
		       struct store_booking_meta *meta)
{
	struct booking_out o = {out, meta};

	return one_row(a, r, ERR_NOT_FOUND, booking_into, &o);
}

int store_booking_by_key(struct db *db, struct arena *arena,
			 const char *client_id, const char *key,
			 Creneau__V1__Booking **out, char **hash_out)
{
	static const char sql[] =
	    "SELECT " BOOKING_COLS ", b.request_hash" BOOKING_FROM
	    "WHERE b.client_id = $1 AND b.idempotency_key = $2";
	const char *p[] = {client_id, key};
	PGresult *r;
	int rc;

	rc = run_fast(db, FAST_BY_KEY, sql, 2, p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 1) {
		*hash_out = val(arena, r, 0, 27);
		if (!*hash_out) {
			PQclear(r);
			return ERR_NOMEM;
		}
	}
	return one_booking(arena, r, out, NULL);
}

int store_booking_insert(struct db *db, struct arena *arena,
			 const struct store_new_booking *nb,
			 Creneau__V1__Booking **out)
{
	/* clang-format off */
	static const char sql[] =
		"WITH rec AS (INSERT INTO clients (practitioner_id, account_id, "
		"first_name, last_name, email, phone) SELECT $1, $2, "
		"coalesce(a.first_name, ''), coalesce(a.last_name, ''), "
		"coalesce(a.email, ''), coalesce(a.phone, '') FROM (SELECT 1) "
		"AS one LEFT JOIN accounts a ON a.account_id = $2 "
		"ON CONFLICT (practitioner_id, account_id) DO UPDATE SET "
		"updated_at = clients.updated_at RETURNING id) "
		"INSERT INTO bookings (practitioner_id, client_id, "
		"client_record_id, offering_id, offering_title, duration_min, "
		"location, price_cents, currency, buffer_before_min, "
		"buffer_after_min, start_at, end_at, blocked, note, "
		"idempotency_key, request_hash) SELECT $1, $2, rec.id, $3, $4, "
		"$5, $6, $7, $8, $9, $10, " TS("$11") ", " TS("$12") ", "
		"tstzrange(" TS("$13") ", " TS("$14") "), $15, $16, $17 "
		"FROM rec RETURNING id";
	/* clang-format on */
	const Creneau__V1__Offering *o = nb->offering;
	int64_t end_ms = nb->start_ms + o->duration_min * AVAIL_MINUTE_MS;
	const char *p[17] = {
	    nb->practitioner_id,
	    nb->client_id,
	    o->id,
	    o->title,
	    i64s(arena, o->duration_min),
	    o->location,
	    i64s(arena, o->price_cents),
	    o->currency,
	    i64s(arena, o->buffer_before_min),
	    i64s(arena, o->buffer_after_min),
	    i64s(arena, nb->start_ms),
	    i64s(arena, end_ms),
	    i64s(arena, nb->start_ms - o->buffer_before_min * AVAIL_MINUTE_MS),
	    i64s(arena, end_ms + o->buffer_after_min * AVAIL_MINUTE_MS),
	    nb->note ? nb->note : "",
	    nb->idempotency_key,
	    nb->request_hash,
	};
	char *id;
	PGresult *r;
	int rc;

	for (int i = 4; i < 14; i++)
		if (!p[i])
			return ERR_NOMEM;
	rc = run(db, sql, 17, p, &r);
	if (rc)
		return rc;
	id = PQntuples(r) == 1 ? val(arena, r, 0, 0) : NULL;
	PQclear(r);
	if (!id)
		return ERR_INTERNAL;
	return store_booking_get(db, arena, id, false, out, NULL);
}

int store_booking_get(struct db *db, struct arena *arena, const char *id,
		      bool lock, Creneau__V1__Booking **out,
		      struct store_booking_meta *meta_out)
{
	static const char sql[] =
	    "SELECT " BOOKING_COLS BOOKING_FROM "WHERE b.id = $1";
	static const char sql_lock[] = "SELECT " BOOKING_COLS BOOKING_FROM
				       "WHERE b.id = $1 FOR UPDATE OF b";
	const char *p[] = {id};
	PGresult *r;
	int rc;

	rc = run(db, lock ? sql_lock : sql, 1, p, &r);
	if (rc)
		return rc;
	return one_booking(arena, r, out, meta_out);
}

static int update_one(struct db *db, const char *sql, int n,
		      const char *const *p)
{
	PGresult *r;
	int rc;

	rc = run(db, sql, n, p, &r);
	if (rc)
		return rc;
	rc = strcmp(PQcmdTuples(r), "1") == 0 ? 0 : ERR_NOT_FOUND;
	PQclear(r);
	return rc;
}

int store_booking_cancel(struct db *db, const char *id, const char *by,
			 const char *reason)
{
	static const char sql[] =
	    "UPDATE bookings SET status = 'cancelled', cancelled_by = $2, "
	    "cancel_reason = $3, cancelled_at = now(), updated_at = now() "
	    "WHERE id = $1 AND status = 'confirmed'";
	const char *p[] = {id, by, reason ? reason : ""};

	return update_one(db, sql, 3, p);
}

int store_booking_move(struct db *db, const char *id, int64_t start_ms,
		       int64_t end_ms)
{
	/* clang-format off */
	static const char sql[] =
		"UPDATE bookings SET start_at = " TS("$2") ", end_at = "
		TS("$3") ", blocked = tstzrange(" TS("$2")
		" - buffer_before_min * interval '1 minute', " TS("$3")
		" + buffer_after_min * interval '1 minute'), updated_at = now() "
		"WHERE id = $1 AND status = 'confirmed'";
	/* clang-format on */
	char s[24], e[24];
	const char *p[] = {id, s, e};

	snprintf(s, sizeof(s), "%lld", (long long)start_ms);
	snprintf(e, sizeof(e), "%lld", (long long)end_ms);
	return update_one(db, sql, 3, p);
}

int store_booking_set_status(struct db *db, const char *id, const char *status)
{
	static const char sql[] =
	    "UPDATE bookings SET status = $2, updated_at = now() "
	    "WHERE id = $1 AND status = 'confirmed'";
	const char *p[] = {id, status};

	return update_one(db, sql, 2, p);
}

int store_bookings_list(struct db *db, struct arena *arena,
			const struct store_booking_filter *f,
			Creneau__V1__Booking ***items_out, size_t *n_out,
			bool *more_out)
{
/* clang-format off */
#define LIST_WHERE                                                             \
	"AND ($2::bigint IS NULL OR b.start_at >= " TS("$2") ") "              \
	"AND ($3::bigint IS NULL OR b.start_at < " TS("$3") ") "               \
	"AND ($4::text IS NULL OR b.status = $4) AND ($5::bigint IS NULL "     \
	"OR (b.start_at, b.id) > (" TS("$5") ", $6::uuid)) "                   \
	"ORDER BY b.start_at, b.id LIMIT $7"
	/* clang-format on */
	static const char as_practitioner[] =
	    "SELECT " BOOKING_COLS BOOKING_FROM
	    "WHERE b.practitioner_id = $1 " LIST_WHERE;
	static const char as_client[] = "SELECT " BOOKING_COLS BOOKING_FROM
					"WHERE b.client_id = $1 " LIST_WHERE;
#undef LIST_WHERE
	const char *p[7] = {
	    f->account_id,
	    f->from_ms ? i64s(arena, f->from_ms) : NULL,
	    f->to_ms ? i64s(arena, f->to_ms) : NULL,
	    f->status,
	    f->has_cursor ? i64s(arena, f->cursor_start_ms) : NULL,
	    f->has_cursor ? f->cursor_id : NULL,
	    i64s(arena, (int64_t)f->limit + 1),
	};
	void *items;
	PGresult *r;
	int rc, n;

	if (!p[6])
		return ERR_NOMEM;
	rc =
	    run(db, f->as_practitioner ? as_practitioner : as_client, 7, p, &r);
	if (rc)
		return rc;
	n = PQntuples(r);
	*more_out = n > (int)f->limit;
	if (*more_out)
		n = (int)f->limit;
	rc = some_rows(arena, r, n, listed_booking_into, sizeof(**items_out),
		       &items, n_out);
	*items_out = items;
	return rc;
}

/* ---- the client file ---- */

#define CLIENT_COLS                                                            \
	"id, coalesce(account_id::text, ''), first_name, last_name, email, "   \
	"phone, notes, " MS("created_at") ", " MS("updated_at")

static Creneau__V1__ClientRecord *row_client(struct arena *a, const PGresult *r,
					     int row)
{
	Creneau__V1__ClientRecord *c = arena_alloc(a, sizeof(*c));

	if (!c)
		return NULL;
	creneau__v1__client_record__init(c);
	c->id = val(a, r, row, 0);
	c->account_id = val(a, r, row, 1);
	c->first_name = val(a, r, row, 2);
	c->last_name = val(a, r, row, 3);
	c->email = val(a, r, row, 4);
	c->phone = val(a, r, row, 5);
	c->notes = val(a, r, row, 6);
	c->created_at = val_time(a, r, row, 7);
	c->updated_at = val_time(a, r, row, 8);
	if (!c->id || !c->account_id || !c->first_name || !c->last_name ||
	    !c->email || !c->phone || !c->notes || !c->created_at ||
	    !c->updated_at)
		return NULL;
	return c;
}

static bool client_into(struct arena *a, const PGresult *r, int row, void *out)
{
	Creneau__V1__ClientRecord **c = out;

	return (*c = row_client(a, r, row)) != NULL;
}

int store_clients_list(struct db *db, struct arena *arena,
		       const char *practitioner_id, unsigned limit,
		       const char *after_id, Creneau__V1__ClientRecord ***out,
		       size_t *n_out, bool *more_out)
{
	static const char sql[] =
	    "SELECT " CLIENT_COLS " FROM clients WHERE practitioner_id = $1 "
	    "AND ($2::uuid IS NULL OR (created_at, id) > (SELECT "
	    "created_at, id FROM clients WHERE id = $2::uuid)) "
	    "ORDER BY created_at, id LIMIT $3";
	const char *p[3] = {practitioner_id, after_id,
			    i64s(arena, (int64_t)limit + 1)};
	void *items;
	PGresult *r;
	int rc, n;

	if (!p[2])
		return ERR_NOMEM;
	rc = run(db, sql, 3, p, &r);
	if (rc)
		return rc;
	n = PQntuples(r);
	*more_out = n > (int)limit;
	if (*more_out)
		n = (int)limit;
	rc = some_rows(arena, r, n, client_into, sizeof(**out), &items, n_out);
	*out = items;
	return rc;
}

int store_client_get(struct db *db, struct arena *arena,
		     const char *practitioner_id, const char *id,
		     Creneau__V1__ClientRecord **out)
{
	static const char sql[] = "SELECT " CLIENT_COLS " FROM clients "
				  "WHERE id = $1 AND practitioner_id = $2";
	const char *p[] = {id, practitioner_id};
	PGresult *r;
	int rc;

	rc = run(db, sql, 2, p, &r);
	if (rc)
		return rc;
	return one_row(arena, r, ERR_NOT_FOUND, client_into, out);
}

int store_client_update(struct db *db, struct arena *arena,
			const char *practitioner_id,
			const Creneau__V1__UpdateClientRequest *q,
			Creneau__V1__ClientRecord **out)
{
	static const char sql[] =
	    "UPDATE clients SET first_name = coalesce($3, first_name), "
	    "last_name = coalesce($4, last_name), "
	    "email = coalesce($5, email), phone = coalesce($6, phone), "
	    "notes = coalesce($7, notes), updated_at = now() "
	    "WHERE id = $1 AND practitioner_id = $2 RETURNING " CLIENT_COLS;
	const char *p[7] = {
	    q->id,
	    practitioner_id,
	    opt_str(q->first_name_present_case, q->first_name),
	    opt_str(q->last_name_present_case, q->last_name),
	    opt_str(q->email_present_case, q->email),
	    opt_str(q->phone_present_case, q->phone),
	    opt_str(q->notes_present_case, q->notes),
	};
	PGresult *r;
	int rc;

	rc = run(db, sql, 7, p, &r);
	if (rc)
		return rc;
	return one_row(arena, r, ERR_NOT_FOUND, client_into, out);
}

int store_client_delete(struct db *db, const char *practitioner_id,
			const char *id)
{
	static const char upcoming[] =
	    "SELECT EXISTS (SELECT 1 FROM bookings WHERE client_record_id = "
	    "$1 AND practitioner_id = $2 AND status = 'confirmed' AND "
	    "end_at > now())";
	static const char forget[] =
	    "UPDATE bookings SET note = '', updated_at = now() "
	    "WHERE client_record_id = $1 AND practitioner_id = $2";
	/* the foreign key sets the bookings' client_record_id to NULL */
	static const char drop[] = "DELETE FROM clients "
				   "WHERE id = $1 AND practitioner_id = $2";
	const char *p[] = {id, practitioner_id};
	PGresult *r;
	bool busy;
	int rc;

	rc = run(db, upcoming, 2, p, &r);
	if (rc)
		return rc;
	busy = val_bool(r, 0, 0);
	PQclear(r);
	if (busy)
		return ERR_RULE;
	rc = run_void(db, forget, 2, p);
	if (rc)
		return rc;
	return update_one(db, drop, 2, p);
}

/* ---- external busy intervals ---- */

static char *i64_array(struct arena *a, const struct avail_interval *v,
		       size_t n, bool ends)
{
	char *text = arena_alloc(a, n * 22 + 3), *p = text;

	if (!text)
		return NULL;
	*p++ = '{';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%lld", i ? "," : "",
			     (long long)(ends ? v[i].end_ms : v[i].start_ms));
	*p++ = '}';
	*p = 0;
	return text;
}

int store_busy_replace(struct db *db, const char *practitioner_id,
		       const char *source, int64_t window_start_ms,
		       int64_t window_end_ms, const struct avail_interval *v,
		       size_t n)
{
	/* intervals straddling the window keep their parts outside it */
	/* clang-format off */
	static const char trim[] =
		"WITH gone AS (DELETE FROM busy_intervals WHERE "
		"practitioner_id = $1 AND source = $2 AND during && "
		"tstzrange(" TS("$3") ", " TS("$4") ") RETURNING during) "
		"INSERT INTO busy_intervals (practitioner_id, source, during) "
		"SELECT $1, $2, r FROM (SELECT during * tstzrange(NULL, "
		TS("$3") ") AS r FROM gone UNION ALL SELECT during * "
		"tstzrange(" TS("$4") ", NULL) FROM gone) AS x "
		"WHERE NOT isempty(r)";
	static const char insert[] =
		"INSERT INTO busy_intervals (practitioner_id, source, during) "
		"SELECT $1, $2, r FROM (SELECT tstzrange(" TS("s") ", " TS("e")
		") * tstzrange(" TS("$3") ", " TS("$4") ") AS r FROM "
		"unnest($5::bigint[], $6::bigint[]) AS u(s, e) WHERE e > s) "
		"AS x WHERE NOT isempty(r)";
	/* clang-format on */
	struct arena *a = arena_new(0);
	const char *p[6];
	int rc = ERR_NOMEM;

	if (!a)
		return ERR_NOMEM;
	p[0] = practitioner_id;
	p[1] = source;
	p[2] = i64s(a, window_start_ms);
	p[3] = i64s(a, window_end_ms);
	p[4] = i64_array(a, v, n, false);
	p[5] = i64_array(a, v, n, true);
	if (!p[2] || !p[3] || !p[4] || !p[5])
		goto out_free_arena;
	rc = run_void(db, trim, 4, p);
	if (!rc && n)
		rc = run_void(db, insert, 6, p);
out_free_arena:
	arena_free(a);
	return rc;
}

/* ---- account deletion and privacy ---- */

int store_future_bookings_of(struct db *db, struct arena *arena,
			     const char *account_id, char ***ids_out,
			     size_t *n_out)
{
	static const char sql[] =
	    "SELECT id FROM bookings WHERE (client_id = $1 OR "
	    "practitioner_id = $1) AND status = 'confirmed' AND "
	    "start_at > now() ORDER BY start_at";
	const char *p[] = {account_id};
	PGresult *r;
	char **ids;
	int rc, n;

	rc = run(db, sql, 1, p, &r);
	if (rc)
		return rc;
	n = PQntuples(r);
	ids = arena_alloc(arena, (size_t)(n + 1) * sizeof(*ids));
	rc = ids ? 0 : ERR_NOMEM;
	for (int i = 0; !rc && i < n; i++)
		if (!(ids[i] = val(arena, r, i, 0)))
			rc = ERR_NOMEM;
	PQclear(r);
	*ids_out = ids;
	*n_out = rc ? 0 : (size_t)n;
	return rc;
}

static int count_of(struct db *db, const char *sql, const char *account_id,
		    unsigned *count)
{
	const char *p[] = {account_id};
	PGresult *r;
	int rc;

	rc = run(db, sql, 1, p, &r);
	if (rc)
		return rc;
	*count += (unsigned)strtoul(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

int store_forget_account(struct db *db, const char *account_id,
			 unsigned *erased_out, unsigned *anonymised_out)
{
	/* the client: the platform link goes, practitioners' records stay */
	static const char *const anonymise[] = {
	    "UPDATE bookings SET client_id = NULL, idempotency_key = NULL, "
	    "updated_at = now() WHERE client_id = $1",
	    "UPDATE clients SET account_id = NULL, updated_at = now() "
	    "WHERE account_id = $1",
	};
	/* the practitioner: their own data goes; bookings stay in their
	 * clients' histories */
	static const char *const erase[] = {
	    "DELETE FROM clients WHERE practitioner_id = $1",
	    "DELETE FROM busy_intervals WHERE practitioner_id = $1",
	    "DELETE FROM schedule_overrides WHERE practitioner_id = $1",
	    "DELETE FROM schedules WHERE practitioner_id = $1",
	    "DELETE FROM offerings o WHERE practitioner_id = $1 AND NOT "
	    "EXISTS (SELECT 1 FROM bookings b WHERE b.offering_id = o.id)",
	    "UPDATE offerings SET retired = true, active = false, "
	    "description = '', updated_at = now() WHERE practitioner_id = $1",
	    "DELETE FROM accounts WHERE account_id = $1",
	};
	int rc = 0;

	*erased_out = 0;
	*anonymised_out = 0;
	for (size_t i = 0; !rc && i < 2; i++)
		rc = count_of(db, anonymise[i], account_id, anonymised_out);
	for (size_t i = 0; !rc && i < sizeof(erase) / sizeof(erase[0]); i++)
		rc = count_of(db, erase[i], account_id, erased_out);
	return rc;
}

int store_export(struct db *db, const char *account_id, cJSON *doc)
{
	static const char *const parts[][2] = {
	    {"bookings_as_client",
	     "SELECT coalesce(json_agg(x ORDER BY x.start_at), '[]') FROM "
	     "(SELECT id, practitioner_id, offering_title, duration_min, "
	     "location, price_cents, currency, start_at, end_at, status, "
	     "note, cancelled_by, cancel_reason, cancelled_at, created_at "
	     "FROM bookings WHERE client_id = $1) AS x"},
	    {"bookings_as_practitioner",
	     "SELECT coalesce(json_agg(x ORDER BY x.start_at), '[]') FROM "
	     "(SELECT id, client_record_id, offering_title, duration_min, "
	     "location, price_cents, currency, start_at, end_at, status, "
	     "note, cancelled_by, cancel_reason, cancelled_at, created_at "
	     "FROM bookings WHERE practitioner_id = $1) AS x"},
	    {"offerings",
	     "SELECT coalesce(json_agg(x ORDER BY x.created_at), '[]') FROM "
	     "(SELECT id, title, description, duration_min, price_cents, "
	     "currency, buffer_before_min, buffer_after_min, location, "
	     "prepayment_required, active, retired, created_at FROM "
	     "offerings WHERE practitioner_id = $1) AS x"},
	    {"schedule",
	     "SELECT coalesce((SELECT row_to_json(x) FROM (SELECT "
	     "timezone, min_notice_min, horizon_days, slot_step_min, "
	     "cancel_deadline_min, (SELECT coalesce(json_agg(w), '[]') FROM "
	     "(SELECT weekday, start_min, end_min FROM weekly_hours WHERE "
	     "practitioner_id = $1) AS w) AS weekly FROM schedules WHERE "
	     "practitioner_id = $1) AS x), 'null')"},
	    {"client_file",
	     "SELECT coalesce(json_agg(x ORDER BY x.created_at), '[]') FROM "
	     "(SELECT id, first_name, last_name, email, phone, notes, "
	     "created_at FROM clients WHERE practitioner_id = $1) AS x"},
	    {"in_client_files",
	     "SELECT coalesce(json_agg(x), '[]') FROM (SELECT id, "
	     "practitioner_id, first_name, last_name, email, phone, "
	     "created_at FROM clients WHERE account_id = $1) AS x"},
	};
	const char *p[] = {account_id};

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		PGresult *r;
		cJSON *v;
		int rc = run(db, parts[i][1], 1, p, &r);

		if (rc)
			return rc;
		v = cJSON_Parse(PQgetvalue(r, 0, 0));
		PQclear(r);
		if (!v)
			return ERR_NOMEM;
		if (!cJSON_AddItemToObject(doc, parts[i][0], v)) {
			cJSON_Delete(v);
			return ERR_NOMEM;
		}
	}
	return 0;
}

int store_sweep_appointments(struct db *db, int64_t cutoff_ms,
			     unsigned *erased_out)
{
	static const char sql[] =
	    "DELETE FROM bookings WHERE end_at < " TS("$1");
	char cutoff[24];
	const char *p[] = {cutoff};
	PGresult *r;
	int rc;

	snprintf(cutoff, sizeof(cutoff), "%lld", (long long)cutoff_ms);
	rc = run(db, sql, 1, p, &r);
	if (rc)
		return rc;
	*erased_out = (unsigned)strtoul(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}
