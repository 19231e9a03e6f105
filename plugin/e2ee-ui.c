/* purple-e2ee — what the user sees: system lines, markers, reports.  Only
 * libpurple's conversation, notify and request APIs, so every UI shows it.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <time.h>

#include "e2ee-plugin.h"
#include "e2ee-error.h"
#include "e2ee-fingerprint.h"
#include "e2ee-wipe.h"

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

/* Lock signs U+1F50F..U+1F513 and the configured marker: never shown on
 * text that was not authenticated. */
static char *
without_lock_signs (const char *line)
{
  static const char *const locks[] = {
    "\xF0\x9F\x94\x8F", "\xF0\x9F\x94\x90", "\xF0\x9F\x94\x91",
    "\xF0\x9F\x94\x92", "\xF0\x9F\x94\x93",
  };
  GString *out = g_string_new (line);
  const char *marker = e2ee_prefs_get_marker ();

  for (gsize i = 0; i <= G_N_ELEMENTS (locks); i++)
    {
      const char *sign = i < G_N_ELEMENTS (locks) ? locks[i] : marker;

      g_string_replace (out, sign, _("(lock sign)"), 0);
    }
  return g_string_free (out, FALSE);
}

/* Unencrypted text as the user sees it: no markup at all (so neither a
 * line break nor colours can fake another line) and every line flagged. */
void
e2ee_ui_flag_plaintext (char **message, const char *stripped)
{
  g_auto (GStrv) lines = g_strsplit_set (stripped, "\r\n", -1);
  g_autofree char *prefix = e2ee_ui_mark_prefix (E2EE_MARK_PLAINTEXT);
  GString *out = g_string_new (NULL);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autofree char *clean = without_lock_signs (lines[i]);
      g_autofree char *escaped = g_markup_escape_text (clean, -1);

      if (*lines[i] == '\0' && lines[i + 1] == NULL && i > 0)
        break;
      g_string_append_printf (out, "%s%s%s", i > 0 ? "<br>" : "", prefix, escaped);
    }
  e2ee_string_free (*message);
  *message = g_string_free (out, FALSE);
}

E2eeMark
e2ee_ui_mark_for_trust (E2eeTrust trust)
{
  return trust == E2EE_TRUST_VERIFIED ? E2EE_MARK_VERIFIED : E2EE_MARK_UNVERIFIED;
}

static void
count_devices (E2eeBuddyRecord *br, guint *used, guint *verified)
{
  for (guint i = 0; br != NULL && i < br->devices->len; i++)
    {
      E2eeDeviceRecord *dev = g_ptr_array_index (br->devices, i);

      if (dev->trust == E2EE_TRUST_TOFU || dev->trust == E2EE_TRUST_VERIFIED)
        (*used)++;
      if (dev->trust == E2EE_TRUST_VERIFIED)
        (*verified)++;
    }
}

E2eeMark
e2ee_ui_mark_for_buddy (E2eeAccountRecord *record, const char *buddy)
{
  E2eeBuddyRecord *br = record != NULL ? e2ee_account_lookup_buddy (record, buddy) : NULL;
  guint verified = 0, used = 0, own_used = 0, own_verified = 0;

  if (br == NULL)
    return E2EE_MARK_UNVERIFIED;
  count_devices (br, &used, &verified);
  /* Our own other devices get a copy of everything: "verified" only if
   * each of them was accepted explicitly too. */
  if (g_strcmp0 (buddy, record->name) != 0)
    count_devices (e2ee_account_lookup_buddy (record, record->name), &own_used,
                   &own_verified);
  return (used > 0 && verified == used && own_verified == own_used)
         ? E2EE_MARK_VERIFIED : E2EE_MARK_UNVERIFIED;
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
  E2eeAccountRecord *record;

  if (result == E2EE_LEARN_NOTHING_NEW)
    return;
  purple_debug_info (E2EE_DEBUG_CAT, "keys of %s: result %d, %u new device(s)\n",
                     who, (int) result, new_devices != NULL ? new_devices->len : 0);
  e2ee_dialogs_report_learned (account, who, result, new_devices);
  record = e2ee_plugin_account (account);
  if (record != NULL && g_strcmp0 (record->name, who) == 0)
    {
      /* Our own account: never announced as a buddy's device. */
      for (guint i = 0; new_devices != NULL && i < new_devices->len; i++)
        e2ee_ui_report_own_device (account, g_ptr_array_index (new_devices, i));
      return;
    }
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
                 _("Message NOT sent: none of %s's devices may receive it (their key "
                   "changed, a device awaits your decision, or you rejected it).  "
                   "/e2ee status lists the devices; compare safety numbers with "
                   "/e2ee verify, then accept one with /e2ee trust DEVICE, or send "
                   "unencrypted with /e2ee off."), who);
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
e2ee_ui_report_no_usable_device (PurpleAccount *account, const char *who)
{
  e2ee_ui_say (account, who, TRUE,
               _("Message NOT sent: %s has had an encryption key, but none of their "
                 "devices may receive your messages now (rejected, or awaiting your "
                 "decision).  /e2ee status lists them; /e2ee trust DEVICE accepts one "
                 "again; /e2ee off sends unencrypted."), who);
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
    case E2EE_ERROR_V2_ENVELOPE:
    case E2EE_ERROR_V2_FORMAT:
    case E2EE_ERROR_V2_SKIP_LIMIT:
    case E2EE_ERROR_V2_DEVICE:
      e2ee_ui_say (account, who, TRUE,
                   _("An encrypted message from %s could not be decrypted: it was "
                     "altered in transit or damaged.  It is not shown."), who);
      break;
    case E2EE_ERROR_V2_NO_SESSION:
    case E2EE_ERROR_V2_START:
      e2ee_ui_say (account, who, TRUE,
                   _("An encrypted message from %s could not be read here: it belongs "
                     "to a session this device no longer has (restored from a backup, "
                     "or its first message came after three weeks).  It is not shown; "
                     "a new session was offered to %s."), who, who);
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
                   _("An encrypted message that came as from %s is not for this "
                     "device, so it is not shown.  It may have been meant for someone "
                     "else and delivered here by mistake or on purpose, or %s has "
                     "not accepted this device yet (your key was offered to them)."),
                   who, who);
      break;
    case E2EE_ERROR_ENVELOPE_VERSION:
    case E2EE_ERROR_V1_RETIRED:
    case E2EE_ERROR_DOWNGRADE:
      e2ee_ui_say (account, who, TRUE,
                   _("An encrypted message from %s was rejected: its protocol "
                     "version is not acceptable (%s).  It is not shown."), who, detail);
      break;
    case E2EE_ERROR_KEY_ELSEWHERE:
      e2ee_ui_say (account, who, TRUE,
                   _("WARNING: %s offered a key that is already pinned here under "
                     "another name, or is your own (%s).  It was refused: someone "
                     "may be passing another person's messages off as %s's."),
                   who, detail, who);
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

static const char *
own_trust_label (E2eeTrust trust)
{
  switch (trust)
    {
    case E2EE_TRUST_UNDECIDED:
      return _("PENDING: claims to be your account, gets nothing "
               "(/e2ee own accept or /e2ee own reject)");
    case E2EE_TRUST_TOFU:
      return _("receives your messages, not accepted explicitly");
    case E2EE_TRUST_VERIFIED:
      return _("accepted as yours: receives your messages");
    case E2EE_TRUST_REJECTED:
      return _("rejected");
    default:
      return "?";
    }
}

char *
e2ee_ui_describe_own_devices (E2eeAccountRecord *record)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  g_autoptr (GPtrArray) devices = ctx != NULL ? e2ee_context_own_devices (ctx, record)
                                              : NULL;
  g_autofree char *own = e2ee_ui_describe_own (record);
  GString *out = g_string_new (own);

  if (devices == NULL || devices->len == 0)
    g_string_append (out, _("\nNo other device of your account is known."));
  for (guint i = 0; devices != NULL && i < devices->len; i++)
    {
      E2eeDeviceRecord *dev = g_ptr_array_index (devices, i);
      g_autofree char *fp = e2ee_fingerprint_hex (dev->key);
      g_autofree char *kid = short_kid (dev->key);

      g_string_append_printf (out, _("\nYour other device %s: %s\n    fingerprint %s"),
                              kid, own_trust_label (dev->trust), fp);
    }
  return g_string_free (out, FALSE);
}

void
e2ee_ui_report_own_device (PurpleAccount *account, E2eeKey *key)
{
  g_autofree char *fp = e2ee_fingerprint_hex (key);
  g_autofree char *kid = short_kid (key);
  g_autofree char *text = NULL;

  text = g_strdup_printf (_("A NEW DEVICE claims to be YOUR account %s (device %s, "
                            "fingerprint %s).  It gets none of your messages and is "
                            "not published as yours unless you accept it: if you "
                            "added this device yourself, compare its fingerprint and "
                            "run /e2ee own accept %s in any conversation of this "
                            "account.  If you did not, someone (possibly the server) "
                            "is trying to read your messages: /e2ee own reject %s."),
                          purple_account_get_username (account), kid, fp, kid, kid);
  purple_debug_warning (E2EE_DEBUG_CAT, "new own device %s\n", kid);
  purple_notify_warning (e2ee_plugin_get (), _("purple-e2ee"),
                         _("A new device claims to be your account"), text);
  for (GList *l = purple_get_ims (); l != NULL; l = l->next)
    if (purple_conversation_get_account (l->data) == account)
      e2ee_ui_system (l->data, text);
}

char *
e2ee_ui_describe_buddy (E2eeAccountRecord *record, const char *buddy)
{
  E2eeBuddyRecord *br = e2ee_account_lookup_buddy (record, buddy);
  E2eeContext *ctx = e2ee_plugin_context ();
  GString *out = g_string_new (NULL);
  g_autofree char *own_devices = e2ee_ui_describe_own_devices (record);

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
  g_string_append (out, own_devices);
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
