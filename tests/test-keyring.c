/* Unit tests for src/e2ee-keyring.c.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-keyring.h"
#include "e2ee-test-util.h"
#include "e2ee-wipe.h"

/* Keys are costly to make (and much more so under valgrind): a few are
 * made once and shared. */
#define N_IDENTITIES 3
#define N_DEVICES 4
static E2eeKey *identities[N_IDENTITIES];
static E2eeKey *devices[N_DEVICES];

typedef struct {
  char *dir;
  char *path;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  GError *error = NULL;

  f->dir = g_dir_make_tmp ("e2ee-keyring-XXXXXX", &error);
  g_assert_no_error (error);
  f->path = g_build_filename (f->dir, "keyring.json", NULL);
}

static void
remove_tree (const char *path)
{
  GDir *dir;
  const char *name;

  chmod (path, 0700);
  dir = g_dir_open (path, 0, NULL);
  if (dir == NULL)
    {
      unlink (path);
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        unlink (child);
    }
  g_dir_close (dir);
  rmdir (path);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->path);
}

static char *
read_bytes (const char *path, gsize *len)
{
  char *data = NULL;
  GError *error = NULL;

  g_file_get_contents (path, &data, len, &error);
  g_assert_no_error (error);
  return data;
}

static void
write_private (const char *path, const char *data, gssize len)
{
  gsize n = len < 0 ? strlen (data) : (gsize) len;
  int fd;

  unlink (path);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, data, n), ==, (gssize) n);
  g_assert_cmpint (close (fd), ==, 0);
}

static guint
count_temp_files (const char *dirname)
{
  GDir *dir = g_dir_open (dirname, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (strstr (name, ".tmp-") != NULL)
      n++;
  g_dir_close (dir);
  return n;
}

static E2eeDeviceRecord *
add_device (E2eeBuddyRecord *buddy, E2eeKey *key, E2eeTrust trust, gint64 seen)
{
  E2eeDeviceRecord *dev = e2ee_device_record_new (key, trust, seen);
  g_ptr_array_add (buddy->devices, dev);
  return dev;
}

/* A keyring exercising every field. */
static E2eeKeyring *
make_keyring (const char *path)
{
  E2eeKeyring *keyring = e2ee_keyring_new (path);
  E2eeAccountRecord *acc;
  E2eeBuddyRecord *buddy;
  E2eeDeviceRecord *dev;

  acc = e2ee_keyring_add_account (keyring, "prpl-jabber", "alice@example.org", identities[0]);
  g_assert_nonnull (acc);
  acc->last_counter = G_GUINT64_CONSTANT (0xFFFFFFFFFF);

  buddy = e2ee_account_ensure_buddy (acc, "bob@example.org");
  buddy->policy = E2EE_POLICY_OPPORTUNISTIC;
  dev = add_device (buddy, devices[0], E2EE_TRUST_TOFU, 1700000000);
  dev->last_seen = 1700000500;
  dev->replay_init = TRUE;
  dev->replay_high = 123456789;
  dev->replay_window = G_GUINT64_CONSTANT (0x8000000000000001);
  dev->have_keys = TRUE;
  dev->keys_local_caps = 0x01;
  dev->keys_remote_caps = 0x03;
  for (guint i = 0; i < E2EE_KEY_LEN; i++)
    {
      dev->k_send[i] = (guint8) (0xA0 + i);
      dev->k_recv[i] = (guint8) (0x10 + 3 * i);
    }
  dev = add_device (buddy, devices[1], E2EE_TRUST_UNDECIDED, 1700000100);
  dev->last_seen = -5;

  buddy = e2ee_account_ensure_buddy (acc, "carol@example.org");
  buddy->policy = E2EE_POLICY_REQUIRED;
  buddy->key_changed = TRUE;
  buddy->had_encrypted = TRUE;
  dev = add_device (buddy, devices[2], E2EE_TRUST_VERIFIED, 0);
  dev->replay_init = TRUE;          /* all-zero replay state is still state */

  /* The account's own name holds its other devices. */
  buddy = e2ee_account_ensure_buddy (acc, "alice@example.org");
  buddy->policy = E2EE_POLICY_OFF;
  add_device (buddy, devices[3], E2EE_TRUST_REJECTED, 42);

  /* A buddy without devices, and a second account without buddies. */
  e2ee_account_ensure_buddy (acc, "dave@example.org");
  acc = e2ee_keyring_add_account (keyring, "prpl-irc", "alice@irc.example.org", identities[1]);
  g_assert_nonnull (acc);
  acc->last_counter = 0;
  return keyring;
}

static void
assert_devices_equal (const E2eeDeviceRecord *a, const E2eeDeviceRecord *b)
{
  g_assert_true (e2ee_key_equal (a->key, b->key));
  g_assert_false (e2ee_key_has_private (b->key));
  g_assert_cmpuint (e2ee_key_get_caps (a->key), ==, e2ee_key_get_caps (b->key));
  g_assert_cmpint (a->trust, ==, b->trust);
  g_assert_cmpint (a->first_seen, ==, b->first_seen);
  g_assert_cmpint (a->last_seen, ==, b->last_seen);
  g_assert_cmpint (a->replay_init, ==, b->replay_init);
  if (a->replay_init)
    {
      g_assert_cmpuint (a->replay_high, ==, b->replay_high);
      g_assert_cmpuint (a->replay_window, ==, b->replay_window);
    }
  g_assert_cmpint (a->have_keys, ==, b->have_keys);
  if (a->have_keys)
    {
      g_assert_cmpuint (a->keys_local_caps, ==, b->keys_local_caps);
      g_assert_cmpuint (a->keys_remote_caps, ==, b->keys_remote_caps);
      g_assert_cmpmem (a->k_send, E2EE_KEY_LEN, b->k_send, E2EE_KEY_LEN);
      g_assert_cmpmem (a->k_recv, E2EE_KEY_LEN, b->k_recv, E2EE_KEY_LEN);
    }
}

static void
assert_keyrings_equal (E2eeKeyring *a, E2eeKeyring *b)
{
  GPtrArray *aa = e2ee_keyring_get_accounts (a);
  GPtrArray *ba = e2ee_keyring_get_accounts (b);

  g_assert_cmpuint (aa->len, ==, ba->len);
  for (guint i = 0; i < aa->len; i++)
    {
      E2eeAccountRecord *x = g_ptr_array_index (aa, i);
      E2eeAccountRecord *y = g_ptr_array_index (ba, i);
      GHashTableIter iter;
      gpointer key, value;

      g_assert_cmpstr (x->protocol, ==, y->protocol);
      g_assert_cmpstr (x->name, ==, y->name);
      g_assert_true (e2ee_key_equal (x->identity, y->identity));
      g_assert_true (e2ee_key_has_private (y->identity));
      g_assert_cmpuint (x->last_counter, ==, y->last_counter);
      g_assert_cmpuint (g_hash_table_size (x->buddies), ==, g_hash_table_size (y->buddies));
      g_hash_table_iter_init (&iter, x->buddies);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          E2eeBuddyRecord *bx = value;
          E2eeBuddyRecord *by = e2ee_account_lookup_buddy (y, key);

          g_assert_nonnull (by);
          g_assert_cmpstr (bx->name, ==, by->name);
          g_assert_cmpint (bx->policy, ==, by->policy);
          g_assert_cmpint (bx->key_changed, ==, by->key_changed);
          g_assert_cmpint (bx->had_encrypted, ==, by->had_encrypted);
          g_assert_cmpuint (bx->devices->len, ==, by->devices->len);
          for (guint d = 0; d < bx->devices->len; d++)
            assert_devices_equal (g_ptr_array_index (bx->devices, d),
                                  g_ptr_array_index (by->devices, d));
        }
    }
}

static void
save_ok (E2eeKeyring *keyring)
{
  GError *error = NULL;

  g_assert_true (e2ee_keyring_save (keyring, &error));
  g_assert_no_error (error);
}

static E2eeKeyring *
load_ok (const char *path, const char *passphrase)
{
  GError *error = NULL;
  E2eeKeyring *keyring = e2ee_keyring_load (path, passphrase, &error);

  g_assert_no_error (error);
  g_assert_nonnull (keyring);
  return keyring;
}

static void
load_fails (const char *path, const char *passphrase, gint code)
{
  GError *error = NULL;
  E2eeKeyring *keyring = e2ee_keyring_load (path, passphrase, &error);

  g_assert_null (keyring);
  g_assert_error (error, E2EE_ERROR, code);
  g_assert_nonnull (error->message);
  g_test_message ("expected failure: %s", error->message);
  g_error_free (error);
}

/* ------------------------------------------------------------------ */

static void
test_enums (void)
{
  static const char *trust[] = { "undecided", "tofu", "verified", "rejected" };
  static const char *policy[] = { "default", "off", "opportunistic", "required" };
  E2eeTrust t;
  E2eePolicy p;

  for (guint i = 0; i < G_N_ELEMENTS (trust); i++)
    {
      g_assert_cmpstr (e2ee_trust_to_string ((E2eeTrust) i), ==, trust[i]);
      g_assert_true (e2ee_trust_from_string (trust[i], &t));
      g_assert_cmpint (t, ==, (E2eeTrust) i);
    }
  for (guint i = 0; i < G_N_ELEMENTS (policy); i++)
    {
      g_assert_cmpstr (e2ee_policy_to_string ((E2eePolicy) i), ==, policy[i]);
      g_assert_true (e2ee_policy_from_string (policy[i], &p));
      g_assert_cmpint (p, ==, (E2eePolicy) i);
    }
  g_assert_null (e2ee_trust_to_string ((E2eeTrust) 4));
  g_assert_null (e2ee_policy_to_string ((E2eePolicy) 99));
  g_assert_false (e2ee_trust_from_string ("Tofu", &t));
  g_assert_false (e2ee_trust_from_string ("", &t));
  g_assert_false (e2ee_policy_from_string ("always", &p));
  g_assert_false (e2ee_policy_from_string (NULL, &p));
}

static void
test_records (void)
{
  g_autoptr (E2eeKeyring) keyring = e2ee_keyring_new ("/nonexistent/keyring.json");
  E2eeAccountRecord *acc;
  E2eeBuddyRecord *buddy;
  E2eeDeviceRecord *dev;

  g_assert_cmpstr (e2ee_keyring_get_path (keyring), ==, "/nonexistent/keyring.json");
  g_assert_false (e2ee_keyring_is_protected (keyring));
  g_assert_null (e2ee_keyring_lookup_account (keyring, "prpl-jabber", "a@x"));
  acc = e2ee_keyring_add_account (keyring, "prpl-jabber", "a@x", identities[0]);
  g_assert_true (e2ee_keyring_lookup_account (keyring, "prpl-jabber", "a@x") == acc);
  g_assert_null (e2ee_keyring_lookup_account (keyring, "prpl-irc", "a@x"));
  g_assert_null (e2ee_keyring_lookup_account (keyring, "prpl-jabber", "b@x"));
  g_assert_cmpuint (e2ee_keyring_get_accounts (keyring)->len, ==, 1);

  g_assert_null (e2ee_account_lookup_buddy (acc, "bob"));
  buddy = e2ee_account_ensure_buddy (acc, "bob");
  g_assert_true (e2ee_account_ensure_buddy (acc, "bob") == buddy);
  g_assert_true (e2ee_account_lookup_buddy (acc, "bob") == buddy);
  g_assert_cmpint (buddy->policy, ==, E2EE_POLICY_DEFAULT);
  g_assert_cmpuint (buddy->devices->len, ==, 0);

  dev = add_device (buddy, devices[0], E2EE_TRUST_TOFU, 77);
  g_assert_cmpint (dev->first_seen, ==, 77);
  g_assert_cmpint (dev->last_seen, ==, 77);
  g_assert_false (dev->have_keys);
  add_device (buddy, devices[1], E2EE_TRUST_UNDECIDED, 78);
  g_assert_true (e2ee_buddy_find_device (buddy, devices[1])
                 == g_ptr_array_index (buddy->devices, 1));
  g_assert_null (e2ee_buddy_find_device (buddy, devices[2]));
  g_assert_true (e2ee_buddy_find_device_by_kid (buddy, e2ee_key_get_kid (devices[0])) == dev);
  g_assert_null (e2ee_buddy_find_device_by_kid (buddy, e2ee_key_get_kid (devices[2])));

  g_assert_true (e2ee_account_remove_buddy (acc, "bob"));
  g_assert_false (e2ee_account_remove_buddy (acc, "bob"));
  g_assert_null (e2ee_account_lookup_buddy (acc, "bob"));
}

static void
test_missing (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = load_ok (f->path, NULL);
  g_autofree char *nested = g_build_filename (f->dir, "no-such-dir", "k.json", NULL);
  g_autoptr (E2eeKeyring) nested_keyring = load_ok (nested, NULL);

  g_assert_cmpuint (e2ee_keyring_get_accounts (keyring)->len, ==, 0);
  g_assert_cmpstr (e2ee_keyring_get_path (keyring), ==, f->path);
  g_assert_false (g_file_test (f->path, G_FILE_TEST_EXISTS));
  g_assert_false (e2ee_keyring_file_is_protected (f->path));
  g_assert_cmpuint (e2ee_keyring_get_accounts (nested_keyring)->len, ==, 0);
}

static void
test_roundtrip (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autoptr (E2eeKeyring) loaded = NULL;
  g_autoptr (E2eeKeyring) again = NULL;
  g_autofree char *first = NULL, *second = NULL;
  gsize first_len, second_len;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *obj;

  save_ok (keyring);
  loaded = load_ok (f->path, NULL);
  assert_keyrings_equal (keyring, loaded);
  g_assert_false (e2ee_keyring_is_protected (loaded));
  g_assert_false (e2ee_keyring_file_is_protected (f->path));
  first = read_bytes (f->path, &first_len);

  /* Deterministic: the loaded copy saves to the same bytes. */
  save_ok (loaded);
  second = read_bytes (f->path, &second_len);
  g_assert_cmpmem (first, first_len, second, second_len);
  again = load_ok (f->path, NULL);
  assert_keyrings_equal (keyring, again);

  /* The layout other tools read. */
  {
    g_autoptr (JsonParser) parser = json_parser_new ();
    g_assert_true (json_parser_load_from_data (parser, first, (gssize) first_len, NULL));
    root = json_node_copy (json_parser_get_root (parser));
  }
  obj = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (obj, "format"), ==, "purple-e2ee-keyring");
  g_assert_cmpint (json_object_get_int_member (obj, "version"), ==, 1);
  {
    JsonObject *acc = json_array_get_object_element (json_object_get_array_member (obj, "accounts"), 0);
    JsonArray *buddies = json_object_get_array_member (acc, "buddies");
    JsonObject *bob = json_array_get_object_element (buddies, 1);
    JsonObject *dev = json_array_get_object_element (json_object_get_array_member (bob, "devices"), 0);
    JsonObject *dev2 = json_array_get_object_element (json_object_get_array_member (bob, "devices"), 1);

    g_assert_true (json_object_has_member (json_object_get_object_member (acc, "identity"), "d"));
    g_assert_cmpint (json_object_get_int_member (acc, "last_counter"), ==, 0xFFFFFFFFFF);
    /* Sorted by name. */
    g_assert_cmpuint (json_array_get_length (buddies), ==, 4);
    g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (buddies, 0), "name"), ==, "alice@example.org");
    g_assert_cmpstr (json_object_get_string_member (bob, "name"), ==, "bob@example.org");
    g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (buddies, 3), "name"), ==, "dave@example.org");
    g_assert_cmpstr (json_object_get_string_member (bob, "policy"), ==, "opportunistic");
    g_assert_cmpstr (json_object_get_string_member (dev, "trust"), ==, "tofu");
    g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (dev, "jwk"), "kid"),
                     ==, e2ee_key_get_kid (devices[0]));
    g_assert_false (json_object_has_member (json_object_get_object_member (dev, "jwk"), "d"));
    g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (dev, "replay"), "window"),
                     ==, "8000000000000001");
    g_assert_true (json_object_has_member (dev, "derived"));
    g_assert_false (json_object_has_member (dev2, "derived"));
    g_assert_false (json_object_has_member (dev2, "replay"));
  }
}

typedef struct {
  Fixture *f;
  volatile gint stop;
  guint seen;
  guint bad;
} Watcher;

static gpointer
watch_temp_files (gpointer user_data)
{
  Watcher *w = user_data;

  while (!g_atomic_int_get (&w->stop))
    {
      GDir *dir = g_dir_open (w->f->dir, 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *p = g_build_filename (w->f->dir, name, NULL);
          struct stat st;

          if (strstr (name, ".tmp-") == NULL || stat (p, &st) != 0)
            continue;
          w->seen++;
          if ((st.st_mode & 077) != 0)
            w->bad++;
        }
      if (dir != NULL)
        g_dir_close (dir);
    }
  return NULL;
}

static void
test_file_modes (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autofree char *backup = g_strconcat (f->path, "~", NULL);
  g_autofree char *lock = g_strconcat (f->path, ".lock", NULL);
  Watcher w = { f, 0, 0, 0 };
  GThread *thread;
  struct stat st;
  mode_t old = umask (0);

  /* Even with an empty umask nothing is created readable by others, and
   * a thread looking at the folder meanwhile never sees an open temp file. */
  thread = g_thread_new ("watch", watch_temp_files, &w);
  for (int i = 0; i < 5; i++)
    save_ok (keyring);
  g_atomic_int_set (&w.stop, 1);
  g_thread_join (thread);
  umask (old);
  g_test_message ("temporary files observed: %u", w.seen);
  g_assert_cmpuint (w.bad, ==, 0);

  g_assert_cmpint (stat (f->path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  g_assert_cmpint (stat (backup, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  g_assert_cmpint (stat (lock, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  g_assert_cmpuint (count_temp_files (f->dir), ==, 0);
}

static void
test_backup (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autoptr (E2eeKeyring) first_copy = NULL;
  g_autoptr (E2eeKeyring) from_backup = NULL;
  g_autoptr (E2eeKeyring) current = NULL;
  g_autofree char *backup = g_strconcat (f->path, "~", NULL);
  g_autofree char *first = NULL, *backup_bytes = NULL;
  gsize first_len, backup_len;
  E2eeAccountRecord *acc;

  save_ok (keyring);
  g_assert_false (g_file_test (backup, G_FILE_TEST_EXISTS));
  first = read_bytes (f->path, &first_len);
  first_copy = load_ok (f->path, NULL);

  acc = e2ee_keyring_lookup_account (keyring, "prpl-irc", "alice@irc.example.org");
  acc->last_counter = 99;
  e2ee_account_ensure_buddy (acc, "erin");
  save_ok (keyring);

  /* The previous file is now the backup, byte for byte, and loads. */
  backup_bytes = read_bytes (backup, &backup_len);
  g_assert_cmpmem (first, first_len, backup_bytes, backup_len);
  from_backup = load_ok (backup, NULL);
  assert_keyrings_equal (first_copy, from_backup);
  current = load_ok (f->path, NULL);
  assert_keyrings_equal (keyring, current);
}

static void
test_recover_from_backup (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autoptr (E2eeKeyring) first_copy = NULL;
  g_autoptr (E2eeKeyring) recovered = NULL;
  g_autoptr (E2eeKeyring) after = NULL;
  g_autofree char *backup = g_strconcat (f->path, "~", NULL);
  E2eeAccountRecord *acc;

  save_ok (keyring);
  first_copy = load_ok (f->path, NULL);
  acc = e2ee_keyring_lookup_account (keyring, "prpl-irc", "alice@irc.example.org");
  acc->last_counter = 1234;
  save_ok (keyring);

  /* A save interrupted after the backup and before the rename. */
  g_assert_cmpint (unlink (f->path), ==, 0);
  recovered = load_ok (f->path, NULL);
  assert_keyrings_equal (first_copy, recovered);
  g_assert_cmpstr (e2ee_keyring_get_path (recovered), ==, f->path);

  /* The next save writes the main file again. */
  save_ok (keyring);
  g_assert_true (g_file_test (f->path, G_FILE_TEST_IS_REGULAR));
  after = load_ok (f->path, NULL);
  assert_keyrings_equal (keyring, after);
}

static void
test_corrupt_untouched (Fixture *f, gconstpointer data)
{
  static const char garbage[] = "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accou";
  g_autoptr (E2eeKeyring) fresh = make_keyring (f->path);
  g_autofree char *backup = g_strconcat (f->path, "~", NULL);
  g_autofree char *after = NULL;
  GError *error = NULL;
  gsize len;

  write_private (f->path, garbage, -1);
  load_fails (f->path, NULL, E2EE_ERROR_KEYRING_CORRUPT);
  after = read_bytes (f->path, &len);
  g_assert_cmpmem (after, len, garbage, strlen (garbage));

  /* A fresh keyring (what a caller might make after the failure) must not
   * replace the file it could not read. */
  g_assert_false (e2ee_keyring_save (fresh, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  g_free (after);
  after = read_bytes (f->path, &len);
  g_assert_cmpmem (after, len, garbage, strlen (garbage));
  g_assert_false (g_file_test (backup, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_temp_files (f->dir), ==, 0);
}

/* ---- Corruption cases: mutations of a valid document ---------------- */

typedef void (*Mutate) (JsonObject *root);

static JsonObject *
account0 (JsonObject *root)
{
  return json_array_get_object_element (json_object_get_array_member (root, "accounts"), 0);
}

static JsonObject *
buddy_named (JsonObject *root, const char *name)
{
  JsonArray *buddies = json_object_get_array_member (account0 (root), "buddies");

  for (guint i = 0; i < json_array_get_length (buddies); i++)
    {
      JsonObject *b = json_array_get_object_element (buddies, i);
      if (strcmp (json_object_get_string_member (b, "name"), name) == 0)
        return b;
    }
  g_assert_not_reached ();
}

static JsonObject *
bob_device0 (JsonObject *root)
{
  JsonArray *devs = json_object_get_array_member (buddy_named (root, "bob@example.org"), "devices");
  return json_array_get_object_element (devs, 0);
}

static void m_root_array (JsonObject *r) { (void) r; }
static void m_format (JsonObject *r) { json_object_set_string_member (r, "format", "purple-otr-keyring"); }
static void m_format_missing (JsonObject *r) { json_object_remove_member (r, "format"); }
static void m_version_string (JsonObject *r) { json_object_set_string_member (r, "version", "1"); }
static void m_version_zero (JsonObject *r) { json_object_set_int_member (r, "version", 0); }
static void m_version_float (JsonObject *r) { json_object_set_double_member (r, "version", 1.5); }
static void m_version_newer (JsonObject *r) { json_object_set_int_member (r, "version", 2); }
static void m_accounts_object (JsonObject *r) { json_object_set_object_member (r, "accounts", json_object_new ()); }
static void m_accounts_missing (JsonObject *r) { json_object_remove_member (r, "accounts"); }
static void m_root_unknown (JsonObject *r) { json_object_set_int_member (r, "extra", 1); }
static void m_sealed_junk (JsonObject *r) { json_object_set_int_member (r, "sealed", 1); }
static void m_account_not_object (JsonObject *r)
{
  json_array_add_string_element (json_object_get_array_member (r, "accounts"), "x");
}
static void m_identity_missing (JsonObject *r) { json_object_remove_member (account0 (r), "identity"); }
static void m_identity_public (JsonObject *r)
{
  json_object_remove_member (json_object_get_object_member (account0 (r), "identity"), "d");
}
static void m_identity_wrong_d (JsonObject *r)
{
  JsonArray *accs = json_object_get_array_member (r, "accounts");
  JsonObject *other = json_object_get_object_member (json_array_get_object_element (accs, 1), "identity");
  json_object_set_string_member (json_object_get_object_member (account0 (r), "identity"), "d",
                                 json_object_get_string_member (other, "d"));
}
static void m_protocol_empty (JsonObject *r) { json_object_set_string_member (account0 (r), "protocol", ""); }
static void m_name_number (JsonObject *r) { json_object_set_int_member (account0 (r), "name", 5); }
static void m_counter_negative (JsonObject *r) { json_object_set_int_member (account0 (r), "last_counter", -1); }
static void m_counter_big (JsonObject *r)
{
  json_object_set_int_member (account0 (r), "last_counter", G_GINT64_CONSTANT (9007199254740992));
}
static void m_counter_string (JsonObject *r) { json_object_set_string_member (account0 (r), "last_counter", "7"); }
static void m_counter_bool (JsonObject *r) { json_object_set_boolean_member (account0 (r), "last_counter", TRUE); }
static void m_account_dup (JsonObject *r)
{
  JsonArray *accs = json_object_get_array_member (r, "accounts");
  json_array_add_element (accs, json_node_copy (json_array_get_element (accs, 0)));
}
static void m_buddy_dup (JsonObject *r)
{
  JsonArray *buddies = json_object_get_array_member (account0 (r), "buddies");
  json_array_add_element (buddies, json_node_copy (json_array_get_element (buddies, 1)));
}
static void m_buddy_name_empty (JsonObject *r) { json_object_set_string_member (buddy_named (r, "dave@example.org"), "name", ""); }
static void m_policy_unknown (JsonObject *r) { json_object_set_string_member (buddy_named (r, "bob@example.org"), "policy", "always"); }
static void m_key_changed_int (JsonObject *r) { json_object_set_int_member (buddy_named (r, "carol@example.org"), "key_changed", 1); }
static void m_had_encrypted_missing (JsonObject *r) { json_object_remove_member (buddy_named (r, "carol@example.org"), "had_encrypted"); }
static void m_devices_null (JsonObject *r) { json_object_set_null_member (buddy_named (r, "carol@example.org"), "devices"); }
static void m_device_dup (JsonObject *r)
{
  JsonArray *devs = json_object_get_array_member (buddy_named (r, "bob@example.org"), "devices");
  json_array_add_element (devs, json_node_copy (json_array_get_element (devs, 0)));
}
static void m_trust_unknown (JsonObject *r) { json_object_set_string_member (bob_device0 (r), "trust", "trusted"); }
static void m_trust_case (JsonObject *r) { json_object_set_string_member (bob_device0 (r), "trust", "TOFU"); }
static void m_first_seen_float (JsonObject *r) { json_object_set_double_member (bob_device0 (r), "first_seen", 1.0); }
static void m_device_unknown (JsonObject *r) { json_object_set_int_member (bob_device0 (r), "colour", 3); }
static void m_device_private (JsonObject *r)
{
  JsonObject *id = json_object_get_object_member (account0 (r), "identity");
  json_object_set_object_member (bob_device0 (r), "jwk", json_object_ref (id));
}
static void m_device_off_curve (JsonObject *r)
{
  JsonObject *jwk = json_object_get_object_member (bob_device0 (r), "jwk");
  g_autofree char *y = g_strdup (json_object_get_string_member (jwk, "y"));
  y[3] = y[3] == 'A' ? 'B' : 'A';
  json_object_set_string_member (jwk, "y", y);
}
static void m_device_no_kid (JsonObject *r)
{
  json_object_remove_member (json_object_get_object_member (bob_device0 (r), "jwk"), "kid");
}
static void m_device_wrong_kid (JsonObject *r)
{
  json_object_set_string_member (json_object_get_object_member (bob_device0 (r), "jwk"), "kid",
                                 e2ee_key_get_kid (devices[3]));
}
static void m_window_short (JsonObject *r)
{
  json_object_set_string_member (json_object_get_object_member (bob_device0 (r), "replay"), "window", "800000000000001");
}
static void m_window_upper (JsonObject *r)
{
  json_object_set_string_member (json_object_get_object_member (bob_device0 (r), "replay"), "window", "800000000000000A");
}
static void m_replay_high_missing (JsonObject *r)
{
  json_object_remove_member (json_object_get_object_member (bob_device0 (r), "replay"), "high");
}
static void m_derived_short (JsonObject *r)
{
  guint8 k[31] = { 1 };
  g_autofree char *t = e2ee_b64url_encode (k, sizeof k);
  json_object_set_string_member (json_object_get_object_member (bob_device0 (r), "derived"), "send", t);
}
static void m_derived_padded (JsonObject *r)
{
  JsonObject *d = json_object_get_object_member (bob_device0 (r), "derived");
  g_autofree char *t = g_strconcat (json_object_get_string_member (d, "recv"), "=", NULL);
  json_object_set_string_member (d, "recv", t);
}
static void m_derived_caps (JsonObject *r)
{
  json_object_set_int_member (json_object_get_object_member (bob_device0 (r), "derived"), "local_caps", 256);
}

typedef struct {
  const char *name;
  Mutate mutate;
  gint code;
} Case;

static const Case cases[] = {
  { "root-array", m_root_array, E2EE_ERROR_KEYRING_CORRUPT },
  { "format-other", m_format, E2EE_ERROR_KEYRING_CORRUPT },
  { "format-missing", m_format_missing, E2EE_ERROR_KEYRING_CORRUPT },
  { "version-string", m_version_string, E2EE_ERROR_KEYRING_CORRUPT },
  { "version-zero", m_version_zero, E2EE_ERROR_KEYRING_CORRUPT },
  { "version-float", m_version_float, E2EE_ERROR_KEYRING_CORRUPT },
  { "version-newer", m_version_newer, E2EE_ERROR_KEYRING_VERSION },
  { "accounts-object", m_accounts_object, E2EE_ERROR_KEYRING_CORRUPT },
  { "accounts-missing", m_accounts_missing, E2EE_ERROR_KEYRING_CORRUPT },
  { "root-unknown-member", m_root_unknown, E2EE_ERROR_KEYRING_CORRUPT },
  { "sealed-junk", m_sealed_junk, E2EE_ERROR_KEYRING_CORRUPT },
  { "account-not-object", m_account_not_object, E2EE_ERROR_KEYRING_CORRUPT },
  { "identity-missing", m_identity_missing, E2EE_ERROR_KEYRING_CORRUPT },
  { "identity-public-only", m_identity_public, E2EE_ERROR_KEYRING_CORRUPT },
  { "identity-wrong-d", m_identity_wrong_d, E2EE_ERROR_KEYRING_CORRUPT },
  { "protocol-empty", m_protocol_empty, E2EE_ERROR_KEYRING_CORRUPT },
  { "name-number", m_name_number, E2EE_ERROR_KEYRING_CORRUPT },
  { "counter-negative", m_counter_negative, E2EE_ERROR_KEYRING_CORRUPT },
  { "counter-2^53", m_counter_big, E2EE_ERROR_KEYRING_CORRUPT },
  { "counter-string", m_counter_string, E2EE_ERROR_KEYRING_CORRUPT },
  { "counter-bool", m_counter_bool, E2EE_ERROR_KEYRING_CORRUPT },
  { "account-duplicate", m_account_dup, E2EE_ERROR_KEYRING_CORRUPT },
  { "buddy-duplicate", m_buddy_dup, E2EE_ERROR_KEYRING_CORRUPT },
  { "buddy-name-empty", m_buddy_name_empty, E2EE_ERROR_KEYRING_CORRUPT },
  { "policy-unknown", m_policy_unknown, E2EE_ERROR_KEYRING_CORRUPT },
  { "key-changed-int", m_key_changed_int, E2EE_ERROR_KEYRING_CORRUPT },
  { "had-encrypted-missing", m_had_encrypted_missing, E2EE_ERROR_KEYRING_CORRUPT },
  { "devices-null", m_devices_null, E2EE_ERROR_KEYRING_CORRUPT },
  { "device-duplicate", m_device_dup, E2EE_ERROR_KEYRING_CORRUPT },
  { "trust-unknown", m_trust_unknown, E2EE_ERROR_KEYRING_CORRUPT },
  { "trust-case", m_trust_case, E2EE_ERROR_KEYRING_CORRUPT },
  { "first-seen-float", m_first_seen_float, E2EE_ERROR_KEYRING_CORRUPT },
  { "device-unknown-member", m_device_unknown, E2EE_ERROR_KEYRING_CORRUPT },
  { "device-private-key", m_device_private, E2EE_ERROR_KEYRING_CORRUPT },
  { "device-off-curve", m_device_off_curve, E2EE_ERROR_KEYRING_CORRUPT },
  { "device-no-kid", m_device_no_kid, E2EE_ERROR_KEYRING_CORRUPT },
  { "device-wrong-kid", m_device_wrong_kid, E2EE_ERROR_KEYRING_CORRUPT },
  { "window-short", m_window_short, E2EE_ERROR_KEYRING_CORRUPT },
  { "window-upper-case", m_window_upper, E2EE_ERROR_KEYRING_CORRUPT },
  { "replay-high-missing", m_replay_high_missing, E2EE_ERROR_KEYRING_CORRUPT },
  { "derived-31-bytes", m_derived_short, E2EE_ERROR_KEYRING_CORRUPT },
  { "derived-padded", m_derived_padded, E2EE_ERROR_KEYRING_CORRUPT },
  { "derived-caps-256", m_derived_caps, E2EE_ERROR_KEYRING_CORRUPT },
};

static char *
to_json (JsonNode *node, gsize *len)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();

  json_generator_set_root (gen, node);
  return json_generator_to_data (gen, len);
}

static void
check_refused_untouched_pw (Fixture *f, const char *passphrase, const char *content,
                            gsize content_len, gint code)
{
  g_autofree char *after = NULL;
  gsize after_len;

  load_fails (f->path, passphrase, code);
  after = read_bytes (f->path, &after_len);
  g_assert_cmpmem (after, after_len, content, content_len);
}

static void
check_refused_untouched (Fixture *f, const char *content, gsize content_len, gint code)
{
  check_refused_untouched_pw (f, NULL, content, content_len, code);
}

static void
test_corruption_cases (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autofree char *valid = NULL;
  gsize valid_len;

  save_ok (keyring);
  valid = read_bytes (f->path, &valid_len);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();
      g_autoptr (JsonNode) root = NULL;
      g_autofree char *text = NULL;
      gsize len;

      g_test_message ("case %s", cases[i].name);
      g_assert_true (json_parser_load_from_data (parser, valid, (gssize) valid_len, NULL));
      root = json_node_copy (json_parser_get_root (parser));
      if (cases[i].mutate == m_root_array)
        {
          JsonArray *arr = json_array_new ();
          json_array_add_element (arr, g_steal_pointer (&root));
          root = json_node_new (JSON_NODE_ARRAY);
          json_node_take_array (root, arr);
        }
      else
        cases[i].mutate (json_node_get_object (root));
      text = to_json (root, &len);
      write_private (f->path, text, (gssize) len);
      check_refused_untouched (f, text, len, cases[i].code);
    }

  /* The unmodified document still loads (so the failures came from the
   * mutations). */
  write_private (f->path, valid, (gssize) valid_len);
  e2ee_keyring_free (load_ok (f->path, NULL));
}

/* Text-level cases json-glib alone would accept. */
static void
test_corruption_text (Fixture *f, gconstpointer data)
{
  static const char *const texts[] = {
    "",
    "   ",
    "[]",
    "\"purple-e2ee-keyring\"",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}{}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]} x",
    "/* c */{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}",
    "{'format':\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"format\":\"x\",\"version\":1,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":18446744073709551617,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]",
    "{\"form\\u0061t\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_test_message ("text %u: %s", i, texts[i]);
      write_private (f->path, texts[i], -1);
      check_refused_untouched (f, texts[i], strlen (texts[i]), E2EE_ERROR_KEYRING_CORRUPT);
    }
  /* A NUL byte inside the file. */
  {
    static const char nul[] = "{\"format\":\"purple-e2ee-keyring\0\",\"version\":1,\"accounts\":[]}";
    write_private (f->path, nul, sizeof nul - 1);
    check_refused_untouched (f, nul, sizeof nul - 1, E2EE_ERROR_KEYRING_CORRUPT);
  }
}

/* Fixture files under tests/vectors/. */
static void
test_vector_files (Fixture *f, gconstpointer data)
{
  static const struct { const char *file; gint code; } vectors[] = {
    { "vectors/keyring-empty.json", 0 },
    { "vectors/keyring-newer-version.json", E2EE_ERROR_KEYRING_VERSION },
    { "vectors/keyring-wrong-format.json", E2EE_ERROR_KEYRING_CORRUPT },
    { "vectors/keyring-version-missing.json", E2EE_ERROR_KEYRING_CORRUPT },
    { "vectors/keyring-bad-identity.json", E2EE_ERROR_KEYRING_CORRUPT },
    { "vectors/keyring-sealed-bad-kdf.json", E2EE_ERROR_KEYRING_CORRUPT },
  };

  for (guint i = 0; i < G_N_ELEMENTS (vectors); i++)
    {
      g_autofree char *src = e2ee_test_data_path (vectors[i].file);
      g_autofree char *content = NULL;
      gsize len;

      g_test_message ("vector %s", vectors[i].file);
      content = read_bytes (src, &len);
      write_private (f->path, content, (gssize) len);
      if (vectors[i].code == 0)
        {
          g_autoptr (E2eeKeyring) k = load_ok (f->path, NULL);
          g_assert_cmpuint (e2ee_keyring_get_accounts (k)->len, ==, 0);
        }
      else
        check_refused_untouched (f, content, len, vectors[i].code);
    }
}

static void
test_newer_version_not_replaced (Fixture *f, gconstpointer data)
{
  static const char newer[] =
    "{\"format\":\"purple-e2ee-keyring\",\"version\":7,\"accounts\":{\"new\":\"layout\"}}\n";
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  GError *error = NULL;

  write_private (f->path, newer, -1);
  check_refused_untouched (f, newer, strlen (newer), E2EE_ERROR_KEYRING_VERSION);
  g_assert_false (e2ee_keyring_save (keyring, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_VERSION);
  g_clear_error (&error);
  check_refused_untouched (f, newer, strlen (newer), E2EE_ERROR_KEYRING_VERSION);
}

static void
test_permissions (Fixture *f, gconstpointer data)
{
  static const mode_t modes[] = { 0644, 0640, 0604, 0620, 0602, 0610 };
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autofree char *content = NULL;
  GError *error = NULL;
  gsize len;

  save_ok (keyring);
  content = read_bytes (f->path, &len);
  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      g_assert_cmpint (chmod (f->path, modes[i]), ==, 0);
      check_refused_untouched (f, content, len, E2EE_ERROR_KEYRING_PERMISSIONS);
    }
  /* Nor is such a file silently replaced. */
  g_assert_cmpint (chmod (f->path, 0644), ==, 0);
  g_assert_false (e2ee_keyring_save (keyring, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS);
  g_clear_error (&error);

  g_assert_cmpint (chmod (f->path, 0400), ==, 0);
  e2ee_keyring_free (load_ok (f->path, NULL));
  g_assert_cmpint (chmod (f->path, 0600), ==, 0);
  e2ee_keyring_free (load_ok (f->path, NULL));
}

static void
test_size_limit (Fixture *f, gconstpointer data)
{
  int fd = open (f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);

  g_assert_cmpint (fd, >=, 0);
  /* Sparse: no disk space used. */
  g_assert_cmpint (ftruncate (fd, (off_t) E2EE_KEYRING_MAX_BYTES + 1), ==, 0);
  close (fd);
  load_fails (f->path, NULL, E2EE_ERROR_KEYRING_LIMIT);
  g_assert_false (e2ee_keyring_file_is_protected (f->path));
}

static void
assert_intact_after_failed_save (Fixture *f, E2eeKeyring *keyring, const char *content,
                                 gsize len, const char *expect_in_message)
{
  g_autofree char *after = NULL;
  gsize after_len;
  GError *error = NULL;

  g_assert_false (e2ee_keyring_save (keyring, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO);
  g_test_message ("save failed as expected: %s", error->message);
  if (expect_in_message != NULL)
    g_assert_nonnull (strstr (error->message, expect_in_message));
  g_clear_error (&error);
  after = read_bytes (f->path, &after_len);
  g_assert_cmpmem (after, after_len, content, len);
  g_assert_cmpuint (count_temp_files (f->dir), ==, 0);
}

static void
test_save_not_a_directory (Fixture *f, gconstpointer data)
{
  g_autofree char *file = g_build_filename (f->dir, "plain-file", NULL);
  g_autofree char *inside = g_build_filename (file, "keyring.json", NULL);
  g_autoptr (E2eeKeyring) keyring = make_keyring (inside);
  GError *error = NULL;

  write_private (file, "x", 1);
  g_assert_false (e2ee_keyring_save (keyring, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO);
  g_assert_nonnull (strstr (error->message, g_strerror (ENOTDIR)));
  g_clear_error (&error);
}

/* The backup cannot be made (path~ is a non-empty folder): fails for root
 * too, after the temporary file was written. */
static void
test_save_backup_blocked (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autofree char *backup = g_strconcat (f->path, "~", NULL);
  g_autofree char *inner = g_build_filename (backup, "x", NULL);
  g_autofree char *content = NULL;
  gsize len;

  save_ok (keyring);
  content = read_bytes (f->path, &len);
  g_assert_cmpint (mkdir (backup, 0700), ==, 0);
  write_private (inner, "x", 1);
  e2ee_keyring_lookup_account (keyring, "prpl-irc", "alice@irc.example.org")->last_counter = 5;
  assert_intact_after_failed_save (f, keyring, content, len, NULL);
}

static void
test_save_read_only_folder (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autofree char *content = NULL;
  gsize len;
  int dfd = -1, flags = 0;
  gboolean immutable = FALSE;

  save_ok (keyring);
  content = read_bytes (f->path, &len);
  e2ee_keyring_lookup_account (keyring, "prpl-irc", "alice@irc.example.org")->last_counter = 6;

  if (geteuid () != 0)
    g_assert_cmpint (chmod (f->dir, 0500), ==, 0);
  else
    {
      /* Root ignores permission bits, not the immutable attribute. */
      dfd = open (f->dir, O_RDONLY | O_DIRECTORY);
      g_assert_cmpint (dfd, >=, 0);
      if (ioctl (dfd, FS_IOC_GETFLAGS, &flags) == 0)
        {
          int set = flags | FS_IMMUTABLE_FL;
          immutable = ioctl (dfd, FS_IOC_SETFLAGS, &set) == 0;
        }
      if (!immutable)
        {
          close (dfd);
          g_test_skip ("running as root and the file system (or missing "
                       "CAP_LINUX_IMMUTABLE) does not allow an immutable folder");
          return;
        }
    }
  assert_intact_after_failed_save (f, keyring, content, len, NULL);
  if (immutable)
    {
      g_assert_cmpint (ioctl (dfd, FS_IOC_SETFLAGS, &flags), ==, 0);
      close (dfd);
    }
  else
    g_assert_cmpint (chmod (f->dir, 0700), ==, 0);
  /* Once writable again, saving works. */
  save_ok (keyring);
}

static void
test_locked (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autofree char *lock = g_strconcat (f->path, ".lock", NULL);
  g_autofree char *content = NULL;
  GError *error = NULL;
  gint64 start, elapsed;
  gsize len;
  int fd;

  save_ok (keyring);
  content = read_bytes (f->path, &len);
  fd = open (lock, O_RDWR);
  g_assert_cmpint (fd, >=, 0);

  /* A writer elsewhere: a load waits, then gives up. */
  g_assert_cmpint (flock (fd, LOCK_EX), ==, 0);
  start = g_get_monotonic_time ();
  load_fails (f->path, NULL, E2EE_ERROR_KEYRING_LOCKED);
  elapsed = (g_get_monotonic_time () - start) / 1000;
  g_test_message ("load gave up after %" G_GINT64_FORMAT " ms", elapsed);
  g_assert_cmpint (elapsed, >=, E2EE_KEYRING_LOCK_TIMEOUT_MS - 100);
  g_assert_cmpint (elapsed, <=, E2EE_KEYRING_LOCK_TIMEOUT_MS + 10000);

  /* A reader elsewhere: loads proceed, a save waits and gives up. */
  g_assert_cmpint (flock (fd, LOCK_SH), ==, 0);
  e2ee_keyring_free (load_ok (f->path, NULL));
  e2ee_keyring_lookup_account (keyring, "prpl-irc", "alice@irc.example.org")->last_counter = 9;
  start = g_get_monotonic_time ();
  g_assert_false (e2ee_keyring_save (keyring, &error));
  elapsed = (g_get_monotonic_time () - start) / 1000;
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_LOCKED);
  g_clear_error (&error);
  g_assert_cmpint (elapsed, >=, E2EE_KEYRING_LOCK_TIMEOUT_MS - 100);
  g_assert_cmpint (elapsed, <=, E2EE_KEYRING_LOCK_TIMEOUT_MS + 10000);
  {
    g_autofree char *after = NULL;
    gsize after_len;
    after = read_bytes (f->path, &after_len);
    g_assert_cmpmem (after, after_len, content, len);
  }

  /* Released: the save goes through. */
  close (fd);
  save_ok (keyring);
}

/* ---- Passphrase protection ----------------------------------------- */

static void
set_passphrase_ok (E2eeKeyring *keyring, const char *passphrase)
{
  GError *error = NULL;

  g_assert_true (e2ee_keyring_set_passphrase (keyring, passphrase, &error));
  g_assert_no_error (error);
}

static void
test_passphrase_roundtrip (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autoptr (E2eeKeyring) loaded = NULL;
  g_autoptr (E2eeKeyring) again = NULL;
  g_autofree char *bytes = NULL;
  gsize len;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root, *sealed;

  set_passphrase_ok (keyring, "correct horse battery staple");
  g_assert_true (e2ee_keyring_is_protected (keyring));
  save_ok (keyring);
  g_assert_true (e2ee_keyring_file_is_protected (f->path));

  bytes = read_bytes (f->path, &len);
  g_assert_true (json_parser_load_from_data (parser, bytes, (gssize) len, NULL));
  root = json_node_get_object (json_parser_get_root (parser));
  sealed = json_object_get_object_member (root, "sealed");
  g_assert_nonnull (sealed);
  g_assert_cmpstr (json_object_get_string_member (sealed, "kdf"), ==, "argon2id");
  g_assert_cmpint (json_object_get_int_member (sealed, "p"), ==, 1);
  g_assert_true (json_object_has_member (sealed, "salt"));
  g_assert_true (json_object_has_member (sealed, "iv"));
  g_assert_true (json_object_has_member (sealed, "ct"));
  /* The public structure stays readable. */
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (root, "accounts")), ==, 2);

  loaded = load_ok (f->path, "correct horse battery staple");
  g_assert_true (e2ee_keyring_is_protected (loaded));
  assert_keyrings_equal (keyring, loaded);

  /* Saving the loaded keyring keeps the protection (new IV each time). */
  save_ok (loaded);
  {
    g_autofree char *bytes2 = NULL;
    gsize len2;
    bytes2 = read_bytes (f->path, &len2);
    g_assert_false (len == len2 && memcmp (bytes, bytes2, len) == 0);
  }
  again = load_ok (f->path, "correct horse battery staple");
  assert_keyrings_equal (keyring, again);

  /* Removing the passphrase. */
  set_passphrase_ok (again, NULL);
  g_assert_false (e2ee_keyring_is_protected (again));
  save_ok (again);
  g_assert_false (e2ee_keyring_file_is_protected (f->path));
  e2ee_keyring_free (load_ok (f->path, NULL));
}

/* The real cost parameters (everything else uses the test-only cheap
 * ones): Argon2id t=3, 64 MiB, one lane, recorded in the file. */
static void
test_passphrase_default_cost (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autoptr (E2eeKeyring) loaded = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *bytes = NULL;
  JsonObject *sealed;
  gsize len;

  g_unsetenv ("E2EE_TEST_FAST_KDF");
  set_passphrase_ok (keyring, "a real passphrase");
  g_setenv ("E2EE_TEST_FAST_KDF", "1", TRUE);
  save_ok (keyring);
  bytes = read_bytes (f->path, &len);
  g_assert_true (json_parser_load_from_data (parser, bytes, (gssize) len, NULL));
  sealed = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)),
                                          "sealed");
  g_assert_cmpstr (json_object_get_string_member (sealed, "kdf"), ==, "argon2id");
  g_assert_cmpint (json_object_get_int_member (sealed, "t"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (sealed, "m"), ==, 65536);
  g_assert_cmpint (json_object_get_int_member (sealed, "p"), ==, 1);
  /* The loader takes the costs from the file, whatever the environment. */
  loaded = load_ok (f->path, "a real passphrase");
  assert_keyrings_equal (keyring, loaded);
}

static void
test_passphrase_wrong (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autofree char *content = NULL;
  g_autofree char *backup = g_strconcat (f->path, "~", NULL);
  GError *error = NULL;
  gsize len;

  g_assert_false (e2ee_keyring_set_passphrase (keyring, "", &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
  g_clear_error (&error);
  g_assert_false (e2ee_keyring_is_protected (keyring));

  set_passphrase_ok (keyring, "secret one");
  save_ok (keyring);
  content = read_bytes (f->path, &len);

  load_fails (f->path, "secret two", E2EE_ERROR_KEYRING_PASSPHRASE);
  load_fails (f->path, "Secret one", E2EE_ERROR_KEYRING_PASSPHRASE);
  load_fails (f->path, NULL, E2EE_ERROR_KEYRING_PASSPHRASE);
  load_fails (f->path, "", E2EE_ERROR_KEYRING_PASSPHRASE);
  {
    g_autofree char *after = NULL;
    gsize after_len;
    after = read_bytes (f->path, &after_len);
    g_assert_cmpmem (after, after_len, content, len);
  }
  g_assert_false (g_file_test (backup, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_temp_files (f->dir), ==, 0);
  e2ee_keyring_free (load_ok (f->path, "secret one"));
}

/* Changing the clear part of a protected file (say, a device's trust)
 * breaks the seal, even with the right passphrase. */
static void
test_passphrase_tamper (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autofree char *content = NULL;
  gsize len;
  g_autoptr (GString) tampered = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  gsize text_len;

  set_passphrase_ok (keyring, "pw");
  save_ok (keyring);
  content = read_bytes (f->path, &len);

  tampered = g_string_new_len (content, (gssize) len);
  g_assert_cmpuint (g_string_replace (tampered, "\"undecided\"", "\"verified\"", 1), ==, 1);
  write_private (f->path, tampered->str, (gssize) tampered->len);
  check_refused_untouched_pw (f, "pw", tampered->str, tampered->len, E2EE_ERROR_KEYRING_CORRUPT);

  /* Dropping a whole buddy. */
  g_assert_true (json_parser_load_from_data (parser, content, (gssize) len, NULL));
  root = json_node_copy (json_parser_get_root (parser));
  json_array_remove_element (json_object_get_array_member (account0 (json_node_get_object (root)),
                                                           "buddies"), 3);
  text = to_json (root, &text_len);
  write_private (f->path, text, (gssize) text_len);
  check_refused_untouched_pw (f, "pw", text, text_len, E2EE_ERROR_KEYRING_CORRUPT);

  /* Derived keys in clear next to a seal. */
  {
    g_autoptr (JsonParser) p2 = json_parser_new ();
    g_autoptr (JsonNode) r2 = NULL;
    g_autofree char *t2 = NULL;
    gsize t2_len;
    JsonObject *d;

    g_assert_true (json_parser_load_from_data (p2, content, (gssize) len, NULL));
    r2 = json_node_copy (json_parser_get_root (p2));
    d = json_object_new ();
    json_object_set_int_member (d, "local_caps", 1);
    json_object_set_object_member (bob_device0 (json_node_get_object (r2)), "derived", d);
    t2 = to_json (r2, &t2_len);
    write_private (f->path, t2, (gssize) t2_len);
    check_refused_untouched_pw (f, "pw", t2, t2_len, E2EE_ERROR_KEYRING_CORRUPT);
  }

  /* The original still opens. */
  write_private (f->path, content, (gssize) len);
  e2ee_keyring_free (load_ok (f->path, "pw"));
}

static void
collect_secrets (E2eeKeyring *keyring, GPtrArray *out)
{
  GPtrArray *accounts = e2ee_keyring_get_accounts (keyring);

  for (guint a = 0; a < accounts->len; a++)
    {
      E2eeAccountRecord *acc = g_ptr_array_index (accounts, a);
      g_autoptr (JsonObject) jwk = e2ee_key_to_jwk_object (acc->identity, TRUE, FALSE);
      GHashTableIter iter;
      gpointer value;

      g_ptr_array_add (out, g_strdup (json_object_get_string_member (jwk, "d")));
      g_hash_table_iter_init (&iter, acc->buddies);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          E2eeBuddyRecord *b = value;
          for (guint d = 0; d < b->devices->len; d++)
            {
              E2eeDeviceRecord *dev = g_ptr_array_index (b->devices, d);
              if (!dev->have_keys)
                continue;
              g_ptr_array_add (out, e2ee_b64url_encode (dev->k_send, E2EE_KEY_LEN));
              g_ptr_array_add (out, e2ee_b64url_encode (dev->k_recv, E2EE_KEY_LEN));
              g_ptr_array_add (out, e2ee_test_hex (dev->k_send, E2EE_KEY_LEN));
            }
        }
    }
}

static void
test_passphrase_hides_secrets (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autoptr (GPtrArray) secrets = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *plain = NULL, *sealed = NULL;
  gsize plain_len, sealed_len;

  collect_secrets (keyring, secrets);
  g_assert_cmpuint (secrets->len, ==, 5);

  /* Unprotected, they are there (so the search below can fail)... */
  save_ok (keyring);
  plain = read_bytes (f->path, &plain_len);
  for (guint i = 0; i < secrets->len; i++)
    {
      const char *secret = g_ptr_array_index (secrets, i);
      if (strlen (secret) != 2 * E2EE_KEY_LEN)   /* hex forms are never written */
        g_assert_nonnull (g_strstr_len (plain, (gssize) plain_len, secret));
    }

  /* ...protected, none is. */
  set_passphrase_ok (keyring, "hunter2");
  save_ok (keyring);
  sealed = read_bytes (f->path, &sealed_len);
  for (guint i = 0; i < secrets->len; i++)
    g_assert_null (g_strstr_len (sealed, (gssize) sealed_len, g_ptr_array_index (secrets, i)));
  g_assert_null (g_strstr_len (sealed, (gssize) sealed_len, "\"d\""));
  g_assert_null (g_strstr_len (sealed, (gssize) sealed_len, "\"derived\""));
  g_assert_null (g_strstr_len (sealed, (gssize) sealed_len, "hunter2"));
}

static void
test_protected_peek (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autofree char *backup = g_strconcat (f->path, "~", NULL);

  g_assert_false (e2ee_keyring_file_is_protected (f->path));
  save_ok (keyring);
  g_assert_false (e2ee_keyring_file_is_protected (f->path));
  set_passphrase_ok (keyring, "pw");
  save_ok (keyring);
  g_assert_true (e2ee_keyring_file_is_protected (f->path));
  /* The backup is the unprotected one; with the main file gone the peek
   * (like a load) looks at it. */
  g_assert_cmpint (unlink (f->path), ==, 0);
  g_assert_false (e2ee_keyring_file_is_protected (f->path));
  g_assert_cmpint (rename (backup, f->path), ==, 0);
  g_assert_false (e2ee_keyring_file_is_protected (f->path));
}

static void
test_save_invalid_values (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  E2eeAccountRecord *acc = e2ee_keyring_lookup_account (keyring, "prpl-jabber", "alice@example.org");
  E2eeDeviceRecord *dev = g_ptr_array_index (e2ee_account_lookup_buddy (acc, "bob@example.org")->devices, 0);
  GError *error = NULL;

  /* Values the loader would refuse are not written. */
  dev->trust = (E2eeTrust) 17;
  g_assert_false (e2ee_keyring_save (keyring, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FAILED);
  g_clear_error (&error);
  dev->trust = E2EE_TRUST_TOFU;
  acc->last_counter = G_GUINT64_CONSTANT (1) << 60;
  g_assert_false (e2ee_keyring_save (keyring, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_false (g_file_test (f->path, G_FILE_TEST_EXISTS));
  acc->last_counter = 1;
  save_ok (keyring);
}

/* ---- The reader and writer of the file format ------------------------ */

/* json-glib's pretty printer (indent 1, the layout the file has always
 * had) applied to @text. */
static char *
reformat_with_json_glib (const char *text, gsize len)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autofree char *body = NULL;

  g_assert_true (json_parser_load_from_data (parser, text, (gssize) len, NULL));
  json_generator_set_root (gen, json_parser_get_root (parser));
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 1);
  body = json_generator_to_data (gen, NULL);
  return g_strconcat (body, "\n", NULL);
}

/* The writer gives byte for byte what json-glib's generator gave, names
 * that need escaping included, and the reader takes them back. */
static void
test_format_layout (Fixture *f, gconstpointer data)
{
  static const char *const names[] = {
    "quote\"back\\slash/solidus",
    "tab\tnew\nline\rcr\bbs\fff",
    "ctl\x01\x02\x1e-del\x7f",
    "caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80",
  };
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  E2eeAccountRecord *acc = g_ptr_array_index (e2ee_keyring_get_accounts (keyring), 0);
  GError *error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    add_device (e2ee_account_ensure_buddy (acc, names[i]), devices[i], E2EE_TRUST_TOFU, i);

  for (guint pass = 0; pass < 2; pass++)
    {
      g_autofree char *text = NULL, *expected = NULL;
      g_autoptr (E2eeKeyring) back = NULL;
      gsize len;

      if (pass == 1)
        {
          g_assert_true (e2ee_keyring_set_passphrase (keyring, "hunter2", &error));
          g_assert_no_error (error);
        }
      save_ok (keyring);
      text = read_bytes (f->path, &len);
      expected = reformat_with_json_glib (text, len);
      g_assert_cmpstr (text, ==, expected);
      back = load_ok (f->path, pass == 1 ? "hunter2" : NULL);
      assert_keyrings_equal (keyring, back);
      for (guint i = 0; i < G_N_ELEMENTS (names); i++)
        g_assert_nonnull (e2ee_account_lookup_buddy (
            g_ptr_array_index (e2ee_keyring_get_accounts (back), 0), names[i]));
    }
}

/* A valid file written by hand: compact, odd whitespace, members in
 * another order, escapes in values. */
static void
test_format_foreign (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) back = NULL;
  g_autofree char *id = e2ee_key_to_jwk (identities[0], TRUE, TRUE);
  g_autofree char *dev = e2ee_key_to_jwk (devices[0], FALSE, TRUE);
  g_autofree char *text = NULL;
  E2eeAccountRecord *acc;
  E2eeBuddyRecord *buddy;
  E2eeDeviceRecord *d;

  text = g_strdup_printf (
      "\r\n\t{\"accounts\":[{\"buddies\":[{\"devices\":[{\"last_seen\":-0,\"first_seen\":7,"
      "\"trust\":\"ver\\u0069fied\",\"jwk\":%s}],\"had_encrypted\":false,\"key_changed\":true,"
      "\"policy\":\"off\",\"name\":\"b\\u00e9b\\ud83d\\ude00\\/\\\"x\\\\\"}],"
      "\"last_counter\":9007199254740991,\"identity\":%s,\"name\":\"a\",\"protocol\":\"p\"}],"
      "\"version\" :\t1 , \"format\"\n:\"purple-e2ee-keyring\"}\n\n",
      dev, id);
  write_private (f->path, text, -1);
  back = load_ok (f->path, NULL);
  acc = e2ee_keyring_lookup_account (back, "p", "a");
  g_assert_nonnull (acc);
  g_assert_cmpuint (acc->last_counter, ==, G_GUINT64_CONSTANT (9007199254740991));
  g_assert_true (e2ee_key_equal (acc->identity, identities[0]));
  buddy = e2ee_account_lookup_buddy (acc, "b\xc3\xa9" "b\xf0\x9f\x98\x80/\"x\\");
  g_assert_nonnull (buddy);
  g_assert_cmpint (buddy->policy, ==, E2EE_POLICY_OFF);
  g_assert_true (buddy->key_changed);
  g_assert_cmpuint (buddy->devices->len, ==, 1);
  d = g_ptr_array_index (buddy->devices, 0);
  g_assert_true (e2ee_key_equal (d->key, devices[0]));
  g_assert_cmpint (d->trust, ==, E2EE_TRUST_VERIFIED);
  g_assert_cmpint (d->first_seen, ==, 7);
  g_assert_cmpint (d->last_seen, ==, 0);
}

/* What the reader refuses beyond the cases json-glib would already. */
static void
test_format_strict_text (Fixture *f, gconstpointer data)
{
  static const char *const texts[] = {
    "\xef\xbb\xbf{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":01,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":+1,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1.,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1e,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":-,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1.00000000000000000,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[],}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[1,]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[nulll]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[True]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[] \"x\":1}",
    "{\"format\" \"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[],\"format\":\"x\"}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"\\q\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"\\u12\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"\\u0000\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"\\ud800\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"\\ud800\\u0041\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"\\udc00\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"a\tb\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"a\x1f\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"\xff\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"\xc0\xaf\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"\xe2\x82\"]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"unterminated]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[\"end\\",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}\x0b",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[1 2]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[{1:2}]}",
    "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[{\"a\" 2}]}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_test_message ("text %u: %s", i, texts[i]);
      write_private (f->path, texts[i], -1);
      check_refused_untouched (f, texts[i], strlen (texts[i]), E2EE_ERROR_KEYRING_CORRUPT);
    }

  /* Nesting: 16 levels are read (and then refused as a keyring: the
   * accounts are not objects), 17 are not parsed at all. */
  for (guint depth = 16; depth <= 17; depth++)
    {
      GString *text = g_string_new ("{\"format\":\"purple-e2ee-keyring\",\"version\":1,"
                                    "\"accounts\":");
      g_autoptr (GError) error = NULL;
      E2eeKeyring *k;

      for (guint i = 2; i <= depth; i++)
        g_string_append_c (text, '[');
      for (guint i = 2; i <= depth; i++)
        g_string_append_c (text, ']');
      g_string_append_c (text, '}');
      write_private (f->path, text->str, (gssize) text->len);
      k = e2ee_keyring_load (f->path, NULL, &error);
      g_assert_null (k);
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
      g_test_message ("depth %u: %s", depth, error->message);
      if (depth == 16)
        g_assert_nonnull (strstr (error->message, "not an object"));
      else
        g_assert_nonnull (strstr (error->message, "deeper"));
      g_string_free (text, TRUE);
    }
}

/* Replaces the first occurrence of @from in @text with @to. */
static char *
replace_once (const char *text, const char *from, const char *to)
{
  const char *at = strstr (text, from);

  g_assert_nonnull (at);
  return g_strdup_printf ("%.*s%s%s", (int) (at - text), text, to, at + strlen (from));
}

/* A file with one buddy whose device JWK is @jwk (a JSON object). */
static char *
file_with_device_jwk (const char *jwk, const char *send)
{
  g_autofree char *id = e2ee_key_to_jwk (identities[0], TRUE, TRUE);

  return g_strdup_printf (
      "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[{\"protocol\":\"p\","
      "\"name\":\"a\",\"identity\":%s,\"last_counter\":0,\"buddies\":[{\"name\":\"b\","
      "\"policy\":\"default\",\"key_changed\":false,\"had_encrypted\":false,\"devices\":"
      "[{\"jwk\":%s,\"trust\":\"tofu\",\"first_seen\":1,\"last_seen\":2,\"derived\":"
      "{\"local_caps\":1,\"remote_caps\":1,\"send\":\"%s\","
      "\"recv\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}]}]}]}",
      id, jwk, send);
}

/* Device keys are read from the tree without the JWK module's parser:
 * every variant must be taken or refused exactly as that parser does. */
static void
test_format_device_jwk_rules (Fixture *f, gconstpointer data)
{
  g_autofree char *jwk = e2ee_key_to_jwk (devices[0], FALSE, TRUE);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o;
  const char *x, *y, *kid;
  GString *many = g_string_new ("{");
  g_autofree char *many_dup = NULL;
  g_autofree char *x_padded = NULL, *x_short = NULL, *x_long = NULL, *x_bits = NULL;
  g_autofree char *x_plus = NULL, *x_p = NULL, *off_curve_y = NULL;
  g_autofree char *kid_other = NULL, *bad_y = NULL;
  g_autoptr (GPtrArray) variants = g_ptr_array_new_with_free_func (g_free);
  const guint8 p256_p[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  };

  g_assert_true (json_parser_load_from_data (parser, jwk, -1, NULL));
  o = json_node_get_object (json_parser_get_root (parser));
  x = json_object_get_string_member (o, "x");
  y = json_object_get_string_member (o, "y");
  kid = json_object_get_string_member (o, "kid");
  x_padded = g_strconcat (x, "=", NULL);
  x_short = g_strndup (x, 42);
  x_long = g_strconcat (x, "A", NULL);
  x_bits = g_strdup (x);
  /* The 43rd character carries 2 bits that must be zero. */
  x_bits[42] = x[42] == 'A' ? 'B' : (x[42] == 'B' ? 'A' : (char) (x[42] ^ 1));
  x_plus = g_strdup (x);
  x_plus[5] = '+';
  x_p = e2ee_b64url_encode (p256_p, sizeof p256_p);
  off_curve_y = g_strdup (y);
  off_curve_y[10] = y[10] == 'Q' ? 'R' : 'Q';
  kid_other = g_strdup (e2ee_key_get_kid (devices[1]));
  bad_y = g_strdup (y);
  bad_y[0] = '.';

#define V(...) g_ptr_array_add (variants, g_strdup_printf (__VA_ARGS__))
  V ("%s", jwk);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x, y, kid);
  V ("{\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x, y, kid);
  V ("{\"kty\":\"RSA\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x, y, kid);
  V ("{\"kty\":1,\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x, y, kid);
  V ("{\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"y\":\"%s\",\"kid\":\"%s\"}", y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"kid\":\"%s\"}", x, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":7,\"y\":\"%s\",\"kid\":\"%s\"}", y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x_padded, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x_short, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x_long, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x_bits, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x_plus, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x, bad_y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x_p, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x, off_curve_y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", x, y, kid_other);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":5}", x, y);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"d\":\"%s\"}", x, y, kid, x);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"d\":null}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"use\":\"enc\",\"alg\":[]}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":[1,2]}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":[4,1,9,64]}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":[2]}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":[]}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":[1,0]}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":[1,65]}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":[1.0]}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":[\"1\"]}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":1}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":"
     "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}", x, y, kid);
  V ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\",\"e2ee_v\":"
     "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}", x, y, kid);
#undef V
  /* Many members: the duplicate check switches to a table. */
  for (guint i = 0; i < 40; i++)
    g_string_append_printf (many, "\"extra%u\":%u,", i, i);
  g_string_append_printf (many, "\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\","
                          "\"kid\":\"%s\"}", x, y, kid);
  many_dup = replace_once (many->str, "\"extra39\"", "\"extra3\"");
  g_ptr_array_add (variants, g_string_free (many, FALSE));

  for (guint i = 0; i < variants->len; i++)
    {
      const char *v = g_ptr_array_index (variants, i);
      g_autoptr (GError) jwk_error = NULL, load_error = NULL;
      g_autoptr (E2eeKey) ref = e2ee_key_from_jwk (v, -1, E2EE_KEY_EXPECT_PUBLIC, &jwk_error);
      g_autofree char *text = file_with_device_jwk (v, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
      g_autoptr (E2eeKeyring) k = NULL;

      g_test_message ("variant %u: %s -> %s", i, v, ref != NULL ? "valid" : jwk_error->message);
      write_private (f->path, text, -1);
      k = e2ee_keyring_load (f->path, NULL, &load_error);
      if (ref == NULL)
        {
          g_assert_null (k);
          g_assert_error (load_error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
          continue;
        }
      g_assert_no_error (load_error);
      {
        E2eeAccountRecord *acc = e2ee_keyring_lookup_account (k, "p", "a");
        E2eeBuddyRecord *b = e2ee_account_lookup_buddy (acc, "b");
        E2eeDeviceRecord *d = g_ptr_array_index (b->devices, 0);

        g_assert_true (e2ee_key_equal (d->key, ref));
        g_assert_cmpuint (e2ee_key_get_caps (d->key), ==, e2ee_key_get_caps (ref));
        g_assert_cmpstr (e2ee_key_get_kid (d->key), ==, e2ee_key_get_kid (ref));
      }
    }

  /* A duplicate among many members is found too. */
  {
    g_autofree char *text = file_with_device_jwk (many_dup, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    write_private (f->path, text, -1);
    check_refused_untouched (f, text, strlen (text), E2EE_ERROR_KEYRING_CORRUPT);
  }
}

/* Fixed-length base64url fields (here a derived key) follow the rules of
 * e2ee_b64url_decode. */
static void
test_format_base64 (Fixture *f, gconstpointer data)
{
  g_autofree char *jwk = e2ee_key_to_jwk (devices[0], FALSE, TRUE);
  static const char *const sends[] = {
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-4",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzw",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/A",
    "AAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "",
  };

  for (guint i = 0; i < G_N_ELEMENTS (sends); i++)
    {
      gsize n = 0;
      guint8 *raw = e2ee_b64url_decode (sends[i], strlen (sends[i]), &n, NULL);
      gboolean valid = raw != NULL && n == E2EE_KEY_LEN;
      g_autofree char *text = file_with_device_jwk (jwk, sends[i]);

      g_test_message ("send \"%s\": %s", sends[i], valid ? "valid" : "invalid");
      write_private (f->path, text, -1);
      if (valid)
        {
          g_autoptr (E2eeKeyring) k = load_ok (f->path, NULL);
          E2eeBuddyRecord *b = e2ee_account_lookup_buddy (
              e2ee_keyring_lookup_account (k, "p", "a"), "b");
          E2eeDeviceRecord *d = g_ptr_array_index (b->devices, 0);

          g_assert_true (d->have_keys);
          g_assert_cmpmem (d->k_send, E2EE_KEY_LEN, raw, n);
        }
      else
        check_refused_untouched (f, text, strlen (text), E2EE_ERROR_KEYRING_CORRUPT);
      e2ee_secret_free (raw, n);
    }
}

/* Names that are not UTF-8 would give a file no reader accepts: the save
 * is refused instead. */
static void
test_save_invalid_utf8 (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  E2eeAccountRecord *acc = g_ptr_array_index (e2ee_keyring_get_accounts (keyring), 0);
  GError *error = NULL;

  e2ee_account_ensure_buddy (acc, "bad\xff");
  g_assert_false (e2ee_keyring_save (keyring, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_false (g_file_test (f->path, G_FILE_TEST_EXISTS));
  g_assert_true (e2ee_account_remove_buddy (acc, "bad\xff"));
  save_ok (keyring);
}

/* ---- Saving over a file that changed since it was loaded or saved ---- */

static void
overwrite_in_place (const char *path, const char *data, gsize len)
{
  int fd = open (path, O_WRONLY);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, data, len), ==, (gssize) len);
  g_assert_cmpint (close (fd), ==, 0);
}

static void
test_replace_changed_file (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autoptr (E2eeKeyring) loaded = NULL;
  g_autoptr (E2eeKeyring) other = NULL;
  g_autofree char *valid = NULL;
  g_autofree char *junk = NULL;
  GError *error = NULL;
  gsize len;

  save_ok (keyring);
  save_ok (keyring);            /* its own file: replaced */
  valid = read_bytes (f->path, &len);
  junk = g_strnfill (len, 'x');

  /* Rewritten in place right after our save, same size: possibly within
   * the same timestamp tick, where only the checksum tells. */
  overwrite_in_place (f->path, junk, len);
  g_assert_false (e2ee_keyring_save (keyring, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  check_refused_untouched (f, junk, len, E2EE_ERROR_KEYRING_CORRUPT);

  /* Loaded, then replaced by another file (a new inode). */
  write_private (f->path, valid, (gssize) len);
  loaded = load_ok (f->path, NULL);
  {
    g_autofree char *tmp = g_strconcat (f->path, ".new", NULL);
    write_private (tmp, junk, (gssize) len);
    g_assert_cmpint (rename (tmp, f->path), ==, 0);
  }
  g_assert_false (e2ee_keyring_save (loaded, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);

  /* Loaded, then made readable by others. */
  write_private (f->path, valid, (gssize) len);
  g_clear_pointer (&loaded, e2ee_keyring_free);
  loaded = load_ok (f->path, NULL);
  g_assert_cmpint (chmod (f->path, 0644), ==, 0);
  g_assert_false (e2ee_keyring_save (loaded, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS);
  g_clear_error (&error);
  g_assert_cmpint (chmod (f->path, 0600), ==, 0);

  /* Saved meanwhile by another keyring: still a keyring, so replaced. */
  other = load_ok (f->path, NULL);
  e2ee_account_ensure_buddy (g_ptr_array_index (e2ee_keyring_get_accounts (other), 0),
                             "erin@example.org");
  save_ok (other);
  save_ok (loaded);
  {
    g_autoptr (E2eeKeyring) back = load_ok (f->path, NULL);
    assert_keyrings_equal (loaded, back);
  }

  /* Loaded from the backup (the file itself missing): saved in place. */
  {
    g_autofree char *backup = g_strconcat (f->path, "~", NULL);
    g_autoptr (E2eeKeyring) from_backup = NULL;

    g_assert_cmpint (rename (f->path, backup), ==, 0);
    from_backup = load_ok (f->path, NULL);
    save_ok (from_backup);
    g_assert_true (g_file_test (f->path, G_FILE_TEST_EXISTS));
  }
}

/* The same, for a file whose stat data are old (not within a tick of a
 * change): only the stat data decide, and a change shows in them. */
static void
test_replace_changed_old_file (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autoptr (E2eeKeyring) loaded = NULL;
  g_autofree char *valid = NULL, *junk = NULL;
  struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
  GError *error = NULL;
  gsize len;

  save_ok (keyring);
  valid = read_bytes (f->path, &len);
  junk = g_strnfill (len, 'y');
  g_assert_cmpint (utimensat (AT_FDCWD, f->path, old, 0), ==, 0);
  /* The ctime is now; wait until it is old enough to be trusted. */
  g_usleep (2100 * 1000);
  loaded = load_ok (f->path, NULL);
  save_ok (loaded);             /* unchanged: replaced */

  g_assert_cmpint (utimensat (AT_FDCWD, f->path, old, 0), ==, 0);
  g_usleep (2100 * 1000);
  g_clear_pointer (&loaded, e2ee_keyring_free);
  loaded = load_ok (f->path, NULL);
  /* Rewritten with the mtime put back: the ctime still moves. */
  overwrite_in_place (f->path, junk, len);
  g_assert_cmpint (utimensat (AT_FDCWD, f->path, old, 0), ==, 0);
  g_assert_false (e2ee_keyring_save (loaded, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_clear_error (&error);
  check_refused_untouched (f, junk, len, E2EE_ERROR_KEYRING_CORRUPT);
}

/* Buddies are read as records while the file is read: the paths around
 * that (order of members, another version, protected files, elements
 * larger than one block of tree nodes). */
static void
test_format_streaming (Fixture *f, gconstpointer data)
{
  g_autofree char *id = e2ee_key_to_jwk (identities[0], TRUE, TRUE);
  GError *error = NULL;

  /* Account members after the buddies. */
  {
    g_autofree char *dev = e2ee_key_to_jwk (devices[1], FALSE, TRUE);
    g_autofree char *text = g_strdup_printf (
        "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[{\"buddies\":"
        "[{\"name\":\"b\",\"policy\":\"required\",\"key_changed\":false,\"had_encrypted\":true,"
        "\"devices\":[{\"jwk\":%s,\"trust\":\"tofu\",\"first_seen\":1,\"last_seen\":2}]},"
        "{\"name\":\"c\",\"policy\":\"default\",\"key_changed\":false,\"had_encrypted\":false,"
        "\"devices\":[]}],\"last_counter\":3,\"identity\":%s,\"name\":\"a\",\"protocol\":\"p\"}]}",
        dev, id);
    g_autoptr (E2eeKeyring) k = NULL;
    E2eeAccountRecord *acc;
    E2eeBuddyRecord *b;

    write_private (f->path, text, -1);
    k = load_ok (f->path, NULL);
    acc = e2ee_keyring_lookup_account (k, "p", "a");
    g_assert_nonnull (acc);
    g_assert_cmpuint (g_hash_table_size (acc->buddies), ==, 2);
    b = e2ee_account_lookup_buddy (acc, "b");
    g_assert_cmpint (b->policy, ==, E2EE_POLICY_REQUIRED);
    g_assert_true (e2ee_key_equal (((E2eeDeviceRecord *) b->devices->pdata[0])->key, devices[1]));
    g_assert_cmpuint (e2ee_account_lookup_buddy (acc, "c")->devices->len, ==, 0);
  }

  /* A newer version is reported as such, whatever its buddies hold. */
  {
    static const char newer[] =
      "{\"format\":\"purple-e2ee-keyring\",\"version\":2,\"accounts\":[{\"protocol\":\"p\","
      "\"name\":\"a\",\"buddies\":[{\"name\":7,\"shape\":\"new\"}]}]}";

    write_private (f->path, newer, -1);
    check_refused_untouched (f, newer, strlen (newer), E2EE_ERROR_KEYRING_VERSION);
  }

  /* A bad buddy: located by account and index. */
  {
    g_autofree char *text = g_strdup_printf (
        "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[{\"protocol\":\"p\","
        "\"name\":\"a\",\"identity\":%s,\"last_counter\":0,\"buddies\":[{\"name\":\"ok\","
        "\"policy\":\"default\",\"key_changed\":false,\"had_encrypted\":false,\"devices\":[]},"
        "{\"name\":\"bad\",\"policy\":\"sometimes\",\"key_changed\":false,"
        "\"had_encrypted\":false,\"devices\":[]}]}]}", id);
    E2eeKeyring *k;

    write_private (f->path, text, -1);
    k = e2ee_keyring_load (f->path, NULL, &error);
    g_assert_null (k);
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, "accounts[0] (p \"a\").buddies[1] (\"bad\")"));
    g_clear_error (&error);
  }

  /* Derived keys in clear in a protected file, in the document order
   * that the writer uses ("sealed" after the buddies). */
  {
    g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
    g_autoptr (JsonParser) parser = json_parser_new ();
    g_autofree char *text = NULL, *mutated = NULL;
    JsonObject *derived;
    gsize len;

    g_assert_true (e2ee_keyring_set_passphrase (keyring, "pw", &error));
    g_assert_no_error (error);
    /* (The file there is the corrupt one above.) */
    g_assert_cmpint (unlink (f->path), ==, 0);
    save_ok (keyring);
    e2ee_keyring_free (load_ok (f->path, "pw"));
    text = read_bytes (f->path, &len);
    g_assert_true (json_parser_load_from_data (parser, text, (gssize) len, NULL));
    derived = json_object_new ();
    json_object_set_int_member (derived, "local_caps", 1);
    json_object_set_int_member (derived, "remote_caps", 1);
    json_object_set_string_member (derived, "send", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    json_object_set_string_member (derived, "recv", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    json_object_set_object_member (bob_device0 (json_node_get_object (json_parser_get_root (parser))),
                                   "derived", derived);
    mutated = to_json (json_parser_get_root (parser), &len);
    g_assert_nonnull (strstr (mutated, "\"sealed\""));
    g_assert_true (strstr (mutated, "\"derived\"") < strstr (mutated, "\"sealed\""));
    write_private (f->path, mutated, (gssize) len);
    check_refused_untouched_pw (f, "pw", mutated, len, E2EE_ERROR_KEYRING_CORRUPT);
    check_refused_untouched_pw (f, NULL, mutated, len, E2EE_ERROR_KEYRING_CORRUPT);
  }

  /* Buddies whose trees need several blocks of nodes each (a key with
   * thousands of ignored members), one after the other. */
  {
    GString *text = g_string_new (NULL);
    g_autoptr (E2eeKeyring) k = NULL;
    E2eeAccountRecord *acc;

    g_string_append_printf (text, "{\"format\":\"purple-e2ee-keyring\",\"version\":1,"
                            "\"accounts\":[{\"protocol\":\"p\",\"name\":\"a\",\"identity\":%s,"
                            "\"last_counter\":0,\"buddies\":[", id);
    for (guint b = 0; b < N_DEVICES; b++)
      {
        g_autofree char *dev = e2ee_key_to_jwk (devices[b], FALSE, TRUE);

        g_string_append_printf (text, "%s{\"name\":\"b%u\",\"policy\":\"default\","
                                "\"key_changed\":false,\"had_encrypted\":false,\"devices\":"
                                "[{\"trust\":\"tofu\",\"first_seen\":1,\"last_seen\":2,\"jwk\":{",
                                b == 0 ? "" : ",", b);
        for (guint i = 0; i < 3000 * (b + 1); i++)
          g_string_append_printf (text, "\"x-%u\":[%u],", i, i);
        /* The JWK's own members, without its opening brace. */
        g_string_append (text, dev + 1);
        g_string_append (text, "}]}");
      }
    g_string_append (text, "]}]}");
    write_private (f->path, text->str, (gssize) text->len);
    k = load_ok (f->path, NULL);
    acc = e2ee_keyring_lookup_account (k, "p", "a");
    for (guint b = 0; b < N_DEVICES; b++)
      {
        g_autofree char *name = g_strdup_printf ("b%u", b);
        E2eeBuddyRecord *buddy = e2ee_account_lookup_buddy (acc, name);

        g_assert_nonnull (buddy);
        g_assert_true (e2ee_key_equal (((E2eeDeviceRecord *) buddy->devices->pdata[0])->key,
                                       devices[b]));
      }
    g_string_free (text, TRUE);
  }
}

/* A file large enough for the device keys to be made on a second thread
 * while the reader goes on: same results, and the first failure in file
 * order is the one reported. */
#define BIG_BUDDIES 1500

static E2eeKeyring *
make_big_keyring (const char *path)
{
  E2eeKeyring *keyring = e2ee_keyring_new (path);
  E2eeAccountRecord *acc = e2ee_keyring_add_account (keyring, "prpl-jabber", "me@example.org",
                                                     identities[0]);

  for (guint i = 0; i < BIG_BUDDIES; i++)
    {
      g_autofree char *name = g_strdup_printf ("b%05u", i);
      E2eeBuddyRecord *buddy = e2ee_account_ensure_buddy (acc, name);
      E2eeDeviceRecord *dev = add_device (buddy, devices[i % N_DEVICES], E2EE_TRUST_TOFU, i);

      dev->replay_init = TRUE;
      dev->replay_high = i;
      dev->have_keys = TRUE;
      dev->keys_local_caps = 1;
      dev->keys_remote_caps = 1;
      memset (dev->k_send, (int) (i & 0xff), E2EE_KEY_LEN);
      if (i % 7 == 0)
        add_device (buddy, devices[(i + 1) % N_DEVICES], E2EE_TRUST_VERIFIED, i);
    }
  return keyring;
}

/* @text with the first @what after the buddy named @name replaced by @to. */
static char *
edit_buddy (const char *text, const char *name, const char *what, const char *to)
{
  g_autofree char *needle = g_strdup_printf ("\"name\" : \"%s\"", name);
  const char *at = strstr (text, needle);
  g_autofree char *head = NULL;
  g_autofree char *tail = NULL;

  g_assert_nonnull (at);
  head = g_strndup (text, (gsize) (at - text));
  tail = replace_once (at, what, to);
  return g_strconcat (head, tail, NULL);
}

static void
load_fails_with (const char *path, const char *expect_in_message)
{
  GError *error = NULL;
  E2eeKeyring *k = e2ee_keyring_load (path, NULL, &error);

  g_assert_null (k);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, expect_in_message));
  g_error_free (error);
}

static void
test_big_file (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_big_keyring (f->path);
  g_autofree char *valid = NULL;
  g_autofree char *kid0 = g_strdup_printf ("\"kid\" : \"%s\"", e2ee_key_get_kid (devices[0]));
  g_autofree char *kid2 = g_strdup_printf ("\"kid\" : \"%s\"", e2ee_key_get_kid (devices[2]));
  gsize len;

  save_ok (keyring);
  valid = read_bytes (f->path, &len);
  g_assert_cmpuint (len, >, 1024 * 1024);

  /* Read back whole. */
  {
    g_autoptr (E2eeKeyring) back = load_ok (f->path, NULL);
    assert_keyrings_equal (keyring, back);
  }

  /* A kid that is not the key's, far into the file. */
  {
    g_autofree char *text = edit_buddy (valid, "b01000", kid0, kid2);
    write_private (f->path, text, -1);
    load_fails_with (f->path, "buddies[1000] (\"b01000\").devices[0]: bad key: JWK \"kid\"");
  }

  /* A point off the curve, then a bad trust further on: the key, being
   * first, is reported. */
  {
    g_autofree char *x = e2ee_b64url_encode (e2ee_key_get_x (devices[0]), E2EE_KEY_COORD_LEN);
    g_autofree char *from = g_strdup_printf ("\"x\" : \"%s\"", x);
    g_autofree char *to = g_strdup (from);
    g_autofree char *step = NULL, *text = NULL;
    g_autofree char *last = g_strdup_printf ("b%05u", BIG_BUDDIES - 1);

    to[10] = to[10] == 'A' ? 'B' : 'A';
    step = edit_buddy (valid, "b00700", from, to);
    text = edit_buddy (step, "b01200", "\"trust\" : \"tofu\"", "\"trust\" : \"none\"");
    write_private (f->path, text, -1);
    load_fails_with (f->path, "buddies[700] (\"b00700\").devices[0]: bad key");

    /* The bad trust alone. */
    g_free (text);
    text = edit_buddy (valid, "b01200", "\"trust\" : \"tofu\"", "\"trust\" : \"none\"");
    write_private (f->path, text, -1);
    load_fails_with (f->path, "buddies[1200] (\"b01200\").devices[0]: unknown trust");

    /* A bad buddy at the very end, after every key was handed over. */
    g_free (text);
    text = edit_buddy (valid, last, "\"policy\" : \"default\"", "\"policy\" : \"never\"");
    write_private (f->path, text, -1);
    load_fails_with (f->path, "unknown policy");
  }

  /* The same device twice in one buddy (told apart by coordinates
   * before any key is made). */
  {
    E2eeBuddyRecord *b = e2ee_account_lookup_buddy (
        e2ee_keyring_lookup_account (keyring, "prpl-jabber", "me@example.org"), "b00901");

    g_assert_cmpint (unlink (f->path), ==, 0);
    add_device (b, devices[901 % N_DEVICES], E2EE_TRUST_TOFU, 5);
    save_ok (keyring);
    load_fails_with (f->path, "buddies[901] (\"b00901\").devices[1]: duplicate device");
  }
}

/* A writer killed mid-save leaves its temporary file (a copy of the
 * secrets); the next save removes it, and nothing else in the folder. */
static void
test_stale_temp_files (Fixture *f, gconstpointer data)
{
  g_autoptr (E2eeKeyring) keyring = make_keyring (f->path);
  g_autofree char *stale = g_strconcat (f->path, ".tmp-Ab12Cd", NULL);
  g_autofree char *other = g_build_filename (f->dir, "notes.tmp-Ab12Cd", NULL);
  g_autofree char *longer = g_strconcat (f->path, ".tmp-Ab12Cd.keep", NULL);
  GError *error = NULL;

  g_assert_true (g_file_set_contents (stale, "{\"half\":", -1, NULL));
  g_assert_true (g_file_set_contents (other, "x", -1, NULL));
  g_assert_true (g_file_set_contents (longer, "x", -1, NULL));
  g_assert_true (e2ee_keyring_save (keyring, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (stale, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (longer, G_FILE_TEST_EXISTS));
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  /* Cheap KDF parameters for the passphrase tests (test-only switch). */
  g_setenv ("E2EE_TEST_FAST_KDF", "1", TRUE);

  for (guint i = 0; i < N_IDENTITIES; i++)
    {
      GError *error = NULL;
      identities[i] = e2ee_key_generate (&error);
      g_assert_no_error (error);
    }
  for (guint i = 0; i < N_DEVICES; i++)
    {
      GError *error = NULL;
      g_autoptr (E2eeKey) pair = e2ee_key_generate (&error);
      g_assert_no_error (error);
      devices[i] = e2ee_key_public_copy (pair);
    }

#define ADD(name, fn) \
  g_test_add (name, Fixture, NULL, fixture_setup, fn, fixture_teardown)

  g_test_add_func ("/keyring/enums", test_enums);
  g_test_add_func ("/keyring/records", test_records);
  ADD ("/keyring/missing", test_missing);
  ADD ("/keyring/roundtrip", test_roundtrip);
  ADD ("/keyring/file-modes", test_file_modes);
  ADD ("/keyring/backup", test_backup);
  ADD ("/keyring/recover-from-backup", test_recover_from_backup);
  ADD ("/keyring/corrupt/untouched", test_corrupt_untouched);
  ADD ("/keyring/corrupt/cases", test_corruption_cases);
  ADD ("/keyring/corrupt/text", test_corruption_text);
  ADD ("/keyring/corrupt/vector-files", test_vector_files);
  ADD ("/keyring/newer-version", test_newer_version_not_replaced);
  ADD ("/keyring/permissions", test_permissions);
  ADD ("/keyring/size-limit", test_size_limit);
  ADD ("/keyring/save-fails/not-a-directory", test_save_not_a_directory);
  ADD ("/keyring/save-fails/backup-blocked", test_save_backup_blocked);
  ADD ("/keyring/save-fails/read-only-folder", test_save_read_only_folder);
  ADD ("/keyring/save-fails/invalid-values", test_save_invalid_values);
  ADD ("/keyring/locked", test_locked);
  ADD ("/keyring/passphrase/roundtrip", test_passphrase_roundtrip);
  ADD ("/keyring/passphrase/wrong", test_passphrase_wrong);
  ADD ("/keyring/passphrase/default-cost", test_passphrase_default_cost);
  ADD ("/keyring/passphrase/tamper", test_passphrase_tamper);
  ADD ("/keyring/passphrase/hides-secrets", test_passphrase_hides_secrets);
  ADD ("/keyring/passphrase/peek", test_protected_peek);
  ADD ("/keyring/format/layout", test_format_layout);
  ADD ("/keyring/format/foreign", test_format_foreign);
  ADD ("/keyring/format/strict-text", test_format_strict_text);
  ADD ("/keyring/format/device-jwk-rules", test_format_device_jwk_rules);
  ADD ("/keyring/format/base64", test_format_base64);
  ADD ("/keyring/format/streaming", test_format_streaming);
  ADD ("/keyring/format/big-file", test_big_file);
  ADD ("/keyring/save-fails/invalid-utf8", test_save_invalid_utf8);
  ADD ("/keyring/replace/changed", test_replace_changed_file);
  ADD ("/keyring/replace/changed-old-file", test_replace_changed_old_file);
  ADD ("/keyring/stale-temp-files", test_stale_temp_files);

  {
    int ret = g_test_run ();
    for (guint i = 0; i < N_IDENTITIES; i++)
      e2ee_key_unref (identities[i]);
    for (guint i = 0; i < N_DEVICES; i++)
      e2ee_key_unref (devices[i]);
    return ret;
  }
}
