/* gw: `loket serve`, the gateway process: HTTP endpoints and websockets on
 * libwebsockets, a writer thread that commits inbound messages in batches, a
 * sender thread that delivers the outbox (see docs/gateway.md). */
#ifndef LOKET_GW_H
#define LOKET_GW_H

#include "core/cfg.h"

/* Runs until SIGTERM or SIGINT; returns the process exit code (0 after a clean
 * stop). config_path is kept for reloads (may be NULL: embedded defaults). */
int gw_serve(const cfg *c, const char *config_path);

#endif
