/* mime.c - builds RFC 5322 messages: multipart/alternative, RFC 2047 headers, attachments. */
#include "mime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define QP_LINE 76
#define WORD_BYTES 45 /* raw bytes per encoded word: 60 base64 chars */

int mime_buf_append(struct mime_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p)
			return ERR_NOMEM;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int mime_buf_puts(struct mime_buf *b, const char *s)
{
	return mime_buf_append(b, s, strlen(s));
}

int mime_buf_printf(struct mime_buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n, rc;
	char *big;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return ERR_INTERNAL;
	if ((size_t)n < sizeof(small))
		return mime_buf_append(b, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (!big)
		return ERR_NOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = mime_buf_append(b, big, (size_t)n);
	free(big);
	return rc;
}

void mime_buf_free(struct mime_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

bool mime_is_address(const char *addr)
{
	const char *at, *dot;
	size_t len;

	if (!addr)
		return false;
	len = strlen(addr);
	if (len < 3 || len > 254)
		return false;
	for (const char *p = addr; *p; p++)
		if (*p <= ' ' || *p >= 127 || strchr("\"<>(),;:\\[]", *p))
			return false;
	at = strchr(addr, '@');
	if (!at || at == addr || strchr(at + 1, '@') || at - addr > 64)
		return false;
	dot = strrchr(at + 1, '.');
	return dot && dot > at + 1 && dot[1] != '\0';
}

/* Length of the UTF-8 sequence starting at s, or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0 && s[0] >= 0xc2)
		n = 2;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3;
	else if ((s[0] & 0xf8) == 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static bool has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < ' ' || *p == 127)
			return true;
	return false;
}

static bool is_plain_ascii(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < ' ' || *p >= 127)
			return false;
	/* "=?" would be read as the start of an encoded word */
	return strstr(s, "=?") == NULL;
}

static int append_word(struct mime_buf *out, const char *raw, size_t n)
{
	char b64[sodium_base64_ENCODED_LEN(WORD_BYTES,
					   sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)raw, n,
			  sodium_base64_VARIANT_ORIGINAL);
	return mime_buf_printf(out, "=?UTF-8?B?%s?=", b64);
}

/*
 * A malloc'd copy of s with every control character (CR and LF included)
 * turned into a space: a header value can then never start a new header.
 */
static char *without_controls(const char *s)
{
	char *copy = strdup(s);

	if (copy)
		for (unsigned char *p = (unsigned char *)copy; *p; p++)
			if (*p < ' ' || *p == 127)
				*p = ' ';
	return copy;
}

static int encode_clean(struct mime_buf *out, const char *value)
{
	const char *p = value, *start = value;
	bool first = true;
	int rc;

	if (is_plain_ascii(value) && strlen(value) <= 900)
		return mime_buf_puts(out, value);
	while (*p) {
		size_t n = utf8_len((const unsigned char *)p);

		if (!n)
			return ERR_INVALID;
		if ((size_t)(p + n - start) > WORD_BYTES) {
			rc = mime_buf_puts(out, first ? "" : "\r\n ");
			if (!rc)
				rc = append_word(out, start, (size_t)(p - start));
			if (rc)
				return rc;
			first = false;
			start = p;
		}
		p += n;
	}
	if (p > start) {
		rc = mime_buf_puts(out, first ? "" : "\r\n ");
		if (!rc)
			rc = append_word(out, start, (size_t)(p - start));
		if (rc)
			return rc;
	}
	return 0;
}

int mime_encode_header(struct mime_buf *out, const char *value)
{
	char *clean = without_controls(value);
	int rc;

	if (!clean)
		return ERR_NOMEM;
	rc = encode_clean(out, clean);
	free(clean);
	return rc;
}

/* Appends one encoded line (without its end), folding at QP_LINE. */
static int qp_line(struct mime_buf *out, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		char enc[4];
		size_t w;
		bool last = i + 1 == n;

		if ((s[i] >= 33 && s[i] <= 126 && s[i] != '=') ||
		    ((s[i] == ' ' || s[i] == '\t') && !last)) {
			enc[0] = (char)s[i];
			w = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[s[i] >> 4];
			enc[2] = hex[s[i] & 15];
			w = 3;
		}
		/* keep room for the soft break '=' unless this ends the line */
		if (col + w > (last ? QP_LINE : QP_LINE - 1)) {
			rc = mime_buf_puts(out, "=\r\n");
			col = 0;
		}
		if (!rc)
			rc = mime_buf_append(out, enc, w);
		col += w;
	}
	return rc;
}

int mime_encode_qp(struct mime_buf *out, const char *text)
{
	const char *p = text;
	int rc = 0;

	while (*p && !rc) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (n && p[n - 1] == '\r')
			n--;
		rc = qp_line(out, (const unsigned char *)p, n);
		if (!rc)
			rc = mime_buf_puts(out, "\r\n");
		p = nl ? nl + 1 : p + strlen(p);
	}
	return rc;
}

int mime_encode_base64(struct mime_buf *out, const char *data, size_t len)
{
	/* 57 raw bytes make one 76-character line */
	for (size_t off = 0; off < len; off += 57) {
		char line[80];
		size_t n = len - off < 57 ? len - off : 57;
		int rc;

		sodium_bin2base64(line, sizeof(line),
				  (const unsigned char *)data + off, n,
				  sodium_base64_VARIANT_ORIGINAL);
		rc = mime_buf_printf(out, "%s\r\n", line);
		if (rc)
			return rc;
	}
	return 0;
}

void mime_format_date(int64_t ms, char out[40])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
					   "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
					     "May", "Jun", "Jul", "Aug",
					     "Sep", "Oct", "Nov", "Dec"};

	gmtime_r(&t, &tm);
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000",
		 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* name <addr>, with the name quoted or encoded as needed. */
static int append_mailbox(struct mime_buf *out, const char *name,
			  const char *addr)
{
	char *clean;
	int rc;

	if (!name || !*name)
		return mime_buf_puts(out, addr);
	clean = without_controls(name);
	if (!clean)
		return ERR_NOMEM;
	if (is_plain_ascii(clean) && !strpbrk(clean, "\"\\")) {
		rc = mime_buf_printf(out, "\"%s\"", clean);
	} else {
		rc = encode_clean(out, clean);
	}
	free(clean);
	if (!rc)
		rc = mime_buf_printf(out, " <%s>", addr);
	return rc;
}

static int header(struct mime_buf *out, const char *name, const char *value)
{
	int rc = mime_buf_printf(out, "%s: ", name);

	if (!rc)
		rc = mime_encode_header(out, value);
	if (!rc)
		rc = mime_buf_puts(out, "\r\n");
	return rc;
}

static int mailbox_header(struct mime_buf *out, const char *field,
			  const char *name, const char *addr)
{
	int rc = mime_buf_printf(out, "%s: ", field);

	if (!rc)
		rc = append_mailbox(out, name, addr);
	if (!rc)
		rc = mime_buf_puts(out, "\r\n");
	return rc;
}

static int text_part(struct mime_buf *out, const char *type, const char *body)
{
	int rc = mime_buf_printf(out,
				 "Content-Type: %s; charset=UTF-8\r\n"
				 "Content-Transfer-Encoding: quoted-printable"
				 "\r\n\r\n",
				 type);

	if (!rc)
		rc = mime_encode_qp(out, body);
	return rc;
}

static int alternative(struct mime_buf *out, const struct mime_mail *m,
		       const char *boundary)
{
	int rc;

	if (!m->html)
		return text_part(out, "text/plain", m->text);
	rc = mime_buf_printf(out,
			     "Content-Type: multipart/alternative; "
			     "boundary=\"%s-a\"\r\n\r\n--%s-a\r\n",
			     boundary, boundary);
	if (!rc)
		rc = text_part(out, "text/plain", m->text);
	if (!rc)
		rc = mime_buf_printf(out, "--%s-a\r\n", boundary);
	if (!rc)
		rc = text_part(out, "text/html", m->html);
	if (!rc)
		rc = mime_buf_printf(out, "--%s-a--\r\n", boundary);
	return rc;
}

static int body(struct mime_buf *out, const struct mime_mail *m,
		const char *boundary)
{
	const struct mime_attachment *a = m->attachment;
	int rc;

	if (!a)
		return alternative(out, m, boundary);
	rc = mime_buf_printf(out,
			     "Content-Type: multipart/mixed; "
			     "boundary=\"%s-m\"\r\n\r\n--%s-m\r\n",
			     boundary, boundary);
	if (!rc)
		rc = alternative(out, m, boundary);
	if (!rc)
		rc = mime_buf_printf(out,
				     "--%s-m\r\nContent-Type: %s; "
				     "charset=UTF-8; name=\"%s\"\r\n"
				     "Content-Disposition: attachment; "
				     "filename=\"%s\"\r\n"
				     "Content-Transfer-Encoding: base64\r\n\r\n",
				     boundary, a->content_type, a->filename,
				     a->filename);
	if (!rc)
		rc = mime_encode_base64(out, a->data, a->len);
	if (!rc)
		rc = mime_buf_printf(out, "--%s-m--\r\n", boundary);
	return rc;
}

static bool is_valid(const struct mime_mail *m)
{
	const struct mime_attachment *a = m->attachment;

	if (!mime_is_address(m->from_addr) || !mime_is_address(m->to_addr))
		return false;
	if (m->reply_to && !mime_is_address(m->reply_to))
		return false;
	if (!m->subject || !m->text || !m->message_id ||
	    !mime_is_address(m->message_id))
		return false;
	if (m->list_unsubscribe && (has_control(m->list_unsubscribe) ||
				    strpbrk(m->list_unsubscribe, "<> ")))
		return false;
	if (m->language && (has_control(m->language) ||
			    strlen(m->language) > 16))
		return false;
	if (a && (!a->content_type || !a->filename || !a->data ||
		  has_control(a->content_type) || has_control(a->filename) ||
		  !is_plain_ascii(a->filename) || strchr(a->filename, '"')))
		return false;
	return true;
}

int mime_build(const struct mime_mail *m, struct mime_buf *out)
{
	unsigned char digest[12];
	char date[40], boundary[40];
	const char *seed = m->boundary_seed ? m->boundary_seed : m->message_id;
	int rc;

	if (!is_valid(m))
		return ERR_INVALID;
	/* "=_" never occurs in quoted-printable or base64 text */
	crypto_generichash(digest, sizeof(digest), (const unsigned char *)seed,
			   strlen(seed), NULL, 0);
	memcpy(boundary, "=_cr", 4);
	sodium_bin2hex(boundary + 4, sizeof(boundary) - 4, digest,
		       sizeof(digest));
	mime_format_date(m->date_ms, date);
	rc = mailbox_header(out, "From", m->from_name, m->from_addr);
	if (!rc)
		rc = mailbox_header(out, "To", m->to_name, m->to_addr);
	if (!rc && m->reply_to)
		rc = mime_buf_printf(out, "Reply-To: %s\r\n", m->reply_to);
	if (!rc)
		rc = header(out, "Subject", m->subject);
	if (!rc)
		rc = mime_buf_printf(out,
				     "Date: %s\r\nMessage-ID: <%s>\r\n"
				     "MIME-Version: 1.0\r\n",
				     date, m->message_id);
	if (!rc && m->language)
		rc = mime_buf_printf(out, "Content-Language: %s\r\n",
				     m->language);
	if (!rc && m->list_unsubscribe)
		rc = mime_buf_printf(out, "List-Unsubscribe: <%s>\r\n",
				     m->list_unsubscribe);
	if (!rc && m->list_unsubscribe && m->one_click)
		rc = mime_buf_puts(out, "List-Unsubscribe-Post: "
					"List-Unsubscribe=One-Click\r\n");
	if (!rc)
		rc = mime_buf_puts(out, "Auto-Submitted: auto-generated\r\n");
	if (!rc)
		rc = body(out, m, boundary);
	return rc;
}

int mime_restamp_date(char *msg, size_t len, int64_t ms)
{
	static const char tag[] = "\r\nDate: ";
	const size_t tag_len = sizeof(tag) - 1;
	char date[40];
	char *end = memmem(msg, len, "\r\n\r\n", 4);
	char *p = memmem(msg, end ? (size_t)(end - msg) : len, tag, tag_len);

	if (!p || (size_t)(end - p) < tag_len + MIME_DATE_LEN + 2 ||
	    memcmp(p + tag_len + MIME_DATE_LEN, "\r\n", 2) != 0)
		return ERR_NOT_FOUND;
	mime_format_date(ms, date);
	if (strlen(date) != MIME_DATE_LEN)
		return ERR_NOT_FOUND;
	memcpy(p + tag_len, date, MIME_DATE_LEN);
	return 0;
}
