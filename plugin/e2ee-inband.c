/* purple-e2ee — in-band key offers (IRC and other protocols without a
 * profile): sent when a conversation starts, re-sent with backoff until
 * answered, again on /e2ee on, /e2ee reset and reconnecting; and a nick
 * change that must not continue a window in plaintext.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-plugin.h"

/* An unanswered offer is re-sent this many times, after 5, 10, 20 and 40
 * seconds: a lost line or a slow server costs a little time, and someone
 * without the plugin gets a handful of lines at most. */
#define RETRY_MAX 4
#define RETRY_FIRST_SECONDS 5

/* Conversation data: the buddy name the window had when last seen. */
#define DATA_NAME "purple-e2ee-name"

typedef struct {
  PurpleAccount *account;
  char *who;                /* as the protocol writes it */
  gint64 round_start;       /* monotonic seconds of the first send of this round */
  guint tries;              /* re-sends so far */
  guint timer;
  gboolean answered;
} Offer;

/* "protocol\naccount\nbuddy" -> Offer* */
static GHashTable *offers;
/* Pending*: offers decided just after a window opened, not run yet. */
static GList *pending;
static void pending_free (gpointer data);

static void
offer_free (gpointer data)
{
  Offer *o = data;

  if (o->timer != 0)
    purple_timeout_remove (o->timer);
  g_free (o->who);
  g_free (o);
}

static char *
offer_key (PurpleAccount *account, const char *buddy)
{
  return g_strdup_printf ("%s\n%s\n%s", purple_account_get_protocol_id (account),
                          purple_account_get_username (account), buddy);
}

static gint64
now_seconds (void)
{
  return g_get_monotonic_time () / G_USEC_PER_SEC;
}

void
e2ee_inband_reset (void)
{
  g_clear_pointer (&offers, g_hash_table_destroy);
  g_list_free_full (pending, pending_free);
  pending = NULL;
  for (GList *l = purple_get_conversations (); l != NULL; l = l->next)
    {
      g_free (purple_conversation_get_data (l->data, DATA_NAME));
      purple_conversation_set_data (l->data, DATA_NAME, NULL);
    }
}

static gboolean has_key (PurpleAccount *account, const char *buddy);

static gboolean
transmit (PurpleAccount *account, const char *who)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  PurpleConnection *gc = purple_account_get_connection (account);
  E2eeAccountRecord *record = e2ee_plugin_account (account);
  g_autoptr (GPtrArray) keys = NULL;
  g_autofree char *text = NULL;

  if (ctx == NULL || gc == NULL || record == NULL
      || !purple_account_is_connected (account))
    return FALSE;
  g_auto (GStrv) pieces = NULL;

  keys = e2ee_context_own_keyset (ctx, record);
  text = e2ee_offer_inband (E2EE_OFFER_KIND_OFFER, keys);
  if (text == NULL)
    return FALSE;
  /* With prekeys an offer is longer than an IRC line: sent in pieces,
   * after its sentence for people without the plugin (only to those who
   * have no key yet: for anyone else it is plaintext the last step stops). */
  pieces = e2ee_wire_pieces (text, e2ee_publish_uses_inband (account) ? E2EE_IRC_BUDGET : 0,
                             NULL);
  if (pieces != NULL && g_strv_length (pieces) > 1 && !has_key (account, who))
    {
      g_autofree char *note = e2ee_offer_note ();
      serv_send_im (gc, who, note, 0);
    }
  for (guint i = 0; pieces != NULL && pieces[i] != NULL; i++)
    serv_send_im (gc, who, pieces[i], 0);
  return pieces != NULL;
}

static gboolean
has_key (PurpleAccount *account, const char *buddy)
{
  E2eeAccountRecord *record = e2ee_plugin_account (account);

  return record != NULL && e2ee_messages_buddy_has_key (record, buddy);
}

static gboolean retry_cb (gpointer data);

static void
schedule (Offer *o, const char *key)
{
  if (o->timer != 0)
    purple_timeout_remove (o->timer);
  o->timer = 0;
  if (o->tries >= RETRY_MAX)
    return;
  o->timer = purple_timeout_add_seconds (RETRY_FIRST_SECONDS << o->tries, retry_cb,
                                         g_strdup (key));
}

static gboolean
retry_cb (gpointer data)
{
  g_autofree char *key = data;
  g_autofree char *buddy = NULL;
  Offer *o = offers != NULL ? g_hash_table_lookup (offers, key) : NULL;

  if (o == NULL)
    return FALSE;
  o->timer = 0;
  buddy = e2ee_plugin_normalize (o->account, o->who);
  if (o->answered || has_key (o->account, buddy)
      || e2ee_messages_policy_is_off (o->account, buddy))
    return FALSE;
  o->tries++;
  if (transmit (o->account, o->who))
    purple_debug_info (E2EE_DEBUG_CAT, "re-sent the key offer to %s (%u of %d)\n",
                       buddy, o->tries, RETRY_MAX);
  schedule (o, key);
  return FALSE;
}

void
e2ee_inband_send_offer (PurpleAccount *account, const char *who, gboolean force)
{
  E2eeAccountRecord *record;
  g_autofree char *buddy = NULL;
  char *key;
  Offer *o;

  if (e2ee_plugin_context () == NULL || who == NULL
      || purple_account_get_connection (account) == NULL)
    return;
  record = e2ee_plugin_account (account);
  if (record == NULL)
    return;
  buddy = e2ee_plugin_normalize (account, who);
  if (g_strcmp0 (record->name, buddy) == 0)
    return;

  if (offers == NULL)
    offers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, offer_free);
  key = offer_key (account, buddy);
  o = g_hash_table_lookup (offers, key);
  if (o != NULL && !force)
    {
      g_free (key);
      return;
    }
  o = g_new0 (Offer, 1);
  o->account = account;
  o->who = g_strdup (who);
  o->round_start = now_seconds ();
  g_hash_table_replace (offers, key, o);
  if (transmit (account, who))
    purple_debug_info (E2EE_DEBUG_CAT, "sent a key offer to %s\n", buddy);
  schedule (o, key);
}

void
e2ee_inband_answered (PurpleAccount *account, const char *who)
{
  g_autofree char *buddy = e2ee_plugin_normalize (account, who);
  g_autofree char *key = offer_key (account, buddy);
  Offer *o = offers != NULL ? g_hash_table_lookup (offers, key) : NULL;

  if (o == NULL)
    return;
  o->answered = TRUE;
  if (o->timer != 0)
    purple_timeout_remove (o->timer);
  o->timer = 0;
}

gint64
e2ee_inband_offer_age (PurpleAccount *account, const char *who)
{
  g_autofree char *buddy = NULL;
  g_autofree char *key = NULL;
  Offer *o;

  if (offers == NULL || who == NULL)
    return -1;
  buddy = e2ee_plugin_normalize (account, who);
  key = offer_key (account, buddy);
  o = g_hash_table_lookup (offers, key);
  if (o == NULL || o->answered)
    return -1;
  return now_seconds () - o->round_start;
}

static void
forget_account (PurpleAccount *account)
{
  GHashTableIter iter;
  gpointer value;

  if (offers == NULL)
    return;
  g_hash_table_iter_init (&iter, offers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Offer *) value)->account == account)
      g_hash_table_iter_remove (&iter);
}

/* Open windows whose buddy has no key yet are asked again. */
static void
signed_on_cb (PurpleAccount *account, gpointer data)
{
  forget_account (account);
  if (!e2ee_publish_uses_inband (account) || e2ee_plugin_context () == NULL)
    return;
  for (GList *l = purple_get_ims (); l != NULL; l = l->next)
    {
      PurpleConversation *conv = l->data;
      const char *who = purple_conversation_get_name (conv);
      g_autofree char *buddy = NULL;

      if (purple_conversation_get_account (conv) != account)
        continue;
      buddy = e2ee_plugin_normalize (account, who);
      if (!has_key (account, buddy) && !e2ee_messages_policy_is_off (account, buddy))
        e2ee_inband_send_offer (account, who, TRUE);
    }
}

static void
signed_off_cb (PurpleAccount *account, gpointer data)
{
  forget_account (account);
}

/* ---- nick changes ---- */

static void
renamed (PurpleConversation *conv, const char *old_buddy, const char *new_name)
{
  PurpleAccount *account = purple_conversation_get_account (conv);
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = e2ee_plugin_account (account);
  g_autofree char *new_buddy = e2ee_plugin_normalize (account, new_name);
  E2eeBuddyRecord *old_br;

  if (ctx == NULL || record == NULL)
    return;
  purple_debug_info (E2EE_DEBUG_CAT, "the window with %s now talks to %s\n",
                     old_buddy, new_buddy);
  if (!e2ee_enforce_armor_only (account, old_buddy)
      || e2ee_enforce_armor_only (account, new_buddy))
    {
      if (!has_key (account, new_buddy))
        e2ee_inband_send_offer (account, new_name, TRUE);
      return;
    }
  /* The window goes on with a name that has no key: what held for the old
   * name (a key, or encryption required) now holds for the new one, so
   * nothing leaves in plaintext until the new name's key is known. */
  e2ee_context_set_policy (ctx, record, new_buddy, E2EE_POLICY_REQUIRED);
  old_br = e2ee_account_lookup_buddy (record, old_buddy);
  if (old_br != NULL && (old_br->devices->len > 0 || old_br->key_changed)
      && e2ee_context_mark_had_key (ctx, record, new_buddy, NULL))
    /* Whoever answers under the new name (perhaps the server) does not get
     * a first contact: the old name had a key, so this is a key change. */
    e2ee_ui_say (account, new_name, FALSE,
                 _("%s had an encryption key, so the first key offered for %s is "
                   "NOT trusted on first use: it is handled as a KEY CHANGE.  Before "
                   "accepting it (/e2ee trust DEVICE), compare its safety number "
                   "(/e2ee verify) with %s over a channel you trust."),
                 old_buddy, new_buddy, old_buddy);
  e2ee_ui_say (account, new_name, FALSE,
               _("%s is now known as %s.  Messages to %s had to be encrypted, so "
                 "encryption is now REQUIRED for %s: nothing is sent until their "
                 "key is known (a key request was sent).  If this was not %s, "
                 "someone else may be using the name; /e2ee status shows what "
                 "is known."),
               old_buddy, new_buddy, old_buddy, new_buddy, old_buddy);
  e2ee_inband_send_offer (account, new_name, TRUE);
}

static void
remember_name (PurpleConversation *conv)
{
  PurpleAccount *account = purple_conversation_get_account (conv);

  g_free (purple_conversation_get_data (conv, DATA_NAME));
  purple_conversation_set_data (conv, DATA_NAME,
                                e2ee_plugin_normalize (account,
                                                       purple_conversation_get_name (conv)));
}

static gboolean
watched (PurpleConversation *conv)
{
  return purple_conversation_get_type (conv) == PURPLE_CONV_TYPE_IM
         && e2ee_publish_uses_inband (purple_conversation_get_account (conv));
}

typedef struct {
  PurpleAccount *account;
  char *who;
  guint timer;
} Pending;


static void
pending_free (gpointer data)
{
  Pending *p = data;

  if (p->timer != 0)
    purple_timeout_remove (p->timer);
  g_free (p->who);
  g_free (p);
}

static gboolean
offer_if_needed_cb (gpointer data)
{
  Pending *p = data;
  E2eeAccountRecord *record;
  g_autofree char *buddy = NULL;

  p->timer = 0;
  pending = g_list_remove (pending, p);
  if (g_list_find (purple_accounts_get_all (), p->account) != NULL
      && e2ee_plugin_context () != NULL && purple_account_is_connected (p->account)
      && (record = e2ee_plugin_account (p->account)) != NULL)
    {
      buddy = e2ee_plugin_normalize (p->account, p->who);
      if (!e2ee_messages_buddy_has_key (record, buddy))
        e2ee_inband_send_offer (p->account, p->who, FALSE);
    }
  pending_free (p);
  return FALSE;
}

static void
conversation_created_cb (PurpleConversation *conv, gpointer data)
{
  Pending *p;

  if (!watched (conv))
    return;
  remember_name (conv);
  /* Ask as soon as a chat starts so the first message can already be
   * encrypted; just after, so that a key the user's first action pins
   * (a cached offer of a new contact) needs no offer of ours. */
  p = g_new0 (Pending, 1);
  p->account = purple_conversation_get_account (conv);
  p->who = g_strdup (purple_conversation_get_name (conv));
  p->timer = purple_timeout_add (0, offer_if_needed_cb, p);
  pending = g_list_prepend (pending, p);
}

static void
conversation_updated_cb (PurpleConversation *conv, PurpleConvUpdateType type,
                         gpointer data)
{
  PurpleAccount *account;
  const char *old;
  g_autofree char *now = NULL;
  g_autofree char *was = NULL;

  if (!watched (conv))
    return;
  account = purple_conversation_get_account (conv);
  old = purple_conversation_get_data (conv, DATA_NAME);
  now = e2ee_plugin_normalize (account, purple_conversation_get_name (conv));
  if (old == NULL || strcmp (old, now) == 0)
    {
      if (old == NULL)
        remember_name (conv);
      return;
    }
  was = g_strdup (old);
  remember_name (conv);
  renamed (conv, was, purple_conversation_get_name (conv));
}

static void
deleting_conversation_cb (PurpleConversation *conv, gpointer data)
{
  g_free (purple_conversation_get_data (conv, DATA_NAME));
  purple_conversation_set_data (conv, DATA_NAME, NULL);
}

void
e2ee_inband_connect (PurplePlugin *plugin)
{
  void *convs = purple_conversations_get_handle ();

  purple_signal_connect (purple_accounts_get_handle (), "account-signed-on", plugin,
                         PURPLE_CALLBACK (signed_on_cb), NULL);
  purple_signal_connect (purple_accounts_get_handle (), "account-signed-off", plugin,
                         PURPLE_CALLBACK (signed_off_cb), NULL);
  purple_signal_connect (convs, "conversation-created", plugin,
                         PURPLE_CALLBACK (conversation_created_cb), NULL);
  purple_signal_connect (convs, "conversation-updated", plugin,
                         PURPLE_CALLBACK (conversation_updated_cb), NULL);
  purple_signal_connect (convs, "deleting-conversation", plugin,
                         PURPLE_CALLBACK (deleting_conversation_cb), NULL);
}
