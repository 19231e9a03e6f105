/* libFuzzer target: the keyring file loader.  The input is written to a
 * private file (on /dev/shm when there is one, so fsync is cheap) and
 * loaded; a keyring that loads must save and load again with the same
 * accounts, buddies and devices.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "e2ee-error.h"
#include "e2ee-keyring.h"
#include "fuzz-common.h"

static char *dir, *in_path;

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
cleanup (void)
{
  char *lock = g_strconcat (in_path, ".lock", NULL);
  char *backup = g_strconcat (in_path, "~", NULL);
  GDir *d;

  g_unlink (in_path);
  g_unlink (backup);
  g_unlink (lock);
  /* Temporary files of a save interrupted by a crash, if any. */
  d = g_dir_open (dir, 0, NULL);
  if (d != NULL)
    {
      const char *name;
      while ((name = g_dir_read_name (d)) != NULL)
        {
          char *p = g_build_filename (dir, name, NULL);
          g_unlink (p);
          g_free (p);
        }
      g_dir_close (d);
    }
  g_rmdir (dir);
  g_free (lock);
  g_free (backup);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *base = g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir ();
  char *tmpl = g_build_filename (base, "e2ee-fuzz-keyring-XXXXXX", NULL);

  fuzz_init_gcrypt ();
  dir = g_mkdtemp_full (tmpl, 0700);
  if (dir == NULL)
    abort ();
  in_path = g_build_filename (dir, "in.json", NULL);
  atexit (cleanup);
  return 0;
}

static void
write_input (const uint8_t *data, size_t size)
{
  int fd = open (in_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
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

static void
remove_file (const char *path)
{
  char *backup = g_strconcat (path, "~", NULL);

  g_unlink (path);
  g_unlink (backup);
  g_free (backup);
}

static guint
count_devices (E2eeKeyring *keyring)
{
  GPtrArray *accounts = e2ee_keyring_get_accounts (keyring);
  guint n = 0;

  for (guint a = 0; a < accounts->len; a++)
    {
      E2eeAccountRecord *account = accounts->pdata[a];
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, account->buddies);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        n += 1 + ((E2eeBuddyRecord *) value)->devices->len;
    }
  return n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  E2eeKeyring *keyring, *again;

  remove_file (in_path);
  write_input (data, size);
  keyring = e2ee_keyring_load (in_path, NULL, &error);
  if (keyring == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == E2EE_ERROR);
      g_error_free (error);
      return 0;
    }
  FUZZ_CHECK (error == NULL);

  /* Whatever loads saves (over itself) and loads again unchanged. */
  if (!e2ee_keyring_save (keyring, &error))
    {
      fprintf (stderr, "save failed: %s\n", error->message);
      abort ();
    }
  again = e2ee_keyring_load (in_path, NULL, &error);
  if (again == NULL)
    {
      fprintf (stderr, "reload failed: %s\n", error->message);
      abort ();
    }
  FUZZ_CHECK (e2ee_keyring_get_accounts (again)->len
              == e2ee_keyring_get_accounts (keyring)->len);
  FUZZ_CHECK (count_devices (again) == count_devices (keyring));
  e2ee_keyring_free (again);
  e2ee_keyring_free (keyring);
  return 0;
}
