/* test_mime.c - the bytes of built messages: headers, encodings, parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mime.h"

static void test_address(void **state)
{
	assert_true(mime_is_address("a.b@example.org"));
	assert_false(mime_is_address("a@b"));
	assert_false(mime_is_address("a b@example.org"));
	assert_false(mime_is_address("a@@example.org"));
	assert_false(mime_is_address("<a@example.org>"));
	assert_false(mime_is_address("a@example.org\r\nBcc: x@y.z"));
	assert_false(mime_is_address(""));
}

static void test_header_ascii_kept(void **state)
{
	struct mime_buf b = {0};

	assert_int_equal(mime_encode_header(&b, "Hello world"), 0);
	assert_string_equal(b.data, "Hello world");
	mime_buf_free(&b);
}

static void test_header_encoded_word(void **state)
{
	struct mime_buf b = {0};

	assert_int_equal(mime_encode_header(&b, "Réservation confirmée"), 0);
	/* base64 of the UTF-8 bytes */
	assert_string_equal(b.data,
			    "=?UTF-8?B?UsOpc2VydmF0aW9uIGNvbmZpcm3DqWU=?=");
	mime_buf_free(&b);
}

static void test_header_long_split_on_chars(void **state)
{
	struct mime_buf b = {0};
	char value[400] = "";
	char *p, *line;

	for (int i = 0; i < 60; i++)
		strcat(value, "é"); /* 120 bytes: three words */
	assert_int_equal(mime_encode_header(&b, value), 0);
	/* every word at most 75 characters, separated by CRLF SP */
	p = b.data;
	int words = 0;
	while ((line = strsep(&p, "\n")) != NULL) {
		size_t n = strlen(line);
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		if (words)
			assert_int_equal(line[0], ' ');
		assert_true(strlen(line + (words ? 1 : 0)) <= 75);
		words++;
	}
	assert_int_equal(words, 3);
	mime_buf_free(&b);
}

static void test_header_control_becomes_space(void **state)
{
	struct mime_buf b = {0};

	/* CR LF can never start a header: they become spaces */
	assert_int_equal(mime_encode_header(&b, "a\r\nBcc: x@y.z"), 0);
	assert_string_equal(b.data, "a  Bcc: x@y.z");
	mime_buf_free(&b);
	assert_int_equal(mime_encode_header(&b, "Yoga\n\tdoux\x7f"), 0);
	assert_string_equal(b.data, "Yoga  doux ");
	mime_buf_free(&b);
	assert_int_equal(mime_encode_header(&b, "S\xc3\xa9" "ance\n1 h"), 0);
	assert_null(strchr(b.data, '\n'));
	assert_non_null(strstr(b.data, "=?UTF-8?B?"));
	mime_buf_free(&b);
	assert_int_equal(mime_encode_header(&b, "bad \xc3\x28 utf8"),
			 ERR_INVALID);
	mime_buf_free(&b);
}

static void test_qp(void **state)
{
	struct mime_buf b = {0};
	char line[200];

	assert_int_equal(mime_encode_qp(&b, "Café = 3 €  \nfin"), 0);
	assert_string_equal(b.data, "Caf=C3=A9 =3D 3 =E2=82=AC =20\r\nfin\r\n");
	mime_buf_free(&b);
	memset(line, 'x', 150);
	line[150] = '\0';
	assert_int_equal(mime_encode_qp(&b, line), 0);
	/* soft break: 75 chars then '=' */
	assert_int_equal(strcspn(b.data, "\r"), 76);
	assert_int_equal(b.data[75], '=');
	mime_buf_free(&b);
}

static struct mime_mail sample(void)
{
	struct mime_mail m = {
		.from_name = "créneau",
		.from_addr = "no-reply@creneau.example",
		.to_name = "Élodie Brûlé",
		.to_addr = "elodie@example.org",
		.subject = "Votre rendez-vous est confirmé",
		.text = "Bonjour Élodie,\nà bientôt.\n",
		.html = "<p>Bonjour Élodie,</p>\n",
		.message_id = "0b7e6f2a-1111-4222-8333-444455556666@creneau."
			      "example",
		.date_ms = 1795521600000, /* 2026-11-24T12:00:00Z */
		.language = "fr",
	};
	return m;
}

static void test_build_alternative(void **state)
{
	struct mime_mail m = sample();
	struct mime_buf b = {0};

	assert_int_equal(mime_build(&m, &b), 0);
	assert_non_null(strstr(b.data, "From: =?UTF-8?B?Y3LDqW5lYXU=?= "
				       "<no-reply@creneau.example>\r\n"));
	assert_non_null(strstr(b.data, "To: =?UTF-8?B?"));
	assert_non_null(strstr(b.data, " <elodie@example.org>\r\n"));
	assert_non_null(strstr(b.data, "Subject: =?UTF-8?B?"));
	assert_non_null(strstr(b.data, "Date: Tue, 24 Nov 2026 12:00:00 "
				       "+0000\r\n"));
	assert_non_null(strstr(b.data,
			       "Message-ID: <0b7e6f2a-1111-4222-8333-"
			       "444455556666@creneau.example>\r\n"));
	assert_non_null(strstr(b.data, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(b.data, "Content-Type: multipart/alternative"));
	assert_non_null(strstr(b.data, "Content-Type: text/plain; "
				       "charset=UTF-8\r\n"));
	assert_non_null(strstr(b.data, "Content-Type: text/html; "
				       "charset=UTF-8\r\n"));
	assert_non_null(strstr(b.data, "Bonjour =C3=89lodie,\r\n"));
	assert_null(strstr(b.data, "List-Unsubscribe"));
	/* no bare LF anywhere */
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\n')
			assert_int_equal(b.data[i - 1], '\r');
	mime_buf_free(&b);
}

static void test_build_deterministic(void **state)
{
	struct mime_mail m = sample();
	struct mime_buf a = {0}, b = {0};

	assert_int_equal(mime_build(&m, &a), 0);
	assert_int_equal(mime_build(&m, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	mime_buf_free(&a);
	mime_buf_free(&b);
}

static void test_build_unsubscribe_and_attachment(void **state)
{
	struct mime_mail m = sample();
	struct mime_attachment att = {
		.content_type = "text/calendar; method=REQUEST",
		.filename = "rendez-vous.ics",
		.data = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
		.len = 32,
	};
	struct mime_buf b = {0};

	m.list_unsubscribe = "https://creneau.example/u?t=abc";
	m.one_click = true;
	m.attachment = &att;
	assert_int_equal(mime_build(&m, &b), 0);
	assert_non_null(strstr(b.data, "List-Unsubscribe: "
				       "<https://creneau.example/u?t=abc>\r\n"));
	assert_non_null(strstr(b.data, "List-Unsubscribe-Post: "
				       "List-Unsubscribe=One-Click\r\n"));
	assert_non_null(strstr(b.data, "Content-Type: multipart/mixed"));
	assert_non_null(strstr(b.data, "Content-Type: text/calendar; "
				       "method=REQUEST; charset=UTF-8; "
				       "name=\"rendez-vous.ics\"\r\n"));
	assert_non_null(strstr(b.data, "Content-Disposition: attachment; "
				       "filename=\"rendez-vous.ics\"\r\n"));
	assert_non_null(strstr(b.data, "QkVHSU46VkNBTEVOREFSDQpFTkQ6VkNBTEVOREFSDQo=\r\n"));
	mime_buf_free(&b);
}

static void test_build_rejects_bad_input(void **state)
{
	struct mime_mail m = sample();
	struct mime_buf b = {0};

	m.to_addr = "victim@example.org>\r\nBcc: <x@y.z";
	assert_int_equal(mime_build(&m, &b), ERR_INVALID);
	m = sample();
	m.list_unsubscribe = "https://x> <y";
	assert_int_equal(mime_build(&m, &b), ERR_INVALID);
	m = sample();
	m.text = NULL;
	assert_int_equal(mime_build(&m, &b), ERR_INVALID);
	mime_buf_free(&b);
}

static void test_build_control_in_subject_and_name(void **state)
{
	struct mime_mail m = sample();
	struct mime_buf b = {0};

	m.subject = "hi\r\nBcc: x@y.z";
	m.to_name = "Jo\tDoe\n";
	assert_int_equal(mime_build(&m, &b), 0);
	assert_non_null(strstr(b.data, "\r\nSubject: hi  Bcc: x@y.z\r\n"));
	assert_non_null(strstr(b.data, "\r\nTo: \"Jo Doe \" <"));
	assert_null(strstr(b.data, "\r\nBcc:"));
	mime_buf_free(&b);
}

static void test_restamp_date(void **state)
{
	struct mime_mail m = sample();
	struct mime_buf b = {0};
	size_t len;

	assert_int_equal(mime_build(&m, &b), 0);
	len = b.len;
	/* 2027-03-27T07:00:00Z */
	assert_int_equal(mime_restamp_date(b.data, b.len, 1806130800000), 0);
	assert_int_equal(b.len, len);
	assert_non_null(strstr(b.data, "\r\nDate: Sat, 27 Mar 2027 07:00:00 "
				       "+0000\r\nMessage-ID: <"));
	assert_null(strstr(b.data, "Nov 2026"));
	mime_buf_free(&b);
	char no_date[] = "From: a@b.cd\r\nSubject: x\r\n\r\nDate: "
			 "Tue, 24 Nov 2026 12:00:00 +0000\r\n";
	assert_int_equal(mime_restamp_date(no_date, strlen(no_date), 0),
			 ERR_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address),
		cmocka_unit_test(test_header_ascii_kept),
		cmocka_unit_test(test_header_encoded_word),
		cmocka_unit_test(test_header_long_split_on_chars),
		cmocka_unit_test(test_header_control_becomes_space),
		cmocka_unit_test(test_qp),
		cmocka_unit_test(test_build_alternative),
		cmocka_unit_test(test_build_deterministic),
		cmocka_unit_test(test_build_unsubscribe_and_attachment),
		cmocka_unit_test(test_build_rejects_bad_input),
		cmocka_unit_test(test_build_control_in_subject_and_name),
		cmocka_unit_test(test_restamp_date),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
