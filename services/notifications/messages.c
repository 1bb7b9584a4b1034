/* messages.c - builds each kind of mail from its data: template, MIME, .ics. No I/O. */
#include "messages.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "ics.h"
#include "instant.h"
#include "secure.h"
#include "templates.h"

#define N_VARS(v) (sizeof(v) / sizeof((v)[0]))

void messages_out_free(struct messages_out *out)
{
	mime_buf_free(&out->mail);
}

void messages_format_when(const char *language,
			  const struct messages_local_time *t, char *out,
			  size_t n)
{
	static const char *const fr_days[] = {"lundi", "mardi", "mercredi",
					      "jeudi", "vendredi", "samedi",
					      "dimanche"};
	static const char *const en_days[] = {"Monday", "Tuesday", "Wednesday",
					      "Thursday", "Friday", "Saturday",
					      "Sunday"};
	static const char *const fr_months[] = {
		"janvier", "février", "mars",      "avril",   "mai",      "juin",
		"juillet", "août",    "septembre", "octobre", "novembre", "décembre"};
	static const char *const en_months[] = {
		"January", "February", "March",     "April",   "May",      "June",
		"July",    "August",   "September", "October", "November", "December"};
	bool en = strcmp(templates_lang(language), "en") == 0;
	int wd = t->weekday >= 1 && t->weekday <= 7 ? t->weekday - 1 : 0;
	int mo = t->month >= 1 && t->month <= 12 ? t->month - 1 : 0;

	snprintf(out, n, "%s %d %s %d %s %02d:%02d",
		 en ? en_days[wd] : fr_days[wd], t->day,
		 en ? en_months[mo] : fr_months[mo], t->year, en ? "at" : "à",
		 t->hour, t->minute);
}

static const char *domain_of(const char *addr)
{
	const char *at = strchr(addr, '@');

	return at ? at + 1 : "localhost";
}

static void full_name(const struct messages_party *p, char *out, size_t n)
{
	const char *f = p->first_name ? p->first_name : "";
	const char *l = p->last_name ? p->last_name : "";

	snprintf(out, n, "%s%s%s", f, *f && *l ? " " : "", l);
}

struct build_args {
	const char *kind;
	const struct messages_party *to;
	const struct templates_var *vars;
	size_t n_vars;
	const struct mime_attachment *attachment;
	const char *unsubscribe;
	const char *reply_to;
};

static int build(const struct messages_config *cfg, const struct build_args *a,
		 int64_t now_ms, struct messages_out *out)
{
	struct templates_rendered r;
	char to_name[256];
	int rc;

	memset(out, 0, sizeof(*out));
	secure_uuid(out->id);
	snprintf(out->message_id, sizeof(out->message_id), "%s@%s", out->id,
		 domain_of(cfg->from_addr));
	out->recipient = a->to->email;
	out->kind = a->kind;
	rc = templates_render(a->kind, a->to->language, a->vars, a->n_vars, &r);
	if (rc)
		return rc == ERR_NOT_FOUND ? ERR_INTERNAL : rc;
	full_name(a->to, to_name, sizeof(to_name));
	struct mime_mail m = {
		.from_name = cfg->from_name,
		.from_addr = cfg->from_addr,
		.to_name = to_name,
		.to_addr = a->to->email,
		.reply_to = a->reply_to,
		.subject = r.subject,
		.text = r.text,
		.html = r.html,
		.message_id = out->message_id,
		.date_ms = now_ms,
		.language = r.lang,
		.list_unsubscribe = a->unsubscribe,
		.one_click = a->unsubscribe != NULL,
		.attachment = a->attachment,
	};
	rc = mime_build(&m, &out->mail);
	templates_rendered_free(&r);
	if (rc)
		mime_buf_free(&out->mail);
	return rc;
}

static int token_message(const struct messages_config *cfg, const char *kind,
			 const char *path, const struct messages_party *to,
			 const char *token, int64_t now_ms,
			 struct messages_out *out)
{
	char link[1024];
	const struct templates_var vars[] = {
		{"first_name", to->first_name},
		{"link", link},
	};
	const struct build_args a = {.kind = kind, .to = to, .vars = vars,
				     .n_vars = N_VARS(vars)};

	if (!token || !*token || strpbrk(token, "&#?/ \r\n"))
		return ERR_INVALID;
	snprintf(link, sizeof(link), "%s%s%s", cfg->public_url, path, token);
	return build(cfg, &a, now_ms, out);
}

int messages_email_verification(const struct messages_config *cfg,
				const struct messages_party *to,
				const char *token, int64_t now_ms,
				struct messages_out *out)
{
	return token_message(cfg, "email_verification", "/verify-email?token=",
			     to, token, now_ms, out);
}

int messages_password_reset(const struct messages_config *cfg,
			    const struct messages_party *to, const char *token,
			    int64_t now_ms, struct messages_out *out)
{
	return token_message(cfg, "password_reset", "/reset-password?token=",
			     to, token, now_ms, out);
}

int messages_operator(const struct messages_config *cfg,
		      const struct messages_party *to, const char *subject,
		      const char *body, int64_t now_ms,
		      struct messages_out *out)
{
	const struct templates_var vars[] = {
		{"subject", subject},
		{"body", body},
	};
	const struct build_args a = {.kind = "operator_message", .to = to,
				     .vars = vars, .n_vars = N_VARS(vars)};

	return build(cfg, &a, now_ms, out);
}

static const char *booking_kind_name(enum messages_booking_kind kind)
{
	switch (kind) {
	case MESSAGES_BOOKING_CONFIRMED_CLIENT:
		return "booking_confirmed_client";
	case MESSAGES_BOOKING_CONFIRMED_PRACTITIONER:
		return "booking_confirmed_practitioner";
	case MESSAGES_BOOKING_CANCELLED:
		return "booking_cancelled";
	case MESSAGES_BOOKING_RESCHEDULED:
		return "booking_rescheduled";
	case MESSAGES_BOOKING_REMINDER:
		return "booking_reminder";
	}
	return "booking_confirmed_client";
}

static const char *location_label(const char *location, bool en)
{
	if (!location || !*location || strcmp(location, "office") == 0)
		return en ? "at the practice" : "au cabinet";
	if (strcmp(location, "home") == 0)
		return en ? "at your home" : "à domicile";
	if (strcmp(location, "video") == 0)
		return en ? "by video call" : "en visioconférence";
	return location;
}

static int booking_ics(const struct messages_config *cfg,
		       enum messages_booking_kind kind,
		       const struct messages_booking *b, const char *location,
		       int64_t now_ms, char **ics_out)
{
	char uid[300], org[256], att[256];
	struct ics_event ev = {
		.method = kind == MESSAGES_BOOKING_CANCELLED ? ICS_CANCEL
							     : ICS_REQUEST,
		.uid = uid,
		.sequence = b->ics_sequence,
		.start_ms = b->start_ms,
		.end_ms = b->end_ms,
		.stamp_ms = now_ms,
		.summary = b->offering_title,
		.location = location,
		.organizer_name = org,
		.organizer_email = b->practitioner->email,
		.attendee_name = att,
		.attendee_email = b->client->email,
	};

	snprintf(uid, sizeof(uid), "%s@%s", b->booking_id,
		 domain_of(cfg->from_addr));
	full_name(b->practitioner, org, sizeof(org));
	full_name(b->client, att, sizeof(att));
	return ics_build(&ev, ics_out);
}

int messages_booking(const struct messages_config *cfg,
		     enum messages_booking_kind kind,
		     const struct messages_booking *b,
		     const struct messages_party *to, int64_t now_ms,
		     struct messages_out *out)
{
	bool en = strcmp(templates_lang(to->language), "en") == 0;
	const char *location = location_label(b->location, en);
	char practitioner[256], client[256], duration[16], link[1024];
	const struct templates_var vars[] = {
		{"first_name", to->first_name},
		{"practitioner_name", practitioner},
		{"client_name", client},
		{"offering", b->offering_title},
		{"duration", duration},
		{"when", b->when},
		{"old_when", b->old_when ? b->old_when : ""},
		{"location", location},
		{"reason", b->reason ? b->reason : ""},
		{"link", link},
	};
	struct mime_attachment att = {
		.content_type = kind == MESSAGES_BOOKING_CANCELLED
					? "text/calendar; method=CANCEL"
					: "text/calendar; method=REQUEST",
		.filename = "rendez-vous.ics",
	};
	const struct build_args a = {.kind = booking_kind_name(kind),
				     .to = to,
				     .vars = vars,
				     .n_vars = N_VARS(vars),
				     .attachment = &att};
	char *ics = NULL;
	int rc;

	full_name(b->practitioner, practitioner, sizeof(practitioner));
	full_name(b->client, client, sizeof(client));
	snprintf(duration, sizeof(duration), "%d", b->duration_min);
	snprintf(link, sizeof(link), "%s/bookings/%s", cfg->public_url,
		 b->booking_id);
	if (!b->when || !b->offering_title)
		return ERR_INVALID;
	rc = booking_ics(cfg, kind, b, location, now_ms, &ics);
	if (rc)
		return rc;
	att.data = ics;
	att.len = strlen(ics);
	rc = build(cfg, &a, now_ms, out);
	ics_free(ics);
	return rc;
}

int messages_contact(const struct messages_config *cfg,
		     const char *operator_addr, const char *name,
		     const char *email, const char *subject,
		     const char *message, int64_t now_ms,
		     struct messages_out *out)
{
	const struct messages_party to = {.email = operator_addr,
					  .first_name = "",
					  .last_name = "",
					  .language = "fr"};
	const struct templates_var vars[] = {
		{"name", name},
		{"email", email},
		{"subject", subject},
		{"message", message},
	};
	const struct build_args a = {.kind = "contact_forward",
				     .to = &to,
				     .vars = vars,
				     .n_vars = N_VARS(vars),
				     .reply_to = email};

	return build(cfg, &a, now_ms, out);
}

int messages_newsletter_confirm(const struct messages_config *cfg,
				const struct messages_party *to,
				const char *token, bool reconsent,
				int64_t now_ms, struct messages_out *out)
{
	return token_message(cfg,
			     reconsent ? "newsletter_reconsent"
				       : "newsletter_confirm",
			     "/newsletter-confirm?token=", to, token, now_ms,
			     out);
}

int messages_newsletter(const struct messages_config *cfg,
			const struct messages_party *to, const char *subject,
			const char *body, const char *unsubscribe_page,
			const char *unsubscribe_url, int64_t now_ms,
			struct messages_out *out)
{
	const struct templates_var vars[] = {
		{"subject", subject},
		{"body", body},
		{"unsubscribe_link", unsubscribe_page},
	};
	const struct build_args a = {.kind = "newsletter_campaign",
				     .to = to,
				     .vars = vars,
				     .n_vars = N_VARS(vars),
				     .unsubscribe = unsubscribe_url};

	return build(cfg, &a, now_ms, out);
}

void messages_unsubscribe_key(const uint8_t *deployment_key, uint8_t *out)
{
	/* 7 characters and the NUL: crypto_kdf_CONTEXTBYTES */
	static const char context[crypto_kdf_CONTEXTBYTES] = "unsubsc";

	_Static_assert(crypto_kdf_KEYBYTES == SECURE_KEY_BYTES,
		       "the deployment key is a crypto_kdf master key");
	crypto_kdf_derive_from_key(out, SECURE_KEY_BYTES,
				   MESSAGES_UNSUBSCRIBE_SUBKEY_ID, context,
				   deployment_key);
}

static void unsubscribe_mac(const uint8_t *key, const char *id, char hex[33])
{
	uint8_t mac[16];

	crypto_generichash(mac, sizeof(mac), (const unsigned char *)id,
			   strlen(id), key, SECURE_KEY_BYTES);
	sodium_bin2hex(hex, 33, mac, sizeof(mac));
}

void messages_unsubscribe_token(const uint8_t *key, const char *id,
				char out[MESSAGES_UNSUBSCRIBE_TEXT])
{
	char hex[33];

	unsubscribe_mac(key, id, hex);
	snprintf(out, MESSAGES_UNSUBSCRIBE_TEXT, "%s.%s", id, hex);
}

int messages_unsubscribe_check(const uint8_t *key, const char *token,
			       char id_out[37])
{
	const char *dot = token ? strchr(token, '.') : NULL;
	char id[37], hex[33];

	if (!dot || dot - token != 36 || strlen(dot + 1) != 32)
		return ERR_INVALID;
	memcpy(id, token, 36);
	id[36] = '\0';
	unsubscribe_mac(key, id, hex);
	if (!secure_equal(hex, dot + 1, 32))
		return ERR_INVALID;
	memcpy(id_out, id, 37);
	return 0;
}
