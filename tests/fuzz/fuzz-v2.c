/* libFuzzer target: every protocol v2 structure that arrives from outside.
 * The first input byte picks the parser, the rest is its input:
 *   0  a message, opened by a live session: a failure must leave the
 *      session's state blob byte-identical;
 *   1  a session state blob: one that loads must serialise to the same bytes;
 *   2  a prekey record, verified against the keys of tests/vectors/v2-prekey.json:
 *      one that verifies must carry version 2 and an expiry after "now";
 *   3  a signing-key JWK: one that parses must export and parse back equal.
 * Failures must be E2EE_ERROR errors.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-error.h"
#include "e2ee-ratchet.h"
#include "e2ee-wipe.h"
#include "fuzz-common.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define PREKEY_NOW G_GUINT64_CONSTANT (1800000000)
#define SIGNING_JWK \
  "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"hWE4XSZkSq-oCv7dwoVRwKUIAqo9HB9hJ-IDsHJXGn0\"," \
  "\"y\":\"fNAN3KyOeFpx9vMyLJWWPg9ngzeSFmTfLP1T6zPMP5Q\"}"
#define PREKEY_IDENTITY_JWK \
  "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"kurF0yAyGFbxFcJ8VSv8bW2B1-wiTKNDj1ss04OLFv4\"," \
  "\"y\":\"gAfYpFNXQtT4EDT7BAUXxSaMUENLYoggje92u1VwadI\"}"
#define PREKEY_DEVICE 0x1234abcdu

static E2eeRatchet *bob;
static E2eeKey *signing, *prekey_identity;

/* A session of the vector's device tags (0x100 -> 0x200), so that seed
 * messages from tests/vectors/v2-conversation.json get past the tags. */
static void
make_session (void)
{
  g_autoptr (E2eeKey) alice = fuzz_fixed_key (FUZZ_ALICE_JWK);
  g_autoptr (E2eeKey) bob_ik = fuzz_fixed_key (FUZZ_BOB_JWK);
  g_autoptr (E2eeKey) alice_pub = e2ee_key_public_copy (alice);
  g_autoptr (E2eeKey) bob_pub = e2ee_key_public_copy (bob_ik);
  E2eeX3dhParty a = { alice, FUZZ_PROTOCOL ":" FUZZ_ALICE, 0x100, 0x02 };
  E2eeX3dhParty b_seen = { bob_pub, FUZZ_PROTOCOL ":" FUZZ_BOB, 0x200, 0x02 };
  E2eeX3dhParty b = { bob_ik, FUZZ_PROTOCOL ":" FUZZ_BOB, 0x200, 0x02 };
  E2eeX3dhParty a_seen = { alice_pub, FUZZ_PROTOCOL ":" FUZZ_ALICE, 0x100, 0x02 };
  E2eeX3dhResult ra, rb;
  E2eeEcSecret *ek = NULL;
  E2eeRatchet *alice_s;
  GBytes *first, *pt;

  if (!e2ee_x3dh_initiate (&a, &b_seen, NULL, &ek, &ra, NULL)
      || !e2ee_x3dh_respond (&b, &a_seen, E2EE_X3DH_MODE_NO_PREKEY, NULL, 0,
                             e2ee_ec_secret_get_public (ek), &rb, NULL))
    abort ();
  bob = e2ee_ratchet_new_responder (&rb, e2ee_ec_secret_get_public (ek), 0x200, 0x100);
  alice_s = e2ee_ratchet_new_initiator (&ra, ek, alice_pub, 0x02, 0x100, 0x200);
  first = e2ee_ratchet_seal (alice_s, (const guint8 *) "x", 1, NULL);
  pt = first ? e2ee_ratchet_open (bob, g_bytes_get_data (first, NULL), g_bytes_get_size (first),
                                  PREKEY_NOW, NULL, NULL) : NULL;
  if (pt == NULL)
    abort ();
  e2ee_bytes_free (pt);
  g_bytes_unref (first);
  e2ee_ratchet_free (alice_s);
  e2ee_x3dh_result_clear (&ra);
  e2ee_x3dh_result_clear (&rb);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init_gcrypt ();
  make_session ();
  signing = e2ee_key_from_jwk (SIGNING_JWK, -1, E2EE_KEY_EXPECT_PUBLIC, NULL);
  prekey_identity = e2ee_key_from_jwk (PREKEY_IDENTITY_JWK, -1, E2EE_KEY_EXPECT_PUBLIC, NULL);
  if (signing == NULL || prekey_identity == NULL)
    abort ();
  return 0;
}

static void
check_error (GError *error)
{
  FUZZ_CHECK (error != NULL && error->domain == E2EE_ERROR);
  g_error_free (error);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;

  if (size < 1)
    return 0;
  switch (data[0])
    {
    case 0:
      {
        GBytes *before = e2ee_ratchet_serialize (bob);
        GBytes *pt = e2ee_ratchet_open (bob, data + 1, size - 1, PREKEY_NOW, NULL, &error);
        if (pt == NULL)
          {
            GBytes *after = e2ee_ratchet_serialize (bob);
            check_error (error);
            FUZZ_CHECK (g_bytes_equal (before, after));
            e2ee_bytes_free (after);
          }
        e2ee_bytes_free (pt);
        e2ee_bytes_free (before);
        break;
      }
    case 1:
      {
        E2eeRatchet *s = e2ee_ratchet_deserialize (data + 1, size - 1, &error);
        if (s == NULL)
          check_error (error);
        else
          {
            GBytes *again = e2ee_ratchet_serialize (s);
            FUZZ_CHECK (g_bytes_get_size (again) == size - 1
                        && memcmp (g_bytes_get_data (again, NULL), data + 1, size - 1) == 0);
            e2ee_bytes_free (again);
            e2ee_ratchet_free (s);
          }
        break;
      }
    case 2:
      {
        E2eePrekey *pk = e2ee_prekey_verify (data + 1, size - 1, signing, prekey_identity,
                                             PREKEY_DEVICE, PREKEY_NOW, &error);
        if (pk == NULL)
          check_error (error);
        else
          {
            FUZZ_CHECK ((pk->versions & E2EE_V2_VERSIONS) && pk->expires > PREKEY_NOW);
            FUZZ_CHECK (pk->device == PREKEY_DEVICE);
            e2ee_prekey_free (pk);
          }
        break;
      }
    case 3:
      {
        E2eeKey *key = e2ee_sign_public_from_jwk ((const char *) data + 1, (gssize) size - 1,
                                                  &error);
        if (key == NULL)
          check_error (error);
        else
          {
            char *json = e2ee_sign_public_to_jwk (key);
            E2eeKey *again = e2ee_sign_public_from_jwk (json, -1, NULL);
            FUZZ_CHECK (again != NULL && e2ee_key_equal (key, again));
            e2ee_key_unref (again);
            g_free (json);
            e2ee_key_unref (key);
          }
        break;
      }
    default:
      break;
    }
  return 0;
}
