/* proxy.c - the generic route: JSON body + query + path parameters -> request message -> RPC -> reply as JSON. */
#include "proxy.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "auth.h"
#include "http.h"
#include "metrics.h"
#include "pbjson.h"
#include "query.h"
#include "rpc.h"

/* Replaces every key of input named name by value (taken). */
static int put_field(cJSON *input, const char *name, cJSON *value)
{
	while (cJSON_GetObjectItemCaseSensitive(input, name))
		cJSON_DeleteItemFromObjectCaseSensitive(input, name);
	if (!cJSON_AddItemToObject(input, name, value)) {
		cJSON_Delete(value);
		return ERR_NOMEM;
	}
	return 0;
}

/*
 * Adds the query parameters that name fields of desc to params (a JSON
 * object): repeated fields collect every occurrence in an array, others
 * keep the last. Parameters naming no field are ignored.
 */
static int collect_query(struct http_exchange *x,
			 const ProtobufCMessageDescriptor *desc, cJSON *params)
{
	struct query_param *q;
	size_t n;
	int rc =
	    query_parse(http_exchange_arena(x), http_exchange_query(x), &q, &n);

	for (size_t i = 0; !rc && i < n; i++) {
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(desc,
								    q[i].name);
		cJSON *v, *list;

		if (!f)
			continue;
		v = pbjson_text_value(f, q[i].value);
		if (!v)
			return ERR_NOMEM;
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			rc = put_field(params, f->name, v);
			continue;
		}
		list = cJSON_GetObjectItemCaseSensitive(params, f->name);
		if (!list) {
			list = cJSON_AddArrayToObject(params, f->name);
			if (!list) {
				cJSON_Delete(v);
				return ERR_NOMEM;
			}
		}
		if (!cJSON_AddItemToArray(list, v)) {
			cJSON_Delete(v);
			return ERR_NOMEM;
		}
	}
	return rc;
}

/* Adds the path parameters to params, each decoded. */
static int collect_path(struct http_exchange *x,
			const ProtobufCMessageDescriptor *desc, cJSON *params)
{
	const struct route_match *m = http_exchange_match(x);
	struct arena *a = http_exchange_arena(x);

	for (size_t i = 0; i < m->n_params; i++) {
		const ProtobufCFieldDescriptor *f;
		char *name, *value;
		cJSON *v;
		int rc;

		name =
		    arena_strndup(a, m->params[i].name, m->params[i].name_len);
		if (!name)
			return ERR_NOMEM;
		f = protobuf_c_message_descriptor_get_field_by_name(desc, name);
		if (!f)
			continue;
		rc = query_decode(a, m->params[i].value, m->params[i].value_len,
				  false, &value);
		if (rc)
			return rc;
		v = pbjson_text_value(f, value);
		if (v && f->label == PROTOBUF_C_LABEL_REPEATED) {
			cJSON *list = cJSON_CreateArray();

			if (!list || !cJSON_AddItemToArray(list, v)) {
				cJSON_Delete(list);
				cJSON_Delete(v);
				return ERR_NOMEM;
			}
			v = list;
		}
		if (!v || put_field(params, f->name, v))
			return ERR_NOMEM;
	}
	return 0;
}

/*
 * Request fields only the gateway fills, from headers. A body's value is
 * always replaced (by "" when the header is absent or too long for the
 * field), so no client can claim another's address or key.
 */
static const struct header_field {
	const char *header;
	const char *field;
	size_t max;	/* longer: "" */
	bool truncate;	/* longer: cut to max instead */
} header_fields[] = {
	{"Idempotency-Key", "idempotency_key", 4096, false}, /* service checks */
	{"X-Real-IP", "client_ip", 64, false},
	{"User-Agent", "user_agent", 256, true},
};

static int collect_headers(struct http_exchange *x,
			   const ProtobufCMessageDescriptor *desc,
			   cJSON *params)
{
	for (size_t i = 0; i < sizeof(header_fields) / sizeof(header_fields[0]);
	     i++) {
		const struct header_field *h = &header_fields[i];
		const char *value = http_exchange_header(x, h->header);
		cJSON *v;

		if (!protobuf_c_message_descriptor_get_field_by_name(desc,
								     h->field))
			continue;
		if (!value || (strlen(value) > h->max && !h->truncate))
			value = "";
		value = arena_strndup(http_exchange_arena(x), value, h->max);
		v = value ? cJSON_CreateString(value) : NULL;
		if (!v || put_field(params, h->field, v))
			return ERR_NOMEM;
	}
	return 0;
}

/* The JSON the request message is read from: the body, overridden by the
 * query, overridden by the path. */
static int build_input(struct http_exchange *x,
		       const ProtobufCMessageDescriptor *desc, cJSON **out)
{
	cJSON *input = http_exchange_input(x);
	cJSON *params = cJSON_CreateObject();
	cJSON *item;
	int rc;

	*out = NULL;
	if (!input || !params) {
		cJSON_Delete(params);
		return ERR_NOMEM;
	}
	rc = collect_query(x, desc, params);
	if (!rc)
		rc = collect_path(x, desc, params);
	if (!rc)
		rc = collect_headers(x, desc, params);
	while (!rc && (item = params->child) != NULL) {
		char *name = item->string;

		cJSON_DetachItemViaPointer(params, item);
		item->string = NULL;
		rc = put_field(input, name, item);
		cJSON_free(name);
	}
	cJSON_Delete(params);
	*out = input;
	return rc;
}

static void on_reply(void *arg, int rc, const struct rpc_error *err,
		     const uint8_t *payload, size_t len)
{
	struct http_exchange *x = arg;
	const struct route *r = http_exchange_route(x);
	ProtobufCAllocator alloc;
	ProtobufCMessage *reply;
	cJSON *json;

	if (rc) {
		metrics_rpc_error(r->service, rc);
		http_reply_failure(x, rc, err);
		return;
	}
	if (r->status == 204) {
		http_reply_json(x, 204, NULL);
		return;
	}
	arena_protobuf_allocator(http_exchange_arena(x), &alloc);
	reply = protobuf_c_message_unpack(r->reply, &alloc, len, payload);
	if (!reply) {
		metrics_rpc_error(r->service, ERR_PROTOCOL);
		http_reply_failure(x, ERR_PROTOCOL, NULL);
		return;
	}
	json = pbjson_message_to_json(reply);
	if (!json) {
		http_reply_failure(x, ERR_NOMEM, NULL);
		return;
	}
	http_reply_json(x, r->status, json);
}

/* Answers 400 for a field pbjson refused: "field reason". */
static void reply_bad_field(struct http_exchange *x, const char *field,
			    const char *reason)
{
	char message[320];

	if (field)
		snprintf(message, sizeof(message), "%s %s", field,
			 reason ? reason : "is invalid");
	else
		snprintf(message, sizeof(message), "%s",
			 reason ? reason : "invalid request");
	http_reply_error(x, 400, "invalid", message, field);
}

void proxy_handle(struct http_exchange *x)
{
	const struct route *r = http_exchange_route(x);
	struct arena *a = http_exchange_arena(x);
	const struct auth_principal *p = http_exchange_principal(x);
	const char *field = NULL, *reason = NULL;
	ProtobufCMessage *msg;
	struct rpc_context ctx;
	cJSON *input;
	uint8_t *packed;
	size_t len;
	int rc;

	rc = build_input(x, r->request, &input);
	if (rc == ERR_INVALID || rc == ERR_TOO_LARGE) {
		http_reply_error(x, 400, "invalid",
				 "malformed path or query parameter", NULL);
		return;
	}
	if (!rc)
		rc = pbjson_json_to_message(r->request, input, a, &msg, &field,
					    &reason);
	if (rc == ERR_INVALID) {
		reply_bad_field(x, field, reason);
		return;
	}
	len = rc ? 0 : protobuf_c_message_get_packed_size(msg);
	packed = rc ? NULL : arena_alloc(a, len ? len : 1);
	if (rc || !packed) {
		http_reply_failure(x, ERR_NOMEM, NULL);
		return;
	}
	protobuf_c_message_pack(msg, packed);
	ctx = (struct rpc_context){
	    .request_id = http_exchange_request_id(x),
	    .account_id = p->account_id,
	    .role = p->role,
	    .session_id = p->session_id,
	    .timeout_ms = http_exchange_timeout_ms(x),
	};
	rc = ERR_UNAVAILABLE;
	if (http_exchange_client(x, r->service))
		rc = rpc_client_call_async(http_exchange_client(x, r->service),
					   &ctx, r->rpc, packed, len, on_reply,
					   x);
	if (rc) {
		metrics_rpc_error(r->service, rc);
		http_reply_failure(x, rc, NULL);
	}
}
