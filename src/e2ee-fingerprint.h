/* purple-e2ee — what people compare: fingerprints and safety numbers.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-jwk.h"

G_BEGIN_DECLS

/* The thumbprint as 16 groups of 4 upper-case hex digits, space-separated. */
char *e2ee_fingerprint_hex (const E2eeKey *key);

/* The safety number of two keys (PROTOCOL.md §3): 60 decimal digits in 12
 * groups of 5, the same whichever key comes first; NULL only if libgcrypt
 * cannot hash.  One number per (own key, device): half of it (30 digits)
 * comes from our own key and is the same for every device of every buddy,
 * so a user must compare all 60 digits, never a part. */
char *e2ee_safety_number (const E2eeKey *a, const E2eeKey *b);

G_END_DECLS
