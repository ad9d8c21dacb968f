/* bot_load: reads a directory of intent files (YAML, libyaml's document API)
 * into a bot_set, compiles its patterns and checks the whole set.
 *
 * Every problem becomes one bot_diag with its file, line and column, and a set
 * with any problem is freed, never returned: a broken file cannot take the
 * running bot down. The checks are listed in docs/intents.md. Matching itself
 * lives in bot_match.c, the engine in bot_engine.c. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "bot/bot_int.h"
#include "bot/bot_text.h"

const char *const bot_msg_names[BOT_MSG_COUNT] = {"fallback", "did_you_mean", "escalated", "text_only", "rate_limited"};
static const int bot_msg_required[BOT_MSG_COUNT] = {1, 1, 1, 1, 0};

/* ---- diagnostics ---- */

static void diag_add(bot_diags *d, const char *file, int line, int col, const char *intent, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void diag_add(bot_diags *d, const char *file, int line, int col, const char *intent, const char *fmt, ...)
{
	bot_diag *x;
	va_list ap;

	if (!d)
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		bot_diag *nv = realloc(d->v, cap * sizeof(*nv));
		if (!nv)
			return;
		d->v = nv;
		d->cap = cap;
	}
	x = &d->v[d->n++];
	memset(x, 0, sizeof(*x));
	snprintf(x->file, sizeof(x->file), "%s", file ? file : "");
	x->line = line;
	x->col = col;
	snprintf(x->intent, sizeof(x->intent), "%s", intent ? intent : "");
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
	va_end(ap);
}

void bot_diags_free(bot_diags *d)
{
	if (!d)
		return;
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

int bot_diag_format(const bot_diag *d, char *out, size_t outlen)
{
	int n;

	if (d->intent[0])
		n = snprintf(out, outlen, "%s:%d:%d: intent %s: %s", d->file, d->line, d->col, d->intent, d->msg);
	else
		n = snprintf(out, outlen, "%s:%d:%d: %s", d->file, d->line, d->col, d->msg);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* ---- freeing ---- */

static void i18n_free(bot_i18n *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->s[i]);
	t->n = 0;
}

static void examples_free(bot_example *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].text);
		free(v[i].tri);
	}
	free(v);
}

void bot_set_free(bot_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n_intents; i++) {
		bot_intent *it = &set->intents[i];
		i18n_free(&it->title);
		i18n_free(&it->reply);
		examples_free(it->examples, it->n_examples);
		examples_free(it->not_examples, it->n_not_examples);
	}
	free(set->intents);
	for (size_t i = 0; i < set->n_forms; i++) {
		i18n_free(&set->forms[i].title);
		free(set->forms[i].url);
	}
	free(set->forms);
	for (int i = 0; i < BOT_MSG_COUNT; i++)
		i18n_free(&set->messages[i].reply);
	for (size_t i = 0; i < set->n_groups; i++)
		bot_match_free(set->groups[i].m);
	free(set->groups);
	free(set->patterns);
	bot_index_free(set);
	free(set);
}

/* ---- small helpers ---- */

const char *bot_i18n_get(const bot_i18n *t, const char *lang, const char *def)
{
	int d = -1;

	for (int i = 0; i < t->n; i++) {
		if (lang && strcmp(t->lang[i], lang) == 0)
			return t->s[i];
		if (def && strcmp(t->lang[i], def) == 0)
			d = i;
	}
	if (d >= 0)
		return t->s[d];
	return t->n ? t->s[0] : NULL;
}

size_t bot_set_intent_count(const bot_set *set)
{
	return set->n_intents;
}

size_t bot_set_pattern_count(const bot_set *set)
{
	return set->n_patterns;
}

const char *bot_set_default_lang(const bot_set *set)
{
	return set->default_lang;
}

const bot_form *bot_set_form(const bot_set *set, const char *id, const char *lang)
{
	for (size_t i = 0; i < set->n_forms; i++) {
		if (strcmp(set->forms[i].id, id) != 0)
			continue;
		for (int l = 0; l < set->n_langs; l++)
			if (lang && strcmp(set->langs[l], lang) == 0)
				return &set->forms[i].by_lang[l];
		for (int l = 0; l < set->n_langs; l++)
			if (strcmp(set->langs[l], set->default_lang) == 0)
				return &set->forms[i].by_lang[l];
		return set->n_langs ? &set->forms[i].by_lang[0] : NULL;
	}
	return NULL;
}

static int lang_index(bot_set *set, const char *lang, int add)
{
	for (int i = 0; i < set->n_langs; i++)
		if (strcmp(set->langs[i], lang) == 0)
			return i;
	if (!add || set->n_langs >= BOT_LANGS_MAX)
		return -1;
	snprintf(set->langs[set->n_langs], BOT_LANG_MAX, "%s", lang);
	return set->n_langs++;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= BOT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static int valid_lang(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n >= BOT_LANG_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	return 1;
}

/* ---- YAML reading ---- */

typedef struct load_ctx {
	bot_set *set;
	bot_diags *diags;
	const bot_config *cfg;
	const char *file; /* the path as shown in diagnostics */
	yaml_document_t *doc;
	int order;
	int errors;
	size_t cap_intents, cap_forms;
} load_ctx;

#define LINE(n) ((int)(n)->start_mark.line + 1)
#define COL(n) ((int)(n)->start_mark.column + 1)

static void lerr(load_ctx *c, const yaml_node_t *n, const char *intent, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void lerr(load_ctx *c, const yaml_node_t *n, const char *intent, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->errors++;
	diag_add(c->diags, c->file, n ? LINE(n) : 0, n ? COL(n) : 0, intent, "%s", msg);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static void set_src(bot_src *s, const char *file, const yaml_node_t *n)
{
	snprintf(s->file, sizeof(s->file), "%s", file);
	s->line = n ? LINE(n) : 0;
	s->col = n ? COL(n) : 0;
}

/* A name-like scalar into out. */
static int read_name(load_ctx *c, const yaml_node_t *n, const char *intent, const char *what, char *out)
{
	const char *s = scalar(n);

	if (!s) {
		lerr(c, n, intent, "%s must be a single name", what);
		return -1;
	}
	if (!valid_name(s)) {
		lerr(c, n, intent, "%s \"%.64s\" must be lower-case letters, digits, _ or -, at most %d characters",
		     what, s, BOT_NAME_MAX - 1);
		return -1;
	}
	snprintf(out, BOT_NAME_MAX, "%s", s);
	return 0;
}

/* "lang: text" mapping, or a plain scalar meaning the default language. */
static int read_i18n(load_ctx *c, const yaml_node_t *n, const char *intent, const char *what, bot_i18n *out)
{
	yaml_node_pair_t *p;

	if (n->type == YAML_SCALAR_NODE) {
		out->s[0] = strdup(scalar(n));
		if (!out->s[0])
			return -1;
		snprintf(out->lang[0], BOT_LANG_MAX, "%s", c->set->default_lang);
		out->line[0] = LINE(n);
		out->col[0] = COL(n);
		out->n = 1;
		lang_index(c->set, c->set->default_lang, 1);
		return 0;
	}
	if (n->type != YAML_MAPPING_NODE) {
		lerr(c, n, intent, "%s must be a text, or one text per language (id: ..., en: ...)", what);
		return -1;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *lang = scalar(k), *text = scalar(v);

		if (!lang || !valid_lang(lang)) {
			lerr(c, k, intent, "%s: \"%.32s\" is not a language code (id, en, ...)", what,
			     lang ? lang : "?");
			continue;
		}
		if (!text) {
			lerr(c, v, intent, "%s for %s must be text", what, lang);
			continue;
		}
		if (out->n >= BOT_LANGS_MAX || lang_index(c->set, lang, 1) < 0) {
			lerr(c, k, intent, "%s: too many languages (at most %d)", what, BOT_LANGS_MAX);
			continue;
		}
		for (int i = 0; i < out->n; i++)
			if (strcmp(out->lang[i], lang) == 0) {
				lerr(c, k, intent, "%s: language %s given twice", what, lang);
				goto next;
			}
		out->s[out->n] = strdup(text);
		if (!out->s[out->n])
			return -1;
		snprintf(out->lang[out->n], BOT_LANG_MAX, "%s", lang);
		out->line[out->n] = LINE(v);
		out->col[out->n] = COL(v);
		out->n++;
next:;
	}
	return 0;
}

static int read_names(load_ctx *c, const yaml_node_t *n, const char *intent, const char *what,
		      char names[][BOT_NAME_MAX], int *count)
{
	yaml_node_item_t *it;

	*count = 0;
	if (n->type != YAML_SEQUENCE_NODE) {
		lerr(c, n, intent, "%s must be a list of intent names, e.g. [formulir, kontak]", what);
		return -1;
	}
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *v = yaml_document_get_node(c->doc, *it);
		if (*count >= BOT_MENU_MAX) {
			lerr(c, v, intent, "%s: at most %d", what, BOT_MENU_MAX);
			return -1;
		}
		if (read_name(c, v, intent, what, names[*count]) == 0)
			(*count)++;
	}
	return 0;
}

static int read_examples(load_ctx *c, const yaml_node_t *n, const char *intent, const char *what, bot_example **out,
			 size_t *count)
{
	yaml_node_item_t *it;
	size_t cap;

	if (n->type != YAML_SEQUENCE_NODE) {
		lerr(c, n, intent, "%s must be a list of messages", what);
		return -1;
	}
	cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (cap == 0)
		return 0;
	*out = calloc(cap, sizeof(**out));
	if (!*out)
		return -1;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *v = yaml_document_get_node(c->doc, *it);
		const char *s = scalar(v);
		bot_example *e = &(*out)[*count];
		char norm[BOT_INPUT_MAX + 1];
		uint32_t tri[BOT_TRIGRAMS_MAX];
		size_t nl;

		if (!s) {
			lerr(c, v, intent, "%s: each item must be one message", what);
			continue;
		}
		nl = bot_text_normalize(s, strlen(s), norm, sizeof(norm));
		e->text = strdup(norm);
		e->ntri = bot_trigrams(norm, nl, tri, BOT_TRIGRAMS_MAX);
		e->tri = malloc((e->ntri ? e->ntri : 1) * sizeof(uint32_t));
		if (!e->text || !e->tri) {
			free(e->text);
			free(e->tri);
			return -1;
		}
		memcpy(e->tri, tri, e->ntri * sizeof(uint32_t));
		e->line = LINE(v);
		e->col = COL(v);
		(*count)++;
	}
	return 0;
}

static int parse_action(load_ctx *c, const yaml_node_t *n, bot_intent *it)
{
	const char *s = scalar(n);
	static const struct {
		const char *name;
		bot_action_kind kind;
		int arg;
	} acts[] = {
	    {"escalate", BOT_ACT_ESCALATE, 0},
	    {"send_form", BOT_ACT_SEND_FORM, 1},
	    {"set_language", BOT_ACT_SET_LANGUAGE, 1},
	    {"opt_out", BOT_ACT_OPT_OUT, 0},
	    {"opt_in", BOT_ACT_OPT_IN, 0},
	};
	const char *colon;
	size_t nlen;

	set_src(&it->action_src, c->file, n);
	if (!s) {
		lerr(c, n, it->name,
		     "action must be one of escalate, send_form:ID, set_language:LANG, opt_out, opt_in");
		return -1;
	}
	colon = strchr(s, ':');
	nlen = colon ? (size_t)(colon - s) : strlen(s);
	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
		if (strlen(acts[i].name) != nlen || strncmp(acts[i].name, s, nlen) != 0)
			continue;
		if (acts[i].arg && (!colon || !colon[1])) {
			lerr(c, n, it->name, "action %s needs an argument: %s:ID", acts[i].name, acts[i].name);
			return -1;
		}
		if (!acts[i].arg && colon) {
			lerr(c, n, it->name, "action %s takes no argument", acts[i].name);
			return -1;
		}
		if (colon && strlen(colon + 1) >= BOT_NAME_MAX) {
			lerr(c, n, it->name, "action argument too long");
			return -1;
		}
		it->action = acts[i].kind;
		snprintf(it->action_arg, sizeof(it->action_arg), "%s", colon ? colon + 1 : "");
		if (it->action == BOT_ACT_SET_LANGUAGE && !valid_lang(it->action_arg)) {
			lerr(c, n, it->name, "set_language: \"%s\" is not a language code", it->action_arg);
			return -1;
		}
		return 0;
	}
	lerr(c, n, it->name, "unknown action \"%.64s\" (escalate, send_form:ID, set_language:LANG, opt_out, opt_in)",
	     s);
	return -1;
}

/* Patterns are compiled later, once the set's ranking is known; here they are
 * only checked for shape and kept as (node) references in a side list. */
typedef struct pending_pattern {
	int intent;
	int lang;
	char *text;
	char file[256];
	int line, col, quoted;
} pending_pattern;

typedef struct pending {
	pending_pattern *v;
	size_t n, cap;
} pending;

static int pending_add(pending *p, int intent, int lang, const char *text, const char *file, const yaml_node_t *n)
{
	pending_pattern *x;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		pending_pattern *nv = realloc(p->v, cap * sizeof(*nv));
		if (!nv)
			return -1;
		p->v = nv;
		p->cap = cap;
	}
	x = &p->v[p->n];
	x->text = strdup(text);
	if (!x->text)
		return -1;
	x->intent = intent;
	x->lang = lang;
	snprintf(x->file, sizeof(x->file), "%s", file);
	x->line = LINE(n);
	x->col = COL(n);
	x->quoted = n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
		    n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	p->n++;
	return 0;
}

static void pending_free(pending *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].text);
	free(p->v);
}

static int read_match(load_ctx *c, const yaml_node_t *n, int idx, pending *pp)
{
	bot_intent *it = &c->set->intents[idx];
	yaml_node_pair_t *p;

	if (n->type != YAML_MAPPING_NODE) {
		lerr(c, n, it->name, "match must list patterns per language, e.g. id: ['\\bizin\\b']");
		return -1;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *lang = scalar(k);
		yaml_node_item_t *item;
		int li;

		if (!lang || !valid_lang(lang)) {
			lerr(c, k, it->name, "match: \"%.32s\" is not a language code (id, en, ...)",
			     lang ? lang : "?");
			continue;
		}
		li = lang_index(c->set, lang, 1);
		if (li < 0) {
			lerr(c, k, it->name, "match: too many languages (at most %d)", BOT_LANGS_MAX);
			continue;
		}
		if (v->type == YAML_SCALAR_NODE) {
			if (pending_add(pp, idx, li, scalar(v), c->file, v) != 0)
				return -1;
			it->n_patterns++;
			continue;
		}
		if (v->type != YAML_SEQUENCE_NODE) {
			lerr(c, v, it->name, "match: %s must be a list of patterns", lang);
			continue;
		}
		for (item = v->data.sequence.items.start; item < v->data.sequence.items.top; item++) {
			yaml_node_t *pn = yaml_document_get_node(c->doc, *item);
			if (!scalar(pn)) {
				lerr(c, pn, it->name, "match: each pattern must be one text");
				continue;
			}
			if (!*scalar(pn)) {
				lerr(c, pn, it->name, "match: an empty pattern would match every message");
				continue;
			}
			if (pending_add(pp, idx, li, scalar(pn), c->file, pn) != 0)
				return -1;
			it->n_patterns++;
		}
	}
	return 0;
}

static int read_intent(load_ctx *c, const yaml_node_t *n, pending *pp)
{
	bot_set *set = c->set;
	bot_intent *it;
	yaml_node_pair_t *p;
	int idx;

	if (set->n_intents == c->cap_intents) {
		size_t cap = c->cap_intents ? c->cap_intents * 2 : 32;
		bot_intent *nv = realloc(set->intents, cap * sizeof(*nv));
		if (!nv)
			return -1;
		set->intents = nv;
		c->cap_intents = cap;
	}
	idx = (int)set->n_intents++;
	it = &set->intents[idx];
	memset(it, 0, sizeof(*it));
	it->form_idx = -1;
	it->order = c->order++;
	set_src(&it->src, c->file, n);
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = scalar(k);
		int rc = 0;

		if (!key) {
			lerr(c, k, it->name, "keys must be plain words");
			continue;
		}
		if (strcmp(key, "intent") == 0) {
			if (read_name(c, v, NULL, "intent name", it->name) == 0)
				set_src(&it->src, c->file, v);
		} else if (strcmp(key, "title") == 0) {
			rc = read_i18n(c, v, it->name, "title", &it->title);
		} else if (strcmp(key, "priority") == 0) {
			const char *s = scalar(v);
			char *end;
			long pr = s ? strtol(s, &end, 10) : 0;
			if (!s || end == s || *end || pr < -1000000 || pr > 1000000)
				lerr(c, v, it->name, "priority must be a whole number");
			else
				it->priority = (int)pr;
		} else if (strcmp(key, "match") == 0) {
			rc = read_match(c, v, idx, pp);
			it = &set->intents[idx];
		} else if (strcmp(key, "examples") == 0) {
			rc = read_examples(c, v, it->name, "examples", &it->examples, &it->n_examples);
		} else if (strcmp(key, "not_examples") == 0) {
			rc = read_examples(c, v, it->name, "not_examples", &it->not_examples, &it->n_not_examples);
		} else if (strcmp(key, "reply") == 0) {
			rc = read_i18n(c, v, it->name, "reply", &it->reply);
		} else if (strcmp(key, "buttons") == 0) {
			set_src(&it->buttons_src, c->file, v);
			rc = read_names(c, v, it->name, "buttons", it->buttons, &it->n_buttons);
			rc = rc < 0 ? 0 : rc;
		} else if (strcmp(key, "when") == 0) {
			set_src(&it->when_src, c->file, v);
			read_name(c, v, it->name, "when", it->when);
		} else if (strcmp(key, "sets") == 0) {
			read_name(c, v, it->name, "sets", it->sets);
		} else if (strcmp(key, "action") == 0) {
			parse_action(c, v, it);
		} else {
			lerr(c, k, it->name,
			     "unknown key \"%.64s\" (intent, title, priority, match, examples, not_examples, reply, "
			     "buttons, when, sets, action)",
			     key);
		}
		if (rc < 0 && c->errors == 0)
			return -1; /* out of memory */
	}
	if (!it->name[0])
		lerr(c, n, NULL, "an intent needs a name (intent: NAME)");
	return 0;
}

static int read_form(load_ctx *c, const yaml_node_t *n)
{
	bot_set *set = c->set;
	bot_form_def *f;
	yaml_node_pair_t *p;

	if (set->n_forms == c->cap_forms) {
		size_t cap = c->cap_forms ? c->cap_forms * 2 : 8;
		bot_form_def *nv = realloc(set->forms, cap * sizeof(*nv));
		if (!nv)
			return -1;
		set->forms = nv;
		c->cap_forms = cap;
	}
	f = &set->forms[set->n_forms++];
	memset(f, 0, sizeof(*f));
	set_src(&f->src, c->file, n);
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = scalar(k);

		if (key && strcmp(key, "form") == 0) {
			if (read_name(c, v, NULL, "form id", f->id) == 0)
				set_src(&f->src, c->file, v);
		} else if (key && strcmp(key, "title") == 0) {
			if (read_i18n(c, v, NULL, "form title", &f->title) < 0)
				return -1;
		} else if (key && strcmp(key, "url") == 0) {
			if (!scalar(v)) {
				lerr(c, v, NULL, "form url must be one address");
				continue;
			}
			f->url = strdup(scalar(v));
			if (!f->url)
				return -1;
			set_src(&f->url_src, c->file, v);
		} else {
			lerr(c, k, NULL, "form: unknown key \"%.64s\" (form, title, url)", key ? key : "?");
		}
	}
	if (!f->id[0])
		lerr(c, n, NULL, "a form needs an id (form: ID)");
	if (!f->url)
		lerr(c, n, NULL, "form %s needs a url", f->id);
	if (f->title.n == 0)
		lerr(c, n, NULL, "form %s needs a title", f->id);
	return 0;
}

static int read_message(load_ctx *c, const yaml_node_t *n)
{
	yaml_node_pair_t *p;
	bot_message tmp;
	int which = -1;
	int rc = 0;

	memset(&tmp, 0, sizeof(tmp));
	set_src(&tmp.src, c->file, n);
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = scalar(k);

		if (key && strcmp(key, "message") == 0) {
			const char *s = scalar(v);
			for (int i = 0; s && i < BOT_MSG_COUNT; i++)
				if (strcmp(s, bot_msg_names[i]) == 0)
					which = i;
			if (which < 0)
				lerr(c, v, NULL,
				     "unknown message \"%.64s\" (fallback, did_you_mean, escalated, text_only, "
				     "rate_limited)",
				     s ? s : "?");
			else
				set_src(&tmp.src, c->file, v);
		} else if (key && strcmp(key, "reply") == 0) {
			if (read_i18n(c, v, NULL, "reply", &tmp.reply) < 0) {
				rc = -1;
				goto out;
			}
		} else if (key && strcmp(key, "buttons") == 0) {
			set_src(&tmp.buttons_src, c->file, v);
			read_names(c, v, NULL, "buttons", tmp.buttons, &tmp.n_buttons);
		} else {
			lerr(c, k, NULL, "message: unknown key \"%.64s\" (message, reply, buttons)", key ? key : "?");
		}
	}
	if (which < 0) {
		if (c->errors == 0)
			lerr(c, n, NULL, "a message needs a name (message: fallback, ...)");
		goto out;
	}
	if (c->set->messages[which].present) {
		lerr(c, n, NULL, "message %s is defined twice (first at %s:%d)", bot_msg_names[which],
		     c->set->messages[which].src.file, c->set->messages[which].src.line);
		goto out;
	}
	tmp.present = 1;
	c->set->messages[which] = tmp;
	memset(&tmp, 0, sizeof(tmp));
out:
	i18n_free(&tmp.reply);
	return rc;
}

static int load_file(load_ctx *c, const char *path, pending *pp)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	FILE *f;
	int rc = 0;

	f = fopen(path, "rb");
	if (!f) {
		c->errors++;
		diag_add(c->diags, path, 0, 0, NULL, "cannot open: %s", strerror(errno));
		return 0;
	}
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return -1;
	}
	yaml_parser_set_input_file(&parser, f);
	for (;;) {
		yaml_node_t *root;
		yaml_node_item_t *item;

		if (!yaml_parser_load(&parser, &doc)) {
			c->errors++;
			diag_add(c->diags, path, (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
				 NULL, "not valid YAML: %s%s%s", parser.problem ? parser.problem : "syntax error",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;
		}
		c->doc = &doc;
		if (root->type != YAML_SEQUENCE_NODE) {
			lerr(c, root, NULL,
			     "a file is a list of items, each starting with \"- intent:\", \"- form:\" or \"- "
			     "message:\"");
			yaml_document_delete(&doc);
			continue;
		}
		for (item = root->data.sequence.items.start; item < root->data.sequence.items.top && rc == 0; item++) {
			yaml_node_t *n = yaml_document_get_node(&doc, *item);
			yaml_node_t *k;
			const char *kind;

			if (n->type != YAML_MAPPING_NODE || n->data.mapping.pairs.start == n->data.mapping.pairs.top) {
				lerr(c, n, NULL, "each item must start with \"intent:\", \"form:\" or \"message:\"");
				continue;
			}
			k = yaml_document_get_node(&doc, n->data.mapping.pairs.start->key);
			kind = scalar(k);
			if (kind && strcmp(kind, "intent") == 0)
				rc = read_intent(c, n, pp);
			else if (kind && strcmp(kind, "form") == 0)
				rc = read_form(c, n);
			else if (kind && strcmp(kind, "message") == 0)
				rc = read_message(c, n);
			else
				lerr(c, k, NULL,
				     "each item must start with \"intent:\", \"form:\" or \"message:\" (got \"%.64s\")",
				     kind ? kind : "?");
		}
		yaml_document_delete(&doc);
		c->doc = NULL;
		if (rc)
			break;
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

/* ---- checks and compilation ---- */

static int rank_cmp(const void *a, const void *b)
{
	const bot_intent *x = *(bot_intent *const *)a, *y = *(bot_intent *const *)b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int resolve_buttons(load_ctx *c, const char *owner, const char *msgname, char names[][BOT_NAME_MAX], int n,
			   int *idx, const bot_src *src)
{
	for (int i = 0; i < n; i++) {
		idx[i] = bot_set_intent_index(c->set, names[i]);
		if (idx[i] < 0) {
			c->errors++;
			diag_add(c->diags, src->file, src->line, src->col, owner, "%s%s%sbutton \"%s\" names no intent",
				 msgname ? "message " : "", msgname ? msgname : "", msgname ? ": " : "", names[i]);
		}
	}
	return 0;
}

static int render_all(load_ctx *c, const bot_config *cfg, bot_i18n *t, const char *file, const char *owner,
		      const bot_form_def *form)
{
	for (int i = 0; i < t->n; i++) {
		char err[256];
		char *out = NULL;

		if (bot_template_render(c->set, cfg->vars, cfg->n_vars, t->s[i], t->lang[i], form, &out, err,
					sizeof(err)) != 0) {
			c->errors++;
			diag_add(c->diags, file, t->line[i], t->col[i], owner, "reply (%s): %s", t->lang[i], err);
			continue;
		}
		free(t->s[i]);
		t->s[i] = out;
	}
	return 0;
}

static int group_index(bot_set *set, const char *context)
{
	for (size_t i = 0; i < set->n_groups; i++)
		if (strcmp(set->groups[i].context, context) == 0)
			return (int)i;
	return -1;
}

static int compile_patterns(load_ctx *c, pending *pp)
{
	bot_set *set = c->set;
	bot_intent **ranked = NULL;
	size_t np = 0;
	int rc = -1;

	ranked = malloc((set->n_intents ? set->n_intents : 1) * sizeof(*ranked));
	set->patterns = malloc((pp->n ? pp->n : 1) * sizeof(*set->patterns));
	set->groups = calloc(set->n_intents + 1, sizeof(*set->groups));
	if (!ranked || !set->patterns || !set->groups)
		goto out;
	for (size_t i = 0; i < set->n_intents; i++)
		ranked[i] = &set->intents[i];
	qsort(ranked, set->n_intents, sizeof(*ranked), rank_cmp);
	for (size_t r = 0; r < set->n_intents; r++)
		ranked[r]->rank = (int)r;
	/* groups[0]: intents without `when`; then one group per context. */
	set->groups[0].m = bot_match_new();
	if (!set->groups[0].m)
		goto out;
	set->n_groups = 1;
	for (size_t r = 0; r < set->n_intents; r++) {
		bot_intent *it = ranked[r];
		int gi = group_index(set, it->when);
		int idx = (int)(it - set->intents);

		if (gi < 0) {
			gi = (int)set->n_groups;
			snprintf(set->groups[gi].context, BOT_NAME_MAX, "%s", it->when);
			set->groups[gi].m = bot_match_new();
			if (!set->groups[gi].m)
				goto out;
			set->n_groups++;
		}
		for (size_t k = 0; k < pp->n; k++) {
			pending_pattern *p = &pp->v[k];
			char err[256];
			size_t off = 0;

			if (p->intent != idx)
				continue;
			if (bot_match_add(set->groups[gi].m, p->text, strlen(p->text), (uint32_t)np, err, sizeof(err),
					  &off) != 0) {
				c->errors++;
				diag_add(c->diags, p->file, p->line, p->col + (int)off + (p->quoted ? 1 : 0), it->name,
					 "pattern '%.80s' does not compile: %s (at offset %zu)", p->text, err, off);
				continue;
			}
			set->patterns[np].intent = idx;
			set->patterns[np].lang = p->lang;
			np++;
		}
	}
	set->n_patterns = np;
	for (size_t g = 0; g < set->n_groups; g++)
		if (bot_match_build(set->groups[g].m) != 0)
			goto out;
	rc = 0;
out:
	free(ranked);
	return rc;
}

static void check_examples(load_ctx *c)
{
	bot_set *set = c->set;
	bot_match_scratch *ms = bot_match_scratch_new();

	if (!ms)
		return;
	for (size_t i = 0; i < set->n_intents; i++) {
		bot_intent *it = &set->intents[i];
		size_t taken = 0;
		int by = -2, lang;

		if (it->n_patterns == 0)
			continue;
		if (it->n_examples == 0) {
			c->errors++;
			diag_add(c->diags, it->src.file, it->src.line, it->src.col, it->name,
				 "an intent with patterns needs examples: messages that must reach it");
		}
		for (size_t e = 0; e < it->n_examples; e++) {
			int w =
			    bot_select(set, ms, it->when, it->examples[e].text, strlen(it->examples[e].text), &lang);
			if (w >= 0 && w != (int)i && set->intents[w].rank < it->rank &&
			    (strcmp(set->intents[w].when, it->when) == 0)) {
				taken++;
				by = by == -2 ? w : (by == w ? w : -1);
			}
		}
		if (it->n_examples && taken == it->n_examples) {
			c->errors++;
			diag_add(
			    c->diags, it->src.file, it->src.line, it->src.col, it->name,
			    "fully shadowed: every example is taken by higher-ranked intent%s%s (raise this intent's "
			    "priority or narrow the other's patterns)",
			    by >= 0 ? " " : "s", by >= 0 ? set->intents[by].name : "");
			continue;
		}
		for (size_t e = 0; e < it->n_examples; e++) {
			bot_example *ex = &it->examples[e];
			int w = bot_select(set, ms, it->when, ex->text, strlen(ex->text), &lang);
			if (w == (int)i)
				continue;
			c->errors++;
			if (w < 0)
				diag_add(c->diags, it->src.file, ex->line, ex->col, it->name,
					 "example \"%.80s\" matches no intent", ex->text);
			else
				diag_add(c->diags, it->src.file, ex->line, ex->col, it->name,
					 "example \"%.80s\" reaches intent %s instead", ex->text, set->intents[w].name);
		}
		for (size_t e = 0; e < it->n_not_examples; e++) {
			bot_example *ex = &it->not_examples[e];
			if (bot_select(set, ms, it->when, ex->text, strlen(ex->text), &lang) == (int)i) {
				c->errors++;
				diag_add(c->diags, it->src.file, ex->line, ex->col, it->name,
					 "not_example \"%.80s\" reaches this intent", ex->text);
			}
		}
	}
	bot_match_scratch_free(ms);
}

static int check_set(load_ctx *c, pending *pp)
{
	bot_set *set = c->set;
	const bot_config *cfg = c->cfg;

	/* names */
	for (size_t i = 0; i < set->n_intents; i++)
		for (size_t j = 0; j < i; j++)
			if (set->intents[i].name[0] && strcmp(set->intents[i].name, set->intents[j].name) == 0) {
				c->errors++;
				diag_add(c->diags, set->intents[i].src.file, set->intents[i].src.line,
					 set->intents[i].src.col, set->intents[i].name,
					 "duplicate intent name (first defined at %s:%d)", set->intents[j].src.file,
					 set->intents[j].src.line);
			}
	for (size_t i = 0; i < set->n_forms; i++)
		for (size_t j = 0; j < i; j++)
			if (set->forms[i].id[0] && strcmp(set->forms[i].id, set->forms[j].id) == 0) {
				c->errors++;
				diag_add(c->diags, set->forms[i].src.file, set->forms[i].src.line,
					 set->forms[i].src.col, NULL, "duplicate form id %s (first defined at %s:%d)",
					 set->forms[i].id, set->forms[j].src.file, set->forms[j].src.line);
			}
	for (int m = 0; m < BOT_MSG_COUNT; m++)
		if (bot_msg_required[m] && !set->messages[m].present) {
			c->errors++;
			diag_add(c->diags, c->file ? c->file : "", 0, 0, NULL,
				 "message %s is missing (see docs/intents.md)", bot_msg_names[m]);
		}
	/* references, replies, templates */
	for (size_t i = 0; i < set->n_forms; i++) {
		bot_form_def *f = &set->forms[i];
		char err[256];
		char *url = NULL;

		if (f->url && bot_template_render(set, cfg->vars, cfg->n_vars, f->url, set->default_lang, NULL, &url,
						  err, sizeof(err)) != 0) {
			c->errors++;
			diag_add(c->diags, f->url_src.file, f->url_src.line, f->url_src.col, NULL, "form %s url: %s",
				 f->id, err);
		} else if (f->url) {
			free(f->url);
			f->url = url;
		}
	}
	for (size_t i = 0; i < set->n_forms; i++) {
		bot_form_def *f = &set->forms[i];
		for (int l = 0; l < set->n_langs; l++) {
			f->by_lang[l].id = f->id;
			f->by_lang[l].title = bot_i18n_get(&f->title, set->langs[l], set->default_lang);
			f->by_lang[l].url = f->url;
		}
	}
	for (size_t i = 0; i < set->n_intents; i++) {
		bot_intent *it = &set->intents[i];
		int ok_when = 0;

		if (it->reply.n == 0) {
			c->errors++;
			diag_add(c->diags, it->src.file, it->src.line, it->src.col, it->name, "no reply");
		} else {
			int has_def = 0;
			for (int l = 0; l < it->reply.n; l++)
				has_def |= strcmp(it->reply.lang[l], set->default_lang) == 0;
			if (!has_def) {
				c->errors++;
				diag_add(c->diags, it->src.file, it->src.line, it->src.col, it->name,
					 "reply missing for the default language (%s)", set->default_lang);
			}
		}
		resolve_buttons(c, it->name, NULL, it->buttons, it->n_buttons, it->button_idx, &it->buttons_src);
		if (it->action == BOT_ACT_SEND_FORM) {
			for (size_t f = 0; f < set->n_forms; f++)
				if (strcmp(set->forms[f].id, it->action_arg) == 0)
					it->form_idx = (int)f;
			if (it->form_idx < 0) {
				c->errors++;
				diag_add(c->diags, it->action_src.file, it->action_src.line, it->action_src.col,
					 it->name, "send_form:%s names no form", it->action_arg);
			}
		}
		if (it->when[0]) {
			for (size_t j = 0; j < set->n_intents; j++)
				ok_when |= strcmp(set->intents[j].sets, it->when) == 0;
			if (!ok_when) {
				c->errors++;
				diag_add(c->diags, it->when_src.file, it->when_src.line, it->when_src.col, it->name,
					 "when: no intent ever sets the context \"%s\"", it->when);
			}
		}
		if (it->n_patterns == 0) {
			int reachable = 0;
			for (size_t j = 0; j < set->n_intents; j++)
				for (int b = 0; b < set->intents[j].n_buttons; b++)
					reachable |= strcmp(set->intents[j].buttons[b], it->name) == 0;
			for (int m = 0; m < BOT_MSG_COUNT; m++)
				for (int b = 0; b < set->messages[m].n_buttons; b++)
					reachable |= strcmp(set->messages[m].buttons[b], it->name) == 0;
			if (!reachable) {
				c->errors++;
				diag_add(c->diags, it->src.file, it->src.line, it->src.col, it->name,
					 "unreachable: no patterns (match:) and no button leads here");
			}
		}
		render_all(c, cfg, &it->reply, it->src.file, it->name,
			   it->form_idx >= 0 ? &set->forms[it->form_idx] : NULL);
	}
	for (int m = 0; m < BOT_MSG_COUNT; m++) {
		bot_message *msg = &set->messages[m];
		if (!msg->present)
			continue;
		{
			int has_def = 0;
			for (int l = 0; l < msg->reply.n; l++)
				has_def |= strcmp(msg->reply.lang[l], set->default_lang) == 0;
			if (!has_def) {
				c->errors++;
				diag_add(c->diags, msg->src.file, msg->src.line, msg->src.col, NULL,
					 "message %s: reply missing for the default language (%s)", bot_msg_names[m],
					 set->default_lang);
			}
		}
		resolve_buttons(c, NULL, bot_msg_names[m], msg->buttons, msg->n_buttons, msg->button_idx,
				&msg->buttons_src);
		render_all(c, cfg, &msg->reply, msg->src.file, NULL, NULL);
	}
	if (compile_patterns(c, pp) != 0 || bot_index_build(set) != 0)
		return -1;
	if (c->errors == 0)
		check_examples(c);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n > m && strcmp(s + n - m, suf) == 0;
}

bot_set *bot_set_load(const char *dir, const bot_config *cfg, bot_diags *diags)
{
	load_ctx c;
	pending pp = {0};
	bot_set *set = NULL;
	DIR *d = NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n_names = 0, cap_names = 0;
	int ok = 0;

	memset(&c, 0, sizeof(c));
	set = calloc(1, sizeof(*set));
	if (!set)
		goto out;
	snprintf(set->default_lang, sizeof(set->default_lang), "%s",
		 cfg && cfg->default_lang && *cfg->default_lang ? cfg->default_lang : "id");
	set->fallbacks_before_escalate = cfg ? cfg->fallbacks_before_escalate : 2;
	lang_index(set, set->default_lang, 1);
	c.set = set;
	c.diags = diags;
	c.cfg = cfg;
	d = opendir(dir);
	if (!d) {
		diag_add(diags, dir, 0, 0, NULL, "cannot open the intents directory: %s", strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		char *nm;
		if (de->d_name[0] == '.' || !(has_suffix(de->d_name, ".yaml") || has_suffix(de->d_name, ".yml")))
			continue;
		if (n_names == cap_names) {
			size_t cap = cap_names ? cap_names * 2 : 16;
			char **nv = realloc(names, cap * sizeof(*nv));
			if (!nv)
				goto out;
			names = nv;
			cap_names = cap;
		}
		nm = strdup(de->d_name);
		if (!nm)
			goto out;
		names[n_names++] = nm;
	}
	if (n_names > 0)
		qsort(names, n_names, sizeof(*names), name_cmp);
	if (n_names == 0) {
		diag_add(diags, dir, 0, 0, NULL, "no intent files (*.yaml) in this directory");
		goto out;
	}
	for (size_t i = 0; i < n_names; i++) {
		char path[1024];
		int n = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			diag_add(diags, names[i], 0, 0, NULL, "path too long");
			c.errors++;
			continue;
		}
		c.file = path;
		if (load_file(&c, path, &pp) != 0)
			goto out;
	}
	c.file = n_names ? dir : "";
	{
		bot_config defcfg = {0};
		if (!cfg)
			c.cfg = &defcfg;
		if (check_set(&c, &pp) != 0)
			goto out;
		c.cfg = cfg;
	}
	ok = c.errors == 0;
out:
	if (!ok && diags && diags->n == 0)
		diag_add(diags, dir, 0, 0, NULL, "out of memory while loading");
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	if (d)
		closedir(d);
	pending_free(&pp);
	if (!ok) {
		bot_set_free(set);
		return NULL;
	}
	return set;
}
