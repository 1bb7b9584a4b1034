/* config.h - a daemon's settings: one declared table, read from the environment. */
#ifndef CRENEAU_CONFIG_H
#define CRENEAU_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

enum config_type {
	CONFIG_STRING, /* target: char ** (strdup'd; freed by config_free) */
	CONFIG_INT,    /* target: long *, checked against [min, max] */
	CONFIG_BOOL,   /* target: bool *; true/false/1/0/yes/no/on/off */
	CONFIG_KEY,    /* target: uint8_t ** (sodium_malloc'd, 32 bytes), hex;
			initialises libsodium itself */
	CONFIG_URLS,   /* target: char **; comma-separated nng URLs, checked */
};

/*
 * One setting. default_value NULL makes the setting required; "" makes it
 * optional and empty. A secret's value is never printed (--help shows only
 * whether it is set).
 */
struct config_setting {
	const char *name; /* environment variable, e.g. "CRENEAU_DB" */
	enum config_type type;
	const char *default_value;
	bool secret;
	const char *help;
	void *target;
	long min, max; /* CONFIG_INT only */
};

#define CONFIG_HELP_SHOWN 1

/*
 * config_load - reads every setting of the table from the environment into
 * its target. argv is scanned for --help/-h, which prints the table to
 * stdout and returns CONFIG_HELP_SHOWN (the caller exits 0). Every invalid or
 * missing value is reported on stderr, each naming its variable, before
 * returning ERR_INVALID. The only getenv() of the project. Not thread-safe:
 * call once at start-up.
 */
int config_load(const char *program, const struct config_setting *table,
		size_t n, int argc, char **argv) WARN_UNUSED;

/* config_free - frees what config_load allocated into the table's targets. */
void config_free(const struct config_setting *table, size_t n);

/* config_print_help - writes the table as --help text to stdout. */
void config_print_help(const char *program, const struct config_setting *table,
		       size_t n);

#endif
