/* gw_server: the libwebsockets side of `loket serve`: the context and its one
 * vhost, the routing table, request bodies and limits, the answers.
 *
 * Dynamic routes are rows of one table (path, methods, handlers); static files
 * are two lws file mounts on the console/ directory; websockets are routed by
 * subprotocol and their path is checked on upgrade. Webhooks are answered only
 * after the writer has committed them: the handler submits a gw_job, the writer
 * wakes the loop with lws_cancel_service(), and the loop writes the answer.
 * Everything here runs on the lws service thread except gw_server_wake. */
#ifndef LOKET_GW_SERVER_H
#define LOKET_GW_SERVER_H

#include <stddef.h>

#include "core/cfg.h"
#include "gateway/gw_metrics.h"
#include "gateway/gw_sender.h"
#include "gateway/gw_writer.h"
#include "store/store.h"

typedef struct gw_server gw_server;

typedef struct gw_server_opts {
	const cfg *c;		 /* must outlive the server */
	const char *console_dir; /* the directory /console/ and /chat/ are served from */
	gw_metrics *metrics;	 /* not owned */
	gw_sender *sender;	 /* for /healthz and /metrics; may be NULL; not owned */
	store *ro;		 /* the lws thread's store handle (reads only); not owned */
} gw_server_opts;

/* Creates the context and binds server.listen. Returns NULL with the reason in
 * err (a bind failure included). */
gw_server *gw_server_new(const gw_server_opts *o, char *err, size_t errlen);

/* The writer that takes the server's jobs (not owned). Set before serving. */
void gw_server_set_writer(gw_server *s, gw_writer *w);

/* gw_writer_wake_fn: wakes the loop so it collects finished jobs. Any thread,
 * async-signal-safe in practice (lws_cancel_service writes to a pipe). */
void gw_server_wake(void *s);

/* Runs one round of the event loop. Returns < 0 when lws reports a failure. */
int gw_server_service(gw_server *s);

/* Stops taking requests: every new one is answered 503 with Connection: close
 * (the listen socket itself closes in gw_server_close: lws 4.1.6's
 * lws_context_deprecate frees the listener before its last use); requests
 * already taken are still answered once the writer has committed them. */
void gw_server_drain_begin(gw_server *s);

/* Requests taken and not yet answered. */
size_t gw_server_waiting(const gw_server *s);

/* Destroys the context, closing every connection; gw_server_wake does nothing
 * afterwards. Call it before gw_writer_stop: jobs still in the writer's hands
 * lose their connection first, then the writer frees them. */
void gw_server_close(gw_server *s);

/* Closes (when not done yet) and frees the server. NULL does nothing. */
void gw_server_free(gw_server *s);

#endif
