/* store_conv: reading conversations and the agents' side of them: the queue,
 * claim, resolve, transfer, an agent's reply and satisfaction ratings.
 *
 * Claim, resolve and transfer are each decided by ONE conditional UPDATE
 * (… WHERE id = ? AND state = 'queued'); sqlite3_changes() == 1 is the win, so
 * of two agents racing, on any number of connections, exactly one wins. The
 * audit row is written in the same transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

void store_conv_from_row(sqlite3_stmt *st, store_conv *c)
{
	memset(c, 0, sizeof *c);
	bot_state_init(&c->bot);
	c->id = sqlite3_column_int64(st, 0);
	c->contact_id = sqlite3_column_int64(st, 1);
	store_col_copy(st, 2, c->channel, sizeof c->channel);
	store_col_copy(st, 3, c->address, sizeof c->address);
	store_col_copy(st, 4, c->display_name, sizeof c->display_name);
	const char *state = (const char *)sqlite3_column_text(st, 5);
	if (!state || bot_mode_parse(state, &c->bot.mode) < 0)
		c->bot.mode = BOT_MODE_BOT;
	store_col_copy(st, 6, c->bot.lang, sizeof c->bot.lang);
	store_col_copy(st, 7, c->bot.context, sizeof c->bot.context);
	c->bot.fallbacks = sqlite3_column_int(st, 8);
	c->bot.opted_out = sqlite3_column_int(st, 9);
	const char *menu = (const char *)sqlite3_column_text(st, 10);
	if (bot_state_menu_split(&c->bot, menu ? menu : "") < 0)
		c->bot.n_menu = 0;
	store_col_copy(st, 11, c->agent, sizeof c->agent);
	c->created_ms = sqlite3_column_int64(st, 12);
	c->last_inbound_ms = sqlite3_column_int64(st, 13);
	c->escalated_ms = sqlite3_column_int64(st, 14);
	c->claimed_ms = sqlite3_column_int64(st, 15);
	c->rate_window_ms = sqlite3_column_int64(st, 16);
	c->rate_count = sqlite3_column_int(st, 17);
}

static int conv_one(store *s, sqlite3_stmt *st, store_conv *c)
{
	int rc = sqlite3_step(st);
	int out = STORE_OK;
	if (rc == SQLITE_ROW)
		store_conv_from_row(st, c);
	else if (rc == SQLITE_DONE)
		out = STORE_ERR_NOTFOUND;
	else
		out = store_fail(s, rc);
	store_stmt_done(st);
	return out;
}

int store_conv_find(store *s, const char *channel, const char *address, store_conv *c)
{
	sqlite3_stmt *st =
	    store_stmt(s, STMT_CONV_FIND,
		       "SELECT " STORE_CONV_COLS " FROM contacts k JOIN conversations c ON c.contact_id = k.id"
		       " WHERE k.channel = ? AND k.address = ? AND c.state <> 'closed'");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, channel);
	store_bind_text(st, 2, address);
	return conv_one(s, st, c);
}

int store_conv_get(store *s, int64_t id, store_conv *c)
{
	sqlite3_stmt *st =
	    store_stmt(s, STMT_CONV_GET,
		       "SELECT " STORE_CONV_COLS " FROM conversations c JOIN contacts k ON k.id = c.contact_id"
		       " WHERE c.id = ?");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, id);
	return conv_one(s, st, c);
}

int store_queue_list(store *s, size_t max, store_conv **convs, size_t *n)
{
	*convs = NULL;
	*n = 0;
	if (max == 0)
		return STORE_OK;
	store_conv *v = calloc(max, sizeof *v);
	if (!v)
		return store_failf(s, STORE_ERR, "out of memory");
	sqlite3_stmt *st =
	    store_stmt(s, STMT_QUEUE_LIST,
		       "SELECT " STORE_CONV_COLS " FROM conversations c JOIN contacts k ON k.id = c.contact_id"
		       " WHERE c.state = 'queued' ORDER BY c.escalated_ms, c.id LIMIT ?");
	if (!st) {
		free(v);
		return STORE_ERR;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
	size_t k = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && k < max)
		store_conv_from_row(st, &v[k++]);
	int out = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? STORE_OK : store_fail(s, rc);
	store_stmt_done(st);
	if (out != STORE_OK) {
		free(v);
		return out;
	}
	*convs = v;
	*n = k;
	return STORE_OK;
}

void store_convs_free(store_conv *convs)
{
	free(convs);
}

/* 1 when the conversation exists, 0 when not, <0 on error. */
static int conv_exists(store *s, int64_t id)
{
	sqlite3_stmt *st = store_stmt(s, STMT_CONV_EXISTS, "SELECT 1 FROM conversations WHERE id = ?");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	int out = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_fail(s, rc);
	store_stmt_done(st);
	return out;
}

/* After a conditional UPDATE changed nothing: NOTFOUND or CONFLICT. */
static int lost(store *s, int64_t id)
{
	int e = conv_exists(s, id);
	if (e < 0)
		return e;
	return e ? store_failf(s, STORE_ERR_CONFLICT, "conversation %lld is not in that state or agent", (long long)id)
		 : store_failf(s, STORE_ERR_NOTFOUND, "no conversation %lld", (long long)id);
}

/* Runs the bound conditional UPDATE st and, when it changed one row, the bound
 * statement after (or none) and the audit row, all in one transaction. */
static int conditional(store *s, sqlite3_stmt *st, sqlite3_stmt *after, int64_t id, const char *who, const char *what,
		       const char *detail, int64_t now_ms)
{
	char object[32];
	snprintf(object, sizeof object, "conversation:%lld", (long long)id);
	int rc = store_tx_begin(s);
	if (rc != STORE_OK) {
		store_stmt_done(st);
		if (after)
			store_stmt_done(after);
		return rc;
	}
	rc = store_exec_stmt(s, st);
	if (rc != STORE_OK)
		goto fail;
	if (sqlite3_changes(s->db) != 1) {
		rc = lost(s, id);
		goto fail;
	}
	if (after) {
		rc = store_exec_stmt(s, after); /* resets it, whatever the outcome */
		after = NULL;
		if (rc != STORE_OK)
			goto fail;
	}
	rc = store_audit_insert(s, who, what, object, detail, now_ms);
	if (rc != STORE_OK)
		goto fail;
	return store_tx_commit(s);
fail:
	if (after)
		store_stmt_done(after);
	store_tx_rollback(s);
	return rc;
}

int store_conv_claim(store *s, int64_t conversation_id, const char *agent, int64_t now_ms)
{
	sqlite3_stmt *st, *esc;

	if (!agent || !*agent)
		return store_failf(s, STORE_ERR, "claim without an agent");
	st = store_stmt(s, STMT_CONV_CLAIM,
			"UPDATE conversations SET state = 'assigned', agent = ?, claimed_ms = ?"
			" WHERE id = ? AND state = 'queued'");
	esc =
	    store_stmt(s, STMT_ESC_CLAIM,
		       "UPDATE escalations SET claimed_ms = ?, agent = ? WHERE conversation_id = ? AND claimed_ms = 0");
	if (!st || !esc)
		return STORE_ERR;
	store_bind_text(st, 1, agent);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_int64(st, 3, conversation_id);
	sqlite3_bind_int64(esc, 1, now_ms);
	store_bind_text(esc, 2, agent);
	sqlite3_bind_int64(esc, 3, conversation_id);
	return conditional(s, st, esc, conversation_id, agent, "claim", NULL, now_ms);
}

int store_conv_resolve(store *s, int64_t conversation_id, const char *agent, int64_t now_ms)
{
	sqlite3_stmt *st =
	    store_stmt(s, STMT_CONV_RESOLVE,
		       "UPDATE conversations SET state = 'bot', agent = '', escalated_ms = 0, claimed_ms = 0,"
		       " context = '', fallbacks = 0, menu = ''"
		       " WHERE id = ? AND state = 'assigned' AND agent = ?");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, conversation_id);
	store_bind_text(st, 2, agent ? agent : "");
	return conditional(s, st, NULL, conversation_id, agent ? agent : "", "resolve", NULL, now_ms);
}

int store_conv_transfer(store *s, int64_t conversation_id, const char *from_agent, const char *to_agent, int64_t now_ms)
{
	if (!to_agent || !*to_agent)
		return store_failf(s, STORE_ERR, "transfer without a target agent");
	/* The target must be an account that can log in. */
	sqlite3_stmt *st = store_stmt(s, STMT_AGENT_USABLE, "SELECT 1 FROM agents WHERE name = ? AND disabled = 0");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, to_agent);
	int rc = sqlite3_step(st);
	store_stmt_done(st);
	if (rc == SQLITE_DONE)
		return store_failf(s, STORE_ERR_NOTFOUND, "no usable agent to transfer to");
	if (rc != SQLITE_ROW)
		return store_fail(s, rc);

	st = store_stmt(s, STMT_CONV_TRANSFER,
			"UPDATE conversations SET agent = ?1 WHERE id = ?2 AND state = 'assigned' AND agent = ?3");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, to_agent);
	sqlite3_bind_int64(st, 2, conversation_id);
	store_bind_text(st, 3, from_agent ? from_agent : "");
	return conditional(s, st, NULL, conversation_id, from_agent ? from_agent : "", "transfer", to_agent, now_ms);
}

int store_agent_reply(store *s, int64_t conversation_id, const char *agent, const store_out *out, int64_t now_ms,
		      int64_t *out_id)
{
	if (!out || !agent)
		return store_failf(s, STORE_ERR, "reply without an agent or a message");
	int rc = store_tx_begin(s);
	if (rc != STORE_OK)
		return rc;
	store_conv c;
	rc = store_conv_get(s, conversation_id, &c);
	if (rc != STORE_OK)
		goto fail;
	rc = store_out_insert(s, &c, agent, NULL, out, now_ms, 0, out_id);
	if (rc != STORE_OK)
		goto fail;
	return store_tx_commit(s);
fail:
	store_tx_rollback(s);
	return rc;
}

int store_rating_add(store *s, int64_t conversation_id, int rating, int64_t now_ms)
{
	if (rating < 1 || rating > 5)
		return store_failf(s, STORE_ERR, "rating %d is not 1..5", rating);
	int rc = store_tx_begin(s);
	if (rc != STORE_OK)
		return rc;
	int e = conv_exists(s, conversation_id);
	if (e <= 0) {
		rc = e < 0 ? e : store_failf(s, STORE_ERR_NOTFOUND, "no conversation %lld", (long long)conversation_id);
		goto fail;
	}
	sqlite3_stmt *st =
	    store_stmt(s, STMT_RATING_INSERT, "INSERT INTO ratings (conversation_id, rating, at_ms) VALUES (?, ?, ?)");
	if (!st) {
		rc = STORE_ERR;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, conversation_id);
	sqlite3_bind_int(st, 2, rating);
	sqlite3_bind_int64(st, 3, now_ms);
	rc = store_exec_stmt(s, st);
	if (rc != STORE_OK)
		goto fail;
	return store_tx_commit(s);
fail:
	store_tx_rollback(s);
	return rc;
}
