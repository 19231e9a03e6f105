/* Protocol v2 through the session API: downgrade protection (no weaker
 * start once a prekey was seen; v1 envelopes refused), the pinned signing
 * key, the weak start and how it ends, crossed starts, healing after a
 * peer lost its state.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib/gstdio.h>
#include <string.h>

#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-prekey.h"
#include "e2ee-session.h"
#include "e2ee-test-util.h"
#include "e2ee-v2own.h"
#include "e2ee-wipe.h"

#define DAY 86400

typedef struct {
  E2eeContext *ctx;
  E2eeAccountRecord *account;
  char *name;
  gint64 now;               /* this side's clock */
} Side;

static gint64
side_clock (gpointer data)
{
  return ((Side *) data)->now;
}

static Side *
side_new (const char *name, gint64 now)
{
  Side *s = g_new0 (Side, 1);
  GError *error = NULL;

  s->name = g_strdup (name);
  s->now = now;
  s->ctx = e2ee_context_new (e2ee_keyring_new ("/nonexistent/keyring.json"));
  e2ee_context_set_clock (s->ctx, side_clock, s);
  s->account = e2ee_context_ensure_account (s->ctx, "prpl-jabber", name, NULL, &error);
  g_assert_no_error (error);
  return s;
}

static void
side_free (Side *s)
{
  e2ee_context_free (s->ctx);
  g_free (s->name);
  g_free (s);
}

static E2eeLearnResult
learn_set (Side *to, const char *as, GPtrArray *keys)
{
  return e2ee_context_learn_keys (to->ctx, to->account, as, keys, NULL);
}

static E2eeLearnResult
introduce (Side *from, Side *to)
{
  g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (from->ctx, from->account);
  return learn_set (to, from->name, keys);
}

static char *
send_one (Side *from, Side *to, const char *text)
{
  GError *error = NULL;
  char **pieces = e2ee_context_encrypt (from->ctx, from->account, to->name, text, 0, &error);
  char *armored;

  g_assert_no_error (error);
  g_assert_nonnull (pieces);
  armored = g_strdup (pieces[0]);
  g_strfreev (pieces);
  return armored;
}

static void
expect_text (Side *to, Side *from, const char *wire, const char *text, gboolean weak)
{
  E2eeRecvResult r;

  e2ee_context_receive (to->ctx, to->account, from->name, wire, 1, &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpstr (r.plaintext, ==, text);
  g_assert_cmpint (r.weak, ==, weak);
  e2ee_recv_result_clear (&r);
}

/* The start mode of a single-recipient envelope (0: not a start):
 * envelope byte 0, then the ratchet message, whose type is at 1 and the
 * start prefix's mode at 84. */
static guint
start_mode (const char *armored)
{
  g_autoptr (GBytes) raw = e2ee_armor_decode (armored, NULL);
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (raw, &len);

  g_assert_cmpuint (len, >, 86);
  g_assert_cmpuint (d[0] & 0x01, ==, 0);
  return d[2] == 2 ? d[85] : 0;
}

/* A key set of @of whose keys carry no v2 data (a server stripped it). */
static GPtrArray *
stripped_set (Side *of)
{
  g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (of->ctx, of->account);
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);

  for (guint i = 0; i < keys->len; i++)
    g_ptr_array_add (out, e2ee_key_with_caps (keys->pdata[i], E2EE_CAPS_V1));
  return out;
}

/* Once Bob's device has shown a signed prekey, Alice never starts a
 * session with it without one: not when a republished set lacks it, not
 * when the one she has expired.  A device that never showed one gets the
 * weaker start, flagged on both sides until the reply. */
static void
test_no_weak_start_after_prekey (void)
{
  gint64 t0 = 1800000000;
  Side *alice = side_new ("alice@example.org", t0);
  Side *bob = side_new ("bob@example.org", t0);
  Side *carol = side_new ("carol@example.org", t0);
  g_autoptr (GPtrArray) stripped = NULL;
  g_autoptr (GPtrArray) carol_plain = stripped_set (carol);
  GError *error = NULL;
  char **pieces;
  char *m;

  g_assert_cmpint (introduce (bob, alice), ==, E2EE_LEARN_FIRST_CONTACT);
  /* The server republishes Bob's set without its v2 data: nothing lost. */
  stripped = stripped_set (bob);
  learn_set (alice, bob->name, stripped);
  /* Fifteen days on, the prekey Alice has is expired. */
  alice->now = t0 + 15 * DAY;
  pieces = e2ee_context_encrypt (alice->ctx, alice->account, bob->name, "x", 0, &error);
  g_assert_null (pieces);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_V2_NO_PREKEY);
  g_clear_error (&error);
  /* Bob, online again, publishes a fresh one: a prekey start. */
  bob->now = t0 + 15 * DAY;
  introduce (bob, alice);
  m = send_one (alice, bob, "with a fresh prekey");
  g_assert_cmpuint (start_mode (m), ==, 1);
  g_assert_false (e2ee_context_session_weak (alice->ctx, alice->account, bob->name));
  introduce (alice, bob);
  expect_text (bob, alice, m, "with a fresh prekey", FALSE);
  g_free (m);

  /* Control: Carol never published a prekey (a v1-style set, e.g. IRC
   * before any exchange): the weaker start, flagged until she answers. */
  alice->now = t0;
  learn_set (alice, carol->name, carol_plain);
  m = send_one (alice, carol, "weak start");
  g_assert_cmpuint (start_mode (m), ==, 2);
  g_assert_true (e2ee_context_session_weak (alice->ctx, alice->account, carol->name));
  introduce (alice, carol);
  expect_text (carol, alice, m, "weak start", TRUE);
  g_free (m);
  m = send_one (carol, alice, "answer");
  expect_text (alice, carol, m, "answer", FALSE);
  g_free (m);
  g_assert_false (e2ee_context_session_weak (alice->ctx, alice->account, carol->name));
  /* Once Carol's prekey is known, no weaker start with her either. */
  introduce (carol, alice);
  m = send_one (alice, carol, "after the answer");
  expect_text (carol, alice, m, "after the answer", FALSE);
  g_free (m);

  side_free (alice);
  side_free (bob);
  side_free (carol);
}

/* Bob's signing key is pinned with his device: a set that names another
 * signing key (and a prekey signed by it for Bob's identity) is not used,
 * so whoever forged it cannot make Alice start on a prekey they hold. */
static void
test_signing_key_pinned (void)
{
  gint64 t0 = 1800000000;
  Side *alice = side_new ("alice@example.org", t0);
  Side *bob = side_new ("bob@example.org", t0);
  g_autoptr (E2eeSignKey) forger = e2ee_sign_key_generate (NULL);
  g_autoptr (GPtrArray) real = e2ee_context_own_keyset (bob->ctx, bob->account);
  g_autoptr (GPtrArray) forged = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  g_autoptr (E2eeEcSecret) spk = NULL;
  g_autoptr (GBytes) record = NULL;
  GError *error = NULL;
  char *m;

  g_assert_nonnull (forger);
  g_assert_true (e2ee_prekey_create (forger, real->pdata[0],
                                     e2ee_v2_device_tag (real->pdata[0]), 77, t0 + 60,
                                     E2EE_V2_VERSIONS, &spk, &record, &error));
  g_assert_no_error (error);
  g_ptr_array_add (forged, e2ee_key_with_v2 (real->pdata[0], e2ee_sign_key_get_public (forger),
                                             record));
  learn_set (alice, bob->name, real);
  alice->now = t0 + 120;
  learn_set (alice, bob->name, forged);
  m = send_one (alice, bob, "to the real prekey");
  g_assert_cmpuint (start_mode (m), ==, 1);
  introduce (alice, bob);
  /* Bob opens it: it was started on his own prekey (on the forged one, id
   * 77, it would be E2EE_ERROR_V2_START). */
  expect_text (bob, alice, m, "to the real prekey", FALSE);
  g_free (m);
  side_free (alice);
  side_free (bob);
}

/* A v1 envelope (static-static keys, no forward secrecy) is not read. */
static void
test_v1_refused (void)
{
  Side *alice = side_new ("alice@example.org", 1800000000);
  Side *bob = side_new ("bob@example.org", 1800000000);
  g_autofree char *m = NULL, *v1 = NULL;
  g_autoptr (GBytes) raw = NULL, edited = NULL;
  GError *error = NULL;
  E2eeRecvResult r;
  guint8 *copy;
  gsize len = 0;

  introduce (bob, alice);
  introduce (alice, bob);
  m = send_one (alice, bob, "hello");
  raw = e2ee_armor_decode (m, &error);
  g_assert_no_error (error);
  {
    const guint8 *data = g_bytes_get_data (raw, &len);
    copy = g_memdup2 (data, len);
  }
  copy[0] = 0x11;   /* version 1, caps v1 */
  edited = g_bytes_new_take (copy, len);
  v1 = e2ee_armor_encode (edited);
  e2ee_context_receive (bob->ctx, bob->account, alice->name, v1, 1, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
  g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_V1_RETIRED);
  g_assert_null (r.plaintext);
  e2ee_recv_result_clear (&r);
  /* The genuine one still opens: the refusal changed nothing. */
  expect_text (bob, alice, m, "hello", FALSE);
  side_free (alice);
  side_free (bob);
}

/* Both start before either heard from the other: every message opens,
 * both ways, and afterwards neither sends a start again. */
static void
test_crossed_starts (void)
{
  Side *alice = side_new ("alice@example.org", 1800000000);
  Side *bob = side_new ("bob@example.org", 1800000000);
  char *a1, *b1, *a2, *b2, *a3;

  introduce (bob, alice);
  introduce (alice, bob);
  a1 = send_one (alice, bob, "a1");
  b1 = send_one (bob, alice, "b1");
  g_assert_cmpuint (start_mode (a1), ==, 1);
  g_assert_cmpuint (start_mode (b1), ==, 1);
  expect_text (bob, alice, a1, "a1", FALSE);
  expect_text (alice, bob, b1, "b1", FALSE);
  a2 = send_one (alice, bob, "a2");
  b2 = send_one (bob, alice, "b2");
  expect_text (bob, alice, a2, "a2", FALSE);
  expect_text (alice, bob, b2, "b2", FALSE);
  a3 = send_one (alice, bob, "a3");
  g_assert_cmpuint (start_mode (a3), ==, 0);
  expect_text (bob, alice, a3, "a3", FALSE);
  g_free (a1);
  g_free (b1);
  g_free (a2);
  g_free (b2);
  g_free (a3);
  side_free (alice);
  side_free (bob);
}

/* Bob loses his state (a new installation of the same identity, no
 * sessions, new prekeys): Alice's next message does not open; Bob's
 * answer is a new start (once, rate-limited), after which Alice's
 * messages open again. */
static void
test_heal_after_lost_state (void)
{
  gint64 t0 = 1800000000;
  Side *alice = side_new ("alice@example.org", t0);
  Side *bob = side_new ("bob@example.org", t0);
  Side *bob2;
  GError *error = NULL;
  E2eeRecvResult r;
  char *m, *heal;

  introduce (bob, alice);
  introduce (alice, bob);
  m = send_one (alice, bob, "before");
  expect_text (bob, alice, m, "before", FALSE);
  g_free (m);
  m = send_one (bob, alice, "reply");
  expect_text (alice, bob, m, "reply", FALSE);
  g_free (m);

  bob2 = g_new0 (Side, 1);
  bob2->name = g_strdup (bob->name);
  bob2->now = t0 + 60;
  bob2->ctx = e2ee_context_new (e2ee_keyring_new ("/nonexistent/keyring2.json"));
  e2ee_context_set_clock (bob2->ctx, side_clock, bob2);
  bob2->account = e2ee_keyring_add_account (e2ee_context_get_keyring (bob2->ctx), "prpl-jabber",
                                            bob->name, bob->account->identity);
  introduce (alice, bob2);

  m = send_one (alice, bob, "lost");
  e2ee_context_receive (bob2->ctx, bob2->account, alice->name, m, 1, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
  g_assert_null (r.plaintext);
  g_assert_nonnull (r.reply);
  heal = g_strdup (r.reply);
  e2ee_recv_result_clear (&r);
  /* Again at once: no second start (at most one per device per 10 min). */
  e2ee_context_receive (bob2->ctx, bob2->account, alice->name, m, 1, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
  g_assert_null (r.reply);
  e2ee_recv_result_clear (&r);
  g_free (m);
  /* The heal is an empty message: Alice shows nothing and answers on it. */
  e2ee_context_receive (alice->ctx, alice->account, bob->name, heal, 1, &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
  e2ee_recv_result_clear (&r);
  g_free (heal);
  m = send_one (alice, bob2, "healed");
  expect_text (bob2, alice, m, "healed", FALSE);
  g_free (m);
  m = send_one (bob2, alice, "and back");
  expect_text (alice, bob2, m, "and back", FALSE);
  g_free (m);
  g_assert_no_error (error);
  side_free (bob2);
  side_free (alice);
  side_free (bob);
}

/* A start without a prekey has no prekey whose deletion ends its replay:
 * the receiver remembers it, and a replay is dropped, also after the
 * sender's next messages. */
static void
test_weak_start_replay (void)
{
  Side *alice = side_new ("alice@example.org", 1800000000);
  Side *carol = side_new ("carol@example.org", 1800000000);
  g_autoptr (GPtrArray) carol_plain = stripped_set (carol);
  E2eeRecvResult r;
  char *m, *m2;

  learn_set (alice, carol->name, carol_plain);
  introduce (alice, carol);
  m = send_one (alice, carol, "weak one");
  g_assert_cmpuint (start_mode (m), ==, 2);
  expect_text (carol, alice, m, "weak one", TRUE);
  m2 = send_one (alice, carol, "weak two");
  expect_text (carol, alice, m2, "weak two", TRUE);
  for (guint i = 0; i < 2; i++)
    {
      e2ee_context_receive (carol->ctx, carol->account, alice->name, i ? m2 : m, 1, &r);
      g_assert_no_error (r.error);
      g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
      g_assert_null (r.plaintext);
      e2ee_recv_result_clear (&r);
    }
  g_free (m);
  g_free (m2);
  side_free (alice);
  side_free (carol);
}

static gboolean
commit_save (E2eeContext *ctx, gpointer data, GError **error)
{
  return e2ee_keyring_save (e2ee_context_get_keyring (ctx), error);
}

/* The ratchet key and message number of a single-recipient envelope. */
static char *
ratchet_position (const char *armored)
{
  g_autoptr (GBytes) raw = e2ee_armor_decode (armored, NULL);
  const guint8 *d = g_bytes_get_data (raw, NULL);
  g_autofree char *key = g_compute_checksum_for_data (G_CHECKSUM_SHA256, d + 12, 65);

  return g_strdup_printf ("%s/%u", key, (guint) d[81] << 24 | (guint) d[82] << 16
                                        | (guint) d[83] << 8 | d[84]);
}

/* Two programs on one keyring file (two clients of one account): they
 * never both advance one session.  The one whose session state is stale
 * fails to send (nothing leaves), and its next try continues from the
 * other's state; every message opens, no message number is used twice. */
static void
test_two_programs_one_keyring (void)
{
  g_autofree char *dir = g_dir_make_tmp ("e2ee-session-v2-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keyring.json", NULL);
  g_autofree char *db = g_build_filename (dir, "keyring.sqlite", NULL);
  g_autofree char *wal = g_strconcat (db, "-wal", NULL);
  g_autofree char *shm = g_strconcat (db, "-shm", NULL);
  Side *bob = side_new ("bob@example.org", 1800000000);
  Side *a1 = g_new0 (Side, 1), *a2 = g_new0 (Side, 1);
  GError *error = NULL;
  char *m0, *m1, *m2;
  char **pieces;
  g_autofree char *p0 = NULL, *p1 = NULL, *p2 = NULL;

  g_assert_nonnull (dir);
  a1->name = g_strdup ("alice@example.org");
  a1->now = 1800000000;
  a1->ctx = e2ee_context_new (e2ee_keyring_load (path, NULL, &error));
  g_assert_no_error (error);
  e2ee_context_set_clock (a1->ctx, side_clock, a1);
  e2ee_context_set_commit_func (a1->ctx, commit_save, NULL);
  a1->account = e2ee_context_ensure_account_saved (a1->ctx, "prpl-jabber", a1->name, NULL, &error);
  g_assert_no_error (error);
  introduce (bob, a1);
  introduce (a1, bob);
  m0 = send_one (a1, bob, "from the first program");

  a2->name = g_strdup (a1->name);
  a2->now = a1->now;
  a2->ctx = e2ee_context_new (e2ee_keyring_load (path, NULL, &error));
  g_assert_no_error (error);
  e2ee_context_set_clock (a2->ctx, side_clock, a2);
  e2ee_context_set_commit_func (a2->ctx, commit_save, NULL);
  a2->account = e2ee_keyring_lookup_account (e2ee_context_get_keyring (a2->ctx), "prpl-jabber",
                                             a2->name);
  g_assert_nonnull (a2->account);
  m1 = send_one (a2, bob, "from the second program");

  /* The first program's copy of the session is stale now. */
  pieces = e2ee_context_encrypt (a1->ctx, a1->account, bob->name, "stale", 0, &error);
  g_assert_null (pieces);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_LOCKED);
  g_clear_error (&error);
  m2 = send_one (a1, bob, "after reading it again");

  p0 = ratchet_position (m0);
  p1 = ratchet_position (m1);
  p2 = ratchet_position (m2);
  g_assert_cmpstr (p0, !=, p1);
  g_assert_cmpstr (p1, !=, p2);
  g_assert_cmpstr (p0, !=, p2);
  expect_text (bob, a1, m0, "from the first program", FALSE);
  expect_text (bob, a1, m1, "from the second program", FALSE);
  expect_text (bob, a1, m2, "after reading it again", FALSE);
  g_free (m0);
  g_free (m1);
  g_free (m2);
  side_free (a1);
  side_free (a2);
  side_free (bob);
  g_unlink (db);
  g_unlink (wal);
  g_unlink (shm);
  g_rmdir (dir);
}

/* A message from Bob that does not open marks the session for a new start;
 * when none can be made (Bob's prekey expired meanwhile), Alice still
 * sends on the session she has instead of not at all. */
static void
test_failed_restart_keeps_session (void)
{
  gint64 t0 = 1800000000;
  Side *alice = side_new ("alice@example.org", t0);
  Side *bob = side_new ("bob@example.org", t0);
  g_autoptr (GBytes) raw = NULL, edited = NULL;
  g_autofree char *bad = NULL;
  E2eeRecvResult r;
  guint8 *copy;
  gsize len = 0;
  char *m;

  introduce (bob, alice);
  introduce (alice, bob);
  m = send_one (alice, bob, "hello");
  expect_text (bob, alice, m, "hello", FALSE);
  g_free (m);
  m = send_one (bob, alice, "hi");
  raw = e2ee_armor_decode (m, NULL);
  {
    const guint8 *data = g_bytes_get_data (raw, &len);
    copy = g_memdup2 (data, len);
  }
  copy[len - 1] ^= 0x01;
  edited = g_bytes_new_take (copy, len);
  bad = e2ee_armor_encode (edited);
  alice->now = t0 + 15 * DAY;
  e2ee_context_receive (alice->ctx, alice->account, bob->name, bad, 1, &r);
  g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_AEAD_TAG);
  e2ee_recv_result_clear (&r);
  expect_text (alice, bob, m, "hi", FALSE);
  g_free (m);
  m = send_one (alice, bob, "still here");
  expect_text (bob, alice, m, "still here", FALSE);
  g_free (m);
  side_free (alice);
  side_free (bob);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/session-v2/downgrade/no-weak-start-after-prekey",
                   test_no_weak_start_after_prekey);
  g_test_add_func ("/session-v2/signing-key-pinned", test_signing_key_pinned);
  g_test_add_func ("/session-v2/v1-envelope-refused", test_v1_refused);
  g_test_add_func ("/session-v2/crossed-starts", test_crossed_starts);
  g_test_add_func ("/session-v2/heal-after-lost-state", test_heal_after_lost_state);
  g_test_add_func ("/session-v2/weak-start-replay", test_weak_start_replay);
  g_test_add_func ("/session-v2/failed-restart-keeps-session", test_failed_restart_keeps_session);
  g_test_add_func ("/session-v2/two-programs-one-keyring", test_two_programs_one_keyring);
  return g_test_run ();
}
