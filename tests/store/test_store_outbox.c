/* The outbox and delivery statuses: messages leave in order per conversation,
 * a lease hides an item until it expires, sent/retry/fail do what the sender
 * expects, counts add up, and a delivery status never moves backwards while
 * every report is kept in the history. */
#define T_FIXTURE_NAME "out"
#define T_FIXTURE_BUSY_MS 2000
#include "tests/store/store_fixture.h"

/* Leases at now and returns the ids (up to 8) in *ids, their count returned. */
static size_t lease_ids(int64_t now, int64_t lease_ms, size_t max, int64_t *ids)
{
	store_outbox_item *it = NULL;
	size_t n = 0;
	int rc = store_outbox_lease(s, now, lease_ms, max, &it, &n);
	if (rc != STORE_OK)
		fail_msg("lease: %s %s", store_rc_str(rc), store_errmsg(s));
	for (size_t i = 0; i < n && i < 8; i++)
		ids[i] = it[i].id;
	store_outbox_items_free(it, n);
	return n;
}

static void test_store_outbox_leaves_in_order_per_conversation(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	int64_t a[3], b;
	a[0] = t_one(s, &t, t_in("whatsapp", "62811", "a1", "satu", 1000)).out_ids[0];
	b = t_one(s, &t, t_in("whatsapp", "62822", "b1", "satu", 1001)).out_ids[0];
	a[1] = t_one(s, &t, t_in("whatsapp", "62811", "a2", "dua", 1002)).out_ids[0];
	a[2] = t_one(s, &t, t_in("whatsapp", "62811", "a3", "tiga", 1003)).out_ids[0];
	int64_t ids[8];

	/* Only the head of each conversation. */
	assert_int_equal(lease_ids(2000, 30000, 10, ids), 2);
	assert_int_equal(ids[0], a[0]);
	assert_int_equal(ids[1], b);
	/* Both are leased: a2 waits behind a1 although it is due. */
	assert_int_equal(lease_ids(2001, 30000, 10, ids), 0);
	store_outbox_counts c;
	assert_int_equal(store_outbox_counts_get(s, 2001, &c), STORE_OK);
	assert_int_equal(c.pending, 2);
	assert_int_equal(c.leased, 2);
	assert_int_equal(c.dead, 0);
	assert_int_equal(c.oldest_pending_ms, 1000);

	assert_int_equal(store_outbox_sent(s, a[0], "wamid.OUT1", 2100), STORE_OK);
	assert_int_equal(lease_ids(2200, 30000, 10, ids), 1);
	assert_int_equal(ids[0], a[1]);

	/* a2 fails for now: it comes back at its retry time, a3 still waits behind it. */
	assert_int_equal(store_outbox_retry(s, a[1], 7000, "HTTP 503", 2300), STORE_OK);
	assert_int_equal(lease_ids(2400, 30000, 10, ids), 0);
	store_outbox_item *it = NULL;
	size_t n = 0;
	assert_int_equal(store_outbox_lease(s, 7000, 30000, 10, &it, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(it[0].id, a[1]);
	assert_int_equal(it[0].attempts, 1);
	assert_string_equal(it[0].text, "re: dua");
	assert_string_equal(it[0].payload, "{\"type\":\"text\"}");
	assert_string_equal(it[0].channel, "whatsapp");
	assert_string_equal(it[0].address, "62811");
	assert_int_equal(it[0].created_ms, 1002);
	assert_int_equal(it[0].last_inbound_ms, 1003);
	store_outbox_items_free(it, n);

	/* a2 is given up: it stays as a dead letter and a3 may go. */
	assert_int_equal(store_outbox_fail(s, a[1], "dead", "8 attempts", 7100), STORE_OK);
	assert_int_equal(lease_ids(7200, 30000, 10, ids), 1);
	assert_int_equal(ids[0], a[2]);
	assert_int_equal(store_outbox_counts_get(s, 7200, &c), STORE_OK);
	assert_int_equal(c.dead, 1);
	assert_int_equal(
	    t_sql_int(path, "SELECT count(*) FROM messages WHERE status = 'dead' AND error = '8 attempts'"), 1);
	assert_int_equal(
	    t_sql_int(path, "SELECT count(*) FROM messages WHERE status = 'sent' AND provider_id = 'wamid.OUT1'"), 1);
}

static void test_store_outbox_lease_expires(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	int64_t id = t_one(s, &t, t_in("whatsapp", "62833", "x1", "jam", 1000)).out_ids[0];
	int64_t ids[8];
	assert_int_equal(lease_ids(5000, 1000, 10, ids), 1);
	assert_int_equal(lease_ids(5999, 1000, 10, ids), 0); /* still leased */
	assert_int_equal(lease_ids(6000, 1000, 10, ids), 1); /* the sender died: leased again */
	assert_int_equal(ids[0], id);
	/* Not due yet: an item written in the future is not leased. */
	t_one(s, &t, t_in("whatsapp", "62844", "x2", "jam", 90000));
	assert_int_equal(lease_ids(8000, 1000, 10, ids), 1);
	assert_int_equal(ids[0], id);
}

static void test_store_outbox_lease_respects_max(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	for (int i = 0; i < 5; i++) {
		char addr[16], pid[16];
		snprintf(addr, sizeof addr, "6289%d", i);
		snprintf(pid, sizeof pid, "m%d", i);
		t_one(s, &t, t_in("whatsapp", addr, pid, "jam", 1000 + i));
	}
	int64_t ids[8];
	assert_int_equal(lease_ids(2000, 1000, 3, ids), 3);
	assert_int_equal(lease_ids(2000, 1000, 3, ids), 2);
	assert_int_equal(lease_ids(2000, 1000, 3, ids), 0);
	assert_int_equal(lease_ids(2000, 1000, 0, ids), 0);
}

static void test_store_outbox_wrong_calls(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	int64_t id = t_one(s, &t, t_in("whatsapp", "62855", "w1", "jam", 1000)).out_ids[0];
	static const struct {
		const char *label;
		int want;
	} cases[] = {
	    {"sent unknown", STORE_ERR_NOTFOUND}, {"retry unknown", STORE_ERR_NOTFOUND},
	    {"fail bad status", STORE_ERR},	  {"fail ok", STORE_OK},
	    {"retry dead", STORE_ERR_NOTFOUND},	  {"sent dead", STORE_ERR_NOTFOUND},
	    {"fail twice", STORE_ERR_NOTFOUND},
	};
	int got[7];
	got[0] = store_outbox_sent(s, id + 1000, "x", 1);
	got[1] = store_outbox_retry(s, id + 1000, 1, "x", 1);
	got[2] = store_outbox_fail(s, id, "sent", "x", 1);
	got[3] = store_outbox_fail(s, id, "window_closed", "24h", 1);
	got[4] = store_outbox_retry(s, id, 1, "x", 1);
	got[5] = store_outbox_sent(s, id, "x", 1);
	got[6] = store_outbox_fail(s, id, "failed", "x", 1);
	for (size_t i = 0; i < 7; i++)
		if (got[i] != cases[i].want)
			fail_msg("%s: %s, want %s", cases[i].label, store_rc_str(got[i]), store_rc_str(cases[i].want));
	/* An agent's reply to a queued conversation goes through the outbox too. */
	store_out o = {.text = "Baik, kami cek", .queue = 1};
	int64_t rid = 0;
	store_conv c;
	assert_int_equal(store_conv_find(s, "whatsapp", "62855", &c), STORE_OK);
	assert_int_equal(store_agent_reply(s, c.id, "wayan", &o, 2000, &rid), STORE_OK);
	int64_t ids[8];
	assert_int_equal(lease_ids(3000, 1000, 10, ids), 1);
	assert_int_equal(ids[0], rid);
}

/* Many outcomes in one transaction: each is recorded as its single call
 * would record it, a row that is gone or a bad status spoils only itself, and
 * the conversation's next reply becomes due once its head is recorded. */
static void test_store_outbox_results_records_a_batch(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	int64_t id[6];
	for (int i = 0; i < 5; i++) {
		char addr[16], pid[16];
		snprintf(addr, sizeof addr, "6287%d", i);
		snprintf(pid, sizeof pid, "r%d", i);
		id[i] = t_one(s, &t, t_in("whatsapp", addr, pid, "jam", 1000 + i)).out_ids[0];
	}
	/* a second reply in the first conversation, behind id[0] */
	id[5] = t_one(s, &t, t_in("whatsapp", "62870", "r5", "dua", 1100)).out_ids[0];
	int64_t ids[8];
	assert_int_equal(lease_ids(2000, 30000, 10, ids), 5);

	static const struct {
		const char *label;
		int outcome;
		const char *status; /* FAIL's status */
		int want_rc;
		const char *want_msg; /* the message's status afterwards */
		int want_outbox;      /* outbox rows left for it */
	} cases[] = {
	    {"sent", STORE_OUTBOX_SENT, NULL, STORE_OK, "sent", 0},
	    {"retry", STORE_OUTBOX_RETRY, NULL, STORE_OK, "queued", 1},
	    {"dead", STORE_OUTBOX_FAIL, "dead", STORE_OK, "dead", 1},
	    {"window closed", STORE_OUTBOX_FAIL, "window_closed", STORE_OK, "window_closed", 1},
	    {"bad status", STORE_OUTBOX_FAIL, "sent", STORE_ERR, "queued", 1},
	    {"gone", STORE_OUTBOX_SENT, NULL, STORE_ERR_NOTFOUND, NULL, 0},
	};
	size_t n = sizeof cases / sizeof cases[0];
	store_outbox_result v[6];
	int rc[6];
	for (size_t i = 0; i < n; i++) {
		v[i] = (store_outbox_result){.id = i < 5 ? id[i] : id[4] + 1000,
					     .outcome = cases[i].outcome,
					     .provider_id = "wamid.OUT",
					     .next_ms = 9000,
					     .status = cases[i].status,
					     .error = "e"};
		rc[i] = -99;
	}
	v[0].provider_id = "wamid.SENT0";
	assert_int_equal(store_outbox_results(s, v, n, 3000, rc), STORE_OK);
	for (size_t i = 0; i < n; i++) {
		char sql[200];
		if (rc[i] != cases[i].want_rc)
			fail_msg("%s: %s, want %s", cases[i].label, store_rc_str(rc[i]),
				 store_rc_str(cases[i].want_rc));
		if (!cases[i].want_msg)
			continue;
		snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE id = %lld AND status = '%s'",
			 (long long)v[i].id, cases[i].want_msg);
		if (t_sql_int(path, sql) != 1)
			fail_msg("%s: message status is not %s", cases[i].label, cases[i].want_msg);
		snprintf(sql, sizeof sql, "SELECT count(*) FROM outbox WHERE message_id = %lld", (long long)v[i].id);
		if (t_sql_int(path, sql) != cases[i].want_outbox)
			fail_msg("%s: outbox rows, want %d", cases[i].label, cases[i].want_outbox);
	}
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE provider_id = 'wamid.SENT0'"), 1);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM message_status WHERE status IN ('sent', 'dead',"
					 " 'window_closed')"),
			 3);
	/* The sent head let the conversation's second reply go; the retry waits
	 * for its time; the bad-status row is still leased. */
	assert_int_equal(lease_ids(3000, 30000, 10, ids), 1);
	assert_int_equal(ids[0], id[5]);
	assert_int_equal(lease_ids(9000, 30000, 10, ids), 1);
	assert_int_equal(ids[0], id[1]);
	/* Nothing to record is fine. */
	assert_int_equal(store_outbox_results(s, v, 0, 3000, rc), STORE_OK);
}

/* HOLD (the provider refused loket's credentials) waits like a retry but
 * counts no attempt: an expired token must not bring a reply nearer to its
 * dead letter. */
static void test_store_outbox_hold_counts_no_attempt(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	int64_t id = t_one(s, &t, t_in("whatsapp", "62881", "h1", "jam", 1000)).out_ids[0];
	int64_t ids[8];
	char sql[200];
	int rc[1];

	assert_int_equal(lease_ids(2000, 30000, 10, ids), 1);
	store_outbox_result r = {.id = id, .outcome = STORE_OUTBOX_RETRY, .next_ms = 5000, .error = "http 500"};
	assert_int_equal(store_outbox_results(s, &r, 1, 2000, rc), STORE_OK);
	assert_int_equal(rc[0], STORE_OK);
	assert_int_equal(lease_ids(5000, 30000, 10, ids), 1);
	r = (store_outbox_result){.id = id, .outcome = STORE_OUTBOX_HOLD, .next_ms = 20000, .error = "190 expired"};
	assert_int_equal(store_outbox_results(s, &r, 1, 5000, rc), STORE_OK);
	assert_int_equal(rc[0], STORE_OK);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM outbox WHERE message_id = %lld AND attempts = 1 AND dead = 0"
		 " AND last_error = '190 expired' AND next_attempt_ms = 20000",
		 (long long)id);
	assert_int_equal(t_sql_int(path, sql), 1);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE id = %lld AND status = 'queued'", (long long)id);
	assert_int_equal(t_sql_int(path, sql), 1);
	assert_int_equal(lease_ids(19999, 30000, 10, ids), 0);
	/* a hold that made no request has no error of its own: the last stays */
	assert_int_equal(lease_ids(20000, 30000, 10, ids), 1);
	r = (store_outbox_result){.id = id, .outcome = STORE_OUTBOX_HOLD, .next_ms = 40000, .error = NULL};
	assert_int_equal(store_outbox_results(s, &r, 1, 20000, rc), STORE_OK);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM outbox WHERE message_id = %lld AND attempts = 1"
		 " AND last_error = '190 expired' AND next_attempt_ms = 40000",
		 (long long)id);
	assert_int_equal(t_sql_int(path, sql), 1);
	assert_int_equal(lease_ids(39999, 30000, 10, ids), 0);
	assert_int_equal(lease_ids(40000, 30000, 10, ids), 1);
	assert_int_equal(ids[0], id);
}

/* A database locked by another connection: nothing of the batch is recorded,
 * every item says so, and the same batch goes through once the lock is gone. */
static void test_store_outbox_results_busy_records_nothing(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	int64_t a = t_one(s, &t, t_in("whatsapp", "62891", "k1", "jam", 1000)).out_ids[0];
	int64_t b = t_one(s, &t, t_in("whatsapp", "62892", "k2", "jam", 1001)).out_ids[0];
	int64_t ids[8];
	assert_int_equal(lease_ids(2000, 30000, 10, ids), 2);
	store_outbox_result v[2] = {
	    {.id = a, .outcome = STORE_OUTBOX_SENT, .provider_id = "wamid.A"},
	    {.id = b, .outcome = STORE_OUTBOX_RETRY, .next_ms = 5000, .error = "500"},
	};
	int rc[2];
	sqlite3 *other = NULL;
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	store *quick = t_open(path, 50);
	assert_int_equal(store_outbox_results(quick, v, 2, 3000, rc), STORE_ERR_BUSY);
	assert_int_equal(rc[0], STORE_ERR_BUSY);
	assert_int_equal(rc[1], STORE_ERR_BUSY);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM outbox"), 2);
	assert_int_equal(store_outbox_results(quick, v, 2, 3000, rc), STORE_OK);
	assert_int_equal(rc[0], STORE_OK);
	assert_int_equal(rc[1], STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM outbox"), 1);
	store_close(quick);
}

/* ---- delivery statuses ---- */

static void test_store_status_never_moves_backwards(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		const char *reports[4];
		const char *want;
	} cases[] = {
	    {"in order", {"delivered", "read", NULL}, "read"},
	    {"read before delivered", {"read", "delivered", NULL}, "read"},
	    {"late sent", {"delivered", "sent", NULL}, "delivered"},
	    {"failed after sent", {"sent", "failed", NULL}, "failed"},
	    {"failed after read", {"read", "failed", NULL}, "failed"},
	    {"all repeated", {"read", "read", "delivered", "sent"}, "read"},
	    {"unknown status is history only", {"delivered", "deleted", NULL}, "delivered"},
	};
	t_decider t = {.queue = 1};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char pid[16], wamid[32], addr[16];
		snprintf(pid, sizeof pid, "s%zu", i);
		snprintf(addr, sizeof addr, "6286%zu", i);
		snprintf(wamid, sizeof wamid, "wamid.S%zu", i);
		int64_t id = t_one(s, &t, t_in("whatsapp", addr, pid, "jam", 1000)).out_ids[0];
		assert_int_equal(store_outbox_sent(s, id, wamid, 2000), STORE_OK);
		int n = 0;
		for (; n < 4 && cases[i].reports[n]; n++) {
			const char *st = cases[i].reports[n];
			int rc = store_msg_status(s, "whatsapp", addr, wamid, st,
						  strcmp(st, "failed") == 0 ? "131047 re-engagement" : NULL, 3000 + n);
			if (rc != STORE_OK)
				fail_msg("%s: report %s: %s", cases[i].label, st, store_rc_str(rc));
		}
		char sql[160];
		snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE id = %lld AND status = '%s'",
			 (long long)id, cases[i].want);
		if (t_sql_int(path, sql) != 1)
			fail_msg("%s: status is not %s", cases[i].label, cases[i].want);
		/* sent + every report (queued is the message row itself) */
		snprintf(sql, sizeof sql, "SELECT count(*) FROM message_status WHERE message_id = %lld", (long long)id);
		if (t_sql_int(path, sql) != 1 + n)
			fail_msg("%s: %lld history rows, want %d", cases[i].label, (long long)t_sql_int(path, sql),
				 1 + n);
	}
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE error = '131047 re-engagement'"), 2);
	assert_int_equal(store_msg_status(s, "whatsapp", "62860", "wamid.nope", "read", NULL, 1), STORE_ERR_NOTFOUND);
	assert_int_equal(store_msg_status(s, "twilio", "62860", "wamid.S0", "read", NULL, 1), STORE_ERR_NOTFOUND);
	/* the id is looked up for the address it was sent to: another citizen's is not found */
	assert_int_equal(store_msg_status(s, "whatsapp", "62861", "wamid.S0", "read", NULL, 1), STORE_ERR_NOTFOUND);
	assert_int_equal(store_msg_status(s, "whatsapp", "62860", "wamid.S0", "read", NULL, 1), STORE_OK);
	assert_int_equal(store_msg_status(s, "whatsapp", NULL, "wamid.S0", "read", NULL, 1), STORE_ERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_outbox_leaves_in_order_per_conversation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_outbox_lease_expires, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_outbox_lease_respects_max, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_outbox_wrong_calls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_outbox_results_records_a_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_outbox_hold_counts_no_attempt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_outbox_results_busy_records_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_status_never_moves_backwards, setup, teardown),
	};
	return t_fixture_done(cmocka_run_group_tests(tests, NULL, NULL));
}
