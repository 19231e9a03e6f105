/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "e2ee-error.h"
#include "e2ee-import-json.h"
#include "e2ee-keyring-import.h"
#include "e2ee-keyring-merge.h"
#include "e2ee-keyring.h"
#include "e2ee-store-records.h"
#include "e2ee-wipe.h"

/* What the database holds for one account, as last read or written. */
typedef struct {
  gboolean stored;
  char *name;                   /* the account name written */
  E2eeKey *identity;            /* the identity written (ref) */
  guint64 counter;
  guint own_reconfirm;
  GHashTable *buddies;          /* name -> E2eeBuddyRecord* copy (the base of merges) */
  GHashTable *touched;          /* names looked up, added or removed since the last save */
  gboolean pass_full;           /* the save under way compares every buddy */
} Base;

struct _E2eeKeyring {
  char *path;                   /* as given: the version 1 file */
  char *db_path;
  E2eeStore *store;             /* opened at load, or at the first save */
  E2eeSeal *seal;               /* the database's protection */
  E2eeSeal *want_seal;          /* set_passphrase: applied at the next save */
  gboolean want_change;
  GPtrArray *accounts;          /* E2eeAccountRecord*, owned */
  GHashTable *bases;            /* E2eeAccountRecord* -> Base* */
  guint64 epoch;                /* bumped when another process committed */
  guint saves_since_full;       /* saves that compared only touched buddies */
  E2eeKeyringSaveFunc save_func; /* protocol v2 state */
  gpointer save_data;
  E2eeKeyringSaveHook hook;     /* tests only */
  gpointer hook_data;
};

/* Every this many saves (and whenever a save finds nothing touched) all
 * buddies are compared, for a record changed through a pointer kept from
 * an earlier lookup. */
#define FULL_SCAN_EVERY 64

static void touch (E2eeAccountRecord *account, const char *name);

static void keyring_refresh (E2eeKeyring *keyring, E2eeAccountRecord *account,
                             const char *name);

E2eeBuddyRecord *
e2ee_account_lookup_buddy (E2eeAccountRecord *account, const char *name)
{
  g_return_val_if_fail (account != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  if (account->keyring != NULL)
    {
      keyring_refresh (account->keyring, account, name);
      touch (account, name);
    }
  return g_hash_table_lookup (account->buddies, name);
}

E2eeBuddyRecord *
e2ee_account_ensure_buddy (E2eeAccountRecord *account, const char *name)
{
  E2eeBuddyRecord *buddy;

  g_return_val_if_fail (account != NULL, NULL);
  g_return_val_if_fail (name != NULL && *name != '\0', NULL);
  buddy = e2ee_account_lookup_buddy (account, name);
  if (buddy == NULL)
    {
      buddy = e2ee_kr_buddy_new (name);
      buddy->store_epoch = account->keyring != NULL ? account->keyring->epoch : 0;
      g_hash_table_insert (account->buddies, buddy->name, buddy);
    }
  return buddy;
}

static Base *
base_for (E2eeKeyring *keyring, E2eeAccountRecord *account)
{
  Base *base = g_hash_table_lookup (keyring->bases, account);

  if (base == NULL)
    {
      base = g_new0 (Base, 1);
      base->buddies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                             (GDestroyNotify) e2ee_records_buddy_free);
      base->touched = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (keyring->bases, account, base);
    }
  return base;
}

static void
touch (E2eeAccountRecord *account, const char *name)
{
  Base *base = base_for (account->keyring, account);

  if (!g_hash_table_contains (base->touched, name))
    g_hash_table_add (base->touched, g_strdup (name));
}

gboolean
e2ee_account_remove_buddy (E2eeAccountRecord *account, const char *name)
{
  g_return_val_if_fail (account != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  if (account->keyring != NULL)
    touch (account, name);
  return g_hash_table_remove (account->buddies, name);
}

static void
base_free (Base *base)
{
  if (base->identity != NULL)
    e2ee_key_unref (base->identity);
  g_hash_table_unref (base->buddies);
  g_hash_table_unref (base->touched);
  g_free (base->name);
  g_free (base);
}

static void
set_base (Base *base, const E2eeBuddyRecord *buddy)
{
  E2eeBuddyRecord *copy = e2ee_kr_buddy_copy (buddy);
  g_hash_table_replace (base->buddies, copy->name, copy);
}

/* Reads @name again if another process committed since we last did. */
static gboolean
refresh_one (E2eeKeyring *keyring, E2eeAccountRecord *account, const char *name,
             GError **error)
{
  E2eeBuddyRecord *ours = g_hash_table_lookup (account->buddies, name);
  Base *base;
  GError *local = NULL;
  E2eeBuddyRecord *theirs;

  if (ours != NULL && ours->store_epoch >= keyring->epoch)
    return TRUE;
  base = base_for (keyring, account);
  if (ours == NULL && keyring->epoch == 0)
    return TRUE;
  if (!base->stored)
    return TRUE;
  theirs = e2ee_records_load_buddy (keyring->store, keyring->seal, account, name, &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  if (theirs != NULL)
    {
      if (ours == NULL)
        {
          ours = e2ee_kr_buddy_copy (theirs);
          g_hash_table_insert (account->buddies, ours->name, ours);
        }
      else
        e2ee_kr_merge_buddy (ours, g_hash_table_lookup (base->buddies, name), theirs);
      set_base (base, theirs);
      e2ee_records_buddy_free (theirs);
    }
  if (ours != NULL)
    ours->store_epoch = keyring->epoch;
  return TRUE;
}

static void
keyring_refresh (E2eeKeyring *keyring, E2eeAccountRecord *account, const char *name)
{
  g_autoptr (GError) error = NULL;

  if (keyring->store == NULL)
    return;
  if (e2ee_store_changed_elsewhere (keyring->store))
    keyring->epoch++;
  if (!refresh_one (keyring, account, name, &error))
    g_warning ("keyring: cannot read %s again: %s", name, error->message);
}

/* ------------------------------------------------------------------ */
/* The keyring object */

static char *
db_path_for (const char *path)
{
  if (g_str_has_suffix (path, ".json"))
    {
      g_autofree char *stem = g_strndup (path, strlen (path) - 5);
      return g_strconcat (stem, ".sqlite", NULL);
    }
  if (g_str_has_suffix (path, ".sqlite"))
    return g_strdup (path);
  return g_strconcat (path, ".sqlite", NULL);
}

E2eeKeyring *
e2ee_keyring_new (const char *path)
{
  E2eeKeyring *keyring = g_new0 (E2eeKeyring, 1);

  keyring->path = g_strdup (path);
  keyring->db_path = db_path_for (path);
  keyring->accounts = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_account_record_free);
  keyring->bases = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) base_free);
  return keyring;
}

void
e2ee_keyring_free (E2eeKeyring *keyring)
{
  if (keyring == NULL)
    return;
  g_hash_table_unref (keyring->bases);
  g_ptr_array_unref (keyring->accounts);
  e2ee_seal_free (keyring->seal);
  e2ee_seal_free (keyring->want_seal);
  e2ee_store_close (keyring->store);
  g_free (keyring->path);
  g_free (keyring->db_path);
  g_free (keyring);
}

void
e2ee_keyring_set_save_func (E2eeKeyring *keyring, E2eeKeyringSaveFunc func, gpointer data)
{
  keyring->save_func = func;
  keyring->save_data = data;
}

struct _E2eeStore *
e2ee_keyring_get_store (E2eeKeyring *keyring)
{
  return keyring->store;
}

const struct _E2eeSeal *
e2ee_keyring_get_seal (E2eeKeyring *keyring)
{
  return keyring->seal;
}

void
e2ee_keyring_set_save_hook (E2eeKeyring *keyring, E2eeKeyringSaveHook hook, gpointer data)
{
  keyring->hook = hook;
  keyring->hook_data = data;
}

static void
run_hook (E2eeKeyring *keyring, const char *point)
{
  if (keyring->hook != NULL)
    keyring->hook (keyring, point, keyring->hook_data);
}

const char *
e2ee_keyring_get_path (const E2eeKeyring *keyring)
{
  return keyring->db_path;
}

gboolean
e2ee_keyring_is_protected (const E2eeKeyring *keyring)
{
  return keyring->want_change ? keyring->want_seal != NULL : keyring->seal != NULL;
}

gboolean
e2ee_keyring_set_passphrase (E2eeKeyring *keyring, const char *passphrase, GError **error)
{
  E2eeSeal *seal = NULL;

  g_return_val_if_fail (keyring != NULL, FALSE);
  if (passphrase != NULL && (seal = e2ee_seal_new (passphrase, error)) == NULL)
    return FALSE;
  e2ee_seal_free (keyring->want_seal);
  keyring->want_seal = seal;
  keyring->want_change = TRUE;
  return TRUE;
}

E2eeAccountRecord *
e2ee_keyring_lookup_account (E2eeKeyring *keyring, const char *protocol, const char *name)
{
  for (guint i = 0; i < keyring->accounts->len; i++)
    {
      E2eeAccountRecord *a = keyring->accounts->pdata[i];
      if (strcmp (a->protocol, protocol) == 0 && strcmp (a->name, name) == 0)
        return a;
    }
  return NULL;
}

E2eeAccountRecord *
e2ee_keyring_add_account (E2eeKeyring *keyring, const char *protocol, const char *name,
                          E2eeKey *identity)
{
  E2eeAccountRecord *account;

  g_return_val_if_fail (e2ee_keyring_lookup_account (keyring, protocol, name) == NULL, NULL);
  account = e2ee_account_record_new (protocol, name, identity);
  account->keyring = keyring;
  g_ptr_array_add (keyring->accounts, account);
  return account;
}

GPtrArray *
e2ee_keyring_get_accounts (E2eeKeyring *keyring)
{
  return keyring->accounts;
}

/* Takes @accounts (as read) as the keyring's and as the base. */
static void
adopt (E2eeKeyring *keyring, GPtrArray *accounts)
{
  for (guint i = 0; i < accounts->len; i++)
    {
      E2eeAccountRecord *account = accounts->pdata[i];
      Base *base = base_for (keyring, account);
      GHashTableIter iter;
      gpointer value;

      account->keyring = keyring;
      base->stored = TRUE;
      base->name = g_strdup (account->name);
      base->identity = e2ee_key_ref (account->identity);
      base->counter = account->last_counter;
      base->own_reconfirm = account->own_reconfirm;
      g_hash_table_iter_init (&iter, account->buddies);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        set_base (base, value);
      g_ptr_array_add (keyring->accounts, account);
    }
  g_ptr_array_set_free_func (accounts, NULL);
}

static gboolean
store_has_accounts (E2eeStore *store, gboolean *any, GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store, "SELECT count(*) FROM account", error);
  int rc;

  if (st == NULL)
    return FALSE;
  rc = sqlite3_step (st);
  *any = rc == SQLITE_ROW && sqlite3_column_int64 (st, 0) > 0;
  sqlite3_reset (st);
  return rc == SQLITE_ROW || e2ee_store_fail (store, rc, "read", error);
}

/* TRUE if the version 1 file at @path has a "sealed" member. */
static gboolean
legacy_is_protected (const char *path)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  JsonNode *root;
  gboolean sealed;

  if (!g_file_get_contents (path, &text, &len, NULL) || len > E2EE_KEYRING_MAX_BYTES)
    return FALSE;
  root = e2ee_ij_parse_text (text, (gssize) len, NULL);
  sealed = root != NULL && json_object_has_member (json_node_get_object (root), "sealed");
  e2ee_ij_wipe_tree (root);
  if (root != NULL)
    json_node_unref (root);
  e2ee_wipe (text, len);
  return sealed;
}

gboolean
e2ee_keyring_file_is_protected (const char *path)
{
  g_autofree char *db = db_path_for (path);
  gboolean prot = FALSE;

  if (g_file_test (db, G_FILE_TEST_EXISTS))
    {
      g_autoptr (E2eeStore) store = e2ee_store_open (db, NULL);
      gboolean any = FALSE;

      if (store == NULL)
        return FALSE;
      if (!e2ee_records_get_seal (store, &prot, NULL, NULL))
        return FALSE;
      if (prot || !store_has_accounts (store, &any, NULL) || any)
        return prot;
    }
  return g_file_test (path, G_FILE_TEST_EXISTS) && !g_str_has_suffix (path, ".sqlite")
         && legacy_is_protected (path);
}

E2eeKeyring *
e2ee_keyring_load (const char *path, const char *passphrase, GError **error)
{
  g_autoptr (E2eeKeyring) keyring = e2ee_keyring_new (path);
  gboolean any = FALSE, imported = FALSE;
  gboolean had_db = g_file_test (keyring->db_path, G_FILE_TEST_EXISTS);
  gboolean legacy = !g_str_has_suffix (path, ".sqlite") && g_file_test (path, G_FILE_TEST_EXISTS);
  GPtrArray *accounts;

  if (!had_db && !legacy)
    {
      /* Nothing yet; still refuse an unusable folder now. */
      struct stat st;
      g_autofree char *dir = g_path_get_dirname (keyring->db_path);
      if (stat (dir, &st) == 0 && (st.st_mode & 077) != 0)
        {
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS,
                       "keyring: the folder %s may be opened by other users (chmod 700 it)", dir);
          return NULL;
        }
      return g_steal_pointer (&keyring);
    }
  keyring->store = e2ee_store_open (keyring->db_path, error);
  if (keyring->store == NULL)
    return NULL;
  if (!e2ee_records_unlock (keyring->store, passphrase, &keyring->seal, error)
      || !store_has_accounts (keyring->store, &any, error))
    return NULL;
  if (!any && legacy)
    {
      /* First start with a version 1 keyring: import it.  A protected
       * file's database is sealed with the same passphrase before any
       * secret is written. */
      gboolean sealed_here = FALSE;

      if (keyring->seal == NULL && passphrase != NULL && legacy_is_protected (path))
        {
          keyring->seal = e2ee_seal_new (passphrase, error);
          if (keyring->seal == NULL
              || !e2ee_records_reseal (keyring->store, NULL, keyring->seal, error))
            return NULL;
          sealed_here = TRUE;
        }
      if (!e2ee_keyring_import_legacy (keyring->store, keyring->seal, path, passphrase,
                                       &imported, error))
        {
          /* A wrong passphrase must not stay as the empty database's. */
          if (sealed_here)
            e2ee_records_reseal (keyring->store, keyring->seal, NULL, NULL);
          return NULL;
        }
    }
  else if (legacy)
    /* Left over by an import interrupted before the file was removed. */
    e2ee_keyring_import_legacy (keyring->store, keyring->seal, path, passphrase, &imported, NULL);
  /* Commits made before are in what is read now; one made while or after
   * it is read stays news for the first lookup or save. */
  e2ee_store_changed_elsewhere (keyring->store);
  accounts = e2ee_records_load_accounts (keyring->store, keyring->seal, TRUE, error);
  if (accounts == NULL)
    return NULL;
  adopt (keyring, accounts);
  g_ptr_array_unref (accounts);
  return g_steal_pointer (&keyring);
}

/* Writes one account's changed rows (inside the save's transaction). */
static gboolean
save_account (E2eeKeyring *keyring, E2eeAccountRecord *account, gboolean full, GError **error)
{
  Base *base = base_for (keyring, account);
  GHashTableIter iter;
  gpointer key;
  gboolean renamed = base->stored && strcmp (base->name, account->name) != 0;
  GHashTable *names;

  account->keyring = keyring;
  if (account->identity == NULL)
    return TRUE;
  /* A renamed account keeps its rows; its sealed values name it, so they
   * are all written again. */
  if (renamed && !e2ee_records_rename_account (keyring->store, account->protocol, base->name,
                                               account->name, error))
    return FALSE;
  if (renamed || !base->stored || !e2ee_key_equal (base->identity, account->identity)
      || base->own_reconfirm != account->own_reconfirm)
    {
      if (!e2ee_records_put_account (keyring->store, keyring->seal, account, error))
        return FALSE;
    }
  else if (base->counter != account->last_counter
           && !e2ee_records_put_counter (keyring->store, account, error))
    return FALSE;
  /* Only the buddies touched since the last save, unless a full pass. */
  full = full || renamed || !base->stored;
  base->pass_full = full;
  names = full ? account->buddies : base->touched;
  g_hash_table_iter_init (&iter, names);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      E2eeBuddyRecord *buddy = g_hash_table_lookup (account->buddies, key);
      E2eeBuddyRecord *was = g_hash_table_lookup (base->buddies, key);

      if (buddy == NULL)
        {
          if (was != NULL && !e2ee_records_delete_buddy (keyring->store, account, key, error))
            return FALSE;
          continue;
        }
      if (!renamed && was != NULL && e2ee_kr_buddy_equal (buddy, was))
        continue;
      /* Another process may have decided about this buddy meanwhile. */
      if (base->stored && !refresh_one (keyring, account, buddy->name, error))
        return FALSE;
      if (!e2ee_records_put_buddy (keyring->store, keyring->seal, account, buddy, error))
        return FALSE;
    }
  g_hash_table_iter_init (&iter, base->buddies);
  while (full && g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (account->buddies, key)
        && !e2ee_records_delete_buddy (keyring->store, account, key, error))
      return FALSE;
  return TRUE;
}

/* After the commit: what was written is the new base. */
static void
saved_account (E2eeKeyring *keyring, E2eeAccountRecord *account)
{
  Base *base = base_for (keyring, account);
  GHashTableIter iter;
  gpointer key, value;

  if (account->identity == NULL)
    return;
  base->stored = TRUE;
  if (g_strcmp0 (base->name, account->name) != 0)
    {
      g_free (base->name);
      base->name = g_strdup (account->name);
    }
  if (base->identity != account->identity)
    {
      if (base->identity != NULL)
        e2ee_key_unref (base->identity);
      base->identity = e2ee_key_ref (account->identity);
    }
  base->counter = account->last_counter;
  base->own_reconfirm = account->own_reconfirm;
  g_hash_table_iter_init (&iter, base->pass_full ? account->buddies : base->touched);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      E2eeBuddyRecord *was = g_hash_table_lookup (base->buddies, key);
      value = g_hash_table_lookup (account->buddies, key);
      if (value == NULL)
        g_hash_table_remove (base->buddies, key);
      else if (was == NULL || !e2ee_kr_buddy_equal (value, was))
        set_base (base, value);
    }
  g_hash_table_iter_init (&iter, base->buddies);
  while (base->pass_full && g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (account->buddies, key))
      g_hash_table_iter_remove (&iter);
  g_hash_table_remove_all (base->touched);
}

gboolean
e2ee_keyring_save (E2eeKeyring *keyring, GError **error)
{
  gboolean ok = TRUE;

  g_return_val_if_fail (keyring != NULL, FALSE);
  if (keyring->store == NULL)
    {
      keyring->store = e2ee_store_open (keyring->db_path, error);
      if (keyring->store == NULL)
        return FALSE;
      e2ee_store_changed_elsewhere (keyring->store);
    }
  if (keyring->want_change)
    {
      /* The passphrase first: once its commit succeeds the new seal is
       * the database's, and ours, whatever follows (a checkpoint delayed
       * by a reader elsewhere is retried by the store, not a failure). */
      if (!e2ee_records_reseal (keyring->store, keyring->seal, keyring->want_seal, error))
        return FALSE;
      e2ee_seal_free (keyring->seal);
      keyring->seal = g_steal_pointer (&keyring->want_seal);
      keyring->want_change = FALSE;
    }
  run_hook (keyring, "before");
  if (!e2ee_store_begin (keyring->store, error))
    return FALSE;
  /* Checked inside the write transaction: no other process can commit
   * between this and our commit, so whatever it committed before is read
   * again (and merged) before a buddy of it is written. */
  if (e2ee_store_changed_elsewhere (keyring->store))
    keyring->epoch++;
  /* Every value is written under the seal the database names. */
  ok = e2ee_records_seal_matches (keyring->store, keyring->seal, error);
  if (ok)
  {
    gboolean any = FALSE, full;

    for (guint i = 0; i < keyring->accounts->len; i++)
      any = any || g_hash_table_size (base_for (keyring, keyring->accounts->pdata[i])->touched) > 0;
    full = !any || keyring->saves_since_full + 1 >= FULL_SCAN_EVERY;
    keyring->saves_since_full = full ? 0 : keyring->saves_since_full + 1;
    for (guint i = 0; ok && i < keyring->accounts->len; i++)
      ok = save_account (keyring, keyring->accounts->pdata[i], full, error);
  }
  if (ok && keyring->save_func != NULL)
    ok = keyring->save_func (keyring, FALSE, keyring->save_data, error);
  if (!ok)
    {
      e2ee_store_rollback (keyring->store);
      return FALSE;
    }
  if (!e2ee_store_commit (keyring->store, error))
    return FALSE;
  run_hook (keyring, "after");
  for (guint i = 0; i < keyring->accounts->len; i++)
    saved_account (keyring, keyring->accounts->pdata[i]);
  if (keyring->save_func != NULL)
    (void) keyring->save_func (keyring, TRUE, keyring->save_data, NULL);
  /* PRAGMA data_version does not move for our own commits: one it shows
   * now is another process's, made after ours, and stays news for the
   * next lookup or save. */
  return TRUE;
}
