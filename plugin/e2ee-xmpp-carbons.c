/* purple-e2ee — Message Carbons (XEP-0280): copies of the account's
 * conversations on its other resources.  A copy of a message a buddy sent
 * to another of our resources is read like a message from that buddy; a
 * copy of what we sent from another device is shown as ours, marked, and
 * never as the buddy's words.  Only our own server may send copies.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include <time.h>

#include <xmlnode.h>

#include "e2ee-plugin.h"
#include "e2ee-envelope.h"
#include "e2ee-wipe.h"

#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_FORWARD "urn:xmpp:forward:0"

void
e2ee_xmpp_carbons_enable (PurpleAccount *account)
{
  PurpleConnection *gc = purple_account_get_connection (account);
  xmlnode *iq, *enable;
  g_autofree char *id = NULL;

  if (gc == NULL)
    return;
  iq = xmlnode_new ("iq");
  xmlnode_set_attrib (iq, "type", "set");
  id = g_strdup_printf ("e2ee-carbons-%p", (void *) gc);
  xmlnode_set_attrib (iq, "id", id);
  enable = xmlnode_new_child (iq, "enable");
  xmlnode_set_namespace (enable, NS_CARBONS);
  /* The answer (or an error from a server without carbons) changes
   * nothing: libpurple ignores results it did not ask for. */
  e2ee_xmpp_send_node (gc, iq);
  xmlnode_free (iq);
}

static char *
bare_of (PurpleAccount *account, const char *jid)
{
  return jid != NULL && *jid != '\0' ? e2ee_plugin_normalize (account, jid) : NULL;
}

/* A copy of our own envelope: our other devices encrypt to this one as
 * to one of the account's devices, so it opens as a message of our own
 * account; only a device the user accepted is shown as "me". */
static gboolean
show_own_envelope (PurpleAccount *account, const char *buddy, const char *armor)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = ctx != NULL ? e2ee_plugin_account (account) : NULL;
  E2eeRecvResult res = { 0 };
  E2eeRecvKind kind;
  PurpleConversation *conv;
  PurpleMessageFlags flags = PURPLE_MESSAGE_SEND | PURPLE_MESSAGE_REMOTE_SEND;
  g_autofree char *prefix = NULL;
  g_autofree char *text = NULL;

  if (record == NULL)
    return FALSE;
  e2ee_context_receive_full (ctx, record, record->name, armor,
                             g_get_monotonic_time () / G_USEC_PER_SEC, TRUE, &res);
  if (res.kind == E2EE_RECV_MESSAGE)
    {
      prefix = e2ee_ui_mark_prefix (e2ee_ui_mark_for_trust (res.sender_trust));
      text = g_strdup_printf ("%s%s%s", prefix, _("(from your other device) "),
                              res.plaintext);
      if (!e2ee_prefs_log_encrypted ())
        flags |= PURPLE_MESSAGE_NO_LOG;
      conv = e2ee_ui_find_conv (account, buddy, TRUE);
      purple_conv_im_write (PURPLE_CONV_IM (conv), record->name, text, flags, time (NULL));
      e2ee_wipe (text, strlen (text));
    }
  else if (res.kind == E2EE_RECV_WITHHELD)
    e2ee_ui_say (account, buddy, TRUE,
                 _("You sent %s an encrypted message from another device of yours "
                   "(device %.8s) that this one has not accepted: it is not shown "
                   "(/e2ee own accept %.8s)."), buddy,
                 res.sender_kid != NULL ? res.sender_kid : "?",
                 res.sender_kid != NULL ? res.sender_kid : "?");
  kind = res.kind;
  purple_debug_info (E2EE_DEBUG_CAT, "copy of our own message to %s: kind %d\n", buddy,
                     (int) kind);
  e2ee_recv_result_clear (&res);
  return kind == E2EE_RECV_MESSAGE || kind == E2EE_RECV_WITHHELD;
}

/* What we sent from another device: shown as ours, never as theirs. */
static void
show_sent_copy (PurpleAccount *account, const char *buddy, xmlnode *inner)
{
  xmlnode *enc = xmlnode_get_child_with_namespace (inner, "encrypted", E2EE_XMPP_MSG_NS);
  xmlnode *body = xmlnode_get_child (inner, "body");
  g_autofree char *text = NULL;

  text = enc != NULL ? xmlnode_get_data (enc) : body != NULL ? xmlnode_get_data (body) : NULL;
  if (text == NULL || *text == '\0')
    return;
  if (e2ee_armor_detect (text) && show_own_envelope (account, buddy, text))
    return;
  if (enc != NULL || e2ee_armor_detect (text) || e2ee_offer_inband_detect (text))
    e2ee_ui_say (account, buddy, TRUE,
                 _("You sent %s an encrypted message from another device of "
                   "yours; it is not shown here."), buddy);
  else
    e2ee_ui_say (account, buddy, TRUE,
                 _("You sent %s from another device, NOT encrypted: %s"), buddy, text);
}

gboolean
e2ee_xmpp_carbons_handle (PurpleConnection *gc, xmlnode **packet)
{
  PurpleAccount *account = purple_connection_get_account (gc);
  xmlnode *outer = *packet, *wrap, *fwd, *inner;
  gboolean sent;
  g_autofree char *self = NULL;
  g_autofree char *from = NULL;
  g_autofree char *inner_from = NULL;
  g_autofree char *inner_to = NULL;

  sent = (wrap = xmlnode_get_child_with_namespace (outer, "sent", NS_CARBONS)) != NULL;
  if (!sent && (wrap = xmlnode_get_child_with_namespace (outer, "received", NS_CARBONS)) == NULL)
    return FALSE;
  self = e2ee_plugin_normalize (account, purple_account_get_username (account));
  from = bare_of (account, xmlnode_get_attrib (outer, "from"));
  fwd = xmlnode_get_child_with_namespace (wrap, "forwarded", NS_FORWARD);
  inner = fwd != NULL ? xmlnode_get_child (fwd, "message") : NULL;
  if (inner != NULL)
    {
      inner_from = bare_of (account, xmlnode_get_attrib (inner, "from"));
      inner_to = bare_of (account, xmlnode_get_attrib (inner, "to"));
    }

  /* Only our own server writes copies (from our bare JID or none); a copy
   * from anyone else is forged and dropped. */
  if ((from != NULL && (strcmp (from, self) != 0
                        || strchr (xmlnode_get_attrib (outer, "from"), '/') != NULL))
      || inner == NULL || inner_from == NULL || inner_to == NULL
      || (sent && strcmp (inner_from, self) != 0)
      || (!sent && strcmp (inner_to, self) != 0))
    {
      purple_debug_warning (E2EE_DEBUG_CAT, "dropped a carbon copy that is not from "
                            "our server\n");
      xmlnode_free (outer);
      *packet = NULL;
      return TRUE;
    }

  if (sent)
    {
      if (strcmp (inner_to, self) != 0)
        show_sent_copy (account, inner_to, inner);
      xmlnode_free (outer);
      *packet = NULL;
      return TRUE;
    }
  /* A message the buddy sent to another of our resources: read as if it
   * had come here. */
  inner = xmlnode_copy (inner);
  xmlnode_free (outer);
  *packet = inner;
  return TRUE;
}
