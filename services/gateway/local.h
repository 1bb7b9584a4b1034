/* local.h - routes the gateway answers itself, without any RPC. */
#ifndef GATEWAY_LOCAL_H
#define GATEWAY_LOCAL_H

struct http_exchange;

/* local_ping - GET /v1/ping: {"status":"ok"}, the gateway alone is up. */
void local_ping(struct http_exchange *x);

/* local_openapi - GET /v1/openapi.json: docs/openapi.json, embedded at
 * build time. */
void local_openapi(struct http_exchange *x);

/*
 * The static web client (services/gateway/web/, embedded at build time):
 * each answers its file with its Content-Type and a Cache-Control suited
 * to it (pages revalidated each time, script and style sheet kept a few
 * minutes), plus the common security headers. The pages do their work in
 * app.js, against the JSON API of the same origin.
 */

/* local_web_index - GET /: names the product, links to the API document. */
void local_web_index(struct http_exchange *x);

/* local_web_verify_email - GET /verify-email?token=: the page the
 * verification mail links to; confirms the address. */
void local_web_verify_email(struct http_exchange *x);

/* local_web_reset_password - GET /reset-password?token=: the page the
 * password reset mail links to; a form for the new password. */
void local_web_reset_password(struct http_exchange *x);

/* local_web_newsletter_confirm - GET /newsletter-confirm?token=: the page
 * the newsletter opt-in mail links to; its button confirms. */
void local_web_newsletter_confirm(struct http_exchange *x);

/* local_web_newsletter_unsubscribe - GET /newsletter-unsubscribe?token=:
 * the page a newsletter's unsubscribe link leads to; its button
 * unsubscribes. */
void local_web_newsletter_unsubscribe(struct http_exchange *x);

/* local_web_app_js - GET /app.js: the pages' one script. */
void local_web_app_js(struct http_exchange *x);

/* local_web_app_css - GET /app.css: the pages' one style sheet. */
void local_web_app_css(struct http_exchange *x);

#endif
