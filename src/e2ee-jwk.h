/* purple-e2ee — P-256 identity keys, JWK (RFC 7517/7518), JWK Sets and
 * RFC 7638 thumbprints.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define E2EE_KEY_COORD_LEN 32       /* bytes in x, y and d */
#define E2EE_THUMBPRINT_LEN 32      /* SHA-256 */
#define E2EE_DEVICE_ID_LEN 4        /* first bytes of the thumbprint */

/* Capability bits: bit (v-1) set for each protocol version v supported. */
#define E2EE_CAPS_V1 0x01u
#define E2EE_CAPS_V2 0x02u
/* What a generated key advertises; the session layer adds E2EE_CAPS_V2
 * (e2ee_key_with_caps) where it runs protocol v2. */
#define E2EE_CAPS_SUPPORTED E2EE_CAPS_V1
/* Capabilities travel in four bits of the envelope: versions 1 to 4. */
#define E2EE_CAPS_MASK 0x0Fu

typedef enum {
  E2EE_KEY_EXPECT_PUBLIC,   /* a "d" member is an error */
  E2EE_KEY_EXPECT_PRIVATE,  /* "d" is required */
  E2EE_KEY_EXPECT_ANY,      /* either */
} E2eeKeyExpect;

/* An immutable, reference-counted P-256 key: a validated public point and,
 * optionally, the private scalar (held in libgcrypt secure memory and
 * wiped on the last unref).  The public point is always checked to be on
 * the curve and not the point at infinity before an E2eeKey exists. */
typedef struct _E2eeKey E2eeKey;

E2eeKey *e2ee_key_ref (E2eeKey *key);
void e2ee_key_unref (E2eeKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeKey, e2ee_key_unref)

/* Generates a new key pair for this installation.  Takes a few ms. */
E2eeKey *e2ee_key_generate (GError **error);

/* Builds a public key from raw coordinates; validates the point. */
E2eeKey *e2ee_key_new_public (const guint8 x[E2EE_KEY_COORD_LEN],
                              const guint8 y[E2EE_KEY_COORD_LEN],
                              GError **error);

/* Parses a JWK (JSON text of @len bytes, -1 for NUL-terminated).  Strict:
 * one JSON object, kty "EC", crv "P-256", x/y (and d) unpadded base64url
 * of exactly 32 bytes, coordinates < p, point on the curve, d in [1,n-1]
 * and matching (x,y).  Other members are ignored except "kid" (must equal
 * the thumbprint if present), "e2ee_v" (capabilities, see PROTOCOL.md) and
 * the v2 attachments "e2ee_sig" and "e2ee_pk" (below).
 * Each failure is a distinct E2EE_ERROR_JWK_* code; every problem with
 * the v2 attachments is E2EE_ERROR_V2_BUNDLE. */
E2eeKey *e2ee_key_from_jwk (const char *json, gssize len, E2eeKeyExpect expect,
                            GError **error);
E2eeKey *e2ee_key_from_jwk_object (JsonObject *object, E2eeKeyExpect expect,
                                   GError **error);

/* Serialises as a compact JWK: {"kty","crv","x","y"[,"d"]}, plus "kid" and
 * "e2ee_v" when @with_meta, then "e2ee_sig" and "e2ee_pk" when @with_meta
 * and the key carries v2 attachments.  With @with_private the result holds the secret
 * scalar: free it with e2ee_string_free(). */
char *e2ee_key_to_jwk (const E2eeKey *key, gboolean with_private, gboolean with_meta);
JsonObject *e2ee_key_to_jwk_object (const E2eeKey *key, gboolean with_private,
                                    gboolean with_meta);

/* A new key with the public part only (same capabilities and v2
 * attachments). */
E2eeKey *e2ee_key_public_copy (const E2eeKey *key);

gboolean e2ee_key_has_private (const E2eeKey *key);
const guint8 *e2ee_key_get_x (const E2eeKey *key);
const guint8 *e2ee_key_get_y (const E2eeKey *key);

/* Capabilities advertised with this key (default E2EE_CAPS_SUPPORTED for a
 * generated key, E2EE_CAPS_V1 for an imported key without "e2ee_v").
 * Returns a new key sharing the point (and private part), with other caps;
 * it keeps the v2 attachments as long as @caps includes E2EE_CAPS_V2 and
 * drops them otherwise (v2 data of a key that does not speak v2 would be
 * refused by every parser). */
guint8 e2ee_key_get_caps (const E2eeKey *key);
E2eeKey *e2ee_key_with_caps (const E2eeKey *key, guint8 caps);

/* Protocol-v2 attachments published with a device key (PROTOCOL.md §3):
 * the device's ECDSA signing public key and its current signed prekey
 * record (e2ee-prekey.h).  They are not part of the thumbprint, the kid
 * or e2ee_key_equal().  Parsers check the signing point and the record's
 * length (E2EE_V2_RECORD_MIN..E2EE_V2_RECORD_MAX), label and format byte
 * only: the signature, identity and expiry are checked by whoever knows
 * the time and the pinned signing key (e2ee_prekey_verify).
 * Both are borrowed and NULL when the key has none; a key has both or
 * neither. */
#define E2EE_V2_SIGN_PUB_LEN (2 * E2EE_KEY_COORD_LEN)  /* X || Y */
#define E2EE_V2_RECORD_MIN 194
#define E2EE_V2_RECORD_MAX 201
const E2eeKey *e2ee_key_get_sign_pub (const E2eeKey *key);
GBytes *e2ee_key_get_prekey_record (const E2eeKey *key);
/* A new key sharing the point, private part and caps of @key, with the
 * given attachments (references taken; a private @sign_pub is reduced to
 * its public part), or none when both are NULL.  Giving one without the
 * other, a record of a wrong length, label or format, or a signing key
 * equal to @key's point is a programming error (g_return_val_if_fail).
 * A key with attachments always advertises v2: E2EE_CAPS_V2 is added to
 * the caps when missing. */
E2eeKey *e2ee_key_with_v2 (const E2eeKey *key, const E2eeKey *sign_pub, GBytes *record);

/* RFC 7638 thumbprint (SHA-256 of {"crv":"P-256","kty":"EC","x":..,"y":..}),
 * the kid (its unpadded base64url) and the 4-byte device id used on the wire. */
const guint8 *e2ee_key_get_thumbprint (const E2eeKey *key);
const char *e2ee_key_get_kid (const E2eeKey *key);
const guint8 *e2ee_key_get_device_id (const E2eeKey *key);

/* TRUE if both keys have the same public point. */
gboolean e2ee_key_equal (const E2eeKey *a, const E2eeKey *b);

/* ECDH: x-coordinate of d_local * Q_remote, as WebCrypto deriveBits(256)
 * and `openssl pkeyutl -derive` give it.  @local must have the private
 * part.  Uses libgcrypt's checked decrypt path with the scalar in secure
 * memory, so the double-and-add-always (constant-time) ladder is taken. */
gboolean e2ee_key_ecdh (const E2eeKey *local, const E2eeKey *remote,
                        guint8 out[E2EE_KEY_COORD_LEN], GError **error);


G_END_DECLS
