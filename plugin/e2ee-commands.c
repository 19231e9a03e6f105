/* purple-e2ee — the /e2ee command, the same in every libpurple UI.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-plugin.h"
#include "e2ee-fingerprint.h"

static PurpleCmdId e2ee_cmd;

typedef struct {
  PurpleConversation *conv;
  PurpleAccount *account;
  E2eeContext *ctx;
  E2eeAccountRecord *record;
  char *buddy;
  const char *who;          /* the conversation's name, to send offers to */
} CmdTarget;

static void
say (CmdTarget *t, const char *text)
{
  e2ee_ui_system (t->conv, text);
}

static void
cmd_help (CmdTarget *t, const char *arg)
{
  say (t, _("/e2ee status: encryption state and keys of this buddy\n"
            "/e2ee on: encrypt when a key is known (default)\n"
            "/e2ee require: never send to this buddy unencrypted\n"
            "/e2ee off: do not encrypt for this buddy\n"
            "/e2ee fingerprint: your fingerprint and the buddy's\n"
            "/e2ee verify: show safety numbers to compare; /e2ee verify DEVICE "
            "(or all) marks a device verified once they match\n"
            "/e2ee trust [DEVICE]: accept a new device, a changed key or a "
            "rejected device\n"
            "/e2ee reject DEVICE: refuse a device: it gets nothing and nothing it "
            "sends is shown\n"
            "/e2ee own: your account's other devices; /e2ee own accept DEVICE or "
            "/e2ee own reject DEVICE decides on one\n"
            "/e2ee reset: stop trusting this buddy's keys and ask for them again; "
            "their next key needs /e2ee trust DEVICE\n"
            "/e2ee help: this text"));
}

static void
cmd_status (CmdTarget *t, const char *arg)
{
  g_autofree char *text = e2ee_ui_describe_buddy (t->record, t->buddy);

  say (t, text);
}

static void
set_policy (CmdTarget *t, E2eePolicy policy, const char *done)
{
  if (!e2ee_context_set_policy (t->ctx, t->record, t->buddy, policy))
    {
      say (t, _("The policy could not be changed."));
      return;
    }
  say (t, done);
  /* A new round of offers where keys travel in-band (an earlier offer may
   * have been lost). */
  if (policy != E2EE_POLICY_OFF && !e2ee_messages_buddy_has_key (t->record, t->buddy))
    e2ee_inband_send_offer (t->account, t->who, e2ee_publish_uses_inband (t->account));
}

static void
cmd_on (CmdTarget *t, const char *arg)
{
  set_policy (t, E2EE_POLICY_OPPORTUNISTIC,
              _("Messages to this buddy are encrypted whenever their key is known."));
}

static void
cmd_off (CmdTarget *t, const char *arg)
{
  set_policy (t, E2EE_POLICY_OFF,
              _("Encryption is OFF for this buddy: your messages are sent unencrypted."));
}

static void
cmd_require (CmdTarget *t, const char *arg)
{
  set_policy (t, E2EE_POLICY_REQUIRED,
              _("Encryption is REQUIRED for this buddy: nothing is sent unencrypted."));
}

static void
cmd_fingerprint (CmdTarget *t, const char *arg)
{
  E2eeBuddyRecord *br = e2ee_account_lookup_buddy (t->record, t->buddy);
  g_autofree char *own = e2ee_ui_describe_own (t->record);
  GString *out = g_string_new (own);

  if (br == NULL || br->devices->len == 0)
    g_string_append_printf (out, _("\nNo key known for %s."), t->buddy);
  for (guint i = 0; br != NULL && i < br->devices->len; i++)
    {
      E2eeDeviceRecord *dev = g_ptr_array_index (br->devices, i);
      g_autofree char *fp = e2ee_fingerprint_hex (dev->key);

      g_string_append_printf (out, _("\n%s device %.8s: %s"), t->buddy,
                              e2ee_key_get_kid (dev->key), fp);
    }
  say (t, out->str);
  g_string_free (out, TRUE);
}

static gboolean
set_trust (CmdTarget *t, const char *kid, E2eeTrust trust)
{
  g_autoptr (GError) error = NULL;

  if (!e2ee_context_set_trust (t->ctx, t->record, t->buddy, kid, trust, &error))
    {
      g_autofree char *text = g_strdup_printf (_("No change: %s"), error->message);

      say (t, text);
      return FALSE;
    }
  return TRUE;
}

static void
cmd_verify (CmdTarget *t, const char *arg)
{
  E2eeBuddyRecord *br = e2ee_account_lookup_buddy (t->record, t->buddy);
  GString *out;

  if (br == NULL || br->devices->len == 0)
    {
      say (t, _("No key is known for this buddy yet, so there is nothing to verify."));
      return;
    }
  if (arg != NULL && g_ascii_strcasecmp (arg, "all") == 0)
    {
      g_autoptr (GError) error = NULL;
      guint n = 0;

      /* Only devices trusted on first use: never a new, changed or
       * rejected one the user has not looked at. */
      if (!e2ee_context_verify_all (t->ctx, t->record, t->buddy, &n, &error))
        say (t, _("No device of this buddy is trusted on first use, so nothing was "
                  "marked: a new or changed device is verified by name "
                  "(/e2ee verify DEVICE)."));
      else
        {
          g_autofree char *text =
            g_strdup_printf (_("Marked %u device(s) trusted on first use as verified; "
                               "devices awaiting your decision were left alone."), n);

          say (t, text);
          e2ee_report_release (t->account, t->buddy);
        }
      return;
    }
  if (arg != NULL && *arg != '\0')
    {
      /* One device per decision: a prefix that several devices share
       * (one of them perhaps injected) is refused by the core. */
      if (set_trust (t, arg, E2EE_TRUST_VERIFIED))
        {
          say (t, _("Marked as verified."));
          e2ee_report_release (t->account, t->buddy);
        }
      return;
    }

  out = g_string_new (_("Compare each safety number IN FULL (all 60 digits, not only "
                        "the first groups) with your buddy over a channel you trust "
                        "(in person, by phone): every device has its own.  If one "
                        "matches, run /e2ee verify DEVICE; /e2ee verify all marks only "
                        "the devices trusted on first use."));
  for (guint i = 0; i < br->devices->len; i++)
    {
      E2eeDeviceRecord *dev = g_ptr_array_index (br->devices, i);
      g_autofree char *sn = e2ee_safety_number (t->record->identity, dev->key);

      g_string_append_printf (out, _("\ndevice %.8s: %s"), e2ee_key_get_kid (dev->key), sn);
    }
  say (t, out->str);
  g_string_free (out, TRUE);
}

/* The kids of @buddy's devices in @trust, as a list for a message. */
static char *
devices_in (E2eeAccountRecord *record, const char *buddy, E2eeTrust trust)
{
  E2eeBuddyRecord *br = e2ee_account_lookup_buddy (record, buddy);
  GString *out = g_string_new (NULL);

  for (guint i = 0; br != NULL && i < br->devices->len; i++)
    {
      E2eeDeviceRecord *dev = g_ptr_array_index (br->devices, i);

      if (dev->trust == trust)
        g_string_append_printf (out, "%s%.8s", out->len > 0 ? ", " : "",
                                e2ee_key_get_kid (dev->key));
    }
  return g_string_free (out, out->len == 0);
}

static void
cmd_trust (CmdTarget *t, const char *arg)
{
  if (arg == NULL || *arg == '\0')
    {
      g_autofree char *undecided = devices_in (t->record, t->buddy, E2EE_TRUST_UNDECIDED);
      g_autofree char *rejected = devices_in (t->record, t->buddy, E2EE_TRUST_REJECTED);

      if (undecided == NULL && rejected != NULL)
        {
          g_autofree char *text =
            g_strdup_printf (_("No device of %s awaits your decision.  Rejected: %s.  "
                               "To accept one again after comparing its safety number "
                               "(/e2ee verify): /e2ee trust DEVICE."),
                             t->buddy, rejected);

          say (t, text);
          return;
        }
      if (undecided != NULL && strchr (undecided, ',') != NULL)
        {
          /* Never several at once: one of them may have been slipped in
           * by the server beside the device the user knows. */
          g_autofree char *text =
            g_strdup_printf (_("Nothing accepted: several devices of %s await your "
                               "decision (%s).  Compare each one's safety number "
                               "(/e2ee verify) and accept one with /e2ee trust "
                               "DEVICE."), t->buddy, undecided);

          say (t, text);
          return;
        }
      arg = NULL;
    }
  if (set_trust (t, arg, E2EE_TRUST_TOFU))
    {
      say (t, _("Accepted.  Your messages are encrypted to the accepted device(s); "
                "/e2ee verify compares safety numbers."));
      e2ee_report_release (t->account, t->buddy);
    }
}

static void
cmd_reject (CmdTarget *t, const char *arg)
{
  if (arg == NULL || *arg == '\0')
    {
      say (t, _("Which device?  /e2ee status lists them."));
      return;
    }
  if (set_trust (t, arg, E2EE_TRUST_REJECTED))
    say (t, _("Rejected: that device gets none of your messages and nothing it sends "
              "is shown.  If no other device of this buddy is accepted, nothing is "
              "sent to them until you accept one (/e2ee trust DEVICE) or turn "
              "encryption off (/e2ee off)."));
}

/* /e2ee own [accept|reject DEVICE]: the account's other devices. */
static void
cmd_own (CmdTarget *t, const char *arg)
{
  g_auto (GStrv) words = NULL;
  g_autoptr (GError) error = NULL;
  E2eeTrust trust;

  if (arg == NULL || *arg == '\0')
    {
      g_autofree char *text = e2ee_ui_describe_own_devices (t->record);

      say (t, text);
      return;
    }
  words = g_strsplit_set (arg, " \t", 2);
  if (words[1] == NULL || *g_strstrip (words[1]) == '\0')
    {
      say (t, _("Which device?  /e2ee own lists them."));
      return;
    }
  if (g_ascii_strcasecmp (words[0], "accept") == 0)
    trust = E2EE_TRUST_VERIFIED;
  else if (g_ascii_strcasecmp (words[0], "reject") == 0)
    trust = E2EE_TRUST_REJECTED;
  else
    {
      say (t, _("/e2ee own accept DEVICE or /e2ee own reject DEVICE."));
      return;
    }
  if (!e2ee_context_set_own_trust (t->ctx, t->record, words[1], trust, &error))
    {
      g_autofree char *text = g_strdup_printf (_("No change: %s"), error->message);

      say (t, text);
      return;
    }
  say (t, trust == E2EE_TRUST_VERIFIED
          ? _("Accepted as one of your own devices: it receives a copy of everything "
              "you send from here.")
          : _("Rejected: that device claims to be yours but gets none of your messages."));
  e2ee_publish_account (t->account);
  if (trust != E2EE_TRUST_REJECTED)
    e2ee_report_release (t->account, t->record->name);
}

static void
cmd_reset (CmdTarget *t, const char *arg)
{
  g_autoptr (GError) error = NULL;

  if (!e2ee_context_reset (t->ctx, t->record, t->buddy, &error))
    {
      g_autofree char *text = g_strdup_printf (_("No change: %s"), error->message);

      say (t, text);
      return;
    }
  say (t, _("Stopped trusting every key of this buddy (the policy stays).  Their next "
            "key, even the same one, is NOT trusted on first use: compare its safety "
            "number (/e2ee verify), then accept it with /e2ee trust DEVICE.  Until "
            "then nothing is sent to them, unless you turn encryption off (/e2ee off)."));
  if (e2ee_publish_uses_inband (t->account))
    e2ee_inband_send_offer (t->account, t->who, TRUE);
}

static const struct {
  const char *name;
  void (*func) (CmdTarget *t, const char *arg);
} subcommands[] = {
  { "help", cmd_help },
  { "status", cmd_status },
  { "on", cmd_on },
  { "off", cmd_off },
  { "require", cmd_require },
  { "fingerprint", cmd_fingerprint },
  { "verify", cmd_verify },
  { "trust", cmd_trust },
  { "reject", cmd_reject },
  { "reset", cmd_reset },
  { "own", cmd_own },
};

static PurpleCmdRet
e2ee_cmd_cb (PurpleConversation *conv, const gchar *cmd, gchar **args,
             gchar **error, void *data)
{
  g_auto (GStrv) words = NULL;
  const char *name = "status";
  const char *arg = NULL;
  CmdTarget t = { 0 };

  t.conv = conv;
  t.account = purple_conversation_get_account (conv);
  t.ctx = e2ee_plugin_context ();
  t.who = purple_conversation_get_name (conv);
  if (t.ctx == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("End-to-end encryption is inactive: %s"),
                                               e2ee_plugin_inactive_reason ());
      say (&t, text);
      return PURPLE_CMD_RET_OK;
    }
  t.record = e2ee_plugin_account (t.account);
  if (t.record == NULL)
    {
      say (&t, _("This account has no encryption key."));
      return PURPLE_CMD_RET_OK;
    }

  if (args != NULL && args[0] != NULL)
    {
      words = g_strsplit_set (g_strstrip (args[0]), " \t", 2);
      if (words[0] != NULL && *words[0] != '\0')
        name = words[0];
      if (words[0] != NULL && words[1] != NULL)
        arg = g_strstrip (words[1]);
    }

  t.buddy = e2ee_plugin_normalize (t.account, t.who);
  if (!e2ee_plugin_is_contact (t.account, t.buddy))
    e2ee_plugin_add_contact (t.account, t.buddy);
  for (gsize i = 0; i < G_N_ELEMENTS (subcommands); i++)
    if (g_ascii_strcasecmp (name, subcommands[i].name) == 0)
      {
        subcommands[i].func (&t, arg);
        g_free (t.buddy);
        return PURPLE_CMD_RET_OK;
      }
  g_free (t.buddy);
  *error = g_strdup_printf (_("Unknown /e2ee command \"%s\"; try /e2ee help."), name);
  return PURPLE_CMD_RET_FAILED;
}

void
e2ee_commands_register (PurplePlugin *plugin)
{
  e2ee_cmd = purple_cmd_register ("e2ee", "s", PURPLE_CMD_P_PLUGIN,
                                  PURPLE_CMD_FLAG_IM | PURPLE_CMD_FLAG_ALLOW_WRONG_ARGS,
                                  NULL, PURPLE_CMD_FUNC (e2ee_cmd_cb),
                                  _("e2ee &lt;status|on|off|require|fingerprint|verify|"
                                    "trust|reject|own|reset|help&gt;: end-to-end "
                                    "encryption for this conversation."),
                                  NULL);
}

void
e2ee_commands_unregister (void)
{
  if (e2ee_cmd != 0)
    purple_cmd_unregister (e2ee_cmd);
  e2ee_cmd = 0;
}
