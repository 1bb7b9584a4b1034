/* jobs.c - timed work of the accounts service, on one thread with its own
 * connection. */
#include "jobs.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "arena.h"
#include "creneau/v1/accounts.pb-c.h"
#include "db.h"
#include "events.h"
#include "handlers.h"
#include "log.h"
#include "store.h"

struct jobs {
	const struct accounts_settings *settings;
	struct db *db;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
};

static int scrub_outbox(struct jobs *j, struct arena *a);

/* Trials past their end lapse, each announced, in one transaction. */
static int lapse_trials(struct jobs *j, struct arena *a)
{
	Creneau__V1__AccountSuspended ev = CRENEAU__V1__ACCOUNT_SUSPENDED__INIT;
	char **ids;
	size_t n = 0;
	int rc;

	rc = db_begin(j->db);
	if (rc)
		return rc;
	rc = store_lapse_trials(j->db, a, &ids, &n);
	for (size_t i = 0; !rc && i < n; i++) {
		ev.account_id = ids[i];
		ev.role = CRENEAU__V1__ROLE__ROLE_PRACTITIONER;
		ev.subscription_status =
		    CRENEAU__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_LAPSED;
		ev.listed = false;
		rc = events_publish(j->db, "account.suspended", &ev.base);
	}
	if (!rc)
		rc = db_commit(j->db);
	if (rc) {
		db_rollback(j->db);
		return rc;
	}
	for (size_t i = 0; i < n; i++)
		log_info(NULL, "trial lapsed account=%s", ids[i]);
	return 0;
}

/* One round; errors are logged here. */
static int one_round(struct jobs *j)
{
	struct arena *a = arena_new(0);
	long purged = 0;
	int rc;

	if (!a)
		return ERR_NOMEM;
	rc = db_ensure(j->db);
	if (!rc)
		rc = lapse_trials(j, a);
	if (!rc)
		rc = store_purge_expired(j->db, &purged);
	if (!rc)
		rc = scrub_outbox(j, a);
	if (!rc && purged)
		log_info(NULL, "expired sessions and tokens purged count=%ld",
			 purged);
	if (rc)
		log_warn(NULL, "accounts jobs failed error=%s", error_str(rc));
	arena_free(a);
	return rc;
}

/*
 * The mail-bearing events carry their token to notifications through the
 * outbox; once the token has expired, the copy there is blanked, so that
 * outbox rows hold no live secret for longer than the token lives.
 */
static int scrub_topic(struct jobs *j, struct arena *a, const char *topic,
		       const ProtobufCMessageDescriptor *desc,
		       const char *field_name, long ttl_s)
{
	const ProtobufCFieldDescriptor *field =
	    protobuf_c_message_descriptor_get_field_by_name(desc, field_name);
	struct store_outbox_row *rows;
	size_t n = 0;
	int rc;

	rc = db_begin(j->db);
	if (rc)
		return rc;
	rc = store_outbox_to_scrub(j->db, a, topic, ttl_s, 200, &rows, &n);
	for (size_t i = 0; !rc && i < n; i++) {
		ProtobufCMessage *m = protobuf_c_message_unpack(
		    desc, NULL, rows[i].len, rows[i].payload);
		char **slot, *kept;
		uint8_t *packed;
		size_t len;

		if (!m) /* not ours to mend: step over it */
			continue;
		slot = (char **)((char *)m + field->offset);
		kept = *slot;
		*slot = "";
		len = protobuf_c_message_get_packed_size(m);
		packed = arena_alloc(a, len ? len : 1);
		if (packed)
			protobuf_c_message_pack(m, packed);
		*slot = kept;
		protobuf_c_message_free_unpacked(m, NULL);
		rc = packed ? store_outbox_scrubbed(j->db, topic, rows[i].id,
						    packed, len)
			    : ERR_NOMEM;
	}
	if (!rc)
		rc = db_commit(j->db);
	if (rc) {
		db_rollback(j->db);
		return rc;
	}
	if (n)
		log_info(NULL, "outbox tokens blanked topic=%s count=%zu",
			 topic, n);
	return 0;
}

static int scrub_outbox(struct jobs *j, struct arena *a)
{
	const struct accounts_settings *s = j->settings;
	int rc;

	rc = scrub_topic(j, a, "account.created",
			 &creneau__v1__account_created__descriptor,
			 "verification_token", s->verify_ttl_s);
	if (!rc)
		rc = scrub_topic(
		    j, a, "account.email_verification_requested",
		    &creneau__v1__email_verification_requested__descriptor,
		    "verification_token", s->verify_ttl_s);
	if (!rc)
		rc = scrub_topic(
		    j, a, "password_reset.requested",
		    &creneau__v1__password_reset_requested__descriptor, "token",
		    s->reset_ttl_s);
	return rc;
}

int jobs_run_once(struct jobs *j)
{
	return one_round(j);
}

static void *run(void *arg)
{
	struct jobs *j = arg;

	pthread_mutex_lock(&j->lock);
	while (!j->stopping) {
		struct timespec until;

		pthread_mutex_unlock(&j->lock);
		(void)one_round(j);
		pthread_mutex_lock(&j->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += j->settings->job_interval_s;
		while (!j->stopping &&
		       pthread_cond_timedwait(&j->wake, &j->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

int jobs_start(struct jobs **out, const char *conninfo,
	       const struct accounts_settings *s)
{
	struct jobs *j = calloc(1, sizeof(*j));
	int rc;

	if (!j)
		return ERR_NOMEM;
	j->settings = s;
	rc = db_open(&j->db, conninfo);
	if (rc)
		goto out_free;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->wake, NULL);
	if (pthread_create(&j->thread, NULL, run, j) != 0) {
		rc = ERR_INTERNAL;
		goto out_close;
	}
	*out = j;
	return 0;
out_close:
	pthread_cond_destroy(&j->wake);
	pthread_mutex_destroy(&j->lock);
	db_close(j->db);
out_free:
	free(j);
	return rc;
}

void jobs_stop(struct jobs *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&j->lock);
	j->stopping = true;
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
	pthread_join(j->thread, NULL);
	pthread_cond_destroy(&j->wake);
	pthread_mutex_destroy(&j->lock);
	db_close(j->db);
	free(j);
}
