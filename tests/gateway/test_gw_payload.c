/* Tests of the neutral outbound payload: its JSON shape, and the splitting of
 * texts longer than a channel's limit (at a paragraph, else a line, else a
 * space, else a character boundary, never inside a UTF-8 character; buttons
 * and form with the last part). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_payload.h"

#define MAXP 16

static int utf8_valid(const char *s)
{
	json_t *j = json_string(s); /* jansson checks UTF-8 */
	int ok = j != NULL;
	json_decref(j);
	return ok;
}

static json_t *load(const char *payload)
{
	json_error_t jerr;
	json_t *j = json_loads(payload, 0, &jerr);
	if (!j)
		fail_msg("payload is not JSON: %s", payload);
	return j;
}

static void free_parts(char **texts, char **payloads, int n)
{
	for (int i = 0; i < n; i++) {
		free(texts[i]);
		free(payloads[i]);
	}
}

/* Every part within max bytes and valid UTF-8; no part but the last has a
 * payload (the buttons and form ride with the last; the text is stored once,
 * in the message's text), and with plain set, not the last either. */
static void check_parts(const char *label, char **texts, char **payloads, int n, size_t max, int plain)
{
	for (int i = 0; i < n; i++) {
		if (max && strlen(texts[i]) > max)
			fail_msg("%s: part %d has %zu bytes > %zu", label, i, strlen(texts[i]), max);
		if (!utf8_valid(texts[i]))
			fail_msg("%s: part %d cut inside a character", label, i);
		if (payloads[i] && (plain || i < n - 1))
			fail_msg("%s: part %d has a payload: %s", label, i, payloads[i]);
	}
}

static char *repeat(const char *unit, size_t times)
{
	size_t ul = strlen(unit);
	char *s = malloc(ul * times + 1);
	assert_non_null(s);
	for (size_t i = 0; i < times; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * times] = '\0';
	return s;
}

static void test_payload_short_reply_shape(void **state)
{
	bot_form form = {"pbg", "Formulir PBG", "https://x.go.id/pbg.pdf"};
	bot_reply r = {.text = "Silakan pilih:",
		       .n_buttons = 2,
		       .buttons = {{"formulir", "Formulir"}, {"petugas", "Bicara dengan petugas"}},
		       .form = &form};
	char *texts[MAXP], *payloads[MAXP];
	json_t *j, *b;
	int n;

	(void)state;
	n = gw_payload_make(&r, 4096, texts, payloads, MAXP);
	assert_int_equal(n, 1);
	assert_string_equal(texts[0], "Silakan pilih:");
	j = load(payloads[0]);
	assert_null(json_object_get(j, "text")); /* the text is texts[0], not repeated */
	b = json_object_get(j, "buttons");
	assert_int_equal(json_array_size(b), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(b, 0), "id")), "formulir");
	assert_string_equal(json_string_value(json_object_get(json_array_get(b, 1), "title")), "Bicara dengan petugas");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "form"), "id")), "pbg");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "form"), "title")), "Formulir PBG");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "form"), "url")),
			    "https://x.go.id/pbg.pdf");
	json_decref(j);
	free_parts(texts, payloads, n);

	/* a form alone */
	r.n_buttons = 0;
	n = gw_payload_make(&r, 0, texts, payloads, MAXP);
	assert_int_equal(n, 1);
	assert_string_equal(
	    payloads[0], "{\"form\":{\"id\":\"pbg\",\"title\":\"Formulir PBG\",\"url\":\"https://x.go.id/pbg.pdf\"}}");
	free_parts(texts, payloads, n);

	/* no buttons, no form: just the text, and no payload */
	r.form = NULL;
	n = gw_payload_make(&r, 0, texts, payloads, MAXP);
	assert_int_equal(n, 1);
	assert_string_equal(texts[0], "Silakan pilih:");
	assert_null(payloads[0]);
	free_parts(texts, payloads, n);
}

/* 5,000 characters with a paragraph break at 3,000: two parts, the first one
 * exactly the first paragraph; the buttons ride with the second. */
static void test_payload_split_at_paragraph(void **state)
{
	char *p1 = repeat("a", 2999), *p2 = repeat("b", 1999), text[5100];
	bot_reply r = {.n_buttons = 1, .buttons = {{"menu", "Menu"}}};
	char *texts[MAXP], *payloads[MAXP];
	json_t *j;
	int n;

	(void)state;
	snprintf(text, sizeof(text), "%s\n\n%s", p1, p2);
	assert_int_equal(strlen(text), 5000);
	r.text = text;
	n = gw_payload_make(&r, 4096, texts, payloads, MAXP);
	assert_int_equal(n, 2);
	check_parts("paragraph", texts, payloads, n, 4096, 0);
	assert_string_equal(texts[0], p1);
	assert_string_equal(texts[1], p2);
	assert_null(payloads[0]); /* the buttons ride with the last part only */
	j = load(payloads[1]);
	assert_int_equal(json_array_size(json_object_get(j, "buttons")), 1);
	json_decref(j);
	free_parts(texts, payloads, n);
	free(p1);
	free(p2);
}

/* The fallbacks in order: a line break when there is no paragraph, a space
 * when there is no line break, the latest one that fits. */
static void test_payload_split_fallbacks(void **state)
{
	static const struct {
		const char *label, *text;
		size_t max;
		const char *want[4];
	} cases[] = {
	    {"paragraph wins over a later line", "aaa\n\nbbb\nccc", 10, {"aaa", "bbb\nccc"}},
	    {"line when no paragraph", "aaaa\nbbbb\ncccc", 10, {"aaaa\nbbbb", "cccc"}},
	    {"space when no line", "aaa bbb ccc ddd", 10, {"aaa bbb", "ccc ddd"}},
	    {"paragraph of several newlines", "aaa\n\n\n\nbbb", 6, {"aaa", "bbb"}},
	    {"no whitespace: hard cut", "abcdefghijklmno", 6, {"abcdef", "ghijkl", "mno"}},
	    {"fits exactly", "abcdef", 6, {"abcdef"}},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *texts[MAXP], *payloads[MAXP];
		int n = gw_payload_text(cases[i].text, cases[i].max, texts, payloads, MAXP), want_n = 0;

		while (want_n < 4 && cases[i].want[want_n])
			want_n++;
		if (n != want_n)
			fail_msg("split case \"%s\": %d parts, want %d", cases[i].label, n, want_n);
		check_parts(cases[i].label, texts, payloads, n, cases[i].max, 1);
		for (int k = 0; k < n; k++)
			if (strcmp(texts[k], cases[i].want[k]) != 0)
				fail_msg("split case \"%s\": part %d \"%s\", want \"%s\"", cases[i].label, k, texts[k],
					 cases[i].want[k]);
		free_parts(texts, payloads, n);
	}
}

/* Multibyte text without any whitespace: every cut lands on a character
 * boundary, and joining the parts gives back the text. */
static void test_payload_split_multibyte(void **state)
{
	static const struct {
		const char *label, *unit;
		size_t times, max;
	} cases[] = {
	    {"2-byte chars, even limit", "\xc3\xa9", 3000, 4096},
	    {"2-byte chars, odd limit", "\xc3\xa9", 3000, 4095},
	    {"3-byte chars", "\xe2\x80\x94", 2000, 4096},
	    {"4-byte chars", "\xf0\x9f\x99\x82", 1500, 4094},
	    {"mixed, tiny limit", "a\xc3\xa9\xe2\x80\x94\xf0\x9f\x99\x82", 50, 5},
	    {"limit smaller than a character", "\xf0\x9f\x99\x82", 5, 2},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = repeat(cases[i].unit, cases[i].times);
		char *texts[MAXP * 16], *payloads[MAXP * 16], *joined = calloc(1, strlen(text) + 1);
		int n = gw_payload_text(text, cases[i].max, texts, payloads, MAXP * 16);
		size_t off = 0;

		assert_non_null(joined);
		if (n < 2)
			fail_msg("multibyte case \"%s\": %d parts", cases[i].label, n);
		for (int k = 0; k < n; k++) {
			if (!utf8_valid(texts[k]))
				fail_msg("multibyte case \"%s\": part %d cut inside a character", cases[i].label, k);
			/* within the limit, unless one character alone is bigger */
			if (strlen(texts[k]) > cases[i].max && strlen(texts[k]) > 4)
				fail_msg("multibyte case \"%s\": part %d too long", cases[i].label, k);
			memcpy(joined + off, texts[k], strlen(texts[k]) + 1);
			off += strlen(texts[k]);
		}
		if (strcmp(joined, text) != 0)
			fail_msg("multibyte case \"%s\": parts do not add up to the text", cases[i].label);
		free_parts(texts, payloads, n);
		free(joined);
		free(text);
	}
}

static void test_payload_too_many_parts(void **state)
{
	char *text = repeat("abcdefghij", 10); /* 100 bytes */
	char *texts[3] = {NULL, NULL, NULL}, *payloads[3] = {NULL, NULL, NULL};

	(void)state;
	assert_int_equal(gw_payload_text(text, 10, texts, payloads, 3), -1);
	for (int i = 0; i < 3; i++) {
		assert_null(texts[i]);
		assert_null(payloads[i]);
	}
	assert_int_equal(gw_payload_text(text, 50, texts, payloads, 2), 2);
	free_parts(texts, payloads, 2);
	assert_int_equal(gw_payload_text(text, 0, texts, payloads, 0), -1);
	assert_int_equal(gw_payload_make(NULL, 0, texts, payloads, 3), -1);
	free(text);
}

/* Broken UTF-8 (an agent's paste, a truncated template) still yields JSON a
 * provider accepts: the bad bytes become U+FFFD. */
static void test_payload_invalid_utf8(void **state)
{
	char *texts[MAXP], *payloads[MAXP];
	json_t *j;
	int n;

	(void)state;
	n = gw_payload_text("ok \xff\xfe then \xc3", 0, texts, payloads, MAXP);
	assert_int_equal(n, 1);
	assert_string_equal(texts[0], "ok \xef\xbf\xbd\xef\xbf\xbd then \xef\xbf\xbd");
	free_parts(texts, payloads, n);

	/* and so do a button's id and title */
	bot_reply r = {.text = "x", .n_buttons = 1, .buttons = {{"a\xff", "T\xc3"}}};
	n = gw_payload_make(&r, 0, texts, payloads, MAXP);
	assert_int_equal(n, 1);
	j = load(payloads[0]);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "buttons"), 0), "id")),
			    "a\xef\xbf\xbd");
	json_decref(j);
	free_parts(texts, payloads, n);

	/* NULL and empty text: one empty message (the channel refuses to send it) */
	n = gw_payload_text(NULL, 100, texts, payloads, MAXP);
	assert_int_equal(n, 1);
	assert_string_equal(texts[0], "");
	free_parts(texts, payloads, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_payload_short_reply_shape), cmocka_unit_test(test_payload_split_at_paragraph),
	    cmocka_unit_test(test_payload_split_fallbacks),   cmocka_unit_test(test_payload_split_multibyte),
	    cmocka_unit_test(test_payload_too_many_parts),    cmocka_unit_test(test_payload_invalid_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
