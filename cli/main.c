/* loket: one binary, one subcommand per job (see DESIGN.md and README.md). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *usage;
} cmds[] = {
    {"serve", cli_serve, "serve -c FILE                 run the gateway"},
    {"check", cli_check, "check [-c FILE] [DIR]         validate every intent file"},
    {"try", cli_try, "try [-c FILE] [--json] TEXT   which intent answers TEXT, and the reply"},
    {"chat", cli_chat, "chat [-c FILE] [--json] [--as ADDRESS]  talk to the bot, one message per line"},
    {"agent", cli_agent, "agent add|list|disable|passwd [-c FILE] ...  console accounts"},
    {"stats", cli_stats, "stats [-c FILE] [--json] [--since DAYS]  what citizens asked"},
    {"backup", cli_backup, "backup [-c FILE] DEST         consistent copy of the database"},
    {"purge", cli_purge, "purge [-c FILE] --older-than DAYS  delete old message texts"},
    {"doctor", cli_doctor, "doctor [-c FILE]              check a deployment, say what to fix"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: loket COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  loket %s\n", cmds[i].usage);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "loket: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
