/* gw_writer: the thread that makes inbound messages durable, in batches.
 *
 * One mutex guards the incoming queue and the done list; one condition variable
 * wakes the thread. Each round takes every queued job (whole jobs, up to
 * store.batch_max messages unless a single job is bigger), commits their
 * messages with one store_inbound_batch call, records their delivery statuses,
 * answers health checks with one store_ping, and hands the jobs back. The
 * decision of what the bot says is gw_handle's; this file only moves data and
 * counts it. */
#include "core/clock.h"
#include "gateway/gw_writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "gateway/gw_handle.h"

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

/* Counts one committed message and copies what the web chat needs. Returns 1
 * when it queued outbox rows for the sender. */
static int gw_writer_account(gw_writer *w, gw_job *j, size_t i, const store_inbound *in, const store_inbound_result *r)
{
	const store_decision *d;
	const bot_result *br;
	int queued = 0;

	if (r->rc == STORE_DUPLICATE) {
		j->n_dup++;
		gw_metrics_reject(w->o.metrics, GW_REJ_DUPLICATE);
		return 0;
	}
	if (r->rc != STORE_OK) {
		char why[128];

		log_event(LOG_WARN, "inbound_refused", "channel=%s rc=%s", in->channel,
			  log_kv_str(store_rc_str(r->rc), why, sizeof(why)));
		if (r->rc == STORE_ERR || r->rc == STORE_ERR_BUSY) {
			j->http_status = r->rc == STORE_ERR_BUSY ? 503 : 500;
			gw_metrics_reject(w->o.metrics, GW_REJ_STORE);
		}
		return 0;
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
		return 0;
	for (int k = 0; k < d->n_out; k++) {
		const char *outcome = d->out[k].sandboxed ? "sandboxed" : d->out[k].queue ? "queued" : "pushed";

		gw_metrics_outbound(w->o.metrics, in->channel, outcome);
		if (d->out[k].queue && !d->out[k].sandboxed)
			queued = 1;
	}
	j->conversation_id = r->conversation_id;
	j->mode = (int)d->next.mode;
	if (j->want_replies)
		gw_writer_copy_replies(j, d, r);
	return queued;
}

static void gw_writer_statuses(gw_writer *w, gw_job *j)
{
	for (size_t k = 0; k < j->parsed.n_statuses; k++) {
		const gw_status *s = &j->parsed.statuses[k];
		char id[96], st[32];
		int rc;

		if (!s->provider_id || !s->status)
			continue;
		rc = store_msg_status(w->st, j->channel ? j->channel : "whatsapp", s->provider_id, s->status, s->error,
				      s->at_ms ? s->at_ms : clock_wall_ms());
		if (rc == STORE_OK || rc == STORE_ERR_NOTFOUND) {
			log_event(rc == STORE_OK ? LOG_DEBUG : LOG_INFO, "status",
				  "channel=%s provider_id=%s status=%s known=%d", j->channel ? j->channel : "whatsapp",
				  log_kv_str(s->provider_id, id, sizeof(id)), log_kv_str(s->status, st, sizeof(st)),
				  rc == STORE_OK);
			continue;
		}
		log_event(LOG_ERROR, "status_store_failed", "rc=%s", store_rc_str(rc));
		j->http_status = rc == STORE_ERR_BUSY ? 503 : 500;
		gw_metrics_reject(w->o.metrics, GW_REJ_STORE);
	}
}

static void gw_writer_batch(gw_writer *w, gw_job *batch)
{
	size_t n = 0, total = 0;
	int wake_sender = 0, pinged = 0, ping_rc = 0, counts_ok = 0;
	store_outbox_counts counts;
	int rc;

	for (gw_job *j = batch; j; j = j->next)
		if (j->kind == GW_JOB_INBOUND)
			total += j->parsed.n_msgs;
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
		gw_handle_reset(w->h);
		gw_handle_set_bot(w->h, w->o.set);
		rc = store_inbound_batch(w->st, w->in, n, gw_handle_decide, w->h, w->res);
		if (rc != STORE_OK) {
			log_event(LOG_ERROR, "batch_failed", "messages=%zu rc=%s", n, store_rc_str(rc));
			gw_writer_fail_all(batch, rc);
			for (size_t i = 0; i < n; i++)
				gw_metrics_reject(w->o.metrics, GW_REJ_STORE);
		} else {
			for (size_t i = 0; i < n; i++)
				wake_sender |= gw_writer_account(w, w->owner[i], i, &w->in[i], &w->res[i]);
		}
	}
	for (gw_job *j = batch; j; j = j->next) {
		if (j->kind == GW_JOB_INBOUND && j->parsed.n_statuses)
			gw_writer_statuses(w, j);
		if (j->kind == GW_JOB_PING) {
			if (!pinged) {
				ping_rc = store_ping(w->st);
				counts_ok = store_outbox_counts_get(w->st, clock_wall_ms(), &counts) == STORE_OK;
				pinged = 1;
			}
			j->ping_rc = ping_rc;
			j->counts_ok = counts_ok;
			if (counts_ok)
				j->counts = counts;
		}
	}
	if (wake_sender && w->o.sender)
		gw_sender_wake(w->o.sender);
}

/* ---- the thread ---- */

static void *gw_writer_main(void *arg)
{
	gw_writer *w = arg;
	size_t batch_max = w->o.c->store.batch_max > 0 ? (size_t)w->o.c->store.batch_max : 256;

	for (;;) {
		gw_job *batch = NULL, *tail = NULL;
		size_t msgs = 0;

		pthread_mutex_lock(&w->lock);
		while (!w->q_head && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->q_head && w->stopping) {
			pthread_mutex_unlock(&w->lock);
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

		gw_writer_batch(w, batch);

		pthread_mutex_lock(&w->lock);
		if (w->d_tail)
			w->d_tail->next = batch;
		else
			w->d_head = batch;
		w->d_tail = tail;
		pthread_mutex_unlock(&w->lock);
		if (w->o.wake)
			w->o.wake(w->o.wake_arg);
	}
	return NULL;
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
	memset(&so, 0, sizeof(so));
	so.path = o->c->store.path;
	so.synchronous_full = strcmp(o->c->store.synchronous, "NORMAL") != 0;
	so.busy_timeout_ms = o->c->store.busy_timeout_ms;
	w->st = store_open(&so, serr, sizeof(serr));
	if (!w->st) {
		snprintf(err, errlen, "writer: %s", serr);
		goto fail;
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
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stopping = 1;
		pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	for (j = w->q_head; j; j = next) {
		next = j->next;
		gw_job_free(j);
	}
	for (j = w->d_head; j; j = next) {
		next = j->next;
		gw_job_free(j);
	}
	gw_handle_free(w->h);
	store_close(w->st);
	free(w->in);
	free(w->res);
	free(w->owner);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
