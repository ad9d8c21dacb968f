/* Tests of the JSON text writer the hot paths use instead of jansson trees:
 * every string it writes must parse back (with jansson) to exactly what was
 * given, control characters and quotes included; strict strings refuse
 * invalid UTF-8, lossy ones replace each bad byte with U+FFFD; a failure
 * sticks and gw_json_take then gives NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_json.h"

/* {"k":<s>} written by gw_json, parsed back by jansson: the value. */
static char *roundtrip(const char *s, size_t n, int lossy)
{
	gw_json b = {0};
	json_error_t jerr;
	json_t *doc;
	char *text, *out;

	gw_json_lit(&b, "{\"k\":");
	if (lossy)
		gw_json_str_lossy(&b, s, n);
	else
		gw_json_str(&b, s, n);
	gw_json_lit(&b, "}");
	text = gw_json_take(&b);
	if (!text)
		return NULL;
	doc = json_loads(text, 0, &jerr);
	if (!doc)
		fail_msg("not JSON: %s (%s)", text, jerr.text);
	out = strdup(json_string_value(json_object_get(doc, "k")));
	json_decref(doc);
	free(text);
	return out;
}

static void test_json_escapes_round_trip(void **state)
{
	static const char *const cases[] = {
	    "",
	    "plain",
	    "say \"hi\"",
	    "back\\slash",
	    "line\nbreak\ttab\rcr",
	    "\x01\x02\x1f bell\b feed\f",
	    "Izin usaha — Tabanan ✓ 🙏",
	    "</script><script>alert(1)</script>",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = roundtrip(cases[i], strlen(cases[i]), 0);
		assert_non_null(got);
		assert_string_equal(got, cases[i]);
		free(got);
	}
}

static void test_json_writes_only_n_bytes(void **state)
{
	char *got;
	(void)state;
	got = roundtrip("abcdef", 3, 0);
	assert_string_equal(got, "abc");
	free(got);
}

static void test_json_strict_refuses_bad_utf8(void **state)
{
	gw_json b = {0};
	(void)state;
	gw_json_lit(&b, "{\"k\":");
	gw_json_str(&b, "ok \xC3\x28 bad", 9);
	assert_int_equal(b.failed, 1);
	assert_int_equal(b.bad_utf8, 1);
	gw_json_lit(&b, "}"); /* sticks: nothing more is written */
	assert_null(gw_json_take(&b));
	assert_null(b.p);
	/* a truncated sequence at the end is bad too */
	assert_null(roundtrip("abc\xE2\x82", 5, 0));
}

static void test_json_lossy_replaces_each_bad_byte(void **state)
{
	char *got;
	(void)state;
	got = roundtrip("a\xFF"
			"b\xC3\x28"
			"c",
			6, 1);
	assert_non_null(got);
	assert_string_equal(got, "a\xEF\xBF\xBD"
				 "b\xEF\xBF\xBD(c");
	free(got);
	got = roundtrip("\xE2\x82", 2, 1);
	assert_string_equal(got, "\xEF\xBF\xBD\xEF\xBF\xBD");
	free(got);
}

static void test_json_kv_and_take(void **state)
{
	gw_json b = {0};
	char *text;
	(void)state;
	gw_json_lit(&b, "{");
	gw_json_kv(&b, 1, "to", "6281234567890");
	gw_json_kv(&b, 0, "empty", NULL);
	gw_json_lit(&b, "}");
	text = gw_json_take(&b);
	assert_string_equal(text, "{\"to\":\"6281234567890\",\"empty\":\"\"}");
	free(text);
	/* after take b is empty: nothing to take */
	text = gw_json_take(&b);
	assert_null(text);
	gw_json_free(&b);
}

static void test_json_grows_past_its_first_buffer(void **state)
{
	size_t n = 100000;
	char *big = malloc(n + 1), *got;
	(void)state;
	for (size_t i = 0; i < n; i++)
		big[i] = i % 7 == 0 ? '"' : 'x';
	big[n] = '\0';
	got = roundtrip(big, n, 0);
	assert_non_null(got);
	assert_string_equal(got, big);
	free(got);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_escapes_round_trip),
	    cmocka_unit_test(test_json_writes_only_n_bytes),
	    cmocka_unit_test(test_json_strict_refuses_bad_utf8),
	    cmocka_unit_test(test_json_lossy_replaces_each_bad_byte),
	    cmocka_unit_test(test_json_kv_and_take),
	    cmocka_unit_test(test_json_grows_past_its_first_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
