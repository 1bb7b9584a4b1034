/* instant.c - Unix milliseconds to and from RFC 3339, without the C library's time zone state. */
#include "instant.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t instant_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t instant_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * civil-from-days algorithm, inverted). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30,
				   31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

void instant_format(int64_t ms, char out[INSTANT_TEXT])
{
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int frac = (int)(ms - secs * 1000);
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int rem = (int)(secs - days * 86400);
	int64_t y;
	int m, d, year;

	civil_from_days(days, &y, &m, &d);
	/* RFC 3339 has four-digit years: clamp what cannot be written. */
	year = y < 0 ? 0 : y > 9999 ? 9999 : (int)y;
	snprintf(out, INSTANT_TEXT, "%04d-%02d-%02dT%02d:%02d:%02d", year,
		 m % 13, d % 32, rem / 3600 % 24, rem / 60 % 60, rem % 60);
	if (frac)
		snprintf(out + 19, INSTANT_TEXT - 19, ".%03dZ", frac % 1000);
	else
		snprintf(out + 19, INSTANT_TEXT - 19, "Z");
}

/* Reads exactly n digits at *p into *out and advances *p. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

int instant_parse(const char *text, int64_t *ms_out)
{
	const char *p = text;
	int y, mo, d, h, mi, s, ms = 0, off_min = 0;

	if (!text || !digits(&p, 4, &y) || !expect(&p, '-') ||
	    !digits(&p, 2, &mo) || !expect(&p, '-') || !digits(&p, 2, &d))
		return ERR_INVALID;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return ERR_INVALID;
	p++;
	if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) ||
	    !expect(&p, ':') || !digits(&p, 2, &s))
		return ERR_INVALID;
	if (*p == '.') {
		int scale = 100, n = 0;

		p++;
		while (isdigit((unsigned char)*p)) {
			ms += (*p - '0') * scale;
			scale /= 10;
			p++;
			n++;
		}
		if (n == 0 || n > 9)
			return ERR_INVALID;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;

		p++;
		if (!digits(&p, 2, &oh) || !expect(&p, ':') ||
		    !digits(&p, 2, &om) || oh > 23 || om > 59)
			return ERR_INVALID;
		off_min = sign * (oh * 60 + om);
	} else {
		return ERR_INVALID;
	}
	if (*p != '\0')
		return ERR_INVALID;
	/* A leap second (:60) is not representable in Unix time: refused. */
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || s > 59)
		return ERR_INVALID;
	*ms_out = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
		    s - (int64_t)off_min * 60) *
		   1000) +
		  ms;
	return 0;
}
