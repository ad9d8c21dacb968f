/* bot_int: the inside of a bot_set, shared by the loader (bot_load.c), the
 * template renderer (bot_template.c) and the engine (bot_engine.c). Not part of
 * the public interface. */
#ifndef LOKET_BOT_INT_H
#define LOKET_BOT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "bot/bot.h"
#include "bot/bot_match.h"

#define BOT_LANGS_MAX 8

/* A string per language. */
typedef struct bot_i18n {
	int n;
	char lang[BOT_LANGS_MAX][BOT_LANG_MAX];
	char *s[BOT_LANGS_MAX];			     /* owned */
	int line[BOT_LANGS_MAX], col[BOT_LANGS_MAX]; /* where each came from */
} bot_i18n;

typedef struct bot_example {
	char *text; /* owned */
	int line, col;
	uint32_t *tri; /* owned trigram set */
	size_t ntri;
} bot_example;

typedef struct bot_src {
	char file[256];
	int line, col;
} bot_src;

typedef struct bot_intent {
	char name[BOT_NAME_MAX];
	bot_src src;
	int priority;
	int order; /* position in load order: the tie-break */
	int rank;  /* position after sorting by (priority desc, order) */
	bot_i18n title;
	bot_i18n reply; /* rendered at load */
	int n_buttons;
	char buttons[BOT_MENU_MAX][BOT_NAME_MAX];
	int button_idx[BOT_MENU_MAX]; /* resolved intent indexes */
	bot_src buttons_src;
	char when[BOT_NAME_MAX], sets[BOT_NAME_MAX];
	bot_src when_src;
	bot_action_kind action; /* 0 = none */
	char action_arg[BOT_NAME_MAX];
	bot_src action_src;
	int form_idx; /* send_form: index into forms, else -1 */
	int n_patterns;
	bot_example *examples, *not_examples;
	size_t n_examples, n_not_examples;
} bot_intent;

typedef struct bot_form_def {
	char id[BOT_NAME_MAX];
	bot_src src;
	bot_i18n title;
	char *url; /* owned, rendered */
	bot_src url_src;
	bot_form by_lang[BOT_LANGS_MAX]; /* public views, one per set language */
} bot_form_def;

enum bot_msg_id {
	BOT_MSG_FALLBACK,
	BOT_MSG_DID_YOU_MEAN,
	BOT_MSG_ESCALATED,
	BOT_MSG_TEXT_ONLY,
	BOT_MSG_RATE_LIMITED,
	BOT_MSG_COUNT
};

typedef struct bot_message {
	int present;
	bot_src src;
	bot_i18n reply;
	int n_buttons;
	char buttons[BOT_MENU_MAX][BOT_NAME_MAX];
	int button_idx[BOT_MENU_MAX];
	bot_src buttons_src;
} bot_message;

/* Patterns of the intents that share one `when` ("" = no when), in rank order. */
typedef struct bot_group {
	char context[BOT_NAME_MAX];
	bot_match *m;
} bot_group;

/* What a pattern id in a group's matcher stands for. */
typedef struct bot_pattern_ref {
	int intent;
	int lang; /* index into set->langs */
} bot_pattern_ref;

struct bot_set {
	bot_intent *intents;
	size_t n_intents;
	bot_form_def *forms;
	size_t n_forms;
	bot_message messages[BOT_MSG_COUNT];
	bot_group *groups; /* groups[0] is the general one */
	size_t n_groups;
	bot_pattern_ref *patterns;
	size_t n_patterns;
	int n_langs;
	char langs[BOT_LANGS_MAX][BOT_LANG_MAX];
	char default_lang[BOT_LANG_MAX];
	int fallbacks_before_escalate;
	int *by_name; /* intent indexes sorted by name, for bot_set_intent_index */
	/* "did you mean": an inverted index from trigram to the examples holding
	 * it, so a fallback costs what the message shares with the examples, not
	 * a comparison with every example. */
	size_t n_ex;	    /* examples of intents with patterns, all together */
	int *ex_intent;	    /* [n_ex] the intent of each */
	uint32_t *ex_ntri;  /* [n_ex] its number of indexed (not stop) trigrams */
	size_t n_tri;	    /* distinct trigrams */
	uint32_t *tri_key;  /* [n_tri] sorted */
	uint32_t *tri_off;  /* [n_tri + 1] into tri_post */
	uint32_t *tri_post; /* example ids */
	uint32_t *tri_slot; /* hash of tri_key: index + 1, 0 = empty */
	uint32_t tri_mask;  /* slots - 1 (a power of two) */
	size_t n_stop;	    /* trigrams too common to tell examples apart... */
	uint32_t *stop;	    /* ...sorted; left out of the index and of every score */
};

/* The index in set->tri_key of trigram t, or -1. */
static inline int64_t bot_tri_find(const bot_set *set, uint32_t t)
{
	uint32_t h = (t * 2654435761u) & set->tri_mask;

	if (!set->tri_slot)
		return -1;
	for (;;) {
		uint32_t v = set->tri_slot[h];
		if (v == 0)
			return -1;
		if (set->tri_key[v - 1] == t)
			return (int64_t)v - 1;
		h = (h + 1) & set->tri_mask;
	}
}

/* Builds set->by_name and the trigram index. Returns 0 or -1 (out of memory). */
int bot_index_build(bot_set *set);
void bot_index_free(bot_set *set);

extern const char *const bot_msg_names[BOT_MSG_COUNT];

/* The string for lang, else the default language's, else the first; NULL when
 * the i18n is empty. */
const char *bot_i18n_get(const bot_i18n *t, const char *lang, const char *def);

/* Finds an intent by name; -1 when there is none. */
int bot_set_intent_index(const bot_set *set, const char *name);

/* Renders template src for lang into a new string (*out, malloc'd). Lines
 * whose variables are all empty are dropped. Returns 0, or -1 with a message
 * (unknown variable, unclosed brace) in err. form may be NULL. */
int bot_template_render(const bot_set *set, const bot_var *vars, size_t n_vars, const char *src, const char *lang,
			const bot_form_def *form, char **out, char *err, size_t errlen);

/* Chooses the intent answering text in context (the engine's rule: context group,
 * then the general one). Returns the intent index and its pattern's language
 * index in *lang, or -1. */
int bot_select(const bot_set *set, bot_match_scratch *ms, const char *context, const char *text, size_t len, int *lang);

#endif
