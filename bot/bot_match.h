/* bot_match: a compiled list of PCRE2 patterns and a prefilter in front of it.
 *
 * Patterns are compiled caseless, UTF-8, with Unicode properties, and
 * JIT-compiled, with match and depth limits so a pathological pattern costs a
 * bounded amount of work and then counts as "no match". Patterns are kept in the
 * order they were added; bot_match_first() answers the first one (in that order)
 * that matches, which is how the engine turns its intent ranking into a choice.
 *
 * The prefilter: from each pattern the literal words any match must contain are
 * worked out (an alternation gives a set of them, a concatenation the most
 * selective one), all of them go into one Aho-Corasick automaton over ASCII
 * case-folded bytes, and a message only runs the full JIT match of patterns whose
 * required literal it contains, plus those with none. The cost then grows with
 * the message, not with the number of patterns. Messages holding a non-ASCII
 * character that folds to an ASCII letter (KELVIN SIGN, LATIN SMALL LETTER LONG S)
 * skip the prefilter and try every pattern, so results never differ from trying
 * every regex in turn.
 *
 * A built bot_match is immutable and may be shared between threads; each thread
 * passes its own bot_match_scratch. */
#ifndef LOKET_BOT_MATCH_H
#define LOKET_BOT_MATCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct bot_match bot_match;
typedef struct bot_match_scratch bot_match_scratch;

/* Match-time limits (PCRE2 match limit and depth limit). */
#define BOT_MATCH_LIMIT 200000u
#define BOT_MATCH_DEPTH_LIMIT 5000u

/* Returns an empty list, or NULL when out of memory. Free with bot_match_free. */
bot_match *bot_match_new(void);
void bot_match_free(bot_match *m);

/* Compiles pattern (len bytes, need not be NUL-terminated) and appends it with
 * the caller's id. Returns 0; or -1 with PCRE2's own message in err (always
 * NUL-terminated) and the offending byte offset in *erroffset. Only before
 * bot_match_build(). */
int bot_match_add(bot_match *m, const char *pattern, size_t len, uint32_t id, char *err, size_t errlen,
		  size_t *erroffset);

/* Builds the prefilter. Returns 0, or -1 when out of memory. */
int bot_match_build(bot_match *m);

size_t bot_match_count(const bot_match *m);
/* How many patterns have no required literal (they run on every message). */
size_t bot_match_unfiltered_count(const bot_match *m);

/* Per-thread memory for matching; NULL when out of memory. */
bot_match_scratch *bot_match_scratch_new(void);
void bot_match_scratch_free(bot_match_scratch *s);

/* The id of the first pattern, in the order added, that matches text (UTF-8,
 * already valid: see bot_text_normalize), or -1 when none does. A pattern that
 * hits the match limit counts as not matching. */
int64_t bot_match_first(const bot_match *m, const char *text, size_t len, bot_match_scratch *s);

/* Calls cb(ctx, id) for every pattern that matches, in the order added; stops
 * early when cb returns non-zero. Returns the number of matching patterns seen. */
size_t bot_match_each(const bot_match *m, const char *text, size_t len, bot_match_scratch *s,
		      int (*cb)(void *ctx, uint32_t id), void *ctx);

/* The same answer as bot_match_first without the prefilter: every pattern in
 * turn. For tests and the benchmark's baseline. */
int64_t bot_match_first_slow(const bot_match *m, const char *text, size_t len, bot_match_scratch *s);

#endif
