/* purple-e2ee — protocol v2 state between the session layer and the
 * keyring database: values written here are pending until the keyring's
 * next save, which writes them in its own transaction (so a session's
 * state reaches the disk in the same commit as the trust and policy
 * changes that go with it, and before the message that needed it leaves).
 * Reads see pending values first, then the database.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-keyring.h"
#include "e2ee-store-v2.h"

G_BEGIN_DECLS

typedef struct _E2eeV2Store E2eeV2Store;

/* Joins @keyring's saves (e2ee_keyring_set_save_func); @keyring must
 * outlive the result. */
E2eeV2Store *e2ee_v2store_new (E2eeKeyring *keyring);
void e2ee_v2store_free (E2eeV2Store *v2);

/* A new reference to the value of the row, or NULL (absent: @error not
 * set; unreadable: @error set).  Values hold secrets: e2ee_bytes_free. */
GBytes *e2ee_v2store_get (E2eeV2Store *v2, E2eeAccountRecord *account, E2eeStoreV2Kind kind,
                          const char *name, const guint8 *ref, gsize ref_len, GError **error);
/* Sets the row's value (a ref is taken) for the next save. */
void e2ee_v2store_put (E2eeV2Store *v2, E2eeAccountRecord *account, E2eeStoreV2Kind kind,
                       const char *name, const guint8 *ref, gsize ref_len, GBytes *value);
/* A save found that another program changed a row since this one read
 * it: the save fails (E2EE_ERROR_KEYRING_LOCKED), this program's pending
 * value of the row is dropped, and @func is told so that whatever was
 * made from the row is forgotten and read again. */
typedef void (*E2eeV2StoreConflictFunc) (E2eeAccountRecord *account, E2eeStoreV2Kind kind,
                                         const char *name, const guint8 *ref, gsize ref_len,
                                         gpointer data);
void e2ee_v2store_set_conflict_func (E2eeV2Store *v2, E2eeV2StoreConflictFunc func,
                                     gpointer data);
/* Rows waiting for a save. */
guint e2ee_v2store_pending (E2eeV2Store *v2);

G_END_DECLS
