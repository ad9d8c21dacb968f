/* Reporting and maintenance: stats figures on a known data set, the retention
 * purge, and an online backup taken while another handle keeps writing. */
#define T_FIXTURE_NAME "mt"
#define T_FIXTURE_BUSY_MS 5000
#include "tests/store/store_fixture.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

/* ---- stats ---- */

static void test_store_stats_known_data_set(void **state)
{
	(void)state;
	static const struct {
		const char *addr, *text;
		int64_t at;
	} msgs[] = {
	    {"62801", "jam", 1000000},
	    {"62801", "jam", 1000100},
	    {"62801", "syarat", 1000200},
	    {"62802", "jam", 1100000},
	    {"62802", "?Apa itu", 1100100},
	    {"62802", "agent", 1100200},
	    {"62803", "?apa itu ", 1200000},
	    {"62803", "?APA ITU", 1200100},
	    {"62803", "?lain", 1200200},
	    {"62803", "agent", 1200300},
	    {"62804", "agent", 1300000},
	    {"62805", "agent", 1400000},
	    /* outside [1000000, 2000000) */
	    {"62806", "jam", 999999},
	    {"62806", "?apa itu", 2000000},
	    {"62806", "agent", 2000000},
	};
	t_decider t = {.queue = 1};
	int64_t conv[16], first_out = 0;
	for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
		char pid[16];
		snprintf(pid, sizeof pid, "st%zu", i);
		store_inbound_result r = t_one(s, &t, t_in("whatsapp", msgs[i].addr, pid, msgs[i].text, msgs[i].at));
		conv[i] = r.conversation_id;
		if (i == 0)
			first_out = r.out_ids[0];
	}
	/* Waits of 10 s, 20 s and 100 s; the fourth escalation is not claimed. */
	assert_int_equal(store_conv_claim(s, conv[5], "ketut", 1100200 + 10000), STORE_OK);
	assert_int_equal(store_conv_claim(s, conv[9], "ketut", 1200300 + 20000), STORE_OK);
	assert_int_equal(store_conv_claim(s, conv[10], "putu", 1300000 + 100000), STORE_OK);
	assert_int_equal(store_outbox_fail(s, first_out, "failed", "HTTP 400", 1500000), STORE_OK);
	assert_int_equal(store_rating_add(s, conv[5], 4, 1500000), STORE_OK);
	assert_int_equal(store_rating_add(s, conv[9], 5, 1500000), STORE_OK);
	assert_int_equal(store_rating_add(s, conv[10], 1, 2500000), STORE_OK);

	store_stats st;
	assert_int_equal(store_stats_get(s, 1000000, 2000000, &st), STORE_OK);
	static const struct {
		const char *label;
		int64_t want;
	} want[] = {
	    {"inbound", 12},	{"outbound", 12}, {"fallbacks", 4},    {"conversations", 5},
	    {"escalations", 4}, {"claimed", 3},	  {"dead_letters", 1}, {"ratings", 2},
	};
	int64_t got[] = {st.inbound,	 st.outbound, st.fallbacks,    st.conversations,
			 st.escalations, st.claimed,  st.dead_letters, st.ratings};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (got[i] != want[i].want)
			fail_msg("%s: %lld, want %lld", want[i].label, (long long)got[i], (long long)want[i].want);
	assert_true(st.wait_p50_s > 19.99 && st.wait_p50_s < 20.01);
	assert_true(st.wait_p90_s > 99.99 && st.wait_p90_s < 100.01);
	assert_true(st.wait_max_s > 99.99 && st.wait_max_s < 100.01);
	assert_true(st.rating_avg > 4.49 && st.rating_avg < 4.51);

	static const store_stat_row intents[] = {{"minta_petugas", 4}, {"i_jam", 3}, {"i_syarat", 1}};
	assert_int_equal(st.n_intents, 3);
	for (size_t i = 0; i < 3; i++)
		if (strcmp(st.intents[i].key, intents[i].key) != 0 || st.intents[i].count != intents[i].count)
			fail_msg("intent %zu: %s %lld", i, st.intents[i].key, (long long)st.intents[i].count);
	static const store_stat_row unmatched[] = {{"?apa itu", 3}, {"?lain", 1}};
	assert_int_equal(st.n_unmatched, 2);
	for (size_t i = 0; i < 2; i++)
		if (strcmp(st.unmatched[i].key, unmatched[i].key) != 0 || st.unmatched[i].count != unmatched[i].count)
			fail_msg("unmatched %zu: %s %lld", i, st.unmatched[i].key, (long long)st.unmatched[i].count);

	/* An empty range is all zeros. */
	assert_int_equal(store_stats_get(s, 5000000, 6000000, &st), STORE_OK);
	assert_int_equal(st.inbound, 0);
	assert_int_equal(st.n_intents, 0);
	assert_true(st.wait_max_s == 0);
}

/* ---- purge ---- */

static void test_store_purge_blanks_old_texts_only(void **state)
{
	(void)state;
	t_decider queued = {.queue = 1}, pushed = {.queue = 0};
	store_inbound_result x = t_one(s, &queued, t_in("whatsapp", "62811", "x", "jam lama", 1000));
	store_inbound_result y = t_one(s, &pushed, t_in("web", "w-1", "y", "syarat lama", 1000));
	store_inbound media = t_in("whatsapp", "62833", "m", "foto KTP", 1500);
	media.kind = "media";
	media.media_id = "MEDIA-KTP";
	t_one(s, &pushed, media);
	store_inbound_result z = t_one(s, &queued, t_in("whatsapp", "62822", "z", "jam baru", 5000));

	int64_t n = -1;
	assert_int_equal(store_purge(s, 3000, &n), STORE_OK);
	/* x's question, y's question and answer, the media message and its answer;
	 * x's answer still waits in the outbox and is kept. */
	assert_int_equal(n, 5);
	static const struct {
		const char *label;
		int64_t conv;
		size_t idx;
		const char *want; /* NULL: blanked */
	} cases[] = {
	    {"old question", 0, 0, NULL},	{"old answer still to send", 0, 1, "re: jam lama"},
	    {"old web question", 1, 0, NULL},	{"old web answer", 1, 1, NULL},
	    {"new question", 2, 0, "jam baru"}, {"new answer", 2, 1, "re: jam baru"},
	};
	int64_t convs[3] = {x.conversation_id, y.conversation_id, z.conversation_id};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		store_msg *m = NULL;
		size_t k = 0;
		assert_int_equal(store_msgs_since(s, convs[cases[i].conv], 0, 10, &m, &k), STORE_OK);
		assert_true(k > cases[i].idx);
		const char *got = m[cases[i].idx].text;
		int ok = cases[i].want ? (got && strcmp(got, cases[i].want) == 0) : got == NULL;
		if (!ok)
			fail_msg("%s: text %s", cases[i].label, got ? got : "(null)");
		if (!cases[i].want)
			assert_null(m[cases[i].idx].payload);
		store_msgs_free(m, k);
	}
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE media_id IS NOT NULL"), 0);
	/* Counts and intents stay for the stats. */
	store_stats st;
	assert_int_equal(store_stats_get(s, 0, 10000, &st), STORE_OK);
	assert_int_equal(st.inbound, 4);
	assert_int_equal(st.n_intents, 3); /* i_jam, i_syarat, i_foto */
	/* Nothing left to purge, until x's answer has been sent. */
	assert_int_equal(store_purge(s, 3000, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_sent(s, x.out_ids[0], "wamid.X", 6000), STORE_OK);
	assert_int_equal(store_purge(s, 3000, &n), STORE_OK);
	assert_int_equal(n, 1);
}

static void test_store_purge_many(void **state)
{
	(void)state;
	t_decider t = {.queue = 0};
	enum { N = 1200 };
	static store_inbound in[N];
	static store_inbound_result r[N];
	static char pid[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(pid[i], sizeof pid[i], "p%d", i);
		in[i] = t_in("whatsapp", "62844", pid[i], "jam", 1000 + i);
	}
	for (int off = 0; off < N; off += 200)
		assert_int_equal(store_inbound_batch(s, in + off, 200, t_decide, &t, r + off), STORE_OK);
	int64_t n = 0;
	assert_int_equal(store_purge(s, 1000 + N, &n), STORE_OK);
	assert_int_equal(n, 2 * N);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE text IS NOT NULL"), 0);
}

/* ---- backup ---- */

static atomic_int stop_writer;
static atomic_int writer_batches;

static void *backup_writer(void *arg)
{
	(void)arg;
	store *w = t_open(path, 10000);
	static t_decider t;
	t.queue = 1;
	store_inbound in[5];
	store_inbound_result r[5];
	char pid[5][32], addr[5][32];
	for (int b = 0; !atomic_load(&stop_writer); b++) {
		for (int i = 0; i < 5; i++) {
			snprintf(pid[i], sizeof pid[i], "bk%d-%d", b, i);
			snprintf(addr[i], sizeof addr[i], "628%03d", (b * 5 + i) % 50);
			in[i] = t_in("whatsapp", addr[i], pid[i], "jam", 1000 + b);
		}
		if (store_inbound_batch(w, in, 5, t_decide, &t, r) == STORE_OK)
			atomic_fetch_add(&writer_batches, 1);
	}
	store_close(w);
	return NULL;
}

static void test_store_backup_while_writing(void **state)
{
	(void)state;
	char dest[512], err[512];
	t_path(dest, sizeof dest, dir, "backup.db");
	atomic_store(&stop_writer, 0);
	atomic_store(&writer_batches, 0);
	pthread_t th;
	pthread_create(&th, NULL, backup_writer, NULL);
	while (atomic_load(&writer_batches) < 50)
		usleep(1000);
	int before = atomic_load(&writer_batches);
	int rc = store_backup(s, dest, err, sizeof err);
	int after = atomic_load(&writer_batches);
	atomic_store(&stop_writer, 1);
	pthread_join(th, NULL);
	if (rc != STORE_OK)
		fail_msg("backup: %s", err);

	struct stat sb;
	assert_int_equal(stat(dest, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	store *b = t_open(dest, 1000);
	assert_int_equal(store_schema_version(b), store_schema_latest());
	int64_t in_n = t_sql_int(dest, "SELECT count(*) FROM messages WHERE direction = 'in'");
	int64_t out_n = t_sql_int(dest, "SELECT count(*) FROM outbox");
	/* Whole batches only, at least those committed before the backup began. */
	if (in_n % 5 != 0 || in_n / 5 < before || out_n != in_n)
		fail_msg("backup holds %lld inbound, %lld outbox rows; %d batches before, %d after", (long long)in_n,
			 (long long)out_n, before, after);
	assert_int_equal(t_sql_int(dest, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"),
			 0);
	store_close(b);
	print_message("backup taken with %lld batches, writer at %d..%d\n", (long long)in_n / 5, before, after);

	/* Never over the live database; a missing directory is an error. */
	assert_int_not_equal(store_backup(s, path, err, sizeof err), STORE_OK);
	assert_non_null(strstr(err, "live database"));
	char bad[600];
	snprintf(bad, sizeof bad, "%s/no/such/dir/x.db", dir);
	assert_int_not_equal(store_backup(s, bad, err, sizeof err), STORE_OK);
	/* The live database is unharmed. */
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"),
			 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_stats_known_data_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_purge_blanks_old_texts_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_purge_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_backup_while_writing, setup, teardown),
	};
	return t_fixture_done(cmocka_run_group_tests(tests, NULL, NULL));
}
