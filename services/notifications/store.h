/* store.h - every SQL statement of notifications (schema notify); no PGresult leaves store.c. */
#ifndef CRENEAU_NOTIFICATIONS_STORE_H
#define CRENEAU_NOTIFICATIONS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

struct db;
struct messages_local_time;

/* ---- the outbox ---- */

/* A message to queue. Strings borrowed; optional ones may be NULL. */
struct store_message {
	const char *id;         /* UUID */
	const char *kind;
	const char *dedup_key;  /* at most one message per key, or NULL */
	const char *account_id;
	const char *booking_id;
	const char *sender;
	const char *recipient;
	const char *message_id;
	const char *body;       /* 7-bit RFC 5322 text */
	int64_t due_ms;         /* 0: now */
};

/*
 * store_enqueue - inserts m into notify.outbox in the caller's transaction
 * (or on its own). A message whose dedup_key exists already is not queued
 * again: *inserted_out (if not NULL) tells. Codes of db_exec.
 */
int store_enqueue(struct db *db, const struct store_message *m,
		  bool *inserted_out) WARN_UNUSED;

/*
 * store_listen - makes sure this connection LISTENs to notify_outbox (again
 * after a reconnection: *pid_io remembers the backend it was set up on).
 */
int store_listen(struct db *db, int *pid_io) WARN_UNUSED;

/*
 * store_wait - waits up to ms for a notify_outbox notification on db (when
 * it listens) or for wake_fd to become readable; consumes what arrived.
 * Returns nothing: any wake-up, time-out or error sends the caller back to
 * look at the outbox.
 */
void store_wait(struct db *db, int wake_fd, long ms);

/* A claimed message; strings malloc'd, freed by store_claim_free. */
struct store_claim {
	char id[40];
	char *sender, *recipient, *body;
	size_t body_len;
	int attempts;           /* before this one */
	int64_t created_ms;
};

/*
 * store_claim_due - inside an open transaction: locks the oldest due queued
 * message that no other sender holds (FOR UPDATE SKIP LOCKED) and returns
 * it. ERR_NOT_FOUND when there is none.
 */
int store_claim_due(struct db *db, struct store_claim *out) WARN_UNUSED;
void store_claim_free(struct store_claim *c);

/* Outcomes of a send attempt, in the claiming transaction. */
int store_mark_sent(struct db *db, const char *id, long code) WARN_UNUSED;
int store_mark_retry(struct db *db, const char *id, int64_t due_ms, long code,
		     const char *reason) WARN_UNUSED;
int store_mark_failed(struct db *db, const char *id, long code,
		      const char *reason) WARN_UNUSED;

/*
 * store_release_deferred - makes due now the queued messages deferred for a
 * server-wide reason (no SMTP answer at all: refused connection, time-out,
 * TLS failure; or 421): called once the server is seen to accept mail
 * again, so that the queue drains at once instead of at each message's
 * next backoff. *n_out (if not NULL) counts them.
 */
int store_release_deferred(struct db *db, int *n_out) WARN_UNUSED;

/*
 * store_cancel_queued - cancels the still-queued messages of a booking of
 * one kind (NULL: any kind); *n_out (if not NULL) says how many.
 */
int store_cancel_queued(struct db *db, const char *booking_id,
			const char *kind, int *n_out) WARN_UNUSED;

/* One row of the delivery log; strings borrowed for the callback only. */
struct store_message_info {
	const char *id, *kind, *recipient, *status, *created_at, *due_at,
		*sent_at, *last_error;
	int attempts;
	int last_code;
};

/*
 * store_list_messages - the newest `limit` messages of status (NULL: any),
 * each handed to fn; stops at fn's first error and returns it.
 */
int store_list_messages(struct db *db, const char *status, int limit,
			int (*fn)(void *arg,
				  const struct store_message_info *m),
			void *arg) WARN_UNUSED;

/* ---- what notifications knows of accounts ---- */

/* A contact; strings malloc'd, freed by store_contact_free. */
struct store_contact {
	char *email, *first_name, *last_name, *language, *role;
};

int store_contact_put(struct db *db, const char *account_id, const char *role,
		      const char *email, const char *first_name,
		      const char *last_name, const char *language) WARN_UNUSED;

/* store_contact_set_email - changes only the address (account.verified). */
int store_contact_set_email(struct db *db, const char *account_id,
			    const char *email) WARN_UNUSED;

/* ERR_NOT_FOUND when unknown. */
int store_contact_get(struct db *db, const char *account_id,
		      struct store_contact *out) WARN_UNUSED;
void store_contact_free(struct store_contact *c);

/*
 * Drops the contact and the account's queued messages (account.deleted)
 * and keeps a tombstone of the id (store_contact_is_deleted).
 */
int store_contact_delete(struct db *db, const char *account_id) WARN_UNUSED;

/*
 * store_contact_is_deleted - *out true when account_id was deleted
 * (account.deleted seen): its contact will never come back.
 */
int store_contact_is_deleted(struct db *db, const char *account_id,
			     bool *out) WARN_UNUSED;

/* ---- bookings ---- */

/* store_booking_next_sequence - the booking's next iCalendar SEQUENCE
 * (0 the first time, then 1, 2, ...). */
int store_booking_next_sequence(struct db *db, const char *booking_id,
				int *seq_out) WARN_UNUSED;

/* store_local_time - the wall-clock parts of ms in IANA zone tz, as
 * PostgreSQL's time zone database says. ERR_INVALID for an unknown zone. */
int store_local_time(struct db *db, int64_t ms, const char *tz,
		     struct messages_local_time *out) WARN_UNUSED;

/* ---- contact form ---- */

/*
 * store_contact_rate_hit - counts one submission from client_ip in the
 * current hour; *allowed_out is false when that makes more than limit.
 */
int store_contact_rate_hit(struct db *db, const char *client_ip, long limit,
			   bool *allowed_out) WARN_UNUSED;

int store_contact_message_insert(struct db *db, const char *id,
				 const char *name, const char *email,
				 const char *subject, const char *message)
	WARN_UNUSED;

/* ---- newsletter ---- */

/*
 * store_newsletter_subscribe - a pending subscription for email (or a
 * renewed token for an existing pending or unsubscribed one) with the hash
 * of its confirmation token; *id_out gets its id (37 bytes).
 * *already_confirmed_out is true (and nothing changes) when the address is
 * already confirmed.
 */
int store_newsletter_subscribe(struct db *db, const char *new_id,
			       const char *email, const char *language,
			       const uint8_t *token_hash, char *id_out,
			       bool *already_confirmed_out) WARN_UNUSED;

/* store_newsletter_confirm - confirms the subscription of token_hash,
 * recording consent (now, text version). ERR_NOT_FOUND if none. */
int store_newsletter_confirm(struct db *db, const uint8_t *token_hash,
			     const char *consent_version) WARN_UNUSED;

/* store_newsletter_unsubscribe - ERR_NOT_FOUND when id is unknown. */
int store_newsletter_unsubscribe(struct db *db, const char *id) WARN_UNUSED;

/* One confirmed subscriber, for campaign queuing. */
struct store_subscriber {
	char id[40];
	char email[256];
	char language[8];
};

/*
 * store_newsletter_confirmed - calls fn for each confirmed subscriber, in
 * the caller's transaction; stops at fn's first error and returns it.
 */
int store_newsletter_confirmed(struct db *db,
			       int (*fn)(void *arg,
					 const struct store_subscriber *s),
			       void *arg) WARN_UNUSED;

/* store_newsletter_campaign_add - records a campaign; ERR_CONFLICT when it
 * was sent already. */
int store_newsletter_campaign_add(struct db *db, const char *campaign,
				  const char *subject, int queued) WARN_UNUSED;

/* store_newsletter_campaign_count - records how many mails it queued. */
int store_newsletter_campaign_count(struct db *db, const char *campaign,
				    int queued) WARN_UNUSED;

/*
 * store_newsletter_due_reconsent - subscribers confirmed but silent since
 * before cutoff_ms and not yet asked: one per call (ERR_NOT_FOUND: none);
 * marks it asked with the new token hash.
 */
int store_newsletter_due_reconsent(struct db *db, int64_t cutoff_ms,
				   const uint8_t *token_hash,
				   struct store_subscriber *out) WARN_UNUSED;

/* store_newsletter_expire - deletes subscribers asked before cutoff_ms
 * who never answered, and pending ones created before cutoff_ms. */
int store_newsletter_expire(struct db *db, int64_t asked_before_ms,
			    int64_t pending_before_ms, int *n_out) WARN_UNUSED;

/* ---- privacy ---- */

/* store_export - everything notify holds on the account or address, as a
 * JSON document (*json_out malloc'd). */
int store_export(struct db *db, const char *account_id, const char *email,
		 char **json_out) WARN_UNUSED;

/* store_erase - deletes it; *n_out counts rows. */
int store_erase(struct db *db, const char *account_id, const char *email,
		int *n_out) WARN_UNUSED;

/*
 * store_sweep - deletes data of category ("contact_messages",
 * "delivery_logs", "newsletter_subscribers") older than cutoff_ms.
 * ERR_INVALID for another category.
 */
int store_sweep(struct db *db, const char *category, int64_t cutoff_ms,
		int *n_out) WARN_UNUSED;

#endif
