/* ics.h - the iCalendar (RFC 5545) invitation attached to booking mails, built with libical. */
#ifndef CRENEAU_NOTIFICATIONS_ICS_H
#define CRENEAU_NOTIFICATIONS_ICS_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"

enum ics_method {
	ICS_REQUEST, /* a new or changed booking */
	ICS_CANCEL,  /* a cancelled booking */
};

/* One booking as a VEVENT. Strings UTF-8, borrowed; names may be NULL. */
struct ics_event {
	enum ics_method method;
	const char *uid;  /* stable per booking: "<booking id>@<domain>" */
	int sequence;     /* raised on each change */
	int64_t start_ms, end_ms, stamp_ms;
	const char *summary;
	const char *location; /* may be NULL */
	const char *organizer_name, *organizer_email;
	const char *attendee_name, *attendee_email;
};

/*
 * ics_build - a VCALENDAR with METHOD and one VEVENT into *out (CRLF line
 * ends, folded and escaped by libical; freed with ics_free). ERR_INVALID on a
 * missing field or end before start; ERR_NOMEM. Thread-safe.
 */
int ics_build(const struct ics_event *ev, char **out) WARN_UNUSED;

/* ics_free - frees what ics_build returned; NULL is a no-op. */
void ics_free(char *text);

#endif
