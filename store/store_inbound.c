/* store_inbound: the inbound path, store_inbound_batch.
 *
 * One BEGIN IMMEDIATE transaction per batch, one savepoint per new message.
 * For each message: a repeat of (channel, provider_id) is STORE_DUPLICATE and
 * changes nothing (it is recognised before any savepoint is opened); otherwise
 * the contact and its open conversation are read with one SELECT (created when
 * missing), the rate-limit minute and last inbound time are advanced, the
 * caller's decide callback sees the conversation, and its decision is written:
 * the inbound message (with intent, fallback, actions), the conversation's next
 * state, the contact's language and opt-out, an escalation row when the mode
 * goes bot -> queued, and the outbound messages with their outbox rows. What the
 * bot decides is the caller's business (gateway/gw_handle.c).
 *
 * Cost matters here (the gateway's writer runs this for every message): rows
 * are written only when something in them changed, and the conversation's
 * indexed columns only when the mode changes (see docs/store.md, Performance). */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

#define RATE_WINDOW_MS 60000

/* Both directions go through this one statement. */
static const char msg_insert_sql[] =
    "INSERT INTO messages (conversation_id, direction, channel, provider_id, author, kind, text, payload,"
    " button, media_id, media_type, intent, fallback, actions, status, at_ms, contact_id)"
    " VALUES (?1, ?2, ?3, ?4, coalesce(?5, ''), coalesce(?6, 'text'), ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
    " ?15, ?16, coalesce(?17, (SELECT contact_id FROM conversations WHERE id = ?1)))";

/* Loads the contact of (channel, address) and its open conversation into *c,
 * creating whichever is missing (a new conversation starts in bot mode with an
 * empty state, exactly as the schema's defaults would read back). One indexed
 * SELECT for a returning citizen; no row is rewritten here (a new display name
 * is written with the decision, in write_contact). */
static int conv_load(store *s, const store_inbound *in, store_conv *c)
{
	sqlite3_stmt *st = store_stmt(s, STMT_CONV_BY_CONTACT,
				      "SELECT " STORE_CONV_COLS ", k.id FROM contacts k"
				      " LEFT JOIN conversations c ON c.contact_id = k.id AND c.state <> 'closed'"
				      " WHERE k.channel = ?1 AND k.address = ?2");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, in->channel);
	store_bind_text(st, 2, in->address);
	int rc = sqlite3_step(st);
	int have_contact = 0, have_conv = 0;
	if (rc == SQLITE_ROW) {
		store_conv_from_row(st, c);
		have_contact = 1;
		have_conv = sqlite3_column_type(st, 0) != SQLITE_NULL;
		c->contact_id = sqlite3_column_int64(st, 18);
		rc = SQLITE_DONE;
	}
	store_stmt_done(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc);
	if (have_conv)
		return STORE_OK;

	if (!have_contact) {
		memset(c, 0, sizeof *c);
		bot_state_init(&c->bot);
		store_str_copy(c->channel, sizeof c->channel, in->channel);
		store_str_copy(c->address, sizeof c->address, in->address);
		store_str_copy(c->display_name, sizeof c->display_name, in->display_name);
		st = store_stmt(s, STMT_CONTACT_INSERT,
				"INSERT INTO contacts (channel, address, display_name, created_ms)"
				" VALUES (?1, ?2, coalesce(?3, ''), ?4)");
		if (!st)
			return STORE_ERR;
		store_bind_text(st, 1, in->channel);
		store_bind_text(st, 2, in->address);
		store_bind_text(st, 3, in->display_name);
		sqlite3_bind_int64(st, 4, in->at_ms);
		if ((rc = store_exec_stmt(s, st)) != STORE_OK)
			return rc;
		c->contact_id = sqlite3_last_insert_rowid(s->db);
	}
	st = store_stmt(s, STMT_CONV_INSERT, "INSERT INTO conversations (contact_id, created_ms) VALUES (?, ?)");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, c->contact_id);
	sqlite3_bind_int64(st, 2, in->at_ms);
	if ((rc = store_exec_stmt(s, st)) != STORE_OK)
		return rc;
	/* The columns' defaults: bot mode, no context, menu, agent or times. */
	c->id = sqlite3_last_insert_rowid(s->db);
	c->bot.mode = BOT_MODE_BOT;
	c->bot.context[0] = '\0';
	c->bot.fallbacks = 0;
	c->bot.n_menu = 0;
	c->agent[0] = '\0';
	c->created_ms = in->at_ms;
	c->last_inbound_ms = c->escalated_ms = c->claimed_ms = c->rate_window_ms = 0;
	c->rate_count = 0;
	return STORE_OK;
}

/* 1 when (channel, address, provider_id) was already received, 0 when new,
 * <0 on error. A new contact has no messages: one index probe says so. */
static int seen_before(store *s, const store_inbound *in)
{
	if (!in->provider_id)
		return 0;
	sqlite3_stmt *st = store_stmt(s, STMT_IN_DUP,
				      "SELECT 1 FROM contacts k JOIN messages m ON m.contact_id = k.id"
				      " WHERE k.channel = ?1 AND k.address = ?2 AND m.direction = 'in'"
				      " AND m.provider_id = ?3");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, in->channel);
	store_bind_text(st, 2, in->address);
	store_bind_text(st, 3, in->provider_id);
	int rc = sqlite3_step(st);
	int out = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_fail(s, rc);
	store_stmt_done(st);
	return out;
}

static int insert_inbound(store *s, const store_inbound *in, const store_decision *d, const store_conv *c, int64_t *id)
{
	int64_t conv_id = c->id;
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
	sqlite3_bind_int64(st, 17, c->contact_id);
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

int store_out_insert(store *s, const store_conv *c, const char *author, const char *intent, const store_out *o,
		     int64_t now_ms, int64_t lease_until_ms, int64_t *out_id)
{
	int64_t conversation_id = c->id;
	const char *status = o->sandboxed ? "sandboxed" : o->queue ? "queued" : "delivered";
	sqlite3_stmt *st = store_stmt(s, STMT_MSG_INSERT, msg_insert_sql);
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, conversation_id);
	store_bind_text(st, 2, "out");
	store_bind_text(st, 3, c->channel);
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
	if (c->contact_id > 0)
		sqlite3_bind_int64(st, 17, c->contact_id);
	int rc = store_exec_stmt(s, st);
	if (rc != STORE_OK)
		return rc;
	/* No history row: the message's own at_ms and first status start its
	 * history; message_status holds the changes (docs/store.md). */
	int64_t id = sqlite3_last_insert_rowid(s->db);
	if (o->queue && !o->sandboxed) {
		/* leased (store_outbox_lease's convention): next attempt at the lease's end */
		st = store_stmt(
		    s, STMT_OUTBOX_INSERT,
		    "INSERT INTO outbox (message_id, conversation_id, next_attempt_ms, created_ms, lease_until_ms)"
		    " VALUES (?1, ?2, max(?3, ?4), ?3, ?4)");
		if (!st)
			return STORE_ERR;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, conversation_id);
		sqlite3_bind_int64(st, 3, now_ms);
		sqlite3_bind_int64(st, 4, lease_until_ms > 0 ? lease_until_ms : 0);
		rc = store_exec_stmt(s, st);
		if (rc != STORE_OK)
			return rc;
	}
	if (out_id)
		*out_id = id;
	return STORE_OK;
}

/* Writes the contact's language, opt-out and display name, only when one of
 * them changed: most messages change none, and rewriting the row is not free. */
static int write_contact(store *s, const store_inbound *in, const store_conv *before, const bot_state *next)
{
	int new_name = in->display_name && *in->display_name && strcmp(in->display_name, before->display_name) != 0;
	if (!new_name && strcmp(next->lang, before->bot.lang) == 0 && !next->opted_out == !before->bot.opted_out)
		return STORE_OK;
	sqlite3_stmt *st = store_stmt(s, STMT_CONTACT_UPDATE,
				      "UPDATE contacts SET lang = ?1, opted_out = ?2,"
				      " display_name = CASE WHEN coalesce(?3, '') <> '' THEN ?3 ELSE display_name END"
				      " WHERE id = ?4");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, next->lang);
	sqlite3_bind_int(st, 2, next->opted_out ? 1 : 0);
	store_bind_text(st, 3, in->display_name);
	sqlite3_bind_int64(st, 4, before->contact_id);
	return store_exec_stmt(s, st);
}

/* Writes the decision's state: contact (language, opt-out, name) and
 * conversation. When the mode, agent and escalation/claim times stay as they
 * were (nearly every message), a narrower UPDATE leaves the indexed columns
 * alone, so SQLite does not rewrite the conversation's index entries. */
static int apply_state(store *s, const store_inbound *in, const store_conv *before, const store_conv *now,
		       const bot_state *next, int64_t at_ms)
{
	char menu[BOT_MENU_MAX * BOT_NAME_MAX + 1];
	if (bot_state_menu_join(next, menu, sizeof menu) < 0)
		return store_failf(s, STORE_ERR, "menu does not fit");

	int rc = write_contact(s, in, before, next);
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
	sqlite3_stmt *st;
	if (next->mode == before->bot.mode && escalated == before->escalated_ms && claimed == before->claimed_ms &&
	    strcmp(agent, before->agent) == 0) {
		st =
		    store_stmt(s, STMT_CONV_UPDATE_BOT,
			       "UPDATE conversations SET context = ?1, fallbacks = ?2, menu = ?3, last_inbound_ms = ?4,"
			       " rate_window_ms = ?5, rate_count = ?6 WHERE id = ?7");
		if (!st)
			return STORE_ERR;
		store_bind_text(st, 1, next->context);
		sqlite3_bind_int(st, 2, next->fallbacks);
		store_bind_text(st, 3, menu);
		sqlite3_bind_int64(st, 4, now->last_inbound_ms);
		sqlite3_bind_int64(st, 5, now->rate_window_ms);
		sqlite3_bind_int(st, 6, now->rate_count);
		sqlite3_bind_int64(st, 7, now->id);
		return store_exec_stmt(s, st);
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

/* What decide said about one message during this batch call, so a message is
 * never decided twice when the batch is run again with savepoints. */
enum { DEC_NONE = 0, DEC_OK, DEC_REFUSED };

/* ---- rows leased as they are written (store_outbox_fresh_begin) ---- */

/* 1 when a reply of conversation id may be leased now: no older row of it is
 * still waiting (order per conversation), 0 when one is, or an error. */
static int fresh_allowed(store *s, int64_t conversation_id)
{
	sqlite3_stmt *st =
	    store_stmt(s, STMT_OUTBOX_CONV_LIVE, "SELECT 1 FROM outbox WHERE conversation_id = ? AND dead = 0 LIMIT 1");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, conversation_id);
	int step = sqlite3_step(st);
	store_stmt_done(st);
	if (step == SQLITE_ROW)
		return 0;
	return step == SQLITE_DONE ? 1 : store_fail(s, step);
}

static int fresh_add(store *s, int64_t id, int64_t conversation_id, const store_inbound *in, const store_out *o,
		     int64_t last_inbound_ms)
{
	if (s->n_fresh == s->fresh_cap) {
		size_t cap = s->fresh_cap ? s->fresh_cap * 2 : 64;
		store_outbox_item *v = realloc(s->fresh, cap * sizeof *v);
		if (!v)
			return store_failf(s, STORE_ERR, "out of memory");
		s->fresh = v;
		s->fresh_cap = cap;
	}
	store_outbox_item *it = &s->fresh[s->n_fresh];
	memset(it, 0, sizeof *it);
	it->id = id;
	it->conversation_id = conversation_id;
	store_str_copy(it->channel, sizeof it->channel, in->channel);
	store_str_copy(it->address, sizeof it->address, in->address);
	it->text = o->text ? strdup(o->text) : NULL;
	it->payload = o->payload ? strdup(o->payload) : NULL;
	it->created_ms = in->at_ms;
	it->last_inbound_ms = last_inbound_ms;
	if ((o->text && !it->text) || (o->payload && !it->payload)) {
		free(it->text);
		free(it->payload);
		return store_failf(s, STORE_ERR, "out of memory");
	}
	s->n_fresh++;
	return STORE_OK;
}

/* Forgets the rows leased after mark (their writes were rolled back). */
static void fresh_truncate(store *s, size_t mark)
{
	while (s->n_fresh > mark) {
		s->n_fresh--;
		free(s->fresh[s->n_fresh].text);
		free(s->fresh[s->n_fresh].payload);
	}
}

void store_outbox_fresh_begin(store *s, size_t max, int64_t now_ms, int64_t lease_ms)
{
	fresh_truncate(s, 0);
	s->fresh_max = max;
	s->fresh_until_ms = now_ms + lease_ms;
}

void store_outbox_fresh_take(store *s, store_outbox_item **items, size_t *n)
{
	*items = NULL;
	*n = 0;
	s->fresh_max = 0;
	if (!s->n_fresh)
		return;
	store_outbox_item *v = malloc(s->n_fresh * sizeof *v);
	if (!v) {
		/* the rows stay leased and come back when the lease ends */
		fresh_truncate(s, 0);
		return;
	}
	memcpy(v, s->fresh, s->n_fresh * sizeof *v);
	*items = v;
	*n = s->n_fresh;
	s->n_fresh = 0;
}

/* One new message (not a duplicate). *cache is the decision made earlier in
 * this call (DEC_OK / DEC_REFUSED in *state), or filled here. */
static int handle_one(store *s, size_t i, const store_inbound *in, store_decide_fn decide, void *ctx,
		      store_decision *cache, unsigned char *state, store_inbound_result *r)
{
	store_conv conv;
	int rc = conv_load(s, in, &conv);
	if (rc != STORE_OK)
		return rc;
	store_conv before = conv;
	/* decide sees the name this message brought, as it will be stored */
	if (in->display_name && *in->display_name)
		store_str_copy(conv.display_name, sizeof conv.display_name, in->display_name);

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
	if (*state == DEC_REFUSED)
		return store_failf(s, STORE_ERR, "message refused by the handler");
	if (*state == DEC_OK) {
		d = *cache;
	} else {
		memset(&d, 0, sizeof d);
		d.next = conv.bot;
		if (decide && decide(ctx, i, in, &conv, &d) != 0) {
			*state = DEC_REFUSED;
			return store_failf(s, STORE_ERR, "message refused by the handler");
		}
		*cache = d;
		*state = DEC_OK;
	}
	if (d.n_out < 0 || d.n_out > STORE_OUT_MAX)
		return store_failf(s, STORE_ERR, "decision with %d outbound messages", d.n_out);

	rc = insert_inbound(s, in, &d, &conv, &r->message_id);
	if (rc != STORE_OK)
		return rc;
	rc = apply_state(s, in, &before, &conv, &d.next, in->at_ms);
	if (rc != STORE_OK)
		return rc;
	for (int k = 0; k < d.n_out; k++) {
		int64_t lease_until = 0;
		if (d.out[k].queue && !d.out[k].sandboxed && s->n_fresh < s->fresh_max) {
			rc = fresh_allowed(s, conv.id);
			if (rc < 0)
				return rc;
			if (rc == 1)
				lease_until = s->fresh_until_ms;
		}
		rc = store_out_insert(s, &conv, "", d.intent, &d.out[k], in->at_ms, lease_until, &r->out_ids[k]);
		if (rc != STORE_OK)
			return rc;
		if (lease_until &&
		    (rc = fresh_add(s, r->out_ids[k], conv.id, in, &d.out[k], conv.last_inbound_ms)) != STORE_OK)
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

/* Makes room for n cached decisions in the handle (kept between calls). */
static int dec_reserve(store *s, size_t n)
{
	if (n <= s->dec_cap)
		return STORE_OK;
	size_t cap = s->dec_cap ? s->dec_cap : 64;
	while (cap < n)
		cap *= 2;
	store_decision *d = realloc(s->dec, cap * sizeof *d);
	if (!d)
		return store_failf(s, STORE_ERR, "out of memory");
	s->dec = d;
	unsigned char *st = realloc(s->dec_state, cap);
	if (!st)
		return store_failf(s, STORE_ERR, "out of memory");
	s->dec_state = st;
	s->dec_cap = cap;
	return STORE_OK;
}

/* One pass over the batch inside the open transaction.
 *
 * Fast pass (safe = 0): no savepoint per message. It stops at the first
 * message that fails and returns STORE_ERR_CONFLICT: the caller rolls back to
 * the batch savepoint (undoing whatever that message half-wrote) and runs the
 * safe pass. Safe pass (safe = 1): a savepoint per new message, rolled back
 * alone on failure, as the contract says. Either pass returns another error
 * when SQLite ended the whole transaction (res[] then all carry it). */
static int batch_pass(store *s, const store_inbound *in, size_t n, store_decide_fn decide, void *ctx,
		      store_inbound_result *res, int safe)
{
	for (size_t i = 0; i < n; i++) {
		store_inbound_result *r = &res[i];
		int rc;
		memset(r, 0, sizeof *r);
		if (!in[i].channel || !in[i].address || !*in[i].channel || !*in[i].address)
			rc = store_failf(s, STORE_ERR, "inbound message without channel or address");
		else
			rc = seen_before(s, &in[i]);
		if (rc == 1) {
			/* a duplicate changes nothing: no savepoint needed */
			r->rc = STORE_DUPLICATE;
			continue;
		}
		if (rc != STORE_OK && !sqlite3_get_autocommit(s->db)) {
			r->rc = rc; /* nothing was written for it */
			continue;
		}
		int in_sp = 0;
		size_t fresh_mark = s->n_fresh;
		if (rc == STORE_OK && safe) {
			rc = store_sp_begin(s);
			in_sp = rc == STORE_OK;
		}
		if (rc == STORE_OK) {
			rc = handle_one(s, i, &in[i], decide, ctx, &s->dec[i], &s->dec_state[i], r);
			if (rc == STORE_OK && in_sp)
				rc = store_sp_release(s);
		}
		if (rc == STORE_OK) {
			r->rc = STORE_OK;
			continue;
		}
		int err = rc;
		if (in_sp)
			store_sp_rollback(s);
		fresh_truncate(s, fresh_mark);
		memset(r, 0, sizeof *r);
		r->rc = err;
		/* A busy lock, a full disk or an I/O error can end the whole
		 * transaction: then nothing of the batch is there. */
		if (sqlite3_get_autocommit(s->db)) {
			err = err == STORE_DUPLICATE ? STORE_ERR : err;
			fail_all(res, n, err);
			return err;
		}
		if (!safe)
			return STORE_ERR_CONFLICT;
	}
	return STORE_OK;
}

int store_inbound_batch(store *s, const store_inbound *in, size_t n, store_decide_fn decide, void *ctx,
			store_inbound_result *res)
{
	int rc = dec_reserve(s, n);
	if (rc == STORE_OK)
		rc = store_tx_begin(s);
	if (rc != STORE_OK) {
		fail_all(res, n, rc);
		return rc;
	}
	memset(s->dec_state, DEC_NONE, n);
	size_t fresh_mark = s->n_fresh;
	/* The batch savepoint costs one copy of each page the batch touches; a
	 * savepoint per message would copy them again for every message. */
	rc = store_sp_batch(s, STORE_SP_BEGIN);
	if (rc == STORE_OK) {
		rc = batch_pass(s, in, n, decide, ctx, res, 0);
		if (rc == STORE_ERR_CONFLICT) {
			/* a message failed half-way: undo the pass, redo with a savepoint
			 * per message, reusing the decisions already made */
			rc = store_sp_batch(s, STORE_SP_ROLLBACK);
			fresh_truncate(s, fresh_mark);
			if (rc == STORE_OK)
				rc = batch_pass(s, in, n, decide, ctx, res, 1);
		}
		if (rc == STORE_OK)
			rc = store_sp_batch(s, STORE_SP_RELEASE);
	}
	if (rc == STORE_OK) {
		rc = store_tx_commit(s); /* a failed commit rolled back itself */
	} else {
		store_tx_rollback(s);
	}
	if (rc != STORE_OK) {
		fresh_truncate(s, fresh_mark);
		fail_all(res, n, rc);
		return rc;
	}
	return STORE_OK;
}
