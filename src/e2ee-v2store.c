/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-v2store.h"
#include "e2ee-wipe.h"

typedef struct {
  E2eeAccountRecord *account;
  E2eeStoreV2Kind kind;
  char *name;
  GBytes *ref;
  GBytes *value;
} Pending;

struct _E2eeV2Store {
  E2eeKeyring *keyring;
  GHashTable *pending;   /* row key -> Pending* */
  /* row key -> SHA-256 of the value this process last read from or wrote
   * to the database ("" for a row that was absent): a save that finds
   * another value there was preceded by another program's. */
  GHashTable *base;
  E2eeV2StoreConflictFunc conflict;
  gpointer conflict_data;
};

static char *
value_digest (GBytes *value)
{
  return value ? g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, value) : g_strdup ("");
}

/* TRUE if the database still holds what this process saw in @p's row. */
static gboolean
row_unchanged (E2eeV2Store *v2, E2eeStore *store, const E2eeSeal *seal, const char *key,
               Pending *p, GError **error)
{
  const char *seen = g_hash_table_lookup (v2->base, key);
  gsize ref_len = 0;
  const guint8 *ref = g_bytes_get_data (p->ref, &ref_len);
  GBytes *now = NULL;
  g_autofree char *digest = NULL;

  if (seen == NULL)
    return TRUE;   /* never read: made here, nobody else's to lose */
  if (!e2ee_store_v2_get (store, seal, p->account, p->kind, p->name, ref, ref_len, &now, error))
    return FALSE;
  digest = value_digest (now);
  e2ee_bytes_free (now);
  if (strcmp (digest, seen) == 0)
    return TRUE;
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_LOCKED,
               "another program using this keyring changed the encryption session "
               "with %s%s; nothing was sent or shown, try again",
               *p->name ? p->name : "this account", *p->name ? "" : "'s own keys");
  return FALSE;
}

static void
pending_free (Pending *p)
{
  g_free (p->name);
  g_bytes_unref (p->ref);
  e2ee_bytes_free (p->value);
  g_free (p);
}

/* The account pointer, kind, name and ref: unique per row while the
 * account record lives (records live as long as the keyring). */
static char *
row_key (E2eeAccountRecord *account, E2eeStoreV2Kind kind, const char *name,
         const guint8 *ref, gsize ref_len)
{
  g_autofree char *hex = ref_len ? g_compute_checksum_for_data (G_CHECKSUM_SHA256, ref, ref_len)
                                 : g_strdup ("");

  return g_strdup_printf ("%p\n%d\n%s\n%s", (void *) account, kind, name, hex);
}

static gboolean
on_save (E2eeKeyring *keyring, gboolean committed, gpointer data, GError **error)
{
  E2eeV2Store *v2 = data;
  E2eeStore *store = e2ee_keyring_get_store (keyring);
  const E2eeSeal *seal = e2ee_keyring_get_seal (keyring);
  GHashTableIter iter;
  gpointer key, value;

  if (committed)
    {
      /* The rows just replaced held older session states (root, chain and
       * ratchet keys): WAL mode keeps those page images in the -wal file
       * until a checkpoint, and secure_delete only clears the database
       * file.  Emptying and truncating the WAL now is what makes a copy
       * of the keyring files useless for earlier messages (forward
       * secrecy at rest).  A reader elsewhere may delay it: the store
       * retries after its next commits. */
      if (g_hash_table_size (v2->pending) > 0)
        e2ee_store_retry_checkpoint (store);
      g_hash_table_iter_init (&iter, v2->pending);
      while (g_hash_table_iter_next (&iter, &key, &value))
        g_hash_table_replace (v2->base, g_strdup (key),
                              value_digest (((Pending *) value)->value));
      g_hash_table_remove_all (v2->pending);
      return TRUE;
    }
  g_hash_table_iter_init (&iter, v2->pending);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      Pending *p = value;
      gsize ref_len = 0;
      const guint8 *ref = g_bytes_get_data (p->ref, &ref_len);

      if (p->account->identity_unsaved)
        continue;   /* its account row is not written yet: kept for later */
      /* Two programs on one keyring must never both advance one session
       * (two messages under one message key): the second one's save fails,
       * its change is dropped and the row is read again next time. */
      if (!row_unchanged (v2, store, seal, key, p, error))
        {
          if (v2->conflict != NULL)
            v2->conflict (p->account, p->kind, p->name, ref, ref_len, v2->conflict_data);
          g_hash_table_remove (v2->base, key);
          g_hash_table_iter_remove (&iter);
          return FALSE;
        }
      if (!e2ee_store_v2_put (store, seal, p->account, p->kind, p->name, ref, ref_len,
                              p->value, error))
        return FALSE;
    }
  return TRUE;
}

E2eeV2Store *
e2ee_v2store_new (E2eeKeyring *keyring)
{
  E2eeV2Store *v2 = g_new0 (E2eeV2Store, 1);

  v2->keyring = keyring;
  v2->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) pending_free);
  v2->base = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  e2ee_keyring_set_save_func (keyring, on_save, v2);
  return v2;
}

void
e2ee_v2store_free (E2eeV2Store *v2)
{
  if (v2 == NULL)
    return;
  e2ee_keyring_set_save_func (v2->keyring, NULL, NULL);
  g_hash_table_destroy (v2->pending);
  g_hash_table_destroy (v2->base);
  g_free (v2);
}

GBytes *
e2ee_v2store_get (E2eeV2Store *v2, E2eeAccountRecord *account, E2eeStoreV2Kind kind,
                  const char *name, const guint8 *ref, gsize ref_len, GError **error)
{
  g_autofree char *key = row_key (account, kind, name, ref, ref_len);
  Pending *p = g_hash_table_lookup (v2->pending, key);
  E2eeStore *store = e2ee_keyring_get_store (v2->keyring);
  GBytes *out = NULL;

  if (p != NULL)
    return g_bytes_ref (p->value);
  if (store == NULL)
    return NULL;
  if (!e2ee_store_v2_get (store, e2ee_keyring_get_seal (v2->keyring), account, kind, name,
                          ref, ref_len, &out, error))
    return NULL;
  g_hash_table_replace (v2->base, g_steal_pointer (&key), value_digest (out));
  return out;
}

void
e2ee_v2store_put (E2eeV2Store *v2, E2eeAccountRecord *account, E2eeStoreV2Kind kind,
                  const char *name, const guint8 *ref, gsize ref_len, GBytes *value)
{
  Pending *p = g_new0 (Pending, 1);

  p->account = account;
  p->kind = kind;
  p->name = g_strdup (name);
  p->ref = g_bytes_new (ref, ref_len);
  p->value = g_bytes_ref (value);
  g_hash_table_replace (v2->pending, row_key (account, kind, name, ref, ref_len), p);
}

void
e2ee_v2store_set_conflict_func (E2eeV2Store *v2, E2eeV2StoreConflictFunc func, gpointer data)
{
  v2->conflict = func;
  v2->conflict_data = data;
}

guint
e2ee_v2store_pending (E2eeV2Store *v2)
{
  return g_hash_table_size (v2->pending);
}
