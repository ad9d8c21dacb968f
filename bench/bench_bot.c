/* bench_bot: bot_handle() over a realistic message mix, the whole engine
 * (normalise, select, render the result) as the gateway runs it.
 *
 * usage: bench_bot INTENTS_DIR MESSAGES_FILE [ROUNDS] [--fixed N]
 * (callgrind: valgrind --tool=callgrind --toggle-collect=bench_bot_loop
 *  out/bench_bot ../intents ../tests/data/utterances.tsv --fixed 26700)
 * Prints start-up time (loading and compiling the set), peak memory, and
 * messages/s on one core (best of ROUNDS passes over the file). --fixed N runs
 * exactly N messages once and prints nothing timed: for callgrind, whose
 * instruction counts are the stable figure on a shared machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key), NULL, 10);
	fclose(f);
	return v;
}

/* The counted part under callgrind (--toggle-collect=bench_bot_loop). */
__attribute__((noinline)) size_t bench_bot_loop(const bot_set *set, bot_scratch *scratch, char **msgs, size_t n,
						long count);
__attribute__((noinline)) size_t bench_bot_loop(const bot_set *set, bot_scratch *scratch, char **msgs, size_t n,
						long count)
{
	bot_state st;
	bot_result res;
	size_t matched = 0;

	for (long i = 0; i < count; i++) {
		bot_input in = {msgs[i % (long)n], strlen(msgs[i % (long)n]), NULL, 0};
		bot_state_init(&st);
		bot_handle(set, scratch, &st, &in, &st, &res);
		matched += res.intent != NULL;
	}
	return matched;
}

int main(int argc, char **argv)
{
	cfg c;
	bot_set *set;
	bot_scratch *scratch;
	char **msgs = NULL;
	size_t n = 0, cap = 0, matched = 0, fallback = 0;
	char line[4096];
	FILE *f;
	int rounds = 5;
	long fixed = 0;
	double t0, t1, best = 1e9;
	long rss0;

	if (argc < 3) {
		fprintf(stderr, "usage: bench_bot INTENTS_DIR MESSAGES_FILE [ROUNDS] [--fixed N]\n");
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--fixed") == 0 && i + 1 < argc)
			fixed = strtol(argv[++i], NULL, 10);
		else
			rounds = (int)strtol(argv[i], NULL, 10);
	}
	cfg_defaults(&c);
	snprintf(c.bot.intents, sizeof(c.bot.intents), "%s", argv[1]);
	f = fopen(argv[2], "r");
	if (!f) {
		perror(argv[2]);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t');
		char *text = tab ? tab + 1 : line;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || !*text)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			msgs = realloc(msgs, cap * sizeof(*msgs));
			if (!msgs)
				return 1;
		}
		msgs[n] = strdup(text);
		if (!msgs[n])
			return 1;
		n++;
	}
	fclose(f);
	if (n == 0)
		return 1;

	rss0 = rss_kb("VmRSS:");
	t0 = now_s();
	set = cli_bot_load(&c, NULL);
	t1 = now_s();
	if (!set)
		return 1;
	scratch = bot_scratch_new();
	if (fixed > 0) {
		bench_bot_loop(set, scratch, msgs, n, 100); /* warm-up, not counted */
		matched = bench_bot_loop(set, scratch, msgs, n, fixed);
		printf("fixed %ld messages, %zu matched\n", fixed, matched);
		goto out;
	}
	printf("pack: %s: %zu intents, %zu patterns; messages: %zu\n", argv[1], bot_set_intent_count(set),
	       bot_set_pattern_count(set), n);
	printf("start-up (load + compile + check): %.1f ms\n", (t1 - t0) * 1000);
	for (int r = 0; r < rounds; r++) {
		bot_state st;
		bot_result res;
		double a = now_s(), b;

		matched = fallback = 0;
		for (size_t i = 0; i < n; i++) {
			bot_input in = {msgs[i], strlen(msgs[i]), NULL, 0};
			bot_state_init(&st);
			bot_handle(set, scratch, &st, &in, &st, &res);
			matched += res.intent != NULL;
			fallback += res.fallback;
		}
		b = now_s();
		if (b - a < best)
			best = b - a;
	}
	printf("bot_handle: %.0f messages/s on one core (%.2f us each; best of %d), %zu matched, %zu fallbacks\n",
	       (double)n / best, best / (double)n * 1e6, rounds, matched, fallback);
	printf("memory: RSS %ld kB before loading, %ld kB after, peak %ld kB\n", rss0, rss_kb("VmRSS:"),
	       rss_kb("VmHWM:"));
out:
	bot_scratch_free(scratch);
	bot_set_free(set);
	for (size_t i = 0; i < n; i++)
		free(msgs[i]);
	free(msgs);
	return 0;
}
