/* config.c - reads a daemon's declared settings from the environment; the only getenv of the project. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "secure.h"

static const char *type_name(enum config_type t)
{
	switch (t) {
	case CONFIG_STRING:
		return "string";
	case CONFIG_INT:
		return "integer";
	case CONFIG_BOOL:
		return "boolean";
	case CONFIG_KEY:
		return "key (64 hex digits)";
	case CONFIG_URLS:
		return "URL list";
	}
	return "?";
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return ERR_INVALID;
}

/* One nng URL: scheme we use, then something after "://". */
static bool is_url(const char *s, size_t n)
{
	static const char *const schemes[] = {"ipc://", "tcp://", "tcp4://",
					      "tcp6://", "inproc://",
					      "http://", "tls+tcp://"};

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t k = strlen(schemes[i]);

		if (n > k && strncmp(s, schemes[i], k) == 0)
			return true;
	}
	return false;
}

static int check_urls(const char *v)
{
	const char *p = v;

	if (!*v)
		return 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (!is_url(p, n))
			return ERR_INVALID;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* Stores v into s's target; prints the problem and returns ERR_INVALID. */
static int assign(const char *program, const struct config_setting *s,
		  const char *v)
{
	char *end;
	long n;

	switch (s->type) {
	case CONFIG_URLS:
		if (check_urls(v)) {
			fprintf(stderr,
				"%s: %s: not a comma-separated list of URLs "
				"(ipc://, tcp://, http://...)\n",
				program, s->name);
			return ERR_INVALID;
		}
		/* fall through */
	case CONFIG_STRING:
		*(char **)s->target = strdup(v);
		return *(char **)s->target ? 0 : ERR_NOMEM;
	case CONFIG_INT:
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < s->min || n > s->max) {
			fprintf(stderr,
				"%s: %s: must be an integer from %ld to %ld\n",
				program, s->name, s->min, s->max);
			return ERR_INVALID;
		}
		*(long *)s->target = n;
		return 0;
	case CONFIG_BOOL:
		if (parse_bool(v, (bool *)s->target)) {
			fprintf(stderr, "%s: %s: must be true or false\n",
				program, s->name);
			return ERR_INVALID;
		}
		return 0;
	case CONFIG_KEY:
		if (!*v) {
			*(uint8_t **)s->target = NULL;
			return 0;
		}
		/* keys live in sodium_malloc memory: libsodium must be up */
		if (secure_init())
			return ERR_INTERNAL;
		if (secure_key_from_hex(v, (uint8_t **)s->target)) {
			fprintf(stderr, "%s: %s: must be 64 hex digits\n",
				program, s->name);
			return ERR_INVALID;
		}
		return 0;
	}
	return ERR_INVALID;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

int config_load(const char *program, const struct config_setting *table,
		size_t n, int argc, char **argv)
{
	int bad = 0;

	if (wants_help(argc, argv)) {
		config_print_help(program, table, n);
		return CONFIG_HELP_SHOWN;
	}
	for (size_t i = 0; i < n; i++) {
		const struct config_setting *s = &table[i];
		const char *v = getenv(s->name);

		if (!v)
			v = s->default_value;
		if (!v) {
			fprintf(stderr, "%s: %s: required (%s) is not set\n",
				program, s->name, s->help);
			bad++;
			continue;
		}
		if (assign(program, s, v))
			bad++;
	}
	if (bad) {
		fprintf(stderr, "%s: %d invalid setting%s; see %s --help\n",
			program, bad, bad == 1 ? "" : "s", program);
		config_free(table, n);
		return ERR_INVALID;
	}
	return 0;
}

void config_free(const struct config_setting *table, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct config_setting *s = &table[i];

		if (s->type == CONFIG_STRING || s->type == CONFIG_URLS) {
			free(*(char **)s->target);
			*(char **)s->target = NULL;
		} else if (s->type == CONFIG_KEY) {
			secure_key_free(*(uint8_t **)s->target);
			*(uint8_t **)s->target = NULL;
		}
	}
}

void config_print_help(const char *program, const struct config_setting *table,
		       size_t n)
{
	printf("Usage: %s [--help]\n\nSettings, read from the environment:\n\n",
	       program);
	for (size_t i = 0; i < n; i++) {
		const struct config_setting *s = &table[i];

		printf("  %s (%s", s->name, type_name(s->type));
		if (s->type == CONFIG_INT)
			printf(", %ld..%ld", s->min, s->max);
		if (!s->default_value)
			printf(", required");
		else if (s->secret)
			printf(", secret");
		else if (*s->default_value)
			printf(", default %s", s->default_value);
		printf(")\n      %s\n", s->help);
	}
}
