/* Import of version 1 keyring.json files (tests/vectors/keyring-v1-*.json,
 * written by the JSON store of version 1 before the database existed) and
 * the JSON backup: src/e2ee-keyring-import.c, src/e2ee-keyring-backup.c.
 * The expected values are read from the fixtures with json-glib here,
 * independently of the importer.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-keyring-import.h"
#include "e2ee-session.h"
#include "e2ee-store-records.h"
#include "e2ee-test-util.h"
#include "e2ee-wipe.h"

typedef struct {
  char *base, *dir, *db, *json;
} Fx;

static void
fx_setup (Fx *f, gconstpointer data)
{
  f->base = g_dir_make_tmp ("e2ee-import-XXXXXX", NULL);
  f->dir = g_build_filename (f->base, "purple-e2ee", NULL);
  g_assert_cmpint (g_mkdir_with_parents (f->dir, 0700), ==, 0);
  f->db = g_build_filename (f->dir, "keyring.sqlite", NULL);
  f->json = g_build_filename (f->dir, "keyring.json", NULL);
}

static void
fx_teardown (Fx *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->base);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->base);
  g_free (f->dir);
  g_free (f->db);
  g_free (f->json);
}

static void
install_fixture (Fx *f, const char *name)
{
  g_autofree char *src = e2ee_test_data_path (name);
  g_autofree char *text = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (src, &text, &len, NULL));
  g_assert_true (g_file_set_contents (f->json, text, (gssize) len, NULL));
  g_assert_cmpint (chmod (f->json, 0600), ==, 0);
}

/* Every account, buddy and device of fixture @name is in @accounts with
 * the same values (read from the JSON here). */
static void
assert_matches_fixture (GPtrArray *accounts, const char *name, gboolean replay_kept)
{
  g_autoptr (JsonNode) root = e2ee_test_load_json (name);
  JsonArray *list = json_object_get_array_member (json_node_get_object (root), "accounts");

  g_assert_cmpuint (accounts->len, ==, json_array_get_length (list));
  for (guint a = 0; a < accounts->len; a++)
    {
      JsonObject *ao = json_array_get_object_element (list, a);
      JsonObject *id = json_object_get_object_member (ao, "identity");
      JsonArray *bl = json_object_get_array_member (ao, "buddies");
      E2eeAccountRecord *account = accounts->pdata[a];

      g_assert_cmpstr (account->protocol, ==, json_object_get_string_member (ao, "protocol"));
      g_assert_cmpstr (account->name, ==, json_object_get_string_member (ao, "name"));
      g_assert_cmpstr (e2ee_key_get_kid (account->identity), ==,
                       json_object_get_string_member (id, "kid"));
      g_assert_true (e2ee_key_has_private (account->identity));
      g_assert_cmpuint (g_hash_table_size (account->buddies), ==, json_array_get_length (bl));
      for (guint b = 0; b < json_array_get_length (bl); b++)
        {
          JsonObject *bo = json_array_get_object_element (bl, b);
          JsonArray *dl = json_object_get_array_member (bo, "devices");
          E2eeBuddyRecord *buddy = g_hash_table_lookup (account->buddies,
                                                        json_object_get_string_member (bo, "name"));
          g_assert_nonnull (buddy);
          g_assert_cmpstr (e2ee_policy_to_string (buddy->policy), ==,
                           json_object_get_string_member (bo, "policy"));
          g_assert_cmpint (buddy->key_changed, ==,
                           json_object_get_boolean_member (bo, "key_changed"));
          g_assert_cmpint (buddy->had_encrypted, ==,
                           json_object_get_boolean_member (bo, "had_encrypted"));
          g_assert_cmpuint (buddy->devices->len, ==, json_array_get_length (dl));
          for (guint d = 0; d < buddy->devices->len; d++)
            {
              JsonObject *dobj = json_array_get_object_element (dl, d);
              E2eeDeviceRecord *dev = buddy->devices->pdata[d];

              g_assert_cmpstr (e2ee_key_get_kid (dev->key), ==,
                               json_object_get_string_member (
                                 json_object_get_object_member (dobj, "jwk"), "kid"));
              g_assert_cmpstr (e2ee_trust_to_string (dev->trust), ==,
                               json_object_get_string_member (dobj, "trust"));
              g_assert_cmpint (dev->first_seen, ==,
                               json_object_get_int_member (dobj, "first_seen"));
              g_assert_cmpint (dev->last_seen, ==, json_object_get_int_member (dobj, "last_seen"));
              if (replay_kept && json_object_has_member (dobj, "replay"))
                {
                  JsonObject *r = json_object_get_object_member (dobj, "replay");
                  g_assert_true (dev->replay_init);
                  g_assert_cmpuint (dev->replay_high, ==,
                                    (guint64) json_object_get_int_member (r, "high"));
                  g_assert_cmphex (dev->replay_window, ==,
                                   g_ascii_strtoull (json_object_get_string_member (r, "window"),
                                                     NULL, 16));
                }
              else if (replay_kept)
                g_assert_false (dev->replay_init);
              g_assert_false (dev->have_keys);   /* recomputed, not carried over */
            }
        }
    }
}

static GPtrArray *
load_all (const char *db, const char *passphrase, E2eeSeal **seal_out)
{
  GError *error = NULL;
  g_autoptr (E2eeStore) store = e2ee_store_open (db, &error);
  E2eeSeal *seal = NULL;
  GPtrArray *accounts;

  g_assert_no_error (error);
  g_assert_true (e2ee_records_unlock (store, passphrase, &seal, &error));
  g_assert_no_error (error);
  accounts = e2ee_records_load_accounts (store, seal, TRUE, &error);
  g_assert_no_error (error);
  if (seal_out != NULL)
    *seal_out = seal;
  else
    e2ee_seal_free (seal);
  return accounts;
}

static void
test_plain (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  g_autofree char *tilde = g_strconcat (f->json, "~", NULL);
  g_autoptr (GPtrArray) accounts = NULL;
  gboolean imported = FALSE;
  E2eeStore *store;

  install_fixture (f, "vectors/keyring-v1-plain.json");
  g_assert_true (g_file_set_contents (tilde, "{}", -1, NULL));   /* an old backup beside */
  store = e2ee_store_open (f->db, &error);
  g_assert_true (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_no_error (error);
  g_assert_true (imported);
  /* No copy is left behind to fall back to. */
  g_assert_false (g_file_test (f->json, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (tilde, G_FILE_TEST_EXISTS));
  /* A second start has nothing to do. */
  g_assert_true (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_false (imported);
  e2ee_store_close (store);
  accounts = load_all (f->db, NULL, NULL);
  assert_matches_fixture (accounts, "vectors/keyring-v1-plain.json", TRUE);
}

static void
test_protected (Fx *f, gconstpointer data)
{
  const char *name = data;
  const char *pass = strstr (name, "weak") != NULL ? "weak pass" : "correct horse";
  GError *error = NULL;
  g_autoptr (GPtrArray) accounts = NULL;
  g_autoptr (E2eeSeal) seal = NULL;
  g_autoptr (E2eeSeal) check = NULL;
  E2eeSealSetting params;
  gboolean imported = FALSE, prot;
  E2eeStore *store;

  install_fixture (f, name);
  store = e2ee_store_open (f->db, &error);
  /* Wrong or missing passphrase: nothing imported, the file stays. */
  g_assert_false (e2ee_keyring_import_legacy (store, NULL, f->json, "wrong", &imported, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
  g_clear_error (&error);
  g_assert_false (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
  g_clear_error (&error);
  g_assert_true (g_file_test (f->json, G_FILE_TEST_EXISTS));
  {
    g_autoptr (GPtrArray) none = e2ee_records_load_accounts (store, NULL, FALSE, &error);
    g_assert_cmpuint (none->len, ==, 0);
  }

  /* The database is sealed under the same passphrase, with today's costs
   * (the weak fixture has t=1, m=64 KiB). */
  seal = e2ee_seal_new (pass, &error);
  g_assert_true (e2ee_records_reseal (store, NULL, seal, &error));
  g_assert_true (e2ee_keyring_import_legacy (store, seal, f->json, pass, &imported, &error));
  g_assert_no_error (error);
  g_assert_true (imported);
  g_assert_false (g_file_test (f->json, G_FILE_TEST_EXISTS));
  g_assert_true (e2ee_records_get_seal (store, &prot, &params, &error));
  g_assert_true (prot);
  g_assert_cmpuint (params.t, >=, E2EE_SEAL_ARGON2_MIN_T);
  g_assert_cmpuint (params.m, >=, E2EE_SEAL_ARGON2_MIN_M);
  e2ee_store_close (store);
  accounts = load_all (f->db, pass, &check);
  assert_matches_fixture (accounts, name, TRUE);
}

static void
put (Fx *f, const char *text)
{
  g_assert_true (g_file_set_contents (f->json, text, -1, NULL));
  g_assert_cmpint (chmod (f->json, 0600), ==, 0);
}

static void
test_tampered (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  g_autofree char *text = NULL;
  g_autoptr (E2eeStore) store = NULL;
  gboolean imported;
  char *at;

  install_fixture (f, "vectors/keyring-v1-protected-weak.json");
  g_assert_true (g_file_get_contents (f->json, &text, NULL, NULL));
  /* Trust is in the clear part, bound to the sealed part as AAD. */
  at = strstr (text, "\"rejected\"");
  g_assert_nonnull (at);
  memcpy (at, "\"verified\"", 10);
  put (f, text);
  store = e2ee_store_open (f->db, &error);
  g_assert_false (e2ee_keyring_import_legacy (store, NULL, f->json, "weak pass", &imported, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  g_assert_true (g_file_test (f->json, G_FILE_TEST_EXISTS));

  /* Not JSON, unknown members, newer versions, open permissions. */
  put (f, "{\"format\":\"purple-e2ee-keyring\",\"version\":2,"
                                      "\"accounts\":[]}");
  g_assert_false (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_VERSION);
  g_clear_error (&error);
  put (f, "{\"format\":\"purple-e2ee-keyring\",\"version\":1,"
                                      "\"accounts\":[],\"extra\":1}");
  g_assert_false (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  /* What json-glib alone would take: a repeated member, a comment. */
  put (f, "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"version\":1,\"accounts\":[]}");
  g_assert_false (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  put (f, "{/* c */\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}");
  g_assert_false (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  put (f, "[1,");
  g_assert_false (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  g_assert_cmpint (chmod (f->json, 0644), ==, 0);
  g_assert_false (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS);
  g_clear_error (&error);
}

/* A crash after the import's commit but before the file was deleted: the
 * next start deletes it without importing again. */
static void
test_interrupted (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  g_autoptr (E2eeStore) store = e2ee_store_open (f->db, &error);
  gboolean imported;

  install_fixture (f, "vectors/keyring-v1-plain.json");
  g_assert_true (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  install_fixture (f, "vectors/keyring-v1-plain.json");
  g_assert_true (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_no_error (error);
  g_assert_false (imported);
  g_assert_false (g_file_test (f->json, G_FILE_TEST_EXISTS));
  /* Another keyring.json into a keyring with accounts is refused. */
  install_fixture (f, "vectors/keyring-v1-protected-weak.json");
  g_assert_false (e2ee_keyring_import_legacy (store, NULL, f->json, "weak pass", &imported, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_NOT_EMPTY);
  g_clear_error (&error);
}

static void
test_backup_round_trip (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  g_autofree char *db2 = g_build_filename (f->dir, "restored.sqlite", NULL);
  g_autoptr (GPtrArray) accounts = NULL;
  E2eeStore *store = e2ee_store_open (f->db, &error);
  guint64 now = G_GUINT64_CONSTANT (123456789012);
  gboolean imported;
  char *text;

  install_fixture (f, "vectors/keyring-v1-plain.json");
  g_assert_true (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  text = e2ee_keyring_export (store, NULL, &error);
  g_assert_no_error (error);
  /* Identities, keys and trust; no session or replay state. */
  g_assert_nonnull (strstr (text, "\"purple-e2ee-backup\""));
  g_assert_nonnull (strstr (text, "\"d\""));
  g_assert_null (strstr (text, "replay"));
  g_assert_null (strstr (text, "derived"));
  g_assert_null (strstr (text, "last_counter"));
  /* Not into a keyring that has accounts. */
  g_assert_false (e2ee_keyring_import_backup (store, NULL, text, strlen (text), now, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_NOT_EMPTY);
  g_clear_error (&error);
  e2ee_store_close (store);

  store = e2ee_store_open (db2, &error);
  g_assert_true (e2ee_keyring_import_backup (store, NULL, text, strlen (text), now, &error));
  g_assert_no_error (error);
  e2ee_store_close (store);
  e2ee_string_free (text);
  accounts = load_all (db2, NULL, NULL);
  assert_matches_fixture (accounts, "vectors/keyring-v1-plain.json", FALSE);
  /* Every device starts its replay state at the restore: an envelope with
   * any counter up to now counts as seen, so none is accepted again. */
  for (guint a = 0; a < accounts->len; a++)
    {
      GHashTableIter iter;
      gpointer v;
      g_hash_table_iter_init (&iter, ((E2eeAccountRecord *) accounts->pdata[a])->buddies);
      while (g_hash_table_iter_next (&iter, NULL, &v))
        for (guint d = 0; d < ((E2eeBuddyRecord *) v)->devices->len; d++)
          {
            E2eeDeviceRecord *dev = ((E2eeBuddyRecord *) v)->devices->pdata[d];
            g_assert_true (dev->replay_init);
            g_assert_cmpuint (dev->replay_high, ==, now);
            g_assert_cmphex (dev->replay_window, ==, G_MAXUINT64);
          }
    }
}

/* The device of @account's own record with @kid. */
static E2eeDeviceRecord *
own_device (E2eeAccountRecord *account, const char *kid)
{
  E2eeBuddyRecord *self = g_hash_table_lookup (account->buddies, account->name);

  g_assert_nonnull (self);
  return e2ee_buddy_find_device_by_kid (self, kid);
}

/* Version 1 trusted an own-account device on first use (a server could
 * inject one): after the import, and after restoring a backup of an own
 * device the user had verified, it is pending again and the account says
 * how many the user must confirm. */
static void
test_own_devices_pending (Fx *f, gconstpointer data)
{
  static const char kid[] = "UqiI8DroUQrLkgbUSzPhJN4kLZ0FszAjKOGkHe63e4A";
  GError *error = NULL;
  g_autofree char *db2 = g_build_filename (f->dir, "restored.sqlite", NULL);
  g_autoptr (GPtrArray) accounts = NULL;
  g_autoptr (GPtrArray) restored = NULL;
  E2eeStore *store;
  E2eeAccountRecord *alice;
  gboolean imported = FALSE;
  char *text;

  install_fixture (f, "vectors/keyring-v1-own-tofu.json");
  store = e2ee_store_open (f->db, &error);
  g_assert_no_error (error);
  g_assert_true (e2ee_keyring_import_legacy (store, NULL, f->json, NULL, &imported, &error));
  g_assert_no_error (error);
  g_assert_true (imported);
  e2ee_store_close (store);
  accounts = load_all (f->db, NULL, NULL);
  alice = accounts->pdata[0];
  g_assert_cmpstr (alice->name, ==, "alice@example.org");
  g_assert_cmpint (own_device (alice, kid)->trust, ==, E2EE_TRUST_UNDECIDED);
  g_assert_cmpuint (alice->own_reconfirm, ==, 1);
  /* A buddy's devices keep their trust. */
  g_assert_cmpint (((E2eeDeviceRecord *) ((E2eeBuddyRecord *) g_hash_table_lookup (
                     alice->buddies, "bob@example.org"))->devices->pdata[0])->trust, ==,
                   E2EE_TRUST_TOFU);
  g_assert_cmpuint (((E2eeAccountRecord *) accounts->pdata[1])->own_reconfirm, ==, 0);

  /* The user verifies it; a backup of that restored still asks again. */
  own_device (alice, kid)->trust = E2EE_TRUST_VERIFIED;
  alice->own_reconfirm = 0;
  store = e2ee_store_open (f->db, &error);
  g_assert_true (e2ee_records_put_account (store, NULL, alice, &error));
  g_assert_true (e2ee_records_put_buddy (store, NULL, alice,
                                         g_hash_table_lookup (alice->buddies, alice->name),
                                         &error));
  g_assert_no_error (error);
  text = e2ee_keyring_export (store, NULL, &error);
  g_assert_no_error (error);
  e2ee_store_close (store);
  store = e2ee_store_open (db2, &error);
  g_assert_true (e2ee_keyring_import_backup (store, NULL, text, strlen (text),
                                             G_GUINT64_CONSTANT (123456789012), &error));
  g_assert_no_error (error);
  e2ee_store_close (store);
  e2ee_string_free (text);
  restored = load_all (db2, NULL, NULL);
  alice = restored->pdata[0];
  g_assert_cmpint (own_device (alice, kid)->trust, ==, E2EE_TRUST_UNDECIDED);
  g_assert_cmpuint (alice->own_reconfirm, ==, 1);
}

/* End to end: a message Bob received before his keyring was restored from
 * a backup (which carries no session state) is not shown again when it is
 * delivered again; Bob's answer starts a new session, and from then on
 * Alice's messages open. */
static void
test_backup_no_replay (Fx *f, gconstpointer data)
{
  GError *error = NULL;
  g_autofree char *dir2 = g_build_filename (f->base, "restored", NULL);
  g_autofree char *json2 = g_build_filename (dir2, "keyring.json", NULL);
  g_autofree char *db2 = g_build_filename (dir2, "keyring.sqlite", NULL);
  E2eeContext *alice = e2ee_context_new (e2ee_keyring_new ("/nonexistent/keyring.json"));
  E2eeContext *bob = e2ee_context_new (e2ee_keyring_new (f->json));
  E2eeAccountRecord *a, *b;
  E2eeRecvResult r = { 0 };
  g_autoptr (GPtrArray) ka = NULL;
  g_autoptr (GPtrArray) kb = NULL;
  char **before, **after;
  E2eeStore *store;
  char *backup;
  gboolean created;

  a = e2ee_context_ensure_account (alice, "prpl-jabber", "alice@example.org", &created, &error);
  b = e2ee_context_ensure_account (bob, "prpl-jabber", "bob@example.org", &created, &error);
  g_assert_no_error (error);
  ka = e2ee_context_own_keyset (alice, a);
  kb = e2ee_context_own_keyset (bob, b);
  e2ee_context_learn_keys (alice, a, "bob@example.org", kb, NULL);
  e2ee_context_learn_keys (bob, b, "alice@example.org", ka, NULL);
  before = e2ee_context_encrypt (alice, a, "bob@example.org", "before the restore", 0, &error);
  g_assert_no_error (error);
  e2ee_context_receive (bob, b, "alice@example.org", before[0], 1, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  e2ee_recv_result_clear (&r);
  g_assert_true (e2ee_keyring_save (e2ee_context_get_keyring (bob), &error));
  e2ee_context_free (bob);

  store = e2ee_store_open (f->db, &error);
  backup = e2ee_keyring_export (store, NULL, &error);
  g_assert_no_error (error);
  e2ee_store_close (store);
  g_assert_cmpint (g_mkdir_with_parents (dir2, 0700), ==, 0);
  store = e2ee_store_open (db2, &error);
  g_assert_true (e2ee_keyring_import_backup (store, NULL, backup, strlen (backup),
                                             e2ee_envelope_clock_counter (), &error));
  g_assert_no_error (error);
  e2ee_store_close (store);
  e2ee_string_free (backup);

  bob = e2ee_context_new (e2ee_keyring_load (json2, NULL, &error));
  g_assert_no_error (error);
  b = e2ee_keyring_lookup_account (e2ee_context_get_keyring (bob), "prpl-jabber",
                                   "bob@example.org");
  g_assert_nonnull (b);
  e2ee_context_receive (bob, b, "alice@example.org", before[0], 2, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
  g_assert_null (r.plaintext);
  /* The heal: a new authenticated start, sent back at once. */
  g_assert_nonnull (r.reply);
  {
    g_autofree char *heal = g_strdup (r.reply);

    e2ee_recv_result_clear (&r);
    /* Delivered again right away: no second start (rate limit). */
    e2ee_context_receive (bob, b, "alice@example.org", before[0], 2, &r);
    g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
    g_assert_null (r.reply);
    e2ee_recv_result_clear (&r);
    e2ee_context_receive (alice, a, "bob@example.org", heal, 2, &r);
    g_assert_no_error (r.error);
    g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);   /* an empty message */
    e2ee_recv_result_clear (&r);
  }
  after = e2ee_context_encrypt (alice, a, "bob@example.org", "after", 0, &error);
  g_assert_no_error (error);
  e2ee_context_receive (bob, b, "alice@example.org", after[0], 3, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpstr (r.plaintext, ==, "after");
  e2ee_recv_result_clear (&r);
  g_strfreev (before);
  g_strfreev (after);
  e2ee_context_free (bob);
  e2ee_context_free (alice);
}

static void
test_backup_malformed (Fx *f, gconstpointer data)
{
  static const char *const cases[] = {
    "",
    "[]",
    "{\"format\":\"purple-e2ee-backup\",\"version\":1}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-backup\",\"version\":1,\"accounts\":[{\"protocol\":\"p\","
    "\"name\":\"n\",\"identity\":{\"kty\":\"EC\"},\"buddies\":[]}]}",
    "{\"format\":\"purple-e2ee-backup\",\"version\":1,\"accounts\":[],\"replay\":{}}",
  };
  GError *error = NULL;
  g_autoptr (E2eeStore) store = e2ee_store_open (f->db, &error);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_assert_false (e2ee_keyring_import_backup (store, NULL, cases[i], strlen (cases[i]), 1,
                                                  &error));
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
      g_clear_error (&error);
    }
  {
    g_autoptr (GPtrArray) l = e2ee_records_load_accounts (store, NULL, FALSE, &error);
    g_assert_cmpuint (l->len, ==, 0);
  }
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
#define ADD(name, d, fn) g_test_add ("/keyring-import/" name, Fx, d, fx_setup, fn, fx_teardown)
  ADD ("v1-plain", NULL, test_plain);
  ADD ("v1-protected", "vectors/keyring-v1-protected.json", test_protected);
  ADD ("v1-protected-weak-costs", "vectors/keyring-v1-protected-weak.json", test_protected);
  ADD ("v1-tampered-and-malformed", NULL, test_tampered);
  ADD ("v1-interrupted", NULL, test_interrupted);
  ADD ("backup-round-trip", NULL, test_backup_round_trip);
  ADD ("own-devices-pending", NULL, test_own_devices_pending);
  ADD ("backup-malformed", NULL, test_backup_malformed);
  ADD ("backup-restore-no-replay", NULL, test_backup_no_replay);
  return g_test_run ();
}
