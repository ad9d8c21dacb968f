/* gw_checkpoint: the thread that copies the WAL into the database file.
 *
 * The writer's handle never checkpoints (store_opts.no_checkpoint): SQLite's
 * automatic checkpoint would run inside a commit, on the webhooks' critical
 * path, copying thousands of pages and fsyncing the database file. This
 * thread does it on its own handle: PASSIVE checkpoints, which neither wait
 * for nor block the writer, whenever the WAL holds more than GW_CKPT_PAGES
 * pages not yet copied and at least every GW_CKPT_IDLE_MS otherwise; a
 * RESTART once the WAL is long and only a short tail is left to copy, so the
 * next commit starts it over (under steady load a passive pass never finds
 * it all copied); and a TRUNCATE when nothing was committed since the last
 * pass, so the -wal file gives its disk space back after a burst. See
 * docs/gateway.md. */
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
