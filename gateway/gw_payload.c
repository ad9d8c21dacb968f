/* gw_payload: builds the neutral JSON payload of outbound messages
 * ({"text", "buttons"?, "form"?}, see gw_channel.h) and splits a text that is
 * longer than a channel's limit into several messages. The limit is counted in
 * bytes, which is never more than the characters a provider counts, so a part
 * always fits. Parts are cut at a paragraph ("\n\n"), else a line, else a space,
 * else the last UTF-8 character boundary, never inside a character. What the
 * channel does with the payload is the channel's business. */
#include "gateway/gw_payload.h"

#include "bot/bot_text.h"
#include "gateway/gw_json.h"

#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ---- */

/* A malloc'd copy of s[0..n) that is valid UTF-8: each invalid byte becomes
 * U+FFFD, so a provider never receives a broken JSON string. */
static char *pl_utf8_clean(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char *out = malloc(n * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t l;
		if (u[i] && u[i] < 0x80) { /* ASCII: most of an office's answers */
			*o++ = s[i++];
			continue;
		}
		l = u[i] ? bot_text_utf8_len(s + i, n - i) : 0;
		if (l) {
			memcpy(o, s + i, l);
			o += l;
			i += l;
		} else {
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	*o = '\0';
	return out;
}

/* ---- splitting ---- */

/* Where to cut s (len > max bytes): the end of the first part in *cut, the
 * start of the next in *next. */
static void pl_split_point(const char *s, size_t len, size_t max, size_t *cut, size_t *next)
{
	static const char *const seps[] = {"\n\n", "\n", " ", NULL};
	size_t c;

	(void)len;
	for (size_t k = 0; seps[k]; k++) {
		size_t sl = strlen(seps[k]);
		/* the last separator whose preceding text fits, not at the very start */
		for (size_t i = max; i >= 1; i--) {
			if (strncmp(s + i, seps[k], sl) == 0) {
				size_t end = i;
				/* the whole run of blank space goes, on both sides */
				while (end > 1 && (s[end - 1] == '\n' || s[end - 1] == ' '))
					end--;
				*cut = end;
				*next = i + sl;
				while (s[*next] == '\n' || s[*next] == ' ')
					(*next)++;
				return;
			}
		}
	}
	/* no whitespace: the last character boundary at or before max */
	c = max;
	while (c > 0 && ((unsigned char)s[c] & 0xC0) == 0x80)
		c--;
	if (c == 0) {
		/* max is smaller than the first character: take that character whole */
		c = 1;
		while (s[c] && ((unsigned char)s[c] & 0xC0) == 0x80)
			c++;
	}
	*cut = c;
	*next = c;
}

/* ---- building ---- */

/* The payload JSON of one part into *out: r (may be NULL) gives the buttons
 * and the form when last is set; *out stays NULL when the part has neither
 * (its text is the message's text column, not repeated here). Strings that are
 * not UTF-8 get U+FFFD for each bad byte, so a provider never receives a
 * broken JSON string. 0, or -1 when out of memory. */
static int pl_json(const bot_reply *r, int last, char **out)
{
	gw_json b = {0};
	const char *sep = "{";

	*out = NULL;
	if (!last || !r || (r->n_buttons <= 0 && !r->form))
		return 0;
	if (r->n_buttons > 0) {
		gw_json_lit(&b, "{\"buttons\":[");
		for (int i = 0; i < r->n_buttons && i < BOT_MENU_MAX; i++) {
			const char *id = r->buttons[i].id ? r->buttons[i].id : "";
			const char *title = r->buttons[i].title ? r->buttons[i].title : "";
			gw_json_lit(&b, i ? ",{\"id\":" : "{\"id\":");
			gw_json_str_lossy(&b, id, strlen(id));
			gw_json_lit(&b, ",\"title\":");
			gw_json_str_lossy(&b, title, strlen(title));
			gw_json_lit(&b, "}");
		}
		gw_json_lit(&b, "]");
		sep = ",";
	}
	if (r->form) {
		const char *fields[3][2] = {{"id", r->form->id}, {"title", r->form->title}, {"url", r->form->url}};
		gw_json_lit(&b, sep);
		gw_json_lit(&b, "\"form\":{");
		for (int i = 0; i < 3; i++) {
			const char *v = fields[i][1] ? fields[i][1] : "";
			gw_json_lit(&b, i ? ",\"" : "\"");
			gw_json_lit(&b, fields[i][0]);
			gw_json_lit(&b, "\":");
			gw_json_str_lossy(&b, v, strlen(v));
		}
		gw_json_lit(&b, "}");
	}
	gw_json_lit(&b, "}");
	*out = gw_json_take(&b);
	return *out ? 0 : -1;
}

static int pl_make(const char *text_in, const bot_reply *r, size_t max_text, char **texts, char **payloads, int max)
{
	char *text = NULL;
	const char *s;
	size_t len;
	int n = 0;

	if (!texts || !payloads || max <= 0)
		return -1;
	text = pl_utf8_clean(text_in ? text_in : "", text_in ? strlen(text_in) : 0);
	if (!text)
		return -1;
	s = text;
	len = strlen(s);
	for (;;) {
		size_t cut = len, next = len;
		int last;

		if (max_text > 0 && len > max_text)
			pl_split_point(s, len, max_text, &cut, &next);
		last = next >= len;
		if (n >= max)
			goto fail;
		payloads[n] = NULL;
		texts[n] = strndup(s, cut);
		if (!texts[n] || pl_json(r, last, &payloads[n]) != 0) {
			free(texts[n]);
			free(payloads[n]);
			goto fail;
		}
		n++;
		if (last)
			break;
		s += next;
		len -= next;
	}
	free(text);
	return n;
fail:
	for (int i = 0; i < n; i++) {
		free(texts[i]);
		free(payloads[i]);
		texts[i] = payloads[i] = NULL;
	}
	free(text);
	return -1;
}

int gw_payload_make(const bot_reply *r, size_t max_text, char **texts, char **payloads, int max)
{
	if (!r)
		return -1;
	return pl_make(r->text, r, max_text, texts, payloads, max);
}

int gw_payload_text(const char *text, size_t max_text, char **texts, char **payloads, int max)
{
	return pl_make(text, NULL, max_text, texts, payloads, max);
}
