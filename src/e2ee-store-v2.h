/* purple-e2ee — the keyring database's rows for protocol v2 state: this
 * device's signing key and prekeys (kind OWN) and, per buddy device, the
 * pinned signing key, the last verified prekey and the ratchet sessions
 * (kind PEER).  Values are opaque to the store (e2ee-v2own.h,
 * e2ee-v2peer.h write them) and sealed under the keyring's passphrase
 * when it has one, with the row's identity as associated data, so a value
 * moved to another row does not open.  docs/PROTOCOL.md §9.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-keyring.h"
#include "e2ee-seal.h"
#include "e2ee-store.h"

G_BEGIN_DECLS

typedef enum {
  E2EE_STORE_V2_OWN = 1,
  E2EE_STORE_V2_PEER = 2,
} E2eeStoreV2Kind;

/* Values are at most this long (a peer row holds up to three session
 * blobs of at most ~96 kB each). */
#define E2EE_STORE_V2_VALUE_MAX (512u * 1024)

/* The row of @account / @kind / @name / @ref (the device thumbprint, or
 * nothing for OWN): *@out a new GBytes holding the opened value (a
 * secret: free with e2ee_bytes_free), or NULL when there is no such row.
 * A value that does not open: E2EE_ERROR_KEYRING_CORRUPT. */
gboolean e2ee_store_v2_get (E2eeStore *store, const E2eeSeal *seal,
                            const E2eeAccountRecord *account, E2eeStoreV2Kind kind,
                            const char *name, const guint8 *ref, gsize ref_len,
                            GBytes **out, GError **error);
/* Writes (or with @value NULL deletes) the row, inside the caller's
 * transaction.  The account row must exist. */
gboolean e2ee_store_v2_put (E2eeStore *store, const E2eeSeal *seal,
                            const E2eeAccountRecord *account, E2eeStoreV2Kind kind,
                            const char *name, const guint8 *ref, gsize ref_len,
                            GBytes *value, GError **error);
/* Rewrites every v2 value from the seal @from to @to, inside the caller's
 * transaction (a passphrase change). */
gboolean e2ee_store_v2_reseal (E2eeStore *store, const E2eeSeal *from, const E2eeSeal *to,
                               GError **error);

G_END_DECLS
