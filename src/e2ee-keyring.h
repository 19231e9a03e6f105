/* purple-e2ee — the keyring file: per local account this installation's
 * identity key, and per buddy the pinned device keys with trust, replay
 * state and derived keys.  Format in docs/PROTOCOL.md §8.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-jwk.h"
#include "e2ee-kdf.h"

G_BEGIN_DECLS

#define E2EE_KEYRING_FORMAT_VERSION 1
#define E2EE_KEYRING_MAX_BYTES (256u * 1024 * 1024)
/* How long load and save wait for another process's lock on path.lock
 * before giving up with E2EE_ERROR_KEYRING_LOCKED. */
#define E2EE_KEYRING_LOCK_TIMEOUT_MS 5000

typedef enum {
  E2EE_TRUST_UNDECIDED = 0, /* new device of a known buddy: not used until trusted */
  E2EE_TRUST_TOFU,          /* pinned on first use */
  E2EE_TRUST_VERIFIED,      /* safety number compared */
  E2EE_TRUST_REJECTED,      /* the user refused it */
} E2eeTrust;

typedef enum {
  E2EE_POLICY_DEFAULT = 0,  /* follow the global policy */
  E2EE_POLICY_OFF,
  E2EE_POLICY_OPPORTUNISTIC,
  E2EE_POLICY_REQUIRED,
} E2eePolicy;

typedef struct {
  E2eeKey *key;                 /* public key (with caps), owned */
  E2eeTrust trust;
  gint64 first_seen;            /* unix seconds */
  gint64 last_seen;
  /* Replay state for envelopes from this device: highest counter accepted
   * and a bitmap of the 64 counters below it (bit i = high - 1 - i seen). */
  gboolean replay_init;
  guint64 replay_high;
  guint64 replay_window;
  /* Derived-key cache (secret): valid when have_keys and the caps match. */
  gboolean have_keys;
  guint8 keys_local_caps;
  guint8 keys_remote_caps;
  guint8 k_send[E2EE_KEY_LEN];
  guint8 k_recv[E2EE_KEY_LEN];
} E2eeDeviceRecord;

typedef struct {
  char *name;                   /* normalised buddy name */
  E2eePolicy policy;
  GPtrArray *devices;           /* E2eeDeviceRecord*, owned */
  gboolean key_changed;         /* pinned keys replaced: sending blocked */
  gboolean had_encrypted;       /* plaintext from this buddy is a downgrade */
  /* "had_key" is not a field: device records are never removed (a rejected
   * device stays, as REJECTED) except by e2ee_context_reset, so a buddy
   * has had a key exactly when devices->len > 0.  Keep it that way. */
} E2eeBuddyRecord;

typedef struct {
  char *protocol;               /* e.g. "prpl-jabber" */
  char *name;                   /* normalised account name */
  E2eeKey *identity;            /* this installation's key pair, owned */
  guint64 last_counter;         /* highest envelope counter sent */
  GHashTable *buddies;          /* name -> E2eeBuddyRecord*, owned; the
                                   account's own name holds its other devices */
  /* In memory only, never persisted (do not carry into the file): TRUE
   * while a newly generated identity has not been saved successfully.
   * Such an identity is never published nor used (the session refuses
   * with E2EE_ERROR_IDENTITY_UNSAVED); every loaded identity is saved. */
  gboolean identity_unsaved;
} E2eeAccountRecord;

typedef struct _E2eeKeyring E2eeKeyring;

/* An empty keyring that will be saved at @path. */
E2eeKeyring *e2ee_keyring_new (const char *path);

/* Loads @path.  A missing file (and no backup) gives an empty keyring.  A
 * file others can read is refused (E2EE_ERROR_KEYRING_PERMISSIONS); a
 * corrupt one is E2EE_ERROR_KEYRING_CORRUPT and is left as it is; a newer
 * format is E2EE_ERROR_KEYRING_VERSION.  If the file is protected,
 * @passphrase is needed (E2EE_ERROR_KEYRING_PASSPHRASE if wrong or NULL). */
E2eeKeyring *e2ee_keyring_load (const char *path, const char *passphrase,
                                GError **error);
/* TRUE if the file at @path exists and its private keys are passphrase-protected. */
gboolean e2ee_keyring_file_is_protected (const char *path);

/* Writes atomically: temp file (0600) in the same folder, fsync, the old
 * file kept as path~ (backup), rename, fsync the folder; under an
 * exclusive lock on path.lock.  On failure the old file is intact. */
gboolean e2ee_keyring_save (E2eeKeyring *keyring, GError **error);

void e2ee_keyring_free (E2eeKeyring *keyring);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeKeyring, e2ee_keyring_free)

const char *e2ee_keyring_get_path (const E2eeKeyring *keyring);
/* Protects the secrets (identity scalars "d" and derived keys) with a
 * passphrase: they move into one "sealed" member, AES-256-GCM under a key
 * from Argon2id (t=3, 64 MiB, p=1; costs recorded in the file), with the
 * clear part of the file as associated data, so editing it (trust, replay
 * state, devices) is detected.  Runs the KDF once here (~0.5 s); saves
 * reuse the derived key, never the passphrase, which is not kept.  An
 * empty passphrase is E2EE_ERROR_KEYRING_PASSPHRASE.
 * Test-only: with E2EE_TEST_FAST_KDF=1 in the environment the costs are
 * trivial (t=1, 64 KiB); never set it outside the unit tests.
 * NULL removes the protection.  Takes effect at the next save. */
gboolean e2ee_keyring_set_passphrase (E2eeKeyring *keyring, const char *passphrase,
                                      GError **error);
gboolean e2ee_keyring_is_protected (const E2eeKeyring *keyring);

/* Accounts (borrowed pointers, valid until the keyring is freed). */
E2eeAccountRecord *e2ee_keyring_lookup_account (E2eeKeyring *keyring,
                                                const char *protocol,
                                                const char *name);
/* Adds an account with @identity (a private key; a ref is taken). */
E2eeAccountRecord *e2ee_keyring_add_account (E2eeKeyring *keyring,
                                             const char *protocol,
                                             const char *name,
                                             E2eeKey *identity);
/* All accounts, in insertion order (borrowed). */
GPtrArray *e2ee_keyring_get_accounts (E2eeKeyring *keyring);

/* A free-standing account record (for the database layer); @identity may
 * be NULL, else a ref is taken. */
E2eeAccountRecord *e2ee_account_record_new (const char *protocol, const char *name,
                                            E2eeKey *identity);
void e2ee_account_record_free (E2eeAccountRecord *account);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeAccountRecord, e2ee_account_record_free)

E2eeBuddyRecord *e2ee_account_lookup_buddy (E2eeAccountRecord *account, const char *name);
E2eeBuddyRecord *e2ee_account_ensure_buddy (E2eeAccountRecord *account, const char *name);
gboolean e2ee_account_remove_buddy (E2eeAccountRecord *account, const char *name);

/* Takes a ref on @key. */
E2eeDeviceRecord *e2ee_device_record_new (E2eeKey *key, E2eeTrust trust, gint64 now);
void e2ee_device_record_free (E2eeDeviceRecord *device);
/* Finds a device by public key / by kid / by wire id (first match from @start). */
E2eeDeviceRecord *e2ee_buddy_find_device (E2eeBuddyRecord *buddy, const E2eeKey *key);
E2eeDeviceRecord *e2ee_buddy_find_device_by_kid (E2eeBuddyRecord *buddy, const char *kid);

/* NULL (to_string) / FALSE (from_string) for values outside the enums. */
const char *e2ee_trust_to_string (E2eeTrust trust);
gboolean e2ee_trust_from_string (const char *text, E2eeTrust *out);
const char *e2ee_policy_to_string (E2eePolicy policy);
gboolean e2ee_policy_from_string (const char *text, E2eePolicy *out);

G_END_DECLS
