/* store: everything loket keeps, behind an interface that speaks of contacts,
 * conversations, messages and the outbox, never of SQL.
 *
 * The SQLite backend (store_sqlite.c and friends) is the only one today; a
 * PostgreSQL backend is meant to slot in beside it behind this same header, so
 * no SQL, no sqlite3 type and no SQLite error code crosses it.
 *
 * Threads: a store handle is one connection and belongs to one thread at a time.
 * Each thread that needs the store opens its own handle on the same path (the
 * gateway has a writer, a checkpointer and the event loop). Writes that meet a locked
 * database wait up to busy_timeout_ms, then fail with STORE_ERR_BUSY and leave
 * nothing half-written.
 *
 * Times are milliseconds since the Unix epoch (UTC), passed in by the caller so
 * tests control the clock. Strings passed in are copied; strings handed out are
 * owned by the struct that holds them and freed with its _free function. */
#ifndef LOKET_STORE_H
#define LOKET_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "bot/bot.h"

typedef struct store store;

typedef enum store_rc {
	STORE_OK = 0,
	STORE_DUPLICATE = 1,	 /* this provider message id was seen before: nothing done */
	STORE_ERR = -1,		 /* any other failure (disk full, corrupt file, ...) */
	STORE_ERR_BUSY = -2,	 /* the database stayed locked past the busy timeout */
	STORE_ERR_NOTFOUND = -3, /* no such conversation, agent, message */
	STORE_ERR_CONFLICT = -4, /* lost a race: claimed by someone else, wrong state */
} store_rc;

/* A short English description of rc, for logs and error replies. */
const char *store_rc_str(int rc);

/* ---- opening ---- */

typedef struct store_opts {
	const char *path;     /* the database file; created with mode 0600 */
	int synchronous_full; /* 1: synchronous=FULL, 0: NORMAL */
	int busy_timeout_ms;  /* how long a write waits for a lock */
	int readonly;	      /* 1 for commands that only read (stats) */
	int sync_later;	      /* 1: commits do not wait for the disk; a store_syncer
				 makes them durable (overrides synchronous_full) */
	int no_checkpoint;    /* 1: commits never copy the WAL into the database
				 file; another handle calls store_checkpoint */
} store_opts;

/* Opens (creating and migrating when needed) the database. Returns a handle or
 * NULL with the reason in err. Free with store_close. */
store *store_open(const store_opts *o, char *err, size_t errlen);
void store_close(store *s);

/* Makes the commits of a sync_later handle durable, from any thread (it does
 * not use the handle): store_syncer_sync returns 0 once everything the handle
 * committed before the call is on disk, -1 with errno otherwise. */
typedef struct store_syncer store_syncer;
store_syncer *store_syncer_new(store *s);
int store_syncer_sync(store_syncer *y);
void store_syncer_free(store_syncer *y);

/* Copies what the WAL holds into the database file, in one of SQLite's
 * checkpoint modes: PASSIVE never blocks writers or readers; RESTART holds the
 * write lock (waiting for it up to the busy timeout) until every page is
 * copied and no reader needs the WAL any more, so the next commit starts the
 * WAL over from its beginning (cheap right after a passive one); TRUNCATE
 * does that and also cuts the -wal file to zero bytes (for idle moments: a
 * file cut under load is grown again block by block). *wal_pages is the WAL's
 * length, *copied how much of it is in the database file now (both may be
 * NULL). For a handle that runs beside a no_checkpoint writer. */
typedef enum store_ckpt {
	STORE_CKPT_PASSIVE = 0,
	STORE_CKPT_RESTART = 1,
	STORE_CKPT_TRUNCATE = 2,
} store_ckpt;
int store_checkpoint(store *s, int mode, int *wal_pages, int *copied);

/* The last error's message from the backend, for logs (never NULL). */
const char *store_errmsg(const store *s);

/* Schema version of the open file (the newest after store_open). */
int store_schema_version(store *s);
int store_schema_latest(void);

/* ---- conversations ---- */

#define STORE_CHANNEL_MAX 16
#define STORE_ADDRESS_MAX 128
#define STORE_AGENT_MAX 64

typedef struct store_conv {
	int64_t id;
	int64_t contact_id;
	char channel[STORE_CHANNEL_MAX]; /* "whatsapp", "twilio", "kannel", "web", "cli" */
	char address[STORE_ADDRESS_MAX]; /* phone number, web session id, ... */
	char display_name[128];
	bot_state bot;		     /* mode, language, context, fallbacks, opted_out, menu */
	char agent[STORE_AGENT_MAX]; /* assigned agent, or "" */
	int64_t created_ms;
	int64_t last_inbound_ms; /* the citizen's last message: WhatsApp's 24 h window */
	int64_t escalated_ms;	 /* 0 unless queued or assigned */
	int64_t claimed_ms;	 /* 0 unless assigned */
	int64_t rate_window_ms;	 /* start of the current rate-limit minute */
	int rate_count;		 /* inbound messages in that minute */
} store_conv;

/* Finds the open conversation of (channel, address). STORE_OK and *c filled,
 * or STORE_ERR_NOTFOUND. */
int store_conv_find(store *s, const char *channel, const char *address, store_conv *c);
int store_conv_get(store *s, int64_t id, store_conv *c);

/* ---- inbound: one message, one transaction ---- */

typedef struct store_inbound {
	const char *channel, *address;
	const char *display_name; /* or NULL */
	const char *provider_id;  /* the provider's message id; a repeat is a duplicate. NULL: no dedup */
	const char *kind;	  /* "text", "button", "media", or "event": not a message (a
				   * reaction, a changed number; media_type names it),
				   * kept and never answered */
	const char *text;	  /* the text, the button's title, or a media caption; may be NULL */
	const char *button;	  /* the tapped button's id, or NULL */
	const char *media_id;	  /* or NULL */
	const char *media_type;	  /* "image/jpeg", ... or NULL */
	int64_t at_ms;		  /* when it was received */
} store_inbound;

/* One outbound message the handling of an inbound one causes. */
typedef struct store_out {
	const char *text;    /* what the citizen will read (stored for history and stats) */
	const char *payload; /* JSON the channel turns into a provider request; may be NULL */
	int queue;	     /* 1: an outbox row is written for the sender;
				     0: stored as already delivered (the web chat pushes it itself) */
	int sandboxed;	     /* 1: the channel has no credentials: stored as "sandboxed" */
} store_out;

#define STORE_OUT_MAX 4

/* What the caller decided for one inbound message, after seeing the conversation. */
typedef struct store_decision {
	const char *intent; /* the matched intent, or NULL */
	int fallback;
	const char *actions; /* "escalate,send_form:pbg" or NULL: kept with the message */
	bot_state next;	     /* the conversation's next state (mode included) */
	int n_out;
	store_out out[STORE_OUT_MAX];
} store_decision;

/* Called inside the transaction, once per new (non-duplicate) inbound message,
 * with the conversation as it is (created for a new contact: bot mode, empty
 * state). It fills *d and returns 0, or returns -1 to refuse the message (it is
 * then rolled back alone). Strings in *d must stay valid until the batch call
 * returns. The callback must not call the store. */
typedef int (*store_decide_fn)(void *ctx, size_t index, const store_inbound *in, const store_conv *conv,
			       store_decision *d);

typedef struct store_inbound_result {
	int rc;		    /* STORE_OK, STORE_DUPLICATE, or an error for this message alone */
	int64_t message_id; /* the inbound message's row, 0 on duplicate */
	int64_t conversation_id;
	int n_out;
	int64_t out_ids[STORE_OUT_MAX]; /* the outbound messages' ids, in order */
} store_inbound_result;

/* Handles n inbound messages in one transaction, each all-or-nothing:
 * insert the message (a repeat of channel + provider_id is STORE_DUPLICATE and
 * changes nothing), create or load the contact and conversation, ask decide,
 * update the conversation (state, language, context, menu, window, escalation
 * time), insert the outbound messages and their outbox rows. One message's
 * failure rolls back that message alone. Returns STORE_OK when the transaction
 * committed (then res[i] tells each message's fate), or an error when the commit
 * failed: then nothing of the batch is there and every res[i].rc is that error. */
int store_inbound_batch(store *s, const store_inbound *in, size_t n, store_decide_fn decide, void *ctx,
			store_inbound_result *res);

/* ---- rounds: several calls, one commit ----
 *
 * Between store_round_begin and store_round_commit every store call on this
 * handle runs inside one transaction (each call's own all-or-nothing part
 * becomes a savepoint), so a thread that does several kinds of writes (the
 * gateway's writer: inbound messages, delivery statuses, the sender's
 * outcomes and leases) takes the write lock and pays for the commit's fsync
 * once. A call that fails inside a round is undone alone and the round goes
 * on; an error that ends SQLite's transaction (I/O, disk full) makes every
 * later call and the commit fail, with nothing of the round kept.
 * store_round_commit returns STORE_OK only when everything the round's calls
 * reported as done is durable. */
int store_round_begin(store *s);
int store_round_commit(store *s);
void store_round_rollback(store *s);

/* ---- outbox: what the sender sends ---- */

typedef struct store_outbox_item {
	int64_t id; /* the outbound message's id */
	int64_t conversation_id;
	char channel[STORE_CHANNEL_MAX];
	char address[STORE_ADDRESS_MAX];
	char *text;    /* owned */
	char *payload; /* owned, may be NULL */
	int attempts;  /* attempts already made */
	int64_t created_ms;
	int64_t last_inbound_ms; /* for WhatsApp's 24-hour window */
} store_outbox_item;

/* Leases up to max due items: next attempt time reached, not leased by someone
 * else (or lease expired), and only the oldest unsent item of each conversation,
 * so messages leave in order. Leased items are hidden for lease_ms (their next
 * attempt time moves to the lease's end, so the due-time index never walks
 * over rows in flight). *items is
 * allocated (free with store_outbox_items_free), *n may be 0. */
int store_outbox_lease(store *s, int64_t now_ms, int64_t lease_ms, size_t max, store_outbox_item **items, size_t *n);
void store_outbox_items_free(store_outbox_item *items, size_t n);

/* Leasing as rows are written: until store_outbox_fresh_take, the outbox rows
 * store_inbound_batch writes are written already leased until now_ms +
 * lease_ms (up to max of them, and only a conversation's oldest live row, as
 * store_outbox_lease would pick them), and kept as items. The gateway's
 * writer hands its sender the replies it just queued this way, without a
 * lease query per row. Rows of a message whose writes are rolled back are
 * forgotten with them. take returns the items (free with
 * store_outbox_items_free; *n may be 0) and ends the mode; a caller whose
 * transaction then fails must drop them (the rows were never written). */
void store_outbox_fresh_begin(store *s, size_t max, int64_t now_ms, int64_t lease_ms);
void store_outbox_fresh_take(store *s, store_outbox_item **items, size_t *n);

/* The send succeeded: the outbox row goes, the message becomes "sent" with the
 * provider's id (for status callbacks). */
int store_outbox_sent(store *s, int64_t id, const char *provider_id, int64_t now_ms);
/* Try again at next_ms; attempts + 1; the error is kept (NULL: the last one stays). */
int store_outbox_retry(store *s, int64_t id, int64_t next_ms, const char *error, int64_t now_ms);
/* Give up: status is "failed" (permanent 4xx), "dead" (max attempts reached) or
 * "window_closed" (WhatsApp 24-hour rule); the outbox row stays, marked dead,
 * visible in stats. */
int store_outbox_fail(store *s, int64_t id, const char *status, const char *error, int64_t now_ms);

/* One sender outcome, for store_outbox_results. */
typedef enum store_outbox_outcome {
	STORE_OUTBOX_SENT = 0, /* as store_outbox_sent */
	STORE_OUTBOX_RETRY,    /* as store_outbox_retry */
	STORE_OUTBOX_FAIL,     /* as store_outbox_fail */
	STORE_OUTBOX_HOLD,     /* wait until next_ms like RETRY, without counting an
				* attempt: the send could not be made for a reason of
				* ours (the provider refused loket's credentials) */
} store_outbox_outcome;

typedef struct store_outbox_result {
	int64_t id;		 /* the outbound message's id */
	int outcome;		 /* store_outbox_outcome */
	const char *provider_id; /* SENT: the provider's message id, or NULL */
	int64_t next_ms;	 /* RETRY, HOLD: when to try again */
	const char *status;	 /* FAIL: "failed", "dead" or "window_closed" */
	const char *error;	 /* RETRY, HOLD, FAIL: kept with the row / message; may be NULL
				  * (RETRY, HOLD: NULL keeps the row's last error) */
} store_outbox_result;

/* Records n outcomes in one transaction (one commit, one turn of the write
 * lock), each exactly as the single calls above would. Returns STORE_OK when
 * the transaction committed; then item_rc[i] (when item_rc is not NULL) is
 * STORE_OK, STORE_ERR_NOTFOUND (the row was no longer live: nothing written
 * for it) or STORE_ERR (an invalid status or outcome: nothing written for it),
 * and the others are recorded. Any other return (STORE_ERR_BUSY, STORE_ERR):
 * nothing at all was recorded, every item_rc[i] is that error, and the caller
 * may try the same batch again. The strings are copied. */
int store_outbox_results(store *s, const store_outbox_result *v, size_t n, int64_t now_ms, int *item_rc);

/* Counts for /metrics and /healthz. */
typedef struct store_outbox_counts {
	int64_t pending, leased, dead;
	int64_t oldest_pending_ms; /* created_ms of the oldest pending, 0 when none */
} store_outbox_counts;
int store_outbox_counts_get(store *s, int64_t now_ms, store_outbox_counts *c);

/* ---- delivery status callbacks ---- */

/* Records a provider's status ("sent", "delivered", "read", "failed") for the
 * outbound message with that provider id sent to (channel, address), with its
 * error when failed, and keeps the history. STORE_ERR_NOTFOUND when no message
 * to that address has the id. A status never moves backwards (delivered after
 * read stays read), but every report is in the history. */
int store_msg_status(store *s, const char *channel, const char *address, const char *provider_id, const char *status,
		     const char *error, int64_t at_ms);

/* ---- messages of a conversation (history, resume) ---- */

typedef struct store_msg {
	int64_t id;
	int64_t conversation_id;
	char direction[4];	      /* "in" or "out" */
	char author[STORE_AGENT_MAX]; /* "" for the citizen and the bot, else the agent */
	char *text;		      /* owned; NULL when purged */
	char *payload;		      /* owned; may be NULL */
	char intent[BOT_NAME_MAX];
	int fallback;
	char status[16]; /* in: "received"; out: "queued", "sent", "delivered", "read", "failed", ... */
	int64_t at_ms;
} store_msg;

/* Messages of a conversation with id > after_id, oldest first, at most max.
 * *msgs allocated; free with store_msgs_free. */
int store_msgs_since(store *s, int64_t conversation_id, int64_t after_id, size_t max, store_msg **msgs, size_t *n);
void store_msgs_free(store_msg *msgs, size_t n);

/* ---- agents' side ---- */

/* Conversations waiting for an agent (queued), oldest first. */
int store_queue_list(store *s, size_t max, store_conv **convs, size_t *n);
void store_convs_free(store_conv *convs);

/* Claims a queued conversation for agent in one atomic statement: of two agents
 * who claim at once exactly one gets STORE_OK, the other STORE_ERR_CONFLICT. */
int store_conv_claim(store *s, int64_t conversation_id, const char *agent, int64_t now_ms);
/* Back to the bot (state bot, agent cleared); only by the assigned agent
 * (STORE_ERR_CONFLICT otherwise). */
int store_conv_resolve(store *s, int64_t conversation_id, const char *agent, int64_t now_ms);
int store_conv_transfer(store *s, int64_t conversation_id, const char *from_agent, const char *to_agent,
			int64_t now_ms);
/* An agent's reply: stored as an outbound message with its outbox row (queue=1)
 * or as delivered (queue=0). *out_id receives its id. */
int store_agent_reply(store *s, int64_t conversation_id, const char *agent, const store_out *out, int64_t now_ms,
		      int64_t *out_id);
/* A satisfaction rating (1..5) for a conversation. */
int store_rating_add(store *s, int64_t conversation_id, int rating, int64_t now_ms);

/* ---- agents and sessions ---- */

typedef struct store_agent {
	int64_t id;
	char name[STORE_AGENT_MAX];
	char role[16];	  /* "agent" or "admin" */
	char pwhash[160]; /* libsodium crypto_pwhash_str output */
	int disabled;
	int64_t created_ms;
} store_agent;

int store_agent_add(store *s, const char *name, const char *role, const char *pwhash, int64_t now_ms);
int store_agent_get(store *s, const char *name, store_agent *a);
int store_agent_list(store *s, store_agent **agents, size_t *n); /* free() *agents */
int store_agent_set_disabled(store *s, const char *name, int disabled, int64_t now_ms);
int store_agent_set_pwhash(store *s, const char *name, const char *pwhash, int64_t now_ms);

/* Sessions are kept by the SHA-256 of their token, never the token itself. */
int store_session_add(store *s, const char *agent, const unsigned char token_hash[32], int64_t expires_ms,
		      int64_t now_ms);
/* STORE_OK and the agent's name when the session exists, is not expired and its
 * agent is not disabled; STORE_ERR_NOTFOUND otherwise. */
int store_session_get(store *s, const unsigned char token_hash[32], int64_t now_ms, char *agent, size_t agentlen);
int store_session_delete(store *s, const unsigned char token_hash[32]);

/* ---- audit ---- */

/* Appends "who did what to which object" (claim, transfer, resolve, agent_add,
 * intents_reload, ...). detail may be NULL. */
int store_audit(store *s, const char *who, const char *what, const char *object, const char *detail, int64_t now_ms);

/* ---- reporting and maintenance ---- */

typedef struct store_stat_row {
	char key[256]; /* intent name, or the unmatched message's text */
	int64_t count;
} store_stat_row;

typedef struct store_stats {
	int64_t inbound, outbound, fallbacks, escalations, dead_letters, conversations;
	int64_t claimed;			   /* escalations an agent took */
	double wait_p50_s, wait_p90_s, wait_max_s; /* escalation -> claim */
	int64_t ratings;			   /* satisfaction ratings given */
	double rating_avg;			   /* their mean (1..5), 0 when none */
	size_t n_intents, n_unmatched;
	store_stat_row intents[20];   /* most asked intents, most first */
	store_stat_row unmatched[20]; /* most frequent unmatched texts, most first */
} store_stats;

/* Statistics over [from_ms, to_ms). */
int store_stats_get(store *s, int64_t from_ms, int64_t to_ms, store_stats *st);

/* A consistent copy of the live database at dest (created 0600), safe while
 * others write. */
int store_backup(store *s, const char *dest, char *err, size_t errlen);

/* Blanks the text and payload of messages older than before_ms (counts,
 * intents and timestamps stay). *n_purged: how many messages were blanked. */
int store_purge(store *s, int64_t before_ms, int64_t *n_purged);

/* 0 when a write transaction can be opened and committed now (for /healthz). */
int store_ping(store *s);

#endif
