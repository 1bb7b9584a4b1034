/* templates.h - mail templates (templates/<lang>/<kind>.tmpl, embedded at build time) and their rendering. */
#ifndef CRENEAU_NOTIFICATIONS_TEMPLATES_H
#define CRENEAU_NOTIFICATIONS_TEMPLATES_H

#include <stddef.h>
#include "error.h"

/* One embedded template file. */
struct templates_entry {
	const char *lang; /* "fr", "en" */
	const char *kind; /* "email_verification", ... */
	const char *text;
};

extern const struct templates_entry templates_table[];
extern const size_t templates_count;

/* A value for a {{name}} placeholder. Borrowed. */
struct templates_var {
	const char *name;
	const char *value;
};

/* A rendered message; strings malloc'd, freed by templates_rendered_free. */
struct templates_rendered {
	char *subject;
	char *text;
	char *html; /* NULL when the template has no html section */
	const char *lang; /* the language actually used (static) */
};

/*
 * templates_render - fills the template of kind in lang ("en", else French,
 * the default; French too when no English version exists) with vars.
 * A template file is "subject: ...\n--- text\n...\n--- html\n...": the
 * subject and the text get the values as they are, the HTML gets them
 * escaped. ERR_NOT_FOUND for an unknown kind, ERR_INVALID when a
 * placeholder has no value (the template and its caller disagree), ERR_NOMEM.
 * Thread-safe.
 */
int templates_render(const char *kind, const char *lang,
		     const struct templates_var *vars, size_t n,
		     struct templates_rendered *out) WARN_UNUSED;

/* templates_rendered_free - frees the strings; the struct is emptied. */
void templates_rendered_free(struct templates_rendered *r);

/* templates_lang - "en" when lang asks for English, else "fr". */
const char *templates_lang(const char *lang);

#endif
