/* purple-e2ee — the keyring database (SQLite): opening with the settings
 * every connection needs, schema migrations and transactions.  Tables in
 * docs/PROTOCOL.md §9.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

/* PRAGMA user_version of the newest schema this code knows. */
#define E2EE_STORE_SCHEMA_VERSION 3
/* PRAGMA application_id: 'E2EK'. */
#define E2EE_STORE_APPLICATION_ID 0x4532454b
/* How long a statement waits for another process's write lock before
 * failing with E2EE_ERROR_KEYRING_LOCKED. */
#define E2EE_STORE_BUSY_TIMEOUT_MS 5000

typedef struct _E2eeStore E2eeStore;

/* Opens (creating if missing) the database at @path, in an existing
 * folder (else E2EE_ERROR_KEYRING_IO); a folder or file (database, -wal, -shm) that
 * group or others may access, or a symlink, is refused with
 * E2EE_ERROR_KEYRING_PERMISSIONS.  The connection runs in WAL mode with
 * synchronous=FULL, foreign keys, secure_delete and a busy timeout.  A
 * file that is not a sound keyring database is E2EE_ERROR_KEYRING_CORRUPT
 * (left as it is; the message says how to recover); a newer schema is
 * E2EE_ERROR_KEYRING_VERSION.  Older schemas are migrated in one
 * transaction. */
E2eeStore *e2ee_store_open (const char *path, GError **error);
void e2ee_store_close (E2eeStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeStore, e2ee_store_close)

const char *e2ee_store_get_path (const E2eeStore *store);
sqlite3 *e2ee_store_get_db (E2eeStore *store);
/* The schema version the file had when opened (0 = new file). */
int e2ee_store_get_opened_version (const E2eeStore *store);

/* A cached prepared statement, reset and with its bindings cleared. */
sqlite3_stmt *e2ee_store_prepare (E2eeStore *store, const char *sql, GError **error);
/* Runs SQL without results. */
gboolean e2ee_store_exec (E2eeStore *store, const char *sql, GError **error);

/* BEGIN IMMEDIATE (takes the write lock now, waiting up to the busy
 * timeout) / COMMIT (durable when it returns) / ROLLBACK. */
gboolean e2ee_store_begin (E2eeStore *store, GError **error);
gboolean e2ee_store_commit (E2eeStore *store, GError **error);
void e2ee_store_rollback (E2eeStore *store);
gboolean e2ee_store_in_transaction (E2eeStore *store);

/* TRUE once after another connection (another process) has committed a
 * change since the last call: cached rows must be read again. */
gboolean e2ee_store_changed_elsewhere (E2eeStore *store);

/* Empties the WAL into the database and truncates it, so no old page
 * (for example one with a secret now sealed) stays in the -wal file.
 * While another connection reads an older snapshot it fails (busy); the
 * store then retries, without waiting, after each of its commits and when
 * it is closed, until one succeeds. */
gboolean e2ee_store_checkpoint (E2eeStore *store, GError **error);
/* One attempt without waiting for readers (TRUE when the WAL is empty). */
gboolean e2ee_store_retry_checkpoint (E2eeStore *store);
/* TRUE while a failed checkpoint has not been retried successfully. */
gboolean e2ee_store_checkpoint_due (const E2eeStore *store);

/* Sets @error from the connection's last error (code chosen from the
 * SQLite result: busy -> LOCKED, corrupt -> CORRUPT, other -> IO). */
gboolean e2ee_store_fail (E2eeStore *store, int rc, const char *what, GError **error);

G_END_DECLS
