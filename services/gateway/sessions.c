/* sessions.c - the gateway's side of sessions: validated-session cache, cookie,
 * sign-in and sign-out. */
#include "sessions.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "creneau/v1/accounts.pb-c.h"
#include "http.h"
#include "instant.h"
#include "metrics.h"
#include "pbjson.h"
#include "proxy.h"
#include "rpc.h"
#include "secure.h"

#define CACHE_SLOTS    4096 /* direct-mapped; a collision only costs an RPC */
#define USER_AGENT_MAX 256
#define CLIENT_IP_MAX  64

struct entry {
	bool used;
	uint8_t
	    key[SECURE_HASH_BYTES]; /* BLAKE2b of the token, not the token */
	int64_t born_ms;	    /* monotonic */
	char account_id[40];
	char session_id[40];
	Creneau__V1__Role role;
	char csrf[SESSIONS_TOKEN_TEXT];
};

static struct entry cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t slot_of(const uint8_t key[SECURE_HASH_BYTES])
{
	return ((size_t)key[0] | (size_t)key[1] << 8 | (size_t)key[2] << 16) %
	       CACHE_SLOTS;
}

bool sessions_cache_get(const char *token, struct arena *a,
			struct auth_principal *p_out,
			char csrf_out[SESSIONS_TOKEN_TEXT])
{
	uint8_t key[SECURE_HASH_BYTES];
	struct entry *e;
	bool hit;

	if (secure_token_hash(token, key))
		return false;
	e = &cache[slot_of(key)];
	pthread_mutex_lock(&cache_lock);
	hit = e->used && secure_equal(e->key, key, sizeof(key)) &&
	      instant_mono_ms() - e->born_ms < SESSIONS_CACHE_TTL_MS;
	if (hit) {
		p_out->account_id = arena_strdup(a, e->account_id);
		p_out->session_id = arena_strdup(a, e->session_id);
		p_out->role = e->role;
		memcpy(csrf_out, e->csrf, SESSIONS_TOKEN_TEXT);
		hit = p_out->account_id && p_out->session_id;
	}
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

void sessions_cache_put(const char *token, const struct auth_principal *p,
			const char *csrf)
{
	uint8_t key[SECURE_HASH_BYTES];
	struct entry *e;

	if (secure_token_hash(token, key) || !p->account_id || !p->session_id)
		return;
	e = &cache[slot_of(key)];
	pthread_mutex_lock(&cache_lock);
	e->used = true;
	memcpy(e->key, key, sizeof(key));
	e->born_ms = instant_mono_ms();
	snprintf(e->account_id, sizeof(e->account_id), "%s", p->account_id);
	snprintf(e->session_id, sizeof(e->session_id), "%s", p->session_id);
	e->role = p->role;
	snprintf(e->csrf, sizeof(e->csrf), "%s", csrf ? csrf : "");
	pthread_mutex_unlock(&cache_lock);
}

void sessions_cache_drop(const char *session_id)
{
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].used &&
		    strcmp(cache[i].session_id, session_id) == 0)
			cache[i].used = false;
	pthread_mutex_unlock(&cache_lock);
}

/* The value of cookie name in a Cookie header, copied into a; or NULL. */
static const char *cookie_value(struct arena *a, const char *header,
				const char *name)
{
	size_t name_len = strlen(name);
	const char *p = header;

	while (p && *p) {
		size_t len;

		while (*p == ' ' || *p == ';')
			p++;
		len = strcspn(p, ";");
		if (len > name_len && strncmp(p, name, name_len) == 0 &&
		    p[name_len] == '=')
			return arena_strndup(a, p + name_len + 1,
					     len - name_len - 1);
		p += len;
	}
	return NULL;
}

const char *sessions_request_token(struct http_exchange *x,
				   bool *from_cookie_out)
{
	const char *auth = http_exchange_header(x, "Authorization");
	const char *cookie;

	*from_cookie_out = false;
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		auth += 7;
		while (*auth == ' ')
			auth++;
		return *auth ? auth : NULL;
	}
	cookie = http_exchange_header(x, "Cookie");
	if (!cookie)
		return NULL;
	*from_cookie_out = true;
	return cookie_value(http_exchange_arena(x), cookie, SESSIONS_COOKIE);
}

/* Replaces input[name] by a string (what the gateway vouches for). */
static int put_string(cJSON *input, const char *name, const char *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(input, name);
	return cJSON_AddStringToObject(input, name, value) ? 0 : ERR_NOMEM;
}

static void on_login(void *arg, int rc, const struct rpc_error *err,
		     const uint8_t *payload, size_t len)
{
	struct http_exchange *x = arg;
	struct arena *a = http_exchange_arena(x);
	Creneau__V1__CreateSessionReply *reply;
	ProtobufCAllocator alloc;
	int64_t expires_ms = 0, max_age;
	char *cookie;
	cJSON *json;

	if (rc) {
		metrics_rpc_error(ROUTE_ACCOUNTS, rc);
		http_reply_failure(x, rc, err);
		return;
	}
	arena_protobuf_allocator(a, &alloc);
	reply = (Creneau__V1__CreateSessionReply *)protobuf_c_message_unpack(
	    &creneau__v1__create_session_reply__descriptor, &alloc, len,
	    payload);
	if (!reply || instant_parse(reply->expires_at, &expires_ms)) {
		metrics_rpc_error(ROUTE_ACCOUNTS, ERR_PROTOCOL);
		http_reply_failure(x, ERR_PROTOCOL, NULL);
		return;
	}
	max_age = (expires_ms - instant_now_ms()) / 1000;
	cookie =
	    arena_printf(a,
			 SESSIONS_COOKIE "=%s; Path=/; Max-Age=%lld; "
					 "HttpOnly; Secure; SameSite=Lax",
			 reply->token, (long long)(max_age > 0 ? max_age : 0));
	json = pbjson_message_to_json(&reply->base);
	if (!cookie || !json ||
	    http_exchange_reply_header(x, "Set-Cookie", cookie)) {
		cJSON_Delete(json);
		http_reply_failure(x, ERR_NOMEM, NULL);
		return;
	}
	http_reply_json(x, 201, json);
}

void sessions_login(struct http_exchange *x)
{
	struct arena *a = http_exchange_arena(x);
	const char *ip = http_exchange_header(x, "X-Real-IP");
	const char *ua = http_exchange_header(x, "User-Agent");
	const char *field = NULL, *reason = NULL;
	cJSON *input = http_exchange_input(x);
	struct rpc_client *accounts = http_exchange_client(x, ROUTE_ACCOUNTS);
	struct rpc_context ctx = {0};
	ProtobufCMessage *msg;
	uint8_t *packed;
	size_t len;
	int rc;

	if (!input) {
		http_reply_failure(x, ERR_NOMEM, NULL);
		return;
	}
	rc = put_string(input, "client_ip",
			ip && strlen(ip) <= CLIENT_IP_MAX ? ip : "");
	if (!rc)
		rc = put_string(input, "user_agent",
				ua ? arena_strndup(a, ua, USER_AGENT_MAX) : "");
	if (!rc)
		rc = pbjson_json_to_message(
		    &creneau__v1__create_session_request__descriptor, input, a,
		    &msg, &field, &reason);
	if (rc == ERR_INVALID) {
		http_reply_error(
		    x, 400, "invalid",
		    field ? arena_printf(a, "%s %s", field,
					 reason ? reason : "is invalid")
			  : "invalid request",
		    field);
		return;
	}
	len = rc ? 0 : protobuf_c_message_get_packed_size(msg);
	packed = rc ? NULL : arena_alloc(a, len ? len : 1);
	if (!packed) {
		http_reply_failure(x, rc ? rc : ERR_NOMEM, NULL);
		return;
	}
	protobuf_c_message_pack(msg, packed);
	ctx.request_id = http_exchange_request_id(x);
	ctx.timeout_ms = http_exchange_timeout_ms(x);
	rc = accounts ? rpc_client_call_async(accounts, &ctx, "CreateSession",
					      packed, len, on_login, x)
		      : ERR_UNAVAILABLE;
	if (rc) {
		metrics_rpc_error(ROUTE_ACCOUNTS, rc);
		http_reply_failure(x, rc, NULL);
	}
}

void sessions_logout(struct http_exchange *x)
{
	const struct auth_principal *p = http_exchange_principal(x);

	if (p->session_id)
		sessions_cache_drop(p->session_id);
	if (http_exchange_reply_header(x, "Set-Cookie",
				       SESSIONS_COOKIE "=; Path=/; Max-Age=0; "
						       "HttpOnly; Secure; "
						       "SameSite=Lax")) {
		http_reply_failure(x, ERR_NOMEM, NULL);
		return;
	}
	proxy_handle(x);
}
