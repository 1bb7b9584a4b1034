/* handlers.c - the accounts service's RPCs: decode, validate, execute, encode.
 */
#include "handlers.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "arena.h"
#include "creneau/v1/accounts.pb-c.h"
#include "creneau/v1/booking.pb-c.h"
#include "creneau/v1/service.pb-c.h"
#include "db.h"
#include "events.h"
#include "instant.h"
#include "log.h"
#include "secure.h"
#include "service.h"
#include "store.h"
#include "validate.h"

#define DIRECTORY_LIMIT_DEFAULT 20
#define DIRECTORY_LIMIT_MAX	100
#define MAX_LIST_ITEMS		10
#define CURSOR_MAX		400
#define QUERY_MAX		200
#define USER_AGENT_MAX		256
/* GetPractitioner's wait for booking's offerings, at most, and what it
 * keeps of its own deadline to answer after that */
#define OFFERINGS_TIMEOUT_MS 1000
#define OFFERINGS_MIN_MS     50
#define OFFERINGS_MARGIN_MS  100

/* ---- small helpers ---- */

static struct accounts_settings *settings_of(struct rpc_call *call)
{
	return service_app(rpc_call_app(call));
}

static void *alloc(struct rpc_call *call, size_t n)
{
	return arena_alloc(rpc_call_arena(call), n);
}

static void *new_msg(struct rpc_call *call, size_t size,
		     const ProtobufCMessageDescriptor *desc)
{
	void *m = alloc(call, size);

	if (m)
		protobuf_c_message_init(desc, m);
	return m;
}

/* A new, initialised reply message of type in the call's arena, or NULL. */
#define NEW_MSG(call, type, name)                                              \
	((type *)new_msg(call, sizeof(type),                                   \
			 &creneau__v1__##name##__descriptor))

/* The signed-in principal's account id, or UNAUTHENTICATED. */
static int signed_in(struct rpc_call *call, const char **id_out,
		     Creneau__V1__Role *role_out)
{
	const Creneau__V1__Principal *p = rpc_call_principal(call);

	if (!p || !p->account_id || !validate_uuid(p->account_id))
		return rpc_call_fail(call, ERR_UNAUTHENTICATED, NULL, NULL,
				     "sign in first");
	*id_out = p->account_id;
	if (role_out)
		*role_out = p->role;
	return 0;
}

static int signed_in_as(struct rpc_call *call, Creneau__V1__Role role,
			const char **id_out)
{
	Creneau__V1__Role have;
	int rc = signed_in(call, id_out, &have);

	if (rc)
		return rc;
	if (have != role)
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "not available to this kind of account");
	return 0;
}

static Creneau__V1__Role role_from_text(const char *role)
{
	if (strcmp(role, "client") == 0)
		return CRENEAU__V1__ROLE__ROLE_CLIENT;
	if (strcmp(role, "practitioner") == 0)
		return CRENEAU__V1__ROLE__ROLE_PRACTITIONER;
	if (strcmp(role, "admin") == 0)
		return CRENEAU__V1__ROLE__ROLE_ADMIN;
	return CRENEAU__V1__ROLE__ROLE_NONE;
}

static const char *const subscription_names[] = {
    [CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_NONE] = "none",
    [CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_TRIAL] = "trial",
    [CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_ACTIVE] = "active",
    [CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_SUSPENDED] =
	"suspended",
    [CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_LAPSED] = "lapsed",
};

static Creneau__V1__SubscriptionStatus subscription_from_text(const char *s)
{
	for (size_t i = 0; i < sizeof(subscription_names) / sizeof(char *); i++)
		if (strcmp(subscription_names[i], s) == 0)
			return (Creneau__V1__SubscriptionStatus)i;
	return CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_NONE;
}

/* RFC 3339 text of ms in the call's arena; "" for 0. */
static char *time_text(struct rpc_call *call, int64_t ms)
{
	char buf[INSTANT_TEXT];

	if (ms == 0)
		return "";
	instant_format(ms, buf);
	return arena_strdup(rpc_call_arena(call), buf);
}

static int invalid(struct rpc_call *call, int code, const char *field,
		   const char *reason)
{
	return rpc_call_fail(call, code ? code : ERR_INVALID, NULL, field,
			     "%s %s", field, reason);
}

/* Checks text against validate_text, failing the call naming field. */
static int check_text(struct rpc_call *call, const char *field,
		      const char *text, size_t max, bool required,
		      bool multiline)
{
	const char *reason;
	int rc = validate_text(text, max, required, multiline, &reason);

	return rc ? invalid(call, rc, field, reason) : 0;
}

static int publish(struct rpc_call *call, const char *topic,
		   const ProtobufCMessage *msg)
{
	int rc = events_publish(rpc_call_db(call), topic, msg);

	if (rc)
		log_err(rpc_call_request_id(call),
			"event not published topic=%s error=%s", topic,
			error_str(rc));
	return rc;
}

static Creneau__V1__Account *account_reply(struct rpc_call *call,
					   const struct store_account *a)
{
	Creneau__V1__Account *m = NEW_MSG(call, Creneau__V1__Account, account);

	if (!m)
		return NULL;
	m->id = a->id;
	m->role = role_from_text(a->role);
	m->email = a->email;
	m->email_verified = a->email_verified;
	m->pending_email = a->pending_email;
	m->first_name = a->first_name;
	m->last_name = a->last_name;
	m->phone = a->phone;
	m->address = a->address;
	m->terms_version = a->terms_version;
	m->terms_accepted_at = time_text(call, a->terms_accepted_ms);
	m->created_at = time_text(call, a->created_ms);
	m->subscription_status = subscription_from_text(a->subscription_status);
	m->trial_ends_at = time_text(call, a->trial_ends_ms);
	m->language = a->language;
	if (!m->terms_accepted_at || !m->created_at || !m->trial_ends_at)
		return NULL;
	return m;
}

static int reply_account(struct rpc_call *call, const char *id,
			 ProtobufCMessage **reply_out)
{
	struct store_account acc;
	Creneau__V1__Account *m;
	int rc;

	rc = store_get_account(rpc_call_db(call), rpc_call_arena(call), id,
			       &acc);
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_UNAUTHENTICATED, NULL, NULL,
				     "this account no longer exists");
	if (rc)
		return rc;
	m = account_reply(call, &acc);
	if (!m)
		return ERR_NOMEM;
	*reply_out = &m->base;
	return 0;
}

static int reply_empty(struct rpc_call *call, ProtobufCMessage **reply_out)
{
	Creneau__V1__Empty *m = NEW_MSG(call, Creneau__V1__Empty, empty);

	if (!m)
		return ERR_NOMEM;
	*reply_out = &m->base;
	return 0;
}

static int check_email(struct rpc_call *call, const char *field, const char *in,
		       char out[VALIDATE_EMAIL_MAX + 1])
{
	const char *reason;
	int rc = validate_email(in, out, VALIDATE_EMAIL_MAX + 1, &reason);

	return rc ? invalid(call, rc, field, reason) : 0;
}

static int check_password(struct rpc_call *call, const char *field,
			  const char *password, const char *email)
{
	const char *reason;
	int rc = validate_password(password, email, &reason);

	if (rc)
		return rpc_call_fail(call, rc,
				     rc == ERR_INVALID ? "weak_password" : NULL,
				     field, "%s %s", field, reason);
	return 0;
}

static int check_phone(struct rpc_call *call, const char *field, const char *in,
		       char out[VALIDATE_PHONE_MAX + 1])
{
	const char *reason;
	int rc = validate_phone(in, out, VALIDATE_PHONE_MAX + 1, &reason);

	return rc ? invalid(call, rc, field, reason) : 0;
}

/* The preferred language of the mails: "" gives "fr" (sign-up). */
static int check_language(struct rpc_call *call, const char *field,
			  const char *in, const char **out)
{
	const char *reason;
	int rc = validate_mail_language(in, out, &reason);

	return rc ? invalid(call, rc, field, reason) : 0;
}

static int check_names(struct rpc_call *call, const char *first,
		       const char *last)
{
	int rc = check_text(call, "first_name", first, VALIDATE_NAME_MAX, true,
			    false);

	if (!rc)
		rc = check_text(call, "last_name", last, VALIDATE_NAME_MAX,
				true, false);
	return rc;
}

static int hash_password(struct rpc_call *call, const char *password,
			 char out[PASSWORD_HASH_TEXT])
{
	int rc = password_hash(password, &settings_of(call)->cost, out);

	if (rc)
		log_err(rpc_call_request_id(call),
			"password hashing failed error=%s", error_str(rc));
	return rc;
}

/* A new verification token for email, stored (hash) and returned (text). */
static int new_verification(struct rpc_call *call, const char *account_id,
			    const char *email, char token[SECURE_TOKEN_TEXT],
			    int64_t *expires_ms_out)
{
	struct accounts_settings *s = settings_of(call);
	uint8_t hash[SECURE_HASH_BYTES];
	int rc;

	secure_token_new(token, hash);
	rc = store_delete_tokens(rpc_call_db(call), account_id, "verify_email");
	if (!rc)
		rc = store_insert_token(rpc_call_db(call), hash, account_id,
					"verify_email", email, s->verify_ttl_s);
	*expires_ms_out = instant_now_ms() + s->verify_ttl_s * 1000;
	return rc;
}

static int publish_revoked(struct rpc_call *call, const char *account_id,
			   const char *session_id)
{
	Creneau__V1__SessionRevoked ev = CRENEAU__V1__SESSION_REVOKED__INIT;
	char *ids[1] = {(char *)session_id};

	ev.account_id = (char *)account_id;
	if (session_id) {
		ev.n_session_ids = 1;
		ev.session_ids = ids;
	} else {
		ev.all_sessions = true;
	}
	return publish(call, "session.revoked", &ev.base);
}

/* ---- sign-up and verification ---- */

/* Adds one length-prefixed field to a digest. */
static void digest_field(crypto_generichash_state *st, const char *text)
{
	uint64_t n = strlen(text);
	uint8_t len[8];

	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)(n >> (8 * i));
	crypto_generichash_update(st, len, sizeof(len));
	crypto_generichash_update(st, (const uint8_t *)text, n);
}

/*
 * What an Idempotency-Key binds a sign-up to: BLAKE2b of every field of the
 * request, normalised, except the password (a replay proves it against the
 * account's hash instead; a password digest would be a fast offline
 * oracle).
 */
static void signup_digest(struct rpc_call *call,
			  const Creneau__V1__CreateAccountRequest *req,
			  const char *email, const char *phone,
			  const char *language,
			  uint8_t out[SECURE_HASH_BYTES])
{
	const char *terms = *req->terms_version ? req->terms_version
						: settings_of(call)->terms_version;
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, SECURE_HASH_BYTES);
	digest_field(&st, req->role == CRENEAU__V1__ROLE__ROLE_CLIENT
			      ? "client"
			      : "practitioner");
	digest_field(&st, email);
	digest_field(&st, req->first_name);
	digest_field(&st, req->last_name);
	digest_field(&st, phone);
	digest_field(&st, req->address);
	digest_field(&st, terms);
	digest_field(&st, language);
	crypto_generichash_final(&st, out, SECURE_HASH_BYTES);
}

/*
 * A sign-up that clashes: the retry of one that succeeded (same
 * Idempotency-Key, e-mail and request, and the account's password) gets
 * the same account back; the key with another request, or a password that
 * does not verify, is 422 idempotency_key_reused (and shows nothing of the
 * account); anything else is the e-mail taken.
 */
static int replay_or_conflict(struct rpc_call *call,
			      const Creneau__V1__CreateAccountRequest *req,
			      const char *email,
			      const uint8_t digest[SECURE_HASH_BYTES],
			      ProtobufCMessage **reply_out)
{
	struct store_idempotent found;
	bool same, proven;
	int rc = ERR_NOT_FOUND;

	if (*req->idempotency_key)
		rc = store_find_idempotent(rpc_call_db(call),
					   rpc_call_arena(call),
					   req->idempotency_key, email, &found);
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_CONFLICT, "email_taken", "email",
				     "an account already uses this e-mail");
	if (rc)
		return rc;
	same = !found.has_request_hash ||
	       sodium_memcmp(found.request_hash, digest, SECURE_HASH_BYTES) ==
		   0;
	proven = password_verify(found.password_hash, req->password);
	if (!same || !proven)
		return rpc_call_fail(
		    call, ERR_RULE, "idempotency_key_reused", NULL,
		    "this Idempotency-Key was used with another request");
	return reply_account(call, found.id, reply_out);
}

/* Every field of a sign-up; the normalised e-mail and phone, and the
 * language ("fr" when not given), come back. */
static int check_signup(struct rpc_call *call,
			const Creneau__V1__CreateAccountRequest *req,
			char email[VALIDATE_EMAIL_MAX + 1],
			char phone[VALIDATE_PHONE_MAX + 1],
			const char **language_out)
{
	struct accounts_settings *s = settings_of(call);
	int rc;

	if (req->role != CRENEAU__V1__ROLE__ROLE_CLIENT &&
	    req->role != CRENEAU__V1__ROLE__ROLE_PRACTITIONER)
		return invalid(call, ERR_INVALID, "role",
			       "must be \"client\" or \"practitioner\"");
	if ((rc = check_email(call, "email", req->email, email)) ||
	    (rc = check_password(call, "password", req->password, email)) ||
	    (rc = check_names(call, req->first_name, req->last_name)) ||
	    (rc = check_phone(call, "phone", req->phone, phone)) ||
	    (rc = check_text(call, "address", req->address,
			     VALIDATE_ADDRESS_MAX, false, true)) ||
	    (rc =
		 check_language(call, "language", req->language, language_out)))
		return rc;
	if (!req->accept_terms)
		return invalid(call, ERR_INVALID, "accept_terms",
			       "must be true");
	if (strlen(req->idempotency_key) > 200)
		return invalid(call, ERR_TOO_LARGE, "idempotency_key",
			       "is too long");
	if (*req->terms_version && strcmp(req->terms_version, s->terms_version))
		return rpc_call_fail(
		    call, ERR_RULE, "terms_outdated", "terms_version",
		    "the current terms are version %s", s->terms_version);
	return 0;
}

/* In the caller's transaction: the verification token and the
 * account.created event that carries it to the mail (in the account's
 * language) and the normalised phone to booking's client file. */
static int announce_signup(struct rpc_call *call, const char *id,
			   const struct store_new_account *in,
			   Creneau__V1__Role role)
{
	Creneau__V1__AccountCreated ev = CRENEAU__V1__ACCOUNT_CREATED__INIT;
	char token[SECURE_TOKEN_TEXT];
	int rc;

	rc = new_verification(call, id, in->email, token,
			      &ev.verification_expires_at_ms);
	if (!rc) {
		ev.account_id = (char *)id;
		ev.role = role;
		ev.email = (char *)in->email;
		ev.first_name = (char *)in->first_name;
		ev.last_name = (char *)in->last_name;
		ev.phone = (char *)in->phone;
		ev.language = (char *)in->language;
		ev.verification_token = token;
		rc = publish(call, "account.created", &ev.base);
	}
	sodium_memzero(token, sizeof(token));
	return rc;
}

static int handle_create_account(struct rpc_call *call,
				 const ProtobufCMessage *request,
				 ProtobufCMessage **reply_out)
{
	const Creneau__V1__CreateAccountRequest *req = (const void *)request;
	struct accounts_settings *s = settings_of(call);
	struct db *db = rpc_call_db(call);
	char email[VALIDATE_EMAIL_MAX + 1], phone[VALIDATE_PHONE_MAX + 1];
	char hash[PASSWORD_HASH_TEXT], id[STORE_ID_TEXT];
	uint8_t digest[SECURE_HASH_BYTES];
	struct store_new_account in = {0};
	int rc;

	rc = check_signup(call, req, email, phone, &in.language);
	if (!rc)
		rc = hash_password(call, req->password, hash);
	if (rc)
		return rc;
	signup_digest(call, req, email, phone, in.language, digest);
	in.role = req->role == CRENEAU__V1__ROLE__ROLE_CLIENT ? "client"
							      : "practitioner";
	in.email = email;
	in.password_hash = hash;
	in.first_name = req->first_name;
	in.last_name = req->last_name;
	in.phone = phone;
	in.address = req->address;
	in.terms_version = s->terms_version;
	in.trial_days = s->trial_days;
	in.idempotency_key = req->idempotency_key;
	in.idempotency_hash = *req->idempotency_key ? digest : NULL;
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_insert_account(db, &in, id);
	if (rc == ERR_CONFLICT) {
		db_rollback(db);
		return replay_or_conflict(call, req, email, digest, reply_out);
	}
	if (!rc)
		rc = announce_signup(call, id, &in, req->role);
	if (!rc)
		rc = db_commit(db);
	if (rc) {
		db_rollback(db);
		return rc;
	}
	log_info(rpc_call_request_id(call),
		 "account created account=%s role=%s", id, in.role);
	return reply_account(call, id, reply_out);
}

static int handle_confirm_email(struct rpc_call *call,
				const ProtobufCMessage *request,
				ProtobufCMessage **reply_out)
{
	const Creneau__V1__ConfirmEmailRequest *req = (const void *)request;
	struct db *db = rpc_call_db(call);
	struct arena *a = rpc_call_arena(call);
	Creneau__V1__AccountVerified ev = CRENEAU__V1__ACCOUNT_VERIFIED__INIT;
	uint8_t hash[SECURE_HASH_BYTES];
	struct store_account acc;
	char *account_id, *email;
	int rc;

	if (!*req->token)
		return invalid(call, ERR_INVALID, "token", "is required");
	if (secure_token_hash(req->token, hash))
		return rpc_call_fail(call, ERR_INVALID, "invalid_token",
				     "token",
				     "this link is invalid or has expired");
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_take_token(db, a, hash, "verify_email", &account_id, &email);
	if (!rc)
		rc = store_confirm_email(db, account_id, email);
	if (rc == ERR_NOT_FOUND)
		rc = rpc_call_fail(call, ERR_INVALID, "invalid_token", "token",
				   "this link is invalid or has expired");
	else if (rc == ERR_CONFLICT)
		rc = rpc_call_fail(call, ERR_CONFLICT, "email_taken", "token",
				   "another account now uses this e-mail");
	if (!rc)
		rc = store_get_account(db, a, account_id, &acc);
	if (rc)
		goto out_rollback;
	ev.account_id = acc.id;
	ev.role = role_from_text(acc.role);
	ev.email = acc.email;
	rc = publish(call, "account.verified", &ev.base);
	if (rc)
		goto out_rollback;
	rc = db_commit(db);
	if (rc)
		goto out_rollback;
	log_info(rpc_call_request_id(call), "e-mail verified account=%s",
		 acc.id);
	return reply_empty(call, reply_out);
out_rollback:
	db_rollback(db);
	return rc;
}

/* ---- sessions ---- */

/* Who is trying to sign in, as far as the request tells. */
struct attempt {
	char email[VALIDATE_EMAIL_MAX + 1]; /* normalised when valid */
	char ip[INET6_ADDRSTRLEN];	    /* "" when none or malformed */
	const char *user_agent;		    /* "" when none or unusable */
	uint8_t key[SECURE_HASH_BYTES];	    /* throttling key of the e-mail */
};

/* The client address the gateway passed, or "" when none or malformed. */
static void read_ip(const char *in, char out[INET6_ADDRSTRLEN])
{
	unsigned char addr[sizeof(struct in6_addr)];

	out[0] = '\0';
	if (inet_pton(AF_INET, in, addr) == 1 ||
	    inet_pton(AF_INET6, in, addr) == 1)
		snprintf(out, INET6_ADDRSTRLEN, "%s", in);
}

static void read_attempt(const Creneau__V1__CreateSessionRequest *req,
			 struct attempt *at)
{
	read_ip(req->client_ip, at->ip);
	at->user_agent = req->user_agent;
	if (validate_text(req->user_agent, USER_AGENT_MAX, false, false, NULL))
		at->user_agent = "";
	/* an address that cannot exist is still throttled, and still fails
	 * the same way as one that does not */
	if (validate_email(req->email, at->email, sizeof(at->email), NULL))
		snprintf(at->email, sizeof(at->email), "%.*s",
			 VALIDATE_EMAIL_MAX, req->email);
	password_login_key(at->email, at->key);
}

static void log_attempt(struct rpc_call *call, const struct attempt *at,
			const char *account_id, const char *outcome)
{
	if (store_log_attempt(rpc_call_db(call), account_id, at->key, at->ip,
			      at->user_agent, outcome))
		log_warn(rpc_call_request_id(call),
			 "connection log not written outcome=%s", outcome);
}

/* 429 with Retry-After when this e-mail or address failed too often. */
static int check_throttle(struct rpc_call *call, const struct attempt *at)
{
	struct accounts_settings *s = settings_of(call);
	int64_t retry = 0;
	int rc;

	rc = store_throttle(rpc_call_db(call), at->key, at->ip,
			    s->login_window_s, s->login_max_per_email,
			    s->login_max_per_ip, &retry);
	if (rc || retry <= 0)
		return rc;
	log_attempt(call, at, NULL, "throttled");
	rpc_call_retry_after(call, retry);
	return rpc_call_fail(call, ERR_RATE_LIMITED, "too_many_attempts", NULL,
			     "too many failed attempts; try again later");
}

/*
 * The account whose password this is (*id_out), or the one 401 for any
 * failure, after the same argon2id work whether the e-mail exists or not.
 * A hash of an older cost is replaced.
 */
static int check_credentials(struct rpc_call *call, const struct attempt *at,
			     const char *password, char **id_out)
{
	struct accounts_settings *s = settings_of(call);
	char *hash = NULL, fresh[PASSWORD_HASH_TEXT];
	bool ok;
	int rc;

	*id_out = NULL;
	rc = store_get_login(rpc_call_db(call), rpc_call_arena(call), at->email,
			     id_out, &hash);
	if (rc && rc != ERR_NOT_FOUND)
		return rc;
	ok = password_verify(rc ? s->dummy_hash : hash, password) && !rc;
	if (!ok) {
		rc = store_log_attempt(rpc_call_db(call), *id_out, at->key,
				       at->ip, at->user_agent,
				       "bad_credentials");
		if (rc)
			return rc;
		return rpc_call_fail(call, ERR_UNAUTHENTICATED,
				     "invalid_credentials", NULL,
				     "the e-mail or the password is wrong");
	}
	if (password_needs_rehash(hash, &s->cost) &&
	    !hash_password(call, password, fresh) &&
	    !store_set_password_hash(rpc_call_db(call), *id_out, fresh))
		log_info(rpc_call_request_id(call),
			 "password re-hashed account=%s", *id_out);
	return 0;
}

/* A new session for account id: its token, CSRF token and expiry. */
static int open_session(struct rpc_call *call, const struct attempt *at,
			const char *id, ProtobufCMessage **reply_out)
{
	struct accounts_settings *s = settings_of(call);
	struct db *db = rpc_call_db(call);
	Creneau__V1__CreateSessionReply *reply;
	uint8_t token_hash[SECURE_HASH_BYTES];
	char token[SECURE_TOKEN_TEXT], sid[STORE_ID_TEXT];
	struct store_account row;
	int64_t expires_ms;
	int rc;

	secure_token_new(token, token_hash);
	rc = db_begin(db);
	if (rc)
		goto out_wipe;
	rc = store_insert_session(db, id, token_hash, s->session_idle_s,
				  s->session_max_s, at->user_agent, sid,
				  &expires_ms);
	if (!rc)
		rc = store_log_attempt(db, id, at->key, at->ip, at->user_agent,
				       "success");
	if (!rc)
		rc = store_get_account(db, rpc_call_arena(call), id, &row);
	if (!rc)
		rc = db_commit(db);
	if (rc) {
		db_rollback(db);
		goto out_wipe;
	}
	reply = NEW_MSG(call, Creneau__V1__CreateSessionReply,
			create_session_reply);
	rc = ERR_NOMEM;
	if (!reply || !(reply->account = account_reply(call, &row)) ||
	    !(reply->token = arena_strdup(rpc_call_arena(call), token)) ||
	    !(reply->csrf_token = alloc(call, SECURE_TOKEN_TEXT)) ||
	    !(reply->expires_at = time_text(call, expires_ms)))
		goto out_wipe;
	password_csrf(token, reply->csrf_token);
	log_info(rpc_call_request_id(call), "signed in account=%s session=%s",
		 id, sid);
	*reply_out = &reply->base;
	rc = 0;
out_wipe:
	sodium_memzero(token, sizeof(token));
	return rc;
}

static int handle_create_session(struct rpc_call *call,
				 const ProtobufCMessage *request,
				 ProtobufCMessage **reply_out)
{
	const Creneau__V1__CreateSessionRequest *req = (const void *)request;
	struct attempt at;
	char *id;
	int rc;

	if (!*req->email)
		return invalid(call, ERR_INVALID, "email", "is required");
	if (!*req->password)
		return invalid(call, ERR_INVALID, "password", "is required");
	if (strlen(req->password) > VALIDATE_PASSWORD_MAX)
		return invalid(call, ERR_TOO_LARGE, "password", "is too long");
	read_attempt(req, &at);
	rc = check_throttle(call, &at);
	if (!rc)
		rc = check_credentials(call, &at, req->password, &id);
	if (!rc)
		rc = open_session(call, &at, id, reply_out);
	return rc;
}

static int handle_validate_session(struct rpc_call *call,
				   const ProtobufCMessage *request,
				   ProtobufCMessage **reply_out)
{
	const Creneau__V1__ValidateSessionRequest *req = (const void *)request;
	struct accounts_settings *s = settings_of(call);
	Creneau__V1__ValidateSessionReply *reply;
	uint8_t hash[SECURE_HASH_BYTES];
	struct store_session sess;
	int rc;

	if (secure_token_hash(req->token, hash))
		return rpc_call_fail(call, ERR_UNAUTHENTICATED, NULL, NULL,
				     "the session is invalid or has expired");
	rc = store_touch_session(rpc_call_db(call), rpc_call_arena(call), hash,
				 s->session_idle_s, &sess);
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_UNAUTHENTICATED, NULL, NULL,
				     "the session is invalid or has expired");
	if (rc)
		return rc;
	reply = NEW_MSG(call, Creneau__V1__ValidateSessionReply,
			validate_session_reply);
	if (!reply)
		return ERR_NOMEM;
	reply->account_id = sess.account_id;
	reply->role = role_from_text(sess.role);
	reply->session_id = sess.id;
	reply->expires_at_ms = sess.expires_ms;
	reply->csrf_token = alloc(call, SECURE_TOKEN_TEXT);
	if (!reply->csrf_token)
		return ERR_NOMEM;
	password_csrf(req->token, reply->csrf_token);
	*reply_out = &reply->base;
	return 0;
}

/* Deletes one session of the account and announces it. */
static int revoke_one(struct rpc_call *call, const char *account_id,
		      const char *session_id)
{
	struct db *db = rpc_call_db(call);
	int rc;

	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_delete_session(db, account_id, session_id);
	if (!rc)
		rc = publish_revoked(call, account_id, session_id);
	if (!rc)
		rc = db_commit(db);
	if (rc)
		db_rollback(db);
	return rc;
}

static int handle_delete_current_session(struct rpc_call *call,
					 const ProtobufCMessage *request,
					 ProtobufCMessage **reply_out)
{
	const Creneau__V1__Principal *p = rpc_call_principal(call);
	const char *id;
	int rc;

	rc = signed_in(call, &id, NULL);
	if (rc)
		return rc;
	if (!p->session_id || !validate_uuid(p->session_id))
		return rpc_call_fail(call, ERR_UNAUTHENTICATED, NULL, NULL,
				     "no session to end");
	rc = revoke_one(call, id, p->session_id);
	if (rc == ERR_NOT_FOUND)
		rc = 0; /* already gone: logging out twice is fine */
	if (rc)
		return rc;
	log_info(rpc_call_request_id(call), "signed out account=%s session=%s",
		 id, p->session_id);
	return reply_empty(call, reply_out);
}

static int handle_list_sessions(struct rpc_call *call,
				const ProtobufCMessage *request,
				ProtobufCMessage **reply_out)
{
	const Creneau__V1__Principal *p = rpc_call_principal(call);
	Creneau__V1__ListSessionsReply *reply;
	struct store_session *items;
	size_t n = 0;
	const char *id;
	int rc;

	rc = signed_in(call, &id, NULL);
	if (!rc)
		rc = store_list_sessions(rpc_call_db(call),
					 rpc_call_arena(call), id, &items, &n);
	if (rc)
		return rc;
	reply =
	    NEW_MSG(call, Creneau__V1__ListSessionsReply, list_sessions_reply);
	if (!reply)
		return ERR_NOMEM;
	reply->items = alloc(call, (n ? n : 1) * sizeof(void *));
	if (!reply->items)
		return ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		Creneau__V1__Session *m =
		    NEW_MSG(call, Creneau__V1__Session, session);
		if (!m)
			return ERR_NOMEM;
		m->id = items[i].id;
		m->created_at = time_text(call, items[i].created_ms);
		m->last_seen_at = time_text(call, items[i].last_seen_ms);
		m->expires_at = time_text(call, items[i].expires_ms);
		m->user_agent = items[i].user_agent;
		m->current =
		    p->session_id && strcmp(p->session_id, items[i].id) == 0;
		if (!m->created_at || !m->last_seen_at || !m->expires_at)
			return ERR_NOMEM;
		reply->items[reply->n_items++] = m;
	}
	*reply_out = &reply->base;
	return 0;
}

static int handle_revoke_session(struct rpc_call *call,
				 const ProtobufCMessage *request,
				 ProtobufCMessage **reply_out)
{
	const Creneau__V1__RevokeSessionRequest *req = (const void *)request;
	const char *id;
	int rc;

	rc = signed_in(call, &id, NULL);
	if (rc)
		return rc;
	if (!validate_uuid(req->id))
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL, "id",
				     "no such session");
	rc = revoke_one(call, id, req->id);
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL, "id",
				     "no such session");
	if (rc)
		return rc;
	return reply_empty(call, reply_out);
}

/*
 * Verifies the signed-in account's password (for deletion, change). Wrong
 * guesses count as failed sign-ins of the account's e-mail, and the login
 * throttle applies: a stolen session cannot try passwords at argon2 speed.
 */
static int check_own_password(struct rpc_call *call, const char *id,
			      const char *field, const char *password)
{
	struct db *db = rpc_call_db(call);
	struct store_account acc;
	struct attempt at;
	char *hash;
	int rc;

	if (!*password)
		return invalid(call, ERR_INVALID, field, "is required");
	if (strlen(password) > VALIDATE_PASSWORD_MAX)
		return invalid(call, ERR_TOO_LARGE, field, "is too long");
	rc = store_get_account(db, rpc_call_arena(call), id, &acc);
	if (!rc)
		rc = store_get_password_hash(db, rpc_call_arena(call), id,
					     &hash);
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_UNAUTHENTICATED, NULL, NULL,
				     "this account no longer exists");
	if (rc)
		return rc;
	memset(&at, 0, sizeof(at));
	snprintf(at.email, sizeof(at.email), "%s", acc.email);
	at.user_agent = "";
	password_login_key(at.email, at.key);
	rc = check_throttle(call, &at);
	if (rc)
		return rc;
	if (!password_verify(hash, password)) {
		rc = store_log_attempt(db, id, at.key, at.ip, at.user_agent,
				       "bad_credentials");
		if (rc)
			return rc;
		return rpc_call_fail(call, ERR_FORBIDDEN, "wrong_password",
				     field, "the password is wrong");
	}
	return 0;
}

/* ---- password reset ---- */

/*
 * In the caller's transaction, once the limits let it through: the reset
 * token of the account that has this e-mail, if any, and the mail's event.
 * The same statement runs whether or not the address is an account's.
 */
static int issue_reset(struct rpc_call *call, const struct attempt *at,
		       const char token[SECURE_TOKEN_TEXT],
		       const uint8_t hash[SECURE_HASH_BYTES], bool *sent_out,
		       char **account_out)
{
	struct accounts_settings *s = settings_of(call);
	struct db *db = rpc_call_db(call);
	Creneau__V1__PasswordResetRequested ev =
	    CRENEAU__V1__PASSWORD_RESET_REQUESTED__INIT;
	struct store_account acc;
	int rc;

	*sent_out = false;
	rc = store_reset_prepare(db, rpc_call_arena(call), hash, at->email,
				 s->reset_ttl_s, &acc);
	if (rc && rc != ERR_NOT_FOUND)
		return rc;
	*sent_out = rc == 0;
	rc = store_log_attempt(db, *sent_out ? acc.id : NULL, at->key, at->ip,
			       NULL, "reset_requested");
	if (rc || !*sent_out)
		return rc;
	*account_out = acc.id;
	ev.account_id = acc.id;
	ev.email = acc.email;
	ev.first_name = acc.first_name;
	ev.language = acc.language;
	ev.token = (char *)token;
	ev.expires_at_ms = instant_now_ms() + s->reset_ttl_s * 1000;
	return publish(call, "password_reset.requested", &ev.base);
}

/*
 * 202 whether or not the address is an account's, after the same work;
 * at most one mail per address per reset_interval_s (later requests answer
 * 202 and send nothing), and 429 once the client address asked too often.
 */
static int handle_request_password_reset(struct rpc_call *call,
					 const ProtobufCMessage *request,
					 ProtobufCMessage **reply_out)
{
	const Creneau__V1__RequestPasswordResetRequest *req =
	    (const void *)request;
	struct accounts_settings *s = settings_of(call);
	struct db *db = rpc_call_db(call);
	char token[SECURE_TOKEN_TEXT], *account = NULL;
	uint8_t hash[SECURE_HASH_BYTES];
	int64_t key_wait = 0, ip_wait = 0;
	struct attempt at;
	bool sent = false;
	int rc;

	memset(&at, 0, sizeof(at));
	rc = check_email(call, "email", req->email, at.email);
	if (rc)
		return rc;
	read_ip(req->client_ip, at.ip);
	password_login_key(at.email, at.key);
	secure_token_new(token, hash);
	rc = db_begin(db);
	if (rc)
		goto out_wipe;
	rc = store_reset_throttle(db, at.key, at.ip, s->reset_interval_s,
				  s->reset_max_per_ip, &key_wait, &ip_wait);
	if (rc)
		goto out_rollback;
	if (ip_wait > 0 || key_wait > 0)
		rc = store_log_attempt(db, NULL, at.key, at.ip, NULL,
				       "reset_throttled");
	else
		rc = issue_reset(call, &at, token, hash, &sent, &account);
	if (!rc)
		rc = db_commit(db);
	if (rc)
		goto out_rollback;
	if (ip_wait > 0) {
		rpc_call_retry_after(call, ip_wait);
		rc = rpc_call_fail(call, ERR_RATE_LIMITED, "too_many_requests",
				   NULL, "too many requests; try again later");
		goto out_wipe;
	}
	if (sent)
		log_info(rpc_call_request_id(call),
			 "password reset requested account=%s", account);
	rc = reply_empty(call, reply_out);
	goto out_wipe;
out_rollback:
	db_rollback(db);
out_wipe:
	sodium_memzero(token, sizeof(token));
	return rc;
}

static int handle_confirm_password_reset(struct rpc_call *call,
					 const ProtobufCMessage *request,
					 ProtobufCMessage **reply_out)
{
	const Creneau__V1__ConfirmPasswordResetRequest *req =
	    (const void *)request;
	struct db *db = rpc_call_db(call);
	struct arena *a = rpc_call_arena(call);
	uint8_t hash[SECURE_HASH_BYTES];
	char pw_hash[PASSWORD_HASH_TEXT];
	struct store_account acc;
	char *account_id, *email;
	long n;
	int rc;

	if (!*req->token)
		return invalid(call, ERR_INVALID, "token", "is required");
	if (!*req->password)
		return invalid(call, ERR_INVALID, "password", "is required");
	if (secure_token_hash(req->token, hash))
		return rpc_call_fail(call, ERR_INVALID, "invalid_token",
				     "token",
				     "this link is invalid or has expired");
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_take_token(db, a, hash, "reset_password", &account_id,
			      &email);
	if (rc == ERR_NOT_FOUND)
		rc = rpc_call_fail(call, ERR_INVALID, "invalid_token", "token",
				   "this link is invalid or has expired");
	if (!rc)
		rc = store_get_account(db, a, account_id, &acc);
	/* a refused password leaves the token usable (rollback) */
	if (!rc)
		rc = check_password(call, "password", req->password, acc.email);
	if (!rc)
		rc = hash_password(call, req->password, pw_hash);
	if (!rc)
		rc = store_set_password_hash(db, acc.id, pw_hash);
	if (!rc)
		rc = store_delete_sessions(db, acc.id, &n);
	if (!rc)
		rc = store_delete_tokens(db, acc.id, "reset_password");
	if (!rc)
		rc = publish_revoked(call, acc.id, NULL);
	if (!rc)
		rc = db_commit(db);
	if (rc) {
		db_rollback(db);
		return rc;
	}
	log_info(rpc_call_request_id(call),
		 "password reset account=%s sessions_revoked=%ld", acc.id, n);
	return reply_empty(call, reply_out);
}

/* ---- profile ---- */

static int handle_get_me(struct rpc_call *call, const ProtobufCMessage *request,
			 ProtobufCMessage **reply_out)
{
	const char *id;
	int rc = signed_in(call, &id, NULL);

	return rc ? rc : reply_account(call, id, reply_out);
}

/* In the caller's transaction: a verification link for email (the
 * account's pending or unverified address), announced for the mail. */
static int send_verification(struct rpc_call *call,
			     const struct store_account *acc, const char *email)
{
	Creneau__V1__EmailVerificationRequested ev =
	    CRENEAU__V1__EMAIL_VERIFICATION_REQUESTED__INIT;
	char token[SECURE_TOKEN_TEXT];
	int rc;

	rc = new_verification(call, acc->id, email, token,
			      &ev.verification_expires_at_ms);
	if (!rc) {
		ev.account_id = acc->id;
		ev.new_email = (char *)email;
		ev.first_name = acc->first_name;
		ev.language = acc->language;
		ev.verification_token = token;
		rc = publish(call, "account.email_verification_requested",
			     &ev.base);
	}
	sodium_memzero(token, sizeof(token));
	return rc;
}

/* PATCH /v1/me with a new address: it waits, pending, for its link. */
static int request_email_change(struct rpc_call *call,
				const struct store_account *acc,
				const char *email)
{
	int rc = store_set_pending_email(rpc_call_db(call), acc->id, email);

	if (rc == ERR_CONFLICT)
		return rpc_call_fail(call, ERR_CONFLICT, "email_taken", "email",
				     "an account already uses this e-mail");
	return rc ? rc : send_verification(call, acc, email);
}

/* one new verification link a minute at most */
#define RESEND_INTERVAL_S 60

static int handle_resend_verification(struct rpc_call *call,
				      const ProtobufCMessage *request,
				      ProtobufCMessage **reply_out)
{
	struct db *db = rpc_call_db(call);
	struct store_account acc;
	const char *id, *target;
	int64_t age = RESEND_INTERVAL_S;
	int rc;

	rc = signed_in(call, &id, NULL);
	if (!rc)
		rc = store_get_account(db, rpc_call_arena(call), id, &acc);
	if (rc)
		return rc == ERR_NOT_FOUND ? ERR_UNAUTHENTICATED : rc;
	target = *acc.pending_email    ? acc.pending_email
		 : !acc.email_verified ? acc.email
				       : NULL;
	if (!target)
		return rpc_call_fail(call, ERR_CONFLICT, "already_verified",
				     NULL, "the address is already verified");
	rc = store_token_age(db, id, "verify_email", &age);
	if (rc && rc != ERR_NOT_FOUND)
		return rc;
	if (age < RESEND_INTERVAL_S) {
		rpc_call_retry_after(call, RESEND_INTERVAL_S - age);
		return rpc_call_fail(call, ERR_RATE_LIMITED, "too_soon", NULL,
				     "a link was sent less than a minute ago");
	}
	rc = db_begin(db);
	if (!rc)
		rc = send_verification(call, &acc, target);
	if (!rc)
		rc = db_commit(db);
	if (rc) {
		db_rollback(db);
		return rc;
	}
	log_info(rpc_call_request_id(call), "verification link sent account=%s",
		 id);
	return reply_empty(call, reply_out);
}

/* What a PATCH /v1/me changes: NULL for what it leaves alone. */
struct profile_patch {
	struct store_profile profile;
	const char *email;
	char phone_buf[VALIDATE_PHONE_MAX + 1];
	char email_buf[VALIDATE_EMAIL_MAX + 1];
};

static int read_profile_patch(struct rpc_call *call,
			      const Creneau__V1__UpdateMeRequest *req,
			      struct profile_patch *p)
{
	int rc = 0;

	memset(p, 0, sizeof(*p));
	if (req->first_name_present_case &&
	    !(rc = check_text(call, "first_name", req->first_name,
			      VALIDATE_NAME_MAX, true, false)))
		p->profile.first_name = req->first_name;
	if (!rc && req->last_name_present_case &&
	    !(rc = check_text(call, "last_name", req->last_name,
			      VALIDATE_NAME_MAX, true, false)))
		p->profile.last_name = req->last_name;
	if (!rc && req->phone_present_case &&
	    !(rc = check_phone(call, "phone", req->phone, p->phone_buf)))
		p->profile.phone = p->phone_buf;
	if (!rc && req->address_present_case &&
	    !(rc = check_text(call, "address", req->address,
			      VALIDATE_ADDRESS_MAX, false, true)))
		p->profile.address = req->address;
	/* present but "" is refused: PATCH never means "back to default" */
	if (!rc && req->language_present_case) {
		if (!*req->language)
			rc = invalid(call, ERR_INVALID, "language",
				     "must be \"fr\" or \"en\"");
		else
			rc = check_language(call, "language", req->language,
					    &p->profile.language);
	}
	if (!rc && req->email_present_case &&
	    !(rc = check_email(call, "email", req->email, p->email_buf)))
		p->email = p->email_buf;
	return rc;
}

/* In the caller's transaction: the new names, phone, address or language,
 * and the account.updated event; *acc is read again. */
static int apply_profile(struct rpc_call *call, const struct profile_patch *p,
			 struct store_account *acc)
{
	Creneau__V1__AccountUpdated ev = CRENEAU__V1__ACCOUNT_UPDATED__INIT;
	const struct store_profile *f = &p->profile;
	struct db *db = rpc_call_db(call);
	int rc;

	if (!f->first_name && !f->last_name && !f->phone && !f->address &&
	    !f->language)
		return 0;
	rc = store_update_profile(db, acc->id, f);
	if (!rc)
		rc = store_get_account(db, rpc_call_arena(call), acc->id, acc);
	if (rc)
		return rc;
	ev.account_id = acc->id;
	ev.role = role_from_text(acc->role);
	ev.email = acc->email;
	ev.first_name = acc->first_name;
	ev.last_name = acc->last_name;
	ev.phone = acc->phone;
	ev.language = acc->language;
	return publish(call, "account.updated", &ev.base);
}

static int handle_update_me(struct rpc_call *call,
			    const ProtobufCMessage *request,
			    ProtobufCMessage **reply_out)
{
	const Creneau__V1__UpdateMeRequest *req = (const void *)request;
	struct db *db = rpc_call_db(call);
	struct profile_patch patch;
	struct store_account acc;
	bool new_email;
	const char *id;
	int rc;

	rc = signed_in(call, &id, NULL);
	if (!rc)
		rc = read_profile_patch(call, req, &patch);
	if (!rc)
		rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_get_account(db, rpc_call_arena(call), id, &acc);
	new_email = !rc && patch.email && strcasecmp(patch.email, acc.email);
	/* the profile first: the link's mail uses the new name and language */
	if (!rc)
		rc = apply_profile(call, &patch, &acc);
	if (!rc && new_email)
		rc = request_email_change(call, &acc, patch.email);
	if (!rc)
		rc = db_commit(db);
	if (rc) {
		db_rollback(db);
		return rc;
	}
	log_info(rpc_call_request_id(call),
		 "profile updated account=%s email_change=%d", id, new_email);
	return reply_account(call, id, reply_out);
}

static int handle_change_password(struct rpc_call *call,
				  const ProtobufCMessage *request,
				  ProtobufCMessage **reply_out)
{
	const Creneau__V1__ChangePasswordRequest *req = (const void *)request;
	struct db *db = rpc_call_db(call);
	char hash[PASSWORD_HASH_TEXT];
	struct store_account acc;
	const char *id;
	long n;
	int rc;

	rc = signed_in(call, &id, NULL);
	if (!rc)
		rc = check_own_password(call, id, "current_password",
					req->current_password);
	if (!rc)
		rc = store_get_account(db, rpc_call_arena(call), id, &acc);
	if (!rc)
		rc = check_password(call, "password", req->password, acc.email);
	if (!rc)
		rc = hash_password(call, req->password, hash);
	if (rc)
		return rc;
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_set_password_hash(db, id, hash);
	if (!rc)
		rc = store_delete_sessions(db, id, &n);
	if (!rc)
		rc = publish_revoked(call, id, NULL);
	if (!rc)
		rc = db_commit(db);
	if (rc) {
		db_rollback(db);
		return rc;
	}
	log_info(rpc_call_request_id(call),
		 "password changed account=%s sessions_revoked=%ld", id, n);
	return reply_empty(call, reply_out);
}

/* Deletes an account in the caller's transaction and announces it. */
static int delete_account(struct rpc_call *call, const char *id,
			  Creneau__V1__Role role)
{
	Creneau__V1__AccountDeleted ev = CRENEAU__V1__ACCOUNT_DELETED__INIT;
	int rc;

	rc = store_delete_account(rpc_call_db(call), id);
	if (!rc)
		rc = publish_revoked(call, id, NULL);
	if (!rc) {
		ev.account_id = (char *)id;
		ev.role = role;
		rc = publish(call, "account.deleted", &ev.base);
	}
	return rc;
}

static int handle_delete_me(struct rpc_call *call,
			    const ProtobufCMessage *request,
			    ProtobufCMessage **reply_out)
{
	const Creneau__V1__DeleteMeRequest *req = (const void *)request;
	struct db *db = rpc_call_db(call);
	struct store_account acc;
	const char *id;
	int rc;

	rc = signed_in(call, &id, NULL);
	if (!rc)
		rc = check_own_password(call, id, "password", req->password);
	if (rc)
		return rc;
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_get_account(db, rpc_call_arena(call), id, &acc);
	if (!rc)
		rc = delete_account(call, id, role_from_text(acc.role));
	if (!rc)
		rc = db_commit(db);
	if (rc) {
		db_rollback(db);
		return rc;
	}
	log_notice(rpc_call_request_id(call), "account deleted account=%s", id);
	return reply_empty(call, reply_out);
}

/* ---- practitioners: company and practice ---- */

static int handle_get_company(struct rpc_call *call,
			      const ProtobufCMessage *request,
			      ProtobufCMessage **reply_out)
{
	Creneau__V1__Company *m;
	struct store_company c;
	const char *id;
	int rc;

	rc = signed_in_as(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &id);
	if (rc)
		return rc;
	rc = store_get_company(rpc_call_db(call), rpc_call_arena(call), id, &c);
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL, NULL,
				     "no company recorded yet");
	if (rc)
		return rc;
	m = NEW_MSG(call, Creneau__V1__Company, company);
	if (!m)
		return ERR_NOMEM;
	m->legal_name = c.legal_name;
	m->siret = c.siret;
	m->address = c.address;
	m->phone = c.phone;
	*reply_out = &m->base;
	return 0;
}

static int handle_put_company(struct rpc_call *call,
			      const ProtobufCMessage *request,
			      ProtobufCMessage **reply_out)
{
	const Creneau__V1__Company *req = (const void *)request;
	char siret[16], phone[VALIDATE_PHONE_MAX + 1];
	struct store_company c;
	size_t n = 0;
	const char *id;
	int rc;

	rc = signed_in_as(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &id);
	if (!rc)
		rc = check_text(call, "legal_name", req->legal_name, 200, true,
				false);
	if (!rc)
		rc = check_text(call, "address", req->address,
				VALIDATE_ADDRESS_MAX, true, true);
	if (!rc)
		rc = check_phone(call, "phone", req->phone, phone);
	if (rc)
		return rc;
	if (strlen(req->siret) > 32)
		return invalid(call, ERR_TOO_LARGE, "siret", "is too long");
	for (const char *p = req->siret; *p && n < sizeof(siret) - 1; p++)
		if (*p != ' ')
			siret[n++] = *p;
	siret[n] = '\0';
	if (!validate_siret(siret))
		return rpc_call_fail(
		    call, ERR_INVALID, "invalid_siret", "siret",
		    "siret must be 14 digits with a valid key");
	c.legal_name = req->legal_name;
	c.siret = siret;
	c.address = req->address;
	c.phone = phone;
	rc = store_put_company(rpc_call_db(call), id, &c);
	if (rc)
		return rc;
	return handle_get_company(call, request, reply_out);
}

static Creneau__V1__PublicPractitioner *
public_reply(struct rpc_call *call, const struct store_practice *p)
{
	Creneau__V1__PublicPractitioner *m =
	    NEW_MSG(call, Creneau__V1__PublicPractitioner, public_practitioner);

	if (!m)
		return NULL;
	m->id = p->id;
	m->display_name = p->display_name;
	m->specialties = p->specialties;
	m->n_specialties = p->n_specialties;
	m->city = p->city;
	m->postcode = p->postcode;
	m->region = p->region;
	m->bio = p->bio;
	m->languages = p->languages;
	m->n_languages = p->n_languages;
	return m;
}

static int handle_get_practice(struct rpc_call *call,
			       const ProtobufCMessage *request,
			       ProtobufCMessage **reply_out)
{
	Creneau__V1__Practice *m;
	struct store_practice p;
	const char *id;
	int rc;

	rc = signed_in_as(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &id);
	if (rc)
		return rc;
	rc =
	    store_get_practice(rpc_call_db(call), rpc_call_arena(call), id, &p);
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL, NULL,
				     "no practice recorded yet");
	if (rc)
		return rc;
	m = NEW_MSG(call, Creneau__V1__Practice, practice);
	if (!m)
		return ERR_NOMEM;
	m->display_name = p.display_name;
	m->specialties = p.specialties;
	m->n_specialties = p.n_specialties;
	m->city = p.city;
	m->postcode = p.postcode;
	m->region = p.region;
	m->bio = p.bio;
	m->languages = p.languages;
	m->n_languages = p.n_languages;
	*reply_out = &m->base;
	return 0;
}

/* Canonical codes of a list field, each checked by lookup. */
static int check_codes(struct rpc_call *call, const char *field,
		       char *const *in, size_t n, size_t min,
		       const struct validate_ref *(*lookup)(const char *),
		       char ***out)
{
	char **codes;
	size_t k = 0;

	if (n < min)
		return invalid(call, ERR_INVALID, field,
			       "needs at least one entry");
	if (n > MAX_LIST_ITEMS)
		return invalid(call, ERR_TOO_LARGE, field,
			       "has too many entries");
	codes = alloc(call, (n ? n : 1) * sizeof(char *));
	if (!codes)
		return ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct validate_ref *ref = lookup(in[i]);
		bool dup = false;
		if (!ref)
			return rpc_call_fail(call, ERR_INVALID, NULL, field,
					     "%s[%zu] is not a known entry",
					     field, i);
		for (size_t j = 0; j < k; j++)
			dup |= strcmp(codes[j], ref->code) == 0;
		if (!dup)
			codes[k++] = (char *)ref->code;
	}
	*out = codes;
	return (int)k;
}

/* The languages a practice may list (ISO 639-1), for check_codes. */
static const struct validate_ref languages[] = {
    {"ar", "ar"}, {"bg", "bg"}, {"br", "br"}, {"ca", "ca"}, {"co", "co"},
    {"cs", "cs"}, {"cy", "cy"}, {"da", "da"}, {"de", "de"}, {"el", "el"},
    {"en", "en"}, {"es", "es"}, {"et", "et"}, {"eu", "eu"}, {"fa", "fa"},
    {"fi", "fi"}, {"fr", "fr"}, {"ga", "ga"}, {"he", "he"}, {"hi", "hi"},
    {"hr", "hr"}, {"hu", "hu"}, {"it", "it"}, {"ja", "ja"}, {"ko", "ko"},
    {"ln", "ln"}, {"lt", "lt"}, {"lv", "lv"}, {"nl", "nl"}, {"no", "no"},
    {"oc", "oc"}, {"pl", "pl"}, {"pt", "pt"}, {"ro", "ro"}, {"ru", "ru"},
    {"sk", "sk"}, {"sl", "sl"}, {"sr", "sr"}, {"sv", "sv"}, {"sw", "sw"},
    {"tr", "tr"}, {"uk", "uk"}, {"vi", "vi"}, {"wo", "wo"}, {"zh", "zh"},
};

static const struct validate_ref *language_ref(const char *code)
{
	if (!validate_language(code))
		return NULL;
	for (size_t i = 0; i < sizeof(languages) / sizeof(languages[0]); i++)
		if (strcmp(languages[i].code, code) == 0)
			return &languages[i];
	return NULL;
}

static int handle_put_practice(struct rpc_call *call,
			       const ProtobufCMessage *request,
			       ProtobufCMessage **reply_out)
{
	const Creneau__V1__Practice *req = (const void *)request;
	const struct validate_ref *region;
	struct store_practice p = {0};
	const char *id;
	int rc;

	rc = signed_in_as(call, CRENEAU__V1__ROLE__ROLE_PRACTITIONER, &id);
	if (!rc)
		rc = check_text(call, "display_name", req->display_name, 120,
				true, false);
	if (!rc)
		rc = check_text(call, "city", req->city, 100, true, false);
	if (!rc)
		rc = check_text(call, "bio", req->bio, 4000, false, true);
	if (rc)
		return rc;
	if (!validate_postcode(req->postcode))
		return invalid(call, ERR_INVALID, "postcode",
			       "must be five digits");
	region = validate_region(req->region);
	if (!region)
		return invalid(call, ERR_INVALID, "region",
			       "is not one of the 18 regions");
	rc = check_codes(call, "specialties", req->specialties,
			 req->n_specialties, 1, validate_specialty,
			 &p.specialties);
	if (rc < 0)
		return rc;
	p.n_specialties = (size_t)rc;
	rc = check_codes(call, "languages", req->languages, req->n_languages, 0,
			 language_ref, &p.languages);
	if (rc < 0)
		return rc;
	p.n_languages = (size_t)rc;
	p.display_name = req->display_name;
	p.city = req->city;
	p.postcode = req->postcode;
	p.region = (char *)region->code;
	p.bio = req->bio;
	rc = store_put_practice(rpc_call_db(call), id, &p);
	if (rc)
		return rc;
	return handle_get_practice(call, request, reply_out);
}

/* ---- directory ---- */

/* cursor = hex(sort key) "." id */
static char *make_cursor(struct rpc_call *call, const char *key, const char *id)
{
	size_t klen = strlen(key);
	char *out = alloc(call, klen * 2 + 1 + STORE_ID_TEXT + 1);

	if (!out)
		return NULL;
	sodium_bin2hex(out, klen * 2 + 1, (const unsigned char *)key, klen);
	strcat(out, ".");
	strcat(out, id);
	return out;
}

static int parse_cursor(struct rpc_call *call, const char *cursor,
			struct store_directory_query *q)
{
	const char *dot = strrchr(cursor, '.');
	size_t hexlen, klen;
	char *key;

	if (strlen(cursor) > CURSOR_MAX || !dot || !validate_uuid(dot + 1))
		goto bad;
	hexlen = (size_t)(dot - cursor);
	key = alloc(call, hexlen / 2 + 1);
	if (!key)
		return ERR_NOMEM;
	if (sodium_hex2bin((unsigned char *)key, hexlen / 2 + 1, cursor, hexlen,
			   NULL, &klen, NULL) != 0 ||
	    klen * 2 != hexlen || memchr(key, '\0', klen))
		goto bad;
	key[klen] = '\0';
	if (validate_text(key, CURSOR_MAX, false, false, NULL))
		goto bad;
	q->after_key = key;
	q->after_id = dot + 1;
	return 0;
bad:
	return invalid(call, ERR_INVALID, "cursor", "is not a valid cursor");
}

/* The directory query of a request, every filter checked. */
static int
read_directory_query(struct rpc_call *call,
		     const Creneau__V1__ListPractitionersRequest *req,
		     struct store_directory_query *q)
{
	const struct validate_ref *ref;
	int rc = 0;

	if (*req->specialty) {
		if (!(ref = validate_specialty(req->specialty)))
			return invalid(call, ERR_INVALID, "specialty",
				       "is not a known specialty");
		q->specialty = ref->code;
	}
	if (*req->region) {
		if (!(ref = validate_region(req->region)))
			return invalid(call, ERR_INVALID, "region",
				       "is not one of the 18 regions");
		q->region = ref->code;
	}
	if (*req->city &&
	    !(rc = check_text(call, "city", req->city, 100, false, false)))
		q->city = req->city;
	if (!rc && *req->postcode) {
		size_t len = strlen(req->postcode);
		if (len < 2 || len > 5 ||
		    strspn(req->postcode, "0123456789") != len)
			return invalid(call, ERR_INVALID, "postcode",
				       "must be 2 to 5 digits");
		q->postcode = req->postcode;
	}
	if (!rc && *req->q &&
	    !(rc = check_text(call, "q", req->q, QUERY_MAX, false, false)))
		q->q = req->q;
	if (!rc && req->limit > DIRECTORY_LIMIT_MAX)
		return invalid(call, ERR_INVALID, "limit",
			       "must be between 1 and 100");
	q->limit = req->limit ? req->limit : DIRECTORY_LIMIT_DEFAULT;
	if (!rc && *req->cursor)
		rc = parse_cursor(call, req->cursor, q);
	return rc;
}

static int handle_list_practitioners(struct rpc_call *call,
				     const ProtobufCMessage *request,
				     ProtobufCMessage **reply_out)
{
	const Creneau__V1__ListPractitionersRequest *req =
	    (const void *)request;
	struct store_directory_query q = {0};
	Creneau__V1__ListPractitionersReply *reply;
	struct store_practice *items;
	char *last_key;
	size_t n;
	bool more;
	int rc;

	rc = read_directory_query(call, req, &q);
	if (!rc)
		rc = store_list_directory(rpc_call_db(call),
					  rpc_call_arena(call), &q, &items, &n,
					  &more, &last_key);
	if (rc)
		return rc;
	reply = NEW_MSG(call, Creneau__V1__ListPractitionersReply,
			list_practitioners_reply);
	if (!reply ||
	    !(reply->items = alloc(call, (n ? n : 1) * sizeof(void *))))
		return ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(reply->items[reply->n_items++] =
			  public_reply(call, &items[i])))
			return ERR_NOMEM;
	if (more && n &&
	    !(reply->next_cursor =
		  make_cursor(call, last_key, items[n - 1].id)))
		return ERR_NOMEM;
	*reply_out = &reply->base;
	return 0;
}

/*
 * Fills m->offerings with the practitioner's active offerings, asked of
 * booking (ListPractitionerOfferings, as ROLE_SERVICE) within
 * OFFERINGS_TIMEOUT_MS and the call's own deadline. When booking cannot be
 * asked, does not answer or answers with an error, m->offerings_unavailable
 * is set instead and a warning logged: the profile answers without them.
 */
static void practitioner_offerings(struct rpc_call *call,
				   Creneau__V1__PublicPractitioner *m)
{
	struct accounts_settings *s = settings_of(call);
	struct rpc_client *booking = atomic_load(&s->booking);
	Creneau__V1__ListPractitionerOfferingsRequest req =
	    CRENEAU__V1__LIST_PRACTITIONER_OFFERINGS_REQUEST__INIT;
	const Creneau__V1__ListOfferingsReply *reply;
	ProtobufCMessage *out = NULL;
	int64_t deadline = rpc_call_deadline_ms(call);
	int64_t timeout = OFFERINGS_TIMEOUT_MS;
	struct rpc_context ctx = {
	    .request_id = rpc_call_request_id(call),
	    .role = CRENEAU__V1__ROLE__ROLE_SERVICE,
	};
	struct rpc_error err = {0};
	int rc;

	if (deadline) {
		int64_t left =
		    deadline - instant_now_ms() - OFFERINGS_MARGIN_MS;

		if (left < timeout)
			timeout = left;
	}
	if (!booking || timeout < OFFERINGS_MIN_MS) {
		log_warn(rpc_call_request_id(call), "offerings not asked: %s",
			 booking ? "no time left" : "booking client not open");
		m->offerings_unavailable = true;
		return;
	}
	ctx.timeout_ms = (int)timeout;
	req.id = m->id;
	rc = rpc_client_call(booking, &ctx, "ListPractitionerOfferings",
			     &req.base,
			     &creneau__v1__list_offerings_reply__descriptor,
			     rpc_call_arena(call), &out, &err);
	if (rc) {
		log_warn(rpc_call_request_id(call),
			 "offerings unavailable error=%s error_code=%s",
			 error_str(rc), err.error_code);
		m->offerings_unavailable = true;
		return;
	}
	reply = (const void *)out;
	m->offerings = reply->items;
	m->n_offerings = reply->n_items;
}

static int handle_get_practitioner(struct rpc_call *call,
				   const ProtobufCMessage *request,
				   ProtobufCMessage **reply_out)
{
	const Creneau__V1__GetPractitionerRequest *req = (const void *)request;
	Creneau__V1__PublicPractitioner *m;
	struct store_practice p;
	int rc;

	if (!validate_uuid(req->id))
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL, "id",
				     "no such practitioner");
	rc = store_get_listed(rpc_call_db(call), rpc_call_arena(call), req->id,
			      &p);
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL, "id",
				     "no such practitioner");
	if (rc)
		return rc;
	m = public_reply(call, &p);
	if (!m)
		return ERR_NOMEM;
	practitioner_offerings(call, m);
	*reply_out = &m->base;
	return 0;
}

static int reference_reply(struct rpc_call *call,
			   const struct validate_ref *list, size_t n,
			   ProtobufCMessage **reply_out)
{
	Creneau__V1__ListReferenceReply *reply = NEW_MSG(
	    call, Creneau__V1__ListReferenceReply, list_reference_reply);

	if (!reply)
		return ERR_NOMEM;
	reply->items = alloc(call, n * sizeof(void *));
	if (!reply->items)
		return ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		Creneau__V1__ReferenceItem *m =
		    NEW_MSG(call, Creneau__V1__ReferenceItem, reference_item);
		if (!m)
			return ERR_NOMEM;
		m->code = (char *)list[i].code;
		m->name = (char *)list[i].name;
		reply->items[reply->n_items++] = m;
	}
	*reply_out = &reply->base;
	return 0;
}

static int handle_list_specialties(struct rpc_call *call,
				   const ProtobufCMessage *request,
				   ProtobufCMessage **reply_out)
{
	size_t n;
	const struct validate_ref *list = validate_specialties(&n);

	return reference_reply(call, list, n, reply_out);
}

static int handle_list_regions(struct rpc_call *call,
			       const ProtobufCMessage *request,
			       ProtobufCMessage **reply_out)
{
	size_t n;
	const struct validate_ref *list = validate_regions(&n);

	return reference_reply(call, list, n, reply_out);
}

/* ---- favourites ---- */

static int handle_list_favorites(struct rpc_call *call,
				 const ProtobufCMessage *request,
				 ProtobufCMessage **reply_out)
{
	Creneau__V1__ListFavoritesReply *reply;
	struct store_practice *items;
	size_t n = 0;
	const char *id;
	int rc;

	rc = signed_in_as(call, CRENEAU__V1__ROLE__ROLE_CLIENT, &id);
	if (!rc)
		rc = store_list_favorites(rpc_call_db(call),
					  rpc_call_arena(call), id, &items, &n);
	if (rc)
		return rc;
	reply = NEW_MSG(call, Creneau__V1__ListFavoritesReply,
			list_favorites_reply);
	if (!reply)
		return ERR_NOMEM;
	reply->items = alloc(call, (n ? n : 1) * sizeof(void *));
	if (!reply->items)
		return ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(reply->items[reply->n_items++] =
			  public_reply(call, &items[i])))
			return ERR_NOMEM;
	*reply_out = &reply->base;
	return 0;
}

/* PUT and DELETE of a favourite differ only in the store call and in what
 * NOT_FOUND tells the client. */
static int
change_favorite(struct rpc_call *call, const ProtobufCMessage *request,
		ProtobufCMessage **reply_out,
		int (*change)(struct db *, const char *, const char *),
		const char *not_found)
{
	const Creneau__V1__FavoriteRequest *req = (const void *)request;
	const char *id;
	int rc;

	rc = signed_in_as(call, CRENEAU__V1__ROLE__ROLE_CLIENT, &id);
	if (rc)
		return rc;
	rc = validate_uuid(req->practitioner_id)
		 ? change(rpc_call_db(call), id, req->practitioner_id)
		 : ERR_NOT_FOUND;
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL,
				     "practitioner_id", not_found);
	return rc ? rc : reply_empty(call, reply_out);
}

static int handle_put_favorite(struct rpc_call *call,
			       const ProtobufCMessage *request,
			       ProtobufCMessage **reply_out)
{
	return change_favorite(call, request, reply_out, store_put_favorite,
			       "no such practitioner");
}

static int handle_delete_favorite(struct rpc_call *call,
				  const ProtobufCMessage *request,
				  ProtobufCMessage **reply_out)
{
	return change_favorite(call, request, reply_out, store_delete_favorite,
			       "not a favourite");
}

/* ---- for other services and the operator ---- */

static bool is_service(struct rpc_call *call)
{
	const Creneau__V1__Principal *p = rpc_call_principal(call);

	return p && p->role == CRENEAU__V1__ROLE__ROLE_SERVICE;
}

/* FORBIDDEN unless the caller is another daemon or the operator (a signed
 * envelope alone is not enough: the gateway signs users' requests too). */
static int service_only(struct rpc_call *call)
{
	if (is_service(call))
		return 0;
	return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
			     "for services only");
}

static int handle_get_account_status(struct rpc_call *call,
				     const ProtobufCMessage *request,
				     ProtobufCMessage **reply_out)
{
	const Creneau__V1__GetAccountStatusRequest *req = (const void *)request;
	Creneau__V1__AccountStatus *m;
	struct store_account acc;
	int rc;

	rc = service_only(call);
	if (rc)
		return rc;
	if (!validate_uuid(req->account_id))
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL, "account_id",
				     "no such account");
	rc = store_get_account(rpc_call_db(call), rpc_call_arena(call),
			       req->account_id, &acc);
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL, "account_id",
				     "no such account");
	if (rc)
		return rc;
	m = NEW_MSG(call, Creneau__V1__AccountStatus, account_status);
	if (!m)
		return ERR_NOMEM;
	m->account_id = acc.id;
	m->role = role_from_text(acc.role);
	m->email_verified = acc.email_verified;
	m->subscription_status =
	    subscription_from_text(acc.subscription_status);
	m->listed = acc.listed;
	m->can_book =
	    m->role == CRENEAU__V1__ROLE__ROLE_CLIENT && acc.email_verified;
	*reply_out = &m->base;
	return 0;
}

static int handle_create_admin(struct rpc_call *call,
			       const ProtobufCMessage *request,
			       ProtobufCMessage **reply_out)
{
	const Creneau__V1__CreateAdminRequest *req = (const void *)request;
	char email[VALIDATE_EMAIL_MAX + 1], hash[PASSWORD_HASH_TEXT];
	char id[STORE_ID_TEXT];
	struct store_new_account in = {0};
	int rc;

	if (!is_service(call))
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "admins are created by the operator only");
	if ((rc = check_email(call, "email", req->email, email)) ||
	    (rc = check_password(call, "password", req->password, email)) ||
	    (rc = check_names(call, req->first_name, req->last_name)) ||
	    (rc = hash_password(call, req->password, hash)))
		return rc;
	in.role = "admin";
	in.email = email;
	in.password_hash = hash;
	in.first_name = req->first_name;
	in.last_name = req->last_name;
	in.phone = "";
	in.address = "";
	in.verified = true;
	rc = store_insert_account(rpc_call_db(call), &in, id);
	if (rc == ERR_CONFLICT)
		return rpc_call_fail(call, ERR_CONFLICT, "email_taken", "email",
				     "an account already uses this e-mail");
	if (rc)
		return rc;
	log_notice(rpc_call_request_id(call), "admin created account=%s", id);
	return reply_account(call, id, reply_out);
}

static int handle_set_subscription(struct rpc_call *call,
				   const ProtobufCMessage *request,
				   ProtobufCMessage **reply_out)
{
	const Creneau__V1__SetSubscriptionRequest *req = (const void *)request;
	const Creneau__V1__Principal *p = rpc_call_principal(call);
	Creneau__V1__AccountSuspended ev = CRENEAU__V1__ACCOUNT_SUSPENDED__INIT;
	struct db *db = rpc_call_db(call);
	struct store_account acc;
	int rc;

	if (!is_service(call) &&
	    !(p && p->role == CRENEAU__V1__ROLE__ROLE_ADMIN))
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "operators and admins only");
	if (req->subscription_status ==
		CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_NONE ||
	    (unsigned)req->subscription_status >=
		sizeof(subscription_names) / sizeof(char *))
		return invalid(call, ERR_INVALID, "subscription_status",
			       "must be trial, active, suspended or lapsed");
	if (!validate_uuid(req->account_id))
		return rpc_call_fail(call, ERR_NOT_FOUND, NULL, "account_id",
				     "no such practitioner");
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_set_subscription(
	    db, req->account_id, subscription_names[req->subscription_status]);
	if (rc == ERR_NOT_FOUND)
		rc = rpc_call_fail(call, ERR_NOT_FOUND, NULL, "account_id",
				   "no such practitioner");
	if (!rc)
		rc = store_get_account(db, rpc_call_arena(call),
				       req->account_id, &acc);
	if (rc)
		goto out_rollback;
	ev.account_id = acc.id;
	ev.role = CRENEAU__V1__ROLE__ROLE_PRACTITIONER;
	ev.subscription_status = req->subscription_status;
	ev.listed = acc.listed;
	rc = publish(call, "account.suspended", &ev.base);
	if (!rc)
		rc = db_commit(db);
	if (rc)
		goto out_rollback;
	log_notice(rpc_call_request_id(call),
		   "subscription set account=%s status=%s", acc.id,
		   acc.subscription_status);
	return reply_account(call, acc.id, reply_out);
out_rollback:
	db_rollback(db);
	return rc;
}

/* ---- the privacy interface ---- */

static int handle_export(struct rpc_call *call, const ProtobufCMessage *request,
			 ProtobufCMessage **reply_out)
{
	const Creneau__V1__ExportRequest *req = (const void *)request;
	Creneau__V1__ExportReply *reply;
	char *doc = "{}";
	int rc = service_only(call);

	if (rc)
		return rc;
	if (req->subject && validate_uuid(req->subject->account_id))
		rc = store_export(rpc_call_db(call), rpc_call_arena(call),
				  req->subject->account_id, &doc);
	if (rc)
		return rc;
	reply = NEW_MSG(call, Creneau__V1__ExportReply, export_reply);
	if (!reply)
		return ERR_NOMEM;
	reply->service = "accounts";
	reply->document = doc;
	*reply_out = &reply->base;
	return 0;
}

static int handle_erase(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out)
{
	const Creneau__V1__EraseRequest *req = (const void *)request;
	struct db *db = rpc_call_db(call);
	Creneau__V1__EraseReply *reply;
	struct store_account acc;
	int rc;

	rc = service_only(call);
	if (rc)
		return rc;
	reply = NEW_MSG(call, Creneau__V1__EraseReply, erase_reply);
	if (!reply)
		return ERR_NOMEM;
	*reply_out = &reply->base;
	if (!req->subject || !validate_uuid(req->subject->account_id))
		return 0;
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_get_account(db, rpc_call_arena(call),
			       req->subject->account_id, &acc);
	if (rc == ERR_NOT_FOUND) {
		db_rollback(db);
		return 0;
	}
	if (!rc)
		rc = delete_account(call, acc.id, role_from_text(acc.role));
	if (!rc)
		rc = db_commit(db);
	if (rc) {
		db_rollback(db);
		return rc;
	}
	reply->erased = 1;
	log_notice(rpc_call_request_id(call), "account erased account=%s",
		   acc.id);
	return 0;
}

static int handle_sweep(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out)
{
	const Creneau__V1__SweepRequest *req = (const void *)request;
	Creneau__V1__SweepReply *reply;
	long n;
	int rc;

	rc = service_only(call);
	if (rc)
		return rc;
	if (strcmp(req->category, "connection_log") != 0)
		return rpc_call_fail(call, ERR_INVALID, "unknown_category",
				     "category",
				     "this service sweeps only connection_log");
	rc = store_sweep_connection_log(rpc_call_db(call), req->cutoff_ms, &n);
	if (rc)
		return rc;
	reply = NEW_MSG(call, Creneau__V1__SweepReply, sweep_reply);
	if (!reply)
		return ERR_NOMEM;
	reply->erased = (uint32_t)n;
	*reply_out = &reply->base;
	return 0;
}

/* ---- the table ---- */

const struct rpc_method handlers_methods[] = {
    RPC_METHOD("CreateAccount", create_account_request, handle_create_account),
    RPC_METHOD("ConfirmEmail", confirm_email_request, handle_confirm_email),
    RPC_METHOD("ResendVerification", resend_verification_request,
	   handle_resend_verification),
    RPC_METHOD("CreateSession", create_session_request, handle_create_session),
    RPC_METHOD("ValidateSession", validate_session_request,
	   handle_validate_session),
    RPC_METHOD("DeleteCurrentSession", delete_current_session_request,
	   handle_delete_current_session),
    RPC_METHOD("ListSessions", list_sessions_request, handle_list_sessions),
    RPC_METHOD("RevokeSession", revoke_session_request, handle_revoke_session),
    RPC_METHOD("RequestPasswordReset", request_password_reset_request,
	   handle_request_password_reset),
    RPC_METHOD("ConfirmPasswordReset", confirm_password_reset_request,
	   handle_confirm_password_reset),
    RPC_METHOD("GetMe", get_me_request, handle_get_me),
    RPC_METHOD("UpdateMe", update_me_request, handle_update_me),
    RPC_METHOD("ChangePassword", change_password_request, handle_change_password),
    RPC_METHOD("DeleteMe", delete_me_request, handle_delete_me),
    RPC_METHOD("GetCompany", get_company_request, handle_get_company),
    RPC_METHOD("PutCompany", company, handle_put_company),
    RPC_METHOD("GetPractice", get_practice_request, handle_get_practice),
    RPC_METHOD("PutPractice", practice, handle_put_practice),
    RPC_METHOD("ListPractitioners", list_practitioners_request,
	   handle_list_practitioners),
    RPC_METHOD("GetPractitioner", get_practitioner_request,
	   handle_get_practitioner),
    RPC_METHOD("ListSpecialties", list_reference_request, handle_list_specialties),
    RPC_METHOD("ListRegions", list_reference_request, handle_list_regions),
    RPC_METHOD("ListFavorites", list_favorites_request, handle_list_favorites),
    RPC_METHOD("PutFavorite", favorite_request, handle_put_favorite),
    RPC_METHOD("DeleteFavorite", favorite_request, handle_delete_favorite),
    RPC_METHOD("GetAccountStatus", get_account_status_request,
	   handle_get_account_status),
    RPC_METHOD("CreateAdmin", create_admin_request, handle_create_admin),
    RPC_METHOD("SetSubscription", set_subscription_request,
	   handle_set_subscription),
    RPC_METHOD("Export", export_request, handle_export),
    RPC_METHOD("Erase", erase_request, handle_erase),
    RPC_METHOD("Sweep", sweep_request, handle_sweep),
};

const size_t handlers_methods_count =
    sizeof(handlers_methods) / sizeof(handlers_methods[0]);

int handlers_init(struct accounts_settings *s)
{
	char pw[SECURE_TOKEN_TEXT];
	uint8_t unused[SECURE_HASH_BYTES];
	int rc;

	/* a hash of a random password at the current cost */
	secure_token_new(pw, unused);
	rc = password_hash(pw, &s->cost, s->dummy_hash);
	sodium_memzero(pw, sizeof(pw));
	return rc;
}
