/* error.c - names and descriptions of the project-wide error codes. */
#include <stddef.h>

#include "error.h"

struct error_entry {
	int code;
	const char *name;
	const char *text;
};

static const struct error_entry errors[] = {
	{ERR_OK, "ok", "success"},
	{ERR_INVALID, "invalid", "invalid request"},
	{ERR_UNAUTHENTICATED, "unauthenticated", "authentication required"},
	{ERR_FORBIDDEN, "forbidden", "not allowed"},
	{ERR_NOT_FOUND, "not_found", "not found"},
	{ERR_CONFLICT, "conflict", "conflicts with the current state"},
	{ERR_TOO_LARGE, "too_large", "too large"},
	{ERR_UNSUPPORTED, "unsupported_media_type", "unsupported media type"},
	{ERR_RULE, "rule_violation", "breaks a rule"},
	{ERR_RATE_LIMITED, "rate_limited", "too many requests"},
	{ERR_UNAVAILABLE, "service_unavailable", "a service is unavailable"},
	{ERR_TIMEOUT, "timeout", "the deadline passed"},
	{ERR_INTERNAL, "internal", "internal error"},
	{ERR_NOMEM, "internal", "out of memory"},
	{ERR_PROTOCOL, "protocol", "malformed or unauthenticated message"},
};

static const struct error_entry *lookup(int code)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].code == code)
			return &errors[i];
	return NULL;
}

/* Unknown codes are bugs: they read as ERR_INTERNAL. */
static const struct error_entry *find(int code)
{
	const struct error_entry *e = lookup(code);

	return e ? e : lookup(ERR_INTERNAL);
}

const char *error_str(int code)
{
	return find(code)->text;
}

const char *error_name(int code)
{
	return find(code)->name;
}
