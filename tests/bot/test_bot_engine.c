/* Engine tests: selection (context, priority, load order), languages,
 * templates, menus and buttons, did-you-mean, escalation, opt-out/opt-in, the
 * silent states, media, and a pathological pattern that must not stall. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <time.h>

#include "tests/bot/test_util.h"

static const char pack_yaml[] =
    "- form: umum\n"
    "  title: {id: Formulir pendaftaran, en: Registration form}\n"
    "  url: '{office.forms_url}'\n"
    "- form: pbg\n"
    "  title: {id: Formulir PBG, en: PBG form}\n"
    "  url: 'http://example.test/pbg.pdf'\n"
    "- intent: kontak\n"
    "  title: {id: Kontak, en: Contact}\n"
    "  match:\n"
    "    id: ['\\bkontak\\b', '\\bnomor\\s+(telepon|telp|hp)\\b']\n"
    "    en: ['\\bcontact\\b', '\\bphone\\s+number\\b']\n"
    "  examples: [kontak kantor, minta nomor telepon, contact please, what is your phone number, kontak dong]\n"
    "  not_examples: [terima kasih, halo]\n"
    "  reply:\n"
    "    id: |\n"
    "      Telepon {office.phone}\n"
    "      Email: {office.email}\n"
    "      Kantor {office.name}\n"
    "    en: |\n"
    "      Call {office.phone}\n"
    "- intent: izin\n"
    "  title: {id: Izin, en: Permits}\n"
    "  match:\n"
    "    id: ['\\b(izin|ijin)\\b']\n"
    "    en: ['\\bpermits?\\b']\n"
    "  examples: [mau urus izin, ijin usaha gmn, how to get a permit, permit please, izin bangunan]\n"
    "  not_examples: [halo, terima kasih]\n"
    "  reply:\n"
    "    id: Pengajuan izin sekarang online.\n"
    "    en: Permit applications are online now.\n"
    "  buttons: [formulir, kontak]\n"
    "- intent: petugas\n"
    "  title: {id: Petugas, en: Agent}\n"
    "  priority: 10\n"
    "  match:\n"
    "    id: ['\\b(petugas|operator|admin)\\b']\n"
    "    en: ['\\b(human|agent|person)\\b']\n"
    "  examples: [mau bicara dengan petugas soal izin, operator dong, talk to a human, agent please, admin]\n"
    "  not_examples: [halo, izin]\n"
    "  reply:\n"
    "    id: Baik, kami sambungkan ke petugas.\n"
    "    en: OK, a person will answer.\n"
    "  action: escalate\n"
    "- intent: formulir\n"
    "  title: {id: Formulir, en: Forms}\n"
    "  priority: 5\n"
    "  match:\n"
    "    id: ['\\b(formulir|form|blanko)\\b']\n"
    "    en: ['\\bforms?\\b']\n"
    "  examples: [formulir izin dimana, minta blanko, form nya mana, where are the forms, download form]\n"
    "  not_examples: [halo, kontak]\n"
    "  reply:\n"
    "    id: |\n"
    "      Formulir ada di {office.forms_url}. Formulir mana yang Anda perlukan? Ketik PBG atau umum.\n"
    "      {forms.list}\n"
    "    en: Forms are at {office.forms_url}. Which one? Type PBG or general.\n"
    "  sets: pilih_formulir\n"
    "- intent: formulir_pbg\n"
    "  when: pilih_formulir\n"
    "  match:\n"
    "    id: ['\\bpbg\\b']\n"
    "  examples: [pbg, yang pbg, PBG saja, formulir pbg, pbg ya]\n"
    "  not_examples: [umum, halo]\n"
    "  reply:\n"
    "    id: 'Ini {form.title}: {form.url}'\n"
    "    en: 'Here is the {form.title}: {form.url}'\n"
    "  action: send_form:pbg\n"
    "- intent: formulir_umum\n"
    "  when: pilih_formulir\n"
    "  match:\n"
    "    id: ['\\bumum\\b']\n"
    "    en: ['\\bgeneral\\b']\n"
    "  examples: [umum, yang umum, general, umum saja, formulir umum]\n"
    "  not_examples: [pbg, halo]\n"
    "  reply: 'Ini {form.title}: {form.url}'\n"
    "  action: send_form:umum\n"
    "- intent: english\n"
    "  match:\n"
    "    id: ['^\\s*(english|inggris)\\s*$']\n"
    "  examples: [english, English, inggris, ' english ', ENGLISH]\n"
    "  not_examples: [halo, english form please]\n"
    "  reply:\n"
    "    id: Bahasa diganti ke Inggris.\n"
    "    en: Switched to English.\n"
    "  action: set_language:en\n"
    "- intent: berhenti\n"
    "  match:\n"
    "    id: ['^\\s*(stop|berhenti)\\s*$']\n"
    "  examples: [stop, STOP, berhenti, Berhenti, ' stop']\n"
    "  not_examples: [jangan berhenti dulu, halo]\n"
    "  reply: Anda tidak akan menerima pesan lagi. Ketik MULAI untuk kembali.\n"
    "  action: opt_out\n"
    "- intent: mulai\n"
    "  match:\n"
    "    id: ['^\\s*(start|mulai)\\s*$']\n"
    "  examples: [start, START, mulai, Mulai, ' mulai']\n"
    "  not_examples: [mulai kapan, halo]\n"
    "  reply: Selamat datang kembali.\n"
    "  action: opt_in\n"
    "- intent: lambat\n"
    "  match:\n"
    "    id: ['^(a+)+$']\n"
    "  examples: [aaaa]\n"
    "  not_examples: [halo, aaaab]\n"
    "  reply: a\n";

static bot_set *set;
static bot_scratch *scratch;
static const char *dir;

static int setup(void **state)
{
	bot_diags d = {0};

	(void)state;
	dir = test_mkdtemp();
	test_write(dir, "00-messages.yaml", test_messages_yaml);
	test_write(dir, "10-pack.yaml", pack_yaml);
	set = test_load(dir, &d, 2);
	for (size_t i = 0; i < d.n; i++) {
		char line[1200];
		bot_diag_format(&d.v[i], line, sizeof(line));
		print_error("%s\n", line);
	}
	bot_diags_free(&d);
	scratch = bot_scratch_new();
	return set && scratch ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	bot_set_free(set);
	bot_scratch_free(scratch);
	test_rmdir(dir);
	return 0;
}

static void say(bot_state *st, const char *text, bot_result *res)
{
	bot_input in = {text, strlen(text), NULL, 0};
	assert_int_equal(bot_handle(set, scratch, st, &in, st, res), 0);
}

static void tap(bot_state *st, const char *button, bot_result *res)
{
	bot_input in = {NULL, 0, button, 0};
	assert_int_equal(bot_handle(set, scratch, st, &in, st, res), 0);
}

/* One conversation, step by step: what the citizen sends, the intent (NULL =
 * fallback), the mode after it, a fragment of the reply (or NULL = silent). */
static const struct {
	const char *label;
	const char *say; /* "#id" taps a button */
	const char *intent;
	bot_mode mode;
	const char *reply;
} script[] = {
    {"priority: escalation words win over izin", "mau bicara dengan petugas soal izin", "petugas", BOT_MODE_QUEUED,
     "sambungkan ke petugas"},
    {"queued: the bot is silent", "izin gmn", NULL, BOT_MODE_QUEUED, NULL},
    {"queued: opt-out still heard", "STOP", "berhenti", BOT_MODE_QUEUED, "tidak akan menerima"},
    {"opted out: silent", "kontak", NULL, BOT_MODE_QUEUED, NULL},
    {"opt-in heard", "mulai", "mulai", BOT_MODE_QUEUED, "Selamat datang kembali"},
};

static void test_bot_engine_escalation_and_opt_out_script(void **state)
{
	bot_state st;
	bot_result res;

	(void)state;
	bot_state_init(&st);
	for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
		if (script[i].say[0] == '#')
			tap(&st, script[i].say + 1, &res);
		else
			say(&st, script[i].say, &res);
		if ((script[i].intent ? !res.intent || strcmp(res.intent, script[i].intent) : res.intent != NULL) ||
		    st.mode != script[i].mode || (script[i].reply == NULL) != (res.n_replies == 0) ||
		    (script[i].reply && !strstr(res.replies[0].text, script[i].reply))) {
			print_error("step \"%s\": intent %s mode %s replies %d (%s)\n", script[i].label,
				    res.intent ? res.intent : "none", bot_mode_name(st.mode), res.n_replies,
				    res.n_replies ? res.replies[0].text : "");
			fail();
		}
	}
}

static void test_bot_engine_context_comes_first(void **state)
{
	bot_state st;
	bot_result res;

	(void)state;
	bot_state_init(&st);
	/* Without the context, "pbg" means nothing. */
	say(&st, "pbg", &res);
	assert_true(res.fallback);
	bot_state_init(&st);
	say(&st, "formulir dong", &res);
	assert_string_equal(res.intent, "formulir");
	assert_string_equal(st.context, "pilih_formulir");
	/* the reply lists every form, and the office variable is rendered */
	assert_non_null(strstr(res.replies[0].text, "- Formulir PBG: http://example.test/pbg.pdf"));
	assert_non_null(strstr(res.replies[0].text, "http://example.test/forms"));
	say(&st, "yang pbg", &res);
	assert_string_equal(res.intent, "formulir_pbg");
	assert_string_equal(res.replies[0].text, "Ini Formulir PBG: http://example.test/pbg.pdf");
	assert_non_null(res.replies[0].form);
	assert_string_equal(res.replies[0].form->id, "pbg");
	assert_int_equal(res.n_actions, 1);
	assert_int_equal(res.actions[0].kind, BOT_ACT_SEND_FORM);
	/* the context lasted one message */
	assert_string_equal(st.context, "");
}

static void test_bot_engine_language_follows_pattern(void **state)
{
	bot_state st;
	bot_result res;

	(void)state;
	bot_state_init(&st);
	say(&st, "what is your phone number", &res);
	assert_string_equal(res.lang, "en");
	assert_string_equal(st.lang, "en");
	assert_string_equal(res.replies[0].text, "Call (0361) 000");
	/* a reply missing in the conversation's language falls back to the default */
	say(&st, "formulir dong", &res);
	assert_string_equal(res.lang, "id");
	bot_state_init(&st);
	say(&st, "english", &res);
	assert_string_equal(res.intent, "english");
	assert_string_equal(st.lang, "en");
	assert_string_equal(res.replies[0].text, "Switched to English.");
}

static void test_bot_engine_empty_variable_drops_line(void **state)
{
	bot_state st;
	bot_result res;

	(void)state;
	bot_state_init(&st);
	say(&st, "kontak", &res);
	assert_string_equal(res.replies[0].text, "Telepon (0361) 000\nKantor Kantor Uji");
}

static void test_bot_engine_menu_numbers_and_buttons(void **state)
{
	bot_state st;
	bot_result res;

	(void)state;
	bot_state_init(&st);
	say(&st, "mau urus izin", &res);
	assert_int_equal(res.replies[0].n_buttons, 2);
	assert_string_equal(res.replies[0].buttons[0].id, "formulir");
	assert_string_equal(res.replies[0].buttons[0].title, "Formulir");
	assert_int_equal(st.n_menu, 2);
	say(&st, "2", &res);
	assert_string_equal(res.intent, "kontak");
	/* kontak has no buttons: "2" now means nothing */
	say(&st, "2", &res);
	assert_true(res.fallback);
	/* a tapped button goes straight to its intent, whatever the text */
	tap(&st, "izin", &res);
	assert_string_equal(res.intent, "izin");
	/* typing a button's title works too */
	say(&st, "Kontak", &res);
	assert_string_equal(res.intent, "kontak");
	/* an unknown button id is a fallback, not a crash */
	tap(&st, "no_such_intent", &res);
	assert_true(res.fallback);
}

static void test_bot_engine_fallback_then_escalation(void **state)
{
	bot_state st;
	bot_result res;

	(void)state;
	bot_state_init(&st);
	say(&st, "harga cabai di pasar berapa", &res);
	assert_true(res.fallback);
	assert_null(res.intent);
	assert_int_equal(st.mode, BOT_MODE_BOT);
	assert_int_equal(st.fallbacks, 1);
	assert_non_null(strstr(res.replies[0].text, "belum mengerti"));
	assert_int_equal(st.n_menu, 1); /* the fallback menu: [kontak] */
	say(&st, "skor bola tadi malam", &res);
	assert_true(res.fallback);
	assert_int_equal(st.mode, BOT_MODE_QUEUED);
	assert_non_null(strstr(res.replies[0].text, "teruskan ke petugas"));
	assert_int_equal(res.n_actions, 1);
	assert_int_equal(res.actions[0].kind, BOT_ACT_ESCALATE);
	/* a match in between resets the count */
	bot_state_init(&st);
	say(&st, "xyz qwe", &res);
	say(&st, "kontak", &res);
	say(&st, "xyz qwe", &res);
	assert_int_equal(st.mode, BOT_MODE_BOT);
}

static void test_bot_engine_did_you_mean(void **state)
{
	bot_state st;
	bot_result res;

	(void)state;
	bot_state_init(&st);
	say(&st, "formlir izn dimna", &res);
	assert_true(res.fallback);
	assert_true(res.n_suggestions >= 1);
	assert_non_null(strstr(res.replies[0].text, "Maksud Anda"));
	assert_string_equal(res.replies[0].buttons[0].id, "formulir");
	/* the suggestion is a button: tapping it answers */
	say(&st, "1", &res);
	assert_string_equal(res.intent, "formulir");
	/* off-topic gets no suggestion at all */
	bot_state_init(&st);
	say(&st, "resep nasi goreng enak", &res);
	assert_int_equal(res.n_suggestions, 0);
	assert_non_null(strstr(res.replies[0].text, "belum mengerti"));
}

static void test_bot_engine_assigned_is_silent(void **state)
{
	bot_state st;
	bot_result res;

	(void)state;
	bot_state_init(&st);
	st.mode = BOT_MODE_ASSIGNED;
	say(&st, "izin", &res);
	assert_true(res.silent);
	assert_int_equal(res.n_replies, 0);
	assert_int_equal(st.mode, BOT_MODE_ASSIGNED);
}

static void test_bot_engine_media(void **state)
{
	bot_state st;
	bot_result res;
	bot_input in = {NULL, 0, NULL, 1};

	(void)state;
	bot_state_init(&st);
	assert_int_equal(bot_handle(set, scratch, &st, &in, &st, &res), 0);
	assert_string_equal(res.replies[0].text, "Saya hanya membaca teks.");
	st.mode = BOT_MODE_ASSIGNED;
	assert_int_equal(bot_handle(set, scratch, &st, &in, &st, &res), 0);
	assert_true(res.silent);
}

static void test_bot_engine_catastrophic_pattern_is_bounded(void **state)
{
	bot_state st;
	bot_result res;
	char text[200];
	struct timespec t0, t1;
	double s;

	(void)state;
	memset(text, 'a', 60);
	text[60] = '!';
	text[61] = '\0';
	bot_state_init(&st);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	say(&st, text, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* Without a match limit '^(a+)+$' on 60 a's and a '!' takes 2^60 steps:
	 * centuries. Bounded, it fails in well under a few seconds even under
	 * sanitizers; the answer is the fallback. */
	assert_true(res.fallback);
	assert_true(s < 5.0);
	say(&st, "aaaa", &res);
	assert_string_equal(res.intent, "lambat");
}

static void test_bot_engine_hostile_input(void **state)
{
	static const char *inputs[] = {
	    "\xff\xfe\xfd izin",
	    "izin\xe2\x80\x8b",
	    "\xe2\x80\x8bkontak\xe2\x80\x8b",
	    "",
	    " \t\n ",
	    "\xc0\xaf\xed\xa0\x80",
	    "k\xe2\x80\x8do\xe2\x80\x8cntak",
	};
	static const char *want[] = {"izin", "izin", "kontak", NULL, NULL, NULL, "kontak"};
	char big[20000];
	bot_state st;
	bot_result res;

	(void)state;
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		bot_state_init(&st);
		say(&st, inputs[i], &res);
		if (want[i] ? !res.intent || strcmp(res.intent, want[i]) != 0 : res.intent != NULL) {
			print_error("input %zu: got %s\n", i, res.intent ? res.intent : "fallback");
			fail();
		}
	}
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "kontak ", 7);
	big[sizeof(big) - 1] = '\0';
	bot_state_init(&st);
	say(&st, big, &res);
	assert_string_equal(res.intent, "kontak");
}

static void test_bot_state_menu_roundtrip(void **state)
{
	bot_state st, back;
	char joined[BOT_MENU_MAX * BOT_NAME_MAX];
	bot_mode m;

	(void)state;
	bot_state_init(&st);
	bot_state_init(&back);
	st.n_menu = 3;
	strcpy(st.menu[0], "formulir");
	strcpy(st.menu[1], "kontak");
	strcpy(st.menu[2], "petugas");
	assert_int_equal(bot_state_menu_join(&st, joined, sizeof(joined)), 0);
	assert_string_equal(joined, "formulir,kontak,petugas");
	assert_int_equal(bot_state_menu_split(&back, joined), 0);
	assert_int_equal(back.n_menu, 3);
	assert_string_equal(back.menu[2], "petugas");
	assert_int_equal(bot_state_menu_join(&st, joined, 5), -1);
	assert_int_equal(bot_mode_parse("assigned", &m), 0);
	assert_int_equal(m, BOT_MODE_ASSIGNED);
	assert_int_equal(bot_mode_parse("closed?", &m), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bot_engine_escalation_and_opt_out_script),
	    cmocka_unit_test(test_bot_engine_context_comes_first),
	    cmocka_unit_test(test_bot_engine_language_follows_pattern),
	    cmocka_unit_test(test_bot_engine_empty_variable_drops_line),
	    cmocka_unit_test(test_bot_engine_menu_numbers_and_buttons),
	    cmocka_unit_test(test_bot_engine_fallback_then_escalation),
	    cmocka_unit_test(test_bot_engine_did_you_mean),
	    cmocka_unit_test(test_bot_engine_assigned_is_silent),
	    cmocka_unit_test(test_bot_engine_media),
	    cmocka_unit_test(test_bot_engine_catastrophic_pattern_is_bounded),
	    cmocka_unit_test(test_bot_engine_hostile_input),
	    cmocka_unit_test(test_bot_state_menu_roundtrip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
