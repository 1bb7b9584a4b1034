/* instant.h - instants as Unix milliseconds, RFC 3339 in and out. */
#ifndef CRENEAU_INSTANT_H
#define CRENEAU_INSTANT_H

#include <stdint.h>
#include "error.h"

#define INSTANT_TEXT 32 /* room for "2027-03-28T09:00:00.000Z" and a NUL */

/* instant_now_ms - wall clock, Unix milliseconds. */
int64_t instant_now_ms(void);

/* instant_mono_ms - monotonic clock in milliseconds, for durations. */
int64_t instant_mono_ms(void);

/*
 * instant_format - ms as RFC 3339 UTC ("2027-03-28T07:00:00Z", with
 * ".mmm" only when ms is not a whole second). Always NUL-terminates.
 */
void instant_format(int64_t ms, char out[INSTANT_TEXT]);

/*
 * instant_parse - an RFC 3339 date-time ("Z" or a numeric offset, optional
 * fraction) into Unix ms. ERR_INVALID for anything else, including
 * impossible dates.
 */
int instant_parse(const char *text, int64_t *ms_out) WARN_UNUSED;

#endif
