/* store_sqlite: opening and closing the SQLite backend, its pragmas, the
 * per-handle statement cache, transactions and the error mapping every other
 * store file uses.
 *
 * store_open creates the file with mode 0600 before SQLite touches it (SQLite
 * gives the -wal and -shm files the database file's mode; we chmod them too),
 * turns on WAL, foreign keys and the busy timeout, then migrates
 * (store_schema.c). The queries themselves live in store_inbound.c,
 * store_outbox.c, store_agent.c, store_stats.c and store_maint.c. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "store/store_int.h"

const char *store_rc_str(int rc)
{
	switch (rc) {
	case STORE_OK:
		return "ok";
	case STORE_DUPLICATE:
		return "duplicate message";
	case STORE_ERR:
		return "storage error";
	case STORE_ERR_BUSY:
		return "database busy";
	case STORE_ERR_NOTFOUND:
		return "not found";
	case STORE_ERR_CONFLICT:
		return "conflict";
	default:
		return "unknown store result";
	}
}

/* ---- errors and helpers ---- */

int store_fail(store *s, int sqlite_rc)
{
	int primary = sqlite_rc & 0xff;
	snprintf(s->err, sizeof s->err, "%s (%d)", s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(sqlite_rc),
		 sqlite_rc);
	if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
		return STORE_ERR_BUSY;
	return STORE_ERR;
}

int store_failf(store *s, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	return rc;
}

const char *store_errmsg(const store *s)
{
	return s ? s->err : "no store";
}

sqlite3_stmt *store_stmt(store *s, store_stmt_id id, const char *sql)
{
	/* Inside a round whose transaction SQLite ended (I/O error, disk full),
	 * a statement would run, and commit, on its own: refuse every one, so
	 * nothing of the round is kept, as store_round_begin promises. */
	if (s->tx_depth > 0 && sqlite3_get_autocommit(s->db)) {
		store_failf(s, STORE_ERR, "the round's transaction was rolled back by an earlier error");
		return NULL;
	}
	if (s->stmt[id])
		return s->stmt[id];
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id], NULL);
	if (rc != SQLITE_OK) {
		store_fail(s, rc);
		sqlite3_finalize(s->stmt[id]);
		s->stmt[id] = NULL;
		return NULL;
	}
	return s->stmt[id];
}

void store_stmt_done(sqlite3_stmt *st)
{
	if (!st)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int store_bind_text(sqlite3_stmt *st, int idx, const char *str)
{
	if (!str)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_text(st, idx, str, -1, SQLITE_TRANSIENT);
}

void store_str_copy(char *out, size_t outlen, const char *src)
{
	if (outlen == 0)
		return;
	size_t n = src ? strlen(src) : 0;
	if (n >= outlen) {
		n = outlen - 1;
		/* Do not cut a UTF-8 sequence in half: back off continuation bytes. */
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	if (n)
		memcpy(out, src, n);
	out[n] = '\0';
}

void store_col_copy(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
	store_str_copy(out, outlen, (const char *)sqlite3_column_text(st, col));
}

char *store_col_dup(sqlite3_stmt *st, int col, int *oom)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	if (!t)
		return NULL;
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	char *p = malloc(n + 1);
	if (!p) {
		*oom = 1;
		return NULL;
	}
	memcpy(p, t, n);
	p[n] = '\0';
	return p;
}

int store_exec_stmt(store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int out = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? STORE_OK : store_fail(s, rc);
	store_stmt_done(st);
	return out;
}

/* ---- transactions ---- */

static int simple(store *s, store_stmt_id id, const char *sql)
{
	sqlite3_stmt *st = store_stmt(s, id, sql);
	if (!st)
		return STORE_ERR;
	return store_exec_stmt(s, st);
}

/* Transactions nest: the outermost level is BEGIN IMMEDIATE ... COMMIT, an
 * inner one a savepoint, so a store call made inside store_round_begin ...
 * store_round_commit keeps its all-or-nothing behaviour while the round
 * commits (and fsyncs) once. A failed commit closes its level: the caller must
 * not roll it back again. */
int store_tx_begin(store *s)
{
	int rc;
	if (s->tx_depth > 0 && sqlite3_get_autocommit(s->db))
		return store_failf(s, STORE_ERR, "the round's transaction was rolled back by an earlier error");
	if (s->tx_depth == 0)
		rc = simple(s, STMT_BEGIN, "BEGIN IMMEDIATE");
	else
		rc = simple(s, STMT_TX_SAVEPOINT, "SAVEPOINT tx");
	if (rc == STORE_OK)
		s->tx_depth++;
	return rc;
}

int store_tx_commit(store *s)
{
	int rc;
	if (s->tx_depth > 1) {
		if (sqlite3_get_autocommit(s->db)) {
			s->tx_depth--;
			return store_failf(s, STORE_ERR, "the round's transaction was rolled back by an earlier error");
		}
		rc = simple(s, STMT_TX_RELEASE, "RELEASE tx");
		if (rc != STORE_OK)
			store_tx_rollback(s);
		else
			s->tx_depth--;
		return rc;
	}
	rc = simple(s, STMT_COMMIT, "COMMIT");
	if (rc != STORE_OK)
		store_tx_rollback(s);
	s->tx_depth = 0;
	return rc;
}

void store_tx_rollback(store *s)
{
	char keep[sizeof s->err];
	memcpy(keep, s->err, sizeof keep);
	if (s->tx_depth > 1) {
		s->tx_depth--;
		if (!sqlite3_get_autocommit(s->db)) {
			simple(s, STMT_TX_ROLLBACK_TO, "ROLLBACK TO tx");
			simple(s, STMT_TX_RELEASE, "RELEASE tx");
		}
	} else {
		s->tx_depth = 0;
		if (!sqlite3_get_autocommit(s->db))
			simple(s, STMT_ROLLBACK, "ROLLBACK");
	}
	memcpy(s->err, keep, sizeof keep);
}

int store_round_begin(store *s)
{
	if (s->readonly)
		return store_failf(s, STORE_ERR, "read-only handle");
	if (s->tx_depth != 0)
		return store_failf(s, STORE_ERR, "a round is already open");
	return store_tx_begin(s);
}

int store_round_commit(store *s)
{
	if (s->tx_depth != 1) {
		int was = s->tx_depth;
		store_tx_rollback(s);
		s->tx_depth = 0;
		return store_failf(s, STORE_ERR,
				   was ? "a store call inside the round was left open" : "no round is open");
	}
	return store_tx_commit(s);
}

void store_round_rollback(store *s)
{
	while (s->tx_depth > 0)
		store_tx_rollback(s);
}

int store_sp_begin(store *s)
{
	return simple(s, STMT_SAVEPOINT, "SAVEPOINT m");
}

int store_sp_release(store *s)
{
	return simple(s, STMT_RELEASE, "RELEASE m");
}

void store_sp_rollback(store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;
	char keep[sizeof s->err];
	memcpy(keep, s->err, sizeof keep);
	if (simple(s, STMT_ROLLBACK_TO, "ROLLBACK TO m") == STORE_OK)
		simple(s, STMT_RELEASE, "RELEASE m");
	memcpy(s->err, keep, sizeof keep);
}

/* ---- waiting for the write lock ---- */

/* SQLite's own busy handler (sqlite3_busy_timeout) sleeps 1, 2, 5, 10, 15, 20,
 * 25 ... ms between tries: a writer that meets a lock held for 0.3 ms sleeps
 * for milliseconds, and three tries cost 8 ms. Locks here are held for well
 * under a millisecond (batched transactions), so look again after 50 µs, then
 * 200 µs, then every millisecond, up to busy_timeout_ms in all. */
static int store_busy_cb(void *arg, int count)
{
	store *s = arg;
	int64_t now = clock_mono_us();
	if (count == 0)
		s->busy_start_us = now;
	int64_t left = (int64_t)s->busy_timeout_ms * 1000 - (now - s->busy_start_us);
	if (left <= 0)
		return 0;
	int64_t nap = count < 20 ? 50 : count < 100 ? 200 : 1000;
	if (nap > left)
		nap = left;
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)nap * 1000};
	nanosleep(&ts, NULL);
	return 1;
}

int store_sp_batch(store *s, int op)
{
	switch (op) {
	case STORE_SP_BEGIN:
		return simple(s, STMT_SP_BATCH, "SAVEPOINT b");
	case STORE_SP_RELEASE:
		return simple(s, STMT_SP_BATCH_RELEASE, "RELEASE b");
	default:
		return simple(s, STMT_SP_BATCH_ROLLBACK, "ROLLBACK TO b");
	}
}

/* ---- opening ---- */

/* Process-wide SQLite settings, before SQLite initialises itself: no memory
 * statistics (they put a global mutex around every allocation, and loket
 * never reads them). When something initialised SQLite first, the call fails
 * harmlessly and the defaults stay. */
static pthread_once_t store_global_once = PTHREAD_ONCE_INIT;

static void store_global_init(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite3_initialize();
}

static int pragma(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "%s: %s", sql, sqlite3_errmsg(db));
	return -1;
}

/* chmod path+suffix to 0600 when it exists. */
static void chmod_side(const char *path, const char *suffix)
{
	char p[4200];
	int n = snprintf(p, sizeof p, "%s%s", path, suffix);
	if (n > 0 && (size_t)n < sizeof p)
		chmod(p, 0600);
}

/* Creates the database's directory (one level, mode 0700) when it is missing,
 * so a fresh deployment's var/ needs no manual step. */
static int store_mkdir_parent(const char *path)
{
	char dir[4096];
	char *slash;

	if (strlen(path) >= sizeof(dir))
		return -1;
	memcpy(dir, path, strlen(path) + 1);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return -1;
	*slash = '\0';
	return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

store *store_open(const store_opts *o, char *err, size_t errlen)
{
	store *s = NULL;
	int fd = -1;
	if (errlen)
		err[0] = '\0';
	if (!o || !o->path || !*o->path) {
		snprintf(err, errlen, "no database path");
		goto fail;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->readonly = o->readonly;
	if (strlen(o->path) >= sizeof s->path) {
		snprintf(err, errlen, "database path too long");
		goto fail;
	}
	store_str_copy(s->path, sizeof s->path, o->path);

	if (!o->readonly) {
		/* Create the file ourselves so it is never readable by others, even for
		 * a moment; an existing file keeps its mode. O_EXCL matters: closing
		 * any descriptor of a file drops every POSIX lock this process holds
		 * on it, so an existing database (which another handle of ours may
		 * have open, locked) must never be opened and closed here. */
		fd = open(o->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno == ENOENT && store_mkdir_parent(o->path) == 0)
			fd = open(o->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
			goto fail;
		}
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	pthread_once(&store_global_once, store_global_init);
	int flags =
	    (o->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	int rc = sqlite3_open_v2(o->path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", o->path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	/* More and larger lookaside slots: most of a statement's small allocations
	 * then never reach malloc. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 1200, 400);
	s->busy_timeout_ms = o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 0;
	sqlite3_busy_handler(s->db, s->busy_timeout_ms > 0 ? store_busy_cb : NULL, s);
	if (pragma(s->db, "PRAGMA foreign_keys = ON", err, errlen) < 0)
		goto fail;
	/* Keeps the per-message savepoints' sub-journal in memory: on disk it is a
	 * temporary file created and unlinked every few messages. */
	if (pragma(s->db, "PRAGMA temp_store = MEMORY", err, errlen) < 0)
		goto fail;
	/* sync_later: NORMAL commits without an fsync in WAL mode (checkpoints
	 * still sync); a store_syncer (store_sync.c) makes them durable. */
	if (pragma(s->db,
		   o->synchronous_full && !o->sync_later ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
		   err, errlen) < 0)
		goto fail;
	/* no_checkpoint: a commit that finds the WAL long would copy it into the
	 * database file and fsync it, inside the commit; a checkpointer thread
	 * does that beside the writer instead (store_checkpoint). */
	if (o->no_checkpoint)
		sqlite3_wal_autocheckpoint(s->db, 0);
	if (!o->readonly) {
		if (pragma(s->db, "PRAGMA journal_mode = WAL", err, errlen) < 0)
			goto fail;
		if (store_migrate(s->db, err, errlen) < 0)
			goto fail;
		chmod_side(o->path, "-wal");
		chmod_side(o->path, "-shm");
	} else {
		int v = store_schema_version(s);
		if (v < 0) {
			snprintf(err, errlen, "%s: %s", o->path, sqlite3_errmsg(s->db));
			goto fail;
		}
		if (v != store_schema_latest()) {
			snprintf(err, errlen, "%s: schema version %d, this loket needs %d (open it once read-write)",
				 o->path, v, store_schema_latest());
			goto fail;
		}
	}
	return s;
fail:
	store_close(s);
	return NULL;
}

void store_close(store *s)
{
	if (!s)
		return;
	for (int i = 0; i < STMT__COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s->dec);
	free(s->dec_state);
	for (size_t i = 0; i < s->n_fresh; i++) {
		free(s->fresh[i].text);
		free(s->fresh[i].payload);
	}
	free(s->fresh);
	free(s);
}

int store_schema_version(store *s)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int store_checkpoint(store *s, int mode, int *wal_pages, int *copied)
{
	int log = 0, done = 0;
	int how = mode == STORE_CKPT_TRUNCATE  ? SQLITE_CHECKPOINT_TRUNCATE
		  : mode == STORE_CKPT_RESTART ? SQLITE_CHECKPOINT_RESTART
					       : SQLITE_CHECKPOINT_PASSIVE;
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, how, &log, &done);
	if (wal_pages)
		*wal_pages = log;
	if (copied)
		*copied = done;
	return rc == SQLITE_OK ? STORE_OK : store_fail(s, rc);
}

int store_ping(store *s)
{
	if (s->readonly)
		return store_failf(s, STORE_ERR, "read-only handle");
	int rc = store_tx_begin(s);
	if (rc != STORE_OK)
		return rc;
	/* A write that changes nothing still takes the write lock. */
	sqlite3_stmt *st = store_stmt(s, STMT_PING, "UPDATE contacts SET id = id WHERE 0");
	rc = st ? store_exec_stmt(s, st) : STORE_ERR;
	if (rc != STORE_OK) {
		store_tx_rollback(s);
		return rc;
	}
	return store_tx_commit(s);
}
