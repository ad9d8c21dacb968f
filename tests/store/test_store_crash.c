/* Other processes: a second process holding the write lock makes our writes
 * wait the busy timeout and fail with STORE_ERR_BUSY with nothing written, then
 * succeed once it lets go; a writer killed with SIGKILL at a random moment
 * loses no batch it reported committed and leaves no batch half-written. */
#include "tests/store/store_test_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static char dir[256];

static int setup(void **state)
{
	(void)state;
	t_mkdir(dir, sizeof dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	t_rmdir(dir);
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a locked database ---- */

/* Child: takes the write lock with BEGIN IMMEDIATE, says so on ready, holds
 * it until a byte arrives on go, then rolls back. */
static void lock_holder(const char *path, int ready, int go)
{
	sqlite3 *db = NULL;
	char c = 0;
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "INSERT INTO audit (at_ms, who, what) VALUES (1, 'child', 'lock')", NULL, NULL, NULL) !=
		SQLITE_OK)
		_exit(2);
	if (write(ready, "L", 1) != 1)
		_exit(3);
	if (read(go, &c, 1) != 1)
		_exit(4);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	_exit(0);
}

static void test_store_locked_db_is_busy_then_works(void **state)
{
	(void)state;
	char path[512];
	t_path(path, sizeof path, dir, "busy.db");
	store *s = t_open(path, 300);
	t_decider t = {.queue = 1};
	int64_t conv = t_one(s, &t, t_in("whatsapp", "62811", "pre", "agent", 1000)).conversation_id;
	int64_t msgs_before = t_sql_int(path, "SELECT count(*) FROM messages");

	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		lock_holder(path, ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);

	/* Every kind of write waits about the busy timeout, then says BUSY. */
	store_inbound in[2] = {t_in("whatsapp", "62811", "m1", "jam", 2000),
			       t_in("whatsapp", "62899", "m2", "jam", 2000)};
	store_inbound_result r[2];
	int64_t t0 = mono_ms();
	int rc = store_inbound_batch(s, in, 2, t_decide, &t, r);
	int64_t waited = mono_ms() - t0;
	assert_int_equal(rc, STORE_ERR_BUSY);
	assert_int_equal(r[0].rc, STORE_ERR_BUSY);
	assert_int_equal(r[1].rc, STORE_ERR_BUSY);
	if (waited < 250)
		fail_msg("gave up after %lld ms, before the 300 ms busy timeout", (long long)waited);
	assert_int_equal(store_conv_claim(s, conv, "ketut", 2000), STORE_ERR_BUSY);
	store_outbox_item *items = NULL;
	size_t n = 0;
	assert_int_equal(store_outbox_lease(s, 5000, 1000, 10, &items, &n), STORE_ERR_BUSY);
	assert_int_equal(n, 0);
	assert_int_equal(store_ping(s), STORE_ERR_BUSY);
	/* Reads still work (WAL), and nothing was written. */
	store_conv cv;
	assert_int_equal(store_conv_get(s, conv, &cv), STORE_OK);
	assert_int_equal(cv.bot.mode, BOT_MODE_QUEUED);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages"), msgs_before);

	/* The other process lets go: the same calls now succeed. */
	assert_int_equal(write(go[1], "G", 1), 1);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(ready[0]);
	close(go[1]);
	assert_int_equal(store_inbound_batch(s, in, 2, t_decide, &t, r), STORE_OK);
	assert_int_equal(r[0].rc, STORE_OK);
	assert_int_equal(r[1].rc, STORE_OK);
	assert_int_equal(store_conv_claim(s, conv, "ketut", 3000), STORE_OK);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages"), msgs_before + 4);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM audit WHERE who = 'child'"), 0);
	store_close(s);
}

/* ---- a writer killed with SIGKILL ---- */

enum { BATCH = 10, CONTACTS = 25 };

/* Child: writes batches of BATCH messages (each with one queued reply) forever,
 * writing the number of committed batches to fd after each commit. */
static void writer(const char *path, int fd)
{
	store *s = t_open(path, 5000);
	static t_decider t;
	t.queue = 1;
	store_inbound in[BATCH];
	store_inbound_result r[BATCH];
	char pid[BATCH][32], addr[BATCH][32];
	for (uint32_t b = 0;; b++) {
		for (int i = 0; i < BATCH; i++) {
			snprintf(pid[i], sizeof pid[i], "b%u-m%d", b, i);
			snprintf(addr[i], sizeof addr[i], "628%04u", (b * BATCH + (uint32_t)i) % CONTACTS);
			in[i] = t_in("whatsapp", addr[i], pid[i], pid[i], 1000 + b);
		}
		if (store_inbound_batch(s, in, BATCH, t_decide, &t, r) != STORE_OK)
			_exit(2);
		uint32_t done = b + 1;
		if (write(fd, &done, sizeof done) != (ssize_t)sizeof done)
			_exit(3);
	}
}

static void check_after_kill(const char *path, uint32_t committed, int round)
{
	store *s = t_open(path, 5000);
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"),
			 0);
	int64_t in_total = t_sql_int(path, "SELECT count(*) FROM messages WHERE direction = 'in'");
	int64_t batches = in_total / BATCH;
	if (in_total % BATCH != 0)
		fail_msg("round %d: %lld inbound messages, not whole batches", round, (long long)in_total);
	/* Every reported batch, and at most one more (committed, not yet reported). */
	if (batches < committed || batches > committed + 1)
		fail_msg("round %d: %lld batches in the file, %u reported committed", round, (long long)batches,
			 committed);
	for (int64_t b = 0; b < batches + 2; b++) {
		char sql[300];
		int64_t want = b < batches ? BATCH : 0;
		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM messages WHERE direction = 'in' AND provider_id LIKE 'b%lld-m%%'",
			 (long long)b);
		int64_t got_in = t_sql_int(path, sql);
		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM messages m JOIN outbox o ON o.message_id = m.id"
			 " WHERE m.direction = 'out' AND m.text LIKE 're: b%lld-m%%'",
			 (long long)b);
		int64_t got_out = t_sql_int(path, sql);
		if (got_in != want || got_out != want)
			fail_msg("round %d batch %lld: %lld inbound, %lld replies in the outbox, want %lld", round,
				 (long long)b, (long long)got_in, (long long)got_out, (long long)want);
	}
	/* Every inbound message has its reply, and no reply is left without one. */
	assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE direction = 'out'"), in_total);
	store_close(s);
}

static void test_store_sigkill_loses_no_committed_batch(void **state)
{
	(void)state;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int round = 0; round < 5; round++) {
		char path[512], name[32];
		snprintf(name, sizeof name, "kill%d.db", round);
		t_path(path, sizeof path, dir, name);
		/* Create and migrate first, so the child only writes batches. */
		store_close(t_open(path, 5000));
		int p[2];
		assert_int_equal(pipe(p), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			writer(path, p[1]);
			_exit(0);
		}
		close(p[1]);
		/* Let it commit a random number of batches, then kill it mid-stream. */
		uint32_t committed = 0, v;
		uint32_t target = 5 + (uint32_t)(rand() % 200);
		while (committed < target && read(p[0], &v, sizeof v) == (ssize_t)sizeof v)
			committed = v;
		struct timespec ts = {0, (long)(rand() % 3000) * 1000};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		while (read(p[0], &v, sizeof v) == (ssize_t)sizeof v)
			committed = v;
		close(p[0]);
		check_after_kill(path, committed, round);
		print_message("round %d: killed after %u reported batches\n", round, committed);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_locked_db_is_busy_then_works),
	    cmocka_unit_test(test_store_sigkill_loses_no_committed_batch),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
