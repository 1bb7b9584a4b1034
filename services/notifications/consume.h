/* consume.h - the accounts and booking events turned into mails, inside the subscriber's transaction. */
#ifndef CRENEAU_NOTIFICATIONS_CONSUME_H
#define CRENEAU_NOTIFICATIONS_CONSUME_H

#include "events.h"

/*
 * events_apply_fn for the accounts publisher (arg: struct notify_app *).
 * Keeps the contact copy (address, names) and queues the verification and
 * password-reset mails in db's transaction, so each event makes its mail
 * exactly once. An undecodable payload is logged and skipped.
 */
int consume_accounts(void *arg, struct db *db, const Creneau__V1__Event *ev);

/*
 * events_apply_fn for the booking publisher: confirmations (client and
 * practitioner), cancellations and reschedules with an .ics (SEQUENCE
 * raised each time), and the reminder queued for start minus the
 * configured delay, cancelled again when the booking is cancelled or moved.
 */
int consume_booking(void *arg, struct db *db, const Creneau__V1__Event *ev);

#endif
