/* Tests for the keyring database: src/e2ee-store.c, src/e2ee-store-records.c,
 * src/e2ee-seal.c, on real SQLite files in a temporary folder.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-store-records.h"
#include "e2ee-test-util.h"
#include "e2ee-wipe.h"

static E2eeKey *ident[2];
static E2eeKey *devkeys[4];

typedef struct {
  char *dir;     /* 0700 folder */
  char *path;    /* dir/keyring.sqlite */
} Fx;

static void
fx_setup (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  char *base = g_dir_make_tmp ("e2ee-store-XXXXXX", &error);

  g_assert_no_error (error);
  f->dir = g_build_filename (base, "purple-e2ee", NULL);
  f->path = g_build_filename (f->dir, "keyring.sqlite", NULL);
  g_assert_cmpint (g_mkdir_with_parents (f->dir, 0700), ==, 0);
  g_free (base);
}

static void
fx_teardown (Fx *f, gconstpointer data)
{
  g_autofree char *cmd = NULL;
  g_autofree char *base = g_path_get_dirname (f->dir);

  cmd = g_strdup_printf ("rm -rf '%s'", base);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->dir);
  g_free (f->path);
}

/* In a forked child before _exit: the shared keys go too. */
static void
fx_teardown_child_keys (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (ident); i++)
    e2ee_key_unref (ident[i]);
  for (guint i = 0; i < G_N_ELEMENTS (devkeys); i++)
    e2ee_key_unref (devkeys[i]);
}

static E2eeStore *
open_ok (const char *path)
{
  GError *error = NULL;
  E2eeStore *store = e2ee_store_open (path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (store);
  return store;
}

static E2eeAccountRecord *
make_account (guint i)
{
  return e2ee_account_record_new (i == 0 ? "prpl-jabber" : "prpl-irc",
                                  i == 0 ? "alice@example.org" : "alice", ident[i]);
}

static E2eeBuddyRecord *
make_buddy (E2eeAccountRecord *account, const char *name, guint ndev)
{
  E2eeBuddyRecord *b = e2ee_account_ensure_buddy (account, name);

  b->policy = E2EE_POLICY_REQUIRED;
  b->had_encrypted = TRUE;
  for (guint i = 0; i < ndev; i++)
    {
      E2eeDeviceRecord *d = e2ee_device_record_new (devkeys[i], (E2eeTrust) (i % 4), 1000 + i);
      d->last_seen = 2000 + i;
      if (i % 2 == 0)
        {
          d->replay_init = TRUE;
          d->replay_high = G_GUINT64_CONSTANT (0xffffffffff) - i;
          d->replay_window = G_GUINT64_CONSTANT (0x8000000000000001) | i;
        }
      if (i == 0)
        {
          d->have_keys = TRUE;
          d->keys_local_caps = 1;
          d->keys_remote_caps = 1;
          memset (d->k_send, 0xA5, sizeof d->k_send);
          memset (d->k_recv, 0x5A, sizeof d->k_recv);
        }
      g_ptr_array_add (b->devices, d);
    }
  return b;
}

static void
assert_buddy_equal (const E2eeBuddyRecord *a, const E2eeBuddyRecord *b)
{
  g_assert_cmpstr (a->name, ==, b->name);
  g_assert_cmpint (a->policy, ==, b->policy);
  g_assert_cmpint (a->key_changed, ==, b->key_changed);
  g_assert_cmpint (a->had_encrypted, ==, b->had_encrypted);
  g_assert_cmpuint (a->devices->len, ==, b->devices->len);
  for (guint i = 0; i < a->devices->len; i++)
    {
      const E2eeDeviceRecord *x = a->devices->pdata[i], *y = b->devices->pdata[i];
      g_assert_true (e2ee_key_equal (x->key, y->key));
      g_assert_cmpint (e2ee_key_get_caps (x->key), ==, e2ee_key_get_caps (y->key));
      g_assert_cmpint (x->trust, ==, y->trust);
      g_assert_cmpint (x->first_seen, ==, y->first_seen);
      g_assert_cmpint (x->last_seen, ==, y->last_seen);
      g_assert_cmpint (x->replay_init, ==, y->replay_init);
      g_assert_cmphex (x->replay_high, ==, y->replay_high);
      g_assert_cmphex (x->replay_window, ==, y->replay_window);
      g_assert_cmpint (x->have_keys, ==, y->have_keys);
      if (x->have_keys)
        {
          g_assert_cmpmem (x->k_send, 32, y->k_send, 32);
          g_assert_cmpmem (x->k_recv, 32, y->k_recv, 32);
          g_assert_cmpint (x->keys_local_caps, ==, y->keys_local_caps);
          g_assert_cmpint (x->keys_remote_caps, ==, y->keys_remote_caps);
        }
    }
}

static gint64
pragma (E2eeStore *store, const char *sql)
{
  sqlite3_stmt *st = NULL;
  gint64 v;

  g_assert_cmpint (sqlite3_prepare_v2 (e2ee_store_get_db (store), sql, -1, &st, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  v = sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  return v;
}

static void
test_settings (Fx *f, gconstpointer data)
{
  g_autoptr (E2eeStore) store = open_ok (f->path);
  sqlite3_stmt *st = NULL;

  g_assert_cmpint (pragma (store, "PRAGMA foreign_keys"), ==, 1);
  g_assert_cmpint (pragma (store, "PRAGMA secure_delete"), ==, 1);
  g_assert_cmpint (pragma (store, "PRAGMA synchronous"), ==, 2);   /* FULL */
  g_assert_cmpint (pragma (store, "PRAGMA busy_timeout"), ==, E2EE_STORE_BUSY_TIMEOUT_MS);
  g_assert_cmpint (pragma (store, "PRAGMA user_version"), ==, E2EE_STORE_SCHEMA_VERSION);
  g_assert_cmpint (pragma (store, "PRAGMA application_id"), ==, E2EE_STORE_APPLICATION_ID);
  g_assert_cmpint (e2ee_store_get_opened_version (store), ==, 0);
  sqlite3_prepare_v2 (e2ee_store_get_db (store), "PRAGMA journal_mode", -1, &st, NULL);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  g_assert_cmpstr ((const char *) sqlite3_column_text (st, 0), ==, "wal");
  sqlite3_finalize (st);
  /* A device of an unknown buddy is refused by the foreign key. */
  g_assert_false (e2ee_store_exec (store, "INSERT INTO device (buddy_id, pos, x, y, caps, trust,"
                                   " first_seen, last_seen) VALUES (99, 0, zeroblob(32),"
                                   " zeroblob(32), 1, 0, 0, 0)", NULL));
  e2ee_store_close (g_steal_pointer (&store));
  store = open_ok (f->path);
  g_assert_cmpint (e2ee_store_get_opened_version (store), ==, E2EE_STORE_SCHEMA_VERSION);
}

static void
assert_mode (const char *path, guint mode)
{
  struct stat st;

  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 0777, ==, mode);
}

static void
test_permissions (Fx *f, gconstpointer data)
{
  g_autofree char *wal = g_strconcat (f->path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (f->path, "-shm", NULL);
  g_autofree char *link = g_build_filename (f->dir, "link.sqlite", NULL);
  GError *error = NULL;
  mode_t old = umask (0);       /* the worst umask: files must still be private */
  E2eeStore *store = open_ok (f->path);
  g_autoptr (E2eeAccountRecord) account = make_account (0);

  g_assert_true (e2ee_records_put_account (store, NULL, account, &error));
  g_assert_no_error (error);
  assert_mode (f->dir, 0700);
  assert_mode (f->path, 0600);
  assert_mode (wal, 0600);
  assert_mode (shm, 0600);
  e2ee_store_close (store);
  umask (old);

  /* A file others can read is refused, and not changed. */
  g_assert_cmpint (chmod (f->path, 0644), ==, 0);
  g_assert_null (e2ee_store_open (f->path, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS);
  g_clear_error (&error);
  assert_mode (f->path, 0644);
  g_assert_cmpint (chmod (f->path, 0600), ==, 0);
  /* Likewise a readable WAL, and an open folder. */
  /* (the WAL went with the last connection: put a stray one there) */
  g_assert_true (g_file_set_contents (wal, "", 0, NULL));
  g_assert_cmpint (chmod (wal, 0640), ==, 0);
  g_assert_null (e2ee_store_open (f->path, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS);
  g_clear_error (&error);
  g_assert_cmpint (unlink (wal), ==, 0);
  g_assert_cmpint (chmod (f->dir, 0755), ==, 0);
  g_assert_null (e2ee_store_open (f->path, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS);
  g_clear_error (&error);
  g_assert_cmpint (chmod (f->dir, 0700), ==, 0);
  /* A symlink in place of the database is refused. */
  /* A missing folder is not made here. */
  {
    g_autofree char *deep = g_build_filename (f->dir, "missing", "keyring.sqlite", NULL);
    g_assert_null (e2ee_store_open (deep, &error));
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO);
    g_clear_error (&error);
  }
  g_assert_cmpint (symlink (f->path, link), ==, 0);
  g_assert_null (e2ee_store_open (link, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS);
  g_clear_error (&error);
  store = open_ok (f->path);
  e2ee_store_close (store);
}

static void
test_corrupt (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  g_autofree char *before = NULL, *after = NULL;
  gsize len_before = 0, len_after = 0;
  E2eeStore *store;
  int fd;

  /* Not a database at all. */
  g_assert_true (g_file_set_contents (f->path, "{\"format\":\"purple-e2ee-keyring\"} and more "
                                      "text that is not SQLite at all, long enough for a header",
                                      -1, NULL));
  g_assert_cmpint (chmod (f->path, 0600), ==, 0);
  g_assert_true (g_file_get_contents (f->path, &before, &len_before, NULL));
  g_assert_null (e2ee_store_open (f->path, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  /* The message tells what to do. */
  g_assert_nonnull (strstr (error->message, "purple-e2ee keyring import"));
  g_assert_nonnull (strstr (error->message, "-wal"));
  g_clear_error (&error);
  g_assert_true (g_file_get_contents (f->path, &after, &len_after, NULL));
  g_assert_cmpmem (before, len_before, after, len_after);
  unlink (f->path);

  /* A real keyring whose pages were damaged. */
  store = open_ok (f->path);
  {
    g_autoptr (E2eeAccountRecord) account = make_account (0);
    char name[32];
    g_assert_true (e2ee_records_put_account (store, NULL, account, NULL));
    for (int i = 0; i < 200; i++)
      {
        g_snprintf (name, sizeof name, "buddy%03d", i);
        g_assert_true (e2ee_records_put_buddy (store, NULL, account,
                                               make_buddy (account, name, 2), NULL));
      }
    g_assert_true (e2ee_store_checkpoint (store, NULL));
  }
  e2ee_store_close (store);
  fd = open (f->path, O_WRONLY);
  g_assert_cmpint (fd, >=, 0);
  {
    char junk[4096];
    memset (junk, 0x5c, sizeof junk);
    g_assert_cmpint (pwrite (fd, junk, sizeof junk, 4096 * 3), ==, sizeof junk);
  }
  close (fd);
  store = e2ee_store_open (f->path, &error);
  if (store != NULL)
    {
      /* quick_check may miss a damaged leaf: reading it must fail then. */
      g_autoptr (GPtrArray) accounts = e2ee_records_load_accounts (store, NULL, TRUE, &error);
      g_assert_null (accounts);
      e2ee_store_close (store);
    }
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
}

static void
test_newer_schema (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeStore *store = open_ok (f->path);

  g_assert_true (e2ee_store_exec (store, "PRAGMA user_version = 99", NULL));
  e2ee_store_close (store);
  g_assert_null (e2ee_store_open (f->path, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_VERSION);
  g_clear_error (&error);
}

/* A schema 1 database (before own_reconfirm) is migrated and keeps its rows. */
static void
test_migrate_1 (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeStore *store = open_ok (f->path);
  g_autoptr (E2eeAccountRecord) a0 = make_account (0);

  g_assert_true (e2ee_records_put_account (store, NULL, a0, &error));
  g_assert_true (e2ee_store_exec (store, "ALTER TABLE account DROP COLUMN own_reconfirm;"
                                  "DROP TABLE v2; PRAGMA user_version = 1", &error));
  g_assert_no_error (error);
  e2ee_store_close (store);
  store = open_ok (f->path);
  g_assert_cmpint (e2ee_store_get_opened_version (store), ==, 1);
  g_assert_cmpint (pragma (store, "PRAGMA user_version"), ==, E2EE_STORE_SCHEMA_VERSION);
  {
    g_autoptr (GPtrArray) l = e2ee_records_load_accounts (store, NULL, FALSE, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (l->len, ==, 1);
    g_assert_true (e2ee_key_equal (((E2eeAccountRecord *) l->pdata[0])->identity, ident[0]));
    g_assert_cmpuint (((E2eeAccountRecord *) l->pdata[0])->own_reconfirm, ==, 0);
  }
  e2ee_store_close (store);
}

static void
test_round_trip (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeStore *store = open_ok (f->path);
  g_autoptr (E2eeAccountRecord) a0 = make_account (0);
  g_autoptr (E2eeAccountRecord) a1 = make_account (1);
  g_autoptr (GPtrArray) loaded = NULL;
  E2eeBuddyRecord *bob, *carol, *got;

  a0->last_counter = G_GUINT64_CONSTANT (0xfffffffffe);
  g_assert_true (e2ee_records_put_account (store, NULL, a0, &error));
  g_assert_true (e2ee_records_put_account (store, NULL, a1, &error));
  bob = make_buddy (a0, "bob@example.org", 4);
  bob->key_changed = TRUE;
  carol = make_buddy (a0, "c\xc3\xa1rol", 1);
  g_assert_true (e2ee_records_put_buddy (store, NULL, a0, bob, &error));
  g_assert_true (e2ee_records_put_buddy (store, NULL, a0, carol, &error));
  g_assert_no_error (error);
  e2ee_store_close (store);

  store = open_ok (f->path);
  loaded = e2ee_records_load_accounts (store, NULL, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (loaded->len, ==, 2);
  {
    E2eeAccountRecord *l0 = loaded->pdata[0];
    g_assert_cmpstr (l0->protocol, ==, "prpl-jabber");
    g_assert_true (e2ee_key_has_private (l0->identity));
    g_assert_true (e2ee_key_equal (l0->identity, ident[0]));
    g_assert_cmphex (l0->last_counter, ==, a0->last_counter);
    g_assert_cmpuint (g_hash_table_size (l0->buddies), ==, 2);
    assert_buddy_equal (g_hash_table_lookup (l0->buddies, "bob@example.org"), bob);
    assert_buddy_equal (g_hash_table_lookup (l0->buddies, "c\xc3\xa1rol"), carol);
    g_assert_cmpuint (g_hash_table_size (((E2eeAccountRecord *) loaded->pdata[1])->buddies), ==, 0);
  }

  /* One buddy at a time; removing a device, reordering, deleting. */
  g_ptr_array_remove_index (bob->devices, 1);
  g_ptr_array_add (bob->devices, g_ptr_array_steal_index (bob->devices, 0));
  ((E2eeDeviceRecord *) bob->devices->pdata[0])->trust = E2EE_TRUST_REJECTED;
  g_assert_true (e2ee_records_put_buddy (store, NULL, a0, bob, &error));
  got = e2ee_records_load_buddy (store, NULL, a0, "bob@example.org", &error);
  g_assert_no_error (error);
  assert_buddy_equal (got, bob);
  e2ee_records_buddy_free (got);
  /* One device row. */
  ((E2eeDeviceRecord *) bob->devices->pdata[1])->replay_init = TRUE;
  ((E2eeDeviceRecord *) bob->devices->pdata[1])->replay_high = 77;
  g_assert_true (e2ee_records_put_device (store, NULL, a0, bob, bob->devices->pdata[1], &error));
  a0->last_counter = 5;
  g_assert_true (e2ee_records_put_counter (store, a0, &error));
  got = e2ee_records_load_buddy (store, NULL, a0, "bob@example.org", &error);
  assert_buddy_equal (got, bob);
  e2ee_records_buddy_free (got);
  g_assert_true (e2ee_records_delete_buddy (store, a0, "bob@example.org", &error));
  g_assert_null (e2ee_records_load_buddy (store, NULL, a0, "bob@example.org", &error));
  g_assert_no_error (error);
  g_assert_cmpint (pragma (store, "SELECT count(*) FROM device"), ==, 1);  /* carol's */
  g_assert_cmpint (pragma (store, "SELECT last_counter FROM account WHERE name = 'alice@example.org'"),
                   ==, 5);
  e2ee_store_close (store);
}

/* Bytes @needle anywhere in the database, WAL or shm file. */
static gboolean
files_contain (const char *path, const guint8 *needle, gsize len)
{
  const char *suffix[] = { "", "-wal", "-shm" };

  for (guint i = 0; i < G_N_ELEMENTS (suffix); i++)
    {
      g_autofree char *p = g_strconcat (path, suffix[i], NULL);
      g_autofree char *data = NULL;
      gsize n = 0;

      if (!g_file_get_contents (p, &data, &n, NULL))
        continue;
      if (n >= len && memmem (data, n, needle, len) != NULL)
        return TRUE;
    }
  return FALSE;
}

static void
test_sealed (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeStore *store = open_ok (f->path);
  g_autoptr (E2eeAccountRecord) a0 = make_account (0);
  g_autoptr (E2eeAccountRecord) a1 = make_account (1);
  g_autoptr (E2eeSeal) seal = NULL;
  E2eeSeal *again = NULL;
  guint8 d0[32], sendkey[32];
  gboolean prot;

  memset (sendkey, 0xA5, sizeof sendkey);
  g_assert_true (e2ee_records_key_scalar (ident[0], d0, NULL));
  g_assert_true (e2ee_records_put_account (store, NULL, a0, &error));
  g_assert_true (e2ee_records_put_account (store, NULL, a1, &error));
  g_assert_true (e2ee_records_put_buddy (store, NULL, a0, make_buddy (a0, "bob", 2), &error));
  g_assert_no_error (error);
  g_assert_true (files_contain (f->path, d0, sizeof d0));   /* the test can see it */

  /* Protecting leaves no clear copy in any file. */
  seal = e2ee_seal_new ("correct horse", &error);
  g_assert_no_error (error);
  g_assert_false (e2ee_seal_is_weak (seal));
  g_assert_true (e2ee_records_reseal (store, NULL, seal, &error));
  g_assert_no_error (error);
  g_assert_false (files_contain (f->path, d0, sizeof d0));
  g_assert_false (files_contain (f->path, sendkey, sizeof sendkey));
  e2ee_store_close (store);

  store = open_ok (f->path);
  g_assert_true (e2ee_records_get_seal (store, &prot, NULL, &error));
  g_assert_true (prot);
  /* Without or with a wrong passphrase nothing opens. */
  g_assert_null (e2ee_records_load_accounts (store, NULL, FALSE, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  g_assert_false (e2ee_records_unlock (store, "wrong horse", &again, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
  g_clear_error (&error);
  g_assert_true (e2ee_records_unlock (store, "correct horse", &again, &error));
  g_assert_no_error (error);
  {
    g_autoptr (GPtrArray) l = e2ee_records_load_accounts (store, again, TRUE, &error);
    E2eeBuddyRecord *bob;
    g_assert_no_error (error);
    g_assert_true (e2ee_key_equal (((E2eeAccountRecord *) l->pdata[0])->identity, ident[0]));
    g_assert_true (e2ee_key_has_private (((E2eeAccountRecord *) l->pdata[1])->identity));
    bob = g_hash_table_lookup (((E2eeAccountRecord *) l->pdata[0])->buddies, "bob");
    g_assert_cmpmem (((E2eeDeviceRecord *) bob->devices->pdata[0])->k_send, 32, sendkey, 32);
  }
  /* A sealed identity moved into the other account's row does not open. */
  g_assert_true (e2ee_store_exec (store, "UPDATE account SET d = (SELECT d FROM account WHERE"
                                  " protocol = 'prpl-jabber') WHERE protocol = 'prpl-irc'", NULL));
  g_assert_null (e2ee_records_load_accounts (store, again, FALSE, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  e2ee_seal_free (again);
  e2ee_store_close (store);
  e2ee_wipe (d0, sizeof d0);
}

/* Derived keys moved to another device row do not open either. */
static void
test_sealed_swap_device (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeStore *store = open_ok (f->path);
  g_autoptr (E2eeAccountRecord) a0 = make_account (0);
  g_autoptr (E2eeSeal) seal = e2ee_seal_new ("pw", &error);
  E2eeBuddyRecord *bob = make_buddy (a0, "bob", 2);

  ((E2eeDeviceRecord *) bob->devices->pdata[1])->have_keys = TRUE;
  g_assert_true (e2ee_records_put_account (store, NULL, a0, &error));
  g_assert_true (e2ee_records_reseal (store, NULL, seal, &error));
  g_assert_true (e2ee_records_put_buddy (store, seal, a0, bob, &error));
  g_assert_no_error (error);
  {
    g_autoptr (GPtrArray) l = e2ee_records_load_accounts (store, seal, TRUE, &error);
    g_assert_nonnull (l);
  }
  g_assert_true (e2ee_store_exec (store, "UPDATE device SET keys = (SELECT keys FROM device"
                                  " WHERE pos = 0) WHERE pos = 1", NULL));
  g_assert_null (e2ee_records_load_accounts (store, seal, TRUE, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  e2ee_store_close (store);
}

/* Another process's decision is seen: after B rejects a device, A (which
 * had the buddy cached) learns of it through data_version, re-reads the
 * buddy before writing, and so does not undo the reject. */
static void
test_other_process_decision (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeStore *a = open_ok (f->path);
  g_autoptr (E2eeAccountRecord) acc = make_account (0);
  E2eeBuddyRecord *cached;
  pid_t pid;
  int status;

  g_assert_true (e2ee_records_put_account (a, NULL, acc, &error));
  g_assert_true (e2ee_records_put_buddy (a, NULL, acc, make_buddy (acc, "bob", 2), &error));
  g_assert_false (e2ee_store_changed_elsewhere (a));

  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      E2eeStore *b = e2ee_store_open (f->path, NULL);
      GPtrArray *l = b != NULL ? e2ee_records_load_accounts (b, NULL, TRUE, NULL) : NULL;
      E2eeAccountRecord *ba = l != NULL ? l->pdata[0] : NULL;
      E2eeBuddyRecord *bb = ba != NULL ? g_hash_table_lookup (ba->buddies, "bob") : NULL;
      int rc = 2;

      if (bb != NULL)
        {
          ((E2eeDeviceRecord *) bb->devices->pdata[1])->trust = E2EE_TRUST_REJECTED;
          rc = e2ee_records_put_device (b, NULL, ba, bb, bb->devices->pdata[1], NULL) ? 0 : 3;
        }
      /* Free what this process made and inherited (clean under valgrind). */
      if (l != NULL)
        g_ptr_array_unref (l);
      e2ee_store_close (b);
      e2ee_store_close (a);
      e2ee_account_record_free (g_steal_pointer (&acc));
      fx_teardown_child_keys ();
      _exit (rc);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);

  g_assert_true (e2ee_store_changed_elsewhere (a));
  g_assert_false (e2ee_store_changed_elsewhere (a));
  g_assert_true (e2ee_records_refresh_buddy (a, NULL, acc, "bob", &error));
  cached = g_hash_table_lookup (acc->buddies, "bob");
  g_assert_cmpint (((E2eeDeviceRecord *) cached->devices->pdata[1])->trust, ==,
                   E2EE_TRUST_REJECTED);
  /* A's own change to bob now keeps B's reject. */
  cached->had_encrypted = FALSE;
  g_assert_true (e2ee_records_put_buddy (a, NULL, acc, cached, &error));
  cached = e2ee_records_load_buddy (a, NULL, acc, "bob", &error);
  g_assert_cmpint (((E2eeDeviceRecord *) cached->devices->pdata[1])->trust, ==,
                   E2EE_TRUST_REJECTED);
  g_assert_false (cached->had_encrypted);
  e2ee_records_buddy_free (cached);
  e2ee_store_close (a);
}

/* Two processes changing one keyring at once: every change of both is
 * there at the end (the busy timeout serialises the writers). */
static void
test_two_writers (Fx *f, gconstpointer data)
{
  enum { N = 150 };
  GError *error = NULL;
  E2eeStore *store = open_ok (f->path);
  g_autoptr (E2eeAccountRecord) acc = make_account (0);
  pid_t pids[2];

  g_assert_true (e2ee_records_put_account (store, NULL, acc, &error));
  e2ee_store_close (store);
  for (int w = 0; w < 2; w++)
    {
      pids[w] = fork ();
      g_assert_cmpint (pids[w], >=, 0);
      if (pids[w] == 0)
        {
          E2eeStore *s = e2ee_store_open (f->path, NULL);
          E2eeAccountRecord *me = make_account (0);
          int rc = s == NULL ? 2 : 0;

          for (int i = 0; rc == 0 && i < N; i++)
            {
              char name[32];
              E2eeBuddyRecord *b;
              g_snprintf (name, sizeof name, "w%d-%03d", w, i);
              b = make_buddy (me, name, 1 + i % 3);
              if (!e2ee_records_put_buddy (s, NULL, me, b, NULL))
                rc = 3;
            }
          e2ee_store_close (s);
          e2ee_account_record_free (me);
          e2ee_account_record_free (g_steal_pointer (&acc));
          fx_teardown_child_keys ();
          _exit (rc);
        }
    }
  for (int w = 0; w < 2; w++)
    {
      int status;
      g_assert_cmpint (waitpid (pids[w], &status, 0), ==, pids[w]);
      g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    }
  store = open_ok (f->path);
  {
    g_autoptr (GPtrArray) l = e2ee_records_load_accounts (store, NULL, TRUE, &error);
    E2eeAccountRecord *la = l->pdata[0];
    g_assert_cmpuint (g_hash_table_size (la->buddies), ==, 2 * N);
    for (int w = 0; w < 2; w++)
      for (int i = 0; i < N; i++)
        {
          char name[32];
          E2eeBuddyRecord *b;
          g_snprintf (name, sizeof name, "w%d-%03d", w, i);
          b = g_hash_table_lookup (la->buddies, name);
          g_assert_nonnull (b);
          g_assert_cmpuint (b->devices->len, ==, 1 + i % 3);
        }
  }
  e2ee_store_close (store);
}

/* Costs below the minimum in a file are raised when it is unlocked. */
static void
test_weak_costs_raised (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeSealSetting weak = { "argon2id", 1, 64, 1, { 0 }, { 0 } };
  g_autoptr (JsonNode) file = e2ee_test_load_json ("vectors/keyring-v1-protected-weak.json");
  JsonObject *sealed = json_object_get_object_member (json_node_get_object (file), "sealed");
  E2eeStore *store = open_ok (f->path);
  g_autoptr (E2eeAccountRecord) acc = make_account (0);
  E2eeSeal *seal;
  E2eeSealSetting now;
  gboolean prot;
  gsize n;
  guint8 *raw;

  raw = e2ee_b64url_decode (json_object_get_string_member (sealed, "salt"), 22, &n, NULL);
  memcpy (weak.salt, raw, sizeof weak.salt);
  g_free (raw);
  raw = e2ee_b64url_decode (json_object_get_string_member (sealed, "check"), 22, &n, NULL);
  memcpy (weak.check, raw, sizeof weak.check);
  g_free (raw);
  /* The weak seal of an old file, written into the database as is. */
  seal = e2ee_seal_unlock ("weak pass", &weak, &error);
  g_assert_no_error (error);
  g_assert_true (e2ee_seal_is_weak (seal));
  g_assert_true (e2ee_records_put_account (store, NULL, acc, &error));
  g_assert_true (e2ee_records_reseal (store, NULL, seal, &error));
  e2ee_seal_free (seal);
  e2ee_store_close (store);

  store = open_ok (f->path);
  g_assert_true (e2ee_records_unlock (store, "weak pass", &seal, &error));
  g_assert_no_error (error);
  g_assert_false (e2ee_seal_is_weak (seal));
  g_assert_true (e2ee_records_get_seal (store, &prot, &now, &error));
  g_assert_cmpuint (now.t, >=, E2EE_SEAL_ARGON2_MIN_T);
  g_assert_cmpuint (now.m, >=, E2EE_SEAL_ARGON2_MIN_M);
  {
    g_autoptr (GPtrArray) l = e2ee_records_load_accounts (store, seal, FALSE, &error);
    g_assert_no_error (error);
    g_assert_true (e2ee_key_equal (((E2eeAccountRecord *) l->pdata[0])->identity, ident[0]));
  }
  e2ee_seal_free (seal);
  e2ee_store_close (store);
}

/* A small tmpfs of our own (needs root; else the case is skipped). */
static char *
mount_tmpfs (const char *size)
{
  char *dir = g_dir_make_tmp ("e2ee-store-fs-XXXXXX", NULL);
  g_autofree char *cmd = g_strdup_printf ("mount -t tmpfs -o size=%s,mode=0700 tmpfs '%s'"
                                          " 2>/dev/null", size, dir);
  if (system (cmd) != 0)
    {
      rmdir (dir);
      g_free (dir);
      return NULL;
    }
  return dir;
}

static void
unmount (char *dir)
{
  g_autofree char *cmd = g_strdup_printf ("umount '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
  rmdir (dir);
  g_free (dir);
}

/* A full disk: the change that does not fit fails with a clear error and
 * is not half there; every change committed before it is. */
static void
test_disk_full (void)
{
  GError *error = NULL;
  char *dir = mount_tmpfs ("512k");
  g_autofree char *path = NULL;
  g_autoptr (E2eeAccountRecord) acc = make_account (0);
  E2eeStore *store;
  guint ok = 0;

  if (dir == NULL)
    {
      g_test_skip ("cannot mount a small tmpfs (needs root)");
      return;
    }
  path = g_build_filename (dir, "keyring.sqlite", NULL);
  store = open_ok (path);
  g_assert_true (e2ee_records_put_account (store, NULL, acc, &error));
  for (guint i = 0; i < 100000; i++)
    {
      char name[600];
      memset (name, 'a' + i % 26, sizeof name - 16);
      g_snprintf (name + sizeof name - 16, 16, "%06u", i);
      if (!e2ee_records_put_buddy (store, NULL, acc, make_buddy (acc, name, 4), &error))
        break;
      ok++;
    }
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO);
  g_assert_nonnull (strstr (error->message, "full"));
  g_clear_error (&error);
  g_assert_cmpuint (ok, >, 0);
  e2ee_store_close (store);
  store = e2ee_store_open (path, &error);
  g_assert_no_error (error);
  {
    g_autoptr (GPtrArray) l = e2ee_records_load_accounts (store, NULL, TRUE, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (g_hash_table_size (((E2eeAccountRecord *) l->pdata[0])->buddies), ==, ok);
  }
  e2ee_store_close (store);
  unmount (dir);
}

/* A folder that became read-only: the keyring does not open (a clear
 * error, nothing half-done), and what was committed is intact. */
static void
test_read_only (void)
{
  GError *error = NULL;
  char *dir = mount_tmpfs ("2m");
  g_autofree char *path = NULL, *cmd = NULL;
  g_autoptr (E2eeAccountRecord) acc = make_account (0);
  E2eeStore *store;

  if (dir == NULL)
    {
      g_test_skip ("cannot mount a tmpfs (needs root)");
      return;
    }
  path = g_build_filename (dir, "keyring.sqlite", NULL);
  store = open_ok (path);
  g_assert_true (e2ee_records_put_account (store, NULL, acc, &error));
  g_assert_true (e2ee_records_put_buddy (store, NULL, acc, make_buddy (acc, "bob", 1), &error));
  g_assert_true (e2ee_store_checkpoint (store, &error));
  e2ee_store_close (store);
  /* (a file open for writing keeps the kernel from remounting) */
  cmd = g_strdup_printf ("mount -o remount,ro '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
  g_assert_null (e2ee_store_open (path, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO);
  g_clear_error (&error);
  g_free (cmd);
  cmd = g_strdup_printf ("mount -o remount,rw '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
  store = open_ok (path);
  {
    E2eeBuddyRecord *bob = e2ee_records_load_buddy (store, NULL, acc, "bob", &error);
    g_assert_no_error (error);
    g_assert_nonnull (bob);
    e2ee_records_buddy_free (bob);
  }
  e2ee_store_close (store);
  unmount (dir);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  for (guint i = 0; i < G_N_ELEMENTS (ident); i++)
    ident[i] = e2ee_key_generate (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (devkeys); i++)
    {
      g_autoptr (E2eeKey) k = e2ee_key_generate (NULL);
      devkeys[i] = e2ee_key_public_copy (k);
    }
#define ADD(name, fn) g_test_add ("/store/" name, Fx, NULL, fx_setup, fn, fx_teardown)
  ADD ("settings", test_settings);
  ADD ("permissions", test_permissions);
  ADD ("corrupt", test_corrupt);
  ADD ("newer-schema", test_newer_schema);
  ADD ("migrate-schema-1", test_migrate_1);
  ADD ("round-trip", test_round_trip);
  ADD ("sealed", test_sealed);
  ADD ("sealed-swap-device", test_sealed_swap_device);
  ADD ("weak-costs-raised", test_weak_costs_raised);
  ADD ("other-process-decision", test_other_process_decision);
  ADD ("two-writers", test_two_writers);
  g_test_add_func ("/store/disk-full", test_disk_full);
  g_test_add_func ("/store/read-only-folder", test_read_only);
  return g_test_run ();
}
