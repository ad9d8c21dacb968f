/* store_msg: a conversation's messages (history, resume) and the providers'
 * delivery-status callbacks.
 *
 * A message's status moves forward only, in the order sent < delivered < read;
 * "failed" is always taken; any other status is history only. Every report,
 * forward or not, is appended to the message_status history. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

int store_status_insert(store *s, int64_t message_id, const char *status, const char *error, int64_t at_ms)
{
	sqlite3_stmt *st = store_stmt(
	    s, STMT_STATUS_INSERT, "INSERT INTO message_status (message_id, status, error, at_ms) VALUES (?, ?, ?, ?)");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, message_id);
	store_bind_text(st, 2, status);
	store_bind_text(st, 3, error);
	sqlite3_bind_int64(st, 4, at_ms);
	return store_exec_stmt(s, st);
}

/* Rank of a delivery status; statuses outside the order rank 0. */
static int status_rank(const char *status)
{
	static const char *const order[] = {"sent", "delivered", "read"};
	for (int i = 0; i < 3; i++)
		if (strcmp(status, order[i]) == 0)
			return i + 1;
	return 0;
}

int store_msg_status(store *s, const char *channel, const char *address, const char *provider_id, const char *status,
		     const char *error, int64_t at_ms)
{
	if (!channel || !address || !provider_id || !status)
		return store_failf(s, STORE_ERR, "status without channel, address, id or status");
	/* A status outside the order (a provider's "deleted", "warning", ...) is
	 * kept in the history but never changes the message's status. */
	int failed = strcmp(status, "failed") == 0;
	int rc = store_tx_begin(s);
	if (rc != STORE_OK)
		return rc;
	sqlite3_stmt *st = store_stmt(s, STMT_MSG_BY_PROVIDER,
				      "SELECT m.id, m.status FROM contacts k JOIN messages m ON m.contact_id = k.id"
				      " WHERE k.channel = ?1 AND k.address = ?2 AND m.direction = 'out'"
				      " AND m.provider_id = ?3");
	if (!st) {
		rc = STORE_ERR;
		goto fail;
	}
	store_bind_text(st, 1, channel);
	store_bind_text(st, 2, address);
	store_bind_text(st, 3, provider_id);
	int64_t id = 0;
	int forward = 0;
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		const char *cur = (const char *)sqlite3_column_text(st, 1);
		forward = failed || status_rank(status) > status_rank(cur ? cur : "");
	}
	store_stmt_done(st);
	if (step == SQLITE_DONE) {
		rc = store_failf(s, STORE_ERR_NOTFOUND, "no outbound message to that address with that provider id");
		goto fail;
	}
	if (step != SQLITE_ROW) {
		rc = store_fail(s, step);
		goto fail;
	}
	if (forward) {
		st = store_stmt(s, STMT_MSG_SET_STATUS, "UPDATE messages SET status = ?, error = ? WHERE id = ?");
		if (!st) {
			rc = STORE_ERR;
			goto fail;
		}
		store_bind_text(st, 1, status);
		store_bind_text(st, 2, failed ? error : NULL);
		sqlite3_bind_int64(st, 3, id);
		rc = store_exec_stmt(s, st);
		if (rc != STORE_OK)
			goto fail;
	}
	rc = store_status_insert(s, id, status, error, at_ms);
	if (rc != STORE_OK)
		goto fail;
	return store_tx_commit(s);
fail:
	store_tx_rollback(s);
	return rc;
}

int store_msgs_since(store *s, int64_t conversation_id, int64_t after_id, size_t max, store_msg **msgs, size_t *n)
{
	*msgs = NULL;
	*n = 0;
	if (max == 0)
		return STORE_OK;
	sqlite3_stmt *st =
	    store_stmt(s, STMT_MSGS_SINCE,
		       "SELECT id, conversation_id, direction, author, text, payload, intent, fallback, status,"
		       " at_ms FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?");
	if (!st)
		return STORE_ERR;
	size_t cap = max < 64 ? max : 64, k = 0;
	store_msg *v = calloc(cap, sizeof *v);
	int rc = STORE_OK, oom = 0, step = SQLITE_DONE;
	if (!v) {
		rc = store_failf(s, STORE_ERR, "out of memory");
		goto out;
	}
	sqlite3_bind_int64(st, 1, conversation_id);
	sqlite3_bind_int64(st, 2, after_id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	while ((step = sqlite3_step(st)) == SQLITE_ROW && k < max) {
		if (k == cap) {
			size_t ncap = cap * 2 < max ? cap * 2 : max;
			store_msg *nv = realloc(v, ncap * sizeof *nv);
			if (!nv) {
				oom = 1;
				break;
			}
			v = nv;
			cap = ncap;
		}
		store_msg *m = &v[k];
		memset(m, 0, sizeof *m);
		k++;
		m->id = sqlite3_column_int64(st, 0);
		m->conversation_id = sqlite3_column_int64(st, 1);
		store_col_copy(st, 2, m->direction, sizeof m->direction);
		store_col_copy(st, 3, m->author, sizeof m->author);
		m->text = store_col_dup(st, 4, &oom);
		m->payload = store_col_dup(st, 5, &oom);
		store_col_copy(st, 6, m->intent, sizeof m->intent);
		m->fallback = sqlite3_column_int(st, 7);
		store_col_copy(st, 8, m->status, sizeof m->status);
		m->at_ms = sqlite3_column_int64(st, 9);
		if (oom)
			break;
	}
	if (oom)
		rc = store_failf(s, STORE_ERR, "out of memory");
	else if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = store_fail(s, step);
out:
	store_stmt_done(st);
	if (rc != STORE_OK) {
		store_msgs_free(v, k);
		return rc;
	}
	*msgs = v;
	*n = k;
	return STORE_OK;
}

void store_msgs_free(store_msg *msgs, size_t n)
{
	if (!msgs)
		return;
	for (size_t i = 0; i < n; i++) {
		free(msgs[i].text);
		free(msgs[i].payload);
	}
	free(msgs);
}
