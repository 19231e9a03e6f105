/* purple-e2ee — the message hooks: encrypt on sending-im-msg, decrypt on
 * receiving-im-msg, mark what is shown on writing-im-msg.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include <time.h>

#include "e2ee-plugin.h"
#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-wipe.h"

/* Conversation data: the mark owed to the next local echo of a sent IM. */
#define DATA_ECHO_MARK "purple-e2ee-echo-mark"
/* Conversation data: the user was told why messages go unencrypted. */
#define DATA_TOLD_PLAIN "purple-e2ee-told-plain"
#define DATA_TOLD_WEAK "purple-e2ee-told-weak"

/* A decrypted (or downgraded) message on its way from receiving-im-msg to
 * writing-im-msg.  The digest ties the mark to that exact text, so a mark
 * can never land on a different message if another plugin drops ours. */
typedef struct {
  E2eeMark mark;
  char *digest;
} RecvMark;

static GHashTable *recv_marks;   /* "account\nbuddy" -> RecvMark* */

/* Set by the early receive hook when it left an OTR message to OTR, so
 * the late hook looks at what OTR made of it (one message at a time:
 * signals are emitted synchronously). */
static gboolean otr_passed;

static void
recv_mark_free (gpointer data)
{
  RecvMark *m = data;

  g_free (m->digest);
  g_free (m);
}

static char *
mark_key (PurpleAccount *account, const char *who)
{
  g_autofree char *buddy = e2ee_plugin_normalize (account, who);

  return g_strdup_printf ("%s\n%s\n%s", purple_account_get_protocol_id (account),
                          purple_account_get_username (account), buddy);
}

static char *
text_digest (const char *text)
{
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, text, -1);
}

static void
remember_mark (PurpleAccount *account, const char *who, const char *text, E2eeMark mark)
{
  RecvMark *m = g_new0 (RecvMark, 1);

  if (recv_marks == NULL)
    recv_marks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, recv_mark_free);
  m->mark = mark;
  m->digest = text_digest (text);
  g_hash_table_replace (recv_marks, mark_key (account, who), m);
}

static E2eeMark
take_mark (PurpleAccount *account, const char *who, const char *text)
{
  g_autofree char *key = NULL;
  g_autofree char *digest = NULL;
  RecvMark *m;
  E2eeMark mark = E2EE_MARK_NONE;

  if (recv_marks == NULL || who == NULL)
    return E2EE_MARK_NONE;
  key = mark_key (account, who);
  m = g_hash_table_lookup (recv_marks, key);
  if (m == NULL)
    return E2EE_MARK_NONE;
  digest = text_digest (text);
  if (strcmp (digest, m->digest) == 0)
    mark = m->mark;
  else
    purple_debug_warning (E2EE_DEBUG_CAT, "a message from %s changed on its way "
                          "to the window; not marked\n", who);
  g_hash_table_remove (recv_marks, key);
  return mark;
}

void
e2ee_messages_reset (void)
{
  e2ee_hold_reset ();
  g_clear_pointer (&recv_marks, g_hash_table_destroy);
  otr_passed = FALSE;
}

gboolean
e2ee_messages_buddy_has_key (E2eeAccountRecord *record, const char *buddy)
{
  E2eeBuddyRecord *br = e2ee_account_lookup_buddy (record, buddy);

  if (br == NULL)
    return FALSE;
  for (guint i = 0; i < br->devices->len; i++)
    {
      E2eeDeviceRecord *dev = g_ptr_array_index (br->devices, i);

      if (dev->trust != E2EE_TRUST_REJECTED)
        return TRUE;
    }
  return FALSE;
}

/* Text another encryption plugin owns (pidgin-otr); we never touch it. */
static gboolean
owned_by_other_plugin (const char *text)
{
  while (g_ascii_isspace (*text))
    text++;
  return g_str_has_prefix (text, "?OTR");
}

/* pidgin-otr handles ?OTR text only where it is loaded; elsewhere such
 * text is plaintext like any other. */
static gboolean
otr_loaded (void)
{
  PurplePlugin *otr = purple_plugins_find_with_id ("otr-plugin");

  return otr != NULL && purple_plugin_is_loaded (otr);
}

static gboolean
looks_like_ours (const char *text)
{
  return e2ee_armor_detect (text) || e2ee_fragment_detect (text)
         || e2ee_offer_inband_detect (text);
}

static void
cancel_send (char **message)
{
  e2ee_string_free (*message);
  *message = NULL;
}

static gboolean
policy_is_off (E2eeContext *ctx, E2eeAccountRecord *record, const char *buddy)
{
  E2eeBuddyRecord *br = e2ee_account_lookup_buddy (record, buddy);
  E2eePolicy policy = br != NULL ? br->policy : E2EE_POLICY_DEFAULT;

  if (policy == E2EE_POLICY_DEFAULT)
    policy = e2ee_context_get_default_policy (ctx);
  return policy == E2EE_POLICY_OFF;
}

gboolean
e2ee_messages_policy_is_off (PurpleAccount *account, const char *buddy)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = ctx != NULL ? e2ee_plugin_account (account) : NULL;

  return record != NULL && policy_is_off (ctx, record, buddy);
}

static void
send_encrypted (PurpleAccount *account, const char *receiver, const char *buddy,
                E2eeAccountRecord *record, PurpleConversation *conv, char **message)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  PurpleConnection *gc = purple_account_get_connection (account);
  g_autoptr (GError) error = NULL;
  gsize budget = e2ee_publish_uses_inband (account) ? E2EE_IRC_BUDGET : 0;
  char **pieces;
  guint n;

  pieces = e2ee_context_encrypt (ctx, record, buddy, *message, budget, &error);
  if (pieces == NULL || pieces[0] == NULL || gc == NULL)
    {
      purple_debug_warning (E2EE_DEBUG_CAT, "encrypting to %s failed: %s\n", buddy,
                            error != NULL ? error->message : "no connection");
      cancel_send (message);
      e2ee_ui_report_blocked (account, buddy, error);
      g_strfreev (pieces);
      return;
    }

  /* Every piece but the last goes out directly; the last one continues on
   * the normal path so the local echo and sent-im-msg still happen. */
  n = g_strv_length (pieces);
  for (guint i = 0; i + 1 < n; i++)
    serv_send_im (gc, receiver, pieces[i], 0);
  e2ee_string_free (*message);
  *message = g_strdup (pieces[n - 1]);
  purple_debug_info (E2EE_DEBUG_CAT, "encrypted a message to %s (%u piece(s))\n",
                     buddy, n);
  g_strfreev (pieces);

  /* A session started without a prekey (none was published, e.g. IRC
   * before any exchange) is not forward-secret until the buddy answers. */
  if (conv != NULL && e2ee_context_session_weak (ctx, record, buddy)
      && purple_conversation_get_data (conv, DATA_TOLD_WEAK) == NULL)
    {
      e2ee_ui_say (account, buddy, FALSE,
                   _("Encrypted, but not yet forward-secret: %s has published no signed "
                     "prekey, so until they answer, whoever later steals their identity "
                     "key could read what you send now."), buddy);
      purple_conversation_set_data (conv, DATA_TOLD_WEAK, GINT_TO_POINTER (1));
    }
  else if (conv != NULL && !e2ee_context_session_weak (ctx, record, buddy))
    purple_conversation_set_data (conv, DATA_TOLD_WEAK, NULL);
  if (conv != NULL)
    {
      purple_conversation_set_data (conv, DATA_ECHO_MARK,
                                    GINT_TO_POINTER (e2ee_ui_mark_for_buddy (record, buddy)));
      if (!e2ee_prefs_log_encrypted ())
        purple_conversation_set_logging (conv, FALSE);
    }
}

/* The user is told whenever a message goes unencrypted: its echo is
 * marked, and the reason is given once per window (and after a wait for
 * the key ran out). */
static void
sending_plaintext (PurpleAccount *account, const char *buddy, PurpleConversation *conv,
                   gboolean off)
{
  PurpleConversation *c = conv != NULL ? conv : e2ee_ui_find_conv (account, buddy, FALSE);

  if (c != NULL)
    purple_conversation_set_data (c, DATA_ECHO_MARK, GINT_TO_POINTER (E2EE_MARK_PLAINTEXT));
  if (e2ee_hold_timed_out ())
    e2ee_ui_say (account, buddy, TRUE,
                 _("Sent UNENCRYPTED: %s did not answer the encryption key request "
                   "in time (they may not use purple-e2ee).  /e2ee require stops "
                   "unencrypted messages to them."), buddy);
  else if (c != NULL && purple_conversation_get_data (c, DATA_TOLD_PLAIN) == NULL)
    e2ee_ui_say (account, buddy, TRUE,
                 off ? _("Sent UNENCRYPTED: encryption is off for %s (/e2ee on "
                         "turns it on).")
                     : _("Sent UNENCRYPTED: no encryption key of %s is known.  "
                         "/e2ee require stops unencrypted messages to them."),
                 buddy);
  if (c != NULL)
    purple_conversation_set_data (c, DATA_TOLD_PLAIN, GINT_TO_POINTER (1));
}

static void
sending_im_cb (PurpleAccount *account, const char *receiver, char **message,
               gpointer data)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  g_autoptr (GError) error = NULL;
  g_autofree char *buddy = NULL;
  PurpleConversation *conv;
  E2eeAccountRecord *record;

  if (message == NULL || *message == NULL || **message == '\0' || receiver == NULL)
    return;
  if (owned_by_other_plugin (*message))
    return;

  buddy = e2ee_plugin_normalize (account, receiver);
  if (ctx != NULL && !e2ee_plugin_is_contact (account, buddy))
    e2ee_plugin_add_contact (account, buddy);
  conv = purple_find_conversation_with_account (PURPLE_CONV_TYPE_IM, receiver, account);
  if (conv != NULL)
    purple_conversation_set_data (conv, DATA_ECHO_MARK, NULL);

  record = ctx != NULL ? e2ee_plugin_account (account) : NULL;
  if (record == NULL)
    {
      /* Without the keyring we cannot know whether this buddy needs
       * encryption, so nothing leaves in plaintext. */
      cancel_send (message);
      if (e2ee_plugin_is_locked ())
        e2ee_ui_say (account, buddy, TRUE,
                     _("Message NOT sent: end-to-end encryption is unavailable (%s).  "
                       "Unlock the keyring (Tools or Plugins menu: purple-e2ee), or "
                       "disable the purple-e2ee plugin to send without encryption."),
                     e2ee_plugin_inactive_reason ());
      else
        e2ee_ui_say (account, buddy, TRUE,
                     _("Message NOT sent: end-to-end encryption is unavailable (%s).  "
                       "Nothing was changed in the keyring.  If it is damaged, restore "
                       "it from your backup (see docs/SECURITY.md); or disable the "
                       "purple-e2ee plugin to send without encryption."),
                     ctx == NULL ? e2ee_plugin_inactive_reason ()
                                 : _("this account has no key"));
      return;
    }

  switch (e2ee_context_send_decision (ctx, record, buddy, &error))
    {
    case E2EE_SEND_ENCRYPT:
      send_encrypted (account, receiver, buddy, record, conv, message);
      break;

    case E2EE_SEND_PLAINTEXT:
      /* Rejected is not absent: a buddy who has had a key gets nothing in
       * plaintext unless encryption is off for them. */
      if (e2ee_enforce_armor_only (account, buddy))
        {
          cancel_send (message);
          e2ee_ui_report_no_usable_device (account, buddy);
          break;
        }
      /* Where keys only travel in-band, asking now lets the next message
       * be encrypted.  Elsewhere a buddy with the plugin publishes a key,
       * so an unasked offer would mostly puzzle people without it. */
      if (e2ee_publish_uses_inband (account)
          && !e2ee_messages_buddy_has_key (record, buddy)
          && !policy_is_off (ctx, record, buddy))
        {
          e2ee_inband_send_offer (account, receiver, FALSE);
          if (e2ee_hold_should (account, receiver))
            {
              e2ee_hold_message (account, receiver, buddy, message);
              break;
            }
        }
      /* XMPP: the buddy's published key list is read first. */
      if (!e2ee_messages_buddy_has_key (record, buddy)
          && !policy_is_off (ctx, record, buddy)
          && e2ee_xmpp_fetch_before_send (account, receiver))
        {
          e2ee_hold_message (account, receiver, buddy, message);
          break;
        }
      sending_plaintext (account, buddy, conv, policy_is_off (ctx, record, buddy));
      break;

    case E2EE_SEND_BLOCK:
    default:
      purple_debug_info (E2EE_DEBUG_CAT, "not sending to %s: %s\n", buddy,
                         error != NULL ? error->message : "blocked");
      if (g_error_matches (error, E2EE_ERROR, E2EE_ERROR_NO_KEY)
          && e2ee_xmpp_fetch_before_send (account, receiver))
        {
          e2ee_hold_message (account, receiver, buddy, message);
          break;
        }
      if (g_error_matches (error, E2EE_ERROR, E2EE_ERROR_NO_KEY))
        e2ee_inband_send_offer (account, receiver, FALSE);
      cancel_send (message);
      e2ee_ui_report_blocked (account, buddy, error);
      break;
    }
}

static void
drop_message (char **message)
{
  g_free (*message);
  *message = NULL;
}

typedef struct {
  PurpleAccount *account;
  char *buddy;
} Prepare;

static gboolean
prepare_cb (gpointer data)
{
  Prepare *p = data;
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = NULL;
  g_autoptr (GError) error = NULL;

  /* The account may be gone by now: only one still known is used. */
  if (ctx != NULL && g_list_find (purple_accounts_get_all (), p->account) != NULL)
    record = e2ee_plugin_account (p->account);
  if (record != NULL && !e2ee_context_prepare_sessions (ctx, record, p->buddy, &error))
    purple_debug_warning (E2EE_DEBUG_CAT, "preparing the next ratchet key for %s: %s\n",
                          p->buddy, error->message);
  g_free (p->buddy);
  g_free (p);
  return FALSE;
}

/* The ratchet's next key is drawn when the host is idle, not when the
 * user presses Enter. */
static void
schedule_prepare (PurpleAccount *account, const char *buddy)
{
  Prepare *p = g_new0 (Prepare, 1);

  p->account = account;
  p->buddy = g_strdup (buddy);
  g_idle_add (prepare_cb, p);
}

/* Sends what the core handed back for @who (an answer to a key offer, a
 * new session start), in pieces where the line is short. */
static void
send_reply (PurpleAccount *account, const char *who, const char *reply)
{
  PurpleConnection *gc = purple_account_get_connection (account);
  gsize budget = e2ee_publish_uses_inband (account) ? E2EE_IRC_BUDGET : 0;
  g_auto (GStrv) pieces = NULL;

  if (reply == NULL || gc == NULL)
    return;
  pieces = e2ee_wire_pieces (reply, budget, NULL);
  for (guint i = 0; pieces != NULL && pieces[i] != NULL; i++)
    serv_send_im (gc, who, pieces[i], 0);
}

/* Returns TRUE when the message must not be shown. */
static gboolean
handle_incoming (PurpleAccount *account, char **sender, char **message,
                 PurpleMessageFlags *flags, const char *stripped)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeRecvResult res = { 0 };
  g_autofree char *buddy = e2ee_plugin_normalize (account, *sender);
  E2eeAccountRecord *record = ctx != NULL ? e2ee_plugin_account (account) : NULL;
  gboolean swallow = FALSE;

  if (record == NULL)
    {
      if (!looks_like_ours (stripped))
        return FALSE;
      e2ee_ui_say (account, buddy, TRUE,
                   _("%s sent an encrypted message, but end-to-end encryption is "
                     "unavailable here (%s), so it cannot be shown."),
                   buddy, ctx == NULL ? e2ee_plugin_inactive_reason ()
                                      : _("this account has no key"));
      drop_message (message);
      return TRUE;
    }

  e2ee_context_receive_full (ctx, record, buddy, stripped,
                             g_get_monotonic_time () / G_USEC_PER_SEC,
                             e2ee_plugin_is_contact (account, buddy), &res);
  switch (res.kind)
    {
    case E2EE_RECV_PLAINTEXT:
      if (res.downgrade)
        purple_debug_info (E2EE_DEBUG_CAT, "unencrypted message from %s\n", buddy);
      e2ee_ui_flag_plaintext (message, stripped);
      break;

    case E2EE_RECV_PENDING:
      swallow = TRUE;
      break;

    case E2EE_RECV_OFFER:
      send_reply (account, *sender, res.reply);
      e2ee_ui_report_learned (account, buddy, res.learned, res.new_devices);
      swallow = TRUE;
      e2ee_inband_answered (account, *sender);
      e2ee_hold_release_for (account, *sender);
      break;

    case E2EE_RECV_MESSAGE:
      schedule_prepare (account, buddy);
      if (res.weak)
        {
          PurpleConversation *c = e2ee_ui_find_conv (account, *sender, TRUE);

          if (c != NULL && purple_conversation_get_data (c, DATA_TOLD_WEAK) == NULL)
            {
              e2ee_ui_say (account, buddy, TRUE,
                           _("%s's first messages were encrypted without your signed "
                             "prekey, so they are not forward-secret: whoever later "
                             "steals your identity key could read them.  Your reply "
                             "ends that."), buddy);
              purple_conversation_set_data (c, DATA_TOLD_WEAK, GINT_TO_POINTER (1));
            }
        }
      purple_debug_info (E2EE_DEBUG_CAT, "decrypted a message from %s (device %.8s)\n",
                         buddy, res.sender_kid != NULL ? res.sender_kid : "?");
      g_free (*message);
      *message = g_strdup (res.plaintext);
      remember_mark (account, *sender, *message, e2ee_ui_mark_for_trust (res.sender_trust));
      if (!e2ee_prefs_log_encrypted ())
        *flags |= PURPLE_MESSAGE_NO_LOG;
      break;

    case E2EE_RECV_WITHHELD:
      purple_debug_info (E2EE_DEBUG_CAT, "held back a message from %s (device %.8s)\n",
                         buddy, res.sender_kid != NULL ? res.sender_kid : "?");
      e2ee_report_withheld (account, buddy, res.sender_kid);
      swallow = TRUE;
      break;

    case E2EE_RECV_ERROR:
      if (g_error_matches (res.error, E2EE_ERROR, E2EE_ERROR_REJECTED))
        {
          e2ee_report_rejected (account, buddy, res.sender_kid);
          swallow = TRUE;
          break;
        }
      if (g_error_matches (res.error, E2EE_ERROR, E2EE_ERROR_UNKNOWN_SENDER)
          && !e2ee_plugin_is_contact (account, buddy))
        {
          e2ee_report_from_stranger (account, *sender, buddy, stripped);
          swallow = TRUE;
          break;
        }
      /* XMPP: read again once their published key list is in. */
      if (g_error_matches (res.error, E2EE_ERROR, E2EE_ERROR_UNKNOWN_SENDER)
          && e2ee_xmpp_fetch_and_retry (account, *sender, stripped))
        {
          swallow = TRUE;
          break;
        }
      /* fall through */
    default:
      purple_debug_warning (E2EE_DEBUG_CAT, "rejected a message from %s: %s\n", buddy,
                            res.error != NULL ? res.error->message : "?");
      /* A session that did not open: our new start goes back at once. */
      send_reply (account, *sender, res.reply);
      e2ee_ui_report_receive_error (account, buddy, res.error);
      /* They encrypted to keys of ours they should not use (we were
       * reinstalled, or they never saw this device): tell them ours. */
      if (g_error_matches (res.error, E2EE_ERROR, E2EE_ERROR_NOT_FOR_US)
          || g_error_matches (res.error, E2EE_ERROR, E2EE_ERROR_UNKNOWN_SENDER))
        e2ee_inband_send_offer (account, *sender, FALSE);
      swallow = TRUE;
      break;
    }
  e2ee_recv_result_clear (&res);
  if (swallow)
    drop_message (message);
  return swallow;
}

void
e2ee_messages_replay (PurpleAccount *account, const char *who, const char *armored)
{
  char *sender = g_strdup (who);
  char *message = g_strdup (armored);
  PurpleMessageFlags flags = PURPLE_MESSAGE_RECV;
  PurpleConversation *conv;

  if (!handle_incoming (account, &sender, &message, &flags, armored) && message != NULL)
    {
      conv = e2ee_ui_find_conv (account, sender, TRUE);
      purple_conv_im_write (PURPLE_CONV_IM (conv), sender, message, flags, time (NULL));
    }
  e2ee_string_free (message);
  g_free (sender);
}

static gboolean
receiving_im_cb (PurpleAccount *account, char **sender, char **message,
                 PurpleConversation *conv, PurpleMessageFlags *flags, gpointer data)
{
  char *stripped;
  gboolean ret;

  otr_passed = FALSE;
  if (sender == NULL || *sender == NULL || message == NULL || *message == NULL)
    return FALSE;
  stripped = purple_markup_strip_html (*message);
  if (stripped == NULL)
    return FALSE;
  if (owned_by_other_plugin (stripped) && otr_loaded ())
    {
      otr_passed = TRUE;
      e2ee_string_free (stripped);
      return FALSE;
    }
  ret = handle_incoming (account, sender, message, flags, stripped);
  e2ee_string_free (stripped);
  return ret;
}

/* After OTR decrypted a message: if what was inside is ours, handle it now. */
static gboolean
receiving_im_late_cb (PurpleAccount *account, char **sender, char **message,
                      PurpleConversation *conv, PurpleMessageFlags *flags, gpointer data)
{
  char *stripped;
  gboolean ret = FALSE;

  if (!otr_passed)
    return FALSE;
  otr_passed = FALSE;
  if (sender == NULL || *sender == NULL || message == NULL || *message == NULL)
    return FALSE;
  stripped = purple_markup_strip_html (*message);
  /* Ours inside OTR, or OTR text that OTR left alone (plaintext). */
  if (stripped != NULL && (looks_like_ours (stripped) || owned_by_other_plugin (stripped)))
    ret = handle_incoming (account, sender, message, flags, stripped);
  e2ee_string_free (stripped);
  return ret;
}

static void
prefix_message (char **message, E2eeMark mark)
{
  g_autofree char *prefix = e2ee_ui_mark_prefix (mark);
  char *marked = g_strconcat (prefix, *message, NULL);

  e2ee_string_free (*message);
  *message = marked;
}

static gboolean
writing_im_cb (PurpleAccount *account, const char *who, char **message,
               PurpleConversation *conv, PurpleMessageFlags flags, gpointer data)
{
  E2eeMark mark = E2EE_MARK_NONE;

  if (message == NULL || *message == NULL || (flags & PURPLE_MESSAGE_SYSTEM))
    return FALSE;

  if ((flags & PURPLE_MESSAGE_SEND) && conv != NULL)
    {
      mark = GPOINTER_TO_INT (purple_conversation_get_data (conv, DATA_ECHO_MARK));
      purple_conversation_set_data (conv, DATA_ECHO_MARK, NULL);
    }
  else if (flags & PURPLE_MESSAGE_RECV)
    {
      /* Some UIs pass the buddy's alias as @who (Finch); the conversation
       * name is the buddy the message came from. */
      mark = take_mark (account, conv != NULL ? purple_conversation_get_name (conv) : who,
                        *message);
      if (mark != E2EE_MARK_NONE && mark != E2EE_MARK_PLAINTEXT && conv != NULL
          && !e2ee_prefs_log_encrypted ())
        purple_conversation_set_logging (conv, FALSE);
    }
  if (mark != E2EE_MARK_NONE)
    prefix_message (message, mark);
  return FALSE;
}

void
e2ee_messages_connect (PurplePlugin *plugin)
{
  void *conv_handle = purple_conversations_get_handle ();

  purple_signal_connect_priority (conv_handle, "sending-im-msg", plugin,
                                  PURPLE_CALLBACK (sending_im_cb), NULL,
                                  E2EE_SIGNAL_PRIORITY);
  purple_signal_connect_priority (conv_handle, "receiving-im-msg", plugin,
                                  PURPLE_CALLBACK (receiving_im_cb), NULL,
                                  E2EE_SIGNAL_PRIORITY);
  purple_signal_connect_priority (conv_handle, "receiving-im-msg", plugin,
                                  PURPLE_CALLBACK (receiving_im_late_cb), NULL,
                                  -E2EE_SIGNAL_PRIORITY);
  purple_signal_connect (conv_handle, "writing-im-msg", plugin,
                         PURPLE_CALLBACK (writing_im_cb), NULL);
}
