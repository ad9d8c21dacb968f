/* cli_serve: `loket serve -c FILE`: reads the config and runs the gateway
 * (gateway/gw.c). Everything else about serving lives in gateway/. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "gateway/gw.h"

static void cli_serve_usage(FILE *f)
{
	fprintf(f, "usage: loket serve [-c FILE]\n"
		   "  runs the gateway: webhooks, web chat, console, sender (see docs/gateway.md)\n");
}

int cli_serve(int argc, char **argv)
{
	const char *path = NULL;
	cfg c;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "loket serve: %s needs a file\n", argv[i]);
				return 2;
			}
			path = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			cli_serve_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "loket serve: unknown argument \"%s\"\n", argv[i]);
			cli_serve_usage(stderr);
			return 2;
		}
	}
	if (cli_config_load(path, &c) != 0)
		return 1;
	return gw_serve(&c, path);
}
