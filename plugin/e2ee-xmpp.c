/* purple-e2ee — XMPP done the XMPP way: our key set in PEP (XEP-0163) on a
 * node of our own, read silently before a first message and pushed to us
 * on change (+notify), with raw stanzas and libpurple's public XMPP
 * signals only.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include <prpl.h>
#include <xmlnode.h>

#include "e2ee-plugin.h"


/* A buddy's key list that has not arrived by then is given up on. */
#define FETCH_SECONDS 8
/* Our own publication: no answer by then counts as no PEP. */
#define PUBLISH_SECONDS 10
/* A buddy's node is read again before a message after this long. */
#define REFETCH_SECONDS 300
/* Bounds on what unauthenticated input can make us keep or do. */
#define PENDING_MAX 64
#define FETCHED_MAX 256
#define RETRY_MAX 8

typedef enum {
  REQ_FETCH,          /* a buddy's node (or our own: buddy is our name) */
  REQ_PUBLISH,
  REQ_VCARD,          /* the buddy's vCard, when their node had no key */
} ReqKind;

typedef struct {
  ReqKind kind;
  PurpleAccount *account;
  char *id;           /* the iq id (the table's key and the timer's data) */
  char *buddy;        /* normalised bare JID asked */
  gboolean for_send;  /* a message waits for this answer */
  GPtrArray *retry;   /* envelopes from the buddy to read again after it */
  guint timer;
} Pending;

typedef enum {
  PEP_UNKNOWN = 0,
  PEP_OK,
  PEP_FAILED,
} PepState;

static GHashTable *pending;     /* iq id -> Pending* */
static GHashTable *fetched;     /* "protocol\naccount\nbuddy" -> gint64 monotonic s */
static GHashTable *pep_state;   /* account -> PepState */
static guint next_id;

static gboolean
is_xmpp (PurpleAccount *account)
{
  return g_strcmp0 (purple_account_get_protocol_id (account), "prpl-jabber") == 0;
}

static char *
buddy_key (PurpleAccount *account, const char *buddy)
{
  return g_strdup_printf ("%s\n%s\n%s", purple_account_get_protocol_id (account),
                          purple_account_get_username (account), buddy);
}

static void
pending_free (gpointer data)
{
  Pending *p = data;

  if (p->timer != 0)
    purple_timeout_remove (p->timer);
  g_free (p->id);
  g_free (p->buddy);
  if (p->retry != NULL)
    g_ptr_array_unref (p->retry);
  g_free (p);
}

static PepState
get_pep_state (PurpleAccount *account)
{
  return pep_state != NULL ? GPOINTER_TO_INT (g_hash_table_lookup (pep_state, account))
                           : PEP_UNKNOWN;
}

static void
set_pep_state (PurpleAccount *account, PepState st)
{
  if (pep_state == NULL)
    pep_state = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_hash_table_insert (pep_state, account, GINT_TO_POINTER (st));
}

gboolean
e2ee_xmpp_wants_status_tag (PurpleAccount *account)
{
  return purple_prefs_get_bool (E2EE_PREF_XMPP_STATUS_TAG) || get_pep_state (account) == PEP_FAILED;
}

gboolean
e2ee_xmpp_wants_profile_block (PurpleAccount *account)
{
  return purple_prefs_get_bool (E2EE_PREF_XMPP_PROFILE) || get_pep_state (account) == PEP_FAILED;
}

static char *
own_bare (PurpleAccount *account)
{
  return e2ee_plugin_normalize (account, purple_account_get_username (account));
}

/* Sends @node as it is (the prpl's raw path: no message signals). */
gboolean
e2ee_xmpp_send_node (PurpleConnection *gc, xmlnode *node)
{
  PurplePlugin *prpl = purple_connection_get_prpl (gc);
  PurplePluginProtocolInfo *info = prpl != NULL ? PURPLE_PLUGIN_PROTOCOL_INFO (prpl) : NULL;
  g_autofree char *text = NULL;
  int len = 0;

  if (info == NULL || !PURPLE_PROTOCOL_PLUGIN_HAS_FUNC (info, send_raw))
    return FALSE;
  text = xmlnode_to_str (node, &len);
  return info->send_raw (gc, text, len) >= 0;
}

static gboolean request_timeout_cb (gpointer data);

/* Registers @iq (whose id is set here) and sends it. */
static gboolean
send_request (PurpleAccount *account, xmlnode *iq, ReqKind kind, const char *buddy,
              gboolean for_send, guint seconds)
{
  PurpleConnection *gc = purple_account_get_connection (account);
  char *id;
  Pending *p;

  if (gc == NULL)
    return FALSE;
  if (pending == NULL)
    pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, pending_free);
  if (g_hash_table_size (pending) >= PENDING_MAX)
    {
      purple_debug_warning (E2EE_DEBUG_CAT, "too many key list requests waiting\n");
      return FALSE;
    }
  id = g_strdup_printf ("e2ee-%u-%s", ++next_id, kind == REQ_PUBLISH ? "pub" : "get");
  xmlnode_set_attrib (iq, "id", id);
  if (!e2ee_xmpp_send_node (gc, iq))
    {
      g_free (id);
      return FALSE;
    }
  p = g_new0 (Pending, 1);
  p->kind = kind;
  p->account = account;
  p->buddy = g_strdup (buddy);
  p->for_send = for_send;
  p->id = id;
  p->timer = purple_timeout_add_seconds (seconds, request_timeout_cb, p->id);
  g_hash_table_insert (pending, g_strdup (id), p);
  return TRUE;
}

/* Our own item, named after our key, so each installation of the account
 * has its own and none overwrites another's. */
static void
publish (PurpleAccount *account)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = e2ee_plugin_account (account);
  g_autoptr (GPtrArray) keys = NULL;
  xmlnode *iq, *pubsub, *pub, *item, *opts, *x;

  if (ctx == NULL || record == NULL)
    return;
  keys = e2ee_context_own_keyset (ctx, record);
  if (keys == NULL || keys->len == 0)
    return;

  iq = xmlnode_new ("iq");
  xmlnode_set_attrib (iq, "type", "set");
  pubsub = xmlnode_new_child (iq, "pubsub");
  xmlnode_set_namespace (pubsub, E2EE_NS_PUBSUB);
  pub = xmlnode_new_child (pubsub, "publish");
  xmlnode_set_attrib (pub, "node", E2EE_XMPP_NODE);
  item = xmlnode_new_child (pub, "item");
  xmlnode_set_attrib (item, "id", e2ee_key_get_kid (record->identity));
  xmlnode_insert_child (item, e2ee_xmpp_keys_payload (keys));
  /* Anyone may read public keys: a first message can go to someone who
   * has not approved our presence subscription yet. */
  opts = xmlnode_new_child (pubsub, "publish-options");
  x = xmlnode_new_child (opts, "x");
  xmlnode_set_namespace (x, E2EE_NS_DATA);
  xmlnode_set_attrib (x, "type", "submit");
  e2ee_xmpp_add_field (x, "FORM_TYPE", "hidden", E2EE_NS_PUBSUB "#publish-options");
  e2ee_xmpp_add_field (x, "pubsub#access_model", NULL, "open");
  e2ee_xmpp_add_field (x, "pubsub#persist_items", NULL, "true");
  e2ee_xmpp_add_field (x, "pubsub#max_items", NULL, "16");
  if (!send_request (account, iq, REQ_PUBLISH, record->name, FALSE, PUBLISH_SECONDS))
    set_pep_state (account, PEP_FAILED);
  else
    purple_debug_info (E2EE_DEBUG_CAT, "publishing %u key(s) of %s in PEP\n", keys->len,
                       record->name);
  xmlnode_free (iq);
}

/* Asks for every item of @buddy's node (ours when @buddy is our name). */
static gboolean
fetch (PurpleAccount *account, const char *buddy, gboolean for_send)
{
  g_autofree char *self = own_bare (account);
  g_autofree char *key = buddy_key (account, buddy);
  xmlnode *iq, *pubsub, *items;
  gboolean ok;

  iq = xmlnode_new ("iq");
  xmlnode_set_attrib (iq, "type", "get");
  if (g_strcmp0 (self, buddy) != 0)
    xmlnode_set_attrib (iq, "to", buddy);
  pubsub = xmlnode_new_child (iq, "pubsub");
  xmlnode_set_namespace (pubsub, E2EE_NS_PUBSUB);
  items = xmlnode_new_child (pubsub, "items");
  xmlnode_set_attrib (items, "node", E2EE_XMPP_NODE);
  ok = send_request (account, iq, REQ_FETCH, buddy, for_send, FETCH_SECONDS);
  xmlnode_free (iq);
  if (ok)
    {
      if (fetched == NULL)
        fetched = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      if (g_hash_table_size (fetched) >= FETCHED_MAX)
        g_hash_table_remove_all (fetched);
      g_hash_table_replace (fetched, g_steal_pointer (&key),
                            g_memdup2 (&(gint64) { g_get_monotonic_time () / G_USEC_PER_SEC },
                                       sizeof (gint64)));
      purple_debug_info (E2EE_DEBUG_CAT, "asked for the PEP key list of %s\n", buddy);
    }
  return ok;
}

static Pending *
find_fetch (PurpleAccount *account, const char *buddy)
{
  GHashTableIter iter;
  gpointer value;

  if (pending == NULL)
    return NULL;
  g_hash_table_iter_init (&iter, pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Pending *p = value;

      if (p->kind != REQ_PUBLISH && p->account == account && strcmp (p->buddy, buddy) == 0)
        return p;
    }
  return NULL;
}

gboolean
e2ee_xmpp_fetch_before_send (PurpleAccount *account, const char *receiver)
{
  g_autofree char *buddy = NULL;
  g_autofree char *key = NULL;
  gint64 *when;
  Pending *p;

  if (!is_xmpp (account) || !purple_account_is_connected (account)
      || e2ee_plugin_context () == NULL)
    return FALSE;
  buddy = e2ee_plugin_normalize (account, receiver);
  p = find_fetch (account, buddy);
  if (p != NULL)
    {
      p->for_send = TRUE;
      return TRUE;
    }
  key = buddy_key (account, buddy);
  when = fetched != NULL ? g_hash_table_lookup (fetched, key) : NULL;
  if (when != NULL && g_get_monotonic_time () / G_USEC_PER_SEC - *when < REFETCH_SECONDS)
    return FALSE;   /* asked lately: the answer (or its absence) stands */
  return fetch (account, buddy, TRUE);
}

gboolean
e2ee_xmpp_fetch_and_retry (PurpleAccount *account, const char *sender, const char *armored)
{
  g_autofree char *buddy = NULL;
  g_autofree char *key = NULL;
  gint64 *when;
  Pending *p;

  if (!is_xmpp (account) || !purple_account_is_connected (account)
      || e2ee_plugin_context () == NULL)
    return FALSE;
  buddy = e2ee_plugin_normalize (account, sender);
  p = find_fetch (account, buddy);
  if (p == NULL)
    {
      key = buddy_key (account, buddy);
      when = fetched != NULL ? g_hash_table_lookup (fetched, key) : NULL;
      if ((when != NULL && g_get_monotonic_time () / G_USEC_PER_SEC - *when < REFETCH_SECONDS)
          || !fetch (account, buddy, FALSE))
        return FALSE;
      p = find_fetch (account, buddy);
    }
  if (p == NULL)
    return FALSE;
  if (p->retry == NULL)
    p->retry = g_ptr_array_new_with_free_func (g_free);
  if (p->retry->len >= RETRY_MAX)
    return FALSE;
  g_ptr_array_add (p->retry, g_strdup (armored));
  purple_debug_info (E2EE_DEBUG_CAT, "an envelope from %s waits for their PEP key list\n",
                     buddy);
  return TRUE;
}

/* ---- answers ---- */

/* What waited for this answer goes now, as the policy says; what came
 * from the buddy before their key was known is read again. */
static void
finish_fetch (Pending *p, gboolean answered)
{
  for (guint i = 0; p->retry != NULL && i < p->retry->len; i++)
    e2ee_messages_replay (p->account, p->buddy, g_ptr_array_index (p->retry, i));
  if (!p->for_send)
    return;
  if (!answered)
    e2ee_ui_say (p->account, p->buddy, TRUE,
                 _("The server did not return %s's published encryption keys "
                   "within %d seconds."), p->buddy, FETCH_SECONDS);
  e2ee_hold_release_for (p->account, p->buddy);
}

static const char *
record_name (PurpleAccount *account)
{
  E2eeAccountRecord *record = e2ee_plugin_account (account);

  return record != NULL ? record->name : "";
}

/* The buddy's node had no key: their vCard (an older plugin, or a server
 * without PEP) is read silently instead; what waited moves along. */
static gboolean
ask_vcard (Pending *p)
{
  xmlnode *iq = xmlnode_new ("iq"), *vcard;
  Pending *next;
  gboolean ok;

  xmlnode_set_attrib (iq, "type", "get");
  xmlnode_set_attrib (iq, "to", p->buddy);
  vcard = xmlnode_new_child (iq, "vCard");
  xmlnode_set_namespace (vcard, "vcard-temp");
  ok = send_request (p->account, iq, REQ_VCARD, p->buddy, p->for_send, FETCH_SECONDS);
  xmlnode_free (iq);
  if (!ok || (next = find_fetch (p->account, p->buddy)) == NULL)
    return FALSE;
  next->retry = g_steal_pointer (&p->retry);
  p->for_send = FALSE;
  return TRUE;
}

static void
handle_answer (PurpleConnection *gc, xmlnode *iq, Pending *p)
{
  PurpleAccount *account = p->account;
  const char *type = xmlnode_get_attrib (iq, "type");
  g_autoptr (GPtrArray) keys = NULL;
  xmlnode *pubsub, *items;

  if (p->kind == REQ_PUBLISH)
    {
      gboolean ok = g_strcmp0 (type, "result") == 0;

      set_pep_state (account, ok ? PEP_OK : PEP_FAILED);
      purple_debug_info (E2EE_DEBUG_CAT, "PEP publication of %s %s\n", p->buddy,
                         ok ? "accepted" : "refused");
      if (!ok)
        e2ee_publish_account (account);   /* falls back to the status tag */
      return;
    }

  if (p->kind == REQ_VCARD)
    {
      g_autoptr (GPtrArray) card = g_strcmp0 (type, "result") == 0
                                   ? e2ee_xmpp_parse_vcard (iq) : NULL;

      purple_debug_info (E2EE_DEBUG_CAT, "vCard of %s: %u key(s)\n", p->buddy,
                         card != NULL ? card->len : 0);
      if (card != NULL)
        e2ee_xmpp_learn (account, p->buddy, card);
      finish_fetch (p, TRUE);
      return;
    }
  if (g_strcmp0 (type, "result") == 0
      && (pubsub = xmlnode_get_child_with_namespace (iq, "pubsub", E2EE_NS_PUBSUB)) != NULL
      && (items = xmlnode_get_child (pubsub, "items")) != NULL
      && g_strcmp0 (xmlnode_get_attrib (items, "node"), E2EE_XMPP_NODE) == 0)
    keys = e2ee_xmpp_parse_items (items);
  if (keys != NULL && keys->len > 0)
    e2ee_xmpp_learn (account, p->buddy, keys);
  else if (strcmp (p->buddy, record_name (account)) != 0 && ask_vcard (p))
    return;   /* the wait goes on for the profile */
  else
    purple_debug_info (E2EE_DEBUG_CAT, "no PEP key list for %s\n", p->buddy);
  finish_fetch (p, TRUE);
}

static gboolean
request_timeout_cb (gpointer data)
{
  char *id = data;
  Pending *p = pending != NULL ? g_hash_table_lookup (pending, id) : NULL;
  gpointer stolen = NULL;

  if (p != NULL && g_hash_table_steal_extended (pending, id, &stolen, NULL))
    {
      p->timer = 0;
      if (p->kind == REQ_PUBLISH)
        {
          set_pep_state (p->account, PEP_FAILED);
          e2ee_publish_account (p->account);
        }
      else
        finish_fetch (p, FALSE);
      pending_free (p);
      g_free (stolen);
    }
  return FALSE;
}

/* The answer must come from whom we asked: the buddy's bare JID, or for
 * our own node no sender or our own bare JID. */
static gboolean
from_matches (PurpleAccount *account, const char *from, const char *buddy)
{
  g_autofree char *self = own_bare (account);
  g_autofree char *norm = NULL;

  if (from == NULL)
    return strcmp (buddy, self) == 0;
  if (strchr (from, '/') != NULL)
    return FALSE;
  norm = e2ee_plugin_normalize (account, from);
  return strcmp (norm, buddy) == 0;
}

/* A pushed change: only one item comes, so read the whole node again. */
static gboolean
handle_event (PurpleConnection *gc, xmlnode *message)
{
  PurpleAccount *account = purple_connection_get_account (gc);
  xmlnode *event = xmlnode_get_child_with_namespace (message, "event", E2EE_NS_PUBSUB_EVENT);
  xmlnode *items = event != NULL ? xmlnode_get_child (event, "items") : NULL;
  const char *from = xmlnode_get_attrib (message, "from");
  g_autofree char *buddy = NULL;

  if (items == NULL || g_strcmp0 (xmlnode_get_attrib (items, "node"), E2EE_XMPP_NODE) != 0)
    return FALSE;
  buddy = from != NULL ? e2ee_plugin_normalize (account, from) : own_bare (account);
  if (from != NULL && !from_matches (account, from, buddy))
    return TRUE;   /* ours, but not from a PEP service: dropped */
  if (e2ee_plugin_context () != NULL && find_fetch (account, buddy) == NULL)
    fetch (account, buddy, FALSE);
  return TRUE;
}

static void
receiving_xmlnode_cb (PurpleConnection *gc, xmlnode **packet, gpointer data)
{
  xmlnode *node;
  const char *id;
  Pending *p;
  gpointer stolen = NULL;
  gboolean consumed = FALSE;

  if (gc == NULL || packet == NULL || *packet == NULL)
    return;
  node = *packet;
  if (g_strcmp0 (node->name, "message") == 0)
    {
      /* A carbon copy: its inner message, or nothing, goes on. */
      if (e2ee_xmpp_carbons_handle (gc, packet) && (node = *packet) == NULL)
        return;
      consumed = handle_event (gc, node);
      if (!consumed)
        e2ee_xmpp_unwrap (node);
    }
  else if (g_strcmp0 (node->name, "iq") == 0
           && (id = xmlnode_get_attrib (node, "id")) != NULL && pending != NULL
           && (g_strcmp0 (xmlnode_get_attrib (node, "type"), "result") == 0
               || g_strcmp0 (xmlnode_get_attrib (node, "type"), "error") == 0)
           && (p = g_hash_table_lookup (pending, id)) != NULL
           && purple_account_get_connection (p->account) == gc
           && from_matches (p->account, xmlnode_get_attrib (node, "from"), p->buddy))
    {
      g_hash_table_steal_extended (pending, id, &stolen, NULL);
      handle_answer (gc, node, p);
      pending_free (p);
      g_free (stolen);
      consumed = TRUE;
    }
  if (consumed)
    {
      xmlnode_free (node);
      *packet = NULL;
    }
}

/* ---- life cycle ---- */

void
e2ee_xmpp_publish (PurpleAccount *account)
{
  E2eeAccountRecord *record;

  if (account == NULL || !is_xmpp (account) || !purple_account_is_connected (account)
      || e2ee_plugin_context () == NULL || get_pep_state (account) != PEP_UNKNOWN)
    return;
  record = e2ee_plugin_account (account);
  if (record == NULL || find_fetch (account, record->name) != NULL)
    return;
  /* Other installations of this account are learned (never trusted
   * first) from their items. */
  fetch (account, record->name, FALSE);
  publish (account);
  e2ee_xmpp_carbons_enable (account);
}

static void
forget_account (PurpleAccount *account)
{
  GHashTableIter iter;
  gpointer value;

  if (pep_state != NULL)
    g_hash_table_remove (pep_state, account);
  if (pending != NULL)
    {
      g_hash_table_iter_init (&iter, pending);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (((Pending *) value)->account == account)
          g_hash_table_iter_remove (&iter);
    }
  if (fetched != NULL)
    {
      g_autofree char *prefix = buddy_key (account, "");

      g_hash_table_iter_init (&iter, fetched);
      while (g_hash_table_iter_next (&iter, &value, NULL))
        if (g_str_has_prefix (value, prefix))
          g_hash_table_iter_remove (&iter);
    }
}

static void
signed_off_cb (PurpleConnection *gc, gpointer data)
{
  forget_account (purple_connection_get_account (gc));
}

static void
signing_on_cb (PurpleConnection *gc, gpointer data)
{
  forget_account (purple_connection_get_account (gc));
}

void
e2ee_xmpp_connect (PurplePlugin *plugin)
{
  PurplePlugin *jabber = purple_find_prpl ("prpl-jabber");

  purple_prefs_add_bool (E2EE_PREF_XMPP_STATUS_TAG, FALSE);
  purple_prefs_add_bool (E2EE_PREF_XMPP_PROFILE, FALSE);
  purple_prefs_add_bool (E2EE_PREF_XMPP_NOTIFY, TRUE);
  purple_signal_connect (purple_connections_get_handle (), "signed-off", plugin,
                         PURPLE_CALLBACK (signed_off_cb), NULL);
  purple_signal_connect (purple_connections_get_handle (), "signing-on", plugin,
                         PURPLE_CALLBACK (signing_on_cb), NULL);
  e2ee_xmpp_fallback_connect (plugin);
  if (jabber == NULL)
    return;
  purple_signal_connect (jabber, "jabber-receiving-xmlnode", plugin,
                         PURPLE_CALLBACK (receiving_xmlnode_cb), NULL);
  purple_signal_connect (jabber, "jabber-sending-xmlnode", plugin,
                         PURPLE_CALLBACK (e2ee_xmpp_notify_cb), NULL);
}

void
e2ee_xmpp_reset (void)
{
  g_clear_pointer (&pending, g_hash_table_destroy);
  g_clear_pointer (&fetched, g_hash_table_destroy);
  g_clear_pointer (&pep_state, g_hash_table_destroy);
}
