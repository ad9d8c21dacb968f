/* gw_sender: the sender thread, which delivers the outbox.
 *
 * It runs its own curl multi loop on its own thread. Its store work (leasing
 * due outbox items, oldest first and one at a time per conversation so
 * messages leave in order; recording outcomes) is done in store turns, by the
 * gateway's writer inside its rounds or, with own_store, by the sender on its
 * own handle (see below and docs/sender.md). It builds each provider request
 * through the channel's gw_channel_ops, sends them concurrently within each
 * channel's rate limit, and classifies each outcome: sent, retry with
 * exponential backoff and jitter, permanent failure, dead letter after
 * max_attempts, or WhatsApp's closed 24-hour window (not even attempted when
 * the window is known closed).
 * Channels without credentials never reach it (their replies are stored as
 * sandboxed). See docs/gateway.md. */
#ifndef LOKET_GW_SENDER_H
#define LOKET_GW_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "store/store.h"

typedef struct gw_sender gw_sender;

#define GW_SEND_LAT_BUCKETS 12 /* upper bounds in gw_sender.c, in ms */

/* Counters since start, read with gw_sender_stats_get (any thread). */
typedef struct gw_sender_stats {
	uint64_t sent, retried, failed, dead, window_closed, in_flight;
	uint64_t unauthorized; /* messages held because the provider refused loket's credentials */
	uint64_t lat_count, lat_sum_us;
	uint64_t lat_bucket[GW_SEND_LAT_BUCKETS + 1]; /* cumulative counts per bucket, +Inf last */
	int running;
	int credentials_refused; /* 1 from a provider refusing loket's credentials until it accepts them again */
} gw_sender_stats;

/* The latency buckets' upper bounds in seconds, GW_SEND_LAT_BUCKETS of them. */
const double *gw_sender_lat_bounds(void);

/* Starts the thread. own_store 1: the sender opens its own store handle on
 * c->store.path and writes its outcomes and leases itself (tests, tools).
 * own_store 0: its store work is done by another thread that owns a write
 * handle (the gateway's writer, in the same transaction as inbound messages),
 * through the turn calls below, whenever the function set with
 * gw_sender_set_runner is called. c must outlive the sender. Returns NULL with
 * the reason in err. */
gw_sender *gw_sender_start(const cfg *c, int own_store, char *err, size_t errlen);

/* New outbox rows were committed: look now instead of at the next tick.
 * Thread-safe, cheap, never blocks. */
void gw_sender_wake(gw_sender *s);

/* ---- the store turn: the sender's writes, done by the thread that owns the
 * write handle ----
 *
 * take fills t with the outcomes to record and how many rows to lease (lease:
 * the caller's transaction queues new outbox rows, so lease even if the
 * sender did not ask); run does them on st (inside the caller's round, or as
 * transactions of their own); give hands the result back, with rc the
 * caller's commit: STORE_OK, or an error when nothing of the round was kept
 * (the outcomes are then offered again on the next turn). One turn at a time;
 * every take is followed by a give. */
typedef struct gw_sender_turn {
	store_outbox_result *results; /* the outcomes to record, n_results of them */
	int *result_rc;
	size_t n_results;
	size_t lease_max; /* rows to lease, 0 for none */
	int64_t lease_ms;
	store_outbox_item *items; /* set by run: the rows leased */
	size_t n_items;
	store_outbox_item *fresh; /* set by the caller: rows it leased as it wrote them */
	size_t n_fresh;		  /* (store_outbox_fresh_begin); counted in lease_max */
	int rc_results, rc_lease; /* set by run */
	int64_t seq;		  /* the caller's round: its leases are sent once
				     gw_sender_synced reached it (0: at once) */
	void *taken;		  /* the sender's own */
} gw_sender_turn;

/* 1 when t holds work (outcomes to record or a lease to make), else 0 (then
 * no give is needed). */
int gw_sender_turn_take(gw_sender *s, gw_sender_turn *t, int lease);
int gw_sender_turn_run(store *st, gw_sender_turn *t, int64_t now_ms);
void gw_sender_turn_give(gw_sender *s, gw_sender_turn *t, int rc);

/* Every round up to seq is durable: its leased rows may go out (a reply is
 * never sent before the message that caused it is on disk). Any thread. */
void gw_sender_synced(gw_sender *s, int64_t seq);

/* fn(arg) is called (from the sender's thread, with the sender's mailbox lock
 * held: fn must only signal) when the sender wants a turn. It is called once
 * per wish: not again until someone runs gw_sender_turn_take, so a runner
 * must take a turn each time it is called (the gateway's writer always
 * does). NULL detaches; attaching while a turn is wanted calls fn at once. */
typedef void (*gw_sender_runner_fn)(void *arg);
void gw_sender_set_runner(gw_sender *s, gw_sender_runner_fn fn, void *arg);

/* Stops taking new items and waits up to drain_ms for requests in flight and
 * for their outcomes to be recorded (by the runner, which must still run),
 * then stops the thread. Items still leased are retried by the next run once
 * their lease expires. Idempotent; NULL does nothing. */
void gw_sender_stop(gw_sender *s, int drain_ms);

/* Stops (without waiting) if still running and frees everything, outcomes
 * nobody recorded included (their rows are sent again after the lease). The
 * runner must be detached or stopped first. NULL does nothing. */
void gw_sender_free(gw_sender *s);

void gw_sender_stats_get(gw_sender *s, gw_sender_stats *st);

/* Outbox rows this sender holds leased: waiting for durability, for the rate
 * limit or for a free slot, in flight, or with an outcome not yet recorded.
 * Any thread. */
size_t gw_sender_held(gw_sender *s);

#endif
