/* Signed prekeys of protocol v2: the record layout, strict parsing (each
 * fault its own code, in the documented order), signature, identity and
 * device binding, expiry and rotation rules, and a fixed-bytes vector.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-prekey.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"
#include "e2ee-test-rng.h"

const char *__lsan_default_suppressions (void);
__attribute__ ((weak)) const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

#define T0 G_GUINT64_CONSTANT (1800000000)
#define DEV 0x1234abcdu

typedef struct {
  E2eeKey *identity;
  E2eeSignKey *sign;
  E2eeEcSecret *spk;
  GBytes *record;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->identity = e2ee_test_identity ("prekey identity");
  e2ee_test_rng_seed ("prekey signing key");
  f->sign = e2ee_sign_key_generate (&error);
  g_assert_no_error (error);
  e2ee_test_rng_seed ("prekey spk");
  g_assert_true (e2ee_prekey_create (f->sign, f->identity, DEV, 7, T0, 0x03, &f->spk,
                                     &f->record, &error));
  g_assert_no_error (error);
  e2ee_test_rng_off ();
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  e2ee_key_unref (f->identity);
  e2ee_sign_key_free (f->sign);
  e2ee_ec_secret_free (f->spk);
  g_bytes_unref (f->record);
}

static E2eePrekey *
verify (Fixture *f, const guint8 *rec, gsize len, guint64 now, GError **error)
{
  return e2ee_prekey_verify (rec, len, e2ee_sign_key_get_public (f->sign), f->identity,
                             DEV, now, error);
}

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  gsize len;
  const guint8 *rec = g_bytes_get_data (f->record, &len);
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eePrekey) pk = verify (f, rec, len, T0, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (len, ==, E2EE_PREKEY_STATEMENT_MIN + 1 + E2EE_SIGNATURE_LEN);
  g_assert_cmpuint (pk->id, ==, 7);
  g_assert_cmpuint (pk->device, ==, DEV);
  g_assert_cmpuint (pk->versions, ==, 0x03);
  g_assert_cmpuint (pk->expires, ==, T0 + E2EE_PREKEY_LIFETIME);
  g_assert_true (e2ee_key_equal (pk->spk, e2ee_ec_secret_get_public (f->spk)));
  g_assert_cmpmem (pk->identity_tp, 32, e2ee_key_get_thumbprint (f->identity), 32);
  /* layout: label, format, thumbprint, device, id */
  g_assert_cmpmem (rec, 14, "PE2E v2 prekey", 14);
  g_assert_cmpuint (rec[14], ==, 1);
  g_assert_cmpmem (rec + 15, 32, e2ee_key_get_thumbprint (f->identity), 32);
  g_assert_cmpuint (rec[47], ==, 0x12);
  g_assert_cmpuint (rec[54], ==, 7);
  g_assert_cmpuint (rec[55], ==, 0x04);
}

static void
expect (Fixture *f, const guint8 *rec, gsize len, guint64 now, int code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eePrekey) pk = verify (f, rec, len, now, &error);

  g_assert_null (pk);
  g_assert_error (error, E2EE_ERROR, code);
}

/* Re-signs a modified statement, so that only the modified field is wrong. */
static GBytes *
resign (Fixture *f, const guint8 *stmt, gsize stmt_len)
{
  guint8 *buf = g_malloc (stmt_len + 64);

  memcpy (buf, stmt, stmt_len);
  g_assert_true (e2ee_sign (f->sign, buf, stmt_len, buf + stmt_len, NULL));
  return g_bytes_new_take (buf, stmt_len + 64);
}

static void
test_strict (Fixture *f, gconstpointer data)
{
  gsize len;
  const guint8 *rec = g_bytes_get_data (f->record, &len);
  gsize stmt = len - 64;
  g_autofree guint8 *m = g_memdup2 (rec, len);
  g_autofree guint8 *longer = g_malloc (len + 1);

  /* lengths */
  expect (f, rec, len - 1, T0, E2EE_ERROR_PREKEY_FORMAT);
  memcpy (longer, rec, len);
  longer[len] = 0;
  expect (f, longer, len + 1, T0, E2EE_ERROR_PREKEY_FORMAT);
  expect (f, rec, 10, T0, E2EE_ERROR_PREKEY_FORMAT);
  /* label and format byte */
  m[0] ^= 0x20;
  expect (f, m, len, T0, E2EE_ERROR_PREKEY_FORMAT);
  memcpy (m, rec, len);
  m[14] = 2;
  expect (f, m, len, T0, E2EE_ERROR_PREKEY_FORMAT);
  /* version list: count 0, count 9, not increasing, out of range, no v2 */
  memcpy (m, rec, len);
  m[stmt - 3] = 0;
  expect (f, m, len, T0, E2EE_ERROR_PREKEY_VERSION);
  m[stmt - 3] = 9;
  expect (f, m, len, T0, E2EE_ERROR_PREKEY_VERSION);
  {
    g_autoptr (GBytes) b = NULL;
    guint8 s[256];
    memcpy (s, rec, stmt);
    s[stmt - 1] = 1; /* "1, 1" */
    b = resign (f, s, stmt);
    expect (f, g_bytes_get_data (b, NULL), g_bytes_get_size (b), T0, E2EE_ERROR_PREKEY_VERSION);
    g_clear_pointer (&b, g_bytes_unref);
    s[stmt - 2] = 1;
    s[stmt - 1] = 9; /* "1, 9" */
    b = resign (f, s, stmt);
    expect (f, g_bytes_get_data (b, NULL), g_bytes_get_size (b), T0, E2EE_ERROR_PREKEY_VERSION);
    g_clear_pointer (&b, g_bytes_unref);
    s[stmt - 3] = 1;
    s[stmt - 2] = 1; /* only "1" */
    b = resign (f, s, stmt - 1);
    expect (f, g_bytes_get_data (b, NULL), g_bytes_get_size (b), T0, E2EE_ERROR_PREKEY_VERSION);
  }
  /* prekey point off the curve (re-signed: the point check comes first) */
  {
    g_autoptr (GBytes) b = NULL;
    guint8 s[256];
    memcpy (s, rec, stmt);
    s[55 + 64] ^= 0x01;
    b = resign (f, s, stmt);
    expect (f, g_bytes_get_data (b, NULL), g_bytes_get_size (b), T0, E2EE_ERROR_PREKEY_FORMAT);
    memcpy (s, rec, stmt);
    s[55] = 0x02; /* compressed form */
    g_clear_pointer (&b, g_bytes_unref);
    b = resign (f, s, stmt);
    expect (f, g_bytes_get_data (b, NULL), g_bytes_get_size (b), T0, E2EE_ERROR_PREKEY_FORMAT);
  }
  /* any bit of the statement or the signature */
  for (gsize i = 15; i < len; i += 7)
    {
      memcpy (m, rec, len);
      m[i] ^= 0x80;
      if (i == 55 || (i > 55 && i < 55 + 65))
        continue; /* point bits are FORMAT (above) or signature faults */
      if (i == stmt - 3 || (i >= stmt - 2 && i < stmt))
        continue; /* version bytes */
      expect (f, m, len, T0, E2EE_ERROR_SIGNATURE);
    }
}

static void
test_binding (Fixture *f, gconstpointer data)
{
  gsize len;
  const guint8 *rec = g_bytes_get_data (f->record, &len);
  g_autoptr (E2eeKey) other = e2ee_test_identity ("another identity");
  g_autoptr (E2eeSignKey) other_sign = e2ee_sign_key_generate (NULL);
  g_autoptr (GError) error = NULL;
  E2eePrekey *pk;

  /* Signed by someone else's signing key. */
  pk = e2ee_prekey_verify (rec, len, e2ee_sign_key_get_public (other_sign), f->identity, DEV,
                           T0, &error);
  g_assert_null (pk);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_SIGNATURE);
  g_clear_error (&error);
  /* Re-published under another identity or another device tag. */
  pk = e2ee_prekey_verify (rec, len, e2ee_sign_key_get_public (f->sign), other, DEV, T0, &error);
  g_assert_null (pk);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_PREKEY_IDENTITY);
  g_clear_error (&error);
  pk = e2ee_prekey_verify (rec, len, e2ee_sign_key_get_public (f->sign), f->identity, DEV + 1,
                           T0, &error);
  g_assert_null (pk);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_PREKEY_IDENTITY);
}

static void
test_expiry (Fixture *f, gconstpointer data)
{
  gsize len;
  const guint8 *rec = g_bytes_get_data (f->record, &len);
  guint64 exp = T0 + E2EE_PREKEY_LIFETIME;
  E2eePrekey *pk;

  pk = verify (f, rec, len, exp - 1, NULL);
  g_assert_nonnull (pk);
  e2ee_prekey_free (pk);
  expect (f, rec, len, exp, E2EE_ERROR_PREKEY_EXPIRED);
  expect (f, rec, len, exp + 86400 * 365, E2EE_ERROR_PREKEY_EXPIRED);
  /* A verifier whose clock is behind by up to the skew accepts it ... */
  pk = verify (f, rec, len, T0 - E2EE_PREKEY_SKEW, NULL);
  g_assert_nonnull (pk);
  e2ee_prekey_free (pk);
  /* ... but not a record claiming a longer life than allowed. */
  expect (f, rec, len, T0 - E2EE_PREKEY_SKEW - 1, E2EE_ERROR_PREKEY_EXPIRED);
}

static void
test_rotation (void)
{
  g_assert_false (e2ee_prekey_rotation_due (T0, T0));
  g_assert_false (e2ee_prekey_rotation_due (T0, T0 + E2EE_PREKEY_PERIOD - 1));
  g_assert_true (e2ee_prekey_rotation_due (T0, T0 + E2EE_PREKEY_PERIOD));
  g_assert_false (e2ee_prekey_rotation_due (T0, T0 - E2EE_PREKEY_SKEW));
  g_assert_true (e2ee_prekey_rotation_due (T0, T0 - E2EE_PREKEY_SKEW - 1));
  g_assert_false (e2ee_prekey_delete_due (T0, T0 + E2EE_PREKEY_KEEP - 1));
  g_assert_true (e2ee_prekey_delete_due (T0, T0 + E2EE_PREKEY_KEEP));
  g_assert_false (e2ee_prekey_delete_due (T0, T0 - 1));
  /* The private part outlives the expiry by one period. */
  g_assert_cmpuint (E2EE_PREKEY_KEEP, ==, E2EE_PREKEY_LIFETIME + E2EE_PREKEY_PERIOD);
}

static void
test_create_rules (Fixture *f, gconstpointer data)
{
  E2eeEcSecret *s = NULL;
  GBytes *r = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_false (e2ee_prekey_create (f->sign, f->identity, DEV, 1, T0, 0x01, &s, &r, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_PREKEY_VERSION);
  g_assert_null (s);
  g_assert_null (r);
}

/* Fixed seeds give fixed bytes: the record in tests/vectors/v2-prekey.json. */
static void
test_vector (Fixture *f, gconstpointer data)
{
  JsonObject *o = json_object_new ();
  g_autofree char *rec_hex = e2ee_test_hex (g_bytes_get_data (f->record, NULL),
                                            g_bytes_get_size (f->record));
  g_autofree char *sig_jwk = e2ee_sign_public_to_jwk (e2ee_sign_key_get_public (f->sign));
  char *id_jwk = e2ee_key_to_jwk (f->identity, TRUE, FALSE);
  guint8 d[32];
  g_autofree char *spk_d = NULL, *sig_d = NULL;

  g_assert_true (e2ee_ec_secret_to_bytes (f->spk, d));
  spk_d = e2ee_test_hex (d, 32);
  g_assert_true (e2ee_sign_key_to_bytes (f->sign, d));
  sig_d = e2ee_test_hex (d, 32);
  e2ee_wipe (d, sizeof d);
  json_object_set_string_member (o, "description",
                                 "Signed prekey record (PROTOCOL.md section 4.1): fixed keys, "
                                 "RFC 6979 signature, so every byte is fixed");
  json_object_set_string_member (o, "identity_jwk", id_jwk);
  json_object_set_string_member (o, "signing_jwk", sig_jwk);
  json_object_set_string_member (o, "signing_d", sig_d);
  json_object_set_string_member (o, "spk_d", spk_d);
  json_object_set_int_member (o, "device", DEV);
  json_object_set_int_member (o, "prekey_id", 7);
  json_object_set_int_member (o, "created", (gint64) T0);
  json_object_set_int_member (o, "expires", (gint64) (T0 + E2EE_PREKEY_LIFETIME));
  json_object_set_string_member (o, "versions", "1,2");
  json_object_set_string_member (o, "record", rec_hex);
  e2ee_string_free (id_jwk);
  e2ee_test_vector_check ("v2-prekey.json", o);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/prekey/round-trip", test_round_trip);
  ADD ("/prekey/strict", test_strict);
  ADD ("/prekey/binding", test_binding);
  ADD ("/prekey/expiry", test_expiry);
  ADD ("/prekey/create-rules", test_create_rules);
  ADD ("/prekey/vector", test_vector);
  g_test_add_func ("/prekey/rotation", test_rotation);
  return g_test_run ();
}
