/* Protocol v2 in use on a simulated clock (e2ee_context_set_clock): the
 * end of a session start's life (start replay tags, prekey rotation and
 * deletion) and the ageing of skipped message keys, through the real
 * SQLite keyring files.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-prekey.h"
#include "e2ee-ratchet.h"
#include "e2ee-test-util.h"
#include "e2ee-test-v2.h"

#define ALICE V2_ALICE
#define BOB V2_BOB

/* A session start has a limited life.  While Bob's prekey exists, a
 * start message replayed after its session forgot the chain is refused by
 * the start replay tag (also after a restart); a fresh start from a copy
 * of Alice made before her first message opens (the control).  After
 * E2EE_PREKEY_KEEP, with weekly rotations on the simulated clock, the
 * first start replayed to a Bob freshly loaded from his store, and a fresh
 * start on the old prekey, are both refused, and the old prekey's scalar
 * is in none of Bob's file bytes. */
static void
test_start_replay_and_prekey_deletion (void)
{
  g_autofree char *base = v2_tmp_dir ("v2-prekey");
  g_autofree char *da = g_build_filename (base, "alice", NULL);
  g_autofree char *db = g_build_filename (base, "bob", NULL);
  g_autofree char *alice_pre = g_build_filename (base, "alice-pre", NULL);
  g_autofree char *bob_mid = g_build_filename (base, "bob-mid", NULL);
  g_autofree char *bob_late = g_build_filename (base, "bob-late", NULL);
  g_autofree char *bob_copy = g_build_filename (base, "bob-copy", NULL);
  g_autoptr (GArray) slots = g_array_new (FALSE, TRUE, sizeof (V2Slot));
  g_autoptr (GArray) keys = NULL;
  g_autoptr (GPtrArray) first_prekey = NULL;
  g_autoptr (GHashTable) records = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                                          (GDestroyNotify) g_bytes_unref, NULL);
  gint64 now = V2_T0, then = V2_T0 + 3600;
  V2Peer *alice, *bob, *x, *y;
  char *s0, *s1;
  guint k0, k1;

  v2_keylog_start ("v2 prekey life");
  alice = v2_peer_new (da, ALICE, &now);
  k0 = v2_keylog_mark ();
  bob = v2_peer_new (db, BOB, &now);
  g_assert_cmpint (v2_introduce (bob, alice), ==, E2EE_LEARN_FIRST_CONTACT);
  k1 = v2_keylog_mark ();
  g_assert_cmpint (v2_introduce (alice, bob), ==, E2EE_LEARN_FIRST_CONTACT);
  /* Alice before her first message: she knows Bob's first prekey. */
  v2_copy_keyring (alice, alice_pre);

  s0 = v2_send (alice, BOB, "the very first message");
  s1 = v2_send (alice, BOB, "the second, still a start");
  g_assert_true (v2_wire_slots (s0, slots));
  g_assert_cmpuint (slots->len, ==, 1);
  g_assert_cmpuint (g_array_index (slots, V2Slot, 0).type, ==, 2);
  v2_deliver_ok (bob, ALICE, s0, "the very first message");
  v2_deliver_ok (bob, ALICE, s1, "the second, still a start");
  g_assert_false (v2_opens (bob, ALICE, s0, NULL));
  /* Seven ratchet steps each way: the start's chain is forgotten (five
   * are remembered), so a replay can only be taken for a new start. */
  for (guint i = 0; i < 7; i++)
    v2_round_trip (alice, bob, "early", i);
  g_assert_false (v2_opens (bob, ALICE, s0, NULL));
  g_assert_false (v2_opens (bob, ALICE, s1, NULL));
  v2_peer_reload (bob);
  g_assert_false (v2_opens (bob, ALICE, s0, NULL));
  g_assert_false (v2_opens (bob, ALICE, s1, NULL));

  /* Control, on a copy of Bob: the prekey still opens a fresh start. */
  now += 2 * 86400;
  v2_round_trip (alice, bob, "day two", 0);
  v2_copy_keyring (bob, bob_mid);
  x = v2_open_copy (alice_pre, ALICE, "a", &then);
  y = v2_peer_open (bob_mid, BOB, &now);
  {
    char *fresh = v2_send (x, BOB, "a fresh start on the first prekey");
    v2_deliver_ok (y, ALICE, fresh, "a fresh start on the first prekey");
    g_free (fresh);
  }
  v2_peer_free (x);
  v2_peer_free (y);

  /* A day at a time past KEEP: both talk, Bob republishes (rotating). */
  while (now < V2_T0 + E2EE_PREKEY_KEEP + 2 * 86400)
    {
      g_autoptr (GPtrArray) set = NULL;
      GBytes *record;

      now += 86400;
      g_assert_cmpint (v2_introduce (bob, alice), ==, E2EE_LEARN_NOTHING_NEW);
      v2_round_trip (alice, bob, "daily", (guint) ((now - V2_T0) / 86400));
      set = e2ee_context_own_keyset (bob->ctx, bob->account);
      record = e2ee_key_get_prekey_record (set->pdata[0]);
      g_assert_nonnull (record);
      g_hash_table_add (records, g_bytes_ref (record));
    }
  /* A new prekey every week: the first and three rotations. */
  g_test_message ("%u prekey records published over %" G_GINT64_FORMAT " days",
                  g_hash_table_size (records), (now - V2_T0) / 86400);
  g_assert_cmpuint (g_hash_table_size (records), >=, 4);
  /* What a thief copying Bob's files now would get (checked below). */
  v2_copy_keyring (bob, bob_copy);

  /* Bob freshly loaded from his store: the first start is refused. */
  v2_peer_reload (bob);
  g_assert_false (v2_opens (bob, ALICE, s0, NULL));
  g_assert_false (v2_opens (bob, ALICE, s1, NULL));
  /* And a start on the deleted prekey, sealed when it was valid. */
  v2_copy_keyring (bob, bob_late);
  x = v2_open_copy (alice_pre, ALICE, "b", &then);
  y = v2_peer_open (bob_late, BOB, &now);
  {
    char *late = v2_send (x, BOB, "a start on a deleted prekey");
    g_assert_false (v2_opens (y, ALICE, late, NULL));
    g_free (late);
  }
  v2_peer_free (x);
  v2_peer_free (y);
  /* The conversation itself goes on. */
  v2_round_trip (alice, bob, "after", 0);

  /* The first prekey's scalar was stored, and is gone from every byte. */
  keys = v2_keylog_stop ();
  first_prekey = v2_logged (keys, k0, k1, "scalar");
  g_assert_cmpuint (first_prekey->len, >=, 1);
  {
    guint mid_live, copy_live, late_live, mid = v2_count_in_dir (bob_mid, first_prekey, &mid_live);
    guint copy = v2_count_in_dir (bob_copy, first_prekey, &copy_live);
    guint late = v2_count_in_dir (bob->dir, first_prekey, &late_live);

    g_test_message ("%u scalars drawn while Bob made his first prekey: in his files on day two "
                    "%u (%u in live rows), after KEEP while running %u (%u), after a restart "
                    "%u (%u)", first_prekey->len, mid, mid_live, copy, copy_live, late, late_live);
    g_assert_cmpuint (mid_live, >=, 1);
    g_assert_cmpuint (copy_live, ==, 0);
    g_assert_cmpuint (late_live, ==, 0);
    g_assert_cmpuint (late, ==, 0);
    g_assert_cmpuint (copy, ==, 0);
  }

  g_free (s0);
  g_free (s1);
  v2_peer_free (alice);
  v2_peer_free (bob);
  v2_tmp_remove (base);
}

/* Skipped message keys age out on the simulated clock: of two messages
 * that arrive late, the one a day late opens, the one past
 * E2EE_RATCHET_MAX_AGE is refused, and its stored key (in Bob's live rows
 * while it waited: the search can see it) is in none of them after. */
static void
test_skipped_key_expiry (void)
{
  g_autofree char *base = v2_tmp_dir ("v2-expiry");
  g_autofree char *waiting = g_build_filename (base, "bob-waiting", NULL);
  g_autofree char *expired = g_build_filename (base, "bob-expired", NULL);
  g_autoptr (GArray) keys = NULL;
  g_autoptr (GPtrArray) mk0 = NULL;
  gint64 now = V2_T0;
  V2Peer *alice, *bob;
  V2Sent *m0, *m1;
  guint k0, k1, live;

  v2_keylog_start ("v2 skipped key expiry");
  v2_pair_new (base, &now, &alice, &bob);
  v2_round_trip (alice, bob, "warm-up", 0);
  k0 = v2_keylog_mark ();
  m0 = v2_compose (alice, bob, "held long", 0, NULL);
  k1 = v2_keylog_mark ();
  m1 = v2_compose (alice, bob, "held a day", 1, NULL);
  v2_sent_free (v2_say (alice, bob, "on time", 2, NULL));
  v2_sent_free (v2_say (alice, bob, "on time", 3, NULL));
  v2_copy_keyring (bob, waiting);

  now += 86400;
  v2_deliver_ok (bob, ALICE, m1->wire, m1->text);
  now += E2EE_RATCHET_MAX_AGE;
  v2_round_trip (alice, bob, "a week later", 0);
  g_assert_false (v2_opens (bob, ALICE, m0->wire, NULL));
  v2_copy_keyring (bob, expired);
  keys = v2_keylog_stop ();
  mk0 = v2_logged (keys, k0, k1, "mk");
  g_assert_cmpuint (mk0->len, >=, 1);
  g_assert_cmpuint (v2_count_in_dir (waiting, mk0, &live), >=, 1);
  g_assert_cmpuint (live, >=, 1);
  v2_count_in_dir (expired, mk0, &live);
  g_assert_cmpuint (live, ==, 0);
  /* After a restart nothing is left of it at all. */
  v2_peer_reload (bob);
  g_assert_false (v2_opens (bob, ALICE, m0->wire, NULL));
  g_assert_cmpuint (v2_count_in_dir (bob->dir, mk0, NULL), ==, 0);
  /* And while running (the -wal of the copy): see the forward secrecy test. */
  g_assert_cmpuint (v2_count_in_dir (expired, mk0, NULL), ==, 0);
  v2_sent_free (m0);
  v2_sent_free (m1);
  v2_peer_free (alice);
  v2_peer_free (bob);
  v2_tmp_remove (base);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/v2/clock/start-replay-prekey-deletion",
                   test_start_replay_and_prekey_deletion);
  g_test_add_func ("/v2/clock/skipped-key-expiry", test_skipped_key_expiry);
  return g_test_run ();
}
