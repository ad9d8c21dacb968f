/* store_stats: the figures `loket stats` and the admins read, over [from, to).
 *
 * All queries run in one read transaction, so the figures agree with each
 * other even while the gateway writes. Unmatched texts are grouped by their
 * lower-cased, trimmed text: they are what admins should write intents for
 * next. Waits are escalation -> claim, from the escalations table; percentiles
 * are nearest-rank. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

static int top_rows(store *s, sqlite3_stmt *st, int64_t from_ms, int64_t to_ms, store_stat_row *rows, size_t *n)
{
	sqlite3_bind_int64(st, 1, from_ms);
	sqlite3_bind_int64(st, 2, to_ms);
	*n = 0;
	int step = SQLITE_DONE;
	while (*n < 20 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		store_col_copy(st, 0, rows[*n].key, sizeof rows[*n].key);
		rows[*n].count = sqlite3_column_int64(st, 1);
		(*n)++;
	}
	int rc = (*n == 20 || step == SQLITE_DONE) ? STORE_OK : store_fail(s, step);
	store_stmt_done(st);
	return rc;
}

static double nearest_rank(const int64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t rank = (size_t)ceil(p * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1000.0;
}

static int waits(store *s, int64_t from_ms, int64_t to_ms, store_stats *out)
{
	sqlite3_stmt *st = store_stmt(s, STMT_STATS_WAITS,
				      "SELECT claimed_ms - escalated_ms FROM escalations"
				      " WHERE escalated_ms >= ?1 AND escalated_ms < ?2 AND claimed_ms > 0 ORDER BY 1");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, from_ms);
	sqlite3_bind_int64(st, 2, to_ms);
	int64_t *v = NULL;
	size_t n = 0, cap = 0;
	int step, rc = STORE_OK;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			int64_t *nv = realloc(v, ncap * sizeof *nv);
			if (!nv) {
				rc = store_failf(s, STORE_ERR, "out of memory");
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		v[n++] = sqlite3_column_int64(st, 0);
	}
	if (step != SQLITE_DONE) {
		rc = store_fail(s, step);
		goto out;
	}
	out->wait_p50_s = nearest_rank(v, n, 0.50);
	out->wait_p90_s = nearest_rank(v, n, 0.90);
	out->wait_max_s = n ? (double)v[n - 1] / 1000.0 : 0;
out:
	store_stmt_done(st);
	free(v);
	return rc;
}

static int collect(store *s, int64_t from_ms, int64_t to_ms, store_stats *out)
{
	sqlite3_stmt *st = store_stmt(
	    s, STMT_STATS_COUNTS,
	    "SELECT"
	    " (SELECT count(*) FROM messages WHERE direction = 'in' AND at_ms >= ?1 AND at_ms < ?2),"
	    " (SELECT count(*) FROM messages WHERE direction = 'out' AND at_ms >= ?1 AND at_ms < ?2),"
	    " (SELECT count(*) FROM messages WHERE direction = 'in' AND fallback = 1 AND at_ms >= ?1 AND at_ms < ?2),"
	    " (SELECT count(DISTINCT conversation_id) FROM messages"
	    "   WHERE direction = 'in' AND at_ms >= ?1 AND at_ms < ?2),"
	    " (SELECT count(*) FROM outbox WHERE dead = 1 AND created_ms >= ?1 AND created_ms < ?2),"
	    " (SELECT count(*) FROM escalations WHERE escalated_ms >= ?1 AND escalated_ms < ?2),"
	    " (SELECT coalesce(sum(claimed_ms > 0), 0) FROM escalations WHERE escalated_ms >= ?1 AND escalated_ms < "
	    "?2),"
	    " (SELECT count(*) FROM ratings WHERE at_ms >= ?1 AND at_ms < ?2),"
	    " (SELECT coalesce(avg(rating), 0) FROM ratings WHERE at_ms >= ?1 AND at_ms < ?2)");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, from_ms);
	sqlite3_bind_int64(st, 2, to_ms);
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		out->inbound = sqlite3_column_int64(st, 0);
		out->outbound = sqlite3_column_int64(st, 1);
		out->fallbacks = sqlite3_column_int64(st, 2);
		out->conversations = sqlite3_column_int64(st, 3);
		out->dead_letters = sqlite3_column_int64(st, 4);
		out->escalations = sqlite3_column_int64(st, 5);
		out->claimed = sqlite3_column_int64(st, 6);
		out->ratings = sqlite3_column_int64(st, 7);
		out->rating_avg = sqlite3_column_double(st, 8);
	}
	int rc = step == SQLITE_ROW ? STORE_OK : store_fail(s, step);
	store_stmt_done(st);
	if (rc != STORE_OK)
		return rc;

	if ((rc = waits(s, from_ms, to_ms, out)) != STORE_OK)
		return rc;

	st = store_stmt(s, STMT_STATS_INTENTS,
			"SELECT intent, count(*) AS n FROM messages"
			" WHERE direction = 'in' AND intent IS NOT NULL AND intent <> '' AND at_ms >= ?1 AND at_ms < ?2"
			" GROUP BY intent ORDER BY n DESC, intent LIMIT 20");
	if (!st)
		return STORE_ERR;
	if ((rc = top_rows(s, st, from_ms, to_ms, out->intents, &out->n_intents)) != STORE_OK)
		return rc;

	st = store_stmt(s, STMT_STATS_UNMATCHED,
			"SELECT lower(trim(text)) AS t, count(*) AS n FROM messages"
			" WHERE direction = 'in' AND fallback = 1 AND text IS NOT NULL AND trim(text) <> ''"
			" AND at_ms >= ?1 AND at_ms < ?2 GROUP BY t ORDER BY n DESC, t LIMIT 20");
	if (!st)
		return STORE_ERR;
	return top_rows(s, st, from_ms, to_ms, out->unmatched, &out->n_unmatched);
}

int store_stats_get(store *s, int64_t from_ms, int64_t to_ms, store_stats *out)
{
	memset(out, 0, sizeof *out);
	if (s->tx_depth > 0) {
		/* inside a round: read what the round sees, in its transaction */
		if (sqlite3_get_autocommit(s->db))
			return store_failf(s, STORE_ERR, "the round's transaction was rolled back by an earlier error");
		return collect(s, from_ms, to_ms, out);
	}
	sqlite3_stmt *st = store_stmt(s, STMT_BEGIN_READ, "BEGIN DEFERRED");
	if (!st)
		return STORE_ERR;
	int rc = store_exec_stmt(s, st);
	if (rc != STORE_OK)
		return rc;
	rc = collect(s, from_ms, to_ms, out);
	if (rc != STORE_OK) {
		store_tx_rollback(s);
		return rc;
	}
	return store_tx_commit(s);
}
