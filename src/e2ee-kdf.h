/* purple-e2ee — HKDF-SHA256 (RFC 5869) and the pairwise key schedule.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-jwk.h"

G_BEGIN_DECLS

#define E2EE_KEY_LEN 32

/* RFC 5869 HKDF-SHA256 on libgcrypt's HMAC.  @out_len in [1, 255*32].
 * An empty salt means 32 zero bytes, as the RFC says. */
gboolean e2ee_hkdf_sha256 (const guint8 *salt, gsize salt_len,
                           const guint8 *ikm, gsize ikm_len,
                           const guint8 *info, gsize info_len,
                           guint8 *out, gsize out_len, GError **error);

/* The key for messages from @sender to @recipient, sealed by a sender
 * advertising @caps (PROTOCOL.md §4):
 *   Z    = ECDH x-coordinate
 *   K    = HKDF(salt = "purple-e2ee/v1", ikm = Z,
 *               info = "purple-e2ee/v1 message key" || caps ||
 *                      thumbprint(sender) || thumbprint(recipient), L = 32)
 * Exactly one of @sender, @recipient holds the private part (ours). */
gboolean e2ee_kdf_direction_key (const E2eeKey *sender, const E2eeKey *recipient,
                                 guint8 caps, guint8 out[E2EE_KEY_LEN],
                                 GError **error);

/* Both directions from one ECDH: @out_send = K(local -> remote, local_caps),
 * @out_recv = K(remote -> local, remote_caps). */
gboolean e2ee_kdf_pair_keys (const E2eeKey *local, const E2eeKey *remote,
                             guint8 local_caps, guint8 remote_caps,
                             guint8 out_send[E2EE_KEY_LEN],
                             guint8 out_recv[E2EE_KEY_LEN], GError **error);

G_END_DECLS
