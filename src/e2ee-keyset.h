/* purple-e2ee — JWK Sets (RFC 7517 §5): the public keys one device
 * publishes for its account (its own first, then the account's other
 * devices it trusts).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-jwk.h"

G_BEGIN_DECLS

/* Most keys one JWK Set may hold (devices of one account). */
#define E2EE_KEYSET_MAX 16

/* JWK Set (RFC 7517 §5): {"keys":[{public JWK with kid and e2ee_v}, ...]}.
 * Parse returns a GPtrArray of E2eeKey (owning).  Strict: at most
 * E2EE_KEYSET_MAX keys, all public, no duplicates, kid = thumbprint. */
GPtrArray *e2ee_keyset_parse (const char *json, gssize len, GError **error);
char *e2ee_keyset_to_json (GPtrArray *keys);

G_END_DECLS
