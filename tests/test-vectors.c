/* The protocol v1 vectors of docs/PROTOCOL.md (tests/vectors/protocol-v1.json,
 * produced by the independent WebCrypto implementation in tests/interop/):
 * identities, safety numbers, derivation and exact envelopes.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-fingerprint.h"
#include "e2ee-jwk.h"
#include "e2ee-keyset.h"
#include "e2ee-kdf.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"

#define VECTOR_FILE "vectors/protocol-v1.json"

static JsonObject *vectors;
static GHashTable *keys;   /* name -> E2eeKey */

static E2eeKey *
key_named (const char *name)
{
  E2eeKey *key = g_hash_table_lookup (keys, name);
  g_assert_nonnull (key);
  return key;
}

static void
load_vectors (void)
{
  JsonNode *root = e2ee_test_load_json (VECTOR_FILE);
  JsonObject *jwks;
  GList *names;

  vectors = json_object_ref (json_node_get_object (root));
  json_node_unref (root);
  keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                (GDestroyNotify) e2ee_key_unref);
  jwks = json_object_get_object_member (vectors, "keys");
  names = json_object_get_members (jwks);
  for (GList *l = names; l; l = l->next)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonGenerator) gen = json_generator_new ();
      g_autofree char *text = NULL;
      E2eeKey *key;

      /* Through the text parser, as a key file would be read. */
      json_generator_set_root (gen, json_object_get_member (jwks, l->data));
      text = json_generator_to_data (gen, NULL);
      key = e2ee_key_from_jwk (text, -1, E2EE_KEY_EXPECT_PRIVATE, &error);
      g_assert_no_error (error);
      g_hash_table_insert (keys, g_strdup (l->data), key);
      e2ee_wipe (text, strlen (text));
    }
  g_list_free (names);
  g_assert_cmpuint (g_hash_table_size (keys), >=, 4);
}

/* The account identifier the vector file gives the key @name. */
static const char *
account_of (const char *name)
{
  JsonObject *accounts = json_object_get_object_member (vectors, "accounts");
  const char *id;

  g_assert_nonnull (accounts);
  id = json_object_get_string_member (accounts, name);
  g_assert_nonnull (id);
  return id;
}

static JsonArray *
section (const char *name)
{
  JsonArray *arr = json_object_get_array_member (vectors, name);
  g_assert_nonnull (arr);
  g_assert_cmpuint (json_array_get_length (arr), >, 0);
  return arr;
}

static void
test_identities (void)
{
  JsonArray *arr = section ("identities");

  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonObject *v = json_array_get_object_element (arr, i);
      E2eeKey *key = key_named (json_object_get_string_member (v, "key"));
      g_autofree char *tp = e2ee_test_hex (e2ee_key_get_thumbprint (key), 32);
      g_autofree char *dev = e2ee_test_hex (e2ee_key_get_device_id (key), 4);
      g_autofree char *fp = e2ee_fingerprint_hex (key);

      g_assert_cmpstr (e2ee_key_get_kid (key), ==, json_object_get_string_member (v, "kid"));
      g_assert_cmpstr (tp, ==, json_object_get_string_member (v, "thumbprint_hex"));
      g_assert_cmpstr (dev, ==, json_object_get_string_member (v, "device_id_hex"));
      g_assert_cmpstr (fp, ==, json_object_get_string_member (v, "fingerprint"));
      g_assert_cmpint (e2ee_key_get_caps (key), ==, json_object_get_int_member (v, "caps"));
    }
}

static void
test_safety_numbers (void)
{
  JsonArray *arr = section ("safety_numbers");

  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonObject *v = json_array_get_object_element (arr, i);
      E2eeKey *a = key_named (json_object_get_string_member (v, "a"));
      E2eeKey *b = key_named (json_object_get_string_member (v, "b"));
      g_autofree char *ab = e2ee_safety_number (a, b);
      g_autofree char *ba = e2ee_safety_number (b, a);

      g_assert_cmpstr (ab, ==, json_object_get_string_member (v, "number"));
      g_assert_cmpstr (ba, ==, ab);
    }
}

static void
test_derivations (void)
{
  JsonArray *arr = section ("derivations");

  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonObject *v = json_array_get_object_element (arr, i);
      E2eeKey *s = key_named (json_object_get_string_member (v, "sender"));
      E2eeKey *r = key_named (json_object_get_string_member (v, "recipient"));
      guint8 caps = (guint8) json_object_get_int_member (v, "caps");
      g_autoptr (E2eeKey) s_pub = e2ee_key_public_copy (s);
      g_autoptr (E2eeKey) r_pub = e2ee_key_public_copy (r);
      guint8 z1[32], z2[32], k1[32], k2[32], k3[32];
      g_autofree char *zh = NULL, *kh = NULL, *kh2 = NULL, *kh3 = NULL;
      g_autoptr (GError) error = NULL;
      gsize info_len = 0;
      g_autofree guint8 *info = e2ee_test_unhex (json_object_get_string_member (v, "info_hex"),
                                                 &info_len);
      const char *salt = "purple-e2ee/v1";

      g_assert_true (e2ee_key_ecdh (s, r_pub, z1, &error));
      g_assert_true (e2ee_key_ecdh (r, s_pub, z2, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (z1, 32, z2, 32);
      zh = e2ee_test_hex (z1, 32);
      g_assert_cmpstr (zh, ==, json_object_get_string_member (v, "z_hex"));

      const char *sa = json_object_get_string_member (v, "sender_account");
      const char *ra = json_object_get_string_member (v, "recipient_account");
      gsize sa_len = strlen (sa), ra_len = strlen (ra);

      /* The sender computes it with its private key ... */
      g_assert_true (e2ee_kdf_direction_key (s, sa, r_pub, ra, caps, k1, &error));
      /* ... the recipient with its own. */
      g_assert_true (e2ee_kdf_direction_key (s_pub, sa, r, ra, caps, k2, &error));
      g_assert_no_error (error);
      kh = e2ee_test_hex (k1, 32);
      kh2 = e2ee_test_hex (k2, 32);
      g_assert_cmpstr (kh, ==, json_object_get_string_member (v, "key_hex"));
      g_assert_cmpstr (kh2, ==, kh);

      /* And the documented HKDF inputs give the same key. */
      g_assert_cmpuint (info_len, ==, 26 + 1 + 64 + 2 + sa_len + 2 + ra_len);
      g_assert_cmpmem (info, 26, "purple-e2ee/v1 message key", 26);
      g_assert_cmpuint (info[26], ==, caps);
      g_assert_cmpmem (info + 27, 32, e2ee_key_get_thumbprint (s), 32);
      g_assert_cmpmem (info + 59, 32, e2ee_key_get_thumbprint (r), 32);
      g_assert_cmpuint (info[91] << 8 | info[92], ==, sa_len);
      g_assert_cmpmem (info + 93, sa_len, sa, sa_len);
      g_assert_cmpuint (info[93 + sa_len] << 8 | info[94 + sa_len], ==, ra_len);
      g_assert_cmpmem (info + 95 + sa_len, ra_len, ra, ra_len);
      g_assert_true (e2ee_hkdf_sha256 ((const guint8 *) salt, strlen (salt), z1, 32,
                                       info, info_len, k3, 32, &error));
      kh3 = e2ee_test_hex (k3, 32);
      g_assert_cmpstr (kh3, ==, kh);
    }
}

static void
test_envelopes (void)
{
  JsonArray *arr = section ("envelopes");

  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonObject *v = json_array_get_object_element (arr, i);
      JsonArray *rnames = json_object_get_array_member (v, "recipients");
      guint n = json_array_get_length (rnames);
      E2eeKey *sender = key_named (json_object_get_string_member (v, "sender"));
      const char *sender_acct = account_of (json_object_get_string_member (v, "sender"));
      const char *plaintext = json_object_get_string_member (v, "plaintext");
      const char *mk_hex = json_object_get_string_member (v, "message_key_hex");
      guint8 wrap_keys[E2EE_ENVELOPE_MAX_RECIPIENTS][32];
      E2eeRecipient recipients[E2EE_ENVELOPE_MAX_RECIPIENTS] = { 0 };
      E2eeSealParams params = { 0 };
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) env = NULL;
      g_autoptr (GBytes) decoded = NULL;
      g_autoptr (E2eeEnvelope) parsed = NULL;
      g_autofree char *armored = NULL;
      g_autofree char *env_hex = NULL;
      g_autofree guint8 *iv = NULL;
      g_autofree guint8 *mk = NULL;
      gsize iv_len = 0, mk_len = 0;

      g_test_message ("vector %s", json_object_get_string_member (v, "name"));
      g_assert_cmpuint (n, >=, 1);
      iv = e2ee_test_unhex (json_object_get_string_member (v, "iv_hex"), &iv_len);
      g_assert_cmpuint (iv_len, ==, 12);
      if (mk_hex)
        {
          mk = e2ee_test_unhex (mk_hex, &mk_len);
          g_assert_cmpuint (mk_len, ==, 32);
        }
      else
        g_assert_cmpuint (n, ==, 1);
      for (guint r = 0; r < n; r++)
        {
          E2eeKey *rk = key_named (json_array_get_string_element (rnames, r));
          const char *racct = account_of (json_array_get_string_element (rnames, r));
          g_autoptr (E2eeKey) pub = e2ee_key_public_copy (rk);
          g_assert_true (e2ee_kdf_direction_key (sender, sender_acct, pub, racct,
                                                 e2ee_key_get_caps (sender), wrap_keys[r],
                                                 &error));
          g_assert_no_error (error);
          memcpy (recipients[r].id, e2ee_key_get_device_id (rk), 4);
          recipients[r].key = wrap_keys[r];
          recipients[r].aead = NULL;   /* no cached cipher handle here */
        }
      params.caps = e2ee_key_get_caps (sender);
      g_assert_cmpint (params.caps, ==, json_object_get_int_member (v, "caps"));
      memcpy (params.sender_id, e2ee_key_get_device_id (sender), 4);
      params.counter = (guint64) json_object_get_int_member (v, "counter");
      params.recipients = recipients;
      params.n_recipients = n;
      params.pad_block = (gsize) json_object_get_int_member (v, "pad_block");
      params.fixed_iv = iv;
      params.fixed_message_key = mk;
      params.fixed_pad_blocks = (gsize) json_object_get_int_member (v, "pad_extra_blocks");

      env = e2ee_envelope_seal (&params, (const guint8 *) plaintext, strlen (plaintext), &error);
      g_assert_no_error (error);
      env_hex = e2ee_test_hex (g_bytes_get_data (env, NULL), g_bytes_get_size (env));
      g_assert_cmpstr (env_hex, ==, json_object_get_string_member (v, "envelope_hex"));
      {
        /* The two packed bytes, spelled out: version 1 over the caps
         * nibble; the padded flag over n - 1. */
        const guint8 *d = g_bytes_get_data (env, NULL);
        guint flags = params.pad_block ? E2EE_ENVELOPE_FLAG_PADDED : 0;

        g_assert_cmpuint (d[0], ==, E2EE_ENVELOPE_VERSION << 4 | params.caps);
        g_assert_cmpuint (d[1], ==, flags << 5 | (n - 1));
        g_assert_cmpmem (d + 2, 4, params.sender_id, 4);
      }
      armored = e2ee_armor_encode (env);
      g_assert_cmpstr (armored, ==, json_object_get_string_member (v, "armored"));

      /* Every recipient opens the pinned text with its own private key. */
      decoded = e2ee_armor_decode (json_object_get_string_member (v, "armored"), &error);
      g_assert_no_error (error);
      parsed = e2ee_envelope_parse (g_bytes_get_data (decoded, NULL),
                                    g_bytes_get_size (decoded), &error);
      g_assert_no_error (error);
      g_assert_cmpuint (e2ee_envelope_get_counter (parsed), ==, params.counter);
      for (guint r = 0; r < n; r++)
        {
          E2eeKey *rk = key_named (json_array_get_string_element (rnames, r));
          const char *racct = account_of (json_array_get_string_element (rnames, r));
          g_autoptr (E2eeKey) sender_pub = e2ee_key_public_copy (sender);
          guint8 k[32];
          guint8 *plain = NULL;
          gsize plain_len = 0;
          gint idx = e2ee_envelope_find_recipient (parsed, e2ee_key_get_device_id (rk));

          g_assert_cmpint (idx, ==, (gint) r);
          g_assert_true (e2ee_kdf_direction_key (sender_pub, sender_acct, rk, racct,
                                                 e2ee_key_get_caps (sender), k, &error));
          g_assert_true (e2ee_envelope_open (parsed, (guint) idx, k, &plain, &plain_len, &error));
          g_assert_no_error (error);
          g_assert_cmpmem (plain, plain_len, plaintext, strlen (plaintext));
          e2ee_secret_free (plain, plain_len + 1);
          e2ee_wipe (k, sizeof k);
        }
      e2ee_wipe (wrap_keys, sizeof wrap_keys);
    }
}

/* Public JWK Set built from the vector keys parses back to the same keys. */
static void
test_keyset (void)
{
  g_autoptr (GPtrArray) set = g_ptr_array_new ();
  g_autoptr (GPtrArray) back = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *json = NULL;

  g_ptr_array_add (set, key_named ("bob"));
  g_ptr_array_add (set, key_named ("bob_phone"));
  json = e2ee_keyset_to_json (set);
  g_assert_null (strstr (json, "\"d\""));
  back = e2ee_keyset_parse (json, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->len, ==, 2);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_true (e2ee_key_equal (back->pdata[i], set->pdata[i]));
      g_assert_false (e2ee_key_has_private (back->pdata[i]));
    }
}

int
main (int argc, char **argv)
{
  int rc;

  e2ee_test_init (&argc, &argv);
  load_vectors ();
  g_test_add_func ("/vectors/identities", test_identities);
  g_test_add_func ("/vectors/safety-numbers", test_safety_numbers);
  g_test_add_func ("/vectors/derivations", test_derivations);
  g_test_add_func ("/vectors/envelopes", test_envelopes);
  g_test_add_func ("/vectors/keyset", test_keyset);
  rc = g_test_run ();
  g_hash_table_unref (keys);
  json_object_unref (vectors);
  return rc;
}
