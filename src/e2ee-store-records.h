/* purple-e2ee — the rows the session layer needs: accounts (identity key,
 * counter), buddies (policy, flags) and their devices (key, trust, replay
 * state, derived keys), read and written one buddy at a time so a change
 * costs the same whatever the number of buddies.
 *
 * With a seal (a passphrase), identity scalars and derived keys are
 * stored sealed (e2ee-seal.h) with the row's identity as associated data:
 * a sealed value copied into another row does not open.
 *
 * Each put/delete runs in its own transaction unless the caller opened one
 * with e2ee_store_begin(); when it returns TRUE the change is durable.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-keyring.h"
#include "e2ee-seal.h"
#include "e2ee-store.h"

G_BEGIN_DECLS

/* TRUE if the database is passphrase-protected; then @params (if not
 * NULL) receives what e2ee_seal_unlock() needs.  A database that was
 * sealed (meta 'sealed', set and cleared only by e2ee_records_reseal)
 * but has no seal row is E2EE_ERROR_KEYRING_CORRUPT: never opened as if
 * unprotected. */
gboolean e2ee_records_get_seal (E2eeStore *store, gboolean *is_protected,
                                E2eeSealSetting *params, GError **error);

/* Protects (@to set), changes or removes (@to NULL) the passphrase: every
 * secret is rewritten under @to in one transaction.  @from is the current
 * seal (NULL when not protected); if the database's seal row is another
 * (changed elsewhere), E2EE_ERROR_KEYRING_PASSPHRASE and nothing is done.
 * TRUE once committed: @to is then the seal; the WAL is truncated now or,
 * while another connection reads, after a later commit
 * (e2ee_store_checkpoint). */
gboolean e2ee_records_reseal (E2eeStore *store, const E2eeSeal *from, const E2eeSeal *to,
                              GError **error);

/* TRUE if @seal (NULL: none) is the one the database's seal row names;
 * else E2EE_ERROR_KEYRING_PASSPHRASE (another program set, changed or
 * removed the passphrase).  Every write checks it inside its transaction
 * so no value is written under a seal other than the database's. */
gboolean e2ee_records_seal_matches (E2eeStore *store, const E2eeSeal *seal, GError **error);

/* Opens a protected database: the seal for @passphrase, raised to the
 * minimum costs (re-sealing everything) when the stored ones are weaker.
 * NULL seal with TRUE: not protected. */
gboolean e2ee_records_unlock (E2eeStore *store, const char *passphrase, E2eeSeal **seal,
                              GError **error);

/* Adds or updates the account row: identity (private key), last_counter. */
gboolean e2ee_records_put_account (E2eeStore *store, const E2eeSeal *seal,
                                   const E2eeAccountRecord *account, GError **error);
/* Only last_counter: the cheap write before each envelope leaves. */
gboolean e2ee_records_put_counter (E2eeStore *store, const E2eeAccountRecord *account,
                                   GError **error);
/* The buddy's row and all its device rows (devices no longer listed are
 * deleted).  The account row must exist. */
gboolean e2ee_records_put_buddy (E2eeStore *store, const E2eeSeal *seal,
                                 const E2eeAccountRecord *account,
                                 const E2eeBuddyRecord *buddy, GError **error);
/* One device row of a stored buddy (replay state after a message). */
gboolean e2ee_records_put_device (E2eeStore *store, const E2eeSeal *seal,
                                  const E2eeAccountRecord *account,
                                  const E2eeBuddyRecord *buddy,
                                  const E2eeDeviceRecord *device, GError **error);
/* Renames a stored account (its buddies stay with it).  Its sealed values
 * name the account: put the account and its buddies again afterwards. */
gboolean e2ee_records_rename_account (E2eeStore *store, const char *protocol,
                                      const char *old_name, const char *new_name,
                                      GError **error);
gboolean e2ee_records_delete_buddy (E2eeStore *store, const E2eeAccountRecord *account,
                                    const char *name, GError **error);

/* Every account (E2eeAccountRecord*, free with g_ptr_array_unref), in
 * the order they were added; with @with_buddies all buddies are read
 * too, else none (read them with e2ee_records_load_buddy). */
GPtrArray *e2ee_records_load_accounts (E2eeStore *store, const E2eeSeal *seal,
                                       gboolean with_buddies, GError **error);
/* One buddy as stored (a new record; free with
 * e2ee_records_buddy_free), NULL with no error if absent. */
E2eeBuddyRecord *e2ee_records_load_buddy (E2eeStore *store, const E2eeSeal *seal,
                                          const E2eeAccountRecord *account,
                                          const char *name, GError **error);
/* Reads @name again into @account's cache (replacing or removing the
 * cached record): used after e2ee_store_changed_elsewhere(). */
gboolean e2ee_records_refresh_buddy (E2eeStore *store, const E2eeSeal *seal,
                                     E2eeAccountRecord *account, const char *name,
                                     GError **error);
void e2ee_records_buddy_free (E2eeBuddyRecord *buddy);

/* A key from raw coordinates (and scalar @d, or NULL for a public key)
 * with @caps; errors are E2EE_ERROR_KEYRING_CORRUPT. */
E2eeKey *e2ee_records_make_key (const guint8 *x, const guint8 *y, const guint8 *d,
                                guint caps, GError **error);
/* The private scalar of @key. */
gboolean e2ee_records_key_scalar (const E2eeKey *key, guint8 d[32], GError **error);

G_END_DECLS
