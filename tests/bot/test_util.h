/* test_util: small helpers shared by the bot tests: a temporary intents
 * directory filled from strings, and loading a set with default settings. */
#ifndef LOKET_TEST_UTIL_H
#define LOKET_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bot/bot.h"

/* The messages every valid set needs, as a file of their own. */
static const char test_messages_yaml[] = "- message: fallback\n"
					 "  reply:\n"
					 "    id: Maaf, saya belum mengerti.\n"
					 "    en: Sorry, I did not understand.\n"
					 "  buttons: [kontak]\n"
					 "- message: did_you_mean\n"
					 "  reply:\n"
					 "    id: Maksud Anda?\n"
					 "    en: Did you mean?\n"
					 "- message: escalated\n"
					 "  reply:\n"
					 "    id: Kami teruskan ke petugas.\n"
					 "    en: A person will answer.\n"
					 "- message: text_only\n"
					 "  reply:\n"
					 "    id: Saya hanya membaca teks.\n"
					 "    en: I only read text.\n"
					 "- message: rate_limited\n"
					 "  reply: Terlalu banyak pesan.\n";

/* Makes a fresh directory under /tmp; returns its path (static storage). */
static inline const char *test_mkdtemp(void)
{
	static char dir[64];
	snprintf(dir, sizeof(dir), "/tmp/loket-test-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	return dir;
}

static inline void test_write(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static inline void test_rmdir(const char *dir)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		abort();
}

static const bot_var test_vars[] = {
    {"office.name", "Kantor Uji"},
    {"office.phone", "(0361) 000"},
    {"office.email", ""},
    {"office.forms_url", "http://example.test/forms"},
};

static inline bot_set *test_load(const char *dir, bot_diags *d, int fallbacks_before_escalate)
{
	bot_config c = {"id", fallbacks_before_escalate, test_vars, sizeof(test_vars) / sizeof(test_vars[0])};
	return bot_set_load(dir, &c, d);
}

#endif
