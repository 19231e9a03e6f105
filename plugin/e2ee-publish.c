/* purple-e2ee — publishing our keys (XMPP vCard and status, in-band offers
 * elsewhere) and learning buddies' keys from what they publish.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-plugin.h"
#include "e2ee-wipe.h"

#include <xmlnode.h>

static gboolean publishing;     /* our own status update is in progress */
static gboolean raw_presence;   /* XMPP presences are read per resource */
/* XMPP: "protocol\naccount\nbuddy" -> (resource -> GPtrArray of E2eeKey)
 * for the buddy's resources now online that publish a key tag. */
static GHashTable *resource_keys;

static void forget_account_resources (PurpleAccount *account);

static gboolean
is_xmpp (PurpleAccount *account)
{
  return g_strcmp0 (purple_account_get_protocol_id (account), "prpl-jabber") == 0;
}

gboolean
e2ee_publish_uses_inband (PurpleAccount *account)
{
  return !is_xmpp (account);
}

void
e2ee_publish_reset (void)
{
  g_clear_pointer (&resource_keys, g_hash_table_destroy);
  publishing = FALSE;
}

static gboolean
keyset_has (GPtrArray *keys, const E2eeKey *key)
{
  for (guint i = 0; i < keys->len; i++)
    if (e2ee_key_equal (g_ptr_array_index (keys, i), key))
      return TRUE;
  return FALSE;
}

/* Records @keys published by @who and tells the user what changed. */
static void
learn_keys (PurpleAccount *account, const char *who, GPtrArray *keys)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = e2ee_plugin_account (account);
  g_autofree char *buddy = NULL;
  g_autoptr (GError) error = NULL;
  GPtrArray *new_devices = NULL;
  E2eeLearnResult result;

  if (ctx == NULL || record == NULL || keys == NULL || keys->len == 0)
    return;
  buddy = e2ee_plugin_normalize (account, who);
  result = e2ee_context_learn_keys_full (ctx, record, buddy, keys,
                                         e2ee_plugin_is_contact (account, buddy)
                                         || g_strcmp0 (record->name, buddy) == 0,
                                         &new_devices, &error);
  /* Our own account's devices are announced as such (loudly). */
  if (result == E2EE_LEARN_REFUSED)
    e2ee_ui_report_receive_error (account, buddy, error);
  else
    e2ee_ui_report_learned (account, buddy, result, new_devices);
  if (new_devices != NULL)
    g_ptr_array_unref (new_devices);
}

static void
learn_from_status_text (PurpleAccount *account, const char *who, const char *text)
{
  g_autoptr (GError) error = NULL;
  char *stripped;
  GPtrArray *keys;

  if (text == NULL || strstr (text, E2EE_STATUS_TAG_OPEN) == NULL
      || e2ee_plugin_context () == NULL)
    return;
  stripped = purple_markup_strip_html (text);
  keys = e2ee_offer_status_parse (stripped, &error);
  g_free (stripped);
  if (keys == NULL)
    {
      purple_debug_info (E2EE_DEBUG_CAT, "ignoring a malformed key tag from %s: %s\n",
                         who, error->message);
      return;
    }
  learn_keys (account, who, keys);
  g_ptr_array_unref (keys);
}

/* ---- XMPP profile (vCard DESC) ---- */

/* The set to publish: ours and the devices we trust first, then every key
 * the shared block already holds, so other installations stay listed. */
static GPtrArray *
merged_keyset (E2eeContext *ctx, E2eeAccountRecord *record, GPtrArray *published,
               gboolean include_own)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  g_autoptr (GPtrArray) own = e2ee_context_own_keyset (ctx, record);
  E2eeBuddyRecord *self = e2ee_account_lookup_buddy (record, record->name);

  for (guint i = 0; own != NULL && i < own->len; i++)
    {
      E2eeKey *key = g_ptr_array_index (own, i);

      if (!include_own && e2ee_key_equal (key, record->identity))
        continue;
      if (!keyset_has (keys, key))
        g_ptr_array_add (keys, e2ee_key_ref (key));
    }
  for (guint i = 0; published != NULL && i < published->len; i++)
    {
      E2eeKey *key = g_ptr_array_index (published, i);
      E2eeDeviceRecord *dev = self != NULL ? e2ee_buddy_find_device (self, key) : NULL;

      if (keys->len >= E2EE_KEYSET_MAX)
        break;
      if (!include_own && e2ee_key_equal (key, record->identity))
        continue;
      /* A device claiming to be ours is never republished by us until
       * the user accepted it. */
      if (!e2ee_key_equal (key, record->identity)
          && (dev == NULL || (dev->trust != E2EE_TRUST_TOFU
                              && dev->trust != E2EE_TRUST_VERIFIED)))
        continue;
      if (!keyset_has (keys, key))
        g_ptr_array_add (keys, e2ee_key_ref (key));
    }
  return keys;
}

static void
update_profile (PurpleAccount *account, E2eeAccountRecord *record, gboolean withdraw)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  PurpleConnection *gc = purple_account_get_connection (account);
  const char *info = purple_account_get_user_info (account);
  g_autoptr (GPtrArray) published = NULL;
  g_autoptr (GPtrArray) keys = NULL;
  g_autofree char *old = NULL;
  g_autofree char *desc_text = NULL;
  g_autofree char *xml = NULL;
  xmlnode *vcard = NULL, *desc;

  if (gc == NULL || ctx == NULL)
    return;
  if (info != NULL && *info != '\0')
    {
      vcard = xmlnode_from_str (info, -1);
      if (vcard == NULL || g_strcmp0 (vcard->name, "vCard") != 0)
        {
          /* Not a vCard we understand: leave the user's profile alone. */
          purple_debug_warning (E2EE_DEBUG_CAT, "profile of %s is not a vCard; "
                                "keys not published there\n", record->name);
          goto out;
        }
    }
  if (vcard == NULL)
    {
      if (withdraw)
        return;
      vcard = xmlnode_new ("vCard");
      xmlnode_set_namespace (vcard, "vcard-temp");
    }

  desc = xmlnode_get_child (vcard, "DESC");
  old = desc != NULL ? xmlnode_get_data (desc) : NULL;
  /* Other installations of this account publish here too: their keys stay
   * listed.  They are not trusted from here, though: a stale key of an
   * earlier installation would otherwise come back as a device; our live
   * devices are learned from their presence instead. */
  if (old != NULL && strstr (old, E2EE_PROFILE_BEGIN) != NULL)
    published = e2ee_offer_profile_parse (old, NULL);

  keys = merged_keyset (ctx, record, published, !withdraw);
  desc_text = e2ee_offer_profile_replace (old != NULL ? old : "",
                                          keys->len > 0 ? keys : NULL);
  if (desc_text == NULL || g_strcmp0 (old != NULL ? old : "", desc_text) == 0)
    goto out;

  if (desc != NULL)
    xmlnode_free (desc);
  if (*desc_text != '\0')
    {
      desc = xmlnode_new_child (vcard, "DESC");
      xmlnode_insert_data (desc, desc_text, -1);
    }
  xml = xmlnode_to_str (vcard, NULL);
  purple_account_set_user_info (account, xml);
  serv_set_info (gc, xml);
  purple_debug_info (E2EE_DEBUG_CAT, "%s the key block in the profile of %s (%u key(s))\n",
                     withdraw ? "updated/withdrew" : "published", record->name, keys->len);

out:
  if (vcard != NULL)
    xmlnode_free (vcard);
}

/* ---- status message tag ---- */

static void
update_status (PurpleAccount *account, E2eeAccountRecord *record, gboolean withdraw)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  PurpleStatus *status = purple_account_get_active_status (account);
  g_autoptr (GPtrArray) keys = NULL;
  g_autofree char *text = NULL;
  const char *current;

  if (ctx == NULL || status == NULL || !purple_status_is_online (status)
      || purple_status_type_get_attr (purple_status_get_type (status), "message") == NULL)
    return;
  current = purple_status_get_attr_string (status, "message");
  /* With PEP the tag is not needed: the status text stays the user's. */
  if (!withdraw && e2ee_xmpp_wants_status_tag (account))
    keys = e2ee_context_own_keyset (ctx, record);
  text = e2ee_offer_status_replace (current != NULL ? current : "", keys);
  if (text == NULL || g_strcmp0 (current != NULL ? current : "", text) == 0)
    return;

  /* Keeps the user's own status text; only our tag is added or removed. */
  publishing = TRUE;
  purple_account_set_status (account, purple_status_get_id (status), TRUE,
                             "message", *text != '\0' ? text : NULL, NULL);
  publishing = FALSE;
}

void
e2ee_publish_account (PurpleAccount *account)
{
  E2eeAccountRecord *record;

  if (account == NULL || !purple_account_is_connected (account))
    return;
  record = e2ee_plugin_account (account);   /* creates the identity if needed */
  if (record == NULL || !is_xmpp (account))
    return;
  e2ee_xmpp_publish (account);
  if (e2ee_xmpp_wants_profile_block (account))
    update_profile (account, record, FALSE);
  update_status (account, record, FALSE);
}

void
e2ee_publish_all (void)
{
  for (GList *l = purple_connections_get_all (); l != NULL; l = l->next)
    e2ee_publish_account (purple_connection_get_account (l->data));
}

void
e2ee_publish_withdraw_all (void)
{
  for (GList *l = purple_connections_get_all (); l != NULL; l = l->next)
    {
      PurpleAccount *account = purple_connection_get_account (l->data);
      E2eeAccountRecord *record;

      if (!purple_account_is_connected (account) || !is_xmpp (account))
        continue;
      record = e2ee_plugin_account (account);
      if (record == NULL)
        continue;
      update_status (account, record, TRUE);
      update_profile (account, record, TRUE);
    }
}

/* ---- signal handlers ---- */

static void
signed_on_cb (PurpleAccount *account, gpointer data)
{
  forget_account_resources (account);
  e2ee_publish_account (account);
}

static void
account_status_changed_cb (PurpleAccount *account, PurpleStatus *old,
                           PurpleStatus *new_status, gpointer data)
{
  E2eeAccountRecord *record;

  /* The user picked another status: put our tag back on it. */
  if (publishing || !is_xmpp (account) || !purple_account_is_connected (account)
      || e2ee_plugin_context () == NULL)
    return;
  record = e2ee_plugin_account (account);
  if (record != NULL)
    update_status (account, record, FALSE);
}

static void
buddy_status_changed_cb (PurpleBuddy *buddy, PurpleStatus *old,
                         PurpleStatus *new_status, gpointer data)
{
  PurpleAccount *account = purple_buddy_get_account (buddy);

  /* XMPP is read per resource from the raw presence instead. */
  if ((raw_presence && is_xmpp (account)) || new_status == NULL)
    return;
  learn_from_status_text (account, purple_buddy_get_name (buddy),
                          purple_status_get_attr_string (new_status, "message"));
}

static void
buddy_signed_on_cb (PurpleBuddy *buddy, gpointer data)
{
  PurpleAccount *account = purple_buddy_get_account (buddy);
  PurpleStatus *status;

  if (raw_presence && is_xmpp (account))
    return;
  status = purple_presence_get_active_status (purple_buddy_get_presence (buddy));
  if (status != NULL)
    learn_from_status_text (account, purple_buddy_get_name (buddy),
                            purple_status_get_attr_string (status, "message"));
}

static char *
buddy_key (PurpleAccount *account, const char *buddy)
{
  return g_strdup_printf ("%s\n%s\n%s", purple_account_get_protocol_id (account),
                          purple_account_get_username (account), buddy);
}

static void
forget_account_resources (PurpleAccount *account)
{
  g_autofree char *prefix = NULL;
  GHashTableIter iter;
  gpointer key;

  if (resource_keys == NULL)
    return;
  prefix = g_strdup_printf ("%s\n%s\n", purple_account_get_protocol_id (account),
                            purple_account_get_username (account));
  g_hash_table_iter_init (&iter, resource_keys);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (g_str_has_prefix (key, prefix))
      g_hash_table_iter_remove (&iter);
}

/* Each XMPP resource publishes its own tag, which need not list the
 * buddy's other devices yet.  Learning the union of what the online
 * resources publish makes a second device a new device, and a key that
 * replaces every device a key change. */
static void
learn_resource_keys (PurpleAccount *account, const char *from, GPtrArray *keys)
{
  g_autofree char *buddy = e2ee_plugin_normalize (account, from);
  g_autofree char *key = buddy_key (account, buddy);
  const char *slash = strchr (from, '/');
  GHashTable *resources;
  g_autoptr (GPtrArray) all = NULL;
  GHashTableIter iter;
  gpointer value;

  if (resource_keys == NULL)
    resource_keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) g_hash_table_destroy);
  resources = g_hash_table_lookup (resource_keys, key);
  if (resources == NULL)
    {
      resources = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) g_ptr_array_unref);
      g_hash_table_insert (resource_keys, g_strdup (key), resources);
    }
  if (keys != NULL)
    g_hash_table_replace (resources, g_strdup (slash != NULL ? slash + 1 : ""),
                          g_ptr_array_ref (keys));
  else
    g_hash_table_remove (resources, slash != NULL ? slash + 1 : "");

  all = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  g_hash_table_iter_init (&iter, resources);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      GPtrArray *set = value;

      for (guint i = 0; i < set->len; i++)
        if (!keyset_has (all, g_ptr_array_index (set, i)))
          g_ptr_array_add (all, e2ee_key_ref (g_ptr_array_index (set, i)));
    }
  if (keys != NULL && all->len > 0)
    learn_keys (account, buddy, all);
}

/* Every resource's presence, including our own account's other devices,
 * which the buddy list (top resource only) would hide. */
static gboolean
jabber_presence_cb (PurpleConnection *gc, const char *type, const char *from,
                    xmlnode *presence, gpointer data)
{
  PurpleAccount *account;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) keys = NULL;
  xmlnode *status_node;
  g_autofree char *text = NULL;
  char *stripped;

  if (gc == NULL || from == NULL || presence == NULL || e2ee_plugin_context () == NULL)
    return FALSE;
  if (type != NULL && strcmp (type, "available") != 0 && strcmp (type, "unavailable") != 0)
    return FALSE;
  account = purple_connection_get_account (gc);

  status_node = type == NULL || strcmp (type, "available") == 0
                ? xmlnode_get_child (presence, "status") : NULL;
  text = status_node != NULL ? xmlnode_get_data (status_node) : NULL;
  if (text != NULL && strstr (text, E2EE_STATUS_TAG_OPEN) != NULL)
    {
      stripped = purple_markup_strip_html (text);
      keys = e2ee_offer_status_parse (stripped, &error);
      g_free (stripped);
      if (keys == NULL)
        purple_debug_info (E2EE_DEBUG_CAT, "ignoring a malformed key tag from %s: %s\n",
                           from, error->message);
    }
  learn_resource_keys (account, from, keys);
  return FALSE;
}

void
e2ee_publish_connect (PurplePlugin *plugin)
{
  PurplePlugin *jabber = purple_find_prpl ("prpl-jabber");

  purple_signal_connect (purple_accounts_get_handle (), "account-signed-on", plugin,
                         PURPLE_CALLBACK (signed_on_cb), NULL);
  purple_signal_connect (purple_accounts_get_handle (), "account-status-changed", plugin,
                         PURPLE_CALLBACK (account_status_changed_cb), NULL);
  purple_signal_connect (purple_blist_get_handle (), "buddy-status-changed", plugin,
                         PURPLE_CALLBACK (buddy_status_changed_cb), NULL);
  purple_signal_connect (purple_blist_get_handle (), "buddy-signed-on", plugin,
                         PURPLE_CALLBACK (buddy_signed_on_cb), NULL);
  raw_presence = jabber != NULL
    && purple_signal_connect (jabber, "jabber-receiving-presence", plugin,
                              PURPLE_CALLBACK (jabber_presence_cb), NULL) != 0;
}
