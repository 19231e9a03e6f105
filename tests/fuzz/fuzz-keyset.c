/* libFuzzer target: JWK Set parsing; an accepted set must serialise to a
 * set that parses to the same keys in the same order.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-error.h"
#include "e2ee-jwk.h"
#include "e2ee-keyset.h"
#include "fuzz-common.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init_gcrypt ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  GPtrArray *keys = e2ee_keyset_parse ((const char *) data, (gssize) size, &error);
  GPtrArray *again;
  char *json;

  if (keys == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == E2EE_ERROR);
      g_error_free (error);
      return 0;
    }
  FUZZ_CHECK (keys->len >= 1 && keys->len <= E2EE_KEYSET_MAX);
  json = e2ee_keyset_to_json (keys);
  again = e2ee_keyset_parse (json, -1, NULL);
  FUZZ_CHECK (again != NULL && again->len == keys->len);
  for (guint i = 0; i < keys->len; i++)
    {
      FUZZ_CHECK (!e2ee_key_has_private (keys->pdata[i]));
      FUZZ_CHECK (e2ee_key_equal (keys->pdata[i], again->pdata[i]));
      FUZZ_CHECK (e2ee_key_get_caps (keys->pdata[i]) == e2ee_key_get_caps (again->pdata[i]));
    }
  g_ptr_array_unref (again);
  g_free (json);
  g_ptr_array_unref (keys);
  return 0;
}
