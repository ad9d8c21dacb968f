/* gw_sender: the sender thread, which delivers the outbox.
 *
 * It runs its own curl multi loop on its own thread with its own store handle:
 * leases due outbox items (oldest first, one at a time per conversation, so
 * messages leave in order), builds each provider request through the channel's
 * gw_channel_ops, sends them concurrently within each channel's rate limit, and
 * records the outcome once it is classified: sent, retry with exponential backoff
 * and jitter, permanent failure, dead letter after max_attempts, or WhatsApp's
 * closed 24-hour window (not even attempted when the window is known closed).
 * Channels without credentials never reach it (their replies are stored as
 * sandboxed). See docs/gateway.md. */
#ifndef LOKET_GW_SENDER_H
#define LOKET_GW_SENDER_H

#include <stdint.h>

#include "core/cfg.h"

typedef struct gw_sender gw_sender;

#define GW_SEND_LAT_BUCKETS 12 /* upper bounds in gw_sender.c, in ms */

/* Counters since start, read with gw_sender_stats_get (any thread). */
typedef struct gw_sender_stats {
	uint64_t sent, retried, failed, dead, window_closed, in_flight;
	uint64_t lat_count, lat_sum_us;
	uint64_t lat_bucket[GW_SEND_LAT_BUCKETS + 1]; /* cumulative counts per bucket, +Inf last */
	int running;
} gw_sender_stats;

/* The latency buckets' upper bounds in seconds, GW_SEND_LAT_BUCKETS of them. */
const double *gw_sender_lat_bounds(void);

/* Starts the thread (opening its own store handle on c->store.path). c must
 * outlive the sender. Returns NULL with the reason in err. */
gw_sender *gw_sender_start(const cfg *c, char *err, size_t errlen);

/* New outbox rows were committed: look now instead of at the next tick.
 * Thread-safe, cheap, never blocks. */
void gw_sender_wake(gw_sender *s);

/* Stops taking new items, waits up to drain_ms for requests in flight, stops the
 * thread and frees everything. Items still leased are retried by the next run
 * once their lease expires. NULL does nothing. */
void gw_sender_stop(gw_sender *s, int drain_ms);

void gw_sender_stats_get(gw_sender *s, gw_sender_stats *st);

#endif
