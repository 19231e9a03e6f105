/* Protocol v2 in use at scale: one account with 200 buddies, each reached
 * through its own v2 session (the buddies are 200 accounts of a second
 * keyring), messages both ways, every change saved by the commit func;
 * the keyrings are reloaded and every session goes on.  Resident memory
 * is reported and bounded.  E2EE_QUICK_TESTS: 5 buddies, memory not
 * bounded (that mode is for valgrind).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib/gstdio.h>
#include <string.h>

#include "e2ee-test-util.h"
#include "e2ee-test-v2.h"

#define ALICE "alice@example.org"
/* Growth of the resident set allowed for the whole run (KiB): far above
 * what 200 sessions need (a state blob is at most a few KiB without
 * skipped keys), far below a leak of a state per message. */
#define RSS_BOUND_KIB (48 * 1024)

static char *
buddy_name (guint i)
{
  return g_strdup_printf ("buddy%03u@example.org", i);
}

static E2eeAccountRecord *
buddy_account (V2Peer *buddies, guint i)
{
  g_autofree char *name = buddy_name (i);
  GError *error = NULL;
  gboolean created = FALSE;
  E2eeAccountRecord *a = e2ee_context_ensure_account_saved (buddies->ctx, "prpl-jabber", name,
                                                            &created, &error);
  g_assert_no_error (error);
  g_assert_nonnull (a);
  return a;
}

/* One message each way with every buddy; returns how many opened. */
static guint
exchange (V2Peer *alice, V2Peer *buddies, guint n, const char *tag)
{
  guint opened = 0;

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *name = buddy_name (i);
      g_autofree char *ta = g_strdup_printf ("%s: Alice to %s", tag, name);
      g_autofree char *tb = g_strdup_printf ("%s: %s to Alice", tag, name);
      E2eeAccountRecord *b = buddy_account (buddies, i);
      g_autofree char *wa = v2_send (alice, name, ta);
      g_autoptr (GArray) slots = g_array_new (FALSE, TRUE, sizeof (V2Slot));
      GError *error = NULL;
      char **pieces;
      E2eeRecvResult r = { 0 };

      /* A v2 envelope with one slot: a start the first time, then not. */
      g_assert_true (v2_wire_slots (wa, slots));
      g_assert_cmpuint (slots->len, ==, 1);
      g_assert_cmpuint (g_array_index (slots, V2Slot, 0).type, ==,
                        strcmp (tag, "start") == 0 ? 2 : 1);

      e2ee_context_receive (buddies->ctx, b, ALICE, wa, 1000, &r);
      g_assert_no_error (r.error);
      opened += r.kind == E2EE_RECV_MESSAGE && g_strcmp0 (r.plaintext, ta) == 0;
      e2ee_recv_result_clear (&r);
      pieces = e2ee_context_encrypt (buddies->ctx, b, ALICE, tb, 0, &error);
      g_assert_no_error (error);
      g_assert_nonnull (pieces);
      g_assert_true (v2_wire_slots (pieces[0], slots));
      g_assert_cmpuint (g_array_index (slots, V2Slot, 0).type, ==, 1);
      memset (&r, 0, sizeof r);
      e2ee_context_receive (alice->ctx, alice->account, name, pieces[0], 1000, &r);
      g_assert_no_error (r.error);
      opened += r.kind == E2EE_RECV_MESSAGE && g_strcmp0 (r.plaintext, tb) == 0;
      e2ee_recv_result_clear (&r);
      g_strfreev (pieces);
    }
  return opened;
}

static void
test_many_buddies (void)
{
  gboolean quick = g_getenv ("E2EE_QUICK_TESTS") != NULL;
  guint n = quick ? 5 : 200;
  g_autofree char *base = v2_tmp_dir ("v2-scale");
  g_autofree char *da = g_build_filename (base, "alice", NULL);
  g_autofree char *db = g_build_filename (base, "buddies", NULL);
  g_autofree char *first = buddy_name (0);
  gint64 now = V2_T0;
  guint64 rss0, peak0, rss1, peak1, rss2, peak2;
  V2Peer *alice, *buddies;
  gint64 t0 = g_get_monotonic_time ();

  v2_rng_seed ("v2 scale");
  alice = v2_peer_new (da, ALICE, &now);
  buddies = v2_peer_new (db, first, &now);
  v2_memory_kib (&rss0, &peak0);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *name = buddy_name (i);
      E2eeAccountRecord *b = buddy_account (buddies, i);
      g_autoptr (GPtrArray) bk = e2ee_context_own_keyset (buddies->ctx, b);
      g_autoptr (GPtrArray) ak = e2ee_context_own_keyset (alice->ctx, alice->account);

      g_assert_cmpint (e2ee_context_learn_keys (alice->ctx, alice->account, name, bk, NULL),
                       ==, E2EE_LEARN_FIRST_CONTACT);
      g_assert_cmpint (e2ee_context_learn_keys (buddies->ctx, b, ALICE, ak, NULL),
                       ==, E2EE_LEARN_FIRST_CONTACT);
    }
  /* The first exchange starts every session; the second turns them. */
  g_assert_cmpuint (exchange (alice, buddies, n, "start"), ==, 2 * n);
  g_assert_cmpuint (exchange (alice, buddies, n, "turn"), ==, 2 * n);
  v2_memory_kib (&rss1, &peak1);

  v2_peer_reload (alice);
  v2_peer_reload (buddies);
  g_assert_cmpuint (exchange (alice, buddies, n, "after reload"), ==, 2 * n);
  g_assert_cmpuint (exchange (alice, buddies, n, "again"), ==, 2 * n);
  v2_memory_kib (&rss2, &peak2);
  {
    g_autofree char *dbf = g_build_filename (da, "keyring.sqlite", NULL);
    GStatBuf st;
    g_assert_cmpint (g_stat (dbf, &st), ==, 0);
    g_test_message ("%u buddies, %u messages, %.1f s; RSS %" G_GUINT64_FORMAT " KiB before, %"
                    G_GUINT64_FORMAT " after the sessions, %" G_GUINT64_FORMAT
                    " after reload and two more rounds (peak %" G_GUINT64_FORMAT
                    " KiB); Alice's keyring database %" G_GINT64_FORMAT " KiB", n, 8 * n,
                    (g_get_monotonic_time () - t0) / 1e6, rss0, rss1, rss2, peak2,
                    (gint64) st.st_size / 1024);
  }
  /* A memory checker's own bookkeeping (valgrind, run with the quick
   * size; AddressSanitizer's quarantine of freed blocks) says nothing
   * about ours: the bound holds for a plain build. */
#ifndef __SANITIZE_ADDRESS__
  if (!quick)
    {
      g_assert_cmpuint (rss2, <, rss0 + RSS_BOUND_KIB);
      g_assert_cmpuint (peak2, <, peak0 + RSS_BOUND_KIB);
    }
#endif
  v2_peer_free (alice);
  v2_peer_free (buddies);
  v2_tmp_remove (base);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/v2/scale/many-buddies", test_many_buddies);
  return g_test_run ();
}
