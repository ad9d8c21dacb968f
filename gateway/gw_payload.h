/* gw_payload: the neutral JSON payload of one outbound message (see
 * gw_channel.h), built from the bot's replies or an agent's text, and split so
 * that no message exceeds a channel's text limit. */
#ifndef LOKET_GW_PAYLOAD_H
#define LOKET_GW_PAYLOAD_H

#include <stddef.h>

#include "bot/bot.h"

/* Builds the messages of one bot reply: texts[i] and payloads[i], the payload
 * {"buttons"?, "form"?} or NULL when the part has neither (the text is not
 * repeated in it: it is stored once, in the message's text). When the text is
 * longer than max_text (0 = no limit) it is split at a paragraph (else a line,
 * else a space, else a UTF-8 boundary) into several parts; the buttons and the
 * form go with the last part. Fills texts[i] and payloads[i] (malloc'd or NULL,
 * the caller frees each) for up to max parts; returns the number of parts, or
 * -1 when out of memory or more than max parts would be needed. */
int gw_payload_make(const bot_reply *r, size_t max_text, char **texts, char **payloads, int max);

/* The same for a plain text (an agent's reply). */
int gw_payload_text(const char *text, size_t max_text, char **texts, char **payloads, int max);

#endif
