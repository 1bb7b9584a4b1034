/* store.h - every SQL statement of the accounts service (schema accounts). */
#ifndef ACCOUNTS_STORE_H
#define ACCOUNTS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "secure.h"

struct arena;
struct db;

/*
 * Conventions of this module: every function takes the caller's db (one
 * thread at a time) and returns 0 or db_exec's codes (ERR_CONFLICT,
 * ERR_INVALID, ERR_UNAVAILABLE, ERR_TIMEOUT, ERR_INTERNAL), plus
 * ERR_NOT_FOUND where said. Strings handed back are copied into the given
 * arena and live as long as it; NULL columns come back as "". Functions that
 * change several rows run in the caller's transaction when there is one.
 * Identifiers are UUID text (37 bytes with the NUL).
 */

#define STORE_ID_TEXT 37

/* an account row as the handlers see it (no password hash) */
struct store_account {
	char *id;
	char *role; /* "client", "practitioner", "admin" */
	char *email;
	bool email_verified;
	char *pending_email;
	char *first_name;
	char *last_name;
	char *phone;
	char *address;
	char *terms_version;
	int64_t terms_accepted_ms; /* 0 when none */
	char *subscription_status; /* "none", "trial", ... */
	int64_t trial_ends_ms;	   /* 0 when none */
	int64_t created_ms;
	bool listed;	/* practitioner visible and bookable */
	char *language; /* of the mails: "fr" or "en" */
};

struct store_new_account {
	const char *role;
	const char *email; /* normalised */
	const char *password_hash;
	const char *first_name;
	const char *last_name;
	const char *phone;	     /* "" for none */
	const char *address;	     /* "" for none */
	const char *terms_version;   /* NULL: no terms (admins) */
	bool verified;		     /* admins created by the operator */
	long trial_days;	     /* practitioners; 0 otherwise */
	const char *idempotency_key; /* "" for none */
	const char *language;	     /* "fr" or "en"; NULL or "" is "fr" */
	/* the digest of the sign-up request that came with idempotency_key
	 * (handlers.c), or NULL */
	const uint8_t *idempotency_hash; /* SECURE_HASH_BYTES */
};

/* store_insert_account - a new account; its id in id_out. ERR_CONFLICT when
 * the e-mail is taken, whatever its case. */
int store_insert_account(struct db *db, const struct store_new_account *in,
			 char id_out[STORE_ID_TEXT]) WARN_UNUSED;

/* What a sign-up replay is checked against. */
struct store_idempotent {
	char id[STORE_ID_TEXT];
	bool has_request_hash; /* false for sign-ups made before it was kept */
	uint8_t request_hash[SECURE_HASH_BYTES];
	char *password_hash; /* arena copy */
};

/* store_find_idempotent - the account signed up with idempotency key and
 * (normalised) email (a key means something only with its e-mail);
 * ERR_NOT_FOUND. */
int store_find_idempotent(struct db *db, struct arena *a, const char *key,
			  const char *email,
			  struct store_idempotent *out) WARN_UNUSED;

/* store_get_account - by id; ERR_NOT_FOUND. */
int store_get_account(struct db *db, struct arena *a, const char *id,
		      struct store_account *out) WARN_UNUSED;

/*
 * store_get_login - the account id, role and password hash for a normalised
 * e-mail (arena copies); ERR_NOT_FOUND when there is none.
 */
int store_get_login(struct db *db, struct arena *a, const char *email,
		    char **id_out, char **hash_out) WARN_UNUSED;

/* store_get_password_hash - of an account by id; ERR_NOT_FOUND. */
int store_get_password_hash(struct db *db, struct arena *a, const char *id,
			    char **hash_out) WARN_UNUSED;

/* store_set_password_hash - replaces it; ERR_NOT_FOUND. */
int store_set_password_hash(struct db *db, const char *id,
			    const char *hash) WARN_UNUSED;

/* Single-use tokens (verification, reset); purposes are "verify_email" and
 * "reset_password". email is the address a verification confirms. */
int store_insert_token(struct db *db, const uint8_t hash[SECURE_HASH_BYTES],
		       const char *account_id, const char *purpose,
		       const char *email, long ttl_s) WARN_UNUSED;

/* store_delete_tokens - every token of purpose of the account. */
int store_delete_tokens(struct db *db, const char *account_id,
			const char *purpose) WARN_UNUSED;

/* store_token_age - seconds since the newest token of purpose of the
 * account was made; ERR_NOT_FOUND when there is none. */
int store_token_age(struct db *db, const char *account_id, const char *purpose,
		    int64_t *age_s_out) WARN_UNUSED;

/*
 * store_take_token - consumes the token (deleted whether or not still
 * valid): its account and e-mail in the arena. ERR_NOT_FOUND when unknown,
 * used or expired.
 */
int store_take_token(struct db *db, struct arena *a,
		     const uint8_t hash[SECURE_HASH_BYTES], const char *purpose,
		     char **account_id_out, char **email_out) WARN_UNUSED;

/*
 * store_confirm_email - email becomes the account's verified address if it
 * is still its current or pending one. ERR_NOT_FOUND otherwise;
 * ERR_CONFLICT when another account took that address meanwhile.
 */
int store_confirm_email(struct db *db, const char *account_id,
			const char *email) WARN_UNUSED;

/* Sessions. */
struct store_session {
	char *id;
	char *account_id;
	char *role;
	int64_t created_ms;
	int64_t last_seen_ms;
	int64_t expires_ms;
	char *user_agent;
};

/* store_insert_session - a session for the token hash, expiring after
 * idle_s (sliding) and at most max_s from now; id and expiry back. */
int store_insert_session(struct db *db, const char *account_id,
			 const uint8_t hash[SECURE_HASH_BYTES], long idle_s,
			 long max_s, const char *user_agent,
			 char id_out[STORE_ID_TEXT],
			 int64_t *expires_ms_out) WARN_UNUSED;

/*
 * store_touch_session - the live session of a token hash, its expiry slid
 * by idle_s (never past its absolute end), and its account's last activity
 * updated. ERR_NOT_FOUND when unknown or expired.
 */
int store_touch_session(struct db *db, struct arena *a,
			const uint8_t hash[SECURE_HASH_BYTES], long idle_s,
			struct store_session *out) WARN_UNUSED;

/* store_list_sessions - the account's live sessions, newest first. */
int store_list_sessions(struct db *db, struct arena *a, const char *account_id,
			struct store_session **items_out,
			size_t *n_out) WARN_UNUSED;

/* store_delete_session - one session of the account; ERR_NOT_FOUND. */
int store_delete_session(struct db *db, const char *account_id,
			 const char *session_id) WARN_UNUSED;

/* store_delete_sessions - every session of the account; how many went. */
int store_delete_sessions(struct db *db, const char *account_id,
			  long *n_out) WARN_UNUSED;

/* The connection log and login throttling. outcome: "success",
 * "bad_credentials", "throttled", "reset_requested" or "reset_throttled";
 * account_id and user_agent may be NULL, client_ip "". */
int store_log_attempt(struct db *db, const char *account_id,
		      const uint8_t login_key[SECURE_HASH_BYTES],
		      const char *client_ip, const char *user_agent,
		      const char *outcome) WARN_UNUSED;

/*
 * store_throttle - seconds to wait before another attempt (0: go ahead):
 * max_key failures for this e-mail, or max_ip failures from this address
 * (client_ip may be ""), within the last window_s seconds.
 */
int store_throttle(struct db *db, const uint8_t login_key[SECURE_HASH_BYTES],
		   const char *client_ip, long window_s, long max_key,
		   long max_ip, int64_t *retry_after_s_out) WARN_UNUSED;

/*
 * store_reset_throttle - for a password reset request, in the caller's
 * transaction: waits until no other reset of this login_key is being
 * decided (a transaction lock), then *key_wait_s_out is the seconds left
 * before login_key may have another reset (one "reset_requested" per
 * interval_s), and *ip_wait_s_out those before client_ip may ask again
 * (max_ip requests, refused ones included, per interval_s; 0 when
 * client_ip is ""). 0: go ahead.
 */
int store_reset_throttle(struct db *db,
			 const uint8_t login_key[SECURE_HASH_BYTES],
			 const char *client_ip, long interval_s, long max_ip,
			 int64_t *key_wait_s_out,
			 int64_t *ip_wait_s_out) WARN_UNUSED;

/*
 * store_reset_prepare - one statement, the same work whether or not the
 * (normalised) email is an account's: the account (*out, arena), its
 * older reset tokens deleted and token_hash stored as its reset token valid
 * ttl_s. ERR_NOT_FOUND (nothing changed) when no account has that e-mail.
 */
int store_reset_prepare(struct db *db, struct arena *a,
			const uint8_t token_hash[SECURE_HASH_BYTES],
			const char *email, long ttl_s,
			struct store_account *out) WARN_UNUSED;

/* Profile. A NULL member leaves its column alone; "" clears phone and
 * address. ERR_NOT_FOUND. */
struct store_profile {
	const char *first_name;
	const char *last_name;
	const char *phone; /* E.164 */
	const char *address;
	const char *language; /* "fr" or "en" */
};

int store_update_profile(struct db *db, const char *id,
			 const struct store_profile *p) WARN_UNUSED;

/* store_set_pending_email - the address awaiting verification;
 * ERR_CONFLICT when another account uses it. */
int store_set_pending_email(struct db *db, const char *id,
			    const char *email) WARN_UNUSED;

/* store_delete_account - the account and everything that cascades from it
 * (sessions, tokens, company, practice, favourites). ERR_NOT_FOUND. */
int store_delete_account(struct db *db, const char *id) WARN_UNUSED;

/* store_set_subscription - a practitioner's status ("trial", "active",
 * "suspended", "lapsed"). ERR_NOT_FOUND when no such practitioner. */
int store_set_subscription(struct db *db, const char *id,
			   const char *status) WARN_UNUSED;

/* store_lapse_trials - trials past their end become "lapsed"; their ids. */
int store_lapse_trials(struct db *db, struct arena *a, char ***ids_out,
		       size_t *n_out) WARN_UNUSED;

/* Company and practice. */
struct store_company {
	char *legal_name;
	char *siret;
	char *address;
	char *phone;
};

int store_get_company(struct db *db, struct arena *a, const char *id,
		      struct store_company *out)
    WARN_UNUSED; /* ERR_NOT_FOUND */
int store_put_company(struct db *db, const char *id,
		      const struct store_company *in) WARN_UNUSED;

struct store_practice {
	char *id; /* the practitioner's account id (public listings) */
	char *display_name;
	char **specialties;
	size_t n_specialties;
	char *city;
	char *postcode;
	char *region;
	char *bio;
	char **languages;
	size_t n_languages;
};

int store_get_practice(struct db *db, struct arena *a, const char *id,
		       struct store_practice *out) WARN_UNUSED; /* NOT_FOUND */
int store_put_practice(struct db *db, const char *id,
		       const struct store_practice *in) WARN_UNUSED;

/* The public directory: only verified, listed practitioners. */
struct store_directory_query {
	const char *specialty; /* code or NULL */
	const char *region;    /* code or NULL */
	const char *city;      /* or NULL; compared without case or accents */
	const char *postcode;  /* prefix (2-5 digits) or NULL */
	const char *q;	       /* free text or NULL */
	const char *after_key; /* cursor: sort key and id, or NULL */
	const char *after_id;
	size_t limit;
};

/*
 * store_list_directory - up to limit practitioners in (name, id) order;
 * *more_out tells whether another page follows, and the last item's sort
 * key is in *last_key_out (arena) for the cursor.
 */
int store_list_directory(struct db *db, struct arena *a,
			 const struct store_directory_query *q,
			 struct store_practice **items_out, size_t *n_out,
			 bool *more_out, char **last_key_out) WARN_UNUSED;

/* store_get_listed - one listed practitioner's public profile;
 * ERR_NOT_FOUND when absent or not listed. */
int store_get_listed(struct db *db, struct arena *a, const char *id,
		     struct store_practice *out) WARN_UNUSED;

/* Favourites. store_put_favorite: ERR_NOT_FOUND when the practitioner is
 * not listed; idempotent. store_delete_favorite: ERR_NOT_FOUND when it was
 * not a favourite. */
int store_put_favorite(struct db *db, const char *client_id,
		       const char *practitioner_id) WARN_UNUSED;
int store_delete_favorite(struct db *db, const char *client_id,
			  const char *practitioner_id) WARN_UNUSED;
int store_list_favorites(struct db *db, struct arena *a, const char *client_id,
			 struct store_practice **items_out,
			 size_t *n_out) WARN_UNUSED;

/* Privacy: everything held on an account as one JSON object (arena). */
int store_export(struct db *db, struct arena *a, const char *id,
		 char **json_out) WARN_UNUSED;

/* store_sweep_connection_log - attempts older than cutoff_ms go. */
int store_sweep_connection_log(struct db *db, int64_t cutoff_ms,
			       long *n_out) WARN_UNUSED;

/*
 * store_purge_expired - expired sessions and tokens go, and the tokens
 * carried by outbox events whose tokens have expired are blanked.
 */
int store_purge_expired(struct db *db, long *n_out) WARN_UNUSED;

/* Outbox rows whose payload carries a token (see jobs.c). */
struct store_outbox_row {
	int64_t id;
	uint8_t *payload; /* arena copy */
	size_t len;
};

/*
 * store_outbox_to_scrub - up to limit rows of topic not yet scrubbed and
 * older than age_s seconds, in id order.
 */
int store_outbox_to_scrub(struct db *db, struct arena *a, const char *topic,
			  long age_s, size_t limit,
			  struct store_outbox_row **rows_out,
			  size_t *n_out) WARN_UNUSED;

/* store_outbox_scrubbed - row id of topic now holds payload, and every row
 * of topic up to id is done. */
int store_outbox_scrubbed(struct db *db, const char *topic, int64_t id,
			  const uint8_t *payload, size_t len) WARN_UNUSED;

#endif
