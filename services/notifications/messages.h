/* messages.h - builds each kind of mail from its data: template, MIME, .ics. No I/O. */
#ifndef CRENEAU_NOTIFICATIONS_MESSAGES_H
#define CRENEAU_NOTIFICATIONS_MESSAGES_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "mime.h"

/* What every message needs to know of the deployment. Borrowed. */
struct messages_config {
	const char *from_addr;  /* no-reply@example.org */
	const char *from_name;  /* "créneau" */
	const char *public_url; /* https://example.org, for links */
};

/* A recipient. Strings borrowed; names may be "". */
struct messages_party {
	const char *email;
	const char *first_name;
	const char *last_name;
	const char *language; /* "fr" (default) or "en" */
};

/* A built message, ready for the outbox. */
struct messages_out {
	char id[37];            /* outbox id, a UUID; also the .eml file name */
	char message_id[320];   /* "<id>@<domain of from_addr>", without <> */
	struct mime_buf mail;   /* the RFC 5322 bytes; messages_out_free */
	const char *recipient;  /* borrowed from the party */
	const char *kind;       /* static */
};

/* messages_out_free - frees out->mail. */
void messages_out_free(struct messages_out *out);

/* Local time of a booking, as the practitioner's zone shows it. */
struct messages_local_time {
	int year, month, day; /* month 1..12 */
	int weekday;          /* ISO: 1 Monday .. 7 Sunday */
	int hour, minute;
};

/*
 * messages_format_when - "mardi 24 novembre 2026 à 14:30" (fr) or
 * "Tuesday 24 November 2026 at 14:30" (en) into out (size n).
 */
void messages_format_when(const char *language,
			  const struct messages_local_time *t, char *out,
			  size_t n);

enum messages_booking_kind {
	MESSAGES_BOOKING_CONFIRMED_CLIENT,
	MESSAGES_BOOKING_CONFIRMED_PRACTITIONER,
	MESSAGES_BOOKING_CANCELLED,
	MESSAGES_BOOKING_RESCHEDULED,
	MESSAGES_BOOKING_REMINDER,
};

/* A booking as the mails show it. Strings borrowed. */
struct messages_booking {
	const char *booking_id;
	const char *offering_title;
	int duration_min;
	int64_t start_ms, end_ms;
	const char *when;       /* messages_format_when of start, recipient's language */
	const char *old_when;   /* reschedule: the former start, else NULL */
	const char *location;   /* "office", "home", "video", or an address */
	const char *reason;     /* cancellation reason, may be "" */
	int ics_sequence;       /* raised on each change */
	const struct messages_party *practitioner;
	const struct messages_party *client;
};

/*
 * Each builder renders its template in the recipient's language and builds
 * the MIME message into *out (a fresh id and Message-ID; Date now_ms).
 * ERR_INVALID when an address is malformed (control characters in the
 * subject or names become spaces); ERR_NOMEM. On failure *out holds
 * nothing to free.
 * Thread-safe.
 */
int messages_email_verification(const struct messages_config *cfg,
				const struct messages_party *to,
				const char *token, int64_t now_ms,
				struct messages_out *out) WARN_UNUSED;

int messages_password_reset(const struct messages_config *cfg,
			    const struct messages_party *to, const char *token,
			    int64_t now_ms, struct messages_out *out) WARN_UNUSED;

/* The generic operator message: subject and plain-text body as given. */
int messages_operator(const struct messages_config *cfg,
		      const struct messages_party *to, const char *subject,
		      const char *body, int64_t now_ms,
		      struct messages_out *out) WARN_UNUSED;

/*
 * messages_booking - a booking mail to `to` (the client or the
 * practitioner of b), with an .ics attachment: METHOD:CANCEL for a
 * cancellation, METHOD:REQUEST otherwise, UID "<booking_id>@<domain>".
 */
int messages_booking(const struct messages_config *cfg,
		     enum messages_booking_kind kind,
		     const struct messages_booking *b,
		     const struct messages_party *to, int64_t now_ms,
		     struct messages_out *out) WARN_UNUSED;

/* The contact form, forwarded to the operator with Reply-To the sender. */
int messages_contact(const struct messages_config *cfg, const char *operator_addr,
		     const char *name, const char *email, const char *subject,
		     const char *message, int64_t now_ms,
		     struct messages_out *out) WARN_UNUSED;

/*
 * Newsletter: the double opt-in link (to the web page
 * <public_url>/newsletter-confirm?token=, whose button POSTs: a GET
 * changes nothing), the re-consent request, and a campaign: its text links
 * to unsubscribe_page (the web page), its List-Unsubscribe header (with
 * One-Click, RFC 8058) is unsubscribe_url (the API, which takes a POST).
 */
int messages_newsletter_confirm(const struct messages_config *cfg,
				const struct messages_party *to,
				const char *token, bool reconsent,
				int64_t now_ms,
				struct messages_out *out) WARN_UNUSED;

int messages_newsletter(const struct messages_config *cfg,
			const struct messages_party *to, const char *subject,
			const char *body, const char *unsubscribe_page,
			const char *unsubscribe_url, int64_t now_ms,
			struct messages_out *out) WARN_UNUSED;

/*
 * messages_unsubscribe_key - out (SECURE_KEY_BYTES) = the subkey that
 * unsubscribe tokens are MACs under, derived from the deployment key with
 * crypto_kdf (context "unsubsc", subkey id MESSAGES_UNSUBSCRIBE_SUBKEY_ID):
 * the deployment key itself MACs no token. Deterministic.
 */
#define MESSAGES_UNSUBSCRIBE_SUBKEY_ID 1
void messages_unsubscribe_key(const uint8_t *deployment_key, uint8_t *out);

/*
 * messages_unsubscribe_token - "<subscriber id>.<32 hex digits>": a MAC of
 * the id under key (SECURE_KEY_BYTES: the messages_unsubscribe_key
 * subkey), so that the link needs no stored secret and no login. out holds
 * MESSAGES_UNSUBSCRIBE_TEXT bytes.
 */
#define MESSAGES_UNSUBSCRIBE_TEXT 80
void messages_unsubscribe_token(const uint8_t *key, const char *id,
				char out[MESSAGES_UNSUBSCRIBE_TEXT]);

/*
 * messages_unsubscribe_check - when token is well-formed and its MAC holds,
 * copies the subscriber id into id_out (37 bytes) and returns 0; else
 * ERR_INVALID.
 */
int messages_unsubscribe_check(const uint8_t *key, const char *token,
			       char id_out[37]) WARN_UNUSED;

#endif
