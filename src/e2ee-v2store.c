/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

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
};

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
  gpointer value;

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
      g_hash_table_remove_all (v2->pending);
      return TRUE;
    }
  g_hash_table_iter_init (&iter, v2->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Pending *p = value;
      gsize ref_len = 0;
      const guint8 *ref = g_bytes_get_data (p->ref, &ref_len);

      if (p->account->identity_unsaved)
        continue;   /* its account row is not written yet: kept for later */
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

guint
e2ee_v2store_pending (E2eeV2Store *v2)
{
  return g_hash_table_size (v2->pending);
}
