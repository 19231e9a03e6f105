/* The Double Ratchet of protocol v2: conversations with ratchet steps,
 * loss, reordering and duplicates; the skip bounds (a message beyond them
 * leaves the state byte-identical); tampering; the state blob; forward
 * secrecy and post-compromise security against stolen state; and a whole
 * conversation as fixed bytes (tests/vectors/v2-conversation.json).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-ratchet.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"
#include "e2ee-test-rng.h"

const char *__lsan_default_suppressions (void);
__attribute__ ((weak)) const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

#include "e2ee-test-ratchet.h"

static void
test_conversation (void)
{
  Pair p = { 0 };
  E2eeRatchetOpened info;
  g_autoptr (GBytes) a1 = NULL, b0 = NULL, b1 = NULL, a2 = NULL, a3 = NULL, first = NULL;

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "conversation", &first);
  g_assert_true (e2ee_ratchet_awaiting_reply (p.a));
  g_assert_false (e2ee_ratchet_is_weak (p.a));
  g_assert_false (e2ee_ratchet_awaiting_reply (p.b));
  g_assert_cmpmem (e2ee_ratchet_get_sid (p.a), 32, e2ee_ratchet_get_sid (p.b), 32);
  a1 = seal (p.a, "second, still with the start prefix");
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (a1, NULL))[1], ==, E2EE_V2_TYPE_START);
  open_ok (p.b, a1, "second, still with the start prefix", &info);
  g_assert_false (info.new_chain);
  g_assert_cmpuint (info.n, ==, 1);
  /* Bob's reply turns the ratchet: a new key and chain. */
  b0 = seal (p.b, "reply");
  b1 = seal (p.b, "reply 2");
  open_ok (p.a, b0, "reply", &info);
  g_assert_true (info.new_chain);
  g_assert_false (e2ee_ratchet_awaiting_reply (p.a));
  open_ok (p.a, b1, "reply 2", &info);
  g_assert_false (info.new_chain);
  a2 = seal (p.a, "after the reply");
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (a2, NULL))[1], ==, E2EE_V2_TYPE_MESSAGE);
  g_assert_cmpuint (g_bytes_get_size (a2), ==,
                    E2EE_V2_FIXED_LEN + E2EE_AEAD_IV_LEN + 15 + E2EE_AEAD_TAG_LEN);
  open_ok (p.b, a2, "after the reply", &info);
  g_assert_true (info.new_chain);
  /* an empty message (heartbeat) works too */
  a3 = seal (p.a, "");
  open_ok (p.b, a3, "", &info);
  /* every one of them again: a duplicate, state unchanged */
  open_fails_b (p.b, first, E2EE_ERROR_V2_DUPLICATE);
  open_fails_b (p.b, a1, E2EE_ERROR_V2_DUPLICATE);
  open_fails_b (p.b, a2, E2EE_ERROR_V2_DUPLICATE);
  open_fails_b (p.b, a3, E2EE_ERROR_V2_DUPLICATE);
  open_fails_b (p.a, b0, E2EE_ERROR_V2_DUPLICATE);
  open_fails_b (p.a, b1, E2EE_ERROR_V2_DUPLICATE);
  /* our own message reflected back is for another device */
  open_fails_b (p.a, a2, E2EE_ERROR_V2_DEVICE);
  pair_free (&p);
}

static void
test_weak_start (void)
{
  Pair p = { 0 };
  E2eeRatchetOpened info;
  g_autoptr (GBytes) a1 = NULL, b0 = NULL, a2 = NULL;

  pair_start (&p, E2EE_X3DH_MODE_NO_PREKEY, "weak", NULL);
  g_assert_true (e2ee_ratchet_is_weak (p.a));
  g_assert_true (e2ee_ratchet_is_weak (p.b));
  a1 = seal (p.a, "before the reply");
  open_ok (p.b, a1, "before the reply", &info);
  g_assert_true (info.weak);
  b0 = seal (p.b, "reply");
  open_ok (p.a, b0, "reply", &info);
  g_assert_false (info.weak);
  g_assert_false (e2ee_ratchet_is_weak (p.a));
  a2 = seal (p.a, "after");
  open_ok (p.b, a2, "after", &info);
  g_assert_false (info.weak);
  g_assert_false (e2ee_ratchet_is_weak (p.b));
  pair_free (&p);
}

static void
test_out_of_order (void)
{
  Pair p = { 0 };
  GBytes *m[8];
  E2eeRatchetOpened info;
  g_autoptr (GBytes) b0 = NULL, late = NULL;
  char text[32];

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "order", NULL);
  for (int i = 0; i < 8; i++)
    {
      g_snprintf (text, sizeof text, "m%d", i);
      m[i] = seal (p.a, text);
    }
  open_ok (p.b, m[5], "m5", &info);
  /* "hello" was n = 0, so m0..m7 are n = 1..8: m0..m4 were skipped */
  g_assert_cmpuint (e2ee_ratchet_skipped_count (p.b), ==, 5);
  open_ok (p.b, m[2], "m2", &info);
  g_assert_true (info.skipped);
  open_fails_b (p.b, m[2], E2EE_ERROR_V2_DUPLICATE);
  /* Bob replies; Alice answers on a new chain, then old ones arrive. */
  b0 = seal (p.b, "reply");
  open_ok (p.a, b0, "reply", NULL);
  late = seal (p.a, "new chain");
  open_ok (p.b, late, "new chain", &info);
  g_assert_true (info.new_chain);
  /* PN told Bob how long the old chain was: m6, m7 were stored as skipped
   * beside m0, m1, m3, m4 */
  g_assert_cmpuint (e2ee_ratchet_skipped_count (p.b), ==, 6);
  open_ok (p.b, m[7], "m7", &info);
  open_ok (p.b, m[1], "m1", &info);
  open_ok (p.b, m[6], "m6", &info);
  open_ok (p.b, m[4], "m4", &info);
  open_ok (p.b, m[3], "m3", &info);
  open_ok (p.b, m[0], "m0", &info);
  g_assert_cmpuint (e2ee_ratchet_skipped_count (p.b), ==, 0);
  for (int i = 0; i < 8; i++)
    open_fails_b (p.b, m[i], E2EE_ERROR_V2_DUPLICATE);
  for (int i = 0; i < 8; i++)
    g_bytes_unref (m[i]);
  pair_free (&p);
}

/* Rewrites N (and the tag stays wrong: a forged header). */
static GBytes *
forge_n (GBytes *c, guint32 n, guint32 pn)
{
  gsize len = g_bytes_get_size (c);
  guint8 *d = g_memdup2 (g_bytes_get_data (c, NULL), len);

  d[76] = pn >> 24; d[77] = pn >> 16; d[78] = pn >> 8; d[79] = pn;
  d[80] = n >> 24; d[81] = n >> 16; d[82] = n >> 8; d[83] = n;
  return g_bytes_new_take (d, len);
}

static void
test_skip_bound (void)
{
  Pair p = { 0 };
  g_autoptr (GBytes) c = NULL, forged = NULL, b0 = NULL, d = NULL;
  GPtrArray *sent = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  E2eeRatchetOpened info;

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "skip", NULL);
  /* Bob has read n = 0; n = 1 + 1000 is the furthest he may skip to. */
  for (int i = 1; i <= 1002; i++)
    g_ptr_array_add (sent, seal (p.a, "x"));
  /* genuine but too far (n = 1002 needs 1001 skipped keys) */
  open_fails_b (p.b, sent->pdata[1001], E2EE_ERROR_V2_SKIP_LIMIT);
  /* forged headers far beyond, on the current and on a new chain */
  forged = forge_n (sent->pdata[0], G_MAXUINT32, 0);
  open_fails_b (p.b, forged, E2EE_ERROR_V2_SKIP_LIMIT);
  g_clear_pointer (&forged, g_bytes_unref);
  forged = forge_n (sent->pdata[0], 5000, 0);
  open_fails_b (p.b, forged, E2EE_ERROR_V2_SKIP_LIMIT);
  /* a forged header within the bound costs work but stores nothing */
  g_clear_pointer (&forged, g_bytes_unref);
  forged = forge_n (sent->pdata[0], 900, 0);
  open_fails_b (p.b, forged, E2EE_ERROR_AEAD_TAG);
  g_assert_cmpuint (e2ee_ratchet_skipped_count (p.b), ==, 0);
  /* n = 1001 is exactly at the bound */
  open_ok (p.b, sent->pdata[1000], "x", &info);
  g_assert_cmpuint (info.n, ==, 1001);
  g_assert_cmpuint (e2ee_ratchet_skipped_count (p.b), ==, 1000);
  open_ok (p.b, sent->pdata[1001], "x", &info);
  /* New chain: PN beyond the bound for the old chain is refused too. */
  b0 = seal (p.b, "reply");
  open_ok (p.a, b0, "reply", NULL);
  d = seal (p.a, "y");
  g_clear_pointer (&forged, g_bytes_unref);
  forged = forge_n (d, 0, 1003 + 1001);
  open_fails_b (p.b, forged, E2EE_ERROR_V2_SKIP_LIMIT);
  g_clear_pointer (&forged, g_bytes_unref);
  forged = forge_n (d, 1001, 1003);
  open_fails_b (p.b, forged, E2EE_ERROR_V2_SKIP_LIMIT);
  open_ok (p.b, d, "y", &info);
  g_ptr_array_unref (sent);
  pair_free (&p);
}

static void
test_session_cap (void)
{
  Pair p = { 0 };
  GBytes *c;

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "cap", NULL);
  /* Three chains of 1000 skipped keys each: the session keeps 2000, the
   * oldest evicted first. */
  for (int round = 0; round < 3; round++)
    {
      g_autoptr (GBytes) last = NULL, reply = NULL;
      for (int i = 0; i < 1001; i++)
        {
          c = seal (p.a, "z");
          if (i == 1000)
            last = c;
          else
            g_bytes_unref (c);
        }
      open_ok (p.b, last, "z", NULL);
      reply = seal (p.b, "r");
      open_ok (p.a, reply, "r", NULL);
      g_assert_cmpuint (e2ee_ratchet_skipped_count (p.b), <=, E2EE_RATCHET_MAX_SKIPPED);
    }
  g_assert_cmpuint (e2ee_ratchet_skipped_count (p.b), ==, E2EE_RATCHET_MAX_SKIPPED);
  /* Age: a week later they are gone. */
  e2ee_ratchet_expire (p.b, T0 + E2EE_RATCHET_MAX_AGE - 1);
  g_assert_cmpuint (e2ee_ratchet_skipped_count (p.b), ==, E2EE_RATCHET_MAX_SKIPPED);
  e2ee_ratchet_expire (p.b, T0 + E2EE_RATCHET_MAX_AGE);
  g_assert_cmpuint (e2ee_ratchet_skipped_count (p.b), ==, 0);
  pair_free (&p);
}

static void
test_old_chains_forgotten (void)
{
  Pair p = { 0 };
  g_autoptr (GBytes) lost = NULL;
  g_autoptr (GBytes) c = NULL;

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "chains", NULL);
  lost = seal (p.a, "lost on chain 0");
  for (int step = 0; step < E2EE_RATCHET_MAX_CHAINS; step++)
    {
      g_autoptr (GBytes) r = seal (p.b, "r");
      g_autoptr (GBytes) s = NULL;
      open_ok (p.a, r, "r", NULL);
      s = seal (p.a, "s");
      open_ok (p.b, s, "s", NULL);
    }
  /* The chain the lost message belonged to fell out of the last five:
   * its skipped key went with it and the key is unknown now. */
  g_assert_cmpuint (e2ee_ratchet_skipped_count (p.b), ==, 0);
  open_fails_b (p.b, lost, E2EE_ERROR_AEAD_TAG);
  pair_free (&p);
}

static void
test_tamper (void)
{
  Pair p = { 0 };
  g_autoptr (GBytes) c = NULL, b0 = NULL;
  gsize len;
  const guint8 *d;
  g_autofree guint8 *m = NULL;

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "tamper", NULL);
  c = seal (p.a, "tamper with me");
  d = g_bytes_get_data (c, &len);
  m = g_malloc (len + 1);
  for (gsize i = 0; i < len; i++)
    {
      memcpy (m, d, len);
      m[i] ^= (i == 1) ? 0x03 : 0x01;
      /* any byte: some error, and nothing changes */
      {
        g_autoptr (GBytes) before = e2ee_ratchet_serialize (p.b);
        g_autoptr (GBytes) after = NULL;
        g_autoptr (GError) error = NULL;
        g_autoptr (GBytes) pt = e2ee_ratchet_open (p.b, m, len, T0, NULL, &error);
        g_assert_null (pt);
        g_assert_nonnull (error);
        after = e2ee_ratchet_serialize (p.b);
        g_assert_true (g_bytes_equal (before, after));
      }
    }
  /* reserved flags, version, device tags: their own codes */
  memcpy (m, d, len);
  m[2] = 0x80;
  open_fails (p.b, m, len, T0, E2EE_ERROR_V2_FORMAT);
  memcpy (m, d, len);
  m[0] = 3;
  open_fails (p.b, m, len, T0, E2EE_ERROR_V2_FORMAT);
  memcpy (m, d, len);
  m[10] ^= 1;
  open_fails (p.b, m, len, T0, E2EE_ERROR_V2_DEVICE);
  memcpy (m, d, len);
  m[6] ^= 1;
  open_fails (p.b, m, len, T0, E2EE_ERROR_V2_DEVICE);
  open_fails (p.b, d, E2EE_V2_FIXED_LEN + 27, T0, E2EE_ERROR_V2_FORMAT);
  open_fails (p.b, d, 0, T0, E2EE_ERROR_V2_FORMAT);
  /* a tag one byte short */
  open_fails (p.b, d, len - 1, T0, E2EE_ERROR_AEAD_TAG);
  open_ok (p.b, c, "tamper with me", NULL);
  /* the initiator refuses a start from the peer (crossed starts are the
   * caller's to resolve) */
  b0 = seal (p.b, "reply");
  memcpy (m, g_bytes_get_data (b0, NULL), g_bytes_get_size (b0));
  m[1] = E2EE_V2_TYPE_START;
  {
    g_autoptr (GBytes) fake = NULL;
    guint8 big[512];
    E2eeV2StartPrefix sp = { 1, { 0 }, 1, 2 };
    gsize h;
    e2ee_ec_point_encode (p.ik_b, sp.initiator);
    h = e2ee_v2_header_write (big, DEV_B, DEV_A, m + 11, 0, 0, &sp);
    memset (big + h, 0, 12 + 16);
    open_fails (p.a, big, h + 28, T0, E2EE_ERROR_V2_START);
  }
  pair_free (&p);
}


static void
test_heartbeat (void)
{
  Pair p = { 0 };
  g_autoptr (GBytes) c = NULL;

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "heartbeat", NULL);
  for (int i = 1; i < E2EE_RATCHET_HEARTBEAT; i++)
    {
      g_autoptr (GBytes) m = seal (p.a, "one-sided");
      g_assert_false (e2ee_ratchet_needs_heartbeat (p.b));
      open_ok (p.b, m, "one-sided", NULL);
    }
  g_assert_true (e2ee_ratchet_needs_heartbeat (p.b));
  c = seal (p.b, "");
  g_assert_false (e2ee_ratchet_needs_heartbeat (p.b));
  open_ok (p.a, c, "", NULL);
  pair_free (&p);
}

/* Preparing the next ratchet key early changes nothing for the peer:
 * the next message carries the prepared key and opens; preparing twice or
 * with nothing due is a no-op. */
static void
test_prepare (void)
{
  Pair p = { 0 };
  g_autoptr (GBytes) r = NULL, s = NULL, s2 = NULL, before = NULL, after = NULL;
  E2eeRatchetOpened info;
  g_autoptr (GError) error = NULL;

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "prepare", NULL);
  g_assert_false (e2ee_ratchet_key_due (p.a));
  before = e2ee_ratchet_serialize (p.a);
  g_assert_true (e2ee_ratchet_prepare (p.a, &error));
  after = e2ee_ratchet_serialize (p.a);
  g_assert_true (g_bytes_equal (before, after));
  g_assert_true (e2ee_ratchet_key_due (p.b));
  g_assert_true (e2ee_ratchet_prepare (p.b, &error));
  g_assert_no_error (error);
  g_assert_false (e2ee_ratchet_key_due (p.b));
  g_clear_pointer (&before, g_bytes_unref);
  g_clear_pointer (&after, g_bytes_unref);
  before = e2ee_ratchet_serialize (p.b);
  g_assert_true (e2ee_ratchet_prepare (p.b, NULL));
  after = e2ee_ratchet_serialize (p.b);
  g_assert_true (g_bytes_equal (before, after));
  /* a message of Alice's current chain still opens after the preparation */
  s = seal (p.a, "still on the old chain");
  open_ok (p.b, s, "still on the old chain", &info);
  g_assert_false (e2ee_ratchet_key_due (p.b));
  r = seal (p.b, "prepared reply");
  open_ok (p.a, r, "prepared reply", &info);
  g_assert_true (info.new_chain);
  g_assert_true (e2ee_ratchet_key_due (p.a));
  g_assert_true (e2ee_ratchet_prepare (p.a, NULL));
  s2 = seal (p.a, "and back");
  open_ok (p.b, s2, "and back", &info);
  g_assert_true (info.new_chain);
  pair_free (&p);
}

/* A sender restored from an old backup reuses message numbers: the
 * receiver, which used those keys already, refuses the new texts as
 * duplicates (state unchanged) and takes what follows. */
static void
test_restored_sender (void)
{
  Pair p = { 0 };
  g_autoptr (GBytes) snap = NULL, m1 = NULL, m1b = NULL, m2b = NULL;
  E2eeRatchetOpened info;

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "restored", NULL);
  snap = e2ee_ratchet_serialize (p.a);
  m1 = seal (p.a, "before the restore");
  open_ok (p.b, m1, "before the restore", &info);
  e2ee_ratchet_free (p.a);
  p.a = e2ee_ratchet_deserialize (g_bytes_get_data (snap, NULL), g_bytes_get_size (snap), NULL);
  g_assert_nonnull (p.a);
  m1b = seal (p.a, "same number, other text");
  g_assert_cmpmem (g_bytes_get_data (m1, NULL), 84, g_bytes_get_data (m1b, NULL), 84);
  open_fails_b (p.b, m1b, E2EE_ERROR_V2_DUPLICATE);
  m2b = seal (p.a, "next number");
  open_ok (p.b, m2b, "next number", &info);
  g_assert_cmpuint (info.n, ==, 2);
  pair_free (&p);
}

typedef struct {
  GBytes *c;
  char text[24];
  gboolean to_b;
  gboolean opened;
} InFlight;

/* Random schedules of loss, duplication and reordering on one session.
 * Each schedule seals 8 messages in random directions and delivers them in
 * a random order, some twice, some never: every message delivered opens
 * exactly once, later copies are duplicates, the skipped-key store stays
 * within its bound.  (With 8 sends per schedule no message can be more
 * than 4 chains old, inside the 5 remembered.) */
static void
test_random_schedules (void)
{
  Pair p = { 0 };
  g_autoptr (GRand) rand = g_rand_new_with_seed (20261201);
  /* 10,000 schedules in a plain build (about a minute); 1,000 under
   * AddressSanitizer (each ~3x); 60 with E2EE_QUICK_TESTS, under
   * valgrind, where each schedule costs ~50x. */
#if defined(__SANITIZE_ADDRESS__)
  guint full = 1000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  guint full = 1000;
#else
  guint full = 10000;
#endif
#else
  guint full = 10000;
#endif
  guint schedules = g_getenv ("E2EE_QUICK_TESTS") ? 60 : full;
  guint opened = 0, dups = 0, dropped = 0, serial = 0;
  guint max_skipped = 0;

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "schedules", NULL);
  for (guint s = 0; s < schedules; s++)
    {
      InFlight fl[8];
      GPtrArray *net = g_ptr_array_new ();

      for (int i = 0; i < 8; i++)
        {
          fl[i].to_b = g_rand_boolean (rand);
          g_snprintf (fl[i].text, sizeof fl[i].text, "msg %u", serial++);
          fl[i].c = seal (fl[i].to_b ? p.a : p.b, fl[i].text);
          fl[i].opened = FALSE;
          /* 10% lost, 15% delivered twice */
          if (g_rand_int_range (rand, 0, 100) < 10)
            {
              dropped++;
              continue;
            }
          g_ptr_array_add (net, &fl[i]);
          if (g_rand_int_range (rand, 0, 100) < 15)
            g_ptr_array_add (net, &fl[i]);
          /* deliver some now, in random order */
          while (net->len > 0 && g_rand_int_range (rand, 0, 3) == 0)
            {
              guint k = g_rand_int_range (rand, 0, net->len);
              InFlight *f = g_ptr_array_steal_index_fast (net, k);
              E2eeRatchet *to = f->to_b ? p.b : p.a;
              if (!f->opened)
                {
                  open_ok (to, f->c, f->text, NULL);
                  f->opened = TRUE;
                  opened++;
                }
              else
                {
                  open_fails_b (to, f->c, E2EE_ERROR_V2_DUPLICATE);
                  dups++;
                }
            }
        }
      while (net->len > 0)
        {
          guint k = g_rand_int_range (rand, 0, net->len);
          InFlight *f = g_ptr_array_steal_index_fast (net, k);
          E2eeRatchet *to = f->to_b ? p.b : p.a;
          GError *error = NULL;
          GBytes *pt = e2ee_ratchet_open (to, g_bytes_get_data (f->c, NULL),
                                          g_bytes_get_size (f->c), T0, NULL, &error);
          if (!f->opened)
            {
              g_assert_no_error (error);
              f->opened = TRUE;
              opened++;
            }
          else
            {
              g_assert_error (error, E2EE_ERROR, E2EE_ERROR_V2_DUPLICATE);
              g_clear_error (&error);
              dups++;
            }
          e2ee_bytes_free (pt);
        }
      g_ptr_array_unref (net);
      for (int i = 0; i < 8; i++)
        g_bytes_unref (fl[i].c);
      max_skipped = MAX (max_skipped, e2ee_ratchet_skipped_count (p.a));
      max_skipped = MAX (max_skipped, e2ee_ratchet_skipped_count (p.b));
      g_assert_cmpuint (max_skipped, <=, E2EE_RATCHET_MAX_SKIPPED);
    }
  g_test_message ("%u schedules: %u opened once, %u duplicates refused, %u lost; "
                  "at most %u skipped keys held", schedules, opened, dups, dropped, max_skipped);
  pair_free (&p);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/ratchet/conversation", test_conversation);
  g_test_add_func ("/ratchet/weak-start", test_weak_start);
  g_test_add_func ("/ratchet/out-of-order", test_out_of_order);
  g_test_add_func ("/ratchet/skip-bound", test_skip_bound);
  g_test_add_func ("/ratchet/session-cap", test_session_cap);
  g_test_add_func ("/ratchet/old-chains-forgotten", test_old_chains_forgotten);
  g_test_add_func ("/ratchet/tamper", test_tamper);
  g_test_add_func ("/ratchet/heartbeat", test_heartbeat);
  g_test_add_func ("/ratchet/prepare", test_prepare);
  g_test_add_func ("/ratchet/restored-sender", test_restored_sender);
  g_test_add_func ("/ratchet/random-schedules", test_random_schedules);
  return g_test_run ();
}
