/* store_maint: online backup and the retention purge.
 *
 * store_backup copies the live database page by page with SQLite's backup API
 * in one read transaction, so the copy is consistent while the gateway keeps
 * writing (WAL readers do not block writers); the destination is created 0600
 * and checked with PRAGMA quick_check.
 *
 * store_purge blanks the text, payload and media id of messages older than the
 * cut-off (the office's retention rule, UU PDP 27/2022), in short transactions
 * so the gateway is never locked out for long; counts, intents, statuses and
 * times stay for the stats. Messages still waiting in the outbox are kept.
 * secure_delete is on for the purge so the old text does not linger in free
 * pages, and the WAL is checkpointed afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

#define PURGE_BATCH 500
#define BACKUP_BUSY_TRIES 200 /* x 50 ms */

static void chmod_side(const char *path, const char *suffix)
{
	char p[4200];
	int n = snprintf(p, sizeof p, "%s%s", path, suffix);
	if (n > 0 && (size_t)n < sizeof p)
		chmod(p, 0600);
}

int store_backup(store *s, const char *dest, char *err, size_t errlen)
{
	sqlite3 *d = NULL;
	sqlite3_backup *b = NULL;
	int rc = STORE_ERR, fd = -1;
	struct stat src_st, dst_st;
	if (errlen)
		err[0] = '\0';
	if (!dest || !*dest) {
		snprintf(err, errlen, "no destination");
		goto out;
	}
	if (stat(s->path, &src_st) == 0 && stat(dest, &dst_st) == 0 && src_st.st_dev == dst_st.st_dev &&
	    src_st.st_ino == dst_st.st_ino) {
		snprintf(err, errlen, "%s is the live database", dest);
		goto out;
	}
	fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0) {
		snprintf(err, errlen, "%s: %s", dest, strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	chmod_side(dest, "-wal");
	chmod_side(dest, "-shm");
	if (sqlite3_open_v2(dest, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", dest, d ? sqlite3_errmsg(d) : "cannot open");
		goto out;
	}
	b = sqlite3_backup_init(d, "main", s->db, "main");
	if (!b) {
		snprintf(err, errlen, "backup: %s", sqlite3_errmsg(d));
		goto out;
	}
	int step, tries = 0;
	while ((step = sqlite3_backup_step(b, -1)) != SQLITE_DONE) {
		int primary = step & 0xff;
		if ((primary == SQLITE_BUSY || primary == SQLITE_LOCKED) && ++tries < BACKUP_BUSY_TRIES) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
			continue;
		}
		snprintf(err, errlen, "backup: %s", sqlite3_errstr(step));
		rc = (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) ? STORE_ERR_BUSY : STORE_ERR;
		goto out;
	}
	sqlite3_backup_finish(b);
	b = NULL;
	if (sqlite3_errcode(d) != SQLITE_OK) {
		snprintf(err, errlen, "backup: %s", sqlite3_errmsg(d));
		goto out;
	}
	sqlite3_stmt *st = NULL;
	int ok = sqlite3_prepare_v2(d, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
		 sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	if (!ok) {
		snprintf(err, errlen, "%s: the copy fails its integrity check", dest);
		goto out;
	}
	rc = STORE_OK;
out:
	if (b)
		sqlite3_backup_finish(b);
	if (d)
		sqlite3_close(d);
	if (fd >= 0)
		close(fd);
	if (dest && *dest) {
		chmod_side(dest, "-wal");
		chmod_side(dest, "-shm");
	}
	if (rc != STORE_OK && errlen)
		store_failf(s, rc, "%s", err);
	return rc;
}

int store_purge(store *s, int64_t before_ms, int64_t *n_purged)
{
	int64_t total = 0;
	*n_purged = 0;
	if (sqlite3_exec(s->db, "PRAGMA secure_delete = ON", NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(s, sqlite3_errcode(s->db));
	sqlite3_stmt *st = store_stmt(s, STMT_PURGE,
				      "UPDATE messages SET text = NULL, payload = NULL, media_id = NULL WHERE id IN ("
				      " SELECT id FROM messages WHERE at_ms < ?1"
				      " AND (text IS NOT NULL OR payload IS NOT NULL OR media_id IS NOT NULL)"
				      " AND id NOT IN (SELECT message_id FROM outbox WHERE dead = 0) LIMIT ?2)");
	if (!st)
		return STORE_ERR;
	for (;;) {
		int rc = store_tx_begin(s);
		if (rc != STORE_OK)
			return rc;
		sqlite3_bind_int64(st, 1, before_ms);
		sqlite3_bind_int(st, 2, PURGE_BATCH);
		rc = store_exec_stmt(s, st);
		int changed = rc == STORE_OK ? sqlite3_changes(s->db) : 0;
		if (rc == STORE_OK)
			rc = store_tx_commit(s);
		else
			store_tx_rollback(s);
		if (rc != STORE_OK)
			return rc;
		total += changed;
		*n_purged = total;
		if (changed < PURGE_BATCH)
			break;
	}
	/* Move the blanked pages into the main file and empty the WAL; a busy
	 * reader only delays this, the purge itself is done. */
	sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	return STORE_OK;
}
