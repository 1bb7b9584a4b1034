/* mime.h - builds RFC 5322 messages: multipart/alternative, RFC 2047 headers, attachments. */
#ifndef CRENEAU_NOTIFICATIONS_MIME_H
#define CRENEAU_NOTIFICATIONS_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

/* A growable byte buffer, always NUL-terminated when data is not NULL. */
struct mime_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* mime_buf_append - appends n bytes of s; ERR_NOMEM on failure. */
int mime_buf_append(struct mime_buf *b, const char *s, size_t n) WARN_UNUSED;

/* mime_buf_puts - appends the C string s. */
int mime_buf_puts(struct mime_buf *b, const char *s) WARN_UNUSED;

/* mime_buf_printf - appends formatted text. */
int mime_buf_printf(struct mime_buf *b, const char *fmt, ...) WARN_UNUSED
	__attribute__((format(printf, 2, 3)));

/* mime_buf_free - releases the buffer's memory and empties it. */
void mime_buf_free(struct mime_buf *b);

struct mime_attachment {
	const char *content_type; /* e.g. "text/calendar; method=REQUEST" */
	const char *filename;     /* ASCII, e.g. "rendez-vous.ics" */
	const char *data;
	size_t len;
};

/* What a message says. Strings are UTF-8, borrowed. */
struct mime_mail {
	const char *from_name; /* may be NULL */
	const char *from_addr;
	const char *to_name; /* may be NULL */
	const char *to_addr;
	const char *reply_to; /* address or NULL */
	const char *subject;
	const char *text; /* plain text body, '\n' line ends */
	const char *html; /* HTML body, or NULL for text only */
	const char *message_id; /* "local@domain", without angle brackets */
	int64_t date_ms;
	const char *language;         /* Content-Language, or NULL */
	const char *list_unsubscribe; /* https URL, or NULL */
	bool one_click;               /* adds List-Unsubscribe-Post */
	const struct mime_attachment *attachment; /* or NULL */
	const char *boundary_seed; /* NULL: derived from message_id */
};

/*
 * mime_is_address - true when addr is a plain addr-spec we accept: one '@',
 * printable ASCII without spaces, quotes, angle brackets or commas, a dot in
 * the domain, at most 254 bytes.
 */
bool mime_is_address(const char *addr);

/*
 * mime_build - the whole message (headers and body, CRLF line ends) into
 * out (appended; the caller frees it with mime_buf_free). Control
 * characters in the subject and display names become spaces (see
 * mime_encode_header). ERR_INVALID when an address is malformed, the
 * List-Unsubscribe URL, language or attachment names hold a control
 * character or a required part is missing; ERR_NOMEM. Deterministic for
 * equal input.
 * Thread-safe.
 */
int mime_build(const struct mime_mail *m, struct mime_buf *out) WARN_UNUSED;

/*
 * mime_encode_header - value as a header body: as is when it is short
 * printable ASCII, else RFC 2047 "=?UTF-8?B?...?=" words (each at most 75
 * characters, split on UTF-8 character boundaries) folded with CRLF SP.
 * Each control character (CR, LF and TAB included) becomes a space first,
 * so that a value can never inject a header. ERR_INVALID on invalid UTF-8;
 * ERR_NOMEM.
 */
int mime_encode_header(struct mime_buf *out, const char *value) WARN_UNUSED;

/* mime_encode_qp - text as quoted-printable (RFC 2045), '\n' → CRLF. */
int mime_encode_qp(struct mime_buf *out, const char *text) WARN_UNUSED;

/* mime_encode_base64 - data as base64 in lines of 76 characters. */
int mime_encode_base64(struct mime_buf *out, const char *data, size_t len)
	WARN_UNUSED;

/* mime_format_date - RFC 5322 date ("Tue, 24 Nov 2026 12:00:00 +0000"),
 * always MIME_DATE_LEN characters for years 1000-9999. */
#define MIME_DATE_LEN 31
void mime_format_date(int64_t ms, char out[40]);

/*
 * mime_restamp_date - rewrites, in place, the Date header of the message
 * msg (len bytes, built by mime_build) to ms: a message queued long before
 * it goes out (a reminder) is dated when it is sent. Only the header block
 * is searched. ERR_NOT_FOUND when it holds no Date header of the expected
 * width (the message is left as it is).
 */
int mime_restamp_date(char *msg, size_t len, int64_t ms);

#endif
