/* error.h - the one error convention of creneau: 0 or a negative code. */
#ifndef CRENEAU_ERROR_H
#define CRENEAU_ERROR_H

#define WARN_UNUSED __attribute__((warn_unused_result))

/*
 * Every fallible function returns 0 or one of these. They are mapped in
 * exactly two places: to the RPC status (common/rpc.c) and from the RPC
 * status to an HTTP status (services/gateway).
 */
enum error_code {
	ERR_OK = 0,
	ERR_INVALID = -1,         /* malformed request or invalid field (400) */
	ERR_UNAUTHENTICATED = -2, /* no or bad credentials (401) */
	ERR_FORBIDDEN = -3,       /* authenticated, not allowed (403) */
	ERR_NOT_FOUND = -4,       /* absent, or not yours to see (404) */
	ERR_CONFLICT = -5,        /* clashes with existing state (409) */
	ERR_TOO_LARGE = -6,       /* body or field over its limit (413) */
	ERR_UNSUPPORTED = -7,     /* wrong media type (415) */
	ERR_RULE = -8,            /* well-formed but breaks a rule (422) */
	ERR_RATE_LIMITED = -9,    /* slow down (429) */
	ERR_UNAVAILABLE = -10,    /* a dependency is down; retry (503) */
	ERR_TIMEOUT = -11,        /* the deadline passed (503: retry) */
	ERR_INTERNAL = -12,       /* a bug or an unexpected fault (500) */
	ERR_NOMEM = -13,          /* allocation failed (500) */
	ERR_PROTOCOL = -14,       /* bad bytes on the wire, failed MAC (502) */
};

/* Short English description of code; never NULL; static storage. */
const char *error_str(int code);

/* Machine-readable default name of code ("invalid", "not_found", ...). */
const char *error_name(int code);

#endif
