/* main.c - the accounts daemon: accounts, sessions, profiles and the
 * practitioner directory. */
#include <sodium.h>

#include "handlers.h"
#include "jobs.h"
#include "log.h"
#include "service.h"

extern const struct db_migration accounts_migrations[];
extern const size_t accounts_migrations_count;

static struct accounts_settings settings;
static struct jobs *jobs;

static const struct config_setting accounts_settings_table[] = {
    {"CRENEAU_SESSION_IDLE_S", CONFIG_INT, "1209600", false,
     "a session ends after this many seconds unused (sliding)",
     &settings.session_idle_s, 60, 31536000},
    {"CRENEAU_SESSION_MAX_S", CONFIG_INT, "2592000", false,
     "a session ends this many seconds after sign-in, used or not",
     &settings.session_max_s, 60, 31536000},
    {"CRENEAU_LOGIN_WINDOW_S", CONFIG_INT, "900", false,
     "window over which failed sign-ins are counted", &settings.login_window_s,
     1, 86400},
    {"CRENEAU_LOGIN_MAX_PER_EMAIL", CONFIG_INT, "5", false,
     "failed sign-ins for one e-mail in the window before 429",
     &settings.login_max_per_email, 1, 10000},
    {"CRENEAU_LOGIN_MAX_PER_IP", CONFIG_INT, "30", false,
     "failed sign-ins from one client address in the window before 429",
     &settings.login_max_per_ip, 1, 100000},
    {"CRENEAU_TRIAL_DAYS", CONFIG_INT, "30", false,
     "length of a practitioner's free trial", &settings.trial_days, 0, 3650},
    {"CRENEAU_VERIFY_TTL_S", CONFIG_INT, "172800", false,
     "lifetime of an e-mail verification link", &settings.verify_ttl_s, 60,
     2592000},
    {"CRENEAU_RESET_TTL_S", CONFIG_INT, "3600", false,
     "lifetime of a password reset link", &settings.reset_ttl_s, 60, 86400},
    {"CRENEAU_RESET_INTERVAL_S", CONFIG_INT, "300", false,
     "at most one password reset mail per address in this many seconds "
     "(further requests answer 202 and send nothing)",
     &settings.reset_interval_s, 1, 86400},
    {"CRENEAU_RESET_MAX_PER_IP", CONFIG_INT, "10", false,
     "password reset requests from one client address per "
     "CRENEAU_RESET_INTERVAL_S before 429",
     &settings.reset_max_per_ip, 1, 100000},
    {"CRENEAU_ACCOUNTS_JOB_S", CONFIG_INT, "60", false,
     "seconds between runs of the trial expiry and purge job",
     &settings.job_interval_s, 1, 86400},
    {"CRENEAU_TERMS_VERSION", CONFIG_STRING, "2026-01", false,
     "version of the terms accepted at sign-up", &settings.terms_version, 0, 0},
    {"CRENEAU_PWHASH_OPS", CONFIG_INT, "2", false,
     "argon2id passes for new password hashes (older ones are re-hashed "
     "at sign-in)",
     &settings.cost.ops, 1, 20},
    {"CRENEAU_PWHASH_MEM_MIB", CONFIG_INT, "64", false,
     "argon2id memory in MiB for new password hashes", &settings.cost.mem_mib,
     8, 4096},
    {"CRENEAU_BOOKING_RPC", CONFIG_URLS, NULL, false,
     "nng URLs of the booking replicas' REP sockets (a practitioner's public "
     "profile lists their offerings)",
     &settings.booking_rpc, 0, 0},
};

/* Runs after the RPC server started: until the booking client is stored,
 * GetPractitioner answers with offerings_unavailable. */
static int accounts_start(struct service *svc)
{
	struct rpc_client *booking = NULL;
	int rc = handlers_init(&settings);

	if (rc) {
		log_err(NULL, "password hashing unavailable error=%s",
			error_str(rc));
		return rc;
	}
	rc = rpc_client_open(&booking, "booking", settings.booking_rpc,
			     service_key(svc), service_name(svc));
	if (rc) {
		log_err(NULL, "booking client unavailable error=%s",
			error_str(rc));
		return rc;
	}
	rc = jobs_start(&jobs, service_conninfo(svc), &settings);
	if (rc)
		goto close_booking;
	atomic_store(&settings.booking, booking);
	return 0;

close_booking:
	rpc_client_free(booking);
	return rc;
}

/* Runs after the RPC server stopped: no handler uses the client any more. */
static void accounts_stop(struct service *svc)
{
	jobs_stop(jobs);
	jobs = NULL;
	rpc_client_free(atomic_exchange(&settings.booking, NULL));
}

int main(int argc, char **argv)
{
	struct service_def def = {
	    .name = "accounts",
	    .schema = "accounts",
	    .settings = accounts_settings_table,
	    .n_settings = sizeof(accounts_settings_table) /
			  sizeof(accounts_settings_table[0]),
	    .methods = handlers_methods,
	    .n_methods = handlers_methods_count,
	    .migrations = accounts_migrations,
	    .n_migrations = accounts_migrations_count,
	    .publishes = true,
	    .start = accounts_start,
	    .stop = accounts_stop,
	    .app = &settings,
	};

	if (sodium_init() < 0)
		return 1;
	return service_main(&def, argc, argv);
}
