/* libFuzzer target: JWK import.  Every input is tried as a public, a
 * private and either kind of key; a key that imports must export to a JWK
 * that imports again to the same key.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-error.h"
#include "e2ee-jwk.h"
#include "e2ee-wipe.h"
#include "fuzz-common.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init_gcrypt ();
  return 0;
}

static void
round_trip (E2eeKey *key, E2eeKeyExpect expect)
{
  gboolean priv = e2ee_key_has_private (key);
  char *json = e2ee_key_to_jwk (key, priv, TRUE);
  E2eeKey *again = e2ee_key_from_jwk (json, -1, expect, NULL);

  FUZZ_CHECK (again != NULL);
  FUZZ_CHECK (e2ee_key_equal (key, again));
  FUZZ_CHECK (e2ee_key_get_caps (key) == e2ee_key_get_caps (again));
  FUZZ_CHECK (strcmp (e2ee_key_get_kid (key), e2ee_key_get_kid (again)) == 0);
  FUZZ_CHECK (e2ee_key_has_private (again) == priv);
  e2ee_key_unref (again);
  e2ee_string_free (json);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const E2eeKeyExpect expects[] = {
    E2EE_KEY_EXPECT_PUBLIC, E2EE_KEY_EXPECT_PRIVATE, E2EE_KEY_EXPECT_ANY,
  };

  for (guint i = 0; i < G_N_ELEMENTS (expects); i++)
    {
      GError *error = NULL;
      E2eeKey *key = e2ee_key_from_jwk ((const char *) data, (gssize) size, expects[i], &error);

      if (key == NULL)
        {
          FUZZ_CHECK (error != NULL && error->domain == E2EE_ERROR);
          g_error_free (error);
          continue;
        }
      FUZZ_CHECK (error == NULL);
      FUZZ_CHECK ((expects[i] != E2EE_KEY_EXPECT_PRIVATE) || e2ee_key_has_private (key));
      FUZZ_CHECK ((expects[i] != E2EE_KEY_EXPECT_PUBLIC) || !e2ee_key_has_private (key));
      round_trip (key, expects[i]);
      e2ee_key_unref (key);
    }
  return 0;
}
