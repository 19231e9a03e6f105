/* The keyring file under hostile conditions: a writer killed with SIGKILL
 * at random moments (hundreds of times), a full disk, a read-only folder,
 * and two processes saving the same file at once.  After each, the file
 * (or its backup) loads and nothing that was committed is lost.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include <poll.h>

#include "e2ee-error.h"
#include "e2ee-keyring.h"
#include "e2ee-test-util.h"

/* libgcrypt's entropy collector keeps its one-time state until exit. */
const char *__lsan_default_suppressions (void);
const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

#define PROTO "prpl-jabber"
#define ACCOUNT "me@example.test"
#define POOL 24              /* keys made once, reused by the writers */
#define KILLS 500            /* SIGKILLs in all */
#define KILLS_VALGRIND 40    /* under valgrind, where a save takes ~100x longer */
#define KILLS_PER_FILE 4     /* then a fresh file, to keep it small */
#define EARLY_KILL_US 30000  /* longest delay of a kill timed from the fork */

static E2eeKey *pool[POOL];  /* pool[0]: the identity (private) */

static void
make_pool (void)
{
  for (guint i = 0; i < POOL; i++)
    {
      g_autoptr (E2eeKey) k = e2ee_key_generate (NULL);
      g_assert_nonnull (k);
      pool[i] = i == 0 ? e2ee_key_ref (k) : e2ee_key_public_copy (k);
    }
}

static E2eeKey *
device_key (guint n)
{
  return pool[1 + n % (POOL - 1)];
}

/* A private folder for the test's files; on /dev/shm when there is one,
 * which a SIGKILL treats the same as a disk (the page cache outlives the
 * process) and which makes fsync cheap. */
static char *
make_dir (void)
{
  const char *base = g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir ();
  g_autofree char *tmpl = g_build_filename (base, "e2ee-crash-XXXXXX", NULL);
  char *dir = g_mkdtemp_full (g_steal_pointer (&tmpl), 0700);

  g_assert_nonnull (dir);
  return dir;
}

static void
empty_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      g_unlink (p);
    }
}

static void
remove_dir (char *dir)
{
  empty_dir (dir);
  g_rmdir (dir);
  g_free (dir);
}

/* Temporary files a killed save left behind (not an error: the next
 * load ignores them). */
static guint
count_temp_files (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  while (d && (name = g_dir_read_name (d)) != NULL)
    if (strstr (name, ".tmp-") != NULL)
      n++;
  return n;
}

/* ------------------------------------------------------------------ */
/* SIGKILL at random moments */

/* The writer: loads the file, then forever adds buddy b<n> with one key,
 * saves, and only then reports n on @fd.  Never returns. */
G_GNUC_NORETURN static void
writer (const char *path, int fd)
{
  g_autoptr (GError) error = NULL;
  E2eeKeyring *keyring = e2ee_keyring_load (path, NULL, &error);
  E2eeAccountRecord *account;
  guint n;

  if (keyring == NULL)
    {
      g_autofree char *line = g_strdup_printf ("E %s\n", error->message);
      (void) !write (fd, line, strlen (line));
      _exit (3);
    }
  account = e2ee_keyring_lookup_account (keyring, PROTO, ACCOUNT);
  if (account == NULL)
    account = e2ee_keyring_add_account (keyring, PROTO, ACCOUNT, pool[0]);
  n = g_hash_table_size (account->buddies);
  for (;; n++)
    {
      g_autofree char *name = g_strdup_printf ("b%u", n);
      g_autofree char *line = NULL;
      E2eeBuddyRecord *buddy = e2ee_account_ensure_buddy (account, name);

      g_ptr_array_add (buddy->devices,
                       e2ee_device_record_new (device_key (n), E2EE_TRUST_TOFU, 1700000000 + n));
      if (!e2ee_keyring_save (keyring, &error))
        {
          line = g_strdup_printf ("F %s\n", error->message);
          (void) !write (fd, line, strlen (line));
          _exit (4);
        }
      line = g_strdup_printf ("%u\n", n);
      if (write (fd, line, strlen (line)) != (ssize_t) strlen (line))
        _exit (5);
    }
}

/* Parses the complete lines in @buf (a partial last line stays) into
 * @committed; returns how many were added. */
static guint
take_reports (GString *buf, GHashTable *committed)
{
  guint added = 0;
  char *nl;

  while ((nl = memchr (buf->str, '\n', buf->len)) != NULL)
    {
      *nl = '\0';
      if (!g_ascii_isdigit (buf->str[0]))
        g_error ("writer failed: %s", buf->str);
      g_hash_table_add (committed, GUINT_TO_POINTER ((guint) g_ascii_strtoull (buf->str, NULL, 10)));
      added++;
      g_string_erase (buf, 0, nl - buf->str + 1);
    }
  return added;
}

/* Reads from @fd until @want more reports arrived (0: until EOF).
 * Returns the number added; FALSE-ish 0 at EOF. */
static guint
read_reports (int fd, GString *buf, GHashTable *committed, guint want)
{
  guint added = 0;
  char chunk[512];

  for (;;)
    {
      struct pollfd p = { fd, POLLIN, 0 };
      ssize_t got;

      /* A writer stuck for 60 s is a failure (a lock never released). */
      g_assert_cmpint (poll (&p, 1, 60000), ==, 1);
      got = read (fd, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (got, >=, 0);
      if (got == 0)
        return added;
      g_string_append_len (buf, chunk, got);
      added += take_reports (buf, committed);
      if (want > 0 && added >= want)
        return added;
    }
}

/* The file at @path loads, and holds every committed buddy with its key.
 * Returns how many buddies it holds. */
static guint
check_file (const char *path, GHashTable *committed)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeKeyring) keyring = e2ee_keyring_load (path, NULL, &error);
  E2eeAccountRecord *account;
  GHashTableIter iter;
  gpointer key;

  g_assert_no_error (error);
  g_assert_nonnull (keyring);
  account = e2ee_keyring_lookup_account (keyring, PROTO, ACCOUNT);
  if (g_hash_table_size (committed) == 0)
    return account ? g_hash_table_size (account->buddies) : 0;
  g_assert_nonnull (account);
  g_assert_true (e2ee_key_equal (account->identity, pool[0]));
  g_hash_table_iter_init (&iter, committed);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      guint n = GPOINTER_TO_UINT (key);
      g_autofree char *name = g_strdup_printf ("b%u", n);
      E2eeBuddyRecord *buddy = e2ee_account_lookup_buddy (account, name);

      if (buddy == NULL)
        g_error ("committed buddy %s lost", name);
      g_assert_nonnull (e2ee_buddy_find_device (buddy, device_key (n)));
    }
  return g_hash_table_size (account->buddies);
}

/* Each round forks a writer and kills it: a quarter of the time at a
 * random moment soon after the fork (while it loads or makes its first
 * save), otherwise after a reported save plus a random part of a save's
 * duration, so that most kills land inside a save. */
static void
test_sigkill (void)
{
  char *dir = make_dir ();
  g_autofree char *path = g_build_filename (dir, "keyring.json", NULL);
  g_autofree char *backup = g_strconcat (path, "~", NULL);
  g_autoptr (GHashTable) committed = g_hash_table_new (NULL, NULL);
  g_autoptr (GString) buf = g_string_new (NULL);
  guint total_commits = 0, uncommitted_landed = 0, temp_left = 0, max_buddies = 0;
  guint kills = 0, kills_wanted = RUNNING_ON_VALGRIND ? KILLS_VALGRIND : KILLS;
  gint64 save_us = 20000, started = g_get_monotonic_time ();

  while (kills < kills_wanted)
    {
      int fds[2];
      pid_t pid;
      int status;
      guint before = g_hash_table_size (committed), held;

      if (kills % KILLS_PER_FILE == 0)
        {
          temp_left += count_temp_files (dir);
          empty_dir (dir);
          g_hash_table_remove_all (committed);
          before = 0;
        }
      g_assert_cmpint (pipe (fds), ==, 0);
      pid = fork ();
      g_assert_cmpint (pid, >=, 0);
      if (pid == 0)
        {
          close (fds[0]);
          writer (path, fds[1]);
        }
      close (fds[1]);
      g_string_truncate (buf, 0);

      if (g_random_int_range (0, 4) == 0)
        g_usleep (g_random_int_range (0, EARLY_KILL_US));
      else
        {
          gint64 t0;

          g_assert_cmpuint (read_reports (fds[0], buf, committed, 1), >=, 1);
          t0 = g_get_monotonic_time ();
          /* Now and then a second save, to learn how long one takes here
           * (ASan, valgrind, a loaded machine). */
          if (g_random_int_range (0, 4) == 0)
            {
              g_assert_cmpuint (read_reports (fds[0], buf, committed, 1), >=, 1);
              save_us = (save_us + (g_get_monotonic_time () - t0)) / 2;
            }
          g_usleep (g_random_int_range (0, (gint32) MIN (save_us, G_MAXINT32)));
        }
      g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
      g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
      /* Killed, not failed on its own. */
      g_assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
      kills++;
      read_reports (fds[0], buf, committed, 0);
      close (fds[0]);
      total_commits += g_hash_table_size (committed) - before;

      held = check_file (path, committed);
      /* A save that finished but was killed before reporting is there
       * too: allowed (it was about to be committed). */
      if (held > g_hash_table_size (committed))
        uncommitted_landed++;
      max_buddies = MAX (max_buddies, held);
      if (g_file_test (backup, G_FILE_TEST_EXISTS) && held > 1)
        {
          /* The backup is the previous complete file: it loads too, and
           * lacks at most the newest buddy. */
          g_autoptr (GHashTable) none = g_hash_table_new (NULL, NULL);
          guint in_backup = check_file (backup, none);
          g_assert_cmpuint (in_backup + 1, >=, held);
        }
    }
  temp_left += count_temp_files (dir);
  g_test_message ("%u kills in %.1f s, %u saves committed, %u saves landed unreported, "
                  "%u temporary files left by killed saves, largest keyring %u buddies, "
                  "a save took about %.1f ms",
                  kills, (g_get_monotonic_time () - started) / 1e6, total_commits,
                  uncommitted_landed, temp_left, max_buddies, save_us / 1000.0);
  if (RUNNING_ON_VALGRIND)
    g_test_message ("under valgrind: %u kills instead of %u", kills, KILLS);
  /* Most rounds waited for at least one committed save. */
  g_assert_cmpuint (total_commits, >=, kills / 2);
  remove_dir (dir);
}

/* ------------------------------------------------------------------ */
/* Disk full, read-only folder: need a tmpfs mount (root) */

static gboolean
run (const char *command)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;

  return g_spawn_command_line_sync (command, &out, &err, &status, NULL)
         && WIFEXITED (status) && WEXITSTATUS (status) == 0;
}

static char *
mount_tmpfs (const char *size)
{
  char *dir = make_dir ();
  g_autofree char *cmd = g_strdup_printf ("mount -t tmpfs -o size=%s,mode=0700 tmpfs %s",
                                          size, dir);

  if (getuid () != 0 || !run (cmd))
    {
      g_rmdir (dir);
      g_free (dir);
      return NULL;
    }
  return dir;
}

static void
unmount (char *dir)
{
  g_autofree char *cmd = g_strdup_printf ("umount %s", dir);

  g_assert_true (run (cmd));
  g_rmdir (dir);
  g_free (dir);
}

static E2eeKeyring *
small_keyring (const char *path, guint buddies)
{
  E2eeKeyring *keyring = e2ee_keyring_new (path);
  E2eeAccountRecord *account = e2ee_keyring_add_account (keyring, PROTO, ACCOUNT, pool[0]);

  for (guint n = 0; n < buddies; n++)
    {
      g_autofree char *name = g_strdup_printf ("b%u", n);
      E2eeBuddyRecord *buddy = e2ee_account_ensure_buddy (account, name);
      g_ptr_array_add (buddy->devices, e2ee_device_record_new (device_key (n), E2EE_TRUST_TOFU, 1));
    }
  return keyring;
}

static GBytes *
file_bytes (const char *path)
{
  char *data = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  return g_bytes_new_take (data, len);
}

static guint
buddies_in (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeKeyring) k = e2ee_keyring_load (path, NULL, &error);

  g_assert_no_error (error);
  return g_hash_table_size (e2ee_keyring_lookup_account (k, PROTO, ACCOUNT)->buddies);
}

static void
test_disk_full (void)
{
  char *dir = mount_tmpfs ("64k");
  g_autofree char *path = NULL, *filler = NULL;
  g_autoptr (E2eeKeyring) keyring = NULL;
  g_autoptr (GBytes) before = NULL, after = NULL;
  g_autoptr (GError) error = NULL;
  E2eeAccountRecord *account;
  char block[4096];
  int fd;

  if (dir == NULL)
    {
      g_test_skip ("cannot mount a small tmpfs (needs root): disk-full case not run");
      return;
    }
  path = g_build_filename (dir, "keyring.json", NULL);
  filler = g_build_filename (dir, "filler", NULL);
  keyring = small_keyring (path, 3);
  g_assert_true (e2ee_keyring_save (keyring, &error));
  g_assert_no_error (error);
  before = file_bytes (path);

  /* Fill the file system to the last byte. */
  memset (block, 'x', sizeof block);
  fd = open (filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  g_assert_cmpint (fd, >=, 0);
  while (write (fd, block, sizeof block) > 0)
    ;
  while (write (fd, block, 1) > 0)
    ;
  g_assert_cmpint (errno, ==, ENOSPC);
  close (fd);

  account = e2ee_keyring_lookup_account (keyring, PROTO, ACCOUNT);
  for (guint n = 3; n < 10; n++)
    {
      g_autofree char *name = g_strdup_printf ("b%u", n);
      E2eeBuddyRecord *buddy = e2ee_account_ensure_buddy (account, name);
      g_ptr_array_add (buddy->devices, e2ee_device_record_new (device_key (n), E2EE_TRUST_TOFU, 1));
    }
  g_assert_false (e2ee_keyring_save (keyring, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO);
  /* A clear reason for the user, naming the file. */
  g_assert_nonnull (strstr (error->message, g_strerror (ENOSPC)));
  g_assert_nonnull (strstr (error->message, path));
  g_test_message ("disk full: %s", error->message);
  g_clear_error (&error);

  /* The old keyring is intact and nothing half-written is left. */
  after = file_bytes (path);
  g_assert_true (g_bytes_equal (before, after));
  g_assert_cmpuint (buddies_in (path), ==, 3);
  g_assert_cmpuint (count_temp_files (dir), ==, 0);

  /* Space again: the same keyring saves. */
  g_unlink (filler);
  g_assert_true (e2ee_keyring_save (keyring, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (buddies_in (path), ==, 10);
  empty_dir (dir);
  unmount (dir);
}

static void
test_read_only (void)
{
  char *dir = mount_tmpfs ("1m");
  g_autofree char *path = NULL, *cmd = NULL;
  g_autoptr (E2eeKeyring) keyring = NULL;
  g_autoptr (GBytes) before = NULL, after = NULL;
  g_autoptr (GError) error = NULL;

  if (dir == NULL)
    {
      g_test_skip ("cannot mount a tmpfs (needs root): read-only case not run");
      return;
    }
  path = g_build_filename (dir, "keyring.json", NULL);
  keyring = small_keyring (path, 2);
  g_assert_true (e2ee_keyring_save (keyring, &error));
  g_assert_no_error (error);
  before = file_bytes (path);

  /* Root ignores permission bits, so the folder is made read-only at the
   * mount instead. */
  cmd = g_strdup_printf ("mount -o remount,ro %s", dir);
  g_assert_true (run (cmd));

  e2ee_account_ensure_buddy (e2ee_keyring_lookup_account (keyring, PROTO, ACCOUNT), "new");
  g_assert_false (e2ee_keyring_save (keyring, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO);
  g_assert_nonnull (strstr (error->message, g_strerror (EROFS)));
  g_test_message ("read-only: %s", error->message);
  g_clear_error (&error);

  /* Still readable as it was. */
  after = file_bytes (path);
  g_assert_true (g_bytes_equal (before, after));
  g_assert_cmpuint (buddies_in (path), ==, 2);

  g_free (cmd);
  cmd = g_strdup_printf ("mount -o remount,rw %s", dir);
  g_assert_true (run (cmd));
  empty_dir (dir);
  unmount (dir);
}

/* ------------------------------------------------------------------ */
/* Two processes saving one keyring */

#define CONCURRENT_SAVES 100

/* Takes @path (the parent's copy, inherited through fork) and frees it and
 * everything else before exiting, so a leak checker in the child sees none. */
G_GNUC_NORETURN static void
concurrent_writer (char *path, char tag)
{
  g_autoptr (GError) error = NULL;
  E2eeKeyring *keyring = e2ee_keyring_new (path);
  E2eeAccountRecord *account = e2ee_keyring_add_account (keyring, PROTO, ACCOUNT, pool[0]);

  for (guint n = 0; n < CONCURRENT_SAVES; n++)
    {
      g_autofree char *name = g_strdup_printf ("%c%u", tag, n);
      E2eeBuddyRecord *buddy = e2ee_account_ensure_buddy (account, name);

      g_ptr_array_add (buddy->devices, e2ee_device_record_new (device_key (n), E2EE_TRUST_TOFU, 1));
      if (!e2ee_keyring_save (keyring, &error))
        {
          g_printerr ("writer %c: %s\n", tag, error->message);
          _exit (1);
        }
    }
  e2ee_keyring_free (keyring);
  g_free (path);
  _exit (0);
}

static void
test_concurrent (void)
{
  char *dir = make_dir ();
  g_autofree char *path = g_build_filename (dir, "keyring.json", NULL);
  pid_t pids[2];
  guint loads = 0;
  gboolean running = TRUE;
  int status;

  for (int i = 0; i < 2; i++)
    {
      pids[i] = fork ();
      g_assert_cmpint (pids[i], >=, 0);
      if (pids[i] == 0)
        {
          g_free (dir);
          concurrent_writer (g_steal_pointer (&path), i == 0 ? 'a' : 'b');
        }
    }

  /* Meanwhile a third process (this one) reads: every load succeeds. */
  while (running)
    {
      g_autoptr (GError) error = NULL;
      E2eeKeyring *k = e2ee_keyring_load (path, NULL, &error);

      g_assert_no_error (error);
      e2ee_keyring_free (k);
      loads++;
      /* A pause between loads, as any real reader has: the save waits
       * for the lock by polling every 20 ms, so a reader holding its
       * shared lock back to back would starve it. */
      g_usleep (3 * 1000);
      running = FALSE;
      for (int i = 0; i < 2; i++)
        if (pids[i] > 0)
          {
            pid_t r = waitpid (pids[i], &status, WNOHANG);
            g_assert_cmpint (r, >=, 0);
            if (r == 0)
              running = TRUE;
            else
              {
                g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
                pids[i] = 0;
              }
          }
    }

  /* The file is one writer's last state in full, never a mix. */
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (E2eeKeyring) k = e2ee_keyring_load (path, NULL, &error);
    E2eeAccountRecord *account;
    char tag;

    g_assert_no_error (error);
    account = e2ee_keyring_lookup_account (k, PROTO, ACCOUNT);
    g_assert_nonnull (account);
    g_assert_cmpuint (g_hash_table_size (account->buddies), ==, CONCURRENT_SAVES);
    tag = e2ee_account_lookup_buddy (account, "a0") ? 'a' : 'b';
    for (guint n = 0; n < CONCURRENT_SAVES; n++)
      {
        g_autofree char *name = g_strdup_printf ("%c%u", tag, n);
        g_assert_nonnull (e2ee_account_lookup_buddy (account, name));
      }
  }
  g_test_message ("%u loads while two processes saved %u times each", loads, CONCURRENT_SAVES);
  g_assert_cmpuint (count_temp_files (dir), ==, 0);
  remove_dir (dir);
}

int
main (int argc, char **argv)
{
  int status;

  e2ee_test_init (&argc, &argv);
  make_pool ();
  g_test_add_func ("/keyring-crash/sigkill", test_sigkill);
  g_test_add_func ("/keyring-crash/disk-full", test_disk_full);
  g_test_add_func ("/keyring-crash/read-only", test_read_only);
  g_test_add_func ("/keyring-crash/concurrent", test_concurrent);
  status = g_test_run ();
  for (guint i = 0; i < POOL; i++)
    e2ee_key_unref (pool[i]);
  return status;
}
