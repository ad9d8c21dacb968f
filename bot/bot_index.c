/* bot_index: lookup structures built once per set: intents by name (binary
 * search) and the trigram -> examples inverted index behind "did you mean". */
#include <stdlib.h>
#include <string.h>

#include "bot/bot_int.h"

/* A trigram found in more examples than this is a stop trigram ("an ", " pe"):
 * it says little about which intent is meant, and walking its long list of
 * examples is what made "did you mean" slow on large packs. Small packs (under
 * BOT_STOP_MIN_DF * BOT_STOP_FRACTION examples) keep every trigram. */
#define BOT_STOP_MIN_DF 64
#define BOT_STOP_FRACTION 20 /* 1/20 of the examples */

static int by_name_cmp(const void *a, const void *b, void *arg)
{
	const bot_set *set = arg;
	return strcmp(set->intents[*(const int *)a].name, set->intents[*(const int *)b].name);
}

typedef struct tri_pair {
	uint32_t tri, ex;
} tri_pair;

static int pair_cmp(const void *a, const void *b)
{
	const tri_pair *x = a, *y = b;
	if (x->tri != y->tri)
		return x->tri < y->tri ? -1 : 1;
	return x->ex < y->ex ? -1 : x->ex > y->ex;
}

int bot_set_intent_index(const bot_set *set, const char *name)
{
	size_t lo = 0, hi = set->n_intents;

	if (!set->by_name) {
		for (size_t i = 0; i < set->n_intents; i++)
			if (strcmp(set->intents[i].name, name) == 0)
				return (int)i;
		return -1;
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(set->intents[set->by_name[mid]].name, name);
		if (c == 0)
			return set->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int bot_index_build(bot_set *set)
{
	tri_pair *pairs = NULL;
	size_t n_pairs = 0, ex = 0;
	int rc = -1;

	set->by_name = malloc((set->n_intents ? set->n_intents : 1) * sizeof(int));
	if (!set->by_name)
		goto out;
	for (size_t i = 0; i < set->n_intents; i++)
		set->by_name[i] = (int)i;
	qsort_r(set->by_name, set->n_intents, sizeof(int), by_name_cmp, set);

	for (size_t i = 0; i < set->n_intents; i++)
		if (set->intents[i].n_patterns)
			for (size_t e = 0; e < set->intents[i].n_examples; e++) {
				set->n_ex++;
				n_pairs += set->intents[i].examples[e].ntri;
			}
	set->ex_intent = malloc((set->n_ex ? set->n_ex : 1) * sizeof(int));
	set->ex_ntri = malloc((set->n_ex ? set->n_ex : 1) * sizeof(uint32_t));
	pairs = malloc((n_pairs ? n_pairs : 1) * sizeof(*pairs));
	if (!set->ex_intent || !set->ex_ntri || !pairs)
		goto out;
	n_pairs = 0;
	for (size_t i = 0; i < set->n_intents; i++) {
		if (!set->intents[i].n_patterns)
			continue;
		for (size_t e = 0; e < set->intents[i].n_examples; e++) {
			const bot_example *x = &set->intents[i].examples[e];
			set->ex_intent[ex] = (int)i;
			set->ex_ntri[ex] = (uint32_t)x->ntri;
			for (size_t t = 0; t < x->ntri; t++) {
				pairs[n_pairs].tri = x->tri[t];
				pairs[n_pairs].ex = (uint32_t)ex;
				n_pairs++;
			}
			ex++;
		}
	}
	qsort(pairs, n_pairs, sizeof(*pairs), pair_cmp);
	set->tri_key = malloc((n_pairs ? n_pairs : 1) * sizeof(uint32_t));
	set->tri_off = malloc((n_pairs + 1) * sizeof(uint32_t));
	set->tri_post = malloc((n_pairs ? n_pairs : 1) * sizeof(uint32_t));
	if (!set->tri_key || !set->tri_off || !set->tri_post)
		goto out;
	set->stop = malloc((n_pairs ? n_pairs : 1) * sizeof(uint32_t));
	if (!set->stop)
		goto out;
	{
		size_t limit = set->n_ex / BOT_STOP_FRACTION, np = 0;
		if (limit < BOT_STOP_MIN_DF)
			limit = BOT_STOP_MIN_DF;
		for (size_t i = 0; i < n_pairs;) {
			size_t j = i;
			while (j < n_pairs && pairs[j].tri == pairs[i].tri)
				j++;
			if (j - i > limit) {
				set->stop[set->n_stop++] = pairs[i].tri;
				for (size_t k = i; k < j; k++)
					set->ex_ntri[pairs[k].ex]--;
			} else {
				set->tri_key[set->n_tri] = pairs[i].tri;
				set->tri_off[set->n_tri] = (uint32_t)np;
				set->n_tri++;
				for (size_t k = i; k < j; k++)
					set->tri_post[np++] = pairs[k].ex;
			}
			i = j;
		}
		set->tri_off[set->n_tri] = (uint32_t)np;
	}
	{
		size_t slots = 16;
		while (slots < set->n_tri * 2)
			slots *= 2;
		set->tri_slot = calloc(slots, sizeof(uint32_t));
		if (!set->tri_slot)
			goto out;
		set->tri_mask = (uint32_t)(slots - 1);
		for (size_t i = 0; i < set->n_tri; i++) {
			uint32_t h = (set->tri_key[i] * 2654435761u) & set->tri_mask;
			while (set->tri_slot[h])
				h = (h + 1) & set->tri_mask;
			set->tri_slot[h] = (uint32_t)i + 1;
		}
	}
	rc = 0;
out:
	free(pairs);
	return rc;
}

void bot_index_free(bot_set *set)
{
	free(set->by_name);
	free(set->ex_intent);
	free(set->ex_ntri);
	free(set->tri_key);
	free(set->tri_off);
	free(set->tri_post);
	free(set->stop);
	free(set->tri_slot);
}
