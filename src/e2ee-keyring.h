/* purple-e2ee — the keyring: per local account this installation's
 * identity key, and per buddy the pinned device keys with trust, replay
 * state and derived keys, kept in memory and written through to the
 * keyring database (e2ee-store.h; docs/PROTOCOL.md §9).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-jwk.h"
#include "e2ee-kdf.h"
#include "e2ee-replay.h"

G_BEGIN_DECLS

/* Version of the keyring.json format imported on first start. */
#define E2EE_KEYRING_FORMAT_VERSION 1
/* Larger keyring.json files are refused (E2EE_ERROR_KEYRING_LIMIT). */
#define E2EE_KEYRING_MAX_BYTES (256u * 1024 * 1024)

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
  /* In memory only: the last 64 accepted messages (e2ee-replay.h), set up
   * from the three fields above, which stay the persisted form. */
  E2eeReplayWindow replay_recent;
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
  guint64 store_epoch;          /* in memory only: when last read from the database */
  /* "had_key" is not a field: device records are never removed (a rejected
   * device stays, as REJECTED; e2ee_context_reset rejects every device and
   * keeps them), so a buddy has had a key exactly when devices->len > 0 or
   * key_changed is set (a renamed IRC nick: e2ee_context_mark_had_key).
   * Keep it that way. */
} E2eeBuddyRecord;

typedef struct {
  char *protocol;               /* e.g. "prpl-jabber" */
  char *name;                   /* normalised account name */
  E2eeKey *identity;            /* this installation's key pair, owned */
  guint64 last_counter;         /* highest envelope counter sent */
  /* How many devices of the account's own record an import (keyring.json
   * or a backup) set back from trusted to UNDECIDED, so the user confirms
   * each again: the host announces it once and sets it to 0 (saved like
   * any change).  Stored in the account row. */
  guint own_reconfirm;
  GHashTable *buddies;          /* name -> E2eeBuddyRecord*, owned; the
                                   account's own name holds its other devices */
  /* In memory only, never persisted (do not carry into the file): TRUE
   * while a newly generated identity has not been saved successfully.
   * Such an identity is never published nor used (the session refuses
   * with E2EE_ERROR_IDENTITY_UNSAVED); every loaded identity is saved. */
  gboolean identity_unsaved;
  /* In memory only: the keyring holding this record (NULL for a
   * free-standing one), so a lookup sees other processes' changes. */
  struct _E2eeKeyring *keyring;
} E2eeAccountRecord;

typedef struct _E2eeKeyring E2eeKeyring;

/* An empty keyring that will be saved at @path (see _load for the
 * database's name). */
E2eeKeyring *e2ee_keyring_new (const char *path);

/* Opens the keyring database for @path: @path with ".json" replaced by
 * ".sqlite" (or with ".sqlite" appended).  On first start, when the
 * database has no account and the version 1 file @path exists, that file
 * is imported (e2ee-keyring-import.h) and then deleted, with its "~"
 * backup: nothing falls back to an old copy.  Neither present: an empty
 * keyring.  Files or folder others may access:
 * E2EE_ERROR_KEYRING_PERMISSIONS; a damaged database or file:
 * E2EE_ERROR_KEYRING_CORRUPT (left as it is; the message says how to
 * recover); newer formats: E2EE_ERROR_KEYRING_VERSION.  If protected,
 * @passphrase is needed (E2EE_ERROR_KEYRING_PASSPHRASE if wrong or NULL). */
E2eeKeyring *e2ee_keyring_load (const char *path, const char *passphrase,
                                GError **error);
/* TRUE if the keyring for @path exists and its secrets are
 * passphrase-protected. */
gboolean e2ee_keyring_file_is_protected (const char *path);

/* Writes what changed since the last load or save (only the rows of the
 * accounts and buddies that changed: the buddies looked up, added or
 * removed since the last save are compared, and all of them when none was
 * or every 64th save, so change records through a fresh lookup) in one
 * transaction; durable when it
 * returns TRUE (WAL, synchronous=FULL).  Buddies changed meanwhile by
 * another process are merged first: a decision made there (trust, policy)
 * is kept unless this process changed the same field; the check for such
 * changes runs inside the write transaction.  If another program set,
 * changed or removed the passphrase, E2EE_ERROR_KEYRING_PASSPHRASE and
 * nothing is written (open the keyring again).  On failure nothing is
 * written and the changes stay pending. */
gboolean e2ee_keyring_save (E2eeKeyring *keyring, GError **error);

/* For tests of two clients: @hook runs in each save with @point "before"
 * (before its write transaction begins) and "after" (just after its
 * commit), so another handle's commit can be placed exactly there.  NULL
 * removes it. */
typedef void (*E2eeKeyringSaveHook) (E2eeKeyring *keyring, const char *point, gpointer data);
void e2ee_keyring_set_save_hook (E2eeKeyring *keyring, E2eeKeyringSaveHook hook,
                                 gpointer data);

/* Protocol v2 state (e2ee-v2store.h) joins every save: @func runs inside
 * the save's write transaction after the accounts' rows are written
 * (@committed FALSE; returning FALSE rolls the whole save back) and once
 * more after the commit (@committed TRUE, the return value ignored).
 * NULL removes it. */
typedef gboolean (*E2eeKeyringSaveFunc) (E2eeKeyring *keyring, gboolean committed,
                                         gpointer data, GError **error);
void e2ee_keyring_set_save_func (E2eeKeyring *keyring, E2eeKeyringSaveFunc func,
                                 gpointer data);
/* The open database (NULL before the first load or save) and the seal its
 * secrets are written under (NULL: not protected). */
struct _E2eeStore *e2ee_keyring_get_store (E2eeKeyring *keyring);
const struct _E2eeSeal *e2ee_keyring_get_seal (E2eeKeyring *keyring);

void e2ee_keyring_free (E2eeKeyring *keyring);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeKeyring, e2ee_keyring_free)

/* The database file. */
const char *e2ee_keyring_get_path (const E2eeKeyring *keyring);
/* Protects the secrets (identity scalars and derived keys) with a
 * passphrase (e2ee-seal.h: Argon2id with at least t=3, 64 MiB, p=1, run
 * once here; AES-256-GCM per value with the row's identity as associated
 * data).  NULL removes the protection.  Takes effect at the next save,
 * which first rewrites every secret in one transaction and takes the new
 * seal as soon as that commits; the WAL, with the old copies, is emptied
 * then or, while another program holds a read open, at a later commit or
 * at close.
 * An empty passphrase is E2EE_ERROR_KEYRING_PASSPHRASE. */
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
