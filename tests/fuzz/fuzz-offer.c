/* libFuzzer target: key publication parsers (compact key set, profile
 * block, status tag, in-band offer/answer) and the text-editing helpers
 * that replace our block in a user's own profile or status.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-error.h"
#include "e2ee-offer.h"
#include "fuzz-common.h"

static GPtrArray *fixed_keys;

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  E2eeKey *alice, *bob;

  fuzz_init_gcrypt ();
  alice = fuzz_fixed_key (FUZZ_ALICE_JWK);
  bob = fuzz_fixed_key (FUZZ_BOB_JWK);
  fixed_keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  g_ptr_array_add (fixed_keys, e2ee_key_public_copy (alice));
  g_ptr_array_add (fixed_keys, e2ee_key_public_copy (bob));
  e2ee_key_unref (alice);
  e2ee_key_unref (bob);
  return 0;
}

/* Every parser: NULL with an E2EE_ERROR, or 1..E2EE_KEYSET_MAX distinct
 * public keys. */
static void
check_result (GPtrArray *keys, GError *error)
{
  if (keys == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == E2EE_ERROR);
      g_error_free (error);
      return;
    }
  FUZZ_CHECK (error == NULL);
  FUZZ_CHECK (keys->len >= 1 && keys->len <= E2EE_KEYSET_MAX);
  for (guint i = 0; i < keys->len; i++)
    {
      FUZZ_CHECK (!e2ee_key_has_private (keys->pdata[i]));
      FUZZ_CHECK (e2ee_key_get_caps (keys->pdata[i]) & E2EE_CAPS_V1);
      for (guint j = i + 1; j < keys->len; j++)
        FUZZ_CHECK (!e2ee_key_equal (keys->pdata[i], keys->pdata[j]));
    }
  g_ptr_array_unref (keys);
}

static gboolean
has_marker (const char *text)
{
  return strstr (text, "-----") || strstr (text, "[e2ee") || strstr (text, "E2EE");
}

static void
check_replace (const char *text)
{
  char *with, *without, *parsed_text;
  GPtrArray *parsed;
  GError *error = NULL;

  with = e2ee_offer_status_replace (text, fixed_keys);
  parsed = e2ee_offer_status_parse (with, &error);
  if (!has_marker (text))
    {
      /* The tag we put in is found again, and removing it restores the
       * user's text byte for byte. */
      FUZZ_CHECK (parsed != NULL && parsed->len == fixed_keys->len);
      without = e2ee_offer_status_replace (with, NULL);
      FUZZ_CHECK (strcmp (without, text) == 0);
      g_free (without);
    }
  g_clear_pointer (&parsed, g_ptr_array_unref);
  g_clear_error (&error);
  g_free (with);

  with = e2ee_offer_profile_replace (text, fixed_keys);
  parsed = e2ee_offer_profile_parse (with, &error);
  if (!has_marker (text))
    {
      FUZZ_CHECK (parsed != NULL && parsed->len == fixed_keys->len);
      without = e2ee_offer_profile_replace (with, NULL);
      FUZZ_CHECK (strcmp (without, text) == 0);
      g_free (without);
    }
  g_clear_pointer (&parsed, g_ptr_array_unref);
  g_clear_error (&error);
  g_free (with);

  parsed_text = e2ee_offer_profile_replace (text, NULL);
  g_free (parsed_text);
  parsed_text = e2ee_offer_status_replace (text, NULL);
  g_free (parsed_text);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_strndup (data, size);
  GError *error = NULL;
  E2eeOfferKind kind = (E2eeOfferKind) 42;
  GPtrArray *keys;

  keys = e2ee_offer_compact_decode ((const char *) data, size, &error);
  check_result (keys, error);
  error = NULL;
  keys = e2ee_offer_profile_parse (text, &error);
  check_result (keys, error);
  error = NULL;
  keys = e2ee_offer_status_parse (text, &error);
  check_result (keys, error);
  error = NULL;
  keys = e2ee_offer_inband_parse (text, &kind, &error);
  if (keys != NULL)
    FUZZ_CHECK (kind == E2EE_OFFER_KIND_OFFER || kind == E2EE_OFFER_KIND_ANSWER);
  else
    FUZZ_CHECK (kind == (E2eeOfferKind) 42);
  check_result (keys, error);
  (void) e2ee_offer_inband_detect (text);
  check_replace (text);
  g_free (text);
  return 0;
}
