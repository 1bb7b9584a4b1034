/* auth.c - the authentication hook: a Bearer token or the session cookie
 * becomes a principal (see auth.h). */
#include "auth.h"

#include <string.h>

#include "arena.h"
#include "creneau/v1/accounts.pb-c.h"
#include "error.h"
#include "http.h"
#include "metrics.h"
#include "rpc.h"
#include "secure.h"
#include "sessions.h"

/* What a pending validation remembers (in the exchange's arena). */
struct pending {
	struct http_exchange *x;
	auth_done_fn done;
	const char *token;
	bool from_cookie;
};

/*
 * A browser's unsafe request must echo its CSRF token: a cookie is sent by
 * any site, the header only by our own pages. 0 or ERR_FORBIDDEN.
 */
static int check_csrf(struct http_exchange *x, bool from_cookie,
		      const char *csrf)
{
	const char *sent = http_exchange_header(x, "X-CSRF-Token");
	size_t len = strlen(csrf);

	if (!from_cookie || http_is_safe_method(http_exchange_route(x)->method))
		return 0;
	if (!sent || !len || strlen(sent) != len ||
	    !secure_equal(sent, csrf, len))
		return ERR_FORBIDDEN;
	return 0;
}

/*
 * Ends resolution once the session is known: a cookie without its CSRF
 * token does not authenticate an unsafe request. On a route open to anyone
 * the request goes on anonymous (signing in again, signing up); elsewhere
 * it is refused (403).
 */
static void finish(struct http_exchange *x, auth_done_fn done, bool from_cookie,
		   const char *csrf)
{
	struct auth_principal *p = http_exchange_principal(x);

	if (!check_csrf(x, from_cookie, csrf)) {
		done(x, 0);
		return;
	}
	if (http_exchange_route(x)->auth != AUTH_ANYONE) {
		done(x, ERR_FORBIDDEN);
		return;
	}
	p->account_id = NULL;
	p->role = CRENEAU__V1__ROLE__ROLE_NONE;
	p->session_id = NULL;
	done(x, 0);
}

static void on_validated(void *arg, int rc, const struct rpc_error *err,
			 const uint8_t *payload, size_t len)
{
	struct pending *w = arg;
	struct http_exchange *x = w->x;
	struct auth_principal *p = http_exchange_principal(x);
	Creneau__V1__ValidateSessionReply *reply;
	ProtobufCAllocator alloc;

	if (rc == ERR_UNAUTHENTICATED) {
		/* a stale cookie leaves a browser anonymous; a bad Bearer
		 * token is an error */
		w->done(x, w->from_cookie ? 0 : ERR_UNAUTHENTICATED);
		return;
	}
	if (rc) {
		metrics_rpc_error(ROUTE_ACCOUNTS, rc);
		w->done(x, rc == ERR_TIMEOUT ? ERR_UNAVAILABLE : rc);
		return;
	}
	arena_protobuf_allocator(http_exchange_arena(x), &alloc);
	reply = (Creneau__V1__ValidateSessionReply *)protobuf_c_message_unpack(
	    &creneau__v1__validate_session_reply__descriptor, &alloc, len,
	    payload);
	if (!reply || !*reply->account_id) {
		metrics_rpc_error(ROUTE_ACCOUNTS, ERR_PROTOCOL);
		w->done(x, ERR_UNAVAILABLE);
		return;
	}
	p->account_id = reply->account_id;
	p->role = reply->role;
	p->session_id = reply->session_id;
	sessions_cache_put(w->token, p, reply->csrf_token);
	finish(x, w->done, w->from_cookie, reply->csrf_token);
}

void auth_resolve(struct http_exchange *x, auth_done_fn done)
{
	struct auth_principal *p = http_exchange_principal(x);
	struct arena *a = http_exchange_arena(x);
	Creneau__V1__ValidateSessionRequest req =
	    CRENEAU__V1__VALIDATE_SESSION_REQUEST__INIT;
	struct rpc_client *accounts = http_exchange_client(x, ROUTE_ACCOUNTS);
	char csrf[SESSIONS_TOKEN_TEXT];
	struct rpc_context ctx = {0};
	struct pending *w;
	uint8_t *packed;
	size_t len;
	int rc;

	p->account_id = NULL;
	p->role = CRENEAU__V1__ROLE__ROLE_NONE;
	p->session_id = NULL;
	w = arena_alloc(a, sizeof(*w));
	if (!w) {
		done(x, ERR_NOMEM);
		return;
	}
	w->x = x;
	w->done = done;
	w->token = sessions_request_token(x, &w->from_cookie);
	if (!w->token) {
		done(x, 0);
		return;
	}
	if (sessions_cache_get(w->token, a, p, csrf)) {
		finish(x, done, w->from_cookie, csrf);
		return;
	}
	req.token = (char *)w->token;
	len = protobuf_c_message_get_packed_size(&req.base);
	packed = arena_alloc(a, len ? len : 1);
	if (!packed) {
		done(x, ERR_NOMEM);
		return;
	}
	protobuf_c_message_pack(&req.base, packed);
	ctx.request_id = http_exchange_request_id(x);
	ctx.timeout_ms = http_exchange_timeout_ms(x);
	rc = accounts ? rpc_client_call_async(accounts, &ctx, "ValidateSession",
					      packed, len, on_validated, w)
		      : ERR_UNAVAILABLE;
	if (rc) {
		metrics_rpc_error(ROUTE_ACCOUNTS, rc);
		done(x, ERR_UNAVAILABLE);
	}
}

int auth_check(enum auth_need need, const struct auth_principal *p)
{
	Creneau__V1__Role wanted;

	if (need == AUTH_ANYONE)
		return 0;
	if (!p->account_id || p->role == CRENEAU__V1__ROLE__ROLE_NONE)
		return ERR_UNAUTHENTICATED;
	switch (need) {
	case AUTH_CLIENT:
		wanted = CRENEAU__V1__ROLE__ROLE_CLIENT;
		break;
	case AUTH_PRACTITIONER:
		wanted = CRENEAU__V1__ROLE__ROLE_PRACTITIONER;
		break;
	case AUTH_ADMIN:
		wanted = CRENEAU__V1__ROLE__ROLE_ADMIN;
		break;
	default:
		return 0;
	}
	return p->role == wanted ? 0 : ERR_FORBIDDEN;
}
