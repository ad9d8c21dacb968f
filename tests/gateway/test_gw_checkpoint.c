/* Tests of the WAL checkpointer thread (gateway/gw_checkpoint.c) on a real
 * SQLite file beside a writer handle that never checkpoints itself
 * (no_checkpoint, sync_later, as the gateway's writer): while thousands of
 * inbound messages are written, the WAL is started over again and again (its
 * header's checkpoint sequence number moves on, the -wal file stays bounded)
 * and its pages reach the database file, which catches up once the writes
 * stop; stopping is prompt and copies what the WAL still holds; a path that
 * cannot be opened fails with the reason. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/clock.h"
#include "gateway/gw_checkpoint.h"
#include "store/store.h"
#include "tests/store/store_test_util.h"

#define RESTART_PAGES 8000 /* GW_CKPT_RESTART in gateway/gw_checkpoint.c */
#define PAGE 4096	   /* SQLite's default page size, which the store keeps */
#define BATCH 100
#define PAUSE_MS 20   /* between two transactions: about 40 MiB of WAL a second */
#define TEXT_LEN 1500 /* each message, its reply and the reply's payload: about 8 KiB of new data a message */

static char tmpdir[256];
static int db_counter;
static int in_counter;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int64_t file_size(const char *path, const char *suffix)
{
	char p[600];
	struct stat sb;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* The first n bytes of the file path + suffix into buf; 0, or -1 when the file
 * is missing or shorter. */
static int read_head(const char *path, const char *suffix, unsigned char *buf, size_t n)
{
	char p[600];
	int fd;
	ssize_t got;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	if ((fd = open(p, O_RDONLY)) < 0)
		return -1;
	got = pread(fd, buf, n, 0);
	close(fd);
	return got == (ssize_t)n ? 0 : -1;
}

/* The WAL header's checkpoint sequence number: SQLite adds one each time the
 * WAL is started over from its beginning (the file format's bytes 12-15,
 * big-endian). -1 when there is no header yet. */
static int64_t wal_restarts(const char *path)
{
	unsigned char h[32];

	if (read_head(path, "-wal", h, sizeof(h)) != 0)
		return -1;
	return (int64_t)h[12] << 24 | (int64_t)h[13] << 16 | (int64_t)h[14] << 8 | (int64_t)h[15];
}

/* From the WAL index (the -shm file, in SQLite's documented layout, native
 * byte order), without taking part: *mx_frame, the frames committed to the
 * WAL since it was last started over, and *backfill, how many of them a
 * checkpoint has copied into the database file. -1 when unreadable. */
static int wal_index(const char *path, uint32_t *mx_frame, uint32_t *backfill)
{
	unsigned char h[100];

	if (read_head(path, "-shm", h, sizeof(h)) != 0)
		return -1;
	memcpy(mx_frame, h + 16, 4); /* WalIndexHdr.mxFrame */
	memcpy(backfill, h + 96, 4); /* WalCkptInfo.nBackfill, after the header's two copies */
	return 0;
}

/* Waits up to ms for every committed frame to be copied; 1 when it was. */
static int wait_backfilled(const char *path, int ms, uint32_t *mx_frame, uint32_t *backfill)
{
	int64_t end = clock_mono_ms() + ms;

	for (;;) {
		if (wal_index(path, mx_frame, backfill) == 0 && *backfill == *mx_frame)
			return 1;
		if (clock_mono_ms() > end)
			return 0;
		sleep_ms(10);
	}
}

/* The database's length in bytes as the newest commit has it (in the WAL or
 * the file), read on a connection of its own that copies nothing. */
static int64_t db_logical_size(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int64_t n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		fail_msg("sqlite3_open_v2(%s): %s", path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 2000);
	if (sqlite3_prepare_v2(db, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()", -1, &q,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	if (n < 0)
		fail_msg("page_count * page_size of %s: no answer", path);
	return n;
}

static int group_setup(void **state)
{
	(void)state;
	t_mkdir(tmpdir, sizeof(tmpdir));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (getenv("LOKET_KEEP_TMP") == NULL)
		t_rmdir(tmpdir);
	return 0;
}

/* ---- the writer ---- */

typedef struct fixture {
	cfg c;
	store *w; /* the writer: no_checkpoint, sync_later */
	gw_checkpoint *k;
	char text[TEXT_LEN + 1];
	char payload[TEXT_LEN + 32];
} fixture;

static void fixture_init(fixture *f)
{
	store_opts o;
	char err[256];

	memset(f, 0, sizeof(*f));
	cfg_defaults(&f->c);
	snprintf(f->c.store.path, sizeof(f->c.store.path), "%s/c%d.db", tmpdir, ++db_counter);
	snprintf(f->c.store.synchronous, sizeof(f->c.store.synchronous), "FULL");
	f->c.store.busy_timeout_ms = 2000;
	memset(&o, 0, sizeof(o));
	o.path = f->c.store.path;
	o.synchronous_full = 1;
	o.busy_timeout_ms = 2000;
	o.no_checkpoint = 1;
	o.sync_later = 1;
	f->w = store_open(&o, err, sizeof(err));
	if (!f->w)
		fail_msg("store_open: %s", err);
	for (size_t i = 0; i < TEXT_LEN; i++)
		f->text[i] = (char)('a' + (i * 7 + i / 26) % 26);
	f->text[TEXT_LEN] = '\0';
	snprintf(f->payload, sizeof(f->payload), "{\"text\":\"%s\"}", f->text);
}

static void fixture_start(fixture *f)
{
	char err[256];

	f->k = gw_checkpoint_start(&f->c, err, sizeof(err));
	if (!f->k)
		fail_msg("gw_checkpoint_start: %s", err);
}

static void fixture_done(fixture *f)
{
	gw_checkpoint_stop(f->k);
	store_close(f->w);
}

/* The bot answers every message with one queued reply. */
static int decide(void *ctx, size_t index, const store_inbound *in, const store_conv *conv, store_decision *d)
{
	fixture *f = ctx;

	(void)index;
	(void)in;
	memset(d, 0, sizeof(*d));
	d->next = conv->bot;
	d->n_out = 1;
	d->out[0].text = f->text;
	d->out[0].payload = f->payload;
	d->out[0].queue = 1;
	return 0;
}

/* One transaction of BATCH inbound messages from as many citizens, each
 * queuing a reply. */
static void write_batch(fixture *f)
{
	store_inbound in[BATCH];
	store_inbound_result res[BATCH];
	char addr[BATCH][32], pid[BATCH][32];
	int rc;

	memset(in, 0, sizeof(in));
	for (int i = 0; i < BATCH; i++) {
		in_counter++;
		snprintf(addr[i], sizeof(addr[i]), "628%09d", in_counter % 5000);
		snprintf(pid[i], sizeof(pid[i]), "wamid.in.%d", in_counter);
		in[i].channel = "whatsapp";
		in[i].address = addr[i];
		in[i].provider_id = pid[i];
		in[i].kind = "text";
		in[i].text = f->text;
		in[i].at_ms = clock_wall_ms();
	}
	rc = store_inbound_batch(f->w, in, BATCH, decide, f, res);
	if (rc != STORE_OK)
		fail_msg("store_inbound_batch: %s: %s", store_rc_str(rc), store_errmsg(f->w));
	for (int i = 0; i < BATCH; i++)
		if (res[i].rc != STORE_OK)
			fail_msg("message %d: %s", i, store_rc_str(res[i].rc));
}

/* ---- tests ---- */

/* Writes four times GW_CKPT_RESTART pages of new data (125 MiB, more WAL
 * frames) at about 40 MiB a second, steadily enough that a PASSIVE pass
 * never finds the WAL fully copied: the checkpointer copies the pages into
 * the database file and starts the WAL over (RESTART) once it is that long,
 * so the header's checkpoint sequence number moves on and the -wal file stays
 * well below what went through it. With PASSIVE checkpoints alone it is never
 * started over and grows with everything written (measured: 0 restarts, a 149
 * MiB -wal file for 125 MiB of data; with RESTART: 3 restarts, about 45 MiB). */
static void test_checkpoint_restarts_wal(void **state)
{
	enum { WAL_BOUND = 3 * RESTART_PAGES * (PAGE + 24) }; /* 96 MiB */
	fixture f;
	int64_t r0, r1, wal_max = 0, written_bytes = 0, db0, db1, t0, wal, end;
	int batches = 0;
	int pages = 0, copied = 0, rc;
	uint32_t mx = 0, bf = 0;
	store *obs;
	store_opts o;
	char err[256];

	(void)state;
	fixture_init(&f);
	fixture_start(&f);
	write_batch(&f);
	r0 = wal_restarts(f.c.store.path);
	db0 = file_size(f.c.store.path, "");
	assert_true(r0 >= 0);

	/* until the database grew by four restart lengths */
	t0 = clock_mono_ms();
	while (written_bytes < (int64_t)RESTART_PAGES * PAGE * 4) {
		int64_t before = db_logical_size(f.c.store.path);
		write_batch(&f);
		batches++;
		/* each commit writes at least the pages the database grew by */
		written_bytes += db_logical_size(f.c.store.path) - before;
		wal = file_size(f.c.store.path, "-wal");
		if (wal > wal_max)
			wal_max = wal;
		if (clock_mono_ms() - t0 > 60000)
			fail_msg("%d batches in 60 s, %lld bytes", batches, (long long)written_bytes);
		sleep_ms(PAUSE_MS);
	}
	r1 = wal_restarts(f.c.store.path);
	db1 = file_size(f.c.store.path, "");
	print_message("%d batches in %lld ms, %lld MiB added, WAL at most %lld MiB, restarted %lld times, "
		      "database file %lld -> %lld MiB\n",
		      batches, (long long)(clock_mono_ms() - t0), (long long)(written_bytes >> 20),
		      (long long)(wal_max >> 20), (long long)(r1 - r0), (long long)(db0 >> 20), (long long)(db1 >> 20));
	if (r1 - r0 < 2)
		fail_msg("the WAL was started over %lld times while %lld MiB went through it, want at least 2",
			 (long long)(r1 - r0), (long long)(written_bytes >> 20));
	if (wal_max > WAL_BOUND)
		fail_msg("the -wal file reached %lld MiB, want at most %d MiB", (long long)(wal_max >> 20),
			 WAL_BOUND >> 20);
	/* what went through the WAL is in the database file */
	if (db1 < db0 + written_bytes / 2)
		fail_msg("the database file grew from %lld to %lld bytes, %lld were written", (long long)db0,
			 (long long)db1, (long long)written_bytes);

	/* once the writes stop, the checkpointer catches up by itself: every
	 * frame is copied within a few seconds, the file as long as the data */
	if (!wait_backfilled(f.c.store.path, 5000, &mx, &bf))
		fail_msg("5 s after the last write %u of %u WAL frames are copied", bf, mx);
	if (file_size(f.c.store.path, "") < db_logical_size(f.c.store.path))
		fail_msg("everything copied, yet the database file is shorter than the database");
	/* and the next commit starts the WAL over: a passive check on a third
	 * handle finds it short (right after a RESTART, before any commit,
	 * SQLite still reports the old length) */
	write_batch(&f);
	memset(&o, 0, sizeof(o));
	o.path = f.c.store.path;
	o.busy_timeout_ms = 2000;
	obs = store_open(&o, err, sizeof(err));
	if (!obs)
		fail_msg("store_open: %s", err);
	end = clock_mono_ms() + 2000;
	while ((rc = store_checkpoint(obs, 0, &pages, &copied)) == STORE_ERR_BUSY && clock_mono_ms() < end)
		sleep_ms(5); /* the checkpointer's own pass is running */
	assert_int_equal(rc, STORE_OK);
	if (pages > 1000)
		fail_msg("the WAL holds %d pages after one more commit, want a few hundred", pages);
	store_close(obs);
	fixture_done(&f);
}

/* gw_checkpoint_stop wakes the thread at once (it sleeps up to 500 ms between
 * passes), and its last pass copies what the WAL still holds: every frame of
 * the last commit reaches the database file. */
static void test_checkpoint_stop_copies_the_rest(void **state)
{
	fixture f;
	int64_t logical, phys, t0, took;
	uint32_t mx = 0, bf = 0;
	int tries;

	(void)state;
	fixture_init(&f);
	fixture_start(&f);
	sleep_ms(100);
	/* a commit; the periodic pass may copy it before we stop (rarely: it
	 * runs every 500 ms), then another */
	for (tries = 0; tries < 10; tries++) {
		write_batch(&f);
		if (wal_index(f.c.store.path, &mx, &bf) == 0 && bf < mx)
			break;
	}
	if (bf >= mx)
		fail_msg("the WAL was always copied before stop (%u of %u frames)", bf, mx);
	t0 = clock_mono_ms();
	gw_checkpoint_stop(f.k);
	f.k = NULL;
	took = clock_mono_ms() - t0;
	print_message("stop with a batch to copy: %lld ms\n", (long long)took);
	if (took > 1000)
		fail_msg("gw_checkpoint_stop took %lld ms", (long long)took);
	if (wal_index(f.c.store.path, &mx, &bf) != 0 || bf != mx)
		fail_msg("after stop %u of %u WAL frames are copied: no last checkpoint", bf, mx);
	logical = db_logical_size(f.c.store.path);
	phys = file_size(f.c.store.path, "");
	if (phys < logical)
		fail_msg("after stop the database file has %lld of %lld bytes", (long long)phys, (long long)logical);
	gw_checkpoint_stop(NULL);
	fixture_done(&f);
}

/* After a burst, once nothing was committed for a pass, the -wal file is cut
 * to zero bytes (its disk space comes back) with every page in the database
 * file, and the writer goes on writing afterwards. Under steady writes it is
 * never cut (test_checkpoint_restarts_wal keeps writing every 20 ms). */
static void test_checkpoint_truncates_when_idle(void **state)
{
	fixture f;
	int64_t wal = 0, end;

	(void)state;
	fixture_init(&f);
	fixture_start(&f);
	for (int i = 0; i < 5; i++)
		write_batch(&f);
	if (file_size(f.c.store.path, "-wal") < 1024 * 1024)
		fail_msg("the burst left only %lld bytes of WAL", (long long)file_size(f.c.store.path, "-wal"));
	end = clock_mono_ms() + 5000;
	while ((wal = file_size(f.c.store.path, "-wal")) != 0 && clock_mono_ms() < end)
		sleep_ms(50);
	if (wal != 0)
		fail_msg("the -wal file still has %lld bytes 5 s after the burst", (long long)wal);
	if (file_size(f.c.store.path, "") < db_logical_size(f.c.store.path))
		fail_msg("the database file lacks pages after the truncation");
	write_batch(&f); /* the writer carries on */
	if (file_size(f.c.store.path, "-wal") == 0)
		fail_msg("a commit after the truncation wrote no WAL");
	fixture_done(&f);
}

/* Stopping while the thread sleeps (500 ms between passes when the WAL is
 * short) wakes it at once rather than at its next pass. */
static void test_checkpoint_stop_wakes_the_thread(void **state)
{
	fixture f;
	uint32_t mx = 0, bf = 0;
	int64_t t0, took;

	(void)state;
	fixture_init(&f);
	fixture_start(&f);
	write_batch(&f);
	/* its first pass copies the batch, then it sleeps */
	if (!wait_backfilled(f.c.store.path, 3000, &mx, &bf))
		fail_msg("3 s after start %u of %u WAL frames are copied", bf, mx);
	t0 = clock_mono_ms();
	gw_checkpoint_stop(f.k);
	f.k = NULL;
	took = clock_mono_ms() - t0;
	print_message("stop while it sleeps: %lld ms\n", (long long)took);
	if (took > 250)
		fail_msg("gw_checkpoint_stop took %lld ms: the sleeping thread was not woken", (long long)took);
	fixture_done(&f);
}

/* A path the checkpointer cannot open: NULL and the reason, naming the path. */
static void test_checkpoint_start_fails_clearly(void **state)
{
	cfg c;
	char err[512], path[400];
	FILE *fp;
	gw_checkpoint *k;

	(void)state;
	cfg_defaults(&c);
	snprintf(c.store.synchronous, sizeof(c.store.synchronous), "FULL");
	c.store.busy_timeout_ms = 100;

	/* no such directory (two levels missing: only one is created) */
	snprintf(c.store.path, sizeof(c.store.path), "%s/no/such/dir/x.db", tmpdir);
	err[0] = '\0';
	k = gw_checkpoint_start(&c, err, sizeof(err));
	assert_null(k);
	if (strncmp(err, "checkpointer: ", 14) != 0 || !strstr(err, c.store.path) ||
	    !strstr(err, "No such file or directory"))
		fail_msg("err: \"%s\"", err);

	/* a file that is not a database */
	snprintf(path, sizeof(path), "%s/notes.txt", tmpdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database, only some notes\n", fp);
	fclose(fp);
	snprintf(c.store.path, sizeof(c.store.path), "%s", path);
	err[0] = '\0';
	k = gw_checkpoint_start(&c, err, sizeof(err));
	assert_null(k);
	if (strncmp(err, "checkpointer: ", 14) != 0 || !strstr(err, "not a database"))
		fail_msg("err: \"%s\"", err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checkpoint_restarts_wal),
	    cmocka_unit_test(test_checkpoint_truncates_when_idle),
	    cmocka_unit_test(test_checkpoint_stop_copies_the_rest),
	    cmocka_unit_test(test_checkpoint_stop_wakes_the_thread),
	    cmocka_unit_test(test_checkpoint_start_fails_clearly),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
