/* The inbound path: store_inbound_batch creates contacts and conversations,
 * counts the rate-limit minute before decide, applies the decision, writes the
 * replies with the right status and outbox rows, treats a repeated provider id
 * as a duplicate that changes nothing, and rolls back a refused message alone. */
#define T_FIXTURE_NAME "in"
#define T_FIXTURE_BUSY_MS 2000
#include "tests/store/store_fixture.h"

static void test_store_inbound_first_message_creates_conversation(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	store_conv c;
	assert_int_equal(store_conv_find(s, "whatsapp", "6281200000001", &c), STORE_ERR_NOTFOUND);
	store_inbound in = t_in("whatsapp", "6281200000001", "wamid.A", "jam buka", 1000);
	in.display_name = "Ni Luh";
	store_inbound_result r = t_one(s, &t, in);
	assert_int_equal(r.rc, STORE_OK);
	assert_true(r.message_id > 0);
	assert_int_equal(t.seen_mode[0], BOT_MODE_BOT);
	assert_int_equal(store_conv_find(s, "whatsapp", "6281200000001", &c), STORE_OK);
	assert_int_equal(c.id, r.conversation_id);
	assert_string_equal(c.display_name, "Ni Luh");
	assert_string_equal(c.channel, "whatsapp");
	assert_int_equal(c.created_ms, 1000);
	assert_int_equal(c.last_inbound_ms, 1000);
	/* decide's state was kept: language, context, menu */
	assert_string_equal(c.bot.lang, "id");
	assert_string_equal(c.bot.context, "ctx_jam");
	assert_int_equal(c.bot.n_menu, 2);
	assert_string_equal(c.bot.menu[1], "syarat_pbg");

	/* The same address on another channel is another contact. */
	store_inbound_result r2 = t_one(s, &t, t_in("twilio", "6281200000001", "SM1", "jam", 1100));
	assert_int_not_equal(r2.conversation_id, r.conversation_id);
	/* A later message without a display name keeps the known one. */
	t_one(s, &t, t_in("whatsapp", "6281200000001", "wamid.B", "jam", 1200));
	assert_int_equal(store_conv_get(s, r.conversation_id, &c), STORE_OK);
	assert_string_equal(c.display_name, "Ni Luh");
	assert_int_equal(c.last_inbound_ms, 1200);
	assert_int_equal(store_conv_get(s, 999999, &c), STORE_ERR_NOTFOUND);
}

static void test_store_inbound_rate_window_counts_before_decide(void **state)
{
	(void)state;
	static const struct {
		int64_t at;
		int want_count;
		int64_t want_window;
	} cases[] = {
	    {100000, 1, 100000}, {101000, 2, 100000}, {159999, 3, 100000},
	    {160000, 1, 160000}, {190000, 2, 160000}, {500000, 1, 500000},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		t_decider t = {.queue = 1};
		char pid[32];
		snprintf(pid, sizeof pid, "wamid.r%zu", i);
		store_inbound_result r = t_one(s, &t, t_in("whatsapp", "6281200000002", pid, "halo", cases[i].at));
		if (t.seen_rate[0] != cases[i].want_count)
			fail_msg("case %zu (at %lld): decide saw count %d, want %d", i, (long long)cases[i].at,
				 t.seen_rate[0], cases[i].want_count);
		store_conv c;
		assert_int_equal(store_conv_get(s, r.conversation_id, &c), STORE_OK);
		if (c.rate_count != cases[i].want_count || c.rate_window_ms != cases[i].want_window)
			fail_msg("case %zu: stored count %d window %lld", i, c.rate_count, (long long)c.rate_window_ms);
		assert_int_equal(c.last_inbound_ms, cases[i].at);
	}
}

static void test_store_inbound_reply_status_by_kind(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		int queue, sandboxed;
		const char *want_status;
		int want_outbox;
	} cases[] = {
	    {"queued for the sender", 1, 0, "queued", 1},
	    {"pushed by the channel itself", 0, 0, "delivered", 0},
	    {"sandboxed channel", 1, 1, "sandboxed", 0},
	    {"sandboxed, not queued", 0, 1, "sandboxed", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		t_decider t = {.queue = cases[i].queue, .sandboxed = cases[i].sandboxed, .n_out = 2};
		char addr[32], pid[32];
		snprintf(addr, sizeof addr, "web-%zu", i);
		snprintf(pid, sizeof pid, "w%zu", i);
		store_inbound_result r = t_one(s, &t, t_in("web", addr, pid, "jam", 1000));
		assert_int_equal(r.n_out, 2);
		assert_true(r.out_ids[0] > r.message_id && r.out_ids[1] > r.out_ids[0]);
		store_msg *m = NULL;
		size_t n = 0;
		assert_int_equal(store_msgs_since(s, r.conversation_id, 0, 10, &m, &n), STORE_OK);
		assert_int_equal(n, 3);
		assert_string_equal(m[0].direction, "in");
		assert_string_equal(m[0].status, "received");
		assert_string_equal(m[0].intent, "i_jam");
		for (size_t k = 1; k < 3; k++) {
			assert_string_equal(m[k].direction, "out");
			if (strcmp(m[k].status, cases[i].want_status) != 0)
				fail_msg("%s: status %s, want %s", cases[i].label, m[k].status, cases[i].want_status);
			assert_string_equal(m[k].text, "re: jam");
			assert_string_equal(m[k].payload, "{\"type\":\"text\"}");
		}
		store_msgs_free(m, n);
		char sql[128];
		snprintf(sql, sizeof sql, "SELECT count(*) FROM outbox WHERE conversation_id = %lld",
			 (long long)r.conversation_id);
		if (t_sql_int(path, sql) != 2 * cases[i].want_outbox)
			fail_msg("%s: %lld outbox rows", cases[i].label, (long long)t_sql_int(path, sql));
	}
}

static void test_store_inbound_escalation_sets_time_once(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	store_inbound_result r = t_one(s, &t, t_in("whatsapp", "6281200000003", "e1", "agent", 5000));
	store_conv c;
	assert_int_equal(store_conv_get(s, r.conversation_id, &c), STORE_OK);
	assert_int_equal(c.bot.mode, BOT_MODE_QUEUED);
	assert_int_equal(c.escalated_ms, 5000);
	/* Asking again while queued keeps the first time (the wait started then). */
	t_one(s, &t, t_in("whatsapp", "6281200000003", "e2", "agent", 9000));
	assert_int_equal(store_conv_get(s, r.conversation_id, &c), STORE_OK);
	assert_int_equal(c.escalated_ms, 5000);
	assert_int_equal(t.seen_mode[0], BOT_MODE_QUEUED);
	store_conv *q = NULL;
	size_t n = 0;
	assert_int_equal(store_queue_list(s, 10, &q, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(q[0].id, r.conversation_id);
	store_convs_free(q);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM escalations"), 1);
}

static void test_store_inbound_duplicate_in_same_and_later_batch(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	store_inbound in[3] = {
	    t_in("whatsapp", "6281200000004", "wamid.D1", "jam", 1000),
	    t_in("whatsapp", "6281200000004", "wamid.D1", "jam", 1000), /* provider retry, same batch */
	    t_in("whatsapp", "6281200000004", "wamid.D2", "syarat", 1001),
	};
	store_inbound_result r[3];
	assert_int_equal(store_inbound_batch(s, in, 3, t_decide, &t, r), STORE_OK);
	assert_int_equal(r[0].rc, STORE_OK);
	assert_int_equal(r[1].rc, STORE_DUPLICATE);
	assert_int_equal(r[1].message_id, 0);
	assert_int_equal(r[2].rc, STORE_OK);
	assert_int_equal(t.calls, 2);
	store_conv before;
	int64_t conv = r[0].conversation_id;
	assert_int_equal(store_conv_get(s, conv, &before), STORE_OK);
	int64_t msgs = t_sql_int(path, "SELECT count(*) FROM messages");
	int64_t outbox = t_sql_int(path, "SELECT count(*) FROM outbox");

	/* The provider retries both in a later batch: nothing changes at all. */
	t_decider t2 = {.queue = 1};
	store_inbound again[2] = {in[0], in[2]};
	again[0].at_ms = again[1].at_ms = 2000;
	assert_int_equal(store_inbound_batch(s, again, 2, t_decide, &t2, r), STORE_OK);
	assert_int_equal(r[0].rc, STORE_DUPLICATE);
	assert_int_equal(r[1].rc, STORE_DUPLICATE);
	assert_int_equal(t2.calls, 0);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages"), msgs);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM outbox"), outbox);
	store_conv after;
	assert_int_equal(store_conv_get(s, conv, &after), STORE_OK);
	assert_int_equal(after.rate_count, before.rate_count);
	assert_int_equal(after.last_inbound_ms, before.last_inbound_ms);

	/* The same id from another channel or another citizen (ids are the
	 * sender's: two web chat pages may both say "m1"), and messages without
	 * ids, are new. */
	store_inbound other[5] = {
	    t_in("twilio", "6281200000004", "wamid.D1", "jam", 3000),
	    t_in("kannel", "6281200000004", NULL, "jam", 3000),
	    t_in("kannel", "6281200000004", NULL, "jam", 3000),
	    t_in("whatsapp", "6281200000005", "wamid.D1", "jam", 3000),
	    t_in("whatsapp", "6281200000005", "wamid.D1", "jam", 3000),
	};
	store_inbound_result r5[5];
	assert_int_equal(store_inbound_batch(s, other, 5, t_decide, &t2, r5), STORE_OK);
	for (int i = 0; i < 4; i++)
		if (r5[i].rc != STORE_OK)
			fail_msg("other[%d]: %s", i, store_rc_str(r5[i].rc));
	assert_int_equal(r5[4].rc, STORE_DUPLICATE); /* but that citizen's own repeat is one */
	/* every message knows its contact */
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages m JOIN conversations c"
					 " ON c.id = m.conversation_id WHERE m.contact_id IS NOT c.contact_id"),
			 0);
}

static void test_store_inbound_refused_message_rolls_back_alone(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	store_inbound in[4] = {
	    t_in("whatsapp", "6281200000005", "f1", "jam", 1000),
	    t_in("whatsapp", "6281200000099", "f2", "refuse", 1001), /* a new contact, refused */
	    t_in("whatsapp", "6281200000005", "f3", "refuse", 1002), /* a known contact, refused */
	    t_in("whatsapp", "6281200000005", "f4", "syarat", 1003),
	};
	store_inbound_result r[4];
	assert_int_equal(store_inbound_batch(s, in, 4, t_decide, &t, r), STORE_OK);
	assert_int_equal(r[0].rc, STORE_OK);
	assert_int_equal(r[1].rc, STORE_ERR);
	assert_int_equal(r[2].rc, STORE_ERR);
	assert_int_equal(r[3].rc, STORE_OK);
	/* The refusals made the store redo the batch with a savepoint per message;
	 * decide was still asked once per message, and the last message saw the
	 * state without the refused ones. */
	assert_int_equal(t.calls, 4);
	assert_int_equal(t.seen_rate[3], 2);
	assert_int_equal(r[3].n_out, 1);
	store_conv c;
	assert_int_equal(store_conv_find(s, "whatsapp", "6281200000099", &c), STORE_ERR_NOTFOUND);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM contacts WHERE address = '6281200000099'"), 0);
	assert_int_equal(store_conv_get(s, r[0].conversation_id, &c), STORE_OK);
	/* The refused message's rate count was rolled back with it. */
	assert_int_equal(c.rate_count, 2);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE direction = 'in'"), 2);
	/* A refused id is not burnt: its retry is handled. */
	t.calls = 0;
	store_inbound retry = t_in("whatsapp", "6281200000005", "f3", "jam", 1004);
	assert_int_equal(store_inbound_batch(s, &retry, 1, t_decide, &t, r), STORE_OK);
	assert_int_equal(r[0].rc, STORE_OK);
}

/* A returning citizen: the contact row is written only when the name, the
 * language or the opt-out changed, and decide sees the name just sent. */
static void test_store_inbound_returning_contact_keeps_what_changed(void **state)
{
	(void)state;
	static const struct {
		const char *name;      /* display name sent with the message, or NULL */
		const char *want_name; /* stored afterwards */
	} cases[] = {
	    {"Ni Luh", "Ni Luh"},	    {NULL, "Ni Luh"}, {"", "Ni Luh"}, {"Ni Luh Putu", "Ni Luh Putu"},
	    {"Ni Luh Putu", "Ni Luh Putu"},
	};
	t_decider t = {.queue = 1};
	int64_t conv = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char id[32];
		snprintf(id, sizeof id, "name-%zu", i);
		store_inbound in = t_in("whatsapp", "6281200000077", id, "jam", 1000 + (int64_t)i);
		in.display_name = cases[i].name;
		store_inbound_result r = t_one(s, &t, in);
		if (r.rc != STORE_OK)
			fail_msg("case %zu: %s", i, store_rc_str(r.rc));
		if (conv && r.conversation_id != conv)
			fail_msg("case %zu: a returning contact got a new conversation", i);
		conv = r.conversation_id;
		store_conv c;
		assert_int_equal(store_conv_get(s, conv, &c), STORE_OK);
		if (strcmp(c.display_name, cases[i].want_name) != 0)
			fail_msg("case %zu: name \"%s\", want \"%s\"", i, c.display_name, cases[i].want_name);
		assert_string_equal(c.bot.lang, "id");
		assert_int_equal(c.last_inbound_ms, 1000 + (int64_t)i);
	}
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM contacts WHERE address = '6281200000077'"), 1);
}

static void test_store_inbound_keeps_untrusted_text_verbatim(void **state)
{
	(void)state;
	static const char *const texts[] = {
	    "'); DROP TABLE messages; --",
	    "Om Swastyastu \xF0\x9F\x99\x8F izin PBG?",
	    "line1\nline2\r\n\t\"quoted\"",
	};
	t_decider t = {.queue = 1, .no_reply = 1};
	int64_t conv = 0;
	for (size_t i = 0; i < 3; i++) {
		char pid[16];
		snprintf(pid, sizeof pid, "u%zu", i);
		conv =
		    t_one(s, &t, t_in("whatsapp", "6281200000006", pid, texts[i], 1000 + (int64_t)i)).conversation_id;
	}
	/* A media message without a caption. */
	store_inbound media = t_in("whatsapp", "6281200000006", "u9", NULL, 2000);
	media.kind = "media";
	media.media_id = "MEDIA-1";
	media.media_type = "image/jpeg";
	t_one(s, &t, media);
	store_msg *m = NULL;
	size_t n = 0;
	assert_int_equal(store_msgs_since(s, conv, 0, 100, &m, &n), STORE_OK);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 3; i++)
		if (strcmp(m[i].text, texts[i]) != 0)
			fail_msg("text %zu changed: %s", i, m[i].text);
	assert_null(m[3].text);
	/* Paging: after the second message, at most one. */
	int64_t second = m[1].id;
	store_msgs_free(m, n);
	assert_int_equal(store_msgs_since(s, conv, second, 1, &m, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(m[0].text, texts[2]);
	store_msgs_free(m, n);
	assert_int_equal(store_msgs_since(s, 424242, 0, 10, &m, &n), STORE_OK);
	assert_int_equal(n, 0);
	store_msgs_free(m, n);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE media_type = 'image/jpeg'"), 1);
}

static void test_store_inbound_big_batch(void **state)
{
	(void)state;
	enum { N = 256 };
	static store_inbound in[N];
	static store_inbound_result r[N];
	static char pid[N][16], addr[N][16];
	static t_decider t;
	memset(&t, 0, sizeof t);
	t.queue = 1;
	for (int i = 0; i < N; i++) {
		snprintf(pid[i], sizeof pid[i], "big%d", i);
		snprintf(addr[i], sizeof addr[i], "62812%05d", i % 40);
		in[i] = t_in("whatsapp", addr[i], pid[i], "jam", 10000 + i);
	}
	assert_int_equal(store_inbound_batch(s, in, N, t_decide, &t, r), STORE_OK);
	for (int i = 0; i < N; i++)
		if (r[i].rc != STORE_OK || r[i].n_out != 1)
			fail_msg("message %d: %s", i, store_rc_str(r[i].rc));
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM outbox"), N);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM conversations"), 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_inbound_first_message_creates_conversation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_inbound_rate_window_counts_before_decide, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_inbound_reply_status_by_kind, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_inbound_escalation_sets_time_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_inbound_duplicate_in_same_and_later_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_inbound_refused_message_rolls_back_alone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_inbound_returning_contact_keeps_what_changed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_inbound_keeps_untrusted_text_verbatim, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_inbound_big_batch, setup, teardown),
	};
	return t_fixture_done(cmocka_run_group_tests(tests, NULL, NULL));
}
