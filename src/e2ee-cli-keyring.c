/* purple-e2ee keyring show | export | import: the keyring database from
 * the command line (and show for a version 1 keyring.json).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2ee-cli-keyring.h"
#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-fingerprint.h"
#include "e2ee-keyring-import.h"
#include "e2ee-keyring.h"
#include "e2ee-store-records.h"
#include "e2ee-wipe.h"

#define USAGE N_("Usage: purple-e2ee keyring show [FILE]\n" \
  "       purple-e2ee keyring export [--passphrase-file P] [-o OUT] [DB]\n" \
  "       purple-e2ee keyring import [--passphrase-file P] FILE [DB]\n\n" \
  "show     summarises a keyring (default ~/.purple/purple-e2ee/keyring.sqlite;\n" \
  "         a version 1 keyring.json too): accounts, fingerprints, buddies'\n" \
  "         keys and their trust.  Never prints a secret and needs no passphrase.\n" \
  "export   writes the backup (JSON: identities with their PRIVATE keys, pinned\n" \
  "         keys, trust; no session or replay state) to OUT (created 0600) or stdout.\n" \
  "import   restores a backup, or a version 1 keyring.json, into a NEW keyring\n" \
  "         database; with --passphrase-file the database is sealed with it.\n" \
  "The passphrase is the first line of file P.\n")

static int
fail (GError *error)
{
  g_printerr ("purple-e2ee: %s\n", error->message);
  g_error_free (error);
  return 1;
}

static int
usage (void)
{
  g_printerr ("%s", _(USAGE));
  return 2;
}

static char *
default_db (void)
{
  return g_build_filename (g_get_home_dir (), ".purple", "purple-e2ee", "keyring.sqlite", NULL);
}

static gboolean
is_database (const char *path)
{
  char head[16] = { 0 };
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t n;

  if (g_str_has_suffix (path, ".sqlite"))
    {
      if (fd >= 0)
        close (fd);
      return TRUE;
    }
  if (fd < 0)
    return FALSE;
  n = read (fd, head, sizeof head);
  close (fd);
  return n == 0 || (n == 16 && memcmp (head, "SQLite format 3", 16) == 0);
}

/* The first line of @path (a secret: free with e2ee_string_free). */
static char *
read_passphrase (const char *path, GError **error)
{
  char *text = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  text[strcspn (text, "\r\n")] = '\0';
  return text;
}

static void
print_device (const E2eeKey *key, E2eeTrust trust)
{
  g_autofree char *hex = e2ee_fingerprint_hex (key);
  g_print ("    %s  %s\n", hex, e2ee_trust_to_string (trust));
}

/* Public parts only, straight from the rows: no passphrase needed. */
static int
show_database (const char *path, const char *label)
{
  GError *error = NULL;
  g_autoptr (E2eeStore) store = e2ee_store_open (path, &error);
  sqlite3_stmt *acc, *dev;
  guint n = 0;

  if (store == NULL)
    return fail (error);
  acc = e2ee_store_prepare (store, "SELECT id, protocol, name, x, y FROM account ORDER BY id",
                            &error);
  dev = acc == NULL ? NULL : e2ee_store_prepare (store,
    "SELECT b.name, b.key_changed, d.x, d.y, d.trust FROM buddy b LEFT JOIN device d"
    " ON d.buddy_id = b.id WHERE b.account_id = ?1 ORDER BY b.name, d.pos", &error);
  if (dev == NULL)
    return fail (error);
  while (sqlite3_step (acc) == SQLITE_ROW)
    n++;
  sqlite3_reset (acc);
  g_print (_("Keyring %s: %u account(s)\n"), label, n);
  while (sqlite3_step (acc) == SQLITE_ROW)
    {
      const char *account = (const char *) sqlite3_column_text (acc, 2);
      g_autoptr (E2eeKey) id = e2ee_key_new_public (sqlite3_column_blob (acc, 3),
                                                    sqlite3_column_blob (acc, 4), &error);
      g_autofree char *last = NULL;
      g_autofree char *hex = NULL;

      if (id == NULL)
        return fail (error);
      hex = e2ee_fingerprint_hex (id);
      g_print (_("\nAccount %s (%s)\n  this device: %s\n"), account,
               (const char *) sqlite3_column_text (acc, 1), hex);
      sqlite3_bind_int64 (dev, 1, sqlite3_column_int64 (acc, 0));
      while (sqlite3_step (dev) == SQLITE_ROW)
        {
          const char *buddy = (const char *) sqlite3_column_text (dev, 0);
          if (g_strcmp0 (last, buddy) != 0)
            {
              g_print ("  %s%s%s\n", buddy,
                       strcmp (buddy, account) == 0 ? _(" (own other devices)") : "",
                       sqlite3_column_int (dev, 1) ? _(" [KEY CHANGED]") : "");
              g_free (last);
              last = g_strdup (buddy);
            }
          if (sqlite3_column_type (dev, 2) != SQLITE_NULL)
            {
              g_autoptr (E2eeKey) key = e2ee_key_new_public (sqlite3_column_blob (dev, 2),
                                                             sqlite3_column_blob (dev, 3), &error);
              if (key == NULL)
                return fail (error);
              print_device (key, (E2eeTrust) sqlite3_column_int (dev, 4));
            }
        }
      sqlite3_reset (dev);
    }
  sqlite3_reset (acc);
  return 0;
}

/* A version 1 keyring.json: imported into a throw-away database (from a
 * copy; the file itself is left as it is) and shown from there. */
static int
show_legacy (const char *path)
{
  GError *error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("purple-e2ee-show-XXXXXX", &error);
  g_autofree char *copy = NULL, *db = NULL, *cmd = NULL;
  char *text = NULL;
  g_autoptr (E2eeStore) store = NULL;
  gsize len = 0;
  gboolean imported = FALSE;
  int rc;

  if (dir == NULL)
    return fail (error);
  copy = g_build_filename (dir, "keyring.json", NULL);
  db = g_build_filename (dir, "keyring.sqlite", NULL);
  if (!g_file_get_contents (path, &text, &len, &error)
      || !g_file_set_contents_full (copy, text, (gssize) len, G_FILE_SET_CONTENTS_NONE, 0600,
                                    &error))
    rc = fail (error);
  else if ((store = e2ee_store_open (db, &error)) == NULL
           || !e2ee_keyring_import_legacy (store, NULL, copy, NULL, &imported, &error))
    {
      if (error->code == E2EE_ERROR_KEYRING_PASSPHRASE)
        {
          g_clear_error (&error);
          error = g_error_new (E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE,
                               _("%s is protected by a passphrase; open it in the plugin"), path);
        }
      rc = fail (error);
    }
  else
    {
      g_clear_pointer (&store, e2ee_store_close);
      rc = show_database (db, path);
    }
  if (text != NULL)
    e2ee_secret_free (text, len);
  g_clear_pointer (&store, e2ee_store_close);
  cmd = g_strdup_printf ("rm -rf '%s'", dir);
  if (system (cmd) != 0)
    g_printerr ("purple-e2ee: cannot remove %s\n", dir);
  return rc;
}

static int
do_export (const char *db, const char *out, const char *passphrase)
{
  GError *error = NULL;
  g_autoptr (E2eeStore) store = NULL;
  g_autoptr (E2eeSeal) seal = NULL;
  char *text;
  gboolean ok = TRUE;

  if (!g_file_test (db, G_FILE_TEST_EXISTS))
    return fail (g_error_new (E2EE_ERROR, E2EE_ERROR_KEYRING_IO, _("no keyring at %s"), db));
  store = e2ee_store_open (db, &error);
  if (store == NULL || !e2ee_records_unlock (store, passphrase, &seal, &error))
    return fail (error);
  text = e2ee_keyring_export (store, seal, &error);
  if (text == NULL)
    return fail (error);
  if (out == NULL)
    ok = fputs (text, stdout) >= 0 && fputc ('\n', stdout) != EOF;
  else
    {
      int fd = open (out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      gsize len = strlen (text);
      ok = fd >= 0 && write (fd, text, len) == (ssize_t) len && fsync (fd) == 0;
      if (!ok)
        g_set_error (&error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO, _("cannot write %s: %s"), out,
                     g_strerror (errno));
      if (fd >= 0)
        close (fd);
    }
  e2ee_string_free (text);
  return ok ? 0 : fail (error);
}

static int
do_import (const char *file, const char *db, const char *passphrase)
{
  GError *error = NULL;
  g_autoptr (E2eeStore) store = NULL;
  g_autoptr (E2eeSeal) seal = NULL;
  char *text = NULL;
  gsize len = 0;
  gboolean ok, imported = FALSE;

  if (!g_file_get_contents (file, &text, &len, &error))
    return fail (error);
  if (g_file_test (db, G_FILE_TEST_EXISTS))
    {
      e2ee_secret_free (text, len);
      return fail (g_error_new (E2EE_ERROR, E2EE_ERROR_KEYRING_NOT_EMPTY,
                                _("%s exists: import only into a new keyring"), db));
    }
  store = e2ee_store_open (db, &error);
  if (store != NULL && passphrase != NULL)
    {
      seal = e2ee_seal_new (passphrase, &error);
      if (seal == NULL || !e2ee_records_reseal (store, NULL, seal, &error))
        g_clear_pointer (&store, e2ee_store_close);
    }
  if (store == NULL)
    {
      e2ee_secret_free (text, len);
      return fail (error);
    }
  if (strstr (text, "\"purple-e2ee-keyring\"") != NULL)
    {
      /* A version 1 keyring.json: its own passphrase is the same one.
       * It is removed once imported. */
      e2ee_secret_free (text, len);
      ok = e2ee_keyring_import_legacy (store, seal, file, passphrase, &imported, &error);
    }
  else
    {
      ok = e2ee_keyring_import_backup (store, seal, text, len, e2ee_envelope_clock_counter (),
                                       &error);
      e2ee_secret_free (text, len);
    }
  if (!ok)
    {
      /* Leave nothing half-made behind. */
      g_autofree char *wal = g_strconcat (db, "-wal", NULL);
      g_autofree char *shm = g_strconcat (db, "-shm", NULL);
      g_clear_pointer (&store, e2ee_store_close);
      unlink (db);
      unlink (wal);
      unlink (shm);
      return fail (error);
    }
  g_print (_("Imported into %s\n"), db);
  return 0;
}

int
e2ee_cli_keyring (int argc, char **argv)
{
  const char *pass_file = NULL, *out = NULL;
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  char *passphrase = NULL;
  GError *error = NULL;
  int rc;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
        {
          g_print ("%s", _(USAGE));
          return 0;
        }
      if (strcmp (argv[i], "--passphrase-file") == 0 && i + 1 < argc)
        pass_file = argv[++i];
      else if (strcmp (argv[i], "-o") == 0 && i + 1 < argc)
        out = argv[++i];
      else
        g_ptr_array_add (args, argv[i]);
    }
  if (args->len == 0)
    return usage ();
  if (pass_file != NULL && (passphrase = read_passphrase (pass_file, &error)) == NULL)
    return fail (error);
  if (strcmp (args->pdata[0], "show") == 0 && args->len <= 2 && out == NULL)
    {
      g_autofree char *path = args->len == 2 ? g_strdup (args->pdata[1]) : default_db ();
      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        rc = fail (g_error_new (E2EE_ERROR, E2EE_ERROR_KEYRING_IO, _("no keyring at %s"), path));
      else
        rc = is_database (path) ? show_database (path, path) : show_legacy (path);
    }
  else if (strcmp (args->pdata[0], "export") == 0 && args->len <= 2)
    {
      g_autofree char *db = args->len == 2 ? g_strdup (args->pdata[1]) : default_db ();
      rc = do_export (db, out, passphrase);
    }
  else if (strcmp (args->pdata[0], "import") == 0 && args->len >= 2 && args->len <= 3
           && out == NULL)
    {
      g_autofree char *db = args->len == 3 ? g_strdup (args->pdata[2]) : default_db ();
      rc = do_import (args->pdata[1], db, passphrase);
    }
  else
    rc = usage ();
  e2ee_string_free (passphrase);
  return rc;
}
