/* store.c - the accounts service's SQL: the only file that sees a PGresult. */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "db.h"

/* A practitioner is listed (in the directory, bookable) when verified and
 * active or on a trial still running. */
#define LISTED_SQL                                                             \
	"(a.role = 'practitioner' AND a.email_verified_at IS NOT NULL AND "    \
	"(a.subscription_status = 'active' OR "                                \
	"(a.subscription_status = 'trial' AND a.trial_ends_at > now())))"

#define MS(col) "coalesce((extract(epoch FROM " col ") * 1000)::bigint, 0)"

#define ACCOUNT_COLS                                                           \
	"a.id, a.role, a.email, a.email_verified_at IS NOT NULL, "             \
	"coalesce(a.pending_email, ''), a.first_name, a.last_name, "           \
	"coalesce(a.phone, ''), coalesce(a.address, ''), "                     \
	"coalesce(a.terms_version, ''), " MS(                                  \
	    "a.terms_accepted_at") ", "                                        \
				   "a.subscription_status, " MS(               \
				       "a.trial_ends_at") ", " MS("a.created_" \
								  "at") ","    \
									" " LISTED_SQL

#define PRACTICE_COLS                                                          \
	"p.account_id, p.display_name, array_to_string(p.specialties, ','), "  \
	"p.city, p.postcode, p.region, p.bio, "                                \
	"array_to_string(p.languages, ','), p.sort_key"

static char *col_str(struct arena *a, const PGresult *res, int row, int col)
{
	return arena_strdup(
	    a, PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
		   ? 0
		   : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static bool col_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) &&
	       PQgetvalue(res, row, col)[0] == 't';
}

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Exactly n bytes from lower-case hex text; ERR_INVALID otherwise. */
static int hex_decode(const char *text, uint8_t *out, size_t n)
{
	if (strlen(text) != 2 * n)
		return ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return ERR_INVALID;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* The rows' count of a command (UPDATE/DELETE) result. */
static long affected(PGresult *res)
{
	return strtol(PQcmdTuples(res), NULL, 10);
}

/* Runs a statement whose only interest is how many rows it touched;
 * ERR_NOT_FOUND when none. */
static int exec_some(struct db *db, const char *sql, int n,
		     const char *const *params)
{
	PGresult *res;
	long rows;
	int rc;

	rc = db_exec(db, sql, n, params, &res);
	if (rc)
		return rc;
	rows = affected(res);
	PQclear(res);
	return rows > 0 ? 0 : ERR_NOT_FOUND;
}

/* Splits "a,b,c" (arena) into an arena array of strings. */
static int split_list(struct arena *a, const char *text, char ***out,
		      size_t *n_out)
{
	size_t n = 0, i = 0;
	char *copy, *save = NULL, *tok;

	*out = NULL;
	*n_out = 0;
	if (!*text)
		return 0;
	n = 1;
	for (const char *p = text; *p; p++)
		n += *p == ',';
	copy = arena_strdup(a, text);
	*out = arena_alloc(a, n * sizeof(char *));
	if (!copy || !*out)
		return ERR_NOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && i < n;
	     tok = strtok_r(NULL, ",", &save))
		(*out)[i++] = tok;
	*n_out = i;
	return 0;
}

/* '{"a","b"}' for a text[] parameter; items are validated codes. */
static char *array_literal(struct arena *a, char *const *items, size_t n)
{
	size_t len = 3;
	char *out, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(items[i]) * 2 + 3;
	out = arena_alloc(a, len);
	if (!out)
		return NULL;
	p = out;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		*p++ = '"';
		for (const char *s = items[i]; *s; s++) {
			if (*s == '"' || *s == '\\')
				*p++ = '\\';
			*p++ = *s;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

/* Each read_* fills the struct out points to from one row of res;
 * ERR_NOMEM when the arena runs out. They take void * so that get_one and
 * read_one can serve every single-row query. */
static int read_account(struct arena *a, const PGresult *res, int row,
			void *dst)
{
	struct store_account *out = dst;

	memset(out, 0, sizeof(*out));
	out->id = col_str(a, res, row, 0);
	out->role = col_str(a, res, row, 1);
	out->email = col_str(a, res, row, 2);
	out->email_verified = col_bool(res, row, 3);
	out->pending_email = col_str(a, res, row, 4);
	out->first_name = col_str(a, res, row, 5);
	out->last_name = col_str(a, res, row, 6);
	out->phone = col_str(a, res, row, 7);
	out->address = col_str(a, res, row, 8);
	out->terms_version = col_str(a, res, row, 9);
	out->terms_accepted_ms = col_i64(res, row, 10);
	out->subscription_status = col_str(a, res, row, 11);
	out->trial_ends_ms = col_i64(res, row, 12);
	out->created_ms = col_i64(res, row, 13);
	out->listed = col_bool(res, row, 14);
	out->language = col_str(a, res, row, 15); /* after ACCOUNT_COLS */
	if (!out->id || !out->role || !out->email || !out->pending_email ||
	    !out->first_name || !out->last_name || !out->phone ||
	    !out->address || !out->terms_version || !out->subscription_status ||
	    !out->language)
		return ERR_NOMEM;
	return 0;
}

static int read_practice(struct arena *a, const PGresult *res, int row,
			 void *dst)
{
	struct store_practice *out = dst;
	int rc;

	memset(out, 0, sizeof(*out));
	out->id = col_str(a, res, row, 0);
	out->display_name = col_str(a, res, row, 1);
	out->city = col_str(a, res, row, 3);
	out->postcode = col_str(a, res, row, 4);
	out->region = col_str(a, res, row, 5);
	out->bio = col_str(a, res, row, 6);
	if (!out->id || !out->display_name || !out->city || !out->postcode ||
	    !out->region || !out->bio)
		return ERR_NOMEM;
	rc = split_list(a, PQgetvalue(res, row, 2), &out->specialties,
			&out->n_specialties);
	if (!rc)
		rc = split_list(a, PQgetvalue(res, row, 7), &out->languages,
				&out->n_languages);
	return rc;
}

static int read_company(struct arena *a, const PGresult *res, int row,
			void *dst)
{
	struct store_company *out = dst;

	out->legal_name = col_str(a, res, row, 0);
	out->siret = col_str(a, res, row, 1);
	out->address = col_str(a, res, row, 2);
	out->phone = col_str(a, res, row, 3);
	return out->legal_name && out->siret && out->address && out->phone
		   ? 0
		   : ERR_NOMEM;
}

static int read_session(struct arena *a, const PGresult *res, int row,
			void *dst)
{
	struct store_session *out = dst;

	out->id = col_str(a, res, row, 0);
	out->account_id = col_str(a, res, row, 1);
	out->role = col_str(a, res, row, 2);
	out->created_ms = col_i64(res, row, 3);
	out->last_seen_ms = col_i64(res, row, 4);
	out->expires_ms = col_i64(res, row, 5);
	out->user_agent = col_str(a, res, row, 6);
	return out->id && out->account_id && out->role && out->user_agent
		   ? 0
		   : ERR_NOMEM;
}

/* A session of a known account: no account or role columns. */
static int read_own_session(struct arena *a, const PGresult *res, int row,
			    void *dst)
{
	struct store_session *out = dst;

	out->id = col_str(a, res, row, 0);
	out->created_ms = col_i64(res, row, 1);
	out->last_seen_ms = col_i64(res, row, 2);
	out->expires_ms = col_i64(res, row, 3);
	out->user_agent = col_str(a, res, row, 4);
	return out->id && out->user_agent ? 0 : ERR_NOMEM;
}

static int read_outbox_row(struct arena *a, const PGresult *res, int row,
			   void *dst)
{
	struct store_outbox_row *out = dst;
	const char *hex = PQgetvalue(res, row, 1);
	size_t len = strlen(hex) / 2;

	out->id = col_i64(res, row, 0);
	out->len = len;
	out->payload = arena_alloc(a, len ? len : 1);
	if (!out->payload)
		return ERR_NOMEM;
	for (size_t k = 0; k < len; k++) {
		unsigned v;
		sscanf(hex + 2 * k, "%2x", &v);
		out->payload[k] = (uint8_t)v;
	}
	return 0;
}

/* The caller's out-parameters for a row of two text columns: written
 * straight through, as the public functions promise. */
struct text_pair {
	char **first;
	char **second;
};

static int read_pair(struct arena *a, const PGresult *res, int row, void *dst)
{
	const struct text_pair *out = dst;

	*out->first = col_str(a, res, row, 0);
	*out->second = col_str(a, res, row, 1);
	return *out->first && *out->second ? 0 : ERR_NOMEM;
}

/* A token row found but past its expiry (third column false) is as good
 * as none. */
static int read_live_token(struct arena *a, const PGresult *res, int row,
			   void *dst)
{
	if (!col_bool(res, row, 2))
		return ERR_NOT_FOUND;
	return read_pair(a, res, row, dst);
}

static int read_text(struct arena *a, const PGresult *res, int row, void *dst)
{
	char **out = dst;

	*out = col_str(a, res, row, 0);
	return *out ? 0 : ERR_NOMEM;
}

/* No memset here: the caller zeroes out before the query, so that it is
 * zeroed even when no row is found. */
static int read_idempotent(struct arena *a, const PGresult *res, int row,
			   void *dst)
{
	struct store_idempotent *out = dst;

	snprintf(out->id, STORE_ID_TEXT, "%s", PQgetvalue(res, row, 0));
	out->has_request_hash =
	    hex_decode(PQgetvalue(res, row, 1), out->request_hash,
		       SECURE_HASH_BYTES) == 0;
	out->password_hash = col_str(a, res, row, 2);
	return out->password_hash ? 0 : ERR_NOMEM;
}

/* Reads the only row of res into out with read, then clears res (taken);
 * ERR_NOT_FOUND unless there is exactly one row. */
static int read_one(struct arena *a, PGresult *res,
		    int (*read)(struct arena *, const PGresult *, int, void *),
		    void *out)
{
	int rc = PQntuples(res) == 1 ? read(a, res, 0, out) : ERR_NOT_FOUND;

	PQclear(res);
	return rc;
}

/* Reads the first max rows of res (borrowed) into a new arena array of
 * size-byte elements, each filled by read; *items_out and *n_out are set
 * only on success. */
static int read_rows(struct arena *a, const PGresult *res, size_t max,
		     size_t size,
		     int (*read)(struct arena *, const PGresult *, int, void *),
		     void **items_out, size_t *n_out)
{
	size_t n = (size_t)PQntuples(res);
	char *items;
	int rc;

	if (n > max)
		n = max;
	items = arena_alloc(a, (n ? n : 1) * size);
	if (!items)
		return ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		rc = read(a, res, (int)i, items + i * size);
		if (rc)
			return rc;
	}
	*items_out = items;
	*n_out = n;
	return 0;
}

/* Runs a query that names one row at most and reads it into out. */
static int get_one(struct db *db, struct arena *a, const char *sql, int n,
		   const char *const *params,
		   int (*read)(struct arena *, const PGresult *, int, void *),
		   void *out)
{
	PGresult *res;
	int rc;

	rc = db_exec(db, sql, n, params, &res);
	if (rc)
		return rc;
	return read_one(a, res, read, out);
}

int store_insert_account(struct db *db, const struct store_new_account *in,
			 char id_out[STORE_ID_TEXT])
{
	char trial[24], request_hex[SECURE_HASH_BYTES * 2 + 1];
	const char *params[13];
	PGresult *res;
	int rc;

	snprintf(trial, sizeof(trial), "%ld", in->trial_days);
	params[0] = in->role;
	params[1] = in->email;
	params[2] = in->password_hash;
	params[3] = in->first_name;
	params[4] = in->last_name;
	params[5] = in->phone;
	params[6] = in->address;
	params[7] = in->terms_version;
	params[8] = in->verified ? "t" : "f";
	params[9] = trial;
	params[10] = in->idempotency_key ? in->idempotency_key : "";
	params[11] = in->language ? in->language : "";
	request_hex[0] = '\0';
	if (in->idempotency_hash)
		hex_encode(in->idempotency_hash, SECURE_HASH_BYTES,
			   request_hex);
	params[12] = request_hex;
	rc = db_exec(
	    db,
	    "INSERT INTO accounts (role, email, password_hash, "
	    "first_name, last_name, phone, address, terms_version, "
	    "terms_accepted_at, email_verified_at, subscription_status, "
	    "trial_ends_at, idempotency_key, language, idempotency_hash) "
	    "VALUES ($1, $2, $3, "
	    "$4, $5, nullif($6, ''), nullif($7, ''), $8, "
	    "CASE WHEN $8::text IS NULL THEN NULL ELSE now() END, "
	    "CASE WHEN $9::bool THEN now() END, "
	    "CASE WHEN $1 = 'practitioner' THEN 'trial' ELSE 'none' END, "
	    "CASE WHEN $1 = 'practitioner' THEN "
	    "now() + make_interval(days => $10::int) END, "
	    "nullif($11, ''), coalesce(nullif($12, ''), 'fr'), "
	    "decode(nullif($13, ''), 'hex')) RETURNING id",
	    13, params, &res);
	if (rc)
		return rc;
	snprintf(id_out, STORE_ID_TEXT, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int store_find_idempotent(struct db *db, struct arena *a, const char *key,
			  const char *email, struct store_idempotent *out)
{
	const char *params[2] = {key, email};

	memset(out, 0, sizeof(*out));
	return get_one(db, a,
		       "SELECT id, coalesce(encode(idempotency_hash, 'hex'), "
		       "''), password_hash FROM accounts WHERE lower(email) = "
		       "lower($2) AND idempotency_key = $1",
		       2, params, read_idempotent, out);
}

int store_get_account(struct db *db, struct arena *a, const char *id,
		      struct store_account *out)
{
	const char *params[1] = {id};

	return get_one(db, a,
		       "SELECT " ACCOUNT_COLS ", a.language FROM accounts a "
		       "WHERE a.id = $1",
		       1, params, read_account, out);
}

int store_get_login(struct db *db, struct arena *a, const char *email,
		    char **id_out, char **hash_out)
{
	const char *params[1] = {email};
	struct text_pair out = {id_out, hash_out};

	return get_one(db, a,
		       "SELECT id, password_hash FROM accounts "
		       "WHERE lower(email) = lower($1)",
		       1, params, read_pair, &out);
}

int store_get_password_hash(struct db *db, struct arena *a, const char *id,
			    char **hash_out)
{
	const char *params[1] = {id};

	return get_one(db, a,
		       "SELECT password_hash FROM accounts WHERE id = $1", 1,
		       params, read_text, hash_out);
}

int store_set_password_hash(struct db *db, const char *id, const char *hash)
{
	const char *params[2] = {id, hash};

	return exec_some(db,
			 "UPDATE accounts SET password_hash = $2 WHERE id = $1",
			 2, params);
}

/* bytea parameters go as binary */
static int exec_hash(struct db *db, const char *sql, int n,
		     const char *const *params, const uint8_t *hash,
		     PGresult **res_out)
{
	int lengths[8] = {0}, formats[8] = {0};

	lengths[0] = SECURE_HASH_BYTES;
	formats[0] = 1;
	(void)hash;
	return db_exec_binary(db, sql, n, params, lengths, formats, res_out);
}

int store_insert_token(struct db *db, const uint8_t hash[SECURE_HASH_BYTES],
		       const char *account_id, const char *purpose,
		       const char *email, long ttl_s)
{
	char ttl[24];
	const char *params[5] = {(const char *)hash, account_id, purpose, email,
				 ttl};

	snprintf(ttl, sizeof(ttl), "%ld", ttl_s);
	return exec_hash(db,
			 "INSERT INTO tokens (token_hash, account_id, purpose, "
			 "email, expires_at) VALUES ($1, $2, $3, $4, "
			 "now() + make_interval(secs => $5::bigint))",
			 5, params, hash, NULL);
}

int store_delete_tokens(struct db *db, const char *account_id,
			const char *purpose)
{
	const char *params[2] = {account_id, purpose};

	return db_exec(
	    db, "DELETE FROM tokens WHERE account_id = $1 AND purpose = $2", 2,
	    params, NULL);
}

int store_token_age(struct db *db, const char *account_id, const char *purpose,
		    int64_t *age_s_out)
{
	const char *params[2] = {account_id, purpose};
	PGresult *res;
	int rc;

	rc = db_exec(db,
		     "SELECT floor(extract(epoch FROM now() - max(created_at)))"
		     "::bigint FROM tokens WHERE account_id = $1 AND "
		     "purpose = $2",
		     2, params, &res);
	if (rc)
		return rc;
	if (PQgetisnull(res, 0, 0))
		rc = ERR_NOT_FOUND;
	else
		*age_s_out = col_i64(res, 0, 0);
	PQclear(res);
	return rc;
}

int store_take_token(struct db *db, struct arena *a,
		     const uint8_t hash[SECURE_HASH_BYTES], const char *purpose,
		     char **account_id_out, char **email_out)
{
	const char *params[2] = {(const char *)hash, purpose};
	struct text_pair out = {account_id_out, email_out};
	PGresult *res;
	int rc;

	rc = exec_hash(
	    db,
	    "DELETE FROM tokens WHERE token_hash = $1 AND purpose = $2 "
	    "RETURNING account_id, coalesce(email, ''), "
	    "expires_at > now()",
	    2, params, hash, &res);
	if (rc)
		return rc;
	return read_one(a, res, read_live_token, &out);
}

int store_confirm_email(struct db *db, const char *account_id,
			const char *email)
{
	const char *params[2] = {account_id, email};

	return exec_some(
	    db,
	    "UPDATE accounts SET email = $2, pending_email = NULL, "
	    "email_verified_at = now() WHERE id = $1 AND "
	    "(lower(email) = lower($2) OR "
	    "lower(pending_email) = lower($2))",
	    2, params);
}

int store_insert_session(struct db *db, const char *account_id,
			 const uint8_t hash[SECURE_HASH_BYTES], long idle_s,
			 long max_s, const char *user_agent,
			 char id_out[STORE_ID_TEXT], int64_t *expires_ms_out)
{
	char idle[24], max[24];
	const char *params[5] = {(const char *)hash, account_id, idle, max,
				 user_agent};
	PGresult *res;
	int rc;

	snprintf(idle, sizeof(idle), "%ld", idle_s);
	snprintf(max, sizeof(max), "%ld", max_s);
	rc = exec_hash(
	    db,
	    "INSERT INTO sessions (token_hash, account_id, expires_at, "
	    "absolute_expires_at, user_agent) VALUES ($1, $2, "
	    "now() + make_interval(secs => least($3::bigint, "
	    "$4::bigint)), now() + make_interval(secs => $4::bigint), "
	    "nullif($5, '')) RETURNING id, " MS("expires_at"),
	    5, params, hash, &res);
	if (rc)
		return rc;
	snprintf(id_out, STORE_ID_TEXT, "%s", PQgetvalue(res, 0, 0));
	*expires_ms_out = col_i64(res, 0, 1);
	PQclear(res);
	return 0;
}

int store_touch_session(struct db *db, struct arena *a,
			const uint8_t hash[SECURE_HASH_BYTES], long idle_s,
			struct store_session *out)
{
	char idle[24];
	const char *params[2] = {(const char *)hash, idle};
	PGresult *res;
	int rc;

	snprintf(idle, sizeof(idle), "%ld", idle_s);
	rc = exec_hash(
	    db,
	    "WITH s AS (UPDATE sessions SET last_seen_at = now(), "
	    "expires_at = least(now() + make_interval(secs => $2::bigint), "
	    "absolute_expires_at) WHERE token_hash = $1 AND "
	    "expires_at > now() RETURNING id, account_id, created_at, "
	    "last_seen_at, expires_at, user_agent), "
	    "t AS (UPDATE accounts SET last_activity_at = now() FROM s "
	    "WHERE accounts.id = s.account_id AND "
	    "accounts.last_activity_at < now() - interval '1 minute') "
	    "SELECT s.id, s.account_id, a.role, " MS("s.created_at") ", " MS(
		"s.last_seen_at") ", " MS("s.expires_at") ", "
							  "coalesce(s.user_"
							  "agent, '') FROM s "
							  "JOIN accounts a "
							  "ON a.id = "
							  "s.account_id",
	    2, params, hash, &res);
	if (rc)
		return rc;
	return read_one(a, res, read_session, out);
}

int store_list_sessions(struct db *db, struct arena *a, const char *account_id,
			struct store_session **items_out, size_t *n_out)
{
	const char *params[1] = {account_id};
	struct store_session *items;
	void *rows;
	PGresult *res;
	int rc;

	rc = db_exec(
	    db,
	    "SELECT id, " MS("created_at") ", " MS("last_seen_at") ", " MS(
		"expires_at") ", coalesce(user_agent, '') FROM sessions "
			      "WHERE account_id = $1 AND expires_at > now() "
			      "ORDER BY created_at DESC LIMIT 200",
	    1, params, &res);
	if (rc)
		return rc;
	rc = read_rows(a, res, SIZE_MAX, sizeof(*items), read_own_session,
		       &rows, n_out);
	PQclear(res);
	if (rc)
		return rc;
	items = rows;
	for (size_t i = 0; i < *n_out; i++)
		items[i].account_id = (char *)account_id;
	*items_out = items;
	return 0;
}

int store_delete_session(struct db *db, const char *account_id,
			 const char *session_id)
{
	const char *params[2] = {account_id, session_id};

	return exec_some(
	    db, "DELETE FROM sessions WHERE account_id = $1 AND id = $2", 2,
	    params);
}

int store_delete_sessions(struct db *db, const char *account_id, long *n_out)
{
	const char *params[1] = {account_id};
	PGresult *res;
	int rc;

	rc = db_exec(db, "DELETE FROM sessions WHERE account_id = $1", 1,
		     params, &res);
	if (rc)
		return rc;
	*n_out = affected(res);
	PQclear(res);
	return 0;
}

int store_log_attempt(struct db *db, const char *account_id,
		      const uint8_t login_key[SECURE_HASH_BYTES],
		      const char *client_ip, const char *user_agent,
		      const char *outcome)
{
	const char *params[5] = {(const char *)login_key, account_id, client_ip,
				 user_agent, outcome};

	return exec_hash(db,
			 "INSERT INTO connection_log (login_key, account_id, "
			 "client_ip, user_agent, outcome) VALUES ($1, $2, "
			 "nullif($3, '')::inet, nullif($4, ''), $5)",
			 5, params, login_key, NULL);
}

int store_throttle(struct db *db, const uint8_t login_key[SECURE_HASH_BYTES],
		   const char *client_ip, long window_s, long max_key,
		   long max_ip, int64_t *retry_after_s_out)
{
	char window[24], nkey[24], nip[24];
	const char *params[5] = {(const char *)login_key, client_ip, window,
				 nkey, nip};
	PGresult *res;
	int rc;

	/* The max-th most recent failure: when it leaves the window, fewer
	 * than max remain and attempts may resume. */
	snprintf(window, sizeof(window), "%ld", window_s);
	snprintf(nkey, sizeof(nkey), "%ld", max_key > 0 ? max_key - 1 : 0);
	snprintf(nip, sizeof(nip), "%ld", max_ip > 0 ? max_ip - 1 : 0);
	rc = exec_hash(
	    db,
	    "SELECT greatest(0, "
	    "ceil(extract(epoch FROM (SELECT at FROM connection_log "
	    "WHERE login_key = $1 AND outcome = 'bad_credentials' AND "
	    "at > now() - make_interval(secs => $3::bigint) "
	    "ORDER BY at DESC OFFSET $4::bigint LIMIT 1) "
	    "+ make_interval(secs => $3::bigint) - now())), "
	    "ceil(extract(epoch FROM (SELECT at FROM connection_log "
	    "WHERE $2 <> '' AND client_ip = nullif($2, '')::inet AND "
	    "outcome = 'bad_credentials' AND "
	    "at > now() - make_interval(secs => $3::bigint) "
	    "ORDER BY at DESC OFFSET $5::bigint LIMIT 1) "
	    "+ make_interval(secs => $3::bigint) - now())))::bigint",
	    5, params, login_key, &res);
	if (rc)
		return rc;
	*retry_after_s_out = col_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

int store_reset_throttle(struct db *db,
			 const uint8_t login_key[SECURE_HASH_BYTES],
			 const char *client_ip, long interval_s, long max_ip,
			 int64_t *key_wait_s_out, int64_t *ip_wait_s_out)
{
	char interval[24], nip[24];
	const char *params[4] = {(const char *)login_key, client_ip, interval,
				 nip};
	PGresult *res;
	int rc;

	/* two requests for one address at once: the second waits for the
	 * first's decision (and sees its log row) */
	rc = exec_hash(db,
		       "SELECT pg_advisory_xact_lock(('x' || "
		       "encode(substring($1::bytea FROM 1 FOR 8), 'hex'))::bit(64)"
		       "::bigint)",
		       1, params, login_key, NULL);
	if (rc)
		return rc;
	snprintf(interval, sizeof(interval), "%ld", interval_s);
	snprintf(nip, sizeof(nip), "%ld", max_ip > 0 ? max_ip - 1 : 0);
	rc = exec_hash(
	    db,
	    "SELECT coalesce(ceil(extract(epoch FROM (SELECT max(at) "
	    "FROM connection_log WHERE login_key = $1 AND "
	    "outcome = 'reset_requested' AND "
	    "at > now() - make_interval(secs => $3::bigint)) "
	    "+ make_interval(secs => $3::bigint) - now())), 0)::bigint, "
	    "coalesce(ceil(extract(epoch FROM (SELECT at FROM connection_log "
	    "WHERE $2 <> '' AND client_ip = nullif($2, '')::inet AND "
	    "outcome IN ('reset_requested', 'reset_throttled') AND "
	    "at > now() - make_interval(secs => $3::bigint) "
	    "ORDER BY at DESC OFFSET $4::bigint LIMIT 1) "
	    "+ make_interval(secs => $3::bigint) - now())), 0)::bigint",
	    4, params, login_key, &res);
	if (rc)
		return rc;
	*key_wait_s_out = col_i64(res, 0, 0);
	*ip_wait_s_out = col_i64(res, 0, 1);
	PQclear(res);
	return 0;
}

int store_reset_prepare(struct db *db, struct arena *a,
			const uint8_t token_hash[SECURE_HASH_BYTES],
			const char *email, long ttl_s,
			struct store_account *out)
{
	char ttl[24];
	const char *params[3] = {(const char *)token_hash, email, ttl};
	PGresult *res;
	int rc;

	snprintf(ttl, sizeof(ttl), "%ld", ttl_s);
	rc = exec_hash(
	    db,
	    "WITH acc AS (SELECT " ACCOUNT_COLS ", a.language FROM accounts a "
	    "WHERE lower(a.email) = lower($2)), "
	    "gone AS (DELETE FROM tokens t USING acc WHERE "
	    "t.account_id = acc.id AND t.purpose = 'reset_password'), "
	    "made AS (INSERT INTO tokens (token_hash, account_id, purpose, "
	    "expires_at) SELECT $1::bytea, acc.id, 'reset_password', "
	    "now() + make_interval(secs => $3::bigint) FROM acc) "
	    "SELECT * FROM acc",
	    3, params, token_hash, &res);
	if (rc)
		return rc;
	return read_one(a, res, read_account, out);
}

int store_update_profile(struct db *db, const char *id,
			 const struct store_profile *p)
{
	const char *params[11] = {id,
				  p->first_name ? "t" : "f",
				  p->first_name,
				  p->last_name ? "t" : "f",
				  p->last_name,
				  p->phone ? "t" : "f",
				  p->phone,
				  p->address ? "t" : "f",
				  p->address,
				  p->language ? "t" : "f",
				  p->language};

	return exec_some(
	    db,
	    "UPDATE accounts SET "
	    "first_name = CASE WHEN $2::bool THEN $3 ELSE first_name END, "
	    "last_name = CASE WHEN $4::bool THEN $5 ELSE last_name END, "
	    "phone = CASE WHEN $6::bool THEN nullif($7, '') ELSE phone END, "
	    "address = CASE WHEN $8::bool THEN nullif($9, '') "
	    "ELSE address END, "
	    "language = CASE WHEN $10::bool THEN $11 ELSE language END "
	    "WHERE id = $1",
	    11, params);
}

int store_set_pending_email(struct db *db, const char *id, const char *email)
{
	const char *params[2] = {id, email};
	PGresult *res;
	int rc;

	/* the unique index covers current addresses; pending ones are
	 * checked here and again when confirmed */
	rc = db_exec(db,
		     "SELECT 1 FROM accounts WHERE id <> $1 AND "
		     "(lower(email) = lower($2) OR "
		     "lower(pending_email) = lower($2))",
		     2, params, &res);
	if (rc)
		return rc;
	rc = PQntuples(res) > 0 ? ERR_CONFLICT : 0;
	PQclear(res);
	if (rc)
		return rc;
	return exec_some(db,
			 "UPDATE accounts SET pending_email = $2 WHERE id = $1",
			 2, params);
}

int store_delete_account(struct db *db, const char *id)
{
	const char *params[1] = {id};

	return exec_some(db, "DELETE FROM accounts WHERE id = $1", 1, params);
}

int store_set_subscription(struct db *db, const char *id, const char *status)
{
	const char *params[2] = {id, status};

	return exec_some(db,
			 "UPDATE accounts SET subscription_status = $2 "
			 "WHERE id = $1 AND role = 'practitioner'",
			 2, params);
}

int store_lapse_trials(struct db *db, struct arena *a, char ***ids_out,
		       size_t *n_out)
{
	PGresult *res;
	void *ids;
	int rc;

	rc = db_exec(db,
		     "UPDATE accounts SET subscription_status = 'lapsed' "
		     "WHERE subscription_status = 'trial' AND "
		     "trial_ends_at <= now() RETURNING id",
		     0, NULL, &res);
	if (rc)
		return rc;
	rc =
	    read_rows(a, res, SIZE_MAX, sizeof(char *), read_text, &ids, n_out);
	PQclear(res);
	if (!rc)
		*ids_out = ids;
	return rc;
}

int store_get_company(struct db *db, struct arena *a, const char *id,
		      struct store_company *out)
{
	const char *params[1] = {id};

	return get_one(db, a,
		       "SELECT legal_name, siret, address, coalesce(phone, '') "
		       "FROM companies WHERE account_id = $1",
		       1, params, read_company, out);
}

int store_put_company(struct db *db, const char *id,
		      const struct store_company *in)
{
	const char *params[5] = {id, in->legal_name, in->siret, in->address,
				 in->phone};

	return db_exec(
	    db,
	    "INSERT INTO companies (account_id, legal_name, siret, "
	    "address, phone) VALUES ($1, $2, $3, $4, nullif($5, '')) "
	    "ON CONFLICT (account_id) DO UPDATE SET "
	    "legal_name = excluded.legal_name, siret = excluded.siret, "
	    "address = excluded.address, phone = excluded.phone, "
	    "updated_at = now()",
	    5, params, NULL);
}

int store_get_practice(struct db *db, struct arena *a, const char *id,
		       struct store_practice *out)
{
	const char *params[1] = {id};

	return get_one(db, a,
		       "SELECT " PRACTICE_COLS " FROM practices p "
		       "WHERE p.account_id = $1",
		       1, params, read_practice, out);
}

int store_put_practice(struct db *db, const char *id,
		       const struct store_practice *in)
{
	struct arena *a = arena_new(0);
	const char *params[8];
	int rc;

	if (!a)
		return ERR_NOMEM;
	params[0] = id;
	params[1] = in->display_name;
	params[2] = array_literal(a, in->specialties, in->n_specialties);
	params[3] = in->city;
	params[4] = in->postcode;
	params[5] = in->region;
	params[6] = in->bio;
	params[7] = array_literal(a, in->languages, in->n_languages);
	if (!params[2] || !params[7]) {
		rc = ERR_NOMEM;
		goto out_free_arena;
	}
	rc =
	    db_exec(db,
		    "INSERT INTO practices (account_id, display_name, "
		    "specialties, city, postcode, region, bio, languages) "
		    "VALUES ($1, $2, $3::text[], $4, $5, $6, $7, $8::text[]) "
		    "ON CONFLICT (account_id) DO UPDATE SET "
		    "display_name = excluded.display_name, "
		    "specialties = excluded.specialties, city = excluded.city, "
		    "postcode = excluded.postcode, region = excluded.region, "
		    "bio = excluded.bio, languages = excluded.languages, "
		    "updated_at = now()",
		    8, params, NULL);
out_free_arena:
	arena_free(a);
	return rc;
}

static int read_practices(struct arena *a, PGresult *res, size_t max,
			  struct store_practice **items_out, size_t *n_out)
{
	void *items;
	int rc;

	rc = read_rows(a, res, max, sizeof(**items_out), read_practice, &items,
		       n_out);
	if (!rc)
		*items_out = items;
	return rc;
}

int store_list_directory(struct db *db, struct arena *a,
			 const struct store_directory_query *q,
			 struct store_practice **items_out, size_t *n_out,
			 bool *more_out, char **last_key_out)
{
	char limit[24];
	const char *params[8];
	PGresult *res;
	int rc;

	snprintf(limit, sizeof(limit), "%zu", q->limit + 1);
	params[0] = q->specialty;
	params[1] = q->region;
	params[2] = q->city;
	params[3] = q->postcode;
	params[4] = q->q;
	params[5] = q->after_key;
	params[6] = q->after_id;
	params[7] = limit;
	rc = db_exec(
	    db,
	    "SELECT " PRACTICE_COLS " FROM practices p "
	    "JOIN accounts a ON a.id = p.account_id WHERE " LISTED_SQL
	    " AND ($1::text IS NULL OR p.specialties @> ARRAY[$1::text]) "
	    "AND ($2::text IS NULL OR p.region = $2) "
	    "AND ($3::text IS NULL OR p.city_key = fold($3)) "
	    "AND ($4::text IS NULL OR p.postcode LIKE $4 || '%') "
	    "AND ($5::text IS NULL OR "
	    "p.search @@ websearch_to_tsquery('french', fold($5))) "
	    "AND ($6::text IS NULL OR (p.sort_key, p.account_id) > "
	    "($6, $7::uuid)) "
	    "ORDER BY p.sort_key, p.account_id LIMIT $8::int",
	    8, params, &res);
	if (rc)
		return rc;
	rc = read_practices(a, res, q->limit, items_out, n_out);
	if (!rc) {
		*more_out = (size_t)PQntuples(res) > q->limit;
		*last_key_out =
		    *n_out ? col_str(a, res, (int)*n_out - 1, 8) : NULL;
		if (*n_out && !*last_key_out)
			rc = ERR_NOMEM;
	}
	PQclear(res);
	return rc;
}

int store_get_listed(struct db *db, struct arena *a, const char *id,
		     struct store_practice *out)
{
	const char *params[1] = {id};

	return get_one(
	    db, a,
	    "SELECT " PRACTICE_COLS " FROM practices p JOIN accounts a "
	    "ON a.id = p.account_id WHERE p.account_id = $1 AND " LISTED_SQL,
	    1, params, read_practice, out);
}

int store_put_favorite(struct db *db, const char *client_id,
		       const char *practitioner_id)
{
	const char *params[2] = {client_id, practitioner_id};
	PGresult *res;
	int rc;

	rc = db_exec(db,
		     "INSERT INTO favorites (client_id, practitioner_id) "
		     "SELECT $1, a.id FROM accounts a JOIN practices p "
		     "ON p.account_id = a.id WHERE a.id = $2 AND " LISTED_SQL
		     " ON CONFLICT DO NOTHING RETURNING 1",
		     2, params, &res);
	if (rc)
		return rc;
	rc = PQntuples(res) == 1 ? 0 : ERR_NOT_FOUND;
	PQclear(res);
	if (rc != ERR_NOT_FOUND)
		return rc;
	/* already a favourite: fine (PUT is idempotent) */
	return exec_some(db,
			 "SELECT 1 FROM favorites WHERE client_id = $1 AND "
			 "practitioner_id = $2",
			 2, params);
}

int store_delete_favorite(struct db *db, const char *client_id,
			  const char *practitioner_id)
{
	const char *params[2] = {client_id, practitioner_id};

	return exec_some(db,
			 "DELETE FROM favorites WHERE client_id = $1 AND "
			 "practitioner_id = $2",
			 2, params);
}

int store_list_favorites(struct db *db, struct arena *a, const char *client_id,
			 struct store_practice **items_out, size_t *n_out)
{
	const char *params[1] = {client_id};
	PGresult *res;
	int rc;

	rc = db_exec(db,
		     "SELECT " PRACTICE_COLS " FROM favorites f "
		     "JOIN practices p ON p.account_id = f.practitioner_id "
		     "JOIN accounts a ON a.id = p.account_id "
		     "WHERE f.client_id = $1 AND " LISTED_SQL
		     " ORDER BY f.created_at DESC LIMIT 500",
		     1, params, &res);
	if (rc)
		return rc;
	rc = read_practices(a, res, 500, items_out, n_out);
	PQclear(res);
	return rc;
}

int store_export(struct db *db, struct arena *a, const char *id,
		 char **json_out)
{
	const char *params[1] = {id};
	PGresult *res;
	int rc;

	rc = db_exec(
	    db,
	    "SELECT json_build_object("
	    "'account', (SELECT to_jsonb(x) - 'password_hash' FROM accounts x "
	    "WHERE x.id = $1), "
	    "'company', (SELECT to_jsonb(c) FROM companies c "
	    "WHERE c.account_id = $1), "
	    "'practice', (SELECT to_jsonb(p) - 'search' - 'sort_key' - "
	    "'city_key' FROM practices p WHERE p.account_id = $1), "
	    "'sessions', (SELECT coalesce(jsonb_agg(jsonb_build_object("
	    "'id', s.id, 'created_at', s.created_at, 'last_seen_at', "
	    "s.last_seen_at, 'expires_at', s.expires_at, 'user_agent', "
	    "s.user_agent)), '[]') FROM sessions s WHERE s.account_id = $1), "
	    "'favorites', (SELECT coalesce(jsonb_agg(jsonb_build_object("
	    "'practitioner_id', f.practitioner_id, 'created_at', "
	    "f.created_at)), '[]') FROM favorites f WHERE f.client_id = $1), "
	    "'connection_log', (SELECT coalesce(jsonb_agg(jsonb_build_object("
	    "'at', l.at, 'client_ip', l.client_ip, 'user_agent', "
	    "l.user_agent, 'outcome', l.outcome) ORDER BY l.at), '[]') "
	    "FROM connection_log l WHERE l.account_id = $1))::text",
	    1, params, &res);
	if (rc)
		return rc;
	*json_out = col_str(a, res, 0, 0);
	rc = *json_out ? 0 : ERR_NOMEM;
	PQclear(res);
	return rc;
}

int store_sweep_connection_log(struct db *db, int64_t cutoff_ms, long *n_out)
{
	char cutoff[24];
	const char *params[1] = {cutoff};
	PGresult *res;
	int rc;

	snprintf(cutoff, sizeof(cutoff), "%" PRId64, cutoff_ms);
	rc = db_exec(db,
		     "DELETE FROM connection_log WHERE at < "
		     "to_timestamp($1::bigint / 1000.0)",
		     1, params, &res);
	if (rc)
		return rc;
	*n_out = affected(res);
	PQclear(res);
	return 0;
}

int store_purge_expired(struct db *db, long *n_out)
{
	PGresult *res;
	long n = 0;
	int rc;

	rc = db_exec(db, "DELETE FROM sessions WHERE expires_at <= now()", 0,
		     NULL, &res);
	if (rc)
		return rc;
	n += affected(res);
	PQclear(res);
	rc = db_exec(db, "DELETE FROM tokens WHERE expires_at <= now()", 0,
		     NULL, &res);
	if (rc)
		return rc;
	n += affected(res);
	PQclear(res);
	*n_out = n;
	return 0;
}

int store_outbox_to_scrub(struct db *db, struct arena *a, const char *topic,
			  long age_s, size_t limit,
			  struct store_outbox_row **rows_out, size_t *n_out)
{
	char age[24], lim[24];
	const char *params[3] = {topic, age, lim};
	void *rows;
	PGresult *res;
	int rc;

	snprintf(age, sizeof(age), "%ld", age_s);
	snprintf(lim, sizeof(lim), "%zu", limit);
	rc = db_exec(
	    db,
	    "SELECT o.id, encode(o.payload, 'hex') FROM events_outbox o "
	    "WHERE o.topic = $1 AND o.id > coalesce((SELECT last_id "
	    "FROM outbox_scrub WHERE topic = $1), 0) AND "
	    "o.created_at < now() - make_interval(secs => $2::bigint) "
	    "ORDER BY o.id LIMIT $3::int",
	    3, params, &res);
	if (rc)
		return rc;
	rc = read_rows(a, res, SIZE_MAX, sizeof(**rows_out), read_outbox_row,
		       &rows, n_out);
	PQclear(res);
	if (!rc)
		*rows_out = rows;
	return rc;
}

int store_outbox_scrubbed(struct db *db, const char *topic, int64_t id,
			  const uint8_t *payload, size_t len)
{
	char idt[24];
	const char *params[3] = {(const char *)payload, idt, topic};
	int lengths[3] = {(int)len, 0, 0}, formats[3] = {1, 0, 0};
	int rc;

	snprintf(idt, sizeof(idt), "%" PRId64, id);
	rc = db_exec_binary(db,
			    "UPDATE events_outbox SET payload = $1 "
			    "WHERE id = $2::bigint",
			    3 - 1, params, lengths, formats, NULL);
	if (rc)
		return rc;
	return db_exec(
	    db,
	    "INSERT INTO outbox_scrub (topic, last_id) VALUES ($1, "
	    "$2::bigint) ON CONFLICT (topic) DO UPDATE SET "
	    "last_id = greatest(outbox_scrub.last_id, excluded.last_id)",
	    2, (const char *const[]){topic, idt}, NULL);
}
