/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2ee-error.h"
#include "e2ee-store.h"

struct _E2eeStore {
  char *path;
  sqlite3 *db;
  GHashTable *stmts;            /* SQL text -> sqlite3_stmt* */
  gint64 data_version;
  int opened_version;
  gboolean checkpoint_due;      /* a checkpoint failed: retried after each commit */
};

/* Schema migrations: entry i takes user_version i to i + 1.  Never edit
 * an entry once released; append a new one. */
static const char *const migrations[] = {
  /* 0 -> 1 */
  "CREATE TABLE seal ("
  "  id INTEGER PRIMARY KEY CHECK (id = 1),"
  "  kdf TEXT NOT NULL, t INTEGER NOT NULL, m INTEGER NOT NULL, p INTEGER NOT NULL,"
  "  salt BLOB NOT NULL CHECK (length(salt) = 16),"
  "  check_value BLOB NOT NULL CHECK (length(check_value) = 16));"
  "CREATE TABLE account ("
  "  id INTEGER PRIMARY KEY,"
  "  protocol TEXT NOT NULL, name TEXT NOT NULL,"
  "  x BLOB NOT NULL CHECK (length(x) = 32), y BLOB NOT NULL CHECK (length(y) = 32),"
  "  caps INTEGER NOT NULL,"
  "  d BLOB NOT NULL,"            /* 32 bytes, or sealed (60) when seal has a row */
  "  last_counter INTEGER NOT NULL DEFAULT 0,"
  "  UNIQUE (protocol, name));"
  "CREATE TABLE buddy ("
  "  id INTEGER PRIMARY KEY,"
  "  account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,"
  "  name TEXT NOT NULL,"
  "  policy INTEGER NOT NULL CHECK (policy BETWEEN 0 AND 3),"
  "  key_changed INTEGER NOT NULL CHECK (key_changed IN (0, 1)),"
  "  had_encrypted INTEGER NOT NULL CHECK (had_encrypted IN (0, 1)),"
  "  UNIQUE (account_id, name));"
  "CREATE TABLE device ("
  "  id INTEGER PRIMARY KEY,"
  "  buddy_id INTEGER NOT NULL REFERENCES buddy (id) ON DELETE CASCADE,"
  "  pos INTEGER NOT NULL,"
  "  x BLOB NOT NULL CHECK (length(x) = 32), y BLOB NOT NULL CHECK (length(y) = 32),"
  "  caps INTEGER NOT NULL,"
  "  trust INTEGER NOT NULL CHECK (trust BETWEEN 0 AND 3),"
  "  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
  "  replay_high INTEGER, replay_window INTEGER,"   /* NULL until an envelope is accepted */
  "  keys_local_caps INTEGER, keys_remote_caps INTEGER,"
  "  keys BLOB,"                  /* send || recv (64), or sealed (92) */
  "  UNIQUE (buddy_id, x, y));"
  "CREATE INDEX device_by_buddy ON device (buddy_id, pos);"
  "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
  /* 1 -> 2: own-account devices an import set back to pending, for the
   * host to announce (E2eeAccountRecord.own_reconfirm). */
  "ALTER TABLE account ADD COLUMN own_reconfirm INTEGER NOT NULL DEFAULT 0"
  "  CHECK (own_reconfirm >= 0);",
  /* 2 -> 3: protocol v2 state (e2ee-store-v2.h): OWN rows (name '', ref
   * empty) and PEER rows (buddy name, device thumbprint). */
  "CREATE TABLE v2 ("
  "  account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,"
  "  kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
  "  name TEXT NOT NULL, ref BLOB NOT NULL, value BLOB NOT NULL,"
  "  PRIMARY KEY (account_id, kind, name, ref)) WITHOUT ROWID;",
};

gboolean
e2ee_store_fail (E2eeStore *store, int rc, const char *what, GError **error)
{
  const char *msg = store != NULL && store->db != NULL ? sqlite3_errmsg (store->db)
                                                      : sqlite3_errstr (rc);
  const char *path = store != NULL ? store->path : "";

  switch (rc & 0xff)
    {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_LOCKED,
                   "keyring %s: %s: another program holds the keyring (%s)", path, what, msg);
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
                   "keyring %s is damaged (%s: %s). It was left as it is. To recover: "
                   "quit every program using it, move the file and its -wal and -shm "
                   "files away, then import your last backup with "
                   "\"purple-e2ee keyring import BACKUP\", or start without one (a new "
                   "identity is made, and your buddies must verify you again)",
                   path, what, msg);
      break;
    default:
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                   "keyring %s: %s: %s", path, what, msg);
    }
  return FALSE;
}

static gboolean
perm_error (GError **error, const char *path, const char *what)
{
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS,
               "keyring: %s %s; it must be private to you (chmod 700 the folder, "
               "chmod 600 the files)", path, what);
  return FALSE;
}

/* The folder exists, is ours, a real directory and closed to group and
 * others.  (It is not created here: the host makes it, 0700.) */
static gboolean
check_folder (const char *dir, GError **error)
{
  struct stat st;

  if (lstat (dir, &st) != 0)
    {
      int e = errno;
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                   "keyring: cannot use the folder %s: %s", dir, g_strerror (e));
      return FALSE;
    }
  if (!S_ISDIR (st.st_mode))
    return perm_error (error, dir, "is not a folder");
  if (st.st_uid != geteuid ())
    return perm_error (error, dir, "belongs to another user");
  if ((st.st_mode & 077) != 0)
    return perm_error (error, dir, "may be opened by other users");
  return TRUE;
}

/* @path, if it exists, is a regular file of ours closed to others. */
static gboolean
check_file (const char *path, gboolean *exists, GError **error)
{
  struct stat st;

  *exists = FALSE;
  if (lstat (path, &st) != 0)
    {
      if (errno == ENOENT)
        return TRUE;
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                   "keyring: cannot examine %s: %s", path, g_strerror (errno));
      return FALSE;
    }
  *exists = TRUE;
  if (!S_ISREG (st.st_mode))
    return perm_error (error, path, "is not a regular file");
  if (st.st_uid != geteuid ())
    return perm_error (error, path, "belongs to another user");
  if ((st.st_mode & 077) != 0)
    return perm_error (error, path, "may be read by other users");
  return TRUE;
}

gboolean
e2ee_store_exec (E2eeStore *store, const char *sql, GError **error)
{
  int rc = sqlite3_exec (store->db, sql, NULL, NULL, NULL);

  return rc == SQLITE_OK || e2ee_store_fail (store, rc, "statement", error);
}

/* The one integer (or text, compared to @want) a PRAGMA returns. */
static gboolean
pragma_int (E2eeStore *store, const char *sql, gint64 *out, GError **error)
{
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2 (store->db, sql, -1, &st, NULL);

  if (rc == SQLITE_OK)
    rc = sqlite3_step (st);
  if (rc != SQLITE_ROW)
    {
      sqlite3_finalize (st);
      return e2ee_store_fail (store, rc, sql, error);
    }
  *out = sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  return TRUE;
}

static gboolean
pragma_text (E2eeStore *store, const char *sql, const char *want, GError **error)
{
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2 (store->db, sql, -1, &st, NULL);
  gboolean ok;

  if (rc == SQLITE_OK)
    rc = sqlite3_step (st);
  if (rc != SQLITE_ROW)
    {
      sqlite3_finalize (st);
      return e2ee_store_fail (store, rc, sql, error);
    }
  ok = g_ascii_strcasecmp ((const char *) sqlite3_column_text (st, 0), want) == 0;
  if (!ok)
    {
      if (strcmp (want, "ok") == 0)
        e2ee_store_fail (store, SQLITE_CORRUPT, (const char *) sqlite3_column_text (st, 0),
                         error);
      else
        g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                     "keyring %s: %s gave \"%s\"", store->path, sql,
                     (const char *) sqlite3_column_text (st, 0));
    }
  sqlite3_finalize (st);
  return ok;
}

static gboolean
migrate (E2eeStore *store, GError **error)
{
  gint64 version, app_id;

  if (!pragma_int (store, "PRAGMA application_id", &app_id, error)
      || !pragma_int (store, "PRAGMA user_version", &version, error))
    return FALSE;
  store->opened_version = (int) CLAMP (version, 0, G_MAXINT);
  if (app_id != 0 && app_id != E2EE_STORE_APPLICATION_ID)
    return e2ee_store_fail (store, SQLITE_NOTADB, "not a purple-e2ee keyring", error);
  if (version > E2EE_STORE_SCHEMA_VERSION)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_VERSION,
                   "keyring %s has schema version %" G_GINT64_FORMAT
                   "; this version of purple-e2ee knows up to %d: upgrade it",
                   store->path, version, E2EE_STORE_SCHEMA_VERSION);
      return FALSE;
    }
  if (version == E2EE_STORE_SCHEMA_VERSION)
    return TRUE;
  if (version < 0 || (app_id == 0 && version != 0))
    return e2ee_store_fail (store, SQLITE_NOTADB, "not a purple-e2ee keyring", error);

  if (!e2ee_store_begin (store, error))
    return FALSE;
  /* Another process may have migrated while we waited for the lock. */
  if (!pragma_int (store, "PRAGMA user_version", &version, error))
    goto fail;
  for (; version < E2EE_STORE_SCHEMA_VERSION; version++)
    {
      g_autofree char *set = g_strdup_printf ("PRAGMA user_version = %" G_GINT64_FORMAT,
                                              version + 1);
      if (!e2ee_store_exec (store, migrations[version], error)
          || !e2ee_store_exec (store, set, error))
        goto fail;
    }
  {
    g_autofree char *set = g_strdup_printf ("PRAGMA application_id = %d",
                                            E2EE_STORE_APPLICATION_ID);
    if (!e2ee_store_exec (store, set, error))
      goto fail;
  }
  return e2ee_store_commit (store, error);

fail:
  e2ee_store_rollback (store);
  return FALSE;
}

static void
finalize_stmt (gpointer st)
{
  sqlite3_finalize (st);
}

E2eeStore *
e2ee_store_open (const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (path, "-shm", NULL);
  E2eeStore *store;
  gboolean exists, wal_exists, shm_exists;
  gint64 v;
  int rc;

  if (!check_folder (dir, error) || !check_file (path, &exists, error)
      || !check_file (wal, &wal_exists, error) || !check_file (shm, &shm_exists, error))
    return NULL;
  if (!exists)
    {
      /* Created 0600 here so SQLite gives the -wal and -shm files the
       * same mode, whatever the umask. */
      int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0 && errno != EEXIST)
        {
          int e = errno;
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                       "keyring: cannot create %s: %s", path, g_strerror (e));
          return NULL;
        }
      if (fd >= 0)
        close (fd);
    }

  store = g_new0 (E2eeStore, 1);
  store->path = g_strdup (path);
  store->stmts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        finalize_stmt);
  rc = sqlite3_open_v2 (path, &store->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
                        NULL);
  if (rc != SQLITE_OK)
    {
      e2ee_store_fail (store, rc, "open", error);
      goto fail;
    }
  sqlite3_extended_result_codes (store->db, 0);
  sqlite3_busy_timeout (store->db, E2EE_STORE_BUSY_TIMEOUT_MS);
  if (!pragma_text (store, "PRAGMA journal_mode = WAL", "wal", error)
      || !e2ee_store_exec (store, "PRAGMA synchronous = FULL;"
                                  "PRAGMA foreign_keys = ON;"
                                  "PRAGMA secure_delete = ON;"
                                  "PRAGMA trusted_schema = OFF;", error)
      || !pragma_text (store, "PRAGMA quick_check", "ok", error)
      || !migrate (store, error)
      || !pragma_int (store, "PRAGMA foreign_keys", &v, error))
    goto fail;
  if (v != 1)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                   "keyring: this SQLite cannot enforce foreign keys");
      goto fail;
    }
  if (!pragma_int (store, "PRAGMA data_version", &store->data_version, error))
    goto fail;
  /* The -wal and -shm files now exist: check what SQLite made. */
  if (!check_file (wal, &wal_exists, error) || !check_file (shm, &shm_exists, error))
    goto fail;
  return store;

fail:
  e2ee_store_close (store);
  return NULL;
}

void
e2ee_store_close (E2eeStore *store)
{
  if (store == NULL)
    return;
  if (store->checkpoint_due)
    e2ee_store_retry_checkpoint (store);
  g_hash_table_destroy (store->stmts);
  if (store->db != NULL)
    sqlite3_close (store->db);
  g_free (store->path);
  g_free (store);
}

const char *
e2ee_store_get_path (const E2eeStore *store)
{
  return store->path;
}

sqlite3 *
e2ee_store_get_db (E2eeStore *store)
{
  return store->db;
}

int
e2ee_store_get_opened_version (const E2eeStore *store)
{
  return store->opened_version;
}

sqlite3_stmt *
e2ee_store_prepare (E2eeStore *store, const char *sql, GError **error)
{
  sqlite3_stmt *st = g_hash_table_lookup (store->stmts, sql);
  int rc;

  if (st != NULL)
    {
      sqlite3_reset (st);
      sqlite3_clear_bindings (st);
      return st;
    }
  rc = sqlite3_prepare_v3 (store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
  if (rc != SQLITE_OK)
    {
      e2ee_store_fail (store, rc, "prepare", error);
      return NULL;
    }
  g_hash_table_insert (store->stmts, g_strdup (sql), st);
  return st;
}

gboolean
e2ee_store_begin (E2eeStore *store, GError **error)
{
  return e2ee_store_exec (store, "BEGIN IMMEDIATE", error);
}

gboolean
e2ee_store_commit (E2eeStore *store, GError **error)
{
  int rc = sqlite3_exec (store->db, "COMMIT", NULL, NULL, NULL);

  if (rc == SQLITE_OK)
    {
      if (store->checkpoint_due)
        e2ee_store_retry_checkpoint (store);
      return TRUE;
    }
  e2ee_store_fail (store, rc, "commit", error);
  e2ee_store_rollback (store);
  return FALSE;
}

void
e2ee_store_rollback (E2eeStore *store)
{
  if (!sqlite3_get_autocommit (store->db))
    sqlite3_exec (store->db, "ROLLBACK", NULL, NULL, NULL);
}

gboolean
e2ee_store_in_transaction (E2eeStore *store)
{
  return !sqlite3_get_autocommit (store->db);
}

gboolean
e2ee_store_changed_elsewhere (E2eeStore *store)
{
  gint64 v;

  if (!pragma_int (store, "PRAGMA data_version", &v, NULL))
    return TRUE;                /* cannot tell: read again */
  if (v == store->data_version)
    return FALSE;
  store->data_version = v;
  return TRUE;
}

gboolean
e2ee_store_checkpoint (E2eeStore *store, GError **error)
{
  int rc = sqlite3_wal_checkpoint_v2 (store->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

  store->checkpoint_due = rc != SQLITE_OK;
  return rc == SQLITE_OK || e2ee_store_fail (store, rc, "checkpoint", error);
}

gboolean
e2ee_store_retry_checkpoint (E2eeStore *store)
{
  gboolean ok;

  /* Without waiting: a reader elsewhere only delays it to a later commit. */
  sqlite3_busy_timeout (store->db, 0);
  ok = e2ee_store_checkpoint (store, NULL);
  sqlite3_busy_timeout (store->db, E2EE_STORE_BUSY_TIMEOUT_MS);
  return ok;
}

gboolean
e2ee_store_checkpoint_due (const E2eeStore *store)
{
  return store->checkpoint_due;
}
