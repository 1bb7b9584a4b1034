/* sessions.h - signed-in users at the gateway: the short cache of validated
 * sessions, the session cookie, sign-in and sign-out. */
#ifndef GATEWAY_SESSIONS_H
#define GATEWAY_SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"

struct arena;
struct http_exchange;

/* the browser's cookie (HttpOnly, Secure, SameSite=Lax) */
#define SESSIONS_COOKIE "creneau_session"

/*
 * How long a validated session is believed without asking accounts again.
 * A revoked session must stop within one second, on every gateway replica:
 * entries live less than that, so no revocation event is needed (and
 * sign-out through this gateway drops its entry at once). 900 ms leaves
 * room for the time between accounts' answer and the entry's insertion.
 */
#define SESSIONS_CACHE_TTL_MS 900

/* room for a session token or CSRF token as text (secure.h) */
#define SESSIONS_TOKEN_TEXT 48

/*
 * sessions_cache_get - the principal and CSRF token cached for token, if a
 * live entry exists: strings copied into a. Thread-safe.
 */
bool sessions_cache_get(const char *token, struct arena *a,
			struct auth_principal *p_out,
			char csrf_out[SESSIONS_TOKEN_TEXT]);

/* sessions_cache_put - remembers what accounts said of token (copied).
 * Thread-safe. */
void sessions_cache_put(const char *token, const struct auth_principal *p,
			const char *csrf);

/* sessions_cache_drop - forgets every entry of session_id. Thread-safe. */
void sessions_cache_drop(const char *session_id);

/*
 * sessions_request_token - the session token x presents: the Bearer token
 * of its Authorization header, else its session cookie (*from_cookie_out
 * true). NULL when none (strings borrowed from the request or x's arena).
 */
const char *sessions_request_token(struct http_exchange *x,
				   bool *from_cookie_out);

/*
 * sessions_login - POST /v1/sessions: the CreateSession RPC with the
 * client's address (X-Real-IP, set by the TLS proxy) and User-Agent added
 * by the gateway, whatever the body says; the reply as JSON (201) with the
 * token also set as the session cookie.
 */
void sessions_login(struct http_exchange *x);

/*
 * sessions_logout - DELETE /v1/sessions/current: drops the session from
 * the cache, clears the cookie, then the generic proxy (the
 * DeleteCurrentSession RPC).
 */
void sessions_logout(struct http_exchange *x);

#endif
