/* In-process Alice/Bob conversations through the session API.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib/gstdio.h>
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-session.h"
#include "e2ee-test-util.h"
#include "e2ee-wipe.h"

typedef struct {
  E2eeContext *ctx;
  E2eeAccountRecord *account;
  char *name;
  guint changes;
} Peer;

static void
on_changed (E2eeContext *ctx, gpointer data)
{
  ((Peer *) data)->changes++;
}

static Peer *
peer_new (const char *name)
{
  Peer *p = g_new0 (Peer, 1);
  gboolean created = FALSE;
  GError *error = NULL;

  p->name = g_strdup (name);
  p->ctx = e2ee_context_new (e2ee_keyring_new ("/nonexistent/keyring.json"));
  e2ee_context_set_changed_func (p->ctx, on_changed, p);
  p->account = e2ee_context_ensure_account (p->ctx, "prpl-jabber", name, &created, &error);
  g_assert_no_error (error);
  g_assert_true (created);
  g_assert_cmpuint (p->changes, ==, 1);
  return p;
}

static void
peer_free (Peer *p)
{
  e2ee_context_free (p->ctx);
  g_free (p->name);
  g_free (p);
}

/* @to learns the key set @from publishes. */
static E2eeLearnResult
introduce (Peer *from, Peer *to)
{
  g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (from->ctx, from->account);
  return e2ee_context_learn_keys (to->ctx, to->account, from->name, keys, NULL);
}

/* Sends @text from @from to buddy name @to_name, returning the pieces. */
static char **
send_text (Peer *from, const char *to_name, const char *text, gsize budget)
{
  GError *error = NULL;
  char **pieces = e2ee_context_encrypt (from->ctx, from->account, to_name, text, budget, &error);
  g_assert_no_error (error);
  g_assert_nonnull (pieces);
  return pieces;
}

static void
deliver (Peer *to, const char *from_name, const char *wire, E2eeRecvResult *r)
{
  e2ee_context_receive (to->ctx, to->account, from_name, wire, 1000, r);
}

static void
test_round_trip (void)
{
  Peer *alice = peer_new ("alice@localhost");
  Peer *bob = peer_new ("bob@localhost");
  const char *text = "Grüße, Bob! <b>bold</b> & 'quotes' — ✓";
  E2eeRecvResult r;
  char **pieces;

  g_assert_cmpint (introduce (bob, alice), ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_cmpint (introduce (alice, bob), ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_cmpint (introduce (alice, bob), ==, E2EE_LEARN_NOTHING_NEW);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_ENCRYPT);

  pieces = send_text (alice, bob->name, text, 0);
  g_assert_cmpuint (g_strv_length (pieces), ==, 1);
  g_assert_true (g_str_has_prefix (pieces[0], E2EE_ARMOR_PREFIX));
  g_assert_null (strstr (pieces[0], "Bob"));
  deliver (bob, alice->name, pieces[0], &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpstr (r.plaintext, ==, text);
  g_assert_cmpint (r.sender_trust, ==, E2EE_TRUST_TOFU);
  g_assert_cmpstr (r.sender_kid, ==, e2ee_key_get_kid (alice->account->identity));
  e2ee_recv_result_clear (&r);

  /* The same envelope again is a duplicate: dropped without a word. */
  deliver (bob, alice->name, pieces[0], &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
  g_assert_null (r.plaintext);
  e2ee_recv_result_clear (&r);
  g_strfreev (pieces);

  /* And back. */
  pieces = send_text (bob, alice->name, "hi", 0);
  deliver (alice, bob->name, pieces[0], &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpstr (r.plaintext, ==, "hi");
  e2ee_recv_result_clear (&r);
  g_strfreev (pieces);

  /* Plaintext after an encrypted exchange is flagged as a downgrade. */
  deliver (alice, bob->name, "plain words", &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PLAINTEXT);
  g_assert_true (r.downgrade);
  e2ee_recv_result_clear (&r);
  deliver (alice, "carol@localhost", "plain words", &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PLAINTEXT);
  g_assert_false (r.downgrade);
  e2ee_recv_result_clear (&r);

  peer_free (alice);
  peer_free (bob);
}

static void
test_reorder_and_window (void)
{
  Peer *alice = peer_new ("alice@localhost");
  Peer *bob = peer_new ("bob@localhost");
  char **msgs[70];
  E2eeRecvResult r;

  introduce (bob, alice);
  introduce (alice, bob);
  for (guint i = 0; i < G_N_ELEMENTS (msgs); i++)
    msgs[i] = send_text (alice, bob->name, "m", 0);
  /* Deliver the newest first, then the older ones: each opens once. */
  deliver (bob, alice->name, msgs[69][0], &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  e2ee_recv_result_clear (&r);
  for (guint i = 68; i != G_MAXUINT; i--)
    {
      deliver (bob, alice->name, msgs[i][0], &r);
      g_assert_no_error (r.error);
      g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
      e2ee_recv_result_clear (&r);
    }
  /* Every one again: dropped silently. */
  for (guint i = 0; i < G_N_ELEMENTS (msgs); i += 10)
    {
      deliver (bob, alice->name, msgs[i][0], &r);
      g_assert_no_error (r.error);
      g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
      e2ee_recv_result_clear (&r);
    }
  for (guint i = 0; i < G_N_ELEMENTS (msgs); i++)
    g_strfreev (msgs[i]);
  peer_free (alice);
  peer_free (bob);
}

static void
test_tampered (void)
{
  Peer *alice = peer_new ("alice@localhost");
  Peer *bob = peer_new ("bob@localhost");
  E2eeRecvResult r;
  char **pieces;
  gsize len;

  introduce (bob, alice);
  introduce (alice, bob);
  pieces = send_text (alice, bob->name, "transfer 100 EUR", 0);
  len = strlen (pieces[0]);
  /* Flip one base64url character in every position past the prefix. */
  for (gsize i = strlen (E2EE_ARMOR_PREFIX); i < len; i++)
    {
      char *copy = g_strdup (pieces[0]);
      copy[i] = copy[i] == 'A' ? 'B' : 'A';
      deliver (bob, alice->name, copy, &r);
      g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
      g_assert_null (r.plaintext);
      g_assert_nonnull (r.error);
      e2ee_recv_result_clear (&r);
      g_free (copy);
    }
  /* The genuine one still opens: failures changed no replay state. */
  deliver (bob, alice->name, pieces[0], &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  e2ee_recv_result_clear (&r);
  g_strfreev (pieces);
  peer_free (alice);
  peer_free (bob);
}

static void
test_fragments (void)
{
  Peer *alice = peer_new ("alice@irc");
  Peer *bob = peer_new ("bob@irc");
  GString *big = g_string_new (NULL);
  E2eeRecvResult r;
  char **pieces;
  guint n;

  introduce (bob, alice);
  introduce (alice, bob);
  for (guint i = 0; big->len < 4096; i++)
    g_string_append_printf (big, "line %u of a long message ", i);
  pieces = send_text (alice, bob->name, big->str, 400);
  n = g_strv_length (pieces);
  g_assert_cmpuint (n, >, 10);
  for (guint i = 0; i < n; i++)
    g_assert_cmpuint (strlen (pieces[i]), <=, 400);
  /* Deliver in reverse order: all but the last are held. */
  for (guint i = n; i-- > 0;)
    {
      deliver (bob, alice->name, pieces[i], &r);
      g_assert_no_error (r.error);
      if (i > 0)
        g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
      else
        {
          g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
          g_assert_cmpstr (r.plaintext, ==, big->str);
        }
      e2ee_recv_result_clear (&r);
    }
  g_strfreev (pieces);
  g_string_free (big, TRUE);
  peer_free (alice);
  peer_free (bob);
}

/* Bob has two installations; Alice adds the second after a decision. */
static void
test_devices_and_key_change (void)
{
  Peer *alice = peer_new ("alice@localhost");
  Peer *bob = peer_new ("bob@localhost");
  Peer *bob2 = peer_new ("bob@localhost");
  g_autoptr (GPtrArray) bob_set = NULL;
  g_autoptr (GPtrArray) fresh = NULL;
  GError *error = NULL;
  E2eeRecvResult r;
  char **pieces;

  introduce (bob, alice);
  introduce (alice, bob);
  introduce (alice, bob2);
  /* Bob's installations learn each other through their own account:
   * never trusted on first use, each confirms the other. */
  g_assert_cmpint (introduce (bob2, bob), ==, E2EE_LEARN_OWN_DEVICE);
  g_assert_cmpint (introduce (bob, bob2), ==, E2EE_LEARN_OWN_DEVICE);
  g_assert_true (e2ee_context_set_own_trust (bob->ctx, bob->account,
                                             e2ee_key_get_kid (bob2->account->identity),
                                             E2EE_TRUST_VERIFIED, &error));
  g_assert_true (e2ee_context_set_own_trust (bob2->ctx, bob2->account,
                                             e2ee_key_get_kid (bob->account->identity),
                                             E2EE_TRUST_VERIFIED, &error));
  g_assert_no_error (error);
  /* Bob now publishes both keys: Alice sees a new device, not a change. */
  bob_set = e2ee_context_own_keyset (bob->ctx, bob->account);
  g_assert_cmpuint (bob_set->len, ==, 2);
  g_assert_cmpint (e2ee_context_learn_keys (alice->ctx, alice->account, bob->name, bob_set, &fresh),
                   ==, E2EE_LEARN_NEW_DEVICE);
  g_assert_cmpuint (fresh->len, ==, 1);
  g_assert_true (e2ee_key_equal (fresh->pdata[0], bob2->account->identity));

  /* Undecided devices get nothing. */
  pieces = send_text (alice, bob->name, "before trust", 0);
  deliver (bob2, alice->name, pieces[0], &r);
  g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_NOT_FOR_US);
  /* bob2 knows bob's key: it says whom the message was for. */
  g_assert_nonnull (strstr (r.error->message, "another device of this account"));
  e2ee_recv_result_clear (&r);
  g_strfreev (pieces);

  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, NULL,
                                         E2EE_TRUST_VERIFIED, &error));
  g_assert_no_error (error);
  pieces = send_text (alice, bob->name, "to both", 0);
  deliver (bob, alice->name, pieces[0], &r);
  g_assert_cmpstr (r.plaintext, ==, "to both");
  e2ee_recv_result_clear (&r);
  deliver (bob2, alice->name, pieces[0], &r);
  g_assert_cmpstr (r.plaintext, ==, "to both");
  e2ee_recv_result_clear (&r);
  g_strfreev (pieces);

  /* Bob's messages are also readable by his other installation. */
  pieces = send_text (bob, alice->name, "from bob 1", 0);
  deliver (bob2, bob->name, pieces[0], &r);
  g_assert_cmpstr (r.plaintext, ==, "from bob 1");
  e2ee_recv_result_clear (&r);
  g_strfreev (pieces);

  /* A whole new identity for Bob is a key change: sending stops. */
  {
    Peer *mallory = peer_new ("bob@localhost");
    g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (mallory->ctx, mallory->account);
    g_assert_cmpint (e2ee_context_learn_keys (alice->ctx, alice->account, bob->name, keys, NULL),
                     ==, E2EE_LEARN_KEY_CHANGED);
    g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, &error),
                     ==, E2EE_SEND_BLOCK);
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED);
    g_clear_error (&error);
    g_assert_null (e2ee_context_encrypt (alice->ctx, alice->account, bob->name, "x", 0, &error));
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED);
    g_clear_error (&error);
    /* Accepting it retires the old keys. */
    g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name,
                                           e2ee_key_get_kid (mallory->account->identity),
                                           E2EE_TRUST_TOFU, &error));
    introduce (alice, mallory);
    pieces = send_text (alice, bob->name, "after change", 0);
    deliver (mallory, alice->name, pieces[0], &r);
    g_assert_cmpstr (r.plaintext, ==, "after change");
    e2ee_recv_result_clear (&r);
    deliver (bob, alice->name, pieces[0], &r);
    g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_NOT_FOR_US);
    e2ee_recv_result_clear (&r);
    g_strfreev (pieces);
    peer_free (mallory);
  }
  peer_free (alice);
  peer_free (bob);
  peer_free (bob2);
}

static void
test_policy_and_offers (void)
{
  Peer *alice = peer_new ("alice@irc");
  Peer *bob = peer_new ("bob@irc");
  g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (alice->ctx, alice->account);
  g_autofree char *offer = e2ee_offer_inband (E2EE_OFFER_KIND_OFFER, keys);
  GError *error = NULL;
  E2eeRecvResult r, r2;

  /* Opportunistic without a key: plaintext allowed; required: blocked. */
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_PLAINTEXT);
  e2ee_context_set_policy (alice->ctx, alice->account, bob->name, E2EE_POLICY_REQUIRED);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, &error),
                   ==, E2EE_SEND_BLOCK);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NO_KEY);
  g_clear_error (&error);

  /* Offer, answer, and the answer is not answered. */
  deliver (bob, alice->name, offer, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_OFFER);
  g_assert_cmpint (r.learned, ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_nonnull (r.reply);
  deliver (alice, bob->name, r.reply, &r2);
  g_assert_cmpint (r2.kind, ==, E2EE_RECV_OFFER);
  g_assert_cmpint (r2.learned, ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_null (r2.reply);
  e2ee_recv_result_clear (&r);
  e2ee_recv_result_clear (&r2);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_ENCRYPT);

  /* Off wins over a known key. */
  e2ee_context_set_policy (alice->ctx, alice->account, bob->name, E2EE_POLICY_OFF);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_PLAINTEXT);
  g_assert_null (e2ee_context_encrypt (alice->ctx, alice->account, bob->name, "x", 0, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_POLICY);
  g_clear_error (&error);

  /* Reset forgets the keys. */
  g_assert_true (e2ee_context_reset (alice->ctx, alice->account, bob->name, NULL));
  g_assert_false (e2ee_context_reset (alice->ctx, alice->account, bob->name, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NO_KEY);
  g_clear_error (&error);
  peer_free (alice);
  peer_free (bob);
}

/* Counters never go back, even when a device restarts from an old state. */
static void
test_counter_after_restore (void)
{
  Peer *alice = peer_new ("alice@localhost");
  Peer *bob = peer_new ("bob@localhost");
  E2eeRecvResult r;
  char **first, **second;

  introduce (bob, alice);
  introduce (alice, bob);
  first = send_text (alice, bob->name, "one", 0);
  deliver (bob, alice->name, first[0], &r);
  e2ee_recv_result_clear (&r);
  /* As if Alice's keyring were restored from before "one" was sent. */
  alice->account->last_counter = 0;
  g_usleep (20 * 1000);
  second = send_text (alice, bob->name, "two", 0);
  deliver (bob, alice->name, second[0], &r);
  g_assert_no_error (r.error);
  g_assert_cmpstr (r.plaintext, ==, "two");
  e2ee_recv_result_clear (&r);
  g_strfreev (first);
  g_strfreev (second);
  peer_free (alice);
  peer_free (bob);
}

/* One recipient: 27 header bytes, 16 tag bytes, 1..4 blocks of 64. */
static gboolean
padded_length_ok (gsize armored_len)
{
  /* One envelope byte and one ratchet message (112 bytes of header, IV
   * and tag, 183 while the start prefix is repeated) around the body. */
  for (guint k = 1; k <= 4; k++)
    if (armored_len == strlen (E2EE_ARMOR_PREFIX) + e2ee_b64url_encoded_len (1 + 112 + 64 * k)
        || armored_len == strlen (E2EE_ARMOR_PREFIX) + e2ee_b64url_encoded_len (1 + 183 + 64 * k))
      return TRUE;
  return FALSE;
}

static void
test_padding (void)
{
  Peer *alice = peer_new ("alice@localhost");
  Peer *bob = peer_new ("bob@localhost");
  E2eeRecvResult r;
  char **a, **b;

  introduce (bob, alice);
  introduce (alice, bob);
  e2ee_context_set_padding (alice->ctx, 64);
  a = send_text (alice, bob->name, "y", 0);
  b = send_text (alice, bob->name, "yes, of course", 0);
  /* Both fit one 64-byte block, plus 0..3 random extra blocks: the
   * armored length reveals only the block count. */
  g_assert_true (padded_length_ok (strlen (a[0])));
  g_assert_true (padded_length_ok (strlen (b[0])));
  deliver (bob, alice->name, b[0], &r);
  g_assert_cmpstr (r.plaintext, ==, "yes, of course");
  e2ee_recv_result_clear (&r);
  deliver (bob, alice->name, a[0], &r);
  g_assert_cmpstr (r.plaintext, ==, "y");
  e2ee_recv_result_clear (&r);
  g_strfreev (a);
  g_strfreev (b);
  peer_free (alice);
  peer_free (bob);
}

/* Replay state and pinned keys survive a restart through the keyring file. */
static void
test_persistence (void)
{
  g_autofree char *dir = g_dir_make_tmp ("e2ee-session-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keyring.json", NULL);
  g_autofree char *backup = g_strconcat (path, "~", NULL);
  g_autofree char *lock = g_strconcat (path, ".lock", NULL);
  Peer *alice = peer_new ("alice@localhost");
  E2eeContext *bob_ctx = e2ee_context_new (e2ee_keyring_new (path));
  E2eeAccountRecord *bob_account;
  g_autoptr (GPtrArray) alice_keys = e2ee_context_own_keyset (alice->ctx, alice->account);
  g_autoptr (GPtrArray) bob_keys = NULL;
  GError *error = NULL;
  E2eeRecvResult r;
  char **pieces;

  bob_account = e2ee_context_ensure_account (bob_ctx, "prpl-jabber", "bob@localhost", NULL, &error);
  g_assert_no_error (error);
  bob_keys = e2ee_context_own_keyset (bob_ctx, bob_account);
  e2ee_context_learn_keys (alice->ctx, alice->account, "bob@localhost", bob_keys, NULL);
  e2ee_context_learn_keys (bob_ctx, bob_account, alice->name, alice_keys, NULL);
  pieces = send_text (alice, "bob@localhost", "remember me", 0);
  e2ee_context_receive (bob_ctx, bob_account, alice->name, pieces[0], 1, &r);
  g_assert_cmpstr (r.plaintext, ==, "remember me");
  e2ee_recv_result_clear (&r);
  g_assert_true (e2ee_keyring_save (e2ee_context_get_keyring (bob_ctx), &error));
  g_assert_no_error (error);
  e2ee_context_free (bob_ctx);

  /* Bob restarts: the same envelope is still a duplicate. */
  bob_ctx = e2ee_context_new (e2ee_keyring_load (path, NULL, &error));
  g_assert_no_error (error);
  bob_account = e2ee_keyring_lookup_account (e2ee_context_get_keyring (bob_ctx),
                                             "prpl-jabber", "bob@localhost");
  g_assert_nonnull (bob_account);
  g_assert_true (e2ee_key_equal (bob_account->identity, bob_keys->pdata[0]));
  e2ee_context_receive (bob_ctx, bob_account, alice->name, pieces[0], 1, &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
  e2ee_recv_result_clear (&r);
  g_strfreev (pieces);
  pieces = send_text (alice, "bob@localhost", "still here", 0);
  e2ee_context_receive (bob_ctx, bob_account, alice->name, pieces[0], 1, &r);
  g_assert_cmpstr (r.plaintext, ==, "still here");
  e2ee_recv_result_clear (&r);
  g_strfreev (pieces);

  e2ee_context_free (bob_ctx);
  peer_free (alice);
  g_unlink (path);
  g_unlink (backup);
  g_unlink (lock);
  g_rmdir (dir);
}

/* A host that cannot make a change durable stops it leaving or being shown. */
static gboolean
commit_maybe (E2eeContext *ctx, gpointer data, GError **error)
{
  gboolean *fail = data;

  if (!*fail)
    return TRUE;
  g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO, "disk full (test)");
  return FALSE;
}

static void
test_commit_fails_closed (void)
{
  Peer *alice = peer_new ("alice@localhost");
  Peer *bob = peer_new ("bob@localhost");
  gboolean alice_fails = TRUE, bob_fails = FALSE;
  GError *error = NULL;
  E2eeRecvResult r;
  char **pieces, **first;

  g_assert_cmpint (introduce (bob, alice), ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_cmpint (introduce (alice, bob), ==, E2EE_LEARN_FIRST_CONTACT);
  e2ee_context_set_commit_func (alice->ctx, commit_maybe, &alice_fails);
  e2ee_context_set_commit_func (bob->ctx, commit_maybe, &bob_fails);

  /* Sender: the counter could not be saved, so nothing is returned to send. */
  pieces = e2ee_context_encrypt (alice->ctx, alice->account, bob->name, "secret one", 0, &error);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO);
  g_assert_null (pieces);
  g_clear_error (&error);
  alice_fails = FALSE;
  first = send_text (alice, bob->name, "secret one", 0);

  /* Receiver: the replay state could not be saved, so the text is not shown. */
  bob_fails = TRUE;
  deliver (bob, alice->name, first[0], &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
  g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO);
  g_assert_null (r.plaintext);
  e2ee_recv_result_clear (&r);

  /* Once saving works again messages flow, and the one refused is never
   * shown later (it counts as seen: shown at most once). */
  bob_fails = FALSE;
  pieces = send_text (alice, bob->name, "secret two", 0);
  deliver (bob, alice->name, pieces[0], &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpstr (r.plaintext, ==, "secret two");
  e2ee_recv_result_clear (&r);
  deliver (bob, alice->name, first[0], &r);
  g_assert_cmpint (r.kind, !=, E2EE_RECV_MESSAGE);
  g_assert_null (r.plaintext);
  e2ee_recv_result_clear (&r);

  g_strfreev (pieces);
  g_strfreev (first);
  peer_free (alice);
  peer_free (bob);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/session/round-trip", test_round_trip);
  g_test_add_func ("/session/reorder-window", test_reorder_and_window);
  g_test_add_func ("/session/tampered", test_tampered);
  g_test_add_func ("/session/fragments", test_fragments);
  g_test_add_func ("/session/devices-key-change", test_devices_and_key_change);
  g_test_add_func ("/session/policy-offers", test_policy_and_offers);
  g_test_add_func ("/session/counter-after-restore", test_counter_after_restore);
  g_test_add_func ("/session/padding", test_padding);
  g_test_add_func ("/session/persistence", test_persistence);
  g_test_add_func ("/session/commit-fails-closed", test_commit_fails_closed);
  return g_test_run ();
}
