/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-store-records.h"
#include "e2ee-store-rows.h"
#include "e2ee-wipe.h"


static const char *const sql_account_id =
  "SELECT id FROM account WHERE protocol = ?1 AND name = ?2";

/* ---- associated data: the identity of the row holding a secret ------- */

static void
aad_str (GByteArray *b, const char *s, gsize n)
{
  guint8 len[4] = { (guint8) (n >> 24), (guint8) (n >> 16), (guint8) (n >> 8), (guint8) n };
  g_byte_array_append (b, len, 4);
  g_byte_array_append (b, (const guint8 *) s, (guint) n);
}

GByteArray *
e2ee_rows_aad_identity (const char *protocol, const char *name, const E2eeKey *key)
{
  GByteArray *b = g_byte_array_new ();

  aad_str (b, "purple-e2ee store v1 identity", 29);
  aad_str (b, protocol, strlen (protocol));
  aad_str (b, name, strlen (name));
  g_byte_array_append (b, e2ee_key_get_x (key), E2EE_KEY_COORD_LEN);
  g_byte_array_append (b, e2ee_key_get_y (key), E2EE_KEY_COORD_LEN);
  return b;
}

GByteArray *
e2ee_rows_aad_keys (const E2eeAccountRecord *account, const char *buddy, const E2eeKey *key,
          guint local_caps, guint remote_caps)
{
  GByteArray *b = g_byte_array_new ();
  guint8 caps[2] = { (guint8) local_caps, (guint8) remote_caps };

  aad_str (b, "purple-e2ee store v1 derived keys", 33);
  aad_str (b, account->protocol, strlen (account->protocol));
  aad_str (b, account->name, strlen (account->name));
  aad_str (b, buddy, strlen (buddy));
  g_byte_array_append (b, e2ee_key_get_x (key), E2EE_KEY_COORD_LEN);
  g_byte_array_append (b, e2ee_key_get_y (key), E2EE_KEY_COORD_LEN);
  g_byte_array_append (b, caps, 2);
  return b;
}

/* ---- keys ------------------------------------------------------------ */

/* The private scalar of @key into @d. */
gboolean
e2ee_records_key_scalar (const E2eeKey *key, guint8 d[E2EE_KEY_COORD_LEN], GError **error)
{
  g_autoptr (JsonObject) jwk = e2ee_key_to_jwk_object (key, TRUE, FALSE);
  JsonNode *node = json_object_get_member (jwk, "d");
  char *text;
  guint8 *raw;
  gsize len = 0;

  if (node == NULL)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_FAILED,
                   "keyring: an account identity has no private key");
      return FALSE;
    }
  text = (char *) json_node_get_string (node);
  raw = e2ee_b64url_decode (text, strlen (text), &len, NULL);
  e2ee_wipe (text, strlen (text));
  if (raw == NULL || len != E2EE_KEY_COORD_LEN)
    {
      e2ee_secret_free (raw, len);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_FAILED, "keyring: cannot export a key");
      return FALSE;
    }
  memcpy (d, raw, E2EE_KEY_COORD_LEN);
  e2ee_secret_free (raw, len);
  return TRUE;
}

E2eeKey *
e2ee_records_make_key (const guint8 *x, const guint8 *y, const guint8 *d, guint caps, GError **error)
{
  g_autoptr (E2eeKey) key = NULL;

  if (d == NULL)
    key = e2ee_key_new_public (x, y, error);
  else
    {
      char bx[64], by[64], bd[64];
      char *jwk;

      e2ee_b64url_encode_into (x, E2EE_KEY_COORD_LEN, bx);
      e2ee_b64url_encode_into (y, E2EE_KEY_COORD_LEN, by);
      e2ee_b64url_encode_into (d, E2EE_KEY_COORD_LEN, bd);
      jwk = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\","
                             "\"d\":\"%s\"}", bx, by, bd);
      e2ee_wipe (bd, sizeof bd);
      key = e2ee_key_from_jwk (jwk, -1, E2EE_KEY_EXPECT_PRIVATE, error);
      e2ee_string_free (jwk);
    }
  if (key == NULL)
    {
      if (error != NULL && *error != NULL)
        (*error)->code = E2EE_ERROR_KEYRING_CORRUPT;
      return NULL;
    }
  if ((caps & E2EE_CAPS_V1) == 0 || caps > E2EE_CAPS_MASK)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
                   "keyring: a stored key has invalid capabilities %u", caps);
      return NULL;
    }
  if (e2ee_key_get_caps (key) == caps)
    return g_steal_pointer (&key);
  return e2ee_key_with_caps (key, (guint8) caps);
}

const guint8 *
e2ee_rows_blob (sqlite3_stmt *st, int col, gsize want)
{
  if (sqlite3_column_type (st, col) != SQLITE_BLOB
      || (gsize) sqlite3_column_bytes (st, col) != want)
    return NULL;
  return sqlite3_column_blob (st, col);
}

gboolean
e2ee_rows_bad (GError **error, const char *what)
{
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
               "keyring: a stored %s is malformed", what);
  return FALSE;
}

/* ---- transactions ---------------------------------------------------- */

/* Opens a transaction unless the caller has one; *@own tells whether we
 * must commit it. */
static gboolean
tx_begin (E2eeStore *store, gboolean *own, GError **error)
{
  *own = !e2ee_store_in_transaction (store);
  return !*own || e2ee_store_begin (store, error);
}

static gboolean
tx_end (E2eeStore *store, gboolean own, gboolean ok, GError **error)
{
  if (!own)
    return ok;
  if (!ok)
    {
      e2ee_store_rollback (store);
      return FALSE;
    }
  return e2ee_store_commit (store, error);
}

gboolean
e2ee_rows_step_done (E2eeStore *store, sqlite3_stmt *st, GError **error)
{
  int rc = sqlite3_step (st);

  sqlite3_reset (st);
  return rc == SQLITE_DONE || e2ee_store_fail (store, rc, "write", error);
}

gint64
e2ee_rows_account_id (E2eeStore *store, const E2eeAccountRecord *account, GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store, sql_account_id, error);
  gint64 id = -1;
  int rc;

  if (st == NULL)
    return -1;
  sqlite3_bind_text (st, 1, account->protocol, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, account->name, -1, SQLITE_STATIC);
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    id = sqlite3_column_int64 (st, 0);
  else if (rc == SQLITE_DONE)
    g_set_error (error, E2EE_ERROR, E2EE_ERROR_FAILED,
                 "keyring: account %s is not stored", account->name);
  else
    e2ee_store_fail (store, rc, "read", error);
  sqlite3_reset (st);
  return id;
}

/* ---- writing --------------------------------------------------------- */

static gboolean
bind_secret (sqlite3_stmt *st, int col, const E2eeSeal *seal, GByteArray *aad,
             const guint8 *plain, gsize len, GError **error)
{
  if (seal == NULL)
    {
      sqlite3_bind_blob (st, col, plain, (int) len, SQLITE_TRANSIENT);
      return TRUE;
    }
  {
    g_autoptr (GBytes) sealed = e2ee_seal_seal (seal, aad->data, aad->len, plain, len, error);
    gsize n = 0;
    const guint8 *data;

    if (sealed == NULL)
      return FALSE;
    data = g_bytes_get_data (sealed, &n);
    sqlite3_bind_blob (st, col, data, (int) n, SQLITE_TRANSIENT);
    return TRUE;
  }
}

gboolean
e2ee_rows_write_account (E2eeStore *store, const E2eeSeal *seal, const E2eeAccountRecord *account,
               GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "INSERT INTO account (protocol, name, x, y, caps, d, last_counter, own_reconfirm)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (protocol, name) DO UPDATE SET"
    " x = excluded.x, y = excluded.y, caps = excluded.caps, d = excluded.d,"
    " last_counter = excluded.last_counter, own_reconfirm = excluded.own_reconfirm", error);
  g_autoptr (GByteArray) aad = NULL;
  guint8 d[E2EE_KEY_COORD_LEN];
  gboolean ok;

  if (st == NULL || !e2ee_records_key_scalar (account->identity, d, error))
    return FALSE;
  aad = e2ee_rows_aad_identity (account->protocol, account->name, account->identity);
  sqlite3_bind_text (st, 1, account->protocol, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, account->name, -1, SQLITE_STATIC);
  sqlite3_bind_blob (st, 3, e2ee_key_get_x (account->identity), E2EE_KEY_COORD_LEN, SQLITE_STATIC);
  sqlite3_bind_blob (st, 4, e2ee_key_get_y (account->identity), E2EE_KEY_COORD_LEN, SQLITE_STATIC);
  sqlite3_bind_int (st, 5, e2ee_key_get_caps (account->identity));
  sqlite3_bind_int64 (st, 7, (gint64) account->last_counter);
  sqlite3_bind_int64 (st, 8, account->own_reconfirm);
  ok = bind_secret (st, 6, seal, aad, d, sizeof d, error);
  e2ee_wipe (d, sizeof d);
  ok = ok && e2ee_rows_step_done (store, st, error);
  sqlite3_clear_bindings (st);  /* the clear scalar was copied: drop it */
  return ok;
}

gboolean
e2ee_records_put_account (E2eeStore *store, const E2eeSeal *seal,
                          const E2eeAccountRecord *account, GError **error)
{
  gboolean own;

  if (!tx_begin (store, &own, error))
    return FALSE;
  return tx_end (store, own, e2ee_rows_write_account (store, seal, account, error), error);
}

gboolean
e2ee_records_put_counter (E2eeStore *store, const E2eeAccountRecord *account, GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "UPDATE account SET last_counter = ?3 WHERE protocol = ?1 AND name = ?2", error);
  gboolean own, ok;

  if (st == NULL || !tx_begin (store, &own, error))
    return FALSE;
  sqlite3_bind_text (st, 1, account->protocol, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, account->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 3, (gint64) account->last_counter);
  ok = e2ee_rows_step_done (store, st, error);
  if (ok && sqlite3_changes (e2ee_store_get_db (store)) != 1)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_FAILED,
                   "keyring: account %s is not stored", account->name);
      ok = FALSE;
    }
  return tx_end (store, own, ok, error);
}

gboolean
e2ee_rows_write_device (E2eeStore *store, const E2eeSeal *seal, const E2eeAccountRecord *account,
              const char *buddy, gint64 buddy_id, gint pos, const E2eeDeviceRecord *dev,
              GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "INSERT INTO device (buddy_id, pos, x, y, caps, trust, first_seen, last_seen,"
    " replay_high, replay_window, keys_local_caps, keys_remote_caps, keys)"
    " VALUES (?1, coalesce (?2, (SELECT count(*) FROM device WHERE buddy_id = ?1)),"
    " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    " ON CONFLICT (buddy_id, x, y) DO UPDATE SET pos = coalesce (?2, pos), caps = excluded.caps,"
    " trust = excluded.trust, first_seen = excluded.first_seen, last_seen = excluded.last_seen,"
    " replay_high = excluded.replay_high, replay_window = excluded.replay_window,"
    " keys_local_caps = excluded.keys_local_caps, keys_remote_caps = excluded.keys_remote_caps,"
    " keys = excluded.keys", error);
  gboolean ok = TRUE;

  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, buddy_id);
  if (pos >= 0)
    sqlite3_bind_int (st, 2, pos);
  sqlite3_bind_blob (st, 3, e2ee_key_get_x (dev->key), E2EE_KEY_COORD_LEN, SQLITE_STATIC);
  sqlite3_bind_blob (st, 4, e2ee_key_get_y (dev->key), E2EE_KEY_COORD_LEN, SQLITE_STATIC);
  sqlite3_bind_int (st, 5, e2ee_key_get_caps (dev->key));
  sqlite3_bind_int (st, 6, dev->trust);
  sqlite3_bind_int64 (st, 7, dev->first_seen);
  sqlite3_bind_int64 (st, 8, dev->last_seen);
  if (dev->replay_init)
    {
      sqlite3_bind_int64 (st, 9, (gint64) dev->replay_high);
      sqlite3_bind_int64 (st, 10, (gint64) dev->replay_window);
    }
  if (dev->have_keys)
    {
      g_autoptr (GByteArray) aad = e2ee_rows_aad_keys (account, buddy, dev->key, dev->keys_local_caps,
                                             dev->keys_remote_caps);
      guint8 keys[KEYS_LEN];

      memcpy (keys, dev->k_send, E2EE_KEY_LEN);
      memcpy (keys + E2EE_KEY_LEN, dev->k_recv, E2EE_KEY_LEN);
      sqlite3_bind_int (st, 11, dev->keys_local_caps);
      sqlite3_bind_int (st, 12, dev->keys_remote_caps);
      ok = bind_secret (st, 13, seal, aad, keys, sizeof keys, error);
      e2ee_wipe (keys, sizeof keys);
    }
  ok = ok && e2ee_rows_step_done (store, st, error);
  sqlite3_clear_bindings (st);
  return ok;
}

gint64
e2ee_rows_write_buddy_row (E2eeStore *store, const E2eeAccountRecord *account,
                 const E2eeBuddyRecord *buddy, GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "INSERT INTO buddy (account_id, name, policy, key_changed, had_encrypted)"
    " VALUES ((SELECT id FROM account WHERE protocol = ?1 AND name = ?2), ?3, ?4, ?5, ?6)"
    " ON CONFLICT (account_id, name) DO UPDATE SET policy = excluded.policy,"
    " key_changed = excluded.key_changed, had_encrypted = excluded.had_encrypted"
    " RETURNING id", error);
  gint64 id = -1;
  int rc;

  if (st == NULL)
    return -1;
  sqlite3_bind_text (st, 1, account->protocol, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, account->name, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, buddy->name, -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 4, buddy->policy);
  sqlite3_bind_int (st, 5, buddy->key_changed ? 1 : 0);
  sqlite3_bind_int (st, 6, buddy->had_encrypted ? 1 : 0);
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      id = sqlite3_column_int64 (st, 0);
      rc = sqlite3_step (st);
    }
  if (rc != SQLITE_DONE)
    {
      e2ee_store_fail (store, rc, "write", error);
      id = -1;
    }
  sqlite3_reset (st);
  return id;
}

gboolean
e2ee_records_put_buddy (E2eeStore *store, const E2eeSeal *seal,
                        const E2eeAccountRecord *account, const E2eeBuddyRecord *buddy,
                        GError **error)
{
  sqlite3_stmt *del;
  gboolean own, ok = TRUE;
  gint64 id;

  if (!tx_begin (store, &own, error))
    return FALSE;
  id = e2ee_rows_write_buddy_row (store, account, buddy, error);
  if (id < 0)
    return tx_end (store, own, FALSE, error);
  /* Devices no longer in the record go; the others are written in
   * place, positions moved out of the way first. */
  del = e2ee_store_prepare (store, "UPDATE device SET pos = -1 - pos WHERE buddy_id = ?1", error);
  if (del != NULL)
    {
      sqlite3_bind_int64 (del, 1, id);
      ok = e2ee_rows_step_done (store, del, error);
    }
  else
    ok = FALSE;
  for (guint i = 0; ok && i < buddy->devices->len; i++)
    ok = e2ee_rows_write_device (store, seal, account, buddy->name, id, (gint) i,
                       g_ptr_array_index (buddy->devices, i), error);
  if (ok)
    {
      del = e2ee_store_prepare (store, "DELETE FROM device WHERE buddy_id = ?1 AND pos < 0",
                                error);
      ok = del != NULL;
      if (ok)
        {
          sqlite3_bind_int64 (del, 1, id);
          ok = e2ee_rows_step_done (store, del, error);
        }
    }
  return tx_end (store, own, ok, error);
}

gboolean
e2ee_records_put_device (E2eeStore *store, const E2eeSeal *seal,
                         const E2eeAccountRecord *account, const E2eeBuddyRecord *buddy,
                         const E2eeDeviceRecord *device, GError **error)
{
  gboolean own, ok;
  gint64 id;

  if (!tx_begin (store, &own, error))
    return FALSE;
  id = e2ee_rows_write_buddy_row (store, account, buddy, error);
  ok = id >= 0 && e2ee_rows_write_device (store, seal, account, buddy->name, id, -1, device, error);
  return tx_end (store, own, ok, error);
}

gboolean
e2ee_records_rename_account (E2eeStore *store, const char *protocol, const char *old_name,
                             const char *new_name, GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "UPDATE account SET name = ?3 WHERE protocol = ?1 AND name = ?2", error);
  gboolean own;

  if (st == NULL || !tx_begin (store, &own, error))
    return FALSE;
  sqlite3_bind_text (st, 1, protocol, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, old_name, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, new_name, -1, SQLITE_STATIC);
  return tx_end (store, own, e2ee_rows_step_done (store, st, error), error);
}

gboolean
e2ee_records_delete_buddy (E2eeStore *store, const E2eeAccountRecord *account,
                           const char *name, GError **error)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "DELETE FROM buddy WHERE name = ?3 AND account_id ="
    " (SELECT id FROM account WHERE protocol = ?1 AND name = ?2)", error);
  gboolean own;

  if (st == NULL || !tx_begin (store, &own, error))
    return FALSE;
  sqlite3_bind_text (st, 1, account->protocol, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, account->name, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, name, -1, SQLITE_STATIC);
  return tx_end (store, own, e2ee_rows_step_done (store, st, error), error);
}
