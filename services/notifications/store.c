/* store.c - every SQL statement of notifications (schema notify); no PGresult leaves this file. */
#include "store.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include "db.h"
#include "messages.h"
#include "secure.h"

static void fmt_i64(char out[24], int64_t v)
{
	snprintf(out, 24, "%lld", (long long)v);
}

static char *dup_value(PGresult *res, int row, int col)
{
	return strdup(PQgetvalue(res, row, col));
}

/* Runs a statement whose row count is all that matters. */
static int exec_count(struct db *db, const char *sql, int n,
		      const char *const *params, int *count_out)
{
	PGresult *res;
	int rc = db_exec(db, sql, n, params, &res);

	if (rc)
		return rc;
	if (count_out)
		*count_out = atoi(PQcmdTuples(res));
	PQclear(res);
	return 0;
}

int store_enqueue(struct db *db, const struct store_message *m,
		  bool *inserted_out)
{
	char due[24];
	const char *params[] = {m->id,	      m->kind,	    m->dedup_key,
				m->account_id, m->booking_id, m->sender,
				m->recipient, m->message_id, m->body,
				m->due_ms ? due : NULL};
	int n, rc;

	fmt_i64(due, m->due_ms);
	rc = exec_count(db,
			"INSERT INTO notify.outbox (id, kind, dedup_key, "
			"account_id, booking_id, sender, recipient, "
			"message_id, body, due_at) VALUES ($1, $2, $3, $4, "
			"$5, $6, $7, $8, $9, coalesce(to_timestamp($10::bigint"
			" / 1000.0), now())) ON CONFLICT (dedup_key) DO NOTHING",
			10, params, &n);
	if (!rc && inserted_out)
		*inserted_out = n == 1;
	return rc;
}

int store_listen(struct db *db, int *pid_io)
{
	PGconn *conn = db_conn(db);
	int pid = conn ? PQbackendPID(conn) : 0;
	int rc;

	if (!pid || pid == *pid_io)
		return 0;
	rc = exec_count(db, "LISTEN notify_outbox", 0, NULL, NULL);
	if (!rc)
		*pid_io = pid;
	return rc;
}

void store_wait(struct db *db, int wake_fd, long ms)
{
	PGconn *conn = db ? db_conn(db) : NULL;
	int sock = conn && PQstatus(conn) == CONNECTION_OK ? PQsocket(conn)
							    : -1;
	struct pollfd p[2] = {{.fd = wake_fd, .events = POLLIN},
			      {.fd = sock, .events = POLLIN}};
	PGnotify *n;

	/* notifications that came with the last results are already here */
	if (conn && (n = PQnotifies(conn)) != NULL) {
		PQfreemem(n);
		goto out_drain;
	}
	if (poll(p, sock >= 0 ? 2 : 1, (int)ms) <= 0 || sock < 0 ||
	    !(p[1].revents & (POLLIN | POLLERR | POLLHUP)))
		return;
	PQconsumeInput(conn);
out_drain:
	while ((n = PQnotifies(conn)) != NULL)
		PQfreemem(n);
}

int store_claim_due(struct db *db, struct store_claim *out)
{
	PGresult *res;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = db_exec(db,
		     "SELECT id, sender, recipient, body, attempts, "
		     "(extract(epoch FROM created_at) * 1000)::bigint "
		     "FROM notify.outbox WHERE status = 'queued' AND due_at <= "
		     "now() ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED",
		     0, NULL, &res);
	if (rc)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return ERR_NOT_FOUND;
	}
	snprintf(out->id, sizeof(out->id), "%s", PQgetvalue(res, 0, 0));
	out->sender = dup_value(res, 0, 1);
	out->recipient = dup_value(res, 0, 2);
	out->body = dup_value(res, 0, 3);
	out->body_len = (size_t)PQgetlength(res, 0, 3);
	out->attempts = atoi(PQgetvalue(res, 0, 4));
	out->created_ms = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	PQclear(res);
	if (!out->sender || !out->recipient || !out->body) {
		store_claim_free(out);
		return ERR_NOMEM;
	}
	return 0;
}

void store_claim_free(struct store_claim *c)
{
	free(c->sender);
	free(c->recipient);
	free(c->body);
	c->sender = c->recipient = c->body = NULL;
}

static void fmt_code(char out[24], long code)
{
	snprintf(out, 24, "%ld", code);
}

int store_mark_sent(struct db *db, const char *id, long code)
{
	char c[24];
	const char *params[] = {id, c};

	fmt_code(c, code);
	return exec_count(db,
			  "UPDATE notify.outbox SET status = 'sent', sent_at = "
			  "now(), attempts = attempts + 1, last_code = "
			  "nullif($2::int, 0), last_error = NULL WHERE id = $1",
			  2, params, NULL);
}

int store_mark_retry(struct db *db, const char *id, int64_t due_ms, long code,
		     const char *reason)
{
	char c[24], due[24];
	const char *params[] = {id, due, c, reason};

	fmt_code(c, code);
	fmt_i64(due, due_ms);
	return exec_count(db,
			  "UPDATE notify.outbox SET attempts = attempts + 1, "
			  "due_at = to_timestamp($2::bigint / 1000.0), "
			  "last_code = nullif($3::int, 0), last_error = $4 "
			  "WHERE id = $1",
			  4, params, NULL);
}

int store_mark_failed(struct db *db, const char *id, long code,
		      const char *reason)
{
	char c[24];
	const char *params[] = {id, c, reason};

	fmt_code(c, code);
	return exec_count(db,
			  "UPDATE notify.outbox SET status = 'failed', "
			  "attempts = attempts + 1, last_code = "
			  "nullif($2::int, 0), last_error = $3 WHERE id = $1",
			  3, params, NULL);
}

int store_release_deferred(struct db *db, int *n_out)
{
	return exec_count(db,
			  "UPDATE notify.outbox SET due_at = now() WHERE status "
			  "= 'queued' AND attempts > 0 AND due_at > now() AND "
			  "coalesce(last_code, 0) IN (0, 421)",
			  0, NULL, n_out);
}

int store_cancel_queued(struct db *db, const char *booking_id,
			const char *kind, int *n_out)
{
	const char *params[] = {booking_id, kind};

	return exec_count(db,
			  "UPDATE notify.outbox SET status = 'cancelled' "
			  "WHERE booking_id = $1 AND status = 'queued' AND "
			  "($2::text IS NULL OR kind = $2)",
			  2, params, n_out);
}

int store_list_messages(struct db *db, const char *status, int limit,
			int (*fn)(void *arg,
				  const struct store_message_info *m),
			void *arg)
{
	char lim[24];
	const char *params[] = {status, lim};
	PGresult *res;
	int rc;

	fmt_i64(lim, limit);
	rc = db_exec(db,
		     "SELECT id, kind, recipient, status, attempts, "
		     "to_char(created_at AT TIME ZONE 'UTC', "
		     "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), to_char(due_at AT TIME "
		     "ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
		     "coalesce(to_char(sent_at AT TIME ZONE 'UTC', "
		     "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
		     "coalesce(last_code, 0), coalesce(last_error, '') FROM "
		     "notify.outbox WHERE $1::text IS NULL OR status = $1 "
		     "ORDER BY created_at DESC LIMIT $2::int",
		     2, params, &res);
	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(res) && !rc; i++) {
		struct store_message_info m = {
			.id = PQgetvalue(res, i, 0),
			.kind = PQgetvalue(res, i, 1),
			.recipient = PQgetvalue(res, i, 2),
			.status = PQgetvalue(res, i, 3),
			.attempts = atoi(PQgetvalue(res, i, 4)),
			.created_at = PQgetvalue(res, i, 5),
			.due_at = PQgetvalue(res, i, 6),
			.sent_at = PQgetvalue(res, i, 7),
			.last_code = atoi(PQgetvalue(res, i, 8)),
			.last_error = PQgetvalue(res, i, 9),
		};
		rc = fn(arg, &m);
	}
	PQclear(res);
	return rc;
}

int store_contact_put(struct db *db, const char *account_id, const char *role,
		      const char *email, const char *first_name,
		      const char *last_name, const char *language)
{
	const char *params[] = {account_id, role, email, first_name, last_name,
				language};

	return exec_count(db,
			  "INSERT INTO notify.contacts (account_id, role, "
			  "email, first_name, last_name, language) VALUES ($1,"
			  " $2, $3, $4, $5, coalesce($6, 'fr')) ON CONFLICT "
			  "(account_id) DO UPDATE SET role = EXCLUDED.role, "
			  "email = EXCLUDED.email, first_name = "
			  "EXCLUDED.first_name, last_name = EXCLUDED.last_name,"
			  " language = coalesce($6, notify.contacts.language),"
			  " updated_at = now()",
			  6, params, NULL);
}

int store_contact_set_email(struct db *db, const char *account_id,
			    const char *email)
{
	const char *params[] = {account_id, email};

	return exec_count(db,
			  "UPDATE notify.contacts SET email = $2, updated_at = "
			  "now() WHERE account_id = $1",
			  2, params, NULL);
}

int store_contact_get(struct db *db, const char *account_id,
		      struct store_contact *out)
{
	const char *params[] = {account_id};
	PGresult *res;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = db_exec(db,
		     "SELECT email, first_name, last_name, language, role "
		     "FROM notify.contacts WHERE account_id = $1",
		     1, params, &res);
	if (rc)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return ERR_NOT_FOUND;
	}
	out->email = dup_value(res, 0, 0);
	out->first_name = dup_value(res, 0, 1);
	out->last_name = dup_value(res, 0, 2);
	out->language = dup_value(res, 0, 3);
	out->role = dup_value(res, 0, 4);
	PQclear(res);
	if (!out->email || !out->first_name || !out->last_name ||
	    !out->language || !out->role) {
		store_contact_free(out);
		return ERR_NOMEM;
	}
	return 0;
}

void store_contact_free(struct store_contact *c)
{
	free(c->email);
	free(c->first_name);
	free(c->last_name);
	free(c->language);
	free(c->role);
	memset(c, 0, sizeof(*c));
}

int store_contact_delete(struct db *db, const char *account_id)
{
	const char *params[] = {account_id};
	int rc;

	rc = exec_count(db,
			"DELETE FROM notify.outbox WHERE account_id = $1 AND "
			"status = 'queued'",
			1, params, NULL);
	if (!rc)
		rc = exec_count(db,
				"DELETE FROM notify.contacts WHERE account_id "
				"= $1",
				1, params, NULL);
	if (!rc)
		rc = exec_count(db,
				"INSERT INTO notify.deleted_contacts "
				"(account_id) VALUES ($1) ON CONFLICT "
				"(account_id) DO NOTHING",
				1, params, NULL);
	return rc;
}

int store_contact_is_deleted(struct db *db, const char *account_id,
			     bool *out)
{
	const char *params[] = {account_id};
	PGresult *res;
	int rc;

	*out = false;
	rc = db_exec(db,
		     "SELECT 1 FROM notify.deleted_contacts WHERE account_id "
		     "= $1",
		     1, params, &res);
	if (rc)
		return rc;
	*out = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

int store_booking_next_sequence(struct db *db, const char *booking_id,
				int *seq_out)
{
	const char *params[] = {booking_id};
	PGresult *res;
	int rc;

	rc = db_exec(db,
		     "INSERT INTO notify.bookings (booking_id) VALUES ($1) ON "
		     "CONFLICT (booking_id) DO UPDATE SET ics_sequence = "
		     "notify.bookings.ics_sequence + 1, updated_at = now() "
		     "RETURNING ics_sequence",
		     1, params, &res);
	if (rc)
		return rc;
	*seq_out = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int store_local_time(struct db *db, int64_t ms, const char *tz,
		     struct messages_local_time *out)
{
	char t[24];
	const char *params[] = {t, tz && *tz ? tz : "Europe/Paris"};
	PGresult *res;
	int rc;

	fmt_i64(t, ms);
	/* an unknown zone is a data error the caller must not retry forever */
	rc = db_exec(db,
		     "SELECT extract(year FROM l)::int, extract(month FROM l)"
		     "::int, extract(day FROM l)::int, extract(isodow FROM l)"
		     "::int, extract(hour FROM l)::int, extract(minute FROM "
		     "l)::int FROM (SELECT to_timestamp($1::bigint / 1000.0) "
		     "AT TIME ZONE (SELECT name FROM pg_timezone_names WHERE "
		     "name = $2 UNION ALL SELECT 'Europe/Paris' LIMIT 1)) AS "
		     "s(l)",
		     2, params, &res);
	if (rc)
		return rc;
	out->year = atoi(PQgetvalue(res, 0, 0));
	out->month = atoi(PQgetvalue(res, 0, 1));
	out->day = atoi(PQgetvalue(res, 0, 2));
	out->weekday = atoi(PQgetvalue(res, 0, 3));
	out->hour = atoi(PQgetvalue(res, 0, 4));
	out->minute = atoi(PQgetvalue(res, 0, 5));
	PQclear(res);
	return 0;
}

int store_contact_rate_hit(struct db *db, const char *client_ip, long limit,
			   bool *allowed_out)
{
	const char *params[] = {client_ip};
	PGresult *res;
	int rc;

	rc = db_exec(db,
		     "INSERT INTO notify.contact_rate (client_ip, "
		     "window_start, hits) VALUES ($1, date_trunc('hour', "
		     "now()), 1) ON CONFLICT (client_ip, window_start) DO "
		     "UPDATE SET hits = notify.contact_rate.hits + 1 "
		     "RETURNING hits",
		     1, params, &res);
	if (rc)
		return rc;
	*allowed_out = atol(PQgetvalue(res, 0, 0)) <= limit;
	PQclear(res);
	return exec_count(db,
			  "DELETE FROM notify.contact_rate WHERE window_start "
			  "< now() - interval '2 hours'",
			  0, NULL, NULL);
}

int store_contact_message_insert(struct db *db, const char *id,
				 const char *name, const char *email,
				 const char *subject, const char *message)
{
	const char *params[] = {id, name, email, subject, message};

	return exec_count(db,
			  "INSERT INTO notify.contact_messages (id, name, "
			  "email, subject, message) VALUES ($1, $2, $3, $4, "
			  "$5)",
			  5, params, NULL);
}

static void hash_hex(const uint8_t *hash, char out[2 * SECURE_HASH_BYTES + 3])
{
	out[0] = '\\';
	out[1] = 'x';
	secure_hex(hash, SECURE_HASH_BYTES, out + 2);
}

int store_newsletter_subscribe(struct db *db, const char *new_id,
			       const char *email, const char *language,
			       const uint8_t *token_hash, char *id_out,
			       bool *already_confirmed_out)
{
	char hash[2 * SECURE_HASH_BYTES + 3];
	const char *params[] = {new_id, email, language, hash};
	PGresult *res;
	int rc;

	hash_hex(token_hash, hash);
	rc = db_exec(db,
		     "INSERT INTO notify.newsletter_subscribers (id, email, "
		     "language, confirm_token_hash) VALUES ($1, $2, $3, "
		     "$4::bytea) ON CONFLICT (lower(email)) DO UPDATE SET "
		     "confirm_token_hash = CASE WHEN "
		     "notify.newsletter_subscribers.status = 'confirmed' THEN "
		     "notify.newsletter_subscribers.confirm_token_hash ELSE "
		     "EXCLUDED.confirm_token_hash END, status = CASE WHEN "
		     "notify.newsletter_subscribers.status = 'confirmed' THEN "
		     "'confirmed' ELSE 'pending' END, language = "
		     "EXCLUDED.language RETURNING id, status = 'confirmed'",
		     4, params, &res);
	if (rc)
		return rc;
	snprintf(id_out, 37, "%s", PQgetvalue(res, 0, 0));
	*already_confirmed_out = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	return 0;
}

int store_newsletter_confirm(struct db *db, const uint8_t *token_hash,
			     const char *consent_version)
{
	char hash[2 * SECURE_HASH_BYTES + 3];
	const char *params[] = {hash, consent_version};
	int n, rc;

	hash_hex(token_hash, hash);
	rc = exec_count(db,
			"UPDATE notify.newsletter_subscribers SET status = "
			"'confirmed', consent_at = now(), consent_text_version "
			"= $2, last_interaction_at = now(), reconsent_sent_at "
			"= NULL, confirm_token_hash = NULL WHERE "
			"confirm_token_hash = $1::bytea AND status <> "
			"'unsubscribed'",
			2, params, &n);
	if (!rc && n == 0)
		rc = ERR_NOT_FOUND;
	return rc;
}

int store_newsletter_unsubscribe(struct db *db, const char *id)
{
	const char *params[] = {id};
	int n, rc;

	/* the address goes: nothing is kept of someone who left */
	rc = exec_count(db,
			"DELETE FROM notify.newsletter_subscribers WHERE id = "
			"$1::uuid",
			1, params, &n);
	if (!rc && n == 0)
		rc = ERR_NOT_FOUND;
	return rc;
}

static void fill_subscriber(PGresult *res, int row, struct store_subscriber *s)
{
	snprintf(s->id, sizeof(s->id), "%s", PQgetvalue(res, row, 0));
	snprintf(s->email, sizeof(s->email), "%s", PQgetvalue(res, row, 1));
	snprintf(s->language, sizeof(s->language), "%s",
		 PQgetvalue(res, row, 2));
}

int store_newsletter_confirmed(struct db *db,
			       int (*fn)(void *arg,
					 const struct store_subscriber *s),
			       void *arg)
{
	struct store_subscriber s;
	PGresult *res;
	int rc;

	rc = db_exec(db,
		     "SELECT id, email, language FROM "
		     "notify.newsletter_subscribers WHERE status = 'confirmed'"
		     " ORDER BY created_at",
		     0, NULL, &res);
	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(res) && !rc; i++) {
		fill_subscriber(res, i, &s);
		rc = fn(arg, &s);
	}
	PQclear(res);
	return rc;
}

int store_newsletter_campaign_add(struct db *db, const char *campaign,
				  const char *subject, int queued)
{
	char q[24];
	const char *params[] = {campaign, subject, q};

	fmt_i64(q, queued);
	return exec_count(db,
			  "INSERT INTO notify.newsletter_campaigns (campaign, "
			  "subject, queued) VALUES ($1, $2, $3::int)",
			  3, params, NULL);
}

int store_newsletter_campaign_count(struct db *db, const char *campaign,
				    int queued)
{
	char q[24];
	const char *params[] = {campaign, q};

	fmt_i64(q, queued);
	return exec_count(db,
			  "UPDATE notify.newsletter_campaigns SET queued = "
			  "$2::int WHERE campaign = $1",
			  2, params, NULL);
}

int store_newsletter_due_reconsent(struct db *db, int64_t cutoff_ms,
				   const uint8_t *token_hash,
				   struct store_subscriber *out)
{
	char cutoff[24], hash[2 * SECURE_HASH_BYTES + 3];
	const char *params[] = {cutoff, hash};
	PGresult *res;
	int rc;

	fmt_i64(cutoff, cutoff_ms);
	hash_hex(token_hash, hash);
	rc = db_exec(db,
		     "UPDATE notify.newsletter_subscribers SET "
		     "reconsent_sent_at = now(), confirm_token_hash = "
		     "$2::bytea WHERE id = (SELECT id FROM "
		     "notify.newsletter_subscribers WHERE status = "
		     "'confirmed' AND reconsent_sent_at IS NULL AND "
		     "last_interaction_at < to_timestamp($1::bigint / "
		     "1000.0) LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, "
		     "email, language",
		     2, params, &res);
	if (rc)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return ERR_NOT_FOUND;
	}
	fill_subscriber(res, 0, out);
	PQclear(res);
	return 0;
}

int store_newsletter_expire(struct db *db, int64_t asked_before_ms,
			    int64_t pending_before_ms, int *n_out)
{
	char asked[24], pending[24];
	const char *params[] = {asked, pending};

	fmt_i64(asked, asked_before_ms);
	fmt_i64(pending, pending_before_ms);
	return exec_count(db,
			  "DELETE FROM notify.newsletter_subscribers WHERE "
			  "(reconsent_sent_at < to_timestamp($1::bigint / "
			  "1000.0)) OR (status = 'pending' AND created_at < "
			  "to_timestamp($2::bigint / 1000.0))",
			  2, params, n_out);
}

int store_export(struct db *db, const char *account_id, const char *email,
		 char **json_out)
{
	const char *params[] = {account_id && *account_id ? account_id : NULL,
				email && *email ? email : NULL};
	PGresult *res;
	int rc;

	rc = db_exec(
		db,
		"SELECT json_build_object("
		"'contact', (SELECT row_to_json(c) FROM (SELECT account_id, "
		"email, first_name, last_name, language, updated_at FROM "
		"notify.contacts WHERE account_id = $1) c), "
		"'messages', (SELECT coalesce(json_agg(m ORDER BY created_at), "
		"'[]') FROM (SELECT id, kind, recipient, message_id, status, "
		"attempts, created_at, sent_at, last_error FROM notify.outbox "
		"WHERE account_id = $1 OR lower(recipient) = lower($2)) m), "
		"'contact_messages', (SELECT coalesce(json_agg(x), '[]') FROM "
		"(SELECT id, name, email, subject, message, created_at FROM "
		"notify.contact_messages WHERE lower(email) = lower($2)) x), "
		"'newsletter', (SELECT row_to_json(n) FROM (SELECT email, "
		"language, status, consent_text_version, consent_at, "
		"last_interaction_at, created_at FROM "
		"notify.newsletter_subscribers WHERE lower(email) = lower($2) "
		"OR lower(email) = (SELECT lower(email) FROM notify.contacts "
		"WHERE account_id = $1)) n))::text",
		2, params, &res);
	if (rc)
		return rc;
	*json_out = dup_value(res, 0, 0);
	PQclear(res);
	return *json_out ? 0 : ERR_NOMEM;
}

int store_erase(struct db *db, const char *account_id, const char *email,
		int *n_out)
{
	const char *params[] = {account_id && *account_id ? account_id : NULL,
				email && *email ? email : NULL};
	static const char *const sql[] = {
		"DELETE FROM notify.newsletter_subscribers WHERE lower(email) "
		"= lower($2::text) OR lower(email) = (SELECT lower(email) FROM "
		"notify.contacts WHERE account_id = $1::text)",
		"DELETE FROM notify.outbox WHERE account_id = $1::text OR "
		"lower(recipient) = lower($2::text) OR lower(recipient) = "
		"(SELECT lower(email) FROM notify.contacts WHERE account_id = "
		"$1::text)",
		"DELETE FROM notify.contact_messages WHERE lower(email) = "
		"lower($2::text) OR lower(email) = (SELECT lower(email) FROM "
		"notify.contacts WHERE account_id = $1::text)",
		"DELETE FROM notify.contacts WHERE account_id = $1::text OR "
		"lower(email) = lower($2::text)",
	};
	int total = 0, rc = 0;

	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && !rc; i++) {
		int n = 0;

		rc = exec_count(db, sql[i], 2, params, &n);
		total += n;
	}
	if (!rc && n_out)
		*n_out = total;
	return rc;
}

int store_sweep(struct db *db, const char *category, int64_t cutoff_ms,
		int *n_out)
{
	char cutoff[24];
	const char *params[] = {cutoff};
	const char *sql;

	if (strcmp(category, "contact_messages") == 0)
		sql = "DELETE FROM notify.contact_messages WHERE created_at < "
		      "to_timestamp($1::bigint / 1000.0)";
	else if (strcmp(category, "delivery_logs") == 0)
		sql = "DELETE FROM notify.outbox WHERE status <> 'queued' AND "
		      "created_at < to_timestamp($1::bigint / 1000.0)";
	else if (strcmp(category, "newsletter_subscribers") == 0)
		sql = "DELETE FROM notify.newsletter_subscribers WHERE "
		      "last_interaction_at < to_timestamp($1::bigint / 1000.0)";
	else
		return ERR_INVALID;
	fmt_i64(cutoff, cutoff_ms);
	return exec_count(db, sql, 1, params, n_out);
}
