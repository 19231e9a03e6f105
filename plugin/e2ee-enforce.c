/* purple-e2ee — the last step: every outgoing IRC line and XMPP stanza is
 * checked just before it reaches the socket, so a /msg, /query, /notice or
 * /quote command, an automatic reply or another plugin cannot send
 * plaintext (or a file) to a buddy whose messages must be encrypted.
 * Only text that decodes as our own wire format (or pidgin-otr's, when that
 * plugin is loaded) passes; a prefix alone is not enough.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include <xmlnode.h>

#include "e2ee-plugin.h"
#include "e2ee-enforce-armor.h"
#include "e2ee-envelope.h"
#include "e2ee-wipe.h"

#define NS_SI "http://jabber.org/protocol/si"
#define NS_JINGLE "urn:xmpp:jingle:1"
#define NS_IBB "http://jabber.org/protocol/ibb"
#define NS_IQ_OOB "jabber:iq:oob"

static E2eePolicy
buddy_policy (E2eeContext *ctx, E2eeBuddyRecord *br)
{
  E2eePolicy policy = br != NULL ? br->policy : E2EE_POLICY_DEFAULT;

  if (policy == E2EE_POLICY_DEFAULT)
    policy = e2ee_context_get_default_policy (ctx);
  return policy;
}

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
  policy = buddy_policy (ctx, br);
  if (policy == E2EE_POLICY_OFF)
    return FALSE;
  if (policy == E2EE_POLICY_REQUIRED)
    return TRUE;
  /* A buddy who has had a key (rejected devices and a changed key count)
   * never gets plaintext without an explicit /e2ee off. */
  return br != NULL && (br->devices->len > 0 || br->key_changed);
}

/* A groupchat message to a room is no buddy's: only a JID that is itself a
 * buddy with a key or an explicit "require" is held to the rule (a
 * groupchat-typed message addressed to such a buddy is still refused). */
static gboolean
groupchat_armor_only (PurpleAccount *account, const char *who)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record;
  E2eeBuddyRecord *br;
  g_autofree char *buddy = NULL;

  if (ctx == NULL || (record = e2ee_plugin_account (account)) == NULL)
    return FALSE;
  buddy = e2ee_plugin_normalize (account, who);
  br = e2ee_account_lookup_buddy (record, buddy);
  if (br == NULL || br->policy == E2EE_POLICY_OFF)
    return FALSE;
  return br->policy == E2EE_POLICY_REQUIRED || br->devices->len > 0 || br->key_changed;
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

static void
tell_file_refused (PurpleAccount *account, const char *who)
{
  g_autofree char *buddy = e2ee_plugin_normalize (account, who);

  purple_debug_warning (E2EE_DEBUG_CAT, "refused a file transfer to %s "
                        "at the last step\n", buddy);
  e2ee_ui_say (account, buddy, TRUE,
               _("File transfer NOT started: file transfers are not encrypted, so "
                 "the file's name and contents would reach %s (and the servers in "
                 "between) readable, but %s has an encryption key or requires "
                 "encryption.  Use /e2ee off first to send files unencrypted."),
               buddy, buddy);
}

/* ---- IRC: the raw line ---- */

#define IRC_MAX_PARAMS 15

typedef struct {
  gboolean tagged;                     /* IRCv3 message tags were present */
  const char *command;
  const char *params[IRC_MAX_PARAMS];
  guint n_params;
  gboolean extra;                      /* more words than the server reads */
} IrcLine;

static gboolean
irc_space (char c)
{
  return c == ' ' || c == '\t';
}

/* Splits @line (modified in place, no CR/LF) as RFC 1459 §2.3.1 says:
 * [@tags] [:prefix] command params, where words are separated by any run
 * of white space and a parameter starting with ':' takes the rest. */
static gboolean
irc_parse (char *line, IrcLine *out)
{
  char *p = line;

  memset (out, 0, sizeof *out);
  while (irc_space (*p))
    p++;
  if (*p == '@')
    {
      out->tagged = TRUE;
      while (*p != '\0' && !irc_space (*p))
        p++;
      while (irc_space (*p))
        p++;
    }
  if (*p == ':')
    {
      while (*p != '\0' && !irc_space (*p))
        p++;
      while (irc_space (*p))
        p++;
    }
  if (*p == '\0')
    return FALSE;
  out->command = p;
  while (*p != '\0' && !irc_space (*p))
    p++;
  while (*p != '\0')
    {
      *p++ = '\0';
      while (irc_space (*p))
        p++;
      if (*p == '\0')
        break;
      if (out->n_params == IRC_MAX_PARAMS)
        {
          out->extra = TRUE;
          break;
        }
      if (*p == ':')
        {
          out->params[out->n_params++] = p + 1;
          break;
        }
      out->params[out->n_params++] = p;
      while (*p != '\0' && !irc_space (*p))
        p++;
    }
  return TRUE;
}

static gboolean
is_channel (const char *target)
{
  /* STATUSMSG (@#chan, +#chan) is a channel too. */
  while (*target == '@' || *target == '%' || *target == '~')
    target++;
  return *target == '#' || *target == '&' || *target == '+' || *target == '!'
         || *target == '$';
}

typedef enum {
  IRC_TEXT_NONE,        /* nothing a person wrote: CTCP control, armor, empty */
  IRC_TEXT_READABLE,    /* words (CTCP ACTION included) */
  IRC_TEXT_FILE,        /* a DCC offer: names the file, opens a plaintext link */
} IrcText;

static IrcText
classify_text (const char *text)
{
  const char *end;
  gsize len = strlen (text);

  if (*e2ee_enforce_skip_space (text) == '\0')
    return IRC_TEXT_NONE;
  if (text[0] == '\001')
    {
      const char *inner = text + 1;
      const char *last = strchr (inner, '\001');
      gsize wlen = strcspn (inner, " \001");

      /* Anything outside the one CTCP is readable text. */
      if (last != NULL && last != text + len - 1)
        return IRC_TEXT_READABLE;
      if (wlen == 3 && g_ascii_strncasecmp (inner, "DCC", 3) == 0)
        return IRC_TEXT_FILE;
      if (wlen == 6 && g_ascii_strncasecmp (inner, "ACTION", 6) == 0)
        {
          char *body = g_strndup (inner + 6, last != NULL
                                  ? (gsize) (last - inner - 6) : len - 7);
          gboolean armor = e2ee_enforce_is_armor (body);

          e2ee_string_free (body);
          return armor ? IRC_TEXT_NONE : IRC_TEXT_READABLE;
        }
      return IRC_TEXT_NONE;
    }
  end = strchr (text, '\001');
  if (end != NULL)
    return IRC_TEXT_READABLE;
  return e2ee_enforce_is_armor (text) ? IRC_TEXT_NONE : IRC_TEXT_READABLE;
}

/* The nick a target names: nick, nick!user@host, nick%host, user@server. */
static char *
target_nick (const char *target)
{
  return g_strndup (target, strcspn (target, "!%@"));
}

/* Returns what @line would leak to a protected buddy (*@blocked_target),
 * or IRC_TEXT_NONE. */
static IrcText
irc_one_line (PurpleAccount *account, char *line, char **blocked_target)
{
  IrcLine l;
  IrcText kind;
  g_auto (GStrv) targets = NULL;

  if (!irc_parse (line, &l))
    return IRC_TEXT_NONE;
  if (g_ascii_strcasecmp (l.command, "TAGMSG") == 0)
    kind = l.tagged ? IRC_TEXT_READABLE : IRC_TEXT_NONE;
  else if (g_ascii_strcasecmp (l.command, "PRIVMSG") == 0
           || g_ascii_strcasecmp (l.command, "NOTICE") == 0)
    {
      /* Only one text parameter is ever ours; tags may carry text too. */
      if (l.n_params > 2 || l.extra || l.tagged)
        kind = IRC_TEXT_READABLE;
      else
        kind = classify_text (l.n_params == 2 ? l.params[1] : "");
    }
  else
    return IRC_TEXT_NONE;
  if (kind == IRC_TEXT_NONE || l.n_params == 0)
    return IRC_TEXT_NONE;

  targets = g_strsplit (l.params[0], ",", -1);
  for (guint i = 0; targets[i] != NULL; i++)
    {
      g_autofree char *nick = target_nick (targets[i]);

      if (*nick == '\0' || is_channel (targets[i]))
        continue;
      if (e2ee_enforce_armor_only (account, nick))
        {
          *blocked_target = g_steal_pointer (&nick);
          return kind;
        }
    }
  return IRC_TEXT_NONE;
}

/* Every line in @text (a sender may join several with CR/LF). */
static IrcText
irc_text_forbidden (PurpleAccount *account, const char *text, char **blocked_target)
{
  g_auto (GStrv) lines = g_strsplit_set (text, "\r\n", -1);
  IrcText worst = IRC_TEXT_NONE;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autofree char *target = NULL;
      gsize len = strlen (lines[i]);      /* parsing puts NULs in the line */
      IrcText kind = irc_one_line (account, lines[i], &target);

      if (kind > worst)
        {
          worst = kind;
          g_free (*blocked_target);
          *blocked_target = g_steal_pointer (&target);
        }
      e2ee_wipe (lines[i], len);
    }
  return worst;
}

static void
irc_sending_text_cb (PurpleConnection *gc, char **text, gpointer data)
{
  g_autofree char *target = NULL;
  PurpleAccount *account;
  IrcText kind;

  if (gc == NULL || text == NULL || *text == NULL)
    return;
  account = purple_connection_get_account (gc);
  kind = irc_text_forbidden (account, *text, &target);
  if (kind == IRC_TEXT_NONE)
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
  if (kind == IRC_TEXT_FILE)
    tell_file_refused (account, target);
  else
    tell_dropped (account, target);
}

/* ---- XMPP: the stanza ---- */

/* Elements that only mark or hint (ids and flags in attributes); they are
 * harmless as long as they hold no text. */
static const char *const marker_ns[] = {
  "http://jabber.org/protocol/chatstates", "urn:xmpp:receipts", "urn:xmpp:chat-markers:0",
  "urn:xmpp:eme:0", "urn:xmpp:hints", "urn:xmpp:attention:0", "urn:xmpp:delay",
  "jabber:x:event", "urn:xmpp:sid:0", "urn:xmpp:carbons:2", "urn:xmpp:ping", NULL,
};

static gboolean
holds_text (xmlnode *node)
{
  for (xmlnode *c = node->child; c != NULL; c = c->next)
    {
      if (c->type == XMLNODE_TYPE_DATA)
        {
          for (gsize i = 0; i < c->data_sz; i++)
            if (!g_ascii_isspace (c->data[i]))
              return TRUE;
        }
      else if (c->type == XMLNODE_TYPE_TAG && holds_text (c))
        return TRUE;
    }
  return FALSE;
}

static gboolean
has_attributes (xmlnode *node)
{
  for (xmlnode *c = node->child; c != NULL; c = c->next)
    if (c->type == XMLNODE_TYPE_ATTRIB)
      return TRUE;
  return FALSE;
}

static gboolean
is_marker (xmlnode *node)
{
  const char *ns = xmlnode_get_namespace (node);

  return ns != NULL && g_strv_contains (marker_ns, ns) && !holds_text (node);
}

/* A thread id: one short token, no words (a parent id may stand in an
 * attribute). */
static gboolean
is_thread_id (xmlnode *node)
{
  g_autofree char *id = xmlnode_get_data (node);
  const char *parent = xmlnode_get_attrib (node, "parent");

  if (id != NULL && (strlen (id) > 64 || strpbrk (id, " \t\r\n") != NULL))
    return FALSE;
  return parent == NULL || (strlen (parent) <= 64 && strpbrk (parent, " \t\r\n") == NULL);
}

/* TRUE when @msg carries anything readable besides our armor: every
 * <body> (any language), <subject>, <html>, text straight inside the
 * message, and any element that holds text (out-of-band URLs, in-band
 * file data, invitations with a reason, ...).  Our element must hold an
 * envelope that parses, and only our fixed sentence may stand beside it. */
static gboolean
message_readable (xmlnode *msg)
{
  guint n_enc = 0, n_body = 0;
  gboolean body_ok = TRUE, body_is_sentence = TRUE;

  for (xmlnode *c = msg->child; c != NULL; c = c->next)
    {
      const char *ns;

      if (c->type == XMLNODE_TYPE_DATA)
        {
          for (gsize i = 0; i < c->data_sz; i++)
            if (!g_ascii_isspace (c->data[i]))
              return TRUE;
          continue;
        }
      if (c->type != XMLNODE_TYPE_TAG)
        continue;
      ns = xmlnode_get_namespace (c);
      if (g_strcmp0 (c->name, "encrypted") == 0 && g_strcmp0 (ns, E2EE_XMPP_MSG_NS) == 0)
        {
          g_autofree char *armor = xmlnode_get_data (c);

          if (armor == NULL || !e2ee_enforce_envelope_parses (armor))
            return TRUE;
          n_enc++;
        }
      else if (g_strcmp0 (c->name, "body") == 0)
        {
          g_autofree char *text = xmlnode_get_data (c);

          n_body++;
          if (text != NULL && *e2ee_enforce_skip_space (text) != '\0')
            {
              if (g_strcmp0 (text, e2ee_xmpp_fallback_text ()) != 0)
                body_is_sentence = FALSE;
              if (!e2ee_enforce_is_armor (text))
                body_ok = FALSE;
            }
          /* Markup inside a body is not a body's text. */
          for (xmlnode *g = c->child; g != NULL; g = g->next)
            if (g->type == XMLNODE_TYPE_TAG)
              return TRUE;
        }
      else if (g_strcmp0 (c->name, "thread") == 0)
        {
          if (!is_thread_id (c))
            return TRUE;
        }
      else if (g_strcmp0 (c->name, "subject") == 0 || g_strcmp0 (c->name, "html") == 0)
        return TRUE;
      else if (!is_marker (c) && (holds_text (c) || has_attributes (c)))
        return TRUE;
    }
  if (n_enc > 1 || n_body > 1)
    return TRUE;
  /* Beside our element: nothing but the sentence; alone, a body must be
   * armor (an unwrapped envelope, a fragment, an offer) or empty. */
  return n_enc == 1 ? !body_is_sentence : !body_ok;
}

static void
remove_all_children (xmlnode *node)
{
  xmlnode *c = node->child, *next;

  /* Attributes (to, type, id) stay; everything inside goes. */
  for (; c != NULL; c = next)
    {
      next = c->next;
      if (c->type != XMLNODE_TYPE_ATTRIB)
        {
          if (c->type == XMLNODE_TYPE_DATA && c->data != NULL)
            e2ee_wipe (c->data, c->data_sz);
          xmlnode_free (c);
        }
    }
}

static void
check_message (PurpleAccount *account, xmlnode *msg)
{
  const char *to = xmlnode_get_attrib (msg, "to");
  const char *type = xmlnode_get_attrib (msg, "type");
  g_autofree char *bare = NULL;
  gboolean armor_only;

  /* A message with nothing readable in it (chat states alone, receipts,
   * our envelope) goes wherever it is addressed. */
  if (to == NULL || !message_readable (msg))
    return;
  bare = e2ee_plugin_normalize (account, to);
  armor_only = g_strcmp0 (type, "groupchat") == 0 ? groupchat_armor_only (account, bare)
                                                  : e2ee_enforce_armor_only (account, bare);
  if (!armor_only)
    return;
  /* libpurple's own send callback cannot take a NULL stanza: leave the
   * message without anything in it instead. */
  remove_all_children (msg);
  tell_dropped (account, bare);
}

/* The child of an <iq> that would start a file transfer or carry file
 * data: a stream-initiation file offer, a Jingle session with a file
 * description, in-band bytestream data, or an out-of-band URL. */
static xmlnode *
iq_file_child (xmlnode *iq)
{
  for (xmlnode *c = iq->child; c != NULL; c = c->next)
    {
      const char *ns;

      if (c->type != XMLNODE_TYPE_TAG)
        continue;
      ns = xmlnode_get_namespace (c);
      if (g_strcmp0 (ns, NS_SI) == 0)
        return c;
      if (g_strcmp0 (ns, NS_IBB) == 0 && g_strcmp0 (c->name, "close") != 0)
        return c;
      if (g_strcmp0 (ns, NS_IQ_OOB) == 0)
        return c;
      if (g_strcmp0 (ns, NS_JINGLE) == 0)
        {
          for (xmlnode *content = xmlnode_get_child (c, "content"); content != NULL;
               content = xmlnode_get_next_twin (content))
            {
              xmlnode *desc = xmlnode_get_child (content, "description");
              const char *dns = desc != NULL ? xmlnode_get_namespace (desc) : NULL;

              if (dns != NULL && strstr (dns, "file-transfer") != NULL)
                return c;
            }
        }
    }
  return NULL;
}

static void
check_iq (PurpleAccount *account, xmlnode *iq)
{
  const char *to = xmlnode_get_attrib (iq, "to");
  const char *type = xmlnode_get_attrib (iq, "type");
  g_autofree char *bare = NULL;
  xmlnode *file;

  if (to == NULL || (g_strcmp0 (type, "set") != 0 && g_strcmp0 (type, "get") != 0)
      || (file = iq_file_child (iq)) == NULL)
    return;
  bare = e2ee_plugin_normalize (account, to);
  if (!e2ee_enforce_armor_only (account, bare))
    return;
  /* An <iq> with no payload: the buddy answers with an error and
   * libpurple cancels the transfer. */
  remove_all_children (iq);
  tell_file_refused (account, bare);
}

static void
jabber_sending_cb (PurpleConnection *gc, xmlnode **packet, gpointer data)
{
  PurpleAccount *account;

  if (gc == NULL || packet == NULL || *packet == NULL)
    return;
  account = purple_connection_get_account (gc);
  if (g_strcmp0 ((*packet)->name, "message") == 0)
    check_message (account, *packet);
  else if (g_strcmp0 ((*packet)->name, "iq") == 0)
    check_iq (account, *packet);
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
