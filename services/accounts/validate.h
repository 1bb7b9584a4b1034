/* validate.h - the accounts service's field rules: e-mail, password, phone,
 * SIRET, reference lists. */
#ifndef ACCOUNTS_VALIDATE_H
#define ACCOUNTS_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include "error.h"

#define VALIDATE_EMAIL_MAX    254
#define VALIDATE_PHONE_MAX    16 /* "+" and 15 digits */
#define VALIDATE_PASSWORD_MIN 9	 /* characters, as the policies advise */
#define VALIDATE_PASSWORD_MAX                                                  \
	256 /* bytes; argon2id takes any length, we do not */
#define VALIDATE_NAME_MAX    100
#define VALIDATE_ADDRESS_MAX 300
#define VALIDATE_CODE_MAX    64 /* specialty and region codes */

/*
 * Every function here is pure and thread-safe. Those that fail return
 * ERR_INVALID (ERR_TOO_LARGE for an oversized value) and, when reason_out is
 * not NULL, set it to a static English sentence for the 400 reply.
 */

/*
 * validate_email - trims surrounding blanks, lower-cases, and checks the
 * shape local@domain.tld (ASCII only). The normalised address goes to out
 * (n >= VALIDATE_EMAIL_MAX + 1).
 */
int validate_email(const char *in, char *out, size_t n,
		   const char **reason_out) WARN_UNUSED;

/*
 * validate_password - at least 9 characters mixing letters, digits and
 * symbols; at most VALIDATE_PASSWORD_MAX bytes; must not contain the
 * e-mail's local part (email may be NULL) nor be a common password.
 */
int validate_password(const char *password, const char *email,
		      const char **reason_out) WARN_UNUSED;

/* validate_is_common_password - whether pw (any case) is on the shipped
 * list of common passwords. */
bool validate_is_common_password(const char *pw);

/*
 * validate_phone - "" stays "" (no phone); otherwise spaces, dots, dashes
 * and brackets are dropped, "00" becomes "+", a French national number
 * (0 and 9 digits) becomes +33..., and the result must be E.164. out must
 * hold VALIDATE_PHONE_MAX + 1 bytes.
 */
int validate_phone(const char *in, char *out, size_t n,
		   const char **reason_out) WARN_UNUSED;

/* validate_siret - 14 digits with a valid Luhn key (and La Poste's
 * establishments, whose key is the digit sum modulo 5). */
bool validate_siret(const char *siret);

/*
 * validate_text - valid UTF-8, no control characters (newlines allowed when
 * multiline), at most max bytes; required refuses an empty or blank value.
 */
int validate_text(const char *text, size_t max, bool required, bool multiline,
		  const char **reason_out) WARN_UNUSED;

/* validate_postcode - five digits. */
bool validate_postcode(const char *postcode);

/* validate_language - an ISO 639-1 code: two lower-case letters. */
bool validate_language(const char *code);

/*
 * validate_mail_language - an account's preferred language, the one its
 * mails are written in: "fr" or "en" (exactly); "" gives "fr". The value to
 * store (a static string) in *out; ERR_INVALID with a reason otherwise.
 */
int validate_mail_language(const char *in, const char **out,
			   const char **reason_out) WARN_UNUSED;

/*
 * validate_slug - lower case, French accents folded, every run of other
 * characters one "-": "Massage bien-être" gives "massage-bien-etre". out
 * has n bytes; a longer result is cut (and will match nothing).
 */
void validate_slug(const char *in, char *out, size_t n);

/* One entry of a reference list: code (a slug) and French name. */
struct validate_ref {
	const char *code;
	const char *name;
};

/*
 * validate_specialty / validate_region - the canonical entry for a code or
 * a name given in any case, with or without accents; NULL when unknown.
 */
const struct validate_ref *validate_specialty(const char *in);
const struct validate_ref *validate_region(const char *in);

/* The lists themselves (static storage), for GET /v1/specialties|regions. */
const struct validate_ref *validate_specialties(size_t *n_out);
const struct validate_ref *validate_regions(size_t *n_out);

/* validate_uuid - the textual form of a UUID (any version). */
bool validate_uuid(const char *text);

#endif
