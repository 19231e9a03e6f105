/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2ee-aead.h"
#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-import-json.h"
#include "e2ee-keyring-import.h"
#include "e2ee-store-records.h"
#include "e2ee-wipe.h"

#define LEGACY_FORMAT "purple-e2ee-keyring"

/* ---- version 1 keyring.json ------------------------------------------ */

/* The associated data of a sealed version 1 file: a length-prefixed
 * binary form of its clear part, in file order (accounts as listed,
 * buddies sorted by name as the writer left them). */
static void
aad_u64 (GByteArray *b, guint64 v)
{
  guint8 buf[8];
  for (int i = 7; i >= 0; i--, v >>= 8)
    buf[i] = (guint8) v;
  g_byte_array_append (b, buf, 8);
}

static void
aad_u8 (GByteArray *b, guint v)
{
  guint8 c = (guint8) v;
  g_byte_array_append (b, &c, 1);
}

static void
aad_str (GByteArray *b, const char *s)
{
  aad_u64 (b, strlen (s));
  g_byte_array_append (b, (const guint8 *) s, (guint) strlen (s));
}

static void
aad_key (GByteArray *b, const E2eeKey *key)
{
  g_byte_array_append (b, e2ee_key_get_x (key), E2EE_KEY_COORD_LEN);
  g_byte_array_append (b, e2ee_key_get_y (key), E2EE_KEY_COORD_LEN);
  aad_u8 (b, e2ee_key_get_caps (key));
}

static GByteArray *
legacy_aad (GPtrArray *accounts, GPtrArray *buddies)
{
  GByteArray *b = g_byte_array_new ();

  aad_str (b, LEGACY_FORMAT);
  aad_u64 (b, 1);
  aad_u64 (b, accounts->len);
  for (guint a = 0; a < accounts->len; a++)
    {
      E2eeAccountRecord *account = accounts->pdata[a];
      GPtrArray *list = buddies->pdata[a];

      aad_str (b, account->protocol);
      aad_str (b, account->name);
      aad_key (b, account->identity);
      aad_u64 (b, account->last_counter);
      aad_u64 (b, list->len);
      for (guint i = 0; i < list->len; i++)
        {
          E2eeBuddyRecord *buddy = list->pdata[i];

          aad_str (b, buddy->name);
          aad_u8 (b, buddy->policy);
          aad_u8 (b, buddy->key_changed ? 1 : 0);
          aad_u8 (b, buddy->had_encrypted ? 1 : 0);
          aad_u64 (b, buddy->devices->len);
          for (guint d = 0; d < buddy->devices->len; d++)
            {
              E2eeDeviceRecord *dev = buddy->devices->pdata[d];

              aad_key (b, dev->key);
              aad_u8 (b, dev->trust);
              aad_u64 (b, (guint64) dev->first_seen);
              aad_u64 (b, (guint64) dev->last_seen);
              aad_u8 (b, dev->replay_init ? 1 : 0);
              if (dev->replay_init)
                {
                  aad_u64 (b, dev->replay_high);
                  aad_u64 (b, dev->replay_window);
                }
            }
        }
    }
  return b;
}

/* Gives account @a its private key from scalar @d. */
static gboolean
set_private (E2eeAccountRecord *account, const guint8 d[32], GError **error)
{
  E2eeKey *key = e2ee_records_make_key (e2ee_key_get_x (account->identity),
                                        e2ee_key_get_y (account->identity), d,
                                        e2ee_key_get_caps (account->identity), error);
  if (key == NULL)
    return FALSE;
  e2ee_key_unref (account->identity);
  account->identity = key;
  return TRUE;
}

/* Opens the "sealed" member and gives every account its scalar. */
static gboolean
legacy_unseal (JsonObject *sealed, const char *passphrase, GPtrArray *accounts,
               GPtrArray *buddies, GError **error)
{
  static const char *const members[] = { "kdf", "t", "m", "p", "salt", "check", "iv", "ct",
                                         NULL };
  E2eeSealSetting params = { { 0 } };
  g_autoptr (E2eeSeal) seal = NULL;
  g_autoptr (E2eeAead) aead = NULL;
  g_autoptr (GByteArray) aad = NULL;
  guint8 iv[E2EE_AEAD_IV_LEN];
  const char *kdf, *ct_text;
  gint64 t, m, p;
  guint8 *ct = NULL, *plain = NULL;
  gsize ct_len = 0, n = 0;
  JsonNode *root = NULL;
  JsonArray *list;
  gboolean ok = FALSE;

  if (!e2ee_ij_only_members (sealed, members, "sealed", error)
      || (kdf = e2ee_ij_get_str (sealed, "kdf", "sealed", error)) == NULL
      || !e2ee_ij_get_int (sealed, "t", 0, G_MAXUINT32, &t, "sealed", error)
      || !e2ee_ij_get_int (sealed, "m", 0, G_MAXUINT32, &m, "sealed", error)
      || !e2ee_ij_get_int (sealed, "p", 0, G_MAXUINT32, &p, "sealed", error)
      || !e2ee_ij_get_b64 (sealed, "salt", params.salt, sizeof params.salt, "sealed", error)
      || !e2ee_ij_get_b64 (sealed, "check", params.check, sizeof params.check, "sealed", error)
      || !e2ee_ij_get_b64 (sealed, "iv", iv, sizeof iv, "sealed", error)
      || (ct_text = e2ee_ij_get_str (sealed, "ct", "sealed", error)) == NULL)
    return FALSE;
  g_strlcpy (params.kdf, kdf, sizeof params.kdf);
  params.t = (guint32) t;
  params.m = (guint32) m;
  params.p = (guint32) p;
  ct = e2ee_b64url_decode (ct_text, strlen (ct_text), &ct_len, NULL);
  if (ct == NULL || ct_len < E2EE_AEAD_TAG_LEN)
    {
      e2ee_ij_bad (error, "\"ct\" in sealed is malformed");
      goto out;
    }
  /* Any costs within the maxima open an old file; the database is then
   * sealed with today's minimum or more. */
  seal = e2ee_seal_unlock (passphrase, &params, error);
  if (seal == NULL || (aead = e2ee_aead_new (e2ee_seal_get_key (seal), error)) == NULL)
    goto out;
  aad = legacy_aad (accounts, buddies);
  n = ct_len - E2EE_AEAD_TAG_LEN;
  plain = e2ee_secret_alloc (n + 1);
  if (!e2ee_aead_open (aead, iv, aad->data, aad->len, ct, n, ct + n, plain, NULL))
    {
      e2ee_ij_bad (error, "the sealed part does not match the file (damaged or edited)");
      goto out;
    }
  root = e2ee_ij_parse_text ((const char *) plain, (gssize) n, error);
  if (root == NULL || (list = e2ee_ij_get_arr (json_node_get_object (root), "accounts", "sealed secrets",
                                       error)) == NULL)
    goto out;
  if (json_array_get_length (list) != accounts->len)
    {
      e2ee_ij_bad (error, "the sealed part lists %u accounts, the file %u",
           json_array_get_length (list), accounts->len);
      goto out;
    }
  for (guint a = 0; a < accounts->len; a++)
    {
      E2eeAccountRecord *account = accounts->pdata[a];
      JsonObject *o = e2ee_ij_arr_obj (list, a, "sealed secrets", error);
      const char *protocol, *name;
      guint8 d[32];
      gboolean set;

      if (o == NULL || (protocol = e2ee_ij_get_str (o, "protocol", "sealed secrets", error)) == NULL
          || (name = e2ee_ij_get_str (o, "name", "sealed secrets", error)) == NULL)
        goto out;
      if (strcmp (protocol, account->protocol) != 0 || strcmp (name, account->name) != 0)
        {
          e2ee_ij_bad (error, "the sealed part does not match account %s", account->name);
          goto out;
        }
      set = e2ee_ij_get_b64 (o, "d", d, sizeof d, "sealed secrets", error) && set_private (account, d, error);
      e2ee_wipe (d, sizeof d);
      if (!set)
        goto out;
    }
  ok = TRUE;

out:
  e2ee_ij_wipe_tree (root);
  if (root != NULL)
    json_node_unref (root);
  e2ee_secret_free (plain, n + 1);
  g_free (ct);
  e2ee_wipe (&params, sizeof params);
  return ok;
}

static gboolean
legacy_parse (const char *text, gsize len, const char *passphrase, GPtrArray *accounts,
              GPtrArray *buddies, GError **error)
{
  static const char *const root_members[] = { "format", "version", "accounts", "sealed", NULL };
  static const char *const account_members[] = { "protocol", "name", "identity",
                                                 "last_counter", "buddies", NULL };
  JsonNode *root = e2ee_ij_parse_text (text, (gssize) len, error);
  JsonObject *o, *sealed = NULL;
  JsonArray *list;
  const char *format;
  gint64 version;
  gboolean ok = FALSE;

  if (root == NULL)
    return FALSE;
  o = json_node_get_object (root);
  if (!e2ee_ij_only_members (o, root_members, "the file", error)
      || (format = e2ee_ij_get_str (o, "format", "the file", error)) == NULL
      || !e2ee_ij_get_int (o, "version", 0, G_MAXINT64, &version, "the file", error))
    goto out;
  if (strcmp (format, LEGACY_FORMAT) != 0)
    {
      e2ee_ij_bad (error, "not a purple-e2ee keyring (format \"%s\")", format);
      goto out;
    }
  if (version != 1)
    {
      g_set_error (error, E2EE_ERROR, version > 1 ? E2EE_ERROR_KEYRING_VERSION
                                                  : E2EE_ERROR_KEYRING_CORRUPT,
                   "keyring import: format version %" G_GINT64_FORMAT " is not 1", version);
      goto out;
    }
  if (json_object_has_member (o, "sealed")
      && (sealed = e2ee_ij_get_obj (o, "sealed", "the file", error)) == NULL)
    goto out;
  if ((list = e2ee_ij_get_arr (o, "accounts", "the file", error)) == NULL)
    goto out;
  for (guint a = 0; a < json_array_get_length (list); a++)
    {
      JsonObject *ao = e2ee_ij_arr_obj (list, a, "accounts", error), *jwk;
      const char *protocol, *name;
      gint64 counter;
      JsonArray *bl;
      g_autoptr (E2eeKey) key = NULL;
      GPtrArray *mine;

      if (ao == NULL || !e2ee_ij_only_members (ao, account_members, "an account", error)
          || (protocol = e2ee_ij_get_str (ao, "protocol", "an account", error)) == NULL
          || (name = e2ee_ij_get_str (ao, "name", "an account", error)) == NULL
          || (jwk = e2ee_ij_get_obj (ao, "identity", "an account", error)) == NULL
          || !e2ee_ij_get_int (ao, "last_counter", 0, G_MAXINT64, &counter, "an account", error)
          || (bl = e2ee_ij_get_arr (ao, "buddies", "an account", error)) == NULL)
        goto out;
      key = e2ee_key_from_jwk_object (jwk, sealed != NULL ? E2EE_KEY_EXPECT_PUBLIC
                                                          : E2EE_KEY_EXPECT_PRIVATE, error);
      e2ee_ij_wipe_tree (json_object_get_member (jwk, "d"));
      if (key == NULL)
        {
          g_prefix_error (error, "keyring import: identity of %s: ", name);
          if (error != NULL && *error != NULL)
            (*error)->code = E2EE_ERROR_KEYRING_CORRUPT;
          goto out;
        }
      g_ptr_array_add (accounts, e2ee_account_record_new (protocol, name, key));
      ((E2eeAccountRecord *) accounts->pdata[a])->last_counter = (guint64) counter;
      mine = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_records_buddy_free);
      g_ptr_array_add (buddies, mine);
      for (guint b = 0; b < json_array_get_length (bl); b++)
        {
          JsonObject *bo = e2ee_ij_arr_obj (bl, b, "buddies", error);
          E2eeBuddyRecord *buddy = bo != NULL ? e2ee_ij_read_buddy (bo, TRUE, error) : NULL;

          if (buddy == NULL)
            goto out;
          g_ptr_array_add (mine, buddy);
        }
    }
  ok = sealed == NULL || legacy_unseal (sealed, passphrase, accounts, buddies, error);

out:
  e2ee_ij_wipe_tree (root);
  json_node_unref (root);
  return ok;
}

guint
e2ee_keyring_import_reconfirm_own (GPtrArray *accounts, GPtrArray *buddies)
{
  guint total = 0;

  for (guint a = 0; a < accounts->len; a++)
    {
      E2eeAccountRecord *account = accounts->pdata[a];
      GPtrArray *list = buddies->pdata[a];

      for (guint b = 0; b < list->len; b++)
        {
          E2eeBuddyRecord *buddy = list->pdata[b];

          if (strcmp (buddy->name, account->name) != 0)
            continue;
          for (guint d = 0; d < buddy->devices->len; d++)
            {
              E2eeDeviceRecord *dev = buddy->devices->pdata[d];

              if ((dev->trust == E2EE_TRUST_TOFU || dev->trust == E2EE_TRUST_VERIFIED)
                  && !e2ee_key_equal (dev->key, account->identity))
                {
                  dev->trust = E2EE_TRUST_UNDECIDED;
                  account->own_reconfirm++;
                  total++;
                }
            }
        }
    }
  return total;
}

static char *
stored_digest (E2eeStore *store)
{
  sqlite3_stmt *st = e2ee_store_prepare (store,
    "SELECT value FROM meta WHERE key = 'legacy_import_sha256'", NULL);
  char *out = NULL;

  if (st != NULL && sqlite3_step (st) == SQLITE_ROW)
    out = g_strdup ((const char *) sqlite3_column_text (st, 0));
  if (st != NULL)
    sqlite3_reset (st);
  return out;
}

static void
remove_legacy (const char *path)
{
  g_autofree char *backup = g_strconcat (path, "~", NULL);
  g_autofree char *lock = g_strconcat (path, ".lock", NULL);

  unlink (path);
  unlink (backup);
  unlink (lock);
}

gboolean
e2ee_keyring_import_legacy (E2eeStore *store, const E2eeSeal *seal, const char *json_path,
                            const char *passphrase, gboolean *imported, GError **error)
{
  g_autoptr (GPtrArray) accounts = NULL;
  g_autoptr (GPtrArray) buddies = NULL;
  g_autofree char *digest = NULL;
  g_autofree char *done = NULL;
  g_autoptr (GError) local = NULL;
  char *text = NULL;
  gsize len = 0;
  struct stat st;
  gboolean ok;

  *imported = FALSE;
  if (lstat (json_path, &st) != 0)
    {
      if (errno == ENOENT)
        return TRUE;
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO, "keyring import: %s: %s",
                   json_path, g_strerror (errno));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode) || (st.st_mode & 077) != 0)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS,
                   "keyring import: %s is not a private regular file (chmod 600 it)", json_path);
      return FALSE;
    }
  if ((guint64) st.st_size > E2EE_IMPORT_MAX_BYTES)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_LIMIT,
                   "keyring import: %s is larger than %u bytes", json_path,
                   E2EE_IMPORT_MAX_BYTES);
      return FALSE;
    }
  if (!g_file_get_contents (json_path, &text, &len, &local))
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO, "keyring import: %s",
                   local->message);
      return FALSE;
    }
  digest = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) text, len);
  done = stored_digest (store);
  if (done != NULL && strcmp (done, digest) == 0)
    {
      /* Imported before a crash kept us from deleting it. */
      e2ee_secret_free (text, len);
      remove_legacy (json_path);
      return TRUE;
    }
  accounts = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_account_record_free);
  buddies = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  ok = legacy_parse (text, len, passphrase, accounts, buddies, error);
  e2ee_secret_free (text, len);
  if (ok)
    e2ee_keyring_import_reconfirm_own (accounts, buddies);
  if (!ok || !e2ee_ij_write_all (store, seal, accounts, buddies, digest, error))
    return FALSE;
  remove_legacy (json_path);
  *imported = TRUE;
  return TRUE;
}
