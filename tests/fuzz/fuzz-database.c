/* libFuzzer target: a damaged keyring database.  The input is written as
 * the keyring's SQLite file and opened the way the plugin opens it; it
 * either loads or fails with an E2EE_ERROR (never a crash, never a silent
 * empty keyring over a file that had content), and what loads saves and
 * loads again with the same accounts.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "e2ee-error.h"
#include "e2ee-keyring.h"
#include "fuzz-common.h"

static char *dir, *json_path, *db_path;

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
remove_db (void)
{
  static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };

  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      char *p = g_strconcat (db_path, suffixes[i], NULL);
      g_unlink (p);
      g_free (p);
    }
}

static void
cleanup (void)
{
  remove_db ();
  g_rmdir (dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *base = g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir ();
  char *tmpl = g_build_filename (base, "e2ee-fuzz-database-XXXXXX", NULL);

  fuzz_init_gcrypt ();
  dir = g_mkdtemp_full (tmpl, 0700);
  if (dir == NULL)
    abort ();
  json_path = g_build_filename (dir, "keyring.json", NULL);
  db_path = g_build_filename (dir, "keyring.sqlite", NULL);
  atexit (cleanup);
  return 0;
}

static void
write_input (const uint8_t *data, size_t size)
{
  int fd = open (db_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t done = 0;

  if (fd < 0)
    abort ();
  while (done < size)
    {
      ssize_t n = write (fd, data + done, size - done);
      if (n <= 0)
        abort ();
      done += (size_t) n;
    }
  close (fd);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  E2eeKeyring *keyring, *again;
  guint n;

  remove_db ();
  write_input (data, size);
  keyring = e2ee_keyring_load (json_path, NULL, &error);
  if (keyring == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == E2EE_ERROR);
      g_error_free (error);
      return 0;
    }
  FUZZ_CHECK (error == NULL);
  n = e2ee_keyring_get_accounts (keyring)->len;
  if (!e2ee_keyring_save (keyring, &error))
    {
      /* A file the loader accepted but cannot write to is reported, not
       * crashed on. */
      FUZZ_CHECK (error != NULL && error->domain == E2EE_ERROR);
      g_clear_error (&error);
      e2ee_keyring_free (keyring);
      return 0;
    }
  e2ee_keyring_free (keyring);
  again = e2ee_keyring_load (json_path, NULL, &error);
  if (again == NULL)
    {
      fprintf (stderr, "reload after save failed: %s\n", error->message);
      abort ();
    }
  FUZZ_CHECK (e2ee_keyring_get_accounts (again)->len == n);
  e2ee_keyring_free (again);
  return 0;
}
