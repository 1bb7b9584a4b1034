/* main.c - the booking daemon: offerings, opening hours, availability and
 * bookings. */
#include "handlers.h"
#include "service.h"

extern const struct db_migration booking_migrations[];
extern const size_t booking_migrations_count;

/* Where the accounts service answers and publishes (its copy of accounts). */
static char *accounts_rpc;
static char *accounts_events;

static const struct config_setting settings[] = {
    {"CRENEAU_ACCOUNTS_RPC", CONFIG_URLS, NULL, false,
     "nng URLs of the accounts replicas' REP sockets (missed events)",
     &accounts_rpc, 0, 0},
    {"CRENEAU_ACCOUNTS_EVENTS", CONFIG_URLS, NULL, false,
     "nng URLs of the accounts replicas' PUB sockets", &accounts_events, 0, 0},
};

static struct events_subscriber *accounts_subscriber;

/* The accounts subscription starts here rather than through
 * service_def.subscriptions because its URLs are settings, known only once
 * service_main has read them. */
static int start(struct service *svc)
{
	struct events_subscription sub = {
	    .publisher = "accounts",
	    .pub_urls = accounts_events,
	    .rpc_urls = accounts_rpc,
	    .apply = handlers_apply_accounts_event,
	};

	return events_subscriber_start(&accounts_subscriber, service_name(svc),
				       service_conninfo(svc), &sub,
				       service_key(svc));
}

static void stop(struct service *svc)
{
	events_subscriber_stop(accounts_subscriber);
	accounts_subscriber = NULL;
}

int main(int argc, char **argv)
{
	struct service_def def = {
	    .name = "booking",
	    .schema = "booking",
	    .settings = settings,
	    .n_settings = sizeof(settings) / sizeof(settings[0]),
	    .migrations = booking_migrations,
	    .n_migrations = booking_migrations_count,
	    .publishes = true,
	    .start = start,
	    .stop = stop,
	};

	def.methods = handlers_methods(&def.n_methods);
	return service_main(&def, argc, argv);
}
