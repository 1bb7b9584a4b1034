/* local.c - routes the gateway answers itself, without any RPC. */
#include "local.h"

#include <stddef.h>

#include "http.h"
#include "openapi.h"

/* services/gateway/web/, embedded by CMakeLists.txt (embed_file.cmake) */
extern const unsigned char web_index_html[];
extern const size_t web_index_html_len;
extern const unsigned char web_verify_email_html[];
extern const size_t web_verify_email_html_len;
extern const unsigned char web_reset_password_html[];
extern const size_t web_reset_password_html_len;
extern const unsigned char web_newsletter_confirm_html[];
extern const size_t web_newsletter_confirm_html_len;
extern const unsigned char web_newsletter_unsubscribe_html[];
extern const size_t web_newsletter_unsubscribe_html_len;
extern const unsigned char web_app_js[];
extern const size_t web_app_js_len;
extern const unsigned char web_app_css[];
extern const size_t web_app_css_len;

static const char pong[] = "{\"status\":\"ok\"}";

#define HTML_TYPE "text/html; charset=utf-8"
/* a page is tiny and must match the script of the same deployment: the
 * browser keeps it but asks again each time */
#define PAGE_CACHE "no-cache"
/* the script and the style sheet change only with a deployment */
#define ASSET_CACHE "public, max-age=300"

void local_ping(struct http_exchange *x)
{
	http_reply_static(x, 200, "application/json", pong, sizeof(pong) - 1);
}

void local_openapi(struct http_exchange *x)
{
	http_reply_static(x, 200, "application/json", openapi_json,
			  openapi_json_len);
}

/* Answers one embedded file. */
static void reply_file(struct http_exchange *x, const char *content_type,
		       const char *cache, const unsigned char *data, size_t len)
{
	/* on failure (out of memory) the file still goes out, with the
	 * common Cache-Control: no-store */
	int rc = http_exchange_reply_header(x, "Cache-Control", cache);

	(void)rc;
	http_reply_static(x, 200, content_type, data, len);
}

void local_web_index(struct http_exchange *x)
{
	reply_file(x, HTML_TYPE, PAGE_CACHE, web_index_html,
		   web_index_html_len);
}

void local_web_verify_email(struct http_exchange *x)
{
	reply_file(x, HTML_TYPE, PAGE_CACHE, web_verify_email_html,
		   web_verify_email_html_len);
}

void local_web_reset_password(struct http_exchange *x)
{
	reply_file(x, HTML_TYPE, PAGE_CACHE, web_reset_password_html,
		   web_reset_password_html_len);
}

void local_web_newsletter_confirm(struct http_exchange *x)
{
	reply_file(x, HTML_TYPE, PAGE_CACHE, web_newsletter_confirm_html,
		   web_newsletter_confirm_html_len);
}

void local_web_newsletter_unsubscribe(struct http_exchange *x)
{
	reply_file(x, HTML_TYPE, PAGE_CACHE, web_newsletter_unsubscribe_html,
		   web_newsletter_unsubscribe_html_len);
}

void local_web_app_js(struct http_exchange *x)
{
	reply_file(x, "text/javascript; charset=utf-8", ASSET_CACHE,
		   web_app_js, web_app_js_len);
}

void local_web_app_css(struct http_exchange *x)
{
	reply_file(x, "text/css; charset=utf-8", ASSET_CACHE, web_app_css,
		   web_app_css_len);
}
