/* store_outbox: what the sender sends, with leases so two senders (or a sender
 * restarted after a crash) never send the same row twice at once.
 *
 * A lease returns, in one transaction, the due rows (next attempt reached, not
 * dead, lease expired) that are also the oldest live row of their conversation,
 * so a conversation's messages leave in the order they were written; a row
 * waiting for a retry holds back the ones behind it. Sending (store_outbox_sent)
 * deletes the row; giving up (store_outbox_fail) keeps it, marked dead, for the
 * stats. store_outbox_results records many outcomes in one transaction (the
 * sender's loop collects them); the single-outcome calls are that with n = 1.
 * Retry/backoff policy is the sender's. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

int store_outbox_lease(store *s, int64_t now_ms, int64_t lease_ms, size_t max, store_outbox_item **items, size_t *n)
{
	*items = NULL;
	*n = 0;
	if (max == 0)
		return STORE_OK;
	store_outbox_item *v = calloc(max, sizeof *v);
	if (!v)
		return store_failf(s, STORE_ERR, "out of memory");
	size_t k = 0;
	int oom = 0, step = SQLITE_DONE;
	int rc = store_tx_begin(s);
	if (rc != STORE_OK)
		goto out;
	sqlite3_stmt *st =
	    store_stmt(s, STMT_OUTBOX_DUE,
		       "SELECT o.message_id, o.conversation_id, k.channel, k.address, m.text, m.payload, o.attempts,"
		       " o.created_ms, c.last_inbound_ms"
		       " FROM outbox o JOIN messages m ON m.id = o.message_id"
		       " JOIN conversations c ON c.id = o.conversation_id JOIN contacts k ON k.id = c.contact_id"
		       " WHERE o.dead = 0 AND o.next_attempt_ms <= ?1 AND o.lease_until_ms <= ?1"
		       " AND NOT EXISTS (SELECT 1 FROM outbox o2 WHERE o2.conversation_id = o.conversation_id"
		       "  AND o2.dead = 0 AND o2.message_id < o.message_id)"
		       " ORDER BY o.next_attempt_ms, o.message_id LIMIT ?2");
	if (!st) {
		rc = STORE_ERR;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while (k < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
		store_outbox_item *it = &v[k++];
		it->id = sqlite3_column_int64(st, 0);
		it->conversation_id = sqlite3_column_int64(st, 1);
		store_col_copy(st, 2, it->channel, sizeof it->channel);
		store_col_copy(st, 3, it->address, sizeof it->address);
		it->text = store_col_dup(st, 4, &oom);
		it->payload = store_col_dup(st, 5, &oom);
		it->attempts = sqlite3_column_int(st, 6);
		it->created_ms = sqlite3_column_int64(st, 7);
		it->last_inbound_ms = sqlite3_column_int64(st, 8);
		if (oom)
			break;
	}
	if (k < max && !oom && step != SQLITE_DONE)
		rc = store_fail(s, step);
	store_stmt_done(st);
	if (oom)
		rc = store_failf(s, STORE_ERR, "out of memory");
	if (rc != STORE_OK)
		goto fail;

	/* The next attempt moves to the lease's end too: rows in flight then sit
	 * past "now" in the due-time index, so the next lease's walk starts at
	 * the rows really due instead of stepping over every leased one. A
	 * crashed sender's rows come back when the lease ends, as before. */
	st = store_stmt(s, STMT_OUTBOX_LEASE,
			"UPDATE outbox SET lease_until_ms = ?1, next_attempt_ms = ?1 WHERE message_id = ?2");
	if (!st) {
		rc = STORE_ERR;
		goto fail;
	}
	for (size_t i = 0; i < k; i++) {
		sqlite3_bind_int64(st, 1, now_ms + lease_ms);
		sqlite3_bind_int64(st, 2, v[i].id);
		rc = store_exec_stmt(s, st);
		if (rc != STORE_OK)
			goto fail;
	}
	rc = store_tx_commit(s);
	if (rc != STORE_OK)
		goto out;
	*items = v;
	*n = k;
	return STORE_OK;
fail:
	store_tx_rollback(s);
out:
	store_outbox_items_free(v, k);
	return rc;
}

void store_outbox_items_free(store_outbox_item *items, size_t n)
{
	if (!items)
		return;
	for (size_t i = 0; i < n; i++) {
		free(items[i].text);
		free(items[i].payload);
	}
	free(items);
}

/* Runs the bound statement st, which must change exactly one row (else
 * NOTFOUND), inside the caller's transaction. */
static int exec_one(store *s, sqlite3_stmt *st, int64_t id)
{
	int rc = store_exec_stmt(s, st);
	if (rc == STORE_OK && sqlite3_changes(s->db) != 1)
		rc = store_failf(s, STORE_ERR_NOTFOUND, "no live outbox row for message %lld", (long long)id);
	return rc;
}

/* The message row of a live outbox row always exists (foreign key); if it did
 * not, the outbox row was already changed: an error for the whole transaction. */
static int exec_msg(store *s, sqlite3_stmt *st, int64_t id)
{
	int rc = exec_one(s, st, id);
	return rc == STORE_ERR_NOTFOUND ? store_failf(s, STORE_ERR, "message %lld is missing", (long long)id) : rc;
}

static int valid_fail_status(const char *status)
{
	return status &&
	       (strcmp(status, "failed") == 0 || strcmp(status, "dead") == 0 || strcmp(status, "window_closed") == 0);
}

/* Each of these records one outcome inside the caller's transaction. The
 * first statement is the conditional one (the live outbox row): when it
 * changes nothing the result is STORE_ERR_NOTFOUND and nothing was written. */
static int sent_one(store *s, int64_t id, const char *provider_id, int64_t now_ms)
{
	sqlite3_stmt *st = store_stmt(s, STMT_OUTBOX_DELETE, "DELETE FROM outbox WHERE message_id = ? AND dead = 0");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, id);
	int rc = exec_one(s, st, id);
	if (rc != STORE_OK)
		return rc;
	st = store_stmt(s, STMT_MSG_SENT,
			"UPDATE messages SET status = 'sent', provider_id = ?, error = NULL WHERE id = ?");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, provider_id);
	sqlite3_bind_int64(st, 2, id);
	if ((rc = exec_msg(s, st, id)) != STORE_OK)
		return rc;
	return store_status_insert(s, id, "sent", NULL, now_ms);
}

/* RETRY counts an attempt (count 1), HOLD does not (count 0). A NULL error
 * keeps the row's last one (a hold that made no request has nothing new). */
static int retry_one(store *s, int64_t id, int count, int64_t next_ms, const char *error)
{
	sqlite3_stmt *st = store_stmt(
	    s, STMT_OUTBOX_RETRY,
	    "UPDATE outbox SET attempts = attempts + ?, next_attempt_ms = ?, last_error = COALESCE(?, last_error),"
	    " lease_until_ms = 0 WHERE message_id = ? AND dead = 0");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int(st, 1, count);
	sqlite3_bind_int64(st, 2, next_ms);
	store_bind_text(st, 3, error);
	sqlite3_bind_int64(st, 4, id);
	return exec_one(s, st, id);
}

static int fail_one(store *s, int64_t id, const char *status, const char *error, int64_t now_ms)
{
	sqlite3_stmt *st =
	    store_stmt(s, STMT_OUTBOX_DEAD,
		       "UPDATE outbox SET dead = 1, attempts = attempts + 1, last_error = ?, lease_until_ms = 0"
		       " WHERE message_id = ? AND dead = 0");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, error);
	sqlite3_bind_int64(st, 2, id);
	int rc = exec_one(s, st, id);
	if (rc != STORE_OK)
		return rc;
	st = store_stmt(s, STMT_MSG_SET_STATUS, "UPDATE messages SET status = ?, error = ? WHERE id = ?");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, status);
	store_bind_text(st, 2, error);
	sqlite3_bind_int64(st, 3, id);
	if ((rc = exec_msg(s, st, id)) != STORE_OK)
		return rc;
	return store_status_insert(s, id, status, error, now_ms);
}

/* Runs one outcome in its own transaction (the single-outcome calls). */
static int one_tx(store *s, const store_outbox_result *r, int64_t now_ms)
{
	int item_rc = STORE_OK;
	int rc = store_outbox_results(s, r, 1, now_ms, &item_rc);
	return rc != STORE_OK ? rc : item_rc;
}

int store_outbox_sent(store *s, int64_t id, const char *provider_id, int64_t now_ms)
{
	store_outbox_result r = {.id = id, .outcome = STORE_OUTBOX_SENT, .provider_id = provider_id};
	return one_tx(s, &r, now_ms);
}

int store_outbox_retry(store *s, int64_t id, int64_t next_ms, const char *error, int64_t now_ms)
{
	store_outbox_result r = {.id = id, .outcome = STORE_OUTBOX_RETRY, .next_ms = next_ms, .error = error};
	return one_tx(s, &r, now_ms);
}

int store_outbox_fail(store *s, int64_t id, const char *status, const char *error, int64_t now_ms)
{
	if (!valid_fail_status(status))
		return store_failf(s, STORE_ERR, "outbox failure status must be failed, dead or window_closed");
	store_outbox_result r = {.id = id, .outcome = STORE_OUTBOX_FAIL, .status = status, .error = error};
	return one_tx(s, &r, now_ms);
}

int store_outbox_results(store *s, const store_outbox_result *v, size_t n, int64_t now_ms, int *item_rc)
{
	if (n == 0)
		return STORE_OK;
	int rc = store_tx_begin(s);
	if (rc != STORE_OK)
		goto out;
	char first_err[sizeof s->err] = "";
	for (size_t i = 0; i < n; i++) {
		const store_outbox_result *r = &v[i];
		int one;
		switch (r->outcome) {
		case STORE_OUTBOX_SENT:
			one = sent_one(s, r->id, r->provider_id, now_ms);
			break;
		case STORE_OUTBOX_RETRY:
		case STORE_OUTBOX_HOLD:
			one = retry_one(s, r->id, r->outcome == STORE_OUTBOX_RETRY, r->next_ms, r->error);
			break;
		case STORE_OUTBOX_FAIL:
			one = valid_fail_status(r->status)
				  ? fail_one(s, r->id, r->status, r->error, now_ms)
				  : store_failf(s, STORE_ERR_CONFLICT,
						"outbox failure status must be failed, dead or window_closed");
			break;
		default:
			one = store_failf(s, STORE_ERR_CONFLICT, "unknown outbox outcome %d", r->outcome);
			break;
		}
		if (one == STORE_ERR_CONFLICT) /* refused before writing anything */
			one = STORE_ERR;
		else if (one != STORE_OK && one != STORE_ERR_NOTFOUND) {
			rc = one; /* a statement failed half-way: the whole batch goes */
			goto fail;
		}
		if (one != STORE_OK && !first_err[0])
			memcpy(first_err, s->err, sizeof first_err);
		if (item_rc)
			item_rc[i] = one;
	}
	rc = store_tx_commit(s);
	if (rc == STORE_OK && first_err[0])
		memcpy(s->err, first_err, sizeof first_err);
	goto out;
fail:
	store_tx_rollback(s);
out:
	if (rc != STORE_OK && item_rc)
		for (size_t i = 0; i < n; i++)
			item_rc[i] = rc;
	return rc;
}

int store_outbox_counts_get(store *s, int64_t now_ms, store_outbox_counts *c)
{
	memset(c, 0, sizeof *c);
	sqlite3_stmt *st = store_stmt(s, STMT_OUTBOX_COUNTS,
				      "SELECT coalesce(sum(dead = 0 AND lease_until_ms <= ?1), 0),"
				      " coalesce(sum(dead = 0 AND lease_until_ms > ?1), 0), coalesce(sum(dead = 1), 0),"
				      " coalesce(min(CASE WHEN dead = 0 THEN created_ms END), 0) FROM outbox");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, now_ms);
	int step = sqlite3_step(st);
	int rc = STORE_OK;
	if (step == SQLITE_ROW) {
		c->pending = sqlite3_column_int64(st, 0);
		c->leased = sqlite3_column_int64(st, 1);
		c->dead = sqlite3_column_int64(st, 2);
		c->oldest_pending_ms = sqlite3_column_int64(st, 3);
	} else {
		rc = store_fail(s, step);
	}
	store_stmt_done(st);
	return rc;
}
