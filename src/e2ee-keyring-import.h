/* purple-e2ee — getting keys into and out of the keyring database:
 * the version 1 keyring.json (imported once, on first start) and the
 * portable JSON backup (identities, pinned keys, trust; never session or
 * replay state).  Formats in docs/PROTOCOL.md §9.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-seal.h"
#include "e2ee-store.h"

G_BEGIN_DECLS

#define E2EE_BACKUP_FORMAT "purple-e2ee-backup"
#define E2EE_BACKUP_VERSION 1
/* Larger files are refused before they are read (E2EE_ERROR_KEYRING_LIMIT). */
#define E2EE_IMPORT_MAX_BYTES (256u * 1024 * 1024)

/* Imports the version 1 keyring file @json_path into @store (which must
 * have no account: E2EE_ERROR_KEYRING_NOT_EMPTY) in one transaction,
 * secrets sealed with @seal when set.  A protected file needs its
 * @passphrase.  Derived keys are not carried over (they are recomputed);
 * replay state is.  After the commit the file and its "~" backup and
 * ".lock" are deleted, so no unprotected copy stays beside the database;
 * a crash between the two is finished by the next call (the imported
 * file's digest is recorded).  *@imported tells whether anything was
 * done; a missing file is no error. */
gboolean e2ee_keyring_import_legacy (E2eeStore *store, const E2eeSeal *seal,
                                     const char *json_path, const char *passphrase,
                                     gboolean *imported, GError **error);

/* Version 1 trusted the devices of one's own account on first use, so a
 * device a server injected there kept receiving everything.  Every own
 * device (a device in the record named after the account, other than the
 * account's identity) trusted on first use or verified becomes
 * UNDECIDED: the user confirms each again.  Each account's
 * own_reconfirm counts them (for the host to announce); returns the total.
 * Both imports (keyring.json and the backup) run it before writing.
 * @buddies: per account, a GPtrArray of E2eeBuddyRecord*. */
guint e2ee_keyring_import_reconfirm_own (GPtrArray *accounts, GPtrArray *buddies);

/* The backup: a JSON document with each account's private identity key
 * and each buddy's devices with their trust.  Holds private keys: the
 * caller writes it 0600. */
char *e2ee_keyring_export (E2eeStore *store, const E2eeSeal *seal, GError **error);

/* Restores a backup into a store without accounts.  Replay state starts
 * at @now_counter for every device (pass e2ee_envelope_clock_counter()):
 * an envelope sealed before the restore is refused, so none is accepted
 * twice.  Malformed input: E2EE_ERROR_KEYRING_CORRUPT (nothing written). */
gboolean e2ee_keyring_import_backup (E2eeStore *store, const E2eeSeal *seal,
                                     const char *json, gsize len, guint64 now_counter,
                                     GError **error);

G_END_DECLS
