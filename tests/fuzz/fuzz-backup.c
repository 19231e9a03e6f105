/* libFuzzer target: the keyring backup (purple-e2ee keyring import).  The
 * input is imported into a new database; a refusal is an E2EE_ERROR and
 * writes nothing, and a backup that imports exports again and that export
 * imports into a second new database.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "e2ee-error.h"
#include "e2ee-keyring-import.h"
#include "e2ee-store.h"
#include "fuzz-common.h"

static char *dir, *db_a, *db_b;

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
remove_db (const char *path)
{
  static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };

  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      char *p = g_strconcat (path, suffixes[i], NULL);
      g_unlink (p);
      g_free (p);
    }
}

static void
cleanup (void)
{
  remove_db (db_a);
  remove_db (db_b);
  g_rmdir (dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *base = g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir ();
  char *tmpl = g_build_filename (base, "e2ee-fuzz-backup-XXXXXX", NULL);

  fuzz_init_gcrypt ();
  dir = g_mkdtemp_full (tmpl, 0700);
  if (dir == NULL)
    abort ();
  db_a = g_build_filename (dir, "a.sqlite", NULL);
  db_b = g_build_filename (dir, "b.sqlite", NULL);
  atexit (cleanup);
  return 0;
}

static int
count_accounts (E2eeStore *store)
{
  sqlite3_stmt *st = e2ee_store_prepare (store, "SELECT count(*) FROM account", NULL);
  int n;

  FUZZ_CHECK (st != NULL);
  FUZZ_CHECK (sqlite3_step (st) == SQLITE_ROW);
  n = sqlite3_column_int (st, 0);
  sqlite3_reset (st); /* the store owns its cached statements */
  return n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  E2eeStore *a, *b;
  char *exported;

  remove_db (db_a);
  a = e2ee_store_open (db_a, &error);
  FUZZ_CHECK (a != NULL);
  if (!e2ee_keyring_import_backup (a, NULL, (const char *) data, size, 1000, &error))
    {
      FUZZ_CHECK (error != NULL && error->domain == E2EE_ERROR);
      g_clear_error (&error);
      FUZZ_CHECK (count_accounts (a) == 0); /* nothing written */
      e2ee_store_close (a);
      return 0;
    }
  exported = e2ee_keyring_export (a, NULL, &error);
  if (exported == NULL)
    {
      fprintf (stderr, "export of an imported backup failed: %s\n", error->message);
      abort ();
    }
  remove_db (db_b);
  b = e2ee_store_open (db_b, &error);
  FUZZ_CHECK (b != NULL);
  if (!e2ee_keyring_import_backup (b, NULL, exported, strlen (exported), 1000, &error))
    {
      fprintf (stderr, "re-import of an export failed: %s\n", error->message);
      abort ();
    }
  FUZZ_CHECK (count_accounts (a) == count_accounts (b));
  e2ee_store_close (b);
  e2ee_store_close (a);
  memset (exported, 0, strlen (exported)); /* it holds private keys */
  g_free (exported);
  return 0;
}
