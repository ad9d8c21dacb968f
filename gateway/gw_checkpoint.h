/* gw_checkpoint: the thread that copies the WAL into the database file.
 *
 * The writer's handle never checkpoints (store_opts.no_checkpoint): SQLite's
 * automatic checkpoint would run inside a commit, on the webhooks' critical
 * path, copying thousands of pages and fsyncing the database file. This
 * thread does it on its own handle with PASSIVE checkpoints, which neither
 * wait for nor block the writer: whenever the WAL holds more than
 * GW_CKPT_PAGES pages not yet copied, and at least every GW_CKPT_IDLE_MS
 * otherwise, so the WAL is reset and stays small. See docs/gateway.md. */
#ifndef LOKET_GW_CHECKPOINT_H
#define LOKET_GW_CHECKPOINT_H

#include <stddef.h>

#include "core/cfg.h"

typedef struct gw_checkpoint gw_checkpoint;

/* Opens its own handle on c->store.path and starts the thread; NULL with the
 * reason in err. */
gw_checkpoint *gw_checkpoint_start(const cfg *c, char *err, size_t errlen);

/* Runs a last checkpoint, stops the thread, frees it. NULL does nothing. */
void gw_checkpoint_stop(gw_checkpoint *k);

#endif
