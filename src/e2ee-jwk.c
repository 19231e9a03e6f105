/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-jwk-private.h"
#include "e2ee-keyset.h"
#include "e2ee-wipe.h"

#define CURVE_NAME "NIST P-256"

/* ---- curve helpers ---------------------------------------------------- */

/* One P-256 context for the process: building it parses the curve's
 * parameters, which would cost more than validating a key.  libgcrypt
 * contexts are not safe for concurrent use, so each use holds the lock
 * (recursive: helpers that take the context call each other). */
static GRecMutex curve_lock;
static gcry_ctx_t curve_shared;

static gcry_ctx_t
curve_context (GError **error)
{
  g_rec_mutex_lock (&curve_lock);
  if (curve_shared == NULL)
    {
      gcry_error_t err = gcry_mpi_ec_new (&curve_shared, NULL, CURVE_NAME);
      if (err)
        {
          curve_shared = NULL;
          g_rec_mutex_unlock (&curve_lock);
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                       "cannot set up P-256: %s", gcry_strerror (err));
          return NULL;
        }
    }
  return curve_shared;
}

static void
curve_release (gcry_ctx_t ctx)
{
  if (ctx != NULL)
    g_rec_mutex_unlock (&curve_lock);
}

static gcry_mpi_t
mpi_from_bytes (const guint8 *buf, gsize len)
{
  gcry_mpi_t m = NULL;
  gcry_mpi_scan (&m, GCRYMPI_FMT_USG, buf, len, NULL);
  return m;
}

/* Writes @m as exactly 32 big-endian bytes. */
gboolean
e2ee_key_mpi_to_coord (gcry_mpi_t m, guint8 out[E2EE_KEY_COORD_LEN])
{
  size_t n = 0;

  if (gcry_mpi_get_nbits (m) > 8 * E2EE_KEY_COORD_LEN)
    return FALSE;
  memset (out, 0, E2EE_KEY_COORD_LEN);
  if (gcry_mpi_print (GCRYMPI_FMT_USG, NULL, 0, &n, m))
    return FALSE;
  if (n > E2EE_KEY_COORD_LEN)
    return FALSE;
  return gcry_mpi_print (GCRYMPI_FMT_USG, out + E2EE_KEY_COORD_LEN - n, n, NULL, m) == 0;
}

/* A secure-memory MPI holding the scalar.  libgcrypt takes its
 * double-and-add-always ladder only for scalars flagged secure, so every
 * private scalar we use must come from here. */
gcry_mpi_t
e2ee_key_secure_scalar (const guint8 d[E2EE_KEY_COORD_LEN])
{
  guint8 *buf = gcry_malloc_secure (E2EE_KEY_COORD_LEN);
  gcry_mpi_t m = NULL;

  if (buf == NULL)
    return NULL; /* secure pool exhausted: callers report it */
  /* gcry_mpi_scan allocates a secure MPI when its input buffer lives in
   * secure memory. */
  memcpy (buf, d, E2EE_KEY_COORD_LEN);
  gcry_mpi_scan (&m, GCRYMPI_FMT_USG, buf, E2EE_KEY_COORD_LEN, NULL);
  e2ee_wipe (buf, E2EE_KEY_COORD_LEN);
  gcry_free (buf);
  if (m != NULL && !gcry_mpi_get_flag (m, GCRYMPI_FLAG_SECURE))
    {
      /* Without the flag the scalar would take the leaky path: refuse. */
      gcry_mpi_release (m);
      return NULL;
    }
  return m;
}

/* libgcrypt's ladder for a secure scalar does the same work per bit but
 * runs once per bit of the scalar, so its running time would tell how
 * many leading zero bits d has.  d + n or d + 2n, whichever is 257 bits
 * long (one always is), names the same multiple of any point of order n
 * (every validated P-256 point) and always has 257 bits.  Returns a new
 * secure MPI. */
static gcry_mpi_t
full_length_scalar (gcry_mpi_t d, gcry_ctx_t ctx)
{
  gcry_mpi_t n = gcry_mpi_ec_get_mpi ("n", ctx, 1);
  gcry_mpi_t k = gcry_mpi_snew (E2EE_KEY_COORD_LEN * 8 + 64);

  gcry_mpi_add (k, d, n);
  if (gcry_mpi_get_nbits (k) <= 8 * E2EE_KEY_COORD_LEN)
    gcry_mpi_add (k, k, n);
  gcry_mpi_release (n);
  return k;
}

static gboolean
point_affine (gcry_mpi_point_t point, gcry_ctx_t ctx,
              guint8 x[E2EE_KEY_COORD_LEN], guint8 y[E2EE_KEY_COORD_LEN])
{
  gcry_mpi_t ax = gcry_mpi_new (0);
  gcry_mpi_t ay = gcry_mpi_new (0);
  gboolean ok = gcry_mpi_ec_get_affine (ax, ay, point, ctx) == 0
                && e2ee_key_mpi_to_coord (ax, x) && (y == NULL || e2ee_key_mpi_to_coord (ay, y));

  gcry_mpi_release (ax);
  gcry_mpi_release (ay);
  return ok;
}

/* ---- construction ----------------------------------------------------- */

static void
compute_thumbprint (E2eeKey *key)
{
  /* RFC 7638 §3.2: required members only, sorted, no whitespace.  Built
   * on the stack: this runs for every key of a large keyring. */
  char canon[160];
  gsize n = 0;

#define APPEND(lit) (memcpy (canon + n, lit, sizeof lit - 1), n += sizeof lit - 1)
  APPEND ("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"");
  n += e2ee_b64url_encode_into (key->x, E2EE_KEY_COORD_LEN, canon + n);
  APPEND ("\",\"y\":\"");
  n += e2ee_b64url_encode_into (key->y, E2EE_KEY_COORD_LEN, canon + n);
  APPEND ("\"}");
#undef APPEND
  g_assert (n < sizeof canon);
  gcry_md_hash_buffer (GCRY_MD_SHA256, key->thumbprint, canon, n);
  G_STATIC_ASSERT (sizeof ((E2eeKey *) 0)->kid > 43);
  e2ee_b64url_encode_into (key->thumbprint, E2EE_THUMBPRINT_LEN, key->kid);
}

E2eeKey *
e2ee_key_alloc (const guint8 x[E2EE_KEY_COORD_LEN], const guint8 y[E2EE_KEY_COORD_LEN],
                guint8 caps)
{
  E2eeKey *key = g_new0 (E2eeKey, 1);

  key->ref_count = 1;
  memcpy (key->x, x, E2EE_KEY_COORD_LEN);
  memcpy (key->y, y, E2EE_KEY_COORD_LEN);
  key->caps = caps & E2EE_CAPS_MASK;
  compute_thumbprint (key);
  return key;
}

E2eeKey *
e2ee_key_ref (E2eeKey *key)
{
  g_return_val_if_fail (key != NULL, NULL);
  g_atomic_int_inc (&key->ref_count);
  return key;
}

void
e2ee_key_unref (E2eeKey *key)
{
  if (key == NULL || !g_atomic_int_dec_and_test (&key->ref_count))
    return;
  /* gcry_mpi_release wipes secure MPIs before freeing them. */
  gcry_mpi_release (key->d);
  e2ee_key_unref (key->sign_pub);
  if (key->prekey_record)
    g_bytes_unref (key->prekey_record);
  e2ee_wipe (key, sizeof *key);
  g_free (key);
}

static gboolean
all_zero (const guint8 *buf, gsize len)
{
  guint8 acc = 0;
  for (gsize i = 0; i < len; i++)
    acc |= buf[i];
  return acc == 0;
}

/* Rejects anything but a finite point of P-256 with canonical coordinates.
 * libgcrypt's key-parameter parser and encrypt path do not check the point
 * (CRYPTO-NOTES.md), so no key reaches them without passing here. */
gboolean
e2ee_key_validate_point (const guint8 x[E2EE_KEY_COORD_LEN], const guint8 y[E2EE_KEY_COORD_LEN],
                         GError **error)
{
  gcry_ctx_t ctx = NULL;
  gcry_mpi_t mx = NULL, my = NULL, p = NULL, one = NULL;
  gcry_mpi_point_t point = NULL;
  gboolean ok = FALSE;

  if (all_zero (x, E2EE_KEY_COORD_LEN) && all_zero (y, E2EE_KEY_COORD_LEN))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_INFINITY,
                           "the key is the point at infinity");
      return FALSE;
    }
  if (!(ctx = curve_context (error)))
    return FALSE;
  p = gcry_mpi_ec_get_mpi ("p", ctx, 1);
  mx = mpi_from_bytes (x, E2EE_KEY_COORD_LEN);
  my = mpi_from_bytes (y, E2EE_KEY_COORD_LEN);
  if (gcry_mpi_cmp (mx, p) >= 0 || gcry_mpi_cmp (my, p) >= 0)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_RANGE,
                           "a key coordinate is not below the field prime");
      goto out;
    }
  one = gcry_mpi_set_ui (NULL, 1);
  point = gcry_mpi_point_set (NULL, mx, my, one);
  if (!gcry_mpi_ec_curve_point (point, ctx))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_NOT_ON_CURVE,
                           "the key is not a point of P-256");
      goto out;
    }
  ok = TRUE;

out:
  gcry_mpi_point_release (point);
  gcry_mpi_release (one);
  gcry_mpi_release (mx);
  gcry_mpi_release (my);
  gcry_mpi_release (p);
  curve_release (ctx);
  return ok;
}

E2eeKey *
e2ee_key_new_public (const guint8 x[E2EE_KEY_COORD_LEN],
                     const guint8 y[E2EE_KEY_COORD_LEN], GError **error)
{
  if (!e2ee_gcrypt_init (error) || !e2ee_key_validate_point (x, y, error))
    return NULL;
  return e2ee_key_alloc (x, y, E2EE_CAPS_V1);
}

/* Computes d*G with the constant-time ladder (secure scalar). */
gboolean
e2ee_key_public_from_scalar (gcry_mpi_t d, guint8 x[E2EE_KEY_COORD_LEN],
                             guint8 y[E2EE_KEY_COORD_LEN], GError **error)
{
  gcry_ctx_t ctx = curve_context (error);
  gcry_mpi_point_t g = NULL, q = NULL;
  gcry_mpi_t k;
  gboolean ok = FALSE;

  if (!ctx)
    return FALSE;
  g = gcry_mpi_ec_get_point ("g", ctx, 1);
  q = gcry_mpi_point_new (0);
  k = full_length_scalar (d, ctx);
  gcry_mpi_ec_mul (q, k, g, ctx);
  gcry_mpi_release (k);
  ok = point_affine (q, ctx, x, y);
  if (!ok)
    g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                         "scalar multiplication gave the point at infinity");
  gcry_mpi_point_release (g);
  gcry_mpi_point_release (q);
  curve_release (ctx);
  return ok;
}

/* TRUE if 1 <= d < n. */
gboolean
e2ee_key_scalar_in_range (gcry_mpi_t d, GError **error)
{
  gcry_ctx_t ctx = curve_context (error);
  gcry_mpi_t n;
  gboolean ok;

  if (!ctx)
    return FALSE;
  n = gcry_mpi_ec_get_mpi ("n", ctx, 1);
  ok = gcry_mpi_cmp_ui (d, 0) > 0 && gcry_mpi_cmp (d, n) < 0;
  gcry_mpi_release (n);
  curve_release (ctx);
  if (!ok)
    g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_RANGE,
                         "the private scalar is not in [1, n-1]");
  return ok;
}

E2eeKey *
e2ee_key_generate (GError **error)
{
  guint8 *d_bytes = NULL;
  gcry_mpi_t d = NULL;
  guint8 x[E2EE_KEY_COORD_LEN], y[E2EE_KEY_COORD_LEN];
  E2eeKey *key = NULL;

  if (!e2ee_gcrypt_init (error))
    return NULL;
  d_bytes = gcry_malloc_secure (E2EE_KEY_COORD_LEN);
  if (d_bytes == NULL)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                           "libgcrypt secure memory is unavailable");
      return NULL;
    }
  /* Rejection sampling: d uniform in [1, n-1] (n is close to 2^256, so a
   * retry is needed about once in 2^32 draws). */
  for (int attempt = 0; attempt < 64 && key == NULL; attempt++)
    {
      gcry_randomize (d_bytes, E2EE_KEY_COORD_LEN, GCRY_VERY_STRONG_RANDOM);
      gcry_mpi_release (d);
      d = e2ee_key_secure_scalar (d_bytes);
      if (d == NULL)
        break;
      if (!e2ee_key_scalar_in_range (d, NULL))
        continue;
      if (!e2ee_key_public_from_scalar (d, x, y, error))
        goto out;
      key = e2ee_key_alloc (x, y, E2EE_CAPS_SUPPORTED);
      key->d = d;
      d = NULL;
    }
  if (key == NULL && error && *error == NULL)
    g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                         d == NULL ? "libgcrypt secure memory is unavailable"
                                   : "random generator gave no valid scalar");
out:
  e2ee_wipe (d_bytes, E2EE_KEY_COORD_LEN);
  gcry_free (d_bytes);
  gcry_mpi_release (d);
  return key;
}

/* ---- accessors -------------------------------------------------------- */

/* A new key with @key's point and private part, @caps and the given
 * attachments (references taken). */
static E2eeKey *
key_derive (const E2eeKey *key, guint8 caps, gboolean with_private,
            const E2eeKey *sign_pub, GBytes *record)
{
  E2eeKey *copy = e2ee_key_alloc (key->x, key->y, caps);

  if (with_private && key->d)
    copy->d = gcry_mpi_copy (key->d); /* keeps the secure flag */
  if (sign_pub != NULL && (copy->caps & E2EE_CAPS_V2))
    {
      copy->sign_pub = e2ee_key_ref ((E2eeKey *) sign_pub);
      copy->prekey_record = g_bytes_ref (record);
    }
  return copy;
}

E2eeKey *
e2ee_key_public_copy (const E2eeKey *key)
{
  g_return_val_if_fail (key != NULL, NULL);
  return key_derive (key, key->caps, FALSE, key->sign_pub, key->prekey_record);
}

E2eeKey *
e2ee_key_with_caps (const E2eeKey *key, guint8 caps)
{
  g_return_val_if_fail (key != NULL, NULL);
  return key_derive (key, caps, TRUE, key->sign_pub, key->prekey_record);
}

E2eeKey *
e2ee_key_with_v2 (const E2eeKey *key, const E2eeKey *sign_pub, GBytes *record)
{
  g_autoptr (E2eeKey) pub = NULL;

  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail ((sign_pub == NULL) == (record == NULL), NULL);
  if (sign_pub == NULL)
    return key_derive (key, key->caps, TRUE, NULL, NULL);
  g_return_val_if_fail (!e2ee_key_equal (key, sign_pub), NULL);
  g_return_val_if_fail (e2ee_keyset_v2_record_check (g_bytes_get_data (record, NULL),
                                                     g_bytes_get_size (record), NULL),
                        NULL);
  /* Only the public point is ever published. */
  pub = sign_pub->d ? e2ee_key_public_copy (sign_pub) : e2ee_key_ref ((E2eeKey *) sign_pub);
  return key_derive (key, key->caps | E2EE_CAPS_V2, TRUE, pub, record);
}

const E2eeKey *e2ee_key_get_sign_pub (const E2eeKey *key) { return key->sign_pub; }
GBytes *e2ee_key_get_prekey_record (const E2eeKey *key) { return key->prekey_record; }

gboolean e2ee_key_has_private (const E2eeKey *key) { return key->d != NULL; }
const guint8 *e2ee_key_get_x (const E2eeKey *key) { return key->x; }
const guint8 *e2ee_key_get_y (const E2eeKey *key) { return key->y; }
guint8 e2ee_key_get_caps (const E2eeKey *key) { return key->caps; }
const guint8 *e2ee_key_get_thumbprint (const E2eeKey *key) { return key->thumbprint; }
const char *e2ee_key_get_kid (const E2eeKey *key) { return key->kid; }
const guint8 *e2ee_key_get_device_id (const E2eeKey *key) { return key->thumbprint; }

gboolean
e2ee_key_equal (const E2eeKey *a, const E2eeKey *b)
{
  return memcmp (a->x, b->x, E2EE_KEY_COORD_LEN) == 0
         && memcmp (a->y, b->y, E2EE_KEY_COORD_LEN) == 0;
}

/* ---- ECDH ------------------------------------------------------------- */

gboolean
e2ee_key_ecdh (const E2eeKey *local, const E2eeKey *remote,
               guint8 out[E2EE_KEY_COORD_LEN], GError **error)
{
  gcry_ctx_t ctx = NULL;
  gcry_mpi_t qx = NULL, qy = NULL, one = NULL, k = NULL;
  gcry_mpi_point_t q = NULL, r = NULL;
  gboolean ok = FALSE;

  g_return_val_if_fail (local != NULL && remote != NULL, FALSE);
  if (local->d == NULL)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_FAILED,
                           "ECDH needs our private key");
      return FALSE;
    }
  /* The remote point was validated when the E2eeKey was made, so the
   * unchecked multiplication below cannot be fed an invalid-curve point.
   * local->d is a secure MPI, which selects libgcrypt's constant-time
   * ladder (gcry_pk_decrypt would copy it into ordinary memory). */
  if (!(ctx = curve_context (error)))
    return FALSE;
  qx = mpi_from_bytes (remote->x, E2EE_KEY_COORD_LEN);
  qy = mpi_from_bytes (remote->y, E2EE_KEY_COORD_LEN);
  one = gcry_mpi_set_ui (NULL, 1);
  q = gcry_mpi_point_set (NULL, qx, qy, one);
  r = gcry_mpi_point_new (0);
  k = full_length_scalar (local->d, ctx);
  gcry_mpi_ec_mul (r, k, q, ctx);
  gcry_mpi_release (k);
  ok = point_affine (r, ctx, out, NULL);
  if (!ok)
    g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                         "ECDH gave the point at infinity");
  gcry_mpi_point_release (q);
  gcry_mpi_point_release (r);
  gcry_mpi_release (qx);
  gcry_mpi_release (qy);
  gcry_mpi_release (one);
  curve_release (ctx);
  return ok;
}
