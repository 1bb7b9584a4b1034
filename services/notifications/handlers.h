/* handlers.h - the RPC methods of notifications. */
#ifndef CRENEAU_NOTIFICATIONS_HANDLERS_H
#define CRENEAU_NOTIFICATIONS_HANDLERS_H

#include <stddef.h>
#include "rpc.h"

/* The method table (Export, Erase and Sweep replace the defaults). */
extern const struct rpc_method handlers_methods[];
extern const size_t handlers_count;

/* The newsletter's consent text version recorded with each confirmation. */
#define HANDLERS_CONSENT_VERSION "newsletter-2026-11"

#endif
