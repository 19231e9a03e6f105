/* purple-e2ee — what the key modules (e2ee-jwk.c, e2ee-jwk-json.c) share:
 * the key's layout and the curve helpers that check and build it; not
 * part of the public API.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <gcrypt.h>

#include "e2ee-jwk.h"

G_BEGIN_DECLS

struct _E2eeKey {
  gint ref_count;
  guint8 x[E2EE_KEY_COORD_LEN];
  guint8 y[E2EE_KEY_COORD_LEN];
  gcry_mpi_t d;               /* secure MPI, or NULL for a public key */
  guint8 caps;
  guint8 thumbprint[E2EE_THUMBPRINT_LEN];
  char kid[48];
  /* Protocol-v2 attachments (both or neither); public data. */
  E2eeKey *sign_pub;
  GBytes *prekey_record;
};

/* A new key with this point (not checked here: callers validate it
 * first), @caps masked and the thumbprint computed; no private part. */
E2eeKey *e2ee_key_alloc (const guint8 x[E2EE_KEY_COORD_LEN],
                         const guint8 y[E2EE_KEY_COORD_LEN], guint8 caps);

/* Rejects anything but a finite point of P-256 with canonical coordinates. */
gboolean e2ee_key_validate_point (const guint8 x[E2EE_KEY_COORD_LEN],
                                  const guint8 y[E2EE_KEY_COORD_LEN], GError **error);

/* A secure-memory MPI holding the scalar, or NULL if the secure pool is
 * exhausted (the caller reports it). */
gcry_mpi_t e2ee_key_secure_scalar (const guint8 d[E2EE_KEY_COORD_LEN]);

/* TRUE if 1 <= d < n. */
gboolean e2ee_key_scalar_in_range (gcry_mpi_t d, GError **error);

/* Computes d*G with the constant-time ladder (secure scalar). */
gboolean e2ee_key_public_from_scalar (gcry_mpi_t d, guint8 x[E2EE_KEY_COORD_LEN],
                                      guint8 y[E2EE_KEY_COORD_LEN], GError **error);

/* Writes @m as exactly 32 big-endian bytes; FALSE if it does not fit. */
gboolean e2ee_key_mpi_to_coord (gcry_mpi_t m, guint8 out[E2EE_KEY_COORD_LEN]);

G_END_DECLS
