/* Strict reading of json-glib trees for the keyring import formats.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <gcrypt.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2ee-aead.h"
#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-import-json.h"
#include "e2ee-json.h"
#include "e2ee-store-records.h"
#include "e2ee-wipe.h"

/* ---- strict reading of json-glib trees ------------------------------- */

gboolean G_GNUC_PRINTF (2, 3)
e2ee_ij_bad (GError **error, const char *format, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, format);
  msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT, "keyring import: %s", msg);
  return FALSE;
}

gboolean
e2ee_ij_only_members (JsonObject *o, const char *const *allowed, const char *where, GError **error)
{
  g_autoptr (GList) names = json_object_get_members (o);

  for (GList *l = names; l != NULL; l = l->next)
    if (!g_strv_contains (allowed, l->data))
      return e2ee_ij_bad (error, "unknown member \"%s\" in %s", (const char *) l->data, where);
  return TRUE;
}

static JsonNode *
member (JsonObject *o, const char *name, JsonNodeType type, GType vtype, const char *where,
        GError **error)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL || json_node_get_node_type (n) != type
      || (type == JSON_NODE_VALUE && json_node_get_value_type (n) != vtype))
    {
      e2ee_ij_bad (error, "\"%s\" in %s is missing or of the wrong type", name, where);
      return NULL;
    }
  return n;
}

const char *
e2ee_ij_get_str (JsonObject *o, const char *name, const char *where, GError **error)
{
  JsonNode *n = member (o, name, JSON_NODE_VALUE, G_TYPE_STRING, where, error);
  return n != NULL ? json_node_get_string (n) : NULL;
}

gboolean
e2ee_ij_get_int (JsonObject *o, const char *name, gint64 min, gint64 max, gint64 *out,
         const char *where, GError **error)
{
  JsonNode *n = member (o, name, JSON_NODE_VALUE, G_TYPE_INT64, where, error);

  if (n == NULL)
    return FALSE;
  *out = json_node_get_int (n);
  return (*out >= min && *out <= max) || e2ee_ij_bad (error, "\"%s\" in %s is out of range", name, where);
}

gboolean
e2ee_ij_get_bool (JsonObject *o, const char *name, gboolean *out, const char *where, GError **error)
{
  JsonNode *n = member (o, name, JSON_NODE_VALUE, G_TYPE_BOOLEAN, where, error);

  if (n != NULL)
    *out = json_node_get_boolean (n);
  return n != NULL;
}

JsonObject *
e2ee_ij_get_obj (JsonObject *o, const char *name, const char *where, GError **error)
{
  JsonNode *n = member (o, name, JSON_NODE_OBJECT, G_TYPE_INVALID, where, error);
  return n != NULL ? json_node_get_object (n) : NULL;
}

JsonArray *
e2ee_ij_get_arr (JsonObject *o, const char *name, const char *where, GError **error)
{
  JsonNode *n = member (o, name, JSON_NODE_ARRAY, G_TYPE_INVALID, where, error);
  return n != NULL ? json_node_get_array (n) : NULL;
}

JsonObject *
e2ee_ij_arr_obj (JsonArray *a, guint i, const char *where, GError **error)
{
  JsonNode *n = json_array_get_element (a, i);

  if (json_node_get_node_type (n) != JSON_NODE_OBJECT)
    {
      e2ee_ij_bad (error, "an element of %s is not an object", where);
      return NULL;
    }
  return json_node_get_object (n);
}

gboolean
e2ee_ij_get_b64 (JsonObject *o, const char *name, guint8 *out, gsize len, const char *where,
         GError **error)
{
  const char *text = e2ee_ij_get_str (o, name, where, error);
  gsize n = 0;
  guint8 *raw;

  if (text == NULL)
    return FALSE;
  raw = e2ee_b64url_decode (text, strlen (text), &n, NULL);
  if (raw == NULL || n != len)
    {
      e2ee_secret_free (raw, n);
      return e2ee_ij_bad (error, "\"%s\" in %s is not %" G_GSIZE_FORMAT " bytes of base64url",
                  name, where, len);
    }
  memcpy (out, raw, len);
  e2ee_secret_free (raw, n);
  return TRUE;
}

/* Overwrites every string of a tree that held secrets. */
void
e2ee_ij_wipe_tree (JsonNode *node)
{
  if (node == NULL)
    return;
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      g_autoptr (GList) values = json_object_get_values (json_node_get_object (node));
      for (GList *l = values; l != NULL; l = l->next)
        e2ee_ij_wipe_tree (l->data);
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *a = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (a); i++)
        e2ee_ij_wipe_tree (json_array_get_element (a, i));
    }
  else if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    {
      char *s = (char *) json_node_get_string (node);
      if (s != NULL)
        e2ee_wipe (s, strlen (s));
    }
}

JsonNode *
e2ee_ij_parse_text (const char *text, gssize len, GError **error)
{
  /* The whole RFC 8259 grammar, no duplicate members, bounded depth, no
   * NUL: what json-glib alone does not check. */
  JsonNode *root = e2ee_json_parse_strict (text, len, E2EE_JSON_MAX_DEPTH,
                                           E2EE_ERROR_KEYRING_CORRUPT, error);

  if (root != NULL && !JSON_NODE_HOLDS_OBJECT (root))
    {
      json_node_unref (root);
      e2ee_ij_bad (error, "not a JSON object");
      return NULL;
    }
  if (root == NULL && error != NULL && *error != NULL)
    g_prefix_error (error, "keyring import: ");
  return root;
}

/* ---- buddies and devices, shared by both formats ---------------------- */

static const char *const device_legacy[] = { "jwk", "trust", "first_seen", "last_seen",
                                             "replay", "derived", NULL };
static const char *const device_backup[] = { "jwk", "trust", "first_seen", "last_seen", NULL };
static const char *const buddy_members[] = { "name", "policy", "key_changed", "had_encrypted",
                                             "devices", NULL };

static E2eeDeviceRecord *
read_device (JsonObject *o, gboolean legacy, GError **error)
{
  const char *trust_s;
  E2eeTrust trust;
  gint64 first, last;
  g_autoptr (E2eeKey) key = NULL;
  JsonObject *jwk, *replay;
  E2eeDeviceRecord *dev;

  if (!e2ee_ij_only_members (o, legacy ? device_legacy : device_backup, "a device", error)
      || (jwk = e2ee_ij_get_obj (o, "jwk", "a device", error)) == NULL
      || (trust_s = e2ee_ij_get_str (o, "trust", "a device", error)) == NULL
      || !e2ee_ij_get_int (o, "first_seen", 0, G_MAXINT64, &first, "a device", error)
      || !e2ee_ij_get_int (o, "last_seen", 0, G_MAXINT64, &last, "a device", error))
    return NULL;
  if (!e2ee_trust_from_string (trust_s, &trust))
    {
      e2ee_ij_bad (error, "unknown trust \"%s\"", trust_s);
      return NULL;
    }
  key = e2ee_key_from_jwk_object (jwk, E2EE_KEY_EXPECT_PUBLIC, error);
  if (key == NULL)
    {
      if (error != NULL && *error != NULL)
        {
          g_prefix_error (error, "keyring import: a device key: ");
          (*error)->code = E2EE_ERROR_KEYRING_CORRUPT;
        }
      return NULL;
    }
  dev = e2ee_device_record_new (key, trust, first);
  dev->last_seen = last;
  if (legacy && json_object_has_member (o, "replay"))
    {
      static const char *const replay_members[] = { "high", "window", NULL };
      const char *window;
      gint64 high;
      char *end = NULL;

      if ((replay = e2ee_ij_get_obj (o, "replay", "a device", error)) == NULL
          || !e2ee_ij_only_members (replay, replay_members, "replay state", error)
          || !e2ee_ij_get_int (replay, "high", 0, G_MAXINT64, &high, "replay state", error)
          || (window = e2ee_ij_get_str (replay, "window", "replay state", error)) == NULL)
        goto fail;
      if (strlen (window) != 16 || !g_ascii_isxdigit (window[0]))
        {
          e2ee_ij_bad (error, "replay window \"%s\" is not 16 hex digits", window);
          goto fail;
        }
      dev->replay_window = g_ascii_strtoull (window, &end, 16);
      if (end == NULL || *end != '\0')
        {
          e2ee_ij_bad (error, "replay window \"%s\" is not 16 hex digits", window);
          goto fail;
        }
      dev->replay_init = TRUE;
      dev->replay_high = (guint64) high;
    }
  return dev;

fail:
  e2ee_device_record_free (dev);
  return NULL;
}

E2eeBuddyRecord *
e2ee_ij_read_buddy (JsonObject *o, gboolean legacy, GError **error)
{
  const char *name, *policy_s;
  E2eePolicy policy;
  gboolean changed, had;
  JsonArray *devs;
  E2eeBuddyRecord *buddy;

  if (!e2ee_ij_only_members (o, buddy_members, "a buddy", error)
      || (name = e2ee_ij_get_str (o, "name", "a buddy", error)) == NULL
      || (policy_s = e2ee_ij_get_str (o, "policy", "a buddy", error)) == NULL
      || !e2ee_ij_get_bool (o, "key_changed", &changed, "a buddy", error)
      || !e2ee_ij_get_bool (o, "had_encrypted", &had, "a buddy", error)
      || (devs = e2ee_ij_get_arr (o, "devices", "a buddy", error)) == NULL)
    return NULL;
  if (*name == '\0' || !g_utf8_validate (name, -1, NULL))
    {
      e2ee_ij_bad (error, "a buddy name is empty or not UTF-8");
      return NULL;
    }
  if (!e2ee_policy_from_string (policy_s, &policy))
    {
      e2ee_ij_bad (error, "unknown policy \"%s\"", policy_s);
      return NULL;
    }
  buddy = g_new0 (E2eeBuddyRecord, 1);
  buddy->name = g_strdup (name);
  buddy->policy = policy;
  buddy->key_changed = changed;
  buddy->had_encrypted = had;
  buddy->devices = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_device_record_free);
  for (guint i = 0; i < json_array_get_length (devs); i++)
    {
      JsonObject *d = e2ee_ij_arr_obj (devs, i, "devices", error);
      E2eeDeviceRecord *dev = d != NULL ? read_device (d, legacy, error) : NULL;

      if (dev == NULL)
        goto fail;
      if (e2ee_buddy_find_device (buddy, dev->key) != NULL)
        {
          e2ee_device_record_free (dev);
          e2ee_ij_bad (error, "buddy %s lists a device twice", name);
          goto fail;
        }
      g_ptr_array_add (buddy->devices, dev);
    }
  return buddy;

fail:
  e2ee_records_buddy_free (buddy);
  return NULL;
}

/* Writes @accounts (with their ordered @buddies lists) in one
 * transaction, into a store without accounts. */
gboolean
e2ee_ij_write_all (E2eeStore *store, const E2eeSeal *seal, GPtrArray *accounts, GPtrArray *buddies,
           const char *digest, GError **error)
{
  sqlite3_stmt *st;
  gboolean ok = TRUE;

  if (!e2ee_store_begin (store, error))
    return FALSE;
  st = e2ee_store_prepare (store, "SELECT count(*) FROM account", error);
  if (st == NULL || sqlite3_step (st) != SQLITE_ROW)
    ok = st != NULL && e2ee_store_fail (store, SQLITE_IOERR, "read", error);
  else if (sqlite3_column_int64 (st, 0) != 0)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_NOT_EMPTY,
                   "keyring %s already holds accounts: import only into a new keyring "
                   "(move the database away first)", e2ee_store_get_path (store));
      ok = FALSE;
    }
  if (st != NULL)
    sqlite3_reset (st);
  for (guint a = 0; ok && a < accounts->len; a++)
    {
      GPtrArray *list = buddies->pdata[a];

      ok = e2ee_records_put_account (store, seal, accounts->pdata[a], error);
      for (guint b = 0; ok && b < list->len; b++)
        ok = e2ee_records_put_buddy (store, seal, accounts->pdata[a], list->pdata[b], error);
    }
  if (ok && digest != NULL)
    {
      st = e2ee_store_prepare (store,
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('legacy_import_sha256', ?1)", error);
      ok = st != NULL;
      if (ok)
        {
          sqlite3_bind_text (st, 1, digest, -1, SQLITE_STATIC);
          ok = sqlite3_step (st) == SQLITE_DONE || e2ee_store_fail (store, SQLITE_IOERR,
                                                                    "write", error);
          sqlite3_reset (st);
        }
    }
  if (!ok)
    {
      e2ee_store_rollback (store);
      return FALSE;
    }
  return e2ee_store_commit (store, error);
}

