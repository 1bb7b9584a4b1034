/* metrics.h - the gateway's counters and their Prometheus text exposition at GET /metrics. */
#ifndef GATEWAY_METRICS_H
#define GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "routes.h"

struct http_exchange;

/* the most routes the counters have room for (the table is checked) */
#define METRICS_MAX_ROUTES 256

/*
 * metrics_observe - counts one answered request: r is its route (NULL when
 * none matched), status the HTTP status, duration_us from the request's
 * arrival to its answer. Lock-free (atomic counters); any thread.
 */
void metrics_observe(const struct route *r, int status, int64_t duration_us);

/* metrics_rpc_error - counts one failed RPC to s with error_code code. */
void metrics_rpc_error(enum route_service s, int code);

/*
 * metrics_render - the exposition text (text/plain; version=0.0.4):
 * creneau_http_requests_total{method,route,status},
 * creneau_http_request_duration_seconds{method,route} (histogram),
 * creneau_rpc_errors_total{service,code}, creneau_http_in_flight.
 * *out is malloc'd (caller frees) with its length in *len_out. ERR_NOMEM.
 */
int metrics_render(char **out, size_t *len_out, int in_flight);

/* metrics_handle - GET /metrics. */
void metrics_handle(struct http_exchange *x);

#endif
