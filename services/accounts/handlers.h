/* handlers.h - the accounts service's RPC methods and the settings they read.
 */
#ifndef ACCOUNTS_HANDLERS_H
#define ACCOUNTS_HANDLERS_H

#include <stdatomic.h>
#include <stddef.h>
#include "error.h"
#include "password.h"
#include "rpc.h"

/* What main.c reads from the environment (its config table) for handlers
 * and jobs; service_app() of the service points to it. */
struct accounts_settings {
	long session_idle_s;	  /* sliding expiry of a session */
	long session_max_s;	  /* absolute lifetime of a session */
	long login_window_s;	  /* throttling window */
	long login_max_per_email; /* failures per e-mail in the window */
	long login_max_per_ip;	  /* failures per client address */
	long trial_days;	  /* a practitioner's trial */
	long verify_ttl_s;	  /* e-mail verification token */
	long reset_ttl_s;	  /* password reset token */
	long reset_interval_s;	  /* one reset mail per address per this */
	long reset_max_per_ip;	  /* reset requests per client address in it */
	long job_interval_s;	  /* purge and trial expiry */
	char *terms_version;	  /* the current terms' version */
	struct password_cost cost;
	char *booking_rpc; /* nng URLs of the booking replicas */
	/* set by main.c's start, cleared by its stop (NULL before and after):
	 * GetPractitioner asks booking for the practitioner's offerings
	 * through it. Atomic: the RPC workers start before def->start. */
	struct rpc_client *_Atomic booking;
	/* set by handlers_init: a hash verified when an e-mail is unknown, so
	 * that a failed login takes the same time either way */
	char dummy_hash[PASSWORD_HASH_TEXT];
};

/* handlers_init - prepares what the handlers need (the dummy hash).
 * ERR_NOMEM. Call once before the RPC server starts. */
int handlers_init(struct accounts_settings *s) WARN_UNUSED;

/* The method table (one handle_<rpc> each), given to service_def. */
extern const struct rpc_method handlers_methods[];
extern const size_t handlers_methods_count;

#endif
