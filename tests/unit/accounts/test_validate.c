/* test_validate.c - the accounts field rules: e-mail, password, phone, SIRET,
 * reference lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* the module under test is a service file, compiled in here */
#include "../../../services/accounts/common_passwords.c"
#include "../../../services/accounts/validate.c"

static void test_email_normalised(void **state)
{
	char out[VALIDATE_EMAIL_MAX + 1];

	assert_int_equal(validate_email("  Alice.Martin@Example.COM ", out,
					sizeof(out), NULL),
			 0);
	assert_string_equal(out, "alice.martin@example.com");
	assert_int_equal(
	    validate_email("a+tag@sub.example.fr", out, sizeof(out), NULL), 0);
}

static void test_email_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "plain",
	    "@example.com",
	    "a@",
	    "a@b",
	    "a@b.c",
	    "a@@b.com",
	    "a b@example.com",
	    "a@-b.com",
	    "a@b-.com",
	    "a..b@example.com",
	    ".a@example.com",
	    "a.@example.com",
	    "a@example.c0m",
	    "é@example.com",
	    "a@exa_mple.com",
	};
	char out[VALIDATE_EMAIL_MAX + 1], big[400];
	const char *reason = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    validate_email(bad[i], out, sizeof(out), &reason),
		    ERR_INVALID);
	assert_non_null(reason);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + 300, "@example.com", 13);
	assert_int_equal(validate_email(big, out, sizeof(out), NULL),
			 ERR_TOO_LARGE);
}

static void test_password_rules(void **state)
{
	const char *reason;

	assert_int_equal(validate_password("Tr3s-b0n-mdp!", "x@y.fr", NULL), 0);
	assert_int_equal(validate_password("Court1!", NULL, &reason),
			 ERR_INVALID);
	assert_string_equal(reason, "must have at least 9 characters");
	assert_int_equal(validate_password("lettersonly!", NULL, NULL),
			 ERR_INVALID); /* no digit */
	assert_int_equal(validate_password("123456789!", NULL, NULL),
			 ERR_INVALID); /* no letter */
	assert_int_equal(validate_password("abcdefgh12", NULL, NULL),
			 ERR_INVALID); /* no symbol */
	/* contains the e-mail's local part, in any case */
	assert_int_equal(
	    validate_password("xJeanne77!", "jeanne@example.fr", &reason),
	    ERR_INVALID);
	assert_string_equal(reason, "must not contain the e-mail address");
	/* accents count as letters, and characters, not bytes, are counted */
	assert_int_equal(validate_password("éléphant7!", NULL, NULL), 0);
	assert_int_equal(validate_password("éééé7!", NULL, NULL), ERR_INVALID);
}

static void test_common_passwords(void **state)
{
	const char *reason;

	/* the list is sorted: bsearch depends on it */
	for (size_t i = 1; i < accounts_common_passwords_count; i++)
		assert_true(strcmp(accounts_common_passwords[i - 1],
				   accounts_common_passwords[i]) < 0);
	assert_true(validate_is_common_password("Azerty123!"));
	assert_true(validate_is_common_password("P@ssw0rd2024"));
	assert_true(validate_is_common_password("Soleil!!99"));
	assert_true(validate_is_common_password("MOTDEPASSE1!"));
	assert_false(validate_is_common_password("Tr3s-b0n-mdp!"));
	assert_int_equal(validate_password("Azerty123!", NULL, &reason),
			 ERR_INVALID);
	assert_string_equal(reason, "is too common");
}

static void test_phone(void **state)
{
	char out[VALIDATE_PHONE_MAX + 1];

	assert_int_equal(validate_phone("", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "");
	assert_int_equal(
	    validate_phone("06 12 34 56 78", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "+33612345678");
	assert_int_equal(validate_phone("+33 (0)6", out, sizeof(out), NULL),
			 ERR_INVALID);
	assert_int_equal(
	    validate_phone("0033 1.45.67.89.01", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "+33145678901");
	assert_int_equal(
	    validate_phone("+44 20 7946 0958", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "+442079460958");
	assert_int_equal(validate_phone("12345", out, sizeof(out), NULL),
			 ERR_INVALID);
	assert_int_equal(validate_phone("+33 6 12 ab", out, sizeof(out), NULL),
			 ERR_INVALID);
	assert_int_equal(
	    validate_phone("+1234567890123456", out, sizeof(out), NULL),
	    ERR_INVALID);
}

static void test_siret(void **state)
{
	assert_true(validate_siret("73282932000074"));
	assert_true(
	    validate_siret("35600000000048")); /* La Poste, head office */
	assert_true(validate_siret("35600000049837")); /* La Poste: sum % 5 */
	assert_false(validate_siret("73282932000075"));
	assert_false(validate_siret("7328293200007"));
	assert_false(validate_siret("732829320000745"));
	assert_false(validate_siret("7328293200007a"));
	assert_false(validate_siret(""));
}

static void test_text(void **state)
{
	assert_int_equal(validate_text("Élodie", 100, true, false, NULL), 0);
	assert_int_equal(validate_text("  ", 100, true, false, NULL),
			 ERR_INVALID);
	assert_int_equal(validate_text("", 100, false, false, NULL), 0);
	assert_int_equal(validate_text("a\nb", 100, false, false, NULL),
			 ERR_INVALID);
	assert_int_equal(validate_text("a\nb", 100, false, true, NULL), 0);
	assert_int_equal(validate_text("\xC3(", 100, false, false, NULL),
			 ERR_INVALID);
	assert_int_equal(validate_text("\xED\xA0\x80", 100, false, false, NULL),
			 ERR_INVALID); /* a surrogate */
	assert_int_equal(validate_text("abcdef", 5, false, false, NULL),
			 ERR_TOO_LARGE);
}

static void test_slug_and_lists(void **state)
{
	char out[64];
	size_t n;

	validate_slug("Massage bien-être", out, sizeof(out));
	assert_string_equal(out, "massage-bien-etre");
	validate_slug("  Provence-Alpes-Côte d'Azur ", out, sizeof(out));
	assert_string_equal(out, "provence-alpes-cote-d-azur");
	validate_slug("ŒUVRE Ça", out, sizeof(out));
	assert_string_equal(out, "oeuvre-ca");
	assert_string_equal(validate_specialty("Kinésiologie")->code,
			    "kinesiologie");
	assert_string_equal(validate_specialty("kinesiologie")->name,
			    "Kinésiologie");
	assert_string_equal(validate_specialty("ART-THÉRAPIE")->code,
			    "art-therapie");
	assert_null(validate_specialty("chirurgie"));
	assert_string_equal(validate_region("Île-de-France")->code,
			    "ile-de-france");
	assert_null(validate_region("bavière"));
	validate_regions(&n);
	assert_int_equal(n, 18);
	validate_specialties(&n);
	assert_true(n >= 12);
}

static void test_misc(void **state)
{
	assert_true(validate_postcode("75011"));
	assert_false(validate_postcode("7501"));
	assert_false(validate_postcode("7501a"));
	assert_true(validate_language("fr"));
	assert_false(validate_language("FR"));
	assert_false(validate_language("fra"));
	assert_true(validate_uuid("6ae5336c-69b0-497d-8c94-984cd0c4f876"));
	assert_false(validate_uuid("6ae5336c-69b0-497d-8c94-984cd0c4f87"));
	assert_false(validate_uuid("6ae5336c-69b0-497d-8c94-984cd0c4f87g"));
	assert_false(validate_uuid("'; DROP TABLE accounts; --"));
}

static void test_mail_language(void **state)
{
	const char *out = NULL, *reason = NULL;

	assert_int_equal(validate_mail_language("", &out, &reason), 0);
	assert_string_equal(out, "fr");
	assert_int_equal(validate_mail_language("fr", &out, &reason), 0);
	assert_string_equal(out, "fr");
	assert_int_equal(validate_mail_language("en", &out, &reason), 0);
	assert_string_equal(out, "en");
	out = NULL;
	assert_int_equal(validate_mail_language("EN", &out, &reason),
			 ERR_INVALID);
	assert_non_null(reason);
	assert_null(out);
	assert_int_equal(validate_mail_language("de", &out, &reason),
			 ERR_INVALID);
	assert_int_equal(validate_mail_language("en ", &out, &reason),
			 ERR_INVALID);
	assert_int_equal(validate_mail_language("english", &out, &reason),
			 ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_email_normalised),
	    cmocka_unit_test(test_email_refused),
	    cmocka_unit_test(test_password_rules),
	    cmocka_unit_test(test_common_passwords),
	    cmocka_unit_test(test_phone),
	    cmocka_unit_test(test_siret),
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_slug_and_lists),
	    cmocka_unit_test(test_misc),
	    cmocka_unit_test(test_mail_language),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
