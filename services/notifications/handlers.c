/* handlers.c - the RPC methods of notifications: operator messages, contact form, newsletter, privacy. */
#include "handlers.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "arena.h"
#include "creneau/v1/notifications.pb-c.h"
#include "creneau/v1/service.pb-c.h"
#include "db.h"
#include "instant.h"
#include "log.h"
#include "mime.h"
#include "secure.h"
#include "service.h"
#include "store.h"

#define NAME_MAX_LEN 200
#define SUBJECT_MAX_LEN 200
#define MESSAGE_MAX_LEN 10000
#define CAMPAIGN_MAX_LEN (256 * 1024)

static struct notify_app *app_of(struct rpc_call *call)
{
	return service_app(rpc_call_app(call));
}

static bool is_operator(struct rpc_call *call)
{
	const Creneau__V1__Principal *p = rpc_call_principal(call);

	return p && (p->role == CRENEAU__V1__ROLE__ROLE_SERVICE ||
		     p->role == CRENEAU__V1__ROLE__ROLE_ADMIN);
}

/* A one-line field: present, at most max bytes, no control characters. */
static int check_line(struct rpc_call *call, const char *field,
		      const char *v, size_t max)
{
	size_t n = v ? strlen(v) : 0;

	if (n == 0)
		return rpc_call_fail(call, ERR_INVALID, "required", field,
				     "%s is required", field);
	if (n > max)
		return rpc_call_fail(call, ERR_INVALID, "too_long", field,
				     "%s is longer than %zu bytes", field, max);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < ' ' || *p == 127)
			return rpc_call_fail(call, ERR_INVALID, "invalid",
					     field, "%s holds a control "
						    "character", field);
	return 0;
}

/* A text field: may span lines, no other control characters. */
static int check_text(struct rpc_call *call, const char *field,
		      const char *v, size_t max)
{
	size_t n = v ? strlen(v) : 0;

	if (n == 0)
		return rpc_call_fail(call, ERR_INVALID, "required", field,
				     "%s is required", field);
	if (n > max)
		return rpc_call_fail(call, ERR_INVALID, "too_long", field,
				     "%s is longer than %zu bytes", field, max);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if ((*p < ' ' && *p != '\n' && *p != '\r' && *p != '\t') ||
		    *p == 127)
			return rpc_call_fail(call, ERR_INVALID, "invalid",
					     field, "%s holds a control "
						    "character", field);
	return 0;
}

static int check_email(struct rpc_call *call, const char *field,
		       const char *v)
{
	if (!mime_is_address(v))
		return rpc_call_fail(call, ERR_INVALID, "invalid_email", field,
				     "%s is not a valid e-mail address",
				     field);
	return 0;
}

static int check_language(struct rpc_call *call, const char *v)
{
	if (v && *v && strcmp(v, "fr") != 0 && strcmp(v, "en") != 0)
		return rpc_call_fail(call, ERR_INVALID, "invalid", "language",
				     "language must be \"fr\" or \"en\"");
	return 0;
}

/* Queues a built message in db's current transaction (or alone). */
static int enqueue(struct db *db, struct notify_app *app,
		   const struct messages_out *out, const char *account_id,
		   const char *dedup_key)
{
	struct store_message m = {
		.id = out->id,
		.kind = out->kind,
		.dedup_key = dedup_key,
		.account_id = account_id && *account_id ? account_id : NULL,
		.sender = app->mail_from,
		.recipient = out->recipient,
		.message_id = out->message_id,
		.body = out->mail.data,
	};

	return store_enqueue(db, &m, NULL);
}

static int handle_send_operator_message(struct rpc_call *call,
					const ProtobufCMessage *request,
					ProtobufCMessage **reply_out)
{
	const Creneau__V1__SendOperatorMessageRequest *req =
		(const void *)request;
	struct notify_app *app = app_of(call);
	Creneau__V1__SendOperatorMessageReply *reply;
	struct messages_out out;
	int rc;

	if (!is_operator(call))
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "operators only");
	rc = check_email(call, "to", req->to);
	if (!rc)
		rc = check_line(call, "subject", req->subject, SUBJECT_MAX_LEN);
	if (!rc)
		rc = check_text(call, "body", req->body, MESSAGE_MAX_LEN);
	if (!rc)
		rc = check_language(call, req->language);
	if (!rc && *req->to_name)
		rc = check_line(call, "to_name", req->to_name, NAME_MAX_LEN);
	if (rc)
		return rc;
	const struct messages_party to = {.email = req->to,
					  .first_name = req->to_name,
					  .last_name = "",
					  .language = req->language};
	const struct messages_config mc = app_messages(app);
	rc = messages_operator(&mc, &to, req->subject, req->body,
			       instant_now_ms(), &out);
	if (rc)
		return rc;
	rc = enqueue(rpc_call_db(call), app, &out, req->account_id, NULL);
	reply = arena_alloc(rpc_call_arena(call), sizeof(*reply));
	if (!rc && !reply)
		rc = ERR_NOMEM;
	if (!rc) {
		creneau__v1__send_operator_message_reply__init(reply);
		reply->id = arena_strdup(rpc_call_arena(call), out.id);
		reply->message_id =
			arena_strdup(rpc_call_arena(call), out.message_id);
		*reply_out = &reply->base;
		log_info(rpc_call_request_id(call), "operator message queued "
			 "id=%s", out.id);
	}
	messages_out_free(&out);
	return rc;
}

/* Counts a hit of client_ip under prefix; ERR_RATE_LIMITED past limit. */
static int rate_limit(struct rpc_call *call, const char *prefix,
		      const char *client_ip, long limit)
{
	char key[128];
	bool allowed = true;
	int64_t now = instant_now_ms();
	int rc;

	/* without the caller's address (a gateway that does not pass it),
	 * everyone shares one bucket: a wider one, not a closed door */
	if (!client_ip || !*client_ip) {
		client_ip = "unknown";
		limit *= 20;
	}
	snprintf(key, sizeof(key), "%s:%.100s", prefix, client_ip);
	rc = store_contact_rate_hit(rpc_call_db(call), key, limit, &allowed);
	if (rc)
		return rc;
	if (!allowed) {
		rpc_call_retry_after(call, 3600 - (now / 1000) % 3600);
		return rpc_call_fail(call, ERR_RATE_LIMITED, NULL, NULL,
				     "too many messages from this address; "
				     "try again later");
	}
	return 0;
}

static int check_contact(struct rpc_call *call,
			 const Creneau__V1__SubmitContactRequest *req)
{
	int rc = check_line(call, "name", req->name, NAME_MAX_LEN);

	if (!rc)
		rc = check_email(call, "email", req->email);
	if (!rc)
		rc = check_line(call, "subject", req->subject, SUBJECT_MAX_LEN);
	if (!rc)
		rc = check_text(call, "message", req->message, MESSAGE_MAX_LEN);
	return rc;
}

static int handle_submit_contact(struct rpc_call *call,
				 const ProtobufCMessage *request,
				 ProtobufCMessage **reply_out)
{
	const Creneau__V1__SubmitContactRequest *req = (const void *)request;
	struct notify_app *app = app_of(call);
	struct db *db = rpc_call_db(call);
	Creneau__V1__SubmitContactReply *reply;
	struct messages_out out;
	int rc;

	rc = check_contact(call, req);
	if (!rc)
		rc = rate_limit(call, "contact", req->client_ip,
				app->contact_per_hour);
	if (rc)
		return rc;
	const struct messages_config mc = app_messages(app);
	rc = messages_contact(&mc, app_operator(app), req->name, req->email,
			      req->subject, req->message, instant_now_ms(),
			      &out);
	if (rc)
		return rc;
	rc = db_begin(db);
	if (!rc)
		rc = store_contact_message_insert(db, out.id, req->name,
						  req->email, req->subject,
						  req->message);
	if (!rc)
		rc = enqueue(db, app, &out, NULL, NULL);
	if (!rc)
		rc = db_commit(db);
	if (rc)
		db_rollback(db);
	reply = rc ? NULL : arena_alloc(rpc_call_arena(call), sizeof(*reply));
	if (!rc && !reply)
		rc = ERR_NOMEM;
	if (!rc) {
		creneau__v1__submit_contact_reply__init(reply);
		reply->id = arena_strdup(rpc_call_arena(call), out.id);
		*reply_out = &reply->base;
		log_info(rpc_call_request_id(call), "contact message stored "
			 "id=%s", out.id);
	}
	messages_out_free(&out);
	return rc;
}

static int empty_reply(struct rpc_call *call, ProtobufCMessage **reply_out)
{
	Creneau__V1__NotificationsEmpty *reply =
		arena_alloc(rpc_call_arena(call), sizeof(*reply));

	if (!reply)
		return ERR_NOMEM;
	creneau__v1__notifications_empty__init(reply);
	*reply_out = &reply->base;
	return 0;
}

static int subscribe(struct rpc_call *call, struct notify_app *app,
		     const Creneau__V1__SubscribeNewsletterRequest *req)
{
	struct db *db = rpc_call_db(call);
	char token[SECURE_TOKEN_TEXT], new_id[37], id[37];
	uint8_t hash[SECURE_HASH_BYTES];
	const char *lang = *req->language ? req->language : "fr";
	struct messages_out out;
	bool confirmed = false;
	int rc;

	secure_token_new(token, hash);
	secure_uuid(new_id);
	const struct messages_party to = {.email = req->email,
					  .first_name = "",
					  .last_name = "",
					  .language = lang};
	const struct messages_config mc = app_messages(app);
	rc = messages_newsletter_confirm(&mc, &to, token, false,
					 instant_now_ms(), &out);
	if (rc)
		return rc;
	rc = db_begin(db);
	if (!rc)
		rc = store_newsletter_subscribe(db, new_id, req->email, lang,
						hash, id, &confirmed);
	/* already confirmed: say nothing, send nothing (no enumeration) */
	if (!rc && !confirmed)
		rc = enqueue(db, app, &out, NULL, NULL);
	if (!rc)
		rc = db_commit(db);
	if (rc)
		db_rollback(db);
	messages_out_free(&out);
	return rc;
}

static int handle_subscribe_newsletter(struct rpc_call *call,
				       const ProtobufCMessage *request,
				       ProtobufCMessage **reply_out)
{
	const Creneau__V1__SubscribeNewsletterRequest *req =
		(const void *)request;
	struct notify_app *app = app_of(call);
	int rc;

	rc = check_email(call, "email", req->email);
	if (!rc)
		rc = check_language(call, req->language);
	if (!rc)
		rc = rate_limit(call, "newsletter", req->client_ip,
				app->contact_per_hour);
	if (!rc)
		rc = subscribe(call, app, req);
	if (!rc)
		rc = empty_reply(call, reply_out);
	return rc;
}

static int handle_confirm_newsletter(struct rpc_call *call,
				     const ProtobufCMessage *request,
				     ProtobufCMessage **reply_out)
{
	const Creneau__V1__ConfirmNewsletterRequest *req =
		(const void *)request;
	uint8_t hash[SECURE_HASH_BYTES];
	int rc;

	if (secure_token_hash(req->token, hash))
		return rpc_call_fail(call, ERR_INVALID, "invalid_token",
				     "token", "the token is malformed");
	rc = store_newsletter_confirm(rpc_call_db(call), hash,
				      HANDLERS_CONSENT_VERSION);
	if (rc == ERR_NOT_FOUND)
		return rpc_call_fail(call, ERR_NOT_FOUND, "invalid_token",
				     "token",
				     "unknown or already used token");
	if (!rc)
		rc = empty_reply(call, reply_out);
	return rc;
}

static int handle_unsubscribe_newsletter(struct rpc_call *call,
					 const ProtobufCMessage *request,
					 ProtobufCMessage **reply_out)
{
	const Creneau__V1__UnsubscribeNewsletterRequest *req =
		(const void *)request;
	char id[37];
	int rc;

	if (messages_unsubscribe_check(
		    app_unsubscribe_key(app_of(call),
					service_key(rpc_call_app(call))),
		    req->token, id))
		return rpc_call_fail(call, ERR_NOT_FOUND, "invalid_token",
				     "token", "unknown unsubscribe token");
	rc = store_newsletter_unsubscribe(rpc_call_db(call), id);
	/* a second click finds nothing left: still a success */
	if (rc == ERR_NOT_FOUND)
		rc = 0;
	if (!rc) {
		log_info(rpc_call_request_id(call), "newsletter unsubscribed "
			 "id=%s", id);
		rc = empty_reply(call, reply_out);
	}
	return rc;
}

struct campaign {
	struct notify_app *app;
	const uint8_t *key;
	struct messages_config mc;
	struct db *db;
	const char *name, *subject, *body;
	int64_t now;
	int queued;
};

static int queue_campaign_one(void *arg, const struct store_subscriber *s)
{
	struct campaign *c = arg;
	char token[MESSAGES_UNSUBSCRIBE_TEXT], page[1024], url[1024];
	char dedup[400];
	const struct messages_party to = {.email = s->email,
					  .first_name = "",
					  .last_name = "",
					  .language = s->language};
	struct messages_out out;
	int rc;

	messages_unsubscribe_token(c->key, s->id, token);
	/* the text links to the web page (a click POSTs); List-Unsubscribe
	 * is the API itself, for the RFC 8058 one-click POST */
	snprintf(page, sizeof(page), "%s/newsletter-unsubscribe?token=%s",
		 c->app->public_url, token);
	snprintf(url, sizeof(url), "%s/v1/newsletter/unsubscribe?token=%s",
		 c->app->public_url, token);
	snprintf(dedup, sizeof(dedup), "campaign:%.300s:%s", c->name, s->id);
	rc = messages_newsletter(&c->mc, &to, c->subject, c->body, page, url,
				 c->now, &out);
	if (rc == ERR_INVALID)
		return 0; /* one bad stored address does not stop a campaign */
	if (rc)
		return rc;
	rc = enqueue(c->db, c->app, &out, NULL, dedup);
	messages_out_free(&out);
	if (!rc)
		c->queued++;
	return rc;
}

static int handle_send_newsletter(struct rpc_call *call,
				  const ProtobufCMessage *request,
				  ProtobufCMessage **reply_out)
{
	const Creneau__V1__SendNewsletterRequest *req = (const void *)request;
	struct campaign c = {.app = app_of(call),
			     .key = app_unsubscribe_key(
				     app_of(call),
				     service_key(rpc_call_app(call))),
			     .mc = app_messages(app_of(call)),
			     .db = rpc_call_db(call),
			     .subject = req->subject, .body = req->body,
			     .now = instant_now_ms()};
	Creneau__V1__SendNewsletterReply *reply;
	char name[65];
	int rc;

	if (!is_operator(call))
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "operators only");
	rc = check_line(call, "subject", req->subject, SUBJECT_MAX_LEN);
	if (!rc)
		rc = check_text(call, "body", req->body, CAMPAIGN_MAX_LEN);
	if (!rc && *req->campaign)
		rc = check_line(call, "campaign", req->campaign, 300);
	if (rc)
		return rc;
	if (*req->campaign) {
		c.name = req->campaign;
	} else { /* the same text sent twice is one campaign */
		uint8_t h[SECURE_HASH_BYTES];
		secure_mac(c.key, req->body, strlen(req->body), h);
		secure_hex(h, 16, name);
		c.name = name;
	}
	rc = db_begin(c.db);
	if (!rc)
		rc = store_newsletter_campaign_add(c.db, c.name, req->subject, 0);
	if (rc == ERR_CONFLICT) {
		db_rollback(c.db);
		return rpc_call_fail(call, ERR_CONFLICT, "already_sent",
				     "campaign", "this campaign was sent");
	}
	if (!rc)
		rc = store_newsletter_confirmed(c.db, queue_campaign_one, &c);
	if (!rc)
		rc = store_newsletter_campaign_count(c.db, c.name, c.queued);
	if (!rc)
		rc = db_commit(c.db);
	if (rc) {
		db_rollback(c.db);
		return rc;
	}
	log_notice(rpc_call_request_id(call), "newsletter queued count=%d",
		   c.queued);
	reply = arena_alloc(rpc_call_arena(call), sizeof(*reply));
	if (!reply)
		return ERR_NOMEM;
	creneau__v1__send_newsletter_reply__init(reply);
	reply->queued = (uint32_t)c.queued;
	*reply_out = &reply->base;
	return 0;
}

struct listing {
	struct arena *arena;
	Creneau__V1__ListMessagesReply *reply;
	size_t cap;
};

static int list_one(void *arg, const struct store_message_info *m)
{
	struct listing *l = arg;
	Creneau__V1__MessageInfo *i = arena_alloc(l->arena, sizeof(*i));

	if (!i)
		return ERR_NOMEM;
	creneau__v1__message_info__init(i);
	i->id = arena_strdup(l->arena, m->id);
	i->kind = arena_strdup(l->arena, m->kind);
	i->recipient = arena_strdup(l->arena, m->recipient);
	i->status = arena_strdup(l->arena, m->status);
	i->attempts = (uint32_t)m->attempts;
	i->created_at = arena_strdup(l->arena, m->created_at);
	i->due_at = arena_strdup(l->arena, m->due_at);
	i->sent_at = arena_strdup(l->arena, m->sent_at);
	i->last_code = (uint32_t)m->last_code;
	i->last_error = arena_strdup(l->arena, m->last_error);
	if (!i->id || !i->kind || !i->recipient || !i->status ||
	    !i->created_at || !i->due_at || !i->sent_at || !i->last_error ||
	    l->reply->n_items == l->cap)
		return ERR_NOMEM;
	l->reply->items[l->reply->n_items++] = i;
	return 0;
}

static int handle_list_messages(struct rpc_call *call,
				const ProtobufCMessage *request,
				ProtobufCMessage **reply_out)
{
	const Creneau__V1__ListMessagesRequest *req = (const void *)request;
	static const char *const statuses[] = {"queued", "sent", "failed",
					       "cancelled"};
	struct listing l = {.arena = rpc_call_arena(call)};
	const char *status = NULL;
	int rc;

	if (!is_operator(call))
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "operators only");
	for (size_t i = 0; i < 4 && *req->status; i++)
		if (strcmp(req->status, statuses[i]) == 0)
			status = statuses[i];
	if (*req->status && !status)
		return rpc_call_fail(call, ERR_INVALID, "invalid", "status",
				     "status must be queued, sent, failed or "
				     "cancelled");
	l.cap = req->limit ? (req->limit > 1000 ? 1000 : req->limit) : 50;
	l.reply = arena_alloc(l.arena, sizeof(*l.reply));
	if (l.reply) {
		creneau__v1__list_messages_reply__init(l.reply);
		l.reply->items = arena_alloc(l.arena,
					     l.cap * sizeof(*l.reply->items));
	}
	if (!l.reply || !l.reply->items)
		return ERR_NOMEM;
	rc = store_list_messages(rpc_call_db(call), status, (int)l.cap,
				 list_one, &l);
	if (rc)
		return rc;
	*reply_out = &l.reply->base;
	return 0;
}

static int handle_export(struct rpc_call *call, const ProtobufCMessage *request,
			 ProtobufCMessage **reply_out)
{
	const Creneau__V1__ExportRequest *req = (const void *)request;
	Creneau__V1__ExportReply *reply;
	char *json = NULL;
	int rc;

	if (!is_operator(call))
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "operators only");
	if (!req->subject)
		return rpc_call_fail(call, ERR_INVALID, "required", "subject",
				     "subject is required");
	rc = store_export(rpc_call_db(call), req->subject->account_id,
			  req->subject->email, &json);
	if (rc)
		return rc;
	reply = arena_alloc(rpc_call_arena(call), sizeof(*reply));
	if (reply) {
		creneau__v1__export_reply__init(reply);
		reply->service = "notifications";
		reply->document = arena_strdup(rpc_call_arena(call), json);
	}
	free(json);
	if (!reply || !reply->document)
		return ERR_NOMEM;
	*reply_out = &reply->base;
	return 0;
}

static int handle_erase(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out)
{
	const Creneau__V1__EraseRequest *req = (const void *)request;
	struct db *db = rpc_call_db(call);
	Creneau__V1__EraseReply *reply;
	int n = 0, rc;

	if (!is_operator(call))
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "operators only");
	if (!req->subject)
		return rpc_call_fail(call, ERR_INVALID, "required", "subject",
				     "subject is required");
	rc = db_begin(db);
	if (!rc)
		rc = store_erase(db, req->subject->account_id,
				 req->subject->email, &n);
	if (!rc)
		rc = db_commit(db);
	if (rc) {
		db_rollback(db);
		return rc;
	}
	reply = arena_alloc(rpc_call_arena(call), sizeof(*reply));
	if (!reply)
		return ERR_NOMEM;
	creneau__v1__erase_reply__init(reply);
	reply->erased = (uint32_t)n;
	*reply_out = &reply->base;
	return 0;
}

static int handle_sweep(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out)
{
	const Creneau__V1__SweepRequest *req = (const void *)request;
	Creneau__V1__SweepReply *reply;
	int n = 0, rc;

	if (!is_operator(call))
		return rpc_call_fail(call, ERR_FORBIDDEN, NULL, NULL,
				     "operators only");
	rc = store_sweep(rpc_call_db(call), req->category, req->cutoff_ms, &n);
	if (rc == ERR_INVALID)
		return rpc_call_fail(call, ERR_INVALID, "unknown_category",
				     "category",
				     "notifications keeps no data of "
				     "category '%.64s'", req->category);
	if (rc)
		return rc;
	reply = arena_alloc(rpc_call_arena(call), sizeof(*reply));
	if (!reply)
		return ERR_NOMEM;
	creneau__v1__sweep_reply__init(reply);
	reply->erased = (uint32_t)n;
	*reply_out = &reply->base;
	return 0;
}

const struct rpc_method handlers_methods[] = {
	RPC_METHOD("SendOperatorMessage", send_operator_message_request,
		   handle_send_operator_message),
	RPC_METHOD("SubmitContact", submit_contact_request,
		   handle_submit_contact),
	RPC_METHOD("SubscribeNewsletter", subscribe_newsletter_request,
		   handle_subscribe_newsletter),
	RPC_METHOD("ConfirmNewsletter", confirm_newsletter_request,
		   handle_confirm_newsletter),
	RPC_METHOD("UnsubscribeNewsletter", unsubscribe_newsletter_request,
		   handle_unsubscribe_newsletter),
	RPC_METHOD("SendNewsletter", send_newsletter_request,
		   handle_send_newsletter),
	RPC_METHOD("ListMessages", list_messages_request, handle_list_messages),
	RPC_METHOD("Export", export_request, handle_export),
	RPC_METHOD("Erase", erase_request, handle_erase),
	RPC_METHOD("Sweep", sweep_request, handle_sweep),
};
const size_t handlers_count =
	sizeof(handlers_methods) / sizeof(handlers_methods[0]);
