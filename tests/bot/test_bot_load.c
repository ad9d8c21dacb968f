/* Loader tests: every class of problem `loket check` reports, with the exact
 * file:line where an admin has to look, and the rule that a broken set is
 * never loaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/bot/test_util.h"

/* A valid intent the fallback menu points to; line 1 of 10-kontak.yaml. */
static const char kontak_yaml[] = "- intent: kontak\n"
				  "  match:\n"
				  "    id: ['\\bkontak\\b', '\\bnomor\\s+telepon\\b']\n"
				  "    en: ['\\bcontact\\b']\n"
				  "  examples: [kontak kantor, contact number, minta nomor telepon kantor]\n"
				  "  not_examples: [terima kasih]\n"
				  "  reply:\n"
				  "    id: Telepon {office.phone}\n"
				  "    en: Call {office.phone}\n";

static const struct {
	const char *label;
	const char *yaml;  /* written as 20-case.yaml */
	const char *where; /* "20-case.yaml:LINE:" expected in the diagnostic */
	const char *what;  /* expected in the message */
} cases[] = {
    {"broken regex",
     "- intent: izin\n"
     "  match:\n"
     "    id:\n"
     "      - '(\\bizin'\n"
     "  examples: [izin]\n"
     "  not_examples: [halo]\n"
     "  reply: Izin online.\n",
     "20-case.yaml:4:", "does not compile: missing closing parenthesis"},
    {"unknown key",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin]\n"
     "  not_examples: [halo]\n"
     "  replies: Izin online.\n"
     "  reply: Izin online.\n",
     "20-case.yaml:5:3:", "unknown key \"replies\""},
    {"reply missing for the default language",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin]\n"
     "  not_examples: [halo]\n"
     "  reply:\n"
     "    en: Permits are online.\n",
     "20-case.yaml:1:", "reply missing for the default language (id)"},
    {"duplicate intent name",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin]\n"
     "  not_examples: [halo]\n"
     "  reply: Izin online.\n"
     "- intent: izin\n"
     "  match: {id: ['\\bperizinan\\b']}\n"
     "  examples: [perizinan]\n"
     "  not_examples: [halo]\n"
     "  reply: Izin online.\n",
     "20-case.yaml:6:", "duplicate intent name (first defined at"},
    {"button that points nowhere",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin]\n"
     "  not_examples: [halo]\n"
     "  reply: Izin online.\n"
     "  buttons: [kontak, formulir]\n",
     "20-case.yaml:6:", "button \"formulir\" names no intent"},
    {"send_form that points nowhere",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin]\n"
     "  not_examples: [halo]\n"
     "  reply: Izin online.\n"
     "  action: send_form:pbg\n",
     "20-case.yaml:6:", "send_form:pbg names no form"},
    {"when that no intent sets",
     "- intent: pilih\n"
     "  when: menunggu_formulir\n"
     "  match: {id: ['\\bpbg\\b']}\n"
     "  examples: [pbg]\n"
     "  not_examples: [halo]\n"
     "  reply: Ini formulirnya.\n",
     "20-case.yaml:2:", "no intent ever sets the context \"menunggu_formulir\""},
    {"unknown template variable",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin]\n"
     "  not_examples: [halo]\n"
     "  reply:\n"
     "    id: Hubungi {office.fax}\n",
     "20-case.yaml:6:", "unknown variable {office.fax}"},
    {"example that does not reach its intent",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin, ijin usaha]\n"
     "  not_examples: [halo]\n"
     "  reply: Izin online.\n",
     "20-case.yaml:3:", "example \"ijin usaha\" matches no intent"},
    {"example taken by another intent",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin, kontak izin]\n"
     "  not_examples: [halo]\n"
     "  reply: Izin online.\n",
     "20-case.yaml:3:", "example \"kontak izin\" reaches intent kontak instead"},
    {"not_example that reaches its intent",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin]\n"
     "  not_examples:\n"
     "    - halo\n"
     "    - izin lewat\n"
     "  reply: Izin online.\n",
     "20-case.yaml:6:", "not_example \"izin lewat\" reaches this intent"},
    {"intent fully shadowed by a higher-priority one",
     "- intent: izin\n"
     "  priority: 5\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin]\n"
     "  not_examples: [halo]\n"
     "  reply: Izin online.\n"
     "- intent: izin_usaha\n"
     "  match: {id: ['\\bizin\\s+usaha\\b']}\n"
     "  examples: [izin usaha, mau izin usaha]\n"
     "  not_examples: [halo]\n"
     "  reply: Izin usaha online.\n",
     "20-case.yaml:7:", "fully shadowed: every example is taken by higher-ranked intent izin"},
    {"not valid YAML",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']\n"
     "  reply: x\n",
     "20-case.yaml:3:", "not valid YAML"},
    {"unknown action",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin]\n"
     "  not_examples: [halo]\n"
     "  reply: Izin online.\n"
     "  action: call_mayor\n",
     "20-case.yaml:6:", "unknown action \"call_mayor\""},
    {"intent without examples",
     "- intent: izin\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  not_examples: [halo]\n"
     "  reply: Izin online.\n",
     "20-case.yaml:1:", "needs examples"},
    {"bad intent name",
     "- intent: Izin Usaha\n"
     "  match: {id: ['\\bizin\\b']}\n"
     "  examples: [izin]\n"
     "  reply: Izin online.\n",
     "20-case.yaml:1:11:", "must be lower-case letters"},
};

static int find_diag(const bot_diags *d, const char *where, const char *what, char *all, size_t alllen)
{
	size_t o = 0;
	int found = 0;

	all[0] = '\0';
	for (size_t i = 0; i < d->n; i++) {
		char line[1200];
		int n;
		bot_diag_format(&d->v[i], line, sizeof(line));
		if (strstr(line, where) && strstr(line, what))
			found = 1;
		n = snprintf(all + o, alllen - o, "  %s\n", line);
		if (n > 0 && (size_t)n < alllen - o)
			o += (size_t)n;
	}
	return found;
}

static void test_bot_load_reports_each_problem_at_its_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *dir = test_mkdtemp();
		bot_diags d = {0};
		bot_set *set;
		char all[8192];

		test_write(dir, "00-messages.yaml", test_messages_yaml);
		test_write(dir, "10-kontak.yaml", kontak_yaml);
		test_write(dir, "20-case.yaml", cases[i].yaml);
		set = test_load(dir, &d, 2);
		if (set || !find_diag(&d, cases[i].where, cases[i].what, all, sizeof(all))) {
			print_error("case \"%s\": want %s ... %s, got%s:\n%s", cases[i].label, cases[i].where,
				    cases[i].what, set ? " a loaded set" : "", all);
			bot_set_free(set);
			bot_diags_free(&d);
			test_rmdir(dir);
			fail();
		}
		bot_diags_free(&d);
		test_rmdir(dir);
	}
}

static void test_bot_load_valid_set(void **state)
{
	const char *dir = test_mkdtemp();
	bot_diags d = {0};
	bot_set *set;

	(void)state;
	test_write(dir, "00-messages.yaml", test_messages_yaml);
	test_write(dir, "10-kontak.yaml", kontak_yaml);
	set = test_load(dir, &d, 2);
	for (size_t i = 0; i < d.n; i++)
		print_error("%s:%d: %s\n", d.v[i].file, d.v[i].line, d.v[i].msg);
	assert_non_null(set);
	assert_int_equal(d.n, 0);
	assert_int_equal(bot_set_intent_count(set), 1);
	assert_int_equal(bot_set_pattern_count(set), 3);
	bot_set_free(set);
	bot_diags_free(&d);
	test_rmdir(dir);
}

static void test_bot_load_missing_message(void **state)
{
	const char *dir = test_mkdtemp();
	bot_diags d = {0};
	char all[4096];

	(void)state;
	test_write(dir, "10-kontak.yaml", kontak_yaml);
	assert_null(test_load(dir, &d, 2));
	assert_true(find_diag(&d, "", "message fallback is missing", all, sizeof(all)));
	assert_true(find_diag(&d, "", "message escalated is missing", all, sizeof(all)));
	bot_diags_free(&d);
	test_rmdir(dir);
}

static void test_bot_load_every_problem_not_just_the_first(void **state)
{
	const char *dir = test_mkdtemp();
	bot_diags d = {0};

	(void)state;
	test_write(dir, "00-messages.yaml", test_messages_yaml);
	test_write(dir, "10-kontak.yaml", kontak_yaml);
	test_write(dir, "20-a.yaml", cases[0].yaml);
	test_write(dir, "30-b.yaml", cases[1].yaml);
	assert_null(test_load(dir, &d, 2));
	assert_true(d.n >= 2);
	bot_diags_free(&d);
	test_rmdir(dir);
}

static void test_bot_load_empty_and_missing_dir(void **state)
{
	const char *dir = test_mkdtemp();
	bot_diags d = {0};

	(void)state;
	assert_null(test_load(dir, &d, 2));
	assert_true(d.n >= 1);
	assert_non_null(strstr(d.v[0].msg, "no intent files"));
	bot_diags_free(&d);
	assert_null(test_load("/nonexistent/loket/intents", &d, 2));
	assert_non_null(strstr(d.v[0].msg, "cannot open"));
	bot_diags_free(&d);
	test_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bot_load_reports_each_problem_at_its_line),
	    cmocka_unit_test(test_bot_load_valid_set),
	    cmocka_unit_test(test_bot_load_missing_message),
	    cmocka_unit_test(test_bot_load_every_problem_not_just_the_first),
	    cmocka_unit_test(test_bot_load_empty_and_missing_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
