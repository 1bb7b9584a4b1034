/* test_config.c - the settings table: defaults, validation, every problem named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "secure.h"

static char *name;
static char *urls;
static long workers;
static bool flag;
static uint8_t *key;

static const struct config_setting table[] = {
	{"T_NAME", CONFIG_STRING, NULL, false, "a required string", &name, 0,
	 0},
	{"T_URLS", CONFIG_URLS, "ipc:///tmp/x.rpc", false, "replica URLs",
	 &urls, 0, 0},
	{"T_WORKERS", CONFIG_INT, "4", false, "workers", &workers, 1, 64},
	{"T_FLAG", CONFIG_BOOL, "false", false, "a flag", &flag, 0, 0},
	{"T_KEY", CONFIG_KEY, "", true, "a secret key", &key, 0, 0},
};
#define N (sizeof(table) / sizeof(table[0]))

static char *argv0[] = {"prog", NULL};

static int reset(void **state)
{
	unsetenv("T_NAME");
	unsetenv("T_URLS");
	unsetenv("T_WORKERS");
	unsetenv("T_FLAG");
	unsetenv("T_KEY");
	return 0;
}

static void defaults_apply(void **state)
{
	setenv("T_NAME", "booking", 1);
	assert_int_equal(config_load("prog", table, N, 1, argv0), 0);
	assert_string_equal(name, "booking");
	assert_string_equal(urls, "ipc:///tmp/x.rpc");
	assert_int_equal(workers, 4);
	assert_false(flag);
	assert_null(key);
	config_free(table, N);
	assert_null(name);
}

static void values_are_read(void **state)
{
	setenv("T_NAME", "x", 1);
	setenv("T_URLS", "tcp://127.0.0.1:1,ipc:///tmp/y", 1);
	setenv("T_WORKERS", "64", 1);
	setenv("T_FLAG", "yes", 1);
	setenv("T_KEY",
	       "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	       1);
	assert_int_equal(config_load("prog", table, N, 1, argv0), 0);
	assert_int_equal(workers, 64);
	assert_true(flag);
	assert_non_null(key);
	assert_int_equal(key[1], 0x11);
	config_free(table, N);
}

static void every_problem_fails_start_up(void **state)
{
	setenv("T_URLS", "http//nope", 1);
	setenv("T_WORKERS", "0", 1);
	setenv("T_FLAG", "maybe", 1);
	setenv("T_KEY", "abc", 1);
	/* T_NAME missing too: five problems, all reported, nothing kept */
	assert_int_equal(config_load("prog", table, N, 1, argv0), ERR_INVALID);
	assert_null(name);
	assert_null(urls);

	reset(state);
	setenv("T_NAME", "x", 1);
	setenv("T_WORKERS", "12abc", 1);
	assert_int_equal(config_load("prog", table, N, 1, argv0), ERR_INVALID);
	setenv("T_WORKERS", "99999999999999999999999", 1);
	assert_int_equal(config_load("prog", table, N, 1, argv0), ERR_INVALID);
	setenv("T_WORKERS", "4", 1);
	setenv("T_URLS", "ipc:///a,", 1);
	assert_int_equal(config_load("prog", table, N, 1, argv0), ERR_INVALID);
}

static void help_is_the_table(void **state)
{
	char *argv[] = {"prog", "--help", NULL};

	assert_int_equal(config_load("prog", table, N, 2, argv),
			 CONFIG_HELP_SHOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(defaults_apply, reset),
		cmocka_unit_test_setup(values_are_read, reset),
		cmocka_unit_test_setup(every_problem_fails_start_up, reset),
		cmocka_unit_test_setup(help_is_the_table, reset),
	};

	if (secure_init())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
