/* The agents' side: claim races between threads with their own handles,
 * resolve and transfer rules, the audit log, agent replies, ratings, accounts
 * and sessions. */
#define T_FIXTURE_NAME "ag"
#define T_FIXTURE_BUSY_MS 5000
#include "tests/store/store_fixture.h"

#include <pthread.h>

/* A new queued conversation for address. */
static int64_t queued_conv(const char *address, int64_t at)
{
	t_decider t = {.queue = 1};
	char pid[64];
	snprintf(pid, sizeof pid, "q-%s-%lld", address, (long long)at);
	store_inbound_result r = t_one(s, &t, t_in("whatsapp", address, pid, "agent", at));
	return r.conversation_id;
}

/* ---- the claim race ---- */

enum { ROUNDS = 1000 };

typedef struct racer {
	const char *name;
	int results[ROUNDS];
} racer;

static pthread_barrier_t start_bar, end_bar;
static int64_t race_conv;

static void *race(void *arg)
{
	racer *r = arg;
	store *h = t_open(path, 10000);
	for (int i = 0; i < ROUNDS; i++) {
		pthread_barrier_wait(&start_bar);
		r->results[i] = store_conv_claim(h, race_conv, r->name, 1000 + i);
		pthread_barrier_wait(&end_bar);
	}
	store_close(h);
	return NULL;
}

static void test_store_claim_race_has_exactly_one_winner(void **state)
{
	(void)state;
	racer a = {.name = "ketut"}, b = {.name = "putu"};
	pthread_t ta, tb;
	pthread_barrier_init(&start_bar, NULL, 3);
	pthread_barrier_init(&end_bar, NULL, 3);
	pthread_create(&ta, NULL, race, &a);
	pthread_create(&tb, NULL, race, &b);
	int wins_a = 0;
	for (int i = 0; i < ROUNDS; i++) {
		char addr[32];
		snprintf(addr, sizeof addr, "race-%d", i);
		race_conv = queued_conv(addr, 1000 + i);
		pthread_barrier_wait(&start_bar);
		pthread_barrier_wait(&end_bar);
		int ok_a = a.results[i] == STORE_OK, ok_b = b.results[i] == STORE_OK;
		if (ok_a + ok_b != 1)
			fail_msg("round %d: ketut %s, putu %s", i, store_rc_str(a.results[i]),
				 store_rc_str(b.results[i]));
		int loser = ok_a ? b.results[i] : a.results[i];
		if (loser != STORE_ERR_CONFLICT)
			fail_msg("round %d: the loser got %s", i, store_rc_str(loser));
		store_conv c;
		assert_int_equal(store_conv_get(s, race_conv, &c), STORE_OK);
		assert_int_equal(c.bot.mode, BOT_MODE_ASSIGNED);
		assert_string_equal(c.agent, ok_a ? "ketut" : "putu");
		wins_a += ok_a;
	}
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&start_bar);
	pthread_barrier_destroy(&end_bar);
	/* One audit row per win, none for the losses. */
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM audit WHERE what = 'claim'"), ROUNDS);
	print_message("ketut won %d of %d rounds\n", wins_a, ROUNDS);
}

/* ---- claim, resolve, transfer rules ---- */

static void test_store_claim_resolve_transfer_rules(void **state)
{
	(void)state;
	assert_int_equal(store_agent_add(s, "ketut", "agent", "$argon2id$k", 1), STORE_OK);
	assert_int_equal(store_agent_add(s, "putu", "agent", "$argon2id$p", 1), STORE_OK);
	assert_int_equal(store_agent_add(s, "komang", "agent", "$argon2id$m", 1), STORE_OK);
	assert_int_equal(store_agent_set_disabled(s, "komang", 1, 2), STORE_OK);
	t_decider t = {.queue = 1};
	int64_t bot_conv = t_one(s, &t, t_in("whatsapp", "62870", "b1", "jam", 100)).conversation_id;
	int64_t q = queued_conv("62871", 1000);

	static const struct {
		const char *label;
		int op;	   /* 0 claim, 1 resolve, 2 transfer */
		int which; /* 0: q, 1: bot_conv, 2: missing */
		const char *agent, *to;
		int want;
		const char *want_agent;
		bot_mode want_mode;
	} cases[] = {
	    {"claim a bot conversation", 0, 1, "ketut", NULL, STORE_ERR_CONFLICT, "", BOT_MODE_BOT},
	    {"claim a missing conversation", 0, 2, "ketut", NULL, STORE_ERR_NOTFOUND, NULL, 0},
	    {"resolve before claim", 1, 0, "ketut", NULL, STORE_ERR_CONFLICT, "", BOT_MODE_QUEUED},
	    {"claim", 0, 0, "ketut", NULL, STORE_OK, "ketut", BOT_MODE_ASSIGNED},
	    {"claim again", 0, 0, "putu", NULL, STORE_ERR_CONFLICT, "ketut", BOT_MODE_ASSIGNED},
	    {"resolve by another agent", 1, 0, "putu", NULL, STORE_ERR_CONFLICT, "ketut", BOT_MODE_ASSIGNED},
	    {"transfer by another agent", 2, 0, "putu", "putu", STORE_ERR_CONFLICT, "ketut", BOT_MODE_ASSIGNED},
	    {"transfer to nobody", 2, 0, "ketut", "nobody", STORE_ERR_NOTFOUND, "ketut", BOT_MODE_ASSIGNED},
	    {"transfer to a disabled agent", 2, 0, "ketut", "komang", STORE_ERR_NOTFOUND, "ketut", BOT_MODE_ASSIGNED},
	    {"transfer", 2, 0, "ketut", "putu", STORE_OK, "putu", BOT_MODE_ASSIGNED},
	    {"resolve by the old agent", 1, 0, "ketut", NULL, STORE_ERR_CONFLICT, "putu", BOT_MODE_ASSIGNED},
	    {"resolve", 1, 0, "putu", NULL, STORE_OK, "", BOT_MODE_BOT},
	    {"resolve twice", 1, 0, "putu", NULL, STORE_ERR_CONFLICT, "", BOT_MODE_BOT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t id = cases[i].which == 0 ? q : cases[i].which == 1 ? bot_conv : 424242;
		int rc = cases[i].op == 0 ? store_conv_claim(s, id, cases[i].agent, 2000 + (int64_t)i)
			 : cases[i].op == 1
			     ? store_conv_resolve(s, id, cases[i].agent, 2000 + (int64_t)i)
			     : store_conv_transfer(s, id, cases[i].agent, cases[i].to, 2000 + (int64_t)i);
		if (rc != cases[i].want)
			fail_msg("%s: %s, want %s", cases[i].label, store_rc_str(rc), store_rc_str(cases[i].want));
		if (!cases[i].want_agent)
			continue;
		store_conv c;
		assert_int_equal(store_conv_get(s, id, &c), STORE_OK);
		if (strcmp(c.agent, cases[i].want_agent) != 0 || c.bot.mode != cases[i].want_mode)
			fail_msg("%s: agent %s mode %d", cases[i].label, c.agent, c.bot.mode);
	}
	store_conv c;
	assert_int_equal(store_conv_get(s, q, &c), STORE_OK);
	assert_int_equal(c.escalated_ms, 0);
	assert_int_equal(c.claimed_ms, 0);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM audit"), 3);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM audit WHERE what = 'transfer' AND who = 'ketut'"
					 " AND detail = 'putu' AND object = 'conversation:2'"),
			 1);
	/* Back with the bot, it can escalate and be claimed again. */
	t_one(s, &t, t_in("whatsapp", "62871", "again", "agent", 9000));
	assert_int_equal(store_conv_claim(s, q, "putu", 9500), STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM escalations WHERE claimed_ms > 0"), 2);
}

static void test_store_queue_list_oldest_first(void **state)
{
	(void)state;
	int64_t late = queued_conv("62880", 5000);
	int64_t early = queued_conv("62881", 3000);
	int64_t mid = queued_conv("62882", 4000);
	store_conv *q = NULL;
	size_t n = 0;
	assert_int_equal(store_queue_list(s, 10, &q, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(q[0].id, early);
	assert_int_equal(q[1].id, mid);
	assert_int_equal(q[2].id, late);
	assert_string_equal(q[0].address, "62881");
	store_convs_free(q);
	assert_int_equal(store_conv_claim(s, early, "ketut", 6000), STORE_OK);
	assert_int_equal(store_queue_list(s, 1, &q, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(q[0].id, mid);
	store_convs_free(q);
}

static void test_store_agent_reply_and_rating(void **state)
{
	(void)state;
	int64_t q = queued_conv("62890", 1000);
	assert_int_equal(store_conv_claim(s, q, "ketut", 2000), STORE_OK);
	store_out o = {.text = "Selamat siang, saya Ketut", .payload = "{\"t\":1}", .queue = 0};
	int64_t id = 0;
	assert_int_equal(store_agent_reply(s, q, "ketut", &o, 3000, &id), STORE_OK);
	assert_int_equal(store_agent_reply(s, 424242, "ketut", &o, 3000, &id), STORE_ERR_NOTFOUND);
	store_msg *m = NULL;
	size_t n = 0;
	assert_int_equal(store_msgs_since(s, q, 0, 10, &m, &n), STORE_OK);
	assert_string_equal(m[n - 1].author, "ketut");
	assert_string_equal(m[n - 1].status, "delivered");
	assert_string_equal(m[n - 1].text, "Selamat siang, saya Ketut");
	assert_string_equal(m[0].author, "");
	store_msgs_free(m, n);

	static const struct {
		int rating;
		int64_t conv;
		int want;
	} cases[] = {
	    {0, 0, STORE_ERR}, {6, 0, STORE_ERR}, {5, 424242, STORE_ERR_NOTFOUND}, {5, 0, STORE_OK}, {1, 0, STORE_OK}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = store_rating_add(s, cases[i].conv ? cases[i].conv : q, cases[i].rating, 4000);
		if (rc != cases[i].want)
			fail_msg("rating %d: %s", cases[i].rating, store_rc_str(rc));
	}
	store_stats st;
	assert_int_equal(store_stats_get(s, 0, 10000, &st), STORE_OK);
	assert_int_equal(st.ratings, 2);
	assert_true(st.rating_avg > 2.99 && st.rating_avg < 3.01);
}

/* ---- accounts and sessions ---- */

static void test_store_agents(void **state)
{
	(void)state;
	static const struct {
		const char *name, *role, *hash;
		int want;
	} adds[] = {
	    {"wayan", "admin", "$argon2id$v=19$w", STORE_OK},
	    {"ketut", "agent", "$argon2id$v=19$k", STORE_OK},
	    {"wayan", "agent", "$argon2id$v=19$x", STORE_ERR_CONFLICT},
	    {"made", "root", "$argon2id$v=19$m", STORE_ERR},
	    {"", "agent", "$argon2id$v=19$m", STORE_ERR},
	    {"nyoman", "agent", "", STORE_ERR},
	};
	for (size_t i = 0; i < sizeof adds / sizeof adds[0]; i++) {
		int rc = store_agent_add(s, adds[i].name, adds[i].role, adds[i].hash, 100);
		if (rc != adds[i].want)
			fail_msg("add %s/%s: %s", adds[i].name, adds[i].role, store_rc_str(rc));
	}
	store_agent a;
	assert_int_equal(store_agent_get(s, "wayan", &a), STORE_OK);
	assert_string_equal(a.role, "admin");
	assert_string_equal(a.pwhash, "$argon2id$v=19$w");
	assert_int_equal(a.disabled, 0);
	assert_int_equal(a.created_ms, 100);
	assert_int_equal(store_agent_get(s, "nobody", &a), STORE_ERR_NOTFOUND);
	store_agent *v = NULL;
	size_t n = 0;
	assert_int_equal(store_agent_list(s, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "ketut");
	assert_string_equal(v[1].name, "wayan");
	free(v);
	assert_int_equal(store_agent_set_pwhash(s, "ketut", "$argon2id$new", 200), STORE_OK);
	assert_int_equal(store_agent_get(s, "ketut", &a), STORE_OK);
	assert_string_equal(a.pwhash, "$argon2id$new");
	assert_int_equal(store_agent_set_pwhash(s, "nobody", "$argon2id$new", 200), STORE_ERR_NOTFOUND);
	assert_int_equal(store_agent_set_disabled(s, "nobody", 1, 200), STORE_ERR_NOTFOUND);
	assert_int_equal(store_audit(s, "cli", "agent_add", "agent:ketut", NULL, 300), STORE_OK);
	assert_int_equal(store_audit(s, "cli", "", "agent:ketut", NULL, 300), STORE_ERR);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM audit WHERE what = 'agent_add'"), 1);
}

static void test_store_sessions(void **state)
{
	(void)state;
	unsigned char h1[32], h2[32], h3[32];
	memset(h1, 0x11, sizeof h1);
	memset(h2, 0x22, sizeof h2);
	memset(h3, 0x33, sizeof h3);
	assert_int_equal(store_agent_add(s, "ketut", "agent", "$argon2id$k", 1), STORE_OK);
	assert_int_equal(store_session_add(s, "ketut", h1, 10000, 1000), STORE_OK);
	assert_int_equal(store_session_add(s, "ketut", h2, 2000, 1000), STORE_OK);
	assert_int_equal(store_session_add(s, "nobody", h3, 10000, 1000), STORE_ERR_NOTFOUND);
	assert_int_equal(store_session_add(s, "ketut", h1, 10000, 1000), STORE_ERR_CONFLICT);
	char who[STORE_AGENT_MAX];
	const struct {
		const char *label;
		const unsigned char *hash;
		int64_t now;
		int want;
	} cases[] = {
	    {"live", h1, 5000, STORE_OK},
	    {"expired", h2, 2000, STORE_ERR_NOTFOUND},
	    {"unknown", h3, 5000, STORE_ERR_NOTFOUND},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = store_session_get(s, cases[i].hash, cases[i].now, who, sizeof who);
		if (rc != cases[i].want)
			fail_msg("%s: %s", cases[i].label, store_rc_str(rc));
	}
	assert_int_equal(store_session_get(s, h1, 5000, who, sizeof who), STORE_OK);
	assert_string_equal(who, "ketut");
	/* A disabled agent's sessions stop working at once, and come back with it. */
	assert_int_equal(store_agent_set_disabled(s, "ketut", 1, 3000), STORE_OK);
	assert_int_equal(store_session_get(s, h1, 5000, who, sizeof who), STORE_ERR_NOTFOUND);
	assert_int_equal(store_agent_set_disabled(s, "ketut", 0, 3000), STORE_OK);
	assert_int_equal(store_session_get(s, h1, 5000, who, sizeof who), STORE_OK);
	assert_int_equal(store_session_delete(s, h1), STORE_OK);
	assert_int_equal(store_session_get(s, h1, 5000, who, sizeof who), STORE_ERR_NOTFOUND);
	assert_int_equal(store_session_delete(s, h1), STORE_ERR_NOTFOUND);
	/* Only 32-byte hashes are kept. */
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM sessions WHERE length(token_hash) <> 32"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_claim_race_has_exactly_one_winner, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_claim_resolve_transfer_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_queue_list_oldest_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_agent_reply_and_rating, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_agents, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_sessions, setup, teardown),
	};
	return t_fixture_done(cmocka_run_group_tests(tests, NULL, NULL));
}
