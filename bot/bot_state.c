/* bot_state: a conversation's engine state as plain data, and its menu's
 * string form for storage. */
#include "bot/bot.h"

#include <stdio.h>
#include <string.h>

static const char *const bot_mode_names[] = {"bot", "queued", "assigned"};

void bot_state_init(bot_state *st)
{
	memset(st, 0, sizeof(*st));
	st->mode = BOT_MODE_BOT;
}

const char *bot_mode_name(bot_mode m)
{
	if ((unsigned)m < sizeof(bot_mode_names) / sizeof(bot_mode_names[0]))
		return bot_mode_names[m];
	return "bot";
}

int bot_mode_parse(const char *name, bot_mode *out)
{
	for (unsigned i = 0; i < sizeof(bot_mode_names) / sizeof(bot_mode_names[0]); i++)
		if (strcmp(name, bot_mode_names[i]) == 0) {
			*out = (bot_mode)i;
			return 0;
		}
	return -1;
}

int bot_state_menu_join(const bot_state *st, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	for (int i = 0; i < st->n_menu && i < BOT_MENU_MAX; i++) {
		size_t n = strnlen(st->menu[i], BOT_NAME_MAX - 1);
		if (o + n + (i ? 1 : 0) + 1 > outlen) {
			out[0] = '\0';
			return -1;
		}
		if (i)
			out[o++] = ',';
		memcpy(out + o, st->menu[i], n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

int bot_state_menu_split(bot_state *st, const char *joined)
{
	const char *p = joined;

	st->n_menu = 0;
	if (!p || !*p)
		return 0;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (st->n_menu >= BOT_MENU_MAX || n >= BOT_NAME_MAX) {
			st->n_menu = 0;
			return -1;
		}
		memcpy(st->menu[st->n_menu], p, n);
		st->menu[st->n_menu][n] = '\0';
		st->n_menu++;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}
