/* bench_match: how fast bot_match picks the first matching pattern, against
 * trying every regex in turn and against Hyperscan, on the same patterns and
 * messages; every engine must give the same answer for every message.
 *
 *   bench_match [options] PATTERNS MESSAGES
 *     PATTERNS   one PCRE2 pattern per line, in rank order (id = line index)
 *     MESSAGES   one message per line
 *   --slow-every K   run the every-regex baseline on every Kth message (default 10)
 *   --passes N       timed passes over the messages, the best is kept (default 3)
 *   --hs-chunk N     split the patterns into Hyperscan databases of N patterns
 *                    each (default: one database), scan them all, keep the lowest
 *                    id: for packs too big for one database to compile in time
 *   --callgrind N    only build bot_match and run its first N messages through
 *                    bot_match_first inside bench_bot_match_loop(), for
 *                    valgrind --tool=callgrind --toggle-collect=bench_bot_match_loop
 *
 * Hyperscan is compiled with CASELESS|UTF8|SINGLEMATCH and without UCP (it
 * refuses \b with UCP): answers agree on ASCII messages. A pattern Hyperscan
 * refuses is dropped from every engine and reported. The answer of an engine for
 * a message is the lowest pattern id that matches, or -1. Exits 1 on any
 * mismatch. Single-threaded: the rates are per core. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <hs.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bot/bot_match.h"

struct lines {
	char *buf;
	char **s;
	size_t *len;
	size_t n;
};

static int lines_read(const char *path, struct lines *l)
{
	int rc = -1;
	FILE *f = fopen(path, "rb");
	size_t cap = 0, used = 0, ncap = 0;
	memset(l, 0, sizeof(*l));
	if (f == NULL) {
		fprintf(stderr, "bench_match: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (used == cap) {
			cap = cap ? cap * 2 : 1 << 20;
			char *nb = realloc(l->buf, cap + 1);
			if (nb == NULL)
				goto out;
			l->buf = nb;
		}
		size_t got = fread(l->buf + used, 1, cap - used, f);
		used += got;
		if (got == 0)
			break;
	}
	if (ferror(f))
		goto out;
	l->buf[used] = '\n';
	for (size_t i = 0; i < used;) {
		char *nl = memchr(l->buf + i, '\n', used + 1 - i);
		size_t len = (size_t)(nl - (l->buf + i));
		if (l->n == ncap) {
			ncap = ncap ? ncap * 2 : 1024;
			char **ns = realloc(l->s, ncap * sizeof(*ns));
			if (ns == NULL)
				goto out;
			l->s = ns;
			size_t *nlen = realloc(l->len, ncap * sizeof(*nlen));
			if (nlen == NULL)
				goto out;
			l->len = nlen;
		}
		*nl = '\0';
		l->s[l->n] = l->buf + i;
		l->len[l->n] = len;
		l->n++;
		i += len + 1;
	}
	rc = 0;
out:
	fclose(f);
	if (rc != 0)
		fprintf(stderr, "bench_match: %s: cannot read\n", path);
	return rc;
}

static void lines_free(struct lines *l)
{
	free(l->buf);
	free(l->s);
	free(l->len);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size in KiB, from /proc/self/status. */
static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0) {
			char *end;
			kib = strtol(line + 6, &end, 10);
			break;
		}
	fclose(f);
	return kib;
}

/* ---- the engines ---- */

static bot_match *bot_build(const struct lines *pats, const uint8_t *dropped)
{
	bot_match *m = bot_match_new();
	if (m == NULL)
		return NULL;
	for (size_t i = 0; i < pats->n; i++) {
		char err[256];
		size_t off = 0;
		if (dropped[i])
			continue;
		if (bot_match_add(m, pats->s[i], pats->len[i], (uint32_t)i, err, sizeof(err), &off) != 0) {
			fprintf(stderr, "bench_match: pattern %zu: %s at %zu: %s\n", i, err, off, pats->s[i]);
			bot_match_free(m);
			return NULL;
		}
	}
	if (bot_match_build(m) != 0) {
		bot_match_free(m);
		return NULL;
	}
	return m;
}

/* Kept out of line so callgrind can count exactly this loop. */
__attribute__((noinline)) int64_t bench_bot_match_loop(const bot_match *m, const struct lines *msgs, size_t count,
						       bot_match_scratch *s, int64_t *ans);
__attribute__((noinline)) int64_t bench_bot_match_loop(const bot_match *m, const struct lines *msgs, size_t count,
						       bot_match_scratch *s, int64_t *ans)
{
	int64_t sum = 0;
	for (size_t i = 0; i < count; i++) {
		int64_t r = bot_match_first(m, msgs->s[i], msgs->len[i], s);
		if (ans != NULL)
			ans[i] = r;
		sum += r;
	}
	return sum;
}

static int hs_on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx)
{
	(void)from;
	(void)to;
	(void)flags;
	int64_t *best = ctx;
	if (*best < 0 || (int64_t)id < *best)
		*best = id;
	return 0; /* the lowest id may come later: keep scanning */
}

/* Compiles patterns [lo, hi) not yet dropped into one database; drops the ones
 * Hyperscan refuses. NULL on failure. */
static hs_database_t *hs_build(const struct lines *pats, size_t lo, size_t hi, uint8_t *dropped, size_t *ndropped)
{
	const char **expr = calloc(pats->n ? pats->n : 1, sizeof(*expr));
	unsigned *flags = calloc(pats->n ? pats->n : 1, sizeof(*flags));
	unsigned *ids = calloc(pats->n ? pats->n : 1, sizeof(*ids));
	hs_database_t *db = NULL;
	if (expr == NULL || flags == NULL || ids == NULL)
		goto out;
	for (;;) {
		unsigned n = 0;
		hs_compile_error_t *cerr = NULL;
		for (size_t i = lo; i < hi; i++) {
			if (dropped[i])
				continue;
			expr[n] = pats->s[i];
			flags[n] = HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_SINGLEMATCH;
			ids[n] = (unsigned)i;
			n++;
		}
		if (hs_compile_multi(expr, flags, ids, n, HS_MODE_BLOCK, NULL, &db, &cerr) == HS_SUCCESS)
			break;
		if (cerr->expression < 0) {
			fprintf(stderr, "bench_match: hyperscan: %s\n", cerr->message);
			hs_free_compile_error(cerr);
			db = NULL;
			goto out;
		}
		unsigned bad = ids[cerr->expression];
		fprintf(stderr, "bench_match: hyperscan refuses pattern %u (%s), dropped from every engine: %s\n", bad,
			cerr->message, pats->s[bad]);
		hs_free_compile_error(cerr);
		dropped[bad] = 1;
		(*ndropped)++;
	}
out:
	free(expr);
	free(flags);
	free(ids);
	return db;
}

/* ---- main ---- */

static int usage(void)
{
	fprintf(stderr, "usage: bench_match [--slow-every K] [--passes N] [--hs-chunk N] [--callgrind N] "
			"PATTERNS MESSAGES\n");
	return 2;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0)
		return -1;
	*out = (size_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 1;
	size_t slow_every = 10, passes = 3, callgrind = 0;
	const char *pfile = NULL, *mfile = NULL;
	struct lines pats = {0}, msgs = {0};
	uint8_t *dropped = NULL;
	bot_match *m = NULL;
	bot_match_scratch *s = NULL;
	hs_database_t **db = NULL;
	size_t ndb = 0, hs_chunk = 0;
	hs_scratch_t *hscratch = NULL;
	int64_t *a_bot = NULL, *a_hs = NULL;
	size_t ndropped = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--slow-every") == 0 && i + 1 < argc) {
			if (parse_size(argv[++i], &slow_every) != 0)
				return usage();
		} else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc) {
			if (parse_size(argv[++i], &passes) != 0)
				return usage();
		} else if (strcmp(argv[i], "--hs-chunk") == 0 && i + 1 < argc) {
			if (parse_size(argv[++i], &hs_chunk) != 0)
				return usage();
		} else if (strcmp(argv[i], "--callgrind") == 0 && i + 1 < argc) {
			if (parse_size(argv[++i], &callgrind) != 0)
				return usage();
		} else if (pfile == NULL) {
			pfile = argv[i];
		} else if (mfile == NULL) {
			mfile = argv[i];
		} else {
			return usage();
		}
	}
	if (pfile == NULL || mfile == NULL)
		return usage();
	if (lines_read(pfile, &pats) != 0 || lines_read(mfile, &msgs) != 0)
		goto out;
	/* blank lines at the end of the pattern file are no patterns */
	while (pats.n > 0 && pats.len[pats.n - 1] == 0)
		pats.n--;
	dropped = calloc(pats.n ? pats.n : 1, 1);
	a_bot = calloc(msgs.n ? msgs.n : 1, sizeof(*a_bot));
	a_hs = calloc(msgs.n ? msgs.n : 1, sizeof(*a_hs));
	s = bot_match_scratch_new();
	if (dropped == NULL || a_bot == NULL || a_hs == NULL || s == NULL)
		goto out;

	if (callgrind > 0) {
		if (callgrind > msgs.n)
			callgrind = msgs.n;
		m = bot_build(&pats, dropped);
		if (m == NULL)
			goto out;
		for (size_t i = 0; i < callgrind && i < 100; i++) /* warm-up, not counted */
			bot_match_first(m, msgs.s[i], msgs.len[i], s);
		int64_t sum = bench_bot_match_loop(m, &msgs, callgrind, s, NULL);
		printf("callgrind run: %zu patterns, %zu messages, checksum %" PRId64 "\n", bot_match_count(m),
		       callgrind, sum);
		rc = 0;
		goto out;
	}

	printf("patterns: %s (%zu)\nmessages: %s (%zu)\n", pfile, pats.n, mfile, msgs.n);
	double t0 = now();
	long rss0 = rss_kib();
	if (hs_chunk == 0 || hs_chunk > pats.n)
		hs_chunk = pats.n ? pats.n : 1;
	db = calloc(pats.n / hs_chunk + 1, sizeof(*db));
	if (db == NULL)
		goto out;
	size_t dbsize = 0, hss = 0;
	for (size_t lo = 0; lo < pats.n; lo += hs_chunk) {
		size_t hi = lo + hs_chunk < pats.n ? lo + hs_chunk : pats.n, sz = 0;
		db[ndb] = hs_build(&pats, lo, hi, dropped, &ndropped);
		if (db[ndb] == NULL)
			goto out;
		ndb++;
		hs_database_size(db[ndb - 1], &sz);
		dbsize += sz;
		/* one scratch big enough for every database */
		if (hs_alloc_scratch(db[ndb - 1], &hscratch) != HS_SUCCESS)
			goto out;
	}
	double t_hs = now() - t0;
	long rss_hs = rss_kib() - rss0;
	hs_scratch_size(hscratch, &hss);

	rss0 = rss_kib();
	t0 = now();
	m = bot_build(&pats, dropped);
	double t_bot = now() - t0;
	if (m == NULL)
		goto out;
	long rss_bot = rss_kib() - rss0;
	size_t total_bytes = 0;
	for (size_t i = 0; i < msgs.n; i++)
		total_bytes += msgs.len[i];
	printf("kept %zu patterns (%zu dropped), %zu without a required literal\n", bot_match_count(m), ndropped,
	       bot_match_unfiltered_count(m));
	printf("messages: %.1f bytes on average\n", msgs.n ? (double)total_bytes / (double)msgs.n : 0.0);
	printf("compile: bot_match %.3f s (RSS +%ld KiB), hyperscan %.3f s (%zu database(s) %zu KiB, scratch "
	       "%zu KiB, RSS +%ld KiB)\n",
	       t_bot, rss_bot, t_hs, ndb, dbsize / 1024, hss / 1024, rss_hs);

	/* timed passes: the best of each */
	double best_bot = 1e30, best_hs = 1e30;
	for (size_t p = 0; p < passes; p++) {
		t0 = now();
		bench_bot_match_loop(m, &msgs, msgs.n, s, a_bot);
		double t = now() - t0;
		if (t < best_bot)
			best_bot = t;
		t0 = now();
		for (size_t i = 0; i < msgs.n; i++) {
			int64_t best = -1;
			/* databases hold increasing ids: the first that matches has the lowest */
			for (size_t d = 0; d < ndb && best < 0; d++)
				if (hs_scan(db[d], msgs.s[i], (unsigned)msgs.len[i], 0, hscratch, hs_on_match, &best) !=
				    HS_SUCCESS) {
					fprintf(stderr, "bench_match: hs_scan failed on message %zu\n", i);
					goto out;
				}
			a_hs[i] = best;
		}
		t = now() - t0;
		if (t < best_hs)
			best_hs = t;
	}

	/* the baseline, on a sample */
	size_t nslow = 0, mism_slow = 0, mism_hs = 0, matched = 0;
	t0 = now();
	for (size_t i = 0; i < msgs.n; i += slow_every) {
		int64_t r = bot_match_first_slow(m, msgs.s[i], msgs.len[i], s);
		nslow++;
		if (r != a_bot[i]) {
			if (mism_slow < 5)
				fprintf(stderr, "mismatch slow=%" PRId64 " bot=%" PRId64 ": %s\n", r, a_bot[i],
					msgs.s[i]);
			mism_slow++;
		}
	}
	double t_slow = now() - t0;
	for (size_t i = 0; i < msgs.n; i++) {
		if (a_bot[i] >= 0)
			matched++;
		if (a_bot[i] != a_hs[i]) {
			if (mism_hs < 5)
				fprintf(stderr, "mismatch hyperscan=%" PRId64 " bot=%" PRId64 ": %s\n", a_hs[i],
					a_bot[i], msgs.s[i]);
			mism_hs++;
		}
	}
	double r_bot = (double)msgs.n / best_bot, r_hs = (double)msgs.n / best_hs;
	double r_slow = (double)nslow / t_slow;
	printf("matched: %zu of %zu messages (%.1f%%)\n", matched, msgs.n,
	       msgs.n ? 100.0 * (double)matched / (double)msgs.n : 0.0);
	printf("bot_match_first      %10.0f messages/s  (%.2f us/message)\n", r_bot, 1e6 / r_bot);
	printf("bot_match_first_slow %10.0f messages/s  (%.2f us/message, %zu-message sample)\n", r_slow, 1e6 / r_slow,
	       nslow);
	printf("hyperscan            %10.0f messages/s  (%.2f us/message)\n", r_hs, 1e6 / r_hs);
	printf("ratio bot_match/hyperscan %.2f, bot_match/slow %.1f\n", r_bot / r_hs, r_bot / r_slow);
	printf("mismatches: %zu against hyperscan, %zu against every-regex (sample)\n", mism_hs, mism_slow);
	printf("RSS now: %ld KiB\n", rss_kib());
	rc = mism_hs == 0 && mism_slow == 0 ? 0 : 1;
out:
	hs_free_scratch(hscratch);
	for (size_t d = 0; d < ndb; d++)
		hs_free_database(db[d]);
	free(db);
	bot_match_scratch_free(s);
	bot_match_free(m);
	free(dropped);
	free(a_bot);
	free(a_hs);
	lines_free(&pats);
	lines_free(&msgs);
	return rc;
}
