/* test_log.c - log lines are one JSON object each, escaped, filtered by level. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Runs fn with stderr redirected to a temporary file; returns its text. */
static char *capture(void (*fn)(void))
{
	static char buf[8192];
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	assert_non_null(tmp);
	dup2(fileno(tmp), STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return buf;
}

static void write_tricky(void)
{
	log_info("req-1", "quote \" backslash \\ newline \n tab \t id=%d", 7);
	log_debug(NULL, "hidden");
}

static void lines_are_json(void **state)
{
	char *text;
	cJSON *line;

	assert_int_equal(log_init("booking", "info"), 0);
	text = capture(write_tricky);
	assert_non_null(strchr(text, '\n'));
	assert_null(strchr(strchr(text, '\n') + 1, '\n')); /* debug dropped */
	line = cJSON_Parse(text);
	assert_non_null(line);
	assert_string_equal(cJSON_GetObjectItem(line, "service")->valuestring,
			    "booking");
	assert_string_equal(cJSON_GetObjectItem(line, "level")->valuestring,
			    "info");
	assert_string_equal(
		cJSON_GetObjectItem(line, "request_id")->valuestring, "req-1");
	assert_string_equal(cJSON_GetObjectItem(line, "msg")->valuestring,
			    "quote \" backslash \\ newline \n tab \t id=7");
	cJSON_Delete(line);
}

static void write_long(void)
{
	char big[6000];

	memset(big, '"', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_err(NULL, "%s", big);
}

static void long_lines_stay_valid(void **state)
{
	cJSON *line;

	assert_int_equal(log_init("booking", "debug"), 0);
	line = cJSON_Parse(capture(write_long));
	assert_non_null(line);
	cJSON_Delete(line);
}

static void unknown_levels_are_refused(void **state)
{
	assert_int_equal(log_init("x", "loud"), ERR_INVALID);
	assert_int_equal(log_init("x", "warning"), 0);
	assert_false(log_enabled(LOG_INFO));
	assert_true(log_enabled(LOG_ERR));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_are_json),
		cmocka_unit_test(long_lines_stay_valid),
		cmocka_unit_test(unknown_levels_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
