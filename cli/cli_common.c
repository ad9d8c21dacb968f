/* cli_common: what every subcommand needs: the config, the template variables
 * it gives the intents, loading the intent set with readable errors, a clock. */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "cli/cli.h"
#include "core/log.h"

int cli_config_load(const char *path, cfg *c)
{
	char err[8192];

	if (cfg_load(c, path, err, sizeof(err)) != 0) {
		fputs(err, stderr);
		return -1;
	}
	if (log_set_level(c->log.level) != 0)
		return -1;
	return 0;
}

size_t cli_bot_vars(const cfg *c, bot_var *vars)
{
	size_t n = 0;

#define V(key)                                                                                                         \
	do {                                                                                                           \
		vars[n].name = "office." #key;                                                                         \
		vars[n].value = c->office.key;                                                                         \
		n++;                                                                                                   \
	} while (0)
	V(name);
	V(phone);
	V(whatsapp);
	V(email);
	V(forms_url);
	V(timezone);
	V(hours);
	V(instagram);
	V(facebook);
	V(oss_help);
#undef V
	return n;
}

bot_set *cli_bot_load(const cfg *c, const char *dir)
{
	bot_var vars[CLI_VARS_MAX];
	bot_config bc = {0};
	bot_diags diags = {0};
	bot_set *set;

	bc.default_lang = c->bot.language;
	bc.fallbacks_before_escalate = c->bot.fallbacks_before_escalate;
	bc.vars = vars;
	bc.n_vars = cli_bot_vars(c, vars);
	set = bot_set_load(dir ? dir : c->bot.intents, &bc, &diags);
	for (size_t i = 0; i < diags.n; i++) {
		char line[1200];
		bot_diag_format(&diags.v[i], line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
	bot_diags_free(&diags);
	return set;
}
