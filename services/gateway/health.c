/* health.c - GET /v1/health: Health asked of every service at once, answered when the last replies. */
#include "health.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "creneau/v1/service.pb-c.h"
#include "http.h"
#include "metrics.h"
#include "rpc.h"

struct health_slot {
	int rc;
	bool database_ok;
	char instance[64];
	char version[32];
};

struct health_check {
	struct http_exchange *x;
	/* calls not yet answered, plus one held while they are started */
	atomic_int pending;
	struct health_slot slots[ROUTE_N_SERVICES];
	struct health_call {
		struct health_check *check;
		enum route_service service;
	} calls[ROUTE_N_SERVICES];
};

static cJSON *service_json(const struct health_slot *slot)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	if (slot->rc) {
		cJSON_AddStringToObject(o, "status", "down");
		cJSON_AddStringToObject(o, "error",
					slot->rc == ERR_PROTOCOL
					    ? "bad_gateway"
					    : "service_unavailable");
		return o;
	}
	cJSON_AddStringToObject(o, "status",
				slot->database_ok ? "ok" : "degraded");
	cJSON_AddStringToObject(o, "instance", slot->instance);
	cJSON_AddStringToObject(o, "version", slot->version);
	cJSON_AddStringToObject(o, "database",
				slot->database_ok ? "ok" : "down");
	return o;
}

/* Writes the names of the unhealthy services into down; true if none. */
static bool all_healthy(const struct health_check *check, char *down, size_t n)
{
	bool ok = true;

	down[0] = '\0';
	for (int s = 0; s < ROUTE_N_SERVICES; s++) {
		const struct health_slot *slot = &check->slots[s];
		size_t used = strlen(down);

		if (!slot->rc && slot->database_ok)
			continue;
		ok = false;
		snprintf(down + used, n - used, "%s%s", used ? ", " : "",
			 routes_service_name(s));
	}
	return ok;
}

/* Builds the answer once every service has replied or failed. */
static void answer(struct health_check *check)
{
	struct http_exchange *x = check->x;
	char down[128], message[160];
	bool ok = all_healthy(check, down, sizeof(down));
	cJSON *root = cJSON_CreateObject();
	cJSON *services, *error = NULL;
	bool built;

	built = cJSON_AddStringToObject(root, "status", ok ? "ok" : "degraded");
	services = cJSON_AddObjectToObject(root, "services");
	built = built && services;
	for (int s = 0; built && s < ROUTE_N_SERVICES; s++) {
		cJSON *one = service_json(&check->slots[s]);

		built = one && cJSON_AddItemToObject(
				   services, routes_service_name(s), one);
		if (!built)
			cJSON_Delete(one);
	}
	if (built && !ok) {
		snprintf(message, sizeof(message), "not healthy: %s", down);
		error = cJSON_AddObjectToObject(root, "error");
		built = error &&
			cJSON_AddStringToObject(error, "code",
						"service_unavailable") &&
			cJSON_AddStringToObject(error, "message", message);
	}
	if (!built) {
		cJSON_Delete(root);
		http_reply_failure(x, ERR_NOMEM, NULL);
		return;
	}
	http_reply_json(x, ok ? 200 : 503, root);
}

static void call_done(struct health_check *check)
{
	if (atomic_fetch_sub(&check->pending, 1) == 1)
		answer(check);
}

/* Completion of one Health call, on an nng thread. Copies what it needs:
 * the arena is not for concurrent callbacks. */
static void on_health(void *arg, int rc, const struct rpc_error *err,
		      const uint8_t *payload, size_t len)
{
	struct health_call *call = arg;
	struct health_slot *slot = &call->check->slots[call->service];
	Creneau__V1__HealthReply *reply;

	(void)err;
	if (rc == 0) {
		reply = creneau__v1__health_reply__unpack(NULL, len, payload);
		if (reply) {
			slot->database_ok = reply->database_ok;
			snprintf(slot->instance, sizeof(slot->instance), "%s",
				 reply->instance);
			snprintf(slot->version, sizeof(slot->version), "%s",
				 reply->version);
			creneau__v1__health_reply__free_unpacked(reply, NULL);
		} else {
			rc = ERR_PROTOCOL;
		}
	}
	if (rc)
		metrics_rpc_error(call->service, rc);
	slot->rc = rc;
	call_done(call->check);
}

void health_handle(struct http_exchange *x)
{
	static const uint8_t empty[1];
	struct health_check *check;
	struct rpc_context ctx = {
	    .request_id = http_exchange_request_id(x),
	    .timeout_ms = HEALTH_TIMEOUT_MS,
	};

	check = arena_alloc(http_exchange_arena(x), sizeof(*check));
	if (!check) {
		http_reply_failure(x, ERR_NOMEM, NULL);
		return;
	}
	check->x = x;
	atomic_init(&check->pending, ROUTE_N_SERVICES + 1);
	for (int s = 0; s < ROUTE_N_SERVICES; s++) {
		struct rpc_client *c = http_exchange_client(x, s);
		int rc = ERR_UNAVAILABLE;

		check->calls[s].check = check;
		check->calls[s].service = s;
		if (c)
			rc = rpc_client_call_async(c, &ctx, "Health", empty, 0,
						   on_health, &check->calls[s]);
		if (rc) {
			metrics_rpc_error(s, rc);
			check->slots[s].rc = rc;
			call_done(check);
		}
	}
	call_done(check);
}
