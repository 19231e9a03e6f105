/* Fingerprints and safety numbers.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-fingerprint.h"
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

static E2eeKey *
gen (void)
{
  g_autoptr (GError) error = NULL;
  E2eeKey *k = e2ee_key_generate (&error);
  g_assert_no_error (error);
  return k;
}

static void
test_fingerprint_format (void)
{
  g_autoptr (E2eeKey) k = gen ();
  g_autofree char *fp = e2ee_fingerprint_hex (k);
  g_autofree char *compact = NULL;
  g_autofree char *tp = e2ee_test_hex (e2ee_key_get_thumbprint (k), 32);
  g_autofree char *upper = g_ascii_strup (tp, -1);
  g_auto (GStrv) groups = g_strsplit (fp, " ", -1);

  g_assert_cmpuint (strlen (fp), ==, 16 * 4 + 15);
  g_assert_cmpuint (g_strv_length (groups), ==, 16);
  for (guint i = 0; i < 16; i++)
    {
      g_assert_cmpuint (strlen (groups[i]), ==, 4);
      for (guint j = 0; j < 4; j++)
        g_assert_true (g_ascii_isdigit (groups[i][j])
                       || (groups[i][j] >= 'A' && groups[i][j] <= 'F'));
    }
  compact = g_strjoinv ("", groups);
  g_assert_cmpstr (compact, ==, upper);
}

/* The definition of PROTOCOL.md, computed here step by step. */
static void
digits_for (const E2eeKey *k, char out[31])
{
  const char *label = "purple-e2ee/v1 safety number";
  guint8 buf[28 + 32], d[64];

  memcpy (buf, label, 28);
  memcpy (buf + 28, e2ee_key_get_thumbprint (k), 32);
  gcry_md_hash_buffer (GCRY_MD_SHA512, d, buf, sizeof buf);
  for (guint c = 0; c < 6; c++)
    {
      guint64 v = 0;
      for (guint i = 0; i < 5; i++)
        v = v * 256 + d[5 * c + i];
      g_snprintf (out + 5 * c, 6, "%05" G_GUINT64_FORMAT, v % 100000);
    }
}

static void
test_safety_number (void)
{
  g_autoptr (E2eeKey) a = gen ();
  g_autoptr (E2eeKey) b = gen ();
  g_autoptr (E2eeKey) c = gen ();
  g_autoptr (E2eeKey) a_pub = e2ee_key_public_copy (a);
  g_autoptr (E2eeKey) a_v2 = e2ee_key_with_caps (a, 0x03);
  g_autofree char *ab = e2ee_safety_number (a, b);
  g_autofree char *ba = e2ee_safety_number (b, a);
  g_autofree char *ac = e2ee_safety_number (a, c);
  g_autofree char *pub_b = e2ee_safety_number (a_pub, b);
  g_autofree char *v2_b = e2ee_safety_number (a_v2, b);
  g_autofree char *expect = NULL;
  char da[31], db[31];
  g_auto (GStrv) groups = g_strsplit (ab, " ", -1);

  g_assert_cmpstr (ab, ==, ba);
  g_assert_cmpstr (ab, !=, ac);
  /* Depends on the public key only, not on caps or the private part. */
  g_assert_cmpstr (ab, ==, pub_b);
  g_assert_cmpstr (ab, ==, v2_b);
  g_assert_cmpuint (g_strv_length (groups), ==, 12);
  for (guint i = 0; i < 12; i++)
    {
      g_assert_cmpuint (strlen (groups[i]), ==, 5);
      for (guint j = 0; j < 5; j++)
        g_assert_true (g_ascii_isdigit (groups[i][j]));
    }
  digits_for (a, da);
  digits_for (b, db);
  {
    g_autofree char *all = strcmp (da, db) <= 0 ? g_strconcat (da, db, NULL)
                                                : g_strconcat (db, da, NULL);
    GString *s = g_string_new (NULL);
    for (guint i = 0; i < 60; i += 5)
      g_string_append_printf (s, "%s%.5s", i ? " " : "", all + i);
    expect = g_string_free (s, FALSE);
  }
  g_assert_cmpstr (ab, ==, expect);
  /* A key with itself: its 30 digits twice. */
  {
    g_autofree char *aa = e2ee_safety_number (a, a);
    g_auto (GStrv) g = g_strsplit (aa, " ", -1);
    g_autofree char *joined = g_strjoinv ("", g);
    g_assert_cmpuint (strlen (joined), ==, 60);
    g_assert_cmpmem (joined, 30, da, 30);
    g_assert_cmpmem (joined + 30, 30, da, 30);
  }
}

/* Every device's number against one own key holds that key's 30 digits:
 * an injected device's number matches the real one in half its groups, so
 * only a comparison of all 60 digits tells them apart (the reason the
 * session's verify-all never verifies undecided devices). */
static void
test_shared_half (void)
{
  g_autoptr (E2eeKey) own = gen ();
  g_autoptr (E2eeKey) real = gen ();
  g_autoptr (E2eeKey) injected = gen ();
  g_autofree char *n_real = e2ee_safety_number (own, real);
  g_autofree char *n_injected = e2ee_safety_number (own, injected);
  g_auto (GStrv) g_real = g_strsplit (n_real, " ", -1);
  g_auto (GStrv) g_injected = g_strsplit (n_injected, " ", -1);
  g_autofree char *flat_real = g_strjoinv ("", g_real);
  g_autofree char *flat_injected = g_strjoinv ("", g_injected);
  char d_own[31];

  digits_for (own, d_own);
  g_assert_cmpuint (strlen (flat_real), ==, 60);
  g_assert_nonnull (strstr (flat_real, d_own));
  g_assert_nonnull (strstr (flat_injected, d_own));
  /* The other half is the device's own, and differs. */
  g_assert_cmpstr (flat_real, !=, flat_injected);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/fingerprint/format", test_fingerprint_format);
  g_test_add_func ("/fingerprint/safety-number", test_safety_number);
  g_test_add_func ("/fingerprint/shared-half", test_shared_half);
  return g_test_run ();
}
