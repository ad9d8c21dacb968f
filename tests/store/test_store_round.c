/* Rounds, the syncer and checkpoints: a round's calls (inbound messages,
 * leases, outcomes, statuses) reach other handles all at once on commit and
 * not at all on rollback or close; a call that fails inside a round is undone
 * alone; a round holds the write lock until it ends; a lease hides a row until
 * it ends or a retry makes it due; a store_syncer syncs the WAL of a
 * sync_later handle and follows a replaced file; a no_checkpoint handle lets
 * the WAL grow until another handle's store_checkpoint copies and restarts it. */
#define T_FIXTURE_NAME "round"
#define T_FIXTURE_BUSY_MS 2000
#include "tests/store/store_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

/* Only to play an error that ends SQLite's transaction (I/O, disk full). */
#include "store/store_int.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static store *open_with(const char *p, int busy_ms, int sync_later, int no_checkpoint)
{
	char err[512];
	store_opts o = {
	    .path = p, .busy_timeout_ms = busy_ms, .sync_later = sync_later, .no_checkpoint = no_checkpoint};
	store *h = store_open(&o, err, sizeof err);
	if (!h)
		fail_msg("store_open(%s): %s", p, err);
	return h;
}

/* The size of p's WAL file, -1 when there is none. */
static off_t wal_size(const char *p)
{
	char wal[620];
	struct stat st;
	snprintf(wal, sizeof wal, "%s-wal", p);
	return stat(wal, &st) == 0 ? st.st_size : -1;
}

/* Leases on h at now and returns how many; their ids (up to 8) in ids. */
static size_t lease_ids(store *h, int64_t now, int64_t lease_ms, size_t max, int64_t *ids)
{
	store_outbox_item *it = NULL;
	size_t n = 0;
	int rc = store_outbox_lease(h, now, lease_ms, max, &it, &n);
	if (rc != STORE_OK)
		fail_msg("lease: %s %s", store_rc_str(rc), store_errmsg(h));
	for (size_t i = 0; i < n && i < 8; i++)
		ids[i] = it[i].id;
	store_outbox_items_free(it, n);
	return n;
}

/* The status of message id as the file says. */
static int msg_has_status(int64_t id, const char *status)
{
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE id = %lld AND status = '%s'", (long long)id,
		 status);
	return t_sql_int(path, sql) == 1;
}

/* ---- rounds ---- */

/* An inbound batch, a lease, the sender's outcomes and a delivery status in
 * one round: nobody else sees any of it until the commit, then all of it. */
static void test_store_round_commits_every_call_at_once(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	store_inbound in[2] = {
	    t_in("whatsapp", "62811", "wamid.A", "jam", 1000),
	    t_in("whatsapp", "62822", "wamid.B", "syarat", 1001),
	};
	store_inbound_result r[2];
	assert_int_equal(store_round_begin(s), STORE_OK);
	assert_int_equal(store_inbound_batch(s, in, 2, t_decide, &t, r), STORE_OK);
	assert_int_equal(r[0].rc, STORE_OK);
	assert_int_equal(r[1].rc, STORE_OK);
	assert_int_equal(r[0].n_out, 1);
	int64_t a = r[0].out_ids[0], b = r[1].out_ids[0];

	/* The round's own calls see what it wrote so far. */
	int64_t ids[8];
	assert_int_equal(lease_ids(s, 2000, 30000, 10, ids), 2);
	assert_int_equal(ids[0], a);
	assert_int_equal(ids[1], b);
	store_outbox_result v[2] = {
	    {.id = a, .outcome = STORE_OUTBOX_SENT, .provider_id = "wamid.OUT.A"},
	    {.id = b, .outcome = STORE_OUTBOX_RETRY, .next_ms = 9000, .error = "HTTP 503"},
	};
	int rc[2] = {-99, -99};
	assert_int_equal(store_outbox_results(s, v, 2, 2100, rc), STORE_OK);
	assert_int_equal(rc[0], STORE_OK);
	assert_int_equal(rc[1], STORE_OK);
	assert_int_equal(store_msg_status(s, "whatsapp", "62811", "wamid.OUT.A", "delivered", NULL, 2200), STORE_OK);

	/* Before the commit another handle sees nothing. */
	store *o = t_open(path, 2000);
	store_conv c;
	store_outbox_counts k;
	assert_int_equal(store_conv_find(o, "whatsapp", "62811", &c), STORE_ERR_NOTFOUND);
	assert_int_equal(store_outbox_counts_get(o, 2300, &k), STORE_OK);
	assert_int_equal(k.pending + k.leased + k.dead, 0);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages"), 0);

	assert_int_equal(store_round_commit(s), STORE_OK);

	/* After it, everything. */
	assert_int_equal(store_conv_find(o, "whatsapp", "62811", &c), STORE_OK);
	assert_int_equal(c.id, r[0].conversation_id);
	assert_string_equal(c.bot.context, "ctx_jam");
	store_msg *m = NULL;
	size_t n = 0;
	assert_int_equal(store_msgs_since(o, c.id, 0, 10, &m, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(m[0].direction, "in");
	assert_string_equal(m[0].status, "received");
	assert_string_equal(m[1].direction, "out");
	assert_string_equal(m[1].status, "delivered");
	assert_string_equal(m[1].text, "re: jam");
	store_msgs_free(m, n);
	assert_int_equal(store_conv_find(o, "whatsapp", "62822", &c), STORE_OK);
	assert_true(msg_has_status(b, "queued"));
	/* sent, delivered (queued is the message row itself) */
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM message_status WHERE message_id = %lld", (long long)a);
	assert_int_equal(t_sql_int(path, sql), 2);
	/* the sent row is gone, the retried one waits for 9000 */
	assert_int_equal(store_outbox_counts_get(o, 2300, &k), STORE_OK);
	assert_int_equal(k.pending, 1);
	assert_int_equal(k.leased, 0);
	assert_int_equal(lease_ids(o, 8999, 30000, 10, ids), 0);
	store_outbox_item *it = NULL;
	assert_int_equal(store_outbox_lease(o, 9000, 30000, 10, &it, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(it[0].id, b);
	assert_int_equal(it[0].attempts, 1);
	store_outbox_items_free(it, n);
	store_close(o);
}

/* Writes one of each kind into an open round on s at now: a new contact's
 * message, a lease of the row committed before (id q), its outcome, an agent. */
static void write_a_round(t_decider *t, int64_t now, int64_t q, const char *addr, const char *pid)
{
	store_inbound_result r = t_one(s, t, t_in("whatsapp", addr, pid, "jam", now));
	assert_int_equal(r.rc, STORE_OK);
	int64_t ids[8];
	assert_int_equal(lease_ids(s, now, 30000, 10, ids), 2);
	assert_int_equal(ids[0], q);
	assert_int_equal(store_outbox_sent(s, q, "wamid.Q", now + 100), STORE_OK);
	assert_int_equal(store_agent_add(s, "wayan", "agent", "$argon2id$x", now + 200), STORE_OK);
}

/* What write_a_round wrote is not there for another handle: the row
 * committed before is still queued and leasable at now. */
static void assert_round_left_nothing(int64_t now, int64_t q, const char *addr)
{
	store *o = t_open(path, 2000);
	store_conv c;
	store_agent ag;
	int64_t ids[8];
	assert_int_equal(store_conv_find(o, "whatsapp", addr, &c), STORE_ERR_NOTFOUND);
	assert_int_equal(store_agent_get(o, "wayan", &ag), STORE_ERR_NOTFOUND);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages"), 2);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE provider_id = 'wamid.Q'"), 0);
	assert_true(msg_has_status(q, "queued"));
	/* the lease went with the round: the row is due now, not at now + 30000 */
	assert_int_equal(lease_ids(o, now, 1, 10, ids), 1);
	assert_int_equal(ids[0], q);
	store_close(o);
}

static void test_store_round_rollback_or_close_keeps_nothing(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	int64_t q = t_one(s, &t, t_in("whatsapp", "62833", "wamid.P", "jam", 1000)).out_ids[0];

	assert_int_equal(store_round_begin(s), STORE_OK);
	write_a_round(&t, 3000, q, "62844", "wamid.R1");
	store_round_rollback(s);
	assert_round_left_nothing(3000, q, "62844");
	/* The handle is out of the round: a call commits on its own again. */
	assert_int_equal(store_audit(s, "admin", "check", "x", NULL, 3300), STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM audit WHERE what = 'check'"), 1);
	/* a rollback with no round open does nothing */
	store_round_rollback(s);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM audit WHERE what = 'check'"), 1);

	/* Closing the handle with the round open is a rollback too. */
	assert_int_equal(store_round_begin(s), STORE_OK);
	write_a_round(&t, 4000, q, "62855", "wamid.R2");
	store_close(s);
	s = t_open(path, T_FIXTURE_BUSY_MS);
	assert_round_left_nothing(4000, q, "62855");
	assert_int_equal(store_round_begin(s), STORE_OK);
	assert_int_equal(store_round_commit(s), STORE_OK);
}

/* A delivery status for an unknown id, a refused message and a claim of a
 * conversation nobody queued fail inside the round; each is undone alone and
 * what came before and after commits. */
static void test_store_round_failed_call_is_undone_alone(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	assert_int_equal(store_round_begin(s), STORE_OK);
	store_inbound_result a = t_one(s, &t, t_in("whatsapp", "62811", "f1", "jam", 1000));
	assert_int_equal(a.rc, STORE_OK);
	assert_int_equal(store_msg_status(s, "whatsapp", "62811", "wamid.nope", "read", NULL, 1100),
			 STORE_ERR_NOTFOUND);
	assert_int_equal(store_conv_claim(s, a.conversation_id, "wayan", 1150), STORE_ERR_CONFLICT);
	store_inbound in[3] = {
	    t_in("whatsapp", "62822", "f2", "syarat", 1200),
	    t_in("whatsapp", "62833", "f3", "refuse", 1201),
	    t_in("whatsapp", "62811", "f4", "agent", 1202),
	};
	store_inbound_result r[3];
	assert_int_equal(store_inbound_batch(s, in, 3, t_decide, &t, r), STORE_OK);
	assert_int_equal(r[0].rc, STORE_OK);
	assert_int_equal(r[1].rc, STORE_ERR);
	assert_int_equal(r[2].rc, STORE_OK);
	/* now queued: the claim goes through, in the same round */
	assert_int_equal(store_conv_claim(s, a.conversation_id, "wayan", 1300), STORE_OK);
	assert_int_equal(store_round_commit(s), STORE_OK);

	store *o = t_open(path, 2000);
	store_conv c;
	assert_int_equal(store_conv_find(o, "whatsapp", "62811", &c), STORE_OK);
	assert_string_equal(c.agent, "wayan");
	assert_int_equal(c.claimed_ms, 1300);
	assert_int_equal(store_conv_find(o, "whatsapp", "62822", &c), STORE_OK);
	assert_int_equal(store_conv_find(o, "whatsapp", "62833", &c), STORE_ERR_NOTFOUND);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE direction = 'in'"), 3);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM contacts WHERE address = '62833'"), 0);
	/* the failed status wrote no history (queued replies have none yet) */
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM message_status"), 0);
	/* one audit row: the successful claim */
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM audit"), 1);
	store_close(o);
}

/* store_outbox_results inside a round: the unknown id fails alone, the
 * others are recorded and committed with the round. */
static void test_store_round_outbox_results_unknown_id_fails_alone(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	int64_t a = t_one(s, &t, t_in("whatsapp", "62811", "o1", "jam", 1000)).out_ids[0];
	int64_t b = t_one(s, &t, t_in("whatsapp", "62822", "o2", "jam", 1001)).out_ids[0];
	int64_t ids[8];
	assert_int_equal(store_round_begin(s), STORE_OK);
	assert_int_equal(lease_ids(s, 2000, 30000, 10, ids), 2);
	store_outbox_result v[3] = {
	    {.id = a, .outcome = STORE_OUTBOX_SENT, .provider_id = "wamid.A"},
	    {.id = b + 1000, .outcome = STORE_OUTBOX_SENT, .provider_id = "wamid.GONE"},
	    {.id = b, .outcome = STORE_OUTBOX_FAIL, .status = "window_closed", .error = "24h"},
	};
	int rc[3] = {-99, -99, -99};
	assert_int_equal(store_outbox_results(s, v, 3, 2100, rc), STORE_OK);
	assert_int_equal(rc[0], STORE_OK);
	assert_int_equal(rc[1], STORE_ERR_NOTFOUND);
	assert_int_equal(rc[2], STORE_OK);
	/* the round goes on */
	assert_int_equal(store_msg_status(s, "whatsapp", "62811", "wamid.A", "read", NULL, 2200), STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE status = 'sent'"), 0);
	assert_int_equal(store_round_commit(s), STORE_OK);

	assert_true(msg_has_status(a, "read"));
	assert_true(msg_has_status(b, "window_closed"));
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE provider_id = 'wamid.GONE'"), 0);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM outbox"), 1); /* b, dead */
	store *o = t_open(path, 2000);
	store_outbox_counts k;
	assert_int_equal(store_outbox_counts_get(o, 2300, &k), STORE_OK);
	assert_int_equal(k.dead, 1);
	assert_int_equal(k.pending + k.leased, 0);
	store_close(o);
}

static void test_store_round_misuse_fails_clearly(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	/* commit with no round */
	assert_int_equal(store_round_commit(s), STORE_ERR);
	assert_non_null(strstr(store_errmsg(s), "no round"));

	assert_int_equal(store_round_begin(s), STORE_OK);
	assert_int_equal(t_one(s, &t, t_in("whatsapp", "62811", "m1", "jam", 1000)).rc, STORE_OK);
	/* a second begin is refused, and the first round is intact */
	assert_int_equal(store_round_begin(s), STORE_ERR);
	assert_non_null(strstr(store_errmsg(s), "already open"));
	assert_int_equal(t_one(s, &t, t_in("whatsapp", "62822", "m2", "jam", 1001)).rc, STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages"), 0);
	assert_int_equal(store_round_commit(s), STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE direction = 'in'"), 2);
	/* committed once: a second commit has no round */
	assert_int_equal(store_round_commit(s), STORE_ERR);
	/* and calls commit on their own again */
	assert_int_equal(t_one(s, &t, t_in("whatsapp", "62833", "m3", "jam", 1002)).rc, STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE direction = 'in'"), 3);

	/* An empty round commits. */
	assert_int_equal(store_round_begin(s), STORE_OK);
	assert_int_equal(store_round_commit(s), STORE_OK);

	/* A read-only handle has no rounds. */
	char err[512];
	store_opts ro = {.path = path, .busy_timeout_ms = 100, .readonly = 1};
	store *r = store_open(&ro, err, sizeof err);
	if (!r)
		fail_msg("read-only open: %s", err);
	assert_int_equal(store_round_begin(r), STORE_ERR);
	assert_int_equal(store_round_commit(r), STORE_ERR);
	store_close(r);
}

/* An error that ends SQLite's transaction mid-round (an I/O error, a full
 * disk; played here by rolling the connection back under the store): every
 * later call and the commit fail, nothing of the round is kept, and the next
 * round works. */
static void test_store_round_ended_by_sqlite_fails_to_the_end(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	assert_int_equal(store_round_begin(s), STORE_OK);
	assert_int_equal(t_one(s, &t, t_in("whatsapp", "62811", "e1", "jam", 1000)).rc, STORE_OK);
	assert_int_equal(sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);

	store_inbound in = t_in("whatsapp", "62822", "e2", "jam", 1001);
	store_inbound_result r;
	assert_int_equal(store_inbound_batch(s, &in, 1, t_decide, &t, &r), STORE_ERR);
	assert_int_equal(r.rc, STORE_ERR);
	assert_int_equal(store_ping(s), STORE_ERR);
	store_outbox_item *it = NULL;
	size_t n = 0;
	assert_int_equal(store_outbox_lease(s, 2000, 1000, 10, &it, &n), STORE_ERR);
	assert_int_equal(n, 0);
	/* single-statement writes and the stats read refuse too, and keep the
	 * handle knowing a round is open */
	assert_int_equal(store_audit(s, "admin", "x", "y", NULL, 1), STORE_ERR);
	assert_int_equal(store_agent_add(s, "wayan", "agent", "h", 1), STORE_ERR);
	store_stats st;
	assert_int_equal(store_stats_get(s, 0, 5000, &st), STORE_ERR);
	assert_int_equal(store_round_commit(s), STORE_ERR);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages"), 0);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM contacts"), 0);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM audit"), 0);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM agents"), 0);

	assert_int_equal(store_round_begin(s), STORE_OK);
	assert_int_equal(t_one(s, &t, t_in("whatsapp", "62833", "e3", "jam", 1003)).rc, STORE_OK);
	/* inside a healthy round the stats read what the round wrote */
	assert_int_equal(store_stats_get(s, 0, 5000, &st), STORE_OK);
	assert_int_equal(st.inbound, 1);
	assert_int_equal(store_round_commit(s), STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE direction = 'in'"), 1);
}

/* A round holds the write lock: another handle's writes wait its busy
 * timeout, fail with STORE_ERR_BUSY with nothing written, and go through once
 * the round commits. Reads are not blocked (and see the last commit). */
static void test_store_round_blocks_other_writers_until_commit(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	assert_int_equal(store_round_begin(s), STORE_OK);
	assert_int_equal(t_one(s, &t, t_in("whatsapp", "62811", "b1", "jam", 1000)).rc, STORE_OK);

	store *quick = t_open(path, 150);
	store_inbound in = t_in("whatsapp", "62822", "b2", "jam", 1001);
	store_inbound_result r;
	int64_t t0 = mono_ms();
	assert_int_equal(store_inbound_batch(quick, &in, 1, t_decide, &t, &r), STORE_ERR_BUSY);
	int64_t waited = mono_ms() - t0;
	assert_int_equal(r.rc, STORE_ERR_BUSY);
	if (waited < 140 || waited > 5000)
		fail_msg("the busy write returned after %lld ms, want about 150", (long long)waited);
	assert_int_equal(store_round_begin(quick), STORE_ERR_BUSY);
	store_outbox_item *it = NULL;
	size_t n = 0;
	assert_int_equal(store_outbox_lease(quick, 2000, 1000, 10, &it, &n), STORE_ERR_BUSY);
	assert_int_equal(n, 0);
	store_conv c;
	assert_int_equal(store_conv_find(quick, "whatsapp", "62811", &c), STORE_ERR_NOTFOUND);

	assert_int_equal(store_round_commit(s), STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM contacts WHERE address = '62822'"), 0);
	assert_int_equal(store_conv_find(quick, "whatsapp", "62811", &c), STORE_OK);
	assert_int_equal(store_inbound_batch(quick, &in, 1, t_decide, &t, &r), STORE_OK);
	assert_int_equal(r.rc, STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE direction = 'in'"), 2);
	/* now quick holds a round and s waits */
	assert_int_equal(store_round_begin(quick), STORE_OK);
	store_close(s);
	s = t_open(path, 100);
	assert_int_equal(store_audit(s, "admin", "x", "y", NULL, 1), STORE_ERR_BUSY);
	store_round_rollback(quick);
	assert_int_equal(store_audit(s, "admin", "x", "y", NULL, 1), STORE_OK);
	store_close(quick);
}

/* ---- leases ---- */

/* A lease moves the row's next attempt to the lease's end: it is hidden from
 * every lease until then, comes back when the lease ends (a sender that died),
 * a retry makes it due at the retry's time (earlier or later than the lease's
 * end), and the conversation's next reply waits behind it throughout. */
static void test_store_lease_hides_until_it_ends_and_retry_sets_due(void **state)
{
	(void)state;
	t_decider t = {.queue = 1};
	int64_t x = t_one(s, &t, t_in("whatsapp", "62811", "l1", "jam", 1000)).out_ids[0];
	int64_t y = t_one(s, &t, t_in("whatsapp", "62811", "l2", "dua", 1001)).out_ids[0];
	store *o = t_open(path, 2000);
	int64_t ids[8];
	store_outbox_counts k;

	assert_int_equal(lease_ids(s, 5000, 1000, 10, ids), 1);
	assert_int_equal(ids[0], x);
	assert_int_equal(lease_ids(o, 5000, 1000, 10, ids), 0);
	assert_int_equal(lease_ids(o, 5999, 1000, 10, ids), 0); /* y waits behind x */
	assert_int_equal(store_outbox_counts_get(o, 5999, &k), STORE_OK);
	assert_int_equal(k.leased, 1);
	assert_int_equal(k.pending, 1);
	/* the lease ended: leased again, by the other handle */
	assert_int_equal(lease_ids(o, 6000, 1000, 10, ids), 1);
	assert_int_equal(ids[0], x);

	/* retry later than the lease's end */
	assert_int_equal(store_outbox_retry(o, x, 20000, "HTTP 503", 6100), STORE_OK);
	assert_int_equal(lease_ids(s, 19999, 1000, 10, ids), 0);
	assert_int_equal(store_outbox_counts_get(o, 6100, &k), STORE_OK);
	assert_int_equal(k.leased, 0);
	assert_int_equal(k.pending, 2);
	store_outbox_item *it = NULL;
	size_t n = 0;
	assert_int_equal(store_outbox_lease(s, 20000, 30000, 10, &it, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(it[0].id, x);
	assert_int_equal(it[0].attempts, 1);
	store_outbox_items_free(it, n);

	/* retry earlier than the lease's end (50000): due at 21000 */
	assert_int_equal(store_outbox_retry(s, x, 21000, "timeout", 20100), STORE_OK);
	assert_int_equal(lease_ids(o, 20999, 30000, 10, ids), 0);
	assert_int_equal(lease_ids(o, 21000, 30000, 10, ids), 1);
	assert_int_equal(ids[0], x);

	/* sent: y goes next, at once */
	assert_int_equal(store_outbox_sent(o, x, "wamid.X", 21100), STORE_OK);
	assert_int_equal(lease_ids(s, 21100, 30000, 10, ids), 1);
	assert_int_equal(ids[0], y);
	store_close(o);
}

/* ---- the syncer ---- */

/* How many of this process's descriptors name target exactly. */
static int fds_naming(const char *target)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char link[300], to[1024];
		snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(link, to, sizeof to - 1);
		if (k < 0)
			continue;
		to[k] = '\0';
		n += strcmp(to, target) == 0;
	}
	closedir(d);
	return n;
}

static void test_store_syncer_syncs_a_sync_later_handle(void **state)
{
	(void)state;
	char p[600], wal[610];
	t_decider t = {.queue = 1};
	t_path(p, sizeof p, dir, "later.db");
	snprintf(wal, sizeof wal, "%s-wal", p);
	store *w = open_with(p, 2000, 1, 0);
	store_syncer *y = store_syncer_new(w);
	assert_non_null(y);
	/* nothing written through the handle yet */
	assert_int_equal(store_syncer_sync(y), 0);
	assert_int_equal(t_one(w, &t, t_in("whatsapp", "62811", "y1", "jam", 1000)).rc, STORE_OK);
	assert_int_equal(store_syncer_sync(y), 0);
	/* a round, then a sync covering it */
	assert_int_equal(store_round_begin(w), STORE_OK);
	assert_int_equal(t_one(w, &t, t_in("whatsapp", "62822", "y2", "jam", 1001)).rc, STORE_OK);
	assert_int_equal(t_one(w, &t, t_in("whatsapp", "62833", "y3", "jam", 1002)).rc, STORE_OK);
	assert_int_equal(store_round_commit(w), STORE_OK);
	assert_int_equal(store_syncer_sync(y), 0);
	assert_int_equal(store_syncer_sync(y), 0); /* nothing new: still fine */

	store *o = t_open(p, 2000);
	store_conv c;
	assert_int_equal(store_conv_find(o, "whatsapp", "62833", &c), STORE_OK);
	store_close(o);
	assert_int_equal(t_sql_int(p, "SELECT count(*) FROM messages WHERE direction = 'in'"), 3);

	/* The last handle closed: its WAL is copied into the file and removed;
	 * with no WAL there is nothing to sync. */
	store_close(w);
	assert_int_equal(access(wal, F_OK), -1);
	assert_int_equal(store_syncer_sync(y), 0);
	assert_int_equal(t_sql_int(p, "SELECT count(*) FROM messages WHERE direction = 'in'"), 3);
	store_syncer_free(y);
	store_syncer_free(NULL);
	assert_int_equal(store_syncer_sync(NULL), -1);
}

/* The database's directory removed, made again with a new database in it,
 * then replaced by a plain file: the syncer says there is no WAL, then
 * drops the deleted file it held for the new one, then fails with ENOTDIR. */
static void test_store_syncer_follows_a_replaced_directory(void **state)
{
	(void)state;
	char sub[400], p[600], wal[610], deleted[640];
	t_decider t = {.queue = 1};
	t_path(sub, sizeof sub, dir, "sub");
	t_path(p, sizeof p, sub, "loket.db");
	snprintf(wal, sizeof wal, "%s-wal", p);
	snprintf(deleted, sizeof deleted, "%s (deleted)", wal);
	store *w = open_with(p, 2000, 1, 0); /* creates sub/ */
	store_syncer *y = store_syncer_new(w);
	assert_non_null(y);
	assert_int_equal(t_one(w, &t, t_in("whatsapp", "62811", "d1", "jam", 1000)).rc, STORE_OK);
	assert_int_equal(store_syncer_sync(y), 0);
	assert_int_equal(fds_naming(deleted), 0);

	/* Removed: the syncer still holds the old WAL, now deleted. */
	store_close(w);
	t_rmdir(sub);
	assert_int_equal(fds_naming(deleted), 1);
	assert_int_equal(store_syncer_sync(y), 0);

	/* Made again, with another database at the same path: the syncer lets
	 * the deleted file go and syncs the new WAL. */
	w = open_with(p, 2000, 1, 0);
	assert_int_equal(t_one(w, &t, t_in("whatsapp", "62899", "d2", "halo", 2000)).rc, STORE_OK);
	assert_int_equal(store_syncer_sync(y), 0);
	assert_int_equal(fds_naming(deleted), 0);
	assert_true(fds_naming(wal) >= 2); /* the handle's and the syncer's */
	assert_int_equal(t_sql_int(p, "SELECT count(*) FROM contacts WHERE address = '62899'"), 1);
	store_close(w);

	/* Replaced by a plain file: the path cannot name a WAL any more. */
	t_rmdir(sub);
	int fd = open(sub, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	errno = 0;
	assert_int_equal(store_syncer_sync(y), -1);
	assert_int_equal(errno, ENOTDIR);
	store_syncer_free(y);
	assert_int_equal(unlink(sub), 0);
}

/* ---- checkpoints ---- */

/* n inbound messages from new contacts, in batches of 100, with long texts. */
static void write_many(store *w, int from, int n)
{
	static t_decider t;
	static char text[100][400];
	static char addr[100][32], pid[100][32];
	store_inbound in[100];
	store_inbound_result r[100];
	for (int done = 0; done < n;) {
		int k = n - done < 100 ? n - done : 100;
		memset(&t, 0, sizeof t);
		t.queue = 1;
		for (int i = 0; i < k; i++) {
			int m = from + done + i;
			snprintf(addr[i], sizeof addr[i], "628%09d", m);
			snprintf(pid[i], sizeof pid[i], "wamid.C%d", m);
			snprintf(text[i], sizeof text[i], "jam %d %0*d", m, 300, m);
			in[i] = t_in("whatsapp", addr[i], pid[i], text[i], 1000 + m);
		}
		int rc = store_inbound_batch(w, in, (size_t)k, t_decide, &t, r);
		if (rc != STORE_OK)
			fail_msg("batch at %d: %s %s", from + done, store_rc_str(rc), store_errmsg(w));
		done += k;
	}
}

/* The same load on a handle with SQLite's automatic checkpoint keeps the WAL
 * near its 1000 pages: the no_checkpoint test below could fail. */
static void test_store_checkpoint_automatic_keeps_wal_short(void **state)
{
	(void)state;
	char p[600];
	t_path(p, sizeof p, dir, "auto.db");
	store *w = open_with(p, 2000, 0, 0);
	write_many(w, 0, 6000);
	off_t size = wal_size(p);
	if (size > 6 * 1024 * 1024)
		fail_msg("WAL is %lld bytes with automatic checkpoints", (long long)size);
	store_close(w);
}

static void test_store_checkpoint_on_another_handle(void **state)
{
	(void)state;
	char p[600];
	struct stat db0, db1;
	t_path(p, sizeof p, dir, "ckpt.db");
	store *w = open_with(p, 2000, 0, 1);
	assert_int_equal(stat(p, &db0), 0);
	write_many(w, 0, 6000);
	off_t size = wal_size(p);
	if (size < 12 * 1024 * 1024)
		fail_msg("WAL is only %lld bytes: was it checkpointed?", (long long)size);

	store *c = t_open(p, 2000);
	int pages = -1, copied = -1;
	assert_int_equal(store_checkpoint(c, 0, &pages, &copied), STORE_OK);
	if (pages < 3000)
		fail_msg("passive checkpoint saw %d WAL pages", pages);
	assert_int_equal(copied, pages);
	/* the rows are in the database file now */
	assert_int_equal(stat(p, &db1), 0);
	if (db1.st_size < db0.st_size + 4 * 1024 * 1024)
		fail_msg("database file %lld -> %lld bytes", (long long)db0.st_size, (long long)db1.st_size);
	/* nothing new: a second passive one finds it all copied */
	assert_int_equal(store_checkpoint(c, 0, &pages, &copied), STORE_OK);
	assert_int_equal(copied, pages);

	assert_int_equal(store_checkpoint(c, 1, &pages, &copied), STORE_OK);
	assert_int_equal(copied, pages);
	/* the writer's next commit starts the WAL over */
	write_many(w, 6000, 1);
	assert_int_equal(store_checkpoint(c, 0, &pages, &copied), STORE_OK);
	if (pages <= 0 || pages >= 100)
		fail_msg("after a restart and one commit the WAL holds %d pages", pages);
	assert_int_equal(copied, pages);
	assert_int_equal(wal_size(p), size); /* rewritten in place, never shrunk */
	assert_int_equal(t_sql_int(p, "SELECT count(*) FROM messages WHERE direction = 'in'"), 6001);
	/* the NULL outputs are optional */
	assert_int_equal(store_checkpoint(c, 0, NULL, NULL), STORE_OK);
	store_close(c);
	store_close(w);
}

/* While a round is open, a restart checkpoint waits the busy timeout for the
 * write lock and gives up; a passive one copies what was committed. */
static void test_store_checkpoint_restart_waits_for_an_open_round(void **state)
{
	(void)state;
	char p[600];
	t_decider t = {.queue = 1};
	t_path(p, sizeof p, dir, "ckpt2.db");
	store *w = open_with(p, 2000, 0, 1);
	assert_int_equal(t_one(w, &t, t_in("whatsapp", "62811", "k1", "jam", 1000)).rc, STORE_OK);
	assert_int_equal(store_round_begin(w), STORE_OK);
	assert_int_equal(t_one(w, &t, t_in("whatsapp", "62822", "k2", "jam", 1001)).rc, STORE_OK);

	store *c = t_open(p, 100);
	int pages = -1, copied = -1;
	int64_t t0 = mono_ms();
	assert_int_equal(store_checkpoint(c, 1, &pages, &copied), STORE_ERR_BUSY);
	int64_t waited = mono_ms() - t0;
	if (waited < 90 || waited > 5000)
		fail_msg("the restart checkpoint gave up after %lld ms, want about 100", (long long)waited);
	assert_int_equal(store_checkpoint(c, 0, &pages, &copied), STORE_OK);
	assert_true(pages > 0);
	assert_int_equal(copied, pages);
	assert_int_equal(store_round_commit(w), STORE_OK);
	assert_int_equal(store_checkpoint(c, 1, &pages, &copied), STORE_OK);
	assert_int_equal(copied, pages);
	assert_int_equal(t_sql_int(p, "SELECT count(*) FROM messages WHERE direction = 'in'"), 2);
	store_close(c);
	store_close(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_round_commits_every_call_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_round_rollback_or_close_keeps_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_round_failed_call_is_undone_alone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_round_outbox_results_unknown_id_fails_alone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_round_misuse_fails_clearly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_round_ended_by_sqlite_fails_to_the_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_round_blocks_other_writers_until_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_lease_hides_until_it_ends_and_retry_sets_due, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_syncer_syncs_a_sync_later_handle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_syncer_follows_a_replaced_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_checkpoint_automatic_keeps_wal_short, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_checkpoint_on_another_handle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_checkpoint_restart_waits_for_an_open_round, setup, teardown),
	};
	return t_fixture_done(cmocka_run_group_tests(tests, NULL, NULL));
}
