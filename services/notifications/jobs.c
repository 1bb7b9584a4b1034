/* jobs.c - timed work of notifications: the outbox senders and the newsletter's re-consent. */
#include "jobs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <sodium.h>

#include "db.h"
#include "instant.h"
#include "log.h"
#include "mime.h"
#include "secure.h"
#include "store.h"

#define HOUSEKEEPING_MS 60000
#define DAY_MS (24LL * 3600 * 1000)

struct jobs {
	struct jobs_config cfg;
	atomic_bool stopping;
	int wake[2]; /* written once by jobs_stop: every thread wakes */
	pthread_t *threads;
	size_t n_threads;
};

int64_t jobs_backoff_ms(int attempt, long base_ms, long max_ms,
			uint32_t random)
{
	int64_t d = base_ms > 0 ? base_ms : 1;

	for (int i = 1; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	return d / 2 + (int64_t)(random % (uint32_t)(d / 2 + 1));
}

/* Sleeps up to ms, until a message is due (db, when it listens) or until
 * jobs_stop. */
static void nap(struct jobs *j, struct db *db, long ms)
{
	if (!atomic_load(&j->stopping))
		store_wait(db, j->wake[0], ms);
}

/* Records the outcome of one attempt on the claimed row. */
static int record(struct jobs *j, struct db *db, const struct store_claim *c,
		  const struct smtp_result *res)
{
	int64_t now = instant_now_ms();
	char reason[320];

	switch (res->outcome) {
	case SMTP_SENT:
		return store_mark_sent(db, c->id, res->code);
	case SMTP_FAILED:
		log_warn(NULL, "mail failed id=%s code=%ld", c->id, res->code);
		return store_mark_failed(db, c->id, res->code, res->reason);
	case SMTP_RETRY:
		break;
	}
	if (now - c->created_ms > j->cfg.give_up_s * 1000) {
		snprintf(reason, sizeof(reason), "gave up after %d attempts: %s",
			 c->attempts + 1, res->reason);
		log_warn(NULL, "mail given up id=%s attempts=%d", c->id,
			 c->attempts + 1);
		return store_mark_failed(db, c->id, res->code, reason);
	}
	log_info(NULL, "mail deferred id=%s attempt=%d code=%ld", c->id,
		 c->attempts + 1, res->code);
	return store_mark_retry(db, c->id,
				now + jobs_backoff_ms(c->attempts + 1,
						      j->cfg.retry_base_ms,
						      j->cfg.retry_max_ms,
						      randombytes_random()),
				res->code, res->reason);
}

/* A failure of the server itself, not of one message or recipient. */
static bool is_server_failure(const struct smtp_result *res)
{
	return res->outcome == SMTP_RETRY && (res->code == 0 || res->code == 421);
}

/* The server accepts mail again: what waited for it is due now. */
static void release_deferred(struct jobs *j, struct db *db)
{
	int n = 0;

	if (store_release_deferred(db, &n))
		return;
	/* the other senders hear of it through notify_outbox */
	if (n)
		log_notice(NULL, "mail server back: deferred messages released "
				 "count=%d", n);
}

/* One message: claim, send, mark, commit. ERR_NOT_FOUND when idle.
 * *server_down tracks whether this sender last saw the server fail. */
static int send_one(struct jobs *j, struct db *db, struct smtp_transport *t,
		    bool *server_down)
{
	struct store_claim c;
	struct smtp_result res;
	int rc;

	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_claim_due(db, &c);
	if (rc)
		goto out_rollback;
	/* dated when it leaves, not when it was queued (reminders) */
	if (mime_restamp_date(c.body, c.body_len, instant_now_ms()))
		log_debug(NULL, "mail without a Date to restamp id=%s", c.id);
	rc = smtp_send(t, c.sender, c.recipient, c.id, c.body, c.body_len,
		       &res);
	if (rc) {
		res.outcome = SMTP_FAILED;
		res.code = 0;
		snprintf(res.reason, sizeof(res.reason), "invalid envelope");
	}
	rc = record(j, db, &c, &res);
	if (!rc)
		rc = db_commit(db);
	if (rc && res.outcome == SMTP_SENT)
		log_err(NULL, "mail sent but not marked id=%s error=%s: it will "
			      "be sent again", c.id, error_str(rc));
	else if (!rc && res.outcome == SMTP_SENT)
		log_debug(NULL, "mail sent id=%s", c.id);
	store_claim_free(&c);
	if (rc) {
		db_rollback(db);
		return rc;
	}
	if (is_server_failure(&res)) {
		*server_down = true;
	} else if (res.outcome == SMTP_SENT && *server_down) {
		*server_down = false;
		release_deferred(j, db);
	}
	return 0;
out_rollback:
	db_rollback(db);
	return rc;
}

static void *sender_main(void *arg)
{
	struct jobs *j = arg;
	struct smtp_transport *t = NULL;
	struct db *db = NULL;
	bool server_down = true; /* a first success releases what waited */
	int listen_pid = 0, rc;

	if (db_open(&db, j->cfg.conninfo) || smtp_open(&t, &j->cfg.smtp)) {
		log_err(NULL, "mail sender cannot start");
		goto out;
	}
	while (!atomic_load(&j->stopping)) {
		rc = db_ensure(db);
		if (!rc && store_listen(db, &listen_pid))
			log_warn(NULL, "mail sender polls: LISTEN failed");
		if (!rc)
			rc = send_one(j, db, t, &server_down);
		if (rc)
			nap(j, db, rc == ERR_NOT_FOUND ? j->cfg.poll_ms
						       : j->cfg.poll_ms * 4);
	}
out:
	smtp_close(t);
	db_close(db);
	return NULL;
}

/* Asks one silent subscriber whether they still want the newsletter. */
static int reconsent_one(struct jobs *j, struct db *db, int64_t now)
{
	char token[SECURE_TOKEN_TEXT];
	uint8_t hash[SECURE_HASH_BYTES];
	struct store_subscriber s;
	struct messages_out out;
	int rc;

	secure_token_new(token, hash);
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = store_newsletter_due_reconsent(
		db, now - j->cfg.reconsent_after_days * DAY_MS, hash, &s);
	if (rc)
		goto out_rollback;
	struct messages_party to = {.email = s.email, .first_name = "",
				    .last_name = "", .language = s.language};
	rc = messages_newsletter_confirm(j->cfg.messages, &to, token, true, now,
					 &out);
	if (rc)
		goto out_rollback;
	struct store_message m = {
		.id = out.id, .kind = "newsletter_reconsent",
		.sender = j->cfg.messages->from_addr, .recipient = s.email,
		.message_id = out.message_id, .body = out.mail.data,
	};
	rc = store_enqueue(db, &m, NULL);
	messages_out_free(&out);
	if (!rc)
		rc = db_commit(db);
	if (rc)
		goto out_rollback;
	return 0;
out_rollback:
	db_rollback(db);
	return rc;
}

static void housekeeping(struct jobs *j, struct db *db)
{
	int64_t now = instant_now_ms();
	int n = 0, rc;

	if (db_ensure(db))
		return;
	for (int i = 0; i < 100 && !atomic_load(&j->stopping); i++)
		if (reconsent_one(j, db, now))
			break;
	rc = store_newsletter_expire(db,
				     now - j->cfg.reconsent_wait_days * DAY_MS,
				     now - j->cfg.reconsent_wait_days * DAY_MS,
				     &n);
	if (!rc && n)
		log_info(NULL, "newsletter addresses expired count=%d", n);
}

static void *housekeeping_main(void *arg)
{
	struct jobs *j = arg;
	struct db *db = NULL;

	if (db_open(&db, j->cfg.conninfo)) {
		log_err(NULL, "housekeeping cannot start");
		return NULL;
	}
	while (!atomic_load(&j->stopping)) {
		housekeeping(j, db);
		nap(j, NULL, HOUSEKEEPING_MS);
	}
	db_close(db);
	return NULL;
}

int jobs_start(struct jobs **out, const struct jobs_config *cfg)
{
	struct jobs *j = calloc(1, sizeof(*j));
	size_t n = (size_t)(cfg->senders > 0 ? cfg->senders : 1) + 1;

	struct smtp_transport *probe;
	int rc;

	if (!j)
		return ERR_NOMEM;
	/* a transport that cannot work stops start-up, not each sender */
	rc = smtp_open(&probe, &cfg->smtp);
	if (rc) {
		log_err(NULL, "CRENEAU_MAIL_URL: unusable (smtp://, smtps:// or "
			      "a writable file://DIR) error=%s", error_str(rc));
		free(j);
		return rc;
	}
	smtp_close(probe);
	j->cfg = *cfg;
	atomic_init(&j->stopping, false);
	if (pipe2(j->wake, O_CLOEXEC | O_NONBLOCK)) {
		free(j);
		return ERR_INTERNAL;
	}
	j->threads = calloc(n, sizeof(*j->threads));
	if (!j->threads) {
		jobs_stop(j);
		return ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (pthread_create(&j->threads[i], NULL,
				   i == 0 ? housekeeping_main : sender_main,
				   j)) {
			log_err(NULL, "cannot start a job thread");
			jobs_stop(j);
			return ERR_INTERNAL;
		}
		j->n_threads++;
	}
	*out = j;
	return 0;
}

void jobs_stop(struct jobs *j)
{
	if (!j)
		return;
	atomic_store(&j->stopping, true);
	if (write(j->wake[1], "x", 1) < 0)
		log_warn(NULL, "cannot wake the mail jobs");
	for (size_t i = 0; i < j->n_threads; i++)
		pthread_join(j->threads[i], NULL);
	free(j->threads);
	close(j->wake[0]);
	close(j->wake[1]);
	free(j);
}
