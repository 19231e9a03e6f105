/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-store-rows.h"
#include "e2ee-store-v2.h"
#include "e2ee-wipe.h"

/* Names the row a sealed value belongs to.  The account's row id, not its
 * name, so an account rename keeps its values and a value copied under
 * another account (or buddy, or device) does not open there. */
static GByteArray *
row_aad (gint64 account_id, E2eeStoreV2Kind kind, const char *name, const guint8 *ref,
         gsize ref_len)
{
  GByteArray *aad = g_byte_array_new ();
  static const char label[] = "PE2E v2 row";
  guint8 head[9];
  gsize n = strlen (name);
  guint8 len[2] = { (guint8) (n >> 8), (guint8) n };

  for (int i = 0; i < 8; i++)
    head[i] = (guint8) ((guint64) account_id >> (56 - 8 * i));
  head[8] = (guint8) kind;
  g_byte_array_append (aad, (const guint8 *) label, sizeof label - 1);
  g_byte_array_append (aad, head, sizeof head);
  g_byte_array_append (aad, len, 2);
  g_byte_array_append (aad, (const guint8 *) name, (guint) n);
  if (ref_len > 0)
    g_byte_array_append (aad, ref, (guint) ref_len);
  return aad;
}

static GBytes *
open_value (const E2eeSeal *seal, gint64 id, E2eeStoreV2Kind kind, const char *name,
            const guint8 *ref, gsize ref_len, const guint8 *data, gsize n, GError **error)
{
  g_autoptr (GByteArray) aad = NULL;
  guint8 *plain;
  gsize len;

  if (seal == NULL)
    return g_bytes_new (data, n);
  if (n < E2EE_SEAL_OVERHEAD)
    {
      e2ee_rows_bad (error, "protocol v2 state");
      return NULL;
    }
  len = n - E2EE_SEAL_OVERHEAD;
  plain = e2ee_secret_alloc (len + 1);
  aad = row_aad (id, kind, name, ref, ref_len);
  if (!e2ee_seal_open (seal, aad->data, aad->len, data, n, plain, len, error))
    {
      e2ee_secret_free (plain, len + 1);
      return NULL;
    }
  return g_bytes_new_take (plain, len);   /* wiped by e2ee_bytes_free */
}

gboolean
e2ee_store_v2_get (E2eeStore *store, const E2eeSeal *seal, const E2eeAccountRecord *account,
                   E2eeStoreV2Kind kind, const char *name, const guint8 *ref, gsize ref_len,
                   GBytes **out, GError **error)
{
  sqlite3_stmt *st;
  gint64 id;
  int rc;

  *out = NULL;
  st = e2ee_store_prepare (store,
    "SELECT value FROM v2 WHERE account_id = ?1 AND kind = ?2 AND name = ?3 AND ref = ?4",
    error);
  if (st == NULL)
    return FALSE;
  id = e2ee_rows_account_id (store, account, NULL);
  if (id < 0)
    return TRUE;   /* not stored yet: no v2 rows either */
  sqlite3_bind_int64 (st, 1, id);
  sqlite3_bind_int (st, 2, kind);
  sqlite3_bind_text (st, 3, name, -1, SQLITE_STATIC);
  sqlite3_bind_blob (st, 4, ref_len ? (const void *) ref : "", (int) ref_len, SQLITE_STATIC);
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      const guint8 *data = sqlite3_column_blob (st, 0);
      gsize n = (gsize) sqlite3_column_bytes (st, 0);

      if (n > E2EE_STORE_V2_VALUE_MAX + E2EE_SEAL_OVERHEAD)
        e2ee_rows_bad (error, "protocol v2 state");
      else
        *out = open_value (seal, id, kind, name, ref, ref_len, data ? data : (const guint8 *) "",
                           n, error);
      sqlite3_reset (st);
      sqlite3_clear_bindings (st);
      return *out != NULL;
    }
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
  if (rc != SQLITE_DONE)
    return e2ee_store_fail (store, rc, "reading protocol v2 state", error);
  return TRUE;
}

static gboolean
write_row (E2eeStore *store, const E2eeSeal *seal, gint64 id, E2eeStoreV2Kind kind,
           const char *name, const guint8 *ref, gsize ref_len, const guint8 *plain, gsize len,
           GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "INSERT INTO v2 (account_id, kind, name, ref, value) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (account_id, kind, name, ref) DO UPDATE SET value = excluded.value", error);
  g_autoptr (GBytes) sealed = NULL;
  gboolean ok;

  if (st == NULL)
    return FALSE;
  if (seal != NULL)
    {
      g_autoptr (GByteArray) aad = row_aad (id, kind, name, ref, ref_len);
      if (!(sealed = e2ee_seal_seal (seal, aad->data, aad->len, plain, len, error)))
        return FALSE;
      plain = g_bytes_get_data (sealed, &len);
    }
  sqlite3_bind_int64 (st, 1, id);
  sqlite3_bind_int (st, 2, kind);
  sqlite3_bind_text (st, 3, name, -1, SQLITE_STATIC);
  sqlite3_bind_blob (st, 4, ref_len ? (const void *) ref : "", (int) ref_len, SQLITE_STATIC);
  sqlite3_bind_blob (st, 5, len ? (const void *) plain : "", (int) len, SQLITE_TRANSIENT);
  ok = e2ee_rows_step_done (store, st, error);
  sqlite3_clear_bindings (st);
  return ok;
}

gboolean
e2ee_store_v2_put (E2eeStore *store, const E2eeSeal *seal, const E2eeAccountRecord *account,
                   E2eeStoreV2Kind kind, const char *name, const guint8 *ref, gsize ref_len,
                   GBytes *value, GError **error)
{
  gint64 id = e2ee_rows_account_id (store, account, error);
  gsize len = 0;
  const guint8 *plain;

  if (id < 0)
    return FALSE;
  if (value == NULL)
    {
      sqlite3_stmt *st = e2ee_store_prepare (store,
        "DELETE FROM v2 WHERE account_id = ?1 AND kind = ?2 AND name = ?3 AND ref = ?4", error);
      gboolean ok;

      if (st == NULL)
        return FALSE;
      sqlite3_bind_int64 (st, 1, id);
      sqlite3_bind_int (st, 2, kind);
      sqlite3_bind_text (st, 3, name, -1, SQLITE_STATIC);
      sqlite3_bind_blob (st, 4, ref_len ? (const void *) ref : "", (int) ref_len, SQLITE_STATIC);
      ok = e2ee_rows_step_done (store, st, error);
      sqlite3_clear_bindings (st);
      return ok;
    }
  plain = g_bytes_get_data (value, &len);
  if (len > E2EE_STORE_V2_VALUE_MAX)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_LIMIT,
                   "protocol v2 state of %s is too large to store", name);
      return FALSE;
    }
  return write_row (store, seal, id, kind, name, ref, ref_len, plain ? plain : (const guint8 *) "",
                    len, error);
}

typedef struct {
  gint64 id;
  int kind;
  char *name;
  GBytes *ref;
  GBytes *plain;
} Row;

static void
row_free (Row *row)
{
  g_free (row->name);
  g_bytes_unref (row->ref);
  e2ee_bytes_free (row->plain);
  g_free (row);
}

gboolean
e2ee_store_v2_reseal (E2eeStore *store, const E2eeSeal *from, const E2eeSeal *to,
                      GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "SELECT account_id, kind, name, ref, value FROM v2", error);
  g_autoptr (GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) row_free);
  gboolean ok = TRUE;
  int rc;

  if (st == NULL)
    return FALSE;
  /* Read everything first: rewriting while the select runs would revisit rows. */
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      Row *row = g_new0 (Row, 1);
      const char *name = (const char *) sqlite3_column_text (st, 2);
      gsize ref_len = (gsize) sqlite3_column_bytes (st, 3);

      row->id = sqlite3_column_int64 (st, 0);
      row->kind = sqlite3_column_int (st, 1);
      row->name = g_strdup (name ? name : "");
      row->ref = g_bytes_new (sqlite3_column_blob (st, 3), ref_len);
      g_ptr_array_add (rows, row);
      row->plain = open_value (from, row->id, (E2eeStoreV2Kind) row->kind, row->name,
                               g_bytes_get_data (row->ref, NULL), ref_len,
                               sqlite3_column_blob (st, 4), (gsize) sqlite3_column_bytes (st, 4),
                               error);
      if (row->plain == NULL)
        {
          ok = FALSE;
          break;
        }
    }
  sqlite3_reset (st);
  if (ok && rc != SQLITE_ROW && rc != SQLITE_DONE)
    return e2ee_store_fail (store, rc, "reading protocol v2 state", error);
  for (guint i = 0; ok && i < rows->len; i++)
    {
      Row *row = rows->pdata[i];
      gsize ref_len = 0, len = 0;
      const guint8 *ref = g_bytes_get_data (row->ref, &ref_len);
      const guint8 *plain = g_bytes_get_data (row->plain, &len);

      ok = write_row (store, to, row->id, (E2eeStoreV2Kind) row->kind, row->name, ref, ref_len,
                      plain ? plain : (const guint8 *) "", len, error);
    }
  return ok;
}
