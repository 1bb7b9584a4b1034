/* jobs.h - the accounts service's timed work: expiring trials, purging dead
 * sessions and tokens. */
#ifndef ACCOUNTS_JOBS_H
#define ACCOUNTS_JOBS_H

#include "error.h"

struct jobs;
struct accounts_settings;

/*
 * jobs_start - a thread that, every s->job_interval_s seconds, turns trials
 * past their end into "lapsed" (announcing account.suspended for each),
 * deletes expired sessions and tokens, and blanks the tokens of expired
 * links in the outbox's mail-bearing events. It opens its own connection with
 * conninfo (borrowed for its lifetime, like s). ERR_NOMEM or ERR_INTERNAL.
 */
int jobs_start(struct jobs **out, const char *conninfo,
	       const struct accounts_settings *s) WARN_UNUSED;

/* jobs_run_once - one round now, on the caller's thread (the thread must
 * not be running one at the same time: for tests); 0 or the first error. */
int jobs_run_once(struct jobs *j) WARN_UNUSED;

/* jobs_stop - wakes the thread, joins it and frees; NULL is a no-op. */
void jobs_stop(struct jobs *j);

#endif
