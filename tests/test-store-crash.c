/* The keyring database under SIGKILL: a writer commits state changes in a
 * loop (the replay state of a device, the buddy's flags and the account's
 * counter in one transaction, as a received message would) and reports
 * each commit on a pipe; it is killed at a random moment.  After every
 * kill the database opens, every reported commit is there, and nothing is
 * half-applied (the three values of one change agree).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2ee-error.h"
#include "e2ee-store-records.h"
#include "e2ee-test-util.h"

#define KILLS 500

static E2eeKey *identity;
static E2eeKey *device;

static E2eeAccountRecord *
account_with_bob (E2eeBuddyRecord **bob)
{
  E2eeAccountRecord *account = e2ee_account_record_new ("prpl-jabber", "alice@example.org",
                                                        identity);
  E2eeBuddyRecord *b = e2ee_account_ensure_buddy (account, "bob@example.org");
  E2eeDeviceRecord *dev = e2ee_device_record_new (device, E2EE_TRUST_TOFU, 1);

  dev->replay_init = TRUE;
  dev->replay_window = ~G_GUINT64_CONSTANT (0);  /* change 0: the state before any */
  dev->last_seen = 0;
  g_ptr_array_add (b->devices, dev);
  *bob = b;
  return account;
}

/* The child: commits changes numbered from @start on, writing each number
 * to @fd after COMMIT returned.  Never returns. */
static void G_GNUC_NORETURN
writer (const char *path, guint64 start, int fd)
{
  E2eeBuddyRecord *bob;
  E2eeAccountRecord *account = account_with_bob (&bob);
  E2eeDeviceRecord *dev = bob->devices->pdata[0];
  E2eeStore *store = e2ee_store_open (path, NULL);

  if (store == NULL)
    _exit (2);
  for (guint64 n = start;; n++)
    {
      dev->replay_high = n;
      dev->replay_window = ~n;
      dev->last_seen = (gint64) n;
      bob->had_encrypted = (n & 1) != 0;
      account->last_counter = n;
      if (!e2ee_store_begin (store, NULL)
          || !e2ee_records_put_device (store, NULL, account, bob, dev, NULL)
          || !e2ee_records_put_counter (store, account, NULL)
          || !e2ee_store_commit (store, NULL))
        _exit (3);
      if (write (fd, &n, sizeof n) != sizeof n)
        _exit (4);
    }
}

/* The committed number, checking that the change is whole. */
static guint64
committed (const char *path)
{
  GError *error = NULL;
  g_autoptr (E2eeStore) store = e2ee_store_open (path, &error);
  g_autoptr (GPtrArray) accounts = NULL;
  E2eeAccountRecord *account;
  E2eeBuddyRecord *bob;
  E2eeDeviceRecord *dev;

  g_assert_no_error (error);
  accounts = e2ee_records_load_accounts (store, NULL, TRUE, &error);
  g_assert_no_error (error);
  account = accounts->pdata[0];
  bob = g_hash_table_lookup (account->buddies, "bob@example.org");
  g_assert_nonnull (bob);
  g_assert_cmpuint (bob->devices->len, ==, 1);
  dev = bob->devices->pdata[0];
  g_assert_cmpuint (dev->replay_high, ==, account->last_counter);
  g_assert_cmphex (dev->replay_window, ==, ~dev->replay_high);
  g_assert_cmpint (dev->last_seen, ==, (gint64) dev->replay_high);
  g_assert_cmpint (bob->had_encrypted, ==, (dev->replay_high & 1) != 0);
  return dev->replay_high;
}

static void
test_sigkill (void)
{
  GError *error = NULL;
  g_autofree char *base = g_dir_make_tmp ("e2ee-store-crash-XXXXXX", &error);
  g_autofree char *dir = g_build_filename (base, "purple-e2ee", NULL);
  g_autofree char *path = g_build_filename (dir, "keyring.sqlite", NULL);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", base);
  GRand *rand = g_rand_new_with_seed (20261201);
  guint64 acked = 0, total = 0;
  guint mid_commit = 0;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  {
    E2eeBuddyRecord *bob;
    g_autoptr (E2eeStore) store = e2ee_store_open (path, &error);
    g_autoptr (E2eeAccountRecord) account = account_with_bob (&bob);
    g_assert_no_error (error);
    g_assert_true (e2ee_records_put_account (store, NULL, account, &error));
    g_assert_true (e2ee_records_put_buddy (store, NULL, account, bob, &error));
  }

  for (guint k = 0; k < KILLS; k++)
    {
      int fds[2];
      pid_t pid;
      guint64 n, last = acked, now;
      int status;
      ssize_t r;

      g_assert_cmpint (pipe (fds), ==, 0);
      pid = fork ();
      g_assert_cmpint (pid, >=, 0);
      if (pid == 0)
        {
          close (fds[0]);
          writer (path, acked + 1, fds[1]);
        }
      close (fds[1]);
      /* Every tenth writer is first waited for until it reports a commit,
       * so work gets done however slow the machine (valgrind, load); then
       * it is killed anywhere: before the first commit, inside one, or
       * between two. */
      if (k % 10 == 0 && read (fds[0], &n, sizeof n) == sizeof n)
        last = n;
      g_usleep (g_rand_int_range (rand, 0, 10000));
      kill (pid, SIGKILL);
      g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
      g_assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
      while ((r = read (fds[0], &n, sizeof n)) == sizeof n)
        last = n;
      close (fds[0]);

      now = committed (path);
      /* Every reported commit is there; at most the one in flight more. */
      g_assert_cmpuint (now, >=, last);
      g_assert_cmpuint (now, <=, last + 1);
      if (now == last + 1)
        mid_commit++;
      total += now - acked;
      acked = now;
    }
  g_test_message ("%u kills, %" G_GUINT64_FORMAT " committed changes, %u kills between "
                  "COMMIT and its report", KILLS, total, mid_commit);
  g_assert_cmpuint (total, >=, KILLS / 10); /* the writers did get work done */
  g_rand_free (rand);
  g_assert_cmpint (system (cmd), ==, 0);
}

int
main (int argc, char **argv)
{
  g_autoptr (E2eeKey) k = NULL;

  e2ee_test_init (&argc, &argv);
  identity = e2ee_key_generate (NULL);
  k = e2ee_key_generate (NULL);
  device = e2ee_key_public_copy (k);
  g_test_add_func ("/store-crash/sigkill", test_sigkill);
  return g_test_run ();
}
