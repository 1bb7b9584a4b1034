/* query.c - percent-decoding of URL path segments and query strings. */
#include "query.h"

#include <string.h>

#include "arena.h"

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int query_decode(struct arena *a, const char *s, size_t len, bool plus_is_space,
		 char **out)
{
	char *d = arena_alloc(a, len + 1);
	size_t o = 0;

	*out = NULL;
	if (!d)
		return ERR_NOMEM;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (s[i] == '+' && plus_is_space) {
			d[o++] = ' ';
			continue;
		}
		if (s[i] != '%') {
			d[o++] = s[i];
			continue;
		}
		if (len - i < 3)
			return ERR_INVALID; /* a truncated escape */
		hi = hex_value(s[i + 1]);
		lo = hex_value(s[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return ERR_INVALID;
		d[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	d[o] = '\0';
	*out = d;
	return 0;
}

int query_parse(struct arena *a, const char *raw,
		struct query_param **params_out, size_t *n_out)
{
	struct query_param *params;
	size_t n = 0;
	const char *p = raw;

	*params_out = NULL;
	*n_out = 0;
	if (!raw || !*raw)
		return 0;
	params = arena_alloc(a, QUERY_MAX_PARAMS * sizeof(*params));
	if (!params)
		return ERR_NOMEM;
	while (*p) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		size_t name_len = eq ? (size_t)(eq - p) : len;
		char *name, *value;
		int rc;

		if (len == 0 || name_len == 0) {
			p += len + (p[len] == '&');
			continue; /* "a=1&&b=2", "=x" */
		}
		if (n == QUERY_MAX_PARAMS)
			return ERR_TOO_LARGE;
		rc = query_decode(a, p, name_len, true, &name);
		if (!rc)
			rc = eq ? query_decode(a, eq + 1, len - name_len - 1,
					       true, &value)
				: query_decode(a, "", 0, true, &value);
		if (rc)
			return rc;
		params[n].name = name;
		params[n].value = value;
		n++;
		p += len + (p[len] == '&');
	}
	*params_out = params;
	*n_out = n;
	return 0;
}
