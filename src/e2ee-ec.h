/* purple-e2ee — short-lived P-256 private keys for protocol v2: ratchet
 * keys, X3DH ephemeral keys, signed prekeys and ECDSA signing keys.
 *
 * An E2eeEcSecret owns a private scalar (in the locked arena of
 * e2ee-wipe.h; scanned into a short-lived libgcrypt secure MPI for each
 * operation, so the constant-time ladder is taken; wiped on free) and its public point as
 * a validated E2eeKey.  Unlike E2eeKey (jwk.h) it can be made from and
 * written to raw bytes, which the v2 state blob needs, and it draws its
 * randomness from e2ee-random.h, which tests can replay.
 *
 * Failure rules: every function returning a pointer or gboolean sets
 * @error on failure (E2EE_ERROR_JWK_RANGE for a scalar outside [1, n-1],
 * E2EE_ERROR_CRYPTO for libgcrypt failures) and leaves outputs wiped.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-jwk.h"

G_BEGIN_DECLS

#define E2EE_EC_POINT_LEN 65   /* 04 || X || Y */

typedef struct _E2eeEcSecret E2eeEcSecret;

/* A new key pair from e2ee_random_bytes (E2EE_RANDOM_KEY); the long-term
 * variant (signing keys) draws E2EE_RANDOM_LONG_TERM. */
E2eeEcSecret *e2ee_ec_secret_generate (GError **error);
E2eeEcSecret *e2ee_ec_secret_generate_long_term (GError **error);
/* From a 32-byte big-endian scalar; rejects 0 and values >= n. */
E2eeEcSecret *e2ee_ec_secret_from_bytes (const guint8 d[E2EE_KEY_COORD_LEN],
                                         GError **error);
/* Writes the scalar (a secret: wipe @d after use). */
gboolean e2ee_ec_secret_to_bytes (const E2eeEcSecret *secret,
                                  guint8 d[E2EE_KEY_COORD_LEN]);
/* Borrowed public key (lives as long as @secret). */
E2eeKey *e2ee_ec_secret_get_public (const E2eeEcSecret *secret);
/* A new secure MPI holding the scalar, for e2ee-sign.c (gcry_mpi_release
 * it at once after use), or NULL when libgcrypt's secure pool is full. */
gpointer e2ee_ec_secret_dup_scalar (const E2eeEcSecret *secret);
void e2ee_ec_secret_free (E2eeEcSecret *secret);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeEcSecret, e2ee_ec_secret_free)

/* ECDH: X coordinate of d * Q (the WebCrypto deriveBits(256) value).
 * @remote was validated when it was made. */
gboolean e2ee_ec_secret_ecdh (const E2eeEcSecret *secret, const E2eeKey *remote,
                              guint8 out[E2EE_KEY_COORD_LEN], GError **error);

/* 04 || X || Y of a key. */
void e2ee_ec_point_encode (const E2eeKey *key, guint8 out[E2EE_EC_POINT_LEN]);
/* Parses and validates an uncompressed point (E2EE_ERROR_JWK_* codes). */
E2eeKey *e2ee_ec_point_decode (const guint8 in[E2EE_EC_POINT_LEN], GError **error);

G_END_DECLS
