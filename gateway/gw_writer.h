/* gw_writer: the gateway's one SQLite writer thread, with its syncer.
 *
 * The lws thread hands it jobs (a parsed webhook, a web chat message, a health
 * check) through gw_writer_submit; the thread takes everything queued at once
 * (up to store.batch_max messages) and runs one *round* in one transaction:
 * store_inbound_batch with gw_handle_decide choosing the replies, the
 * sender's store turn (its outcomes, and leases: the replies just queued are
 * leased as they are written), then the delivery statuses. With [store] synchronous = FULL
 * the round commits without waiting for the disk and a syncer thread fsyncs
 * the WAL (once for every round committed meanwhile) before it moves the
 * jobs to the done list and calls the wake function (the server passes one
 * that calls lws_cancel_service), so the lws thread answers each waiting
 * connection only after its messages and replies are durable; the sender
 * learns the same moment (gw_sender_synced) and only then sends those
 * replies. A gw_checkpoint thread copies the WAL into the database file: the
 * writer's commits never do. See docs/gateway.md.
 *
 * Ownership: a job belongs to the submitter until gw_writer_submit accepts it,
 * to the writer until it is done, and to whoever takes it back with
 * gw_writer_take_done after that, who frees it with gw_job_free. The writer
 * never touches job->waiter, so the lws thread may clear it at any time (the
 * connection closed) without a lock. */
#ifndef LOKET_GW_WRITER_H
#define LOKET_GW_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "bot/bot.h"
#include "core/cfg.h"
#include "gateway/gw_channel.h"
#include "gateway/gw_metrics.h"
#include "gateway/gw_sender.h"
#include "store/store.h"

typedef enum gw_job_kind {
	GW_JOB_INBOUND = 0, /* parsed.msgs and parsed.statuses to commit */
	GW_JOB_PING,	    /* /healthz: can the writer commit now? */
} gw_job_kind;

#define GW_JOB_REPLIES_MAX (STORE_OUT_MAX * 4)

/* One reply the bot gave, copied out of the batch for the web chat. */
typedef struct gw_job_reply {
	int64_t id;    /* the outbound message's id: the web chat's seq */
	char *text;    /* owned */
	char *payload; /* owned, the neutral JSON payload, or NULL */
} gw_job_reply;

typedef struct gw_job {
	struct gw_job *next; /* link of whichever list holds the job */
	gw_job_kind kind;

	/* ---- set by the submitter ---- */
	const char *channel; /* static name for store_msg_status ("whatsapp") */
	gw_parsed parsed;    /* owned; freed by gw_job_free */
	int want_replies;    /* 1: copy the replies into replies[] (web chat) */
	char tag[64];	     /* the submitter's note (the web chat's session id) */
	void *waiter;	     /* the waiting connection's state, or NULL; lws thread only */
	int64_t t0_us;	     /* when the request arrived (monotonic µs) */

	/* ---- set by the writer ---- */
	int http_status;	 /* 200, or 500 / 503 for the provider to retry */
	size_t n_new, n_dup;	 /* messages stored / already there */
	int64_t conversation_id; /* of the last decided message, 0 when none */
	int mode;		 /* bot_mode after the last decided message, -1 when none */
	int n_replies;
	gw_job_reply replies[GW_JOB_REPLIES_MAX];
	int ping_rc;		    /* GW_JOB_PING: store_ping's result */
	int counts_ok;		    /* GW_JOB_PING: counts valid */
	store_outbox_counts counts; /* GW_JOB_PING: pending (not yet sent) and dead, from gw_writer_outbox */
} gw_job;

/* A zeroed job of that kind, or NULL when out of memory. */
gw_job *gw_job_new(gw_job_kind kind);
/* Frees the job, its parsed webhook and its replies. NULL does nothing. */
void gw_job_free(gw_job *j);

typedef struct gw_writer gw_writer;

/* Called by the writer thread after each batch, with the jobs on the done list. */
typedef void (*gw_writer_wake_fn)(void *arg);

typedef struct gw_writer_opts {
	const cfg *c;		/* must outlive the writer */
	const bot_set *set;	/* the intent set (not owned) */
	gw_metrics *metrics;	/* may be NULL */
	gw_sender *sender;	/* whose store turns the rounds run (attached: own_store 0); may be NULL */
	gw_writer_wake_fn wake; /* may be NULL */
	void *wake_arg;
	size_t max_pending; /* jobs waiting at most; 0 = 65536 */
} gw_writer_opts;

/* Opens the writer's own store handle and starts the thread. Returns NULL with
 * the reason in err. */
gw_writer *gw_writer_start(const gw_writer_opts *o, char *err, size_t errlen);

/* Queues a job (takes ownership on success). Returns 0, or -1 when the queue is
 * full or the writer is stopping (the caller keeps the job and answers 503).
 * Any thread. */
int gw_writer_submit(gw_writer *w, gw_job *j);

/* Detaches and returns the list of finished jobs (linked by next), oldest
 * first, or NULL. The caller owns them. Any thread. */
gw_job *gw_writer_take_done(gw_writer *w);

/* The outbox's rows not yet sent (leased ones included) and its dead
 * letters, as the writer keeps them (an exact count would read every row):
 * 0, or -1 before the writer first counted them. Any thread. */
int gw_writer_outbox(gw_writer *w, int64_t *pending, int64_t *dead);

/* Jobs submitted and not yet taken back with gw_writer_take_done. */
size_t gw_writer_pending(gw_writer *w);

/* Commits whatever is still queued, stops the thread, frees the jobs nobody
 * took back and everything else. NULL does nothing. */
void gw_writer_stop(gw_writer *w);

#endif
