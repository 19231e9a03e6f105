/* Protocol v2 in use after a keyring went back in time: Bob (or Alice)
 * restores a file copy of an earlier database, or Bob the portable backup
 * (identities, pinned keys, trust; no session state).  Replays of what
 * was sent before must not be shown twice, and a bounded number of
 * messages each way must heal the sessions.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-envelope.h"
#include "e2ee-keyring-import.h"
#include "e2ee-test-util.h"
#include "e2ee-test-v2.h"

#define ALICE V2_ALICE
#define BOB V2_BOB

typedef enum { RESTORE_FILE_COPY, RESTORE_BACKUP } RestoreKind;

/* Encrypts without asserting: NULL (the reason logged) if refused. */
static char *
try_send (V2Peer *from, const char *to_name, const char *text)
{
  GError *error = NULL;
  char **pieces = e2ee_context_encrypt (from->ctx, from->account, to_name, text, 0, &error);
  char *wire;

  if (pieces == NULL)
    {
      g_test_message ("%s cannot send: %s", from->name, error->message);
      g_clear_error (&error);
      return NULL;
    }
  wire = g_strdup (pieces[0]);
  g_strfreev (pieces);
  return wire;
}

/* Bob's database replaced by a new one holding only what the backup of
 * @json restores (identities, pinned keys, trust). */
static void
restore_backup (V2Peer *bob, const char *json)
{
  g_autofree char *db = g_build_filename (bob->dir, "keyring.sqlite", NULL);
  g_autofree char *cmd = g_strdup_printf ("rm -f '%s' '%s-wal' '%s-shm'", db, db, db);
  GError *error = NULL;

  v2_peer_close (bob);
  g_assert_cmpint (system (cmd), ==, 0);
  {
    g_autoptr (E2eeStore) store = e2ee_store_open (db, &error);
    g_assert_no_error (error);
    g_assert_true (e2ee_keyring_import_backup (store, NULL, json, strlen (json),
                                               e2ee_envelope_clock_counter (), &error));
    g_assert_no_error (error);
  }
  v2_peer_reload (bob);
}

/* 5. Bob goes back to an older keyring: a file copy of his database, or
 * the portable backup (no session state).  Of everything Alice sent before
 * the restore, replayed to him, nothing he had shown is shown again; once
 * the key sets are exchanged again (as a reconnect does), a bounded
 * number of messages each way heals the sessions and then everything
 * opens both ways. */
static void
restore_case (RestoreKind kind, gboolean check_window, gboolean one_sided)
{
  g_autofree char *base = v2_tmp_dir ("v2-restore");
  g_autofree char *da = g_build_filename (base, "alice", NULL);
  g_autofree char *db = g_build_filename (base, "bob", NULL);
  g_autofree char *old = g_build_filename (base, "bob-old", NULL);
  g_autofree char *replay_dir = g_build_filename (base, "bob-restored", NULL);
  g_autofree char *backup = NULL;
  g_autoptr (GPtrArray) before = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) window = g_ptr_array_new_with_free_func (g_free);
  gint64 now = V2_T0;
  V2Peer *alice, *bob, *x;
  guint again_before = 0, again_window = 0, healed_at = 0, ok_rounds = 0, replies = 0;
  GError *error = NULL;

  v2_rng_seed (kind == RESTORE_FILE_COPY ? "v2 restore file" : "v2 restore backup");
  alice = v2_peer_new (da, ALICE, &now);
  bob = v2_peer_new (db, BOB, &now);
  v2_introduce (bob, alice);
  v2_introduce (alice, bob);
  for (guint i = 0; i < 6; i++)
    {
      g_autofree char *ta = g_strdup_printf ("before the copy %u, to Bob", i);
      g_autofree char *tb = g_strdup_printf ("before the copy %u, to Alice", i);
      char *w = v2_send (alice, BOB, ta);
      g_autoptr (GArray) slots = g_array_new (FALSE, TRUE, sizeof (V2Slot));

      g_assert_true (v2_wire_slots (w, slots)); /* sessions of protocol v2 */
      v2_deliver_ok (bob, ALICE, w, ta);
      g_ptr_array_add (before, w);
      w = v2_send (bob, ALICE, tb);
      v2_deliver_ok (alice, BOB, w, tb);
      g_free (w);
    }
  v2_copy_keyring (bob, old);
  {
    g_autofree char *sqlite = g_build_filename (bob->dir, "keyring.sqlite", NULL);
    g_autoptr (E2eeStore) store = e2ee_store_open (sqlite, &error);
    g_assert_no_error (error);
    backup = e2ee_keyring_export (store, NULL, &error);
    g_assert_no_error (error);
  }
  /* The window: exchanged after the copy, shown by Bob before the restore. */
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *ta = g_strdup_printf ("after the copy %u, to Bob", i);
      g_autofree char *tb = g_strdup_printf ("after the copy %u, to Alice", i);
      char *w = v2_send (alice, BOB, ta);
      v2_deliver_ok (bob, ALICE, w, ta);
      g_ptr_array_add (window, w);
      w = v2_send (bob, ALICE, tb);
      v2_deliver_ok (alice, BOB, w, tb);
      g_free (w);
    }
  now += 3600;
  if (kind == RESTORE_FILE_COPY)
    v2_restore_dir (bob, old);
  else
    restore_backup (bob, backup);

  /* Replays, to a copy of the restored Bob (so the healing below runs on
   * an untouched one). */
  v2_copy_keyring (bob, replay_dir);
  x = v2_peer_open (replay_dir, BOB, &now);
  for (guint i = 0; i < before->len; i++)
    again_before += v2_opens (x, ALICE, before->pdata[i], NULL);
  for (guint i = 0; i < window->len; i++)
    again_window += v2_opens (x, ALICE, window->pdata[i], NULL);
  v2_peer_free (x);

  /* A reconnect: both publish their key sets again. */
  g_test_message ("after the restore Alice learns %d, Bob learns %d",
                  v2_introduce (bob, alice), v2_introduce (alice, bob));
  for (guint round = 1; round <= 8 && ok_rounds < 3; round++)
    {
      g_autofree char *ta = g_strdup_printf ("healing %u, to Bob", round);
      g_autofree char *tb = g_strdup_printf ("healing %u, to Alice", round);
      g_autofree char *wa = try_send (alice, BOB, ta);
      g_autofree char *sa = NULL, *sb = NULL;
      gboolean a_ok = wa != NULL && v2_deliver_host (bob, alice, wa, &sa, &replies)
                      && g_strcmp0 (sa, ta) == 0;
      g_autofree char *wb = one_sided ? NULL : try_send (bob, ALICE, tb);
      gboolean b_ok = one_sided
                      || (wb != NULL && v2_deliver_host (alice, bob, wb, &sb, &replies)
                          && g_strcmp0 (sb, tb) == 0);

      g_test_message ("round %u: to Bob %s, to Alice %s", round, a_ok ? "opens" : "refused",
                      b_ok ? "opens" : "refused");
      if (a_ok && b_ok)
        {
          if (ok_rounds++ == 0)
            healed_at = round;
        }
      else
        /* Once healed it stays so. */
        g_assert_cmpuint (ok_rounds, ==, 0);
    }
  g_test_message ("%s: replayed to the restored Bob, %u of %u messages from before the copy "
                  "and %u of %u from after it were shown again; healed in round %u%s, %u "
                  "replies sent by the hosts", kind == RESTORE_FILE_COPY ? "file copy" : "backup",
                  again_before, before->len, again_window, window->len, healed_at,
                  one_sided ? " (only Alice writes)" : "", replies);
  g_assert_cmpuint (ok_rounds, ==, 3);
  g_assert_cmpuint (healed_at, <=, 3);
  g_assert_cmpuint (again_before, ==, 0);
  if (check_window)
    g_assert_cmpuint (again_window, ==, 0);

  v2_peer_free (alice);
  v2_peer_free (bob);
  v2_tmp_remove (base);
}

static void
test_restore_file_copy (void)
{
  restore_case (RESTORE_FILE_COPY, FALSE, FALSE);
}

/* The file copy holds the ratchet state of the copy's time, so Alice's
 * first message after it (sealed on Bob's ratchet key of then) opens
 * again: nothing outside the copy tells the restored Bob he showed it.
 * Kept apart so the rest of the restore is checked on its own. */
static void
test_restore_file_copy_window (void)
{
  restore_case (RESTORE_FILE_COPY, TRUE, FALSE);
}

static void
test_restore_backup (void)
{
  restore_case (RESTORE_BACKUP, TRUE, FALSE);
}

/* Only Alice writes after Bob's restore: the heal start Bob's host sends
 * back is all that can mend it. */
static void
test_restore_backup_one_sided (void)
{
  restore_case (RESTORE_BACKUP, TRUE, TRUE);
}

static void
test_restore_file_copy_one_sided (void)
{
  restore_case (RESTORE_FILE_COPY, FALSE, TRUE);
}

/* Alice (the sender) restores a file copy: her ratchet reuses message
 * numbers Bob has seen, with new texts.  Bob never shows an old text
 * again; a bounded number of messages each way heals the sessions; what
 * Alice sent in between that Bob dropped without a word is counted (the
 * user was not told). */
static void
test_restore_sender (void)
{
  g_autofree char *base = v2_tmp_dir ("v2-restore-sender");
  g_autofree char *old = g_build_filename (base, "alice-old", NULL);
  g_autoptr (GHashTable) shown = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gint64 now = V2_T0;
  V2Peer *alice, *bob;
  guint healed_at = 0, ok_rounds = 0, silent = 0;

  v2_rng_seed ("v2 restore sender");
  v2_pair_new (base, &now, &alice, &bob);
  for (guint i = 0; i < 3; i++)
    v2_round_trip (alice, bob, "before the copy", i);
  v2_copy_keyring (alice, old);
  for (guint i = 0; i < 3; i++)
    v2_round_trip (alice, bob, "after the copy", i);
  now += 3600;
  v2_restore_dir (alice, old);
  g_test_message ("after the restore Alice learns %d, Bob learns %d",
                  v2_introduce (bob, alice), v2_introduce (alice, bob));
  for (guint round = 1; round <= 8 && ok_rounds < 3; round++)
    {
      g_autofree char *ta = g_strdup_printf ("restored Alice %u, to Bob", round);
      g_autofree char *tb = g_strdup_printf ("Bob %u, to restored Alice", round);
      g_autofree char *wa = try_send (alice, BOB, ta);
      g_autofree char *wb = NULL;
      gboolean a_ok = FALSE, b_ok = FALSE;
      E2eeRecvResult r;

      if (wa != NULL)
        {
          /* First as it comes (to see how it is refused), then as a host
           * would handle it, on a copy of nothing: the receipt itself is
           * repeated only if the first showed nothing. */
          v2_deliver (bob, ALICE, wa, &r);
          a_ok = r.kind == E2EE_RECV_MESSAGE && g_strcmp0 (r.plaintext, ta) == 0;
          g_assert_true (r.plaintext == NULL || g_strcmp0 (r.plaintext, ta) == 0);
          silent += r.kind == E2EE_RECV_PENDING;
          if (!a_ok)
            g_test_message ("round %u: Bob refuses Alice's message: kind %d, %s%s", round, r.kind,
                            r.error != NULL ? r.error->message : "no error",
                            r.reply != NULL ? " (with a reply)" : "");
          if (r.reply != NULL)
            v2_deliver_host (alice, bob, r.reply, NULL, NULL);
          e2ee_recv_result_clear (&r);
        }
      wb = try_send (bob, ALICE, tb);
      if (wb != NULL)
        {
          g_autofree char *sb = NULL;
          b_ok = v2_deliver_host (alice, bob, wb, &sb, NULL) && g_strcmp0 (sb, tb) == 0;
        }
      g_test_message ("round %u: to Bob %s, to Alice %s", round, a_ok ? "opens" : "refused",
                      b_ok ? "opens" : "refused");
      if (a_ok && b_ok)
        {
          if (ok_rounds++ == 0)
            healed_at = round;
        }
      else
        g_assert_cmpuint (ok_rounds, ==, 0);
    }
  g_test_message ("restored sender: healed in round %u; %u of Alice's messages dropped "
                  "silently on the way", healed_at, silent);
  g_assert_cmpuint (ok_rounds, ==, 3);
  g_assert_cmpuint (healed_at, <=, 3);
  v2_peer_free (alice);
  v2_peer_free (bob);
  v2_tmp_remove (base);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/v2/restore/file-copy", test_restore_file_copy);
  g_test_add_func ("/v2/restore/file-copy-window", test_restore_file_copy_window);
  g_test_add_func ("/v2/restore/backup", test_restore_backup);
  g_test_add_func ("/v2/restore/backup-one-sided", test_restore_backup_one_sided);
  g_test_add_func ("/v2/restore/file-copy-one-sided", test_restore_file_copy_one_sided);
  g_test_add_func ("/v2/restore/sender-file-copy", test_restore_sender);
  return g_test_run ();
}
