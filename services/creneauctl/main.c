/* main.c - creneauctl, the operator's tool: talks RPC to the daemons. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "arena.h"
#include "config.h"
#include "creneau/v1/accounts.pb-c.h"
#include "creneau/v1/notifications.pb-c.h"
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
	       "  newsletter send FILE   queue a newsletter for every confirmed "
	       "subscriber;\n"
	       "            FILE: a first line \"Subject: ...\", an empty "
	       "line, the text\n"
	       "  mail send ADDRESS FILE an operator message (FILE as for "
	       "newsletter send)\n"
	       "  mail list [STATUS]     the delivery log, newest first "
	       "(STATUS: queued,\n"
	       "            sent, failed or cancelled)\n"
	       "  health    ask every service for its health; exit 1 if one "
	       "is unhealthy\n"
	       "  admin create EMAIL FIRST_NAME LAST_NAME\n"
	       "            create an admin account (the only way to); the "
	       "password is\n"
	       "            read from the first line of standard input\n\n");
	config_print_help("creneauctl", settings, N_SETTINGS);
}

/*
 * Calls method on peer p as the operator (ROLE_SERVICE), the reply unpacked
 * as reply_type into arena (*reply_out). On failure writes one line to
 * stderr, "creneauctl: <what>: <error code> [<field>]: <message>", and
 * returns the error.
 */
static int call_peer(const struct peer *p, const char *method,
		     const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *reply_type,
		     struct arena *arena, void *reply_out, const char *what)
{
	struct rpc_context ctx = {.role = CRENEAU__V1__ROLE__ROLE_SERVICE,
				  .timeout_ms = (int)timeout_ms};
	struct rpc_client *client;
	struct rpc_error err = {0};
	int rc;

	rc = rpc_client_open(&client, p->service, p->urls, key, "creneauctl");
	if (!rc) {
		rc = rpc_client_call(client, &ctx, method, req, reply_type,
				     arena, (ProtobufCMessage **)reply_out,
				     &err);
		rpc_client_free(client);
	}
	if (rc)
		fprintf(stderr, "creneauctl: %s: %s%s%s%s%s\n", what,
			err.error_code[0] ? err.error_code : error_str(rc),
			err.field[0] ? " " : "", err.field,
			err.message[0] ? ": " : "", err.message);
	return rc;
}

/* Asks one service for its Health; prints one line; 0 when healthy. */
static int health_of(const struct peer *p, struct arena *arena)
{
	Creneau__V1__HealthRequest req = CRENEAU__V1__HEALTH_REQUEST__INIT;
	Creneau__V1__HealthReply *reply;
	int rc;

	rc = call_peer(p, "Health", &req.base,
		       &creneau__v1__health_reply__descriptor, arena, &reply,
		       p->service);
	if (rc) {
		printf("%-16s down  error=%s\n", p->service, error_str(rc));
		return rc;
	}
	printf("%-16s %-5s instance=%s database=%s uptime=%llds\n", p->service,
	       reply->database_ok ? "ok" : "down", reply->instance,
	       reply->database_ok ? "ok" : "down", (long long)reply->uptime_s);
	return reply->database_ok ? 0 : ERR_UNAVAILABLE;
}

/* only: a service name, or NULL for all of them. */
static int cmd_health(const char *only)
{
	struct arena *arena;
	int bad = 0, asked = 0;

	arena = arena_new(0);
	if (!arena)
		return 1;
	for (size_t i = 0; i < N_PEERS; i++) {
		if (only && strcmp(only, peers[i].service) != 0)
			continue;
		asked++;
		if (health_of(&peers[i], arena))
			bad++;
	}
	arena_free(arena);
	if (!asked) {
		fprintf(stderr, "creneauctl: unknown service '%s'\n", only);
		return 2;
	}
	return bad ? 1 : 0;
}

/* Reads FILE ("Subject: ...", an empty line, the text) into *subject and
 * *body, in arena. */
static int read_mail_file(const char *path, struct arena *arena,
			  char **subject, char **body)
{
	FILE *f = fopen(path, "r");
	char *text, *nl;
	long n;

	if (!f) {
		fprintf(stderr, "creneauctl: cannot open %s\n", path);
		return ERR_INVALID;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > 1 << 20 ||
	    fseek(f, 0, SEEK_SET)) {
		fclose(f);
		fprintf(stderr, "creneauctl: %s: unreadable or over 1 MiB\n",
			path);
		return ERR_INVALID;
	}
	text = arena_alloc(arena, (size_t)n + 1);
	if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		return ERR_NOMEM;
	}
	fclose(f);
	text[n] = '\0';
	nl = strstr(text, "\n\n");
	if (strncmp(text, "Subject: ", 9) != 0 || !nl) {
		fprintf(stderr, "creneauctl: %s: expected \"Subject: ...\", an "
				"empty line, then the text\n",
			path);
		return ERR_INVALID;
	}
	*nl = '\0';
	*subject = text + 9;
	*body = nl + 2;
	return 0;
}

static int cmd_newsletter_send(const char *path)
{
	Creneau__V1__SendNewsletterRequest req =
		CRENEAU__V1__SEND_NEWSLETTER_REQUEST__INIT;
	Creneau__V1__SendNewsletterReply *reply;
	struct arena *arena = arena_new(0);
	int rc;

	if (!arena)
		return 1;
	rc = read_mail_file(path, arena, &req.subject, &req.body);
	if (!rc)
		rc = call_peer(&peers[4], "SendNewsletter", &req.base,
			       &creneau__v1__send_newsletter_reply__descriptor,
			       arena, &reply, "newsletter not sent");
	if (!rc)
		printf("newsletter queued for %u subscribers\n", reply->queued);
	arena_free(arena);
	return rc ? 1 : 0;
}

/* The first line of standard input, without its newline, into buf. */
static int read_password(char *buf, size_t n)
{
	size_t len;

	if (!fgets(buf, (int)n, stdin))
		return ERR_INVALID;
	len = strcspn(buf, "\r\n");
	if (buf[len] == '\0' && len == n - 1)
		return ERR_TOO_LARGE; /* no newline: longer than we take */
	buf[len] = '\0';
	return 0;
}

static int cmd_admin_create(const char *email, const char *first,
			    const char *last)
{
	Creneau__V1__CreateAdminRequest req =
		CRENEAU__V1__CREATE_ADMIN_REQUEST__INIT;
	Creneau__V1__Account *reply;
	struct arena *arena = arena_new(0);
	char password[258] = "";
	int rc;

	if (!arena)
		return 1;
	rc = read_password(password, sizeof(password));
	if (rc)
		fprintf(stderr, "creneauctl: expected the password on the first "
				"line of standard input\n");
	req.email = (char *)email;
	req.first_name = (char *)first;
	req.last_name = (char *)last;
	req.password = password;
	if (!rc)
		rc = call_peer(&peers[0], "CreateAdmin", &req.base,
			       &creneau__v1__account__descriptor, arena, &reply,
			       "admin not created");
	sodium_memzero(password, sizeof(password));
	if (!rc)
		printf("admin created id=%s\n", reply->id);
	arena_free(arena);
	return rc ? 1 : 0;
}

/* The generic operator message: FILE's subject and text to one address. */
static int cmd_mail_send(const char *to, const char *path)
{
	Creneau__V1__SendOperatorMessageRequest req =
		CRENEAU__V1__SEND_OPERATOR_MESSAGE_REQUEST__INIT;
	Creneau__V1__SendOperatorMessageReply *reply;
	struct arena *arena = arena_new(0);
	int rc;

	if (!arena)
		return 1;
	req.to = (char *)to;
	rc = read_mail_file(path, arena, &req.subject, &req.body);
	if (!rc)
		rc = call_peer(
			&peers[4], "SendOperatorMessage", &req.base,
			&creneau__v1__send_operator_message_reply__descriptor,
			arena, &reply, "mail not sent");
	if (!rc)
		printf("queued %s\n", reply->id);
	arena_free(arena);
	return rc ? 1 : 0;
}

static int cmd_mail_list(const char *status)
{
	Creneau__V1__ListMessagesRequest req =
		CRENEAU__V1__LIST_MESSAGES_REQUEST__INIT;
	Creneau__V1__ListMessagesReply *reply;
	struct arena *arena = arena_new(0);
	int rc;

	if (!arena)
		return 1;
	req.status = (char *)(status ? status : "");
	req.limit = 200;
	rc = call_peer(&peers[4], "ListMessages", &req.base,
		       &creneau__v1__list_messages_reply__descriptor, arena,
		       &reply, "mail list");
	for (size_t i = 0; !rc && i < reply->n_items; i++) {
		const Creneau__V1__MessageInfo *m = reply->items[i];

		printf("%s %-9s attempts=%u code=%u %-30s %s %s%s%s\n",
		       m->created_at, m->status, m->attempts, m->last_code,
		       m->kind, m->id, m->recipient, *m->last_error ? " " : "",
		       m->last_error);
	}
	arena_free(arena);
	return rc ? 1 : 0;
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
	} else if (strcmp(argv[1], "mail") == 0 && argc == 5 &&
		   strcmp(argv[2], "send") == 0) {
		rc = cmd_mail_send(argv[3], argv[4]);
	} else if (strcmp(argv[1], "mail") == 0 && argc >= 3 && argc <= 4 &&
		   strcmp(argv[2], "list") == 0) {
		rc = cmd_mail_list(argc == 4 ? argv[3] : NULL);
	} else if (strcmp(argv[1], "newsletter") == 0 && argc == 4 &&
		   strcmp(argv[2], "send") == 0) {
		rc = cmd_newsletter_send(argv[3]);
	} else if (strcmp(argv[1], "admin") == 0 && argc == 6 &&
		   strcmp(argv[2], "create") == 0) {
		rc = cmd_admin_create(argv[3], argv[4], argv[5]);
	} else if (strcmp(argv[1], "health") == 0) {
		rc = cmd_health(argc > 2 ? argv[2] : NULL);
	} else {
		fprintf(stderr, "creneauctl: unknown command '%s'\n", argv[1]);
		rc = 2;
	}
	config_free(settings, N_SETTINGS);
	return rc;
}
