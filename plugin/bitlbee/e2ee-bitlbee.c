/* purple-e2ee for BitlBee: a loader plugin that starts purple-e2ee inside
 * bitlbee-libpurple and connects it to the IRC user.
 *
 * BitlBee never loads the core plugins a user picked (it does not call
 * purple_plugins_load_saved), but libpurple loads every loader and protocol
 * plugin it finds while probing the plugin folders.  This module is such a
 * loader (it loads no other file types).  In any UI but BitlBee it refuses
 * to load, so Pidgin and Finch never see it.  In BitlBee it waits for the
 * first account to connect: by then BitlBee has moved libpurple's user
 * folder to the IRC user's own one, so the keyring is per user, never
 * shared by everybody on the server.  Then it:
 *  - loads purple-e2ee (by plugin id);
 *  - runs "/e2ee ..." typed in a query as the conversation command instead
 *    of sending it (IRC clients send a literal slash with "//e2ee" or
 *    "/say /e2ee");
 *  - shows the conversation's system and error lines (command output, key
 *    warnings), which BitlBee drops, as notices from BitlBee's root user in
 *    the control channel, where no buddy can write;
 *  - emits writing-im-msg for messages BitlBee writes itself, as Pidgin and
 *    Finch do, so received messages get the encryption marker.
 * The writers are BitlBee's own ones wrapped, per IM conversation.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef PURPLE_PLUGINS
#define PURPLE_PLUGINS
#endif

#include <string.h>

#include <glib.h>
#include <glib/gi18n-lib.h>

#include <account.h>
#include <cmds.h>
#include <conversation.h>
#include <core.h>
#include <debug.h>
#include <eventloop.h>
#include <notify.h>
#include <plugin.h>
#include <signals.h>
#include <util.h>
#include <version.h>

#define E2EE_BITLBEE_ID "core-purple-e2ee-bitlbee"
#define E2EE_CORE_PLUGIN_ID "core-purple-e2ee"
#define E2EE_BITLBEE_UI "BitlBee"
#define E2EE_BITLBEE_CAT "purple-e2ee-bitlbee"
#define E2EE_COMMAND "/e2ee"

static struct
{
  PurplePlugin *plugin;
  gboolean started;
  guint connect_timer;
  PurpleConversationUiOps *host_ops;    /* BitlBee's, restored on unload */
  PurpleConversationUiOps ops;          /* a copy with our two writers */
} shim;

/* A line for the IRC user from BitlBee's root user (not from a buddy). */
static void
tell_user (const char *about, const char *html, gboolean error)
{
  char *text = purple_markup_strip_html (html != NULL ? html : "");

  purple_notify_message (shim.plugin,
                         error ? PURPLE_NOTIFY_MSG_ERROR : PURPLE_NOTIFY_MSG_INFO,
                         _("purple-e2ee"), about, g_strstrip (text), NULL, NULL);
  g_free (text);
}

/* BitlBee writes IMs with its write_im op, which libpurple calls instead of
 * purple_conversation_write: emit the signals that function would. */
static void
write_im (PurpleConversation *conv, const char *who, const char *message,
          PurpleMessageFlags flags, time_t mtime)
{
  PurpleAccount *account = purple_conversation_get_account (conv);
  void *handle = purple_conversations_get_handle ();
  char *displayed = g_strdup (message);
  gboolean drop;

  drop = GPOINTER_TO_INT (purple_signal_emit_return_1 (handle, "writing-im-msg", account,
                                                       who, &displayed, conv, flags));
  if (!drop && displayed != NULL)
    {
      if (shim.host_ops->write_im != NULL)
        shim.host_ops->write_im (conv, who, displayed, flags, mtime);
      purple_signal_emit (handle, "wrote-im-msg", account, who, displayed, conv, flags);
    }
  g_free (displayed);
}

/* System and error lines of IM conversations, which BitlBee would drop. */
static void
write_conv (PurpleConversation *conv, const char *who, const char *alias,
            const char *message, PurpleMessageFlags flags, time_t mtime)
{
  if (purple_conversation_get_type (conv) == PURPLE_CONV_TYPE_IM
      && !(flags & PURPLE_MESSAGE_SEND)
      && (flags & (PURPLE_MESSAGE_SYSTEM | PURPLE_MESSAGE_ERROR)))
    tell_user (purple_conversation_get_name (conv), message,
               (flags & PURPLE_MESSAGE_ERROR) != 0);
  if (shim.host_ops->write_conv != NULL)
    shim.host_ops->write_conv (conv, who, alias, message, flags, mtime);
}

static gboolean
is_e2ee_command (const char *line)
{
  size_t n = strlen (E2EE_COMMAND);

  return strncmp (line, E2EE_COMMAND, n) == 0
         && (line[n] == '\0' || g_ascii_isspace (line[n]));
}

/* Runs before purple-e2ee sees the message (lowest priority is called
 * first), so a command is never encrypted or sent. */
static void
sending_im (PurpleAccount *account, const char *receiver, char **message, gpointer data)
{
  PurpleConversation *conv;
  PurpleCmdStatus status;
  char *plain, *line, *markup;
  char *error = NULL;

  if (message == NULL || *message == NULL)
    return;
  plain = purple_markup_strip_html (*message);
  line = g_strstrip (plain);
  if (!is_e2ee_command (line))
    {
      g_free (plain);
      return;
    }
  g_free (*message);
  *message = NULL;

  conv = purple_find_conversation_with_account (PURPLE_CONV_TYPE_IM, receiver, account);
  if (conv == NULL)
    conv = purple_conversation_new (PURPLE_CONV_TYPE_IM, account, receiver);
  markup = g_markup_escape_text (line + 1, -1);
  status = purple_cmd_do_command (conv, line + 1, markup, &error);
  switch (status)
    {
    case PURPLE_CMD_STATUS_OK:
      break;
    case PURPLE_CMD_STATUS_NOT_FOUND:
      tell_user (receiver, _("purple-e2ee is not loaded, so /e2ee is not available."), TRUE);
      break;
    case PURPLE_CMD_STATUS_WRONG_ARGS:
      tell_user (receiver, _("Wrong arguments; /e2ee help lists the commands."), TRUE);
      break;
    default:
      tell_user (receiver, error != NULL ? error : _("The command failed."), TRUE);
      break;
    }
  g_free (error);
  g_free (markup);
  g_free (plain);
}

/* Every IM conversation writes through our two writers, then BitlBee's. */
static void
conversation_created (PurpleConversation *conv, gpointer data)
{
  PurpleConversationUiOps *ops = purple_conversation_get_ui_ops (conv);

  if (purple_conversation_get_type (conv) != PURPLE_CONV_TYPE_IM || ops == NULL
      || ops == &shim.ops)
    return;
  if (shim.host_ops == NULL)
    {
      shim.host_ops = ops;
      shim.ops = *ops;
      shim.ops.write_im = write_im;
      shim.ops.write_conv = write_conv;
    }
  /* Not purple_conversation_set_ui_ops: that calls BitlBee's
   * destroy_conversation first, which only knows group chats. */
  if (ops == shim.host_ops)
    conv->ui_ops = &shim.ops;
}

/* The first account connects: the user folder is the IRC user's now. */
static void
account_connecting (PurpleAccount *account, gpointer data)
{
  PurplePlugin *core;

  if (shim.started)
    return;
  shim.started = TRUE;

  core = purple_plugins_find_with_id (E2EE_CORE_PLUGIN_ID);
  if (core == NULL)
    tell_user (NULL, _("purple-e2ee was not found in the libpurple plugin folders."), TRUE);
  else if (!purple_plugin_is_loaded (core) && !purple_plugin_load (core))
    tell_user (NULL, core->error != NULL ? core->error
                                         : _("purple-e2ee could not be loaded."), TRUE);
  else
    purple_debug_info (E2EE_BITLBEE_CAT, "purple-e2ee loaded for %s\n",
                       purple_user_dir ());
}

/* libpurple loads loaders before it sets up accounts and conversations,
 * whose signals do not exist yet: connect once the main loop runs. */
static gboolean
connect_signals (gpointer data)
{
  PurplePlugin *plugin = data;

  shim.connect_timer = 0;
  purple_signal_connect (purple_accounts_get_handle (), "account-connecting", plugin,
                         PURPLE_CALLBACK (account_connecting), NULL);
  purple_signal_connect (purple_conversations_get_handle (), "conversation-created", plugin,
                         PURPLE_CALLBACK (conversation_created), NULL);
  purple_signal_connect_priority (purple_conversations_get_handle (), "sending-im-msg",
                                  plugin, PURPLE_CALLBACK (sending_im), NULL,
                                  PURPLE_SIGNAL_PRIORITY_LOWEST);
  return FALSE;
}

static gboolean
shim_load (PurplePlugin *plugin)
{
  /* Only BitlBee: every other UI loads purple-e2ee as the user chooses. */
  if (g_strcmp0 (purple_core_get_ui (), E2EE_BITLBEE_UI) != 0)
    return FALSE;
  shim.plugin = plugin;
  shim.connect_timer = purple_timeout_add (0, connect_signals, plugin);
  return TRUE;
}

static gboolean
shim_unload (PurplePlugin *plugin)
{
  GList *l;

  if (shim.connect_timer != 0)
    purple_timeout_remove (shim.connect_timer);
  shim.connect_timer = 0;
  for (l = purple_get_conversations (); l != NULL; l = l->next)
    if (purple_conversation_get_ui_ops (l->data) == &shim.ops)
      ((PurpleConversation *) l->data)->ui_ops = shim.host_ops;
  shim.host_ops = NULL;
  shim.started = FALSE;
  shim.plugin = NULL;
  return TRUE;
}

/* A loader for no file type: loaded while probing, nothing else. */
static PurplePluginLoaderInfo loader_info = { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };

static PurplePluginInfo info = {
  PURPLE_PLUGIN_MAGIC,
  PURPLE_MAJOR_VERSION,
  PURPLE_MINOR_VERSION,
  PURPLE_PLUGIN_LOADER,
  NULL,
  PURPLE_PLUGIN_FLAG_INVISIBLE,
  NULL,
  PURPLE_PRIORITY_DEFAULT,
  E2EE_BITLBEE_ID,
  N_("purple-e2ee for BitlBee"),
  "0.1.0",
  N_("Starts purple-e2ee inside BitlBee"),
  N_("Loads purple-e2ee in bitlbee-libpurple, runs /e2ee commands typed in a "
     "query and shows the plugin's messages in the control channel."),
  "purple-e2ee developers",
  "",
  shim_load,
  shim_unload,
  NULL,
  NULL,
  &loader_info,
  NULL,
  NULL,
  NULL, NULL, NULL, NULL
};

static void
init_plugin (PurplePlugin *plugin)
{
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
}

PURPLE_INIT_PLUGIN (purple_e2ee_bitlbee, init_plugin, info)
