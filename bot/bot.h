/* bot: the intent engine's public face.
 *
 * A bot_set is a compiled, immutable set of intents, forms and system messages
 * loaded from a directory of YAML files (see docs/intents.md). bot_handle() is a
 * pure function of (set, conversation state, inbound message) -> (replies,
 * buttons, actions, next state): no I/O, no globals, no allocation. Everything a
 * result points to lives in the set, so a result stays valid while its set does.
 * One set may serve many threads at once; each thread brings its own scratch.
 *
 * This module includes neither libwebsockets, curl nor sqlite: gateway/ and
 * store/ call it, never the other way round. */
#ifndef LOKET_BOT_H
#define LOKET_BOT_H

#include <stddef.h>
#include <stdint.h>

#define BOT_LANG_MAX 8	  /* "id", "en", ... with the NUL */
#define BOT_NAME_MAX 64	  /* intent, form and context names, with the NUL */
#define BOT_MENU_MAX 10	  /* buttons offered at once (WhatsApp lists hold 10) */
#define BOT_REPLIES_MAX 3 /* replies one inbound message can cause */
#define BOT_ACTIONS_MAX 4
#define BOT_INPUT_MAX 1024 /* bytes of a message that matching looks at */

/* ---- conversation state ---- */

typedef enum bot_mode {
	BOT_MODE_BOT = 0,  /* the bot answers */
	BOT_MODE_QUEUED,   /* escalated, waiting for an agent: the bot stays silent */
	BOT_MODE_ASSIGNED, /* an agent has it: the bot stays silent */
} bot_mode;

/* Everything the engine remembers between two messages of one conversation.
 * Plain data: the store keeps it in columns, a test builds it by hand. */
typedef struct bot_state {
	bot_mode mode;
	char lang[BOT_LANG_MAX];	       /* "" until the citizen's language is known */
	char context[BOT_NAME_MAX];	       /* set by the last intent's "sets", or "" */
	int fallbacks;			       /* fallbacks in a row */
	int opted_out;			       /* 1 after STOP/BERHENTI until START/MULAI */
	int n_menu;			       /* buttons offered by the last reply */
	char menu[BOT_MENU_MAX][BOT_NAME_MAX]; /* their ids, for "1", "2", ... */
} bot_state;

/* Sets *st to a new conversation's state. */
void bot_state_init(bot_state *st);

/* Joins st->menu as "a,b,c" into out / splits such a string back into st->menu.
 * Both return 0, or -1 when it does not fit (out is then ""). */
int bot_state_menu_join(const bot_state *st, char *out, size_t outlen);
int bot_state_menu_split(bot_state *st, const char *joined);

const char *bot_mode_name(bot_mode m);		     /* "bot", "queued", "assigned" */
int bot_mode_parse(const char *name, bot_mode *out); /* 0 or -1 */

/* ---- the set ---- */

typedef struct bot_set bot_set;
typedef struct bot_scratch bot_scratch;

typedef struct bot_var {
	const char *name; /* "office.name", ... */
	const char *value;
} bot_var;

typedef struct bot_config {
	const char *default_lang;      /* replies fall back to it; "id" when NULL */
	int fallbacks_before_escalate; /* 0 = never escalate on fallbacks */
	const bot_var *vars;	       /* template variables, copied at load */
	size_t n_vars;
} bot_config;

/* One problem found while loading: "file:line:col: intent NAME: message". */
typedef struct bot_diag {
	char file[256];
	int line, col;		   /* 1-based; 0 when the problem is the whole file */
	char intent[BOT_NAME_MAX]; /* "" when not about one intent */
	char msg[512];
} bot_diag;

typedef struct bot_diags {
	bot_diag *v;
	size_t n, cap;
} bot_diags;

void bot_diags_free(bot_diags *d);
/* Formats d->v[i] as one "file:line:col: intent NAME: message" line. */
int bot_diag_format(const bot_diag *d, char *out, size_t outlen);

/* Loads every *.yaml / *.yml file of dir (in byte order of their names), compiles
 * the patterns and checks the whole set (docs/intents.md lists the checks).
 * Returns the set, or NULL when there is any problem; every problem is appended
 * to diags (which the caller frees with bot_diags_free). A broken set is never
 * returned. The caller frees the set with bot_set_free(). */
bot_set *bot_set_load(const char *dir, const bot_config *cfg, bot_diags *diags);
void bot_set_free(bot_set *set);

size_t bot_set_intent_count(const bot_set *set);
size_t bot_set_pattern_count(const bot_set *set);
const char *bot_set_default_lang(const bot_set *set);

/* Per-thread matching memory. bot_scratch_new returns NULL only when out of
 * memory; the caller frees it with bot_scratch_free. One scratch serves any set. */
bot_scratch *bot_scratch_new(void);
void bot_scratch_free(bot_scratch *s);

/* ---- handling one message ---- */

typedef struct bot_input {
	const char *text;   /* what the citizen wrote (untrusted, any bytes), or NULL */
	size_t len;	    /* bytes of text */
	const char *button; /* id of a tapped quick reply (an intent name), or NULL */
	int media;	    /* 1 when the message is an image, a document, ... */
} bot_input;

typedef struct bot_button {
	const char *id;	   /* the intent it leads to */
	const char *title; /* in the reply's language */
} bot_button;

typedef struct bot_form {
	const char *id, *title, *url; /* title in the reply's language */
} bot_form;

typedef struct bot_reply {
	const char *text; /* rendered, in the reply's language; never NULL */
	int n_buttons;
	bot_button buttons[BOT_MENU_MAX];
	const bot_form *form; /* the form this reply sends (send_form), or NULL */
} bot_reply;

typedef enum bot_action_kind {
	BOT_ACT_ESCALATE = 1,
	BOT_ACT_SEND_FORM,    /* arg: form id */
	BOT_ACT_SET_LANGUAGE, /* arg: language */
	BOT_ACT_OPT_OUT,
	BOT_ACT_OPT_IN,
} bot_action_kind;

typedef struct bot_action {
	bot_action_kind kind;
	const char *arg; /* or NULL */
} bot_action;

typedef struct bot_result {
	const char *intent; /* the intent that answered, or NULL */
	int fallback;	    /* 1 when no intent matched */
	int silent;	    /* 1 when the engine said nothing (agent's turn, opted out) */
	char lang[BOT_LANG_MAX];
	int n_replies;
	bot_reply replies[BOT_REPLIES_MAX];
	int n_actions;
	bot_action actions[BOT_ACTIONS_MAX];
	int n_suggestions; /* "did you mean" intents offered on a fallback */
} bot_result;

/* The engine. Reads *in, writes the next state to *out (in and out may be the
 * same object) and the answer to *res. Returns 0, or -1 only on a misuse (NULL
 * arguments). Text is normalised first (see bot_text.h). */
int bot_handle(const bot_set *set, bot_scratch *scratch, const bot_state *in, const bot_input *msg, bot_state *out,
	       bot_result *res);

/* Renders a result's action as "escalate", "send_form:pbg", ... into out. */
int bot_action_format(const bot_action *a, char *out, size_t outlen);

/* Fills *res with one of the set's own messages ("rate_limited", "text_only",
 * ...) in lang as its only reply. Returns 0, or -1 when the set has no such
 * message (res is then empty and silent). */
int bot_set_message(const bot_set *set, const char *name, const char *lang, bot_result *res);

/* Looks up a form by id, or NULL. */
const bot_form *bot_set_form(const bot_set *set, const char *id, const char *lang);

#endif
