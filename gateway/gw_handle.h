/* gw_handle: the bridge between the engine and the store for inbound messages.
 *
 * gw_handle_decide() is the store_decide_fn that store_inbound_batch() calls for
 * every new inbound message: it applies the per-contact rate limit, runs
 * bot_handle() on the conversation's state, and turns the bot's replies into
 * store_out rows with the channel's neutral JSON payload (sandboxed when the
 * channel has no credentials, queued for the sender unless the channel delivers
 * by itself). Used by the gateway's writer thread and by `loket chat`.
 *
 * One gw_handle per thread. The strings it hands to the store live until the
 * next gw_handle_reset(). */
#ifndef LOKET_GW_HANDLE_H
#define LOKET_GW_HANDLE_H

#include <stddef.h>

#include "bot/bot.h"
#include "core/cfg.h"
#include "store/store.h"

typedef struct gw_handle gw_handle;

/* c must outlive the handle. Returns NULL when out of memory. */
gw_handle *gw_handle_new(const cfg *c);
void gw_handle_free(gw_handle *h);

/* The intent set to answer with (not owned; may change between batches). */
void gw_handle_set_bot(gw_handle *h, const bot_set *set);

/* Forgets the previous batch's results and strings. Call before each batch. */
void gw_handle_reset(gw_handle *h);

/* The store_decide_fn: pass the gw_handle as ctx. */
int gw_handle_decide(void *ctx, size_t index, const store_inbound *in, const store_conv *conv, store_decision *d);

/* What the bot answered to item index of the current batch, or NULL when that
 * item was not decided (duplicate, refused). Valid until gw_handle_reset(). */
const bot_result *gw_handle_result(const gw_handle *h, size_t index);
/* The store_decision made for item index (outs' text and payload), or NULL. */
const store_decision *gw_handle_decision(const gw_handle *h, size_t index);

#endif
