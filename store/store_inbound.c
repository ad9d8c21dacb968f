/* store_inbound: the inbound path, store_inbound_batch.
 *
 * One BEGIN IMMEDIATE transaction per batch, one savepoint per message. For
 * each message: a repeat of (channel, provider_id) is STORE_DUPLICATE and
 * changes nothing; otherwise the contact and its open conversation are found or
 * created, the rate-limit minute and last inbound time are advanced, the
 * caller's decide callback sees the conversation, and its decision is written:
 * the inbound message (with intent, fallback, actions), the conversation's next
 * state, the contact's language and opt-out, an escalation row when the mode
 * goes bot -> queued, and the outbound messages with their outbox rows. What the
 * bot decides is the caller's business (gateway/gw_handle.c). */
#include <string.h>

#include "store/store_int.h"

#define RATE_WINDOW_MS 60000

/* Both directions go through this one statement. */
static const char msg_insert_sql[] =
	"INSERT INTO messages (conversation_id, direction, channel, provider_id, author, kind, text, payload,"
	" button, media_id, media_type, intent, fallback, actions, status, at_ms)"
	" VALUES (?1, ?2, ?3, ?4, coalesce(?5, ''), coalesce(?6, 'text'), ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
	" ?15, ?16)";

static int contact_upsert(store *s, const store_inbound *in, int64_t *contact_id)
{
	sqlite3_stmt *st = store_stmt(s, STMT_CONTACT_UPSERT,
				      "INSERT INTO contacts (channel, address, display_name, created_ms)"
				      " VALUES (?1, ?2, coalesce(?3, ''), ?4)"
				      " ON CONFLICT (channel, address) DO UPDATE SET display_name ="
				      " CASE WHEN coalesce(?3, '') <> '' THEN ?3 ELSE display_name END"
				      " RETURNING id");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, in->channel);
	store_bind_text(st, 2, in->address);
	store_bind_text(st, 3, in->display_name);
	sqlite3_bind_int64(st, 4, in->at_ms);
	int rc = sqlite3_step(st);
	int out = STORE_OK;
	if (rc == SQLITE_ROW) {
		*contact_id = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE)
		out = store_fail(s, rc);
	store_stmt_done(st);
	return out;
}

/* Loads the open conversation of the contact into *c; STORE_ERR_NOTFOUND when
 * there is none. */
static int conv_by_contact(store *s, int64_t contact_id, store_conv *c)
{
	sqlite3_stmt *st = store_stmt(s, STMT_CONV_BY_CONTACT,
				      "SELECT " STORE_CONV_COLS " FROM conversations c JOIN contacts k ON k.id = c.contact_id"
				      " WHERE c.contact_id = ? AND c.state <> 'closed'");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, contact_id);
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

static int conv_create(store *s, int64_t contact_id, int64_t at_ms)
{
	sqlite3_stmt *st = store_stmt(s, STMT_CONV_INSERT,
				      "INSERT INTO conversations (contact_id, created_ms) VALUES (?, ?)");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, contact_id);
	sqlite3_bind_int64(st, 2, at_ms);
	return store_exec_stmt(s, st);
}

/* 1 when (channel, provider_id) was already received, 0 when new, <0 on error. */
static int seen_before(store *s, const store_inbound *in)
{
	if (!in->provider_id)
		return 0;
	sqlite3_stmt *st = store_stmt(s, STMT_IN_DUP,
				      "SELECT 1 FROM messages WHERE direction = 'in' AND channel = ? AND provider_id = ?");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, in->channel);
	store_bind_text(st, 2, in->provider_id);
	int rc = sqlite3_step(st);
	int out = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_fail(s, rc);
	store_stmt_done(st);
	return out;
}

static int insert_inbound(store *s, const store_inbound *in, const store_decision *d, int64_t conv_id,
			  int64_t *id)
{
	sqlite3_stmt *st = store_stmt(s, STMT_MSG_INSERT, msg_insert_sql);
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, conv_id);
	store_bind_text(st, 2, "in");
	store_bind_text(st, 3, in->channel);
	store_bind_text(st, 4, in->provider_id);
	store_bind_text(st, 5, "");
	store_bind_text(st, 6, in->kind);
	store_bind_text(st, 7, in->text);
	store_bind_text(st, 8, NULL);
	store_bind_text(st, 9, in->button);
	store_bind_text(st, 10, in->media_id);
	store_bind_text(st, 11, in->media_type);
	store_bind_text(st, 12, d->intent);
	sqlite3_bind_int(st, 13, d->fallback ? 1 : 0);
	store_bind_text(st, 14, d->actions);
	store_bind_text(st, 15, "received");
	sqlite3_bind_int64(st, 16, in->at_ms);
	int rc = sqlite3_step(st);
	int out = STORE_OK;
	if (rc == SQLITE_DONE)
		*id = sqlite3_last_insert_rowid(s->db);
	else if (rc == SQLITE_CONSTRAINT_UNIQUE)
		out = STORE_DUPLICATE; /* a concurrent writer got it first */
	else
		out = store_fail(s, rc);
	store_stmt_done(st);
	return out;
}

int store_out_insert(store *s, int64_t conversation_id, const char *channel, const char *author,
		     const char *intent, const store_out *o, int64_t now_ms, int64_t *out_id)
{
	const char *status = o->sandboxed ? "sandboxed" : o->queue ? "queued" : "delivered";
	sqlite3_stmt *st = store_stmt(s, STMT_MSG_INSERT, msg_insert_sql);
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, conversation_id);
	store_bind_text(st, 2, "out");
	store_bind_text(st, 3, channel);
	store_bind_text(st, 4, NULL);
	store_bind_text(st, 5, author);
	store_bind_text(st, 6, "text");
	store_bind_text(st, 7, o->text);
	store_bind_text(st, 8, o->payload);
	store_bind_text(st, 9, NULL);
	store_bind_text(st, 10, NULL);
	store_bind_text(st, 11, NULL);
	store_bind_text(st, 12, intent);
	sqlite3_bind_int(st, 13, 0);
	store_bind_text(st, 14, NULL);
	store_bind_text(st, 15, status);
	sqlite3_bind_int64(st, 16, now_ms);
	int rc = store_exec_stmt(s, st);
	if (rc != STORE_OK)
		return rc;
	int64_t id = sqlite3_last_insert_rowid(s->db);
	rc = store_status_insert(s, id, status, NULL, now_ms);
	if (rc != STORE_OK)
		return rc;
	if (o->queue && !o->sandboxed) {
		st = store_stmt(s, STMT_OUTBOX_INSERT,
				"INSERT INTO outbox (message_id, conversation_id, next_attempt_ms, created_ms)"
				" VALUES (?1, ?2, ?3, ?3)");
		if (!st)
			return STORE_ERR;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, conversation_id);
		sqlite3_bind_int64(st, 3, now_ms);
		rc = store_exec_stmt(s, st);
		if (rc != STORE_OK)
			return rc;
	}
	if (out_id)
		*out_id = id;
	return STORE_OK;
}

/* Writes the decision's state: contact (language, opt-out) and conversation. */
static int apply_state(store *s, const store_conv *before, const store_conv *now, const bot_state *next,
		       int64_t at_ms)
{
	char menu[BOT_MENU_MAX * BOT_NAME_MAX + 1];
	if (bot_state_menu_join(next, menu, sizeof menu) < 0)
		return store_failf(s, STORE_ERR, "menu does not fit");

	sqlite3_stmt *st = store_stmt(s, STMT_CONTACT_UPDATE, "UPDATE contacts SET lang = ?, opted_out = ? WHERE id = ?");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, next->lang);
	sqlite3_bind_int(st, 2, next->opted_out ? 1 : 0);
	sqlite3_bind_int64(st, 3, now->contact_id);
	int rc = store_exec_stmt(s, st);
	if (rc != STORE_OK)
		return rc;

	int64_t escalated = now->escalated_ms, claimed = now->claimed_ms;
	const char *agent = now->agent;
	int escalates = before->bot.mode == BOT_MODE_BOT && next->mode == BOT_MODE_QUEUED;
	if (escalates)
		escalated = at_ms;
	if (next->mode == BOT_MODE_BOT) {
		escalated = 0;
		claimed = 0;
		agent = "";
	} else if (next->mode == BOT_MODE_QUEUED) {
		claimed = 0;
		agent = "";
	}
	st = store_stmt(s, STMT_CONV_UPDATE,
			"UPDATE conversations SET state = ?, context = ?, fallbacks = ?, menu = ?, agent = ?,"
			" last_inbound_ms = ?, escalated_ms = ?, claimed_ms = ?, rate_window_ms = ?, rate_count = ?"
			" WHERE id = ?");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, bot_mode_name(next->mode));
	store_bind_text(st, 2, next->context);
	sqlite3_bind_int(st, 3, next->fallbacks);
	store_bind_text(st, 4, menu);
	store_bind_text(st, 5, agent);
	sqlite3_bind_int64(st, 6, now->last_inbound_ms);
	sqlite3_bind_int64(st, 7, escalated);
	sqlite3_bind_int64(st, 8, claimed);
	sqlite3_bind_int64(st, 9, now->rate_window_ms);
	sqlite3_bind_int(st, 10, now->rate_count);
	sqlite3_bind_int64(st, 11, now->id);
	rc = store_exec_stmt(s, st);
	if (rc != STORE_OK || !escalates)
		return rc;
	st = store_stmt(s, STMT_ESC_INSERT, "INSERT INTO escalations (conversation_id, escalated_ms) VALUES (?, ?)");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, now->id);
	sqlite3_bind_int64(st, 2, at_ms);
	return store_exec_stmt(s, st);
}

/* One message under the open savepoint. */
static int handle_one(store *s, size_t i, const store_inbound *in, store_decide_fn decide, void *ctx,
		      store_inbound_result *r)
{
	if (!in->channel || !in->address || !*in->channel || !*in->address)
		return store_failf(s, STORE_ERR, "inbound message without channel or address");
	int rc = seen_before(s, in);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return STORE_DUPLICATE;

	int64_t contact_id = 0;
	rc = contact_upsert(s, in, &contact_id);
	if (rc != STORE_OK)
		return rc;
	store_conv conv;
	rc = conv_by_contact(s, contact_id, &conv);
	if (rc == STORE_ERR_NOTFOUND) {
		rc = conv_create(s, contact_id, in->at_ms);
		if (rc == STORE_OK)
			rc = conv_by_contact(s, contact_id, &conv);
	}
	if (rc != STORE_OK)
		return rc;
	store_conv before = conv;

	/* The rate-limit minute and the 24-hour window, so decide sees this message. */
	if (in->at_ms - conv.rate_window_ms >= RATE_WINDOW_MS) {
		conv.rate_window_ms = in->at_ms;
		conv.rate_count = 1;
	} else {
		conv.rate_count++;
	}
	if (in->at_ms > conv.last_inbound_ms)
		conv.last_inbound_ms = in->at_ms;

	store_decision d;
	memset(&d, 0, sizeof d);
	d.next = conv.bot;
	if (decide && decide(ctx, i, in, &conv, &d) != 0)
		return store_failf(s, STORE_ERR, "message refused by the handler");
	if (d.n_out < 0 || d.n_out > STORE_OUT_MAX)
		return store_failf(s, STORE_ERR, "decision with %d outbound messages", d.n_out);

	rc = insert_inbound(s, in, &d, conv.id, &r->message_id);
	if (rc != STORE_OK)
		return rc;
	rc = apply_state(s, &before, &conv, &d.next, in->at_ms);
	if (rc != STORE_OK)
		return rc;
	for (int k = 0; k < d.n_out; k++) {
		rc = store_out_insert(s, conv.id, in->channel, "", d.intent, &d.out[k], in->at_ms, &r->out_ids[k]);
		if (rc != STORE_OK)
			return rc;
	}
	r->n_out = d.n_out;
	r->conversation_id = conv.id;
	return STORE_OK;
}

static void fail_all(store_inbound_result *res, size_t n, int rc)
{
	for (size_t i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof res[i]);
		res[i].rc = rc;
	}
}

int store_inbound_batch(store *s, const store_inbound *in, size_t n, store_decide_fn decide, void *ctx,
			store_inbound_result *res)
{
	int rc = store_tx_begin(s);
	if (rc != STORE_OK) {
		fail_all(res, n, rc);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		store_inbound_result *r = &res[i];
		memset(r, 0, sizeof *r);
		rc = store_sp_begin(s);
		if (rc == STORE_OK) {
			rc = handle_one(s, i, &in[i], decide, ctx, r);
			if (rc == STORE_OK)
				rc = store_sp_release(s);
		}
		if (rc != STORE_OK) {
			int err = rc;
			store_sp_rollback(s);
			memset(r, 0, sizeof *r);
			r->rc = err;
			/* A busy lock, a full disk or an I/O error can end the whole
			 * transaction: then nothing of the batch is there. */
			if (sqlite3_get_autocommit(s->db)) {
				fail_all(res, n, err == STORE_DUPLICATE ? STORE_ERR : err);
				return err == STORE_DUPLICATE ? STORE_ERR : err;
			}
		} else {
			r->rc = STORE_OK;
		}
	}
	rc = store_tx_commit(s);
	if (rc != STORE_OK) {
		fail_all(res, n, rc);
		return rc;
	}
	return STORE_OK;
}
