/* libFuzzer target: armor decoding, envelope parsing and opening.
 * The input is tried as raw envelope bytes and as armored text; a parsed
 * envelope is opened for every recipient slot with Bob's key from Alice,
 * so inputs made from real envelopes reach the authenticated paths.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-envelope.h"
#include "e2ee-kdf.h"
#include "e2ee-wipe.h"
#include "fuzz-common.h"

static guint8 k_recv[E2EE_KEY_LEN];

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  E2eeKey *alice, *bob;
  guint8 k_send[E2EE_KEY_LEN];

  fuzz_init_gcrypt ();
  alice = fuzz_fixed_key (FUZZ_ALICE_JWK);
  bob = fuzz_fixed_key (FUZZ_BOB_JWK);
  if (!e2ee_kdf_pair_keys (bob, FUZZ_PROTOCOL ":" FUZZ_BOB, alice, FUZZ_PROTOCOL ":" FUZZ_ALICE,
                           E2EE_CAPS_V1, E2EE_CAPS_V1, k_send, k_recv, NULL))
    abort ();
  e2ee_key_unref (alice);
  e2ee_key_unref (bob);
  return 0;
}

static void
try_envelope (const guint8 *bytes, gsize len)
{
  GError *error = NULL;
  E2eeEnvelope *env = e2ee_envelope_parse (bytes, len, &error);

  if (env == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == E2EE_ERROR);
      g_error_free (error);
      return;
    }
  FUZZ_CHECK (error == NULL);
  (void) e2ee_envelope_get_counter (env);
  (void) e2ee_envelope_get_sender_id (env);
  for (guint i = 0; i < e2ee_envelope_get_n_recipients (env); i++)
    {
      guint8 *plain = NULL;
      gsize plen = 0;

      FUZZ_CHECK (e2ee_envelope_find_recipient (env, e2ee_envelope_get_recipient_id (env, i))
                  == (gint) i);
      if (e2ee_envelope_open (env, i, k_recv, &plain, &plen, &error))
        {
          FUZZ_CHECK (plain != NULL && plain[plen] == '\0');
          e2ee_secret_free (plain, plen + 1);
        }
      else
        {
          /* A failed open returns nothing at all. */
          FUZZ_CHECK (plain == NULL && plen == 0 && error != NULL);
          g_clear_error (&error);
        }
    }
  e2ee_envelope_free (env);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_strndup (data, size);
  GError *error = NULL;
  GBytes *raw;

  try_envelope (data, size);

  raw = e2ee_armor_decode (text, &error);
  if (raw != NULL)
    {
      gsize len;
      const guint8 *bytes = g_bytes_get_data (raw, &len);
      char *again = e2ee_armor_encode (raw);

      /* One encoding per byte string: decode then encode gives back the
       * input without its surrounding white space. */
      FUZZ_CHECK (strstr (text, again) != NULL);
      FUZZ_CHECK (e2ee_armor_detect (text));
      g_free (again);
      try_envelope (bytes, len);
      g_bytes_unref (raw);
    }
  else
    g_clear_error (&error);
  g_free (text);
  return 0;
}
