/* purple-e2ee — what the user sees: system lines, markers, reports.  Only
 * libpurple's conversation, notify and request APIs, so every UI shows it.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <time.h>

#include "e2ee-plugin.h"
#include "e2ee-error.h"
#include "e2ee-fingerprint.h"

/* Characters of a kid shown to the user; /e2ee accepts any unique prefix. */
#define SHORT_KID 8

PurpleConversation *
e2ee_ui_find_conv (PurpleAccount *account, const char *who, gboolean create)
{
  PurpleConversation *conv;

  conv = purple_find_conversation_with_account (PURPLE_CONV_TYPE_IM, who, account);
  if (conv == NULL && create)
    conv = purple_conversation_new (PURPLE_CONV_TYPE_IM, account, who);
  return conv;
}

void
e2ee_ui_system (PurpleConversation *conv, const char *text)
{
  g_autofree char *escaped = NULL;
  g_autofree char *html = NULL;

  if (conv == NULL || text == NULL)
    return;
  escaped = g_markup_escape_text (text, -1);
  html = purple_strdup_withhtml (escaped);
  purple_conversation_write (conv, NULL, html,
                             PURPLE_MESSAGE_SYSTEM | PURPLE_MESSAGE_NO_LOG,
                             time (NULL));
}

void
e2ee_ui_say (PurpleAccount *account, const char *who, gboolean create,
             const char *format, ...)
{
  g_autofree char *text = NULL;
  PurpleConversation *conv;
  va_list args;

  conv = e2ee_ui_find_conv (account, who, create);
  if (conv == NULL)
    return;
  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  e2ee_ui_system (conv, text);
}

char *
e2ee_ui_mark_prefix (E2eeMark mark)
{
  g_autofree char *marker = g_markup_escape_text (e2ee_prefs_get_marker (), -1);

  switch (mark)
    {
    case E2EE_MARK_VERIFIED:
      /* TRANSLATORS: %s is the lock marker */
      return g_strdup_printf (_("[%s verified] "), marker);
    case E2EE_MARK_UNVERIFIED:
      /* TRANSLATORS: %s is the lock marker */
      return g_strdup_printf (_("[%s unverified] "), marker);
    case E2EE_MARK_PLAINTEXT:
      return g_strdup (_("[not encrypted] "));
    case E2EE_MARK_NONE:
    default:
      return g_strdup ("");
    }
}

E2eeMark
e2ee_ui_mark_for_trust (E2eeTrust trust)
{
  return trust == E2EE_TRUST_VERIFIED ? E2EE_MARK_VERIFIED : E2EE_MARK_UNVERIFIED;
}

E2eeMark
e2ee_ui_mark_for_buddy (E2eeAccountRecord *record, const char *buddy)
{
  E2eeBuddyRecord *br = record != NULL ? e2ee_account_lookup_buddy (record, buddy) : NULL;
  guint verified = 0, used = 0;

  if (br == NULL)
    return E2EE_MARK_UNVERIFIED;
  for (guint i = 0; i < br->devices->len; i++)
    {
      E2eeDeviceRecord *dev = g_ptr_array_index (br->devices, i);

      if (dev->trust == E2EE_TRUST_TOFU || dev->trust == E2EE_TRUST_VERIFIED)
        used++;
      if (dev->trust == E2EE_TRUST_VERIFIED)
        verified++;
    }
  return (used > 0 && verified == used) ? E2EE_MARK_VERIFIED : E2EE_MARK_UNVERIFIED;
}

static const char *
trust_label (E2eeTrust trust)
{
  switch (trust)
    {
    case E2EE_TRUST_UNDECIDED:
      return _("awaiting your decision (/e2ee trust)");
    case E2EE_TRUST_TOFU:
      return _("trusted on first use, not verified");
    case E2EE_TRUST_VERIFIED:
      return _("verified");
    case E2EE_TRUST_REJECTED:
      return _("rejected");
    default:
      return "?";
    }
}

static const char *
policy_label (E2eePolicy policy)
{
  switch (policy)
    {
    case E2EE_POLICY_OFF:
      return _("off");
    case E2EE_POLICY_OPPORTUNISTIC:
      return _("encrypt when a key is known");
    case E2EE_POLICY_REQUIRED:
      return _("encryption required");
    case E2EE_POLICY_DEFAULT:
    default:
      return _("default");
    }
}

static char *
short_kid (const E2eeKey *key)
{
  return g_strndup (e2ee_key_get_kid (key), SHORT_KID);
}

static void
report_device (PurpleAccount *account, const char *who, E2eeKey *key,
               E2eeLearnResult result)
{
  g_autofree char *fp = e2ee_fingerprint_hex (key);
  g_autofree char *kid = short_kid (key);

  switch (result)
    {
    case E2EE_LEARN_FIRST_CONTACT:
      e2ee_ui_say (account, who, FALSE,
                   _("Learned %s's encryption key (device %s, fingerprint %s). "
                     "Your messages to %s are now end-to-end encrypted.  To be sure "
                     "nobody is in between, compare safety numbers: /e2ee verify"),
                   who, kid, fp, who);
      break;
    case E2EE_LEARN_NEW_DEVICE:
      e2ee_ui_say (account, who, TRUE,
                   _("%s has a NEW DEVICE (device %s, fingerprint %s).  It will not "
                     "receive your messages until you accept it: check with "
                     "/e2ee verify, then /e2ee trust %s"),
                   who, kid, fp, kid);
      break;
    case E2EE_LEARN_KEY_CHANGED:
      e2ee_ui_say (account, who, TRUE,
                   _("WARNING: %s's encryption key has CHANGED (new device %s, "
                     "fingerprint %s).  They may have reinstalled, or someone may "
                     "be intercepting this conversation.  Sending to %s is BLOCKED "
                     "until you compare safety numbers (/e2ee verify) and accept "
                     "the new key (/e2ee trust), or /e2ee reset."),
                   who, kid, fp, who);
      break;
    case E2EE_LEARN_NOTHING_NEW:
    default:
      break;
    }
}

void
e2ee_ui_report_learned (PurpleAccount *account, const char *who,
                        E2eeLearnResult result, GPtrArray *new_devices)
{
  if (result == E2EE_LEARN_NOTHING_NEW)
    return;
  purple_debug_info (E2EE_DEBUG_CAT, "keys of %s: result %d, %u new device(s)\n",
                     who, (int) result, new_devices != NULL ? new_devices->len : 0);
  if (new_devices == NULL || new_devices->len == 0)
    {
      if (result == E2EE_LEARN_KEY_CHANGED)
        e2ee_ui_say (account, who, TRUE,
                     _("WARNING: %s's encryption key has CHANGED.  Sending is "
                       "blocked until you check it (/e2ee verify) and accept it "
                       "(/e2ee trust)."), who);
      return;
    }
  /* A key change is one event even when several new devices replace the old. */
  if (result == E2EE_LEARN_KEY_CHANGED)
    {
      report_device (account, who, g_ptr_array_index (new_devices, 0), result);
      return;
    }
  for (guint i = 0; i < new_devices->len; i++)
    report_device (account, who, g_ptr_array_index (new_devices, i), result);
}

void
e2ee_ui_report_blocked (PurpleAccount *account, const char *who, const GError *error)
{
  const char *detail = error != NULL ? error->message : "";

  if (g_error_matches (error, E2EE_ERROR, E2EE_ERROR_NO_KEY))
    e2ee_ui_say (account, who, TRUE,
                 _("Message NOT sent: encryption is required for %s but their key is "
                   "not known yet.  A key request was sent; send again once they "
                   "answer.  To allow plaintext: /e2ee on (encrypt when possible) "
                   "or /e2ee off."), who);
  else if (g_error_matches (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED))
    e2ee_ui_say (account, who, TRUE,
                 _("Message NOT sent: %s's encryption key changed or a device awaits "
                   "your decision.  Compare safety numbers with /e2ee verify, then "
                   "accept with /e2ee trust (or start over with /e2ee reset)."), who);
  else if (g_error_matches (error, E2EE_ERROR, E2EE_ERROR_POLICY))
    e2ee_ui_say (account, who, TRUE,
                 _("Message NOT sent: %s  (/e2ee status shows the policy; /e2ee on "
                   "or /e2ee off changes it.)"), detail);
  else
    e2ee_ui_say (account, who, TRUE,
                 _("Message NOT sent: it could not be encrypted (%s).  It was not "
                   "sent in plaintext either."), detail);
}

void
e2ee_ui_report_receive_error (PurpleAccount *account, const char *who,
                              const GError *error)
{
  const char *detail = error != NULL ? error->message : "";
  int code = (error != NULL && error->domain == E2EE_ERROR) ? error->code : 0;

  switch (code)
    {
    case E2EE_ERROR_AEAD_TAG:
    case E2EE_ERROR_ARMOR:
    case E2EE_ERROR_ENVELOPE_TRUNCATED:
    case E2EE_ERROR_ENVELOPE_TRAILING:
    case E2EE_ERROR_ENVELOPE_FLAGS:
    case E2EE_ERROR_ENVELOPE_RECIPIENTS:
    case E2EE_ERROR_ENVELOPE_TOO_LARGE:
      e2ee_ui_say (account, who, TRUE,
                   _("An encrypted message from %s could not be decrypted: it was "
                     "altered in transit or damaged.  It is not shown."), who);
      break;
    case E2EE_ERROR_REPLAY:
      e2ee_ui_say (account, who, TRUE,
                   _("An encrypted message from %s was rejected: it repeats an "
                     "earlier message (a replay).  It is not shown."), who);
      break;
    case E2EE_ERROR_UNKNOWN_SENDER:
      e2ee_ui_say (account, who, TRUE,
                   _("An encrypted message from %s came from a device whose key is "
                     "not known here, so it is not shown.  /e2ee status lists their "
                     "known devices."), who);
      break;
    case E2EE_ERROR_NOT_FOR_US:
      e2ee_ui_say (account, who, TRUE,
                   _("%s sent an encrypted message this device cannot read: it was "
                     "encrypted for other devices only.  They need to accept this "
                     "device (/e2ee trust on their side)."), who);
      break;
    case E2EE_ERROR_ENVELOPE_VERSION:
    case E2EE_ERROR_DOWNGRADE:
      e2ee_ui_say (account, who, TRUE,
                   _("An encrypted message from %s was rejected: its protocol "
                     "version is not acceptable (%s).  It is not shown."), who, detail);
      break;
    case E2EE_ERROR_FRAGMENT:
    case E2EE_ERROR_FRAGMENT_LIMIT:
      e2ee_ui_say (account, who, TRUE,
                   _("A piece of an encrypted message from %s was malformed or "
                     "too much and was dropped."), who);
      break;
    default:
      e2ee_ui_say (account, who, TRUE,
                   _("An encrypted message from %s could not be read (%s).  It is "
                     "not shown."), who, detail);
      break;
    }
}

char *
e2ee_ui_describe_own (E2eeAccountRecord *record)
{
  g_autofree char *fp = e2ee_fingerprint_hex (record->identity);
  g_autofree char *kid = short_kid (record->identity);

  return g_strdup_printf (_("Your device key for %s (%s): device %s, fingerprint %s"),
                          record->name, record->protocol, kid, fp);
}

static void
append_devices (GString *out, E2eeAccountRecord *record, E2eeBuddyRecord *br)
{
  for (guint i = 0; i < br->devices->len; i++)
    {
      E2eeDeviceRecord *dev = g_ptr_array_index (br->devices, i);
      g_autofree char *fp = e2ee_fingerprint_hex (dev->key);
      g_autofree char *kid = short_kid (dev->key);

      g_string_append_printf (out, _("  device %s: %s\n    fingerprint %s\n"),
                              kid, trust_label (dev->trust), fp);
      if (record->identity != NULL)
        {
          g_autofree char *sn = e2ee_safety_number (record->identity, dev->key);

          g_string_append_printf (out, _("    safety number %s\n"), sn);
        }
    }
}

char *
e2ee_ui_describe_buddy (E2eeAccountRecord *record, const char *buddy)
{
  E2eeBuddyRecord *br = e2ee_account_lookup_buddy (record, buddy);
  E2eeContext *ctx = e2ee_plugin_context ();
  GString *out = g_string_new (NULL);
  g_autofree char *own = e2ee_ui_describe_own (record);

  g_string_append_printf (out, _("Encryption with %s: policy %s (global: %s)\n"),
                          buddy,
                          policy_label (br != NULL ? br->policy : E2EE_POLICY_DEFAULT),
                          policy_label (ctx != NULL
                                        ? e2ee_context_get_default_policy (ctx)
                                        : E2EE_POLICY_OPPORTUNISTIC));
  if (br == NULL || br->devices->len == 0)
    g_string_append_printf (out, _("No key known for %s: messages go unencrypted "
                                   "unless encryption is required.\n"), buddy);
  else
    {
      if (br->key_changed)
        g_string_append (out, _("KEY CHANGED: sending is blocked until you accept "
                                "the new key (/e2ee trust).\n"));
      append_devices (out, record, br);
    }
  g_string_append (out, own);
  return g_string_free (out, FALSE);
}

char *
e2ee_ui_describe_keyring (E2eeContext *ctx)
{
  GPtrArray *accounts = e2ee_keyring_get_accounts (e2ee_context_get_keyring (ctx));
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < accounts->len; i++)
    {
      E2eeAccountRecord *record = g_ptr_array_index (accounts, i);
      g_autofree char *own = e2ee_ui_describe_own (record);
      GHashTableIter iter;
      gpointer key, value;

      g_string_append_printf (out, "%s\n", own);
      g_hash_table_iter_init (&iter, record->buddies);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          E2eeBuddyRecord *br = value;

          g_string_append_printf (out, _(" %s (policy %s)%s\n"), br->name,
                                  policy_label (br->policy),
                                  br->key_changed ? _(": KEY CHANGED") : "");
          append_devices (out, record, br);
        }
      g_string_append_c (out, '\n');
    }
  if (accounts->len == 0)
    g_string_append (out, _("No keys yet: they are created when an account signs on.\n"));
  g_string_append (out, _("In a conversation, /e2ee trust, /e2ee verify and /e2ee reset "
                          "change a buddy's keys; /e2ee help lists everything."));
  return g_string_free (out, FALSE);
}

static void
show_text (const char *title, const char *primary, const char *text)
{
  g_autofree char *escaped = g_markup_escape_text (text, -1);
  g_autofree char *html = purple_strdup_withhtml (escaped);

  purple_notify_formatted (e2ee_plugin_get (), title, primary, NULL, html, NULL, NULL);
}

void
e2ee_ui_action_fingerprints (PurplePluginAction *action)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  GString *out;
  GList *l;

  if (ctx == NULL)
    {
      purple_notify_error (e2ee_plugin_get (), _("purple-e2ee"),
                           _("Encryption is inactive."), e2ee_plugin_inactive_reason ());
      return;
    }
  out = g_string_new (NULL);
  for (l = purple_accounts_get_all_active (); l != NULL; l = g_list_delete_link (l, l))
    {
      E2eeAccountRecord *record = e2ee_plugin_account (l->data);
      g_autofree char *own = record != NULL ? e2ee_ui_describe_own (record) : NULL;

      if (own != NULL)
        g_string_append_printf (out, "%s\n", own);
    }
  if (out->len == 0)
    g_string_append (out, _("No enabled accounts."));
  show_text (_("purple-e2ee"), _("Your fingerprints"), out->str);
  g_string_free (out, TRUE);
}

void
e2ee_ui_action_known_keys (PurplePluginAction *action)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  g_autofree char *text = NULL;

  if (ctx == NULL)
    {
      purple_notify_error (e2ee_plugin_get (), _("purple-e2ee"),
                           _("Encryption is inactive."), e2ee_plugin_inactive_reason ());
      return;
    }
  text = e2ee_ui_describe_keyring (ctx);
  show_text (_("purple-e2ee"), _("Known keys"), text);
}
