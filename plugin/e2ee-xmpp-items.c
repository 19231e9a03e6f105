/* purple-e2ee — the stanzas of our PEP node: the item payload, reading
 * the items of a node (or a vCard's key block) and learning what they
 * hold, and the +notify feature in our disco#info.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include <xmlnode.h>

#include "e2ee-plugin.h"

/* At most this many items (installations) of one node are read. */
#define ITEMS_MAX 16

/* ---- the key list: <keys xmlns=NS>compact key set</keys> ---- */

xmlnode *
e2ee_xmpp_keys_payload (GPtrArray *keys)
{
  xmlnode *payload = xmlnode_new ("keys");
  g_autofree char *compact = e2ee_offer_compact_encode (keys);

  xmlnode_set_namespace (payload, E2EE_XMPP_NODE);
  xmlnode_insert_data (payload, compact, -1);
  return payload;
}

void
e2ee_xmpp_add_field (xmlnode *x, const char *var, const char *type, const char *value)
{
  xmlnode *field = xmlnode_new_child (x, "field");

  xmlnode_set_attrib (field, "var", var);
  if (type != NULL)
    xmlnode_set_attrib (field, "type", type);
  xmlnode_insert_data (xmlnode_new_child (field, "value"), value, -1);
}

/* The union of the key sets of every item (each installation has one). */
GPtrArray *
e2ee_xmpp_parse_items (xmlnode *items)
{
  GPtrArray *all = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  guint n = 0;

  for (xmlnode *item = xmlnode_get_child (items, "item"); item != NULL && n < ITEMS_MAX;
       item = xmlnode_get_next_twin (item), n++)
    {
      xmlnode *payload = xmlnode_get_child_with_namespace (item, "keys", E2EE_XMPP_NODE);
      g_autofree char *text = payload != NULL ? xmlnode_get_data (payload) : NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) keys = NULL;

      if (text == NULL)
        continue;
      g_strstrip (text);
      keys = e2ee_offer_compact_decode (text, strlen (text), &error);
      if (keys == NULL)
        {
          purple_debug_info (E2EE_DEBUG_CAT, "ignoring a malformed PEP item: %s\n",
                             error->message);
          continue;
        }
      for (guint i = 0; i < keys->len && all->len < E2EE_KEYSET_MAX; i++)
        {
          E2eeKey *k = g_ptr_array_index (keys, i);
          gboolean seen = FALSE;

          for (guint j = 0; j < all->len && !seen; j++)
            seen = e2ee_key_equal (g_ptr_array_index (all, j), k);
          if (!seen)
            g_ptr_array_add (all, e2ee_key_ref (k));
        }
    }
  return all;
}

/* ---- +notify: the server pushes changes of the node we list ---- */

void
e2ee_xmpp_notify_cb (PurpleConnection *gc, xmlnode **packet, gpointer data)
{
  xmlnode *iq, *query, *feature;
  const char *node;

  if (gc == NULL || packet == NULL || (iq = *packet) == NULL
      || g_strcmp0 (iq->name, "iq") != 0
      || g_strcmp0 (xmlnode_get_attrib (iq, "type"), "result") != 0
      || !purple_prefs_get_bool (E2EE_PREF_XMPP_NOTIFY))
    return;
  query = xmlnode_get_child_with_namespace (iq, "query", E2EE_NS_DISCO_INFO);
  if (query == NULL)
    return;
  /* Our own disco#info (plain, or for the caps node libpurple announces). */
  node = xmlnode_get_attrib (query, "node");
  if (node != NULL && strchr (node, '#') == NULL)
    return;
  for (feature = xmlnode_get_child (query, "feature"); feature != NULL;
       feature = xmlnode_get_next_twin (feature))
    if (g_strcmp0 (xmlnode_get_attrib (feature, "var"), E2EE_XMPP_NODE "+notify") == 0)
      return;
  feature = xmlnode_new_child (query, "feature");
  xmlnode_set_attrib (feature, "var", E2EE_XMPP_NODE "+notify");
}


GPtrArray *
e2ee_xmpp_parse_vcard (xmlnode *iq)
{
  xmlnode *vcard = xmlnode_get_child_with_namespace (iq, "vCard", "vcard-temp");
  xmlnode *desc = vcard != NULL ? xmlnode_get_child (vcard, "DESC") : NULL;
  g_autofree char *text = desc != NULL ? xmlnode_get_data (desc) : NULL;

  if (text == NULL || strstr (text, E2EE_PROFILE_BEGIN) == NULL)
    return NULL;
  return e2ee_offer_profile_parse (text, NULL);
}

void
e2ee_xmpp_learn (PurpleAccount *account, const char *buddy, GPtrArray *keys)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = e2ee_plugin_account (account);
  g_autoptr (GError) error = NULL;
  GPtrArray *new_devices = NULL;
  E2eeLearnResult result;

  if (ctx == NULL || record == NULL || keys->len == 0)
    return;
  /* Unauthenticated input like any offer: the same rules for a first
   * key, a new device, a changed key and our own account's devices. */
  result = e2ee_context_learn_keys_full (ctx, record, buddy, keys,
                                         e2ee_plugin_is_contact (account, buddy)
                                         || g_strcmp0 (record->name, buddy) == 0,
                                         &new_devices, &error);
  purple_debug_info (E2EE_DEBUG_CAT, "PEP key list of %s: %u key(s), result %d\n",
                     buddy, keys->len, (int) result);
  if (result == E2EE_LEARN_REFUSED)
    e2ee_ui_report_receive_error (account, buddy, error);
  else
    e2ee_ui_report_learned (account, buddy, result, new_devices);
  if (new_devices != NULL)
    g_ptr_array_unref (new_devices);
}
