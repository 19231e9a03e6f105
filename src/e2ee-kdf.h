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

/* Account identifiers enter the derivation (PROTOCOL.md §4), so a key is
 * valid for exactly one (sender account, recipient account) pair: an
 * envelope relayed under another name does not authenticate.  An
 * identifier is "<protocol>:<normalised name>", 3..E2EE_KDF_ACCOUNT_MAX
 * bytes of UTF-8 without control characters, with a non-empty protocol and
 * name around the first ':'. */
#define E2EE_KDF_ACCOUNT_MAX 1024

/* The identifier for @name on @protocol (e.g. "prpl-jabber" and
 * "alice@localhost" give "prpl-jabber:alice@localhost").  Free with g_free. */
char *e2ee_kdf_account_id (const char *protocol, const char *name);

/* TRUE if @account is a well-formed identifier (see above); else FALSE
 * with E2EE_ERROR_KDF_PARAM. */
gboolean e2ee_kdf_account_valid (const char *account, GError **error);

/* The derivation revision.  Device records cache derived keys with their
 * capabilities; the cached bytes carry the revision in their high nibble
 * (e2ee_kdf_cache_caps), so keys derived by an earlier revision (0: no
 * account binding) are never taken for current ones. */
#define E2EE_KDF_REVISION 1
#define e2ee_kdf_cache_caps(caps) ((guint8) (((caps) & 0x0fu) | (E2EE_KDF_REVISION << 4)))

/* The key for messages from @sender (on account @sender_account) to
 * @recipient (on @recipient_account), sealed by a sender advertising
 * @caps (PROTOCOL.md §4):
 *   Z    = ECDH x-coordinate
 *   K    = HKDF(salt = "purple-e2ee/v1", ikm = Z,
 *               info = "purple-e2ee/v1 message key" || caps ||
 *                      thumbprint(sender) || thumbprint(recipient) ||
 *                      u16be(len) || sender_account ||
 *                      u16be(len) || recipient_account, L = 32)
 * Exactly one of @sender, @recipient holds the private part (ours). */
gboolean e2ee_kdf_direction_key (const E2eeKey *sender, const char *sender_account,
                                 const E2eeKey *recipient, const char *recipient_account,
                                 guint8 caps, guint8 out[E2EE_KEY_LEN],
                                 GError **error);

/* Both directions from one ECDH: @out_send = K(local -> remote, local_caps),
 * @out_recv = K(remote -> local, remote_caps). */
gboolean e2ee_kdf_pair_keys (const E2eeKey *local, const char *local_account,
                             const E2eeKey *remote, const char *remote_account,
                             guint8 local_caps, guint8 remote_caps,
                             guint8 out_send[E2EE_KEY_LEN],
                             guint8 out_recv[E2EE_KEY_LEN], GError **error);

G_END_DECLS
