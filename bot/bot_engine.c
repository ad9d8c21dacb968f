/* bot_engine: bot_handle(), the conversation state machine.
 *
 * Order of decisions for one message (docs/intents.md tells admins the same):
 *   1. a tapped button, a menu number ("2") or a button's title goes straight to
 *      the intent it names;
 *   2. otherwise the patterns: the current context's intents first, then the
 *      general ones, each in rank order (priority, then load order);
 *   3. an opted-out citizen only gets an answer to opt_in; a queued or assigned
 *      conversation only to opt_out/opt_in (an agent has it);
 *   4. no match: "did you mean" buttons (the intents whose examples are closest
 *      by trigram similarity), else the fallback menu; after
 *      fallbacks_before_escalate of them in a row, escalation.
 * No I/O, no allocation, no globals: everything the result points to is in the
 * set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bot/bot_int.h"
#include "bot/bot_text.h"

/* Below this Dice similarity an example is not offered as "did you mean". */
#define BOT_SUGGEST_MIN 0.45
#define BOT_SUGGEST_MIN_PCT 45
#define BOT_SUGGEST_MAX 3

struct bot_scratch {
	bot_match_scratch *ms;
	char norm[BOT_INPUT_MAX + 1];
	uint16_t *ex_count; /* per example of the set: trigrams shared with the message */
	uint32_t *touched;  /* the examples whose count is not 0 */
	size_t ex_cap;	    /* grows once to the largest set served */
};

bot_scratch *bot_scratch_new(void)
{
	bot_scratch *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ms = bot_match_scratch_new();
	if (!s->ms) {
		free(s);
		return NULL;
	}
	return s;
}

void bot_scratch_free(bot_scratch *s)
{
	if (!s)
		return;
	bot_match_scratch_free(s->ms);
	free(s->ex_count);
	free(s->touched);
	free(s);
}

int bot_select(const bot_set *set, bot_match_scratch *ms, const char *context, const char *text, size_t len, int *lang)
{
	int64_t id = -1;

	if (context && context[0]) {
		for (size_t g = 1; g < set->n_groups; g++)
			if (strcmp(set->groups[g].context, context) == 0) {
				id = bot_match_first(set->groups[g].m, text, len, ms);
				break;
			}
	}
	if (id < 0 && set->n_groups)
		id = bot_match_first(set->groups[0].m, text, len, ms);
	if (id < 0 || (size_t)id >= set->n_patterns)
		return -1;
	*lang = set->patterns[id].lang;
	return set->patterns[id].intent;
}

int bot_action_format(const bot_action *a, char *out, size_t outlen)
{
	static const char *const names[] = {"", "escalate", "send_form", "set_language", "opt_out", "opt_in"};
	int n;

	if ((unsigned)a->kind >= sizeof(names) / sizeof(names[0]))
		return -1;
	if (a->arg && a->arg[0])
		n = snprintf(out, outlen, "%s:%s", names[a->kind], a->arg);
	else
		n = snprintf(out, outlen, "%s", names[a->kind]);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* ---- building the result ---- */

/* Copies src into dst (size n), cut to fit: languages were validated at load. */
static void copy_str(char *dst, size_t n, const char *src)
{
	size_t l = strnlen(src, n - 1);

	memcpy(dst, src, l);
	dst[l] = '\0';
}

static const char *intent_title(const bot_set *set, const bot_intent *it, const char *lang)
{
	const char *t = bot_i18n_get(&it->title, lang, set->default_lang);
	return t ? t : it->name;
}

static void add_button(const bot_set *set, bot_reply *r, int intent, const char *lang)
{
	const bot_intent *it;

	if (intent < 0 || r->n_buttons >= BOT_MENU_MAX)
		return;
	it = &set->intents[intent];
	for (int i = 0; i < r->n_buttons; i++)
		if (r->buttons[i].id == it->name)
			return;
	r->buttons[r->n_buttons].id = it->name;
	r->buttons[r->n_buttons].title = intent_title(set, it, lang);
	r->n_buttons++;
}

static bot_reply *add_reply(bot_result *res, const char *text)
{
	bot_reply *r;

	if (res->n_replies >= BOT_REPLIES_MAX || !text)
		return NULL;
	r = &res->replies[res->n_replies++];
	r->text = text;
	r->n_buttons = 0;
	r->form = NULL;
	return r;
}

static void add_action(bot_result *res, bot_action_kind kind, const char *arg)
{
	if (res->n_actions >= BOT_ACTIONS_MAX)
		return;
	res->actions[res->n_actions].kind = kind;
	res->actions[res->n_actions].arg = arg && arg[0] ? arg : NULL;
	res->n_actions++;
}

/* The menu the next "1", "2", ... refers to: the last reply's buttons. */
static void remember_menu(bot_state *st, const bot_result *res)
{
	const bot_reply *r = res->n_replies ? &res->replies[res->n_replies - 1] : NULL;

	st->n_menu = 0;
	if (!r)
		return;
	for (int i = 0; i < r->n_buttons && i < BOT_MENU_MAX; i++)
		copy_str(st->menu[st->n_menu++], BOT_NAME_MAX, r->buttons[i].id);
}

static void message_reply(const bot_set *set, bot_result *res, int which, const char *lang)
{
	const bot_message *m = &set->messages[which];
	bot_reply *r;

	if (!m->present)
		return;
	r = add_reply(res, bot_i18n_get(&m->reply, lang, set->default_lang));
	if (!r)
		return;
	for (int i = 0; i < m->n_buttons; i++)
		add_button(set, r, m->button_idx[i], lang);
}

int bot_set_message(const bot_set *set, const char *name, const char *lang, bot_result *res)
{
	memset(res, 0, sizeof(*res));
	copy_str(res->lang, sizeof(res->lang), lang && lang[0] ? lang : set->default_lang);
	for (int m = 0; m < BOT_MSG_COUNT; m++)
		if (strcmp(bot_msg_names[m], name) == 0 && set->messages[m].present) {
			message_reply(set, res, m, res->lang);
			return 0;
		}
	res->silent = 1;
	return -1;
}

/* "2", "2.", " 2) " -> 2; anything else -> 0. */
static int menu_number(const char *s)
{
	int n = 0, digits = 0;

	while (*s == ' ')
		s++;
	while (*s >= '0' && *s <= '9' && digits < 3) {
		n = n * 10 + (*s - '0');
		s++;
		digits++;
	}
	if (!digits)
		return 0;
	if (*s == '.' || *s == ')')
		s++;
	while (*s == ' ')
		s++;
	return *s ? 0 : n;
}

static int ascii_caseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a, y = *b;
		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return 0;
	}
	return *a == *b;
}

/* A button id, a number of the last menu, or one of its titles typed out. */
static int select_direct(const bot_set *set, const bot_state *st, const bot_input *msg, const char *norm)
{
	int n;

	if (msg->button && msg->button[0])
		return bot_set_intent_index(set, msg->button);
	n = menu_number(norm);
	if (n >= 1 && n <= st->n_menu)
		return bot_set_intent_index(set, st->menu[n - 1]);
	for (int i = 0; i < st->n_menu; i++) {
		int idx = bot_set_intent_index(set, st->menu[i]);
		if (idx < 0)
			continue;
		if (ascii_caseeq(norm, set->intents[idx].name))
			return idx;
		for (int l = 0; l < set->intents[idx].title.n; l++)
			if (ascii_caseeq(norm, set->intents[idx].title.s[l]))
				return idx;
	}
	return -1;
}

/* Up to BOT_SUGGEST_MAX intents whose examples are closest to norm, by Dice
 * similarity of trigram sets, counted through the set's inverted index. */
static int suggest(const bot_set *set, bot_scratch *sc, const bot_state *st, const char *norm, size_t len, int *out)
{
	uint32_t tri[BOT_TRIGRAMS_MAX];
	size_t nt = bot_trigrams(norm, len, tri, BOT_TRIGRAMS_MAX);
	double best[BOT_SUGGEST_MAX] = {0};
	size_t n_touched = 0;
	int n = 0;

	if (nt < 3 || set->n_ex == 0)
		return 0;
	if (sc->ex_cap < set->n_ex) {
		uint16_t *c = calloc(set->n_ex, sizeof(*c));
		uint32_t *t = malloc(set->n_ex * sizeof(*t));
		if (!c || !t) {
			free(c);
			free(t);
			return 0; /* no suggestions rather than no answer */
		}
		free(sc->ex_count);
		free(sc->touched);
		sc->ex_count = c;
		sc->touched = t;
		sc->ex_cap = set->n_ex;
	}
	/* Stop trigrams count on neither side (both lists are sorted). */
	if (set->n_stop) {
		size_t k = 0, j = 0;
		for (size_t i = 0; i < nt; i++) {
			while (j < set->n_stop && set->stop[j] < tri[i])
				j++;
			if (j < set->n_stop && set->stop[j] == tri[i])
				continue;
			tri[k++] = tri[i];
		}
		nt = k;
		if (nt == 0)
			return 0;
	}
	for (size_t i = 0; i < nt; i++) {
		int64_t at = bot_tri_find(set, tri[i]);
		if (at < 0)
			continue;
		for (uint32_t p = set->tri_off[at]; p < set->tri_off[at + 1]; p++) {
			uint32_t e = set->tri_post[p];
			if (sc->ex_count[e]++ == 0)
				sc->touched[n_touched++] = e;
		}
	}
	for (size_t k = 0; k < n_touched; k++) {
		uint32_t e = sc->touched[k];
		int intent = set->ex_intent[e];
		const bot_intent *it = &set->intents[intent];
		uint32_t c = sc->ex_count[e];
		double score;
		int at = -1;

		sc->ex_count[e] = 0;
		/* 2c / (nt + nb) < BOT_SUGGEST_MIN, in integers: most examples stop here */
		if (200 * c < BOT_SUGGEST_MIN_PCT * (nt + set->ex_ntri[e]))
			continue;
		score = 2.0 * c / (double)(nt + set->ex_ntri[e]);
		if (it->when[0] && strcmp(it->when, st->context) != 0)
			continue;
		for (int m = 0; m < n; m++)
			if (out[m] == intent)
				at = m;
		if (at >= 0) {
			if (score <= best[at])
				continue;
			/* drop the old place, re-insert below */
			for (int m = at; m + 1 < n; m++) {
				best[m] = best[m + 1];
				out[m] = out[m + 1];
			}
			n--;
		}
		for (int pos = 0; pos < BOT_SUGGEST_MAX; pos++) {
			if (pos < n &&
			    (score < best[pos] || (score == best[pos] && it->rank > set->intents[out[pos]].rank)))
				continue;
			for (int m = (n < BOT_SUGGEST_MAX ? n : BOT_SUGGEST_MAX - 1); m > pos; m--) {
				best[m] = best[m - 1];
				out[m] = out[m - 1];
			}
			best[pos] = score;
			out[pos] = intent;
			if (n < BOT_SUGGEST_MAX)
				n++;
			break;
		}
	}
	return n;
}

static void answer_intent(const bot_set *set, int idx, const char *lang, bot_state *st, bot_result *res)
{
	const bot_intent *it = &set->intents[idx];
	bot_reply *r;

	res->intent = it->name;
	st->fallbacks = 0;
	if (it->action == BOT_ACT_SET_LANGUAGE)
		lang = it->action_arg;
	copy_str(st->lang, sizeof(st->lang), lang);
	copy_str(res->lang, sizeof(res->lang), lang);
	r = add_reply(res, bot_i18n_get(&it->reply, lang, set->default_lang));
	if (r) {
		for (int i = 0; i < it->n_buttons; i++)
			add_button(set, r, it->button_idx[i], lang);
		if (it->action == BOT_ACT_SEND_FORM && it->form_idx >= 0)
			r->form = bot_set_form(set, it->action_arg, lang);
	}
	copy_str(st->context, sizeof(st->context), it->sets);
	if (it->action)
		add_action(res, it->action, it->action_arg);
	switch (it->action) {
	case BOT_ACT_ESCALATE:
		st->mode = BOT_MODE_QUEUED;
		st->context[0] = '\0';
		break;
	case BOT_ACT_OPT_OUT:
		st->opted_out = 1;
		st->context[0] = '\0';
		break;
	case BOT_ACT_OPT_IN:
		st->opted_out = 0;
		break;
	default:
		break;
	}
}

int bot_handle(const bot_set *set, bot_scratch *scratch, const bot_state *in, const bot_input *msg, bot_state *out,
	       bot_result *res)
{
	bot_state st;
	const char *lang;
	size_t len = 0;
	int idx = -1, li = -1;

	if (!set || !scratch || !in || !msg || !out || !res)
		return -1;
	st = *in;
	/* Only the counters and flags: the arrays are read up to their counts. */
	res->intent = NULL;
	res->fallback = res->silent = 0;
	res->n_replies = res->n_actions = res->n_suggestions = 0;
	lang = st.lang[0] ? st.lang : set->default_lang;
	copy_str(res->lang, sizeof(res->lang), lang);

	scratch->norm[0] = '\0';
	if (msg->text)
		len = bot_text_normalize(msg->text, msg->len, scratch->norm, sizeof(scratch->norm));

	if (msg->media && !msg->button && len == 0) {
		if (st.opted_out || st.mode != BOT_MODE_BOT) {
			res->silent = 1;
		} else {
			message_reply(set, res, BOT_MSG_TEXT_ONLY, lang);
			remember_menu(&st, res);
		}
		*out = st;
		return 0;
	}

	idx = select_direct(set, &st, msg, scratch->norm);
	if (idx < 0 && len > 0) {
		idx = bot_select(set, scratch->ms, st.context, scratch->norm, len, &li);
		if (idx >= 0 && li >= 0)
			lang = set->langs[li];
	}

	/* Opted out: only opt_in is heard. An agent's conversation: only opt_out/opt_in. */
	if (st.opted_out || st.mode != BOT_MODE_BOT) {
		bot_action_kind a = idx >= 0 ? set->intents[idx].action : 0;
		int heard = st.opted_out ? a == BOT_ACT_OPT_IN : (a == BOT_ACT_OPT_OUT || a == BOT_ACT_OPT_IN);

		if (!heard) {
			res->silent = 1;
			*out = st;
			return 0;
		}
		{
			bot_mode keep = st.mode;
			char ctx[BOT_NAME_MAX];
			snprintf(ctx, sizeof(ctx), "%s", st.context);
			answer_intent(set, idx, lang, &st, res);
			st.mode = keep; /* opting out or in does not take the agent's conversation away */
			if (keep != BOT_MODE_BOT)
				snprintf(st.context, sizeof(st.context), "%s", ctx);
		}
		remember_menu(&st, res);
		*out = st;
		return 0;
	}

	if (idx >= 0) {
		answer_intent(set, idx, lang, &st, res);
		remember_menu(&st, res);
		*out = st;
		return 0;
	}

	/* Fallback. */
	res->fallback = 1;
	st.fallbacks++;
	if (set->fallbacks_before_escalate > 0 && st.fallbacks >= set->fallbacks_before_escalate) {
		message_reply(set, res, BOT_MSG_ESCALATED, lang);
		add_action(res, BOT_ACT_ESCALATE, NULL);
		st.mode = BOT_MODE_QUEUED;
		st.fallbacks = 0;
		st.context[0] = '\0';
	} else {
		int sug[BOT_SUGGEST_MAX];
		int ns = suggest(set, scratch, &st, scratch->norm, len, sug);

		res->n_suggestions = ns;
		if (ns > 0) {
			const bot_message *fb = &set->messages[BOT_MSG_FALLBACK];
			bot_reply *r;

			message_reply(set, res, BOT_MSG_DID_YOU_MEAN, lang);
			r = res->n_replies ? &res->replies[res->n_replies - 1] : NULL;
			if (r) {
				/* suggestions first, then the fallback menu */
				bot_button keep[BOT_MENU_MAX];
				int nk = r->n_buttons;
				memcpy(keep, r->buttons, sizeof(keep));
				r->n_buttons = 0;
				for (int i = 0; i < ns; i++)
					add_button(set, r, sug[i], lang);
				for (int i = 0; i < nk; i++)
					add_button(set, r, bot_set_intent_index(set, keep[i].id), lang);
				for (int i = 0; i < fb->n_buttons; i++)
					add_button(set, r, fb->button_idx[i], lang);
			}
		} else {
			message_reply(set, res, BOT_MSG_FALLBACK, lang);
		}
	}
	remember_menu(&st, res);
	*out = st;
	return 0;
}
