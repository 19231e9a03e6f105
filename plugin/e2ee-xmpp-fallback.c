/* purple-e2ee — what an encrypted XMPP message looks like on the wire:
 * the envelope in an element of our own, a readable <body> for clients
 * without the plugin, Explicit Message Encryption (XEP-0380) naming our
 * namespace, a <store/> hint (XEP-0334) so offline storage keeps it, and
 * never an XHTML-IM part.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include <xmlnode.h>

#include "e2ee-plugin.h"
#include "e2ee-envelope.h"

#define NS_EME "urn:xmpp:eme:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_XHTML_IM "http://jabber.org/protocol/xhtml-im"

const char *
e2ee_xmpp_fallback_text (void)
{
  return _("This message is end-to-end encrypted with purple-e2ee (a plugin for "
           "Pidgin, Finch and other libpurple clients).  Your client cannot read "
           "it; ask the sender to write to you without encryption, or install "
           "purple-e2ee.");
}

static void
remove_all (xmlnode *node, const char *name, const char *ns)
{
  xmlnode *child;

  while ((child = ns != NULL ? xmlnode_get_child_with_namespace (node, name, ns)
                             : xmlnode_get_child (node, name)) != NULL)
    xmlnode_free (child);
}

static gboolean
is_chat_message (xmlnode *msg)
{
  const char *type = xmlnode_get_attrib (msg, "type");

  return g_strcmp0 (msg->name, "message") == 0
         && g_strcmp0 (type, "groupchat") != 0 && g_strcmp0 (type, "error") != 0;
}

/* The armored envelope our element holds, or NULL. */
static char *
wrapped_armor (xmlnode *msg)
{
  xmlnode *enc = xmlnode_get_child_with_namespace (msg, "encrypted", E2EE_XMPP_MSG_NS);
  char *text = enc != NULL ? xmlnode_get_data (enc) : NULL;

  if (text != NULL && !e2ee_armor_detect (text))
    g_clear_pointer (&text, g_free);
  return text;
}

gboolean
e2ee_xmpp_is_wrapped (xmlnode *msg)
{
  g_autofree char *armor = NULL;
  g_autofree char *body_text = NULL;
  xmlnode *body;

  if (msg == NULL || !is_chat_message (msg) || xmlnode_get_child (msg, "html") != NULL
      || xmlnode_get_child (msg, "subject") != NULL)
    return FALSE;
  armor = wrapped_armor (msg);
  body = xmlnode_get_child (msg, "body");
  body_text = body != NULL ? xmlnode_get_data (body) : NULL;
  /* Only our own sentence may stand beside the envelope. */
  return armor != NULL && body != NULL && xmlnode_get_next_twin (body) == NULL
         && g_strcmp0 (body_text, e2ee_xmpp_fallback_text ()) == 0;
}

/* jabber-sending-xmlnode, before the last check (e2ee-enforce.c), which
 * accepts exactly this form. */
static void
sending_cb (PurpleConnection *gc, xmlnode **packet, gpointer data)
{
  xmlnode *msg, *body, *node;
  g_autofree char *text = NULL;

  if (gc == NULL || packet == NULL || (msg = *packet) == NULL || !is_chat_message (msg)
      || xmlnode_get_child_with_namespace (msg, "encrypted", E2EE_XMPP_MSG_NS) != NULL)
    return;
  body = xmlnode_get_child (msg, "body");
  text = body != NULL ? xmlnode_get_data (body) : NULL;
  if (text == NULL || !e2ee_armor_detect (text) || xmlnode_get_next_twin (body) != NULL)
    return;
  g_strstrip (text);

  remove_all (msg, "body", NULL);
  remove_all (msg, "html", NS_XHTML_IM);
  remove_all (msg, "html", NULL);
  xmlnode_insert_data (xmlnode_new_child (msg, "body"), e2ee_xmpp_fallback_text (), -1);
  node = xmlnode_new_child (msg, "encrypted");
  xmlnode_set_namespace (node, E2EE_XMPP_MSG_NS);
  xmlnode_insert_data (node, text, -1);
  node = xmlnode_new_child (msg, "encryption");
  xmlnode_set_namespace (node, NS_EME);
  xmlnode_set_attrib (node, "namespace", E2EE_XMPP_MSG_NS);
  xmlnode_set_attrib (node, "name", "purple-e2ee");
  node = xmlnode_new_child (msg, "store");
  xmlnode_set_namespace (node, NS_HINTS);
}

void
e2ee_xmpp_unwrap (xmlnode *msg)
{
  g_autofree char *armor = NULL;
  xmlnode *body;

  if (msg == NULL || !is_chat_message (msg) || (armor = wrapped_armor (msg)) == NULL)
    return;
  /* Our element is read first: the sentence beside it is for others, and
   * nothing else in the message is shown. */
  remove_all (msg, "body", NULL);
  remove_all (msg, "html", NULL);
  remove_all (msg, "subject", NULL);
  body = xmlnode_new_child (msg, "body");
  /* libpurple reads only a body in the stream's namespace. */
  xmlnode_set_namespace (body, xmlnode_get_namespace (msg) != NULL
                               ? xmlnode_get_namespace (msg) : "jabber:client");
  xmlnode_insert_data (body, armor, -1);
}

void
e2ee_xmpp_fallback_connect (PurplePlugin *plugin)
{
  PurplePlugin *jabber = purple_find_prpl ("prpl-jabber");

  if (jabber != NULL)
    purple_signal_connect (jabber, "jabber-sending-xmlnode", plugin,
                           PURPLE_CALLBACK (sending_cb), NULL);
}
