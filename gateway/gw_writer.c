/* gw_writer: the thread that makes inbound messages durable, in rounds, and
 * its syncer.
 *
 * One mutex guards the incoming queue, the syncer's list and the done list;
 * one condition variable wakes the writer (jobs, or the sender's kick),
 * another the syncer. Each round takes every queued job (whole jobs, up to
 * store.batch_max messages unless a single job is bigger) and, in one store
 * round, commits their messages (store_inbound_batch), the sender's store
 * turn and their delivery statuses; then answers health checks and hands
 * the jobs to the syncer, whose one fdatasync covers every round committed
 * before it. The decision of what the bot says is gw_handle's; this file only
 * moves data and counts it. */
#include "core/clock.h"
#include "gateway/gw_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "gateway/gw_checkpoint.h"
#include "gateway/gw_handle.h"

/* A status kept for a later round (gw_writer_early_*). */
typedef struct gw_early {
	const char *channel;				/* static */
	char *recipient, *provider_id, *status, *error; /* owned; error may be NULL */
	int64_t at_ms;
	int64_t since_ms; /* monotonic: when it first found nothing */
	uint64_t h;	  /* gw_early_hash(provider_id) */
	int applied;	  /* found in the round in progress */
} gw_early;

#define GW_EARLY_MAX 1024
#define GW_EARLY_TTL_MS 10000

struct gw_writer {
	gw_writer_opts o;
	store *st;
	gw_handle *h;
	pthread_t thread;
	int started;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	gw_job *q_head, *q_tail; /* submitted, not yet taken by the thread */
	gw_job *d_head, *d_tail; /* done, not yet taken back */
	size_t n_queued, n_pending;
	int stopping;
	int kicked; /* the sender wants a store turn */

	/* group commit ([store] synchronous = FULL): the writer commits without
	 * waiting for the disk and hands the round to the syncer thread, which
	 * fsyncs the WAL once for every round committed meanwhile and only then
	 * moves their jobs to the done list. NULL sy: commits are final. */
	store_syncer *sy;
	gw_checkpoint *ckpt; /* copies the WAL into the file: the writer never does */
	pthread_t sync_thread;
	int sync_started;
	pthread_cond_t sync_cond;
	gw_job *y_head, *y_tail; /* committed, waiting for the fsync */
	int64_t y_want;		 /* the last round committed */
	int64_t y_done;		 /* the last round synced */
	int sync_stopping;
	int64_t round_seq; /* writer thread only */

	/* delivery statuses that found no message yet, writer thread only
	 * (gw_writer_early_*): Meta's "sent" can arrive before the sender's
	 * outcome that records the provider id is written */
	gw_early *early;
	size_t n_early;

	/* The outbox's pending and dead rows, kept by the writer from what its
	 * committed rounds did (gw_writer_outbox_*): counting them reads every
	 * row, 50 ms with 300,000 replies waiting, which /metrics made the lws
	 * thread do and a RESTART checkpoint (holding the write lock) wait for.
	 * Counted exactly at start and again when cheap. */
	atomic_llong ob_pending, ob_dead;
	atomic_int ob_known;
	int64_t ob_counted_ms; /* writer thread only, like the two below */
	int64_t ob_queued;     /* rows the round in progress queued */

	/* batch scratch, writer thread only */
	store_inbound *in;
	store_inbound_result *res;
	gw_job **owner;
	size_t cap;
};

gw_job *gw_job_new(gw_job_kind kind)
{
	gw_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = kind;
	j->mode = -1;
	j->http_status = 200;
	return j;
}

void gw_job_free(gw_job *j)
{
	if (!j)
		return;
	gw_parsed_free(&j->parsed);
	for (int i = 0; i < j->n_replies; i++) {
		free(j->replies[i].text);
		free(j->replies[i].payload);
	}
	free(j);
}

/* ---- one batch ---- */

static int gw_writer_reserve(gw_writer *w, size_t n)
{
	store_inbound *in;
	store_inbound_result *res;
	gw_job **owner;
	size_t cap = w->cap ? w->cap : 64;

	if (n <= w->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	in = realloc(w->in, cap * sizeof(*in));
	if (!in)
		return -1;
	w->in = in;
	res = realloc(w->res, cap * sizeof(*res));
	if (!res)
		return -1;
	w->res = res;
	owner = realloc(w->owner, cap * sizeof(*owner));
	if (!owner)
		return -1;
	w->owner = owner;
	w->cap = cap;
	return 0;
}

static void gw_writer_fail_all(gw_job *batch, int rc)
{
	for (gw_job *j = batch; j; j = j->next)
		if (j->kind == GW_JOB_INBOUND && j->parsed.n_msgs)
			j->http_status = rc == STORE_ERR_BUSY ? 503 : 500;
}

static void gw_writer_copy_replies(gw_job *j, const store_decision *d, const store_inbound_result *r)
{
	for (int k = 0; k < d->n_out && k < r->n_out && j->n_replies < GW_JOB_REPLIES_MAX; k++) {
		gw_job_reply *rep = &j->replies[j->n_replies];

		rep->id = r->out_ids[k];
		rep->text = d->out[k].text ? strdup(d->out[k].text) : NULL;
		rep->payload = d->out[k].payload ? strdup(d->out[k].payload) : NULL;
		if ((d->out[k].text && !rep->text) || (d->out[k].payload && !rep->payload)) {
			free(rep->text);
			free(rep->payload);
			memset(rep, 0, sizeof(*rep));
			log_event(LOG_ERROR, "writer_oom", "what=reply_copy");
			continue;
		}
		j->n_replies++;
	}
}

/* Counts one committed message and copies what the web chat needs. */
static void gw_writer_account(gw_writer *w, gw_job *j, size_t i, const store_inbound *in, const store_inbound_result *r)
{
	const store_decision *d;
	const bot_result *br;

	if (r->rc == STORE_DUPLICATE) {
		j->n_dup++;
		gw_metrics_reject(w->o.metrics, GW_REJ_DUPLICATE);
		return;
	}
	if (r->rc != STORE_OK) {
		char why[128];

		log_event(LOG_WARN, "inbound_refused", "channel=%s rc=%s", in->channel,
			  log_kv_str(store_rc_str(r->rc), why, sizeof(why)));
		if (r->rc == STORE_ERR || r->rc == STORE_ERR_BUSY) {
			j->http_status = r->rc == STORE_ERR_BUSY ? 503 : 500;
			gw_metrics_reject(w->o.metrics, GW_REJ_STORE);
		}
		return;
	}
	j->n_new++;
	gw_metrics_inbound(w->o.metrics, in->channel);
	br = gw_handle_result(w->h, i);
	d = gw_handle_decision(w->h, i);
	if (br) {
		if (br->intent)
			gw_metrics_intent(w->o.metrics, br->intent);
		if (br->fallback)
			gw_metrics_fallback(w->o.metrics);
		for (int a = 0; a < br->n_actions; a++)
			if (br->actions[a].kind == BOT_ACT_ESCALATE)
				gw_metrics_escalation(w->o.metrics);
	}
	if (!d)
		return;
	for (int k = 0; k < d->n_out; k++) {
		const char *outcome = d->out[k].sandboxed ? "sandboxed" : d->out[k].queue ? "queued" : "pushed";

		gw_metrics_outbound(w->o.metrics, in->channel, outcome);
		if (d->out[k].queue && !d->out[k].sandboxed)
			w->ob_queued++;
	}
	j->conversation_id = r->conversation_id;
	j->mode = (int)d->next.mode;
	if (j->want_replies)
		gw_writer_copy_replies(j, d, r);
}

/* ---- statuses ---- */

static void gw_writer_status_log(int known, int late, const char *channel, const char *provider_id, const char *status)
{
	char id[96], st[32];

	log_event(known && !late ? LOG_DEBUG : LOG_INFO, "status", "channel=%s provider_id=%s status=%s known=%d%s",
		  channel, log_kv_str(provider_id, id, sizeof(id)), log_kv_str(status, st, sizeof(st)), known,
		  late ? " late=1" : "");
}

static void gw_early_free(gw_early *e)
{
	free(e->recipient);
	free(e->provider_id);
	free(e->status);
	free(e->error);
}

/* FNV-1a of a provider id: kept statuses are matched to a round's sends by
 * this first, the string only when it agrees. */
static uint64_t gw_early_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Forgets entry i; the others keep their order (a message's "sent" before
 * its "delivered"). */
static void gw_writer_early_drop(gw_writer *w, size_t i)
{
	gw_early_free(&w->early[i]);
	memmove(&w->early[i], &w->early[i + 1], (w->n_early - i - 1) * sizeof(*w->early));
	w->n_early--;
}

/* Keeps a status that found no message, to be tried again after later
 * rounds' sender outcomes for GW_EARLY_TTL_MS. When the list is full the
 * oldest is given up. Returns 0, or -1 when it could not be kept. */
static int gw_writer_early_keep(gw_writer *w, const char *channel, const gw_status *s)
{
	gw_early e = {
	    .channel = channel, .at_ms = s->at_ms, .since_ms = clock_mono_ms(), .h = gw_early_hash(s->provider_id)};

	if (!w->early && !(w->early = calloc(GW_EARLY_MAX, sizeof(*w->early))))
		return -1;
	for (size_t i = 0; i < w->n_early; i++) /* the provider's retry of the same report */
		if (strcmp(w->early[i].provider_id, s->provider_id) == 0 &&
		    strcmp(w->early[i].status, s->status) == 0 && strcmp(w->early[i].recipient, s->recipient) == 0)
			return 0;
	e.recipient = strdup(s->recipient);
	e.provider_id = strdup(s->provider_id);
	e.status = strdup(s->status);
	e.error = s->error ? strdup(s->error) : NULL;
	if (!e.recipient || !e.provider_id || !e.status || (s->error && !e.error)) {
		gw_early_free(&e);
		return -1;
	}
	if (w->n_early == GW_EARLY_MAX) {
		size_t oldest = 0;
		for (size_t i = 1; i < w->n_early; i++)
			if (w->early[i].since_ms < w->early[oldest].since_ms)
				oldest = i;
		gw_writer_status_log(0, 0, w->early[oldest].channel, w->early[oldest].provider_id,
				     w->early[oldest].status);
		gw_writer_early_drop(w, oldest);
	}
	w->early[w->n_early++] = e;
	return 0;
}

/* 1 when the round's recorded outcomes (t, may be NULL) include the send
 * that got e's provider id. */
static int gw_early_sent_now(const gw_early *e, const gw_sender_turn *t)
{
	for (size_t i = 0; t && t->result_rc && i < t->n_results; i++) {
		const store_outbox_result *r = &t->results[i];
		if (t->result_rc[i] == STORE_OK && r->outcome == STORE_OUTBOX_SENT && r->provider_id &&
		    gw_early_hash(r->provider_id) == e->h && strcmp(r->provider_id, e->provider_id) == 0)
			return 1;
	}
	return 0;
}

/* Inside a round, after the sender's outcomes (t, or NULL): a kept status
 * whose provider id one of them just recorded is applied (marked applied);
 * the others are not looked up again (a status for a message loket never
 * sent, from another tool on the same number, would cost a lookup every
 * round). Those older than the TTL are given up. A failure other than "not
 * found" leaves the entry; the round's own failure is the caller's
 * (gw_writer_early_settle). */
static void gw_writer_early_retry(gw_writer *w, const gw_sender_turn *t)
{
	int64_t now = clock_mono_ms();

	for (size_t i = 0; i < w->n_early;) {
		gw_early *e = &w->early[i];
		int rc = STORE_ERR_NOTFOUND;
		if (!e->applied && gw_early_sent_now(e, t))
			rc = store_msg_status(w->st, e->channel, e->recipient, e->provider_id, e->status, e->error,
					      e->at_ms ? e->at_ms : clock_wall_ms());
		if (rc == STORE_OK)
			e->applied = 1;
		if (rc == STORE_ERR_NOTFOUND && !e->applied && now - e->since_ms >= GW_EARLY_TTL_MS) {
			gw_writer_status_log(0, 0, e->channel, e->provider_id, e->status);
			gw_writer_early_drop(w, i);
			continue;
		}
		i++;
	}
}

/* After the round: the statuses it applied are done when it committed, and
 * are tried again when it did not. */
static void gw_writer_early_settle(gw_writer *w, int round_rc)
{
	for (size_t i = 0; i < w->n_early;) {
		gw_early *e = &w->early[i];
		if (e->applied && round_rc == STORE_OK) {
			gw_writer_status_log(1, 1, e->channel, e->provider_id, e->status);
			gw_writer_early_drop(w, i);
			continue;
		}
		e->applied = 0;
		i++;
	}
}

static void gw_writer_statuses(gw_writer *w, gw_job *j)
{
	const char *channel = j->channel ? j->channel : "whatsapp";

	for (size_t k = 0; k < j->parsed.n_statuses; k++) {
		const gw_status *s = &j->parsed.statuses[k];
		int rc;

		if (!s->provider_id || !s->status)
			continue;
		/* the id is looked up among the recipient's messages: without
		 * one it cannot be found (Meta always names it) */
		rc = !s->recipient ? STORE_ERR_NOTFOUND
				   : store_msg_status(w->st, channel, s->recipient, s->provider_id, s->status, s->error,
						      s->at_ms ? s->at_ms : clock_wall_ms());
		if (rc == STORE_ERR_NOTFOUND && s->recipient && gw_writer_early_keep(w, channel, s) == 0)
			continue; /* its reply's outcome may not be written yet */
		if (rc == STORE_OK || rc == STORE_ERR_NOTFOUND) {
			gw_writer_status_log(rc == STORE_OK, 0, channel, s->provider_id, s->status);
			continue;
		}
		log_event(LOG_ERROR, "status_store_failed", "rc=%s", store_rc_str(rc));
		j->http_status = rc == STORE_ERR_BUSY ? 503 : 500;
		gw_metrics_reject(w->o.metrics, GW_REJ_STORE);
	}
}

/* ---- the outbox's counts ---- */

#define GW_OB_RECOUNT_MS 10000	/* count exactly this often, */
#define GW_OB_RECOUNT_MAX 20000 /* while at most this many wait */

/* Counts the outbox exactly (every row is read). */
static void gw_writer_outbox_count(gw_writer *w)
{
	store_outbox_counts c;

	w->ob_counted_ms = clock_mono_ms();
	if (store_outbox_counts_get(w->st, clock_wall_ms(), &c) != STORE_OK)
		return; /* counted again after the next round */
	atomic_store(&w->ob_pending, c.pending + c.leased);
	atomic_store(&w->ob_dead, c.dead);
	atomic_store(&w->ob_known, 1);
}

/* After a committed round: what it queued, sent and gave up. Another process
 * (a loket command) may change the outbox too: the exact count every
 * GW_OB_RECOUNT_MS, while it is cheap, puts that right. */
static void gw_writer_outbox_round(gw_writer *w, const gw_sender_turn *t)
{
	int64_t pending = w->ob_queued, dead = 0;

	for (size_t i = 0; t && t->result_rc && i < t->n_results; i++) {
		if (t->result_rc[i] != STORE_OK)
			continue;
		if (t->results[i].outcome == STORE_OUTBOX_SENT) {
			pending--;
		} else if (t->results[i].outcome == STORE_OUTBOX_FAIL) {
			pending--;
			dead++;
		}
	}
	if (pending)
		atomic_fetch_add(&w->ob_pending, pending);
	if (dead)
		atomic_fetch_add(&w->ob_dead, dead);
	if (!atomic_load(&w->ob_known) || (clock_mono_ms() - w->ob_counted_ms >= GW_OB_RECOUNT_MS &&
					   atomic_load(&w->ob_pending) <= GW_OB_RECOUNT_MAX))
		gw_writer_outbox_count(w);
}

int gw_writer_outbox(gw_writer *w, int64_t *pending, int64_t *dead)
{
	if (!w || !atomic_load(&w->ob_known))
		return -1;
	*pending = atomic_load(&w->ob_pending);
	*dead = atomic_load(&w->ob_dead);
	if (*pending < 0) /* another process sent or purged meanwhile */
		*pending = 0;
	return 0;
}

/* A round failed after its calls reported success: nothing of it was kept. */
static void gw_writer_round_failed(gw_writer *w, gw_job *batch, int rc)
{
	for (gw_job *j = batch; j; j = j->next)
		if (j->kind == GW_JOB_INBOUND && j->parsed.n_statuses) {
			j->http_status = rc == STORE_ERR_BUSY ? 503 : 500;
			gw_metrics_reject(w->o.metrics, GW_REJ_STORE);
		}
}

/* One round: every queued job's messages, the sender's store turn (its
 * outcomes, and a lease of the rows just queued) and the jobs' statuses in one
 * transaction, so one commit and one fsync cover them all; then health
 * checks. batch may be NULL (a round for the sender alone). Returns 1 when the
 * round may have written something. */
static int gw_writer_batch(gw_writer *w, gw_job *batch)
{
	int wrote;
	w->round_seq++;
	size_t n = 0, total = 0, n_status = 0;
	int pinged = 0, ping_rc = 0, counts_ok = 0, has_turn = 0;
	int round_rc = STORE_OK, batch_rc = STORE_OK;
	store_outbox_counts counts;
	gw_sender_turn turn;

	for (gw_job *j = batch; j; j = j->next)
		if (j->kind == GW_JOB_INBOUND) {
			total += j->parsed.n_msgs;
			n_status += j->parsed.n_statuses;
		}
	if (total && gw_writer_reserve(w, total) != 0) {
		log_event(LOG_ERROR, "writer_oom", "messages=%zu", total);
		gw_writer_fail_all(batch, STORE_ERR);
		total = 0;
	}
	if (total) {
		for (gw_job *j = batch; j; j = j->next) {
			if (j->kind != GW_JOB_INBOUND)
				continue;
			for (size_t k = 0; k < j->parsed.n_msgs; k++) {
				w->in[n] = j->parsed.msgs[k];
				w->owner[n] = j;
				n++;
			}
		}
		memset(w->res, 0, n * sizeof(*w->res));
	}
	/* new messages queue replies: lease them in the same transaction */
	if (w->o.sender)
		has_turn = gw_sender_turn_take(w->o.sender, &turn, total > 0);
	if (total || n_status || has_turn) {
		round_rc = store_round_begin(w->st);
		if (round_rc == STORE_OK) {
			if (total) {
				/* the replies it queues go to the sender as they are written */
				if (has_turn && turn.lease_max)
					store_outbox_fresh_begin(w->st, turn.lease_max, clock_wall_ms(), turn.lease_ms);
				gw_handle_reset(w->h);
				gw_handle_set_bot(w->h, w->o.set);
				batch_rc = store_inbound_batch(w->st, w->in, n, gw_handle_decide, w->h, w->res);
				store_outbox_fresh_take(w->st, &turn.fresh, &turn.n_fresh);
			}
			if (has_turn)
				gw_sender_turn_run(w->st, &turn, clock_wall_ms());
			/* statuses that came before their reply's outcome */
			if (w->n_early)
				gw_writer_early_retry(w, has_turn ? &turn : NULL);
			/* statuses last: a "sent" or "delivered" that Meta reports for a
			 * reply whose outcome this same round records finds its
			 * provider id */
			for (gw_job *j = batch; n_status && j; j = j->next)
				if (j->kind == GW_JOB_INBOUND && j->parsed.n_statuses)
					gw_writer_statuses(w, j);
			round_rc = store_round_commit(w->st);
		}
		gw_writer_early_settle(w, round_rc);
		if (round_rc != STORE_OK) {
			char er[200];
			log_event(LOG_ERROR, "round_failed", "messages=%zu statuses=%zu rc=%s detail=%s", total,
				  n_status, store_rc_str(round_rc), log_kv_str(store_errmsg(w->st), er, sizeof(er)));
			gw_writer_round_failed(w, batch, round_rc);
		}
	}
	if (total) {
		int rc = round_rc != STORE_OK ? round_rc : batch_rc;
		if (rc != STORE_OK) {
			log_event(LOG_ERROR, "batch_failed", "messages=%zu rc=%s", n, store_rc_str(rc));
			gw_writer_fail_all(batch, rc);
			for (size_t i = 0; i < n; i++)
				gw_metrics_reject(w->o.metrics, GW_REJ_STORE);
		} else {
			for (size_t i = 0; i < n; i++)
				gw_writer_account(w, w->owner[i], i, &w->in[i], &w->res[i]);
		}
	}
	/* an idle sender's lease that found nothing wrote nothing: no fsync */
	wrote =
	    total || n_status || (has_turn && round_rc == STORE_OK && (turn.n_results || turn.n_items || turn.n_fresh));
	if (round_rc == STORE_OK)
		gw_writer_outbox_round(w, has_turn ? &turn : NULL);
	w->ob_queued = 0;
	if (has_turn) {
		turn.seq = w->sy ? w->round_seq : 0;
		gw_sender_turn_give(w->o.sender, &turn, round_rc);
	}
	for (gw_job *j = batch; j; j = j->next) {
		if (j->kind != GW_JOB_PING)
			continue;
		if (!pinged) {
			ping_rc = store_ping(w->st);
			memset(&counts, 0, sizeof(counts));
			counts_ok = gw_writer_outbox(w, &counts.pending, &counts.dead) == 0;
			pinged = 1;
		}
		j->ping_rc = ping_rc;
		j->counts_ok = counts_ok;
		if (counts_ok)
			j->counts = counts;
	}
	return wrote;
}

/* ---- the thread ---- */

static void gw_writer_finish(gw_writer *w, gw_job *batch, gw_job *tail, int wrote);

static void *gw_writer_main(void *arg)
{
	gw_writer *w = arg;
	pthread_setname_np(pthread_self(), "loket-writer");
	size_t batch_max = w->o.c->store.batch_max > 0 ? (size_t)w->o.c->store.batch_max : 256;

	gw_writer_outbox_count(w);

	for (;;) {
		gw_job *batch = NULL, *tail = NULL;
		size_t msgs = 0;

		pthread_mutex_lock(&w->lock);
		while (!w->q_head && !w->kicked && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		w->kicked = 0;
		if (!w->q_head && w->stopping) {
			pthread_mutex_unlock(&w->lock);
			/* the sender's last outcomes (it is stopped before the writer) */
			gw_writer_finish(w, NULL, NULL, gw_writer_batch(w, NULL));
			break;
		}
		while (w->q_head) {
			gw_job *j = w->q_head;
			size_t jm = j->kind == GW_JOB_INBOUND ? j->parsed.n_msgs : 0;

			if (batch && msgs + jm > batch_max)
				break;
			w->q_head = j->next;
			if (!w->q_head)
				w->q_tail = NULL;
			w->n_queued--;
			j->next = NULL;
			if (tail)
				tail->next = j;
			else
				batch = j;
			tail = j;
			msgs += jm;
		}
		pthread_mutex_unlock(&w->lock);

		int wrote = gw_writer_batch(w, batch);
		gw_writer_finish(w, batch, tail, wrote);
	}
	return NULL;
}

/* Hands a committed round's jobs on: to the syncer, or when commits are
 * durable by themselves straight to the done list. A round that wrote
 * nothing and holds no job (an idle sender's lease every 200 ms) asks for no
 * fsync. */
static void gw_writer_finish(gw_writer *w, gw_job *batch, gw_job *tail, int wrote)
{
	if (!batch && !wrote)
		return;
	pthread_mutex_lock(&w->lock);
	if (w->sy) {
		if (batch) {
			if (w->y_tail)
				w->y_tail->next = batch;
			else
				w->y_head = batch;
			w->y_tail = tail;
		}
		w->y_want = w->round_seq;
		pthread_cond_signal(&w->sync_cond);
		pthread_mutex_unlock(&w->lock);
		return;
	}
	if (batch) {
		if (w->d_tail)
			w->d_tail->next = batch;
		else
			w->d_head = batch;
		w->d_tail = tail;
	}
	pthread_mutex_unlock(&w->lock);
	if (batch && w->o.wake)
		w->o.wake(w->o.wake_arg);
}

/* The fsync failed: the jobs' commits may not be durable, so the provider
 * must retry them (a retry finds them stored and changes nothing). */
static void gw_writer_sync_failed(gw_writer *w, gw_job *list, int err)
{
	char why[128];

	log_event(LOG_ERROR, "sync_failed", "detail=%s", log_kv_str(strerror(err), why, sizeof(why)));
	for (gw_job *j = list; j; j = j->next) {
		if (j->kind == GW_JOB_PING) {
			j->ping_rc = STORE_ERR;
		} else if (j->parsed.n_msgs || j->parsed.n_statuses) {
			j->http_status = 500;
			gw_metrics_reject(w->o.metrics, GW_REJ_STORE);
		}
	}
}

static void *gw_writer_sync_main(void *arg)
{
	gw_writer *w = arg;
	pthread_setname_np(pthread_self(), "loket-sync");

	for (;;) {
		gw_job *list, *tail;
		int64_t want;

		pthread_mutex_lock(&w->lock);
		while (!w->y_head && w->y_want == w->y_done && !w->sync_stopping)
			pthread_cond_wait(&w->sync_cond, &w->lock);
		if (!w->y_head && w->y_want == w->y_done) {
			pthread_mutex_unlock(&w->lock);
			break; /* stopping, nothing left */
		}
		list = w->y_head;
		tail = w->y_tail;
		want = w->y_want;
		w->y_head = w->y_tail = NULL;
		pthread_mutex_unlock(&w->lock);

		/* every round up to want committed before this call */
		if (store_syncer_sync(w->sy) != 0)
			gw_writer_sync_failed(w, list, errno);

		pthread_mutex_lock(&w->lock);
		w->y_done = want;
		if (list) {
			if (w->d_tail)
				w->d_tail->next = list;
			else
				w->d_head = list;
			w->d_tail = tail;
		}
		pthread_mutex_unlock(&w->lock);
		gw_sender_synced(w->o.sender, want);
		if (list && w->o.wake)
			w->o.wake(w->o.wake_arg);
	}
	return NULL;
}

/* The sender's runner: called with the sender's mailbox lock held, so it only
 * signals. */
static void gw_writer_kick(void *arg)
{
	gw_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	w->kicked = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

gw_writer *gw_writer_start(const gw_writer_opts *o, char *err, size_t errlen)
{
	gw_writer *w = NULL;
	store_opts so;
	char serr[256] = "";

	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->o = *o;
	if (!w->o.max_pending)
		w->o.max_pending = 65536;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	pthread_cond_init(&w->sync_cond, NULL);
	memset(&so, 0, sizeof(so));
	so.path = o->c->store.path;
	so.synchronous_full = strcmp(o->c->store.synchronous, "NORMAL") != 0;
	so.sync_later = so.synchronous_full; /* FULL through group commit */
	so.no_checkpoint = 1;		     /* gw_checkpoint's thread does it */
	so.busy_timeout_ms = o->c->store.busy_timeout_ms;
	w->st = store_open(&so, serr, sizeof(serr));
	if (!w->st) {
		snprintf(err, errlen, "writer: %s", serr);
		goto fail;
	}
	if (!(w->ckpt = gw_checkpoint_start(o->c, err, errlen)))
		goto fail;
	if (so.sync_later) {
		if (!(w->sy = store_syncer_new(w->st))) {
			snprintf(err, errlen, "writer: out of memory");
			goto fail;
		}
		if (pthread_create(&w->sync_thread, NULL, gw_writer_sync_main, w) != 0) {
			snprintf(err, errlen, "writer: cannot start the sync thread");
			goto fail;
		}
		w->sync_started = 1;
	}
	w->h = gw_handle_new(o->c);
	if (!w->h) {
		snprintf(err, errlen, "writer: out of memory");
		goto fail;
	}
	gw_handle_set_bot(w->h, o->set);
	if (pthread_create(&w->thread, NULL, gw_writer_main, w) != 0) {
		snprintf(err, errlen, "writer: cannot start the thread");
		goto fail;
	}
	w->started = 1;
	gw_sender_set_runner(o->sender, gw_writer_kick, w);
	return w;
fail:
	gw_writer_stop(w);
	return NULL;
}

int gw_writer_submit(gw_writer *w, gw_job *j)
{
	int rc = -1;

	pthread_mutex_lock(&w->lock);
	if (w->stopping || w->n_queued >= w->o.max_pending)
		goto out;
	j->next = NULL;
	if (w->q_tail)
		w->q_tail->next = j;
	else
		w->q_head = j;
	w->q_tail = j;
	w->n_queued++;
	w->n_pending++;
	pthread_cond_signal(&w->cond);
	rc = 0;
out:
	pthread_mutex_unlock(&w->lock);
	return rc;
}

gw_job *gw_writer_take_done(gw_writer *w)
{
	gw_job *list;
	size_t n = 0;

	pthread_mutex_lock(&w->lock);
	list = w->d_head;
	w->d_head = w->d_tail = NULL;
	for (gw_job *j = list; j; j = j->next)
		n++;
	w->n_pending -= n;
	pthread_mutex_unlock(&w->lock);
	return list;
}

size_t gw_writer_pending(gw_writer *w)
{
	size_t n;

	pthread_mutex_lock(&w->lock);
	n = w->n_pending;
	pthread_mutex_unlock(&w->lock);
	return n;
}

void gw_writer_stop(gw_writer *w)
{
	gw_job *j, *next;

	if (!w)
		return;
	gw_sender_set_runner(w->o.sender, NULL, NULL);
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stopping = 1;
		pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	if (w->sync_started) {
		/* the syncer syncs what the writer's last rounds committed, then ends */
		pthread_mutex_lock(&w->lock);
		w->sync_stopping = 1;
		pthread_cond_signal(&w->sync_cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->sync_thread, NULL);
	}
	for (j = w->q_head; j; j = next) {
		next = j->next;
		gw_job_free(j);
	}
	for (j = w->d_head; j; j = next) {
		next = j->next;
		gw_job_free(j);
	}
	for (j = w->y_head; j; j = next) {
		next = j->next;
		gw_job_free(j);
	}
	while (w->n_early) {
		gw_writer_status_log(0, 0, w->early[0].channel, w->early[0].provider_id, w->early[0].status);
		gw_writer_early_drop(w, 0);
	}
	free(w->early);
	store_syncer_free(w->sy);
	gw_checkpoint_stop(w->ckpt);
	gw_handle_free(w->h);
	store_close(w->st);
	free(w->in);
	free(w->res);
	free(w->owner);
	pthread_cond_destroy(&w->cond);
	pthread_cond_destroy(&w->sync_cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
