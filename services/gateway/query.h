/* query.h - percent-decoding of URL path segments and query strings. */
#ifndef GATEWAY_QUERY_H
#define GATEWAY_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct arena;

/* the most parameters a query string may carry */
#define QUERY_MAX_PARAMS 32

struct query_param {
	const char *name;  /* decoded, NUL-terminated, in the arena */
	const char *value; /* "" when the parameter has no '=' */
};

/*
 * query_decode - percent-decodes s[0..len) into the arena (*out,
 * NUL-terminated); plus_is_space turns '+' into ' ' (query strings, not
 * paths). ERR_INVALID for a malformed escape or one that decodes to NUL;
 * ERR_NOMEM.
 */
int query_decode(struct arena *a, const char *s, size_t len, bool plus_is_space,
		 char **out) WARN_UNUSED;

/*
 * query_parse - splits raw ("a=1&b=x%20y", may be NULL or "") into decoded
 * parameters in the arena (*params_out, *n_out; empty pieces are
 * skipped). ERR_INVALID on a bad escape, ERR_TOO_LARGE beyond
 * QUERY_MAX_PARAMS, ERR_NOMEM.
 */
int query_parse(struct arena *a, const char *raw,
		struct query_param **params_out, size_t *n_out) WARN_UNUSED;

#endif
