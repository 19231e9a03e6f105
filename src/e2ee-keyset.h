/* purple-e2ee — the forms of a published key set: JWK Sets (RFC 7517 §5)
 * of the public keys one device publishes for its account (its own
 * first, then the account's other devices it trusts), the compact binary
 * key set, and the protocol-v2 attachments of each key (PROTOCOL.md §3).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-jwk.h"

G_BEGIN_DECLS

/* Most keys one JWK Set may hold (devices of one account). */
#define E2EE_KEYSET_MAX 16

/* JWK Set (RFC 7517 §5): {"keys":[{public JWK with kid and e2ee_v}, ...]}.
 * Parse returns a GPtrArray of E2eeKey (owning).  Strict: at most
 * E2EE_KEYSET_MAX keys, all public, no duplicates, kid = thumbprint.
 * Entries keep their v2 attachments (an entry's own error keeps its code,
 * E2EE_ERROR_V2_BUNDLE for a bad attachment). */
GPtrArray *e2ee_keyset_parse (const char *json, gssize len, GError **error);
char *e2ee_keyset_to_json (GPtrArray *keys);

/* Rules every published set follows, whatever form carried it: 1 to
 * E2EE_KEYSET_MAX keys, each with E2EE_CAPS_V1, no key twice (same point).
 * FALSE with E2EE_ERROR_OFFER otherwise. */
gboolean e2ee_keyset_check (GPtrArray *keys, GError **error);
/* The same as a predicate, for g_return_val_if_fail in the encoders. */
gboolean e2ee_keyset_usable (GPtrArray *keys);

/* Compact binary key set, carried as unpadded base64url:
 *   version 0x01: 0x01 || per key: caps (1) || x (32) || y (32)
 *   version 0x02: 0x02 || per key: caps (1) || x (32) || y (32)
 *                 [|| sx (32) || sy (32) || u8 len || prekey record (len)]
 * where the bracketed part is present exactly when caps has E2EE_CAPS_V2.
 * encode() writes 0x02 when any key carries v2 attachments (then a key
 * without them is written with E2EE_CAPS_V2 cleared), else 0x01, so a set
 * without v2 data is byte-identical to its version-1 form.  decode() reads
 * exactly @len characters; both versions; strict: a caps byte is read
 * through its low four bits, a partial key, trailing bytes, more than
 * E2EE_KEYSET_MAX keys, a record length outside 194..201, a bad record
 * label or format, a bad signing point, a signing key equal to its
 * identity key, a version-2 form without any v2 data (not canonical) and
 * the set rules above all give NULL with E2EE_ERROR_OFFER (the cause's
 * message kept). */
#define E2EE_KEYSET_COMPACT_KEY_LEN (1 + 2 * E2EE_KEY_COORD_LEN)
#define E2EE_KEYSET_COMPACT_V2_KEY_MAX (E2EE_KEYSET_COMPACT_KEY_LEN \
                                        + E2EE_V2_SIGN_PUB_LEN + 1 + E2EE_V2_RECORD_MAX)
#define E2EE_KEYSET_COMPACT_MAX (1 + E2EE_KEYSET_MAX * E2EE_KEYSET_COMPACT_V2_KEY_MAX)
char *e2ee_keyset_compact_encode (GPtrArray *keys);
GPtrArray *e2ee_keyset_compact_decode (const char *b64, gsize len, GError **error);

/* For e2ee-jwk.c: the v2 members of a JWK.  "e2ee_sig" is the unpadded
 * base64url of the signing key's X || Y (64 bytes), "e2ee_pk" that of the
 * prekey record.  members_parse() reads them from @obj for the key
 * @identity (already parsed, caps set): both or neither, 2 among its caps,
 * strings of canonical base64url, a valid signing point other than
 * @identity's, a record of the right length, label and format; all
 * failures E2EE_ERROR_V2_BUNDLE.  Sets both outputs (NULL when absent). */
gboolean e2ee_keyset_v2_members_parse (JsonObject *obj, const E2eeKey *identity,
                                       E2eeKey **sign_pub, GBytes **record, GError **error);
/* Add "e2ee_sig" then "e2ee_pk" when @key has attachments: to a JsonObject,
 * or as text (",\"e2ee_sig\":\"…\",\"e2ee_pk\":\"…\"") to @out. */
void e2ee_keyset_v2_members_add (JsonObject *obj, const E2eeKey *key);
void e2ee_keyset_v2_members_append (GString *out, const E2eeKey *key);
/* Record length in E2EE_V2_RECORD_MIN..MAX, label and format byte
 * (E2EE_ERROR_V2_BUNDLE). */
gboolean e2ee_keyset_v2_record_check (const guint8 *record, gsize len, GError **error);

G_END_DECLS
