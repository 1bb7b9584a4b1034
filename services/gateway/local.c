/* local.c - routes the gateway answers itself, without any RPC. */
#include "local.h"

#include "http.h"
#include "openapi.h"

static const char pong[] = "{\"status\":\"ok\"}";

void local_ping(struct http_exchange *x)
{
	http_reply_static(x, 200, "application/json", pong, sizeof(pong) - 1);
}

void local_openapi(struct http_exchange *x)
{
	http_reply_static(x, 200, "application/json", openapi_json,
			  openapi_json_len);
}
