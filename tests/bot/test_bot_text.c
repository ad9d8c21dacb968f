/* Normalisation and trigram similarity: what the engine sees of a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "bot/bot.h"
#include "bot/bot_text.h"

static const struct {
	const char *label, *in, *want;
} cases[] = {
    {"plain", "halo", "halo"},
    {"trim and collapse", "  jam \t\n buka   kantor  ", "jam buka kantor"},
    {"zero-width space removed", "iz\xe2\x80\x8bin", "izin"},
    {"BOM and direction marks removed", "\xef\xbb\xbf\xe2\x80\x8fizin\xe2\x80\xae", "izin"},
    {"soft hyphen removed", "for\xc2\xadmulir", "formulir"},
    {"no-break and ideographic spaces",
     "jam\xc2\xa0"
     "buka\xe3\x80\x80kantor",
     "jam buka kantor"},
    {"invalid byte replaced", "a\xffz", "a\xef\xbf\xbdz"},
    {"truncated sequence replaced", "ok\xe2\x82", "ok\xef\xbf\xbd\xef\xbf\xbd"},
    {"surrogate encoded in UTF-8 replaced", "\xed\xa0\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx"},
    {"overlong slash replaced", "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
    {"emoji kept", "terima kasih \xf0\x9f\x99\x8f", "terima kasih \xf0\x9f\x99\x8f"},
    {"control characters are spaces",
     "a\x01\x02"
     "b",
     "a b"},
    {"empty", "", ""},
};

static void test_bot_text_normalize_table(void **state)
{
	char out[BOT_INPUT_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = bot_text_normalize(cases[i].in, strlen(cases[i].in), out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0 || n != strlen(cases[i].want) || !bot_text_valid_utf8(out, n)) {
			print_error("case \"%s\": got \"%s\"\n", cases[i].label, out);
			fail();
		}
	}
}

static void test_bot_text_long_message_cut_on_character_boundary(void **state)
{
	char in[3000], out[BOT_INPUT_MAX + 1];
	size_t n, o = 0;

	(void)state;
	while (o + 2 < sizeof(in) - 1) {
		in[o++] = '\xc3'; /* é */
		in[o++] = '\xa9';
	}
	in[o] = '\0';
	n = bot_text_normalize(in, o, out, sizeof(out));
	assert_true(n <= BOT_INPUT_MAX);
	assert_true(n >= BOT_INPUT_MAX - 1);
	assert_int_equal(n % 2, 0);
	assert_true(bot_text_valid_utf8(out, n));
	/* a tiny output buffer is respected too */
	n = bot_text_normalize("formulir izin", 13, out, 5);
	assert_int_equal(n, 4);
	assert_string_equal(out, "form");
}

static double sim(const char *a, const char *b)
{
	uint32_t ta[BOT_TRIGRAMS_MAX], tb[BOT_TRIGRAMS_MAX];
	size_t na = bot_trigrams(a, strlen(a), ta, BOT_TRIGRAMS_MAX);
	size_t nb = bot_trigrams(b, strlen(b), tb, BOT_TRIGRAMS_MAX);
	return bot_trigram_sim(ta, na, tb, nb);
}

static void test_bot_text_trigram_similarity(void **state)
{
	(void)state;
	assert_true(sim("formulir izin", "formulir izin") > 0.999);
	assert_true(sim("FORMULIR izin!", "formulir izin") > 0.999);
	assert_true(sim("formlir izn", "formulir izin") > 0.45);
	assert_true(sim("harga cabai", "formulir izin") < 0.1);
	assert_true(sim("", "formulir") == 0.0);
	assert_true(sim("formulir izin", "formlir izn") == sim("formlir izn", "formulir izin"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bot_text_normalize_table),
	    cmocka_unit_test(test_bot_text_long_message_cut_on_character_boundary),
	    cmocka_unit_test(test_bot_text_trigram_similarity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
