/* app.h - the notifications daemon's state shared by main.c, handlers.c, consume.c and jobs. */
#ifndef CRENEAU_NOTIFICATIONS_APP_H
#define CRENEAU_NOTIFICATIONS_APP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "events.h"
#include "messages.h"
#include "secure.h"

struct jobs;

/* Filled by config_load (the settings of main.c) and by start. */
struct notify_app {
	char *mail_url, *mail_from, *mail_from_name, *mail_username,
		*mail_password, *mail_tls, *mail_ca_file, *operator_addr,
		*public_url;
	long senders, poll_ms, retry_base_ms, retry_max_ms, give_up_s,
		timeout_ms, reminder_before_min, contact_per_hour,
		reconsent_after_days, reconsent_wait_days;
	char *accounts_pub, *accounts_rpc, *booking_pub, *booking_rpc;
	struct messages_config messages; /* for jobs; set by start */
	struct jobs *jobs;
	struct events_subscriber *subs[2];
	/* app_unsubscribe_key's: derived once, under key_lock */
	pthread_mutex_t key_lock;
	bool unsubscribe_key_ready;
	uint8_t unsubscribe_key[SECURE_KEY_BYTES];
};

/*
 * app_unsubscribe_key - the unsubscribe subkey of deployment_key
 * (messages_unsubscribe_key), derived on the first call (start makes it;
 * a handler that runs before start would). Thread-safe; the bytes stay
 * valid and unchanged for the life of app.
 */
static inline const uint8_t *app_unsubscribe_key(struct notify_app *app,
						 const uint8_t *deployment_key)
{
	pthread_mutex_lock(&app->key_lock);
	if (!app->unsubscribe_key_ready) {
		messages_unsubscribe_key(deployment_key, app->unsubscribe_key);
		app->unsubscribe_key_ready = true;
	}
	pthread_mutex_unlock(&app->key_lock);
	return app->unsubscribe_key;
}

/*
 * app_messages - the messages configuration straight from the settings,
 * which config_load fills before the RPC server starts: handlers may run
 * before def->start has.
 */
static inline struct messages_config app_messages(const struct notify_app *app)
{
	struct messages_config c = {.from_addr = app->mail_from,
				    .from_name = app->mail_from_name,
				    .public_url = app->public_url};
	return c;
}

/* app_operator - where contact-form messages go. */
static inline const char *app_operator(const struct notify_app *app)
{
	return *app->operator_addr ? app->operator_addr : app->mail_from;
}

#endif
