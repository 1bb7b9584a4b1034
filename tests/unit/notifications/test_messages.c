/* test_messages.c - templates, message builders, the .ics, backoff, unsubscribe tokens, the file transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>

#include "ics.h"
#include "jobs.h"
#include "messages.h"
#include "secure.h"
#include "smtp.h"
#include "templates.h"

static const struct messages_config cfg = {
	.from_addr = "no-reply@creneau.test",
	.from_name = "créneau",
	.public_url = "https://creneau.test",
};

static const struct messages_party anais = {
	.email = "anais@example.org", .first_name = "Anaïs",
	.last_name = "Dupré", .language = "fr"};
static const struct messages_party john = {
	.email = "john@example.org", .first_name = "John",
	.last_name = "Smith", .language = "en"};

/* Every template of the table renders with the variables its builder
 * gives, in both languages, and every kind exists in French. */
static void test_every_template_renders(void **state)
{
	const struct templates_var all[] = {
		{"first_name", "A"}, {"link", "L"}, {"subject", "S"},
		{"body", "B"}, {"practitioner_name", "P"},
		{"client_name", "C"}, {"offering", "O"}, {"duration", "60"},
		{"when", "W"}, {"old_when", "OW"}, {"location", "LOC"},
		{"reason", "R"}, {"name", "N"}, {"email", "E"},
		{"message", "M"}, {"unsubscribe_link", "U"},
	};
	size_t n = sizeof(all) / sizeof(all[0]);

	assert_true(templates_count >= 20);
	for (size_t i = 0; i < templates_count; i++) {
		struct templates_rendered r;
		const struct templates_entry *e = &templates_table[i];

		assert_int_equal(templates_render(e->kind, e->lang, all, n, &r),
				 0);
		assert_string_equal(r.lang, e->lang);
		assert_non_null(r.subject);
		assert_true(strlen(r.subject) > 0);
		assert_null(strchr(r.subject, '\n'));
		assert_non_null(r.text);
		assert_non_null(r.html);
		assert_null(strstr(r.text, "{{"));
		assert_null(strstr(r.html, "{{"));
		templates_rendered_free(&r);
		/* a French version of every kind */
		r = (struct templates_rendered){0};
		assert_int_equal(templates_render(e->kind, "fr", all, n, &r), 0);
		assert_string_equal(r.lang, "fr");
		templates_rendered_free(&r);
	}
}

static void test_template_errors_and_escaping(void **state)
{
	struct templates_rendered r;
	const struct templates_var vars[] = {{"first_name", "<b>&\"'"},
					     {"link", "https://x/?a=1&b=2"}};

	assert_int_equal(templates_render("no_such_kind", "fr", vars, 2, &r),
			 ERR_NOT_FOUND);
	/* a placeholder without a value is a bug, not an empty string */
	assert_int_equal(templates_render("email_verification", "fr", vars, 1,
					  &r),
			 ERR_INVALID);
	assert_int_equal(templates_render("email_verification", "de", vars, 2,
					  &r),
			 0);
	assert_string_equal(r.lang, "fr"); /* French by default */
	assert_non_null(strstr(r.text, "Bonjour <b>&\"',"));
	assert_non_null(strstr(r.html, "Bonjour &lt;b&gt;&amp;&quot;&#39;,"));
	assert_non_null(strstr(r.html, "href=\"https://x/?a=1&amp;b=2\""));
	templates_rendered_free(&r);
	/* contact_forward exists only in French: English falls back */
	const struct templates_var c[] = {{"name", "n"}, {"email", "e"},
					  {"subject", "s"}, {"message", "m"}};
	assert_int_equal(templates_render("contact_forward", "en", c, 4, &r), 0);
	assert_string_equal(r.lang, "fr");
	templates_rendered_free(&r);
}

static void test_verification_mail(void **state)
{
	struct messages_out out;

	assert_int_equal(messages_email_verification(&cfg, &john, "tok_en-1",
						     1795521600000, &out),
			 0);
	assert_string_equal(out.kind, "email_verification");
	assert_string_equal(out.recipient, "john@example.org");
	assert_true(strlen(out.id) == 36);
	assert_true(strncmp(out.message_id, out.id, 36) == 0);
	assert_string_equal(out.message_id + 36, "@creneau.test");
	assert_non_null(strstr(out.mail.data,
			       "Subject: Confirm your e-mail address\r\n"));
	assert_non_null(strstr(out.mail.data, "Content-Language: en\r\n"));
	/* quoted-printable: "=" travels as "=3D" */
	assert_non_null(strstr(out.mail.data,
			       "https://creneau.test/verify-email?token=3Dtok_"
			       "en-1"));
	messages_out_free(&out);
	/* a token that would break the link is refused */
	assert_int_equal(messages_email_verification(&cfg, &john, "a&b",
						     1795521600000, &out),
			 ERR_INVALID);
	struct messages_party bad = john;
	bad.email = "john@@example.org";
	assert_int_equal(messages_password_reset(&cfg, &bad, "tok", 0, &out),
			 ERR_INVALID);
}

static void test_booking_mail_with_ics(void **state)
{
	struct messages_booking b = {
		.booking_id = "7c1d0e55-0000-4000-8000-000000000001",
		.offering_title = "Séance de réflexologie, 1 h",
		.duration_min = 60,
		.start_ms = 1806217200000, /* 2027-03-28T07:00:00Z */
		.end_ms = 1806220800000,
		.when = "dimanche 28 mars 2027 à 09:00",
		.location = "office",
		.ics_sequence = 2,
		.practitioner = &anais,
		.client = &john,
	};
	struct messages_out out;
	struct mime_buf ics = {0};
	const char *p, *end;
	char *raw;
	size_t n;

	assert_int_equal(messages_booking(&cfg, MESSAGES_BOOKING_CANCELLED, &b,
					  &john, 1795521600000, &out),
			 0);
	assert_non_null(strstr(out.mail.data, "multipart/mixed"));
	assert_non_null(strstr(out.mail.data, "Content-Type: text/calendar; "
					      "method=CANCEL; charset=UTF-8; "
					      "name=\"rendez-vous.ics\""));
	/* decode the base64 attachment and look at the iCalendar */
	p = strstr(out.mail.data, "Content-Transfer-Encoding: base64\r\n\r\n");
	assert_non_null(p);
	p += strlen("Content-Transfer-Encoding: base64\r\n\r\n");
	end = strstr(p, "--");
	assert_non_null(end);
	for (const char *q = p; q < end; q++)
		if (*q != '\r' && *q != '\n')
			assert_int_equal(mime_buf_append(&ics, q, 1), 0);
	raw = calloc(1, ics.len);
	assert_int_equal(sodium_base642bin((unsigned char *)raw, ics.len,
					   ics.data, ics.len, NULL, &n, NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	raw[n] = '\0';
	assert_non_null(strstr(raw, "METHOD:CANCEL\r\n"));
	assert_non_null(strstr(raw, "UID:7c1d0e55-0000-4000-8000-000000000001"
				    "@creneau.test\r\n"));
	assert_non_null(strstr(raw, "SEQUENCE:2\r\n"));
	assert_non_null(strstr(raw, "STATUS:CANCELLED\r\n"));
	assert_non_null(strstr(raw, "DTSTART:20270328T070000Z\r\n"));
	assert_non_null(strstr(raw, "DTEND:20270328T080000Z\r\n"));
	/* libical escapes the comma of the summary */
	assert_non_null(strstr(raw, "SUMMARY:Séance de réflexologie\\, 1 h"));
	assert_non_null(strstr(raw, "ORGANIZER;CN=Anaïs Dupré:mailto:anais@"
				    "example.org"));
	free(raw);
	mime_buf_free(&ics);
	messages_out_free(&out);
}

/* a title with control characters still makes a mail, on one line */
static void test_booking_title_with_controls(void **state)
{
	struct messages_booking b = {
		.booking_id = "7c1d0e55-0000-4000-8000-000000000002",
		.offering_title = "Yoga\ndoux\t1 h",
		.duration_min = 60,
		.start_ms = 1806217200000,
		.end_ms = 1806220800000,
		.when = "dimanche 28 mars 2027 à 09:00",
		.location = "office",
		.practitioner = &anais,
		.client = &john,
	};
	struct messages_out out;
	const char *subject, *end;

	assert_int_equal(messages_booking(&cfg, MESSAGES_BOOKING_CANCELLED, &b,
					  &john, 1795521600000, &out),
			 0);
	subject = strstr(out.mail.data, "\r\nSubject: ");
	end = strstr(out.mail.data, "\r\n\r\n");
	assert_non_null(subject);
	assert_true(subject < end);
	/* every line of the headers is a header or a fold: no bare LF */
	for (const char *p = out.mail.data; p < end; p++)
		if (*p == '\n') {
			assert_int_equal(p[-1], '\r');
			assert_true(p[1] == ' ' ||
				    (p[1] >= 'A' && p[1] <= 'Z'));
		}
	messages_out_free(&out);
}

static void test_ics_rejects_bad_event(void **state)
{
	struct ics_event ev = {.uid = "u@x.y", .summary = "s",
			       .organizer_email = "a@b.cd",
			       .attendee_email = "e@f.gh", .start_ms = 2000,
			       .end_ms = 1000};
	char *out = NULL;

	assert_int_equal(ics_build(&ev, &out), ERR_INVALID);
	ev.end_ms = 3000;
	ev.uid = "";
	assert_int_equal(ics_build(&ev, &out), ERR_INVALID);
	ev.uid = "u@x.y";
	assert_int_equal(ics_build(&ev, &out), 0);
	assert_non_null(strstr(out, "BEGIN:VCALENDAR\r\n"));
	assert_non_null(strstr(out, "METHOD:REQUEST\r\n"));
	ics_free(out);
}

static void test_format_when(void **state)
{
	struct messages_local_time t = {2027, 3, 28, 7, 9, 5};
	char out[128];

	messages_format_when("fr", &t, out, sizeof(out));
	assert_string_equal(out, "dimanche 28 mars 2027 à 09:05");
	messages_format_when("en", &t, out, sizeof(out));
	assert_string_equal(out, "Sunday 28 March 2027 at 09:05");
}

static void test_newsletter_headers(void **state)
{
	struct messages_out out;

	assert_int_equal(messages_newsletter(&cfg, &anais, "Nouveautés",
					     "Texte\n",
					     "https://creneau.test/newsletter-"
					     "unsubscribe?token=x.y",
					     "https://creneau.test/v1/newsletter"
					     "/unsubscribe?token=x.y",
					     0, &out),
			 0);
	assert_non_null(strstr(out.mail.data,
			       "List-Unsubscribe: <https://creneau.test/v1/"
			       "newsletter/unsubscribe?token=x.y>\r\n"));
	assert_non_null(strstr(out.mail.data,
			       "List-Unsubscribe-Post: List-Unsubscribe="
			       "One-Click\r\n"));
	/* the text links to the page, whose button POSTs (quoted-printable) */
	assert_non_null(strstr(out.mail.data,
			       "https://creneau.test/newsletter-unsubscribe"
			       "?token=3Dx"));
	messages_out_free(&out);
}

static void test_unsubscribe_token(void **state)
{
	uint8_t key[SECURE_KEY_BYTES] = {1, 2, 3};
	const char *id = "0b7e6f2a-1111-4222-8333-444455556666";
	char token[MESSAGES_UNSUBSCRIBE_TEXT], got[37];

	messages_unsubscribe_token(key, id, token);
	assert_int_equal(strlen(token), 36 + 1 + 32);
	assert_int_equal(messages_unsubscribe_check(key, token, got), 0);
	assert_string_equal(got, id);
	token[40] = token[40] == 'a' ? 'b' : 'a';
	assert_int_equal(messages_unsubscribe_check(key, token, got),
			 ERR_INVALID);
	assert_int_equal(messages_unsubscribe_check(key, "x.y", got),
			 ERR_INVALID);
	assert_int_equal(messages_unsubscribe_check(key, "", got), ERR_INVALID);
	key[0] = 9;
	messages_unsubscribe_token(key, id, token);
	key[0] = 1;
	assert_int_equal(messages_unsubscribe_check(key, token, got),
			 ERR_INVALID);
}

static void test_unsubscribe_subkey(void **state)
{
	uint8_t key[SECURE_KEY_BYTES] = {1, 2, 3};
	uint8_t sub[SECURE_KEY_BYTES], again[SECURE_KEY_BYTES];
	const char *id = "0b7e6f2a-1111-4222-8333-444455556666";
	char token[MESSAGES_UNSUBSCRIBE_TEXT], got[37];

	messages_unsubscribe_key(key, sub);
	messages_unsubscribe_key(key, again);
	assert_memory_equal(sub, again, sizeof(sub));
	assert_memory_not_equal(sub, key, sizeof(sub));
	/* a token MAC'd under the deployment key is no good any more */
	messages_unsubscribe_token(key, id, token);
	assert_int_equal(messages_unsubscribe_check(sub, token, got),
			 ERR_INVALID);
	messages_unsubscribe_token(sub, id, token);
	assert_int_equal(messages_unsubscribe_check(sub, token, got), 0);
	assert_string_equal(got, id);
}

static void test_backoff(void **state)
{
	/* base 1 s: attempt n waits between half and all of 2^(n-1) s */
	for (int a = 1; a <= 6; a++) {
		int64_t full = 1000LL << (a - 1);
		assert_int_equal(jobs_backoff_ms(a, 1000, 3600000, 0),
				 full / 2);
		assert_int_equal(jobs_backoff_ms(a, 1000, 3600000, UINT32_MAX),
				 full / 2 + (int64_t)(UINT32_MAX %
						      (uint32_t)(full / 2 + 1)));
		assert_true(jobs_backoff_ms(a, 1000, 3600000, 12345) <= full);
	}
	/* capped */
	assert_true(jobs_backoff_ms(40, 1000, 3600000, 77) <= 3600000);
	assert_true(jobs_backoff_ms(40, 1000, 3600000, 77) >= 1800000);
	assert_true(jobs_backoff_ms(1000, 30000, 3600000, 5) <= 3600000);
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void test_file_transport_idempotent(void **state)
{
	char dir[] = "/tmp/nt-unit-XXXXXX", url[64], path[128], buf[64];
	struct smtp_transport *t;
	struct smtp_result res;
	struct smtp_options opt = {.url = url};
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof(url), "file://%s/mail", dir);
	assert_int_equal(smtp_open(&t, &opt), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(smtp_send(t, "a@b.cd", "e@f.gh", "id-1",
					   "Subject: x\r\n\r\nhi\r\n", 19, &res),
				 0);
		assert_int_equal(res.outcome, SMTP_SENT);
	}
	snprintf(path, sizeof(path), "%s/mail", dir);
	assert_int_equal(count_files(path), 1);
	snprintf(path, sizeof(path), "%s/mail/id-1.eml", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "Subject: x\r\n");
	fclose(f);
	/* an id that could escape the directory is refused */
	assert_int_equal(smtp_send(t, "a@b.cd", "e@f.gh", "../x", "x", 1,
				   &res),
			 ERR_INVALID);
	smtp_close(t);
	unlink(path);
	snprintf(path, sizeof(path), "%s/mail", dir);
	rmdir(path);
	rmdir(dir);
	opt.url = "ftp://x";
	assert_int_equal(smtp_open(&t, &opt), ERR_INVALID);
}

static void test_smtp_refused_is_temporary(void **state)
{
	struct smtp_transport *t;
	struct smtp_result res;
	/* port 1 on loopback: nothing listens, the connection is refused */
	struct smtp_options opt = {.url = "smtp://127.0.0.1:1",
				   .timeout_ms = 2000};

	assert_int_equal(smtp_open(&t, &opt), 0);
	assert_int_equal(smtp_send(t, "a@b.cd", "e@f.gh", "id-2",
				   "Subject: x\r\n\r\nhi\r\n", 19, &res),
			 0);
	assert_int_equal(res.outcome, SMTP_RETRY);
	assert_true(strlen(res.reason) > 0);
	smtp_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_template_renders),
		cmocka_unit_test(test_template_errors_and_escaping),
		cmocka_unit_test(test_verification_mail),
		cmocka_unit_test(test_booking_mail_with_ics),
		cmocka_unit_test(test_booking_title_with_controls),
		cmocka_unit_test(test_ics_rejects_bad_event),
		cmocka_unit_test(test_format_when),
		cmocka_unit_test(test_newsletter_headers),
		cmocka_unit_test(test_unsubscribe_token),
		cmocka_unit_test(test_unsubscribe_subkey),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_file_transport_idempotent),
		cmocka_unit_test(test_smtp_refused_is_temporary),
	};

	if (secure_init())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
