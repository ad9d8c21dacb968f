/* bot_match: an ordered list of PCRE2 patterns with a literal prefilter.
 *
 * Each pattern is compiled caseless/UTF/UCP and JIT-compiled. A small, deliberately
 * conservative parser of the pattern text works out a set of ASCII literals (lower
 * case) of which every match must contain at least one; whatever it does not fully
 * understand gives the pattern no requirement, so it runs on every message. A
 * pattern that is one concatenation may get two such sets from two different
 * parts ("syarat" ... "pbg"): a match then needs one literal of each. All literals
 * go into one Aho-Corasick automaton, a dense DFA over a compressed alphabet in
 * which upper-case ASCII letters share the class of their lower-case letter (the
 * message is thus folded while it is scanned). A scan marks, in two bitmaps over
 * pattern index (one per set), the patterns whose literals occur; the full JIT
 * match then runs only on patterns whose sets are all met and on the unfiltered
 * patterns, in pattern order.
 * Messages holding U+212A or U+017F (the only non-ASCII characters that match an
 * ASCII letter caselessly) bypass the prefilter.
 *
 * This module leaves text normalisation (valid UTF-8, length cap) to bot_text and
 * the meaning of pattern ids to the caller. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "bot/bot_match.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- limits of the literal extraction ---- */

#define LIT_MAX 24   /* a longer literal keeps its first LIT_MAX bytes (still required) */
#define SET_MAX 32   /* more alternatives than this: no requirement */
#define DEPTH_MAX 16 /* deeper group nesting: no requirement */

/* JIT stack per scratch: grows from 32 KiB up to 512 KiB; past that the match
 * fails with PCRE2_ERROR_JIT_STACKLIMIT and counts as no match. */
#define JIT_STACK_START (32u * 1024u)
#define JIT_STACK_MAX (512u * 1024u)

#define NO_STATE UINT32_MAX
#define HIT_FLAG 0x80000000u
#define ROW_MASK 0x7fffffffu

struct pat {
	pcre2_code *code;
	uint32_t id;
	int jit; /* JIT compilation succeeded */
};

struct lit {
	uint32_t pat;
	uint8_t slot; /* which of the pattern's two sets */
	uint8_t len;
	char s[LIT_MAX];
};

struct bot_match {
	struct pat *pats;
	size_t n, cap;
	struct lit *lits; /* the required literals of every pattern */
	size_t nlits, litcap;
	uint8_t *nsets; /* per pattern: 0 (unfiltered), 1 or 2 literal sets */
	size_t unfiltered;
	int built;

	/* the automaton, once built */
	size_t nwords;	  /* 64-bit words of a bitmap over patterns */
	uint64_t *unf;	  /* bitmap of unfiltered patterns */
	uint64_t *one;	  /* bitmap of patterns with a single set (the second is met) */
	uint8_t cls[256]; /* byte -> class; A-Z share a-z's class */
	uint32_t nc;	  /* classes */
	uint32_t nstates;
	uint32_t *delta;    /* [state * nc + class] = next state * nc, | HIT_FLAG */
	uint32_t *outstate; /* per state: first state with outputs on its fail chain */
	uint32_t *dictnext; /* per output state: the next one on its fail chain */
	uint32_t *out_off;  /* per state: its outputs in outpat[out_off[s]..out_off[s+1]) */
	uint32_t *outpat;   /* pattern index << 1 | set */
};

struct bot_match_scratch {
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *js;
	uint64_t *cand; /* two candidate bitmaps (set 0, set 1), all zero between calls */
	size_t candcap; /* words in each */
};

/* ---- required-literal extraction ---- */

/* A requirement: n == 0 means none; otherwise any match contains one of the n
 * strings s[i][0..len[i]). */
struct req {
	int n;
	uint8_t len[SET_MAX];
	char s[SET_MAX][LIT_MAX];
};

struct parser {
	const unsigned char *p, *end;
	int fail; /* something not understood: the whole pattern gets no requirement */
	int depth;
};

enum atom_kind { ATOM_LIT, ATOM_ZW, ATOM_ANY, ATOM_GROUP };

static void parse_alt(struct parser *ps, struct req *out, struct req *second);

static int req_minlen(const struct req *r)
{
	int m = LIT_MAX + 1;
	for (int i = 0; i < r->n; i++)
		if (r->len[i] < m)
			m = r->len[i];
	return m;
}

/* 1 when a is more selective than b: the longer shortest literal, then the fewer
 * alternatives. A set is better than none. */
static int req_better(const struct req *a, const struct req *b)
{
	if (a->n == 0)
		return 0;
	if (b->n == 0)
		return 1;
	int la = req_minlen(a), lb = req_minlen(b);
	return la > lb || (la == lb && a->n < b->n);
}

/* Keeps in *best the most selective requirement seen and, when second is not
 * NULL, in *second the runner-up (from another part of the concatenation). */
static void req_consider(struct req *best, struct req *second, const struct req *cand)
{
	if (req_better(cand, best)) {
		if (second != NULL)
			*second = *best;
		*best = *cand;
	} else if (second != NULL && req_better(cand, second)) {
		*second = *cand;
	}
}

static void req_single(struct req *r, const char *s, int len)
{
	r->n = 1;
	r->len[0] = (uint8_t)len;
	memcpy(r->s[0], s, (size_t)len);
}

/* Adds the strings of b to a; returns -1 when the set overflows. */
static int req_union(struct req *a, const struct req *b)
{
	for (int i = 0; i < b->n; i++) {
		int dup = 0;
		for (int j = 0; j < a->n && !dup; j++)
			dup = a->len[j] == b->len[i] && memcmp(a->s[j], b->s[i], b->len[i]) == 0;
		if (dup)
			continue;
		if (a->n == SET_MAX)
			return -1;
		a->len[a->n] = b->len[i];
		memcpy(a->s[a->n], b->s[i], b->len[i]);
		a->n++;
	}
	return 0;
}

static int is_digit(unsigned c)
{
	return c >= '0' && c <= '9';
}

/* Reads "{n}", "{n,}" or "{n,m}" at ps->p; on success advances and sets *min. */
static int parse_brace(struct parser *ps, unsigned *min)
{
	const unsigned char *q = ps->p + 1;
	unsigned n = 0;
	int digits = 0;
	while (q < ps->end && is_digit(*q)) {
		if (n < 100000)
			n = n * 10 + (unsigned)(*q - '0');
		q++;
		digits++;
	}
	if (!digits || q >= ps->end)
		return 0;
	if (*q == ',') {
		q++;
		while (q < ps->end && is_digit(*q))
			q++;
		if (q >= ps->end)
			return 0;
	}
	if (*q != '}')
		return 0;
	ps->p = q + 1;
	*min = n;
	return 1;
}

/* Reads an optional quantifier; returns 1 and sets *min when there is one. */
static int parse_quant(struct parser *ps, unsigned *min)
{
	int has = 0;
	if (ps->p >= ps->end)
		return 0;
	switch (*ps->p) {
	case '?':
	case '*':
		*min = 0;
		ps->p++;
		has = 1;
		break;
	case '+':
		*min = 1;
		ps->p++;
		has = 1;
		break;
	case '{':
		has = parse_brace(ps, min);
		break;
	default:
		break;
	}
	if (!has)
		return 0;
	if (ps->p < ps->end && (*ps->p == '?' || *ps->p == '+'))
		ps->p++; /* lazy or possessive: same minimum */
	if (ps->p < ps->end && (*ps->p == '?' || *ps->p == '*' || *ps->p == '+' || *ps->p == '{'))
		ps->fail = 1; /* a quantifier on a quantifier: not ours to reason about */
	return 1;
}

/* Skips a character class; ps->p is just past '['. */
static void parse_class(struct parser *ps)
{
	const unsigned char *q = ps->p;
	if (q < ps->end && *q == '^')
		q++;
	if (q < ps->end && *q == ']')
		q++;
	while (q < ps->end) {
		if (*q == ']') {
			ps->p = q + 1;
			return;
		}
		if (*q == '\\') {
			if (q + 1 >= ps->end || strchr("QEpPxNoc", q[1]) != NULL || q[1] == '\0')
				break;
			q += 2;
			continue;
		}
		if (*q == '[' && q + 1 < ps->end && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
			unsigned char kind = q[1];
			const unsigned char *r = q + 2;
			while (r + 1 < ps->end && !(r[0] == kind && r[1] == ']'))
				r++;
			if (r + 1 >= ps->end)
				break;
			q = r + 2;
			continue;
		}
		q++;
	}
	ps->fail = 1;
}

/* Reads a group after its '('; returns the kind and fills *child for a group that
 * passes its requirement through. */
static enum atom_kind parse_group(struct parser *ps, struct req *child)
{
	enum atom_kind kind = ATOM_GROUP;
	const unsigned char *q = ps->p;
	if (++ps->depth > DEPTH_MAX) {
		ps->fail = 1;
		return ATOM_ANY;
	}
	if (q < ps->end && *q == '*') {
		ps->fail = 1; /* (*VERB) */
		return ATOM_ANY;
	}
	if (q < ps->end && *q == '?') {
		unsigned char c = q + 1 < ps->end ? q[1] : 0;
		unsigned char c2 = q + 2 < ps->end ? q[2] : 0;
		if (c == ':' || c == '>') {
			q += 2;
		} else if (c == '=' || c == '!') {
			q += 2;
			kind = ATOM_ZW;
		} else if (c == '<' && (c2 == '=' || c2 == '!')) {
			q += 3;
			kind = ATOM_ZW;
		} else if (c == '<' || (c == 'P' && c2 == '<')) {
			q += c == '<' ? 2 : 3;
			while (q < ps->end && *q != '>')
				q++;
			if (q >= ps->end) {
				ps->fail = 1;
				return ATOM_ANY;
			}
			q++;
		} else {
			ps->fail = 1; /* options, conditionals, recursion, comments, ... */
			return ATOM_ANY;
		}
	}
	ps->p = q;
	parse_alt(ps, child, NULL);
	if (ps->fail)
		return ATOM_ANY;
	if (ps->p >= ps->end || *ps->p != ')') {
		ps->fail = 1;
		return ATOM_ANY;
	}
	ps->p++;
	ps->depth--;
	return kind;
}

/* Reads one atom; for ATOM_LIT sets *lit (lower case), for ATOM_GROUP *child. */
static enum atom_kind parse_atom(struct parser *ps, char *lit, struct req *child)
{
	unsigned char c = *ps->p;
	if (c >= 0x80) {
		/* one UTF-8 character: caseless Unicode folding makes it no literal of ours */
		ps->p++;
		while (ps->p < ps->end && (*ps->p & 0xC0) == 0x80)
			ps->p++;
		return ATOM_ANY;
	}
	switch (c) {
	case '^':
	case '$':
		ps->p++;
		return ATOM_ZW;
	case '.':
		ps->p++;
		return ATOM_ANY;
	case '[':
		ps->p++;
		parse_class(ps);
		return ATOM_ANY;
	case '(':
		ps->p++;
		return parse_group(ps, child);
	case '*':
	case '+':
	case '?':
	case '{':
		ps->fail = 1;
		return ATOM_ANY;
	case '\\':
		break;
	default:
		ps->p++;
		*lit = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
		return ATOM_LIT;
	}
	if (ps->p + 1 >= ps->end) {
		ps->fail = 1;
		return ATOM_ANY;
	}
	unsigned char e = ps->p[1];
	ps->p += 2;
	if (strchr("bBAzZG", e) != NULL && e != '\0')
		return ATOM_ZW;
	if (strchr("wWsSdDhHvVRXtnrfea", e) != NULL && e != '\0')
		return ATOM_ANY;
	if (e == 'N' && !(ps->p < ps->end && *ps->p == '{'))
		return ATOM_ANY;
	if (e >= 0x20 && e < 0x7f && !(e >= '0' && e <= '9') && !(e >= 'a' && e <= 'z') && !(e >= 'A' && e <= 'Z') &&
	    e != '_') {
		*lit = (char)e; /* escaped punctuation or space */
		return ATOM_LIT;
	}
	ps->fail = 1;
	return ATOM_ANY;
}

/* One branch: a concatenation up to '|', ')' or the end. Its most selective
 * requirement goes to *out, the runner-up to *second when not NULL. */
static void parse_seq(struct parser *ps, struct req *out, struct req *second)
{
	struct req best, child, tmp;
	char run[LIT_MAX];
	int runlen = 0;
	best.n = 0;
	if (second != NULL)
		second->n = 0;
	while (!ps->fail && ps->p < ps->end && *ps->p != '|' && *ps->p != ')') {
		char lit = 0;
		unsigned min = 1;
		child.n = 0;
		enum atom_kind kind = parse_atom(ps, &lit, &child);
		if (ps->fail)
			break;
		int quant = parse_quant(ps, &min);
		if (ps->fail)
			break;
		if (kind == ATOM_LIT && !quant) {
			if (runlen == LIT_MAX) {
				req_single(&tmp, run, runlen);
				req_consider(&best, second, &tmp);
				runlen = 0;
			}
			run[runlen++] = lit;
			continue;
		}
		if (runlen > 0) {
			req_single(&tmp, run, runlen);
			req_consider(&best, second, &tmp);
			runlen = 0;
		}
		if (min == 0)
			continue;
		if (kind == ATOM_LIT) {
			req_single(&tmp, &lit, 1);
			req_consider(&best, second, &tmp);
		} else if (kind == ATOM_GROUP) {
			req_consider(&best, second, &child);
		}
	}
	if (runlen > 0) {
		req_single(&tmp, run, runlen);
		req_consider(&best, second, &tmp);
	}
	*out = best;
}

/* Alternatives up to ')' or the end: the union, or none if any has none. When
 * second is not NULL and there is one alternative only, its runner-up
 * requirement goes there (otherwise second->n is 0). */
static void parse_alt(struct parser *ps, struct req *out, struct req *second)
{
	struct req branch;
	int none = 0, nbranch = 0;
	out->n = 0;
	for (;;) {
		parse_seq(ps, &branch, nbranch == 0 ? second : NULL);
		nbranch++;
		if (ps->fail)
			return;
		if (branch.n == 0 || req_union(out, &branch) < 0)
			none = 1;
		if (ps->p < ps->end && *ps->p == '|') {
			ps->p++;
			continue;
		}
		break;
	}
	if (none)
		out->n = 0;
	if (second != NULL && (nbranch > 1 || out->n == 0))
		second->n = 0;
}

/* The requirements of a whole pattern: out[0] (n == 0: none) and out[1], a second
 * one a match also needs (n == 0: none). Recursion is bounded by DEPTH_MAX: a few
 * KiB of stack per group level. */
static void pattern_requirement(const char *pattern, size_t len, struct req out[2])
{
	struct parser ps = {(const unsigned char *)pattern, (const unsigned char *)pattern + len, 0, 0};
	parse_alt(&ps, &out[0], &out[1]);
	if (ps.fail || ps.p != ps.end)
		out[0].n = out[1].n = 0;
}

/* ---- building ---- */

bot_match *bot_match_new(void)
{
	return calloc(1, sizeof(bot_match));
}

static void automaton_free(bot_match *m)
{
	free(m->unf);
	free(m->one);
	free(m->delta);
	free(m->outstate);
	free(m->dictnext);
	free(m->out_off);
	free(m->outpat);
	m->unf = m->one = NULL;
	m->delta = m->outstate = m->dictnext = m->out_off = m->outpat = NULL;
	m->nstates = 0;
	m->nc = 0;
	m->nwords = 0;
}

void bot_match_free(bot_match *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		pcre2_code_free(m->pats[i].code);
	free(m->pats);
	free(m->lits);
	free(m->nsets);
	automaton_free(m);
	free(m);
}

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err == NULL || errlen == 0)
		return;
	int n = snprintf(err, errlen, "%s", msg);
	(void)n; /* a cut message is still NUL-terminated and the best we can do */
}

int bot_match_add(bot_match *m, const char *pattern, size_t len, uint32_t id, char *err, size_t errlen,
		  size_t *erroffset)
{
	int rc = -1;
	pcre2_code *code = NULL;
	struct req *req = NULL;
	int ecode = 0;
	PCRE2_SIZE eoff = 0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (erroffset != NULL)
		*erroffset = 0;
	if (m->built) {
		set_err(err, errlen, "patterns cannot be added after the prefilter is built");
		goto out;
	}
	code = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_CASELESS | PCRE2_UTF | PCRE2_UCP, &ecode, &eoff, NULL);
	if (code == NULL) {
		if (err != NULL && errlen > 0 &&
		    pcre2_get_error_message(ecode, (PCRE2_UCHAR *)err, errlen) == PCRE2_ERROR_BADDATA)
			set_err(err, errlen, "unknown PCRE2 error");
		if (erroffset != NULL)
			*erroffset = eoff;
		goto out;
	}
	req = malloc(2 * sizeof(*req));
	if (req == NULL) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	pattern_requirement(pattern, len, req);

	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct pat *np = realloc(m->pats, ncap * sizeof(*np));
		if (np == NULL) {
			set_err(err, errlen, "out of memory");
			goto out;
		}
		m->pats = np;
		uint8_t *nf = realloc(m->nsets, ncap);
		if (nf == NULL) {
			set_err(err, errlen, "out of memory");
			goto out;
		}
		m->nsets = nf;
		m->cap = ncap;
	}
	size_t need = (size_t)req[0].n + (size_t)req[1].n;
	if (m->nlits + need > m->litcap) {
		size_t ncap = m->litcap ? m->litcap * 2 : 256;
		while (ncap < m->nlits + need)
			ncap *= 2;
		struct lit *nl = realloc(m->lits, ncap * sizeof(*nl));
		if (nl == NULL) {
			set_err(err, errlen, "out of memory");
			goto out;
		}
		m->lits = nl;
		m->litcap = ncap;
	}
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < req[k].n; i++) {
			struct lit *l = &m->lits[m->nlits++];
			l->pat = (uint32_t)m->n;
			l->slot = (uint8_t)k;
			l->len = req[k].len[i];
			memcpy(l->s, req[k].s[i], req[k].len[i]);
		}
	m->nsets[m->n] = (uint8_t)(req[0].n == 0 ? 0 : req[1].n == 0 ? 1 : 2);
	if (req[0].n == 0)
		m->unfiltered++;
	m->pats[m->n].code = code;
	m->pats[m->n].id = id;
	m->pats[m->n].jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
	code = NULL;
	m->n++;
	rc = 0;
out:
	pcre2_code_free(code);
	free(req);
	return rc;
}

static int cmp_pair(const void *a, const void *b)
{
	const uint32_t *x = a, *y = b;
	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	if (x[1] != y[1])
		return x[1] < y[1] ? -1 : 1;
	return 0;
}

int bot_match_build(bot_match *m)
{
	int rc = -1;
	uint32_t *pairs = NULL; /* (state, pattern) for each literal's end */
	uint32_t *fail = NULL, *queue = NULL;
	uint32_t cap = 0, nc, ns;
	size_t npairs = 0;

	automaton_free(m);
	m->built = 0;
	m->nwords = (m->n + 63) / 64;
	m->unf = calloc(m->nwords ? m->nwords : 1, sizeof(uint64_t));
	m->one = calloc(m->nwords ? m->nwords : 1, sizeof(uint64_t));
	if (m->unf == NULL || m->one == NULL)
		goto out;
	for (size_t i = 0; i < m->n; i++) {
		if (m->nsets[i] == 0)
			m->unf[i / 64] |= (uint64_t)1 << (i % 64);
		if (m->nsets[i] == 1)
			m->one[i / 64] |= (uint64_t)1 << (i % 64);
	}

	/* the alphabet: one class per byte used in a literal, A-Z folded, class 0 the rest */
	memset(m->cls, 0, sizeof(m->cls));
	nc = 1;
	for (size_t i = 0; i < m->nlits; i++)
		for (int k = 0; k < m->lits[i].len; k++) {
			unsigned char c = (unsigned char)m->lits[i].s[k];
			if (m->cls[c] == 0)
				m->cls[c] = (uint8_t)nc++;
		}
	for (unsigned c = 'A'; c <= 'Z'; c++)
		m->cls[c] = m->cls[c + ('a' - 'A')];
	m->nc = nc;

	/* the trie, in the dense table: 0 is "no edge" (the root is nobody's child) */
	cap = 1024;
	m->delta = calloc((size_t)cap * nc, sizeof(uint32_t));
	pairs = malloc((m->nlits ? m->nlits : 1) * 2 * sizeof(uint32_t));
	if (m->delta == NULL || pairs == NULL)
		goto out;
	ns = 1;
	for (size_t i = 0; i < m->nlits; i++) {
		uint32_t s = 0;
		for (int k = 0; k < m->lits[i].len; k++) {
			uint32_t c = m->cls[(unsigned char)m->lits[i].s[k]];
			uint32_t *e = &m->delta[(size_t)s * nc + c];
			if (*e == 0) {
				if (ns == cap) {
					if (cap > (ROW_MASK / nc) / 2)
						goto out;
					uint32_t *nd = realloc(m->delta, (size_t)cap * 2 * nc * sizeof(uint32_t));
					if (nd == NULL)
						goto out;
					memset(nd + (size_t)cap * nc, 0, (size_t)cap * nc * sizeof(uint32_t));
					m->delta = nd;
					cap *= 2;
					e = &m->delta[(size_t)s * nc + c];
				}
				*e = ns++;
			}
			s = *e;
		}
		pairs[npairs * 2] = s;
		pairs[npairs * 2 + 1] = m->lits[i].pat << 1 | m->lits[i].slot;
		npairs++;
	}
	m->nstates = ns;

	/* outputs, grouped by state */
	qsort(pairs, npairs, 2 * sizeof(uint32_t), cmp_pair);
	m->out_off = calloc((size_t)ns + 1, sizeof(uint32_t));
	m->outpat = malloc((npairs ? npairs : 1) * sizeof(uint32_t));
	m->outstate = malloc((size_t)ns * sizeof(uint32_t));
	m->dictnext = malloc((size_t)ns * sizeof(uint32_t));
	fail = calloc(ns, sizeof(uint32_t));
	queue = malloc((size_t)ns * sizeof(uint32_t));
	if (m->out_off == NULL || m->outpat == NULL || m->outstate == NULL || m->dictnext == NULL || fail == NULL ||
	    queue == NULL)
		goto out;
	{
		size_t w = 0;
		for (size_t i = 0; i < npairs; i++) {
			if (w > 0 && pairs[i * 2] == pairs[(i - 1) * 2] && pairs[i * 2 + 1] == pairs[(i - 1) * 2 + 1])
				continue;
			m->outpat[w++] = pairs[i * 2 + 1];
			m->out_off[pairs[i * 2] + 1]++;
		}
		for (uint32_t s = 0; s < ns; s++)
			m->out_off[s + 1] += m->out_off[s];
	}

	/* failure links and the full transition function, breadth first */
	{
		uint32_t head = 0, tail = 0;
		m->outstate[0] = NO_STATE;
		m->dictnext[0] = NO_STATE;
		for (uint32_t c = 0; c < nc; c++) {
			uint32_t u = m->delta[c];
			if (u != 0) {
				fail[u] = 0;
				queue[tail++] = u;
			}
		}
		while (head < tail) {
			uint32_t r = queue[head++];
			uint32_t f = fail[r];
			int own = m->out_off[r + 1] > m->out_off[r];
			m->dictnext[r] = m->outstate[f];
			m->outstate[r] = own ? r : m->outstate[f];
			for (uint32_t c = 0; c < nc; c++) {
				uint32_t *e = &m->delta[(size_t)r * nc + c];
				if (*e != 0) {
					fail[*e] = m->delta[(size_t)f * nc + c];
					queue[tail++] = *e;
				} else {
					*e = m->delta[(size_t)f * nc + c];
				}
			}
		}
	}
	/* state numbers become row offsets, flagged when the state has outputs */
	for (size_t i = 0; i < (size_t)ns * nc; i++) {
		uint32_t t = m->delta[i];
		m->delta[i] = t * nc | (m->outstate[t] != NO_STATE ? HIT_FLAG : 0);
	}
	{
		uint32_t *shrunk = realloc(m->delta, (size_t)ns * nc * sizeof(uint32_t));
		if (shrunk != NULL)
			m->delta = shrunk;
	}
	m->built = 1;
	rc = 0;
out:
	free(pairs);
	free(fail);
	free(queue);
	if (rc != 0)
		automaton_free(m);
	return rc;
}

size_t bot_match_count(const bot_match *m)
{
	return m->n;
}

size_t bot_match_unfiltered_count(const bot_match *m)
{
	return m->unfiltered;
}

/* ---- matching ---- */

bot_match_scratch *bot_match_scratch_new(void)
{
	bot_match_scratch *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->md = pcre2_match_data_create(1, NULL);
	s->mctx = pcre2_match_context_create(NULL);
	s->js = pcre2_jit_stack_create(JIT_STACK_START, JIT_STACK_MAX, NULL);
	if (s->md == NULL || s->mctx == NULL || s->js == NULL) {
		bot_match_scratch_free(s);
		return NULL;
	}
	pcre2_set_match_limit(s->mctx, BOT_MATCH_LIMIT);
	pcre2_set_depth_limit(s->mctx, BOT_MATCH_DEPTH_LIMIT);
	pcre2_jit_stack_assign(s->mctx, NULL, s->js);
	return s;
}

void bot_match_scratch_free(bot_match_scratch *s)
{
	if (s == NULL)
		return;
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mctx);
	pcre2_jit_stack_free(s->js);
	free(s->cand);
	free(s);
}

/* 1 when pattern i matches; errors, the match limit included, are no match. */
static int pat_matches(const bot_match *m, size_t i, const char *text, size_t len, bot_match_scratch *s)
{
	const struct pat *p = &m->pats[i];
	int rc;
	if (p->jit)
		rc = pcre2_jit_match(p->code, (PCRE2_SPTR)text, len, 0, 0, s->md, s->mctx);
	else
		rc = pcre2_match(p->code, (PCRE2_SPTR)text, len, 0, 0, s->md, s->mctx);
	return rc >= 0;
}

/* Runs the automaton over text and marks candidates in s->cand. Returns 0, or -1
 * when the prefilter cannot be used for this message (nothing marked then). */
static int prefilter(const bot_match *m, const unsigned char *t, size_t len, bot_match_scratch *s)
{
	if (!m->built)
		return -1;
	if (s->candcap < m->nwords) {
		uint64_t *nc = calloc(2 * m->nwords, sizeof(uint64_t));
		if (nc == NULL)
			return -1;
		free(s->cand);
		s->cand = nc;
		s->candcap = m->nwords;
	}
	if (m->nstates <= 1)
		return 0;
	const uint32_t *delta = m->delta;
	const uint8_t *cls = m->cls;
	uint64_t *cand = s->cand;
	uint64_t *cand1 = s->cand + s->candcap;
	uint32_t st = 0;
	unsigned high = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char b = t[i];
		high |= b;
		st = delta[(st & ROW_MASK) + cls[b]];
		if (st & HIT_FLAG) {
			uint32_t x = m->outstate[(st & ROW_MASK) / m->nc];
			do {
				for (uint32_t k = m->out_off[x]; k < m->out_off[x + 1]; k++) {
					uint32_t p = m->outpat[k] >> 1;
					uint64_t *set = m->outpat[k] & 1 ? cand1 : cand;
					set[p / 64] |= (uint64_t)1 << (p % 64);
				}
				x = m->dictnext[x];
			} while (x != NO_STATE);
		}
	}
	if ((high & 0x80) && (memmem(t, len, "\xE2\x84\xAA", 3) != NULL || memmem(t, len, "\xC5\xBF", 2) != NULL)) {
		memset(cand, 0, m->nwords * sizeof(uint64_t));
		memset(cand1, 0, m->nwords * sizeof(uint64_t));
		return -1;
	}
	return 0;
}

/* Tries candidates (every set met) and unfiltered patterns in order; clears
 * s->cand. */
static size_t run_candidates(const bot_match *m, const char *text, size_t len, bot_match_scratch *s,
			     int (*cb)(void *ctx, uint32_t id), void *ctx)
{
	size_t seen = 0;
	size_t w = 0;
	uint64_t *cand = s->cand, *cand1 = s->cand + s->candcap;
	for (; w < m->nwords; w++) {
		uint64_t bits = (cand[w] & (cand1[w] | m->one[w])) | m->unf[w];
		cand[w] = 0;
		cand1[w] = 0;
		while (bits != 0) {
			size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			if (pat_matches(m, i, text, len, s)) {
				seen++;
				if (cb(ctx, m->pats[i].id) != 0)
					goto stop;
			}
		}
	}
	return seen;
stop:
	for (w++; w < m->nwords; w++) {
		cand[w] = 0;
		cand1[w] = 0;
	}
	return seen;
}

static size_t run_all(const bot_match *m, const char *text, size_t len, bot_match_scratch *s,
		      int (*cb)(void *ctx, uint32_t id), void *ctx)
{
	size_t seen = 0;
	for (size_t i = 0; i < m->n; i++)
		if (pat_matches(m, i, text, len, s)) {
			seen++;
			if (cb(ctx, m->pats[i].id) != 0)
				break;
		}
	return seen;
}

static int take_first(void *ctx, uint32_t id)
{
	*(int64_t *)ctx = id;
	return 1;
}

int64_t bot_match_first(const bot_match *m, const char *text, size_t len, bot_match_scratch *s)
{
	int64_t id = -1;
	if (prefilter(m, (const unsigned char *)text, len, s) != 0)
		run_all(m, text, len, s, take_first, &id);
	else
		run_candidates(m, text, len, s, take_first, &id);
	return id;
}

size_t bot_match_each(const bot_match *m, const char *text, size_t len, bot_match_scratch *s,
		      int (*cb)(void *ctx, uint32_t id), void *ctx)
{
	if (prefilter(m, (const unsigned char *)text, len, s) != 0)
		return run_all(m, text, len, s, cb, ctx);
	return run_candidates(m, text, len, s, cb, ctx);
}

int64_t bot_match_first_slow(const bot_match *m, const char *text, size_t len, bot_match_scratch *s)
{
	int64_t id = -1;
	run_all(m, text, len, s, take_first, &id);
	return id;
}
