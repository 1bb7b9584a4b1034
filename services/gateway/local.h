/* local.h - routes the gateway answers itself, without any RPC. */
#ifndef GATEWAY_LOCAL_H
#define GATEWAY_LOCAL_H

struct http_exchange;

/* local_ping - GET /v1/ping: {"status":"ok"}, the gateway alone is up. */
void local_ping(struct http_exchange *x);

/* local_openapi - GET /v1/openapi.json: docs/openapi.json, embedded at
 * build time. */
void local_openapi(struct http_exchange *x);

#endif
