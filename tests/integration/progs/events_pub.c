/* events_pub.c - test_events.py's publisher: FetchEvents and relay, or emit. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "creneau/v1/service.pb-c.h"
#include "db.h"
#include "events.h"
#include "instant.h"
#include "log.h"
#include "rpc.h"
#include "secure.h"

#define PUBLISHER "pubsvc"

static const char usage[] =
	"usage: events_pub serve CONNINFO SCHEMA PUB_URL RPC_URL KEY_HEX\n"
	"       events_pub emit CONNINFO TAG COUNT PER_TXN THREADS DELAY_MS "
	"[PAD]\n"
	"serve: migrates SCHEMA, answers FetchEvents on RPC_URL and relays\n"
	"  the outbox on PUB_URL as publisher \"" PUBLISHER "\" until\n"
	"  SIGTERM; prints \"ready\" once serving.\n"
	"emit: inserts COUNT events (topic test.emitted, payload a Subject\n"
	"  whose account_id is TAG-<i>) in transactions of PER_TXN, spread\n"
	"  over THREADS connections, sleeping DELAY_MS after each\n"
	"  transaction; PAD bytes of padding make each payload bigger.\n";

/* Waits for PostgreSQL (up to a minute), then migrates. */
static int migrate(const char *conninfo, const char *schema)
{
	int64_t give_up = instant_mono_ms() + 60000;
	struct db *db;
	int rc;

	rc = db_open(&db, conninfo);
	if (rc)
		return rc;
	do {
		rc = db_migrate(db, schema, NULL, 0);
		if (rc == ERR_UNAVAILABLE)
			sleep(1);
	} while (rc == ERR_UNAVAILABLE && instant_mono_ms() < give_up);
	db_close(db);
	return rc;
}

static int serve(char **argv)
{
	static const struct rpc_method methods[] = {EVENTS_FETCH_METHOD};
	const char *conninfo = argv[0], *schema = argv[1];
	struct rpc_server_config cfg = {
		.service = PUBLISHER,
		.listen_url = argv[3],
		.workers = 2,
		.methods = methods,
		.n_methods = 1,
		.db_conninfo = conninfo,
	};
	struct events_relay *relay;
	struct rpc_server *srv;
	uint8_t *key;
	sigset_t set;
	int sig, rc;

	if (secure_key_from_hex(argv[4], &key)) {
		fprintf(stderr, "events_pub: KEY_HEX: not 64 hex digits\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	rc = migrate(conninfo, schema);
	if (rc)
		goto out_free_key;
	cfg.key = key;
	rc = rpc_server_start(&srv, &cfg);
	if (rc)
		goto out_free_key;
	rc = events_relay_start(&relay, PUBLISHER, conninfo, argv[2], key);
	if (rc)
		goto out_stop_rpc;
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);
	events_relay_stop(relay);
out_stop_rpc:
	rpc_server_stop(srv);
out_free_key:
	secure_key_free(key);
	if (rc)
		fprintf(stderr, "events_pub: %s\n", error_str(rc));
	return rc ? 1 : 0;
}

struct emitter {
	const char *conninfo;
	const char *tag;
	const char *pad;
	long first, count, per_txn, delay_ms;
	int rc;
};

static int emit_txn(struct db *db, const struct emitter *e, long from,
		    long to)
{
	Creneau__V1__Subject subject = CRENEAU__V1__SUBJECT__INIT;
	char id[96];
	int rc;

	rc = db_begin(db);
	for (long i = from; !rc && i < to; i++) {
		snprintf(id, sizeof(id), "%s-%ld", e->tag, i);
		subject.account_id = id;
		subject.email = (char *)e->pad;
		rc = events_publish(db, "test.emitted", &subject.base);
	}
	if (!rc)
		return db_commit(db);
	db_rollback(db);
	return rc;
}

static void *emit_main(void *arg)
{
	struct emitter *e = arg;
	long end = e->first + e->count;
	struct db *db;

	e->rc = db_open(&db, e->conninfo);
	if (e->rc)
		return NULL;
	for (long i = e->first; i < end && !e->rc; i += e->per_txn) {
		e->rc = emit_txn(db, e, i,
				 i + e->per_txn < end ? i + e->per_txn : end);
		if (e->delay_ms)
			usleep((useconds_t)e->delay_ms * 1000);
	}
	db_close(db);
	return NULL;
}

static int emit(char **argv, const char *pad_arg)
{
	long count = atol(argv[2]), per_txn = atol(argv[3]);
	long threads = atol(argv[4]), delay_ms = atol(argv[5]);
	long pad_len = pad_arg ? atol(pad_arg) : 0;
	struct emitter *e;
	pthread_t *tids;
	char *pad;
	int rc = 0;

	if (count < 0 || per_txn < 1 || threads < 1 || threads > 64 ||
	    delay_ms < 0 || pad_len < 0 || pad_len > 65536) {
		fputs(usage, stderr);
		return 2;
	}
	e = calloc((size_t)threads, sizeof(*e));
	tids = calloc((size_t)threads, sizeof(*tids));
	pad = calloc(1, (size_t)pad_len + 1);
	if (!e || !tids || !pad)
		return 1;
	memset(pad, 'x', (size_t)pad_len);
	for (long t = 0; t < threads; t++) {
		e[t] = (struct emitter){.conninfo = argv[0],
					.tag = argv[1],
					.pad = pad,
					.first = count * t / threads,
					.per_txn = per_txn,
					.delay_ms = delay_ms};
		e[t].count = count * (t + 1) / threads - e[t].first;
		if (pthread_create(&tids[t], NULL, emit_main, &e[t]))
			return 1;
	}
	for (long t = 0; t < threads; t++) {
		pthread_join(tids[t], NULL);
		if (e[t].rc) {
			fprintf(stderr, "events_pub: emit thread %ld: %s\n", t,
				error_str(e[t].rc));
			rc = 1;
		}
	}
	free(e);
	free(tids);
	free(pad);
	return rc;
}

int main(int argc, char **argv)
{
	if (log_init("events_pub", "info") || secure_init())
		return 1;
	if (argc == 7 && strcmp(argv[1], "serve") == 0)
		return serve(argv + 2);
	if ((argc == 8 || argc == 9) && strcmp(argv[1], "emit") == 0)
		return emit(argv + 2, argc == 9 ? argv[8] : NULL);
	fputs(usage, stderr);
	return 2;
}
