/* purple-e2ee — what the user is told about messages of devices they have
 * not accepted: held back (with the command that shows them), released
 * once accepted, dropped from rejected devices.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <time.h>

#include "e2ee-plugin.h"
#include "e2ee-wipe.h"

/* One line per device and session, for at most this many devices (then
 * the memory starts over): a device sending many messages costs one line. */
#define TOLD_MAX 256

static GHashTable *told;   /* "account\nbuddy\nkid" */

static void e2ee_report_inbox_reset (void);

void
e2ee_report_reset (void)
{
  g_clear_pointer (&told, g_hash_table_destroy);
  e2ee_report_inbox_reset ();
}

/* TRUE the first time for this device. */
static gboolean
first_time (PurpleAccount *account, const char *buddy, const char *kid, const char *what)
{
  char *key = g_strdup_printf ("%s\n%s\n%s\n%s\n%s", what,
                               purple_account_get_protocol_id (account),
                               purple_account_get_username (account), buddy,
                               kid != NULL ? kid : "");

  if (told == NULL)
    told = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (g_hash_table_size (told) >= TOLD_MAX)
    g_hash_table_remove_all (told);
  if (g_hash_table_contains (told, key))
    {
      g_free (key);
      return FALSE;
    }
  g_hash_table_add (told, key);
  return TRUE;
}

static void
forget (PurpleAccount *account, const char *buddy, const char *kid, const char *what)
{
  g_autofree char *key = g_strdup_printf ("%s\n%s\n%s\n%s\n%s", what,
                                          purple_account_get_protocol_id (account),
                                          purple_account_get_username (account), buddy,
                                          kid != NULL ? kid : "");

  if (told != NULL)
    g_hash_table_remove (told, key);
}

static gboolean
is_own (PurpleAccount *account, const char *buddy)
{
  E2eeAccountRecord *record = e2ee_plugin_account (account);

  return record != NULL && g_strcmp0 (record->name, buddy) == 0;
}

void
e2ee_report_withheld (PurpleAccount *account, const char *buddy, const char *kid)
{
  g_autofree char *short_kid = g_strndup (kid != NULL ? kid : "?", 8);

  if (!first_time (account, buddy, kid, "withheld"))
    return;
  if (is_own (account, buddy))
    e2ee_ui_say (account, buddy, TRUE,
                 _("A message from a device that claims to be YOUR account (device "
                   "%s, not accepted) is held back and NOT shown.  If that device "
                   "is yours, /e2ee own accept %s shows it; otherwise /e2ee own "
                   "reject %s."),
                 short_kid, short_kid, short_kid);
  else
    e2ee_ui_say (account, buddy, TRUE,
                 _("A message from %s's device %s, which you have not accepted, is "
                   "held back and NOT shown: it may not be from %s.  To read it, "
                   "compare that device's safety number (/e2ee verify) and accept "
                   "it: /e2ee trust %s (or /e2ee reject %s)."),
                 buddy, short_kid, buddy, short_kid, short_kid);
}

void
e2ee_report_rejected (PurpleAccount *account, const char *buddy, const char *kid)
{
  g_autofree char *short_kid = g_strndup (kid != NULL ? kid : "?", 8);

  if (!first_time (account, buddy, kid, "rejected"))
    return;
  e2ee_ui_say (account, buddy, TRUE,
               _("Messages from %s's device %s, which you rejected, are dropped "
                 "unread (this is said once).  /e2ee trust %s accepts it again."),
               buddy, short_kid, short_kid);
}

void
e2ee_report_release (PurpleAccount *account, const char *buddy)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = e2ee_plugin_account (account);
  g_autoptr (GPtrArray) released = NULL;
  PurpleConversation *conv;

  if (ctx == NULL || record == NULL)
    return;
  released = e2ee_context_take_withheld (ctx, record, buddy);
  if (released == NULL || released->len == 0)
    return;
  conv = e2ee_ui_find_conv (account, buddy, TRUE);
  e2ee_ui_system (conv, _("Messages held back until you accepted the device:"));
  for (guint i = 0; i < released->len; i++)
    {
      E2eeWithheldMessage *m = g_ptr_array_index (released, i);
      g_autofree char *prefix =
        e2ee_ui_mark_prefix (e2ee_ui_mark_for_trust (m->sender_trust));
      char *text = g_strconcat (prefix, m->plaintext, NULL);
      PurpleMessageFlags flags = PURPLE_MESSAGE_RECV;

      if (!e2ee_prefs_log_encrypted ())
        flags |= PURPLE_MESSAGE_NO_LOG;
      purple_conv_im_write (PURPLE_CONV_IM (conv), buddy, text, flags,
                            m->received > 0 ? (time_t) m->received : time (NULL));
      e2ee_string_free (text);
      forget (account, buddy, m->sender_kid, "withheld");
    }
}

/* ---- encrypted messages from people who are not contacts ---- */

/* Their offers are not pinned (the core keeps them in a small cache), so
 * their envelopes cannot be read yet: the envelopes (ciphertext) wait
 * here, bounded, until the user writes to them or adds them. */
#define INBOX_PER_SENDER 8
#define INBOX_SENDERS 64

typedef struct {
  PurpleAccount *account;
  char *who;
  GQueue *texts;
} Inbox;

static GHashTable *inbox;   /* "protocol\naccount\nbuddy" -> Inbox* */
static GQueue *inbox_order; /* keys, oldest sender first */

static void
inbox_free (gpointer data)
{
  Inbox *b = data;

  g_queue_free_full (b->texts, g_free);
  g_free (b->who);
  g_free (b);
}

static void
e2ee_report_inbox_reset (void)
{
  g_clear_pointer (&inbox, g_hash_table_destroy);
  if (inbox_order != NULL)
    g_queue_free_full (inbox_order, g_free);
  inbox_order = NULL;
}

static char *
inbox_key (PurpleAccount *account, const char *buddy)
{
  return g_strdup_printf ("%s\n%s\n%s", purple_account_get_protocol_id (account),
                          purple_account_get_username (account), buddy);
}

void
e2ee_report_from_stranger (PurpleAccount *account, const char *who, const char *buddy,
                           const char *armored)
{
  char *key = inbox_key (account, buddy);
  Inbox *b;

  if (inbox == NULL)
    {
      inbox = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, inbox_free);
      inbox_order = g_queue_new ();
    }
  b = g_hash_table_lookup (inbox, key);
  if (b == NULL)
    {
      if (g_queue_get_length (inbox_order) >= INBOX_SENDERS)
        {
          char *oldest = g_queue_pop_head (inbox_order);

          g_hash_table_remove (inbox, oldest);
          g_free (oldest);
        }
      b = g_new0 (Inbox, 1);
      b->account = account;
      b->who = g_strdup (who);
      b->texts = g_queue_new ();
      g_hash_table_insert (inbox, g_strdup (key), b);
      g_queue_push_tail (inbox_order, key);
      e2ee_ui_say (account, buddy, TRUE,
                   _("%s, who is not on your buddy list and whom you have not written "
                     "to, sent an encrypted message.  It is kept unread until you add "
                     "them or write to them; then it is shown."), buddy);
    }
  else
    g_free (key);
  if (g_queue_get_length (b->texts) >= INBOX_PER_SENDER)
    g_free (g_queue_pop_head (b->texts));
  g_queue_push_tail (b->texts, g_strdup (armored));
}

void
e2ee_report_stranger_promoted (PurpleAccount *account, const char *buddy)
{
  g_autofree char *key = inbox_key (account, buddy);
  gpointer stolen = NULL, value = NULL;
  GList *link;
  Inbox *b;
  char *text;

  if (inbox == NULL || !g_hash_table_steal_extended (inbox, key, &stolen, &value))
    return;
  g_free (stolen);
  link = g_queue_find_custom (inbox_order, key, (GCompareFunc) g_strcmp0);
  if (link != NULL)
    {
      g_free (link->data);
      g_queue_delete_link (inbox_order, link);
    }
  b = value;
  while ((text = g_queue_pop_head (b->texts)) != NULL)
    {
      e2ee_messages_replay (b->account, b->who, text);
      g_free (text);
    }
  inbox_free (b);
}
