/* purple-e2ee — JWK Sets (RFC 7517 §5): the key set a device publishes.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-error.h"
#include "e2ee-json.h"
#include "e2ee-keyset.h"

GPtrArray *
e2ee_keyset_parse (const char *json, gssize len, GError **error)
{
  JsonNode *root;
  JsonNode *keys_node;
  JsonArray *arr;
  GPtrArray *keys = NULL;

  /* Depth 4: the set object, "keys", each JWK and its "e2ee_v" array. */
  root = e2ee_json_parse_strict (json, len, 4, E2EE_ERROR_JWK_SET, error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root)
      || !(keys_node = json_object_get_member (json_node_get_object (root), "keys"))
      || !JSON_NODE_HOLDS_ARRAY (keys_node))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                           "a JWK Set must be an object with a \"keys\" array");
      goto out;
    }
  arr = json_node_get_array (keys_node);
  if (json_array_get_length (arr) == 0 || json_array_get_length (arr) > E2EE_KEYSET_MAX)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                   "a JWK Set must hold 1 to %d keys", E2EE_KEYSET_MAX);
      goto out;
    }
  keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *el = json_array_get_element (arr, i);
      E2eeKey *key;

      if (!JSON_NODE_HOLDS_OBJECT (el))
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                               "a JWK Set entry is not an object");
          goto fail;
        }
      if (!json_object_has_member (json_node_get_object (el), "kid"))
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                               "a JWK Set entry has no \"kid\"");
          goto fail;
        }
      key = e2ee_key_from_jwk_object (json_node_get_object (el), E2EE_KEY_EXPECT_PUBLIC, error);
      if (key == NULL)
        goto fail;
      for (guint j = 0; j < keys->len; j++)
        if (e2ee_key_equal (key, keys->pdata[j]))
          {
            e2ee_key_unref (key);
            g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                                 "a JWK Set lists the same key twice");
            goto fail;
          }
      g_ptr_array_add (keys, key);
    }
  goto out;

fail:
  g_clear_pointer (&keys, g_ptr_array_unref);
out:
  json_node_unref (root);
  return keys;
}

char *
e2ee_keyset_to_json (GPtrArray *keys)
{
  JsonObject *set = json_object_new ();
  JsonArray *arr = json_array_new ();

  for (guint i = 0; i < keys->len; i++)
    json_array_add_object_element (arr, e2ee_key_to_jwk_object (keys->pdata[i], FALSE, TRUE));
  JsonNode *node;
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  char *text;

  json_object_set_array_member (set, "keys", arr);
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, set);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, NULL);
  json_node_unref (node);
  return text;
}
