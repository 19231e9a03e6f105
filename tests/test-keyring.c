/* Tests for src/e2ee-keyring.c: the in-memory keyring written through to
 * the keyring database, on real files.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2ee-error.h"
#include "e2ee-keyring.h"
#include "e2ee-store-records.h"
#include "e2ee-test-util.h"
#include "e2ee-wipe.h"

static E2eeKey *ident;
static E2eeKey *devkeys[3];

typedef struct {
  char *base, *dir, *json, *db;
} Fx;

static void
fx_setup (Fx *f, gconstpointer data)
{
  f->base = g_dir_make_tmp ("e2ee-keyring-XXXXXX", NULL);
  f->dir = g_build_filename (f->base, "purple-e2ee", NULL);
  g_assert_cmpint (g_mkdir_with_parents (f->dir, 0700), ==, 0);
  f->json = g_build_filename (f->dir, "keyring.json", NULL);
  f->db = g_build_filename (f->dir, "keyring.sqlite", NULL);
}

static void
fx_teardown (Fx *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->base);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->base);
  g_free (f->dir);
  g_free (f->json);
  g_free (f->db);
}

static E2eeKeyring *
load_ok (const char *path, const char *pass)
{
  GError *error = NULL;
  E2eeKeyring *k = e2ee_keyring_load (path, pass, &error);

  g_assert_no_error (error);
  g_assert_nonnull (k);
  return k;
}

/* A keyring with one account and @n buddies of one TOFU device each. */
static void
fill (E2eeKeyring *k, guint n)
{
  E2eeAccountRecord *a = e2ee_keyring_add_account (k, "prpl-jabber", "alice@example.org", ident);

  for (guint i = 0; i < n; i++)
    {
      char name[32];
      E2eeBuddyRecord *b;
      E2eeDeviceRecord *d;

      g_snprintf (name, sizeof name, "buddy%03u@example.org", i);
      b = e2ee_account_ensure_buddy (a, name);
      d = e2ee_device_record_new (devkeys[i % 3], E2EE_TRUST_TOFU, 1000 + i);
      d->replay_init = TRUE;
      d->replay_high = i;
      g_ptr_array_add (b->devices, d);
    }
}

static E2eeDeviceRecord *
device_of (E2eeKeyring *k, const char *buddy)
{
  E2eeAccountRecord *a = e2ee_keyring_get_accounts (k)->pdata[0];
  E2eeBuddyRecord *b = e2ee_account_lookup_buddy (a, buddy);

  g_assert_nonnull (b);
  return b->devices->pdata[0];
}

static void
test_round_trip (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *k = e2ee_keyring_new (f->json);
  E2eeAccountRecord *a;
  struct stat st;

  fill (k, 5);
  g_assert_cmpstr (e2ee_keyring_get_path (k), ==, f->db);
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_no_error (error);
  e2ee_keyring_free (k);
  g_assert_cmpint (stat (f->db, &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 0777, ==, 0600);
  g_assert_false (g_file_test (f->json, G_FILE_TEST_EXISTS));   /* no JSON written */

  k = load_ok (f->json, NULL);
  a = e2ee_keyring_lookup_account (k, "prpl-jabber", "alice@example.org");
  g_assert_nonnull (a);
  g_assert_true (e2ee_key_equal (a->identity, ident));
  g_assert_true (e2ee_key_has_private (a->identity));
  g_assert_cmpuint (g_hash_table_size (a->buddies), ==, 5);
  g_assert_cmpuint (device_of (k, "buddy003@example.org")->replay_high, ==, 3);
  /* A change and a removal reach the database. */
  device_of (k, "buddy003@example.org")->trust = E2EE_TRUST_REJECTED;
  g_assert_true (e2ee_account_remove_buddy (a, "buddy004@example.org"));
  a->last_counter = 99;
  g_assert_true (e2ee_keyring_save (k, &error));
  e2ee_keyring_free (k);
  k = load_ok (f->json, NULL);
  a = e2ee_keyring_get_accounts (k)->pdata[0];
  g_assert_cmpint (device_of (k, "buddy003@example.org")->trust, ==, E2EE_TRUST_REJECTED);
  g_assert_null (e2ee_account_lookup_buddy (a, "buddy004@example.org"));
  g_assert_cmpuint (a->last_counter, ==, 99);
  e2ee_keyring_free (k);
}

static void
install (Fx *f, const char *fixture, const char *as)
{
  g_autofree char *src = e2ee_test_data_path (fixture);
  g_autofree char *text = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (src, &text, &len, NULL));
  g_assert_true (g_file_set_contents (as, text, (gssize) len, NULL));
  g_assert_cmpint (chmod (as, 0600), ==, 0);
}

/* First start after the upgrade: keyring.json is imported and removed
 * with its backup; nothing can bring the old file back. */
static void
test_first_start (Fx *f, gconstpointer data)
{
  g_autofree char *tilde = g_strconcat (f->json, "~", NULL);
  E2eeKeyring *k;

  install (f, "vectors/keyring-v1-plain.json", f->json);
  install (f, "vectors/keyring-v1-plain.json", tilde);
  g_assert_false (e2ee_keyring_file_is_protected (f->json));
  k = load_ok (f->json, NULL);
  g_assert_cmpuint (e2ee_keyring_get_accounts (k)->len, ==, 2);
  e2ee_keyring_free (k);
  g_assert_false (g_file_test (f->json, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (tilde, G_FILE_TEST_EXISTS));
  k = load_ok (f->json, NULL);
  g_assert_cmpuint (e2ee_keyring_get_accounts (k)->len, ==, 2);
  e2ee_keyring_free (k);
}

/* SECURITY.md's recovery: moving the keyring away gives a new, empty
 * keyring, even with an old keyring.json~ beside it. */
static void
test_no_fallback (Fx *f, gconstpointer data)
{
  g_autofree char *tilde = g_strconcat (f->json, "~", NULL);
  E2eeKeyring *k;

  install (f, "vectors/keyring-v1-plain.json", tilde);
  k = load_ok (f->json, NULL);
  g_assert_cmpuint (e2ee_keyring_get_accounts (k)->len, ==, 0);
  e2ee_keyring_free (k);
}

static void
test_first_start_protected (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *k;
  guint8 d[32];

  install (f, "vectors/keyring-v1-protected.json", f->json);
  g_assert_true (e2ee_keyring_file_is_protected (f->json));
  g_assert_null (e2ee_keyring_load (f->json, "wrong", &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
  g_clear_error (&error);
  g_assert_true (g_file_test (f->json, G_FILE_TEST_EXISTS));
  k = load_ok (f->json, "correct horse");
  g_assert_cmpuint (e2ee_keyring_get_accounts (k)->len, ==, 2);
  g_assert_true (e2ee_keyring_is_protected (k));
  g_assert_true (e2ee_records_key_scalar (((E2eeAccountRecord *) e2ee_keyring_get_accounts (k)->pdata[0])->identity,
                                          d, NULL));
  e2ee_keyring_free (k);
  g_assert_false (g_file_test (f->json, G_FILE_TEST_EXISTS));
  /* Still protected, and no clear copy of the identity in any file. */
  g_assert_true (e2ee_keyring_file_is_protected (f->json));
  {
    const char *sfx[] = { "", "-wal", "-shm" };
    for (guint i = 0; i < 3; i++)
      {
        g_autofree char *p = g_strconcat (f->db, sfx[i], NULL);
        g_autofree char *bytes = NULL;
        gsize n = 0;
        if (g_file_get_contents (p, &bytes, &n, NULL))
          g_assert_null (memmem (bytes, n, d, sizeof d));
      }
  }
  e2ee_wipe (d, sizeof d);
  g_assert_null (e2ee_keyring_load (f->json, NULL, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
  g_clear_error (&error);
}

static void
test_passphrase (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *k = e2ee_keyring_new (f->json);

  fill (k, 3);
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_false (e2ee_keyring_set_passphrase (k, "", &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
  g_clear_error (&error);
  g_assert_true (e2ee_keyring_set_passphrase (k, "pw", &error));
  g_assert_true (e2ee_keyring_is_protected (k));
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_no_error (error);
  e2ee_keyring_free (k);
  g_assert_true (e2ee_keyring_file_is_protected (f->json));
  g_assert_null (e2ee_keyring_load (f->json, "nope", &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
  g_clear_error (&error);
  k = load_ok (f->json, "pw");
  g_assert_true (e2ee_key_equal (((E2eeAccountRecord *) e2ee_keyring_get_accounts (k)->pdata[0])->identity,
                                 ident));
  g_assert_true (e2ee_keyring_set_passphrase (k, NULL, &error));
  g_assert_true (e2ee_keyring_save (k, &error));
  e2ee_keyring_free (k);
  g_assert_false (e2ee_keyring_file_is_protected (f->json));
  e2ee_keyring_free (load_ok (f->json, NULL));
}

/* TRUE if the database or its -wal / -shm files hold @n bytes at @b. */
static gboolean
db_files_hold (const char *db, const guint8 *b, gsize n)
{
  const char *sfx[] = { "", "-wal", "-shm" };
  gboolean found = FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (sfx); i++)
    {
      g_autofree char *p = g_strconcat (db, sfx[i], NULL);
      g_autofree char *bytes = NULL;
      gsize len = 0;
      if (g_file_get_contents (p, &bytes, &len, NULL) && memmem (bytes, len, b, n) != NULL)
        found = TRUE;
    }
  return found;
}

/* Setting the passphrase while another connection holds a read
 * transaction: the checkpoint cannot run, yet the new seal is taken at
 * once; no later save writes a clear value under it, the passphrase
 * still opens the keyring, and once the reader is gone no clear copy of
 * a derived key or of the identity stays in any file. */
static void
test_passphrase_with_reader (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *k = e2ee_keyring_new (f->json);
  E2eeDeviceRecord *d;
  guint8 ksend[32], d0[32];
  sqlite3 *c = NULL;
  sqlite3_stmt *st = NULL;

  for (guint i = 0; i < sizeof ksend; i++)
    ksend[i] = (guint8) (0x91 + 7 * i);
  g_assert_true (e2ee_records_key_scalar (ident, d0, NULL));
  fill (k, 3);
  d = device_of (k, "buddy001@example.org");
  d->have_keys = TRUE;
  d->keys_local_caps = d->keys_remote_caps = 1;
  memcpy (d->k_send, ksend, sizeof ksend);
  memset (d->k_recv, 0x3c, sizeof d->k_recv);
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_no_error (error);
  g_assert_true (db_files_hold (f->db, ksend, sizeof ksend));   /* the scan can see it */

  /* Pidgin's other window, Finch...: a reader on an older snapshot. */
  g_assert_cmpint (sqlite3_open (f->db, &c), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (c, "BEGIN", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (c, "SELECT count(*) FROM device", -1, &st, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);

  g_assert_true (e2ee_keyring_set_passphrase (k, "pw", &error));
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_no_error (error);
  /* Later saves (the derived keys rewritten on each) stay sealed. */
  for (guint i = 0; i < 20; i++)
    {
      d = device_of (k, "buddy001@example.org");
      d->replay_high = 100 + i;
      g_assert_true (e2ee_keyring_save (k, &error));
      g_assert_no_error (error);
    }
  sqlite3_finalize (st);
  g_assert_cmpint (sqlite3_exec (c, "COMMIT", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_close (c), ==, SQLITE_OK);
  /* The next commit empties the WAL. */
  device_of (k, "buddy001@example.org")->replay_high = 200;
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_no_error (error);
  g_assert_false (db_files_hold (f->db, ksend, sizeof ksend));
  g_assert_false (db_files_hold (f->db, d0, sizeof d0));
  e2ee_keyring_free (k);

  g_assert_true (e2ee_keyring_file_is_protected (f->json));
  k = load_ok (f->json, "pw");
  d = device_of (k, "buddy001@example.org");
  g_assert_true (d->have_keys);
  g_assert_cmpmem (d->k_send, 32, ksend, 32);
  g_assert_cmpuint (d->replay_high, ==, 200);
  e2ee_keyring_free (k);
  g_assert_false (db_files_hold (f->db, ksend, sizeof ksend));
  g_assert_false (db_files_hold (f->db, d0, sizeof d0));
  e2ee_wipe (d0, sizeof d0);
}

/* Another client set the passphrase: this one, holding no seal, writes
 * nothing (no clear value under the other's seal) and says why. */
static void
test_passphrase_set_elsewhere (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *seed = e2ee_keyring_new (f->json);
  E2eeKeyring *pidgin, *finch;
  E2eeDeviceRecord *d;

  fill (seed, 2);
  g_assert_true (e2ee_keyring_save (seed, &error));
  e2ee_keyring_free (seed);
  pidgin = load_ok (f->json, NULL);
  finch = load_ok (f->json, NULL);
  g_assert_true (e2ee_keyring_set_passphrase (pidgin, "pw", &error));
  g_assert_true (e2ee_keyring_save (pidgin, &error));
  g_assert_no_error (error);

  d = device_of (finch, "buddy000@example.org");
  d->have_keys = TRUE;
  d->keys_local_caps = d->keys_remote_caps = 1;
  memset (d->k_send, 0x77, sizeof d->k_send);
  g_assert_false (e2ee_keyring_save (finch, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
  g_clear_error (&error);
  e2ee_keyring_free (finch);
  e2ee_keyring_free (pidgin);
  /* The passphrase opens every row. */
  e2ee_keyring_free (load_ok (f->json, "pw"));
}

/* A protected keyring whose seal row is deleted, with an identity of the
 * attacker's planted in the clear, does not open without a passphrase
 * (nor with it); removing the passphrase the proper way still works
 * (test_passphrase). */
static void
test_seal_row_removed (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *k = e2ee_keyring_new (f->json);
  g_autoptr (E2eeKey) evil = e2ee_key_generate (NULL);
  guint8 d[32];
  sqlite3 *c = NULL;
  sqlite3_stmt *st = NULL;

  fill (k, 2);
  g_assert_true (e2ee_keyring_set_passphrase (k, "pw", &error));
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_no_error (error);
  e2ee_keyring_free (k);

  g_assert_true (e2ee_records_key_scalar (evil, d, NULL));
  g_assert_cmpint (sqlite3_open (f->db, &c), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (c, "DELETE FROM seal", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (c, "UPDATE account SET x = ?1, y = ?2, d = ?3", -1, &st,
                                       NULL), ==, SQLITE_OK);
  sqlite3_bind_blob (st, 1, e2ee_key_get_x (evil), 32, SQLITE_STATIC);
  sqlite3_bind_blob (st, 2, e2ee_key_get_y (evil), 32, SQLITE_STATIC);
  sqlite3_bind_blob (st, 3, d, 32, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_DONE);
  sqlite3_finalize (st);
  sqlite3_close (c);
  e2ee_wipe (d, sizeof d);

  k = e2ee_keyring_load (f->json, NULL, &error);
  g_assert_null (k);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  g_assert_null (e2ee_keyring_load (f->json, "pw", &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
}

static gint64
count (const char *db, const char *sql)
{
  sqlite3 *c = NULL;
  sqlite3_stmt *st = NULL;
  gint64 v;

  g_assert_cmpint (sqlite3_open (db, &c), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (c, sql, -1, &st, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  v = sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  sqlite3_close (c);
  return v;
}

/* A save writes the rows of what changed, whatever the number of buddies. */
static void
test_writes_only_changes (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *k = e2ee_keyring_new (f->json);
  sqlite3 *c = NULL;

  fill (k, 300);
  g_assert_true (e2ee_keyring_save (k, &error));
  /* Count every row written from now on. */
  g_assert_cmpint (sqlite3_open (f->db, &c), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (c,
    "CREATE TABLE audit (n INTEGER);"
    "CREATE TRIGGER a1 AFTER UPDATE ON buddy BEGIN INSERT INTO audit VALUES (1); END;"
    "CREATE TRIGGER a2 AFTER UPDATE ON device BEGIN INSERT INTO audit VALUES (1); END;"
    "CREATE TRIGGER a3 AFTER INSERT ON device BEGIN INSERT INTO audit VALUES (1); END;"
    "CREATE TRIGGER a4 AFTER UPDATE ON account BEGIN INSERT INTO audit VALUES (1); END;",
    NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (c);
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_cmpint (count (f->db, "SELECT count(*) FROM audit"), ==, 0);
  device_of (k, "buddy150@example.org")->replay_high = 7777;
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_no_error (error);
  /* The buddy row (its upsert) and its one device, twice each at most. */
  g_assert_cmpint (count (f->db, "SELECT count(*) FROM audit"), <=, 4);
  g_assert_cmpint (count (f->db, "SELECT replay_high FROM device WHERE replay_high = 7777"), ==, 7777);
  e2ee_keyring_free (k);
}

/* Two clients on one keyring: a reject made in one is never undone by
 * the other, which had the buddy in memory and then saved a change of
 * its own (replay state) for that very device. */
static void
test_two_clients (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *seed = e2ee_keyring_new (f->json);
  E2eeKeyring *pidgin, *finch, *after;
  E2eeDeviceRecord *stale;

  fill (seed, 3);
  g_assert_true (e2ee_keyring_save (seed, &error));
  e2ee_keyring_free (seed);
  pidgin = load_ok (f->json, NULL);
  finch = load_ok (f->json, NULL);
  stale = device_of (finch, "buddy001@example.org");   /* held across the other's change */

  device_of (pidgin, "buddy001@example.org")->trust = E2EE_TRUST_REJECTED;
  g_assert_true (e2ee_keyring_save (pidgin, &error));

  stale->replay_high = 500;                            /* a message received in finch */
  g_assert_true (e2ee_keyring_save (finch, &error));
  g_assert_no_error (error);
  /* Finch now sees the reject too. */
  g_assert_cmpint (device_of (finch, "buddy001@example.org")->trust, ==, E2EE_TRUST_REJECTED);

  after = load_ok (f->json, NULL);
  g_assert_cmpint (device_of (after, "buddy001@example.org")->trust, ==, E2EE_TRUST_REJECTED);
  g_assert_cmpuint (device_of (after, "buddy001@example.org")->replay_high, ==, 500);
  e2ee_keyring_free (after);

  /* A decision is also seen at the next lookup, before any save. */
  device_of (pidgin, "buddy002@example.org")->trust = E2EE_TRUST_VERIFIED;
  g_assert_true (e2ee_keyring_save (pidgin, &error));
  g_assert_cmpint (device_of (finch, "buddy002@example.org")->trust, ==, E2EE_TRUST_VERIFIED);
  e2ee_keyring_free (pidgin);
  e2ee_keyring_free (finch);
}

/* The other client's commit placed at one point of this client's save. */
typedef struct {
  E2eeKeyring *other;
  const char *buddy, *when;
  gboolean done;
} Interleave;

static void
reject_in_other (E2eeKeyring *keyring, const char *point, gpointer data)
{
  Interleave *x = data;
  GError *error = NULL;

  if (x->done || strcmp (point, x->when) != 0)
    return;
  x->done = TRUE;
  device_of (x->other, x->buddy)->trust = E2EE_TRUST_REJECTED;
  g_assert_true (e2ee_keyring_save (x->other, &error));
  g_assert_no_error (error);
}

static E2eeTrust
stored_trust (Fx *f, const char *buddy, guint64 *replay_high)
{
  E2eeKeyring *k = load_ok (f->json, NULL);
  E2eeDeviceRecord *d = device_of (k, buddy);
  E2eeTrust t = d->trust;

  *replay_high = d->replay_high;
  e2ee_keyring_free (k);
  return t;
}

/* A reject committed by another client just before this client's write
 * transaction begins, or just after its commit, is never undone. */
static void
test_two_clients_interleaved (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *seed = e2ee_keyring_new (f->json);
  E2eeKeyring *pidgin, *finch;
  Interleave x = { NULL, NULL, NULL, FALSE };
  guint64 high = 0;

  fill (seed, 3);
  g_assert_true (e2ee_keyring_save (seed, &error));
  e2ee_keyring_free (seed);
  pidgin = load_ok (f->json, NULL);
  finch = load_ok (f->json, NULL);
  x.other = pidgin;
  e2ee_keyring_set_save_hook (finch, reject_in_other, &x);

  /* Between finch's check for other writers and its BEGIN. */
  x.buddy = "buddy001@example.org";
  x.when = "before";
  device_of (finch, x.buddy)->replay_high = 500;
  g_assert_true (e2ee_keyring_save (finch, &error));
  g_assert_no_error (error);
  g_assert_true (x.done);
  g_assert_cmpint (stored_trust (f, x.buddy, &high), ==, E2EE_TRUST_REJECTED);
  g_assert_cmpuint (high, ==, 500);
  g_assert_cmpint (device_of (finch, x.buddy)->trust, ==, E2EE_TRUST_REJECTED);

  /* Just after finch's commit: its next lookup and save keep it. */
  x.buddy = "buddy002@example.org";
  x.when = "after";
  x.done = FALSE;
  device_of (finch, x.buddy)->replay_high = 600;
  g_assert_true (e2ee_keyring_save (finch, &error));
  g_assert_true (x.done);
  g_assert_cmpint (device_of (finch, x.buddy)->trust, ==, E2EE_TRUST_REJECTED);
  device_of (finch, x.buddy)->replay_high = 700;
  g_assert_true (e2ee_keyring_save (finch, &error));
  g_assert_no_error (error);
  g_assert_cmpint (stored_trust (f, x.buddy, &high), ==, E2EE_TRUST_REJECTED);
  g_assert_cmpuint (high, ==, 700);
  e2ee_keyring_free (finch);
  e2ee_keyring_free (pidgin);
}

/* An account renamed in memory (IRC nick@server -> nick) keeps its
 * buddies and its sealed identity. */
static void
test_rename_account (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *k = e2ee_keyring_new (f->json);
  E2eeAccountRecord *a;

  fill (k, 3);
  g_assert_true (e2ee_keyring_set_passphrase (k, "pw", &error));
  g_assert_true (e2ee_keyring_save (k, &error));
  a = e2ee_keyring_get_accounts (k)->pdata[0];
  g_free (a->name);
  a->name = g_strdup ("alice");
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_no_error (error);
  e2ee_keyring_free (k);
  k = load_ok (f->json, "pw");
  g_assert_cmpuint (e2ee_keyring_get_accounts (k)->len, ==, 1);
  a = e2ee_keyring_lookup_account (k, "prpl-jabber", "alice");
  g_assert_nonnull (a);
  g_assert_true (e2ee_key_equal (a->identity, ident));
  g_assert_cmpuint (g_hash_table_size (a->buddies), ==, 3);
  e2ee_keyring_free (k);
}

/* A save compares the buddies looked up since the last one; a change made
 * through a pointer kept from before is still written (a save with
 * nothing looked up compares them all). */
static void
test_kept_pointer (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *k = e2ee_keyring_new (f->json);
  E2eeDeviceRecord *kept;

  fill (k, 20);
  g_assert_true (e2ee_keyring_save (k, &error));
  kept = device_of (k, "buddy007@example.org");
  g_assert_true (e2ee_keyring_save (k, &error));
  kept->trust = E2EE_TRUST_VERIFIED;           /* no lookup since the last save */
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_no_error (error);
  e2ee_keyring_free (k);
  k = load_ok (f->json, NULL);
  g_assert_cmpint (device_of (k, "buddy007@example.org")->trust, ==, E2EE_TRUST_VERIFIED);
  e2ee_keyring_free (k);
}

static void
test_bad_files (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  E2eeKeyring *k = e2ee_keyring_new (f->json);
  g_autofree char *before = NULL, *after = NULL;
  gsize n1 = 0, n2 = 0;

  fill (k, 1);
  g_assert_true (e2ee_keyring_save (k, &error));
  e2ee_keyring_free (k);
  g_assert_cmpint (chmod (f->db, 0644), ==, 0);
  g_assert_null (e2ee_keyring_load (f->json, NULL, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS);
  g_clear_error (&error);
  g_assert_cmpint (unlink (f->db), ==, 0);
  g_assert_true (g_file_set_contents (f->db, "this is not a database, and it is long enough "
                                      "to have a header that SQLite reads and refuses", -1, NULL));
  g_assert_cmpint (chmod (f->db, 0600), ==, 0);
  g_assert_true (g_file_get_contents (f->db, &before, &n1, NULL));
  g_assert_null (e2ee_keyring_load (f->json, NULL, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_assert_nonnull (strstr (error->message, "keyring import"));
  g_clear_error (&error);
  g_assert_true (g_file_get_contents (f->db, &after, &n2, NULL));
  g_assert_cmpmem (before, n1, after, n2);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  ident = e2ee_key_generate (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (devkeys); i++)
    {
      g_autoptr (E2eeKey) k = e2ee_key_generate (NULL);
      devkeys[i] = e2ee_key_public_copy (k);
    }
#define ADD(name, fn) g_test_add ("/keyring/" name, Fx, NULL, fx_setup, fn, fx_teardown)
  ADD ("round-trip", test_round_trip);
  ADD ("first-start-import", test_first_start);
  ADD ("first-start-import-protected", test_first_start_protected);
  ADD ("no-fallback-to-old-copy", test_no_fallback);
  ADD ("passphrase", test_passphrase);
  ADD ("passphrase-with-reader", test_passphrase_with_reader);
  ADD ("passphrase-set-elsewhere", test_passphrase_set_elsewhere);
  ADD ("seal-row-removed", test_seal_row_removed);
  ADD ("save-writes-only-changes", test_writes_only_changes);
  ADD ("two-clients-reject-kept", test_two_clients);
  ADD ("two-clients-reject-interleaved", test_two_clients_interleaved);
  ADD ("rename-account", test_rename_account);
  ADD ("kept-pointer", test_kept_pointer);
  ADD ("bad-files", test_bad_files);
  return g_test_run ();
}
