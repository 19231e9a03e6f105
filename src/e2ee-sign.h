/* purple-e2ee — the ECDSA P-256 signing key of protocol v2 (signs prekey
 * records; never used for ECDH, and the identity key never signs).
 *
 * Signatures are IEEE P1363: r || s, 32 bytes each, big-endian — the form
 * WebCrypto's ECDSA sign/verify use — over SHA-256 of the message.
 * Signing is deterministic (RFC 6979 nonces), so vectors are exact.
 *
 * Ownership: E2eeSignKey is owned by the caller (free with
 * e2ee_sign_key_free, which wipes the scalar).  Public signing keys are
 * plain E2eeKey (validated point, reference-counted).
 * Failure rules: FALSE/NULL with @error set; verification never reports a
 * libgcrypt failure as success, and every malformed signature is
 * E2EE_ERROR_SIGNATURE.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-ec.h"

G_BEGIN_DECLS

#define E2EE_SIGNATURE_LEN 64

typedef struct _E2eeSignKey E2eeSignKey;

E2eeSignKey *e2ee_sign_key_generate (GError **error);
/* From the 32-byte scalar (as kept in the store). */
E2eeSignKey *e2ee_sign_key_from_bytes (const guint8 d[E2EE_KEY_COORD_LEN], GError **error);
gboolean e2ee_sign_key_to_bytes (const E2eeSignKey *key, guint8 d[E2EE_KEY_COORD_LEN]);
void e2ee_sign_key_free (E2eeSignKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeSignKey, e2ee_sign_key_free)

/* Borrowed: lives as long as @key. */
E2eeKey *e2ee_sign_key_get_public (const E2eeSignKey *key);

/* Public JWK, members in this order, no whitespace:
 * {"kty":"EC","crv":"P-256","x":…,"y":…,"alg":"ES256","use":"sig"}
 * WebCrypto imports it with {name:"ECDSA", namedCurve:"P-256"}. */
char *e2ee_sign_public_to_jwk (const E2eeKey *pub);
/* Parses a public signing JWK: the identity-key rules of jwk.h, plus
 * "alg" (if present) must be "ES256" and "use" (if present) "sig"
 * (E2EE_ERROR_SIGN_KEY otherwise). */
E2eeKey *e2ee_sign_public_from_jwk (const char *json, gssize len, GError **error);

/* Signs SHA-256(@msg). */
gboolean e2ee_sign (const E2eeSignKey *key, const guint8 *msg, gsize len,
                    guint8 sig[E2EE_SIGNATURE_LEN], GError **error);

/* Verifies a P1363 signature.  Low-level checks first: exactly 64 bytes,
 * 1 <= r < n and 1 <= s < n; then libgcrypt's verification.  Any failure
 * is E2EE_ERROR_SIGNATURE. */
gboolean e2ee_sign_verify (const E2eeKey *pub, const guint8 *msg, gsize len,
                           const guint8 *sig, gsize sig_len, GError **error);

G_END_DECLS
