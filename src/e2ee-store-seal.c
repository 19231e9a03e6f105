/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The database's seal: reading and checking the seal row, unlocking and
 * changing the passphrase (declared in e2ee-store-records.h). */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-store-records.h"
#include "e2ee-store-rows.h"
#include "e2ee-store-v2.h"
#include "e2ee-wipe.h"

/* ---- seal ------------------------------------------------------------ */

gboolean
e2ee_records_get_seal (E2eeStore *store, gboolean *is_protected, E2eeSealSetting *params,
                       GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "SELECT kdf, t, m, p, salt, check_value FROM seal WHERE id = 1", error);
  int rc;

  *is_protected = FALSE;
  if (st == NULL)
    return FALSE;
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      const char *kdf = (const char *) sqlite3_column_text (st, 0);
      const guint8 *salt = e2ee_rows_blob (st, 4, E2EE_SEAL_SALT_LEN);
      const guint8 *check = e2ee_rows_blob (st, 5, E2EE_SEAL_CHECK_LEN);
      gint64 t = sqlite3_column_int64 (st, 1), m = sqlite3_column_int64 (st, 2),
             p = sqlite3_column_int64 (st, 3);

      if (kdf == NULL || strlen (kdf) >= sizeof params->kdf || salt == NULL || check == NULL
          || t < 0 || t > G_MAXUINT32 || m < 0 || m > G_MAXUINT32 || p < 0 || p > G_MAXUINT32)
        {
          sqlite3_reset (st);
          return e2ee_rows_bad (error, "passphrase setting");
        }
      *is_protected = TRUE;
      if (params != NULL)
        {
          memset (params, 0, sizeof *params);
          g_strlcpy (params->kdf, kdf, sizeof params->kdf);
          params->t = (guint32) t;
          params->m = (guint32) m;
          params->p = (guint32) p;
          memcpy (params->salt, salt, E2EE_SEAL_SALT_LEN);
          memcpy (params->check, check, E2EE_SEAL_CHECK_LEN);
        }
      rc = SQLITE_DONE;
    }
  sqlite3_reset (st);
  if (rc != SQLITE_DONE)
    return e2ee_store_fail (store, rc, "read", error);
  if (!*is_protected)
    {
      /* Sealed once and never unprotected through a passphrase removal:
       * the seal row was deleted behind our back. */
      st = e2ee_store_prepare (store, "SELECT count(*) FROM meta WHERE key = 'sealed'", error);
      if (st == NULL)
        return FALSE;
      rc = sqlite3_step (st);
      if (rc == SQLITE_ROW && sqlite3_column_int64 (st, 0) > 0)
        {
          sqlite3_reset (st);
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
                       "keyring %s was protected by a passphrase but its passphrase "
                       "setting is missing (removed or damaged): it is not opened "
                       "unprotected. Restore your last backup with \"purple-e2ee keyring "
                       "import BACKUP\" into a new keyring", e2ee_store_get_path (store));
          return FALSE;
        }
      sqlite3_reset (st);
      if (rc != SQLITE_ROW)
        return e2ee_store_fail (store, rc, "read", error);
    }
  return TRUE;
}

gboolean
e2ee_records_seal_matches (E2eeStore *store, const E2eeSeal *seal, GError **error)
{
  E2eeSealSetting params;
  gboolean prot, same;

  if (!e2ee_records_get_seal (store, &prot, &params, error))
    return FALSE;
  if (!prot)
    same = seal == NULL;
  else
    {
      const E2eeSealSetting *mine = seal != NULL ? e2ee_seal_get_params (seal) : NULL;
      same = mine != NULL && strcmp (mine->kdf, params.kdf) == 0 && mine->t == params.t
             && mine->m == params.m && mine->p == params.p
             && memcmp (mine->salt, params.salt, sizeof params.salt) == 0
             && memcmp (mine->check, params.check, sizeof params.check) == 0;
    }
  e2ee_wipe (&params, sizeof params);
  if (same)
    return TRUE;
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE,
               "keyring %s: its passphrase was %s by another program; nothing was "
               "written: open the keyring again", e2ee_store_get_path (store),
               prot ? "set or changed" : "removed");
  return FALSE;
}

gboolean
e2ee_records_unlock (E2eeStore *store, const char *passphrase, E2eeSeal **seal,
                     GError **error)
{
  E2eeSealSetting params;
  gboolean prot;
  E2eeSeal *old, *fresh;

  *seal = NULL;
  if (!e2ee_records_get_seal (store, &prot, &params, error))
    return FALSE;
  if (!prot)
    return TRUE;
  old = e2ee_seal_unlock (passphrase, &params, error);
  e2ee_wipe (&params, sizeof params);
  if (old == NULL)
    return FALSE;
  /* A file sealed before the mark existed gets it now (best effort). */
  e2ee_store_exec (store, "INSERT OR IGNORE INTO meta (key, value) VALUES ('sealed', 1)", NULL);
  if (!e2ee_seal_is_weak (old))
    {
      *seal = old;
      return TRUE;
    }
  /* Costs below today's minimum (an old or edited file): seal again. */
  fresh = e2ee_seal_new (passphrase, error);
  if (fresh == NULL || !e2ee_records_reseal (store, old, fresh, error))
    {
      e2ee_seal_free (fresh);
      e2ee_seal_free (old);
      return FALSE;
    }
  e2ee_seal_free (old);
  *seal = fresh;
  return TRUE;
}

/* ---- passphrase changes ---------------------------------------------- */

gboolean
e2ee_records_reseal (E2eeStore *store, const E2eeSeal *from, const E2eeSeal *to,
                     GError **error)
{
  g_autoptr (GPtrArray) accounts = NULL;
  gboolean ok;

  /* Read inside the write transaction, under the seal the database names. */
  if (!e2ee_store_begin (store, error))
    return FALSE;
  ok = e2ee_records_seal_matches (store, from, error)
       && (accounts = e2ee_records_load_accounts (store, from, TRUE, error)) != NULL;
  ok = ok && e2ee_store_exec (store, "DELETE FROM seal", error);
  /* Remembered beside the seal row: a protected keyring whose row is
   * removed does not open unprotected (e2ee_records_get_seal). */
  ok = ok && e2ee_store_exec (store, to != NULL
                              ? "INSERT OR REPLACE INTO meta (key, value) VALUES ('sealed', 1)"
                              : "DELETE FROM meta WHERE key = 'sealed'", error);
  if (ok && to != NULL)
    {
      const E2eeSealSetting *p = e2ee_seal_get_params (to);
      sqlite3_stmt *st = e2ee_store_prepare (store,
        "INSERT INTO seal (id, kdf, t, m, p, salt, check_value) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
        error);
      ok = st != NULL;
      if (ok)
        {
          sqlite3_bind_text (st, 1, p->kdf, -1, SQLITE_STATIC);
          sqlite3_bind_int64 (st, 2, p->t);
          sqlite3_bind_int64 (st, 3, p->m);
          sqlite3_bind_int64 (st, 4, p->p);
          sqlite3_bind_blob (st, 5, p->salt, E2EE_SEAL_SALT_LEN, SQLITE_STATIC);
          sqlite3_bind_blob (st, 6, p->check, E2EE_SEAL_CHECK_LEN, SQLITE_STATIC);
          ok = e2ee_rows_step_done (store, st, error);
        }
    }
  for (guint a = 0; ok && a < accounts->len; a++)
    {
      E2eeAccountRecord *account = accounts->pdata[a];
      GHashTableIter iter;
      gpointer value;
      gint64 id;

      ok = e2ee_rows_write_account (store, to, account, error);
      id = ok ? e2ee_rows_account_id (store, account, error) : -1;
      ok = id >= 0;
      g_hash_table_iter_init (&iter, account->buddies);
      while (ok && g_hash_table_iter_next (&iter, NULL, &value))
        {
          E2eeBuddyRecord *buddy = value;
          gint64 bid = e2ee_rows_write_buddy_row (store, account, buddy, error);

          ok = bid >= 0;
          for (guint i = 0; ok && i < buddy->devices->len; i++)
            {
              E2eeDeviceRecord *dev = buddy->devices->pdata[i];
              if (dev->have_keys)
                ok = e2ee_rows_write_device (store, to, account, buddy->name, bid, -1, dev, error);
            }
        }
    }
  ok = ok && e2ee_store_v2_reseal (store, from, to, error);
  if (!ok)
    {
      e2ee_store_rollback (store);
      return FALSE;
    }
  if (!e2ee_store_commit (store, error))
    return FALSE;
  /* The change is made.  The old values are gone from the database pages
   * (secure_delete); the WAL still has them until it is emptied and
   * truncated, which a reader elsewhere may delay: the store retries it
   * after its next commits (e2ee-store.h).  Not a failure of the change. */
  e2ee_store_retry_checkpoint (store);
  return TRUE;
}
