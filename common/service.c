/* service.c - the common life of a daemon: settings, schema, RPC server, events, signals. */
#include "service.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "creneau/v1/service.pb-c.h"
#include "instant.h"
#include "log.h"
#include "secure.h"

#define MAX_METHODS 128

struct service {
	const struct service_def *def;
	char *db;
	char *listen;
	char *publish;
	char *instance;
	char *log_level;
	long workers;
	long db_wait_s;
	uint8_t *key;
	int64_t started_ms;
	struct rpc_method methods[MAX_METHODS];
	size_t n_methods;
	struct rpc_server *rpc;
	struct events_relay *relay;
	struct events_subscriber **subs;
	bool stopping; /* a stop signal came during start-up */
};

#define COMMON_SETTINGS 8

static struct config_setting common_settings(struct service *svc, size_t i)
{
	const struct config_setting table[COMMON_SETTINGS] = {
		{"CRENEAU_DB", CONFIG_STRING, NULL, true,
		 "libpq connection string of this service's own role",
		 &svc->db, 0, 0},
		{"CRENEAU_RPC_KEY", CONFIG_KEY, NULL, true,
		 "deployment key authenticating every RPC and event",
		 &svc->key, 0, 0},
		{"CRENEAU_LISTEN", CONFIG_URLS, NULL, false,
		 "nng URL of this replica's REP socket", &svc->listen, 0, 0},
		{"CRENEAU_PUBLISH", CONFIG_URLS, "", false,
		 "nng URL of this replica's PUB socket (publishers)",
		 &svc->publish, 0, 0},
		{"CRENEAU_WORKERS", CONFIG_INT, "4", false,
		 "RPC worker threads, each with its own database connection",
		 &svc->workers, 1, 256},
		{"CRENEAU_INSTANCE", CONFIG_STRING, "", false,
		 "name of this replica in logs and Health (default "
		 "<service>-<pid>)",
		 &svc->instance, 0, 0},
		{"CRENEAU_LOG_LEVEL", CONFIG_STRING, "info", false,
		 "err, warning, notice, info or debug", &svc->log_level, 0, 0},
		{"CRENEAU_DB_WAIT_S", CONFIG_INT, "60", false,
		 "how long start-up waits for PostgreSQL", &svc->db_wait_s, 0,
		 3600},
	};
	return table[i];
}

const char *service_name(struct service *svc)
{
	return svc->def->name;
}

const uint8_t *service_key(struct service *svc)
{
	return svc->key;
}

const char *service_conninfo(struct service *svc)
{
	return svc->db;
}

void *service_app(struct service *svc)
{
	return svc->def->app;
}

int64_t service_started_ms(struct service *svc)
{
	return svc->started_ms;
}

const char *service_instance(struct service *svc)
{
	return svc->instance;
}

static int handle_health(struct rpc_call *call, const ProtobufCMessage *request,
			 ProtobufCMessage **reply_out)
{
	struct service *svc = rpc_call_app(call);
	Creneau__V1__HealthReply *reply;

	reply = arena_alloc(rpc_call_arena(call), sizeof(*reply));
	if (!reply)
		return ERR_NOMEM;
	creneau__v1__health_reply__init(reply);
	reply->service = (char *)svc->def->name;
	reply->version = CRENEAU_VERSION;
	reply->instance = svc->instance;
	reply->database_ok = db_ping(rpc_call_db(call));
	reply->uptime_s = (instant_now_ms() - svc->started_ms) / 1000;
	*reply_out = &reply->base;
	return 0;
}

/* The privacy interface of a service that holds nothing yet. */
static int handle_export(struct rpc_call *call, const ProtobufCMessage *request,
			 ProtobufCMessage **reply_out)
{
	struct service *svc = rpc_call_app(call);
	Creneau__V1__ExportReply *reply;

	reply = arena_alloc(rpc_call_arena(call), sizeof(*reply));
	if (!reply)
		return ERR_NOMEM;
	creneau__v1__export_reply__init(reply);
	reply->service = (char *)svc->def->name;
	reply->document = "{}";
	*reply_out = &reply->base;
	return 0;
}

static int handle_erase(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out)
{
	Creneau__V1__EraseReply *reply;

	reply = arena_alloc(rpc_call_arena(call), sizeof(*reply));
	if (!reply)
		return ERR_NOMEM;
	creneau__v1__erase_reply__init(reply);
	*reply_out = &reply->base;
	return 0;
}

static int handle_sweep(struct rpc_call *call, const ProtobufCMessage *request,
			ProtobufCMessage **reply_out)
{
	const Creneau__V1__SweepRequest *req =
		(const Creneau__V1__SweepRequest *)request;

	return rpc_call_fail(call, ERR_INVALID, "unknown_category", "category",
			     "this service keeps no data of category '%.64s'",
			     req->category);
}

static const struct rpc_method default_methods[] = {
	RPC_METHOD("Health", health_request, handle_health),
	RPC_METHOD("Export", export_request, handle_export),
	RPC_METHOD("Erase", erase_request, handle_erase),
	RPC_METHOD("Sweep", sweep_request, handle_sweep),
};

static bool has_method(const struct service *svc, const char *name)
{
	for (size_t i = 0; i < svc->n_methods; i++)
		if (strcmp(svc->methods[i].name, name) == 0)
			return true;
	return false;
}

/* The service's methods, then the defaults it does not replace. */
static int build_methods(struct service *svc)
{
	const struct service_def *def = svc->def;
	const struct rpc_method fetch = EVENTS_FETCH_METHOD;
	size_t n_default = sizeof(default_methods) / sizeof(default_methods[0]);

	if (def->n_methods + n_default + 1 > MAX_METHODS)
		return ERR_INVALID;
	for (size_t i = 0; i < def->n_methods; i++)
		svc->methods[svc->n_methods++] = def->methods[i];
	for (size_t i = 0; i < n_default; i++)
		if (!has_method(svc, default_methods[i].name))
			svc->methods[svc->n_methods++] = default_methods[i];
	if (def->publishes && !has_method(svc, fetch.name))
		svc->methods[svc->n_methods++] = fetch;
	return 0;
}

static int load_config(struct service *svc, int argc, char **argv,
		       struct config_setting **table_out, size_t *n_out)
{
	const struct service_def *def = svc->def;
	size_t n = COMMON_SETTINGS + def->n_settings;
	struct config_setting *table = calloc(n, sizeof(*table));
	int rc;

	if (!table)
		return ERR_NOMEM;
	for (size_t i = 0; i < COMMON_SETTINGS; i++)
		table[i] = common_settings(svc, i);
	for (size_t i = 0; i < def->n_settings; i++)
		table[COMMON_SETTINGS + i] = def->settings[i];
	rc = config_load(def->name, table, n, argc, argv);
	if (rc) {
		free(table);
		return rc;
	}
	if (def->publishes && !*svc->publish) {
		fprintf(stderr, "%s: CRENEAU_PUBLISH: required (this service "
				"publishes events) is not set\n",
			def->name);
		config_free(table, n);
		free(table);
		return ERR_INVALID;
	}
	*table_out = table;
	*n_out = n;
	return 0;
}

/*
 * Applies the schema's migrations, waiting for PostgreSQL to come up; a stop
 * signal during the wait ends it (svc->stopping).
 */
static int migrate(struct service *svc, const sigset_t *stop_signals)
{
	const struct timespec pause = {.tv_sec = 1};
	int64_t give_up = instant_mono_ms() + svc->db_wait_s * 1000;
	struct db *db;
	int rc;

	rc = db_open(&db, svc->db);
	if (rc)
		return rc;
	for (;;) {
		rc = db_ensure(db);
		if (!rc)
			rc = db_migrate(db, svc->def->schema,
					svc->def->migrations,
					svc->def->n_migrations);
		if (rc != ERR_UNAVAILABLE || instant_mono_ms() > give_up)
			break;
		log_notice(NULL, "waiting for the database");
		if (sigtimedwait(stop_signals, NULL, &pause) > 0) {
			svc->stopping = true;
			break;
		}
	}
	db_close(db);
	if (rc)
		log_err(NULL, "schema migration failed schema=%s error=%s",
			svc->def->schema, error_str(rc));
	return rc;
}

static int start_events(struct service *svc)
{
	const struct service_def *def = svc->def;
	int rc;

	if (def->publishes) {
		rc = events_relay_start(&svc->relay, def->name, svc->db,
					svc->publish, svc->key);
		if (rc)
			return rc;
	}
	if (!def->n_subscriptions)
		return 0;
	svc->subs = calloc(def->n_subscriptions, sizeof(*svc->subs));
	if (!svc->subs)
		return ERR_NOMEM;
	for (size_t i = 0; i < def->n_subscriptions; i++) {
		rc = events_subscriber_start(&svc->subs[i], def->name, svc->db,
					     &def->subscriptions[i], svc->key);
		if (rc)
			return rc;
	}
	return 0;
}

static void stop_events(struct service *svc)
{
	if (svc->subs)
		for (size_t i = 0; i < svc->def->n_subscriptions; i++)
			events_subscriber_stop(svc->subs[i]);
	free(svc->subs);
	svc->subs = NULL;
	events_relay_stop(svc->relay);
	svc->relay = NULL;
}

static int start_rpc(struct service *svc)
{
	struct rpc_server_config cfg = {
		.service = svc->def->name,
		.listen_url = svc->listen,
		.workers = (int)svc->workers,
		.key = svc->key,
		.methods = svc->methods,
		.n_methods = svc->n_methods,
		.db_conninfo = svc->db,
		.app = svc,
	};

	return rpc_server_start(&svc->rpc, &cfg);
}

void service_block_stop_signals(sigset_t *out)
{
	sigemptyset(out);
	sigaddset(out, SIGTERM);
	sigaddset(out, SIGINT);
	pthread_sigmask(SIG_BLOCK, out, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int service_wait_stop(const sigset_t *set)
{
	int sig = 0;

	sigwait(set, &sig);
	return sig;
}

static int run(struct service *svc)
{
	sigset_t set;
	int rc;

	service_block_stop_signals(&set);
	rc = migrate(svc, &set);
	if (svc->stopping)
		return 0;
	if (rc)
		return rc;
	rc = start_rpc(svc);
	if (rc)
		goto out;
	rc = start_events(svc);
	if (rc)
		goto out_stop_events;
	if (svc->def->start) {
		rc = svc->def->start(svc);
		if (rc)
			goto out_stop_events;
	}
	log_notice(NULL, "started instance=%s listen=%s", svc->instance,
		   svc->listen);
	log_notice(NULL, "stopping signal=%d", service_wait_stop(&set));
	/* Take no more requests and let those in flight reply, before what
	 * their handlers may use goes away. */
	rpc_server_stop(svc->rpc);
	svc->rpc = NULL;
	stop_events(svc);
	if (svc->def->stop)
		svc->def->stop(svc);
	return 0;

out_stop_events:
	stop_events(svc);
	rpc_server_stop(svc->rpc);
	svc->rpc = NULL;
out:
	if (rc)
		log_err(NULL, "start-up failed error=%s", error_str(rc));
	return rc;
}

int service_main(const struct service_def *def, int argc, char **argv)
{
	struct service svc = {.def = def};
	struct config_setting *table = NULL;
	char instance[80];
	size_t n = 0;
	int rc;

	if (secure_init())
		return 1;
	rc = load_config(&svc, argc, argv, &table, &n);
	if (rc == CONFIG_HELP_SHOWN)
		return 0;
	if (rc)
		return 2;
	if (log_init(def->name, svc.log_level)) {
		fprintf(stderr, "%s: CRENEAU_LOG_LEVEL: unknown level\n",
			def->name);
		rc = ERR_INVALID;
		goto out_free_config;
	}
	if (!*svc.instance) {
		snprintf(instance, sizeof(instance), "%s-%ld", def->name,
			 (long)getpid());
		free(svc.instance);
		svc.instance = strdup(instance);
		if (!svc.instance) {
			rc = ERR_NOMEM;
			goto out_free_config;
		}
	}
	rc = build_methods(&svc);
	if (rc)
		goto out_free_config;
	svc.started_ms = instant_now_ms();
	rc = run(&svc);
	if (!rc)
		log_notice(NULL, "stopped");
out_free_config:
	config_free(table, n);
	free(table);
	return rc ? 1 : 0;
}
