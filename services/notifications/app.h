/* app.h - the notifications daemon's state shared by main.c, handlers.c, consume.c and jobs. */
#ifndef CRENEAU_NOTIFICATIONS_APP_H
#define CRENEAU_NOTIFICATIONS_APP_H

#include <stdint.h>
#include "events.h"
#include "messages.h"

struct jobs;

/* Filled by config_load (the settings of main.c) and by start. */
struct notify_app {
	char *mail_url, *mail_from, *mail_from_name, *mail_username,
		*mail_password, *mail_tls, *operator_addr, *public_url;
	long senders, poll_ms, retry_base_ms, retry_max_ms, give_up_s,
		timeout_ms, reminder_before_min, contact_per_hour,
		reconsent_after_days, reconsent_wait_days;
	char *accounts_pub, *accounts_rpc, *booking_pub, *booking_rpc;
	struct messages_config messages;
	const uint8_t *key; /* the deployment key: unsubscribe links */
	struct jobs *jobs;
	struct events_subscriber *subs[2];
};

#endif
