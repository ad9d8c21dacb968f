/* cli: the `loket` subcommands. Each takes its own argv (argv[0] is the
 * subcommand's name) and returns the process exit code. */
#ifndef LOKET_CLI_H
#define LOKET_CLI_H

#include "bot/bot.h"
#include "core/cfg.h"

int cli_check(int argc, char **argv);
int cli_try(int argc, char **argv);
int cli_chat(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_stats(int argc, char **argv);
int cli_backup(int argc, char **argv);
int cli_purge(int argc, char **argv);
int cli_agent(int argc, char **argv);
int cli_doctor(int argc, char **argv);

/* ---- shared by the commands (cli_common.c) ---- */

/* Loads the config file path, or the embedded defaults when path is NULL.
 * Prints every problem as file:line: message on stderr. Returns 0 or -1. */
int cli_config_load(const char *path, cfg *c);

/* The template variables ({office.name}, ...) of a config: fills vars (at
 * least CLI_VARS_MAX entries) and returns how many. */
#define CLI_VARS_MAX 16
size_t cli_bot_vars(const cfg *c, bot_var *vars);

/* Loads the intent set named by the config (or dir when not NULL), printing
 * every problem on stderr. Returns the set or NULL. */
bot_set *cli_bot_load(const cfg *c, const char *dir);

#endif
