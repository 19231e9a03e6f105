/* purple-e2ee — publishing keys as text: profile block, status tag and the
 * in-band offer/answer for protocols without profiles (PROTOCOL.md §6).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-keyset.h"

G_BEGIN_DECLS

#define E2EE_OFFER_PREFIX "?E2K:"
#define E2EE_ANSWER_PREFIX "?E2A:"
/* The human-readable part of an offer sent in fragments (a short line):
 * "?E2K " and the offer's sentence.  Plugins show nothing for it. */
#define E2EE_OFFER_NOTE_PREFIX "?E2K "
#define E2EE_STATUS_TAG_OPEN "[e2ee:"
#define E2EE_PROFILE_BEGIN "-----BEGIN PURPLE-E2EE KEYS-----"
#define E2EE_PROFILE_END "-----END PURPLE-E2EE KEYS-----"

typedef enum {
  E2EE_OFFER_KIND_OFFER,   /* please answer with your keys */
  E2EE_OFFER_KIND_ANSWER,  /* reply to an offer; never answered */
} E2eeOfferKind;

/* All parsers below return a new GPtrArray of E2eeKey (public, owning),
 * or NULL with E2EE_ERROR_OFFER for every problem: syntax, base64url, key
 * count outside 1..E2EE_KEYSET_MAX, a point not on P-256 (message of the
 * underlying jwk/b64 error kept), bad v2 attachments (signing key, prekey
 * record: e2ee-jwk.h), caps without E2EE_CAPS_V1, or the same key listed
 * twice.  Keys keep their v2 attachments.  Encoders take 1..E2EE_KEYSET_MAX
 * keys whose caps include E2EE_CAPS_V1 (else g_return_val_if_fail) and
 * return new strings.  Nothing here is secret: only public data. */

/* Compact binary key set, version 0x01 or 0x02 (e2ee-keyset.h), carried
 * as unpadded base64url.  decode() reads exactly @len characters and
 * refuses any other version byte, a partial key or trailing bytes.
 * 1 key: 88 characters (v1), 443 (v2, 8 versions in the record: at most);
 * E2EE_KEYSET_MAX keys: 1388 (v1), 7063 (v2, at most). */
char *e2ee_offer_compact_encode (GPtrArray *keys);
GPtrArray *e2ee_offer_compact_decode (const char *b64, gsize len, GError **error);

/* Profile block, lines joined by "\n", no final newline:
 *   E2EE_PROFILE_BEGIN
 *   a human-readable sentence ending in '.' (any text that ends in a
 *     character outside base64url, so the key data can be told from it)
 *   the JWK Set JSON (e2ee_keyset_to_json) as base64url, 64 per line
 *   E2EE_PROFILE_END
 * profile_replace() returns @profile (NULL = "") with our block replaced
 * in place, or appended after a "\n" when there is none; with @keys NULL
 * the block goes, with the one "\n" that joined it.  The user's text is
 * kept byte for byte, so replace (replace (p, keys), NULL) == p.  It works
 * on the text as stored: a block missing its end line extends to the end
 * of the text, and extra blocks are removed. */
char *e2ee_offer_profile_block (GPtrArray *keys);
char *e2ee_offer_profile_replace (const char *profile, GPtrArray *keys);
/* Finds and parses our block inside @profile, which may be plain text or
 * HTML: tags (<br>, <p>, ...) and entities (&amp;, &nbsp;, &#45;, ...) are
 * undone, up to three levels of escaping inside the block, and all white
 * space is ignored, so lines joined, split or re-wrapped still parse.
 * Everything outside the block is ignored.  NULL with E2EE_ERROR_OFFER if
 * there is no block, no end line, more than one block, or a bad payload. */
GPtrArray *e2ee_offer_profile_parse (const char *profile, GError **error);

/* Status tag "[e2ee:<compact>]".  status_replace() (@status NULL = "")
 * replaces an existing tag in place, or appends the tag after a space;
 * with @keys NULL it removes the tag and the space that joined it.  A tag
 * cut short (no ']', e.g. by a server's length limit) is replaced or
 * removed too.  status_parse() refuses a missing, cut or repeated tag. */
char *e2ee_offer_status_tag (GPtrArray *keys);
char *e2ee_offer_status_replace (const char *status, GPtrArray *keys);
GPtrArray *e2ee_offer_status_parse (const char *status, GError **error);

/* In-band message: "?E2K:<compact> <human line>" (offer) or "?E2A:..."
 * (answer).  One line of printable ASCII without <>&"' (1 key: about 200
 * bytes; E2EE_KEYSET_MAX keys: about 1500, so fragment it on IRC).
 * detect() and parse() skip leading white space; the key data ends at
 * white space and the human part after it is ignored (it may have been
 * reworded).  @kind (nullable) is set only on success. */
char *e2ee_offer_inband (E2eeOfferKind kind, GPtrArray *keys);
gboolean e2ee_offer_inband_detect (const char *text);
/* The note line for people without the plugin, sent before an offer that
 * travels in fragments, and its test. */
char *e2ee_offer_note (void);
gboolean e2ee_offer_note_detect (const char *text);
GPtrArray *e2ee_offer_inband_parse (const char *text, E2eeOfferKind *kind,
                                    GError **error);

G_END_DECLS
