/* HKDF-SHA256 (Wycheproof, RFC 5869) and the pairwise key schedule.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-kdf.h"
#include "e2ee-session.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"

/* libgcrypt allocates its entropy collector's state on the first strong
 * random request and never frees it; not a leak of ours.  Weak, so a
 * project-wide definition takes precedence. */
const char *__lsan_default_suppressions (void);
__attribute__ ((weak)) const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

static void
test_wycheproof (void)
{
  JsonNode *root = e2ee_test_load_json ("wycheproof/hkdf_sha256_test.json");
  JsonObject *top = json_node_get_object (root);
  JsonArray *groups = json_object_get_array_member (top, "testGroups");
  guint total = 0, n_valid = 0, n_invalid = 0;

  g_assert_cmpstr (json_object_get_string_member (top, "algorithm"), ==, "HKDF-SHA-256");
  for (guint g = 0; g < json_array_get_length (groups); g++)
    {
      JsonArray *tests = json_object_get_array_member (json_array_get_object_element (groups, g),
                                                       "tests");
      for (guint t = 0; t < json_array_get_length (tests); t++)
        {
          JsonObject *tc = json_array_get_object_element (tests, t);
          gsize ikm_len, salt_len, info_len, okm_len;
          g_autofree guint8 *ikm = e2ee_test_unhex (json_object_get_string_member (tc, "ikm"), &ikm_len);
          g_autofree guint8 *salt = e2ee_test_unhex (json_object_get_string_member (tc, "salt"), &salt_len);
          g_autofree guint8 *info = e2ee_test_unhex (json_object_get_string_member (tc, "info"), &info_len);
          g_autofree guint8 *okm = e2ee_test_unhex (json_object_get_string_member (tc, "okm"), &okm_len);
          gsize size = (gsize) json_object_get_int_member (tc, "size");
          g_autofree guint8 *out = g_malloc0 (size + 1);
          g_autoptr (GError) error = NULL;
          gboolean ok;

          total++;
          ok = e2ee_hkdf_sha256 (salt, salt_len, ikm, ikm_len, info, info_len, out, size, &error);
          if (g_str_equal (json_object_get_string_member (tc, "result"), "valid"))
            {
              g_assert_no_error (error);
              g_assert_true (ok);
              g_assert_cmpmem (out, size, okm, okm_len);
              n_valid++;
            }
          else
            {
              /* The invalid cases ask for more than 255 * 32 bytes. */
              g_assert_cmpuint (size, >, 255 * 32);
              g_assert_false (ok);
              g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KDF_PARAM);
              n_invalid++;
            }
        }
    }
  g_test_message ("HKDF-SHA256: %u valid matched, %u invalid rejected", n_valid, n_invalid);
  g_assert_cmpuint (total, ==, json_object_get_int_member (top, "numberOfTests"));
  g_assert_cmpuint (n_valid, >, 0);
  g_assert_cmpuint (n_invalid, >, 0);
  json_node_unref (root);
}

static void
test_lengths (void)
{
  guint8 out[255 * 32 + 1];
  guint8 ikm[32] = { 1 };
  g_autoptr (GError) error = NULL;

  g_assert_false (e2ee_hkdf_sha256 (NULL, 0, ikm, 32, NULL, 0, out, 0, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KDF_PARAM);
  g_clear_error (&error);
  g_assert_false (e2ee_hkdf_sha256 (NULL, 0, ikm, 32, NULL, 0, out, sizeof out, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KDF_PARAM);
  g_clear_error (&error);
  g_assert_true (e2ee_hkdf_sha256 (NULL, 0, ikm, 32, NULL, 0, out, sizeof out - 1, &error));
  g_assert_no_error (error);
  /* A shorter output is a prefix of a longer one (same T(i) blocks). */
  {
    guint8 short_out[33];
    g_assert_true (e2ee_hkdf_sha256 (NULL, 0, ikm, 32, NULL, 0, short_out, 33, &error));
    g_assert_cmpmem (short_out, 33, out, 33);
  }
  /* An empty salt is 32 zero bytes (RFC 5869 2.2). */
  {
    guint8 zero[32] = { 0 }, a[32], b[32];
    g_assert_true (e2ee_hkdf_sha256 (NULL, 0, ikm, 32, (const guint8 *) "i", 1, a, 32, &error));
    g_assert_true (e2ee_hkdf_sha256 (zero, 32, ikm, 32, (const guint8 *) "i", 1, b, 32, &error));
    g_assert_cmpmem (a, 32, b, 32);
  }
}

#define ACCT_A "prpl-jabber:a@example.test"
#define ACCT_B "prpl-jabber:b@example.test"

static E2eeKey *
gen (void)
{
  g_autoptr (GError) error = NULL;
  E2eeKey *k = e2ee_key_generate (&error);
  g_assert_no_error (error);
  return k;
}

static void
test_direction_keys (void)
{
  g_autoptr (E2eeKey) a = gen ();
  g_autoptr (E2eeKey) b = gen ();
  g_autoptr (E2eeKey) c = gen ();
  g_autoptr (E2eeKey) a_pub = e2ee_key_public_copy (a);
  g_autoptr (E2eeKey) b_pub = e2ee_key_public_copy (b);
  g_autoptr (GError) error = NULL;
  guint8 ab[32], ab2[32], ba[32], ab_caps3[32], send_a[32], recv_a[32], send_b[32], recv_b[32];
  guint8 ac[32];

  /* Each side derives K(a->b) with its own private key. */
  g_assert_true (e2ee_kdf_direction_key (a, ACCT_A, b_pub, ACCT_B, 1, ab, &error));
  g_assert_true (e2ee_kdf_direction_key (a_pub, ACCT_A, b, ACCT_B, 1, ab2, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (ab, 32, ab2, 32);
  /* Directions, caps and peers all give other keys. */
  g_assert_true (e2ee_kdf_direction_key (b, ACCT_B, a_pub, ACCT_A, 1, ba, &error));
  g_assert_true (e2ee_kdf_direction_key (a, ACCT_A, b_pub, ACCT_B, 3, ab_caps3, &error));
  g_assert_true (e2ee_kdf_direction_key (a, ACCT_A, c, ACCT_B, 1, ac, &error));
  g_assert_true (memcmp (ab, ba, 32) != 0);
  g_assert_true (memcmp (ab, ab_caps3, 32) != 0);
  g_assert_true (memcmp (ab, ac, 32) != 0);

  /* pair_keys gives both at once, matching the single derivations. */
  g_assert_true (e2ee_kdf_pair_keys (a, ACCT_A, b_pub, ACCT_B, 1, 1, send_a, recv_a, &error));
  g_assert_true (e2ee_kdf_pair_keys (b, ACCT_B, a_pub, ACCT_A, 1, 1, send_b, recv_b, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (send_a, 32, ab, 32);
  g_assert_cmpmem (recv_a, 32, ba, 32);
  g_assert_cmpmem (send_b, 32, ba, 32);
  g_assert_cmpmem (recv_b, 32, ab, 32);

  /* Both public: no ECDH possible. */
  g_assert_false (e2ee_kdf_direction_key (a_pub, ACCT_A, b_pub, ACCT_B, 1, ab, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FAILED);
  g_clear_error (&error);
  memset (send_a, 0x33, 32);
  g_assert_false (e2ee_kdf_pair_keys (a_pub, ACCT_A, b_pub, ACCT_B, 1, 1, send_a, recv_a, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FAILED);
  for (guint i = 0; i < 32; i++)
    g_assert_cmpuint (send_a[i], ==, 0);
}

/* Account identifiers enter the derivation: the same two device keys give
 * other keys for other account names, in either slot. */
static void
test_account_binding (void)
{
  g_autoptr (E2eeKey) a = gen ();
  g_autoptr (E2eeKey) b = gen ();
  g_autoptr (GError) error = NULL;
  guint8 k[32], other[32];
  static const char *const bad[] = { "", ":", "p:", ":name", "noprotocol", "p:a\nb",
                                     "p:\x7f", "p:\xff", NULL };

  g_assert_true (e2ee_kdf_direction_key (a, ACCT_A, b, ACCT_B, 1, k, &error));
  g_assert_true (e2ee_kdf_direction_key (a, "prpl-jabber:mallory@example.test", b, ACCT_B,
                                         1, other, &error));
  g_assert_true (memcmp (k, other, 32) != 0);
  g_assert_true (e2ee_kdf_direction_key (a, ACCT_A, b, "prpl-jabber:mallory@example.test",
                                         1, other, &error));
  g_assert_true (memcmp (k, other, 32) != 0);
  /* The same name on another protocol is another account. */
  g_assert_true (e2ee_kdf_direction_key (a, "prpl-irc:a@example.test", b, ACCT_B, 1, other,
                                         &error));
  g_assert_true (memcmp (k, other, 32) != 0);
  /* Lengths are encoded: moving the boundary between the two names
   * changes the key. */
  g_assert_true (e2ee_kdf_direction_key (a, "p:ab", b, "p:c", 1, k, &error));
  g_assert_true (e2ee_kdf_direction_key (a, "p:a", b, "bp:c", 1, other, &error));
  g_assert_no_error (error);
  g_assert_true (memcmp (k, other, 32) != 0);

  for (guint i = 0; bad[i]; i++)
    {
      memset (k, 0x55, sizeof k);
      g_assert_false (e2ee_kdf_direction_key (a, bad[i], b, ACCT_B, 1, k, &error));
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KDF_PARAM);
      g_clear_error (&error);
      g_assert_false (e2ee_kdf_pair_keys (a, ACCT_A, b, bad[i], 1, 1, k, other, &error));
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KDF_PARAM);
      g_clear_error (&error);
      for (guint j = 0; j < 32; j++)
        g_assert_cmpuint (k[j], ==, 0);
    }
  g_assert_false (e2ee_kdf_direction_key (a, NULL, b, ACCT_B, 1, k, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KDF_PARAM);
}

/* Unknown key share through the session: Mallory republishes Bob's key as
 * hers; Alice, who pinned it under "mallory", must not take Bob's envelope
 * (relayed by Mallory) as Mallory's words, and Bob must not take Alice's
 * envelope for "mallory" as written to him. */
typedef struct {
  E2eeContext *ctx;
  E2eeAccountRecord *account;
} UksSide;

static void
uks_side (UksSide *s, const char *name)
{
  g_autoptr (GError) error = NULL;
  gboolean created;

  s->ctx = e2ee_context_new (e2ee_keyring_new ("/nonexistent/purple-e2ee/keyring.json"));
  s->account = e2ee_context_ensure_account (s->ctx, "prpl-jabber", name, &created, &error);
  g_assert_no_error (error);
}

static void
uks_learn (UksSide *to, const char *as, UksSide *from)
{
  g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (from->ctx, from->account);

  e2ee_context_learn_keys (to->ctx, to->account, as, keys, NULL);
}

static char *
uks_encrypt (UksSide *from, const char *to)
{
  g_autoptr (GError) error = NULL;
  char **pieces = e2ee_context_encrypt (from->ctx, from->account, to, "pay mallory", 0, &error);
  char *text;

  g_assert_no_error (error);
  text = g_strdup (pieces[0]);
  g_strfreev (pieces);
  return text;
}

static E2eeRecvKind
uks_receive (UksSide *to, const char *from, const char *text)
{
  E2eeRecvResult r;
  E2eeRecvKind kind;

  e2ee_context_receive (to->ctx, to->account, from, text, 1, &r);
  kind = r.kind;
  if (kind == E2EE_RECV_ERROR)
    g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_AEAD_TAG);
  e2ee_recv_result_clear (&r);
  return kind;
}

static void
test_unknown_key_share (void)
{
  UksSide alice, bob;
  g_autofree char *from_bob = NULL, *to_mallory = NULL;

  uks_side (&alice, "alice@example.test");
  uks_side (&bob, "bob@example.test");
  /* Bob knows Alice; Alice knows Bob's key only as "mallory"'s. */
  uks_learn (&bob, "alice@example.test", &alice);
  uks_learn (&alice, "mallory@example.test", &bob);

  from_bob = uks_encrypt (&bob, "alice@example.test");
  g_assert_cmpint (uks_receive (&alice, "mallory@example.test", from_bob), ==, E2EE_RECV_ERROR);
  /* The other way: Alice writes to "mallory", Mallory relays it to Bob as
   * Alice's. */
  to_mallory = uks_encrypt (&alice, "mallory@example.test");
  g_assert_cmpint (uks_receive (&bob, "alice@example.test", to_mallory), ==, E2EE_RECV_ERROR);

  /* Control: once Alice has the key under Bob's name, the same envelope
   * opens as Bob's. */
  g_assert_true (e2ee_context_reset (alice.ctx, alice.account, "mallory@example.test", NULL));
  uks_learn (&alice, "bob@example.test", &bob);
  g_assert_cmpint (uks_receive (&alice, "bob@example.test", from_bob), ==, E2EE_RECV_MESSAGE);

  e2ee_context_free (alice.ctx);
  e2ee_context_free (bob.ctx);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/kdf/wycheproof", test_wycheproof);
  g_test_add_func ("/kdf/lengths", test_lengths);
  g_test_add_func ("/kdf/direction-keys", test_direction_keys);
  g_test_add_func ("/kdf/account-binding", test_account_binding);
  g_test_add_func ("/kdf/unknown-key-share", test_unknown_key_share);
  return g_test_run ();
}
