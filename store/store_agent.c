/* store_agent: console accounts, their sessions and the audit log.
 *
 * Passwords arrive already hashed (libsodium crypto_pwhash_str, done by the
 * caller); sessions are kept by the SHA-256 of their token, so the file never
 * holds anything that logs in by itself. The audit log is append-only. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

static int valid_role(const char *role)
{
	return role && (strcmp(role, "agent") == 0 || strcmp(role, "admin") == 0);
}

int store_agent_add(store *s, const char *name, const char *role, const char *pwhash, int64_t now_ms)
{
	if (!name || !*name || strlen(name) >= STORE_AGENT_MAX)
		return store_failf(s, STORE_ERR, "agent name must be 1..%d bytes", STORE_AGENT_MAX - 1);
	if (!valid_role(role))
		return store_failf(s, STORE_ERR, "role must be agent or admin");
	if (!pwhash || !*pwhash || strlen(pwhash) >= sizeof(((store_agent *)0)->pwhash))
		return store_failf(s, STORE_ERR, "bad password hash");
	sqlite3_stmt *st =
	    store_stmt(s, STMT_AGENT_INSERT, "INSERT INTO agents (name, role, pwhash, created_ms) VALUES (?, ?, ?, ?)");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, name);
	store_bind_text(st, 2, role);
	store_bind_text(st, 3, pwhash);
	sqlite3_bind_int64(st, 4, now_ms);
	int step = sqlite3_step(st);
	int rc = STORE_OK;
	if (step == SQLITE_CONSTRAINT_UNIQUE)
		rc = store_failf(s, STORE_ERR_CONFLICT, "an agent with that name exists");
	else if (step != SQLITE_DONE)
		rc = store_fail(s, step);
	store_stmt_done(st);
	return rc;
}

static void agent_from_row(sqlite3_stmt *st, store_agent *a)
{
	memset(a, 0, sizeof *a);
	a->id = sqlite3_column_int64(st, 0);
	store_col_copy(st, 1, a->name, sizeof a->name);
	store_col_copy(st, 2, a->role, sizeof a->role);
	store_col_copy(st, 3, a->pwhash, sizeof a->pwhash);
	a->disabled = sqlite3_column_int(st, 4);
	a->created_ms = sqlite3_column_int64(st, 5);
}

int store_agent_get(store *s, const char *name, store_agent *a)
{
	sqlite3_stmt *st = store_stmt(s, STMT_AGENT_GET,
				      "SELECT id, name, role, pwhash, disabled, created_ms FROM agents WHERE name = ?");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, name);
	int step = sqlite3_step(st);
	int rc = STORE_OK;
	if (step == SQLITE_ROW)
		agent_from_row(st, a);
	else if (step == SQLITE_DONE)
		rc = store_failf(s, STORE_ERR_NOTFOUND, "no such agent");
	else
		rc = store_fail(s, step);
	store_stmt_done(st);
	return rc;
}

int store_agent_list(store *s, store_agent **agents, size_t *n)
{
	*agents = NULL;
	*n = 0;
	sqlite3_stmt *st = store_stmt(s, STMT_AGENT_LIST,
				      "SELECT id, name, role, pwhash, disabled, created_ms FROM agents ORDER BY name");
	if (!st)
		return STORE_ERR;
	store_agent *v = NULL;
	size_t k = 0, cap = 0;
	int step, rc = STORE_OK;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			store_agent *nv = realloc(v, ncap * sizeof *nv);
			if (!nv) {
				rc = store_failf(s, STORE_ERR, "out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		agent_from_row(st, &v[k++]);
	}
	if (rc == STORE_OK && step != SQLITE_DONE)
		rc = store_fail(s, step);
	store_stmt_done(st);
	if (rc != STORE_OK) {
		free(v);
		return rc;
	}
	*agents = v;
	*n = k;
	return STORE_OK;
}

/* Runs the bound UPDATE st on one agent: NOTFOUND when it changed nothing. */
static int agent_update(store *s, sqlite3_stmt *st)
{
	int rc = store_exec_stmt(s, st);
	if (rc == STORE_OK && sqlite3_changes(s->db) != 1)
		rc = store_failf(s, STORE_ERR_NOTFOUND, "no such agent");
	return rc;
}

int store_agent_set_disabled(store *s, const char *name, int disabled, int64_t now_ms)
{
	(void)now_ms;
	sqlite3_stmt *st = store_stmt(s, STMT_AGENT_DISABLE, "UPDATE agents SET disabled = ? WHERE name = ?");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int(st, 1, disabled ? 1 : 0);
	store_bind_text(st, 2, name);
	return agent_update(s, st);
}

int store_agent_set_pwhash(store *s, const char *name, const char *pwhash, int64_t now_ms)
{
	(void)now_ms;
	if (!pwhash || !*pwhash || strlen(pwhash) >= sizeof(((store_agent *)0)->pwhash))
		return store_failf(s, STORE_ERR, "bad password hash");
	sqlite3_stmt *st = store_stmt(s, STMT_AGENT_PWHASH, "UPDATE agents SET pwhash = ? WHERE name = ?");
	if (!st)
		return STORE_ERR;
	store_bind_text(st, 1, pwhash);
	store_bind_text(st, 2, name);
	return agent_update(s, st);
}

/* ---- sessions ---- */

int store_session_add(store *s, const char *agent, const unsigned char token_hash[32], int64_t expires_ms,
		      int64_t now_ms)
{
	sqlite3_stmt *st = store_stmt(s, STMT_SESSION_INSERT,
				      "INSERT INTO sessions (token_hash, agent_id, expires_ms, created_ms)"
				      " SELECT ?, id, ?, ? FROM agents WHERE name = ? AND disabled = 0");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, expires_ms);
	sqlite3_bind_int64(st, 3, now_ms);
	store_bind_text(st, 4, agent);
	int step = sqlite3_step(st);
	int rc = STORE_OK;
	if (step == SQLITE_DONE && sqlite3_changes(s->db) != 1)
		rc = store_failf(s, STORE_ERR_NOTFOUND, "no usable agent");
	else if (step == SQLITE_CONSTRAINT_PRIMARYKEY)
		rc = store_failf(s, STORE_ERR_CONFLICT, "session exists");
	else if (step != SQLITE_DONE)
		rc = store_fail(s, step);
	store_stmt_done(st);
	return rc;
}

int store_session_get(store *s, const unsigned char token_hash[32], int64_t now_ms, char *agent, size_t agentlen)
{
	sqlite3_stmt *st = store_stmt(s, STMT_SESSION_GET,
				      "SELECT a.name FROM sessions x JOIN agents a ON a.id = x.agent_id"
				      " WHERE x.token_hash = ? AND x.expires_ms > ? AND a.disabled = 0");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now_ms);
	int step = sqlite3_step(st);
	int rc = STORE_OK;
	if (step == SQLITE_ROW)
		store_col_copy(st, 0, agent, agentlen);
	else if (step == SQLITE_DONE)
		rc = store_failf(s, STORE_ERR_NOTFOUND, "no such session");
	else
		rc = store_fail(s, step);
	store_stmt_done(st);
	return rc;
}

int store_session_delete(store *s, const unsigned char token_hash[32])
{
	sqlite3_stmt *st = store_stmt(s, STMT_SESSION_DELETE, "DELETE FROM sessions WHERE token_hash = ?");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_TRANSIENT);
	int rc = store_exec_stmt(s, st);
	if (rc == STORE_OK && sqlite3_changes(s->db) == 0)
		rc = store_failf(s, STORE_ERR_NOTFOUND, "no such session");
	return rc;
}

/* ---- audit ---- */

int store_audit_insert(store *s, const char *who, const char *what, const char *object, const char *detail,
		       int64_t now_ms)
{
	sqlite3_stmt *st =
	    store_stmt(s, STMT_AUDIT_INSERT,
		       "INSERT INTO audit (at_ms, who, what, object, detail) VALUES (?, ?, ?, coalesce(?, ''), ?)");
	if (!st)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, now_ms);
	store_bind_text(st, 2, who ? who : "");
	store_bind_text(st, 3, what ? what : "");
	store_bind_text(st, 4, object);
	store_bind_text(st, 5, detail);
	return store_exec_stmt(s, st);
}

int store_audit(store *s, const char *who, const char *what, const char *object, const char *detail, int64_t now_ms)
{
	if (!what || !*what)
		return store_failf(s, STORE_ERR, "audit entry without an action");
	return store_audit_insert(s, who, what, object, detail, now_ms);
}
