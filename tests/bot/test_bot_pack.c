/* The shipped Tabanan intent pack: it loads cleanly with config.example, has
 * the size the office needs, answers the realistic utterances of
 * tests/data/utterances.tsv (written apart from the intents' own examples) with
 * the right intent, sends off-topic messages to the fallback, and its answers
 * carry the facts of the office's announcement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bot/bot_int.h"
#include "cli/cli.h"

static bot_set *set;
static bot_scratch *scratch;
static cfg conf;

static int setup(void **state)
{
	(void)state;
	unsetenv("OFFICE_EMAIL");
	if (cli_config_load("config.example", &conf) != 0)
		return -1;
	set = cli_bot_load(&conf, "intents");
	scratch = bot_scratch_new();
	return set && scratch ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	bot_set_free(set);
	bot_scratch_free(scratch);
	return 0;
}

static const bot_result *ask(const char *text, bot_state *st)
{
	static bot_result res;
	bot_input in = {text, strlen(text), NULL, 0};

	assert_int_equal(bot_handle(set, scratch, st, &in, st, &res), 0);
	return &res;
}

static void test_pack_shape(void **state)
{
	size_t with_patterns = 0;

	(void)state;
	assert_true(set->n_intents >= 20);
	for (size_t i = 0; i < set->n_intents; i++) {
		const bot_intent *it = &set->intents[i];
		int id = 0, en = 0;

		for (int l = 0; l < it->reply.n; l++) {
			id |= strcmp(it->reply.lang[l], "id") == 0;
			en |= strcmp(it->reply.lang[l], "en") == 0;
		}
		if (!id || !en) {
			print_error("intent %s: replies in id and en are both required\n", it->name);
			fail();
		}
		if (it->n_patterns == 0)
			continue;
		with_patterns++;
		if (it->n_examples < 5 || it->n_not_examples < 2) {
			print_error("intent %s: %zu examples, %zu not_examples (want >= 5 and >= 2)\n", it->name,
				    it->n_examples, it->n_not_examples);
			fail();
		}
	}
	assert_true(with_patterns >= 20);
}

static void test_pack_utterances(void **state)
{
	FILE *f = fopen("tests/data/utterances.tsv", "r");
	char line[2048];
	int rows = 0, offtopic = 0, wrong = 0, lineno = 0;

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *tab, *want, *text;
		const bot_result *r;
		bot_state st;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		tab = strchr(line, '\t');
		if (!tab) {
			print_error("utterances.tsv:%d: no tab\n", lineno);
			wrong++;
			continue;
		}
		*tab = '\0';
		want = line;
		text = tab + 1;
		bot_state_init(&st);
		r = ask(text, &st);
		rows++;
		if (strcmp(want, "-") == 0) {
			offtopic++;
			if (!r->fallback) {
				print_error("utterances.tsv:%d: \"%s\" must fall back, got intent %s\n", lineno, text,
					    r->intent);
				wrong++;
			}
		} else if (!r->intent || strcmp(r->intent, want) != 0) {
			print_error("utterances.tsv:%d: \"%s\" want %s, got %s\n", lineno, text, want,
				    r->intent ? r->intent : "fallback");
			wrong++;
		}
	}
	fclose(f);
	print_message("%d utterances (%d off-topic), %d wrong\n", rows, offtopic, wrong);
	assert_true(rows - offtopic >= 150);
	assert_true(offtopic >= 25);
	assert_int_equal(wrong, 0);
}

/* The announcement's facts, where a citizen would look for them. */
static const struct {
	const char *ask, *fact;
} facts[] = {
    {"apakah kantor perizinan tutup", "10 September 2020"},
    {"apakah kantor perizinan tutup", "081239324511"},
    {"kenapa layanan tatap muka ditutup", "zona merah"},
    {"kenapa layanan tatap muka ditutup", "25%"},
    {"sampai kapan tutupnya", "belum ditentukan"},
    {"dimana download formulir izin", "http://dpmptsp.tabanankab.go.id/formulir-pendaftaran-izin"},
    {"cara daftar oss gmn", "081332327511"},
    {"nomor call center berapa", "(0361) 7991652"},
    {"apakah verifikasi lapangan masih ada", "ditiadakan"},
    {"om swastyastu", "Om Swastyastu"},
    {"what is the phone number of the office", "(0361) 7991652"},
};

static void test_pack_answers_carry_the_facts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
		bot_state st;
		const bot_result *r;
		int found = 0;

		bot_state_init(&st);
		r = ask(facts[i].ask, &st);
		for (int k = 0; k < r->n_replies; k++)
			found |= strstr(r->replies[k].text, facts[i].fact) != NULL;
		if (!found) {
			print_error("\"%s\" (intent %s): the reply lacks \"%s\": %s\n", facts[i].ask,
				    r->intent ? r->intent : "fallback", facts[i].fact,
				    r->n_replies ? r->replies[0].text : "(none)");
			fail();
		}
	}
}

static void test_pack_email_line_dropped_when_unset(void **state)
{
	(void)state;
	for (size_t i = 0; i < set->n_intents; i++)
		for (int l = 0; l < set->intents[i].reply.n; l++)
			if (strstr(set->intents[i].reply.s[l], "{office") ||
			    strstr(set->intents[i].reply.s[l], "Email: \n")) {
				print_error("intent %s: unrendered or empty variable: %s\n", set->intents[i].name,
					    set->intents[i].reply.s[l]);
				fail();
			}
}

static void test_pack_conversation(void **state)
{
	bot_state st;
	const bot_result *r;

	(void)state;
	bot_state_init(&st);
	r = ask("om swastyastu", &st);
	assert_non_null(r->intent);
	assert_true(r->replies[0].n_buttons > 0);
	r = ask("talk to a human please", &st);
	assert_int_equal(st.mode, BOT_MODE_QUEUED);
	assert_int_equal(r->actions[0].kind, BOT_ACT_ESCALATE);
	r = ask("halo?", &st);
	assert_true(r->silent);
	bot_state_init(&st);
	r = ask("STOP", &st);
	assert_true(st.opted_out);
	r = ask("halo", &st);
	assert_true(r->silent);
	r = ask("MULAI", &st);
	assert_false(st.opted_out);
	assert_int_equal(r->n_replies, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pack_shape),
	    cmocka_unit_test(test_pack_utterances),
	    cmocka_unit_test(test_pack_answers_carry_the_facts),
	    cmocka_unit_test(test_pack_email_line_dropped_when_unset),
	    cmocka_unit_test(test_pack_conversation),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
