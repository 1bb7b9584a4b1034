/* accounts_rpc.c - calls one accounts RPC with a JSON request and prints the
 * JSON outcome (tests). */
/*
 * usage: accounts_rpc METHOD JSON [ACCOUNT_ID ROLE SESSION_ID]
 * environment: CRENEAU_RPC_KEY (hex), ACCOUNTS_URLS (REP URLs)
 * prints one line: {"ok":true,"reply":{...}} or
 * {"ok":false,"status":"...","error_code":"...","field":"...",
 *  "message":"...","retry_after_s":N}; exit 0 either way, 2 on misuse.
 * ROLE is none, client, practitioner, admin or service.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "arena.h"
#include "creneau/v1/accounts.pb-c.h"
#include "creneau/v1/service.pb-c.h"
#include "error.h"
#include "pbjson.h"
#include "rpc.h"
#include "secure.h"

#define D(name) &creneau__v1__##name##__descriptor

static const struct {
	const char *method;
	const ProtobufCMessageDescriptor *req, *rep;
} methods[] = {
    {"CreateAccount", D(create_account_request), D(account)},
    {"ConfirmEmail", D(confirm_email_request), D(empty)},
    {"ResendVerification", D(resend_verification_request), D(empty)},
    {"CreateSession", D(create_session_request), D(create_session_reply)},
    {"ValidateSession", D(validate_session_request), D(validate_session_reply)},
    {"DeleteCurrentSession", D(delete_current_session_request), D(empty)},
    {"ListSessions", D(list_sessions_request), D(list_sessions_reply)},
    {"RevokeSession", D(revoke_session_request), D(empty)},
    {"RequestPasswordReset", D(request_password_reset_request), D(empty)},
    {"ConfirmPasswordReset", D(confirm_password_reset_request), D(empty)},
    {"GetMe", D(get_me_request), D(account)},
    {"UpdateMe", D(update_me_request), D(account)},
    {"ChangePassword", D(change_password_request), D(empty)},
    {"DeleteMe", D(delete_me_request), D(empty)},
    {"GetCompany", D(get_company_request), D(company)},
    {"PutCompany", D(company), D(company)},
    {"GetPractice", D(get_practice_request), D(practice)},
    {"PutPractice", D(practice), D(practice)},
    {"ListPractitioners", D(list_practitioners_request),
     D(list_practitioners_reply)},
    {"GetPractitioner", D(get_practitioner_request), D(public_practitioner)},
    {"ListSpecialties", D(list_reference_request), D(list_reference_reply)},
    {"ListRegions", D(list_reference_request), D(list_reference_reply)},
    {"ListFavorites", D(list_favorites_request), D(list_favorites_reply)},
    {"PutFavorite", D(favorite_request), D(empty)},
    {"DeleteFavorite", D(favorite_request), D(empty)},
    {"GetAccountStatus", D(get_account_status_request), D(account_status)},
    {"CreateAdmin", D(create_admin_request), D(account)},
    {"SetSubscription", D(set_subscription_request), D(account)},
    {"Export", D(export_request), D(export_reply)},
    {"Erase", D(erase_request), D(erase_reply)},
    {"Sweep", D(sweep_request), D(sweep_reply)},
    {"Health", D(health_request), D(health_reply)},
};

static Creneau__V1__Role parse_role(const char *s)
{
	static const char *const names[] = {"none", "client", "practitioner",
					    "admin", "service"};
	for (int i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0)
			return (Creneau__V1__Role)i;
	return CRENEAU__V1__ROLE__ROLE_NONE;
}

static void print_error(int rc, const struct rpc_error *err)
{
	cJSON *o = cJSON_CreateObject();
	char *text;

	cJSON_AddFalseToObject(o, "ok");
	cJSON_AddStringToObject(o, "status", error_name(rc));
	cJSON_AddStringToObject(o, "error_code", err->error_code);
	cJSON_AddStringToObject(o, "field", err->field);
	cJSON_AddStringToObject(o, "message", err->message);
	cJSON_AddNumberToObject(o, "retry_after_s", (double)err->retry_after_s);
	text = cJSON_PrintUnformatted(o);
	puts(text);
	free(text);
	cJSON_Delete(o);
}

int main(int argc, char **argv)
{
	const char *key_hex = getenv("CRENEAU_RPC_KEY");
	const char *urls = getenv("ACCOUNTS_URLS");
	struct rpc_context ctx = {0};
	struct rpc_error err = {0};
	struct rpc_client *client = NULL;
	ProtobufCMessage *req, *rep;
	struct arena *a;
	uint8_t *key;
	cJSON *in, *out, *o;
	const char *bad, *why;
	char *text;
	size_t i;
	int rc;

	if (argc < 3 || !key_hex || !urls)
		return 2;
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].method, argv[1]) == 0)
			break;
	if (i == sizeof(methods) / sizeof(methods[0]) || secure_init() ||
	    secure_key_from_hex(key_hex, &key))
		return 2;
	a = arena_new(0);
	in = cJSON_Parse(argv[2]);
	if (!a || !in ||
	    pbjson_json_to_message(methods[i].req, in, a, &req, &bad, &why)) {
		fprintf(stderr, "bad request JSON\n");
		return 2;
	}
	if (argc >= 6) {
		ctx.account_id = argv[3];
		ctx.role = parse_role(argv[4]);
		ctx.session_id = argv[5];
	}
	if (rpc_client_open(&client, "accounts", urls, key, "accounts_rpc"))
		return 2;
	rc = rpc_client_call(client, &ctx, argv[1], req, methods[i].rep, a,
			     &rep, &err);
	if (rc) {
		print_error(rc, &err);
	} else {
		out = pbjson_message_to_json(rep);
		o = cJSON_CreateObject();
		cJSON_AddTrueToObject(o, "ok");
		cJSON_AddItemToObject(o, "reply", out);
		text = cJSON_PrintUnformatted(o);
		puts(text);
		free(text);
		cJSON_Delete(o);
	}
	rpc_client_free(client);
	cJSON_Delete(in);
	arena_free(a);
	secure_key_free(key);
	return 0;
}
