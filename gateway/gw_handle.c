/* gw_handle: turns one inbound message into the store's decision, inside the
 * store's transaction: rate limit, bot_handle(), replies as channel payloads.
 * Keeps each batch item's bot_result and decision until the next reset, so the
 * caller can push replies to live sockets after the commit. */
#include "gateway/gw_handle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "gateway/gw_channel.h"
#include "gateway/gw_payload.h"

typedef struct gw_item {
	int decided;
	bot_result res;
	store_decision d;
	char actions[256];
} gw_item;

struct gw_handle {
	const cfg *c;
	const bot_set *set;
	bot_scratch *scratch;
	gw_item *items;
	size_t n_items, cap_items;
	char **strs; /* texts and payloads handed to the store this batch */
	size_t n_strs, cap_strs;
};

gw_handle *gw_handle_new(const cfg *c)
{
	gw_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->c = c;
	h->scratch = bot_scratch_new();
	if (!h->scratch) {
		free(h);
		return NULL;
	}
	return h;
}

void gw_handle_free(gw_handle *h)
{
	if (!h)
		return;
	gw_handle_reset(h);
	free(h->items);
	free(h->strs);
	bot_scratch_free(h->scratch);
	free(h);
}

void gw_handle_set_bot(gw_handle *h, const bot_set *set)
{
	h->set = set;
}

void gw_handle_reset(gw_handle *h)
{
	for (size_t i = 0; i < h->n_strs; i++)
		free(h->strs[i]);
	h->n_strs = 0;
	for (size_t i = 0; i < h->n_items; i++)
		h->items[i].decided = 0;
	h->n_items = 0;
}

static int keep_str(gw_handle *h, char *s)
{
	if (!s)
		return 0;
	if (h->n_strs == h->cap_strs) {
		size_t cap = h->cap_strs ? h->cap_strs * 2 : 64;
		char **nv = realloc(h->strs, cap * sizeof(*nv));
		if (!nv) {
			free(s);
			return -1;
		}
		h->strs = nv;
		h->cap_strs = cap;
	}
	h->strs[h->n_strs++] = s;
	return 0;
}

static gw_item *item_at(gw_handle *h, size_t index)
{
	if (index >= h->cap_items) {
		size_t cap = h->cap_items ? h->cap_items : 16;
		gw_item *nv;
		while (cap <= index)
			cap *= 2;
		nv = realloc(h->items, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		memset(nv + h->cap_items, 0, (cap - h->cap_items) * sizeof(*nv));
		h->items = nv;
		h->cap_items = cap;
	}
	if (index >= h->n_items) {
		for (size_t i = h->n_items; i <= index; i++)
			h->items[i].decided = 0;
		h->n_items = index + 1;
	}
	return &h->items[index];
}

int gw_handle_decide(void *ctx, size_t index, const store_inbound *in, const store_conv *conv, store_decision *d)
{
	gw_handle *h = ctx;
	const gw_channel_ops *ops = gw_channel_lookup(in->channel);
	gw_item *it = item_at(h, index);
	bot_input bi = {0};
	bot_result *res;
	int queue, sandboxed;
	int limit = h->c->bot.rate_limit_per_minute;

	if (!it || !h->set)
		return -1;
	res = &it->res;
	memset(d, 0, sizeof(*d));
	d->next = conv->bot;
	/* Channels the server delivers itself (web) and the terminal (cli) have
	 * no outbox; a provider without credentials is a sandbox. */
	queue = ops && strcmp(in->channel, "web") != 0;
	sandboxed = queue && !ops->configured(h->c);

	if (limit > 0 && conv->rate_count > limit && conv->bot.mode == BOT_MODE_BOT) {
		/* Over the per-contact limit: kept, not answered; told once. (While
		 * an agent has the conversation the bot is silent anyway.) */
		if (conv->rate_count != limit + 1 || conv->bot.opted_out ||
		    bot_set_message(h->set, "rate_limited", conv->bot.lang, res) != 0) {
			memset(res, 0, sizeof(*res));
			res->silent = 1;
		}
		res->intent = NULL;
	} else if (in->kind && strcmp(in->kind, "event") == 0) {
		/* Something the citizen's app did, not a message (a reaction, a
		 * changed number: the channel says which): kept, never answered. */
		memset(res, 0, sizeof(*res));
		res->silent = 1;
	} else {
		bi.media = in->kind && strcmp(in->kind, "media") == 0;
		/* A caption is not a question: media gets the text-only answer. */
		bi.text = bi.media ? NULL : in->text;
		bi.len = bi.text ? strlen(bi.text) : 0;
		bi.button = in->button;
		if (bot_handle(h->set, h->scratch, &conv->bot, &bi, &d->next, res) != 0)
			return -1;
	}
	d->intent = res->intent;
	d->fallback = res->fallback;
	it->actions[0] = '\0';
	for (int i = 0, o = 0; i < res->n_actions; i++) {
		char a[160];
		int n;
		if (bot_action_format(&res->actions[i], a, sizeof(a)) != 0)
			continue;
		n = snprintf(it->actions + o, sizeof(it->actions) - (size_t)o, "%s%s", o ? "," : "", a);
		if (n < 0 || (size_t)n >= sizeof(it->actions) - (size_t)o)
			break;
		o += n;
	}
	d->actions = it->actions[0] ? it->actions : NULL;
	for (int r = 0; r < res->n_replies; r++) {
		char *texts[STORE_OUT_MAX], *payloads[STORE_OUT_MAX];
		int n = gw_payload_make(&res->replies[r], ops ? ops->max_text : 0, texts, payloads,
					STORE_OUT_MAX - d->n_out);

		if (n < 0) {
			log_event(LOG_ERROR, "reply_dropped", "reason=\"payload\" intent=%s",
				  res->intent ? res->intent : "-");
			continue;
		}
		for (int k = 0; k < n; k++) {
			store_out *o = &d->out[d->n_out++];
			int kept = keep_str(h, texts[k]);
			if (keep_str(h, payloads[k]) != 0 || kept != 0) {
				for (int j = k + 1; j < n; j++) {
					free(texts[j]);
					free(payloads[j]);
				}
				return -1;
			}
			o->text = texts[k];
			o->payload = payloads[k];
			o->queue = queue && !sandboxed;
			o->sandboxed = sandboxed;
			if (sandboxed && log_enabled(LOG_INFO)) {
				char to[STORE_ADDRESS_MAX], text[200];
				log_event(LOG_INFO, "sandboxed", "channel=%s to=%s text=%s", in->channel,
					  log_mask(in->address, to, sizeof(to)),
					  log_kv_str(o->text, text, sizeof(text)));
			}
		}
	}
	it->d = *d;
	it->decided = 1;
	return 0;
}

const bot_result *gw_handle_result(const gw_handle *h, size_t index)
{
	if (index >= h->n_items || !h->items[index].decided)
		return NULL;
	return &h->items[index].res;
}

const store_decision *gw_handle_decision(const gw_handle *h, size_t index)
{
	if (index >= h->n_items || !h->items[index].decided)
		return NULL;
	return &h->items[index].d;
}
