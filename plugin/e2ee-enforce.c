/* purple-e2ee — the last step: every outgoing IRC line and XMPP stanza is
 * checked just before it reaches the socket, so a /msg or /query command,
 * an automatic reply or another plugin cannot send plaintext to a buddy
 * whose messages must be encrypted.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include <xmlnode.h>

#include "e2ee-plugin.h"
#include "e2ee-envelope.h"
#include "e2ee-wipe.h"

gboolean
e2ee_enforce_armor_only (PurpleAccount *account, const char *who)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record;
  E2eeBuddyRecord *br;
  g_autofree char *buddy = NULL;
  E2eePolicy policy;

  /* Without the keyring nobody's state is known: nothing leaves in
   * plaintext (the typed path refuses it too). */
  if (ctx == NULL)
    return TRUE;
  record = e2ee_plugin_account (account);
  if (record == NULL)
    return TRUE;
  buddy = e2ee_plugin_normalize (account, who);
  br = e2ee_account_lookup_buddy (record, buddy);
  policy = br != NULL ? br->policy : E2EE_POLICY_DEFAULT;
  if (policy == E2EE_POLICY_DEFAULT)
    policy = e2ee_context_get_default_policy (ctx);
  if (policy == E2EE_POLICY_OFF)
    return FALSE;
  if (policy == E2EE_POLICY_REQUIRED)
    return TRUE;
  /* A buddy who has had a key (rejected devices and a changed key count)
   * never gets plaintext without an explicit /e2ee off. */
  return br != NULL && (br->devices->len > 0 || br->key_changed);
}

/* Our own wire formats, and another encryption plugin's (pidgin-otr). */
static gboolean
is_armor (const char *text)
{
  while (g_ascii_isspace (*text))
    text++;
  return e2ee_armor_detect (text) || e2ee_fragment_detect (text)
         || e2ee_offer_inband_detect (text) || g_str_has_prefix (text, "?OTR");
}

static void
tell_dropped (PurpleAccount *account, const char *who)
{
  g_autofree char *buddy = e2ee_plugin_normalize (account, who);

  purple_debug_warning (E2EE_DEBUG_CAT, "dropped an unencrypted message to %s "
                        "at the last step\n", buddy);
  e2ee_ui_say (account, buddy, TRUE,
               _("Message NOT sent: it was about to leave unencrypted outside this "
                 "window (a /msg or /query command, an automatic reply or another "
                 "plugin), but %s has an encryption key or requires encryption.  "
                 "Type it in this window to send it encrypted, or use /e2ee off to "
                 "allow plaintext."), buddy);
}

/* ---- IRC: the raw line ---- */

static gboolean
is_channel (const char *target)
{
  return *target == '#' || *target == '&' || *target == '+' || *target == '!';
}

/* A CTCP request or reply other than ACTION carries no typed words. */
static gboolean
is_ctcp_control (const char *text)
{
  return text[0] == '\001' && g_ascii_strncasecmp (text + 1, "ACTION", 6) != 0;
}

/* Returns TRUE when @line must not be sent. */
static gboolean
irc_line_forbidden (PurpleAccount *account, const char *line, char **blocked_target)
{
  g_auto (GStrv) words = NULL;
  g_auto (GStrv) targets = NULL;
  const char *rest, *text;
  char *end;
  g_autofree char *copy = g_strdup (line);

  end = copy + strcspn (copy, "\r\n");
  *end = '\0';
  rest = copy;
  if (*rest == ':')               /* a prefix: skip it */
    {
      rest = strchr (rest, ' ');
      if (rest == NULL)
        return FALSE;
      while (*rest == ' ')
        rest++;
    }
  words = g_strsplit (rest, " ", 3);
  if (words[0] == NULL || words[1] == NULL
      || (g_ascii_strcasecmp (words[0], "PRIVMSG") != 0
          && g_ascii_strcasecmp (words[0], "NOTICE") != 0))
    return FALSE;
  text = words[2] != NULL ? words[2] : "";
  if (*text == ':')
    text++;
  if (*text == '\0' || is_armor (text) || is_ctcp_control (text))
    return FALSE;

  targets = g_strsplit (words[1], ",", -1);
  for (guint i = 0; targets[i] != NULL; i++)
    {
      if (*targets[i] == '\0' || is_channel (targets[i]))
        continue;
      if (e2ee_enforce_armor_only (account, targets[i]))
        {
          *blocked_target = g_strdup (targets[i]);
          return TRUE;
        }
    }
  return FALSE;
}

static void
irc_sending_text_cb (PurpleConnection *gc, char **text, gpointer data)
{
  g_autofree char *target = NULL;
  PurpleAccount *account;

  if (gc == NULL || text == NULL || *text == NULL)
    return;
  account = purple_connection_get_account (gc);
  if (!irc_line_forbidden (account, *text, &target))
    return;
  /* libpurple's IRC sender retries a line it was told is not sent (NULL)
   * and, in some versions, writes the original length: put a harmless PING
   * of exactly that length in its place (its PONG is ignored as it holds
   * no space). */
  {
    gsize len = strlen (*text);
    char *ping = g_malloc (len + 1);

    memset (ping, 'x', len);
    ping[len] = '\0';
    if (len >= 8)
      {
        memcpy (ping, "PING :", 6);
        memcpy (ping + len - 2, "\r\n", 2);
      }
    e2ee_string_free (*text);
    *text = ping;
  }
  tell_dropped (account, target);
}

/* ---- XMPP: the stanza ---- */

static void
remove_children (xmlnode *node, const char *name)
{
  xmlnode *child;

  while ((child = xmlnode_get_child (node, name)) != NULL)
    xmlnode_free (child);
}

static void
jabber_sending_cb (PurpleConnection *gc, xmlnode **packet, gpointer data)
{
  xmlnode *msg, *body;
  const char *to, *type;
  g_autofree char *text = NULL;
  g_autofree char *bare = NULL;
  PurpleAccount *account;

  if (gc == NULL || packet == NULL || *packet == NULL)
    return;
  msg = *packet;
  if (g_strcmp0 (msg->name, "message") != 0)
    return;
  type = xmlnode_get_attrib (msg, "type");
  to = xmlnode_get_attrib (msg, "to");
  if (to == NULL || g_strcmp0 (type, "groupchat") == 0 || g_strcmp0 (type, "error") == 0)
    return;
  /* Our envelope in its own element beside the readable sentence. */
  if (e2ee_xmpp_is_wrapped (msg))
    return;
  body = xmlnode_get_child (msg, "body");
  if (body == NULL)
    return;
  text = xmlnode_get_data (body);
  if (text != NULL && is_armor (text) && xmlnode_get_child (msg, "html") == NULL)
    return;
  account = purple_connection_get_account (gc);
  bare = e2ee_plugin_normalize (account, to);
  if ((text == NULL || *text == '\0') && xmlnode_get_child (msg, "html") == NULL)
    return;
  if (!e2ee_enforce_armor_only (account, bare))
    return;

  /* libpurple's own send callback cannot take a NULL stanza: leave the
   * message without anything readable instead. */
  remove_children (msg, "body");
  remove_children (msg, "html");
  remove_children (msg, "subject");
  if (text != NULL)
    e2ee_wipe (text, strlen (text));
  tell_dropped (account, bare);
}

void
e2ee_enforce_connect (PurplePlugin *plugin)
{
  PurplePlugin *irc = purple_find_prpl ("prpl-irc");
  PurplePlugin *jabber = purple_find_prpl ("prpl-jabber");

  /* Last among the handlers that may rewrite the text, so we see what
   * would really be sent; libpurple's XMPP sender is at the highest
   * priority and runs after us. */
  if (irc != NULL)
    purple_signal_connect_priority (irc, "irc-sending-text", plugin,
                                    PURPLE_CALLBACK (irc_sending_text_cb), NULL,
                                    PURPLE_SIGNAL_PRIORITY_HIGHEST - 1);
  if (jabber != NULL)
    purple_signal_connect_priority (jabber, "jabber-sending-xmlnode", plugin,
                                    PURPLE_CALLBACK (jabber_sending_cb), NULL,
                                    PURPLE_SIGNAL_PRIORITY_HIGHEST - 1);
}
