/* gw_channel: the table of messaging channels and the helpers every channel
 * shares (freeing a parsed webhook, a built request, naming a send outcome).
 * The channels themselves live one per file (gw_whatsapp.c, gw_web.c, ...);
 * this file only knows their ops by name.
 *
 * gw_parsed.owner is the parsed document the strings point into, freed by
 * gw_parsed.owner_free: a cJSON tree for WhatsApp's webhooks (parsed on the
 * hot path), a jansson one for the web chat's frames. Channels whose webhooks
 * are not JSON (form-encoded ones) keep their decoded strings in a document
 * they build, so that one call frees them all. */
#include "gateway/gw_channel.h"

#include <stdlib.h>
#include <string.h>

/* Every channel the gateway knows, NULL-terminated. A new channel is one more
 * line here and one more extern in gw_channel.h. */
static const gw_channel_ops *const gw_channels[] = {
    &gw_whatsapp_ops,
    &gw_web_ops,
    NULL,
};

const gw_channel_ops *gw_channel_lookup(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; gw_channels[i]; i++)
		if (strcmp(gw_channels[i]->name, name) == 0)
			return gw_channels[i];
	return NULL;
}

void gw_parsed_free(gw_parsed *p)
{
	if (!p)
		return;
	free(p->msgs);
	free(p->statuses);
	if (p->owner && p->owner_free)
		p->owner_free(p->owner);
	memset(p, 0, sizeof(*p));
}

void gw_request_cleanup(gw_request *r)
{
	if (!r)
		return;
	free(r->url);
	for (int i = 0; i < r->n_headers && i < GW_REQ_HEADERS_MAX; i++)
		free(r->headers[i]);
	free(r->body);
	if (r->userpwd) {
		/* basic-auth credentials: do not leave them in freed memory */
		volatile char *p = r->userpwd;
		while (*p)
			*p++ = '\0';
		free(r->userpwd);
	}
	memset(r, 0, sizeof(*r));
}

const char *gw_send_class_name(gw_send_class c)
{
	switch (c) {
	case GW_SEND_OK:
		return "ok";
	case GW_SEND_RETRY:
		return "retry";
	case GW_SEND_RETRY_LATER:
		return "retry_later";
	case GW_SEND_PERMANENT:
		return "permanent";
	case GW_SEND_WINDOW_CLOSED:
		return "window_closed";
	case GW_SEND_UNAUTHORIZED:
		return "unauthorized";
	}
	return "unknown";
}
