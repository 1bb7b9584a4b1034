/* consume.c - the accounts and booking events turned into mails, inside the subscriber's transaction. */
#include "consume.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "creneau/v1/accounts.pb-c.h"
#include "creneau/v1/booking.pb-c.h"
#include "db.h"
#include "instant.h"
#include "log.h"
#include "store.h"

/* a contact unknown this long after its event is gone for good */
#define CONTACT_GRACE_MS (10 * 60 * 1000)

static const char *role_name(Creneau__V1__Role role)
{
	switch (role) {
	case CRENEAU__V1__ROLE__ROLE_CLIENT:
		return "client";
	case CRENEAU__V1__ROLE__ROLE_PRACTITIONER:
		return "practitioner";
	case CRENEAU__V1__ROLE__ROLE_ADMIN:
		return "admin";
	default:
		return "";
	}
}

/* Queues out in the event's transaction; dedup "<publisher>:<seq>:<what>". */
static int enqueue(struct db *db, struct notify_app *app,
		   const Creneau__V1__Event *ev, const char *what,
		   const struct messages_out *out, const char *account_id,
		   const char *booking_id, int64_t due_ms)
{
	char dedup[200];
	struct store_message m = {
		.id = out->id,
		.kind = out->kind,
		.dedup_key = dedup,
		.account_id = account_id && *account_id ? account_id : NULL,
		.booking_id = booking_id,
		.sender = app->messages.from_addr,
		.recipient = out->recipient,
		.message_id = out->message_id,
		.body = out->mail.data,
		.due_ms = due_ms,
	};

	snprintf(dedup, sizeof(dedup), "%s:%llu:%s", ev->publisher,
		 (unsigned long long)ev->sequence, what);
	return store_enqueue(db, &m, NULL);
}

/* A builder's ERR_INVALID (a bad address in the event) skips the mail. */
static int skip_invalid(int rc, const Creneau__V1__Event *ev)
{
	if (rc == ERR_INVALID) {
		log_warn(NULL, "mail not built topic=%s sequence=%llu: invalid "
			       "data", ev->topic,
			 (unsigned long long)ev->sequence);
		return 0;
	}
	return rc;
}

static const char *language_of(struct db *db, const char *account_id,
			       char *buf, size_t n)
{
	struct store_contact c;

	snprintf(buf, n, "fr");
	if (store_contact_get(db, account_id, &c) == 0) {
		snprintf(buf, n, "%s", c.language);
		store_contact_free(&c);
	}
	return buf;
}

/*
 * The payload's "language" field ("fr" or "en") when its .proto has one,
 * else NULL: accounts can add it to its events without a change here.
 */
static const char *language_field(const ProtobufCMessage *m)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor,
								"language");
	const char *v;

	if (!f || f->type != PROTOBUF_C_TYPE_STRING ||
	    f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	v = *(const char *const *)((const char *)m + f->offset);
	return v && (strcmp(v, "fr") == 0 || strcmp(v, "en") == 0) ? v : NULL;
}

static int token_mail(struct notify_app *app, struct db *db,
		      const Creneau__V1__Event *ev, bool reset,
		      const char *account_id, const char *email,
		      const char *first_name, const char *token,
		      int64_t expires_ms, const char *language)
{
	char lang[8];
	struct messages_out out;
	int64_t now = instant_now_ms();
	int rc;

	/* an expired token is worth no mail (accounts blanks them later) */
	if (!token || !*token || (expires_ms && expires_ms < now))
		return 0;
	const struct messages_party to = {
		.email = email, .first_name = first_name, .last_name = "",
		.language = language ? language
				     : language_of(db, account_id, lang,
						   sizeof(lang))};
	rc = reset ? messages_password_reset(&app->messages, &to, token, now,
					     &out)
		   : messages_email_verification(&app->messages, &to, token,
						 now, &out);
	if (rc)
		return skip_invalid(rc, ev);
	rc = enqueue(db, app, ev, reset ? "reset" : "verify", &out, account_id,
		     NULL, 0);
	messages_out_free(&out);
	return rc;
}

/*
 * One handler per accounts topic. Each unpacks its payload (NULL: not
 * decodable, logged and skipped by the caller) and applies it.
 */
#define UNPACK(fn, ev) fn(NULL, (ev)->payload.len, (ev)->payload.data)

static int on_created(struct notify_app *app, struct db *db,
		      const Creneau__V1__Event *ev, bool *bad)
{
	Creneau__V1__AccountCreated *m =
		UNPACK(creneau__v1__account_created__unpack, ev);
	int rc = 0;

	if (!(*bad = !m)) {
		rc = store_contact_put(db, m->account_id, role_name(m->role),
				       m->email, m->first_name, m->last_name,
				       language_field(&m->base));
		if (!rc)
			rc = token_mail(app, db, ev, false, m->account_id,
					m->email, m->first_name,
					m->verification_token,
					m->verification_expires_at_ms, NULL);
		creneau__v1__account_created__free_unpacked(m, NULL);
	}
	return rc;
}

static int on_verification_requested(struct notify_app *app, struct db *db,
				     const Creneau__V1__Event *ev, bool *bad)
{
	Creneau__V1__EmailVerificationRequested *m = UNPACK(
		creneau__v1__email_verification_requested__unpack, ev);
	int rc = 0;

	if (!(*bad = !m)) {
		rc = token_mail(app, db, ev, false, m->account_id, m->new_email,
				m->first_name, m->verification_token,
				m->verification_expires_at_ms,
				language_field(&m->base));
		creneau__v1__email_verification_requested__free_unpacked(m,
									 NULL);
	}
	return rc;
}

static int on_verified(struct notify_app *app, struct db *db,
		       const Creneau__V1__Event *ev, bool *bad)
{
	Creneau__V1__AccountVerified *m =
		UNPACK(creneau__v1__account_verified__unpack, ev);
	int rc = 0;

	if (!(*bad = !m)) {
		rc = store_contact_set_email(db, m->account_id, m->email);
		creneau__v1__account_verified__free_unpacked(m, NULL);
	}
	return rc;
}

static int on_updated(struct notify_app *app, struct db *db,
		      const Creneau__V1__Event *ev, bool *bad)
{
	Creneau__V1__AccountUpdated *m =
		UNPACK(creneau__v1__account_updated__unpack, ev);
	int rc = 0;

	if (!(*bad = !m)) {
		rc = store_contact_put(db, m->account_id, role_name(m->role),
				       m->email, m->first_name, m->last_name,
				       language_field(&m->base));
		creneau__v1__account_updated__free_unpacked(m, NULL);
	}
	return rc;
}

static int on_deleted(struct notify_app *app, struct db *db,
		      const Creneau__V1__Event *ev, bool *bad)
{
	Creneau__V1__AccountDeleted *m =
		UNPACK(creneau__v1__account_deleted__unpack, ev);
	int rc = 0;

	if (!(*bad = !m)) {
		rc = store_contact_delete(db, m->account_id);
		creneau__v1__account_deleted__free_unpacked(m, NULL);
	}
	return rc;
}

static int on_reset_requested(struct notify_app *app, struct db *db,
			      const Creneau__V1__Event *ev, bool *bad)
{
	Creneau__V1__PasswordResetRequested *m =
		UNPACK(creneau__v1__password_reset_requested__unpack, ev);
	int rc = 0;

	if (!(*bad = !m)) {
		rc = token_mail(app, db, ev, true, m->account_id, m->email,
				m->first_name, m->token, m->expires_at_ms,
				language_field(&m->base));
		creneau__v1__password_reset_requested__free_unpacked(m, NULL);
	}
	return rc;
}

static const struct {
	const char *topic;
	int (*apply)(struct notify_app *app, struct db *db,
		     const Creneau__V1__Event *ev, bool *bad);
} accounts_topics[] = {
	{"account.created", on_created},
	{"account.email_verification_requested", on_verification_requested},
	{"account.verified", on_verified},
	{"account.updated", on_updated},
	{"account.deleted", on_deleted},
	{"password_reset.requested", on_reset_requested},
};

int consume_accounts(void *arg, struct db *db, const Creneau__V1__Event *ev)
{
	bool bad = false;
	int rc = 0;

	for (size_t i = 0;
	     i < sizeof(accounts_topics) / sizeof(accounts_topics[0]); i++)
		if (strcmp(ev->topic, accounts_topics[i].topic) == 0)
			rc = accounts_topics[i].apply(arg, db, ev, &bad);
	if (bad)
		log_err(NULL, "undecodable event skipped publisher=%s "
			      "sequence=%llu topic=%s",
			ev->publisher, (unsigned long long)ev->sequence,
			ev->topic);
	return rc;
}

/* ---- booking ---- */

/* One party of a booking, from the contact copy. */
struct party {
	struct store_contact c;
	struct messages_party p;
	bool known;
};

static int load_party(struct db *db, const Creneau__V1__Event *ev,
		      const char *account_id, struct party *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!account_id || !*account_id)
		return 0;
	rc = store_contact_get(db, account_id, &out->c);
	if (rc == ERR_NOT_FOUND) {
		bool deleted;

		/* a deleted account gets no mail; the other party does */
		rc = store_contact_is_deleted(db, account_id, &deleted);
		if (rc || deleted)
			return rc;
		/* accounts' events may lag a little behind booking's */
		if (instant_now_ms() - ev->time_ms < CONTACT_GRACE_MS)
			return ERR_UNAVAILABLE;
		log_warn(NULL, "booking mail without contact sequence=%llu",
			 (unsigned long long)ev->sequence);
		return 0;
	}
	if (rc)
		return rc;
	out->known = true;
	out->p.email = out->c.email;
	out->p.first_name = out->c.first_name;
	out->p.last_name = out->c.last_name;
	out->p.language = out->c.language;
	return 0;
}

struct booking_ctx {
	struct notify_app *app;
	struct db *db;
	const Creneau__V1__Event *ev;
	const Creneau__V1__BookingEvent *b;
	struct party practitioner, client;
	int sequence;
};

static int when_text(struct booking_ctx *x, int64_t ms, const char *lang,
		     char *out, size_t n)
{
	struct messages_local_time t;
	int rc = store_local_time(x->db, ms, x->b->timezone, &t);

	if (!rc)
		messages_format_when(lang, &t, out, n);
	return rc;
}

/* Builds and queues one booking mail to one party. */
static int booking_mail(struct booking_ctx *x, enum messages_booking_kind kind,
			const struct party *to, const char *what,
			int64_t due_ms)
{
	static const struct messages_party nobody = {
		.email = "unknown@invalid.invalid", .first_name = "",
		.last_name = "", .language = "fr"};
	const Creneau__V1__BookingEvent *b = x->b;
	char when[128], old_when[128], dedup_what[64];
	struct messages_out out;
	int rc;

	if (!to->known)
		return 0;
	rc = when_text(x, b->start_ms, to->p.language, when, sizeof(when));
	if (!rc && b->previous_start_ms)
		rc = when_text(x, b->previous_start_ms, to->p.language,
			       old_when, sizeof(old_when));
	if (rc)
		return rc;
	const struct messages_booking mb = {
		.booking_id = b->booking_id,
		.offering_title = b->offering_title,
		.duration_min = b->duration_min,
		.start_ms = b->start_ms,
		.end_ms = b->end_ms,
		.when = when,
		.old_when = b->previous_start_ms ? old_when : NULL,
		.location = b->location,
		.reason = b->reason,
		.ics_sequence = x->sequence,
		.practitioner = x->practitioner.known ? &x->practitioner.p
						      : &nobody,
		.client = x->client.known ? &x->client.p : &nobody,
	};
	rc = messages_booking(&x->app->messages, kind, &mb, &to->p,
			      instant_now_ms(), &out);
	if (rc)
		return skip_invalid(rc, x->ev);
	snprintf(dedup_what, sizeof(dedup_what), "%s", what);
	rc = enqueue(x->db, x->app, x->ev, dedup_what, &out,
		     to == &x->client ? b->client_id : b->practitioner_id,
		     b->booking_id, due_ms);
	messages_out_free(&out);
	return rc;
}

static int schedule_reminder(struct booking_ctx *x)
{
	int64_t due = x->b->start_ms - x->app->reminder_before_min * 60000;

	/* too late for a reminder: the confirmation said it all */
	if (due <= instant_now_ms())
		return 0;
	return booking_mail(x, MESSAGES_BOOKING_REMINDER, &x->client,
			    "reminder", due);
}

static int apply_booking(struct booking_ctx *x)
{
	const char *t = x->ev->topic;
	bool created = strcmp(t, "booking.created") == 0;
	bool cancelled = strcmp(t, "booking.cancelled") == 0;
	bool moved = strcmp(t, "booking.rescheduled") == 0;
	int rc;

	if (!created && !cancelled && !moved)
		/* completed, no-show: nothing left to remind */
		return store_cancel_queued(x->db, x->b->booking_id,
					   "booking_reminder", NULL);
	rc = store_booking_next_sequence(x->db, x->b->booking_id, &x->sequence);
	if (!rc && !created)
		rc = store_cancel_queued(x->db, x->b->booking_id,
					 "booking_reminder", NULL);
	if (rc)
		return rc;
	if (created) {
		rc = booking_mail(x, MESSAGES_BOOKING_CONFIRMED_CLIENT,
				  &x->client, "client", 0);
		if (!rc)
			rc = booking_mail(
				x, MESSAGES_BOOKING_CONFIRMED_PRACTITIONER,
				&x->practitioner, "practitioner", 0);
	} else {
		enum messages_booking_kind k =
			cancelled ? MESSAGES_BOOKING_CANCELLED
				  : MESSAGES_BOOKING_RESCHEDULED;
		rc = booking_mail(x, k, &x->client, "client", 0);
		if (!rc)
			rc = booking_mail(x, k, &x->practitioner,
					  "practitioner", 0);
	}
	if (!rc && !cancelled)
		rc = schedule_reminder(x);
	return rc;
}

int consume_booking(void *arg, struct db *db, const Creneau__V1__Event *ev)
{
	struct booking_ctx x = {.app = arg, .db = db, .ev = ev};
	int rc;

	if (strncmp(ev->topic, "booking.", 8) != 0)
		return 0;
	x.b = creneau__v1__booking_event__unpack(NULL, ev->payload.len,
						 ev->payload.data);
	if (!x.b) {
		log_err(NULL, "undecodable event skipped publisher=%s "
			      "sequence=%llu topic=%s",
			ev->publisher, (unsigned long long)ev->sequence,
			ev->topic);
		return 0;
	}
	rc = load_party(db, ev, x.b->client_id, &x.client);
	if (!rc)
		rc = load_party(db, ev, x.b->practitioner_id, &x.practitioner);
	if (!rc)
		rc = apply_booking(&x);
	store_contact_free(&x.client.c);
	store_contact_free(&x.practitioner.c);
	creneau__v1__booking_event__free_unpacked(
		(Creneau__V1__BookingEvent *)x.b, NULL);
	return rc;
}
