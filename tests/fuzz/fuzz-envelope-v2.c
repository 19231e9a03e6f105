/* libFuzzer target: the v2 envelope (src/e2ee-envelope-v2.h) as it
 * arrives from outside.  Every input is parsed; a parsed one must be
 * self-consistent, and every slot addressed to Bob is opened with a copy
 * of his live session: a failure must be an E2EE_ERROR that left the
 * session byte-identical; a success must give valid UTF-8 without NUL
 * and a new session object.
 *
 * The sessions are built from the test random stream (tests/e2ee-test-rng.h),
 * so they are the same in every run and the seed envelopes open.  With
 * E2EE_FUZZ_SEEDS_OUT=<folder> the set-up writes those seeds there (that is
 * how tests/fuzz/corpus/envelope-v2/ was made).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-envelope-v2.h"
#include "e2ee-error.h"
#include "e2ee-wipe.h"
#include "fuzz-common.h"
#include "../e2ee-test-util.h"
#include "../e2ee-test-rng.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define NOW G_GUINT64_CONSTANT (1800000000)
#define TAG_ALICE 0x100u
#define TAG_BOB 0x200u
#define TAG_CAROL 0x300u

static E2eeRatchet *bob;
static GBytes *bob_blob;

static E2eeRatchet *
start (E2eeKey *alice, E2eeKey *to, const char *account, guint32 tag)
{
  g_autoptr (E2eeKey) alice_pub = e2ee_key_public_copy (alice);
  g_autoptr (E2eeKey) to_pub = e2ee_key_public_copy (to);
  E2eeX3dhParty a = { alice, FUZZ_PROTOCOL ":" FUZZ_ALICE, TAG_ALICE, 0x02 };
  E2eeX3dhParty b = { to_pub, account, tag, 0x02 };
  E2eeX3dhResult r;
  E2eeEcSecret *ek = NULL;
  E2eeRatchet *s;

  if (!e2ee_x3dh_initiate (&a, &b, NULL, &ek, &r, NULL))
    abort ();
  s = e2ee_ratchet_new_initiator (&r, ek, alice_pub, 0x02, TAG_ALICE, tag);
  e2ee_x3dh_result_clear (&r);
  return s;
}

static void
write_seed (const char *dir, const char *name, GBytes *b)
{
  g_autofree char *path = NULL;

  if (dir == NULL)
    return;
  path = g_build_filename (dir, name, NULL);
  if (!g_file_set_contents (path, g_bytes_get_data (b, NULL), (gssize) g_bytes_get_size (b), NULL))
    abort ();
}

static GBytes *
seal (E2eeRatchet **s, guint n, const char *text, gsize pad)
{
  GBytes *e = e2ee_envelope_v2_seal (s, n, text, pad, NULL);

  if (e == NULL)
    abort ();
  return e;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *out = g_getenv ("E2EE_FUZZ_SEEDS_OUT");
  g_autoptr (E2eeKey) alice = NULL, bob_ik = NULL, carol = NULL;
  g_autoptr (E2eeKey) alice_pub = NULL;
  E2eeRatchet *as[2];
  GBytes *e;
  E2eeEnvelopeV2 env;
  E2eeV2Message m;
  E2eeX3dhResult r;
  char *text;

  fuzz_init_gcrypt ();
  alice = e2ee_test_identity ("fuzz envelope alice");
  bob_ik = e2ee_test_identity ("fuzz envelope bob");
  carol = e2ee_test_identity ("fuzz envelope carol");
  alice_pub = e2ee_key_public_copy (alice);
  e2ee_test_rng_seed ("fuzz envelope run");
  as[0] = start (alice, bob_ik, FUZZ_PROTOCOL ":" FUZZ_BOB, TAG_BOB);
  as[1] = start (alice, carol, FUZZ_PROTOCOL ":carol@example.test", TAG_CAROL);

  /* Bob's session from the first envelope's start slot. */
  e = seal (as, 2, "hello both", 0);
  if (!e2ee_envelope_v2_parse (g_bytes_get_data (e, NULL), g_bytes_get_size (e), &env, NULL)
      || !e2ee_v2_message_parse (env.slots[0].message, env.slots[0].message_len, &m, NULL))
    abort ();
  {
    E2eeX3dhParty a = { m.initiator, FUZZ_PROTOCOL ":" FUZZ_ALICE, m.sender_device, m.versions };
    E2eeX3dhParty b = { bob_ik, FUZZ_PROTOCOL ":" FUZZ_BOB, TAG_BOB, 0x02 };
    if (!e2ee_x3dh_respond (&b, &a, m.mode, NULL, 0, m.dh_key, &r, NULL))
      abort ();
    bob = e2ee_ratchet_new_responder (&r, m.dh_key, TAG_BOB, TAG_ALICE);
  }
  e2ee_v2_message_clear (&m);
  e2ee_x3dh_result_clear (&r);
  text = e2ee_envelope_v2_open (&env, 0, &bob, NOW, NULL, NULL);
  if (text == NULL)
    abort ();
  e2ee_string_free (text);
  write_seed (out, "multi-start.bin", e);
  g_bytes_unref (e);

  /* Seeds that open in Bob's session as it is now. */
  e = seal (as, 1, "single", 0);
  write_seed (out, "single.bin", e);
  g_bytes_unref (e);
  e = seal (as, 1, "single, padded \xc3\xbc", 16);
  write_seed (out, "single-padded.bin", e);
  g_bytes_unref (e);
  e = seal (as, 2, "multi, padded", 32);
  write_seed (out, "multi-padded.bin", e);
  g_bytes_unref (e);
  e = seal (as, 2, "", 0);
  write_seed (out, "multi-heartbeat.bin", e);
  g_bytes_unref (e);
  e2ee_ratchet_free (as[0]);
  e2ee_ratchet_free (as[1]);
  e2ee_test_rng_off ();
  bob_blob = e2ee_ratchet_serialize (bob);
  return 0;
}

static void
check_error (GError *error, int code)
{
  FUZZ_CHECK (error != NULL && error->domain == E2EE_ERROR);
  FUZZ_CHECK (code == 0 || error->code == code);
  g_error_free (error);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  E2eeEnvelopeV2 env;

  if (!e2ee_envelope_v2_parse (data, size, &env, &error))
    {
      check_error (error, E2EE_ERROR_V2_ENVELOPE);
      return 0;
    }
  FUZZ_CHECK (e2ee_envelope_v2_is_v2 (data, size));
  FUZZ_CHECK (env.multi ? env.n_slots >= 2 && env.n_slots <= E2EE_ENVELOPE_V2_MAX_SLOTS
                        : env.n_slots == 1);
  FUZZ_CHECK (!env.multi || env.body_len <= E2EE_V2_MAX_PLAINTEXT);
  for (guint i = 0; i < env.n_slots; i++)
    {
      const E2eeEnvelopeV2Slot *s = &env.slots[i];
      E2eeRatchet *copy, *was;
      char *text;

      FUZZ_CHECK (s->message >= data && s->message + s->message_len <= data + size);
      FUZZ_CHECK (s->sender_device == env.sender_device);
      if (s->recipient_device != TAG_BOB || s->sender_device != TAG_ALICE)
        continue;
      copy = e2ee_ratchet_deserialize (g_bytes_get_data (bob_blob, NULL),
                                       g_bytes_get_size (bob_blob), NULL);
      FUZZ_CHECK (copy != NULL);
      was = copy;
      text = e2ee_envelope_v2_open (&env, i, &copy, NOW, NULL, &error);
      if (text == NULL)
        {
          GBytes *after = e2ee_ratchet_serialize (copy);
          check_error (error, 0);
          error = NULL;
          FUZZ_CHECK (copy == was && g_bytes_equal (after, bob_blob));
          e2ee_bytes_free (after);
        }
      else
        {
          FUZZ_CHECK (copy != was);
          FUZZ_CHECK (g_utf8_validate (text, -1, NULL));
          e2ee_string_free (text);
        }
      e2ee_ratchet_free (copy);
    }
  return 0;
}
