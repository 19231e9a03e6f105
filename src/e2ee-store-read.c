/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-store-records.h"
#include "e2ee-store-rows.h"
#include "e2ee-wipe.h"

/* ---- reading --------------------------------------------------------- */

void
e2ee_records_buddy_free (E2eeBuddyRecord *buddy)
{
  if (buddy == NULL)
    return;
  g_ptr_array_unref (buddy->devices);
  g_free (buddy->name);
  g_free (buddy);
}

static E2eeBuddyRecord *
buddy_new (const char *name)
{
  E2eeBuddyRecord *buddy = g_new0 (E2eeBuddyRecord, 1);

  buddy->name = g_strdup (name);
  buddy->devices = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_device_record_free);
  return buddy;
}

/* The device of the current row (columns from 4 on, see read_buddies). */
static E2eeDeviceRecord *
read_device (sqlite3_stmt *st, const E2eeSeal *seal, const E2eeAccountRecord *account,
             const char *buddy, GError **error)
{
  const guint8 *x = e2ee_rows_blob (st, 5, E2EE_KEY_COORD_LEN), *y = e2ee_rows_blob (st, 6, E2EE_KEY_COORD_LEN);
  gint64 trust = sqlite3_column_int64 (st, 8);
  g_autoptr (E2eeKey) key = NULL;
  E2eeDeviceRecord *dev;

  if (x == NULL || y == NULL || trust < E2EE_TRUST_UNDECIDED || trust > E2EE_TRUST_REJECTED)
    {
      e2ee_rows_bad (error, "device");
      return NULL;
    }
  key = e2ee_records_make_key (x, y, NULL, (guint) sqlite3_column_int (st, 7), error);
  if (key == NULL)
    return NULL;
  dev = e2ee_device_record_new (key, (E2eeTrust) trust, sqlite3_column_int64 (st, 9));
  dev->last_seen = sqlite3_column_int64 (st, 10);
  if (sqlite3_column_type (st, 11) != SQLITE_NULL)
    {
      dev->replay_init = TRUE;
      dev->replay_high = (guint64) sqlite3_column_int64 (st, 11);
      dev->replay_window = (guint64) sqlite3_column_int64 (st, 12);
    }
  if (sqlite3_column_type (st, 15) != SQLITE_NULL)
    {
      guint lc = (guint) sqlite3_column_int (st, 13), rc = (guint) sqlite3_column_int (st, 14);
      gsize n = (gsize) sqlite3_column_bytes (st, 15);
      const guint8 *data = sqlite3_column_blob (st, 15);
      guint8 keys[KEYS_LEN];
      gboolean ok;

      if (seal == NULL)
        {
          ok = n == KEYS_LEN || e2ee_rows_bad (error, "derived key");
          if (ok)
            memcpy (keys, data, KEYS_LEN);
        }
      else
        {
          g_autoptr (GByteArray) aad = e2ee_rows_aad_keys (account, buddy, key, lc, rc);
          ok = e2ee_seal_open (seal, aad->data, aad->len, data, n, keys, KEYS_LEN, error);
        }
      if (!ok)
        {
          e2ee_device_record_free (dev);
          return NULL;
        }
      dev->have_keys = TRUE;
      dev->keys_local_caps = (guint8) lc;
      dev->keys_remote_caps = (guint8) rc;
      memcpy (dev->k_send, keys, E2EE_KEY_LEN);
      memcpy (dev->k_recv, keys + E2EE_KEY_LEN, E2EE_KEY_LEN);
      e2ee_wipe (keys, sizeof keys);
    }
  return dev;
}

/* Buddies of account @id (one if @name is set) into a new hash table or
 * @table. */
static gboolean
read_buddies (E2eeStore *store, const E2eeSeal *seal, const E2eeAccountRecord *account,
              gint64 id, const char *name, GHashTable *table, GError **error)
{
  static const char *const cols =
    "SELECT b.id, b.name, b.policy, b.key_changed, b.had_encrypted, d.x, d.y, d.caps,"
    " d.trust, d.first_seen, d.last_seen, d.replay_high, d.replay_window,"
    " d.keys_local_caps, d.keys_remote_caps, d.keys, d.id"
    " FROM buddy b LEFT JOIN device d ON d.buddy_id = b.id WHERE b.account_id = ?1";
  g_autofree char *sql = g_strconcat (cols, name != NULL ? " AND b.name = ?2" : "",
                                      " ORDER BY b.id, d.pos", NULL);
  sqlite3_stmt *st = e2ee_store_prepare (store, sql, error);
  E2eeBuddyRecord *cur = NULL;
  gint64 cur_id = -1;
  int rc;

  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, id);
  if (name != NULL)
    sqlite3_bind_text (st, 2, name, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      gint64 bid = sqlite3_column_int64 (st, 0);
      if (bid != cur_id)
        {
          const char *bname = (const char *) sqlite3_column_text (st, 1);
          gint64 policy = sqlite3_column_int64 (st, 2);

          if (bname == NULL || *bname == '\0' || policy < E2EE_POLICY_DEFAULT
              || policy > E2EE_POLICY_REQUIRED)
            {
              sqlite3_reset (st);
              return e2ee_rows_bad (error, "buddy");
            }
          cur = buddy_new (bname);
          cur->policy = (E2eePolicy) policy;
          cur->key_changed = sqlite3_column_int (st, 3) != 0;
          cur->had_encrypted = sqlite3_column_int (st, 4) != 0;
          cur_id = bid;
          g_hash_table_replace (table, cur->name, cur);
        }
      if (sqlite3_column_type (st, 16) != SQLITE_NULL)
        {
          E2eeDeviceRecord *dev = read_device (st, seal, account, cur->name, error);
          if (dev == NULL)
            {
              sqlite3_reset (st);
              return FALSE;
            }
          g_ptr_array_add (cur->devices, dev);
        }
    }
  sqlite3_reset (st);
  return rc == SQLITE_DONE || e2ee_store_fail (store, rc, "read", error);
}

GPtrArray *
e2ee_records_load_accounts (E2eeStore *store, const E2eeSeal *seal, gboolean with_buddies,
                            GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "SELECT id, protocol, name, x, y, caps, d, last_counter, own_reconfirm FROM account"
    " ORDER BY id", error);
  g_autoptr (GPtrArray) out = NULL;
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  int rc;

  if (st == NULL)
    return NULL;
  out = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_account_record_free);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      const char *protocol = (const char *) sqlite3_column_text (st, 1);
      const char *name = (const char *) sqlite3_column_text (st, 2);
      const guint8 *x = e2ee_rows_blob (st, 3, E2EE_KEY_COORD_LEN), *y = e2ee_rows_blob (st, 4, E2EE_KEY_COORD_LEN);
      const guint8 *sealed = sqlite3_column_blob (st, 6);
      gsize n = (gsize) sqlite3_column_bytes (st, 6);
      guint caps = (guint) sqlite3_column_int (st, 5);
      g_autoptr (E2eeKey) pub = NULL;
      g_autoptr (E2eeKey) key = NULL;
      guint8 d[E2EE_KEY_COORD_LEN];
      gint64 id = sqlite3_column_int64 (st, 0);
      gboolean ok;

      if (protocol == NULL || name == NULL || x == NULL || y == NULL || sealed == NULL)
        {
          e2ee_rows_bad (error, "account");
          goto fail;
        }
      pub = e2ee_records_make_key (x, y, NULL, caps, error);
      if (pub == NULL)
        goto fail;
      if (seal == NULL)
        {
          ok = n == sizeof d || e2ee_rows_bad (error, "identity (is the keyring protected?)");
          if (ok)
            memcpy (d, sealed, sizeof d);
        }
      else
        {
          g_autoptr (GByteArray) aad = e2ee_rows_aad_identity (protocol, name, pub);
          ok = e2ee_seal_open (seal, aad->data, aad->len, sealed, n, d, sizeof d, error);
        }
      if (ok)
        key = e2ee_records_make_key (x, y, d, caps, error);
      e2ee_wipe (d, sizeof d);
      if (key == NULL)
        goto fail;
      g_ptr_array_add (out, e2ee_account_record_new (protocol, name, key));
      ((E2eeAccountRecord *) out->pdata[out->len - 1])->last_counter =
        (guint64) sqlite3_column_int64 (st, 7);
      ((E2eeAccountRecord *) out->pdata[out->len - 1])->own_reconfirm =
        (guint) CLAMP (sqlite3_column_int64 (st, 8), 0, G_MAXUINT);
      g_array_append_val (ids, id);
    }
  sqlite3_reset (st);
  if (rc != SQLITE_DONE)
    {
      e2ee_store_fail (store, rc, "read", error);
      return NULL;
    }
  for (guint i = 0; with_buddies && i < out->len; i++)
    {
      E2eeAccountRecord *account = out->pdata[i];
      if (!read_buddies (store, seal, account, g_array_index (ids, gint64, i), NULL,
                         account->buddies, error))
        return NULL;
    }
  return g_steal_pointer (&out);

fail:
  sqlite3_reset (st);
  return NULL;
}

E2eeBuddyRecord *
e2ee_records_load_buddy (E2eeStore *store, const E2eeSeal *seal,
                         const E2eeAccountRecord *account, const char *name, GError **error)
{
  g_autoptr (GHashTable) table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                        (GDestroyNotify) e2ee_records_buddy_free);
  gint64 id = e2ee_rows_account_id (store, account, error);
  E2eeBuddyRecord *buddy;

  if (id < 0 || !read_buddies (store, seal, account, id, name, table, error))
    return NULL;
  buddy = g_hash_table_lookup (table, name);
  if (buddy != NULL)
    g_hash_table_steal (table, name);
  return buddy;
}

gboolean
e2ee_records_refresh_buddy (E2eeStore *store, const E2eeSeal *seal, E2eeAccountRecord *account,
                            const char *name, GError **error)
{
  GError *local = NULL;
  E2eeBuddyRecord *buddy = e2ee_records_load_buddy (store, seal, account, name, &local);

  if (local != NULL)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  if (buddy == NULL)
    g_hash_table_remove (account->buddies, name);
  else
    g_hash_table_replace (account->buddies, buddy->name, buddy);
  return TRUE;
}

