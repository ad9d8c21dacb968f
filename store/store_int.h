/* store_int: what the SQLite backend's files share and nobody outside store/
 * (and its tests) may see: the handle, the statement cache, the helpers that
 * turn SQLite's result codes into store_rc, and the migration list.
 *
 * Every statement is prepared once per handle (sqlite3_prepare_v3 with
 * SQLITE_PREPARE_PERSISTENT) the first time it is used, kept in s->stmt[id],
 * and reset with its bindings cleared after each use (store_stmt_done). */
#ifndef LOKET_STORE_INT_H
#define LOKET_STORE_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* One slot per cached statement. The SQL text lives at the single call site. */
typedef enum store_stmt_id {
	STMT_BEGIN = 0,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	STMT_ROLLBACK_TO,
	STMT_TX_SAVEPOINT,
	STMT_TX_RELEASE,
	STMT_TX_ROLLBACK_TO,
	STMT_SP_BATCH,
	STMT_SP_BATCH_RELEASE,
	STMT_SP_BATCH_ROLLBACK,
	/* conversations */
	STMT_CONV_GET,
	STMT_CONV_FIND,
	STMT_CONV_BY_CONTACT,
	STMT_CONV_INSERT,
	STMT_CONV_UPDATE,
	STMT_CONV_UPDATE_BOT,
	STMT_CONTACT_INSERT,
	STMT_CONTACT_UPDATE,
	STMT_CONV_EXISTS,
	/* inbound */
	STMT_IN_DUP,
	STMT_MSG_INSERT,
	STMT_OUTBOX_INSERT,
	STMT_OUTBOX_CONV_LIVE,
	STMT_ESC_INSERT,
	/* outbox */
	STMT_OUTBOX_DUE,
	STMT_OUTBOX_LEASE,
	STMT_OUTBOX_DELETE,
	STMT_OUTBOX_RETRY,
	STMT_OUTBOX_DEAD,
	STMT_OUTBOX_COUNTS,
	STMT_MSG_SENT,
	STMT_MSG_SET_STATUS,
	STMT_MSG_BY_PROVIDER,
	STMT_STATUS_INSERT,
	STMT_MSGS_SINCE,
	/* agents' side */
	STMT_QUEUE_LIST,
	STMT_CONV_CLAIM,
	STMT_ESC_CLAIM,
	STMT_CONV_RESOLVE,
	STMT_CONV_TRANSFER,
	STMT_RATING_INSERT,
	STMT_AGENT_INSERT,
	STMT_AGENT_GET,
	STMT_AGENT_LIST,
	STMT_AGENT_DISABLE,
	STMT_AGENT_PWHASH,
	STMT_AGENT_USABLE,
	STMT_SESSION_INSERT,
	STMT_SESSION_GET,
	STMT_SESSION_DELETE,
	STMT_AUDIT_INSERT,
	/* reporting and maintenance */
	STMT_BEGIN_READ,
	STMT_STATS_COUNTS,
	STMT_STATS_WAITS,
	STMT_STATS_INTENTS,
	STMT_STATS_UNMATCHED,
	STMT_PURGE,
	STMT_PING,
	STMT__COUNT
} store_stmt_id;

struct store {
	sqlite3 *db;
	int readonly;
	char path[4096];
	char err[512];
	int tx_depth;	       /* open transaction levels: 0 none, 1 BEGIN, more savepoints */
	int busy_timeout_ms;   /* how long a write waits for the lock in all */
	int64_t busy_start_us; /* when the current wait began (store_busy_cb) */
	/* store_inbound_batch's decisions, so a batch run twice decides once */
	store_decision *dec;
	unsigned char *dec_state;
	size_t dec_cap;
	/* store_outbox_fresh_begin: rows store_inbound_batch queues are leased
	 * as they are written, up to fresh_max, and kept here */
	size_t fresh_max;
	int64_t fresh_until_ms;
	store_outbox_item *fresh;
	size_t n_fresh, fresh_cap;
	sqlite3_stmt *stmt[STMT__COUNT];
};

/* The cached statement id, preparing it from sql on first use. NULL on error
 * (the reason is in s->err). */
sqlite3_stmt *store_stmt(store *s, store_stmt_id id, const char *sql);
/* Resets a cached statement and clears its bindings; NULL is fine. */
void store_stmt_done(sqlite3_stmt *st);

/* Maps an SQLite result code to a store_rc and records the connection's error
 * message in s->err. SQLITE_BUSY/LOCKED give STORE_ERR_BUSY. */
int store_fail(store *s, int sqlite_rc);
/* Records a message of our own in s->err and returns rc. */
int store_failf(store *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Binds s, or NULL when s is NULL. */
int store_bind_text(sqlite3_stmt *st, int idx, const char *s);
/* Copies text column col into out (NUL-terminated, cut at a UTF-8 boundary). */
void store_col_copy(sqlite3_stmt *st, int col, char *out, size_t outlen);
/* A malloc'd copy of text column col, or NULL when it is NULL. *oom is set to 1
 * when the allocation failed. */
char *store_col_dup(sqlite3_stmt *st, int col, int *oom);
/* Copies src into out like store_col_copy. */
void store_str_copy(char *out, size_t outlen, const char *src);

/* Runs a cached statement that returns no rows. STORE_OK or an error. */
int store_exec_stmt(store *s, sqlite3_stmt *st);

/* Transactions: BEGIN IMMEDIATE (waits busy_timeout, then STORE_ERR_BUSY),
 * COMMIT (on failure the transaction is rolled back), ROLLBACK (quiet). */
int store_tx_begin(store *s);
int store_tx_commit(store *s);
void store_tx_rollback(store *s);
/* One savepoint level named "m", used per inbound message. */
int store_sp_begin(store *s);
int store_sp_release(store *s);
void store_sp_rollback(store *s);
/* The savepoint "b" around a whole inbound batch: begin, release, or roll
 * back to it (it stays open after a rollback, as SQLite does). */
enum { STORE_SP_BEGIN, STORE_SP_RELEASE, STORE_SP_ROLLBACK };
int store_sp_batch(store *s, int op);

/* The conversation columns every query that fills a store_conv selects, in the
 * order store_conv_from_row reads them (c = conversations, k = contacts). */
#define STORE_CONV_COLS                                                                                                \
	"c.id, c.contact_id, k.channel, k.address, k.display_name, c.state, k.lang, c.context, c.fallbacks, "          \
	"k.opted_out, c.menu, c.agent, c.created_ms, c.last_inbound_ms, c.escalated_ms, c.claimed_ms, "                \
	"c.rate_window_ms, c.rate_count"
void store_conv_from_row(sqlite3_stmt *st, store_conv *c);

/* Appends an audit row inside the caller's transaction. */
int store_audit_insert(store *s, const char *who, const char *what, const char *object, const char *detail,
		       int64_t now_ms);
/* Inserts an outbound message of conversation c (its id, contact_id and
 * channel are used) and its outbox row when out->queue and not sandboxed,
 * inside the caller's transaction. lease_until_ms > 0 writes the outbox row
 * already leased until then. */
int store_out_insert(store *s, const store_conv *c, const char *author, const char *intent, const store_out *out,
		     int64_t now_ms, int64_t lease_until_ms, int64_t *out_id);
/* Appends one delivery-status history row inside the caller's transaction. */
int store_status_insert(store *s, int64_t message_id, const char *status, const char *error, int64_t at_ms);

/* ---- migrations (store_schema.c) ---- */

/* store_migrations[i] turns schema version i into version i + 1. */
extern const char *const store_migrations[];
extern const int store_migrations_n;

/* Brings db to the newest version, one transaction per step. 0 or -1 (err). */
int store_migrate(sqlite3 *db, char *err, size_t errlen);

#endif
