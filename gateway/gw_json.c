/* gw_json: the JSON text writer (see gw_json.h). */
#include "gateway/gw_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bot/bot_text.h"

void gw_json_raw(gw_json *b, const char *s, size_t n)
{
	if (b->failed || n == 0)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(p = realloc(b->p, cap))) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void gw_json_lit(gw_json *b, const char *s)
{
	gw_json_raw(b, s, strlen(s));
}

static void gw_json_escape(gw_json *b, unsigned char c)
{
	char esc[8];

	switch (c) {
	case '"':
		gw_json_raw(b, "\\\"", 2);
		break;
	case '\\':
		gw_json_raw(b, "\\\\", 2);
		break;
	case '\b':
		gw_json_raw(b, "\\b", 2);
		break;
	case '\f':
		gw_json_raw(b, "\\f", 2);
		break;
	case '\n':
		gw_json_raw(b, "\\n", 2);
		break;
	case '\r':
		gw_json_raw(b, "\\r", 2);
		break;
	case '\t':
		gw_json_raw(b, "\\t", 2);
		break;
	default:
		snprintf(esc, sizeof(esc), "\\u%04x", c);
		gw_json_raw(b, esc, 6);
		break;
	}
}

/* Runs of bytes that need nothing are copied in one piece. */
static void gw_json_string(gw_json *b, const char *s, size_t n, int lossy)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;

	gw_json_raw(b, "\"", 1);
	while (i < n) {
		unsigned char c = u[i];
		size_t k = 1;

		if (c >= 0x20 && c != '"' && c != '\\') {
			if (c >= 0x80 && (k = bot_text_utf8_len(s + i, n - i)) == 0) {
				if (!lossy) {
					b->failed = b->bad_utf8 = 1;
					return;
				}
				gw_json_raw(b, s + i - run, run);
				run = 0;
				gw_json_raw(b, "\xEF\xBF\xBD", 3);
				i++;
				continue;
			}
			i += k;
			run += k;
			continue;
		}
		gw_json_raw(b, s + i - run, run);
		run = 0;
		gw_json_escape(b, c);
		i++;
	}
	gw_json_raw(b, s + i - run, run);
	gw_json_raw(b, "\"", 1);
}

void gw_json_str(gw_json *b, const char *s, size_t n)
{
	gw_json_string(b, s, n, 0);
}

void gw_json_str_lossy(gw_json *b, const char *s, size_t n)
{
	gw_json_string(b, s, n, 1);
}

void gw_json_kv(gw_json *b, int first, const char *key, const char *value)
{
	if (!first)
		gw_json_raw(b, ",", 1);
	gw_json_str(b, key, strlen(key));
	gw_json_raw(b, ":", 1);
	gw_json_str(b, value ? value : "", value ? strlen(value) : 0);
}

char *gw_json_take(gw_json *b)
{
	char *p = b->failed ? NULL : b->p;

	if (!p)
		free(b->p);
	else if (b->len == 0)
		p[0] = '\0';
	b->p = NULL;
	b->len = b->cap = 0;
	b->failed = b->bad_utf8 = 0;
	return p;
}

void gw_json_free(gw_json *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
