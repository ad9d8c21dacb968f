/* gw_sender: the thread that delivers the outbox (see docs/sender.md).
 *
 * One thread, one curl multi handle. Each turn of the loop it takes what its
 * store turns handed back (rows leased for it, outcomes recorded), starts the
 * waiting items its channel's token bucket allows, lets curl move every
 * transfer along, classifies each finished one through the channel's ops, and
 * posts the outcome to its mailbox. The store writes (outcomes and leases)
 * happen in a *store turn*, run by the gateway's writer thread inside its own
 * transaction (one SQLite writer, one fsync for inbound messages, statuses and
 * the sender's work), or by this thread on its own handle when started with
 * own_store. An outcome the store could not record is offered again on a
 * later turn: an outbox row only goes once the provider accepted the message.
 *
 * Ownership: a transfer is on exactly one list: the thread's own (s->head),
 * the mailbox's "to record" or "recorded" lists (under mb_lock), or a turn in
 * progress (the runner's until it gives it back). Other threads touch only
 * gw_sender_wake (curl_multi_wakeup, thread-safe), the mailbox through the
 * turn calls, the atomic counters and gw_sender_stop. */
#include "core/clock.h"
#include "gateway/gw_sender.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "gateway/gw_channel.h"
#include "store/store.h"

#define SND_TICK_MS 200			   /* look for due retries this often */
#define SND_RESP_MAX (64 * 1024)	   /* bytes of a provider's answer we keep */
#define SND_WINDOW_MS (24LL * 3600 * 1000) /* WhatsApp's customer-service window */
#define SND_BUCKETS 8
#define SND_RECORD_LOG_EVERY 50 /* a stuck store write is logged this often */
#define SND_WRITE_GAP_MS 3	/* own_store: at most one store turn (record + lease) this often */
#define SND_HDR_CACHE 8		/* distinct header sets kept as ready curl lists */
#define SND_AUTH_HOLD_MS 60000	/* a channel whose provider refused our credentials: tried at most this often */

static const double snd_lat_bounds[GW_SEND_LAT_BUCKETS] = {0.025, 0.05, 0.1,  0.25, 0.5,  1.0,
							   2.5,	  5.0,	10.0, 30.0, 60.0, 120.0};

const double *gw_sender_lat_bounds(void)
{
	return snd_lat_bounds;
}

/* ---- state ---- */

typedef enum snd_state {
	SND_WAITING, /* leased, waiting for its channel's rate limit */
	SND_ACTIVE,  /* its request is in curl */
	SND_RECORD,  /* outcome known, waiting to be written to the store */
} snd_state;

/* HOLD: waits like a retry without counting an attempt (credentials refused) */
typedef enum snd_outcome { SND_OUT_SENT, SND_OUT_RETRY, SND_OUT_FAIL, SND_OUT_HOLD } snd_outcome;

typedef struct snd_xfer {
	struct snd_xfer *next;
	snd_state state;
	store_outbox_item item; /* text and payload owned */
	const gw_channel_ops *ops;
	gw_request req;
	struct curl_slist *hdrs;   /* owned, only when the header cache was full */
	struct curl_slist *cached; /* borrowed from the sender's header cache */
	CURL *easy;
	char *resp;
	size_t resp_len, resp_cap;
	char curl_err[CURL_ERROR_SIZE];
	int64_t start_us; /* monotonic, when the request started */
	long http;
	int attempted; /* 1 once a request went out (this attempt counts) */
	int64_t ms;    /* how long the request took */
	/* the outcome to record */
	snd_outcome out;
	const char *out_status; /* "failed", "dead", "window_closed" */
	const char *cls_name;
	int64_t next_ms;
	char provider_id[256];
	char error[256];
	int rec_rc;  /* the store's answer for this outcome, set by the turn */
	int64_t seq; /* leased in that round: waits until it is durable */
} snd_xfer;

/* What the sender keeps per channel: its rate bucket, and whether its
 * provider refused loket's credentials. */
typedef struct snd_bucket {
	char channel[STORE_CHANNEL_MAX];
	double tokens, rate, cap; /* rate 0: unlimited */
	int64_t last_us;
	/* 0, or the provider refused our credentials and has accepted none
	 * since: until then its messages wait without a request (one request a
	 * hold period, after it, finds out whether they were fixed) */
	int64_t refused_until_us;
} snd_bucket;

struct gw_sender {
	const cfg *c;
	int own_store;
	store *st; /* own_store only */
	CURLM *multi;
	pthread_t thread;
	int thread_started, thread_joined;
	atomic_int draining;
	atomic_int kicked;
	atomic_llong drain_deadline_us;
	snd_xfer *head, *tail; /* the thread's own transfers: waiting or in curl */
	size_t n_items;	       /* length of that list */
	snd_bucket buckets[SND_BUCKETS];
	size_t n_buckets;
	int64_t next_lease_us;
	int64_t next_retry_us; /* earliest retry we scheduled (monotonic), or INT64_MAX */
	int64_t last_turn_us;  /* own_store: when the thread last ran a store turn */
	/* Finished easy handles, kept for the next requests: a new handle costs
	 * its buffers' allocations, and the free list's length never exceeds the
	 * number of transfers once in flight. Connections live in the multi
	 * handle's cache either way, so keep-alive does not depend on this. */
	CURL **idle;
	size_t n_idle, idle_cap;
	/* Header lists built once per distinct set of header lines (a channel's
	 * are the same for every request): [i] holds n lines in order. */
	struct {
		struct curl_slist *list;
		int n;
	} hdr_cache[SND_HDR_CACHE];
	size_t n_hdr_cache;
	uint64_t rng;
	int warned_unconfigured;
	int64_t auth_logged_us;	     /* the last send_unauthorized line */
	atomic_int refused_channels; /* buckets with refused_until_us set (stats read it) */

	/* ---- the mailbox between this thread and the store turns ---- */
	pthread_mutex_t mb_lock; /* guards the mb_ fields */
	snd_xfer *mb_out;	 /* finished, waiting to be recorded */
	snd_xfer *mb_back;	 /* recorded: rec_rc says how */
	snd_xfer *mb_new;	 /* leased for us, not yet taken by the thread */
	size_t mb_held;		 /* transfers the sender holds on any list, turns included */
	int mb_want;		 /* a turn was asked for and not taken yet */
	int mb_want_lease;	 /* ... and it should lease */
	int mb_more;		 /* the last lease was full: more may be due */
	int64_t mb_synced;	 /* rounds up to this one are durable */
	int mb_turns;		 /* turns taken and not given back (their outcomes are in them) */
	gw_sender_runner_fn runner;
	void *runner_arg;
	/* the turn's scratch: only the one thread running turns uses it */
	store_outbox_result *rec;
	int *rec_rc;
	size_t rec_cap;
	int record_failures; /* turns in a row whose outcomes were not recorded */

	/* counters */
	atomic_ullong sent, retried, failed, dead, window_closed, in_flight, unauthorized;
	atomic_ullong lat_count, lat_sum_us;
	atomic_ullong lat_bucket[GW_SEND_LAT_BUCKETS + 1]; /* per bucket, not cumulative */
	atomic_int running;
};

/* ---- clocks, randomness ---- */

static uint64_t snd_rand(gw_sender *s)
{
	/* xorshift64*: jitter only, not security */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ULL;
}

/* Delay before the next attempt, after `attempts` earlier failed ones:
 * d = min(backoff_max, backoff_initial * 2^attempts), twice that for
 * RETRY_LATER (the provider asked us to slow down), then "equal jitter":
 * d/2 + random(0..d/2), so retries of many messages spread out. */
static int64_t snd_backoff_ms(gw_sender *s, int attempts, int later)
{
	int64_t max = s->c->sender.backoff_max_ms > 0 ? s->c->sender.backoff_max_ms : 1;
	int64_t d = s->c->sender.backoff_initial_ms > 0 ? s->c->sender.backoff_initial_ms : 1;

	for (int i = 0; i < attempts && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	if (later)
		d *= 2;
	if (d < 2)
		return d;
	return d / 2 + (int64_t)(snd_rand(s) % (uint64_t)(d / 2 + 1));
}

/* ---- rate limit: one token bucket per channel ---- */

static snd_bucket *snd_bucket_get(gw_sender *s, const char *channel)
{
	snd_bucket *b;

	for (size_t i = 0; i < s->n_buckets; i++)
		if (strcmp(s->buckets[i].channel, channel) == 0)
			return &s->buckets[i];
	if (s->n_buckets == SND_BUCKETS)
		return NULL; /* more channels than we know: unlimited */
	b = &s->buckets[s->n_buckets++];
	memset(b, 0, sizeof(*b));
	snprintf(b->channel, sizeof(b->channel), "%s", channel);
	if (strcmp(channel, "whatsapp") == 0 && s->c->whatsapp.send_rate > 0)
		b->rate = s->c->whatsapp.send_rate;
	b->cap = b->rate > 0 ? b->rate : 0; /* at most one second's worth at once */
	b->tokens = b->cap;
	b->last_us = clock_mono_us();
	return b;
}

/* 0 and one token taken when b's channel may send now (b NULL: a channel
 * beyond the buckets, unlimited); otherwise the microseconds until it may. */
static int64_t snd_bucket_take(snd_bucket *b, int64_t now_us)
{
	if (!b || b->rate <= 0)
		return 0;
	b->tokens += (double)(now_us - b->last_us) * b->rate / 1e6;
	if (b->tokens > b->cap)
		b->tokens = b->cap;
	b->last_us = now_us;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 0;
	}
	return (int64_t)((1.0 - b->tokens) * 1e6 / b->rate) + 1;
}

/* ---- transfers ---- */

/* Takes back an easy handle curl no longer runs: kept for reuse, or cleaned
 * up when the free list cannot grow. */
static void snd_easy_put(gw_sender *s, CURL *e)
{
	if (!e)
		return;
	if (s->n_idle == s->idle_cap) {
		size_t cap = s->idle_cap ? s->idle_cap * 2 : 32;
		CURL **v = realloc(s->idle, cap * sizeof(*v));
		if (!v) {
			curl_easy_cleanup(e);
			return;
		}
		s->idle = v;
		s->idle_cap = cap;
	}
	s->idle[s->n_idle++] = e;
}

/* An easy handle with every option at its default (its connection and DNS
 * caches kept), or NULL. */
static CURL *snd_easy_get(gw_sender *s)
{
	CURL *e;

	if (s->n_idle == 0)
		return curl_easy_init();
	e = s->idle[--s->n_idle];
	curl_easy_reset(e);
	return e;
}

/* The curl header list for req's header lines plus "Expect:" (no
 * 100-continue round trip before the body), from the cache when an equal set
 * was built before; NULL when out of memory. *owned is set when the list is
 * not cached and the caller must free it. */
static struct curl_slist *snd_headers(gw_sender *s, const gw_request *req, int *owned)
{
	struct curl_slist *l = NULL, *h;
	int n = req->n_headers < GW_REQ_HEADERS_MAX ? req->n_headers : GW_REQ_HEADERS_MAX;

	*owned = 0;
	for (size_t i = 0; i < s->n_hdr_cache; i++) {
		int k = 0;
		if (s->hdr_cache[i].n != n)
			continue;
		for (h = s->hdr_cache[i].list; k < n && h && strcmp(h->data, req->headers[k]) == 0; h = h->next)
			k++;
		if (k == n)
			return s->hdr_cache[i].list;
	}
	for (int i = 0; i < n; i++) {
		if (!(h = curl_slist_append(l, req->headers[i])))
			goto oom;
		l = h;
	}
	if (!(h = curl_slist_append(l, "Expect:")))
		goto oom;
	l = h;
	if (s->n_hdr_cache < SND_HDR_CACHE) {
		s->hdr_cache[s->n_hdr_cache].list = l;
		s->hdr_cache[s->n_hdr_cache].n = n;
		s->n_hdr_cache++;
	} else {
		*owned = 1;
	}
	return l;
oom:
	curl_slist_free_all(l);
	return NULL;
}

static void snd_xfer_free(gw_sender *s, snd_xfer *x)
{
	if (!x)
		return;
	if (x->easy) {
		curl_multi_remove_handle(s->multi, x->easy);
		snd_easy_put(s, x->easy);
		atomic_fetch_sub(&s->in_flight, 1);
	}
	curl_slist_free_all(x->hdrs);
	gw_request_cleanup(&x->req);
	free(x->item.text);
	free(x->item.payload);
	free(x->resp);
	free(x);
}

static void snd_unlink(gw_sender *s, snd_xfer *x, snd_xfer *prev)
{
	if (prev)
		prev->next = x->next;
	else
		s->head = x->next;
	if (s->tail == x)
		s->tail = prev;
	s->n_items--;
}

static size_t snd_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	snd_xfer *x = userp;
	size_t n = size * nmemb, keep = n;

	/* Keep the first SND_RESP_MAX bytes and swallow the rest: refusing them
	 * would turn an accepted message into a transport error and a resend. */
	if (x->resp_len + keep > SND_RESP_MAX)
		keep = SND_RESP_MAX - x->resp_len;
	if (keep) {
		if (x->resp_len + keep + 1 > x->resp_cap) {
			size_t cap = x->resp_cap ? x->resp_cap : 1024;
			char *p;
			while (cap < x->resp_len + keep + 1)
				cap *= 2;
			if (!(p = realloc(x->resp, cap)))
				return n; /* the answer is lost, not the message */
			x->resp = p;
			x->resp_cap = cap;
		}
		memcpy(x->resp + x->resp_len, data, keep);
		x->resp_len += keep;
		x->resp[x->resp_len] = '\0';
	}
	return n;
}

/* Decides what to write for a transfer that will not (or did not) get a
 * provider id: a retry, or dead when attempts are used up. */
static void snd_set_retry(gw_sender *s, snd_xfer *x, int later)
{
	if (x->item.attempts + 1 >= s->c->sender.max_attempts) {
		x->out = SND_OUT_FAIL;
		x->out_status = "dead";
	} else {
		x->out = SND_OUT_RETRY;
		x->next_ms = clock_wall_ms() + snd_backoff_ms(s, x->item.attempts, later);
	}
}

static void snd_set_fail(snd_xfer *x, const char *status, const char *error)
{
	x->out = SND_OUT_FAIL;
	x->out_status = status;
	if (error)
		snprintf(x->error, sizeof(x->error), "%s", error);
	x->state = SND_RECORD;
}

/* How long a channel is held after its provider refused our credentials:
 * as long as the longest retry backoff, at most SND_AUTH_HOLD_MS. */
static int64_t snd_auth_hold_ms(const gw_sender *s)
{
	int64_t ms = s->c->sender.backoff_max_ms;
	return ms < SND_AUTH_HOLD_MS ? ms : SND_AUTH_HOLD_MS;
}

/* The provider refused our credentials for x's channel: hold the channel
 * (its waiting messages make no request meanwhile) and say so at error
 * level, once a minute at most: nothing is delivered until an operator fixes
 * the token. */
static void snd_auth_hold(gw_sender *s, const snd_xfer *x)
{
	snd_bucket *b = snd_bucket_get(s, x->item.channel);
	int64_t now = clock_mono_us(), until = now + snd_auth_hold_ms(s) * 1000;

	if (!b)
		return; /* more channels than buckets: each message holds alone */
	if (!b->refused_until_us)
		atomic_fetch_add(&s->refused_channels, 1);
	b->refused_until_us = until;
	if (s->auth_logged_us == 0 || now - s->auth_logged_us >= (int64_t)SND_AUTH_HOLD_MS * 1000) {
		char ch[48], er[300];
		s->auth_logged_us = now;
		log_event(LOG_ERROR, "send_unauthorized",
			  "channel=%s http=%ld error=%s retry_in_ms=%" PRId64 " note=%s",
			  log_kv_str(x->item.channel, ch, sizeof(ch)), x->http, log_kv_str(x->error, er, sizeof(er)),
			  (until - now) / 1000,
			  "\"the provider refused loket's credentials: replies wait in the outbox, not failed;"
			  " fix the channel's token in the config and restart\"");
	}
}

/* x's channel accepted a request: its credentials work (again). */
static void snd_auth_clear(gw_sender *s, const snd_xfer *x)
{
	snd_bucket *b = snd_bucket_get(s, x->item.channel);
	char ch[48];

	if (!b || !b->refused_until_us)
		return;
	b->refused_until_us = 0;
	atomic_fetch_sub(&s->refused_channels, 1);
	log_event(LOG_INFO, "send_authorized", "channel=%s note=%s", log_kv_str(x->item.channel, ch, sizeof(ch)),
		  "\"the provider accepts loket's credentials again\"");
}

/* x's channel is held (b->refused_until_us > now): x waits until the hold
 * ends, without a request. */
static void snd_auth_wait(snd_xfer *x, const snd_bucket *b, int64_t now_us)
{
	x->cls_name = gw_send_class_name(GW_SEND_UNAUTHORIZED);
	x->out = SND_OUT_HOLD;
	x->next_ms = clock_wall_ms() + (b->refused_until_us - now_us) / 1000 + 1;
	snprintf(x->error, sizeof(x->error), "not sent: the provider refused loket's credentials");
	x->state = SND_RECORD;
}

/* Builds the request and hands it to curl. On failure the xfer is marked for
 * recording with the reason. */
static void snd_start(gw_sender *s, snd_xfer *x)
{
	char err[256] = "";
	CURL *e = NULL;

	if (x->ops->build(s->c, &x->item, &x->req, err, sizeof(err)) != 0) {
		x->cls_name = gw_send_class_name(GW_SEND_PERMANENT);
		snd_set_fail(x, "failed", NULL);
		snprintf(x->error, sizeof(x->error), "cannot build request: %.200s", err);
		return;
	}
	{
		int owned = 0;
		struct curl_slist *l = snd_headers(s, &x->req, &owned);
		if (!l)
			goto oom;
		if (owned)
			x->hdrs = l;
		else
			x->cached = l;
	}
	if (!(e = snd_easy_get(s)))
		goto oom;
	curl_easy_setopt(e, CURLOPT_URL, x->req.url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs ? x->hdrs : x->cached);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->c->sender.timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->c->sender.timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, snd_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_err);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "loket");
	if (x->req.body) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->req.body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req.body);
	}
	if (x->req.userpwd) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERPWD, x->req.userpwd);
	}
	if (curl_multi_add_handle(s->multi, e) != CURLM_OK)
		goto oom;
	x->easy = e;
	x->start_us = clock_mono_us();
	x->attempted = 1;
	x->state = SND_ACTIVE;
	atomic_fetch_add(&s->in_flight, 1);
	return;
oom:
	snd_easy_put(s, e);
	/* nothing was sent: try again later rather than lose it */
	x->cls_name = "local_error";
	snprintf(x->error, sizeof(x->error), "out of memory preparing the request");
	snd_set_retry(s, x, 0);
	x->state = SND_RECORD;
}

static void snd_lat_observe(gw_sender *s, int64_t us)
{
	size_t b = 0;
	double secs = (double)us / 1e6;

	while (b < GW_SEND_LAT_BUCKETS && secs > snd_lat_bounds[b])
		b++;
	atomic_fetch_add(&s->lat_bucket[b], 1);
	atomic_fetch_add(&s->lat_count, 1);
	atomic_fetch_add(&s->lat_sum_us, (unsigned long long)(us > 0 ? us : 0));
}

/* Replaces every occurrence of secret in buf (NUL-terminated) with
 * "[secret]": a provider's error message is logged and stored, and one that
 * echoed our token must not carry it there. Secrets under 8 bytes (the mark's
 * length, so buf never grows) are left alone: they would match ordinary
 * words. */
static void snd_scrub(char *buf, const char *secret)
{
	static const char mark[] = "[secret]";
	size_t sl = strlen(secret), ml = sizeof(mark) - 1;
	char *p = buf;

	if (sl < ml)
		return;
	while ((p = strstr(p, secret))) {
		memcpy(p, mark, ml);
		memmove(p + ml, p + sl, strlen(p + sl) + 1);
		p += ml; /* past the mark, even were the secret "[secret]" */
	}
}

/* A finished transfer: classify it and mark it for recording. */
static void snd_finish(gw_sender *s, snd_xfer *x, CURLcode res)
{
	gw_send_class cls;
	char err[200] = "";
	int64_t us = clock_mono_us() - x->start_us;

	x->http = 0;
	if (res == CURLE_OK)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->http);
	curl_multi_remove_handle(s->multi, x->easy);
	snd_easy_put(s, x->easy);
	x->easy = NULL;
	atomic_fetch_sub(&s->in_flight, 1);
	x->ms = us / 1000;
	snd_lat_observe(s, us);

	cls = x->ops->classify(x->http, x->resp, x->resp_len, x->provider_id, sizeof(x->provider_id), err, sizeof(err));
	x->cls_name = gw_send_class_name(cls);
	if (res != CURLE_OK)
		snprintf(x->error, sizeof(x->error), "%s", x->curl_err[0] ? x->curl_err : curl_easy_strerror(res));
	else
		snprintf(x->error, sizeof(x->error), "%s", err);
	snd_scrub(x->error, s->c->whatsapp.access_token);
	snd_scrub(x->error, s->c->whatsapp.app_secret);
	switch (cls) {
	case GW_SEND_OK:
		x->out = SND_OUT_SENT;
		if (atomic_load(&s->refused_channels))
			snd_auth_clear(s, x);
		break;
	case GW_SEND_RETRY:
		snd_set_retry(s, x, 0);
		break;
	case GW_SEND_RETRY_LATER:
		snd_set_retry(s, x, 1);
		break;
	case GW_SEND_WINDOW_CLOSED:
		x->out = SND_OUT_FAIL;
		x->out_status = "window_closed";
		break;
	case GW_SEND_UNAUTHORIZED:
		/* not the message's fault: it waits, and so do the channel's others */
		x->out = SND_OUT_HOLD;
		x->next_ms = clock_wall_ms() + snd_auth_hold_ms(s);
		snd_auth_hold(s, x);
		break;
	case GW_SEND_PERMANENT:
	default:
		x->out = SND_OUT_FAIL;
		x->out_status = "failed";
		break;
	}
	x->state = SND_RECORD;
}

/* Fills r with what the store must record for x. */
static void snd_result_of(const snd_xfer *x, store_outbox_result *r)
{
	memset(r, 0, sizeof(*r));
	r->id = x->item.id;
	r->error = x->error;
	switch (x->out) {
	case SND_OUT_SENT:
		r->outcome = STORE_OUTBOX_SENT;
		r->provider_id = x->provider_id[0] ? x->provider_id : NULL;
		r->error = NULL;
		break;
	case SND_OUT_RETRY:
	case SND_OUT_HOLD:
		r->outcome = x->out == SND_OUT_RETRY ? STORE_OUTBOX_RETRY : STORE_OUTBOX_HOLD;
		r->next_ms = x->next_ms;
		if (x->out == SND_OUT_HOLD && !x->attempted)
			r->error = NULL; /* no request: the provider's last refusal stays the row's error */
		break;
	case SND_OUT_FAIL:
	default:
		r->outcome = STORE_OUTBOX_FAIL;
		r->status = x->out_status;
		break;
	}
}

/* Counts and logs x's outcome once the store recorded it (rc is its item
 * result: STORE_OK, or STORE_ERR_NOTFOUND when the row was no longer ours). */
static void snd_recorded(gw_sender *s, snd_xfer *x, int rc, int64_t now)
{
	char to[64] = "", ch[48] = "", pid[300] = "", er[300] = "";
	enum log_level lvl = LOG_WARN;

	if (x->out == SND_OUT_SENT)
		lvl = LOG_INFO;
	else if (x->out == SND_OUT_HOLD && !x->attempted)
		lvl = LOG_DEBUG; /* one of many the channel's send_unauthorized line speaks for */

	if (rc != STORE_OK) {
		/* the row is gone or no longer ours: nothing left to record */
		log_event(LOG_WARN, "send_record_lost", "id=%" PRId64 " rc=%s", x->item.id, store_rc_str(rc));
	}
	if (x->out == SND_OUT_RETRY || x->out == SND_OUT_HOLD) {
		/* wake for it on time rather than at the next tick */
		int64_t due_us = clock_mono_us() + (x->next_ms - now) * 1000 + 1000;
		if (due_us < s->next_retry_us)
			s->next_retry_us = due_us;
	}
	switch (x->out) {
	case SND_OUT_SENT:
		atomic_fetch_add(&s->sent, 1);
		break;
	case SND_OUT_RETRY:
		atomic_fetch_add(&s->retried, 1);
		break;
	case SND_OUT_HOLD:
		atomic_fetch_add(&s->unauthorized, 1);
		break;
	case SND_OUT_FAIL:
	default:
		if (strcmp(x->out_status, "dead") == 0)
			atomic_fetch_add(&s->dead, 1);
		else if (strcmp(x->out_status, "window_closed") == 0)
			atomic_fetch_add(&s->window_closed, 1);
		else
			atomic_fetch_add(&s->failed, 1);
		break;
	}
	if (!log_enabled(lvl))
		return; /* at 20,000 replies a second the masking alone shows in a profile */
	log_mask(x->item.address, to, sizeof(to));
	log_kv_str(x->item.channel, ch, sizeof(ch));
	log_kv_str(x->provider_id, pid, sizeof(pid));
	log_kv_str(x->error, er, sizeof(er));
	switch (x->out) {
	case SND_OUT_SENT:
		log_event(LOG_INFO, "send",
			  "id=%" PRId64 " conv=%" PRId64
			  " channel=%s to=%s outcome=sent http=%ld attempt=%d ms=%" PRId64 " provider_id=%s",
			  x->item.id, x->item.conversation_id, ch, to, x->http, x->item.attempts + 1, x->ms, pid);
		break;
	case SND_OUT_RETRY:
		log_event(LOG_WARN, "send",
			  "id=%" PRId64 " conv=%" PRId64
			  " channel=%s to=%s outcome=retry class=%s http=%ld attempt=%d ms=%" PRId64
			  " next_in_ms=%" PRId64 " error=%s",
			  x->item.id, x->item.conversation_id, ch, to, x->cls_name, x->http, x->item.attempts + 1,
			  x->ms, x->next_ms - now, er);
		break;
	case SND_OUT_HOLD:
		log_event(lvl, "send",
			  "id=%" PRId64 " conv=%" PRId64 " channel=%s to=%s outcome=held class=%s http=%ld ms=%" PRId64
			  " next_in_ms=%" PRId64 " error=%s",
			  x->item.id, x->item.conversation_id, ch, to, x->cls_name, x->http, x->ms, x->next_ms - now,
			  er);
		break;
	case SND_OUT_FAIL:
	default:
		log_event(LOG_WARN, "send",
			  "id=%" PRId64 " conv=%" PRId64
			  " channel=%s to=%s outcome=%s class=%s http=%ld attempt=%d ms=%" PRId64 " error=%s",
			  x->item.id, x->item.conversation_id, ch, to, x->out_status, x->cls_name ? x->cls_name : "-",
			  x->http, x->item.attempts + x->attempted, x->ms, er);
		break;
	}
}

/* ---- the loop's steps ---- */

static int snd_have(const gw_sender *s, int64_t id)
{
	for (const snd_xfer *x = s->head; x; x = x->next)
		if (x->item.id == id)
			return 1;
	return 0;
}

static int64_t snd_lease_ms(const gw_sender *s)
{
	int64_t ms = (int64_t)s->c->sender.timeout_ms * 2 + 5000;
	/* a full set of slots waiting for the rate limit must not outlive its lease */
	if (s->c->whatsapp.send_rate > 0)
		ms += (int64_t)s->c->sender.concurrency * 1000 / s->c->whatsapp.send_rate;
	return ms;
}

static size_t snd_cap(const gw_sender *s)
{
	return s->c->sender.concurrency > 0 ? (size_t)s->c->sender.concurrency : 1;
}

static void snd_append(gw_sender *s, snd_xfer *x)
{
	x->next = NULL;
	if (s->tail)
		s->tail->next = x;
	else
		s->head = x;
	s->tail = x;
	s->n_items++;
}

size_t gw_sender_held(gw_sender *s)
{
	size_t n;

	pthread_mutex_lock(&s->mb_lock);
	n = s->mb_held;
	pthread_mutex_unlock(&s->mb_lock);
	return n;
}

/* The thread gives back n slots (transfers it freed). */
static void snd_release(gw_sender *s, size_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&s->mb_lock);
	s->mb_held -= n < s->mb_held ? n : s->mb_held;
	pthread_mutex_unlock(&s->mb_lock);
}

/* Asks for a store turn (with a lease when lease is set). The runner is
 * called only when no request is already waiting, under mb_lock so a runner
 * being detached is never called after gw_sender_set_runner returned. */
static void snd_ask(gw_sender *s, int lease)
{
	pthread_mutex_lock(&s->mb_lock);
	int was = s->mb_want;
	s->mb_want = 1;
	if (lease)
		s->mb_want_lease = 1;
	if (!was && s->runner)
		s->runner(s->runner_arg);
	pthread_mutex_unlock(&s->mb_lock);
}

/* Takes what the store turns handed back: counts and frees the recorded
 * outcomes, and turns the leased rows into waiting transfers. Returns 1 when
 * the last lease was full (more may be due). */
static int snd_take_mail(gw_sender *s)
{
	snd_xfer *back, *fresh, *x, *next;
	size_t freed = 0;
	int more;
	int64_t now = clock_wall_ms();

	pthread_mutex_lock(&s->mb_lock);
	back = s->mb_back;
	s->mb_back = NULL;
	/* leased rows whose round is durable; the others wait for the syncer */
	fresh = NULL;
	for (snd_xfer **pp = &s->mb_new; (x = *pp);) {
		if (x->seq <= s->mb_synced || atomic_load(&s->draining)) {
			*pp = x->next;
			x->next = fresh;
			fresh = x;
		} else {
			pp = &x->next;
		}
	}
	more = s->mb_more;
	s->mb_more = 0;
	pthread_mutex_unlock(&s->mb_lock);

	for (x = back; x; x = next) {
		next = x->next;
		snd_recorded(s, x, x->rec_rc, now);
		snd_xfer_free(s, x);
		freed++;
	}
	for (x = fresh; x; x = next) {
		const gw_channel_ops *ops = gw_channel_lookup(x->item.channel);

		next = x->next;
		if (snd_have(s, x->item.id) || atomic_load(&s->draining)) {
			/* its lease ran out while we still hold it, or we are stopping:
			 * it stays leased and comes back when the lease ends */
			snd_xfer_free(s, x);
			freed++;
			continue;
		}
		if (ops && ops->build && ops->configured && !ops->configured(s->c)) {
			/* Credentials went away since it was queued: leave it leased; it
			 * comes back when the lease ends, and goes once configured. */
			if (!s->warned_unconfigured) {
				char ch[48];
				log_event(LOG_WARN, "send_unconfigured", "channel=%s id=%" PRId64 " note=%s",
					  log_kv_str(x->item.channel, ch, sizeof(ch)), x->item.id,
					  "\"outbox items wait until the channel has credentials\"");
				s->warned_unconfigured = 1;
			}
			snd_xfer_free(s, x);
			freed++;
			continue;
		}
		x->ops = ops;
		x->state = SND_WAITING;
		if (!ops || !ops->build || !ops->classify) {
			char msg[80];
			snprintf(msg, sizeof(msg), "no sending channel \"%s\"", x->item.channel);
			snd_set_fail(x, "failed", msg);
		}
		snd_append(s, x);
	}
	snd_release(s, freed);
	return more;
}

/* Starts waiting items their channel lets go; returns the microseconds until
 * the next one may (or -1 when nothing waits on a rate limit). */
static int64_t snd_start_waiting(gw_sender *s)
{
	int64_t wait_min = -1, now_ms = clock_wall_ms();

	for (snd_xfer *x = s->head; x; x = x->next) {
		snd_bucket *b;
		int64_t wait, now_us;

		if (x->state != SND_WAITING)
			continue;
		if (strcmp(x->ops->name, "whatsapp") == 0 && x->item.last_inbound_ms > 0 &&
		    now_ms - x->item.last_inbound_ms > SND_WINDOW_MS) {
			x->cls_name = gw_send_class_name(GW_SEND_WINDOW_CLOSED);
			snd_set_fail(x, "window_closed",
				     "not sent: more than 24 hours since the citizen's last message");
			continue;
		}
		b = snd_bucket_get(s, x->item.channel);
		now_us = clock_mono_us();
		if (b && b->refused_until_us > now_us) {
			snd_auth_wait(x, b, now_us);
			continue;
		}
		wait = snd_bucket_take(b, now_us);
		if (wait > 0) {
			if (wait_min < 0 || wait < wait_min)
				wait_min = wait;
			continue;
		}
		snd_start(s, x);
	}
	return wait_min;
}

static void snd_collect(gw_sender *s)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(s->multi, &left))) {
		snd_xfer *x = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x)
			snd_finish(s, x, m->data.result);
	}
}

/* Moves every finished transfer to the mailbox for the next store turn.
 * Returns how many. */
static size_t snd_post_outcomes(gw_sender *s)
{
	snd_xfer *x = s->head, *prev = NULL, *list = NULL, *last = NULL;
	size_t n = 0;

	while (x) {
		snd_xfer *next = x->next;
		if (x->state == SND_RECORD) {
			snd_unlink(s, x, prev);
			x->next = list;
			list = x;
			if (!last)
				last = x;
			n++;
		} else {
			prev = x;
		}
		x = next;
	}
	if (!n)
		return 0;
	pthread_mutex_lock(&s->mb_lock);
	last->next = s->mb_out;
	s->mb_out = list;
	pthread_mutex_unlock(&s->mb_lock);
	return n;
}

/* ---- the store turn ---- */

int gw_sender_turn_take(gw_sender *s, gw_sender_turn *t, int lease)
{
	snd_xfer *list, *x;
	size_t n = 0, k = 0, cap;

	memset(t, 0, sizeof(*t));
	if (!s)
		return 0;
	cap = snd_cap(s);
	pthread_mutex_lock(&s->mb_lock);
	list = s->mb_out;
	s->mb_out = NULL;
	for (x = list; x; x = x->next)
		n++;
	/* every outcome recorded in this turn frees its slot */
	if ((lease || s->mb_want_lease || n) && !atomic_load(&s->draining) && s->mb_held < cap + n)
		t->lease_max = cap + n - s->mb_held;
	s->mb_want = s->mb_want_lease = 0;
	if (n > s->rec_cap) {
		store_outbox_result *v = realloc(s->rec, n * sizeof(*v));
		int *r = v ? realloc(s->rec_rc, n * sizeof(*r)) : NULL;
		if (v)
			s->rec = v;
		if (r)
			s->rec_rc = r;
		if (!v || !r) {
			/* out of memory: the outcomes wait for the next turn */
			s->mb_out = list;
			list = NULL;
			n = 0;
		} else {
			s->rec_cap = n;
		}
	}
	if (n > 0 || t->lease_max > 0)
		s->mb_turns++; /* the caller gives it back */
	pthread_mutex_unlock(&s->mb_lock);
	for (x = list; x; x = x->next)
		snd_result_of(x, &s->rec[k++]);
	t->results = s->rec;
	t->result_rc = s->rec_rc;
	t->n_results = n;
	t->lease_ms = snd_lease_ms(s);
	t->taken = list;
	return n > 0 || t->lease_max > 0;
}

int gw_sender_turn_run(store *st, gw_sender_turn *t, int64_t now_ms)
{
	t->rc_results = t->rc_lease = STORE_OK;
	t->items = NULL;
	t->n_items = 0;
	if (t->n_results)
		t->rc_results = store_outbox_results(st, t->results, t->n_results, now_ms, t->result_rc);
	if (t->rc_results != STORE_OK)
		return t->rc_results; /* the slots are not free: no lease either */
	if (t->lease_max > t->n_fresh)
		t->rc_lease =
		    store_outbox_lease(st, now_ms, t->lease_ms, t->lease_max - t->n_fresh, &t->items, &t->n_items);
	return t->rc_lease;
}

void gw_sender_turn_give(gw_sender *s, gw_sender_turn *t, int rc)
{
	snd_xfer *list = t->taken, *fresh = NULL, *x, *next;
	int recorded = rc == STORE_OK && t->rc_results == STORE_OK;
	size_t k = 0, n_fresh = 0, n_items = rc == STORE_OK && t->rc_lease == STORE_OK ? t->n_items : 0;
	size_t n_written = rc == STORE_OK ? t->n_fresh : 0; /* leased as written: kept only if committed */
	/* the rows leased as they were written first: they are the oldest */
	store_outbox_item *src[2] = {t->fresh, t->items};
	size_t nsrc[2] = {n_written, n_items};

	for (int a = 0; a < 2; a++)
		for (size_t i = 0; i < nsrc[a]; i++) {
			if (!(x = calloc(1, sizeof(*x))))
				break; /* the rest stay leased and come back after the lease */
			x->item = src[a][i];
			x->seq = t->seq;
			src[a][i].text = src[a][i].payload = NULL; /* owned by x now */
			x->next = fresh;
			fresh = x;
			n_fresh++;
		}
	n_items += n_written;
	store_outbox_items_free(t->items, t->n_items);
	store_outbox_items_free(t->fresh, t->n_fresh);
	t->items = t->fresh = NULL;
	t->n_items = t->n_fresh = 0;
	if (!recorded && list) {
		int why = rc != STORE_OK ? rc : t->rc_results;
		if (s->record_failures++ % SND_RECORD_LOG_EVERY == 0)
			log_event(LOG_WARN, "send_record_failed", "outcomes=%zu rc=%s tries=%d", t->n_results,
				  store_rc_str(why), s->record_failures);
	} else if (list) {
		s->record_failures = 0;
	}

	pthread_mutex_lock(&s->mb_lock);
	for (x = list; x; x = next) {
		next = x->next;
		if (recorded) {
			x->rec_rc = t->result_rc[k++];
			x->next = s->mb_back;
			s->mb_back = x;
		} else {
			/* not recorded: offered again on the next turn */
			x->next = s->mb_out;
			s->mb_out = x;
		}
	}
	while (fresh) {
		x = fresh;
		fresh = x->next;
		x->next = s->mb_new;
		s->mb_new = x;
	}
	s->mb_held += n_fresh;
	s->mb_turns--;
	if (t->lease_max && n_items == t->lease_max)
		s->mb_more = 1;
	int ready = t->seq <= s->mb_synced;
	pthread_mutex_unlock(&s->mb_lock);
	t->taken = NULL;
	if (list || (n_fresh && ready) || (t->lease_max && n_items == t->lease_max))
		curl_multi_wakeup(s->multi);
}

void gw_sender_synced(gw_sender *s, int64_t seq)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mb_lock);
	int wake = seq > s->mb_synced && s->mb_new;
	if (seq > s->mb_synced)
		s->mb_synced = seq;
	pthread_mutex_unlock(&s->mb_lock);
	if (wake)
		curl_multi_wakeup(s->multi);
}

void gw_sender_set_runner(gw_sender *s, gw_sender_runner_fn fn, void *arg)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mb_lock);
	s->runner = fn;
	s->runner_arg = arg;
	if (fn && s->mb_want)
		fn(arg);
	pthread_mutex_unlock(&s->mb_lock);
}

/* own_store: the thread runs the turn itself on its own handle, at most once
 * every SND_WRITE_GAP_MS (each is a turn of the write lock others need). */
static void snd_own_turn(gw_sender *s, int force)
{
	gw_sender_turn t;
	int64_t now_us = clock_mono_us();

	if (!force && now_us - s->last_turn_us < SND_WRITE_GAP_MS * 1000)
		return;
	pthread_mutex_lock(&s->mb_lock);
	int want = s->mb_want || s->mb_out;
	pthread_mutex_unlock(&s->mb_lock);
	if (!want)
		return;
	s->last_turn_us = now_us;
	if (!gw_sender_turn_take(s, &t, 0))
		return;
	int rc = gw_sender_turn_run(s->st, &t, clock_wall_ms());
	if (rc != STORE_OK && t.rc_results == STORE_OK && t.rc_lease != STORE_OK) {
		char er[200];
		log_event(LOG_WARN, "send_lease_failed", "rc=%s detail=%s", store_rc_str(rc),
			  log_kv_str(store_errmsg(s->st), er, sizeof(er)));
	}
	gw_sender_turn_give(s, &t, STORE_OK);
}

/* 1 while a finished transfer's outcome is not recorded yet (waiting, or in
 * a turn being run), or anything handed back is not taken. A turn counts:
 * between take and give its outcomes are on no list, and a sender that
 * stopped then would miss counting what the turn recorded. */
static int snd_mail_pending(gw_sender *s)
{
	pthread_mutex_lock(&s->mb_lock);
	int pending = s->mb_out || s->mb_back || s->mb_new || s->mb_turns > 0;
	pthread_mutex_unlock(&s->mb_lock);
	return pending;
}

static void *snd_main(void *arg)
{
	gw_sender *s = arg;
	pthread_setname_np(pthread_self(), "loket-sender");

	atomic_store(&s->running, 1);
	snd_ask(s, 1); /* lease at once on start */
	for (;;) {
		int64_t now_us, wait_us, timeout_ms = SND_TICK_MS;
		int still, draining = atomic_load(&s->draining), lease = 0;

		if (s->own_store)
			snd_own_turn(s, draining);
		if (snd_take_mail(s) && !draining)
			lease = 1; /* a full lease: more may be due right away */
		if (draining) {
			/* items not yet started stay leased in the store: the next run sends them */
			snd_xfer *x = s->head, *prev = NULL;
			size_t freed = 0;
			while (x) {
				snd_xfer *next = x->next;
				if (x->state == SND_WAITING) {
					snd_unlink(s, x, prev);
					snd_xfer_free(s, x);
					freed++;
				} else {
					prev = x;
				}
				x = next;
			}
			snd_release(s, freed);
		}
		wait_us = snd_start_waiting(s);
		curl_multi_perform(s->multi, &still);
		snd_collect(s);
		size_t posted = snd_post_outcomes(s);

		now_us = clock_mono_us();
		if (!draining &&
		    (atomic_exchange(&s->kicked, 0) || now_us >= s->next_lease_us || now_us >= s->next_retry_us)) {
			lease = 1;
			s->next_lease_us = now_us + SND_TICK_MS * 1000;
			if (s->next_retry_us <= now_us)
				s->next_retry_us = INT64_MAX; /* later ones are caught by the tick */
		}
		/* each outcome frees a slot, and may make its conversation's next
		 * message due: the turn that records it also leases */
		if (posted || lease)
			snd_ask(s, !draining);
		if (s->own_store && (posted || lease)) {
			snd_own_turn(s, draining);
			if (snd_take_mail(s) && !draining)
				snd_ask(s, 1);
		}

		/* draining: only started and finished transfers are left */
		if (draining && ((s->head == NULL && !snd_mail_pending(s)) ||
				 clock_mono_us() >= atomic_load(&s->drain_deadline_us)))
			break;
		if (wait_us >= 0 && wait_us / 1000 + 1 < timeout_ms)
			timeout_ms = wait_us / 1000 + 1;
		if (s->own_store && snd_mail_pending(s)) {
			/* store work waits: come back when the next turn is allowed */
			int64_t until = (s->last_turn_us + SND_WRITE_GAP_MS * 1000 - clock_mono_us() + 999) / 1000;
			if (until < timeout_ms)
				timeout_ms = until > 0 ? until : 0;
		}
		if (!draining && s->next_retry_us != INT64_MAX) {
			int64_t until = (s->next_retry_us - clock_mono_us()) / 1000 + 1;
			if (until < timeout_ms)
				timeout_ms = until > 0 ? until : 0;
		}
		if (draining) {
			int64_t left = (atomic_load(&s->drain_deadline_us) - clock_mono_us()) / 1000 + 1;
			if (left < timeout_ms)
				timeout_ms = left > 0 ? left : 0;
			if (timeout_ms > 5)
				timeout_ms = 5; /* the runner records our outcomes: look again soon */
		}
		curl_multi_poll(s->multi, NULL, 0, (int)timeout_ms, NULL);
	}

	/* what finished in time is in the mailbox: own_store records it now, a
	 * runner on its last turn; the rest is given up (retried after the lease) */
	if (s->own_store) {
		snd_own_turn(s, 1);
		snd_take_mail(s);
	}
	while (s->head) {
		snd_xfer *x = s->head;
		if (x->state == SND_ACTIVE)
			log_event(LOG_WARN, "send_abandoned", "id=%" PRId64 " note=%s", x->item.id,
				  "\"stopped while in flight; retried after its lease\"");
		snd_unlink(s, x, NULL);
		snd_xfer_free(s, x);
		snd_release(s, 1);
	}
	atomic_store(&s->running, 0);
	return NULL;
}

/* ---- public ---- */

static void snd_free_list(gw_sender *s, snd_xfer *x)
{
	while (x) {
		snd_xfer *next = x->next;
		snd_xfer_free(s, x);
		x = next;
	}
}

void gw_sender_free(gw_sender *s)
{
	if (!s)
		return;
	gw_sender_stop(s, 0);
	snd_free_list(s, s->mb_out);
	snd_free_list(s, s->mb_back);
	snd_free_list(s, s->mb_new);
	snd_free_list(s, s->head);
	while (s->n_idle)
		curl_easy_cleanup(s->idle[--s->n_idle]);
	free(s->idle);
	if (s->multi)
		curl_multi_cleanup(s->multi);
	for (size_t i = 0; i < s->n_hdr_cache; i++)
		curl_slist_free_all(s->hdr_cache[i].list);
	store_close(s->st);
	free(s->rec);
	free(s->rec_rc);
	pthread_mutex_destroy(&s->mb_lock);
	free(s);
	curl_global_cleanup();
}

gw_sender *gw_sender_start(const cfg *c, int own_store, char *err, size_t errlen)
{
	gw_sender *s = NULL;
	char serr[256] = "";

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed");
		return NULL;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		snprintf(err, errlen, "out of memory");
		curl_global_cleanup();
		return NULL;
	}
	s->c = c;
	s->own_store = own_store;
	s->next_retry_us = INT64_MAX;
	pthread_mutex_init(&s->mb_lock, NULL);
	s->rng = (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
	if (!s->rng)
		s->rng = 88172645463325252ULL;
	if (own_store) {
		store_opts so;
		memset(&so, 0, sizeof(so));
		so.path = c->store.path;
		/* The sender's own commits are not fsynced (synchronous=NORMAL on
		 * this handle): losing its last leases or outcomes in a power cut
		 * can only cause a resend, which at-least-once delivery accepts
		 * (docs/sender.md); an fsync here would hold the write lock others
		 * wait for. */
		so.synchronous_full = 0;
		so.busy_timeout_ms = c->store.busy_timeout_ms;
		if (!(s->st = store_open(&so, serr, sizeof(serr)))) {
			snprintf(err, errlen, "sender: cannot open the store: %s", serr);
			goto fail;
		}
	}
	if (!(s->multi = curl_multi_init())) {
		snprintf(err, errlen, "sender: curl_multi_init failed");
		goto fail;
	}
	/* Keep a connection open for every slot. Left alone, curl sizes its
	 * connection cache at four per easy handle currently added, which drops
	 * when a batch of transfers has just finished: it then closed a
	 * connection for about one request in fifty (a TCP, and with the real
	 * provider a TLS, handshake each time). */
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)snd_cap(s));
	if (pthread_create(&s->thread, NULL, snd_main, s) != 0) {
		snprintf(err, errlen, "sender: cannot start its thread");
		goto fail;
	}
	s->thread_started = 1;
	atomic_store(&s->running, 1);
	log_event(LOG_INFO, "sender_started", "concurrency=%d timeout_ms=%d max_attempts=%d whatsapp_rate=%d store=%s",
		  c->sender.concurrency, c->sender.timeout_ms, c->sender.max_attempts, c->whatsapp.send_rate,
		  own_store ? "own" : "writer");
	return s;
fail:
	gw_sender_free(s);
	return NULL;
}

void gw_sender_wake(gw_sender *s)
{
	if (!s)
		return;
	atomic_store(&s->kicked, 1);
	curl_multi_wakeup(s->multi);
}

void gw_sender_stop(gw_sender *s, int drain_ms)
{
	if (!s || !s->thread_started || s->thread_joined)
		return;
	atomic_store(&s->drain_deadline_us, clock_mono_us() + (int64_t)(drain_ms > 0 ? drain_ms : 0) * 1000);
	atomic_store(&s->draining, 1);
	curl_multi_wakeup(s->multi);
	pthread_join(s->thread, NULL);
	s->thread_joined = 1;
	log_event(LOG_INFO, "sender_stopped", "sent=%llu retried=%llu failed=%llu dead=%llu window_closed=%llu",
		  (unsigned long long)atomic_load(&s->sent), (unsigned long long)atomic_load(&s->retried),
		  (unsigned long long)atomic_load(&s->failed), (unsigned long long)atomic_load(&s->dead),
		  (unsigned long long)atomic_load(&s->window_closed));
}

void gw_sender_stats_get(gw_sender *s, gw_sender_stats *st)
{
	uint64_t cum = 0;

	memset(st, 0, sizeof(*st));
	if (!s)
		return;
	st->sent = atomic_load(&s->sent);
	st->retried = atomic_load(&s->retried);
	st->failed = atomic_load(&s->failed);
	st->dead = atomic_load(&s->dead);
	st->window_closed = atomic_load(&s->window_closed);
	st->unauthorized = atomic_load(&s->unauthorized);
	st->credentials_refused = atomic_load(&s->refused_channels) > 0;
	st->in_flight = atomic_load(&s->in_flight);
	st->lat_count = atomic_load(&s->lat_count);
	st->lat_sum_us = atomic_load(&s->lat_sum_us);
	for (size_t i = 0; i <= GW_SEND_LAT_BUCKETS; i++) {
		cum += atomic_load(&s->lat_bucket[i]);
		st->lat_bucket[i] = cum;
	}
	st->running = atomic_load(&s->running);
}
