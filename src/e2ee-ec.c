/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-ec.h"
#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-random.h"
#include "e2ee-wipe.h"

/* The scalar lives in our own locked arena (e2ee-wipe.h), not in
 * libgcrypt's secure pool: that pool is small and the host's (a few
 * hundred sessions would exhaust it).  Each operation scans it into a
 * short-lived secure MPI, which keeps libgcrypt on its constant-time path. */
struct _E2eeEcSecret {
  guint8 *d;        /* 32 bytes, e2ee_secure_alloc */
  E2eeKey *pub;
};

/* A secure MPI holding @d (release it with gcry_mpi_release), or NULL. */
static gcry_mpi_t
secure_mpi (const guint8 d_in[E2EE_KEY_COORD_LEN])
{
  guint8 *buf = gcry_malloc_secure (E2EE_KEY_COORD_LEN);
  gcry_mpi_t d = NULL;

  if (buf == NULL)
    return NULL;
  memcpy (buf, d_in, E2EE_KEY_COORD_LEN);
  /* Scanning from secure memory gives a secure MPI (constant-time path). */
  if (gcry_mpi_scan (&d, GCRYMPI_FMT_USG, buf, E2EE_KEY_COORD_LEN, NULL) != 0
      || !gcry_mpi_get_flag (d, GCRYMPI_FLAG_SECURE))
    {
      gcry_mpi_release (d);
      d = NULL;
    }
  e2ee_wipe (buf, E2EE_KEY_COORD_LEN);
  gcry_free (buf);
  return d;
}

/* A P-256 context of our own (libgcrypt contexts are not thread-safe). */
static GMutex ec_lock;
static gcry_ctx_t ec_ctx;

static gcry_ctx_t
ctx_acquire (GError **error)
{
  g_mutex_lock (&ec_lock);
  if (ec_ctx == NULL)
    {
      gcry_error_t err = gcry_mpi_ec_new (&ec_ctx, NULL, "NIST P-256");
      if (err)
        {
          ec_ctx = NULL;
          g_mutex_unlock (&ec_lock);
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                       "cannot set up P-256: %s", gcry_strerror (err));
          return NULL;
        }
    }
  return ec_ctx;
}

static void
ctx_release (void)
{
  g_mutex_unlock (&ec_lock);
}

static gboolean
mpi_to_32 (gcry_mpi_t m, guint8 out[E2EE_KEY_COORD_LEN])
{
  size_t n = 0;

  memset (out, 0, E2EE_KEY_COORD_LEN);
  if (gcry_mpi_get_nbits (m) > 8 * E2EE_KEY_COORD_LEN
      || gcry_mpi_print (GCRYMPI_FMT_USG, NULL, 0, &n, m) != 0
      || n > E2EE_KEY_COORD_LEN)
    return FALSE;
  return gcry_mpi_print (GCRYMPI_FMT_USG, out + E2EE_KEY_COORD_LEN - n, n, NULL, m) == 0;
}

/* d*P with a scalar of constant bit length (d + n or d + 2n, whichever has
 * 257 bits: the same multiple of a point of order n), so the ladder's run
 * time does not tell d's leading zero bits.  Caller holds the context. */
static gboolean
scalar_mul (gcry_ctx_t ctx, gcry_mpi_t d, gcry_mpi_point_t point,
            guint8 x[E2EE_KEY_COORD_LEN], guint8 y[E2EE_KEY_COORD_LEN])
{
  gcry_mpi_t n = gcry_mpi_ec_get_mpi ("n", ctx, 1);
  gcry_mpi_t k = gcry_mpi_snew (8 * E2EE_KEY_COORD_LEN + 64);
  gcry_mpi_point_t r = gcry_mpi_point_new (0);
  gcry_mpi_t ax = gcry_mpi_new (0), ay = gcry_mpi_new (0);
  gboolean ok;

  gcry_mpi_add (k, d, n);
  if (gcry_mpi_get_nbits (k) <= 8 * E2EE_KEY_COORD_LEN)
    gcry_mpi_add (k, k, n);
  gcry_mpi_ec_mul (r, k, point, ctx);
  ok = gcry_mpi_ec_get_affine (ax, ay, r, ctx) == 0
       && mpi_to_32 (ax, x) && (y == NULL || mpi_to_32 (ay, y));
  gcry_mpi_release (k);
  gcry_mpi_release (n);
  gcry_mpi_release (ax);
  gcry_mpi_release (ay);
  gcry_mpi_point_release (r);
  return ok;
}

E2eeEcSecret *
e2ee_ec_secret_from_bytes (const guint8 d_in[E2EE_KEY_COORD_LEN], GError **error)
{
  gcry_mpi_t d = NULL, n;
  gcry_ctx_t ctx;
  gcry_mpi_point_t g;
  guint8 x[E2EE_KEY_COORD_LEN], y[E2EE_KEY_COORD_LEN];
  gboolean in_range, ok;
  E2eeEcSecret *secret;
  E2eeKey *pub;

  if (!e2ee_gcrypt_init (error))
    return NULL;
  d = secure_mpi (d_in);
  if (d == NULL)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                           "cannot hold the scalar in secure memory");
      return NULL;
    }

  if (!(ctx = ctx_acquire (error)))
    {
      gcry_mpi_release (d);
      return NULL;
    }
  n = gcry_mpi_ec_get_mpi ("n", ctx, 1);
  in_range = gcry_mpi_cmp_ui (d, 0) > 0 && gcry_mpi_cmp (d, n) < 0;
  gcry_mpi_release (n);
  ok = FALSE;
  if (in_range)
    {
      g = gcry_mpi_ec_get_point ("g", ctx, 1);
      ok = scalar_mul (ctx, d, g, x, y);
      gcry_mpi_point_release (g);
    }
  ctx_release ();
  if (!in_range || !ok)
    {
      gcry_mpi_release (d);
      if (!in_range)
        g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_RANGE,
                             "the private scalar is not in [1, n-1]");
      else
        g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                             "scalar multiplication failed");
      return NULL;
    }
  pub = e2ee_key_new_public (x, y, error);
  if (pub == NULL)
    {
      gcry_mpi_release (d);
      return NULL;
    }
  gcry_mpi_release (d);   /* secure MPIs are wiped when released */
  secret = g_new0 (E2eeEcSecret, 1);
  secret->d = e2ee_secure_alloc (E2EE_KEY_COORD_LEN);
  memcpy (secret->d, d_in, E2EE_KEY_COORD_LEN);
  secret->pub = pub;
  return secret;
}

static E2eeEcSecret *
generate (E2eeRandomKind kind, GError **error)
{
  guint8 d[E2EE_KEY_COORD_LEN];
  E2eeEcSecret *secret = NULL;

  /* Rejection sampling; n is so close to 2^256 that a retry happens about
   * once in 2^32 draws. */
  for (int attempt = 0; attempt < 64 && secret == NULL; attempt++)
    {
      g_autoptr (GError) local = NULL;

      e2ee_random_bytes (d, sizeof d, kind);
      secret = e2ee_ec_secret_from_bytes (d, &local);
      if (secret == NULL && !g_error_matches (local, E2EE_ERROR, E2EE_ERROR_JWK_RANGE))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          break;
        }
    }
  e2ee_wipe (d, sizeof d);
  if (secret == NULL && error != NULL && *error == NULL)
    g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                         "the random generator gave no valid scalar");
  return secret;
}

E2eeEcSecret *
e2ee_ec_secret_generate (GError **error)
{
  return generate (E2EE_RANDOM_KEY, error);
}

E2eeEcSecret *
e2ee_ec_secret_generate_long_term (GError **error)
{
  return generate (E2EE_RANDOM_LONG_TERM, error);
}

gboolean
e2ee_ec_secret_to_bytes (const E2eeEcSecret *secret, guint8 d[E2EE_KEY_COORD_LEN])
{
  memcpy (d, secret->d, E2EE_KEY_COORD_LEN);
  return TRUE;
}

E2eeKey *
e2ee_ec_secret_get_public (const E2eeEcSecret *secret)
{
  return secret->pub;
}

gpointer
e2ee_ec_secret_dup_scalar (const E2eeEcSecret *secret)
{
  return secure_mpi (secret->d);
}

void
e2ee_ec_secret_free (E2eeEcSecret *secret)
{
  if (secret == NULL)
    return;
  e2ee_secure_free (secret->d, E2EE_KEY_COORD_LEN);
  e2ee_key_unref (secret->pub);
  g_free (secret);
}

gboolean
e2ee_ec_secret_ecdh (const E2eeEcSecret *secret, const E2eeKey *remote,
                     guint8 out[E2EE_KEY_COORD_LEN], GError **error)
{
  gcry_ctx_t ctx;
  gcry_mpi_t qx = NULL, qy = NULL, one, d;
  gcry_mpi_point_t q;
  gboolean ok;

  if (!(d = secure_mpi (secret->d)))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                           "cannot hold the scalar in secure memory");
      return FALSE;
    }
  if (!(ctx = ctx_acquire (error)))
    {
      gcry_mpi_release (d);
      return FALSE;
    }
  gcry_mpi_scan (&qx, GCRYMPI_FMT_USG, e2ee_key_get_x (remote), E2EE_KEY_COORD_LEN, NULL);
  gcry_mpi_scan (&qy, GCRYMPI_FMT_USG, e2ee_key_get_y (remote), E2EE_KEY_COORD_LEN, NULL);
  one = gcry_mpi_set_ui (NULL, 1);
  q = gcry_mpi_point_set (NULL, qx, qy, one);
  ok = qx != NULL && qy != NULL && scalar_mul (ctx, d, q, out, NULL);
  gcry_mpi_release (d);
  gcry_mpi_point_release (q);
  gcry_mpi_release (qx);
  gcry_mpi_release (qy);
  gcry_mpi_release (one);
  ctx_release ();
  if (!ok)
    {
      e2ee_wipe (out, E2EE_KEY_COORD_LEN);
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO, "ECDH failed");
    }
  return ok;
}

void
e2ee_ec_point_encode (const E2eeKey *key, guint8 out[E2EE_EC_POINT_LEN])
{
  out[0] = 0x04;
  memcpy (out + 1, e2ee_key_get_x (key), E2EE_KEY_COORD_LEN);
  memcpy (out + 1 + E2EE_KEY_COORD_LEN, e2ee_key_get_y (key), E2EE_KEY_COORD_LEN);
}

E2eeKey *
e2ee_ec_point_decode (const guint8 in[E2EE_EC_POINT_LEN], GError **error)
{
  if (in[0] != 0x04)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_NOT_ON_CURVE,
                           "a point must be uncompressed (04 || X || Y)");
      return NULL;
    }
  return e2ee_key_new_public (in + 1, in + 1 + E2EE_KEY_COORD_LEN, error);
}
