/* main.c - the notifications daemon: the e-mail outbox, templates and the newsletter. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "app.h"
#include "consume.h"
#include "handlers.h"
#include "jobs.h"
#include "log.h"
#include "mime.h"
#include "service.h"

extern const struct db_migration notifications_migrations[];
extern const size_t notifications_migrations_count;

static struct notify_app app = {.key_lock = PTHREAD_MUTEX_INITIALIZER};

static const struct config_setting settings[] = {
	{"CRENEAU_MAIL_URL", CONFIG_STRING, "file://./mail", false,
	 "where mail goes: smtp://host:port, smtps://host:port or file://DIR "
	 "(one .eml file per message)", &app.mail_url, 0, 0},
	{"CRENEAU_MAIL_FROM", CONFIG_STRING, "no-reply@creneau.localhost",
	 false, "sender address of every mail", &app.mail_from, 0, 0},
	{"CRENEAU_MAIL_FROM_NAME", CONFIG_STRING, "créneau", false,
	 "sender display name", &app.mail_from_name, 0, 0},
	{"CRENEAU_MAIL_USERNAME", CONFIG_STRING, "", false,
	 "SMTP login (empty: no authentication)", &app.mail_username, 0, 0},
	{"CRENEAU_MAIL_PASSWORD", CONFIG_STRING, "", true, "SMTP password",
	 &app.mail_password, 0, 0},
	{"CRENEAU_MAIL_TLS", CONFIG_STRING, "try", false,
	 "STARTTLS on smtp://: try, require or off (smtps:// is always TLS)",
	 &app.mail_tls, 0, 0},
	{"CRENEAU_MAIL_CA_FILE", CONFIG_STRING, "", false,
	 "PEM file of the CA that signed the SMTP server's certificate "
	 "(empty: the system's CAs)", &app.mail_ca_file, 0, 0},
	{"CRENEAU_MAIL_OPERATOR", CONFIG_STRING, "", false,
	 "where contact-form messages go (default: CRENEAU_MAIL_FROM)",
	 &app.operator_addr, 0, 0},
	{"CRENEAU_PUBLIC_URL", CONFIG_STRING, "http://127.0.0.1:8080", false,
	 "base of the links in mails", &app.public_url, 0, 0},
	{"CRENEAU_MAIL_SENDERS", CONFIG_INT, "2", false,
	 "sender threads, each with its own SMTP connection", &app.senders, 1,
	 64},
	{"CRENEAU_MAIL_POLL_MS", CONFIG_INT, "1000", false,
	 "how often an idle sender looks at the outbox for messages that "
	 "became due (new ones wake it at once)", &app.poll_ms, 10, 60000},
	{"CRENEAU_MAIL_RETRY_BASE_MS", CONFIG_INT, "30000", false,
	 "first retry delay after a temporary failure (doubles each time)",
	 &app.retry_base_ms, 1, 86400000},
	{"CRENEAU_MAIL_RETRY_MAX_MS", CONFIG_INT, "3600000", false,
	 "longest delay between two attempts", &app.retry_max_ms, 1,
	 86400000},
	{"CRENEAU_MAIL_GIVE_UP_S", CONFIG_INT, "172800", false,
	 "a message still failing this long after it was queued fails",
	 &app.give_up_s, 1, 30 * 86400},
	{"CRENEAU_MAIL_TIMEOUT_MS", CONFIG_INT, "30000", false,
	 "time limit of one SMTP transaction", &app.timeout_ms, 100, 600000},
	{"CRENEAU_REMINDER_BEFORE_MIN", CONFIG_INT, "1440", false,
	 "how long before a booking its reminder goes out",
	 &app.reminder_before_min, 1, 30 * 1440},
	{"CRENEAU_CONTACT_PER_HOUR", CONFIG_INT, "5", false,
	 "contact-form and newsletter requests per client IP and hour",
	 &app.contact_per_hour, 1, 100000},
	{"CRENEAU_NEWSLETTER_RECONSENT_DAYS", CONFIG_INT, "1095", false,
	 "silence after which a subscriber is asked to confirm again",
	 &app.reconsent_after_days, 1, 3650},
	{"CRENEAU_NEWSLETTER_RECONSENT_WAIT_DAYS", CONFIG_INT, "30", false,
	 "how long that question (and a pending opt-in) waits before the "
	 "address is removed", &app.reconsent_wait_days, 1, 365},
	{"CRENEAU_ACCOUNTS_EVENTS", CONFIG_URLS, "", false,
	 "PUB URLs of the accounts replicas (empty: no accounts mails)",
	 &app.accounts_pub, 0, 0},
	{"CRENEAU_ACCOUNTS_RPC", CONFIG_URLS, "", false,
	 "REP URLs of the accounts replicas (FetchEvents)", &app.accounts_rpc,
	 0, 0},
	{"CRENEAU_BOOKING_EVENTS", CONFIG_URLS, "", false,
	 "PUB URLs of the booking replicas (empty: no booking mails)",
	 &app.booking_pub, 0, 0},
	{"CRENEAU_BOOKING_RPC", CONFIG_URLS, "", false,
	 "REP URLs of the booking replicas (FetchEvents)", &app.booking_rpc,
	 0, 0},
};

static int subscribe(struct service *svc, int i, const char *publisher,
		     const char *pub, const char *rpc, events_apply_fn apply)
{
	struct events_subscription sub = {
		.publisher = publisher,
		.pub_urls = pub,
		.rpc_urls = rpc,
		.apply = apply,
		.arg = &app,
	};

	if (!*pub || !*rpc) {
		log_notice(NULL, "not subscribed publisher=%s (no URLs)",
			   publisher);
		return 0;
	}
	return events_subscriber_start(&app.subs[i], service_name(svc),
				       service_conninfo(svc), &sub,
				       service_key(svc));
}

static int check_settings(void)
{
	if (!mime_is_address(app.mail_from)) {
		log_err(NULL, "CRENEAU_MAIL_FROM is not an e-mail address");
		return ERR_INVALID;
	}
	if (*app.operator_addr && !mime_is_address(app.operator_addr)) {
		log_err(NULL, "CRENEAU_MAIL_OPERATOR is not an e-mail address");
		return ERR_INVALID;
	}
	return 0;
}

static void stop(struct service *svc)
{
	for (size_t i = 0; i < 2; i++) {
		events_subscriber_stop(app.subs[i]);
		app.subs[i] = NULL;
	}
	jobs_stop(app.jobs);
	app.jobs = NULL;
}

static int start(struct service *svc)
{
	struct jobs_config jc = {
		.conninfo = service_conninfo(svc),
		.smtp = {.url = app.mail_url,
			 .username = app.mail_username,
			 .password = app.mail_password,
			 .tls = app.mail_tls,
			 .ca_file = app.mail_ca_file,
			 .timeout_ms = app.timeout_ms},
		.senders = app.senders,
		.poll_ms = app.poll_ms,
		.retry_base_ms = app.retry_base_ms,
		.retry_max_ms = app.retry_max_ms,
		.give_up_s = app.give_up_s,
		.reconsent_after_days = app.reconsent_after_days,
		.reconsent_wait_days = app.reconsent_wait_days,
		.messages = &app.messages,
	};
	int rc;

	rc = check_settings();
	if (rc)
		return rc;
	app.messages = app_messages(&app);
	/* the deployment key has one job: the subkey MACs unsubscribe links */
	app_unsubscribe_key(&app, service_key(svc));
	rc = jobs_start(&app.jobs, &jc);
	if (!rc)
		rc = subscribe(svc, 0, "accounts", app.accounts_pub,
			       app.accounts_rpc, consume_accounts);
	if (!rc)
		rc = subscribe(svc, 1, "booking", app.booking_pub,
			       app.booking_rpc, consume_booking);
	if (rc)
		stop(svc);
	return rc;
}

int main(int argc, char **argv)
{
	struct service_def def = {
		.name = "notifications",
		.schema = "notify",
		.settings = settings,
		.n_settings = sizeof(settings) / sizeof(settings[0]),
		.methods = handlers_methods,
		.n_methods = handlers_count,
		.migrations = notifications_migrations,
		.n_migrations = notifications_migrations_count,
		.publishes = false, /* it only consumes events */
		.start = start,
		.stop = stop,
		.app = &app,
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = service_main(&def, argc, argv);
	curl_global_cleanup();
	return rc;
}
