/* Opening the store: file modes, pragmas, migrations from every earlier schema
 * version, a newer file refused, read-only handles. */
#include "tests/store/store_test_util.h"

#include <sys/stat.h>

#include "store/store_int.h"

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

static void assert_mode_0600(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		fail_msg("%s does not exist", path);
	if ((sb.st_mode & 0777) != 0600)
		fail_msg("%s has mode %03o, want 600", path, (unsigned)(sb.st_mode & 0777));
}

static void test_store_open_creates_files_0600(void **state)
{
	(void)state;
	char path[512], side[600];
	t_path(path, sizeof path, dir, "mode.db");
	mode_t old = umask(0); /* the mode must not depend on the caller's umask */
	store *s = t_open(path, 1000);
	umask(old);
	t_decider t = {.queue = 1};
	t_one(s, &t, t_in("whatsapp", "6281200000001", "wamid.1", "jam", 1000));
	assert_mode_0600(path);
	snprintf(side, sizeof side, "%s-wal", path);
	assert_mode_0600(side);
	snprintf(side, sizeof side, "%s-shm", path);
	assert_mode_0600(side);
	store_close(s);
}

static void test_store_open_uses_wal_and_newest_schema(void **state)
{
	(void)state;
	char path[512];
	t_path(path, sizeof path, dir, "wal.db");
	store *s = t_open(path, 1000);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	assert_true(store_schema_latest() >= 2);
	assert_int_equal(store_ping(s), STORE_OK);
	store_close(s);
	/* The header says WAL (bytes 18 and 19 are 2) and user_version is the newest. */
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	unsigned char h[100];
	assert_int_equal(fread(h, 1, sizeof h, f), sizeof h);
	fclose(f);
	assert_int_equal(h[18], 2);
	assert_int_equal(h[19], 2);
	assert_int_equal(t_sql_int(path, "PRAGMA user_version"), store_schema_latest());
	/* Opening again migrates nothing and keeps the version. */
	s = t_open(path, 1000);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	store_close(s);
}

/* 1 when EXPLAIN QUERY PLAN of sql (run on the file at path) names index. */
static int t_plan_uses(const char *path, const char *sql, const char *index)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char q[1024];
	int found = 0;
	snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 3);
		if (detail && strstr(detail, index))
			found = 1;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return found;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	char *e = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
		fail_msg("%s: %s", sql, e ? e : "?");
}

/* Builds a database at schema version v the way an older loket left it, with
 * one conversation that escalated (and, from v3, its escalation row), its
 * messages (one out message waiting in the outbox, one sent with a provider id)
 * and an agent. */
static void make_old_db(const char *path, int v)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	raw_exec(db, "PRAGMA journal_mode = WAL");
	for (int i = 0; i < v; i++) {
		raw_exec(db, "BEGIN");
		raw_exec(db, store_migrations[i]);
		char bump[64];
		snprintf(bump, sizeof bump, "PRAGMA user_version = %d", i + 1);
		raw_exec(db, bump);
		raw_exec(db, "COMMIT");
	}
	if (v >= 1) {
		raw_exec(db, "INSERT INTO contacts (id, channel, address, display_name, lang, created_ms)"
			     " VALUES (1, 'whatsapp', '6281200000009', 'Made', 'id', 1000)");
		raw_exec(db, "INSERT INTO conversations (id, contact_id, state, context, menu, created_ms,"
			     " last_inbound_ms, escalated_ms) VALUES (1, 1, 'queued', 'pbg', 'a,b', 1000, 3000, 3000)");
		raw_exec(db, "INSERT INTO messages (id, conversation_id, direction, channel, provider_id, text,"
			     " intent, status, at_ms) VALUES (1, 1, 'in', 'whatsapp', 'wamid.old1', 'syarat pbg',"
			     " 'syarat_pbg', 'received', 1000)");
		raw_exec(db, "INSERT INTO messages (id, conversation_id, direction, channel, provider_id, text,"
			     " status, at_ms) VALUES (2, 1, 'out', 'whatsapp', 'wamid.out2', 'Syarat PBG: ...',"
			     " 'delivered', 1001)");
		raw_exec(db, "INSERT INTO messages (id, conversation_id, direction, channel, text, status, at_ms)"
			     " VALUES (3, 1, 'out', 'whatsapp', 'Mohon tunggu', 'queued', 3000)");
		raw_exec(db, "INSERT INTO outbox (message_id, conversation_id, next_attempt_ms, created_ms)"
			     " VALUES (3, 1, 3000, 3000)");
		raw_exec(
		    db,
		    "INSERT INTO agents (name, role, pwhash, created_ms) VALUES ('wayan', 'admin', '$argon2id$x', 5)");
	}
	if (v >= 2) {
		raw_exec(db, "INSERT INTO ratings (conversation_id, rating, at_ms) VALUES (1, 4, 2000)");
		raw_exec(db, "INSERT INTO message_status (message_id, status, at_ms) VALUES (2, 'delivered', 1001),"
			     " (3, 'queued', 3000)");
	}
	if (v >= 3) /* a v3 loket wrote the escalation row when the conversation escalated */
		raw_exec(db, "INSERT INTO escalations (conversation_id, escalated_ms) VALUES (1, 3000)");
	sqlite3_close(db);
}

static void test_store_migrates_from_every_earlier_version(void **state)
{
	(void)state;
	for (int v = 0; v < store_schema_latest(); v++) {
		char path[512], name[64];
		snprintf(name, sizeof name, "v%d.db", v);
		t_path(path, sizeof path, dir, name);
		make_old_db(path, v);
		store *s = t_open(path, 1000);
		if (store_schema_version(s) != store_schema_latest())
			fail_msg("from v%d: version %d after open", v, store_schema_version(s));
		if (v == 0) {
			store_conv c;
			assert_int_equal(store_conv_find(s, "whatsapp", "6281200000009", &c), STORE_ERR_NOTFOUND);
			store_close(s);
			continue;
		}
		store_conv c;
		if (store_conv_find(s, "whatsapp", "6281200000009", &c) != STORE_OK)
			fail_msg("from v%d: the conversation is gone", v);
		assert_int_equal(c.bot.mode, BOT_MODE_QUEUED);
		assert_string_equal(c.bot.context, "pbg");
		assert_string_equal(c.display_name, "Made");
		assert_int_equal(c.bot.n_menu, 2);
		store_msg *m = NULL;
		size_t n = 0;
		assert_int_equal(store_msgs_since(s, c.id, 0, 10, &m, &n), STORE_OK);
		if (n != 3)
			fail_msg("from v%d: %zu messages, want 3", v, n);
		assert_string_equal(m[0].text, "syarat pbg");
		assert_string_equal(m[1].status, "delivered");
		store_msgs_free(m, n);
		store_agent a;
		assert_int_equal(store_agent_get(s, "wayan", &a), STORE_OK);
		/* v2's status history was filled for the old outbound messages. */
		assert_int_equal(t_sql_int(path, "SELECT count(*) FROM message_status"), 2);
		/* v3's escalation row was filled for the waiting conversation. */
		store_stats st;
		assert_int_equal(store_stats_get(s, 0, 10000, &st), STORE_OK);
		if (st.escalations != 1)
			fail_msg("from v%d: %lld escalations, want 1", v, (long long)st.escalations);
		assert_int_equal(st.ratings, v >= 2 ? 1 : 0);
		/* The old outbox row is still sent, and a status callback still lands. */
		store_outbox_item *it = NULL;
		assert_int_equal(store_outbox_lease(s, 5000, 1000, 10, &it, &n), STORE_OK);
		assert_int_equal(n, 1);
		assert_int_equal(it[0].id, 3);
		store_outbox_items_free(it, n);
		assert_int_equal(store_msg_status(s, "whatsapp", "6281200000009", "wamid.out2", "read", NULL, 6000),
				 STORE_OK);
		/* The old conversation keeps taking messages; a replayed old id is a duplicate. */
		t_decider t = {.queue = 1};
		store_inbound in = t_in("whatsapp", "6281200000009", "wamid.old1", "syarat pbg", 7000);
		store_inbound_result r;
		assert_int_equal(store_inbound_batch(s, &in, 1, t_decide, &t, &r), STORE_OK);
		assert_int_equal(r.rc, STORE_DUPLICATE);
		r = t_one(s, &t, t_in("whatsapp", "6281200000009", "wamid.new", "jam", 8000));
		assert_int_equal(r.rc, STORE_OK);
		assert_int_equal(r.conversation_id, c.id);
		store_close(s);
		/* v4: the provider-id index is partial and still serves the lookups. */
		if (t_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'messages_provider'"
				    " AND sql LIKE '%WHERE provider_id IS NOT NULL%'") != 1)
			fail_msg("from v%d: messages_provider is not the v4 partial index", v);
		assert_int_equal(t_sql_int(path, "SELECT count(*) FROM messages WHERE provider_id IS NOT NULL"), 3);
		assert_true(t_plan_uses(path,
					"SELECT 1 FROM messages WHERE direction = 'in' AND channel = 'whatsapp'"
					" AND provider_id = 'wamid.old1'",
					"messages_provider"));
		assert_true(t_plan_uses(path,
					"SELECT id, status FROM messages WHERE direction = 'out'"
					" AND channel = 'whatsapp' AND provider_id = 'wamid.out2'",
					"messages_provider"));
	}
}

static void test_store_open_refuses_newer_schema(void **state)
{
	(void)state;
	char path[512], err[512];
	t_path(path, sizeof path, dir, "newer.db");
	store_close(t_open(path, 1000));
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", store_schema_latest() + 1);
	raw_exec(db, sql);
	sqlite3_close(db);
	store_opts o = {.path = path, .busy_timeout_ms = 100};
	store *s = store_open(&o, err, sizeof err);
	assert_null(s);
	assert_non_null(strstr(err, "newer"));
}

static void test_store_open_readonly(void **state)
{
	(void)state;
	char path[512], err[512];
	t_path(path, sizeof path, dir, "ro.db");
	store *w = t_open(path, 1000);
	t_decider t = {.queue = 1};
	t_one(w, &t, t_in("whatsapp", "6281200000001", "wamid.ro", "jam", 1000));
	store_close(w);

	store_opts o = {.path = path, .busy_timeout_ms = 100, .readonly = 1};
	store *s = store_open(&o, err, sizeof err);
	if (!s)
		fail_msg("readonly open: %s", err);
	store_stats st;
	assert_int_equal(store_stats_get(s, 0, 2000, &st), STORE_OK);
	assert_int_equal(st.inbound, 1);
	assert_int_not_equal(store_ping(s), STORE_OK);
	assert_int_not_equal(store_audit(s, "x", "y", NULL, NULL, 1), STORE_OK);
	store_close(s);

	/* A missing file is not created by a read-only open. */
	t_path(path, sizeof path, dir, "missing.db");
	o.path = path;
	assert_null(store_open(&o, err, sizeof err));
	assert_int_not_equal(access(path, F_OK), 0);

	/* An old file must be migrated by a read-write open first. */
	t_path(path, sizeof path, dir, "ro-old.db");
	make_old_db(path, 1);
	assert_null(store_open(&o, err, sizeof err));
	assert_non_null(strstr(err, "schema version"));
}

static void test_store_rc_str_names_every_code(void **state)
{
	(void)state;
	static const int codes[] = {STORE_OK,	    STORE_DUPLICATE,	STORE_ERR,
				    STORE_ERR_BUSY, STORE_ERR_NOTFOUND, STORE_ERR_CONFLICT};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(store_rc_str(codes[i]), store_rc_str(codes[j])) == 0)
				fail_msg("codes %d and %d share the text %s", codes[i], codes[j],
					 store_rc_str(codes[i]));
		assert_true(strlen(store_rc_str(codes[i])) > 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_open_creates_files_0600),
	    cmocka_unit_test(test_store_open_uses_wal_and_newest_schema),
	    cmocka_unit_test(test_store_migrates_from_every_earlier_version),
	    cmocka_unit_test(test_store_open_refuses_newer_schema),
	    cmocka_unit_test(test_store_open_readonly),
	    cmocka_unit_test(test_store_rc_str_names_every_code),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
