/* events_sub.c - test_events.py's subscriber: records each event it applies. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "events.h"
#include "instant.h"
#include "log.h"
#include "secure.h"

static const char usage[] =
	"usage: events_sub CONNINFO SCHEMA PUBLISHER PUB_URLS RPC_URLS KEY_HEX "
	"[LOG_LEVEL]\n"
	"Migrates SCHEMA (its own, not the publisher's), then applies each\n"
	"event of PUBLISHER by inserting (seq, topic, payload) into\n"
	"SCHEMA.applied - whose primary key is seq, so applying one twice\n"
	"fails - until SIGTERM. Prints \"ready\" once subscribed.\n";

static const struct db_migration migrations[] = {
	{"001_applied.sql",
	 "CREATE TABLE applied (\n"
	 "  ord bigserial UNIQUE,\n" /* the order of application */
	 "  seq bigint PRIMARY KEY,\n"
	 "  topic text NOT NULL,\n"
	 "  payload bytea NOT NULL,\n"
	 "  applied_at timestamptz NOT NULL DEFAULT clock_timestamp()\n"
	 ");\n"},
};

static int apply(void *arg, struct db *db, const Creneau__V1__Event *ev)
{
	char seq[24];
	const char *params[] = {seq, ev->topic,
				ev->payload.len ? (const char *)ev->payload.data
						: ""};
	int lengths[] = {0, 0, (int)ev->payload.len};
	int formats[] = {0, 0, 1};

	snprintf(seq, sizeof(seq), "%" PRIu64, ev->sequence);
	return db_exec_binary(db,
			      "INSERT INTO applied (seq, topic, payload) "
			      "VALUES ($1, $2, $3)",
			      3, params, lengths, formats, NULL);
}

static int migrate(const char *conninfo, const char *schema)
{
	int64_t give_up = instant_mono_ms() + 60000;
	struct db *db;
	int rc;

	rc = db_open(&db, conninfo);
	if (rc)
		return rc;
	do {
		rc = db_migrate(db, schema, migrations, 1);
		if (rc == ERR_UNAVAILABLE)
			sleep(1);
	} while (rc == ERR_UNAVAILABLE && instant_mono_ms() < give_up);
	db_close(db);
	return rc;
}

int main(int argc, char **argv)
{
	struct events_subscription sub = {.apply = apply};
	struct events_subscriber *s;
	uint8_t *key;
	sigset_t set;
	int sig, rc;

	if (argc != 7 && argc != 8) {
		fputs(usage, stderr);
		return 2;
	}
	if (log_init("events_sub", argc == 8 ? argv[7] : "info") ||
	    secure_init())
		return 1;
	if (secure_key_from_hex(argv[6], &key)) {
		fprintf(stderr, "events_sub: KEY_HEX: not 64 hex digits\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sub.publisher = argv[3];
	sub.pub_urls = argv[4];
	sub.rpc_urls = argv[5];
	rc = migrate(argv[1], argv[2]);
	if (!rc)
		rc = events_subscriber_start(&s, "subsvc", argv[1], &sub, key);
	if (!rc) {
		printf("ready\n");
		fflush(stdout);
		sigwait(&set, &sig);
		events_subscriber_stop(s);
	}
	secure_key_free(key);
	if (rc)
		fprintf(stderr, "events_sub: %s\n", error_str(rc));
	return rc ? 1 : 0;
}
