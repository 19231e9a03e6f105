/* Strict unpadded base64url (RFC 4648 section 5).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-test-util.h"

/* RFC 4648 section 10, without the padding. */
static const struct { const char *plain, *b64; } rfc4648[] = {
  { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
  { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
};

static void
test_rfc4648 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (rfc4648); i++)
    {
      gsize n = strlen (rfc4648[i].plain), len = 99;
      g_autofree char *enc = e2ee_b64url_encode ((const guint8 *) rfc4648[i].plain, n);
      g_autoptr (GError) error = NULL;
      g_autofree guint8 *dec = e2ee_b64url_decode (rfc4648[i].b64, strlen (rfc4648[i].b64),
                                                   &len, &error);

      g_assert_cmpstr (enc, ==, rfc4648[i].b64);
      g_assert_cmpuint (e2ee_b64url_encoded_len (n), ==, strlen (enc));
      g_assert_no_error (error);
      g_assert_cmpmem (dec, len, rfc4648[i].plain, n);
      g_assert_cmpuint (dec[len], ==, 0);
    }
}

/* The two characters where base64url differs from base64. */
static void
test_alphabet (void)
{
  const guint8 all62[] = { 0xfb, 0xef, 0xbe };  /* 111110 111110 111110 111110 */
  const guint8 all63[] = { 0xff, 0xff, 0xff };
  g_autofree char *a = e2ee_b64url_encode (all62, 3);
  g_autofree char *b = e2ee_b64url_encode (all63, 3);
  guint8 every[256];
  g_autofree char *e = NULL;
  g_autofree guint8 *back = NULL;
  gsize len;

  g_assert_cmpstr (a, ==, "----");
  g_assert_cmpstr (b, ==, "____");
  for (guint i = 0; i < 256; i++)
    every[i] = (guint8) i;
  e = e2ee_b64url_encode (every, 256);
  for (const char *p = e; *p; p++)
    g_assert_true (g_ascii_isalnum (*p) || *p == '-' || *p == '_');
  back = e2ee_b64url_decode (e, strlen (e), &len, NULL);
  g_assert_cmpmem (back, len, every, 256);
}

static void
test_roundtrip_lengths (void)
{
  guint8 buf[70];

  for (gsize n = 0; n <= sizeof buf; n++)
    {
      g_autofree char *enc = NULL;
      g_autofree guint8 *dec = NULL;
      gsize len = 0;

      for (gsize i = 0; i < n; i++)
        buf[i] = (guint8) (i * 37 + n);
      enc = e2ee_b64url_encode (buf, n);
      g_assert_cmpuint (strlen (enc), ==, (n * 4 + 2) / 3);
      g_assert_cmpuint (strlen (enc) % 4, !=, 1);
      dec = e2ee_b64url_decode (enc, strlen (enc), &len, NULL);
      g_assert_nonnull (dec);
      g_assert_cmpmem (dec, len, buf, n);
    }
}

static void
test_rejects (void)
{
  const char *bad[] = {
    "Zg==", "Zg=", "Zm8=",         /* padding */
    "Z", "Zm9vY", "Zm9vYmFyZ",     /* length 1 mod 4 */
    "Zh", "Zm9", "Zm9vYh",         /* trailing bits not zero */
    "Zm+v", "Zm/v",                /* standard alphabet */
    "Zm9v\n", " Zm9v", "Zm 9v",    /* whitespace */
    "Zm9v\xc3\xa9", "Zm.v", "Zm9v!",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      gsize len = 12345;
      guint8 *dec = e2ee_b64url_decode (bad[i], strlen (bad[i]), &len, &error);
      g_assert_null (dec);
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_JWK_BASE64);
    }
  /* The length is explicit: a NUL inside it is a bad character, and text
   * after it is not read. */
  {
    g_autoptr (GError) error = NULL;
    gsize len;
    g_autofree guint8 *a = e2ee_b64url_decode ("Zm9v\0AAA", 8, &len, &error);
    g_autofree guint8 *b = NULL;
    g_assert_null (a);
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_JWK_BASE64);
    b = e2ee_b64url_decode ("Zm9v!!!!", 4, &len, NULL);
    g_assert_cmpmem (b, len, "foo", 3);
  }
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/b64/rfc4648", test_rfc4648);
  g_test_add_func ("/b64/alphabet", test_alphabet);
  g_test_add_func ("/b64/roundtrip-lengths", test_roundtrip_lengths);
  g_test_add_func ("/b64/rejects", test_rejects);
  return g_test_run ();
}
