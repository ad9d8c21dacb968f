/* gw_channel: what every messaging channel provides to the server and the sender.
 *
 * A channel is one file pair (gw_whatsapp.c, gw_web.c, later gw_twilio.c and
 * gw_kannel.c) exporting one gw_channel_ops. Its functions are pure
 * transformations: raw webhook bytes -> messages and statuses, a neutral reply
 * payload -> the provider's HTTP request, the provider's answer -> an outcome.
 * The server owns the routes and the sockets, the sender owns curl; channels own
 * neither, which is what makes them testable with fixtures alone.
 *
 * The neutral payload (store_out.payload, built by gw_payload_make) is JSON:
 *   {"buttons": [{"id": "formulir", "title": "Formulir"}, ...],
 *    "form": {"id": "pbg", "title": "...", "url": "http://..."}}
 * with buttons and form optional, or NULL when there are neither. The text is
 * the message's own (store_out.text). Payloads stored before schema v5 also
 * carry {"text": "..."}, the same text; readers take it when present. */
#ifndef LOKET_GW_CHANNEL_H
#define LOKET_GW_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "bot/bot.h"
#include "core/cfg.h"
#include "store/store.h"

/* ---- inbound ---- */

typedef struct gw_status {
	const char *provider_id; /* our outbound message's id at the provider */
	const char *recipient;	 /* the address it was sent to (Meta's recipient_id); NULL: unknown */
	const char *status;	 /* "sent", "delivered", "read", "failed" */
	const char *error;	 /* "131047 Re-engagement message" when failed, else NULL */
	int64_t at_ms;
} gw_status;

/* What one webhook body holds. Every string points into memory the struct owns. */
typedef struct gw_parsed {
	store_inbound *msgs;
	size_t n_msgs;
	gw_status *statuses;
	size_t n_statuses;
	void *owner;		    /* the parsed document the strings live in */
	void (*owner_free)(void *); /* frees owner (channels parse with different libraries) */
} gw_parsed;

void gw_parsed_free(gw_parsed *p); /* frees what p owns; p itself is the caller's */

/* ---- outbound ---- */

#define GW_REQ_HEADERS_MAX 8

typedef struct gw_request {
	char *url;			   /* owned */
	char *headers[GW_REQ_HEADERS_MAX]; /* owned, "Name: value" */
	int n_headers;
	char *body; /* owned, may be NULL (GET) */
	size_t body_len;
	char *userpwd; /* owned, "user:password" for basic auth, or NULL */
} gw_request;

void gw_request_cleanup(gw_request *r);

typedef enum gw_send_class {
	GW_SEND_OK = 0,	       /* accepted; provider_id filled when the provider gives one */
	GW_SEND_RETRY,	       /* transport error, timeout, 5xx */
	GW_SEND_RETRY_LATER,   /* 429 or the provider's throttling codes */
	GW_SEND_PERMANENT,     /* any other 4xx: retrying cannot help */
	GW_SEND_WINDOW_CLOSED, /* WhatsApp 131047: outside the 24-hour window */
	GW_SEND_UNAUTHORIZED,  /* 401, or Meta's 190: the provider refused loket's own
				* credentials. No message can go until an operator
				* fixes them, so the message waits (not failed) */
} gw_send_class;

const char *gw_send_class_name(gw_send_class c);

typedef struct gw_channel_ops {
	const char *name; /* "whatsapp", "web", ... as stored in conversations */

	/* 1 when the channel has what it needs to send for real; 0 = sandbox mode. */
	int (*configured)(const cfg *c);

	/* Parses a webhook body. Returns 0, or -1 with a short reason (the server
	 * answers 400 with it). */
	int (*parse)(const cfg *c, const char *body, size_t len, gw_parsed *out, char *err, size_t errlen);

	/* Builds the provider request that sends one outbox item. Returns 0, or -1
	 * with a reason (a payload it cannot send: permanent failure). */
	int (*build)(const cfg *c, const store_outbox_item *it, gw_request *req, char *err, size_t errlen);

	/* Classifies the provider's answer (http_status 0 = transport failure or
	 * timeout). Fills provider_id on success and a short error otherwise. */
	gw_send_class (*classify)(long http_status, const char *body, size_t len, char *provider_id, size_t idlen,
				  char *err, size_t errlen);

	/* Longest text one message may carry (4096 for WhatsApp); longer ones are
	 * split by gw_payload_make. 0 = no limit. */
	size_t max_text;
} gw_channel_ops;

/* The channel called name, or NULL. */
const gw_channel_ops *gw_channel_lookup(const char *name);

/* The channels, defined one per file (gw_whatsapp.c, gw_web.c). Code outside
 * gateway/gw_channel.c should reach them through gw_channel_lookup. */
extern const gw_channel_ops gw_whatsapp_ops;
extern const gw_channel_ops gw_web_ops;

#endif
