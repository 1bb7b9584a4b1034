/* jobs.h - timed work of notifications: the outbox senders and the newsletter's re-consent. */
#ifndef CRENEAU_NOTIFICATIONS_JOBS_H
#define CRENEAU_NOTIFICATIONS_JOBS_H

#include <stdint.h>
#include "error.h"
#include "messages.h"
#include "smtp.h"

struct jobs;

struct jobs_config {
	const char *conninfo;   /* each thread opens its own connection */
	struct smtp_options smtp;
	long senders;           /* sender threads, each its own SMTP connection */
	long poll_ms;           /* idle wait between looks at the outbox */
	long retry_base_ms;     /* first retry delay; doubles each attempt */
	long retry_max_ms;      /* cap of one delay */
	long give_up_s;         /* a message still failing after this fails */
	long reconsent_after_days; /* newsletter: silence before asking again */
	long reconsent_wait_days;  /* then: how long the question waits */
	const struct messages_config *messages; /* borrowed */
};

/*
 * jobs_start - starts cfg->senders sender threads and one housekeeping
 * thread (cfg copied; strings borrowed for the jobs' lifetime). ERR_INVALID
 * (logged) when the transport cannot work: unknown scheme, a directory
 * that cannot be created or written.
 *
 * Delivery guarantee: a sender locks one due message (FOR UPDATE SKIP
 * LOCKED, so replicas never send the same row together), sends it, and
 * marks it sent in the same transaction. A message is never forgotten: it
 * stays queued until marked. A crash in the instant between the server's
 * acceptance and the commit makes it sent again after the restart: delivery
 * is at least once with that tiny window, and the copy carries the same
 * Message-ID (the file transport even rewrites the same file), so a mail
 * client or a reader recognises it.
 */
int jobs_start(struct jobs **out, const struct jobs_config *cfg) WARN_UNUSED;

/* jobs_stop - stops and joins the threads (a send in flight finishes);
 * NULL is a no-op. */
void jobs_stop(struct jobs *j);

/*
 * jobs_backoff_ms - the delay before retry number `attempt` (1 for the
 * first retry): base * 2^(attempt-1), capped at max, with "equal jitter"
 * (half fixed, half drawn from random) so that retries after an outage do
 * not arrive all at once. Pure.
 */
int64_t jobs_backoff_ms(int attempt, long base_ms, long max_ms,
			uint32_t random);

#endif
