/* ECDSA P-256 signing keys of protocol v2: Wycheproof P1363 verification,
 * RFC 6979 known answer, low-level checks, JWK form.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-sign.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"

const char *__lsan_default_suppressions (void);
__attribute__ ((weak)) const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

static guint8 *
unhex (const char *hex, gsize *len)
{
  return e2ee_test_unhex (hex, len);
}

/* Wycheproof gives coordinates as minimal two's complement hex. */
static void
coord (const char *hex, guint8 out[32])
{
  gsize n;
  g_autofree guint8 *raw = unhex (hex, &n);
  const guint8 *p = raw;

  while (n > 32 && *p == 0)
    p++, n--;
  g_assert_cmpuint (n, <=, 32);
  memset (out, 0, 32);
  memcpy (out + 32 - n, p, n);
}

static void
test_wycheproof_p1363 (void)
{
  JsonNode *root = e2ee_test_load_json ("wycheproof/ecdsa_secp256r1_sha256_p1363_test.json");
  JsonObject *top = json_node_get_object (root);
  JsonArray *groups = json_object_get_array_member (top, "testGroups");
  guint valid = 0, invalid = 0;

  g_assert_cmpstr (json_object_get_string_member (top, "schema"), ==,
                   "ecdsa_p1363_verify_schema_v1.json");
  for (guint g = 0; g < json_array_get_length (groups); g++)
    {
      JsonObject *group = json_array_get_object_element (groups, g);
      JsonObject *pk = json_object_get_object_member (group, "publicKey");
      JsonArray *tests = json_object_get_array_member (group, "tests");
      guint8 x[32], y[32];
      g_autoptr (E2eeKey) key = NULL;
      g_autoptr (GError) kerr = NULL;

      g_assert_cmpstr (json_object_get_string_member (group, "sha"), ==, "SHA-256");
      g_assert_cmpstr (json_object_get_string_member (pk, "curve"), ==, "secp256r1");
      coord (json_object_get_string_member (pk, "wx"), x);
      coord (json_object_get_string_member (pk, "wy"), y);
      key = e2ee_key_new_public (x, y, &kerr);
      g_assert_no_error (kerr);
      for (guint t = 0; t < json_array_get_length (tests); t++)
        {
          JsonObject *tc = json_array_get_object_element (tests, t);
          gsize mlen, slen;
          g_autofree guint8 *msg = unhex (json_object_get_string_member (tc, "msg"), &mlen);
          g_autofree guint8 *sig = unhex (json_object_get_string_member (tc, "sig"), &slen);
          const char *result = json_object_get_string_member (tc, "result");
          g_autoptr (GError) error = NULL;
          gboolean ok = e2ee_sign_verify (key, msg, mlen, sig, slen, &error);

          if (g_str_equal (result, "valid"))
            {
              if (!ok)
                g_error ("tcId %" G_GINT64_FORMAT ": %s", json_object_get_int_member (tc, "tcId"),
                         error->message);
              valid++;
            }
          else
            {
              g_assert_cmpstr (result, ==, "invalid");
              if (ok)
                g_error ("tcId %" G_GINT64_FORMAT " accepted",
                         json_object_get_int_member (tc, "tcId"));
              g_assert_error (error, E2EE_ERROR, E2EE_ERROR_SIGNATURE);
              invalid++;
            }
        }
    }
  g_assert_cmpuint (valid + invalid, ==, json_object_get_int_member (top, "numberOfTests"));
  g_test_message ("Wycheproof P1363: %u valid accepted, %u invalid rejected", valid, invalid);
  g_assert_cmpuint (valid, >, 100);
  g_assert_cmpuint (invalid, >, 50);
  json_node_unref (root);
}

/* RFC 6979 A.2.5: P-256, SHA-256, message "sample". */
#define RFC6979_D "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"
#define RFC6979_UX "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
#define RFC6979_UY "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"
#define RFC6979_SIG "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716" \
                    "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"

static E2eeSignKey *
rfc6979_key (void)
{
  gsize n;
  g_autofree guint8 *d = unhex (RFC6979_D, &n);
  g_autoptr (GError) error = NULL;
  E2eeSignKey *key = e2ee_sign_key_from_bytes (d, &error);

  g_assert_no_error (error);
  return key;
}

static void
test_rfc6979 (void)
{
  g_autoptr (E2eeSignKey) key = rfc6979_key ();
  E2eeKey *pub = e2ee_sign_key_get_public (key);
  guint8 sig[64], again[64], d[32];
  gsize n;
  g_autofree guint8 *want = unhex (RFC6979_SIG, &n);
  g_autofree guint8 *ux = unhex (RFC6979_UX, &n);
  g_autofree guint8 *uy = unhex (RFC6979_UY, &n);
  g_autofree guint8 *draw = unhex (RFC6979_D, &n);
  g_autoptr (GError) error = NULL;

  g_assert_cmpmem (e2ee_key_get_x (pub), 32, ux, 32);
  g_assert_cmpmem (e2ee_key_get_y (pub), 32, uy, 32);
  g_assert_true (e2ee_sign (key, (const guint8 *) "sample", 6, sig, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (sig, 64, want, 64);
  g_assert_true (e2ee_sign (key, (const guint8 *) "sample", 6, again, NULL));
  g_assert_cmpmem (sig, 64, again, 64);
  g_assert_true (e2ee_sign_verify (pub, (const guint8 *) "sample", 6, sig, 64, &error));
  g_assert_no_error (error);
  g_assert_true (e2ee_sign_key_to_bytes (key, d));
  g_assert_cmpmem (d, 32, draw, 32);
  e2ee_wipe (d, sizeof d);
}

static void
expect_bad (const E2eeKey *pub, const guint8 *sig, gsize len)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (e2ee_sign_verify (pub, (const guint8 *) "sample", 6, sig, len, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_SIGNATURE);
}

static void
test_low_level (void)
{
  static const guint8 n_be[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
    0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
  };
  g_autoptr (E2eeSignKey) key = rfc6979_key ();
  E2eeKey *pub = e2ee_sign_key_get_public (key);
  g_autoptr (E2eeSignKey) other = e2ee_sign_key_generate (NULL);
  guint8 sig[65], bad[64];
  g_autoptr (GError) error = NULL;

  g_assert_true (e2ee_sign (key, (const guint8 *) "sample", 6, sig, NULL));
  sig[64] = 0;
  expect_bad (pub, sig, 63);
  expect_bad (pub, sig, 65);
  expect_bad (pub, sig, 0);
  /* r = 0, s = 0, r = n, s = n, s + n would wrap */
  memcpy (bad, sig, 64);
  memset (bad, 0, 32);
  expect_bad (pub, bad, 64);
  memcpy (bad, sig, 64);
  memset (bad + 32, 0, 32);
  expect_bad (pub, bad, 64);
  memcpy (bad, sig, 64);
  memcpy (bad, n_be, 32);
  expect_bad (pub, bad, 64);
  memcpy (bad, sig, 64);
  memcpy (bad + 32, n_be, 32);
  expect_bad (pub, bad, 64);
  memset (bad, 0xff, 64);
  expect_bad (pub, bad, 64);
  /* one bit of r or s, or of the message, or another key */
  for (int i = 0; i < 64; i += 21)
    {
      memcpy (bad, sig, 64);
      bad[i] ^= 0x01;
      expect_bad (pub, bad, 64);
    }
  g_assert_false (e2ee_sign_verify (pub, (const guint8 *) "samplf", 6, sig, 64, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_SIGNATURE);
  g_clear_error (&error);
  g_assert_nonnull (other);
  g_assert_false (e2ee_sign_verify (e2ee_sign_key_get_public (other),
                                    (const guint8 *) "sample", 6, sig, 64, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_SIGNATURE);
}

static void
test_scalar_range (void)
{
  guint8 zero[32] = { 0 }, big[32];
  g_autoptr (GError) error = NULL;

  g_assert_null (e2ee_sign_key_from_bytes (zero, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_JWK_RANGE);
  g_clear_error (&error);
  memset (big, 0xff, sizeof big);
  g_assert_null (e2ee_sign_key_from_bytes (big, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_JWK_RANGE);
}

static void
test_jwk (void)
{
  g_autoptr (E2eeSignKey) key = rfc6979_key ();
  g_autofree char *jwk = e2ee_sign_public_to_jwk (e2ee_sign_key_get_public (key));
  g_autoptr (E2eeKey) back = NULL;
  g_autoptr (GError) error = NULL;
  static const struct { const char *json; int code; } bad[] = {
    { "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"YP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Y\","
      "\"y\":\"eQP-EAi4vJmkGunpVii8ZPLxsgwtfp9Rd6PClNRGIpk\",\"use\":\"enc\"}", E2EE_ERROR_SIGN_KEY },
    { "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"YP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Y\","
      "\"y\":\"eQP-EAi4vJmkGunpVii8ZPLxsgwtfp9Rd6PClNRGIpk\",\"alg\":\"ECDH-ES\"}", E2EE_ERROR_SIGN_KEY },
    { "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"YP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Y\","
      "\"y\":\"eQP-EAi4vJmkGunpVii8ZPLxsgwtfp9Rd6PClNRGIpk\",\"alg\":1}", E2EE_ERROR_SIGN_KEY },
    { "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"YP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Y\","
      "\"y\":\"eQP-EAi4vJmkGunpVii8ZPLxsgwtfp9Rd6PClNRGIpk\"}", E2EE_ERROR_JWK_CRV },
    { "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"YP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Y\","
      "\"y\":\"eQP-EAi4vJmkGunpVii8ZPLxsgwtfp9Rd6PClNRGIpg\"}", E2EE_ERROR_JWK_NOT_ON_CURVE },
    { "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"YP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Y\","
      "\"y\":\"eQP-EAi4vJmkGunpVii8ZPLxsgwtfp9Rd6PClNRGIpk\","
      "\"d\":\"ya-p2EW6dRZrXCFXZ7HWk05Qw9s26JsSe4piKxIPZyE\"}", E2EE_ERROR_JWK_UNEXPECTED_PRIVATE },
    { "[]", E2EE_ERROR_JWK_SYNTAX },
  };

  g_assert_cmpstr (jwk, ==,
                   "{\"kty\":\"EC\",\"crv\":\"P-256\","
                   "\"x\":\"YP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Y\","
                   "\"y\":\"eQP-EAi4vJmkGunpVii8ZPLxsgwtfp9Rd6PClNRGIpk\","
                   "\"alg\":\"ES256\",\"use\":\"sig\"}");
  back = e2ee_sign_public_from_jwk (jwk, -1, &error);
  g_assert_no_error (error);
  g_assert_true (e2ee_key_equal (back, e2ee_sign_key_get_public (key)));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) e = NULL;
      g_assert_null (e2ee_sign_public_from_jwk (bad[i].json, -1, &e));
      g_assert_error (e, E2EE_ERROR, bad[i].code);
    }
}

/* The numbers PROTOCOL.md section 12 gives. */
static void
test_error_numbers (void)
{
  g_assert_cmpint (E2EE_ERROR_SIGNATURE, ==, 140);
  g_assert_cmpint (E2EE_ERROR_SIGN_KEY, ==, 141);
  g_assert_cmpint (E2EE_ERROR_PREKEY_FORMAT, ==, 142);
  g_assert_cmpint (E2EE_ERROR_PREKEY_IDENTITY, ==, 143);
  g_assert_cmpint (E2EE_ERROR_PREKEY_EXPIRED, ==, 144);
  g_assert_cmpint (E2EE_ERROR_PREKEY_VERSION, ==, 145);
  g_assert_cmpint (E2EE_ERROR_V2_FORMAT, ==, 146);
  g_assert_cmpint (E2EE_ERROR_V2_DEVICE, ==, 147);
  g_assert_cmpint (E2EE_ERROR_V2_SKIP_LIMIT, ==, 148);
  g_assert_cmpint (E2EE_ERROR_V2_DUPLICATE, ==, 149);
  g_assert_cmpint (E2EE_ERROR_V2_STATE, ==, 150);
  g_assert_cmpint (E2EE_ERROR_V2_START, ==, 151);
  g_assert_cmpint (E2EE_ERROR_V2_ACCOUNT, ==, 152);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/sign/wycheproof-p1363", test_wycheproof_p1363);
  g_test_add_func ("/sign/rfc6979", test_rfc6979);
  g_test_add_func ("/sign/low-level", test_low_level);
  g_test_add_func ("/sign/scalar-range", test_scalar_range);
  g_test_add_func ("/sign/jwk", test_jwk);
  g_test_add_func ("/sign/error-numbers", test_error_numbers);
  return g_test_run ();
}
