/* gw_web: the web chat channel, the page at /chat/ talking over the websocket
 * /ws/chat (subprotocol "loket-chat").
 *
 * Its gw_channel_ops (gw_web_ops, declared in gw_channel.h) say that the
 * channel is always configured and never goes through the sender: its replies
 * are stored as delivered (queue = 0) and pushed by this module over every open
 * socket of the session. The websocket side assigns or resumes a session (the
 * conversation's address), turns each client frame into a writer job, and
 * pushes the bot's replies once the writer has committed them. The protocol is
 * in docs/gateway.md. Everything here runs on the lws thread. */
#ifndef LOKET_GW_WEB_H
#define LOKET_GW_WEB_H

#include <libwebsockets.h>
#include <stddef.h>

#include "core/cfg.h"
#include "gateway/gw_metrics.h"
#include "gateway/gw_writer.h"
#include "store/store.h"

#define GW_WEB_PROTOCOL "loket-chat"
#define GW_WEB_PATH "/ws/chat"
#define GW_WEB_TEXT_MAX 4096 /* bytes of citizen text in one message */

typedef struct gw_web gw_web;

typedef struct gw_web_opts {
	const cfg *c;	     /* must outlive the module */
	store *ro;	     /* the lws thread's handle, for reads (history, queue); not owned */
	gw_metrics *metrics; /* may be NULL */
} gw_web_opts;

/* Returns NULL when out of memory. Free with gw_web_free (NULL is fine). */
gw_web *gw_web_new(const gw_web_opts *o);
void gw_web_free(gw_web *web);

/* The writer that commits the chat's messages (not owned). Until it is set,
 * messages are answered with error "unavailable". */
void gw_web_set_writer(gw_web *web, gw_writer *w);

/* The lws protocol callback for GW_WEB_PROTOCOL and its per-session size; the
 * protocol's user pointer must be the gw_web. */
int gw_web_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
size_t gw_web_pss_size(void);

/* A web chat job came back from the writer: push its replies (and the
 * conversation's new state) to every socket of its session. Takes ownership. */
void gw_web_job_done(gw_web *web, gw_job *j);

/* Open chat sockets, for logs. */
size_t gw_web_sockets(const gw_web *web);

#endif
