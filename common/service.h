/* service.h - the life of a daemon: config, database, RPC server, events, signals. */
#ifndef CRENEAU_SERVICE_H
#define CRENEAU_SERVICE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include "config.h"
#include "db.h"
#include "events.h"
#include "rpc.h"

struct service;

/*
 * What a daemon declares; main.c fills one and calls service_main. Health,
 * Export, Erase, Sweep and (for publishers) FetchEvents are answered by
 * default; a service's own Export/Erase/Sweep in methods replace them.
 */
struct service_def {
	const char *name;   /* "booking": logs, events, Health */
	const char *schema; /* "booking": its own PostgreSQL schema */
	const struct config_setting *settings; /* the service's own */
	size_t n_settings;
	const struct rpc_method *methods;
	size_t n_methods;
	const struct db_migration *migrations;
	size_t n_migrations;
	bool publishes; /* runs an outbox relay on CRENEAU_PUBLISH */
	const struct events_subscription *subscriptions;
	size_t n_subscriptions;
	/* after the RPC server and events started; may start jobs. */
	int (*start)(struct service *svc);
	/* before they stop: stop jobs. */
	void (*stop)(struct service *svc);
	void *app; /* handed to handlers through rpc_call_app */
};

/*
 * service_main - reads the common settings (CRENEAU_DB, CRENEAU_RPC_KEY,
 * CRENEAU_LISTEN, CRENEAU_PUBLISH, CRENEAU_WORKERS, CRENEAU_INSTANCE,
 * CRENEAU_LOG_LEVEL) and def's, migrates the schema, starts the RPC server,
 * the relay and subscribers, then def->start; waits for SIGTERM or SIGINT;
 * then stops in reverse order, letting in-flight requests finish. Returns
 * the process exit status.
 */
int service_main(const struct service_def *def, int argc, char **argv);

/*
 * service_block_stop_signals - blocks SIGTERM and SIGINT in the calling
 * thread and every thread it starts afterwards (nng's too), so that only
 * service_wait_stop sees them, and ignores SIGPIPE. The set goes to *out.
 * Call before any thread starts.
 */
void service_block_stop_signals(sigset_t *out);

/* service_wait_stop - waits for a signal of set; returns its number. */
int service_wait_stop(const sigset_t *set);

/*
 * Handlers reach their service through rpc_call_app(call), which is the
 * struct service; service_app() of it is def->app.
 * For def->start/stop, jobs and handlers. Borrowed pointers.
 */
const char *service_name(struct service *svc);
const uint8_t *service_key(struct service *svc);
const char *service_conninfo(struct service *svc);
void *service_app(struct service *svc);
int64_t service_started_ms(struct service *svc);
const char *service_instance(struct service *svc);

#endif
