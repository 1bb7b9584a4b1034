/* main.c - creneauctl, the operator's tool: talks RPC to the daemons. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "creneau/v1/service.pb-c.h"
#include "log.h"
#include "rpc.h"
#include "secure.h"

struct peer {
	const char *service;
	char *urls;
};

static uint8_t *key;
static char *log_level;
static long timeout_ms;
static struct peer peers[] = {
	{"accounts", NULL},	  {"booking", NULL},
	{"calendar-sync", NULL}, {"gdpr-retention", NULL},
	{"notifications", NULL},
};
#define N_PEERS (sizeof(peers) / sizeof(peers[0]))

static const struct config_setting settings[] = {
	{"CRENEAU_RPC_KEY", CONFIG_KEY, NULL, true,
	 "deployment key authenticating every RPC", &key, 0, 0},
	{"CRENEAU_ACCOUNTS_RPC", CONFIG_URLS, NULL, false,
	 "REP URLs of the accounts replicas", &peers[0].urls, 0, 0},
	{"CRENEAU_BOOKING_RPC", CONFIG_URLS, NULL, false,
	 "REP URLs of the booking replicas", &peers[1].urls, 0, 0},
	{"CRENEAU_CALENDAR_SYNC_RPC", CONFIG_URLS, NULL, false,
	 "REP URLs of the calendar-sync replicas", &peers[2].urls, 0, 0},
	{"CRENEAU_GDPR_RETENTION_RPC", CONFIG_URLS, NULL, false,
	 "REP URLs of the gdpr-retention replicas", &peers[3].urls, 0, 0},
	{"CRENEAU_NOTIFICATIONS_RPC", CONFIG_URLS, NULL, false,
	 "REP URLs of the notifications replicas", &peers[4].urls, 0, 0},
	{"CRENEAU_CTL_TIMEOUT_MS", CONFIG_INT, "2000", false,
	 "how long to wait for each answer", &timeout_ms, 1, 600000},
	{"CRENEAU_LOG_LEVEL", CONFIG_STRING, "warning", false,
	 "err, warning, notice, info or debug", &log_level, 0, 0},
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static void usage(void)
{
	printf("Usage: creneauctl COMMAND\n\nCommands:\n"
	       "  health    ask every service for its health; exit 1 if one "
	       "is unhealthy\n\n");
	config_print_help("creneauctl", settings, N_SETTINGS);
}

/* Asks one service for its Health; prints one line; 0 when healthy. */
static int health_of(const struct peer *p, struct arena *arena)
{
	Creneau__V1__HealthRequest req = CRENEAU__V1__HEALTH_REQUEST__INIT;
	struct rpc_context ctx = {.role = CRENEAU__V1__ROLE__ROLE_SERVICE,
				  .timeout_ms = (int)timeout_ms};
	Creneau__V1__HealthReply *reply;
	struct rpc_client *client;
	struct rpc_error err = {0};
	int rc;

	rc = rpc_client_open(&client, p->service, p->urls, key, "creneauctl");
	if (rc)
		goto out_print;
	rc = rpc_client_call(client, &ctx, "Health", &req.base,
			     &creneau__v1__health_reply__descriptor, arena,
			     (ProtobufCMessage **)&reply, &err);
	rpc_client_free(client);
	if (rc)
		goto out_print;
	printf("%-16s %-5s instance=%s database=%s uptime=%llds\n", p->service,
	       reply->database_ok ? "ok" : "down", reply->instance,
	       reply->database_ok ? "ok" : "down", (long long)reply->uptime_s);
	return reply->database_ok ? 0 : ERR_UNAVAILABLE;
out_print:
	printf("%-16s down  error=%s\n", p->service, error_str(rc));
	return rc;
}

static int cmd_health(void)
{
	struct arena *arena = arena_new(0);
	int bad = 0;

	if (!arena)
		return 1;
	for (size_t i = 0; i < N_PEERS; i++)
		if (health_of(&peers[i], arena))
			bad++;
	arena_free(arena);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage();
		return argc < 2 ? 2 : 0;
	}
	if (secure_init())
		return 1;
	rc = config_load("creneauctl", settings, N_SETTINGS, 1, argv);
	if (rc)
		return 2;
	if (log_init("creneauctl", log_level)) {
		fprintf(stderr, "creneauctl: CRENEAU_LOG_LEVEL: unknown level\n");
		rc = 2;
	} else if (strcmp(argv[1], "health") == 0) {
		rc = cmd_health();
	} else {
		fprintf(stderr, "creneauctl: unknown command '%s'\n", argv[1]);
		rc = 2;
	}
	config_free(settings, N_SETTINGS);
	return rc;
}
