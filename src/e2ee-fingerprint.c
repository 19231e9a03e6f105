/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-fingerprint.h"

#define SAFETY_LABEL "purple-e2ee/v1 safety number"
#define DIGITS_PER_KEY 30

char *
e2ee_fingerprint_hex (const E2eeKey *key)
{
  const guint8 *t = e2ee_key_get_thumbprint (key);
  GString *s = g_string_sized_new (80);

  for (guint i = 0; i < E2EE_THUMBPRINT_LEN; i += 2)
    g_string_append_printf (s, "%s%02X%02X", i ? " " : "", t[i], t[i + 1]);
  return g_string_free (s, FALSE);
}

/* 30 digits for one key: SHA-512(label || thumbprint), six 5-byte chunks,
 * each reduced mod 100000 (the bias of 2^40 mod 10^5 is below 2^-23). */
static gboolean
key_digits (const E2eeKey *key, char out[DIGITS_PER_KEY + 1])
{
  guint8 digest[64];
  gcry_md_hd_t md = NULL;

  if (gcry_md_open (&md, GCRY_MD_SHA512, 0) != 0)
    return FALSE;
  gcry_md_write (md, SAFETY_LABEL, strlen (SAFETY_LABEL));
  gcry_md_write (md, e2ee_key_get_thumbprint (key), E2EE_THUMBPRINT_LEN);
  memcpy (digest, gcry_md_read (md, GCRY_MD_SHA512), sizeof digest);
  gcry_md_close (md);
  for (guint chunk = 0; chunk < 6; chunk++)
    {
      guint64 v = 0;
      for (guint i = 0; i < 5; i++)
        v = v << 8 | digest[chunk * 5 + i];
      g_snprintf (out + chunk * 5, 6, "%05u", (guint) (v % 100000));
    }
  return TRUE;
}

char *
e2ee_safety_number (const E2eeKey *a, const E2eeKey *b)
{
  char da[DIGITS_PER_KEY + 1], db[DIGITS_PER_KEY + 1];
  char all[2 * DIGITS_PER_KEY + 1];
  GString *s;

  if (!key_digits (a, da) || !key_digits (b, db))
    return NULL;
  s = g_string_sized_new (72);
  /* Sorted, so both sides compute the same number. */
  if (strcmp (da, db) <= 0)
    g_snprintf (all, sizeof all, "%s%s", da, db);
  else
    g_snprintf (all, sizeof all, "%s%s", db, da);
  for (guint i = 0; i < 2 * DIGITS_PER_KEY; i += 5)
    g_string_append_printf (s, "%s%.5s", i ? " " : "", all + i);
  return g_string_free (s, FALSE);
}
