/* validate.c - field rules of the accounts service; pure functions, no I/O. */
#include "validate.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern const char *const accounts_common_passwords[];
extern const size_t accounts_common_passwords_count;

static const struct validate_ref specialties[] = {
    {"acupression", "Acupression"},
    {"aromatherapie", "Aromathérapie"},
    {"art-therapie", "Art-thérapie"},
    {"ayurveda", "Ayurveda"},
    {"coaching-de-vie", "Coaching de vie"},
    {"do-in", "Do-in"},
    {"drainage-lymphatique", "Drainage lymphatique"},
    {"energetique-chinoise", "Énergétique chinoise"},
    {"fasciatherapie", "Fasciathérapie"},
    {"fleurs-de-bach", "Fleurs de Bach"},
    {"gemmotherapie", "Gemmothérapie"},
    {"hypnose", "Hypnose"},
    {"kinesiologie", "Kinésiologie"},
    {"luminotherapie", "Luminothérapie"},
    {"massage-bien-etre", "Massage bien-être"},
    {"meditation", "Méditation"},
    {"musicotherapie", "Musicothérapie"},
    {"naturopathie", "Naturopathie"},
    {"nutrition", "Nutrition"},
    {"phytotherapie", "Phytothérapie"},
    {"pilates", "Pilates"},
    {"qi-gong", "Qi gong"},
    {"reflexologie", "Réflexologie"},
    {"reiki", "Reiki"},
    {"relaxation", "Relaxation"},
    {"shiatsu", "Shiatsu"},
    {"sonotherapie", "Sonothérapie"},
    {"sophrologie", "Sophrologie"},
    {"tai-chi", "Tai-chi"},
    {"yoga", "Yoga"},
};

/* The 18 regions of France (13 metropolitan, 5 overseas). */
static const struct validate_ref regions[] = {
    {"auvergne-rhone-alpes", "Auvergne-Rhône-Alpes"},
    {"bourgogne-franche-comte", "Bourgogne-Franche-Comté"},
    {"bretagne", "Bretagne"},
    {"centre-val-de-loire", "Centre-Val de Loire"},
    {"corse", "Corse"},
    {"grand-est", "Grand Est"},
    {"guadeloupe", "Guadeloupe"},
    {"guyane", "Guyane"},
    {"hauts-de-france", "Hauts-de-France"},
    {"ile-de-france", "Île-de-France"},
    {"la-reunion", "La Réunion"},
    {"martinique", "Martinique"},
    {"mayotte", "Mayotte"},
    {"normandie", "Normandie"},
    {"nouvelle-aquitaine", "Nouvelle-Aquitaine"},
    {"occitanie", "Occitanie"},
    {"pays-de-la-loire", "Pays de la Loire"},
    {"provence-alpes-cote-d-azur", "Provence-Alpes-Côte d'Azur"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int refuse(const char **reason_out, const char *reason, int code)
{
	if (reason_out)
		*reason_out = reason;
	return code;
}

static bool is_domain_label_char(char c)
{
	return isalnum((unsigned char)c) || c == '-';
}

static bool is_local_char(char c)
{
	return isalnum((unsigned char)c) ||
	       (c && strchr(".!#$%&'*+/=?^_`{|}~-", c));
}

static bool domain_ok(const char *d)
{
	const char *label = d, *last_label = NULL;
	size_t len;

	for (;;) {
		const char *end = strchr(label, '.');
		len = end ? (size_t)(end - label) : strlen(label);
		if (len == 0 || len > 63 || label[0] == '-' ||
		    label[len - 1] == '-')
			return false;
		for (size_t i = 0; i < len; i++)
			if (!is_domain_label_char(label[i]))
				return false;
		last_label = label;
		if (!end)
			break;
		label = end + 1;
	}
	if (last_label == d || len < 2)
		return false; /* needs a dot and a TLD of two letters or more */
	for (size_t i = 0; i < len; i++)
		if (!isalpha((unsigned char)last_label[i]))
			return false;
	return true;
}

int validate_email(const char *in, char *out, size_t n, const char **reason_out)
{
	const char *start = in, *end, *at;
	size_t len;

	while (*start == ' ' || *start == '\t')
		start++;
	end = start + strlen(start);
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	len = (size_t)(end - start);
	if (len == 0)
		return refuse(reason_out, "is required", ERR_INVALID);
	if (len > VALIDATE_EMAIL_MAX || len + 1 > n)
		return refuse(reason_out, "is too long", ERR_TOO_LARGE);
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)start[i]);
	out[len] = '\0';
	at = strchr(out, '@');
	if (!at || strchr(at + 1, '@') || at == out || at - out > 64)
		return refuse(reason_out, "is not an e-mail address",
			      ERR_INVALID);
	for (const char *p = out; p < at; p++)
		if (!is_local_char(*p))
			return refuse(reason_out, "is not an e-mail address",
				      ERR_INVALID);
	if (out[0] == '.' || at[-1] == '.' || strstr(out, ".."))
		return refuse(reason_out, "is not an e-mail address",
			      ERR_INVALID);
	if (!domain_ok(at + 1))
		return refuse(reason_out, "is not an e-mail address",
			      ERR_INVALID);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool on_list(const char *lower)
{
	return bsearch(&lower, accounts_common_passwords,
		       accounts_common_passwords_count, sizeof(char *),
		       cmp_str) != NULL;
}

static char unleet(char c)
{
	switch (c) {
	case '0':
		return 'o';
	case '1':
	case '!':
		return 'i';
	case '3':
		return 'e';
	case '4':
	case '@':
		return 'a';
	case '5':
	case '$':
		return 's';
	case '7':
		return 't';
	default:
		return c;
	}
}

/*
 * The word under the decoration: "P@ssw0rd123!" is "password", "Azerty1!"
 * is "azerty". Digits and symbols inside the word are read as letters;
 * those around it are dropped.
 */
static void core_word(const char *lower, char *out, size_t n)
{
	size_t len = strlen(lower), first = 0, last, o = 0;

	while (first < len && !isalpha((unsigned char)lower[first]))
		first++;
	last = len;
	while (last > first && !isalpha((unsigned char)lower[last - 1]))
		last--;
	for (size_t i = first; i < last && o + 1 < n; i++)
		out[o++] = unleet(lower[i]);
	out[o] = '\0';
}

bool validate_is_common_password(const char *pw)
{
	char lower[VALIDATE_PASSWORD_MAX + 1], core[VALIDATE_PASSWORD_MAX + 1];
	size_t len = strlen(pw);

	if (len > VALIDATE_PASSWORD_MAX)
		return false;
	for (size_t i = 0; i <= len; i++)
		lower[i] = (char)tolower((unsigned char)pw[i]);
	if (on_list(lower))
		return true;
	core_word(lower, core, sizeof(core));
	return core[0] && on_list(core);
}

/* Case-insensitive strstr for ASCII. */
static bool contains_nocase(const char *hay, const char *needle, size_t nlen)
{
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, nlen) == 0)
			return true;
	return false;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

int validate_password(const char *password, const char *email,
		      const char **reason_out)
{
	bool letter = false, digit = false, symbol = false;

	if (strlen(password) > VALIDATE_PASSWORD_MAX)
		return refuse(reason_out, "is too long", ERR_TOO_LARGE);
	if (utf8_chars(password) < VALIDATE_PASSWORD_MIN)
		return refuse(reason_out, "must have at least 9 characters",
			      ERR_INVALID);
	for (const char *p = password; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (isalpha(c) || c >= 0x80)
			letter = true;
		else if (isdigit(c))
			digit = true;
		else
			symbol = true;
	}
	if (!letter || !digit || !symbol)
		return refuse(reason_out,
			      "must mix letters, digits and symbols",
			      ERR_INVALID);
	if (email && *email) {
		const char *at = strchr(email, '@');
		size_t local = at ? (size_t)(at - email) : strlen(email);
		if (local >= 3 && contains_nocase(password, email, local))
			return refuse(reason_out,
				      "must not contain the e-mail address",
				      ERR_INVALID);
	}
	if (validate_is_common_password(password))
		return refuse(reason_out, "is too common", ERR_INVALID);
	return 0;
}

int validate_phone(const char *in, char *out, size_t n, const char **reason_out)
{
	char digits[32];
	size_t d = 0;
	bool plus = false;

	if (strlen(in) > 40)
		return refuse(reason_out, "is too long", ERR_TOO_LARGE);
	for (const char *p = in; *p; p++) {
		if (*p == '+' && d == 0 && !plus)
			plus = true;
		else if (isdigit((unsigned char)*p) && d + 1 < sizeof(digits))
			digits[d++] = *p;
		else if (!strchr(" .-()\t", *p))
			return refuse(reason_out,
				      "must be an international number such as "
				      "+33612345678",
				      ERR_INVALID);
	}
	digits[d] = '\0';
	if (!plus && d == 0) {
		if (n)
			out[0] = '\0';
		return 0;
	}
	if (!plus && d > 2 && digits[0] == '0' && digits[1] == '0') {
		memmove(digits, digits + 2, d - 1);
		d -= 2;
		plus = true;
	} else if (!plus && d == 10 && digits[0] == '0') {
		/* a French national number */
		memmove(digits + 2, digits + 1, d);
		digits[0] = '3';
		digits[1] = '3';
		d += 1;
		plus = true;
	}
	if (!plus || d < 7 || d > 15 || digits[0] == '0' || d + 2 > n)
		return refuse(reason_out,
			      "must be an international number such as "
			      "+33612345678",
			      ERR_INVALID);
	out[0] = '+';
	memcpy(out + 1, digits, d + 1);
	return 0;
}

bool validate_siret(const char *siret)
{
	int sum = 0, digit_sum = 0;

	if (strlen(siret) != 14)
		return false;
	for (int i = 0; i < 14; i++) {
		int v;
		if (!isdigit((unsigned char)siret[i]))
			return false;
		v = siret[i] - '0';
		digit_sum += v;
		if (i % 2 == 0) { /* from the right, every second digit */
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	/* La Poste's establishments share SIREN 356000000 and use another key
	 */
	if (strncmp(siret, "356000000", 9) == 0 &&
	    strcmp(siret, "35600000000048") != 0)
		return digit_sum % 5 == 0;
	return sum % 10 == 0;
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_seq(const unsigned char *s)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0) {
		len = 2;
		cp = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3;
		cp = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

int validate_text(const char *text, size_t max, bool required, bool multiline,
		  const char **reason_out)
{
	const unsigned char *p = (const unsigned char *)text;
	bool blank = true;

	if (strlen(text) > max)
		return refuse(reason_out, "is too long", ERR_TOO_LARGE);
	while (*p) {
		size_t len = utf8_seq(p);
		if (len == 0)
			return refuse(reason_out, "is not valid UTF-8",
				      ERR_INVALID);
		if (len == 1 && (*p < 0x20 || *p == 0x7F) &&
		    !(multiline && (*p == '\n' || *p == '\r' || *p == '\t')))
			return refuse(reason_out,
				      "must not contain control characters",
				      ERR_INVALID);
		if (!(len == 1 && isspace(*p)))
			blank = false;
		p += len;
	}
	if (required && blank)
		return refuse(reason_out, "is required", ERR_INVALID);
	return 0;
}

bool validate_postcode(const char *postcode)
{
	if (strlen(postcode) != 5)
		return false;
	for (int i = 0; i < 5; i++)
		if (!isdigit((unsigned char)postcode[i]))
			return false;
	return true;
}

bool validate_language(const char *code)
{
	return strlen(code) == 2 && islower((unsigned char)code[0]) &&
	       islower((unsigned char)code[1]) &&
	       isalpha((unsigned char)code[0]) &&
	       isalpha((unsigned char)code[1]);
}

int validate_mail_language(const char *in, const char **out,
			   const char **reason_out)
{
	if (!*in || strcmp(in, "fr") == 0) {
		*out = "fr";
		return 0;
	}
	if (strcmp(in, "en") == 0) {
		*out = "en";
		return 0;
	}
	*reason_out = "must be \"fr\" or \"en\"";
	return ERR_INVALID;
}

/* ASCII folding of U+00C0..U+00FF (second byte of C3 xx). */
static const char *const latin1_fold[64] = {
    "a", "a", "a", "a",	 "a",  "a",  "ae", "c", "e", "e", "e",	"e", "i",
    "i", "i", "i", "d",	 "n",  "o",  "o",  "o", "o", "o", NULL, "o", "u",
    "u", "u", "u", "y",	 "th", "ss", "a",  "a", "a", "a", "a",	"a", "ae",
    "c", "e", "e", "e",	 "e",  "i",  "i",  "i", "i", "d", "n",	"o", "o",
    "o", "o", "o", NULL, "o",  "u",  "u",  "u", "u", "y", "th", "y",
};

void validate_slug(const char *in, char *out, size_t n)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;
	bool dash = false;

	if (n == 0)
		return;
	while (*p && o + 1 < n) {
		const char *piece = NULL;
		char one[2] = {0, 0};
		if (isalnum(*p)) {
			one[0] = (char)tolower(*p);
			piece = one;
			p++;
		} else if (p[0] == 0xC3 && p[1] >= 0x80 && p[1] <= 0xBF) {
			piece = latin1_fold[p[1] - 0x80];
			p += 2;
		} else if (p[0] == 0xC5 && (p[1] == 0x92 || p[1] == 0x93)) {
			piece = "oe";
			p += 2;
		} else {
			size_t len = utf8_seq(p);
			p += len ? len : 1;
		}
		if (!piece) {
			dash = o > 0;
			continue;
		}
		if (dash && o + 1 < n)
			out[o++] = '-';
		dash = false;
		for (; *piece && o + 1 < n; piece++)
			out[o++] = *piece;
	}
	out[o] = '\0';
}

static const struct validate_ref *lookup(const struct validate_ref *list,
					 size_t n, const char *in)
{
	char slug[VALIDATE_CODE_MAX + 2];

	if (strlen(in) > 2 * VALIDATE_CODE_MAX)
		return NULL;
	validate_slug(in, slug, sizeof(slug));
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].code, slug) == 0)
			return &list[i];
	return NULL;
}

const struct validate_ref *validate_specialty(const char *in)
{
	return lookup(specialties, COUNT(specialties), in);
}

const struct validate_ref *validate_region(const char *in)
{
	return lookup(regions, COUNT(regions), in);
}

const struct validate_ref *validate_specialties(size_t *n_out)
{
	*n_out = COUNT(specialties);
	return specialties;
}

const struct validate_ref *validate_regions(size_t *n_out)
{
	*n_out = COUNT(regions);
	return regions;
}

bool validate_uuid(const char *text)
{
	if (strlen(text) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (text[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)text[i])) {
			return false;
		}
	}
	return true;
}
