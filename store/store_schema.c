/* store_schema: the schema, as a list of forward-only migrations keyed by
 * PRAGMA user_version, and the code that applies them.
 *
 * store_migrations[i] turns version i into version i + 1. Each step runs in its
 * own BEGIN IMMEDIATE transaction together with the user_version bump, so a
 * crash leaves the file at the old or the new version, never in between, and two
 * processes opening an old file at once migrate it once. A migration, once
 * shipped, is never edited: change the schema by appending a step.
 * docs/store.md explains every table and index. */
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

/* v1: the base schema. */
static const char v1_sql[] =
    "CREATE TABLE contacts ("
    " id INTEGER PRIMARY KEY,"
    " channel TEXT NOT NULL,"
    " address TEXT NOT NULL,"
    " display_name TEXT NOT NULL DEFAULT '',"
    " lang TEXT NOT NULL DEFAULT '',"
    " opted_out INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " UNIQUE (channel, address));"
    "CREATE TABLE conversations ("
    " id INTEGER PRIMARY KEY,"
    " contact_id INTEGER NOT NULL REFERENCES contacts(id),"
    " state TEXT NOT NULL DEFAULT 'bot' CHECK (state IN ('bot', 'queued', 'assigned', 'closed')),"
    " context TEXT NOT NULL DEFAULT '',"
    " fallbacks INTEGER NOT NULL DEFAULT 0,"
    " menu TEXT NOT NULL DEFAULT '',"
    " agent TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL,"
    " last_inbound_ms INTEGER NOT NULL DEFAULT 0,"
    " escalated_ms INTEGER NOT NULL DEFAULT 0,"
    " claimed_ms INTEGER NOT NULL DEFAULT 0,"
    " rate_window_ms INTEGER NOT NULL DEFAULT 0,"
    " rate_count INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX conversations_open ON conversations(contact_id) WHERE state <> 'closed';"
    "CREATE INDEX conversations_queue ON conversations(state, escalated_ms);"
    "CREATE TABLE messages ("
    " id INTEGER PRIMARY KEY,"
    " conversation_id INTEGER NOT NULL REFERENCES conversations(id),"
    " direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),"
    " channel TEXT NOT NULL,"
    " provider_id TEXT,"
    " author TEXT NOT NULL DEFAULT '',"
    " kind TEXT NOT NULL DEFAULT 'text',"
    " text TEXT,"
    " payload TEXT,"
    " button TEXT,"
    " media_id TEXT,"
    " media_type TEXT,"
    " intent TEXT,"
    " fallback INTEGER NOT NULL DEFAULT 0,"
    " actions TEXT,"
    " status TEXT NOT NULL,"
    " error TEXT,"
    " at_ms INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX messages_provider ON messages(direction, channel, provider_id);"
    "CREATE INDEX messages_conv ON messages(conversation_id, id);"
    "CREATE INDEX messages_at ON messages(at_ms);"
    "CREATE TABLE outbox ("
    " message_id INTEGER PRIMARY KEY REFERENCES messages(id),"
    " conversation_id INTEGER NOT NULL REFERENCES conversations(id),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_ms INTEGER NOT NULL,"
    " lease_until_ms INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " dead INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX outbox_due ON outbox(dead, next_attempt_ms);"
    "CREATE INDEX outbox_conv ON outbox(conversation_id, dead, message_id);"
    "CREATE TABLE agents ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK (role IN ('agent', 'admin')),"
    " pwhash TEXT NOT NULL,"
    " disabled INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE sessions ("
    " token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),"
    " agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    " expires_ms INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY,"
    " at_ms INTEGER NOT NULL,"
    " who TEXT NOT NULL,"
    " what TEXT NOT NULL,"
    " object TEXT NOT NULL DEFAULT '',"
    " detail TEXT);"
    "CREATE INDEX audit_at ON audit(at_ms);";

/* v2: delivery-status history and satisfaction ratings. Every outbound message
 * already there gets one history row with its current status. */
static const char v2_sql[] = "CREATE TABLE message_status ("
			     " id INTEGER PRIMARY KEY,"
			     " message_id INTEGER NOT NULL REFERENCES messages(id),"
			     " status TEXT NOT NULL,"
			     " error TEXT,"
			     " at_ms INTEGER NOT NULL);"
			     "CREATE INDEX message_status_msg ON message_status(message_id, id);"
			     "INSERT INTO message_status (message_id, status, error, at_ms)"
			     " SELECT id, status, error, at_ms FROM messages WHERE direction = 'out' ORDER BY id;"
			     "CREATE TABLE ratings ("
			     " id INTEGER PRIMARY KEY,"
			     " conversation_id INTEGER NOT NULL REFERENCES conversations(id),"
			     " rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),"
			     " at_ms INTEGER NOT NULL);"
			     "CREATE INDEX ratings_at ON ratings(at_ms);";

/* v3: one row per escalation, so stats count every escalation and its wait
 * even when a conversation escalates twice. Conversations waiting or assigned
 * now get their row. */
static const char v3_sql[] = "CREATE TABLE escalations ("
			     " id INTEGER PRIMARY KEY,"
			     " conversation_id INTEGER NOT NULL REFERENCES conversations(id),"
			     " escalated_ms INTEGER NOT NULL,"
			     " claimed_ms INTEGER NOT NULL DEFAULT 0,"
			     " agent TEXT NOT NULL DEFAULT '');"
			     "CREATE INDEX escalations_at ON escalations(escalated_ms);"
			     "CREATE INDEX escalations_open ON escalations(conversation_id) WHERE claimed_ms = 0;"
			     "INSERT INTO escalations (conversation_id, escalated_ms, claimed_ms, agent)"
			     " SELECT id, escalated_ms, claimed_ms, agent FROM conversations"
			     " WHERE state IN ('queued', 'assigned') AND escalated_ms > 0 ORDER BY id;";

/* v4: the provider-id index holds only rows that have a provider id. Outbound
 * messages get theirs when sent, so until then (and for ever when sandboxed
 * or pushed by the web chat) they cost no index entry at insert. The lookups
 * (duplicate check, status callbacks) all say provider_id = ?, which implies
 * NOT NULL, so SQLite still uses it; the uniqueness is the same (NULLs never
 * collided). */
static const char v4_sql[] = "DROP INDEX messages_provider;"
			     "CREATE UNIQUE INDEX messages_provider ON messages(direction, channel, provider_id)"
			     " WHERE provider_id IS NOT NULL;";

/* v5: provider ids are looked up within a contact. Every message carries its
 * contact (the conversation's, which never changes), and the provider-id index
 * leads with it: an inbound repeat is (contact, 'in', id), a status callback
 * names its recipient, so it is (contact, 'out', id). Keyed by the provider's
 * id alone, the index took one write at a random place per message and per
 * reply sent (Meta's ids are random); keyed by contact, a citizen's messages
 * share a page, and new citizens' entries are appended. Uniqueness is now per
 * contact, which implies the channel. */
static const char v5_sql[] =
    "ALTER TABLE messages ADD COLUMN contact_id INTEGER REFERENCES contacts(id);"
    "UPDATE messages SET contact_id = (SELECT c.contact_id FROM conversations c WHERE c.id = messages.conversation_id);"
    "DROP INDEX messages_provider;"
    "CREATE UNIQUE INDEX messages_provider ON messages(contact_id, direction, provider_id)"
    " WHERE provider_id IS NOT NULL;";

const char *const store_migrations[] = {v1_sql, v2_sql, v3_sql, v4_sql, v5_sql};
const int store_migrations_n = (int)(sizeof store_migrations / sizeof store_migrations[0]);

int store_schema_latest(void)
{
	return store_migrations_n;
}

static int user_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*v = sqlite3_column_int(st, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

int store_migrate(sqlite3 *db, char *err, size_t errlen)
{
	int v = 0;
	if (user_version(db, &v) != SQLITE_OK) {
		snprintf(err, errlen, "reading the schema version: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (v > store_migrations_n) {
		snprintf(err, errlen, "the database has schema version %d, newer than this loket's %d", v,
			 store_migrations_n);
		return -1;
	}
	while (v < store_migrations_n) {
		char bump[64];
		int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "migrating: %s", sqlite3_errmsg(db));
			return -1;
		}
		/* Another process may have migrated while we waited for the lock. */
		if (user_version(db, &v) != SQLITE_OK)
			goto fail;
		if (v >= store_migrations_n) {
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
			break;
		}
		snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(db, store_migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, bump, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto fail;
		v++;
		continue;
fail:
		snprintf(err, errlen, "migrating to schema version %d: %s", v + 1, sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}
