/* ics.c - the iCalendar (RFC 5545) invitation attached to booking mails, built with libical. */
#include "ics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libical/ical.h>

static struct icaltimetype utc_time(int64_t ms)
{
	return icaltime_from_timet_with_zone((time_t)(ms / 1000), 0,
					     icaltimezone_get_utc_timezone());
}

/* mailto: property with a CN parameter, added to comp. */
static int add_party(icalcomponent *comp, bool organizer, const char *name,
		     const char *email)
{
	char uri[300];
	icalproperty *p;

	if (snprintf(uri, sizeof(uri), "mailto:%s", email) >= (int)sizeof(uri))
		return ERR_INVALID;
	p = organizer ? icalproperty_new_organizer(uri)
		      : icalproperty_new_attendee(uri);
	if (!p)
		return ERR_NOMEM;
	if (name && *name)
		icalproperty_add_parameter(p, icalparameter_new_cn(name));
	if (!organizer) {
		icalproperty_add_parameter(
			p, icalparameter_new_role(ICAL_ROLE_REQPARTICIPANT));
		icalproperty_add_parameter(
			p, icalparameter_new_partstat(ICAL_PARTSTAT_ACCEPTED));
	}
	icalcomponent_add_property(comp, p);
	return 0;
}

static int fill_event(icalcomponent *ev, const struct ics_event *e)
{
	bool cancel = e->method == ICS_CANCEL;
	int rc;

	icalcomponent_add_property(ev, icalproperty_new_uid(e->uid));
	icalcomponent_add_property(ev, icalproperty_new_sequence(e->sequence));
	icalcomponent_add_property(ev,
				   icalproperty_new_dtstamp(utc_time(e->stamp_ms)));
	icalcomponent_add_property(ev,
				   icalproperty_new_dtstart(utc_time(e->start_ms)));
	icalcomponent_add_property(ev,
				   icalproperty_new_dtend(utc_time(e->end_ms)));
	icalcomponent_add_property(ev, icalproperty_new_summary(e->summary));
	if (e->location && *e->location)
		icalcomponent_add_property(
			ev, icalproperty_new_location(e->location));
	icalcomponent_add_property(
		ev, icalproperty_new_status(cancel ? ICAL_STATUS_CANCELLED
						   : ICAL_STATUS_CONFIRMED));
	rc = add_party(ev, true, e->organizer_name, e->organizer_email);
	if (!rc)
		rc = add_party(ev, false, e->attendee_name, e->attendee_email);
	return rc;
}

int ics_build(const struct ics_event *e, char **out)
{
	icalcomponent *cal, *ev;
	char *text;
	int rc;

	if (!e->uid || !*e->uid || !e->summary || !e->organizer_email ||
	    !e->attendee_email || e->end_ms <= e->start_ms || e->sequence < 0)
		return ERR_INVALID;
	cal = icalcomponent_new(ICAL_VCALENDAR_COMPONENT);
	if (!cal)
		return ERR_NOMEM;
	icalcomponent_add_property(
		cal, icalproperty_new_prodid("-//creneau//notifications//FR"));
	icalcomponent_add_property(cal, icalproperty_new_version("2.0"));
	icalcomponent_add_property(cal, icalproperty_new_calscale("GREGORIAN"));
	icalcomponent_add_property(
		cal, icalproperty_new_method(e->method == ICS_CANCEL
						     ? ICAL_METHOD_CANCEL
						     : ICAL_METHOD_REQUEST));
	ev = icalcomponent_new(ICAL_VEVENT_COMPONENT);
	if (!ev) {
		rc = ERR_NOMEM;
		goto out_free_cal;
	}
	icalcomponent_add_component(cal, ev);
	rc = fill_event(ev, e);
	if (rc)
		goto out_free_cal;
	text = icalcomponent_as_ical_string_r(cal);
	if (!text) {
		rc = ERR_NOMEM;
		goto out_free_cal;
	}
	*out = text;
out_free_cal:
	icalcomponent_free(cal);
	return rc;
}

void ics_free(char *text)
{
	if (text)
		icalmemory_free_buffer(text);
}
