/* Shared by the store tests: a temporary directory, opening a store in it, a
 * decide callback driven by the message text, and raw SQL counts to look at the
 * file from outside the API. Header-only (each test is one binary). */
#ifndef LOKET_STORE_TEST_UTIL_H
#define LOKET_STORE_TEST_UTIL_H

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "bot/bot.h"
#include "store/store.h"

static inline int t_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* A fresh directory under /tmp; the caller removes it with t_rmdir. */
static inline void t_mkdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/loket-store-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static inline void t_rmdir(const char *dir)
{
	nftw(dir, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void t_path(char *out, size_t len, const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < len);
}

static inline store *t_open(const char *path, int busy_ms)
{
	char err[512];
	store_opts o = {.path = path, .synchronous_full = 0, .busy_timeout_ms = busy_ms, .readonly = 0};
	store *s = store_open(&o, err, sizeof err);
	if (!s)
		fail_msg("store_open(%s): %s", path, err);
	return s;
}

/* ---- the decide callback ----
 * Text "agent" escalates; text starting with "?" is a fallback; text "refuse"
 * makes the callback refuse; any other text is intent "i_<text>" up to a space.
 * It sends n_out replies (queue / sandboxed as configured) saying "re: <text>". */
typedef struct t_decider {
	int n_out;    /* replies per message (default 1 when the struct is zeroed: see t_decide) */
	int no_reply; /* 1: no replies at all */
	int queue, sandboxed;
	size_t calls;
	int seen_rate[512]; /* conv->rate_count seen for index i */
	bot_mode seen_mode[512];
	char text[512][96]; /* reply texts, kept until the batch returns */
	char intent[512][BOT_NAME_MAX];
} t_decider;

static inline int t_decide(void *ctx, size_t index, const store_inbound *in, const store_conv *conv, store_decision *d)
{
	t_decider *t = ctx;
	t->calls++;
	if (index < 512) {
		t->seen_rate[index] = conv->rate_count;
		t->seen_mode[index] = conv->bot.mode;
	}
	const char *text = in->text ? in->text : "";
	if (strcmp(text, "refuse") == 0)
		return -1;
	d->next = conv->bot;
	size_t slot = index % 512;
	if (strcmp(text, "agent") == 0) {
		d->intent = "minta_petugas";
		d->actions = "escalate";
		d->next.mode = BOT_MODE_QUEUED;
	} else if (text[0] == '?') {
		d->fallback = 1;
		d->next.fallbacks = conv->bot.fallbacks + 1;
	} else {
		size_t n = strcspn(text, " ");
		if (n > 40)
			n = 40;
		snprintf(t->intent[slot], sizeof t->intent[slot], "i_%.*s", (int)n, text);
		d->intent = t->intent[slot];
		d->next.fallbacks = 0;
		snprintf(d->next.lang, sizeof d->next.lang, "id");
		snprintf(d->next.context, sizeof d->next.context, "ctx_%.*s", (int)n, text);
		d->next.n_menu = 2;
		snprintf(d->next.menu[0], BOT_NAME_MAX, "jam_layanan");
		snprintf(d->next.menu[1], BOT_NAME_MAX, "syarat_pbg");
	}
	if (t->no_reply)
		return 0;
	snprintf(t->text[slot], sizeof t->text[slot], "re: %.80s", text);
	d->n_out = t->n_out ? t->n_out : 1;
	for (int k = 0; k < d->n_out; k++) {
		d->out[k].text = t->text[slot];
		d->out[k].payload = "{\"type\":\"text\"}";
		d->out[k].queue = t->queue;
		d->out[k].sandboxed = t->sandboxed;
	}
	return 0;
}

static inline store_inbound t_in(const char *channel, const char *address, const char *pid, const char *text,
				 int64_t at_ms)
{
	store_inbound in = {.channel = channel,
			    .address = address,
			    .display_name = NULL,
			    .provider_id = pid,
			    .kind = "text",
			    .text = text,
			    .at_ms = at_ms};
	return in;
}

/* One inbound message through the batch API; returns its result. */
static inline store_inbound_result t_one(store *s, t_decider *t, store_inbound in)
{
	store_inbound_result r;
	int rc = store_inbound_batch(s, &in, 1, t_decide, t, &r);
	if (rc != STORE_OK)
		fail_msg("store_inbound_batch: %s (%s)", store_rc_str(rc), store_errmsg(s));
	return r;
}

/* The single integer answer of sql on a separate raw connection. */
static inline int64_t t_sql_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

#endif
