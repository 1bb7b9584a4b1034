/* health.h - GET /v1/health: every service asked at once, one answer. */
#ifndef GATEWAY_HEALTH_H
#define GATEWAY_HEALTH_H

struct http_exchange;

/* How long the gateway waits for each service's Health. */
#define HEALTH_TIMEOUT_MS 1000

/*
 * health_handle - calls Health on the five services concurrently and
 * answers {"status":"ok"|"degraded","services":{"accounts":{"status":"ok",
 * "instance":..,"version":..,"database":"ok"},...}}: 200 when every service
 * answered and reached its database, else 503 with the failing services'
 * status "down" (no answer) or "degraded" (database unreachable) and an
 * "error" naming them.
 */
void health_handle(struct http_exchange *x);

#endif
