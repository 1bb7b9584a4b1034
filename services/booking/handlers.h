/* handlers.h - the booking service's RPC methods and its reaction to accounts
 * events. */
#ifndef BOOKING_HANDLERS_H
#define BOOKING_HANDLERS_H

#include <stddef.h>

#include "events.h"
#include "rpc.h"

struct db;

/* handlers_methods - the method table (static storage), n in *n_out. */
const struct rpc_method *handlers_methods(size_t *n_out);

/*
 * handlers_apply_accounts_event - events_apply_fn for the accounts
 * publisher: keeps booking's copy of accounts (verified e-mail, suspended
 * practitioner, names for the client file) and, on account.deleted,
 * cancels the account's bookings still to come and forgets its platform
 * link. Runs in the subscriber's transaction; idempotent. Undecodable
 * payloads are logged and skipped.
 */
int handlers_apply_accounts_event(void *arg, struct db *db,
				  const Creneau__V1__Event *event);

#endif
