/* gw_metrics: the gateway's counters and histograms, rendered as Prometheus
 * text for GET /metrics.
 *
 * Every function may be called from any thread: counters are atomic, the intent
 * table has its own lock. The sender's counters and the outbox counts are not
 * kept here; the caller passes them to gw_metrics_render at scrape time. */
#ifndef LOKET_GW_METRICS_H
#define LOKET_GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/gw_sender.h"
#include "store/store.h"

typedef struct gw_metrics gw_metrics;

/* Why a request or a message was turned away: the reason label of
 * loket_rejected_total. */
typedef enum gw_reject {
	GW_REJ_BAD_SIGNATURE = 0, /* 403: X-Hub-Signature-256 missing or wrong */
	GW_REJ_BAD_VERIFY,	  /* 403: verification handshake with a wrong token */
	GW_REJ_MALFORMED,	  /* 400: the body is not a webhook we understand */
	GW_REJ_TOO_LARGE,	  /* 413: Content-Length above server.max_body */
	GW_REJ_NO_LENGTH,	  /* 411: POST without Content-Length */
	GW_REJ_DUPLICATE,	  /* a provider's retry of a message already stored */
	GW_REJ_NOT_FOUND,	  /* 404 */
	GW_REJ_METHOD,		  /* 405 */
	GW_REJ_STORE,		  /* 500/503: the commit failed, the provider retries */
	GW_REJ_OVERLOAD,	  /* 503: the writer's queue is full or we are stopping */
	GW_REJ_BAD_REQUEST,	  /* web chat: a frame that is not our JSON */
	GW_REJ_TOO_LONG,	  /* web chat: text over 4096 bytes */
	GW_REJ_SLOW_CLIENT,	  /* web chat: closed for not reading its replies */
	GW_REJ__COUNT
} gw_reject;

/* Returns NULL when out of memory. Free with gw_metrics_free (NULL is fine). */
gw_metrics *gw_metrics_new(void);
void gw_metrics_free(gw_metrics *m);

void gw_metrics_reject(gw_metrics *m, gw_reject why);
/* One new (non-duplicate) inbound message stored for channel. */
void gw_metrics_inbound(gw_metrics *m, const char *channel);
/* One outbound message stored for channel: outcome "queued" (for the sender),
 * "sandboxed" (no credentials) or "pushed" (web chat, over the websocket). */
void gw_metrics_outbound(gw_metrics *m, const char *channel, const char *outcome);
/* The bot answered with intent (copied; at most 1024 distinct names are kept,
 * the rest count under "_other"). */
void gw_metrics_intent(gw_metrics *m, const char *intent);
void gw_metrics_fallback(gw_metrics *m);
void gw_metrics_escalation(gw_metrics *m);
/* A webhook took s seconds from its first byte to its answer. */
void gw_metrics_webhook_seconds(gw_metrics *m, double s);

/* What the scrape adds from elsewhere. */
typedef struct gw_metrics_extra {
	int have_sender; /* sender counters valid */
	gw_sender_stats sender;
	int have_counts; /* outbox counts valid */
	store_outbox_counts counts;
	int64_t agent_queue; /* conversations waiting for an agent, -1 unknown */
} gw_metrics_extra;

/* Renders every metric in Prometheus text format 0.0.4. Returns a malloc'd,
 * NUL-terminated string (the caller frees it) and its length in *len, or NULL
 * when out of memory. */
char *gw_metrics_render(gw_metrics *m, const gw_metrics_extra *x, size_t *len);

#endif
