/* bot_index: lookup structures built once per set: intents by name (binary
 * search) and the trigram -> examples inverted index behind "did you mean". */
#include <stdlib.h>
#include <string.h>

#include "bot/bot_int.h"

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
	for (size_t i = 0; i < n_pairs; i++) {
		if (i == 0 || pairs[i].tri != pairs[i - 1].tri) {
			set->tri_key[set->n_tri] = pairs[i].tri;
			set->tri_off[set->n_tri] = (uint32_t)i;
			set->n_tri++;
		}
		set->tri_post[i] = pairs[i].ex;
	}
	set->tri_off[set->n_tri] = (uint32_t)n_pairs;
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
}
