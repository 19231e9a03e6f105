/* purple-e2ee — publishing keys as text: profile block, status tag and the
 * in-band offer/answer for protocols without profiles (PROTOCOL.md §6).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-jwk.h"

G_BEGIN_DECLS

#define E2EE_OFFER_PREFIX "?E2K:"
#define E2EE_ANSWER_PREFIX "?E2A:"
#define E2EE_STATUS_TAG_OPEN "[e2ee:"
#define E2EE_PROFILE_BEGIN "-----BEGIN PURPLE-E2EE KEYS-----"
#define E2EE_PROFILE_END "-----END PURPLE-E2EE KEYS-----"

typedef enum {
  E2EE_OFFER_KIND_OFFER,   /* please answer with your keys */
  E2EE_OFFER_KIND_ANSWER,  /* reply to an offer; never answered */
} E2eeOfferKind;

/* Compact binary key set: 0x01 || per key: caps(1) || x(32) || y(32),
 * carried as unpadded base64url. */
char *e2ee_offer_compact_encode (GPtrArray *keys);
GPtrArray *e2ee_offer_compact_decode (const char *b64, gsize len, GError **error);

/* Profile block: begin line, a human-readable line, the JWK Set JSON
 * (base64url, wrapped), end line.  replace_in_profile() returns @profile
 * with our block replaced or appended (the user's own text kept); with
 * @keys NULL it removes the block. */
char *e2ee_offer_profile_block (GPtrArray *keys);
char *e2ee_offer_profile_replace (const char *profile, GPtrArray *keys);
/* Finds and parses our block inside @profile (which may be HTML).
 * Returns NULL with E2EE_ERROR_OFFER if absent or malformed. */
GPtrArray *e2ee_offer_profile_parse (const char *profile, GError **error);

/* Status tag "[e2ee:<compact>]", appended to / removed from the user's
 * own status text without disturbing it. */
char *e2ee_offer_status_tag (GPtrArray *keys);
char *e2ee_offer_status_replace (const char *status, GPtrArray *keys);
GPtrArray *e2ee_offer_status_parse (const char *status, GError **error);

/* In-band message: "?E2K:<compact> <human line>" (offer) or "?E2A:..."
 * (answer).  One line, ASCII, no markup characters. */
char *e2ee_offer_inband (E2eeOfferKind kind, GPtrArray *keys);
gboolean e2ee_offer_inband_detect (const char *text);
GPtrArray *e2ee_offer_inband_parse (const char *text, E2eeOfferKind *kind,
                                    GError **error);

G_END_DECLS
