/* gw_whatsapp: the WhatsApp Cloud API channel (Meta's Graph API).
 *
 * Its gw_channel_ops (gw_whatsapp_ops, declared in gw_channel.h) parse Meta's
 * webhook notifications, build the POST {api_base}/{phone_number_id}/messages
 * request of one outbox item, and classify Meta's answer. This header adds what
 * only WhatsApp's routes and `loket doctor` need: the webhook signature check
 * and the credentials check. */
#ifndef LOKET_GW_WHATSAPP_H
#define LOKET_GW_WHATSAPP_H

#include <stddef.h>

#include "gateway/gw_channel.h"

/* Checks Meta's X-Hub-Signature-256 header ("sha256=<64 lowercase or uppercase
 * hex digits>") against HMAC-SHA256(app_secret, the raw body bytes), comparing
 * in constant time. Returns 0 when it matches; -1 when it does not, or when the
 * header is missing (NULL), garbled, or app_secret is empty. */
int gw_whatsapp_verify(const char *app_secret, const char *body, size_t len, const char *header);

/* Builds the request that checks the credentials without sending anyone a
 * message (`loket doctor`): GET {api_base}/{phone_number_id} with the access
 * token as Bearer; its answer goes through gw_whatsapp_ops.classify (ok, or
 * unauthorized for a refused token). 0, or -1 when out of memory. */
int gw_whatsapp_build_check(const cfg *c, gw_request *req);

#endif
