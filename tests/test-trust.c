/* The trust state machine (docs/SECURITY.md §2), one test per cell of the
 * table, attacked as the server or a third user would: in-process
 * installations talking through the session API.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib/gstdio.h>
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-fingerprint.h"
#include "e2ee-session.h"
#include "e2ee-test-util.h"

typedef struct {
  E2eeContext *ctx;
  E2eeAccountRecord *account;
  char *name;
} Peer;

static Peer *
peer_new (const char *name)
{
  Peer *p = g_new0 (Peer, 1);
  GError *error = NULL;

  p->name = g_strdup (name);
  p->ctx = e2ee_context_new (e2ee_keyring_new ("/nonexistent/keyring.json"));
  p->account = e2ee_context_ensure_account (p->ctx, "prpl-jabber", name, NULL, &error);
  g_assert_no_error (error);
  return p;
}

static void
peer_free (Peer *p)
{
  e2ee_context_free (p->ctx);
  g_free (p->name);
  g_free (p);
}

/* @to learns, under @as_name, the key set @from publishes. */
static E2eeLearnResult
learn_as (Peer *from, Peer *to, const char *as_name, GPtrArray **fresh, GError **error)
{
  g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (from->ctx, from->account);
  return e2ee_context_learn_keys_full (to->ctx, to->account, as_name, keys, TRUE, fresh,
                                       error);
}

static E2eeLearnResult
introduce (Peer *from, Peer *to)
{
  return learn_as (from, to, from->name, NULL, NULL);
}

static char *
seal (Peer *from, const char *to_name, const char *text)
{
  GError *error = NULL;
  char **pieces = e2ee_context_encrypt (from->ctx, from->account, to_name, text, 0, &error);
  char *one;

  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (pieces), ==, 1);
  one = g_strdup (pieces[0]);
  g_strfreev (pieces);
  return one;
}

static void
deliver (Peer *to, const char *from_name, const char *wire, E2eeRecvResult *r)
{
  e2ee_context_receive (to->ctx, to->account, from_name, wire, 1000, r);
}

static E2eeDeviceRecord *
device_of (Peer *at, const char *buddy, Peer *owner)
{
  E2eeBuddyRecord *b = e2ee_account_lookup_buddy (at->account, buddy);

  return b ? e2ee_buddy_find_device (b, owner->account->identity) : NULL;
}

static const char *
kid (Peer *p)
{
  return e2ee_key_get_kid (p->account->identity);
}

static gboolean
keyset_has (Peer *p, Peer *device)
{
  g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (p->ctx, p->account);

  for (guint i = 0; i < keys->len; i++)
    if (e2ee_key_equal (keys->pdata[i], device->account->identity))
      return TRUE;
  return FALSE;
}

/* ---- TOFU ------------------------------------------------------------- */

/* TOFU row: first key of a contact is pinned, encrypted to, its messages
 * shown with the TOFU trust (marker "unverified"); verify leaves it. */
static void
test_tofu (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  g_autofree char *wire = NULL;
  E2eeRecvResult r;

  g_assert_cmpint (introduce (bob, alice), ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_cmpint (introduce (alice, bob), ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_cmpint (device_of (alice, bob->name, bob)->trust, ==, E2EE_TRUST_TOFU);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_ENCRYPT);
  wire = seal (bob, alice->name, "hello");
  deliver (alice, bob->name, wire, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpint (r.sender_trust, ==, E2EE_TRUST_TOFU);
  g_assert_cmpstr (r.plaintext, ==, "hello");
  e2ee_recv_result_clear (&r);
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (bob),
                                         E2EE_TRUST_VERIFIED, NULL));
  g_assert_cmpint (device_of (alice, bob->name, bob)->trust, ==, E2EE_TRUST_VERIFIED);
  peer_free (alice);
  peer_free (bob);
}

/* VERIFIED row: encrypted to, messages carry VERIFIED (marker "verified"),
 * reject leaves it (and then sending blocks). */
static void
test_verified (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  g_autofree char *to_bob = NULL, *from_bob = NULL;
  E2eeRecvResult r;

  introduce (bob, alice);
  introduce (alice, bob);
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (bob),
                                         E2EE_TRUST_VERIFIED, NULL));
  to_bob = seal (alice, bob->name, "verified channel");
  deliver (bob, alice->name, to_bob, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  e2ee_recv_result_clear (&r);
  from_bob = seal (bob, alice->name, "reply");
  deliver (alice, bob->name, from_bob, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpint (r.sender_trust, ==, E2EE_TRUST_VERIFIED);
  e2ee_recv_result_clear (&r);
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (bob),
                                         E2EE_TRUST_REJECTED, NULL));
  g_assert_cmpint (device_of (alice, bob->name, bob)->trust, ==, E2EE_TRUST_REJECTED);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_BLOCK);
  peer_free (alice);
  peer_free (bob);
}

/* ---- UNDECIDED (new device) ------------------------------------------ */

/* A further device: not encrypted to, its messages withheld (not shown),
 * released by /e2ee trust DEV with its trust; reject drops them. */
static void
test_new_device_withheld (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *evil = peer_new ("bob@localhost");
  g_autoptr (GPtrArray) set = e2ee_context_own_keyset (bob->ctx, bob->account);
  g_autoptr (GPtrArray) fresh = NULL;
  g_autoptr (GPtrArray) released = NULL;
  g_autofree char *w1 = NULL, *w2 = NULL, *to_bob = NULL;
  E2eeRecvResult r;
  GError *error = NULL;

  introduce (bob, alice);
  introduce (alice, bob);
  introduce (alice, evil);
  /* The server adds a device to Bob's published set. */
  g_ptr_array_add (set, e2ee_key_public_copy (evil->account->identity));
  g_assert_cmpint (e2ee_context_learn_keys (alice->ctx, alice->account, bob->name, set, &fresh),
                   ==, E2EE_LEARN_NEW_DEVICE);
  g_assert_cmpuint (fresh->len, ==, 1);
  g_assert_cmpint (device_of (alice, bob->name, evil)->trust, ==, E2EE_TRUST_UNDECIDED);

  /* Encrypt to it: no. */
  to_bob = seal (alice, bob->name, "for bob only");
  deliver (evil, alice->name, to_bob, &r);
  g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_NOT_FOR_US);
  e2ee_recv_result_clear (&r);

  /* Its messages: withheld, never shown as Bob's words. */
  w1 = seal (evil, alice->name, "send the money to X");
  deliver (alice, bob->name, w1, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_WITHHELD);
  g_assert_null (r.plaintext);
  g_assert_cmpstr (r.sender_kid, ==, kid (evil));
  g_assert_cmpint (r.sender_trust, ==, E2EE_TRUST_UNDECIDED);
  g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_WITHHELD);
  g_assert_nonnull (strstr (r.error->message, "/e2ee trust"));
  e2ee_recv_result_clear (&r);
  /* Replaying it is dropped silently, not a second withheld copy. */
  deliver (alice, bob->name, w1, &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
  e2ee_recv_result_clear (&r);
  g_assert_cmpuint (e2ee_context_withheld_count (alice->ctx, alice->account, bob->name), ==, 1);

  /* Nothing is released while it is undecided. */
  released = e2ee_context_take_withheld (alice->ctx, alice->account, bob->name);
  g_assert_cmpuint (released->len, ==, 0);
  g_clear_pointer (&released, g_ptr_array_unref);

  /* Trusting it releases the message, marked with its trust. */
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (evil),
                                         E2EE_TRUST_TOFU, &error));
  g_assert_no_error (error);
  released = e2ee_context_take_withheld (alice->ctx, alice->account, bob->name);
  g_assert_cmpuint (released->len, ==, 1);
  g_assert_cmpstr (((E2eeWithheldMessage *) released->pdata[0])->plaintext, ==,
                   "send the money to X");
  g_assert_cmpstr (((E2eeWithheldMessage *) released->pdata[0])->sender_kid, ==, kid (evil));
  g_assert_cmpint (((E2eeWithheldMessage *) released->pdata[0])->sender_trust, ==,
                   E2EE_TRUST_TOFU);
  g_clear_pointer (&released, g_ptr_array_unref);
  g_assert_cmpuint (e2ee_context_withheld_count (alice->ctx, alice->account, NULL), ==, 0);
  /* And later messages are shown. */
  w2 = seal (evil, alice->name, "now trusted");
  deliver (alice, bob->name, w2, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  e2ee_recv_result_clear (&r);
  peer_free (alice);
  peer_free (bob);
  peer_free (evil);
}

/* Rejecting an undecided device wipes what it sent; bounded per buddy. */
static void
test_new_device_reject_and_bound (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *evil = peer_new ("bob@localhost");
  g_autoptr (GPtrArray) set = e2ee_context_own_keyset (bob->ctx, bob->account);
  g_autoptr (GPtrArray) released = NULL;
  E2eeRecvResult r;
  guint dropped = 0;

  introduce (bob, alice);
  introduce (alice, evil);
  g_ptr_array_add (set, e2ee_key_public_copy (evil->account->identity));
  e2ee_context_learn_keys (alice->ctx, alice->account, bob->name, set, NULL);
  for (guint i = 0; i < E2EE_WITHHELD_PER_BUDDY + 4; i++)
    {
      g_autofree char *text = g_strdup_printf ("flood %u", i);
      g_autofree char *w = seal (evil, alice->name, text);

      deliver (alice, bob->name, w, &r);
      g_assert_cmpint (r.kind, ==, E2EE_RECV_WITHHELD);
      dropped += r.withheld_dropped;
      e2ee_recv_result_clear (&r);
    }
  g_assert_cmpuint (dropped, ==, 4);
  g_assert_cmpuint (e2ee_context_withheld_count (alice->ctx, alice->account, bob->name), ==,
                    E2EE_WITHHELD_PER_BUDDY);
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (evil),
                                         E2EE_TRUST_REJECTED, NULL));
  g_assert_cmpuint (e2ee_context_withheld_count (alice->ctx, alice->account, bob->name), ==, 0);
  /* A later trust does not bring them back. */
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (evil),
                                         E2EE_TRUST_TOFU, NULL));
  released = e2ee_context_take_withheld (alice->ctx, alice->account, bob->name);
  g_assert_cmpuint (released->len, ==, 0);
  peer_free (alice);
  peer_free (bob);
  peer_free (evil);
}

/* A bare /e2ee trust accepts a device only when it is the one awaiting a
 * decision: with a device the server slipped in beside it, nothing is
 * accepted and both are named.  An ambiguous prefix changes nothing. */
static void
test_bare_trust_needs_one_device (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *bob_new = peer_new ("bob@localhost"), *evil = peer_new ("bob@localhost");
  g_autoptr (GPtrArray) set = e2ee_context_own_keyset (bob_new->ctx, bob_new->account);
  g_autofree char *short_new = g_strndup (kid (bob_new), 8);
  g_autofree char *short_evil = g_strndup (kid (evil), 8);
  GError *error = NULL;

  introduce (bob, alice);
  g_ptr_array_add (set, e2ee_key_public_copy (evil->account->identity));
  g_assert_cmpint (e2ee_context_learn_keys (alice->ctx, alice->account, bob->name, set, NULL),
                   ==, E2EE_LEARN_KEY_CHANGED);
  g_assert_false (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, NULL,
                                          E2EE_TRUST_TOFU, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_AMBIGUOUS);
  g_assert_nonnull (strstr (error->message, short_new));
  g_assert_nonnull (strstr (error->message, short_evil));
  g_clear_error (&error);
  g_assert_cmpint (device_of (alice, bob->name, evil)->trust, ==, E2EE_TRUST_UNDECIDED);
  g_assert_cmpint (device_of (alice, bob->name, bob_new)->trust, ==, E2EE_TRUST_UNDECIDED);
  g_assert_true (e2ee_account_lookup_buddy (alice->account, bob->name)->key_changed);
  /* A prefix every device shares (as /e2ee verify PREFIX passes it on). */
  g_assert_false (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, "",
                                          E2EE_TRUST_VERIFIED, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_AMBIGUOUS);
  g_clear_error (&error);
  g_assert_cmpint (device_of (alice, bob->name, bob)->trust, ==, E2EE_TRUST_TOFU);
  g_assert_cmpint (device_of (alice, bob->name, evil)->trust, ==, E2EE_TRUST_UNDECIDED);
  /* Once the injected one is rejected, the bare form takes the other. */
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (evil),
                                         E2EE_TRUST_REJECTED, NULL));
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, NULL,
                                         E2EE_TRUST_TOFU, &error));
  g_assert_no_error (error);
  g_assert_cmpint (device_of (alice, bob->name, bob_new)->trust, ==, E2EE_TRUST_TOFU);
  g_assert_cmpint (device_of (alice, bob->name, evil)->trust, ==, E2EE_TRUST_REJECTED);
  peer_free (alice);
  peer_free (bob);
  peer_free (bob_new);
  peer_free (evil);
}

/* The device cap: junk offers under Bob's name fill it, yet the real new
 * device still gets in (undecided devices that never spoke make room,
 * oldest first); with nothing to make room, the user is told. */
static void
test_device_cap_evicts_junk (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *bob_new = peer_new ("bob@localhost");
  g_autoptr (GPtrArray) junk = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  E2eeBuddyRecord *br;
  GError *error = NULL;
  E2eeKey *first_junk;

  introduce (bob, alice);
  for (guint i = 0; i < 80; i++)
    {
      g_autoptr (GPtrArray) set = e2ee_context_own_keyset (bob->ctx, bob->account);
      E2eeKey *k = e2ee_key_generate (&error);

      g_assert_no_error (error);
      g_ptr_array_add (junk, k);
      g_ptr_array_add (set, e2ee_key_public_copy (k));
      g_assert_cmpint (e2ee_context_learn_keys (alice->ctx, alice->account, bob->name, set,
                                                NULL), ==, E2EE_LEARN_NEW_DEVICE);
    }
  br = e2ee_account_lookup_buddy (alice->account, bob->name);
  g_assert_cmpuint (br->devices->len, ==, 64);
  /* The oldest junk went first; Bob's own device stays. */
  first_junk = junk->pdata[0];
  g_assert_null (e2ee_buddy_find_device (br, first_junk));
  g_assert_nonnull (e2ee_buddy_find_device (br, junk->pdata[79]));
  g_assert_cmpint (device_of (alice, bob->name, bob)->trust, ==, E2EE_TRUST_TOFU);
  /* The real new device is pinned (undecided) despite the flood. */
  g_assert_cmpint (introduce (bob_new, alice), ==, E2EE_LEARN_KEY_CHANGED);
  g_assert_nonnull (device_of (alice, bob->name, bob_new));
  g_assert_cmpuint (br->devices->len, ==, 64);

  /* Every device decided: nothing to make room, and the user is told. */
  for (guint i = 0; i < br->devices->len; i++)
    {
      E2eeDeviceRecord *dev = br->devices->pdata[i];
      if (dev->trust == E2EE_TRUST_UNDECIDED)
        dev->trust = E2EE_TRUST_REJECTED;
    }
  {
    g_autoptr (GPtrArray) set = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);

    g_ptr_array_add (set, e2ee_key_public_copy (first_junk));
    g_assert_cmpint (e2ee_context_learn_keys_full (alice->ctx, alice->account, bob->name, set,
                                                   TRUE, NULL, &error),
                     ==, E2EE_LEARN_REFUSED);
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_DEVICE_LIMIT);
    g_assert_nonnull (strstr (error->message, "/e2ee reject"));
    g_clear_error (&error);
  }
  g_assert_null (e2ee_buddy_find_device (br, first_junk));
  g_assert_cmpuint (br->devices->len, ==, 64);
  peer_free (alice);
  peer_free (bob);
  peer_free (bob_new);
}

/* ---- CHANGED ------------------------------------------------------------ */

/* Every key replaced: sending blocked with an error naming the way out,
 * the new key's messages withheld; /e2ee trust DEV clears the change and
 * releases them. */
static void
test_changed (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *evil = peer_new ("bob@localhost");
  g_autoptr (GPtrArray) released = NULL;
  g_autofree char *w = NULL;
  GError *error = NULL;
  E2eeRecvResult r;

  introduce (bob, alice);
  introduce (alice, evil);
  g_assert_cmpint (introduce (evil, alice), ==, E2EE_LEARN_KEY_CHANGED);
  g_assert_true (e2ee_account_lookup_buddy (alice->account, bob->name)->key_changed);
  g_assert_cmpint (device_of (alice, bob->name, evil)->trust, ==, E2EE_TRUST_UNDECIDED);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, &error),
                   ==, E2EE_SEND_BLOCK);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED);
  g_assert_nonnull (strstr (error->message, "/e2ee trust DEVICE"));
  g_assert_nonnull (strstr (error->message, "/e2ee reset"));
  g_clear_error (&error);

  w = seal (evil, alice->name, "it is me, new phone");
  deliver (alice, bob->name, w, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_WITHHELD);
  g_assert_null (r.plaintext);
  e2ee_recv_result_clear (&r);

  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (evil),
                                         E2EE_TRUST_TOFU, &error));
  g_assert_false (e2ee_account_lookup_buddy (alice->account, bob->name)->key_changed);
  g_assert_cmpint (device_of (alice, bob->name, bob)->trust, ==, E2EE_TRUST_REJECTED);
  released = e2ee_context_take_withheld (alice->ctx, alice->account, bob->name);
  g_assert_cmpuint (released->len, ==, 1);
  g_assert_cmpstr (((E2eeWithheldMessage *) released->pdata[0])->plaintext, ==,
                   "it is me, new phone");
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_ENCRYPT);
  peer_free (alice);
  peer_free (bob);
  peer_free (evil);
}

/* /e2ee reset leaves CHANGED without a way back to a first contact: the
 * next key (the replacement, or an attacker's) is a KEY CHANGE that waits
 * for /e2ee trust DEVICE, and sending stays blocked until then. */
static void
test_changed_reset (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *bob_new = peer_new ("bob@localhost");
  GError *error = NULL;

  introduce (bob, alice);
  g_assert_cmpint (introduce (bob_new, alice), ==, E2EE_LEARN_KEY_CHANGED);
  g_assert_true (e2ee_context_reset (alice->ctx, alice->account, bob->name, NULL));
  g_assert_cmpint (device_of (alice, bob->name, bob)->trust, ==, E2EE_TRUST_REJECTED);
  g_assert_cmpint (device_of (alice, bob->name, bob_new)->trust, ==, E2EE_TRUST_REJECTED);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, &error),
                   ==, E2EE_SEND_BLOCK);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED);
  g_clear_error (&error);
  /* Nothing left to forget. */
  g_assert_false (e2ee_context_reset (alice->ctx, alice->account, bob->name, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NO_KEY);
  g_clear_error (&error);
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name,
                                         kid (bob_new), E2EE_TRUST_TOFU, NULL));
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_ENCRYPT);
  peer_free (alice);
  peer_free (bob);
  peer_free (bob_new);
}

/* The attacker's way through a reset: the key they offer after it is not
 * trusted on first use, and a REQUIRED policy survives it. */
static void
test_reset_keeps_had_key_and_policy (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *evil = peer_new ("bob@localhost");
  GError *error = NULL;

  introduce (bob, alice);
  g_assert_true (e2ee_context_set_policy (alice->ctx, alice->account, bob->name,
                                          E2EE_POLICY_REQUIRED));
  g_assert_true (e2ee_context_reset (alice->ctx, alice->account, bob->name, NULL));
  g_assert_cmpint (e2ee_account_lookup_buddy (alice->account, bob->name)->policy, ==,
                   E2EE_POLICY_REQUIRED);
  /* Nothing in plaintext while no key is accepted. */
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, &error),
                   ==, E2EE_SEND_BLOCK);
  g_clear_error (&error);
  /* An unknown key after the reset is a change, never TOFU. */
  g_assert_cmpint (introduce (evil, alice), ==, E2EE_LEARN_KEY_CHANGED);
  g_assert_cmpint (device_of (alice, bob->name, evil)->trust, ==, E2EE_TRUST_UNDECIDED);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, &error),
                   ==, E2EE_SEND_BLOCK);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED);
  g_clear_error (&error);
  /* The same key offered again needs a decision too. */
  g_assert_cmpint (introduce (bob, alice), ==, E2EE_LEARN_NOTHING_NEW);
  g_assert_cmpint (device_of (alice, bob->name, bob)->trust, ==, E2EE_TRUST_REJECTED);
  peer_free (alice);
  peer_free (bob);
  peer_free (evil);
}

/* A message accepted before a reset is a replay after the same device is
 * accepted again: the replay state outlives the reset. */
static void
test_reset_keeps_replay (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  g_autofree char *w = NULL;
  E2eeRecvResult r;

  introduce (bob, alice);
  introduce (alice, bob);
  w = seal (bob, alice->name, "pay 10 to carol");
  deliver (alice, bob->name, w, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  e2ee_recv_result_clear (&r);
  g_assert_true (e2ee_context_reset (alice->ctx, alice->account, bob->name, NULL));
  introduce (bob, alice);
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (bob),
                                         E2EE_TRUST_TOFU, NULL));
  deliver (alice, bob->name, w, &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
  g_assert_null (r.plaintext);
  e2ee_recv_result_clear (&r);
  peer_free (alice);
  peer_free (bob);
}

/* ---- REJECTED ----------------------------------------------------------- */

/* Rejecting the only device fails closed: BLOCK naming the way out (not
 * plaintext), its messages dropped with E2EE_ERROR_REJECTED, a key offered
 * afterwards is a KEY CHANGE, and only /e2ee off sends plaintext. */
static void
test_rejected_fails_closed (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *next = peer_new ("bob@localhost");
  g_autofree char *w = NULL;
  GError *error = NULL;
  E2eeRecvResult r;

  introduce (bob, alice);
  introduce (alice, bob);
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (bob),
                                         E2EE_TRUST_REJECTED, NULL));
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, &error),
                   ==, E2EE_SEND_BLOCK);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED);
  g_assert_nonnull (strstr (error->message, "/e2ee trust DEVICE"));
  g_assert_nonnull (strstr (error->message, "/e2ee off"));
  g_clear_error (&error);
  g_assert_null (e2ee_context_encrypt (alice->ctx, alice->account, bob->name, "x", 0, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED);
  g_clear_error (&error);

  /* Its messages are dropped, with a code. */
  w = seal (bob, alice->name, "from a rejected device");
  deliver (alice, bob->name, w, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
  g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_REJECTED);
  g_assert_null (r.plaintext);
  g_assert_cmpstr (r.sender_kid, ==, kid (bob));
  e2ee_recv_result_clear (&r);
  g_assert_cmpuint (e2ee_context_withheld_count (alice->ctx, alice->account, NULL), ==, 0);

  /* A new key now is a key change, not a first contact. */
  g_assert_cmpint (introduce (next, alice), ==, E2EE_LEARN_KEY_CHANGED);
  g_assert_cmpint (device_of (alice, bob->name, next)->trust, ==, E2EE_TRUST_UNDECIDED);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_BLOCK);

  /* Only an explicit off sends plaintext. */
  e2ee_context_set_policy (alice->ctx, alice->account, bob->name, E2EE_POLICY_OFF);
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_PLAINTEXT);
  peer_free (alice);
  peer_free (bob);
  peer_free (next);
}

/* /e2ee trust DEV leaves REJECTED. */
static void
test_rejected_trust_again (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  g_autofree char *w = NULL;
  E2eeRecvResult r;

  introduce (bob, alice);
  introduce (alice, bob);
  e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (bob),
                          E2EE_TRUST_REJECTED, NULL);
  g_assert_true (e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (bob),
                                         E2EE_TRUST_TOFU, NULL));
  g_assert_cmpint (e2ee_context_send_decision (alice->ctx, alice->account, bob->name, NULL),
                   ==, E2EE_SEND_ENCRYPT);
  w = seal (bob, alice->name, "back");
  deliver (alice, bob->name, w, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  e2ee_recv_result_clear (&r);
  peer_free (alice);
  peer_free (bob);
}

/* ---- OWN PENDING / OWN CONFIRMED ---------------------------------------- */

/* A device in our own account's key set is never trusted on first use: it
 * gets nothing, is never republished, its messages are withheld, until it
 * is confirmed; then it receives everything we send. */
static void
test_own_pending (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *server = peer_new ("alice@localhost");
  g_autoptr (GPtrArray) fresh = NULL;
  g_autoptr (GPtrArray) own = NULL;
  g_autoptr (GPtrArray) released = NULL;
  g_autofree char *to_bob = NULL, *to_bob2 = NULL, *copy = NULL;
  E2eeRecvResult r;
  GError *error = NULL;

  introduce (bob, alice);
  introduce (alice, bob);
  /* The server publishes a presence of alice@localhost/evil with its key. */
  g_assert_cmpint (learn_as (server, alice, alice->name, &fresh, NULL), ==,
                   E2EE_LEARN_OWN_DEVICE);
  g_assert_cmpuint (fresh->len, ==, 1);
  g_assert_cmpint (device_of (alice, alice->name, server)->trust, ==, E2EE_TRUST_UNDECIDED);
  own = e2ee_context_own_devices (alice->ctx, alice->account);
  g_assert_cmpuint (own->len, ==, 1);
  g_assert_true (e2ee_key_equal (((E2eeDeviceRecord *) own->pdata[0])->key,
                                 server->account->identity));
  /* Never republished as ours. */
  g_assert_false (keyset_has (alice, server));
  /* Receives nothing Alice sends. */
  to_bob = seal (alice, bob->name, "to bob");
  deliver (server, alice->name, to_bob, &r);
  g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_NOT_FOR_US);
  e2ee_recv_result_clear (&r);
  /* What it sends as "Alice" is withheld. */
  {
    g_autoptr (GPtrArray) alice_set = e2ee_context_own_keyset (alice->ctx, alice->account);
    e2ee_context_learn_keys (server->ctx, server->account, server->name, alice_set, NULL);
    e2ee_context_set_own_trust (server->ctx, server->account, kid (alice), E2EE_TRUST_TOFU,
                                NULL);
  }
  copy = seal (server, server->name, "a copy from the other device");
  deliver (alice, alice->name, copy, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_WITHHELD);
  g_assert_null (r.plaintext);
  g_assert_nonnull (strstr (r.error->message, "YOUR OWN account"));
  e2ee_recv_result_clear (&r);
  /* /e2ee trust without a device never accepts own devices. */
  g_assert_false (e2ee_context_set_trust (alice->ctx, alice->account, alice->name, NULL,
                                          E2EE_TRUST_TOFU, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NO_KEY);
  g_clear_error (&error);
  g_assert_cmpint (device_of (alice, alice->name, server)->trust, ==, E2EE_TRUST_UNDECIDED);

  /* OWN CONFIRMED: accepted from this device. */
  g_assert_true (e2ee_context_set_own_trust (alice->ctx, alice->account, kid (server),
                                             E2EE_TRUST_VERIFIED, &error));
  g_assert_no_error (error);
  g_assert_true (keyset_has (alice, server));
  released = e2ee_context_take_withheld (alice->ctx, alice->account, alice->name);
  g_assert_cmpuint (released->len, ==, 1);
  to_bob2 = seal (alice, bob->name, "to bob and my other device");
  deliver (server, alice->name, to_bob2, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpstr (r.plaintext, ==, "to bob and my other device");
  e2ee_recv_result_clear (&r);
  /* Bob still reads it too. */
  deliver (bob, alice->name, to_bob2, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  e2ee_recv_result_clear (&r);
  /* What the confirmed device sends now is shown, with its trust. */
  {
    g_autofree char *copy2 = seal (server, server->name, "second copy");
    deliver (alice, alice->name, copy2, &r);
    g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
    g_assert_cmpint (r.sender_trust, ==, E2EE_TRUST_VERIFIED);
    g_assert_cmpstr (r.sender_kid, ==, kid (server));
    e2ee_recv_result_clear (&r);
  }
  peer_free (alice);
  peer_free (bob);
  peer_free (server);
}

/* /e2ee own reject: a rejected own device gets nothing, its messages are
 * dropped; a confirmed one can be rejected later too. */
static void
test_own_reject (void)
{
  Peer *alice = peer_new ("alice@localhost"), *other = peer_new ("alice@localhost");
  g_autofree char *copy = NULL;
  E2eeRecvResult r;

  learn_as (other, alice, alice->name, NULL, NULL);
  {
    g_autoptr (GPtrArray) alice_set = e2ee_context_own_keyset (alice->ctx, alice->account);
    e2ee_context_learn_keys (other->ctx, other->account, other->name, alice_set, NULL);
    e2ee_context_set_own_trust (other->ctx, other->account, kid (alice), E2EE_TRUST_TOFU, NULL);
  }
  g_assert_true (e2ee_context_set_own_trust (alice->ctx, alice->account, kid (other),
                                             E2EE_TRUST_TOFU, NULL));
  g_assert_true (keyset_has (alice, other));
  g_assert_true (e2ee_context_set_own_trust (alice->ctx, alice->account, kid (other),
                                             E2EE_TRUST_REJECTED, NULL));
  g_assert_false (keyset_has (alice, other));
  copy = seal (other, other->name, "still me?");
  deliver (alice, alice->name, copy, &r);
  g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_REJECTED);
  e2ee_recv_result_clear (&r);
  g_assert_false (e2ee_context_set_own_trust (alice->ctx, alice->account, NULL,
                                              E2EE_TRUST_TOFU, NULL));
  peer_free (alice);
  peer_free (other);
}

/* ---- keys elsewhere (unknown key share) ---------------------------------- */

/* Mallory publishes Bob's key (and Alice's own) as hers: refused, pinned
 * nowhere, and Bob's envelope relayed as Mallory's is not accepted. */
static void
test_key_elsewhere (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  g_autoptr (GPtrArray) stolen = e2ee_context_own_keyset (bob->ctx, bob->account);
  g_autoptr (GPtrArray) mine = e2ee_context_own_keyset (alice->ctx, alice->account);
  g_autofree char *w = NULL;
  GError *error = NULL;
  E2eeRecvResult r;

  introduce (bob, alice);
  introduce (alice, bob);
  g_assert_cmpint (e2ee_context_learn_keys_full (alice->ctx, alice->account, "mallory@localhost",
                                                 stolen, TRUE, NULL, &error),
                   ==, E2EE_LEARN_REFUSED);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEY_ELSEWHERE);
  g_assert_nonnull (strstr (error->message, bob->name));
  g_clear_error (&error);
  g_assert_cmpint (e2ee_context_learn_keys_full (alice->ctx, alice->account, "mallory@localhost",
                                                 mine, TRUE, NULL, &error),
                   ==, E2EE_LEARN_REFUSED);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEY_ELSEWHERE);
  g_clear_error (&error);
  g_assert_null (e2ee_account_lookup_buddy (alice->account, "mallory@localhost"));
  /* Own devices too: Bob's key offered as Alice's other device. */
  g_assert_cmpint (e2ee_context_learn_keys_full (alice->ctx, alice->account, alice->name,
                                                 stolen, TRUE, NULL, &error),
                   ==, E2EE_LEARN_REFUSED);
  g_clear_error (&error);

  /* One envelope is accepted under one name only. */
  w = seal (bob, alice->name, "only bob says this");
  deliver (alice, "mallory@localhost", w, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
  g_assert_null (r.plaintext);
  e2ee_recv_result_clear (&r);
  deliver (alice, bob->name, w, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  e2ee_recv_result_clear (&r);

  /* The in-band path says so too. */
  {
    g_autofree char *offer = e2ee_offer_inband (E2EE_OFFER_KIND_OFFER, stolen);
    deliver (alice, "mallory@localhost", offer, &r);
    g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
    g_assert_cmpint (r.learned, ==, E2EE_LEARN_REFUSED);
    g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_KEY_ELSEWHERE);
    g_assert_null (r.reply);
    e2ee_recv_result_clear (&r);
  }
  peer_free (alice);
  peer_free (bob);
}

/* ---- verify all ----------------------------------------------------------- */

/* verify all marks only TOFU devices: an injected (undecided) device whose
 * safety number was listed next to the real one is not verified. */
static void
test_verify_all (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *injected = peer_new ("bob@localhost"), *gone = peer_new ("bob@localhost");
  g_autoptr (GPtrArray) set = e2ee_context_own_keyset (bob->ctx, bob->account);
  g_autofree char *sn_real = NULL, *sn_injected = NULL;
  GError *error = NULL;
  guint n = 0;

  introduce (bob, alice);
  g_ptr_array_add (set, e2ee_key_public_copy (gone->account->identity));
  g_ptr_array_add (set, e2ee_key_public_copy (injected->account->identity));
  g_assert_cmpint (e2ee_context_learn_keys (alice->ctx, alice->account, bob->name, set, NULL),
                   ==, E2EE_LEARN_NEW_DEVICE);
  e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (gone),
                          E2EE_TRUST_REJECTED, NULL);
  /* Each device has its own whole 60-digit number. */
  sn_real = e2ee_safety_number (alice->account->identity, bob->account->identity);
  sn_injected = e2ee_safety_number (alice->account->identity, injected->account->identity);
  g_assert_cmpuint (strlen (sn_real), ==, 60 + 11);
  g_assert_cmpstr (sn_real, !=, sn_injected);

  g_assert_true (e2ee_context_verify_all (alice->ctx, alice->account, bob->name, &n, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpint (device_of (alice, bob->name, bob)->trust, ==, E2EE_TRUST_VERIFIED);
  g_assert_cmpint (device_of (alice, bob->name, injected)->trust, ==, E2EE_TRUST_UNDECIDED);
  g_assert_cmpint (device_of (alice, bob->name, gone)->trust, ==, E2EE_TRUST_REJECTED);
  /* Nothing left to verify wholesale. */
  g_assert_false (e2ee_context_verify_all (alice->ctx, alice->account, bob->name, &n, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NO_KEY);
  g_clear_error (&error);
  g_assert_cmpint (device_of (alice, bob->name, injected)->trust, ==, E2EE_TRUST_UNDECIDED);
  peer_free (alice);
  peer_free (bob);
  peer_free (injected);
  peer_free (gone);
}

/* ---- strangers -------------------------------------------------------------- */

/* 2000 strangers' offers: nothing pinned, the cache holds 64, each is
 * still answered; a contact flag or a promotion pins. */
static void
test_strangers (void)
{
  Peer *alice = peer_new ("alice@irc");
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  g_autoptr (GPtrArray) fresh = NULL;
  GError *error = NULL;
  E2eeRecvResult r;

  for (guint i = 0; i < 16; i++)
    {
      E2eeKey *k = e2ee_key_generate (&error);
      g_assert_no_error (error);
      g_ptr_array_add (keys, e2ee_key_public_copy (k));
      e2ee_key_unref (k);
    }
  for (guint i = 0; i < 2000; i++)
    {
      g_autofree char *nick = g_strdup_printf ("stranger%u", i);
      g_autoptr (GPtrArray) one = g_ptr_array_new ();
      g_autofree char *offer = NULL;

      g_ptr_array_add (one, keys->pdata[i % keys->len]);
      offer = e2ee_offer_inband (E2EE_OFFER_KIND_OFFER, one);
      e2ee_context_receive_full (alice->ctx, alice->account, nick, offer, 1000, FALSE, &r);
      g_assert_cmpint (r.kind, ==, E2EE_RECV_OFFER);
      g_assert_cmpint (r.learned, ==, E2EE_LEARN_STRANGER);
      g_assert_nonnull (r.reply);
      e2ee_recv_result_clear (&r);
    }
  g_assert_cmpuint (g_hash_table_size (alice->account->buddies), ==, 0);
  g_assert_cmpuint (e2ee_context_strangers_count (alice->ctx), ==, E2EE_STRANGERS_MAX);

  /* The most recent ones are still cached; the first ones are gone. */
  g_assert_cmpint (e2ee_context_promote_stranger (alice->ctx, alice->account, "stranger1999",
                                                  &fresh, NULL),
                   ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_cmpuint (fresh->len, ==, 1);
  g_assert_cmpint (e2ee_context_promote_stranger (alice->ctx, alice->account, "stranger0",
                                                  NULL, NULL),
                   ==, E2EE_LEARN_NOTHING_NEW);
  g_assert_cmpuint (g_hash_table_size (alice->account->buddies), ==, 1);
  /* A contact's offer is pinned at once. */
  {
    g_autoptr (GPtrArray) one = g_ptr_array_new ();
    g_ptr_array_add (one, keys->pdata[3]);
    g_assert_cmpint (e2ee_context_learn_keys_full (alice->ctx, alice->account, "friend", one,
                                                   TRUE, NULL, NULL),
                     ==, E2EE_LEARN_FIRST_CONTACT);
  }
  /* A stranger's envelope is not shown: their key is not pinned. */
  {
    Peer *stranger = peer_new ("stranger@irc");
    g_autoptr (GPtrArray) theirs = e2ee_context_own_keyset (stranger->ctx, stranger->account);
    g_autofree char *w = NULL;

    g_assert_cmpint (e2ee_context_learn_keys_full (alice->ctx, alice->account, stranger->name,
                                                   theirs, FALSE, NULL, NULL),
                     ==, E2EE_LEARN_STRANGER);
    introduce (alice, stranger);
    w = seal (stranger, alice->name, "hi, I am your bank");
    e2ee_context_receive_full (alice->ctx, alice->account, stranger->name, w, 1000, FALSE, &r);
    g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_UNKNOWN_SENDER);
    g_assert_nonnull (strstr (r.error->message, "not among your contacts"));
    g_assert_null (r.plaintext);
    e2ee_recv_result_clear (&r);
    peer_free (stranger);
  }
  peer_free (alice);
}

/* ---- fragments: fairness and counting -------------------------------------- */

/* 16 nicks of one connection flood fragments: Bob's fragmented message,
 * sent in the middle, still arrives whole. */
static void
test_fragments_cycling_nicks (void)
{
  Peer *alice = peer_new ("alice@irc"), *bob = peer_new ("bob@irc");
  GString *big = g_string_new (NULL);
  char **pieces;
  guint n;
  E2eeRecvResult r;
  gboolean done = FALSE;

  introduce (bob, alice);
  introduce (alice, bob);
  while (big->len < 2000)
    g_string_append (big, "a long message from bob ");
  pieces = e2ee_context_encrypt (bob->ctx, bob->account, alice->name, big->str, 200, NULL);
  n = g_strv_length (pieces);
  g_assert_cmpuint (n, >, 4);
  for (guint i = 0; i < 4000; i++)
    {
      g_autofree char *nick = g_strdup_printf ("evil%u", i % 16);
      g_autofree char *junk = g_strdup_printf ("?E2F:%08x:1/9:%0300u", i, i);

      e2ee_context_receive_full (alice->ctx, alice->account, nick, junk, 1000, FALSE, &r);
      e2ee_recv_result_clear (&r);
      if (i % 100 == 99 && i / 100 < n)
        {
          e2ee_context_receive_full (alice->ctx, alice->account, bob->name, pieces[i / 100],
                                     1000, TRUE, &r);
          g_assert_no_error (r.error);
          if (i / 100 + 1 == n)
            {
              g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
              g_assert_cmpstr (r.plaintext, ==, big->str);
              done = TRUE;
            }
          else
            g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
          e2ee_recv_result_clear (&r);
        }
    }
  g_assert_true (done);
  g_strfreev (pieces);
  g_string_free (big, TRUE);
  peer_free (alice);
  peer_free (bob);
}

/* 200 malformed fragments give one report, not 200; the next report, a
 * minute later, says how many were dropped unreported. */
static void
test_malformed_counted (void)
{
  Peer *alice = peer_new ("alice@irc");
  guint errors = 0, quiet = 0;
  E2eeRecvResult r;

  for (guint i = 0; i < 200; i++)
    {
      e2ee_context_receive_full (alice->ctx, alice->account, "noisy", "?E2F:XYZ:1/2:abc",
                                 1000 + i / 10, TRUE, &r);
      if (r.kind == E2EE_RECV_ERROR)
        {
          g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_FRAGMENT);
          errors++;
        }
      else
        {
          g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
          quiet++;
        }
      e2ee_recv_result_clear (&r);
    }
  g_assert_cmpuint (errors, ==, 1);
  g_assert_cmpuint (quiet, ==, 199);
  g_assert_cmpuint (e2ee_context_malformed_fragments (alice->ctx), ==, 200);
  e2ee_context_receive_full (alice->ctx, alice->account, "noisy", "?E2F:XYZ:1/2:abc", 1100,
                             TRUE, &r);
  g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_FRAGMENT);
  g_assert_cmpuint (r.suppressed, ==, 199);
  e2ee_recv_result_clear (&r);
  /* Many senders together are bounded too: at most 10 reports a minute. */
  errors = 0;
  for (guint i = 0; i < 500; i++)
    {
      g_autofree char *nick = g_strdup_printf ("n%u", i);
      e2ee_context_receive_full (alice->ctx, alice->account, nick, "?E2F:XYZ:1/2:abc", 1101,
                                 TRUE, &r);
      errors += r.kind == E2EE_RECV_ERROR;
      e2ee_recv_result_clear (&r);
    }
  g_assert_cmpuint (errors, <=, 10);
  peer_free (alice);
}

/* ---- names, unsaved identities, downgrades ---------------------------------- */

static void
test_invalid_names (void)
{
  g_autofree char *dir = g_dir_make_tmp ("e2ee-trust-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keyring.json", NULL);
  g_autofree char *backup = g_strconcat (path, "~", NULL);
  g_autofree char *lock = g_strconcat (path, ".lock", NULL);
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  E2eeContext *ctx = e2ee_context_new (e2ee_keyring_new (path));
  E2eeAccountRecord *account;
  g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (bob->ctx, bob->account);
  g_autofree char *longname = g_strnfill (E2EE_NAME_MAX + 1, 'a');
  const char *bad[] = { "", "bad\xff\xfe", "two\nlines", longname, NULL };
  GError *error = NULL;
  E2eeRecvResult r;

  account = e2ee_context_ensure_account (ctx, "prpl-jabber", "carol@localhost", NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_cmpint (e2ee_context_learn_keys_full (ctx, account, bad[i], keys, TRUE, NULL,
                                                     &error), ==, E2EE_LEARN_INVALID);
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NAME);
      g_clear_error (&error);
      g_assert_cmpint (e2ee_context_learn_keys (ctx, account, bad[i], keys, NULL), ==,
                       E2EE_LEARN_INVALID);
      g_assert_cmpint (e2ee_context_send_decision (ctx, account, bad[i], &error), ==,
                       E2EE_SEND_BLOCK);
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NAME);
      g_clear_error (&error);
      g_assert_null (e2ee_context_encrypt (ctx, account, bad[i], "x", 0, &error));
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NAME);
      g_clear_error (&error);
      e2ee_context_receive (ctx, account, bad[i], "hello", 1, &r);
      g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_NAME);
      e2ee_recv_result_clear (&r);
      g_assert_false (e2ee_context_set_policy (ctx, account, bad[i], E2EE_POLICY_REQUIRED));
      g_assert_false (e2ee_context_set_trust (ctx, account, bad[i], NULL, E2EE_TRUST_TOFU,
                                              &error));
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NAME);
      g_clear_error (&error);
    }
  g_assert_null (e2ee_context_ensure_account (ctx, "prpl-jabber", "", NULL, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NAME);
  g_clear_error (&error);
  g_assert_cmpuint (g_hash_table_size (account->buddies), ==, 0);
  /* The keyring still saves. */
  e2ee_context_learn_keys (ctx, account, bob->name, keys, NULL);
  g_assert_true (e2ee_keyring_save (e2ee_context_get_keyring (ctx), &error));
  g_assert_no_error (error);
  e2ee_context_free (ctx);
  peer_free (alice);
  peer_free (bob);
  g_unlink (path);
  g_unlink (backup);
  g_unlink (lock);
  g_rmdir (dir);
}

/* An IRC nick change: bob@irc goes on as bob_@irc, and the server offers
 * its own key under the new name (as a contact's, or as a stranger's).
 * The new name is marked as having had a key, so that key is a KEY
 * CHANGE waiting for /e2ee trust, never TOFU; the mark survives a reload
 * of the keyring database. */
static void
test_nick_change_had_key (void)
{
  g_autofree char *dir = g_dir_make_tmp ("e2ee-trust-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keyring.json", NULL);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  Peer *bob = peer_new ("bob@irc"), *evil = peer_new ("bob_@irc");
  g_autoptr (GPtrArray) bob_keys = e2ee_context_own_keyset (bob->ctx, bob->account);
  g_autoptr (GPtrArray) evil_keys = e2ee_context_own_keyset (evil->ctx, evil->account);
  E2eeContext *ctx = e2ee_context_new (e2ee_keyring_new (path));
  E2eeAccountRecord *account;
  GError *error = NULL;
  E2eeBuddyRecord *br;

  account = e2ee_context_ensure_account_saved (ctx, "prpl-irc", "alice@irc", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (e2ee_context_learn_keys (ctx, account, "bob@irc", bob_keys, NULL), ==,
                   E2EE_LEARN_FIRST_CONTACT);
  g_assert_true (e2ee_context_mark_had_key (ctx, account, "bob_@irc", NULL));
  g_assert_cmpint (e2ee_context_send_decision (ctx, account, "bob_@irc", &error), ==,
                   E2EE_SEND_BLOCK);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED);
  g_clear_error (&error);
  g_assert_true (e2ee_keyring_save (e2ee_context_get_keyring (ctx), &error));
  g_assert_no_error (error);
  e2ee_context_free (ctx);

  ctx = e2ee_context_new (e2ee_keyring_load (path, NULL, &error));
  g_assert_no_error (error);
  account = e2ee_context_ensure_account (ctx, "prpl-irc", "alice@irc", NULL, &error);
  g_assert_no_error (error);
  /* Offered as a stranger's: not cached aside for a later first contact. */
  g_assert_cmpint (e2ee_context_learn_keys_full (ctx, account, "bob_@irc", evil_keys, FALSE,
                                                 NULL, NULL),
                   ==, E2EE_LEARN_KEY_CHANGED);
  g_assert_cmpuint (e2ee_context_strangers_count (ctx), ==, 0);
  br = e2ee_account_lookup_buddy (account, "bob_@irc");
  g_assert_cmpint (e2ee_buddy_find_device (br, evil->account->identity)->trust, ==,
                   E2EE_TRUST_UNDECIDED);
  g_assert_cmpint (e2ee_context_send_decision (ctx, account, "bob_@irc", &error), ==,
                   E2EE_SEND_BLOCK);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED);
  g_clear_error (&error);
  /* A name that has had a key keeps what it had: the mark is a no-op. */
  g_assert_true (e2ee_context_mark_had_key (ctx, account, "bob@irc", NULL));
  g_assert_false (e2ee_account_lookup_buddy (account, "bob@irc")->key_changed);
  g_assert_false (e2ee_context_mark_had_key (ctx, account, "", &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_NAME);
  g_clear_error (&error);
  e2ee_context_free (ctx);
  peer_free (bob);
  peer_free (evil);
  g_assert_cmpint (system (cmd), ==, 0);
}

/* An identity that could not be saved is neither published nor used. */
static void
test_identity_unsaved (void)
{
  g_autofree char *dir = g_dir_make_tmp ("e2ee-trust-XXXXXX", NULL);
  g_autofree char *missing = g_build_filename (dir, "no-such-dir", "keyring.json", NULL);
  g_autofree char *path = g_build_filename (dir, "keyring.json", NULL);
  g_autofree char *backup = g_strconcat (path, "~", NULL);
  g_autofree char *lock = g_strconcat (path, ".lock", NULL);
  E2eeContext *ctx = e2ee_context_new (e2ee_keyring_new (missing));
  E2eeAccountRecord *account;
  g_autoptr (GPtrArray) keys = NULL;
  gboolean created = FALSE;
  GError *error = NULL;

  g_assert_null (e2ee_context_ensure_account_saved (ctx, "prpl-jabber", "alice@localhost",
                                                    &created, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_IDENTITY_UNSAVED);
  g_clear_error (&error);
  g_assert_null (e2ee_context_ensure_account (ctx, "prpl-jabber", "alice@localhost", NULL,
                                              &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_IDENTITY_UNSAVED);
  g_clear_error (&error);
  account = e2ee_keyring_lookup_account (e2ee_context_get_keyring (ctx), "prpl-jabber",
                                         "alice@localhost");
  g_assert_nonnull (account);
  keys = e2ee_context_own_keyset (ctx, account);
  g_assert_cmpuint (keys->len, ==, 0);
  e2ee_context_set_policy (ctx, account, "bob", E2EE_POLICY_REQUIRED);
  g_assert_null (e2ee_context_encrypt (ctx, account, "bob", "x", 0, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_IDENTITY_UNSAVED);
  g_clear_error (&error);
  e2ee_context_free (ctx);

  /* Where it can be saved, it is, before it is handed out. */
  ctx = e2ee_context_new (e2ee_keyring_new (path));
  account = e2ee_context_ensure_account_saved (ctx, "prpl-jabber", "alice@localhost", &created,
                                               &error);
  g_assert_no_error (error);
  g_assert_nonnull (account);
  g_assert_true (created);
  g_assert_true (g_file_test (e2ee_keyring_get_path (e2ee_context_get_keyring (ctx)), G_FILE_TEST_EXISTS));
  e2ee_context_free (ctx);
  g_unlink (path);
  g_unlink (backup);
  g_unlink (lock);
  g_rmdir (dir);
}

/* Plaintext from a buddy who has had a key is a downgrade whatever state
 * the keys are in (never encrypted yet, rejected, changed). */
static void
test_downgrade_degraded (void)
{
  Peer *alice = peer_new ("alice@localhost"), *bob = peer_new ("bob@localhost");
  Peer *bob_new = peer_new ("bob@localhost");
  E2eeRecvResult r;

  introduce (bob, alice);
  deliver (alice, bob->name, "[locked verified] hi", &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PLAINTEXT);
  g_assert_true (r.downgrade);
  e2ee_recv_result_clear (&r);
  e2ee_context_set_trust (alice->ctx, alice->account, bob->name, kid (bob),
                          E2EE_TRUST_REJECTED, NULL);
  deliver (alice, bob->name, "plain", &r);
  g_assert_true (r.downgrade);
  e2ee_recv_result_clear (&r);
  introduce (bob_new, alice);
  g_assert_true (e2ee_account_lookup_buddy (alice->account, bob->name)->key_changed);
  deliver (alice, bob->name, "plain", &r);
  g_assert_true (r.downgrade);
  e2ee_recv_result_clear (&r);
  deliver (alice, "carol@localhost", "plain", &r);
  g_assert_false (r.downgrade);
  e2ee_recv_result_clear (&r);
  peer_free (alice);
  peer_free (bob);
  peer_free (bob_new);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/trust/tofu", test_tofu);
  g_test_add_func ("/trust/verified", test_verified);
  g_test_add_func ("/trust/new-device/withheld", test_new_device_withheld);
  g_test_add_func ("/trust/new-device/reject-and-bound", test_new_device_reject_and_bound);
  g_test_add_func ("/trust/new-device/bare-trust-needs-one", test_bare_trust_needs_one_device);
  g_test_add_func ("/trust/new-device/cap-evicts-junk", test_device_cap_evicts_junk);
  g_test_add_func ("/trust/changed/withheld-blocked", test_changed);
  g_test_add_func ("/trust/changed/reset", test_changed_reset);
  g_test_add_func ("/trust/reset/keeps-had-key-and-policy", test_reset_keeps_had_key_and_policy);
  g_test_add_func ("/trust/reset/keeps-replay", test_reset_keeps_replay);
  g_test_add_func ("/trust/rejected/fails-closed", test_rejected_fails_closed);
  g_test_add_func ("/trust/rejected/trust-again", test_rejected_trust_again);
  g_test_add_func ("/trust/own/pending", test_own_pending);
  g_test_add_func ("/trust/own/reject", test_own_reject);
  g_test_add_func ("/trust/key-elsewhere", test_key_elsewhere);
  g_test_add_func ("/trust/verify-all", test_verify_all);
  g_test_add_func ("/trust/strangers", test_strangers);
  g_test_add_func ("/trust/fragments/cycling-nicks", test_fragments_cycling_nicks);
  g_test_add_func ("/trust/fragments/malformed-counted", test_malformed_counted);
  g_test_add_func ("/trust/names", test_invalid_names);
  g_test_add_func ("/trust/nick-change/had-key", test_nick_change_had_key);
  g_test_add_func ("/trust/identity-unsaved", test_identity_unsaved);
  g_test_add_func ("/trust/downgrade-degraded", test_downgrade_degraded);
  return g_test_run ();
}
