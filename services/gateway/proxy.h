/* proxy.h - the generic route: JSON request -> protobuf RPC -> JSON reply. */
#ifndef GATEWAY_PROXY_H
#define GATEWAY_PROXY_H

struct http_exchange;

/*
 * proxy_handle - answers x through its route's RPC (see struct route):
 * fills the route's request message from the JSON body, the query
 * parameters and the path parameters (pbjson), calls the service
 * asynchronously with the principal and request id in the envelope, and
 * answers with the reply message as JSON, or with the error the service
 * (or the transport) gave. Field errors are 400 naming the field.
 */
void proxy_handle(struct http_exchange *x);

#endif
