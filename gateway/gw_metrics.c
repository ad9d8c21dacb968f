/* gw_metrics: atomic counters and fixed-bucket histograms for /metrics.
 *
 * The writer thread counts messages, intents and outcomes; the lws thread counts
 * rejected requests and webhook latencies; the scrape (on the lws thread) reads
 * everything with relaxed atomic loads, which is all Prometheus needs. Label
 * sets are fixed tables except intents, which come from the loaded intent set
 * and live in a small locked table. */
#include "gateway/gw_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bot/bot.h"

static const char *const gw_metrics_channels[] = {"whatsapp", "twilio", "kannel", "web", "cli", "other"};
#define GW_M_CHANNELS (sizeof(gw_metrics_channels) / sizeof(gw_metrics_channels[0]))

static const char *const gw_metrics_outcomes[] = {"queued", "sandboxed", "pushed"};
#define GW_M_OUTCOMES (sizeof(gw_metrics_outcomes) / sizeof(gw_metrics_outcomes[0]))

static const char *const gw_metrics_reasons[GW_REJ__COUNT] = {
    [GW_REJ_BAD_SIGNATURE] = "bad_signature", [GW_REJ_BAD_VERIFY] = "bad_verify_token",
    [GW_REJ_MALFORMED] = "malformed",	      [GW_REJ_TOO_LARGE] = "too_large",
    [GW_REJ_NO_LENGTH] = "no_length",	      [GW_REJ_DUPLICATE] = "duplicate",
    [GW_REJ_NOT_FOUND] = "not_found",	      [GW_REJ_METHOD] = "method_not_allowed",
    [GW_REJ_STORE] = "store_error",	      [GW_REJ_OVERLOAD] = "overload",
    [GW_REJ_BAD_REQUEST] = "bad_request",     [GW_REJ_TOO_LONG] = "too_long",
    [GW_REJ_SLOW_CLIENT] = "slow_client",
};

/* Upper bounds of loket_webhook_seconds, in seconds. */
static const double gw_metrics_hook_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						0.05,	0.1,   0.25,   0.5,   1.0,  2.5};
#define GW_M_HOOK_BUCKETS (sizeof(gw_metrics_hook_bounds) / sizeof(gw_metrics_hook_bounds[0]))

#define GW_M_INTENTS_MAX 1024

struct gw_metrics_intent {
	char name[BOT_NAME_MAX];
	uint64_t n;
};

struct gw_metrics {
	uint64_t inbound[GW_M_CHANNELS];
	uint64_t outbound[GW_M_CHANNELS][GW_M_OUTCOMES];
	uint64_t rejected[GW_REJ__COUNT];
	uint64_t fallbacks, escalations;
	uint64_t hook_bucket[GW_M_HOOK_BUCKETS + 1]; /* per bucket, not cumulative; +Inf last */
	uint64_t hook_count;
	uint64_t hook_sum_ns;

	pthread_mutex_t lock; /* guards intents, n_intents, intent_other */
	struct gw_metrics_intent *intents;
	size_t n_intents;
	uint64_t intent_other;
};

#define GW_M_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define GW_M_GET(p) __atomic_load_n((p), __ATOMIC_RELAXED)

gw_metrics *gw_metrics_new(void)
{
	gw_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->intents = calloc(GW_M_INTENTS_MAX, sizeof(*m->intents));
	if (!m->intents) {
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void gw_metrics_free(gw_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->intents);
	free(m);
}

static size_t gw_metrics_channel_idx(const char *channel)
{
	for (size_t i = 0; i + 1 < GW_M_CHANNELS; i++)
		if (channel && strcmp(channel, gw_metrics_channels[i]) == 0)
			return i;
	return GW_M_CHANNELS - 1;
}

void gw_metrics_reject(gw_metrics *m, gw_reject why)
{
	if (m && why >= 0 && why < GW_REJ__COUNT)
		GW_M_ADD(&m->rejected[why], 1);
}

void gw_metrics_inbound(gw_metrics *m, const char *channel)
{
	if (m)
		GW_M_ADD(&m->inbound[gw_metrics_channel_idx(channel)], 1);
}

void gw_metrics_outbound(gw_metrics *m, const char *channel, const char *outcome)
{
	if (!m || !outcome)
		return;
	for (size_t o = 0; o < GW_M_OUTCOMES; o++)
		if (strcmp(outcome, gw_metrics_outcomes[o]) == 0) {
			GW_M_ADD(&m->outbound[gw_metrics_channel_idx(channel)][o], 1);
			return;
		}
}

void gw_metrics_intent(gw_metrics *m, const char *intent)
{
	size_t i;

	if (!m || !intent || !*intent)
		return;
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->n_intents; i++)
		if (strcmp(m->intents[i].name, intent) == 0)
			break;
	if (i == m->n_intents) {
		if (m->n_intents == GW_M_INTENTS_MAX || strlen(intent) >= BOT_NAME_MAX) {
			m->intent_other++;
			goto out;
		}
		memcpy(m->intents[i].name, intent, strlen(intent) + 1);
		m->n_intents++;
	}
	m->intents[i].n++;
out:
	pthread_mutex_unlock(&m->lock);
}

void gw_metrics_fallback(gw_metrics *m)
{
	if (m)
		GW_M_ADD(&m->fallbacks, 1);
}

void gw_metrics_escalation(gw_metrics *m)
{
	if (m)
		GW_M_ADD(&m->escalations, 1);
}

void gw_metrics_webhook_seconds(gw_metrics *m, double s)
{
	size_t b;

	if (!m)
		return;
	if (s < 0)
		s = 0;
	for (b = 0; b < GW_M_HOOK_BUCKETS; b++)
		if (s <= gw_metrics_hook_bounds[b])
			break;
	GW_M_ADD(&m->hook_bucket[b], 1);
	GW_M_ADD(&m->hook_count, 1);
	GW_M_ADD(&m->hook_sum_ns, (uint64_t)(s * 1e9));
}

/* ---- rendering ---- */

/* Writes a label value with Prometheus escaping (backslash, quote, newline). */
static void gw_metrics_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*v, f);
	}
}

static void gw_metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *gw_metrics_render(gw_metrics *m, const gw_metrics_extra *x, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f;
	uint64_t cum;

	f = open_memstream(&buf, &n);
	if (!f)
		return NULL;

	gw_metrics_head(f, "loket_inbound_total", "counter", "Inbound messages stored, by channel.");
	for (size_t c = 0; c < GW_M_CHANNELS; c++)
		fprintf(f, "loket_inbound_total{channel=\"%s\"} %llu\n", gw_metrics_channels[c],
			(unsigned long long)GW_M_GET(&m->inbound[c]));

	gw_metrics_head(f, "loket_outbound_total", "counter",
			"Outbound messages by channel and outcome (channel=\"all\": the sender's results).");
	for (size_t c = 0; c < GW_M_CHANNELS; c++)
		for (size_t o = 0; o < GW_M_OUTCOMES; o++)
			fprintf(f, "loket_outbound_total{channel=\"%s\",outcome=\"%s\"} %llu\n", gw_metrics_channels[c],
				gw_metrics_outcomes[o], (unsigned long long)GW_M_GET(&m->outbound[c][o]));
	if (x && x->have_sender) {
		fprintf(f, "loket_outbound_total{channel=\"all\",outcome=\"sent\"} %llu\n",
			(unsigned long long)x->sender.sent);
		fprintf(f, "loket_outbound_total{channel=\"all\",outcome=\"failed\"} %llu\n",
			(unsigned long long)x->sender.failed);
		fprintf(f, "loket_outbound_total{channel=\"all\",outcome=\"dead\"} %llu\n",
			(unsigned long long)x->sender.dead);
		fprintf(f, "loket_outbound_total{channel=\"all\",outcome=\"window_closed\"} %llu\n",
			(unsigned long long)x->sender.window_closed);
		fprintf(f, "loket_outbound_total{channel=\"all\",outcome=\"unauthorized\"} %llu\n",
			(unsigned long long)x->sender.unauthorized);
	}

	gw_metrics_head(f, "loket_intent_hits_total", "counter", "Messages answered by each intent.");
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_intents; i++) {
		fputs("loket_intent_hits_total{intent=\"", f);
		gw_metrics_label(f, m->intents[i].name);
		fprintf(f, "\"} %llu\n", (unsigned long long)m->intents[i].n);
	}
	if (m->intent_other)
		fprintf(f, "loket_intent_hits_total{intent=\"_other\"} %llu\n", (unsigned long long)m->intent_other);
	pthread_mutex_unlock(&m->lock);

	gw_metrics_head(f, "loket_fallbacks_total", "counter", "Messages no intent matched.");
	fprintf(f, "loket_fallbacks_total %llu\n", (unsigned long long)GW_M_GET(&m->fallbacks));
	gw_metrics_head(f, "loket_escalations_total", "counter", "Conversations handed to the agents' queue.");
	fprintf(f, "loket_escalations_total %llu\n", (unsigned long long)GW_M_GET(&m->escalations));

	gw_metrics_head(f, "loket_queue_length", "gauge", "Outbox messages waiting to be sent.");
	fprintf(f, "loket_queue_length %lld\n", x && x->have_counts ? (long long)x->counts.pending : 0LL);
	if (x && x->have_counts) {
		gw_metrics_head(f, "loket_outbox_leased", "gauge", "Outbox messages being sent now.");
		fprintf(f, "loket_outbox_leased %lld\n", (long long)x->counts.leased);
	}
	if (x && x->agent_queue >= 0) {
		gw_metrics_head(f, "loket_agent_queue_length", "gauge", "Conversations waiting for an agent.");
		fprintf(f, "loket_agent_queue_length %lld\n", (long long)x->agent_queue);
	}

	gw_metrics_head(f, "loket_webhook_seconds", "histogram",
			"Webhook requests, from the request to the answer (the commit included).");
	cum = 0;
	for (size_t b = 0; b < GW_M_HOOK_BUCKETS; b++) {
		cum += GW_M_GET(&m->hook_bucket[b]);
		fprintf(f, "loket_webhook_seconds_bucket{le=\"%g\"} %llu\n", gw_metrics_hook_bounds[b],
			(unsigned long long)cum);
	}
	cum += GW_M_GET(&m->hook_bucket[GW_M_HOOK_BUCKETS]);
	fprintf(f, "loket_webhook_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	fprintf(f, "loket_webhook_seconds_sum %.6f\n", (double)GW_M_GET(&m->hook_sum_ns) / 1e9);
	fprintf(f, "loket_webhook_seconds_count %llu\n", (unsigned long long)GW_M_GET(&m->hook_count));

	if (x && x->have_sender) {
		const double *bounds = gw_sender_lat_bounds();

		gw_metrics_head(f, "loket_send_seconds", "histogram", "Provider requests, from send to answer.");
		for (size_t b = 0; b < GW_SEND_LAT_BUCKETS; b++)
			fprintf(f, "loket_send_seconds_bucket{le=\"%g\"} %llu\n", bounds[b],
				(unsigned long long)x->sender.lat_bucket[b]);
		fprintf(f, "loket_send_seconds_bucket{le=\"+Inf\"} %llu\n",
			(unsigned long long)x->sender.lat_bucket[GW_SEND_LAT_BUCKETS]);
		fprintf(f, "loket_send_seconds_sum %.6f\n", (double)x->sender.lat_sum_us / 1e6);
		fprintf(f, "loket_send_seconds_count %llu\n", (unsigned long long)x->sender.lat_count);
		gw_metrics_head(f, "loket_send_retries_total", "counter", "Provider requests to be tried again.");
		fprintf(f, "loket_send_retries_total %llu\n", (unsigned long long)x->sender.retried);
		gw_metrics_head(f, "loket_send_in_flight", "gauge", "Provider requests in flight.");
		fprintf(f, "loket_send_in_flight %llu\n", (unsigned long long)x->sender.in_flight);
		gw_metrics_head(f, "loket_send_credentials_refused", "gauge",
				"1 while a provider refuses loket's credentials (replies wait in the outbox).");
		fprintf(f, "loket_send_credentials_refused %d\n", x->sender.credentials_refused);
	}
	gw_metrics_head(f, "loket_dead_letters_total", "counter", "Outbound messages given up after max_attempts.");
	fprintf(f, "loket_dead_letters_total %llu\n", x && x->have_sender ? (unsigned long long)x->sender.dead : 0ULL);

	gw_metrics_head(f, "loket_rejected_total", "counter", "Requests and messages turned away, by reason.");
	for (size_t r = 0; r < GW_REJ__COUNT; r++)
		fprintf(f, "loket_rejected_total{reason=\"%s\"} %llu\n", gw_metrics_reasons[r],
			(unsigned long long)GW_M_GET(&m->rejected[r]));

	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	if (len)
		*len = n;
	return buf;
}
