/* auth.h - who sent an HTTP request, and whether a route lets them in: the gateway's authentication hook. */
#ifndef GATEWAY_AUTH_H
#define GATEWAY_AUTH_H

#include "creneau/v1/envelope.pb-c.h"

struct http_exchange;

/* What a route asks of its caller. */
enum auth_need {
	AUTH_ANYONE,	   /* anonymous is fine */
	AUTH_SIGNED_IN,	   /* any valid session */
	AUTH_CLIENT,	   /* a client's session */
	AUTH_PRACTITIONER, /* a practitioner's session */
	AUTH_ADMIN,	   /* an admin's session */
};

/* The authenticated principal of a request, passed in the RPC envelope.
 * Strings live in the exchange's arena. */
struct auth_principal {
	const char *account_id; /* NULL: anonymous */
	Creneau__V1__Role role;	/* ROLE_NONE when anonymous */
	const char *session_id;
};

/* Called once auth_resolve knows: rc 0, or an error_code that becomes the
 * HTTP answer (ERR_UNAUTHENTICATED for a bad or expired token,
 * ERR_UNAVAILABLE when accounts cannot tell). */
typedef void (*auth_done_fn)(struct http_exchange *x, int rc);

/*
 * auth_resolve - works out who sent x into http_exchange_principal(x), then
 * calls done exactly once, possibly before returning.
 *
 * THE HOOK. Today every request is anonymous and done is called at once.
 * Sessions (a later issue) plug in here: read "Authorization: Bearer
 * <token>" or the session cookie (then, for unsafe methods, require the
 * X-CSRF-Token header), ask accounts to validate the token with an
 * asynchronous RPC (rpc_client_call_async; never block the nng thread),
 * fill the principal from its reply and call done from the completion. A
 * request without credentials stays anonymous (rc 0): auth_check decides
 * what anonymous may do. Tokens are never logged.
 */
void auth_resolve(struct http_exchange *x, auth_done_fn done);

/*
 * auth_check - 0 when p may use a route that needs need;
 * ERR_UNAUTHENTICATED when p is anonymous and need is not AUTH_ANYONE;
 * ERR_FORBIDDEN when p is signed in with another role (roles are exact:
 * an admin is not a practitioner).
 */
int auth_check(enum auth_need need, const struct auth_principal *p);

#endif
