/* purple-e2ee — internals shared by the row writer (e2ee-store-records.c),
 * the seal (e2ee-store-seal.c) and the reader (e2ee-store-read.c).  Not for
 * other modules.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-store-records.h"

G_BEGIN_DECLS

/* Derived keys stored per device: send || recv. */
#define KEYS_LEN (2 * E2EE_KEY_LEN)

/* The associated data naming the row of an identity scalar / of a
 * device's derived keys. */
GByteArray *e2ee_rows_aad_identity (const char *protocol, const char *name, const E2eeKey *key);
GByteArray *e2ee_rows_aad_keys (const E2eeAccountRecord *account, const char *buddy,
                                const E2eeKey *key, guint local_caps, guint remote_caps);
/* Column @col as a blob of exactly @want bytes, else NULL. */
const guint8 *e2ee_rows_blob (sqlite3_stmt *st, int col, gsize want);
/* E2EE_ERROR_KEYRING_CORRUPT naming @what; returns FALSE. */
gboolean e2ee_rows_bad (GError **error, const char *what);
/* The row id of @account, -1 with @error if not stored. */
gint64 e2ee_rows_account_id (E2eeStore *store, const E2eeAccountRecord *account, GError **error);
/* Steps a statement without results and resets it. */
gboolean e2ee_rows_step_done (E2eeStore *store, sqlite3_stmt *st, GError **error);
/* The rows themselves, inside the caller's transaction. */
gboolean e2ee_rows_write_account (E2eeStore *store, const E2eeSeal *seal,
                                  const E2eeAccountRecord *account, GError **error);
gint64 e2ee_rows_write_buddy_row (E2eeStore *store, const E2eeAccountRecord *account,
                                  const E2eeBuddyRecord *buddy, GError **error);
gboolean e2ee_rows_write_device (E2eeStore *store, const E2eeSeal *seal,
                                 const E2eeAccountRecord *account, const char *buddy,
                                 gint64 buddy_id, gint pos, const E2eeDeviceRecord *dev,
                                 GError **error);

G_END_DECLS
