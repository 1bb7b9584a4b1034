/* log.h - one JSON line per event on stderr; ids only, never personal data. */
#ifndef CRENEAU_LOG_H
#define CRENEAU_LOG_H

#include "error.h"

/* syslog severities */
enum log_level {
	LOG_ERR = 3,
	LOG_WARNING = 4,
	LOG_NOTICE = 5,
	LOG_INFO = 6,
	LOG_DEBUG = 7,
};

/*
 * log_init - names the service in every line and sets the lowest level
 * written ("debug", "info", "notice", "warning", "err"). Call once before
 * threads start; later calls replace the settings.
 */
int log_init(const char *service, const char *level) WARN_UNUSED;

/*
 * log_write - one line: {"time","level","service","request_id","msg"}.
 * request_id may be NULL. The message is printf-formatted; by convention it
 * is "what happened key=value key=value" with ids, SQLSTATEs and error
 * strings as values, never e-mails, names or tokens. Thread-safe: a line is
 * written with a single write(2).
 */
void log_write(enum log_level level, const char *request_id, const char *fmt,
	       ...) __attribute__((format(printf, 3, 4)));

#define log_err(rid, ...) log_write(LOG_ERR, rid, __VA_ARGS__)
#define log_warn(rid, ...) log_write(LOG_WARNING, rid, __VA_ARGS__)
#define log_notice(rid, ...) log_write(LOG_NOTICE, rid, __VA_ARGS__)
#define log_info(rid, ...) log_write(LOG_INFO, rid, __VA_ARGS__)
#define log_debug(rid, ...) log_write(LOG_DEBUG, rid, __VA_ARGS__)

/* log_enabled - whether a line at level would be written. */
int log_enabled(enum log_level level);

#endif
