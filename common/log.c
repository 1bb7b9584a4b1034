/* log.c - JSON log lines on stderr, one write(2) each. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "instant.h"

#define LINE_MAX_BYTES 4096

static char service[64] = "creneau";
static int threshold = LOG_INFO;

static const char *const level_names[] = {
	[LOG_ERR] = "err",	   [LOG_WARNING] = "warning",
	[LOG_NOTICE] = "notice", [LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

int log_init(const char *name, const char *level)
{
	int found = -1;

	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (level && strcmp(level, level_names[i]) == 0)
			found = i;
	if (level && *level && found < 0)
		return ERR_INVALID;
	if (found >= 0)
		threshold = found;
	if (name)
		snprintf(service, sizeof(service), "%s", name);
	return 0;
}

int log_enabled(enum log_level level)
{
	return (int)level <= threshold;
}

/* Appends s JSON-escaped to buf[*len..cap), truncating safely. */
static void append_escaped(char *buf, size_t *len, size_t cap, const char *s)
{
	for (; *s && *len + 10 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = (char)c;
		} else if (c < 0x20) {
			*len += (size_t)snprintf(buf + *len, cap - *len,
						 "\\u%04x", c);
		} else {
			buf[(*len)++] = (char)c;
		}
	}
}

static void append(char *buf, size_t *len, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (*len + n + 10 >= cap)
		n = *len + 10 >= cap ? 0 : cap - *len - 10;
	memcpy(buf + *len, s, n);
	*len += n;
}

void log_write(enum log_level level, const char *request_id, const char *fmt,
	       ...)
{
	char msg[LINE_MAX_BYTES / 2];
	char line[LINE_MAX_BYTES];
	char now[INSTANT_TEXT];
	size_t len = 0;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	instant_format(instant_now_ms(), now);

	append(line, &len, sizeof(line), "{\"time\":\"");
	append(line, &len, sizeof(line), now);
	append(line, &len, sizeof(line), "\",\"level\":\"");
	append(line, &len, sizeof(line), level_names[level]);
	append(line, &len, sizeof(line), "\",\"service\":\"");
	append_escaped(line, &len, sizeof(line), service);
	if (request_id) {
		append(line, &len, sizeof(line), "\",\"request_id\":\"");
		append_escaped(line, &len, sizeof(line), request_id);
	}
	append(line, &len, sizeof(line), "\",\"msg\":\"");
	append_escaped(line, &len, sizeof(line), msg);
	/* the escape loop always leaves room for the closing bytes */
	memcpy(line + len, "\"}\n", 3);
	len += 3;
	if (write(STDERR_FILENO, line, len) < 0) {
		/* Nowhere left to report a failed log write. */
	}
}
