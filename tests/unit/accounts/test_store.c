/* test_store.c - the accounts SQL (store.c) against a real PostgreSQL
 * (CRENEAU_TEST_PG), in a scratch schema. */
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
#include "db.h"
#include "log.h"
#include "secure.h"

/* the module under test is a service file, compiled in here */
#include "../../../services/accounts/store.c"

#define MIGRATION_DIR "/../../../services/accounts/migrations/"

/* every migration of the service, in order */
static const char *const migration_files[] = {
    "001_accounts.sql", "002_language.sql",
    "003_reset_limits_idempotency.sql"};
#define N_MIGRATIONS (sizeof(migration_files) / sizeof(migration_files[0]))

static const char *pg;
static struct db *db;
static struct arena *a;
static char schema[64];

#define NEED_PG()                                                              \
	do {                                                                   \
		if (!pg)                                                       \
			skip();                                                \
	} while (0)

/* A migration's text, read from the source tree next to this file. */
static char *read_migration(const char *name)
{
	char path[4096];
	const char *dir_end = strrchr(__FILE__, '/');
	FILE *f;
	char *text;
	long n;

	snprintf(path, sizeof(path), "%.*s%s%s", (int)(dir_end - __FILE__),
		 __FILE__, MIGRATION_DIR, name);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return text;
}

static void exec_ok(const char *sql)
{
	assert_int_equal(db_exec(db, sql, 0, NULL, NULL), 0);
}

static int setup(void **state)
{
	struct db_migration m[N_MIGRATIONS];
	char sql[256];
	size_t i;

	if (!pg)
		return 0;
	snprintf(schema, sizeof(schema), "accounts_test_%d", (int)getpid());
	assert_int_equal(db_open(&db, pg), 0);
	assert_int_equal(db_ensure(db), 0);
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
	exec_ok(sql);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
	exec_ok(sql);
	for (i = 0; i < N_MIGRATIONS; i++) {
		m[i].name = migration_files[i];
		m[i].sql = read_migration(migration_files[i]);
	}
	assert_int_equal(db_migrate(db, schema, m, N_MIGRATIONS), 0);
	for (i = 0; i < N_MIGRATIONS; i++)
		free((char *)m[i].sql);
	snprintf(sql, sizeof(sql), "SET search_path = %s", schema);
	exec_ok(sql);
	a = arena_new(0);
	assert_non_null(a);
	return 0;
}

static int teardown(void **state)
{
	char sql[128];

	if (!pg)
		return 0;
	snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
	exec_ok(sql);
	arena_free(a);
	db_close(db);
	return 0;
}

static void new_account(const char *role, const char *email, bool verified,
			char id[STORE_ID_TEXT])
{
	struct store_new_account in = {
	    .role = role,
	    .email = email,
	    .password_hash = "h",
	    .first_name = "Élise",
	    .last_name = "Noël",
	    .phone = "",
	    .address = "",
	    .terms_version = "2026-01",
	    .verified = verified,
	    .trial_days = 30,
	    .idempotency_key = "",
	};

	assert_int_equal(store_insert_account(db, &in, id), 0);
}

static void test_accounts_unique_without_case(void **state)
{
	struct store_new_account in = {
	    .role = "client",
	    .email = "Dup@Example.org",
	    .password_hash = "h",
	    .first_name = "A",
	    .last_name = "B",
	    .phone = "",
	    .address = "",
	    .terms_version = "2026-01",
	};
	struct store_account acc;
	char id[STORE_ID_TEXT], id2[STORE_ID_TEXT];
	char *login_id, *hash;

	NEED_PG();
	new_account("client", "dup@example.org", false, id);
	assert_int_equal(store_insert_account(db, &in, id2), ERR_CONFLICT);
	assert_int_equal(
	    store_get_login(db, a, "DUP@EXAMPLE.ORG", &login_id, &hash), 0);
	assert_string_equal(login_id, id);
	assert_int_equal(store_get_account(db, a, id, &acc), 0);
	assert_string_equal(acc.first_name, "Élise");
	assert_string_equal(acc.subscription_status, "none");
	assert_false(acc.email_verified);
	assert_false(acc.listed);
	assert_true(acc.terms_accepted_ms > 0);
	assert_int_equal(
	    store_get_account(db, a, "00000000-0000-4000-8000-000000000000",
			      &acc),
	    ERR_NOT_FOUND);
	/* text that looks like SQL is only text */
	in.email = "x'); DROP TABLE accounts; --@example.org";
	assert_int_equal(store_insert_account(db, &in, id2), 0);
	assert_int_equal(store_get_account(db, a, id2, &acc), 0);
	assert_string_equal(acc.email, in.email);
}

static void test_language(void **state)
{
	struct store_new_account in = {
	    .role = "client",
	    .email = "en@example.org",
	    .password_hash = "h",
	    .first_name = "Ann",
	    .last_name = "Lee",
	    .phone = "+447700900123",
	    .address = "",
	    .terms_version = "2026-01",
	    .language = "en",
	};
	struct store_profile lang_only = {.language = "fr"};
	struct store_profile bad = {.language = "de"};
	struct store_account acc;
	char id[STORE_ID_TEXT], id2[STORE_ID_TEXT];
	char *doc;

	NEED_PG();
	/* not given: French */
	new_account("client", "fr@example.org", false, id);
	assert_int_equal(store_get_account(db, a, id, &acc), 0);
	assert_string_equal(acc.language, "fr");
	assert_int_equal(store_insert_account(db, &in, id2), 0);
	assert_int_equal(store_get_account(db, a, id2, &acc), 0);
	assert_string_equal(acc.language, "en");
	assert_int_equal(store_export(db, a, id2, &doc), 0);
	assert_non_null(strstr(doc, "\"language\": \"en\""));
	/* only the language changes; the rest stays */
	assert_int_equal(store_update_profile(db, id2, &lang_only), 0);
	assert_int_equal(store_get_account(db, a, id2, &acc), 0);
	assert_string_equal(acc.language, "fr");
	assert_string_equal(acc.phone, "+447700900123");
	assert_string_equal(acc.first_name, "Ann");
	/* the schema refuses anything else */
	assert_int_equal(store_update_profile(db, id2, &bad), ERR_INVALID);
	assert_int_equal(store_get_account(db, a, id2, &acc), 0);
	assert_string_equal(acc.language, "fr");
}

static void test_tokens_single_use_and_expiry(void **state)
{
	uint8_t hash[SECURE_HASH_BYTES], old[SECURE_HASH_BYTES];
	char text[SECURE_TOKEN_TEXT], id[STORE_ID_TEXT];
	char *account, *email;

	NEED_PG();
	new_account("client", "tok@example.org", false, id);
	secure_token_new(text, hash);
	assert_int_equal(store_insert_token(db, hash, id, "verify_email",
					    "tok@example.org", 3600),
			 0);
	/* the wrong purpose does not consume it */
	assert_int_equal(
	    store_take_token(db, a, hash, "reset_password", &account, &email),
	    ERR_NOT_FOUND);
	assert_int_equal(
	    store_take_token(db, a, hash, "verify_email", &account, &email), 0);
	assert_string_equal(account, id);
	assert_string_equal(email, "tok@example.org");
	assert_int_equal(
	    store_take_token(db, a, hash, "verify_email", &account, &email),
	    ERR_NOT_FOUND);
	/* expired: refused (and gone) */
	secure_token_new(text, old);
	assert_int_equal(
	    store_insert_token(db, old, id, "reset_password", NULL, 0), 0);
	assert_int_equal(
	    store_take_token(db, a, old, "reset_password", &account, &email),
	    ERR_NOT_FOUND);
	assert_int_equal(store_confirm_email(db, id, "tok@example.org"), 0);
	assert_int_equal(store_confirm_email(db, id, "other@example.org"),
			 ERR_NOT_FOUND);
}

static void test_sessions(void **state)
{
	uint8_t h1[SECURE_HASH_BYTES], h2[SECURE_HASH_BYTES];
	char t1[SECURE_TOKEN_TEXT], t2[SECURE_TOKEN_TEXT];
	char id[STORE_ID_TEXT], s1[STORE_ID_TEXT], s2[STORE_ID_TEXT];
	struct store_session sess, *items;
	int64_t expires;
	size_t n;
	long gone;

	NEED_PG();
	new_account("client", "sess@example.org", true, id);
	secure_token_new(t1, h1);
	secure_token_new(t2, h2);
	assert_int_equal(
	    store_insert_session(db, id, h1, 600, 3600, "ua", s1, &expires), 0);
	assert_true(expires > 0);
	assert_int_equal(
	    store_insert_session(db, id, h2, 600, 3600, "", s2, &expires), 0);
	assert_int_equal(store_touch_session(db, a, h1, 600, &sess), 0);
	assert_string_equal(sess.id, s1);
	assert_string_equal(sess.account_id, id);
	assert_string_equal(sess.role, "client");
	assert_int_equal(store_list_sessions(db, a, id, &items, &n), 0);
	assert_int_equal(n, 2);
	/* another account cannot delete it */
	assert_int_equal(store_delete_session(
			     db, "00000000-0000-4000-8000-000000000000", s1),
			 ERR_NOT_FOUND);
	assert_int_equal(store_delete_session(db, id, s1), 0);
	assert_int_equal(store_touch_session(db, a, h1, 600, &sess),
			 ERR_NOT_FOUND);
	assert_int_equal(store_delete_sessions(db, id, &gone), 0);
	assert_int_equal(gone, 1);
	assert_int_equal(store_touch_session(db, a, h2, 600, &sess),
			 ERR_NOT_FOUND);
}

static void test_throttle(void **state)
{
	uint8_t key[SECURE_HASH_BYTES], other[SECURE_HASH_BYTES];
	int64_t retry;

	NEED_PG();
	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_log_attempt(db, NULL, key, "192.0.2.1",
						   "ua", "bad_credentials"),
				 0);
	assert_int_equal(
	    store_throttle(db, key, "198.51.100.1", 60, 4, 100, &retry), 0);
	assert_int_equal(retry, 0);
	assert_int_equal(
	    store_throttle(db, key, "198.51.100.1", 60, 3, 100, &retry), 0);
	assert_true(retry > 0 && retry <= 60);
	/* per address: another e-mail from the same place */
	assert_int_equal(
	    store_throttle(db, other, "192.0.2.1", 60, 3, 3, &retry), 0);
	assert_true(retry > 0);
	assert_int_equal(store_throttle(db, other, "", 60, 3, 3, &retry), 0);
	assert_int_equal(retry, 0);
	/* a malformed address is bad data, not a crash */
	assert_int_equal(store_log_attempt(db, NULL, key, "not-an-ip", "",
					   "bad_credentials"),
			 ERR_INVALID);
}

/* An Idempotency-Key is scoped to its e-mail and keeps its request's
 * digest and the account's password hash for the replay check. */
static void test_idempotency_per_email(void **state)
{
	uint8_t digest[SECURE_HASH_BYTES];
	struct store_new_account in = {
	    .role = "client",
	    .email = "idem1@example.org",
	    .password_hash = "h1",
	    .first_name = "A",
	    .last_name = "B",
	    .phone = "",
	    .address = "",
	    .terms_version = "2026-01",
	    .idempotency_key = "same-key",
	    .idempotency_hash = digest,
	};
	struct store_idempotent found;
	char id[STORE_ID_TEXT], id2[STORE_ID_TEXT];

	NEED_PG();
	for (size_t i = 0; i < sizeof(digest); i++)
		digest[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(store_insert_account(db, &in, id), 0);
	/* another user's sign-up with the same key is no conflict */
	in.email = "idem2@example.org";
	in.password_hash = "h2";
	in.idempotency_hash = NULL;
	assert_int_equal(store_insert_account(db, &in, id2), 0);
	assert_int_equal(
	    store_find_idempotent(db, a, "same-key", "IDEM1@example.org", &found),
	    0);
	assert_string_equal(found.id, id);
	assert_true(found.has_request_hash);
	assert_memory_equal(found.request_hash, digest, sizeof(digest));
	assert_string_equal(found.password_hash, "h1");
	assert_int_equal(
	    store_find_idempotent(db, a, "same-key", "idem2@example.org", &found),
	    0);
	assert_string_equal(found.id, id2);
	assert_false(found.has_request_hash);
	assert_int_equal(
	    store_find_idempotent(db, a, "other", "idem1@example.org", &found),
	    ERR_NOT_FOUND);
	assert_int_equal(
	    store_find_idempotent(db, a, "same-key", "nobody@example.org",
				  &found),
	    ERR_NOT_FOUND);
}

/* Password reset: one per address per interval, a per-client-address cap,
 * and the token made in one statement whether or not the address exists. */
static void test_reset_limits(void **state)
{
	uint8_t key[SECURE_HASH_BYTES], other[SECURE_HASH_BYTES];
	uint8_t t1[SECURE_HASH_BYTES], t2[SECURE_HASH_BYTES];
	struct store_account acc;
	char id[STORE_ID_TEXT], *account_id, *email;
	int64_t key_wait, ip_wait, age;

	NEED_PG();
	memset(key, 3, sizeof(key));
	memset(other, 4, sizeof(other));
	memset(t1, 5, sizeof(t1));
	memset(t2, 6, sizeof(t2));
	assert_int_equal(store_reset_throttle(db, key, "192.0.2.5", 300, 2,
					      &key_wait, &ip_wait),
			 0);
	assert_int_equal(key_wait, 0);
	assert_int_equal(ip_wait, 0);
	assert_int_equal(store_log_attempt(db, NULL, key, "192.0.2.5", NULL,
					   "reset_requested"),
			 0);
	assert_int_equal(store_reset_throttle(db, key, "", 300, 2, &key_wait,
					      &ip_wait),
			 0);
	assert_true(key_wait > 0 && key_wait <= 300);
	assert_int_equal(ip_wait, 0);
	/* refused requests count for the client address, not the e-mail */
	assert_int_equal(store_log_attempt(db, NULL, other, "192.0.2.5", NULL,
					   "reset_throttled"),
			 0);
	assert_int_equal(store_reset_throttle(db, other, "192.0.2.5", 300, 2,
					      &key_wait, &ip_wait),
			 0);
	assert_int_equal(key_wait, 0);
	assert_true(ip_wait > 0 && ip_wait <= 300);
	/* and resets are not failed sign-ins */
	assert_int_equal(
	    store_throttle(db, key, "192.0.2.5", 300, 1, 1, &key_wait), 0);
	assert_int_equal(key_wait, 0);

	new_account("client", "reset@example.org", true, id);
	assert_int_equal(store_reset_prepare(db, a, t1, "nobody@example.org",
					     3600, &acc),
			 ERR_NOT_FOUND);
	assert_int_equal(store_token_age(db, id, "reset_password", &age),
			 ERR_NOT_FOUND);
	assert_int_equal(store_reset_prepare(db, a, t1, "RESET@example.org",
					     3600, &acc),
			 0);
	assert_string_equal(acc.id, id);
	assert_string_equal(acc.first_name, "Élise");
	assert_string_equal(acc.language, "fr");
	/* a newer token replaces the older one */
	assert_int_equal(store_reset_prepare(db, a, t2, "reset@example.org",
					     3600, &acc),
			 0);
	assert_int_equal(store_take_token(db, a, t1, "reset_password",
					  &account_id, &email),
			 ERR_NOT_FOUND);
	assert_int_equal(store_take_token(db, a, t2, "reset_password",
					  &account_id, &email),
			 0);
	assert_string_equal(account_id, id);
}

static void put_practice(const char *id, const char *name, char *specialty,
			 const char *city, const char *postcode,
			 const char *region)
{
	char *specialties[1] = {specialty}, *languages[1] = {"fr"};
	struct store_practice p = {
	    .display_name = (char *)name,
	    .specialties = specialties,
	    .n_specialties = 1,
	    .city = (char *)city,
	    .postcode = (char *)postcode,
	    .region = (char *)region,
	    .bio = "Séances de réflexologie",
	    .languages = languages,
	    .n_languages = 1,
	};

	assert_int_equal(store_put_practice(db, id, &p), 0);
}

static size_t directory(struct store_directory_query *q,
			struct store_practice **items)
{
	size_t n;
	bool more;
	char *last;

	if (!q->limit)
		q->limit = 20;
	assert_int_equal(
	    store_list_directory(db, a, q, items, &n, &more, &last), 0);
	return n;
}

static void test_directory_and_favorites(void **state)
{
	char p1[STORE_ID_TEXT], p2[STORE_ID_TEXT], hidden[STORE_ID_TEXT];
	char client[STORE_ID_TEXT];
	struct store_directory_query q = {0};
	struct store_practice *items, one;
	size_t n;
	bool more;
	char *last;

	NEED_PG();
	new_account("practitioner", "p1@example.org", true, p1);
	new_account("practitioner", "p2@example.org", true, p2);
	new_account("practitioner", "p3@example.org", false, hidden);
	new_account("client", "c@example.org", true, client);
	put_practice(p1, "Élodie Kinésiologue", "kinesiologie", "Saint-Étienne",
		     "42000", "auvergne-rhone-alpes");
	put_practice(p2, "Marc Sophrologue", "sophrologie", "Rennes", "35000",
		     "bretagne");
	put_practice(hidden, "Caché", "kinesiologie", "Lyon", "69001",
		     "auvergne-rhone-alpes");

	assert_int_equal(directory(&q, &items), 2);
	q.q = "kinesiologie";
	assert_int_equal(directory(&q, &items), 1);
	assert_string_equal(items[0].id, p1);
	assert_string_equal(items[0].specialties[0], "kinesiologie");
	q.q = "KINÉSIOLOGUE";
	assert_int_equal(directory(&q, &items), 1);
	q.q = NULL;
	q.city = "SAINT-ETIENNE";
	assert_int_equal(directory(&q, &items), 1);
	q.city = NULL;
	q.postcode = "35";
	assert_int_equal(directory(&q, &items), 1);
	assert_string_equal(items[0].id, p2);
	q.postcode = NULL;
	q.specialty = "sophrologie";
	q.region = "auvergne-rhone-alpes";
	assert_int_equal(directory(&q, &items), 0);

	/* keyset paging: one per page, the cursor after the first */
	memset(&q, 0, sizeof(q));
	q.limit = 1;
	assert_int_equal(
	    store_list_directory(db, a, &q, &items, &n, &more, &last), 0);
	assert_int_equal(n, 1);
	assert_true(more);
	assert_string_equal(last, "elodie kinesiologue");
	q.after_key = last;
	q.after_id = items[0].id;
	assert_int_equal(
	    store_list_directory(db, a, &q, &items, &n, &more, &last), 0);
	assert_int_equal(n, 1);
	assert_false(more);
	assert_string_equal(items[0].id, p2);

	assert_int_equal(store_get_listed(db, a, p1, &one), 0);
	assert_int_equal(store_get_listed(db, a, hidden, &one), ERR_NOT_FOUND);
	assert_int_equal(store_put_favorite(db, client, p1), 0);
	assert_int_equal(store_put_favorite(db, client, p1), 0);
	assert_int_equal(store_put_favorite(db, client, hidden), ERR_NOT_FOUND);
	assert_int_equal(store_list_favorites(db, a, client, &items, &n), 0);
	assert_int_equal(n, 1);
	/* suspended: out of the directory and of the favourites shown */
	assert_int_equal(store_set_subscription(db, p1, "suspended"), 0);
	assert_int_equal(store_get_listed(db, a, p1, &one), ERR_NOT_FOUND);
	assert_int_equal(store_list_favorites(db, a, client, &items, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_set_subscription(db, client, "active"),
			 ERR_NOT_FOUND);
	assert_int_equal(store_delete_favorite(db, client, p1), 0);
	assert_int_equal(store_delete_favorite(db, client, p1), ERR_NOT_FOUND);
}

static void test_delete_cascades_and_export(void **state)
{
	uint8_t hash[SECURE_HASH_BYTES];
	char text[SECURE_TOKEN_TEXT], id[STORE_ID_TEXT], sid[STORE_ID_TEXT];
	struct store_company c = {"SARL", "73282932000074", "1 rue", ""};
	struct store_account acc;
	int64_t expires;
	char *doc;

	NEED_PG();
	new_account("practitioner", "gone@example.org", true, id);
	secure_token_new(text, hash);
	assert_int_equal(
	    store_insert_session(db, id, hash, 60, 60, "", sid, &expires), 0);
	assert_int_equal(store_put_company(db, id, &c), 0);
	assert_int_equal(store_export(db, a, id, &doc), 0);
	assert_non_null(strstr(doc, "73282932000074"));
	assert_null(strstr(doc, "password_hash"));
	assert_int_equal(store_delete_account(db, id), 0);
	assert_int_equal(store_get_account(db, a, id, &acc), ERR_NOT_FOUND);
	assert_int_equal(store_delete_account(db, id), ERR_NOT_FOUND);
	assert_int_equal(store_get_company(db, a, id, &c), ERR_NOT_FOUND);
	assert_int_equal(store_export(db, a, id, &doc), 0);
	assert_non_null(strstr(doc, "\"account\" : null"));
}

static void test_database_down(void **state)
{
	struct db *down;
	struct store_account acc;
	char id[STORE_ID_TEXT];
	struct store_new_account in = {
	    .role = "client",
	    .email = "x@example.org",
	    .password_hash = "h",
	    .first_name = "A",
	    .last_name = "B",
	    .phone = "",
	    .address = "",
	    .terms_version = "v",
	};
	struct arena *scratch = arena_new(0);

	assert_int_equal(db_open(&down, "host=127.0.0.1 port=1 dbname=x "
					"connect_timeout=2"),
			 0);
	assert_int_equal(store_insert_account(down, &in, id), ERR_UNAVAILABLE);
	assert_int_equal(
	    store_get_account(down, scratch,
			      "00000000-0000-4000-8000-000000000000", &acc),
	    ERR_UNAVAILABLE);
	db_close(down);
	arena_free(scratch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_accounts_unique_without_case,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tokens_single_use_and_expiry,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_language, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idempotency_per_email, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_reset_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_directory_and_favorites, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_delete_cascades_and_export,
					    setup, teardown),
	    cmocka_unit_test(test_database_down),
	};

	if (secure_init() || log_init("test_store", "err"))
		return 1;
	pg = getenv("CRENEAU_TEST_PG");
	if (!pg || !*pg) {
		pg = NULL;
		fprintf(stderr, "test_store: CRENEAU_TEST_PG is not set: the "
				"database tests are skipped\n");
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
