/* cli_bot: the admin's tools for the intent set: `loket check`, `loket try` and
 * `loket chat` (a whole conversation, kept in the store like a real one). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "cli/cli.h"
#include "gateway/gw_handle.h"
#include "store/store.h"

typedef struct cli_args {
	const char *config;
	const char *as;
	int json;
	const char *pos[4];
	int n_pos;
} cli_args;

static int parse_args(int argc, char **argv, cli_args *a, int allow_as)
{
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			a->config = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			a->json = 1;
		} else if (allow_as && strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
			a->as = argv[++i];
		} else if (strcmp(argv[i], "--") == 0) {
			for (i++; i < argc && a->n_pos < 4; i++)
				a->pos[a->n_pos++] = argv[i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "loket %s: unknown option %s\n", argv[0], argv[i]);
			return -1;
		} else if (a->n_pos < 4) {
			a->pos[a->n_pos++] = argv[i];
		} else {
			fprintf(stderr, "loket %s: too many arguments\n", argv[0]);
			return -1;
		}
	}
	return 0;
}

int cli_check(int argc, char **argv)
{
	cli_args a;
	cfg c;
	bot_set *set;

	if (parse_args(argc, argv, &a, 0) != 0 || a.n_pos > 1) {
		fprintf(stderr, "usage: loket check [-c FILE] [DIR]\n");
		return 2;
	}
	if (cli_config_load(a.config, &c) != 0)
		return 1;
	set = cli_bot_load(&c, a.n_pos ? a.pos[0] : NULL);
	if (!set)
		return 1;
	printf("%s: %zu intents, %zu patterns: ok\n", a.n_pos ? a.pos[0] : c.bot.intents, bot_set_intent_count(set),
	       bot_set_pattern_count(set));
	bot_set_free(set);
	return 0;
}

/* ---- printing a result ---- */

static json_t *result_json(const bot_result *res, const bot_reply *r)
{
	json_t *o = json_object(), *buttons = json_array(), *ids = json_array(), *actions = json_array();

	json_object_set_new(o, "intent", res->intent ? json_string(res->intent) : json_null());
	json_object_set_new(o, "fallback", json_boolean(res->fallback));
	json_object_set_new(o, "language", json_string(res->lang));
	json_object_set_new(o, "reply", r ? json_string(r->text) : json_null());
	for (int i = 0; r && i < r->n_buttons; i++) {
		json_array_append_new(buttons, json_string(r->buttons[i].title));
		json_array_append_new(ids, json_string(r->buttons[i].id));
	}
	json_object_set_new(o, "buttons", buttons);
	json_object_set_new(o, "button_ids", ids);
	for (int i = 0; i < res->n_actions; i++) {
		char s[160];
		if (bot_action_format(&res->actions[i], s, sizeof(s)) == 0)
			json_array_append_new(actions, json_string(s));
	}
	json_object_set_new(o, "actions", actions);
	if (r && r->form) {
		json_t *f = json_object();
		json_object_set_new(f, "id", json_string(r->form->id));
		json_object_set_new(f, "title", json_string(r->form->title ? r->form->title : ""));
		json_object_set_new(f, "url", json_string(r->form->url ? r->form->url : ""));
		json_object_set_new(o, "form", f);
	}
	if (res->silent)
		json_object_set_new(o, "silent", json_true());
	return o;
}

static void print_result(const bot_result *res, int json, const char *state_note)
{
	if (json) {
		int n = res->n_replies ? res->n_replies : 1;
		for (int i = 0; i < n; i++) {
			json_t *o = result_json(res, res->n_replies ? &res->replies[i] : NULL);
			char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
			if (s)
				printf("%s\n", s);
			free(s);
			json_decref(o);
		}
		fflush(stdout);
		return;
	}
	if (res->silent) {
		printf("(the bot stays silent%s)\n", state_note ? state_note : "");
	}
	for (int i = 0; i < res->n_replies; i++) {
		const bot_reply *r = &res->replies[i];
		printf("bot> %s\n", r->text);
		if (r->form)
			printf("     [form] %s: %s\n", r->form->title ? r->form->title : r->form->id,
			       r->form->url ? r->form->url : "");
		for (int b = 0; b < r->n_buttons; b++)
			printf("     [%d] %s\n", b + 1, r->buttons[b].title);
	}
	if (!res->silent) {
		char acts[512] = "";
		size_t o = 0;
		for (int i = 0; i < res->n_actions; i++) {
			char s[160];
			if (bot_action_format(&res->actions[i], s, sizeof(s)) == 0) {
				int n = snprintf(acts + o, sizeof(acts) - o, "%s%s", o ? ", " : "", s);
				if (n > 0 && (size_t)n < sizeof(acts) - o)
					o += (size_t)n;
			}
		}
		printf("     (intent: %s%s%s%s)\n", res->intent ? res->intent : "none",
		       res->fallback ? ", fallback" : "", o ? ", actions: " : "", acts);
	}
	if (state_note && !res->silent)
		printf("%s\n", state_note);
	fflush(stdout);
}

int cli_try(int argc, char **argv)
{
	cli_args a;
	cfg c;
	bot_set *set = NULL;
	bot_scratch *scratch = NULL;
	bot_state st;
	bot_result res;
	bot_input in = {0};
	int rc = 1;

	if (parse_args(argc, argv, &a, 0) != 0 || a.n_pos != 1) {
		fprintf(stderr, "usage: loket try [-c FILE] [--json] TEXT\n");
		return 2;
	}
	if (cli_config_load(a.config, &c) != 0)
		return 1;
	set = cli_bot_load(&c, NULL);
	scratch = bot_scratch_new();
	if (!set || !scratch)
		goto out;
	bot_state_init(&st);
	in.text = a.pos[0];
	in.len = strlen(a.pos[0]);
	if (bot_handle(set, scratch, &st, &in, &st, &res) != 0)
		goto out;
	print_result(&res, a.json, NULL);
	rc = 0;
out:
	bot_scratch_free(scratch);
	bot_set_free(set);
	return rc;
}

/* ---- chat ---- */

int cli_chat(int argc, char **argv)
{
	cli_args a;
	cfg c;
	bot_set *set = NULL;
	gw_handle *h = NULL;
	store *s = NULL;
	store_opts so = {0};
	char err[512], line[8192], idbuf[64];
	long long seq = 0;
	int rc = 1;

	if (parse_args(argc, argv, &a, 1) != 0 || a.n_pos != 0) {
		fprintf(stderr, "usage: loket chat [-c FILE] [--json] [--as ADDRESS]\n");
		return 2;
	}
	if (cli_config_load(a.config, &c) != 0)
		return 1;
	set = cli_bot_load(&c, NULL);
	if (!set)
		goto out;
	so.path = c.store.path;
	so.synchronous_full = strcmp(c.store.synchronous, "FULL") == 0;
	so.busy_timeout_ms = c.store.busy_timeout_ms;
	s = store_open(&so, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "loket chat: %s\n", err);
		goto out;
	}
	h = gw_handle_new(&c);
	if (!h)
		goto out;
	gw_handle_set_bot(h, set);
	if (!a.json)
		printf("loket chat: %s, as %s (one message per line; Ctrl-D ends)\n", c.office.name,
		       a.as ? a.as : "local");
	while (fgets(line, sizeof(line), stdin)) {
		size_t n = strlen(line);
		store_inbound in = {0};
		store_inbound_result res;
		const bot_result *br;
		const char *note = NULL;
		store_conv conv;
		int r;

		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		snprintf(idbuf, sizeof(idbuf), "cli-%lld-%lld", (long long)clock_wall_ms(), ++seq);
		in.channel = "cli";
		in.address = a.as ? a.as : "local";
		in.provider_id = idbuf;
		in.kind = "text";
		in.text = line;
		in.at_ms = clock_wall_ms();
		gw_handle_reset(h);
		r = store_inbound_batch(s, &in, 1, gw_handle_decide, h, &res);
		if (r != STORE_OK || res.rc < 0) {
			fprintf(stderr, "loket chat: could not store the message: %s (%s)\n",
				store_rc_str(r != STORE_OK ? r : res.rc), store_errmsg(s));
			goto out;
		}
		br = gw_handle_result(h, 0);
		if (!br)
			continue;
		if (store_conv_get(s, res.conversation_id, &conv) == STORE_OK) {
			if (conv.bot.mode == BOT_MODE_QUEUED)
				note = br->silent ? ": the conversation waits for an agent"
						  : "-- handed to the agents' queue: an agent will answer here --";
			else if (conv.bot.mode == BOT_MODE_ASSIGNED)
				note = br->silent ? ": an agent has this conversation" : NULL;
			else if (conv.bot.opted_out && br->silent)
				note = ": this contact opted out; START or MULAI opts in again";
		}
		print_result(br, a.json, note);
	}
	rc = 0;
out:
	gw_handle_free(h);
	store_close(s);
	bot_set_free(set);
	return rc;
}
