/* libFuzzer target: the protocol-v2 attachments of published keys.  The
 * first byte picks the parser (compact key set, JWK Set, one JWK); an
 * accepted set must go through the other forms and come back with the
 * same keys, caps and attachments, and every attachment must obey the
 * publication rules (both or neither, v2 in the caps, record length).
 * Seeds are built in (the keys and record of tests/vectors/v2-prekey.json)
 * and run once at start, so the replay test covers the accepting paths.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-jwk.h"
#include "e2ee-keyset.h"
#include "e2ee-offer.h"
#include "fuzz-common.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Public test data from tests/vectors/v2-prekey.json. */
#define IK_X "kurF0yAyGFbxFcJ8VSv8bW2B1-wiTKNDj1ss04OLFv4"
#define IK_Y "gAfYpFNXQtT4EDT7BAUXxSaMUENLYoggje92u1VwadI"
#define SIG_X "hWE4XSZkSq-oCv7dwoVRwKUIAqo9HB9hJ-IDsHJXGn0"
#define SIG_Y "fNAN3KyOeFpx9vMyLJWWPg9ngzeSFmTfLP1T6zPMP5Q"
#define RECORD_HEX \
  "50453245207632207072656b657901d2763eef5caf5af79c1b5130cd6620baa311b376c070947670" \
  "ae685357d216761234abcd0000000704ef4a39370df714e321ea47d998206d5f61160ddb2f4841b7" \
  "f25eada8d979cae284137e411626aac8d7383de6e0a22ad8c9dc0806fc0ee6ed09daaf254861937b" \
  "000000006b5c47000201025a84f84e2dd93fe652b4c306f5d4827a5fa7196f65639383473e5f7526" \
  "a8f3858d9153a7f23dfe870802ae892342899fca84cf4be958f7f22025ed00c3e5ac77"

enum { MODE_COMPACT, MODE_SET, MODE_JWK, MODES };

static void
check_key (const E2eeKey *k)
{
  const E2eeKey *sp = e2ee_key_get_sign_pub (k);
  GBytes *rec = e2ee_key_get_prekey_record (k);

  FUZZ_CHECK (!e2ee_key_has_private (k));
  FUZZ_CHECK ((sp == NULL) == (rec == NULL));
  if (sp == NULL)
    return;
  FUZZ_CHECK (e2ee_key_get_caps (k) & E2EE_CAPS_V2);
  FUZZ_CHECK (!e2ee_key_equal (sp, k));
  FUZZ_CHECK (g_bytes_get_size (rec) >= E2EE_V2_RECORD_MIN
              && g_bytes_get_size (rec) <= E2EE_V2_RECORD_MAX);
}

/* Same points and attachments; caps equal, or (compact version 2 only)
 * equal but for the v2 bit of a key without attachments. */
static void
check_same (GPtrArray *a, GPtrArray *b, gboolean v2_bit_may_go)
{
  FUZZ_CHECK (b != NULL && a->len == b->len);
  for (guint i = 0; i < a->len; i++)
    {
      const E2eeKey *ka = a->pdata[i], *kb = b->pdata[i];
      const E2eeKey *sa = e2ee_key_get_sign_pub (ka), *sb = e2ee_key_get_sign_pub (kb);
      guint8 ca = e2ee_key_get_caps (ka), cb = e2ee_key_get_caps (kb);

      check_key (kb);
      FUZZ_CHECK (e2ee_key_equal (ka, kb));
      FUZZ_CHECK (ca == cb || (v2_bit_may_go && sa == NULL && (ca & ~E2EE_CAPS_V2) == cb));
      FUZZ_CHECK ((sa == NULL) == (sb == NULL));
      if (sa != NULL)
        {
          FUZZ_CHECK (e2ee_key_equal (sa, sb));
          FUZZ_CHECK (g_bytes_equal (e2ee_key_get_prekey_record (ka),
                                     e2ee_key_get_prekey_record (kb)));
        }
    }
}

static gboolean
any_v2 (GPtrArray *keys)
{
  for (guint i = 0; i < keys->len; i++)
    if (e2ee_key_get_sign_pub (keys->pdata[i]) != NULL)
      return TRUE;
  return FALSE;
}

/* An accepted set through the other forms and back. */
static void
check_forms (GPtrArray *keys)
{
  char *json = e2ee_keyset_to_json (keys);
  GPtrArray *from_json = e2ee_keyset_parse (json, -1, NULL);
  char *compact;
  GPtrArray *from_compact;

  check_same (keys, from_json, FALSE);
  if (e2ee_keyset_usable (keys))
    {
      compact = e2ee_offer_compact_encode (keys);
      from_compact = e2ee_offer_compact_decode (compact, strlen (compact), NULL);
      check_same (keys, from_compact, any_v2 (keys));
      g_ptr_array_unref (from_compact);
      g_free (compact);
    }
  g_ptr_array_unref (from_json);
  g_free (json);
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
  GPtrArray *keys = NULL;
  const char *text = (const char *) data + 1;
  gsize len = size - 1;

  if (size == 0)
    return 0;
  switch (data[0] % MODES)
    {
    case MODE_COMPACT:
      keys = e2ee_offer_compact_decode (text, len, &error);
      break;
    case MODE_SET:
      keys = e2ee_keyset_parse (text, (gssize) len, &error);
      break;
    default:
      {
        E2eeKey *k = e2ee_key_from_jwk (text, (gssize) len, E2EE_KEY_EXPECT_PUBLIC, &error);
        if (k != NULL)
          {
            char *jwk = e2ee_key_to_jwk (k, FALSE, TRUE);
            E2eeKey *again = e2ee_key_from_jwk (jwk, -1, E2EE_KEY_EXPECT_PUBLIC, NULL);

            keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
            g_ptr_array_add (keys, k);
            {
              GPtrArray *one = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
              FUZZ_CHECK (again != NULL);
              g_ptr_array_add (one, again);
              check_same (keys, one, FALSE);
              g_ptr_array_unref (one);
            }
            g_free (jwk);
          }
      }
    }
  if (keys == NULL)
    {
      check_error (error);
      return 0;
    }
  for (guint i = 0; i < keys->len; i++)
    check_key (keys->pdata[i]);
  check_forms (keys);
  g_ptr_array_unref (keys);
  return 0;
}

static void
run_seed (guint8 mode, const char *text)
{
  gsize n = strlen (text);
  guint8 *buf = g_malloc (n + 1);

  buf[0] = mode;
  memcpy (buf + 1, text, n);
  LLVMFuzzerTestOneInput (buf, n + 1);
  g_free (buf);
}

/* The seed set: the vector's identity key with its attachments, then the
 * same through each parser.  Each must be accepted (checked here). */
static void
run_seeds (void)
{
  gsize rlen = strlen (RECORD_HEX) / 2;
  guint8 *rec = g_malloc (rlen);
  char *pk, *jwk, *set, *compact;
  GPtrArray *keys;

  for (gsize i = 0; i < rlen; i++)
    rec[i] = (guint8) (g_ascii_xdigit_value (RECORD_HEX[2 * i]) << 4
                       | g_ascii_xdigit_value (RECORD_HEX[2 * i + 1]));
  pk = e2ee_b64url_encode (rec, rlen);
  {
    guint8 xy[64];
    gsize l1 = 0, l2 = 0;
    guint8 *a = e2ee_b64url_decode (SIG_X, strlen (SIG_X), &l1, NULL);
    guint8 *b = e2ee_b64url_decode (SIG_Y, strlen (SIG_Y), &l2, NULL);
    char *sig;

    FUZZ_CHECK (a != NULL && b != NULL && l1 == 32 && l2 == 32);
    memcpy (xy, a, 32);
    memcpy (xy + 32, b, 32);
    sig = e2ee_b64url_encode (xy, 64);
    jwk = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" IK_X "\",\"y\":\"" IK_Y
                           "\",\"e2ee_v\":[1,2],\"e2ee_sig\":\"%s\",\"e2ee_pk\":\"%s\"}", sig, pk);
    g_free (sig);
    g_free (a);
    g_free (b);
  }
  /* The set entry's kid comes from a parse of the key itself. */
  {
    E2eeKey *k = e2ee_key_from_jwk (jwk, -1, E2EE_KEY_EXPECT_PUBLIC, NULL);

    FUZZ_CHECK (k != NULL && e2ee_key_get_sign_pub (k) != NULL);
    set = g_strdup_printf ("{\"keys\":[%.*s,\"kid\":\"%s\"}]}", (int) strlen (jwk) - 1, jwk,
                           e2ee_key_get_kid (k));
    keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
    g_ptr_array_add (keys, k);
    compact = e2ee_offer_compact_encode (keys);
    g_ptr_array_unref (keys);
  }
  FUZZ_CHECK ((keys = e2ee_keyset_parse (set, -1, NULL)) != NULL);
  g_ptr_array_unref (keys);
  FUZZ_CHECK ((keys = e2ee_offer_compact_decode (compact, strlen (compact), NULL)) != NULL);
  g_ptr_array_unref (keys);
  run_seed (MODE_JWK, jwk);
  run_seed (MODE_SET, set);
  run_seed (MODE_COMPACT, compact);
  g_free (compact);
  g_free (set);
  g_free (jwk);
  g_free (pk);
  g_free (rec);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init_gcrypt ();
  run_seeds ();
  return 0;
}
