/* bot_template: renders a reply's {variables} once, at load time.
 *
 * Variables: {office.*} from the config, {form.title} and {form.url} in an
 * intent that sends a form, {forms.list} (every form, one line each). A line
 * holding a variable whose value is empty is dropped, so an unset email never
 * shows as "Email: ". "{{" is a literal "{". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bot/bot_int.h"

typedef struct tbuf {
	char *p;
	size_t n, cap;
	int oom;
} tbuf;

static void tbuf_add(tbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 128;
		char *np;
		while (cap < b->n + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void tbuf_str(tbuf *b, const char *s)
{
	tbuf_add(b, s, strlen(s));
}

/* The value of variable name (len bytes) or NULL when it is unknown. The
 * forms.list value is built into scratch. */
static const char *tpl_lookup(const bot_set *set, const bot_var *vars, size_t n_vars, const char *name, size_t len,
			      const char *lang, const bot_form_def *form, tbuf *scratch, char *err, size_t errlen)
{
	if (len == 10 && memcmp(name, "form.title", 10) == 0) {
		if (!form) {
			snprintf(err, errlen, "{form.title} is only known in an intent whose action is send_form");
			return NULL;
		}
		return bot_i18n_get(&form->title, lang, set->default_lang);
	}
	if (len == 8 && memcmp(name, "form.url", 8) == 0) {
		if (!form) {
			snprintf(err, errlen, "{form.url} is only known in an intent whose action is send_form");
			return NULL;
		}
		return form->url;
	}
	if (len == 10 && memcmp(name, "forms.list", 10) == 0) {
		scratch->n = 0;
		tbuf_add(scratch, "", 0);
		for (size_t i = 0; i < set->n_forms; i++) {
			const char *t = bot_i18n_get(&set->forms[i].title, lang, set->default_lang);
			if (i)
				tbuf_str(scratch, "\n");
			tbuf_str(scratch, "- ");
			tbuf_str(scratch, t ? t : set->forms[i].id);
			tbuf_str(scratch, ": ");
			tbuf_str(scratch, set->forms[i].url ? set->forms[i].url : "");
		}
		return scratch->oom ? NULL : scratch->p;
	}
	for (size_t i = 0; i < n_vars; i++)
		if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0)
			return vars[i].value ? vars[i].value : "";
	snprintf(err, errlen, "unknown variable {%.*s}", (int)(len > 64 ? 64 : len), name);
	return NULL;
}

int bot_template_render(const bot_set *set, const bot_var *vars, size_t n_vars, const char *src, const char *lang,
			const bot_form_def *form, char **out, char *err, size_t errlen)
{
	tbuf res = {0}, line = {0}, scratch = {0};
	const char *p = src;
	int rc = -1;

	*out = NULL;
	while (*p) {
		int drop = 0;

		line.n = 0;
		tbuf_add(&line, "", 0);
		while (*p && *p != '\n') {
			if (p[0] == '{' && p[1] == '{') {
				tbuf_add(&line, "{", 1);
				p += 2;
			} else if (p[0] == '}' && p[1] == '}') {
				tbuf_add(&line, "}", 1);
				p += 2;
			} else if (p[0] == '{') {
				const char *end = strchr(p + 1, '}');
				const char *nl = strchr(p + 1, '\n');
				const char *v;

				if (!end || (nl && nl < end)) {
					snprintf(err, errlen,
						 "a '{' is not closed on its line (write {{ for a literal brace)");
					goto out;
				}
				v = tpl_lookup(set, vars, n_vars, p + 1, (size_t)(end - p - 1), lang, form, &scratch,
					       err, errlen);
				if (!v)
					goto out;
				if (!*v)
					drop = 1;
				tbuf_str(&line, v);
				p = end + 1;
			} else {
				tbuf_add(&line, p, 1);
				p++;
			}
		}
		if (!drop) {
			if (res.n)
				tbuf_add(&res, "\n", 1);
			tbuf_add(&res, line.p ? line.p : "", line.n);
		}
		if (*p == '\n')
			p++;
	}
	/* Trailing newlines of YAML block scalars are not part of the message. */
	while (res.n && (res.p[res.n - 1] == '\n' || res.p[res.n - 1] == ' '))
		res.p[--res.n] = '\0';
	if (res.oom || line.oom || scratch.oom) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!res.p) {
		res.p = strdup("");
		if (!res.p)
			goto out;
	}
	*out = res.p;
	res.p = NULL;
	rc = 0;
out:
	free(res.p);
	free(line.p);
	free(scratch.p);
	return rc;
}
