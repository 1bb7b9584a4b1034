/* notifications_rpc.c - test helper: one RPC to notifications, JSON in and out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "arena.h"
#include "config.h"
#include "creneau/v1/notifications.pb-c.h"
#include "creneau/v1/service.pb-c.h"
#include "log.h"
#include "pbjson.h"
#include "rpc.h"
#include "secure.h"

/*
 * Usage: notifications_rpc METHOD 'JSON' [service|admin|anonymous]
 * Prints the reply as JSON and exits 0, or prints the error as
 * {"error": {...}} and exits 1. Env: CRENEAU_RPC_KEY, CRENEAU_NOTIFICATIONS_RPC.
 */

struct method {
	const char *name;
	const ProtobufCMessageDescriptor *req, *reply;
};

static const struct method methods[] = {
	{"Health", &creneau__v1__health_request__descriptor,
	 &creneau__v1__health_reply__descriptor},
	{"SendOperatorMessage",
	 &creneau__v1__send_operator_message_request__descriptor,
	 &creneau__v1__send_operator_message_reply__descriptor},
	{"SubmitContact", &creneau__v1__submit_contact_request__descriptor,
	 &creneau__v1__submit_contact_reply__descriptor},
	{"SubscribeNewsletter",
	 &creneau__v1__subscribe_newsletter_request__descriptor,
	 &creneau__v1__notifications_empty__descriptor},
	{"ConfirmNewsletter",
	 &creneau__v1__confirm_newsletter_request__descriptor,
	 &creneau__v1__notifications_empty__descriptor},
	{"UnsubscribeNewsletter",
	 &creneau__v1__unsubscribe_newsletter_request__descriptor,
	 &creneau__v1__notifications_empty__descriptor},
	{"SendNewsletter", &creneau__v1__send_newsletter_request__descriptor,
	 &creneau__v1__send_newsletter_reply__descriptor},
	{"Export", &creneau__v1__export_request__descriptor,
	 &creneau__v1__export_reply__descriptor},
	{"Erase", &creneau__v1__erase_request__descriptor,
	 &creneau__v1__erase_reply__descriptor},
	{"Sweep", &creneau__v1__sweep_request__descriptor,
	 &creneau__v1__sweep_reply__descriptor},
};

static uint8_t *key;
static char *urls;
static const struct config_setting settings[] = {
	{"CRENEAU_RPC_KEY", CONFIG_KEY, NULL, true, "deployment key", &key, 0,
	 0},
	{"CRENEAU_NOTIFICATIONS_RPC", CONFIG_URLS, NULL, false,
	 "REP URLs of notifications", &urls, 0, 0},
};

static Creneau__V1__Role role_of(const char *s)
{
	if (!s || strcmp(s, "service") == 0)
		return CRENEAU__V1__ROLE__ROLE_SERVICE;
	if (strcmp(s, "admin") == 0)
		return CRENEAU__V1__ROLE__ROLE_ADMIN;
	return CRENEAU__V1__ROLE__ROLE_NONE;
}

static int call(const struct method *m, const char *json, const char *role)
{
	struct arena *arena = arena_new(0);
	cJSON *in = cJSON_Parse(json), *out = NULL;
	ProtobufCMessage *req = NULL, *reply = NULL;
	struct rpc_context ctx = {.role = role_of(role), .timeout_ms = 10000};
	struct rpc_error err = {0};
	struct rpc_client *c = NULL;
	int rc = 1;

	if (!arena || !in || pbjson_json_to_message(m->req, in, arena, &req,
						    NULL, NULL)) {
		fprintf(stderr, "bad request JSON\n");
		goto out;
	}
	if (rpc_client_open(&c, "notifications", urls, key, "notifications_rpc"))
		goto out;
	if (rpc_client_call(c, &ctx, m->name, req, m->reply, arena, &reply,
			    &err)) {
		printf("{\"error\": {\"code\": \"%s\", \"field\": \"%s\", "
		       "\"status\": %d}}\n",
		       err.error_code, err.field, err.code);
		goto out;
	}
	out = pbjson_message_to_json(reply);
	if (out) {
		char *text = cJSON_PrintUnformatted(out);
		printf("%s\n", text ? text : "{}");
		free(text);
		rc = 0;
	}
out:
	cJSON_Delete(out);
	cJSON_Delete(in);
	rpc_client_free(c);
	arena_free(arena);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 2;

	if (argc < 3) {
		fprintf(stderr, "usage: notifications_rpc METHOD JSON [role]\n");
		return 2;
	}
	if (secure_init() || config_load("notifications_rpc", settings, 2, 1,
					 argv))
		return 2;
	if (log_init("notifications_rpc", "warning"))
		return 2;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, argv[1]) == 0)
			rc = call(&methods[i], argv[2],
				  argc > 3 ? argv[3] : NULL);
	if (rc == 2)
		fprintf(stderr, "unknown method %s\n", argv[1]);
	config_free(settings, 2);
	return rc;
}
