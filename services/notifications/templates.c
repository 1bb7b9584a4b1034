/* templates.c - mail templates (embedded at build time) and their rendering. */
#include "templates.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

const char *templates_lang(const char *lang)
{
	return lang && strncmp(lang, "en", 2) == 0 ? "en" : "fr";
}

static const char *find(const char *kind, const char *lang)
{
	for (size_t i = 0; i < templates_count; i++)
		if (strcmp(templates_table[i].kind, kind) == 0 &&
		    strcmp(templates_table[i].lang, lang) == 0)
			return templates_table[i].text;
	return NULL;
}

static const char *lookup(const struct templates_var *vars, size_t n,
			  const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(vars[i].name) == len &&
		    memcmp(vars[i].name, name, len) == 0)
			return vars[i].value ? vars[i].value : "";
	return NULL;
}

static int append_escaped(struct mime_buf *out, const char *v)
{
	int rc = 0;

	for (; *v && !rc; v++) {
		switch (*v) {
		case '<': rc = mime_buf_puts(out, "&lt;"); break;
		case '>': rc = mime_buf_puts(out, "&gt;"); break;
		case '&': rc = mime_buf_puts(out, "&amp;"); break;
		case '"': rc = mime_buf_puts(out, "&quot;"); break;
		case '\'': rc = mime_buf_puts(out, "&#39;"); break;
		default: rc = mime_buf_append(out, v, 1);
		}
	}
	return rc;
}

/* Expands src[0..len) into a new string in *out. */
static int expand(const char *src, size_t len, bool html,
		  const struct templates_var *vars, size_t n, char **out)
{
	struct mime_buf b = {0};
	const char *p = src, *end = src + len;
	int rc = 0;

	while (p < end && !rc) {
		const char *open = strstr(p, "{{"), *close, *v;

		if (!open || open >= end) {
			rc = mime_buf_append(&b, p, (size_t)(end - p));
			break;
		}
		close = strstr(open, "}}");
		if (!close || close >= end) {
			rc = ERR_INVALID;
			break;
		}
		rc = mime_buf_append(&b, p, (size_t)(open - p));
		v = lookup(vars, n, open + 2, (size_t)(close - open - 2));
		if (!rc && !v)
			rc = ERR_INVALID;
		if (!rc)
			rc = html ? append_escaped(&b, v) : mime_buf_puts(&b, v);
		p = close + 2;
	}
	if (!rc && !b.data)
		rc = mime_buf_append(&b, "", 0);
	if (rc) {
		mime_buf_free(&b);
		return rc;
	}
	*out = b.data;
	return 0;
}

int templates_render(const char *kind, const char *lang,
		     const struct templates_var *vars, size_t n,
		     struct templates_rendered *out)
{
	const char *use = templates_lang(lang);
	const char *t = find(kind, use), *subject_end, *text, *html;
	int rc;

	if (!t) {
		use = "fr";
		t = find(kind, use);
	}
	if (!t)
		return ERR_NOT_FOUND;
	memset(out, 0, sizeof(*out));
	out->lang = use;
	if (strncmp(t, "subject: ", 9) != 0)
		return ERR_INVALID;
	subject_end = strchr(t, '\n');
	text = subject_end ? strstr(subject_end, "\n--- text\n") : NULL;
	if (!text)
		return ERR_INVALID;
	html = strstr(text, "\n--- html\n");
	rc = expand(t + 9, (size_t)(subject_end - t - 9), false, vars, n,
		    &out->subject);
	if (!rc)
		rc = expand(text + 10,
			    html ? (size_t)(html - text - 9)
				 : strlen(text + 10),
			    false, vars, n, &out->text);
	if (!rc && html)
		rc = expand(html + 10, strlen(html + 10), true, vars, n,
			    &out->html);
	if (rc)
		templates_rendered_free(out);
	return rc;
}

void templates_rendered_free(struct templates_rendered *r)
{
	free(r->subject);
	free(r->text);
	free(r->html);
	r->subject = r->text = r->html = NULL;
}
