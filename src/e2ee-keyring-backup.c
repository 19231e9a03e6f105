/* The portable backup: export and import (e2ee-keyring-import.h).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-import-json.h"
#include "e2ee-keyring-import.h"
#include "e2ee-store-records.h"
#include "e2ee-wipe.h"

static gint
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(E2eeBuddyRecord *const *) a)->name, (*(E2eeBuddyRecord *const *) b)->name);
}

static JsonNode *
device_node (const E2eeDeviceRecord *dev)
{
  JsonObject *o = json_object_new ();
  JsonNode *n = json_node_new (JSON_NODE_OBJECT);

  json_object_set_object_member (o, "jwk", e2ee_key_to_jwk_object (dev->key, FALSE, TRUE));
  json_object_set_string_member (o, "trust", e2ee_trust_to_string (dev->trust));
  json_object_set_int_member (o, "first_seen", dev->first_seen);
  json_object_set_int_member (o, "last_seen", dev->last_seen);
  json_node_take_object (n, o);
  return n;
}

static JsonNode *
account_node (E2eeAccountRecord *account)
{
  JsonObject *o = json_object_new ();
  JsonArray *list = json_array_new ();
  JsonNode *n = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  json_object_set_string_member (o, "protocol", account->protocol);
  json_object_set_string_member (o, "name", account->name);
  json_object_set_object_member (o, "identity",
                                 e2ee_key_to_jwk_object (account->identity, TRUE, TRUE));
  g_hash_table_iter_init (&iter, account->buddies);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (sorted, value);
  g_ptr_array_sort (sorted, by_name);
  for (guint b = 0; b < sorted->len; b++)
    {
      E2eeBuddyRecord *buddy = sorted->pdata[b];
      JsonObject *bo = json_object_new ();
      JsonArray *devs = json_array_new ();

      json_object_set_string_member (bo, "name", buddy->name);
      json_object_set_string_member (bo, "policy", e2ee_policy_to_string (buddy->policy));
      json_object_set_boolean_member (bo, "key_changed", buddy->key_changed);
      json_object_set_boolean_member (bo, "had_encrypted", buddy->had_encrypted);
      for (guint d = 0; d < buddy->devices->len; d++)
        json_array_add_element (devs, device_node (buddy->devices->pdata[d]));
      json_object_set_array_member (bo, "devices", devs);
      json_array_add_object_element (list, bo);
    }
  json_object_set_array_member (o, "buddies", list);
  json_node_take_object (n, o);
  return n;
}

char *
e2ee_keyring_export (E2eeStore *store, const E2eeSeal *seal, GError **error)
{
  g_autoptr (GPtrArray) accounts = e2ee_records_load_accounts (store, seal, TRUE, error);
  g_autoptr (JsonGenerator) gen = NULL;
  JsonObject *root;
  JsonArray *list;
  JsonNode *node;
  char *text;

  if (accounts == NULL)
    return NULL;
  root = json_object_new ();
  list = json_array_new ();
  json_object_set_string_member (root, "format", E2EE_BACKUP_FORMAT);
  json_object_set_int_member (root, "version", E2EE_BACKUP_VERSION);
  for (guint a = 0; a < accounts->len; a++)
    json_array_add_element (list, account_node (accounts->pdata[a]));
  json_object_set_array_member (root, "accounts", list);
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, root);
  gen = json_generator_new ();
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, NULL);
  json_generator_set_root (gen, NULL);
  e2ee_ij_wipe_tree (node);
  json_node_unref (node);
  return text;
}

gboolean
e2ee_keyring_import_backup (E2eeStore *store, const E2eeSeal *seal, const char *json,
                            gsize len, guint64 now_counter, GError **error)
{
  static const char *const root_members[] = { "format", "version", "accounts", NULL };
  static const char *const account_members[] = { "protocol", "name", "identity", "buddies",
                                                 NULL };
  g_autoptr (GPtrArray) accounts = NULL;
  g_autoptr (GPtrArray) buddies = NULL;
  JsonNode *root;
  JsonObject *o;
  JsonArray *list;
  const char *format;
  gint64 version;
  gboolean ok = FALSE;

  if (len > E2EE_IMPORT_MAX_BYTES)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_LIMIT,
                   "keyring import: the backup is larger than %u bytes", E2EE_IMPORT_MAX_BYTES);
      return FALSE;
    }
  root = e2ee_ij_parse_text (json, (gssize) len, error);
  if (root == NULL)
    return FALSE;
  accounts = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_account_record_free);
  buddies = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  o = json_node_get_object (root);
  if (!e2ee_ij_only_members (o, root_members, "the backup", error)
      || (format = e2ee_ij_get_str (o, "format", "the backup", error)) == NULL
      || !e2ee_ij_get_int (o, "version", 0, G_MAXINT64, &version, "the backup", error)
      || (list = e2ee_ij_get_arr (o, "accounts", "the backup", error)) == NULL)
    goto out;
  if (strcmp (format, E2EE_BACKUP_FORMAT) != 0 || version != E2EE_BACKUP_VERSION)
    {
      g_set_error (error, E2EE_ERROR, version > E2EE_BACKUP_VERSION ? E2EE_ERROR_KEYRING_VERSION
                                                                    : E2EE_ERROR_KEYRING_CORRUPT,
                   "keyring import: not a version %d purple-e2ee backup", E2EE_BACKUP_VERSION);
      goto out;
    }
  for (guint a = 0; a < json_array_get_length (list); a++)
    {
      JsonObject *ao = e2ee_ij_arr_obj (list, a, "accounts", error), *jwk;
      const char *protocol, *name;
      g_autoptr (E2eeKey) key = NULL;
      JsonArray *bl;
      GPtrArray *mine;

      if (ao == NULL || !e2ee_ij_only_members (ao, account_members, "an account", error)
          || (protocol = e2ee_ij_get_str (ao, "protocol", "an account", error)) == NULL
          || (name = e2ee_ij_get_str (ao, "name", "an account", error)) == NULL
          || (jwk = e2ee_ij_get_obj (ao, "identity", "an account", error)) == NULL
          || (bl = e2ee_ij_get_arr (ao, "buddies", "an account", error)) == NULL)
        goto out;
      for (guint i = 0; i < accounts->len; i++)
        {
          E2eeAccountRecord *other = accounts->pdata[i];
          if (strcmp (other->protocol, protocol) == 0 && strcmp (other->name, name) == 0)
            {
              e2ee_ij_bad (error, "account %s is listed twice", name);
              goto out;
            }
        }
      key = e2ee_key_from_jwk_object (jwk, E2EE_KEY_EXPECT_PRIVATE, error);
      if (key == NULL)
        {
          g_prefix_error (error, "keyring import: identity of %s: ", name);
          if (error != NULL && *error != NULL)
            (*error)->code = E2EE_ERROR_KEYRING_CORRUPT;
          goto out;
        }
      g_ptr_array_add (accounts, e2ee_account_record_new (protocol, name, key));
      mine = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_records_buddy_free);
      g_ptr_array_add (buddies, mine);
      for (guint b = 0; b < json_array_get_length (bl); b++)
        {
          JsonObject *bo = e2ee_ij_arr_obj (bl, b, "buddies", error);
          E2eeBuddyRecord *buddy = bo != NULL ? e2ee_ij_read_buddy (bo, FALSE, error) : NULL;

          if (buddy == NULL)
            goto out;
          for (guint i = 0; i < mine->len; i++)
            if (strcmp (((E2eeBuddyRecord *) mine->pdata[i])->name, buddy->name) == 0)
              {
                e2ee_ij_bad (error, "buddy %s is listed twice", buddy->name);
                e2ee_records_buddy_free (buddy);
                goto out;
              }
          /* Sessions start afresh: everything sealed before now counts
           * as seen, so no envelope from before the backup's restore is
           * accepted (again). */
          for (guint d = 0; d < buddy->devices->len; d++)
            {
              E2eeDeviceRecord *dev = buddy->devices->pdata[d];
              dev->replay_init = TRUE;
              dev->replay_high = now_counter;
              dev->replay_window = G_MAXUINT64;
            }
          g_ptr_array_add (mine, buddy);
        }
    }
  e2ee_keyring_import_reconfirm_own (accounts, buddies);
  ok = e2ee_ij_write_all (store, seal, accounts, buddies, NULL, error);

out:
  e2ee_ij_wipe_tree (root);
  json_node_unref (root);
  return ok;
}
