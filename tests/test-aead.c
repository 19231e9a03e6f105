/* AES-256-GCM: Wycheproof known answers and the rules libgcrypt leaves to
 * us (12-byte IV, full 16-byte tag, no plaintext on failure).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-aead.h"
#include "e2ee-error.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"

static guint8 *
member_hex (JsonObject *o, const char *name, gsize *len)
{
  return e2ee_test_unhex (json_object_get_string_member (o, name), len);
}

static void
test_wycheproof (void)
{
  JsonNode *root = e2ee_test_load_json ("wycheproof/aes_gcm_test.json");
  JsonObject *top = json_node_get_object (root);
  JsonArray *groups = json_object_get_array_member (top, "testGroups");
  guint n_match = 0, n_param = 0, n_invalid = 0, total = 0;

  g_assert_cmpstr (json_object_get_string_member (top, "algorithm"), ==, "AES-GCM");
  for (guint g = 0; g < json_array_get_length (groups); g++)
    {
      JsonObject *group = json_array_get_object_element (groups, g);
      JsonArray *tests = json_object_get_array_member (group, "tests");
      gint64 key_bits = json_object_get_int_member (group, "keySize");
      gint64 iv_bits = json_object_get_int_member (group, "ivSize");
      gint64 tag_bits = json_object_get_int_member (group, "tagSize");
      gboolean ours = key_bits == 256 && iv_bits == 96 && tag_bits == 128;

      for (guint t = 0; t < json_array_get_length (tests); t++)
        {
          JsonObject *tc = json_array_get_object_element (tests, t);
          gsize key_len, iv_len, aad_len, msg_len, ct_len, tag_len;
          g_autofree guint8 *key = member_hex (tc, "key", &key_len);
          g_autofree guint8 *iv = member_hex (tc, "iv", &iv_len);
          g_autofree guint8 *aad = member_hex (tc, "aad", &aad_len);
          g_autofree guint8 *msg = member_hex (tc, "msg", &msg_len);
          g_autofree guint8 *ct = member_hex (tc, "ct", &ct_len);
          g_autofree guint8 *tag = member_hex (tc, "tag", &tag_len);
          g_autofree guint8 *out = g_malloc (ct_len + 1);
          const char *result = json_object_get_string_member (tc, "result");
          gboolean valid = g_str_equal (result, "valid");
          g_autoptr (GError) error = NULL;
          gboolean ok;

          total++;
          g_assert_cmpuint (key_len * 8, ==, key_bits);
          memset (out, 0xaa, ct_len + 1);
          ok = e2ee_aead_open_checked (key, key_len, iv, iv_len, aad, aad_len,
                                       ct, ct_len, tag, tag_len, out, &error);
          if (!ours)
            {
              /* Other key, IV or tag sizes are never accepted. */
              g_assert_false (ok);
              g_assert_error (error, E2EE_ERROR, E2EE_ERROR_AEAD_PARAM);
              n_param++;
            }
          else if (valid)
            {
              g_autoptr (E2eeAead) aead = NULL;
              g_autofree guint8 *ct2 = g_malloc (msg_len + 1);
              guint8 tag2[16];

              if (!ok)
                g_error ("tcId %" G_GINT64_FORMAT ": %s",
                         json_object_get_int_member (tc, "tcId"), error->message);
              g_assert_cmpmem (out, ct_len, msg, msg_len);
              /* Sealing reproduces the ciphertext and tag. */
              aead = e2ee_aead_new (key, &error);
              g_assert_no_error (error);
              g_assert_true (e2ee_aead_seal (aead, iv, aad, aad_len, msg, msg_len,
                                             ct2, tag2, &error));
              g_assert_cmpmem (ct2, msg_len, ct, ct_len);
              g_assert_cmpmem (tag2, 16, tag, tag_len);
              /* And the reused handle opens it again. */
              g_assert_true (e2ee_aead_open (aead, iv, aad, aad_len, ct2, msg_len, tag2,
                                             ct2, &error));
              g_assert_cmpmem (ct2, msg_len, msg, msg_len);
              n_match++;
            }
          else
            {
              g_assert_false (ok);
              g_assert_error (error, E2EE_ERROR, E2EE_ERROR_AEAD_TAG);
              /* Nothing of the decryption is left behind. */
              for (gsize i = 0; i < ct_len; i++)
                g_assert_cmpuint (out[i], ==, 0);
              n_invalid++;
            }
        }
    }
  g_test_message ("AES-GCM: %u matched, %u invalid rejected, %u other sizes rejected",
                  n_match, n_invalid, n_param);
  g_assert_cmpuint (total, ==, json_object_get_int_member (top, "numberOfTests"));
  g_assert_cmpuint (n_match, >, 0);
  g_assert_cmpuint (n_invalid, >, 0);
  g_assert_cmpuint (n_param, >, 0);
  json_node_unref (root);
}

static void
test_truncated_tag (void)
{
  guint8 key[32], iv[12], msg[40], ct[40], tag[16], out[40];
  g_autoptr (E2eeAead) aead = NULL;
  g_autoptr (GError) error = NULL;
  const gsize lens[] = { 0, 4, 8, 12, 13, 14, 15, 17 };

  memset (key, 1, sizeof key);
  memset (iv, 2, sizeof iv);
  memset (msg, 'm', sizeof msg);
  aead = e2ee_aead_new (key, &error);
  g_assert_true (e2ee_aead_seal (aead, iv, NULL, 0, msg, sizeof msg, ct, tag, &error));
  g_assert_no_error (error);
  /* A correct prefix of the tag is what libgcrypt alone would accept. */
  for (guint i = 0; i < G_N_ELEMENTS (lens); i++)
    {
      g_autoptr (GError) e = NULL;
      guint8 longtag[17];
      memcpy (longtag, tag, 16);
      longtag[16] = 0;
      g_assert_false (e2ee_aead_open_checked (key, 32, iv, 12, NULL, 0, ct, sizeof ct,
                                              longtag, lens[i], out, &e));
      g_assert_error (e, E2EE_ERROR, E2EE_ERROR_AEAD_PARAM);
    }
  g_assert_true (e2ee_aead_open_checked (key, 32, iv, 12, NULL, 0, ct, sizeof ct,
                                         tag, 16, out, &error));
  g_assert_cmpmem (out, sizeof out, msg, sizeof msg);
}

static void
test_iv_and_key_sizes (void)
{
  guint8 key[32] = { 0 }, iv[16] = { 0 }, ct[4] = { 0 }, tag[16] = { 0 }, out[4];
  const gsize iv_lens[] = { 0, 1, 8, 11, 13, 16 };
  const gsize key_lens[] = { 0, 16, 24, 31, 33 };

  for (guint i = 0; i < G_N_ELEMENTS (iv_lens); i++)
    {
      g_autoptr (GError) e = NULL;
      memset (out, 0x55, sizeof out);
      g_assert_false (e2ee_aead_open_checked (key, 32, iv, iv_lens[i], NULL, 0, ct, 4,
                                              tag, 16, out, &e));
      g_assert_error (e, E2EE_ERROR, E2EE_ERROR_AEAD_PARAM);
      g_assert_cmpmem (out, 4, "\0\0\0\0", 4);
    }
  for (guint i = 0; i < G_N_ELEMENTS (key_lens); i++)
    {
      g_autoptr (GError) e = NULL;
      g_assert_false (e2ee_aead_open_checked (key, key_lens[i], iv, 12, NULL, 0, ct, 4,
                                              tag, 16, out, &e));
      g_assert_error (e, E2EE_ERROR, E2EE_ERROR_AEAD_PARAM);
    }
}

/* Tampering anywhere (key, IV, AAD, ciphertext, tag) fails and wipes. */
static void
test_tamper (void)
{
  guint8 key[32], iv[12], aad[20], msg[33], ct[33], tag[16], out[33];
  g_autoptr (E2eeAead) aead = NULL;
  g_autoptr (GError) error = NULL;
  guint8 *parts[] = { key, iv, aad, ct, tag };
  const gsize sizes[] = { 32, 12, 20, 33, 16 };

  gcry_create_nonce (key, sizeof key);
  e2ee_aead_random_iv (iv);
  memset (aad, 'a', sizeof aad);
  memset (msg, 'p', sizeof msg);
  aead = e2ee_aead_new (key, &error);
  g_assert_true (e2ee_aead_seal (aead, iv, aad, sizeof aad, msg, sizeof msg, ct, tag, &error));
  for (guint p = 0; p < G_N_ELEMENTS (parts); p++)
    for (gsize i = 0; i < sizes[p]; i++)
      {
        g_autoptr (GError) e = NULL;
        gboolean ok;
        parts[p][i] ^= 0x01;
        memset (out, 0x77, sizeof out);
        ok = e2ee_aead_open_checked (key, 32, iv, 12, aad, sizeof aad, ct, sizeof ct,
                                     tag, 16, out, &e);
        parts[p][i] ^= 0x01;
        g_assert_false (ok);
        g_assert_error (e, E2EE_ERROR, E2EE_ERROR_AEAD_TAG);
        for (gsize k = 0; k < sizeof out; k++)
          g_assert_cmpuint (out[k], ==, 0);
      }
  /* Missing AAD is a different message too. */
  g_assert_false (e2ee_aead_open (aead, iv, NULL, 0, ct, sizeof ct, tag, out, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_AEAD_TAG);
  g_clear_error (&error);
  g_assert_true (e2ee_aead_open (aead, iv, aad, sizeof aad, ct, sizeof ct, tag, out, &error));
  g_assert_cmpmem (out, sizeof out, msg, sizeof msg);
}

/* The handle is reset between operations: a failed open does not poison
 * the next one, and in-place decryption works. */
static void
test_handle_reuse (void)
{
  guint8 key[32], iv[12], buf[100], tag[16], bad[16];
  g_autoptr (E2eeAead) aead = NULL;
  g_autoptr (GError) error = NULL;

  memset (key, 9, sizeof key);
  aead = e2ee_aead_new (key, &error);
  for (guint round = 0; round < 5; round++)
    {
      e2ee_aead_random_iv (iv);
      memset (buf, (int) round, sizeof buf);
      g_assert_true (e2ee_aead_seal (aead, iv, iv, 12, buf, sizeof buf, buf, tag, &error));
      memcpy (bad, tag, 16);
      bad[15] ^= 0x80;
      g_assert_false (e2ee_aead_open (aead, iv, iv, 12, buf, sizeof buf, bad,
                                      (guint8[100]) { 0 }, &error));
      g_clear_error (&error);
      g_assert_true (e2ee_aead_open (aead, iv, iv, 12, buf, sizeof buf, tag, buf, &error));
      g_assert_no_error (error);
      for (gsize i = 0; i < sizeof buf; i++)
        g_assert_cmpuint (buf[i], ==, round);
    }
}

static void
test_random_iv (void)
{
  guint8 a[12], b[12];

  e2ee_aead_random_iv (a);
  e2ee_aead_random_iv (b);
  g_assert_true (memcmp (a, b, 12) != 0);
  memset (a, 0, sizeof a);
  memset (b, 0, sizeof b);
  e2ee_random_key (a, sizeof a);
  e2ee_random_key (b, sizeof b);
  g_assert_true (memcmp (a, b, 12) != 0);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/aead/wycheproof", test_wycheproof);
  g_test_add_func ("/aead/truncated-tag", test_truncated_tag);
  g_test_add_func ("/aead/iv-and-key-sizes", test_iv_and_key_sizes);
  g_test_add_func ("/aead/tamper", test_tamper);
  g_test_add_func ("/aead/handle-reuse", test_handle_reuse);
  g_test_add_func ("/aead/random-iv", test_random_iv);
  return g_test_run ();
}
